//! pcap atoms in the prologue: a [`PcapFilter`] in, instructions that compute libpcap's
//! verdict for the frame and set the atom's bit in a stack word out.
//!
//! Runs right after the context is read (r7 = data, r8 = data_end and the context
//! register of [`Context`] are kept; r0–r6 are free). Every packet load is preceded by a bounds check against
//! r8 that covers it; a failed check — or a zero divisor — jumps to the atom's
//! *reject* label, which stores 0, whatever `not`s surround the load (libpcap's
//! `bpf_filter` returns 0). Variable offsets are bounded first (`index > limit` →
//! reject) so the kernel verifier can track the pointer. Shifts by 32 or more give 0.
//! Values live in registers r0–r6 as a stack (see [`Val::value_depth`]; the front end
//! refuses comparisons deeper than [`MAX_VALUE_DEPTH`]).

mod chain;
mod facts;
mod graph;

use std::collections::{HashMap, HashSet};

use super::layout::PcapBit;
use crate::bpf::{AluOp, ByteOrder, EndianWidth, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::program::pcap::PcapFilter;
use crate::program::pcap::{Alu, TestOp, Val, MAX_VALUE_DEPTH};
use graph::{Graph, Test};

/// Value registers, in stack order: as many as the front end lets a comparison need.
const REGS: [Reg; MAX_VALUE_DEPTH] = [Reg::R0, Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5, Reg::R6];
/// Largest `offset + size` a load may reach: the kernel's packet-offset limit.
const MAX_REACH: u64 = 0xffff;

/// An upper bound of `val` that the kernel verifier derives too from the instructions
/// [`Atom::value`] emits for it (byte loads, `&` and `*` by constants, `+`, `>>`):
/// `u64::MAX` when unsure.
fn upper_bound(val: &Val) -> u64 {
    let bound = match val {
        Val::Const(k) => u64::from(*k),
        Val::Load { size: 1, .. } => 0xff,
        Val::Alu(Alu::And, left, right) => match &**right {
            Val::Const(k) => upper_bound(left).min(u64::from(*k)),
            _ => u64::MAX,
        },
        Val::Alu(Alu::Mul, left, right) => match (upper_bound(left), &**right) {
            (left, Val::Const(k)) if left <= 0xffff && *k <= 0xffff => left * u64::from(*k),
            _ => u64::MAX,
        },
        Val::Alu(Alu::Add, left, right) => upper_bound(left).saturating_add(upper_bound(right)),
        Val::Alu(Alu::Shr, left, right) => match &**right {
            Val::Const(k) if *k < 32 => upper_bound(left) >> k,
            _ => u64::MAX,
        },
        _ => u64::MAX,
    };
    if bound > u64::from(u32::MAX) {
        u64::MAX
    } else {
        bound
    }
}

/// `(load & mask) == k` for a fixed-offset load whose mask keeps one byte, or two
/// aligned ones, of it: the narrower load of those bytes and `k` shifted to them (`net
/// 10.0.0.0/8` reads one byte). The bounds check stays the wide load's: the node's check
/// covers the fixed loads of the test as written.
fn narrow(left: &Val, op: TestOp, right: &Val) -> Option<(Val, Val)> {
    let (TestOp::Eq, Val::Alu(Alu::And, loaded, mask), Val::Const(k)) = (op, left, right) else { return None };
    let (Val::Load { size, index, offset }, Val::Const(mask)) = (&**loaded, &**mask) else { return None };
    graph::fixed_end(*size, index, *offset)?;
    let Val::Const(base) = **index else { return None };
    let bits = u32::from(*size) * 8;
    for width in [1u32, 2].into_iter().filter(|width| *width < u32::from(*size)) {
        for first in 0..=(u32::from(*size) - width) {
            // Bytes `first..first + width` of the load, big-endian.
            let shift = bits - 8 * (first + width);
            let kept = (u32::MAX >> (32 - 8 * width)) << shift;
            if *mask == kept && k & !kept == 0 {
                let at = base + offset + first;
                return Some((Val::at(width as u8, at), Val::Const(k >> shift)));
            }
        }
    }
    None
}

/// Where the atoms find the context to re-read the packet start from at their join.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The register holding the context pointer during the atoms (never a value register).
    pub reg: Reg,
    /// Offset of the packet start (`data`) in the context.
    pub data: i16,
}

/// The verdict of `filter` when it is the same on every frame (after optimization):
/// such an atom emits no code (a true one's bit is set in its word's first value).
pub fn constant(filter: &PcapFilter) -> Option<bool> {
    Graph::new(&filter.pred).constant()
}

/// The frame length every accepting path of `filter` proves by its loads: a shorter
/// frame is rejected (0 for a constant atom).
pub fn shortest_accepted(filter: &PcapFilter) -> u64 {
    let graph = Graph::new(&filter.pred);
    match graph.constant() {
        Some(_) => 0,
        None => graph.certain_length()[graph.root],
    }
}

