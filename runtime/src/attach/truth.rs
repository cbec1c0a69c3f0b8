//! The kernel as the truth: a filter's link pin in, what actually runs out (link →
//! program → counter map), with the record that provably labels it, if any.
//!
//! - `Filters::reconcile` (writers, under the lock): after a kill at any step of a load,
//!   replace or unload, makes the pins and records match what the kernel runs: finishes
//!   a swap whose pins or record were not updated yet, discards a staged program that
//!   never ran, removes the leftovers of a load whose link never got pinned, and makes
//!   the set map pins name the running program's set maps (`super::set_pins`).
//! - [`Filters::status`] and [`Filters::stats`] (readers, no lock, nothing written) read
//!   the link's program and its counter map from the kernel, and use a record (the current
//!   one or the intent of an interrupted replace) only when it belongs to that program:
//!   same program id and tag, one counter per rule plus the default, a default verdict
//!   pfc writes. Otherwise rules are numbered and a [`LabelProblem`] says why.

use std::io;
use std::path::Path;

use serde::Serialize;

use super::error::or_privileges;
use super::sets::SetSize;
use super::{add_all, present, remove_if_present, rename, AttachError, BpfSys, Counter, Filters, LinkInfo, ProgInfo};
use crate::pins::{self, FilterPaths, Hook, Record};
use pfc_compiler::object::maps::LIMIT_STATS_MAP_NAME;
use pfc_compiler::program::limit::LimitStats;

/// What runs at a filter's place, for a writer that holds the lock.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    /// The link (attached to the interface).
    pub link: LinkInfo,
    /// The program the link runs.
    pub prog: ProgInfo,
    /// The record of that program, verified.
    pub record: Option<Record>,
}

/// Why a record does not label the running program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelProblem {
    /// No record (or none of this program).
    NoRecord {
        /// The running program.
        running: u32,
    },
    /// The record describes another program.
    OtherProgram {
        /// The program the record names.
        recorded: u32,
        /// The running program.
        running: u32,
    },
    /// Same id, but the kernel's tag differs (the id was reused).
    OtherTag {
        /// The running program.
        running: u32,
    },
    /// The record's rule names do not fit the counter map.
    RuleCount {
        /// Rule names in the record.
        names: usize,
        /// Counters in the map (rules plus the default).
        counters: u32,
    },
    /// The program has no pfc counter map.
    NoCounterMap {
        /// The running program.
        running: u32,
    },
}

impl std::fmt::Display for LabelProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelProblem::NoRecord { running } => write!(f, "no pfc record describes the running program {running}"),
            LabelProblem::OtherProgram { recorded, running } => {
                write!(f, "the record describes program {recorded}, but program {running} runs")
            }
            LabelProblem::OtherTag { running } => {
                write!(f, "the record names program {running} but not its instructions (tag differs)")
            }
            LabelProblem::RuleCount { names, counters } => write!(
                f,
                "the record names {names} rules, but the running program has {counters} counters (rules + default)"
            ),
            LabelProblem::NoCounterMap { running } => write!(f, "program {running} has no pfc counter map"),
        }
    }
}

/// Whether `record` labels `prog`.
pub(crate) fn verify(record: &Record, prog: &ProgInfo) -> Result<(), LabelProblem> {
    if record.prog_id != prog.id {
        return Err(LabelProblem::OtherProgram { recorded: record.prog_id, running: prog.id });
    }
    // Records written before pfc kept tags have none: then the id (allocated cyclically up
    // to 2^31, and records die with /run at reboot) and the counts below must fit.
    if !record.prog_tag.is_empty() && record.prog_tag != prog.tag_hex() {
        return Err(LabelProblem::OtherTag { running: prog.id });
    }
    let map = prog.counters.ok_or(LabelProblem::NoCounterMap { running: prog.id })?;
    let names = record.manifest.rules.len();
    if names as u64 + 1 != u64::from(map.entries)
        || (!record.carried.is_empty() && record.carried.len() as u64 != u64::from(map.entries))
    {
        return Err(LabelProblem::RuleCount { names, counters: map.entries });
    }
    Ok(())
}

