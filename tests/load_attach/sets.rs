//! Dynamic sets on a real veth (part of `tests/load_attach.rs`): `pfc load` writes the
//! rule file's contents, `pfc set add` takes effect on the next packet and `del` likewise,
//! `replace` and `flush` swap the contents, a rule-file replace keeps them, and bad
//! requests (wrong family, unknown set, no filter, beyond the size) exit 1 with the
//! set unchanged.

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

fn list(topology: &Topology, set: &str) -> Vec<String> {
    let json = pfc_ok(&topology.b, &["set", "list", "--iface", &topology.veth_b, set, "--format", "json"]);
    let document: Value = serde_json::from_str(&json).expect("pfc.set/1 JSON");
    assert_eq!(document["schema"], "pfc.set/1");
    if document["count"] != 0 {
        support::shapes::assert_pinned(&document); // an empty list has no element shape
    }
    document["elements"].as_array().expect("elements").iter().map(|e| e.as_str().unwrap_or("?").to_string()).collect()
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

    pfc_ok(&b, &["set", "add", "--iface", &vb, "banned", SENDER_IP]);
    assert_eq!(delivered(&topology, 7003), 0, "the sender is banned from the next packet on");
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

    pfc_ok(&b, &["set", "flush", "--iface", &vb, "banned"]);
    assert!(list(&topology, "banned").is_empty());
    assert_eq!(delivered(&topology, 7003), 10, "an empty set bans nobody");
    pfc_ok(&b, &["unload", "--iface", &vb]);
}
