//! `pfc test` through the real binary: every example's case file passes with full rule
//! coverage; passing and failing cases give the right exit code and report; bad case
//! files, bad captures and bad command lines get a clear error and exit 1 (2 for usage),
//! never a panic; JSON and JUnit reports parse.

#[macro_use]
extern crate pfc_test_support;

mod support;

use support::{files_with_extension, pfc, pfc_in, repo, scratch_dir, Run};

/// The rule file most cases here test.
const RULES: &str = "\
hook xdp
default pass
rule ssh_in: pass if tcp.dport == 22 and ip.src in { 10.0.0.0/8 }
rule ssh:    drop if tcp.dport == 22
rule dns:    pass if udp.dport == 53
";

/// Writes `RULES` as `r.pf` and `cases` as `r.test.toml` (plus `files`), runs
/// `pfc test r.pf ARGS...`.
fn run_cases(test: &str, cases: &str, files: &[(&str, Vec<u8>)], args: &[&str]) -> Run {
    let dir = scratch_dir(test);
    std::fs::write(dir.join("r.pf"), RULES).expect("write rules");
    std::fs::write(dir.join("r.test.toml"), cases).expect("write cases");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write file");
    }
    let mut all = vec!["test", "r.pf"];
    all.extend_from_slice(args);
    let run = pfc_in(&dir, &all);
    run.assert_no_crash(test);
    run
}

/// `pfc test` on `cases` exits with `code` and prints every string of `expected` (on
/// stdout or stderr).
fn check(test: &str, cases: &str, files: &[(&str, Vec<u8>)], args: &[&str], code: i32, expected: &[&str]) {
    let run = run_cases(test, cases, files, args);
    let both = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, code, "{test}: exit code; output:\n{both}");
    for text in expected {
        assert!(both.contains(text), "{test}: expected `{text}` in:\n{both}");
    }
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

fn case(name: &str, packet: &str, expect: &str, rule: &str) -> String {
    format!("[[case]]\nname = \"{name}\"\npacket = \"{packet}\"\nexpect = \"{expect}\"\nrule = \"{rule}\"\n\n")
}

fn ssh_frame() -> Vec<u8> {
    pfc_compiler::packet::Packet::eth().ipv4("192.0.2.1", "10.0.0.2").tcp(1000, 22).build()
}

