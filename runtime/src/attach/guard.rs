//! What keeps pfc's state pfc's: directories owned by root (or the user pfc runs as) and
//! writable by nobody else (checked with `lstat`, so a symlink is never followed), one writer per
//! interface and hook (an exclusive `flock` on a lock file opened with `O_NOFOLLOW`), and
//! the test-only pause hook that lets the kill tests stop `pfc load` between two steps.
//!
//! **Invariant:** every directory pfc reads or writes below its two roots (the pin
//! directory in bpffs and the state directory) was checked by [`owned_dir`] or
//! [`check_owned_dir`] in the same run: owned by root or the effective user, a real directory, not
//! writable by group or others. Nobody else can then plant a file or symlink in it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::AttachError;
use crate::pins::Hook;

/// Why pfc will not use a directory or file of its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    /// A symlink where pfc expects a directory or file of its own.
    Symlink,
    /// Something other than a directory (or, for lock files, a regular file).
    WrongType,
    /// Owned by another user.
    ForeignOwner {
        /// The owner's uid.
        uid: u32,
    },
    /// Writable by group or others.
    Writable {
        /// The permission bits.
        mode: u32,
    },
}

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsafe::Symlink => write!(f, "is a symlink"),
            Unsafe::WrongType => write!(f, "is not what pfc created there"),
            Unsafe::ForeignOwner { uid } => write!(f, "is owned by uid {uid}, not by root or the user pfc runs as"),
            Unsafe::Writable { mode } => write!(f, "is writable by group or others (mode {mode:04o})"),
        }
    }
}

/// Whether pfc trusts what `uid` owns: root's, and its own (a non-root user with
/// CAP_BPF; a non-root reader of root's state then gets "permission denied", not a
/// complaint about root).
fn trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Whether `metadata` (from `lstat`) is a directory pfc may trust.
fn judge_dir(metadata: &std::fs::Metadata) -> Option<Unsafe> {
    let kind = metadata.file_type();
    if kind.is_symlink() {
        Some(Unsafe::Symlink)
    } else if !kind.is_dir() {
        Some(Unsafe::WrongType)
    } else if !trusted_owner(metadata.uid()) {
        Some(Unsafe::ForeignOwner { uid: metadata.uid() })
    } else if metadata.mode() & 0o022 != 0 {
        Some(Unsafe::Writable { mode: metadata.mode() & 0o7777 })
    } else {
        None
    }
}

fn unsafe_error(path: &Path, problem: Unsafe) -> AttachError {
    AttachError::UnsafeState { path: path.to_path_buf(), problem }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AttachError + '_ {
    move |source| {
        super::error::or_privileges(
            || format!("using {}", path.display()),
            source,
            |source| AttachError::StateDir { path: path.to_path_buf(), source },
        )
    }
}

/// The directories from `root` down to `dir` (both included); `dir` must be under `root`.
fn chain(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(rest) = dir.strip_prefix(root) {
        let mut path = root.to_path_buf();
        for part in rest.components() {
            path.push(part);
            dirs.push(path.clone());
        }
    }
    dirs
}

/// Creates `dir` and the directories between `root` and it (mode 0700), or checks that
/// the existing ones are pfc's: never through a symlink, never another user's.
///
/// Other pfc processes may create the same directories at the same time (another load)
/// or remove empty ones (an unload of another hook on the same interface): a directory
/// that appeared between the look and the mkdir is judged like any existing one, and a
/// parent that vanished makes the walk start again from `root` (a few times at most).
pub fn owned_dir(root: &Path, dir: &Path) -> Result<(), AttachError> {
    const ATTEMPTS: usize = 32;
    let mut attempt = 1;
    loop {
        match create_chain(root, dir) {
            Err(ChainError::ParentVanished(_)) if attempt < ATTEMPTS => attempt += 1,
            Err(ChainError::ParentVanished(error)) | Err(ChainError::Attach(error)) => return Err(error),
            Ok(()) => return Ok(()),
        }
    }
}

/// Why one walk of [`create_chain`] failed.
enum ChainError {
    /// A directory's parent was removed while the walk ran (worth another walk).
    ParentVanished(AttachError),
    /// Anything else.
    Attach(AttachError),
}

