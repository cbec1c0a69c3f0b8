//! Condition checking: an AST expression in, a resolved [`Cond`] out.
//!
//! Each test is typed against its field; surface fields that stand for several concrete
//! fields (`ip.src`, `l4.dport`) become an `or` of one test per concrete field whose
//! type fits the value, so that every atom keeps its own header guard. A concrete field
//! of the wrong family (`ipv6.src` for `10.0.0.1`) or too narrow for the number
//! (`ipv4.len` for 70000) is not tested; where the comparison holds for every value it
//! could have (`!=`, and `<`/`<=` for a number above its range), its header alone is.
//! A mask needs to fit one concrete field; each applies the bits of it that it has.

use super::names::{self, SurfaceField};
use super::values::{Element, Scalar};
use super::{Checker, BAD_OPERATOR, OUT_OF_RANGE, PCAP_TAG_OUTSIDE_FRAME, SET_TYPE, TYPE_MISMATCH, UNKNOWN_FIELD};
use crate::diagnostic::{Diagnostic, Span};
use crate::fields::{Field, ValueKind};
use crate::program::Hook;
use crate::program::{CmpOp, Cond, Test, TestOp, ValueSet};
use crate::syntax::ast::{Comparison, Expr, LiteralKind, SetRef, TestExpr, Value};

impl Checker {
    /// Checks one expression; `None` when it had errors (already reported).
    pub(super) fn condition(&mut self, expr: &Expr) -> Option<Cond> {
        match expr {
            Expr::Or(operands, _) => self.all(operands).map(Cond::Or),
            Expr::And(operands, _) => self.all(operands).map(Cond::And),
            Expr::Not(operand, _) => self.condition(operand).map(|cond| Cond::Not(Box::new(cond))),
            Expr::Test(test) => self.test(test),
            Expr::Pcap(text, _, body) => {
                let (filter, diagnostics) = crate::pcap::compile(text, *body);
                self.diagnostics.extend(diagnostics);
                let filter = filter?;
                if let (Some(at), Some((hook, _))) = (filter.reads_tag, self.hook) {
                    self.tag_outside_frame(hook, at);
                }
                let id = crate::program::PcapId(self.pcaps.len() as u32);
                self.pcaps.push(filter);
                Some(Cond::Pcap(id))
            }
            Expr::Limit(limit) => self.limit(limit),
        }
    }

    /// W0008: under TC the kernel takes a frame's outermost VLAN tag out of its bytes
    /// (always at ingress; at egress when a VLAN device offloads it), and a `pcap` atom
    /// reads the bytes only (language.md §4.1, §8).
    fn tag_outside_frame(&mut self, hook: Hook, at: Span) {
        let (message, when) = match hook {
            Hook::Xdp => return,
            Hook::TcIngress => {
                ("under `tc ingress` this `vlan` does not see the frame's outermost VLAN tag", "always takes")
            }
            Hook::TcEgress => (
                "under `tc egress` this `vlan` may not see the frame's outermost VLAN tag",
                "takes, for packets sent through a VLAN device with transmit offload,",
            ),
        };
        self.diagnostics.push(
            Diagnostic::warning(PCAP_TAG_OUTSIDE_FRAME, message, at, "reads the tag from the frame's bytes")
                .with_note(format!(
                    "before TC runs, the kernel {when} the outermost tag out of the frame into the packet's \
                     metadata; a `pcap` atom reads the bytes only, so its `vlan` tests the next tag (a QinQ \
                     frame's inner one) or finds none"
                ))
                .with_note("pfc's own `vlan` and `vlan.id` read the tag back from the metadata (docs/language.md §8)"),
        );
    }

    /// Checks every operand, reporting all errors, and returns them all or `None`.
    fn all(&mut self, operands: &[Expr]) -> Option<Vec<Cond>> {
        let checked: Vec<Option<Cond>> = operands.iter().map(|operand| self.condition(operand)).collect();
        checked.into_iter().collect()
    }

