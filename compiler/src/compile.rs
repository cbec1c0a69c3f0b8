//! The compiler driver: rule text in, an ELF object (and the listings people read) out.
//! It is the pipeline in one function; each step is its own module.

use std::cell::OnceCell;

use crate::bpf::{Comment, Program as BpfProgram};
use crate::codegen::classifier::Classifier;
use crate::codegen::table::Table;
use crate::codegen::{self, Form, Options};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::ir::{self, Filter};
use crate::object::maps::{
    limit_map_name, CLASSIFIER_NODES_MAP_NAME, CLASSIFIER_RULES_MAP_NAME, COUNTER_MAP_NAME, LIMIT_STATS_MAP_NAME,
    LOG_RING_MAP_NAME, LOG_STATS_MAP_NAME, SET_GENERATION_MAP_NAME,
};
use crate::object::{
    self, program_name, CountersManifest, LimitManifest, LimitStatsEntry, LogRuleManifest, LogsManifest, Manifest,
    MapSpec, ObjectSpec, SetContents, SetManifest, SetMapManifest, SetsManifest, TableContents,
};
use crate::program::{dynamic, DynamicKind, LimitId, Program};
use crate::sources;
use crate::verify;

mod used_maps;

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

/// Like [`compile`], with the choice of which static sets become maps ([`SetMaps`]).
pub fn compile_with(source: &str, options: Options, set_maps: SetMaps) -> (Option<Compiled>, Vec<Diagnostic>) {
    let parsed = sources::parse_with_includes(sources::LoadedFile::text(source), &mut sources::NoIncludes);
    compile_parsed_with(&parsed, options, None, set_maps)
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
    compile_parsed_with(parsed, options, form, SetMaps::default())
}

/// When static sets are held in kernel maps instead of decision trees ([`ir::maps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetMaps {
    /// A set test over more intervals than this is a map from the start.
    pub above: usize,
    /// When the program breaks a kernel limit, set tests of at least this many intervals
    /// become maps, largest first, one at a time, until it fits.
    pub fallback_from: usize,
}

impl Default for SetMaps {
    fn default() -> SetMaps {
        SetMaps { above: ir::maps::MAP_ABOVE, fallback_from: ir::maps::FALLBACK_FROM }
    }
}

