//! `docs/language.md` read as an outsider would: the reference's promises as data.
//!
//! - `tests/language/SECTION/NAME.pf` with `NAME.test.toml`: a rule file and packets whose
//!   verdicts were written from the reference's words alone (guards on absent and truncated
//!   headers, `not` and `!=`, surface fields, every field's bytes, VLAN/QinQ, IPv6
//!   extension headers, fragments, prefixes, ranges, named values, dynamic sets, pcap
//!   atoms, rate limits, logging). Each runs through `pfc test` under every hook the file
//!   does not fix (the reference promises one meaning under all), in the VM and, with
//!   privileges, in the kernel; `timed/` depends on the case clock, so only in the VM.
//! - Every code block of language.md and pcap.md that is a rule file passes `pfc check`
//!   as shown.
//! - The diagnostic codes language.md names are the codes pfc defines, and the other way
//!   round (retired codes excepted).

#[macro_use]
extern crate pfc_test_support;

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{pfc_in, repo, scratch_dir};

/// The case directories whose outcomes depend on the case clock (rate limits, log limits):
/// the kernel's clock is its own (testing.md), so they run in the VM only.
const TIMED: &str = "timed";

/// Codes language.md names as retired: no longer reported, kept so old links resolve.
const RETIRED: &[&str] = &["E0016", "E0027"];

