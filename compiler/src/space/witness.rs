//! Witness packets: a [`Space`] in, a concrete frame out, written in the packet-spec
//! syntax of case files (`ipv4 src=10.0.0.1 / tcp dport=22`) and built with the packet
//! builder. The caller confirms every witness with the interpreter (`accept`); a point
//! that no frame realises (the universe over-approximates) gives no witness.
//!
//! Each layer's fields that need care (addresses, lengths, protocol numbers, options)
//! are chosen by its own function; every other rule-language field of the layer's
//! header that the cube constrains is written by its name (`rest`), which the packet
//! spec takes for any such field: a field added to the `fields!` table needs nothing here.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::ivs::Ivs;
use super::shape::{shapes, Link, Net, Shape, IPV6_EXTENSIONS};
use super::{Cube, Space};
use crate::fields::{Field, FieldSource, Proto, ValueKind};
use crate::testcase::{parse_spec, MAX_PACKET_LEN};

/// A concrete packet for a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// The packet spec, as a case file writes it.
    pub spec: String,
    /// The frame.
    pub bytes: Vec<u8>,
}

/// How many cubes and value choices are tried before giving up.
const CUBES_TRIED: usize = 16;
const ATTEMPTS: usize = 3;

/// A frame in `space` that `accept` confirms, if one is found.
pub fn find(space: &Space, accept: impl Fn(&[u8]) -> bool) -> Option<Witness> {
    for cube in space.in_universe().iter().take(CUBES_TRIED) {
        for (index, &shape) in shapes().iter().enumerate() {
            if cube.shapes & (1 << index) == 0 {
                continue;
            }
            for attempt in 0..ATTEMPTS {
                let Some(spec) = spec_for(cube, shape, attempt) else { continue };
                let Ok(packet) = parse_spec(&spec) else { continue };
                let bytes = packet.build();
                if accept(&bytes) {
                    return Some(Witness { spec, bytes });
                }
            }
        }
    }
    None
}

/// Chooses values of a cube's fields, preferring the builder's defaults.
struct Picker<'c> {
    cube: &'c Cube,
    attempt: usize,
    /// The fields looked at so far, which [`rest`] leaves alone.
    seen: RefCell<Vec<Field>>,
}

impl Picker<'_> {
    /// The cube's values of `field` (`None`: unconstrained), marking the field as seen.
    fn get(&self, field: Field) -> Option<&Ivs> {
        self.seen.borrow_mut().push(field);
        self.cube.get(field)
    }

    /// Marks fields that the builder derives (a protocol number from the next layer), so
    /// [`rest`] does not write them.
    fn derived(&self, fields: &[Field]) {
        self.seen.borrow_mut().extend_from_slice(fields);
    }

    /// A value of `field` in the cube, `preferred` when allowed; `None` when the cube
    /// does not constrain the field (the builder's default is then fine).
    fn constrained(&self, field: Field, preferred: u128) -> Option<u128> {
        self.get(field).map(|set| self.choose(set, preferred))
    }

    fn value(&self, field: Field, preferred: u128) -> u128 {
        self.constrained(field, preferred).unwrap_or(preferred)
    }

    fn choose(&self, set: &Ivs, preferred: u128) -> u128 {
        if set.contains(preferred) && self.attempt == 0 {
            return preferred;
        }
        match self.attempt {
            0 => set.first().unwrap_or(preferred),
            1 => set.0.last().map_or(preferred, |&(_, high)| high),
            _ => set.0.get(set.0.len() / 2).map_or(preferred, |&(low, high)| low + (high - low) / 2),
        }
    }

    /// A value of `field` avoiding `avoid` when the set allows.
    fn avoiding(&self, field: Field, preferred: u128, avoid: &[u128]) -> u128 {
        let Some(set) = self.get(field) else { return preferred };
        let bad = Ivs::from_unsorted(avoid.iter().map(|&v| (v, v)).collect());
        let good = set.minus(&bad);
        if good.is_empty() {
            self.choose(set, preferred)
        } else {
            self.choose(&good, preferred)
        }
    }
}