/// What the code before an atom leaves it, and what the code after it needs.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Bytes from the packet start a bounds check before the atom proved, with the
    /// atoms' scratch register (r6) holding the packet start plus that many (0: none).
    pub checked: u64,
    /// Whether the join re-reads r7 from the context: not when nothing after the atom
    /// reads r7 before writing it (the kernel verifier then ignores its proven ranges).
    pub reload: bool,
}

/// Emits the code that sets the verdict bit of `filter` (its word starts with the bit
/// clear) when libpcap accepts the frame; nothing for a constant atom.
///
/// The test tree is first optimized as a decision graph ([`graph`]); each test node is
/// then emitted in topological order, preferring to fall through to its next node.
/// Every path of the atom ends at one *join* instruction in the same kernel-verifier
/// state, so the kernel explores what follows once, not once per path: the word is
/// never a constant the kernel tracks (it starts non-zero, at an offset that is not
/// 8-aligned, and an accepted frame ORs its bit into the loaded, unknown value), and the
/// join re-reads r7 (the packet start) from the context, because the bounds checks of
/// each path left a different proven range on it (unless `entry` says nothing after
/// reads r7). The value registers are not read after the join (the next atom or the
/// parse writes them first). `entry` also gives the bytes a check before the atom
/// proved: the atom's first checks count from there.
///
/// `alone` is the word's value with this atom's bit set when no other atom of the word
/// has code and the word's slot is not 8-aligned: acceptance then stores that value
/// (one instruction; a non-zero 4-byte store off an 8-byte boundary is a value the
/// kernel verifier does not track) instead of loading, setting the bit and storing.
pub fn emit(
    b: &mut ProgramBuilder,
    filter: &PcapFilter,
    bit: PcapBit,
    context: Context,
    alone: Option<i32>,
    entry: Entry,
) {
    let graph = Graph::new(&filter.pred);
    if graph.constant().is_some() {
        return;
    }
    let reject = b.new_label();
    let accept = b.new_label();
    let order = graph.order();
    let certain = graph.certain_length();
    let labels: HashMap<usize, Label> = order.iter().map(|&index| (index, b.new_label())).collect();
    let target = |index: usize| match index {
        graph::TRUE => accept,
        graph::FALSE => reject,
        _ => labels[&index],
    };
    // Bytes proven present on every way into each node.
    let mut checked_in: HashMap<usize, u64> = HashMap::new();
    checked_in.insert(graph.root, entry.checked);
    // What the value registers hold on every way into each node by a jump (the way that
    // falls into a node from the one laid out before it is `fall`).
    let mut held_in: HashMap<usize, Registers> = HashMap::new();
    let mut fall: Option<(usize, Registers)> = None;
    let indices = graph.pointer_indices();
    if entry.checked > 0 {
        let mut held = Registers::default();
        held[MAX_VALUE_DEPTH - 1] = Some(Held::Ahead(entry.checked));
        held_in.insert(graph.root, held);
    }
    let (enters, hosts) = shared_walks(&graph, &order, b);
    let mut entered: Vec<Label> = Vec::new();
    let mut ways_in = vec![0usize; graph.nodes.len()];
    for &index in &order {
        let test = graph.test(index);
        ways_in[test.yes] += 1;
        if test.no != test.yes {
            ways_in[test.no] += 1;
        }
    }
    // Second words of 8-byte compares emitted with their first word's test.
    let mut fused_away: Vec<usize> = Vec::new();
    let mut atom = Atom { b, reject, checked: 0, held: Default::default(), pointers: 0 };
    for (position, &index) in order.iter().enumerate() {
        if fused_away.contains(&index) {
            continue;
        }
        let test = graph.test(index);
        let fallen = fall.take().filter(|(to, _)| *to == index).map(|(_, held)| held);
        atom.held = match (held_in.remove(&index), fallen) {
            (Some(jumped), Some(mut fallen)) => {
                // Before the label, on the way that falls in only: its pointers moved to
                // where the jumps in left theirs, so the join keeps them.
                atom.align(&jumped, &mut fallen, &indices[index]);
                meet(&jumped, &fallen)
            }
            (Some(held), None) | (None, Some(held)) => held,
            (None, None) => Default::default(),
        };
        atom.b.bind(labels[&index]);
        atom.checked = checked_in.get(&index).copied().unwrap_or(0);
        let own = graph::fixed_loads_end(&test.left).max(graph::fixed_loads_end(&test.right));
        // The root checks what every accepting path reads, as without a check before
        // the atom, even if the bytes proven before cover its own loads: one check
        // there, not one on each way down.
        let first = index == graph.root && own > 0 && certain[index] > atom.checked;
        if own > atom.checked || first {
            atom.check(certain[index].max(own));
        }
        let next_past = |skip: usize| {
            order[position + 1..]
                .iter()
                .copied()
                .find(|at| *at != skip && !fused_away.contains(at))
                .unwrap_or(graph::TRUE)
        };
        let next = next_past(index);
        if let Some((second, at, constant)) = wide_pair(&graph, index, &ways_in, atom.checked) {
            // What is laid out after the pair (its second test is emitted here).
            let next = next_past(second);
            // Two 4-byte words compared with constants, one after the other: one 8-byte
            // load and one comparison (the second test reads nothing the checks have not
            // proven, so no reject is lost).
            let last = graph.test(second);
            atom.emit(Insn::load(Size::DW, REGS[0], Reg::R7, at));
            let wide = Held::Wide(constant);
            let src = match (Operand::imm64(constant), atom.holding(&wide, REGS[0])) {
                (Some(imm), _) => imm,
                (None, Some(reg)) => Operand::Reg(reg),
                (None, None) => {
                    match u32::try_from(constant) {
                        Ok(small) => atom.emit(Insn::alu32(AluOp::Mov, REGS[1], Operand::imm_u32(small))),
                        Err(_) => atom.emit(Insn::LoadImm64 { dst: REGS[1], imm: constant }),
                    }
                    atom.remember(REGS[1], wide);
                    Operand::Reg(REGS[1])
                }
            };
            if next == test.no {
                atom.emit(Insn::jump64(JmpOp::Eq, REGS[0], src, target(last.yes)));
            } else if next == last.yes {
                atom.emit(Insn::jump64(JmpOp::Ne, REGS[0], src, target(test.no)));
            } else {
                atom.emit(Insn::jump64(JmpOp::Ne, REGS[0], src, target(test.no)));
                atom.emit(Insn::Ja { target: target(last.yes) });
            }
            fused_away.push(second);
            for to in [last.yes, test.no] {
                let known = checked_in.entry(to).or_insert(atom.checked);
                *known = (*known).min(atom.checked);
                if to > graph::FALSE {
                    let held = held_in.entry(to).or_insert_with(|| atom.held.clone());
                    *held = meet(held, &atom.held);
                }
            }
            continue;
        }
        // A walk whose value a register already holds is not walked again.
        let held = atom.held.contains(&Some(Held::Value(test.left.clone())));
        match (&test.left, enters.get(&index), hosts.get(&index)) {
            (&Val::Protochain { ipv6, net, proto }, Some(&steps), _) if !held => {
                // The other family's test hosts the steps; its comparison answers for both.
                atom.protochain_start(ipv6, net, proto, 0);
                atom.emit(Insn::Ja { target: steps });
                entered.push(steps);
                atom.held = Default::default();
                atom.held[0] = Some(Held::Value(test.left.clone()));
            }
            (&Val::Protochain { ipv6, net, proto }, _, Some(&steps)) if entered.contains(&steps) => {
                atom.protochain_start(ipv6, net, proto, 0);
                atom.b.bind(steps);
                let done = atom.b.new_label();
                atom.protochain_steps(net, 0, done);
                atom.b.bind(done);
                atom.held[0] = Some(Held::Value(test.left.clone()));
                atom.test(test, target(test.yes), target(test.no), next == test.yes, next == test.no);
            }
            _ => atom.test(test, target(test.yes), target(test.no), next == test.yes, next == test.no),
        }
        // The node's code falls into the next one when it does not end with a `goto`
        // and the next one is one of its ways.
        let falls = !atom.b.ends_with_goto();
        for to in [test.yes, test.no] {
            let known = checked_in.entry(to).or_insert(atom.checked);
            *known = (*known).min(atom.checked);
            if to > graph::FALSE && to == next && falls {
                fall = Some((to, atom.held.clone()));
            } else if to > graph::FALSE {
                let held = held_in.entry(to).or_insert_with(|| atom.held.clone());
                *held = meet(held, &atom.held);
            }
        }
    }
    atom.b.bind(accept);
    match alone {
        Some(word) if bit.slot % 8 != 0 && word != 0 => {
            atom.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: bit.slot, imm: word });
        }
        _ => {
            atom.emit(Insn::load(Size::W, Reg::R0, Reg::R10, bit.slot));
            atom.emit(Insn::alu32(AluOp::Or, Reg::R0, Operand::imm_u32(bit.mask)));
            atom.emit(Insn::store(Size::W, Reg::R10, bit.slot, Reg::R0));
        }
    }
    atom.b.bind(reject);
    if entry.reload {
        atom.emit(Insn::load(Size::W, Reg::R7, context.reg, context.data));
    }
}

