//! `pfc compile FILE [-o OUT.o] [--emit asm|ir]` and `pfc compile --pcap-filter EXPR -o
//! OUT.o`: a rule file (or a one-line tcpdump filter) to an ELF object. `-` as FILE reads
//! standard input, `-o -` writes the object to standard output (not to a terminal).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use pfc_compiler::codegen::{Form, Options};
use pfc_compiler::compile::Compiled;
use pfc_compiler::sources::SourceMap;

use super::filters::HookArg;
use crate::escape::escape;
use crate::report::{self, Report};
use crate::source::SourceFile;
use crate::{input, source, Emit, Format};

/// Arguments of `pfc compile`.
#[derive(Args)]
pub struct CompileArgs {
    /// The rule file (`.pf`), `-` for standard input.
    #[arg(required_unless_present = "pcap_filter", conflicts_with = "pcap_filter")]
    file: Option<PathBuf>,
    /// Compile a tcpdump filter expression instead of a rule file: packets it matches get
    /// `--verdict`, all others the opposite.
    #[arg(long, value_name = "EXPR")]
    pcap_filter: Option<String>,
    /// With --pcap-filter: the verdict for matching packets.
    #[arg(long, value_enum, default_value_t = VerdictArg::Drop, requires = "pcap_filter")]
    verdict: VerdictArg,
    /// With --pcap-filter: where the program attaches.
    #[arg(long, value_enum, default_value_t = HookArg::Xdp, requires = "pcap_filter")]
    hook: HookArg,
    /// Where to write the object, `-` for standard output (default: the rule file with
    /// `.o`; required with --pcap-filter or rules from `-` unless only a listing is asked for).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print a listing instead of (or with `-o`, as well as) writing the object.
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// Leave out the per-rule packet and byte counters.
    #[arg(long)]
    no_counters: bool,
    /// Which form of the multi-field classifier (sets of 16 rules or more): `inline`
    /// code, a `table` in array maps, or `auto`: inline, else the table, else plain code.
    #[arg(long, value_enum, default_value_t = ClassifierArg::Auto)]
    classifier: ClassifierArg,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// `--classifier` of `compile`, `load` and `test`: the code form of a rule set.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClassifierArg {
    /// The inline classifier where it fits the kernel's limits, else the table, else
    /// plain jumping code.
    Auto,
    /// The inline classifier (decision diagrams as code), or an error saying which
    /// kernel limit it breaks.
    Inline,
    /// The table-driven classifier (the diagrams in two array maps, walked by a small
    /// fixed program), or an error saying which rule a table cannot express.
    Table,
}

impl ClassifierArg {
    /// The form `compile_parsed` is given: `None` lets it choose.
    pub fn form(self) -> Option<Form> {
        match self {
            ClassifierArg::Auto => None,
            ClassifierArg::Inline => Some(Form::Classified),
            ClassifierArg::Table => Some(Form::Table),
        }
    }
}

/// The verdict for packets a `--pcap-filter` expression matches.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VerdictArg {
    /// Drop matching packets, pass the rest.
    Drop,
    /// Pass matching packets, drop the rest.
    Pass,
}

/// An object given where rules are expected: `--emit asm` lists its code as its bytes say
/// (a 16-bit `goto` of an object compiled before pfc wrote `gotol` stays `goto`); anything
/// else is refused, exit 1, with what to do instead.
fn list_object(path: &Path, args: &CompileArgs) -> ExitCode {
    let name = input::display_name(path);
    let refuse = |message: String| {
        eprintln!("error: {}", escape(&message));
        ExitCode::from(1)
    };
    if args.emit != Some(Emit::Asm) || args.output.is_some() {
        return refuse(format!(
            "{name} is an ELF object, not a rule file: `pfc load {name}` loads a pfc object as it is, and `pfc compile {name} --emit asm` lists its code"
        ));
    }
    let bytes = match input::read_limited(path, "object", input::MAX_OBJECT) {
        Ok(bytes) => bytes,
        Err(message) => return refuse(message),
    };
    let object = match pfc_compiler::object::BpfObject::parse(&bytes) {
        Ok(object) => object,
        Err(error) => return refuse(format!("{name}: {error}")),
    };
    let listing = match pfc_compiler::bpf::disassemble_code(&object.code, &object.relocations) {
        Ok(listing) => listing,
        Err(error) => return refuse(format!("{name}: its code cannot be listed: {error}")),
    };
    let mut out = format!("; {name}: program `{}`, {} instructions\n", object.program_name, object.insn_count());
    if let Ok(manifest) = pfc_compiler::object::read_manifest(&bytes) {
        let (hook, default, rules) = (manifest.hook, manifest.default.as_str(), manifest.rules.len());
        out.push_str(&format!("; pfc {}: hook {hook}, {rules} rules, default {default}\n", manifest.pfc_version));
    }
    for (index, map) in object.maps.iter().enumerate() {
        out.push_str(&format!("; map {index}: {}\n", map.name));
    }
    out.push_str(&listing);
    print!("{}", escape(&out));
    ExitCode::SUCCESS
}

