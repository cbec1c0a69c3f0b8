//! Kills during `pfc load` (part of `tests/load_attach.rs`): with `PFC_TEST_PAUSE_AT`
//! pfc stops at each step of a first load and of a replace, and the test kills it there
//! with SIGKILL or SIGTERM. After every kill `status` shows the program the kernel runs,
//! `stats` labels that program's counters with its own rule names, and the next `load`
//! succeeds; while replaces are killed, a stream of packets that both rule sets drop
//! never gets through (no moment without a filter).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::concurrent::{kernel_xdp_prog, stats_labels, status_entry};
use super::set_kill::kill_paused;
use super::*;

/// The steps of a load, in order (`pfc_runtime::attach::guard::Step`).
const STEPS: [&str; 7] = ["locked", "loaded", "intent", "swapped", "counted", "pinned", "recorded"];
/// Steps after which the new program runs.
const RUNS_NEW_FROM: usize = 3;

/// Starts `pfc load FILE` paused at `step`, kills it there with `signal`; whether it paused.
fn kill_at(ns: &str, iface: &str, file: &str, step: &str, signal: i32) {
    kill_paused(ns, &["load", file, "--iface", iface], step, signal);
}

fn rule_names(tag: &str) -> Vec<String> {
    vec![format!("{tag}_keep"), format!("{tag}_other")]
}

fn rules_text(tag: &str) -> String {
    let names = rule_names(tag);
    let (keep, other) = (&names[0], &names[1]);
    format!("hook xdp\ndefault pass\nrule {keep}: drop if udp.dport == 7001\nrule {other}: pass if tcp.dport == 9\n")
}

/// Checks that `status` and `stats` tell the truth about what the kernel runs, with the
/// labels of `expected` (the rule set of that program); the program id.
fn check_truth(ns: &str, iface: &str, expected: &[String], case: &str) -> u64 {
    let running = kernel_xdp_prog(ns, iface).unwrap_or_else(|| panic!("{case}: nothing attached"));
    let status = status_entry(ns, iface).unwrap_or_else(|| panic!("{case}: status lists nothing"));
    assert_eq!(status["prog_id"].as_u64(), Some(running), "{case}: status {status}");
    assert_eq!(status["state"], "attached", "{case}: {status}");
    let (counted, names, problem) = stats_labels(ns, iface);
    assert_eq!(counted, running, "{case}: stats reads the running program");
    assert_eq!(names, expected, "{case}: stats labels ({problem})");
    running
}

