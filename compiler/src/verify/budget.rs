//! The kernel verifier's work, estimated: a resolved eBPF program in, an upper estimate
//! of the instructions the kernel verifier processes on it (its `processed N insns`,
//! budget [`super::MAX_PROCESSED`]) out.
//!
//! It replays the kernel's exploration with a coarser state model (Linux 6.x,
//! `kernel/bpf/verifier.c`, `do_check` and `is_state_visited`):
//! - depth first, a conditional jump's fall-through first, its target pushed; a jump
//!   whose outcome follows from known constants takes only that way (so a loop, whose
//!   back jump a counter decides, is walked iteration by iteration, as the kernel does:
//!   the counter is live and compared, so no two iterations' states are equal);
//! - *prune points* are conditional jumps, jump targets and the instruction after a
//!   call; arriving at one, the state is compared with the states saved there, and an
//!   equal one ends the path (that arrival still counts as one processed instruction);
//! - a state is saved only after at least 2 jumps and 8 instructions since the last
//!   save, and a saved state that misses more than `3 * hits + 3` times is dropped;
//! - a constant AND or OR on a scalar known to be 0 or all ones (`(x & 1) - 1`) splits
//!   the path in two, one per value, as the kernel (6.18) does;
//! - two states are equal when their *live* registers hold equal abstract values and the
//!   stack words that may still be read hold equal kinds. Packet pointers compare by
//!   offset, proven range and variable part (ids up to renaming); scalars compare as
//!   known constants or by where their unknown value came from, but only where the
//!   kernel could mark them *precise* (statically: the value may reach a comparison,
//!   pointer arithmetic, a spill to an 8-aligned slot, or the return value) — the
//!   kernel ignores imprecise scalars. A 4-byte store at a non-8-aligned offset is
//!   untracked (`STACK_MISC`) unless it stores a known zero (`STACK_ZERO`).
//!
//! Every simplification compares states more finely than the kernel does (exact
//! equality where the kernel accepts a subset; unknown values told apart by origin), so
//! the replay prunes no more than the kernel and its count is an upper estimate. Its cost
//! is the count itself: the replay stops at [`Estimate::stopped_at`].

use super::Slots;
use crate::bpf::{AluOp, Insn, JmpOp, Operand, Reg, ResolvedInsn, Size};
use crate::object::ProgramType;

/// 32-bit stack words (the stack is 512 bytes).
const WORDS: usize = 128;
/// The kernel saves a state after this many jumps since its last save...
const SAVE_AFTER_JUMPS: u64 = 2;
/// ... and this many instructions.
const SAVE_AFTER_INSNS: u64 = 8;

/// The margin added to the replay's count, in eighths of it, plus [`MARGIN_INSNS`]: the
/// kernel saves states by a heuristic that depends on its exact path order, so it may
/// keep exploring a little where the replay pruned (measured: at most 2 instructions
/// over the replay's count in 520 generated sets).
const MARGIN_EIGHTHS: usize = 1;
/// See [`MARGIN_EIGHTHS`].
const MARGIN_INSNS: usize = 64;

/// What the replay found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Instructions processed by the replay (when `complete`), else the count it stopped at.
    pub processed: usize,
    /// Whether the replay ran to the end (false: it passed the limit it was given).
    pub complete: bool,
}

impl Estimate {
    /// The count at which an incomplete replay stopped, if it did.
    pub fn stopped_at(&self) -> Option<usize> {
        (!self.complete).then_some(self.processed)
    }
}

/// Replays the kernel verifier's walk over `insns` (already checked by the main pass:
/// jumps inside the program, back jumps only where known counters decide them) and counts processed instructions, plus a margin;
/// stops once the count passes `limit`.
pub fn estimate(insns: &[ResolvedInsn], hook: ProgramType, limit: usize) -> Estimate {
    estimate_with(insns, &Slots::new(insns), hook, limit)
}

/// [`estimate`] with the program's [`Slots`] already built.
pub(super) fn estimate_with(insns: &[ResolvedInsn], slots: &Slots, hook: ProgramType, limit: usize) -> Estimate {
    let replay_limit = limit.saturating_sub(MARGIN_INSNS) / (MARGIN_EIGHTHS + 8) * 8;
    let replayed = replay_with(insns, slots, hook, replay_limit);
    let with_margin = replayed.processed + replayed.processed * MARGIN_EIGHTHS / 8 + MARGIN_INSNS;
    Estimate { processed: with_margin, complete: replayed.complete && with_margin <= limit }
}

