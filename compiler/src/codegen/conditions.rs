//! Condition code: IR nodes in, jumping code out. `branch(node, target, jump_if)`
//! emits code that jumps to `target` when the node's value equals `jump_if` and falls
//! through otherwise.
//!
//! The body never touches the packet: guards test bits of the absent mask, re-read from
//! its 4-byte stack slot (`MASK_SLOT`) at each guard, and tests compare 32-bit words that
//! the prologue stored on the stack. Sets of one-word
//! values are searched with a balanced decision tree (log₂ N compares); wider values
//! (MAC, IPv6) compare word by word, most significant first.

use super::layout::{absent_is_out_of_range, split_words, Layout, MASK_SLOT};
use crate::bpf::{AluOp, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::{Field, Proto};
use crate::ir::{Filter, Node, NodeId, Source};
use crate::program::CmpOp;

/// Intervals searched linearly; larger sets are split in halves first.
const LINEAR_SEARCH: usize = 4;
/// Registers for the words of one value.
const WORD_REGS: [Reg; 4] = [Reg::R1, Reg::R2, Reg::R3, Reg::R4];

/// Emits condition code into a builder.
pub struct Body<'a> {
    /// Where instructions go.
    pub b: &'a mut ProgramBuilder,
    /// The filter whose nodes are compiled.
    pub filter: &'a Filter,
    /// Where field values are on the stack.
    pub layout: &'a Layout,
}

/// How many match points one rule's condition may be unfolded into.
const PATH_BUDGET: usize = 64;

