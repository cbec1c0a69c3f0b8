//! `pfc test --pcap --direction in|out|any --mac MAC` through the real binary, on a
//! capture tcpdump took on one interface (`tests/pcap_direction/both-directions.pcap`,
//! made by `capture.sh`): frames it sent, frames it received, and one between two other
//! hosts. Every command line of `tests/pcap_direction/runs.txt` runs in that directory;
//! exit codes, stdout and stderr go into one snapshot. And the directions partition the
//! capture: `in` and `out` judge disjoint frames, each as `any` does, and `any` judges
//! exactly one more frame (the one between other hosts).

mod support;

use std::collections::BTreeMap;

use support::{pfc_in, repo};

/// This test's directory.
fn dir() -> std::path::PathBuf {
    repo().join("tests/pcap_direction")
}

#[test]
fn every_run_matches_its_snapshot() {
    let runs = std::fs::read_to_string(dir().join("runs.txt")).expect("runs.txt");
    let mut out = String::new();
    for line in runs.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#')) {
        let args: Vec<&str> = line.split_whitespace().collect();
        let run = pfc_in(&dir(), &args);
        run.assert_no_crash(line);
        out.push_str(&format!("$ pfc {line}\nexit {}\n", run.code));
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            if !text.is_empty() {
                out.push_str(&format!("--- {name}\n{text}"));
            }
        }
        out.push('\n');
    }
    insta::assert_snapshot!("runs", out);
}

/// `--verdicts` lines by packet number.
fn verdicts(extra: &[&str]) -> BTreeMap<u64, String> {
    let mut args = vec!["test", "ingress.pf", "--pcap", "both-directions.pcap", "--verdicts"];
    args.extend_from_slice(extra);
    let run = pfc_in(&dir(), &args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run.stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (value["packet"].as_u64().expect("a packet number"), line.to_string())
        })
        .collect()
}

#[test]
fn directions_partition_the_capture() {
    const HOST: &str = "02:00:5e:10:00:0a";
    let received = verdicts(&["--mac", HOST, "--direction", "in"]);
    let sent = verdicts(&["--mac", HOST, "--direction", "out"]);
    let every = verdicts(&["--mac", HOST, "--direction", "any"]);
    assert_eq!(every, verdicts(&[]), "--direction any judges what no --direction judges");
    assert_eq!((received.len(), sent.len(), every.len()), (5, 5, 11));
    for (packet, line) in received.iter().chain(&sent) {
        assert_eq!(every.get(packet), Some(line), "packet {packet}: judged alike in one direction and in any");
    }
    assert!(received.keys().all(|packet| !sent.contains_key(packet)), "a frame both received and sent");
    let neither: Vec<&u64> = every.keys().filter(|p| !received.contains_key(p) && !sent.contains_key(p)).collect();
    assert_eq!(neither, [&10], "only the frame between two other hosts is neither");
    // Seen from the other end of the veth, sent and received swap.
    assert_eq!(verdicts(&["--mac", "02:00:5e:10:00:0b", "--direction", "in"]).keys().collect::<Vec<_>>(), {
        sent.keys().collect::<Vec<_>>()
    });
}
