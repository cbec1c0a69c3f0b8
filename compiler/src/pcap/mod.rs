//! libpcap filter expressions, a front end: the text of a `pcap "..."` atom in, a
//! `PcapFilter` (libpcap's unoptimized classic BPF as a test tree, defined beside the
//! program in `program/pcap.rs`) or diagnostics out.
//!
//! ```text
//! text ──parse (pest, grammar/pcap.pest)──▶ ast::Expr ──lower (check + gencode)──▶ PcapFilter
//!                                                                          ├─▶ eval: PcapFilter::matches
//!                                                                          └─▶ codegen/pcap.rs (prologue)
//! ```
//!
//! The meaning is libpcap 1.10's for Ethernet (DLT_EN10MB) with captured length = wire
//! length; `docs/pcap.md` lists what is supported. Spans in diagnostics point inside the
//! string in the rule file. **Invariant:** pest types never leave `parse.rs`.

pub(crate) mod ast;
mod lower;
pub mod names;
mod parse;

pub use lower::Refusal;

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::program::pcap::{PcapFilter, Pred, MAX_VALUE_DEPTH};

/// E0018: a pcap expression that is not valid libpcap syntax or that libpcap refuses.
pub(crate) const PCAP_SYNTAX: Code = Code("E0018");
/// E0019: a valid libpcap expression that pfc cannot compile (host names, `gateway`...).
pub(crate) const PCAP_UNSUPPORTED: Code = Code("E0019");

/// Longest pcap expression accepted, in bytes.
pub(crate) const MAX_PCAP_LEN: usize = 4096;
/// Deepest nesting of parentheses and brackets accepted in a pcap expression.
pub(crate) const MAX_PCAP_NESTING: usize = 32;

/// Maps byte offsets in the (unescaped) expression to spans in the rule file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanMap {
    /// Where the string's text starts in the file.
    pub start: u32,
    /// Whether offsets map one to one (no escapes were removed).
    pub exact: bool,
    /// The whole string body, used when offsets do not map one to one.
    pub whole: Span,
}

impl SpanMap {
    /// A span for `start..end` of the expression.
    pub fn span(&self, start: usize, end: usize) -> Span {
        if self.exact {
            Span::new(self.start as usize + start, self.start as usize + end)
        } else {
            self.whole
        }
    }
}

/// Checks and lowers one expression. `body` is the span of the string's text in the
/// rule file (inside the quotes). Returns the filter when there were no errors.
pub fn compile(text: &str, body: Span) -> (Option<PcapFilter>, Vec<Diagnostic>) {
    let map = SpanMap { start: body.start, exact: (body.end - body.start) as usize == text.len(), whole: body };
    let mut diagnostics = Vec::new();
    if let Some(problem) = shape_problem(text, &map) {
        diagnostics.push(problem);
        return (None, diagnostics);
    }
    let expr = match parse::parse(text, &map) {
        Ok(Some(expr)) => expr,
        Ok(None) => {
            let filter = PcapFilter { text: text.to_string(), pred: Pred::always(true), reads_tag: None };
            return (Some(filter), diagnostics);
        }
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            return (None, diagnostics);
        }
    };
    let (pred, reads_tag) = lower::lower(&expr, &mut diagnostics);
    if pred.as_ref().is_some_and(|pred| !pred.fits_value_depth()) {
        diagnostics.push(
            Diagnostic::error(PCAP_UNSUPPORTED, Refusal::TooDeep.message(), map.whole, "too many pending values")
                .with_note(format!(
                    "pfc keeps the values of a comparison in {MAX_VALUE_DEPTH} registers; split the expression"
                )),
        );
        return (None, diagnostics);
    }
    (pred.map(|pred| PcapFilter { text: text.to_string(), pred, reads_tag }), diagnostics)
}

/// Too long or nested too deeply for the parser and the recursive stages after it.
fn shape_problem(text: &str, map: &SpanMap) -> Option<Diagnostic> {
    if text.len() > MAX_PCAP_LEN {
        return Some(Diagnostic::error(
            PCAP_SYNTAX,
            format!("the pcap expression is {} bytes long; at most {MAX_PCAP_LEN}", text.len()),
            map.span(0, text.len()),
            "too long",
        ));
    }
    let mut depth = 0usize;
    for (position, byte) in text.bytes().enumerate() {
        match byte {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_PCAP_NESTING {
            return Some(Diagnostic::error(
                PCAP_SYNTAX,
                format!("the pcap expression nests deeper than {MAX_PCAP_NESTING}"),
                map.span(position, position + 1),
                "too deep",
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
