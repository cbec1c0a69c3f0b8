//! Rendering diagnostics: compiler diagnostics in, codespan-reporting text (coloured on a
//! terminal, see [`color_by_default`]) or JSON out.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::OnceLock;

use codespan_reporting::diagnostic::{Diagnostic as Rendered, Label, Severity as RenderedSeverity};
use codespan_reporting::files::{Files, SimpleFile};
use codespan_reporting::term;
use codespan_reporting::term::termcolor::Buffer;
use pfc_compiler::diagnostic::{Diagnostic, Severity};

use crate::escape::{escape, EscapedSource};
use crate::source::SourceFile;
use crate::Format;

/// How many diagnostics of one file are rendered for people. Each rendering repeats
/// its source lines, so a cascade of thousands of errors on one long line would print
/// gigabytes; past this many, the rest are only counted.
const MAX_RENDERED_PER_FILE: usize = 100;

/// The `schema` of `--format json` diagnostics: bumped whenever their shape changes
/// (docs/cli.md describes each version).
pub const DIAGNOSTICS_SCHEMA: &str = "pfc.diagnostics/1";

/// Whether diagnostics for people are coloured; set once by `main` from `--color`.
static COLOR: OnceLock<bool> = OnceLock::new();

/// Sets whether diagnostics are coloured (the first call wins).
pub fn set_color(color: bool) {
    let _ = COLOR.set(color);
}

/// `--color auto`: colour when standard error is a terminal, unless `NO_COLOR` is set to
/// anything non-empty (no-color.org) or `TERM` is `dumb`.
pub fn color_by_default() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
    std::io::stderr().is_terminal() && !no_color && !dumb
}

/// A command-line usage error found after parsing, printed the way clap prints its own;
/// exit code 2.
pub fn usage_error(subcommand: &str, message: &str) -> ExitCode {
    eprintln!("error: {}\n\nFor more information, try 'pfc {subcommand} --help'.", escape(message));
    ExitCode::from(2)
}

/// Collects diagnostics of several files and prints them in the chosen format.
pub struct Report {
    format: Format,
    json: Vec<serde_json::Value>,
    errors: usize,
    warnings: usize,
}

/// Whether any diagnostic is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

impl Report {
    /// An empty report.
    pub fn new(format: Format) -> Report {
        Report { format, json: Vec::new(), errors: 0, warnings: 0 }
    }

    /// A file that could not be read at all.
    pub fn io_error(&mut self, message: &str) {
        self.errors += 1;
        match self.format {
            Format::Human => eprintln!("error: {}", escape(message)),
            Format::Json => self.json.push(serde_json::json!({
                "file": null, "severity": "error", "code": null, "message": message,
                "line": null, "column": null, "labels": [], "notes": [],
            })),
        }
    }

    /// Adds (and, for people, prints) the diagnostics of one file.
    pub fn add(&mut self, file: &SourceFile, diagnostics: &[Diagnostic]) {
        let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
        sorted.sort_by_key(|diagnostic| diagnostic.span().start);
        // Built once per file: it indexes line starts, which every diagnostic looks up.
        let files = SimpleFile::new(file.name.as_str(), file.text.as_str());
        // For people, the text and name with terminal controls escaped (see `escape`).
        let escaped = EscapedSource::new(&file.text);
        let name = escape(&file.name);
        let escaped_files = SimpleFile::new(name.as_ref(), escaped.text.as_str());
        for (index, diagnostic) in sorted.iter().enumerate() {
            match diagnostic.severity {
                Severity::Error => self.errors += 1,
                Severity::Warning => self.warnings += 1,
            }
            match self.format {
                Format::Human if index < MAX_RENDERED_PER_FILE => {
                    eprint!("{}", render(&escaped_files, &escaped, diagnostic))
                }
                Format::Human => {}
                Format::Json => self.json.push(to_json(&files, diagnostic)),
            }
        }
        if self.format == Format::Human && sorted.len() > MAX_RENDERED_PER_FILE {
            eprintln!(
                "{name}: {} more diagnostic(s) not shown; `--format json` lists them all\n",
                sorted.len() - MAX_RENDERED_PER_FILE
            );
        }
    }

    /// Prints the summary (or the JSON document) and gives the exit code.
    pub fn finish(self) -> ExitCode {
        match self.format {
            Format::Human if self.errors > 0 || self.warnings > 0 => {
                eprintln!("{} error(s), {} warning(s)", self.errors, self.warnings)
            }
            Format::Human => {}
            Format::Json => {
                println!("{}", serde_json::json!({ "schema": DIAGNOSTICS_SCHEMA, "diagnostics": self.json }))
            }
        }
        if self.errors > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Renders one diagnostic the way people read it: `error[E0003]: ...` with the source.
/// `files` holds the escaped text of `source`; spans are mapped into it and messages
/// escaped, so no terminal control from the file reaches the terminal.
fn render(files: &SimpleFile<&str, &str>, source: &EscapedSource, diagnostic: &Diagnostic) -> String {
    let text_len = files.source().len();
    let severity = match diagnostic.severity {
        Severity::Error => RenderedSeverity::Error,
        Severity::Warning => RenderedSeverity::Warning,
    };
    let labels = diagnostic
        .labels
        .iter()
        .map(|label| {
            let range = label.span.range();
            let range = clamp(source.offset(range.start)..source.offset(range.end), text_len);
            let rendered = if label.primary { Label::primary((), range) } else { Label::secondary((), range) };
            rendered.with_message(escape(&label.message).into_owned())
        })
        .collect();
    let rendered = Rendered::new(severity)
        .with_code(diagnostic.code.0)
        .with_message(escape(&diagnostic.message).into_owned())
        .with_labels(labels)
        .with_notes(diagnostic.notes.iter().map(|note| escape(note).into_owned()).collect());
    let config = term::Config::default();
    let mut buffer = if *COLOR.get().unwrap_or(&false) { Buffer::ansi() } else { Buffer::no_color() };
    match term::emit_to_write_style(&mut buffer, &config, files, &rendered) {
        Ok(()) => String::from_utf8_lossy(buffer.as_slice()).into_owned(),
        Err(_) => format!("{}: {}\n", files.name(), escape(&diagnostic.message)),
    }
}

fn clamp(range: std::ops::Range<usize>, len: usize) -> std::ops::Range<usize> {
    range.start.min(len)..range.end.min(len).max(range.start.min(len))
}

fn to_json(files: &SimpleFile<&str, &str>, diagnostic: &Diagnostic) -> serde_json::Value {
    let position = |offset: u32| line_column(files, offset as usize);
    let labels: Vec<serde_json::Value> = diagnostic
        .labels
        .iter()
        .map(|label| {
            let (line, column) = position(label.span.start);
            let (end_line, end_column) = position(label.span.end);
            serde_json::json!({
                "line": line, "column": column, "end_line": end_line, "end_column": end_column,
                "message": label.message, "primary": label.primary,
            })
        })
        .collect();
    let (line, column) = position(diagnostic.span().start);
    serde_json::json!({
        "file": files.name(), "severity": diagnostic.severity, "code": diagnostic.code,
        "message": diagnostic.message, "line": line, "column": column,
        "labels": labels, "notes": diagnostic.notes,
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(files: &SimpleFile<&str, &str>, offset: usize) -> (usize, usize) {
    let offset = offset.min(files.source().len());
    match files.location((), offset) {
        Ok(location) => (location.line_number, location.column_number),
        Err(_) => (1, 1),
    }
}
