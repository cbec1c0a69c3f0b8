//! The rule classifier: the filter's rules in, a plan out — one or a few decision
//! diagrams over the packet fields the rules test, whose leaves list the few rules a
//! packet reaching them can match, in rule order.
//!
//! Each rule contributes what its top-level conjunction *requires*: a header present
//! (`Present` guards) and, per field, the intervals the field's first 32-bit word must lie
//! in (from `==`, `<`, `in SET`, `in PREFIX` without a mask; a 128-bit interval projects
//! onto the top word). Those are necessary conditions read from the same stack words the
//! rule's own code reads, so a packet is sent only to leaves that hold every rule it can
//! match; a leaf then tests each candidate's *full* condition, in order. Everything that
//! does not partition (`not`, `or`, masks, pcap atoms, `!=`) stays a residual test there:
//! the diagram only prunes candidates, it never decides a match. A candidate whose
//! residual tests imply an earlier candidate's (a repeated rule, a prefix inside an
//! earlier one's) can never be the first match there and is dropped.
//!
//! A node splits on the field (or header presence) that leaves the smallest largest child,
//! cutting the field's value range at the rules' interval boundaries (at most
//! [`MAX_PIECES`] pieces, searched in a few compares per 8-fold cut). Identical candidate lists share one
//! subtree, so the plan is a DAG. Rules that do not constrain the split field are copied
//! into every child; to keep that replication bounded (as EffiCuts does), rules are first
//! separated into up to [`MAX_GROUPS`] groups by whether they constrain the most
//! discriminating field class (`src`, `dst`, `dport`, …: IPv4 and IPv6 alike), a diagram
//! per group; groups are combined by priority (the lowest matching rule index wins).
//! A set of 1,000 rules or more reads its rules' requirements on one thread per core.
//! (Building the diagrams on threads of their own gains nothing: in ClassBench sets the
//! first diagram is ~98 % of the work.)
//! A rule set with rate limits gets one diagram: leaves test candidates in rule order and
//! stop at the first match, so a limit (the last test of its rule) runs only when no
//! earlier rule matched and the rest of its own rule held, exactly as in the interpreter.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use super::layout::{absent_is_out_of_range, Layout};
use crate::fields::{Field, Proto, ValueKind};
use crate::hashing::FastMap;
use crate::ir::{Filter, Node, NodeId, Source};
use crate::program::CmpOp;

/// A leaf this small is not split further.
const LEAF_RULES: usize = 4;
/// Most pieces one field split cuts the value range into (keeps a node's code short).
pub const MAX_PIECES: usize = 2_048;
/// Most rule copies a split may create, per rule of the node.
const MAX_REPLICATION: usize = 6;
/// Deepest diagram.
const MAX_DEPTH: usize = 32;
/// Most groups (each costs one diagram walk per packet).
pub const MAX_GROUPS: usize = 4;
/// A group is split off only when it and the rest have at least this many rules.
const MIN_GROUP: usize = 16;
/// ... and the rest is at least this share (percent) of the rules.
const MIN_REST_PERCENT: usize = 1;
/// Rule sets smaller than this are left to the other forms.
pub(crate) const MIN_RULES: usize = 16;
/// ... and so are sets this large: several diagrams keep the best match's rule index in
/// 24 bits of a register (`classify.rs`).
const MAX_RULES: usize = 1 << 24;
/// Sources a node may split on.
const SPLIT_SOURCES: [Source; 7] = [
    Source::Header(Proto::Ipv4),
    Source::Header(Proto::Ipv6),
    Source::Header(Proto::Tcp),
    Source::Header(Proto::Udp),
    Source::Header(Proto::Icmp),
    Source::Header(Proto::Icmp6),
    Source::Header(Proto::Sctp),
];

/// Index of a node in [`Diagram::nodes`].
pub(crate) type NodeIndex = usize;

/// A node of a diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeNode {
    /// Try these rules in order, each with the conjuncts of its condition the paths to
    /// the leaf have not proven (none: the rule matches).
    Leaf(Vec<(usize, Vec<NodeId>)>),
    /// Branch on the first word of `field`: sorted pieces covering `0..=u32::MAX`, each
    /// with the child (index into `children`) for values in it.
    Field {
        /// The field whose first word is read.
        field: Field,
        /// `(low, high, child)`.
        pieces: Vec<(u32, u32, usize)>,
        /// The children.
        children: Vec<NodeIndex>,
    },
    /// Branch on whether a header is present.
    Source {
        /// The header.
        source: Source,
        /// Child for packets that have it.
        present: NodeIndex,
        /// Child for packets that lack it.
        absent: NodeIndex,
    },
}

/// One decision diagram: children always have smaller indices than their parents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagram {
    /// Every node.
    pub nodes: Vec<TreeNode>,
    /// The root (the last node).
    pub root: NodeIndex,
}

/// The classifier: diagrams combined by rule priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classifier {
    /// One diagram per group of rules.
    pub diagrams: Vec<Diagram>,
}

/// What a rule's top-level conjunction requires.
#[derive(Clone, Debug, Default)]
struct Needs {
    /// Bits ([`Source::bit`]) of sources that must be present.
    sources: u32,
    /// Bits of the sources whose presence this rule does not rule out: a split on one
    /// of them puts the rule in its `present` child.
    present_in: u32,
    /// Per field: sorted, disjoint intervals of its first word.
    fields: Vec<(Field, Vec<(u32, u32)>)>,
    /// The conjuncts (at most [`MAX_ITEMS`]; a longer conjunction is one item) and what
    /// proves each.
    items: Vec<(NodeId, Proof)>,
}

impl Needs {
    fn intervals(&self, field: Field) -> Option<&[(u32, u32)]> {
        self.fields.iter().find(|(f, _)| *f == field).map(|(_, intervals)| intervals.as_slice())
    }

    /// The bits of [`Candidate::proven`] when every item is proven.
    fn all_proven(&self) -> u64 {
        match self.items.len() {
            0 => 0,
            count => u64::MAX >> (64 - count),
        }
    }
}

/// Most conjuncts tracked one by one.
const MAX_ITEMS: usize = 64;

/// What proves one conjunct on a path through a diagram.
#[derive(Clone, Debug)]
enum Proof {
    /// Nothing: a leaf tests it.
    Never,
    /// The header is present (a `Source` node's present branch).
    Source(Source),
    /// The field's first word lies in one of these intervals (a `Field` node's piece
    /// inside one): exact, since the field is one word or the intervals are whole
    /// top-word ranges.
    Field(Field, Vec<(u32, u32)>),
}

