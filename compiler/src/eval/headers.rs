//! Header parsing for the interpreter. Input: the bytes of one frame; output: a
//! [`Headers`] view holding the offset of every present header and the few values that
//! take a walk to find (payload ethertype, IPv6 upper-layer protocol).
//!
//! The exact rules are listed in the [`crate::eval`] module documentation; this file is
//! their implementation. Every read goes through `slice::get`, so no byte string can
//! make parsing panic, and nothing here allocates.

use crate::fields::{Field, FieldSource, Proto};

/// Ethertype of an IPv4 payload.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of an IPv6 payload.
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Ethertype of an ARP payload.
const ETHERTYPE_ARP: u16 = 0x0806;
/// Tag protocol identifier of an 802.1Q (customer) VLAN tag.
const TPID_8021Q: u16 = 0x8100;
/// Tag protocol identifier of an 802.1ad (service, "QinQ") VLAN tag.
const TPID_8021AD: u16 = 0x88a8;
pub use crate::fields::{MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS};

/// IPv6 next-header values of the extension headers that are walked.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;

/// The headers found in one frame, computed once per packet by [`Headers::parse`].
///
/// **Invariant:** a header is recorded only when all of its bytes (at least
/// [`Proto::min_len`], for IPv4 all `ihl * 4`) lie inside the packet, so every field
/// of a present header can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    /// The frame itself.
    pub packet: &'a [u8],
    /// Start of each present header, indexed by `Proto as usize` (the order of
    /// [`Proto::ALL`]); `None` when the header is absent or truncated.
    pub offsets: [Option<usize>; Proto::ALL.len()],
    /// Number of complete VLAN tags parsed (0, 1 or 2).
    pub vlan_tags: u8,
    /// The ethertype after the Ethernet header and the parsed VLAN tags; `None` when
    /// the frame has no Ethernet header or a VLAN tag is truncated.
    pub payload_ethertype: Option<u16>,
    /// Where the network header (ARP, IPv4, IPv6) starts or would start; `None` when
    /// the payload ethertype is unknown.
    pub network_offset: Option<usize>,
    /// The IPv6 upper-layer protocol after the extension headers; `None` without IPv6
    /// or when the chain could not be walked to its end.
    pub ipv6_upper_protocol: Option<u8>,
}

