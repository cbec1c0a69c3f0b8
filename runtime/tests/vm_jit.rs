//! JIT against interpreter: every example in `rules-examples/` compiled by pfc runs in
//! rbpf's JIT, and on every packet of its case file, every truncation of those packets,
//! the shared corpus and random bytes it returns what the interpreter returns and moves
//! the same counters. Code pfc's verifier does not accept (the clang fixtures, unchecked
//! packet reads) and code the JIT would compute differently falls back to the interpreter.
mod common;

use std::path::{Path, PathBuf};

use common::{corpus, FIXTURES};
use pfc_compiler::bpf::{AluOp, Insn, JmpOp, Operand, ProgramBuilder, Reg, Size};
use pfc_compiler::testcase::{parse_cases, Input};
use pfc_runtime::vm::{Backend, JitUnavailable, Vm};
use pfc_runtime::{BpfObject, ProgramType};
use proptest::prelude::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules-examples")
}

/// (name, object, packets from its case file) for every example.
fn examples() -> Vec<(String, BpfObject, Vec<Vec<u8>>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("rules-examples")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pf"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 7, "expected every example, found {paths:?}");
    paths
        .iter()
        .map(|path| {
            let source = std::fs::read_to_string(path).expect("read example");
            let options = pfc_compiler::codegen::Options { counters: true };
            let (compiled, diagnostics) = pfc_compiler::compile::compile(&source, options);
            let compiled = compiled.unwrap_or_else(|| panic!("{} compiles: {diagnostics:?}", path.display()));
            let cases_text = std::fs::read_to_string(path.with_extension("test.toml")).expect("case file");
            let (cases, errors) = parse_cases(&cases_text, &compiled.program);
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            let packets: Vec<Vec<u8>> = cases
                .into_iter()
                .filter_map(|case| match case.input {
                    Input::Spec { bytes, .. } | Input::Hex { bytes } => Some(bytes),
                    Input::Pcap { .. } => None,
                })
                .collect();
            assert!(!packets.is_empty(), "{} has packet cases", path.display());
            let object = BpfObject::parse(&compiled.object).expect("object parses");
            (path.display().to_string(), object, packets)
        })
        .collect()
}

/// Case packets, each truncated to every shorter length, and the shared corpus.
fn packets_for(cases: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut packets = corpus();
    for packet in cases {
        packets.extend((0..=packet.len()).map(|len| packet[..len].to_vec()));
    }
    packets
}

/// Runs `packet` in both VMs; asserts equal return values and equal counters after.
fn assert_agree(jit: &mut Vm<'_>, interpreter: &mut Vm<'_>, packet: &[u8], what: &str) {
    let got = jit.run(packet).unwrap_or_else(|e| panic!("{what}: JIT failed on {packet:02x?}: {e}"));
    let want = interpreter.run(packet).unwrap_or_else(|e| panic!("{what}: interpreter failed on {packet:02x?}: {e}"));
    assert_eq!(got, want, "{what}: return value on {packet:02x?}");
    assert_eq!(jit.map_entries(0).expect("jit map"), interpreter.map_entries(0).expect("map"), "{what}: counters");
}

#[test]
fn pfc_examples_run_in_the_jit_and_agree_with_the_interpreter() {
    for (name, object, cases) in examples() {
        let mut jit = Vm::new(&object).expect("vm");
        let mut interpreter = Vm::interpreter(&object).expect("vm");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(jit.backend(), Backend::Jit, "{name}: {:?}", jit.jit_unavailable());
            assert!(jit.jit_unavailable().is_none());
        }
        assert_eq!(interpreter.backend(), Backend::Interpreter);
        assert!(matches!(interpreter.jit_unavailable(), Some(JitUnavailable::Requested)));
        let packets = packets_for(&cases);
        for packet in &packets {
            assert_agree(&mut jit, &mut interpreter, packet, &name);
        }
        let total: u64 = interpreter.map_values(0).expect("counters").iter().map(|v| common::words(v)[0]).sum();
        assert_eq!(total, packets.len() as u64, "{name}: one count per packet");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bytes and random edits of real packets (bad lengths, odd header fields).
    #[test]
    fn random_frames_agree(
        example in 0usize..7,
        base in 0usize..64,
        edits in proptest::collection::vec((0usize..128, any::<u8>()), 0..8),
        cut in 0usize..200,
        random in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let examples = examples();
        let (name, object, cases) = &examples[example % examples.len()];
        let mut jit = Vm::new(object).expect("vm");
        let mut interpreter = Vm::interpreter(object).expect("vm");
        let mut packet = cases[base % cases.len()].clone();
        for (at, byte) in edits {
            if !packet.is_empty() {
                let index = at % packet.len();
                packet[index] = byte;
            }
        }
        packet.truncate(cut.max(1));
        assert_agree(&mut jit, &mut interpreter, &packet, name);
        assert_agree(&mut jit, &mut interpreter, &random, name);
    }
}

