//! The grammar-wide expression generator of the libpcap acceptance comparison: a seeded
//! `Rng` in, random pcap expressions out over the whole of pcap-filter(7) — every
//! primitive with every qualifier combination (including the ones libpcap refuses),
//! ids and parenthesized id lists that inherit the qualifiers in force (`port (22 or
//! not 23)`, `host a and (b or c)`, `(tcp) and 23`), `expr relop expr` with `[]`
//! loads, `len`, unary minus and every operator, `and`/`or`/`not` with parentheses,
//! named ports, protocols and constants, `vlan`/`mpls`/`pppoes`/`geneve` stacking and
//! the LLC forms. Unlike `generator.rs` it does not aim at what pfc compiles: about
//! half of what it writes is refused by libpcap, and pfc must refuse the same.

use crate::support::{pools, Rng};

const PNAMES: &[&str] = &[
    "ether", "link", "ppp", "fddi", "tr", "wlan", "slip", "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp",
    "icmp6", "igmp", "igrp", "pim", "vrrp", "carp", "ah", "esp", "atalk", "aarp", "decnet", "lat", "sca", "mopdl",
    "moprc", "iso", "esis", "isis", "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp", "clnp", "stp", "ipx", "netbeui",
];
/// The protocol qualifiers most often met in real filters, drawn more often.
const COMMON_PNAMES: &[&str] = &["", "", "", "", "ip", "ip6", "tcp", "udp", "sctp", "ether", "arp", "rarp", "decnet"];
const DIRS: &[&str] = &["src", "dst", "src or dst", "dst or src", "src and dst", "dst and src"];
const KINDS: &[&str] = &["host", "net", "port", "port", "portrange", "host", "net", "proto", "protochain", "gateway"];
const OPS: &[&str] = &["and", "or", "&&", "||"];
const NOTS: &[&str] = &["not", "!"];
const RELOPS: &[&str] = &["=", "==", "!=", ">", "<", ">=", "<="];
const ARITH_OPS: &[&str] = &["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"];
const CONSTANTS: &[&str] = &["tcpflags", "tcp-syn", "tcp-ack", "icmptype", "icmp-echo", "icmp6type", "icmp6-echo"];

/// A value: an address of any family or form, a number, a port or protocol name...
fn value(rng: &mut Rng) -> String {
    match rng.below(22) {
        0..=2 => rng.pick(pools::IPV4).to_string(),
        3 => rng.pick(&["10", "10.0", "192.168.1", "1.2", "0", "256", "0x0a000001"]).to_string(),
        4 => format!(
            "{}/{}",
            rng.pick(&["10.0.0.0", "192.168.1.0", "10", "10.0.0.1"]),
            rng.pick(&[0, 8, 24, 30, 32, 33])
        ),
        5 => format!(
            "{} mask {}",
            rng.pick(&["10.0.0.0", "192.168.1.0", "10.0.0.1"]),
            rng.pick(&["255.0.0.0", "255.255.255.0", "255.255"])
        ),
        6 => rng.pick(pools::IPV6).to_string(),
        7 => format!("{}/{}", rng.pick(&["2001:db8::", "fe80::", "2001:db8::1"]), rng.pick(&[0, 32, 64, 126, 128])),
        8 => rng.pick(pools::MACS).to_string(),
        9 => rng.pick(&["02-00-00-00-00-01", "0200.0000.0001", "020000000002", "ff.ff.ff.ff.ff.ff"]).to_string(),
        10..=12 => rng.pick(pools::PORTS).to_string(),
        13 => rng.pick(&["ssh", "domain", "http", "https", "ntp", "telnet", "snmp", "bgp"]).to_string(),
        14 => format!("{}-{}", rng.pick(pools::PORTS), rng.pick(pools::PORTS)),
        15 => rng.pick(&["ssh-http", "20-ssh", "domain-80"]).to_string(),
        16 => rng.pick(&["6", "17", "1", "58", "132", "0", "255", "256", "51", "0x11"]).to_string(),
        17 => rng.pick(&["\\tcp", "\\udp", "\\icmp", "\\ip", "\\arp", "\\esp", "\\nosuch"]).to_string(),
        18 => rng.pick(&["1.1", "63.1023", "3.12", "64.1"]).to_string(),
        19 => rng.pick(CONSTANTS).to_string(),
        20 => rng.pick(&["clnp", "esis", "isis", "70000", "65536", "4096"]).to_string(),
        _ => rng.pick(&["tcp", "example.com", "localhost", "0x12", "0x14", "\\0x800"]).to_string(),
    }
}

