//! Set files: the text of a file named by `set NAME: TYPE = file "PATH"` in, one
//! element per element line (spans in the global span space) and diagnostics out.
//!
//! The format is one element per line, written as inside `{ }` (an address, a prefix, a
//! range, a number or a name); `#` starts a comment; blank lines are skipped. Lists of
//! plain addresses and prefixes (block lists run to millions of lines) are decoded
//! directly into [`DecodedElement`]s (no allocation per line); anything else goes through
//! the rule grammar's `literal` into a [`Literal`], so both accept exactly what a set
//! body accepts.
//!
//! Reading stops early, so a huge file costs no more than it must: after
//! [`MAX_BAD_LINES`] bad lines (a binary or wrong file would otherwise give one
//! diagnostic per line), and, for a dynamic set, at the first element line past its
//! `size` (the checker reports E0025 there).

use super::ast::{DecodedElement, DecodedFamily, Literal, LiteralKind};
use super::literal;
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::hashing::FastMap;

/// E0024: a line of a set file that is not one set element.
pub(crate) const BAD_SET_LINE: Code = Code("E0024");

/// How many bad lines of a set file are reported before reading stops.
pub(crate) const MAX_BAD_LINES: usize = 100;

/// A set file as read: its elements, the diagnostics of its bad lines, and where reading
/// stopped for the set's size.
#[derive(Debug, Default)]
pub(crate) struct SetFileLines {
    /// One literal per distinct element line that is not a plain address, prefix or
    /// number.
    pub elements: Vec<Literal>,
    /// One element per distinct plain address, prefix or number line.
    pub decoded: Vec<DecodedElement>,
    /// Bad lines (at most [`MAX_BAD_LINES`]).
    pub diagnostics: Vec<Diagnostic>,
    /// The first element line past `limit`, when there is one (nothing after it is read).
    pub beyond_limit: Option<Span>,
    /// Element lines skipped because an earlier line holds the same address, prefix or
    /// number (so memory grows with the distinct elements, not the lines).
    pub repeated: usize,
}

/// The elements of a set file whose text starts at `base` in the span space; at most
/// `limit` distinct ones (a dynamic set's size, a static set's most).
pub(crate) fn parse(text: &str, base: usize, limit: Option<usize>) -> SetFileLines {
    let mut read = SetFileLines::default();
    let mut seen: FastMap<ElementId, ()> = FastMap::default();
    let bytes = text.as_bytes();
    let mut line_start = 0;
    while line_start < bytes.len() {
        let line_end = bytes[line_start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |at| line_start + at);
        let content_end =
            bytes[line_start..line_end].iter().position(|&b| b == b'#').map_or(line_end, |at| line_start + at);
        let next = line_end + 1;
        // `line_start` and `content_end` are at ASCII bytes (or the text's ends): char
        // boundaries.
        let content = &text[line_start..content_end];
        let element = content.trim();
        if element.is_empty() {
            line_start = next;
            continue;
        }
        let at = base + line_start + (content.len() - content.trim_start().len());
        let span = Span::new(at, at + element.len());
        // The common line of a block list: decoded without the parser, kept once.
        let decoded = decode(element.as_bytes());
        if decoded.is_some_and(|decoded| seen.contains_key(&decoded.element())) {
            read.repeated += 1;
            line_start = next;
            continue;
        }
        if limit.is_some_and(|limit| read.elements.len() + read.decoded.len() >= limit) {
            read.beyond_limit = Some(Span::new(at, at + shown_len(element)));
            break;
        }
        if let Some(decoded) = decoded {
            seen.insert(decoded.element(), ());
            read.decoded.push(decoded.decoded_element(span));
            line_start = next;
            continue;
        }
        let bad_before = read.diagnostics.len();
        if element.len() > MAX_ELEMENT {
            // No element is this long (a list without newlines, a binary): not parsed.
            read.diagnostics.push(bad_line(element, span));
        } else {
            match fast_literal(element, span)
                .or_else(|| super::lower::parse_set_line(element, at, &mut read.diagnostics).map(Ok))
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
        line_start = next;
    }
    read
}

/// A set file of plain IPv4 and IPv6 addresses and prefixes (block lists), read without
/// a diagnostic or a span per line: what `pfc load` makes of a dynamic set's file whose
/// lines it reads itself ([`crate::sources::IncludeLoader::defers_dynamic_set_lines`]).
/// Every element line is decoded as `parse` decodes it, so an element here is the one
/// the checker makes of that line; repeated elements are kept (sorting finds them). A
/// line that is an address or prefix alone is read in one pass (`bare_ipv4_line`,
/// `bare_ipv6_line`: a quarter of the instructions of `decode` and `Ipv6Addr`'s
/// parser), any other line through `decode`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlainPrefixes {
    /// IPv4 lines in file order: the address with its host bits cleared, shifted left by
    /// 8, or'ed with the prefix length (32 for an address); so sorted they are in the
    /// order of the element keys' `trie_order` (address, then prefix length).
    pub ipv4: Vec<u64>,
    /// IPv6 lines in file order: the address with its host bits cleared, and the prefix
    /// length (128 for an address).
    pub ipv6: Vec<(u128, u8)>,
}

