//! `pfc watch` on real traffic (part of `tests/load_attach.rs`): the events of logged
//! matches as lines, as `pfc.watch/1` JSON and as a pcapng that tshark reads back with
//! the rule names in the packet comments; a flood of matches is dropped at line rate while
//! the log stays within its limit and watch reports the dropped events; watch follows a
//! replace to the new program's ring buffer; clear errors without a filter, without
//! logged rules and without privileges. SIGINT ends watch with exit 0 and a valid file.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};

use super::*;

/// A `pfc watch` running in the background, started once it has read its baseline.
struct Watcher {
    child: Child,
    stderr: std::thread::JoinHandle<String>,
}

impl Watcher {
    /// Starts `pfc watch ARGS` in `ns` and waits for its "Ctrl-C to stop" line.
    fn start(ns: &str, args: &[&str]) -> Watcher {
        let mut command = pfc_command(ns, &[&["watch"], args].concat());
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("pfc watch starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        stderr.read_line(&mut first).expect("pfc watch's first line");
        assert!(first.contains("Ctrl-C to stop"), "pfc watch did not start: {first}");
        let stderr = std::thread::spawn(move || {
            let mut rest = first;
            let _ = stderr.read_to_string(&mut rest);
            rest
        });
        Watcher { child, stderr }
    }

    /// Sends SIGINT and returns (exit success, stdout, stderr).
    fn interrupt(mut self) -> (bool, String, String) {
        // SAFETY: a plain signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut stdout = String::new();
        self.child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("stdout read");
        let status = self.child.wait().expect("pfc watch exits");
        (status.success(), stdout, self.stderr.join().expect("stderr thread"))
    }
}

/// Sends `count` datagrams from `ns` to the receiver's `port`, `gap` apart.
fn send_udp_gap(ns: &str, port: u16, count: u64, gap: Duration) {
    in_ns(ns, move || {
        let socket = UdpSocket::bind((SENDER_IP, 0)).expect("sender binds");
        for _ in 0..count {
            // ENOBUFS under a flood only loses that datagram from the sender's count.
            let _ = socket.send_to(&[0x55; PAYLOAD], (RECEIVER_IP, port));
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
    })
    .join()
    .expect("sender thread");
}

/// The JSON documents of watch's output with this `schema`; every document has the shape
/// pinned for its schema.
fn documents(stdout: &str, schema: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|doc| support::shapes::assert_pinned(doc) == schema)
        .collect()
}

const EVENT: &str = "pfc.watch/1";
const STATS: &str = "pfc.watch-stats/1";

/// Why tshark cannot read captures here, if it cannot.
fn no_tshark() -> Option<String> {
    missing_tool(&[("tshark", "--version")])
}

const LOGGED: &str = "hook xdp\ndefault pass\nrule udp_log: drop log if udp.dport == 7101\n\
                      rule tcp_log: pass log 128 if tcp.dport == 7102\nrule quiet: drop if udp.dport == 7103\n";

#[test]
fn watch_shows_logged_matches_as_lines_json_and_pcapng() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("w");
    let rules = topology.rules("watch", LOGGED);
    let (ns, iface) = topology.place("xdp");
    pfc_ok(ns, &["load", &rules, "--iface", iface, "--hook", "xdp"]);
    let capture = std::env::temp_dir().join(format!("pfc-watch-{}.pcapng", std::process::id()));
    let _capture_guard = RemoveOnDrop(capture.clone());
    let capture_arg = capture.display().to_string();

