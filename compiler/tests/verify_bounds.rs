//! The verifier's bounds that rbpf's JIT relies on: context reads inside the context,
//! map values only after a real null check (against 0), packet bounds only from 64-bit
//! comparisons. Each rejected program differs from an accepted one in that one place,
//! and each broken invariant is its own typed error.

use pfc_compiler::bpf::{AluOp, Insn, JmpOp, Operand, Program, ProgramBuilder, Reg, Size};
use pfc_compiler::program::Hook;
use pfc_compiler::verify::{verify, Access, Misuse, Value, VerifyError};

fn program(build: impl FnOnce(&mut ProgramBuilder)) -> Program {
    let mut b = ProgramBuilder::new();
    build(&mut b);
    b.finish().expect("assembles")
}

/// The instruction and the invariant-4 problem of a refused access.
fn bad_access(result: Result<(), VerifyError>) -> (usize, Access) {
    match result {
        Err(VerifyError::BadAccess { insn, access, .. }) => (insn, access),
        other => panic!("expected BadAccess, got {other:?}"),
    }
}

/// The instruction and the invariant-6 problem of a refused register use.
fn bad_register(result: Result<(), VerifyError>) -> (usize, Misuse) {
    match result {
        Err(VerifyError::BadRegister { insn, misuse, .. }) => (insn, misuse),
        other => panic!("expected BadRegister, got {other:?}"),
    }
}

fn context_read(off: i16) -> Program {
    program(|b| {
        b.emit(Insn::load(Size::W, Reg::R0, Reg::R1, off));
        b.emit(Insn::Exit);
    })
}

#[test]
fn context_reads_stay_inside_the_context() {
    assert_eq!(verify(&context_read(20), Hook::Xdp), Ok(()));
    let outside = |start, size| (0, Access::OutsideContext { start, end: start + 4, size });
    assert_eq!(bad_access(verify(&context_read(24), Hook::Xdp)), outside(24, 24));
    assert_eq!(bad_access(verify(&context_read(-4), Hook::Xdp)), outside(-4, 24));
    assert_eq!(verify(&context_read(188), Hook::TcIngress), Ok(()));
    assert_eq!(bad_access(verify(&context_read(192), Hook::TcEgress)), outside(192, 192));
}

/// key at r10-4; r0 = lookup(map 0, key); if r0 == `against` goto out; r0 = *(u64 *)r0.
fn lookup_then_read(against: Operand) -> Program {
    program(|b| {
        let out = b.new_label();
        b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: -4, imm: 0 });
        b.emit(Insn::LoadMapIndex { dst: Reg::R1, map: 0 });
        b.emit(Insn::mov64(Reg::R2, Reg::R10));
        b.emit(Insn::alu64(AluOp::Add, Reg::R2, -4));
        b.emit(Insn::Call { helper: 1 });
        b.emit(Insn::mov64(Reg::R3, 0));
        b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, against, out));
        b.emit(Insn::load(Size::DW, Reg::R0, Reg::R0, 8));
        b.bind(out);
        b.emit(Insn::mov64(Reg::R0, 2));
        b.emit(Insn::Exit);
    })
}

#[test]
fn map_values_need_a_null_check_against_zero() {
    assert_eq!(verify(&lookup_then_read(Operand::Imm(0)), Hook::Xdp), Ok(()));
    let not_a_null_check =
        (6, Misuse::Comparison { op: JmpOp::Eq, left: Value::LookupResult { value_size: 16 }, right: Value::Scalar });
    assert_eq!(bad_register(verify(&lookup_then_read(Operand::Imm(5)), Hook::Xdp)), not_a_null_check);
    assert_eq!(bad_register(verify(&lookup_then_read(Operand::Reg(Reg::R3)), Hook::Xdp)), not_a_null_check);
}

/// r2 = data; r3 = data_end; r4 = r2 + 14; if r4 > r3 goto out (wide or not); read r2[12].
fn bounded_read(wide: bool) -> Program {
    program(|b| {
        let out = b.new_label();
        b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, 0));
        b.emit(Insn::load(Size::W, Reg::R3, Reg::R1, 4));
        b.emit(Insn::mov64(Reg::R0, 0));
        b.emit(Insn::mov64(Reg::R4, Reg::R2));
        b.emit(Insn::alu64(AluOp::Add, Reg::R4, 14));
        let jump = if wide { Insn::jump64 } else { Insn::jump32 };
        b.emit(jump(JmpOp::Gt, Reg::R4, Operand::Reg(Reg::R3), out));
        b.emit(Insn::load(Size::H, Reg::R0, Reg::R2, 12));
        b.bind(out);
        b.emit(Insn::Exit);
    })
}

#[test]
fn packet_bounds_come_from_64_bit_comparisons_only() {
    assert_eq!(verify(&bounded_read(true), Hook::Xdp), Ok(()));
    let packet = Value::Packet { base: 0, offset: 14 };
    let narrow = Misuse::Comparison { op: JmpOp::Gt, left: packet, right: Value::PacketEnd };
    assert_eq!(bad_register(verify(&bounded_read(false), Hook::Xdp)), (5, narrow));
}

