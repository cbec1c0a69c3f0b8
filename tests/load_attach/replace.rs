//! Replace, lifecycle and timing tests of `pfc load` (part of `tests/load_attach.rs`):
//! no packet leaks through 50 replaces, a broken rule set leaves the old filter working,
//! `unload` leaves nothing behind, and load/replace timings by rule count.

use std::collections::BTreeSet;

use super::*;

/// Two rule sets that both drop UDP to 7001 but are different programs.
fn leak_sets(hook: &str) -> [String; 2] {
    let hook = hook.replace('-', " ");
    [
        format!("hook {hook}\ndefault pass\nrule keep: drop if udp.dport == 7001\n"),
        format!(
            "hook {hook}\ndefault pass\nrule extra: pass if tcp.dport == 9999\nrule keep: drop if udp.dport == 7001\n\
             rule more: drop if udp.dport == 7005\n"
        ),
    ]
}

/// The program id `pfc status --format json` shows for an interface and hook.
fn prog_id(ns: &str, iface: &str, hook: &str) -> Option<u64> {
    status_filters(ns)
        .into_iter()
        .find(|s| s["iface"] == iface && s["hook"] == hook)
        .and_then(|s| s["prog_id"].as_u64())
}

/// Streams UDP to `port` from `ns` until `stop`; returns how many were sent.
pub(super) fn stream_udp(
    ns: &str,
    port: u16,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    in_ns(ns, move || {
        let socket = UdpSocket::bind((SENDER_IP, 0)).expect("sender binds");
        let mut attempts = 0u64;
        while !stop.load(Ordering::SeqCst) {
            // ENOBUFS or a full queue only delays the stream.
            if socket.send_to(&[0x55; PAYLOAD], (RECEIVER_IP, port)).is_ok() {
                sent.fetch_add(1, Ordering::SeqCst);
            }
            attempts += 1;
            // Pause now and then rather than after every packet: sleeps are coarse on a
            // loaded machine, and the stream must stay dense while the replaces run.
            if attempts % 8 == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    })
}

fn check_no_leak(hook: &str, mode: &str, tag: &str) {
    let mut topology = Topology::new(tag);
    let sets = leak_sets(hook);
    let files = [topology.rules("leak-a", &sets[0]), topology.rules("leak-b", &sets[1])];
    let broken = topology.rules("broken", "default pass\nrule keep: drop if udp.dport ==\n");
    let (ns, iface) = topology.place(hook);
    let load = |file: &str| {
        let mut args = vec!["load", file, "--iface", iface, "--hook", hook];
        if hook == "xdp" {
            args.extend(["--mode", mode]);
        }
        pfc(ns, &args)
    };
    let first = load(&files[0]);
    let dropped_before = tx_dropped(&topology.a, &topology.veth_a);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));

    let stop_receiver = Arc::new(AtomicBool::new(false));
    let receiver = udp_receiver(&topology.b, 7001, stop_receiver.clone());
    let (stop_sender, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let sender = stream_udp(&topology.a, 7001, stop_sender.clone(), sent.clone());
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let sent_before = sent.load(Ordering::SeqCst);
    for round in 0..50 {
        let output = load(&files[(round + 1) % 2]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("replaced"),
            "round {round}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let replacing = started.elapsed();
    let sent_during = sent.load(Ordering::SeqCst) - sent_before;
    // A broken rule set and a hook mismatch fail before the kernel: the old filter stays.
    let before = prog_id(ns, iface, hook).expect("attached");
    let output = load(&broken);
    assert_eq!(output.status.code(), Some(1), "broken rules: {}", String::from_utf8_lossy(&output.stderr));
    let other_hook = if hook == "xdp" { "tc-ingress" } else { "xdp" };
    let output = pfc(ns, &["load", &files[0], "--iface", iface, "--hook", other_hook]);
    assert_eq!(output.status.code(), Some(2), "hook mismatch: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(prog_id(ns, iface, hook), Some(before), "the old filter is still attached");
    std::thread::sleep(Duration::from_millis(100));
    stop_sender.store(true, Ordering::SeqCst);
    sender.join().expect("sender");
    stop_receiver.store(true, Ordering::SeqCst);
    let received = receiver.join().expect("receiver");
    let sent = sent.load(Ordering::SeqCst);
    // Datagrams the sender's veth dropped (the peer's queue was full) never reached an
    // ingress hook; TC egress sees them before that.
    let lost_on_the_wire =
        if hook == "tc-egress" { 0 } else { tx_dropped(&topology.a, &topology.veth_a) - dropped_before };
    let kept = counter(&stats(ns, iface, hook), "keep").0;
    println!(
        "{hook} {mode}: 50 replaces in {:.0} ms while streaming {sent} packets ({sent_during} during the replaces, {:.0} packets/s) to a dropped port: {received} received; \
         `keep` counted {kept} (carried over by name across the replaces; {lost_on_the_wire} dropped by veth before the hook)",
        replacing.as_secs_f64() * 1e3,
        sent_during as f64 / replacing.as_secs_f64()
    );
    assert!(sent_during >= 200, "the sender streamed only {sent_during} packets during the 50 replaces");
    assert_eq!(received, 0, "{hook}: packets leaked during replace");
    // Exact: the late counts of each replaced program are taken after an RCU grace period.
    assert_eq!(
        kept,
        sent - lost_on_the_wire,
        "{hook}: `keep` counted {kept} of {sent} packets sent over 50 replaces ({lost_on_the_wire} dropped by veth before the hook)"
    );
    pfc_ok(ns, &["unload", "--iface", iface, "--hook", hook]);
}

#[test]
fn no_leak_during_50_xdp_native_replaces() {
    skip_unless!(no_kernel());
    check_no_leak("xdp", "native", "rn");
}

#[test]
fn no_leak_during_50_xdp_generic_replaces() {
    skip_unless!(no_kernel());
    check_no_leak("xdp", "generic", "rg");
}

#[test]
fn no_leak_during_50_tc_ingress_replaces() {
    skip_unless!(no_kernel());
    check_no_leak("tc-ingress", "auto", "ri");
}

#[test]
fn no_leak_during_50_tc_egress_replaces() {
    skip_unless!(no_kernel());
    check_no_leak("tc-egress", "auto", "re");
}

/// The interface's transmit drops (`ip -s link`): for veth, datagrams the peer could not
/// queue.
fn tx_dropped(ns: &str, iface: &str) -> u64 {
    let text = run_ok("ip", &["-n", ns, "-s", "-j", "link", "show", "dev", iface]);
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    json[0]["stats64"]["tx"]["dropped"].as_u64().unwrap_or_else(|| panic!("no tx drops in {text}"))
}

/// Ids `bpftool (prog|link) show` lists.
fn bpftool_ids(object: &str) -> BTreeSet<u64> {
    let text = run_ok("bpftool", &["--json", object, "show"]);
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    json.as_array().map(|items| items.iter().filter_map(|i| i["id"].as_u64()).collect()).unwrap_or_default()
}

#[test]
fn status_and_unload_leave_no_pins_links_or_programs() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("u");
    let (progs_before, links_before) = (bpftool_ids("prog"), bpftool_ids("link"));
    let mut ours = Vec::new();
    for hook in ["xdp", "tc-ingress", "tc-egress"] {
        let rules = topology.rules(&format!("life-{hook}"), &rule_set(hook));
        let (ns, iface) = topology.place(hook);
        pfc_ok(ns, &["load", &rules, "--iface", iface, "--hook", hook]);
        let filters = status_filters(ns);
        let entry = filters
            .iter()
            .find(|s| s["iface"] == iface && s["hook"] == hook)
            .cloned()
            .unwrap_or_else(|| panic!("status lacks {iface} {hook}: {filters:?}"));
        assert_eq!(entry["state"], "attached", "{entry}");
        assert_eq!(entry["rules"], 3, "{entry}");
        assert_eq!(entry["source"].as_str(), Some(rules.as_str()), "{entry}");
        ours.push((entry["prog_id"].as_u64().expect("prog id"), entry["link_id"].as_u64().expect("link id")));
    }
    // --iface lists only that interface's filters; the deprecated --json prints the
    // `filters` array alone (the shape before --format) and says it is deprecated.
    let (ns, iface) = topology.place("xdp");
    let only = pfc_ok(ns, &["status", "--iface", iface, "--format", "json"]);
    let only: Value = serde_json::from_str(&only).expect("status json");
    let listed: Vec<&str> =
        only["filters"].as_array().expect("filters").iter().filter_map(|f| f["iface"].as_str()).collect();
    assert!(!listed.is_empty() && listed.iter().all(|name| *name == iface), "--iface {iface}: {only}");
    let legacy = pfc(ns, &["status", "--json"]);
    let array: Value = serde_json::from_slice(&legacy.stdout).expect("status --json is JSON");
    assert_eq!(array.as_array().map(Vec::len), Some(status_filters(ns).len()), "{array}");
    assert!(String::from_utf8_lossy(&legacy.stderr).contains("deprecated; use `--format json`"));
    let legacy = pfc(ns, &["stats", "--iface", iface, "--hook", "xdp", "--json"]);
    let sample: Value = serde_json::from_slice(&legacy.stdout).expect("stats --json is JSON");
    assert_eq!(sample["schema"], "pfc.stats/2", "stats --json prints the --format json document");
    assert!(String::from_utf8_lossy(&legacy.stderr).contains("deprecated; use `--format json`"));
    let human = pfc_ok(ns, &["status", "--iface", "lo"]);
    assert_eq!(human, "no pfc filters on lo\n");
    let (progs_loaded, links_loaded) = (bpftool_ids("prog"), bpftool_ids("link"));
    for (prog, link) in &ours {
        assert!(
            progs_loaded.contains(prog) && links_loaded.contains(link),
            "bpftool shows program {prog} and link {link}"
        );
    }
    pfc_ok(&topology.b, &["unload", "--iface", &topology.veth_b]);
    pfc_ok(&topology.a, &["unload", "--iface", &topology.veth_a, "--hook", "tc-egress"]);
    let text = pfc_ok(&topology.b, &["status", "--format", "json"]);
    for iface in [&topology.veth_a, &topology.veth_b] {
        assert!(!text.contains(&format!("\"{iface}\"")), "status still lists {iface}: {text}");
        assert!(!PathBuf::from(format!("/sys/fs/bpf/pfc/{iface}")).exists(), "pins of {iface} remain");
        assert!(!PathBuf::from(format!("/run/pfc/{iface}")).exists(), "state of {iface} remains");
    }
    // Programs are freed after an RCU grace period: wait for it (the wait ends as soon as
    // they are gone; the bound is only there so a leak fails instead of hanging).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (progs_after, links_after) = loop {
        let (progs, links) = (bpftool_ids("prog"), bpftool_ids("link"));
        let gone = ours.iter().all(|(prog, link)| !progs.contains(prog) && !links.contains(link));
        if gone || Instant::now() > deadline {
            break (progs, links);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for (prog, link) in &ours {
        assert!(!progs_after.contains(prog), "program {prog} is still loaded");
        assert!(!links_after.contains(link), "link {link} still exists");
    }
    // Other tests (and other processes) load programs concurrently: anything new since
    // `before` must at least not be one of ours.
    let new_progs: Vec<&u64> = progs_after.difference(&progs_before).collect();
    let new_links: Vec<&u64> = links_after.difference(&links_before).collect();
    println!(
        "unload: {} programs and {} links of ours gone; bpftool before/after differ by {} programs, {} links (concurrent tests)",
        ours.len(),
        ours.len(),
        new_progs.len(),
        new_links.len()
    );
}

/// (compile, kernel load, attach or swap) in ms from `pfc load`'s summary line.
fn timings(stdout: &str) -> Option<(f64, f64, f64)> {
    let number = |key: &str| -> Option<f64> {
        let at = stdout.find(key)? + key.len();
        stdout[at..].trim_start().split(' ').next()?.parse().ok()
    };
    Some((number("compile")?, number("kernel load")?, number("attach").or_else(|| number("swap"))?))
}

#[test]
fn load_and_replace_timings_by_rule_count() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("t");
    let (ns, iface) = (topology.b.clone(), topology.veth_b.clone());
    let mut table = Vec::new();
    for count in [10usize, 1_000, 10_000] {
        let mut text = String::from("hook xdp\ndefault pass\n");
        text.extend((0..count).map(|i| format!("rule r{i}: drop if udp.dport == {}\n", 10_000 + i)));
        let rules = topology.rules(&format!("timing-{count}"), &text);
        let load = pfc(&ns, &["load", &rules, "--iface", &iface, "--mode", "native"]);
        if !load.status.success() {
            let stderr = String::from_utf8_lossy(&load.stderr);
            assert!(stderr.contains("E0020"), "{count} rules: only a kernel limit (E0020) may refuse: {stderr}");
            table.push(format!("{count:>6} rules: refused by pfc with E0020 (kernel limit), nothing loaded"));
            continue;
        }
        let replace = pfc_ok(&ns, &["load", &rules, "--iface", &iface, "--mode", "native"]);
        let (first, again) = (String::from_utf8_lossy(&load.stdout).into_owned(), replace);
        let (c1, k1, a1) = timings(&first).unwrap_or_else(|| panic!("no timings in {first}"));
        let (c2, k2, a2) = timings(&again).unwrap_or_else(|| panic!("no timings in {again}"));
        let copy = again
            .split("counter copy before the swap ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or("?")
            .to_string();
        table.push(format!(
            "{count:>6} rules: load compile {c1:.1} ms, kernel load {k1:.1} ms, attach {a1:.1} ms; \
             replace compile {c2:.1} ms, kernel load {k2:.1} ms, counter copy {copy} ms, swap {a2:.1} ms"
        ));
        pfc_ok(&ns, &["unload", "--iface", &iface, "--hook", "xdp"]);
    }
    println!("pfc load timings (XDP native on veth, debug build of pfc):\n{}", table.join("\n"));
}
