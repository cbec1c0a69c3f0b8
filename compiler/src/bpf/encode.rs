//! Resolved instructions in, little-endian bytecode out (and back).
//!
//! [`encode`] is the only function that turns an [`Insn`] into bytes: 8 bytes per
//! slot, `opcode | dst:4 src:4 | off:i16 | imm:i32`, and a second slot carrying the
//! upper 32 bits of a `lddw`. [`decode`] is its inverse on the supported subset and
//! rejects everything else (ISA v4, atomics, `LD_ABS`, bpf-to-bpf calls) by value.

use super::opcode::{self as op, alu, jmp};
use super::{AluOp, ByteOrder, EndianWidth, Insn, JmpOp, Operand, Reg, ResolvedInsn, Size};

/// A map reference: the `lddw` at `slot` (index of its first 8-byte slot) loads map
/// number `map`. The ELF writer turns each into an `R_BPF_64_64` relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapReloc {
    /// Slot index of the `lddw` (byte offset / 8).
    pub slot: usize,
    /// Index of the map in the object's map list.
    pub map: u32,
}

/// Why some bytes are not a program in the supported instruction subset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The byte count is not a multiple of 8.
    #[error("bytecode length {len} is not a multiple of 8")]
    Length {
        /// The byte count.
        len: usize,
    },
    /// The opcode byte is not one pfc emits or accepts.
    #[error("slot {slot}: unsupported opcode {code:#04x}")]
    UnsupportedOpcode {
        /// Slot index.
        slot: usize,
        /// The opcode byte.
        code: u8,
    },
    /// A register field is above 10.
    #[error("slot {slot}: invalid register number {number}")]
    InvalidRegister {
        /// Slot index.
        slot: usize,
        /// The register number found.
        number: u8,
    },
    /// A field that must be zero for this opcode is not (e.g. `off` = 1 is `sdiv`).
    #[error("slot {slot}: field `{field}` must be zero for opcode {code:#04x}")]
    NonZeroField {
        /// Slot index.
        slot: usize,
        /// The opcode byte.
        code: u8,
        /// Name of the offending field.
        field: &'static str,
    },
    /// A `lddw` is the last slot, or its second slot is malformed.
    #[error("slot {slot}: truncated or malformed lddw")]
    BadLoadImm64 {
        /// Slot index of the first half.
        slot: usize,
    },
    /// A jump lands outside the program or inside a `lddw`.
    #[error("slot {slot}: jump offset {off} lands outside an instruction boundary")]
    BadJumpTarget {
        /// Slot index of the jump.
        slot: usize,
        /// Its offset.
        off: i32,
    },
}

/// The map references of a resolved program, in program order.
pub fn map_relocations(insns: &[ResolvedInsn]) -> Vec<MapReloc> {
    let mut slot = 0;
    let mut relocs = Vec::new();
    for insn in insns {
        if let Insn::LoadMapIndex { map, .. } = insn {
            relocs.push(MapReloc { slot, map: *map });
        }
        slot += insn.slots();
    }
    relocs
}

/// Raw fields of one 8-byte slot.
struct Slot {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Slot {
    fn new(code: u8, dst: Reg, src: u8, off: i16, imm: i32) -> Slot {
        Slot { code, dst: dst.number(), src, off, imm }
    }

