//! The packet model shared by every stage: protocols, concrete fields, where each
//! field's bits live, and the surface field names rule files write (`ip.src` is
//! `ipv4.src` or `ipv6.src`). Input: nothing; output: tables read by `syntax`, `check`,
//! `eval` and lowering.
//!
//! **Invariant:** this is the only place that knows header layouts. The interpreter and
//! the code generator both read a field through [`Field::source`], so they cannot
//! disagree on an offset, a width or a mask.

/// How many VLAN tags are parsed at most (the interpreter and the prologue both stop
/// there; a third tag is payload).
pub const MAX_VLAN_TAGS: u8 = 2;
/// How many IPv6 extension headers are walked at most before the upper protocol counts
/// as hidden.
pub const MAX_IPV6_EXT_HEADERS: u8 = 4;

/// A protocol whose header pfc parses. Its presence is the guard of its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// Ethernet II header, 14 bytes.
    Eth,
    /// At least one 802.1Q / 802.1ad tag (fields read the outermost tag).
    Vlan,
    /// ARP for IPv4 over Ethernet, 28 bytes after the Ethernet (and VLAN) headers.
    Arp,
    /// IPv4 header: ethertype 0x0800, ihl ≥ 5 and all `ihl * 4` bytes present.
    Ipv4,
    /// IPv6 fixed header, 40 bytes.
    Ipv6,
    /// TCP header (20 bytes) in an unfragmented packet or a first fragment.
    Tcp,
    /// UDP header (8 bytes), same fragment rule.
    Udp,
    /// SCTP common header (12 bytes), same fragment rule.
    Sctp,
    /// ICMP header (8 bytes) over IPv4, same fragment rule.
    Icmp,
    /// ICMPv6 header (8 bytes) over IPv6, same fragment rule.
    Icmp6,
}

impl Proto {
    /// Every protocol, in header order.
    pub const ALL: [Proto; 10] = [
        Proto::Eth,
        Proto::Vlan,
        Proto::Arp,
        Proto::Ipv4,
        Proto::Ipv6,
        Proto::Tcp,
        Proto::Udp,
        Proto::Sctp,
        Proto::Icmp,
        Proto::Icmp6,
    ];

    /// The keyword in rule files (`eth` has none as a bare test but is listed for messages).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Eth => "eth",
            Proto::Vlan => "vlan",
            Proto::Arp => "arp",
            Proto::Ipv4 => "ipv4",
            Proto::Ipv6 => "ipv6",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
        }
    }

    /// Bytes that must be present for the header to count as present (IPv4 needs
    /// `ihl * 4`, at least this).
    pub fn min_len(self) -> usize {
        match self {
            Proto::Eth => 14,
            Proto::Vlan => 4,
            Proto::Arp => 28,
            Proto::Ipv4 => 20,
            Proto::Ipv6 => 40,
            Proto::Tcp => 20,
            Proto::Udp => 8,
            Proto::Sctp => 12,
            Proto::Icmp | Proto::Icmp6 => 8,
        }
    }

    /// The layer this protocol sits in; two different protocols of one layer exclude
    /// each other (a packet is never both TCP and UDP).
    pub fn layer(self) -> Layer {
        match self {
            Proto::Eth => Layer::Link,
            Proto::Vlan => Layer::Tag,
            Proto::Arp | Proto::Ipv4 | Proto::Ipv6 => Layer::Network,
            Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Icmp | Proto::Icmp6 => Layer::Transport,
        }
    }

    /// The network protocol this one is carried in, if it needs a specific one.
    pub fn carrier(self) -> Option<Proto> {
        match self {
            Proto::Icmp => Some(Proto::Ipv4),
            Proto::Icmp6 => Some(Proto::Ipv6),
            _ => None,
        }
    }

    /// IP protocol number of a transport protocol.
    pub(crate) fn ip_protocol(self) -> Option<u8> {
        match self {
            Proto::Tcp => Some(6),
            Proto::Udp => Some(17),
            Proto::Sctp => Some(132),
            Proto::Icmp => Some(1),
            Proto::Icmp6 => Some(58),
            _ => None,
        }
    }
}

/// Header layers, for exclusion between protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet.
    Link,
    /// VLAN tags (any number, not exclusive).
    Tag,
    /// ARP, IPv4, IPv6.
    Network,
    /// TCP, UDP, SCTP, ICMP, ICMPv6.
    Transport,
}

