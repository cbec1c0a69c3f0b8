//! Pins of set maps (part of `tests/load_attach.rs`): each set's maps are pinned under the
//! filter's directory as `sets/<set>/<family>_gen<G>` and the generation array as
//! `set_gen`, naming exactly the maps the running program uses (checked against the
//! kernel: link → program → map ids and names, with bpftool). They follow `pfc set`,
//! rule-file replaces (kept, renamed and dropped sets) and `unload`; a planted pin does
//! not redirect `pfc set add` and is repaired by it; after a kill at every step of a load
//! and a replace the next writer leaves the pins consistent with the kernel; an
//! unprivileged user changes nothing and is told why.

use std::collections::BTreeMap;
use std::path::Path;

use super::concurrent::kernel_xdp_prog;
use super::set_kill::kill_paused;
use super::sets::list;
use super::*;

/// `bpftool -j ARGS` as JSON.
fn bpftool(args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let text = run_ok("bpftool", &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bpftool {args:?}: {e}: {text}"))
}

/// Every pin under the filter's directory that is no program, link or counter pin:
/// its path below the directory → the id of the map it names.
fn set_pins(iface: &str) -> BTreeMap<String, u64> {
    let dir = PathBuf::from(format!("/sys/fs/bpf/pfc/{iface}/xdp"));
    let mut pins = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return pins };
    let mut stack: Vec<PathBuf> = entries.map(|e| e.expect("entry").path()).collect();
    while let Some(path) = stack.pop() {
        let relative = path.strip_prefix(&dir).expect("below").display().to_string();
        if ["prog", "link", "counters"].contains(&relative.as_str()) {
            continue;
        }
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).expect("readable").map(|e| e.expect("entry").path()));
            continue;
        }
        let id = bpftool(&["map", "show", "pinned", &path.display().to_string()])["id"].as_u64();
        pins.insert(relative, id.unwrap_or_else(|| panic!("{} names no map", path.display())));
    }
    pins
}

/// The pins the running program's set maps should have, from the kernel alone: the
/// program the interface runs, its maps' names (`pfc_set_<index><letter>`, the letter
/// the family and generation) and `sets`, the rule file's set names by index.
fn kernel_set_pins(ns: &str, iface: &str, sets: &[&str]) -> BTreeMap<String, u64> {
    let mut pins = BTreeMap::new();
    let Some(prog) = kernel_xdp_prog(ns, iface) else { return pins };
    let prog = bpftool(&["prog", "show", "id", &prog.to_string()]);
    for id in prog["map_ids"].as_array().expect("map ids") {
        let id = id.as_u64().expect("id");
        let map = bpftool(&["map", "show", "id", &id.to_string()]);
        let name = map["name"].as_str().expect("name");
        if name == "pfc_set_gen" {
            pins.insert("set_gen".to_string(), id);
            continue;
        }
        let Some(rest) = name.strip_prefix("pfc_set_") else { continue };
        let (index, letter) = rest.split_at(rest.len() - 1);
        let family =
            ["ipv4_gen0", "ipv4_gen1", "ipv6_gen0", "ipv6_gen1", "number_gen0", "number_gen1", "mac_gen0", "mac_gen1"]
                [usize::from(letter.as_bytes()[0] - b'a')];
        let set = sets[index.parse::<usize>().expect("index")];
        pins.insert(format!("sets/{set}/{family}"), id);
    }
    pins
}

/// Asserts the set pins are exactly the running program's set maps.
fn assert_pins_match_kernel(ns: &str, iface: &str, sets: &[&str], case: &str) {
    assert_eq!(set_pins(iface), kernel_set_pins(ns, iface, sets), "{case}");
}

/// Entries of the map pinned at `pin` below the filter's directory.
fn pinned_entries(iface: &str, pin: &str) -> usize {
    let dump = bpftool(&["map", "dump", "pinned", &format!("/sys/fs/bpf/pfc/{iface}/xdp/{pin}")]);
    dump.as_array().expect("entries").len()
}

