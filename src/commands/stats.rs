//! `pfc stats --iface IF [--hook …] [--format human|json] [--watch SECONDS]`: per-rule
//! verdicts, packets and bytes (summed over CPUs) and the default verdict's, labelled
//! from the manifest recorded at load, and for a rule with a rate limit the packets its
//! limit found over and within the rate; in watch mode also packets and bytes per second.
//! The JSON document is `pfc.stats/2` (docs/cli.md), one per sample; the deprecated
//! `--json` prints the same.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pfc_runtime::attach::{Counter, RuleLimit, Stats};
use pfc_runtime::pins::Hook;
use serde_json::{json, Value};

use super::filters::{self, HookArg, ReportFormat};
use crate::escape::escape;

/// Arguments of `pfc stats`.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// The interface.
    #[arg(long)]
    iface: String,
    /// The hook (needed when the interface has filters at several hooks).
    #[arg(long, value_enum)]
    hook: Option<HookArg>,
    /// A table, or one JSON document per sample (`"schema": "pfc.stats/2"`, docs/cli.md).
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    format: ReportFormat,
    /// Deprecated: the same as --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    json: bool,
    /// Print again every SECONDS, with rates, until interrupted.
    #[arg(long, value_name = "SECONDS", value_parser = super::interval::parse_watch_interval)]
    watch: Option<Duration>,
    /// Where pins and records live.
    #[command(flatten)]
    state: filters::StateArgs,
}

/// The `schema` of `pfc stats --format json`: bumped whenever its shape changes.
pub const STATS_SCHEMA: &str = "pfc.stats/2";

/// One line of the table or entry of the JSON: a rule, or the default last.
struct Row<'a> {
    /// The rule's name (`None`: the default).
    name: Option<&'a str>,
    /// `pass`/`drop`, `None` when no record says.
    verdict: Option<&'a str>,
    counter: Counter,
    /// The rule's rate limit (the default has none).
    limit: RuleLimit,
}

fn rows(stats: &Stats) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = stats
        .rules
        .iter()
        .enumerate()
        .map(|(index, (name, counter))| Row {
            name: Some(name),
            verdict: stats.verdicts.get(index).map(String::as_str),
            counter: *counter,
            limit: stats.limits.get(index).copied().unwrap_or(RuleLimit::None),
        })
        .collect();
    let default = stats.default.0.as_str();
    let verdict = if stats.label_problem.is_some() { None } else { Some(default) };
    rows.push(Row { name: None, verdict, counter: stats.default.1, limit: RuleLimit::None });
    rows
}

fn rate(now: u64, before: u64, seconds: f64) -> f64 {
    now.saturating_sub(before) as f64 / seconds
}

fn print(iface: &str, point: Hook, stats: &Stats, previous: Option<(&Stats, f64)>, format: ReportFormat) {
    let rows = rows(stats);
    let old = previous.map(|(stats, seconds)| (self::rows(stats), seconds));
    let rates = |index: usize, counter: &Counter| {
        old.as_ref().map(|(old, seconds)| {
            let before = old.get(index).map(|row| row.counter).unwrap_or_default();
            (rate(counter.packets, before.packets, *seconds), rate(counter.bytes, before.bytes, *seconds))
        })
    };
    if format == ReportFormat::Json {
        let entry = |index: usize, row: &Row<'_>| {
            let (pps, bps) = rates(index, &row.counter).unzip();
            let mut value = json!({
                "verdict": row.verdict, "packets": row.counter.packets, "bytes": row.counter.bytes,
                "packets_per_second": pps, "bytes_per_second": bps,
            });
            if let Some(name) = row.name {
                value["name"] = json!(name);
                value["limit"] = match row.limit {
                    RuleLimit::Counted(counts) => json!({ "over": counts.over, "within": counts.within }),
                    RuleLimit::None | RuleLimit::Uncounted => Value::Null,
                };
            }
            value
        };
        let mut entries: Vec<Value> = rows.iter().enumerate().map(|(index, row)| entry(index, row)).collect();
        let default = entries.pop().unwrap_or_default();
        let labels = stats.label_problem.as_ref().map(|problem| problem.to_string());
        // Each sample says when it was read, so `--watch` lines stand alone.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        println!(
            "{}",
            json!({
                "schema": STATS_SCHEMA, "iface": iface, "hook": point.as_str(), "time": filters::utc(now.as_secs()),
                "time_unix_ms": now.as_millis() as u64, "prog_id": stats.prog_id, "labels": labels,
                "rules": entries, "default": default,
            })
        );
        return;
    }
    println!("{iface} {}:", point.as_str());
    for (index, row) in rows.iter().enumerate() {
        let label = escape(row.name.unwrap_or("(default)"));
        let verdict = escape(row.verdict.unwrap_or("?"));
        let counter = row.counter;
        let limit = match row.limit {
            RuleLimit::None => String::new(),
            RuleLimit::Counted(counts) => format!("  rate limit: {} over, {} within", counts.over, counts.within),
            RuleLimit::Uncounted => "  rate limit: not counted (compiled before pfc counted limits)".to_string(),
        };
        match rates(index, &counter) {
            Some((pps, bps)) => println!(
                "  {label:<32} {verdict:<7} {:>14} packets {:>16} bytes {:>12.1} pkt/s {:>14.1} B/s{limit}",
                counter.packets, counter.bytes, pps, bps
            ),
            None => {
                println!(
                    "  {label:<32} {verdict:<7} {:>14} packets {:>16} bytes{limit}",
                    counter.packets, counter.bytes
                )
            }
        }
    }
}

/// Runs `pfc stats`.
pub fn run(args: &StatsArgs) -> ExitCode {
    if let Err(code) = filters::check_iface(&args.iface) {
        return code;
    }
    let point = match filters::pick_hook(&args.state, &args.iface, args.hook) {
        Ok(point) => point,
        Err(code) => return code,
    };
    let live = filters::live(&args.state);
    let read = || live.stats(&args.iface, point);
    let mut stats = match read() {
        Ok(stats) => stats,
        Err(error) => return filters::fail_on(&args.state, &args.iface, &error),
    };
    if let Some(problem) = &stats.label_problem {
        eprintln!(
            "warning: no record labels program {} ({problem}); rules are numbered in counter order",
            stats.prog_id
        );
    }
    let format = filters::report_format(args.format, args.json, "stats");
    print(&args.iface, point, &stats, None, format);
    let Some(interval) = args.watch else { return ExitCode::SUCCESS };
    let mut taken = Instant::now();
    loop {
        std::thread::sleep(interval);
        let next = match read() {
            Ok(next) => next,
            Err(error) => return filters::fail(&error),
        };
        let elapsed = taken.elapsed().as_secs_f64();
        taken = Instant::now();
        print(&args.iface, point, &next, Some((&stats, elapsed)), format);
        stats = next;
    }
}
