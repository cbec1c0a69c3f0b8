//! A pure packet builder. Input: a stack of protocol [`Layer`]s with good defaults;
//! output: the frame's bytes, with ethertypes, protocol numbers, lengths and checksums
//! filled in. Used by tests, the differential corpus and `pfc test` packet specs.
//!
//! ```
//! use pfc_compiler::packet::Packet;
//! let frame = Packet::eth().ipv4("10.0.0.1", "10.0.0.2").tcp(1234, 22).build();
//! assert_eq!(frame.len(), 14 + 20 + 20);
//! ```
//!
//! Every automatic value is an `Option` in its layer (`None` = derive it), so tests can
//! build inconsistent packets on purpose. Derived values:
//! - Ethernet / VLAN ethertype: from the next layer (VLAN → its `tpid`, IPv4 `0x0800`,
//!   IPv6 `0x86dd`, ARP `0x0806`), otherwise [`ETHERTYPE_UNKNOWN`];
//! - IPv4 protocol / IPv6 and extension next header: from the next layer (TCP 6, UDP 17,
//!   SCTP 132, ICMP 1, ICMPv6 58, IPv4 4, IPv6 41, extension headers 0/43/60/44),
//!   otherwise 59 ("no next header");
//! - IPv4 `ihl`, total length and header checksum; IPv6 payload length; UDP length;
//! - TCP, UDP, ICMP and ICMPv6 checksums (with the pseudo-header of the nearest IP layer
//!   before them) and the SCTP CRC32c.
//!
//! Any header field of the rule language (`crate::fields`) can also be written by name
//! with [`Packet::set`], over the layer's encoded bytes and before checksums: a field
//! added to the `fields!` table needs nothing here.
//!
//! Building is deterministic and does no I/O; [`Packet::truncate`] cuts the result.

mod encode;

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::fields::{Field, FieldSource, Proto};

/// Ethertype written when nothing known follows (IEEE 802 local experimental).
pub const ETHERTYPE_UNKNOWN: u16 = 0x88b5;

/// Something usable as an IPv4 address: [`Ipv4Addr`], `[u8; 4]`, or a dotted literal
/// with the feature `test-builders`.
pub trait ToIpv4 {
    /// The address.
    ///
    /// # Panics
    /// The `&str` impl (feature `test-builders`), on a string that is not an IPv4
    /// address (a bug in the test that wrote it).
    fn to_ipv4(self) -> Ipv4Addr;
}

impl ToIpv4 for Ipv4Addr {
    fn to_ipv4(self) -> Ipv4Addr {
        self
    }
}

impl ToIpv4 for [u8; 4] {
    fn to_ipv4(self) -> Ipv4Addr {
        Ipv4Addr::from(self)
    }
}

#[cfg(any(test, feature = "test-builders"))]
impl ToIpv4 for &str {
    fn to_ipv4(self) -> Ipv4Addr {
        self.parse().unwrap_or_else(|_| panic!("not an IPv4 address: {self:?}"))
    }
}

/// Something usable as an IPv6 address: [`Ipv6Addr`], `[u8; 16]`, or a literal with the
/// feature `test-builders`.
pub trait ToIpv6 {
    /// The address.
    ///
    /// # Panics
    /// The `&str` impl (feature `test-builders`), on a string that is not an IPv6
    /// address (a bug in the test that wrote it).
    fn to_ipv6(self) -> Ipv6Addr;
}

impl ToIpv6 for Ipv6Addr {
    fn to_ipv6(self) -> Ipv6Addr {
        self
    }
}

impl ToIpv6 for [u8; 16] {
    fn to_ipv6(self) -> Ipv6Addr {
        Ipv6Addr::from(self)
    }
}

