//! Map descriptions in, a `.BTF` section (header, type section, string section) out.
//!
//! libbpf 1.x only understands BTF-defined maps: each map is a global variable in
//! `.maps` whose type is an anonymous struct of pointer members, exactly what the
//! `__uint`/`__type` macros of `bpf_helpers.h` produce:
//!
//! ```text
//! struct { int (*type)[T]; K *key; V *value; int (*max_entries)[N]; [int (*map_flags)[F];] }
//! ```
//!
//! followed by a `VAR` (linkage global-allocated) per map and one `DATASEC ".maps"`
//! listing each variable's offset and size. The encoding follows
//! `Documentation/bpf/btf.rst`; type ids start at 1 (0 is `void`).

use std::collections::HashMap;

use super::maps::MapSpec;

/// BTF magic number, first two bytes of the section.
pub(crate) const BTF_MAGIC: u16 = 0xeb9f;
/// Size of the BTF header.
const HEADER_LEN: u32 = 24;

/// The `BTF_KIND_*` numbers (`include/uapi/linux/btf.h`): one table for the writer here
/// and the reader ([`super::btf_read`]).
pub(super) mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub(crate) const UNION: u32 = 5;
    pub(crate) const ENUM: u32 = 6;
    pub(crate) const FWD: u32 = 7;
    pub(crate) const TYPEDEF: u32 = 8;
    pub(crate) const VOLATILE: u32 = 9;
    pub(crate) const CONST: u32 = 10;
    pub(crate) const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub(crate) const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub(crate) const FLOAT: u32 = 16;
    pub(crate) const DECL_TAG: u32 = 17;
    pub(crate) const TYPE_TAG: u32 = 18;
    pub(crate) const ENUM64: u32 = 19;
}

/// `BTF_INT_SIGNED`, in the INT encoding word.
const INT_SIGNED: u32 = 1 << 24;
/// `BTF_VAR_GLOBAL_ALLOCATED`.
const VAR_GLOBAL_ALLOCATED: u32 = 1;

/// The C type of a map key or value, as BTF will describe it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `__u8`.
    U8,
    /// `__u16`.
    U16,
    /// `__u32`.
    U32,
    /// `__u64`.
    U64,
    /// `elem[len]`.
    Array {
        /// Element type.
        elem: Box<DataType>,
        /// Number of elements.
        len: u32,
    },
    /// A named struct laid out with C's natural alignment.
    Struct {
        /// The struct tag (a C identifier).
        name: String,
        /// Members in declaration order.
        fields: Vec<Field>,
    },
}

/// A struct member.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Member name (a C identifier).
    pub name: String,
    /// Member type.
    pub ty: DataType,
}

impl DataType {
    /// `struct pfc_counter { __u64 packets; __u64 bytes; }`: the per-rule counter.
    pub fn pfc_counter() -> DataType {
        let field = |name: &str| Field { name: name.to_string(), ty: DataType::U64 };
        DataType::Struct { name: "pfc_counter".to_string(), fields: vec![field("packets"), field("bytes")] }
    }

    /// Size in bytes, including tail padding.
    pub fn size(&self) -> u32 {
        match self {
            DataType::U8 => 1,
            DataType::U16 => 2,
            DataType::U32 => 4,
            DataType::U64 => 8,
            DataType::Array { elem, len } => elem.size().saturating_mul(*len),
            DataType::Struct { fields, .. } => {
                let (end, align) = layout(fields);
                end.div_ceil(align) * align
            }
        }
    }

    /// Alignment in bytes.
    pub fn align(&self) -> u32 {
        match self {
            DataType::Array { elem, .. } => elem.align(),
            DataType::Struct { fields, .. } => layout(fields).1,
            scalar => scalar.size(),
        }
    }
}

/// Largest key or value accepted (the kernel's own limits are lower still).
pub const MAX_DATA_SIZE: u32 = 1 << 24;

/// Byte offset of each field, the end of the last one, and the struct's alignment.
fn field_offsets(fields: &[Field]) -> (Vec<u32>, u32, u32) {
    let mut offsets = Vec::with_capacity(fields.len());
    let (mut end, mut align) = (0u32, 1u32);
    for field in fields {
        let a = field.ty.align();
        let offset = end.div_ceil(a) * a;
        offsets.push(offset);
        end = offset.saturating_add(field.ty.size());
        align = align.max(a);
    }
    (offsets, end, align)
}

fn layout(fields: &[Field]) -> (u32, u32) {
    let (_, end, align) = field_offsets(fields);
    (end, align)
}

