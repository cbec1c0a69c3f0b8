//! libpcap's `protochain` walk ([`Val::Protochain`]) as straight-line code: the walk's
//! parameters and a value-register depth in, at most [`MAX_PROTOCHAIN_HEADERS`] unrolled
//! steps out, each leaving to *done* with the protocol it stopped at in the first
//! register (the protocol looked for is not walked over, so the walk stops there too,
//! and one comparison after the walk tells it apart) or to the atom's *reject* (a
//! header past the frame, or past the bound).
//!
//! libpcap's loop has a backward jump; pfc emits none. Within the walk no two paths
//! join: every conditional jump leaves the walk, and the choice between an extension
//! header (cursor += `(len + 1) * 8`) and AH (cursor = `(len + 2) * 4`) is arithmetic,
//! not a branch. So the kernel verifier follows one path through the steps, each exit
//! costs it only the instructions until the next join, and the cost is linear in the
//! bound (a branch per header kind would double the verifier's paths at every step).
//!
//! The IPv4 and IPv6 walks of one `protochain N` test (without `ip`/`ip6`) share their
//! steps: each family's start loads its protocol, cursor and protocol sets into the
//! same registers, and the IPv4 start jumps into the steps the IPv6 start falls into
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

/// Largest cursor one step can add: an extension header of length 255, `(255 + 1) * 8`.
const LARGEST_STEP: u64 = 2048;

/// The registers of the walk, from the value depth up.
struct Walk {
    /// The protocol (libpcap's A).
    protocol: Reg,
    /// The cursor from the network header (libpcap's X).
    cursor: Reg,
    /// The end of the current header's first two bytes, then its length byte.
    pointer: Reg,
    /// Scratch: the shifted set, then 1 for an extension header and 0 for AH.
    scratch: Reg,
    /// The set of walked protocols (when more than one, or when shared).
    walked_set: Reg,
    /// The set of extension headers among them.
    extension_set: Reg,
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
    /// AH only: cursor = (len + 2) * 4.
    Ah,
    /// Either, told apart by the extension set's bit.
    Mixed,
}

