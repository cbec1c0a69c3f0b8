//! Type checking: an `ast::File` in, a resolved [`Program`] and diagnostics out.
//!
//! The checker resolves every name, types every literal against the field it is
//! compared with, expands `ip.*`/`l4.*` into concrete per-protocol fields, turns every
//! set into intervals, and then runs the lints (unreachable rules, conditions that can
//! never hold). It reports every problem it finds; the program is returned only when
//! none of them is an error.

mod conditions;
mod dynamic;
mod limits;
mod lints;
pub mod names;
mod values;

use crate::hashing::FastMap;

use crate::diagnostic::{has_errors, Code, Diagnostic, Span};
use crate::program::{Hook, Program, Rule, SetId, ValueSet, Verdict};
use crate::syntax::ast::{self, DecodedElement, Ident, Literal, Statement};
use values::Element;

/// A set's elements as written: the literals of its body (or of its file's lines that
/// are not plain addresses, prefixes or numbers) and its file's decoded lines, each list
/// in file order.
#[derive(Clone, Copy)]
pub(super) struct Written<'a> {
    literals: &'a [Literal],
    decoded: &'a [DecodedElement],
}

impl Written<'_> {
    /// How many elements are written.
    fn len(&self) -> usize {
        self.literals.len() + self.decoded.len()
    }
}

pub use dynamic::{DEFAULT_DYNAMIC_SIZE, DYNAMIC_ELEMENT, DYNAMIC_SIZE, MAX_DYNAMIC_SIZE};
pub use lints::{CONTRADICTION, UNREACHABLE};
pub use values::{MAX_CONST_CHAIN, REVERSED_RANGE, SET_NAMED_LIKE_A_VALUE};

/// E0003: a field name that does not exist.
pub(crate) const UNKNOWN_FIELD: Code = Code("E0003");
/// E0004: a value of the wrong type for where it is used.
pub(crate) const TYPE_MISMATCH: Code = Code("E0004");
/// E0005: a literal out of range for its field (also used for malformed literals).
pub(crate) const OUT_OF_RANGE: Code = crate::syntax::BAD_LITERAL;
/// E0007: a name that is not a set, constant or known value.
pub(crate) const UNKNOWN_NAME: Code = Code("E0007");
/// E0008: a set whose element type does not fit the field it is used with.
pub(crate) const SET_TYPE: Code = Code("E0008");
/// E0009: two rules, or two sets/constants, with one name.
pub(crate) const DUPLICATE_NAME: Code = Code("E0009");
/// E0010: a set with no elements.
pub(crate) const EMPTY_SET: Code = Code("E0010");
/// E0011: no `default` statement.
pub(crate) const MISSING_DEFAULT: Code = Code("E0011");
/// E0012: a second `default` or `hook` statement.
pub(crate) const DUPLICATE_STATEMENT: Code = Code("E0012");
/// E0013: a hook pfc does not know.
pub(crate) const UNKNOWN_HOOK: Code = Code("E0013");
/// E0014: a verdict other than `pass` and `drop`.
pub(crate) const UNKNOWN_VERDICT: Code = Code("E0014");
/// E0015: an operator that the field's type does not support.
pub(crate) const BAD_OPERATOR: Code = Code("E0015");
/// W0008: `vlan` in a `pcap` atom under TC, where the kernel takes the outermost tag out
/// of the frame's bytes that the atom reads.
pub const PCAP_TAG_OUTSIDE_FRAME: Code = Code("W0008");

/// Checks a parsed file. Returns the program when there were no errors.
pub fn check(file: &ast::File) -> (Option<Program>, Vec<Diagnostic>) {
    let mut checker = Checker::default();
    checker.declarations(file);
    let hook = checker.hook.map(|(hook, _)| hook).unwrap_or(Hook::Xdp);
    let rules = checker.rules(file);
    let default = checker.default_verdict(file);
    let program = Program {
        hook,
        default: default.unwrap_or(Verdict::Pass),
        rules,
        sets: checker.program_sets,
        set_names: checker.set_names_by_id,
        pcaps: checker.pcaps,
        dynamic_sets: checker.dynamic_sets,
        limits: checker.limits,
    };
    let mut diagnostics = checker.diagnostics;
    diagnostics.extend(lints::lint(&program));
    if has_errors(&diagnostics) || default.is_none() {
        (None, diagnostics)
    } else {
        (Some(program), diagnostics)
    }
}

