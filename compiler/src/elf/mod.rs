//! An [`ObjectSpec`] (encoded program, maps, manifest) in, an EM_BPF ELF relocatable out.
//!
//! The layout is what clang emits and what libbpf 1.x, bpftool and `ip link … obj`
//! accept (DESIGN §4):
//!
//! | section          | contents                                   | symbols                          |
//! |------------------|--------------------------------------------|----------------------------------|
//! | `xdp` / `tc`     | the code (`SHF_ALLOC\|SHF_EXECINSTR`)      | the program: GLOBAL FUNC, size = code |
//! | `.relxdp`/`.reltc`| one `R_BPF_64_64` per map `lddw`           |                                  |
//! | `license`        | `"GPL\0"`                                  | `_license`: GLOBAL OBJECT        |
//! | `.maps`          | 8 zero bytes per definition member         | one GLOBAL OBJECT per map        |
//! | `.BTF`           | map definitions, `VAR`s, `DATASEC .maps`   |                                  |
//! | `.pfc.manifest`  | the compiler's manifest (opaque bytes)     |                                  |
//!
//! `.pfc.manifest` is an `SHT_STRTAB` section without flags: libbpf skips every string
//! table it was not pointed to without a word, while a `SHT_PROGBITS` section made it
//! print "libbpf: elf: skipping unrecognized data section .pfc.manifest" on every
//! `bpftool prog load` and `ip link set … xdp obj` (checked by `tests/load_attach.rs`,
//! `bpftool_loads_a_pfc_object_without_a_word_about_the_manifest`). Its bytes are the
//! manifest itself, not NUL-separated strings: nothing reads it as a string table.
//! There is no `.BTF` section when there are no maps.

pub mod btf;

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{elf, Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind};
use object::{SymbolFlags, SymbolKind, SymbolScope};

pub use self::btf::{BtfError, DataType, Field};
use crate::bpf::MapReloc;

/// Name of the section holding the compiler's manifest.
pub const MANIFEST_SECTION: &str = ".pfc.manifest";
/// Contents of the `license` section.
pub const LICENSE: &[u8] = b"GPL\0";

/// The program section, which tells libbpf the program type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramSection {
    /// `xdp`: `BPF_PROG_TYPE_XDP`, context `struct xdp_md`.
    Xdp,
    /// `tc`: `BPF_PROG_TYPE_SCHED_CLS`, context `struct __sk_buff`.
    Tc,
}

impl ProgramSection {
    /// The ELF section name.
    pub fn name(self) -> &'static str {
        match self {
            ProgramSection::Xdp => "xdp",
            ProgramSection::Tc => "tc",
        }
    }
}

/// A `BPF_MAP_TYPE_*` number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapType(pub u32);

impl MapType {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: MapType = MapType(1);
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: MapType = MapType(2);
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    pub const PERCPU_HASH: MapType = MapType(5);
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    pub const PERCPU_ARRAY: MapType = MapType(6);
    /// `BPF_MAP_TYPE_LRU_HASH`.
    pub const LRU_HASH: MapType = MapType(9);
    /// `BPF_MAP_TYPE_LPM_TRIE` (needs `flags` = `BPF_F_NO_PREALLOC`).
    pub const LPM_TRIE: MapType = MapType(11);
    /// `BPF_MAP_TYPE_RINGBUF`: no key or value; `max_entries` is its size in bytes.
    pub const RINGBUF: MapType = MapType(27);
}

/// `BPF_F_NO_PREALLOC`, required by LPM tries.
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// One BTF-defined map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Map (and symbol, and BTF `VAR`) name: a C identifier. The kernel keeps
    /// the first 15 bytes.
    pub name: String,
    /// The map type.
    pub map_type: MapType,
    /// Key type.
    pub key: DataType,
    /// Value type.
    pub value: DataType,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `map_flags`; 0 leaves the member out of the definition.
    pub flags: u32,
}

