//! An [`ObjectSpec`] (encoded program, maps, manifest) in, an EM_BPF ELF relocatable out.
//!
//! The layout is what clang emits and what libbpf 1.x, bpftool and `ip link … obj`
//! accept (docs/platform.md):
//!
//! | section          | contents                                   | symbols                          |
//! |------------------|--------------------------------------------|----------------------------------|
//! | `xdp` / `tc`     | the code (`SHF_ALLOC\|SHF_EXECINSTR`)      | the program: GLOBAL FUNC, size = code |
//! | `.relxdp`/`.reltc`| one `R_BPF_64_64` per map `lddw`           |                                  |
//! | `license`        | `"GPL\0"`                                  | `_license`: GLOBAL OBJECT        |
//! | `.maps`          | 8 zero bytes per definition member         | one GLOBAL OBJECT per map        |
//! | `.BTF`           | map definitions, `VAR`s, `DATASEC .maps`   |                                  |
//! | `.pfc.manifest`  | the compiler's manifest (opaque bytes)     |                                  |
//! | `.pfc.sets`      | the map keys of static sets held in maps   |                                  |
//!
//! `.pfc.manifest` is an `SHT_STRTAB` section without flags: libbpf skips every string
//! table it was not pointed to without a word, while a `SHT_PROGBITS` section made it
//! print "libbpf: elf: skipping unrecognized data section .pfc.manifest" on every
//! `bpftool prog load` and `ip link set … xdp obj` (checked by `tests/load_attach.rs`,
//! `bpftool_loads_a_pfc_object_without_a_word_about_the_manifest`). Its bytes are the
//! manifest itself, not NUL-separated strings: nothing reads it as a string table.
//! `.pfc.sets` is written the same way, for the same reason: the keys (24 bytes each) of
//! every static set the compiler put in a map, which `pfc load` writes into the maps;
//! the manifest says which keys are whose (`SetContents`). It is absent without such sets.
//! There is no `.BTF` section when there are no maps.

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{elf, Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind};
use object::{SymbolFlags, SymbolKind, SymbolScope};

use super::btf::{self, BtfError};
use super::hook::ProgramType;
use super::maps::MapSpec;
use crate::bpf::MapReloc;

/// Name of the section holding the compiler's manifest.
pub const MANIFEST_SECTION: &str = ".pfc.manifest";
/// Name of the section holding what the loader writes into maps: the keys of static sets
/// held in maps, then the values of the classifier tables (`manifest::TableContents`).
pub const SET_CONTENTS_SECTION: &str = ".pfc.sets";
/// Contents of the `license` section.
pub const LICENSE: &[u8] = b"GPL\0";

/// Everything an object file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSpec {
    /// Program type (and so section).
    pub program_type: ProgramType,
    /// Program (function symbol) name: a C identifier; the kernel keeps 15 bytes.
    pub function: String,
    /// Encoded instructions ([`crate::bpf::encode`]).
    pub code: Vec<u8>,
    /// Map references ([`crate::bpf::map_relocations`]); `map` indexes `maps`.
    pub relocations: Vec<MapReloc>,
    /// Maps, in index order.
    pub maps: Vec<MapSpec>,
    /// Manifest bytes for [`MANIFEST_SECTION`]; empty leaves the section out.
    pub manifest: Vec<u8>,
    /// Bytes for [`SET_CONTENTS_SECTION`]; empty leaves the section out.
    pub set_contents: Vec<u8>,
}

/// Why an object could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The code is empty or not a whole number of 8-byte slots.
    #[error("program code is {len} bytes; expected a non-zero multiple of 8")]
    CodeLength {
        /// The byte count.
        len: usize,
    },
    /// A relocation is not at a `lddw` inside the code.
    #[error("map relocation at slot {slot} does not point at a lddw")]
    RelocationNotLddw {
        /// The slot index.
        slot: usize,
    },
    /// A relocation names a map index that does not exist.
    #[error("map relocation at slot {slot} names map {map}, but there are {maps} maps")]
    UnknownMap {
        /// The slot index.
        slot: usize,
        /// The map index.
        map: u32,
        /// Number of maps.
        maps: usize,
    },
    /// Two maps share a name.
    #[error("two maps are named `{name}`")]
    DuplicateMapName {
        /// The name.
        name: String,
    },
    /// The function name is not a C identifier.
    #[error("program name `{name}` is not a C identifier")]
    InvalidFunctionName {
        /// The name.
        name: String,
    },
    /// The maps cannot be described in BTF.
    #[error("describing maps in BTF")]
    Btf {
        /// The underlying problem.
        #[from]
        source: BtfError,
    },
    /// The `object` crate refused to write the file.
    #[error("writing the ELF file")]
    Write {
        /// The underlying problem.
        #[from]
        source: object::write::Error,
    },
}

