//! A compiled object and an interface in, an attached, pinned filter out: `pfc load`
//! (first load and atomic replace), `unload`, `status` and `stats`, written against the
//! [`BpfSys`] seam so the logic is unit-tested with a fake kernel ([`live::LiveSys`] is the
//! real one).
//!
//! Attachment is always a bpf_link (an XDP link, or a TCX link for TC), pinned in bpffs
//! with the program and its counter map (see [`crate::pins`]). A replace loads the new
//! program next to the old one (`prog_next`, `counters_next`: bpffs refuses names with dots), seeds its counters, and swaps
//! it in with `BPF_LINK_UPDATE` + `BPF_F_REPLACE` naming the expected old program: the
//! interface never runs without a filter, and every failure before the swap leaves the
//! old filter attached and its pins untouched.
//!
//! **Counters on replace:** a rule whose name exists in both rule sets keeps its packet
//! and byte counts (so does the default's counter); new rules start at zero and are
//! reported as reset. The old counts are copied into the new map before the swap, and the
//! few packets the old program counted between that copy and the swap are added after it.

pub mod error;
pub mod live;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use error::or_privileges;
pub use error::AttachError;

use crate::pins::{self, AttachMode, AttachPoint, FilterPaths, Layout, Manifest, Record};

/// One rule's counter: packets and bytes, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// What the kernel says about a pinned link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link's id.
    pub id: u32,
    /// The program it runs.
    pub prog_id: u32,
    /// The interface it is attached to; 0 when the interface is gone (a defunct link).
    pub ifindex: u32,
}

/// The system calls the attach logic needs. Paths are bpffs pins; the real
/// implementation is [`live::LiveSys`], the unit tests use a fake.
pub trait BpfSys {
    /// Interfaces of this network namespace: (name, index).
    fn interfaces(&self) -> io::Result<Vec<(String, u32)>>;
    /// Mounts bpffs at `mount_point` unless one is mounted there.
    fn ensure_bpffs(&self, mount_point: &Path) -> io::Result<()>;
    /// The id of any XDP program attached to the interface.
    fn xdp_program(&self, ifindex: u32) -> io::Result<Option<u32>>;
    /// Detaches a (netlink-attached) XDP program from the interface.
    fn detach_xdp(&self, ifindex: u32) -> io::Result<()>;
    /// Loads the object and pins its program and counter map.
    fn load_and_pin(&self, object: &[u8], prog_pin: &Path, counters_pin: &Path) -> Result<(), AttachError>;
    /// Attaches the pinned program with a new link, pinned at `link_pin`.
    fn attach(
        &self,
        prog_pin: &Path,
        ifindex: u32,
        point: AttachPoint,
        mode: AttachMode,
        link_pin: &Path,
    ) -> io::Result<()>;
    /// Atomically swaps the link's program, if it still runs `old_prog_pin`.
    fn update_link(&self, link_pin: &Path, new_prog_pin: &Path, old_prog_pin: &Path) -> io::Result<()>;
    /// The pinned link's state.
    fn link(&self, link_pin: &Path) -> io::Result<LinkInfo>;
    /// Detaches the pinned link from its interface (the pin stays until removed).
    fn detach_link(&self, link_pin: &Path) -> io::Result<()>;
    /// The pinned program's id.
    fn prog_id(&self, prog_pin: &Path) -> io::Result<u32>;
    /// Every counter of the pinned map, summed over CPUs.
    fn read_counters(&self, map_pin: &Path) -> io::Result<Vec<Counter>>;
    /// Adds to counters of the pinned map (index, amount).
    fn add_counters(&self, map_pin: &Path, additions: &[(u32, Counter)]) -> io::Result<()>;
}

/// The XDP mode asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeRequest {
    /// Native, falling back to generic with a notice.
    Auto,
    /// Native or fail.
    Native,
    /// Generic.
    Generic,
}

/// What `load` needs.
#[derive(Debug, Clone)]
pub struct LoadRequest<'a> {
    /// The interface name.
    pub iface: &'a str,
    /// Where to attach.
    pub point: AttachPoint,
    /// The XDP mode (ignored for TC).
    pub mode: ModeRequest,
    /// Detach a foreign XDP program first.
    pub force: bool,
    /// The compiled object (with counters).
    pub object: &'a [u8],
    /// Its manifest.
    pub manifest: Manifest,
    /// The rule file's path, for `status`.
    pub source: String,
}

