//! The verifier's errors: one variant per broken invariant (numbered as in the module
//! documentation of `verify`), each with the instruction where it was found when there
//! is one, and what a register held there as [`Value`].

use crate::bpf::{AluOp, JmpOp};

use super::{MAX_INSNS, MAX_PENDING_BRANCHES, MAX_PROCESSED};

/// What a register holds, as the verifier tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Never written on some path here.
    Uninit,
    /// A number.
    Scalar,
    /// The context pointer (`r1` at entry).
    Context,
    /// `r10` plus this offset.
    Stack(i64),
    /// A packet pointer: `offset` bytes past pointer base `base` (0 is `data`).
    Packet {
        /// The base pointer's number.
        base: u32,
        /// Bytes past it.
        offset: i64,
    },
    /// `data_end`.
    PacketEnd,
    /// A map reference (`lddw` of a map) whose values have `value_size` bytes.
    MapPointer {
        /// Bytes of a value.
        value_size: i64,
    },
    /// `bpf_map_lookup_elem`'s result before its null check.
    LookupResult {
        /// Bytes of the value it points to.
        value_size: i64,
    },
    /// A map value pointer, after its null check.
    MapEntry {
        /// Bytes of the value.
        value_size: i64,
    },
    /// `bpf_ringbuf_reserve`'s result before its null check: a record of `size` bytes.
    RingbufResult {
        /// The record's size.
        size: i64,
    },
    /// A pointer `offset` bytes into a reserved ring buffer record of `size` bytes.
    Ringbuf {
        /// The record's size.
        size: i64,
        /// Bytes from the record's start.
        offset: i64,
    },
}

/// A broken invariant, with the instruction index where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Invariant 7.
    #[error("the program has {count} instructions; the kernel accepts at most {MAX_INSNS}")]
    TooManyInstructions {
        /// Instruction count.
        count: usize,
    },
    /// Invariant 7, the verifier's budget.
    #[error(
        "the kernel verifier would process more than {estimate} instructions (estimated); its budget is {MAX_PROCESSED}"
    )]
    TooComplex {
        /// Where the estimate stopped.
        estimate: usize,
    },
    /// Invariant 8.
    #[error(
        "the kernel verifier would keep {pending} paths pending at once; it accepts at most {MAX_PENDING_BRANCHES}"
    )]
    TooManyPendingBranches {
        /// The deepest pending stack of the replayed walk.
        pending: usize,
    },
    /// Invariant 1.
    #[error(
        "instruction {insn}: jump does not go forward to an instruction of the program (nor back, decided by a \
         known count)"
    )]
    BadJump {
        /// Index of the jump.
        insn: usize,
    },
    /// Invariant 2.
    #[error("instruction {insn} is unreachable")]
    Unreachable {
        /// Index of the dead instruction.
        insn: usize,
    },
    /// Invariant 3: a packet read not covered by a bounds check.
    #[error("instruction {insn} (`{text}`): packet read of bytes {start}..{end} is covered only up to {covered}")]
    UncheckedPacketRead {
        /// Index of the load.
        insn: usize,
        /// The instruction, disassembled.
        text: String,
        /// First byte read, from the pointer's base.
        start: i64,
        /// One past the last byte read.
        end: i64,
        /// Bytes from the base that a bounds check proved present.
        covered: i64,
    },
    /// Invariant 4: a memory access outside what may be accessed.
    #[error("instruction {insn} (`{text}`): {access}")]
    BadAccess {
        /// Index of the load or store.
        insn: usize,
        /// The instruction, disassembled.
        text: String,
        /// What is wrong with it.
        access: Access,
    },
    /// Invariant 5: a helper call pfc does not make.
    #[error(
        "instruction {insn} (`{text}`): only bpf_map_lookup_elem(map, stack key), bpf_map_update_elem(map, stack key, \
         stack value, flags), bpf_ktime_get_ns() and the log code's bpf_ringbuf_reserve(map, constant size, flags), \
         bpf_xdp_load_bytes/bpf_skb_load_bytes(context, offset, reserved record, length) and \
         bpf_ringbuf_submit(record, flags) are called (helper {helper} was called otherwise)"
    )]
    BadCall {
        /// Index of the call.
        insn: usize,
        /// The instruction, disassembled.
        text: String,
        /// The helper's number.
        helper: u32,
    },
    /// Invariant 6: a register read or written against its kind.
    #[error("instruction {insn} (`{text}`): {misuse}")]
    BadRegister {
        /// Index of the instruction.
        insn: usize,
        /// The instruction, disassembled.
        text: String,
        /// What is wrong with it.
        misuse: Misuse,
    },
}

