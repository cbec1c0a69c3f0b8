//! Kernel-test scaffolding, one copy for the tests of every crate in the workspace
//! (`pfc`, `pfc-compiler`, `pfc-runtime`; a dev-dependency only) that load programs or
//! attach filters: why a test cannot run here ([`no_kernel`], [`missing_tool`]), the one skip
//! macro (`skip_unless!`), system commands with readable failures ([`run`]), and guards
//! that always clean up, also when an assertion fails: a network namespace ([`NetNs`])
//! and a file, pin or directory ([`RemoveOnDrop`]).
//!
//! A test crate brings the macro in with `#[macro_use] extern crate pfc_test_support;`
//! at its root, then writes `skip_unless!(no_kernel());` first in every kernel test.
#![deny(missing_docs)]

use std::path::PathBuf;
use std::process::Command;

/// Returns early, passing, when `$reason` (an `Option<String>`) says why the test cannot
/// run here; prints `skipped: <reason>`.
#[macro_export]
macro_rules! skip_unless {
    ($reason:expr) => {
        if let Some(reason) = $reason {
            println!("skipped: {reason}");
            return;
        }
    };
}

/// Runs a command; its stdout on success, a readable report on failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// [`run`], panicking with the report on failure.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    run(program, args).unwrap_or_else(|report| panic!("{report}"))
}

/// Why this process cannot load BPF programs, if it cannot.
pub fn no_kernel() -> Option<String> {
    pfc_runtime::kernel::privileges().err().map(|reason| reason.reason)
}

/// The first of `tools` (program, harmless argument) that does not run, as a reason.
pub fn missing_tool(tools: &[(&str, &str)]) -> Option<String> {
    tools.iter().find_map(|(tool, arg)| run(tool, &[arg]).err().map(|e| format!("`{tool}` unavailable: {e}")))
}

/// A network namespace, created with `lo` up and deleted on drop (which detaches and
/// frees the programs attached in it).
#[derive(Debug)]
pub struct NetNs(pub String);

impl NetNs {
    /// Creates namespace `name` (make it unique: include the process id).
    pub fn new(name: String) -> NetNs {
        run_ok("ip", &["netns", "add", &name]);
        let ns = NetNs(name);
        run_ok("ip", &["-n", &ns.0, "link", "set", "dev", "lo", "up"]);
        ns
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

/// A file, bpffs pin or directory (with its contents) removed on drop.
#[derive(Debug)]
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.is_dir() && !self.0.is_symlink() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A deterministic generator (xorshift64*) for tests and benches that must draw the same
/// values on every run: `Random(seed)`, then [`Random::next`].
#[derive(Clone, Debug)]
pub struct Random(pub u64);

impl Random {
    /// The next 64 random bits (the seed must not be 0). Not an `Iterator`: it never ends.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
