//! Rule dispatch: the filter's rules in, a plan out — runs of consecutive rules that
//! each require one field to lie in a set of values, and for each run the value
//! segments with the rules a packet in that segment can match.
//!
//! A run compiles to one decision tree over the field (log₂ of the segment count
//! compares) that jumps straight to a block holding only those rules, in their order;
//! a packet whose value no rule of the run accepts skips the whole run. First-match
//! order is kept: within a run, a block is the run's rules filtered by the segment, and
//! runs and single rules follow each other as in the source.

use std::collections::{BTreeSet, HashMap};

use super::layout::Layout;
use crate::bpf::{Insn, JmpOp, Label, Operand, ProgramBuilder, Reg};
use crate::fields::Field;
use crate::ir::{Filter, Node, NodeId};
use crate::program::CmpOp;

/// Shortest run worth a decision tree.
const MIN_RUN: usize = 8;
/// Longest run: the tree's jumps over its blocks must stay within 16-bit offsets.
const MAX_RUN: usize = 1_000;
/// Largest run by [`rule_weight`] (about 8 instructions a unit): keeps a run's code,
/// with rules repeated in several blocks, well within a 16-bit jump.
const MAX_RUN_WEIGHT: usize = 800;
/// Rules may be repeated in several blocks (a broad prefix overlaps narrow ones); past
/// this many rule copies per rule of the run, the run stays a linear chain.
const MAX_COPIES_PER_RULE: usize = 4;

/// A step of the rule list: one rule, or a dispatched run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The rule with this index, tested on its own.
    Rule(usize),
    /// Consecutive rules dispatched on one field.
    Run(Run),
}

/// Consecutive rules that all test `field` against a set of values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The field every rule of the run requires to lie in its values.
    pub field: Field,
    /// Disjoint, sorted value segments and the block each leads to.
    pub segments: Vec<(u32, u32, usize)>,
    /// Per block: the indices of the rules a packet in its segments can match, in order.
    pub blocks: Vec<Vec<usize>>,
}

/// What a rule requires of one field: the field and the intervals its value must lie in.
type DispatchKey = Option<(Field, Vec<(u32, u32)>)>;

/// Splits the rule list into single rules and dispatched runs.
pub fn plan(filter: &Filter, layout: &Layout) -> Vec<Step> {
    let keys: Vec<DispatchKey> = filter.rules.iter().map(|rule| dispatch_key(filter, layout, rule.condition)).collect();
    let mut steps = Vec::new();
    let mut index = 0;
    while index < keys.len() {
        let Some((field, _)) = &keys[index] else {
            steps.push(Step::Rule(index));
            index += 1;
            continue;
        };
        let mut end = index + 1;
        let mut weight = rule_weight(filter, filter.rules[index].condition);
        while end < keys.len() && end - index < MAX_RUN && keys[end].as_ref().is_some_and(|(other, _)| other == field) {
            weight += rule_weight(filter, filter.rules[end].condition);
            if weight > MAX_RUN_WEIGHT {
                break;
            }
            end += 1;
        }
        match (end - index >= MIN_RUN).then(|| build_run(*field, index, &keys[index..end])).flatten() {
            Some(run) => steps.push(Step::Run(run)),
            None => steps.extend((index..end).map(Step::Rule)),
        }
        index = end;
    }
    steps
}

/// A rough size of a rule's code: its condition's nodes, sets counted by intervals.
fn rule_weight(filter: &Filter, condition: NodeId) -> usize {
    let mut weight = 0;
    let mut pending = vec![condition];
    while let Some(id) = pending.pop() {
        weight += 1;
        match filter.node(id) {
            Node::InSet { set, .. } => weight += filter.set(*set).intervals.len(),
            Node::Not(inner) => pending.push(*inner),
            Node::All(items) | Node::Any(items) => pending.extend(items.iter().copied()),
            _ => {}
        }
    }
    weight
}