/// A rule in a node, with the bits of its conjuncts (`Needs::items`) the path to the
/// node has proven.
pub type Candidate = (usize, u64);

/// Plans a classifier, or `None` when the rule set is too small to gain from one.
pub fn plan(filter: &Filter, layout: &Layout) -> Option<Classifier> {
    if filter.rules.len() < MIN_RULES || filter.rules.len() >= MAX_RULES {
        return None;
    }
    // At most 8 runs, as the parser's (`syntax::parse_chunks`): ~10 ms of work at 10k rules.
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get()).min(8);
    let needs_of = |rules: &[crate::ir::FilterRule]| -> Vec<Needs> {
        rules.iter().map(|rule| rule_needs(filter, layout, rule.condition)).collect()
    };
    let needs: Vec<Needs> = if cores > 1 && filter.rules.len() >= PARALLEL_FROM {
        // Each rule's needs are its own: one run of rules per core, joined in order.
        let chunk = filter.rules.len().div_ceil(cores);
        std::thread::scope(|scope| {
            let mut runs = filter.rules.chunks(chunk);
            let first = runs.next().unwrap_or_default();
            let others: Vec<_> = runs.map(|run| scope.spawn(move || needs_of(run))).collect();
            let mut needs = needs_of(first);
            for other in others {
                needs.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            needs
        })
    } else {
        needs_of(&filter.rules)
    };
    let live: Vec<usize> = (0..filter.rules.len())
        .filter(|&index| !matches!(filter.node(filter.rules[index].condition), Node::Const(false)))
        .collect();
    let always: Vec<bool> =
        filter.rules.iter().map(|rule| matches!(filter.node(rule.condition), Node::Const(true))).collect();
    let mut tests: Vec<Tested> = Vec::with_capacity(needs.iter().map(|needs| needs.items.len()).sum());
    let mut starts = Vec::with_capacity(needs.len() + 1);
    for rule_needs in &needs {
        starts.push(tests.len());
        tests.extend(rule_needs.items.iter().map(|&(id, _)| tested(filter, id)));
    }
    starts.push(tests.len());
    let keys: Vec<u64> = tests.iter().map(Tested::key).collect();
    let mut builder = Builder {
        needs: &needs,
        tests: &tests,
        keys: &keys,
        starts: &starts,
        always: &always,
        scratch: Vec::new(),
        fields: Vec::new(),
        events: Vec::new(),
        pieces: Vec::new(),
    };
    // With rate limits, one diagram: several would test a later rule's full condition (and
    // take its token) before an earlier rule in another diagram had its turn.
    let groups = if filter.limits.is_empty() { merge_small(&mut builder, groups(&needs, live)) } else { vec![live] };
    Some(Classifier { diagrams: groups.into_iter().map(|group| builder.diagram(group)).collect() })
}

/// Rule sets of at least this many rules have their requirements read on several threads.
const PARALLEL_FROM: usize = 1_000;

/// The requirements of one rule.
fn rule_needs(filter: &Filter, layout: &Layout, condition: NodeId) -> Needs {
    let items: &[NodeId] = match filter.node(condition) {
        Node::All(items) if items.len() <= MAX_ITEMS => items,
        _ => std::slice::from_ref(&condition),
    };
    let mut needs = Needs { items: Vec::with_capacity(items.len()), ..Needs::default() };
    for &item in items {
        let one: [(u128, u128); 1];
        let (field, intervals): (Field, &[(u128, u128)]) = match filter.node(item) {
            Node::Present(source) => {
                needs.sources |= source.bit();
                for implied in source.implied() {
                    needs.sources |= implied.bit();
                }
                needs.items.push((item, Proof::Source(*source)));
                continue;
            }
            Node::Compare { field, mask: None, op, value } => {
                let interval = match op {
                    CmpOp::Eq => (*value, *value),
                    CmpOp::Lt if *value == 0 => (1, 0),
                    CmpOp::Lt => (0, value - 1),
                    CmpOp::Le => (0, *value),
                    CmpOp::Gt => (value.saturating_add(1), u128::MAX),
                    CmpOp::Ge => (*value, u128::MAX),
                    CmpOp::Ne => {
                        needs.items.push((item, Proof::Never));
                        continue;
                    }
                };
                one = [interval];
                (*field, &one)
            }
            Node::InSet { field, mask: None, set } => (*field, &filter.set(*set).intervals),
            _ => {
                needs.items.push((item, Proof::Never));
                continue;
            }
        };
        let words = layout.words(field).len();
        let intervals = || intervals.iter().filter(|(low, high)| low <= high);
        if words == 0 || intervals().next().is_none() {
            needs.items.push((item, Proof::Never));
            continue;
        }
        let shift = 32 * (words as u32 - 1);
        let rest = if shift == 0 { 0 } else { u128::MAX >> (128 - shift) };
        // Exact when every interval is a whole range of top words.
        let exact = intervals().all(|&(low, high)| low & rest == 0 && (high & rest == rest || high == u128::MAX));
        let projected = merge(
            intervals()
                .filter(|(low, _)| (low >> shift) <= u128::from(u32::MAX))
                .map(|&(low, high)| ((low >> shift) as u32, (high >> shift).min(u128::from(u32::MAX)) as u32))
                .collect(),
        );
        let known = needs.intervals(field).is_some();
        match (exact, known) {
            (true, true) => needs.items.push((item, Proof::Field(field, projected))),
            (true, false) => {
                needs.items.push((item, Proof::Field(field, projected.clone())));
                needs.fields.push((field, projected));
            }
            (false, known) => {
                needs.items.push((item, Proof::Never));
                if !known {
                    needs.fields.push((field, projected));
                }
            }
        }
    }
    for source in Source::ALL {
        if Source::ALL.iter().all(|other| needs.sources & other.bit() == 0 || !other.excludes(source)) {
            needs.present_in |= source.bit();
        }
    }
    needs
}

