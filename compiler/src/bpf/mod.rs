//! Typed eBPF instructions in, resolved instructions, bytes and a readable listing out.
//!
//! ```text
//!  codegen ──emit/bind──▶ ProgramBuilder ──finish──▶ Program ──encode──▶ bytes ──▶ elf
//!  (Insn<Label>)           (one place resolves         (Insn<i32>)   ▲       │
//!                           labels to offsets)                       └decode─┘──▶ asm listing
//! ```
//!
//! The instruction set is deliberately the subset that both the Linux verifier and
//! rbpf 0.4.1 execute identically (see docs/platform.md):
//! - ALU/ALU64 (add sub mul div or and lsh rsh neg mod xor mov arsh), `be16/32/64`
//!   and `le16/32/64`; division and modulo are unsigned (`off` = 0 only);
//! - `ldx`/`stx`/`st` with the MEM mode (no MEMSX, no atomics), `lddw` (plain
//!   constants and map references), JMP and JMP32 conditional jumps, `ja`,
//!   helper `call`, `exit`.
//!
//! Not representable: ISA v4 (`sdiv`, `smod`, `movsx`, `ldsx`, `gotol`, `bswap`),
//! atomics, `LD_ABS`/`LD_IND`, bpf-to-bpf calls and kfuncs.
//!
//! **Invariant:** every jump goes forward, except a conditional jump back to a loop head
//! ([`ProgramBuilder::new_loop_label`]) whose every iteration is decided by a counter
//! known as a constant. rbpf has no instruction budget, so a program that cannot loop
//! forever is the only kind it runs safely: [`ProgramBuilder::finish`] rejects any other
//! backward jump with [`AsmError::BackwardJump`], and pfc's verifier (`verify`) walks
//! each loop iteration by iteration and refuses one whose back jump it cannot decide.
//!
//! **Immediates are 32-bit and sign-extended** wherever a 64-bit register is involved:
//! `Alu64 { op: Mov, src: Imm(-1) }` gives `0xffff_ffff_ffff_ffff`, and a 64-bit
//! `Jump` with `Imm(i32)` compares against the sign-extended value. For an unsigned
//! 32-bit constant ≥ 2³¹ use a 32-bit jump (`wide: false`) with [`Operand::imm_u32`],
//! or [`Operand::imm64`] / [`ProgramBuilder::jump_const`] which fall back to a register.

pub(crate) mod asm;
mod builder;
mod encode;
pub mod opcode;
#[cfg(test)]
mod tests;

pub use builder::{AsmError, Comment, Program, ProgramBuilder, RuleMark};
pub use encode::{decode, disassemble_code, encode, map_relocations, DecodeError, MapReloc};

/// One of the eleven eBPF registers. `R10` is the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reg {
    /// Return value, helper result.
    R0,
    /// First argument (the context pointer on entry).
    R1,
    /// Second argument.
    R2,
    /// Third argument.
    R3,
    /// Fourth argument.
    R4,
    /// Fifth argument.
    R5,
    /// Callee-saved.
    R6,
    /// Callee-saved.
    R7,
    /// Callee-saved.
    R8,
    /// Callee-saved.
    R9,
    /// Frame pointer (read-only); the stack is the 512 bytes below it.
    R10,
}

impl Reg {
    /// All registers, in number order.
    pub const ALL: [Reg; 11] =
        [Reg::R0, Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5, Reg::R6, Reg::R7, Reg::R8, Reg::R9, Reg::R10];

    /// What a helper call overwrites: `r0` (its result) and the argument registers
    /// `r1`–`r5`, which hold no defined value afterwards.
    pub const CALL_CLOBBERED: [Reg; 6] = [Reg::R0, Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5];

    /// The register's number (0..=10), as encoded in an instruction.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The register with this number, if it is one of R0..R10.
    pub(crate) fn from_number(n: u8) -> Option<Reg> {
        Reg::ALL.get(usize::from(n)).copied()
    }
}

/// The second operand of an ALU operation or a conditional jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A register (BPF_X).
    Reg(Reg),
    /// A 32-bit immediate (BPF_K), sign-extended in 64-bit operations.
    Imm(i32),
}

