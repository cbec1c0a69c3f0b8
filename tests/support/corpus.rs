//! The differential packet corpus: a seed in, ≥ 1,000 frames out, each with a one-line
//! description of how it was built. Deterministic: the same seed gives the same bytes.
//!
//! Every protocol path pfc parses is built, with 0–3 VLAN tags (802.1Q and 802.1ad) in
//! front: Ethernet with odd ethertypes, ARP, IPv4 with and without options and in every
//! fragment state, IPv6 with each extension header and chains of 1–5 of them (first and
//! non-first fragments), TCP, UDP, SCTP, ICMP, ICMPv6 (errors, echo, MLD, neighbour
//! discovery), mismatched carriers (ICMP over IPv6), bad `ihl` and odd versions (an `ihl`
//! of 5 with version 6 or 0 is still IPv4). Then many of those are truncated at every
//! header boundary and one byte either side (and 20 + 8 bytes into IPv4 ± 1, the common
//! path's one bounds check), some at random lengths;
//! every IPv6 extension header kind is cut at every byte of it (`extension_header_cuts`),
//! and there are frames under 14 and under 60 bytes.

use pfc_compiler::packet::{mac, Arp, Eth, ExtKind, Icmp, Ipv4, Ipv6, Ipv6Ext, Layer, Packet, Sctp, Tcp, Udp, Vlan};

use super::pools;
use super::Rng;

/// One corpus frame.
#[derive(Clone, Debug)]
pub struct CorpusPacket {
    /// The frame's bytes.
    pub bytes: Vec<u8>,
    /// How it was built, e.g. `vlan[0x8100] ipv4+opt8 frag(first) tcp 22>80 cut@38`.
    pub description: String,
}

/// Full (untruncated) frames built per shape; every `CUT_EVERY`-th one is also cut at
/// each header boundary.
const PER_SHAPE: usize = 28;
const CUT_EVERY: usize = 4;

/// The corpus for `seed`.
pub fn corpus(seed: u64) -> Vec<CorpusPacket> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for shape in Shape::ALL {
        for index in 0..PER_SHAPE {
            let (packet, description) = build(&mut rng, shape);
            let bytes = packet.build();
            if index % CUT_EVERY == 0 {
                for cut in boundaries(&packet) {
                    if cut < bytes.len() {
                        out.push(CorpusPacket {
                            bytes: bytes[..cut].to_vec(),
                            description: format!("{description} cut@{cut}"),
                        });
                    }
                }
            }
            if index % CUT_EVERY == 1 && !bytes.is_empty() {
                let cut = rng.below(bytes.len());
                out.push(CorpusPacket {
                    bytes: bytes[..cut].to_vec(),
                    description: format!("{description} cut@{cut} (random)"),
                });
            }
            out.push(CorpusPacket { bytes, description });
        }
    }
    out.extend(extension_header_cuts().into_iter().map(|(packet, _)| packet));
    for len in [0usize, 1, 6, 12, 13, 14, 15, 20, 33, 59] {
        let bytes = rng.bytes(len);
        out.push(CorpusPacket { bytes, description: format!("random {len} bytes") });
    }
    // Cuts of different frames often give the same bytes (every 1-byte cut of a frame
    // with the same destination MAC): keep the first of each.
    let mut seen = std::collections::HashSet::new();
    out.retain(|packet| seen.insert(packet.bytes.clone()));
    out
}

/// The frame of issue 9: IPv6 whose hop-by-hop header (next header 6, 8 bytes long) is
/// cut after its first 2 bytes, so its upper protocol is unknown.
pub const TRUNCATED_HOP_BY_HOP: &str =
    "02000000000200112233440186dd60000000000800ff20010db8000000000000000000000001fe8000000000000000000000000000010600";