/// The replay's count, without margin.
#[cfg(test)]
fn replay(insns: &[ResolvedInsn], hook: ProgramType, limit: usize) -> Estimate {
    replay_with(insns, &Slots::new(insns), hook, limit)
}

/// [`replay`] with the program's [`Slots`] already built.
fn replay_with(insns: &[ResolvedInsn], slots: &Slots, hook: ProgramType, limit: usize) -> Estimate {
    let flow = Flow::new(insns, slots);
    let mut exact_stores = vec![false; insns.len()];
    // A known zero stored to an untracked word makes the kernel mark the stored register
    // precise: if the replay sees one, it is redone with that register relevant there.
    for _ in 0..3 {
        let facts = Facts::new(insns, &flow, &exact_stores);
        let mut replay = Replay::new(insns, &flow, &facts, hook, limit);
        let estimate = replay.run();
        if !estimate.complete || replay.zero_stores.iter().all(|index| exact_stores[*index]) {
            return estimate;
        }
        for index in replay.zero_stores {
            exact_stores[index] = true;
        }
    }
    Estimate { processed: limit + 1, complete: false }
}

/// How often the replay processes each instruction (the same walk as `estimate`, for
/// finding where a program's verification work goes).
pub fn processed_per_insn(insns: &[ResolvedInsn], hook: ProgramType, limit: usize) -> Vec<u32> {
    let flow = Flow::new(insns, &Slots::new(insns));
    let facts = Facts::new(insns, &flow, &vec![false; insns.len()]);
    let mut replay = Replay::new(insns, &flow, &facts, hook, limit);
    replay.counts = vec![0; insns.len()];
    replay.run();
    replay.counts
}

/// Control flow: the successors of every instruction (by index) and the prune points.
struct Flow {
    /// (fall-through, jump target) per instruction, [`NONE`] where there is none.
    next: Vec<[u32; 2]>,
    prune_point: Vec<bool>,
}

/// No successor, in [`Flow::next`].
const NONE: u32 = u32::MAX;

impl Flow {
    fn new(insns: &[ResolvedInsn], slots: &Slots) -> Flow {
        let target = |index: usize, offset: i32| slots.target(index, offset).map_or(NONE, |to| to as u32);
        let mut next = Vec::with_capacity(insns.len());
        let mut prune_point = vec![false; insns.len() + 1];
        for (index, insn) in insns.iter().enumerate() {
            let following = if index + 1 < insns.len() { index as u32 + 1 } else { NONE };
            next.push(match *insn {
                Insn::Exit => [NONE, NONE],
                Insn::Ja { target: offset } => [target(index, offset), NONE],
                Insn::Jump { target: offset, .. } => {
                    prune_point[index] = true;
                    [following, target(index, offset)]
                }
                Insn::Call { .. } => {
                    prune_point[index + 1] = true;
                    [following, NONE]
                }
                _ => [following, NONE],
            });
            if let Insn::Ja { target: offset } | Insn::Jump { target: offset, .. } = *insn {
                let to = target(index, offset);
                if to != NONE {
                    prune_point[to as usize] = true;
                }
            }
        }
        prune_point.truncate(insns.len());
        Flow { next, prune_point }
    }

    /// Instruction `index`'s fall-through and jump target.
    fn next(&self, index: usize) -> (Option<usize>, Option<usize>) {
        let [fall, jump] = self.next[index];
        let known = |to: u32| (to != NONE).then_some(to as usize);
        (known(fall), known(jump))
    }
}

/// Per instruction, before it runs: registers that may be read later (`live`), those
/// whose exact scalar value may matter to the kernel (`exact`: it may reach pointer
/// arithmetic, an 8-aligned spill, a stored zero or the return value), those that may
/// reach a comparison (`compared`: the kernel may have marked them precise when a later
/// comparison was decided by them, which needs them known), and stack words that may be
/// read.
struct Facts(Vec<Fact>);

/// [`Facts`] of one instruction (together: one is read where the other is).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Fact {
    stack_read: u128,
    live: u16,
    exact: u16,
    compared: u16,
}

fn bit(reg: Reg) -> u16 {
    1 << reg.number()
}

fn word_bits(off: i64, bytes: i64) -> u128 {
    let mut bits = 0u128;
    let mut at = off;
    while at < off + bytes {
        if (-512..0).contains(&at) {
            bits |= 1u128 << ((-at - 1) / 4);
        }
        at += 4;
    }
    bits
}

