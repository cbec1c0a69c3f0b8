//! The compiler driver: rule text in, an ELF object (and the listings people read) out.
//! It is the pipeline in one function; each step is its own module.

use crate::bpf::Program as BpfProgram;
use crate::codegen::{self, Form, Options};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::ir::{self, Filter};
use crate::object::maps::{
    limit_map_name, set_map_name, COUNTER_MAP_NAME, LOG_RING_MAP_NAME, LOG_STATS_MAP_NAME, SET_GENERATION_MAP_NAME,
};
use crate::object::{
    self, program_name, CountersManifest, LimitManifest, LogRuleManifest, LogsManifest, Manifest, MapSpec, ObjectSpec,
    SetManifest, SetsManifest,
};
use crate::program::{dynamic, Program};
use crate::sources;
use crate::verify;

/// E0020: the rule set would break a kernel limit (stack, instruction count).
pub const KERNEL_LIMIT: Code = Code("E0020");
/// E0900: an internal error — a pfc bug (here: code its own checks refuse).
pub use crate::diagnostic::INTERNAL_ERROR;

/// The program's function name in objects compiled from no named file (`<stdin>`,
/// `--pcap-filter`); others are named after their rule file ([`object::program_name`]).
pub const FUNCTION_NAME: &str = object::read::DEFAULT_PROGRAM_NAME;

/// Everything a successful compilation produced.
#[derive(Debug)]
pub struct Compiled {
    /// The checked program.
    pub program: Program,
    /// The optimized IR.
    pub filter: Filter,
    /// The generated instructions.
    pub code: BpfProgram,
    /// The manifest stored in the object.
    pub manifest: Manifest,
    /// The ELF object bytes.
    pub object: Vec<u8>,
}

/// Compiles rule text into an object. The result is present only without errors.
pub fn compile(source: &str, options: Options) -> (Option<Compiled>, Vec<Diagnostic>) {
    compile_form(source, options, None)
}

/// Compiles in a given form of rule conditions; `None` picks jumping code and falls back
/// to branch-free conditions when the jumping program would keep too many paths pending
/// in the kernel verifier.
pub fn compile_form(source: &str, options: Options, form: Option<Form>) -> (Option<Compiled>, Vec<Diagnostic>) {
    let parsed = sources::parse_with_includes(sources::LoadedFile::text(source), &mut sources::NoIncludes);
    compile_parsed(&parsed, options, form)
}

/// Compiles rule files parsed with their includes (see [`sources::parse_with_includes`]);
/// `form` as in [`compile_form`].
pub fn compile_parsed(
    parsed: &sources::Parsed,
    options: Options,
    form: Option<Form>,
) -> (Option<Compiled>, Vec<Diagnostic>) {
    let (program, mut diagnostics) = crate::frontend::check_parsed(parsed);
    let Some(program) = program else { return (None, diagnostics) };
    let filter = ir::build(&program);
    // By default: the classifier; past a kernel limit, dispatched jumping code. Past the kernel verifier's pending-path
    // limit: branch-free conditions. Past another limit (jump reach): plain jumping code,
    // then branch-free conditions.
    let mut current = form.unwrap_or(Form::Classified);
    let mut outcome = generate_and_verify(&filter, options, current);
    while form.is_none() {
        let next = match (&outcome, current) {
            (Err(failure), Form::Classified) if failure.is_limit() => Form::Dispatched,
            (
                Err(Failure::Verify { error: verify::VerifyError::TooManyPendingBranches { .. }, .. }),
                Form::Dispatched | Form::Jumping,
            ) => Form::Branchless,
            (Err(failure), Form::Dispatched) if failure.is_limit() => Form::Jumping,
            (Err(failure), Form::Jumping) if failure.is_limit() => Form::Branchless,
            _ => break,
        };
        current = next;
        outcome = generate_and_verify(&filter, options, current);
    }
    let code = match outcome {
        Ok(code) => code,
        Err(failure) => {
            diagnostics.push(failure.diagnostic(&program));
            return (None, diagnostics);
        }
    };
    let manifest = manifest(&program, &parsed.map.concatenated(), options);
    let spec = ObjectSpec {
        program_type: program.hook.program_type(),
        function: parsed.map.files().first().map_or_else(|| FUNCTION_NAME.to_string(), |file| program_name(&file.name)),
        code: code.encode(),
        relocations: code.map_relocations(),
        maps: maps(&program, options),
        manifest: manifest.to_bytes(),
    };
    match object::write_object(&spec) {
        Ok(object) => (Some(Compiled { program, filter, code, manifest, object }), diagnostics),
        Err(error) => {
            diagnostics.push(Failure::Object(error).diagnostic(&program));
            (None, diagnostics)
        }
    }
}

/// Why code generation, pfc's own verifier or the ELF writer refused the program.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Codegen(#[from] codegen::CodegenError),
    /// `rule`: the rule whose code broke the invariant, when one rule's did.
    #[error("{error}")]
    Verify { error: verify::VerifyError, rule: Option<usize> },
    #[error("{0}")]
    Object(object::ElfError),
}

