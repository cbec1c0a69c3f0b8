//! A compiled object and an interface in, an attached, pinned filter out: `pfc load`
//! (first load and atomic replace), `unload`, `status` and `stats`, written against the
//! [`BpfSys`] seam so the logic is unit-tested with a fake kernel ([`live::LiveSys`] is the
//! real one).
//!
//! Attachment is always a bpf_link (an XDP link, or a TCX link for TC), pinned in bpffs
//! with the program and its counter map (see [`crate::pins`]). A replace loads the new
//! program next to the old one (`prog_next`, `counters_next`: bpffs refuses names with
//! dots), seeds its counters, and swaps it in with `BPF_LINK_UPDATE` + `BPF_F_REPLACE`
//! naming the old program the kernel runs: the interface never runs without a filter, and
//! every failure before the swap leaves the old filter attached and its pins untouched.
//!
//! **Invariants.** One writer per interface and hook ([`guard::WriterLock`], held from
//! before the state is read until pins and record are final). The kernel is the truth:
//! the link pin names the attachment, the link names the program, the program names its
//! counter map; pins and records are repaired to match at the start of every `load` and
//! `unload` ([`truth`]), and `status`/`stats` label the kernel's program only with a
//! record that provably belongs to it. A kill at any step leaves either the old or the
//! new program attached, and the next writer finishes or discards the step.
//!
//! **Counters on replace:** a rule whose name exists in both rule sets keeps its packet
//! and byte counts (so does the default's counter); new rules start at zero and are
//! reported as reset. The old counts are copied into the new map before the swap (the new
//! program is not running yet, so the copy races with nothing). After the swap pfc waits
//! for an RCU grace period ([`BpfSys::synchronize`]): then the old program can no longer
//! run, and what it counted since the copy is exact. That remainder is kept in the record
//! (`carried`) rather than written into the live map, where it would race with the new
//! program's own increments; `stats` adds it.

pub mod error;
pub mod guard;
pub mod live;
mod live_maps;
pub mod live_ring;
mod set_pins;
pub mod sets;
mod tables;
pub mod truth;
pub mod watch;

mod carry;
#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use carry::{bucket_carry, carry_plan};
use error::or_privileges;
pub use error::AttachError;
use guard::{pause_at, Step, WriterLock};
pub use truth::{FilterStatus, LabelProblem, RuleLimit, Stats};

use crate::pins::{self, AttachMode, FilterPaths, Hook, Layout, Manifest, Record};

/// One rule's counter: packets and bytes, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

impl Counter {
    /// Both counts added.
    pub fn plus(self, other: Counter) -> Counter {
        Counter { packets: self.packets.wrapping_add(other.packets), bytes: self.bytes.wrapping_add(other.bytes) }
    }
}

/// Adds `carried` to `counters` element by element.
fn add_all(counters: &[Counter], carried: &[Counter]) -> Vec<Counter> {
    counters.iter().enumerate().map(|(i, c)| c.plus(carried.get(i).copied().unwrap_or_default())).collect()
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

/// A map the kernel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapInfo {
    /// The map's id.
    pub id: u32,
    /// Its number of entries.
    pub entries: u32,
}

/// What the kernel says about a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgInfo {
    /// The program's id.
    pub id: u32,
    /// The kernel's tag (a hash of the instructions).
    pub tag: [u8; 8],
    /// pfc's counter map among the program's maps.
    pub counters: Option<MapInfo>,
}