/// Every extension header kind pfc walks (hop-by-hop, routing and destination options of
/// 8, 16 and 24 bytes; first and later fragments), alone between IPv6 and TCP, cut at
/// every byte from the start of the extension header to its end, plus the issue's frame.
/// Each comes with the length from which the whole extension header is inside the frame,
/// so the upper protocol (`ipv6.proto`, here 6) is known.
pub fn extension_header_cuts() -> Vec<(CorpusPacket, usize)> {
    const IPV6_END: usize = 14 + 40;
    let mut kinds: Vec<(ExtKind, u8)> = Vec::new();
    for kind in [ExtKind::HopByHop, ExtKind::Routing, ExtKind::DestOpts] {
        kinds.extend([0, 1, 2].map(|len| (kind, len)));
    }
    kinds.extend([(ExtKind::Fragment { offset: 0, more: true }, 0), (ExtKind::Fragment { offset: 8, more: false }, 0)]);
    let mut out = Vec::new();
    for (kind, len) in kinds {
        let packet = Packet::eth().ipv6("2001:db8::1", "fe80::1").ext(kind, len).tcp(1000, 22);
        let complete = IPV6_END + ext_len(kind, len);
        let bytes = packet.build();
        for cut in IPV6_END..=complete + 1 {
            let description =
                format!("ipv6 ext[{kind:?} len {len}] tcp 1000>22 cut@{cut} (extension header ends at {complete})");
            out.push((CorpusPacket { bytes: bytes[..cut].to_vec(), description }, complete));
        }
    }
    let issue = pfc_compiler::testcase::parse_hex(TRUNCATED_HOP_BY_HOP).expect("hex");
    let description = "ipv6 ext[HopByHop len 0] next tcp, cut after 2 of its 8 bytes (issue 9)".to_string();
    out.push((CorpusPacket { bytes: issue, description }, IPV6_END + 8));
    out
}

/// Bytes of an extension header of `kind` and `len` (8-byte units beyond the first 8).
fn ext_len(kind: ExtKind, len: u8) -> usize {
    match kind {
        ExtKind::Fragment { .. } => 8,
        _ => (usize::from(len) + 1) * 8,
    }
}

/// The protocol paths of the corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    OddEthertype,
    Arp,
    Ipv4,
    Ipv4Options,
    Ipv4Fragment,
    Ipv4BadIhl,
    Ipv6,
    Ipv6Ext,
    Ipv6LongChain,
    Ipv6Fragment,
    Icmp6,
}

impl Shape {
    const ALL: [Shape; 11] = [
        Shape::OddEthertype,
        Shape::Arp,
        Shape::Ipv4,
        Shape::Ipv4Options,
        Shape::Ipv4Fragment,
        Shape::Ipv4BadIhl,
        Shape::Ipv6,
        Shape::Ipv6Ext,
        Shape::Ipv6LongChain,
        Shape::Ipv6Fragment,
        Shape::Icmp6,
    ];
}

/// Builds one frame of `shape` with random values from the pools.
fn build(rng: &mut Rng, shape: Shape) -> (Packet, String) {
    let mut words = Vec::new();
    let eth = Eth { src: mac(rng.pick(pools::MACS)), dst: mac(rng.pick(pools::MACS)), ethertype: None };
    let mut packet = Packet::new().push(eth);
    let tags = rng.pick(&[0usize, 0, 0, 0, 0, 0, 1, 1, 2, 3]);
    for _ in 0..tags {
        let tpid = rng.pick(&[0x8100u16, 0x8100, 0x88a8]);
        let tag = Vlan { id: rng.pick(pools::VLAN_IDS), pcp: rng.below(8) as u8, tpid, ..Vlan::default() };
        words.push(format!("vlan[{tpid:#06x} id {} pcp {}]", tag.id, tag.pcp));
        packet = packet.push(tag);
    }
    packet = match shape {
        Shape::OddEthertype => {
            let ethertype = rng.pick(pools::ODD_ETHERTYPES);
            words.push(format!("ethertype {ethertype:#06x}"));
            let len = rng.below(50);
            let payload = rng.bytes(len);
            set_last_ethertype(packet, ethertype).payload(payload)
        }
        Shape::Arp => {
            let op = rng.pick(&[1u16, 2, 3]);
            let arp = Arp {
                op,
                sha: mac(rng.pick(pools::MACS)),
                sip: rng.pick(pools::IPV4).parse().expect("pool address"),
                tha: mac(rng.pick(pools::MACS)),
                tip: rng.pick(pools::IPV4).parse().expect("pool address"),
            };
            words.push(format!("arp op {op} {}>{}", arp.sip, arp.tip));
            packet.push(arp)
        }
        Shape::Ipv4 | Shape::Ipv4Options | Shape::Ipv4Fragment | Shape::Ipv4BadIhl => {
            let (ip, text) = ipv4(rng, shape);
            words.push(text);
            let fragmented = ip.frag_offset != 0;
            transport(rng, packet.push(ip), false, fragmented, &mut words)
        }
        Shape::Ipv6 | Shape::Icmp6 => {
            let (ip, text) = ipv6(rng);
            words.push(text);
            let packet = packet.push(ip);
            if shape == Shape::Icmp6 {
                icmp6(rng, packet, &mut words)
            } else {
                transport(rng, packet, true, false, &mut words)
            }
        }
        Shape::Ipv6Ext | Shape::Ipv6LongChain | Shape::Ipv6Fragment => {
            let (ip, text) = ipv6(rng);
            words.push(text);
            let count = match shape {
                Shape::Ipv6Ext => 1 + rng.below(2),
                Shape::Ipv6LongChain => 3 + rng.below(3),
                _ => 1,
            };
            let mut packet = packet.push(ip);
            let mut non_first = false;
            for position in 0..count {
                let kind = if shape == Shape::Ipv6Fragment && position == count - 1 {
                    fragment(rng)
                } else {
                    match rng.below(4) {
                        0 => ExtKind::HopByHop,
                        1 => ExtKind::Routing,
                        2 => ExtKind::DestOpts,
                        _ => fragment(rng),
                    }
                };
                let len = if matches!(kind, ExtKind::Fragment { .. }) { 0 } else { rng.pick(&[0u8, 0, 1, 2]) };
                non_first |= matches!(kind, ExtKind::Fragment { offset, .. } if offset != 0);
                words.push(format!("ext[{kind:?} len {len}]"));
                packet = packet.push(Ipv6Ext { kind, len, next: None });
            }
            if rng.chance(30) {
                icmp6(rng, packet, &mut words)
            } else {
                transport(rng, packet, true, non_first, &mut words)
            }
        }
    };
    if rng.chance(40) {
        let len = rng.below(24);
        let payload = rng.bytes(len);
        words.push(format!("+{} payload", payload.len()));
        packet = packet.payload(payload);
    }
    (packet, words.join(" "))
}