/// A value that suits `kind` most of the time.
fn value_for(rng: &mut Rng, kind: &str) -> String {
    if rng.chance(8) {
        return value(rng);
    }
    match kind {
        "port" => {
            if rng.chance(20) {
                rng.pick(&["ssh", "domain", "http", "ntp"]).into()
            } else {
                rng.pick(pools::PORTS).to_string()
            }
        }
        "portrange" => format!("{}-{}", rng.pick(pools::PORTS), rng.pick(pools::PORTS)),
        "proto" | "protochain" => rng.pick(&["6", "17", "1", "58", "132", "\\tcp", "\\udp", "0x12", "\\icmp"]).into(),
        "net" => rng
            .pick(&["10", "192.168.1", "10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "10.0.0.0 mask 255.0.0.0"])
            .into(),
        _ => {
            let choices = [rng.pick(pools::IPV4), rng.pick(pools::IPV6), rng.pick(pools::MACS), "1.1"];
            rng.pick(&choices).into()
        }
    }
}

/// libpcap's `id`: a value, `not id`, a parenthesized number or a list of ids.
fn id(rng: &mut Rng, kind: &str, depth: usize) -> String {
    match rng.below(10) {
        0 if depth > 0 => format!("{} {}", rng.pick(NOTS), id(rng, kind, depth - 1)),
        1 => format!("({})", value_for(rng, kind)),
        2 | 3 if depth > 0 => {
            let mut list = id(rng, kind, depth - 1);
            for _ in 0..rng.below(3) + 1 {
                list = format!("{list} {} {}", rng.pick(OPS), id(rng, kind, depth - 1));
            }
            format!("({list})")
        }
        _ => value_for(rng, kind),
    }
}

/// `[pname] [dir] [kind] id`, with the qualifier orders libpcap refuses now and then.
fn qualified(rng: &mut Rng) -> String {
    let pname = if rng.chance(8) { rng.pick(PNAMES) } else { rng.pick(COMMON_PNAMES) };
    let kind = if rng.chance(85) { rng.pick(KINDS) } else { "" };
    // A direction qualifies hosts, networks and ports only (`src proto 6` is refused).
    let directed = !matches!(kind, "proto" | "protochain" | "gateway") || rng.chance(5);
    let dir = if directed && rng.chance(25) { rng.pick(DIRS) } else { "" };
    let head = [pname, dir, kind].iter().filter(|part| !part.is_empty()).copied().collect::<Vec<_>>();
    if head.is_empty() {
        return format!("host {}", id(rng, "host", 2));
    }
    format!("{} {}", head.join(" "), id(rng, kind, 2))
}

/// A packet access or a constant, the operands of arithmetic.
fn operand(rng: &mut Rng) -> String {
    match rng.below(9) {
        0..=3 => {
            let pname = if rng.chance(10) {
                rng.pick(PNAMES)
            } else {
                rng.pick(&["ether", "ip", "ip6", "tcp", "udp", "icmp", "icmp6", "arp"])
            };
            let index = if rng.chance(15) {
                arith(rng, 1)
            } else {
                rng.pick(&["0", "1", "2", "6", "9", "12", "13", "14", "40", "tcpflags"]).into()
            };
            match rng.below(5) {
                0 | 1 => format!("{pname}[{index}]"),
                2 if rng.chance(20) => format!("{pname}[{index}:{}]", rng.pick(&[3, 0, 8])),
                _ => format!("{pname}[{index}:{}]", rng.pick(&[1, 2, 4])),
            }
        }
        4 => rng.pick(&["len", "length"]).into(),
        5 => rng.pick(CONSTANTS).into(),
        6 => format!("-{}", operand(rng)),
        _ => rng.pick(&["0", "1", "2", "0x10", "017", "255", "65535", "0xffffffff", "32"]).into(),
    }
}

fn arith(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.chance(40) {
        return operand(rng);
    }
    let left = arith(rng, depth - 1);
    let right = arith(rng, depth - 1);
    let expr = format!("{left} {} {right}", rng.pick(ARITH_OPS));
    if rng.chance(25) {
        format!("({expr})")
    } else {
        expr
    }
}

/// The primitives that are not `qualifiers id`.
fn other(rng: &mut Rng) -> String {
    match rng.below(16) {
        0 | 14 | 15 => rng.pick(PNAMES).into(),
        1 => format!(
            "{} {}",
            rng.pick(&["", "ether", "ip", "ip6", "link", "tcp", "arp"]),
            rng.pick(&["broadcast", "multicast"])
        ),
        2 => {
            format!("{} {}", rng.pick(&["less", "greater"]), rng.pick(&["0", "60", "100", "1500", "tcpflags", "(60)"]))
        }
        3 => format!(
            "byte {} {} {}",
            rng.pick(&["12", "14", "0", "23"]),
            rng.pick(&["=", "<", ">", "&", "|", "==", "!="]),
            rng.pick(&["0", "8", "0x45", "6"])
        ),
        4 => format!("vlan{}", rng.pick(&["", "", " 10", " 0", " 4095", " 4096", " (10)", " 100"])),
        5 => format!("mpls{}", rng.pick(&["", "", " 100", " 0", " 1048576", " (5)"])),
        6 => format!("pppoes{}", rng.pick(&["", "", " 0x3b", " 1234", " 65536"])),
        7 => "pppoed".into(),
        8 => format!("geneve{}", rng.pick(&["", " 10", " 16777216"])),
        9 => format!(
            "llc{}",
            rng.pick(&[
                "", " i", " s", " u", " ui", " rr", " rnr", " rej", " xid", " test", " frmr", " sabme", " bogus"
            ])
        ),
        10 if rng.chance(30) => {
            rng.pick(&["inbound", "outbound", "ifindex 1", "type mgt", "radio", "vxlan", "lane", "on eth0"]).into()
        }
        10 => rng
            .pick(&["vlan and ip", "mpls and ip6", "pppoes and udp", "vlan and vlan 10 and tcp", "llc and stp"])
            .into(),
        11 if rng.chance(30) => {
            format!("{} {} {}", rng.pick(&["ra", "ta", "addr1", "dir"]), rng.pick(&["host", ""]), rng.pick(pools::IPV4))
        }
        11 => format!("{} port {}", rng.pick(&["tcp", "udp", "sctp"]), rng.pick(pools::PORTS)),
        12 => format!(
            "{}protochain {}",
            rng.pick(&["", "ip ", "ip6 ", "tcp "]),
            rng.pick(&["6", "17", "\\udp", "58", "0x11"])
        ),
        _ => format!(
            "{} proto {}",
            rng.pick(&["ether", "link", "iso", "isis", "ip", "ip6", "tcp", "llc"]),
            rng.pick(&["0x800", "\\ip", "\\arp", "0x12", "\\clnp", "6", "\\tcp", "0x42"])
        ),
    }
}

fn term(rng: &mut Rng, depth: usize) -> String {
    let body = match rng.below(10) {
        0 | 1 if depth > 0 => format!("({})", expression(rng, depth - 1)),
        2 | 3 => {
            let relation = format!("{} {} {}", arith(rng, 2), rng.pick(RELOPS), arith(rng, 1));
            if rng.chance(15) {
                format!("({relation})")
            } else {
                relation
            }
        }
        4 | 5 => other(rng),
        _ => qualified(rng),
    };
    if rng.chance(15) {
        format!("{} {body}", rng.pick(NOTS))
    } else {
        body
    }
}

/// An expression: terms, and ids that take the qualifiers in force, joined by `and`/`or`.
pub fn expression(rng: &mut Rng, depth: usize) -> String {
    let mut expr = term(rng, depth);
    let parts = if depth == 0 { rng.below(2) } else { rng.below(3) };
    for _ in 0..parts {
        let next = if rng.chance(20) {
            let kind = rng.pick(&["host", "port", "net", "proto", "portrange"]);
            id(rng, kind, 1)
        } else {
            term(rng, depth.saturating_sub(1))
        };
        expr = format!("{expr} {} {next}", rng.pick(OPS));
    }
    expr
}