/// Sorts and merges overlapping or adjacent intervals.
fn merge(mut intervals: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    intervals.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(intervals.len());
    for (low, high) in intervals {
        match merged.last_mut() {
            Some(last) if u64::from(low) <= u64::from(last.1) + 1 => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

/// The class of a field for grouping: what it means across protocols (`src`, `dport`).
fn field_class(field: Field) -> &'static str {
    let name = field.name();
    name.rsplit('.').next().unwrap_or(name)
}

/// Whether the intervals cover less than half of the field's first word.
fn is_narrow(field: Field, intervals: &[(u32, u32)]) -> bool {
    let bits = match field.kind() {
        ValueKind::Uint(bits) => bits.min(32),
        ValueKind::Mac => 16,
        ValueKind::Ipv4 | ValueKind::Ipv6 => 32,
    };
    let width: u64 = intervals.iter().map(|&(low, high)| u64::from(high) - u64::from(low) + 1).sum();
    width < (1u64 << bits) / 2
}

/// Separates rules that constrain the most discriminating field classes from those that
/// leave them wild, so no diagram copies many wildcard rules into every piece.
fn groups(needs: &[Needs], rules: Vec<usize>) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    let mut rest = rules;
    let mut used: Vec<&'static str> = Vec::new();
    while groups.len() + 1 < MAX_GROUPS {
        let narrow_in = |index: usize, class: &str| {
            needs[index]
                .fields
                .iter()
                .any(|(field, intervals)| field_class(*field) == class && is_narrow(*field, intervals))
        };
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for &index in &rest {
            let classes: BTreeSet<&'static str> = needs[index]
                .fields
                .iter()
                .filter(|(field, intervals)| is_narrow(*field, intervals))
                .map(|(field, _)| field_class(*field))
                .filter(|class| !used.contains(class))
                .collect();
            for class in classes {
                *counts.entry(class).or_insert(0) += 1;
            }
        }
        let Some((class, _)) = counts.into_iter().max_by_key(|&(class, count)| (count, std::cmp::Reverse(class)))
        else {
            break;
        };
        let (narrow, wide): (Vec<usize>, Vec<usize>) = rest.iter().partition(|&&index| narrow_in(index, class));
        used.push(class);
        if wide.len() * 100 < rest.len() * MIN_REST_PERCENT || wide.len() < MIN_GROUP || narrow.len() < MIN_GROUP {
            if wide.len() * 100 < rest.len() * MIN_REST_PERCENT {
                break;
            }
            continue;
        }
        groups.push(narrow);
        rest = wide;
    }
    groups.push(rest);
    groups
}

/// Groups together at most this share (percent) of the rules may merge ([`merge_small`]).
const SMALL_GROUPS_PERCENT: usize = 5;

/// Every diagram costs a packet a walk: the last two groups merge while together they
/// are at most [`SMALL_GROUPS_PERCENT`] of the rules and the merged diagram's longest
/// leaf is no longer than the longer of theirs or [`LEAF_RULES`] (wide rules copied into every piece of
/// the narrow ones' splits can make leaves of dozens of candidates, each a test for a
/// packet there).
fn merge_small(builder: &mut Builder, mut groups: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let total: usize = groups.iter().map(Vec::len).sum();
    let longest = |diagram: &Diagram| {
        diagram
            .nodes
            .iter()
            .map(|node| match node {
                TreeNode::Leaf(list) => list.len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    };
    while groups.len() > 2 {
        let (last, before) = (&groups[groups.len() - 1], &groups[groups.len() - 2]);
        if (last.len() + before.len()) * 100 > total * SMALL_GROUPS_PERCENT {
            break;
        }
        let mut merged: Vec<usize> = before.iter().chain(last).copied().collect();
        merged.sort_unstable();
        let apart = longest(&builder.diagram(before.clone())).max(longest(&builder.diagram(last.clone())));
        if longest(&builder.diagram(merged.clone())) > apart.max(LEAF_RULES) {
            break;
        }
        groups.truncate(groups.len() - 2);
        groups.push(merged);
    }
    groups
}

/// Candidate lists this short are checked for candidates an earlier one shadows (the
/// check compares every pair).
const SHADOW_CHECK: usize = 24;
/// ... and leaves (lists no split divides) up to this long.
const SHADOW_CHECK_LEAF: usize = 256;

/// The values an interval test accepts: sorted, disjoint intervals.
enum Intervals<'a> {
    One([(u128, u128); 1]),
    Set(&'a [(u128, u128)]),
}

impl Intervals<'_> {
    fn list(&self) -> &[(u128, u128)] {
        match self {
            Intervals::One(one) => one,
            Intervals::Set(set) => set,
        }
    }
}

/// Whether every value in `narrow` is in `wide` (both sorted and disjoint).
fn within(narrow: &Intervals, wide: &Intervals) -> bool {
    let wide = wide.list();
    narrow.list().iter().all(|&(low, high)| {
        let at = wide.partition_point(|&(_, end)| end < low);
        wide.get(at).is_some_and(|&(start, end)| start <= low && high <= end)
    })
}

/// One residual test as [`Builder::drop_shadowed`] compares it: its id and what
/// `implies` needs of its node.
enum Tested<'a> {
    /// A rate limit: takes tokens, so it implies nothing and nothing implies it.
    Limit,
    /// A header is present.
    Present(NodeId, Source),
    /// An interval test: field, mask and the values it accepts.
    Intervals(NodeId, Field, Option<u128>, Intervals<'a>),
    /// Any other test.
    Other(NodeId),
}

impl Tested<'_> {
    fn id(&self) -> Option<NodeId> {
        match self {
            Tested::Limit => None,
            Tested::Present(id, _) | Tested::Intervals(id, ..) | Tested::Other(id) => Some(*id),
        }
    }

    /// Equal for two tests when one can imply the other (see [`Tested::implies`]): the
    /// same test, or both header tests, or interval tests of one field and mask.
    fn key(&self) -> u64 {
        let mut hasher = crate::hashing::Fnv64::default();
        match self {
            Tested::Limit => 0,
            Tested::Present(..) => 1,
            Tested::Intervals(_, field, mask, _) => {
                (field, mask).hash(&mut hasher);
                hasher.finish() | 2
            }
            Tested::Other(id) => {
                id.hash(&mut hasher);
                hasher.finish() | 3
            }
        }
    }

    /// Whether every packet that passes this test (as the leaf code evaluates it)
    /// passes `test`.
    fn implies(&self, test: &Tested) -> bool {
        let (Some(by_id), Some(test_id)) = (self.id(), test.id()) else { return false };
        if by_id == test_id {
            return true;
        }
        match (self, test) {
            (Tested::Present(_, by), Tested::Present(_, test)) => by.implied().contains(test),
            (Tested::Intervals(_, field, mask, narrow), Tested::Intervals(_, wide_field, wide_mask, wide)) => {
                field == wide_field && mask == wide_mask && within(narrow, wide)
            }
            _ => false,
        }
    }
}

/// What [`Tested::implies`] reads of test `id`.
fn tested(filter: &Filter, id: NodeId) -> Tested<'_> {
    let node = filter.node(id);
    match node {
        Node::Limit(_) => Tested::Limit,
        Node::Present(source) => Tested::Present(id, *source),
        _ => match tested_intervals(filter, node) {
            Some((field, mask, intervals)) => Tested::Intervals(id, field, mask, intervals),
            None => Tested::Other(id),
        },
    }
}

