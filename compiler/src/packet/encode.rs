//! Serialization of a layer stack. Input: [`Layer`]s; output: the frame's bytes with
//! every derived field (ethertypes, protocol numbers, lengths, checksums) filled in.
//!
//! Two passes: the first writes each header knowing its successor and how many bytes
//! follow it; then the field values of [`Packet::set`](super::Packet::set) are written
//! over the headers (an IPv4 header they touch gets its checksum again); the second pass
//! fills transport checksums, which cover everything after the header.

use super::{ExtKind, FieldWrite, Ipv4, Ipv6, Ipv6Ext, Layer, ETHERTYPE_UNKNOWN};

/// IP protocol "no next header", written when nothing known follows an IP header.
const NO_NEXT_HEADER: u8 = 59;

/// The frame's bytes for `layers` with `writes` applied, untruncated.
pub(super) fn encode(layers: &[Layer], writes: &[FieldWrite]) -> Vec<u8> {
    let total: usize = layers.iter().map(header_len).sum();
    let mut out = Vec::with_capacity(total);
    let mut starts = Vec::with_capacity(layers.len());
    for (index, layer) in layers.iter().enumerate() {
        starts.push(out.len());
        let after = total - out.len() - header_len(layer);
        write_layer(&mut out, layer, layers.get(index + 1), after);
    }
    for write in writes {
        write_field(&mut out[starts[write.layer]..], write);
    }
    for write in writes {
        if let Layer::Ipv4(Ipv4 { checksum: None, .. }) = layers[write.layer] {
            let header = &mut out[starts[write.layer]..][..header_len(&layers[write.layer])];
            header[10..12].fill(0);
            let checksum = internet_checksum(0, header);
            header[10..12].copy_from_slice(&checksum.to_be_bytes());
        }
    }
    for (index, layer) in layers.iter().enumerate() {
        fill_checksum(&mut out, layers, &starts, index, layer);
    }
    out
}

/// Bytes the layer's own header takes.
pub(super) fn header_len(layer: &Layer) -> usize {
    match layer {
        Layer::Eth(_) => 14,
        Layer::Vlan(_) => 4,
        Layer::Ipv4(ip) => 20 + ip.options.len().div_ceil(4) * 4,
        Layer::Ipv6(_) => 40,
        Layer::Ipv6Ext(Ipv6Ext { kind: ExtKind::Fragment { .. }, .. }) => 8,
        Layer::Ipv6Ext(ext) => (usize::from(ext.len) + 1) * 8,
        Layer::Arp(_) => 28,
        Layer::Tcp(_) => 20,
        Layer::Udp(_) | Layer::Icmp(_) | Layer::Icmp6(_) => 8,
        Layer::Sctp(_) => 12,
        Layer::Payload(bytes) => bytes.len(),
    }
}

/// The ethertype announcing `next`.
fn ethertype_of(next: Option<&Layer>) -> u16 {
    match next {
        Some(Layer::Vlan(tag)) => tag.tpid,
        Some(Layer::Ipv4(_)) => 0x0800,
        Some(Layer::Ipv6(_)) => 0x86dd,
        Some(Layer::Arp(_)) => 0x0806,
        _ => ETHERTYPE_UNKNOWN,
    }
}

/// The IP protocol / next-header number announcing `next`.
fn ip_protocol_of(next: Option<&Layer>) -> u8 {
    match next {
        Some(Layer::Tcp(_)) => 6,
        Some(Layer::Udp(_)) => 17,
        Some(Layer::Sctp(_)) => 132,
        Some(Layer::Icmp(_)) => 1,
        Some(Layer::Icmp6(_)) => 58,
        Some(Layer::Ipv4(_)) => 4,
        Some(Layer::Ipv6(_)) => 41,
        Some(Layer::Ipv6Ext(ext)) => ext.kind.number(),
        _ => NO_NEXT_HEADER,
    }
}

