//! Reading rule files: a path in (a regular file of at most 16 MiB, see `input`), the
//! file's text (or a diagnostic) out; with [`read_with_includes`], every file it includes
//! as well (the compiler's [`IncludeLoader`] seam: this module reads, the compiler
//! orders, detects cycles and reports).

use std::path::Path;

use pfc_compiler::diagnostic::{Code, Diagnostic, Span};
use pfc_compiler::sources::{self, IncludeLoader, LoadedFile, Parsed, SourceMap};

use crate::input;

/// E0017: the file is not UTF-8 text.
pub const NOT_TEXT: Code = Code("E0017");

/// A rule file as read from disk.
pub struct SourceFile {
    /// The path as the user wrote it.
    pub name: String,
    /// The text; invalid UTF-8 sequences are replaced, and reported in `problem`.
    pub text: String,
    /// A diagnostic about the bytes themselves (not UTF-8).
    pub problem: Option<Diagnostic>,
}

/// Reads a rule file. `Err` carries a one-line message for files that cannot be read.
pub fn read(path: &Path) -> Result<SourceFile, String> {
    let name = input::display_name(path);
    let bytes = input::read_limited(path, "rule file", input::MAX_RULE_FILE)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile { name, text: without_bom(text), problem: None }),
        Err(error) => {
            let position = error.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
            let problem = Diagnostic::error(
                NOT_TEXT,
                "the file is not UTF-8 text",
                Span::new(position, position + 1),
                format!("invalid byte at offset {position}"),
            )
            .with_note("rule files are UTF-8 text; is this a binary file?");
            Ok(SourceFile { name, text, problem: Some(problem) })
        }
    }
}

/// Reads a rule file and every file it includes. `Err` as in [`read`] for the root;
/// problems with included files are diagnostics in the result (E0021, E0022).
pub fn read_with_includes(path: &Path) -> Result<Sources, String> {
    read_with(path, &mut FileLoader)
}

/// [`read_with_includes`], but the lines of dynamic sets' files are left unparsed (the
/// files are read, checked as text and hashed as ever): `pfc load` reads them itself
/// ([`pfc_compiler::sources::Parsed::deferred_set_files`]).
pub fn read_deferring_dynamic_sets(path: &Path) -> Result<Sources, String> {
    read_with(path, &mut DeferringLoader)
}

fn read_with(path: &Path, loader: &mut dyn IncludeLoader) -> Result<Sources, String> {
    let root = read(path)?;
    if let Some(problem) = root.problem.clone() {
        let map = SourceMap::single(root.name.clone(), root.text);
        return Ok(Sources {
            parsed: Parsed { map, diagnostics: vec![problem], ..Parsed::default() },
            readable: false,
        });
    }
    Ok(Sources::parse_with(root, path, loader))
}

/// Rule files as parsed with their includes.
pub struct Sources {
    /// The files, the statements in include order, and the syntax and include diagnostics.
    pub parsed: Parsed,
    /// False when the root file is not text (E0017): nothing else is reported then.
    pub readable: bool,
}

impl Sources {
    /// Parses a file already read (`path` is where its includes are resolved from).
    pub fn parse(file: SourceFile, path: &Path) -> Sources {
        Sources::parse_with(file, path, &mut FileLoader)
    }

    fn parse_with(file: SourceFile, path: &Path, loader: &mut dyn IncludeLoader) -> Sources {
        let identity = identity(path);
        let root = LoadedFile { name: file.name, identity, text: file.text };
        let parsed = sources::parse_with_includes(root, loader);
        Sources { parsed, readable: true }
    }

    /// The root file's name.
    pub fn name(&self) -> &str {
        self.parsed.map.files().first().map_or("", |file| file.name.as_str())
    }
}