/// The type of a field's values, which decides the literals it can be compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// An unsigned number of this many bits (1 is a flag, usable bare).
    Uint(u32),
    /// A 48-bit MAC address.
    Mac,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
}

impl ValueKind {
    /// Width in bits.
    pub fn bits(self) -> u32 {
        match self {
            ValueKind::Uint(bits) => bits,
            ValueKind::Mac => 48,
            ValueKind::Ipv4 => 32,
            ValueKind::Ipv6 => 128,
        }
    }

    /// The largest value of this kind.
    pub fn max(self) -> u128 {
        let bits = self.bits();
        if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        }
    }

    /// What values of this kind are, with an article, for messages ("an IPv4 address").
    pub fn describe(self) -> String {
        match self {
            ValueKind::Uint(1) => "a flag (0 or 1)".to_string(),
            ValueKind::Uint(8) => "an 8-bit number".to_string(),
            ValueKind::Uint(bits) => format!("a {bits}-bit number"),
            ValueKind::Mac => "a MAC address".to_string(),
            ValueKind::Ipv4 => "an IPv4 address".to_string(),
            ValueKind::Ipv6 => "an IPv6 address".to_string(),
        }
    }
}

/// Where a field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldSource {
    /// Bytes of a header: read `size` bytes (1, 2, 4, 6 or 16) big-endian at `offset`
    /// from the header start, shift right by `shift`, keep `mask`, add `add`.
    Header {
        /// Header the bytes belong to.
        proto: Proto,
        /// Byte offset from the start of that header.
        offset: usize,
        /// Number of bytes read.
        size: usize,
        /// Right shift applied after the read.
        shift: u32,
        /// Mask applied after the shift.
        mask: u128,
        /// Constant added at the end (IPv6 total length = payload length + 40).
        add: u128,
    },
    /// The ethertype that follows the Ethernet header and up to two VLAN tags.
    PayloadEthertype,
    /// The IPv6 upper-layer protocol found after walking the extension headers.
    Ipv6UpperProtocol,
    /// The whole frame's length in bytes.
    PacketLength,
}

macro_rules! fields {
    ($( $variant:ident = $name:literal, $kind:expr, $source:expr, $doc:literal; )*) => {
        /// A concrete packet field. Surface names that span protocols (`ip.src`,
        /// `l4.dport`) are expanded by the checker into these.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $( #[doc = $doc] $variant, )*
        }

        impl Field {
            /// Every concrete field.
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The field's name in rule files (`tcp.dport`).
            pub fn name(self) -> &'static str {
                match self { $(Field::$variant => $name,)* }
            }

            /// The type of the field's values.
            pub fn kind(self) -> ValueKind {
                match self { $(Field::$variant => $kind,)* }
            }

            /// Where the field's value is read from.
            pub fn source(self) -> FieldSource {
                match self { $(Field::$variant => $source,)* }
            }

            /// Looks a concrete field up by its rule-file name.
            pub fn by_name(name: &str) -> Option<Field> {
                match name { $($name => Some(Field::$variant),)* _ => None }
            }
        }
    };
}

const fn at(proto: Proto, offset: usize, size: usize) -> FieldSource {
    FieldSource::Header { proto, offset, size, shift: 0, mask: u128::MAX, add: 0 }
}

const fn bits(proto: Proto, offset: usize, size: usize, shift: u32, mask: u128) -> FieldSource {
    FieldSource::Header { proto, offset, size, shift, mask, add: 0 }
}

use ValueKind::{Ipv4 as V4, Ipv6 as V6, Mac, Uint};

