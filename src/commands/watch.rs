//! `pfc watch --iface IF [--hook …] [--format human|json] [--pcapng FILE] [--count N]`:
//! the events of a loaded filter's logged rules as they happen, one line each (time, rule,
//! verdict, interface, a summary of the frame), one `pfc.watch/1` JSON document per line
//! (and a `pfc.watch-stats/1` document per report of dropped events), or a pcapng capture
//! whose packet comments name the rule and verdict.
//!
//! The ring buffer is found from the kernel each time (link → program → `pfc_log_ring`),
//! and again when the link runs another program after a replace (checked twice a
//! second): watch follows the filter, not a pin. Events sent and dropped are read from
//! `pfc_log_stats`: new drops are reported as they happen (at most once a second), and
//! the totals since watch started when it ends (Ctrl-C, SIGTERM, `--count`, or the filter
//! unloaded), with the capture file flushed: it is valid after every event.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pfc_compiler::program::log::{Event, LogStats};
use pfc_compiler::testcase::pcapng;
use pfc_compiler::testcase::summary::{flow, hex};
use pfc_runtime::attach::live_ring::LogRing;
use pfc_runtime::attach::watch::LogSource;
use pfc_runtime::attach::AttachError;
use pfc_runtime::pins::Hook;
use serde_json::json;

use super::filters::{self, HookArg, ReportFormat};
use crate::escape::escape;

/// Arguments of `pfc watch`.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// The interface.
    #[arg(long)]
    iface: String,
    /// The hook (needed when the interface has filters at several hooks).
    #[arg(long, value_enum)]
    hook: Option<HookArg>,
    /// One line per event, or one JSON document per line (`"schema": "pfc.watch/1"` for
    /// events, `"pfc.watch-stats/1"` for reports of dropped events; docs/cli.md).
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    format: ReportFormat,
    /// Also write the events as a pcapng capture (`-`: standard output, instead of the
    /// lines); each packet's comment names the rule and the verdict.
    #[arg(long, value_name = "FILE")]
    pcapng: Option<PathBuf>,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Where pins and records live.
    #[command(flatten)]
    state: filters::StateArgs,
}

/// The `schema` of an event of `pfc watch --format json`: bumped whenever its shape changes.
pub const WATCH_SCHEMA: &str = "pfc.watch/1";
/// The `schema` of a report of sent and dropped events (`pfc watch --format json`).
pub const WATCH_STATS_SCHEMA: &str = "pfc.watch-stats/1";

/// How long one wait for events lasts: the longest Ctrl-C waits to be noticed.
const POLL: Duration = Duration::from_millis(100);
/// How often watch asks which program the link runs.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// How often watch reads the log statistics for new drops.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// Set by SIGINT and SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handler of SIGINT and SIGTERM, without `SA_RESTART`, so a wait for events
/// returns at once with `EINTR`.
fn catch_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic, which
        // is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn clock(id: libc::clockid_t) -> u64 {
    // SAFETY: a zeroed timespec is valid and `clock_gettime` only writes it.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `now` is writable; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(id, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Nanoseconds to add to `bpf_ktime_get_ns` (the monotonic clock) for the wall clock.
fn monotonic_to_unix() -> u64 {
    clock(libc::CLOCK_REALTIME).saturating_sub(clock(libc::CLOCK_MONOTONIC))
}

/// Nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ssssssZ`.
fn utc_micros(unix_ns: u64) -> String {
    let seconds = filters::utc(unix_ns / 1_000_000_000);
    format!("{}.{:06}Z", seconds.trim_end_matches('Z'), unix_ns % 1_000_000_000 / 1_000)
}

fn interface_name(ifindex: u32) -> String {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has IF_NAMESIZE bytes, as if_indextoname requires.
    let found = unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) };
    if found.is_null() {
        return format!("if#{ifindex}");
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned()
}

/// Where events go: lines on standard output and/or a pcapng capture.
struct Sinks {
    format: ReportFormat,
    lines: bool,
    pcapng: Option<Capture>,
    iface: String,
    point: Hook,
    clock_offset: u64,
}