/// Whether the test at `index` compares a 4-byte word at a fixed offset with a constant
/// and its `yes` is the only way into a test of the next word against a constant with the
/// same `no`, both within the `checked` bytes: then the second test, the offset and the
/// 8 bytes as one little-endian load sees them.
fn wide_pair(graph: &Graph, index: usize, ways_in: &[usize], checked: u64) -> Option<(usize, i16, u64)> {
    let word = |test: &Test| match (&test.left, test.op, &test.right) {
        (Val::Load { size: 4, index, offset }, TestOp::Eq, Val::Const(k)) => match **index {
            Val::Const(base) => Some((u64::from(base) + u64::from(*offset), *k)),
            _ => None,
        },
        _ => None,
    };
    let first = graph.test(index);
    if first.yes <= graph::FALSE || first.yes == first.no || ways_in[first.yes] != 1 {
        return None;
    }
    let second = graph.test(first.yes);
    let ((at, high), (next_at, low)) = (word(first)?, word(second)?);
    if next_at != at + 4 || second.no != first.no || second.yes == second.no || at + 8 > checked.min(0x7fff) {
        return None;
    }
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&high.to_be_bytes());
    bytes[4..].copy_from_slice(&low.to_be_bytes());
    Some((first.yes, at as i16, u64::from_le_bytes(bytes)))
}

