//! Dynamic sets on a real veth (part of `tests/load_attach.rs`): `pfc load` writes the
//! rule file's contents, `pfc set add` takes effect on the next packet and `del` likewise,
//! `replace` and `flush` swap the contents, a rule-file replace keeps them, and bad
//! requests (wrong family, unknown set, no filter, beyond the size) exit 1 with the
//! set unchanged; `pfc status` shows each set's count and size; `--hook` picks the filter
//! of one hook when an interface has two.

use super::*;

fn sets_rules() -> String {
    "hook xdp\ndefault pass\n\
     set banned: ip dynamic size 3 = { 192.0.2.0/24 }\n\
     set ports: port dynamic = { 7001 }\n\
     rule ban: drop if ip.src in banned\n\
     rule port: drop if udp.dport in ports\n"
        .to_string()
}

/// Datagrams of 10 sent to `port` that arrive.
fn delivered(topology: &Topology, port: u16) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = udp_receiver(&topology.b, port, stop.clone());
    send_udp(&topology.a, port, 10);
    stop.store(true, Ordering::SeqCst);
    receiver.join().expect("receiver")
}

pub(super) fn list(topology: &Topology, set: &str) -> Vec<String> {
    let json = pfc_ok(&topology.b, &["set", "list", "--iface", &topology.veth_b, set, "--format", "json"]);
    let document: Value = serde_json::from_str(&json).expect("pfc.set/1 JSON");
    assert_eq!(document["schema"], "pfc.set/1");
    if document["count"] != 0 {
        support::shapes::assert_pinned(&document); // an empty list has no element shape
    }
    document["elements"].as_array().expect("elements").iter().map(|e| e.as_str().unwrap_or("?").to_string()).collect()
}

/// The sets `pfc status --format json` shows for the topology's filter (pinned shape):
/// (name, type, kind, size, count) each.
pub(super) fn status_sets(topology: &Topology) -> Vec<(String, String, String, u64, Option<u64>)> {
    let filters = status_filters(&topology.b);
    let filter = filters.iter().find(|f| f["iface"] == topology.veth_b.as_str()).expect("status lists the filter");
    filter["sets"]
        .as_array()
        .expect("sets")
        .iter()
        .map(|set| {
            let text = |key: &str| set[key].as_str().unwrap_or("?").to_string();
            (text("name"), text("type"), text("kind"), set["size"].as_u64().unwrap_or(0), set["count"].as_u64())
        })
        .collect()
}

/// `(name, type, kind, size, count)` of a set as [`status_sets`] gives it.
fn set_row(name: &str, type_: &str, kind: &str, size: u64, count: u64) -> (String, String, String, u64, Option<u64>) {
    (name.to_string(), type_.to_string(), kind.to_string(), size, Some(count))
}

/// `pfc set ARGS` that must fail with exit 1, a message containing `needle`, and no change.
fn refused(topology: &Topology, args: &[&str], needle: &str) {
    let before = list(topology, "banned");
    let output = pfc(&topology.b, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "pfc {args:?}: {stderr}");
    assert!(stderr.contains(needle), "pfc {args:?}: {stderr}");
    assert_eq!(list(topology, "banned"), before, "pfc {args:?} changed the set");
}