/// Why map descriptions cannot be described in BTF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// A map, struct or member name is not a C identifier (the kernel checks this).
    #[error("`{name}` is not a valid C identifier (BTF {what} name)")]
    InvalidIdentifier {
        /// The name.
        name: String,
        /// What it names: "map", "struct" or "member".
        what: &'static str,
    },
    /// A key or value has size zero or above `MAX_DATA_SIZE`.
    #[error("map `{map}`: {which} type has size {size}, outside 1..={MAX_DATA_SIZE}")]
    BadSize {
        /// The map's name.
        map: String,
        /// "key" or "value".
        which: &'static str,
        /// The size in bytes (saturated at `u32::MAX`).
        size: u32,
    },
}

/// A BTF type section and string section under construction.
#[derive(Debug)]
pub(crate) struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
    string_offsets: HashMap<String, u32>,
    next_id: u32,
    data_types: HashMap<DataType, u32>,
    int_id: Option<u32>,
    index_type_id: Option<u32>,
}

impl Default for BtfBuilder {
    fn default() -> Self {
        BtfBuilder::new()
    }
}

impl BtfBuilder {
    /// An empty builder: no types, a string section holding only `""` at offset 0.
    pub fn new() -> BtfBuilder {
        BtfBuilder {
            types: Vec::new(),
            strings: vec![0],
            string_offsets: HashMap::from([(String::new(), 0)]),
            next_id: 1,
            data_types: HashMap::new(),
            int_id: None,
            index_type_id: None,
        }
    }

    /// Offset of `s` in the string section, adding it if new.
    fn string(&mut self, s: &str) -> u32 {
        if let Some(&offset) = self.string_offsets.get(s) {
            return offset;
        }
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_offsets.insert(s.to_string(), offset);
        offset
    }

    /// Appends a `struct btf_type` and its trailing words; returns its id.
    fn push_type(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32, extra: &[u32]) -> u32 {
        let name_off = self.string(name);
        let info = (kind << 24) | (vlen & 0xffff);
        for word in [name_off, info, size_or_type].iter().chain(extra) {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        self.next_id += 1;
        self.next_id - 1
    }

    fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let encoding = if signed { INT_SIGNED } else { 0 };
        self.push_type(name, kind::INT, 0, size, &[encoding | (size * 8)])
    }

    /// `int`, shared by every map's `type`/`max_entries` arrays.
    fn int_type(&mut self) -> u32 {
        if let Some(id) = self.int_id {
            return id;
        }
        let id = self.int("int", 4, true);
        self.int_id = Some(id);
        id
    }

    /// `__ARRAY_SIZE_TYPE__`, the index type clang uses for arrays.
    fn index_type(&mut self) -> u32 {
        if let Some(id) = self.index_type_id {
            return id;
        }
        let id = self.int("__ARRAY_SIZE_TYPE__", 4, false);
        self.index_type_id = Some(id);
        id
    }

    /// `typedef <int_name> <typedef>` over an unsigned INT of `size` bytes.
    fn scalar(&mut self, typedef: &str, int_name: &str, size: u32) -> u32 {
        let int = self.int(int_name, size, false);
        self.push_type(typedef, kind::TYPEDEF, 0, int, &[])
    }

    fn ptr(&mut self, target: u32) -> u32 {
        self.push_type("", kind::PTR, 0, target, &[])
    }

    fn array(&mut self, elem: u32, len: u32) -> u32 {
        let index = self.index_type();
        self.push_type("", kind::ARRAY, 0, 0, &[elem, index, len])
    }

    /// The id of `ty`, emitting it (and what it uses) the first time.
    pub(crate) fn data_type(&mut self, ty: &DataType) -> Result<u32, BtfError> {
        if let Some(&id) = self.data_types.get(ty) {
            return Ok(id);
        }
        let id = match ty {
            DataType::U8 => self.scalar("__u8", "unsigned char", 1),
            DataType::U16 => self.scalar("__u16", "unsigned short", 2),
            DataType::U32 => self.scalar("__u32", "unsigned int", 4),
            DataType::U64 => self.scalar("__u64", "unsigned long long", 8),
            DataType::Array { elem, len } => {
                let elem = self.data_type(elem)?;
                self.array(elem, *len)
            }
            DataType::Struct { name, fields } => self.struct_type(ty, name, fields)?,
        };
        self.data_types.insert(ty.clone(), id);
        Ok(id)
    }

