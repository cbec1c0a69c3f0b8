//! Every protocol path through the parser: which headers are present, the payload
//! ethertype and the IPv6 upper-layer protocol.

use crate::support::{eq, holds, present};
use pfc_compiler::eval::Headers;
use pfc_compiler::fields::Field;
use pfc_compiler::packet::{Eth, ExtKind, Ipv4, Ipv6, Ipv6Ext, Packet, Vlan};

/// `frame` has exactly the headers `protos`, payload ethertype `eth_type` and IPv6
/// upper-layer protocol `upper`.
#[track_caller]
fn check(frame: Vec<u8>, protos: &str, eth_type: Option<u16>, upper: Option<u8>) {
    let headers = Headers::parse(&frame);
    assert_eq!(present(&frame), protos, "headers of {frame:02x?}");
    assert_eq!(
        headers.payload_ethertype, eth_type,
        "eth.type of {frame:02x?}"
    );
    assert_eq!(
        headers.field_value(Field::EthType),
        eth_type.map(u128::from)
    );
    assert_eq!(
        headers.ipv6_upper_protocol, upper,
        "ipv6.proto of {frame:02x?}"
    );
    assert_eq!(headers.field_value(Field::Ipv6Proto), upper.map(u128::from));
}

fn v4() -> Packet {
    Packet::eth().ipv4("10.0.0.1", "10.0.0.2")
}

fn v6() -> Packet {
    Packet::eth().ipv6("2001:db8::1", "2001:db8::2")
}

const HBH: ExtKind = ExtKind::HopByHop;
const RT: ExtKind = ExtKind::Routing;
const DST: ExtKind = ExtKind::DestOpts;
const FIRST_FRAG: ExtKind = ExtKind::Fragment {
    offset: 0,
    more: true,
};
const LATER_FRAG: ExtKind = ExtKind::Fragment {
    offset: 185,
    more: false,
};

#[test]
fn link_layer_and_arp() {
    check(vec![], "", None, None);
    check(vec![0; 13], "", None, None);
    check(Packet::eth().build(), "eth", Some(0x88b5), None);
    check(
        Packet::eth().payload([0; 30]).build(),
        "eth",
        Some(0x88b5),
        None,
    );
    check(
        Packet::eth().arp(1, "10.0.0.1", "10.0.0.2").build(),
        "eth arp",
        Some(0x0806),
        None,
    );
    check(
        Packet::eth()
            .arp(1, "10.0.0.1", "10.0.0.2")
            .truncate(41)
            .build(),
        "eth",
        Some(0x0806),
        None,
    );
    check(
        Packet::eth().vlan(1).arp(2, "10.0.0.1", "10.0.0.2").build(),
        "eth vlan arp",
        Some(0x0806),
        None,
    );
}

#[test]
fn vlan_tags() {
    let qinq = Vlan {
        tpid: 0x88a8,
        ..Vlan::default()
    };
    check(
        Packet::eth()
            .vlan(5)
            .ipv4("1.1.1.1", "2.2.2.2")
            .udp(1, 2)
            .build(),
        "eth vlan ipv4 udp",
        Some(0x0800),
        None,
    );
    check(
        Packet::eth()
            .push(qinq.clone())
            .vlan(6)
            .ipv6("::1", "::2")
            .tcp(1, 2)
            .build(),
        "eth vlan ipv6 tcp",
        Some(0x86dd),
        Some(6),
    );
    check(
        Packet::eth()
            .vlan(5)
            .vlan(6)
            .vlan(7)
            .ipv4("1.1.1.1", "2.2.2.2")
            .build(),
        "eth vlan",
        Some(0x8100),
        None,
    );
    check(
        Packet::eth()
            .push(qinq.clone())
            .push(qinq.clone())
            .push(qinq)
            .payload([0; 40])
            .build(),
        "eth vlan",
        Some(0x88a8),
        None,
    );
    // A truncated outermost tag: no VLAN, payload ethertype unknown.
    check(
        Packet::eth()
            .vlan(5)
            .ipv4("1.1.1.1", "2.2.2.2")
            .truncate(17)
            .build(),
        "eth",
        None,
        None,
    );
    check(
        Packet::new()
            .push(Eth {
                ethertype: Some(0x8100),
                ..Eth::default()
            })
            .build(),
        "eth",
        None,
        None,
    );
    // A truncated second tag: VLAN present, payload ethertype unknown.
    check(
        Packet::eth()
            .vlan(5)
            .vlan(6)
            .ipv4("1.1.1.1", "2.2.2.2")
            .truncate(21)
            .build(),
        "eth vlan",
        None,
        None,
    );
    check(
        Packet::eth().vlan(5).vlan(6).truncate(22).build(),
        "eth vlan",
        Some(0x88b5),
        None,
    );
}

