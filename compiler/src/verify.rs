//! pfc's own verifier: a resolved eBPF [`Program`] in, `Ok` or the first broken
//! invariant out. It runs on every program before an object is written, so a rule set
//! the kernel would refuse gets a pfc diagnostic, not a load-time surprise.
//!
//! Invariants checked:
//! 1. every jump goes forward and lands on an instruction inside the program, except a
//!    conditional jump back to a loop head whose every outcome constants known to the
//!    verifier decide (a counter set by `mov` and stepped by `add`/`sub` of
//!    immediates): the verifier walks the loop iteration by iteration, so a loop it
//!    accepts ends on every input, after at most [`MAX_PROCESSED`] instructions walked
//!    again;
//! 2. every instruction is reachable (the kernel refuses dead code);
//! 3. every packet load is dominated by a bounds check against `data_end` that covers
//!    all its bytes (pointer offsets are tracked per base; a variable addition starts a
//!    new base with no known bound);
//! 4. packets are never written; context, stack and map values are accessed in bounds
//!    (context: [`Context::size`](crate::object::Context::size) bytes, read only; stack: 512 bytes
//!    below r10; map values: [`MAP_VALUE_SIZE`] bytes, or what `Program::map_values`
//!    says for the map, after a null check, which is a comparison of the lookup result
//!    with the immediate 0); a bounds check is a
//!    64-bit comparison (a 32-bit one could wrap).
//! 5. only `bpf_map_lookup_elem` (a map in r1, a stack key in r2),
//!    `bpf_map_update_elem` (map, stack key, stack value, scalar flags; rate limits),
//!    `bpf_ktime_get_ns` and, for logging, `bpf_ringbuf_reserve` (map, a size known
//!    as a constant, flags), `bpf_xdp_load_bytes` (XDP) or `bpf_skb_load_bytes` (TC)
//!    (the context, a scalar offset, a destination inside a reserved record, a scalar
//!    length) and `bpf_ringbuf_submit` (the record's start, flags) are called; r1–r5
//!    are unusable after a call. A reserved record is written only within its size, is
//!    null-checked before use, and is submitted on every path before `exit` (after which
//!    no register points into it). The context pointer may be spilled to an 8-aligned
//!    stack slot and read back from it (the log code needs it in the counter tail). The
//!    copy length's bound (at most the record's room) is left to the kernel verifier,
//!    which the kernel acceptance tests run on every log shape;
//! 6. r0 holds a scalar on every path to `exit`; no register is read before it is
//!    written; r10 is never written;
//! 7. the program has at most [`MAX_INSNS`] instructions, and the kernel verifier's
//!    walk over it stays within its budget of processed instructions: `budget`
//!    replays that walk with a state model coarser than the kernel's (so it prunes
//!    less and counts more), adds a margin, and the estimate must stay within
//!    [`PROCESSED_LIMIT`] (the kernel's [`MAX_PROCESSED`]);
//! 8. the kernel verifier's stack of paths still to explore stays under
//!    [`MAX_PENDING_BRANCHES`]: it explores a conditional jump's fall-through first and
//!    keeps the target pending, so every rule whose condition can fail at two places
//!    leaves one pending path until the last rule is explored. This check replays that
//!    depth-first walk (pruning at instructions already explored).
//!
//! Each broken invariant is its own [`VerifyError`] variant, with the instruction where
//! it broke ([`VerifyError::insn`]); invariants 4 and 6 say what was wrong as an
//! [`Access`] or a [`Misuse`]. `compile` maps the instruction to the rule whose code it
//! is (`bpf::Program::rule_of`) and reports E0900 at that rule's span.
//!
//! Abstract interpretation in instruction order is exact enough here because jumps
//! only go forward, but for the back jumps of loops: without them the control-flow
//! graph is a DAG listed in topological order, and each taken back jump walks its loop's
//! instructions once more with the state of that iteration (which the counter decides,
//! so the walk is the loop's own iteration count). The kernel verifier explores each
//! iteration too.
//!
//! ## The processed-instruction budget (for code generators)
//!
//! [`estimate_processed`]`(program, hook, limit)` returns an [`Estimate`]: the
//! instructions the kernel verifier would process, counted from above by replaying its
//! depth-first walk with state pruning (`budget.rs` lists the model), or where the
//! replay stopped once past `limit` (`complete == false`). [`verify`] runs it with
//! [`PROCESSED_LIMIT`] and refuses with [`VerifyError::TooComplex`] (E0020 from
//! `compile`, which first falls back to other code forms). Its cost is proportional to
//! the count it returns, never more than `limit` steps.
//!
//! A code shape stays cheap for the kernel (and for the estimate) when the paths of
//! each region *join*: they reach one instruction that is a jump target with equal live
//! state — the same pointer registers with the same proven packet range (re-read the
//! packet start from the context if checks differed), no live register holding
//! different known constants that later feed a comparison or pointer arithmetic, and
//! stack words written with untracked (non-8-aligned, non-zero or unknown) values. A
//! region whose paths never join costs the product of its branchings.