    fn test(&mut self, test: &TestExpr) -> Option<Cond> {
        let path = test.path.text.as_str();
        if test.mask.is_none() && test.comparison.is_none() {
            if let Some(protos) = names::bare_protocol(path) {
                return Some(any(protos.iter().map(|proto| Cond::Proto(*proto)).collect()));
            }
        }
        let Some(surface) = names::surface_field(path) else {
            self.unknown_field(test);
            return None;
        };
        let named = names::named_values(surface.fields[0]);
        let mask = match &test.mask {
            Some(value) => Some(self.mask(surface, value, named)?),
            None => None,
        };
        match &test.comparison {
            None => self.bare_field(surface, mask, test.span),
            Some(Comparison::Cmp { op, op_span, value }) => self.comparison(surface, mask, *op, *op_span, value, named),
            Some(Comparison::In { negated, set }) => self.membership(surface, mask, *negated, set, named, test.span),
        }
    }

    fn unknown_field(&mut self, test: &TestExpr) {
        let path = test.path.text.as_str();
        let candidates = names::surface_field_names().chain(names::BARE_PROTOCOLS.iter().copied());
        let mut diagnostic =
            Diagnostic::error(UNKNOWN_FIELD, format!("unknown field `{path}`"), test.path.span, "no such field");
        if let Some(suggestion) = names::suggest(path, candidates) {
            diagnostic = diagnostic.with_note(format!("did you mean `{suggestion}`?"));
        } else if let Some((protocol, _)) = path.split_once('.') {
            let fields: Vec<&str> =
                names::surface_field_names().filter(|name| name.starts_with(&format!("{protocol}."))).collect();
            if !fields.is_empty() {
                diagnostic = diagnostic.with_note(format!("`{protocol}` fields are {}", fields.join(", ")));
            }
        }
        self.diagnostics.push(diagnostic);
    }

    /// A field with no comparison: a flag (`ipv4.df`) or a mask (`tcp.flags & syn`).
    fn bare_field(&mut self, surface: SurfaceField, mask: Option<u128>, span: Span) -> Option<Cond> {
        if let Some(mask) = mask {
            return Some(tests(surface.fields, Some(mask), TestOp::Cmp(CmpOp::Ne, 0)));
        }
        if surface.fields.iter().all(|field| field.kind() == ValueKind::Uint(1)) {
            return Some(tests(surface.fields, None, TestOp::Cmp(CmpOp::Eq, 1)));
        }
        let kind = describe_kinds(surface);
        self.diagnostics.push(
            Diagnostic::error(
                TYPE_MISMATCH,
                format!("`{}` is {kind}, not a condition", surface.name),
                span,
                "not a condition",
            )
            .with_note(format!(
                "compare it with a value, e.g. `{} == ...` or `{} in {{ ... }}`",
                surface.name, surface.name
            )),
        );
        None
    }

    fn mask(&mut self, surface: SurfaceField, value: &Value, named: &[(&str, u128)]) -> Option<u128> {
        if surface.fields.iter().any(|field| !matches!(field.kind(), ValueKind::Uint(_))) {
            let kind = describe_kinds(surface);
            self.diagnostics.push(
                Diagnostic::error(
                    BAD_OPERATOR,
                    format!("`&` needs a number field; `{}` is {kind}", surface.name),
                    value.span(),
                    "mask here",
                )
                .with_note("to match an address prefix, write `FIELD in 10.0.0.0/8`"),
            );
            return None;
        }
        let mask = self.number_value(value, named)?;
        self.fits_some(surface, mask, value.span())?;
        Some(mask)
    }

