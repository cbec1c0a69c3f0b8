//! Malformed set files named by rule files (`set NAME: TYPE [dynamic …] = file "F"`),
//! through the real binary in bounded memory (1 GiB of address space, two minutes):
//! binary content (a NUL byte, bytes that are not UTF-8), a 10 MB line, 10M lines (past
//! a dynamic set's size, over the file-size limit, and of a few elements repeated, which
//! a static or dynamic set reads in bounded memory), bad prefixes, garbage and the wrong
//! family. Each gets an error at the set file's
//! line and column (file:line:col), exit 1, and no raw control byte on the terminal.
//! `pfc set … --file` with the same files against a running filter is in
//! `tests/load_attach/set_files.rs` (it needs a kernel).

mod support;

use std::path::Path;

use support::{pfc_bounded, scratch_dir, Run};

/// `pfc check` of a rule file whose set `s` (declared `declaration`, e.g. `ip dynamic
/// size 1000`) reads `bytes` from `list.txt`; the run, exit code and output checked.
fn check_set_file(test: &str, declaration: &str, bytes: &[u8], expected: &[&str]) -> Run {
    let dir = scratch_dir(test);
    std::fs::write(dir.join("list.txt"), bytes).expect("write set file");
    let rules = format!("default pass\nset s: {declaration} = file \"list.txt\"\nrule r: drop if ip.src in s\n");
    std::fs::write(dir.join("r.pf"), rules).expect("write rules");
    let run = run_checked(test, &dir, &["check", "r.pf"], expected);
    println!("{test}: {} ms, {} bytes on stderr", run.elapsed.as_millis(), run.stderr.len());
    run
}

/// `pfc ARGS` in `dir` exits 1 with every string of `expected` on stderr and no raw
/// terminal control character.
fn run_checked(test: &str, dir: &Path, args: &[&str], expected: &[&str]) -> Run {
    let run = pfc_bounded(dir, args);
    run.assert_no_crash(test);
    let shown: String = run.stderr.chars().take(4000).collect();
    assert_eq!(run.code, 1, "{test}: exit code; stderr:\n{shown}");
    for text in expected {
        assert!(run.stderr.contains(text), "{test}: expected `{text}` in:\n{shown}");
    }
    let raw = run.stderr.chars().find(|c| c.is_control() && *c != '\n' && *c != '\t');
    assert!(raw.is_none(), "{test}: raw control character {raw:?} in:\n{shown:?}");
    run
}

/// `lines` lines of `line`, each ending in a newline.
fn lines(line: &str, lines: usize) -> Vec<u8> {
    format!("{line}\n").repeat(lines).into_bytes()
}

#[test]
fn binary_set_files_are_refused_at_their_first_binary_byte() {
    for declaration in ["ip", "ip dynamic size 1000"] {
        check_set_file(
            "set_file_nul",
            declaration,
            b"10.0.0.1\n10.0.0.2\n10.0.\x003\n",
            &["E0023", "list.txt:3:6: is not a text file (a NUL byte at byte offset 23"],
        );
        check_set_file(
            "set_file_not_utf8",
            declaration,
            b"10.0.0.1\n  \xff\xfe\x01",
            &["E0023", "list.txt:2:3: is not a text file (byte 0xff, not UTF-8 at byte offset 11"],
        );
    }
    // A file of zeros (a sparse or preallocated file): the first byte.
    check_set_file("set_file_zeros", "ip", &vec![0; 1 << 20], &["E0023", "list.txt:1:1: is not a text file"]);
}

#[test]
fn a_ten_megabyte_line_is_one_short_diagnostic() {
    let line = "10.0.0.1 ".repeat((10 << 20) / 9);
    let bytes = format!("192.0.2.1\n{line}\n10.0.0.2\n").into_bytes();
    let length = format!("({} bytes) is not a set element", line.trim_end().len());
    let run = check_set_file(
        "set_file_long_line",
        "ip dynamic size 1000",
        &bytes,
        &["E0024", "list.txt:2:1", &length, "more bytes not shown)"],
    );
    // The line is cut where it is shown: the diagnostic is kilobytes, not megabytes.
    assert!(run.stderr.len() < 4096, "{} bytes on stderr", run.stderr.len());
}

