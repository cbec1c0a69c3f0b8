//! Static sets into maps: a [`Filter`] and a chosen set test in, the same filter with that
//! set held in a kernel map out — every `Node::InSet` on it becomes a `Node::InDynamic`
//! on a new, *fixed* [`DynamicSet`] whose elements are the set's intervals cut into map
//! entries (prefixes for addresses, single values otherwise).
//!
//! Why: a set test compiles into a balanced tree of compares, 1.5 to 2.6 instructions
//! per interval (single addresses cheapest, ranges and IPv6 dearest), and a tree that
//! takes more than 32,767 instruction slots cannot be jumped over (eBPF's 16-bit jump
//! offsets; E0020): a lone IPv4 set stops fitting between about 12,500 and 21,800
//! intervals, depending on its shape. A kernel map holds any size at one lookup per
//! packet, but the tree is faster while it fits (measured: 2–11 ns above the empty
//! program for 1k–12k IPv4 prefixes against 64–84 ns for an LPM trie; 1–5 ns against
//! 13–24 ns for a hash of u32 values; docs/performance.md). So the driver (`compile`)
//! keeps trees as long as the program fits: a set of more than [`MAP_ABOVE`] intervals
//! (which no tree can fit) is a map from the start; after that, while the program breaks
//! a kernel limit, the largest set of at least [`FALLBACK_FROM`] intervals becomes a map
//! and the program is generated again.
//!
//! The interpreter and the analyses keep reading the static set in the
//! [`Program`](crate::program::Program): a set is its contents, whichever way the code
//! looks it up. Only the code generator sees the map.

use super::{Filter, Node, NodeId, SetRef};
use crate::fields::ValueKind;
use crate::program::dynamic::Family;
use crate::program::{DynamicElement, DynamicKind, DynamicSet};

/// A set test over more intervals than this is a map from the start: its tree needs at
/// least one instruction per interval, so it cannot fit a 16-bit jump.
pub const MAP_ABOVE: usize = 32_767;
/// When a program breaks a kernel limit, sets of at least this many intervals become
/// maps, largest first, until it fits; smaller trees are too small to be the problem.
pub const FALLBACK_FROM: usize = 1_024;
/// The most entries a map made from a static set may have (the largest dynamic set).
pub const MAX_ENTRIES: usize = crate::check::MAX_DYNAMIC_SIZE as usize;

/// A set test that could be a map: one set as read by fields of one value family (an
/// IPv4 set tested on `ipv4.src` and `ipv4.dst` is one candidate, one map).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The set.
    pub set: SetRef,
    /// The value kind of the fields that test it.
    pub kind: ValueKind,
    /// Its intervals (what a tree compares against).
    pub intervals: usize,
    /// The map entries it takes: prefixes for addresses, values otherwise.
    pub entries: usize,
}

impl Candidate {
    /// Trie of prefixes (addresses) or hash of values.
    pub fn map_kind(&self) -> DynamicKind {
        match self.kind {
            ValueKind::Ipv4 | ValueKind::Ipv6 => DynamicKind::Prefixes,
            ValueKind::Mac | ValueKind::Uint(_) => DynamicKind::Values,
        }
    }
}

/// Every set test reachable from a rule that a map could hold (at most [`MAX_ENTRIES`]
/// entries), once per set and value kind, in the order first met.
pub fn candidates(filter: &Filter) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = Vec::new();
    // Each set and kind is looked at once (a set too large for a map stays too large).
    let mut seen: crate::hashing::FastMap<(SetRef, ValueKind), ()> = Default::default();
    for id in reachable(filter) {
        let Node::InSet { field, set, .. } = filter.node(id) else { continue };
        let kind = family_kind(field.kind());
        if seen.insert((*set, kind), ()).is_some() {
            continue;
        }
        let intervals = &filter.set(*set).intervals;
        let Some(entries) = entry_count(kind, intervals) else { continue };
        found.push(Candidate { set: *set, kind, intervals: intervals.len(), entries });
    }
    found
}

/// Puts `candidate`'s set in a map named `name` in listings and the manifest: a fixed
/// dynamic set, which every test of the set by a field of its kind now looks up.
/// Returns the dynamic set's index.
pub fn into_map(filter: &mut Filter, candidate: &Candidate, name: &str) -> u32 {
    let intervals = filter.set(candidate.set).intervals.clone();
    let elements = entries(candidate.kind, &intervals);
    let index = filter.dynamic_sets.len() as u32;
    filter.dynamic_sets.push(DynamicSet {
        name: name.to_string(),
        element_type: kind_name(candidate.kind),
        kind: candidate.map_kind(),
        families: vec![Family::of(candidate.kind)],
        max_elements: elements.len() as u32,
        elements,
        span: Default::default(),
        fixed: true,
        unread_file: None,
    });
    for position in 0..filter.nodes.len() {
        let Node::InSet { field, mask, set } = filter.nodes[position] else { continue };
        if set != candidate.set || family_kind(field.kind()) != candidate.kind {
            continue;
        }
        let old = std::mem::replace(&mut filter.nodes[position], Node::InDynamic { field, mask, set: index });
        filter.interned.remove(&old);
        filter.interned.insert(filter.nodes[position].clone(), NodeId(position as u32));
    }
    index
}

/// Nodes reachable from some rule's condition, in a deterministic order.
fn reachable(filter: &Filter) -> Vec<NodeId> {
    let mut seen = vec![false; filter.nodes.len()];
    let mut order = Vec::new();
    let mut stack: Vec<NodeId> = filter.rules.iter().rev().map(|rule| rule.condition).collect();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut seen[id.0 as usize], true) {
            continue;
        }
        order.push(id);
        match filter.node(id) {
            Node::Not(inner) => stack.push(*inner),
            Node::All(items) | Node::Any(items) => stack.extend(items.iter().rev().copied()),
            _ => {}
        }
    }
    order
}

