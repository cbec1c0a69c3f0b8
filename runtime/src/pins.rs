//! Where an attached filter lives: an interface and attach point in, the bpffs pin paths
//! and the state-file path out, plus the state record (manifest, source, mode) itself.
//!
//! ```text
//! /sys/fs/bpf/pfc/<iface>/<hook>/prog       the program          (bpffs: BPF objects only)
//! /sys/fs/bpf/pfc/<iface>/<hook>/link       the bpf_link holding the attachment
//! /sys/fs/bpf/pfc/<iface>/<hook>/counters   the per-CPU counter map
//! /sys/fs/bpf/pfc/<iface>/<hook>/sets/<set>/<family>_gen<G>
//!                                           a set's map of one family and generation
//! /sys/fs/bpf/pfc/<iface>/<hook>/set_gen    the sets' generation array (pfc_set_gen)
//! /run/pfc/<iface>/<hook>.json              the manifest, source path, mode, load time
//! ```
//! bpffs holds only BPF objects, so the manifest goes to `/run` (tmpfs): both vanish at
//! reboot, together. `<hook>` is `xdp`, `tc-ingress` or `tc-egress`.
//!
//! **Invariant:** a filter is attached exactly when its `link` pin names a link the kernel
//! has attached; the program and counter pins and the record are repaired to match it (see
//! `attach::truth`). Records of a load in progress are written as `<hook>.next.json` first
//! and renamed over `<hook>.json` when the load is done.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a filter is attached on an interface: the one hook type of the object contract
/// (`xdp`, `tc-ingress`, `tc-egress`, also the pin directory's name).
pub use pfc_compiler::object::Hook;

/// How an XDP program is attached; TC programs are always [`AttachMode::Tcx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// XDP in the driver.
    Native,
    /// XDP on the generic (skb) path.
    Generic,
    /// A TCX link (TC ingress or egress).
    Tcx,
}

impl AttachMode {
    /// The name shown by `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
            AttachMode::Tcx => "tcx",
        }
    }
}

/// The roots of pfc's state: bpffs for the BPF objects, a tmpfs directory for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Where bpffs is (or gets) mounted, e.g. `/sys/fs/bpf`.
    pub bpffs: PathBuf,
    /// pfc's directory inside it, e.g. `/sys/fs/bpf/pfc`.
    pub pins: PathBuf,
    /// Where state records and lock files go, e.g. `/run/pfc`.
    pub state: PathBuf,
    /// Whether pfc may mount bpffs at `bpffs` when none is there (only at the default
    /// `/sys/fs/bpf`; a `--bpffs PATH` must already be a bpffs mount).
    pub may_mount: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new(None, None)
    }
}

impl Layout {
    /// The default roots (`/sys/fs/bpf`, `/run/pfc`), or the given ones: pins go to
    /// `BPFFS/pfc`, records to `RUN_DIR`.
    pub fn new(bpffs: Option<PathBuf>, run_dir: Option<PathBuf>) -> Layout {
        let may_mount = bpffs.is_none();
        let bpffs = bpffs.unwrap_or_else(|| PathBuf::from("/sys/fs/bpf"));
        Layout {
            pins: bpffs.join("pfc"),
            bpffs,
            state: run_dir.unwrap_or_else(|| PathBuf::from("/run/pfc")),
            may_mount,
        }
    }
}

/// The paths of one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPaths {
    /// The pin directory.
    pub dir: PathBuf,
    /// The program pin.
    pub prog: PathBuf,
    /// The link pin.
    pub link: PathBuf,
    /// The counter map pin.
    pub counters: PathBuf,
    /// Where a replacement program is pinned until it is swapped in.
    pub staged_prog: PathBuf,
    /// Where a replacement counter map is pinned until it is swapped in.
    pub staged_counters: PathBuf,
    /// The directory of the set map pins: `sets/<set>/<family>_gen<G>`.
    pub sets: PathBuf,
    /// Where a replacement's set map pins are until it is swapped in.
    pub staged_sets: PathBuf,
    /// The sets' generation array pin.
    pub set_gen: PathBuf,
    /// Where a replacement's generation array is pinned until it is swapped in.
    pub staged_set_gen: PathBuf,
    /// The state record.
    pub state: PathBuf,
    /// The intent record of a load or replace in progress: the new program's record,
    /// written before the link changes and renamed over `state` after.
    pub next_state: PathBuf,
    /// The interface's state directory (holds `state` and `next_state`).
    pub state_dir: PathBuf,
}