/// Appends `layer`'s header; `after` bytes of later layers follow it.
fn write_layer(out: &mut Vec<u8>, layer: &Layer, next: Option<&Layer>, after: usize) {
    match layer {
        Layer::Eth(eth) => {
            out.extend_from_slice(&eth.dst);
            out.extend_from_slice(&eth.src);
            put16(out, eth.ethertype.unwrap_or_else(|| ethertype_of(next)));
        }
        Layer::Vlan(tag) => {
            let tci = (u16::from(tag.pcp & 7) << 13) | (u16::from(tag.dei) << 12) | (tag.id & 0xfff);
            put16(out, tci);
            put16(out, tag.ethertype.unwrap_or_else(|| ethertype_of(next)));
        }
        Layer::Ipv4(ip) => write_ipv4(out, ip, next, after),
        Layer::Ipv6(ip) => write_ipv6(out, ip, next, after),
        Layer::Ipv6Ext(ext) => {
            out.push(ext.next.unwrap_or_else(|| ip_protocol_of(next)));
            match ext.kind {
                ExtKind::Fragment { offset, more } => {
                    out.push(0);
                    put16(out, ((offset & 0x1fff) << 3) | u16::from(more));
                    put32(out, 1); // identification
                }
                ExtKind::Routing => {
                    out.extend_from_slice(&[ext.len, 0, 0]); // type 0, no segments left
                    out.resize(out.len() + header_len(layer) - 4, 0);
                }
                ExtKind::HopByHop | ExtKind::DestOpts => {
                    out.push(ext.len);
                    out.resize(out.len() + header_len(layer) - 2, 0); // Pad1 options
                }
            }
        }
        Layer::Arp(arp) => {
            put16(out, 1); // Ethernet
            put16(out, 0x0800); // IPv4
            out.extend_from_slice(&[6, 4]);
            put16(out, arp.op);
            out.extend_from_slice(&arp.sha);
            out.extend_from_slice(&arp.sip.octets());
            out.extend_from_slice(&arp.tha);
            out.extend_from_slice(&arp.tip.octets());
        }
        Layer::Tcp(tcp) => {
            put16(out, tcp.sport);
            put16(out, tcp.dport);
            put32(out, tcp.seq);
            put32(out, tcp.ack);
            out.extend_from_slice(&[5 << 4, tcp.flags]);
            put16(out, tcp.window);
            put16(out, 0); // checksum, second pass
            put16(out, 0); // urgent pointer
        }
        Layer::Udp(udp) => {
            put16(out, udp.sport);
            put16(out, udp.dport);
            put16(out, udp.len.unwrap_or((8 + after) as u16));
            put16(out, 0); // checksum, second pass
        }
        Layer::Sctp(sctp) => {
            put16(out, sctp.sport);
            put16(out, sctp.dport);
            put32(out, sctp.vtag);
            put32(out, 0); // CRC32c, second pass
        }
        Layer::Icmp(icmp) | Layer::Icmp6(icmp) => {
            out.extend_from_slice(&[icmp.kind, icmp.code, 0, 0]);
            put32(out, icmp.rest);
        }
        Layer::Payload(bytes) => out.extend_from_slice(bytes),
    }
}

/// Writes a field's bits into the header starting at `header[0]`: the `size` bytes at
/// `offset`, big-endian, keep their bits outside `mask << shift`.
fn write_field(header: &mut [u8], write: &FieldWrite) {
    let bytes = &mut header[write.offset..write.offset + write.size];
    let word = bytes.iter().fold(0u128, |word, &byte| (word << 8) | u128::from(byte));
    let word = (word & !(write.mask << write.shift)) | ((write.bits & write.mask) << write.shift);
    bytes.copy_from_slice(&word.to_be_bytes()[16 - write.size..]);
}

