//! The table-driven classifier: a rule set whose rules are conjunctions of interval
//! tests in, a [`Table`] (the classifier's decision diagrams as arrays of nodes and
//! candidate rules) and the small fixed program that walks it out.
//!
//! ```text
//!  r6 = N; r7 = default                          (best match so far)
//!  per diagram:  r8 = root
//!    level 0..D: r0 = &nodes[r8]; leaf (mask 0)? goto candidates
//!                r1 = word[select] & mask; r8 = r1 < threshold ? left : right
//!    candidates: r8 = first; r9 = count
//!    slot 0..L:  if r9 <= i: done; r0 = &rules[r8 + i]; (several diagrams: rule >= r6: done)
//!                absent mask & needed absent bits, then lo <= word[k] <= hi for every
//!                field k, else the next slot; all hold: r6 = rule, r7 = its code; done
//!    done:       (several diagrams) r6, r7 pass through unaligned stack words
//!  the counter tail counts r6 and returns r7
//! ```
//!
//! The nodes are `codegen::classifier`'s plan, each field node's pieces unfolded into a
//! binary search of threshold nodes and each header-presence node a test of one absent
//! bit; a leaf's rules (in rule order) sit back to back in the rule array, each with its
//! whole condition as intervals of the one-word fields the table tests, so a leaf tests
//! every candidate in full and the diagram only prunes. The walk is unrolled to the
//! deepest path (shallower leaves jump out early) and the candidate loop to the largest
//! leaf: straight-line code the kernel verifier walks once per level and slot (registers
//! the next level reads come from map values it does not know, so the paths of a level
//! join), with array lookups the kernel inlines.
//!
//! Only rule sets whose every rule is a conjunction of header-presence tests and
//! interval tests (`==`, `<`, `<=`, `>`, `>=`, a one-interval `in`) of one-word fields
//! without a mask can be tables ([`build`] says why not otherwise): IPv4 5-tuples, not
//! IPv6 addresses, masks, `or`, `not`, `!=`, pcap atoms, dynamic sets or rate limits.

use super::classifier::{self, Diagram, TreeNode};
use super::layout::{split_words, Layout, KEY_SLOT, MASK_SLOT};
use super::{Ending, Tail};
use crate::bpf::opcode::HELPER_MAP_LOOKUP;
use crate::bpf::{AluOp, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::hashing::FastMap;
use crate::ir::{Filter, Node, NodeId};
use crate::program::CmpOp;

/// Bytes of the values of pfc's other maps (counters, log statistics): what pfc's
/// verifier assumes for a map `Program::map_values` does not list.
pub const OTHER_MAP_VALUES: u32 = 16;
/// Bytes of a node entry (`struct pfc_cls_node`).
pub const NODE_SIZE: u32 = 32;
/// Node fields: which word is tested (a field's position, or the fields' count for the
/// absent mask), the mask applied to it (0: a leaf), the threshold (a word at or above
/// it goes right), the two children, and a leaf's first rule entry and entry count.
const NODE_SELECT: i16 = 0;
const NODE_MASK: i16 = 4;
const NODE_THRESHOLD: i16 = 8;
const NODE_LEFT: i16 = 12;
const NODE_RIGHT: i16 = 16;
const NODE_FIRST: i16 = 20;
const NODE_COUNT: i16 = 24;
/// Rule entry fields (`struct pfc_cls_rule`): the rule's index, its return code, the
/// absent-mask bits that must be clear, then per field `lo`, `hi` from [`RULE_BOUNDS`].
const RULE_INDEX: i16 = 0;
const RULE_CODE: i16 = 4;
const RULE_ABSENT: i16 = 8;
const RULE_BOUNDS: i16 = 16;

/// Deepest walk unrolled (levels of threshold and presence nodes).
const MAX_DEPTH: usize = 96;
/// Most candidates one leaf may hold (each costs an unrolled slot in every packet's
/// worst case).
const MAX_LEAF: usize = 256;
/// Most fields a rule entry holds.
const MAX_FIELDS: usize = 24;
/// Most bytes of both arrays together (the kernel preallocates arrays; the VM caps its
/// maps at 256 MiB).
const MAX_BYTES: u64 = 192 << 20;

/// The table form of a rule set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The one-word fields the rule entries bound, in entry order; a node selects one by
    /// its position, or the absent mask by `fields.len()`.
    pub fields: Vec<Field>,
    /// The node array.
    pub nodes: Vec<NodeEntry>,
    /// The rule array: every leaf's candidates, back to back.
    pub rules: Vec<RuleEntry>,
    /// Per diagram: its root, the levels a walk takes at most, the most candidates of a leaf.
    pub diagrams: Vec<DiagramShape>,
}