impl Facts {
    fn new(insns: &[ResolvedInsn], flow: &Flow, exact_stores: &[bool]) -> Facts {
        let count = insns.len();
        let mut facts = vec![Fact::default(); count];
        // A loop's back jump reads facts of instructions before it: passes until nothing
        // changes (one pass without loops).
        let loops = flow.next.iter().enumerate().any(|(index, next)| next.iter().any(|to| (*to as usize) <= index));
        let mut changed = true;
        while std::mem::take(&mut changed) {
            for index in (0..count).rev() {
                let fact = Self::fact(insns, flow, exact_stores, &facts, index);
                if fact != facts[index] {
                    facts[index] = fact;
                    changed = loops;
                }
            }
        }
        Facts(facts)
    }

    /// One instruction's facts from those of its successors.
    fn fact(insns: &[ResolvedInsn], flow: &Flow, exact_stores: &[bool], facts: &[Fact], index: usize) -> Fact {
        {
            let (mut l, mut e, mut c, mut s) = (0u16, 0u16, 0u16, 0u128);
            for to in flow.next[index] {
                if let Some(fact) = facts.get(to as usize) {
                    l |= fact.live;
                    e |= fact.exact;
                    c |= fact.compared;
                    s |= fact.stack_read;
                }
            }
            let operand_bit = |src: Operand| match src {
                Operand::Reg(reg) => bit(reg),
                Operand::Imm(_) => 0,
            };
            let kill = |set: &mut u16, reg: Reg| *set &= !bit(reg);
            match insns[index] {
                Insn::Alu64 { op, dst, src } | Insn::Alu32 { op, dst, src } => {
                    let (dst_exact, dst_compared) = (e & bit(dst) != 0, c & bit(dst) != 0);
                    if op == AluOp::Mov {
                        kill(&mut l, dst);
                        kill(&mut e, dst);
                        kill(&mut c, dst);
                    } else {
                        l |= bit(dst);
                    }
                    l |= operand_bit(src);
                    if dst_exact || (op != AluOp::Mov && matches!(op, AluOp::Add | AluOp::Sub)) {
                        // Adding a register may be pointer arithmetic: its value matters.
                        e |= operand_bit(src);
                    }
                    if dst_compared {
                        c |= operand_bit(src);
                    }
                }
                Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => l |= bit(dst),
                Insn::Load { size, dst, src, off } => {
                    kill(&mut l, dst);
                    kill(&mut e, dst);
                    kill(&mut c, dst);
                    l |= bit(src);
                    if src == Reg::R10 {
                        s |= word_bits(i64::from(off), i64::from(size.bytes()));
                    }
                }
                Insn::Store { size, dst, off, src } => {
                    l |= bit(dst) | bit(src);
                    if dst == Reg::R10 {
                        let aligned = off % 8 == 0;
                        if aligned || exact_stores[index] {
                            e |= bit(src);
                        }
                        if !aligned && size != Size::DW {
                            s &= !word_bits(i64::from(off), i64::from(size.bytes()));
                        }
                    }
                }
                Insn::StoreImm { size, dst, off, .. } => {
                    l |= bit(dst);
                    if dst == Reg::R10 && off % 8 != 0 && size != Size::DW {
                        s &= !word_bits(i64::from(off), i64::from(size.bytes()));
                    }
                }
                Insn::LoadImm64 { dst, .. } | Insn::LoadMapIndex { dst, .. } => {
                    kill(&mut l, dst);
                    kill(&mut e, dst);
                    kill(&mut c, dst);
                }
                Insn::Jump { dst, src, .. } => {
                    l |= bit(dst) | operand_bit(src);
                    c |= bit(dst) | operand_bit(src);
                }
                Insn::Ja { .. } => {}
                Insn::Call { helper } => {
                    l &= !0b11_1111;
                    e &= !0b11_1111;
                    c &= !0b11_1111;
                    // The kernel marks only a helper's declared arguments read: r1–r2
                    // for lookup (1) and ring buffer submit (132), which also covers
                    // update (2) and ktime (5) as before (their r3/r4 are stack
                    // addresses and constants); r1–r3 for reserve (131), r1–r4 for the
                    // load-bytes helpers (26, 189).
                    l |= match helper {
                        26 | 189 => 0b1_1110,
                        131 => 0b1110,
                        _ => 0b110,
                    };
                    s = u128::MAX; // the helper reads its key from the stack
                }
                Insn::Exit => {
                    l = bit(Reg::R0);
                    e = bit(Reg::R0);
                    c = 0;
                }
            }
            Fact { stack_read: s, live: l | bit(Reg::R10), exact: e & l, compared: c & l }
        }
    }
}

