//! What can go wrong putting a filter on an interface, replacing, inspecting or removing
//! it: one variant per thing an operator has to fix, each saying what and where.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::kernel::KernelError;
use crate::pins::{AttachMode, Hook, IfaceNameError, RecordError};

/// A failed `load`, `unload`, `status` or `stats`.
#[derive(Debug, Error)]
pub enum AttachError {
    /// `--iface` cannot be an interface name; nothing was touched.
    #[error(transparent)]
    InvalidIface(#[from] IfaceNameError),
    /// The interface does not exist (in this network namespace).
    #[error("no interface `{iface}` here; existing interfaces: {}", existing.join(", "))]
    NoSuchInterface {
        /// The name asked for.
        iface: String,
        /// The interfaces that do exist.
        existing: Vec<String>,
    },
    /// The kernel said EPERM/EACCES.
    #[error(
        "{action}: permission denied: needs CAP_BPF (run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN for bpffs)"
    )]
    Privileges {
        /// What was being done.
        action: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// bpffs is not mounted and cannot be mounted.
    #[error("bpffs is not mounted at {} and mounting it failed", path.display())]
    Bpffs {
        /// The mount point.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another (non-pfc) XDP program is attached.
    #[error(
        "interface `{iface}` already has an XDP program that pfc did not attach (id {prog_id}); \
         `pfc load --force` detaches it first (not atomic), or remove it with `ip link set dev {iface} xdp off`"
    )]
    ForeignXdp {
        /// The interface.
        iface: String,
        /// The other program's id.
        prog_id: u32,
    },
    /// `--mode native` on a driver without native XDP.
    #[error("the driver of `{iface}` does not support native XDP; use `--mode generic` or `--mode auto`")]
    NativeUnsupported {
        /// The interface.
        iface: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A replace asked for another XDP mode than the attached filter's.
    #[error(
        "`{iface}` has a pfc filter in {} mode; a replace cannot switch to {} mode — `pfc unload` first",
        current.as_str(), requested.as_str()
    )]
    ModeChange {
        /// The interface.
        iface: String,
        /// The attached filter's mode.
        current: AttachMode,
        /// The requested mode.
        requested: AttachMode,
    },
    /// The kernel verifier (or libbpf) refused a program pfc's own checks accepted.
    #[error("the kernel refused the program pfc compiled — this is a pfc bug, please report it with the rule file")]
    Verifier {
        /// The verifier log's last lines, inside.
        #[source]
        source: KernelError,
    },
    /// The kernel is too old for the program (not a pfc bug: the error says what to do).
    #[error("this kernel cannot run the program")]
    OldKernel {
        /// What the program needs, inside.
        #[source]
        source: KernelError,
    },
    /// Attaching the program failed.
    #[error("attaching to `{iface}` at {}", point.as_str())]
    Attach {
        /// The interface.
        iface: String,
        /// The attach point.
        point: Hook,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Swapping the program under the existing link failed (the old one stays attached).
    #[error("replacing the filter on `{iface}` at {} (the old filter stays attached)", point.as_str())]
    Replace {
        /// The interface.
        iface: String,
        /// The attach point.
        point: Hook,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A pin could not be created, opened or removed.
    #[error("bpffs pin {}", path.display())]
    Pin {
        /// The pin's path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A directory or lock file of pfc's state could not be created or opened.
    #[error("pfc state directory or lock {}", path.display())]
    StateDir {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The counter map could not be read or written.
    #[error("counter map {}", path.display())]
    Counters {
        /// The map's pin.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A dynamic set's map could not be found, read or written.
    #[error("dynamic set `{set}` (map {map})")]
    SetMap {
        /// The set's name.
        set: String,
        /// The map's name.
        map: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A classifier table's array could not be found or written, or its values could not
    /// be read from the object.
    #[error("classifier table map {map}")]
    TableMap {
        /// The map's name.
        map: String,
        /// The OS error (`InvalidData` for contents the object does not hold).
        #[source]
        source: io::Error,
    },
    /// `pfc set` named a set the loaded filter does not have.
    #[error("the filter on {iface} has no dynamic set `{set}`; its dynamic sets: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownSet {
        /// The interface.
        iface: String,
        /// The name asked for.
        set: String,
        /// The dynamic sets it has.
        known: Vec<String>,
    },
    /// A dynamic set no rule tests: the compiler declares its maps, but the program names
    /// none of them, so the kernel keeps none for the running filter.
    #[error("dynamic set `{set}` is declared but no rule tests it, so the running filter holds no map for it: test it in a rule and `pfc load` again")]
    UntestedSet {
        /// The set's name.
        set: String,
    },
    /// `pfc set` would change a static set that the compiler put in a map (too large for a
    /// decision tree): its contents are the rule file's.
    #[error("set `{set}` of the filter on {iface} is a static set ({elements} entries held in a map because a decision tree over it would not fit): it changes only with the rule file; edit it and `pfc load` again, or declare it `dynamic`")]
    FixedSet {
        /// The interface.
        iface: String,
        /// The set's name.
        set: String,
        /// Its map entries.
        elements: u32,
    },
    /// `pfc set add` would make a set hold more than its declared size.
    #[error("dynamic set `{set}` holds at most {size} elements; it has {present} and {adding} more were given")]
    SetFull {
        /// The set's name.
        set: String,
        /// Its declared size.
        size: u32,
        /// Elements it holds now.
        present: usize,
        /// New elements given.
        adding: usize,
    },
    /// The state record could not be read or written.
    #[error("pfc state")]
    Record {
        /// What went wrong.
        #[source]
        source: RecordError,
    },
    /// Listing interfaces or pins failed.
    #[error("listing {what}")]
    List {
        /// What was being listed.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A directory or file of pfc's state is not pfc's (another user made it, or it is a
    /// symlink, or others may write to it): pfc neither uses nor deletes it.
    #[error(
        "{} {problem}: pfc will not use it. Check what is in it, remove it (as root: `rm -r {}`) \
         and run pfc again; pfc recreates it owned by root, mode 0700",
        path.display(), path.display()
    )]
    UnsafeState {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong with it.
        problem: super::guard::Unsafe,
    },
    /// Another `pfc load`/`unload` held the lock of this interface and hook too long.
    #[error(
        "another pfc load or unload is working on `{iface}` at {} (lock {} still held after {} s); \
         try again, or wait longer with --lock-timeout",
        point.as_str(), lock.display(), waited.as_secs_f64()
    )]
    Busy {
        /// The interface.
        iface: String,
        /// The attach point.
        point: Hook,
        /// The lock file.
        lock: PathBuf,
        /// How long this run waited.
        waited: Duration,
    },
    /// bpffs is missing and pfc would have to mount it in a private mount namespace (as
    /// under `ip netns exec`), where the pins would die with pfc.
    #[error(
        "no bpffs at {}, and this process runs in a private mount namespace (as under `ip netns exec`): \
         a bpffs pfc mounted here would vanish when pfc exits, and the filter with it. Run \
         `nsenter --net=/run/netns/NS pfc …` instead of `ip netns exec NS pfc …`, or pass \
         `--bpffs PATH` of a bpffs mount that outlives pfc", path.display()
    )]
    PrivateMountNamespace {
        /// Where bpffs should be.
        path: PathBuf,
    },
    /// `--bpffs PATH` is not a bpffs mount.
    #[error("--bpffs {} is not a mounted bpffs (mount one with `mount -t bpf bpf {}`)", path.display(), path.display())]
    NotBpffs {
        /// The path given.
        path: PathBuf,
    },
    /// The link's program changed under a replace (someone outside pfc swapped it).
    #[error(
        "replacing the filter on `{iface}` at {}: the link ran program {expected} when pfc looked and runs {found} now \
         (changed by something other than pfc); nothing was replaced", point.as_str()
    )]
    ConcurrentChange {
        /// The interface.
        iface: String,
        /// The attach point.
        point: Hook,
        /// The program pfc expected to replace.
        expected: u32,
        /// The program the link runs now.
        found: u32,
    },
    /// The running program has no log ring buffer: none of its rules says `log`.
    #[error(
        "the pfc filter on `{iface}` at {} (program {prog_id}) has no logged rules: add `log` to a rule \
         (`rule NAME: drop log if …`, docs/language.md) and load it again", point.as_str()
    )]
    NothingLogged {
        /// The interface.
        iface: String,
        /// The hook.
        point: Hook,
        /// The running program.
        prog_id: u32,
    },
    /// The maps of a running program could not be read.
    #[error("reading the log maps of program {prog_id}")]
    LogMaps {
        /// The program.
        prog_id: u32,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A running program's rate-limit statistics could not be read.
    #[error("reading the rate-limit statistics of program {prog_id}")]
    LimitStats {
        /// The program.
        prog_id: u32,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Nothing pfc attached is there.
    #[error("no pfc filter on `{iface}` at {}", point.as_str())]
    NotLoaded {
        /// The interface.
        iface: String,
        /// The attach point.
        point: Hook,
    },
}

impl AttachError {
    /// Whether this is a pfc bug (exit code 3) rather than something the user can fix.
    pub fn is_pfc_bug(&self) -> bool {
        matches!(self, AttachError::Verifier { .. })
    }
}

/// Turns EPERM/EACCES into [`AttachError::Privileges`], anything else into `other`.
pub(crate) fn or_privileges(
    action: impl FnOnce() -> String,
    source: io::Error,
    other: impl FnOnce(io::Error) -> AttachError,
) -> AttachError {
    if source.kind() == io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(libc::EPERM) {
        AttachError::Privileges { action: action(), source }
    } else {
        other(source)
    }
}