/// Every `*.pf` under `tests/language`, sorted.
fn rule_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("tests/language")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("tests/language is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|extension| extension == "pf") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The rule file's text under `hook` (its own when it names one), written with its case
/// file into a scratch directory; the directory and the rule file's name.
fn under_hook(test: &str, rules: &Path, hook: &str) -> (PathBuf, String) {
    let relative = rules.strip_prefix(repo().join("tests/language")).expect("under tests/language");
    let stem = relative.with_extension("").to_string_lossy().replace('/', "-");
    let dir = scratch_dir(&format!("{test}-{}-{stem}", hook.replace(' ', "-")));
    let text = std::fs::read_to_string(rules).expect("rule file is readable");
    let text = if text.lines().any(|line| line.starts_with("hook ")) { text } else { format!("hook {hook}\n{text}") };
    std::fs::write(dir.join("r.pf"), text).expect("write rules");
    std::fs::copy(rules.with_extension("test.toml"), dir.join("r.test.toml")).expect("every rule file has a case file");
    (dir, "r.pf".to_string())
}

/// Runs every case file under every hook with `extra` arguments; returns how many packets
/// passed in all. Fails on any failed case, skipped case (VM) or error.
fn run_all(test: &str, extra: &[&str], include_timed: bool) -> usize {
    let mut passed = 0;
    let mut failures = Vec::new();
    for rules in rule_files() {
        if !include_timed && rules.parent().is_some_and(|dir| dir.ends_with(TIMED)) {
            continue;
        }
        for hook in ["xdp", "tc ingress", "tc egress"] {
            let (dir, file) = under_hook(test, &rules, hook);
            let mut args = vec!["test", file.as_str()];
            args.extend_from_slice(extra);
            let run = pfc_in(&dir, &args);
            let name = format!("{} ({hook})", rules.display());
            run.assert_no_crash(&name);
            let summary = run.stdout.lines().rev().find(|line| line.contains(" passed, ")).unwrap_or_default();
            let counts: Vec<usize> =
                summary.split(|c: char| !c.is_ascii_digit()).filter_map(|number| number.parse().ok()).collect();
            let skipped_in_vm = extra.is_empty() && summary.contains("skipped");
            if run.code != 0 || counts.len() < 2 || counts[1] != 0 || skipped_in_vm {
                failures.push(format!("{name}: exit {}\n{}{}", run.code, run.stdout, run.stderr));
            } else {
                passed += counts[0];
            }
        }
    }
    assert!(failures.is_empty(), "{} case files failed:\n{}", failures.len(), failures.join("\n"));
    passed
}

#[test]
fn the_references_cases_pass_in_the_vm_under_every_hook() {
    let passed = run_all("language-vm", &[], true);
    // Three hooks × the cases: a directory that went missing would show here.
    assert!(passed >= 3 * 700, "only {passed} packets ran");
}

#[test]
fn the_references_cases_pass_in_the_kernel_under_every_hook() {
    skip_unless!(support::kernel::no_kernel());
    let passed = run_all("language-kernel", &["--kernel"], false);
    assert!(passed >= 3 * 550, "only {passed} packets ran");
}

/// The fenced blocks of a Markdown text: (line of the opening fence, info string, body).
fn code_blocks(text: &str) -> Vec<(usize, String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (index, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((index + 1, info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(open.take().expect("a block is open")),
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    blocks
}

/// A block that defines a grammar (`CONDITION  = ...`), not rules.
fn is_grammar(body: &str) -> bool {
    body.lines().any(|line| {
        let mut words = line.split_whitespace();
        matches!((words.next(), words.next()), (Some(head), Some("=")) if head.chars().all(|c| c.is_ascii_uppercase()))
    })
}

/// Every code block of `doc` that is rules checks cleanly as shown; blocks that are
/// fragments (no `default`) get `default pass` in front. A block headed `# NAME.txt` is a
/// set file the block before it names; a set file the text names but does not show gets
/// one address, so the rules around it can be checked. Grammars, listings (`;`) and
/// command lines (`pfc …`) are not rules. Returns how many blocks were checked.
fn check_rule_blocks(doc: &str) -> usize {
    let text = std::fs::read_to_string(repo().join("docs").join(doc)).expect("the doc is readable");
    let dir = scratch_dir(&format!("blocks-{doc}"));
    let blocks = code_blocks(&text);
    for (line, _, body) in &blocks {
        if let Some(name) = body.lines().next().and_then(|first| first.strip_prefix("# ")) {
            let name = name.split_whitespace().next().unwrap_or_default();
            if name.ends_with(".txt") {
                std::fs::write(dir.join(name), body).unwrap_or_else(|e| panic!("{doc}:{line}: {e}"));
            }
        }
    }
    let mut checked = 0;
    for (line, info, body) in &blocks {
        let first = body.lines().next().unwrap_or_default();
        let is_set_file =
            first.starts_with("# ") && first.split_whitespace().nth(1).is_some_and(|n| n.ends_with(".txt"));
        let not_rules = is_grammar(body) || is_set_file || first.starts_with("pfc ");
        if !info.is_empty() || not_rules || body.trim_start().starts_with(';') {
            continue;
        }
        for (index, _) in body.match_indices("file \"") {
            let name = body[index + 6..].split('"').next().expect("a quoted path");
            if !dir.join(name).exists() {
                std::fs::write(dir.join(name), "192.0.2.1\n").expect("write a set file");
            }
        }
        let rules = if body.lines().any(|l| l.starts_with("default ")) {
            body.clone()
        } else {
            format!("default pass\n{body}")
        };
        let file = format!("block-{line}.pf");
        std::fs::write(dir.join(&file), rules).expect("write the block");
        let run = pfc_in(&dir, &["check", &file]);
        run.assert_no_crash(&file);
        assert_eq!(run.code, 0, "docs/{doc}:{line}: the block does not check:\n{body}\n{}", run.stderr);
        assert!(!run.stderr.contains("error["), "docs/{doc}:{line}:\n{}", run.stderr);
        checked += 1;
    }
    checked
}

#[test]
fn every_rule_block_of_language_md_and_pcap_md_checks() {
    let checked = check_rule_blocks("language.md");
    assert!(checked >= 5, "only {checked} rule blocks found in language.md");
    let checked = check_rule_blocks("pcap.md");
    assert!(checked >= 1, "only {checked} rule blocks found in pcap.md");
}

/// The `E0000`/`W0000` codes in a text.
fn codes_in(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut codes = BTreeSet::new();
    for start in 0..bytes.len().saturating_sub(4) {
        let word = &bytes[start..start + 5];
        let boundary = |at: usize| !matches!(bytes.get(at), Some(b) if b.is_ascii_alphanumeric());
        let before = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        if matches!(word[0], b'E' | b'W') && word[1..].iter().all(u8::is_ascii_digit) && before && boundary(start + 5) {
            codes.insert(String::from_utf8_lossy(word).into_owned());
        }
    }
    codes
}

/// The codes pfc defines: every `Code("…")` in the compiler's and the CLI's sources.
fn defined_codes() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let mut dirs = vec![repo().join("compiler/src"), repo().join("src"), repo().join("runtime/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let source = std::fs::read_to_string(&path).expect("a source file");
                for (index, _) in source.match_indices("Code(\"") {
                    codes.extend(codes_in(&source[index + 6..index + 11]));
                }
            }
        }
    }
    codes
}

#[test]
fn language_md_names_exactly_the_codes_pfc_defines() {
    let doc = codes_in(&std::fs::read_to_string(repo().join("docs/language.md")).expect("docs/language.md"));
    let defined = defined_codes();
    assert!(defined.len() >= 30, "found only {defined:?}");
    let retired: BTreeSet<String> = RETIRED.iter().map(|code| code.to_string()).collect();
    let unknown: Vec<_> = doc.difference(&defined).filter(|code| !retired.contains(*code)).collect();
    let missing: Vec<_> = defined.difference(&doc).collect();
    assert!(unknown.is_empty(), "language.md names codes pfc does not define: {unknown:?}");
    assert!(missing.is_empty(), "language.md never names these codes pfc defines: {missing:?}");
    let revived: Vec<_> = retired.intersection(&defined).collect();
    assert!(revived.is_empty(), "codes language.md calls retired are defined: {revived:?}");
}
