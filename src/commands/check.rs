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
        let file = match source::read(path) {
            Ok(file) => file,
            Err(message) => {
                report.io_error(&message);
                continue;
            }
        };
        let diagnostics = match &file.problem {
            Some(problem) => vec![problem.clone()],
            None => pfc_compiler::check_source(&file.text).1,
        };
        report.add(&file, &diagnostics);
        if format == Format::Human && !report::has_errors(&diagnostics) {
            eprintln!("{}: ok", escape(&file.name));
        }
    }
    report.finish()
}
