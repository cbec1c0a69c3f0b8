//! The compact packet spec. Input: a line such as
//! `eth / vlan 10 / ipv4 src=203.0.113.5 dst=10.0.0.2 / tcp dport=22 flags=S / payload "hi"`;
//! output: a [`Packet`] (and its bytes), or a [`SpecError`] with the byte span in the line.
//!
//! Grammar (whitespace separates items; `/` separates layers):
//! ```text
//! spec    = part ( "/" part )*
//! part    = LAYER item*          | "truncate" NUMBER | "truncate=" NUMBER
//! item    = KEY "=" value        | value            (a positional value or a bare flag)
//! value   = WORD | "quoted string"                   (\" \\ \n \r \t \0 \xNN escapes)
//! ```
//! An Ethernet header is added when the first layer is not `eth`. The meaning of each
//! layer's fields is in `fields`; `docs/testing.md` lists them all.

use thiserror::Error;

use super::fields::apply_layer;
use super::MAX_PACKET_LEN;
use crate::diagnostic::Span;
use crate::packet::{Eth, Layer, Packet};

/// Why a packet spec cannot be built. Every variant carries the span (byte offsets into
/// the spec text) that it is about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// The spec has no layers.
    #[error("the packet spec is empty")]
    Empty {
        /// Where the empty part is.
        span: Span,
    },
    /// A `"` without its closing `"`.
    #[error("unterminated string")]
    UnterminatedString {
        /// From the opening quote to the end.
        span: Span,
    },
    /// A backslash escape that is not `\" \\ \n \r \t \0 \xNN`.
    #[error("unknown escape `{escape}` in a string")]
    BadEscape {
        /// The escape as written.
        escape: String,
        /// Where it is.
        span: Span,
    },
    /// A part that does not start with a layer name.
    #[error("expected a layer name, found `{found}`")]
    ExpectedLayer {
        /// What was there.
        found: String,
        /// Where.
        span: Span,
    },
    /// A layer name pfc does not know.
    #[error("unknown layer `{name}`; the layers are: {known}")]
    UnknownLayer {
        /// The name as written.
        name: String,
        /// Every layer name.
        known: &'static str,
        /// Where.
        span: Span,
    },
    /// A field the layer does not have.
    #[error("`{layer}` has no field `{field}`; its fields are: {known}")]
    UnknownField {
        /// The layer.
        layer: &'static str,
        /// The field as written.
        field: String,
        /// The layer's fields.
        known: Box<str>,
        /// Where.
        span: Span,
    },
    /// A value of the wrong type or out of range.
    #[error("`{layer} {field}` takes {expected}, not `{value}`")]
    BadValue {
        /// The layer.
        layer: &'static str,
        /// The field.
        field: &'static str,
        /// What the field takes.
        expected: Box<str>,
        /// The value as written.
        value: String,
        /// Where.
        span: Span,
    },
    /// A positional value the layer has no use for.
    #[error("`{layer}` takes no value `{value}` here; write `field=value`")]
    UnexpectedValue {
        /// The layer.
        layer: &'static str,
        /// The value as written.
        value: String,
        /// Where.
        span: Span,
    },
    /// `key=` with nothing after it, or `=` without a key.
    #[error("`=` needs a field name before it and a value after it")]
    DanglingEquals {
        /// Where.
        span: Span,
    },
    /// `truncate` not in the last part.
    #[error("`truncate` must be the last part of the spec")]
    TruncateNotLast {
        /// Where.
        span: Span,
    },
    /// The frame is larger than pfc tests packets.
    #[error("the packet has {len} bytes; test packets have at most {max}")]
    TooLarge {
        /// Its length (or an estimate, for absurd sizes).
        len: usize,
        /// [`MAX_PACKET_LEN`].
        max: usize,
        /// The whole spec.
        span: Span,
    },
}

impl SpecError {
    /// The span in the spec text this error is about.
    pub fn span(&self) -> Span {
        match self {
            SpecError::Empty { span }
            | SpecError::UnterminatedString { span }
            | SpecError::BadEscape { span, .. }
            | SpecError::ExpectedLayer { span, .. }
            | SpecError::UnknownLayer { span, .. }
            | SpecError::UnknownField { span, .. }
            | SpecError::BadValue { span, .. }
            | SpecError::UnexpectedValue { span, .. }
            | SpecError::DanglingEquals { span }
            | SpecError::TruncateNotLast { span }
            | SpecError::TooLarge { span, .. } => *span,
        }
    }
}

