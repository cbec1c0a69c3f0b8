//! Frames for the link-layer forms the main corpus does not build: a seed-free list of
//! 802.3/802.2 LLC frames (every frame type, STP, IPX, NetBEUI, OSI with IS-IS PDU types),
//! SNAP (IPX, AppleTalk, AARP, IP), Ethernet II with DEC, AppleTalk, IPX and loopback
//! types, DECnet routing headers in their four layouts, MPLS stacks over IPv4 and IPv6,
//! PPPoE sessions carrying IPv4, IPv6 and MPLS, PPPoE discovery, some behind a VLAN tag;
//! each whole and cut at the lengths where libpcap's loads begin to fail; and the frames of
//! libpcap's own Ethernet test captures.

use pfc_compiler::packet::Packet;

use crate::support::corpus::CorpusPacket;

const MACS: [u8; 12] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// The IP packet of a built Ethernet frame (everything after its 14-byte header).
fn ip_of(packet: Packet) -> Vec<u8> {
    packet.build()[14..].to_vec()
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = MACS.to_vec();
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An 802.3 frame: the type field is the payload's length.
fn ieee8023(payload: &[u8]) -> Vec<u8> {
    ethernet(payload.len().min(1500) as u16, payload)
}

fn vlan(frame: &[u8], id: u16) -> Vec<u8> {
    let mut tagged = frame[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00]);
    tagged.extend_from_slice(&id.to_be_bytes());
    tagged.extend_from_slice(&frame[12..]);
    tagged
}

fn mpls_label(label: u32, bottom: bool) -> [u8; 4] {
    (label << 12 | u32::from(bottom) << 8 | 64).to_be_bytes()
}

fn pppoe_session(session: u16, protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x11, 0x00];
    payload.extend_from_slice(&session.to_be_bytes());
    payload.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    payload.extend_from_slice(&protocol.to_be_bytes());
    payload.extend_from_slice(body);
    ethernet(0x8864, &payload)
}

/// A DECnet routing header (after the 2-byte length): `pad` adds a pad byte 0x81 first;
/// `long` uses the long layout; both addresses are `addr` (little-endian).
fn decnet(addr: u16, long: bool, pad: bool) -> Vec<u8> {
    let mut body = vec![0x20, 0x00];
    if pad {
        body.push(0x81);
    }
    let [lo, hi] = addr.to_le_bytes();
    if long {
        body.extend_from_slice(&[0x06, 0, 0, 0xaa, 0, 4, 0, lo, hi, 0, 0, 0xaa, 0, 4, 0, lo, hi, 0, 0, 0]);
    } else {
        body.extend_from_slice(&[0x02, lo, hi, lo, hi, 0, 0, 0]);
    }
    ethernet(0x6003, &body)
}

/// The frames of libpcap's own Ethernet test captures (`tests/data/libpcap-captures`,
/// with their licence), each described by file and index.
pub fn libpcap_capture_frames() -> Vec<CorpusPacket> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/libpcap-captures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/libpcap-captures exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pcap"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("capture readable");
        let capture = pfc_compiler::testcase::pcap::read_capture(&bytes).expect("capture parses");
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        for (index, frame) in capture.packets.iter().enumerate() {
            out.push(CorpusPacket { bytes: frame.to_vec(), description: format!("libpcap {name} #{index}") });
        }
    }
    out
}

