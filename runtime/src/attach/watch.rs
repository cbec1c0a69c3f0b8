//! What `pfc watch` reads, taken from the kernel: a filter's place (interface and hook) in;
//! the program the link runs, its log ring buffer and log statistics maps (link →
//! program → maps, found by name) and the names that label its rules out.
//!
//! Nothing is pinned for the log: the ring buffer lives as long as the program that
//! writes to it, and a replace brings a new program with a new ring. A watcher asks
//! [`Filters::running_prog`] now and then and, when the link runs another program,
//! resolves that program's ring with [`Filters::log_source`] again: it follows the
//! kernel, not a pin that could name a ring nobody writes to any more.

use std::io;

use pfc_compiler::object::maps::{LOG_RING_MAP_NAME, LOG_STATS_MAP_NAME};
use pfc_compiler::program::log::LogStats;

use super::error::or_privileges;
use super::{AttachError, BpfSys, Filters, LabelProblem};
use crate::pins::{self, Hook};

/// A running filter's log, as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    /// The program the link runs.
    pub prog_id: u32,
    /// Its ring buffer map (`pfc_log_ring`).
    pub ring_map: u32,
    /// Its per-rule log statistics map (`pfc_log_stats`), if it has one.
    pub stats_map: Option<u32>,
    /// Rule names by index: the verified record's, or `rule#N` when no record labels
    /// the program.
    pub rules: Vec<String>,
    /// Bytes the logged rules keep per event, the most of any (the record's manifest;
    /// `None` without a record).
    pub snap_len: Option<u32>,
    /// Why the rules are numbered rather than named.
    pub label_problem: Option<LabelProblem>,
}

impl LogSource {
    /// The name of rule `index` (`rule#N` past the known names).
    pub fn rule_name(&self, index: u32) -> String {
        self.rules.get(index as usize).cloned().unwrap_or_else(|| format!("rule#{index}"))
    }
}

impl<S: BpfSys> Filters<S> {
    /// The log of the filter at `iface`/`point`: `NotLoaded` when nothing of pfc's runs
    /// there, `NothingLogged` when the program has no ring buffer (no rule logs).
    pub fn log_source(&self, iface: &str, point: Hook) -> Result<LogSource, AttachError> {
        pins::check_iface_name(iface)?;
        let paths = self.layout.filter(iface, point);
        self.check_dirs(&paths)?;
        let not_loaded = || AttachError::NotLoaded { iface: iface.to_string(), point };
        let (_, prog) = self.link_and_prog(&paths)?;
        let prog = prog.ok_or_else(not_loaded)?;
        let maps = self.sys.log_maps(prog.id).map_err(|source| {
            or_privileges(
                || "reading the filter's maps".to_string(),
                source,
                |source| AttachError::LogMaps { prog_id: prog.id, source },
            )
        })?;
        let id_of = |name: &str| maps.iter().find(|(found, _)| found == name).map(|(_, id)| *id);
        let ring_map = id_of(LOG_RING_MAP_NAME).ok_or_else(|| AttachError::NothingLogged {
            iface: iface.to_string(),
            point,
            prog_id: prog.id,
        })?;
        let (rules, snap_len, label_problem) = match self.labels(&paths, &prog)? {
            Ok(record) => {
                let snap_len =
                    record.manifest.logs.as_ref().map(|logs| logs.rules.iter().map(|r| u32::from(r.bytes)).max());
                (record.manifest.rules, snap_len.flatten(), None)
            }
            Err(problem) => {
                let rules = prog.counters.map_or(0, |map| map.entries.saturating_sub(1));
                ((0..rules).map(|i| format!("rule#{i}")).collect(), None, Some(problem))
            }
        };
        Ok(LogSource {
            prog_id: prog.id,
            ring_map,
            stats_map: id_of(LOG_STATS_MAP_NAME),
            rules,
            snap_len,
            label_problem,
        })
    }

    /// The program the link at `iface`/`point` runs now (`None`: detached or unloaded).
    pub fn running_prog(&self, iface: &str, point: Hook) -> Result<Option<u32>, AttachError> {
        pins::check_iface_name(iface)?;
        let paths = self.layout.filter(iface, point);
        self.check_dirs(&paths)?;
        let link = self.pinned_link(&paths)?;
        Ok(link.filter(|link| link.ifindex != 0).map(|link| link.prog_id))
    }

    /// Events sent and dropped per rule since the program was loaded (summed over CPUs),
    /// by rule index; empty when the program has no statistics map.
    pub fn log_stats(&self, source: &LogSource) -> Result<Vec<LogStats>, AttachError> {
        let Some(map) = source.stats_map else { return Ok(Vec::new()) };
        let source_prog = source.prog_id;
        // The map's entries are two u64 per CPU, like a counter's: sent, dropped.
        let counters = self.sys.read_counters(map).map_err(|source: io::Error| {
            or_privileges(
                || "reading the log statistics".to_string(),
                source,
                |source| AttachError::LogMaps { prog_id: source_prog, source },
            )
        })?;
        Ok(counters.into_iter().map(|c| LogStats { sent: c.packets, dropped: c.bytes }).collect())
    }
}
