//! The expression generator of the libpcap differential: a seeded `Rng` in, random pcap
//! expressions out — every primitive pfc compiles (hosts, nets, ports, port ranges,
//! protocols, packet accesses with arithmetic, link-layer forms) under `and`/`or`/`not`,
//! and `protochain` expressions on their own stream.

use crate::support::{pools, Rng};

fn dir(rng: &mut Rng) -> &'static str {
    rng.pick(&["", "", "src ", "dst ", "src or dst ", "src and dst "])
}

fn masked_v4(rng: &mut Rng) -> String {
    let addr: std::net::Ipv4Addr = rng.pick(pools::IPV4).parse().expect("pool address");
    let len = rng.pick(&[0u32, 8, 16, 24, 30, 32]);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(addr) & mask))
}

fn port(rng: &mut Rng) -> String {
    if rng.chance(15) {
        rng.pick(&["ssh", "domain", "http", "ntp", "https", "telnet"]).to_string()
    } else {
        rng.pick(pools::PORTS).to_string()
    }
}

fn access(rng: &mut Rng) -> String {
    match rng.below(14) {
        0 => "tcp[tcpflags]".into(),
        1 => format!("tcp[{}:{}]", rng.pick(&[0, 2, 4, 12, 13]), rng.pick(&[1, 2, 4])),
        2 => format!("udp[{}:2]", rng.pick(&[0, 2, 4, 6])),
        3 => "icmp[icmptype]".into(),
        4 => format!("ip[{}]", rng.pick(&[0, 1, 8, 9, 19, 60])),
        5 => format!("ip[{}:2]", rng.pick(&[2, 6])),
        6 => format!("ip6[{}]", rng.pick(&[6, 7, 40])),
        7 => format!("ether[{}]", rng.pick(&[0, 12, 13, 14, 60])),
        8 => format!("ether[{}:4]", rng.pick(&[0, 2, 26])),
        9 => "len".into(),
        10 => format!("icmp6[{}]", rng.pick(&[0, 1])),
        11 => format!("arp[{}:2]", rng.pick(&[0, 6])),
        12 => format!("tcp[ip[0] & {}]", rng.pick(&[3, 15, 0x30])),
        _ => format!("sctp[{}:2]", rng.pick(&[0, 2])),
    }
}

fn arith(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.chance(55) {
        return if rng.chance(60) {
            access(rng)
        } else {
            rng.pick(&["0", "1", "2", "0x10", "017", "255", "tcp-syn", "icmp-echo"]).into()
        };
    }
    let op = rng.pick(&["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"]);
    let right = match op {
        "/" | "%" => format!("({} + 1)", access(rng)).replace("(len + 1)", "(ip[0] + 1)"),
        "<<" | ">>" => rng.pick(&["1", "4", "31", "(ip[1] & 63)"]).to_string(),
        _ => arith(rng, depth - 1),
    };
    format!("{} {op} {right}", arith(rng, depth - 1))
}