/// A value as written: a bare word or a quoted string (escapes resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Value {
    /// The text.
    pub text: String,
    /// Whether it was quoted.
    pub quoted: bool,
    /// Where it is.
    pub span: Span,
}

/// One item of a part: `key=value` or a lone value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    /// The field name and its span, for `key=value`.
    pub key: Option<(String, Span)>,
    /// The value.
    pub value: Value,
}

/// One `/`-separated part: a layer name and its items.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    name: Value,
    items: Vec<Item>,
    span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(Value),
    Equals(Span),
    Slash(Span),
}

/// Builds the packet a spec describes (refusing only absurd sizes; [`spec_bytes`] checks
/// the exact limit).
pub fn parse_spec(text: &str) -> Result<Packet, SpecError> {
    let parts = split_parts(tokenize(text)?, text)?;
    let mut packet = Packet::new();
    let count = parts.len();
    for (index, part) in parts.into_iter().enumerate() {
        if part.name.text == "truncate" {
            if index + 1 != count {
                return Err(SpecError::TruncateNotLast { span: part.span });
            }
            packet.truncate = Some(truncate_length(&part)?);
            continue;
        }
        if index == 0 && part.name.text != "eth" {
            packet.layers.push(Layer::Eth(Eth::default()));
        }
        apply_layer(&mut packet, &part.name, &part.items)?;
        // An upper bound, to stop before building anything huge; `spec_bytes` checks
        // the exact length.
        let len: usize = packet.layers.iter().map(layer_len).sum();
        if len > 2 * MAX_PACKET_LEN {
            return Err(SpecError::TooLarge { len, max: MAX_PACKET_LEN, span: Span::new(0, text.len()) });
        }
    }
    Ok(packet)
}

/// Builds a spec's frame, truncation applied.
pub fn spec_bytes(text: &str) -> Result<Vec<u8>, SpecError> {
    let bytes = parse_spec(text)?.build();
    if bytes.len() > MAX_PACKET_LEN {
        return Err(SpecError::TooLarge { len: bytes.len(), max: MAX_PACKET_LEN, span: Span::new(0, text.len()) });
    }
    Ok(bytes)
}

/// An upper bound of a layer's encoded size, to refuse huge packets before building them.
fn layer_len(layer: &Layer) -> usize {
    match layer {
        Layer::Payload(bytes) => bytes.len(),
        Layer::Ipv6Ext(ext) => (usize::from(ext.len) + 1) * 8,
        Layer::Ipv4(ip) => 20 + ip.options.len() + 3,
        _ => 40,
    }
}

fn truncate_length(part: &Part) -> Result<usize, SpecError> {
    let bad = |value: &Value| SpecError::BadValue {
        layer: "truncate",
        field: "length",
        expected: "a byte count".into(),
        value: value.text.clone(),
        span: value.span,
    };
    match part.items.as_slice() {
        [item] if item.key.as_ref().map_or(true, |(key, _)| key == "len") => {
            item.value.text.parse::<usize>().map_err(|_| bad(&item.value))
        }
        [] => Err(bad(&part.name)),
        [_, extra, ..] | [extra] => Err(SpecError::UnexpectedValue {
            layer: "truncate",
            value: extra.value.text.clone(),
            span: extra.value.span,
        }),
    }
}

fn split_parts(tokens: Vec<Token>, text: &str) -> Result<Vec<Part>, SpecError> {
    let mut parts = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut start = 0;
    for token in tokens.into_iter().chain(std::iter::once(Token::Slash(Span::new(text.len(), text.len())))) {
        match token {
            Token::Slash(span) => {
                let part_span = Span::new(start, span.start as usize);
                parts.push(build_part(std::mem::take(&mut current), part_span)?);
                start = span.end as usize;
            }
            other => current.push(other),
        }
    }
    Ok(parts)
}

