//! BpfObject::parse on the clang fixtures and on broken bytes.
mod common;

use common::{TCP_DPORT_22, TC_COUNT, XDP_COUNT, XDP_PASS};
use pfc_runtime::{BpfObject, ElfReadError, MapType, ObjectError, ProgramType};

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut replaced = 0;
    for at in 0..out.len().saturating_sub(from.len() - 1) {
        if &out[at..at + from.len()] == from {
            out[at..at + to.len()].copy_from_slice(to);
            replaced += 1;
        }
    }
    assert!(replaced > 0, "nothing to replace");
    out
}

fn check_maps(elf: &[u8], expected: &[(&str, MapType, u32, u32, u32)]) {
    let object = BpfObject::parse(elf).expect("fixture parses");
    let maps: Vec<_> =
        object.maps.iter().map(|m| (m.name.as_str(), m.map_type, m.key_size, m.value_size, m.max_entries)).collect();
    assert_eq!(maps, expected);
}

#[test]
fn fixtures_have_their_hooks_names_and_licenses() {
    for (elf, hook, name) in [
        (TCP_DPORT_22, ProgramType::Xdp, "ref_tcp_dport_22"),
        (XDP_COUNT, ProgramType::Xdp, "xdp_count"),
        (TC_COUNT, ProgramType::SchedCls, "tc_count"),
        (XDP_PASS, ProgramType::Xdp, "ref_empty"),
    ] {
        let object = BpfObject::parse(elf).expect("fixture parses");
        assert_eq!((object.program_type, object.program_name.as_str()), (hook, name));
        assert_eq!(object.license.as_deref(), Some("GPL"));
        assert!(object.insn_count() > 1);
    }
}

#[test]
fn btf_map_definitions_are_read() {
    check_maps(TCP_DPORT_22, &[]);
    check_maps(XDP_COUNT, &[("counters", MapType::PERCPU_ARRAY, 4, 16, 3)]);
    // clang placed `last` before `verdicts` in `.maps`: index order is symbol offset.
    check_maps(TC_COUNT, &[("last", MapType::ARRAY, 4, 8, 1), ("verdicts", MapType::ARRAY, 4, 8, 2)]);
}

#[test]
fn relocations_become_map_indices_in_lddw_imm() {
    let object = BpfObject::parse(TC_COUNT).expect("fixture parses");
    let found: Vec<(usize, u32)> = object.relocations.iter().map(|r| (r.slot, r.map)).collect();
    assert_eq!(found, vec![(5, 0), (48, 1)]);
    for r in &object.relocations {
        let insn = &object.code[r.slot * 8..r.slot * 8 + 8];
        assert_eq!(insn[0], pfc_compiler::bpf::opcode::LDDW, "an lddw");
        assert_eq!(i32::from_le_bytes(insn[4..8].try_into().unwrap()), r.map as i32);
    }
}

#[test]
fn non_elf_and_programless_objects_are_errors() {
    assert!(matches!(BpfObject::parse(b"not an elf"), Err(ObjectError::Elf(ElfReadError::Unreadable { .. }))));
    // Rename the `xdp` section (and `.relxdp`, which may share its string) to `xdq`.
    let renamed = replace_all(XDP_PASS, b"xdp\0", b"xdq\0");
    let error = BpfObject::parse(&renamed).expect_err("no program section");
    assert!(matches!(error, ObjectError::NoProgram));
    assert_eq!(error.to_string(), "object has no `xdp` or `tc` section");
}

#[test]
fn relocation_to_a_non_map_symbol_is_named() {
    // Rename `.maps` so the map symbol no longer lives in a `.maps` section.
    let renamed = replace_all(XDP_COUNT, b".maps\0", b".naps\0");
    let error = BpfObject::parse(&renamed).expect_err("map symbol outside .maps");
    assert_eq!(error.to_string(), "relocation at instruction 19 refers to unknown symbol counters");
}

/// Every truncation of every fixture, every bit flip in its ELF header and one bit flip
/// per byte elsewhere parses or errors; none panics. Where a broken object still parses, building a VM for it must not panic either.
#[test]
fn broken_objects_never_panic() {
    let mut parsed = 0usize;
    for (_, elf) in common::FIXTURES {
        for len in 0..elf.len() {
            parsed += usize::from(BpfObject::parse(&elf[..len]).is_ok());
        }
        let mut flipped = elf.to_vec();
        for byte in 0..elf.len() {
            let bits = if byte < 64 { 0..8 } else { byte % 8..byte % 8 + 1 };
            for bit in bits {
                flipped[byte] ^= 1 << bit;
                if let Ok(object) = BpfObject::parse(&flipped) {
                    parsed += 1;
                    let _ = pfc_runtime::vm::Vm::new(&object);
                }
                flipped[byte] ^= 1 << bit;
            }
        }
    }
    // Most bit flips land in DWARF and leave the object valid.
    assert!(parsed > 1000, "only {parsed} variants parsed");
}
