//! Opcode bit fields in, nothing out: the eBPF encoding constants, in one place.
//!
//! An opcode byte is `class | size | mode` for memory instructions and
//! `class | source | op` for ALU and jump instructions (Linux
//! `Documentation/bpf/standardization/instruction-set.rst`).

/// Instruction class: non-standard loads (only `lddw` is used here).
pub const CLASS_LD: u8 = 0x00;
/// Instruction class: load into register.
pub const CLASS_LDX: u8 = 0x01;
/// Instruction class: store immediate.
pub const CLASS_ST: u8 = 0x02;
/// Instruction class: store register.
pub const CLASS_STX: u8 = 0x03;
/// Instruction class: 32-bit arithmetic.
pub const CLASS_ALU: u8 = 0x04;
/// Instruction class: 64-bit jumps.
pub const CLASS_JMP: u8 = 0x05;
/// Instruction class: 32-bit jumps.
pub const CLASS_JMP32: u8 = 0x06;
/// Instruction class: 64-bit arithmetic.
pub const CLASS_ALU64: u8 = 0x07;
/// Mask of the class bits.
pub const CLASS_MASK: u8 = 0x07;

/// Source operand: the 32-bit immediate.
pub const SRC_K: u8 = 0x00;
/// Source operand: the `src` register.
pub const SRC_X: u8 = 0x08;
/// Mask of the source bit.
pub const SRC_MASK: u8 = 0x08;
/// Mask of the operation bits of ALU and jump opcodes.
pub const OP_MASK: u8 = 0xf0;

/// ALU operation codes.
pub mod alu {
    /// `+=`.
    pub const ADD: u8 = 0x00;
    /// `-=`.
    pub const SUB: u8 = 0x10;
    /// `*=`.
    pub const MUL: u8 = 0x20;
    /// Unsigned `/=`.
    pub const DIV: u8 = 0x30;
    /// `|=`.
    pub const OR: u8 = 0x40;
    /// `&=`.
    pub const AND: u8 = 0x50;
    /// `<<=`.
    pub const LSH: u8 = 0x60;
    /// Logical `>>=`.
    pub const RSH: u8 = 0x70;
    /// Negation.
    pub const NEG: u8 = 0x80;
    /// Unsigned `%=`.
    pub const MOD: u8 = 0x90;
    /// `^=`.
    pub const XOR: u8 = 0xa0;
    /// `=`.
    pub const MOV: u8 = 0xb0;
    /// Arithmetic `>>=`.
    pub const ARSH: u8 = 0xc0;
    /// Byte-order conversion; the source bit selects the order.
    pub const END: u8 = 0xd0;
}

/// `END` source bit: convert to little-endian.
pub const END_TO_LE: u8 = SRC_K;
/// `END` source bit: convert to big-endian.
pub const END_TO_BE: u8 = SRC_X;

/// Jump operation codes.
pub(crate) mod jmp {
    /// Unconditional jump (JMP class only).
    pub const JA: u8 = 0x00;
    /// `==`.
    pub const JEQ: u8 = 0x10;
    /// Unsigned `>`.
    pub const JGT: u8 = 0x20;
    /// Unsigned `>=`.
    pub const JGE: u8 = 0x30;
    /// `&` is non-zero.
    pub const JSET: u8 = 0x40;
    /// `!=`.
    pub const JNE: u8 = 0x50;
    /// Signed `>`.
    pub const JSGT: u8 = 0x60;
    /// Signed `>=`.
    pub const JSGE: u8 = 0x70;
    /// Helper call (JMP class only).
    pub const CALL: u8 = 0x80;
    /// Return (JMP class only).
    pub const EXIT: u8 = 0x90;
    /// Unsigned `<`.
    pub const JLT: u8 = 0xa0;
    /// Unsigned `<=`.
    pub const JLE: u8 = 0xb0;
    /// Signed `<`.
    pub const JSLT: u8 = 0xc0;
    /// Signed `<=`.
    pub const JSLE: u8 = 0xd0;
}