impl VerifyError {
    /// The instruction where the invariant broke, when one did (not for whole-program
    /// limits).
    pub fn insn(&self) -> Option<usize> {
        match self {
            VerifyError::TooManyInstructions { .. }
            | VerifyError::TooComplex { .. }
            | VerifyError::TooManyPendingBranches { .. } => None,
            VerifyError::BadJump { insn }
            | VerifyError::Unreachable { insn }
            | VerifyError::UncheckedPacketRead { insn, .. }
            | VerifyError::BadAccess { insn, .. }
            | VerifyError::BadCall { insn, .. }
            | VerifyError::BadRegister { insn, .. } => Some(*insn),
        }
    }

    /// Whether the program breaks a kernel limit (size, budget, pending paths), not a
    /// safety invariant: the rule set is too large, which is not a pfc bug.
    pub(crate) fn is_limit(&self) -> bool {
        matches!(
            self,
            VerifyError::TooManyInstructions { .. }
                | VerifyError::TooComplex { .. }
                | VerifyError::TooManyPendingBranches { .. }
        )
    }
}

/// Invariant 4: what is wrong with a memory access.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Access {
    /// A context read outside the context.
    #[error("context read of bytes {start}..{end} is outside the {size}-byte context")]
    OutsideContext {
        /// First byte read.
        start: i64,
        /// One past the last.
        end: i64,
        /// The context's size.
        size: i64,
    },
    /// A stack access outside the 512 bytes below `r10`.
    #[error("stack access at r10{offset:+} of {bytes} bytes is outside the 512-byte stack")]
    OutsideStack {
        /// Offset from `r10`.
        offset: i64,
        /// Bytes accessed.
        bytes: i64,
    },
    /// A read through something that is not readable there (a map value outside its
    /// bytes or before its null check, a packet end, a scalar, ...).
    #[error("cannot read through {through:?}")]
    Read {
        /// What the base register held.
        through: Value,
    },
    /// A write through something other than the stack or a map value (packets are
    /// never written).
    #[error("cannot write through {through:?}")]
    Write {
        /// What the base register held.
        through: Value,
    },
    /// A store of a register that is not a scalar (pointers never leak to memory).
    #[error("only scalars are stored")]
    StoredPointer,
}

/// Invariant 6: how an instruction misuses a register.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misuse {
    /// 32-bit arithmetic on something other than initialized scalars.
    #[error("32-bit arithmetic needs initialized scalars")]
    NarrowArithmetic,
    /// Negation or byte swap of a non-scalar.
    #[error("operand is not a scalar")]
    NotAScalar,
    /// 64-bit arithmetic on operands it is not defined for (an uninitialized source,
    /// pointer arithmetic other than packet/stack plus scalar and `data_end - packet`).
    #[error("{op:?} of {left:?} and {right:?} is not allowed")]
    Arithmetic {
        /// The operation.
        op: AluOp,
        /// The destination's value.
        left: Value,
        /// The source's value.
        right: Value,
    },
    /// A comparison reading an uninitialized register.
    #[error("comparison reads an uninitialized register")]
    UninitializedComparison,
    /// A comparison of operands pfc never compares (only scalars, a packet pointer
    /// against `data_end`, and a lookup result against 0).
    #[error("comparison {op:?} of {left:?} and {right:?} is not allowed")]
    Comparison {
        /// The comparison.
        op: JmpOp,
        /// The compared register's value.
        left: Value,
        /// The other operand's value.
        right: Value,
    },
    /// `exit` with something other than a scalar in `r0`.
    #[error("r0 is not a scalar at exit")]
    ExitWithoutScalar,
    /// A write to `r10`.
    #[error("r10 is read-only")]
    FramePointerWritten,
    /// `exit` while a ring buffer record is reserved and not submitted.
    #[error("a reserved ring buffer record is not submitted before exit")]
    UnsubmittedRecord,
}