    fn push(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push((self.src << 4) | (self.dst & 0x0f));
        out.extend_from_slice(&self.off.to_le_bytes());
        out.extend_from_slice(&self.imm.to_le_bytes());
    }
}

/// The operand's source bit, register number and immediate.
fn operand_fields(src: Operand) -> (u8, u8, i32) {
    match src {
        Operand::Reg(r) => (op::SRC_X, r.number(), 0),
        Operand::Imm(imm) => (op::SRC_K, 0, imm),
    }
}

/// Encodes resolved instructions: 8 bytes per slot, 16 for `lddw`.
pub fn encode(insns: &[ResolvedInsn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 8);
    for insn in insns {
        let (first, second) = match *insn {
            Insn::Alu64 { op, dst, src } | Insn::Alu32 { op, dst, src } => {
                let class = match insn {
                    Insn::Alu64 { .. } => op::CLASS_ALU64,
                    _ => op::CLASS_ALU,
                };
                let (source, s, imm) = operand_fields(src);
                (Slot::new(class | source | alu_code(op), dst, s, 0, imm), None)
            }
            Insn::Neg { wide, dst } => {
                let class = if wide { op::CLASS_ALU64 } else { op::CLASS_ALU };
                (Slot::new(class | alu::NEG, dst, 0, 0, 0), None)
            }
            Insn::Endian { order, width, dst } => {
                let source = match order {
                    ByteOrder::Big => op::END_TO_BE,
                    ByteOrder::Little => op::END_TO_LE,
                };
                let code = op::CLASS_ALU | source | alu::END;
                (Slot::new(code, dst, 0, 0, width.bits() as i32), None)
            }
            Insn::Load { size, dst, src, off } => {
                let code = op::CLASS_LDX | size_code(size) | op::MODE_MEM;
                (Slot::new(code, dst, src.number(), off, 0), None)
            }
            Insn::Store { size, dst, off, src } => {
                let code = op::CLASS_STX | size_code(size) | op::MODE_MEM;
                (Slot::new(code, dst, src.number(), off, 0), None)
            }
            Insn::StoreImm { size, dst, off, imm } => {
                let code = op::CLASS_ST | size_code(size) | op::MODE_MEM;
                (Slot::new(code, dst, 0, off, imm), None)
            }
            Insn::LoadImm64 { dst, imm } => {
                (Slot::new(op::LDDW, dst, 0, 0, imm as u32 as i32), Some((imm >> 32) as u32 as i32))
            }
            Insn::LoadMapIndex { dst, map } => (Slot::new(op::LDDW, dst, 0, 0, map as i32), Some(0)),
            Insn::Jump { op, wide, dst, src, target } => {
                let class = if wide { op::CLASS_JMP } else { op::CLASS_JMP32 };
                let (source, s, imm) = operand_fields(src);
                // `ProgramBuilder::finish` and `decode` keep conditional offsets in 16 bits.
                let off = i16::try_from(target).expect("a conditional jump's offset fits in 16 bits");
                (Slot::new(class | source | jmp_code(op), dst, s, off, imm), None)
            }
            Insn::Ja { target } => match op::is_gotol(target) {
                false => (Slot::new(op::JA, Reg::R0, 0, target as i16, 0), None),
                true => (Slot::new(op::JA32, Reg::R0, 0, 0, target), None),
            },
            Insn::Call { helper } => (Slot::new(op::CALL, Reg::R0, 0, 0, helper as i32), None),
            Insn::Exit => (Slot::new(op::EXIT, Reg::R0, 0, 0, 0), None),
        };
        first.push(&mut out);
        if let Some(high) = second {
            Slot::new(0, Reg::R0, 0, 0, high).push(&mut out);
        }
    }
    out
}

fn alu_code(op: AluOp) -> u8 {
    match op {
        AluOp::Add => alu::ADD,
        AluOp::Sub => alu::SUB,
        AluOp::Mul => alu::MUL,
        AluOp::Div => alu::DIV,
        AluOp::Or => alu::OR,
        AluOp::And => alu::AND,
        AluOp::Lsh => alu::LSH,
        AluOp::Rsh => alu::RSH,
        AluOp::Mod => alu::MOD,
        AluOp::Xor => alu::XOR,
        AluOp::Mov => alu::MOV,
        AluOp::Arsh => alu::ARSH,
    }
}

const ALU_OPS: [AluOp; 12] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::Or,
    AluOp::And,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Mod,
    AluOp::Xor,
    AluOp::Mov,
    AluOp::Arsh,
];

fn jmp_code(op: JmpOp) -> u8 {
    match op {
        JmpOp::Eq => jmp::JEQ,
        JmpOp::Gt => jmp::JGT,
        JmpOp::Ge => jmp::JGE,
        JmpOp::Set => jmp::JSET,
        JmpOp::Ne => jmp::JNE,
        JmpOp::Sgt => jmp::JSGT,
        JmpOp::Sge => jmp::JSGE,
        JmpOp::Lt => jmp::JLT,
        JmpOp::Le => jmp::JLE,
        JmpOp::Slt => jmp::JSLT,
        JmpOp::Sle => jmp::JSLE,
    }
}

/// Every jump operation, in encoding order.
pub(super) const JMP_OPS: [JmpOp; 11] = [
    JmpOp::Eq,
    JmpOp::Gt,
    JmpOp::Ge,
    JmpOp::Set,
    JmpOp::Ne,
    JmpOp::Sgt,
    JmpOp::Sge,
    JmpOp::Lt,
    JmpOp::Le,
    JmpOp::Slt,
    JmpOp::Sle,
];

fn size_code(size: Size) -> u8 {
    match size {
        Size::B => op::SIZE_B,
        Size::H => op::SIZE_H,
        Size::W => op::SIZE_W,
        Size::DW => op::SIZE_DW,
    }
}

fn size_from_code(code: u8) -> Size {
    match code & op::SIZE_MASK {
        op::SIZE_B => Size::B,
        op::SIZE_H => Size::H,
        op::SIZE_W => Size::W,
        _ => Size::DW,
    }
}

/// One raw slot read back, with the slot index for error reporting.
struct RawSlot {
    slot: usize,
    code: u8,
    dst: Reg,
    src: u8,
    off: i16,
    imm: i32,
}

