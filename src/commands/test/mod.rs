//! `pfc test RULES [--cases FILE] [--format human|json|junit] [--coverage]
//! [--kernel | --interpreter]` and `pfc test RULES --pcap FILE [--verdicts | --format
//! human|json] [--direction in|out|any --mac MAC] [--kernel | --interpreter]`: the
//! compiled object run on the packets of a case file or a capture (a per-rule summary,
//! or one verdict per frame; of a capture only the direction the hook sees, with --mac),
//! in the rbpf VM (its JIT when pfc's verifier accepts the code, else or with
//! `--interpreter` its interpreter) or the kernel, every answer checked against pfc's
//! interpreter.
//!
//! Exit codes: 0 every case passed; 1 a case failed, or the rule file, case file or
//! capture is bad; 2 usage; 3 internal compiler error (the object and the interpreter
//! disagree, or pfc's object does not run).

mod capture_summary;
mod direction;
mod engine;
mod init;
mod output;
mod verdicts;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pfc_compiler::codegen::Options;
use pfc_compiler::compile::Compiled;
use pfc_compiler::testcase::pcap::read_capture;
use pfc_compiler::testcase::summary::{hex, summarize};
use pfc_compiler::testcase::{self, parse_cases, Case, Input, MAX_PACKET_LEN};
use pfc_runtime::BpfObject;

use direction::{Direction, Selection};
pub use engine::Backend;
use engine::{Engine, Ran, RunError};
use output::{CaseResult, TestFormat};

use super::compile::ClassifierArg;
use crate::escape::escape;
use crate::report::{self, Report};
use crate::{input, source, Format};

// The case files and the VM agree on the largest packet.
const _: () = assert!(MAX_PACKET_LEN == pfc_runtime::vm::MAX_PACKET_LEN);

/// The arguments of `pfc test`.
#[derive(clap::Args)]
pub struct TestArgs {
    /// The rule file (`.pf`), `-` for standard input (then --cases or --pcap is needed).
    file: PathBuf,
    /// The case file (default: the rule file with `.test.toml` for `.pf`); `-` for
    /// standard input.
    #[arg(long, conflicts_with = "pcap")]
    cases: Option<PathBuf>,
    /// Run every frame of this pcap/pcapng file (`-` for standard input) and print what
    /// each rule decided (packets, bytes), or with --verdicts one JSON verdict per frame.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// With --pcap: print `{"packet":N,"verdict":"drop","rule":"m"}` per frame.
    #[arg(long, requires = "pcap")]
    verdicts: bool,
    /// How to report case results (with --pcap, the summary: human or json).
    #[arg(long, value_enum, default_value_t = TestFormat::Human, conflicts_with = "verdicts")]
    format: TestFormat,
    /// With --pcap: judge only the frames the interface received (`in`: what XDP and TC
    /// ingress see), sent (`out`: TC egress), or every frame (`any`). `in` and `out`
    /// need --mac; with --mac alone, the rule file's hook decides.
    #[arg(long, value_enum, requires = "pcap")]
    direction: Option<Direction>,
    /// With --pcap: the MAC address of the interface the capture was taken on; frames
    /// from it were sent, frames to it (or to a broadcast or multicast address) received.
    #[arg(long, visible_alias = "iface-mac", value_name = "MAC", value_parser = direction::parse_mac, requires = "pcap")]
    mac: Option<direction::Mac>,
    /// Write a starter case file instead of running one: one example packet per rule
    /// that decides some packet and one for the default, from the packet-space engine,
    /// to the --cases path (default: RULES.test.toml; `-` prints it). Never overwrites.
    #[arg(long, conflicts_with_all = ["pcap", "coverage", "kernel", "interpreter"])]
    init: bool,
    /// Also list the rules that decided no case.
    #[arg(long, conflicts_with = "pcap")]
    coverage: bool,
    /// Run in the kernel with BPF_PROG_TEST_RUN instead of the rbpf VM (needs root).
    #[arg(long, conflicts_with = "interpreter")]
    kernel: bool,
    /// The classifier's form, as `pfc compile --classifier`.
    #[arg(long, value_enum, default_value_t = ClassifierArg::Auto)]
    classifier: ClassifierArg,
    /// Run in rbpf's interpreter even where its JIT could run (the JIT is used only for
    /// code pfc's verifier proves bounded; see docs/testing.md).
    #[arg(long)]
    interpreter: bool,
}

