//! Every protocol path through the parser: which headers are present, the payload
//! ethertype and the IPv6 upper-layer protocol.

use crate::support::{eq, holds, present};
use pfc_compiler::eval::Headers;
use pfc_compiler::fields::Field;
use pfc_compiler::packet::{Eth, ExtKind, Ipv4, Ipv6, Ipv6Ext, Packet, Vlan};

/// `packet` has exactly the headers listed in `expected`, whose optional `type=HEX`
/// and `upper=N` items give the payload ethertype and the IPv6 upper-layer protocol
/// (unknown when not listed).
#[track_caller]
fn check(packet: Packet, expected: &str) {
    let frame = packet.build();
    let headers = Headers::parse(&frame);
    let protos: Vec<&str> = expected.split(' ').filter(|item| !item.contains('=')).collect();
    let item = |key: &str| expected.split(' ').find_map(|item| item.strip_prefix(key));
    let eth_type = item("type=").map(|hex| u16::from_str_radix(hex, 16).unwrap());
    let upper = item("upper=").map(|n| n.parse::<u8>().unwrap());
    assert_eq!(present(&frame), protos.join(" "), "headers of {frame:02x?}");
    assert_eq!(headers.payload_ethertype, eth_type, "eth.type of {frame:02x?}");
    assert_eq!(headers.field_value(Field::EthType), eth_type.map(u128::from));
    assert_eq!(headers.ipv6_upper_protocol, upper, "ipv6.proto of {frame:02x?}");
    assert_eq!(headers.field_value(Field::Ipv6Proto), upper.map(u128::from));
}

fn v4() -> Packet {
    Packet::eth().ipv4("10.0.0.1", "10.0.0.2")
}

fn v6() -> Packet {
    Packet::eth().ipv6("2001:db8::1", "2001:db8::2")
}

fn raw(bytes: &[u8]) -> Packet {
    Packet::new().payload(bytes)
}

fn eth_with_type(ethertype: u16) -> Packet {
    Packet::new().push(Eth { ethertype: Some(ethertype), ..Eth::default() })
}

const HBH: ExtKind = ExtKind::HopByHop;
const RT: ExtKind = ExtKind::Routing;
const DST: ExtKind = ExtKind::DestOpts;
const FIRST_FRAG: ExtKind = ExtKind::Fragment { offset: 0, more: true };
const LATER_FRAG: ExtKind = ExtKind::Fragment { offset: 185, more: false };

#[test]
#[rustfmt::skip]
fn link_layer_and_arp() {
    check(raw(&[]), "");
    check(raw(&[0; 13]), "");
    check(Packet::eth(), "eth type=88b5");
    check(Packet::eth().payload([0; 30]), "eth type=88b5");
    check(Packet::eth().arp(1, "10.0.0.1", "10.0.0.2"), "eth arp type=0806");
    check(Packet::eth().arp(1, "10.0.0.1", "10.0.0.2").truncate(41), "eth type=0806");
    check(Packet::eth().vlan(1).arp(2, "10.0.0.1", "10.0.0.2"), "eth vlan arp type=0806");
}

#[test]
#[rustfmt::skip]
fn vlan_tags() {
    let qinq = || Vlan { tpid: 0x88a8, ..Vlan::default() };
    check(Packet::eth().vlan(5).ipv4("1.1.1.1", "2.2.2.2").udp(1, 2), "eth vlan ipv4 udp type=0800");
    check(Packet::eth().push(qinq()).vlan(6).ipv6("::1", "::2").tcp(1, 2), "eth vlan ipv6 tcp type=86dd upper=6");
    // A third tag is not parsed: its TPID is the payload ethertype.
    check(Packet::eth().vlan(5).vlan(6).vlan(7).ipv4("1.1.1.1", "2.2.2.2"), "eth vlan type=8100");
    check(Packet::eth().push(qinq()).push(qinq()).push(qinq()).payload([0; 40]), "eth vlan type=88a8");
    // A truncated outermost tag: no VLAN, payload ethertype unknown.
    check(Packet::eth().vlan(5).ipv4("1.1.1.1", "2.2.2.2").truncate(17), "eth");
    check(eth_with_type(0x8100), "eth");
    check(eth_with_type(0x88a8).payload([0; 3]), "eth");
    // A truncated second tag: VLAN present, payload ethertype unknown.
    check(Packet::eth().vlan(5).vlan(6).ipv4("1.1.1.1", "2.2.2.2").truncate(21), "eth vlan");
    check(Packet::eth().vlan(5).vlan(6).truncate(22), "eth vlan type=88b5");
}

