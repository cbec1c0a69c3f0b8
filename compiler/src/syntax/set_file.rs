//! Set files: the text of a file named by `set NAME: TYPE = file "PATH"` in, one
//! [`Literal`] per element line (spans in the global span space) and diagnostics out.
//!
//! The format is one element per line, written as inside `{ }` (an address, a prefix, a
//! range, a number or a name); `#` starts a comment; blank lines are skipped. Lists of
//! plain addresses and prefixes (block lists run to millions of lines) are decoded
//! directly; anything else goes through the rule grammar's `literal`, so both accept
//! exactly what a set body accepts.
//!
//! Reading stops early, so a huge file costs no more than it must: after
//! [`MAX_BAD_LINES`] bad lines (a binary or wrong file would otherwise give one
//! diagnostic per line), and, for a dynamic set, at the first element line past its
//! `size` (the checker reports E0025 there).

use super::ast::{Literal, LiteralKind};
use super::literal;
use crate::diagnostic::{Code, Diagnostic, Span};

/// E0024: a line of a set file that is not one set element.
pub(crate) const BAD_SET_LINE: Code = Code("E0024");

/// How many bad lines of a set file are reported before reading stops.
pub(crate) const MAX_BAD_LINES: usize = 100;

/// A set file as read: its elements, the diagnostics of its bad lines, and where reading
/// stopped for the set's size.
#[derive(Debug, Default)]
pub(crate) struct SetFileLines {
    /// One literal per element line.
    pub elements: Vec<Literal>,
    /// Bad lines (at most [`MAX_BAD_LINES`]).
    pub diagnostics: Vec<Diagnostic>,
    /// The first element line past `limit`, when there is one (nothing after it is read).
    pub beyond_limit: Option<Span>,
}

/// The elements of a set file whose text starts at `base` in the span space; at most
/// `limit` of them (a dynamic set's size).
pub(crate) fn parse(text: &str, base: usize, limit: Option<usize>) -> SetFileLines {
    let mut read = SetFileLines::default();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let content = line.split('#').next().unwrap_or("");
        let trimmed_start = content.trim_start();
        let element = trimmed_start.trim_end();
        if !element.is_empty() {
            let start = base + line_start + (content.len() - trimmed_start.len());
            let span = Span::new(start, start + element.len());
            if limit.is_some_and(|limit| read.elements.len() >= limit) {
                read.beyond_limit = Some(Span::new(start, start + shown_len(element)));
                break;
            }
            let bad_before = read.diagnostics.len();
            if element.len() > MAX_ELEMENT {
                // No element is this long (a list without newlines, a binary): not parsed.
                read.diagnostics.push(bad_line(element, span));
            } else {
                match fast_literal(element, span)
                    .or_else(|| super::lower::parse_set_line(element, start, &mut read.diagnostics).map(Ok))
                {
                    Some(Ok(literal)) => read.elements.push(literal),
                    Some(Err(diagnostic)) => read.diagnostics.push(diagnostic),
                    None => read.diagnostics.push(bad_line(element, span)),
                }
            }
            if read.diagnostics.len() > bad_before && read.diagnostics.len() >= MAX_BAD_LINES {
                if let Some(last) = read.diagnostics.last_mut() {
                    *last = last.clone().with_note(format!(
                        "{MAX_BAD_LINES} bad lines: pfc read no further in this set file (is it the right file?)"
                    ));
                }
                break;
            }
        }
        line_start += line.len();
    }
    read
}

/// The longest element line parsed (an IPv6 range with prefixes is under 100 bytes).
const MAX_ELEMENT: usize = 1024;

/// The longest element a diagnostic underlines: a huge line (a list without newlines)
/// gets its start marked, not megabytes of carets.
const MAX_SHOWN: usize = 64;

/// The bytes of `element`'s first [`MAX_SHOWN`] characters.
fn shown_len(element: &str) -> usize {
    element.char_indices().nth(MAX_SHOWN).map_or(element.len(), |(at, _)| at)
}