fn build_part(tokens: Vec<Token>, span: Span) -> Result<Part, SpecError> {
    let mut tokens = tokens.into_iter().peekable();
    let mut name = match tokens.next() {
        None => return Err(SpecError::Empty { span }),
        Some(Token::Word(value)) if !value.quoted => value,
        Some(Token::Word(value)) => return Err(SpecError::ExpectedLayer { found: value.text, span: value.span }),
        Some(Token::Equals(span) | Token::Slash(span)) => return Err(SpecError::DanglingEquals { span }),
    };
    let mut items = Vec::new();
    // `truncate=34` reads as the layer `truncate` with the value 34.
    if let Some(Token::Equals(_)) = tokens.peek() {
        tokens.next();
        let Some(Token::Word(value)) = tokens.next() else { return Err(SpecError::DanglingEquals { span: name.span }) };
        items.push(Item { key: None, value });
        name = Value { text: name.text, quoted: false, span: name.span };
    }
    while let Some(token) = tokens.next() {
        let Token::Word(value) = token else {
            let (Token::Equals(span) | Token::Slash(span) | Token::Word(Value { span, .. })) = token;
            return Err(SpecError::DanglingEquals { span });
        };
        if let Some(Token::Equals(equals)) = tokens.peek() {
            let equals = *equals;
            tokens.next();
            match tokens.next() {
                Some(Token::Word(field_value)) if !value.quoted => {
                    items.push(Item { key: Some((value.text, value.span)), value: field_value })
                }
                _ => return Err(SpecError::DanglingEquals { span: equals }),
            }
        } else {
            items.push(Item { key: None, value });
        }
    }
    Ok(Part { name, items, span })
}

fn tokenize(text: &str) -> Result<Vec<Token>, SpecError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_whitespace() => i += 1,
            b'/' => {
                tokens.push(Token::Slash(Span::new(i, i + 1)));
                i += 1;
            }
            b'=' => {
                tokens.push(Token::Equals(Span::new(i, i + 1)));
                i += 1;
            }
            b'"' => {
                let (value, end) = quoted(text, i)?;
                tokens.push(Token::Word(value));
                i = end;
            }
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'/' | b'=' | b'"') {
                    i += 1;
                }
                let span = Span::new(start, i);
                tokens.push(Token::Word(Value { text: text[start..i].to_string(), quoted: false, span }));
            }
        }
    }
    Ok(tokens)
}

/// The string starting with the quote at `start`, and the offset after its closing quote.
fn quoted(text: &str, start: usize) -> Result<(Value, usize), SpecError> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices().map(|(i, c)| (i + start + 1, c));
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Value { text: out, quoted: true, span: Span::new(start, i + 1) }, i + 1)),
            '\\' => {
                let escape = match chars.next() {
                    Some((_, '"')) => '"',
                    Some((_, '\\')) => '\\',
                    Some((_, 'n')) => '\n',
                    Some((_, 't')) => '\t',
                    Some((_, 'r')) => '\r',
                    Some((_, '0')) => '\0',
                    Some((_, 'x')) => {
                        let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                        match u8::from_str_radix(&hex, 16) {
                            Ok(byte) if hex.len() == 2 => char::from(byte),
                            _ => {
                                let span = Span::new(i, (i + 4).min(text.len()));
                                return Err(SpecError::BadEscape { escape: format!("\\x{hex}"), span });
                            }
                        }
                    }
                    Some((j, other)) => {
                        let span = Span::new(i, j + other.len_utf8());
                        return Err(SpecError::BadEscape { escape: format!("\\{other}"), span });
                    }
                    None => break,
                };
                out.push(escape);
            }
            other => out.push(other),
        }
    }
    Err(SpecError::UnterminatedString { span: Span::new(start, text.len()) })
}

/// Bytes from hex text; spaces, `:` and `-` between bytes are allowed. `Err` holds the
/// byte offset of the first character that is not part of a hex pair.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<(usize, u8)> = None;
    for (i, c) in text.char_indices() {
        match (c.to_digit(16), high) {
            (Some(digit), None) => high = Some((i, digit as u8)),
            (Some(digit), Some((_, h))) => {
                out.push(h << 4 | digit as u8);
                high = None;
            }
            (None, None) if c.is_whitespace() || c == ':' || c == '-' => {}
            (None, _) => return Err(i),
        }
        if out.len() > MAX_PACKET_LEN {
            return Ok(out);
        }
    }
    match high {
        Some((i, _)) => Err(i),
        None => Ok(out),
    }
}