/// Every frame, whole and cut.
pub fn link_layer_frames() -> Vec<CorpusPacket> {
    let tcp4 = ip_of(Packet::eth().ipv4("10.0.0.1", "10.0.0.2").tcp(1024, 22));
    let udp6 = ip_of(Packet::eth().ipv6("2001:db8::1", "2001:db8::2").udp(5353, 53));
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    let llc_controls = [0x00u8, 0x02, 0x01, 0x05, 0x09, 0x03, 0x13, 0x63, 0x43, 0x0f, 0x6f, 0xe3, 0xaf, 0x87];
    for (dsap, ssap) in [(0x42u8, 0x42u8), (0xe0, 0xe0), (0xf0, 0xf0), (0x06, 0x06), (0xfe, 0xfe), (0x12, 0x34)] {
        for control in llc_controls {
            let payload = [dsap, ssap, control, 0x83, 0x1b, 0x01, 0x00, 0x12, 0x01, 0x00, 0x00, 0x00];
            frames.push((format!("llc {dsap:02x}/{ssap:02x} ctl {control:02x}"), ieee8023(&payload)));
        }
    }
    for (nlpid, pdu) in [(0x81u8, 0u8), (0x82, 0), (0x83, 15), (0x83, 16), (0x83, 17), (0x83, 18), (0x83, 20)]
        .into_iter()
        .chain([(0x83, 24), (0x83, 25), (0x83, 26), (0x83, 27), (0x83, 19)])
    {
        let payload = [0xfe, 0xfe, 0x03, nlpid, 0x1b, 0x01, 0x00, pdu, 0x01, 0x00, 0x00, 0x00];
        frames.push((format!("osi nlpid {nlpid:02x} pdu {pdu}"), ieee8023(&payload)));
    }
    frames.push(("raw netware".into(), ieee8023(&[0xff, 0xff, 0x00, 0x1e, 0x00, 0x00, 0, 0, 0, 0])));
    for (org, ptype) in [(0u32, 0x8137u16), (0x080007, 0x809b), (0, 0x80f3), (0, 0x0800), (0x080007, 0x80f3)] {
        let mut payload = vec![0xaa, 0xaa, 0x03, (org >> 16) as u8, (org >> 8) as u8, org as u8];
        payload.extend_from_slice(&ptype.to_be_bytes());
        payload.extend_from_slice(&tcp4);
        frames.push((format!("snap {org:06x}/{ptype:04x}"), ieee8023(&payload)));
    }
    for ethertype in [0x809bu16, 0x80f3, 0x8137, 0x6001, 0x6002, 0x6004, 0x6007, 0x9000, 0x8863] {
        frames.push((format!("ethertype {ethertype:04x}"), ethernet(ethertype, &[0x11, 0x09, 0, 0, 0, 0, 0, 0])));
    }
    for addr in [0x0401u16, 0xcafc, 0x0c00] {
        for (long, pad) in [(false, false), (false, true), (true, false), (true, true)] {
            frames.push((format!("decnet {addr:04x} long={long} pad={pad}"), decnet(addr, long, pad)));
        }
    }
    let mut two_labels = mpls_label(100, false).to_vec();
    two_labels.extend_from_slice(&mpls_label(123, true));
    two_labels.extend_from_slice(&tcp4);
    frames.push(("mpls 100/123 ipv4 tcp".into(), ethernet(0x8847, &two_labels)));
    let mut one_label = mpls_label(100, true).to_vec();
    one_label.extend_from_slice(&tcp4);
    frames.push(("mpls 100 ipv4 tcp".into(), ethernet(0x8847, &one_label)));
    let mut v6_label = mpls_label(123, true).to_vec();
    v6_label.extend_from_slice(&udp6);
    frames.push(("mpls 123 ipv6 udp".into(), ethernet(0x8847, &v6_label)));
    frames.push(("vlan mpls 100 ipv4 tcp".into(), vlan(&ethernet(0x8847, &one_label), 10)));
    frames.push(("pppoes 0x3b ipv4 tcp".into(), pppoe_session(0x3b, 0x0021, &tcp4)));
    frames.push(("pppoes 1234 ipv6 udp".into(), pppoe_session(1234, 0x0057, &udp6)));
    frames.push(("pppoes 0x3b mpls ipv4".into(), pppoe_session(0x3b, 0x0281, &one_label)));
    frames.push(("vlan pppoes 0x3b ipv4 tcp".into(), vlan(&pppoe_session(0x3b, 0x0021, &tcp4), 10)));
    frames.push(("vlan llc stp".into(), vlan(&ieee8023(&[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]), 10)));
    let mut out = Vec::new();
    for (description, bytes) in frames {
        for cut in [14usize, 15, 16, 17, 18, 19, 20, 22, 24, 26, 28, 30, 34, 38] {
            if cut < bytes.len() {
                out.push(CorpusPacket {
                    bytes: bytes[..cut].to_vec(),
                    description: format!("{description} cut@{cut}"),
                });
            }
        }
        out.push(CorpusPacket { bytes, description });
    }
    out
}