/// The field, mask and values an interval test accepts.
fn tested_intervals<'f>(filter: &'f Filter, node: &'f Node) -> Option<(Field, Option<u128>, Intervals<'f>)> {
    match node {
        Node::Compare { field, mask, op, value } => {
            let interval = match op {
                CmpOp::Eq => (*value, *value),
                CmpOp::Lt => (0, value.checked_sub(1)?),
                CmpOp::Le => (0, *value),
                CmpOp::Gt => (value.checked_add(1)?, u128::MAX),
                CmpOp::Ge => (*value, u128::MAX),
                CmpOp::Ne => return None,
            };
            Some((*field, *mask, Intervals::One([interval])))
        }
        Node::InSet { field, mask, set } => Some((*field, *mask, Intervals::Set(&filter.set(*set).intervals))),
        _ => None,
    }
}

/// The positions of the set bits of `bits`, lowest first.
fn bits(mut bits: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let position = bits.trailing_zeros() as usize;
        bits &= bits.wrapping_sub(1);
        (position < 64).then_some(position)
    })
}

/// How a node splits its rules.
enum SplitKind {
    Source(Source),
    /// On the field's first word (the pieces' low ends are in [`Scratch::lows`]).
    Field(Field),
}

struct Builder<'a> {
    needs: &'a [Needs],
    /// Per rule, what [`Builder::drop_shadowed`] compares of each of its items (in
    /// `Needs::items` order): rule `r`'s are `tests[starts[r]..starts[r + 1]]`, read once.
    tests: &'a [Tested<'a>],
    /// Per test, [`Tested::key`].
    keys: &'a [u64],
    starts: &'a [usize],
    /// Per rule: whether its condition is the constant true (a leaf tests nothing of it).
    always: &'a [bool],
    /// Per depth of the recursion: buffers its nodes reuse.
    scratch: Vec<Scratch>,
    /// Buffers [`Builder::best_split`] reuses.
    fields: Vec<Field>,
    events: Vec<(u64, i32)>,
    pieces: Vec<u32>,
}

/// A diagram under construction.
struct Building {
    diagram: Diagram,
    shared: Shared,
}

/// No entry (the end of a chain in [`Shared`]).
const NO_ENTRY: u32 = u32::MAX;

/// The candidate lists seen, each with the node built for it: a list a node was built for
/// (its own node), or a list as it reached [`Builder::node`] before the rules a certain or
/// shadowing candidate rules out were taken off (an alias of the list that was left). The
/// lists live in one buffer, and a lookup hashes the slice it is given, so no list is
/// copied or allocated to be looked up.
#[derive(Default)]
struct Shared {
    /// Hash of a list to its first entry; entries of equal hashes are chained.
    heads: crate::hashing::LookupMap<u64, u32>,
    entries: Vec<SharedEntry>,
    lists: Vec<Candidate>,
}

struct SharedEntry {
    /// The list: `lists[start..start + len]`.
    start: usize,
    len: usize,
    /// The node, or (with `alias`) unused.
    node: NodeIndex,
    /// The entry whose node this list leads to, or [`NO_ENTRY`].
    alias: u32,
    /// The next entry of the same hash, or [`NO_ENTRY`].
    next: u32,
}

impl Shared {
    /// A list's hash: one word per candidate.
    fn hash(list: &[Candidate]) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ list.len() as u64;
        for &(rule, proven) in list {
            hash = (hash ^ (rule as u64) ^ proven.rotate_left(24)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
        }
        hash
    }

    /// The entry of `list`.
    fn find(&self, hash: u64, list: &[Candidate]) -> Option<u32> {
        let mut entry = *self.heads.get(&hash)?;
        while entry != NO_ENTRY {
            let found = &self.entries[entry as usize];
            if self.lists[found.start..found.start + found.len] == *list {
                return Some(entry);
            }
            entry = found.next;
        }
        None
    }

    /// The node `list` leads to, if it was seen.
    fn get(&self, hash: u64, list: &[Candidate]) -> Option<NodeIndex> {
        let entry = &self.entries[self.find(hash, list)? as usize];
        Some(match entry.alias {
            NO_ENTRY => entry.node,
            alias => self.entries[alias as usize].node,
        })
    }

    /// Records `list`'s node (replacing what it led to before) and returns its entry.
    fn insert(&mut self, hash: u64, list: &[Candidate], node: NodeIndex) -> u32 {
        if let Some(entry) = self.find(hash, list) {
            let found = &mut self.entries[entry as usize];
            found.node = node;
            found.alias = NO_ENTRY;
            return entry;
        }
        self.push(hash, list, node, NO_ENTRY)
    }

    /// Records that `list` leads wherever the list of `entry` does.
    fn alias(&mut self, hash: u64, list: &[Candidate], entry: u32) {
        debug_assert!(self.find(hash, list).is_none());
        self.push(hash, list, 0, entry);
    }

    fn push(&mut self, hash: u64, list: &[Candidate], node: NodeIndex, alias: u32) -> u32 {
        let entry = self.entries.len() as u32;
        let next = self.heads.insert(hash, entry).unwrap_or(NO_ENTRY);
        self.entries.push(SharedEntry { start: self.lists.len(), len: list.len(), node, alias, next });
        self.lists.extend_from_slice(list);
        entry
    }
}

/// Buffers one level of the recursion reuses from node to node.
#[derive(Default)]
struct Scratch {
    /// The node's list without the candidates a certain or shadowing one rules out.
    reduced: Vec<Candidate>,
    /// The children's lists, one after the other: child `i`'s is
    /// `children[ends[i - 1]..ends[i]]` (from 0 for the first).
    children: Vec<Candidate>,
    ends: Vec<usize>,
    /// The chosen field split's piece boundaries.
    lows: Vec<u32>,
}

