//! The manifest: what a pfc object is, without its source — one serde type written by
//! the compiler into `.pfc.manifest` and read back by `pfc load` (from the compiler or
//! from an object file), the state records and `pfc status`/`stats`.
//!
//! The JSON keeps the shape pfc has written since the first manifest; fields added later
//! read as empty from older records (`#[serde(default)]`), and hooks and verdicts accept
//! the spellings older pfc versions wrote (`tc ingress`).

use serde::{Deserialize, Serialize};

use super::hook::{Hook, Verdict};

/// What a loaded object is: its rules in counter order, their verdicts, where it
/// attaches, which maps hold what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The compiler version that wrote the object.
    pub pfc_version: String,
    /// The rule file's hook.
    pub hook: Hook,
    /// The verdict when no rule matches.
    pub default: Verdict,
    /// Rule names in counter order; the default's counter follows them.
    pub rules: Vec<String>,
    /// Each rule's verdict, in the same order; empty in manifests written before pfc
    /// recorded them.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    /// The per-rule counter map, when the object counts (`null` with `--no-counters`).
    #[serde(default)]
    pub counters: Option<CountersManifest>,
    /// `sha256:` and the SHA-256 of the rule file as `sha256sum` prints it (with includes:
    /// of all files in the order read); older objects: `fnv1a64:` and a 64-bit hash.
    pub source_hash: String,
    /// The rate limits (absent in objects without limits and in older records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitManifest>,
    /// The dynamic sets and their maps (absent without dynamic sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_sets: Option<SetsManifest>,
    /// The rules that log, with their ring buffer and statistics maps (absent without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsManifest>,
    /// Array maps the loader fills from the object before the program runs (the
    /// table-driven classifier's; absent without).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableContents>,
    /// What the object held when pfc compiled it (`super::digest`): `pfc load OBJ` refuses
    /// an object whose code, maps or manifest no longer match. Absent in objects compiled
    /// before pfc wrote it, and in manifests that are no object's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<ObjectDigest>,
}

/// The digests of a pfc object, each `sha256:HEX` (`super::digest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDigest {
    /// The program's instructions and its map relocations.
    pub code: String,
    /// The map declarations (names, `.BTF`) and the contents `pfc load` writes into maps
    /// (`.pfc.sets`).
    pub maps: String,
    /// The manifest itself, without this digest.
    pub manifest: String,
}

/// An array map whose values are in the object: `entries` values of `value_size` bytes,
/// for keys 0, 1, …, from byte `offset` of the `.pfc.sets` section
/// (`super::write::SET_CONTENTS_SECTION`, after the static sets' keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableContents {
    /// The map's name.
    pub map: String,
    /// How many values.
    pub entries: u32,
    /// Bytes per value.
    pub value_size: u32,
    /// Where the first value starts in the section.
    pub offset: u64,
}

/// Where logging rules send their events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsManifest {
    /// The ring buffer's map name.
    pub ring: String,
    /// The per-rule statistics map's name.
    pub stats: String,
    /// Each logging rule.
    pub rules: Vec<LogRuleManifest>,
}

/// One rule that logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRuleManifest {
    /// The rule's name.
    pub rule: String,
    /// Its index (counter order).
    pub index: u32,
    /// Frame bytes kept per event.
    pub bytes: u16,
    /// Bytes of one event record.
    pub record_size: u32,
}

/// The dynamic sets of an object: their generation array and each set's map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetsManifest {
    /// The generation array's map name.
    pub generation_map: String,
    /// Each dynamic set, in index order.
    pub sets: Vec<SetManifest>,
}

/// One dynamic set as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetManifest {
    /// The set's name in the rule file.
    pub name: String,
    /// Its element type as written (`ip`, `port`, ...).
    #[serde(rename = "type")]
    pub element_type: String,
    /// `prefixes` (an LPM trie) or `values` (a hash).
    pub kind: String,
    /// The most elements it holds.
    pub size: u32,
    /// Its maps: one per family and generation (`crate::program::dynamic::Part`).
    /// (Absent in the records of filters loaded before sets had a map per family: those
    /// sets are not found by `pfc set`, nor carried by a replace.)
    #[serde(default)]
    pub maps: Vec<SetMapManifest>,
    /// Its index: its entry in the generation array.
    pub index: u32,
    /// A static set the compiler put in a map (too large for a decision tree): where its
    /// keys are in the object ([`SetContents`]). Such a set never changes: `pfc load`
    /// writes these keys, `pfc set` refuses to change it. Absent for a dynamic set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<SetContents>,
}

/// One map of a dynamic set: the elements of one family in one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMapManifest {
    /// The map's name.
    pub map: String,
    /// The family of values it holds: `ipv4`, `ipv6`, `number` or `mac`
    /// (`crate::program::dynamic::Family::as_str`).
    pub family: String,
    /// The generation it holds (0 or 1; a static set's maps are all generation 0).
    pub generation: u32,
}

/// Where a fixed set's keys are: `keys` keys of `key_size` bytes each, from key number
/// `first` of the object's `.pfc.sets` section (`super::write::SET_CONTENTS_SECTION`),
/// as element keys (`crate::program::dynamic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetContents {
    /// Index of its first key among the section's keys.
    pub first: u64,
    /// How many keys.
    pub keys: u32,
    /// Bytes per key.
    pub key_size: u32,
}

/// The counter map as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersManifest {
    /// The map's name in the object.
    pub map: String,
    /// How its entries are laid out, in words.
    pub layout: String,
}

