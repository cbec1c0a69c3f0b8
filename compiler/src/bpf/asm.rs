//! Instructions in, a human-readable listing out, in bpftool's C-like syntax.
//!
//! ```text
//!     ; rule ssh_inside
//!    5: if r4 > r3 goto L0
//!    6: r1 = map[0]
//! L0:
//!    8: r0 = 2
//!    9: exit
//! ```
//!
//! Numbers on the left are slot indices (what verifier logs and `llvm-objdump` show);
//! labels `L<n>` are numbered in program order; comments print above their instruction.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::{AluOp, ByteOrder, Comment, Insn, JmpOp, Label, Operand, Reg, ResolvedInsn, Size};

/// A listing of resolved instructions with synthesized labels and the given comments;
/// `long(i)`: whether instruction `i`, a `goto`, is written as `gotol`.
pub(crate) fn disassemble(insns: &[ResolvedInsn], comments: &[Comment], long: impl Fn(usize) -> bool) -> String {
    let starts = slot_starts(insns);
    // Target slot → label number, numbered in slot order.
    let mut labels = BTreeMap::new();
    for (insn, &slot) in insns.iter().zip(&starts) {
        if let Some(&off) = insn.target() {
            labels.insert(slot as i64 + 1 + i64::from(off), 0usize);
        }
    }
    for (number, value) in labels.values_mut().enumerate() {
        *value = number;
    }
    let mut out = String::new();
    // Comments are in instruction order (the builder appends them); sorting a copy keeps
    // the listing linear in the program's size for any input.
    let mut ordered: Vec<&Comment> = comments.iter().collect();
    ordered.sort_by_key(|comment| comment.insn);
    let mut next_comment = 0;
    for (index, (insn, &slot)) in insns.iter().zip(&starts).enumerate() {
        if let Some(number) = labels.get(&(slot as i64)) {
            let _ = writeln!(out, "L{number}:");
        }
        while let Some(comment) = ordered.get(next_comment).filter(|comment| comment.insn <= index) {
            if comment.insn == index {
                let _ = writeln!(out, "    ; {}", comment.text);
            }
            next_comment += 1;
        }
        let text = listed(insn, long(index), |&off| {
            let target = slot as i64 + 1 + i64::from(off);
            match labels.get(&target) {
                Some(number) if usize::try_from(target).is_ok_and(|at| starts.binary_search(&at).is_ok()) => {
                    format!("L{number}")
                }
                _ => format!("{off:+}"),
            }
        });
        let _ = writeln!(out, "{slot:4}: {text}");
    }
    out
}

/// Slot index of each instruction.
fn slot_starts<T>(insns: &[Insn<T>]) -> Vec<usize> {
    let mut slot = 0;
    insns
        .iter()
        .map(|insn| {
            let start = slot;
            slot += insn.slots();
            start
        })
        .collect()
}

impl fmt::Display for Insn<Label> {
    /// One instruction, jump targets printed as `L<label number>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&insn_to_string(self, |label| format!("L{}", label.index())))
    }
}

/// A resolved instruction as text: a `goto` the encoder writes with a 32-bit offset is
/// `gotol` (the name bpftool and LLVM give it).
pub(crate) fn resolved_to_string(insn: &ResolvedInsn, target: impl Fn(&i32) -> String) -> String {
    listed(insn, written_long(insn), target)
}

/// Whether the encoder writes `insn` as `gotol`.
pub(crate) fn written_long(insn: &ResolvedInsn) -> bool {
    matches!(insn, Insn::Ja { target } if super::opcode::is_gotol(*target))
}

/// A resolved instruction as text, a `goto` named `gotol` when `long`.
fn listed(insn: &ResolvedInsn, long: bool, target: impl Fn(&i32) -> String) -> String {
    let text = insn_to_string(insn, target);
    match insn {
        Insn::Ja { .. } if long => text.replacen("goto", "gotol", 1),
        _ => text,
    }
}

/// One instruction in bpftool syntax; `target` renders a jump target.
pub(crate) fn insn_to_string<T>(insn: &Insn<T>, target: impl Fn(&T) -> String) -> String {
    match insn {
        Insn::Alu64 { op, dst, src } => alu(*op, reg(*dst), operand(*src, true)),
        Insn::Alu32 { op, dst, src } => alu(*op, wreg(*dst), operand(*src, false)),
        Insn::Neg { wide: true, dst } => format!("{0} = -{0}", reg(*dst)),
        Insn::Neg { wide: false, dst } => format!("{0} = -{0}", wreg(*dst)),
        Insn::Endian { order, width, dst } => {
            let name = match order {
                ByteOrder::Big => "be",
                ByteOrder::Little => "le",
            };
            format!("{0} = {name}{1} {0}", reg(*dst), width.bits())
        }
        Insn::Load { size, dst, src, off } => format!("{} = {}", reg(*dst), mem(*size, *src, *off)),
        Insn::Store { size, dst, off, src } => format!("{} = {}", mem(*size, *dst, *off), reg(*src)),
        Insn::StoreImm { size, dst, off, imm } => format!("{} = {imm}", mem(*size, *dst, *off)),
        Insn::LoadImm64 { dst, imm } => format!("{} = {imm:#x} ll", reg(*dst)),
        Insn::LoadMapIndex { dst, map } => format!("{} = map[{map}]", reg(*dst)),
        Insn::Jump { op, wide, dst, src, target: t } => {
            let lhs = if *wide { reg(*dst) } else { wreg(*dst) };
            let rhs = operand(*src, *wide);
            format!("if {lhs} {} {rhs} goto {}", jmp_symbol(*op), target(t))
        }
        Insn::Ja { target: t } => format!("goto {}", target(t)),
        Insn::Call { helper } => format!("call {helper}"),
        Insn::Exit => "exit".to_string(),
    }
}

fn reg(r: Reg) -> String {
    format!("r{}", r.number())
}

fn wreg(r: Reg) -> String {
    format!("w{}", r.number())
}

fn operand(src: Operand, wide: bool) -> String {
    match (src, wide) {
        (Operand::Reg(r), true) => reg(r),
        (Operand::Reg(r), false) => wreg(r),
        (Operand::Imm(imm), _) => imm.to_string(),
    }
}

fn mem(size: Size, base: Reg, off: i16) -> String {
    let sign = if off < 0 { '-' } else { '+' };
    let ty = match size {
        Size::B => "u8",
        Size::H => "u16",
        Size::W => "u32",
        Size::DW => "u64",
    };
    format!("*({ty} *)({} {sign} {})", reg(base), off.unsigned_abs())
}

fn alu(op: AluOp, dst: String, src: String) -> String {
    let symbol = match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov => "=",
        AluOp::Arsh => "s>>=",
    };
    format!("{dst} {symbol} {src}")
}

fn jmp_symbol(op: JmpOp) -> &'static str {
    match op {
        JmpOp::Eq => "==",
        JmpOp::Gt => ">",
        JmpOp::Ge => ">=",
        JmpOp::Set => "&",
        JmpOp::Ne => "!=",
        JmpOp::Sgt => "s>",
        JmpOp::Sge => "s>=",
        JmpOp::Lt => "<",
        JmpOp::Le => "<=",
        JmpOp::Slt => "s<",
        JmpOp::Sle => "s<=",
    }
}