    fn struct_type(&mut self, ty: &DataType, name: &str, fields: &[Field]) -> Result<u32, BtfError> {
        check_identifier(name, "struct")?;
        let mut members = Vec::with_capacity(fields.len() * 3);
        let (offsets, _, _) = field_offsets(fields);
        for (field, offset) in fields.iter().zip(offsets) {
            check_identifier(&field.name, "member")?;
            let member_type = self.data_type(&field.ty)?;
            let name_off = self.string(&field.name);
            members.extend([name_off, member_type, offset.saturating_mul(8)]);
        }
        Ok(self.push_type(name, kind::STRUCT, fields.len() as u32, ty.size(), &members))
    }

    /// `int (*)[n]`: how BTF-defined maps encode a number in a type.
    fn number_ptr(&mut self, n: u32) -> u32 {
        let int = self.int_type();
        let array = self.array(int, n);
        self.ptr(array)
    }

    /// Emits one map's definition struct and `VAR`; returns the VAR id and the
    /// definition's size in bytes (its share of `.maps`).
    pub fn map(&mut self, map: &MapSpec) -> Result<(u32, u32), BtfError> {
        check_identifier(&map.name, "map")?;
        for (which, ty) in [("key", &map.key), ("value", &map.value)] {
            let size = ty.size();
            if size == 0 || size > MAX_DATA_SIZE {
                return Err(BtfError::BadSize { map: map.name.clone(), which, size });
            }
        }
        let type_ptr = self.number_ptr(map.map_type.0);
        let mut members = vec![("type", type_ptr)];
        // A ring buffer's definition is `type` and `max_entries` only: the kernel
        // refuses a key or value size for it.
        if map.map_type != super::MapType::RINGBUF {
            let key = self.data_type(&map.key)?;
            let key_ptr = self.ptr(key);
            let value = self.data_type(&map.value)?;
            let value_ptr = self.ptr(value);
            members.extend([("key", key_ptr), ("value", value_ptr)]);
        }
        members.push(("max_entries", self.number_ptr(map.max_entries)));
        if map.flags != 0 {
            members.push(("map_flags", self.number_ptr(map.flags)));
        }
        let mut words = Vec::with_capacity(members.len() * 3);
        for (index, (name, type_id)) in members.iter().enumerate() {
            words.extend([self.string(name), *type_id, index as u32 * 64]);
        }
        let size = members.len() as u32 * 8;
        let def = self.push_type("", kind::STRUCT, members.len() as u32, size, &words);
        let var = self.push_type(&map.name, kind::VAR, 0, def, &[VAR_GLOBAL_ALLOCATED]);
        Ok((var, size))
    }

    /// Emits a `DATASEC` named `name` with `(var id, offset, size)` entries.
    pub(crate) fn datasec(&mut self, name: &str, vars: &[(u32, u32, u32)]) -> u32 {
        let total = vars.iter().map(|&(_, off, size)| off + size).max().unwrap_or(0);
        let words: Vec<u32> = vars.iter().flat_map(|&(id, off, size)| [id, off, size]).collect();
        self.push_type(name, kind::DATASEC, vars.len() as u32, total, &words)
    }

    /// The section bytes: header, types, strings.
    pub fn finish(self) -> Vec<u8> {
        let type_len = self.types.len() as u32;
        let str_len = self.strings.len() as u32;
        let mut out = Vec::with_capacity((HEADER_LEN + type_len + str_len) as usize);
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        for word in [HEADER_LEN, 0, type_len, type_len, str_len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

pub(crate) fn check_identifier(name: &str, what: &'static str) -> Result<(), BtfError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(BtfError::InvalidIdentifier { name: name.to_string(), what })
    }
}

/// Where a map's definition sits in the `.maps` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Byte offset in `.maps` (the map symbol's value).
    pub offset: u32,
    /// Byte size (the map symbol's size): 8 per definition member.
    pub size: u32,
}

/// The `.BTF` section for `maps`, laid out in `.maps` in list order, and where
/// each map's definition goes in `.maps`.
pub(crate) fn maps_btf(maps: &[MapSpec]) -> Result<(Vec<u8>, Vec<Placement>), BtfError> {
    let mut btf = BtfBuilder::new();
    let mut vars = Vec::with_capacity(maps.len());
    let mut offset = 0;
    for map in maps {
        let (var, size) = btf.map(map)?;
        vars.push((var, offset, size));
        offset += size;
    }
    btf.datasec(".maps", &vars);
    let placement = vars.iter().map(|&(_, offset, size)| Placement { offset, size }).collect();
    Ok((btf.finish(), placement))
}

#[cfg(test)]
#[path = "btf_tests.rs"]
mod tests;
