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