/// Memory access size: 4 bytes.
pub const SIZE_W: u8 = 0x00;
/// Memory access size: 2 bytes.
pub const SIZE_H: u8 = 0x08;
/// Memory access size: 1 byte.
pub const SIZE_B: u8 = 0x10;
/// Memory access size: 8 bytes.
pub const SIZE_DW: u8 = 0x18;
/// Mask of the size bits.
pub const SIZE_MASK: u8 = 0x18;

/// Memory mode: 64-bit immediate (`lddw`).
pub const MODE_IMM: u8 = 0x00;
/// Memory mode: regular load/store.
pub const MODE_MEM: u8 = 0x60;
/// Mask of the mode bits.
pub const MODE_MASK: u8 = 0xe0;

/// The full `lddw` opcode byte.
pub const LDDW: u8 = CLASS_LD | SIZE_DW | MODE_IMM;
/// The full `call` opcode byte.
pub const CALL: u8 = CLASS_JMP | jmp::CALL;
/// The full `exit` opcode byte.
pub const EXIT: u8 = CLASS_JMP | jmp::EXIT;
/// The full `ja` opcode byte.
pub const JA: u8 = CLASS_JMP | jmp::JA;
/// `gotol`: an unconditional jump whose offset is the 32-bit immediate (ISA v4, kernel
/// 6.6 and later; pfc writes it only for a `goto` longer than [`GOTO_REACH`]).
pub const JA32: u8 = CLASS_JMP32 | jmp::JA;
/// The longest `goto` written with a 16-bit offset; longer ones are `gotol`. Below
/// `i16::MAX`: the kernel verifier inserts instructions where it rewrites helper calls
/// and context reads, moving the ends of a jump apart, and refuses the program when a
/// 16-bit offset then overflows (`insn N cannot be patched due to 16-bit range`; a
/// classifier's 32,700-slot `goto` did). The classifier's relays keep conditional jumps
/// as short ([`crate::codegen`]'s `RELAY_AT`), so a program with no relay has no
/// `gotol` either.
pub const GOTO_REACH: i32 = 28_000;

/// Whether a `goto` with offset `off` (slots) is written as `gotol`.
pub fn is_gotol(off: i32) -> bool {
    off.unsigned_abs() > GOTO_REACH as u32
}

// Helper ids (the kernel's `enum bpf_func_id`): the only place they are written. pfc's
// verifier allows exactly the ones its code generator calls; the VM emulates the same set.

/// `bpf_map_lookup_elem(map, key)`.
pub const HELPER_MAP_LOOKUP: u32 = 1;
/// `bpf_map_update_elem(map, key, value, flags)`.
pub const HELPER_MAP_UPDATE: u32 = 2;
/// `bpf_map_delete_elem(map, key)`.
pub const HELPER_MAP_DELETE: u32 = 3;
/// `bpf_ktime_get_ns()`.
pub const HELPER_KTIME_GET_NS: u32 = 5;
/// `bpf_get_smp_processor_id()`.
pub const HELPER_GET_SMP_PROCESSOR_ID: u32 = 8;
/// `bpf_skb_load_bytes(skb, offset, to, len)`.
pub const HELPER_SKB_LOAD_BYTES: u32 = 26;
/// `bpf_ringbuf_reserve(ring, size, flags)`.
pub const HELPER_RINGBUF_RESERVE: u32 = 131;
/// `bpf_ringbuf_submit(record, flags)`.
pub const HELPER_RINGBUF_SUBMIT: u32 = 132;
/// `bpf_ringbuf_discard(record, flags)`.
pub const HELPER_RINGBUF_DISCARD: u32 = 133;
/// `bpf_xdp_load_bytes(xdp_md, offset, to, len)`.
pub const HELPER_XDP_LOAD_BYTES: u32 = 189;
