//! The conventions of docs/cli.md, through the real binary: examples in every `--help`,
//! man pages that groff renders without a warning, completion scripts for three shells,
//! `-` for standard input and output, colour on a terminal only (and never with
//! NO_COLOR), and JSON documents whose shape is pinned to their `schema` version and to
//! the examples in docs/cli.md.

mod support;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::shapes::{assert_pinned, shape, SHAPES};
use support::{pfc, pfc_in, repo, scratch_dir, Run};

const RULES: &str = "default pass\nrule ssh: drop if tcp.dport == 22\nrule dns: pass if udp.dport == 53\n";
const BAD_RULES: &str = "default pass\nrule ssh: drop if tcp.dprt == 22\n";
const CASES: &str =
    "[[case]]\nname = \"ssh is dropped\"\npacket = \"ipv4 / tcp dport=22\"\nexpect = \"drop\"\nrule = \"ssh\"\n\n\
                     [[case]]\nname = \"web passes\"\npacket = \"ipv4 / tcp dport=80\"\nexpect = \"drop\"\n";

/// The subcommands every convention applies to.
const SUBCOMMANDS: &[&str] =
    &["check", "compile", "test", "load", "unload", "status", "stats", "watch", "completions", "man"];

/// A scratch directory holding `web.pf`, `bad.pf` and `web.test.toml`.
fn setup(test: &str) -> std::path::PathBuf {
    let dir = scratch_dir(test);
    for (name, text) in [("web.pf", RULES), ("bad.pf", BAD_RULES), ("web.test.toml", CASES)] {
        std::fs::write(dir.join(name), text).expect("write file");
    }
    dir
}

/// Runs `pfc ARGS` in `dir` with `stdin` on standard input; stdout as bytes.
fn pfc_stdin(dir: &Path, args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pfc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the pfc binary runs");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let output = child.wait_with_output().expect("pfc finishes");
    writer.join().expect("stdin written");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "pfc {args:?} panicked:\n{stderr}");
    (output.status.code().unwrap_or(-1), output.stdout, stderr)
}

/// A classic pcap holding one SSH frame.
fn capture() -> Vec<u8> {
    let frame = pfc_compiler::packet::Packet::eth().ipv4("192.0.2.1", "10.0.0.2").tcp(1000, 22).build();
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame);
    out
}

#[test]
fn every_help_ends_with_examples() {
    for subcommand in SUBCOMMANDS.iter().copied().chain([""]) {
        let args: Vec<&str> = [subcommand, "--help"].into_iter().filter(|arg| !arg.is_empty()).collect();
        let run = pfc(&args);
        assert_eq!(run.code, 0, "pfc {args:?}: {}", run.stderr);
        let examples = run.stdout.split("Examples:\n").nth(1).unwrap_or_default();
        let count = examples.lines().filter(|line| line.starts_with("  pfc ")).count();
        assert!(count >= 2, "pfc {args:?} has {count} examples:\n{}", run.stdout);
    }
}