/// A pcapng being written: one interface block per interface seen.
struct Capture {
    out: Box<dyn Write>,
    interfaces: Vec<u32>,
    snap_len: u32,
}

impl Capture {
    fn create(path: &PathBuf, snap_len: u32) -> std::io::Result<Capture> {
        let mut out: Box<dyn Write> = if path.as_os_str() == "-" {
            Box::new(BufWriter::new(std::io::stdout()))
        } else {
            Box::new(BufWriter::new(File::create(path)?))
        };
        out.write_all(&pcapng::section_header(&format!("pfc {} watch", env!("CARGO_PKG_VERSION"))))?;
        out.flush()?;
        Ok(Capture { out, interfaces: Vec::new(), snap_len })
    }

    fn write(&mut self, event: &Event, time_ns: u64, comment: &str) -> std::io::Result<()> {
        let interface = match self.interfaces.iter().position(|index| *index == event.ifindex) {
            Some(position) => position as u32,
            None => {
                self.out.write_all(&pcapng::interface(&interface_name(event.ifindex), self.snap_len))?;
                self.interfaces.push(event.ifindex);
                self.interfaces.len() as u32 - 1
            }
        };
        let frame = pcapng::Frame { interface, time_ns, original_len: event.frame_len, bytes: &event.bytes, comment };
        self.out.write_all(&pcapng::enhanced_packet(&frame))
    }
}

impl Sinks {
    fn event(&mut self, source: &LogSource, event: &Event) -> std::io::Result<()> {
        let rule = source.rule_name(event.rule);
        let verdict = match event.hook.unwrap_or(self.point).verdict(u64::from(event.action)) {
            Some(verdict) => verdict.as_str().to_string(),
            None => format!("code {}", event.action),
        };
        let unix_ns = event.time_ns.saturating_add(self.clock_offset);
        let iface = if event.ifindex == 0 { self.iface.clone() } else { interface_name(event.ifindex) };
        let summary = flow(&event.bytes);
        if let Some(capture) = &mut self.pcapng {
            capture.write(event, unix_ns, &format!("rule {rule}: {verdict}"))?;
        }
        if !self.lines {
            return Ok(());
        }
        match self.format {
            ReportFormat::Human => println!(
                "{} {} {verdict} {} {summary} ({} bytes)",
                utc_micros(unix_ns),
                escape(&rule),
                escape(&iface),
                event.frame_len
            ),
            ReportFormat::Json => println!(
                "{}",
                json!({
                    "schema": WATCH_SCHEMA, "time": utc_micros(unix_ns), "time_unix_ns": unix_ns,
                    "iface": iface, "ifindex": event.ifindex, "hook": event.hook.unwrap_or(self.point).as_str(),
                    "prog_id": source.prog_id, "rule": rule, "rule_index": event.rule, "verdict": verdict,
                    "frame_len": event.frame_len, "captured": event.bytes.len(), "summary": summary,
                    "bytes": hex(&event.bytes),
                })
            ),
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(capture) = &mut self.pcapng {
            capture.out.flush()?;
        }
        std::io::stdout().flush()
    }
}

/// Events sent and dropped since watch started, per rule, over every program it read.
#[derive(Default)]
struct Drops {
    /// Rule name → (sent, dropped) of programs watch no longer reads.
    done: Vec<(String, LogStats)>,
    /// The current program's counts when watch began reading it.
    baseline: Vec<LogStats>,
    /// The current program's counts at the last read.
    last: Vec<LogStats>,
    /// Dropped events reported so far.
    reported: u64,
}

impl Drops {
    /// Per rule (name, sent, dropped) since watch started, for rules that logged.
    fn totals(&self, source: &LogSource) -> Vec<(String, LogStats)> {
        let mut totals = self.done.clone();
        for (index, now) in self.last.iter().enumerate() {
            let base = self.baseline.get(index).copied().unwrap_or_default();
            let name = source.rule_name(index as u32);
            let (sent, dropped) = (now.sent.saturating_sub(base.sent), now.dropped.saturating_sub(base.dropped));
            match totals.iter_mut().find(|(found, _)| *found == name) {
                Some((_, total)) => {
                    total.sent += sent;
                    total.dropped += dropped;
                }
                None => totals.push((name, LogStats { sent, dropped })),
            }
        }
        totals.retain(|(_, stats)| *stats != LogStats::default());
        totals
    }