/// Checks `spec` and writes it as an ELF relocatable object.
pub fn write_object(spec: &ObjectSpec) -> Result<Vec<u8>, ElfError> {
    validate(spec)?;
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    let text = obj.add_section(Vec::new(), spec.program_type.section().into(), SectionKind::Text);
    obj.section_mut(text).set_data(spec.code.clone(), 8);
    add_global(&mut obj, &spec.function, SymbolKind::Text, text, 0, spec.code.len());

    let license = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    obj.section_mut(license).set_data(LICENSE, 1);
    add_global(&mut obj, "_license", SymbolKind::Data, license, 0, LICENSE.len());

    if !spec.maps.is_empty() {
        let (btf, placement) = btf::maps_btf(&spec.maps)?;
        let total: u32 = placement.iter().map(|p| p.size).sum();
        let maps = obj.add_section(Vec::new(), b".maps".to_vec(), SectionKind::Data);
        obj.section_mut(maps).set_data(vec![0; total as usize], 8);
        let mut symbols = Vec::with_capacity(spec.maps.len());
        for (map, place) in spec.maps.iter().zip(&placement) {
            let (offset, size) = (place.offset.into(), place.size as usize);
            symbols.push(add_global(&mut obj, &map.name, SymbolKind::Data, maps, offset, size));
        }
        for reloc in &spec.relocations {
            let relocation = Relocation {
                offset: reloc.slot as u64 * 8,
                symbol: symbols[reloc.map as usize],
                addend: 0,
                flags: RelocationFlags::Elf { r_type: elf::R_BPF_64_64 },
            };
            obj.add_relocation(text, relocation)?;
        }
        let btf_section = obj.add_section(Vec::new(), b".BTF".to_vec(), SectionKind::Other);
        obj.section_mut(btf_section).set_data(btf, 4);
    }

    if !spec.manifest.is_empty() {
        let name = MANIFEST_SECTION.as_bytes().to_vec();
        let manifest = obj.add_section(Vec::new(), name, SectionKind::Elf(object::elf::SHT_STRTAB));
        obj.section_mut(manifest).set_data(spec.manifest.clone(), 1);
    }
    if !spec.set_contents.is_empty() {
        let name = SET_CONTENTS_SECTION.as_bytes().to_vec();
        let contents = obj.add_section(Vec::new(), name, SectionKind::Elf(object::elf::SHT_STRTAB));
        obj.section_mut(contents).set_data(spec.set_contents.clone(), 1);
    }
    Ok(obj.write()?)
}

/// Adds a GLOBAL, default-visibility symbol (libbpf ignores hidden map symbols).
fn add_global(
    obj: &mut Object<'_>,
    name: &str,
    kind: SymbolKind,
    section: SectionId,
    value: u64,
    size: usize,
) -> SymbolId {
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size: size as u64,
        kind,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    })
}

/// Checks what the kernel or libbpf would otherwise reject less clearly.
fn validate(spec: &ObjectSpec) -> Result<(), ElfError> {
    let len = spec.code.len();
    if len == 0 || len % 8 != 0 {
        return Err(ElfError::CodeLength { len });
    }
    if btf::check_identifier(&spec.function, "function").is_err() {
        return Err(ElfError::InvalidFunctionName { name: spec.function.clone() });
    }
    for (index, map) in spec.maps.iter().enumerate() {
        if spec.maps[..index].iter().any(|m| m.name == map.name) {
            return Err(ElfError::DuplicateMapName { name: map.name.clone() });
        }
    }
    for &MapReloc { slot, map } in &spec.relocations {
        let end = slot.checked_add(2).and_then(|s| s.checked_mul(8));
        let is_lddw = end.is_some_and(|end| end <= len) && spec.code[slot * 8] == crate::bpf::opcode::LDDW;
        if !is_lddw {
            return Err(ElfError::RelocationNotLddw { slot });
        }
        if map as usize >= spec.maps.len() {
            return Err(ElfError::UnknownMap { slot, map, maps: spec.maps.len() });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
