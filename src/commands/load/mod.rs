//! `pfc load RULES|OBJ.o --iface IF [--hook …] [--mode …] [--force]`: compile (or read a
//! pfc object, recognised by the ELF magic, and its manifest), load into the kernel,
//! attach and pin; an existing pfc filter at the same place is replaced atomically.
//! Prints what it did and how long compile (or reading), kernel load and attach took.
//!
//! A rule file's dynamic sets' files are read while the rule file compiles
//! ([`set_files`]); a file that reader does not take whole (anything but plain addresses
//! and prefixes of the set's families, within its size) sends the rule file through the
//! compiler again with its set files read there, which reports or accepts it exactly as
//! `pfc check` does.

mod set_files;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pfc_compiler::codegen::Options;
use pfc_compiler::object::{self, Manifest};
use pfc_runtime::attach::sets::SetKey;
use pfc_runtime::attach::LoadRequest;
use pfc_runtime::pins::Hook;

use super::compile::ClassifierArg;
use super::filters::{self, HookArg, ModeArg};
use crate::escape::escape;
use crate::report::Report;
use crate::{input, source, Format};

/// Arguments of `pfc load`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The rule file (`.pf`), or an object written by `pfc compile` (`.o`).
    file: PathBuf,
    /// The interface to attach to.
    #[arg(long)]
    iface: String,
    /// Where to attach (default: the rule file's `hook`; they must agree).
    #[arg(long, value_enum)]
    hook: Option<HookArg>,
    /// XDP mode: `auto` tries native and falls back to generic.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    mode: ModeArg,
    /// Detach a non-pfc XDP program that is in the way (not atomic).
    #[arg(long)]
    force: bool,
    /// Seconds to wait for another `pfc load`/`unload` of the same interface and hook.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = crate::commands::interval::parse_lock_timeout)]
    lock_timeout: std::time::Duration,
    /// With a rule file: the classifier's form, as `pfc compile --classifier` (an object
    /// keeps the form it was compiled in).
    #[arg(long, value_enum, default_value_t = ClassifierArg::Auto)]
    classifier: ClassifierArg,
    /// Where pins and records live.
    #[command(flatten)]
    state: filters::StateArgs,
}

/// What is loaded: compiled from a rule file or read from a pfc object.
struct Loadable {
    /// How messages name the input.
    name: String,
    /// The ELF object.
    object: Vec<u8>,
    /// Its manifest.
    manifest: Manifest,
    /// `compile` or `read object`, and how long it took.
    prepared: (&'static str, Duration),
    /// Each dynamic set's initial contents (map keys), by set index.
    set_contents: Vec<Vec<SetKey>>,
    /// The compiler's warnings, summed up when the load is done.
    report: Option<Report>,
}

/// Runs `pfc load`.
pub fn run(args: &LoadArgs) -> ExitCode {
    if let Err(code) = filters::check_iface(&args.iface) {
        return code;
    }
    let object = input::starts_like_elf(&args.file);
    if object && args.classifier != ClassifierArg::Auto {
        return filters::usage(&format!(
            "{} is an object: its classifier's form was chosen when it was compiled \
             (`pfc compile --classifier`)",
            args.file.display()
        ));
    }
    let loadable = if object { read_object(&args.file) } else { compile(&args.file, args.classifier) };
    let loadable = match loadable {
        Ok(loadable) => loadable,
        Err(code) => return code,
    };
    let file_point = loadable.manifest.hook;
    let point = args.hook.map(HookArg::point).unwrap_or(file_point);
    if point != file_point {
        // An object was compiled for its hook; a rule file names it, or is xdp without a
        // `hook` statement (language.md §2).
        let compiled_for = match loadable.report {
            None => format!("was compiled for {file_point}"),
            Some(_) => format!("is for {file_point} (its `hook` statement; xdp when it has none)"),
        };
        return filters::usage(&format!(
            "{} {compiled_for}, but --hook is {point}: the hook is part of the compiled program; change one of them",
            escape(&loadable.name),
        ));
    }
    if point != Hook::Xdp && args.mode != ModeArg::Auto {
        return filters::usage("--mode native/generic applies to XDP only; TC filters attach with TCX links");
    }
    let request = LoadRequest {
        iface: &args.iface,
        point,
        mode: args.mode.request(),
        force: args.force,
        object: &loadable.object,
        manifest: loadable.manifest.clone(),
        source: std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone()).display().to_string(),
        set_contents: loadable.set_contents,
    };
    let outcome = match filters::live(&args.state)
        .with_lock_timeout(args.lock_timeout)
        .with_waiting_notice(filters::notice)
        .load(&request)
    {
        Ok(outcome) => outcome,
        Err(error) => return filters::fail(&error),
    };
    for notice in &outcome.notices {
        eprintln!("notice: {}", escape(notice));
    }
    let (step, took) = loadable.prepared;
    println!(
        "{} {} on {} {} ({}): program {}, {} rules; {step} {:.1} ms, kernel load {:.1} ms, {} {:.1} ms",
        if outcome.replaced { "replaced filter with" } else { "loaded" },
        escape(&loadable.name),
        args.iface,
        point.as_str(),
        outcome.mode.as_str(),
        outcome.prog_id,
        loadable.manifest.rules.len(),
        took.as_secs_f64() * 1e3,
        outcome.kernel_load.as_secs_f64() * 1e3,
        if outcome.replaced { "swap" } else { "attach" },
        outcome.attach.as_secs_f64() * 1e3,
    );
    if outcome.replaced {
        println!("counter copy before the swap {:.1} ms", outcome.counter_copy.as_secs_f64() * 1e3);
        println!("counters kept: {}; reset: {}", list(&outcome.counters_kept), list(&outcome.counters_reset));
    }
    loadable.report.map_or(ExitCode::SUCCESS, Report::finish)
}