/// Forces the ethertype written after the last Ethernet or VLAN header.
fn set_last_ethertype(mut packet: Packet, ethertype: u16) -> Packet {
    match packet.layers.last_mut() {
        Some(Layer::Vlan(tag)) => tag.ethertype = Some(ethertype),
        Some(Layer::Eth(eth)) => eth.ethertype = Some(ethertype),
        _ => {}
    }
    packet
}

fn fragment(rng: &mut Rng) -> ExtKind {
    let offset = if rng.chance(50) { 0 } else { rng.pick(pools::FRAG_OFFSETS) };
    ExtKind::Fragment { offset, more: rng.chance(50) }
}

fn ipv4(rng: &mut Rng, shape: Shape) -> (Ipv4, String) {
    let mut ip = Ipv4::new(rng.pick(pools::IPV4), rng.pick(pools::IPV4));
    ip.ttl = rng.pick(pools::TTLS);
    ip.tos = rng.pick(pools::TOS);
    ip.id = rng.pick(pools::IP_IDS);
    ip.df = rng.chance(30);
    let mut text = format!("ipv4 {}>{} ttl {} tos {:#x}", ip.src, ip.dst, ip.ttl, ip.tos);
    match shape {
        Shape::Ipv4Options => {
            let words = 1 + rng.below(10);
            ip.options = (0..words * 4).map(|i| if i == 0 { 0x94 } else { 1 }).collect();
            text.push_str(&format!(" +opt{}", words * 4));
        }
        Shape::Ipv4Fragment => {
            match rng.below(3) {
                0 => ip.mf = true,
                1 => ip.frag_offset = rng.pick(pools::FRAG_OFFSETS),
                _ => (ip.frag_offset, ip.mf) = (rng.pick(pools::FRAG_OFFSETS), true),
            }
            text.push_str(&format!(" frag(offset {} mf {})", ip.frag_offset, ip.mf));
        }
        Shape::Ipv4BadIhl => {
            let ihl = rng.pick(&[0u8, 3, 4, 5, 6, 15]);
            ip.ihl = Some(ihl);
            ip.version = rng.pick(&[4u8, 6, 0]);
            text.push_str(&format!(" ihl {ihl} version {}", ip.version));
        }
        _ => {}
    }
    (ip, text)
}

fn ipv6(rng: &mut Rng) -> (Ipv6, String) {
    let mut ip = Ipv6::new(rng.pick(pools::IPV6), rng.pick(pools::IPV6));
    ip.hop_limit = rng.pick(pools::TTLS);
    ip.tclass = rng.pick(pools::TOS);
    ip.flow_label = rng.pick(pools::FLOW_LABELS);
    let text =
        format!("ipv6 {}>{} hlim {} tclass {:#x} flow {}", ip.src, ip.dst, ip.hop_limit, ip.tclass, ip.flow_label);
    (ip, text)
}

