//! The checked rule set (typed AST): output of `check`, input of `eval` and of lowering.
//!
//! Everything here is resolved: named sets and constants are inlined, `ip.*` and `l4.*`
//! fields are split into their concrete per-protocol fields, literals are plain numbers
//! and every set is a sorted list of disjoint inclusive intervals. Whoever consumes a
//! [`Program`] never looks at names or source text again, only at spans for messages.

pub mod dynamic;
pub mod limit;
pub mod log;
pub mod pcap;

use crate::diagnostic::Span;
use crate::fields::{Field, Proto};
pub use crate::object::{Hook, Verdict};

/// Index of a set in [`Program::sets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId(pub u32);

/// A checked rule set, ready to evaluate or lower.
#[derive(Clone, Debug)]
pub struct Program {
    /// The attach point.
    pub hook: Hook,
    /// The verdict when no rule matches.
    pub default: Verdict,
    /// Rules in source order; the first whose condition holds decides.
    pub rules: Vec<Rule>,
    /// Every value set that conditions refer to, deduplicated by content.
    pub sets: Vec<ValueSet>,
    /// The name of the declared set each of [`Program::sets`] was first made from, by
    /// index (`None` or missing: an inline set); for a set the compiler puts in a map.
    pub set_names: Vec<Option<String>>,
    /// Every `pcap "..."` filter, in source order ([`Cond::Pcap`] indexes it).
    pub pcaps: Vec<pcap::PcapFilter>,
    /// Every `set … dynamic`, in source order ([`TestOp::InDynamic`] indexes it).
    pub dynamic_sets: Vec<DynamicSet>,
    /// Every rate limit, in source order ([`Cond::Limit`] indexes it).
    pub limits: Vec<limit::Limit>,
}

impl Program {
    /// The set that `id` names.
    pub fn set(&self, id: SetId) -> &ValueSet {
        &self.sets[id.0 as usize]
    }

    /// The name of the declared set `id` was first made from (`None`: an inline set).
    pub fn set_name(&self, id: SetId) -> Option<&str> {
        self.set_names.get(id.0 as usize).and_then(Option::as_deref)
    }

    /// The dynamic set that `id` names.
    pub fn dynamic_set(&self, id: DynamicSetId) -> &DynamicSet {
        &self.dynamic_sets[id.0 as usize]
    }

    /// The dynamic set named `name`, for replacing its contents.
    pub fn dynamic_set_mut(&mut self, name: &str) -> Option<&mut DynamicSet> {
        self.dynamic_sets.iter_mut().find(|set| set.name == name)
    }

    /// The pcap filter that `id` names.
    pub fn pcap(&self, id: PcapId) -> &pcap::PcapFilter {
        &self.pcaps[id.0 as usize]
    }

    /// The rate limit that `id` names.
    pub fn limit(&self, id: LimitId) -> &limit::Limit {
        &self.limits[id.0 as usize]
    }

    /// The index of the rule whose condition ends in limit `id` (`None`: a log limit).
    pub fn limit_rule(&self, id: LimitId) -> Option<usize> {
        self.rules.iter().position(|rule| match &rule.condition {
            Cond::Limit(found) => *found == id,
            Cond::And(all) => matches!(all.last(), Some(Cond::Limit(found)) if *found == id),
            _ => false,
        })
    }
}

/// One `rule NAME: VERDICT if COND`.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule's name, unique in the file.
    pub name: String,
    /// The verdict when the condition holds.
    pub verdict: Verdict,
    /// When the rule matches; [`Cond::True`] for a rule without `if`.
    pub condition: Cond,
    /// `log [BYTES]`: each packet the rule decides sends an event (rate-limited).
    pub log: Option<log::Log>,
    /// The whole rule statement in the source.
    pub span: Span,
}

/// A boolean condition over one packet.
///
/// **Invariant:** every atom carries its own header guard: a [`Cond::Test`] on a field
/// whose header is absent or truncated is false, whatever the operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// Always true.
    True,
    /// Always false.
    False,
    /// The header of this protocol is present and complete (`tcp`, `ipv6`, `vlan`, ...).
    Proto(Proto),
    /// Negation.
    Not(Box<Cond>),
    /// All of these hold (evaluated left to right; empty means true).
    And(Vec<Cond>),
    /// One of these holds (evaluated left to right; empty means false).
    Or(Vec<Cond>),
    /// A field comparison, false when the field's header is absent.
    Test(Test),
    /// libpcap's verdict for the frame under [`Program::pcaps`]`[id]`.
    Pcap(PcapId),
    /// A token-bucket rate limit, [`Program::limits`]`[id]`: stateful, so it only ever
    /// stands last in a rule's top-level `and` (the checker makes sure) and is evaluated
    /// only when everything before it held, taking a token when one is there.
    Limit(LimitId),
}

/// Index of a rate limit in [`Program::limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitId(pub u32);

/// Index of a pcap filter in [`Program::pcaps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PcapId(pub u32);

/// `field [& mask] OP value` or `field [& mask] in set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Test {
    /// The concrete field read.
    pub field: Field,
    /// Bits kept before comparing (`tcp.flags & (syn|ack) == syn`); `None` keeps all.
    pub mask: Option<u128>,
    /// What the (masked) value is compared with.
    pub op: TestOp,
}