/// Like [`compile_parsed`], with the choice of which static sets become maps.
pub fn compile_parsed_with(
    parsed: &sources::Parsed,
    options: Options,
    form: Option<Form>,
    set_maps: SetMaps,
) -> (Option<Compiled>, Vec<Diagnostic>) {
    let (program, mut diagnostics) = crate::frontend::check_parsed(parsed);
    let Some(program) = program else { return (None, diagnostics) };
    let mut filter = ir::build(&program);
    let mut mapped = Vec::new();
    for candidate in ir::maps::candidates(&filter) {
        if candidate.intervals > set_maps.above {
            let why = match set_maps.above {
                ir::maps::MAP_ABOVE => {
                    format!("more than {} intervals: no tree that large fits a 16-bit jump", set_maps.above)
                }
                above => format!("more than {above} intervals (the threshold this compile was given)"),
            };
            mapped.push(map_set(&mut filter, &program, &candidate, why));
        }
    }
    let mut tried = Vec::new();
    let mut outcome = generate_in_forms(&filter, options, form, &mut tried);
    while let Err((failure, _)) = &outcome {
        let candidates = ir::maps::candidates(&filter).into_iter();
        let largest = candidates.filter(|c| c.intervals >= set_maps.fallback_from).max_by_key(|c| c.intervals);
        let (true, Some(candidate)) = (failure.is_limit(), largest) else { break };
        let why = format!("the decision trees did not fit: {failure}");
        mapped.push(map_set(&mut filter, &program, &candidate, why));
        outcome = generate_in_forms(&filter, options, form, &mut tried);
    }
    let (mut code, table) = match outcome {
        Ok(generated) => generated,
        Err((failure, failed_form)) => {
            let mut diagnostic = failure.diagnostic(&program);
            if failure.is_limit() && !tried.is_empty() {
                // What each form tried broke, then the last one's advice.
                let advice = std::mem::take(&mut diagnostic.notes);
                let last = failure.to_string();
                for (index, attempt) in tried.iter().enumerate() {
                    let step = if index == 0 { "tried first" } else { "then" };
                    let why = attempt.why(&program);
                    let shown = if why == last { "the error above" } else { why.as_str() };
                    diagnostic = diagnostic.with_note(format!("{step} {}: {shown}", form_name(attempt.form)));
                }
                diagnostic = diagnostic.with_note(format!("then {}: the error above", form_name(failed_form)));
                diagnostic.notes.extend(advice);
            }
            if !mapped.is_empty() {
                let sets: Vec<&str> = mapped.iter().map(|note| note.name.as_str()).collect();
                diagnostic = diagnostic.with_note(format!("even with sets in maps: {}", sets.join(", ")));
            }
            diagnostics.push(diagnostic);
            return (None, diagnostics);
        }
    };
    let notes = mapped.iter().map(|note| Comment { insn: 0, text: note.text.clone() });
    code.comments.splice(0..0, notes);
    let mut manifest = manifest(&program, &filter, &parsed.map, options);
    let mut maps = maps(&program, &filter, options);
    let mut contents = set_contents(&filter);
    if let Some(table) = &table {
        manifest.tables = table_maps(table, &mut maps, &mut contents);
    }
    let relocations = code.map_relocations();
    if let Some(too_many) = used_maps::check(&program, &filter, &maps, &relocations) {
        diagnostics.push(too_many);
        return (None, diagnostics);
    }
    let mut spec = ObjectSpec {
        program_type: program.hook.program_type(),
        function: parsed.map.files().first().map_or_else(|| FUNCTION_NAME.to_string(), |file| program_name(&file.name)),
        code: code.encode(),
        relocations,
        maps,
        manifest: Vec::new(),
        set_contents: contents,
    };
    manifest.digest = Some(object::digest::of_spec(&spec, &manifest));
    spec.manifest = manifest.to_bytes();
    match object::write_object(&spec) {
        Ok(object) => (Some(Compiled { program, filter, code, manifest, object }), diagnostics),
        Err(error) => {
            diagnostics.push(Failure::Object(error).diagnostic(&program));
            (None, diagnostics)
        }
    }
}

/// By default (`form` `None`): the classifier; past a kernel limit, the table-driven
/// classifier, then dispatched jumping code. Past the kernel verifier's pending-path
/// limit: branch-free conditions. Past another limit (jump reach): plain jumping code,
/// then branch-free conditions. With the table form, its table. The inline and the table
/// classifier share one plan; a plan whose inline code would be past the kernel's
/// instruction limit ([`codegen::classifier_least_slots`]) goes to the table at once.
/// `tried` gets each form that failed before the last one tried and why (for the last
/// failure's diagnostic; emptied first); `Err` also says which form the last was.
fn generate_in_forms(
    filter: &Filter,
    options: Options,
    form: Option<Form>,
    tried: &mut Vec<Attempt>,
) -> Result<(BpfProgram, Option<Table>), (Failure, Form)> {
    tried.clear();
    let plan = Plan { filter, planned: OnceCell::new() };
    let mut current = form.unwrap_or(Form::Classified);
    let least = match form {
        None => plan.get().map(|plan| codegen::classifier_least_slots(filter, options, plan)),
        Some(_) => None,
    };
    let inline_too_large = least.filter(|least| *least > verify::MAX_INSNS);
    if let Some(least) = inline_too_large {
        current = Form::Table;
        tried.push(Attempt { form: Form::Classified, why: Why::AtLeast(least) });
    }
    let mut outcome = generate_and_verify(filter, options, current, &plan);
    while form.is_none() {
        let next = match (&outcome, current) {
            (Err(failure), Form::Classified) if failure.is_limit() => Form::Table,
            (Err(_), Form::Table) => Form::Dispatched,
            (
                Err(Failure::Verify { error: verify::VerifyError::TooManyPendingBranches { .. }, .. }),
                Form::Dispatched | Form::Jumping,
            ) => Form::Branchless,
            (Err(failure), Form::Dispatched) if failure.is_limit() => Form::Jumping,
            (Err(failure), Form::Jumping) if failure.is_limit() => Form::Branchless,
            _ => break,
        };
        let failed = std::mem::replace(&mut outcome, generate_and_verify(filter, options, next, &plan));
        // A set too small for a classifier has none: its first attempt was dispatched code,
        // and the table no form at all. Only the forms that apply are named.
        let small = filter.rules.len() < codegen::classifier::MIN_RULES;
        let real = !small || !matches!(current, Form::Classified | Form::Table);
        if let (Err(failure), true) = (failed, real) {
            tried.push(Attempt { form: current, why: Why::Failed(failure) });
        }
        current = next;
    }
    if let (Some(least), Ok((code, _))) = (inline_too_large, &mut outcome) {
        let text = format!(
            "no inline classifier: it would take at least {least} instructions; the kernel takes at most {}",
            verify::MAX_INSNS
        );
        code.comments.insert(0, Comment { insn: 0, text });
    }
    outcome.map_err(|failure| (failure, current))
}

