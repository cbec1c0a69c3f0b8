//! `pfc status [--iface IF] [--format human|json]`: every pfc filter (or those of one
//! interface): interface, hook, mode, program and link ids, load time, source file and
//! hash, rule count (from the manifest recorded at load), and each set held in a map
//! (dynamic sets, static sets too large for a decision tree) with its element count read
//! from the kernel. The JSON document is `pfc.status/2` (docs/cli.md); the deprecated
//! `--json` prints its `filters` array alone without `sets`, the shape pfc printed before
//! `--format`.

use std::process::ExitCode;

use pfc_runtime::attach::sets::SetSize;
use pfc_runtime::attach::FilterStatus;
use serde_json::{json, Value};

use super::filters::{self, ReportFormat};
use crate::escape::escape;

/// Arguments of `pfc status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Only the filters of this interface.
    #[arg(long)]
    iface: Option<String>,
    /// A table, or one JSON document (`"schema": "pfc.status/2"`, docs/cli.md).
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    format: ReportFormat,
    /// Deprecated: the JSON array of filters alone, without the schema (use --format json).
    #[arg(long, hide = true, conflicts_with = "format")]
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

/// The `schema` of `pfc status --format json`: bumped whenever its shape changes.
pub const STATUS_SCHEMA: &str = "pfc.status/2";

/// `dynamic` (`pfc set` changes it) or `static-map` (a static set too large for a
/// decision tree, read-only).
fn set_kind(size: &SetSize) -> &'static str {
    if size.set.contents.is_some() {
        "static-map"
    } else {
        "dynamic"
    }
}

fn set_json(size: &SetSize) -> Value {
    json!({
        "name": size.set.name,
        "type": size.set.element_type,
        "kind": set_kind(size),
        "size": size.set.size,
        "count": size.count,
    })
}

/// The human line of one set: `set banned: ip, dynamic, 2 of 1000 elements`.
fn set_line(size: &SetSize) -> String {
    let count = size.count.map_or_else(|| "? (unreadable)".to_string(), |count| count.to_string());
    format!(
        "  set {}: {}, {}, {count} of {} elements",
        escape(&size.set.name),
        escape(&size.set.element_type),
        set_kind(size),
        size.set.size
    )
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
        "sets": status.sets.iter().map(set_json).collect::<Vec<_>>(),
    })
}

/// Runs `pfc status`.
pub fn run(args: &StatusArgs) -> ExitCode {
    if let Some(Err(code)) = args.iface.as_deref().map(filters::check_iface) {
        return code;
    }
    let mut statuses = match filters::live(&args.state).status() {
        Ok(statuses) => statuses,
        Err(error) => return filters::fail(&error),
    };
    if let Some(iface) = &args.iface {
        statuses.retain(|status| &status.iface == iface);
        if statuses.is_empty() {
            // No filter there: an interface that does not exist is an error, one
            // without filters is an empty listing.
            if let Some(code) = filters::no_such_interface(&args.state, iface) {
                return code;
            }
        }
    }
    let format = filters::report_format(args.format, args.json, "status");
    let filters_json = || Value::Array(statuses.iter().map(to_json).collect());
    match format {
        ReportFormat::Json if args.json => {
            // The old shape: without the sets.
            let mut filters = filters_json();
            for filter in filters.as_array_mut().into_iter().flatten() {
                filter.as_object_mut().map(|object| object.remove("sets"));
            }
            println!("{filters}");
            return ExitCode::SUCCESS;
        }
        ReportFormat::Json => {
            println!("{}", json!({ "schema": STATUS_SCHEMA, "filters": filters_json() }));
            return ExitCode::SUCCESS;
        }
        ReportFormat::Human => {}
    }
    if statuses.is_empty() {
        match &args.iface {
            Some(iface) => println!("no pfc filters on {}", escape(iface)),
            None => println!("no pfc filters"),
        }
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
        for size in &status.sets {
            println!("{}", set_line(size));
        }
    }
    ExitCode::SUCCESS
}