#[test]
fn every_example_passes_its_cases_with_full_coverage() {
    let examples = files_with_extension(&repo().join("rules-examples"), "pf");
    assert!(!examples.is_empty());
    for example in examples {
        let name = example.display().to_string();
        let cases = example.with_extension("test.toml");
        assert!(cases.exists(), "{name} has no case file {}", cases.display());
        let run = pfc(&["test", &name, "--coverage"]);
        run.assert_no_crash(&name);
        assert_eq!(run.code, 0, "{name}:\n{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("coverage: every rule"), "{name}: rules without a case:\n{}", run.stdout);
        assert!(run.stdout.lines().any(|line| line.ends_with(" passed, 0 failed")), "{name}:\n{}", run.stdout);
    }
}

#[rustfmt::skip]
#[test]
fn passing_and_failing_cases() {
    let ok = case("ssh inside", "ipv4 src=10.1.1.1 / tcp dport=22", "pass", "ssh_in")
        + &case("ssh outside", "ipv4 src=192.0.2.1 / tcp dport=ssh", "drop", "ssh")
        + &case("dns", "ipv6 / udp dport=53", "pass", "dns")
        + &case("other", "ipv4 / tcp dport=80", "pass", "default");
    check("all_pass", &ok, &[], &["--coverage"], 0, &["4 passed, 0 failed", "coverage: every rule (3)"]);
    check("verdict_only", "[[case]]\nname = \"v\"\npacket = \"ipv4 / tcp dport=22\"\nexpect = \"pass\"\n", &[], &[], 0, &["1 passed, 0 failed"]);
    let wrong_verdict = case("ssh wrong", "ipv4 src=192.0.2.1 / tcp dport=22", "pass", "ssh");
    check("wrong_verdict", &wrong_verdict, &[], &[], 1, &["FAIL ssh wrong (line 2)", "spec:     ipv4 src=192.0.2.1 / tcp dport=22",
        "packet:   54 bytes: eth / ipv4 192.0.2.1 > 10.0.0.2 / tcp 40000 > 22 [S]", "expected: pass by rule ssh", "actual:   drop by rule ssh", "\n0 passed, 1 failed\n"]);
    let wrong_rule = case("dns by default", "ipv4 / udp dport=53", "pass", "default");
    check("wrong_rule", &wrong_rule, &[], &[], 1, &["FAIL dns by default", "expected: pass by the default", "actual:   pass by rule dns", "0 passed, 1 failed"]);
    check("uncovered", &case("dns", "ipv4 / udp dport=53", "pass", "dns"), &[], &["--coverage"], 0, &["coverage: 2 of 3 rules decided no case: ssh_in, ssh"]);
    check("hex_case", "[[case]]\nname = \"short\"\nhex = \"02 00 00 00 00 02\"\nexpect = \"pass\"\nrule = \"default\"\n", &[], &[], 0, &["1 passed, 0 failed"]);
    let frames = [ssh_frame(), pfc_compiler::packet::Packet::eth().ipv4("10.0.0.1", "10.0.0.2").udp(1, 53).build()];
    let capture = pcap(&[&frames[0], &frames[1]]);
    check("pcap_per_packet", "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = [\"drop\", \"pass\"]\nrule = [\"ssh\", \"dns\"]\n", &[("c.pcap", capture.clone())], &[], 0, &["2 passed, 0 failed"]);
    check("pcap_one_for_all", "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = \"drop\"\n", &[("c.pcap", capture.clone())], &[], 1, &["FAIL cap [packet 1]", "actual:   pass by rule dns", "1 passed, 1 failed"]);
    check("pcap_count_mismatch", "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = [\"drop\", \"pass\", \"pass\"]\n", &[("c.pcap", capture)], &[], 1, &["`expect` (or `rule`, or `log`) lists 3 entries but the capture holds 2 packets"]);
    check("pcap_empty", "[[case]]\nname = \"cap\"\npcap = \"e.pcap\"\nexpect = \"drop\"\n", &[("e.pcap", pcap(&[]))], &[], 0, &["holds no packets", "0 passed, 0 failed"]);
    // `rule` (and `log`) take one entry per packet even where `expect` has one for all;
    // a list of the wrong length is blamed on the list that has it.
    let repeated = "[[case]]\nname = \"r\"\npacket = \"ipv4 src=192.0.2.1 / tcp dport=22\"\nrepeat = 3\nexpect = \"drop\"\n";
    check("rule_per_packet", &format!("{repeated}rule = [\"ssh\", \"ssh\", \"ssh\"]\n"), &[], &[], 0, &["3 passed, 0 failed"]);
    check("rule_per_packet_wrong", &format!("{repeated}rule = [\"ssh\", \"ssh_in\", \"ssh\"]\n"), &[], &[], 1, &["FAIL r [packet 1]", "expected: drop by rule ssh_in", "2 passed, 1 failed"]);
    check("rule_list_too_short", &format!("{repeated}rule = [\"ssh\", \"ssh\"]\n"), &[], &[], 1, &["r.test.toml:6:8: case `r`: `rule` must list one rule, or one per repeated packet"]);
    check("log_list_too_short", &format!("{repeated}log = [\"false\", \"false\"]\n"), &[], &[], 1, &["r.test.toml:6:7: case `r`: `log` must list one entry, or one per repeated packet"]);
    check("rule_empty", "[[case]]\nname = \"r\"\npacket = \"ipv4 / tcp dport=22\"\nexpect = \"drop\"\nrule = []\n", &[], &[], 1, &["r.test.toml:5:8: case `r`: `rule` needs at least one rule name"]);
}

#[rustfmt::skip]
#[test]
fn bad_case_files_name_the_line() {
    let bad = |test: &str, cases: &str, expected: &[&str]| check(test, cases, &[], &[], 1, expected);
    bad("toml_syntax", "[[case]\nname = \"x\"\n", &["r.test.toml:1:", "error:"]);
    bad("toml_unknown_key", "[[case]]\nname = \"x\"\npacket = \"ipv4\"\nexpect = \"pass\"\nverdict = \"drop\"\n", &["r.test.toml:5:", "unknown field `verdict`"]);
    bad("no_cases", "# nothing\n", &["r.test.toml:1:1: the file has no `[[case]]` tables"]);
    bad("unknown_layer", "[[case]]\nname = \"x\"\npacket = \"ipv4 / tpc dport=22\"\nexpect = \"pass\"\n", &["r.test.toml:3:18: case `x`: unknown layer `tpc`"]);
    bad("unknown_field", "[[case]]\nname = \"x\"\npacket = \"ipv4 / tcp port=22\"\nexpect = \"pass\"\n", &["r.test.toml:3:22: case `x`: `tcp` has no field `port`"]);
    bad("wrong_type", "[[case]]\nname = \"x\"\npacket = \"ipv4 src=10.0.0.300\"\nexpect = \"pass\"\n", &["r.test.toml:3:", "`ipv4 src` takes an IPv4 address, not `10.0.0.300`"]);
    bad("out_of_range", "[[case]]\nname = \"x\"\npacket = \"tcp dport=70000\"\nexpect = \"pass\"\n", &["`tcp dport` takes a port 0..65535"]);
    bad("bad_verdict", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = \"accept\"\n", &["r.test.toml:4:", "`accept` is not a verdict"]);
    bad("unknown_rule", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = \"pass\"\nrule = \"sssh\"\n", &["r.test.toml:5:", "no rule `sssh`"]);
    bad("two_inputs", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nhex = \"00\"\nexpect = \"pass\"\n", &["r.test.toml:2:", "exactly one of `packet`, `hex` or `pcap`"]);
    bad("bad_hex", "[[case]]\nname = \"x\"\nhex = \"00 0g\"\nexpect = \"pass\"\n", &["r.test.toml:3:", "not hex bytes (a stray `g`)"]);
    bad("duplicate", &(case("a", "tcp", "pass", "default").repeat(2)), &["r.test.toml:8:8:", "a second case named `a`"]);
    bad("too_large_spec", "[[case]]\nname = \"x\"\npacket = \"ipv4 / payload len=65520\"\nexpect = \"pass\"\n", &["r.test.toml:3:11:", "the packet has 65554 bytes; test packets have at most 65536"]);
    bad("list_without_pcap", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = [\"pass\", \"drop\"]\n", &["r.test.toml:4:", "only `pcap` and `repeat` cases may list"]);
    bad("bad_at", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nat = \"soon\"\nexpect = \"pass\"\n", &["r.test.toml:4:6:", "`at` is not a time"]);
    bad("repeat_zero", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nrepeat = 0\nexpect = \"pass\"\n", &["r.test.toml:4:", "`repeat` must be between 1 and"]);
    bad("interval_alone", "[[case]]\nname = \"x\"\npacket = \"tcp\"\ninterval = \"1s\"\nexpect = \"pass\"\n", &["r.test.toml:4:", "`interval` needs `repeat`"]);
    bad("repeat_count_mismatch", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nrepeat = 3\nexpect = [\"2*pass\"]\n", &["r.test.toml:5:", "one per repeated packet"]);
    bad("expect_of_wrong_type", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = 1\n", &["r.test.toml:4:10:", "expected a string or a list of strings"]);
    bad("log_of_wrong_type", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = \"pass\"\nlog = \"yes\"\n", &["r.test.toml:5:7:", "expected true, false or a list"]);
    bad("time_past_u64", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = \"pass\"\nat = \"18446744073s\"\nrepeat = 3\ninterval = \"1s\"\n", &["r.test.toml:7:12: case `x`: the packet times pass the latest time pfc keeps", "`at` + (`repeat` - 1)"]);
    bad("repeats_past_u64", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = \"pass\"\nrepeat = 1000000\ninterval = \"100000000s\"\n", &["r.test.toml:6:12: case `x`: the packet times pass", "(`repeat` - 1) × `interval`"]);
    bad("time_carried_past_u64", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = \"pass\"\nat = \"18446744073s\"\n\n[[case]]\nname = \"y\"\npacket = \"tcp\"\nexpect = \"pass\"\nrepeat = 3\ninterval = \"1s\"\n", &["r.test.toml:12:12: case `y`: the packet times pass", "it starts at 18446744073000000000 ns, where the case before ended"]);
    // The latest time itself is fine.
    check("time_at_u64_max", "[[case]]\nname = \"x\"\npacket = \"tcp\"\nexpect = \"pass\"\nat = \"18446744073.709551615s\"\n", &[], &[], 0, &["1 passed, 0 failed"]);
    // A capture's frames keep their distance from `at`: the second, 2 s after the first, is past it.
    let mut capture = pcap(&[&ssh_frame(), &ssh_frame()]);
    let second = 24 + 16 + ssh_frame().len();
    capture[second..second + 4].copy_from_slice(&2u32.to_le_bytes());
    check("pcap_time_past_u64", "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = \"drop\"\nat = \"18446744072.5s\"\n", &[("c.pcap", capture)], &[], 1, &["r.test.toml:5:6: case `cap`: the packet times pass", "`at` + the time of frame 2 after the first"]);
    bad("missing_case_file", "", &[]);
}

#[rustfmt::skip]
#[test]
fn bad_captures_name_the_packet() {
    let mut truncated = pcap(&[&ssh_frame(), &ssh_frame()]);
    truncated.truncate(truncated.len() - 10);
    let mut huge = pcap(&[]);
    huge.extend_from_slice(&[0; 8]);
    huge.extend_from_slice(&70000u32.to_le_bytes());
    huge.extend_from_slice(&70000u32.to_le_bytes());
    huge.resize(huge.len() + 70000, 0);
    let mut linux_sll = pcap(&[]);
    linux_sll[20] = 113;
    let verdicts = |test: &str, bytes: Vec<u8>, code: i32, expected: &[&str]| {
        check(test, "", &[("c.pcap", bytes)], &["--pcap", "c.pcap", "--verdicts"], code, expected)
    };
    verdicts("pcap_truncated", truncated, 1, &["c.pcap: packet 1 is truncated"]);
    verdicts("pcap_not_pcap", b"hello, world".to_vec(), 1, &["c.pcap: not a pcap or pcapng file"]);
    verdicts("pcap_empty_file", Vec::new(), 1, &["c.pcap: not a pcap or pcapng file (it starts with nothing: the file is empty)"]);
    verdicts("pcap_short_header", pcap(&[])[..10].to_vec(), 1, &["c.pcap: the file header is truncated (10 bytes)"]);
    verdicts("pcap_too_large", huge, 1, &["c.pcap: packet 0 has 70000 bytes; test packets have at most 65536"]);
    verdicts("pcap_link_type", linux_sll, 1, &["link type 113 (Linux cooked capture) is not Ethernet", "capture on the interface itself (`tcpdump -i eth0 -w FILE`)"]);
    verdicts("pcap_no_packets", pcap(&[]), 0, &["c.pcap: the capture holds no packets"]);
    check("pcap_missing", "", &[], &["--pcap", "missing.pcap", "--verdicts"], 1, &["missing.pcap: cannot read"]);
}

#[rustfmt::skip]
#[test]
fn usage_errors_exit_2() {
    let usage = |test: &str, args: &[&str]| check(test, "", &[], args, 2, &["error:", "--help"]);
    usage("pcap_junit", &["--pcap", "c.pcap", "--format", "junit"]);
    usage("verdicts_with_format", &["--pcap", "c.pcap", "--verdicts", "--format", "json"]);
    usage("verdicts_without_pcap", &["--verdicts"]);
    usage("pcap_with_cases", &["--pcap", "c.pcap", "--verdicts", "--cases", "x.toml"]);
    usage("bad_format", &["--format", "xml"]);
    usage("pcap_with_coverage", &["--pcap", "c.pcap", "--verdicts", "--coverage"]);
}

#[test]
fn rule_file_errors_are_diagnostics() {
    let dir = scratch_dir("rule_file_errors");
    std::fs::write(dir.join("bad.pf"), "default pass\nrule x: drop if tcp.dprt == 22\n").expect("write");
    let run = pfc_in(&dir, &["test", "bad.pf"]);
    run.assert_no_crash("rule_file_errors");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("tcp.dprt"), "{}", run.stderr);
}

/// Warnings are `pfc check`'s, except W0008: under a TC hook the kernel decides a tagged
/// frame's `pcap "vlan"` otherwise than the VM here, which runs the frame with its tags.
#[test]
fn test_prints_the_warning_that_the_kernel_may_decide_otherwise() {
    let dir = scratch_dir("pcap_vlan_under_tc");
    let rules = "hook tc ingress\ndefault pass\nrule voice: drop if pcap \"vlan 100\"\nrule rest: pass\nrule never: drop if udp\n";
    std::fs::write(dir.join("v.pf"), rules).expect("write rules");
    let cases = "[[case]]\nname = \"tagged\"\npacket = \"eth / vlan 100 / ipv4 / udp dport=5060\"\nexpect = \"drop\"\n";
    std::fs::write(dir.join("v.test.toml"), cases).expect("write cases");
    let run = pfc_in(&dir, &["test", "v.pf"]);
    run.assert_no_crash("pcap_vlan_under_tc");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.matches("warning[W0008]").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("v.pf:3:"), "{}", run.stderr);
    // W0001 (`never` comes after a rule that matches every packet) is `pfc check`'s alone.
    assert!(!run.stderr.contains("W0001"), "{}", run.stderr);
    assert!(run.stdout.contains("1 passed, 0 failed"), "{}", run.stdout);
}

#[test]
fn json_report_parses() {
    let cases = case("ok", "ipv4 / udp dport=53", "pass", "dns")
        + &case("bad", "ipv4 src=192.0.2.1 / tcp dport=22", "pass", "ssh");
    let run = run_cases("json_report", &cases, &[], &["--format", "json", "--coverage"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(document["passed"], 1);
    assert_eq!(document["failed"], 1);
    assert_eq!(document["backend"], "rbpf VM");
    let jit = if cfg!(target_arch = "x86_64") { "jit" } else { "interpreter" };
    assert_eq!(document["executor"], jit, "pfc's code runs in rbpf's JIT where there is one");
    assert_eq!(document["uncovered"], serde_json::json!(["ssh_in"]));
    let results = document["cases"].as_array().expect("cases");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["actual"], serde_json::json!({"verdict": "pass", "rule": "dns"}));
    assert_eq!(results[1]["name"], "bad");
    assert_eq!(results[1]["passed"], false);
    assert_eq!(results[1]["expected"], serde_json::json!({"verdict": "pass", "rule": "ssh", "log": null}));
    assert_eq!(results[1]["events"], serde_json::json!([]));
    assert_eq!(results[1]["actual"], serde_json::json!({"verdict": "drop", "rule": "ssh"}));
}

#[test]
fn junit_report_parses() {
    // U+FFFE and U+FFFF (TOML allows them) are not XML characters: written as `?`.
    let cases = case("ok <&>", "ipv4 / udp dport=53", "pass", "dns")
        + &case("bad \\\"q\\\"", "ipv4 src=192.0.2.1 / tcp dport=22", "pass", "ssh")
        + &case("nonchars \\uFFFE\\uFFFF", "ipv4 / udp dport=53", "pass", "dns");
    let run = run_cases("junit_report", &cases, &[], &["--format", "junit"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let xml = roxmltree::Document::parse(&run.stdout).expect("well-formed XML");
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let testcases: Vec<_> = root.descendants().filter(|node| node.has_tag_name("testcase")).collect();
    assert_eq!(testcases.len(), 3);
    assert_eq!(testcases[2].attribute("name"), Some("nonchars ??"));
    assert_eq!(testcases[0].attribute("name"), Some("ok <&>"));
    assert_eq!(testcases[1].attribute("name"), Some("bad \"q\""));
    let failure = testcases[1].children().find(|node| node.has_tag_name("failure")).expect("a <failure>");
    assert_eq!(failure.attribute("message"), Some("expected pass by rule ssh, got drop by rule ssh"));
    assert!(failure.text().unwrap_or("").contains("spec: ipv4 src=192.0.2.1 / tcp dport=22"));
}

/// `--pcap` without `--verdicts`: what each rule (and the default) decided, in packets
/// and bytes, for people and as a `pfc.capture/2` JSON document.
#[test]
fn capture_summary_counts_per_rule() {
    let udp = pfc_compiler::packet::Packet::eth().ipv4("10.0.0.1", "10.0.0.2").udp(1, 53).build();
    let other = pfc_compiler::packet::Packet::eth().ipv4("10.0.0.1", "10.0.0.2").udp(1, 99).build();
    let frames = [ssh_frame(), ssh_frame(), udp.clone(), other.clone()];
    let capture = pcap(&[&frames[0], &frames[1], &frames[2], &frames[3]]);
    let ssh_bytes = 2 * frames[0].len();
    check(
        "capture_summary",
        "",
        &[("c.pcap", capture.clone())],
        &["--pcap", "c.pcap"],
        0,
        &[
            "c.pcap: 4 frames through r.pf in the rbpf VM",
            &format!("  ssh        drop               2 {ssh_bytes:>16}\n"),
            "  ssh_in     pass               0                0\n",
            &format!("  (default)  pass               1 {:>16}\n", other.len()),
            "2 passed, 2 dropped\n",
        ],
    );
    let run = run_cases("capture_summary_json", "", &[("c.pcap", capture)], &["--pcap", "c.pcap", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(document["schema"], "pfc.capture/2");
    assert_eq!((document["direction"].as_str(), document["not_judged"].as_u64()), (Some("any"), Some(0)));
    assert_eq!(
        (document["packets"].as_u64(), document["passed"].as_u64(), document["dropped"].as_u64()),
        (Some(4), Some(2), Some(2))
    );
    let rules: Vec<(&str, &str, u64, u64)> = document["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| {
            (
                rule["name"].as_str().unwrap_or("?"),
                rule["verdict"].as_str().unwrap_or("?"),
                rule["packets"].as_u64().unwrap_or(0),
                rule["bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [("ssh_in", "pass", 0, 0), ("ssh", "drop", 2, ssh_bytes as u64), ("dns", "pass", 1, udp.len() as u64)]
    );
    assert_eq!(document["default"], serde_json::json!({"verdict": "pass", "packets": 1, "bytes": other.len()}));
}

/// `--format junit` writes a well-formed report even when the run stops before its cases:
/// one test case with an `<error>` saying why.
#[rustfmt::skip]
#[test]
fn junit_report_parses_when_the_run_stops_early() {
    let error_of = |test: &str, cases: &str, rules: Option<&str>, expected_case: &str, expected: &str| {
        let dir = scratch_dir(test);
        std::fs::write(dir.join("r.pf"), rules.unwrap_or(RULES)).expect("write rules");
        std::fs::write(dir.join("r.test.toml"), cases).expect("write cases");
        let run = pfc_in(&dir, &["test", "r.pf", "--format", "junit"]);
        run.assert_no_crash(test);
        assert_eq!(run.code, 1, "{test}: {}", run.stderr);
        let xml = roxmltree::Document::parse(&run.stdout).unwrap_or_else(|error| panic!("{test}: {error}:\n{}", run.stdout));
        let root = xml.root_element();
        assert_eq!((root.attribute("tests"), root.attribute("errors")), (Some("1"), Some("1")), "{test}");
        let testcase = root.descendants().find(|node| node.has_tag_name("testcase")).expect("a <testcase>");
        assert_eq!(testcase.attribute("name"), Some(expected_case), "{test}");
        let error = testcase.children().find(|node| node.has_tag_name("error")).expect("an <error>");
        let message = error.attribute("message").unwrap_or_default();
        assert!(message.contains(expected), "{test}: {message}");
    };
    error_of("junit_toml_error", "[[case]\n", None, "input", "r.test.toml:1:");
    error_of("junit_case_error", "[[case]]\nname = \"x <&>\\u001b\"\npacket = \"tpc\"\nexpect = \"pass\"\n", None, "input", "r.test.toml:3:");
    error_of("junit_rule_error", "", Some("default pass\nrule a: drop if tcp.dprt == 1\n"), "rule file", "r.pf: error[E0003]: unknown field `tcp.dprt`");
}

/// `--interpreter` runs the same cases in rbpf's interpreter, with the same results.
#[test]
fn interpreter_flag_forces_rbpfs_interpreter() {
    let cases = case("ok", "ipv4 / udp dport=53", "pass", "dns")
        + &case("bad", "ipv4 src=192.0.2.1 / tcp dport=22", "pass", "ssh");
    let jit = run_cases("executor_jit", &cases, &[], &["--format", "json"]);
    let slow = run_cases("executor_interpreter", &cases, &[], &["--format", "json", "--interpreter"]);
    assert_eq!((jit.code, slow.code), (1, 1), "{} {}", jit.stderr, slow.stderr);
    let mut jit: serde_json::Value = serde_json::from_str(&jit.stdout).expect("JSON");
    let mut slow: serde_json::Value = serde_json::from_str(&slow.stdout).expect("JSON");
    assert_eq!(slow["executor"], "interpreter");
    jit["executor"] = serde_json::Value::Null;
    slow["executor"] = serde_json::Value::Null;
    assert_eq!(jit["cases"], slow["cases"]);
    let both = run_cases("executor_conflict", &cases, &[], &["--interpreter", "--kernel"]);
    assert_eq!(both.code, 2, "--interpreter and --kernel conflict: {}", both.stderr);
}

/// `pfc test --kernel` credits each count to the right rule however many rules there are:
/// the counter array is read back by key, 0, 1, 2, … (keys from 256 on were once read in
/// byte-string order, so rule 256's count went to another rule and pfc reported a bug).
/// The 300-rule repro and a 1,000-rule set, with cases on both sides of 256.
#[test]
fn kernel_counters_credit_the_right_rule_beyond_255_rules() {
    skip_unless!(support::kernel::no_kernel());
    for rules in [300u32, 1_000] {
        let test = format!("kernel_counters_{rules}");
        let dir = scratch_dir(&test);
        let text: String = std::iter::once("default pass\n".to_string())
            .chain((0..rules).map(|index| format!("rule r{index}: drop if tcp.dport == {}\n", 1000 + index)))
            .collect();
        let mut picked = vec![0, 1, 255, 256, 257, 299, rules - 1];
        picked.dedup();
        let cases: String = picked
            .iter()
            .map(|&index| {
                case(&format!("r{index}"), &format!("ipv4 / tcp dport={}", 1000 + index), "drop", &format!("r{index}"))
            })
            .collect();
        std::fs::write(dir.join("r.pf"), text).expect("write rules");
        std::fs::write(dir.join("r.test.toml"), cases).expect("write cases");
        for executor in [&["--kernel"][..], &[]] {
            let mut args = vec!["test", "r.pf"];
            args.extend_from_slice(executor);
            let run = pfc_in(&dir, &args);
            run.assert_no_crash(&test);
            assert_eq!(run.code, 0, "{test} {executor:?}: exit code; output:\n{}{}", run.stdout, run.stderr);
        }
    }
}

/// Capture timestamps are the packets' times: a 1/s limit with burst 1 drops the frame
/// 0.5 s after the first and passes the one 2 s after it (micro- and nanosecond pcap).
#[test]
fn capture_timestamps_drive_rate_limits() {
    let dir = scratch_dir("capture_timestamps_drive_rate_limits");
    std::fs::write(dir.join("r.pf"), "default pass\nrule flood: drop if icmp and rate > 1/s burst 1\n").expect("rules");
    let frame = pfc_compiler::testcase::spec_bytes("ipv4 / icmp").expect("spec");
    for (magic, fraction) in [([0xd4, 0xc3, 0xb2, 0xa1], 500_000u32), ([0x4d, 0x3c, 0xb2, 0xa1], 500_000_000)] {
        let mut capture = magic.to_vec();
        capture.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        for (seconds, sub) in [(100u32, 0u32), (100, fraction), (102, 0)] {
            capture.extend_from_slice(&seconds.to_le_bytes());
            capture.extend_from_slice(&sub.to_le_bytes());
            capture.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            capture.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            capture.extend_from_slice(&frame);
        }
        std::fs::write(dir.join("t.pcap"), capture).expect("capture");
        let run = pfc_in(&dir, &["test", "r.pf", "--pcap", "t.pcap", "--verdicts"]);
        run.assert_no_crash("capture_timestamps_drive_rate_limits");
        let verdicts: Vec<&str> =
            run.stdout.lines().map(|line| if line.contains("\"drop\"") { "drop" } else { "pass" }).collect();
        assert_eq!(verdicts, ["pass", "drop", "pass"], "{}{}", run.stdout, run.stderr);
    }
}

/// `log … rate N/s burst B` sets a rule's log limit: with 10/s burst 2, five packets 10 ms
/// apart send two events, and 100 ms later a token is back; a case expecting otherwise
/// fails (the VM's events are also checked against the interpreter's).
#[test]
fn the_log_rate_is_the_rules_own() {
    let dir = scratch_dir("the_log_rate_is_the_rules_own");
    std::fs::write(dir.join("r.pf"), "default pass\nrule dns: drop log 0 rate 10/s burst 2 if udp.dport == 53\n")
        .expect("rules");
    let cases = |first: &str| {
        format!(
            "[[case]]\nname = \"five packets 10 ms apart\"\npacket = \"eth / ipv4 / udp dport=53\"\nrepeat = 5\n\
             interval = \"10ms\"\nexpect = \"drop\"\nlog = {first}\n\n[[case]]\nname = \"a token is back\"\n\
             packet = \"eth / ipv4 / udp dport=53\"\nat = \"140ms\"\nexpect = \"drop\"\nlog = true\n"
        )
    };
    std::fs::write(dir.join("r.test.toml"), cases("[\"2*true\", \"3*false\"]")).expect("cases");
    let run = pfc_in(&dir, &["test", "r.pf"]);
    run.assert_no_crash("the_log_rate_is_the_rules_own");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("3 log events sent"), "{}", run.stdout);
    // The default limit (burst 100) would log all five: a case saying so fails.
    std::fs::write(dir.join("r.test.toml"), cases("true")).expect("cases");
    let run = pfc_in(&dir, &["test", "r.pf"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
}

/// `pfc test --pcap` at classifier scale (issue 11): ClassBench-shaped sets of 2,000 rules
/// and captures of 2,000 of their trace packets run in the rbpf VM with every verdict
/// checked against pfc's interpreter (exit 3 on a disagreement), and each rule's packet
/// count is the generator's (which asked the interpreter which rule decides each packet).
/// The acl set also in the table form (`--classifier table`), whose arrays the VM holds.
/// At 10,000 rules and packets: `cargo run --release --example classbench_pcap`.
#[test]
fn classbench_captures_run_in_the_vm_without_disagreement() {
    use pfc_compiler::classbench::{self, Shape};
    for (shape, classifier) in [(Shape::Acl, "auto"), (Shape::Mixed, "auto"), (Shape::Acl, "table")] {
        let generated = classbench::generate(shape, 2_000, 2_000, 7);
        let dir = scratch_dir(&format!("classbench_{}_{classifier}", shape.name()));
        std::fs::write(dir.join("r.pf"), &generated.text).expect("write rules");
        let frames: Vec<&[u8]> = generated.trace.iter().map(|packet| packet.bytes.as_slice()).collect();
        std::fs::write(dir.join("t.pcap"), pcap(&frames)).expect("write capture");
        let run = pfc_in(&dir, &["test", "r.pf", "--pcap", "t.pcap", "--format", "json", "--classifier", classifier]);
        run.assert_no_crash(shape.name());
        assert_eq!(run.code, 0, "{}: {}", shape.name(), run.stderr);
        let summary: serde_json::Value = serde_json::from_str(&run.stdout).expect("the summary is JSON");
        assert_eq!(summary["packets"].as_u64(), Some(2_000), "{}", shape.name());
        let mut expected = vec![0u64; 2_001];
        for packet in &generated.trace {
            expected[packet.rule.unwrap_or(2_000)] += 1;
        }
        let mut counted: Vec<u64> = summary["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|rule| rule["packets"].as_u64().expect("packets"))
            .collect();
        counted.push(summary["default"]["packets"].as_u64().expect("default packets"));
        assert_eq!(counted, expected, "{}: packets per rule", shape.name());
    }
}

/// A case's `sets = { NAME = [...] }` sets a dynamic set's contents for that case only;
/// naming a set that is not a dynamic set of the rule file, or an element the set cannot
/// hold, is an error at the case's `sets` line (exit 1, no case runs).
#[rustfmt::skip]
#[test]
fn case_files_set_dynamic_sets_and_bad_sets_name_the_line() {
    let rules = "hook xdp\ndefault pass\nset banned: ipv4 dynamic size 4 = { 192.0.2.0/24 }\nrule ban: drop if ip.src in banned\n";
    let run = |test: &str, cases: &str| {
        let dir = scratch_dir(test);
        std::fs::write(dir.join("r.pf"), rules).expect("write rules");
        std::fs::write(dir.join("r.test.toml"), cases).expect("write cases");
        let run = pfc_in(&dir, &["test", "r.pf"]);
        run.assert_no_crash(test);
        run
    };
    let from_file = case("the file's contents", "ipv4 src=192.0.2.1 / udp", "drop", "ban");
    let replaced = "[[case]]\nname = \"replaced\"\npacket = \"ipv4 src=192.0.2.1 / udp\"\nsets = { banned = [\"10.0.0.0/8\"] }\nexpect = \"pass\"\nrule = \"default\"\n\n\
                    [[case]]\nname = \"added\"\npacket = \"ipv4 src=10.1.2.3 / udp\"\nsets = { banned = [\"10.0.0.0/8\"] }\nexpect = \"drop\"\nrule = \"ban\"\n";
    let good = run("case_sets_good", &format!("{from_file}{replaced}"));
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(good.stdout.contains("3 passed, 0 failed"), "{}", good.stdout);
    for (test, sets, expected) in [
        ("case_sets_unknown", "{ nosuch = [\"10.0.0.1\"] }", "`nosuch` is not a dynamic set of the rule file (dynamic sets: banned)"),
        ("case_sets_family", "{ banned = [\"2001:db8::1\"] }", "ipv4"),
        ("case_sets_size", "{ banned = [\"10.0.0.1\", \"10.0.0.2\", \"10.0.0.3\", \"10.0.0.4\", \"10.0.0.5\"] }", "at most 4"),
    ] {
        let cases = format!("[[case]]\nname = \"x\"\npacket = \"ipv4 / udp\"\nsets = {sets}\nexpect = \"pass\"\n");
        let bad = run(test, &cases);
        let both = format!("{}{}", bad.stdout, bad.stderr);
        assert_eq!(bad.code, 1, "{test}: {both}");
        assert!(both.contains("r.test.toml:4:") && both.contains("case `x`") && both.contains(expected), "{test}: {both}");
    }
}