    fn dropped(&self, source: &LogSource) -> u64 {
        self.totals(source).iter().map(|(_, stats)| stats.dropped).sum()
    }

    /// Moves to another program whose counts are `now` (`fresh`: it started after watch
    /// did, so all of its counts are new).
    fn switch(&mut self, old: &LogSource, now: Vec<LogStats>, fresh: bool) {
        self.done = self.totals(old);
        self.baseline = if fresh { Vec::new() } else { now.clone() };
        self.last = now;
    }
}

/// Reports drops: a notice on stderr, or a `stats` JSON document.
fn report(format: ReportFormat, lines: bool, source: &LogSource, drops: &mut Drops, end: bool) {
    let dropped = drops.dropped(source);
    let new = dropped.saturating_sub(drops.reported);
    if new == 0 && !end {
        return;
    }
    drops.reported = dropped;
    let totals = drops.totals(source);
    if format == ReportFormat::Json && lines {
        let rules: Vec<_> = totals
            .iter()
            .map(|(rule, stats)| json!({"rule": rule, "sent": stats.sent, "dropped": stats.dropped}))
            .collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        println!(
            "{}",
            json!({
                "schema": WATCH_STATS_SCHEMA, "time": utc_micros(now.as_nanos() as u64),
                "prog_id": source.prog_id, "end": end, "dropped": dropped, "rules": rules,
            })
        );
        return;
    }
    let per_rule: Vec<String> = totals
        .iter()
        .filter(|(_, s)| s.dropped > 0)
        .map(|(rule, s)| format!("{} {}", escape(rule), s.dropped))
        .collect();
    if end {
        let sent: u64 = totals.iter().map(|(_, stats)| stats.sent).sum();
        eprintln!(
            "pfc watch: {sent} events sent and {dropped} dropped since watch started{}",
            if per_rule.is_empty() { String::new() } else { format!(" (dropped: {})", per_rule.join(", ")) }
        );
    } else {
        eprintln!(
            "pfc watch: {new} more events dropped ({dropped} since watch started: {}): over a rule's log limit \
             or the ring buffer was full",
            per_rule.join(", ")
        );
    }
}

fn stats_of(
    live: &pfc_runtime::attach::Filters<pfc_runtime::attach::live::LiveSys>,
    source: &LogSource,
) -> Vec<LogStats> {
    live.log_stats(source).unwrap_or_default()
}

/// Runs `pfc watch`.
pub fn run(args: &WatchArgs) -> ExitCode {
    if let Err(code) = filters::check_iface(&args.iface) {
        return code;
    }
    let point = match filters::pick_hook(&args.state, &args.iface, args.hook) {
        Ok(point) => point,
        Err(code) => return code,
    };
    let live = filters::live(&args.state);
    let mut source = match live.log_source(&args.iface, point) {
        Ok(source) => source,
        Err(error) => return filters::fail_on(&args.state, &args.iface, &error),
    };
    let mut ring = match LogRing::open(source.ring_map) {
        Ok(ring) => ring,
        Err(error) => return ring_error(&source, error),
    };
    if let Some(problem) = &source.label_problem {
        eprintln!("warning: no record labels program {} ({problem}); rules are numbered", source.prog_id);
    }
    let to_stdout = args.pcapng.as_ref().is_some_and(|path| path.as_os_str() == "-");
    let pcapng = match &args.pcapng {
        Some(path) => match Capture::create(path, source.snap_len.unwrap_or(0)) {
            Ok(capture) => Some(capture),
            Err(error) => {
                eprintln!("error: {}: {}", escape(&path.display().to_string()), error);
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let mut sinks = Sinks {
        format: args.format,
        lines: !to_stdout,
        pcapng,
        iface: args.iface.clone(),
        point,
        clock_offset: monotonic_to_unix(),
    };
    let mut drops = Drops::default();
    let start = stats_of(&live, &source);
    drops.switch(&source, start, false);
    catch_signals();
    eprintln!("pfc watch: {} {} (program {}); Ctrl-C to stop", escape(&args.iface), point.as_str(), source.prog_id);
    let (mut followed, mut stats_read) = (Instant::now(), Instant::now());
    let mut shown = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut code = ExitCode::SUCCESS;
    while !STOP.load(Ordering::SeqCst) && shown < limit {
        let records = match ring.poll(POLL) {
            Ok(records) => records,
            Err(error) => {
                code = ring_error(&source, error);
                break;
            }
        };
        if let Err(error) = show(&mut sinks, &source, &records, &mut shown, limit) {
            eprintln!("error: writing events: {error}");
            code = ExitCode::from(1);
            break;
        }
        if stats_read.elapsed() >= STATS_EVERY {
            stats_read = Instant::now();
            drops.last = stats_of(&live, &source);
            report(args.format, sinks.lines, &source, &mut drops, false);
        }
        if followed.elapsed() < FOLLOW_EVERY {
            continue;
        }
        followed = Instant::now();
        match live.running_prog(&args.iface, point) {
            Ok(Some(id)) if id == source.prog_id => {}
            Ok(running) => {
                // The old program may still finish a packet or two: read its ring once more.
                std::thread::sleep(Duration::from_millis(50));
                let last = ring.drain().unwrap_or_default();
                let _ = show(&mut sinks, &source, &last, &mut shown, limit);
                drops.last = stats_of(&live, &source);
                let Some(id) = running else {
                    eprintln!("pfc watch: the filter on {} at {} was unloaded", escape(&args.iface), point.as_str());
                    break;
                };
                match live.log_source(&args.iface, point).and_then(|next| {
                    LogRing::open(next.ring_map)
                        .map(|ring| (next, ring))
                        .map_err(|source| AttachError::LogMaps { prog_id: id, source })
                }) {
                    Ok((next, next_ring)) => {
                        eprintln!("pfc watch: the filter was replaced: now program {}", next.prog_id);
                        let now = stats_of(&live, &next);
                        drops.switch(&source, now, true);
                        (source, ring) = (next, next_ring);
                    }
                    Err(error) => {
                        eprintln!("pfc watch: the filter on {} was replaced", escape(&args.iface));
                        code = filters::fail(&error);
                        break;
                    }
                }
            }
            Err(error) => {
                code = filters::fail(&error);
                break;
            }
        }
    }
    if STOP.load(Ordering::SeqCst) || shown < limit {
        // Whatever is left in the ring when watch is told to stop is still shown.
        if let Ok(records) = ring.drain() {
            let _ = show(&mut sinks, &source, &records, &mut shown, limit);
        }
    }
    if let Err(error) = sinks.flush() {
        eprintln!("error: writing events: {error}");
        code = ExitCode::from(1);
    }
    drops.last = stats_of(&live, &source);
    report(args.format, sinks.lines, &source, &mut drops, true);
    code
}

/// Shows decoded records, up to `limit` in all.
fn show(
    sinks: &mut Sinks,
    source: &LogSource,
    records: &[Vec<u8>],
    shown: &mut u64,
    limit: u64,
) -> std::io::Result<()> {
    for record in records {
        if *shown >= limit {
            break;
        }
        match Event::decode(record) {
            Ok(event) => sinks.event(source, &event)?,
            Err(error) => eprintln!("warning: {error}"),
        }
        *shown += 1;
    }
    sinks.flush()
}

fn ring_error(source: &LogSource, error: std::io::Error) -> ExitCode {
    let error = match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            AttachError::Privileges { action: "reading the log".to_string(), source: error }
        }
        _ => AttachError::LogMaps { prog_id: source.prog_id, source: error },
    };
    filters::fail(&error)
}