#[test]
fn set_changes_take_effect_on_the_next_packet_and_survive_a_replace() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("ds");
    let rules = topology.rules("sets", &sets_rules());
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &rules, "--iface", &vb]);
    assert_eq!(list(&topology, "banned"), ["192.0.2.0/24"]);
    assert_eq!((delivered(&topology, 7001), delivered(&topology, 7003)), (0, 10), "the file's port 7001 drops");

    // The default size of a value set (language.md §6.2).
    let ports_size = status_sets(&topology)[1].3;
    assert_eq!(
        status_sets(&topology),
        [set_row("banned", "ip", "dynamic", 3, 1), set_row("ports", "port", "dynamic", ports_size, 1)]
    );

    pfc_ok(&b, &["set", "add", "--iface", &vb, "banned", SENDER_IP]);
    assert_eq!(delivered(&topology, 7003), 0, "the sender is banned from the next packet on");
    assert_eq!(status_sets(&topology)[0], set_row("banned", "ip", "dynamic", 3, 2), "status counts the added one");
    let human = pfc_ok(&b, &["status", "--iface", &vb]);
    assert!(human.contains("\n  set banned: ip, dynamic, 2 of 3 elements\n"), "{human}");
    assert!(human.contains(&format!("\n  set ports: port, dynamic, 1 of {ports_size} elements\n")), "{human}");
    pfc_ok(&b, &["set", "del", "--iface", &vb, "banned", SENDER_IP]);
    assert_eq!(delivered(&topology, 7003), 10, "unbanned from the next packet on");
    pfc_ok(&b, &["set", "replace", "--iface", &vb, "banned", "10.77.0.0/16", "2001:db8::/32"]);
    assert_eq!(delivered(&topology, 7003), 0, "the replaced contents ban the sender's /16");
    let mut listed = list(&topology, "banned");
    listed.sort();
    assert_eq!(listed, ["10.77.0.0/16", "2001:db8::/32"]);

    // A rule-file replace keeps both sets' contents (same name and type) and says so.
    let output = pfc(&b, &["load", &rules, "--iface", &vb]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("dynamic sets kept from the replaced filter: banned (2), ports (1)"), "{stderr}");
    assert_eq!(delivered(&topology, 7003), 0, "still banned after the replace");

    refused(&topology, &["set", "add", "--iface", &vb, "ports", "10.0.0.1"], "E0008");
    refused(&topology, &["set", "add", "--iface", &vb, "nosuch", "10.0.0.1"], "no dynamic set `nosuch`");
    refused(&topology, &["set", "add", "--iface", "lo", "banned", "10.0.0.1"], "no pfc filter");
    refused(&topology, &["set", "add", "--iface", &vb, "banned", "10.1.0.0/16", "10.2.0.0/16"], "at most 3");
    refused(&topology, &["set", "add", "--iface", &vb, "banned", "10.0.0.1..10.0.0.5"], "E0026");

    assert_eq!(status_sets(&topology)[0], set_row("banned", "ip", "dynamic", 3, 2), "refusals changed no count");
    pfc_ok(&b, &["set", "flush", "--iface", &vb, "banned"]);
    assert!(list(&topology, "banned").is_empty());
    assert_eq!(status_sets(&topology)[0], set_row("banned", "ip", "dynamic", 3, 0));
    assert_eq!(delivered(&topology, 7003), 10, "an empty set bans nobody");
    pfc_ok(&b, &["unload", "--iface", &vb]);
}

#[test]
fn a_dynamic_set_no_rule_tests_does_not_stop_a_load() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("du");
    let rules = topology.rules(
        "untested",
        "hook xdp\ndefault pass\n\
         set unused: ip dynamic = { 10.0.0.1 }\n\
         set ports: port dynamic = { 7001 }\n\
         rule port: drop if udp.dport in ports\n",
    );
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &rules, "--iface", &vb]);
    assert_eq!((delivered(&topology, 7001), delivered(&topology, 7003)), (0, 10), "the tested set decides");
    let sets = status_sets(&topology);
    assert_eq!(sets.iter().map(|set| set.0.as_str()).collect::<Vec<_>>(), ["ports"], "status shows what runs");
    let output = pfc(&b, &["set", "add", "--iface", &vb, "unused", "10.0.0.2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("dynamic set `unused` is declared but no rule tests it"), "{stderr}");
    // A replace by the same file finds no map of the old filter's `unused` either.
    pfc_ok(&b, &["load", &rules, "--iface", &vb]);
    pfc_ok(&b, &["unload", "--iface", &vb]);
}

#[test]
fn a_wrong_family_element_is_refused_and_changes_nothing() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("wf");
    let rules = topology.rules(
        "families",
        "hook xdp\ndefault pass\n\
         set v4: ipv4 dynamic = { 192.0.2.1 }\n\
         set v6: ipv6 dynamic = { 2001:db8::1 }\n\
         rule a: drop if ip.src in v4\n\
         rule b: drop if ip.src in v6\n",
    );
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &rules, "--iface", &vb]);
    let contents = |topology: &Topology| (list(topology, "v4"), list(topology, "v6"), status_sets(topology));
    let before = contents(&topology);
    assert_eq!((before.0.clone(), before.1.clone()), (vec!["192.0.2.1".to_string()], vec!["2001:db8::1".to_string()]));
    let cases: [(&str, &[&str], &str); 6] = [
        ("add", &["2001:db8::5"], "set `v4` holds ipv4 values, but this is an IPv6 address"),
        ("add", &["10.0.0.0/8"], "set `v6` holds ipv6 values, but this is an IPv4 address"),
        // One wrong element among right ones: none goes in.
        ("add", &["10.0.0.1", "2001:db8::/32", "10.0.0.2"], "set `v4` holds ipv4 values"),
        ("add", &["2001:db8::2", "192.0.2.9"], "set `v6` holds ipv6 values"),
        ("replace", &["10.0.0.1", "::1"], "set `v4` holds ipv4 values"),
        ("del", &["192.0.2.1", "2001:db8::1"], "set `v4` holds ipv4 values"),
    ];
    for (action, elements, message) in cases {
        let set = if message.contains("`v4`") { "v4" } else { "v6" };
        let mut args = vec!["set", action, "--iface", vb.as_str(), set];
        args.extend_from_slice(elements);
        let output = pfc(&b, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "pfc {args:?}: {stderr}");
        for needle in ["E0008", message, "wrong element type", "nothing changed"] {
            assert!(stderr.contains(needle), "pfc {args:?}: `{needle}` not in {stderr}");
        }
        assert!(!stderr.contains("panicked"), "pfc {args:?}: {stderr}");
        assert_eq!(contents(&topology), before, "pfc {args:?} changed a set");
    }
    // The right family still goes in.
    pfc_ok(&b, &["set", "add", "--iface", &vb, "v6", "2001:db8::/32"]);
    assert_eq!(list(&topology, "v6"), ["2001:db8::/32", "2001:db8::1"]);
    pfc_ok(&b, &["unload", "--iface", &vb]);
}

