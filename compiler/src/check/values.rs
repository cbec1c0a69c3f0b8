//! Literal resolution: AST literals in, typed scalars and intervals out.
//!
//! Names are looked up first among the file's constants, then among the named values
//! of the context (`syn` for `tcp.flags`, `ssh` for a port). A set's name means the set
//! only after `in` ([`Checker::set_named`], also through constants: `const alt = web`);
//! where a value is expected, a set that has a named value's name is warned about (W0007).

use super::{Checker, TYPE_MISMATCH, UNKNOWN_NAME};
use crate::diagnostic::{Diagnostic, Span};
use crate::fields::ValueKind;
use crate::syntax::ast::{DecodedElement, DecodedFamily, Literal, LiteralKind};

/// E0006: a range whose low end is above its high end.
pub const REVERSED_RANGE: crate::diagnostic::Code = crate::diagnostic::Code("E0006");

/// W0007: a name that is both a set and a named value, used where a value is expected:
/// it means the named value there, the set only after `in`.
pub const SET_NAMED_LIKE_A_VALUE: crate::diagnostic::Code = crate::diagnostic::Code("W0007");

/// How many constants one name may lead through before reaching a value or a set: the
/// name itself, if it is a constant, counts as the first (`const a = b`, `const b = 22`:
/// `a` leads through two). Only constants count: prefixes, ranges and named values don't.
pub const MAX_CONST_CHAIN: usize = 16;

/// A single resolved value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// A number.
    Int(u128),
    /// An IPv4 address.
    Ipv4(u32),
    /// An IPv6 address.
    Ipv6(u128),
    /// A MAC address.
    Mac(u64),
}

impl Scalar {
    /// The value kind family of this scalar, for matching against fields.
    pub fn matches(self, kind: ValueKind) -> bool {
        matches!(
            (self, kind),
            (Scalar::Int(_), ValueKind::Uint(_))
                | (Scalar::Ipv4(_), ValueKind::Ipv4)
                | (Scalar::Ipv6(_), ValueKind::Ipv6)
                | (Scalar::Mac(_), ValueKind::Mac)
        )
    }

    /// The value as a number.
    pub fn raw(self) -> u128 {
        match self {
            Scalar::Int(value) | Scalar::Ipv6(value) => value,
            Scalar::Ipv4(value) => value as u128,
            Scalar::Mac(value) => value as u128,
        }
    }

    /// What the value is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Scalar::Int(_) => "a number",
            Scalar::Ipv4(_) => "an IPv4 address",
            Scalar::Ipv6(_) => "an IPv6 address",
            Scalar::Mac(_) => "a MAC address",
        }
    }
}

/// A set element: an interval of values of one kind (single values have low == high).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element {
    /// Low end, inclusive.
    pub low: Scalar,
    /// High end, inclusive (same kind as `low`).
    pub high: Scalar,
    /// Where the element was written.
    pub span: Span,
}

/// The element a set file's decoded line holds: what [`Checker::element`] makes of the
/// literal it stands for (a prefix's host bits cleared in `low` and set in `high`).
pub(super) fn decoded_element(decoded: &DecodedElement) -> Element {
    let (bits, scalar): (u32, fn(u128) -> Scalar) = match decoded.family {
        DecodedFamily::Ipv4 => (32, |value| Scalar::Ipv4(value as u32)),
        DecodedFamily::Ipv6 => (128, Scalar::Ipv6),
        DecodedFamily::Number => (128, Scalar::Int),
    };
    let written = decoded.written;
    let Some(length) = decoded.length else {
        return Element { low: scalar(written), high: scalar(written), span: decoded.span };
    };
    let host_bits = bits - u32::from(length).min(bits);
    let host_mask = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
    Element { low: scalar(written & !host_mask), high: scalar(written | host_mask), span: decoded.span }
}

impl Checker {
    /// Resolves a literal that must be one value.
    pub(super) fn scalar(&mut self, literal: &Literal, named: &[(&str, u128)]) -> Option<Scalar> {
        self.scalar_at_depth(literal, named, 0)
    }

    fn scalar_at_depth(&mut self, literal: &Literal, named: &[(&str, u128)], depth: usize) -> Option<Scalar> {
        match &literal.kind {
            LiteralKind::Number(value) => Some(Scalar::Int(*value)),
            LiteralKind::Ipv4(value) => Some(Scalar::Ipv4(*value)),
            LiteralKind::Ipv6(value) => Some(Scalar::Ipv6(*value)),
            LiteralKind::Mac(value) => Some(Scalar::Mac(*value)),
            LiteralKind::Invalid => None,
            LiteralKind::Name(name) => {
                let constant = self.resolve_name(name, literal.span, named, depth)?;
                match constant {
                    Resolved::Named(value) => Some(Scalar::Int(value)),
                    Resolved::Literal(literal) => self.scalar_at_depth(&literal, named, depth + 1),
                }
            }
            LiteralKind::Prefix(..) | LiteralKind::Range(..) => {
                self.diagnostics.push(
                    Diagnostic::error(
                        TYPE_MISMATCH,
                        "expected a single value",
                        literal.span,
                        "this is a set of values",
                    )
                    .with_note("to test membership in a prefix or range, write `FIELD in PREFIX`"),
                );
                None
            }
        }
    }