impl ProgInfo {
    /// The tag in hex, as records keep it.
    pub fn tag_hex(&self) -> String {
        self.tag.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The system calls the attach logic needs. Paths are bpffs pins; the real
/// implementation is [`live::LiveSys`], the unit tests use a fake.
pub trait BpfSys {
    /// Interfaces of this network namespace: (name, index).
    fn interfaces(&self) -> io::Result<Vec<(String, u32)>>;
    /// Whether a bpffs is mounted at `path` (false when the path does not exist).
    fn is_bpffs(&self, path: &Path) -> io::Result<bool>;
    /// Mounts bpffs at `path`.
    fn mount_bpffs(&self, path: &Path) -> io::Result<()>;
    /// Whether this process shares init's mount namespace; `None` when it cannot tell.
    fn in_init_mount_namespace(&self) -> Option<bool>;
    /// Fails unless this process may load BPF programs (asked before pfc creates anything).
    fn may_load(&self) -> io::Result<()>;
    /// The id of any XDP program attached to the interface.
    fn xdp_program(&self, ifindex: u32) -> io::Result<Option<u32>>;
    /// Detaches a (netlink-attached) XDP program from the interface.
    fn detach_xdp(&self, ifindex: u32) -> io::Result<()>;
    /// Loads the object and pins its program and counter map.
    fn load_and_pin(&self, object: &[u8], prog_pin: &Path, counters_pin: &Path) -> Result<(), AttachError>;
    /// Attaches the pinned program with a new link, pinned at `link_pin`.
    fn attach(&self, prog_pin: &Path, ifindex: u32, point: Hook, mode: AttachMode, link_pin: &Path) -> io::Result<()>;
    /// Atomically swaps the link's program, if it still runs program `old_prog_id`.
    fn update_link(&self, link_pin: &Path, new_prog_pin: &Path, old_prog_id: u32) -> io::Result<()>;
    /// The pinned link's state.
    fn link(&self, link_pin: &Path) -> io::Result<LinkInfo>;
    /// Detaches the pinned link from its interface (the pin stays until removed).
    fn detach_link(&self, link_pin: &Path) -> io::Result<()>;
    /// The pinned program's id.
    fn prog_id(&self, prog_pin: &Path) -> io::Result<u32>;
    /// The pinned map's id.
    fn map_id(&self, map_pin: &Path) -> io::Result<u32>;
    /// The program with this id: its tag and pfc's counter map.
    fn prog(&self, prog_id: u32) -> io::Result<ProgInfo>;
    /// Pins the program with this id at `path`.
    fn pin_prog(&self, prog_id: u32, path: &Path) -> io::Result<()>;
    /// Pins the map with this id at `path`.
    fn pin_map(&self, map_id: u32, path: &Path) -> io::Result<()>;
    /// Every counter of the map with this id, summed over CPUs.
    fn read_counters(&self, map_id: u32) -> io::Result<Vec<Counter>>;
    /// Adds to counters of the pinned map (index, amount).
    fn add_counters(&self, map_pin: &Path, additions: &[(u32, Counter)]) -> io::Result<()>;
    /// Copies every entry of one hash map into another of the same shape; returns how
    /// many (rate-limit buckets across a replace).
    fn copy_map(&self, from_map_id: u32, to_map_id: u32) -> io::Result<usize>;
    /// The program's rate-limit bucket maps (`pfc_limit_N`): name and id.
    fn limit_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>>;
    /// The program's dynamic-set maps (`pfc_set_N` and `pfc_set_gen`): name and id.
    fn set_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>>;
    /// The program's log maps (`pfc_log_ring`, `pfc_log_stats`): name and id.
    fn log_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>>;
    /// The program's classifier table maps (`pfc_cls_nodes`, `pfc_cls_rules`): name and id.
    fn table_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>>;
    /// Writes `values` (back to back, each of the map's value size) into an array map for
    /// keys `0, 1, …` in order (a classifier table's contents). Returns how many.
    fn write_values(&self, map_id: u32, values: &[u8]) -> io::Result<usize>;
    /// Writes `keys` (back to back, each of the map's key size), each with `value`, into a
    /// map, in the order given: dynamic sets' contents and states. Returns how many keys
    /// were written: all of them with [`Existing::Overwrite`], those the map did not hold
    /// with [`Existing::Keep`].
    fn write_entries(&self, map_id: u32, keys: &[u8], value: &[u8], existing: Existing) -> io::Result<usize>;
    /// Deletes `keys` (back to back) from a map; returns how many were present.
    fn delete_keys(&self, map_id: u32, keys: &[u8]) -> io::Result<usize>;
    /// Every key of a map, back to back.
    fn read_keys(&self, map_id: u32) -> io::Result<Vec<u8>>;
    /// Runs `jobs`, each on a map of its own, at the same time where the implementation
    /// can (the kernel locks each map apart, so a set's IPv4 and IPv6 maps fill on two
    /// cores); the results in the jobs' order. By default one after another.
    fn map_jobs(&self, jobs: &[MapJob<'_>]) -> Vec<io::Result<MapDone>> {
        jobs.iter().map(|job| job.run(self)).collect()
    }
    /// The value of one key (exact lookup: for arrays and hashes, not tries).
    fn lookup(&self, map_id: u32, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    /// Returns after an RCU grace period: a program the kernel stopped using before the
    /// call has finished every run.
    fn synchronize(&self) -> io::Result<()>;
}

/// One map operation of [`BpfSys::map_jobs`].
#[derive(Debug, Clone, Copy)]
pub enum MapJob<'a> {
    /// [`BpfSys::write_entries`].
    Write {
        /// The map.
        map_id: u32,
        /// Keys back to back.
        keys: &'a [u8],
        /// Each key's value.
        value: &'a [u8],
        /// What to do with a key the map holds.
        existing: Existing,
    },
    /// [`BpfSys::delete_keys`].
    Delete {
        /// The map.
        map_id: u32,
        /// Keys back to back.
        keys: &'a [u8],
    },
    /// [`BpfSys::read_keys`].
    Read {
        /// The map.
        map_id: u32,
    },
}

/// What a [`MapJob`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapDone {
    /// How many keys a write wrote or a delete found.
    Count(usize),
    /// The keys a read found, back to back.
    Keys(Vec<u8>),
}

impl MapDone {
    /// The count of a write or a delete (0 for a read).
    pub fn count(&self) -> usize {
        match self {
            MapDone::Count(count) => *count,
            MapDone::Keys(_) => 0,
        }
    }

    /// The keys of a read (none for a write or a delete).
    pub fn into_keys(self) -> Vec<u8> {
        match self {
            MapDone::Count(_) => Vec::new(),
            MapDone::Keys(keys) => keys,
        }
    }
}

impl MapJob<'_> {
    /// Runs the job through `sys` on this thread.
    pub fn run<S: BpfSys + ?Sized>(&self, sys: &S) -> io::Result<MapDone> {
        match *self {
            MapJob::Write { map_id, keys, value, existing } => {
                sys.write_entries(map_id, keys, value, existing).map(MapDone::Count)
            }
            MapJob::Delete { map_id, keys } => sys.delete_keys(map_id, keys).map(MapDone::Count),
            MapJob::Read { map_id } => sys.read_keys(map_id).map(MapDone::Keys),
        }
    }
}

/// What [`BpfSys::write_entries`] does with a key the map holds already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Write it again (`BPF_ANY`).
    Overwrite,
    /// Leave it as it is and do not count it (`BPF_NOEXIST`).
    Keep,
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
    pub point: Hook,
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
    /// Each dynamic set's contents written in the rule file, by set index: its element
    /// keys (`pfc_compiler::program::DynamicSet::keys`).
    pub set_contents: Vec<Vec<sets::SetKey>>,
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

/// pfc's filters on this machine, through a [`BpfSys`].
#[derive(Debug)]
pub struct Filters<S> {
    sys: S,
    layout: Layout,
    lock_timeout: Duration,
    waiting_notice: fn(&str),
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

fn record_error(source: pins::RecordError) -> AttachError {
    AttachError::Record { source }
}

/// Removes a file or pin; a missing one is fine.
fn remove_if_present(path: &Path) -> Result<(), AttachError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(pin_error(path)(error)),
        _ => Ok(()),
    }
}