    /// A number or a `|` union of numbers.
    fn number_value(&mut self, value: &Value, named: &[(&str, u128)]) -> Option<u128> {
        match value {
            Value::Union(values, _) => {
                let parts: Vec<Option<u128>> = values.iter().map(|value| self.number_value(value, named)).collect();
                parts.into_iter().try_fold(0u128, |acc, part| part.map(|part| acc | part))
            }
            Value::Literal(literal) => match self.scalar(literal, named)? {
                Scalar::Int(number) => Some(number),
                other => {
                    self.diagnostics.push(Diagnostic::error(
                        TYPE_MISMATCH,
                        format!("expected a number, found {}", other.describe()),
                        literal.span,
                        "not a number",
                    ));
                    None
                }
            },
        }
    }

    /// Checks that a mask fits at least one field of `surface` (`ip.len & 0x10000`
    /// masks `ipv6.len`, u17); each concrete field applies only the bits it has
    /// ([`field_mask`]), as a comparison tests only the fields a number fits.
    fn fits_some(&mut self, surface: SurfaceField, number: u128, span: Span) -> Option<()> {
        let widest = surface.fields.iter().map(|field| field.kind()).max_by_key(|kind| kind.bits())?;
        if number > widest.max() {
            self.diagnostics.push(Diagnostic::error(
                OUT_OF_RANGE,
                format!("{number} is out of range for `{}`", surface.name),
                span,
                format!("`{}` is {}: 0 to {}", surface.name, describe_kinds(surface), widest.max()),
            ));
            return None;
        }
        Some(())
    }

