//! The replay on programs built to show each pruning rule: a chain of `n` diamonds
//! (a branch on an unknown value whose two sides join again) whose join leaves a state
//! the kernel merges — work linear in `n` — or tells apart — work doubling per diamond.

use super::replay;
use crate::bpf::{AluOp, Insn, JmpOp, ProgramBuilder, Reg, ResolvedInsn, Size};
use crate::object::ProgramType;

use Reg::{R0, R1, R10, R2, R3, R6, R7, R8, R9};

/// What the two sides of each diamond leave behind at the join.
#[derive(Clone, Copy, Debug)]
enum Join {
    /// r2 = 1 or 2, overwritten before it is read again: dead at the join.
    DeadRegister,
    /// r2 = 1 or 2, folded into r3 (r3 = 2 * r3 + r2), which is compared at the end:
    /// the kernel may need its value, so the replay tells the paths apart.
    ComparedConstant,
    /// 1 or 2 stored to a word at an offset that is not 8-aligned: untracked.
    UntrackedWord,
    /// 0 or 1 stored there: a stored zero is tracked (`STACK_ZERO`).
    ZeroOrOne,
    /// 1 or 2 spilled to an 8-aligned slot and read back: tracked exactly.
    AlignedSpill,
    /// One side proves 20 packet bytes, the other 26: r7's range differs.
    PacketRange,
    /// As `PacketRange`, then r7 is re-read from the context at the join.
    PacketRangeReloaded,
}

/// `n` diamonds of shape `join`, then `r0 = 0; exit`.
fn diamonds(n: usize, join: Join) -> Vec<ResolvedInsn> {
    let mut b = ProgramBuilder::new();
    b.emit(Insn::mov64(R9, R1));
    b.emit(Insn::load(Size::W, R7, R1, 0));
    b.emit(Insn::load(Size::W, R8, R1, 4));
    b.emit(Insn::mov64(R3, 0));
    let out = b.new_label();
    for k in 0..n {
        let other = b.new_label();
        let joined = b.new_label();
        let slot = -4 - 8 * k as i16;
        b.emit(Insn::load(Size::W, R6, R9, 16)); // a fresh unknown value
        b.emit(Insn::jump32(JmpOp::Eq, R6, k as i32, other));
        for (side, value) in [(0, 1), (1, 2)] {
            if side == 1 {
                b.bind(other);
            }
            match join {
                Join::DeadRegister | Join::ComparedConstant => b.emit(Insn::mov64(R2, value)),
                Join::UntrackedWord => b.emit(Insn::StoreImm { size: Size::W, dst: R10, off: slot, imm: value }),
                Join::ZeroOrOne => b.emit(Insn::StoreImm { size: Size::W, dst: R10, off: slot, imm: value - 1 }),
                Join::AlignedSpill => {
                    b.emit(Insn::mov64(R2, value));
                    b.emit(Insn::store(Size::DW, R10, slot - 4, R2));
                }
                Join::PacketRange | Join::PacketRangeReloaded => {
                    b.emit(Insn::mov64(R0, R7));
                    b.emit(Insn::alu64(AluOp::Add, R0, 14 + 6 * value));
                    b.emit(Insn::jump64(JmpOp::Gt, R0, R8, out));
                }
            }
            if side == 0 {
                b.emit(Insn::Ja { target: joined });
            }
        }
        b.bind(joined);
        match join {
            Join::PacketRangeReloaded => b.emit(Insn::load(Size::W, R7, R9, 0)),
            // r3 = r3 * 2 + r2: a different constant on each of the 2^k paths.
            Join::ComparedConstant => {
                b.emit(Insn::alu64(AluOp::Lsh, R3, 1));
                b.emit(Insn::alu64(AluOp::Add, R3, R2));
            }
            _ => {}
        }
        // Enough work after each join for the kernel to save a state at the next one.
        for _ in 0..8 {
            b.emit(Insn::alu64(AluOp::Add, R6, 0));
        }
        b.emit(Insn::load(Size::B, R0, R7, 0));
        b.emit(Insn::mov64(R0, 0));
    }
    for k in 0..n {
        let slot = -4 - 8 * k as i16;
        match join {
            Join::ComparedConstant if k == 0 => b.emit(Insn::jump32(JmpOp::Eq, R3, 1, out)),
            Join::UntrackedWord | Join::ZeroOrOne => {
                b.emit(Insn::load(Size::W, R2, R10, slot));
                b.emit(Insn::jump32(JmpOp::Eq, R2, 0, out));
            }
            Join::AlignedSpill => {
                b.emit(Insn::load(Size::DW, R2, R10, slot - 4));
                b.emit(Insn::jump32(JmpOp::Eq, R2, 1, out));
            }
            _ => {}
        }
    }
    b.bind(out);
    b.emit(Insn::mov64(R0, 0));
    b.emit(Insn::Exit);
    b.finish().expect("the test program assembles").insns
}

fn processed(n: usize, join: Join) -> usize {
    let estimate = replay(&diamonds(n, join), ProgramType::Xdp, 10_000_000);
    assert!(estimate.complete, "{join:?} with {n} diamonds did not finish");
    estimate.processed
}

