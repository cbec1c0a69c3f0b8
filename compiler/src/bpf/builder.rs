//! Instructions with labels in, a resolved [`Program`] (jump offsets in slots) out.
//!
//! [`ProgramBuilder::finish`] is the one place where labels become offsets. It
//! checks that every label used is bound exactly once, that every jump goes
//! forward — except a conditional jump back to a label made by
//! [`ProgramBuilder::new_loop_label`] (a bounded loop's head) — and that every target is
//! an instruction (not the end of the program).

use super::{asm, ResolvedInsn};
use super::{encode, map_relocations, AluOp, Insn, JmpOp, Label, MapReloc, Operand, Reg};

/// A comment attached to the instruction at index `insn` (an index into
/// [`Program::insns`], not a slot); listings print it above the instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Index of the instruction the comment precedes.
    pub insn: usize,
    /// The text, one line.
    pub text: String,
}

/// From instruction `insn` on (an index into [`Program::insns`]), the code is rule
/// `rule`'s (`None`: no one rule's), until the next mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleMark {
    /// Index of the first instruction the mark covers.
    pub insn: usize,
    /// The rule's index in the filter, or `None`.
    pub rule: Option<usize>,
}

/// Why a builder's instructions do not form a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    /// A jump refers to a label that was never bound.
    #[error("instruction {insn}: jump to label L{label} which is never bound")]
    UnboundLabel {
        /// Index of the jump instruction.
        insn: usize,
        /// The label's number.
        label: u32,
    },
    /// A label was bound twice.
    #[error("label L{label} bound twice (at instructions {first} and {second})")]
    ReboundLabel {
        /// The label's number.
        label: u32,
        /// Where it was bound first.
        first: usize,
        /// Where it was bound again.
        second: usize,
    },
    /// A label was not created by this builder.
    #[error("label L{label} does not belong to this builder")]
    ForeignLabel {
        /// The label's number.
        label: u32,
    },
    /// A jump goes backward (or to itself) other than a conditional jump to a loop head
    /// ([`ProgramBuilder::new_loop_label`]).
    #[error("instruction {insn}: backward jump to label L{label} at instruction {target}")]
    BackwardJump {
        /// Index of the jump instruction.
        insn: usize,
        /// The label's number.
        label: u32,
        /// Index of the instruction the label is bound to.
        target: usize,
    },
    /// A label is bound after the last instruction, so a jump to it leaves the program.
    #[error("instruction {insn}: jump to label L{label} which is bound past the last instruction")]
    JumpPastEnd {
        /// Index of the jump instruction.
        insn: usize,
        /// The label's number.
        label: u32,
    },
    /// A jump spans more than `i16::MAX` slots.
    #[error("instruction {insn}: jump of {distance} slots does not fit in 16 bits")]
    JumpTooFar {
        /// Index of the jump instruction.
        insn: usize,
        /// The distance in slots.
        distance: usize,
    },
}

/// Collects instructions and labels; [`finish`](ProgramBuilder::finish) resolves them.
#[derive(Debug, Default)]
pub struct ProgramBuilder {
    insns: Vec<Insn<Label>>,
    /// Per label: the index of the instruction it is bound before.
    bound: Vec<Option<usize>>,
    /// Labels that conditional jumps may reach backward (loop heads).
    loop_heads: Vec<u32>,
    comments: Vec<Comment>,
    rules: Vec<RuleMark>,
    /// Problems found while binding, reported by `finish`.
    errors: Vec<AsmError>,
}

impl ProgramBuilder {
    /// An empty builder.
    pub fn new() -> ProgramBuilder {
        ProgramBuilder::default()
    }

    /// A fresh, unbound label.
    pub fn new_label(&mut self) -> Label {
        self.bound.push(None);
        Label(self.bound.len() as u32 - 1)
    }

    /// A fresh label for the head of a loop: conditional jumps may go back to it (only
    /// those: pfc's verifier requires every backward jump to be decided by constants it
    /// knows, so that it can walk each iteration and prove the loop ends).
    pub fn new_loop_label(&mut self) -> Label {
        let label = self.new_label();
        self.loop_heads.push(label.0);
        label
    }

