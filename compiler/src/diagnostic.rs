//! Diagnostics: what every stage reports about the user's input. Input: findings of the
//! stages; output: plain data (`code`, message, labelled spans, notes) that the CLI
//! renders with codespan-reporting or as JSON.
//!
//! Stages never stop at the first problem: each returns its result together with the
//! list of diagnostics it collected.

use std::fmt;

/// A byte range `start..end` in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// The span as a `Range` for slicing and for codespan.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The rule set still compiles, but probably not as meant.
    Warning,
    /// The rule set cannot be compiled.
    Error,
}

/// A stable diagnostic code; `docs/diagnostics.md` explains each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub &'static str);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

/// A span with a short text saying what is there.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What about it (may be empty).
    pub message: String,
    /// The primary label is the place of the problem; secondary ones give context.
    pub primary: bool,
}

/// One finding about the input.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code such as `E0003`.
    pub code: Code,
    /// One sentence, no trailing period.
    pub message: String,
    /// Labelled places; the first primary label is where the problem is.
    pub labels: Vec<Label>,
    /// Extra sentences: hints, "did you mean".
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error with its primary label.
    pub fn error(code: Code, message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Error, code, message, span, label)
    }

    /// A warning with its primary label.
    pub fn warning(code: Code, message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Warning, code, message, span, label)
    }

    fn new(severity: Severity, code: Code, message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            labels: vec![Label { span, message: label.into(), primary: true }],
            notes: Vec::new(),
        }
    }

    /// Adds a secondary label.
    pub(crate) fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Whether this diagnostic stops compilation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary span.
    pub fn span(&self) -> Span {
        self.labels.iter().find(|label| label.primary).map(|label| label.span).unwrap_or_default()
    }
}

/// E0900: an internal error — a pfc bug, never the user's: pfc's own verifier refused
/// the code pfc generated, or a parser produced a tree shape its lowering does not know.
/// Reported instead of a panic or a silently wrong program.
pub const INTERNAL_ERROR: Code = Code("E0900");

/// Whether any of the diagnostics is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a typo.
/// Letters compare without case (`RULE` is `rule`), and two neighbours swapped count
/// as one edit (`ruel`, `cosnt`).
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = name.chars().count();
    let limit = (length / 3).clamp(1, 3);
    candidates
        .into_iter()
        // The distance is at least the difference in length: skip the quadratic work
        // for candidates that cannot be close (a megabyte-long name must stay cheap).
        .filter(|candidate| candidate.chars().count().abs_diff(length) <= limit)
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, candidate)| (distance, candidate.len()))
        .map(|(_, candidate)| candidate)
}

/// Insertions, deletions, substitutions and swaps of two neighbours (the optimal string
/// alignment distance), letters compared without case.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Rows i - 1 and i - 2 of the table, and row i being filled.
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            let mut best = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            if i > 0 && j > 0 && ca == b[j - 1] && a[i - 1] == cb {
                best = best.min(before[j - 1] + 1);
            }
            current[j + 1] = best;
        }
        before = std::mem::replace(&mut previous, current);
    }
    previous[b.len()]
}