/// The field and value intervals a rule's condition requires, when it has the shape
/// `all(..., field in SET or field == V, ...)` on a one-word field without a mask.
fn dispatch_key(filter: &Filter, layout: &Layout, condition: NodeId) -> DispatchKey {
    let items: Vec<NodeId> = match filter.node(condition) {
        Node::All(items) => items.clone(),
        _ => vec![condition],
    };
    items.iter().find_map(|item| {
        let (field, intervals) = match filter.node(*item) {
            Node::Compare { field, mask: None, op: CmpOp::Eq, value } => (*field, vec![(*value, *value)]),
            Node::InSet { field, mask: None, set } => (*field, filter.set(*set).intervals.clone()),
            _ => return None,
        };
        let one_word = layout.words(field).len() == 1 && intervals.iter().all(|&(_, high)| high <= u32::MAX as u128);
        one_word.then(|| (field, intervals.iter().map(|&(low, high)| (low as u32, high as u32)).collect()))
    })
}

/// Sweeps the run's intervals into segments with the rules that cover each.
fn build_run(field: Field, first: usize, keys: &[DispatchKey]) -> Option<Run> {
    // Boundary events: at `low` a rule starts covering, after `high` it stops.
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (offset, key) in keys.iter().enumerate() {
        for &(low, high) in &key.as_ref()?.1 {
            events.push((u64::from(low), true, first + offset));
            events.push((u64::from(high) + 1, false, first + offset));
        }
    }
    events.sort_unstable();
    let mut active: BTreeSet<usize> = BTreeSet::new();
    let mut counts: HashMap<usize, usize> = HashMap::new();
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    let mut block_of: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut segments: Vec<(u32, u32, usize)> = Vec::new();
    let mut copies = 0;
    let mut position = 0;
    while position < events.len() {
        let at = events[position].0;
        while position < events.len() && events[position].0 == at {
            let (_, starts, rule) = events[position];
            let count = counts.entry(rule).or_insert(0);
            if starts {
                *count += 1;
                active.insert(rule);
            } else {
                *count -= 1;
                if *count == 0 {
                    active.remove(&rule);
                }
            }
            position += 1;
        }
        let Some(&(next, _, _)) = events.get(position) else { break };
        if active.is_empty() || at > u64::from(u32::MAX) {
            continue;
        }
        let rules: Vec<usize> = active.iter().copied().collect();
        let block = match block_of.get(&rules) {
            Some(block) => *block,
            None => {
                copies += rules.len();
                blocks.push(rules.clone());
                block_of.insert(rules, blocks.len() - 1);
                blocks.len() - 1
            }
        };
        let (low, high) = (at as u32, (next - 1).min(u64::from(u32::MAX)) as u32);
        match segments.last_mut() {
            Some(last) if last.2 == block && u64::from(last.1) + 1 == u64::from(low) => last.1 = high,
            _ => segments.push((low, high, block)),
        }
    }
    (copies <= MAX_COPIES_PER_RULE * keys.len()).then_some(Run { field, segments, blocks })
}

/// Most segments tested one after the other; larger trees split in halves first.
const LINEAR_SEGMENTS: usize = 4;

/// Jumps to `targets[block]` for the segment holding the value in `reg`, to `miss` when
/// no segment holds it: a balanced binary search over the sorted segments.
pub(crate) fn emit_tree(
    b: &mut ProgramBuilder,
    reg: Reg,
    segments: &[(u32, u32, usize)],
    targets: &[Label],
    miss: Label,
) {
    if segments.len() > LINEAR_SEGMENTS {
        let middle = segments.len() / 2;
        let upper = b.new_label();
        b.emit(Insn::jump32(JmpOp::Ge, reg, Operand::imm_u32(segments[middle].0), upper));
        emit_tree(b, reg, &segments[..middle], targets, miss);
        b.bind(upper);
        emit_tree(b, reg, &segments[middle..], targets, miss);
        return;
    }
    for &(low, high, block) in segments {
        if low == high {
            b.emit(Insn::jump32(JmpOp::Eq, reg, Operand::imm_u32(low), targets[block]));
        } else {
            if low > 0 {
                b.emit(Insn::jump32(JmpOp::Lt, reg, Operand::imm_u32(low), miss));
            }
            b.emit(Insn::jump32(JmpOp::Le, reg, Operand::imm_u32(high), targets[block]));
        }
    }
    b.emit(Insn::Ja { target: miss });
}