fn primitive(rng: &mut Rng) -> String {
    match rng.below(25) {
        0 => rng.pick(&["ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6"]).into(),
        1 | 2 => format!("{}{}host {}", rng.pick(&["", "", "ip ", "arp ", "rarp "]), dir(rng), rng.pick(pools::IPV4)),
        3 => format!("{}{}host {}", rng.pick(&["", "ip6 "]), dir(rng), rng.pick(pools::IPV6)),
        4 => format!("{}{}net {}", rng.pick(&["", "ip "]), dir(rng), masked_v4(rng)),
        5 => format!(
            "{}net {}",
            dir(rng),
            rng.pick(&["192.168.1", "10.0.0.0 mask 255.255.255.0", "2001:db8::/32", "10"])
        ),
        6 => format!("ether {}host {}", dir(rng), rng.pick(pools::MACS)),
        7 => rng
            .pick(&["ether broadcast", "ether multicast", "broadcast", "multicast", "ip multicast", "ip6 multicast"])
            .into(),
        8..=10 => format!("{}{}port {}", rng.pick(&["", "", "tcp ", "udp ", "sctp "]), dir(rng), port(rng)),
        11 => format!(
            "{}{}portrange {}-{}",
            rng.pick(&["", "tcp ", "udp "]),
            dir(rng),
            rng.pick(pools::PORTS),
            rng.pick(pools::PORTS)
        ),
        12 => format!(
            "{} {}",
            rng.pick(&["ip proto", "ip6 proto", "proto"]),
            rng.pick(&["1", "6", "17", "58", "132", "47", "0", "\\tcp", "\\udp"])
        ),
        13 => format!("ether proto {}", rng.pick(&["0x0800", "0x86dd", "0x0806", "\\ip", "\\arp", "0x88cc", "0x8100"])),
        14 => format!("vlan{}", rng.pick(&["", "", " 10", " 1", " 0", " 100"])),
        15 => format!("{} {}", rng.pick(&["less", "greater"]), rng.pick(pools::LENGTHS)),
        16..=18 => {
            let op = rng.pick(&["=", "==", "!=", ">", "<", ">=", "<="]);
            format!("{} {op} {}", arith(rng, 2), arith(rng, 1))
        }
        19 => format!(
            "host {} {} {}",
            rng.pick(pools::IPV4),
            rng.pick(&["and", "or", "and not", "or not"]),
            rng.pick(pools::IPV4)
        ),
        20 => {
            format!("{}port {} {} {}", dir(rng), port(rng), rng.pick(&["or", "and not", "||"]), rng.pick(pools::PORTS))
        }
        22 | 23 => rng
            .pick(&[
                "llc",
                "llc i",
                "llc s",
                "llc u",
                "llc ui",
                "llc rr",
                "llc rnr",
                "llc xid",
                "llc frmr",
                "stp",
                "ipx",
                "netbeui",
                "atalk",
                "aarp",
                "iso",
                "isis",
                "esis",
                "clnp",
                "l1",
                "l2",
                "iih",
                "lsp",
                "snp",
                "csnp",
                "psnp",
                "decnet",
                "lat",
                "sca",
                "mopdl",
                "moprc",
                "igmp",
                "igrp",
                "pim",
                "vrrp",
                "carp",
                "ah",
                "esp",
                "pppoed",
                "pppoes",
                "pppoes 0x3b",
                "pppoes 1234",
                "mpls",
                "mpls 100",
                "mpls 123",
                "link proto 0x42",
                "ether proto 0xe0",
                "ether proto \\iso",
                "ether proto \\atalk",
                "ether proto 0x6003",
                "isis proto 0x12 or 0x14",
                "iso proto \\clnp",
                "decnet host 1.1",
                "decnet src 63.1023",
                "decnet dst 3.12",
                "ether host 02-00-00-00-00-01",
                "ether src 0011.2233.4455",
                "byte 12 = 0x88",
                "byte 14 > 0x40",
                "byte 15 < 3",
                "length > 60",
                "icmp6[icmp6type] = icmp6-neighborsolicit",
                "ppp[12:2] = 0x8847",
                "link broadcast",
            ])
            .into(),
        24 => format!(
            "{}[{}] {} {}",
            rng.pick(&["vrrp", "pim", "igmp", "decnet", "lat", "atalk", "ppp", "link", "carp"]),
            rng.pick(&["0", "1", "2:2", "4"]),
            rng.pick(&["=", ">", "!="]),
            rng.pick(&["0", "1", "0x20"])
        ),
        _ => format!(
            "tcp[tcpflags] & ({}) != 0",
            rng.pick(&["tcp-syn", "tcp-syn|tcp-ack", "tcp-fin|tcp-rst", "tcp-push"])
        ),
    }
}