/// Number fields of every width share one family of keys (a little-endian u128).
fn family_kind(kind: ValueKind) -> ValueKind {
    match kind {
        ValueKind::Uint(_) => ValueKind::Uint(128),
        other => other,
    }
}

/// The element type a fixed set's manifest entry names.
fn kind_name(kind: ValueKind) -> String {
    match Family::of(kind) {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
        Family::Mac => "mac",
        Family::Number => "number",
    }
    .to_string()
}

/// How many map entries the intervals take, or `None` past [`MAX_ENTRIES`].
fn entry_count(kind: ValueKind, intervals: &[(u128, u128)]) -> Option<usize> {
    let mut count = 0usize;
    for &(low, high) in intervals {
        count = count.checked_add(match kind {
            ValueKind::Ipv4 | ValueKind::Ipv6 => prefixes(kind.bits(), low, high).count(),
            _ => usize::try_from(high - low).ok()?.checked_add(1)?,
        })?;
        if count > MAX_ENTRIES {
            return None;
        }
    }
    Some(count)
}

/// The map entries of the intervals: the fewest aligned prefixes covering each
/// interval (addresses), or each value.
fn entries(kind: ValueKind, intervals: &[(u128, u128)]) -> Vec<DynamicElement> {
    let mut elements = Vec::new();
    for &(low, high) in intervals {
        match kind {
            ValueKind::Ipv4 | ValueKind::Ipv6 => {
                elements.extend(prefixes(kind.bits(), low, high).map(|(low, high)| DynamicElement { kind, low, high }))
            }
            _ => elements.extend((low..=high).map(|value| DynamicElement { kind, low: value, high: value })),
        }
    }
    elements
}

/// The fewest aligned prefixes (as `(low, high)`) that cover `low..=high` in a space of
/// `bits`-bit values: each the largest block aligned at its start that stays inside.
fn prefixes(bits: u32, low: u128, high: u128) -> impl Iterator<Item = (u128, u128)> {
    let mut next = Some(low);
    std::iter::from_fn(move || {
        let start = next.filter(|start| *start <= high)?;
        let mut host = start.trailing_zeros().min(bits);
        // The largest block aligned at `start` that ends at or before `high`.
        let end = loop {
            let span = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
            match start.checked_add(span) {
                Some(end) if end <= high => break end,
                _ => host -= 1,
            }
        };
        next = end.checked_add(1);
        Some((start, end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cover(bits: u32, low: u128, high: u128) -> Vec<(u128, u128)> {
        prefixes(bits, low, high).collect()
    }

    /// Each interval is cut into the fewest aligned prefixes, exactly covering it.
    #[test]
    fn intervals_become_the_fewest_prefixes() {
        assert_eq!(cover(32, 0x0a00_0000, 0x0aff_ffff), [(0x0a00_0000, 0x0aff_ffff)]);
        assert_eq!(cover(32, 0, u32::MAX.into()), [(0, u32::MAX.into())]);
        assert_eq!(cover(128, 0, u128::MAX), [(0, u128::MAX)]);
        assert_eq!(cover(128, u128::MAX, u128::MAX), [(u128::MAX, u128::MAX)]);
        // 10.0.0.1..10.0.0.9: /32, /31, /30, /31... as the fewest blocks.
        let base = 0x0a00_0000;
        assert_eq!(
            cover(32, base + 1, base + 9),
            [(base + 1, base + 1), (base + 2, base + 3), (base + 4, base + 7), (base + 8, base + 9)]
        );
        for (low, high) in [(3u128, 1000u128), (0, 0), (77, 78), (255, 256)] {
            let blocks = cover(32, low, high);
            assert_eq!(blocks[0].0, low);
            assert_eq!(blocks[blocks.len() - 1].1, high);
            for pair in blocks.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0);
            }
            for (start, end) in blocks {
                let size = end - start + 1;
                assert!(size.is_power_of_two() && start % size == 0, "{start}..{end}");
            }
        }
    }

    /// A set tested on two fields of one kind is one candidate and one map; a number set
    /// whose values are too many for a map is none.
    #[test]
    fn candidates_are_sets_per_kind_and_become_fixed_maps() {
        let text = "default pass\nset big: ipv4 = { 10.0.0.0/8, 192.0.2.1..192.0.2.9 }\n\
                    rule a: drop if ipv4.src in big\nrule b: drop if ipv4.dst in big\n\
                    rule c: drop if tcp.seq in { 1..4000000000 }\nrule d: drop if tcp.dport in { 1..9 }\n";
        let (program, diagnostics) = crate::frontend::check_source(text);
        let program = program.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let mut filter = super::super::build(&program);
        let found = candidates(&filter);
        let kinds: Vec<(ValueKind, usize, usize)> = found.iter().map(|c| (c.kind, c.intervals, c.entries)).collect();
        assert_eq!(kinds, [(ValueKind::Ipv4, 2, 5), (ValueKind::Uint(128), 1, 9)]);
        let index = into_map(&mut filter, &found[0], "big");
        let set = &filter.dynamic_sets[index as usize];
        assert!(set.fixed && set.kind == DynamicKind::Prefixes && set.max_elements == 5);
        let lookups = filter.nodes.iter().filter(|node| matches!(node, Node::InDynamic { .. })).count();
        assert_eq!(lookups, 2, "both fields look the map up");
        assert_eq!(candidates(&filter).len(), 1, "only the port set is left");
        for (position, node) in filter.nodes.iter().enumerate() {
            assert_eq!(filter.interned.get(node), Some(&NodeId(position as u32)), "{node:?} is interned");
        }
    }
}
