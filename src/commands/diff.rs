//! `pfc diff OLD.pf NEW.pf`: which packets the two rule sets decide differently
//! (`pfc_compiler::analysis::diff` does the work; this reads, prints and writes files).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pfc_compiler::analysis::diff;
use pfc_compiler::program::Program;
use pfc_compiler::sources::SourceMap;

use crate::report::Report;
use crate::{source, Format};

/// `pfc diff` arguments.
#[derive(Args)]
pub struct DiffArgs {
    /// The rule set before the change.
    old: PathBuf,
    /// The rule set after the change.
    new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Write a case file pinning the new rule set's verdicts on the witness packets.
    #[arg(long, value_name = "FILE")]
    cases: Option<PathBuf>,
}

/// The `schema` of `pfc diff --format json` (docs/cli.md): bumped whenever its shape changes.
pub const DIFF_SCHEMA: &str = "pfc.diff/1";

/// Exit 0 when every packet gets the same verdict, 1 otherwise: some packet is confirmed
/// to change, regions may change without a confirmed packet (unknown atoms), or the
/// input is bad. Exit 2 stays reserved for command-line errors, as in every command.
pub fn run(args: &DiffArgs) -> ExitCode {
    let (Some((old, _)), Some((new, _))) = (checked(&args.old, args.format), checked(&args.new, args.format)) else {
        return ExitCode::from(1);
    };
    let result = diff::diff(&old, &new);
    match args.format {
        Format::Human => print!("{}", diff::render(&result, &old, &new)),
        Format::Json => {
            let mut document = diff::to_json(&result, &old, &new);
            document["schema"] = serde_json::json!(DIFF_SCHEMA);
            println!("{document}");
        }
    }
    if let Some(path) = &args.cases {
        if let Err(error) = std::fs::write(path, diff::cases(&result, &new)) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(1);
        }
    }
    if result.equivalent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The checked program of one rule file and its sources, or its diagnostics printed.
pub(crate) fn checked(path: &std::path::Path, format: Format) -> Option<(Program, SourceMap)> {
    let mut report = Report::new(format);
    let sources = match source::read_with_includes(path) {
        Ok(sources) => sources,
        Err(message) => {
            report.io_error(&message);
            let _ = report.finish();
            return None;
        }
    };
    let (program, diagnostics) = match sources.readable {
        true => pfc_compiler::check_parsed(&sources.parsed),
        false => (None, sources.parsed.diagnostics.clone()),
    };
    if program.is_none() {
        report.add_sources(&sources.parsed.map, &diagnostics);
        let _ = report.finish();
    }
    Some((program?, sources.parsed.map))
}