fields! {
    EthSrc = "eth.src", Mac, at(Proto::Eth, 6, 6), "Source MAC address.";
    EthDst = "eth.dst", Mac, at(Proto::Eth, 0, 6), "Destination MAC address.";
    EthType = "eth.type", Uint(16), FieldSource::PayloadEthertype, "Ethertype of the payload, after up to two VLAN tags.";
    VlanId = "vlan.id", Uint(12), bits(Proto::Vlan, 0, 2, 0, 0xfff), "VLAN identifier of the outermost tag.";
    VlanPcp = "vlan.pcp", Uint(3), bits(Proto::Vlan, 0, 2, 13, 0x7), "Priority code point of the outermost tag.";
    Ipv4Src = "ipv4.src", V4, at(Proto::Ipv4, 12, 4), "IPv4 source address.";
    Ipv4Dst = "ipv4.dst", V4, at(Proto::Ipv4, 16, 4), "IPv4 destination address.";
    Ipv4Proto = "ipv4.proto", Uint(8), at(Proto::Ipv4, 9, 1), "IPv4 protocol field.";
    Ipv4Ttl = "ipv4.ttl", Uint(8), at(Proto::Ipv4, 8, 1), "IPv4 time to live.";
    Ipv4Len = "ipv4.len", Uint(16), at(Proto::Ipv4, 2, 2), "IPv4 total length.";
    Ipv4Id = "ipv4.id", Uint(16), at(Proto::Ipv4, 4, 2), "IPv4 identification.";
    Ipv4Ihl = "ipv4.ihl", Uint(4), bits(Proto::Ipv4, 0, 1, 0, 0xf), "IPv4 header length in 32-bit words.";
    Ipv4Tos = "ipv4.tos", Uint(8), at(Proto::Ipv4, 1, 1), "IPv4 type-of-service byte (DSCP and ECN).";
    Ipv4Dscp = "ipv4.dscp", Uint(6), bits(Proto::Ipv4, 1, 1, 2, 0x3f), "IPv4 DSCP (upper six bits of the TOS byte).";
    Ipv4FragOffset = "ipv4.frag_offset", Uint(13), bits(Proto::Ipv4, 6, 2, 0, 0x1fff), "IPv4 fragment offset in 8-byte units.";
    Ipv4Df = "ipv4.df", Uint(1), bits(Proto::Ipv4, 6, 2, 14, 1), "IPv4 don't-fragment flag.";
    Ipv4Mf = "ipv4.mf", Uint(1), bits(Proto::Ipv4, 6, 2, 13, 1), "IPv4 more-fragments flag.";
    Ipv6Src = "ipv6.src", V6, at(Proto::Ipv6, 8, 16), "IPv6 source address.";
    Ipv6Dst = "ipv6.dst", V6, at(Proto::Ipv6, 24, 16), "IPv6 destination address.";
    Ipv6Next = "ipv6.next", Uint(8), at(Proto::Ipv6, 6, 1), "Next-header field of the fixed IPv6 header.";
    Ipv6Proto = "ipv6.proto", Uint(8), FieldSource::Ipv6UpperProtocol, "Upper-layer protocol after the extension headers (known only when the chain was walked to its end).";
    Ipv6HopLimit = "ipv6.hop_limit", Uint(8), at(Proto::Ipv6, 7, 1), "IPv6 hop limit.";
    Ipv6FlowLabel = "ipv6.flow_label", Uint(20), bits(Proto::Ipv6, 0, 4, 0, 0xfffff), "IPv6 flow label.";
    Ipv6PayloadLen = "ipv6.payload_len", Uint(16), at(Proto::Ipv6, 4, 2), "IPv6 payload length.";
    Ipv6Len = "ipv6.len", Uint(17), FieldSource::Header { proto: Proto::Ipv6, offset: 4, size: 2, shift: 0, mask: 0xffff, add: 40 }, "IPv6 packet length: payload length + 40.";
    Ipv6Tclass = "ipv6.tclass", Uint(8), bits(Proto::Ipv6, 0, 2, 4, 0xff), "IPv6 traffic class.";
    Ipv6Dscp = "ipv6.dscp", Uint(6), bits(Proto::Ipv6, 0, 2, 6, 0x3f), "IPv6 DSCP (upper six bits of the traffic class).";
    TcpSport = "tcp.sport", Uint(16), at(Proto::Tcp, 0, 2), "TCP source port.";
    TcpDport = "tcp.dport", Uint(16), at(Proto::Tcp, 2, 2), "TCP destination port.";
    TcpSeq = "tcp.seq", Uint(32), at(Proto::Tcp, 4, 4), "TCP sequence number.";
    TcpAck = "tcp.ack", Uint(32), at(Proto::Tcp, 8, 4), "TCP acknowledgment number.";
    TcpFlags = "tcp.flags", Uint(8), at(Proto::Tcp, 13, 1), "TCP flags byte (cwr ece urg ack psh rst syn fin).";
    TcpWindow = "tcp.window", Uint(16), at(Proto::Tcp, 14, 2), "TCP window.";
    TcpUrgent = "tcp.urgent", Uint(16), at(Proto::Tcp, 18, 2), "TCP urgent pointer (meaningful with the URG flag).";
    UdpSport = "udp.sport", Uint(16), at(Proto::Udp, 0, 2), "UDP source port.";
    UdpDport = "udp.dport", Uint(16), at(Proto::Udp, 2, 2), "UDP destination port.";
    UdpLen = "udp.len", Uint(16), at(Proto::Udp, 4, 2), "UDP length.";
    SctpSport = "sctp.sport", Uint(16), at(Proto::Sctp, 0, 2), "SCTP source port.";
    SctpDport = "sctp.dport", Uint(16), at(Proto::Sctp, 2, 2), "SCTP destination port.";
    IcmpType = "icmp.type", Uint(8), at(Proto::Icmp, 0, 1), "ICMP type.";
    IcmpCode = "icmp.code", Uint(8), at(Proto::Icmp, 1, 1), "ICMP code.";
    Icmp6Type = "icmp6.type", Uint(8), at(Proto::Icmp6, 0, 1), "ICMPv6 type.";
    Icmp6Code = "icmp6.code", Uint(8), at(Proto::Icmp6, 1, 1), "ICMPv6 code.";
    ArpOp = "arp.op", Uint(16), at(Proto::Arp, 6, 2), "ARP operation (1 request, 2 reply).";
    ArpSha = "arp.sha", Mac, at(Proto::Arp, 8, 6), "ARP sender hardware address.";
    ArpSip = "arp.sip", V4, at(Proto::Arp, 14, 4), "ARP sender IPv4 address.";
    ArpTha = "arp.tha", Mac, at(Proto::Arp, 18, 6), "ARP target hardware address.";
    ArpTip = "arp.tip", V4, at(Proto::Arp, 24, 4), "ARP target IPv4 address.";
    PktLen = "pkt.len", Uint(32), FieldSource::PacketLength, "Length of the whole frame in bytes.";
}