impl Atom<'_> {
    /// Emits the walk for `protochain proto` over the network header at `net`, in the
    /// value registers from `depth` up; it leaves to `done` with the protocol it stops at
    /// in the first.
    pub(super) fn protochain(&mut self, ipv6: bool, net: u32, proto: u32, depth: usize, done: Label) {
        let walk = Walk::at(depth);
        let largest_cursor = self.protochain_first_loads(&walk, ipv6, net, depth);
        let (extensions, ah) = walked_over(ipv6, proto);
        let mut walked = extensions.clone();
        if ah {
            walked.push(PROTOCHAIN_AH);
        }
        if walked.len() > 1 {
            self.emit(Insn::LoadImm64 { dst: walk.walked_set, imm: from_the_top(&walked) });
        }
        if ah && !extensions.is_empty() {
            self.emit(Insn::LoadImm64 { dst: walk.extension_set, imm: from_the_top(&extensions) });
        }
        let step = match (ah, extensions.is_empty()) {
            (true, true) => Step::Ah,
            (false, _) => Step::Extensions,
            (true, false) => Step::Mixed,
        };
        let steps = if walked.is_empty() { 0 } else { MAX_PROTOCHAIN_HEADERS };
        self.protochain_walk(&walk, net, Some(&walked), step, steps, largest_cursor, done);
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
    }

    /// The steps a [`Self::protochain_start`] of either family leads into; they leave to
    /// `done` with the protocol the walk stops at in the first register.
    pub(super) fn protochain_steps(&mut self, net: u32, depth: usize, done: Label) {
        // The larger of the families' first cursors: IPv4's 4 * 15, IPv6's 40.
        self.protochain_walk(&Walk::at(depth), net, None, Step::Mixed, MAX_PROTOCHAIN_HEADERS, 60, done);
    }

    /// The first protocol and cursor; returns the largest cursor they may be.
    fn protochain_first_loads(&mut self, walk: &Walk, ipv6: bool, net: u32, depth: usize) -> u64 {
        let zero = Val::Const(0);
        // At fixed offsets, usually covered by the node's bounds check.
        if ipv6 {
            self.load(1, &zero, net + 6, depth, false);
            self.emit(Insn::mov64(walk.cursor, 40));
            40
        } else {
            self.load(1, &zero, net + 9, depth, false);
            self.load(1, &zero, net, depth + 1, false);
            self.emit(Insn::alu64(AluOp::And, walk.cursor, 0xf));
            self.emit(Insn::alu64(AluOp::Lsh, walk.cursor, 2));
            60
        }
    }

    /// `steps` unrolled steps over the `walked` protocols (`None`: the set in its
    /// register), then the exit past the bound.
    #[allow(clippy::too_many_arguments)]
    fn protochain_walk(
        &mut self,
        walk: &Walk,
        net: u32,
        walked: Option<&[u32]>,
        step: Step,
        steps: u32,
        mut largest_cursor: u64,
        done: Label,
    ) {
        // What the cursor register lacks of the cursor: an AH-only walk keeps `len * 4` and
        // adds AH's 8 bytes into the next pointer's constant instead (8 instructions a step).
        let mut bias: u64 = 0;
        for _ in 0..steps {
            self.leave_unless_walked(walk, walked, done);
            // The pointer is bounded for the kernel verifier: a cursor that could reach
            // past the packet-offset limit is rejected first (no frame is that long).
            let limit = MAX_REACH - u64::from(net) - 2;
            if largest_cursor > limit {
                let raw_limit = limit.saturating_sub(bias);
                self.emit(Insn::jump64(JmpOp::Gt, walk.cursor, raw_limit as i32, self.reject));
                largest_cursor = limit;
            }
            self.emit(Insn::mov64(walk.pointer, Reg::R7));
            self.emit(Insn::alu64(AluOp::Add, walk.pointer, walk.cursor));
            self.emit(Insn::alu64(AluOp::Add, walk.pointer, (u64::from(net) + 2 + bias) as i32));
            self.emit(Insn::jump64(JmpOp::Gt, walk.pointer, Reg::R8, self.reject));
            if step == Step::Mixed {
                self.emit(Insn::mov64(walk.scratch, walk.extension_set));
                self.emit(Insn::alu64(AluOp::Lsh, walk.scratch, walk.protocol));
                self.emit(Insn::alu64(AluOp::Rsh, walk.scratch, 63));
            }
            self.emit(Insn::load(Size::B, walk.protocol, walk.pointer, -2));
            match step {
                Step::Extensions => {
                    self.emit(Insn::load(Size::B, walk.pointer, walk.pointer, -1));
                    self.emit(Insn::alu64(AluOp::Lsh, walk.pointer, 3));
                    self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
                    self.emit(Insn::alu64(AluOp::Add, walk.cursor, 8));
                    largest_cursor += LARGEST_STEP;
                }
                Step::Ah => {
                    // Kept as len * 4 (`bias` adds the 8).
                    self.emit(Insn::load(Size::B, walk.cursor, walk.pointer, -1));
                    self.emit(Insn::alu64(AluOp::Lsh, walk.cursor, 2));
                    bias = 8;
                    largest_cursor = 1028;
                }
                Step::Mixed => {
                    // cursor = extension * (cursor + 4 len) + 4 len + 8: an extension header
                    // adds (len + 1) * 8, AH sets (len + 2) * 4.
                    self.emit(Insn::load(Size::B, walk.pointer, walk.pointer, -1));
                    self.emit(Insn::alu64(AluOp::Lsh, walk.pointer, 2));
                    self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
                    self.emit(Insn::alu64(AluOp::Mul, walk.cursor, walk.scratch));
                    self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
                    self.emit(Insn::alu64(AluOp::Add, walk.cursor, 8));
                    largest_cursor += LARGEST_STEP;
                }
            }
        }
        // After the last step: stopped, or one header more than the bound.
        if steps == 0 {
            self.emit(Insn::Ja { target: done });
        } else {
            self.leave_unless_walked(walk, walked, done);
            self.emit(Insn::Ja { target: self.reject });
        }
        // The walk leaves at many points with different registers: nothing is known after.
        self.held = Default::default();
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