impl Operand {
    /// The immediate whose 32-bit pattern is `value`: exact in 32-bit operations
    /// (`Alu32`, `Jump { wide: false }`), sign-extended in 64-bit ones.
    pub fn imm_u32(value: u32) -> Operand {
        Operand::Imm(value as i32)
    }

    /// The immediate that a 64-bit operation sign-extends to exactly `value`, or
    /// `None` if there is none (then load `value` into a register with
    /// [`Insn::LoadImm64`] first).
    pub fn imm64(value: u64) -> Option<Operand> {
        let imm = value as i64;
        i32::try_from(imm).ok().map(Operand::Imm)
    }
}

impl From<Reg> for Operand {
    fn from(reg: Reg) -> Operand {
        Operand::Reg(reg)
    }
}

impl From<i32> for Operand {
    fn from(imm: i32) -> Operand {
        Operand::Imm(imm)
    }
}

/// Width of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// 1 byte (`u8`).
    B,
    /// 2 bytes (`u16`).
    H,
    /// 4 bytes (`u32`).
    W,
    /// 8 bytes (`u64`).
    DW,
}

impl Size {
    /// Number of bytes accessed.
    pub fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
}

/// An arithmetic or logic operation (`dst = dst OP src`; `Mov` is `dst = src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `dst += src`.
    Add,
    /// `dst -= src`.
    Sub,
    /// `dst *= src`.
    Mul,
    /// Unsigned `dst /= src`; the kernel gives 0 for a zero divisor.
    Div,
    /// `dst |= src`.
    Or,
    /// `dst &= src`.
    And,
    /// `dst <<= src`.
    Lsh,
    /// Logical `dst >>= src`.
    Rsh,
    /// Unsigned `dst %= src`; the kernel leaves `dst` unchanged for a zero divisor.
    Mod,
    /// `dst ^= src`.
    Xor,
    /// `dst = src`.
    Mov,
    /// Arithmetic (sign-propagating) `dst >>= src`.
    Arsh,
}

/// The comparison of a conditional jump (`if dst OP src goto target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JmpOp {
    /// `==`.
    Eq,
    /// Unsigned `>`.
    Gt,
    /// Unsigned `>=`.
    Ge,
    /// `dst & src != 0`.
    Set,
    /// `!=`.
    Ne,
    /// Signed `>`.
    Sgt,
    /// Signed `>=`.
    Sge,
    /// Unsigned `<`.
    Lt,
    /// Unsigned `<=`.
    Le,
    /// Signed `<`.
    Slt,
    /// Signed `<=`.
    Sle,
}

impl JmpOp {
    /// Whether `a OP b` holds as the kernel decides it: `wide` (`JMP`) compares all 64
    /// bits, else (`JMP32`) the low 32 bits, signed comparisons as `i64` / `i32`.
    pub fn holds(self, a: u64, b: u64, wide: bool) -> bool {
        let (a, b) = if wide { (a, b) } else { (a & 0xffff_ffff, b & 0xffff_ffff) };
        let signed = |v: u64| if wide { v as i64 } else { i64::from(v as u32 as i32) };
        match self {
            JmpOp::Eq => a == b,
            JmpOp::Ne => a != b,
            JmpOp::Gt => a > b,
            JmpOp::Ge => a >= b,
            JmpOp::Lt => a < b,
            JmpOp::Le => a <= b,
            JmpOp::Set => a & b != 0,
            JmpOp::Sgt => signed(a) > signed(b),
            JmpOp::Sge => signed(a) >= signed(b),
            JmpOp::Slt => signed(a) < signed(b),
            JmpOp::Sle => signed(a) <= signed(b),
        }
    }
}

/// Target byte order of an [`Insn::Endian`] conversion from host (little-endian) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `to_be`: byte-swap on a little-endian host (network order).
    Big,
    /// `to_le`: only truncates/zero-extends on a little-endian host.
    Little,
}

/// Width of an [`Insn::Endian`] conversion; the result is zero-extended to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndianWidth {
    /// The low 16 bits.
    W16,
    /// The low 32 bits.
    W32,
    /// All 64 bits.
    W64,
}

impl EndianWidth {
    /// Number of bits converted.
    pub fn bits(self) -> u32 {
        match self {
            EndianWidth::W16 => 16,
            EndianWidth::W32 => 32,
            EndianWidth::W64 => 64,
        }
    }
}