    fn comparison(
        &mut self,
        surface: SurfaceField,
        mask: Option<u128>,
        op: CmpOp,
        op_span: Span,
        value: &Value,
        named: &[(&str, u128)],
    ) -> Option<Cond> {
        let scalar = match value {
            Value::Union(..) => Scalar::Int(self.number_value(value, named)?),
            Value::Literal(literal) => {
                if matches!(literal.kind, LiteralKind::Prefix(..) | LiteralKind::Range(..)) {
                    let verb = if op == CmpOp::Ne { "not in" } else { "in" };
                    self.diagnostics.push(
                        Diagnostic::error(
                            TYPE_MISMATCH,
                            format!("`{}` compares a prefix or range", op.as_str()),
                            literal.span,
                            "a set of values",
                        )
                        .with_note(format!("write `{} {verb} ...` to test membership", surface.name)),
                    );
                    return None;
                }
                self.scalar(literal, named)?
            }
        };
        let matching: Vec<Field> =
            surface.fields.iter().copied().filter(|field| scalar.matches(field.kind())).collect();
        if matching.is_empty() {
            let kind = describe_kinds(surface);
            self.diagnostics.push(
                Diagnostic::error(
                    TYPE_MISMATCH,
                    format!("`{}` is {kind}, but this is {}", surface.name, scalar.describe()),
                    value.span(),
                    "wrong type",
                )
                .with_label(op_span, "compared here"),
            );
            return None;
        }
        if !matches!(scalar, Scalar::Int(_)) && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            self.diagnostics.push(
                Diagnostic::error(BAD_OPERATOR, format!("addresses can only be compared with `==` and `!=`, not `{}`", op.as_str()), op_span, "ordering of addresses")
                    .with_note("to match a range of addresses, use a prefix (`in 10.0.0.0/8`) or a range (`in 10.0.0.1..10.0.0.9`)"),
            );
            return None;
        }
        let number = scalar.raw();
        // Concrete fields too narrow for the number (`ipv4.len`, u16, for `ip.len < 70000`)
        // are not tested: every value they hold is below it, so their header decides.
        let (fitting, too_narrow): (Vec<Field>, Vec<Field>) =
            matching.iter().partition(|field| number <= field.kind().max());
        if fitting.is_empty() {
            let widest = matching.iter().map(|field| field.kind()).max_by_key(|kind| kind.bits())?;
            self.diagnostics.push(Diagnostic::error(
                OUT_OF_RANGE,
                format!("{number} is out of range for `{}`", surface.name),
                value.span(),
                format!("`{}` is {}: 0 to {}", surface.name, describe_kinds(surface), widest.max()),
            ));
            return None;
        }
        let mut alternatives: Vec<Cond> = fitting
            .iter()
            .map(|field| {
                Cond::Test(Test { field: *field, mask: field_mask(*field, mask), op: TestOp::Cmp(op, number) })
            })
            .collect();
        if matches!(op, CmpOp::Ne | CmpOp::Lt | CmpOp::Le) {
            alternatives.extend(too_narrow.iter().filter_map(|field| field.guard()).map(Cond::Proto));
        }
        if op == CmpOp::Ne {
            // `ip.src != 10.0.0.1` holds for any IPv6 packet too: its source is not that address.
            for field in surface.fields.iter().filter(|field| !matching.contains(field)) {
                if let Some(proto) = field.guard() {
                    alternatives.push(Cond::Proto(proto));
                }
            }
        }
        Some(any(alternatives))
    }

    fn membership(
        &mut self,
        surface: SurfaceField,
        mask: Option<u128>,
        negated: bool,
        set: &SetRef,
        named: &[(&str, u128)],
        span: Span,
    ) -> Option<Cond> {
        if let SetRef::Literal(literal @ crate::syntax::ast::Literal { kind: LiteralKind::Name(name), .. }) = set {
            if let Some(dynamic) = self.set_named(name).and_then(|declared| declared.dynamic) {
                let alternatives = self.dynamic_membership(surface.fields, mask, negated, dynamic);
                if alternatives.is_empty() {
                    let element_type = &self.dynamic_sets[dynamic.0 .0 as usize].element_type;
                    self.diagnostics.push(
                        Diagnostic::error(
                            SET_TYPE,
                            format!(
                                "set `{name}` holds {element_type} values, but `{}` is {}",
                                surface.name,
                                describe_kinds(surface)
                            ),
                            literal.span,
                            "wrong set type",
                        )
                        .with_label(span, "used here"),
                    );
                    return None;
                }
                return Some(any(alternatives));
            }
        }
        let (elements, set_name) = self.set_elements(set, named)?;
        if set_name.is_none() {
            self.inline_numbers_fit(surface, &elements)?;
        }
        let mut alternatives = Vec::new();
        let mut used = vec![false; elements.len()];
        for field in surface.fields {
            let kind = field.kind();
            let mut intervals = Vec::new();
            for (index, element) in elements.iter().enumerate() {
                if !element.low.matches(kind) {
                    continue;
                }
                used[index] = true;
                if element.high.raw() > kind.max() && element.low.raw() <= kind.max() {
                    intervals.push((element.low.raw(), kind.max()));
                } else if element.low.raw() <= kind.max() {
                    intervals.push((element.low.raw(), element.high.raw()));
                }
            }
            if intervals.is_empty() && !negated {
                continue;
            }
            let id = self.intern_set(ValueSet::from_intervals(kind.bits(), intervals));
            if let (Some(name), Some(slot @ None)) = (&set_name, self.set_names_by_id.get_mut(id.0 as usize)) {
                *slot = Some(name.clone());
            }
            let op = if negated { TestOp::NotIn(id) } else { TestOp::In(id) };
            alternatives.push(Cond::Test(Test { field: *field, mask: field_mask(*field, mask), op }));
        }
        // A declared set whose type holds several kinds (`ip`: both address families) may
        // be tested by a field of one of them; its elements of the others do not apply
        // there, as with `ip.src` (and as with a dynamic set).
        let declared_kinds = match set {
            SetRef::Literal(crate::syntax::ast::Literal { kind: LiteralKind::Name(name), .. }) => {
                self.set_named(name).map(|declared| declared.kinds)
            }
            _ => None,
        };
        let fits_declared = |element: &Element| {
            declared_kinds.is_some_and(|kinds| {
                kinds.iter().any(|kind| element.low.matches(*kind))
                    && surface.fields.iter().any(|field| kinds.contains(&field.kind()))
            })
        };
        if let Some(index) = used.iter().zip(&elements).position(|(used, element)| !used && !fits_declared(element)) {
            let element = elements[index];
            let kind = describe_kinds(surface);
            let what = match &set_name {
                Some(name) => format!("set `{name}` holds {}", element.low.describe()),
                None => format!("this set holds {}", element.low.describe()),
            };
            self.diagnostics.push(
                Diagnostic::error(
                    SET_TYPE,
                    format!("{what}, but `{}` is {kind}", surface.name),
                    element.span,
                    "wrong element type",
                )
                .with_label(span, "used here"),
            );
            return None;
        }
        Some(any(alternatives))
    }

    /// The numbers of a set written after `in` (`{ … }`, a range, a literal, a constant) are
    /// values typed against the field, as after `==`: one that no concrete field of
    /// `surface` can hold is E0005 (`tcp.dport in { 80, 70000 }`). A declared set is not
    /// held to one field: it may serve fields of several widths.
    fn inline_numbers_fit(&mut self, surface: SurfaceField, elements: &[Element]) -> Option<()> {
        for element in elements {
            let widest = surface
                .fields
                .iter()
                .map(|field| field.kind())
                .filter(|kind| matches!(kind, ValueKind::Uint(_)) && element.high.matches(*kind))
                .map(|kind| kind.max())
                .max();
            if let Some(max) = widest.filter(|max| element.high.raw() > *max) {
                let number = element.high.raw();
                self.diagnostics.push(Diagnostic::error(
                    OUT_OF_RANGE,
                    format!("{number} is out of range for `{}`", surface.name),
                    element.span,
                    format!("`{}` is {}: 0 to {max}", surface.name, describe_kinds(surface)),
                ));
                return None;
            }
        }
        Some(())
    }

    /// The elements of the set after `in`, and its name if it is a declared set.
    fn set_elements(&mut self, set: &SetRef, named: &[(&str, u128)]) -> Option<(Vec<Element>, Option<String>)> {
        match set {
            SetRef::Inline(literals, span) => {
                if literals.is_empty() {
                    self.diagnostics.push(Diagnostic::error(super::EMPTY_SET, "empty set", *span, "no elements"));
                    return None;
                }
                let elements: Vec<Option<Element>> =
                    literals.iter().map(|literal| self.element(literal, named)).collect();
                Some((elements.into_iter().collect::<Option<Vec<_>>>()?, None))
            }
            SetRef::Literal(literal) => {
                if let LiteralKind::Name(name) = &literal.kind {
                    if let Some(declared) = self.set_named(name) {
                        let elements = declared.elements.iter().map(|e| Element { span: literal.span, ..*e }).collect();
                        return Some((elements, Some(name.clone())));
                    }
                }
                Some((vec![self.element(literal, named)?], None))
            }
        }
    }
}

