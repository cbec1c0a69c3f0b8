//! BPF ELF object bytes in, a [`BpfObject`] out: the one program (hook, code, map
//! relocations) and its BTF-defined maps, as both back ends need them.
//!
//! The object is what `pfc compile` writes (or what clang writes for the test fixtures):
//! one program in section `xdp` or `tc`, maps in `.maps` described by `.BTF`, and
//! `R_BPF_64_64` relocations on the `lddw` instructions that load map references. Map
//! indices are the order of the map symbols in `.maps` by symbol offset. Anything else in
//! the object (`.BTF.ext`, DWARF, `.pfc.manifest`, ...) is ignored.
//!
//! Pure like the rest of [`super`]: the runtime loads what this returns (kernel or VM).
//!
//! **Invariant:** parsing never panics; every malformed input is an [`ObjectError`].

use std::collections::HashMap;

use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};
use thiserror::Error;

use super::btf_read::{self, BtfReadError};
use super::hook::ProgramType;
use super::maps::MapType;
use super::read::{parse_bpf_elf, ElfReadError};
use crate::bpf::opcode::LDDW;
use crate::bpf::MapReloc;

/// One map, as defined by BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// The map symbol's name.
    pub name: String,
    /// Offset of the map symbol in `.maps` (its index is its rank by this offset).
    pub section_offset: u64,
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
}

/// The program and maps of a BPF ELF object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfObject {
    /// The program type, from the program's section name.
    pub program_type: ProgramType,
    /// The program's symbol name (the section name when there is no function symbol).
    pub program_name: String,
    /// The program's instructions with every map `lddw` holding its map index in `imm`.
    /// That is what `pfc compile` writes, so for pfc objects these are the file's bytes;
    /// clang leaves `imm` 0 and relies on the relocation alone.
    pub code: Vec<u8>,
    /// Map references in the code, in instruction order (the writer's type: `slot` is
    /// the `lddw`'s instruction index, `map` an index into [`BpfObject::maps`]).
    pub relocations: Vec<MapReloc>,
    /// Maps in index order (by symbol offset in `.maps`).
    pub maps: Vec<MapDef>,
    /// The `license` section up to its first NUL, if present.
    pub license: Option<String>,
}

/// Why an object cannot be used.
#[derive(Debug, Error)]
pub enum ObjectError {
    /// Not an eBPF ELF file.
    #[error(transparent)]
    Elf(#[from] ElfReadError),
    /// No program section.
    #[error("object has no {} section", program_sections(" or "))]
    NoProgram,
    /// More than one program section.
    #[error("object has both {} sections; pfc objects hold one program", program_sections(" and "))]
    TwoPrograms,
    /// The program section is empty or not a whole number of instructions.
    #[error("section `{section}` is {len} bytes: not a non-empty multiple of 8")]
    BadCodeLength {
        /// The section name.
        section: &'static str,
        /// Its length.
        len: usize,
    },
    /// A section's contents cannot be read.
    #[error("cannot read section `{section}`")]
    SectionData {
        /// The section name.
        section: String,
        /// The ELF reader's complaint.
        #[source]
        source: object::read::Error,
    },
    /// A relocation names a symbol that is not a map.
    #[error("relocation at instruction {insn_index} refers to unknown symbol {symbol}")]
    UnknownSymbol {
        /// The instruction index.
        insn_index: usize,
        /// The symbol's name (or index, when it has none).
        symbol: String,
    },
    /// A relocation of a kind the reader does not apply.
    #[error("relocation at byte {offset} of the program is unsupported: {problem}")]
    UnsupportedRelocation {
        /// Byte offset within the program section.
        offset: u64,
        /// What is unsupported.
        problem: &'static str,
    },
    /// Maps exist but there is no `.BTF` to describe them.
    #[error("object has maps in `.maps` but no `.BTF` section describing them")]
    NoBtf,
    /// The `.BTF` section is malformed.
    #[error("reading map definitions from `.BTF`")]
    Btf {
        /// What is wrong.
        #[source]
        source: BtfReadError,
    },
    /// A map symbol without a BTF definition.
    #[error("map `{map}` has no definition in the `.BTF` DATASEC \".maps\"")]
    UndefinedMap {
        /// The map symbol's name.
        map: String,
    },
}

impl BpfObject {
    /// Parses an ELF object. Never panics; see [`ObjectError`] for what is rejected.
    pub fn parse(elf_bytes: &[u8]) -> Result<BpfObject, ObjectError> {
        let file = parse_bpf_elf(elf_bytes)?;
        let (program_type, section) = program_section(&file)?;
        let section_name = program_type.section();
        let mut code = section
            .data()
            .map_err(|source| ObjectError::SectionData { section: section_name.to_string(), source })?
            .to_vec();
        if code.is_empty() || code.len() % 8 != 0 {
            return Err(ObjectError::BadCodeLength { section: section_name, len: code.len() });
        }
        let maps = read_maps(&file)?;
        let relocations = read_relocations(&file, &section, &maps, &mut code)?;
        let program_name = file
            .symbols()
            .find(|s| s.section_index() == Some(section.index()) && s.kind() == object::SymbolKind::Text)
            .and_then(|s| s.name().ok().map(str::to_string))
            .unwrap_or_else(|| section_name.to_string());
        let license = file.section_by_name("license").and_then(|s| s.data().ok()).map(|d| {
            let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            String::from_utf8_lossy(&d[..end]).into_owned()
        });
        Ok(BpfObject { program_type, program_name, code, relocations, maps, license })
    }