/// Where a diagram starts and how far its walk goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiagramShape {
    /// The root's index in [`Table::nodes`].
    pub root: u32,
    /// Inner nodes on the longest path from the root to a leaf.
    pub depth: usize,
    /// Most candidates in one of its leaves.
    pub widest: usize,
}

/// One node: an inner node tests `(word[select] & mask) >= threshold` and goes to
/// `right` if so, else `left`; a leaf (`mask` 0) names `count` rule entries from `first`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeEntry {
    /// The word tested: a field's position in [`Table::fields`], or the absent mask.
    pub select: u32,
    /// Bits of the word kept (0 for a leaf).
    pub mask: u32,
    /// Values at or above go right.
    pub threshold: u32,
    /// Child below the threshold.
    pub left: u32,
    /// Child at or above it.
    pub right: u32,
    /// A leaf's first rule entry.
    pub first: u32,
    /// A leaf's rule entries.
    pub count: u32,
}

/// One candidate: a rule's whole condition as intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleEntry {
    /// The rule's index (its counter).
    pub rule: u32,
    /// The hook's return code for its verdict.
    pub code: u32,
    /// Absent-mask bits that must all be clear (the headers the rule needs).
    pub absent: u32,
    /// Per field of [`Table::fields`]: the word must lie in `lo..=hi` (empty when `lo > hi`).
    pub bounds: Vec<(u32, u32)>,
}

/// Why a rule set has no table form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotTabular {
    /// A rule tests something a table cannot: the rule's index and what.
    #[error("rule {rule} tests {what}, which a classifier table cannot express")]
    Condition {
        /// The rule's index.
        rule: usize,
        /// What it tests.
        what: &'static str,
    },
    /// Too few rules for a classifier.
    #[error("fewer than {} rules", classifier::MIN_RULES)]
    TooSmall,
    /// The values the rules read do not fit in the stack.
    #[error("{0}")]
    StackFull(#[from] super::layout::StackFull),
    /// The table would exceed a limit of the walker: what, how much, the most allowed.
    #[error("the classifier table's {what} would be {value}; at most {most}")]
    TooLarge {
        /// What grew too large.
        what: &'static str,
        /// Its size.
        value: u64,
        /// The limit.
        most: u64,
    },
}

/// A rule's condition as a table tests it: required absent bits and per-field bounds;
/// `never` when some test holds for no value (the rule is no leaf's candidate).
struct Conjunction {
    absent: u32,
    bounds: Vec<(Field, (u32, u32))>,
    never: bool,
}

/// Builds the table of a rule set, or says why it has none.
pub fn build(filter: &Filter) -> Result<Table, NotTabular> {
    let planned = std::cell::OnceCell::new();
    build_with(filter, || planned.get_or_init(|| super::plan_classifier(filter)).as_ref())
}