fn mac(value: u128) -> String {
    let bytes = (value as u64).to_be_bytes();
    bytes[2..].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Appends ` KEY=VALUE` for every rule-language field of `proto`'s header that the cube
/// constrains and the layer's own code has not seen, by its name after the dot.
fn rest(pick: &Picker<'_>, proto: Proto, text: &mut String) {
    for &field in Field::ALL {
        let FieldSource::Header { proto: of, .. } = field.source() else { continue };
        if of != proto || pick.seen.borrow().contains(&field) {
            continue;
        }
        let Some(value) = pick.constrained(field, 0) else { continue };
        let key = field.name().strip_prefix(proto.name()).and_then(|key| key.strip_prefix('.')).unwrap_or("");
        let _ = match field.kind() {
            ValueKind::Uint(_) => write!(text, " {key}={value}"),
            ValueKind::Mac => write!(text, " {key}={}", mac(value)),
            ValueKind::Ipv4 => write!(text, " {key}={}", Ipv4Addr::from(value as u32)),
            ValueKind::Ipv6 => write!(text, " {key}={}", Ipv6Addr::from(value)),
        };
    }
}

/// The spec of a frame of `shape` in `cube`, or `None` when the choice cannot be written.
fn spec_for(cube: &Cube, shape: Shape, attempt: usize) -> Option<String> {
    let pick = Picker { cube, attempt, seen: RefCell::new(Vec::new()) };
    let mut parts: Vec<String> = Vec::new();
    let mut eth = "eth".to_string();
    for (field, key, default) in [(Field::EthSrc, "src", 0x0200_0000_0001), (Field::EthDst, "dst", 0x0200_0000_0002)] {
        if let Some(value) = pick.constrained(field, default) {
            let _ = write!(eth, " {key}={}", mac(value));
        }
    }
    rest(&pick, Proto::Eth, &mut eth);
    let tag = |pick: &Picker<'_>| {
        let mut text = format!("vlan {}", pick.value(Field::VlanId, 1));
        if let Some(pcp) = pick.constrained(Field::VlanPcp, 0) {
            let _ = write!(text, " pcp={pcp}");
        }
        rest(pick, Proto::Vlan, &mut text);
        text
    };
    let ethertype = pick.value(Field::EthType, 0x88b5);
    match shape.link {
        Link::Runt => {
            parts.push(eth);
            let len = pick.value(Field::PktLen, 0).min(13);
            parts.push(format!("truncate {len}"));
            return Some(parts.join(" / "));
        }
        Link::CutFirstTag => {
            parts.push(format!("{eth} type=0x8100"));
            parts.push("payload len=4".to_string());
            parts.push(format!("truncate {}", pick.value(Field::PktLen, 14).clamp(14, 17)));
            return Some(parts.join(" / "));
        }
        Link::CutSecondTag => {
            parts.extend([eth, tag(&pick), "vlan".to_string()]);
            parts.push(format!("truncate {}", pick.value(Field::PktLen, 18).clamp(18, 21)));
            return Some(parts.join(" / "));
        }
        Link::Untagged => parts.push(eth),
        Link::Tagged => {
            parts.push(eth);
            parts.push(tag(&pick));
            if shape.net == Net::None && matches!(ethertype, 0x8100 | 0x88a8) {
                parts.push("vlan".to_string());
            }
        }
    }
    match shape.net {
        Net::None => {
            let ethertype = pick.avoiding(Field::EthType, 0x88b5, &[0x0800, 0x0806, 0x86dd]);
            let last = parts.last_mut()?;
            let _ = write!(last, " type={ethertype}");
            if ethertype == 0x0800 {
                // An IPv4 header whose length field is too small does not count.
                parts.push("ipv4 ihl=4".to_string());
            }
        }
        Net::Arp => parts.push(arp(&pick)),
        Net::Ipv4(l4) => parts.push(ipv4(&pick, l4)),
        Net::Ipv6Opaque => {
            let first = pick.value(Field::Ipv6Next, 0);
            parts.push(ipv6(&pick, Some(first)));
            parts.push(extension(first, None));
            // Four more: the walk stops before it reaches the end.
            parts.extend(std::iter::repeat("hopopts next=0".to_string()).take(3));
            parts.push("hopopts next=59".to_string());
        }
        Net::Ipv6(l4) => {
            let number = l4.and_then(Proto::ip_protocol).map(u128::from);
            let upper = number.unwrap_or_else(|| pick.avoiding(Field::Ipv6Proto, 59, &[6, 17, 58, 132, 0, 43, 44, 60]));
            let next_set = pick.get(Field::Ipv6Next);
            let direct = next_set.map_or(true, |set| set.contains(upper)) && !IPV6_EXTENSIONS.contains(&upper);
            if direct {
                parts.push(ipv6(&pick, Some(upper)));
            } else {
                let first = pick.value(Field::Ipv6Next, 44);
                if !IPV6_EXTENSIONS.contains(&first) {
                    return None;
                }
                parts.push(ipv6(&pick, Some(first)));
                let hidden = IPV6_EXTENSIONS.contains(&upper) || l4.is_none();
                if first != 44 && hidden {
                    parts.push(extension(first, Some(44)));
                    parts.push(format!("frag6 offset=1 next={upper}"));
                } else if first == 44 {
                    let offset = if l4.is_none() { 1 } else { 0 };
                    parts.push(format!("frag6 offset={offset} next={upper}"));
                } else {
                    parts.push(extension(first, Some(upper)));
                }
            }
        }
    }
    if let Net::Ipv4(Some(l4)) | Net::Ipv6(Some(l4)) = shape.net {
        parts.push(transport(&pick, l4));
    }
    let spec = finish_length(&pick, parts)?;
    // The spec adds a plain Ethernet header when the first layer is not `eth`.
    Some(spec.strip_prefix("eth / ").map_or(spec.clone(), str::to_string))
}

