//! `pfc check FILE...`: diagnostics only.

use std::path::PathBuf;
use std::process::ExitCode;

use pfc_compiler::analysis::lints::{self, Level};

use crate::escape::escape;

use crate::report::{self, Report};
use crate::{source, Format, Lints};

/// The most rules for which `--lints=auto` runs the engine lints: they cost about as
/// much as the front end again (docs/analysis.md), which on bigger files would break
/// `pfc check`'s time target.
const AUTO_LINT_RULES: usize = 1_000;

/// Checks every file and prints all diagnostics; exit 1 when any file has errors (or,
/// with `deny_warnings`, warnings).
pub fn run(paths: &[PathBuf], format: Format, engine_lints: Lints, deny_warnings: bool) -> ExitCode {
    let mut report = Report::new(format);
    for path in paths {
        let sources = match source::read_with_includes(path) {
            Ok(sources) => sources,
            Err(message) => {
                report.io_error(&message);
                continue;
            }
        };
        let diagnostics = match sources.readable {
            true => {
                let (program, mut diagnostics) = pfc_compiler::check_parsed(&sources.parsed);
                let small = program.as_ref().is_some_and(|p| p.rules.len() <= AUTO_LINT_RULES);
                let level = match engine_lints {
                    Lints::Auto if small => Some(Level::Default),
                    Lints::Auto | Lints::None => None,
                    Lints::Shadow => Some(Level::Default),
                    Lints::All => Some(Level::All),
                };
                if let (Some(program), Some(level)) = (program, level) {
                    let default_span = lints::default_statement(&sources.parsed.file);
                    let found = lints::lint(&program, default_span, level, &diagnostics);
                    diagnostics.extend(found);
                }
                diagnostics
            }
            false => sources.parsed.diagnostics.clone(),
        };
        report.add_sources(&sources.parsed.map, &diagnostics);
        if format == Format::Human && !report::has_errors(&diagnostics) {
            eprintln!("{}: ok", escape(sources.name()));
        }
    }
    report.finish_denying(deny_warnings)
}
