//! Failure fixtures: every `tests/diagnostics/*.pf` is checked by the real `pfc` binary
//! and its exit code and rendered diagnostics are compared with the insta snapshot
//! `tests/snapshots/diagnostics__<fixture>.snap`.
//!
//! A fixture named `E0005_...` or `W0001_...` must produce that code; every code the
//! compiler and the CLI define must have a fixture (or a stated reason why `pfc check`
//! cannot report it), so a new code without one fails here. Fixtures under
//! `tests/diagnostics/compile/` are errors only code generation finds (E0020): each is
//! compiled with `pfc compile` and snapshotted as `diagnostics__compile_<fixture>.snap`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{files_with_extension, pfc_in, repo, Run};

/// Every diagnostic code `pfc check` can report: each must have a fixture here.
const CODES: &[&str] = &[
    "E0001", "E0002", "E0003", "E0004", "E0005", "E0006", "E0007", "E0008", "E0009", "E0010", "E0011", "E0012",
    "E0013", "E0014", "E0015", "E0017", "E0018", "E0019", "E0021", "E0022", "E0023", "E0024", "E0025", "E0026",
    "E0030", "E0031", "E0032", "E0035", "W0001", "W0002", "W0003", "W0004", "W0006", "W0007", "W0008",
];

/// Codes defined in the source that `pfc check` cannot report, each with the reason.
/// A new code must go in one of the two lists: into `CODES` with a fixture, or here.
const NOT_FROM_CHECK: &[(&str, &str)] = &[
    ("E0020", "kernel limits of the generated program: reported by `pfc compile`, after checking (fixtures in tests/diagnostics/compile)"),
    ("W0005", "overlapping rules: only `pfc check --lints=all` reports it (tests/analysis.rs has its snapshot)"),
    ("E0900", "internal compiler error (pfc's verifier refusing pfc's code, an unknown parse-tree shape): no input should cause it"),
];

fn fixture_dir() -> PathBuf {
    repo().join("tests/diagnostics")
}

fn fixture_name(path: &Path) -> String {
    path.file_stem().and_then(|stem| stem.to_str()).expect("fixture names are UTF-8").to_string()
}

/// `pfc check FIXTURE` run from the fixture directory, so paths in messages are short.
fn check_fixture(path: &Path, extra: &[&str]) -> Run {
    let file = path.file_name().and_then(|name| name.to_str()).expect("fixture names are UTF-8");
    let mut args = vec!["check", file];
    args.extend_from_slice(extra);
    pfc_in(&fixture_dir(), &args)
}

/// The code a fixture's name promises (`E0005_port_too_large` → `E0005`).
fn promised_code(name: &str) -> Option<&str> {
    let code = name.get(..5)?;
    let well_formed =
        name[5..].starts_with('_') && code.starts_with(['E', 'W']) && code[1..].chars().all(|c| c.is_ascii_digit());
    well_formed.then_some(code)
}

#[test]
fn every_fixture_renders_its_snapshot() {
    let fixtures = files_with_extension(&fixture_dir(), "pf");
    assert!(fixtures.len() >= CODES.len(), "only {} fixtures", fixtures.len());
    for path in &fixtures {
        let name = fixture_name(path);
        let run = check_fixture(path, &[]);
        run.assert_no_crash(&name);
        let errors = run.stderr.contains("error[");
        assert_eq!(run.code, if errors { 1 } else { 0 }, "{name}: exit code\n{}", run.stderr);
        if let Some(code) = promised_code(&name) {
            assert!(run.stderr.contains(&format!("[{code}]")), "{name} does not report {code}:\n{}", run.stderr);
        }
        let rendered = format!("exit code: {}\n{}", run.code, run.stderr);
        insta::with_settings!({ input_file => path, omit_expression => true }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}

/// `pfc compile FIXTURE -o OUT` from `tests/diagnostics/compile`: every fixture there is
/// refused with the code its name promises, and no object is written.
#[test]
fn every_compile_fixture_renders_its_snapshot() {
    let dir = fixture_dir().join("compile");
    let fixtures = files_with_extension(&dir, "pf");
    assert!(!fixtures.is_empty(), "no fixtures in {}", dir.display());
    let out = support::scratch_dir("compile_fixtures").join("out.o");
    for path in &fixtures {
        let name = fixture_name(path);
        let file = path.file_name().and_then(|name| name.to_str()).expect("fixture names are UTF-8");
        let run = pfc_in(&dir, &["compile", file, "-o", out.to_str().expect("UTF-8 path")]);
        run.assert_no_crash(&name);
        assert_eq!(run.code, 1, "{name}: exit code\n{}", run.stderr);
        assert!(!out.exists(), "{name}: an object was written");
        let code =
            promised_code(&name).unwrap_or_else(|| panic!("{name}: compile fixtures are named after their code"));
        assert!(run.stderr.contains(&format!("[{code}]")), "{name} does not report {code}:\n{}", run.stderr);
        let rendered = format!("exit code: {}\n{}", run.code, run.stderr);
        insta::with_settings!({ input_file => path, omit_expression => true }, {
            insta::assert_snapshot!(format!("compile_{name}"), rendered);
        });
    }
}

#[test]
fn every_code_in_the_source_is_listed_and_has_a_fixture() {
    let mut defined = BTreeSet::new();
    for dir in ["compiler/src", "src"] {
        collect_codes(&repo().join(dir), &mut defined);
    }
    let exempt = NOT_FROM_CHECK.iter().map(|(code, _)| code.to_string());
    let listed: BTreeSet<String> = CODES.iter().map(|code| code.to_string()).chain(exempt).collect();
    assert_eq!(defined, listed, "codes defined in the source (left) differ from CODES + NOT_FROM_CHECK (right)");
    let listed: BTreeSet<String> = CODES.iter().map(|code| code.to_string()).collect();

    let mut reported = BTreeSet::new();
    for path in files_with_extension(&fixture_dir(), "pf") {
        let run = check_fixture(&path, &[]);
        reported.extend(CODES.iter().filter(|code| run.stderr.contains(&format!("[{code}]"))).map(|c| c.to_string()));
    }
    let missing: Vec<&String> = listed.difference(&reported).collect();
    assert!(missing.is_empty(), "codes no fixture reports: {missing:?}");
}

/// Adds every `Code("X0000")` written in the `.rs` files under `dir`.
fn collect_codes(dir: &Path, codes: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_codes(&path, codes);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            for (index, _) in text.match_indices("Code(\"") {
                let code = &text[index + 6..(index + 11).min(text.len())];
                if promised_code(&format!("{code}_")).is_some() {
                    codes.insert(code.to_string());
                }
            }
        }
    }
}

