//! Bad and extreme input to `pfc check`, through the real binary: whatever the bytes,
//! pfc answers with a diagnostic and an exit code (1 for diagnostics, 2 for command-line
//! usage errors), never a panic, a stack overflow or a hang; large valid files are
//! accepted. The tests assert behaviour only: they print how long each run took, and
//! speed is judged by the benchmarks (`benches/`), never by a wall-clock limit here.

mod support;

use std::fmt::Write as _;
use support::{pfc, pfc_in, scratch_dir, Run};

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
fn random_bytes(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Deterministic printable ASCII soup, mostly the language's own characters.
fn random_text(len: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 .:/{}(),=!<>&|#\"\n\t-_";
    random_bytes(len, seed).into_iter().map(|byte| ALPHABET[byte as usize % ALPHABET.len()]).collect()
}

fn repeated(before: &str, unit: &str, times: usize, after: &str) -> Vec<u8> {
    format!("{before}{}{after}", unit.repeat(times)).into_bytes()
}

/// Writes `bytes` to a file and runs `pfc check` on it.
fn check_bytes(test: &str, bytes: &[u8]) -> Run {
    let dir = scratch_dir(test);
    std::fs::write(dir.join("input.pf"), bytes).expect("write input");
    pfc_in(&dir, &["check", "input.pf"])
}

/// `pfc check` on `bytes` exits 1 with a diagnostic that mentions `expected`.
fn rejects(test: &str, bytes: &[u8], expected: &str) {
    let run = check_bytes(test, bytes);
    run.assert_no_crash(test);
    assert_eq!(run.code, 1, "{test}: exit code; stderr:\n{}", run.stderr);
    assert!(run.stderr.contains(expected), "{test}: expected `{expected}` in:\n{}", run.stderr);
}

/// `pfc check` on `bytes` exits 0 without any warning; returns how long it took (printed, never asserted).
fn accepts(test: &str, bytes: &[u8]) -> std::time::Duration {
    let run = check_bytes(test, bytes);
    run.assert_no_crash(test);
    assert_eq!(run.code, 0, "{test}: exit code; stderr:\n{}", truncated(&run.stderr));
    assert!(!run.stderr.contains("warning["), "{test}: warnings:\n{}", truncated(&run.stderr));
    eprintln!("{test}: {} bytes checked in {:?}", bytes.len(), run.elapsed);
    run.elapsed
}

/// The start of a long stderr, enough to see what went wrong.
fn truncated(text: &str) -> String {
    text.chars().take(4000).collect()
}

#[test]
fn malformed_files_get_a_diagnostic_and_exit_1() {
    #[rustfmt::skip]
    let cases: &[(&str, Vec<u8>, &str)] = &[
        ("empty",                    Vec::new(),                                       "E0011"),
        ("only_comments",            b"# nothing here\n\n".to_vec(),                   "E0011"),
        ("random_binary",            random_bytes(4096, 0x9e3779b97f4a7c15),           "E0017"),
        ("non_utf8_latin1",          b"default pass\n# caf\xe9\n".to_vec(),            "E0017"),
        ("non_utf8_lone_byte",       b"\xff".to_vec(),                                 "E0017"),
        ("utf16_bom",                b"\xff\xfed\0e\0f\0".to_vec(),                    "E0017"),
        ("random_ascii",             random_text(4096, 7),                             "error["),
        ("nul_byte",                 b"default pass\0\n".to_vec(),                     "E0001"),
        ("unbalanced_open",          b"default pass\nrule a: drop if ((tcp)\n".to_vec(), "unclosed `(`"),
        ("unbalanced_close",         b"default pass\nrule a: drop if (tcp))\n".to_vec(), "unmatched `)`"),
        ("crossed_brackets",         b"default pass\nrule a: drop if (tcp.dport in {22)}\n".to_vec(), "E0001"),
        ("nested_parens_10000",      repeated("default pass\nrule a: drop if ", "(", 10_000, &format!("tcp{}\n", ")".repeat(10_000))), "E0002"),
        ("unclosed_parens_10000",    repeated("default pass\nrule a: drop if ", "(", 10_000, "tcp\n"), "E0002"),
        ("stacked_nots_10000",       repeated("default pass\nrule a: drop if ", "not ", 10_000, "tcp\n"), "E0002"),
        ("nested_value_parens_10000", repeated("default pass\nrule a: drop if tcp.flags & ", "(", 10_000, &format!("syn{} != 0\n", ")".repeat(10_000))), "E0002"),
        ("nested_braces_10000",      repeated("default pass\nset s: port = ", "{", 10_000, "\n"), "E0002"),
        ("long_and_chain_of_errors", repeated("default pass\nrule a: drop if tcp.dport == 1", " and tcp.dprt == 2", 10_000, "\n"), "E0003"),
        ("one_huge_token",           repeated("default pass\nrule a: drop if ", "x", 1_000_000, "\n"), "E0003"),
        ("huge_number",              repeated("default pass\nrule a: drop if tcp.dport == ", "9", 100_000, "\n"), "E0005"),
    ];
    for (test, bytes, expected) in cases {
        rejects(test, bytes, expected);
    }
}

#[test]
fn unreadable_paths_get_an_error_and_exit_1() {
    let dir = scratch_dir("unreadable_paths");
    std::fs::create_dir_all(dir.join("rules.d")).expect("create directory");
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("no-such-file.pf", "cannot read"),
        ("rules.d",         "is a directory"),
    ];
    for (path, expected) in cases {
        let run = pfc_in(&dir, &["check", path]);
        run.assert_no_crash(path);
        assert_eq!(run.code, 1, "{path}: {}", run.stderr);
        assert!(run.stderr.contains(expected) && run.stderr.contains(path), "{path}: {}", run.stderr);
    }
}