/// What `load` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOutcome {
    /// Whether an existing pfc filter was replaced.
    pub replaced: bool,
    /// The mode the filter runs in.
    pub mode: AttachMode,
    /// The new program's id.
    pub prog_id: u32,
    /// Rules whose counters were carried over from the replaced filter.
    pub counters_kept: Vec<String>,
    /// Rules whose counters start at zero.
    pub counters_reset: Vec<String>,
    /// Things the operator should know (fallback to generic, a detached foreign program).
    pub notices: Vec<String>,
    /// Time to load the program into the kernel (verifier included) and pin it.
    pub kernel_load: Duration,
    /// Time to read the old counters and seed the new map before a swap.
    pub counter_copy: Duration,
    /// Time to attach it, or for a replace the `BPF_LINK_UPDATE` swap alone.
    pub attach: Duration,
}

/// One filter as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterStatus {
    /// The interface.
    pub iface: String,
    /// The attach point.
    pub point: AttachPoint,
    /// The state record, when there is one.
    pub record: Option<Record>,
    /// The link, when its pin exists and the kernel answers.
    pub link: Option<LinkInfo>,
}

/// Per-rule counters of one filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// (rule name, counter) in rule order.
    pub rules: Vec<(String, Counter)>,
    /// The default verdict and its counter.
    pub default: (String, Counter),
}

/// pfc's filters on this machine, through a [`BpfSys`].
#[derive(Debug)]
pub struct Filters<S> {
    sys: S,
    layout: Layout,
}

fn pin_error(path: &Path) -> impl FnOnce(io::Error) -> AttachError + '_ {
    move |source| {
        or_privileges(
            || format!("pinning {}", path.display()),
            source,
            |source| AttachError::Pin { path: path.to_path_buf(), source },
        )
    }
}

/// Removes a file or pin; a missing one is fine.
fn remove_if_present(path: &Path) -> Result<(), AttachError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(pin_error(path)(error)),
        _ => Ok(()),
    }
}

/// Removes a directory if it is empty.
fn remove_dir_if_empty(path: &Path) {
    // Fails when not empty or missing: both mean "leave it".
    let _ = std::fs::remove_dir(path);
}

impl<S: BpfSys> Filters<S> {
    /// Filters under `layout`, through `sys`.
    pub fn new(sys: S, layout: Layout) -> Self {
        Filters { sys, layout }
    }

    /// The interface's index, or the list of interfaces that exist.
    pub fn ifindex(&self, iface: &str) -> Result<u32, AttachError> {
        pins::check_iface_name(iface)?;
        let interfaces = self.sys.interfaces().map_err(|source| AttachError::List { what: "interfaces", source })?;
        match interfaces.iter().find(|(name, _)| name == iface) {
            Some((_, index)) => Ok(*index),
            None => Err(AttachError::NoSuchInterface {
                iface: iface.to_string(),
                existing: interfaces.into_iter().map(|(name, _)| name).collect(),
            }),
        }
    }

    /// Loads and attaches a filter, replacing pfc's filter at the same place atomically.
    pub fn load(&self, request: &LoadRequest<'_>) -> Result<LoadOutcome, AttachError> {
        let ifindex = self.ifindex(request.iface)?;
        self.sys.ensure_bpffs(&self.layout.bpffs).map_err(|source| {
            or_privileges(
                || "mounting bpffs".to_string(),
                source,
                |source| AttachError::Bpffs { path: self.layout.bpffs.clone(), source },
            )
        })?;
        let paths = self.layout.filter(request.iface, request.point);
        if paths.link.exists() {
            match self.sys.link(&paths.link) {
                Ok(link) if link.ifindex == ifindex => return self.replace(request, &paths, ifindex),
                // A defunct link (the interface was deleted or recreated): start over.
                _ => self.remove_filter(&paths)?,
            }
        }
        self.first_load(request, &paths, ifindex)
    }

