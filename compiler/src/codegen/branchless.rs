//! Branch-free rule conditions: an IR node in, instructions that leave its truth value
//! (0 or 1) in a register, with no jump at all — or `None` when the node has a part this
//! form cannot express.
//!
//! Why: the kernel verifier keeps one pending path per extra place a rule can fail, until
//! the last rule is explored; past 8,192 it refuses the program. A rule whose condition is
//! computed without jumps and then tested once leaves none, so large rule sets load. The
//! price is that every test of such a rule runs (no short-circuit), so the code generator
//! uses this form only when the jumping form would break that limit.
//!
//! Forms, on 32-bit words `w` zero-extended in 64-bit registers:
//! - `w == c`: `((w ^ c) - 1) >> 63`;  `w < c`: `(w - c) >> 63` (64-bit subtraction);
//! - `w in [lo, hi]` where the interval is a prefix: `(w & m) == lo`; otherwise
//!   `((w - lo) mod 2^32 - (hi - lo + 1)) >> 63`;
//! - wide values (MAC, IPv6): equality and prefixes only, word by word, or-ing the
//!   differences before one `== 0`;
//! - guards: `1 - ((mask >> bit) & 1)`; `and`/`or`/`not`: `&`, `|`, `^ 1`.

use super::layout::{absent_is_out_of_range, split_words, Layout, PcapBit, MASK_SLOT};
use crate::bpf::{AluOp, Insn, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::ir::{Filter, Node, NodeId, Source};
use crate::program::CmpOp;

/// Registers that hold partial results, outermost first; leaves use r1–r3 as scratch.
const RESULTS: [Reg; 5] = [Reg::R6, Reg::R7, Reg::R8, Reg::R9, Reg::R0];
/// Largest set compiled without jumps.
const MAX_INTERVALS: usize = 16;

/// Emits branch-free code into a builder.
pub struct Branchless<'a> {
    /// Where instructions go.
    pub b: &'a mut ProgramBuilder,
    /// The filter whose nodes are compiled.
    pub filter: &'a Filter,
    /// Where field values are on the stack.
    pub layout: &'a Layout,
}