/// A form of code that did not fit, and why.
struct Attempt {
    form: Form,
    why: Why,
}

enum Why {
    /// Generated and refused.
    Failed(Failure),
    /// Not generated: it would take at least this many instructions.
    AtLeast(usize),
}

impl Attempt {
    /// Why the form did not fit: `rule `x` tests `or`, which a classifier table cannot
    /// express` (rules by name).
    fn why(&self, program: &Program) -> String {
        match &self.why {
            Why::AtLeast(least) => {
                format!("it would take at least {least} instructions; the kernel takes at most {}", verify::MAX_INSNS)
            }
            Why::Failed(Failure::Codegen(codegen::CodegenError::NotTabular { source })) => match source {
                codegen::table::NotTabular::Condition { rule, what } => {
                    let name = program.rules.get(*rule).map_or("?", |rule| rule.name.as_str());
                    format!("rule `{name}` tests {what}, which a classifier table cannot express")
                }
                other => other.to_string(),
            },
            Why::Failed(failure) => failure.to_string(),
        }
    }
}

/// A form of code as a diagnostic names it.
fn form_name(form: Form) -> &'static str {
    match form {
        Form::Classified => "the inline classifier",
        Form::Table => "the classifier table",
        Form::Dispatched => "dispatched jumping code",
        Form::Jumping => "jumping code",
        Form::Branchless => "branch-free code",
    }
}

/// The classifier plan of one filter, made when a form first needs it.
struct Plan<'f> {
    filter: &'f Filter,
    planned: OnceCell<Option<Classifier>>,
}

impl Plan<'_> {
    fn get(&self) -> Option<&Classifier> {
        self.planned.get_or_init(|| codegen::plan_classifier(self.filter)).as_ref()
    }
}

/// A static set put in a map: its name, and the listing's note saying so and why.
struct MappedSet {
    name: String,
    text: String,
}

