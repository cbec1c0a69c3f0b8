//! `PFC_CLASSBENCH_EXAMPLES=DIR`: instructions and taken jumps (`paths.rs`) of every XDP
//! rule file in DIR on a few common frames (untagged IPv4 and IPv6 TCP and UDP, ICMP,
//! ARP, a VLAN-tagged IPv4 TCP frame), to compare small programs' common paths across
//! compiler versions. Files that do not compile alone and other hooks are listed; frames the
//! counting interpreter cannot run (helpers other than map lookups) show `-`.

use pfc_compiler::codegen::Options;
use pfc_compiler::packet::Packet;

use crate::paths;

/// The frames, by name.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let (v4a, v4b) = ("192.168.10.5", "192.168.10.1");
    let (v6a, v6b) = ("2001:db8:10::5", "2001:db8:10::1");
    vec![
        ("ipv4 tcp", Packet::eth().ipv4(v4a, v4b).tcp(40_000, 22).build()),
        ("ipv4 udp", Packet::eth().ipv4(v4a, v4b).udp(40_000, 53).build()),
        ("ipv6 tcp", Packet::eth().ipv6(v6a, v6b).tcp(40_000, 22).build()),
        ("ipv6 udp", Packet::eth().ipv6(v6a, v6b).udp(40_000, 53).build()),
        ("ipv4 icmp", Packet::eth().ipv4(v4a, v4b).icmp(8, 0).build()),
        ("arp", Packet::eth().arp(1, v4a, v4b).build()),
        ("vlan ipv4 tcp", Packet::eth().vlan(10).ipv4(v4a, v4b).tcp(40_000, 22).build()),
    ]
}

/// Prints one line per file: `insns (taken jumps)` per frame.
pub fn report(dir: &str) {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect(),
        Err(error) => {
            println!("{dir}: {error}");
            return;
        }
    };
    files.retain(|path| path.extension().is_some_and(|ext| ext == "pf"));
    files.sort();
    let frames = frames();
    let names: Vec<&str> = frames.iter().map(|(name, _)| *name).collect();
    println!("== rule files in {dir}: instructions (taken jumps) per frame: {} ==", names.join(" | "));
    for path in files {
        let name = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let (compiled, _) = pfc_compiler::compile::compile(&text, Options { counters: true });
        let Some(compiled) = compiled else {
            println!("{name:<16} does not compile alone");
            continue;
        };
        if compiled.program.hook != pfc_compiler::program::Hook::Xdp {
            println!("{name:<16} not xdp");
            continue;
        }
        let parts = paths::Parts::new(&compiled.code);
        let tables = paths::Tables::default();
        let cells: Vec<String> = frames
            .iter()
            .map(|(_, bytes)| match paths::run(&compiled.code, &parts, &tables, bytes) {
                Ok(path) => format!("{} ({})", path.total, path.taken),
                Err(_) => "-".to_string(),
            })
            .collect();
        println!("{name:<16} {:>6} slots  {}", compiled.code.encode().len() / 8, cells.join(" | "));
    }
}