    fn first_load(
        &self,
        request: &LoadRequest<'_>,
        paths: &FilterPaths,
        ifindex: u32,
    ) -> Result<LoadOutcome, AttachError> {
        let mut notices = Vec::new();
        if request.point == AttachPoint::Xdp {
            let foreign =
                self.sys.xdp_program(ifindex).map_err(|source| AttachError::List { what: "XDP programs", source })?;
            if let Some(prog_id) = foreign {
                if !request.force {
                    return Err(AttachError::ForeignXdp { iface: request.iface.to_string(), prog_id });
                }
                self.sys.detach_xdp(ifindex).map_err(|source| self.attach_error(request, source))?;
                notices.push(format!("detached XDP program {prog_id} from {} (--force)", request.iface));
            }
        }
        std::fs::create_dir_all(&paths.dir).map_err(pin_error(&paths.dir))?;
        for stale in [&paths.prog, &paths.counters, &paths.staged_prog, &paths.staged_counters] {
            remove_if_present(stale)?;
        }
        let started = Instant::now();
        self.sys.load_and_pin(request.object, &paths.prog, &paths.counters).inspect_err(|_| {
            let _ = self.remove_filter(paths);
        })?;
        let kernel_load = started.elapsed();
        let started = Instant::now();
        let mode = match self.attach_with_fallback(request, paths, ifindex, &mut notices) {
            Ok(mode) => mode,
            Err(error) => {
                let _ = self.remove_filter(paths);
                return Err(error);
            }
        };
        let attach = started.elapsed();
        let prog_id = self.sys.prog_id(&paths.prog).map_err(pin_error(&paths.prog))?;
        self.write_record(request, ifindex, mode, prog_id)?;
        Ok(LoadOutcome {
            replaced: false,
            mode,
            prog_id,
            counters_kept: Vec::new(),
            counters_reset: request.manifest.rules.clone(),
            notices,
            kernel_load,
            counter_copy: Duration::ZERO,
            attach,
        })
    }

    fn attach_error(&self, request: &LoadRequest<'_>, source: io::Error) -> AttachError {
        or_privileges(
            || format!("attaching to {}", request.iface),
            source,
            |source| AttachError::Attach { iface: request.iface.to_string(), point: request.point, source },
        )
    }

    fn attach_with_fallback(
        &self,
        request: &LoadRequest<'_>,
        paths: &FilterPaths,
        ifindex: u32,
        notices: &mut Vec<String>,
    ) -> Result<AttachMode, AttachError> {
        let attach = |mode| self.sys.attach(&paths.prog, ifindex, request.point, mode, &paths.link);
        let mode = match (request.point, request.mode) {
            (AttachPoint::TcIngress | AttachPoint::TcEgress, _) => AttachMode::Tcx,
            (AttachPoint::Xdp, ModeRequest::Generic) => AttachMode::Generic,
            (AttachPoint::Xdp, ModeRequest::Native | ModeRequest::Auto) => AttachMode::Native,
        };
        match attach(mode) {
            Ok(()) => Ok(mode),
            Err(source) if mode == AttachMode::Native && is_unsupported(&source) => {
                if request.mode == ModeRequest::Native {
                    return Err(AttachError::NativeUnsupported { iface: request.iface.to_string(), source });
                }
                notices.push(format!(
                    "the driver of {} has no native XDP ({source}); attached in generic mode",
                    request.iface
                ));
                attach(AttachMode::Generic).map_err(|source| self.attach_error(request, source))?;
                Ok(AttachMode::Generic)
            }
            Err(source) => Err(self.attach_error(request, source)),
        }
    }

