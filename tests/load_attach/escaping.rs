//! Terminal controls in what `load`, `status` and `stats` print (part of
//! `tests/load_attach.rs`): a rule file whose name holds ESC and BEL is loaded for real;
//! every command shows the name with `\u{1b}` escapes and writes no raw control byte.

use super::*;

#[test]
fn control_bytes_in_a_rule_file_name_are_escaped_by_load_status_and_stats() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("esc");
    let rules = topology.rules("e\u{1b}]0;title\u{7}", &rule_set("xdp"));
    let (ns, iface) = topology.place("xdp");
    let (ns, iface) = (ns.to_string(), iface.to_string());
    let outputs = [
        pfc(&ns, &["load", &rules, "--iface", &iface, "--mode", "generic"]),
        pfc(&ns, &["status"]),
        pfc(&ns, &["stats", "--iface", &iface]),
    ];
    for (output, what) in outputs.iter().zip(["load", "status", "stats"]) {
        let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{what}: {printed}");
        assert!(!printed.contains(['\u{1b}', '\u{7}']), "{what} echoes control bytes: {printed:?}");
        if what != "stats" {
            assert!(printed.contains("e\\u{1b}]0;title\\u{7}"), "{what} does not show the escaped name: {printed}");
        }
    }
    let unloaded = pfc(&ns, &["unload", "--iface", &iface]);
    assert!(unloaded.status.success(), "unload: {}", String::from_utf8_lossy(&unloaded.stderr));
}