/// One walk from `root` down to `dir`, creating what is missing and judging every level.
fn create_chain(root: &Path, dir: &Path) -> Result<(), ChainError> {
    for path in chain(root, dir) {
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                // mkdir never follows a symlink at the last component; an existing one fails.
                match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                    Ok(()) => {}
                    // Created by another pfc process meanwhile: judged below like any other.
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        return Err(ChainError::ParentVanished(io_error(&path)(error)));
                    }
                    Err(error) => return Err(ChainError::Attach(io_error(&path)(error))),
                }
            }
            Err(error) => return Err(ChainError::Attach(io_error(&path)(error))),
        }
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(ChainError::ParentVanished(io_error(&path)(error)));
            }
            Err(error) => return Err(ChainError::Attach(io_error(&path)(error))),
        };
        if let Some(problem) = judge_dir(&metadata) {
            return Err(ChainError::Attach(unsafe_error(&path, problem)));
        }
    }
    Ok(())
}

/// Checks the existing directories from `root` down to `dir` without creating any;
/// `Ok(false)` when one is missing (nothing of pfc's is there).
pub fn check_owned_dir(root: &Path, dir: &Path) -> Result<bool, AttachError> {
    for path in chain(root, dir) {
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) => {
                if let Some(problem) = judge_dir(&metadata) {
                    return Err(unsafe_error(&path, problem));
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(io_error(&path)(error)),
        }
    }
    Ok(true)
}

/// The exclusive lock of one (interface, hook): held by `pfc load` and `pfc unload` from
/// before they read the state until pins and record are final; released when dropped
/// (or when the process dies, however it dies).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

/// How long a writer waits for another one by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