#[cfg(any(test, feature = "test-builders"))]
impl ToIpv6 for &str {
    fn to_ipv6(self) -> Ipv6Addr {
        self.parse().unwrap_or_else(|_| panic!("not an IPv6 address: {self:?}"))
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (feature `test-builders`).
///
/// # Panics
/// A malformed literal (a bug in the test that wrote it).
#[cfg(any(test, feature = "test-builders"))]
pub fn mac(text: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        let part = parts.next().unwrap_or_else(|| panic!("not a MAC address: {text:?}"));
        *byte = u8::from_str_radix(part, 16).unwrap_or_else(|_| panic!("not a MAC address: {text:?}"));
    }
    assert!(parts.next().is_none(), "not a MAC address: {text:?}");
    out
}

/// Ethernet II header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eth {
    /// Source MAC, default `02:00:00:00:00:01`.
    pub src: [u8; 6],
    /// Destination MAC, default `02:00:00:00:00:02`.
    pub dst: [u8; 6],
    /// Ethertype; `None` derives it from the next layer.
    pub ethertype: Option<u16>,
}

impl Default for Eth {
    fn default() -> Eth {
        Eth { src: [2, 0, 0, 0, 0, 1], dst: [2, 0, 0, 0, 0, 2], ethertype: None }
    }
}

/// One VLAN tag; its `tpid` is written as the previous layer's ethertype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vlan {
    /// VLAN identifier (12 bits).
    pub id: u16,
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop-eligible indicator.
    pub dei: bool,
    /// Tag protocol identifier, default `0x8100` (802.1Q); `0x88a8` for 802.1ad.
    pub tpid: u16,
    /// Ethertype after the tag; `None` derives it from the next layer.
    pub ethertype: Option<u16>,
}

impl Default for Vlan {
    fn default() -> Vlan {
        Vlan { id: 1, pcp: 0, dei: false, tpid: 0x8100, ethertype: None }
    }
}

/// IPv4 header, options included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Type of service (DSCP << 2 | ECN).
    pub tos: u8,
    /// Identification.
    pub id: u16,
    /// Don't-fragment flag.
    pub df: bool,
    /// More-fragments flag.
    pub mf: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub frag_offset: u16,
    /// Time to live, default 64.
    pub ttl: u8,
    /// Option bytes, zero-padded to a multiple of 4.
    pub options: Vec<u8>,
    /// Version nibble, default 4.
    pub version: u8,
    /// Header length in words; `None` = `5 + options / 4`.
    pub ihl: Option<u8>,
    /// Protocol; `None` derives it from the next layer.
    pub protocol: Option<u8>,
    /// Total length; `None` = header and everything after it.
    pub total_len: Option<u16>,
    /// Header checksum; `None` computes it.
    pub checksum: Option<u16>,
}

impl Ipv4 {
    /// A header from `src` to `dst` with defaults elsewhere.
    pub fn new(src: impl ToIpv4, dst: impl ToIpv4) -> Ipv4 {
        Ipv4 { src: src.to_ipv4(), dst: dst.to_ipv4(), ..Ipv4::default() }
    }
}

impl Default for Ipv4 {
    fn default() -> Ipv4 {
        Ipv4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            tos: 0,
            id: 1,
            df: false,
            mf: false,
            frag_offset: 0,
            ttl: 64,
            options: Vec::new(),
            version: 4,
            ihl: None,
            protocol: None,
            total_len: None,
            checksum: None,
        }
    }
}

/// IPv6 fixed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6 {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Traffic class.
    pub tclass: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Hop limit, default 64.
    pub hop_limit: u8,
    /// Next header; `None` derives it from the next layer.
    pub next: Option<u8>,
    /// Payload length; `None` = everything after the fixed header.
    pub payload_len: Option<u16>,
}

impl Ipv6 {
    /// A header from `src` to `dst` with defaults elsewhere.
    pub fn new(src: impl ToIpv6, dst: impl ToIpv6) -> Ipv6 {
        Ipv6 { src: src.to_ipv6(), dst: dst.to_ipv6(), ..Ipv6::default() }
    }
}

impl Default for Ipv6 {
    fn default() -> Ipv6 {
        Ipv6 {
            src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            tclass: 0,
            flow_label: 0,
            hop_limit: 64,
            next: None,
            payload_len: None,
        }
    }
}

