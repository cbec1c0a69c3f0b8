//! `pfc check FILE...`: diagnostics only.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::escape::escape;
use crate::report::{self, Report};
use crate::{source, Format};

/// Checks every file and prints all diagnostics; exit 1 when any file has errors.
pub fn run(paths: &[PathBuf], format: Format) -> ExitCode {
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
            true => pfc_compiler::check_parsed(&sources.parsed).1,
            false => sources.parsed.diagnostics.clone(),
        };
        report.add_sources(&sources.parsed.map, &diagnostics);
        if format == Format::Human && !report::has_errors(&diagnostics) {
            eprintln!("{}: ok", escape(sources.name()));
        }
    }
    report.finish()
}