/// As [`build`], with the classifier plan from `plan` (called only once the rules were
/// found tabular, so a set that is not costs no plan).
pub fn build_with<'p>(
    filter: &Filter,
    plan: impl FnOnce() -> Option<&'p classifier::Classifier>,
) -> Result<Table, NotTabular> {
    if filter.rules.len() < classifier::MIN_RULES {
        return Err(NotTabular::TooSmall);
    }
    let layout = Layout::new(&filter.uses(), true)?;
    let mut conjunctions = Vec::with_capacity(filter.rules.len());
    for (index, rule) in filter.rules.iter().enumerate() {
        conjunctions.push(
            conjunction(filter, &layout, rule.condition).map_err(|what| NotTabular::Condition { rule: index, what })?,
        );
    }
    let mut fields: Vec<Field> = conjunctions.iter().flat_map(|c| c.bounds.iter().map(|(field, _)| *field)).collect();
    let plan = plan().ok_or(NotTabular::TooSmall)?;
    for diagram in &plan.diagrams {
        for node in &diagram.nodes {
            if let TreeNode::Field { field, .. } = node {
                fields.push(*field);
            }
        }
    }
    fields.sort_unstable();
    fields.dedup();
    if fields.len() > MAX_FIELDS {
        return Err(NotTabular::TooLarge { what: "field count", value: fields.len() as u64, most: MAX_FIELDS as u64 });
    }
    let entries: Vec<Option<RuleEntry>> = conjunctions
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let rule = &filter.rules[index];
            let bounds = fields
                .iter()
                .map(|field| c.bounds.iter().find(|(f, _)| f == field).map_or((0, u32::MAX), |(_, b)| *b))
                .collect();
            let code = filter.hook.return_code(rule.verdict) as u32;
            (!c.never).then_some(RuleEntry { rule: index as u32, code, absent: c.absent, bounds })
        })
        .collect();
    let mut builder = TableBuilder { fields: &fields, entries: &entries, table: Vec::new(), rules: Vec::new() };
    let mut diagrams = Vec::new();
    for diagram in &plan.diagrams {
        diagrams.push(builder.diagram(diagram)?);
    }
    let (nodes, rules) = (builder.table, builder.rules);
    let table = Table { fields, nodes, rules, diagrams };
    let bytes =
        table.nodes.len() as u64 * u64::from(NODE_SIZE) + table.rules.len() as u64 * u64::from(table.rule_size());
    if bytes > MAX_BYTES {
        return Err(NotTabular::TooLarge { what: "size in bytes", value: bytes, most: MAX_BYTES });
    }
    Ok(table)
}

/// A rule's condition as required absent bits and one interval per field, or what in it
/// a table cannot test.
fn conjunction(filter: &Filter, layout: &Layout, condition: NodeId) -> Result<Conjunction, &'static str> {
    let items: Vec<NodeId> = match filter.node(condition) {
        Node::All(items) => items.clone(),
        _ => vec![condition],
    };
    let mut conjunction = Conjunction { absent: 0, bounds: Vec::new(), never: false };
    for item in items {
        let (field, interval) = match filter.node(item) {
            Node::Const(true) => continue,
            Node::Const(false) => {
                conjunction.never = true;
                continue;
            }
            Node::Present(source) => {
                conjunction.absent |= source.bit();
                continue;
            }
            Node::Compare { field, mask: None, op, value } => {
                let value = *value;
                let interval = match op {
                    CmpOp::Eq => (value, value),
                    CmpOp::Lt if value == 0 => (1, 0),
                    CmpOp::Lt => (0, value - 1),
                    CmpOp::Le => (0, value),
                    CmpOp::Gt if value == u128::MAX => (1, 0),
                    CmpOp::Gt => (value + 1, u128::MAX),
                    CmpOp::Ge => (value, u128::MAX),
                    CmpOp::Ne => return Err("`!=`"),
                };
                (*field, interval)
            }
            Node::InSet { field, mask: None, set } => match filter.set(*set).intervals.as_slice() {
                [] => (*field, (1, 0)),
                [only] => (*field, *only),
                _ => return Err("a set of several intervals"),
            },
            Node::Compare { .. } | Node::InSet { .. } => return Err("a masked field"),
            Node::InDynamic { .. } => return Err("a dynamic set"),
            Node::Pcap(_) => return Err("a pcap atom"),
            Node::Limit(_) => return Err("a rate limit"),
            Node::Not(_) => return Err("`not`"),
            Node::Any(_) => return Err("`or`"),
            Node::All(_) => return Err("a nested `and`"),
        };
        if layout.words(field).len() != 1 {
            return Err("a field wider than 32 bits");
        }
        let (low, high) = interval;
        if low > high || low > u128::from(u32::MAX) {
            conjunction.never = true;
            continue;
        }
        let word = |value: u128| split_words(field, value.min(u128::from(u32::MAX)))[0];
        let (low, high) = (word(low), word(high));
        match conjunction.bounds.iter_mut().find(|(f, _)| *f == field) {
            Some((_, bounds)) => *bounds = (bounds.0.max(low), bounds.1.min(high)),
            None => conjunction.bounds.push((field, (low, high))),
        }
    }
    conjunction.never |= conjunction.bounds.iter().any(|(_, (low, high))| low > high);
    Ok(conjunction)
}