/// One filter as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterStatus {
    /// The interface.
    pub iface: String,
    /// The attach point.
    pub point: Hook,
    /// The link, when its pin exists and the kernel answers.
    pub link: Option<LinkInfo>,
    /// The program the link runs (when attached).
    pub prog: Option<ProgInfo>,
    /// The record that labels that program (verified), or the record left behind when
    /// nothing runs.
    pub record: Option<Record>,
    /// Why no record labels the running program.
    pub label_problem: Option<LabelProblem>,
    /// The running program's sets held in maps (dynamic ones and static ones too large for
    /// a decision tree), with their element counts; empty unless a record labels it.
    pub sets: Vec<SetSize>,
}

/// Per-rule counters of one filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The program counted.
    pub prog_id: u32,
    /// (rule name, counter) in rule order.
    pub rules: Vec<(String, Counter)>,
    /// Each rule's verdict, in rule order; empty when unknown (no record labels the
    /// program, or its manifest predates per-rule verdicts).
    pub verdicts: Vec<String>,
    /// The default verdict and its counter.
    pub default: (String, Counter),
    /// Each rule's rate limit, in rule order: what it counted over and within its rate.
    pub limits: Vec<RuleLimit>,
    /// Why the rules are numbered rather than named.
    #[serde(skip)]
    pub label_problem: Option<LabelProblem>,
}

/// A rule's rate limit as `pfc stats` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleLimit {
    /// The rule has no limit (or no record says which rules have one).
    None,
    /// It has one, but the object does not count it (compiled before pfc counted limits:
    /// no `pfc_limit_stats` map): its matches are all that is known.
    Uncounted,
    /// Packets that reached the limit since the program was loaded, over and within its
    /// rate, summed over CPUs.
    Counted(LimitStats),
}

/// How often a reader reads a link again after its program went away under it.
const RACE_RETRIES: u32 = 5;

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> AttachError + '_ {
    move |source| {
        or_privileges(
            || "reading pfc's filters".to_string(),
            source,
            |source| AttachError::Pin { path: path.to_path_buf(), source },
        )
    }
}

