//! Encoding against bytes printed by `llvm-mc -show-encoding` / `llvm-objdump -d`,
//! encode→decode round trips, label resolution errors, and listing text.

use super::*;
use AluOp::*;
use Reg::*;

/// Encodes one resolved instruction and compares it with LLVM's bytes.
fn check_bytes(insn: ResolvedInsn, llvm: &[u8]) {
    let bytes = encode(std::slice::from_ref(&insn));
    assert_eq!(bytes, llvm, "{insn:?}");
    let maps: Vec<MapReloc> = map_relocations(std::slice::from_ref(&insn));
    // Give a jump somewhere to land so that decoding accepts it.
    let landing = insn.target().map_or(0, |&off| off as usize + 1);
    let mut program = vec![insn];
    program.extend(std::iter::repeat(Insn::Exit).take(landing));
    let padded = [bytes, encode(&program[1..])].concat();
    assert_eq!(decode(&padded, &maps), Ok(program));
}

#[test]
fn encoding_matches_llvm() {
    // From `llvm-objdump -d` of a clang -O2 XDP program and `llvm-mc -mcpu=v3`.
    check_bytes(Insn::mov64(R0, 2), &[0xb7, 0, 0, 0, 2, 0, 0, 0]);
    check_bytes(Insn::load(Size::W, R2, R1, 4), &[0x61, 0x12, 4, 0, 0, 0, 0, 0]);
    check_bytes(Insn::mov64(R1, R6), &[0xbf, 0x61, 0, 0, 0, 0, 0, 0]);
    check_bytes(Insn::alu64(Add, R1, 14), &[0x07, 0x01, 0, 0, 14, 0, 0, 0]);
    check_bytes(Insn::alu64(Add, R2, -4), &[0x07, 0x02, 0, 0, 0xfc, 0xff, 0xff, 0xff]);
    check_bytes(Insn::jump64(JmpOp::Gt, R1, R2, 15), &[0x2d, 0x21, 0x0f, 0, 0, 0, 0, 0]);
    check_bytes(Insn::store(Size::W, R10, -4, R1), &[0x63, 0x1a, 0xfc, 0xff, 0, 0, 0, 0]);
    check_bytes(Insn::LoadMapIndex { dst: R1, map: 0 }, &[0x18, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    check_bytes(Insn::Call { helper: 1 }, &[0x85, 0, 0, 0, 1, 0, 0, 0]);
    check_bytes(Insn::jump64(JmpOp::Eq, R0, 0, 3), &[0x15, 0x00, 3, 0, 0, 0, 0, 0]);
    check_bytes(Insn::load(Size::DW, R1, R0, 0), &[0x79, 0x01, 0, 0, 0, 0, 0, 0]);
    check_bytes(Insn::store(Size::DW, R0, 0, R1), &[0x7b, 0x10, 0, 0, 0, 0, 0, 0]);
    check_bytes(Insn::load(Size::H, R1, R6, 12), &[0x69, 0x61, 12, 0, 0, 0, 0, 0]);
    check_bytes(Insn::jump64(JmpOp::Eq, R1, 56710, 1), &[0x15, 0x01, 1, 0, 0x86, 0xdd, 0, 0]);
    check_bytes(Insn::Exit, &[0x95, 0, 0, 0, 0, 0, 0, 0]);
    check_bytes(Insn::alu32(Mov, R1, 5), &[0xb4, 0x01, 0, 0, 5, 0, 0, 0]);
    check_bytes(Insn::jump32(JmpOp::Gt, R1, 3, 1), &[0x26, 0x01, 1, 0, 3, 0, 0, 0]);
    let be16 = Insn::Endian { order: ByteOrder::Big, width: EndianWidth::W16, dst: R1 };
    check_bytes(be16, &[0xdc, 0x01, 0, 0, 0x10, 0, 0, 0]);
    let le32 = Insn::Endian { order: ByteOrder::Little, width: EndianWidth::W32, dst: R2 };
    check_bytes(le32, &[0xd4, 0x02, 0, 0, 0x20, 0, 0, 0]);
    check_bytes(
        Insn::LoadImm64 { dst: R3, imm: 0x1122_3344_5566_7788 },
        &[0x18, 0x03, 0, 0, 0x88, 0x77, 0x66, 0x55, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11],
    );
    check_bytes(Insn::Neg { wide: false, dst: R2 }, &[0x84, 0x02, 0, 0, 0, 0, 0, 0]);
    check_bytes(Insn::alu64(Arsh, R3, 3), &[0xc7, 0x03, 0, 0, 3, 0, 0, 0]);
    check_bytes(Insn::jump64(JmpOp::Slt, R1, -1, 0), &[0xc5, 0x01, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let st = Insn::StoreImm { size: Size::H, dst: R10, off: -2, imm: 7 };
    check_bytes(st, &[0x6a, 0x0a, 0xfe, 0xff, 7, 0, 0, 0]);
}

/// Every operation in every form survives encode → decode → encode.
#[test]
fn round_trip_all_forms() {
    let alu_ops = [Add, Sub, Mul, Div, Or, And, Lsh, Rsh, Mod, Xor, Mov, Arsh];
    let jmp_ops = encode::JMP_OPS;
    let mut insns: Vec<ResolvedInsn> = Vec::new();
    for op in alu_ops {
        for src in [Operand::Reg(R9), Operand::Imm(-7)] {
            insns.push(Insn::Alu64 { op, dst: R3, src });
            insns.push(Insn::Alu32 { op, dst: R4, src });
        }
    }
    for size in [Size::B, Size::H, Size::W, Size::DW] {
        insns.push(Insn::load(size, R5, R10, -8));
        insns.push(Insn::store(size, R10, -16, R5));
        insns.push(Insn::StoreImm { size, dst: R10, off: 8, imm: -3 });
    }
    for order in [ByteOrder::Big, ByteOrder::Little] {
        for width in [EndianWidth::W16, EndianWidth::W32, EndianWidth::W64] {
            insns.push(Insn::Endian { order, width, dst: R7 });
        }
    }
    insns.push(Insn::Neg { wide: true, dst: R1 });
    insns.push(Insn::LoadImm64 { dst: R2, imm: u64::MAX });
    insns.push(Insn::LoadMapIndex { dst: R1, map: 3 });
    insns.push(Insn::Call { helper: 1 });
    let jumps_start = insns.len();
    for op in jmp_ops {
        for wide in [true, false] {
            for src in [Operand::Reg(R2), Operand::Imm(i32::MIN)] {
                insns.push(Insn::Jump { op, wide, dst: R1, src, target: 0 });
            }
        }
    }
    insns.push(Insn::Ja { target: 0 });
    insns.push(Insn::Exit);
    assert!(insns.len() > jumps_start + 40);
    let bytes = encode(&insns);
    let maps = map_relocations(&insns);
    assert_eq!(maps.len(), 1);
    let decoded = decode(&bytes, &maps).expect("decodes");
    assert_eq!(decoded, insns);
    assert_eq!(encode(&decoded), bytes);
}

#[test]
fn decode_rejects_unsupported_instructions() {
    let cases: [(&[u8], DecodeError); 9] = [
        // sdiv (ISA v4: div with off = 1)
        (&[0x3f, 0x12, 1, 0, 0, 0, 0, 0], DecodeError::NonZeroField { slot: 0, code: 0x3f, field: "off" }),
        // atomic add (BPF_STX | BPF_DW | BPF_ATOMIC)
        (&[0xdb, 0x12, 0, 0, 0, 0, 0, 0], DecodeError::UnsupportedOpcode { slot: 0, code: 0xdb }),
        // LD_ABS half-word
        (&[0x28, 0, 0, 0, 12, 0, 0, 0], DecodeError::UnsupportedOpcode { slot: 0, code: 0x28 }),
        // bpf-to-bpf call (src = 1)
        (&[0x85, 0x10, 0, 0, 1, 0, 0, 0], DecodeError::NonZeroField { slot: 0, code: 0x85, field: "src" }),
        // bswap16 (ALU64 END)
        (&[0xd7, 0x01, 0, 0, 16, 0, 0, 0], DecodeError::UnsupportedOpcode { slot: 0, code: 0xd7 }),
        // lddw cut in half
        (&[0x18, 0x01, 0, 0, 0, 0, 0, 0], DecodeError::BadLoadImm64 { slot: 0 }),
        // register 11
        (&[0xb7, 0x0b, 0, 0, 0, 0, 0, 0], DecodeError::InvalidRegister { slot: 0, number: 11 }),
        // gotol +28000: a goto pfc writes with a 16-bit offset (gotol only past that)
        (&[0x06, 0, 0, 0, 0x60, 0x6d, 0, 0], DecodeError::UnsupportedOpcode { slot: 0, code: 0x06 }),
        // gotol with a non-zero off field
        (&[0x06, 0, 1, 0, 0, 0x80, 0, 0], DecodeError::NonZeroField { slot: 0, code: 0x06, field: "off" }),
    ];
    for (bytes, expected) in cases {
        assert_eq!(decode(bytes, &[]), Err(expected), "{bytes:x?}");
    }
    assert_eq!(decode(&[0; 7], &[]), Err(DecodeError::Length { len: 7 }));
    // A jump past the end, and one into the second half of a lddw.
    let past_end = encode(&[Insn::Ja { target: 1 }, Insn::Exit]);
    assert_eq!(decode(&past_end, &[]), Err(DecodeError::BadJumpTarget { slot: 0, off: 1 }));
    let into_lddw = encode(&[Insn::Ja { target: 1 }, Insn::LoadImm64 { dst: R0, imm: 1 }, Insn::Exit]);
    assert_eq!(decode(&into_lddw, &[]), Err(DecodeError::BadJumpTarget { slot: 0, off: 1 }));
}

#[test]
fn builder_resolves_forward_jumps_in_slots() {
    let mut b = ProgramBuilder::new();
    let out = b.new_label();
    b.emit(Insn::jump64(JmpOp::Eq, R1, 0, out));
    b.emit(Insn::LoadImm64 { dst: R2, imm: 1 << 40 });
    b.emit(Insn::Ja { target: out });
    b.bind(out);
    b.emit(Insn::Exit);
    let program = b.finish().expect("resolves");
    // The lddw takes two slots: the first jump skips them; the `goto` to the very next
    // instruction is dropped (the kernel would remove it, slowly).
    assert_eq!(program.insns[0].target(), Some(&2));
    assert_eq!(program.insns[2], Insn::Exit);
    assert_eq!(program.slots(), 4);
}

#[test]
fn builder_drops_gotos_to_the_next_instruction_and_moves_their_marks() {
    let mut b = ProgramBuilder::new();
    let (first, second, out) = (b.new_label(), b.new_label(), b.new_label());
    b.emit(Insn::jump64(JmpOp::Eq, R1, 0, out));
    b.comment("a chain of gotos that each land on the next");
    b.begin_rule(3, "rule 3");
    b.emit(Insn::Ja { target: first });
    b.bind(first);
    b.emit(Insn::Ja { target: second });
    b.bind(second);
    b.end_rule();
    b.emit(Insn::mov64(R0, 1));
    b.emit(Insn::Ja { target: out });
    b.emit(Insn::mov64(R0, 2));
    b.bind(out);
    b.emit(Insn::Exit);
    let program = b.finish().expect("resolves");
    assert_eq!(
        program.insns,
        [Insn::jump64(JmpOp::Eq, R1, 0, 3), Insn::mov64(R0, 1), Insn::Ja { target: 1 }, Insn::mov64(R0, 2), Insn::Exit]
    );
    let texts: Vec<(usize, &str)> = program.comments.iter().map(|c| (c.insn, c.text.as_str())).collect();
    assert_eq!(texts, [(1, "a chain of gotos that each land on the next"), (1, "rule 3")]);
    assert_eq!(program.rules, [RuleMark { insn: 1, rule: Some(3) }, RuleMark { insn: 1, rule: None }]);
}

#[test]
fn builder_reports_label_errors() {
    let check = |build: &dyn Fn(&mut ProgramBuilder), expected: AsmError| {
        let mut b = ProgramBuilder::new();
        build(&mut b);
        assert_eq!(b.finish(), Err(expected));
    };
    check(
        &|b| {
            let top = b.new_label();
            b.bind(top);
            b.emit(Insn::mov64(R0, 0));
            b.emit(Insn::Ja { target: top });
        },
        AsmError::BackwardJump { insn: 1, label: 0, target: 0 },
    );
    check(
        &|b| {
            let here = b.new_label();
            b.bind(here);
            b.emit(Insn::Ja { target: here });
        },
        AsmError::BackwardJump { insn: 0, label: 0, target: 0 },
    );
    check(
        &|b| {
            let never = b.new_label();
            b.emit(Insn::Ja { target: never });
        },
        AsmError::UnboundLabel { insn: 0, label: 0 },
    );
    check(
        &|b| {
            let end = b.new_label();
            b.emit(Insn::Ja { target: end });
            b.bind(end);
        },
        AsmError::JumpPastEnd { insn: 0, label: 0 },
    );
    check(
        &|b| {
            let l = b.new_label();
            b.bind(l);
            b.emit(Insn::Exit);
            b.bind(l);
        },
        AsmError::ReboundLabel { label: 0, first: 0, second: 1 },
    );
    check(&|b| b.bind(Label(7)), AsmError::ForeignLabel { label: 7 });
}

/// A conditional jump past 16 bits of offset is an error (codegen places relays).
#[test]
fn conditional_jump_too_far_is_an_error() {
    let mut b = ProgramBuilder::new();
    let far = b.new_label();
    b.emit(Insn::jump32(JmpOp::Eq, R1, 0, far));
    for _ in 0..=i16::MAX {
        b.emit(Insn::mov64(R0, 0));
    }
    b.bind(far);
    b.emit(Insn::Exit);
    assert_eq!(b.finish(), Err(AsmError::JumpTooFar { insn: 0, distance: 32768 }));
}

/// A `goto` is `goto` (JA, 16-bit offset) up to `GOTO_REACH` (28,000) slots and `gotol`
/// (JMP32 | JA, offset in the immediate) past that, both ways through the encoder and
/// decoder; the listing names the long one `gotol`.
#[test]
fn far_goto_is_gotol() {
    let reach = super::opcode::GOTO_REACH;
    for (filler, code, off, imm) in
        [(reach as usize, 0x05, reach as i16, 0), (reach as usize + 1, 0x06, 0, reach + 1), (100_000, 0x06, 0, 100_000)]
    {
        let mut b = ProgramBuilder::new();
        let far = b.new_label();
        b.emit(Insn::Ja { target: far });
        for _ in 0..filler {
            b.emit(Insn::mov64(R0, 0));
        }
        b.bind(far);
        b.emit(Insn::Exit);
        let program = b.finish().expect("a goto reaches any distance");
        assert_eq!(program.insns[0], Insn::Ja { target: filler as i32 });
        let bytes = program.encode();
        assert_eq!(bytes[0], code);
        assert_eq!(i16::from_le_bytes([bytes[2], bytes[3]]), off);
        assert_eq!(i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]), imm);
        let decoded = decode(&bytes, &[]).expect("decodes");
        assert_eq!(decoded, program.insns);
        assert_eq!(encode(&decoded), bytes);
        let first = program.disassemble().lines().next().expect("a line").to_string();
        let name = if code == 0x06 { "gotol" } else { "goto" };
        assert_eq!(first, format!("   0: {name} L0"));
        assert_eq!(
            super::disassemble_code(&bytes, &[]).expect("lists"),
            program.disassemble(),
            "bytes list as compiled"
        );
    }
}

/// An object compiled before pfc wrote `gotol` holds 16-bit `goto`s of up to 32,767 slots:
/// its listing says `goto` (what the bytes are and the kernel runs), not `gotol`.
#[test]
fn a_far_16_bit_goto_of_an_older_object_lists_as_goto() {
    for (code, off, imm, name) in [(0x05u8, 30_000i16, 0i32, "goto"), (0x06, 0, 30_000, "gotol")] {
        let mut bytes = vec![code, 0];
        bytes.extend_from_slice(&off.to_le_bytes());
        bytes.extend_from_slice(&imm.to_le_bytes());
        bytes.extend(encode(&vec![Insn::mov64(R0, 0); 30_000]));
        bytes.extend(encode(&[Insn::Exit]));
        let listing = super::disassemble_code(&bytes, &[]).expect("decodes");
        let mut lines = listing.lines();
        assert_eq!(lines.next(), Some(format!("   0: {name} L0").as_str()), "opcode {code:#x}");
        assert_eq!(lines.last(), Some("30001: exit"));
        assert!(listing.contains("L0:\n30001: exit"), "the target is labelled");
    }
}

#[test]
fn constants_that_do_not_sign_extend_use_a_register() {
    assert_eq!(Operand::imm64(0x7fff_ffff), Some(Operand::Imm(i32::MAX)));
    assert_eq!(Operand::imm64(u64::MAX), Some(Operand::Imm(-1)));
    assert_eq!(Operand::imm64(0x8000_0000), None);
    assert_eq!(Operand::imm_u32(0xffff_ffff), Operand::Imm(-1));
    let mut b = ProgramBuilder::new();
    let out = b.new_label();
    b.jump_const(JmpOp::Eq, R1, 0xffff_ffff, R5, out);
    b.jump_const(JmpOp::Eq, R1, 80, R5, out);
    b.bind(out);
    b.emit(Insn::Exit);
    let program = b.finish().expect("resolves");
    assert_eq!(
        program.insns[..2],
        [Insn::LoadImm64 { dst: R5, imm: 0xffff_ffff }, Insn::jump64(JmpOp::Eq, R1, R5, 1),]
    );
    assert_eq!(program.insns[2], Insn::jump64(JmpOp::Eq, R1, 80, 0));
}

#[test]
fn listing_has_labels_and_comments() {
    let mut b = ProgramBuilder::new();
    let out = b.new_label();
    b.comment("bounds check");
    b.emit(Insn::load(Size::W, R2, R1, 0));
    b.emit(Insn::load(Size::W, R3, R1, 4));
    b.emit(Insn::mov64(R4, R2));
    b.alu64(Add, R4, 14);
    b.emit(Insn::jump64(JmpOp::Gt, R4, R3, out));
    b.comment("rule m");
    b.emit(Insn::LoadMapIndex { dst: R1, map: 0 });
    b.emit(Insn::Call { helper: 1 });
    b.emit(Insn::jump32(JmpOp::Sle, R0, -2, out));
    b.emit(Insn::StoreImm { size: Size::DW, dst: R10, off: -8, imm: 0 });
    b.emit(Insn::Endian { order: ByteOrder::Big, width: EndianWidth::W16, dst: R2 });
    b.bind(out);
    b.emit(Insn::alu32(Mov, R0, 2));
    b.emit(Insn::Exit);
    let listing = b.finish().expect("resolves").disassemble();
    let expected = "    ; bounds check
   0: r2 = *(u32 *)(r1 + 0)
   1: r3 = *(u32 *)(r1 + 4)
   2: r4 = r2
   3: r4 += 14
   4: if r4 > r3 goto L0
    ; rule m
   5: r1 = map[0]
   7: call 1
   8: if w0 s<= -2 goto L0
   9: *(u64 *)(r10 - 8) = 0
  10: r2 = be16 r2
L0:
  11: w0 = 2
  12: exit
";
    assert_eq!(listing, expected);
}

#[test]
fn display_of_unresolved_instruction_names_the_label() {
    let mut b = ProgramBuilder::new();
    let l = b.new_label();
    let insn = Insn::jump64(JmpOp::Set, R1, 0x80, l);
    assert_eq!(insn.to_string(), "if r1 & 128 goto L0");
}

#[test]
fn instructions_belong_to_the_rule_they_were_emitted_for() {
    let mut b = ProgramBuilder::new();
    b.emit(Insn::alu32(Mov, R0, 0));
    b.begin_rule(3, "rule 3");
    b.emit(Insn::alu32(Mov, R0, 1));
    b.emit(Insn::alu32(Mov, R0, 2));
    b.end_rule();
    b.emit(Insn::alu32(Mov, R0, 3));
    b.begin_rule(0, "rule 0");
    b.emit(Insn::Exit);
    let program = b.finish().expect("resolves");
    let owners: Vec<Option<usize>> = (0..5).map(|insn| program.rule_of(insn)).collect();
    assert_eq!(owners, [None, Some(3), Some(3), None, Some(0)]);
    assert_eq!(program.comments.len(), 2, "begin_rule says which rule in the listing");
}
