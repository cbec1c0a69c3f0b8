//! The packet spec and the capture reader as data: each spec builds the same frame as
//! the packet builder written out by hand, each bad spec gives its error at its span,
//! and no capture bytes make the reader panic.

use pfc_compiler::packet::{tcp_flags, ExtKind, Ipv4, Packet, Tcp, Vlan};
use pfc_compiler::testcase::pcap::read_capture;
use pfc_compiler::testcase::{spec_bytes, DEFAULT_DPORT, DEFAULT_SPORT};

/// `spec` builds exactly `expected`'s frame.
fn builds(spec: &str, expected: Packet) {
    assert_eq!(spec_bytes(spec).unwrap_or_else(|e| panic!("{spec}: {e}")), expected.build(), "{spec}");
}

/// `spec` is refused with a message containing `message`, about the text `at`.
fn refuses(spec: &str, message: &str, at: &str) {
    let error = spec_bytes(spec).expect_err(spec);
    assert!(error.to_string().contains(message), "{spec}: `{error}` lacks `{message}`");
    assert_eq!(&spec[error.span().range()], at, "{spec}: span of `{error}`");
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Tcp {
    Tcp { sport, dport, flags, window: 65535, ..Tcp::default() }
}

#[rustfmt::skip]
#[test]
fn specs_build_the_frames_they_describe() {
    let (s, d) = (DEFAULT_SPORT, DEFAULT_DPORT);
    builds("eth", Packet::eth());
    builds("ipv4", Packet::eth().push(Ipv4::default()));
    builds("eth / ipv4 src=1.2.3.4 dst=5.6.7.8 / tcp sport=1 dport=22", Packet::eth().ipv4("1.2.3.4", "5.6.7.8").push(tcp(1, 22, tcp_flags::SYN)));
    builds("ipv4 / tcp dport=ssh flags=SA", Packet::eth().push(Ipv4::default()).push(tcp(s, 22, tcp_flags::SYN | tcp_flags::ACK)));
    builds("ipv4 / tcp flags=syn,ack,fin", Packet::eth().push(Ipv4::default()).push(tcp(s, d, 0x13)));
    builds("ipv4 / tcp flags=0", Packet::eth().push(Ipv4::default()).push(tcp(s, d, 0)));
    builds("vlan 10 / ipv4", Packet::eth().vlan(10).push(Ipv4::default()));
    builds("vlan 100 tpid=qinq / vlan 10 pcp=3 dei", Packet::eth().push(Vlan { id: 100, tpid: 0x88a8, ..Vlan::default() }).push(Vlan { id: 10, pcp: 3, dei: true, ..Vlan::default() }));
    builds("ipv4 ttl=1 df mf=0 frag=0x10 id=7 dscp=46", Packet::eth().push(Ipv4 { ttl: 1, df: true, frag_offset: 16, id: 7, tos: 46 << 2, ..Ipv4::default() }));
    builds("ipv4 options=01010101 proto=udp", Packet::eth().push(Ipv4 { options: vec![1; 4], protocol: Some(17), ..Ipv4::default() }));
    builds("ipv6 src=::1 / udp dport=53", Packet::eth().ipv6("::1", "2001:db8::2").udp(s, 53));
    builds("ipv6 / hopopts / frag6 offset=7 more / payload len=8", Packet::eth().ipv6("2001:db8::1", "2001:db8::2").ext(ExtKind::HopByHop, 0).ext(ExtKind::Fragment { offset: 7, more: true }, 0).payload(vec![0; 8]));
    builds("ipv6 / icmp6 echo-reply", Packet::eth().ipv6("2001:db8::1", "2001:db8::2").icmp6(129, 0));
    builds("ipv4 / icmp type=3 code=1", Packet::eth().push(Ipv4::default()).icmp(3, 1));
    builds("arp reply sip=10.0.0.9 tip=10.0.0.1", Packet::eth().arp(2, "10.0.0.9", "10.0.0.1"));
    builds("eth src=aa:bb:cc:dd:ee:ff type=0x1234 / payload \"a\\\"b\" hex=00ff", Packet::eth().edit(|e: &mut pfc_compiler::packet::Eth| { e.src = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]; e.ethertype = Some(0x1234) }).payload(b"a\"b\x00\xff".to_vec()));
    builds("ipv4 / sctp dport=9899 / truncate=40", Packet::eth().push(Ipv4::default()).sctp(s, 9899).edit(|x: &mut pfc_compiler::packet::Sctp| x.vtag = 1).truncate(40));
    builds("ipv4 / udp / truncate 3", Packet::eth().push(Ipv4::default()).udp(s, d).truncate(3));
}

#[rustfmt::skip]
#[test]
fn bad_specs_point_at_the_mistake() {
    refuses("", "empty", "");
    refuses("ipv4 / / tcp", "empty", " ");
    refuses("ipv4 / tpc", "unknown layer `tpc`", "tpc");
    refuses("ipv4 / tcp port=22", "`tcp` has no field `port`", "port");
    refuses("ipv4 src=300.1.1.1", "`ipv4 src` takes an IPv4 address", "300.1.1.1");
    refuses("tcp dport=65536", "`tcp dport` takes a port", "65536");
    refuses("tcp flags=SX", "`tcp flags` takes flags", "SX");
    refuses("vlan 4096", "`vlan id` takes a VLAN id 0..4095", "4096");
    refuses("eth src=aa:bb", "`eth src` takes a MAC address", "aa:bb");
    refuses("ipv4 df=maybe", "`ipv4 df` takes a boolean", "maybe");
    refuses("tcp 22", "`tcp` takes no value `22`", "22");
    refuses("tcp dport=", "`=` needs", "=");
    refuses("payload \"abc", "unterminated string", "\"abc");
    refuses("payload \"a\\q\"", "unknown escape `\\q`", "\\q");
    refuses("truncate=10 / ipv4", "`truncate` must be the last part", "truncate=10 ");
    refuses("ipv4 / payload len=70000", "takes a byte count up to 65536", "70000");
    refuses("ipv4 / payload len=65536", "the packet has 65570 bytes; test packets have at most 65536", "ipv4 / payload len=65536");
    refuses("frag6 len=1", "`frag6` has no field `len`", "len");
}

#[test]
fn no_capture_bytes_make_the_reader_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let heads: [&[u8]; 3] = [&[0xd4, 0xc3, 0xb2, 0xa1], &[0xa1, 0xb2, 0xc3, 0xd4], &[0x0a, 0x0d, 0x0d, 0x0a]];
    for round in 0..20_000 {
        let mut bytes = heads[round % 3].to_vec();
        let len = (next() % 200) as usize;
        bytes.extend((0..len).map(|_| next() as u8));
        let _ = read_capture(&bytes);
    }
}