impl CountersManifest {
    /// The counter map `map`: one entry per rule, then the default's.
    pub fn per_rule(map: &str) -> CountersManifest {
        CountersManifest {
            map: map.to_string(),
            layout: "index i < rules.len(): rule i; index rules.len(): the default verdict".to_string(),
        }
    }
}

/// One rate limit: which rule it belongs to, its bucket map, key and parameters, so a
/// replace can tell which buckets carry over (same rule, key, unit and period).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitManifest {
    /// The rule whose condition ends in the limit.
    pub rule: Option<String>,
    /// The rule whose log events the limit paces (`log` with a rate), if it is one.
    #[serde(default)]
    pub log: Option<String>,
    /// The name of its bucket map.
    pub map: String,
    /// Where it counts the packets over and within its rate (a rule's limit; `null` for a
    /// log limit and in objects written before pfc counted them).
    #[serde(default)]
    pub stats: Option<LimitStatsEntry>,
    /// The concrete key fields, in key order.
    pub key: Vec<String>,
    /// Bytes of the map key.
    #[serde(default)]
    pub key_size: Option<u32>,
    /// `over` (`rate > R`) or `within` (`rate <= R`, accept at most).
    #[serde(default)]
    pub op: Option<String>,
    /// `packets` or `bytes`.
    #[serde(default)]
    pub unit: Option<String>,
    /// Tokens per period.
    #[serde(default)]
    pub rate: Option<u64>,
    /// The period in nanoseconds (tokens are scaled by it).
    #[serde(default)]
    pub period_ns: Option<u64>,
    /// The bucket size.
    #[serde(default)]
    pub burst: Option<u64>,
    /// The most buckets (keys) the map holds.
    #[serde(default)]
    pub buckets: Option<u32>,
}

/// A limit's entry in the limit statistics map: `struct pfc_limit_stats { __u64 over;
/// __u64 within; }` per CPU ([`super::maps::MapSpec::limit_stats`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitStatsEntry {
    /// The map's name.
    pub map: String,
    /// The limit's entry (its key).
    pub index: u32,
}

impl Manifest {
    /// The manifest as the bytes of `.pfc.manifest`.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest of strings and numbers always serializes")
    }

    /// Reads the bytes of a `.pfc.manifest` section.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written before manifests held per-rule verdicts, counters or limits, and
    /// with the hook as rule files write it, still read.
    #[test]
    fn older_manifests_read() {
        let old = r#"{"pfc_version":"0.1.0","hook":"tc ingress","default":"pass","rules":["a"],"source_hash":"x"}"#;
        let manifest = Manifest::from_bytes(old.as_bytes()).expect("an old manifest reads");
        assert!(manifest.verdicts.is_empty() && manifest.limits.is_empty() && manifest.counters.is_none());
        assert_eq!(manifest.hook, Hook::TcIngress);
        let new = r#"{"pfc_version":"0.1.0","hook":"xdp","default":"pass","rules":["a"],"verdicts":["drop"],"source_hash":"x"}"#;
        assert_eq!(Manifest::from_bytes(new.as_bytes()).expect("reads").verdicts, [Verdict::Drop]);
        let bad = r#"{"pfc_version":"0.1.0","hook":"xdp","default":"maybe","rules":[],"source_hash":"x"}"#;
        assert!(Manifest::from_bytes(bad.as_bytes()).is_err(), "a default that is no verdict is refused");
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let manifest = Manifest {
            pfc_version: "0.1.0".to_string(),
            hook: Hook::TcEgress,
            default: Verdict::Drop,
            rules: vec!["a".to_string()],
            verdicts: vec![Verdict::Pass],
            counters: Some(CountersManifest::per_rule("pfc_counters")),
            source_hash: "x".to_string(),
            limits: vec![LimitManifest {
                rule: Some("a".to_string()),
                log: None,
                map: "pfc_limit_0".to_string(),
                stats: Some(LimitStatsEntry { map: "pfc_limit_stats".to_string(), index: 0 }),
                key: vec!["ipv4.src".to_string()],
                key_size: Some(4),
                op: Some("over".to_string()),
                unit: Some("packets".to_string()),
                rate: Some(10),
                period_ns: Some(1_000_000_000),
                burst: Some(20),
                buckets: Some(16384),
            }],
            dynamic_sets: Some(SetsManifest {
                generation_map: "pfc_set_gen".to_string(),
                sets: vec![SetManifest {
                    name: "banned".to_string(),
                    element_type: "ip".to_string(),
                    kind: "prefixes".to_string(),
                    size: 16,
                    maps: vec![SetMapManifest {
                        map: "pfc_set_0a".to_string(),
                        family: "ipv4".to_string(),
                        generation: 0,
                    }],
                    index: 0,
                    contents: Some(SetContents { first: 0, keys: 3, key_size: 24 }),
                }],
            }),
            logs: Some(LogsManifest {
                ring: "pfc_log".to_string(),
                stats: "pfc_log_stats".to_string(),
                rules: vec![LogRuleManifest { rule: "a".to_string(), index: 0, bytes: 64, record_size: 96 }],
            }),
            tables: vec![TableContents { map: "pfc_cls_nodes".to_string(), entries: 3, value_size: 32, offset: 72 }],
            digest: Some(ObjectDigest {
                code: "sha256:1".to_string(),
                maps: "sha256:2".to_string(),
                manifest: "sha256:3".to_string(),
            }),
        };
        assert_eq!(Manifest::from_bytes(&manifest.to_bytes()).expect("reads"), manifest);
    }
}