const FIRST: &str = "hook xdp\ndefault pass\n\
     set banned: ip dynamic size 100 = { 192.0.2.0/24, 2001:db8::/32 }\n\
     set ports: port dynamic = { 7001 }\n\
     rule ban: drop if ip.src in banned\n\
     rule port: drop if udp.dport in ports\n";
const FIRST_SETS: [&str; 2] = ["banned", "ports"];

/// `banned` kept, `ports` gone, `blocked` new.
const SECOND: &str = "hook xdp\ndefault pass\n\
     set blocked: ipv4 dynamic = { 198.51.100.0/24 }\n\
     set banned: ip dynamic size 100 = { 192.0.2.0/24 }\n\
     rule ban: drop if ip.src in banned\n\
     rule block: drop if ip.dst in blocked\n";
const SECOND_SETS: [&str; 2] = ["blocked", "banned"];

#[test]
fn set_maps_are_pinned_by_set_family_and_generation_and_follow_changes_and_replaces() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sp");
    let (first, second) = (topology.rules("pins1", FIRST), topology.rules("pins2", SECOND));
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &first, "--iface", &vb]);
    let pins = set_pins(&vb);
    let names: Vec<&str> = pins.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "set_gen",
            "sets/banned/ipv4_gen0",
            "sets/banned/ipv4_gen1",
            "sets/banned/ipv6_gen0",
            "sets/banned/ipv6_gen1",
            "sets/ports/number_gen0",
            "sets/ports/number_gen1"
        ]
    );
    assert_pins_match_kernel(&b, &vb, &FIRST_SETS, "first load");
    // What a bpftool user sees: the rule file's elements in generation 0.
    assert_eq!(pinned_entries(&vb, "sets/banned/ipv4_gen0"), 1);
    assert_eq!(pinned_entries(&vb, "sets/banned/ipv6_gen0"), 1);
    assert_eq!(pinned_entries(&vb, "sets/ports/number_gen0"), 1);

    pfc_ok(&b, &["set", "add", "--iface", &vb, "banned", "203.0.113.0/24"]);
    assert_eq!(set_pins(&vb), pins, "add changes entries, not maps");
    assert_eq!(pinned_entries(&vb, "sets/banned/ipv4_gen0"), 2);
    pfc_ok(&b, &["set", "replace", "--iface", &vb, "banned", "10.9.0.0/16"]);
    assert_eq!(set_pins(&vb), pins, "replace flips generations, not maps");
    assert_eq!((pinned_entries(&vb, "sets/banned/ipv4_gen0"), pinned_entries(&vb, "sets/banned/ipv4_gen1")), (0, 1));

    // A replace of the rule file: new maps, the same places; `banned` keeps its contents.
    let replaced = pfc(&b, &["load", &first, "--iface", &vb]);
    assert!(replaced.status.success());
    let replaced = String::from_utf8_lossy(&replaced.stderr);
    assert!(replaced.contains("dynamic sets kept from the replaced filter: banned (1), ports (1)"), "{replaced}");
    let after = set_pins(&vb);
    assert_eq!(after.keys().collect::<Vec<_>>(), pins.keys().collect::<Vec<_>>());
    assert!(after.iter().all(|(pin, id)| pins[pin] != *id), "every pin names a new map: {pins:?} {after:?}");
    assert_pins_match_kernel(&b, &vb, &FIRST_SETS, "replace keeping both sets");
    assert_eq!(pinned_entries(&vb, "sets/banned/ipv4_gen0"), 1, "the kept contents, in generation 0");

    // `ports` goes, `blocked` comes, `banned` stays (its set index changed).
    pfc_ok(&b, &["load", &second, "--iface", &vb]);
    assert_pins_match_kernel(&b, &vb, &SECOND_SETS, "replace with other sets");
    let names: Vec<String> = set_pins(&vb).into_keys().collect();
    assert!(names.contains(&"sets/blocked/ipv4_gen0".to_string()), "{names:?}");
    assert!(!names.iter().any(|name| name.starts_with("sets/ports") || name.contains("_next")), "{names:?}");
    assert!(!Path::new(&format!("/sys/fs/bpf/pfc/{vb}/xdp/sets/ports")).exists());
    assert_eq!(list(&topology, "banned"), ["10.9.0.0/16"]);

    pfc_ok(&b, &["unload", "--iface", &vb]);
    assert!(!Path::new(&format!("/sys/fs/bpf/pfc/{vb}")).exists(), "unload leaves no pins");
}