/// The `protochain` tests whose walk steps are shared: an IPv4 and an IPv6 test of the
/// same header offset against the same protocol, with the same ways (`protochain N`
/// without `ip`/`ip6`). The first in `order` *enters* the steps the second *hosts*
/// (starts its own walk, then falls into them); both maps give the steps' label.
fn shared_walks(
    graph: &Graph,
    order: &[usize],
    b: &mut ProgramBuilder,
) -> (HashMap<usize, Label>, HashMap<usize, Label>) {
    let walk_of = |index: usize| {
        let test = graph.test(index);
        match (&test.left, test.op, &test.right) {
            (&Val::Protochain { ipv6, net, .. }, TestOp::Eq, &Val::Const(k)) if test.yes != test.no => {
                Some((ipv6, net, k, test.yes, test.no))
            }
            _ => None,
        }
    };
    let (mut enters, mut hosts) = (HashMap::new(), HashMap::new());
    for (position, &first) in order.iter().enumerate() {
        let Some((ipv6, net, k, yes, no)) = walk_of(first) else { continue };
        if hosts.contains_key(&first) {
            continue;
        }
        let second = order[position + 1..]
            .iter()
            .copied()
            .find(|&other| !hosts.contains_key(&other) && walk_of(other) == Some((!ipv6, net, k, yes, no)));
        if let Some(second) = second {
            let steps = b.new_label();
            enters.insert(first, steps);
            hosts.insert(second, steps);
        }
    }
    (enters, hosts)
}

/// What a value register is known to hold (value numbering across test nodes): the same
/// expression is not computed twice on a path, whichever node computed it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Held {
    /// The value, in host order.
    Value(Val),
    /// A 2- or 4-byte load as the bytes lie (not byte-swapped).
    Raw(Val),
    /// A packet pointer: the packet start plus `index` plus `shift` bytes (a bounds check
    /// moves the pointer itself to the end it proves: `ptr += n; if ptr > data_end`, two
    /// instructions, and loads reach back from it), with the bytes from the packet start
    /// plus `index` that a bounds check on it proved present. The verifiers keep a proven
    /// range with the pointer that was checked (and its copies), not with a recomputed
    /// one, and pfc's verifier forgets it where pointers computed on different paths
    /// join: `origin` numbers the computation (`None` after such a join).
    Base { index: Val, shift: u64, reach: u64, origin: Option<usize> },
    /// The packet start plus this many bytes (what the last bounds check compared).
    Ahead(u64),
    /// A 64-bit constant (an 8-byte compare's, kept for the next such compare).
    Wide(u64),
}

/// What each value register holds on every path to a point.
type Registers = [Option<Held>; MAX_VALUE_DEPTH];

/// What holds on both of two ways in.
fn meet(a: &Registers, b: &Registers) -> Registers {
    std::array::from_fn(|index| match (&a[index], &b[index]) {
        (
            Some(Held::Base { index, shift, reach, origin }),
            Some(Held::Base { index: other, shift: theirs_shift, reach: theirs, origin: from }),
        ) if index == other && shift == theirs_shift => {
            // Where pointers of different computations join, the verifiers know nothing
            // proven from the joined pointer (pfc's takes it as a new base at the same
            // constant offset; the kernel keeps each way's own), so a check comes again.
            let same = origin.is_some() && origin == from;
            Some(Held::Base {
                index: index.clone(),
                shift: *shift,
                reach: if same { *reach.min(theirs) } else { 0 },
                origin: origin.filter(|_| same),
            })
        }
        (one, other) if one == other => one.clone(),
        _ => None,
    })
}

struct Atom<'a> {
    b: &'a mut ProgramBuilder,
    reject: Label,
    /// Bytes from the frame's start proven present on every path to the current point:
    /// a load at a fixed offset within them needs no bounds check of its own.
    checked: u64,
    /// What the value registers hold at the current point, on every path to it.
    held: Registers,
    /// Packet pointers computed so far (numbers [`Held::Base`]'s origins).
    pointers: usize,
}