/// Compiles one file or filter; writes the object unless only a listing was asked for.
pub fn run(args: &CompileArgs) -> ExitCode {
    crate::memory::prepare_for_compile();
    let mut report = Report::new(args.format);
    if args.emit.is_some() && args.output.as_deref().is_some_and(input::is_stdio) {
        return report::usage_error(
            "compile",
            "--emit prints to standard output, so the object cannot go there too (-o -)",
        );
    }
    let (sources, default_output) = match (&args.file, &args.pcap_filter) {
        (_, Some(expression)) => {
            if args.output.is_none() && args.emit.is_none() {
                eprintln!("error: --pcap-filter needs -o OUT.o (or --emit asm|ir)");
                return ExitCode::from(2);
            }
            (source::Sources::parse(pcap_filter_rules(expression, args.verdict, args.hook), Path::new("-")), None)
        }
        (Some(path), None) if input::is_stdio(path) && args.output.is_none() && args.emit.is_none() => {
            return report::usage_error(
                "compile",
                "rules from standard input need -o OUT.o (or -o - for standard output)",
            );
        }
        (Some(path), None) if input::starts_like_elf(path) => return list_object(path, args),
        (Some(path), None) => match source::read_with_includes(path) {
            Ok(sources) => (sources, Some(path.with_extension("o")).filter(|_| !input::is_stdio(path))),
            Err(message) => {
                report.io_error(&message);
                return report.finish();
            }
        },
        (None, None) => return ExitCode::from(2),
    };
    if !sources.readable {
        report.add_sources(&sources.parsed.map, &sources.parsed.diagnostics);
        return report.finish();
    }
    let options = Options { counters: !args.no_counters };
    let (compiled, diagnostics) =
        pfc_compiler::compile::compile_parsed(&sources.parsed, options, args.classifier.form());
    report.add_sources(&sources.parsed.map, &diagnostics);
    let Some(compiled) = compiled else { return report.finish() };
    match args.emit {
        Some(Emit::Asm) => {
            print!("{}", with_rule_locations(&compiled.code.disassemble(), &compiled, &sources.parsed.map))
        }
        Some(Emit::Ir) => print!("{}", pfc_compiler::ir::print(&compiled.filter)),
        None => {}
    }
    let target = args.output.clone().or(default_output);
    if let (Some(target), true) = (target, args.emit.is_none() || args.output.is_some()) {
        if let Some(source) = source_at(&target, &sources.parsed.map) {
            return report::usage_error(
                "compile",
                &format!("the object would overwrite `{source}`, which this compile reads; write it elsewhere with -o"),
            );
        }
        if let Err(error) = write(&target, &compiled.object) {
            report.io_error(&error);
            return report.finish();
        }
        if args.format == Format::Human {
            eprintln!(
                "{}: {} rules, {} instructions, {} bytes -> {}",
                escape(sources.name()),
                compiled.program.rules.len(),
                compiled.code.insns.len(),
                compiled.object.len(),
                escape(&target_name(&target))
            );
        }
    }
    let code = report.finish();
    // The process ends right after this: freeing a 10k-rule compile's structures one
    // allocation at a time costs ~44 M instructions (ipc 10k, callgrind) for nothing.
    std::mem::forget(compiled);
    std::mem::forget(sources);
    code
}