impl MapSpec {
    /// A rate limit's buckets: an LRU hash from the key bytes (`__u32[key_size / 4]`, see
    /// [`crate::program::limit`]) to `struct pfc_bucket { __u64 tokens; __u64 last_ns; }`.
    pub fn rate_buckets(name: &str, key_size: u32, entries: u32) -> MapSpec {
        let field = |name: &str| Field { name: name.to_string(), ty: DataType::U64 };
        MapSpec {
            name: name.to_string(),
            map_type: MapType::LRU_HASH,
            key: DataType::Array { elem: Box::new(DataType::U32), len: key_size / 4 },
            value: DataType::Struct { name: "pfc_bucket".to_string(), fields: vec![field("tokens"), field("last_ns")] },
            max_entries: entries,
            flags: 0,
        }
    }

    /// A dynamic set's map: `struct pfc_set_key { __u32 prefixlen; __u32 tag; __u8
    /// data[16]; }` (see [`crate::program::dynamic`]) → `__u32[4]`; an LPM trie for prefix
    /// sets, a hash for single values, both without preallocation (entries cost memory
    /// only when present).
    pub fn dynamic_set(name: &str, prefixes: bool, entries: u32) -> MapSpec {
        let field = |name: &str, ty: DataType| Field { name: name.to_string(), ty };
        let data = DataType::Array { elem: Box::new(DataType::U8), len: 16 };
        MapSpec {
            name: name.to_string(),
            map_type: if prefixes { MapType::LPM_TRIE } else { MapType::HASH },
            key: DataType::Struct {
                name: "pfc_set_key".to_string(),
                fields: vec![field("prefixlen", DataType::U32), field("tag", DataType::U32), field("data", data)],
            },
            value: DataType::Array { elem: Box::new(DataType::U32), len: 4 },
            max_entries: entries,
            flags: BPF_F_NO_PREALLOC,
        }
    }

    /// The dynamic sets' generation words: an array, `__u32` set index → `struct
    /// pfc_set_state { __u32 generation; __u32 elements; __u64 changed_ns; }`.
    pub fn set_generations(name: &str, sets: u32) -> MapSpec {
        let field = |name: &str, ty: DataType| Field { name: name.to_string(), ty };
        MapSpec {
            name: name.to_string(),
            map_type: MapType::ARRAY,
            key: DataType::U32,
            value: DataType::Struct {
                name: "pfc_set_state".to_string(),
                fields: vec![
                    field("generation", DataType::U32),
                    field("elements", DataType::U32),
                    field("changed_ns", DataType::U64),
                ],
            },
            max_entries: sets,
            flags: 0,
        }
    }

    /// A ring buffer of `bytes` bytes (a power of two, a multiple of the page size). Its
    /// definition has no key or value members; `key` and `value` here are ignored.
    pub fn ring_buffer(name: &str, bytes: u32) -> MapSpec {
        MapSpec {
            name: name.to_string(),
            map_type: MapType::RINGBUF,
            key: DataType::U32,
            value: DataType::U32,
            max_entries: bytes,
            flags: 0,
        }
    }

    /// The per-CPU log statistics: `__u32` rule index → `struct pfc_log_stats { __u64
    /// sent; __u64 dropped; }`.
    pub fn log_stats(name: &str, rules: u32) -> MapSpec {
        let field = |name: &str| Field { name: name.to_string(), ty: DataType::U64 };
        MapSpec {
            name: name.to_string(),
            map_type: MapType::PERCPU_ARRAY,
            key: DataType::U32,
            value: DataType::Struct {
                name: "pfc_log_stats".to_string(),
                fields: vec![field("sent"), field("dropped")],
            },
            max_entries: rules.max(1),
            flags: 0,
        }
    }

    /// The per-CPU counter array: `__u32` rule index → `struct pfc_counter`.
    pub fn counters(name: &str, rules: u32) -> MapSpec {
        MapSpec {
            name: name.to_string(),
            map_type: MapType::PERCPU_ARRAY,
            key: DataType::U32,
            value: DataType::pfc_counter(),
            max_entries: rules,
            flags: 0,
        }
    }
}

/// Everything an object file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSpec {
    /// Program section (and so program type).
    pub section: ProgramSection,
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

    let text = obj.add_section(Vec::new(), spec.section.name().into(), SectionKind::Text);
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
mod tests;