/// An abstract register value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Value {
    Uninit,
    /// A scalar the kernel knows exactly.
    Known(u64),
    /// A scalar the kernel does not know; the tag names how it was made.
    Unknown(u64),
    /// An unknown scalar the kernel knows is 0 or 1 (`x & 1`).
    Bit(u64),
    /// An unknown scalar the kernel knows is 0 or all ones (`(x & 1) - 1`): a constant
    /// AND or OR on it splits the path in two, one per value (see [`Replay::fork`]).
    Mask(u64),
    Context,
    Stack(i64),
    /// A packet pointer: `id` groups pointers that share a range (0: the packet start
    /// plus constants), `var` tags the variable part added, `range` the bytes proven.
    Packet {
        id: u32,
        off: i64,
        range: i64,
        var: u64,
    },
    PacketEnd,
    MapPointer,
    LookupResult,
    MapEntry,
}

/// How much of a scalar register the state comparison looks at.
#[derive(Clone, Copy)]
enum Scalar {
    /// Not at all: the kernel cannot have marked it precise.
    Ignored,
    /// Its constant if the kernel knows one, else only that it is unknown.
    KnownOrNot,
    /// Its whole abstract value.
    Exact,
}

/// What a stack word holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Word {
    Invalid,
    Misc,
    Zero,
    Spill(Value),
}

/// The stack's words: two bit planes (Misc: `misc`, Zero: `zero`, Spill: both, with its
/// value in `spills`; Invalid: neither), so that copying and comparing is cheap.
#[derive(Clone, Default)]
struct Stack {
    misc: u128,
    zero: u128,
    spills: Vec<(u8, Value)>,
}

impl Stack {
    fn get(&self, word: usize) -> Word {
        let mask = 1u128 << word;
        match (self.misc & mask != 0, self.zero & mask != 0) {
            (false, false) => Word::Invalid,
            (true, false) => Word::Misc,
            (false, true) => Word::Zero,
            (true, true) => {
                let spill = self.spills.iter().find(|(at, _)| usize::from(*at) == word);
                spill.map_or(Word::Misc, |(_, value)| Word::Spill(*value))
            }
        }
    }

    fn set(&mut self, word: usize, content: Word) {
        let mask = 1u128 << word;
        self.spills.retain(|(at, _)| usize::from(*at) != word);
        let (misc, zero) = match content {
            Word::Invalid => (false, false),
            Word::Misc => (true, false),
            Word::Zero => (false, true),
            Word::Spill(value) => {
                self.spills.push((word as u8, value));
                (true, true)
            }
        };
        self.misc = if misc { self.misc | mask } else { self.misc & !mask };
        self.zero = if zero { self.zero | mask } else { self.zero & !mask };
    }
}

#[derive(Clone)]
struct State {
    regs: [Value; 11],
    stack: Stack,
    /// Jump-target arrivals since the last saved state (the kernel forces a save past 40).
    history: u32,
}

/// Where a conditional jump goes on.
enum Way {
    /// Only to the next instruction, state unchanged.
    Fall,
    /// Only to its target, state unchanged.
    Taken,
    /// Both (the state at the target is pending).
    Both,
}

/// A state's comparison key: two independent 64-bit hashes.
type Key = (u64, u64);

struct Saved {
    key: Key,
    hits: u32,
    misses: u32,
}

struct Replay<'a> {
    insns: &'a [ResolvedInsn],
    flow: &'a Flow,
    facts: &'a Facts,
    hook: ProgramType,
    limit: usize,
    saved: Vec<Vec<Saved>>,
    processed: u64,
    jumps: u64,
    saved_at: (u64, u64),
    next_id: u32,
    /// Untracked-word stores of a known zero seen.
    zero_stores: Vec<usize>,
    /// Per instruction, times processed (only when asked for).
    counts: Vec<u32>,
}

/// Hashes a state's words into a [`Key`]: two 64-bit lanes, each step a bijection of the
/// lane for a given word (multiply by an odd constant, rotate), so two word sequences
/// collide only when a later word cancels an earlier difference in both lanes at once.
struct KeyHasher(u64, u64);

