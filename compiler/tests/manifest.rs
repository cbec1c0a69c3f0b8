//! The manifest contract: the JSON that `pfc compile` writes into `.pfc.manifest` and
//! that `pfc load`, the state records and `pfc status`/`stats` read back, pinned by a
//! golden snapshot (`snapshots/manifest__manifest_json.snap`), so that a change to the
//! shape is a reviewed diff, never a silent drift. The rule file below uses every part
//! of the manifest (counters, rate limits, a log rate, dynamic sets, logs), and the
//! typed `Manifest` must read back as written: from its bytes and from the ELF object.

use std::collections::BTreeMap;

use pfc_compiler::compile::{compile, Compiled};
use pfc_compiler::object::{read_manifest, Manifest};
use serde_json::Value;

const RULES: &str = "\
hook tc egress
default drop
set banned: ip dynamic size 10
rule ban: drop if ip.src in banned
rule ssh_others: drop log if tcp.dport == ssh
rule ping_flood: drop log 0 if icmp.type == echo-request and rate > 10/s per ip.src burst 20
rule web: pass if tcp.dport == 80
";

fn compiled() -> Compiled {
    let (compiled, diagnostics) = compile(RULES, Default::default());
    compiled.unwrap_or_else(|| panic!("{diagnostics:?}"))
}

/// Records every path of `value` (list items share `[]`) with whether it held something
/// there: not `null`, not an empty list.
fn walk(path: &str, value: &Value, seen: &mut BTreeMap<String, bool>) {
    let held = !matches!(value, Value::Null) && !matches!(value, Value::Array(items) if items.is_empty());
    *seen.entry(path.to_string()).or_default() |= held;
    match value {
        Value::Array(items) => items.iter().for_each(|item| walk(&format!("{path}[]"), item, seen)),
        Value::Object(fields) => fields.iter().for_each(|(key, v)| walk(&format!("{path}.{key}"), v, seen)),
        _ => {}
    }
}

#[test]
fn manifest_json() {
    let mut manifest = compiled().manifest;
    // The version changes with every release; the shape must not.
    assert_eq!(manifest.pfc_version, env!("CARGO_PKG_VERSION"));
    manifest.pfc_version = "<pfc version>".to_string();
    // The digests change with the code; their presence and form must not.
    let digest = manifest.digest.as_mut().expect("the compiler writes the object's digests");
    for value in [&mut digest.code, &mut digest.maps, &mut digest.manifest] {
        assert!(value.starts_with("sha256:") && value.len() == 7 + 64, "{value}");
        *value = "sha256:<digest>".to_string();
    }
    let json = serde_json::to_value(&manifest).expect("a manifest serializes");
    let mut seen = BTreeMap::new();
    walk("manifest", &json, &mut seen);
    let missing: Vec<&String> = seen.iter().filter(|(_, held)| !**held).map(|(path, _)| path).collect();
    assert!(missing.is_empty(), "extend RULES so the snapshot shows {missing:?}");
    // Fields in the order the object holds them.
    let text = serde_json::to_string_pretty(&manifest).expect("JSON prints");
    insta::assert_snapshot!("manifest_json", text);
}

#[test]
fn manifest_reads_back_as_written() {
    let compiled = compiled();
    let bytes = compiled.manifest.to_bytes();
    assert_eq!(Manifest::from_bytes(&bytes).expect("its own bytes read"), compiled.manifest);
    assert_eq!(read_manifest(&compiled.object).expect("the object's manifest reads"), compiled.manifest);
    let reread = serde_json::to_vec(&read_manifest(&compiled.object).expect("reads")).expect("serializes");
    assert_eq!(reread, bytes, "write -> read -> write gives the same bytes");
}