/// A jump target inside one [`ProgramBuilder`]: created by
/// [`ProgramBuilder::new_label`], placed by [`ProgramBuilder::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(u32);

impl Label {
    /// The label's number within its builder (`L<n>` in listings of unresolved code).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// One eBPF instruction. `T` is the jump target: a [`Label`] while building, a
/// slot offset relative to the next instruction (`i16`) once resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Insn<T = Label> {
    /// 64-bit ALU operation (immediate sign-extended).
    Alu64 {
        /// The operation.
        op: AluOp,
        /// Destination and first operand.
        dst: Reg,
        /// Second operand.
        src: Operand,
    },
    /// 32-bit ALU operation; the result is zero-extended into the 64-bit `dst`.
    Alu32 {
        /// The operation.
        op: AluOp,
        /// Destination and first operand.
        dst: Reg,
        /// Second operand.
        src: Operand,
    },
    /// `dst = -dst` on 64 bits (`wide`) or 32 bits (zero-extended).
    Neg {
        /// 64-bit (ALU64) rather than 32-bit (ALU).
        wide: bool,
        /// The register negated in place.
        dst: Reg,
    },
    /// Byte-order conversion of `dst` in place (`be16`, `le32`, ...).
    Endian {
        /// Target byte order.
        order: ByteOrder,
        /// Width converted.
        width: EndianWidth,
        /// The register converted in place.
        dst: Reg,
    },
    /// `dst = *(size *)(src + off)` (ldx, zero-extending).
    Load {
        /// Access width.
        size: Size,
        /// Destination register.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Byte offset from `src`.
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (stx).
    Store {
        /// Access width.
        size: Size,
        /// Base address register.
        dst: Reg,
        /// Byte offset from `dst`.
        off: i16,
        /// Register whose low `size` bytes are stored.
        src: Reg,
    },
    /// `*(size *)(dst + off) = imm` (st; for `DW` the immediate is sign-extended).
    StoreImm {
        /// Access width.
        size: Size,
        /// Base address register.
        dst: Reg,
        /// Byte offset from `dst`.
        off: i16,
        /// The value stored.
        imm: i32,
    },
    /// `dst = imm` with a full 64-bit constant (lddw, two slots).
    LoadImm64 {
        /// Destination register.
        dst: Reg,
        /// The constant.
        imm: u64,
    },
    /// `dst = &map` (lddw, two slots, `src` = 0, `imm` = map index). The ELF writer
    /// puts an `R_BPF_64_64` relocation here; libbpf patches in the map fd, rbpf sees
    /// the index as a handle.
    LoadMapIndex {
        /// Destination register.
        dst: Reg,
        /// Index of the map in the object's map list.
        map: u32,
    },
    /// `if dst OP src goto target` (JMP when `wide`, else JMP32 on the low 32 bits).
    Jump {
        /// The comparison.
        op: JmpOp,
        /// Compare all 64 bits (JMP) rather than the low 32 (JMP32).
        wide: bool,
        /// First operand.
        dst: Reg,
        /// Second operand (immediate sign-extended when `wide`).
        src: Operand,
        /// Where to go when the comparison holds; must be later in the program.
        target: T,
    },
    /// `goto target` (unconditional, forward only). Resolved, it is encoded as `goto`
    /// (16-bit offset) up to [`opcode::GOTO_REACH`] slots, else as `gotol` (32-bit
    /// offset, ISA v4, kernel 6.6 and later), so a program needs kernel 6.6 only when it
    /// has a jump that far.
    Ja {
        /// Where to go; must be later in the program.
        target: T,
    },
    /// `call helper` (a kernel helper by number, e.g. 1 = `bpf_map_lookup_elem`).
    Call {
        /// Helper function id.
        helper: u32,
    },
    /// `exit`: return `r0`.
    Exit,
}

/// An instruction whose jump target is an offset in slots from the next instruction
/// (a conditional jump's fits in 16 bits, a `goto`'s in 32: see [`Insn::Ja`]).
pub(crate) type ResolvedInsn = Insn<i32>;

impl<T> Insn<T> {
    /// Number of 8-byte slots the instruction occupies (2 for lddw, else 1).
    pub fn slots(&self) -> usize {
        match self {
            Insn::LoadImm64 { .. } | Insn::LoadMapIndex { .. } => 2,
            _ => 1,
        }
    }