impl Builder<'_> {
    fn diagram(&mut self, rules: Vec<usize>) -> Diagram {
        let mut building = Building { diagram: Diagram::default(), shared: Shared::default() };
        let list: Vec<Candidate> = rules.into_iter().map(|rule| (rule, 0)).collect();
        let root = self.node(&mut building, &list, 0);
        building.diagram.root = root;
        building.diagram
    }

    /// Whether every packet reaching a node with this candidate matches it.
    fn certain(&self, &(rule, proven): &Candidate) -> bool {
        let needs = &self.needs[rule];
        self.always[rule] || (!needs.items.is_empty() && proven == needs.all_proven())
    }

    /// The conjuncts a leaf still tests.
    fn residual(&self, &(rule, proven): &Candidate) -> Vec<NodeId> {
        if self.always[rule] {
            return Vec::new();
        }
        let items = &self.needs[rule].items;
        items.iter().enumerate().filter(|(position, _)| proven & (1 << position) == 0).map(|(_, (id, _))| *id).collect()
    }

    fn node(&mut self, building: &mut Building, list: &[Candidate], depth: usize) -> NodeIndex {
        let list_hash = Shared::hash(list);
        if let Some(index) = building.shared.get(list_hash, list) {
            return index;
        }
        if self.scratch.len() <= depth {
            self.scratch.resize_with(depth + 1, Scratch::default);
        }
        let mut scratch = std::mem::take(&mut self.scratch[depth]);
        let index = self.build(building, list, list_hash, depth, &mut scratch);
        self.scratch[depth] = scratch;
        index
    }

    /// [`Builder::node`] for a list not seen before.
    fn build(
        &mut self,
        building: &mut Building,
        list: &[Candidate],
        list_hash: u64,
        depth: usize,
        scratch: &mut Scratch,
    ) -> NodeIndex {
        let candidates = &mut scratch.reduced;
        candidates.clear();
        // Nothing after a rule that matches every packet here can decide.
        match list.iter().position(|candidate| self.certain(candidate)) {
            Some(position) => candidates.extend_from_slice(&list[..=position]),
            None => candidates.extend_from_slice(list),
        }
        if candidates.len() <= SHADOW_CHECK {
            self.drop_shadowed(candidates);
        }
        let hash = Shared::hash(candidates);
        if candidates.len() != list.len() {
            if let Some(entry) = building.shared.find(hash, candidates) {
                building.shared.alias(list_hash, list, entry);
                let entry = &building.shared.entries[entry as usize];
                return match entry.alias {
                    NO_ENTRY => entry.node,
                    alias => building.shared.entries[alias as usize].node,
                };
            }
        }
        let candidates = &scratch.reduced;
        let split = if depth == 0 && candidates.len() > LEAF_RULES {
            // A header every rule needs: testing it once at the root spares every leaf
            // its guard.
            let everyone = candidates.iter().fold(u32::MAX, |bits, &(rule, _)| bits & self.needs[rule].sources);
            SPLIT_SOURCES.into_iter().find(|source| everyone & source.bit() != 0).map(SplitKind::Source)
        } else {
            None
        };
        let split = match split {
            Some(split) => Some(split),
            None if candidates.len() <= LEAF_RULES || depth >= MAX_DEPTH => None,
            None => self.best_split(candidates, &mut scratch.lows),
        };
        let node = match split {
            None => {
                let mut list = candidates.clone();
                if list.len() > SHADOW_CHECK && list.len() <= SHADOW_CHECK_LEAF {
                    // No split separates them: pruning is what is left.
                    self.drop_shadowed(&mut list);
                }
                TreeNode::Leaf(list.iter().map(|candidate| (candidate.0, self.residual(candidate))).collect())
            }
            Some(SplitKind::Source(source)) => {
                self.source_children(candidates, source, &mut scratch.children, &mut scratch.ends);
                let (lists, ends) = (&scratch.children, &scratch.ends);
                // Built last, a new present child is laid out right after this node, so
                // a packet that has the header falls through to it.
                let absent = self.node(building, &lists[ends[0]..ends[1]], depth + 1);
                let present = self.node(building, &lists[..ends[0]], depth + 1);
                TreeNode::Source { source, present, absent }
            }
            Some(SplitKind::Field(field)) => {
                let lows = &scratch.lows;
                self.field_children(candidates, field, lows, &mut scratch.children, &mut scratch.ends);
                let (lists, ends) = (&scratch.children, &scratch.ends);
                let mut children: Vec<NodeIndex> = Vec::new();
                let mut child_of: FastMap<NodeIndex, usize> = FastMap::default();
                let mut pieces: Vec<(u32, u32, usize)> = Vec::new();
                let mut start = 0;
                for (position, &end) in ends.iter().enumerate() {
                    let node = self.node(building, &lists[start..end], depth + 1);
                    start = end;
                    let child = *child_of.entry(node).or_insert_with(|| {
                        children.push(node);
                        children.len() - 1
                    });
                    let low = lows[position];
                    let high = lows.get(position + 1).map_or(u32::MAX, |next| next - 1);
                    match pieces.last_mut() {
                        Some(last) if last.2 == child => last.1 = high,
                        _ => pieces.push((low, high, child)),
                    }
                }
                if children.len() == 1 {
                    // Every piece leads to the same candidates: no test needed.
                    let only = children[0];
                    self.record(building, list, list_hash, &scratch.reduced, hash, only);
                    return only;
                }
                TreeNode::Field { field, pieces, children }
            }
        };
        building.diagram.nodes.push(node);
        let index = building.diagram.nodes.len() - 1;
        self.record(building, list, list_hash, &scratch.reduced, hash, index);
        index
    }

    /// Records that `reduced` (what is left of `list`) leads to `index`, and `list` too.
    fn record(
        &self,
        building: &mut Building,
        list: &[Candidate],
        list_hash: u64,
        reduced: &[Candidate],
        hash: u64,
        index: NodeIndex,
    ) {
        let entry = building.shared.insert(hash, reduced, index);
        if reduced.len() != list.len() && building.shared.find(list_hash, list).is_none() {
            building.shared.alias(list_hash, list, entry);
        }
    }

    /// Drops every candidate that an earlier one shadows here: one whose residual tests
    /// each follow from one of the later candidate's (the same test, or an interval test
    /// on the same word with a narrower range). When the earlier one fails, so does the
    /// later; when it matches, it decides. Block lists of nested prefixes and sets with
    /// repeated rules leave many such candidates in one piece, which no split separates.
    fn drop_shadowed(&self, candidates: &mut Vec<Candidate>) {
        if candidates.len() < 2 {
            return;
        }
        debug_assert!(candidates.len() <= SHADOW_CHECK_LEAF);
        // The open (unproven) items of each candidate, as bits of its rule's `items`.
        let open = |&(rule, proven): &Candidate| match self.always[rule] {
            true => 0,
            false => self.needs[rule].all_proven() & !proven,
        };
        let mut dropped = [0u64; SHADOW_CHECK_LEAF / 64];
        for later in 1..candidates.len() {
            let by_open = open(&candidates[later]);
            let by_start = self.starts[candidates[later].0];
            let shadowed = (0..later).any(|earlier| {
                let earlier_open = open(&candidates[earlier]);
                let start = self.starts[candidates[earlier].0];
                dropped[earlier / 64] & (1 << (earlier % 64)) == 0
                    && earlier_open != 0
                    && bits(earlier_open).all(|position| {
                        let (test, key) = (&self.tests[start + position], self.keys[start + position]);
                        // Only a test of the same key can imply it: compare keys first.
                        bits(by_open)
                            .any(|by| self.keys[by_start + by] == key && self.tests[by_start + by].implies(test))
                    })
            });
            if shadowed {
                dropped[later / 64] |= 1 << (later % 64);
            }
        }
        let mut position = 0;
        candidates.retain(|_| {
            position += 1;
            dropped[(position - 1) / 64] & (1 << ((position - 1) % 64)) == 0
        });
    }

    /// The present child's list, then the absent child's, into `lists`; `ends`: where
    /// each ends.
    fn source_children(
        &self,
        candidates: &[Candidate],
        source: Source,
        lists: &mut Vec<Candidate>,
        ends: &mut Vec<usize>,
    ) {
        let bit = source.bit();
        lists.clear();
        ends.clear();
        let present = candidates.iter().filter(|&&(index, _)| self.needs[index].present_in & bit != 0);
        lists.extend(present.map(|&(index, proven)| (index, proven | self.proves_source(index, source))));
        ends.push(lists.len());
        lists.extend(candidates.iter().copied().filter(|&(index, _)| self.needs[index].sources & bit == 0));
        ends.push(lists.len());
    }

    /// The items of a rule that the presence of `source` proves.
    fn proves_source(&self, rule: usize, source: Source) -> u64 {
        let mut bits = 0;
        for (position, (_, proof)) in self.needs[rule].items.iter().enumerate() {
            if matches!(proof, Proof::Source(present) if *present == source) {
                bits |= 1 << position;
            }
        }
        bits
    }

    /// The items of a rule that `field`'s first word lying in `low..=high` proves.
    fn proves_field(&self, rule: usize, field: Field, low: u32, high: u32) -> u64 {
        let items = &self.needs[rule].items;
        let mut bits = 0;
        for (position, (_, proof)) in items.iter().enumerate() {
            if let Proof::Field(proved, intervals) = proof {
                let at = intervals.partition_point(|&(_, end)| end < low);
                if *proved == field && intervals.get(at).is_some_and(|&(start, end)| start <= low && high <= end) {
                    bits |= 1 << position;
                }
            }
        }
        // A value in range proves the header when an absent one reads as u32::MAX.
        if bits != 0 && high < u32::MAX && absent_is_out_of_range(field) {
            if let Some(source) = Source::of_field(field) {
                bits |= self.proves_source(rule, source);
            }
        }
        bits
    }

    /// Per piece (starting at `lows[i]`): the candidates whose intervals meet it, in
    /// order, with what the piece proves added; into `lists`, piece after piece, `ends`
    /// saying where each ends.
    fn field_children(
        &self,
        candidates: &[Candidate],
        field: Field,
        lows: &[u32],
        lists: &mut Vec<Candidate>,
        ends: &mut Vec<usize>,
    ) {
        let high_of = |piece: usize| lows.get(piece + 1).map_or(u32::MAX, |next| next - 1);
        // The pieces each candidate meets: all of them (a rule that leaves the field
        // wild), or per interval a run of them.
        let runs = |index: usize| {
            let intervals = self.needs[index].intervals(field);
            let all = [(0, lows.len() - 1)];
            let spans = intervals.into_iter().flatten().map(|&(low, high)| {
                (lows.partition_point(|&start| start <= low) - 1, lows.partition_point(|&start| start <= high) - 1)
            });
            (intervals.is_none().then_some(all).into_iter().flatten(), spans)
        };
        // First count each piece's candidates, then fill: a rule whose intervals meet a
        // piece twice is listed there once (its last position in that piece is checked).
        ends.clear();
        ends.resize(lows.len(), 0);
        let mut last: Vec<usize> = vec![usize::MAX; lows.len()];
        for &(index, _) in candidates {
            let (wild, spans) = runs(index);
            for (first, end) in wild.chain(spans) {
                for piece in first..=end {
                    if last[piece] != index {
                        last[piece] = index;
                        ends[piece] += 1;
                    }
                }
            }
        }
        let mut start = 0;
        for end in ends.iter_mut() {
            *end += start;
            start = *end;
        }
        lists.clear();
        lists.resize(start, (0, 0));
        // `next[piece]`: where its next candidate goes.
        let mut next: Vec<usize> = Vec::with_capacity(lows.len());
        next.push(0);
        next.extend_from_slice(&ends[..lows.len() - 1]);
        last.iter_mut().for_each(|rule| *rule = usize::MAX);
        for &(index, proven) in candidates {
            let (wild, spans) = runs(index);
            let is_wild = self.needs[index].intervals(field).is_none();
            for (first, end) in wild.chain(spans) {
                for piece in first..=end {
                    if last[piece] != index {
                        last[piece] = index;
                        let more =
                            if is_wild { 0 } else { self.proves_field(index, field, lows[piece], high_of(piece)) };
                        lists[next[piece]] = (index, proven | more);
                        next[piece] += 1;
                    }
                }
            }
        }
    }

    /// The split that leaves the smallest largest child (then the fewest copies), if one
    /// divides the rules enough; a field split's piece boundaries go to `lows`.
    fn best_split(&mut self, candidates: &[Candidate], lows: &mut Vec<u32>) -> Option<SplitKind> {
        let rules = candidates.len();
        let fits = |largest: usize, total: usize| largest * 10 < rules * 9 && total <= MAX_REPLICATION * rules + 64;
        let mut best: Option<(usize, usize, SplitKind)> = None;
        let required: u32 = candidates.iter().fold(0, |bits, &(index, _)| bits | self.needs[index].sources);
        for source in SPLIT_SOURCES {
            let bit = source.bit();
            if required & bit == 0 {
                continue;
            }
            // The sizes of `source_children`'s two lists.
            let present = candidates.iter().filter(|&&(rule, _)| self.needs[rule].present_in & bit != 0).count();
            let absent = candidates.iter().filter(|&&(rule, _)| self.needs[rule].sources & bit == 0).count();
            let (largest, total) = (present.max(absent), present + absent);
            if fits(largest, total) && best.as_ref().map_or(true, |best| (largest, total) < (best.0, best.1)) {
                best = Some((largest, total, SplitKind::Source(source)));
            }
        }
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        fields.extend(candidates.iter().flat_map(|&(index, _)| self.needs[index].fields.iter().map(|(f, _)| *f)));
        fields.sort_unstable();
        fields.dedup();
        let mut events = std::mem::take(&mut self.events);
        let mut pieces = std::mem::take(&mut self.pieces);
        for &field in &fields {
            let Some((largest, total)) = self.field_split(candidates, field, &mut events, &mut pieces) else {
                continue;
            };
            if fits(largest, total) && best.as_ref().map_or(true, |best| (largest, total) < (best.0, best.1)) {
                best = Some((largest, total, SplitKind::Field(field)));
                lows.clear();
                lows.extend_from_slice(&pieces);
            }
        }
        (self.fields, self.events, self.pieces) = (fields, events, pieces);
        best.map(|(_, _, kind)| kind)
    }

    /// Cuts at the rules' interval boundaries (every k-th when there are too many, the
    /// low ends into `lows`) and counts each piece's candidates: the largest count and
    /// their sum. `events`: a buffer to reuse.
    fn field_split(
        &self,
        candidates: &[Candidate],
        field: Field,
        events: &mut Vec<(u64, i32)>,
        lows: &mut Vec<u32>,
    ) -> Option<(usize, usize)> {
        let mut wild = 0;
        events.clear();
        for &(index, _) in candidates {
            match self.needs[index].intervals(field) {
                None => wild += 1,
                Some(intervals) => {
                    for &(low, high) in intervals {
                        events.push((u64::from(low), 1));
                        events.push((u64::from(high) + 1, -1));
                    }
                }
            }
        }
        if events.is_empty() {
            return None;
        }
        events.sort_unstable();
        lows.clear();
        lows.push(0);
        lows.extend(events.iter().filter(|(at, _)| *at > 0 && *at <= u64::from(u32::MAX)).map(|(at, _)| *at as u32));
        lows.dedup();
        if lows.len() > MAX_PIECES {
            let step = lows.len().div_ceil(MAX_PIECES);
            let mut kept = 0;
            for position in (0..lows.len()).step_by(step) {
                lows[kept] = lows[position];
                kept += 1;
            }
            lows.truncate(kept);
        }
        // Candidates of a piece: the wild rules, the intervals open at its start and those
        // starting inside it (an upper bound when a rule has several intervals).
        let (mut largest, mut total) = (0, 0);
        let mut open = 0i64;
        let mut event = 0;
        for (position, &low) in lows.iter().enumerate() {
            let end = lows.get(position + 1).map_or(u64::from(u32::MAX) + 1, |next| u64::from(*next));
            while event < events.len() && events[event].0 <= u64::from(low) {
                open += i64::from(events[event].1);
                event += 1;
            }
            let mut starting = 0;
            let mut scan = event;
            while scan < events.len() && events[scan].0 < end {
                if events[scan].1 > 0 {
                    starting += 1;
                }
                scan += 1;
            }
            let count = wild + open.max(0) as usize + starting;
            largest = largest.max(count);
            total += count;
        }
        Some((largest, total))
    }
}

