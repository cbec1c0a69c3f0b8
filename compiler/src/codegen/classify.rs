//! Classifier code: a [`Classifier`] plan in, jumping code out.
//!
//! ```text
//!  one diagram:   node: r1 = word; search over the pieces (8 ways a step) -> child
//!                 leaf: rule a: if !cond goto next; r6 = a; r7 = verdict; goto tail
//!                       ... ; r6 = N; r7 = default; goto tail
//!  several:       w6 = N << 8 | default                      (best match so far)
//!                 per diagram, leaf: rule a: if w6 <= (a << 8 | 255) goto end;
//!                                           if cond { w6 = a << 8 | v; goto end }
//!                 end: r6 passes through an unaligned stack word (the verifier forgets
//!                 its value, so the next diagram is verified once, not per match)
//!                 the largest diagram last: r8 = the earlier diagrams' best, w6 starts
//!                 again from the default, and its leaves jump straight to the tail
//!                 tail: w6 = min(w6, r8) without a jump; r7 = w6 & 255 (the verdict);
//!                 w6 >>= 8 (the rule)
//! ```
//!
//! Nodes are laid out parents first (every jump goes forward). A `goto` reaches any
//! node: longer than [`crate::bpf::opcode::GOTO_REACH`] slots the encoder writes it as
//! `gotol` (32-bit offset, kernel 6.6). A conditional jump's offset has 16 bits only: one
//! that would cross more than [`RELAY_AT`] slots goes to a relay, a `goto` (`gotol`) to
//! its target placed between nodes or rules in its reach, so a packet takes one extra
//! jump however far the target. Programs with no jump that far have no relay and no
//! `gotol`.

use std::collections::VecDeque;