    /// Binds `label` to the next instruction emitted. Binding twice, or a label from
    /// another builder, is reported by [`finish`](ProgramBuilder::finish).
    pub fn bind(&mut self, label: Label) {
        let here = self.insns.len();
        match self.bound.get_mut(label.0 as usize) {
            None => self.errors.push(AsmError::ForeignLabel { label: label.0 }),
            Some(Some(first)) => {
                self.errors.push(AsmError::ReboundLabel { label: label.0, first: *first, second: here })
            }
            Some(slot @ None) => *slot = Some(here),
        }
    }

    /// Appends an instruction.
    pub fn emit(&mut self, insn: Insn<Label>) {
        self.insns.push(insn);
    }

    /// Attaches a one-line comment to the next instruction emitted.
    pub fn comment(&mut self, text: impl Into<String>) {
        self.comments.push(Comment { insn: self.insns.len(), text: text.into() });
    }

    /// Attributes the instructions emitted from now on to rule `rule` (a comment says
    /// which rule), until [`ProgramBuilder::end_rule`]: diagnostics about generated code
    /// point at the rule it came from.
    pub fn begin_rule(&mut self, rule: usize, comment: impl Into<String>) {
        self.comment(comment);
        self.rules.push(RuleMark { insn: self.insns.len(), rule: Some(rule) });
    }

    /// Ends the rule begun by [`ProgramBuilder::begin_rule`]: what follows is no one
    /// rule's code.
    pub fn end_rule(&mut self) {
        self.rules.push(RuleMark { insn: self.insns.len(), rule: None });
    }

    /// Number of instructions emitted so far.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether the last instruction emitted is an unconditional jump (nothing falls
    /// through it).
    pub(crate) fn ends_with_goto(&self) -> bool {
        matches!(self.insns.last(), Some(Insn::Ja { .. }))
    }

    /// Whether no instruction was emitted yet.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// `dst = value` for any 64-bit constant: a `mov` when the sign-extended
    /// immediate is exact, otherwise a two-slot `lddw`.
    pub(crate) fn mov_const(&mut self, dst: Reg, value: u64) {
        match Operand::imm64(value) {
            Some(imm) => self.emit(Insn::mov64(dst, imm)),
            None => self.emit(Insn::LoadImm64 { dst, imm: value }),
        }
    }

    /// `if dst OP value goto target` comparing all 64 bits against the unsigned
    /// constant `value`, using `scratch` when the immediate would sign-extend wrongly.
    pub fn jump_const(&mut self, op: JmpOp, dst: Reg, value: u64, scratch: Reg, target: Label) {
        let src = match Operand::imm64(value) {
            Some(imm) => imm,
            None => {
                self.mov_const(scratch, value);
                Operand::Reg(scratch)
            }
        };
        self.emit(Insn::jump64(op, dst, src, target));
    }

    /// `dst = dst OP src` on 64 bits (shorthand for [`Insn::alu64`]).
    pub fn alu64(&mut self, op: AluOp, dst: Reg, src: impl Into<Operand>) {
        self.emit(Insn::alu64(op, dst, src));
    }

