//! Literal decoding: the text of a number or address token in, its value (or a
//! diagnostic saying why it is not one) out.

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::syntax::ast::LiteralKind;

/// E0005: a literal is malformed or out of range.
pub const BAD_LITERAL: Code = Code("E0005");

/// Decodes a decimal or `0x` number.
pub fn number(text: &str, span: Span) -> Result<LiteralKind, Diagnostic> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u128::from_str_radix(hex, 16),
        None => text.parse::<u128>(),
    };
    parsed.map(LiteralKind::Number).map_err(|_| {
        Diagnostic::error(BAD_LITERAL, format!("number `{text}` is too large"), span, "does not fit in 128 bits")
    })
}

/// Decodes a dotted IPv4 address.
pub fn ipv4(text: &str, span: Span) -> Result<LiteralKind, Diagnostic> {
    let parts = text.split('.').count();
    if parts != 4 {
        return Err(Diagnostic::error(
            BAD_LITERAL,
            format!("`{text}` is not an IPv4 address"),
            span,
            format!("{parts} parts: an IPv4 address has four (`10.0.0.1`), a number none"),
        ));
    }
    let mut value: u32 = 0;
    for part in text.split('.') {
        if part.len() > 1 && part.starts_with('0') {
            let decimal = part.trim_start_matches('0');
            let decimal = if decimal.is_empty() { "0" } else { decimal };
            return Err(Diagnostic::error(
                BAD_LITERAL,
                format!("`{text}` is not an IPv4 address"),
                span,
                format!("`{part}` has a leading zero"),
            )
            .with_note(format!(
                "inet_aton (so ping and many other tools) reads a part with a leading zero as octal, so whether `{part}` means {decimal} is unclear; write `{decimal}`"
            )));
        }
        match part.parse::<u32>() {
            Ok(octet) if octet <= 255 && part.len() <= 3 => value = (value << 8) | octet,
            _ => {
                return Err(Diagnostic::error(
                    BAD_LITERAL,
                    format!("`{text}` is not an IPv4 address"),
                    span,
                    format!("`{part}` is not a number from 0 to 255"),
                ))
            }
        }
    }
    Ok(LiteralKind::Ipv4(value))
}

/// Decodes a token with colons: a MAC address (six groups of two hex digits) or an
/// IPv6 address.
pub(crate) fn colon_address(text: &str, span: Span) -> Result<LiteralKind, Diagnostic> {
    let groups: Vec<&str> = text.split(':').collect();
    if groups.len() == 6 && groups.iter().all(|group| group.len() == 2) {
        if let Ok(bytes) = groups.iter().map(|group| u8::from_str_radix(group, 16)).collect::<Result<Vec<u8>, _>>() {
            return Ok(LiteralKind::Mac(bytes.iter().fold(0u64, |acc, &byte| (acc << 8) | byte as u64)));
        }
    }
    match text.parse::<std::net::Ipv6Addr>() {
        Ok(address) => Ok(LiteralKind::Ipv6(u128::from(address))),
        Err(_) => Err(Diagnostic::error(
            BAD_LITERAL,
            format!("`{text}` is not an IPv6 or MAC address"),
            span,
            "malformed address",
        )
        .with_note("IPv6 addresses look like `2001:db8::1`; MAC addresses like `02:00:5e:10:00:01`")),
    }
}

/// Checks a prefix length against the address family.
pub(crate) fn prefix_length(address: &LiteralKind, text: &str, span: Span) -> Result<u32, Diagnostic> {
    let max = match address {
        LiteralKind::Ipv4(_) => 32,
        LiteralKind::Ipv6(_) => 128,
        LiteralKind::Mac(_) => 48,
        _ => 128,
    };
    match text.parse::<u32>() {
        Ok(length) if length <= max => Ok(length),
        _ => Err(Diagnostic::error(
            BAD_LITERAL,
            format!("prefix length /{text} is out of range"),
            span,
            format!("must be 0 to {max}"),
        )),
    }
}