/// Compiles the rule file (diagnostics rendered on failure), reading its dynamic sets'
/// files at the same time ([`set_files`]); when one is not read there, compiles it again
/// with the set files read by the compiler.
fn compile(path: &Path, classifier: ClassifierArg) -> Result<Loadable, ExitCode> {
    if input::is_stdio(path) {
        // Standard input cannot be read a second time.
        return compile_reading_set_files(path, classifier);
    }
    let sources = match source::read_deferring_dynamic_sets(path) {
        Ok(sources) if sources.readable => sources,
        // Reported as ever by the compiler's own read.
        _ => return compile_reading_set_files(path, classifier),
    };
    let deferred = sources.parsed.deferred_set_files();
    let files = sources.parsed.map.files();
    let (compiled, diagnostics, took, read) = std::thread::scope(|scope| {
        // A thread the OS refuses (pids.max, ulimit -u) leaves its file to the compiler's read.
        let reading: Vec<_> = deferred
            .iter()
            .map(|&index| {
                let reader =
                    std::thread::Builder::new().spawn_scoped(scope, move || set_files::read(&files[index].text));
                (index, reader.ok())
            })
            .collect();
        let started = Instant::now();
        let (compiled, diagnostics) =
            pfc_compiler::compile::compile_parsed(&sources.parsed, Options { counters: true }, classifier.form());
        let took = started.elapsed();
        let read: Vec<_> = reading
            .into_iter()
            .map(|(index, thread)| (index, thread.and_then(|thread| thread.join().ok().flatten())))
            .collect();
        (compiled, diagnostics, took, read)
    });
    let Some(compiled) = compiled else { return compile_reading_set_files(path, classifier) };
    let Some(mut set_contents) = static_set_keys(&compiled) else { return Err(ExitCode::from(1)) };
    for (set, contents) in compiled.program.dynamic_sets.iter().zip(set_contents.iter_mut()) {
        *contents = match set.unread_file {
            None => set.keys(),
            Some(file) => {
                let lines = read.iter().find(|(index, _)| *index == file).and_then(|(_, lines)| lines.as_ref());
                match lines.and_then(|lines| set_files::keys(set, lines)) {
                    Some(keys) => keys,
                    None => return compile_reading_set_files(path, classifier),
                }
            }
        };
    }
    let mut report = Report::new(Format::Human);
    report.add_sources(&sources.parsed.map, &diagnostics);
    Ok(Loadable {
        set_contents,
        name: sources.name().to_string(),
        object: compiled.object,
        manifest: compiled.manifest,
        prepared: ("compile", took),
        report: Some(report),
    })
}

/// Static sets held in maps: their keys as the object holds them (what `pfc load OBJ.o`
/// writes too), by set index; `None` (reported) when they do not read back.
fn static_set_keys(compiled: &pfc_compiler::compile::Compiled) -> Option<Vec<Vec<SetKey>>> {
    let keys = object::read_set_contents(&compiled.object, &compiled.manifest).ok().and_then(set_keys);
    if keys.is_none() {
        eprintln!("error: internal compiler error: the compiled object's static-set contents do not read back");
    }
    keys
}

