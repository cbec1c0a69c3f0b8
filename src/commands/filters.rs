//! What `pfc load/unload/status/stats` share: the `--hook` and `--mode` values, the live
//! runtime, and rendering a runtime error (with its cause chain) as an exit code.
//!
//! Exit codes: 0 done; 1 something the operator can fix (diagnostics, no such interface,
//! privileges, a foreign XDP program, nothing loaded); 2 usage errors; 3 a pfc bug (the
//! kernel verifier refused a program pfc's own checks accepted).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use pfc_runtime::attach::live::LiveSys;
use pfc_runtime::attach::{AttachError, Filters, ModeRequest};
use pfc_runtime::pins::{Hook, Layout};

use crate::escape::escape;

/// `--hook`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookArg {
    /// XDP (native or generic).
    Xdp,
    /// TC ingress (a TCX link).
    TcIngress,
    /// TC egress (a TCX link).
    TcEgress,
}

impl HookArg {
    /// The runtime's attach point.
    pub fn point(self) -> Hook {
        match self {
            HookArg::Xdp => Hook::Xdp,
            HookArg::TcIngress => Hook::TcIngress,
            HookArg::TcEgress => Hook::TcEgress,
        }
    }
}

/// `--mode`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Native XDP, falling back to generic with a notice.
    Auto,
    /// Native XDP or fail.
    Native,
    /// Generic (skb) XDP.
    Generic,
}

impl ModeArg {
    /// The runtime's mode request.
    pub fn request(self) -> ModeRequest {
        match self {
            ModeArg::Auto => ModeRequest::Auto,
            ModeArg::Native => ModeRequest::Native,
            ModeArg::Generic => ModeRequest::Generic,
        }
    }
}

/// `--format` of `status` and `stats`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A table for people.
    Human,
    /// One JSON document with a `schema` (docs/cli.md); `stats --watch` prints one per line.
    Json,
}

/// The format asked for: `--format`, or the deprecated `--json` (which says so on stderr).
pub fn report_format(format: ReportFormat, json: bool, command: &str) -> ReportFormat {
    if json {
        eprintln!("warning: `pfc {command} --json` is deprecated; use `--format json` (docs/cli.md)");
        return ReportFormat::Json;
    }
    format
}

/// Where pfc keeps its pins and records (`--bpffs`, `--run-dir`), shared by `load`,
/// `unload`, `status` and `stats`.
#[derive(clap::Args, Clone, Default)]
pub struct StateArgs {
    /// A mounted bpffs to pin under (`PATH/pfc`) instead of /sys/fs/bpf (which pfc
    /// mounts when missing); use a mount that outlives pfc.
    #[arg(long, value_name = "PATH")]
    bpffs: Option<PathBuf>,
    /// Where state records and lock files go instead of /run/pfc.
    #[arg(long, value_name = "PATH")]
    run_dir: Option<PathBuf>,
}

/// pfc's filters on this machine, for real.
pub fn live(state: &StateArgs) -> Filters<LiveSys> {
    Filters::new(LiveSys, Layout::new(state.bpffs.clone(), state.run_dir.clone()))
}

/// Checks `--iface` before anything else happens (exit 1 when it cannot be an interface
/// name: it would build paths outside pfc's directories).
pub fn check_iface(iface: &str) -> Result<(), ExitCode> {
    pfc_runtime::pins::check_iface_name(iface).map_err(|error| {
        eprintln!("error: {}", escape(&error.to_string()));
        ExitCode::from(1)
    })
}

/// Prints a notice the runtime has for the operator (e.g. waiting for a lock).
pub fn notice(text: &str) {
    eprintln!("notice: {text}");
}

/// An error and its causes, one per line after the first.
pub fn chain(error: &dyn std::error::Error) -> String {
    chain_with(error, "\n  caused by: ")
}

/// An error and its causes, each cause after `separator`.
pub fn chain_with(error: &dyn std::error::Error, separator: &str) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(separator);
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Prints a runtime error; its exit code.
pub fn fail(error: &AttachError) -> ExitCode {
    eprintln!("error: {}", escape(&chain(error)));
    ExitCode::from(if error.is_pfc_bug() { 3 } else { 1 })
}

/// Exit 1 for "nothing of pfc's on IFACE" (`NotLoaded`, or `message` for callers that
/// found no filter themselves): when the reason is that the interface does not exist in
/// this network namespace, says that instead, with the interfaces that do. Only asked
/// after no filter was found, so a filter whose interface went away is still shown.
pub fn nothing_on(state: &StateArgs, iface: &str, error: Option<&AttachError>, message: &str) -> ExitCode {
    if let Some(code) = no_such_interface(state, iface) {
        return code;
    }
    match error {
        Some(error) => fail(error),
        None => {
            eprintln!("error: {}", escape(message));
            ExitCode::from(1)
        }
    }
}

/// When `iface` does not exist in this network namespace: says so (with the interfaces
/// that do) and returns exit 1.
pub fn no_such_interface(state: &StateArgs, iface: &str) -> Option<ExitCode> {
    match live(state).ifindex(iface) {
        Err(missing @ AttachError::NoSuchInterface { .. }) => Some(fail(&missing)),
        _ => None,
    }
}

/// `fail`, except that `NotLoaded` on an interface that does not exist says so.
pub fn fail_on(state: &StateArgs, iface: &str, error: &AttachError) -> ExitCode {
    match error {
        AttachError::NotLoaded { .. } => nothing_on(state, iface, Some(error), ""),
        _ => fail(error),
    }
}

/// The hook to read: the one asked for, or the only one `iface` has a filter at.
pub fn pick_hook(state: &StateArgs, iface: &str, hook: Option<HookArg>) -> Result<Hook, ExitCode> {
    if let Some(hook) = hook {
        return Ok(hook.point());
    }
    let statuses = live(state).status().map_err(|error| fail(&error))?;
    let points: Vec<Hook> = statuses.iter().filter(|s| s.iface == iface).map(|s| s.point).collect();
    match points.as_slice() {
        [point] => Ok(*point),
        [] => Err(nothing_on(state, iface, None, &format!("no pfc filter on `{iface}`"))),
        _ => {
            let names: Vec<&str> = points.iter().map(|p| p.as_str()).collect();
            Err(usage(&format!("`{iface}` has filters at {}: pick one with --hook", names.join(", "))))
        }
    }
}

/// A usage error (exit 2).
pub fn usage(message: &str) -> ExitCode {
    eprintln!("error: {}", escape(message));
    ExitCode::from(2)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let time = seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", time / 3600, time / 60 % 60, time % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_795_737_600), "2026-11-27T00:00:00Z");
    }
}