/// The kind of an IPv6 extension header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtKind {
    /// Hop-by-hop options (next header 0).
    HopByHop,
    /// Routing header (43), type 0 with no segments left.
    Routing,
    /// Destination options (60).
    DestOpts,
    /// Fragment header (44), always 8 bytes.
    Fragment {
        /// Fragment offset in 8-byte units (13 bits).
        offset: u16,
        /// More-fragments flag.
        more: bool,
    },
}

impl ExtKind {
    /// The next-header value announcing this extension header.
    pub fn number(self) -> u8 {
        match self {
            ExtKind::HopByHop => 0,
            ExtKind::Routing => 43,
            ExtKind::DestOpts => 60,
            ExtKind::Fragment { .. } => 44,
        }
    }
}

/// An IPv6 extension header, zero-filled (Pad1 options) after its fixed part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Ext {
    /// Which header.
    pub kind: ExtKind,
    /// Length in 8-byte units beyond the first 8 (ignored for fragments).
    pub len: u8,
    /// Next header; `None` derives it from the next layer.
    pub next: Option<u8>,
}

/// ARP for IPv4 over Ethernet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Operation, 1 request (default), 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender IPv4 address.
    pub sip: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target IPv4 address.
    pub tip: Ipv4Addr,
}

impl Default for Arp {
    fn default() -> Arp {
        Arp {
            op: 1,
            sha: [2, 0, 0, 0, 0, 1],
            sip: Ipv4Addr::new(10, 0, 0, 1),
            tha: [0; 6],
            tip: Ipv4Addr::new(10, 0, 0, 2),
        }
    }
}

/// TCP header without options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tcp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags byte (cwr ece urg ack psh rst syn fin).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Checksum; `None` computes it.
    pub checksum: Option<u16>,
}

/// TCP flag bits, for [`Tcp::flags`].
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// UDP header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Udp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Length; `None` = header and everything after it.
    pub len: Option<u16>,
    /// Checksum; `None` computes it.
    pub checksum: Option<u16>,
}

/// SCTP common header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sctp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Verification tag.
    pub vtag: u32,
}

/// ICMP (over IPv4) or ICMPv6 header: type, code, checksum and 4 more bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Icmp {
    /// Message type.
    pub kind: u8,
    /// Message code.
    pub code: u8,
    /// The 4 bytes after the checksum (identifier and sequence for echo).
    pub rest: u32,
}

/// One protocol layer of a frame, outermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Ethernet II.
    Eth(Eth),
    /// A VLAN tag.
    Vlan(Vlan),
    /// IPv4.
    Ipv4(Ipv4),
    /// IPv6 fixed header.
    Ipv6(Ipv6),
    /// IPv6 extension header.
    Ipv6Ext(Ipv6Ext),
    /// ARP.
    Arp(Arp),
    /// TCP.
    Tcp(Tcp),
    /// UDP.
    Udp(Udp),
    /// SCTP.
    Sctp(Sctp),
    /// ICMP over IPv4.
    Icmp(Icmp),
    /// ICMPv6.
    Icmp6(Icmp),
    /// Raw bytes.
    Payload(Vec<u8>),
}

impl Layer {
    /// Bytes this layer's own header takes in a built packet (options and extension
    /// lengths included; a payload's own length).
    pub fn header_len(&self) -> usize {
        encode::header_len(self)
    }

    /// The protocol of `crate::fields` this layer is the header of (`None` for IPv6
    /// extension headers and payload, which no field reads by a fixed offset).
    pub fn proto(&self) -> Option<Proto> {
        Some(match self {
            Layer::Eth(_) => Proto::Eth,
            Layer::Vlan(_) => Proto::Vlan,
            Layer::Ipv4(_) => Proto::Ipv4,
            Layer::Ipv6(_) => Proto::Ipv6,
            Layer::Arp(_) => Proto::Arp,
            Layer::Tcp(_) => Proto::Tcp,
            Layer::Udp(_) => Proto::Udp,
            Layer::Sctp(_) => Proto::Sctp,
            Layer::Icmp(_) => Proto::Icmp,
            Layer::Icmp6(_) => Proto::Icmp6,
            Layer::Ipv6Ext(_) | Layer::Payload(_) => return None,
        })
    }
}