impl RawSlot {
    fn read(bytes: &[u8], slot: usize) -> Result<RawSlot, DecodeError> {
        let b = &bytes[slot * 8..slot * 8 + 8];
        let number = b[1] & 0x0f;
        let dst = Reg::from_number(number).ok_or(DecodeError::InvalidRegister { slot, number })?;
        Ok(RawSlot {
            slot,
            code: b[0],
            dst,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    fn src_reg(&self) -> Result<Reg, DecodeError> {
        Reg::from_number(self.src).ok_or(DecodeError::InvalidRegister { slot: self.slot, number: self.src })
    }

    /// Fails unless `value` is zero; names the field in the error.
    fn zero(&self, field: &'static str, value: i64) -> Result<(), DecodeError> {
        if value == 0 {
            Ok(())
        } else {
            Err(DecodeError::NonZeroField { slot: self.slot, code: self.code, field })
        }
    }

    fn unsupported(&self) -> DecodeError {
        DecodeError::UnsupportedOpcode { slot: self.slot, code: self.code }
    }

    /// The second operand of an ALU or jump instruction.
    fn operand(&self) -> Result<Operand, DecodeError> {
        if self.code & op::SRC_MASK == op::SRC_X {
            self.zero("imm", self.imm.into())?;
            Ok(Operand::Reg(self.src_reg()?))
        } else {
            self.zero("src", self.src.into())?;
            Ok(Operand::Imm(self.imm))
        }
    }
}

/// A listing of encoded code as its bytes say (labels synthesized, no comments): each
/// `goto` is named by its opcode, `gotol` for `BPF_JMP32 | BPF_JA` and `goto` for the
/// 16-bit one whatever its reach. An object pfc compiled before it wrote `gotol` may hold
/// a 16-bit `goto` of more than [`op::GOTO_REACH`] slots (today's encoder would write it as
/// `gotol`): it is listed as `goto`, what the kernel runs.
pub fn disassemble_code(bytes: &[u8], maps: &[MapReloc]) -> Result<String, DecodeError> {
    let insns = decode(bytes, maps)?;
    let mut slot = 0;
    let long: Vec<bool> = insns
        .iter()
        .map(|insn| {
            let opcode = bytes[slot * 8];
            slot += insn.slots();
            opcode == op::JA32
        })
        .collect();
    Ok(super::asm::disassemble(&insns, &[], |index| long[index]))
}

/// Decodes bytecode into instructions. Each `lddw` whose slot appears in `maps`
/// becomes [`Insn::LoadMapIndex`] with that map (the ELF relocation decides, as for
/// libbpf); every other `lddw` is a [`Insn::LoadImm64`].
pub fn decode(bytes: &[u8], maps: &[MapReloc]) -> Result<Vec<ResolvedInsn>, DecodeError> {
    if bytes.len() % 8 != 0 {
        return Err(DecodeError::Length { len: bytes.len() });
    }
    let slots = bytes.len() / 8;
    let mut insns = Vec::new();
    let mut starts = vec![false; slots + 1];
    let mut slot = 0;
    while slot < slots {
        starts[slot] = true;
        let raw = RawSlot::read(bytes, slot)?;
        let insn = if raw.code == op::LDDW { decode_lddw(bytes, &raw, maps)? } else { decode_one(&raw)? };
        slot += insn.slots();
        insns.push(insn);
    }
    check_targets(&insns, &starts)?;
    Ok(insns)
}

fn decode_lddw(bytes: &[u8], raw: &RawSlot, maps: &[MapReloc]) -> Result<ResolvedInsn, DecodeError> {
    let bad = DecodeError::BadLoadImm64 { slot: raw.slot };
    if (raw.slot + 2) * 8 > bytes.len() {
        return Err(bad);
    }
    let high = RawSlot::read(bytes, raw.slot + 1).map_err(|_| bad.clone())?;
    if high.code != 0 || high.dst != Reg::R0 || high.src != 0 || high.off != 0 {
        return Err(bad);
    }
    raw.zero("src", raw.src.into())?;
    raw.zero("off", raw.off.into())?;
    if let Some(reloc) = maps.iter().find(|r| r.slot == raw.slot) {
        return Ok(Insn::LoadMapIndex { dst: raw.dst, map: reloc.map });
    }
    let imm = u64::from(raw.imm as u32) | (u64::from(high.imm as u32) << 32);
    Ok(Insn::LoadImm64 { dst: raw.dst, imm })
}

fn decode_one(raw: &RawSlot) -> Result<ResolvedInsn, DecodeError> {
    let code = raw.code;
    match code & op::CLASS_MASK {
        op::CLASS_ALU | op::CLASS_ALU64 => decode_alu(raw),
        op::CLASS_JMP | op::CLASS_JMP32 => decode_jmp(raw),
        op::CLASS_LDX | op::CLASS_ST | op::CLASS_STX if code & op::MODE_MASK == op::MODE_MEM => {
            let size = size_from_code(code);
            let (dst, off) = (raw.dst, raw.off);
            match code & op::CLASS_MASK {
                op::CLASS_LDX => {
                    raw.zero("imm", raw.imm.into())?;
                    let src = raw.src_reg()?;
                    Ok(Insn::Load { size, dst, src, off })
                }
                op::CLASS_STX => {
                    raw.zero("imm", raw.imm.into())?;
                    let src = raw.src_reg()?;
                    Ok(Insn::Store { size, dst, off, src })
                }
                _ => {
                    raw.zero("src", raw.src.into())?;
                    let imm = raw.imm;
                    Ok(Insn::StoreImm { size, dst, off, imm })
                }
            }
        }
        _ => Err(raw.unsupported()),
    }
}

fn decode_alu(raw: &RawSlot) -> Result<ResolvedInsn, DecodeError> {
    let wide = raw.code & op::CLASS_MASK == op::CLASS_ALU64;
    let opcode = raw.code & op::OP_MASK;
    // A non-zero offset selects ISA v4 sdiv/smod/movsx: refuse them.
    raw.zero("off", raw.off.into())?;
    let dst = raw.dst;
    match opcode {
        alu::NEG if raw.code & op::SRC_MASK == op::SRC_K => {
            raw.zero("src", raw.src.into())?;
            raw.zero("imm", raw.imm.into())?;
            Ok(Insn::Neg { wide, dst })
        }
        alu::END if !wide => {
            raw.zero("src", raw.src.into())?;
            let order = if raw.code & op::SRC_MASK == op::END_TO_BE { ByteOrder::Big } else { ByteOrder::Little };
            let width = match raw.imm {
                16 => EndianWidth::W16,
                32 => EndianWidth::W32,
                64 => EndianWidth::W64,
                _ => return Err(raw.unsupported()),
            };
            Ok(Insn::Endian { order, width, dst })
        }
        _ => {
            let op = *ALU_OPS.iter().find(|o| alu_code(**o) == opcode).ok_or_else(|| raw.unsupported())?;
            let src = raw.operand()?;
            Ok(if wide { Insn::Alu64 { op, dst, src } } else { Insn::Alu32 { op, dst, src } })
        }
    }
}

fn decode_jmp(raw: &RawSlot) -> Result<ResolvedInsn, DecodeError> {
    let wide = raw.code & op::CLASS_MASK == op::CLASS_JMP;
    match raw.code {
        op::JA => {
            raw.zero("dst", raw.dst.number().into())?;
            raw.zero("src", raw.src.into())?;
            raw.zero("imm", raw.imm.into())?;
            Ok(Insn::Ja { target: raw.off.into() })
        }
        op::JA32 => {
            // `gotol`: the offset is the immediate. pfc writes it only for an offset past
            // `GOTO_REACH`, so a shorter one is refused here (each program has one
            // encoding, and decoding then encoding gives the same bytes).
            raw.zero("dst", raw.dst.number().into())?;
            raw.zero("src", raw.src.into())?;
            raw.zero("off", raw.off.into())?;
            if !op::is_gotol(raw.imm) {
                return Err(raw.unsupported());
            }
            Ok(Insn::Ja { target: raw.imm })
        }
        op::CALL => {
            // src = 1 is a bpf-to-bpf call, src = 2 a kfunc: both refused.
            raw.zero("src", raw.src.into())?;
            raw.zero("dst", raw.dst.number().into())?;
            raw.zero("off", raw.off.into())?;
            Ok(Insn::Call { helper: raw.imm as u32 })
        }
        op::EXIT => {
            raw.zero("dst", raw.dst.number().into())?;
            raw.zero("src", raw.src.into())?;
            raw.zero("off", raw.off.into())?;
            raw.zero("imm", raw.imm.into())?;
            Ok(Insn::Exit)
        }
        code => {
            let opcode = code & op::OP_MASK;
            let op = *JMP_OPS.iter().find(|o| jmp_code(**o) == opcode).ok_or_else(|| raw.unsupported())?;
            Ok(Insn::Jump { op, wide, dst: raw.dst, src: raw.operand()?, target: raw.off.into() })
        }
    }
}

/// Checks that every jump lands on the start of an instruction inside the program.
fn check_targets(insns: &[ResolvedInsn], starts: &[bool]) -> Result<(), DecodeError> {
    let slots = starts.len() - 1;
    let mut slot = 0usize;
    for insn in insns {
        if let Some(&off) = insn.target() {
            let target = slot as i64 + 1 + i64::from(off);
            let ok = (0..slots as i64).contains(&target) && starts[target as usize];
            if !ok {
                return Err(DecodeError::BadJumpTarget { slot, off });
            }
        }
        slot += insn.slots();
    }
    Ok(())
}