/// Unfolds plan diagrams into node and rule entries.
struct TableBuilder<'a> {
    fields: &'a [Field],
    entries: &'a [Option<RuleEntry>],
    table: Vec<NodeEntry>,
    rules: Vec<RuleEntry>,
}

/// Per plan node of one diagram: its table node and the inner levels below it.
type Done = FastMap<usize, (u32, usize)>;

impl TableBuilder<'_> {
    fn diagram(&mut self, diagram: &Diagram) -> Result<DiagramShape, NotTabular> {
        let mut done = Done::default();
        let mut leaves: FastMap<Vec<usize>, u32> = FastMap::default();
        let mut widest = 0;
        // Children have smaller indices than their parents: build them first.
        for index in 0..diagram.nodes.len() {
            let entry = match &diagram.nodes[index] {
                TreeNode::Leaf(candidates) => {
                    let rules: Vec<usize> =
                        candidates.iter().map(|(rule, _)| *rule).filter(|&rule| self.entries[rule].is_some()).collect();
                    widest = widest.max(rules.len());
                    if rules.len() > MAX_LEAF {
                        let value = rules.len() as u64;
                        return Err(NotTabular::TooLarge { what: "largest leaf", value, most: MAX_LEAF as u64 });
                    }
                    let first = *leaves.entry(rules.clone()).or_insert_with(|| {
                        let first = self.rules.len() as u32;
                        self.rules.extend(rules.iter().filter_map(|&rule| self.entries[rule].clone()));
                        first
                    });
                    let node = self.push(NodeEntry { first, count: rules.len() as u32, ..NodeEntry::default() });
                    (node, 0)
                }
                TreeNode::Source { source, present, absent } => {
                    let (left, left_depth) = done[present];
                    let (right, right_depth) = done[absent];
                    let select = self.fields.len() as u32;
                    let node =
                        NodeEntry { select, mask: source.bit(), threshold: 1, left, right, ..NodeEntry::default() };
                    (self.push(node), 1 + left_depth.max(right_depth))
                }
                TreeNode::Field { field, pieces, children } => {
                    let select = self.fields.iter().position(|f| f == field).unwrap_or(0) as u32;
                    let targets: Vec<(u32, u32, (u32, usize))> =
                        pieces.iter().map(|&(low, _, child)| (low, 0, done[&children[child]])).collect();
                    self.search(select, &targets)
                }
            };
            done.insert(index, entry);
        }
        let (root, depth) = match done.get(&diagram.root) {
            Some(&root) => root,
            None => (self.push(NodeEntry::default()), 0), // no nodes: an empty leaf
        };
        if depth > MAX_DEPTH {
            return Err(NotTabular::TooLarge { what: "walk depth", value: depth as u64, most: MAX_DEPTH as u64 });
        }
        Ok(DiagramShape { root, depth, widest })
    }

    /// Threshold nodes searching the pieces (low end, unused, (child, its depth)).
    fn search(&mut self, select: u32, pieces: &[(u32, u32, (u32, usize))]) -> (u32, usize) {
        if let [only] = pieces {
            return only.2;
        }
        let middle = pieces.len() / 2;
        let (left, left_depth) = self.search(select, &pieces[..middle]);
        let (right, right_depth) = self.search(select, &pieces[middle..]);
        let threshold = pieces[middle].0;
        let node = NodeEntry { select, mask: u32::MAX, threshold, left, right, ..NodeEntry::default() };
        (self.push(node), 1 + left_depth.max(right_depth))
    }

    fn push(&mut self, node: NodeEntry) -> u32 {
        self.table.push(node);
        self.table.len() as u32 - 1
    }
}