#[test]
#[rustfmt::skip]
fn ipv4_paths() {
    check(v4(), "eth ipv4 type=0800");
    check(v4().tcp(1, 2), "eth ipv4 tcp type=0800");
    check(v4().udp(1, 2), "eth ipv4 udp type=0800");
    check(v4().sctp(1, 2), "eth ipv4 sctp type=0800");
    check(v4().icmp(8, 0), "eth ipv4 icmp type=0800");
    check(v4().icmp6(128, 0), "eth ipv4 type=0800");
    check(v4().edit(|ip: &mut Ipv4| ip.options = vec![0x94, 4, 0, 0]).tcp(1, 2), "eth ipv4 tcp type=0800");
    check(v4().edit(|ip: &mut Ipv4| ip.options = vec![1; 40]).udp(1, 2), "eth ipv4 udp type=0800");
    // ihl below 5, or longer than the frame: no IPv4.
    check(v4().edit(|ip: &mut Ipv4| ip.ihl = Some(4)).tcp(1, 2), "eth type=0800");
    check(v4().edit(|ip: &mut Ipv4| ip.ihl = Some(15)).payload([0; 39]), "eth type=0800");
    check(v4().edit(|ip: &mut Ipv4| ip.ihl = Some(15)).payload([0; 40]), "eth ipv4 type=0800");
    check(v4().udp(1, 2).truncate(14 + 19), "eth type=0800");
    // The version nibble is not checked.
    check(v4().edit(|ip: &mut Ipv4| ip.version = 6).udp(1, 2), "eth ipv4 udp type=0800");
    // The ethertype decides, not the bytes (byte 6 of this "IPv6" header is 0: a
    // hop-by-hop header past the end of the frame, so the upper protocol is unknown).
    check(eth_with_type(0x86dd).ipv4("1.1.1.1", "2.2.2.2").tcp(1, 2), "eth ipv6 type=86dd");
}

#[test]
#[rustfmt::skip]
fn ipv4_fragments() {
    check(v4().edit(|ip: &mut Ipv4| ip.mf = true).tcp(1, 2), "eth ipv4 tcp type=0800");
    check(v4().edit(|ip: &mut Ipv4| ip.df = true).udp(1, 2), "eth ipv4 udp type=0800");
    check(v4().edit(|ip: &mut Ipv4| ip.frag_offset = 1).tcp(1, 2), "eth ipv4 type=0800");
    check(v4().edit(|ip: &mut Ipv4| ip.frag_offset = 0x1fff).icmp(8, 0), "eth ipv4 type=0800");
}

#[test]
#[rustfmt::skip]
fn ipv6_paths() {
    check(v6(), "eth ipv6 type=86dd upper=59");
    check(v6().tcp(1, 2), "eth ipv6 tcp type=86dd upper=6");
    check(v6().udp(1, 2), "eth ipv6 udp type=86dd upper=17");
    check(v6().sctp(1, 2), "eth ipv6 sctp type=86dd upper=132");
    check(v6().icmp6(128, 0), "eth ipv6 icmp6 type=86dd upper=58");
    check(v6().icmp(8, 0), "eth ipv6 type=86dd upper=1");
    check(v6().truncate(14 + 39), "eth type=86dd");
    check(v6().tcp(1, 2).truncate(14 + 40 + 19), "eth ipv6 type=86dd upper=6");
    check(v6().push(Ipv6 { next: Some(43), ..Ipv6::default() }), "eth ipv6 type=86dd upper=41");
}

