//! pcap's fixed name tables: a name in, its number out. Service names for `port` and
//! `portrange` (pfc resolves no names at run time; this table is the documented subset
//! of a Debian `/etc/services`), protocol names for `proto \name`, and the named
//! constants of packet-access arithmetic (`tcpflags`, `tcp-syn`, `icmp-echo`, ...).

/// Which transport protocols a service is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceProto {
    /// TCP only: `port NAME` then means `tcp port N` (like libpcap).
    Tcp,
    /// UDP only: `port NAME` means `udp port N`.
    Udp,
    /// Both, with the same number: `port NAME` means `port N`.
    Both,
}

/// `(name, port, protocols)`, sorted by name.
pub const SERVICES: &[(&str, u16, ServiceProto)] = {
    use ServiceProto::*;
    &[
        ("bgp", 179, Tcp),
        ("bootpc", 68, Udp),
        ("bootps", 67, Udp),
        ("domain", 53, Both),
        ("ftp", 21, Tcp),
        ("ftp-data", 20, Tcp),
        ("http", 80, Tcp),
        ("https", 443, Both),
        ("imaps", 993, Tcp),
        ("kerberos", 88, Both),
        ("ldap", 389, Both),
        ("mysql", 3306, Tcp),
        ("ntp", 123, Udp),
        ("openvpn", 1194, Both),
        ("pop3", 110, Tcp),
        ("sip", 5060, Both),
        ("smtp", 25, Tcp),
        ("snmp", 161, Both),
        ("ssh", 22, Tcp),
        ("submission", 587, Tcp),
        ("syslog", 514, Both),
        ("telnet", 23, Tcp),
        ("tftp", 69, Udp),
        ("www", 80, Tcp),
    ]
};

/// Looks up a service name.
pub fn service(name: &str) -> Option<(u16, ServiceProto)> {
    SERVICES.iter().find(|(known, _, _)| *known == name).map(|(_, port, proto)| (*port, *proto))
}

/// IP protocol names accepted after `proto \` (libpcap asks `getprotobyname`): the names of
/// Debian's `/etc/protocols` (netbase), which the libpcap differential test checks one by one.
pub const IP_PROTOCOLS: &[(&str, u32)] = &[
    ("ip", 0),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ggp", 3),
    ("ipencap", 4),
    ("st", 5),
    ("tcp", 6),
    ("egp", 8),
    ("igp", 9),
    ("pup", 12),
    ("udp", 17),
    ("hmp", 20),
    ("xns-idp", 22),
    ("rdp", 27),
    ("iso-tp4", 29),
    ("dccp", 33),
    ("xtp", 36),
    ("ddp", 37),
    ("idpr-cmtp", 38),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("idrp", 45),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("skip", 57),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("rspf", 73),
    ("vmtp", 81),
    ("eigrp", 88),
    ("ospf", 89),
    ("ax.25", 93),
    ("ipip", 94),
    ("etherip", 97),
    ("encap", 98),
    ("pim", 103),
    ("ipcomp", 108),
    ("vrrp", 112),
    ("l2tp", 115),
    ("isis", 124),
    ("sctp", 132),
    ("fc", 133),
    ("mobility-header", 135),
    ("udplite", 136),
    ("mpls-in-ip", 137),
    ("manet", 138),
    ("hip", 139),
    ("shim6", 140),
    ("wesp", 141),
    ("rohc", 142),
    ("ethernet", 143),
    ("mptcp", 262),
];

/// Names accepted after `iso proto \` (libpcap's `lookup_proto`).
pub const OSI_PROTOCOLS: &[(&str, u32)] = &[("esis", 0x82), ("isis", 0x83), ("clnp", 0x81)];

/// Names accepted after `ether proto \` (libpcap's `eproto_db`, then its `llc_db` of LLC SAPs).
pub const ETHERTYPES: &[(&str, u32)] = &[
    ("aarp", 0x80f3),
    ("arp", 0x0806),
    ("atalk", 0x809b),
    ("decnet", 0x6003),
    ("ip", 0x0800),
    ("ip6", 0x86dd),
    ("lat", 0x6004),
    ("loopback", 0x9000),
    ("mopdl", 0x6001),
    ("moprc", 0x6002),
    ("rarp", 0x8035),
    ("sca", 0x6007),
    ("iso", 0xfe),
    ("stp", 0x42),
    ("ipx", 0xe0),
    ("netbeui", 0xf0),
];

/// Named constants, as libpcap 1.10's scanner defines them (each is a number wherever a
/// number may stand): ICMP and ICMPv6 types, the type and code offsets, TCP flags.
pub const CONSTANTS: &[(&str, u32)] = &[
    ("icmptype", 0),
    ("icmpcode", 1),
    ("icmp-echoreply", 0),
    ("icmp-unreach", 3),
    ("icmp-sourcequench", 4),
    ("icmp-redirect", 5),
    ("icmp-echo", 8),
    ("icmp-routeradvert", 9),
    ("icmp-routersolicit", 10),
    ("icmp-timxceed", 11),
    ("icmp-paramprob", 12),
    ("icmp-tstamp", 13),
    ("icmp-tstampreply", 14),
    ("icmp-ireq", 15),
    ("icmp-ireqreply", 16),
    ("icmp-maskreq", 17),
    ("icmp-maskreply", 18),
    ("icmp6type", 0),
    ("icmp6code", 1),
    ("icmp6-destinationunreach", 1),
    ("icmp6-packettoobig", 2),
    ("icmp6-timeexceeded", 3),
    ("icmp6-parameterproblem", 4),
    ("icmp6-echo", 128),
    ("icmp6-echoreply", 129),
    ("icmp6-multicastlistenerquery", 130),
    ("icmp6-multicastlistenerreportv1", 131),
    ("icmp6-multicastlistenerdone", 132),
    ("icmp6-routersolicit", 133),
    ("icmp6-routeradvert", 134),
    ("icmp6-neighborsolicit", 135),
    ("icmp6-neighboradvert", 136),
    ("icmp6-redirect", 137),
    ("icmp6-routerrenum", 138),
    ("icmp6-nodeinformationquery", 139),
    ("icmp6-nodeinformationresponse", 140),
    ("icmp6-ineighbordiscoverysolicit", 141),
    ("icmp6-ineighbordiscoveryadvert", 142),
    ("icmp6-multicastlistenerreportv2", 143),
    ("icmp6-homeagentdiscoveryrequest", 144),
    ("icmp6-homeagentdiscoveryreply", 145),
    ("icmp6-mobileprefixsolicit", 146),
    ("icmp6-mobileprefixadvert", 147),
    ("icmp6-certpathsolicit", 148),
    ("icmp6-certpathadvert", 149),
    ("icmp6-multicastrouteradvert", 151),
    ("icmp6-multicastroutersolicit", 152),
    ("icmp6-multicastrouterterm", 153),
    ("tcpflags", 13),
    ("tcp-fin", 0x01),
    ("tcp-syn", 0x02),
    ("tcp-rst", 0x04),
    ("tcp-push", 0x08),
    ("tcp-ack", 0x10),
    ("tcp-urg", 0x20),
    ("tcp-ece", 0x40),
    ("tcp-cwr", 0x80),
];

/// Looks a name up in one of the tables.
pub fn lookup(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table.iter().find(|(known, _)| *known == name).map(|(_, value)| *value)
}

/// A number as libpcap reads it: `0x` hex, leading-`0` octal, else decimal; `None` when
/// malformed or beyond 32 bits.
pub fn number(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}
