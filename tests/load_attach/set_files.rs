//! Malformed set files against a running filter (part of `tests/load_attach.rs`):
//! `pfc set add|replace --file F` and `pfc load` of a rule file naming F, with binary
//! content (a NUL byte, bytes that are not UTF-8), a 10 MB line, 10M lines (past the
//! set's size), a file over the 256 MiB limit, bad prefixes, garbage and the wrong family.
//! Each: an error at F's line and column, exit 1, in bounded memory (1 GiB of address
//! space), and nothing changed: the sets' contents and counts (`pfc set list`, `pfc
//! status`) and the running program are those of before. `tests/set_files.rs` runs the
//! same files through `pfc check` without a kernel. `--file -` reads standard input.

use super::sets::{list, status_sets};
use super::*;

fn rules() -> String {
    "hook xdp\ndefault pass\n\
     set banned: ip dynamic size 1000 = { 192.0.2.0/24, 198.51.100.7 }\n\
     set v4: ipv4 dynamic = { 10.9.0.0/16 }\n\
     set ports: port dynamic = { 7001 }\n\
     rule ban: drop if ip.src in banned or ip.dst in v4\n\
     rule port: drop if udp.dport in ports\n"
        .to_string()
}

/// `pfc ARGS` inside `ns` with at most 1 GiB of address space.
fn pfc_limited(ns: &str, args: &[&str]) -> Output {
    let mut command = pfc_command(ns, args);
    super::support::cli::limit_address_space(&mut command);
    command.output().expect("pfc runs")
}

/// What must not change: each set's elements, `pfc status`'s sets, the running program.
fn snapshot(topology: &Topology) -> (Vec<Vec<String>>, String, u64) {
    let sets = ["banned", "v4", "ports"].iter().map(|set| list(topology, set)).collect();
    let running = format!("{:?}", status_sets(topology));
    let prog = status_filters(&topology.b)
        .iter()
        .find(|filter| filter["iface"] == topology.veth_b.as_str())
        .and_then(|filter| filter["prog_id"].as_u64())
        .expect("a running program");
    (sets, running, prog)
}

/// `pfc ARGS` exits 1 with every string of `expected` on stderr, changing nothing.
fn refused(topology: &Topology, args: &[&str], expected: &[String]) {
    let before = snapshot(topology);
    let started = Instant::now();
    let output = pfc_limited(&topology.b, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown: String = stderr.chars().take(3000).collect();
    assert_eq!(output.status.code(), Some(1), "pfc {args:?}:\n{shown}");
    assert!(!stderr.contains("panicked"), "pfc {args:?}:\n{shown}");
    for text in expected {
        assert!(stderr.contains(text.as_str()), "pfc {args:?}: expected `{text}` in:\n{shown}");
    }
    assert!(stderr.len() < 8192, "pfc {args:?}: {} bytes on stderr", stderr.len());
    assert_eq!(snapshot(topology), before, "pfc {args:?} changed something");
    println!("refused in {:.0} ms: pfc {}", started.elapsed().as_secs_f64() * 1e3, args[..2].join(" "));
}

/// Writes a set file removed with the topology; its path.
fn set_file(topology: &mut Topology, name: &str, bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("pfc-setfile-{}-{}-{name}", std::process::id(), topology.veth_b));
    std::fs::write(&path, bytes).expect("write set file");
    topology.files.push(RemoveOnDrop(path.clone()));
    path.display().to_string()
}

/// A set file of 257 MiB, over pfc's limit: a line, then NUL bytes (sparse: nothing
/// written, and pfc refuses it by its size, unread). Removed with the topology.
fn huge_set_file(topology: &mut Topology, name: &str) -> String {
    let path = set_file(topology, name, b"10.0.0.1\n");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(257 << 20))
        .expect("grow set file");
    path
}

