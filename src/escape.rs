//! Printing user data on a terminal: text in, the same text with every character that
//! could steer the terminal written out as a visible escape.
//!
//! Rule files, case files, capture paths and records under /run hold bytes pfc did not
//! choose. Printed raw, an ESC starts a control sequence (move the cursor, recolour,
//! set the window title, OSC 8 links), BEL rings, CR overwrites the line already shown,
//! and the bidirectional overrides reorder what the reader sees ("Trojan Source"). So
//! everything pfc prints that came from user data goes through [`escape`] first:
//!
//! - C0 controls except tab and newline, DEL, and the C1 controls become `\u{1b}`
//!   (Rust's escape syntax, the code point in hex);
//! - the bidirectional embeddings, overrides and isolates (U+202A–U+202E,
//!   U+2066–U+2069) become `\u{202e}` too;
//! - everything else, tab and newline included, is kept.
//!
//! JSON output needs none of this (serde_json escapes control characters) and JUnit XML
//! has its own escaping.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is printed as an escape.
pub fn is_unsafe(c: char) -> bool {
    match c {
        '\t' | '\n' => false,
        '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// `text` with every [unsafe](is_unsafe) character written as `\u{…}`; borrowed when
/// there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A source text with its unsafe characters escaped, and the map from byte offsets in
/// the original to byte offsets in the escaped text (each escape is longer than the
/// character it replaces, so spans after it move right).
pub struct EscapedSource {
    /// The escaped text.
    pub text: String,
    /// For each escaped character: its offset in the original, and how many bytes the
    /// escaped text has gained up to and including it.
    shifts: Vec<(usize, usize)>,
}

impl EscapedSource {
    /// Escapes `text`, remembering where it grew.
    pub fn new(text: &str) -> EscapedSource {
        let mut shifts = Vec::new();
        let escaped = match escape(text) {
            Cow::Borrowed(_) => text.to_string(),
            Cow::Owned(escaped) => {
                let mut gained = 0;
                for (offset, c) in text.char_indices().filter(|(_, c)| is_unsafe(*c)) {
                    gained += format!("\\u{{{:x}}}", u32::from(c)).len() - c.len_utf8();
                    shifts.push((offset, gained));
                }
                escaped
            }
        };
        EscapedSource { text: escaped, shifts }
    }

    /// Where byte `offset` of the original text is in the escaped text. An offset on an
    /// escaped character maps to the start of its escape.
    pub fn offset(&self, offset: usize) -> usize {
        let before = self.shifts.partition_point(|(at, _)| *at < offset);
        offset + before.checked_sub(1).map_or(0, |index| self.shifts[index].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_keeps_the_rest() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("plain text",                    "plain text"),
            ("tab\tand\nnewline",             "tab\tand\nnewline"),
            ("\x1b[2J clear",                 "\\u{1b}[2J clear"),
            ("\x1b]0;title\x07",              "\\u{1b}]0;title\\u{7}"),
            ("over\rwrite",                   "over\\u{d}write"),
            ("nul\0 del\x7f",                 "nul\\u{0} del\\u{7f}"),
            ("c1 \u{9b}31m",                  "c1 \\u{9b}31m"),
            ("bidi \u{202e}txt\u{2066}",      "bidi \\u{202e}txt\\u{2066}"),
            ("café ü →",                      "café ü →"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn offsets_follow_the_escapes() {
        let source = EscapedSource::new("a\x1bb\u{9b}c");
        assert_eq!(source.text, "a\\u{1b}b\\u{9b}c");
        #[rustfmt::skip]
        let cases: &[(usize, &str)] = &[
            (0, "a\\u{1b}b\\u{9b}c"),
            (1, "\\u{1b}b\\u{9b}c"),
            (2, "b\\u{9b}c"),
            (3, "\\u{9b}c"),
            (5, "c"),
            (6, ""),
        ];
        for (offset, rest) in cases {
            assert_eq!(&source.text[source.offset(*offset)..], *rest, "offset {offset}");
        }
    }
}
