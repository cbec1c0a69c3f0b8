//! Classifier code: a [`Classifier`] plan in, jumping code out.
//!
//! ```text
//!  one diagram:   node: r1 = word; binary search over the pieces -> child
//!                 leaf: rule a: if !cond goto next; r6 = a; r7 = verdict; goto tail
//!                       ... ; r6 = N; r7 = default; goto tail
//!  several:       w6 = N << 8 | default                      (best match so far)
//!                 per diagram, leaf: rule a: if w6 <= (a << 8 | 255) goto end;
//!                                           if cond { w6 = a << 8 | v; goto end }
//!                 end: r6 passes through an unaligned stack word (the verifier forgets
//!                 its value, so the next diagram is verified once, not per match)
//!                 after the last: r7 = w6 & 255 (the verdict); w6 >>= 8 (the rule)
//! ```
//!
//! Nodes are laid out parents first (every jump goes forward). Jumps that would cross
//! more than [`RELAY_AT`] slots go through relays: `goto` instructions placed between
//! nodes or rules, each in reach of the next, so no offset exceeds 16 bits whatever the
//! diagram's size.

use std::collections::VecDeque;

use super::classifier::{Classifier, Diagram, NodeIndex, TreeNode};
use super::conditions::Body;
use super::layout::KEY_SLOT;
use super::{decide, Ending, RuleEmitter};
use crate::bpf::{AluOp, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::ir::NodeId;

/// A pending jump older than this many slots gets a relay at the next safe point.
const RELAY_AT: usize = 16_000;
/// Pieces searched one after the other; more are halved first.
const LINEAR_PIECES: usize = 4;
/// The relay key of a diagram's end.
const END: NodeIndex = usize::MAX;
/// With several diagrams, r6 holds the best match so far as `rule << VERDICT_BITS |
/// return code`: one register to test, set and pass between diagrams.
const VERDICT_BITS: u32 = 8;

/// The best-match word of rule `index` with return code `code`.
fn best_match(index: usize, code: i32) -> u32 {
    debug_assert!((0..1 << VERDICT_BITS).contains(&code) && index < 1 << (32 - VERDICT_BITS));
    ((index as u32) << VERDICT_BITS) | code as u32
}

/// The largest best-match word that rule `index` does not beat.
fn worse_than(index: usize) -> u32 {
    best_match(index, (1 << VERDICT_BITS) - 1)
}

/// Labels of jump targets not emitted yet, with where their oldest jump is (also queued
/// in the order they were opened, which is by that position, so finding the due ones
/// does not scan every pending target).
struct Relays {
    /// Per node (the diagram's end last): its label and oldest jump, while pending.
    pending: Vec<Option<(Label, usize)>>,
    /// `(position, node)` in the order targets were opened; an entry is stale once its
    /// node was bound or relayed (its pending position differs).
    by_age: VecDeque<(usize, NodeIndex)>,
}

impl Relays {
    fn new(nodes: usize) -> Relays {
        Relays { pending: vec![None; nodes + 1], by_age: VecDeque::new() }
    }

    fn slot(&self, node: NodeIndex) -> usize {
        if node == END {
            self.pending.len() - 1
        } else {
            node
        }
    }

    fn target(&mut self, b: &mut ProgramBuilder, node: NodeIndex) -> Label {
        let slot = self.slot(node);
        if let Some((label, _)) = self.pending[slot] {
            return label;
        }
        let (label, position) = (b.new_label(), b.len());
        self.pending[slot] = Some((label, position));
        self.by_age.push_back((position, node));
        label
    }

    fn bind(&mut self, b: &mut ProgramBuilder, node: NodeIndex) {
        let slot = self.slot(node);
        if let Some((label, _)) = self.pending[slot].take() {
            b.bind(label);
        }
    }

    /// The oldest pending target's first jump, dropping stale entries.
    fn oldest(&mut self) -> Option<(usize, NodeIndex)> {
        while let Some(&(position, node)) = self.by_age.front() {
            if matches!(self.pending[self.slot(node)], Some((_, first)) if first == position) {
                return Some((position, node));
            }
            self.by_age.pop_front();
        }
        None
    }

    fn due(&mut self, b: &ProgramBuilder) -> bool {
        self.oldest().is_some_and(|(first, _)| b.len() - first > RELAY_AT)
    }

    /// At a point nothing falls through to: a relay for every old pending target.
    fn relay(&mut self, b: &mut ProgramBuilder) {
        let now = b.len();
        let mut due: Vec<NodeIndex> = Vec::new();
        while let Some((first, node)) = self.oldest() {
            if now - first <= RELAY_AT {
                break;
            }
            self.by_age.pop_front();
            due.push(node);
        }
        if due.is_empty() {
            return;
        }
        due.sort_unstable();
        for node in due {
            let slot = self.slot(node);
            let Some((label, _)) = self.pending[slot] else { continue };
            b.bind(label);
            let next = b.new_label();
            let position = b.len();
            b.emit(Insn::Ja { target: next });
            self.pending[slot] = Some((next, position));
            self.by_age.push_back((position, node));
        }
    }

    /// Between two pieces of straight-line code: relays behind a jump over them.
    fn relay_inline(&mut self, b: &mut ProgramBuilder) {
        if self.due(b) {
            let over = b.new_label();
            b.emit(Insn::Ja { target: over });
            self.relay(b);
            b.bind(over);
        }
    }
}

impl RuleEmitter<'_, '_> {
    /// Emits the whole rule list as the classifier.
    pub(super) fn classifier(&mut self, b: &mut ProgramBuilder, classifier: &Classifier) {
        let grouped = classifier.diagrams.len() > 1;
        let rules = self.filter.rules.len();
        let default_code = self.filter.hook.return_code(self.filter.default);
        if grouped {
            b.comment(format!("classifier: {} diagrams, the lowest matching rule wins", classifier.diagrams.len()));
            b.emit(Insn::alu32(AluOp::Mov, Reg::R6, Operand::imm_u32(best_match(rules, default_code))));
        } else {
            b.comment("classifier: one diagram");
        }
        for (number, diagram) in classifier.diagrams.iter().enumerate() {
            let mut relays = Relays::new(diagram.nodes.len());
            self.diagram(b, diagram, number, grouped, &mut relays);
            if grouped {
                relays.bind(b, END);
                b.comment(format!("diagram {number} done: forget the best match's value"));
                b.emit(Insn::store(Size::W, Reg::R10, KEY_SLOT, Reg::R6));
                b.emit(Insn::load(Size::W, Reg::R6, Reg::R10, KEY_SLOT));
            }
        }
        if grouped {
            b.comment("the best match's verdict and rule");
            let verdict = if self.tail.ending == Ending::Count { Reg::R7 } else { Reg::R0 };
            b.emit(Insn::mov64(verdict, Reg::R6));
            b.emit(Insn::alu32(AluOp::And, verdict, Operand::imm_u32((1 << VERDICT_BITS) - 1)));
            if self.tail.ending == Ending::Count {
                b.emit(Insn::alu32(AluOp::Rsh, Reg::R6, Operand::imm_u32(VERDICT_BITS)));
            }
            if self.tail.ending == Ending::Return {
                b.emit(Insn::Exit);
            }
        }
        // Otherwise grouped code falls into the tail that follows (r0 or r6/r7 set).
    }

    fn diagram(
        &mut self,
        b: &mut ProgramBuilder,
        diagram: &Diagram,
        number: usize,
        grouped: bool,
        relays: &mut Relays,
    ) {
        if grouped && number > 0 {
            if let Some(first) = first_rule(diagram) {
                // A best match already ahead of every rule here: the diagram cannot
                // change it.
                b.comment(format!("diagram {number}: skipped when the best match is rule {first} or earlier"));
                let end = relays.target(b, END);
                b.emit(Insn::jump32(JmpOp::Le, Reg::R6, Operand::imm_u32(worse_than(first)), end));
            }
        }
        let mut reached = vec![false; diagram.nodes.len()];
        if let Some(flag) = reached.get_mut(diagram.root) {
            *flag = true;
        }
        for index in (0..diagram.nodes.len()).rev() {
            if !reached[index] {
                continue;
            }
            relays.bind(b, index);
            match &diagram.nodes[index] {
                TreeNode::Leaf(rules) => {
                    b.comment(format!("diagram {number} node {index}: leaf"));
                    if grouped {
                        // In the first diagram the best match is still the default,
                        // which every rule beats: no rule needs the test.
                        self.grouped_leaf(b, rules, number > 0, relays);
                    } else {
                        self.leaf(b, rules, relays);
                    }
                }
                TreeNode::Source { source, present, absent } => {
                    reached[*present] = true;
                    reached[*absent] = true;
                    b.comment(format!("diagram {number} node {index}: {} present?", source.name()));
                    let absent = relays.target(b, *absent);
                    let present = relays.target(b, *present);
                    b.emit(Insn::load(Size::W, Reg::R5, Reg::R10, super::layout::MASK_SLOT));
                    b.emit(Insn::jump32(JmpOp::Set, Reg::R5, Operand::imm_u32(source.bit()), absent));
                    b.emit(Insn::Ja { target: present });
                }
                TreeNode::Field { field, pieces, children } => {
                    for child in children {
                        reached[*child] = true;
                    }
                    self.field_node(b, *field, pieces, children, number, index, relays);
                }
            }
            relays.relay(b);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn field_node(
        &mut self,
        b: &mut ProgramBuilder,
        field: Field,
        pieces: &[(u32, u32, usize)],
        children: &[NodeIndex],
        number: usize,
        index: NodeIndex,
        relays: &mut Relays,
    ) {
        b.comment(format!("diagram {number} node {index}: {} in {} pieces", field.name(), pieces.len()));
        let targets: Vec<Label> = children.iter().map(|child| relays.target(b, *child)).collect();
        b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, self.layout.words(field)[0]));
        search(b, pieces, &targets);
    }

    /// First-match leaf: the rules in order (each testing what its path left open),
    /// then the default.
    fn leaf(&mut self, b: &mut ProgramBuilder, rules: &[(usize, Vec<NodeId>)], relays: &mut Relays) {
        let (filter, layout, ending) = (self.filter, self.layout, self.tail.ending);
        for (index, tests) in rules {
            relays.relay_inline(b);
            self.tail_in_reach(b);
            let rule = &filter.rules[*index];
            self.begin_rule(b, *index);
            let next = b.new_label();
            let tail = self.tail.label;
            let mut matched = |b: &mut ProgramBuilder| decide(b, filter.hook, *index, rule.verdict, ending, tail);
            Body { b: &mut *b, filter, layout }.conjunction(tests, next, &mut matched);
            b.end_rule();
            if tests.is_empty() {
                return; // every packet here matches it
            }
            b.bind(next);
        }
        self.tail_in_reach(b);
        decide(b, filter.hook, filter.rules.len(), filter.default, ending, self.tail.label);
    }

    /// Leaf of one of several diagrams: a rule counts only if it beats the best so far.
    fn grouped_leaf(
        &mut self,
        b: &mut ProgramBuilder,
        rules: &[(usize, Vec<NodeId>)],
        may_lose: bool,
        relays: &mut Relays,
    ) {
        let (filter, layout) = (self.filter, self.layout);
        for (index, tests) in rules {
            relays.relay_inline(b);
            let rule = &filter.rules[*index];
            self.begin_rule(b, *index);
            let end = relays.target(b, END);
            if may_lose {
                b.emit(Insn::jump32(JmpOp::Le, Reg::R6, Operand::imm_u32(worse_than(*index)), end));
            }
            let next = b.new_label();
            let code = best_match(*index, filter.hook.return_code(rule.verdict));
            let mut matched = |b: &mut ProgramBuilder| {
                b.emit(Insn::alu32(AluOp::Mov, Reg::R6, Operand::imm_u32(code)));
                b.emit(Insn::Ja { target: end });
            };
            Body { b: &mut *b, filter, layout }.conjunction(tests, next, &mut matched);
            b.end_rule();
            if tests.is_empty() {
                return;
            }
            b.bind(next);
        }
        let end = relays.target(b, END);
        b.emit(Insn::Ja { target: end });
    }
}

/// The lowest rule index in any leaf of the diagram.
fn first_rule(diagram: &Diagram) -> Option<usize> {
    diagram
        .nodes
        .iter()
        .filter_map(|node| match node {
            TreeNode::Leaf(rules) => rules.first().map(|(rule, _)| *rule),
            _ => None,
        })
        .min()
}

/// Jumps to `targets[piece.2]` for the piece holding r1; the pieces cover every value.
fn search(b: &mut ProgramBuilder, pieces: &[(u32, u32, usize)], targets: &[Label]) {
    if pieces.len() > LINEAR_PIECES {
        let middle = pieces.len() / 2;
        let upper = b.new_label();
        b.emit(Insn::jump32(JmpOp::Ge, Reg::R1, Operand::imm_u32(pieces[middle].0), upper));
        search(b, &pieces[..middle], targets);
        b.bind(upper);
        search(b, &pieces[middle..], targets);
        return;
    }
    let Some((last, rest)) = pieces.split_last() else { return };
    for &(_, high, child) in rest {
        b.emit(Insn::jump32(JmpOp::Le, Reg::R1, Operand::imm_u32(high), targets[child]));
    }
    b.emit(Insn::Ja { target: targets[last.2] });
}