    fn replace(
        &self,
        request: &LoadRequest<'_>,
        paths: &FilterPaths,
        ifindex: u32,
    ) -> Result<LoadOutcome, AttachError> {
        let old = pins::read_record(&paths.state).map_err(|source| AttachError::Record { source })?;
        let current_mode = old.as_ref().map(|record| record.mode);
        let requested = match request.mode {
            ModeRequest::Native => Some(AttachMode::Native),
            ModeRequest::Generic => Some(AttachMode::Generic),
            ModeRequest::Auto => None,
        };
        if let (Some(current), Some(requested), AttachPoint::Xdp) = (current_mode, requested, request.point) {
            if current != requested {
                return Err(AttachError::ModeChange { iface: request.iface.to_string(), current, requested });
            }
        }
        let mode = current_mode.unwrap_or(match request.point {
            AttachPoint::Xdp => requested.unwrap_or(AttachMode::Native),
            _ => AttachMode::Tcx,
        });
        for stale in [&paths.staged_prog, &paths.staged_counters] {
            remove_if_present(stale)?;
        }
        let discard_staged = || {
            let _ = remove_if_present(&paths.staged_prog);
            let _ = remove_if_present(&paths.staged_counters);
        };
        let started = Instant::now();
        self.sys
            .load_and_pin(request.object, &paths.staged_prog, &paths.staged_counters)
            .inspect_err(|_| discard_staged())?;
        let kernel_load = started.elapsed();

        let started = Instant::now();
        // Old counts that cannot be read (or are not labelled) are reported as reset.
        let before = self.sys.read_counters(&paths.counters).ok();
        let old_rules = old.as_ref().filter(|_| before.is_some()).map(|record| record.manifest.rules.clone());
        let before = before.unwrap_or_default();
        let plan = carry_plan(old_rules.as_deref(), &request.manifest.rules);
        let counter_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AttachError::Counters { path, source }
        };
        let seeds = plan.seeds(&before);
        if !seeds.is_empty() {
            if let Err(error) = self.sys.add_counters(&paths.staged_counters, &seeds) {
                discard_staged();
                return Err(counter_error(&paths.staged_counters)(error));
            }
        }
        let counter_copy = started.elapsed();
        let started = Instant::now();
        if let Err(source) = self.sys.update_link(&paths.link, &paths.staged_prog, &paths.prog) {
            discard_staged();
            return Err(or_privileges(
                || format!("replacing the filter on {}", request.iface),
                source,
                |source| AttachError::Replace { iface: request.iface.to_string(), point: request.point, source },
            ));
        }
        let attach = started.elapsed();
        // The swap is done: from here on, failures are reported but the new filter runs.
        if !seeds.is_empty() {
            let after = self.sys.read_counters(&paths.counters).unwrap_or_default();
            let late = plan.late(&before, &after);
            if !late.is_empty() {
                self.sys.add_counters(&paths.staged_counters, &late).map_err(counter_error(&paths.staged_counters))?;
            }
        }
        for (staged, pin) in [(&paths.staged_prog, &paths.prog), (&paths.staged_counters, &paths.counters)] {
            remove_if_present(pin)?;
            std::fs::rename(staged, pin).map_err(pin_error(pin))?;
        }
        let prog_id = self.sys.prog_id(&paths.prog).map_err(pin_error(&paths.prog))?;
        self.write_record(request, ifindex, mode, prog_id)?;
        let (counters_kept, counters_reset) = plan.names(&request.manifest.rules);
        Ok(LoadOutcome {
            replaced: true,
            mode,
            prog_id,
            counters_kept,
            counters_reset,
            notices: Vec::new(),
            kernel_load,
            counter_copy,
            attach,
        })
    }

    fn write_record(
        &self,
        request: &LoadRequest<'_>,
        ifindex: u32,
        mode: AttachMode,
        prog_id: u32,
    ) -> Result<(), AttachError> {
        let record = Record {
            iface: request.iface.to_string(),
            ifindex,
            hook: request.point,
            mode,
            prog_id,
            loaded_at: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            source: request.source.clone(),
            manifest: request.manifest.clone(),
        };
        let path = self.layout.filter(request.iface, request.point).state;
        pins::write_record(&path, &record).map_err(|source| AttachError::Record { source })
    }

    /// Detaches the filter and removes its pins and record. Nothing there is an error.
    pub fn unload(&self, iface: &str, point: AttachPoint) -> Result<(), AttachError> {
        pins::check_iface_name(iface)?;
        let paths = self.layout.filter(iface, point);
        if !paths.dir.exists() && !paths.state.exists() {
            return Err(AttachError::NotLoaded { iface: iface.to_string(), point });
        }
        self.remove_filter(&paths)
    }

    /// Unloads every pfc filter; returns which ones.
    pub fn unload_all(&self) -> Result<Vec<(String, AttachPoint)>, AttachError> {
        let filters = self.layout.filters().map_err(|source| AttachError::List { what: "pfc filters", source })?;
        for (iface, point) in &filters {
            self.remove_filter(&self.layout.filter(iface, *point))?;
        }
        Ok(filters)
    }

    fn remove_filter(&self, paths: &FilterPaths) -> Result<(), AttachError> {
        if paths.link.exists() {
            if let Err(source) = self.sys.detach_link(&paths.link) {
                // A defunct link (interface gone) cannot be detached again: that is fine.
                if source.kind() == io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(libc::EPERM) {
                    return Err(pin_error(&paths.link)(source));
                }
            }
        }
        for pin in [&paths.link, &paths.prog, &paths.counters, &paths.staged_prog, &paths.staged_counters, &paths.state]
        {
            remove_if_present(pin)?;
        }
        remove_dir_if_empty(&paths.dir);
        for dir in [paths.dir.parent(), paths.state.parent()].into_iter().flatten() {
            remove_dir_if_empty(dir);
        }
        Ok(())
    }

    /// Every pfc filter: its record and its link as the kernel sees it now.
    pub fn status(&self) -> Result<Vec<FilterStatus>, AttachError> {
        let filters = self.layout.filters().map_err(|source| AttachError::List { what: "pfc filters", source })?;
        let mut statuses = Vec::new();
        for (iface, point) in filters {
            let paths = self.layout.filter(&iface, point);
            let record = pins::read_record(&paths.state).map_err(|source| AttachError::Record { source })?;
            let link = if paths.link.exists() { self.sys.link(&paths.link).ok() } else { None };
            statuses.push(FilterStatus { iface, point, record, link });
        }
        Ok(statuses)
    }

    /// Per-rule counters of one filter, labelled from its manifest.
    pub fn stats(&self, iface: &str, point: AttachPoint) -> Result<Stats, AttachError> {
        pins::check_iface_name(iface)?;
        let paths = self.layout.filter(iface, point);
        if !paths.counters.exists() {
            return Err(AttachError::NotLoaded { iface: iface.to_string(), point });
        }
        let record = pins::read_record(&paths.state).map_err(|source| AttachError::Record { source })?;
        let counters = self.sys.read_counters(&paths.counters).map_err(|source| {
            or_privileges(
                || "reading counters".to_string(),
                source,
                |source| AttachError::Counters { path: paths.counters.clone(), source },
            )
        })?;
        let (names, default) = match record {
            Some(record) => (record.manifest.rules, record.manifest.default),
            None => {
                ((0..counters.len().saturating_sub(1)).map(|i| format!("rule#{i}")).collect(), "default".to_string())
            }
        };
        let rules = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), counters.get(i).copied().unwrap_or_default()))
            .collect();
        let default_counter = counters.get(names.len()).copied().unwrap_or_default();
        Ok(Stats { rules, default: (default, default_counter) })
    }
}