    /// Resolves a literal that may be a value, a prefix or a range.
    pub(super) fn element(&mut self, literal: &Literal, named: &[(&str, u128)]) -> Option<Element> {
        self.element_at_depth(literal, named, 0)
    }

    fn element_at_depth(&mut self, literal: &Literal, named: &[(&str, u128)], depth: usize) -> Option<Element> {
        let span = literal.span;
        match &literal.kind {
            LiteralKind::Prefix(address, length) => {
                let address = self.scalar_at_depth(address, named, depth)?;
                let (bits, low) = match address {
                    Scalar::Ipv4(value) => (32, value as u128),
                    Scalar::Ipv6(value) => (128, value),
                    _ => {
                        self.diagnostics.push(Diagnostic::error(
                            TYPE_MISMATCH,
                            "prefixes need an IPv4 or IPv6 address",
                            span,
                            format!("this is {}", address.describe()),
                        ));
                        return None;
                    }
                };
                let host_bits = bits - length;
                let host_mask = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
                let (low, high) = (low & !host_mask, low | host_mask);
                let rebuild = |value: u128| match address {
                    Scalar::Ipv4(_) => Scalar::Ipv4(value as u32),
                    _ => Scalar::Ipv6(value),
                };
                Some(Element { low: rebuild(low), high: rebuild(high), span })
            }
            LiteralKind::Range(low, high) => {
                let low = self.scalar_at_depth(low, named, depth)?;
                let high = self.scalar_at_depth(high, named, depth)?;
                if std::mem::discriminant(&low) != std::mem::discriminant(&high) {
                    self.diagnostics.push(Diagnostic::error(
                        TYPE_MISMATCH,
                        "both ends of a range must be of one kind",
                        span,
                        format!("{} .. {}", low.describe(), high.describe()),
                    ));
                    return None;
                }
                if low.raw() > high.raw() {
                    self.diagnostics.push(
                        Diagnostic::error(
                            REVERSED_RANGE,
                            "range is reversed",
                            span,
                            "the low end is above the high end",
                        )
                        .with_note("write the smaller value first, e.g. `1024..2048`"),
                    );
                    return None;
                }
                Some(Element { low, high, span })
            }
            LiteralKind::Name(name) => match self.resolve_name(name, span, named, depth)? {
                Resolved::Named(value) => Some(Element { low: Scalar::Int(value), high: Scalar::Int(value), span }),
                Resolved::Literal(literal) => {
                    let element = self.element_at_depth(&literal, named, depth + 1)?;
                    Some(Element { span, ..element })
                }
            },
            _ => {
                let value = self.scalar_at_depth(literal, named, depth)?;
                Some(Element { low: value, high: value, span })
            }
        }
    }

    /// Looks a name up: constants of the file first, then the context's named values.
    fn resolve_name(&mut self, name: &str, span: Span, named: &[(&str, u128)], depth: usize) -> Option<Resolved> {
        if self.broken_consts.contains(name) {
            return None;
        }
        if let Some(literal) = self.consts.get(name).map(|constant| constant.value.clone()) {
            if depth >= MAX_CONST_CHAIN {
                let diagnostic = match self.const_loop(name) {
                    Some(chain) => Diagnostic::error(
                        UNKNOWN_NAME,
                        format!("constant `{name}` refers to itself"),
                        span,
                        "the chain of constants loops",
                    )
                    .with_note(format!("the loop: {}", chain.join(" → "))),
                    None => Diagnostic::error(
                        UNKNOWN_NAME,
                        format!("a chain of more than {MAX_CONST_CHAIN} constants"),
                        span,
                        "the chain of constants is too long here",
                    )
                    .with_note("give one of these constants a value instead of another constant's name"),
                };
                self.diagnostics.push(diagnostic);
                return None;
            }
            return Some(Resolved::Literal(literal));
        }
        if let Some((_, value)) = named.iter().find(|(candidate, _)| *candidate == name) {
            if let Some(&set) = self.set_names.get(name) {
                self.diagnostics.push(
                    Diagnostic::warning(
                        SET_NAMED_LIKE_A_VALUE,
                        format!("`{name}` here is the named value {value}, not the set `{name}`"),
                        span,
                        format!("{name} = {value}"),
                    )
                    .with_label(set, "a set of the same name")
                    .with_note(format!(
                        "a set's name means the set only after `in` (`FIELD in {name}`); inside `{{ }}` and after `==` a name is a constant or a named value"
                    ))
                    .with_note("rename the set so the two cannot be confused"),
                );
            }
            return Some(Resolved::Named(*value));
        }
        if self.sets.contains_key(name) {
            self.diagnostics.push(
                Diagnostic::error(TYPE_MISMATCH, format!("`{name}` is a set, not a value"), span, "a set")
                    .with_note(format!("test membership with `FIELD in {name}`")),
            );
            return None;
        }
        if self.unparsed_names.contains(name) {
            return None;
        }
        let candidates: Vec<&str> =
            self.consts.keys().map(String::as_str).chain(named.iter().map(|(candidate, _)| *candidate)).collect();
        let mut diagnostic =
            Diagnostic::error(UNKNOWN_NAME, format!("unknown name `{name}`"), span, "not a constant or a known value");
        if let Some(suggestion) = super::names::suggest(name, candidates.iter().copied()) {
            diagnostic = diagnostic.with_note(format!("did you mean `{suggestion}`?"));
        } else if !named.is_empty() {
            let known: Vec<&str> = named.iter().map(|(candidate, _)| *candidate).take(16).collect();
            diagnostic = diagnostic.with_note(format!("known values here: {}", known.join(", ")));
        }
        self.diagnostics.push(diagnostic);
        None
    }
}