#[test]
fn a_planted_set_pin_does_not_redirect_set_add_and_is_repaired() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("pp");
    let first = topology.rules("planted", FIRST);
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &first, "--iface", &vb]);
    let pins = set_pins(&vb);
    let dir = format!("/sys/fs/bpf/pfc/{vb}/xdp");
    // A trie of the same shape, pinned where banned's IPv4 map is; stale pins beside.
    let planted = format!("{dir}/sets/banned/ipv4_gen0");
    std::fs::remove_file(&planted).expect("pin removed");
    run_ok(
        "bpftool",
        &[
            "map", "create", &planted, "type", "lpm_trie", "key", "8", "value", "16", "entries", "16", "name",
            "planted", "flags", "1",
        ],
    );
    let planted_id = bpftool(&["map", "show", "pinned", &planted])["id"].as_u64().expect("id");
    // A second pin outside pfc's directory keeps the planted map alive to look at after.
    let keeper = RemoveOnDrop(PathBuf::from(format!("/sys/fs/bpf/pfc-test-planted-{}", std::process::id())));
    run_ok("bpftool", &["map", "pin", "id", &planted_id.to_string(), &keeper.0.display().to_string()]);
    let counters = format!("{dir}/counters");
    for stale in ["sets/gone/ipv4_gen0", "sets_next/banned/ipv4_gen0", "sets/banned/mac_gen0"] {
        let path = format!("{dir}/{stale}");
        std::fs::create_dir_all(Path::new(&path).parent().expect("parent")).expect("dir");
        // Any map will do: the counter map, pinned again.
        let counters_id = bpftool(&["map", "show", "pinned", &counters])["id"].as_u64().expect("id");
        run_ok("bpftool", &["map", "pin", "id", &counters_id.to_string(), &path]);
    }
    // Readers ignore the pins: status counts from the program's own maps.
    let status = status_filters(&b);
    let filter = status.iter().find(|f| f["iface"] == vb.as_str()).expect("listed");
    assert_eq!(filter["sets"][0]["count"], 2, "{filter}");

    // The add goes into the program's map, not the planted one, and the sender is banned.
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = udp_receiver(&b, 7003, stop.clone());
    send_udp(&topology.a, 7003, 5);
    stop.store(true, Ordering::SeqCst);
    assert_eq!(receiver.join().expect("receiver"), 5, "not banned yet");
    pfc_ok(&b, &["set", "add", "--iface", &vb, "banned", &format!("{SENDER_IP}/32")]);
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = udp_receiver(&b, 7003, stop.clone());
    send_udp(&topology.a, 7003, 5);
    stop.store(true, Ordering::SeqCst);
    assert_eq!(receiver.join().expect("receiver"), 0, "the add reached the running program's map");
    let planted_dump = bpftool(&["map", "dump", "pinned", &keeper.0.display().to_string()]);
    assert_eq!(planted_dump.as_array().map(Vec::len), Some(0), "the planted map stays empty: {planted_dump}");
    // ... and the writer repaired the pins: the real maps again, the stale ones gone.
    assert_eq!(set_pins(&vb), pins);
    assert_pins_match_kernel(&b, &vb, &FIRST_SETS, "after the planted pin");
    assert_eq!(pinned_entries(&vb, "sets/banned/ipv4_gen0"), 2);
    pfc_ok(&b, &["unload", "--iface", &vb]);
}

/// The steps of a load, in order (as `crash.rs`).
const STEPS: [&str; 7] = ["locked", "loaded", "intent", "swapped", "counted", "pinned", "recorded"];