#[test]
fn ipv4_paths() {
    check(v4().build(), "eth ipv4", Some(0x0800), None);
    check(v4().tcp(1, 2).build(), "eth ipv4 tcp", Some(0x0800), None);
    check(v4().udp(1, 2).build(), "eth ipv4 udp", Some(0x0800), None);
    check(v4().sctp(1, 2).build(), "eth ipv4 sctp", Some(0x0800), None);
    check(v4().icmp(8, 0).build(), "eth ipv4 icmp", Some(0x0800), None);
    check(v4().icmp6(128, 0).build(), "eth ipv4", Some(0x0800), None);
    check(
        v4().edit(|ip: &mut Ipv4| ip.options = vec![0x94, 4, 0, 0])
            .tcp(1, 2)
            .build(),
        "eth ipv4 tcp",
        Some(0x0800),
        None,
    );
    check(
        v4().edit(|ip: &mut Ipv4| ip.options = vec![1; 40])
            .udp(1, 2)
            .build(),
        "eth ipv4 udp",
        Some(0x0800),
        None,
    );
    // ihl below 5, or longer than the frame: no IPv4.
    check(
        v4().edit(|ip: &mut Ipv4| ip.ihl = Some(4))
            .tcp(1, 2)
            .build(),
        "eth",
        Some(0x0800),
        None,
    );
    check(
        v4().edit(|ip: &mut Ipv4| ip.ihl = Some(15))
            .payload([0; 39])
            .build(),
        "eth",
        Some(0x0800),
        None,
    );
    check(
        v4().edit(|ip: &mut Ipv4| ip.ihl = Some(15))
            .payload([0; 40])
            .build(),
        "eth ipv4",
        Some(0x0800),
        None,
    );
    // The version nibble is not checked.
    check(
        v4().edit(|ip: &mut Ipv4| ip.version = 6).udp(1, 2).build(),
        "eth ipv4 udp",
        Some(0x0800),
        None,
    );
    // The ethertype decides, not the bytes.
    check(
        Packet::new()
            .push(Eth {
                ethertype: Some(0x86dd),
                ..Eth::default()
            })
            .ipv4("1.1.1.1", "2.2.2.2")
            .tcp(1, 2)
            .build(),
        "eth ipv6",
        Some(0x86dd),
        None,
    );
}

#[test]
fn ipv4_fragments() {
    check(
        v4().edit(|ip: &mut Ipv4| ip.mf = true).tcp(1, 2).build(),
        "eth ipv4 tcp",
        Some(0x0800),
        None,
    );
    check(
        v4().edit(|ip: &mut Ipv4| ip.df = true).udp(1, 2).build(),
        "eth ipv4 udp",
        Some(0x0800),
        None,
    );
    check(
        v4().edit(|ip: &mut Ipv4| ip.frag_offset = 1)
            .tcp(1, 2)
            .build(),
        "eth ipv4",
        Some(0x0800),
        None,
    );
    check(
        v4().edit(|ip: &mut Ipv4| ip.frag_offset = 0x1fff)
            .icmp(8, 0)
            .build(),
        "eth ipv4",
        Some(0x0800),
        None,
    );
}

#[test]
fn ipv6_paths() {
    check(v6().build(), "eth ipv6", Some(0x86dd), Some(59));
    check(
        v6().tcp(1, 2).build(),
        "eth ipv6 tcp",
        Some(0x86dd),
        Some(6),
    );
    check(
        v6().udp(1, 2).build(),
        "eth ipv6 udp",
        Some(0x86dd),
        Some(17),
    );
    check(
        v6().sctp(1, 2).build(),
        "eth ipv6 sctp",
        Some(0x86dd),
        Some(132),
    );
    check(
        v6().icmp6(128, 0).build(),
        "eth ipv6 icmp6",
        Some(0x86dd),
        Some(58),
    );
    check(v6().icmp(8, 0).build(), "eth ipv6", Some(0x86dd), Some(1));
    check(v6().truncate(14 + 39).build(), "eth", Some(0x86dd), None);
    check(
        v6().tcp(1, 2).truncate(14 + 40 + 19).build(),
        "eth ipv6",
        Some(0x86dd),
        Some(6),
    );
}