#[cfg(test)]
mod tests {
    use crate::bpf::opcode::HELPER_MAP_LOOKUP;
    use crate::bpf::{Insn, JmpOp, Operand, Program, Reg, Size};
    use crate::classbench::{self, Shape};
    use crate::codegen::layout::{Layout, MASK_SLOT, NEVER_SET_MASK_BIT};
    use crate::codegen::{Form, Options};
    use crate::compile::compile_form;

    /// The longest candidate list of any leaf of `diagram`.
    fn longest_leaf(diagram: &super::Diagram) -> usize {
        diagram
            .nodes
            .iter()
            .map(|node| match node {
                super::TreeNode::Leaf(list) => list.len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// ipc-shaped 5,000 rules: the grouping leaves two small trailing groups that merge
    /// into one diagram without a longer leaf, so a packet walks 3 diagrams, not 4; acl-shaped sets keep theirs apart (merged, the wide rules would
    /// make leaves of dozens).
    #[test]
    fn small_trailing_groups_merge_when_no_leaf_grows() {
        for (shape, diagrams) in [(Shape::Ipc, 3), (Shape::Acl, 3)] {
            let text = classbench::generate(shape, 5_000, 0, 0xc1a5_5be7).text;
            let (program, diagnostics) = crate::frontend::check_source(&text);
            let filter = crate::ir::build(&program.unwrap_or_else(|| panic!("{diagnostics:?}")));
            let plan = crate::codegen::plan_classifier(&filter).expect("a classifier");
            assert_eq!(plan.diagrams.len(), diagrams, "{}", shape.name());
            for diagram in &plan.diagrams[1..] {
                assert!(longest_leaf(diagram) <= 8, "{}: a leaf of {}", shape.name(), longest_leaf(diagram));
            }
        }
    }

    #[test]
    fn classbench_sets_of_every_shape_compile_classified_within_the_kernel_limits() {
        for shape in Shape::ALL {
            let text = classbench::generate(shape, 2_000, 0, 11).text;
            let (compiled, diagnostics) = compile_form(&text, Options { counters: true }, Some(Form::Classified));
            let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
            let compiled = compiled.unwrap_or_else(|| panic!("{}: {messages:?}", shape.name()));
            assert!(compiled.code.disassemble().contains("classifier:"), "{}", shape.name());
            let layout = Layout::new(&compiled.filter.uses(), true).expect("the set fits the stack");
            tails_read_every_word(&compiled.code, &layout, shape.name());
        }
    }

    #[test]
    fn rules_an_earlier_rule_of_their_leaf_shadows_are_left_out() {
        // IPv6 prefixes longer than /32: the diagram can only split on their top word, so
        // each rule stays a residual test in the leaf. Every later rule repeats rule 0's
        // /48 or lies inside it, so rule 0 decides whatever they would.
        let mut text = String::from("default pass\n");
        for index in 0..40 {
            let prefix = ["2a00:1:2::/48", "2a00:1:2:3::/64", "2a00:1:2:3:4::/80"][index % 3];
            text.push_str(&format!("rule r{index}: drop if ip.src in {prefix}\n"));
        }
        let (compiled, diagnostics) = compile_form(&text, Options { counters: true }, Some(Form::Classified));
        let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let layout = Layout::new(&compiled.filter.uses(), true).expect("the set fits the stack");
        let plan = super::plan(&compiled.filter, &layout).expect("40 rules are classified");
        let leaves: Vec<Vec<usize>> = plan
            .diagrams
            .iter()
            .flat_map(|diagram| &diagram.nodes)
            .filter_map(|node| match node {
                super::TreeNode::Leaf(rules) => Some(rules.iter().map(|(rule, _)| *rule).collect()),
                _ => None,
            })
            .collect();
        assert!(!leaves.is_empty());
        for rules in leaves {
            assert!(rules.len() <= 1 && rules.iter().all(|&rule| rule == 0), "leaf {rules:?}");
        }
    }

    #[test]
    fn without_counters_every_verdict_returns_through_an_exit_tail_that_reads_every_word() {
        for shape in Shape::ALL {
            let text = classbench::generate(shape, 1_000, 0, 11).text;
            let (compiled, diagnostics) = compile_form(&text, Options { counters: false }, Some(Form::Classified));
            let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
            let compiled = compiled.unwrap_or_else(|| panic!("{}: {messages:?}", shape.name()));
            assert!(compiled.code.disassemble().contains("classifier:"), "{}", shape.name());
            let layout = Layout::new(&compiled.filter.uses(), false).expect("the set fits the stack");
            exit_tails_read_every_word(&compiled.code, &layout, shape.name());
        }
    }

    /// Every stack word the body can read.
    fn body_words(layout: &Layout) -> Vec<i16> {
        let mut words: Vec<i16> = layout.fields().flat_map(|(_, words)| words.iter().copied()).collect();
        words.extend(layout.pcap_words().iter().copied());
        words.push(MASK_SLOT);
        words
    }

    /// The slot at which each instruction starts.
    fn slot_starts(code: &Program) -> Vec<usize> {
        code.insns.iter().scan(0, |slot, insn| Some(std::mem::replace(slot, *slot + insn.slots()))).collect()
    }

    /// The stack words read by the loads starting at instruction `first`.
    fn words_read_from(code: &Program, first: usize) -> Vec<i16> {
        code.insns[first..]
            .iter()
            .map_while(|insn| match insn {
                Insn::Load { size: Size::W, src: Reg::R10, off, .. } => Some(*off),
                _ => None,
            })
            .collect()
    }

    /// Without counters (see `exit_tail` in `codegen/mod.rs`): every `exit` is an exit
    /// tail's, right after its test of the never-set mask bit or at the end of that
    /// test's target, whose loads read every stack word the body can read.
    fn exit_tails_read_every_word(code: &Program, layout: &Layout, shape: &str) {
        let words = body_words(layout);
        let slots = slot_starts(code);
        let mut tails = 0;
        let mut tail_exits = Vec::new();
        for (index, pair) in code.insns.windows(2).enumerate() {
            assert_ne!(pair[0], Insn::Ja { target: 0 }, "{shape}: goto +0 at {index}");
            let never = Operand::imm_u32(NEVER_SET_MASK_BIT);
            let (
                Insn::Load { size: Size::W, src: Reg::R10, off: MASK_SLOT, dst },
                Insn::Jump { op: JmpOp::Set, dst: tested, src, target, wide: false },
            ) = (&pair[0], &pair[1])
            else {
                continue;
            };
            if dst != tested || *src != never {
                continue;
            }
            tails += 1;
            assert_eq!(code.insns[index + 2], Insn::Exit, "{shape}: the tail at {index} does not return");
            let reads = slots[index + 1] + 1 + *target as usize;
            let first = slots.partition_point(|slot| *slot < reads);
            let read = words_read_from(code, first);
            let missing: Vec<&i16> = words.iter().filter(|word| !read.contains(word)).collect();
            assert!(missing.is_empty(), "{shape}: the exit tail at {index} does not read {missing:?}");
            assert_eq!(code.insns[first + read.len()], Insn::Exit, "{shape}: the reads at {first} do not return");
            tail_exits.extend([index + 2, first + read.len()]);
        }
        assert!(tails > 0, "{shape}: no exit tail");
        let exits: Vec<usize> = (0..code.insns.len()).filter(|&index| code.insns[index] == Insn::Exit).collect();
        tail_exits.sort_unstable();
        assert_eq!(exits, tail_exits, "{shape}: a verdict returns without the exit tail");
    }

    /// The kernel verifier's load time stays linear (see `read_every_word` in
    /// `codegen/mod.rs`): every counter tail's null-lookup path reads every stack word the
    /// body can read, and no `goto` lands on the next instruction.
    fn tails_read_every_word(code: &Program, layout: &Layout, shape: &str) {
        let words = body_words(layout);
        let slots = slot_starts(code);
        let mut tails = 0;
        for (index, pair) in code.insns.windows(2).enumerate() {
            assert_ne!(pair[0], Insn::Ja { target: 0 }, "{shape}: goto +0 at {index}");
            let (Insn::Call { helper: HELPER_MAP_LOOKUP }, Insn::Jump { op: JmpOp::Eq, dst: Reg::R0, target, .. }) =
                (&pair[0], &pair[1])
            else {
                continue;
            };
            tails += 1;
            let null = slots[index + 1] + 1 + *target as usize;
            let first = slots.partition_point(|slot| *slot < null);
            let read = words_read_from(code, first);
            let missing: Vec<&i16> = words.iter().filter(|word| !read.contains(word)).collect();
            assert!(missing.is_empty(), "{shape}: the tail at {index} does not read {missing:?}");
        }
        assert!(tails > 0, "{shape}: no counter tail");
    }
}