/// Compiles the rule file with its set files read by the compiler (diagnostics rendered
/// on failure).
fn compile_reading_set_files(path: &Path, classifier: ClassifierArg) -> Result<Loadable, ExitCode> {
    let mut report = Report::new(Format::Human);
    let sources = match source::read_with_includes(path) {
        Ok(sources) => sources,
        Err(message) => {
            report.io_error(&message);
            return Err(report.finish());
        }
    };
    if !sources.readable {
        report.add_sources(&sources.parsed.map, &sources.parsed.diagnostics);
        return Err(report.finish());
    }
    let started = Instant::now();
    let (compiled, diagnostics) =
        pfc_compiler::compile::compile_parsed(&sources.parsed, Options { counters: true }, classifier.form());
    let took = started.elapsed();
    report.add_sources(&sources.parsed.map, &diagnostics);
    let Some(compiled) = compiled else { return Err(report.finish()) };
    // Static sets held in maps: the object's keys; dynamic sets: the rule file's contents.
    let Some(mut set_contents) = static_set_keys(&compiled) else { return Err(ExitCode::from(1)) };
    for (set, contents) in compiled.program.dynamic_sets.iter().zip(set_contents.iter_mut()) {
        *contents = set.keys();
    }
    Ok(Loadable {
        set_contents,
        name: sources.name().to_string(),
        object: compiled.object,
        manifest: compiled.manifest,
        prepared: ("compile", took),
        report: Some(report),
    })
}

/// Each set's keys as the runtime writes them; `None` if a key has another size.
fn set_keys(contents: Vec<Vec<Vec<u8>>>) -> Option<Vec<Vec<SetKey>>> {
    contents.into_iter().map(|keys| keys.into_iter().map(|key| SetKey::try_from(key).ok()).collect()).collect()
}

/// Reads a pfc object and its manifest; anything else is refused (exit 1) with what it is.
fn read_object(path: &Path) -> Result<Loadable, ExitCode> {
    let name = input::display_name(path);
    let refuse = |message: String| {
        eprintln!("error: {}", escape(&message));
        ExitCode::from(1)
    };
    let started = Instant::now();
    let bytes = input::read_limited(path, "pfc object", input::MAX_OBJECT).map_err(refuse)?;
    let manifest = object::read_manifest(&bytes)
        .map_err(|error| refuse(format!("{name}: not a pfc object: {}", filters::chain_with(&error, ": "))))?;
    match object::check_digest(&bytes, &manifest) {
        Ok(()) => {}
        Err(object::DigestError::Missing) => {
            return Err(refuse(format!(
                "{name} holds no digest of its code and maps (compiled by a pfc before they were written, or not by pfc compile), so pfc cannot tell whether it was changed since; compile it again"
            )))
        }
        Err(error) => {
            return Err(refuse(format!(
                "{name} was changed after pfc compiled it ({}); compile it again",
                filters::chain_with(&error, ": ")
            )))
        }
    }
    // pfc's reader took it; libbpf reads more of the ELF (headers, symbols): a file it
    // cannot open was damaged, which is the file's fault, not a pfc bug (exit 3).
    if let Err(error) = pfc_runtime::kernel::check_opens(&bytes) {
        return Err(refuse(format!(
            "{name}: libbpf cannot open it ({}): it was changed after pfc compiled it, or damaged; compile it again",
            filters::chain_with(&error, ": ")
        )));
    }
    if manifest.counters.is_none() {
        return Err(refuse(format!(
            "{name}: compiled with --no-counters; pfc load needs the per-rule counters (compile it again without)"
        )));
    }
    // The object holds the keys of its static sets held in maps, but no elements of its
    // dynamic sets: those start empty (`pfc set` fills them).
    let set_contents = object::read_set_contents(&bytes, &manifest)
        .map_err(|error| refuse(format!("{name}: {}", filters::chain_with(&error, ": "))))?;
    let set_contents =
        set_keys(set_contents).ok_or_else(|| refuse(format!("{name}: a static set's keys are not set keys")))?;
    Ok(Loadable {
        name,
        object: bytes,
        manifest,
        prepared: ("read object", started.elapsed()),
        set_contents,
        report: None,
    })
}

/// Names, or their count when there are too many to read.
fn list(names: &[String]) -> String {
    match names.len() {
        0 => "none".to_string(),
        1..=20 => names.join(", "),
        n => format!("{n} rules ({}, …)", names[..5].join(", ")),
    }
}