#[test]
fn command_line_usage_errors_exit_2() {
    #[rustfmt::skip]
    let cases: &[&[&str]] = &[
        &[],
        &["check"],
        &["check", "--bogus", "rules-examples/edge.pf"],
        &["check", "--format", "xml", "rules-examples/edge.pf"],
        &["frobnicate"],
    ];
    for args in cases {
        let run = pfc(args);
        run.assert_no_crash(&format!("{args:?}"));
        assert_eq!(run.code, 2, "pfc {args:?}: {}", run.stderr);
        assert!(run.stderr.contains("Usage") || run.stderr.contains("error:"), "pfc {args:?}: {}", run.stderr);
    }
}

#[test]
fn unusual_but_valid_layout_is_accepted() {
    let rules = "hook xdp\ndefault pass\nset web: port = { 80,\n  443 }\n# comment\nrule web: pass if tcp.dport in web\nrule ssh: drop if tcp.dport == 22 # trailing\n";
    #[rustfmt::skip]
    let cases: &[(&str, String)] = &[
        ("crlf",            rules.replace('\n', "\r\n")),
        ("tabs",            rules.replace(' ', "\t")),
        ("no_final_newline", rules.trim_end().to_string()),
        ("indented",        rules.lines().map(|line| format!("    {line}\n")).collect()),
        ("form_feed",       rules.replace("\n#", "\n\u{0C}#")),
        ("utf8_comments",   rules.replace("# comment", "# Größe, 日本語, ✓")),
        ("blank_lines",     rules.replace('\n', "\n\n\n")),
        ("byte_order_mark", format!("\u{feff}{rules}")),
        ("continued_lines", "default pass\nrule ssh: drop if\n  tcp.dport == 22\n  and ip.src in {\n    10.0.0.0/8,\n  }\n".to_string()),
    ];
    for (test, text) in cases {
        accepts(test, text.as_bytes());
    }
}

/// A 10 MB file: one set of 650,000 prefixes, a single statement.
#[test]
fn ten_megabyte_file_is_accepted() {
    let mut text = String::from("default pass\nset many: ip = {\n");
    let mut count = 0u32;
    while text.len() < 10 * 1024 * 1024 {
        let _ = writeln!(text, "  10.{}.{}.{}/32,", (count >> 16) & 255, (count >> 8) & 255, count & 255);
        count += 1;
    }
    text.push_str("}\nrule listed: drop if ip.src in many\n");
    accepts("ten_megabytes", text.as_bytes());
}

/// 100,000 rules of varied shapes.
#[test]
fn hundred_thousand_rules_are_accepted() {
    let mut text = String::from("hook xdp\ndefault pass\nset office: ip = { 10.0.0.0/8, 2001:db8::/32 }\n");
    for index in 0..100_000u32 {
        let (a, b, c) = ((index >> 16) & 255, (index >> 8) & 255, index & 255);
        let _ = match index % 4 {
            0 => {
                writeln!(text, "rule r{index}: drop if tcp.dport == {} and ip.src in 172.{a}.{b}.{c}/32", index % 65536)
            }
            1 => writeln!(
                text,
                "rule r{index}: pass if udp.dport in {{ 53, {} }} and not ip.src in office and ip.dst == 10.{a}.{b}.{c}",
                index % 65536
            ),
            2 => writeln!(
                text,
                "rule r{index}: drop if ip.src == 2001:db8:{a:x}:{b:x}::{c:x} or vlan.id == {}",
                index % 4096
            ),
            _ => {
                writeln!(text, "rule r{index}: drop if tcp.flags & (syn | ack) == syn and ip.dst in 192.{a}.{b}.{c}/32")
            }
        };
    }
    let elapsed = accepts("hundred_thousand_rules", text.as_bytes());
    eprintln!("100,000 rules ({} bytes): {elapsed:?}", text.len());
}

/// A word of megabytes is quoted in messages and underlined only in part: the report
/// stays small (it once echoed a 10 MB word four times, 40 MB of stderr).
#[test]
fn huge_words_are_echoed_cut() {
    #[rustfmt::skip]
    let cases: &[(&str, Vec<u8>, &str)] = &[
        ("huge_statement_word", repeated("", "x", 10_000_000, " y\n"),                               "E0001"),
        ("huge_found_value",    repeated("default pass\nrule a: drop if tcp.dport == ", "é", 5_000_000, "\n"), "E0001"),
        ("huge_unknown_field",  repeated("default pass\nrule a: drop if tcp.", "d", 10_000_000, " == 1\n"), "E0003"),
    ];
    for (test, bytes, expected) in cases {
        let run = check_bytes(test, bytes);
        run.assert_no_crash(test);
        assert_eq!(run.code, 1, "{test}: exit code; stderr:\n{}", truncated(&run.stderr));
        assert!(run.stderr.contains(expected), "{test}: expected `{expected}` in:\n{}", truncated(&run.stderr));
        assert!(run.stderr.contains("more bytes"), "{test}: no cut in:\n{}", truncated(&run.stderr));
        assert!(
            run.stderr.len() < 16 * 1024,
            "{test}: {} bytes of stderr:\n{}",
            run.stderr.len(),
            truncated(&run.stderr)
        );
    }
}