/// Why `pfc test` stopped early, with its exit code.
enum Stop {
    /// Bad input: exit 1.
    Input { message: String },
    /// The rule file has errors, already printed as diagnostics (`summary` lists them
    /// for the JUnit report): exit 1.
    RuleFile { summary: String },
    /// A pfc bug: exit 3.
    Internal { message: String },
}

/// Runs `pfc test`.
pub fn run(args: &TestArgs) -> ExitCode {
    if input::is_stdio(&args.file) && args.cases.is_none() && args.pcap.is_none() {
        return report::usage_error("test", "rules from standard input need --cases FILE (or --pcap FILE)");
    }
    let from_stdin = [Some(&args.file), args.cases.as_ref(), args.pcap.as_ref()];
    if from_stdin.iter().flatten().filter(|path| input::is_stdio(path)).count() > 1 {
        return report::usage_error(
            "test",
            "only one of the rule file, --cases and --pcap can be `-` (standard input)",
        );
    }
    if args.mac.is_none() && matches!(args.direction, Some(Direction::In | Direction::Out)) {
        return report::usage_error(
            "test",
            "--direction in and out need --mac MAC: the address of the interface the capture was taken on \
             (`ip link show IFACE`)",
        );
    }
    if args.init {
        let path = args.cases.clone().unwrap_or_else(|| args.file.with_extension("test.toml"));
        return init::run(&args.file, &path);
    }
    if args.pcap.is_some() && args.format == TestFormat::Junit {
        return report::usage_error("test", "--pcap summarizes a capture as human or json, not junit");
    }
    let stop = match run_checked(args) {
        Ok(code) => return code,
        Err(stop) => stop,
    };
    // CI reads the JUnit file whatever happened: a run that stopped is one erroring test.
    if args.format == TestFormat::Junit {
        let (what, message) = match &stop {
            Stop::Input { message } => ("input", message.as_str()),
            Stop::RuleFile { summary } => ("rule file", summary.as_str()),
            Stop::Internal { message } => ("internal compiler error", message.as_str()),
        };
        print!("{}", output::junit_error(&input::display_name(&args.file), what, message));
    }
    match stop {
        Stop::Input { message } => {
            eprintln!("error: {}", escape(&message));
            ExitCode::from(1)
        }
        Stop::RuleFile { .. } => ExitCode::from(1),
        Stop::Internal { message } => {
            eprintln!("internal compiler error: {}", escape(&message));
            eprintln!("this is a pfc bug; please report it with the rule file and the packet above");
            ExitCode::from(3)
        }
    }
}