impl<'a> Headers<'a> {
    /// Parses the headers of `packet`. Never panics, never allocates.
    pub fn parse(packet: &'a [u8]) -> Headers<'a> {
        let mut headers = Headers {
            packet,
            offsets: [None; Proto::ALL.len()],
            vlan_tags: 0,
            payload_ethertype: None,
            network_offset: None,
            ipv6_upper_protocol: None,
        };
        if packet.len() < Proto::Eth.min_len() {
            return headers;
        }
        headers.set(Proto::Eth, 0);
        let Some((ethertype, network)) = headers.parse_vlan_tags() else {
            return headers;
        };
        headers.payload_ethertype = Some(ethertype);
        headers.network_offset = Some(network);
        match ethertype {
            ETHERTYPE_IPV4 => headers.parse_ipv4(network),
            ETHERTYPE_IPV6 => headers.parse_ipv6(network),
            ETHERTYPE_ARP if headers.fits(network, Proto::Arp.min_len()) => {
                headers.set(Proto::Arp, network);
            }
            _ => {}
        }
        headers
    }

    /// Where `proto`'s header starts, if it is present.
    pub fn offset(&self, proto: Proto) -> Option<usize> {
        self.offsets[proto as usize]
    }

    /// Whether `proto`'s header is present and complete.
    pub fn has(&self, proto: Proto) -> bool {
        self.offset(proto).is_some()
    }

    /// The frame's length in bytes.
    pub fn packet_len(&self) -> usize {
        self.packet.len()
    }

    /// The value of `field` in this packet, `None` when its header is absent (the
    /// atom's guard fails). Driven only by [`Field::source`]: `size` bytes read
    /// big-endian at the header's offset plus `offset`, shifted right by `shift`,
    /// masked with `mask`, plus `add`.
    pub fn field_value(&self, field: Field) -> Option<u128> {
        match field.source() {
            FieldSource::Header { proto, offset, size, shift, mask, add } => {
                let start = self.offset(proto)?.checked_add(offset)?;
                let bytes = self.packet.get(start..start.checked_add(size)?)?;
                let raw = read_be(bytes);
                Some((raw.checked_shr(shift).unwrap_or(0) & mask).wrapping_add(add))
            }
            FieldSource::PayloadEthertype => self.payload_ethertype.map(u128::from),
            FieldSource::Ipv6UpperProtocol => self.ipv6_upper_protocol.map(u128::from),
            FieldSource::PacketLength => Some(self.packet.len() as u128),
        }
    }

    /// Walks up to [`MAX_VLAN_TAGS`] tags after the Ethernet header. Returns the payload
    /// ethertype and where the network header starts, or `None` when a tag is truncated.
    fn parse_vlan_tags(&mut self) -> Option<(u16, usize)> {
        let mut ethertype = self.read_u16(12)?;
        let mut offset = Proto::Eth.min_len();
        while matches!(ethertype, TPID_8021Q | TPID_8021AD) && self.vlan_tags < MAX_VLAN_TAGS {
            if !self.fits(offset, Proto::Vlan.min_len()) {
                return None;
            }
            if self.vlan_tags == 0 {
                self.set(Proto::Vlan, offset);
            }
            self.vlan_tags += 1;
            ethertype = self.read_u16(offset + 2)?;
            offset += Proto::Vlan.min_len();
        }
        Some((ethertype, offset))
    }

    /// IPv4 at `offset`: needs 20 bytes, `ihl >= 5` and all `ihl * 4` bytes; the
    /// version nibble is not checked. L4 only when the fragment offset is zero.
    fn parse_ipv4(&mut self, offset: usize) {
        if !self.fits(offset, Proto::Ipv4.min_len()) {
            return;
        }
        let Some(&first) = self.packet.get(offset) else {
            return;
        };
        let header_len = usize::from(first & 0x0f) * 4;
        if header_len < Proto::Ipv4.min_len() || !self.fits(offset, header_len) {
            return;
        }
        self.set(Proto::Ipv4, offset);
        let (Some(&protocol), Some(fragment)) = (self.packet.get(offset + 9), self.read_u16(offset + 6)) else {
            return;
        };
        if fragment & 0x1fff == 0 {
            self.parse_l4(protocol, offset + header_len, Proto::Ipv4);
        }
    }

    /// IPv6 at `offset`: needs 40 bytes, then walks at most [`MAX_IPV6_EXT_HEADERS`]
    /// extension headers to find the upper-layer protocol and where L4 starts.
    fn parse_ipv6(&mut self, offset: usize) {
        if !self.fits(offset, Proto::Ipv6.min_len()) {
            return;
        }
        self.set(Proto::Ipv6, offset);
        let Some(&first_next) = self.packet.get(offset + 6) else {
            return;
        };
        let mut next = first_next;
        let mut cursor = offset + Proto::Ipv6.min_len();
        let mut walked = 0;
        loop {
            if !matches!(next, IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS | IPV6_FRAGMENT) {
                break;
            }
            if walked == MAX_IPV6_EXT_HEADERS {
                return; // chain too long: upper protocol unknown, no L4
            }
            walked += 1;
            if next == IPV6_FRAGMENT {
                if !self.fits(cursor, 8) {
                    return;
                }
                let (Some(&after), Some(offset_field)) = (self.packet.get(cursor), self.read_u16(cursor + 2)) else {
                    return;
                };
                if offset_field & 0xfff8 != 0 {
                    // A non-first fragment: what follows is data, not headers.
                    self.ipv6_upper_protocol = Some(after);
                    return;
                }
                next = after;
                cursor += 8;
            } else {
                let (Some(&after), Some(&units)) = (self.packet.get(cursor), self.packet.get(cursor + 1)) else {
                    return; // truncated extension header
                };
                let header_len = (usize::from(units) + 1) * 8;
                if !self.fits(cursor, header_len) {
                    return; // truncated extension header: its length reaches past the frame
                }
                next = after;
                cursor += header_len;
            }
        }
        self.ipv6_upper_protocol = Some(next);
        self.parse_l4(next, cursor, Proto::Ipv6);
    }

    /// Records the transport header for IP `protocol` at `offset` if all of its bytes
    /// are present; ICMP only over IPv4, ICMPv6 only over IPv6.
    fn parse_l4(&mut self, protocol: u8, offset: usize, carrier: Proto) {
        let proto = match protocol {
            6 => Proto::Tcp,
            17 => Proto::Udp,
            132 => Proto::Sctp,
            1 if carrier == Proto::Ipv4 => Proto::Icmp,
            58 if carrier == Proto::Ipv6 => Proto::Icmp6,
            _ => return,
        };
        if self.fits(offset, proto.min_len()) {
            self.set(proto, offset);
        }
    }

    fn set(&mut self, proto: Proto, offset: usize) {
        self.offsets[proto as usize] = Some(offset);
    }

    /// Whether `len` bytes starting at `offset` lie inside the packet.
    fn fits(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.packet.len())
    }

    fn read_u16(&self, offset: usize) -> Option<u16> {
        let bytes = self.packet.get(offset..offset.checked_add(2)?)?;
        Some(u16::from_be_bytes([bytes[0], bytes[1]]))
    }
}

/// `bytes` (at most 16) as a big-endian unsigned number: the sizes fields have (1, 2, 4,
/// 6, 16) as single loads, much cheaper than shifting a u128 byte by byte.
fn read_be(bytes: &[u8]) -> u128 {
    match *bytes {
        [a] => u128::from(a),
        [a, b] => u128::from(u16::from_be_bytes([a, b])),
        [a, b, c, d] => u128::from(u32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f] => u128::from(u64::from_be_bytes([0, 0, a, b, c, d, e, f])),
        _ => match <[u8; 16]>::try_from(bytes) {
            Ok(address) => u128::from_be_bytes(address),
            Err(_) => bytes.iter().fold(0u128, |acc, &byte| (acc << 8) | u128::from(byte)),
        },
    }
}