/// The longest interface name Linux accepts (`IFNAMSIZ` is 16 with the NUL).
pub const IFACE_NAME_MAX: usize = 15;

/// Why a string cannot be an interface name: it would not name one, or it would build a
/// path outside pfc's directories (`..`, `a/b`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfaceNameError {
    /// The name is empty.
    #[error("an interface name cannot be empty")]
    Empty,
    /// Longer than `IFNAMSIZ - 1` bytes.
    #[error("interface name {shown} is {len} bytes long; Linux allows at most {IFACE_NAME_MAX}")]
    TooLong {
        /// The name, quoted and escaped.
        shown: String,
        /// Its length in bytes.
        len: usize,
    },
    /// `.` or `..`.
    #[error("interface name {shown} is not a name (`.` and `..` are directories)")]
    Dots {
        /// The name, quoted and escaped.
        shown: String,
    },
    /// Contains `/`, NUL, whitespace or a control character.
    #[error("interface name {shown} contains {what}, which no interface name has")]
    BadCharacter {
        /// The name, quoted and escaped.
        shown: String,
        /// The offending character, described.
        what: String,
    },
}

/// Checks that `name` can be an interface name (the kernel's `dev_valid_name` rules):
/// 1 to 15 bytes, not `.` or `..`, no `/`, `:`, whitespace, NUL or control characters.
/// Every command checks this before it builds a path from the name.
pub fn check_iface_name(name: &str) -> Result<(), IfaceNameError> {
    let shown = || format!("\"{}\"", name.escape_debug());
    if name.is_empty() {
        return Err(IfaceNameError::Empty);
    }
    if name.len() > IFACE_NAME_MAX {
        return Err(IfaceNameError::TooLong { shown: shown(), len: name.len() });
    }
    if name == "." || name == ".." {
        return Err(IfaceNameError::Dots { shown: shown() });
    }
    if let Some(bad) = name.chars().find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control()) {
        let what = match bad {
            '/' => "`/`".to_string(),
            ':' => "`:`".to_string(),
            _ => format!("the character {bad:?}"),
        };
        return Err(IfaceNameError::BadCharacter { shown: shown(), what });
    }
    Ok(())
}

impl Layout {
    /// The paths of the filter on `iface` at `point`. `iface` must pass
    /// [`check_iface_name`] (the attach logic checks it before calling this).
    pub fn filter(&self, iface: &str, point: Hook) -> FilterPaths {
        let dir = self.pins.join(iface).join(point.as_str());
        FilterPaths {
            prog: dir.join("prog"),
            link: dir.join("link"),
            counters: dir.join("counters"),
            staged_prog: dir.join("prog_next"),
            staged_counters: dir.join("counters_next"),
            sets: dir.join("sets"),
            staged_sets: dir.join("sets_next"),
            set_gen: dir.join("set_gen"),
            staged_set_gen: dir.join("set_gen_next"),
            state: self.state.join(iface).join(format!("{}.json", point.as_str())),
            next_state: self.state.join(iface).join(format!("{}.next.json", point.as_str())),
            state_dir: self.state.join(iface),
            dir,
        }
    }

