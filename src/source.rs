//! Reading rule files: a path in (a regular file of at most 16 MiB, see `input`), the
//! file's text (or a diagnostic) out.

use std::path::Path;

use pfc_compiler::diagnostic::{Code, Diagnostic, Span};

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
        Ok(text) => Ok(SourceFile { name, text, problem: None }),
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