#[test]
fn a_kill_at_every_step_of_a_load_or_replace_leaves_a_truthful_filter_and_no_gap() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("k");
    let (ns, iface) = (topology.b.clone(), topology.veth_b.clone());
    let sets: Vec<(Vec<String>, String)> =
        ["ka", "kb"].iter().map(|tag| (rule_names(tag), topology.rules(tag, &rules_text(tag)))).collect();
    let mut kills = 0;

    // First loads: before the link is pinned nothing runs, and the next load starts over.
    for (at, step) in STEPS.iter().enumerate().filter(|(_, s)| !matches!(**s, "counted" | "pinned")) {
        for signal in [libc::SIGKILL, libc::SIGTERM] {
            let case = format!("first load killed at {step} by signal {signal}");
            kill_at(&ns, &iface, &sets[0].1, step, signal);
            kills += 1;
            if at < RUNS_NEW_FROM {
                assert_eq!(kernel_xdp_prog(&ns, &iface), None, "{case}: nothing runs yet");
                let status = status_entry(&ns, &iface);
                assert!(status.as_ref().is_none_or(|s| s["prog_id"].is_null()), "{case}: {status:?}");
            } else {
                check_truth(&ns, &iface, &sets[0].0, &case);
            }
            let loaded = pfc_ok(&ns, &["load", &sets[0].1, "--iface", &iface]);
            assert!(loaded.starts_with(if at < RUNS_NEW_FROM { "loaded" } else { "replaced" }), "{case}: {loaded}");
            check_truth(&ns, &iface, &sets[0].0, &case);
            pfc_ok(&ns, &["unload", "--iface", &iface]);
        }
    }

    // Replaces, under a stream of packets both rule sets drop.
    pfc_ok(&ns, &["load", &sets[0].1, "--iface", &iface]);
    let stop_receiver = Arc::new(AtomicBool::new(false));
    let receiver = udp_receiver(&topology.b, 7001, stop_receiver.clone());
    let (stop_sender, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let sender = replace::stream_udp(&topology.a, 7001, stop_sender.clone(), sent.clone());
    let mut current = 0;
    for repeat in 0..3 {
        for (at, step) in STEPS.iter().enumerate() {
            for signal in [libc::SIGKILL, libc::SIGTERM] {
                let case = format!("replace {repeat} killed at {step} by signal {signal}");
                let next = 1 - current;
                kill_at(&ns, &iface, &sets[next].1, step, signal);
                kills += 1;
                let runs = if at < RUNS_NEW_FROM { current } else { next };
                check_truth(&ns, &iface, &sets[runs].0, &case);
                // The next load succeeds and replaces whatever runs.
                let other = 1 - runs;
                let replaced = pfc_ok(&ns, &["load", &sets[other].1, "--iface", &iface]);
                assert!(replaced.starts_with("replaced"), "{case}: {replaced}");
                check_truth(&ns, &iface, &sets[other].0, &case);
                current = other;
            }
        }
    }
    stop_sender.store(true, Ordering::SeqCst);
    sender.join().expect("sender");
    stop_receiver.store(true, Ordering::SeqCst);
    let received = receiver.join().expect("receiver");
    let sent = sent.load(Ordering::SeqCst);
    println!("{kills} kills at {} steps (SIGKILL and SIGTERM): {sent} packets streamed during the replace kills, {received} got through", STEPS.len());
    assert!(sent > 0, "the stream ran");
    assert_eq!(received, 0, "a packet got through while a replace was killed");
    pfc_ok(&ns, &["unload", "--iface", &iface]);
}

#[test]
fn a_second_writer_waits_for_the_lock_and_gives_up_with_a_clear_message() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("w");
    let (ns, iface) = (topology.b.clone(), topology.veth_b.clone());
    let file = topology.rules("wait", &rules_text("kw"));
    // The first writer holds the lock, paused right after taking it.
    let mut first = pfc_command(&ns, &["load", &file, "--iface", &iface])
        .env("PFC_TEST_PAUSE_AT", "locked")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pfc starts");
    let mut line = String::new();
    BufReader::new(first.stderr.take().expect("stderr")).read_line(&mut line).expect("stderr readable");
    assert_eq!(line.trim(), "pfc: paused at locked");
    let second = pfc(&ns, &["load", &file, "--iface", &iface, "--lock-timeout", "0.3"]);
    let unload = pfc(&ns, &["unload", "--iface", &iface, "--hook", "xdp", "--lock-timeout", "0.3"]);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGKILL) }, 0);
    first.wait().expect("first pfc ends");
    for (what, output) in [("load", &second), ("unload", &unload)] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("another pfc load or unload is working on `{iface}` at xdp")),
            "{what}: {stderr}"
        );
        assert!(stderr.contains("--lock-timeout"), "{what}: {stderr}");
        assert!(stderr.contains("notice: another pfc load or unload is working on"), "{what} says it waits: {stderr}");
        assert!(stderr.contains("waiting up to 0.3 s"), "{what}: {stderr}");
    }
    // The lock died with the killed writer: the next load goes through.
    let loaded = pfc_ok(&ns, &["load", &file, "--iface", &iface]);
    assert!(loaded.starts_with("loaded"), "{loaded}");
    pfc_ok(&ns, &["unload", "--iface", &iface]);
}