impl Body<'_> {
    /// Emits a rule's condition so that every way it can become true falls through
    /// into its own copy of `matched`, and every conditional jump goes to the longer
    /// way on (the next alternative, or `on_false`). The kernel verifier explores a
    /// jump's target last, so this keeps its stack of pending paths short however many
    /// rules follow. Past [`PATH_BUDGET`] match points, `or`s are compiled as jumping
    /// code instead.
    pub fn rule(&mut self, condition: NodeId, on_false: Label, matched: &mut dyn FnMut(&mut ProgramBuilder)) {
        let mut budget = PATH_BUDGET;
        self.path(vec![(condition, false)], on_false, matched, &mut budget, None);
    }

    /// Like [`Body::rule`] for the conjunction of `items` (a rule's conjuncts a
    /// classifier leaf still has to test; none: the rule matches).
    pub fn conjunction(&mut self, items: &[NodeId], on_false: Label, matched: &mut dyn FnMut(&mut ProgramBuilder)) {
        let mut budget = PATH_BUDGET;
        self.path(items.iter().rev().map(|&item| (item, false)).collect(), on_false, matched, &mut budget, None);
    }

    /// Whether one of the `pending` conjuncts is a test on a field of `source` that is
    /// false whenever `source` is absent (see [`absent_is_out_of_range`]).
    fn implied_by_a_test(&self, source: Source, pending: &[(NodeId, bool)]) -> bool {
        pending.iter().any(|(id, negated)| {
            let (field, guard_free) = match self.filter.node(*id) {
                Node::Compare { field, mask: None, op, .. } => {
                    (*field, matches!(op, CmpOp::Eq | CmpOp::Lt | CmpOp::Le))
                }
                Node::InSet { field, mask: None, .. } => (*field, true),
                _ => return false,
            };
            !negated && guard_free && absent_is_out_of_range(field) && Source::of_field(field) == Some(source)
        })
    }

    /// The header an `or` alternative tests present (a guard among its conjuncts) that
    /// excludes every later alternative's: once that guard holds, none of them can.
    fn exclusive_guard(&self, alternative: NodeId, later: &[NodeId]) -> Option<Proto> {
        let guards = |id: NodeId| -> Vec<Proto> {
            match self.filter.node(id) {
                Node::All(items) => items
                    .iter()
                    .filter_map(|item| match self.filter.node(*item) {
                        Node::Present(Source::Header(proto)) => Some(*proto),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let excludes = |a: Proto, b: Proto| a != b && a.layer() == b.layer();
        guards(alternative)
            .into_iter()
            .find(|&proto| later.iter().all(|&other| guards(other).into_iter().any(|theirs| excludes(proto, theirs))))
    }

    /// `pending` is a stack of (node, negated) that must all hold, next on top.
    /// `exclusive`: once a guard of that header is emitted (and holds), a false conjunct
    /// goes to the label instead of `on_false` (the later alternatives of an `or`, which
    /// `on_false` tries, need a header that excludes it).
    fn path(
        &mut self,
        mut pending: Vec<(NodeId, bool)>,
        mut on_false: Label,
        matched: &mut dyn FnMut(&mut ProgramBuilder),
        budget: &mut usize,
        mut exclusive: Option<(Proto, Label)>,
    ) {
        while let Some((id, negated)) = pending.pop() {
            match (self.filter.node(id).clone(), negated) {
                (Node::Not(inner), _) => pending.push((inner, !negated)),
                (Node::All(items), false) | (Node::Any(items), true) => {
                    pending.extend(items.iter().rev().map(|item| (*item, negated)));
                }
                (Node::Any(items), false) | (Node::All(items), true) if items.len() <= *budget => {
                    *budget -= items.len() - 1;
                    let Some((last, alternatives)) = items.split_last() else { return };
                    for (index, alternative) in alternatives.iter().enumerate() {
                        let next = self.b.new_label();
                        let mut this_way = pending.clone();
                        this_way.push((*alternative, negated));
                        // Past this alternative's guard the later ones are false: its
                        // failure is the whole `or`'s (IPv4 then IPv6 of a surface field).
                        let exclusive = match negated {
                            false => self.exclusive_guard(*alternative, &items[index + 1..]).map(|p| (p, on_false)),
                            true => None,
                        };
                        self.path(this_way, next, matched, budget, exclusive);
                        self.b.bind(next);
                    }
                    pending.push((*last, negated));
                }
                // A guard that a later test of the same conjunction implies.
                (Node::Present(source), false) if self.implied_by_a_test(source, &pending) => {}
                // A leaf, or an `or` past the budget: false (value == negated) leaves.
                (node, _) => {
                    self.branch(id, on_false, negated);
                    if let (Node::Present(Source::Header(proto)), false) = (node, negated) {
                        if let Some((_, label)) = exclusive.filter(|(guarded, _)| *guarded == proto) {
                            on_false = label;
                            exclusive = None;
                        }
                    }
                }
            }
        }
        matched(self.b);
    }
    /// Jumps to `target` when node `id` evaluates to `jump_if`.
    pub fn branch(&mut self, id: NodeId, target: Label, jump_if: bool) {
        match self.filter.node(id).clone() {
            Node::Const(value) => {
                if value == jump_if {
                    self.b.emit(Insn::Ja { target });
                }
            }
            Node::Present(source) => {
                // The mask is re-read from its stack slot every time: the verifier then
                // never learns its bits, so paths that tested different guards stay
                // equal for state pruning.
                let absent = Operand::imm_u32(source.bit());
                self.b.emit(Insn::load(Size::W, Reg::R5, Reg::R10, MASK_SLOT));
                if jump_if {
                    let skip = self.b.new_label();
                    self.b.emit(Insn::jump32(JmpOp::Set, Reg::R5, absent, skip));
                    self.b.emit(Insn::Ja { target });
                    self.b.bind(skip);
                } else {
                    self.b.emit(Insn::jump32(JmpOp::Set, Reg::R5, absent, target));
                }
            }
            Node::Compare { field, mask, op, value } => self.compare(field, mask, op, value, target, jump_if),
            Node::InDynamic { field, mask, set } => {
                super::dynamic::emit(self.b, self.filter, self.layout, field, mask, set, target, jump_if)
            }
            Node::InSet { field, mask, set } => {
                let end = self.b.new_label();
                let (hit, miss) = if jump_if { (target, end) } else { (end, target) };
                let intervals = self.filter.set(set).intervals.clone();
                self.membership(field, mask, &intervals, hit, miss, end);
                self.b.bind(end);
            }
            Node::Pcap(index) => {
                // The prologue set the atom's bit in its word when libpcap accepted.
                let Some(bit) = self.layout.pcap_bit(index) else { return };
                self.b.emit(Insn::load(Size::W, Reg::R5, Reg::R10, bit.slot));
                if jump_if {
                    self.b.emit(Insn::jump32(JmpOp::Set, Reg::R5, Operand::imm_u32(bit.mask), target));
                } else {
                    self.b.emit(Insn::alu32(AluOp::And, Reg::R5, Operand::imm_u32(bit.mask)));
                    self.b.emit(Insn::jump32(JmpOp::Eq, Reg::R5, 0, target));
                }
            }
            Node::Limit(index) => {
                let limit = (index, super::limit::Stats::Count);
                super::limit::emit(self.b, self.filter, self.layout, limit, target, jump_if)
            }
            Node::Not(inner) => self.branch(inner, target, !jump_if),
            Node::All(items) => self.sequence(&items, target, jump_if, false),
            Node::Any(items) => self.sequence(&items, target, jump_if, true),
        }
    }

    /// `all` (`is_any` false) or `any` (`is_any` true) of `items`.
    fn sequence(&mut self, items: &[NodeId], target: Label, jump_if: bool, is_any: bool) {
        let Some((last, rest)) = items.split_last() else {
            if jump_if == is_any {
                return; // empty any is false, empty all is true: never jumps
            }
            self.b.emit(Insn::Ja { target });
            return;
        };
        // An operand that decides the whole sequence by itself: true in an `any`,
        // false in an `all`.
        if jump_if == is_any {
            for item in rest {
                self.branch(*item, target, jump_if);
            }
            self.branch(*last, target, jump_if);
        } else {
            let end = self.b.new_label();
            for item in rest {
                self.branch(*item, end, is_any);
            }
            self.branch(*last, target, jump_if);
            self.b.bind(end);
        }
    }

    /// Loads the first `count` words of a field into r1.. with the mask applied.
    fn load(&mut self, field: Field, mask: Option<u128>, count: usize) -> Vec<Reg> {
        let words = self.layout.words(field).to_vec();
        let masks = mask.map(|mask| split_words(field, mask));
        let mut regs = Vec::with_capacity(words.len());
        for (index, slot) in words.iter().enumerate().take(count) {
            let reg = WORD_REGS[index];
            self.b.emit(Insn::load(Size::W, reg, Reg::R10, *slot));
            if let Some(masks) = &masks {
                if masks[index] != u32::MAX {
                    self.b.emit(Insn::alu32(AluOp::And, reg, Operand::imm_u32(masks[index])));
                }
            }
            regs.push(reg);
        }
        regs
    }

    fn compare(&mut self, field: Field, mask: Option<u128>, op: CmpOp, value: u128, target: Label, jump_if: bool) {
        let constant = split_words(field, value);
        if constant.len() == 1 {
            let regs = self.load(field, mask, 1);
            let op = if jump_if { op } else { negate(op) };
            self.b.emit(Insn::jump32(jump_op(op), regs[0], Operand::imm_u32(constant[0]), target));
            return;
        }
        let (op, jump_if) = normalized(op, jump_if);
        let regs = self.load(field, mask, significant_words(op, &constant));
        self.multiword(&regs, op, &constant, target, jump_if);
    }

    /// Lexicographic comparison of the words in `regs` with the first as many words of
    /// `constant` (`op` one of `==`, `<`, `<=`; see [`significant_words`] for when the
    /// words left out cannot change the answer).
    fn multiword(&mut self, regs: &[Reg], op: CmpOp, constant: &[u32], target: Label, jump_if: bool) {
        let end = self.b.new_label();
        let (on_true, on_false) = if jump_if { (target, end) } else { (end, target) };
        let last = regs.len() - 1;
        for (index, (reg, word)) in regs.iter().zip(constant).enumerate() {
            let word = Operand::imm_u32(*word);
            match op {
                CmpOp::Eq => self.b.emit(Insn::jump32(JmpOp::Ne, *reg, word, on_false)),
                _ if index < last => {
                    self.b.emit(Insn::jump32(JmpOp::Lt, *reg, word, on_true));
                    self.b.emit(Insn::jump32(JmpOp::Gt, *reg, word, on_false));
                }
                _ => {
                    let last_op = if op == CmpOp::Lt { JmpOp::Lt } else { JmpOp::Le };
                    self.b.emit(Insn::jump32(last_op, *reg, word, on_true));
                    if on_false != end {
                        self.b.emit(Insn::Ja { target: on_false });
                    }
                }
            }
        }
        if op == CmpOp::Eq && on_true != end {
            self.b.emit(Insn::Ja { target: on_true });
        }
        self.b.bind(end);
    }

    /// Jumps to `hit` when the field is in the intervals, to `miss` otherwise; `next` is
    /// the label bound right after this code (when it is `hit`, the last test falls
    /// through to it instead of jumping).
    fn membership(
        &mut self,
        field: Field,
        mask: Option<u128>,
        intervals: &[(u128, u128)],
        hit: Label,
        miss: Label,
        next: Label,
    ) {
        if self.layout.words(field).len() == 1 {
            let regs = self.load(field, mask, 1);
            let words: Vec<(u32, u32)> = intervals.iter().map(|&(low, high)| (low as u32, high as u32)).collect();
            self.search(regs[0], &words, hit, miss, next);
            return;
        }
        let bounds: Vec<_> =
            intervals.iter().map(|&(low, high)| (split_words(field, low), split_words(field, high))).collect();
        let count = bounds
            .iter()
            .map(|(low, high)| significant_words(CmpOp::Lt, low).max(significant_words(CmpOp::Le, high)))
            .max()
            .unwrap_or(1);
        let regs = self.load(field, mask, count);
        for (low, high) in &bounds {
            let below = self.b.new_label();
            let words = significant_words(CmpOp::Lt, low);
            self.multiword(&regs[..words], CmpOp::Lt, low, below, true);
            let words = significant_words(CmpOp::Le, high);
            self.multiword(&regs[..words], CmpOp::Le, high, hit, true);
            self.b.bind(below);
        }
        self.b.emit(Insn::Ja { target: miss });
    }

    /// Balanced decision tree over sorted, disjoint intervals of one word; `next` as in
    /// [`Body::membership`].
    fn search(&mut self, reg: Reg, intervals: &[(u32, u32)], hit: Label, miss: Label, next: Label) {
        if intervals.len() > LINEAR_SEARCH {
            let middle = intervals.len() / 2;
            let upper = self.b.new_label();
            self.b.emit(Insn::jump32(JmpOp::Ge, reg, Operand::imm_u32(intervals[middle].0), upper));
            self.search(reg, &intervals[..middle], hit, miss, upper);
            self.b.bind(upper);
            self.search(reg, &intervals[middle..], hit, miss, next);
            return;
        }
        let Some((&(last_low, last_high), rest)) = intervals.split_last() else {
            self.b.emit(Insn::Ja { target: miss });
            return;
        };
        for &(low, high) in rest {
            if low == high {
                self.b.emit(Insn::jump32(JmpOp::Eq, reg, Operand::imm_u32(low), hit));
            } else {
                if low > 0 {
                    self.b.emit(Insn::jump32(JmpOp::Lt, reg, Operand::imm_u32(low), miss));
                }
                self.b.emit(Insn::jump32(JmpOp::Le, reg, Operand::imm_u32(high), hit));
            }
        }
        if hit == next {
            // The last interval inverted: out of it goes to `miss`, in it falls through.
            if last_low == last_high {
                self.b.emit(Insn::jump32(JmpOp::Ne, reg, Operand::imm_u32(last_low), miss));
            } else {
                if last_low > 0 {
                    self.b.emit(Insn::jump32(JmpOp::Lt, reg, Operand::imm_u32(last_low), miss));
                }
                if last_high < u32::MAX {
                    self.b.emit(Insn::jump32(JmpOp::Gt, reg, Operand::imm_u32(last_high), miss));
                }
            }
            return;
        }
        if last_low == last_high {
            self.b.emit(Insn::jump32(JmpOp::Eq, reg, Operand::imm_u32(last_low), hit));
        } else {
            if last_low > 0 {
                self.b.emit(Insn::jump32(JmpOp::Lt, reg, Operand::imm_u32(last_low), miss));
            }
            self.b.emit(Insn::jump32(JmpOp::Le, reg, Operand::imm_u32(last_high), hit));
        }
        self.b.emit(Insn::Ja { target: miss });
    }
}

/// `op` and `jump_if` with `!=`, `>` and `>=` turned into their negations, as
/// [`Body::multiword`] takes them.
fn normalized(op: CmpOp, jump_if: bool) -> (CmpOp, bool) {
    match op {
        CmpOp::Ne => (CmpOp::Eq, !jump_if),
        CmpOp::Gt => (CmpOp::Le, !jump_if),
        CmpOp::Ge => (CmpOp::Lt, !jump_if),
        other => (other, jump_if),
    }
}

/// How many leading words of a multi-word comparison with `constant` decide it: `x <
/// c` when c's trailing words are 0, and `x <= c` when they are all ones, are decided by
/// the words before them (an address prefix's bounds compare only its network words).
fn significant_words(op: CmpOp, constant: &[u32]) -> usize {
    let trailing = match op {
        CmpOp::Lt => constant.iter().rev().take_while(|&&word| word == 0).count(),
        CmpOp::Le => constant.iter().rev().take_while(|&&word| word == u32::MAX).count(),
        _ => 0,
    };
    (constant.len() - trailing).max(1)
}

fn negate(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Ne,
        CmpOp::Ne => CmpOp::Eq,
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Ge => CmpOp::Lt,
    }
}

fn jump_op(op: CmpOp) -> JmpOp {
    match op {
        CmpOp::Eq => JmpOp::Eq,
        CmpOp::Ne => JmpOp::Ne,
        CmpOp::Lt => JmpOp::Lt,
        CmpOp::Le => JmpOp::Le,
        CmpOp::Gt => JmpOp::Gt,
        CmpOp::Ge => JmpOp::Ge,
    }
}