#[test]
#[rustfmt::skip]
fn ipv6_extension_headers() {
    check(v6().ext(HBH, 0).tcp(1, 2), "eth ipv6 tcp type=86dd upper=6");
    check(v6().ext(RT, 2).udp(1, 2), "eth ipv6 udp type=86dd upper=17");
    check(v6().ext(DST, 1).icmp6(1, 0), "eth ipv6 icmp6 type=86dd upper=58");
    check(v6().ext(FIRST_FRAG, 0).tcp(1, 2), "eth ipv6 tcp type=86dd upper=6");
    check(v6().ext(LATER_FRAG, 0).tcp(1, 2), "eth ipv6 type=86dd upper=6");
    // A non-first fragment ends the walk even when its next header is an extension.
    check(v6().ext(LATER_FRAG, 0).ext(DST, 0).udp(1, 2), "eth ipv6 type=86dd upper=60");
    check(v6().ext(HBH, 0).ext(LATER_FRAG, 0).payload([0; 20]), "eth ipv6 type=86dd upper=59");
    // Chains of four are walked; a fifth extension header makes the chain unknown.
    check(v6().ext(HBH, 0).ext(DST, 0).ext(RT, 0).ext(FIRST_FRAG, 0).tcp(1, 2), "eth ipv6 tcp type=86dd upper=6");
    check(v6().ext(HBH, 0).ext(DST, 0).ext(RT, 0).ext(DST, 3).udp(1, 2), "eth ipv6 udp type=86dd upper=17");
    check(v6().ext(HBH, 0).ext(DST, 0).ext(RT, 0).ext(DST, 0).ext(DST, 0).tcp(1, 2), "eth ipv6 type=86dd");
    check(v6().ext(HBH, 0).ext(DST, 0).ext(RT, 0).ext(DST, 0).ext(LATER_FRAG, 0).tcp(1, 2), "eth ipv6 type=86dd");
    // Truncated extension headers: all `(len + 1) * 8` bytes are needed, eight for a
    // fragment header; the next-header byte of a truncated one is not believed.
    check(v6().ext(HBH, 0).tcp(1, 2).truncate(14 + 40 + 1), "eth ipv6 type=86dd");
    check(v6().ext(HBH, 0).tcp(1, 2).truncate(14 + 40 + 2), "eth ipv6 type=86dd");
    check(v6().ext(HBH, 0).tcp(1, 2).truncate(14 + 40 + 7), "eth ipv6 type=86dd");
    check(v6().ext(HBH, 0).tcp(1, 2).truncate(14 + 40 + 8), "eth ipv6 type=86dd upper=6");
    check(v6().ext(RT, 2).udp(1, 2).truncate(14 + 40 + 23), "eth ipv6 type=86dd");
    check(v6().ext(RT, 2).udp(1, 2).truncate(14 + 40 + 24), "eth ipv6 type=86dd upper=17");
    check(v6().ext(FIRST_FRAG, 0).tcp(1, 2).truncate(14 + 40 + 7), "eth ipv6 type=86dd");
    check(v6().ext(FIRST_FRAG, 0).tcp(1, 2).truncate(14 + 40 + 8), "eth ipv6 type=86dd upper=6");
    // A complete extension header at the end of the frame: the protocol is known, L4 absent.
    check(v6().push(Ipv6Ext { kind: RT, len: 0, next: Some(6) }), "eth ipv6 type=86dd upper=6");
    // One longer than the frame (1,608 bytes, cut after 16): unknown.
    check(v6().push(Ipv6Ext { kind: DST, len: 200, next: Some(17) }).truncate(14 + 40 + 8 + 8), "eth ipv6 type=86dd");
}

/// Transport fields are read at the offset after options and extension headers.
#[test]
#[rustfmt::skip]
fn transport_offsets_follow_options_and_extensions() {
    let with_options = v4().edit(|ip: &mut Ipv4| ip.options = vec![1; 12]).tcp(1, 22).build();
    assert!(holds(eq(Field::TcpDport, 22), &with_options));
    let with_chain = v6().ext(HBH, 1).ext(RT, 2).ext(FIRST_FRAG, 0).udp(53, 5353).build();
    assert!(holds(eq(Field::UdpDport, 5353), &with_chain));
    assert!(holds(eq(Field::Ipv6Next, 0), &with_chain));
    let qinq = Packet::eth().vlan(1).vlan(2).ipv4("1.1.1.1", "2.2.2.2").sctp(9, 10).build();
    assert!(holds(eq(Field::SctpDport, 10), &qinq));
    assert!(holds(eq(Field::VlanId, 1), &qinq));
}