    let watcher = Watcher::start(ns, &["--iface", iface, "--format", "json", "--pcapng", &capture_arg]);
    send_udp_gap(&topology.a, 7101, 5, Duration::from_millis(2));
    send_udp_gap(&topology.a, 7103, 3, Duration::from_millis(2));
    let connected = tcp_connects(&topology.a, 7102, Duration::from_millis(300));
    // Events arrive within a poll (100 ms); give a loaded machine ample time.
    std::thread::sleep(Duration::from_millis(700));
    let (ok, stdout, stderr) = watcher.interrupt();
    assert!(ok, "pfc watch fails after SIGINT:\n{stderr}");
    let events = documents(&stdout, EVENT);
    let udp: Vec<&Value> = events.iter().filter(|e| e["rule"] == "udp_log").collect();
    assert_eq!(udp.len(), 5, "one event per UDP datagram to 7101:\n{stdout}");
    for event in &udp {
        assert_eq!(event["verdict"], "drop", "{event}");
        assert_eq!(event["iface"], iface, "{event}");
        assert_eq!(event["frame_len"], FRAME_BYTES, "{event}");
        let summary = event["summary"].as_str().unwrap_or("");
        assert!(
            summary.starts_with(&format!("udp {SENDER_IP}:")) && summary.ends_with(&format!("> {RECEIVER_IP}:7101"))
        );
    }
    let tcp: Vec<&Value> = events.iter().filter(|e| e["rule"] == "tcp_log").collect();
    assert!(!tcp.is_empty() && tcp.iter().all(|e| e["verdict"] == "pass"), "{stdout}");
    assert!(tcp[0]["summary"].as_str().unwrap_or("").ends_with(&format!("> {RECEIVER_IP}:7102 S")), "{stdout}");
    assert!(!connected, "nothing listens on 7102: the SYN passes and is refused");
    assert!(events.iter().all(|e| e["rule"] != "quiet"), "a rule without `log` sends nothing:\n{stdout}");
    let end = documents(&stdout, STATS);
    let last = end.last().unwrap_or_else(|| panic!("no stats document at the end:\n{stdout}"));
    assert_eq!((last["end"].as_bool(), last["dropped"].as_u64()), (Some(true), Some(0)), "{last}");
    let sent: u64 = last["rules"].as_array().expect("rules").iter().map(|r| r["sent"].as_u64().unwrap_or(0)).sum();
    assert_eq!(sent, events.len() as u64, "every event sent since watch started is shown: {last}");
    println!("watch: {} events ({} udp_log, {} tcp_log)", events.len(), udp.len(), tcp.len());

    // The capture, read back by tshark: one packet per event, comments naming rule and verdict.
    if let Some(reason) = no_tshark() {
        println!("skipped the tshark part: {reason}");
    } else {
        let comments = run_ok("tshark", &["-r", &capture_arg, "-T", "fields", "-e", "frame.comment"]);
        let comments: Vec<&str> = comments.lines().collect();
        assert_eq!(comments.len(), events.len(), "{comments:?}");
        assert_eq!(comments.iter().filter(|c| **c == "rule udp_log: drop").count(), 5, "{comments:?}");
        assert!(comments.contains(&"rule tcp_log: pass"), "{comments:?}");
        let ports = run_ok("tshark", &["-r", &capture_arg, "-T", "fields", "-e", "udp.dstport", "-Y", "udp"]);
        assert_eq!(ports.lines().filter(|p| *p == "7101").count(), 5, "{ports}");
    }

    // Lines for people, and --count: events wait in the ring buffer until read.
    send_udp_gap(&topology.a, 7101, 2, Duration::from_millis(2));
    let lines = pfc_ok(ns, &["watch", "--iface", iface, "--count", "2"]);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in lines {
        assert!(line.contains(&format!(" udp_log drop {iface} udp {SENDER_IP}:")), "{line}");
        assert!(line.ends_with(&format!("> {RECEIVER_IP}:7101 ({FRAME_BYTES} bytes)")), "{line}");
    }
}