/// A rule file whose static set of 40,001 addresses is held in a map (language.md §6.3),
/// `with_sender`: whether the sender's address is one of them.
fn big_static_rules(with_sender: bool) -> String {
    let mut addresses: Vec<String> =
        (0..40_000u32).map(|index| std::net::Ipv4Addr::from(0x0b00_0000 + 4 * index).to_string()).collect();
    addresses.push(if with_sender { SENDER_IP.to_string() } else { "192.0.2.77".to_string() });
    format!(
        "hook xdp\ndefault pass\nset feed: ipv4 = {{ {} }}\nrule feed: drop if ip.src in feed and udp.dport == 7003\n",
        addresses.join(", ")
    )
}

#[test]
fn a_static_set_in_a_map_loads_from_an_object_and_is_read_only() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("bs");
    let rules = topology.rules("bigset", &big_static_rules(true));
    let object = format!("{rules}.o");
    topology.files.push(RemoveOnDrop(object.clone().into()));
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["compile", &rules, "-o", &object]);

    // The object alone carries the set's contents.
    let output = pfc(&b, &["load", &object, "--iface", &vb]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("static sets held in maps: feed (40001)"), "{stderr}");
    assert_eq!((delivered(&topology, 7003), delivered(&topology, 7004)), (0, 10), "the sender is in the set");
    assert_eq!(list(&topology, "feed").len(), 40_001);
    assert_eq!(status_sets(&topology), [set_row("feed", "ipv4", "static-map", 40_001, 40_001)]);
    // Its map is pinned as generation 0 alone; the program reads no generation array.
    let dir = format!("/sys/fs/bpf/pfc/{vb}/xdp");
    let pinned: Vec<String> = std::fs::read_dir(format!("{dir}/sets/feed"))
        .expect("the set's pin directory")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pinned, ["ipv4_gen0"]);
    assert!(!std::path::Path::new(&format!("{dir}/set_gen")).exists());
    let dump = run_ok("bpftool", &["-j", "map", "show", "pinned", &format!("{dir}/sets/feed/ipv4_gen0")]);
    assert!(dump.contains("\"name\":\"pfc_set_0a\""), "{dump}");

    // Read-only for pfc set; list works.
    let output = pfc(&b, &["set", "add", "--iface", &vb, "feed", "10.0.0.1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a static set"), "{stderr}");
    assert_eq!(list(&topology, "feed").len(), 40_001, "nothing changed");

    // A rule-file replace writes the new rule file's contents: nothing carried over.
    let without = topology.rules("bigset2", &big_static_rules(false));
    pfc_ok(&b, &["load", &without, "--iface", &vb]);
    assert_eq!(delivered(&topology, 7003), 10, "the new set does not hold the sender");
    pfc_ok(&b, &["unload", "--iface", &vb]);
}