#[test]
fn ten_million_lines_past_a_dynamic_sets_size_stop_at_the_first_line_too_many() {
    // 30 MB: under the 256 MiB set-file limit, so it is read; 2,000 distinct addresses,
    // then one repeated: reading stops at line 1,001, the 1,001st distinct element.
    let mut bytes: Vec<u8> = (0..2_000).flat_map(|index| format!("::{index:x}\n").into_bytes()).collect();
    bytes.extend(lines("::", 10_000_000 - 2_000));
    let run = check_set_file(
        "set_file_ten_million_lines",
        "ip dynamic size 1000",
        &bytes,
        &["E0025", "dynamic set `s` holds at most 1000 elements; its set file has more", "list.txt:1001:1"],
    );
    assert_eq!(run.stderr.matches("error[").count(), 1, "{}", run.stderr);
}

#[test]
fn ten_million_lines_of_few_elements_take_memory_for_the_elements() {
    // 10M lines (35 MB) of three distinct elements repeated (`::`, `10.0.0.0/8` also
    // written `10.1.2.3/8`), then a fourth: read in bounded memory (a 1 GiB address
    // space; each element kept once, not once per line). A static set and a dynamic set
    // of size 3 compile (the repeats do not count against the size); at size 2 the fourth
    // element's line is the first past it.
    let dir = scratch_dir("set_file_repeated_lines");
    let mut bytes = lines("::", 5_000_000);
    bytes.extend(lines("10.0.0.0/8\n10.1.2.3/8\n::0", 5_000_000 / 3));
    bytes.extend(b"192.0.2.1\n");
    std::fs::write(dir.join("list.txt"), bytes).expect("write set file");
    for declaration in ["ip", "ip dynamic size 3"] {
        let rules = format!("default pass\nset s: {declaration} = file \"list.txt\"\nrule r: drop if ip.src in s\n");
        std::fs::write(dir.join("r.pf"), rules).expect("write rules");
        let run = pfc_bounded(&dir, &["compile", "r.pf", "-o", "r.o"]);
        run.assert_no_crash("set_file_repeated_lines");
        assert_eq!(run.code, 0, "{declaration}: {}", run.stderr);
        println!("{declaration}: {} ms", run.elapsed.as_millis());
    }
    check_set_file(
        "set_file_repeated_lines_past_size",
        "ip dynamic size 2",
        &std::fs::read(dir.join("list.txt")).expect("read set file"),
        &["E0025", "list.txt:9999999:1"],
    );
}

#[test]
fn a_set_file_over_the_size_limit_is_refused_unread() {
    // 257 MiB (sparse: a line, then NUL bytes that are never read): over 256 MiB,
    // refused before reading, static or dynamic.
    for declaration in ["ip", "ip dynamic size 16777216"] {
        let test = "set_file_too_large";
        let dir = scratch_dir(test);
        let file = std::fs::File::create(dir.join("list.txt")).expect("create set file");
        std::io::Write::write_all(&mut &file, b"10.0.0.1\n").expect("write set file");
        file.set_len(257 << 20).expect("grow set file");
        let rules = format!("default pass\nset s: {declaration} = file \"list.txt\"\nrule r: drop if ip.src in s\n");
        std::fs::write(dir.join("r.pf"), rules).expect("write rules");
        run_checked(test, &dir, &["check", "r.pf"], &["E0023", "is larger than 256 MiB"]);
    }
}

#[test]
fn a_million_commented_lines_over_64_mib_are_read_to_the_end() {
    // 1M lines of 100 bytes (an address and a comment: 95 MiB, over the limit pfc had
    // before), then two other addresses: read to its last line (E0025 there, in
    // bounded memory: the repeats are skipped as read).
    let comment = format!("# {}", "feed entry, first seen 2026-12-01, ".repeat(3));
    let mut bytes = lines(&format!("10.0.0.1    {comment:.87}"), 1_000_000);
    assert_eq!(bytes.len(), 100_000_000);
    bytes.extend_from_slice(b"10.0.0.2\n10.0.0.3\n");
    check_set_file("set_file_95_mib", "ip dynamic size 2", &bytes, &["E0025", "list.txt:1000002:1"]);
}