fn extension(number: u128, next: Option<u128>) -> String {
    let name = match number {
        0 => "hopopts",
        43 => "routing",
        60 => "dstopts",
        _ => "frag6",
    };
    match next {
        Some(next) => format!("{name} next={next}"),
        None => name.to_string(),
    }
}

fn arp(pick: &Picker<'_>) -> String {
    let mut text = format!("arp op={}", pick.value(Field::ArpOp, 1));
    for (field, key) in [(Field::ArpSha, "sha"), (Field::ArpTha, "tha")] {
        if let Some(value) = pick.constrained(field, 0) {
            let _ = write!(text, " {key}={}", mac(value));
        }
    }
    for (field, key) in [(Field::ArpSip, "sip"), (Field::ArpTip, "tip")] {
        if let Some(value) = pick.constrained(field, 0x0a00_0001) {
            let _ = write!(text, " {key}={}", Ipv4Addr::from(value as u32));
        }
    }
    rest(pick, Proto::Arp, &mut text);
    text
}

fn ipv4(pick: &Picker<'_>, l4: Option<Proto>) -> String {
    let mut text = String::from("ipv4");
    for (field, key) in [(Field::Ipv4Src, "src"), (Field::Ipv4Dst, "dst")] {
        if let Some(value) = pick.constrained(field, 0x0a00_0001) {
            let _ = write!(text, " {key}={}", Ipv4Addr::from(value as u32));
        }
    }
    let numbers = [
        (Field::Ipv4Tos, "tos", 0),
        (Field::Ipv4Ttl, "ttl", 64),
        (Field::Ipv4Id, "id", 1),
        (Field::Ipv4Len, "len", 0),
        (Field::Ipv4Df, "df", 0),
        (Field::Ipv4Mf, "mf", 0),
    ];
    for (field, key, default) in numbers {
        if let Some(value) = pick.constrained(field, default) {
            let _ = write!(text, " {key}={value}");
        }
    }
    match l4 {
        // The builder derives the protocol; the shape leaves no fragment offset.
        Some(_) => pick.derived(&[Field::Ipv4Proto, Field::Ipv4FragOffset]),
        None => {
            let proto = pick.avoiding(Field::Ipv4Proto, 59, &[1, 6, 17, 132]);
            let _ = write!(text, " proto={proto}");
            let frag = if [1, 6, 17, 132].contains(&proto) {
                pick.avoiding(Field::Ipv4FragOffset, 1, &[0])
            } else {
                pick.value(Field::Ipv4FragOffset, 0)
            };
            if frag != 0 {
                let _ = write!(text, " frag={frag}");
            }
        }
    }
    let ihl = pick.value(Field::Ipv4Ihl, 5);
    if ihl > 5 {
        let _ = write!(text, " options={}", "00".repeat((ihl as usize - 5) * 4));
    }
    rest(pick, Proto::Ipv4, &mut text);
    text
}