    /// Every (interface, attach point) that has a pin directory or a state record, sorted.
    pub fn filters(&self) -> io::Result<Vec<(String, Hook)>> {
        let mut found = Vec::new();
        for root in [&self.pins, &self.state] {
            // Names that are no interface name were not made by pfc: never build paths from them.
            for iface in read_dir_names(root)?.into_iter().filter(|name| check_iface_name(name).is_ok()) {
                for entry in read_dir_names(&root.join(&iface))? {
                    let name = entry.strip_suffix(".json").unwrap_or(&entry);
                    if let Some(point) = Hook::parse(name).filter(|hook| hook.as_str() == name) {
                        found.push((iface.clone(), point));
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }
}

/// Names in a directory; none when it does not exist.
fn read_dir_names(dir: &Path) -> io::Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names = Vec::new();
            for entry in entries {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            Ok(names)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// The compiler's `.pfc.manifest`, kept in the record: the object contract's one type.
pub use pfc_compiler::object::{LimitManifest, Manifest, SetManifest, SetsManifest};

/// What `pfc load` records about an attached filter (the state file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The interface name.
    pub iface: String,
    /// Its index when the filter was attached.
    pub ifindex: u32,
    /// The attach point.
    pub hook: Hook,
    /// Native, generic or TCX.
    pub mode: AttachMode,
    /// The kernel's id of the attached program when it was loaded.
    pub prog_id: u32,
    /// The kernel's tag of that program (hex): with the id, what ties the labels to it.
    #[serde(default)]
    pub prog_tag: String,
    /// Counts the program's map does not hold: what the replaced program counted after
    /// its counts were copied into this map (one per counter, or empty).
    #[serde(default)]
    pub carried: Vec<crate::attach::Counter>,
    /// When it was loaded, in seconds since the Unix epoch.
    pub loaded_at: u64,
    /// The rule file it was compiled from, as given to `pfc load`.
    pub source: String,
    /// The object's manifest.
    pub manifest: Manifest,
}

/// The largest record pfc reads (a manifest of 100,000 rule names fits).
const RECORD_MAX_BYTES: u64 = 16 << 20;

/// Reads a state record (never through a symlink); `None` when there is none.
pub fn read_record(path: &Path) -> Result<Option<Record>, RecordError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io_error = |source| RecordError::Io { path: path.to_path_buf(), source };
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(source)),
    };
    if !file.metadata().map_err(io_error)?.is_file() {
        return Err(io_error(io::Error::from(io::ErrorKind::InvalidData)));
    }
    let mut text = String::new();
    file.take(RECORD_MAX_BYTES).read_to_string(&mut text).map_err(io_error)?;
    serde_json::from_str(&text).map(Some).map_err(|source| RecordError::Format { path: path.to_path_buf(), source })
}

/// Writes a state record atomically (a temp file, mode 0600, renamed over the old one).
/// The directory must exist and be pfc's (see `attach::guard::owned_dir`).
pub fn write_record(path: &Path, record: &Record) -> Result<(), RecordError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io_error = |source| RecordError::Io { path: path.to_path_buf(), source };
    let temp = path.with_extension("json.tmp");
    let text =
        serde_json::to_string_pretty(record).map_err(|source| RecordError::Format { path: temp.clone(), source })?;
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(io_error)
}

/// A state record that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file system refused.
    #[error("state file {}", path.display())]
    Io {
        /// The record's path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is not a record.
    #[error("state file {} is not a pfc record", path.display())]
    Format {
        /// The record's path.
        path: PathBuf,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_documented_layout() {
        let layout = Layout::default();
        let paths = layout.filter("eth0", Hook::TcEgress);
        assert_eq!(paths.link, Path::new("/sys/fs/bpf/pfc/eth0/tc-egress/link"));
        assert_eq!(paths.state, Path::new("/run/pfc/eth0/tc-egress.json"));
    }

    #[test]
    fn interface_names_that_would_escape_or_cannot_exist_are_refused() {
        let check = |name: &str, expected: Option<&str>| {
            assert_eq!(check_iface_name(name).err().map(|e| e.to_string()).as_deref(), expected, "{name:?}");
        };
        check("eth0", None);
        check("veth-a.100", None);
        check("a23456789012345", None);
        check("", Some("an interface name cannot be empty"));
        check(
            "a234567890123456",
            Some("interface name \"a234567890123456\" is 16 bytes long; Linux allows at most 15"),
        );
        check(".", Some("interface name \".\" is not a name (`.` and `..` are directories)"));
        check("..", Some("interface name \"..\" is not a name (`.` and `..` are directories)"));
        check("a/b", Some("interface name \"a/b\" contains `/`, which no interface name has"));
        check("eth0/../x", Some("interface name \"eth0/../x\" contains `/`, which no interface name has"));
        check("a:b", Some("interface name \"a:b\" contains `:`, which no interface name has"));
        check("a b", Some("interface name \"a b\" contains the character ' ', which no interface name has"));
        check("a\0b", Some("interface name \"a\\0b\" contains the character '\\0', which no interface name has"));
        check(
            "a\x1b[2Jb",
            Some("interface name \"a\\u{1b}[2Jb\" contains the character '\\u{1b}', which no interface name has"),
        );
    }
}
