//! The filter IR: a checked [`Program`] in, a [`Filter`] out — a description of *what*
//! is tested, not of how.
//!
//! Conditions become a hash-consed DAG of [`Node`]s in one arena: header guards are
//! explicit [`Node::Present`] nodes (so a guard shared by many tests is one node and,
//! after `opt`, tested once per conjunction), field tests read *values* that the code
//! generator extracts once per packet, and rules keep their order. Lowering is free to
//! pick the search structure (linear tests, decision trees over sets).

mod lower;
pub mod maps;
mod opt;
mod print;

use crate::diagnostic::Span;
use crate::fields::{Field, FieldSource, Proto};
use crate::program::{CmpOp, Hook, Program, ValueSet, Verdict};

pub use print::print;

/// Index of a node in [`Filter::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Index of a set in [`Filter::sets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetRef(pub u32);

/// Something whose presence a packet may lack: a header, or a value that takes a walk
/// to find. Each has one bit in the generated code's "absent" mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A protocol header (present and complete).
    Header(Proto),
    /// The payload ethertype after the VLAN tags (unknown when a tag is truncated).
    PayloadEthertype,
    /// The IPv6 upper-layer protocol (unknown when the extension chain is cut or too long).
    Ipv6UpperProtocol,
}

impl Source {
    /// Every source, in bit order.
    pub const ALL: [Source; 12] = [
        Source::Header(Proto::Eth),
        Source::Header(Proto::Vlan),
        Source::Header(Proto::Arp),
        Source::Header(Proto::Ipv4),
        Source::Header(Proto::Ipv6),
        Source::Header(Proto::Tcp),
        Source::Header(Proto::Udp),
        Source::Header(Proto::Sctp),
        Source::Header(Proto::Icmp),
        Source::Header(Proto::Icmp6),
        Source::PayloadEthertype,
        Source::Ipv6UpperProtocol,
    ];

    /// The bit of this source in the absent mask.
    pub fn bit(self) -> u32 {
        1 << Source::ALL.iter().position(|source| *source == self).unwrap_or(0)
    }

    /// The source that must be present for `field` to be read (`None`: always readable).
    pub(crate) fn of_field(field: Field) -> Option<Source> {
        match field.source() {
            FieldSource::Header { proto, .. } => Some(Source::Header(proto)),
            FieldSource::PayloadEthertype => Some(Source::PayloadEthertype),
            FieldSource::Ipv6UpperProtocol => Some(Source::Ipv6UpperProtocol),
            FieldSource::PacketLength => None,
        }
    }

    /// Sources that are always present when this one is.
    pub fn implied(self) -> &'static [Source] {
        use Proto::*;
        match self {
            Source::Header(Eth) => &[],
            Source::Header(Vlan | Arp | Ipv4 | Ipv6) | Source::PayloadEthertype => &[Source::Header(Eth)],
            Source::Header(Tcp | Udp | Sctp) => &[Source::Header(Eth), Source::PayloadEthertype],
            Source::Header(Icmp) => &[Source::Header(Eth), Source::PayloadEthertype, Source::Header(Ipv4)],
            Source::Header(Icmp6) | Source::Ipv6UpperProtocol => {
                &[Source::Header(Eth), Source::PayloadEthertype, Source::Header(Ipv6)]
            }
        }
    }

    /// Whether two sources can never be present together (TCP and UDP, IPv4 and IPv6).
    pub(crate) fn excludes(self, other: Source) -> bool {
        match (self, other) {
            (Source::Header(a), Source::Header(b)) if a != b => {
                let exclusive_layer = a.layer() == b.layer()
                    && matches!(a.layer(), crate::fields::Layer::Network | crate::fields::Layer::Transport);
                let arp_vs_transport = (a == Proto::Arp && b.layer() == crate::fields::Layer::Transport)
                    || (b == Proto::Arp && a.layer() == crate::fields::Layer::Transport);
                exclusive_layer || arp_vs_transport
            }
            (Source::Ipv6UpperProtocol, Source::Header(p)) | (Source::Header(p), Source::Ipv6UpperProtocol) => {
                matches!(p, Proto::Ipv4 | Proto::Arp | Proto::Icmp)
            }
            _ => false,
        }
    }

    /// A short name for listings.
    pub fn name(self) -> &'static str {
        match self {
            Source::Header(proto) => proto.name(),
            Source::PayloadEthertype => "eth.type",
            Source::Ipv6UpperProtocol => "ipv6.proto",
        }
    }
}

/// A node of the condition DAG.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A constant truth value.
    Const(bool),
    /// The source is present in this packet.
    Present(Source),
    /// `(field & mask) OP constant`, unsigned; only meaningful where the field's source
    /// is present (the lowering always puts a `Present` guard before it).
    Compare {
        /// The field read.
        field: Field,
        /// Bits kept before comparing.
        mask: Option<u128>,
        /// The operator.
        op: CmpOp,
        /// The constant.
        value: u128,
    },
    /// `(field & mask)` is in the set; guarded like `Compare`.
    InSet {
        /// The field read.
        field: Field,
        /// Bits kept before comparing.
        mask: Option<u128>,
        /// The set.
        set: SetRef,
    },
    /// `(field & mask)` is in the current contents of [`Filter::dynamic_sets`]`[set]`,
    /// a kernel map changed at run time: opaque to every optimization; guarded like
    /// `Compare`.
    InDynamic {
        /// The field read.
        field: Field,
        /// Bits kept before looking up.
        mask: Option<u128>,
        /// Index of the dynamic set.
        set: u32,
    },
    /// Negation.
    Not(NodeId),
    /// Conjunction, left to right.
    All(Vec<NodeId>),
    /// Disjunction, left to right.
    Any(Vec<NodeId>),
    /// libpcap's verdict under [`Filter::pcaps`]`[index]`: a boolean the prologue
    /// computes from the frame (no guard: it reads the frame itself).
    Pcap(u32),
    /// The rate limit [`Filter::limits`]`[index]`: takes a token from the packet's bucket
    /// (stateful). Only ever the last operand of a rule's top-level `All` (or the whole
    /// condition), so it runs only when the rest of the rule held.
    Limit(u32),
}

