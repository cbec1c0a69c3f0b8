//! Structure checks of the BTF encoder: header, string table, type ids and layout.

use super::*;
use crate::object::{MapSpec, MapType};

/// One decoded `struct btf_type` with its trailing words.
#[derive(Debug)]
struct Type {
    kind: u32,
    name: String,
    vlen: u32,
    size_or_type: u32,
    extra: Vec<u32>,
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses a BTF blob into its types (index 0 = type id 1).
fn parse(btf: &[u8]) -> Vec<Type> {
    assert_eq!(u16::from_le_bytes([btf[0], btf[1]]), BTF_MAGIC);
    assert_eq!((btf[2], btf[3]), (1, 0), "version 1, no flags");
    let hdr_len = word(btf, 4) as usize;
    assert_eq!(hdr_len, 24);
    let (type_off, type_len) = (word(btf, 8) as usize, word(btf, 12) as usize);
    let (str_off, str_len) = (word(btf, 16) as usize, word(btf, 20) as usize);
    assert_eq!(hdr_len + str_off + str_len, btf.len());
    let strings = &btf[hdr_len + str_off..];
    assert_eq!(strings[0], 0, "string 0 is the empty string");
    assert_eq!(*strings.last().expect("strings"), 0);
    let name = |off: u32| {
        let rest = &strings[off as usize..];
        let end = rest.iter().position(|&b| b == 0).expect("NUL");
        String::from_utf8(rest[..end].to_vec()).expect("utf8")
    };
    let types = &btf[hdr_len + type_off..hdr_len + type_off + type_len];
    let mut at = 0;
    let mut out = Vec::new();
    while at < types.len() {
        let info = word(types, at + 4);
        let (kind, vlen) = ((info >> 24) & 0x1f, info & 0xffff);
        let extra_words = match kind {
            kind::INT | kind::VAR => 1,
            kind::ARRAY => 3,
            kind::STRUCT | kind::DATASEC => 3 * vlen as usize,
            _ => 0,
        };
        let extra = (0..extra_words).map(|i| word(types, at + 12 + 4 * i)).collect();
        out.push(Type { kind, name: name(word(types, at)), vlen, size_or_type: word(types, at + 8), extra });
        at += 12 + 4 * extra_words;
    }
    assert_eq!(at, types.len());
    out
}

/// Type with id `id` (1-based).
fn ty(types: &[Type], id: u32) -> &Type {
    &types[id as usize - 1]
}

/// Follows `PTR → ARRAY(int, n)` and returns n.
fn number(types: &[Type], ptr: u32) -> u32 {
    let p = ty(types, ptr);
    assert_eq!(p.kind, kind::PTR);
    let array = ty(types, p.size_or_type);
    assert_eq!(array.kind, kind::ARRAY);
    assert_eq!(ty(types, array.extra[0]).name, "int");
    array.extra[2]
}

#[test]
fn counter_map_is_described_like_clang_does() {
    let maps = [MapSpec::counters("pfc_counters", 7)];
    let (btf, placement) = maps_btf(&maps).expect("encodes");
    assert_eq!(placement, [Placement { offset: 0, size: 32 }]);
    let types = parse(&btf);
    let datasec = types.last().expect("types");
    assert_eq!(datasec.kind, kind::DATASEC);
    assert_eq!(datasec.name, ".maps");
    assert_eq!((datasec.vlen, datasec.size_or_type), (1, 32));
    let (var_id, offset, size) = (datasec.extra[0], datasec.extra[1], datasec.extra[2]);
    assert_eq!((offset, size), (0, 32));
    let var = ty(&types, var_id);
    assert_eq!((var.kind, var.name.as_str()), (kind::VAR, "pfc_counters"));
    assert_eq!(var.extra, [VAR_GLOBAL_ALLOCATED]);
    let def = ty(&types, var.size_or_type);
    assert_eq!((def.kind, def.name.as_str(), def.size_or_type), (kind::STRUCT, "", 32));
    let member = |i: usize| (def.extra[3 * i], def.extra[3 * i + 1], def.extra[3 * i + 2]);
    let names: Vec<String> = (0..4)
        .map(|i| {
            let (name_off, _, bit_offset) = member(i);
            assert_eq!(bit_offset, 64 * i as u32);
            let rest = &btf[24 + word(&btf, 16) as usize + name_off as usize..];
            String::from_utf8(rest[..rest.iter().position(|&b| b == 0).expect("NUL")].to_vec()).expect("utf8")
        })
        .collect();
    assert_eq!(names, ["type", "key", "value", "max_entries"]);
    assert_eq!(number(&types, member(0).1), 6);
    assert_eq!(number(&types, member(3).1), 7);
    // key: PTR → TYPEDEF __u32 → INT "unsigned int" (4 bytes, unsigned)
    let key = ty(&types, ty(&types, member(1).1).size_or_type);
    assert_eq!((key.kind, key.name.as_str()), (kind::TYPEDEF, "__u32"));
    let int = ty(&types, key.size_or_type);
    assert_eq!((int.kind, int.name.as_str(), int.size_or_type), (kind::INT, "unsigned int", 4));
    assert_eq!(int.extra, [32]);
    // value: PTR → STRUCT pfc_counter { __u64 packets @0; __u64 bytes @64 }
    let value = ty(&types, ty(&types, member(2).1).size_or_type);
    assert_eq!((value.kind, value.name.as_str()), (kind::STRUCT, "pfc_counter"));
    assert_eq!((value.vlen, value.size_or_type), (2, 16));
    assert_eq!((value.extra[2], value.extra[5]), (0, 64));
    assert_eq!(ty(&types, value.extra[1]).name, "__u64");
    // Every reference points at an existing, earlier-or-later defined id.
    let count = types.len() as u32;
    for t in &types {
        if matches!(t.kind, kind::PTR | kind::TYPEDEF | kind::VAR) {
            assert!((1..=count).contains(&t.size_or_type), "{t:?}");
        }
    }
}

#[test]
fn several_maps_share_scalar_types_and_get_consecutive_offsets() {
    let hash = MapSpec {
        name: "blocked".to_string(),
        map_type: MapType::HASH,
        key: DataType::U32,
        value: DataType::U64,
        max_entries: 1024,
        flags: 0,
    };
    let trie = MapSpec {
        name: "prefixes".to_string(),
        map_type: MapType::LPM_TRIE,
        key: DataType::Struct {
            name: "lpm_v6".to_string(),
            fields: vec![
                Field { name: "prefixlen".to_string(), ty: DataType::U32 },
                Field { name: "addr".to_string(), ty: DataType::Array { elem: Box::new(DataType::U8), len: 16 } },
            ],
        },
        value: DataType::U8,
        max_entries: 16,
        flags: crate::object::BPF_F_NO_PREALLOC,
    };
    let maps = [MapSpec::counters("counters", 3), hash, trie];
    let (btf, placement) = maps_btf(&maps).expect("encodes");
    let placement: Vec<(u32, u32)> = placement.iter().map(|p| (p.offset, p.size)).collect();
    assert_eq!(placement, [(0, 32), (32, 32), (64, 40)]);
    let types = parse(&btf);
    let u32_typedefs = types.iter().filter(|t| t.name == "__u32").count();
    assert_eq!(u32_typedefs, 1, "scalar types are emitted once");
    let datasec = types.last().expect("types");
    assert_eq!((datasec.vlen, datasec.size_or_type), (3, 104));
    let key = types.iter().find(|t| t.name == "lpm_v6").expect("lpm key");
    assert_eq!((key.size_or_type, key.extra[5]), (20, 32));
    // The string table holds each name once.
    let str_off = 24 + word(&btf, 16) as usize;
    let strings = &btf[str_off..];
    let count = strings.windows(6).filter(|w| w == b"\0__u32").count();
    assert_eq!(count, 1);
}

#[test]
fn bad_names_and_sizes_are_errors() {
    let mut map = MapSpec::counters("9lives", 1);
    assert_eq!(
        maps_btf(std::slice::from_ref(&map)).map(|_| ()),
        Err(BtfError::InvalidIdentifier { name: "9lives".to_string(), what: "map" })
    );
    map.name = "ok".to_string();
    map.value = DataType::Struct { name: "empty".to_string(), fields: vec![] };
    assert_eq!(
        maps_btf(std::slice::from_ref(&map)).map(|_| ()),
        Err(BtfError::BadSize { map: "ok".to_string(), which: "value", size: 0 })
    );
    map.value = DataType::Array { elem: Box::new(DataType::U64), len: u32::MAX };
    assert!(matches!(maps_btf(std::slice::from_ref(&map)), Err(BtfError::BadSize { size: u32::MAX, .. })));
}

#[test]
fn struct_layout_follows_c_alignment() {
    let ty = DataType::Struct {
        name: "s".to_string(),
        fields: vec![
            Field { name: "a".to_string(), ty: DataType::U8 },
            Field { name: "b".to_string(), ty: DataType::U64 },
            Field { name: "c".to_string(), ty: DataType::U16 },
        ],
    };
    assert_eq!((ty.size(), ty.align()), (24, 8));
    assert_eq!(DataType::pfc_counter().size(), 16);
}