/// Puts `candidate`'s set in a map (named after the declared set it came from) and
/// says so.
fn map_set(filter: &mut Filter, program: &Program, candidate: &ir::maps::Candidate, why: String) -> MappedSet {
    let name = program.set_name(crate::program::SetId(candidate.set.0)).unwrap_or("inline set").to_string();
    let index = ir::maps::into_map(filter, candidate, &name);
    let (map_type, entries) = match candidate.map_kind() {
        DynamicKind::Prefixes => ("an LPM trie", "prefixes"),
        DynamicKind::Values => ("a hash", "values"),
    };
    let text = format!(
        "set `{name}` ({} {} intervals) is {map_type} map `{}` of {} {entries}, not a decision tree: {why}",
        candidate.intervals,
        filter.dynamic_sets[index as usize].element_type,
        filter.dynamic_sets[index as usize].parts().first().map_or(String::new(), |part| part.map_name(index as usize)),
        candidate.entries,
    );
    MappedSet { name, text }
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
            Failure::Codegen(error) => matches!(
                error,
                codegen::CodegenError::StackFull(_)
                    | codegen::CodegenError::JumpTooFar { .. }
                    | codegen::CodegenError::NotTabular { .. }
            ),
            Failure::Verify { error, .. } => error.is_limit(),
            Failure::Object(_) => false,
        }
    }

    /// E0020 for a kernel limit; else E0900, pointing at the rule whose code broke an
    /// invariant when one rule's did.
    fn diagnostic(&self, program: &Program) -> Diagnostic {
        let not_tabular = match self {
            Failure::Codegen(codegen::CodegenError::NotTabular { source }) => Some(source),
            _ => None,
        };
        if let Some(codegen::table::NotTabular::Condition { rule, what }) = not_tabular {
            if let Some(rule) = program.rules.get(*rule) {
                let message = format!("no classifier table: rule `{}` tests {what}", rule.name);
                return Diagnostic::error(KERNEL_LIMIT, message, rule.span, "a classifier table cannot express this")
                    .with_note(
                        "a table takes rules that are conjunctions of `==`, `<`, `<=`, `>`, `>=` and one-interval \
                         `in` tests of fields of at most 32 bits, without masks (docs/architecture.md)",
                    );
            }
        }
        if self.is_limit() {
            let note = match not_tabular {
                Some(codegen::table::NotTabular::TooSmall) => "a classifier table is for sets of 16 rules or more",
                _ => "split the rule set or use fewer distinct fields",
            };
            return Diagnostic::error(KERNEL_LIMIT, self.to_string(), Span::default(), "the rule set as a whole")
                .with_note(note);
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

fn generate_and_verify(
    filter: &Filter,
    options: Options,
    form: Form,
    plan: &Plan,
) -> Result<(BpfProgram, Option<Table>), Failure> {
    let (code, table) = match form {
        Form::Table => {
            let table = codegen::table::build_with(filter, || plan.get()).map_err(codegen::CodegenError::from)?;
            (codegen::generate_table(filter, options, &table)?, Some(table))
        }
        Form::Classified => (codegen::generate_planned(filter, options, form, plan.get())?, None),
        form => (codegen::generate_planned(filter, options, form, None)?, None),
    };
    verify::verify(&code, filter.hook)
        .map_err(|error| Failure::Verify { rule: error.insn().and_then(|insn| code.rule_of(insn)), error })?;
    Ok((code, table))
}

/// Appends the classifier table's two arrays to `maps` and their values to `contents`
/// (the loader writes them before the program runs); their manifest entries.
fn table_maps(table: &Table, maps: &mut Vec<MapSpec>, contents: &mut Vec<u8>) -> Vec<TableContents> {
    let fields = table.fields.len() as u32;
    let arrays = [
        (MapSpec::classifier_nodes(CLASSIFIER_NODES_MAP_NAME, table.nodes.len() as u32), table.node_bytes()),
        (MapSpec::classifier_rules(CLASSIFIER_RULES_MAP_NAME, table.rules.len() as u32, fields), table.rule_bytes()),
    ];
    let value_sizes = [codegen::table::NODE_SIZE, table.rule_size()];
    let mut entries = Vec::new();
    for ((spec, bytes), value_size) in arrays.into_iter().zip(value_sizes) {
        entries.push(TableContents {
            map: spec.name.clone(),
            entries: (bytes.len() / value_size as usize) as u32,
            value_size,
            offset: contents.len() as u64,
        });
        contents.extend(bytes);
        maps.push(spec);
    }
    entries
}

/// The counter map (index 0, also kept without counters when there are limits or
/// dynamic sets), then one bucket map per rate limit ([`codegen::limit::map_index`]),
/// each dynamic set's maps, one per family and generation ([`codegen::dynamic::map_index`]),
/// and their generation array,
/// then, when a rule logs, the ring buffer and the log statistics
/// ([`codegen::log::ring_map_index`]), and last, when a rule has a rate limit, the
/// limits' statistics ([`codegen::limit::stats_map_index`]; last, so that no other map's
/// index moved when it was added).
fn maps(program: &Program, filter: &Filter, options: Options) -> Vec<MapSpec> {
    let mut maps = Vec::new();
    if options.counters || !program.limits.is_empty() || !filter.dynamic_sets.is_empty() {
        maps.push(MapSpec::counters(COUNTER_MAP_NAME, program.rules.len() as u32 + 1));
    }
    for (index, limit) in program.limits.iter().enumerate() {
        maps.push(MapSpec::rate_buckets(&limit_map_name(index), limit.key_size(), limit.buckets));
    }
    for (index, set) in filter.dynamic_sets.iter().enumerate() {
        for part in set.parts() {
            let (trie, key_size) = (set.kind == DynamicKind::Prefixes, part.family.map_key_size(set.kind));
            maps.push(MapSpec::dynamic_set(&part.map_name(index), trie, key_size, set.max_elements.max(1)));
        }
    }
    if !filter.dynamic_sets.is_empty() {
        let sets = filter.dynamic_sets.len() as u32;
        maps.push(MapSpec::set_generations(SET_GENERATION_MAP_NAME, sets));
    }
    if program.rules.iter().any(|rule| rule.log.is_some()) {
        maps.push(MapSpec::ring_buffer(LOG_RING_MAP_NAME, crate::program::log::RING_BYTES));
        maps.push(MapSpec::log_stats(LOG_STATS_MAP_NAME, program.rules.len() as u32));
    }
    if has_rule_limits(program) {
        maps.push(MapSpec::limit_stats(LIMIT_STATS_MAP_NAME, program.limits.len() as u32));
    }
    maps
}

/// Each dynamic set's entry in the manifest: name, element type, kind, size and map, so
/// `pfc set` finds the map and a replace can tell which contents carry over (same name,
/// type and kind); for a static set held in a map, where its keys are in the object.
fn dynamic_sets_manifest(filter: &Filter) -> Option<SetsManifest> {
    let mut first = 0u64;
    let sets = filter.dynamic_sets.iter().enumerate();
    let sets: Vec<SetManifest> = sets
        .map(|(index, set)| SetManifest {
            name: set.name.clone(),
            element_type: set.element_type.clone(),
            kind: set.kind.as_str().to_string(),
            size: set.max_elements,
            maps: set
                .parts()
                .into_iter()
                .map(|part| SetMapManifest {
                    map: part.map_name(index),
                    family: part.family.as_str().to_string(),
                    generation: part.generation,
                })
                .collect(),
            index: index as u32,
            contents: set.fixed.then(|| {
                let keys = set.keys().len() as u32;
                let place = SetContents { first, keys, key_size: dynamic::KEY_SIZE as u32 };
                first += u64::from(keys);
                place
            }),
        })
        .collect();
    (!sets.is_empty()).then(|| SetsManifest { generation_map: SET_GENERATION_MAP_NAME.to_string(), sets })
}

/// Each limit's entry in the manifest: its rule, map, key and bucket parameters, so a
/// replace can tell which buckets carry over (same rule name, same key).
fn limits_manifest(program: &Program) -> Vec<LimitManifest> {
    let rule_of = |index: usize| program.limit_rule(LimitId(index as u32)).map(|rule| &program.rules[rule]);
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
            stats: rule_of(index)
                .map(|_| LimitStatsEntry { map: LIMIT_STATS_MAP_NAME.to_string(), index: index as u32 }),
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

/// Whether a rule's condition ends in a rate limit (then the object counts each limit's
/// packets over and within its rate; log limits are counted by the log statistics).
pub(crate) fn has_rule_limits(program: &Program) -> bool {
    (0..program.limits.len()).any(|index| program.limit_rule(LimitId(index as u32)).is_some())
}

/// The keys of every static set held in a map, in set order ([`SetContents`] says which
/// are whose).
fn set_contents(filter: &Filter) -> Vec<u8> {
    let fixed = filter.dynamic_sets.iter().filter(|set| set.fixed);
    fixed.flat_map(|set| set.keys()).flatten().collect()
}

/// The manifest: what a loaded object is, without its source.
fn manifest(program: &Program, filter: &Filter, source: &sources::SourceMap, options: Options) -> Manifest {
    Manifest {
        pfc_version: env!("CARGO_PKG_VERSION").to_string(),
        hook: program.hook,
        default: program.default,
        rules: program.rules.iter().map(|rule| rule.name.clone()).collect(),
        verdicts: program.rules.iter().map(|rule| rule.verdict).collect(),
        counters: options.counters.then(|| CountersManifest::per_rule(COUNTER_MAP_NAME)),
        source_hash: source.hash(),
        limits: limits_manifest(program),
        dynamic_sets: dynamic_sets_manifest(filter),
        logs: logs_manifest(program),
        tables: Vec::new(),
        digest: None,
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
    crate::hashing::hash_text(sha2::Sha256::digest(source).as_slice())
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
