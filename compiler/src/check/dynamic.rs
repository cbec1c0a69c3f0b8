//! Dynamic sets: a `set NAME: TYPE dynamic [size N] [= …]` statement in, a
//! [`DynamicSet`] (kind, size, initial contents) out; and membership tests on them.
//!
//! A dynamic set lives in a kernel map that `pfc set` changes at run time: prefix types
//! (`ip`, `ipv4`, `ipv6`) in a longest-prefix-match trie, every other type in a hash
//! map. So its elements are what such a map holds as one entry: an address or a prefix in
//! a trie, a single value in a hash (E0026 otherwise), and at most `size` of them (E0025).

use super::values::{Element, Scalar};
use super::{Checker, DeclaredSet};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::fields::ValueKind;
use crate::program::dynamic::Family;
use crate::program::{DynamicElement, DynamicKind, DynamicSet, DynamicSetId};
use crate::syntax::ast::{Dynamic, Ident};

/// E0025: a dynamic set's size is 0, above [`MAX_DYNAMIC_SIZE`], or smaller than the
/// elements written for it.
pub const DYNAMIC_SIZE: Code = Code("E0025");
/// E0026: an element a dynamic set's map cannot hold as one entry (a range that is not
/// one prefix, a range in a set of single values).
pub const DYNAMIC_ELEMENT: Code = Code("E0026");
pub use crate::program::dynamic::{DEFAULT_DYNAMIC_SIZE, MAX_DYNAMIC_SIZE};

