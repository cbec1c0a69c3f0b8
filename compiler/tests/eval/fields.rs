//! Every field of `Field::ALL` read from a frame that has it, and every field false on
//! frames that lack its header, whatever the operator.

use crate::support::{cmp, eq, holds, holds_with, in_set, mac_value, v4 as v4_value, v6 as v6_value};
use pfc_compiler::eval::Headers;
use pfc_compiler::fields::Field::{self, *};
use pfc_compiler::packet::{mac, tcp_flags, Arp, Eth, ExtKind, Icmp, Ipv4, Ipv6, Layer, Packet, Sctp, Tcp, Udp, Vlan};
use pfc_compiler::program::{CmpOp, ValueSet};

fn v4_tcp() -> Packet {
    Packet::eth().ipv4("10.0.0.1", "10.0.0.2").tcp(1234, 22)
}

fn v6_tcp() -> Packet {
    Packet::eth().ipv6("2001:db8::1", "2001:db8::2").tcp(1234, 22)
}

/// One positive case per row: `field == value` holds for the frame.
#[rustfmt::skip]
fn positive_cases() -> Vec<(Field, Packet, u128)> {
    let arp = Arp {
        op: 2,
        sha: mac("aa:bb:cc:00:00:01"),
        sip: "192.0.2.1".parse().unwrap(),
        tha: mac("aa:bb:cc:00:00:02"),
        tip: "192.0.2.2".parse().unwrap(),
    };
    let tcp = Tcp { sport: 4000, dport: 443, seq: 0xdead_beef, ack: 0x0102_0304, flags: 0x12, window: 1000, checksum: None };
    let v4 = || Packet::eth().ipv4("10.0.0.1", "10.0.0.2");
    let v6 = || Packet::eth().ipv6("::1", "::2");
    let tagged = Vlan { id: 0xabc, pcp: 5, ..Vlan::default() };
    vec![
        (EthSrc, Packet::new().push(Eth { src: mac("aa:bb:cc:dd:ee:01"), ..Eth::default() }), mac_value("aa:bb:cc:dd:ee:01")),
        (EthDst, Packet::new().push(Eth { dst: mac("ff:ff:ff:ff:ff:ff"), ..Eth::default() }), mac_value("ff:ff:ff:ff:ff:ff")),
        (EthType, v4_tcp(), 0x0800),
        (EthType, Packet::eth().vlan(3).ipv6("::1", "::2"), 0x86dd),
        (EthType, Packet::eth().vlan(3).vlan(4).arp(1, "10.0.0.1", "10.0.0.2"), 0x0806),
        (VlanId, Packet::eth().push(tagged.clone()).ipv4("10.0.0.1", "10.0.0.2"), 0xabc),
        (VlanId, Packet::eth().vlan(10).vlan(20).ipv4("10.0.0.1", "10.0.0.2"), 10),
        (VlanPcp, Packet::eth().push(tagged), 5),
        (Ipv4Src, v4_tcp(), v4_value("10.0.0.1")),
        (Ipv4Dst, v4_tcp(), v4_value("10.0.0.2")),
        (Ipv4Proto, v4().udp(1, 2), 17),
        (Ipv4Ttl, v4_tcp().edit(|ip: &mut Ipv4| ip.ttl = 3), 3),
        (Ipv4Len, v4_tcp().payload([0; 10]), 50),
        (Ipv4Id, v4_tcp().edit(|ip: &mut Ipv4| ip.id = 0x1234), 0x1234),
        (Ipv4Ihl, v4_tcp().edit(|ip: &mut Ipv4| ip.options = vec![1; 8]), 7),
        (Ipv4Tos, v4_tcp().edit(|ip: &mut Ipv4| ip.tos = 0xb9), 0xb9),
        (Ipv4Dscp, v4_tcp().edit(|ip: &mut Ipv4| ip.tos = 0xb9), 0x2e),
        (Ipv4FragOffset, v4_tcp().edit(|ip: &mut Ipv4| ip.frag_offset = 0x1abc), 0x1abc),
        (Ipv4Df, v4_tcp().edit(|ip: &mut Ipv4| ip.df = true), 1),
        (Ipv4Mf, v4_tcp().edit(|ip: &mut Ipv4| ip.mf = true), 1),
        (Ipv6Src, v6_tcp(), v6_value("2001:db8::1")),
        (Ipv6Dst, v6_tcp(), v6_value("2001:db8::2")),
        (Ipv6Next, v6().ext(ExtKind::HopByHop, 0).tcp(1, 2), 0),
        (Ipv6Proto, v6().ext(ExtKind::HopByHop, 0).tcp(1, 2), 6),
        (Ipv6Proto, v6(), 59),
        (Ipv6HopLimit, v6_tcp().edit(|ip: &mut Ipv6| ip.hop_limit = 7), 7),
        (Ipv6FlowLabel, v6_tcp().edit(|ip: &mut Ipv6| ip.flow_label = 0xabcde), 0xabcde),
        (Ipv6PayloadLen, v6_tcp(), 20),
        (Ipv6Len, v6_tcp().payload([0; 5]), 65),
        (Ipv6Tclass, v6_tcp().edit(|ip: &mut Ipv6| ip.tclass = 0xb9), 0xb9),
        (Ipv6Dscp, v6_tcp().edit(|ip: &mut Ipv6| ip.tclass = 0xb9), 0x2e),
        (TcpSport, v4().push(tcp.clone()), 4000),
        (TcpDport, v6().push(tcp.clone()), 443),
        (TcpSeq, v4().push(tcp.clone()), 0xdead_beef),
        (TcpAck, v4().push(tcp.clone()), 0x0102_0304),
        (TcpFlags, v4().push(tcp.clone()), u128::from(tcp_flags::SYN | tcp_flags::ACK)),
        (TcpWindow, v4().push(tcp), 1000),
        (TcpUrgent, v4_tcp().set(TcpUrgent, 7).unwrap(), 7),
        (UdpSport, v4().udp(5353, 53), 5353),
        (UdpDport, v6().udp(5353, 53), 53),
        (UdpLen, v4().udp(1, 2).payload([0; 5]), 13),
        (UdpLen, v4().push(Udp { len: Some(999), ..Udp::default() }), 999),
        (SctpSport, v4().sctp(2905, 2906), 2905),
        (SctpDport, v6().push(Sctp { dport: 36412, ..Sctp::default() }), 36412),
        (IcmpType, v4().icmp(3, 1), 3),
        (IcmpCode, v4().icmp(3, 1), 1),
        (Icmp6Type, v6().icmp6(128, 2), 128),
        (Icmp6Code, v6().push(Layer::Icmp6(Icmp { kind: 1, code: 4, rest: 0 })), 4),
        (ArpOp, Packet::eth().push(arp.clone()), 2),
        (ArpSha, Packet::eth().push(arp.clone()), mac_value("aa:bb:cc:00:00:01")),
        (ArpSip, Packet::eth().push(arp.clone()), v4_value("192.0.2.1")),
        (ArpTha, Packet::eth().push(arp.clone()), mac_value("aa:bb:cc:00:00:02")),
        (ArpTip, Packet::eth().vlan(1).push(arp), v4_value("192.0.2.2")),
        (PktLen, v4_tcp(), 54),
        (PktLen, Packet::new().payload([7; 3]), 3),
    ]
}