impl WriterLock {
    /// Takes `STATE/locks/<iface>.<hook>.lock`, waiting up to `timeout`; `waiting` is
    /// called once (with the lock's path) when another writer holds it.
    pub fn acquire(
        state: &Path,
        iface: &str,
        point: Hook,
        timeout: Duration,
        waiting: &dyn Fn(&Path),
    ) -> Result<WriterLock, AttachError> {
        let dir = state.join("locks");
        owned_dir(state, &dir)?;
        let path = dir.join(format!("{iface}.{}.lock", point.as_str()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| {
                if source.raw_os_error() == Some(libc::ELOOP) {
                    unsafe_error(&path, Unsafe::Symlink)
                } else {
                    io_error(&path)(source)
                }
            })?;
        let metadata = file.metadata().map_err(io_error(&path))?;
        if !metadata.file_type().is_file() {
            return Err(unsafe_error(&path, Unsafe::WrongType));
        }
        if !trusted_owner(metadata.uid()) {
            return Err(unsafe_error(&path, Unsafe::ForeignOwner { uid: metadata.uid() }));
        }
        let started = Instant::now();
        let mut told = false;
        loop {
            // SAFETY: `file` is an open descriptor for the duration of the call.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(WriterLock { _file: file });
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) && error.kind() != io::ErrorKind::Interrupted {
                return Err(io_error(&path)(error));
            }
            if started.elapsed() >= timeout {
                return Err(AttachError::Busy { iface: iface.to_string(), point, lock: path, waited: timeout });
            }
            if !told {
                waiting(&path);
                told = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The environment variable of the test-only pause hook: `PFC_TEST_PAUSE_AT=<step>` makes
/// `pfc load` (or `pfc set`) print `pfc: paused at <step>` to stderr and sleep for a minute when it
/// reaches that step (see [`Step`]), so a test can kill it exactly there. Unset (always,
/// outside tests), it does nothing.
pub const PAUSE_VARIABLE: &str = "PFC_TEST_PAUSE_AT";

/// The steps of `pfc load`, in order, where the pause hook can stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The writer lock is held and the state reconciled with the kernel.
    Locked,
    /// The new program and counter map are loaded and pinned, its sets filled and their
    /// maps pinned (all staged for a replace).
    Loaded,
    /// The intent record (`<hook>.next.json`) is written.
    Intent,
    /// First load: the link is created and pinned. Replace: the link runs the new program.
    Swapped,
    /// Replace only: the old program can no longer run and its last counts are taken.
    Counted,
    /// Replace only: the program, counter and set map pins name the new objects.
    Pinned,
    /// The record is final (the lock is about to be released).
    Recorded,
    /// `pfc set add` or `del` only (not in [`Step::ALL`]): the set's entries changed, its
    /// element count is not yet settled.
    SetWritten,
}

impl Step {
    /// Every step of `pfc load`, in order.
    pub const ALL: [Step; 7] =
        [Step::Locked, Step::Loaded, Step::Intent, Step::Swapped, Step::Counted, Step::Pinned, Step::Recorded];

    /// The name `PFC_TEST_PAUSE_AT` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Locked => "locked",
            Step::Loaded => "loaded",
            Step::Intent => "intent",
            Step::Swapped => "swapped",
            Step::Counted => "counted",
            Step::Pinned => "pinned",
            Step::Recorded => "recorded",
            Step::SetWritten => "set-written",
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Unit tests: the step at which `pause_at` panics, as a kill would stop pfc there
    /// (no cleanup runs; the lock goes away with its file descriptor).
    pub(crate) static KILL_AT: std::cell::Cell<Option<Step>> = const { std::cell::Cell::new(None) };
}

/// The pause hook (see [`PAUSE_VARIABLE`]).
pub fn pause_at(step: Step) {
    #[cfg(test)]
    if KILL_AT.with(|kill| kill.get()) == Some(step) {
        panic!("killed at {}", step.as_str());
    }
    if std::env::var_os(PAUSE_VARIABLE).is_some_and(|wanted| wanted == step.as_str()) {
        eprintln!("pfc: paused at {}", step.as_str());
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("pfc-guard-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("temp");
        root
    }

    #[test]
    fn owned_dirs_are_created_private_and_foreign_or_open_ones_refused() {
        let root = temp("owned");
        let state = root.join("pfc");
        owned_dir(&state, &state.join("eth0")).expect("created");
        let mode = std::fs::metadata(state.join("eth0")).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let error = owned_dir(&state, &state.join("eth0")).expect_err("open to all");
        assert!(error.to_string().contains("writable by group or others (mode 0777)"), "{error}");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::os::unix::fs::symlink(&root, state.join("eth1")).expect("symlink");
        let error = owned_dir(&state, &state.join("eth1/xdp")).expect_err("symlink");
        assert!(error.to_string().contains("is a symlink"), "{error}");
        assert!(!root.join("xdp").exists(), "nothing created through the symlink");
        assert!(!check_owned_dir(&state, &state.join("eth2")).expect("fine"), "missing is not an error");
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    /// Loads creating the same directories while unloads remove empty ones (as pfc
    /// processes do on one interface's hooks): every creation succeeds and leaves pfc's
    /// private directory (before, the loser of a mkdir race failed with "File exists").
    #[test]
    fn concurrent_creators_and_removers_of_state_directories_never_fail() {
        let root = temp("race");
        for round in 0..50 {
            let state = root.join(format!("pfc{round}"));
            let leaf = state.join("eth0").join("xdp");
            std::thread::scope(|scope| {
                let creators: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| owned_dir(&state, &leaf).map_err(|error| error.to_string())))
                    .collect();
                scope.spawn(|| {
                    for _ in 0..20 {
                        let _ = std::fs::remove_dir(state.join("eth0"));
                        let _ = std::fs::remove_dir(&state);
                    }
                });
                for creator in creators {
                    creator.join().expect("no panic").expect("created despite the race");
                }
            });
            owned_dir(&state, &leaf).expect("still fine afterwards");
            let mode = std::fs::metadata(&leaf).expect("exists").permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn a_second_writer_waits_then_gives_up_with_a_clear_message() {
        let root = temp("lock");
        let quiet = |_: &Path| {};
        let first = WriterLock::acquire(&root, "eth0", Hook::Xdp, Duration::ZERO, &quiet).expect("free");
        let told = std::cell::Cell::new(0);
        let count = |_: &Path| told.set(told.get() + 1);
        let error = WriterLock::acquire(&root, "eth0", Hook::Xdp, Duration::from_millis(30), &count).expect_err("held");
        assert!(error.to_string().contains("another pfc load or unload is working on `eth0` at xdp"), "{error}");
        assert_eq!(told.get(), 1, "the waiter is told once");
        WriterLock::acquire(&root, "eth0", Hook::TcIngress, Duration::ZERO, &quiet).expect("other hook is free");
        drop(first);
        WriterLock::acquire(&root, "eth0", Hook::Xdp, Duration::ZERO, &quiet).expect("released");
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
