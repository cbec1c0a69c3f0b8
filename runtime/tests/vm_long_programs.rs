//! Programs longer than 32,767 instructions run in the VM (both backends) and jump where
//! they should: rbpf 0.4.1's interpreter added jump offsets in 16 bits, which wrapped past
//! instruction 32,767 (pfc vendors rbpf with that one line widened; `vendor/README.md`).
use pfc_compiler::bpf::{AluOp, Insn, JmpOp, ProgramBuilder, Reg, Size};
use pfc_runtime::vm::{Backend, Vm};
use pfc_runtime::{BpfObject, ProgramType};

/// XDP code: `r0 = 1`, a jump over 32,000 no-ops, more no-ops up to `length`, then a
/// test of r0 whose jump starts past instruction 32,767: returns 2 when both jumps land.
fn long_program(length: usize) -> BpfObject {
    let mut b = ProgramBuilder::new();
    let (over, taken) = (b.new_label(), b.new_label());
    b.emit(Insn::alu32(AluOp::Mov, Reg::R0, 1));
    b.emit(Insn::Ja { target: over });
    for _ in 0..32_000 {
        b.emit(Insn::alu32(AluOp::Mov, Reg::R0, 9));
    }
    b.bind(over);
    while b.len() < length {
        b.emit(Insn::alu64(AluOp::Add, Reg::R0, 0));
    }
    b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 1, taken));
    b.emit(Insn::alu32(AluOp::Mov, Reg::R0, 7));
    b.emit(Insn::Exit);
    b.bind(taken);
    b.emit(Insn::alu32(AluOp::Mov, Reg::R0, 2));
    b.emit(Insn::Exit);
    let program = b.finish().expect("assembles");
    BpfObject {
        program_type: ProgramType::Xdp,
        program_name: "long".to_string(),
        code: program.encode(),
        relocations: Vec::new(),
        maps: Vec::new(),
        license: Some("GPL".to_string()),
    }
}

#[test]
fn jumps_past_instruction_32767_land_in_both_backends() {
    for length in [32_700, 40_000, 100_000] {
        let object = long_program(length);
        for backend in [Backend::Interpreter, Backend::Jit] {
            let mut vm = Vm::with_backend(&object, backend).expect("the VM takes long programs");
            let result = vm.run(&[0u8; 64]).unwrap_or_else(|error| panic!("{length} insns, {backend:?}: {error}"));
            assert_eq!(result.return_value, 2, "{length} insns, {:?}", vm.backend());
        }
    }
}

/// `r0 = 1`, a `goto` over `skip` instructions that set r0 = 9 (past 28,000 it is a
/// `gotol`: offset in the immediate, which vendored rbpf runs by a second patch), then
/// `r0 += 1`: returns 2 when the jump lands. The skipped code is reachable (by a test
/// of the interface index, 0 in the VM), so pfc's verifier accepts the program and the
/// JIT runs it.
fn goto_over(skip: usize) -> BpfObject {
    let mut b = ProgramBuilder::new();
    let (over, skipped) = (b.new_label(), b.new_label());
    b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, 12));
    b.emit(Insn::alu32(AluOp::Mov, Reg::R0, 1));
    b.emit(Insn::jump32(JmpOp::Eq, Reg::R2, 77, skipped));
    b.emit(Insn::Ja { target: over });
    b.bind(skipped);
    for _ in 0..skip {
        b.emit(Insn::alu32(AluOp::Mov, Reg::R0, 9));
    }
    b.bind(over);
    b.emit(Insn::alu64(AluOp::Add, Reg::R0, 1));
    b.emit(Insn::Exit);
    let program = b.finish().expect("assembles");
    BpfObject {
        program_type: ProgramType::Xdp,
        program_name: "gotol".to_string(),
        code: program.encode(),
        relocations: Vec::new(),
        maps: Vec::new(),
        license: Some("GPL".to_string()),
    }
}

#[test]
fn gotol_lands_in_both_backends() {
    for skip in [28_000, 28_001, 32_768, 100_000] {
        let object = goto_over(skip);
        let long = object.code[3 * 8] == 0x06;
        assert_eq!(long, skip > 28_000, "the encoder writes gotol exactly past GOTO_REACH");
        for backend in [Backend::Interpreter, Backend::Jit] {
            let mut vm = Vm::with_backend(&object, backend).expect("the VM takes gotol");
            assert_eq!(vm.backend(), backend, "skip {skip}: {:?}", vm.jit_unavailable());
            let result = vm.run(&[0u8; 64]).unwrap_or_else(|error| panic!("skip {skip}, {backend:?}: {error}"));
            assert_eq!(result.return_value, 2, "skip {skip}, {:?}", vm.backend());
        }
    }
}