impl Checker {
    /// `(elements, beyond)`: the elements written, and the first line of a set file past
    /// the size (reading stopped there); `(span, unread_file)`: the statement, and its
    /// file when the loader left the file's lines unparsed ([`DynamicSet::unread_file`]).
    pub(super) fn dynamic_set_statement(
        &mut self,
        name: &Ident,
        element_type: &Ident,
        (elements, beyond): (super::Written<'_>, Option<Span>),
        dynamic: &Dynamic,
        (span, unread_file): (Span, Option<usize>),
    ) {
        if !self.name_is_free(name) {
            return;
        }
        let Some((kinds, named)) = self.element_type(element_type) else { return };
        let kind = if kinds.iter().all(|kind| matches!(kind, ValueKind::Ipv4 | ValueKind::Ipv6)) {
            DynamicKind::Prefixes
        } else {
            DynamicKind::Values
        };
        let mut held: Vec<DynamicElement> = Vec::with_capacity(elements.len());
        self.set_elements_of_type(name, element_type, elements, named, &mut |checker, element| {
            held.extend(checker.dynamic_element(name, kind, &element));
        });
        let max_elements = self.dynamic_size(name, dynamic, held.len(), beyond);
        let id = DynamicSetId(self.dynamic_sets.len() as u32);
        self.dynamic_sets.push(DynamicSet {
            name: name.text.clone(),
            element_type: element_type.text.clone(),
            kind,
            families: families(kinds),
            max_elements,
            elements: held,
            span,
            fixed: false,
            unread_file,
        });
        // Rules test a dynamic set through its map (`dynamic_membership`), never through
        // the elements of its declaration: none are kept here.
        self.sets
            .insert(name.text.clone(), DeclaredSet { elements: Vec::new(), span, dynamic: Some((id, kinds)), kinds });
    }

    /// The element as its map holds it, or E0026.
    fn dynamic_element(&mut self, name: &Ident, kind: DynamicKind, element: &Element) -> Option<DynamicElement> {
        let (low, high) = (element.low.raw(), element.high.raw());
        let value_kind = match element.low {
            Scalar::Int(_) => ValueKind::Uint(128),
            Scalar::Ipv4(_) => ValueKind::Ipv4,
            Scalar::Ipv6(_) => ValueKind::Ipv6,
            Scalar::Mac(_) => ValueKind::Mac,
        };
        let holds = match kind {
            DynamicKind::Values => low == high,
            DynamicKind::Prefixes => {
                let size = high - low;
                size == u128::MAX || ((size + 1).is_power_of_two() && low & size == 0)
            }
        };
        if holds {
            return Some(DynamicElement { kind: value_kind, low, high });
        }
        let (what, note) = match kind {
            DynamicKind::Values => {
                ("a range", "a dynamic set of single values lives in a hash map, one entry per value: list the values")
            }
            DynamicKind::Prefixes => (
                "a range that is not one prefix",
                "a dynamic address set lives in a longest-prefix-match trie: write prefixes (10.0.0.0/8)",
            ),
        };
        self.diagnostics.push(
            Diagnostic::error(
                DYNAMIC_ELEMENT,
                format!("dynamic set `{}` cannot hold {what}", name.text),
                element.span,
                "not one map entry",
            )
            .with_note(note),
        );
        None
    }

    /// The declared or default size, checked against the limit and the elements given
    /// (`beyond`: a set file's first line past the size).
    fn dynamic_size(&mut self, name: &Ident, dynamic: &Dynamic, written: usize, beyond: Option<Span>) -> u32 {
        let (size, span) = match dynamic.size {
            Some((size, span)) if (1..=u128::from(MAX_DYNAMIC_SIZE)).contains(&size) => (size as u32, span),
            Some((size, span)) => {
                self.diagnostics.push(
                    Diagnostic::error(
                        DYNAMIC_SIZE,
                        format!("dynamic set `{}` cannot hold {size} elements", name.text),
                        span,
                        format!("size must be 1 to {MAX_DYNAMIC_SIZE}"),
                    )
                    .with_note(format!("without `size`, a dynamic set holds {DEFAULT_DYNAMIC_SIZE} elements")),
                );
                return DEFAULT_DYNAMIC_SIZE;
            }
            None => (DEFAULT_DYNAMIC_SIZE, dynamic.span),
        };
        if let Some(line) = beyond {
            self.diagnostics.push(
                Diagnostic::error(
                    DYNAMIC_SIZE,
                    format!("dynamic set `{}` holds at most {size} elements; its set file has more", name.text),
                    line,
                    format!("element {} (pfc read no further)", u64::from(size) + 1),
                )
                .with_label(span, "the size")
                .with_note("declare a larger size: `dynamic size N`"),
            );
        } else if written > size as usize {
            self.diagnostics.push(
                Diagnostic::error(
                    DYNAMIC_SIZE,
                    format!("dynamic set `{}` is given {written} elements but holds at most {size}", name.text),
                    span,
                    "the size",
                )
                .with_note("declare a larger size: `dynamic size N`"),
            );
        }
        size
    }

    /// `FIELD [not] in SET` where `SET` names a dynamic set: one test per concrete field
    /// of a kind the set holds; under `not in`, a field of another kind holds for any
    /// value (its header present), as for a static set with no element of that kind.
    pub(super) fn dynamic_membership(
        &mut self,
        fields: &[crate::fields::Field],
        mask: Option<u128>,
        negated: bool,
        (id, kinds): (DynamicSetId, &'static [ValueKind]),
    ) -> Vec<crate::program::Cond> {
        use crate::program::{Cond, Test, TestOp, ValueSet};
        let fits = |field: &crate::fields::Field| {
            kinds.iter().any(|kind| match (kind, field.kind()) {
                (ValueKind::Uint(_), ValueKind::Uint(_)) => true,
                (a, b) => *a == b,
            })
        };
        let mut alternatives = Vec::new();
        for field in fields {
            let op = match (fits(field), negated) {
                (true, false) => TestOp::InDynamic(id),
                (true, true) => TestOp::NotInDynamic(id),
                (false, false) => continue,
                (false, true) => {
                    TestOp::NotIn(self.intern_set(ValueSet::from_intervals(field.kind().bits(), Vec::new())))
                }
            };
            alternatives.push(Cond::Test(Test {
                field: *field,
                mask: super::conditions::field_mask(*field, mask),
                op,
            }));
        }
        alternatives
    }
}

/// The map families of an element type's value kinds, each once, in tag order.
fn families(kinds: &[ValueKind]) -> Vec<Family> {
    let mut families: Vec<Family> = kinds.iter().map(|kind| Family::of(*kind)).collect();
    families.sort_unstable();
    families.dedup();
    families
}
