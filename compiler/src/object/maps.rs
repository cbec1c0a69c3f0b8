//! The maps an object defines, by layout: a [`MapSpec`] per map (type, key and value C
//! types, size) and the constructors of pfc's own maps (counters, rate buckets and their
//! statistics, dynamic sets and their generations, log ring buffer and statistics), shared
//! by the writer, the runtime and the tests.

use super::btf::{DataType, Field};

/// A `BPF_MAP_TYPE_*` number: the writer's, the reader's ([`super::MapDef`]) and the
/// runtime's one map type. Known numbers have constants; any other is kept as read.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapType(pub u32);

impl MapType {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: MapType = MapType(1);
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: MapType = MapType(2);
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: no key or value in BTF (read, never written).
    pub(crate) const PERF_EVENT_ARRAY: MapType = MapType(4);
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

    /// Whether each CPU has its own copy of every value.
    pub fn is_per_cpu(self) -> bool {
        matches!(self, MapType::PERCPU_HASH | MapType::PERCPU_ARRAY)
    }

    /// Whether entries are found by key (hash, LRU hash, trie), not by position.
    pub fn is_hash(self) -> bool {
        matches!(self, MapType::HASH | MapType::PERCPU_HASH | MapType::LRU_HASH | MapType::LPM_TRIE)
    }
}

/// The kernel's name for known types (`Hash`, `PercpuArray`, …), the number otherwise:
/// what error messages print.
impl std::fmt::Debug for MapType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match *self {
            MapType::HASH => "Hash",
            MapType::ARRAY => "Array",
            MapType::PERCPU_HASH => "PercpuHash",
            MapType::PERCPU_ARRAY => "PercpuArray",
            MapType::LRU_HASH => "LruHash",
            MapType::LPM_TRIE => "LpmTrie",
            MapType::RINGBUF => "Ringbuf",
            MapType(code) => return write!(f, "MapType({code})"),
        };
        f.write_str(name)
    }
}

// The names of pfc's maps, written here once: the compiler names its maps with them,
// the manifest carries them, and the runtime, the CLI and the tests look maps up by them.

/// The per-rule counter array (map index 0 whenever it exists).
pub const COUNTER_MAP_NAME: &str = "pfc_counters";
/// The prefix of every rate limit's bucket map ([`limit_map_name`]).
pub const LIMIT_MAP_PREFIX: &str = "pfc_limit_";
/// The per-CPU rate-limit statistics: per limit, the packets over and within its rate
/// (15 bytes, what the kernel keeps; it shares [`LIMIT_MAP_PREFIX`], so
/// [`limit_map_name`] never gives it: no limit index is `stats`).
pub const LIMIT_STATS_MAP_NAME: &str = "pfc_limit_stats";
/// The prefix of every dynamic set's maps ([`Part::map_name`](crate::program::dynamic::Part::map_name))
/// and of the generation array.
pub const SET_MAP_PREFIX: &str = "pfc_set_";
/// The dynamic sets' generation array (one entry per set, by set index).
pub const SET_GENERATION_MAP_NAME: &str = "pfc_set_gen";
/// The prefix of the log maps ([`LOG_RING_MAP_NAME`], [`LOG_STATS_MAP_NAME`]).
pub const LOG_MAP_PREFIX: &str = "pfc_log_";
/// The ring buffer that logged rules send events to.
pub const LOG_RING_MAP_NAME: &str = "pfc_log_ring";
/// The per-rule log statistics (events sent and dropped).
pub const LOG_STATS_MAP_NAME: &str = "pfc_log_stats";

/// The prefix of the table-driven classifier's maps.
pub const CLASSIFIER_MAP_PREFIX: &str = "pfc_cls_";
/// The table-driven classifier's node array (`codegen::table`).
pub const CLASSIFIER_NODES_MAP_NAME: &str = "pfc_cls_nodes";
/// The table-driven classifier's rule array: each leaf's candidate rules.
pub const CLASSIFIER_RULES_MAP_NAME: &str = "pfc_cls_rules";