#[test]
fn malformed_set_files_change_nothing() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sf");
    let rules_file = topology.rules("setfiles", &rules());
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &rules_file, "--iface", &vb]);

    let long_line = format!("192.0.2.1\n{}\n", "10.0.0.1 ".repeat((10 << 20) / 9));
    let mut ten_million_lines: String = (0..2_000).map(|index| format!("::{index:x}\n")).collect();
    ten_million_lines.push_str(&"::\n".repeat(10_000_000 - 2_000));
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "banned",
            set_file(&mut topology, "nul.txt", b"10.0.0.1\n10.0.\x003\n"),
            vec!["E0023".into(), ":2:6: is not a text file".into()],
        ),
        (
            "banned",
            set_file(&mut topology, "utf8.txt", b"10.0.0.1\n  \xff\xfe\n"),
            vec!["E0023".into(), ":2:3: is not a text file".into()],
        ),
        (
            "banned",
            set_file(&mut topology, "long.txt", long_line.as_bytes()),
            vec!["E0024".into(), "long.txt:2:1".into()],
        ),
        (
            "banned",
            // 2,000 distinct addresses, then one repeated: the 1,001st distinct is too many.
            set_file(&mut topology, "ten-million.txt", ten_million_lines.as_bytes()),
            vec!["E0025".into(), "holds at most 1000 elements".into(), "ten-million.txt:1001:1".into()],
        ),
        ("banned", huge_set_file(&mut topology, "huge.txt"), vec!["E0023".into(), "is larger than 256 MiB".into()]),
        (
            "banned",
            set_file(&mut topology, "len33.txt", b"10.0.0.0/8\n10.0.0.0/33\n"),
            vec!["E0005".into(), "len33.txt:2:10".into()],
        ),
        ("banned", set_file(&mut topology, "len129.txt", b"::1/129\n"), vec!["E0005".into(), "len129.txt:1:5".into()]),
        ("banned", set_file(&mut topology, "garbage.txt", b"10.0.0.1\n%%garbage%%\n"), vec!["garbage.txt:2:1".into()]),
        (
            "v4",
            set_file(&mut topology, "family.txt", b"10.0.0.1\n2001:db8::/32\n"),
            vec!["E0008".into(), "family.txt:2:1".into()],
        ),
        ("ports", set_file(&mut topology, "type.txt", b"80\n10.0.0.1\n"), vec!["E0008".into(), "type.txt:2:1".into()]),
    ];
    for (set, path, expected) in &cases {
        for action in ["add", "replace"] {
            refused(&topology, &["set", action, "--iface", &vb, set, "--file", path], expected);
        }
    }
    // A rule file naming such a file: the load is refused, the old filter keeps running.
    for (_, path, expected) in cases.iter().filter(|(set, ..)| *set == "banned").take(4) {
        let text = rules().replace("= { 192.0.2.0/24, 198.51.100.7 }", &format!("= file \"{path}\""));
        let broken = topology.rules("broken", &text);
        refused(&topology, &["load", &broken, "--iface", &vb], expected);
    }

    // Host bits are ignored (language.md §2), as in a rule file.
    let host_bits = set_file(&mut topology, "host-bits.txt", b"10.1.2.3/8\n");
    pfc_ok(&b, &["set", "add", "--iface", &vb, "banned", "--file", &host_bits]);
    assert!(list(&topology, "banned").contains(&"10.0.0.0/8".to_string()), "{:?}", list(&topology, "banned"));

    // `--file -` reads standard input, as a set file (operations.md); a binary one is
    // refused at its <stdin>:line:col, and a missing file's note names the current
    // directory (there is no rule file to be relative to).
    let from_stdin = |action: &str, set: &str, text: &[u8]| {
        let mut command = pfc_command(&b, &["set", action, "--iface", &vb, set, "--file", "-"]);
        command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        command.stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("pfc runs");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text).expect("write stdin");
        child.wait_with_output().expect("pfc runs")
    };
    let output = from_stdin("replace", "ports", b"\xef\xbb\xbf7002\r\n# a comment\n7003\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(list(&topology, "ports"), ["7002", "7003"]);
    let before = snapshot(&topology);
    let output = from_stdin("add", "ports", b"7004\n70\x0005\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("<stdin>:2:3: is not a text file"), "{stderr}");
    assert_eq!(snapshot(&topology), before);
    refused(
        &topology,
        &["set", "add", "--iface", &vb, "ports", "--file", "no-such-list.txt"],
        &["E0023".into(), "a relative path is relative to the current directory".into()],
    );
    pfc_ok(&b, &["unload", "--iface", &vb]);
}

/// 300,000 distinct element lines (one IPv6 prefix every fourth line, the others IPv4
/// addresses), each once.
fn big_list() -> String {
    (0..300_000u32)
        .map(|i| match i % 4 {
            0 => format!("2001:{:x}:{:x}::/48\n", 0xdb8 + (i >> 18), (i / 4) & 0xffff),
            _ => format!("10.{}.{}.{}\n", i >> 16, (i >> 8) & 255, i & 255),
        })
        .collect()
}

/// `pfc load` reads a dynamic set's file while the rule file compiles
/// (`src/commands/load/set_files.rs`), and only a whole file it can take goes into the
/// kernel: a bad line after 300,000 good ones, a wrong family or one element past the
/// size is reported at its file:line:col, exit 1, whether no filter runs (nothing is
/// attached, no pin or record is left) or one does (it keeps running, its sets
/// unchanged). A good file with repeats, host bits, comments and blanks loads each
/// element once.
#[test]
fn a_bad_line_late_in_a_big_set_file_loads_nothing() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sl");
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    let lines = big_list();
    let bad_value = set_file(&mut topology, "late-bad.txt", format!("{lines}10.0.0.256\n").as_bytes());
    let ipv4: String = lines.lines().filter(|line| !line.contains(':')).map(|line| format!("{line}\n")).collect();
    let family_line = ipv4.lines().count() + 1;
    let bad_family = set_file(&mut topology, "late-family.txt", format!("{ipv4}2001:db8::1\n").as_bytes());
    let past_size = set_file(&mut topology, "late-size.txt", format!("{lines}192.0.2.1\n").as_bytes());
    // (set to fill from the file, the file, its size, what the error says)
    let cases = [
        ("banned", &bad_value, 400_000, vec!["E0005".to_string(), "late-bad.txt:300001:1".to_string()]),
        ("v4", &bad_family, 400_000, vec!["E0008".to_string(), format!("late-family.txt:{family_line}:1")]),
        ("banned", &past_size, 300_000, vec!["E0025".to_string(), "late-size.txt:300001:1".to_string()]),
    ];
    let broken_rules = |topology: &mut Topology, set: &str, path: &str, size: u32| {
        let text = match set {
            "banned" => rules().replace(
                "dynamic size 1000 = { 192.0.2.0/24, 198.51.100.7 }",
                &format!("dynamic size {size} = file \"{path}\""),
            ),
            _ => rules().replace("dynamic = { 10.9.0.0/16 }", &format!("dynamic size {size} = file \"{path}\"")),
        };
        assert_ne!(text, rules());
        topology.rules(&format!("late-{set}-{size}"), &text)
    };
    for (set, path, size, expected) in &cases {
        let broken = broken_rules(&mut topology, set, path, *size);
        let output = pfc_limited(&b, &["load", &broken, "--iface", &vb]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        for text in expected {
            assert!(stderr.contains(text.as_str()), "expected `{text}` in:\n{stderr}");
        }
        assert_eq!(super::concurrent::kernel_xdp_prog(&b, &vb), None, "nothing attached");
        assert!(!std::path::Path::new(&format!("/sys/fs/bpf/pfc/{vb}")).exists(), "no pins");
        assert!(!std::path::Path::new(&format!("/run/pfc/{vb}")).exists(), "no record");
        assert!(status_filters(&b).iter().all(|filter| filter["iface"] != vb.as_str()), "no filter");
    }
    pfc_ok(&b, &["load", &topology.rules("setfiles", &rules()), "--iface", &vb]);
    for (set, path, size, expected) in &cases {
        let broken = broken_rules(&mut topology, set, path, *size);
        refused(&topology, &["load", &broken, "--iface", &vb], expected);
    }

    // Repeats (`10.0.0.1` and `10.0.0.1/32`, host bits), comments, blanks, CRLF, both
    // families: each element once, as `pfc check` reads the file.
    let messy = format!(
        "# feed\r\n{lines}10.0.0.1/32\n  10.0.0.1  # again\n\n10.1.2.3/8\r\n10.9.9.9/8\n2001:db8:0::/48\n::ffff:1.2.3.4\n"
    );
    let messy = set_file(&mut topology, "messy.txt", messy.as_bytes());
    let good = broken_rules(&mut topology, "banned", &messy, 400_000);
    // (A replace would keep the running filter's `banned`: a first load.)
    pfc_ok(&b, &["unload", "--iface", &vb]);
    let loaded = pfc_ok(&b, &["load", &good, "--iface", &vb]);
    assert!(loaded.contains("loaded"), "{loaded}");
    let listed = list(&topology, "banned");
    // 300,000 distinct lines (10.0.0.1 among them), then 10.0.0.0/8 and ::ffff:1.2.3.4 new.
    assert_eq!(listed.len(), 300_002, "each element once");
    let listed: std::collections::HashSet<String> = listed.into_iter().collect();
    for element in ["10.0.0.1", "10.0.0.0/8", "2001:db8::/48", "2001:db8:1::/48", "::ffff:1.2.3.4", "10.4.147.223"] {
        assert!(listed.contains(element), "{element} listed");
    }
    assert!(status_sets(&topology).iter().any(|set| set.0 == "banned" && set.4 == Some(300_002)), "status counts them");
    pfc_ok(&b, &["unload", "--iface", &vb]);
}