impl KeyHasher {
    fn new() -> KeyHasher {
        KeyHasher(0x1234, 0x5678)
    }

    fn push(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        self.1 = (self.1 ^ word.rotate_left(32)).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(37);
    }

    fn finish(self) -> Key {
        (self.0, self.1)
    }
}

fn mix(a: u64, b: u64) -> u64 {
    (a ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_add(a << 6).wrapping_add(a >> 2))
        .wrapping_mul(0xff51_afd7_ed55_8ccd)
}

impl<'a> Replay<'a> {
    fn new(insns: &'a [ResolvedInsn], flow: &'a Flow, facts: &'a Facts, hook: ProgramType, limit: usize) -> Replay<'a> {
        Replay {
            insns,
            flow,
            facts,
            hook,
            limit,
            saved: (0..insns.len()).map(|_| Vec::new()).collect(),
            processed: 0,
            jumps: 0,
            saved_at: (0, 0),
            next_id: 1,
            zero_stores: Vec::new(),
            counts: Vec::new(),
        }
    }

    fn run(&mut self) -> Estimate {
        let mut regs = [Value::Uninit; 11];
        regs[1] = Value::Context;
        regs[10] = Value::Stack(0);
        let mut pending: Vec<(usize, State)> = vec![(0, State { regs, stack: Stack::default(), history: 0 })];
        while let Some((start, mut state)) = pending.pop() {
            let mut at = Some(start);
            while let Some(index) = at.take() {
                self.processed += 1;
                if self.processed as usize > self.limit {
                    return Estimate { processed: self.processed as usize, complete: false };
                }
                if index >= self.insns.len() {
                    break;
                }
                if let Some(count) = self.counts.get_mut(index) {
                    *count += 1;
                }
                if self.flow.prune_point[index] && self.visit(index, &mut state) {
                    continue;
                }
                at = self.step(index, &mut state, &mut pending);
            }
        }
        Estimate { processed: self.processed as usize, complete: true }
    }

    /// `is_state_visited`: whether an equal state was saved here (the path ends).
    fn visit(&mut self, index: usize, state: &mut State) -> bool {
        let (jumps_then, processed_then) = self.saved_at;
        let due = self.jumps - jumps_then >= SAVE_AFTER_JUMPS && self.processed - processed_then >= SAVE_AFTER_INSNS;
        if self.saved[index].is_empty() && !due && state.history <= 40 {
            // Nothing to compare with and nothing to save: the key is not needed.
            return false;
        }
        let key = self.key(index, state);
        let list = &mut self.saved[index];
        let mut found = false;
        list.retain_mut(|saved| {
            if found {
                return true;
            }
            if saved.key == key {
                saved.hits += 1;
                found = true;
                return true;
            }
            saved.misses += 1;
            saved.misses <= saved.hits * 3 + 3
        });
        if found {
            return true;
        }
        if due || state.history > 40 {
            list.push(Saved { key, hits: 0, misses: 0 });
            self.saved_at = (self.jumps, self.processed);
            state.history = 0;
        }
        false
    }

    /// The state as the kernel compares it here, with packet ids renamed in order,
    /// hashed to 128 bits. Only live registers are hashed: keys are compared only with
    /// keys of the same instruction, whose live registers are the same.
    fn key(&self, index: usize, state: &State) -> Key {
        let Fact { stack_read: read, live, exact, compared } = self.facts.0[index];
        let mut ids = [0u32; 11];
        let mut id_count = 0;
        let mut key = KeyHasher::new();
        let mut encode = |value: Value, scalar: Scalar| -> u64 {
            match (value, scalar) {
                (Value::Known(_) | Value::Unknown(_) | Value::Bit(_) | Value::Mask(_), Scalar::Ignored) => 1,
                (Value::Known(constant), _) => mix(2, constant),
                (Value::Unknown(_) | Value::Bit(_) | Value::Mask(_), Scalar::KnownOrNot) => 3,
                (Value::Unknown(tag) | Value::Bit(tag) | Value::Mask(tag), Scalar::Exact) => mix(3, tag),
                (Value::Packet { id, off, range, var }, _) => {
                    let renamed = if id == 0 {
                        0
                    } else {
                        match ids[..id_count].iter().position(|known| *known == id) {
                            Some(position) => position + 1,
                            None if id_count < ids.len() => {
                                ids[id_count] = id;
                                id_count += 1;
                                id_count
                            }
                            None => id as usize + 64,
                        }
                    };
                    mix(mix(mix(mix(4, renamed as u64), off as u64), range as u64), var)
                }
                (Value::Stack(off), _) => mix(5, off as u64),
                (Value::Uninit, _) => 6,
                (Value::Context, _) => 7,
                (Value::PacketEnd, _) => 8,
                (Value::MapPointer, _) => 9,
                (Value::LookupResult, _) => 10,
                (Value::MapEntry, _) => 11,
            }
        };
        let mut regs = live;
        while regs != 0 {
            let reg = regs.trailing_zeros() as usize;
            regs &= regs - 1;
            let scalar = if exact & (1 << reg) != 0 {
                Scalar::Exact
            } else if compared & (1 << reg) != 0 {
                Scalar::KnownOrNot
            } else {
                Scalar::Ignored
            };
            key.push(encode(state.regs[reg], scalar));
        }
        let (misc, zero) = (state.stack.misc & read, state.stack.zero & read);
        key.push(misc as u64);
        key.push((misc >> 64) as u64);
        key.push(zero as u64);
        key.push((zero >> 64) as u64);
        // The spills that may be read, by word in increasing order (each word is spilled
        // at most once), without collecting and sorting them.
        if !state.stack.spills.is_empty() {
            let mut words = state.stack.spills.iter().fold(0u128, |bits, (word, _)| bits | 1u128 << word) & read;
            while words != 0 {
                let word = words.trailing_zeros() as u8;
                words &= words - 1;
                if let Some((_, value)) = state.stack.spills.iter().find(|(at, _)| *at == word) {
                    key.push(mix(u64::from(word), encode(*value, Scalar::Exact)));
                }
            }
        }
        key.finish()
    }

    fn fresh_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Executes one instruction; returns where the path goes on.
    fn step(&mut self, index: usize, state: &mut State, pending: &mut Vec<(usize, State)>) -> Option<usize> {
        let (fall, jump) = self.flow.next(index);
        let tag = |salt: u64| mix(mix(index as u64, salt), 0x5eed);
        match self.insns[index] {
            Insn::Alu64 { op, dst, src } | Insn::Alu32 { op, dst, src } => {
                let wide = matches!(self.insns[index], Insn::Alu64 { .. });
                let left = state.regs[dst.number() as usize];
                let right = match src {
                    Operand::Reg(reg) => state.regs[reg.number() as usize],
                    Operand::Imm(imm) => Value::Known(if wide { imm as i64 as u64 } else { u64::from(imm as u32) }),
                };
                if let (AluOp::And | AluOp::Or, Value::Mask(_), Value::Known(_)) = (op, left, right) {
                    self.fork(index, state, (op, wide, dst, right), pending);
                    return fall;
                }
                state.regs[dst.number() as usize] = self.alu(op, wide, left, right, || tag(0));
            }
            Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => {
                let value = state.regs[dst.number() as usize];
                state.regs[dst.number() as usize] = Value::Unknown(mix(tag(1), value_tag(value)));
            }
            Insn::Load { size, dst, src, off } => {
                let value = match state.regs[src.number() as usize] {
                    Value::Context => self.context_field(i64::from(off)),
                    Value::Stack(base) if size != Size::DW => {
                        let at = base + i64::from(off);
                        let word = (-at - 1) / 4;
                        match (0..WORDS as i64).contains(&word).then(|| state.stack.get(word as usize)) {
                            Some(Word::Spill(value)) => value,
                            Some(Word::Zero) => Value::Known(0),
                            _ => Value::Unknown(tag(2)),
                        }
                    }
                    _ => Value::Unknown(tag(3)),
                };
                state.regs[dst.number() as usize] = value;
            }
            Insn::Store { size, dst, off, src } => {
                let value = state.regs[src.number() as usize];
                if value == Value::Known(0) && off % 8 != 0 {
                    self.zero_stores.push(index);
                }
                self.store(state, dst, off, size, value);
            }
            Insn::StoreImm { size, dst, off, imm } => {
                let value = Value::Known(if size == Size::DW { imm as i64 as u64 } else { u64::from(imm as u32) });
                self.store(state, dst, off, size, value);
            }
            Insn::LoadImm64 { dst, imm } => state.regs[dst.number() as usize] = Value::Known(imm),
            Insn::LoadMapIndex { dst, .. } => state.regs[dst.number() as usize] = Value::MapPointer,
            Insn::Call { helper } => {
                self.jumps += 1;
                for reg in 1..=5 {
                    state.regs[reg] = Value::Uninit;
                }
                // Lookups return a pointer or null; the others (update, ktime) a scalar.
                state.regs[0] =
                    if helper == 1 { Value::LookupResult } else { Value::Unknown(mix(tag(5), u64::from(helper))) };
            }
            Insn::Exit => {
                self.jumps += 1;
                return None;
            }
            Insn::Ja { .. } => {
                self.jumps += 1;
                state.history += 1;
                return fall;
            }
            Insn::Jump { op, wide, dst, src, .. } => {
                self.jumps += 1;
                return match (self.branch(index, state, (op, wide, dst, src), jump, pending), jump) {
                    (Way::Taken, Some(to)) => {
                        state.history += 1;
                        Some(to)
                    }
                    (Way::Taken, None) => None,
                    (Way::Both | Way::Fall, _) => fall,
                };
            }
        }
        fall
    }

    fn context_field(&self, off: i64) -> Value {
        let context = self.hook.context();
        let (data, data_end) = (i64::from(context.data), i64::from(context.data_end));
        if off == data {
            Value::Packet { id: 0, off: 0, range: 0, var: 0 }
        } else if off == data_end {
            Value::PacketEnd
        } else {
            Value::Unknown(mix(0xc0, off as u64))
        }
    }

    fn store(&mut self, state: &mut State, dst: Reg, off: i16, size: Size, value: Value) {
        let Value::Stack(base) = state.regs[dst.number() as usize] else { return };
        let at = base + i64::from(off);
        let bytes = i64::from(size.bytes());
        let word = if at % 8 == 0 && !matches!(value, Value::Uninit) {
            Word::Spill(value)
        } else if value == Value::Known(0) {
            Word::Zero
        } else {
            Word::Misc
        };
        let mut byte = at;
        while byte < at + bytes {
            let index = (-byte - 1) / 4;
            if (0..WORDS as i64).contains(&index) {
                state.stack.set(index as usize, word);
            }
            byte += 4;
        }
    }

    /// `tag()`: the tag of an unknown result (computed only when the result is one).
    /// A constant AND or OR on a scalar in [-1, 0]: the kernel (6.18) goes on with each of
    /// its two values on a path of its own, so n of them in a row are 2^n walks of what
    /// follows (measured: 12 cost 45,049 processed instructions, 16 cost 720,889). The
    /// all-ones side goes on in `state`; the zero side is pending at the instruction
    /// itself, which the kernel processes again on it.
    fn fork(
        &mut self,
        index: usize,
        state: &mut State,
        (op, wide, dst, constant): (AluOp, bool, Reg, Value),
        pending: &mut Vec<(usize, State)>,
    ) {
        let mut zero = state.clone();
        zero.regs[dst.number() as usize] = Value::Known(0);
        pending.push((index, zero));
        let ones = Value::Known(if wide { u64::MAX } else { u64::from(u32::MAX) });
        state.regs[dst.number() as usize] = self.alu(op, wide, ones, constant, || 0);
    }

    fn alu(&mut self, op: AluOp, wide: bool, left: Value, right: Value, tag: impl Fn() -> u64) -> Value {
        let truncate = |value: u64| if wide { value } else { value & 0xffff_ffff };
        match (op, left, right) {
            (AluOp::Mov, _, Value::Known(value)) => Value::Known(truncate(value)),
            (AluOp::Mov, _, value) if wide => value,
            // A 32-bit copy of 0/1 or 0/all ones is still one (its 32 bits are all there is).
            (AluOp::Mov, _, value @ (Value::Bit(_) | Value::Mask(_))) => value,
            (AluOp::And, Value::Unknown(_) | Value::Bit(_) | Value::Mask(_), Value::Known(1)) => {
                Value::Bit(mix(tag(), value_tag(left)))
            }
            (AluOp::Xor, Value::Bit(from), Value::Known(1)) => Value::Bit(mix(tag(), from)),
            (AluOp::Sub, Value::Bit(from), Value::Known(1)) => Value::Mask(mix(tag(), from)),
            (AluOp::Add, Value::Bit(from), Value::Known(k)) if truncate(k) == truncate(u64::MAX) => {
                Value::Mask(mix(tag(), from))
            }
            (AluOp::Mov, _, value) => Value::Unknown(mix(tag(), value_tag(value))),
            (_, Value::Known(a), Value::Known(b)) => {
                let shift = (b & if wide { 63 } else { 31 }) as u32;
                let result = match op {
                    AluOp::Add => a.wrapping_add(b),
                    AluOp::Sub => a.wrapping_sub(b),
                    AluOp::Mul => a.wrapping_mul(b),
                    AluOp::Or => a | b,
                    AluOp::And => a & b,
                    AluOp::Xor => a ^ b,
                    AluOp::Lsh => truncate(a) << shift,
                    AluOp::Rsh => truncate(a) >> shift,
                    _ => return Value::Unknown(mix(tag(), mix(a, b))),
                };
                Value::Known(truncate(result))
            }
            (AluOp::Add | AluOp::Sub, Value::Packet { id, off, range, var }, Value::Known(k)) if wide => {
                let k = if op == AluOp::Add { k as i64 } else { (k as i64).wrapping_neg() };
                Value::Packet { id, off: off + k, range, var }
            }
            (AluOp::Add, Value::Packet { off, var, .. }, scalar @ Value::Unknown(_))
            | (AluOp::Add, scalar @ Value::Unknown(_), Value::Packet { off, var, .. })
                if wide =>
            {
                Value::Packet { id: self.fresh_id(), off, range: 0, var: mix(var, value_tag(scalar)) }
            }
            (AluOp::Add, Value::Known(k), Value::Packet { id, off, range, var }) if wide => {
                Value::Packet { id, off: off + k as i64, range, var }
            }
            (AluOp::Add, Value::Stack(off), Value::Known(k)) if wide => Value::Stack(off + k as i64),
            (_, a, b) => Value::Unknown(mix(tag(), mix(value_tag(a), value_tag(b)))),
        }
    }

    /// Which ways a conditional jump goes (the kernel follows only one when known
    /// constants decide it); when both, the state at the target `to` is pushed on
    /// `pending` and `state` becomes the fall-through state.
    fn branch(
        &mut self,
        index: usize,
        state: &mut State,
        (op, wide, dst, src): (JmpOp, bool, Reg, Operand),
        to: Option<usize>,
        pending: &mut Vec<(usize, State)>,
    ) -> Way {
        let left = state.regs[dst.number() as usize];
        let right = match src {
            Operand::Reg(reg) => state.regs[reg.number() as usize],
            Operand::Imm(imm) => Value::Known(if wide { imm as i64 as u64 } else { u64::from(imm as u32) }),
        };
        if let (Value::Known(a), Value::Known(b)) = (left, right) {
            return if op.holds(a, b, wide) { Way::Taken } else { Way::Fall };
        }
        let mut taken = state.clone();
        match (left, right) {
            (Value::Packet { id, off, .. }, Value::PacketEnd) if wide && matches!(op, JmpOp::Gt) => {
                for reg in state.regs.iter_mut() {
                    if let Value::Packet { id: other, range, .. } = reg {
                        if *other == id {
                            *range = (*range).max(off);
                        }
                    }
                }
            }
            (Value::LookupResult, Value::Known(0)) if op == JmpOp::Eq => {
                taken.regs[dst.number() as usize] = Value::Known(0);
                state.regs[dst.number() as usize] = Value::MapEntry;
            }
            (Value::LookupResult, Value::Known(0)) if op == JmpOp::Ne => {
                taken.regs[dst.number() as usize] = Value::MapEntry;
                state.regs[dst.number() as usize] = Value::Known(0);
            }
            (Value::Unknown(tag) | Value::Bit(tag) | Value::Mask(tag), Value::Known(constant)) => {
                let known = Value::Known(if wide { constant } else { constant & 0xffff_ffff });
                let refined = |side: u64| Value::Unknown(mix(mix(tag, index as u64), side));
                let (on_taken, on_fall) = match op {
                    JmpOp::Eq => (known, refined(1)),
                    JmpOp::Ne => (refined(2), known),
                    _ => (refined(3), refined(4)),
                };
                taken.regs[dst.number() as usize] = on_taken;
                state.regs[dst.number() as usize] = on_fall;
            }
            _ => {}
        }
        if let Some(to) = to {
            taken.history += 1;
            pending.push((to, taken));
        }
        Way::Both
    }
}

fn value_tag(value: Value) -> u64 {
    match value {
        Value::Known(constant) => mix(2, constant),
        Value::Unknown(tag) | Value::Bit(tag) | Value::Mask(tag) => mix(3, tag),
        _ => 7,
    }
}

#[cfg(test)]
mod tests;