/// A rule in the IR.
#[derive(Clone, Debug)]
pub struct FilterRule {
    /// The rule's name.
    pub name: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// Its condition.
    pub condition: NodeId,
    /// `log [BYTES]`: the packets it decides send events (after its rate limit).
    pub log: Option<crate::program::log::Log>,
    /// The rule in the source.
    pub span: Span,
}

/// The whole filter.
#[derive(Clone, Debug)]
pub struct Filter {
    /// Attach point.
    pub hook: Hook,
    /// Verdict when no rule matches.
    pub default: Verdict,
    /// Rules in order (all of them: a rule that can never match keeps its counter).
    pub rules: Vec<FilterRule>,
    /// The node arena.
    pub nodes: Vec<Node>,
    /// Value sets.
    pub sets: Vec<ValueSet>,
    /// pcap filters that [`Node::Pcap`] refers to.
    pub pcaps: Vec<crate::program::pcap::PcapFilter>,
    /// Dynamic sets that [`Node::InDynamic`] refers to.
    pub dynamic_sets: Vec<crate::program::DynamicSet>,
    /// Rate limits that [`Node::Limit`] refers to.
    pub limits: Vec<crate::program::limit::Limit>,
    interned: crate::hashing::LookupMap<Node, NodeId>,
}

impl Filter {
    /// The node behind an id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// The set behind a reference.
    pub fn set(&self, set: SetRef) -> &ValueSet {
        &self.sets[set.0 as usize]
    }

    /// Adds a node, or finds the identical one already there.
    pub(crate) fn intern(&mut self, node: Node) -> NodeId {
        // One hash per call: the entry is looked up once, and only a new node is cloned.
        match self.interned.entry(node) {
            std::collections::hash_map::Entry::Occupied(entry) => *entry.get(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let id = NodeId(self.nodes.len() as u32);
                self.nodes.push(entry.key().clone());
                entry.insert(id);
                id
            }
        }
    }

    /// Every field some reachable test reads, and every source some guard tests.
    pub fn uses(&self) -> Uses {
        let mut uses = Uses::default();
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = self.rules.iter().map(|rule| rule.condition).collect();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.0 as usize], true) {
                continue;
            }
            match self.node(id) {
                Node::Const(_) => {}
                Node::Pcap(index) => uses.pcaps.push(*index),
                Node::Limit(index) => {
                    let limit = &self.limits[*index as usize];
                    uses.fields.extend(limit.key.iter().copied());
                    if limit.unit == crate::program::limit::Unit::Bytes {
                        uses.fields.push(Field::PktLen);
                    }
                    uses.limits.push(*index);
                }
                Node::Present(source) => uses.sources.push(*source),
                Node::Compare { field, .. } | Node::InSet { field, .. } => uses.fields.push(*field),
                Node::InDynamic { field, .. } => {
                    uses.fields.push(*field);
                    uses.dynamic = true;
                }
                Node::Not(inner) => stack.push(*inner),
                Node::All(items) | Node::Any(items) => stack.extend(items.iter().copied()),
            }
        }
        uses.fields.sort_unstable();
        uses.fields.dedup();
        uses.sources.sort_unstable();
        uses.sources.dedup();
        uses.pcaps.sort_unstable();
        uses.pcaps.dedup();
        uses.logs = self.rules.iter().any(|rule| rule.log.is_some());
        uses.limits.extend(self.rules.iter().filter_map(|rule| rule.log.map(|log| log.limit.0)));
        uses.limits.sort_unstable();
        uses.limits.dedup();
        if !uses.limits.is_empty() {
            uses.limit_scratch = crate::program::limit::scratch_bytes(&self.limits);
        }
        if uses.dynamic {
            let key = crate::program::dynamic::MAX_MAP_KEY_SIZE as i16;
            uses.limit_scratch = uses.limit_scratch.max(key);
        }
        if uses.logs {
            // The context pointer, spilled at entry for the log code in the counter tail,
            // in an 8-aligned slot above the rest of the area.
            uses.limit_scratch = (uses.limit_scratch + 7) / 8 * 8 + 8;
        }
        uses
    }
}

/// What a filter reads from packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uses {
    /// Fields read by tests, sorted.
    pub fields: Vec<Field>,
    /// Sources whose presence is tested, sorted.
    pub sources: Vec<Source>,
    /// pcap filters whose verdicts are tested, sorted.
    pub pcaps: Vec<u32>,
    /// Rate limits some rule reaches, sorted.
    pub limits: Vec<u32>,
    /// Whether some rule tests a dynamic set (a map lookup with a key on the stack).
    pub dynamic: bool,
    /// Stack bytes the limits need for key, bucket and time, or the dynamic sets for
    /// their key, whichever is larger (0 without either): the two never run at once; plus 8
    /// for the context pointer when some rule logs.
    pub limit_scratch: i16,
    /// Some rule logs its matches.
    pub logs: bool,
}

/// Lowers a checked program to the IR and optimizes it.
pub fn build(program: &Program) -> Filter {
    let mut filter = lower::lower(program);
    opt::optimize(&mut filter);
    filter
}
