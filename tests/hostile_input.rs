//! Unbounded and hostile input, through the real binary: files that never end or never
//! open (`/dev/zero`, FIFOs), huge case files, `expect = []`, random captures and case
//! files, out-of-range `--watch`, and terminal control bytes in what pfc echoes. Every
//! one gets a clear error and an exit code, in bounded memory: each run here has a
//! 1 GiB address-space limit and is killed after two minutes (a hang is a failure, not
//! a stuck test run).

mod support;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use support::{pfc_bounded, scratch_dir, Run};

const RULES: &str = "default pass\nrule ssh: drop if tcp.dport == 22\nrule dns: pass if udp.dport == 53\n";

/// A scratch directory with `r.pf` and `files`.
fn setup(test: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let dir = scratch_dir(test);
    std::fs::write(dir.join("r.pf"), RULES).expect("write rules");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write file");
    }
    dir
}

/// `pfc ARGS` in `dir` exits with `code`, prints every string of `expected` (stdout or
/// stderr), and writes no raw terminal control byte.
fn check(test: &str, dir: &Path, args: &[&str], code: i32, expected: &[&str]) -> Run {
    let run = pfc_bounded(dir, args);
    run.assert_no_crash(test);
    let both = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, code, "{test}: exit code; output:\n{both}");
    for text in expected {
        assert!(both.contains(text), "{test}: expected `{text}` in:\n{both}");
    }
    let raw = both.chars().find(|c| (c.is_control() && *c != '\n' && *c != '\t') || *c == '\u{202e}');
    assert!(raw.is_none(), "{test}: raw control character {raw:?} in:\n{both:?}");
    run
}