/// The elements of a set file's text whose every element line is a plain IPv4 or IPv6
/// address or prefix; `None` at the first line that is anything else (another element,
/// a bad line: `parse`, the full read, decides and reports those).
pub fn plain_prefixes(text: &str) -> Option<PlainPrefixes> {
    let mut read = PlainPrefixes::default();
    let bytes = text.as_bytes();
    let mut line_start = 0;
    while line_start < bytes.len() {
        // The common line, `A.B.C.D[/L]` alone: read in one pass.
        if let Some((address, length, next)) = bare_ipv4_line(&bytes[line_start..]) {
            let host_mask = u32::MAX.checked_shr(u32::from(length)).unwrap_or(0);
            read.ipv4.push(u64::from(address & !host_mask) << 8 | u64::from(length));
            line_start += next;
            continue;
        }
        if let Some((address, length, next)) = bare_ipv6_line(&bytes[line_start..]) {
            let host_mask = u128::MAX.checked_shr(u32::from(length)).unwrap_or(0);
            read.ipv6.push((address & !host_mask, length));
            line_start += next;
            continue;
        }
        let line_end = bytes[line_start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |at| line_start + at);
        let content_end =
            bytes[line_start..line_end].iter().position(|&b| b == b'#').map_or(line_end, |at| line_start + at);
        // At ASCII bytes (or the text's ends): char boundaries, as in `parse`.
        let element = text[line_start..content_end].trim();
        line_start = line_end + 1;
        if element.is_empty() {
            continue;
        }
        read.push_element(element)?;
    }
    Some(read)
}

impl PlainPrefixes {
    /// Adds one element through [`decode`]; `None` if it is not an address or prefix.
    fn push_element(&mut self, element: &str) -> Option<()> {
        let decoded = decode(element.as_bytes())?;
        match decoded.family {
            4 => self.ipv4.push((decoded.value as u64) << 8 | u64::from(decoded.length.unwrap_or(32))),
            6 => self.ipv6.push((decoded.value, decoded.length.unwrap_or(128))),
            _ => return None,
        }
        Some(())
    }
}

/// A line that is an IPv4 address or prefix and nothing else (no space, no comment, no
/// carriage return), written as [`decode`] reads it and with no leading zero in the
/// prefix length: the address, the prefix length (32 for an address) and the bytes up
/// to the next line. `None` for any other line (the general path reads it).
fn bare_ipv4_line(bytes: &[u8]) -> Option<(u32, u8, usize)> {
    let mut address = 0;
    let mut at = 0;
    for part in 0..4 {
        if part > 0 {
            (bytes.get(at) == Some(&b'.')).then_some(())?;
            at += 1;
        }
        let (octet, end) = decimal_at(bytes, at, 3).filter(|(octet, _)| *octet <= 255)?;
        address = address << 8 | octet;
        at = end;
    }
    let mut length = 32;
    if bytes.get(at) == Some(&b'/') {
        let (written, end) = decimal_at(bytes, at + 1, 2).filter(|(written, _)| *written <= 32)?;
        length = written as u8;
        at = end;
    }
    Some((address, length, line_ends(bytes, at)?))
}

/// The decimal number of one to `most` digits at `at`
/// with no leading zero, and where it ends.
fn decimal_at(bytes: &[u8], at: usize, most: usize) -> Option<(u32, usize)> {
    let mut value = 0;
    let mut end = at;
    while let Some(digit) = bytes.get(end).map(|byte| byte.wrapping_sub(b'0')).filter(|digit| *digit <= 9) {
        value = value * 10 + u32::from(digit);
        end += 1;
        if end - at > most {
            return None;
        }
    }
    (end > at && (end - at == 1 || bytes[at] != b'0')).then_some((value, end))
}