/// The comparison of a [`Test`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestOp {
    /// Compare with a constant, unsigned.
    Cmp(CmpOp, u128),
    /// Member of a set of intervals.
    In(SetId),
    /// Not a member of a set of intervals (the field's header must still be present).
    NotIn(SetId),
    /// Member of a dynamic set's current contents.
    InDynamic(DynamicSetId),
    /// Not a member of a dynamic set's current contents (header present).
    NotInDynamic(DynamicSetId),
}

/// Index of a dynamic set in [`Program::dynamic_sets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DynamicSetId(pub u32);

/// How a dynamic set is held in the kernel, which decides what its elements may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DynamicKind {
    /// Addresses and prefixes (`ip`, `ipv4`, `ipv6`): a longest-prefix-match trie.
    Prefixes,
    /// Single values (ports, protocols, numbers, MAC addresses): a hash map.
    Values,
}

impl DynamicKind {
    /// The name the manifest uses: `prefixes`, `values`.
    pub fn as_str(self) -> &'static str {
        match self {
            DynamicKind::Prefixes => "prefixes",
            DynamicKind::Values => "values",
        }
    }
}

/// One element of a dynamic set: a prefix (`low..=high` aligned) or a single value, of
/// one value kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DynamicElement {
    /// What the value is (IPv4, IPv6, MAC or a number).
    pub kind: crate::fields::ValueKind,
    /// Lowest value, inclusive.
    pub low: u128,
    /// Highest value, inclusive.
    pub high: u128,
}

/// `set NAME: TYPE dynamic [size N] [= …]`: a set whose contents change at run time.
/// Rules test membership in its *current* contents; what the rule file writes is only
/// its initial contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicSet {
    /// The set's name (how `pfc set` names it).
    pub name: String,
    /// The element type as written (`ip`, `port`, …).
    pub element_type: String,
    /// Trie of prefixes or hash of values.
    pub kind: DynamicKind,
    /// The families of values it holds, one map (per generation) each: IPv4 and IPv6 for
    /// an `ip` set, one family for any other type.
    pub families: Vec<dynamic::Family>,
    /// The most elements it may hold.
    pub max_elements: u32,
    /// The current contents, in the order given.
    pub elements: Vec<DynamicElement>,
    /// The `set` statement.
    pub span: Span,
    /// A static set that the compiler put in a map because a decision tree over it would
    /// not fit the kernel's limits (`crate::ir::maps`): its contents are the rule file's
    /// and never change, so its keys are always generation 0 and `pfc set` refuses to
    /// change it; it has one map per family, generation 0 only. Never true in a checked
    /// [`Program`], only in a [`crate::ir::Filter`].
    pub fixed: bool,
    /// The source-map index of the set's file when its lines were left unparsed
    /// ([`crate::sources::IncludeLoader::defers_dynamic_set_lines`]): `elements` holds
    /// none of them; whoever deferred them reads them.
    pub unread_file: Option<usize>,
}

impl DynamicSet {
    /// Replaces the contents (what `pfc set replace` does, and what a test case sets).
    pub fn set_elements(&mut self, elements: Vec<DynamicElement>) {
        self.elements = elements;
    }

    /// Whether a value of a field of `kind` is in the current contents: for prefixes,
    /// whether some prefix of its family covers it (a longest-prefix match finds one iff
    /// one exists); for values, whether it is one of them.
    pub fn contains(&self, kind: crate::fields::ValueKind, value: u128) -> bool {
        use crate::fields::ValueKind;
        let family = |element_kind: ValueKind| match (element_kind, kind) {
            (ValueKind::Uint(_), ValueKind::Uint(_)) => true,
            (a, b) => a == b,
        };
        self.elements.iter().any(|element| family(element.kind) && element.low <= value && value <= element.high)
    }
}

/// An unsigned comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Applies the operator to two unsigned values.
    pub fn holds(self, left: u128, right: u128) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
        }
    }
}

/// A set of values of one field width: sorted, disjoint, non-adjacent inclusive intervals.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValueSet {
    /// Width in bits of the values (8, 16, 32, 48, 128, ...).
    pub bits: u32,
    /// `(low, high)` pairs, inclusive, sorted by `low`, never overlapping or touching.
    pub intervals: Vec<(u128, u128)>,
}

/// Sorts inclusive intervals and merges overlapping and touching ones (each `low <= high`).
pub(crate) fn merge_intervals(mut intervals: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    intervals.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(intervals.len());
    for (low, high) in intervals {
        match merged.last_mut() {
            Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

impl ValueSet {
    /// Builds a normalized set from arbitrary inclusive intervals.
    pub fn from_intervals(bits: u32, intervals: Vec<(u128, u128)>) -> ValueSet {
        ValueSet { bits, intervals: merge_intervals(intervals) }
    }

    /// Whether `value` lies in one of the intervals (binary search).
    pub fn contains(&self, value: u128) -> bool {
        let after = self.intervals.partition_point(|&(low, _)| low <= value);
        after > 0 && value <= self.intervals[after - 1].1
    }
}
