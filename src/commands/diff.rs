//! `pfc diff OLD.pf NEW.pf`: which packets the two rule sets decide differently
//! (`pfc_compiler::analysis::diff` does the work; this reads, prints and writes files).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pfc_compiler::analysis::{diff, replay};
use pfc_compiler::program::Program;
use pfc_compiler::sources::SourceMap;
use pfc_compiler::testcase::pcap::read_capture;

use crate::escape::escape;
use crate::report::Report;
use crate::{input, source, Format};

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
    /// Write the witness packets (one per confirmed region, in the order printed) to
    /// this pcap file.
    #[arg(long, value_name = "FILE")]
    witnesses: Option<PathBuf>,
    /// Also replay this pcap/pcapng capture (`-` for standard input) through both rule
    /// sets: the frames whose verdict changes, counted per old -> new rule, with the
    /// first few frame numbers.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
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
    let capture = match &args.pcap {
        Some(path) => match capture_replay(path, &old, &new) {
            Ok(replayed) => Some((input::display_name(path), replayed)),
            Err(message) => {
                eprintln!("error: {}", escape(&message));
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let result = diff::diff(&old, &new);
    match args.format {
        Format::Human => {
            print!("{}", diff::render(&result, &old, &new));
            if let Some((name, replayed)) = &capture {
                print!("{}", escape(&replay::render(replayed, name, &old, &new)));
            }
        }
        Format::Json => {
            let mut document = diff::to_json(&result, &old, &new);
            document["schema"] = serde_json::json!(DIFF_SCHEMA);
            if let Some((_, replayed)) = &capture {
                document["capture"] = replay::to_json(replayed, &old, &new);
            }
            println!("{document}");
        }
    }
    if let Some(path) = &args.cases {
        if let Err(error) = std::fs::write(path, diff::cases(&result, &new)) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(1);
        }
    }
    if let Some(path) = &args.witnesses {
        if let Err(error) = std::fs::write(path, diff::witnesses_pcap(&result)) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(1);
        }
    }
    let capture_changes = capture.is_some_and(|(_, replayed)| replayed.changed_frames() > 0);
    if result.equivalent() && !capture_changes {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The capture at `path` replayed through both programs.
fn capture_replay(path: &std::path::Path, old: &Program, new: &Program) -> Result<replay::Replay, String> {
    let bytes = input::read_limited(path, "capture", input::MAX_CAPTURE)?;
    let capture = read_capture(&bytes).map_err(|error| format!("{}: {error}", input::display_name(path)))?;
    Ok(replay::replay(old, new, &capture.packets))
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
