//! Reading the files users name (rule files, case files, captures): a path and a size
//! limit in, the file's bytes or a one-line error out. `-` is standard input.
//!
//! Only regular files are read. A character device such as `/dev/zero` never ends, and
//! opening a FIFO blocks until something writes to it, so both are refused before they
//! are opened (the path is checked with `stat`, following symlinks, and the opened
//! file is checked again). A regular file larger than its limit is refused without
//! being read, and the read itself stops at the limit, so a file growing while it is
//! read cannot take more memory than that either.

use std::fs::FileType;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest rule file pfc reads.
pub const MAX_RULE_FILE: u64 = 16 << 20;
/// The largest set file (`set NAME: TYPE = file "PATH"`, `pfc set … --file`) pfc reads:
/// a block list of a million lines with a comment on each (256 bytes a line), or of ten
/// million bare prefixes. The text is held while it is read (and the elements are
/// smaller than their lines), so this also bounds the memory a set file takes.
pub const MAX_SET_FILE: u64 = 256 << 20;
/// The largest case file pfc reads.
pub const MAX_CASE_FILE: u64 = 64 << 20;
/// The largest object `pfc load` reads.
pub const MAX_OBJECT: u64 = 64 << 20;
/// The largest capture pfc reads (it is held in memory while its frames run).
pub const MAX_CAPTURE: u64 = 1 << 30;

/// What kind of file a path names, in words, when it is not a regular file.
fn not_regular(kind: FileType) -> Option<&'static str> {
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// `limit` bytes in words: `16 MiB`.
fn size_in_words(limit: u64) -> String {
    match limit {
        limit if limit >= 1 << 30 && limit % (1 << 30) == 0 => format!("{} GiB", limit >> 30),
        limit if limit >= 1 << 20 && limit % (1 << 20) == 0 => format!("{} MiB", limit >> 20),
        limit => format!("{limit} bytes"),
    }
}

/// Whether `path` is `-`, which stands for standard input (or output).
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How a path is named in messages: `<stdin>` for `-`, else the path as given.
pub fn display_name(path: &Path) -> String {
    if is_stdio(path) {
        pfc_compiler::sources::STDIN.to_string()
    } else {
        path.display().to_string()
    }
}

/// Opens `path` for reading without ever waiting: a FIFO without a writer opens (and reads
/// as empty), and a "regular" file that waits for data (/proc/kmsg, tracefs's
/// trace_pipe) fails with EAGAIN instead of hanging; real files ignore the flag.
pub fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

/// Whether the file starts with the ELF magic, so is an object rather than rules (standard
/// input is always rules: it cannot be read twice).
pub fn starts_like_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    !is_stdio(path)
        && open_nonblocking(path).and_then(|mut file| file.read_exact(&mut magic)).is_ok()
        && pfc_compiler::object::is_elf(&magic)
}

/// Reads the regular file at `path` (`what` names it in errors: "rule file") if it has
/// at most `limit` bytes; `-` reads standard input, up to the same limit. The error
/// starts with the path as given.
pub fn read_limited(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, String> {
    let name = display_name(path);
    let too_large = || format!("{name}: is larger than {}, the most pfc reads from a {what}", size_in_words(limit));
    if is_stdio(path) {
        let mut bytes = Vec::new();
        let stdin = std::io::stdin().lock();
        stdin.take(limit + 1).read_to_end(&mut bytes).map_err(|error| format!("{name}: cannot read: {error}"))?;
        return if bytes.len() as u64 > limit { Err(too_large()) } else { Ok(bytes) };
    }
    let refuse = |kind: &str| format!("{name}: is {kind}, not a {what}; pfc reads regular files only");
    let metadata = std::fs::metadata(path).map_err(|error| format!("{name}: cannot read: {error}"))?;
    if let Some(kind) = not_regular(metadata.file_type()) {
        return Err(refuse(kind));
    }
    let file = open_nonblocking(path).map_err(|error| format!("{name}: cannot read: {error}"))?;
    // The path may have been replaced between the two looks.
    let metadata = file.metadata().map_err(|error| format!("{name}: cannot read: {error}"))?;
    if let Some(kind) = not_regular(metadata.file_type()) {
        return Err(refuse(kind));
    }
    if metadata.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|error| format!("{name}: cannot read: {error}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_in_words() {
        assert_eq!(size_in_words(MAX_RULE_FILE), "16 MiB");
        assert_eq!(size_in_words(MAX_CAPTURE), "1 GiB");
        assert_eq!(size_in_words(1000), "1000 bytes");
    }
}