/// Renames a file or pin, replacing what is at `to`.
fn rename(from: &Path, to: &Path) -> Result<(), AttachError> {
    remove_if_present(to)?;
    std::fs::rename(from, to).map_err(pin_error(to))
}

/// Removes a directory if it is empty.
fn remove_dir_if_empty(path: &Path) {
    // Fails when not empty or missing: both mean "leave it".
    let _ = std::fs::remove_dir(path);
}

/// Whether the path exists as anything (a symlink included), without following it.
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

impl<S: BpfSys> Filters<S> {
    /// Filters under `layout`, through `sys`.
    pub fn new(sys: S, layout: Layout) -> Self {
        Filters { sys, layout, lock_timeout: guard::DEFAULT_LOCK_TIMEOUT, waiting_notice: |_| {} }
    }

    /// How long `load` and `unload` wait for another writer of the same interface and hook.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// What to tell the operator when `load` or `unload` has to wait for another writer.
    pub fn with_waiting_notice(mut self, notice: fn(&str)) -> Self {
        self.waiting_notice = notice;
        self
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

    fn check_privileges(&self, action: &str) -> Result<(), AttachError> {
        self.sys.may_load().map_err(|source| AttachError::Privileges { action: action.to_string(), source })
    }

    /// Makes sure pins will outlive this process: bpffs is there, or pfc may mount it
    /// where the mount is shared with the rest of the machine.
    fn prepare_bpffs(&self) -> Result<(), AttachError> {
        let bpffs = &self.layout.bpffs;
        let error = |source| AttachError::Bpffs { path: bpffs.clone(), source };
        if self.sys.is_bpffs(bpffs).map_err(error)? {
            return Ok(());
        }
        if !self.layout.may_mount {
            return Err(AttachError::NotBpffs { path: bpffs.clone() });
        }
        if self.sys.in_init_mount_namespace() == Some(false) {
            return Err(AttachError::PrivateMountNamespace { path: bpffs.clone() });
        }
        self.sys.mount_bpffs(bpffs).map_err(|source| or_privileges(|| "mounting bpffs".to_string(), source, error))
    }

    fn lock(&self, iface: &str, point: Hook) -> Result<WriterLock, AttachError> {
        let waiting = |lock: &Path| {
            (self.waiting_notice)(&format!(
                "another pfc load or unload is working on `{iface}` at {}; waiting up to {} s for it (lock {})",
                point.as_str(),
                self.lock_timeout.as_secs_f64(),
                lock.display()
            ))
        };
        WriterLock::acquire(&self.layout.state, iface, point, self.lock_timeout, &waiting)
    }

    /// Checks the directories of one filter that exist (creates nothing).
    fn check_dirs(&self, paths: &FilterPaths) -> Result<(), AttachError> {
        guard::check_owned_dir(&self.layout.pins, &paths.dir)?;
        guard::check_owned_dir(&self.layout.state, &paths.state_dir)?;
        Ok(())
    }

    /// Creates (or checks) the directories of one filter.
    fn own_dirs(&self, paths: &FilterPaths) -> Result<(), AttachError> {
        guard::owned_dir(&self.layout.pins, &paths.dir)?;
        guard::owned_dir(&self.layout.state, &paths.state_dir)
    }

    /// Loads and attaches a filter, replacing pfc's filter at the same place atomically.
    pub fn load(&self, request: &LoadRequest<'_>) -> Result<LoadOutcome, AttachError> {
        let ifindex = self.ifindex(request.iface)?;
        self.check_privileges("loading a filter")?;
        self.prepare_bpffs()?;
        let _lock = self.lock(request.iface, request.point)?;
        let paths = self.layout.filter(request.iface, request.point);
        self.check_dirs(&paths)?;
        let running = self.reconcile(&paths, ifindex)?;
        self.own_dirs(&paths)?;
        pause_at(Step::Locked);
        match running {
            Some(running) => self.replace(request, &paths, running),
            None => self.first_load(request, &paths, ifindex),
        }
    }

    fn first_load(
        &self,
        request: &LoadRequest<'_>,
        paths: &FilterPaths,
        ifindex: u32,
    ) -> Result<LoadOutcome, AttachError> {
        let mut notices = Vec::new();
        if request.point == Hook::Xdp {
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
        let started = Instant::now();
        let discard = |error: AttachError| {
            let _ = self.remove_filter(paths);
            error
        };
        self.sys.load_and_pin(request.object, &paths.prog, &paths.counters).map_err(discard)?;
        let kernel_load = started.elapsed();
        let prog = self.pinned_prog(&paths.prog).map_err(discard)?;
        let sets = self.fill_sets(None, &prog, request).map_err(discard)?;
        self.fill_tables(&prog, request).map_err(discard)?;
        let set_pins = self.wanted_set_pins(paths, prog.id, Some(&request.manifest)).map_err(discard)?;
        self.pin_new_sets(paths, &set_pins, false).map_err(discard)?;
        notices.extend(sets.notices());
        pause_at(Step::Loaded);
        let mode = match (request.point, request.mode) {
            (Hook::Xdp, ModeRequest::Generic) => AttachMode::Generic,
            (Hook::Xdp, _) => AttachMode::Native,
            _ => AttachMode::Tcx,
        };
        self.write_record(&paths.next_state, request, ifindex, mode, &prog, Vec::new()).map_err(discard)?;
        pause_at(Step::Intent);
        let started = Instant::now();
        let mode = self.attach_with_fallback(request, paths, ifindex, &mut notices).map_err(discard)?;
        let attach = started.elapsed();
        pause_at(Step::Swapped);
        // The fallback may have changed the mode the intent recorded.
        self.write_record(&paths.next_state, request, ifindex, mode, &prog, Vec::new())?;
        std::fs::rename(&paths.next_state, &paths.state).map_err(pin_error(&paths.state))?;
        pause_at(Step::Recorded);
        Ok(LoadOutcome {
            replaced: false,
            mode,
            prog_id: prog.id,
            counters_kept: Vec::new(),
            counters_reset: request.manifest.rules.clone(),
            notices,
            kernel_load,
            counter_copy: Duration::ZERO,
            attach,
        })
    }

    /// The kernel's view of a program pinned a moment ago.
    fn pinned_prog(&self, pin: &Path) -> Result<ProgInfo, AttachError> {
        let id = self.sys.prog_id(pin).map_err(pin_error(pin))?;
        self.sys.prog(id).map_err(pin_error(pin))
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
            (Hook::TcIngress | Hook::TcEgress, _) => AttachMode::Tcx,
            (Hook::Xdp, ModeRequest::Generic) => AttachMode::Generic,
            (Hook::Xdp, ModeRequest::Native | ModeRequest::Auto) => AttachMode::Native,
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

    /// Copies the buckets of every limit whose rule and key stayed the same from the old
    /// program's maps into the new one's (before the swap: packets the old program
    /// limits in between are not carried). Returns the rules whose buckets were kept;
    /// a copy that fails leaves that limit with full buckets.
    fn carry_buckets(
        &self,
        old: Option<&pins::Record>,
        old_prog: &ProgInfo,
        new_prog: &ProgInfo,
        request: &LoadRequest<'_>,
    ) -> Vec<String> {
        let Some(old) = old else { return Vec::new() };
        let pairs = bucket_carry(&old.manifest.limits, &request.manifest.limits);
        if pairs.is_empty() {
            return Vec::new();
        }
        let (Ok(old_maps), Ok(new_maps)) = (self.sys.limit_maps(old_prog.id), self.sys.limit_maps(new_prog.id)) else {
            return Vec::new();
        };
        let id_of = |maps: &[(String, u32)], name: &str| maps.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
        let mut kept = Vec::new();
        for (old_map, new_map) in pairs {
            let (Some(from), Some(to)) = (id_of(&old_maps, &old_map), id_of(&new_maps, &new_map)) else { continue };
            if self.sys.copy_map(from, to).is_ok() {
                let rule = request.manifest.limits.iter().find(|limit| limit.map == new_map);
                kept.extend(rule.and_then(|limit| limit.rule.clone()));
            }
        }
        kept
    }

    fn replace(
        &self,
        request: &LoadRequest<'_>,
        paths: &FilterPaths,
        running: truth::Running,
    ) -> Result<LoadOutcome, AttachError> {
        let old = running.record.as_ref();
        let current_mode = old.map(|record| record.mode);
        let requested = match request.mode {
            ModeRequest::Native => Some(AttachMode::Native),
            ModeRequest::Generic => Some(AttachMode::Generic),
            ModeRequest::Auto => None,
        };
        if let (Some(current), Some(requested), Hook::Xdp) = (current_mode, requested, request.point) {
            if current != requested {
                return Err(AttachError::ModeChange { iface: request.iface.to_string(), current, requested });
            }
        }
        let mode = current_mode.unwrap_or(match request.point {
            Hook::Xdp => requested.unwrap_or(AttachMode::Native),
            _ => AttachMode::Tcx,
        });
        let discard_staged = || {
            let _ = remove_if_present(&paths.staged_prog);
            let _ = remove_if_present(&paths.staged_counters);
            let _ = set_pins::remove_tree(&paths.staged_sets);
            let _ = remove_if_present(&paths.staged_set_gen);
            let _ = remove_if_present(&paths.next_state);
        };
        let started = Instant::now();
        self.sys.load_and_pin(request.object, &paths.staged_prog, &paths.staged_counters).inspect_err(|_| {
            discard_staged();
        })?;
        let kernel_load = started.elapsed();
        let prog = self.pinned_prog(&paths.staged_prog).inspect_err(|_| discard_staged())?;
        pause_at(Step::Loaded);

        let started = Instant::now();
        // Old counts that cannot be read, or that no verified record labels, are reset.
        let old_map = running.prog.counters;
        let before = old_map.and_then(|map| self.sys.read_counters(map.id).ok());
        let old_labels =
            old.filter(|_| before.is_some()).map(|record| (record.manifest.rules.clone(), record.manifest.default));
        let before = before.unwrap_or_default();
        let totals = add_all(&before, old.map(|record| record.carried.as_slice()).unwrap_or_default());
        let plan = carry_plan(
            old_labels.as_ref().map(|(rules, default)| (rules.as_slice(), default.as_str())),
            &request.manifest.rules,
            request.manifest.default.as_str(),
        );
        let seeds = plan.seeds(&totals);
        if !seeds.is_empty() {
            if let Err(source) = self.sys.add_counters(&paths.staged_counters, &seeds) {
                discard_staged();
                return Err(AttachError::Counters { path: paths.staged_counters.clone(), source });
            }
        }
        let buckets_kept = self.carry_buckets(old, &running.prog, &prog, request);
        let sets = self
            .fill_tables(&prog, request)
            .and_then(|()| self.fill_sets(old.map(|record| (record, &running.prog)), &prog, request))
            .and_then(|sets| {
                let pins = self.wanted_set_pins(paths, prog.id, Some(&request.manifest))?;
                self.pin_new_sets(paths, &pins, true)?;
                Ok((sets, pins))
            });
        let (sets, set_pins) = match sets {
            Ok(sets) => sets,
            Err(error) => {
                discard_staged();
                return Err(error);
            }
        };
        let counter_copy = started.elapsed();
        let ifindex = running.link.ifindex;
        self.write_record(&paths.next_state, request, ifindex, mode, &prog, Vec::new()).inspect_err(|_| {
            discard_staged();
        })?;
        pause_at(Step::Intent);

        let started = Instant::now();
        if let Err(source) = self.sys.update_link(&paths.link, &paths.staged_prog, running.link.prog_id) {
            discard_staged();
            return Err(match self.sys.link(&paths.link) {
                Ok(link) if link.prog_id != running.link.prog_id => AttachError::ConcurrentChange {
                    iface: request.iface.to_string(),
                    point: request.point,
                    expected: running.link.prog_id,
                    found: link.prog_id,
                },
                _ => or_privileges(
                    || format!("replacing the filter on {}", request.iface),
                    source,
                    |source| AttachError::Replace { iface: request.iface.to_string(), point: request.point, source },
                ),
            });
        }
        let attach = started.elapsed();
        pause_at(Step::Swapped);
        // The swap is done: from here on, failures are reported but the new filter runs.
        let mut notices = Vec::new();
        if let (Some(map), Some(_)) = (old_map, &old_labels) {
            match self.sys.synchronize().and_then(|()| self.sys.read_counters(map.id)) {
                Ok(after) => {
                    let mut carried = vec![Counter::default(); request.manifest.rules.len() + 1];
                    for (index, amount) in plan.late(&before, &after) {
                        carried[index as usize] = amount;
                    }
                    if carried.iter().any(|counter| *counter != Counter::default()) {
                        self.write_record(&paths.next_state, request, ifindex, mode, &prog, carried)?;
                    }
                }
                Err(error) => notices.push(format!(
                    "the old program's last counts could not be carried over ({error}); a few packets may be missing from `pfc stats`"
                )),
            }
        }
        pause_at(Step::Counted);
        rename(&paths.staged_prog, &paths.prog)?;
        rename(&paths.staged_counters, &paths.counters)?;
        self.sync_set_pins(paths, &set_pins)?;
        pause_at(Step::Pinned);
        std::fs::rename(&paths.next_state, &paths.state).map_err(pin_error(&paths.state))?;
        pause_at(Step::Recorded);
        let (counters_kept, counters_reset) = plan.names(&request.manifest.rules);
        if !buckets_kept.is_empty() {
            notices.push(format!("rate-limit buckets kept: {}", buckets_kept.join(", ")));
        }
        notices.extend(sets.notices());
        Ok(LoadOutcome {
            replaced: true,
            mode,
            prog_id: prog.id,
            counters_kept,
            counters_reset,
            notices,
            kernel_load,
            counter_copy,
            attach,
        })
    }

    fn write_record(
        &self,
        path: &Path,
        request: &LoadRequest<'_>,
        ifindex: u32,
        mode: AttachMode,
        prog: &ProgInfo,
        carried: Vec<Counter>,
    ) -> Result<(), AttachError> {
        let record = Record {
            iface: request.iface.to_string(),
            ifindex,
            hook: request.point,
            mode,
            prog_id: prog.id,
            prog_tag: prog.tag_hex(),
            carried,
            loaded_at: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            source: request.source.clone(),
            manifest: request.manifest.clone(),
        };
        pins::write_record(path, &record).map_err(record_error)
    }

    /// Detaches the filter and removes its pins and record. Nothing there is an error.
    pub fn unload(&self, iface: &str, point: Hook) -> Result<(), AttachError> {
        pins::check_iface_name(iface)?;
        self.check_privileges("unloading a filter")?;
        let paths = self.layout.filter(iface, point);
        self.check_dirs(&paths)?;
        if !present(&paths.dir) && !present(&paths.state) && !present(&paths.next_state) {
            return Err(AttachError::NotLoaded { iface: iface.to_string(), point });
        }
        let _lock = self.lock(iface, point)?;
        self.check_dirs(&paths)?;
        self.remove_filter(&paths)
    }

    /// Unloads every pfc filter; returns which ones.
    pub fn unload_all(&self) -> Result<Vec<(String, Hook)>, AttachError> {
        self.check_privileges("unloading filters")?;
        let filters = self.filters()?;
        for (iface, point) in &filters {
            let _lock = self.lock(iface, *point)?;
            let paths = self.layout.filter(iface, *point);
            self.check_dirs(&paths)?;
            self.remove_filter(&paths)?;
        }
        Ok(filters)
    }

    /// Every (interface, hook) with pins or records, after checking pfc's two roots.
    fn filters(&self) -> Result<Vec<(String, Hook)>, AttachError> {
        let pins = guard::check_owned_dir(&self.layout.pins, &self.layout.pins)?;
        let state = guard::check_owned_dir(&self.layout.state, &self.layout.state)?;
        if !pins && !state {
            return Ok(Vec::new());
        }
        self.layout.filters().map_err(|source| {
            or_privileges(
                || "reading pfc's filters".to_string(),
                source,
                |source| AttachError::List { what: "pfc filters", source },
            )
        })
    }

    fn remove_filter(&self, paths: &FilterPaths) -> Result<(), AttachError> {
        if present(&paths.link) {
            if let Err(source) = self.sys.detach_link(&paths.link) {
                // A defunct link (interface gone) cannot be detached again: that is fine.
                if source.kind() == io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(libc::EPERM) {
                    return Err(pin_error(&paths.link)(source));
                }
            }
        }
        for pin in [
            &paths.link,
            &paths.prog,
            &paths.counters,
            &paths.staged_prog,
            &paths.staged_counters,
            &paths.next_state,
            &paths.state,
        ] {
            remove_if_present(pin)?;
        }
        for tree in [&paths.sets, &paths.staged_sets] {
            set_pins::remove_tree(tree)?;
        }
        for pin in [&paths.set_gen, &paths.staged_set_gen] {
            remove_if_present(pin)?;
        }
        remove_dir_if_empty(&paths.dir);
        for dir in [paths.dir.parent(), paths.state.parent()].into_iter().flatten() {
            remove_dir_if_empty(dir);
        }
        Ok(())
    }
}

/// Whether an attach error means "this driver has no native XDP".
fn is_unsupported(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EOPNOTSUPP)) || error.kind() == io::ErrorKind::Unsupported
}
