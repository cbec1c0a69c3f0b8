//! The small value pools shared by the packet corpus and the rule generator. Rules
//! written with these values match corpus packets often, and the pools include the
//! edges (0, the maximum, values ≥ 2³¹ that catch sign-extended immediates).

/// Transport ports (TCP, UDP, SCTP).
pub const PORTS: &[u16] = &[22, 53, 80, 443, 8080, 0, 65535, 23];
/// IPv4 addresses: 10.0.0.0/30, 192.168.1.0/30 and one documentation address.
pub const IPV4: &[&str] = &[
    "10.0.0.0",
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "192.168.1.0",
    "192.168.1.1",
    "192.168.1.2",
    "192.168.1.3",
    "203.0.113.5",
];
/// IPv6 addresses: 2001:db8::/126 and a link-local one.
pub const IPV6: &[&str] = &["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3", "fe80::1"];
/// MAC addresses: unicast, broadcast, IPv4 and IPv6 multicast, all-zero.
pub const MACS: &[&str] = &[
    "02:00:00:00:00:01",
    "02:00:00:00:00:02",
    "ff:ff:ff:ff:ff:ff",
    "01:00:5e:00:00:01",
    "33:33:00:00:00:01",
    "00:00:00:00:00:00",
];
/// Ethertypes that pfc does not parse.
pub const ODD_ETHERTYPES: &[u16] = &[0x88b5, 0x1234, 0x0000, 0x05dc, 0x8847, 0x88cc, 0x9100, 0xffff];
/// VLAN identifiers.
pub const VLAN_IDS: &[u16] = &[0, 1, 10, 100, 4095];
/// IPv4 TTL / IPv6 hop limit.
pub const TTLS: &[u8] = &[0, 1, 64, 128, 255];
/// IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN).
pub const TOS: &[u8] = &[0, 0x10, 0xb8, 0xff, 0x03];
/// IPv4 identification.
pub const IP_IDS: &[u16] = &[0, 1, 0x8000, 0xffff];
/// IPv4 fragment offsets of non-first fragments (8-byte units).
pub const FRAG_OFFSETS: &[u16] = &[1, 185, 0x1fff];
/// IPv6 flow labels.
pub const FLOW_LABELS: &[u32] = &[0, 1, 12345, 0xfffff];
/// TCP flag bytes.
pub const TCP_FLAGS: &[u8] = &[0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x00, 0xff, 0x20, 0xc2];
/// TCP sequence and acknowledgment numbers.
pub const SEQS: &[u32] = &[0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 12345];
/// TCP windows.
pub const WINDOWS: &[u16] = &[0, 1024, 65535];
/// ICMP types (echo reply, unreachable, echo request, time exceeded, redirect, timestamp, 255).
pub const ICMP_TYPES: &[u8] = &[0, 3, 8, 11, 5, 13, 255];
/// ICMPv6 types: errors, echo, MLD, neighbour discovery, 255.
pub const ICMP6_TYPES: &[u8] = &[1, 2, 3, 4, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 255];
/// ICMP / ICMPv6 codes.
pub const ICMP_CODES: &[u8] = &[0, 1, 3];
/// IP protocol numbers that are not parsed as transport (GRE, ESP, no-next-header, 255).
pub const ODD_PROTOCOLS: &[u8] = &[47, 50, 59, 255];
/// Interesting frame lengths.
pub const LENGTHS: &[u32] = &[0, 13, 14, 42, 54, 60, 64, 66, 74, 100, 1500];
/// Numbers for 32-bit comparisons, including the sign-extension edges.
pub const U32S: &[u32] = &[0, 1, 12345, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
