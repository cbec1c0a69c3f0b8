//! pfc's state against another local user (part of `tests/load_attach.rs`): user `nobody`
//! squats pfc's directories, plants symlinks and records; root's pfc refuses with a message
//! naming the fix and neither follows nor deletes what it does not own. Also: nobody's
//! `status`/`stats` say "permission denied", nobody's failed `load` leaves nothing, and
//! `ip netns exec` (a private mount namespace) is refused before anything is attached.
//!
//! A private bpffs is mounted for the test (`--bpffs`, `--run-dir`), so the machine's
//! `/sys/fs/bpf/pfc` and `/run/pfc` are not touched.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;

use super::*;

const NOBODY: u32 = 65534;

/// A temp root (mode 0755) with a private bpffs at `bpffs` and a world-writable, sticky
/// `run` (like /tmp): the worst case for squatting. Unmounted and removed on drop.
struct Roots {
    root: PathBuf,
}

impl Roots {
    fn new() -> Roots {
        let root = std::env::temp_dir().join(format!("pfc-own-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["bpffs", "run", "victim"] {
            std::fs::create_dir_all(root.join(dir)).expect("dir");
        }
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(root.join("run"), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        std::fs::write(root.join("victim/keep"), "root's file").expect("victim file");
        run_ok("mount", &["-t", "bpf", "bpf", &root.join("bpffs").display().to_string()]);
        Roots { root }
    }

    fn path(&self, rest: &str) -> String {
        self.root.join(rest).display().to_string()
    }

    /// `--bpffs ROOT/bpffs --run-dir ROOT/run/pfc`.
    fn args(&self) -> Vec<String> {
        vec!["--bpffs".into(), self.path("bpffs"), "--run-dir".into(), self.path("run/pfc")]
    }

    fn clear(&self) {
        for dir in ["bpffs/pfc", "run/pfc"] {
            let path = self.root.join(dir);
            if path.is_symlink() {
                std::fs::remove_file(&path).expect("unlink");
            } else {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

impl Drop for Roots {
    fn drop(&mut self) {
        self.clear();
        let _ = run("umount", &[&self.path("bpffs")]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `program ARGS` as user nobody (host network namespace).
fn as_nobody(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).uid(NOBODY).gid(NOBODY).output().expect("runs as nobody")
}

fn pfc_in(ns: &str, args: &[&str], roots: &Roots) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let extra = roots.args();
    all.extend(extra.iter().map(String::as_str));
    pfc(ns, &all)
}

fn refused(output: &Output, expected: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{case}: {stderr}");
    assert!(stderr.contains(expected), "{case}: expected {expected:?} in {stderr}");
}

#[test]
fn another_users_squats_symlinks_and_records_are_refused_never_followed_or_deleted() {
    skip_unless!(no_kernel());
    if as_nobody("true", &[]).status.code() != Some(0) {
        println!("skipped: cannot run commands as user nobody (uid {NOBODY})");
        return;
    }
    let mut topology = Topology::new("o");
    let roots = Roots::new();
    let (ns, iface) = (topology.b.clone(), topology.veth_b.clone());
    let rules = topology.rules("own", &rule_set("xdp"));
    std::fs::set_permissions(&rules, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let load = ["load", rules.as_str(), "--iface", iface.as_str()];
    let nothing_attached = |case: &str| {
        assert_eq!(super::concurrent::kernel_xdp_prog(&ns, &iface), None, "{case}: nothing attached");
    };

    // nobody creates the pin directory first (bpffs is 1777).
    assert!(as_nobody("mkdir", &[&roots.path("bpffs/pfc")]).status.success());
    refused(&pfc_in(&ns, &load, &roots), "is owned by uid 65534", "squatted bpffs dir");
    refused(&pfc_in(&ns, &load, &roots), "rm -r", "the message names the fix");
    assert!(Path::new(&roots.path("bpffs/pfc")).is_dir(), "nobody's directory is not deleted");
    nothing_attached("squatted bpffs dir");
    roots.clear();

    // nobody plants the state directory as a symlink to root's directory.
    assert!(as_nobody("ln", &["-s", &roots.path("victim"), &roots.path("run/pfc")]).status.success());
    refused(&pfc_in(&ns, &load, &roots), "is a symlink", "symlinked state dir");
    let victim: Vec<_> =
        std::fs::read_dir(roots.path("victim")).expect("victim").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(victim, ["keep"], "nothing created or deleted through the symlink");
    nothing_attached("symlinked state dir");
    roots.clear();

    // nobody plants a state directory with a record in it.
    let planted = roots.path(&format!("run/pfc/{iface}"));
    assert!(as_nobody("mkdir", &["-p", &planted]).status.success());
    assert!(as_nobody("sh", &["-c", &format!("echo '{{}}' > {planted}/xdp.json")]).status.success());
    refused(&pfc_in(&ns, &load, &roots), "is owned by uid 65534", "planted record");
    refused(&pfc_in(&ns, &["unload", "--iface", &iface], &roots), "is owned by uid 65534", "unload, planted record");
    refused(&pfc_in(&ns, &["status"], &roots), "is owned by uid 65534", "status, planted record");
    assert!(Path::new(&format!("{planted}/xdp.json")).exists(), "nobody's record is not deleted");
    nothing_attached("planted record");
    roots.clear();

    // nobody's failed load on fresh state leaves nothing of nobody's behind (on `lo`:
    // nobody runs in the host's network namespace).
    let mut nobody_load: Vec<String> =
        ["load", rules.as_str(), "--iface", "lo"].iter().map(|s| s.to_string()).collect();
    nobody_load.extend(roots.args());
    let output = as_nobody(PFC, &nobody_load.iter().map(String::as_str).collect::<Vec<_>>());
    refused(&output, "permission denied: needs CAP_BPF", "nobody's load");
    for args in [vec!["unload", "--iface", "lo"], vec!["unload", "--all"]] {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.extend(roots.args());
        let output = as_nobody(PFC, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(output.status.code(), Some(1), "nobody's {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    for dir in ["bpffs/pfc", "run/pfc"] {
        assert!(!Path::new(&roots.path(dir)).exists(), "nobody's load or unload created {dir}");
    }

    // root's load: private directories; nobody can neither remove the link pin nor
    // rename the directory, and nobody's status/stats are told they lack privileges.
    let output = pfc_in(&ns, &load, &roots);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for dir in ["bpffs/pfc", "run/pfc", &format!("bpffs/pfc/{iface}/xdp")] {
        let metadata = std::fs::symlink_metadata(roots.path(dir)).expect("exists");
        assert_eq!((metadata.uid(), metadata.mode() & 0o777), (0, 0o700), "{dir}");
    }
    let link = roots.path(&format!("bpffs/pfc/{iface}/xdp/link"));
    assert!(!as_nobody("rm", &["-f", &link]).status.success(), "nobody removed root's link pin");
    assert!(!as_nobody("mv", &[&roots.path("bpffs/pfc"), &roots.path("bpffs/mine")]).status.success());
    let attached = super::concurrent::kernel_xdp_prog(&ns, &iface).expect("still attached");
    let mut status: Vec<String> = vec!["status".into()];
    status.extend(roots.args());
    let mut stats: Vec<String> = vec!["stats".into(), "--iface".into(), iface.clone(), "--hook".into(), "xdp".into()];
    stats.extend(roots.args());
    for args in [&status, &stats] {
        let output = as_nobody(PFC, &args.iter().map(String::as_str).collect::<Vec<_>>());
        refused(&output, "permission denied: needs CAP_BPF (run as root", &format!("nobody's {}", args[0]));
        assert!(!String::from_utf8_lossy(&output.stdout).contains("stale"), "never 'stale'");
    }
    let text = String::from_utf8_lossy(&pfc_in(&ns, &["status", "--format", "json"], &roots).stdout).into_owned();
    assert!(text.contains(&format!("\"prog_id\":{attached}")), "root's status: {text}");
    let output = pfc_in(&ns, &["unload", "--iface", &iface], &roots);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    nothing_attached("after unload");
    println!("squatting: bpffs dir, symlinked state dir, planted record refused; nobody's load left nothing; nobody could not remove root's pins");
}

#[test]
fn ip_netns_exec_is_refused_before_anything_is_attached() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("x");
    let (ns, iface) = (topology.b.clone(), topology.veth_b.clone());
    let rules = topology.rules("netns-exec", &rule_set("xdp"));
    let output = Command::new("ip")
        .args(["netns", "exec", &ns, PFC, "load", &rules, "--iface", &iface])
        .output()
        .expect("ip runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("private mount namespace") && stderr.contains("nsenter --net=/run/netns/NS pfc"),
        "{stderr}"
    );
    assert_eq!(super::concurrent::kernel_xdp_prog(&ns, &iface), None, "nothing attached");
    assert!(!Path::new(&format!("/sys/fs/bpf/pfc/{iface}")).exists(), "no pins");
    // nsenter (or pfc's own setns, as these tests do) keeps the host's mounts: that works.
    let output = Command::new("nsenter")
        .args([&format!("--net=/run/netns/{ns}"), PFC, "load", &rules, "--iface", &iface])
        .output()
        .expect("nsenter runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(super::concurrent::kernel_xdp_prog(&ns, &iface).is_some(), "attached through nsenter");
    pfc_ok(&ns, &["unload", "--iface", &iface]);
    println!("ip netns exec: refused with exit 1, nothing attached: {}", stderr.lines().next().unwrap_or(""));
}
