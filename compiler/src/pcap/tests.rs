//! pcap front-end cases: expression text in, the diagnostic code (or the verdict on a
//! few frames) out. One line of data per case.

use super::{compile, PCAP_SYNTAX, PCAP_UNSUPPORTED};
use crate::diagnostic::Span;

fn codes(text: &str) -> Vec<&'static str> {
    let (_, diagnostics) = compile(text, Span::new(0, text.len()));
    diagnostics.iter().map(|d| d.code.0).collect()
}

/// Frames: an IPv4/TCP SYN 10.0.0.1:1024 → 10.0.0.2:22, and a 10-byte runt.
fn verdicts(text: &str) -> (bool, bool) {
    let mut tcp = vec![0u8; 54];
    tcp[12..14].copy_from_slice(&[0x08, 0x00]);
    tcp[14] = 0x45;
    tcp[23] = 6;
    tcp[26..30].copy_from_slice(&[10, 0, 0, 1]);
    tcp[30..34].copy_from_slice(&[10, 0, 0, 2]);
    tcp[34..38].copy_from_slice(&[0x04, 0x00, 0x00, 22]);
    tcp[47] = 0x02;
    let (filter, diagnostics) = compile(text, Span::new(0, text.len()));
    let filter = filter.unwrap_or_else(|| panic!("{text}: {diagnostics:?}"));
    (filter.matches(&tcp), filter.matches(&[0u8; 10]))
}

