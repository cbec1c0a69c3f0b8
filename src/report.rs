//! Rendering diagnostics: compiler diagnostics in, codespan-reporting text (coloured on a
//! terminal, see [`color_by_default`]) or JSON out.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::OnceLock;

use codespan_reporting::diagnostic::{Diagnostic as Rendered, Label, Severity as RenderedSeverity};
use codespan_reporting::files::{Files, SimpleFiles};
use codespan_reporting::term;
use codespan_reporting::term::termcolor::Buffer;
use pfc_compiler::diagnostic::{Diagnostic, Severity};
use pfc_compiler::sources::SourceMap;

use crate::escape::{escape, EscapedSource};
use crate::Format;

/// How many diagnostics of one file are rendered for people. Each rendering repeats
/// its source lines, so a cascade of thousands of errors on one long line would print
/// gigabytes; past this many, the rest are only counted.
const MAX_RENDERED_PER_FILE: usize = 100;

/// The longest label, in bytes, rendered for people: a label on a 10 MB token would
/// underline it with 10 MB of carets (and show the line up to its end).
const LONG_LABEL: usize = 256;

/// The longest quoted text (between backticks) in a message rendered for people; a
/// longer one, such as a 10 MB word echoed by "found `…`", is cut (JSON keeps it whole).
const LONG_QUOTE: usize = 200;

/// The `schema` of `--format json` diagnostics: bumped whenever their shape changes
/// (docs/cli.md describes each version).
pub const DIAGNOSTICS_SCHEMA: &str = "pfc.diagnostics/2";

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

    /// Adds (and, for people, prints) the diagnostics of a rule file and the files it
    /// includes; each label is placed in the file its span lies in.
    pub fn add_sources(&mut self, map: &SourceMap, diagnostics: &[Diagnostic]) {
        // Nothing to place: the line indexes and escaped copies below would cost memory
        // and time in proportion to the files (a 10M-line set file: 160 MB of line starts).
        if diagnostics.is_empty() {
            return;
        }
        let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
        sorted.sort_by_key(|diagnostic| diagnostic.span().start);
        // Built once: they index line starts, which every diagnostic looks up.
        let mut files = SimpleFiles::new();
        // For people, the texts and names with terminal controls escaped (see `escape`).
        let mut escaped_files = SimpleFiles::new();
        let mut escaped = Vec::new();
        // Where the rendered diagnostics point, per file: long lines are shown up to there.
        let mut marks = vec![Vec::new(); map.files().len()];
        if self.format == Format::Human {
            for label in sorted.iter().take(MAX_RENDERED_PER_FILE).flat_map(|diagnostic| &diagnostic.labels) {
                let (file, start, end) = shown_label(map, label.span);
                if let Some(marks) = marks.get_mut(file) {
                    marks.extend([start, end]);
                }
            }
        }
        for (file, marks) in map.files().iter().zip(&marks) {
            files.add(file.name.as_str(), file.text.as_str());
            let source = EscapedSource::showing(&file.text, marks);
            escaped_files.add(escape(&file.name).into_owned(), source.text.clone());
            escaped.push(source);
        }
        let located = Located { map, files: &files, escaped_files: &escaped_files, escaped: &escaped };
        for (index, diagnostic) in sorted.iter().enumerate() {
            match diagnostic.severity {
                Severity::Error => self.errors += 1,
                Severity::Warning => self.warnings += 1,
            }
            match self.format {
                Format::Human if index < MAX_RENDERED_PER_FILE => eprint!("{}", located.render(diagnostic)),
                Format::Human => {}
                Format::Json => self.json.push(located.to_json(diagnostic)),
            }
        }
        if self.format == Format::Human && sorted.len() > MAX_RENDERED_PER_FILE {
            let name = map.files().first().map_or(String::new(), |file| escape(&file.name).into_owned());
            eprintln!(
                "{name}: {} more diagnostic(s) not shown; `--format json` lists them all\n",
                sorted.len() - MAX_RENDERED_PER_FILE
            );
        }
    }

    /// Prints the summary (or the JSON document) and gives the exit code: 1 on errors.
    pub fn finish(self) -> ExitCode {
        self.finish_denying(false)
    }

    /// [`Report::finish`], also exiting with 1 on warnings when `deny_warnings`.
    pub fn finish_denying(self, deny_warnings: bool) -> ExitCode {
        match self.format {
            Format::Human if self.errors > 0 || self.warnings > 0 => {
                eprintln!("{} error(s), {} warning(s)", self.errors, self.warnings)
            }
            Format::Human => {}
            Format::Json => {
                println!("{}", serde_json::json!({ "schema": DIAGNOSTICS_SCHEMA, "diagnostics": self.json }))
            }
        }
        if self.errors > 0 || (deny_warnings && self.warnings > 0) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The files of one report, raw (for JSON positions) and escaped (for people).
struct Located<'a> {
    map: &'a SourceMap,
    files: &'a SimpleFiles<&'a str, &'a str>,
    escaped_files: &'a SimpleFiles<String, String>,
    escaped: &'a [EscapedSource],
}

