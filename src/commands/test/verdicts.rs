//! `pfc test RULES --pcap FILE --verdicts`: a capture in, one JSON line per frame out,
//! in order: `{"packet":0,"verdict":"drop","rule":"m"}`, `"rule":null` for the default,
//! and with `--kernel` `{"packet":3,"verdict":null,"rule":null,"skipped":"…"}` for frames
//! the kernel's test run refuses. An empty capture prints nothing and says so on stderr.
//! With `--direction`/`--mac`, frames of the other direction print nothing (numbers stay
//! the capture's) and stderr says how many there were.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use pfc_compiler::program::Program;
use pfc_compiler::testcase::pcap::read_capture;

use super::direction::{Counts, Selection};
use super::engine::{Engine, Ran};
use super::{internal, Stop};
use crate::escape::escape;
use crate::input;

/// Prints the verdict of every frame of `path`.
pub(super) fn run(
    engine: &mut Engine<'_>,
    program: &Program,
    path: &Path,
    selection: &Selection,
) -> Result<ExitCode, Stop> {
    let name = input::display_name(path);
    let bytes = input::read_limited(path, "capture", input::MAX_CAPTURE).map_err(|message| Stop::Input { message })?;
    let capture = read_capture(&bytes).map_err(|error| Stop::Input { message: format!("{name}: {error}") })?;
    if capture.packets.is_empty() {
        eprintln!("note: {}: the capture holds no packets", escape(&name));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(note) = capture.cut_note() {
        eprintln!("note: {}: {note}", escape(&name));
    }
    // Rule names as JSON once, not per packet.
    let rule_json: Vec<String> = program.rules.iter().map(|rule| serde_json::json!(rule.name).to_string()).collect();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut directions = Counts::default();
    for (index, packet) in capture.packets.iter().enumerate() {
        if !selection.judges(packet, &mut directions) {
            continue;
        }
        let written = match engine.run_at(packet, capture.times_ns.get(index).copied().unwrap_or(0)) {
            Ok(Ran::Decided(outcome)) => {
                let rule = outcome.rule.map_or("null", |rule| rule_json[rule].as_str());
                writeln!(out, r#"{{"packet":{index},"verdict":"{}","rule":{rule}}}"#, outcome.verdict.as_str())
            }
            Ok(Ran::Refused(reason)) => {
                let reason = serde_json::json!(reason);
                writeln!(out, r#"{{"packet":{index},"verdict":null,"rule":null,"skipped":{reason}}}"#)
            }
            Err(error) => {
                let _ = out.flush();
                return Err(internal(&error, &format!("{name}: packet {index}"), packet));
            }
        };
        if written.is_err() {
            // stdout closed (`| head`): stop quietly, like other command-line tools.
            return Ok(ExitCode::SUCCESS);
        }
    }
    let _ = out.flush();
    if selection.mac.is_some() {
        eprintln!("note: {}", selection.describe(&directions));
    }
    Ok(ExitCode::SUCCESS)
}