#[test]
fn every_field_reads_its_value() {
    for (field, packet, value) in positive_cases() {
        let frame = packet.build();
        let name = field.name();
        assert_eq!(Headers::parse(&frame).field_value(field), Some(value), "{name} in {frame:02x?}");
        assert!(holds(eq(field, value), &frame), "{name} == {value:#x}");
        assert!(!holds(cmp(field, CmpOp::Ne, value), &frame), "{name} != {value:#x}");
        assert!(holds(cmp(field, CmpOp::Le, value), &frame), "{name} <= {value:#x}");
        assert!(holds(cmp(field, CmpOp::Ge, value), &frame), "{name} >= {value:#x}");
        assert!(!holds(cmp(field, CmpOp::Gt, value), &frame), "{name} > {value:#x}");
    }
}

#[test]
fn every_field_has_a_positive_case() {
    let cases = positive_cases();
    for &field in Field::ALL {
        assert!(cases.iter().any(|(f, _, _)| *f == field), "no positive case for {}", field.name());
    }
}

/// Frames lacking some headers; every atom on a field whose guard is absent is false.
fn frames_missing_headers() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0xff; 13],
        Packet::eth().payload([1, 2, 3]).build(),
        Packet::eth().arp(1, "10.0.0.1", "10.0.0.2").build(),
        Packet::eth().vlan(7).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).build(),
        Packet::eth().ipv6("::1", "::2").tcp(1, 2).build(),
        Packet::eth().ipv6("::1", "::2").icmp6(128, 0).build(),
        Packet::eth().ipv4("10.0.0.1", "10.0.0.2").icmp(8, 0).build(),
        Packet::eth().ipv4("10.0.0.1", "10.0.0.2").sctp(1, 2).build(),
    ]
}

#[test]
fn every_atom_is_false_when_its_header_is_absent() {
    let full = || vec![ValueSet::from_intervals(128, vec![(0, u128::MAX)])];
    let empty = || vec![ValueSet::from_intervals(128, vec![])];
    let mut checked = Vec::new();
    for frame in frames_missing_headers() {
        let headers = Headers::parse(&frame);
        for &field in Field::ALL {
            let Some(guard) = field.guard() else { continue };
            if headers.has(guard) {
                continue;
            }
            checked.push(field);
            for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
                assert!(!holds(cmp(field, op, 0), &frame), "{} {} 0 on {frame:02x?}", field.name(), op.as_str());
            }
            assert!(!holds_with(in_set(field, false), full(), &frame), "{} in all", field.name());
            assert!(!holds_with(in_set(field, true), empty(), &frame), "{} not in nothing", field.name());
        }
    }
    for &field in Field::ALL.iter().filter(|f| f.guard().is_some()) {
        assert!(checked.contains(&field), "{} is never absent", field.name());
    }
}
