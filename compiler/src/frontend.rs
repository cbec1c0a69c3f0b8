//! The front end in one call: rule text (or files parsed with their includes) in, a
//! checked [`Program`] and every diagnostic of parsing and checking out.

use crate::diagnostic::{self, Diagnostic};
use crate::program::Program;
use crate::{check, sources};

/// Parses and checks a rule file: the front end in one call. The program is returned
/// only when there were no errors; warnings come with it.
/// An `include` in `source` is an error (there is no file to resolve it against; see
/// [`check_parsed`] for rule files read by a loader).
pub fn check_source(source: &str) -> (Option<Program>, Vec<Diagnostic>) {
    check_parsed(&sources::parse_with_includes(sources::LoadedFile::text(source), &mut sources::NoIncludes))
}

/// Checks rule files parsed with their includes (see [`sources::parse_with_includes`]).
pub fn check_parsed(parsed: &sources::Parsed) -> (Option<Program>, Vec<Diagnostic>) {
    let mut diagnostics = parsed.diagnostics.clone();
    let (program, check_diagnostics) = check::check(&parsed.file);
    diagnostics.extend(check_diagnostics);
    let program = if diagnostic::has_errors(&diagnostics) { None } else { program };
    (program, diagnostics)
}
