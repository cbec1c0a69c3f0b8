//! The written ELF read back with `object`: sections, flags, symbols, relocations.

use object::read::elf::{ElfFile64, FileHeader, SectionHeader, Sym};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget};

use super::*;
use crate::bpf::{encode, map_relocations, Insn, Reg};

fn spec_with_map() -> ObjectSpec {
    let insns = [Insn::LoadMapIndex { dst: Reg::R1, map: 1 }, Insn::mov64(Reg::R0, 2), Insn::Exit];
    ObjectSpec {
        program_type: ProgramType::Xdp,
        function: "pfc_main".to_string(),
        code: encode(&insns),
        relocations: map_relocations(&insns),
        maps: vec![MapSpec::counters("counters", 4), MapSpec::counters("other", 2)],
        manifest: br#"{"rules":["m"]}"#.to_vec(),
        set_contents: Vec::new(),
    }
}

#[test]
fn layout_matches_what_libbpf_expects() {
    let bytes = write_object(&spec_with_map()).expect("writes");
    let file = ElfFile64::<object::Endianness>::parse(&*bytes).expect("parses");
    let header = file.elf_header();
    let endian = file.endian();
    assert_eq!(header.e_machine(endian), elf::EM_BPF);
    assert_eq!(header.e_type(endian), elf::ET_REL);
    assert!(file.is_little_endian());

    let section = |name: &str| file.section_by_name(name).expect(name);
    let flags = |name: &str| section(name).elf_section_header().sh_flags(endian);
    let sh_type = |name: &str| section(name).elf_section_header().sh_type(endian);
    assert_eq!(flags("xdp"), u64::from(elf::SHF_ALLOC | elf::SHF_EXECINSTR));
    assert_eq!(section("license").data().expect("data"), b"GPL\0");
    assert_eq!(section(".maps").data().expect("data"), [0; 64]);
    assert_eq!((sh_type(".BTF"), flags(".BTF")), (elf::SHT_PROGBITS, 0));
    assert_eq!(sh_type(".relxdp"), elf::SHT_REL);
    assert_eq!(sh_type(MANIFEST_SECTION), elf::SHT_STRTAB, "libbpf skips string tables silently");
    assert_eq!(flags(MANIFEST_SECTION), 0);
    assert_eq!(section(MANIFEST_SECTION).data().expect("data"), br#"{"rules":["m"]}"#);

    let symbols = file.elf_symbol_table();
    let global = |name: &str| {
        let (_, sym) = symbols
            .iter()
            .enumerate()
            .find(|(_, s)| symbols.symbol_name(endian, s).ok() == Some(name.as_bytes()))
            .expect(name);
        assert_eq!(sym.st_bind(), elf::STB_GLOBAL, "{name}");
        assert_eq!(sym.st_visibility(), elf::STV_DEFAULT, "{name}");
        (sym.st_type(), sym.st_value(endian), sym.st_size(endian))
    };
    assert_eq!(global("pfc_main"), (elf::STT_FUNC, 0, 32));
    assert_eq!(global("_license"), (elf::STT_OBJECT, 0, 4));
    assert_eq!(global("counters"), (elf::STT_OBJECT, 0, 32));
    assert_eq!(global("other"), (elf::STT_OBJECT, 32, 32));

    let relocs: Vec<_> = section("xdp").relocations().collect();
    assert_eq!(relocs.len(), 1);
    let (offset, reloc) = &relocs[0];
    assert_eq!(*offset, 0);
    assert_eq!(reloc.flags(), RelocationFlags::Elf { r_type: elf::R_BPF_64_64 });
    let RelocationTarget::Symbol(target) = reloc.target() else {
        panic!("relocation targets a symbol");
    };
    assert_eq!(file.symbol_by_index(target).and_then(|s| s.name().map(String::from)).ok(), Some("other".to_string()));
    // The lddw keeps src = 0 and imm = map index, so rbpf sees the index.
    assert_eq!(&section("xdp").data().expect("data")[..8], [0x18, 0x01, 0, 0, 1, 0, 0, 0]);
}

#[test]
fn program_without_maps_has_no_btf() {
    let spec = ObjectSpec {
        program_type: ProgramType::SchedCls,
        function: "p".to_string(),
        code: encode(&[Insn::mov64(Reg::R0, 0), Insn::Exit]),
        relocations: vec![],
        maps: vec![],
        manifest: vec![],
        set_contents: Vec::new(),
    };
    let bytes = write_object(&spec).expect("writes");
    let file = object::File::parse(&*bytes).expect("parses");
    let names: Vec<&str> = file.sections().filter_map(|s| s.name().ok()).collect();
    assert!(names.contains(&"tc") && names.contains(&"license"));
    for absent in [".maps", ".BTF", ".reltc", MANIFEST_SECTION] {
        assert!(!names.contains(&absent), "{absent} in {names:?}");
    }
}

#[test]
fn bad_specs_are_errors() {
    let check = |edit: &dyn Fn(&mut ObjectSpec), expected: &str| {
        let mut spec = spec_with_map();
        edit(&mut spec);
        let error = write_object(&spec).expect_err("rejected");
        assert_eq!(error.to_string(), expected);
    };
    check(&|s| s.code.clear(), "program code is 0 bytes; expected a non-zero multiple of 8");
    check(&|s| s.code.push(0), "program code is 33 bytes; expected a non-zero multiple of 8");
    check(&|s| s.relocations[0].slot = 2, "map relocation at slot 2 does not point at a lddw");
    check(
        &|s| s.relocations[0].slot = usize::MAX,
        &format!("map relocation at slot {} does not point at a lddw", usize::MAX),
    );
    check(&|s| s.relocations[0].map = 2, "map relocation at slot 0 names map 2, but there are 2 maps");
    check(&|s| s.maps[1].name = "counters".into(), "two maps are named `counters`");
    check(&|s| s.function = "has space".into(), "program name `has space` is not a C identifier");
    check(&|s| s.maps[0].name = "a.b".into(), "describing maps in BTF");
}