macro_rules! layer_from {
    ($($ty:ident => $variant:ident),*) => {$(
        impl From<$ty> for Layer {
            fn from(layer: $ty) -> Layer {
                Layer::$variant(layer)
            }
        }
    )*};
}

layer_from!(Eth => Eth, Vlan => Vlan, Ipv4 => Ipv4, Ipv6 => Ipv6, Ipv6Ext => Ipv6Ext,
    Arp => Arp, Tcp => Tcp, Udp => Udp, Sctp => Sctp);

/// A frame under construction: a list of layers, field values written over them, and an
/// optional truncation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// The layers, outermost first.
    pub layers: Vec<Layer>,
    /// Keep only this many bytes of the built frame.
    pub truncate: Option<usize>,
    /// Field values written over the encoded layers, in order ([`Packet::set`]).
    writes: Vec<FieldWrite>,
}

/// A value [`Packet::set`] writes into a header field of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldWrite {
    /// Index of the layer in [`Packet::layers`].
    layer: usize,
    /// Where the bits go, from the field's [`FieldSource::Header`].
    offset: usize,
    size: usize,
    shift: u32,
    mask: u128,
    /// The bits, before the shift (the field's value minus its `add`).
    bits: u128,
}

/// Why [`Packet::set`] cannot write a field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SetError {
    /// The field is not bits at a fixed place of one header (`eth.type`, `ipv6.proto`,
    /// `pkt.len` are derived from the whole frame).
    #[error("`{field}` is derived from the frame, not a place in one header")]
    NotInHeader {
        /// The field's name.
        field: &'static str,
    },
    /// No layer of the field's protocol has been pushed.
    #[error("no `{proto}` layer to set `{field}` in")]
    NoLayer {
        /// The field's name.
        field: &'static str,
        /// The protocol it needs.
        proto: &'static str,
    },
    /// The value does not fit the field.
    #[error("`{field}` cannot hold {value}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The value.
        value: u128,
    },
}

impl Packet {
    /// An empty frame, to [`push`](Packet::push) layers on.
    pub fn new() -> Packet {
        Packet::default()
    }

    /// A frame starting with a default Ethernet header.
    pub fn eth() -> Packet {
        Packet::new().push(Eth::default())
    }

    /// Appends any layer.
    pub fn push(mut self, layer: impl Into<Layer>) -> Packet {
        self.layers.push(layer.into());
        self
    }

    /// Appends an 802.1Q tag with VLAN `id`.
    pub fn vlan(self, id: u16) -> Packet {
        self.push(Vlan { id, ..Vlan::default() })
    }

    /// Appends an IPv4 header.
    pub fn ipv4(self, src: impl ToIpv4, dst: impl ToIpv4) -> Packet {
        self.push(Ipv4::new(src, dst))
    }

    /// Appends an IPv6 header.
    pub fn ipv6(self, src: impl ToIpv6, dst: impl ToIpv6) -> Packet {
        self.push(Ipv6::new(src, dst))
    }

    /// Appends an IPv6 extension header of `kind` with length field `len`.
    pub fn ext(self, kind: ExtKind, len: u8) -> Packet {
        self.push(Ipv6Ext { kind, len, next: None })
    }

    /// Appends an ARP message.
    pub fn arp(self, op: u16, sip: impl ToIpv4, tip: impl ToIpv4) -> Packet {
        self.push(Arp { op, sip: sip.to_ipv4(), tip: tip.to_ipv4(), ..Arp::default() })
    }

    /// Appends a TCP header with the SYN flag and a 65535 window.
    pub fn tcp(self, sport: u16, dport: u16) -> Packet {
        self.push(Tcp { sport, dport, flags: tcp_flags::SYN, window: 65535, ..Tcp::default() })
    }