/// A `protochain` primitive: either family or both, numbers and names, the protocols
/// the walk passes over among them.
fn protochain(rng: &mut Rng) -> String {
    format!(
        "{}protochain {}",
        rng.pick(&["", "", "ip ", "ip6 "]),
        rng.pick(&["6", "17", "\\udp", "58", "0", "43", "44", "51", "59", "60", "4", "41", "300", "ipv6-icmp"])
    )
}

/// An expression holding at least one `protochain`, among the other primitives.
pub fn protochain_expression(rng: &mut Rng) -> String {
    let first = if rng.chance(20) { format!("not {}", protochain(rng)) } else { protochain(rng) };
    match rng.below(4) {
        0 => first,
        1 => format!("{first} {} {}", rng.pick(&["or", "and", "and not"]), rng.pick(&["17", "6", "51"])),
        2 => format!("{first} {} {}", rng.pick(&["and", "or", "and not", "or not"]), expression(rng, 2)),
        _ => format!("({}) {} {first}", expression(rng, 2), rng.pick(&["and", "or"])),
    }
}

pub fn expression(rng: &mut Rng, depth: usize) -> String {
    let item = if depth == 0 || rng.chance(40) { primitive(rng) } else { format!("({})", expression(rng, depth - 1)) };
    let item = if rng.chance(20) { format!("{} {item}", rng.pick(&["not", "!"])) } else { item };
    if depth == 0 || rng.chance(45) {
        return item;
    }
    let op = rng.pick(&["and", "or", "&&", "||", "and not", "or not"]);
    format!("{item} {op} {}", expression(rng, depth - 1))
}

/// An expression that reads after `geneve` only where it matched (libpcap's run-time
/// offsets are written then): `geneve [VNI]` (after a test, behind another `geneve`, a
/// `vlan`) and then an expression of [`expression`], or `not geneve or` one.
pub fn geneve_expression(rng: &mut Rng) -> String {
    let geneve = rng.pick(&["geneve", "geneve 10", "geneve 12345", "geneve 20"]);
    let before =
        if rng.chance(25) { rng.pick(&["vlan and ", "ip and ", "ip6 and ", "udp and ", "not tcp and "]) } else { "" };
    let inner = expression(rng, 2);
    match rng.below(6) {
        0 => format!("{before}{geneve} and ({inner})"),
        1 => format!("not {geneve} or ({inner})"),
        2 => format!("{geneve} and vlan and ({inner})"),
        3 => format!("{geneve} and geneve and ({inner})"),
        4 => format!("{geneve} and ({inner}) and not ({})", expression(rng, 1)),
        _ => format!("{before}{geneve} and not ({inner})"),
    }
}

/// An expression with `byte N & V` or `byte N | V`, which test libpcap's accumulator:
/// at the start, after `and`/`or`/`not`, after arithmetic, `protochain`, `geneve`,
/// another such test, and with values that match the ethertypes and protocol numbers
/// the accumulator holds after common tests.
pub fn byte_bitwise_expression(rng: &mut Rng) -> String {
    let byte = |rng: &mut Rng| {
        let op = rng.pick(&["&", "|"]);
        let value = rng.pick(&["0", "1", "2", "6", "0x11", "0x800", "0x806", "0x86dd", "0xff", "0x40", "3"]);
        format!("byte {} {op} {value}", rng.below(40))
    };
    let (b1, b2) = (byte(rng), byte(rng));
    let x = expression(rng, 2);
    match rng.below(9) {
        0 => b1,
        1 => format!("{x} and {b1}"),
        2 => format!("({x}) or {b1}"),
        3 => format!("{b1} or ({x})"),
        4 => format!("not ({x}) and {b1} and {b2}"),
        5 => format!("({x}) and ({}) or {b1}", expression(rng, 1)),
        6 => format!("{} protochain {} and {b1}", rng.pick(&["ip", "ip6", ""]), rng.pick(&["6", "17", "58", "0"])),
        7 => format!("geneve and {b1} or not ({b2})"),
        _ => format!("not {b1} or ({x}) and not {b2}"),
    }
}
