//! libpcap's `protochain` walk ([`Val::Protochain`]) as a bounded loop: the walk's
//! parameters and a value-register depth in, a loop of at most [`MAX_PROTOCHAIN_HEADERS`]
//! steps out, leaving to *done* with the protocol it stopped at in the first register
//! (the protocol looked for is not walked over, so the walk stops there too, and one
//! comparison after the walk tells it apart) or to the atom's *reject* (a header past the
//! frame, or past the bound).
//!
//! The loop's counter (set by `mov`, stepped by `sub 1`, tested by the back jump) is a
//! constant to pfc's verifier and to the kernel's, so both walk the loop iteration by
//! iteration and know it ends; rbpf runs it as it is. Within an iteration no two paths
//! join: every conditional jump but the back jump leaves the loop, and the choice between
//! an extension header (cursor += `(len + 1) * 8`) and AH (cursor = `(len + 2) * 4`) is
//! arithmetic, not a branch. The only join is the loop head, where the counter differs
//! from every earlier visit, so the kernel verifier follows one path through the
//! iterations, each exit costs it only the instructions until the atom's join, and its
//! work is linear in the bound (a branch per header kind would double its paths at every
//! step).
//!
//! The IPv4 and IPv6 walks of one `protochain N` test (without `ip`/`ip6`) share their
//! loop: each family's start loads its protocol, cursor and protocol sets into the
//! same registers, and the IPv4 start jumps into the loop the IPv6 start falls into
//! ([`Atom::protochain_start`], [`Atom::protochain_steps`]).
//!
//! Whether a protocol is walked is a bit test: the set of walked protocols (all below 64)
//! is a 64-bit word holding protocol `p` in bit `63 - p`, so shifting it left by the
//! protocol moves that bit to the sign.

use super::{Atom, MAX_REACH, REGS};
use crate::bpf::{AluOp, Insn, JmpOp, Label, Reg, Size};
use crate::program::pcap::{Val, MAX_PROTOCHAIN_HEADERS, PROTOCHAIN_AH, PROTOCHAIN_EXTENSIONS};

/// The set of `protocols` (each below 64), protocol `p` in bit `63 - p`.
fn from_the_top(protocols: &[u32]) -> u64 {
    protocols.iter().fold(0, |set, protocol| set | 1u64 << (63 - protocol))
}

/// The registers of the walk, from the value depth up.
struct Walk {
    /// The protocol (libpcap's A).
    protocol: Reg,
    /// The cursor from the network header (libpcap's X); in an AH-only walk, the pointer
    /// to the current header's third byte.
    cursor: Reg,
    /// The end of the current header's first two bytes, then its length byte.
    pointer: Reg,
    /// Scratch: the shifted set, then 1 for an extension header and 0 for AH.
    scratch: Reg,
    /// The set of walked protocols (when more than one, or when shared); in an AH-only
    /// walk, the pointer to the network header plus 10 (AH's 8 bytes and the 2 read).
    walked_set: Reg,
    /// The set of extension headers among them.
    extension_set: Reg,
    /// Headers the walk may still pass over (the loop's counter).
    count: Reg,
}

impl Walk {
    /// The walk's registers from the value depth `depth` up.
    fn at(depth: usize) -> Walk {
        Walk {
            protocol: REGS[depth],
            cursor: REGS[depth + 1],
            pointer: REGS[depth + 2],
            scratch: REGS[depth + 3],
            walked_set: REGS[depth + 4],
            extension_set: REGS[depth + 5],
            count: REGS[depth + 6],
        }
    }
}

/// The protocols a walk for `proto` passes over: IPv6's extension headers (on IPv6) and
/// AH, except `proto` itself, where the walk stops.
fn walked_over(ipv6: bool, proto: u32) -> (Vec<u32>, bool) {
    let extensions: Vec<u32> =
        if ipv6 { PROTOCHAIN_EXTENSIONS.iter().copied().filter(|p| *p != proto).collect() } else { Vec::new() };
    (extensions, proto != PROTOCHAIN_AH)
}

/// What one step does with the header it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Extension headers only: cursor += (len + 1) * 8.
    Extensions,
    /// Extension headers or AH (cursor = (len + 2) * 4), told apart by the extension
    /// set's bit.
    Mixed,
}

/// The constant offset of an AH-only walk's pointer from the network header: AH's 8
/// bytes past `4 * len`, and the 2 bytes each step reads.
const AH_POINTER_OFFSET: u64 = 10;

