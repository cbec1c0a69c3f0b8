//! `--iface` values that cannot be interface names (part of `tests/load_attach.rs`):
//! every command refuses them with exit 1 before it builds a path, so `..` cannot reach
//! another tool's files next to pfc's directories. Needs no privileges.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;

/// Every file and directory under `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            found.insert(path.strip_prefix(root).expect("inside").display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found
}

#[test]
fn interface_names_that_are_no_names_are_refused_by_every_command_and_touch_nothing() {
    let root = std::env::temp_dir().join(format!("pfc-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // Decoys where `..` would lead: another tool's record and pin directory.
    std::fs::create_dir_all(root.join("bpffs/xdp/keep")).expect("decoy dir");
    std::fs::create_dir_all(root.join("run")).expect("run dir");
    std::fs::write(root.join("xdp.json"), "another tool's file").expect("decoy file");
    std::fs::write(root.join("rules.pf"), "default pass\nrule a: drop if udp.dport == 9\n").expect("rules");
    let before = tree(&root);
    let (bpffs, run_dir, rules) =
        (root.join("bpffs").display().to_string(), root.join("run").display().to_string(), root.join("rules.pf"));
    let rules = rules.display().to_string();
    let long = "a".repeat(16);
    for iface in ["..", ".", "a/b", "eth0/../eth0", long.as_str(), "", "a\u{1b}]0;x\u{7}"] {
        let state = ["--bpffs", bpffs.as_str(), "--run-dir", run_dir.as_str()];
        let commands: [Vec<&str>; 5] = [
            vec!["load", rules.as_str(), "--iface", iface],
            vec!["unload", "--iface", iface],
            vec!["unload", "--iface", iface, "--hook", "xdp"],
            vec!["stats", "--iface", iface, "--hook", "xdp"],
            vec!["status", "--iface", iface],
        ];
        for mut args in commands {
            args.extend(state);
            let output = Command::new(PFC).args(&args).output().expect("pfc runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains("interface name"), "{args:?}: {stderr}");
            assert!(!stderr.contains('\u{1b}'), "{args:?} echoes control bytes: {stderr:?}");
            assert_eq!(tree(&root), before, "{args:?} touched files");
        }
    }
    std::fs::remove_dir_all(&root).expect("cleaned up");
}

#[test]
fn status_stats_and_unload_say_when_the_interface_does_not_exist() {
    skip_unless!(no_kernel());
    let iface = format!("pfcnx{}", std::process::id() % 100_000);
    let expected = format!("error: no interface `{iface}` here; existing interfaces: lo");
    for args in [
        vec!["stats", "--iface", &iface],
        vec!["stats", "--iface", &iface, "--hook", "xdp"],
        vec!["unload", "--iface", &iface],
        vec!["unload", "--iface", &iface, "--hook", "tc-ingress"],
        vec!["status", "--iface", &iface],
        vec!["status", "--iface", &iface, "--format", "json"],
    ] {
        let output = Command::new(PFC).args(&args).output().expect("pfc runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "pfc {args:?}: {stderr}");
        assert!(stderr.starts_with(&expected), "pfc {args:?}: {stderr}");
    }
}