/// The name of the bucket map of rate limit `index` (the kernel keeps 15 bytes).
pub fn limit_map_name(index: usize) -> String {
    format!("{LIMIT_MAP_PREFIX}{index}")
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
    pub(crate) fn rate_buckets(name: &str, key_size: u32, entries: u32) -> MapSpec {
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

    /// One map of a dynamic set ([`crate::program::dynamic`] decides which): for prefixes
    /// (`trie`) an LPM trie keyed `struct pfc_set_key4 { __u32 prefixlen; __u8 addr[4]; }`
    /// (IPv4, the 8 bytes of a hand-written XDP filter's trie) or `pfc_set_key6`
    /// (`addr[16]`, IPv6), named by its address bytes (`key_size` − 4); for single values
    /// a hash keyed `__u8[key_size]`; the value `__u32[4]`. Without preallocation:
    /// entries cost memory only when present.
    pub fn dynamic_set(name: &str, trie: bool, key_size: usize, entries: u32) -> MapSpec {
        let field = |name: &str, ty: DataType| Field { name: name.to_string(), ty };
        let bytes = |len: usize| DataType::Array { elem: Box::new(DataType::U8), len: len as u32 };
        let key = if trie {
            let address = key_size - 4;
            DataType::Struct {
                name: format!("pfc_set_key{}", if address == 16 { 6 } else { 4 }),
                fields: vec![field("prefixlen", DataType::U32), field("addr", bytes(address))],
            }
        } else {
            bytes(key_size)
        };
        MapSpec {
            name: name.to_string(),
            map_type: if trie { MapType::LPM_TRIE } else { MapType::HASH },
            key,
            value: DataType::Array { elem: Box::new(DataType::U32), len: 4 },
            max_entries: entries,
            flags: BPF_F_NO_PREALLOC,
        }
    }

    /// The dynamic sets' generation words: an array, `__u32` set index → `struct
    /// pfc_set_state { __u32 generation; __u32 elements; __u64 changed_ns; }`.
    pub(crate) fn set_generations(name: &str, sets: u32) -> MapSpec {
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
    pub(crate) fn ring_buffer(name: &str, bytes: u32) -> MapSpec {
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
        MapSpec::per_cpu_pairs(name, "pfc_log_stats", ["sent", "dropped"], rules)
    }

    /// The per-CPU rate-limit statistics: `__u32` limit index → `struct pfc_limit_stats {
    /// __u64 over; __u64 within; }` (packets that reached the limit and found their
    /// bucket without or with enough tokens).
    pub fn limit_stats(name: &str, limits: u32) -> MapSpec {
        MapSpec::per_cpu_pairs(name, "pfc_limit_stats", ["over", "within"], limits)
    }

    /// A per-CPU array of `entries` (at least one) structs named `value` of two `__u64`
    /// fields, keyed by a `__u32` index.
    fn per_cpu_pairs(name: &str, value: &str, fields: [&str; 2], entries: u32) -> MapSpec {
        MapSpec {
            name: name.to_string(),
            map_type: MapType::PERCPU_ARRAY,
            key: DataType::U32,
            value: DataType::Struct {
                name: value.to_string(),
                fields: fields.map(|field| Field { name: field.to_string(), ty: DataType::U64 }).to_vec(),
            },
            max_entries: entries.max(1),
            flags: 0,
        }
    }

    /// The table-driven classifier's nodes: an array, `__u32` index → `struct pfc_cls_node
    /// { __u32 select, mask, threshold, left, right, first, count, pad; }` (see
    /// `codegen::table`), filled by the loader from the object.
    pub fn classifier_nodes(name: &str, entries: u32) -> MapSpec {
        let names = ["select", "mask", "threshold", "left", "right", "first", "count", "pad"];
        let fields = names.iter().map(|name| Field { name: name.to_string(), ty: DataType::U32 }).collect();
        MapSpec {
            name: name.to_string(),
            map_type: MapType::ARRAY,
            key: DataType::U32,
            value: DataType::Struct { name: "pfc_cls_node".to_string(), fields },
            max_entries: entries.max(1),
            flags: 0,
        }
    }

    /// The table-driven classifier's candidate rules: an array, `__u32` index → `struct
    /// pfc_cls_rule { __u32 rule, code, absent, pad; __u32 bounds[2 * fields]; }` (per
    /// field the lowest and highest value the rule accepts).
    pub fn classifier_rules(name: &str, entries: u32, fields: u32) -> MapSpec {
        let word = |name: &str| Field { name: name.to_string(), ty: DataType::U32 };
        let mut members: Vec<Field> = ["rule", "code", "absent", "pad"].into_iter().map(word).collect();
        members.push(Field {
            name: "bounds".to_string(),
            ty: DataType::Array { elem: Box::new(DataType::U32), len: 2 * fields.max(1) },
        });
        MapSpec {
            name: name.to_string(),
            map_type: MapType::ARRAY,
            key: DataType::U32,
            value: DataType::Struct { name: "pfc_cls_rule".to_string(), fields: members },
            max_entries: entries.max(1),
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