    /// Appends a UDP header.
    pub fn udp(self, sport: u16, dport: u16) -> Packet {
        self.push(Udp { sport, dport, ..Udp::default() })
    }

    /// Appends an SCTP common header.
    pub fn sctp(self, sport: u16, dport: u16) -> Packet {
        self.push(Sctp { sport, dport, vtag: 0 })
    }

    /// Appends an ICMP header.
    pub fn icmp(self, kind: u8, code: u8) -> Packet {
        self.push(Layer::Icmp(Icmp { kind, code, rest: 0 }))
    }

    /// Appends an ICMPv6 header.
    pub fn icmp6(self, kind: u8, code: u8) -> Packet {
        self.push(Layer::Icmp6(Icmp { kind, code, rest: 0 }))
    }

    /// Appends raw bytes.
    pub fn payload(self, bytes: impl Into<Vec<u8>>) -> Packet {
        self.push(Layer::Payload(bytes.into()))
    }

    /// Writes `value` into `field` of the last layer so far of the field's protocol, as
    /// the interpreter reads it (`value` is what `field == value` in a rule tests), over
    /// the encoded layer and before checksums are computed. Works for every field that
    /// is bits at a fixed offset of one header, so a field added to `crate::fields` can
    /// be set without a member in its layer struct.
    pub fn set(mut self, field: Field, value: u128) -> Result<Packet, SetError> {
        let FieldSource::Header { proto, offset, size, shift, mask, add } = field.source() else {
            return Err(SetError::NotInHeader { field: field.name() });
        };
        let no_layer = SetError::NoLayer { field: field.name(), proto: proto.name() };
        let layer = self.layers.iter().rposition(|layer| layer.proto() == Some(proto)).ok_or(no_layer)?;
        let bits = value.checked_sub(add).filter(|&bits| bits <= mask && value <= field.kind().max());
        let bits = bits.ok_or(SetError::OutOfRange { field: field.name(), value })?;
        if offset + size > self.layers[layer].header_len() {
            return Err(SetError::NotInHeader { field: field.name() });
        }
        self.writes.push(FieldWrite { layer, offset, size, shift, mask, bits });
        Ok(self)
    }

    /// Changes the last layer of type `T` (`.edit(|ip: &mut Ipv4| ip.ttl = 1)`; feature
    /// `test-builders`).
    ///
    /// # Panics
    /// There is no layer of that type (a bug in the test that wrote it).
    #[cfg(any(test, feature = "test-builders"))]
    pub fn edit<T: LayerType>(mut self, change: impl FnOnce(&mut T)) -> Packet {
        let layer = self.layers.iter_mut().rev().find_map(T::of_layer);
        change(layer.unwrap_or_else(|| panic!("no {} layer to edit", std::any::type_name::<T>())));
        self
    }

    /// Keeps only the first `len` bytes of the built frame.
    pub fn truncate(mut self, len: usize) -> Packet {
        self.truncate = Some(len);
        self
    }

    /// The frame's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut bytes = encode::encode(&self.layers, &self.writes);
        if let Some(len) = self.truncate {
            bytes.truncate(len);
        }
        bytes
    }
}

/// A layer struct that `Packet::edit` (feature `test-builders`) can find in a [`Layer`].
pub trait LayerType {
    /// The struct inside `layer`, if it is of this type.
    fn of_layer(layer: &mut Layer) -> Option<&mut Self>;
}

macro_rules! layer_type {
    ($($ty:ident => $($variant:ident)|+),*) => {$(
        impl LayerType for $ty {
            fn of_layer(layer: &mut Layer) -> Option<&mut $ty> {
                match layer {
                    $(Layer::$variant(inner))|+ => Some(inner),
                    _ => None,
                }
            }
        }
    )*};
}

layer_type!(Eth => Eth, Vlan => Vlan, Ipv4 => Ipv4, Ipv6 => Ipv6, Ipv6Ext => Ipv6Ext,
    Arp => Arp, Tcp => Tcp, Udp => Udp, Sctp => Sctp, Icmp => Icmp | Icmp6);
