//! ClassBench-shaped rule sets: a [`Shape`], a rule count and a seed in; the rule file's
//! text and trace packets (with the rule that decides each, by the interpreter) out.
//! Shared by the classifier benchmark (`cargo bench -p pfc-runtime --bench classbench`)
//! and the differential tests, so both look at the same sets.
//!
//! The shapes follow the published character of ClassBench's seed filter sets (Taylor &
//! Turner, 2005) — 5-tuple rules (source and destination prefixes, source and
//! destination port ranges, protocol) in priority order — with distributions written
//! here, not copied:
//! - **acl** (access lists): long destination prefixes (mostly /32), varied sources,
//!   destination ports mostly exact well-known ports, source ports wildcard.
//! - **fw** (firewalls): wildcard-heavy: many /0 sources and destinations, port ranges
//!   (`1024..65535`, arbitrary ranges), more "any protocol" rules.
//! - **ipc** (IP chains): in between, exact ports common, medium prefixes.
//! - **block**: `drop if ip.src in PREFIX`, routing-table-like prefix lengths.
//! - **mixed**: acl-shaped, every odd rule IPv6.
//!
//! Port classes are ClassBench's: wildcard, `0..1023`, `1024..65535`, an arbitrary range,
//! an exact port. Addresses come from a pool of sites (/16s) so prefixes nest and share
//! bits as in real sets. No rule covers the trace's "no-match" space (198.18.0.0/15 and
//! 2001:db8::/32) except through a /0, and no rule tests only the protocol, so packets
//! that match no rule exist; the interpreter confirms each one (a few tries each).

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::packet::Packet;

/// The kind of rule set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Access-control lists.
    Acl,
    /// Firewall sets (wildcard-heavy).
    Fw,
    /// IP-chains sets.
    Ipc,
    /// A block list of source prefixes.
    Block,
    /// acl-shaped, odd rules IPv6.
    Mixed,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 5] = [Shape::Acl, Shape::Fw, Shape::Ipc, Shape::Block, Shape::Mixed];

    /// The shape's name (`acl`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Acl => "acl",
            Shape::Fw => "fw",
            Shape::Ipc => "ipc",
            Shape::Block => "block",
            Shape::Mixed => "mixed",
        }
    }

    /// The shape with this name.
    pub fn from_name(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|shape| shape.name() == name)
    }
}

/// A generated rule set with its trace.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The rule file.
    pub text: String,
    /// Trace packets: about four in five drawn from a rule's space, the rest matching
    /// no rule.
    pub trace: Vec<TracePacket>,
}

/// One trace packet.
#[derive(Clone, Debug)]
pub struct TracePacket {
    /// The frame.
    pub bytes: Vec<u8>,
    /// The rule that decides it (the interpreter's answer); `None`: the default.
    pub rule: Option<usize>,
}

