//! `pfc test --pcap` at scale (prints numbers; the exit status says whether every frame
//! agreed): for each ClassBench shape, a set of `PFC_CLASSBENCH_RULES` rules (default
//! 10,000) and a capture of `PFC_CLASSBENCH_PACKETS` of its trace packets (default 10,000;
//! about four in five match a rule, the rest none), written under
//! `target/classbench_pcap/`, then `pfc test RULES --pcap CAPTURE --format json` run by
//! the `pfc` binary next to this example (the rbpf VM, every frame checked against pfc's
//! interpreter: exit 3 on any disagreement). Prints per shape the compile-and-run time,
//! the frames judged, those the default took (must equal the trace's frames that match
//! no rule) and the exit status.
//!
//! Run: `cargo build --release && cargo run --release --example classbench_pcap`
//! (`PFC_CLASSBENCH_SHAPES=acl,fw` picks shapes; `PFC_CLASSBENCH_CLASSIFIER=table` passes
//! `--classifier table` to `pfc test`, and so for `inline` and `auto`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use pfc_compiler::classbench::{self, Shape};

/// The trace's seed (the classbench benchmark's).
const SEED: u64 = 0xc1a5_5be7;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A classic little-endian pcap file of Ethernet frames.
fn pcap(frames: impl Iterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    for (index, frame) in frames.enumerate() {
        out.extend_from_slice(&(index as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

fn main() -> ExitCode {
    let rules = env_number("PFC_CLASSBENCH_RULES", 10_000);
    let packets = env_number("PFC_CLASSBENCH_PACKETS", 10_000);
    let shapes: Vec<Shape> = match std::env::var("PFC_CLASSBENCH_SHAPES") {
        Ok(names) => names.split(',').filter_map(|name| Shape::from_name(name.trim())).collect(),
        Err(_) => Shape::ALL.to_vec(),
    };
    let classifier = std::env::var("PFC_CLASSBENCH_CLASSIFIER").unwrap_or_else(|_| "auto".to_string());
    let exe = std::env::current_exe().expect("the example's path");
    let pfc = exe.parent().and_then(Path::parent).expect("the target directory").join("pfc");
    if !pfc.exists() {
        eprintln!("{} not built; run `cargo build --release` first", pfc.display());
        return ExitCode::FAILURE;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/classbench_pcap");
    std::fs::create_dir_all(&dir).expect("create target/classbench_pcap");
    println!(
        "== pfc test --pcap --classifier {classifier}: {rules} rules, {packets} trace packets per shape \
         (rbpf VM vs interpreter) =="
    );
    let mut all_agree = true;
    for shape in shapes {
        let generated = classbench::generate(shape, rules, packets, SEED);
        let matching = generated.trace.iter().filter(|packet| packet.rule.is_some()).count();
        let rules_path = dir.join(format!("{}-{rules}.pf", shape.name()));
        let pcap_path = dir.join(format!("{}-{rules}-{packets}.pcap", shape.name()));
        std::fs::write(&rules_path, &generated.text).expect("write the rule file");
        let frames = generated.trace.len();
        std::fs::write(&pcap_path, pcap(generated.trace.into_iter().map(|packet| packet.bytes)))
            .expect("write the capture");
        let start = Instant::now();
        let output = Command::new(&pfc)
            .arg("test")
            .arg(&rules_path)
            .arg("--pcap")
            .arg(&pcap_path)
            .args(["--format", "json"])
            .args(["--classifier", &classifier])
            .output()
            .expect("run pfc test");
        let elapsed = start.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
        let judged = summary["packets"].as_u64();
        let defaulted = summary["default"]["packets"].as_u64();
        // The generator's own answer (the interpreter's) for how many frames no rule takes.
        let agree = output.status.success() && defaulted == Some((frames - matching) as u64);
        all_agree &= agree;
        println!(
            "{:<6} {rules:>7} rules {frames:>7} frames ({matching} matching a rule): {:>8.2} s, judged {}, default {}, exit {} ({})",
            shape.name(),
            elapsed.as_secs_f64(),
            judged.map_or("?".to_string(), |n| n.to_string()),
            defaulted.map_or("?".to_string(), |n| n.to_string()),
            output.status.code().map_or("signal".to_string(), |code| code.to_string()),
            if agree { "0 disagreements" } else { "DISAGREEMENT or error" }
        );
        if !agree {
            let stderr = String::from_utf8_lossy(&output.stderr);
            println!("{}", stderr.lines().take(20).collect::<Vec<_>>().join("\n"));
        }
    }
    if all_agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