/// A declared `set`.
struct DeclaredSet {
    /// A static set's elements (a dynamic set's are in its [`crate::program::DynamicSet`]).
    elements: Vec<Element>,
    span: Span,
    /// A `set … dynamic`: which one, and the value kinds its type holds.
    dynamic: Option<(crate::program::DynamicSetId, &'static [crate::fields::ValueKind])>,
    /// The value kinds its element type holds (`ip`: IPv4 and IPv6 addresses).
    kinds: &'static [crate::fields::ValueKind],
}

/// A declared `const`.
struct DeclaredConst {
    value: Literal,
    span: Span,
}

#[derive(Default)]
struct Checker {
    diagnostics: Vec<Diagnostic>,
    hook: Option<(Hook, Span)>,
    consts: FastMap<String, DeclaredConst>,
    sets: FastMap<String, DeclaredSet>,
    program_sets: Vec<ValueSet>,
    pcaps: Vec<crate::program::pcap::PcapFilter>,
    dynamic_sets: Vec<crate::program::DynamicSet>,
    limits: Vec<crate::program::limit::Limit>,
    set_ids: crate::hashing::FastMap<ValueSet, SetId>,
    /// [`Program::set_names`]: the declared set each interned set was first made from.
    set_names_by_id: Vec<Option<String>>,
    /// Names of sets and constants whose statements failed to parse: uses of them are
    /// not reported again.
    unparsed_names: std::collections::HashSet<String>,
    /// Every `set` statement's name and where it is written, known before any set is
    /// resolved (for W0007, whatever the order of statements).
    set_names: FastMap<String, Span>,
    /// Constants whose chain loops or is too long: reported at their declarations, so a
    /// use of one is not reported again.
    broken_consts: std::collections::HashSet<String>,
}

impl Checker {
    /// First pass: hook, constants and sets, so that rules may use names declared later.
    fn declarations(&mut self, file: &ast::File) {
        for unparsed in &file.unparsed {
            if let (true, Some(name)) = (unparsed.keyword == "set" || unparsed.keyword == "const", &unparsed.name) {
                self.unparsed_names.insert(name.clone());
            }
        }
        for statement in &file.statements {
            match statement {
                Statement::Hook { words, span } => self.hook_statement(words, *span),
                Statement::Const { name, value, span } if self.name_is_free(name) => {
                    self.consts.insert(name.text.clone(), DeclaredConst { value: value.clone(), span: *span });
                }
                _ => {}
            }
        }
        let declared: Vec<String> = file
            .statements
            .iter()
            .filter_map(|statement| match statement {
                Statement::Const { name, .. } => Some(name.text.clone()),
                _ => None,
            })
            .collect();
        self.constant_chains(&declared);
        for statement in &file.statements {
            if let Statement::Set { name, .. } = statement {
                self.set_names.entry(name.text.clone()).or_insert(name.span);
            }
        }
        for statement in &file.statements {
            if let Statement::Set { name, element_type, elements, body_span, file, dynamic, span } = statement {
                if file.as_ref().is_some_and(|file| file.unreadable) {
                    // Reported (E0023); uses of the set are not reported again.
                    self.unparsed_names.insert(name.text.clone());
                    continue;
                }
                let decoded = file.as_ref().map_or(&[][..], |file| file.decoded.as_slice());
                let written = Written { literals: elements, decoded };
                match dynamic {
                    Some(dynamic) => {
                        let beyond = file.as_ref().and_then(|file| file.beyond_size);
                        let unread = file.as_ref().and_then(|file| file.deferred);
                        self.dynamic_set_statement(name, element_type, (written, beyond), dynamic, (*span, unread))
                    }
                    None => self.set_statement(name, element_type, written, *body_span, *span),
                }
            }
        }
    }

    fn hook_statement(&mut self, words: &[Ident], span: Span) {
        let text: Vec<&str> = words.iter().map(|word| word.text.as_str()).collect();
        let written = text.join(" ");
        let hook = match Hook::ALL.into_iter().find(|hook| hook.keywords() == written) {
            Some(hook) => hook,
            None => {
                let place = words.first().map(|word| word.span.to(words[words.len() - 1].span)).unwrap_or(span);
                self.diagnostics.push(
                    Diagnostic::error(UNKNOWN_HOOK, format!("unknown hook `{written}`"), place, "not a hook")
                        .with_note("hooks are `xdp`, `tc ingress` and `tc egress`"),
                );
                return;
            }
        };
        if let Some((_, first)) = self.hook {
            self.diagnostics.push(
                Diagnostic::error(DUPLICATE_STATEMENT, "more than one `hook` statement", span, "second hook")
                    .with_label(first, "first hook here"),
            );
        } else {
            self.hook = Some((hook, span));
        }
    }

