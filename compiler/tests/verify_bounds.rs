//! The verifier's bounds that rbpf's JIT relies on: context reads inside the context,
//! map values only after a real null check (against 0), packet bounds only from 64-bit
//! comparisons. Each rejected program differs from an accepted one in that one place.

use pfc_compiler::bpf::{AluOp, Insn, JmpOp, Operand, Program, ProgramBuilder, Reg, Size};
use pfc_compiler::program::Hook;
use pfc_compiler::verify::{verify, VerifyError};

fn program(build: impl FnOnce(&mut ProgramBuilder)) -> Program {
    let mut b = ProgramBuilder::new();
    build(&mut b);
    b.finish().expect("assembles")
}

fn unsafe_at(result: Result<(), VerifyError>) -> usize {
    match result {
        Err(VerifyError::Unsafe { insn, .. }) => insn,
        other => panic!("expected Unsafe, got {other:?}"),
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
    assert_eq!(unsafe_at(verify(&context_read(24), Hook::Xdp)), 0);
    assert_eq!(unsafe_at(verify(&context_read(-4), Hook::Xdp)), 0);
    assert_eq!(verify(&context_read(188), Hook::TcIngress), Ok(()));
    assert_eq!(unsafe_at(verify(&context_read(192), Hook::TcEgress)), 0);
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
    assert_eq!(unsafe_at(verify(&lookup_then_read(Operand::Imm(5)), Hook::Xdp)), 6);
    assert_eq!(unsafe_at(verify(&lookup_then_read(Operand::Reg(Reg::R3)), Hook::Xdp)), 6);
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
    assert_eq!(unsafe_at(verify(&bounded_read(false), Hook::Xdp)), 5);
}