/// 20 rules a table can express (`codegen/table.rs`), one of which drops the sender's
/// datagrams to port 7003.
fn table_rules() -> String {
    let mut text = String::from("hook xdp\ndefault pass\n");
    for host in 1..=19u32 {
        text.push_str(&format!("rule other{host}: drop if ipv4.src == 10.77.9.{host} and udp.dport == 7003\n"));
    }
    text.push_str(&format!("rule sender: drop if ipv4.src == {SENDER_IP} and udp.dport == 7003\n"));
    text
}

/// An object in table form (forced: the default keeps so small a set inline) carries its
/// classifier arrays; `pfc load` writes them before attaching, so the table decides at
/// once (an unfilled table walks to an empty leaf and passes everything).
#[test]
fn a_table_classifier_loads_from_an_object_and_decides() {
    skip_unless!(no_kernel());
    use pfc_compiler::codegen::{Form, Options};
    let mut topology = Topology::new("tb");
    let rules = topology.rules("table", &table_rules());
    let object = format!("{rules}.o");
    topology.files.push(RemoveOnDrop(object.clone().into()));
    let text = std::fs::read_to_string(&rules).expect("rule file");
    let (compiled, diagnostics) = pfc_compiler::compile::compile_form(&text, Options::default(), Some(Form::Table));
    let compiled = compiled.unwrap_or_else(|| panic!("compiles as a table: {diagnostics:?}"));
    assert!(compiled.code.disassemble().contains("classifier table:"));
    std::fs::write(&object, &compiled.object).expect("object written");
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &object, "--iface", &vb]);
    assert_eq!((delivered(&topology, 7003), delivered(&topology, 7004)), (0, 10), "the table drops the sender");
    let rows = stats(&b, &vb, "xdp");
    assert_eq!(counter(&rows, "sender").0, 10, "{rows:?}");
    pfc_ok(&b, &["unload", "--iface", &vb]);
}

/// `pfc set --hook`: with an XDP and a TC ingress filter on one interface, each with a
/// set `banned`, `--hook tc-ingress` changes the TC filter's set only (without `--hook`
/// pfc takes the first hook with a filter, XDP).
#[test]
fn set_hook_picks_the_filter_of_that_hook() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sh");
    let xdp = topology.rules("sets-xdp", &sets_rules());
    let tc = topology.rules("sets-tc", &sets_rules().replace("hook xdp", "hook tc ingress"));
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &xdp, "--iface", &vb]);
    pfc_ok(&b, &["load", &tc, "--iface", &vb]);
    assert_eq!(delivered(&topology, 7003), 10);

    pfc_ok(&b, &["set", "add", "--iface", &vb, "--hook", "tc-ingress", "banned", SENDER_IP]);
    assert_eq!(delivered(&topology, 7003), 0, "the TC filter's set bans the sender");
    let listed = |hook: &str| pfc_ok(&b, &["set", "list", "--iface", &vb, "--hook", hook, "banned"]);
    assert_eq!(listed("xdp"), "192.0.2.0/24\n", "the XDP filter's set is unchanged");
    assert_eq!(listed("tc-ingress"), format!("{SENDER_IP}\n192.0.2.0/24\n"), "in address order");
    // Without --hook: the XDP filter's.
    assert_eq!(pfc_ok(&b, &["set", "list", "--iface", &vb, "banned"]), "192.0.2.0/24\n");
    // Each filter's set maps are pinned in its own directory: the TC one holds 2 entries.
    let entries = |hook: &str| {
        let pin = format!("/sys/fs/bpf/pfc/{vb}/{hook}/sets/banned/ipv4_gen0");
        let dump: Value =
            serde_json::from_str(&run_ok("bpftool", &["-j", "map", "dump", "pinned", &pin])).expect("json");
        dump.as_array().map_or(0, Vec::len)
    };
    assert_eq!((entries("xdp"), entries("tc-ingress")), (1, 2));
    pfc_ok(&b, &["set", "del", "--iface", &vb, "--hook", "tc-ingress", "banned", SENDER_IP]);
    assert_eq!(delivered(&topology, 7003), 10, "unbanned at TC");
    pfc_ok(&b, &["unload", "--iface", &vb, "--hook", "tc-ingress"]);
    pfc_ok(&b, &["unload", "--iface", &vb, "--hook", "xdp"]);
}