/// The end of a bare line at `at`: the bytes up to the next line, if the line ends there.
fn line_ends(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at) {
        None => Some(at),
        Some(b'\n') => Some(at + 1),
        Some(_) => None,
    }
}

/// A line that is an IPv6 address or prefix of hex groups only (no embedded IPv4
/// address) and nothing else, written as `Ipv6Addr`'s parser (what [`decode`] uses)
/// reads it, with no leading zero in the prefix length: the address, the prefix length
/// (128 for an address) and the bytes up to the next line. `None` for any other line.
fn bare_ipv6_line(bytes: &[u8]) -> Option<(u128, u8, usize)> {
    let (mut head, mut tail) = ([0u16; 8], [0u16; 8]);
    let (mut heads, mut tails) = (0, 0);
    let mut compressed = false;
    let mut at = 0;
    if bytes.starts_with(b"::") {
        compressed = true;
        at = 2;
    }
    loop {
        let start = at;
        let mut group = 0u16;
        while let Some(digit) = bytes.get(at).and_then(|byte| char::from(*byte).to_digit(16)) {
            group = group << 4 | digit as u16;
            at += 1;
            if at - start > 4 {
                return None;
            }
        }
        if at == start {
            // No group: only right after `::` (`2001:db8::`, `::`).
            if compressed && at >= 2 && bytes[at - 2..at] == *b"::" {
                break;
            }
            return None;
        }
        match (compressed, heads + tails) {
            (_, 8..) => return None,
            (false, _) => (head[heads], heads) = (group, heads + 1),
            (true, _) => (tail[tails], tails) = (group, tails + 1),
        }
        if bytes.get(at) != Some(&b':') {
            break;
        }
        if bytes.get(at + 1) == Some(&b':') {
            if compressed {
                return None;
            }
            compressed = true;
            at += 2;
        } else {
            at += 1;
        }
    }
    // `::` stands for at least one group.
    if (compressed && heads + tails > 7) || (!compressed && heads != 8) {
        return None;
    }
    let mut groups = head;
    groups[8 - tails..].copy_from_slice(&tail[..tails]);
    let address = groups.iter().fold(0u128, |address, group| address << 16 | u128::from(*group));
    let mut length = 128;
    if bytes.get(at) == Some(&b'/') {
        let (written, end) = decimal_at(bytes, at + 1, 3).filter(|(written, _)| *written <= 128)?;
        length = written as u8;
        at = end;
    }
    Some((address, length, line_ends(bytes, at)?))
}

/// What a decoded line stands for, equal for two lines of one element: the value with
/// host bits cleared (as two words: 24 bytes a key, not the 32 of a `u128` tuple), the
/// family and the prefix length.
type ElementId = ([u64; 2], u8, u8);

/// A line decoded without the parser: an IPv4 or IPv6 address or prefix, or a decimal
/// number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decoded {
    /// The value with the host bits past the prefix length cleared (what the checker
    /// does too).
    value: u128,
    /// 4 (IPv4), 6 (IPv6) or 0 (a number).
    family: u8,
    /// The prefix length written, or `None` for a plain address or number.
    length: Option<u8>,
    /// The value as written (host bits kept), for the literal.
    written: u128,
}

impl Decoded {
    /// What the line stands for, equal for two lines of one element (`10.0.0.1` and
    /// `10.0.0.1/32`, `10.0.0.0/8` and `10.1.2.3/8`): value, family and prefix length
    /// (an address's whole width when none is written).
    fn element(self) -> ElementId {
        let bits = match self.family {
            4 => 32,
            6 => 128,
            _ => 0,
        };
        ([(self.value >> 64) as u64, self.value as u64], self.family, self.length.unwrap_or(bits))
    }

    /// The element the line holds, at `span`.
    fn decoded_element(self, span: Span) -> DecodedElement {
        let family = match self.family {
            4 => DecodedFamily::Ipv4,
            6 => DecodedFamily::Ipv6,
            _ => DecodedFamily::Number,
        };
        DecodedElement { written: self.written, span, family, length: self.length }
    }
}

