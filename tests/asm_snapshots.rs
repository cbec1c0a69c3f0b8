//! Golden listings: every `rules-examples/*.pf` is compiled by the real `pfc` binary with
//! `--emit asm` and `--emit ir`, and each listing is compared with its insta snapshot
//! (`tests/snapshots/asm_snapshots__{asm,ir}_<example>.snap`).
//!
//! A change to the code generator shows up here as a reviewable diff of the generated
//! instructions; accept it with `cargo insta review` once it has been read. Rules of an
//! included file are listed with that file's name, line and column.

mod support;

use std::path::Path;

use support::{files_with_extension, pfc, repo};

/// The example's file stem (`edge` for `rules-examples/edge.pf`).
fn example_name(path: &Path) -> String {
    path.file_stem().and_then(|stem| stem.to_str()).expect("example names are UTF-8").to_string()
}

/// `pfc compile EXAMPLE --emit KIND`: must succeed; returns the listing on stdout.
fn listing(path: &Path, kind: &str) -> String {
    let relative = path.strip_prefix(repo()).expect("examples live in the repository");
    let file = relative.to_str().expect("example paths are UTF-8");
    let run = pfc(&["compile", file, "--emit", kind]);
    run.assert_no_crash(file);
    assert_eq!(run.code, 0, "{file} --emit {kind}: exit code\n{}", run.stderr);
    assert!(!run.stdout.is_empty(), "{file} --emit {kind}: empty listing");
    run.stdout
}

fn snapshot_every_example(kind: &str) {
    let examples = files_with_extension(&repo().join("rules-examples"), "pf");
    assert!(!examples.is_empty(), "no rules-examples/*.pf");
    for path in &examples {
        let text = listing(path, kind);
        insta::with_settings!({ input_file => path, omit_expression => true }, {
            insta::assert_snapshot!(format!("{kind}_{}", example_name(path)), text);
        });
    }
}

#[test]
fn every_example_disassembles_to_its_snapshot() {
    snapshot_every_example("asm");
}

#[test]
fn every_example_lowers_to_its_ir_snapshot() {
    snapshot_every_example("ir");
}

/// Rules written in an included file say so in the listing: their comment names the file
/// they are written in (as reached from the rule file pfc was given), line and column.
#[test]
fn rules_from_included_files_name_their_file_in_the_listing() {
    let object = support::scratch_dir("asm_include").join("r.o").display().to_string();
    let run = pfc(&["compile", "tests/diagnostics/include_nested_ok.pf", "--emit", "asm", "-o", &object]);
    run.assert_no_crash("include_nested_ok.pf");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let comments: Vec<&str> = run.stdout.lines().map(str::trim).filter(|line| line.starts_with("; rule ")).collect();
    assert_eq!(
        comments,
        [
            "; rule 0 `ssh_admins`: pass at tests/diagnostics/included/inner.pf:1:1",
            "; rule 1 `ssh`: drop at tests/diagnostics/included/inner.pf:2:1",
        ]
    );
}

/// pcap atoms whose verdict is the same on every frame emit no code: in the listing of
/// `tests/data/pcap-constant-atoms.pf` only the live atom has a block (the true one's bit
/// is set in the word's first value, the false ones' are not).
#[test]
fn constant_pcap_atoms_emit_no_code() {
    let file = "tests/data/pcap-constant-atoms.pf";
    let run = pfc(&["compile", file, "--emit", "asm"]);
    run.assert_no_crash(file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let atoms: Vec<&str> = run.stdout.lines().map(str::trim).filter(|line| line.starts_with("; pcap atom")).collect();
    let constant = atoms.iter().filter(|line| line.contains("on every frame, no code")).count();
    assert_eq!((atoms.len(), constant), (4, 3), "only the live atom has code:\n{}", run.stdout);
    insta::assert_snapshot!("asm_pcap_constant_atoms", run.stdout);
}

/// The table-driven classifier's walker (`compiler/src/codegen/table.rs`), forced on the
/// small 5-tuple list `tests/data/table-classifier.pf` (the default compile keeps such a
/// set inline): node walk, candidate slots and the counter tail, reviewable as a diff.
#[test]
fn a_small_table_classifier_disassembles_to_its_snapshot() {
    use pfc_compiler::codegen::{Form, Options};
    let text = std::fs::read_to_string(repo().join("tests/data/table-classifier.pf")).expect("the rule file");
    let (compiled, diagnostics) = pfc_compiler::compile::compile_form(&text, Options::default(), Some(Form::Table));
    let compiled = compiled.unwrap_or_else(|| panic!("the set compiles as a table: {diagnostics:?}"));
    let listing = compiled.code.disassemble();
    assert!(listing.contains("classifier table:"), "not in table form:\n{listing}");
    insta::assert_snapshot!("asm_table_classifier", listing);
}