    /// Number of 8-byte instruction slots in the program.
    pub fn insn_count(&self) -> usize {
        self.code.len() / 8
    }

    /// The index of the map called `name`.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }
}

/// The section names of every program type, quoted and joined (`` `xdp` or `tc` ``).
fn program_sections(join: &str) -> String {
    ProgramType::ALL.map(|ty| format!("`{}`", ty.section())).join(join)
}

/// The one section named after a program type, and that type.
fn program_section<'d, 'f>(file: &'f object::File<'d>) -> Result<(ProgramType, object::Section<'d, 'f>), ObjectError> {
    let mut found =
        ProgramType::ALL.into_iter().filter_map(|ty| file.section_by_name(ty.section()).map(|section| (ty, section)));
    let first = found.next().ok_or(ObjectError::NoProgram)?;
    match found.next() {
        Some(_) => Err(ObjectError::TwoPrograms),
        None => Ok(first),
    }
}

/// The map symbols of `.maps` in offset order, each joined with its BTF definition.
fn read_maps(file: &object::File<'_>) -> Result<Vec<MapDef>, ObjectError> {
    let Some(maps_section) = file.section_by_name(".maps") else {
        return Ok(Vec::new());
    };
    let mut symbols: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| s.section_index() == Some(maps_section.index()))
        .filter(|s| s.kind() != object::SymbolKind::Section)
        .filter_map(|s| Some((s.address(), s.name().ok()?.to_string())))
        .filter(|(_, name)| !name.is_empty())
        .collect();
    symbols.sort();
    if symbols.is_empty() {
        return Ok(Vec::new());
    }
    let btf_section = file.section_by_name(".BTF").ok_or(ObjectError::NoBtf)?;
    let btf_bytes =
        btf_section.data().map_err(|source| ObjectError::SectionData { section: ".BTF".to_string(), source })?;
    let defs = btf_read::parse_maps(btf_bytes).map_err(|source| ObjectError::Btf { source })?;
    symbols
        .into_iter()
        .map(|(offset, name)| {
            let def = defs.get(&name).ok_or_else(|| ObjectError::UndefinedMap { map: name.clone() })?;
            Ok(MapDef {
                section_offset: offset,
                map_type: MapType(def.map_type),
                key_size: def.key_size,
                value_size: def.value_size,
                max_entries: def.max_entries,
                name,
            })
        })
        .collect()
}

/// Resolves the program's relocations to map indices and writes each index into its
/// `lddw`'s `imm` (the pfc convention; see [`BpfObject::code`]).
fn read_relocations(
    file: &object::File<'_>,
    section: &object::Section<'_, '_>,
    maps: &[MapDef],
    code: &mut [u8],
) -> Result<Vec<MapReloc>, ObjectError> {
    let by_offset: HashMap<u64, usize> = maps.iter().enumerate().map(|(i, m)| (m.section_offset, i)).collect();
    let maps_section = file.section_by_name(".maps").map(|s| s.index());
    let mut relocations = Vec::new();
    for (offset, relocation) in section.relocations() {
        let unsupported = |problem| ObjectError::UnsupportedRelocation { offset, problem };
        match relocation.flags() {
            RelocationFlags::Elf { r_type: object::elf::R_BPF_64_64 } => {}
            _ => return Err(unsupported("only R_BPF_64_64 (map references) is applied")),
        }
        let insn_index = usize::try_from(offset / 8).map_err(|_| unsupported("offset too large"))?;
        let start = insn_index * 8;
        if offset % 8 != 0 || code.get(start) != Some(&LDDW) || code.len().saturating_sub(16) < start {
            return Err(unsupported("it is not at an `lddw` instruction"));
        }
        let RelocationTarget::Symbol(symbol_index) = relocation.target() else {
            return Err(unsupported("its target is not a symbol"));
        };
        let symbol = file
            .symbol_by_index(symbol_index)
            .map_err(|_| ObjectError::UnknownSymbol { insn_index, symbol: format!("#{}", symbol_index.0) })?;
        let unknown = || ObjectError::UnknownSymbol {
            insn_index,
            symbol: symbol
                .name()
                .ok()
                .filter(|n| !n.is_empty())
                .map_or_else(|| format!("#{}", symbol_index.0), str::to_string),
        };
        if maps_section.is_none() || symbol.section_index() != maps_section {
            return Err(unknown());
        }
        let imm = i32::from_le_bytes([code[start + 4], code[start + 5], code[start + 6], code[start + 7]]);
        // Against the `.maps` section symbol the implicit addend (in imm) is the map's
        // offset; against a map symbol, imm is 0 (clang) or already the index (pfc).
        let map_offset = if symbol.kind() == object::SymbolKind::Section {
            symbol.address().wrapping_add(imm as u32 as u64)
        } else {
            symbol.address()
        };
        let map_index = *by_offset.get(&map_offset).ok_or_else(unknown)?;
        let map = u32::try_from(map_index).map_err(|_| unsupported("map index too large"))?;
        code[start + 4..start + 8].copy_from_slice(&map.to_le_bytes());
        relocations.push(MapReloc { slot: insn_index, map });
    }
    relocations.sort_by_key(|r| r.slot);
    Ok(relocations)
}