    /// The register this instruction gives a new value: `dst` of ALU operations, loads
    /// and `lddw`; `None` for stores (they write memory), jumps and `exit`, and for `call`,
    /// which sets `r0` and leaves `r1`–`r5` unspecified (see [`Reg::CALL_CLOBBERED`]). The
    /// one definition pfc's verifier and the VM's stack-argument analysis both use.
    pub fn written_register(&self) -> Option<Reg> {
        match *self {
            Insn::Alu64 { dst, .. }
            | Insn::Alu32 { dst, .. }
            | Insn::Neg { dst, .. }
            | Insn::Endian { dst, .. }
            | Insn::Load { dst, .. }
            | Insn::LoadImm64 { dst, .. }
            | Insn::LoadMapIndex { dst, .. } => Some(dst),
            Insn::Store { .. } | Insn::StoreImm { .. } | Insn::Jump { .. } | Insn::Ja { .. } | Insn::Call { .. } => {
                None
            }
            Insn::Exit => None,
        }
    }

    /// The jump target, if this is a jump.
    pub fn target(&self) -> Option<&T> {
        match self {
            Insn::Jump { target, .. } | Insn::Ja { target } => Some(target),
            _ => None,
        }
    }

    /// The same instruction with its jump target (if any) replaced by `f(target)`.
    pub(crate) fn try_map_target<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Insn<U>, E> {
        Ok(match self {
            Insn::Jump { op, wide, dst, src, target } => Insn::Jump { op, wide, dst, src, target: f(target)? },
            Insn::Ja { target } => Insn::Ja { target: f(target)? },
            Insn::Alu64 { op, dst, src } => Insn::Alu64 { op, dst, src },
            Insn::Alu32 { op, dst, src } => Insn::Alu32 { op, dst, src },
            Insn::Neg { wide, dst } => Insn::Neg { wide, dst },
            Insn::Endian { order, width, dst } => Insn::Endian { order, width, dst },
            Insn::Load { size, dst, src, off } => Insn::Load { size, dst, src, off },
            Insn::Store { size, dst, off, src } => Insn::Store { size, dst, off, src },
            Insn::StoreImm { size, dst, off, imm } => Insn::StoreImm { size, dst, off, imm },
            Insn::LoadImm64 { dst, imm } => Insn::LoadImm64 { dst, imm },
            Insn::LoadMapIndex { dst, map } => Insn::LoadMapIndex { dst, map },
            Insn::Call { helper } => Insn::Call { helper },
            Insn::Exit => Insn::Exit,
        })
    }

    /// `dst = src` on 64 bits (an immediate is sign-extended).
    pub fn mov64(dst: Reg, src: impl Into<Operand>) -> Insn<T> {
        Insn::Alu64 { op: AluOp::Mov, dst, src: src.into() }
    }

    /// `dst = dst OP src` on 64 bits.
    pub fn alu64(op: AluOp, dst: Reg, src: impl Into<Operand>) -> Insn<T> {
        Insn::Alu64 { op, dst, src: src.into() }
    }

    /// `dst = dst OP src` on 32 bits, zero-extended.
    pub fn alu32(op: AluOp, dst: Reg, src: impl Into<Operand>) -> Insn<T> {
        Insn::Alu32 { op, dst, src: src.into() }
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(size: Size, dst: Reg, src: Reg, off: i16) -> Insn<T> {
        Insn::Load { size, dst, src, off }
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(size: Size, dst: Reg, off: i16, src: Reg) -> Insn<T> {
        Insn::Store { size, dst, off, src }
    }

    /// `if dst OP src goto target`, comparing 64 bits.
    pub fn jump64(op: JmpOp, dst: Reg, src: impl Into<Operand>, target: T) -> Insn<T> {
        Insn::Jump { op, wide: true, dst, src: src.into(), target }
    }

    /// `if wDST OP src goto target`, comparing the low 32 bits.
    pub fn jump32(op: JmpOp, dst: Reg, src: impl Into<Operand>, target: T) -> Insn<T> {
        Insn::Jump { op, wide: false, dst, src: src.into(), target }
    }
}