impl Table {
    /// Bytes of a rule entry.
    pub fn rule_size(&self) -> u32 {
        RULE_BOUNDS as u32 + 8 * self.fields.len() as u32
    }

    /// The node array's values, back to back (little-endian, as the kernel reads them).
    pub fn node_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.nodes.len() * NODE_SIZE as usize);
        for node in &self.nodes {
            for word in [node.select, node.mask, node.threshold, node.left, node.right, node.first, node.count, 0] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        bytes
    }

    /// The rule array's values, back to back.
    pub fn rule_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.rules.len() * self.rule_size() as usize);
        for entry in &self.rules {
            for word in [entry.rule, entry.code, entry.absent, 0] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            for (low, high) in &entry.bounds {
                bytes.extend_from_slice(&low.to_le_bytes());
                bytes.extend_from_slice(&high.to_le_bytes());
            }
        }
        bytes
    }
}

/// Index of the node array among the object's maps: after the counters and the log maps
/// (a table's rule set has no rate limits or dynamic sets); the rule array follows it.
pub fn nodes_map_index(counters: bool, logs: bool) -> u32 {
    u32::from(counters) + if logs { 2 } else { 0 }
}

/// Emits the walker over `table`, ending as `tail` says (the counter tail follows).
pub(super) fn emit(b: &mut ProgramBuilder, filter: &Filter, layout: &Layout, table: &Table, tail: &Tail) {
    let logs = filter.rules.iter().any(|rule| rule.log.is_some());
    let nodes_map = nodes_map_index(tail.ending == Ending::Count, logs);
    let walker = Walker { layout, table, nodes_map, rules_map: nodes_map + 1, grouped: table.diagrams.len() > 1 };
    let default_code = filter.hook.return_code(filter.default);
    b.comment(format!(
        "classifier table: {} diagrams, {} nodes, {} rule entries over {} fields",
        table.diagrams.len(),
        table.nodes.len(),
        table.rules.len(),
        table.fields.len()
    ));
    b.emit(Insn::alu32(AluOp::Mov, Reg::R6, Operand::imm_u32(filter.rules.len() as u32)));
    b.emit(Insn::alu32(AluOp::Mov, Reg::R7, default_code));
    for (number, shape) in table.diagrams.iter().enumerate() {
        walker.diagram(b, number, shape);
    }
    match tail.ending {
        Ending::Count => {} // the counter tail follows
        Ending::ExitTail => b.emit(Insn::mov64(Reg::R0, Reg::R7)),
        Ending::Return => {
            b.emit(Insn::mov64(Reg::R0, Reg::R7));
            b.emit(Insn::Exit);
        }
    }
}

struct Walker<'a> {
    layout: &'a Layout,
    table: &'a Table,
    nodes_map: u32,
    rules_map: u32,
    grouped: bool,
}