/// Whether the work of 12 diamonds over that of 6 says linear (< 3×) or exponential
/// (> 30×, about 2⁶ when nothing merges).
fn check(join: Join, linear: bool) {
    let (six, twelve) = (processed(6, join), processed(12, join));
    let growth = twelve as f64 / six as f64;
    let seen_linear = growth < 3.0;
    assert!(seen_linear == linear && (linear || growth > 30.0), "{join:?}: 6 → {six}, 12 → {twelve} ({growth:.1}×)");
}

#[test]
fn joins_the_kernel_merges_keep_work_linear_and_others_double_it() {
    #[rustfmt::skip]
    let cases = [
        (Join::DeadRegister,        true),
        (Join::ComparedConstant,    false),
        (Join::UntrackedWord,       true),
        (Join::ZeroOrOne,           false),
        (Join::AlignedSpill,        false),
        (Join::PacketRange,         true),
        (Join::PacketRangeReloaded, true),
    ];
    for (join, linear) in cases {
        check(join, linear);
    }
    // Ranges only grow (to 20 or 26 bytes), so unreloaded they split each join in two.
    let (split, reloaded) = (processed(12, Join::PacketRange), processed(12, Join::PacketRangeReloaded));
    assert!(split > reloaded * 3 / 2, "packet range: {split}, reloaded: {reloaded}");
}

#[test]
fn a_straight_program_is_processed_once() {
    let mut b = ProgramBuilder::new();
    for _ in 0..99 {
        b.emit(Insn::mov64(R0, 0));
    }
    b.emit(Insn::Exit);
    let insns = b.finish().expect("assembles").insns;
    assert_eq!(replay(&insns, ProgramType::Xdp, 1_000).processed, 100);
    assert_eq!(super::estimate(&insns, ProgramType::Xdp, 1_000).processed, 100 + 100 / 8 + super::MARGIN_INSNS);
}

#[test]
fn a_branch_on_known_constants_takes_one_way() {
    let mut b = ProgramBuilder::new();
    let skip = b.new_label();
    b.emit(Insn::mov64(R2, 5));
    b.emit(Insn::jump32(JmpOp::Eq, R2, 5, skip));
    for _ in 0..50 {
        b.emit(Insn::mov64(R0, 1));
    }
    b.bind(skip);
    b.emit(Insn::mov64(R0, 0));
    b.emit(Insn::Exit);
    let insns = b.finish().expect("assembles").insns;
    assert_eq!(replay(&insns, ProgramType::Xdp, 1_000).processed, 4);
}

#[test]
fn the_replay_stops_past_its_limit() {
    let insns = diamonds(24, Join::ComparedConstant);
    let estimate = super::estimate(&insns, ProgramType::Xdp, 100_000);
    assert!(!estimate.complete && estimate.processed > 100_000, "{estimate:?}");
    assert_eq!(estimate.stopped_at(), Some(estimate.processed));
}

/// `k` times: r2 = one bit of an unknown value (0 or 1); then either `r2 - 1` (0 or all
/// ones) meets a constant AND, which the kernel follows once per value, or `r2 ^ 1` is
/// shifted into place, which it does not; r3 collects the results; `r0 = 2; exit`.
fn masks(k: usize, forking: bool) -> Vec<ResolvedInsn> {
    let mut b = ProgramBuilder::new();
    b.emit(Insn::load(Size::W, R6, R1, 16));
    b.emit(Insn::alu32(AluOp::Mov, R3, 0));
    for i in 0..k {
        b.emit(Insn::alu32(AluOp::Mov, R2, R6));
        b.emit(Insn::alu32(AluOp::Rsh, R2, i as i32));
        b.emit(Insn::alu32(AluOp::And, R2, 1));
        if forking {
            b.emit(Insn::alu32(AluOp::Sub, R2, 1));
            b.emit(Insn::mov64(R1, R2));
            b.emit(Insn::alu32(AluOp::And, R1, 1 << i));
        } else {
            b.emit(Insn::alu32(AluOp::Xor, R2, 1));
            b.emit(Insn::mov64(R1, R2));
            b.emit(Insn::alu32(AluOp::Lsh, R1, i as i32));
        }
        b.emit(Insn::alu32(AluOp::Or, R3, R1));
    }
    b.emit(Insn::alu32(AluOp::Mov, R0, 2));
    b.emit(Insn::Exit);
    b.finish().expect("the test program assembles").insns
}

/// The kernel's counts for [`masks`] (6.18, raw `BPF_PROG_LOAD`s of the same code, with
/// a constant `w0 = 2` and `r3` unread at the exit): forking 15, 37, 169, 2,809, 45,049
/// for k = 1, 2, 4, 8, 12; the replay must not count less (E0020 rests on it).
#[test]
fn a_constant_and_on_zero_or_all_ones_splits_the_path_as_in_the_kernel() {
    for (k, kernel) in [(1, 15), (2, 37), (4, 169), (8, 2_809), (12, 45_049)] {
        let forking = replay(&masks(k, true), ProgramType::Xdp, 10_000_000);
        let straight = replay(&masks(k, false), ProgramType::Xdp, 10_000_000);
        println!("k = {k}: replay {}, kernel {kernel}", forking.processed);
        assert!(forking.complete && forking.processed >= kernel, "k = {k}: replay {forking:?}, kernel {kernel}");
        assert_eq!(straight.processed, 4 + 7 * k, "k = {k}: the XOR form is one walk");
    }
}
