//! `pfc explain RULES PACKET` and `pfc explain RULES --pcap FILE [--frame N | --index N]`: why one
//! packet gets its verdict (`pfc_compiler::analysis::explain` does the work; this reads
//! the packet and prints). The packet is hex bytes or a packet spec as case files write
//! it.
//!
//! Exit codes: 0 explained; 1 bad rule file, packet or capture; 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pfc_compiler::analysis::explain;
use pfc_compiler::testcase::pcap::read_capture;
use pfc_compiler::testcase::{parse_hex, spec_bytes};

use crate::escape::escape;
use crate::{input, Format};

/// `pfc explain` arguments.
#[derive(Args)]
pub struct ExplainArgs {
    /// The rule file (`.pf`).
    file: PathBuf,
    /// The packet: hex bytes (`0011223344...`, spaces and `:` allowed) or a packet spec
    /// as in case files (`ipv4 src=10.0.0.1 / tcp dport=22`).
    #[arg(required_unless_present = "pcap", conflicts_with = "pcap")]
    packet: Option<String>,
    /// Take the packet from this pcap/pcapng file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// With --pcap: which frame, counted from 0 as `pfc test --pcap --verdicts` numbers
    /// them (default 0, the first). `--index` is the same option.
    #[arg(long, value_name = "N", requires = "pcap", visible_alias = "index")]
    frame: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// The `schema` of `pfc explain --format json` (docs/cli.md): bumped whenever its shape changes.
pub const EXPLAIN_SCHEMA: &str = "pfc.explain/1";

/// Runs `pfc explain`.
pub fn run(args: &ExplainArgs) -> ExitCode {
    if input::is_stdio(&args.file) && args.pcap.as_deref().is_some_and(input::is_stdio) {
        return crate::report::usage_error("explain", "only one of the rule file and --pcap can be `-`");
    }
    let Some((program, map)) = super::diff::checked(&args.file, args.format) else {
        return ExitCode::from(1);
    };
    let packet = match packet(args) {
        Ok(packet) => packet,
        Err(message) => {
            eprintln!("error: {}", escape(&message));
            return ExitCode::from(1);
        }
    };
    let explanation = explain::explain(&program, &packet);
    match args.format {
        Format::Human => print!("{}", escape(&explain::render(&explanation, &program, Some(&map)))),
        Format::Json => {
            let mut document = explain::to_json(&explanation, &program, Some(&map));
            document["schema"] = serde_json::json!(EXPLAIN_SCHEMA);
            println!("{document}");
        }
    }
    ExitCode::SUCCESS
}

/// The frame to explain.
fn packet(args: &ExplainArgs) -> Result<Vec<u8>, String> {
    if let Some(path) = &args.pcap {
        let bytes = input::read_limited(path, "capture", input::MAX_CAPTURE)?;
        let name = input::display_name(path);
        let capture = read_capture(&bytes).map_err(|error| format!("{name}: {error}"))?;
        let index = args.frame.unwrap_or(0);
        return capture.packets.get(index).map(|frame| frame.to_vec()).ok_or_else(|| match capture.packets.len() {
            0 => format!("{name}: has no frames to explain"),
            count => format!("{name}: has {count} frame(s); --frame counts from 0, so the last is {}", count - 1),
        });
    }
    let text = args.packet.as_deref().unwrap_or_default();
    if looks_like_hex(text) {
        return parse_hex(text).map_err(|at| format!("the packet is not hex bytes (at byte {at})"));
    }
    spec_bytes(text).map_err(|error| {
        // A spec of megabytes is named by its start, not echoed whole.
        let shown: String = text.chars().take(SHOWN_SPEC).collect();
        let more = if shown.len() < text.len() {
            format!("… ({} more bytes)", text.len() - shown.len())
        } else {
            String::new()
        };
        format!("the packet spec `{shown}{more}`: {error}")
    })
}

/// How many characters of a bad packet spec its error message shows.
const SHOWN_SPEC: usize = 200;

/// Hex bytes rather than a spec: only hex digits and separators, and at least one byte.
fn looks_like_hex(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_hexdigit).count();
    digits >= 2 && text.chars().all(|c| c.is_ascii_hexdigit() || c.is_whitespace() || c == ':' || c == '-')
}