#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(repo().join("docs/diagnostics.md")).expect("docs/diagnostics.md exists");
    let all = CODES.iter().copied().chain(NOT_FROM_CHECK.iter().map(|(code, _)| *code));
    let missing: Vec<&str> = all.filter(|code| !doc.contains(&format!("## {code} — "))).collect();
    assert!(missing.is_empty(), "docs/diagnostics.md has no section for {missing:?}");
}

#[test]
fn json_output_of_a_file_with_several_errors() {
    let path = fixture_dir().join("multiple_errors.pf");
    let run = check_fixture(&path, &["--format", "json"]);
    run.assert_no_crash("multiple_errors --format json");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    let pretty = serde_json::to_string_pretty(&json).expect("JSON prints");
    insta::with_settings!({ input_file => &path, omit_expression => true }, {
        insta::assert_snapshot!("multiple_errors_json", pretty);
    });
}

#[test]
fn json_positions_point_at_each_problem() {
    #[rustfmt::skip]
    let expected: &[(&str, &str, u64, u64)] = &[
        // code,    severity,  line, column
        ("E0005", "error",   4, 30),  // 70000
        ("E0008", "error",   5, 27),  // web, a set of ports, used with an address field
        ("E0014", "error",   6, 10),  // reject (after a tab: columns count characters)
        ("E0003", "error",   6, 20),  // tcp.dprt
        ("E0005", "error",   7, 27),  // 10.0.0.256
        ("E0009", "error",   8, 6),   // the second `a`
        ("W0001", "warning", 9, 1),   // rule e, after the catch-all `a`
    ];
    let run = check_fixture(&fixture_dir().join("multiple_errors.pf"), &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    assert_eq!(json["schema"], "pfc.diagnostics/2");
    let found: Vec<(String, String, u64, u64)> = json["diagnostics"]
        .as_array()
        .expect("an array of diagnostics")
        .iter()
        .map(|diagnostic| {
            assert_eq!(diagnostic["file"], "multiple_errors.pf");
            let text = |key: &str| diagnostic[key].as_str().unwrap_or_default().to_string();
            let number = |key: &str| diagnostic[key].as_u64().unwrap_or_default();
            (text("code"), text("severity"), number("line"), number("column"))
        })
        .collect();
    let expected: Vec<(String, String, u64, u64)> = expected
        .iter()
        .map(|&(code, severity, line, column)| (code.to_string(), severity.to_string(), line, column))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn asm_rule_comments_name_the_included_file_and_line() {
    let run = pfc_in(&fixture_dir(), &["compile", "include_nested_ok.pf", "--emit", "asm"]);
    run.assert_no_crash("compile --emit asm with includes");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let comments: Vec<&str> = run.stdout.lines().map(str::trim).filter(|line| line.starts_with("; rule ")).collect();
    assert_eq!(
        comments,
        ["; rule 0 `ssh_admins`: pass at included/inner.pf:1:1", "; rule 1 `ssh`: drop at included/inner.pf:2:1"]
    );
}