/// Decodes a plain IPv4 or IPv6 address or prefix, or a decimal number, exactly as
/// [`literal::ipv4`], [`literal::colon_address`], [`literal::number`] and
/// [`literal::prefix_length`] would; `None` for anything else, valid or not (the slower
/// path decides and reports those).
fn decode(text: &[u8]) -> Option<Decoded> {
    let (address, length) = match text.iter().position(|&b| b == b'/') {
        Some(slash) => (&text[..slash], Some(decimal(&text[slash + 1..])?)),
        None => (text, None),
    };
    let (family, written, bits) = if let Some(value) = dotted_quad(address) {
        (4, u128::from(value), 32)
    } else if address.contains(&b':') && address.iter().all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.') {
        if is_mac(address) {
            return None;
        }
        let text = std::str::from_utf8(address).ok()?;
        (6, u128::from(text.parse::<std::net::Ipv6Addr>().ok()?), 128)
    } else if length.is_none() {
        (0, decimal(address)?, 128)
    } else {
        return None;
    };
    let length = match length {
        Some(length) if length > bits => return None,
        Some(length) => Some(length as u8),
        None => None,
    };
    let host = bits - u128::from(length.unwrap_or(bits as u8));
    let value = if host == 0 {
        written
    } else if host >= 128 {
        0
    } else {
        written & !((1u128 << host) - 1)
    };
    Some(Decoded { value, family, length, written })
}

/// A decimal number of 1 to 39 digits that fits in a u128 (what `str::parse` takes,
/// without a sign).
fn decimal(text: &[u8]) -> Option<u128> {
    if text.is_empty() || text.len() > 39 {
        return None;
    }
    let mut value: u128 = 0;
    for &byte in text {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u128::from(digit))?;
    }
    Some(value)
}

/// Four dot-separated parts of 1 to 3 digits, each at most 255.
fn dotted_quad(text: &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    let mut parts = 0;
    for part in text.split(|&b| b == b'.') {
        // A leading zero (`010`) is refused by the parser, with the reason.
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let octet = decimal(part)? as u32;
        if octet > 255 {
            return None;
        }
        value = value << 8 | octet;
        parts += 1;
    }
    (parts == 4).then_some(value)
}