fn write_ipv4(out: &mut Vec<u8>, ip: &Ipv4, next: Option<&Layer>, after: usize) {
    let start = out.len();
    let header = header_len(&Layer::Ipv4(Ipv4 { options: ip.options.clone(), ..Ipv4::default() }));
    let ihl = ip.ihl.unwrap_or((header / 4) as u8);
    out.extend_from_slice(&[(ip.version << 4) | (ihl & 0xf), ip.tos]);
    put16(out, ip.total_len.unwrap_or((header + after) as u16));
    put16(out, ip.id);
    let flags = (u16::from(ip.df) << 14) | (u16::from(ip.mf) << 13);
    put16(out, flags | (ip.frag_offset & 0x1fff));
    out.extend_from_slice(&[ip.ttl, ip.protocol.unwrap_or_else(|| ip_protocol_of(next))]);
    put16(out, 0);
    out.extend_from_slice(&ip.src.octets());
    out.extend_from_slice(&ip.dst.octets());
    out.extend_from_slice(&ip.options);
    out.resize(start + header, 0);
    let checksum = ip.checksum.unwrap_or_else(|| internet_checksum(0, &out[start..]));
    out[start + 10..start + 12].copy_from_slice(&checksum.to_be_bytes());
}

fn write_ipv6(out: &mut Vec<u8>, ip: &Ipv6, next: Option<&Layer>, after: usize) {
    let first = (6u32 << 28) | (u32::from(ip.tclass) << 20) | (ip.flow_label & 0xfffff);
    put32(out, first);
    put16(out, ip.payload_len.unwrap_or(after as u16));
    out.extend_from_slice(&[ip.next.unwrap_or_else(|| ip_protocol_of(next)), ip.hop_limit]);
    out.extend_from_slice(&ip.src.octets());
    out.extend_from_slice(&ip.dst.octets());
}

/// Fills the checksum of a transport layer at `index`, which covers the rest of the
/// frame; TCP, UDP and ICMPv6 include the pseudo-header of the nearest IP layer before.
fn fill_checksum(out: &mut [u8], layers: &[Layer], starts: &[usize], index: usize, layer: &Layer) {
    let start = starts[index];
    let (protocol, at, fixed): (u8, usize, Option<u16>) = match layer {
        Layer::Tcp(tcp) => (6, 16, tcp.checksum),
        Layer::Udp(udp) => (17, 6, udp.checksum),
        Layer::Icmp(_) => (1, 2, None),
        Layer::Icmp6(_) => (58, 2, None),
        Layer::Sctp(_) => {
            let crc = crc32c(&out[start..]);
            out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
            return;
        }
        _ => return,
    };
    let checksum = fixed.unwrap_or_else(|| {
        // The addresses as encoded (a `Packet::set` may have written them).
        let carrier = (0..index).rev().find(|&i| matches!(layers[i], Layer::Ipv4(_) | Layer::Ipv6(_)));
        let length = out.len() - start;
        let pseudo = match carrier.map(|i| (&layers[i], starts[i])) {
            _ if protocol == 1 => 0,
            Some((Layer::Ipv4(_), ip)) => sum_words(0, &out[ip + 12..ip + 20]) + u32::from(protocol) + length as u32,
            Some((Layer::Ipv6(_), ip)) => {
                let sum = sum_words(0, &out[ip + 8..ip + 40]);
                sum_words(sum, &(length as u32).to_be_bytes()) + u32::from(protocol)
            }
            _ => 0,
        };
        match internet_checksum(pseudo, &out[start..]) {
            0 if protocol == 17 => 0xffff, // UDP: 0 means "no checksum"
            sum => sum,
        }
    });
    out[start + at..start + at + 2].copy_from_slice(&checksum.to_be_bytes());
}

/// Adds `bytes` as big-endian 16-bit words (odd length zero-padded) to `sum`.
fn sum_words(sum: u32, bytes: &[u8]) -> u32 {
    bytes.chunks(2).fold(sum, |acc, pair| {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        acc.wrapping_add(u32::from(word))
    })
}