impl Failure {
    /// A kernel limit the rule set breaks (E0020), not a pfc bug (E0900).
    fn is_limit(&self) -> bool {
        match self {
            Failure::Codegen(error) => {
                matches!(error, codegen::CodegenError::StackFull { .. } | codegen::CodegenError::JumpTooFar { .. })
            }
            Failure::Verify { error, .. } => error.is_limit(),
            Failure::Object(_) => false,
        }
    }

    /// E0020 for a kernel limit; else E0900, pointing at the rule whose code broke an
    /// invariant when one rule's did.
    fn diagnostic(&self, program: &Program) -> Diagnostic {
        if self.is_limit() {
            return Diagnostic::error(KERNEL_LIMIT, self.to_string(), Span::default(), "the rule set as a whole")
                .with_note("split the rule set or use fewer distinct fields");
        }
        let rule = match self {
            Failure::Verify { rule: Some(index), .. } => program.rules.get(*index),
            _ => None,
        };
        let (span, label) = match rule {
            Some(rule) => (rule.span, "pfc generated code for this rule that its own verifier refuses"),
            None => (Span::default(), ""),
        };
        Diagnostic::error(INTERNAL_ERROR, format!("internal compiler error: {self}"), span, label)
            .with_note("this is a pfc bug; please report it with the rule file")
    }
}

fn generate_and_verify(filter: &Filter, options: Options, form: Form) -> Result<BpfProgram, Failure> {
    let code = codegen::generate_form(filter, options, form)?;
    verify::verify(&code, filter.hook)
        .map_err(|error| Failure::Verify { rule: error.insn().and_then(|insn| code.rule_of(insn)), error })?;
    Ok(code)
}

/// The counter map (index 0, also kept without counters when there are limits or
/// dynamic sets), then one bucket map per rate limit ([`codegen::limit::map_index`]),
/// one map per dynamic set ([`codegen::dynamic::map_index`]) and their generation array,
/// then, when a rule logs, the ring buffer and the log statistics
/// ([`codegen::log::ring_map_index`]).
fn maps(program: &Program, options: Options) -> Vec<MapSpec> {
    let mut maps = Vec::new();
    if options.counters || !program.limits.is_empty() || !program.dynamic_sets.is_empty() {
        maps.push(MapSpec::counters(COUNTER_MAP_NAME, program.rules.len() as u32 + 1));
    }
    for (index, limit) in program.limits.iter().enumerate() {
        maps.push(MapSpec::rate_buckets(&limit_map_name(index), limit.key_size(), limit.buckets));
    }
    for (index, set) in program.dynamic_sets.iter().enumerate() {
        let prefixes = set.kind == crate::program::DynamicKind::Prefixes;
        let entries = dynamic::map_entries(set.max_elements);
        maps.push(MapSpec::dynamic_set(&set_map_name(index), prefixes, entries));
    }
    if !program.dynamic_sets.is_empty() {
        let sets = program.dynamic_sets.len() as u32;
        maps.push(MapSpec::set_generations(SET_GENERATION_MAP_NAME, sets));
    }
    if program.rules.iter().any(|rule| rule.log.is_some()) {
        maps.push(MapSpec::ring_buffer(LOG_RING_MAP_NAME, crate::program::log::RING_BYTES));
        maps.push(MapSpec::log_stats(LOG_STATS_MAP_NAME, program.rules.len() as u32));
    }
    maps
}

/// Each dynamic set's entry in the manifest: name, element type, kind, size and map, so
/// `pfc set` finds the map and a replace can tell which contents carry over (same name,
/// type and kind).
fn dynamic_sets_manifest(program: &Program) -> Option<SetsManifest> {
    let sets = program.dynamic_sets.iter().enumerate();
    let sets: Vec<SetManifest> = sets
        .map(|(index, set)| SetManifest {
            name: set.name.clone(),
            element_type: set.element_type.clone(),
            kind: set.kind.as_str().to_string(),
            size: set.max_elements,
            map: set_map_name(index),
            index: index as u32,
        })
        .collect();
    (!sets.is_empty()).then(|| SetsManifest { generation_map: SET_GENERATION_MAP_NAME.to_string(), sets })
}