/// Whether an attach error means "this driver has no native XDP".
fn is_unsupported(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EOPNOTSUPP)) || error.kind() == io::ErrorKind::Unsupported
}

/// Which old counter each new counter continues: `sources[new] = Some(old)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CarryPlan {
    sources: Vec<Option<usize>>,
}

/// Matches rules by name; the default's counter (last) continues the old default's.
fn carry_plan(old_rules: Option<&[String]>, new_rules: &[String]) -> CarryPlan {
    let Some(old_rules) = old_rules else { return CarryPlan { sources: vec![None; new_rules.len() + 1] } };
    let mut sources: Vec<Option<usize>> =
        new_rules.iter().map(|name| old_rules.iter().position(|old| old == name)).collect();
    sources.push(Some(old_rules.len()));
    CarryPlan { sources }
}

impl CarryPlan {
    /// Nonzero old counts to add to the new map.
    fn seeds(&self, old: &[Counter]) -> Vec<(u32, Counter)> {
        self.additions(|index| old.get(index).copied().unwrap_or_default())
    }

    /// What the old program counted between `before` and `after`.
    fn late(&self, before: &[Counter], after: &[Counter]) -> Vec<(u32, Counter)> {
        self.additions(|index| {
            let (b, a) =
                (before.get(index).copied().unwrap_or_default(), after.get(index).copied().unwrap_or_default());
            Counter { packets: a.packets.saturating_sub(b.packets), bytes: a.bytes.saturating_sub(b.bytes) }
        })
    }

    fn additions(&self, amount: impl Fn(usize) -> Counter) -> Vec<(u32, Counter)> {
        self.sources
            .iter()
            .enumerate()
            .filter_map(|(new, old)| old.map(|old| (new as u32, amount(old))))
            .filter(|(_, counter)| *counter != Counter::default())
            .collect()
    }

    /// (kept, reset) rule names.
    fn names(&self, new_rules: &[String]) -> (Vec<String>, Vec<String>) {
        let (kept, reset): (Vec<_>, Vec<_>) =
            new_rules.iter().zip(&self.sources).partition(|(_, source)| source.is_some());
        (
            kept.into_iter().map(|(name, _)| name.clone()).collect(),
            reset.into_iter().map(|(name, _)| name.clone()).collect(),
        )
    }
}