impl Branchless<'_> {
    /// Whether `node` can be compiled without jumps.
    pub fn supports(&self, node: NodeId) -> bool {
        self.depth_needed(node).is_some_and(|depth| depth <= RESULTS.len())
    }

    /// Registers needed to evaluate the node, or `None` if a part is not supported.
    fn depth_needed(&self, id: NodeId) -> Option<usize> {
        match self.filter.node(id) {
            Node::Const(_) | Node::Present(_) | Node::Pcap(_) => Some(1),
            Node::InDynamic { .. } => None,
            // Stateful: only in jumping code, where it runs after the rest of its rule.
            Node::Limit(_) => None,
            Node::Compare { field, op, .. } => {
                (self.layout.words(*field).len() == 1 || matches!(op, CmpOp::Eq | CmpOp::Ne)).then_some(1)
            }
            Node::InSet { field, set, .. } => {
                let intervals = &self.filter.set(*set).intervals;
                let wide = self.layout.words(*field).len() > 1;
                let ok = intervals.len() <= MAX_INTERVALS
                    && (!wide || intervals.iter().all(|&(low, high)| prefix_mask(low, high, 128).is_some()));
                ok.then_some(1)
            }
            Node::Not(inner) => self.depth_needed(*inner),
            Node::All(items) | Node::Any(items) => {
                let mut deepest = 0;
                for (index, item) in items.iter().enumerate() {
                    let depth = self.depth_needed(*item)?;
                    deepest = deepest.max(depth + usize::from(index > 0));
                }
                Some(deepest.max(1))
            }
        }
    }

    /// Leaves the truth value of `id` (negated if asked) in `RESULTS[level]`.
    pub fn value(&mut self, id: NodeId, negated: bool, level: usize) {
        let dst = RESULTS[level];
        match self.filter.node(id).clone() {
            Node::Const(value) => self.b.emit(Insn::mov64(dst, i32::from(value != negated))),
            // `supports` refuses limits, so rules with one never come here.
            Node::Limit(_) => self.b.emit(Insn::mov64(dst, 0)),
            Node::Present(source) => {
                let bit = source.bit().trailing_zeros() as i32;
                self.b.emit(Insn::load(Size::W, dst, Reg::R10, MASK_SLOT));
                self.b.emit(Insn::alu64(AluOp::Rsh, dst, bit));
                self.b.emit(Insn::alu64(AluOp::And, dst, 1));
                self.negate_unless(dst, negated); // the bit says "absent"
            }
            Node::Pcap(index) => {
                let bit = self.layout.pcap_bit(index).unwrap_or(PcapBit { slot: MASK_SLOT, mask: 1 });
                self.b.emit(Insn::load(Size::W, dst, Reg::R10, bit.slot));
                self.b.emit(Insn::alu64(AluOp::Rsh, dst, bit.mask.trailing_zeros() as i32));
                self.b.emit(Insn::alu64(AluOp::And, dst, 1));
                self.negate_if(dst, negated);
            }
            Node::Compare { field, mask, op, value } => {
                self.compare(dst, field, mask, op, value);
                self.negate_if(dst, negated);
            }
            Node::InDynamic { .. } => {
                // Not supported here (`depth_needed`): rules that test a dynamic set stay
                // jumping code, so this is never asked for.
                self.b.emit(Insn::alu64(AluOp::Mov, dst, 0));
            }
            Node::InSet { field, mask, set } => {
                let intervals = self.filter.set(set).intervals.clone();
                self.membership(dst, field, mask, &intervals);
                self.negate_if(dst, negated);
            }
            Node::Not(inner) => self.value(inner, !negated, level),
            Node::All(items) => self.combine(&items, negated, level, if negated { AluOp::Or } else { AluOp::And }),
            Node::Any(items) => self.combine(&items, negated, level, if negated { AluOp::And } else { AluOp::Or }),
        }
    }

    /// `and` or `or` of the items (negated items under De Morgan).
    fn combine(&mut self, items: &[NodeId], negated: bool, level: usize, op: AluOp) {
        let dst = RESULTS[level];
        let pending: Vec<(NodeId, bool)> = items.iter().map(|item| (*item, negated)).collect();
        let mut first = true;
        for item in items {
            // A guard implied by a later test of the same conjunction is left out, as in
            // the jumping form (the test is false on its own when the header is absent).
            if let (Node::Present(source), false, AluOp::And) = (self.filter.node(*item), negated, op) {
                if implied_by_a_test(self.filter, *source, &pending) {
                    continue;
                }
            }
            if first {
                self.value(*item, negated, level);
                first = false;
            } else {
                self.value(*item, negated, level + 1);
                self.b.emit(Insn::alu64(op, dst, RESULTS[level + 1]));
            }
        }
        if first {
            self.b.emit(Insn::mov64(dst, i32::from(op == AluOp::And)));
        }
    }

    fn compare(&mut self, dst: Reg, field: Field, mask: Option<u128>, op: CmpOp, value: u128) {
        let words = self.layout.words(field).to_vec();
        let constant = split_words(field, value);
        if words.len() > 1 {
            self.wide_equal(dst, &words, &constant, &vec![u32::MAX; words.len()]);
            if op == CmpOp::Ne {
                self.b.emit(Insn::alu64(AluOp::Xor, dst, 1));
            }
            return;
        }
        self.b.emit(Insn::load(Size::W, dst, Reg::R10, words[0]));
        if let Some(mask) = mask {
            self.b.emit(Insn::alu32(AluOp::And, dst, Operand::imm_u32(mask as u32)));
        }
        let c = constant[0];
        match op {
            CmpOp::Eq | CmpOp::Ne => {
                self.b.emit(Insn::alu32(AluOp::Xor, dst, Operand::imm_u32(c)));
                self.is_zero(dst);
                if op == CmpOp::Ne {
                    self.b.emit(Insn::alu64(AluOp::Xor, dst, 1));
                }
            }
            CmpOp::Lt | CmpOp::Ge => {
                self.b.emit(Insn::alu32(AluOp::Mov, Reg::R2, Operand::imm_u32(c)));
                self.b.emit(Insn::alu64(AluOp::Sub, dst, Reg::R2));
                self.b.emit(Insn::alu64(AluOp::Rsh, dst, 63));
                if op == CmpOp::Ge {
                    self.b.emit(Insn::alu64(AluOp::Xor, dst, 1));
                }
            }
            CmpOp::Gt | CmpOp::Le => {
                self.b.emit(Insn::alu32(AluOp::Mov, Reg::R2, Operand::imm_u32(c)));
                self.b.emit(Insn::alu64(AluOp::Sub, Reg::R2, dst));
                self.b.emit(Insn::alu64(AluOp::Rsh, Reg::R2, 63));
                self.b.emit(Insn::mov64(dst, Reg::R2));
                if op == CmpOp::Le {
                    self.b.emit(Insn::alu64(AluOp::Xor, dst, 1));
                }
            }
        }
    }

    fn membership(&mut self, dst: Reg, field: Field, mask: Option<u128>, intervals: &[(u128, u128)]) {
        let words = self.layout.words(field).to_vec();
        let bits = if words.len() > 1 { 128 } else { 32 };
        self.b.emit(Insn::mov64(dst, 0));
        if words.len() == 1 {
            self.b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, words[0]));
            if let Some(mask) = mask {
                self.b.emit(Insn::alu32(AluOp::And, Reg::R1, Operand::imm_u32(mask as u32)));
            }
        }
        for &(low, high) in intervals {
            match (words.len(), prefix_mask(low, high, bits)) {
                (1, Some(prefix)) => {
                    self.b.emit(Insn::mov64(Reg::R3, Reg::R1));
                    self.b.emit(Insn::alu32(AluOp::And, Reg::R3, Operand::imm_u32(prefix as u32)));
                    self.b.emit(Insn::alu32(AluOp::Xor, Reg::R3, Operand::imm_u32(low as u32)));
                    self.is_zero(Reg::R3);
                }
                (1, None) => {
                    // (w - low) mod 2^32 < high - low + 1, which is below 2^32 here: a
                    // full-range interval is a prefix of length 0.
                    self.b.emit(Insn::mov64(Reg::R3, Reg::R1));
                    self.b.emit(Insn::alu32(AluOp::Sub, Reg::R3, Operand::imm_u32(low as u32)));
                    self.b.emit(Insn::alu32(AluOp::Mov, Reg::R2, Operand::imm_u32((high - low + 1) as u32)));
                    self.b.emit(Insn::alu64(AluOp::Sub, Reg::R3, Reg::R2));
                    self.b.emit(Insn::alu64(AluOp::Rsh, Reg::R3, 63));
                }
                (_, prefix) => {
                    let masks = split_words(field, prefix.unwrap_or(u128::MAX));
                    self.wide_equal(Reg::R3, &words, &split_words(field, low), &masks);
                }
            }
            self.b.emit(Insn::alu64(AluOp::Or, dst, Reg::R3));
        }
    }

    /// `dst = 1` if every masked word equals its constant, else 0.
    fn wide_equal(&mut self, dst: Reg, words: &[i16], constant: &[u32], masks: &[u32]) {
        self.b.emit(Insn::mov64(dst, 0));
        for ((slot, word), mask) in words.iter().zip(constant).zip(masks) {
            if *mask == 0 {
                continue;
            }
            self.b.emit(Insn::load(Size::W, Reg::R2, Reg::R10, *slot));
            if *mask != u32::MAX {
                self.b.emit(Insn::alu32(AluOp::And, Reg::R2, Operand::imm_u32(*mask)));
            }
            self.b.emit(Insn::alu32(AluOp::Xor, Reg::R2, Operand::imm_u32(*word)));
            self.b.emit(Insn::alu64(AluOp::Or, dst, Reg::R2));
        }
        self.is_zero(dst);
    }

    /// `reg = (reg == 0)` for a value below 2^32.
    fn is_zero(&mut self, reg: Reg) {
        self.b.emit(Insn::alu64(AluOp::Sub, reg, 1));
        self.b.emit(Insn::alu64(AluOp::Rsh, reg, 63));
    }

    fn negate_if(&mut self, reg: Reg, negated: bool) {
        if negated {
            self.b.emit(Insn::alu64(AluOp::Xor, reg, 1));
        }
    }

    fn negate_unless(&mut self, reg: Reg, negated: bool) {
        self.negate_if(reg, !negated);
    }
}

/// The mask `m` such that `[low, high]` is `{ v : v & m == low }`, if the interval is a
/// prefix of a `bits`-wide space.
fn prefix_mask(low: u128, high: u128, bits: u32) -> Option<u128> {
    let span = low ^ high;
    let full = if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 };
    let aligned =
        span.checked_add(1).map_or(true, |size| size.is_power_of_two()) && low & span == 0 && high == low | span;
    aligned.then_some(full & !span)
}

/// Whether one of `pending` is a test of a field of `source` that is false whenever
/// `source` is absent (see [`absent_is_out_of_range`]).
pub(crate) fn implied_by_a_test(filter: &Filter, source: Source, pending: &[(NodeId, bool)]) -> bool {
    pending.iter().any(|(id, negated)| {
        let (field, guard_free) = match filter.node(*id) {
            Node::Compare { field, mask: None, op, .. } => (*field, matches!(op, CmpOp::Eq | CmpOp::Lt | CmpOp::Le)),
            Node::InSet { field, mask: None, .. } => (*field, true),
            _ => return false,
        };
        !negated && guard_free && absent_is_out_of_range(field) && Source::of_field(field) == Some(source)
    })
}