    /// Resolves labels to slot offsets. This is the only place offsets are computed.
    ///
    /// A `goto` to the instruction right after it (also after other such `goto`s were
    /// dropped) is dropped: the kernel verifier removes each of these no-ops one at a
    /// time, moving every later instruction each time, which made its load time of a
    /// classifier with thousands of them quadratic in the program's size. Comments and
    /// rule marks of a dropped instruction move to the next one.
    pub fn finish(self) -> Result<Program, AsmError> {
        if let Some(error) = self.errors.into_iter().next() {
            return Err(error);
        }
        let count = self.insns.len();
        let bound = &self.bound;
        // Every jump checked, its target as an instruction index (u32::MAX: no jump).
        let mut targets = Vec::with_capacity(count);
        for (index, insn) in self.insns.iter().enumerate() {
            let Some(label) = insn.target() else {
                targets.push(u32::MAX);
                continue;
            };
            let target = bound
                .get(label.0 as usize)
                .ok_or(AsmError::ForeignLabel { label: label.0 })?
                .ok_or(AsmError::UnboundLabel { insn: index, label: label.0 })?;
            let loop_back = || matches!(insn, Insn::Jump { .. }) && self.loop_heads.contains(&label.0);
            if target <= index && !loop_back() {
                return Err(AsmError::BackwardJump { insn: index, label: label.0, target });
            }
            if target >= count {
                return Err(AsmError::JumpPastEnd { insn: index, label: label.0 });
            }
            targets.push(target as u32);
        }
        // From the end: kept_from[k] = instructions kept in k..count; a `goto` is dropped
        // when nothing kept lies between it and its target.
        let mut kept_from = vec![0u32; count + 1];
        for index in (0..count).rev() {
            let keep = match self.insns[index] {
                Insn::Ja { .. } => kept_from[index + 1] != kept_from[targets[index] as usize],
                _ => true,
            };
            kept_from[index] = kept_from[index + 1] + u32::from(keep);
        }
        let kept_count = kept_from[0] as usize;
        // The new index of instruction k (of the next kept one when k is dropped).
        let renumber = |k: usize| kept_count - kept_from[k] as usize;
        let is_kept = |k: usize| kept_from[k] != kept_from[k + 1];
        // Slot index of each kept instruction, plus one past the end.
        let mut slot_of = Vec::with_capacity(kept_count + 1);
        let mut slot = 0usize;
        for (index, insn) in self.insns.iter().enumerate() {
            if is_kept(index) {
                slot_of.push(slot);
                slot += insn.slots();
            }
        }
        slot_of.push(slot);
        let mut insns = Vec::with_capacity(kept_count);
        for (index, insn) in self.insns.into_iter().enumerate() {
            if !is_kept(index) {
                continue;
            }
            let at = insns.len();
            // A conditional jump's offset is 16 bits; a `goto`'s 32 (`gotol`).
            let conditional = matches!(insn, Insn::Jump { .. });
            insns.push(insn.try_map_target(|_| {
                let distance = slot_of[renumber(targets[index] as usize)] as i64 - slot_of[at] as i64 - 1;
                let fits = match conditional {
                    true => i16::try_from(distance).is_ok(),
                    false => i32::try_from(distance).is_ok(),
                };
                match fits {
                    true => Ok(distance as i32),
                    false => Err(AsmError::JumpTooFar { insn: at, distance: distance.unsigned_abs() as usize }),
                }
            })?);
        }
        let comments =
            self.comments.into_iter().map(|comment| Comment { insn: renumber(comment.insn), ..comment }).collect();
        let rules = self.rules.into_iter().map(|mark| RuleMark { insn: renumber(mark.insn), ..mark }).collect();
        Ok(Program { insns, comments, rules, map_values: Vec::new() })
    }
}

/// A resolved program: instructions with slot offsets, plus listing comments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    /// The instructions, jump targets as offsets in slots from the next instruction.
    pub insns: Vec<ResolvedInsn>,
    /// Comments for the listing, in instruction order.
    pub comments: Vec<Comment>,
    /// Which rule's code each instruction is, as marks in instruction order.
    pub rules: Vec<RuleMark>,
    /// Bytes of a value of each map, by map index, where the code reads past the first
    /// [`crate::verify::MAP_VALUE_SIZE`] (pfc's verifier checks map value accesses
    /// against it; maps not listed have values of that size).
    pub map_values: Vec<u32>,
}

impl Program {
    /// The rule whose code instruction `insn` is, if it is one rule's.
    pub fn rule_of(&self, insn: usize) -> Option<usize> {
        let after = self.rules.partition_point(|mark| mark.insn <= insn);
        after.checked_sub(1).and_then(|last| self.rules[last].rule)
    }

    /// The bytecode (see [`encode`](super::encode)).
    pub fn encode(&self) -> Vec<u8> {
        encode(&self.insns)
    }

    /// The map references, for the ELF writer's relocations.
    pub fn map_relocations(&self) -> Vec<MapReloc> {
        map_relocations(&self.insns)
    }

    /// A bpftool-like listing with labels and comments (see `asm`).
    pub fn disassemble(&self) -> String {
        asm::disassemble(&self.insns, &self.comments, |index| asm::written_long(&self.insns[index]))
    }

    /// Number of 8-byte slots (what the verifier counts as instructions).
    pub fn slots(&self) -> usize {
        self.insns.iter().map(|i| i.slots()).sum()
    }
}