/// Six colon-separated groups of two hex digits: what [`literal::colon_address`] reads as a
/// MAC address.
fn is_mac(text: &[u8]) -> bool {
    text.len() == 17 && text.split(|&b| b == b':').all(|group| group.len() == 2)
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
    let diagnostic = Diagnostic::error(BAD_SET_LINE, format!("`{shown} is not a set element"), span, "not one element")
        .with_note("a set file holds one element per line: an address, a prefix, a range, a number or a name; `#` starts a comment");
    // A byte-order mark inside the file (two lists joined with `cat`), a no-break or
    // zero-width space: the line looks like a good element; name what is there.
    match element.chars().find(|c| !c.is_ascii()) {
        Some(c) => {
            diagnostic.with_note(format!("the line holds U+{:04X}, which is not ASCII: elements are ASCII", c as u32))
        }
        None => diagnostic,
    }
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
        let SetFileLines { elements, decoded, diagnostics, .. } = parse(text, 100, None);
        let mut out: Vec<(u32, String)> = elements
            .iter()
            .map(|literal| {
                (literal.span.start, format!("{:?} @{}..{}", literal.kind, literal.span.start, literal.span.end))
            })
            .collect();
        let line_of = |span: Span| &text[span.start as usize - 100..span.end as usize - 100];
        out.extend(decoded.iter().map(|decoded| {
            let literal = literal_of(*decoded, line_of(decoded.span));
            (decoded.span.start, format!("{:?} @{}..{}", literal.kind, literal.span.start, literal.span.end))
        }));
        out.sort_by_key(|(start, _)| *start);
        let mut out: Vec<String> = out.into_iter().map(|(_, line)| line).collect();
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

    /// The literal a decoded element stands for (`line`: its text, for the address's span).
    fn literal_of(decoded: DecodedElement, line: &str) -> Literal {
        let kind = match decoded.family {
            DecodedFamily::Ipv4 => LiteralKind::Ipv4(decoded.written as u32),
            DecodedFamily::Ipv6 => LiteralKind::Ipv6(decoded.written),
            DecodedFamily::Number => LiteralKind::Number(decoded.written),
        };
        let span = decoded.span;
        let Some(length) = decoded.length else { return Literal { kind, span } };
        let start = span.start as usize;
        let address = Literal { kind, span: Span::new(start, start + line.find('/').expect("a prefix")) };
        Literal { kind: LiteralKind::Prefix(Box::new(address), u32::from(length)), span }
    }

    #[test]
    fn decoded_lines_are_the_literals_the_slow_path_makes() {
        let lines = [
            "10.0.0.0/8",
            "10.1.2.3/8",
            "0.0.0.0/0",
            "255.255.255.255",
            "2001:db8::/32",
            "::",
            "::/0",
            "::ffff:1.2.3.4/128",
            "80",
            "340282366920938463463374607431768211455",
        ];
        for line in lines {
            let span = Span::new(7, 7 + line.len());
            let decoded = decode(line.as_bytes()).unwrap_or_else(|| panic!("{line} decodes"));
            let slow = fast_literal(line, span).expect("a literal").expect("valid");
            assert_eq!(literal_of(decoded.decoded_element(span), line), slow, "{line}");
        }
        // Left to the slow path (which reports the bad ones).
        let others = [
            "256.0.0.1",
            "010.0.0.1",
            "10.0.0.0/33",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.4/",
            "1..2.3",
            "02:00:5e:10:00:01",
            "::1/129",
            "340282366920938463463374607431768211456",
            "80/8",
            "0x10",
            "ssh",
            "+1",
            "80..90",
        ];
        for line in others {
            assert_eq!(decode(line.as_bytes()), None, "{line}");
        }
    }

    /// [`plain_prefixes`] of one line, through [`decode`] alone (no one-pass path).
    fn decoded_alone(line: &str) -> Option<PlainPrefixes> {
        let element = line.split('#').next().unwrap_or_default().trim();
        let mut read = PlainPrefixes::default();
        if element.is_empty() {
            return Some(read);
        }
        read.push_element(element)?;
        Some(read)
    }

    #[test]
    fn plain_prefixes_reads_each_line_as_decode_does() {
        let lines = [
            "10.0.0.0/8",
            "10.1.2.3/8",
            "10.1.2.3/08",
            "0.0.0.0/0",
            "0.0.0.0/00",
            "1.2.3.4/32",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/320",
            "255.255.255.255",
            "256.1.1.1",
            "010.0.0.1",
            "0.0.0.0",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.4\r",
            "1.2.3.4#x",
            "1.2.3.4 # x",
            "1.2.3.1234",
            "1.2.3.4a",
            "2001:db8::/32",
            "2001:DB8::/32",
            "2001:0db8:0000::/048",
            "2001:db8::/0",
            "::/0",
            "::",
            ":::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8/64",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7",
            "1::2::3",
            ":1::",
            "1:::2",
            "12345::",
            "fe80::1%eth0",
            "2001:db8::/128",
            "2001:db8::/129",
            "2001:db8::/1280",
            "02:00:5e:10:00:01",
            "::ffff:1.2.3.4",
            "::1/129",
            "80",
            "ssh",
            "",
            "# only",
        ];
        for line in lines {
            for end in ["", "\n"] {
                let text = format!("{line}{end}");
                assert_eq!(plain_prefixes(&text), decoded_alone(line), "{text:?}");
            }
        }
        let text: String = lines[..6].iter().map(|line| format!("{line}\n")).collect();
        let read = plain_prefixes(&text).expect("plain");
        assert_eq!(read.ipv4.len(), 6);
        assert_eq!(read.ipv4[1], 0x0a00_0000 << 8 | 8);
    }

    #[test]
    fn repeated_elements_are_kept_once_and_the_limit_counts_distinct_ones() {
        let text = "10.0.0.0/8\n10.1.2.3/8\n10.0.0.1\n10.0.0.1/32\n::\n::0\n80\n80\n192.0.2.1\n";
        let read = parse(text, 0, None);
        assert_eq!((read.elements.len() + read.decoded.len(), read.repeated), (5, 4));
        let read = parse(text, 0, Some(4));
        assert_eq!((read.elements.len() + read.decoded.len(), read.repeated), (4, 4));
        assert_eq!(read.beyond_limit.map(|span| span.start), Some(text.find("192.").unwrap() as u32));
    }

    #[test]
    fn bad_lines_are_reported_where_they_are() {
        insta::assert_snapshot!(render("10.0.0.256\n10.0.0.0/33\n10.0.0.1 10.0.0.2\n{ 1 }\n1.2.3.4.5\n"), @r"
        Invalid @147..156
        E0005 `10.0.0.256` is not an IPv4 address @100
        E0005 prefix length /33 is out of range @120
        E0024 `10.0.0.1 10.0.0.2` is not a set element @123
        E0024 `{ 1 }` is not a set element @141
        E0005 `1.2.3.4.5` is not an IPv4 address @147
        ");
    }
}