mod budget;
mod error;

use crate::bpf::opcode::{
    HELPER_KTIME_GET_NS, HELPER_MAP_LOOKUP, HELPER_MAP_UPDATE, HELPER_RINGBUF_RESERVE, HELPER_RINGBUF_SUBMIT,
};

pub use budget::{processed_per_insn, Estimate};
pub use error::{Access, Misuse, Value, VerifyError};

use std::rc::Rc;

use crate::bpf::{AluOp, Insn, JmpOp, Operand, Program, Reg, ResolvedInsn, Size};
use crate::object::ProgramType;

/// The kernel's limit on program size (privileged loaders), in instructions.
pub const MAX_INSNS: usize = 1_000_000;
/// Instructions the kernel verifier processes at most (`BPF_COMPLEXITY_LIMIT_INSNS`).
pub const MAX_PROCESSED: usize = 1_000_000;
/// The most processed instructions pfc's estimate of the kernel verifier's work may
/// reach ([`estimate_processed`], which includes its own margin).
pub const PROCESSED_LIMIT: usize = MAX_PROCESSED;
/// The kernel's limit on pending paths (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`).
pub const MAX_PENDING_BRANCHES: usize = 8192;
/// Bytes of a counter map value (`packets`, `bytes`): map value accesses stay below this.
pub const MAP_VALUE_SIZE: i64 = 16;
/// The eBPF stack size.
const STACK_SIZE: i64 = 512;

/// Why one instruction is refused; [`Verifier::step`] adds the instruction.
enum Problem {
    /// Invariant 3.
    PacketRead { start: i64, end: i64, covered: i64 },
    /// Invariant 4.
    Access(Access),
    /// Invariant 5.
    Call { helper: u32 },
    /// Invariant 6.
    Register(Misuse),
}

impl From<Access> for Problem {
    fn from(access: Access) -> Problem {
        Problem::Access(access)
    }
}

impl From<Misuse> for Problem {
    fn from(misuse: Misuse) -> Problem {
        Problem::Register(misuse)
    }
}

#[derive(Clone, Debug)]
struct State {
    regs: [Value; 11],
    /// Per packet-pointer base (each at most once): bytes known to be inside the packet
    /// from it. A short list, shared between copies until one changes it: states are
    /// copied at every branch, and past the prologue the list no longer changes.
    checked: Rc<Vec<(u32, i64)>>,
    /// Registers holding a constant the code set with a `mov` of an immediate.
    known: [Option<i64>; 11],
    /// The 8-aligned stack slot holding the context pointer, if it was spilled there.
    context_spill: Option<i64>,
    /// A ring buffer record is reserved and not yet submitted.
    reserved: bool,
}