#[test]
fn man_pages_render_for_every_subcommand() {
    let dir = scratch_dir("man_pages");
    let run = pfc_in(&dir, &["man", "--dir", "man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stdout_page = pfc(&["man"]);
    assert_eq!(stdout_page.code, 0, "{}", stdout_page.stderr);
    let pfc_1 = std::fs::read_to_string(dir.join("man/pfc.1")).expect("pfc.1 written");
    assert_eq!(stdout_page.stdout, pfc_1, "`pfc man` prints pfc.1");
    let groff = Command::new("groff").arg("--version").output().is_ok_and(|output| output.status.success());
    for name in std::iter::once("pfc".to_string()).chain(SUBCOMMANDS.iter().map(|sub| format!("pfc-{sub}"))) {
        let path = dir.join(format!("man/{name}.1"));
        let page = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        for section in [".TH", ".SH NAME", ".SH SYNOPSIS", ".SH EXAMPLES"] {
            assert!(page.contains(section), "{name}.1 has no `{section}`:\n{page}");
        }
        if groff {
            // -ww: every warning; -z: no output, only the diagnostics.
            let output =
                Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(&path).output().expect("groff runs");
            let warnings = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success() && warnings.is_empty(), "groff on {name}.1:\n{warnings}");
            let text = Command::new("groff")
                .args(["-man", "-Tutf8", "-P-c", "-P-b", "-P-o", "-P-u"])
                .arg(&path)
                .output()
                .expect("groff runs");
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(text.contains("EXAMPLES") && text.contains("pfc "), "{name}.1 renders as:\n{text}");
        } else {
            eprintln!("groff is not installed: {name}.1 checked for its sections only");
        }
    }
}

#[test]
fn completion_scripts_for_three_shells() {
    for (shell, marker) in [("bash", "complete -F _pfc"), ("zsh", "#compdef pfc"), ("fish", "complete -c pfc")] {
        let run = pfc(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}: no `{marker}` in:\n{}", run.stdout);
        for subcommand in SUBCOMMANDS {
            assert!(run.stdout.contains(subcommand), "{shell}: `{subcommand}` is not completed");
        }
    }
    let bash = pfc(&["completions", "bash"]);
    let checked = Command::new("bash").args(["-n", "-c", &bash.stdout]).output().expect("bash runs");
    assert!(checked.status.success(), "bash -n: {}", String::from_utf8_lossy(&checked.stderr));
    let usage = pfc(&["completions", "tcsh"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

#[rustfmt::skip]
#[test]
fn dash_is_standard_input_for_rules_cases_and_captures() {
    let dir = setup("stdin");
    let (code, _, stderr) = pfc_stdin(&dir, &["check", "-"], RULES.as_bytes());
    assert_eq!((code, stderr.as_str()), (0, "<stdin>: ok\n"));
    let (code, _, stderr) = pfc_stdin(&dir, &["check", "-"], BAD_RULES.as_bytes());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("┌─ <stdin>:2:19") && stderr.contains("unknown field `tcp.dprt`"), "{stderr}");
    let (code, _, stderr) = pfc_stdin(&dir, &["compile", "-", "-o", "from-stdin.o"], RULES.as_bytes());
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = pfc_stdin(&dir, &["compile", "web.pf", "-o", "from-file.o"], b"");
    assert_eq!(code, 0, "{stderr}");
    let read = |name: &str| std::fs::read(dir.join(name)).expect("object written");
    // The same rules give the same program and manifest; only the program's name differs
    // (named after web.pf; rules from standard input are `pfc_filter`).
    let manifest = |name: &str| pfc_compiler::object::read_manifest(&read(name)).expect("a pfc object");
    assert_eq!(manifest("from-stdin.o"), manifest("from-file.o"), "the same rules give the same manifest");
    let code = |name: &str| pfc_runtime::BpfObject::parse(&read(name)).expect("parses").code;
    assert_eq!(code("from-stdin.o"), code("from-file.o"), "the same rules give the same program");
    let (code, stdout, stderr) = pfc_stdin(&dir, &["test", "-", "--cases", "web.test.toml", "--format", "json"], RULES.as_bytes());
    assert_eq!(code, 1, "one case fails: {stderr}");
    let report: Value = serde_json::from_slice(&stdout).expect("one JSON document");
    assert_eq!((report["rules"].as_str(), report["passed"].as_u64()), (Some("<stdin>"), Some(1)));
    let (code, stdout, stderr) = pfc_stdin(&dir, &["test", "web.pf", "--cases", "-"], CASES.as_bytes());
    assert_eq!(code, 1, "{stderr}");
    assert!(String::from_utf8_lossy(&stdout).contains("from <stdin>"), "{}", String::from_utf8_lossy(&stdout));
    let capture = capture();
    let (code, stdout, stderr) = pfc_stdin(&dir, &["test", "web.pf", "--pcap", "-", "--verdicts"], &capture);
    assert_eq!((code, String::from_utf8_lossy(&stdout).trim()), (0, r#"{"packet":0,"verdict":"drop","rule":"ssh"}"#), "{stderr}");
    let usage = |args: &[&str], expected: &str| {
        let (code, _, stderr) = pfc_stdin(&dir, args, RULES.as_bytes());
        assert_eq!(code, 2, "pfc {args:?}: {stderr}");
        assert!(stderr.contains(expected), "pfc {args:?}: {stderr}");
    };
    usage(&["compile", "-"], "rules from standard input need -o OUT.o");
    usage(&["test", "-"], "rules from standard input need --cases FILE");
    usage(&["test", "-", "--cases", "-"], "only one of the rule file, --cases and --pcap can be `-`");
    usage(&["test", "-", "--pcap", "-"], "only one of the rule file, --cases and --pcap can be `-`");
    usage(&["compile", "web.pf", "--emit", "asm", "-o", "-"], "--emit prints to standard output");
    let (code, _, stderr) = pfc_stdin(&dir, &["check", "-"], &vec![b'#'; 17 << 20]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("<stdin>: is larger than 16 MiB"), "{stderr}");
}

#[test]
fn dash_output_is_standard_output() {
    let dir = setup("stdout");
    let (code, stdout, stderr) = pfc_stdin(&dir, &["compile", "web.pf", "-o", "-"], b"");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("-> <stdout>"), "{stderr}");
    assert!(!dir.join("-").exists(), "no file named `-`");
    let (code, _, stderr) = pfc_stdin(&dir, &["compile", "web.pf", "-o", "web.o"], b"");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, std::fs::read(dir.join("web.o")).expect("web.o"), "the object on stdout is the object");
    assert_eq!(&stdout[..4], b"\x7fELF");
}

/// The object never overwrites a file the compile reads: `-o rules.pf` (a slip of the
/// fingers), a rule file named `x.o` (its default output is itself), an include, or a
/// hard link to the rule file. Each is a usage error and the file is left as it was.
#[test]
fn the_object_never_overwrites_its_sources() {
    let dir = setup("overwrite_sources");
    std::fs::write(dir.join("x.o"), RULES).expect("write x.o");
    std::fs::write(dir.join("top.pf"), "include \"web.pf\"\n").expect("write top.pf");
    std::fs::hard_link(dir.join("web.pf"), dir.join("link.o")).expect("hard link");
    #[rustfmt::skip]
    let cases: &[(&[&str], &str)] = &[
        (&["compile", "web.pf", "-o", "web.pf"],   "`web.pf`"),
        (&["compile", "x.o"],                      "`x.o`"),
        (&["compile", "top.pf", "-o", "./web.pf"], "`web.pf`"),
        (&["compile", "web.pf", "-o", "link.o"],   "`web.pf`"),
    ];
    for (args, named) in cases {
        let run = pfc_in(&dir, args);
        run.assert_no_crash(&format!("{args:?}"));
        assert_eq!(run.code, 2, "pfc {args:?}: {}", run.stderr);
        assert!(run.stderr.contains("would overwrite") && run.stderr.contains(named), "pfc {args:?}: {}", run.stderr);
    }
    for name in ["web.pf", "x.o", "link.o"] {
        assert_eq!(std::fs::read_to_string(dir.join(name)).expect("read"), RULES, "{name} was changed");
    }
}

/// Runs `pfc ARGS` in `dir` with standard error on a pseudo-terminal; what it printed there.
fn stderr_on_a_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors it opened; we own them from here on.
    let opened =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are open and owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut command = Command::new(env!("CARGO_BIN_EXE_pfc"));
    command.args(args).current_dir(dir).env_remove("NO_COLOR").env("TERM", "xterm").stderr(Stdio::from(slave));
    for (key, value) in env {
        command.env(key, value);
    }
    let status = command.status().expect("the pfc binary runs");
    drop(command);
    assert!(status.code().is_some(), "pfc {args:?} died of a signal");
    let mut printed = Vec::new();
    // Reading the master ends with EIO once the slave is closed everywhere.
    let _ = std::fs::File::from(master).read_to_end(&mut printed);
    String::from_utf8_lossy(&printed).into_owned()
}

#[test]
fn colour_on_a_terminal_only() {
    let dir = setup("colour");
    const ESC: char = '\u{1b}';
    let on_terminal = stderr_on_a_terminal(&dir, &["check", "bad.pf"], &[]);
    assert!(on_terminal.contains(&format!("{ESC}[")) && on_terminal.contains("E0003"), "{on_terminal:?}");
    let no_color = stderr_on_a_terminal(&dir, &["check", "bad.pf"], &[("NO_COLOR", "1")]);
    assert!(!no_color.contains(ESC) && no_color.contains("E0003"), "{no_color:?}");
    let dumb = stderr_on_a_terminal(&dir, &["check", "bad.pf"], &[("TERM", "dumb")]);
    assert!(!dumb.contains(ESC) && dumb.contains("E0003"), "{dumb:?}");
    let never = stderr_on_a_terminal(&dir, &["--color", "never", "check", "bad.pf"], &[]);
    assert!(!never.contains(ESC) && never.contains("E0003"), "{never:?}");
    let piped: Run = pfc_in(&dir, &["check", "bad.pf"]);
    assert!(!piped.stderr.contains(ESC) && piped.stderr.contains("E0003"), "{:?}", piped.stderr);
    let always = pfc_in(&dir, &["check", "--color", "always", "bad.pf"]);
    assert!(always.stderr.contains(&format!("{ESC}[")), "{:?}", always.stderr);
}

/// The JSON examples of docs/cli.md, by schema.
fn documented_examples() -> Vec<(String, Value)> {
    let doc = std::fs::read_to_string(repo().join("docs/cli.md")).expect("docs/cli.md");
    doc.split("```json\n")
        .skip(1)
        .map(|block| {
            let text = block.split("```").next().unwrap_or_default();
            let value: Value =
                serde_json::from_str(text).unwrap_or_else(|error| panic!("docs/cli.md: {error}:\n{text}"));
            (value["schema"].as_str().unwrap_or("(no schema)").to_string(), value)
        })
        .collect()
}

#[test]
fn json_documents_match_their_schema_version_and_the_docs() {
    let dir = setup("json_schema");
    std::fs::write(dir.join("trace.pcap"), capture()).expect("write capture");
    std::fs::write(dir.join("web2.pf"), RULES.replace("rule ssh: drop", "rule ssh: pass")).expect("write rules");
    let outputs = [
        pfc_in(&dir, &["check", "--format", "json", "bad.pf"]),
        pfc_in(&dir, &["compile", "--format", "json", "bad.pf"]),
        pfc_in(&dir, &["test", "web.pf", "--format", "json", "--coverage"]),
        pfc_in(&dir, &["test", "web.pf", "--format", "json", "--pcap", "trace.pcap", "--mac", "02:00:5e:10:00:01"]),
        pfc_in(&dir, &["diff", "--format", "json", "web.pf", "web2.pf"]),
        pfc_in(&dir, &["explain", "--format", "json", "web.pf", "ipv4 / tcp dport=22"]),
    ];
    let documented = documented_examples();
    assert_eq!(documented.len(), SHAPES.len(), "one example in docs/cli.md per schema version");
    for (run, code) in outputs.iter().zip([1, 1, 1, 0, 1, 0]) {
        assert_eq!(run.code, code, "{}", run.stderr);
        let value: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
        assert_pinned(&value);
    }
    // Every pinned version (also those of `status` and `stats`, which tests/load_attach.rs
    // checks against a kernel) has an example of that shape in docs/cli.md.
    for (schema, pinned) in SHAPES {
        let example = documented.iter().find(|(name, _)| name == schema).map(|(_, value)| shape(value));
        assert_eq!(example.as_deref(), Some(*pinned), "{schema}: docs/cli.md's example has another shape");
    }
}

/// `status` and `stats` refuse bad output flags with exit 2 before they look at the
/// kernel: an unknown format, `--format` with the deprecated `--json`, stats without
/// `--iface`. (What they print is tested against a kernel in tests/load_attach.rs.)
#[test]
fn status_and_stats_refuse_bad_flags() {
    for args in [
        &["status", "--format", "xml"][..],
        &["status", "--format", "json", "--json"],
        &["stats", "--iface", "eth0", "--format", "yaml"],
        &["stats", "--iface", "eth0", "--json", "--format", "human"],
        &["stats", "--format", "json"],
    ] {
        let run = pfc(args);
        run.assert_no_crash(&args.join(" "));
        assert_eq!(run.code, 2, "pfc {args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "pfc {args:?}: {}", run.stderr);
    }
}

/// `make install` puts the binary, every man page, the completion scripts of three
/// shells and the systemd unit (naming the installed binary) under DESTDIR/PREFIX.
#[test]
fn make_install_installs_man_pages_completions_and_the_unit() {
    if Command::new("make").arg("--version").output().is_err() {
        eprintln!("skipped: make is not installed");
        return;
    }
    let dest = scratch_dir("make_install");
    let output = Command::new("make")
        .args(["--silent", "install", "PREFIX=/opt/pfc", "UNITDIR=/etc/systemd/system"])
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("PFC={}", env!("CARGO_BIN_EXE_pfc")))
        .current_dir(repo())
        .output()
        .expect("make runs");
    assert!(output.status.success(), "make install: {}", String::from_utf8_lossy(&output.stderr));
    let prefix = dest.join("opt/pfc");
    let mut expected: Vec<String> = vec![
        "bin/pfc".into(),
        "share/bash-completion/completions/pfc".into(),
        "share/zsh/site-functions/_pfc".into(),
        "share/fish/vendor_completions.d/pfc.fish".into(),
        "share/man/man1/pfc.1".into(),
    ];
    expected.extend(SUBCOMMANDS.iter().map(|sub| format!("share/man/man1/pfc-{sub}.1")));
    for path in &expected {
        let file = prefix.join(path);
        assert!(file.metadata().is_ok_and(|meta| meta.len() > 0), "{} is not installed", file.display());
    }
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/pfc@.service")).expect("the unit is installed");
    let exec: Vec<&str> = unit.lines().filter(|line| line.starts_with("Exec")).collect();
    assert_eq!(exec.len(), 3, "{unit}");
    assert!(exec.iter().all(|line| line.contains("=/opt/pfc/bin/pfc ")), "{exec:?}");
}

/// The manifest's source hash is what `sha256sum` prints for the rule file, and the
/// object's program is named after it (docs/operations.md, "Objects").
#[test]
fn the_manifest_hash_is_sha256sum_of_the_rule_file() {
    let dir = setup("manifest_hash");
    let run = pfc_in(&dir, &["compile", "web.pf", "-o", "web.o"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let object = std::fs::read(dir.join("web.o")).expect("object written");
    let manifest = pfc_compiler::object::read_manifest(&object).expect("a pfc object");
    let sha256sum = Command::new("sha256sum").arg("web.pf").current_dir(&dir).output().expect("sha256sum runs");
    let printed = String::from_utf8_lossy(&sha256sum.stdout);
    let digest = printed.split_whitespace().next().expect("a digest");
    assert_eq!(manifest.source_hash, format!("sha256:{digest}"));
    let parsed = pfc_runtime::BpfObject::parse(&object).expect("the object parses");
    assert_eq!(parsed.program_name, "web", "the program is named after web.pf");
}

/// `pfc compile OBJ --emit asm` lists an object's code as its bytes say: a 16-bit `goto`
/// of 30,000 slots (what pfc wrote before it wrote `gotol`, whose encoder now writes that
/// reach as `gotol`) is listed `goto`. Without `--emit asm` an object is refused, exit 1,
/// with what to do instead (it was E0017 with the ELF bytes echoed).
#[test]
fn an_objects_code_lists_as_its_bytes_say() {
    use pfc_compiler::bpf::{encode, Insn, Reg};
    use pfc_compiler::object::{write_object, ObjectSpec, ProgramType};
    let dir = setup("object_listing");
    let mut code = vec![0x05, 0];
    code.extend_from_slice(&30_000i16.to_le_bytes());
    code.extend_from_slice(&[0; 4]);
    code.extend(encode(&vec![Insn::mov64(Reg::R0, 2); 30_000]));
    code.extend(encode(&[Insn::Exit]));
    let spec = ObjectSpec {
        program_type: ProgramType::Xdp,
        function: "old".to_string(),
        code,
        relocations: Vec::new(),
        maps: Vec::new(),
        manifest: Vec::new(),
        set_contents: Vec::new(),
    };
    std::fs::write(dir.join("old.o"), write_object(&spec).expect("writes")).expect("old.o");
    let run = pfc_in(&dir, &["compile", "old.o", "--emit", "asm"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[..2], ["; old.o: program `old`, 30002 instructions", "   0: goto L0"], "{}", &run.stdout[..200]);
    assert_eq!(lines[lines.len() - 2..], ["L0:", "30001: exit"]);
    // A pfc object lists with its manifest's summary and its maps.
    assert_eq!(pfc_in(&dir, &["compile", "web.pf", "-o", "web.o"]).code, 0);
    let run = pfc_in(&dir, &["compile", "web.o", "--emit", "asm"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("; pfc ")
            && run.stdout.contains("default pass")
            && run.stdout.contains("; map 0: pfc_counters"),
        "{}",
        run.stdout
    );
    for args in [
        &["compile", "web.o"][..],
        &["compile", "web.o", "--emit", "ir"],
        &["compile", "web.o", "--emit", "asm", "-o", "x.o"],
    ] {
        let run = pfc_in(&dir, args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("web.o is an ELF object, not a rule file: `pfc load web.o`"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("E0017"), "{}", run.stderr);
    }
    assert!(!dir.join("x.o").exists(), "nothing written");
}

/// `pfc compile - --emit asm | head -c 1` on a listing far larger than a pipe holds: the
/// reader goes away after one byte; pfc stops quietly (success or SIGPIPE, as `cat` does),
/// never with a panic on stderr.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let mut rules = String::from("default pass\n");
    for index in 1..1500 {
        rules += &format!(
            "rule r{index}: drop if tcp.dport == {index} and ip.src == 10.0.{}.{}\n",
            index / 256,
            index % 256
        );
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_pfc"))
        .args(["compile", "-", "--emit", "asm"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pfc starts");
    child.stdin.take().expect("stdin").write_all(rules.as_bytes()).expect("pfc reads the rules");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("pfc writes the listing");
    drop(stdout);
    let output = child.wait_with_output().expect("pfc ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "pfc panicked on a closed pipe: {stderr}");
    assert!(
        output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
        "pfc ended with {:?}: {stderr}",
        output.status
    );
}

/// `--classifier auto|inline|table` of compile, test and load: the chosen form shows in
/// the listing and runs; a form the rule set cannot take is E0020 with the reason, at
/// the rule that stands in the way; an object keeps its form.
#[test]
fn the_classifier_form_is_chosen_or_refused_with_the_reason() {
    let dir = scratch_dir("classifier_form");
    let mut rules = String::from("default pass\n");
    for port in 0..20 {
        rules.push_str(&format!("rule r{port}: drop if ipv4.src == 10.0.0.{port} and tcp.dport == {}\n", 1000 + port));
    }
    std::fs::write(dir.join("table.pf"), &rules).expect("write");
    std::fs::write(dir.join("or.pf"), format!("{rules}rule either: drop if tcp.dport == 1 or udp.dport == 1\n"))
        .expect("write");
    let cases = "[[case]]\nname = \"r3\"\npacket = \"ipv4 src=10.0.0.3 / tcp dport=1003\"\nexpect = \"drop\"\n\
                 rule = \"r3\"\n\n[[case]]\nname = \"other\"\npacket = \"ipv4 src=10.0.0.3 / tcp dport=1004\"\n\
                 expect = \"pass\"\n";
    std::fs::write(dir.join("table.test.toml"), cases).expect("write");
    for (form, listing) in
        [("table", "classifier table:"), ("inline", "classifier: one diagram"), ("auto", "classifier:")]
    {
        let run = pfc_in(&dir, &["compile", "table.pf", "--classifier", form, "--emit", "asm"]);
        assert_eq!(run.code, 0, "{form}: {}", run.stderr);
        assert!(run.stdout.contains(listing), "{form}: {}", run.stdout);
        let run = pfc_in(&dir, &["test", "table.pf", "--classifier", form]);
        assert_eq!(run.code, 0, "{form}: {}{}", run.stdout, run.stderr);
    }
    let refused = pfc_in(&dir, &["compile", "or.pf", "--classifier", "table", "-o", "or.o"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("error[E0020]: no classifier table: rule `either` tests `or`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("or.pf:22:1"), "{}", refused.stderr);
    let chosen = pfc_in(&dir, &["compile", "or.pf", "-o", "or.o"]);
    assert_eq!(chosen.code, 0, "auto takes the inline classifier: {}", chosen.stderr);
    let object = pfc_in(&dir, &["load", "or.o", "--iface", "lo", "--classifier", "table"]);
    assert_eq!(object.code, 2, "{}", object.stderr);
    assert!(object.stderr.contains("is an object"), "{}", object.stderr);
}
