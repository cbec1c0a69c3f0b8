//! libpcap's `protochain` walk ([`Val::Protochain`]) as straight-line code: the walk's
//! parameters and a value-register depth in, at most [`MAX_PROTOCHAIN_HEADERS`] unrolled
//! steps out, each leaving to *found* (the protocol looked for), *other* (a protocol
//! the walk stops at) or the atom's *reject* (a header past the frame, or past the bound).
//!
//! libpcap's loop has a backward jump; pfc emits none. Within the walk no two paths
//! join: every conditional jump leaves the walk, and the choice between an extension
//! header (cursor += `(len + 1) * 8`) and AH (cursor = `(len + 2) * 4`) is arithmetic,
//! not a branch. So the kernel verifier follows one path through the steps, each exit
//! costs it only the instructions until the next join, and the cost is linear in the
//! bound (a branch per header kind would double the verifier's paths at every step).
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
    /// The set of walked protocols (when more than one).
    walked_set: Reg,
    /// The set of extension headers among them.
    extension_set: Reg,
}

impl Atom<'_> {
    /// Emits the walk for `protochain proto` over the network header at `net`, in the
    /// value registers from `depth` up (the protocol it stops at is left in the first).
    pub(super) fn protochain(&mut self, ipv6: bool, net: u32, proto: u32, depth: usize, found: Label, other: Label) {
        let walk = Walk {
            protocol: REGS[depth],
            cursor: REGS[depth + 1],
            pointer: REGS[depth + 2],
            scratch: REGS[depth + 3],
            walked_set: REGS[depth + 4],
            extension_set: REGS[depth + 5],
        };
        let zero = Val::Const(0);
        // The first loads: at fixed offsets, usually covered by the node's bounds check.
        let mut largest_cursor: u64 = if ipv6 {
            self.load(1, &zero, net + 6, depth, false);
            self.emit(Insn::mov64(walk.cursor, 40));
            40
        } else {
            self.load(1, &zero, net + 9, depth, false);
            self.load(1, &zero, net, depth + 1, false);
            self.emit(Insn::alu64(AluOp::And, walk.cursor, 0xf));
            self.emit(Insn::alu64(AluOp::Lsh, walk.cursor, 2));
            60
        };
        let extensions: Vec<u32> =
            if ipv6 { PROTOCHAIN_EXTENSIONS.iter().copied().filter(|p| *p != proto).collect() } else { Vec::new() };
        let ah = proto != PROTOCHAIN_AH;
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
        let steps = if walked.is_empty() { 0 } else { MAX_PROTOCHAIN_HEADERS };
        // When both exits are one, the walk needs no test for `proto`: it is not walked
        // over (`walked` leaves it out), so the walk leaves there anyway.
        let found_apart = found != other;
        for _ in 0..steps {
            if found_apart {
                self.emit(Insn::jump32(JmpOp::Eq, walk.protocol, crate::bpf::Operand::imm_u32(proto), found));
            }
            self.leave_unless_walked(&walk, &walked, other);
            // The pointer is bounded for the kernel verifier: a cursor that could reach
            // past the packet-offset limit is rejected first (no frame is that long).
            let limit = MAX_REACH - u64::from(net) - 2;
            if largest_cursor > limit {
                self.emit(Insn::jump64(JmpOp::Gt, walk.cursor, limit as i32, self.reject));
                largest_cursor = limit;
            }
            self.emit(Insn::mov64(walk.pointer, Reg::R7));
            self.emit(Insn::alu64(AluOp::Add, walk.pointer, walk.cursor));
            self.emit(Insn::alu64(AluOp::Add, walk.pointer, (net + 2) as i32));
            self.emit(Insn::jump64(JmpOp::Gt, walk.pointer, Reg::R8, self.reject));
            let mixed = ah && !extensions.is_empty();
            if mixed {
                self.emit(Insn::mov64(walk.scratch, walk.extension_set));
                self.emit(Insn::alu64(AluOp::Lsh, walk.scratch, walk.protocol));
                self.emit(Insn::alu64(AluOp::Rsh, walk.scratch, 63));
            }
            self.emit(Insn::load(Size::B, walk.protocol, walk.pointer, -2));
            self.emit(Insn::load(Size::B, walk.pointer, walk.pointer, -1));
            if !ah {
                // Extension headers only: cursor += (len + 1) * 8.
                self.emit(Insn::alu64(AluOp::Lsh, walk.pointer, 3));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, 8));
                largest_cursor += LARGEST_STEP;
            } else if !mixed {
                // AH only: cursor = (len + 2) * 4.
                self.emit(Insn::alu64(AluOp::Lsh, walk.pointer, 2));
                self.emit(Insn::alu64(AluOp::Add, walk.pointer, 8));
                self.emit(Insn::mov64(walk.cursor, walk.pointer));
                largest_cursor = 1028;
            } else {
                // cursor = extension * (cursor + 4 len) + 4 len + 8: an extension header
                // adds (len + 1) * 8, AH sets (len + 2) * 4.
                self.emit(Insn::alu64(AluOp::Lsh, walk.pointer, 2));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
                self.emit(Insn::alu64(AluOp::Mul, walk.cursor, walk.scratch));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, walk.pointer));
                self.emit(Insn::alu64(AluOp::Add, walk.cursor, 8));
                largest_cursor += LARGEST_STEP;
            }
        }
        // After the last step: found, stopped, or one header more than the bound.
        if found_apart {
            self.emit(Insn::jump32(JmpOp::Eq, walk.protocol, crate::bpf::Operand::imm_u32(proto), found));
        }
        if walked.is_empty() {
            self.emit(Insn::Ja { target: other });
        } else {
            self.leave_unless_walked(&walk, &walked, other);
            self.emit(Insn::Ja { target: self.reject });
        }
        // The walk leaves at many points with different registers: nothing is known after.
        self.held = Default::default();
    }

    /// Jumps to `other` when the protocol is not one of `walked` (not empty).
    fn leave_unless_walked(&mut self, walk: &Walk, walked: &[u32], other: Label) {
        if let [only] = walked {
            self.emit(Insn::jump32(JmpOp::Ne, walk.protocol, crate::bpf::Operand::imm_u32(*only), other));
            return;
        }
        self.emit(Insn::jump64(JmpOp::Gt, walk.protocol, 63, other));
        self.emit(Insn::mov64(walk.scratch, walk.walked_set));
        self.emit(Insn::alu64(AluOp::Lsh, walk.scratch, walk.protocol));
        self.emit(Insn::jump64(JmpOp::Sge, walk.scratch, 0, other));
    }
}