impl Atom<'_> {
    /// Emits `insn`, forgetting what the register it writes held.
    fn emit(&mut self, insn: Insn<Label>) {
        if let Some(index) = insn.written_register().and_then(|reg| REGS.iter().position(|r| *r == reg)) {
            self.held[index] = None;
        }
        self.b.emit(insn);
    }

    /// The value register (other than `not`) that holds `held`, if one does.
    fn holding(&self, held: &Held, not: Reg) -> Option<Reg> {
        (0..MAX_VALUE_DEPTH)
            .find(|&index| REGS[index] != not && self.held[index].as_ref() == Some(held))
            .map(|i| REGS[i])
    }

    /// Moves each pointer of `fallen` (the state of the way falling into a node) to the
    /// shift the same register's pointer at the same index has in `jumped` (the ways
    /// jumping in), one `add` each, when a node from here loads at that index (`used`):
    /// the join then keeps the pointer instead of computing it again.
    fn align(&mut self, jumped: &Registers, fallen: &mut Registers, used: &HashSet<Val>) {
        for at in 0..MAX_VALUE_DEPTH {
            let (Some(Held::Base { index, shift, .. }), Some(Held::Base { index: theirs, shift: their_shift, .. })) =
                (&jumped[at], &mut fallen[at])
            else {
                continue;
            };
            if index != theirs || shift == their_shift || !used.contains(index) {
                continue;
            }
            self.b.emit(Insn::alu64(AluOp::Add, REGS[at], (*shift as i64 - *their_shift as i64) as i32));
            *their_shift = *shift;
        }
    }

    fn remember(&mut self, reg: Reg, held: Held) {
        if let Some(index) = REGS.iter().position(|r| *r == reg) {
            self.held[index] = Some(held);
        }
    }

    /// Rejects frames shorter than `length` bytes: two instructions when the scratch
    /// register already holds the packet start plus less than `length` on every path here.
    fn check(&mut self, length: u64) {
        // The last value register, which a comparison rarely needs: the others may hold
        // values a later test reuses.
        let scratch = REGS[MAX_VALUE_DEPTH - 1];
        self.ahead(length);
        self.emit(Insn::jump64(JmpOp::Gt, scratch, Reg::R8, self.reject));
        self.checked = length;
    }

    /// Sets the checks' scratch register to the packet start plus `length`: one `add`
    /// (or none) when it holds the packet start plus another constant, else two.
    fn ahead(&mut self, length: u64) {
        let scratch = REGS[MAX_VALUE_DEPTH - 1];
        match self.held[MAX_VALUE_DEPTH - 1] {
            Some(Held::Ahead(ahead)) if ahead == length => {}
            Some(Held::Ahead(ahead)) => {
                self.emit(Insn::alu64(AluOp::Add, scratch, (length as i64 - ahead as i64) as i32));
            }
            _ => {
                self.emit(Insn::mov64(scratch, Reg::R7));
                if length != 0 {
                    self.emit(Insn::alu64(AluOp::Add, scratch, length as i32));
                }
            }
        }
        self.remember(scratch, Held::Ahead(length));
    }

    /// `len > k` or `len >= k` as the packet start plus `k` compared with the packet
    /// end (`r6 < r8`, `r6 <= r8`): two instructions when the checks' scratch register
    /// holds the packet start plus a constant, where the length takes two and its
    /// comparison one. Whether it emitted the test (`k` within the reach of a packet
    /// pointer's constant offset).
    fn length_test(
        &mut self,
        op: TestOp,
        right: &Val,
        (yes, no): (Label, Label),
        (yes_next, no_next): (bool, bool),
    ) -> bool {
        let (TestOp::Gt | TestOp::Ge, &Val::Const(k)) = (op, right) else { return false };
        if u64::from(k) > MAX_REACH {
            return false;
        }
        self.ahead(u64::from(k));
        let scratch = REGS[MAX_VALUE_DEPTH - 1];
        // len > k: start + k < end; len >= k: start + k <= end.
        let (holds, fails) = if op == TestOp::Gt { (JmpOp::Lt, JmpOp::Ge) } else { (JmpOp::Le, JmpOp::Gt) };
        match (no_next, yes_next) {
            (true, _) => self.emit(Insn::jump64(holds, scratch, Reg::R8, yes)),
            (false, true) => self.emit(Insn::jump64(fails, scratch, Reg::R8, no)),
            _ => {
                self.emit(Insn::jump64(holds, scratch, Reg::R8, yes));
                self.emit(Insn::Ja { target: no });
            }
        }
        true
    }

    /// One test node: to `yes` when it holds, else to `no`; a way that is the next node
    /// falls through.
    fn test(&mut self, test: &Test, yes: Label, no: Label, yes_next: bool, no_next: bool) {
        let (left, op, right) = (&test.left, test.op, &test.right);
        if yes == no {
            // Only the loads matter (they may reject): their bounds checks, not the values.
            self.touch(left, 0);
            self.touch(right, 0);
            if !yes_next {
                self.emit(Insn::Ja { target: yes });
            }
            return;
        }
        if *left == Val::Len && self.length_test(op, right, (yes, no), (yes_next, no_next)) {
            return;
        }
        let narrowed = narrow(left, op, right);
        let (left, right) = match &narrowed {
            Some((left, right)) => (left, right),
            None => (left, right),
        };
        // `==` and `&` against a constant do not care about byte order: compare the word
        // as loaded with the constant byte-swapped, and save the swap; so does `(word &
        // mask) == constant`, with both byte-swapped.
        let (loaded, mask) = match left {
            Val::Alu(Alu::And, loaded, mask) if op == TestOp::Eq => match &**mask {
                Val::Const(mask) => (&**loaded, Some(*mask)),
                _ => (left, None),
            },
            _ => (left, None),
        };
        let home = self.home(left, loaded, mask.is_none(), right);
        let kept = self.held[home].as_ref() == Some(&Held::Value(left.clone()));
        let raw = match (loaded, op, right) {
            (Val::Load { size: size @ (2 | 4), index, offset }, TestOp::Eq | TestOp::Set, Val::Const(k))
                if (*size == 4 || (*k <= 0xffff && mask.map_or(true, |m| m <= 0xffff)) || op == TestOp::Set)
                    && !kept
                    && self.holding(&Held::Value(loaded.clone()), REGS[home]).is_none()
                    && self.held[home].as_ref() != Some(&Held::Value(loaded.clone())) =>
            {
                let swap = |k: u32| if *size == 2 { u32::from((k as u16).swap_bytes()) } else { k.swap_bytes() };
                let raw = Held::Raw(loaded.clone());
                if self.held[home].as_ref() != Some(&raw) {
                    match self.holding(&raw, REGS[home]) {
                        Some(reg) => self.emit(Insn::mov64(REGS[home], reg)),
                        None => self.load(*size, index, *offset, home, false),
                    }
                    self.remember(REGS[home], raw);
                }
                if let Some(mask) = mask {
                    self.emit(Insn::alu32(AluOp::And, REGS[home], Operand::imm_u32(swap(mask))));
                }
                Some(swap(*k))
            }
            _ => None,
        };
        if raw.is_none() {
            self.value(left, home);
        }
        let src = match right {
            Val::Const(_) if raw.is_some() => Operand::imm_u32(raw.unwrap_or_default()),
            Val::Const(k) => Operand::imm_u32(*k),
            _ => {
                self.value(right, 1);
                Operand::Reg(REGS[1])
            }
        };
        let (jump_op, negated_op) = match op {
            TestOp::Eq => (JmpOp::Eq, Some(JmpOp::Ne)),
            TestOp::Gt => (JmpOp::Gt, Some(JmpOp::Le)),
            TestOp::Ge => (JmpOp::Ge, Some(JmpOp::Lt)),
            TestOp::Set => (JmpOp::Set, None),
        };
        let compared = REGS[home];
        match (no_next, yes_next, negated_op) {
            (true, _, _) => self.emit(Insn::jump32(jump_op, compared, src, yes)),
            (false, true, Some(negated)) => self.emit(Insn::jump32(negated, compared, src, no)),
            _ => {
                self.emit(Insn::jump32(jump_op, compared, src, yes));
                self.emit(Insn::Ja { target: no });
            }
        }
    }

    /// The value register a test of `left` (`loaded`, masked or not) against `right`
    /// computes into: 0 unless `left` is a load (masked or not) compared with a
    /// constant; then a register that already holds it, else a free one (not the
    /// checks' scratch), so that the values of earlier tests stay for later ones (the
    /// source port after the destination port was loaded).
    fn home(&self, left: &Val, loaded: &Val, unmasked: bool, right: &Val) -> usize {
        let Val::Load { size, index, offset } = loaded else { return 0 };
        if !matches!(right, Val::Const(_)) {
            return 0;
        }
        // A load at a variable offset uses the registers above its own (index, pointer).
        let above = if graph::fixed_end(*size, index, *offset).is_some() { 0 } else { left.value_depth() - 1 };
        let usable = || 0..(MAX_VALUE_DEPTH - 1).saturating_sub(above).max(1);
        let holds = |held: Held| usable().find(|&index| self.held[index].as_ref() == Some(&held));
        holds(Held::Value(left.clone()))
            .or_else(|| if unmasked { holds(Held::Raw(loaded.clone())) } else { None })
            .or_else(|| usable().find(|&index| self.held[index].is_none()))
            .unwrap_or(0)
    }

    /// What computing `val` at `REGS[depth]` may reject on, without its value: the
    /// bounds checks of its loads, the divisors' zero tests, protochain walks.
    fn touch(&mut self, val: &Val, depth: usize) {
        match val {
            Val::Const(_) | Val::Len => {}
            Val::Neg(inner) => self.touch(inner, depth),
            Val::Alu(Alu::Div | Alu::Mod, ..) | Val::Protochain { .. } => self.value(val, depth),
            Val::Alu(_, left, right) => {
                self.touch(left, depth);
                self.touch(right, depth);
            }
            Val::Load { size, index, offset } => match graph::fixed_end(*size, index, *offset) {
                Some(end) if end > self.checked => self.check(end),
                Some(_) => {}
                None => self.load_or_check(*size, index, *offset, depth, false, false),
            },
        }
    }

    /// Computes `val` into `REGS[depth]` (zero-extended 32 bits), using the registers
    /// above it as scratch.
    fn value(&mut self, val: &Val, depth: usize) {
        let dst = REGS[depth];
        let known = Held::Value(val.clone());
        if matches!(val, Val::Const(_)) {
            // A constant costs one instruction either way.
        } else if self.held[depth].as_ref() == Some(&known) {
            return;
        } else if let Some(reg) = self.holding(&known, dst) {
            self.emit(Insn::mov64(dst, reg));
            self.remember(dst, known);
            return;
        }
        self.compute(val, depth);
        if !matches!(val, Val::Const(_)) {
            self.remember(dst, known);
        }
    }

    fn compute(&mut self, val: &Val, depth: usize) {
        let dst = REGS[depth];
        match val {
            Val::Const(k) => self.emit(Insn::alu32(AluOp::Mov, dst, Operand::imm_u32(*k))),
            Val::Len => {
                self.emit(Insn::mov64(dst, Reg::R8));
                self.emit(Insn::alu64(AluOp::Sub, dst, Reg::R7));
            }
            Val::Neg(inner) => {
                self.value(inner, depth);
                self.emit(Insn::Neg { wide: false, dst });
            }
            Val::Load { size, index, offset } => self.load(*size, index, *offset, depth, true),
            Val::Alu(op, left, right) => self.alu(*op, left, right, depth),
            Val::Protochain { ipv6, net, proto } => {
                let done = self.b.new_label();
                self.protochain(*ipv6, *net, *proto, depth, done);
                self.b.bind(done);
            }
        }
    }

    /// Loads into `REGS[depth]`, in host order when `swap` (else as the bytes lie).
    fn load(&mut self, size: u8, index: &Val, offset: u32, depth: usize, swap_to_host: bool) {
        self.load_or_check(size, index, offset, depth, swap_to_host, true);
    }

    /// [`Self::load`], or only its bounds check when not `read`.
    fn load_or_check(&mut self, size: u8, index: &Val, offset: u32, depth: usize, swap_to_host: bool, read: bool) {
        let dst = REGS[depth];
        let width = u64::from(size);
        let (bpf_size, swap) = match size {
            1 => (Size::B, None),
            2 => (Size::H, Some(EndianWidth::W16)),
            _ => (Size::W, Some(EndianWidth::W32)),
        };
        match index {
            Val::Const(k) if u64::from(*k) + u64::from(offset) + width <= 0x7fff => {
                let at = (u64::from(*k) + u64::from(offset)) as i32;
                let end = at as u64 + width;
                if end > self.checked {
                    self.check(end);
                }
                if !read {
                    return;
                }
                self.emit(Insn::load(bpf_size, dst, Reg::R7, at as i16));
            }
            _ => {
                if u64::from(offset) + width > MAX_REACH {
                    self.always_reject(dst);
                    return;
                }
                let limit = MAX_REACH - u64::from(offset) - width;
                let pointer = REGS[depth + 1];
                if u64::from(offset) + width <= 0x7fff {
                    // The pointer is the packet start plus the index (kept for other loads
                    // at the same index); the offset goes into the check and the load.
                    let held = (0..MAX_VALUE_DEPTH).find_map(|at| match &self.held[at] {
                        Some(Held::Base { index: x, shift, reach, origin }) if REGS[at] != dst && x == index => {
                            Some((at, *shift, *reach, *origin))
                        }
                        _ => None,
                    });
                    let (at, mut shift, reach, origin) = match held {
                        Some(held) => held,
                        None if depth + 1 + index.value_depth() <= MAX_VALUE_DEPTH => {
                            // The index computed where the pointer goes, then the packet
                            // start added to it (`scalar += pointer` is a pointer). The
                            // pointer's home is the highest register the index fits
                            // below the checks' scratch, whatever the load's own
                            // register: ways that computed it apart then hold it in the
                            // same register where they join.
                            let home = (depth + 1..MAX_VALUE_DEPTH - 1)
                                .rev()
                                .find(|at| at + index.value_depth() <= MAX_VALUE_DEPTH)
                                .unwrap_or(depth + 1);
                            let pointer = REGS[home];
                            self.value(index, home);
                            if upper_bound(index) > limit {
                                self.emit(Insn::jump64(
                                    JmpOp::Gt,
                                    pointer,
                                    Operand::imm_u32(limit as u32),
                                    self.reject,
                                ));
                            }
                            self.emit(Insn::alu64(AluOp::Add, pointer, Reg::R7));
                            self.pointers += 1;
                            (home, 0, 0, Some(self.pointers))
                        }
                        None => {
                            self.value(index, depth);
                            if upper_bound(index) > limit {
                                self.emit(Insn::jump64(JmpOp::Gt, dst, Operand::imm_u32(limit as u32), self.reject));
                            }
                            self.emit(Insn::mov64(pointer, Reg::R7));
                            self.emit(Insn::alu64(AluOp::Add, pointer, dst));
                            self.pointers += 1;
                            (depth + 1, 0, 0, Some(self.pointers))
                        }
                    };
                    let pointer = REGS[at];
                    let end = u64::from(offset) + width;
                    if end > reach {
                        // The pointer moves to the end the check proves (it may be there
                        // already, where ways with other proven ranges joined).
                        if end != shift {
                            self.emit(Insn::alu64(AluOp::Add, pointer, (end as i64 - shift as i64) as i32));
                        }
                        self.emit(Insn::jump64(JmpOp::Gt, pointer, Reg::R8, self.reject));
                        shift = end;
                    }
                    self.held[at] = Some(Held::Base { index: index.clone(), shift, reach: reach.max(end), origin });
                    if !read {
                        return;
                    }
                    self.emit(Insn::load(bpf_size, dst, pointer, (i64::from(offset) - shift as i64) as i16));
                    if let (Some(width), true) = (swap, swap_to_host) {
                        self.emit(Insn::Endian { order: ByteOrder::Big, width, dst });
                    }
                    return;
                }
                self.value(index, depth);
                // Bounded for the verifier: index <= limit, so the pointer stays
                // within the kernel's packet-offset range.
                if upper_bound(index) > limit {
                    self.emit(Insn::jump64(JmpOp::Gt, dst, Operand::imm_u32(limit as u32), self.reject));
                }
                self.emit(Insn::mov64(pointer, Reg::R7));
                self.emit(Insn::alu64(AluOp::Add, pointer, dst));
                self.emit(Insn::alu64(AluOp::Add, pointer, offset as i32));
                self.emit(Insn::mov64(dst, pointer));
                self.emit(Insn::alu64(AluOp::Add, dst, width as i32));
                self.emit(Insn::jump64(JmpOp::Gt, dst, Reg::R8, self.reject));
                if !read {
                    return;
                }
                self.emit(Insn::load(bpf_size, dst, pointer, 0));
            }
        }
        if let (Some(width), true) = (swap, swap_to_host) {
            self.emit(Insn::Endian { order: ByteOrder::Big, width, dst });
        }
    }

    /// Rejects with a conditional jump the verifier resolves, so no code after it is
    /// structurally unreachable (the kernel refuses unreachable instructions).
    fn always_reject(&mut self, dst: Reg) {
        self.emit(Insn::alu32(AluOp::Mov, dst, 0));
        self.emit(Insn::jump32(JmpOp::Eq, dst, 0, self.reject));
    }

    fn alu(&mut self, op: Alu, left: &Val, right: &Val, depth: usize) {
        let dst = REGS[depth];
        self.value(left, depth);
        let bpf_op = match op {
            Alu::Add => AluOp::Add,
            Alu::Sub => AluOp::Sub,
            Alu::Mul => AluOp::Mul,
            Alu::Div => AluOp::Div,
            Alu::Mod => AluOp::Mod,
            Alu::And => AluOp::And,
            Alu::Or => AluOp::Or,
            Alu::Xor => AluOp::Xor,
            Alu::Shl => AluOp::Lsh,
            Alu::Shr => AluOp::Rsh,
        };
        let shift = matches!(op, Alu::Shl | Alu::Shr);
        match right {
            Val::Const(k) if shift && *k >= 32 => self.emit(Insn::alu32(AluOp::Mov, dst, 0)),
            Val::Const(0) if matches!(op, Alu::Div | Alu::Mod) => self.always_reject(dst),
            Val::Const(k) => self.emit(Insn::alu32(bpf_op, dst, Operand::imm_u32(*k))),
            _ => {
                let src = REGS[depth + 1];
                self.value(right, depth + 1);
                if matches!(op, Alu::Div | Alu::Mod) {
                    self.emit(Insn::jump32(JmpOp::Eq, src, 0, self.reject));
                }
                if shift {
                    let in_range = self.b.new_label();
                    let done = self.b.new_label();
                    self.emit(Insn::jump32(JmpOp::Lt, src, 32, in_range));
                    self.emit(Insn::alu32(AluOp::Mov, dst, 0));
                    self.emit(Insn::Ja { target: done });
                    self.b.bind(in_range);
                    self.emit(Insn::alu32(bpf_op, dst, src));
                    self.b.bind(done);
                } else {
                    self.emit(Insn::alu32(bpf_op, dst, src));
                }
            }
        }
    }
}