#[test]
fn ipv6_extension_headers() {
    check(
        v6().ext(HBH, 0).tcp(1, 2).build(),
        "eth ipv6 tcp",
        Some(0x86dd),
        Some(6),
    );
    check(
        v6().ext(RT, 2).udp(1, 2).build(),
        "eth ipv6 udp",
        Some(0x86dd),
        Some(17),
    );
    check(
        v6().ext(DST, 1).icmp6(1, 0).build(),
        "eth ipv6 icmp6",
        Some(0x86dd),
        Some(58),
    );
    check(
        v6().ext(FIRST_FRAG, 0).tcp(1, 2).build(),
        "eth ipv6 tcp",
        Some(0x86dd),
        Some(6),
    );
    check(
        v6().ext(LATER_FRAG, 0).tcp(1, 2).build(),
        "eth ipv6",
        Some(0x86dd),
        Some(6),
    );
    // A non-first fragment ends the walk even when its next header is an extension.
    check(
        v6().ext(LATER_FRAG, 0).ext(DST, 0).udp(1, 2).build(),
        "eth ipv6",
        Some(0x86dd),
        Some(60),
    );
    check(
        v6().ext(HBH, 0).ext(LATER_FRAG, 0).payload([0; 20]).build(),
        "eth ipv6",
        Some(0x86dd),
        Some(59),
    );
    // Chains of four are walked; a fifth extension header makes the chain unknown.
    check(
        v6().ext(HBH, 0)
            .ext(DST, 0)
            .ext(RT, 0)
            .ext(FIRST_FRAG, 0)
            .tcp(1, 2)
            .build(),
        "eth ipv6 tcp",
        Some(0x86dd),
        Some(6),
    );
    check(
        v6().ext(HBH, 0)
            .ext(DST, 0)
            .ext(RT, 0)
            .ext(DST, 3)
            .udp(1, 2)
            .build(),
        "eth ipv6 udp",
        Some(0x86dd),
        Some(17),
    );
    check(
        v6().ext(HBH, 0)
            .ext(DST, 0)
            .ext(RT, 0)
            .ext(DST, 0)
            .ext(DST, 0)
            .tcp(1, 2)
            .build(),
        "eth ipv6",
        Some(0x86dd),
        None,
    );
    check(
        v6().ext(HBH, 0)
            .ext(DST, 0)
            .ext(RT, 0)
            .ext(DST, 0)
            .ext(LATER_FRAG, 0)
            .tcp(1, 2)
            .build(),
        "eth ipv6",
        Some(0x86dd),
        None,
    );
    // Truncated extension headers: two bytes are needed, eight for a fragment header.
    check(
        v6().ext(HBH, 0).tcp(1, 2).truncate(14 + 40 + 1).build(),
        "eth ipv6",
        Some(0x86dd),
        None,
    );
    check(
        v6().ext(HBH, 0).tcp(1, 2).truncate(14 + 40 + 2).build(),
        "eth ipv6",
        Some(0x86dd),
        Some(6),
    );
    check(
        v6().ext(FIRST_FRAG, 0)
            .tcp(1, 2)
            .truncate(14 + 40 + 7)
            .build(),
        "eth ipv6",
        Some(0x86dd),
        None,
    );
    check(
        v6().ext(FIRST_FRAG, 0)
            .tcp(1, 2)
            .truncate(14 + 40 + 8)
            .build(),
        "eth ipv6",
        Some(0x86dd),
        Some(6),
    );
    // An extension header longer than the frame: the protocol is known, L4 absent.
    check(
        v6().push(Ipv6Ext {
            kind: RT,
            len: 0,
            next: Some(6),
        })
        .build(),
        "eth ipv6",
        Some(0x86dd),
        Some(6),
    );
    check(
        v6().push(Ipv6 {
            next: Some(43),
            ..Ipv6::default()
        })
        .build(),
        "eth ipv6",
        Some(0x86dd),
        Some(41),
    );
}

/// Transport fields are read at the offset after options and extension headers.
#[test]
fn transport_offsets_follow_options_and_extensions() {
    let with_options = v4()
        .edit(|ip: &mut Ipv4| ip.options = vec![1; 12])
        .tcp(1, 22)
        .build();
    assert!(holds(eq(Field::TcpDport, 22), &with_options));
    let with_chain = v6()
        .ext(HBH, 1)
        .ext(RT, 2)
        .ext(FIRST_FRAG, 0)
        .udp(53, 5353)
        .build();
    assert!(holds(eq(Field::UdpDport, 5353), &with_chain));
    assert!(holds(eq(Field::Ipv6Next, 0), &with_chain));
    let qinq = Packet::eth()
        .vlan(1)
        .vlan(2)
        .ipv4("1.1.1.1", "2.2.2.2")
        .sctp(9, 10)
        .build();
    assert!(holds(eq(Field::SctpDport, 10), &qinq));
    assert!(holds(eq(Field::VlanId, 1), &qinq));
}