impl Walker<'_> {
    /// `r0 = &map[key]` through a stack key, or to `missing` when out of range (never).
    fn lookup(&self, b: &mut ProgramBuilder, map: u32, key: Reg, missing: Label) {
        b.emit(Insn::store(Size::W, Reg::R10, KEY_SLOT, key));
        b.emit(Insn::LoadMapIndex { dst: Reg::R1, map });
        b.emit(Insn::mov64(Reg::R2, Reg::R10));
        b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(KEY_SLOT)));
        b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
        b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, missing));
    }

    /// The selectors (field positions, then the absent mask) in the order the chain tests
    /// them: the most inner nodes first, so that the usual node ends the chain early.
    fn selector_order(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.table.fields.len() + 1];
        for node in self.table.nodes.iter().filter(|node| node.mask != 0) {
            if let Some(count) = counts.get_mut(node.select as usize) {
                *count += 1;
            }
        }
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by_key(|&select| (std::cmp::Reverse(counts[select]), select));
        order
    }

    /// The stack word of selector `select` (a field's first word, or the absent mask).
    fn word(&self, select: usize) -> i16 {
        match self.table.fields.get(select) {
            Some(field) => self.layout.words(*field)[0],
            None => MASK_SLOT,
        }
    }

    fn diagram(&self, b: &mut ProgramBuilder, number: usize, shape: &DiagramShape) {
        let done = b.new_label();
        let leaf = b.new_label();
        b.comment(format!("diagram {number}: walk at most {} levels from node {}", shape.depth, shape.root));
        b.emit(Insn::alu32(AluOp::Mov, Reg::R8, Operand::imm_u32(shape.root)));
        for level in 0..=shape.depth {
            self.lookup(b, self.nodes_map, Reg::R8, done);
            if level == shape.depth {
                break; // a leaf by now: the longest path has `depth` inner nodes
            }
            b.emit(Insn::load(Size::W, Reg::R3, Reg::R0, NODE_MASK));
            b.emit(Insn::jump32(JmpOp::Eq, Reg::R3, 0, leaf));
            b.emit(Insn::load(Size::W, Reg::R2, Reg::R0, NODE_SELECT));
            let have = b.new_label();
            let order = self.selector_order();
            for (position, &select) in order.iter().enumerate() {
                b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, self.word(select)));
                if position + 1 < order.len() {
                    b.emit(Insn::jump32(JmpOp::Eq, Reg::R2, Operand::imm_u32(select as u32), have));
                }
            }
            b.bind(have);
            b.emit(Insn::alu32(AluOp::And, Reg::R1, Reg::R3));
            b.emit(Insn::load(Size::W, Reg::R3, Reg::R0, NODE_THRESHOLD));
            b.emit(Insn::load(Size::W, Reg::R8, Reg::R0, NODE_LEFT));
            let next = b.new_label();
            b.emit(Insn::jump32(JmpOp::Lt, Reg::R1, Reg::R3, next));
            b.emit(Insn::load(Size::W, Reg::R8, Reg::R0, NODE_RIGHT));
            b.bind(next);
        }
        b.bind(leaf);
        b.comment(format!("diagram {number}: at most {} candidates, in rule order", shape.widest));
        b.emit(Insn::load(Size::W, Reg::R8, Reg::R0, NODE_FIRST));
        b.emit(Insn::load(Size::W, Reg::R9, Reg::R0, NODE_COUNT));
        let found = b.new_label();
        for slot in 0..shape.widest {
            let next = b.new_label();
            b.emit(Insn::jump32(JmpOp::Le, Reg::R9, Operand::imm_u32(slot as u32), done));
            b.emit(Insn::mov64(Reg::R1, Reg::R8));
            b.emit(Insn::alu64(AluOp::Add, Reg::R1, slot as i32));
            self.lookup(b, self.rules_map, Reg::R1, done);
            if self.grouped {
                // Candidates come in rule order: none from here on beats the best so far.
                b.emit(Insn::load(Size::W, Reg::R1, Reg::R0, RULE_INDEX));
                b.emit(Insn::jump32(JmpOp::Ge, Reg::R1, Reg::R6, done));
            }
            b.emit(Insn::load(Size::W, Reg::R1, Reg::R0, RULE_ABSENT));
            b.emit(Insn::load(Size::W, Reg::R2, Reg::R10, MASK_SLOT));
            b.emit(Insn::alu32(AluOp::And, Reg::R1, Reg::R2));
            b.emit(Insn::jump32(JmpOp::Ne, Reg::R1, 0, next));
            for (position, field) in self.table.fields.iter().enumerate() {
                let bound = RULE_BOUNDS + 8 * position as i16;
                b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, self.layout.words(*field)[0]));
                b.emit(Insn::load(Size::W, Reg::R2, Reg::R0, bound));
                b.emit(Insn::jump32(JmpOp::Lt, Reg::R1, Reg::R2, next));
                b.emit(Insn::load(Size::W, Reg::R2, Reg::R0, bound + 4));
                b.emit(Insn::jump32(JmpOp::Gt, Reg::R1, Reg::R2, next));
            }
            b.emit(Insn::Ja { target: found });
            b.bind(next);
        }
        b.emit(Insn::Ja { target: done });
        b.bind(found);
        b.emit(Insn::load(Size::W, Reg::R6, Reg::R0, RULE_INDEX));
        b.emit(Insn::load(Size::W, Reg::R7, Reg::R0, RULE_CODE));
        b.bind(done);
        if self.grouped {
            b.comment(format!("diagram {number} done: forget the best match's value"));
            b.emit(Insn::store(Size::W, Reg::R10, KEY_SLOT, Reg::R6));
            b.emit(Insn::load(Size::W, Reg::R6, Reg::R10, KEY_SLOT));
            b.emit(Insn::store(Size::W, Reg::R10, KEY_SLOT, Reg::R7));
            b.emit(Insn::load(Size::W, Reg::R7, Reg::R10, KEY_SLOT));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{build, NotTabular, NODE_SIZE};
    use crate::classbench::{self, Shape};

    fn filter(text: &str) -> crate::ir::Filter {
        let (program, diagnostics) = crate::frontend::check_source(text);
        let program = program.unwrap_or_else(|| panic!("{diagnostics:?}"));
        crate::ir::build(&program)
    }

    #[test]
    fn ipv4_shapes_become_tables_whose_arrays_encode_every_entry() {
        for shape in [Shape::Acl, Shape::Fw, Shape::Ipc, Shape::Block] {
            let table = build(&filter(&classbench::generate(shape, 500, 0, 11).text))
                .unwrap_or_else(|why| panic!("{}: {why}", shape.name()));
            assert!(table.diagrams.iter().all(|d| d.depth > 0 && d.widest > 0), "{}", shape.name());
            assert_eq!(table.node_bytes().len(), table.nodes.len() * NODE_SIZE as usize);
            assert_eq!(table.rule_bytes().len(), table.rules.len() * table.rule_size() as usize);
            let mut leaves = table.nodes.iter().filter(|node| node.mask == 0);
            assert!(leaves.all(|leaf| (leaf.first + leaf.count) as usize <= table.rules.len()), "{}", shape.name());
        }
    }

    #[test]
    fn rule_sets_a_table_cannot_express_say_which_rule_and_why() {
        let mut text = String::from("default pass\n");
        for port in 0..20 {
            text.push_str(&format!("rule r{port}: drop if tcp.dport == {}\n", 1000 + port));
        }
        let with = |line: &str| build(&filter(&format!("{text}{line}\n")));
        let why = |line: &str| match with(line) {
            Err(NotTabular::Condition { rule: 20, what }) => what,
            other => panic!("{line}: {other:?}"),
        };
        assert!(with("rule last: drop if udp.sport in 1..9 and ipv4.ttl > 3").is_ok());
        assert_eq!(why("rule last: drop if ipv6.src == ::1"), "a field wider than 32 bits");
        assert_eq!(why("rule last: drop if tcp.dport == 1 or udp.dport == 1"), "`or`");
        assert_eq!(why("rule last: drop if tcp.dport != 1"), "`!=`");
        assert_eq!(why("rule last: drop if tcp.flags & syn == syn"), "a masked field");
        assert_eq!(why("rule last: drop if tcp.dport in { 1, 5 }"), "a set of several intervals");
        let small = build(&filter("default pass\nrule a: drop if tcp\n"));
        assert_eq!(small, Err(NotTabular::TooSmall));
    }

    /// A rule no value can satisfy is no leaf's candidate.
    #[test]
    fn rules_that_can_never_match_are_left_out() {
        let mut text = String::from("default pass\n");
        for port in 0..20 {
            text.push_str(&format!("rule r{port}: drop if tcp.dport == {} and tcp.dport > 2000\n", 1000 + port));
        }
        let table = build(&filter(&text)).expect("a table");
        assert!(table.rules.is_empty(), "{:?}", table.rules);
    }
}