/// Checks every invariant listed in the module documentation.
///
/// The budget replay (invariant 7) reads only the program, so on a large program it runs
/// on a second thread beside the other checks; the first broken invariant reported is
/// the same either way.
pub fn verify(program: &Program, hook: impl Into<ProgramType>) -> Result<(), VerifyError> {
    let hook = hook.into();
    let insns = &program.insns;
    let slots = Slots::new(insns);
    let checks = || {
        let mut verifier = Verifier::new(insns, &slots, hook, &program.map_values);
        verifier.run()?;
        Ok(verifier.pending_branches())
    };
    let replay = || budget::estimate_with(insns, &slots, hook, PROCESSED_LIMIT);
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let (checked, estimate) = if insns.len() >= PARALLEL_FROM && cores > 1 {
        std::thread::scope(|scope| {
            let estimate = scope.spawn(replay);
            let checked = checks();
            (checked, estimate.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        })
    } else {
        let pending = checks()?;
        (Ok(pending), replay())
    };
    let pending = checked?;
    // The replay matches the kernel's count within a few percent; keep that much margin.
    if pending > MAX_PENDING_BRANCHES / 100 * 97 {
        return Err(VerifyError::TooManyPendingBranches { pending });
    }
    if !estimate.complete {
        return Err(VerifyError::TooComplex { estimate: estimate.processed });
    }
    Ok(())
}

/// Programs of at least this many instructions are verified on two threads.
const PARALLEL_FROM: usize = 20_000;

/// The kernel verifier's processed instructions on `program`, estimated from above by
/// replaying its walk (`budget`); the replay stops past `limit`.
pub fn estimate_processed(program: &Program, hook: impl Into<ProgramType>, limit: usize) -> Estimate {
    budget::estimate(&program.insns, hook.into(), limit)
}

/// Where jumps land: per instruction its first slot, per slot the instruction starting
/// there (jump offsets count slots). Built once in one pass, so finding a jump's target
/// is an index, not a search.
pub(crate) struct Slots {
    slot_of: Vec<usize>,
    /// Per slot, the index of the instruction starting there, or `u32::MAX` (the second
    /// slot of an `lddw`).
    insn_at: Vec<u32>,
}

impl Slots {
    pub(crate) fn new(insns: &[ResolvedInsn]) -> Slots {
        let mut slot_of = Vec::with_capacity(insns.len());
        let mut insn_at = Vec::with_capacity(insns.len() + insns.len() / 8);
        for (index, insn) in insns.iter().enumerate() {
            slot_of.push(insn_at.len());
            insn_at.push(index as u32);
            for _ in 1..insn.slots() {
                insn_at.push(u32::MAX);
            }
        }
        Slots { slot_of, insn_at }
    }

    /// The instruction a jump at `index` with `offset` lands on, if one starts there.
    pub(crate) fn target(&self, index: usize, offset: i32) -> Option<usize> {
        let slot = self.slot_of[index] as i64 + 1 + i64::from(offset);
        let at = *self.insn_at.get(usize::try_from(slot).ok()?)?;
        (at != u32::MAX).then_some(at as usize)
    }
}

struct Verifier<'a> {
    insns: &'a [ResolvedInsn],
    /// Per back jump (by index), the times it was taken: the loop's iterations past the
    /// first.
    trips: Vec<(usize, usize)>,
    slots: &'a Slots,
    /// The merged states of the jumps to each instruction not yet reached (boxed: most
    /// instructions are no jump's target, and a state is a few hundred bytes).
    incoming: Vec<Option<Box<State>>>,
    next_base: u32,
    hook: ProgramType,
    /// Bytes of each map's values, by map index (absent: [`MAP_VALUE_SIZE`]).
    map_values: &'a [u32],
}

/// Where a path goes after one instruction.
enum Next {
    /// On to the next instruction.
    Fall,
    /// To instruction `to`, unconditionally.
    Goto(usize),
    /// Back to loop head `to`: the next iteration, in the same state.
    Back(usize),
    /// Nowhere (`exit`).
    Stop,
}