fn ipv6(pick: &Picker<'_>, next: Option<u128>) -> String {
    let mut text = String::from("ipv6");
    for (field, key) in [(Field::Ipv6Src, "src"), (Field::Ipv6Dst, "dst")] {
        if let Some(value) = pick.constrained(field, 0x2001_0db8 << 96 | 1) {
            let _ = write!(text, " {key}={}", Ipv6Addr::from(value));
        }
    }
    let numbers = [
        (Field::Ipv6Tclass, "tclass", 0),
        (Field::Ipv6FlowLabel, "flow", 0),
        (Field::Ipv6HopLimit, "hlim", 64),
        (Field::Ipv6PayloadLen, "plen", 0),
    ];
    for (field, key, default) in numbers {
        if let Some(value) = pick.constrained(field, default) {
            let _ = write!(text, " {key}={value}");
        }
    }
    if let Some(next) = next {
        let _ = write!(text, " next={next}");
    }
    pick.derived(&[Field::Ipv6Next]);
    rest(pick, Proto::Ipv6, &mut text);
    text
}

fn transport(pick: &Picker<'_>, proto: Proto) -> String {
    let (sport, dport) = (crate::testcase::DEFAULT_SPORT as u128, crate::testcase::DEFAULT_DPORT as u128);
    let fields: &[(Field, &str, u128)] = match proto {
        Proto::Tcp => &[
            (Field::TcpSport, "sport", sport),
            (Field::TcpDport, "dport", dport),
            (Field::TcpFlags, "flags", 2),
            (Field::TcpSeq, "seq", 0),
            (Field::TcpAck, "ack", 0),
            (Field::TcpWindow, "window", 65535),
        ],
        Proto::Udp => {
            &[(Field::UdpSport, "sport", sport), (Field::UdpDport, "dport", dport), (Field::UdpLen, "len", 8)]
        }
        Proto::Sctp => &[(Field::SctpSport, "sport", sport), (Field::SctpDport, "dport", dport)],
        Proto::Icmp => &[(Field::IcmpType, "type", 8), (Field::IcmpCode, "code", 0)],
        _ => &[(Field::Icmp6Type, "type", 128), (Field::Icmp6Code, "code", 0)],
    };
    let mut text = proto.name().to_string();
    for &(field, key, default) in fields {
        if let Some(value) = pick.constrained(field, default) {
            let _ = write!(text, " {key}={value}");
        }
    }
    rest(pick, proto, &mut text);
    text
}

/// Pads or cuts the frame to a length the cube allows.
fn finish_length(pick: &Picker<'_>, mut parts: Vec<String>) -> Option<String> {
    let natural = parse_spec(&parts.join(" / ")).ok()?.build().len() as u128;
    if let Some(set) = pick.get(Field::PktLen) {
        let at_least = set.intersect(&Ivs::range(natural, MAX_PACKET_LEN as u128));
        match at_least.first() {
            Some(len) if len > natural => parts.push(format!("payload len={}", len - natural)),
            Some(_) => {}
            None => {
                let below = set.intersect(&Ivs::range(0, natural.saturating_sub(1)));
                let (_, high) = *below.0.last()?;
                parts.push(format!("truncate {high}"));
            }
        }
    }
    Some(parts.join(" / "))
}