impl<S: BpfSys> Filters<S> {
    /// The link at `paths`, `None` when there is no link pin.
    pub(super) fn pinned_link(&self, paths: &FilterPaths) -> Result<Option<LinkInfo>, AttachError> {
        if !present(&paths.link) {
            return Ok(None);
        }
        match self.sys.link(&paths.link) {
            Ok(link) => Ok(Some(link)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(read_error(&paths.link)(error)),
        }
    }

    /// The link at `paths` and, when it is attached, the program it runs. A replace can
    /// swap the program and free the old one between reading the link and reading the
    /// program: then the link is read again (a few times), so a reader racing a replace
    /// sees the old filter or the new one, never an error.
    pub(super) fn link_and_prog(
        &self,
        paths: &FilterPaths,
    ) -> Result<(Option<LinkInfo>, Option<ProgInfo>), AttachError> {
        let mut tries = 0;
        loop {
            let link = self.pinned_link(paths)?;
            let Some(attached) = link.filter(|link| link.ifindex != 0) else { return Ok((link, None)) };
            match self.sys.prog(attached.prog_id) {
                Ok(prog) => return Ok((link, Some(prog))),
                Err(error) if error.kind() == io::ErrorKind::NotFound && tries < RACE_RETRIES => tries += 1,
                Err(error) => return Err(read_error(&paths.link)(error)),
            }
        }
    }

    /// The record of `prog`: the current one, or the intent of an interrupted load.
    pub(super) fn labels(
        &self,
        paths: &FilterPaths,
        prog: &ProgInfo,
    ) -> Result<Result<Record, LabelProblem>, AttachError> {
        let mut problem = LabelProblem::NoRecord { running: prog.id };
        for path in [&paths.state, &paths.next_state] {
            let Some(record) = pins::read_record(path).map_err(super::record_error)? else { continue };
            match verify(&record, prog) {
                Ok(()) => return Ok(Ok(record)),
                Err(LabelProblem::OtherProgram { .. }) if path == &paths.next_state => {}
                Err(found) => problem = found,
            }
        }
        Ok(Err(problem))
    }

    /// Makes pins and records match what the kernel runs (see the module doc); the
    /// running filter, or `None` when nothing of pfc's runs there any more.
    pub(crate) fn reconcile(&self, paths: &FilterPaths, ifindex: u32) -> Result<Option<Running>, AttachError> {
        let link = match self.pinned_link(paths) {
            Ok(link) => link,
            // A link pin the kernel does not take as a link is no attachment.
            Err(AttachError::Pin { .. }) => None,
            Err(error) => return Err(error),
        };
        let Some(link) = link.filter(|link| link.ifindex == ifindex && ifindex != 0) else {
            // Nothing runs (a load killed before its link was pinned, or the interface
            // went away): every pin and record there is a leftover.
            self.remove_filter(paths)?;
            return Ok(None);
        };
        let prog = self.sys.prog(link.prog_id).map_err(read_error(&paths.link))?;
        // The program pin names the running program: a swap whose pins were not renamed
        // yet is finished, another program is re-pinned from the kernel.
        if self.sys.prog_id(&paths.prog).ok() != Some(prog.id) {
            if self.sys.prog_id(&paths.staged_prog).ok() == Some(prog.id) {
                rename(&paths.staged_prog, &paths.prog)?;
            } else {
                remove_if_present(&paths.prog)?;
                self.sys.pin_prog(prog.id, &paths.prog).map_err(super::pin_error(&paths.prog))?;
            }
        }
        if let Some(map) = prog.counters {
            if self.sys.map_id(&paths.counters).ok() != Some(map.id) {
                if self.sys.map_id(&paths.staged_counters).ok() == Some(map.id) {
                    rename(&paths.staged_counters, &paths.counters)?;
                } else {
                    remove_if_present(&paths.counters)?;
                    self.sys.pin_map(map.id, &paths.counters).map_err(super::pin_error(&paths.counters))?;
                }
            }
        }
        remove_if_present(&paths.staged_prog)?;
        remove_if_present(&paths.staged_counters)?;
        // The intent of a finished swap becomes the record; any other intent is dropped,
        // and so is a record of another program.
        let labels = self.labels(paths, &prog)?;
        let record = match labels {
            Ok(record) => {
                if present(&paths.next_state)
                    && pins::read_record(&paths.next_state).ok().flatten().is_some_and(|next| next.prog_id == prog.id)
                {
                    std::fs::rename(&paths.next_state, &paths.state).map_err(super::pin_error(&paths.state))?;
                }
                Some(record)
            }
            Err(_) => {
                remove_if_present(&paths.state)?;
                None
            }
        };
        remove_if_present(&paths.next_state)?;
        // The set pins name the running program's set maps (none without a record that
        // says which set a map is); any other pin there goes.
        let set_pins = self.wanted_set_pins(paths, prog.id, record.as_ref().map(|record| &record.manifest))?;
        self.sync_set_pins(paths, &set_pins)?;
        Ok(Some(Running { link, prog, record }))
    }

    /// Every pfc filter: what the kernel runs there and the record that labels it.
    pub fn status(&self) -> Result<Vec<FilterStatus>, AttachError> {
        let mut statuses = Vec::new();
        for (iface, point) in self.filters()? {
            let paths = self.layout.filter(&iface, point);
            self.check_dirs(&paths)?;
            let (link, prog) = self.link_and_prog(&paths)?;
            let (record, label_problem) = match &prog {
                Some(prog) => match self.labels(&paths, prog)? {
                    Ok(record) => (Some(record), None),
                    Err(problem) => (None, Some(problem)),
                },
                None => (pins::read_record(&paths.state).map_err(super::record_error)?, None),
            };
            let sets = match (&prog, &record) {
                (Some(prog), Some(record)) => self.set_sizes(prog, record),
                _ => Vec::new(),
            };
            statuses.push(FilterStatus { iface, point, link, prog, record, label_problem, sets });
        }
        Ok(statuses)
    }

    /// Per-rule counters of the program attached at `iface`/`point`, labelled from its
    /// verified record (plus the counts the record carries), or numbered.
    pub fn stats(&self, iface: &str, point: Hook) -> Result<Stats, AttachError> {
        pins::check_iface_name(iface)?;
        let paths = self.layout.filter(iface, point);
        self.check_dirs(&paths)?;
        let not_loaded = || AttachError::NotLoaded { iface: iface.to_string(), point };
        let mut tries = 0;
        let (prog, counters) = loop {
            let (_, prog) = self.link_and_prog(&paths)?;
            let prog = prog.ok_or_else(not_loaded)?;
            let map = prog.counters.ok_or_else(not_loaded)?;
            match self.sys.read_counters(map.id) {
                Ok(counters) => break (prog, counters),
                // The map went with a program a replace just freed: read the link again.
                Err(error) if error.kind() == io::ErrorKind::NotFound && tries < RACE_RETRIES => tries += 1,
                Err(source) => {
                    return Err(or_privileges(
                        || "reading counters".to_string(),
                        source,
                        |source| AttachError::Counters { path: paths.counters.clone(), source },
                    ))
                }
            }
        };
        let mut limits = Vec::new();
        let (names, mut verdicts, default, counters, label_problem) = match self.labels(&paths, &prog)? {
            Ok(record) => {
                let counters = add_all(&counters, &record.carried);
                let manifest = record.manifest;
                limits = self.rule_limits(prog.id, &manifest)?;
                let verdicts = manifest.verdicts.iter().map(|verdict| verdict.as_str().to_string()).collect();
                (manifest.rules, verdicts, manifest.default.as_str().to_string(), counters, None)
            }
            Err(problem) => {
                let names = (0..counters.len().saturating_sub(1)).map(|i| format!("rule#{i}")).collect();
                (names, Vec::new(), "unknown".to_string(), counters, Some(problem))
            }
        };
        if verdicts.len() != names.len() {
            verdicts.clear();
        }
        let rules: Vec<(String, Counter)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), counters.get(i).copied().unwrap_or_default()))
            .collect();
        let default_counter = counters.get(names.len()).copied().unwrap_or_default();
        limits.resize(rules.len(), RuleLimit::None);
        Ok(Stats { prog_id: prog.id, rules, verdicts, default: (default, default_counter), limits, label_problem })
    }

    /// Each rule's limit (by rule index) from the manifest of program `prog_id`, with the
    /// counts of its limit statistics map (`pfc_limit_stats`, found by name among the
    /// program's maps) where the manifest says which entry is the rule's.
    fn rule_limits(&self, prog_id: u32, manifest: &pins::Manifest) -> Result<Vec<RuleLimit>, AttachError> {
        let mut limits = vec![RuleLimit::None; manifest.rules.len()];
        let ruled = manifest.limits.iter().filter_map(|limit| {
            let rule = manifest.rules.iter().position(|name| Some(name) == limit.rule.as_ref())?;
            Some((rule, limit.stats.as_ref().map(|entry| entry.index as usize)))
        });
        let ruled: Vec<(usize, Option<usize>)> = ruled.collect();
        if ruled.is_empty() {
            return Ok(limits);
        }
        let failed = |source: io::Error| {
            or_privileges(
                || "reading the rate-limit statistics".to_string(),
                source,
                |source| AttachError::LimitStats { prog_id, source },
            )
        };
        let maps = self.sys.limit_maps(prog_id).map_err(failed)?;
        let map = maps.iter().find(|(name, _)| name == LIMIT_STATS_MAP_NAME).map(|(_, id)| *id);
        // The entries are two u64 per CPU, like a counter's: over, within.
        let counts = match map {
            Some(map) => self.sys.read_counters(map).map_err(failed)?,
            None => Vec::new(),
        };
        for (rule, entry) in ruled {
            let counted = entry.and_then(|entry| counts.get(entry));
            limits[rule] = match counted {
                Some(counter) => RuleLimit::Counted(LimitStats { over: counter.packets, within: counter.bytes }),
                None => RuleLimit::Uncounted,
            };
        }
        Ok(limits)
    }
}