fn run_checked(args: &TestArgs) -> Result<ExitCode, Stop> {
    let compiled = compile(&args.file, args.classifier)?;
    let object = BpfObject::parse(&compiled.object).map_err(|error| Stop::Internal { message: chain(&error) })?;
    let backend = match (args.kernel, args.interpreter) {
        (true, _) => Backend::Kernel,
        (false, true) => Backend::VmInterpreter,
        (false, false) => Backend::Vm,
    };
    let mut engine = Engine::new(&compiled.program, &object, &compiled.object, backend).map_err(|error| {
        let message = chain(&error);
        if error.is_internal() {
            Stop::Internal { message }
        } else {
            Stop::Input { message }
        }
    })?;
    let selection = selection(args, &compiled);
    match &args.pcap {
        Some(pcap) if args.verdicts => return verdicts::run(&mut engine, &compiled.program, pcap, &selection),
        Some(pcap) => {
            let rules_name = input::display_name(&args.file);
            let program = &compiled.program;
            let format = args.format;
            return capture_summary::run(&mut engine, program, &rules_name, pcap, &selection, format, backend.name());
        }
        None => {}
    }
    let cases_path = args.cases.clone().unwrap_or_else(|| args.file.with_extension("test.toml"));
    let results = run_cases(&mut engine, &compiled, &cases_path)?;
    let context = output::Context {
        rules_file: &input::display_name(&args.file),
        cases_file: &input::display_name(&cases_path),
        backend: backend.name(),
        executor: engine.executor(),
        rules: &compiled.program.rules.iter().map(|rule| rule.name.clone()).collect::<Vec<_>>(),
        coverage: args.coverage,
    };
    let failed = results.iter().filter(|result| result.failed()).count();
    output::print(args.format, &context, &results);
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The frames of a capture to judge: `--direction`, or with only `--mac` the direction of
/// the rule file's hook. A direction the hook never sees gets a note.
fn selection(args: &TestArgs, compiled: &Compiled) -> Selection {
    let Some(mac) = args.mac else { return Selection::ALL };
    let hook = compiled.program.hook;
    let direction = args.direction.unwrap_or(Direction::of_hook(hook));
    if direction != Direction::Any && direction != Direction::of_hook(hook) {
        let (seen, judged) = (Direction::of_hook(hook).as_str(), direction.as_str());
        eprintln!(
            "note: the rule file's hook ({}) sees `{seen}` frames; --direction {judged} judges `{judged}` frames",
            hook.as_str()
        );
    }
    Selection { direction, mac: Some(mac) }
}

/// Compiles the rule file with counters; [`Stop::RuleFile`] after printing its
/// diagnostics.
fn compile(path: &Path, classifier: ClassifierArg) -> Result<Compiled, Stop> {
    let sources = source::read_with_includes(path).map_err(|message| Stop::Input { message })?;
    let (compiled, diagnostics) = match sources.readable {
        false => (None, sources.parsed.diagnostics.clone()),
        true => pfc_compiler::compile::compile_parsed(&sources.parsed, Options { counters: true }, classifier.form()),
    };
    let file_name = sources.name().to_string();
    match compiled {
        Some(compiled) if !report::has_errors(&diagnostics) => {
            // Other warnings are `pfc check`'s; this one says the kernel may decide a case's
            // frame otherwise than the VM does here (the VM's frame keeps its tags).
            let differs: Vec<_> = diagnostics
                .into_iter()
                .filter(|diagnostic| diagnostic.code == pfc_compiler::check::PCAP_TAG_OUTSIDE_FRAME)
                .collect();
            Report::new(Format::Human).add_sources(&sources.parsed.map, &differs);
            Ok(compiled)
        }
        _ => {
            let mut report = Report::new(Format::Human);
            report.add_sources(&sources.parsed.map, &diagnostics);
            let _ = report.finish();
            let errors = diagnostics.iter().filter(|diagnostic| diagnostic.is_error());
            let lines: Vec<String> = errors
                .map(|diagnostic| format!("{file_name}: error[{}]: {}", diagnostic.code.0, diagnostic.message))
                .collect();
            let summary = if lines.is_empty() { format!("{file_name}: does not compile") } else { lines.join("\n") };
            Err(Stop::RuleFile { summary })
        }
    }
}

/// One packet to run, with what its case expects.
struct Job<'a> {
    case: &'a Case,
    index: Option<usize>,
    bytes: Vec<u8>,
    /// When the packet arrives, in nanoseconds (rate limits read it).
    time_ns: u64,
}

