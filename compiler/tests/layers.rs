//! No back edges between the compiler's stage modules: every `crate::MODULE` reference
//! in `compiler/src` (outside `#[cfg(test)]` code and comments) must point to a module
//! of an earlier layer in [`LAYERS`], so the stages form no import cycle.
//!
//! The layers follow the pipeline: the packet model and the instruction set first, then
//! the program the front ends produce, the front ends, the stages that read a checked
//! program, code generation and the object, and the driver last. Tests inside a module
//! may use anything (a code generator's test compiles whole rule files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules of `compiler/src`, in layers: a module may use modules of earlier
/// layers only (not its own layer, not a later one). `lib` is the crate root
/// (`crate::check_source`).
const LAYERS: &[&[&str]] = &[
    // Foundations: the packet model, the instruction set, diagnostics.
    &["diagnostic", "hashing", "fields", "bpf"],
    // The packet builder, which writes any field of the packet model by name.
    &["packet"],
    // The object contract (hook, map layouts, ELF and BTF writer, manifest).
    &["object"],
    // The checked program (with the pcap test tree), what the front ends produce.
    &["program"],
    // Front ends: the rule-file parser and the pcap-expression front end.
    &["syntax", "pcap"],
    // Includes, names and types, and both in one call.
    &["sources"],
    &["check"],
    &["frontend"],
    // The filter IR, read by the code generator.
    &["ir"],
    // Readers of a checked program that must not read each other: the interpreter and the
    // code generator both follow the packet model in `fields`; the verifier reads code.
    &["eval", "codegen", "verify"],
    // The test-case language (packets, checked against the interpreter).
    &["testcase"],
    // The packet-space engine and what is built on it.
    &["space"],
    &["analysis"],
    // The driver, and generators that run the whole pipeline.
    &["compile", "classbench"],
    &["lib"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// `(module, referenced module, file)` for every reference outside test code.
fn references(src: &Path) -> Vec<(String, String, PathBuf)> {
    let mut found = Vec::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        if is_test_file(&file) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = without_test_modules(&without_comments(&text));
        for target in crate_paths(&code) {
            let target = if src.join(format!("{target}.rs")).exists() || src.join(&target).is_dir() {
                target
            } else {
                "lib".to_string() // an item of lib.rs itself
            };
            if target != module {
                found.push((module.clone(), target, relative.to_path_buf()));
            }
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// A file that is only a `#[cfg(test)] mod` of its parent (`tests.rs`, `btf_tests.rs`).
fn is_test_file(file: &Path) -> bool {
    let name = file.file_name().unwrap().to_string_lossy();
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// The text with `//` comments (doc comments included) removed; strings are kept.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match comment_start(line) {
            Some(start) => &line[..start],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a `//` comment starts on a line, outside string literals.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The text with every inline `#[cfg(test)] mod NAME { ... }` cut out (braces matched,
/// skipping string and character literals).
fn without_test_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find(['{', ';']) else { break };
        if after.as_bytes()[open] == b';' {
            rest = &after[open + 1..];
            continue;
        }
        rest = &after[matching_brace(after, open)..];
    }
    out.push_str(rest);
    out
}

/// Index just past the brace that closes the one at `open`.
fn matching_brace(text: &str, open: usize) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, open);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The first segment of every `crate::` path, including each one of a
/// `crate::{a::X, b}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `pfc_compiler::` or `$crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphabetic() || c == '_') => {
                        found.push(identifier(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(identifier(rest));
        }
    }
    found
}

fn identifier(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_is_in_a_layer() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(src_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_string();
        if layer_of(&name).is_none() {
            missing.push(name);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "modules not placed in LAYERS of compiler/tests/layers.rs: {missing:?}; put each after every module it uses"
    );
}

#[test]
fn stage_modules_use_only_earlier_layers() {
    let mut back_edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (module, target, file) in references(&src_dir()) {
        let (Some(from), Some(to)) = (layer_of(&module), layer_of(&target)) else { continue };
        if to >= from {
            back_edges.entry((module, target)).or_default().push(file.display().to_string());
        }
    }
    let report: Vec<String> = back_edges
        .iter()
        .map(|((module, target), files)| {
            let mut files = files.clone();
            files.dedup();
            format!("{module} -> {target} ({})", files.join(", "))
        })
        .collect();
    assert!(
        report.is_empty(),
        "imports that do not go to an earlier layer (LAYERS in compiler/tests/layers.rs):\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn the_reference_scanner_sees_groups_and_skips_tests_and_comments() {
    let code = "use crate::{fields::Field, bpf};\n// crate::eval in a comment\nfn f() { crate::ir::lower(); }\n\
                #[cfg(test)]\nmod tests { fn g() { let s = \"}\"; crate::compile::compile(); } }\nuse pfc_compiler::x;";
    let code = without_test_modules(&without_comments(code));
    assert_eq!(crate_paths(&code), ["fields", "bpf", "ir"]);
}