impl Located<'_> {
    /// Renders one diagnostic the way people read it: `error[E0003]: ...` with the
    /// source. Spans are mapped into the escaped texts and messages escaped, so no
    /// terminal control from a file reaches the terminal.
    fn render(&self, diagnostic: &Diagnostic) -> String {
        let severity = match diagnostic.severity {
            Severity::Error => RenderedSeverity::Error,
            Severity::Warning => RenderedSeverity::Warning,
        };
        let labels = diagnostic
            .labels
            .iter()
            .map(|label| {
                let (file, start, end) = shown_label(self.map, label.span);
                let source = &self.escaped[file];
                let text_len = source.text.len();
                let range = clamp(source.offset(start)..source.offset(end), text_len);
                let rendered = if label.primary { Label::primary(file, range) } else { Label::secondary(file, range) };
                rendered.with_message(shorten_quotes(&escape(&label.message)))
            })
            .collect();
        let rendered = Rendered::new(severity)
            .with_code(diagnostic.code.0)
            .with_message(shorten_quotes(&escape(&diagnostic.message)))
            .with_labels(labels)
            .with_notes(diagnostic.notes.iter().map(|note| shorten_quotes(&escape(note))).collect());
        let config = term::Config::default();
        let mut buffer = if *COLOR.get().unwrap_or(&false) { Buffer::ansi() } else { Buffer::no_color() };
        match term::emit_to_write_style(&mut buffer, &config, self.escaped_files, &rendered) {
            Ok(()) => String::from_utf8_lossy(buffer.as_slice()).into_owned(),
            Err(_) => {
                let (file, _) = self.map.locate(diagnostic.span().start);
                let name = self.map.files().get(file).map_or("", |file| file.name.as_str());
                format!("{}: {}\n", escape(name), escape(&diagnostic.message))
            }
        }
    }

    /// File name, 1-based line and column (in characters) of a global offset.
    fn position(&self, offset: u32) -> (&str, usize, usize) {
        let (file, local) = self.map.locate(offset);
        let name = self.map.files().get(file).map_or("", |file| file.name.as_str());
        match self.files.location(file, local) {
            Ok(location) => (name, location.line_number, location.column_number),
            Err(_) => (name, 1, 1),
        }
    }

    fn to_json(&self, diagnostic: &Diagnostic) -> serde_json::Value {
        let labels: Vec<serde_json::Value> = diagnostic
            .labels
            .iter()
            .map(|label| {
                let (file, line, column) = self.position(label.span.start);
                let (_, end_line, end_column) = self.position(label.span.end);
                serde_json::json!({
                    "file": file, "line": line, "column": column, "end_line": end_line, "end_column": end_column,
                    "message": label.message, "primary": label.primary,
                })
            })
            .collect();
        let (file, line, column) = self.position(diagnostic.span().start);
        serde_json::json!({
            "file": file, "severity": diagnostic.severity, "code": diagnostic.code,
            "message": diagnostic.message, "line": line, "column": column,
            "labels": labels, "notes": diagnostic.notes,
        })
    }
}

/// The file of a label and the part of it shown to people (offsets in the file): at
/// most [`LONG_LABEL`] bytes from its start, ending on a character boundary.
fn shown_label(map: &SourceMap, span: pfc_compiler::diagnostic::Span) -> (usize, usize, usize) {
    let (file, start) = map.locate(span.start);
    let mut end = start + span.range().len().min(LONG_LABEL);
    if let Some(source) = map.files().get(file) {
        end = end.min(source.text.len());
        while !source.text.is_char_boundary(end) {
            end -= 1;
        }
    }
    (file, start, end.max(start))
}

/// `text` with every backtick-quoted part longer than [`LONG_QUOTE`] bytes cut to its
/// start and the number of bytes left out.
fn shorten_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    for (index, part) in text.split('`').enumerate() {
        if index > 0 {
            out.push('`');
        }
        if index % 2 == 1 && part.len() > LONG_QUOTE {
            let mut cut = LONG_QUOTE - 40;
            while !part.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&part[..cut]);
            out.push_str(&format!("… ({} more bytes)", part.len() - cut));
        } else {
            out.push_str(part);
        }
    }
    out
}

fn clamp(range: std::ops::Range<usize>, len: usize) -> std::ops::Range<usize> {
    range.start.min(len)..range.end.min(len).max(range.start.min(len))
}