    fn set_statement(&mut self, name: &Ident, element_type: &Ident, elements: Written<'_>, body: Span, span: Span) {
        if !self.name_is_free(name) {
            return;
        }
        let Some((kinds, named)) = self.element_type(element_type) else { return };
        if elements.literals.is_empty() && elements.decoded.is_empty() {
            self.diagnostics.push(
                Diagnostic::error(EMPTY_SET, format!("set `{}` is empty", name.text), body, "no elements")
                    .with_note("a rule testing membership in an empty set could never match"),
            );
            self.unparsed_names.insert(name.text.clone());
            return;
        }
        let mut resolved = Vec::with_capacity(elements.len());
        self.set_elements_of_type(name, element_type, elements, named, &mut |_, element| resolved.push(element));
        self.sets.insert(name.text.clone(), DeclaredSet { elements: resolved, span, dynamic: None, kinds });
    }

    /// The value kinds and named values of a set's element type; reports an unknown one.
    fn element_type(
        &mut self,
        element_type: &Ident,
    ) -> Option<(&'static [crate::fields::ValueKind], names::NamedValues)> {
        let found = names::set_element_type(&element_type.text);
        if found.is_none() {
            let mut diagnostic = Diagnostic::error(
                SET_TYPE,
                format!("unknown set element type `{}`", element_type.text),
                element_type.span,
                "not an element type",
            )
            .with_note(format!("element types are {}", names::SET_ELEMENT_TYPES.join(", ")));
            if let Some(suggestion) = names::suggest(&element_type.text, names::SET_ELEMENT_TYPES.iter().copied()) {
                diagnostic = diagnostic.with_note(format!("did you mean `{suggestion}`?"));
            }
            self.diagnostics.push(diagnostic);
        }
        found
    }

    /// Resolves a set's elements against its element type, reporting those that do not
    /// fit, and gives each that fits to `keep`, in file order (one at a time: a list of
    /// millions is not held twice).
    fn set_elements_of_type(
        &mut self,
        name: &Ident,
        element_type: &Ident,
        elements: Written<'_>,
        named: names::NamedValues,
        keep: &mut dyn FnMut(&mut Checker, Element),
    ) {
        let Some((kinds, _)) = names::set_element_type(&element_type.text) else { return };
        // In file order (diagnostics too): the literals and the decoded lines, merged by
        // position.
        let (mut literals, mut decoded) = (elements.literals.iter().peekable(), elements.decoded.iter().peekable());
        loop {
            let literal_first = match (literals.peek(), decoded.peek()) {
                (Some(literal), Some(line)) => literal.span.start <= line.span.start,
                (next_literal, _) => next_literal.is_some(),
            };
            let (element, span) = match (literal_first, literals.peek().copied(), decoded.peek().copied()) {
                (true, Some(literal), _) => {
                    literals.next();
                    (self.element(literal, named), literal.span)
                }
                (false, _, Some(line)) => {
                    decoded.next();
                    (Some(values::decoded_element(line)), line.span)
                }
                _ => break,
            };
            let Some(element) = element else { continue };
            let fits = kinds.iter().find(|kind| element.low.matches(**kind));
            match fits {
                Some(kind) if element.high.raw() <= kind.max() => keep(self, element),
                Some(kind) => self.diagnostics.push(Diagnostic::error(
                    OUT_OF_RANGE,
                    format!("{} is too large for a set of {}", element.high.raw(), element_type.text),
                    span,
                    format!("{} values are at most {}", element_type.text, kind.max()),
                )),
                None => self.diagnostics.push(Diagnostic::error(
                    SET_TYPE,
                    format!(
                        "set `{}` holds {} values, but this is {}",
                        name.text,
                        element_type.text,
                        element.low.describe()
                    ),
                    span,
                    "wrong element type",
                )),
            }
        }
    }