#[test]
fn a_flood_of_logged_matches_is_dropped_and_its_lost_events_reported() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("f");
    let rules = topology.rules("flood", "hook xdp\ndefault pass\nrule flood: drop log if udp.dport == 7104\n");
    let (ns, iface) = topology.place("xdp");
    pfc_ok(ns, &["load", &rules, "--iface", iface, "--hook", "xdp"]);
    let watcher = Watcher::start(ns, &["--iface", iface, "--format", "json"]);
    const FLOOD: u64 = 3000;
    let started = Instant::now();
    send_udp_gap(&topology.a, 7104, FLOOD, Duration::ZERO);
    let flood_seconds = started.elapsed().as_secs_f64();
    // The program is not held up by the log: traffic to another port still arrives.
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = udp_receiver(&topology.b, 7105, stop.clone());
    send_udp_gap(&topology.a, 7105, 20, Duration::from_millis(1));
    stop.store(true, Ordering::SeqCst);
    assert_eq!(receiver.join().expect("receiver"), 20, "traffic after the flood passes");
    std::thread::sleep(Duration::from_millis(1200));
    let (ok, stdout, stderr) = watcher.interrupt();
    assert!(ok, "{stderr}");

    let matched = counter(&stats(ns, iface, "xdp"), "flood").0;
    let events = documents(&stdout, EVENT).len() as u64;
    let last = documents(&stdout, STATS).pop().unwrap_or_else(|| panic!("no stats:\n{stdout}"));
    let rule = &last["rules"][0];
    let (sent, dropped) = (rule["sent"].as_u64().unwrap_or(0), rule["dropped"].as_u64().unwrap_or(0));
    println!("flood: {matched} matches in {flood_seconds:.3} s, {events} events shown, {sent} sent, {dropped} dropped");
    assert_eq!(sent + dropped, matched, "every match is an event sent or dropped: {last}");
    assert_eq!(events, sent, "watch shows every event sent");
    // The log limit: a burst of 100, then 100 a second while the flood lasts.
    let most = 100 + (100.0 * (flood_seconds + 0.1)).ceil() as u64;
    assert!(sent <= most, "{sent} events in {flood_seconds:.3} s: more than the log limit allows ({most})");
    assert!(matched > most, "the flood must outrun the log limit to test it ({matched} matches)");
    assert_eq!(last["dropped"].as_u64(), Some(dropped), "{last}");
}

#[test]
fn watch_follows_a_replace_and_explains_what_is_missing() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("r");
    let first = topology.rules("first", LOGGED);
    let second = topology.rules(
        "second",
        "hook xdp\ndefault pass\nrule renamed: drop log 0 if udp.dport == 7101\nrule udp_log: drop if udp.dport == 7106\n",
    );
    let quiet = topology.rules("quiet", "hook xdp\ndefault pass\nrule quiet: drop if udp.dport == 7103\n");
    let (ns, iface) = topology.place("xdp");

    // Nothing loaded: exit 1, saying so.
    let output = pfc(ns, &["watch", "--iface", iface, "--hook", "xdp"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("no pfc filter on `{iface}` at xdp")), "{stderr}");

    // A filter without logged rules: exit 1, with what to do.
    pfc_ok(ns, &["load", &quiet, "--iface", iface, "--hook", "xdp"]);
    let output = pfc(ns, &["watch", "--iface", iface]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("has no logged rules: add `log` to a rule"), "{stderr}");

    // Without privileges: exit 1, naming them.
    let mut command = pfc_command(ns, &["watch", "--iface", iface, "--hook", "xdp"]);
    // SAFETY: setuid is async-signal-safe; the child drops root before exec.
    unsafe {
        command.pre_exec(|| if libc::setuid(65534) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) });
    }
    let output = command.output().expect("pfc runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ermission denied"), "{stderr}");

    // Following a replace: the new program's ring, its rule names.
    pfc_ok(ns, &["load", &first, "--iface", iface, "--hook", "xdp"]);
    let watcher = Watcher::start(ns, &["--iface", iface, "--format", "json"]);
    send_udp_gap(&topology.a, 7101, 3, Duration::from_millis(2));
    pfc_ok(ns, &["load", &second, "--iface", iface, "--hook", "xdp"]);
    send_udp_gap(&topology.a, 7101, 4, Duration::from_millis(2));
    // Watch looks at the link twice a second.
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, stdout, stderr) = watcher.interrupt();
    assert!(ok, "{stderr}");
    let events = documents(&stdout, EVENT);
    let rules: Vec<(&str, u64)> =
        events.iter().map(|e| (e["rule"].as_str().unwrap_or("?"), e["prog_id"].as_u64().unwrap_or(0))).collect();
    assert_eq!(rules.iter().filter(|(rule, _)| *rule == "udp_log").count(), 3, "{rules:?}");
    assert_eq!(rules.iter().filter(|(rule, _)| *rule == "renamed").count(), 4, "{rules:?}");
    assert!(stderr.contains("the filter was replaced: now program"), "{stderr}");
    let last = documents(&stdout, STATS).pop().expect("stats at the end");
    assert!(events.iter().all(|e| e["captured"] == 0 || e["rule"] != "renamed"), "log 0 keeps no bytes");
    assert_eq!(last["dropped"], 0, "{last}");
}