/// Each limit's entry in the manifest: its rule, map, key and bucket parameters, so a
/// replace can tell which buckets carry over (same rule name, same key).
fn limits_manifest(program: &Program) -> Vec<LimitManifest> {
    let rule_of = |index: usize| {
        program.rules.iter().find(|rule| match &rule.condition {
            crate::program::Cond::Limit(id) => id.0 as usize == index,
            crate::program::Cond::And(all) => {
                matches!(all.last(), Some(crate::program::Cond::Limit(id)) if id.0 as usize == index)
            }
            _ => false,
        })
    };
    let limits = program.limits.iter().enumerate();
    limits
        .map(|(index, limit)| LimitManifest {
            rule: rule_of(index).map(|rule| rule.name.clone()),
            log: program
                .rules
                .iter()
                .find(|rule| rule.log.is_some_and(|log| log.limit.0 as usize == index))
                .map(|rule| rule.name.clone()),
            map: limit_map_name(index),
            key: limit.key.iter().map(|field| field.name().to_string()).collect(),
            key_size: Some(limit.key_size()),
            op: Some(limit.op.as_str().to_string()),
            unit: Some(limit.unit.as_str().to_string()),
            rate: Some(limit.rate),
            period_ns: Some(limit.period_ns),
            burst: Some(limit.burst),
            buckets: Some(limit.buckets),
        })
        .collect()
}

/// The manifest: what a loaded object is, without its source.
fn manifest(program: &Program, source: &[u8], options: Options) -> Manifest {
    Manifest {
        pfc_version: env!("CARGO_PKG_VERSION").to_string(),
        hook: program.hook,
        default: program.default,
        rules: program.rules.iter().map(|rule| rule.name.clone()).collect(),
        verdicts: program.rules.iter().map(|rule| rule.verdict).collect(),
        counters: options.counters.then(|| CountersManifest::per_rule(COUNTER_MAP_NAME)),
        source_hash: source_hash(source),
        limits: limits_manifest(program),
        dynamic_sets: dynamic_sets_manifest(program),
        logs: logs_manifest(program),
    }
}

/// The rules that log, and the maps their events and statistics go to.
fn logs_manifest(program: &Program) -> Option<LogsManifest> {
    let rules = program.rules.iter().enumerate();
    let rules: Vec<LogRuleManifest> = rules
        .filter_map(|(index, rule)| {
            let log = rule.log?;
            Some(LogRuleManifest {
                rule: rule.name.clone(),
                index: index as u32,
                bytes: log.bytes,
                record_size: log.record_size(),
            })
        })
        .collect();
    (!rules.is_empty()).then(|| LogsManifest {
        ring: LOG_RING_MAP_NAME.to_string(),
        stats: LOG_STATS_MAP_NAME.to_string(),
        rules,
    })
}

/// `sha256:` and the SHA-256 of the source in hex: of a rule file without includes what
/// `sha256sum FILE` prints; with includes, of every file's bytes in the order they were
/// read (`cat FILE INCLUDED… | sha256sum`).
pub fn source_hash(source: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(source);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// FNV-1a, 64-bit: enough to tell whether two objects came from the same source text.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An invariant broken in one rule's code is an internal error pointing at the rule;
    /// a kernel limit is E0020 about the whole set.
    #[test]
    fn verifier_errors_point_at_the_rule_whose_code_broke_them() {
        let (program, _) = crate::frontend::check_source("default pass\nrule a: drop if tcp\nrule b: drop if udp\n");
        let program = program.expect("checks");
        let error = verify::VerifyError::BadCall { insn: 7, text: "call 9".to_string(), helper: 9 };
        let diagnostic = Failure::Verify { error: error.clone(), rule: Some(1) }.diagnostic(&program);
        assert_eq!(diagnostic.code, INTERNAL_ERROR);
        assert_eq!(diagnostic.labels[0].span, program.rules[1].span);
        let unattributed = Failure::Verify { error, rule: None }.diagnostic(&program);
        assert_eq!(unattributed.labels[0].span, Span::default());
        let limit = verify::VerifyError::TooComplex { estimate: 2_000_000 };
        assert_eq!(Failure::Verify { error: limit, rule: None }.diagnostic(&program).code, KERNEL_LIMIT);
    }

    /// Every rule's code is attributed to it, in every code form.
    #[test]
    fn generated_code_is_attributed_to_its_rules() {
        let mut text = String::from("default pass\n");
        for port in 0..20 {
            text.push_str(&format!("rule r{port}: drop if tcp.dport == {} and ip.src == 10.0.0.{port}\n", 1000 + port));
        }
        for form in [Form::Classified, Form::Dispatched, Form::Jumping, Form::Branchless] {
            let (compiled, diagnostics) = compile_form(&text, Options { counters: true }, Some(form));
            let compiled = compiled.unwrap_or_else(|| panic!("{form:?}: {diagnostics:?}"));
            let code = &compiled.code;
            for comment in &code.comments {
                let Some(rest) = comment.text.strip_prefix("rule ") else { continue };
                let Some(index) = rest.split(' ').next().and_then(|n| n.parse::<usize>().ok()) else { continue };
                assert_eq!(code.rule_of(comment.insn), Some(index), "{form:?}: {}", comment.text);
            }
            let attributed = (0..code.insns.len()).filter(|insn| code.rule_of(*insn).is_some()).count();
            assert!(attributed > 20, "{form:?}: only {attributed} instructions belong to a rule");
            assert_eq!(code.rule_of(0), None, "{form:?}: the prologue is no rule's");
        }
    }
}