/// One test per concrete field, joined by `or`.
fn tests(fields: &[Field], mask: Option<u128>, op: TestOp) -> Cond {
    any(fields.iter().map(|field| Cond::Test(Test { field: *field, mask: field_mask(*field, mask), op })).collect())
}

/// The bits of `mask` that `field` has: a surface field's mask may be wider than some of
/// its concrete fields (`ip.len & 0x10000`: `ipv4.len` is u16), whose values have none
/// of the bits above, so `ipv4.len & 0x10000` is `ipv4.len & 0`.
pub(super) fn field_mask(field: Field, mask: Option<u128>) -> Option<u128> {
    mask.map(|mask| mask & field.kind().max())
}

/// `or` of the alternatives, without a one-element `or`.
fn any(mut alternatives: Vec<Cond>) -> Cond {
    match alternatives.len() {
        0 => Cond::False,
        1 => alternatives.pop().unwrap_or(Cond::False),
        _ => Cond::Or(alternatives),
    }
}

/// What the values of a surface field are: "an IPv4 address or an IPv6 address".
fn describe_kinds(surface: SurfaceField) -> String {
    let mut kinds: Vec<String> = surface.fields.iter().map(|field| field.kind().describe()).collect();
    kinds.dedup();
    kinds.join(" or ")
}