#[test]
fn after_a_kill_at_every_step_the_next_writer_leaves_set_pins_as_the_kernel_runs() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sq");
    let files = [(topology.rules("killed1", FIRST), FIRST_SETS), (topology.rules("killed2", SECOND), SECOND_SETS)];
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    // First loads: before the swap nothing runs and nothing is left; after it, the
    // filter's sets are pinned once the next writer (`pfc set list`) reconciled.
    for (at, step) in STEPS.iter().enumerate().filter(|(_, s)| !matches!(**s, "counted" | "pinned")) {
        let case = format!("first load killed at {step}");
        kill_paused(&b, &["load", &files[0].0, "--iface", &vb], step, libc::SIGKILL);
        let listed = pfc(&b, &["set", "list", "--iface", &vb, "banned"]);
        if at < 3 {
            assert_eq!(listed.status.code(), Some(1), "{case}: no filter yet");
            assert!(set_pins(&vb).is_empty(), "{case}: {:?}", set_pins(&vb));
            continue;
        }
        assert!(listed.status.success(), "{case}: {}", String::from_utf8_lossy(&listed.stderr));
        assert_pins_match_kernel(&b, &vb, &files[0].1, &case);
        assert!(!set_pins(&vb).is_empty(), "{case}");
        pfc_ok(&b, &["unload", "--iface", &vb]);
    }
    // Replaces between two rule sets with different sets: pins of the program that runs.
    pfc_ok(&b, &["load", &files[0].0, "--iface", &vb]);
    let mut current = 0;
    for ((at, step), signal) in STEPS.iter().enumerate().flat_map(|step| [(step, libc::SIGKILL), (step, libc::SIGTERM)])
    {
        let case = format!("replace killed at {step} by signal {signal}");
        let next = 1 - current;
        kill_paused(&b, &["load", &files[next].0, "--iface", &vb], step, signal);
        let runs = if at < 3 { current } else { next };
        pfc_ok(&b, &["set", "list", "--iface", &vb, "banned"]);
        assert_pins_match_kernel(&b, &vb, &files[runs].1, &case);
        // And the next replace, from there, too.
        let other = 1 - runs;
        pfc_ok(&b, &["load", &files[other].0, "--iface", &vb]);
        assert_pins_match_kernel(&b, &vb, &files[other].1, &format!("{case}, then replaced"));
        current = other;
    }
    pfc_ok(&b, &["unload", "--iface", &vb]);
    assert!(set_pins(&vb).is_empty());
}

#[test]
fn an_unprivileged_user_changes_no_set_and_no_pin() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("su");
    let first = topology.rules("unpriv", FIRST);
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &first, "--iface", &vb]);
    let pins = set_pins(&vb);
    // As user nobody inside the namespace: nsenter switches user after entering it.
    let as_nobody = |args: &[&str]| {
        let mut all =
            vec!["--net=/run/netns/".to_string() + &b, "-S".into(), "65534".into(), "-G".into(), "65534".into()];
        all.push(PFC.to_string());
        all.extend(args.iter().map(|a| a.to_string()));
        Command::new("nsenter").args(&all).output().expect("nsenter runs")
    };
    if !as_nobody(&["--version"]).status.success() {
        println!("skipped: cannot run pfc as user nobody in a namespace (nsenter -S)");
        pfc_ok(&b, &["unload", "--iface", &vb]);
        return;
    }
    for args in [
        vec!["set", "add", "--iface", &vb, "banned", "203.0.113.0/24"],
        vec!["set", "del", "--iface", &vb, "banned", "192.0.2.0/24"],
        vec!["set", "flush", "--iface", &vb, "banned"],
        vec!["set", "list", "--iface", &vb, "banned"],
        vec!["load", &first, "--iface", &vb],
        vec!["unload", "--iface", &vb],
    ] {
        let output = as_nobody(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("permission denied"), "{args:?}: {stderr}");
        assert_eq!(set_pins(&vb), pins, "{args:?} changed a pin");
        assert_eq!(list(&topology, "banned"), ["192.0.2.0/24", "2001:db8::/32"], "{args:?} changed the set");
    }
    pfc_ok(&b, &["unload", "--iface", &vb]);
}