impl<'a> Verifier<'a> {
    fn new(insns: &'a [ResolvedInsn], slots: &'a Slots, hook: ProgramType, map_values: &'a [u32]) -> Verifier<'a> {
        let incoming = (0..insns.len()).map(|_| None).collect();
        Verifier { insns, slots, trips: Vec::new(), incoming, next_base: 1, hook, map_values }
    }

    /// Replays the kernel's depth-first walk (fall-through first, jump targets pushed)
    /// and returns the deepest stack of pending paths. Runs after jumps were checked to
    /// stay in range only in `run`, so targets are looked up defensively here.
    fn pending_branches(&self) -> usize {
        let mut visited = vec![false; self.insns.len()];
        let mut pending: Vec<usize> = Vec::new();
        let mut deepest = 0;
        let mut current = Some(0);
        loop {
            let Some(index) = current.filter(|index| *index < self.insns.len() && !visited[*index]) else {
                match pending.pop() {
                    Some(next) => {
                        current = Some(next);
                        continue;
                    }
                    None => return deepest,
                }
            };
            visited[index] = true;
            current = match self.insns[index] {
                Insn::Exit => None,
                Insn::Ja { target } => self.target(index, target).ok(),
                Insn::Jump { target, .. } => {
                    match self.slots.target(index, target) {
                        Some(to) if to > index => {
                            pending.push(to);
                            deepest = deepest.max(pending.len());
                        }
                        Some(to) => {
                            // A loop: each iteration past the first pushes the targets of
                            // its conditional jumps out again (its back jump is decided).
                            let trips = self.trips.iter().find(|(at, _)| *at == index).map_or(0, |(_, n)| *n);
                            let exits: Vec<usize> = (to..index)
                                .filter_map(|at| match self.insns[at] {
                                    Insn::Jump { target, .. } => self.slots.target(at, target),
                                    _ => None,
                                })
                                .collect();
                            for _ in 0..trips {
                                pending.extend_from_slice(&exits);
                            }
                            deepest = deepest.max(pending.len());
                        }
                        None => {}
                    }
                    Some(index + 1)
                }
                _ => Some(index + 1),
            };
        }
    }

    fn run(&mut self) -> Result<(), VerifyError> {
        if self.insns.len() > MAX_INSNS {
            return Err(VerifyError::TooManyInstructions { count: self.insns.len() });
        }
        let mut regs = [Value::Uninit; 11];
        regs[1] = Value::Context;
        regs[10] = Value::Stack(0);
        let state = State { regs, checked: Rc::default(), known: [None; 11], context_spill: None, reserved: false };
        // The state falling through into the next instruction (when `falls`).
        let mut current = state;
        let mut falls = true;
        // Instructions walked again in loop iterations.
        let mut again = 0usize;
        let mut index = 0;
        while index < self.insns.len() {
            match (falls, self.incoming[index].take()) {
                (true, Some(incoming)) => self.merge_into(&mut current, &incoming),
                (true, None) => {}
                (false, Some(incoming)) => current = *incoming,
                (false, None) => return Err(VerifyError::Unreachable { insn: index }),
            }
            falls = match self.step(index, &mut current)? {
                Next::Fall => true,
                Next::Goto(to) => {
                    self.send(to, &current);
                    false
                }
                Next::Stop => false,
                Next::Back(to) => {
                    // The next iteration: the loop's instructions again, in this state
                    // (the jumps into the head from before the loop were merged into the
                    // first iteration).
                    again += index + 1 - to;
                    if again > MAX_PROCESSED {
                        return Err(VerifyError::TooComplex { estimate: again });
                    }
                    match self.trips.iter_mut().find(|(at, _)| *at == index) {
                        Some((_, trips)) => *trips += 1,
                        None => self.trips.push((index, 1)),
                    }
                    // Each iteration's checks are on bases of its own: forget those no
                    // register holds any more (pointers are never stored), so the list
                    // stays as short as the registers.
                    let held = |base: u32| {
                        current.regs.iter().any(|reg| matches!(reg, Value::Packet { base: b, .. } if *b == base))
                    };
                    if current.checked.iter().any(|(base, _)| !held(*base)) {
                        Rc::make_mut(&mut current.checked).retain(|(base, _)| held(*base));
                    }
                    index = to;
                    continue;
                }
            };
            index += 1;
        }
        Ok(())
    }

    /// Executes one instruction on `state` (which becomes the fall-through state); a
    /// conditional jump sends its taken state to its target.
    fn step(&mut self, index: usize, state: &mut State) -> Result<Next, VerifyError> {
        let insn = &self.insns[index];
        let fail = |problem: Problem| {
            let text = crate::bpf::asm::resolved_to_string(insn, |offset| format!("{offset:+}"));
            match problem {
                Problem::PacketRead { start, end, covered } => {
                    VerifyError::UncheckedPacketRead { insn: index, text, start, end, covered }
                }
                Problem::Access(access) => VerifyError::BadAccess { insn: index, text, access },
                Problem::Call { helper } => VerifyError::BadCall { insn: index, text, helper },
                Problem::Register(misuse) => VerifyError::BadRegister { insn: index, text, misuse },
            }
        };
        // Constants the code sets with `mov` and steps with `add`/`sub` of immediates
        // (loop counters), as the register's 64 bits.
        let constant = match *insn {
            Insn::Alu64 { op: AluOp::Mov, dst, src: Operand::Imm(imm) } => Some((dst, i64::from(imm))),
            Insn::Alu32 { op: AluOp::Mov, dst, src: Operand::Imm(imm) } => Some((dst, i64::from(imm as u32))),
            Insn::Alu64 { op: op @ (AluOp::Add | AluOp::Sub), dst, src: Operand::Imm(imm) } => {
                state.known[dst.number() as usize].map(|known| {
                    let step = if op == AluOp::Add { i64::from(imm) } else { i64::from(imm).wrapping_neg() };
                    (dst, known.wrapping_add(step))
                })
            }
            _ => None,
        };
        if let Some(dst) = insn.written_register() {
            state.known[dst.number() as usize] = None;
        }
        match *insn {
            Insn::Alu64 { op, dst, src } => {
                let value = self.alu64(state, op, dst, src).map_err(fail)?;
                set(state, dst, value).map_err(fail)?;
            }
            Insn::Alu32 { op, dst, src } => {
                let source = operand(state, src);
                let target = state.regs[dst.number() as usize];
                let ok = matches!(source, Value::Scalar) && (op == AluOp::Mov || matches!(target, Value::Scalar));
                if !ok {
                    return Err(fail(Misuse::NarrowArithmetic.into()));
                }
                set(state, dst, Value::Scalar).map_err(fail)?;
            }
            Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => {
                if state.regs[dst.number() as usize] != Value::Scalar {
                    return Err(fail(Misuse::NotAScalar.into()));
                }
            }
            Insn::Load { size, dst, src, off } => {
                let value = self.load(state, size, src, off).map_err(fail)?;
                set(state, dst, value).map_err(fail)?;
            }
            Insn::Store { size: Size::DW, dst: Reg::R10, off, src }
                if state.regs[src.number() as usize] == Value::Context && off % 8 == 0 =>
            {
                stack_access(i64::from(off), 8).map_err(|access| fail(access.into()))?;
                state.context_spill = Some(i64::from(off));
            }
            Insn::Store { size, dst, off, src } => {
                if !matches!(state.regs[src.number() as usize], Value::Scalar) {
                    return Err(fail(Access::StoredPointer.into()));
                }
                self.store(state, size, dst, off).map_err(fail)?;
            }
            Insn::StoreImm { size, dst, off, .. } => self.store(state, size, dst, off).map_err(fail)?,
            Insn::LoadImm64 { dst, .. } => set(state, dst, Value::Scalar).map_err(fail)?,
            Insn::LoadMapIndex { dst, map } => {
                let value_size = self.map_values.get(map as usize).map_or(MAP_VALUE_SIZE, |size| i64::from(*size));
                set(state, dst, Value::MapPointer { value_size }).map_err(fail)?
            }
            Insn::Call { helper } => {
                let result = self.call(state, helper).ok_or(Problem::Call { helper }).map_err(fail)?;
                for reg in Reg::CALL_CLOBBERED {
                    state.regs[reg.number() as usize] = Value::Uninit;
                    state.known[reg.number() as usize] = None;
                }
                state.regs[0] = result;
            }
            Insn::Exit => {
                if state.regs[0] != Value::Scalar {
                    return Err(fail(Misuse::ExitWithoutScalar.into()));
                }
                if state.reserved {
                    return Err(fail(Misuse::UnsubmittedRecord.into()));
                }
                return Ok(Next::Stop);
            }
            Insn::Ja { target } => return Ok(Next::Goto(self.target(index, target)?)),
            Insn::Jump { op, wide, dst, src, target }
                if self.slots.target(index, target).is_some_and(|to| to <= index) =>
            {
                // A loop's back jump: taken or not as the known constants decide.
                let to = self.slots.target(index, target).unwrap_or(index);
                let known = |operand: Operand| match operand {
                    Operand::Imm(imm) => Some(i64::from(imm)),
                    Operand::Reg(reg) => state.known[reg.number() as usize],
                };
                let (Some(left), Some(right)) = (known(Operand::Reg(dst)), known(src)) else {
                    return Err(VerifyError::BadJump { insn: index });
                };
                return Ok(if op.holds(left as u64, right as u64, wide) { Next::Back(to) } else { Next::Fall });
            }
            Insn::Jump { op, wide, dst, src, target } => {
                let to = self.target(index, target)?;
                let left = state.regs[dst.number() as usize];
                let right = operand(state, src);
                if (left, right) == (Value::Scalar, Value::Scalar) {
                    // Most jumps: both ways leave the state as it is.
                    self.send(to, state);
                    return Ok(Next::Fall);
                }
                let null_check = wide && src == Operand::Imm(0);
                let taken = self.branch(state, op, (left, right), (dst, wide, null_check)).map_err(fail)?;
                self.send(to, &taken);
                return Ok(Next::Fall);
            }
        }
        if let Some((dst, value)) = constant {
            state.known[dst.number() as usize] = Some(value);
        }
        Ok(Next::Fall)
    }

    /// Checks a helper call's arguments; what r0 holds after it, `None` when the call
    /// is not allowed.
    fn call(&self, state: &mut State, helper: u32) -> Option<Value> {
        let on_stack = |value: Value| matches!(value, Value::Stack(offset) if (-STACK_SIZE..=-4).contains(&offset));
        let map_and_key = matches!(state.regs[1], Value::MapPointer { .. }) && on_stack(state.regs[2]);
        let load_bytes = self.hook.load_bytes_helper();
        match helper {
            HELPER_MAP_LOOKUP if map_and_key => match state.regs[1] {
                Value::MapPointer { value_size } => Some(Value::LookupResult { value_size }),
                _ => None,
            },
            HELPER_MAP_UPDATE if map_and_key && on_stack(state.regs[3]) && state.regs[4] == Value::Scalar => {
                Some(Value::Scalar)
            }
            HELPER_KTIME_GET_NS => Some(Value::Scalar),
            HELPER_RINGBUF_RESERVE => {
                let size = state.known[2].filter(|size| *size > 0)?;
                let ok = matches!(state.regs[1], Value::MapPointer { .. })
                    && state.regs[3] == Value::Scalar
                    && !state.reserved;
                state.reserved = ok;
                ok.then_some(Value::RingbufResult { size })
            }
            HELPER_RINGBUF_SUBMIT => {
                let ok = matches!(state.regs[1], Value::Ringbuf { offset: 0, .. })
                    && state.regs[2] == Value::Scalar
                    && state.reserved;
                if ok {
                    state.reserved = false;
                    for reg in state.regs.iter_mut().filter(|reg| matches!(reg, Value::Ringbuf { .. })) {
                        *reg = Value::Uninit;
                    }
                }
                ok.then_some(Value::Uninit)
            }
            _ if helper == load_bytes => match (state.regs[1], state.regs[2], state.regs[3], state.regs[4]) {
                (Value::Context, Value::Scalar, Value::Ringbuf { size, offset }, Value::Scalar)
                    if (0..size).contains(&offset) =>
                {
                    Some(Value::Scalar)
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn target(&self, index: usize, offset: i32) -> Result<usize, VerifyError> {
        match self.slots.target(index, offset) {
            Some(to) if offset >= 0 && to > index => Ok(to),
            _ => Err(VerifyError::BadJump { insn: index }),
        }
    }

    /// Merges `state` into what jumps already sent to `to` (a copy only for the first).
    fn send(&mut self, to: usize, state: &State) {
        match self.incoming[to].take() {
            Some(mut existing) => {
                self.merge_into(&mut existing, state);
                self.incoming[to] = Some(existing);
            }
            None => self.incoming[to] = Some(Box::new(state.clone())),
        }
    }

    /// Merges `b` into `a` (in place: states are large and merged at every jump target).
    fn merge_into(&mut self, a: &mut State, b: &State) {
        for (index, reg) in a.regs.iter_mut().enumerate() {
            let other = b.regs[index];
            if *reg == other {
                continue;
            }
            *reg = match (*reg, other) {
                // Pointers of different computations: a new base, with nothing proven
                // from it. Where both are at the same constant offset from their bases
                // (as the kernel keeps a pointer's fixed offset apart from its variable
                // part), it is kept, so loads may still reach back from it.
                (Value::Packet { offset: a, .. }, Value::Packet { offset: b, .. }) => {
                    self.next_base += 1;
                    Value::Packet { base: self.next_base, offset: if a == b { a } else { 0 } }
                }
                (
                    Value::MapEntry { value_size: a } | Value::LookupResult { value_size: a },
                    Value::MapEntry { value_size: b } | Value::LookupResult { value_size: b },
                ) => Value::LookupResult { value_size: a.min(b) },
                _ => Value::Uninit,
            };
        }
        if !Rc::ptr_eq(&a.checked, &b.checked) && a.checked != b.checked {
            Rc::make_mut(&mut a.checked).retain_mut(|(base, bytes)| match checked_bytes(&b.checked, *base) {
                Some(other) => {
                    *bytes = (*bytes).min(other);
                    true
                }
                None => false,
            });
        }
        for (index, constant) in a.known.iter_mut().enumerate() {
            if *constant != b.known[index] {
                *constant = None;
            }
        }
        a.context_spill = a.context_spill.filter(|slot| b.context_spill == Some(*slot));
        a.reserved = a.reserved || b.reserved;
    }

    fn alu64(&mut self, state: &State, op: AluOp, dst: Reg, src: Operand) -> Result<Value, Problem> {
        let left = state.regs[dst.number() as usize];
        let right = operand(state, src);
        let constant = match src {
            Operand::Imm(imm) => Some(i64::from(imm)),
            Operand::Reg(_) => None,
        };
        Ok(match (op, left, right) {
            (AluOp::Mov, _, value) if value != Value::Uninit => value,
            (_, Value::Scalar, Value::Scalar) => Value::Scalar,
            // `scalar += pointer` is a pointer (the kernel allows it for `+` only). A
            // variable addition starts a new base; the pointer's constant offset stays
            // apart from it, as the kernel keeps its fixed offset `off` apart from the
            // variable part, so loads may reach back to it.
            (AluOp::Add, Value::Scalar, Value::Packet { offset, .. }) => {
                self.next_base += 1;
                Value::Packet { base: self.next_base, offset }
            }
            (AluOp::Add, Value::Packet { base, offset }, Value::Scalar) => match constant {
                Some(constant) => Value::Packet { base, offset: offset + constant },
                None => {
                    self.next_base += 1;
                    Value::Packet { base: self.next_base, offset }
                }
            },
            (AluOp::Add, Value::Stack(offset), Value::Scalar) if constant.is_some() => {
                Value::Stack(offset + constant.unwrap_or(0))
            }
            (AluOp::Sub, Value::PacketEnd, Value::Packet { .. }) => Value::Scalar,
            (AluOp::Add, Value::Ringbuf { size, offset }, Value::Scalar) if constant.is_some() => {
                Value::Ringbuf { size, offset: offset + constant.unwrap_or(0) }
            }
            _ => return Err(Misuse::Arithmetic { op, left, right }.into()),
        })
    }

    fn load(&self, state: &State, size: Size, src: Reg, off: i16) -> Result<Value, Problem> {
        let bytes = i64::from(size.bytes());
        let off = i64::from(off);
        match state.regs[src.number() as usize] {
            Value::Context => self.context_field(off, bytes),
            Value::Packet { base, offset } => {
                let end = offset + off + bytes;
                let covered = checked_bytes(&state.checked, base).unwrap_or(0);
                if offset + off < 0 || end > covered {
                    return Err(Problem::PacketRead { start: offset + off, end, covered });
                }
                Ok(Value::Scalar)
            }
            Value::Stack(offset) if bytes == 8 && state.context_spill == Some(offset + off) => Ok(Value::Context),
            Value::Stack(offset) => Ok(stack_access(offset + off, bytes).map(|_| Value::Scalar)?),
            Value::MapEntry { value_size } if (0..=value_size - bytes).contains(&off) => Ok(Value::Scalar),
            through => Err(Access::Read { through }.into()),
        }
    }

    fn context_field(&self, off: i64, bytes: i64) -> Result<Value, Problem> {
        let context = self.hook.context();
        let (data, data_end, size) = (i64::from(context.data), i64::from(context.data_end), i64::from(context.size));
        if off < 0 || off + bytes > size {
            return Err(Access::OutsideContext { start: off, end: off + bytes, size }.into());
        }
        Ok(match (off, bytes) {
            (offset, 4) if offset == data => Value::Packet { base: 0, offset: 0 },
            (offset, 4) if offset == data_end => Value::PacketEnd,
            _ => Value::Scalar,
        })
    }

    fn store(&self, state: &mut State, size: Size, dst: Reg, off: i16) -> Result<(), Problem> {
        let bytes = i64::from(size.bytes());
        let off = i64::from(off);
        match state.regs[dst.number() as usize] {
            Value::Stack(offset) => {
                let at = offset + off;
                if state.context_spill.is_some_and(|slot| at < slot + 8 && slot < at + bytes) {
                    state.context_spill = None;
                }
                Ok(stack_access(at, bytes)?)
            }
            Value::MapEntry { value_size } if (0..=value_size - bytes).contains(&off) => Ok(()),
            Value::Ringbuf { size, offset } if offset + off >= 0 && offset + off + bytes <= size => Ok(()),
            through => Err(Access::Write { through }.into()),
        }
    }

    /// The state a conditional jump takes; `fallthrough` (the state before it) becomes
    /// the state that falls through. `jump` is the compared register, whether the
    /// comparison is 64-bit, and whether it compares with imm 0.
    fn branch(
        &self,
        fallthrough: &mut State,
        op: JmpOp,
        (left, right): (Value, Value),
        (dst, wide, null_check): (Reg, bool, bool),
    ) -> Result<State, Problem> {
        if left == Value::Uninit || right == Value::Uninit {
            return Err(Misuse::UninitializedComparison.into());
        }
        let mut taken = fallthrough.clone();
        match (op, left, right) {
            (JmpOp::Gt, Value::Packet { base, offset }, Value::PacketEnd) if wide => {
                let checked = Rc::make_mut(&mut fallthrough.checked);
                match checked.iter_mut().find(|(known, _)| *known == base) {
                    Some((_, bytes)) => *bytes = (*bytes).max(offset),
                    None => checked.push((base, offset.max(0))),
                }
            }
            // The frame length compared (pcap's `len > k`): nothing learnt.
            (JmpOp::Lt | JmpOp::Le | JmpOp::Ge, Value::Packet { .. }, Value::PacketEnd) if wide => {}
            (JmpOp::Eq, Value::LookupResult { value_size }, Value::Scalar) if null_check => {
                taken.regs[dst.number() as usize] = Value::Scalar;
                fallthrough.regs[dst.number() as usize] = Value::MapEntry { value_size };
            }
            (JmpOp::Ne, Value::LookupResult { value_size }, Value::Scalar) if null_check => {
                taken.regs[dst.number() as usize] = Value::MapEntry { value_size };
                fallthrough.regs[dst.number() as usize] = Value::Scalar;
            }
            (JmpOp::Eq, Value::RingbufResult { size }, Value::Scalar) if null_check => {
                taken.regs[dst.number() as usize] = Value::Scalar;
                taken.reserved = false;
                fallthrough.regs[dst.number() as usize] = Value::Ringbuf { size, offset: 0 };
            }
            (_, Value::Scalar, Value::Scalar) => {}
            _ => return Err(Misuse::Comparison { op, left, right }.into()),
        }
        Ok(taken)
    }
}

/// Bytes known to be inside the packet from pointer base `base`, if any were checked.
fn checked_bytes(checked: &[(u32, i64)], base: u32) -> Option<i64> {
    checked.iter().find(|(known, _)| *known == base).map(|(_, bytes)| *bytes)
}

fn operand(state: &State, src: Operand) -> Value {
    match src {
        Operand::Reg(reg) => state.regs[reg.number() as usize],
        Operand::Imm(_) => Value::Scalar,
    }
}

fn set(state: &mut State, dst: Reg, value: Value) -> Result<(), Problem> {
    if dst == Reg::R10 {
        return Err(Misuse::FramePointerWritten.into());
    }
    state.regs[dst.number() as usize] = value;
    Ok(())
}

fn stack_access(offset: i64, bytes: i64) -> Result<(), Access> {
    if offset >= -STACK_SIZE && offset + bytes <= 0 {
        Ok(())
    } else {
        Err(Access::OutsideStack { offset, bytes })
    }
}
