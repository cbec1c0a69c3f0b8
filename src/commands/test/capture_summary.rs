//! `pfc test RULES --pcap FILE` (without `--verdicts`): a capture in, a per-rule summary
//! out: for every rule and the default, the frames it decided, their bytes and its
//! verdict, then the verdict totals; with `--direction`/`--mac` only the frames of one
//! direction are judged and the others counted. `--format json` prints the same as one
//! document with `"schema": "pfc.capture/2"` (docs/cli.md).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use pfc_compiler::program::{Program, Verdict};
use pfc_compiler::testcase::pcap::read_capture;
use serde_json::json;

use super::direction::{format_mac, Counts, Selection};
use super::engine::{Engine, Ran};
use super::output::TestFormat;
use super::{internal, Stop};
use crate::escape::escape;
use crate::input;

/// The `schema` of the JSON summary: bumped whenever its shape changes.
pub const CAPTURE_SCHEMA: &str = "pfc.capture/2";

/// Frames and bytes one rule (or the default) decided.
#[derive(Clone, Copy, Default)]
struct Tally {
    packets: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

/// What a whole capture did.
struct Summary {
    /// One per rule, in order.
    rules: Vec<Tally>,
    default: Tally,
    passed: u64,
    dropped: u64,
    /// Frames the kernel refused to run (`--kernel`).
    skipped: u64,
    /// Frames by direction (with `--mac`).
    directions: Counts,
}

/// Runs every frame of `path` and prints the summary.
pub(super) fn run(
    engine: &mut Engine<'_>,
    program: &Program,
    rules_name: &str,
    path: &Path,
    selection: &Selection,
    format: TestFormat,
    backend: &str,
) -> Result<ExitCode, Stop> {
    let name = input::display_name(path);
    let bytes = input::read_limited(path, "capture", input::MAX_CAPTURE).map_err(|message| Stop::Input { message })?;
    let capture = read_capture(&bytes).map_err(|error| Stop::Input { message: format!("{name}: {error}") })?;
    if let Some(note) = capture.cut_note() {
        eprintln!("note: {}: {note}", escape(&name));
    }
    let mut summary = Summary {
        rules: vec![Tally::default(); program.rules.len()],
        default: Tally::default(),
        passed: 0,
        dropped: 0,
        skipped: 0,
        directions: Counts::default(),
    };
    for (index, packet) in capture.packets.iter().enumerate() {
        if !selection.judges(packet, &mut summary.directions) {
            continue;
        }
        match engine
            .run_at(packet, capture.times_ns.get(index).copied().unwrap_or(0))
            .map_err(|error| internal(&error, &format!("{name}: packet {index}"), packet))?
        {
            Ran::Decided(outcome) => {
                match outcome.rule {
                    Some(rule) => summary.rules[rule].add(packet.len()),
                    None => summary.default.add(packet.len()),
                }
                match outcome.verdict {
                    Verdict::Pass => summary.passed += 1,
                    Verdict::Drop => summary.dropped += 1,
                }
            }
            Ran::Refused(_) => summary.skipped += 1,
        }
    }
    let text = match format {
        TestFormat::Json => json_document(program, rules_name, &name, selection, &summary).to_string() + "\n",
        _ => escape(&human(program, rules_name, &name, selection, &summary, backend, engine.executor())).into_owned(),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn human(
    program: &Program,
    rules_name: &str,
    name: &str,
    selection: &Selection,
    summary: &Summary,
    backend: &str,
    executor: &str,
) -> String {
    let total = summary.passed + summary.dropped + summary.skipped;
    let executor = if executor == "kernel" { String::new() } else { format!(" ({executor})") };
    let mut out = format!("{name}: {total} frames through {rules_name} in the {backend}{executor}\n");
    if selection.mac.is_some() {
        let _ = writeln!(out, "  {}", selection.describe(&summary.directions));
    }
    out.push('\n');
    let width = program.rules.iter().map(|rule| rule.name.len()).max().unwrap_or(0).max("(default)".len());
    let _ = writeln!(out, "  {:<width$}  {:<7} {:>12} {:>16}", "RULE", "VERDICT", "PACKETS", "BYTES");
    let rows = program.rules.iter().map(|rule| (rule.name.as_str(), rule.verdict)).zip(&summary.rules);
    for ((rule, verdict), tally) in rows.chain(std::iter::once((("(default)", program.default), &summary.default))) {
        let _ = writeln!(out, "  {rule:<width$}  {:<7} {:>12} {:>16}", verdict.as_str(), tally.packets, tally.bytes);
    }
    let _ = write!(out, "\n{} passed, {} dropped", summary.passed, summary.dropped);
    if summary.skipped > 0 {
        let _ = write!(out, ", {} skipped", summary.skipped);
    }
    out.push('\n');
    out
}

fn json_document(
    program: &Program,
    rules_name: &str,
    name: &str,
    selection: &Selection,
    summary: &Summary,
) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = program
        .rules
        .iter()
        .zip(&summary.rules)
        .map(|(rule, tally)| {
            json!({ "name": rule.name, "verdict": rule.verdict.as_str(), "packets": tally.packets, "bytes": tally.bytes })
        })
        .collect();
    json!({
        "schema": CAPTURE_SCHEMA,
        "rules_file": rules_name,
        "capture": name,
        "packets": summary.passed + summary.dropped + summary.skipped,
        "passed": summary.passed,
        "dropped": summary.dropped,
        "skipped": summary.skipped,
        "direction": selection.direction.as_str(),
        "mac": selection.mac.as_ref().map(format_mac),
        "not_judged": selection.not_judged(&summary.directions),
        "rules": rules,
        "default": {
            "verdict": program.default.as_str(),
            "packets": summary.default.packets,
            "bytes": summary.default.bytes,
        },
    })
}