fn mkfifo(path: &Path) {
    let name = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: `name` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// A classic little-endian pcap with Ethernet link type.
fn pcap(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    for frame in frames {
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

fn ssh_frame() -> Vec<u8> {
    pfc_compiler::packet::Packet::eth().ipv4("192.0.2.1", "10.0.0.2").tcp(1000, 22).build()
}

#[rustfmt::skip]
#[test]
fn files_that_never_end_or_never_open_are_refused() {
    let dir = setup("never_end", &[("pcap.test.toml", b"[[case]]\nname = \"f\"\npcap = \"fifo\"\nexpect = \"drop\"\n")]);
    mkfifo(&dir.join("fifo"));
    mkfifo(&dir.join("fifo.pf"));
    let refused = |test: &str, args: &[&str], expected: &str| {
        check(test, &dir, args, 1, &[expected, "pfc reads regular files only"]);
    };
    refused("pcap_dev_zero",  &["test", "r.pf", "--pcap", "/dev/zero", "--verdicts"], "/dev/zero: is a character device, not a capture");
    refused("pcap_fifo",      &["test", "r.pf", "--pcap", "fifo", "--verdicts"],      "fifo: is a FIFO (named pipe), not a capture");
    refused("cases_fifo",     &["test", "r.pf", "--cases", "fifo"],                   "fifo: is a FIFO (named pipe), not a case file");
    refused("cases_dev_zero", &["test", "r.pf", "--cases", "/dev/zero"],              "/dev/zero: is a character device, not a case file");
    refused("case_pcap_fifo", &["test", "r.pf", "--cases", "pcap.test.toml"],         "pcap.test.toml:2: case `f`: ");
    refused("rules_fifo",     &["check", "fifo.pf"],                                  "fifo.pf: is a FIFO (named pipe), not a rule file");
    refused("rules_dev_zero", &["compile", "/dev/zero", "-o", "x.o"],                 "/dev/zero: is a character device, not a rule file");
    refused("test_rules_fifo", &["test", "fifo.pf"],                                  "fifo.pf: is a FIFO (named pipe), not a rule file");
    refused("rules_dir",      &["check", "."],                                        ".: is a directory, not a rule file");
    // `pfc load` looks for the ELF magic first: that look must not wait for a writer either.
    refused("load_fifo",      &["load", "fifo.pf", "--iface", "lo"],                  "fifo.pf: is a FIFO (named pipe), not a rule file");
}

#[test]
fn a_twenty_thousand_case_file_runs() {
    let mut cases = String::new();
    for index in 0..20_000 {
        let (packet, expect) = if index % 2 == 0 { ("tcp dport=22", "drop") } else { ("udp dport=53", "pass") };
        cases.push_str(&format!(
            "[[case]]\nname = \"c{index}\"\npacket = \"ipv4 / {packet}\"\nexpect = \"{expect}\"\n\n"
        ));
    }
    let dir = setup("twenty_thousand", &[("r.test.toml", cases.as_bytes())]);
    let run = check("twenty_thousand", &dir, &["test", "r.pf"], 0, &["20000 passed, 0 failed"]);
    eprintln!("20,000 cases: {:?}", run.elapsed);
}

#[rustfmt::skip]
#[test]
fn empty_expectation_lists_are_errors_with_a_position() {
    let capture = pcap(&[&ssh_frame()]);
    let bad = |test: &str, cases: &str, expected: &str| {
        let dir = setup(test, &[("r.test.toml", cases.as_bytes()), ("c.pcap", &capture)]);
        check(test, &dir, &["test", "r.pf"], 1, &[expected]);
    };
    bad("expect_empty",          "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = []\n",                  "r.test.toml:4:10: case `cap`: `expect` needs at least one verdict");
    bad("expect_empty_rule",     "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = []\nrule = \"ssh\"\n",  "r.test.toml:4:10: case `cap`: `expect` needs at least one verdict");
    bad("rule_empty",            "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = \"drop\"\nrule = []\n",  "r.test.toml:5:8: case `cap`: `rule` needs at least one rule name");
    bad("expect_empty_packet",   "[[case]]\nname = \"p\"\npacket = \"tcp\"\nexpect = []\n",                      "r.test.toml:4:10: case `p`: `expect` needs at least one verdict");
}

#[rustfmt::skip]
#[test]
fn hostile_captures_get_a_clear_error() {
    let mut huge_claim = pcap(&[]);
    huge_claim.extend_from_slice(&[0; 8]);
    huge_claim.extend_from_slice(&u32::MAX.to_le_bytes());
    huge_claim.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut truncated_record = pcap(&[&ssh_frame()]);
    truncated_record.extend_from_slice(&[0; 10]);
    let mut zeros_after_header = pcap(&[]);
    zeros_after_header.resize(24 + 16 * 1000, 0);
    let mut bogus_version = pcap(&[&ssh_frame()]);
    bogus_version[4..6].copy_from_slice(&99u16.to_le_bytes());
    // A snap length of 54: the second frame was 1,000 bytes on the wire.
    let mut cut = pcap(&[&ssh_frame(), &ssh_frame()[..54]]);
    let second = 24 + 16 + ssh_frame().len();
    cut[second + 12..second + 16].copy_from_slice(&1000u32.to_le_bytes());
    let cases: &[(&str, Vec<u8>, i32, &str)] = &[
        ("snap_length_cut",     cut,                0, "note: c.pcap: 1 frame was captured cut short (the first: packet 1, 54 of 1000 bytes): pfc judges the bytes captured"),
        ("huge_claimed_length", huge_claim,         1, "c.pcap: packet 0 has 4294967295 bytes; test packets have at most 65536"),
        ("bogus_version",       bogus_version,      1, "c.pcap: pcap format version 99.4 is not 2.x"),
        ("truncated_record",    truncated_record,   1, "c.pcap: packet 1 is truncated"),
        ("zero_length_records", zeros_after_header, 0, "\"packet\":999"),
    ];
    for (test, bytes, code, expected) in cases {
        let dir = setup(test, &[("c.pcap", bytes)]);
        check(test, &dir, &["test", "r.pf", "--pcap", "c.pcap", "--verdicts"], *code, &[expected]);
    }
}

/// A little-endian pcapng block of `block_type` around `body` (padded to 4 bytes).
fn ng_block(block_type: u32, mut body: Vec<u8>) -> Vec<u8> {
    body.resize(body.len().div_ceil(4) * 4, 0);
    let len = (12 + body.len()) as u32;
    [block_type.to_le_bytes().to_vec(), len.to_le_bytes().to_vec(), body, len.to_le_bytes().to_vec()].concat()
}

/// An option `code` with `value`, its length field saying `claimed`.
fn ng_option(code: u16, value: &[u8], claimed: u16) -> Vec<u8> {
    let mut out = [code.to_le_bytes(), claimed.to_le_bytes()].concat();
    out.extend_from_slice(value);
    out.resize(4 + value.len().div_ceil(4) * 4, 0);
    out
}

/// A pcapng file: a section header (28 bytes without options), an Ethernet interface
/// (at byte 28) and one enhanced packet of `frame`, each block with its options.
fn pcapng(shb_options: &[u8], idb_options: &[u8], epb_options: &[u8], frame: &[u8]) -> Vec<u8> {
    let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    shb.extend_from_slice(shb_options);
    let mut idb = vec![1, 0, 0, 0, 0xff, 0xff, 0, 0];
    idb.extend_from_slice(idb_options);
    let mut epb = [0u32, 0, 1, frame.len() as u32, frame.len() as u32].map(u32::to_le_bytes).concat();
    epb.extend_from_slice(frame);
    epb.resize(epb.len().div_ceil(4) * 4, 0);
    epb.extend_from_slice(epb_options);
    [ng_block(0x0a0d_0d0a, shb), ng_block(1, idb), ng_block(6, epb)].concat()
}

/// pcapng options whose value runs past their block are refused, as tshark refuses them
/// ("Not enough data to handle option of length 200"); libpcap refuses them in the
/// interface block. A tail of fewer than 4 bytes after the last option is taken, as both take it.
#[rustfmt::skip]
#[test]
fn pcapng_options_past_their_block_are_refused() {
    let frame = ssh_frame();
    let comment = ng_option(1, b"a comment", 9);
    let end = ng_option(0, b"", 0);
    let epb_at = 28 + 20;
    let cases: Vec<(&str, Vec<u8>, i32, String)> = vec![
        ("ng_options_fit",   pcapng(&[comment.clone(), end.clone()].concat(), &[ng_option(9, &[9], 1), end.clone()].concat(), &comment, &frame), 0, "\"verdict\":\"drop\"".to_string()),
        ("ng_short_tail",    pcapng(&[], &[2, 0], &[], &frame), 0, "\"verdict\":\"drop\"".to_string()),
        ("ng_shb_overrun",   pcapng(&ng_option(4, b"abcd", 100), &[], &[], &frame), 1, "c.pcap: pcapng block at byte 0 is malformed: its option at byte 24 (code 4) claims 100 bytes, past the end of the block".to_string()),
        ("ng_idb_overrun",   pcapng(&[], &ng_option(2, b"eth0", 200), &[], &frame), 1, "c.pcap: pcapng block at byte 28 is malformed: its option at byte 44 (code 2) claims 200 bytes".to_string()),
        ("ng_tsresol_cut",   pcapng(&[], &[9, 0, 8, 0], &[], &frame), 1, "pcapng block at byte 28 is malformed: its option at byte 44 (code 9) claims 8 bytes".to_string()),
        ("ng_epb_overrun",   pcapng(&[], &[], &ng_option(1, b"hello", 300), &frame), 1, format!("pcapng block at byte {epb_at} is malformed: its option at byte {} (code 1) claims 300 bytes", epb_at + 8 + 20 + frame.len().div_ceil(4) * 4)),
    ];
    for (test, bytes, code, expected) in cases {
        let dir = setup(test, &[("c.pcap", &bytes)]);
        check(test, &dir, &["test", "r.pf", "--pcap", "c.pcap", "--verdicts"], code, &[&expected]);
    }
}

/// Deterministic pseudo-random numbers (xorshift), so a failure can be reproduced.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `bytes` with a few bytes overwritten, inserted or cut.
    fn mutate(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for _ in 0..1 + self.next() % 4 {
            let at = (self.next() as usize) % (out.len() + 1);
            match self.next() % 3 {
                0 if at < out.len() => out[at] = self.next() as u8,
                1 => out.insert(at, self.next() as u8),
                _ => out.truncate(at.max(1)),
            }
        }
        out
    }
}

#[test]
fn mutated_captures_and_case_files_never_crash_pfc() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let capture = pcap(&[&ssh_frame(), &ssh_frame()]);
    let cases = "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = [\"drop\", \"drop\"]\nrule = \"ssh\"\n\n\
                 [[case]]\nname = \"spec\"\npacket = \"ipv4 / udp dport=53\"\nexpect = \"pass\"\n";
    let dir = setup("mutated", &[]);
    for round in 0..24 {
        std::fs::write(dir.join("c.pcap"), random.mutate(&capture)).expect("write capture");
        std::fs::write(dir.join("r.test.toml"), random.mutate(cases.as_bytes())).expect("write cases");
        let args: &[&str] =
            if round % 2 == 0 { &["test", "r.pf"] } else { &["test", "r.pf", "--pcap", "c.pcap", "--verdicts"] };
        let run = pfc_bounded(&dir, args);
        run.assert_no_crash(&format!("round {round}"));
        assert!(run.code == 0 || run.code == 1, "round {round}: exit {}:\n{}", run.code, run.stderr);
    }
}

#[rustfmt::skip]
#[test]
fn terminal_controls_from_user_data_are_escaped() {
    let rules_with_controls = "default pass\nrule a\u{1b}]0;pwned\u{7}: drop if tcp.dport == 22\u{1b}[2J\n";
    let bad_cases = "[[case]]\nname = \"\\u001b[31mred\\r\"\npacket = \"ipv4 / tcp dport=22\"\nexpect = \"pass\"\n\n\
                     [[case]]\nname = \"\\u001b[31mred\\r\"\npacket = \"ipv4 / tcp dport=22\"\nexpect = \"pass\"\n";
    let failing_case = "[[case]]\nname = \"\\u001b]8;;http://x\\u0007link\\u202e\"\npacket = \"ipv4 / tcp dport=22\"\nexpect = \"pass\"\n";
    let dir = setup("controls", &[
        ("controls.pf", rules_with_controls.as_bytes()),
        ("dup.test.toml", bad_cases.as_bytes()),
        ("fail.test.toml", failing_case.as_bytes()),
        ("bad\u{1b}[2Jname.pf", b"default pass\nrule x: drop if tcp.dprt == 1\n"),
    ]);
    check("rule_file", &dir, &["check", "controls.pf"], 1,
        &["expected `:`, found `\\u{1b}]0;pwned\\u{7}:`", "rule a\\u{1b}]0;pwned\\u{7}: drop if tcp.dport == 22\\u{1b}[2J"]);
    check("test_rule_file", &dir, &["test", "controls.pf"], 1, &["\\u{1b}]0;pwned"]);
    check("duplicate_case", &dir, &["test", "r.pf", "--cases", "dup.test.toml"], 1,
        &["a second case named `\\u{1b}[31mred\\u{d}`"]);
    check("failing_case", &dir, &["test", "r.pf", "--cases", "fail.test.toml"], 1,
        &["FAIL \\u{1b}]8;;http://x\\u{7}link\\u{202e} (line 2)"]);
    check("file_name", &dir, &["check", "bad\u{1b}[2Jname.pf"], 1, &["bad\\u{1b}[2Jname.pf:2:"]);
    check("missing_file_name", &dir, &["check", "no\u{7}such.pf"], 1, &["no\\u{7}such.pf: cannot read"]);
    // clap drops escape sequences from what it echoes; pfc escapes what is left (CR).
    check("bad_flag_value", &dir, &["check", "--format", "over\rwrite", "r.pf"], 2, &["invalid value 'over\\u{d}write'"]);
    check("bad_flag_osc", &dir, &["check", "--format", "\u{1b}]0;x\u{7}", "r.pf"], 2, &["invalid value"]);
    check("unknown_flag", &dir, &["check", "--\u{1b}[2J", "r.pf"], 2, &["unexpected argument"]);
}

#[rustfmt::skip]
#[test]
fn watch_intervals_out_of_bounds_are_usage_errors() {
    let dir = setup("watch", &[]);
    for interval in ["1e300", "0.0001", "0", "-1", "inf", "NaN", "86401"] {
        let flag = format!("--watch={interval}");
        check(interval, &dir, &["stats", "--iface", "lo", &flag], 2, &["error: invalid value", "between 0.1 and 86400 seconds"]);
    }
    check("soon", &dir, &["stats", "--iface", "lo", "--watch", "soon"], 2, &["`soon` is not a number of seconds"]);
    // `--lock-timeout inf` (or NaN, or 1e400) meant "do not wait", without a word.
    for (command, timeout) in [("load", "inf"), ("unload", "NaN"), ("set", "1e400"), ("load", "-1"), ("unload", "86401")] {
        let flag = format!("--lock-timeout={timeout}");
        let args: &[&str] = match command {
            "load" => &["load", "r.pf", "--iface", "lo", &flag],
            "unload" => &["unload", "--iface", "lo", &flag],
            _ => &["set", "list", "--iface", "lo", "s", &flag],
        };
        check(timeout, &dir, args, 2, &["error: invalid value", "between 0 and 86400 seconds"]);
    }
}

/// A bad packet spec of 70 KB for `pfc explain` is named by its start, not echoed whole.
#[test]
fn a_huge_bad_packet_spec_is_not_echoed_whole() {
    let dir = setup("huge_spec", &[]);
    let spec = format!("{}ipv4", "vlan / ".repeat(10_000));
    let run = check("huge_spec", &dir, &["explain", "r.pf", &spec], 1, &["the packet spec `vlan / ", "more bytes)`"]);
    assert!(run.stderr.len() < 4096, "{} bytes of stderr", run.stderr.len());
}

/// `pfc set replace` with neither elements nor `--file` would empty the set (a forgotten
/// `--file` wiping a block list): a usage error before any filter is looked at, as for
/// add and del; list and flush take no elements.
#[rustfmt::skip]
#[test]
fn set_changes_without_elements_are_usage_errors() {
    let dir = setup("set-usage", &[]);
    for action in ["add", "del", "replace"] {
        check(action, &dir, &["set", action, "--iface", "lo", "banned"], 2, &["error: give elements, or --file FILE"]);
    }
    check("replace", &dir, &["set", "replace", "--iface", "lo", "banned"], 2, &["`pfc set flush` empties a set"]);
    for action in ["list", "flush"] {
        check(action, &dir, &["set", action, "--iface", "lo", "banned", "10.0.0.1"], 2, &["list and flush take no elements"]);
    }
    // Only `list` has a JSON document: a change asked for JSON printed its human line.
    for args in [&["add", "10.0.0.1"][..], &["del", "10.0.0.1"], &["replace", "10.0.0.1"], &["flush"]] {
        let mut line = vec!["set", args[0], "--iface", "lo", "banned", "--format", "json"];
        line.extend(&args[1..]);
        check(args[0], &dir, &line, 2, &["--format json applies to `pfc set list`"]);
    }
}

/// `pfc load --hook` against the hook the rule file or object is for: a usage error that
/// says where that hook comes from (it said `hook xdp` of files without a `hook`
/// statement, and "XDP and TC programs differ" of tc ingress against tc egress).
#[test]
fn a_hook_that_disagrees_with_the_file_is_a_usage_error() {
    let dir = setup(
        "load-hook",
        &[
            ("plain.pf", b"default pass\nrule r: drop if udp.dport == 9\n"),
            ("tc.pf", b"hook tc ingress\ndefault pass\n"),
        ],
    );
    check(
        "no hook statement",
        &dir,
        &["load", "plain.pf", "--iface", "lo", "--hook", "tc-ingress"],
        2,
        &["plain.pf is for xdp (its `hook` statement; xdp when it has none), but --hook is tc-ingress"],
    );
    check(
        "ingress, egress",
        &dir,
        &["load", "tc.pf", "--iface", "lo", "--hook", "tc-egress"],
        2,
        &["tc.pf is for tc-ingress", "the hook is part of the compiled program; change one of them"],
    );
    check("compile", &dir, &["compile", "tc.pf", "-o", "tc.o"], 0, &[]);
    check(
        "object",
        &dir,
        &["load", "tc.o", "--iface", "lo", "--hook", "xdp"],
        2,
        &["tc.o was compiled for tc-ingress, but --hook is xdp"],
    );
}

/// `pfc compile -o` replaces a regular file whole (a temporary file renamed over it, its
/// permissions kept, nothing left beside it), writes through a symbolic link (the link
/// stays a link) and into a device in place.
#[test]
fn compile_output_replaces_files_whole_and_keeps_links() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = setup("compile-output", &[("old.o", b"old object")]);
    std::fs::set_permissions(dir.join("old.o"), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    check("regular", &dir, &["compile", "r.pf", "-o", "old.o"], 0, &[]);
    let written = std::fs::read(dir.join("old.o")).expect("object");
    assert_eq!(&written[..4], b"\x7fELF", "the object replaced the old file");
    let mode = std::fs::metadata(dir.join("old.o")).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "permissions kept");
    std::os::unix::fs::symlink("linked.o", dir.join("link.o")).expect("symlink");
    check("symlink", &dir, &["compile", "r.pf", "-o", "link.o"], 0, &[]);
    assert!(std::fs::symlink_metadata(dir.join("link.o")).expect("link").file_type().is_symlink());
    assert_eq!(std::fs::read(dir.join("linked.o")).expect("through the link"), written);
    check("device", &dir, &["compile", "r.pf", "-o", "/dev/null"], 0, &[]);
    check("new", &dir, &["compile", "r.pf", "-o", "new.o"], 0, &[]);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|entry| entry.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    assert_eq!(names, ["link.o", "linked.o", "new.o", "old.o", "r.pf"], "no temporary file left");
    let _ = std::fs::remove_dir_all(&dir);
}
