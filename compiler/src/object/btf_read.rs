//! `.BTF` section bytes in, map definitions (type, key/value size, max entries) out: the
//! reader beside [`super::btf`]'s writer, sharing its kind table.
//!
//! Reads only what BTF-defined maps need: the type section is walked once to index every
//! type, then the `DATASEC ".maps"` gives one `VAR` per map whose type is the conventional
//! `struct { int (*type)[T]; K *key; V *value; int (*max_entries)[N]; }` (also accepted:
//! `key_size`/`value_size` members written as `int (*key_size)[S]`). Every read is bounds
//! checked; malformed input is an error, never a panic.

use std::collections::HashMap;

use thiserror::Error;

use super::btf::{kind, BTF_MAGIC};
use super::maps::MapType;

/// What can be wrong with a `.BTF` section.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BtfReadError {
    /// The section is shorter than the structure being read.
    #[error("`.BTF` is truncated: {what} at byte {offset} runs past the end")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset of the read within the section.
        offset: usize,
    },
    /// Wrong magic number (or a big-endian BTF, which pfc never writes).
    #[error("`.BTF` has magic {magic:#06x}, expected 0xeb9f (little-endian BTF)")]
    BadMagic {
        /// The magic found.
        magic: u16,
    },
    /// A type kind this reader does not know.
    #[error("`.BTF` type {type_id} has unknown kind {kind}")]
    UnknownKind {
        /// The type id.
        type_id: u32,
        /// The kind found.
        kind: u32,
    },
    /// A type id that is not defined.
    #[error("`.BTF` refers to undefined type {type_id}")]
    UndefinedType {
        /// The type id.
        type_id: u32,
    },
    /// A map variable has no definition the reader understands.
    #[error("map `{map}` in `.BTF`: {problem}")]
    BadMapDefinition {
        /// The map's name.
        map: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Too many levels of typedef/const/volatile (or a cycle).
    #[error("`.BTF` type {type_id} nests too deeply (a cycle?)")]
    TooDeep {
        /// The type id where resolution gave up.
        type_id: u32,
    },
}

/// One BTF-defined map as declared in `.BTF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BtfMap {
    /// Map variable name.
    pub name: String,
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
}

/// Deepest chain of modifiers/typedefs followed before giving up.
const MAX_DEPTH: usize = 32;

/// One parsed type: its common header plus the offset of its kind-specific tail.
#[derive(Debug, Clone, Copy)]
struct Type {
    name_off: u32,
    kind: u32,
    vlen: u32,
    size_or_type: u32,
    /// Offset of the kind-specific data within the type section.
    extra: usize,
}

/// A bounds-checked little-endian reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn u32(&self, offset: usize, what: &'static str) -> Result<u32, BtfReadError> {
        let end = offset.checked_add(4).ok_or(BtfReadError::Truncated { what, offset })?;
        let b = self.bytes.get(offset..end).ok_or(BtfReadError::Truncated { what, offset })?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A parsed `.BTF` section: types indexed by id, and the string table.
struct Btf<'a> {
    types: Vec<Type>,
    type_data: Reader<'a>,
    strings: &'a [u8],
}