/// A transport header (or an odd protocol) after an IP header; `fragment` notes that
/// it will not be parsed as transport.
fn transport(rng: &mut Rng, packet: Packet, over_ipv6: bool, fragment: bool, words: &mut Vec<String>) -> Packet {
    let (sport, dport) = (rng.pick(pools::PORTS), rng.pick(pools::PORTS));
    let note = if fragment { " (in a non-first fragment)" } else { "" };
    match rng.below(7) {
        0 | 1 => {
            let tcp = Tcp {
                sport,
                dport,
                seq: rng.pick(pools::SEQS),
                ack: rng.pick(pools::SEQS),
                flags: rng.pick(pools::TCP_FLAGS),
                window: rng.pick(pools::WINDOWS),
                checksum: None,
            };
            words.push(format!("tcp {sport}>{dport} flags {:#04x} seq {} ack {}{note}", tcp.flags, tcp.seq, tcp.ack));
            packet.push(tcp)
        }
        2 | 3 => {
            let len = if rng.chance(20) { Some(rng.pick(&[0u16, 8, 65535])) } else { None };
            words.push(format!("udp {sport}>{dport} len {len:?}{note}"));
            packet.push(Udp { sport, dport, len, checksum: None })
        }
        4 => {
            words.push(format!("sctp {sport}>{dport}{note}"));
            packet.push(Sctp { sport, dport, vtag: rng.next_u64() as u32 })
        }
        5 if !over_ipv6 && rng.chance(25) => {
            let icmp = Icmp { kind: rng.pick(pools::ICMP6_TYPES), code: 0, rest: 0 };
            words.push(format!("icmp6 type {} over ipv4{note}", icmp.kind));
            packet.push(Layer::Icmp6(icmp))
        }
        5 => {
            let icmp = Icmp { kind: rng.pick(pools::ICMP_TYPES), code: rng.pick(pools::ICMP_CODES), rest: 0 };
            let carrier = if over_ipv6 { " (icmp over ipv6)" } else { "" };
            words.push(format!("icmp type {} code {}{carrier}{note}", icmp.kind, icmp.code));
            packet.push(Layer::Icmp(icmp))
        }
        _ => {
            let protocol = rng.pick(pools::ODD_PROTOCOLS);
            words.push(format!("protocol {protocol}"));
            let len = 8 + rng.below(16);
            let packet = packet.payload(rng.bytes(len));
            set_last_protocol(packet, protocol)
        }
    }
}

/// ICMPv6 after IPv6 (and its extension headers).
fn icmp6(rng: &mut Rng, packet: Packet, words: &mut Vec<String>) -> Packet {
    let icmp =
        Icmp { kind: rng.pick(pools::ICMP6_TYPES), code: rng.pick(pools::ICMP_CODES), rest: rng.next_u64() as u32 };
    words.push(format!("icmp6 type {} code {}", icmp.kind, icmp.code));
    packet.push(Layer::Icmp6(icmp))
}

/// Forces the protocol / next-header field of the last IP or extension header.
fn set_last_protocol(mut packet: Packet, protocol: u8) -> Packet {
    for layer in packet.layers.iter_mut().rev() {
        match layer {
            Layer::Ipv4(ip) => ip.protocol = Some(protocol),
            Layer::Ipv6(ip) => ip.next = Some(protocol),
            Layer::Ipv6Ext(ext) => ext.next = Some(protocol),
            _ => continue,
        }
        break;
    }
    packet
}

/// Lengths at which to cut a frame: every header boundary, one byte either side, and
/// for IPv6 extension headers two bytes in (next header and length, read first; every
/// byte of each kind is cut in [`extension_header_cuts`]).
fn boundaries(packet: &Packet) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut offset = 0usize;
    for layer in &packet.layers {
        cuts.extend([offset.saturating_sub(1), offset, offset + 1]);
        if matches!(layer, Layer::Ipv6Ext(_)) {
            cuts.push(offset + 2);
        }
        if matches!(layer, Layer::Ipv4(_)) {
            // The common IPv4 path's one bounds check: a 20-byte header and an 8-byte
            // transport header (UDP's, ICMP's), whatever the real header's length.
            cuts.extend([offset + 27, offset + 28, offset + 29]);
        }
        offset += layer.header_len();
    }
    cuts.extend([offset.saturating_sub(1)]);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}