/// The RFC 1071 checksum of `bytes` with `initial` (pseudo-header) already summed.
fn internet_checksum(initial: u32, bytes: &[u8]) -> u16 {
    let mut sum = sum_words(initial, bytes);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// CRC32c (Castagnoli), as SCTP computes it (RFC 4960 appendix B).
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::{crc32c, internet_checksum, sum_words};
    use crate::eval::Headers;
    use crate::fields::{Field, FieldSource, Proto};
    use crate::packet::{mac, ExtKind, Ipv4, Packet, SetError};

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    /// A correct checksum makes the covered bytes sum to 0xffff, so re-checksumming
    /// them gives 0.
    #[test]
    fn ipv4_header_checksum_verifies() {
        let frame = Packet::eth().ipv4("192.0.2.1", "198.51.100.7").udp(53, 53).build();
        assert_eq!(internet_checksum(0, &frame[14..34]), 0);
    }

    #[test]
    fn derived_fields_are_filled() {
        let frame = Packet::eth().vlan(5).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload([9; 3]).build();
        assert_eq!(&frame[12..14], &[0x81, 0x00]);
        assert_eq!(&frame[14..16], &[0x00, 0x05]);
        assert_eq!(&frame[16..18], &[0x08, 0x00]);
        assert_eq!(frame[18] & 0x0f, 5);
        assert_eq!(&frame[20..22], &[0, 20 + 8 + 3]); // total length
        assert_eq!(frame[27], 17); // protocol
        assert_eq!(&frame[42..44], &[0, 8 + 3]); // UDP length
        assert_eq!(frame.len(), 14 + 4 + 20 + 8 + 3);
    }

    #[test]
    fn ipv6_chain_links_next_headers_and_payload_length() {
        let frame = Packet::eth()
            .ipv6("::1", "::2")
            .ext(ExtKind::HopByHop, 0)
            .ext(ExtKind::Fragment { offset: 3, more: true }, 0)
            .tcp(1, 2)
            .build();
        assert_eq!(&frame[18..20], &[0, 8 + 8 + 20]);
        assert_eq!(frame[20], 0); // next: hop-by-hop
        assert_eq!(frame[54], 44); // hop-by-hop next: fragment
        assert_eq!(frame[62], 6); // fragment next: TCP
        assert_eq!(&frame[64..66], &[0, 3 << 3 | 1]);
    }

    #[test]
    fn options_are_padded_and_counted_in_ihl() {
        let frame = Packet::eth().push(Ipv4 { options: vec![1, 1, 1, 1, 1], ..Ipv4::default() }).build();
        assert_eq!(frame[14], 0x47);
        assert_eq!(frame.len(), 14 + 28);
        assert_eq!(internet_checksum(0, &frame[14..42]), 0);
    }

    /// Re-summing a transport segment with its pseudo-header gives 0 when the stored
    /// checksum is right.
    fn pseudo_sum(frame: &[u8], ip: usize, l4: usize, v6: bool, protocol: u8) -> u16 {
        let length = (frame.len() - l4) as u32;
        let addresses = if v6 { &frame[ip + 8..ip + 40] } else { &frame[ip + 12..ip + 20] };
        let pseudo = sum_words(0, addresses) + length + u32::from(protocol);
        internet_checksum(pseudo, &frame[l4..])
    }

    #[test]
    fn transport_checksums_verify() {
        let tcp4 = Packet::eth().ipv4("192.0.2.1", "192.0.2.2").tcp(1, 2).payload(*b"abc").build();
        assert_eq!(pseudo_sum(&tcp4, 14, 34, false, 6), 0);
        let udp6 = Packet::eth().ipv6("2001:db8::1", "ff02::1").ext(ExtKind::HopByHop, 0).udp(5, 6).build();
        assert_eq!(pseudo_sum(&udp6, 14, 62, true, 17), 0);
        let icmp6 = Packet::eth().vlan(3).ipv6("fe80::1", "fe80::2").icmp6(135, 0).build();
        assert_eq!(pseudo_sum(&icmp6, 18, 58, true, 58), 0);
        // An echo request with zero id, sequence and payload: !0x0800.
        let ping = Packet::eth().ipv4("10.0.0.1", "10.0.0.2").icmp(8, 0).build();
        assert_eq!(&ping[36..38], &[0xf7, 0xff]);
        let sctp = Packet::eth().ipv4("10.0.0.1", "10.0.0.2").sctp(7, 8).payload([1, 2, 3, 4]).build();
        let mut zeroed = sctp[34..].to_vec();
        zeroed[8..12].fill(0);
        assert_eq!(&sctp[42..46], &crc32c(&zeroed).to_le_bytes());
    }

    #[test]
    fn edit_changes_the_last_layer_and_truncate_cuts() {
        let frame = Packet::eth().ipv4("10.0.0.1", "10.0.0.2").edit(|ip: &mut Ipv4| ip.ttl = 7).build();
        assert_eq!(frame[22], 7);
        assert_eq!(Packet::eth().truncate(5).build(), vec![2, 0, 0, 0, 0]);
        assert_eq!(mac("aa:bb:cc:dd:ee:0f"), [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]);
    }

    /// A frame holding `proto`'s header.
    fn frame_with(proto: Proto) -> Packet {
        let v4 = || Packet::eth().vlan(3).ipv4("10.0.0.1", "10.0.0.2");
        let v6 = || Packet::eth().ipv6("2001:db8::1", "2001:db8::2");
        match proto {
            Proto::Arp => Packet::eth().arp(1, "10.0.0.1", "10.0.0.2"),
            Proto::Ipv6 | Proto::Udp => v6().udp(1, 2),
            Proto::Icmp6 => v6().icmp6(128, 0),
            Proto::Sctp => v4().sctp(1, 2),
            Proto::Icmp => v4().icmp(8, 0),
            Proto::Eth | Proto::Vlan | Proto::Ipv4 | Proto::Tcp => v4().tcp(1, 2),
        }
    }

    /// Every field that is bits of one header, set by name, reads back through the
    /// interpreter, whatever its width, shift or offset: a field added to the `fields!`
    /// table is covered here without a line.
    #[test]
    fn every_header_field_set_by_name_reads_back() {
        for &field in Field::ALL {
            let FieldSource::Header { proto, .. } = field.source() else { continue };
            // A third of the range: in range for every field, and `ipv4.ihl` stays 5.
            let value = field.kind().max() / 3;
            let packet = frame_with(proto).set(field, value).unwrap_or_else(|e| panic!("{}: {e}", field.name()));
            let frame = packet.build();
            assert_eq!(Headers::parse(&frame).field_value(field), Some(value), "{} in {frame:02x?}", field.name());
        }
    }

    #[test]
    fn set_fixes_checksums_and_refuses_what_it_cannot_write() {
        let frame = Packet::eth().ipv4("192.0.2.1", "192.0.2.2").tcp(1, 2).set(Field::Ipv4Ttl, 9).unwrap().build();
        assert_eq!(frame[22], 9);
        assert_eq!(internet_checksum(0, &frame[14..34]), 0);
        let moved = Packet::eth().ipv4("192.0.2.1", "192.0.2.2").tcp(1, 2).set(Field::Ipv4Src, 0x0a00_0009).unwrap();
        let moved = moved.build();
        assert_eq!(&moved[26..30], &[10, 0, 0, 9]);
        assert_eq!(pseudo_sum(&moved, 14, 34, false, 6), 0);
        let tagged = Packet::eth().vlan(0xabc).set(Field::VlanPcp, 5).unwrap().build();
        assert_eq!(&tagged[14..16], &[0xaa, 0xbc]); // pcp 5 above id 0xabc
        let refused = |packet: Packet, field: Field, value: u128| packet.set(field, value).unwrap_err();
        let ipv6 = || Packet::eth().ipv6("::1", "::2");
        assert_eq!(refused(Packet::eth(), Field::EthType, 1), SetError::NotInHeader { field: "eth.type" });
        assert_eq!(refused(Packet::eth(), Field::TcpSport, 1), SetError::NoLayer { field: "tcp.sport", proto: "tcp" });
        assert_eq!(
            refused(Packet::eth().vlan(1), Field::VlanPcp, 8),
            SetError::OutOfRange { field: "vlan.pcp", value: 8 }
        );
        assert_eq!(refused(ipv6(), Field::Ipv6Len, 39), SetError::OutOfRange { field: "ipv6.len", value: 39 });
        assert_eq!(ipv6().set(Field::Ipv6Len, 100).unwrap().build()[18..20], [0, 60]);
    }
}