impl<'a> Btf<'a> {
    fn parse(section: &'a [u8]) -> Result<Self, BtfReadError> {
        let header = Reader { bytes: section };
        let magic_word = header.u32(0, "header")?;
        let magic = (magic_word & 0xffff) as u16;
        if magic != BTF_MAGIC {
            return Err(BtfReadError::BadMagic { magic });
        }
        let hdr_len = header.u32(4, "header")? as usize;
        let type_off = header.u32(8, "header")? as usize;
        let type_len = header.u32(12, "header")? as usize;
        let str_off = header.u32(16, "header")? as usize;
        let str_len = header.u32(20, "header")? as usize;
        let slice = |off: usize, len: usize, what: &'static str| {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(s), Some(e)) => section.get(s..e).ok_or(BtfReadError::Truncated { what, offset: s }),
                _ => Err(BtfReadError::Truncated { what, offset: off }),
            }
        };
        let type_bytes = slice(type_off, type_len, "type section")?;
        let strings = slice(str_off, str_len, "string section")?;
        let type_data = Reader { bytes: type_bytes };
        let mut types = Vec::new();
        let mut offset = 0;
        while offset < type_bytes.len() {
            let name_off = type_data.u32(offset, "type header")?;
            let info = type_data.u32(offset + 4, "type header")?;
            let size_or_type = type_data.u32(offset + 8, "type header")?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let extra = offset + 12;
            let type_id = types.len() as u32 + 1;
            let tail = match kind {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => 0,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen as usize,
                kind::ENUM | kind::FUNC_PROTO => 8 * vlen as usize,
                _ => return Err(BtfReadError::UnknownKind { type_id, kind }),
            };
            types.push(Type { name_off, kind, vlen, size_or_type, extra });
            offset = extra + tail;
        }
        if offset > type_bytes.len() {
            return Err(BtfReadError::Truncated { what: "last type", offset });
        }
        Ok(Btf { types, type_data, strings })
    }

    fn get(&self, type_id: u32) -> Result<Type, BtfReadError> {
        type_id
            .checked_sub(1)
            .and_then(|i| self.types.get(i as usize))
            .copied()
            .ok_or(BtfReadError::UndefinedType { type_id })
    }

    fn name(&self, name_off: u32) -> String {
        let start = (name_off as usize).min(self.strings.len());
        let rest = &self.strings[start..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    /// Follows typedef/const/volatile/restrict/type-tag to the underlying type.
    fn strip(&self, mut type_id: u32) -> Result<(u32, Type), BtfReadError> {
        for _ in 0..MAX_DEPTH {
            let ty = self.get(type_id)?;
            match ty.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    type_id = ty.size_or_type
                }
                _ => return Ok((type_id, ty)),
            }
        }
        Err(BtfReadError::TooDeep { type_id })
    }

    /// The size in bytes of a type, or `None` for types without one (void, functions).
    fn size_of(&self, type_id: u32, depth: usize) -> Result<Option<u64>, BtfReadError> {
        if depth > MAX_DEPTH {
            return Err(BtfReadError::TooDeep { type_id });
        }
        let (_, ty) = self.strip(type_id)?;
        Ok(match ty.kind {
            kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::FLOAT | kind::DATASEC => {
                Some(u64::from(ty.size_or_type))
            }
            kind::PTR => Some(8),
            kind::ARRAY => {
                let elem = self.type_data.u32(ty.extra, "array")?;
                let nelems = self.type_data.u32(ty.extra + 8, "array")?;
                self.size_of(elem, depth + 1)?.map(|s| s.saturating_mul(u64::from(nelems)))
            }
            kind::VAR => self.size_of(ty.size_or_type, depth + 1)?,
            _ => None,
        })
    }

    /// For `int (*name)[N]`: N.
    fn pointer_to_array_len(&self, type_id: u32) -> Option<u32> {
        let (_, ptr) = self.strip(type_id).ok()?;
        if ptr.kind != kind::PTR {
            return None;
        }
        let (_, array) = self.strip(ptr.size_or_type).ok()?;
        if array.kind != kind::ARRAY {
            return None;
        }
        self.type_data.u32(array.extra + 8, "array").ok()
    }

    /// For `K *name`: the size of K.
    fn pointee_size(&self, type_id: u32) -> Option<u32> {
        let (_, ptr) = self.strip(type_id).ok()?;
        if ptr.kind != kind::PTR {
            return None;
        }
        let size = self.size_of(ptr.size_or_type, 0).ok()??;
        u32::try_from(size).ok()
    }

    fn map_definition(&self, name: String, var_type: u32) -> Result<BtfMap, BtfReadError> {
        let bad = |problem| BtfReadError::BadMapDefinition { map: name.clone(), problem };
        let (_, def) = self.strip(var_type)?;
        if def.kind != kind::STRUCT {
            return Err(bad("its type is not a struct"));
        }
        let (mut map_type, mut key_size, mut value_size, mut max_entries) = (None, None, None, None);
        for i in 0..def.vlen as usize {
            let member = def.extra + 12 * i;
            let member_name = self.name(self.type_data.u32(member, "struct member")?);
            let member_type = self.type_data.u32(member + 4, "struct member")?;
            match member_name.as_str() {
                "type" => map_type = self.pointer_to_array_len(member_type),
                "max_entries" => max_entries = self.pointer_to_array_len(member_type),
                "key" => key_size = self.pointee_size(member_type),
                "value" => value_size = self.pointee_size(member_type),
                "key_size" => key_size = self.pointer_to_array_len(member_type),
                "value_size" => value_size = self.pointer_to_array_len(member_type),
                // map_flags, pinning, numa_node, values (map-in-map): not needed here.
                _ => {}
            }
        }
        let map_type = map_type.ok_or_else(|| bad("no `int (*type)[T]` member"))?;
        // Ring buffers (27) and perf event arrays (4) have no key or value in BTF.
        if [MapType::PERF_EVENT_ARRAY, MapType::RINGBUF].contains(&MapType(map_type)) {
            key_size = key_size.or(Some(0));
            value_size = value_size.or(Some(0));
        }
        Ok(BtfMap {
            map_type,
            key_size: key_size.ok_or_else(|| bad("no sized `key` or `key_size` member"))?,
            value_size: value_size.ok_or_else(|| bad("no sized `value` or `value_size` member"))?,
            max_entries: max_entries.ok_or_else(|| bad("no `int (*max_entries)[N]` member"))?,
            name,
        })
    }
}

/// Reads every map declared in the `DATASEC ".maps"` of a `.BTF` section, keyed by name.
pub(crate) fn parse_maps(section: &[u8]) -> Result<HashMap<String, BtfMap>, BtfReadError> {
    let btf = Btf::parse(section)?;
    let mut maps = HashMap::new();
    for datasec in btf.types.iter().filter(|t| t.kind == kind::DATASEC) {
        if btf.name(datasec.name_off) != ".maps" {
            continue;
        }
        for i in 0..datasec.vlen as usize {
            let var_id = btf.type_data.u32(datasec.extra + 12 * i, "datasec entry")?;
            let var = btf.get(var_id)?;
            if var.kind != kind::VAR {
                continue;
            }
            let name = btf.name(var.name_off);
            let map = btf.map_definition(name.clone(), var.size_or_type)?;
            maps.insert(name, map);
        }
    }
    Ok(maps)
}