/// What makes two includes the same file: the canonical path (or, when that fails, the
/// path as written; reading it will fail too).
fn identity(path: &Path) -> String {
    if input::is_stdio(path) {
        return sources::STDIN.to_string();
    }
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// `text` without a UTF-8 byte-order mark at its start (Windows editors write one): it
/// is not part of the first statement or element, and columns count from after it.
fn without_bom(mut text: String) -> String {
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    text
}

/// Why a set file is refused as binary: `NAME:LINE:COLUMN: is not a text file (…)`.
fn not_text(name: &str, bytes: &[u8], at: usize, what: &str) -> String {
    let (line, column) = line_and_column(bytes, at);
    format!("{name}:{line}:{column}: is not a text file ({what} at byte offset {at}; is this a binary file?)")
}

/// The 1-based line and column (in characters, counting the valid UTF-8 before it) of
/// byte `at` of `bytes`.
fn line_and_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line_start = before.iter().rposition(|&byte| byte == b'\n').map_or(0, |newline| newline + 1);
    let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
    (line, String::from_utf8_lossy(&before[line_start..]).chars().count() + 1)
}

/// Reads included files: a relative path is relative to the directory of the including
/// file (the current directory for standard input), with the same limits as rule files.
pub struct FileLoader;

impl IncludeLoader for FileLoader {
    fn load(&mut self, including: &LoadedFile, written: &str) -> Result<LoadedFile, String> {
        let path = resolve(including, written, "an include names a file (standard input cannot be included)")?;
        let file = read(&path)?;
        if file.problem.is_some() {
            return Err(format!("{}: is not UTF-8 text", file.name));
        }
        Ok(LoadedFile { name: file.name, identity: identity(&path), text: file.text })
    }

    fn load_set_file(&mut self, including: &LoadedFile, written: &str) -> Result<LoadedFile, String> {
        let path = resolve(including, written, "a set file is a file (standard input cannot be read as one)")?;
        let bytes = input::read_limited(&path, "set file", input::MAX_SET_FILE)?;
        set_file_text(input::display_name(&path), identity(&path), bytes)
    }
}

/// A set file's bytes as its text (a byte-order mark skipped), or why they are not text:
/// `name` names it in messages, `identity` as in [`LoadedFile`].
pub fn set_file_text(name: String, identity: String, bytes: Vec<u8>) -> Result<LoadedFile, String> {
    // A NUL byte or bytes that are not UTF-8: a binary file, refused as a whole (one
    // diagnostic, not one per line), with where the first such byte is.
    // (`contains` is a word-at-a-time search: the common case, no NUL, costs little.)
    if let Some(at) = bytes.contains(&0).then(|| bytes.iter().position(|&byte| byte == 0)).flatten() {
        return Err(not_text(&name, &bytes, at, "a NUL byte"));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(LoadedFile { name, identity, text: without_bom(text) }),
        Err(error) => {
            let at = error.utf8_error().valid_up_to();
            let bytes = error.into_bytes();
            Err(not_text(&name, &bytes, at, &format!("byte 0x{:02x}, not UTF-8", bytes[at])))
        }
    }
}

/// [`FileLoader`] that leaves the lines of dynamic sets' files unparsed
/// ([`IncludeLoader::defers_dynamic_set_lines`]).
struct DeferringLoader;

impl IncludeLoader for DeferringLoader {
    fn load(&mut self, including: &LoadedFile, written: &str) -> Result<LoadedFile, String> {
        FileLoader.load(including, written)
    }

    fn load_set_file(&mut self, including: &LoadedFile, written: &str) -> Result<LoadedFile, String> {
        FileLoader.load_set_file(including, written)
    }

    fn defers_dynamic_set_lines(&self) -> bool {
        true
    }
}

/// The path `written` in `including` names: relative to the including file's directory
/// (the current directory for standard input).
fn resolve(including: &LoadedFile, written: &str, not_stdin: &str) -> Result<std::path::PathBuf, String> {
    let written_path = Path::new(written);
    if written.is_empty() || input::is_stdio(written_path) {
        return Err(not_stdin.to_string());
    }
    let directory = if including.identity == sources::STDIN {
        Path::new("")
    } else {
        Path::new(&including.name).parent().unwrap_or(Path::new(""))
    };
    Ok(directory.join(written_path))
}
