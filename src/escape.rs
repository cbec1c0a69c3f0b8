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

/// Whether `text` holds an [unsafe](is_unsafe) character. ASCII text (nearly every rule
/// file) is checked eight bytes at a time: a 10k-rule file's diagnostics are placed in an
/// escaped copy of the whole file, and decoding its ~860 KB as characters cost ~10 M
/// instructions a compile.
fn has_unsafe(text: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bytes = text.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]);
        // Set if some byte is below 0x20 (a tab or newline too), or 0x7f and above; a
        // borrow or carry only ever comes from a byte that is itself such a byte.
        let below_space = word.wrapping_sub(0x20 * ONES) & !word & HIGH;
        let from_delete = (word.wrapping_add(ONES) | word) & HIGH;
        if below_space | from_delete != 0 {
            if let Some(found) = ascii_has_unsafe(chunk) {
                return found || text.chars().any(is_unsafe);
            }
        }
    }
    match ascii_has_unsafe(chunks.remainder()) {
        Some(found) => found || text.chars().any(is_unsafe),
        None => false,
    }
}

/// Of ASCII bytes: `Some(true)` at the first unsafe one, `Some(false)` at the first byte
/// that is not ASCII (the caller then decodes characters), `None` if all are safe.
fn ascii_has_unsafe(bytes: &[u8]) -> Option<bool> {
    bytes.iter().find_map(|&byte| match byte {
        b'\t' | b'\n' => None,
        0..=0x1f | 0x7f => Some(true),
        0x80.. => Some(false),
        _ => None,
    })
}

/// `text` with every [unsafe](is_unsafe) character written as `\u{…}`; borrowed when
/// there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !has_unsafe(text) {
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

/// A line longer than this many bytes is cut when shown (a set file without newlines, a
/// minified list): printing megabytes of it under every diagnostic helps no one.
pub const LONG_LINE: usize = 1024;
/// How much of a cut line is kept at least.
const KEEP: usize = 256;

/// A source text as shown to people: its unsafe characters escaped, each line longer
/// than [`LONG_LINE`] bytes cut after the last place a label points at (at least
/// [`KEEP`] bytes kept, so columns before the cut stay right), and the map from byte
/// offsets in the original to byte offsets in the shown text.
pub struct EscapedSource {
    /// The shown text.
    pub text: String,
    /// Where the shown text stops copying the original: each piece maps original offsets
    /// from `original` on, one to one (`copied`) or all to `shown` (an escape, a cut).
    pieces: Vec<Piece>,
}

#[derive(Clone, Copy, Debug)]
struct Piece {
    original: usize,
    shown: usize,
    copied: bool,
}

impl EscapedSource {
    /// Escapes `text` (long lines cut after their first [`KEEP`] bytes).
    #[cfg(test)]
    pub fn new(text: &str) -> EscapedSource {
        EscapedSource::showing(text, &[])
    }

    /// Escapes `text`, keeping of each long line everything up to the last of `marks`
    /// (byte offsets of `text` that labels point at) in it.
    pub fn showing(text: &str, marks: &[usize]) -> EscapedSource {
        let mut source =
            EscapedSource { text: String::new(), pieces: vec![Piece { original: 0, shown: 0, copied: true }] };
        if !has_unsafe(text) && !text.split('\n').any(|line| line.len() > LONG_LINE) {
            source.text = text.to_string();
            return source;
        }
        source.text.reserve(text.len());
        let mut line_start = 0;
        for line in text.split_inclusive('\n') {
            let content = line.strip_suffix('\n').unwrap_or(line);
            let mut cut = content.len();
            if content.len() > LONG_LINE {
                let last_mark = marks
                    .iter()
                    .filter(|&&mark| (line_start..=line_start + content.len()).contains(&mark))
                    .map(|&mark| mark - line_start)
                    .max()
                    .unwrap_or(0);
                // Some context after the last mark.
                cut = KEEP.max(last_mark + 32).min(content.len());
                while !content.is_char_boundary(cut) {
                    cut += 1;
                }
            }
            if cut + 32 < content.len() {
                source.copy(&content[..cut], line_start);
                source.pieces.push(Piece { original: line_start + cut, shown: source.text.len(), copied: false });
                let _ = write!(source.text, "… ({} more bytes not shown)", content.len() - cut);
                source.pieces.push(Piece {
                    original: line_start + content.len(),
                    shown: source.text.len(),
                    copied: true,
                });
                source.text.push_str(&line[content.len()..]);
            } else {
                source.copy(line, line_start);
            }
            line_start += line.len();
        }
        source
    }

    /// Appends `part` (which starts at `original` in the original text), escaped.
    fn copy(&mut self, part: &str, original: usize) {
        if !has_unsafe(part) {
            self.text.push_str(part);
            return;
        }
        for (offset, c) in part.char_indices() {
            if is_unsafe(c) {
                self.pieces.push(Piece { original: original + offset, shown: self.text.len(), copied: false });
                let _ = write!(self.text, "\\u{{{:x}}}", u32::from(c));
                self.pieces.push(Piece {
                    original: original + offset + c.len_utf8(),
                    shown: self.text.len(),
                    copied: true,
                });
            } else {
                self.text.push(c);
            }
        }
    }

    /// Where byte `offset` of the original text is in the shown text. An offset on an
    /// escaped character maps to the start of its escape, one in a cut part of a line to
    /// the start of the cut's note.
    pub fn offset(&self, offset: usize) -> usize {
        let at = self.pieces.partition_point(|piece| piece.original <= offset).saturating_sub(1);
        let piece = self.pieces[at];
        if piece.copied {
            piece.shown + (offset - piece.original)
        } else {
            piece.shown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_check_agrees_with_the_character_check() {
        let mut texts: Vec<String> = (0u8..=0x7f).map(|byte| format!("rule a: drop{}x\n", byte as char)).collect();
        texts.extend(["é\u{1b}", "é", "\u{85}", "\u{202e}", "\u{2066}", "\u{2070}", "\u{a0}"].map(String::from));
        // Every byte value at every position of a word, between safe ASCII.
        for byte in (0u8..=0x7f).map(char::from).chain(['é', '\u{85}', '\u{202e}']) {
            for position in 0..9 {
                texts.push(format!("{}{byte}{}", "a".repeat(position), "b".repeat(17 - position)));
            }
        }
        for text in &texts {
            assert_eq!(has_unsafe(text), text.chars().any(is_unsafe), "{text:?}");
        }
    }

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

    #[test]
    fn long_lines_are_cut_after_the_last_mark() {
        let long = format!("{}\x1b{}", "a".repeat(2000), "b".repeat(3000));
        let text = format!("first\n{long}\nlast\n");
        let source = EscapedSource::new(&text);
        assert_eq!(source.text, format!("first\n{}… (4745 more bytes not shown)\nlast\n", "a".repeat(256)));
        assert_eq!(&source.text[source.offset(6 + 10)..source.offset(6 + 12)], "aa");
        assert!(source.text[source.offset(6 + 3000)..].starts_with("… (4745"));
        assert_eq!(&source.text[source.offset(text.len() - 5)..], "last\n");
        // A mark past the escape keeps the line up to it, escaped.
        let source = EscapedSource::showing(&text, &[6 + 2010]);
        assert!(source.text.contains(&format!("{}\\u{{1b}}{}… (2959 more", "a".repeat(2000), "b".repeat(41))));
        assert_eq!(&source.text[source.offset(6 + 2001)..source.offset(6 + 2003)], "bb");
        // Short lines are not cut.
        assert_eq!(EscapedSource::new("a\nb").text, "a\nb");
    }
}