/// SplitMix64: deterministic on every machine, no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Picks from `(value, weight)` pairs.
    fn weighted<T: Copy>(&mut self, table: &[(T, u32)]) -> T {
        let total: u32 = table.iter().map(|(_, weight)| weight).sum();
        let mut pick = self.below(u64::from(total)) as u32;
        for &(value, weight) in table {
            if pick < weight {
                return value;
            }
            pick -= weight;
        }
        table[0].0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortClass {
    Wildcard,
    Low,
    High,
    Range,
    Exact,
}

/// A prefix as (bits, length) in a 128-bit space; IPv4 uses the low 32 bits.
#[derive(Clone, Copy, Debug)]
struct Prefix {
    bits: u128,
    len: u32,
    v6: bool,
}

#[derive(Clone, Copy, Debug)]
struct Tuple {
    src: Prefix,
    dst: Prefix,
    proto: Proto,
    sport: (u16, u16),
    dport: (u16, u16),
    drop: bool,
}

struct Params {
    proto: &'static [(Proto, u32)],
    src_len: &'static [(u32, u32)],
    dst_len: &'static [(u32, u32)],
    sport: &'static [(PortClass, u32)],
    dport: &'static [(PortClass, u32)],
}

const ACL: Params = Params {
    proto: &[(Proto::Tcp, 60), (Proto::Udp, 25), (Proto::Icmp, 5), (Proto::Any, 10)],
    src_len: &[(0, 15), (8, 3), (16, 10), (20, 5), (24, 20), (28, 7), (32, 40)],
    dst_len: &[(0, 3), (16, 4), (24, 20), (26, 5), (28, 8), (30, 5), (32, 55)],
    sport: &[(PortClass::Wildcard, 90), (PortClass::High, 5), (PortClass::Exact, 5)],
    dport: &[
        (PortClass::Wildcard, 15),
        (PortClass::High, 10),
        (PortClass::Low, 2),
        (PortClass::Range, 8),
        (PortClass::Exact, 65),
    ],
};

const FW: Params = Params {
    proto: &[(Proto::Tcp, 45), (Proto::Udp, 25), (Proto::Icmp, 5), (Proto::Any, 25)],
    src_len: &[(0, 45), (8, 5), (16, 10), (24, 15), (32, 25)],
    dst_len: &[(0, 30), (16, 5), (24, 20), (28, 5), (32, 40)],
    sport: &[(PortClass::Wildcard, 70), (PortClass::High, 15), (PortClass::Range, 5), (PortClass::Exact, 10)],
    dport: &[
        (PortClass::Wildcard, 40),
        (PortClass::High, 15),
        (PortClass::Low, 3),
        (PortClass::Range, 12),
        (PortClass::Exact, 30),
    ],
};

const IPC: Params = Params {
    proto: &[(Proto::Tcp, 45), (Proto::Udp, 30), (Proto::Icmp, 10), (Proto::Any, 15)],
    src_len: &[(0, 20), (8, 5), (16, 10), (24, 25), (32, 40)],
    dst_len: &[(0, 10), (16, 10), (24, 30), (28, 5), (32, 45)],
    sport: &[(PortClass::Wildcard, 80), (PortClass::High, 5), (PortClass::Range, 5), (PortClass::Exact, 10)],
    dport: &[(PortClass::Wildcard, 30), (PortClass::High, 10), (PortClass::Range, 10), (PortClass::Exact, 50)],
};

/// Routing-table-like lengths for block lists.
const BLOCK_LEN: &[(u32, u32)] = &[(8, 1), (12, 2), (16, 8), (18, 4), (20, 10), (22, 15), (24, 50), (32, 10)];

/// Well-known destination ports, most common first (weights fall off).
const WELL_KNOWN: &[u16] =
    &[80, 443, 53, 25, 22, 21, 23, 110, 143, 123, 161, 389, 445, 993, 995, 1433, 3306, 3389, 5060, 8080];

/// Candidates tried for each trace packet meant to match no rule.
const NO_MATCH_TRIES: usize = 32;

/// Sites (the /16s addresses come from); a small pool makes prefixes nest.
const SITES: u64 = 97;

/// Generates a rule set of `rules` rules of `shape` with about `packets` trace packets.
pub fn generate(shape: Shape, rules: usize, packets: usize, seed: u64) -> Generated {
    let mut rng = Rng(seed ^ (rules as u64).rotate_left(17) ^ shape as u64);
    let sites: Vec<u32> = (0..SITES).map(|_| site(&mut rng)).collect();
    let tuples: Vec<Tuple> = (0..rules).map(|index| tuple(&mut rng, shape, &sites, index)).collect();
    let mut text = String::with_capacity(rules * 80);
    let _ = writeln!(
        text,
        "# ClassBench-shaped {} set: {rules} rules, seed {seed:#x}\nhook xdp\ndefault pass",
        shape.name()
    );
    for (index, rule) in tuples.iter().enumerate() {
        let _ = writeln!(text, "rule r{index}: {}", rule_text(rule));
    }
    let (program, _) = crate::frontend::check_source(&text);
    let mut trace = Vec::with_capacity(packets);
    if let (Some(program), false) = (program, tuples.is_empty()) {
        for index in 0..packets {
            if index % 5 == 4 {
                // A few tries for a packet no rule matches (a /0 rule may catch one).
                let v6 = shape == Shape::Mixed && index % 2 == 1;
                let mut bytes = no_match_candidate(&mut rng, v6);
                let mut rule = crate::eval::evaluate(&program, &bytes).rule;
                for _ in 0..NO_MATCH_TRIES {
                    if rule.is_none() {
                        break;
                    }
                    bytes = no_match_candidate(&mut rng, v6);
                    rule = crate::eval::evaluate(&program, &bytes).rule;
                }
                trace.push(TracePacket { bytes, rule });
            } else {
                let target = tuples[rng.below(tuples.len() as u64) as usize];
                let bytes = packet_in(&mut rng, &target);
                let rule = crate::eval::evaluate(&program, &bytes).rule;
                trace.push(TracePacket { bytes, rule });
            }
        }
    }
    Generated { text, trace }
}

/// A /16 for a site: first octet 11..=197, so no site lies in 198.18.0.0/15.
fn site(rng: &mut Rng) -> u32 {
    let first = 11 + rng.below(187) as u32;
    (first << 24) | ((rng.below(256) as u32) << 16)
}

fn tuple(rng: &mut Rng, shape: Shape, sites: &[u32], index: usize) -> Tuple {
    let params = match shape {
        Shape::Acl | Shape::Mixed | Shape::Block => &ACL,
        Shape::Fw => &FW,
        Shape::Ipc => &IPC,
    };
    let v6 = shape == Shape::Mixed && index % 2 == 1;
    let drop = rng.below(100) < 65;
    if shape == Shape::Block {
        let len = rng.weighted(BLOCK_LEN);
        let src = prefix(rng, sites, len, false);
        let any = Prefix { bits: 0, len: 0, v6: false };
        return Tuple { src, dst: any, proto: Proto::Any, sport: (0, 65535), dport: (0, 65535), drop: true };
    }
    loop {
        let proto = rng.weighted(params.proto);
        let (src_len, dst_len) = (rng.weighted(params.src_len), rng.weighted(params.dst_len));
        let src = prefix(rng, sites, src_len, v6);
        let dst = prefix(rng, sites, dst_len, v6);
        let (sport, dport) = match proto {
            Proto::Tcp | Proto::Udp => (ports(rng, params.sport), ports(rng, params.dport)),
            Proto::Icmp | Proto::Any => ((0, 65535), (0, 65535)),
        };
        // A rule that tests only the protocol would match every packet of it.
        let protocol_only = src.len == 0 && dst.len == 0 && sport == (0, 65535) && dport == (0, 65535);
        if !protocol_only {
            return Tuple { src, dst, proto, sport, dport, drop };
        }
    }
}

/// A prefix of IPv4 length `len` (IPv6: mapped to `len + 32`, /32 to /128) from a site.
fn prefix(rng: &mut Rng, sites: &[u32], len: u32, v6: bool) -> Prefix {
    if len == 0 {
        return Prefix { bits: 0, len: 0, v6 };
    }
    let site = sites[rng.below(sites.len() as u64) as usize];
    let host = rng.next() as u32 & 0xffff;
    let address = if len < 16 { site } else { site | host };
    let bits4 = address & (u32::MAX << (32 - len));
    if !v6 {
        return Prefix { bits: u128::from(bits4), len, v6 };
    }
    let len6 = if len == 32 { 128 } else { len + 32 };
    // 2a00::/12 keeps IPv6 rules out of 2001:db8::/32; the IPv4 bits follow the site.
    let high = (0x2a0u128 << 116) | (u128::from(bits4) << 84) | (u128::from(rng.next()) << 20);
    let mask = if len6 == 128 { u128::MAX } else { !(u128::MAX >> len6) };
    Prefix { bits: high & mask, len: len6, v6 }
}

fn ports(rng: &mut Rng, table: &[(PortClass, u32)]) -> (u16, u16) {
    match rng.weighted(table) {
        PortClass::Wildcard => (0, 65535),
        PortClass::Low => (0, 1023),
        PortClass::High => (1024, 65535),
        PortClass::Range => {
            let low = 1024 + rng.below(60_000) as u16;
            (low, low.saturating_add(1 + rng.below(2_000) as u16))
        }
        PortClass::Exact => {
            // Skewed: the first ports of the list are the most common.
            let index = (rng.below(WELL_KNOWN.len() as u64) * rng.below(WELL_KNOWN.len() as u64)) as usize;
            let port = WELL_KNOWN[index / WELL_KNOWN.len()];
            (port, port)
        }
    }
}

fn prefix_text(prefix: &Prefix) -> String {
    if prefix.v6 {
        format!("{}/{}", Ipv6Addr::from(prefix.bits), prefix.len)
    } else {
        format!("{}/{}", Ipv4Addr::from(prefix.bits as u32), prefix.len)
    }
}

fn port_text(field: &str, (low, high): (u16, u16)) -> Option<String> {
    match (low, high) {
        (0, 65535) => None,
        (low, high) if low == high => Some(format!("{field} == {low}")),
        (low, high) => Some(format!("{field} in {low}..{high}")),
    }
}

/// `drop if ip.src in P and ip.dst in Q and tcp.dport == 80 ...`.
fn rule_text(rule: &Tuple) -> String {
    let mut atoms: Vec<String> = Vec::new();
    let transport = match rule.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp if rule.src.v6 => "icmp6",
        Proto::Icmp => "icmp",
        Proto::Any => "",
    };
    if rule.src.len == 0 && rule.dst.len == 0 && !transport.is_empty() && rule.src.v6 {
        atoms.push("ipv6".to_string());
    }
    for (field, prefix) in [("ip.src", &rule.src), ("ip.dst", &rule.dst)] {
        if prefix.len > 0 {
            atoms.push(format!("{field} in {}", prefix_text(prefix)));
        }
    }
    let sport = port_text(&format!("{transport}.sport"), rule.sport);
    let dport = port_text(&format!("{transport}.dport"), rule.dport);
    let port_atoms: Vec<String> = sport.into_iter().chain(dport).collect();
    if port_atoms.is_empty() && !transport.is_empty() {
        atoms.push(transport.to_string());
    }
    atoms.extend(port_atoms);
    format!("{} if {}", if rule.drop { "drop" } else { "pass" }, atoms.join(" and "))
}

