//! `pfc status [--json]`: every pfc filter: interface, hook, mode, program and link ids,
//! load time, source file and hash, rule count (from the manifest recorded at load).

use std::process::ExitCode;

use pfc_runtime::attach::FilterStatus;
use serde_json::{json, Value};

use super::filters;
use crate::escape::escape;

/// Arguments of `pfc status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Where pins and records live.
    #[command(flatten)]
    state: filters::StateArgs,
}

/// Whether the link still holds the program on a live interface.
fn state(status: &FilterStatus) -> &'static str {
    match status.link {
        Some(link) if link.ifindex != 0 => "attached",
        Some(_) => "defunct (interface gone; `pfc unload` cleans up)",
        None => "not attached (an interrupted load or unload left pins or a record; `pfc unload` cleans up)",
    }
}

fn to_json(status: &FilterStatus) -> Value {
    let record = status.record.as_ref();
    let attached = status.link.filter(|link| link.ifindex != 0);
    // Counters of the running program: rules plus the default.
    let counted_rules = status.prog.and_then(|prog| prog.counters).map(|map| map.entries.saturating_sub(1) as usize);
    json!({
        "iface": status.iface,
        "hook": status.point.as_str(),
        "state": match status.link {
            Some(link) if link.ifindex != 0 => "attached",
            Some(_) => "defunct",
            None => "stale",
        },
        "mode": record.map(|r| r.mode.as_str()),
        "prog_id": attached.map(|l| l.prog_id),
        "link_id": status.link.map(|l| l.id),
        "loaded_at": record.map(|r| filters::utc(r.loaded_at)),
        "source": record.map(|r| r.source.as_str()),
        "source_hash": record.map(|r| r.manifest.source_hash.as_str()),
        "default": record.map(|r| r.manifest.default.as_str()),
        "rules": record.map(|r| r.manifest.rules.len()).or(counted_rules),
        "pfc_version": record.map(|r| r.manifest.pfc_version.as_str()),
        "labels": status.label_problem.as_ref().map(|problem| problem.to_string()),
    })
}

/// Runs `pfc status`.
pub fn run(args: &StatusArgs) -> ExitCode {
    let statuses = match filters::live(&args.state).status() {
        Ok(statuses) => statuses,
        Err(error) => return filters::fail(&error),
    };
    if args.json {
        println!("{}", Value::Array(statuses.iter().map(to_json).collect()));
        return ExitCode::SUCCESS;
    }
    if statuses.is_empty() {
        println!("no pfc filters");
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<16} {:<10} {:<8} {:>7} {:<20} {:>5}  {:<25} SOURCE",
        "IFACE", "HOOK", "MODE", "PROG", "LOADED", "RULES", "HASH"
    );
    for status in &statuses {
        let j = to_json(status);
        // Records hold what the user once wrote (the source path): no terminal controls.
        let text = |key: &str| j[key].as_str().map(|text| escape(text).into_owned()).unwrap_or_else(|| "-".to_string());
        let number = |key: &str| j[key].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "-".to_string());
        println!(
            "{:<16} {:<10} {:<8} {:>7} {:<20} {:>5}  {:<25} {}",
            status.iface,
            status.point.as_str(),
            text("mode"),
            number("prog_id"),
            text("loaded_at"),
            number("rules"),
            text("source_hash"),
            text("source"),
        );
        if state(status) != "attached" {
            println!("  {}", state(status));
        }
        if let Some(problem) = &status.label_problem {
            println!("  warning: the running program is not the recorded one ({problem}); source and labels unknown");
        }
    }
    ExitCode::SUCCESS
}