fn bad_line(element: &str, span: Span) -> Diagnostic {
    let shown: String = element.chars().take(40).collect();
    let shown = match element.len() {
        len if len > MAX_ELEMENT => format!("{shown}…` ({len} bytes)"),
        len if shown.len() < len => format!("{shown}…`"),
        _ => format!("{shown}`"),
    };
    let span = Span::new(span.start as usize, span.start as usize + shown_len(element));
    Diagnostic::error(BAD_SET_LINE, format!("`{shown} is not a set element"), span, "not one element")
        .with_note("a set file holds one element per line: an address, a prefix, a range, a number or a name; `#` starts a comment")
}

/// Plain IPv4/IPv6/MAC addresses and prefixes and decimal numbers, decoded without the
/// parser; `None` for anything else (the grammar decides those).
fn fast_literal(text: &str, span: Span) -> Option<Result<Literal, Diagnostic>> {
    let (address, length) = match text.split_once('/') {
        Some((address, length)) if !length.is_empty() && length.bytes().all(|b| b.is_ascii_digit()) => {
            (address, Some(length))
        }
        Some(_) => return None,
        None => (text, None),
    };
    let start = span.start as usize;
    let address_span = Span::new(start, start + address.len());
    let decoded = if is_dotted_quad(address) {
        literal::ipv4(address, address_span)
    } else if address.contains(':') && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
        literal::colon_address(address, address_span)
    } else if length.is_none() && !address.is_empty() && address.bytes().all(|b| b.is_ascii_digit()) {
        literal::number(address, address_span)
    } else {
        return None;
    };
    let kind = match decoded {
        Ok(kind) => kind,
        Err(diagnostic) => return Some(Err(diagnostic)),
    };
    let Some(length) = length else {
        return Some(Ok(Literal { kind, span }));
    };
    let length_start = start + address.len() + 1;
    let length_span = Span::new(length_start, length_start + length.len());
    Some(literal::prefix_length(&kind, length, length_span).map(|length| Literal {
        kind: LiteralKind::Prefix(Box::new(Literal { kind, span: address_span }), length),
        span,
    }))
}

fn is_dotted_quad(text: &str) -> bool {
    let mut parts = 0;
    for part in text.split('.') {
        parts += 1;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    parts == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> String {
        let SetFileLines { elements, diagnostics, .. } = parse(text, 100, None);
        let mut out: Vec<String> = elements
            .iter()
            .map(|literal| format!("{:?} @{}..{}", literal.kind, literal.span.start, literal.span.end))
            .collect();
        out.extend(diagnostics.iter().map(|d| format!("{} {} @{}", d.code.0, d.message, d.labels[0].span.start)));
        out.join("\n")
    }

    #[test]
    fn lines_comments_and_blanks() {
        insta::assert_snapshot!(render("# feed\n10.0.0.0/8\n\n  192.0.2.1  # one host\r\n2001:db8::/32\n80..90\nssh\n0x10\n"), @r#"
        Prefix(Literal { kind: Ipv4(167772160), span: Span { start: 107, end: 115 } }, 8) @107..117
        Ipv4(3221225985) @121..130
        Prefix(Literal { kind: Ipv6(42540766411282592856903984951653826560), span: Span { start: 144, end: 154 } }, 32) @144..157
        Range(Literal { kind: Number(80), span: Span { start: 158, end: 160 } }, Literal { kind: Number(90), span: Span { start: 162, end: 164 } }) @158..164
        Name("ssh") @165..168
        Number(16) @169..173
        "#);
    }

    #[test]
    fn bad_lines_are_reported_where_they_are() {
        insta::assert_snapshot!(render("10.0.0.256\n10.0.0.0/33\n10.0.0.1 10.0.0.2\n{ 1 }\n1.2.3.4.5\n"), @r"
        E0005 `10.0.0.256` is not an IPv4 address @100
        E0005 prefix length /33 is out of range @120
        E0024 `10.0.0.1 10.0.0.2` is not a set element @123
        E0024 `{ 1 }` is not a set element @141
        E0024 `1.2.3.4.5` is not a set element @147
        ");
    }
}