/// A random point of a prefix (a /0 gets an address outside the no-match space).
fn address_in(rng: &mut Rng, prefix: &Prefix) -> u128 {
    let random = if prefix.v6 {
        (0x2a0u128 << 116) | (u128::from(rng.next()) << 64) | u128::from(rng.next())
    } else {
        u128::from((11 + rng.below(187) as u32) << 24 | (rng.next() as u32 & 0xff_ffff))
    };
    let host_mask = if prefix.len == 0 {
        u128::MAX
    } else if prefix.v6 {
        u128::MAX.checked_shr(prefix.len).unwrap_or(0)
    } else {
        u128::from(u32::MAX.checked_shr(prefix.len).unwrap_or(0))
    };
    (prefix.bits & !host_mask) | (random & host_mask)
}

fn port_in(rng: &mut Rng, (low, high): (u16, u16)) -> u16 {
    low + rng.below(u64::from(high - low) + 1) as u16
}

/// A packet inside a rule's space.
fn packet_in(rng: &mut Rng, rule: &Tuple) -> Vec<u8> {
    let (src, dst) = (address_in(rng, &rule.src), address_in(rng, &rule.dst));
    let (sport, dport) = (port_in(rng, rule.sport), port_in(rng, rule.dport));
    let base = if rule.src.v6 {
        Packet::eth().ipv6(Ipv6Addr::from(src), Ipv6Addr::from(dst))
    } else {
        Packet::eth().ipv4(Ipv4Addr::from(src as u32), Ipv4Addr::from(dst as u32))
    };
    let packet = match (rule.proto, rule.src.v6) {
        (Proto::Tcp | Proto::Any, _) => base.tcp(sport, dport),
        (Proto::Udp, _) => base.udp(sport, dport),
        (Proto::Icmp, false) => base.icmp(8, 0),
        (Proto::Icmp, true) => base.icmp6(128, 0),
    };
    packet.build()
}