#[test]
fn bad_prefixes_garbage_and_wrong_families_point_into_the_set_file() {
    let bytes = b"10.0.0.0/8\n10.0.0.0/33\n::1/129\n10.1.2.3/8\ngarbage\n10.0.0.0/x\n80\n";
    let expected = [
        "E0005",
        "prefix length /33 is out of range",
        "list.txt:2:10",
        "prefix length /129 is out of range",
        "list.txt:3:5",
        "unknown name `garbage`",
        "list.txt:5:1",
        "E0024",
        "list.txt:6:1",
        "E0008",
        "list.txt:7:1",
        "5 error(s)",
    ];
    for declaration in ["ip", "ip dynamic size 1000"] {
        check_set_file("set_file_bad_prefixes", declaration, bytes, &expected);
    }
    // Host bits are ignored (language.md §2): `10.1.2.3/8` alone is fine.
    let dir = scratch_dir("set_file_host_bits");
    std::fs::write(dir.join("list.txt"), "10.1.2.3/8\n").expect("write set file");
    std::fs::write(dir.join("r.pf"), "default pass\nset s: ip = file \"list.txt\"\nrule r: drop if ip.src in s\n")
        .expect("write rules");
    let run = pfc_bounded(&dir, &["check", "r.pf"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // An IPv6 prefix in an ipv4 set, an address in a port set.
    check_set_file("set_file_wrong_family", "ipv4 dynamic", b"10.0.0.1\n2001:db8::/32\n", &["E0008", "list.txt:2:1"]);
    let dir = scratch_dir("set_file_wrong_type");
    std::fs::write(dir.join("list.txt"), "80\n10.0.0.1\n").expect("write set file");
    std::fs::write(
        dir.join("r.pf"),
        "default pass\nset p: port dynamic = file \"list.txt\"\nrule r: drop if tcp.dport in p\n",
    )
    .expect("write rules");
    run_checked("set_file_wrong_type", &dir, &["check", "r.pf"], &["E0008", "list.txt:2:1"]);
}

#[test]
fn a_file_of_bad_lines_stops_after_a_hundred() {
    let run = check_set_file(
        "set_file_all_bad",
        "ip",
        &lines("not an address", 1_000_000),
        &["E0024", "list.txt:100:1", "100 bad lines: pfc read no further in this set file", "100 error(s)"],
    );
    assert!(!run.stderr.contains("list.txt:101:"), "{}", run.stderr);
}

/// A byte-order mark at the start of a set file (Windows editors and exports write one)
/// is skipped: the first line is an element, and columns count from after the mark.
#[test]
fn a_byte_order_mark_is_skipped() {
    check_set_file("set_file_bom_error", "ip", "\u{feff}10.0.0.0/33\n".as_bytes(), &["E0005", "list.txt:1:10"]);
    // Not a byte-order mark, but as invisible a trap: a part with a leading zero, which
    // inet_aton reads as octal.
    check_set_file(
        "set_file_leading_zero",
        "ip",
        b"10.0.0.1\n10.0.0.010\n",
        &["E0005", "list.txt:2:1", "`010` has a leading zero"],
    );
    // A mark inside the file (two lists joined with `cat`) or a no-break space is not
    // skipped, and the error names it: the line looks like a good element.
    check_set_file(
        "set_file_inner_bom",
        "ip",
        "10.0.0.1\n\u{feff}10.0.0.2\n".as_bytes(),
        &["E0024", "list.txt:2:1", "the line holds U+FEFF, which is not ASCII"],
    );
    check_set_file("set_file_nbsp", "ip", "10.0.0.1\u{a0}/8\n".as_bytes(), &["E0024", "U+00A0"]);
    let dir = scratch_dir("set_file_bom");
    std::fs::write(dir.join("list.txt"), "\u{feff}10.0.0.0/8\n192.0.2.1\n").expect("write set file");
    std::fs::write(dir.join("r.pf"), "default pass\nset s: ip = file \"list.txt\"\nrule r: drop if ip.src in s\n")
        .expect("write rules");
    let run = pfc_bounded(&dir, &["check", "r.pf"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
