//! `pfc test RULES [--cases FILE] [--format human|json|junit] [--coverage]
//! [--kernel | --interpreter]` and `pfc test RULES --pcap FILE --verdicts [--kernel |
//! --interpreter]`: the compiled object run on the packets of a case file or a capture,
//! in the rbpf VM (its JIT when pfc's verifier accepts the code, else or with
//! `--interpreter` its interpreter) or the kernel, every answer checked against pfc's
//! interpreter.
//!
//! Exit codes: 0 every case passed; 1 a case failed, or the rule file, case file or
//! capture is bad; 2 usage; 3 internal compiler error (the object and the interpreter
//! disagree, or pfc's object does not run).

mod engine;
mod output;
mod verdicts;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pfc_compiler::codegen::Options;
use pfc_compiler::compile::Compiled;
use pfc_compiler::testcase::pcap::read_capture;
use pfc_compiler::testcase::summary::{hex, summarize};
use pfc_compiler::testcase::{parse_cases, Case, Input, MAX_PACKET_LEN};
use pfc_runtime::BpfObject;

pub use engine::Backend;
use engine::{Engine, Ran, RunError};
use output::{CaseResult, TestFormat};

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
    /// Run every frame of this pcap/pcapng file (`-` for standard input) and print one
    /// JSON verdict per line.
    #[arg(long, requires = "verdicts")]
    pcap: Option<PathBuf>,
    /// With --pcap: print `{"packet":N,"verdict":"drop","rule":"m"}` per frame.
    #[arg(long, requires = "pcap")]
    verdicts: bool,
    /// How to report case results.
    #[arg(long, value_enum, default_value_t = TestFormat::Human, conflicts_with = "pcap")]
    format: TestFormat,
    /// Also list the rules that decided no case.
    #[arg(long, conflicts_with = "pcap")]
    coverage: bool,
    /// Run in the kernel with BPF_PROG_TEST_RUN instead of the rbpf VM (needs root).
    #[arg(long, conflicts_with = "interpreter")]
    kernel: bool,
    /// Run in rbpf's interpreter even where its JIT could run (the JIT is used only for
    /// code pfc's verifier proves bounded; see docs/testing.md).
    #[arg(long)]
    interpreter: bool,
}

/// Why `pfc test` stopped early: already rendered for people, with its exit code.
enum Stop {
    /// Bad input: exit 1.
    Input { message: String },
    /// A pfc bug: exit 3.
    Internal { message: String },
}

/// Runs `pfc test`.
pub fn run(args: &TestArgs) -> ExitCode {
    if input::is_stdio(&args.file) && args.cases.is_none() && args.pcap.is_none() {
        eprintln!("error: rules from standard input need --cases FILE (or --pcap FILE --verdicts)");
        return ExitCode::from(2);
    }
    match run_checked(args) {
        Ok(code) => code,
        Err(Stop::Input { message }) => {
            eprintln!("error: {}", escape(&message));
            ExitCode::from(1)
        }
        Err(Stop::Internal { message }) => {
            eprintln!("internal compiler error: {}", escape(&message));
            eprintln!("this is a pfc bug; please report it with the rule file and the packet above");
            ExitCode::from(3)
        }
    }
}

fn run_checked(args: &TestArgs) -> Result<ExitCode, Stop> {
    let Some(compiled) = compile(&args.file)? else { return Ok(ExitCode::from(1)) };
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
    if let Some(pcap) = &args.pcap {
        return verdicts::run(&mut engine, &compiled.program, pcap);
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

/// Compiles the rule file with counters; `None` after printing its diagnostics.
fn compile(path: &Path) -> Result<Option<Compiled>, Stop> {
    let file = source::read(path).map_err(|message| Stop::Input { message })?;
    let mut report = Report::new(Format::Human);
    if let Some(problem) = &file.problem {
        report.add(&file, std::slice::from_ref(problem));
        let _ = report.finish();
        return Ok(None);
    }
    let (compiled, diagnostics) = pfc_compiler::compile::compile(&file.text, Options { counters: true });
    if report::has_errors(&diagnostics) || compiled.is_none() {
        report.add(&file, &diagnostics);
        let _ = report.finish();
        return Ok(None);
    }
    Ok(compiled)
}

/// One packet to run, with what its case expects.
struct Job<'a> {
    case: &'a Case,
    index: Option<usize>,
    bytes: Vec<u8>,
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
    for case in &cases {
        expand(case, base, &name, &mut jobs)?;
    }
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let label = match job.index {
            Some(index) => format!("case `{}`, packet {index}", job.case.name),
            None => format!("case `{}`", job.case.name),
        };
        let ran = engine.run(&job.bytes).map_err(|error| internal(&error, &label, &job.bytes))?;
        let expected = job.case.expect[job.index.filter(|_| job.case.expect.len() > 1).unwrap_or(0)].clone();
        let spec = match &job.case.input {
            Input::Spec { text, .. } => Some(text.clone()),
            _ => None,
        };
        let (actual, skipped) = match ran {
            Ran::Decided(outcome) => (Some(outcome), None),
            Ran::Refused(reason) => (None, Some(reason)),
        };
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
        });
    }
    Ok(results)
}

/// The packets of one case, appended to `jobs`.
fn expand<'a>(case: &'a Case, base: &Path, cases_name: &str, jobs: &mut Vec<Job<'a>>) -> Result<(), Stop> {
    match &case.input {
        Input::Spec { bytes, .. } | Input::Hex { bytes } => jobs.push(Job { case, index: None, bytes: bytes.clone() }),
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
            if case.expect.len() > 1 && case.expect.len() != capture.packets.len() {
                let message = format!(
                    "{at}: `expect` lists {} verdicts but the capture holds {} packets",
                    case.expect.len(),
                    capture.packets.len()
                );
                return Err(Stop::Input { message });
            }
            for (index, packet) in capture.packets.iter().enumerate() {
                jobs.push(Job { case, index: Some(index), bytes: packet.to_vec() });
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