/// A packet from 198.18.0.0/15 (or 2001:db8::/32) to the same space, TCP or UDP to an
/// unassigned high port: only /0 rules can match it, and the interpreter says whether one does.
fn no_match_candidate(rng: &mut Rng, v6: bool) -> Vec<u8> {
    let base = if v6 {
        let src = (0x2001_0db8u128 << 96) | u128::from(rng.next());
        let dst = (0x2001_0db8u128 << 96) | u128::from(rng.next());
        Packet::eth().ipv6(Ipv6Addr::from(src), Ipv6Addr::from(dst))
    } else {
        let src = 0xc612_0000 | (rng.next() as u32 & 0x1_ffff);
        let dst = 0xc612_0000 | (rng.next() as u32 & 0x1_ffff);
        Packet::eth().ipv4(Ipv4Addr::from(src), Ipv4Addr::from(dst))
    };
    let (sport, dport) = (1 + rng.below(65_000) as u16, 1 + rng.below(65_000) as u16);
    if rng.below(2) == 0 { base.tcp(sport, dport) } else { base.udp(sport, dport) }.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_checks_and_its_trace_has_hits_and_misses() {
        for shape in Shape::ALL {
            let generated = generate(shape, 300, 200, 7);
            let (program, diagnostics) = crate::frontend::check_source(&generated.text);
            assert!(program.is_some(), "{}: {diagnostics:?}", shape.name());
            let hits = generated.trace.iter().filter(|packet| packet.rule.is_some()).count();
            assert!(hits >= 120, "{}: {hits} hits of 200", shape.name());
            assert!(hits <= 195, "{}: only {} packets miss every rule", shape.name(), 200 - hits);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_set() {
        let (a, b) = (generate(Shape::Fw, 50, 10, 3), generate(Shape::Fw, 50, 10, 3));
        assert_eq!(a.text, b.text);
        assert_eq!(
            a.trace.iter().map(|p| &p.bytes).collect::<Vec<_>>(),
            b.trace.iter().map(|p| &p.bytes).collect::<Vec<_>>()
        );
        assert_ne!(a.text, generate(Shape::Fw, 50, 10, 4).text);
    }

    #[test]
    fn mixed_sets_alternate_families() {
        let text = generate(Shape::Mixed, 10, 0, 1).text;
        let v6_rules = text.lines().filter(|line| line.starts_with("rule") && line.contains("2a")).count();
        assert!(v6_rules >= 3, "{text}");
    }
}
