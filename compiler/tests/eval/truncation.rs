//! Truncation at every byte boundary: a header is present exactly when all its bytes
//! fit, and a field's atom holds exactly when its header (or walk) fits.

use crate::support::{cmp, holds};
use pfc_compiler::eval::Headers;
use pfc_compiler::fields::{Field, FieldSource, Proto};
use pfc_compiler::packet::{ExtKind, Ipv4, Packet, Vlan};
use pfc_compiler::program::CmpOp;

/// Header length as the parser requires it (IPv4: all `ihl * 4` bytes).
fn required_len(proto: Proto, frame: &[u8], offset: usize) -> usize {
    match proto {
        Proto::Ipv4 => usize::from(frame[offset] & 0xf) * 4,
        _ => proto.min_len(),
    }
}

/// Cuts `frame` at every length and checks each header and field against the full
/// frame: `eth_type_from` and `upper_from` are the lengths from which the payload
/// ethertype and the IPv6 upper protocol become known.
#[track_caller]
fn check(frame: Vec<u8>, eth_type_from: usize, upper_from: Option<usize>) {
    let full = Headers::parse(&frame);
    for len in 0..=frame.len() {
        let cut = &frame[..len];
        let headers = Headers::parse(cut);
        for proto in Proto::ALL {
            let expected = full.offset(proto).filter(|&at| at + required_len(proto, &frame, at) <= len);
            assert_eq!(headers.offset(proto), expected, "{} at length {len} of {frame:02x?}", proto.name());
        }
        for &field in Field::ALL {
            let known = match field.source() {
                FieldSource::Header { proto, .. } => headers.has(proto),
                FieldSource::PayloadEthertype => len >= eth_type_from,
                FieldSource::Ipv6UpperProtocol => upper_from.is_some_and(|from| len >= from),
                FieldSource::PacketLength => true,
            };
            let value = headers.field_value(field);
            assert_eq!(value.is_some(), known, "{} known at length {len}", field.name());
            if field != Field::PktLen {
                assert!(value.is_none() || value == full.field_value(field), "{} changed at {len}", field.name());
            }
            // Whatever the value, `>= 0` holds exactly when the field can be read.
            assert_eq!(holds(cmp(field, CmpOp::Ge, 0), cut), known, "{} >= 0 at length {len}", field.name());
        }
    }
}

#[test]
#[rustfmt::skip]
fn every_byte_boundary() {
    let options = |ip: &mut Ipv4| ip.options = vec![0x94, 4, 0, 0, 1, 1, 1, 0];
    check(Packet::eth().vlan(3).ipv4("10.1.1.1", "10.2.2.2").edit(options).tcp(1, 22).payload([7; 4]).build(), 18, None);
    let outer = Vlan { tpid: 0x88a8, ..Vlan::default() };
    check(Packet::eth().push(outer).vlan(9).arp(1, "10.0.0.1", "10.0.0.2").build(), 22, None);
    check(Packet::eth().ipv4("10.1.1.1", "10.2.2.2").udp(53, 53).payload([1; 3]).build(), 14, None);
    check(Packet::eth().ipv4("10.1.1.1", "10.2.2.2").sctp(1, 2).build(), 14, None);
    check(Packet::eth().ipv4("10.1.1.1", "10.2.2.2").icmp(8, 0).build(), 14, None);
    check(Packet::eth().ipv6("::1", "::2").tcp(1, 2).build(), 14, Some(54));
    let first = ExtKind::Fragment { offset: 0, more: true };
    let later = ExtKind::Fragment { offset: 8, more: false };
    check(Packet::eth().ipv6("::1", "::2").ext(ExtKind::HopByHop, 1).ext(first, 0).udp(1, 2).build(), 14, Some(54 + 16 + 8));
    check(Packet::eth().vlan(1).ipv6("::1", "::2").ext(ExtKind::Routing, 0).ext(ExtKind::DestOpts, 0).icmp6(128, 0).build(), 18, Some(58 + 8 + 8));
    check(Packet::eth().ipv6("::1", "::2").ext(later, 0).tcp(1, 2).build(), 14, Some(54 + 8));
}

/// Every extension header kind and length, alone between IPv6 and TCP, cut at every
/// byte: the upper protocol (`ipv6.proto`) is known exactly from the length at which the
/// whole extension header is inside the frame (docs/language.md §8), not from its first
/// two bytes.
#[test]
fn extension_headers_count_only_when_complete() {
    let kinds = [
        ExtKind::HopByHop,
        ExtKind::Routing,
        ExtKind::DestOpts,
        ExtKind::Fragment { offset: 0, more: true },
        ExtKind::Fragment { offset: 8, more: false },
    ];
    for kind in kinds {
        let lens: &[u8] = if matches!(kind, ExtKind::Fragment { .. }) { &[0] } else { &[0, 1, 2] };
        for &len in lens {
            let ext_len = if matches!(kind, ExtKind::Fragment { .. }) { 8 } else { (usize::from(len) + 1) * 8 };
            check(
                Packet::eth().ipv6("2001:db8::1", "fe80::1").ext(kind, len).tcp(1000, 22).build(),
                14,
                Some(54 + ext_len),
            );
            // Behind a complete first extension header too.
            let chained =
                Packet::eth().ipv6("2001:db8::1", "fe80::1").ext(ExtKind::DestOpts, 1).ext(kind, len).udp(53, 53);
            check(chained.build(), 14, Some(54 + 16 + ext_len));
        }
    }
}

/// The frame of issue 9: IPv6 whose hop-by-hop header (8 bytes) is cut after 2 bytes.
/// `ipv6.proto == 6` must not hold (its next-header byte says 6, but the header is
/// truncated, so the upper protocol is unknown).
#[test]
fn truncated_hop_by_hop_leaves_the_upper_protocol_unknown() {
    let frame = pfc_compiler::testcase::parse_hex(
        "02000000000200112233440186dd60000000000800ff20010db8000000000000000000000001fe8000000000000000000000000000010600",
    )
    .expect("hex");
    assert_eq!(frame.len(), 56);
    let headers = Headers::parse(&frame);
    assert!(headers.has(Proto::Ipv6));
    assert_eq!(headers.ipv6_upper_protocol, None);
    assert_eq!(headers.field_value(Field::Ipv6Proto), None);
    assert!(!holds(cmp(Field::Ipv6Proto, CmpOp::Eq, 6), &frame));
    assert!(!holds(cmp(Field::Ipv6Proto, CmpOp::Ge, 0), &frame));
}