impl Atom<'_> {
    /// Emits the walk for `protochain proto` over the network header at `net`, in the
    /// value registers from `depth` up; it leaves to `done` with the protocol it stops at
    /// in the first.
    pub(super) fn protochain(&mut self, ipv6: bool, net: u32, proto: u32, depth: usize, done: Label) {
        let walk = Walk::at(depth);
        self.protochain_first_loads(&walk, ipv6, net, depth);
        let (extensions, ah) = walked_over(ipv6, proto);
        let mut walked = extensions.clone();
        if ah {
            walked.push(PROTOCHAIN_AH);
        }
        if walked.is_empty() {
            self.emit(Insn::Ja { target: done });
        } else if extensions.is_empty() && u64::from(net) + AH_POINTER_OFFSET + 4 * 255 <= MAX_REACH {
            self.protochain_ah_walk(&walk, net, done);
        } else {
            if walked.len() > 1 {
                self.emit(Insn::LoadImm64 { dst: walk.walked_set, imm: from_the_top(&walked) });
            }
            let step = if !ah {
                Step::Extensions
            } else {
                self.emit(Insn::LoadImm64 { dst: walk.extension_set, imm: from_the_top(&extensions) });
                Step::Mixed
            };
            self.emit(Insn::mov64(walk.count, MAX_PROTOCHAIN_HEADERS as i32));
            self.protochain_walk(&walk, net, Some(&walked), step, done);
        }
        // The walk leaves at many points with different registers: nothing is known after.
        self.held = Default::default();
    }

    /// The start of a walk whose steps both families share: the first loads, then the
    /// family's sets of walked protocols and of extension headers in their registers,
    /// ready for [`Self::protochain_steps`] (at the same `net` and `depth`).
    pub(super) fn protochain_start(&mut self, ipv6: bool, net: u32, proto: u32, depth: usize) {
        let walk = Walk::at(depth);
        self.protochain_first_loads(&walk, ipv6, net, depth);
        let (extensions, ah) = walked_over(ipv6, proto);
        let mut walked = extensions.clone();
        if ah {
            walked.push(PROTOCHAIN_AH);
        }
        for (reg, set) in [(walk.walked_set, from_the_top(&walked)), (walk.extension_set, from_the_top(&extensions))] {
            match i32::try_from(set) {
                Ok(small) => self.emit(Insn::mov64(reg, small)),
                Err(_) => self.emit(Insn::LoadImm64 { dst: reg, imm: set }),
            }
        }
        self.emit(Insn::mov64(walk.count, MAX_PROTOCHAIN_HEADERS as i32));
    }

    /// The steps a [`Self::protochain_start`] of either family leads into; they leave to
    /// `done` with the protocol the walk stops at in the first register.
    pub(super) fn protochain_steps(&mut self, net: u32, depth: usize, done: Label) {
        self.protochain_walk(&Walk::at(depth), net, None, Step::Mixed, done);
        self.held = Default::default();
    }

    /// The first protocol and cursor.
    fn protochain_first_loads(&mut self, walk: &Walk, ipv6: bool, net: u32, depth: usize) {
        let zero = Val::Const(0);
        // At fixed offsets, usually covered by the node's bounds check.
        if ipv6 {
            self.load(1, &zero, net + 6, depth, false);
            self.emit(Insn::mov64(walk.cursor, 40));
        } else {
            self.load(1, &zero, net + 9, depth, false);
            self.load(1, &zero, net, depth + 1, false);
            self.emit(Insn::alu64(AluOp::And, walk.cursor, 0xf));
            self.emit(Insn::alu64(AluOp::Lsh, walk.cursor, 2));
        }
    }

    /// The walk over AH headers only (IPv4's): libpcap sets its cursor to `(len + 2) * 4`
    /// at each, so the next header's pointer is `4 * len` plus a pointer to the network
    /// header that holds the rest as its constant offset, and one step is 6 instructions
    /// (and 2 for the loop's counter):
    ///
    /// ```text
    /// head: if protocol != 51 goto done
    ///       if pointer > data_end goto reject
    ///       protocol = *(u8 *)(pointer - 2)
    ///       pointer = *(u8 *)(pointer - 1)
    ///       pointer <<= 2
    ///       pointer += network + 10
    ///       count -= 1; if count != 0 goto head
    /// ```
    fn protochain_ah_walk(&mut self, walk: &Walk, net: u32, done: Label) {
        let (pointer, network) = (walk.cursor, walk.walked_set);
        // The first header at the IPv4 header length, the next ones at AH's.
        self.emit(Insn::mov64(network, Reg::R7));
        self.emit(Insn::alu64(AluOp::Add, network, (u64::from(net) + 2) as i32));
        self.emit(Insn::alu64(AluOp::Add, pointer, network));
        self.emit(Insn::alu64(AluOp::Add, network, 8));
        self.emit(Insn::mov64(walk.count, MAX_PROTOCHAIN_HEADERS as i32));
        let head = self.b.new_loop_label();
        self.b.bind(head);
        let ah = crate::bpf::Operand::imm_u32(PROTOCHAIN_AH);
        self.emit(Insn::jump32(JmpOp::Ne, walk.protocol, ah, done));
        self.emit(Insn::jump64(JmpOp::Gt, pointer, Reg::R8, self.reject));
        self.emit(Insn::load(Size::B, walk.protocol, pointer, -2));
        self.emit(Insn::load(Size::B, pointer, pointer, -1));
        self.emit(Insn::alu64(AluOp::Lsh, pointer, 2));
        self.emit(Insn::alu64(AluOp::Add, pointer, network));
        self.loop_back(walk.count, head);
        // One header more than the bound.
        self.emit(Insn::jump32(JmpOp::Ne, walk.protocol, ah, done));
        self.emit(Insn::Ja { target: self.reject });
    }

    /// `count -= 1; if count != 0 goto head`: the loop's back jump, which pfc's verifier
    /// and the kernel's decide from the counter they know.
    fn loop_back(&mut self, count: Reg, head: Label) {
        self.emit(Insn::alu64(AluOp::Sub, count, 1));
        self.emit(Insn::jump64(JmpOp::Ne, count, 0, head));
    }

    /// The walk as a loop of at most [`MAX_PROTOCHAIN_HEADERS`] steps over the `walked`
    /// protocols (`None`: the set in its register), then the exit past the bound; the
    /// counter is set.
    fn protochain_walk(&mut self, walk: &Walk, net: u32, walked: Option<&[u32]>, step: Step, done: Label) {
        let head = self.b.new_loop_label();
        self.b.bind(head);
        self.leave_unless_walked(walk, walked, done);
        // The pointer is bounded for the kernel verifier: a cursor that could reach past
        // the packet-offset limit is rejected first (no frame is that long).
        let limit = MAX_REACH - u64::from(net) - 2;
        self.emit(Insn::jump64(JmpOp::Gt, walk.cursor, limit as i32, self.reject));
        self.emit(Insn::mov64(walk.pointer, Reg::R7));
        self.emit(Insn::alu64(AluOp::Add, walk.pointer, walk.cursor));
        self.emit(Insn::alu64(AluOp::Add, walk.pointer, (u64::from(net) + 2) as i32));
        self.emit(Insn::jump64(JmpOp::Gt, walk.pointer, Reg::R8, self.reject));
        if step == Step::Mixed {
            self.emit(Insn::mov64(walk.scratch, walk.extension_set));
            self.emit(Insn::alu64(AluOp::Lsh, walk.scratch, walk.protocol));
            self.emit(Insn::alu64(AluOp::Rsh, walk.scratch, 63));
        }
        self.emit(Insn::load(Size::B, walk.protocol, walk.pointer, -2));
        self.emit(Insn::load(Size::B, walk.pointer, walk.pointer, -1));
        match step {
            Step::Extensions => {
                self.emit(Insn::alu64(AluOp::Lsh, walk.pointer, 3));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
            }
            Step::Mixed => {
                // cursor = extension * (cursor + 4 len) + 4 len + 8: an extension header
                // adds (len + 1) * 8, AH sets (len + 2) * 4.
                self.emit(Insn::alu64(AluOp::Lsh, walk.pointer, 2));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
                self.emit(Insn::alu64(AluOp::Mul, walk.cursor, walk.scratch));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
            }
        }
        self.emit(Insn::alu64(AluOp::Add, walk.cursor, 8));
        self.loop_back(walk.count, head);
        // One header more than the bound.
        self.leave_unless_walked(walk, walked, done);
        self.emit(Insn::Ja { target: self.reject });
    }

    /// Jumps to `other` when the protocol is not one of `walked` (not empty; `None`: the
    /// set in its register).
    fn leave_unless_walked(&mut self, walk: &Walk, walked: Option<&[u32]>, other: Label) {
        if let Some([only]) = walked {
            self.emit(Insn::jump32(JmpOp::Ne, walk.protocol, crate::bpf::Operand::imm_u32(*only), other));
            return;
        }
        self.emit(Insn::jump64(JmpOp::Gt, walk.protocol, 63, other));
        self.emit(Insn::mov64(walk.scratch, walk.walked_set));
        self.emit(Insn::alu64(AluOp::Lsh, walk.scratch, walk.protocol));
        self.emit(Insn::jump64(JmpOp::Sge, walk.scratch, 0, other));
    }
}