/// The listing with each rule's comment (`; rule 3 `ssh`: drop`) followed by where the
/// rule is written (`at rules.pf:7:1`), in whichever file of the includes that is.
fn with_rule_locations(listing: &str, compiled: &Compiled, map: &SourceMap) -> String {
    let mut out = String::with_capacity(listing.len());
    for line in listing.lines() {
        out.push_str(line);
        let rule = line.trim_start().strip_prefix("; rule ").and_then(|rest| rest.split_once(' '));
        let index = rule.and_then(|(index, rest)| Some((index.parse::<usize>().ok()?, rest)));
        if let Some(rule) = index.and_then(|(index, rest)| {
            compiled.program.rules.get(index).filter(|rule| rest.starts_with(&format!("`{}`", rule.name)))
        }) {
            let (file, offset) = map.locate(rule.span.start);
            if let Some(file) = map.files().get(file) {
                let before = &file.text[..offset.min(file.text.len())];
                let line_number = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
                out.push_str(&format!(" at {}:{line_number}:{column}", escape(&file.name)));
            }
        }
        out.push('\n');
    }
    out
}

/// The name of the source file (rule file, include or set file) that `target` is, if
/// it is one of them (the same file, by device and inode, whatever the path).
fn source_at(target: &Path, map: &SourceMap) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    if input::is_stdio(target) {
        return None;
    }
    let written = std::fs::metadata(target).ok()?;
    map.files()
        .iter()
        .map(|file| file.name.as_str())
        .find(|name| {
            std::fs::metadata(name).is_ok_and(|read| (read.dev(), read.ino()) == (written.dev(), written.ino()))
        })
        .map(str::to_string)
}

/// Writes the object to `target`, or to standard output for `-`.
fn write(target: &Path, object: &[u8]) -> Result<(), String> {
    let written = if input::is_stdio(target) {
        let mut stdout = std::io::stdout().lock();
        if stdout.is_terminal() {
            return Err("<stdout>: is a terminal; redirect the object to a file or a pipe".to_string());
        }
        stdout.write_all(object).and_then(|()| stdout.flush())
    } else {
        write_whole(target, object)
    };
    written.map_err(|error| format!("{}: cannot write: {error}", target_name(target)))
}

/// Writes a regular file (or a new one) whole or not at all: into a temporary file
/// beside it, then renamed over it, so a compile killed mid-write leaves the old object.
/// The replaced file's permissions carry over. Anything else (a symbolic link, a device,
/// a pipe) is written in place: renaming over it would replace the link or the device.
fn write_whole(target: &Path, object: &[u8]) -> std::io::Result<()> {
    let existing = std::fs::symlink_metadata(target);
    let permissions = match &existing {
        Ok(metadata) if metadata.file_type().is_file() => Some(metadata.permissions()),
        Ok(_) => return std::fs::write(target, object),
        Err(_) => None,
    };
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return std::fs::write(target, object);
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".pfc-{}.tmp", std::process::id()));
    let temporary = dir.join(temporary_name);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temporary)?;
        file.write_all(object)?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        std::fs::rename(&temporary, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// How the output is named in messages: `<stdout>` for `-`.
fn target_name(target: &Path) -> String {
    if input::is_stdio(target) {
        "<stdout>".to_string()
    } else {
        target.display().to_string()
    }
}

/// The rule file a `--pcap-filter` one-liner stands for; diagnostics point into it.
fn pcap_filter_rules(expression: &str, verdict: VerdictArg, hook: HookArg) -> SourceFile {
    let (matching, other) = match verdict {
        VerdictArg::Drop => ("drop", "pass"),
        VerdictArg::Pass => ("pass", "drop"),
    };
    let hook = hook.point().keywords();
    let quoted = expression.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
    let text = format!("hook {hook}\ndefault {other}\nrule pcap_filter: {matching} if pcap \"{quoted}\"\n");
    SourceFile { name: "<--pcap-filter>".to_string(), text, problem: None }
}