    /// Whether `name` is not yet taken by a set or constant; reports it if it is.
    fn name_is_free(&mut self, name: &Ident) -> bool {
        let earlier = self.consts.get(&name.text).map(|c| c.span).or(self.sets.get(&name.text).map(|s| s.span));
        match earlier {
            Some(first) => {
                self.diagnostics.push(
                    Diagnostic::error(
                        DUPLICATE_NAME,
                        format!("`{}` is declared twice", name.text),
                        name.span,
                        "redeclared",
                    )
                    .with_label(first, "first declared here"),
                );
                false
            }
            None => true,
        }
    }

    fn default_verdict(&mut self, file: &ast::File) -> Option<Verdict> {
        let mut found: Option<(Verdict, Span)> = None;
        for statement in &file.statements {
            let Statement::Default { verdict, span } = statement else { continue };
            let Some(value) = self.verdict(verdict) else { continue };
            match found {
                Some((_, first)) => self.diagnostics.push(
                    Diagnostic::error(
                        DUPLICATE_STATEMENT,
                        "more than one `default` statement",
                        *span,
                        "second default",
                    )
                    .with_label(first, "first default here"),
                ),
                None => found = Some((value, *span)),
            }
        }
        let has_default_statement = file.statements.iter().any(|s| matches!(s, Statement::Default { .. }));
        // A `default` that failed to parse was reported already; do not call it missing.
        let has_default_statement =
            has_default_statement || file.unparsed.iter().any(|unparsed| unparsed.keyword == "default");
        if found.is_none() && !has_default_statement {
            self.diagnostics.push(
                Diagnostic::error(
                    MISSING_DEFAULT,
                    "no `default` verdict",
                    Span::default(),
                    "the file has no `default` statement",
                )
                .with_note("add `default pass` or `default drop`: the verdict for packets no rule matches"),
            );
        }
        found.map(|(verdict, _)| verdict)
    }

    fn verdict(&mut self, word: &Ident) -> Option<Verdict> {
        match word.text.as_str() {
            "pass" => Some(Verdict::Pass),
            "drop" => Some(Verdict::Drop),
            other => {
                let mut diagnostic = Diagnostic::error(
                    UNKNOWN_VERDICT,
                    format!("unknown verdict `{other}`"),
                    word.span,
                    "not a verdict",
                )
                .with_note("verdicts are `pass` and `drop`");
                if let Some(suggestion) = names::suggest(other, ["pass", "drop"]) {
                    diagnostic = diagnostic.with_note(format!("did you mean `{suggestion}`?"));
                }
                self.diagnostics.push(diagnostic);
                None
            }
        }
    }

    fn rules(&mut self, file: &ast::File) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut seen: FastMap<&str, Span> = FastMap::default();
        for statement in &file.statements {
            let Statement::Rule { name, verdict, log, condition, span } = statement else { continue };
            if name.text == "default" {
                self.diagnostics.push(
                    Diagnostic::error(
                        DUPLICATE_NAME,
                        "a rule cannot be named `default`",
                        name.span,
                        "the name of the default verdict",
                    )
                    .with_note("case files (`rule = \"default\"`), `pfc test`, `pfc explain` and `pfc stats` call the default verdict `default`; rename the rule"),
                );
            } else if let Some(first) = seen.get(name.text.as_str()) {
                self.diagnostics.push(
                    Diagnostic::error(
                        DUPLICATE_NAME,
                        format!("rule `{}` is defined twice", name.text),
                        name.span,
                        "redefined",
                    )
                    .with_label(*first, "first defined here"),
                );
            } else {
                seen.insert(&name.text, *span);
            }
            let verdict = self.verdict(verdict);
            let condition = match condition {
                Some(expr) => self.condition(expr).map(|mut checked| {
                    self.limit_placement(expr, &mut checked);
                    checked
                }),
                None => Some(crate::program::Cond::True),
            };
            let log = log.as_ref().map(|clause| self.log(clause));
            if let (Some(verdict), Some(condition), Some(log)) = (verdict, condition, log.unwrap_or(Some(None))) {
                rules.push(Rule { name: name.text.clone(), verdict, condition, log, span: *span });
            }
        }
        rules
    }

    /// Interns a set of intervals, returning its id.
    fn intern_set(&mut self, set: ValueSet) -> SetId {
        // One hash per call; only a new set is cloned.
        match self.set_ids.entry(set) {
            std::collections::hash_map::Entry::Occupied(entry) => *entry.get(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let id = SetId(self.program_sets.len() as u32);
                self.program_sets.push(entry.key().clone());
                self.set_names_by_id.push(None);
                entry.insert(id);
                id
            }
        }
    }
}