fn run_cases(engine: &mut Engine<'_>, compiled: &Compiled, path: &Path) -> Result<Vec<CaseResult>, Stop> {
    let name = input::display_name(path);
    let bytes =
        input::read_limited(path, "case file", input::MAX_CASE_FILE).map_err(|message| Stop::Input { message })?;
    let text = String::from_utf8(bytes).map_err(|error| Stop::Input {
        message: format!("{name}: not UTF-8 text (invalid byte at offset {})", error.utf8_error().valid_up_to()),
    })?;
    let (cases, errors) = parse_cases(&text, &compiled.program);
    if !errors.is_empty() {
        let message = errors
            .iter()
            .map(|error| {
                let (line, column) = error.position();
                format!("{name}:{line}:{column}: {error}")
            })
            .collect::<Vec<_>>()
            .join("\nerror: ");
        return Err(Stop::Input { message });
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut jobs = Vec::new();
    let mut clock = 0;
    for case in &cases {
        expand(case, base, &name, &mut jobs, &mut clock)?;
    }
    let mut results = Vec::with_capacity(jobs.len());
    // Each case starts with its own set contents (case names are unique).
    let mut current_case: Option<&str> = None;
    for job in jobs {
        let label = match job.index {
            Some(index) => format!("case `{}`, packet {index}", job.case.name),
            None => format!("case `{}`", job.case.name),
        };
        if current_case != Some(job.case.name.as_str()) {
            current_case = Some(job.case.name.as_str());
            engine.use_sets(&job.case.sets).map_err(|error| internal(&error, &label, &job.bytes))?;
        }
        let ran = engine.run_at(&job.bytes, job.time_ns).map_err(|error| internal(&error, &label, &job.bytes))?;
        let expected = job.case.expect[job.index.filter(|_| job.case.expect.len() > 1).unwrap_or(0)].clone();
        let spec = match &job.case.input {
            Input::Spec { text, .. } => Some(text.clone()),
            _ => None,
        };
        let (actual, skipped) = match ran {
            Ran::Decided(outcome) => (Some(outcome), None),
            Ran::Refused(reason) => (None, Some(reason)),
        };
        let events = engine.events().to_vec();
        let name = match job.index {
            Some(index) => format!("{} [packet {index}]", job.case.name),
            None => job.case.name.clone(),
        };
        results.push(CaseResult {
            name,
            line: job.case.line,
            spec,
            summary: summarize(&job.bytes),
            expected,
            actual,
            skipped,
            events,
        });
    }
    Ok(results)
}

/// The packets of one case, appended to `jobs`; `clock` is the time of the last packet
/// so far (a case without `at` starts there).
fn expand<'a>(
    case: &'a Case,
    base: &Path,
    cases_name: &str,
    jobs: &mut Vec<Job<'a>>,
    clock: &mut u64,
) -> Result<(), Stop> {
    let start = case.timing.at_ns.unwrap_or(*clock);
    let (line, column) = case.timing.at;
    let too_late = |how: &str| Stop::Input {
        message: format!("{cases_name}:{line}:{column}: case `{}`: {}: {how}", case.name, testcase::TIME_OVERFLOW),
    };
    match &case.input {
        Input::Spec { bytes, .. } | Input::Hex { bytes } => {
            let repeat = case.timing.repeat.max(1);
            if case.timing.packet_time(start, repeat - 1).is_none() {
                return Err(too_late(&format!("it starts at {start} ns, where the case before ended")));
            }
            for i in 0..repeat {
                let time_ns = start + u64::from(i) * case.timing.interval_ns;
                let index = (repeat > 1).then_some(i as usize);
                jobs.push(Job { case, index, bytes: bytes.clone(), time_ns });
                *clock = time_ns;
            }
        }
        Input::Pcap { path } => {
            let full = base.join(path);
            let at = format!("{cases_name}:{}: case `{}`: {}", case.line, case.name, full.display());
            let bytes = input::read_limited(&full, "capture", input::MAX_CAPTURE).map_err(|message| Stop::Input {
                message: format!("{cases_name}:{}: case `{}`: {message}", case.line, case.name),
            })?;
            let capture = read_capture(&bytes).map_err(|error| Stop::Input { message: format!("{at}: {error}") })?;
            if capture.packets.is_empty() {
                eprintln!("note: {}: the capture holds no packets", escape(&at));
            }
            if let Some(note) = capture.cut_note() {
                eprintln!("note: {}: {note}", escape(&at));
            }
            if case.expect.len() > 1 && case.expect.len() != capture.packets.len() {
                let message = format!(
                    "{at}: `expect` (or `rule`, or `log`) lists {} entries but the capture holds {} packets",
                    case.expect.len(),
                    capture.packets.len()
                );
                return Err(Stop::Input { message });
            }
            let first = capture.times_ns.first().copied().unwrap_or(0);
            for (index, packet) in capture.packets.iter().enumerate() {
                let recorded = capture.times_ns.get(index).copied().unwrap_or(0);
                let time_ns = match case.timing.at_ns {
                    Some(at) => at
                        .checked_add(recorded.saturating_sub(first))
                        .ok_or_else(|| too_late(&format!("`at` + the time of frame {} after the first", index + 1)))?,
                    None => recorded,
                };
                jobs.push(Job { case, index: Some(index), bytes: packet.to_vec(), time_ns });
                *clock = time_ns;
            }
        }
    }
    Ok(())
}

/// An internal compiler error about one packet, with the packet in hex.
fn internal(error: &RunError, label: &str, packet: &[u8]) -> Stop {
    Stop::Internal { message: format!("{label}: {}\n  packet ({} bytes): {}", chain(error), packet.len(), hex(packet)) }
}

/// An error and its sources, joined with `: `.
fn chain(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