#[test]
fn diagnostics() {
    let cases: &[(&str, &[&str])] = &[
        ("tcp port 22", &[]),
        ("host 10.0.0.1 and 10.0.0.2", &[]),
        ("tcp and 22", &[PCAP_SYNTAX.0]),
        ("host example.com", &[PCAP_UNSUPPORTED.0]),
        ("gateway 10.0.0.1", &[PCAP_UNSUPPORTED.0]),
        ("ip6 protochain 6", &[]),
        ("protochain 6 or not 17", &[]),
        ("protochain \\tcp", &[]),
        ("tcp protochain 6", &[PCAP_SYNTAX.0]),
        ("protochain \\nosuchproto", &[PCAP_SYNTAX.0]),
        ("ip broadcast", &[PCAP_UNSUPPORTED.0]),
        ("ip[0] / 0 = 1", &[PCAP_SYNTAX.0]),
        ("ip[0] << 32 = 1", &[PCAP_SYNTAX.0]),
        ("tcp[0:3] = 1", &[PCAP_SYNTAX.0]),
        ("port 70000", &[PCAP_SYNTAX.0]),
        ("net 10.0.0.1/8", &[PCAP_SYNTAX.0]),
        ("udp port http", &[PCAP_SYNTAX.0]),
        ("port nosuchservice or host foo", &[PCAP_UNSUPPORTED.0, PCAP_UNSUPPORTED.0]),
        ("tcp src 22", &[PCAP_SYNTAX.0]),
        ("vlan 5000", &[PCAP_SYNTAX.0]),
        ("ether proto 1 or link proto 0 or ether proto \\netbeui", &[]),
        ("icmp6[icmp6type] == icmp6-neighborsolicit or icmp6[icmp6code] != 0", &[]),
        ("igmp or igrp or pim or vrrp or carp or ah or esp or stp or ipx or atalk or aarp or iso or isis", &[]),
        ("l1 or l2 or iih or lsp or snp or csnp or psnp or clnp or esis or decnet or lat or sca", &[]),
        ("vrrp[0] = 1 or pim[1] = 2 or decnet[2] = 3 or ppp[0] = 1 or length > 10", &[]),
        ("ether host aabbccddeeff or ether src aa-bb-cc-dd-ee-ff or ether dst aabb.ccdd.eeff", &[]),
        ("byte 12 = 8 and byte 13 < 1 and byte 14 > 0", &[]),
        ("byte 12 & 8 or byte 99999999999 | 1", &[PCAP_SYNTAX.0]),
        ("mpls 100 and mpls and ip and host 10.0.0.1 or ip6", &[]),
        ("pppoed or pppoes 0x3b and ip6 or mpls and ip", &[]),
        ("mpls and pppoed", &[PCAP_SYNTAX.0]),
        ("mpls and arp", &[PCAP_SYNTAX.0]),
        ("mpls and 1 + arp[0] = 1", &[PCAP_SYNTAX.0]),
        ("pppoes and vlan", &[PCAP_SYNTAX.0]),
        ("mpls 1048576", &[PCAP_SYNTAX.0]),
        ("geneve 10", &[]),
        ("not geneve", &[]),
        ("geneve or geneve", &[PCAP_UNSUPPORTED.0]),
        ("geneve or tcp", &[PCAP_UNSUPPORTED.0]),
        ("not geneve and port 22", &[PCAP_UNSUPPORTED.0]),
        ("geneve and tcp and not (vlan 10 and ether host 1:2:3:4:5:6) or len > 1", &[]),
        ("not geneve or ip[0] = 0x45 or geneve 10", &[]),
        ("geneve and protochain 6", &[PCAP_SYNTAX.0]),
        ("geneve 16777216", &[PCAP_SYNTAX.0]),
        ("llc ui or llc i or llc rnr", &[]),
        ("llc bogus", &[PCAP_SYNTAX.0]),
        ("ah[0] = 1", &[PCAP_SYNTAX.0]),
        ("radio", &[PCAP_SYNTAX.0]),
        ("ra 10.0.0.1", &[PCAP_SYNTAX.0]),
        ("inbound", &[PCAP_UNSUPPORTED.0]),
        ("tcp port", &[PCAP_SYNTAX.0]),
        // Bare numbers and short dotted addresses (`gen_ncode`); masks need `net`.
        ("net 10 or host 10 or src 10 or host 1.2 or dst net 192.168.1", &[]),
        ("net 10.0.0.0 mask 255.255", &[]),
        ("src 10.0.0.0/8", &[PCAP_SYNTAX.0]),
        ("host 10.0.0.0/8", &[PCAP_SYNTAX.0]),
        ("ip6 host 10", &[PCAP_SYNTAX.0]),
        ("ether host 10", &[PCAP_SYNTAX.0]),
        // Qualifier inheritance (libpcap's `id`/`pid`/`pnum`): lists of ids in parentheses
        // take the qualifiers in force; a parenthesized term passes on the ones before it.
        ("ip proto (6 or 17) or protochain (6 or \\udp)", &[]),
        ("src or dst net (10.0.0.0/8 or 192.168.0.0/16) or host (1.2.3.4 or not 5.6.7.8)", &[]),
        ("not port (22 or (23 and 24)) or port 22 and not (23 or 24) and (25)", &[]),
        ("port (not 22 or ssh) or port 22 and (tcp) and 23", &[]),
        ("port ((22 or 23))", &[PCAP_SYNTAX.0]),
        ("port ((ssh) or 22)", &[PCAP_SYNTAX.0]),
        ("(port 22) and 23", &[PCAP_SYNTAX.0]),
        ("port 22 and (udp or 23)", &[PCAP_SYNTAX.0]),
        ("ip proto tcp", &[PCAP_SYNTAX.0]),
        ("ip proto 6-7", &[PCAP_SYNTAX.0]),
        ("port tcp-syn or vlan (10) or less tcpflags", &[]),
        // Only libpcap's optimizer refuses these (after constant folding, when reachable).
        ("ip[2:2] >> 31 + 1 = 1", &[]),
        ("ip[0] / (ip[1] * 0) = 1", &[]),
    ];
    for (text, expected) in cases {
        assert_eq!(&codes(text), expected, "{text}");
    }
}