impl Checker {
    /// The declared set `name` stands for after `in`: the set itself, or the set that a
    /// constant names (`const alt = web`), through at most [`MAX_CONST_CHAIN`] constants.
    pub(super) fn set_named(&self, name: &str) -> Option<&super::DeclaredSet> {
        let mut current = name;
        for _ in 0..=MAX_CONST_CHAIN {
            if let Some(set) = self.sets.get(current) {
                return Some(set);
            }
            match self.consts.get(current).map(|constant| &constant.value.kind) {
                Some(LiteralKind::Name(next)) => current = next,
                _ => return None,
            }
        }
        None
    }

    /// Every declared constant (`declared`, in statement order) leads through at most
    /// [`MAX_CONST_CHAIN`] constants and into no loop, used or not (E0007 at the constant
    /// whose value closes the loop or is one too many, once for each). Such constants go
    /// into `broken_consts`, so their uses are not reported again.
    pub(super) fn constant_chains(&mut self, declared: &[String]) {
        let mut reported = std::collections::HashSet::new();
        let mut in_reported_loop = std::collections::HashSet::new();
        for name in declared {
            let mut chain = vec![name.as_str()];
            let mut current = name.as_str();
            let broken = loop {
                let Some(constant) = self.consts.get(current) else { break None };
                let LiteralKind::Name(next) = &constant.value.kind else { break None };
                if !self.consts.contains_key(next) {
                    break None;
                }
                let at = constant.value.span;
                if let Some(start) = chain.iter().position(|seen| seen == next) {
                    let mut cycle: Vec<String> = chain[start..].iter().map(|name| name.to_string()).collect();
                    if cycle.iter().any(|member| in_reported_loop.contains(member)) {
                        break Some((at, None));
                    }
                    in_reported_loop.extend(cycle.iter().cloned());
                    cycle.push(next.clone());
                    let diagnostic = Diagnostic::error(
                        UNKNOWN_NAME,
                        format!("constant `{next}` refers to itself"),
                        at,
                        "the chain of constants loops",
                    )
                    .with_note(format!("the loop: {}", cycle.join(" → ")));
                    break Some((at, Some(diagnostic)));
                }
                chain.push(next);
                if chain.len() > MAX_CONST_CHAIN {
                    let diagnostic = Diagnostic::error(
                        UNKNOWN_NAME,
                        format!("a chain of more than {MAX_CONST_CHAIN} constants"),
                        at,
                        "the chain of constants is too long here",
                    )
                    .with_note(format!("`{name}` leads through {} constants or more", MAX_CONST_CHAIN + 1))
                    .with_note("give one of these constants a value instead of another constant's name");
                    break Some((at, Some(diagnostic)));
                }
                current = next;
            };
            if let Some((at, diagnostic)) = broken {
                if let (true, Some(diagnostic)) = (reported.insert(at), diagnostic) {
                    self.diagnostics.push(diagnostic);
                }
                self.broken_consts.insert(name.clone());
            }
        }
    }

    /// The constants from `name` on, following constants whose value is another name,
    /// when that chain comes back to one of them: the loop, first name repeated at the end.
    fn const_loop(&self, name: &str) -> Option<Vec<String>> {
        let mut chain = vec![name.to_string()];
        let mut current = name;
        while let Some(LiteralKind::Name(next)) = self.consts.get(current).map(|constant| &constant.value.kind) {
            let start = chain.iter().position(|seen| seen == next);
            chain.push(next.clone());
            if let Some(start) = start {
                return Some(chain.split_off(start));
            }
            current = next;
        }
        None
    }
}

enum Resolved {
    Named(u128),
    Literal(Literal),
}