impl Field {
    /// The header whose presence guards this field (`None`: always readable).
    pub fn guard(self) -> Option<Proto> {
        match self.source() {
            FieldSource::Header { proto, .. } => Some(proto),
            FieldSource::PayloadEthertype => Some(Proto::Eth),
            FieldSource::Ipv6UpperProtocol => Some(Proto::Ipv6),
            FieldSource::PacketLength => None,
        }
    }
}

/// A field as written in rule files: one concrete field, or several that the checker
/// turns into an `or` (`ip.src` is `ipv4.src` or `ipv6.src`; `l4.dport` is the TCP, UDP
/// or SCTP destination port).
#[derive(Clone, Copy, Debug)]
pub struct SurfaceField {
    /// The name as written.
    pub name: &'static str,
    /// The concrete fields it stands for.
    pub fields: &'static [Field],
}

const FAMILY_FIELDS: &[SurfaceField] = &[
    SurfaceField { name: "ip.src", fields: &[Field::Ipv4Src, Field::Ipv6Src] },
    SurfaceField { name: "ip.dst", fields: &[Field::Ipv4Dst, Field::Ipv6Dst] },
    SurfaceField { name: "ip.proto", fields: &[Field::Ipv4Proto, Field::Ipv6Proto] },
    SurfaceField { name: "ip.ttl", fields: &[Field::Ipv4Ttl, Field::Ipv6HopLimit] },
    SurfaceField { name: "ip.len", fields: &[Field::Ipv4Len, Field::Ipv6Len] },
    SurfaceField { name: "ip.dscp", fields: &[Field::Ipv4Dscp, Field::Ipv6Dscp] },
    SurfaceField { name: "l4.sport", fields: &[Field::TcpSport, Field::UdpSport, Field::SctpSport] },
    SurfaceField { name: "l4.dport", fields: &[Field::TcpDport, Field::UdpDport, Field::SctpDport] },
];

/// Looks a surface field up by name.
pub fn surface_field(name: &str) -> Option<SurfaceField> {
    if let Some(field) = FAMILY_FIELDS.iter().find(|field| field.name == name) {
        return Some(*field);
    }
    let field = Field::by_name(name)?;
    let index = Field::ALL.iter().position(|candidate| *candidate == field)?;
    Some(SurfaceField { name: field.name(), fields: std::slice::from_ref(&Field::ALL[index]) })
}

/// Every surface field name, for suggestions and documentation.
pub fn surface_field_names() -> impl Iterator<Item = &'static str> {
    FAMILY_FIELDS.iter().map(|field| field.name).chain(Field::ALL.iter().map(|field| field.name()))
}