use super::classifier::{Classifier, Diagram, NodeIndex, TreeNode};
use super::conditions::Body;
use super::layout::KEY_SLOT;
use super::{decide, Ending, RuleEmitter};
use crate::bpf::{AluOp, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::hashing::FastMap;
use crate::ir::NodeId;

/// A pending conditional jump older than this many slots gets a relay at the next safe
/// point: each relay a packet takes is a taken jump, so they stand as far apart as a
/// 16-bit offset allows, leaving room for one node's or one rule's code before the safe
/// point.
pub(super) const RELAY_AT: usize = 28_000;
/// ... or this many, when a node's or rule's code is too long for that room (the
/// emission is retried: [`super::generate_planned`]).
pub(super) const RELAY_AT_SHORT: usize = 16_000;
/// Pieces searched one after the other; more are cut into parts first.
const LINEAR_PIECES: usize = 4;
/// Most parts one step of a search cuts its pieces into. A taken jump costs a packet
/// more than a compare that falls through (it ends the CPU's fetch block): halving
/// takes a jump at half the levels, four parts at three quarters of half as many.
const SEARCH_WAYS: usize = 8;
/// Shared leaf code is copied again rather than reached by a jump of more than this
/// many slots (well inside [`RELAY_AT`], so no packet takes a relay to reach it).
const SHARE_REACH: usize = 8_000;
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

/// Labels of jump targets not emitted yet: for conditional jumps, with where their
/// oldest jump is (also queued in the order they were opened, which is by that position,
/// so finding the due ones does not scan every pending target); for `goto`s, one label
/// per target, which no relay stands in for.
struct Relays {
    /// Per node (the diagram's end last): the label of conditional jumps to it and the
    /// oldest of them, while pending.
    pending: Vec<Option<(Label, usize)>>,
    /// Per node: the label of `goto`s (and relays) to it, bound with the node.
    far: Vec<Option<Label>>,
    /// `(position, node)` in the order targets were opened; an entry is stale once its
    /// node was bound or relayed (its pending position differs).
    by_age: VecDeque<(usize, NodeIndex)>,
    /// [`RELAY_AT`] or [`RELAY_AT_SHORT`].
    reach: usize,
}

impl Relays {
    fn new(nodes: usize, reach: usize) -> Relays {
        Relays { pending: vec![None; nodes + 1], far: vec![None; nodes + 1], by_age: VecDeque::new(), reach }
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

    /// The label for a `goto` to `node` (`gotol` when far: no relay needed).
    fn goto(&mut self, b: &mut ProgramBuilder, node: NodeIndex) -> Label {
        let slot = self.slot(node);
        *self.far[slot].get_or_insert_with(|| b.new_label())
    }

    fn bind(&mut self, b: &mut ProgramBuilder, node: NodeIndex) {
        let slot = self.slot(node);
        if let Some((label, _)) = self.pending[slot].take() {
            b.bind(label);
        }
        if let Some(label) = self.far[slot].take() {
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
        let reach = self.reach;
        self.oldest().is_some_and(|(first, _)| b.len() - first > reach)
    }

    /// At a point nothing falls through to: a relay for every old pending target, a
    /// `goto` to the target itself (the conditional jumps after it open a new label).
    fn relay(&mut self, b: &mut ProgramBuilder) {
        let now = b.len();
        let mut due: Vec<NodeIndex> = Vec::new();
        while let Some((first, node)) = self.oldest() {
            if now - first <= self.reach {
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
            let Some((label, _)) = self.pending[slot].take() else { continue };
            b.bind(label);
            let far = self.goto(b, node);
            b.comment("relay");
            b.emit(Insn::Ja { target: far });
        }
    }

    /// Between two pieces of straight-line code: relays behind a jump over them.
    fn relay_inline(&mut self, b: &mut ProgramBuilder) {
        if self.due(b) {
            let over = b.new_label();
            b.comment("relay: over the relays");
            b.emit(Insn::Ja { target: over });
            self.relay(b);
            b.bind(over);
        }
    }
}

/// Index of a unit in [`Chains::units`].
type UnitId = usize;

/// A leaf's candidate: its rule and the tests left.
type LeafRule = (usize, Vec<NodeId>);

/// Where a packet goes when a unit's first rule does not match it.
#[derive(Clone, Copy)]
enum Next {
    /// The next unit.
    Unit(UnitId),
    /// The diagram's end (the last rule of a leaf of one of several diagrams).
    End,
    /// Nowhere: the rule matches every packet that reaches it.
    Never,
}

/// A leaf's candidates from one position on. Leaves whose lists end alike (wildcard
/// rules copied into every piece of a split) share the code of that end: a rule's
/// failed test jumps to the code of the rest of its list, wherever that is.
struct Unit<'d> {
    rules: &'d [(usize, Vec<NodeId>)],
    rest: Next,
    /// Leaves and longer units still to be emitted that lead here.
    remaining: usize,
}

/// The leaves of one diagram as shared units, and the units waiting for their code.
struct Chains<'d> {
    units: Vec<Unit<'d>>,
    /// Per node: the unit of a reached leaf's whole list (`None`: an empty list in one
    /// of several diagrams, which goes straight to the end).
    leaf_unit: Vec<Option<UnitId>>,
    /// Node count: unit `u`'s relay slot is `nodes + u`.
    nodes: usize,
    grouped: bool,
    /// Units with jumps waiting for their code, by the position of the first jump.
    waiting: VecDeque<(usize, UnitId)>,
}

impl<'d> Chains<'d> {
    fn new(diagram: &'d Diagram, reached: &[bool], grouped: bool) -> Chains<'d> {
        let mut chains = Chains {
            units: Vec::new(),
            leaf_unit: vec![None; diagram.nodes.len()],
            nodes: diagram.nodes.len(),
            grouped,
            waiting: VecDeque::new(),
        };
        // A unit (a suffix of a leaf's list) is named by its first candidate and the unit
        // of the rest (`None`: the empty rest of one of several diagrams' leaves, which has
        // no unit), so naming every suffix of a leaf is linear in its length, not
        // quadratic as hashing the slices would be.
        let mut ids: FastMap<(&'d LeafRule, Option<UnitId>), UnitId> = FastMap::default();
        let mut empty: Option<UnitId> = None;
        for (index, node) in diagram.nodes.iter().enumerate() {
            let TreeNode::Leaf(rules) = node else { continue };
            if !reached[index] {
                continue;
            }
            let rules: &'d [(usize, Vec<NodeId>)] = rules;
            let mut next = match grouped {
                true => Next::End,
                false => Next::Unit(*empty.get_or_insert_with(|| chains.push(&rules[rules.len()..], Next::Never))),
            };
            for start in (0..rules.len()).rev() {
                let rest = if rules[start].1.is_empty() { Next::Never } else { next };
                let after = match next {
                    Next::Unit(unit) => Some(unit),
                    _ => None,
                };
                let unit = match ids.get(&(&rules[start], after)) {
                    Some(&unit) => unit,
                    None => {
                        let unit = chains.push(&rules[start..], rest);
                        ids.insert((&rules[start], after), unit);
                        unit
                    }
                };
                next = Next::Unit(unit);
            }
            if let Next::Unit(unit) = next {
                chains.units[unit].remaining += 1;
                chains.leaf_unit[index] = Some(unit);
            }
        }
        chains
    }

    /// A new unit of `rules` (one more way into `rest`).
    fn push(&mut self, rules: &'d [(usize, Vec<NodeId>)], rest: Next) -> UnitId {
        if let Next::Unit(rest) = rest {
            self.units[rest].remaining += 1;
        }
        self.units.push(Unit { rules, rest, remaining: 0 });
        self.units.len() - 1
    }

    fn slot(&self, unit: UnitId) -> usize {
        self.nodes + unit
    }

    /// The label of `unit`'s code, waiting for it when it has none yet.
    fn target(&mut self, b: &mut ProgramBuilder, relays: &mut Relays, unit: UnitId) -> Label {
        let slot = self.slot(unit);
        if relays.pending[slot].is_none() {
            self.waiting.push_back((b.len(), unit));
        }
        relays.target(b, slot)
    }

    /// A unit whose first waiting jump is more than `reach` slots back.
    fn due(&mut self, b: &ProgramBuilder, relays: &Relays, reach: usize) -> Option<UnitId> {
        while let Some(&(position, unit)) = self.waiting.front() {
            if b.len() - position <= reach {
                return None;
            }
            self.waiting.pop_front();
            if matches!(relays.pending[self.slot(unit)], Some((_, first)) if first == position) {
                return Some(unit);
            }
        }
        None
    }
}

/// Which nodes the root reaches.
fn reached(diagram: &Diagram) -> Vec<bool> {
    let mut reached = vec![false; diagram.nodes.len()];
    if let Some(flag) = reached.get_mut(diagram.root) {
        *flag = true;
    }
    for index in (0..diagram.nodes.len()).rev() {
        if !reached[index] {
            continue;
        }
        match &diagram.nodes[index] {
            TreeNode::Leaf(_) => {}
            TreeNode::Source { present, absent, .. } => {
                reached[*present] = true;
                reached[*absent] = true;
            }
            TreeNode::Field { children, .. } => children.iter().for_each(|child| reached[*child] = true),
        }
    }
    reached
}

impl RuleEmitter<'_, '_> {
    /// Emits the whole rule list as the classifier.
    pub(super) fn classifier(&mut self, b: &mut ProgramBuilder, classifier: &Classifier) {
        let grouped = classifier.diagrams.len() > 1;
        let rules = self.filter.rules.len();
        let default_code = self.filter.hook.return_code(self.filter.default);
        // With a tail, the last diagram's exits go straight to it (the tail takes the
        // verdict and rule out of r6 first), through copies in reach: no relay chain to
        // the end of the largest diagram, which is therefore laid out last.
        let to_tail = grouped && self.tail.ending != Ending::Return;
        if grouped {
            b.comment(format!("classifier: {} diagrams, the lowest matching rule wins", classifier.diagrams.len()));
            b.emit(Insn::alu32(AluOp::Mov, Reg::R6, Operand::imm_u32(best_match(rules, default_code))));
            self.tail.decode = to_tail;
        } else {
            b.comment("classifier: one diagram");
        }
        let order = emission_order(classifier);
        for (position, &number) in order.iter().enumerate() {
            let diagram = &classifier.diagrams[number];
            let last = to_tail && position + 1 == order.len();
            let reached = reached(diagram);
            let mut chains = Chains::new(diagram, &reached, grouped);
            let mut relays = Relays::new(diagram.nodes.len() + chains.units.len(), self.relay_at);
            let at = Place { number, position, grouped, last };
            if last {
                // Nothing jumped to the tail before this diagram.
                self.tail.unused = true;
                b.comment(format!("diagram {number}: r8 keeps the best match of the diagrams before"));
                b.emit(Insn::mov64(Reg::R8, Reg::R6));
            }
            self.diagram(b, diagram, at, &reached, &mut chains, &mut relays);
            if grouped && !last {
                relays.bind(b, END);
                b.comment(format!("diagram {number} done: forget the best match's value"));
                b.emit(Insn::store(Size::W, Reg::R10, KEY_SLOT, Reg::R6));
                b.emit(Insn::load(Size::W, Reg::R6, Reg::R10, KEY_SLOT));
            }
        }
        if grouped && !to_tail {
            b.comment("the best match's verdict and rule");
            b.emit(Insn::mov64(Reg::R0, Reg::R6));
            b.emit(Insn::alu32(AluOp::And, Reg::R0, Operand::imm_u32((1 << VERDICT_BITS) - 1)));
            b.emit(Insn::Exit);
        }
        // Otherwise the last diagram's exits jump to the tail (r6 set).
    }

    /// Where `at`'s diagram goes when done: its end, or (the last of several) the tail,
    /// copied here first when the current one is nearly out of reach.
    fn end_target(&mut self, b: &mut ProgramBuilder, at: Place, relays: &mut Relays) -> Label {
        if at.last {
            self.tail_in_reach(b);
            self.tail.unused = false;
            self.tail.label
        } else {
            relays.target(b, END)
        }
    }

    /// Where a `goto` leaving `at`'s diagram goes: as [`Self::end_target`], but its end
    /// through no relay.
    fn end_goto(&mut self, b: &mut ProgramBuilder, at: Place, relays: &mut Relays) -> Label {
        if at.last {
            self.tail.far
        } else {
            relays.goto(b, END)
        }
    }

    fn diagram(
        &mut self,
        b: &mut ProgramBuilder,
        diagram: &Diagram,
        at: Place,
        reached: &[bool],
        chains: &mut Chains,
        relays: &mut Relays,
    ) {
        let number = at.number;
        if at.grouped && at.position > 0 {
            if let Some(first) = first_rule(diagram) {
                // A best match already ahead of every rule here: the diagram cannot
                // change it.
                b.comment(format!("diagram {number}: skipped when the best match is rule {first} or earlier"));
                let end = self.end_target(b, at, relays);
                b.emit(Insn::jump32(JmpOp::Le, Reg::R6, Operand::imm_u32(worse_than(first)), end));
            }
        }
        // In the first diagram laid out the best match is still the default, which
        // every rule beats: no rule needs the test. Nor in the last, whose exits go to
        // the tail, which keeps the better of its match and r8.
        let may_lose = at.position > 0 && !at.last;
        if at.last {
            let default_code = self.filter.hook.return_code(self.filter.default);
            b.emit(Insn::alu32(
                AluOp::Mov,
                Reg::R6,
                Operand::imm_u32(best_match(self.filter.rules.len(), default_code)),
            ));
        }
        for index in (0..diagram.nodes.len()).rev() {
            if !reached[index] {
                continue;
            }
            relays.bind(b, index);
            match &diagram.nodes[index] {
                TreeNode::Leaf(_) => {
                    b.comment(format!("diagram {number} node {index}: leaf"));
                    match chains.leaf_unit[index] {
                        Some(unit) => self.enter(b, chains, unit, (may_lose, at), relays),
                        None => {
                            let end = self.end_goto(b, at, relays);
                            b.emit(Insn::Ja { target: end });
                        }
                    }
                }
                TreeNode::Source { source, present, absent } => {
                    b.comment(format!("diagram {number} node {index}: {} present?", source.name()));
                    let absent = relays.target(b, *absent);
                    let present = relays.goto(b, *present);
                    b.emit(Insn::load(Size::W, Reg::R5, Reg::R10, super::layout::MASK_SLOT));
                    b.emit(Insn::jump32(JmpOp::Set, Reg::R5, Operand::imm_u32(source.bit()), absent));
                    b.emit(Insn::Ja { target: present });
                }
                TreeNode::Field { field, pieces, children } => {
                    self.field_node(b, *field, pieces, children, number, index, relays);
                }
            }
            relays.relay(b);
            // Shared leaf code whose first jump would soon be out of comfortable reach
            // gets a copy here; later leaves open a new one.
            while let Some(unit) = chains.due(b, relays, SHARE_REACH) {
                b.comment(format!("diagram {number} node s{unit}: leaf"));
                self.chain(b, chains, unit, (may_lose, at), relays);
                relays.relay(b);
            }
        }
        while let Some(unit) = chains.due(b, relays, 0) {
            b.comment(format!("diagram {number} node s{unit}: leaf"));
            self.chain(b, chains, unit, (may_lose, at), relays);
            relays.relay(b);
        }
    }

    /// A leaf (or a longer chain) reaches `unit`: its code follows here when nothing
    /// else still leads to it, else a jump to where it will be.
    fn enter(
        &mut self,
        b: &mut ProgramBuilder,
        chains: &mut Chains,
        unit: UnitId,
        may_lose: (bool, Place),
        relays: &mut Relays,
    ) {
        chains.units[unit].remaining -= 1;
        if chains.units[unit].remaining == 0 {
            self.chain(b, chains, unit, may_lose, relays);
        } else {
            let target = chains.target(b, relays, unit);
            b.emit(Insn::Ja { target });
        }
    }

    /// Emits `unit`'s rules in order, going on into the units after it while this is the
    /// last code that leads to them.
    fn chain(
        &mut self,
        b: &mut ProgramBuilder,
        chains: &mut Chains,
        mut unit: UnitId,
        (may_lose, at): (bool, Place),
        relays: &mut Relays,
    ) {
        let (filter, layout, ending) = (self.filter, self.layout, self.tail.ending);
        loop {
            relays.bind(b, chains.slot(unit));
            let (rules, rest) = (chains.units[unit].rules, chains.units[unit].rest);
            if chains.units[unit].remaining > 0 {
                // An early copy: the next copy leads to the rest again.
                if let Next::Unit(rest) = rest {
                    chains.units[rest].remaining += 1;
                }
            }
            let Some((index, tests)) = rules.first() else {
                // The end of a single diagram's leaf: the default.
                decide(b, filter.hook, filter.rules.len(), filter.default, ending, self.tail.far);
                return;
            };
            relays.relay_inline(b);
            if ending != Ending::Return && (!chains.grouped || at.last) {
                self.tail_in_reach(b);
            }
            let rule = &filter.rules[*index];
            let next = match rest {
                Next::End => self.end_target(b, at, relays),
                Next::Never => b.new_label(),
                Next::Unit(rest) => {
                    chains.units[rest].remaining -= 1;
                    chains.target(b, relays, rest)
                }
            };
            self.begin_rule(b, *index);
            if chains.grouped {
                if may_lose {
                    let end = self.end_target(b, at, relays);
                    b.emit(Insn::jump32(JmpOp::Le, Reg::R6, Operand::imm_u32(worse_than(*index)), end));
                }
                let end = self.end_goto(b, at, relays);
                let code = best_match(*index, filter.hook.return_code(rule.verdict));
                let mut matched = |b: &mut ProgramBuilder| {
                    b.emit(Insn::alu32(AluOp::Mov, Reg::R6, Operand::imm_u32(code)));
                    b.emit(Insn::Ja { target: end });
                };
                Body { b: &mut *b, filter, layout }.conjunction(tests, next, &mut matched);
            } else {
                let tail = self.tail.far;
                let mut matched = |b: &mut ProgramBuilder| decide(b, filter.hook, *index, rule.verdict, ending, tail);
                Body { b: &mut *b, filter, layout }.conjunction(tests, next, &mut matched);
            }
            b.end_rule();
            match rest {
                Next::Unit(rest) if chains.units[rest].remaining == 0 => unit = rest,
                _ => return,
            }
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
        b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, self.layout.words(field)[0]));
        search(b, pieces, &mut |b, child, goto| match goto {
            true => relays.goto(b, children[child]),
            false => relays.target(b, children[child]),
        });
    }
}

/// Where a diagram is laid out among several.
#[derive(Clone, Copy)]
struct Place {
    /// Its number in the plan (listing comments name it).
    number: usize,
    /// How many diagrams come before it.
    position: usize,
    grouped: bool,
    /// The last of several, whose exits go to the tail.
    last: bool,
}

/// The order diagrams are laid out in: the plan's, with the largest (most nodes) moved
/// last, so that its exits reach the tail directly (a `goto`, or a conditional jump
/// through one relay in reach) rather than through a relay chain across its whole code to
/// its end.
fn emission_order(classifier: &Classifier) -> Vec<usize> {
    let mut order: Vec<usize> = (0..classifier.diagrams.len()).collect();
    let largest =
        (0..classifier.diagrams.len()).max_by_key(|&number| (classifier.diagrams[number].nodes.len(), number));
    if let Some(largest) = largest {
        order.retain(|&number| number != largest);
        order.push(largest);
    }
    order
}

/// The start of the tail of several diagrams: the better of the last diagram's match
/// (r6) and the earlier ones' (r8), without a jump, then its verdict and rule. r6 first
/// passes through an unaligned stack word, so the verifier forgets which match it holds
/// and walks the tail once, not once per match.
pub(super) fn decode_best_match(b: &mut ProgramBuilder, ending: Ending) {
    b.comment("the best match's verdict and rule: the lower of r6 and r8");
    b.emit(Insn::store(Size::W, Reg::R10, KEY_SLOT, Reg::R6));
    b.emit(Insn::load(Size::W, Reg::R6, Reg::R10, KEY_SLOT));
    // Both are 32-bit words: r6 - r8 is negative exactly when r6 < r8, and its sign
    // bit, spread, selects r6.
    b.emit(Insn::mov64(Reg::R1, Reg::R6));
    b.emit(Insn::alu64(AluOp::Sub, Reg::R1, Reg::R8));
    b.emit(Insn::alu64(AluOp::Arsh, Reg::R1, 63));
    b.emit(Insn::alu64(AluOp::Xor, Reg::R6, Reg::R8));
    b.emit(Insn::alu64(AluOp::And, Reg::R6, Reg::R1));
    b.emit(Insn::alu64(AluOp::Xor, Reg::R6, Reg::R8));
    let verdict = if ending == Ending::Count { Reg::R7 } else { Reg::R0 };
    b.emit(Insn::mov64(verdict, Reg::R6));
    b.emit(Insn::alu32(AluOp::And, verdict, Operand::imm_u32((1 << VERDICT_BITS) - 1)));
    if ending == Ending::Count {
        b.emit(Insn::alu32(AluOp::Rsh, Reg::R6, Operand::imm_u32(VERDICT_BITS)));
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

/// Jumps to child `piece.2` for the piece holding r1 (`target(b, child, goto)`: the
/// label of a `goto` or a conditional jump to it); the pieces cover every value.
/// More than [`LINEAR_PIECES`] pieces are cut into up to [`SEARCH_WAYS`] parts, tested
/// from the highest down (`if r1 >= low goto part`), the lowest part following inline:
/// every part is one taken jump away, the lowest none.
fn search(
    b: &mut ProgramBuilder,
    pieces: &[(u32, u32, usize)],
    target: &mut impl FnMut(&mut ProgramBuilder, usize, bool) -> Label,
) {
    if pieces.len() > LINEAR_PIECES {
        let starts = search_parts(pieces.len());
        let labels: Vec<Label> = starts[1..].iter().map(|_| b.new_label()).collect();
        for (start, label) in starts[1..].iter().zip(&labels).rev() {
            b.emit(Insn::jump32(JmpOp::Ge, Reg::R1, Operand::imm_u32(pieces[*start].0), *label));
        }
        for (part, &start) in starts.iter().enumerate() {
            if part > 0 {
                b.bind(labels[part - 1]);
            }
            let end = starts.get(part + 1).copied().unwrap_or(pieces.len());
            search(b, &pieces[start..end], target);
        }
        return;
    }
    let Some((last, rest)) = pieces.split_last() else { return };
    for &(_, high, child) in rest {
        let label = target(b, child, false);
        b.emit(Insn::jump32(JmpOp::Le, Reg::R1, Operand::imm_u32(high), label));
    }
    let label = target(b, last.2, true);
    b.emit(Insn::Ja { target: label });
}

/// Where each part of a search over `pieces` (more than [`LINEAR_PIECES`]) starts.
fn search_parts(pieces: usize) -> Vec<usize> {
    let ways = SEARCH_WAYS.min(pieces.div_ceil(LINEAR_PIECES));
    (0..ways).map(|part| part * pieces / ways).collect()
}

/// The fewest instruction slots the inline code of `classifier` can take: a bound the
/// code above never undercuts, computed from the plan alone, so that a compile can tell a
/// plan far past the kernel's instruction limit without emitting it (`counting`: rules
/// end in the counter tail). Per node reached from a root: a field node loads its word
/// and searches its pieces ([`search_slots`]); a presence node loads the mask, tests and
/// jumps. Leaves count per distinct candidate list from one position on (a [`Unit`]:
/// leaves ending alike share that code), up to the first candidate without tests: its
/// first candidate's [`least_test_slots`] per residual test and its decision (`r6`,
/// `r7`, `goto`; without counters `r0`, `goto`; with several diagrams `w6`, `goto`, and
/// in a diagram laid out between the first and the last the best-so-far test); a single diagram's default decides at a
/// list's end. Leaf entries, relays, copies of shared code and of the tail are not
/// counted.
pub(crate) fn least_slots(classifier: &Classifier, filter: &crate::ir::Filter, counting: bool) -> usize {
    let grouped = classifier.diagrams.len() > 1;
    let default = if counting { 3 } else { 2 };
    let mut slots = 0;
    let order = emission_order(classifier);
    for (position, &number) in order.iter().enumerate() {
        let diagram = &classifier.diagrams[number];
        // The first and the last laid out test no best match so far (the last's tail
        // keeps the better one).
        let decide = match grouped {
            true => 2 + usize::from(position > 0 && position + 1 < order.len()),
            false => default,
        };
        let reached = reached(diagram);
        // A suffix of a candidate list is named by its first candidate and the name of
        // the suffix after it (0: the empty one), so that naming every suffix of a leaf
        // is linear in its length, not quadratic as hashing the slices would be.
        let mut names: FastMap<(&(usize, Vec<NodeId>), usize), usize> = FastMap::default();
        let mut counted: Vec<bool> = vec![false];
        let mut suffixes: Vec<usize> = Vec::new();
        for (node, _) in diagram.nodes.iter().zip(&reached).filter(|(_, reached)| **reached) {
            slots += match node {
                TreeNode::Field { pieces, .. } => 1 + search_slots(pieces.len()),
                TreeNode::Source { .. } => 3,
                TreeNode::Leaf(rules) => {
                    suffixes.clear();
                    let mut next = 0;
                    for candidate in rules.iter().rev() {
                        let fresh = names.len() + 1;
                        next = *names.entry((candidate, next)).or_insert(fresh);
                        if next == fresh {
                            counted.push(false);
                        }
                        suffixes.push(next);
                    }
                    suffixes.reverse();
                    let mut leaf = 0;
                    let mut open = true;
                    for (start, (_, tests)) in rules.iter().enumerate() {
                        if !std::mem::replace(&mut counted[suffixes[start]], true) {
                            leaf += decide + tests.iter().map(|test| least_test_slots(filter, *test)).sum::<usize>();
                        }
                        if tests.is_empty() {
                            open = false;
                            break;
                        }
                    }
                    if open && !grouped && !std::mem::replace(&mut counted[0], true) {
                        leaf += default;
                    }
                    leaf
                }
            };
        }
    }
    slots
}

/// The slots [`search`] emits for `pieces` pieces.
fn search_slots(pieces: usize) -> usize {
    if pieces > LINEAR_PIECES {
        let starts = search_parts(pieces);
        let ends = starts[1..].iter().copied().chain([pieces]);
        starts.len() - 1 + starts.iter().zip(ends).map(|(start, end)| search_slots(end - start)).sum::<usize>()
    } else {
        pieces
    }
}

/// The fewest slots the residual test `test` takes in a leaf (see [`least_slots`]): a
/// compare loads its word and jumps, a set test loads it and jumps per interval end;
/// what may emit less counts less (a header guard a later test implies, a constant, a
/// pcap atom, a dynamic set, an empty `and`/`or`).
fn least_test_slots(filter: &crate::ir::Filter, test: NodeId) -> usize {
    use crate::ir::Node;
    match filter.node(test) {
        Node::Present(_) | Node::Const(_) | Node::Pcap(_) | Node::InDynamic { .. } => 0,
        Node::All(items) | Node::Any(items) => usize::from(!items.is_empty()),
        Node::Not(inner) => least_test_slots(filter, *inner),
        Node::Limit(_) => 1,
        Node::Compare { .. } => 2,
        Node::InSet { field, mask, set } => {
            let one_word = mask.is_none() && super::layout::word_count(*field) == 1;
            // The load, then a jump per interval (conditions.rs's `membership`); one
            // interval of a one-word field: a jump per end that is not the word's limit.
            1 + match filter.set(*set).intervals.as_slice() {
                [(low, high)] if one_word && low != high => {
                    usize::from(*low > 0) + usize::from(*high < u128::from(u32::MAX))
                }
                [_] => 1,
                intervals => intervals.len(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::classbench::{self, Shape};
    use crate::codegen::{self, Form, Options};

    /// [`super::least_slots`] is a lower bound of the code emitted, with and without
    /// counters, for every shape (one diagram and several), including a set with rules
    /// that log, `or`s, masks and negations in its leaves.
    #[test]
    fn the_least_slots_of_a_plan_never_exceed_its_inline_code() {
        let mut sets: Vec<(String, String)> = Shape::ALL
            .iter()
            .map(|shape| (shape.name().to_string(), classbench::generate(*shape, 1_000, 0, 11).text))
            .collect();
        let mut spiced = String::from("default pass\n");
        for index in 0..60 {
            let log = if index % 7 == 0 { " log" } else { "" };
            spiced.push_str(&format!(
                "rule r{index}: drop{log} if tcp.dport == {} and (ip.src in 10.{index}.0.0/16 or not udp) \
                 and tcp.flags & syn == syn\n",
                1000 + index
            ));
        }
        sets.push(("spiced".to_string(), spiced));
        for (name, text) in sets {
            let (program, diagnostics) = crate::frontend::check_source(&text);
            let program = program.unwrap_or_else(|| panic!("{name}: {diagnostics:?}"));
            let filter = crate::ir::build(&program);
            let plan = codegen::plan_classifier(&filter).expect("a classifier");
            for counters in [true, false] {
                let options = Options { counters };
                let least = codegen::classifier_least_slots(&filter, options, &plan);
                let code = codegen::generate_planned(&filter, options, Form::Classified, Some(&plan)).expect("code");
                let slots = code.encode().len() / 8;
                assert!(least <= slots, "{name}, counters {counters}: at least {least}, emitted {slots}");
                // Tight enough to tell: a third of the code or more (the small set's
                // code is mostly its prologue and log tail).
                assert!(name == "spiced" || least > slots / 3, "{name}, counters {counters}: {least} of {slots}");
            }
        }
    }
}

#[cfg(test)]
mod relay_tests {
    use crate::codegen::{self, CodegenError, Form, Options};

    /// Rules whose leaf code is longer than the room far relays leave ([`super::RELAY_AT`]:
    /// masked set tests the diagram cannot split on, ~6,000 slots each) still compile as
    /// a classifier: the emission is retried with relays closer together.
    #[test]
    fn long_leaf_code_falls_back_to_closer_relays() {
        let mut text = String::from("default pass\n");
        let ports: Vec<String> = (0..6_000).map(|port| (2 * port + 1).to_string()).collect();
        let ports = ports.join(", ");
        for index in 0..9_000 {
            if index % 900 == 0 {
                text.push_str(&format!(
                    "rule m{index}: drop if ip.src == 10.{}.{}.1 and tcp.sport & 0xffff in {{{ports}}}\n",
                    index / 256,
                    index % 256
                ));
            }
            text.push_str(&format!(
                "rule r{index}: drop if ip.src == 10.{}.{}.2 and tcp.dport == {}\n",
                index / 256,
                index % 256,
                1 + index % 1000
            ));
        }
        let (program, diagnostics) = crate::frontend::check_source(&text);
        let program = program.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let filter = crate::ir::build(&program);
        let plan = codegen::plan_classifier(&filter).expect("a classifier");
        let options = Options { counters: true };
        let far = codegen::generate_with_relays(&filter, options, &plan, super::RELAY_AT);
        assert!(matches!(far, Err(CodegenError::JumpTooFar { .. })), "far relays fit: the test shows nothing");
        let code = codegen::generate_planned(&filter, options, Form::Classified, Some(&plan)).expect("code");
        assert!(code.comments.iter().any(|comment| comment.text.starts_with("classifier: ")));
    }
}