#[test]
fn verdicts_on_a_syn_and_a_runt() {
    let cases: &[(&str, (bool, bool))] = &[
        ("", (true, true)),
        ("tcp port 22", (true, false)),
        ("tcp dst port ssh and src host 10.0.0.1", (true, false)),
        ("not tcp", (false, false)),
        ("tcp[tcpflags] & tcp-syn != 0", (true, false)),
        ("less 20", (false, true)),
        ("greater 54", (true, false)),
        ("host 10.0.0.9 or 10.0.0.2", (true, false)),
        ("src net 10.0.0.0/24 and dst portrange 20-30", (true, false)),
        ("ip[0] & 0xf = 5", (true, false)),
        ("ether[0] = 0", (true, true)),
        ("vlan or tcp", (false, false)),
        // `byte N &`/`|` test libpcap's accumulator, not byte N: 0 at the start, then
        // the last comparison's left value (the ethertype, the protocol byte...).
        ("byte 12 & 8", (false, false)),
        ("byte 12 | 8", (true, true)),
        ("ip and byte 1 & 8", (false, false)),
        ("ip and byte 1 & 0x800", (true, false)),
        ("tcp and byte 0 & 6 and byte 0 | 0", (true, false)),
        ("not udp and byte 0 & 6", (false, false)),
        ("not udp and byte 0 & 0x800", (true, false)),
        ("(ip6 or ip and not arp) and byte 0 & 0x806", (true, false)),
        ("(ip6 or ip and not arp) and byte 0 & 6", (false, false)),
        ("(ip6 or ip and not arp) and byte 0 & 0x800", (true, false)),
        // A relation's `=` and `!=` are `sub x; jeq #0`: they leave `left - right`; `>`
        // leaves its left value.
        ("ip[0] = 0x45 and byte 0 & 1", (false, false)),
        ("ip[0] != 0x44 and byte 0 & 1", (true, false)),
        ("ip[0] > 0x44 and byte 0 & 1", (true, false)),
        ("len != 10 and byte 0 & 2", (false, false)),
        ("len >= 54 and ip[9] = 6", (true, false)),
        // `<`, `<=`, `!=` negate the comparison only, not the protocol checks.
        ("sctp[0:2] <= 255", (false, false)),
        ("icmp[0] != 1", (false, false)),
        // `gen_arth` drops the right operand's protocol checks.
        ("0 * icmp[0] = 0", (true, false)),
        // `^` and `%` take everything after them; unary `-` covers them.
        ("1 & 2 ^ 3 = 1", (true, true)),
        ("2 % 3 + 1 = 2", (true, true)),
        ("- 1 ^ 1 = 0", (true, true)),
        ("255 % (tcp[13:4] + 1) * ip[9] != 017", (true, false)),
        // Bare numbers and short dotted addresses.
        ("src net 10 and dst net 10.0", (true, false)),
        ("src host 10 or host 1.2", (false, false)),
        ("dst host 10.0.0 and src net 10.0.0.0 mask 255.0", (true, false)),
        // Qualifier inheritance.
        ("tcp port (80 or 22)", (true, false)),
        ("port 80 and (tcp) or 22", (true, false)),
        ("port (not 22)", (false, false)),
        ("dst port 22 and not (1024 or 80)", (true, false)),
        ("ip proto (17 or 1)", (false, false)),
    ];
    for (text, expected) in cases {
        assert_eq!(verdicts(text), *expected, "{text}");
    }
}

/// docs/pcap.md's table of E0019 refusals is exactly [`Refusal::ALL`], in order.
#[test]
fn refusal_table_matches_the_docs() {
    let docs = include_str!("../../../docs/pcap.md");
    let section = docs.split("\n## Refused").nth(1).expect("a Refused section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let rows: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| ")?.strip_suffix(" |"))
        .filter_map(|row| row.split_once(" | "))
        .filter(|(what, _)| *what != "What" && !what.starts_with("---"))
        .map(|(what, why)| format!("{what}: {why}").replace("\\|", "|"))
        .collect();
    let expected: Vec<String> = super::Refusal::ALL.iter().map(|refusal| refusal.message()).collect();
    assert_eq!(rows, expected);
}

/// Run-time offsets and accumulator tests re-use earlier computations: nested `geneve`s
/// and long chains of `byte N &` stay small (they once grew exponentially) and are
/// refused where pfc has not the registers or the budget.
#[test]
fn nested_geneves_and_byte_chains_stay_bounded() {
    let geneves = |n: usize| format!("{} and tcp port 1", vec!["geneve"; n].join(" and "));
    assert_eq!(codes(&geneves(2)), &[] as &[&str]);
    assert_eq!(codes(&["geneve"; 3].join(" and ")), &[] as &[&str]);
    for n in [3, 6, 40] {
        assert!(codes(&geneves(n)).iter().all(|code| *code == PCAP_UNSUPPORTED.0), "{n} geneves");
    }
    let chain = ["byte 1 & 1 and tcp port 22"; 100].join(" or ");
    let found = codes(&chain);
    assert!(!found.is_empty() && found.iter().all(|code| *code == PCAP_UNSUPPORTED.0), "{found:?}");
    assert_eq!(codes(&["byte 1 & 1"; 250].join(" and ")), &[] as &[&str]);
}