/// Clang's code: what pfc's verifier rejects runs in the interpreter (with the reason),
/// and so does `tc_count`, which the verifier accepts but whose `last` map has 8-byte
/// values where the verifier allows 16-byte accesses; what it accepts (`xdp_count`, a per-CPU counter like pfc's) runs in the JIT and
/// agrees with the interpreter on the corpus, maps included; so does `xdp_pass`.
#[test]
fn clang_fixtures_the_verifier_rejects_fall_back_to_the_interpreter() {
    let mut fell_back = Vec::new();
    for (name, bytes) in FIXTURES {
        let object = BpfObject::parse(bytes).expect("fixture parses");
        let mut vm = Vm::new(&object).expect("vm");
        let mut interpreter = Vm::interpreter(&object).expect("vm");
        match vm.backend() {
            Backend::Interpreter => {
                let reason = vm.jit_unavailable().expect("a reason");
                assert!(
                    matches!(
                        reason,
                        JitUnavailable::Decode { .. }
                            | JitUnavailable::Verify { .. }
                            | JitUnavailable::SmallMapValue { .. }
                    ),
                    "{name}: {reason}"
                );
                eprintln!("{name}: interpreter: {reason}");
                fell_back.push(*name);
            }
            Backend::Jit => assert!(vm.jit_unavailable().is_none()),
        }
        for packet in corpus() {
            let (got, want) = (vm.run(&packet), interpreter.run(&packet));
            assert_eq!(got.ok(), want.ok(), "{name} on {packet:02x?}");
            for map in 0..object.maps.len() {
                assert_eq!(vm.map_entries(map).ok(), interpreter.map_entries(map).ok(), "{name} map {map}");
            }
        }
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(fell_back, ["tcp_dport_22", "tc_count"], "fixtures that must stay in the interpreter");
    }
}

/// An object of hand-written XDP code with the maps of a pfc object.
fn object_of(insns: impl FnOnce(&mut ProgramBuilder)) -> BpfObject {
    let mut builder = ProgramBuilder::new();
    insns(&mut builder);
    let program = builder.finish().expect("assembles");
    BpfObject {
        program_type: ProgramType::Xdp,
        program_name: "handwritten".to_string(),
        code: program.encode(),
        relocations: Vec::new(),
        maps: Vec::new(),
        license: Some("GPL".to_string()),
    }
}

#[test]
fn an_unchecked_packet_read_stays_in_the_interpreter_which_catches_it() {
    // r2 = ctx->data; r0 = *(u32 *)(r2 + 40); exit: no data_end check.
    let object = object_of(|b| {
        b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, 0));
        b.emit(Insn::load(Size::W, Reg::R0, Reg::R2, 40));
        b.emit(Insn::Exit);
    });
    let mut vm = Vm::new(&object).expect("vm");
    assert_eq!(vm.backend(), Backend::Interpreter);
    assert!(matches!(vm.jit_unavailable(), Some(JitUnavailable::Verify { .. })), "{:?}", vm.jit_unavailable());
    assert!(vm.run(&[0u8; 14]).is_err(), "the interpreter reports the out-of-bounds read");
}

#[test]
fn checked_code_with_a_divergent_instruction_stays_in_the_interpreter() {
    // w0 = w1 where r1 = 2^32 + 2: the JIT would keep the upper half.
    let object = object_of(|b| {
        b.emit(Insn::LoadImm64 { dst: Reg::R1, imm: (1 << 32) | 2 });
        b.emit(Insn::alu32(AluOp::Mov, Reg::R0, Operand::Reg(Reg::R1)));
        b.emit(Insn::Exit);
    });
    let mut vm = Vm::new(&object).expect("vm");
    assert_eq!(vm.backend(), Backend::Interpreter);
    assert!(
        matches!(vm.jit_unavailable(), Some(JitUnavailable::Divergent { insn: 1, .. })),
        "{:?}",
        vm.jit_unavailable()
    );
    assert_eq!(vm.run(&[]).expect("runs").return_value, 2);
}

#[test]
fn checked_code_runs_in_the_jit_including_bounds_checked_reads() {
    // r2 = data; r3 = data_end; r4 = r2 + 14; if r4 > r3 goto out; r0 = *(u16 *)(r2 + 12)
    let object = object_of(|b| {
        let out = b.new_label();
        b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, 0));
        b.emit(Insn::load(Size::W, Reg::R3, Reg::R1, 4));
        b.emit(Insn::mov64(Reg::R0, 0));
        b.emit(Insn::mov64(Reg::R4, Reg::R2));
        b.emit(Insn::alu64(AluOp::Add, Reg::R4, 14));
        b.emit(Insn::jump64(JmpOp::Gt, Reg::R4, Reg::R3, out));
        b.emit(Insn::load(Size::H, Reg::R0, Reg::R2, 12));
        b.bind(out);
        b.emit(Insn::Exit);
    });
    let mut jit = Vm::new(&object).expect("vm");
    let mut interpreter = Vm::interpreter(&object).expect("vm");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(jit.backend(), Backend::Jit, "{:?}", jit.jit_unavailable());
    }
    let mut frame = [0u8; 14];
    frame[12..14].copy_from_slice(&[0x86, 0xdd]);
    for len in 0..=frame.len() {
        let (got, want) = (jit.run(&frame[..len]).expect("jit"), interpreter.run(&frame[..len]).expect("interp"));
        assert_eq!(got, want, "length {len}");
        assert_eq!(got.return_value, if len == 14 { 0xdd86 } else { 0 });
    }
}

#[test]
fn maps_with_values_smaller_than_the_verifier_assumes_stay_in_the_interpreter() {
    let (_, mut object, _) = examples().into_iter().next().expect("an example");
    object.maps[0].value_size = 8;
    let vm = Vm::new(&object).expect("vm");
    assert_eq!(vm.backend(), Backend::Interpreter);
    // pfc's verifier checks map-value accesses against each map's own value size, so the
    // counter tail's read of bytes 8..16 is refused before the size guard is reached.
    assert!(matches!(vm.jit_unavailable(), Some(JitUnavailable::Verify { .. })), "{:?}", vm.jit_unavailable());
}
