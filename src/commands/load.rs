//! `pfc load RULES --iface IF [--hook …] [--mode …] [--force]`: compile, load into the
//! kernel, attach and pin; an existing pfc filter at the same place is replaced
//! atomically. Prints what it did and how long compile, kernel load and attach took.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use pfc_compiler::codegen::Options;
use pfc_runtime::attach::LoadRequest;
use pfc_runtime::pins::{Hook, Manifest};

use super::filters::{self, HookArg, ModeArg};
use crate::escape::escape;
use crate::report::Report;
use crate::{source, Format};

/// Arguments of `pfc load`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The rule file (`.pf`).
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
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    lock_timeout: f64,
    /// Where pins and records live.
    #[command(flatten)]
    state: filters::StateArgs,
}

/// Runs `pfc load`.
pub fn run(args: &LoadArgs) -> ExitCode {
    if let Err(code) = filters::check_iface(&args.iface) {
        return code;
    }
    let mut report = Report::new(Format::Human);
    let sources = match source::read_with_includes(&args.file) {
        Ok(sources) => sources,
        Err(message) => {
            report.io_error(&message);
            return report.finish();
        }
    };
    if !sources.readable {
        report.add_sources(&sources.parsed.map, &sources.parsed.diagnostics);
        return report.finish();
    }
    let started = Instant::now();
    let (compiled, diagnostics) =
        pfc_compiler::compile::compile_parsed(&sources.parsed, Options { counters: true }, None);
    let compile_time = started.elapsed();
    report.add_sources(&sources.parsed.map, &diagnostics);
    let Some(compiled) = compiled else { return report.finish() };
    let file_point = compiled.program.hook;
    let point = args.hook.map(HookArg::point).unwrap_or(file_point);
    if point != file_point {
        return filters::usage(&format!(
            "{} says `hook {}`, but --hook is {point}: XDP and TC programs differ; change one of them",
            sources.name(),
            file_point.keywords(),
        ));
    }
    if point != Hook::Xdp && args.mode != ModeArg::Auto {
        return filters::usage("--mode native/generic applies to XDP only; TC filters attach with TCX links");
    }
    let manifest: Manifest = match serde_json::from_value(compiled.manifest.clone()) {
        Ok(manifest) => manifest,
        Err(error) => return filters::usage(&format!("internal error: the compiler's manifest: {error}")),
    };
    let request = LoadRequest {
        iface: &args.iface,
        point,
        mode: args.mode.request(),
        force: args.force,
        object: &compiled.object,
        manifest,
        source: std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone()).display().to_string(),
        set_contents: pfc_compiler::program::dynamic::initial_entries(&compiled.program.dynamic_sets)
            .into_iter()
            .map(|(_, keys)| keys.iter().map(|key| key.to_vec()).collect())
            .collect(),
    };
    let outcome = match filters::live(&args.state)
        .with_lock_timeout(filters::seconds(args.lock_timeout))
        .with_waiting_notice(filters::notice)
        .load(&request)
    {
        Ok(outcome) => outcome,
        Err(error) => return filters::fail(&error),
    };
    for notice in &outcome.notices {
        eprintln!("notice: {}", escape(notice));
    }
    println!(
        "{} {} on {} {} ({}): program {}, {} rules; compile {:.1} ms, kernel load {:.1} ms, {} {:.1} ms",
        if outcome.replaced { "replaced filter with" } else { "loaded" },
        escape(sources.name()),
        args.iface,
        point.as_str(),
        outcome.mode.as_str(),
        outcome.prog_id,
        compiled.program.rules.len(),
        compile_time.as_secs_f64() * 1e3,
        outcome.kernel_load.as_secs_f64() * 1e3,
        if outcome.replaced { "swap" } else { "attach" },
        outcome.attach.as_secs_f64() * 1e3,
    );
    if outcome.replaced {
        println!("counter copy before the swap {:.1} ms", outcome.counter_copy.as_secs_f64() * 1e3);
        println!("counters kept: {}; reset: {}", list(&outcome.counters_kept), list(&outcome.counters_reset));
    }
    report.finish()
}

/// Names, or their count when there are too many to read.
fn list(names: &[String]) -> String {
    match names.len() {
        0 => "none".to_string(),
        1..=20 => names.join(", "),
        n => format!("{n} rules ({}, …)", names[..5].join(", ")),
    }
}