/// A packet read past what the bounds check covers (invariant 3), and a write into the
/// packet (invariant 4), a helper pfc never calls (5), a write to r10 (6): one typed
/// error each.
#[test]
fn each_invariant_has_its_own_error() {
    let read_past_check = program(|b| {
        let out = b.new_label();
        b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, 0));
        b.emit(Insn::load(Size::W, Reg::R3, Reg::R1, 4));
        b.emit(Insn::mov64(Reg::R0, 0));
        b.emit(Insn::mov64(Reg::R4, Reg::R2));
        b.emit(Insn::alu64(AluOp::Add, Reg::R4, 14));
        b.emit(Insn::jump64(JmpOp::Gt, Reg::R4, Operand::Reg(Reg::R3), out));
        b.emit(Insn::load(Size::W, Reg::R0, Reg::R2, 12));
        b.bind(out);
        b.emit(Insn::Exit);
    });
    match verify(&read_past_check, Hook::Xdp) {
        Err(VerifyError::UncheckedPacketRead { insn: 6, start: 12, end: 16, covered: 14, .. }) => {}
        other => panic!("expected UncheckedPacketRead at 6, got {other:?}"),
    }
    let packet_write = program(|b| {
        b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, 0));
        b.emit(Insn::StoreImm { size: Size::B, dst: Reg::R2, off: 0, imm: 0 });
        b.emit(Insn::mov64(Reg::R0, 2));
        b.emit(Insn::Exit);
    });
    let through = Value::Packet { base: 0, offset: 0 };
    assert_eq!(bad_access(verify(&packet_write, Hook::Xdp)), (1, Access::Write { through }));
    let other_helper = program(|b| {
        b.emit(Insn::Call { helper: 6 });
        b.emit(Insn::Exit);
    });
    match verify(&other_helper, Hook::Xdp) {
        Err(VerifyError::BadCall { insn: 0, helper: 6, .. }) => {}
        other => panic!("expected BadCall, got {other:?}"),
    }
    let frame_pointer = program(|b| {
        b.emit(Insn::mov64(Reg::R10, 0));
        b.emit(Insn::mov64(Reg::R0, 2));
        b.emit(Insn::Exit);
    });
    assert_eq!(bad_register(verify(&frame_pointer, Hook::Xdp)), (0, Misuse::FramePointerWritten));
}

/// r2 = data; r3 = data_end; r4 = r2 + 2; r5 = `count`; loop: if r4 > r3 goto out;
/// r0 = *(u8 *)(r4 - `back`); r4 += r0 (a variable step); r4 += 2; `step`; if r5 != 0
/// goto loop; out: r0 = 0.
fn counted_loop(count: i32, step: Insn<pfc_compiler::bpf::Label>, back: i16) -> Program {
    program(|b| {
        let out = b.new_label();
        let head = b.new_loop_label();
        b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, 0));
        b.emit(Insn::load(Size::W, Reg::R3, Reg::R1, 4));
        b.emit(Insn::mov64(Reg::R4, Reg::R2));
        b.emit(Insn::alu64(AluOp::Add, Reg::R4, 2));
        b.emit(Insn::mov64(Reg::R5, count));
        b.bind(head);
        b.emit(Insn::jump64(JmpOp::Gt, Reg::R4, Reg::R3, out));
        b.emit(Insn::load(Size::B, Reg::R0, Reg::R4, -back));
        b.emit(Insn::alu64(AluOp::Add, Reg::R4, Reg::R0));
        b.emit(Insn::alu64(AluOp::Add, Reg::R4, 2));
        b.emit(step);
        b.emit(Insn::jump64(JmpOp::Ne, Reg::R5, 0, head));
        b.bind(out);
        b.emit(Insn::mov64(Reg::R0, 0));
        b.emit(Insn::Exit);
    })
}

#[test]
fn loops_are_walked_to_their_known_end() {
    let down = Insn::alu64(AluOp::Sub, Reg::R5, 1);
    // A counted loop whose pointer keeps its constant offset past a variable step: each
    // iteration's bounds check covers the bytes it reads back from it.
    assert_eq!(verify(&counted_loop(183, down.clone(), 2), Hook::Xdp), Ok(()));
    // Reading past what the check proved is refused in the loop as anywhere.
    assert!(matches!(
        verify(&counted_loop(183, down.clone(), -1), Hook::Xdp),
        Err(VerifyError::UncheckedPacketRead { insn: 6, .. })
    ));
    // A counter the verifier cannot decide (it is loaded, not set), or one that never
    // reaches its end within the budget, is refused.
    let unknown = Insn::load(Size::W, Reg::R5, Reg::R1, 8);
    assert_eq!(verify(&counted_loop(183, unknown, 2), Hook::Xdp), Err(VerifyError::BadJump { insn: 10 }));
    let up = Insn::alu64(AluOp::Add, Reg::R5, 1);
    assert!(matches!(verify(&counted_loop(1, up, 2), Hook::Xdp), Err(VerifyError::TooComplex { .. })));
    // A backward `goto` does not assemble; neither does a jump back to a label that is no
    // loop head.
    let mut b = ProgramBuilder::new();
    let top = b.new_label();
    b.bind(top);
    b.emit(Insn::mov64(Reg::R0, 0));
    b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, top));
    b.emit(Insn::Exit);
    assert!(b.finish().is_err());
}