/// An IPv4 header (20 bytes, no options) carrying `protocol`, then `body`.
fn ipv4_with(protocol: u8, body: &[u8]) -> Vec<u8> {
    let total = (20 + body.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(body);
    ip
}

/// An IPv6 header with next header `next` and these addresses' last bytes, then `body`.
fn ipv6_with(next: u8, src: u8, dst: u8, body: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(body.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[next, 64]);
    let mut address = [0u8; 16];
    address[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    address[15] = src;
    ip.extend_from_slice(&address);
    address[15] = dst;
    ip.extend_from_slice(&address);
    ip.extend_from_slice(body);
    ip
}

/// An extension header (or AH, whose length counts 4-byte words less 2) of `units` 8-byte
/// units beyond the first, announcing `next`; the rest of it zero.
fn extension(next: u8, units: u8) -> Vec<u8> {
    let mut header = vec![0u8; 8 + 8 * usize::from(units)];
    header[0] = next;
    header[1] = units;
    header
}

/// IPv6 with `count` hop-by-hop headers (the first after the fixed header, each
/// announcing the next) and then UDP: libpcap's `protochain` walks `count` headers.
pub fn ipv6_chain(count: usize) -> Vec<u8> {
    let udp = [0x13u8, 0x88, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
    let mut body = Vec::new();
    for index in 0..count {
        body.extend(extension(if index + 1 == count { 17 } else { 0 }, 0));
    }
    body.extend_from_slice(&udp);
    ethernet(0x86dd, &ipv6_with(if count == 0 { 17 } else { 0 }, 1, 2, &body))
}

/// Frames for `protochain`: IPv4 with one or several AH headers (libpcap sets its cursor
/// to `(len + 2) * 4` from the IP header after each, so the bytes there decide), IPv6
/// with every extension header kind, AH among them, "no next header", chains of 1 to
/// 183 headers, VLAN-tagged; the shorter ones cut at every byte, the long ones near
/// their last header.
pub fn protochain_frames() -> Vec<CorpusPacket> {
    let tcp = [0x04u8, 0x00, 0x00, 0x16, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0x00, 0, 0, 0, 0];
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    // IPv4 + AH (len 4: 24 bytes) + TCP: libpcap reads the next protocol 24 bytes into
    // the IP header, inside the AH (its SPI).
    let mut ah = extension(6, 2);
    ah.extend_from_slice(&[0; 8]);
    ah[1] = 4;
    ah[4] = 6;
    let mut body = ah.clone();
    body.extend_from_slice(&tcp);
    frames.push(("ipv4 ah(len 4, spi 6...) tcp".into(), ethernet(0x0800, &ipv4_with(51, &body))));
    // Three AH steps: [20] = 51 len 4 -> cursor 24: 51 len 5 -> cursor 28: 17.
    let mut walk = vec![0u8; 24];
    walk[0] = 51;
    walk[1] = 4;
    walk[4] = 51;
    walk[5] = 5;
    walk[8] = 17;
    frames.push(("ipv4 ah walk 51,51,17".into(), ethernet(0x0800, &ipv4_with(51, &walk))));
    walk[8] = 59;
    frames.push(("ipv4 ah walk 51,51,59".into(), ethernet(0x0800, &ipv4_with(51, &walk))));
    frames.push(("ipv4 esp".into(), ethernet(0x0800, &ipv4_with(50, &[0; 16]))));
    // IPv6: each kind before TCP, AH among extension headers, no next header.
    for (kind, units) in [(0u8, 0u8), (43, 1), (44, 0), (60, 2), (51, 1)] {
        let mut body = extension(6, units);
        body.extend_from_slice(&tcp);
        frames.push((format!("ipv6 ext {kind} tcp"), ethernet(0x86dd, &ipv6_with(kind, 1, 2, &body))));
    }
    let mut body = extension(43, 0);
    body.extend(extension(51, 1));
    body.extend(extension(60, 0));
    body.extend(extension(44, 0));
    body.extend(extension(17, 0));
    body.extend_from_slice(&tcp);
    frames.push(("ipv6 hbh rt ah dst frag udp".into(), ethernet(0x86dd, &ipv6_with(0, 0, 0, &body))));
    // AH whose length sends libpcap's cursor into the zero bytes of the addresses: a
    // walk over hop-by-hop headers made of zeros.
    let mut body = extension(0, 2);
    body[1] = 2;
    body.extend_from_slice(&tcp);
    frames.push(("ipv6 ah(next 0, len 2) over zero addresses".into(), ethernet(0x86dd, &ipv6_with(51, 0, 0, &body))));
    frames.push(("ipv6 no next header".into(), ethernet(0x86dd, &ipv6_with(59, 1, 2, &[0; 8]))));
    let mut body = extension(59, 0);
    body.extend_from_slice(&[0; 8]);
    frames.push(("ipv6 dst then no next header".into(), ethernet(0x86dd, &ipv6_with(60, 1, 2, &body))));
    let mut out = Vec::new();
    for (description, bytes) in frames {
        for cut in 14..bytes.len() {
            out.push(CorpusPacket { bytes: bytes[..cut].to_vec(), description: format!("{description} cut@{cut}") });
        }
        out.push(CorpusPacket { bytes: vlan(&bytes, 7), description: format!("vlan {description}") });
        out.push(CorpusPacket { bytes, description });
    }
    for count in [1usize, 2, 5, 17, 100, 182, 183] {
        let bytes = ipv6_chain(count);
        let description = format!("ipv6 {count} hop-by-hop headers udp");
        for cut in [bytes.len() - 16, bytes.len() - 10, bytes.len() - 9, bytes.len() - 8] {
            out.push(CorpusPacket { bytes: bytes[..cut].to_vec(), description: format!("{description} cut@{cut}") });
        }
        out.push(CorpusPacket { bytes, description });
    }
    out
}

/// IPv4 whose AH sends libpcap's `protochain` cursor back to itself (`(3 + 2) * 4` = 20):
/// libpcap 1.10 never returns on it.
pub fn ipv4_ah_cycle() -> Vec<u8> {
    let mut body = vec![0u8; 24];
    body[0] = 51;
    body[1] = 3;
    ethernet(0x0800, &ipv4_with(51, &body))
}

/// A Geneve header (version `version`, `options` 4-byte option words, this protocol
/// and VNI) and its options, then `payload`.
fn geneve(version: u8, options: u8, protocol: u16, vni: u32, payload: &[u8]) -> Vec<u8> {
    let mut header = vec![version << 6 | options, 0];
    header.extend_from_slice(&protocol.to_be_bytes());
    header.extend_from_slice(&(vni << 8).to_be_bytes());
    for word in 0..options {
        header.extend_from_slice(&[0x01, 0x02, 0x80 | word, 0x00]);
    }
    header.extend_from_slice(payload);
    header
}

/// A UDP datagram from port 40000 to `port`.
fn udp_to(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut udp = 40000u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    udp
}

/// How the Geneve datagram travels: over IPv4 (with `options` option words, a fragment
/// offset), over IPv6, behind a VLAN tag.
#[derive(Clone, Copy)]
enum Outer {
    Ipv4 { options: u8, fragment: u16 },
    Ipv6,
    VlanIpv4,
}

/// An Ethernet frame carrying `udp` as described, and where its UDP header starts.
fn outer(how: Outer, udp: &[u8]) -> (Vec<u8>, usize) {
    match how {
        Outer::Ipv4 { options, fragment } => {
            let mut ip = ipv4_with(17, &[]);
            ip[0] = 0x45 + options;
            ip[6..8].copy_from_slice(&fragment.to_be_bytes());
            ip.extend(std::iter::repeat(1u8).take(4 * usize::from(options)));
            ip.extend_from_slice(udp);
            let total = ip.len() as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            (ethernet(0x0800, &ip), 14 + 20 + 4 * usize::from(options))
        }
        Outer::Ipv6 => (ethernet(0x86dd, &ipv6_with(17, 1, 2, udp)), 14 + 40),
        Outer::VlanIpv4 => {
            let (frame, udp_at) = outer(Outer::Ipv4 { options: 0, fragment: 0 }, udp);
            (vlan(&frame, 10), udp_at + 4)
        }
    }
}

/// Geneve frames: over IPv4 (with and without options), IPv6 and a VLAN tag, with 0 to 3
/// option words, carrying Ethernet (Transparent Ethernet Bridging, with and without a
/// VLAN tag, broadcast, ARP, another Geneve datagram inside) or bare IPv4 and IPv6,
/// IPv4/TCP, IPv6/UDP and UDP inside; and near misses (version 1, port 6082, a later
/// fragment). With `every_byte`, each cut at every length from the UDP header on;
/// otherwise at the boundaries of its headers and one and two bytes into each.
pub fn geneve_frames(every_byte: bool) -> Vec<CorpusPacket> {
    let tcp4 = ip_of(Packet::eth().ipv4("10.0.0.1", "10.0.0.2").tcp(1024, 22));
    let udp4 = ip_of(Packet::eth().ipv4("10.0.0.3", "10.0.0.4").udp(5353, 53));
    let udp6 = ip_of(Packet::eth().ipv6("2001:db8::1", "2001:db8::2").udp(5353, 53));
    let arp = Packet::eth().arp(1, "10.0.0.1", "10.0.0.2").build();
    let inner_ethernet = |ethertype: u16, payload: &[u8]| ethernet(ethertype, payload);
    let nested = {
        let inner = geneve(0, 1, 0x6558, 20, &inner_ethernet(0x0800, &tcp4));
        inner_ethernet(0x0800, &ipv4_with(17, &udp_to(6081, &inner)))
    };
    let mut broadcast = inner_ethernet(0x0800, &udp4);
    broadcast[..6].copy_from_slice(&[0xff; 6]);
    // (description, Geneve protocol, payload, how many bytes of it are link header)
    let payloads: Vec<(&str, u16, Vec<u8>, usize)> = vec![
        ("ethernet ipv4 tcp", 0x6558, inner_ethernet(0x0800, &tcp4), 14),
        ("ethernet vlan ipv4 tcp", 0x6558, vlan(&inner_ethernet(0x0800, &tcp4), 30), 18),
        ("ethernet ipv6 udp", 0x6558, inner_ethernet(0x86dd, &udp6), 14),
        ("ethernet broadcast ipv4 udp", 0x6558, broadcast, 14),
        ("ethernet arp", 0x6558, arp, 14),
        ("ethernet ipv4 udp geneve ethernet ipv4 tcp", 0x6558, nested, 14),
        ("ipv4 tcp", 0x0800, tcp4.clone(), 0),
        ("ipv6 udp", 0x86dd, udp6.clone(), 0),
    ];
    let outers = [
        ("ipv4", Outer::Ipv4 { options: 0, fragment: 0 }),
        ("ipv4 options", Outer::Ipv4 { options: 2, fragment: 0 }),
        ("ipv6", Outer::Ipv6),
        ("vlan ipv4", Outer::VlanIpv4),
    ];
    let mut frames: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for (index, (what, protocol, payload, link)) in payloads.iter().enumerate() {
        for (outer_index, (how_name, how)) in outers.iter().enumerate() {
            let options = ((index + outer_index) % 4) as u8;
            let vni = if index % 2 == 0 { 10 } else { 12345 };
            let (frame, udp_at) = outer(*how, &udp_to(6081, &geneve(0, options, *protocol, vni, payload)));
            let inner = udp_at + 16 + 4 * usize::from(options);
            let mut boundaries = vec![udp_at, udp_at + 2, udp_at + 8, udp_at + 9, udp_at + 10, udp_at + 12];
            boundaries.extend([udp_at + 16, inner, inner + 12, inner + link, inner + link + 1, inner + link + 10]);
            boundaries.extend([inner + link + 20, inner + link + 21, inner + link + 24, inner + link + 40]);
            let description = format!("{how_name} geneve vni {vni} options {options} {what}");
            frames.push((description, frame, boundaries));
        }
    }
    for (what, frame) in [
        ("version 1", outer(Outer::Ipv4 { options: 0, fragment: 0 }, &udp_to(6081, &geneve(1, 0, 0x6558, 10, &tcp4)))),
        ("port 6082", outer(Outer::Ipv6, &udp_to(6082, &geneve(0, 0, 0x0800, 10, &tcp4)))),
        (
            "later fragment",
            outer(Outer::Ipv4 { options: 0, fragment: 100 }, &udp_to(6081, &geneve(0, 0, 0x0800, 10, &tcp4))),
        ),
    ] {
        let (frame, udp_at) = frame;
        frames.push((format!("geneve near miss: {what}"), frame, vec![udp_at + 8, udp_at + 12, udp_at + 16]));
    }
    let mut out = Vec::new();
    for (description, bytes, boundaries) in frames {
        let udp_at = boundaries[0];
        let cuts: Vec<usize> = if every_byte { (udp_at..bytes.len()).collect() } else { boundaries };
        for cut in cuts.into_iter().filter(|cut| *cut < bytes.len()) {
            out.push(CorpusPacket { bytes: bytes[..cut].to_vec(), description: format!("{description} cut@{cut}") });
        }
        out.push(CorpusPacket { bytes, description });
    }
    out
}
