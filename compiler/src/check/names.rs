//! Name tables: the bare protocol words, the named values each field accepts (`syn`,
//! `echo-request`, `tcp`, `ssh`) and the set element types. The surface field names
//! (`fields.rs`) and "did you mean" suggestions (`diagnostic.rs`) are re-exported here,
//! so the checker finds every name it resolves in one place.

pub use crate::diagnostic::suggest;
pub use crate::fields::{surface_field, surface_field_names, SurfaceField};
use crate::fields::{Field, Proto, ValueKind};

/// A bare protocol word: `tcp` is "a TCP header is present"; `ip` is IPv4 or IPv6.
pub(crate) fn bare_protocol(name: &str) -> Option<&'static [Proto]> {
    Some(match name {
        "eth" => &[Proto::Eth],
        "vlan" => &[Proto::Vlan],
        "arp" => &[Proto::Arp],
        "ip" => &[Proto::Ipv4, Proto::Ipv6],
        "ipv4" => &[Proto::Ipv4],
        "ipv6" => &[Proto::Ipv6],
        "tcp" => &[Proto::Tcp],
        "udp" => &[Proto::Udp],
        "sctp" => &[Proto::Sctp],
        "icmp" => &[Proto::Icmp],
        "icmp6" => &[Proto::Icmp6],
        "l4" => &[Proto::Tcp, Proto::Udp, Proto::Sctp],
        _ => return None,
    })
}

/// The words accepted as bare protocol tests.
pub const BARE_PROTOCOLS: &[&str] =
    &["eth", "vlan", "arp", "ip", "ipv4", "ipv6", "tcp", "udp", "sctp", "icmp", "icmp6", "l4"];

/// TCP flag bits.
pub const TCP_FLAGS: &[(&str, u128)] = &[
    ("fin", 0x01),
    ("syn", 0x02),
    ("rst", 0x04),
    ("psh", 0x08),
    ("ack", 0x10),
    ("urg", 0x20),
    ("ece", 0x40),
    ("cwr", 0x80),
];

/// ICMP (IPv4) message types.
pub const ICMP_TYPES: &[(&str, u128)] = &[
    ("echo-reply", 0),
    ("dest-unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicitation", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp-request", 13),
    ("timestamp-reply", 14),
];

/// ICMPv6 message types.
pub const ICMP6_TYPES: &[(&str, u128)] = &[
    ("dest-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("mld-query", 130),
    ("mld-report", 131),
    ("mld-done", 132),
    ("router-solicitation", 133),
    ("router-advertisement", 134),
    ("neighbor-solicitation", 135),
    ("neighbor-advertisement", 136),
    ("redirect", 137),
];

/// IP protocol numbers.
pub const IP_PROTOCOLS: &[(&str, u128)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("udp", 17),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmp6", 58),
    ("ospf", 89),
    ("vrrp", 112),
    ("sctp", 132),
];

/// Ethertypes.
pub const ETHERTYPES: &[(&str, u128)] = &[
    ("ipv4", 0x0800),
    ("arp", 0x0806),
    ("vlan", 0x8100),
    ("ipv6", 0x86dd),
    ("mpls", 0x8847),
    ("qinq", 0x88a8),
    ("lldp", 0x88cc),
];

/// ARP operations.
pub const ARP_OPS: &[(&str, u128)] = &[("request", 1), ("reply", 2)];

/// Well-known service ports.
pub const SERVICES: &[(&str, u128)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("dns", 53),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("http", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("bgp", 179),
    ("ldap", 389),
    ("https", 443),
    ("smtps", 465),
    ("syslog", 514),
    ("submission", 587),
    ("imaps", 993),
    ("pop3s", 995),
];

/// The named values a field accepts.
pub fn named_values(field: Field) -> &'static [(&'static str, u128)] {
    use Field::*;
    match field {
        TcpFlags => TCP_FLAGS,
        IcmpType => ICMP_TYPES,
        Icmp6Type => ICMP6_TYPES,
        Ipv4Proto | Ipv6Next | Ipv6Proto => IP_PROTOCOLS,
        EthType => ETHERTYPES,
        ArpOp => ARP_OPS,
        TcpSport | TcpDport | UdpSport | UdpDport | SctpSport | SctpDport => SERVICES,
        _ => &[],
    }
}

/// Named values: `(name, value)` pairs such as `("syn", 2)`.
pub(crate) type NamedValues = &'static [(&'static str, u128)];

/// The element types of `set NAME: TYPE`, with the value kinds they hold and the
/// named values their elements may use.
pub fn set_element_type(name: &str) -> Option<(&'static [ValueKind], NamedValues)> {
    Some(match name {
        "ip" => (&[ValueKind::Ipv4, ValueKind::Ipv6], &[]),
        "ipv4" => (&[ValueKind::Ipv4], &[]),
        "ipv6" => (&[ValueKind::Ipv6], &[]),
        "mac" => (&[ValueKind::Mac], &[]),
        "port" => (&[ValueKind::Uint(16)], SERVICES),
        "proto" => (&[ValueKind::Uint(8)], IP_PROTOCOLS),
        "u8" => (&[ValueKind::Uint(8)], &[]),
        "u16" => (&[ValueKind::Uint(16)], &[]),
        "u32" => (&[ValueKind::Uint(32)], &[]),
        _ => return None,
    })
}

/// The set element type names.
pub const SET_ELEMENT_TYPES: &[&str] = &["ip", "ipv4", "ipv6", "mac", "port", "proto", "u8", "u16", "u32"];
