//! `pfc explain`: one packet through a program, with the reasons. Input: a checked
//! [`Program`] and the bytes of one frame; output: an [`Explanation`]: the fields the
//! tried rules read with the packet's values, each rule tried in order with the atoms
//! the interpreter evaluated (short-circuits included) and their results, and the
//! outcome.
//!
//! Consistent with the interpreter by construction: the outcome is
//! [`evaluate`]'s, every atom's result is [`eval_cond`] on that atom alone, and `and`,
//! `or` and `not` combine them as [`crate::eval`] documents. The test
//! `explain_agrees_with_the_interpreter` checks that the traced rule results give the
//! same deciding rule on generated rule sets and the packet corpus.

use std::fmt::Write as _;

use crate::eval::{eval_cond, evaluate, Headers, Outcome};
use crate::fields::Field;
use crate::program::{Cond, Program, Test, TestOp};
use crate::sources::SourceMap;
use crate::testcase::summary::{hex, summarize};

use super::region::{elements, literal};

/// One atom as the interpreter evaluated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// The atom in rule-language terms (`tcp.dport == 22`, `not ipv6`, `pcap #1`).
    pub text: String,
    /// The field it reads and the packet's value (`None`: the header is absent).
    pub value: Option<(Field, Option<u128>)>,
    /// Whether the atom (with its `not`, when it is the direct operand of one) holds.
    pub holds: bool,
    /// Whether it sits inside a `not` of a compound condition (its result is inverted
    /// on the way up).
    pub negated: bool,
}

/// One rule the packet was tried against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tried {
    /// Index in [`Program::rules`].
    pub rule: usize,
    /// Whether its condition holds.
    pub matched: bool,
    /// The atoms evaluated, in order (short-circuits skip the rest).
    pub atoms: Vec<Atom>,
}

/// What happened to one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The frame.
    pub bytes: Vec<u8>,
    /// The rules tried, in order: every rule up to the deciding one (all of them when
    /// the default decides).
    pub tried: Vec<Tried>,
    /// The interpreter's outcome.
    pub outcome: Outcome,
}

impl Explanation {
    /// Whether the traced rule results decide as the interpreter did: the last rule
    /// tried matched and decided, or none matched and the default decided.
    pub fn consistent(&self) -> bool {
        let matched: Vec<usize> = self.tried.iter().filter(|t| t.matched).map(|t| t.rule).collect();
        match self.outcome.rule {
            Some(rule) => matched == [rule] && self.tried.last().is_some_and(|t| t.rule == rule),
            None => matched.is_empty(),
        }
    }

    /// Every field the tried atoms read, once, in the order of [`Field::ALL`], with the
    /// packet's value.
    pub fn fields(&self) -> Vec<(Field, Option<u128>)> {
        let mut read: Vec<(Field, Option<u128>)> =
            self.tried.iter().flat_map(|t| t.atoms.iter().filter_map(|a| a.value)).collect();
        read.sort_by_key(|(field, _)| *field as usize);
        read.dedup_by_key(|(field, _)| *field);
        read
    }
}

/// Runs `packet` through `program`, recording why each tried rule did or did not match.
pub fn explain(program: &Program, packet: &[u8]) -> Explanation {
    let outcome = evaluate(program, packet);
    let headers = Headers::parse(packet);
    let last = outcome.rule.unwrap_or(program.rules.len().saturating_sub(1));
    let tried = program
        .rules
        .iter()
        .enumerate()
        .take(if program.rules.is_empty() { 0 } else { last + 1 })
        .map(|(index, rule)| {
            let mut atoms = Vec::new();
            let matched = trace(&rule.condition, program, &headers, false, &mut atoms);
            Tried { rule: index, matched, atoms }
        })
        .collect();
    Explanation { bytes: packet.to_vec(), tried, outcome }
}

/// Evaluates `cond` as the interpreter does (left to right, short-circuit), recording
/// each atom evaluated.
fn trace(cond: &Cond, program: &Program, headers: &Headers<'_>, negated: bool, out: &mut Vec<Atom>) -> bool {
    match cond {
        Cond::And(all) => {
            for operand in all {
                if !trace(operand, program, headers, negated, out) {
                    return false;
                }
            }
            true
        }
        Cond::Or(any) => {
            for operand in any {
                if trace(operand, program, headers, negated, out) {
                    return true;
                }
            }
            false
        }
        Cond::Not(inner) if is_atom(inner) => {
            let mut atom = atom(inner, program, headers, negated);
            atom.text = format!("not {}", atom.text);
            atom.holds = !atom.holds;
            let holds = atom.holds;
            out.push(atom);
            holds
        }
        Cond::Not(inner) => !trace(inner, program, headers, !negated, out),
        leaf => {
            let atom = atom(leaf, program, headers, negated);
            let holds = atom.holds;
            out.push(atom);
            holds
        }
    }
}

fn is_atom(cond: &Cond) -> bool {
    !matches!(cond, Cond::And(_) | Cond::Or(_) | Cond::Not(_))
}

/// One leaf, its result from the interpreter.
fn atom(leaf: &Cond, program: &Program, headers: &Headers<'_>, negated: bool) -> Atom {
    let holds = eval_cond(leaf, program, headers);
    let (text, value) = match leaf {
        Cond::True => ("true".to_string(), None),
        Cond::False => ("false".to_string(), None),
        Cond::Proto(proto) => (proto.name().to_string(), None),
        Cond::Pcap(id) => (pcap_text(&program.pcap(*id).text), None),
        // Explained packets carry no time: the limit is judged against a full bucket.
        Cond::Limit(id) => (format!("{} (a full bucket)", program.limit(*id).describe()), None),
        Cond::Test(test) => (test_text(test, program), Some((test.field, headers.field_value(test.field)))),
        Cond::And(_) | Cond::Or(_) | Cond::Not(_) => unreachable!("only leaves are atoms"),
    };
    Atom { text, value, holds, negated }
}

/// A `pcap "…"` atom as the rule file writes it (shortened past 80 characters).
fn pcap_text(text: &str) -> String {
    let mut short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        short.push_str(" …");
    }
    format!("pcap {}", super::diff::toml_string(&short))
}

/// A test as the rule language writes it.
pub(crate) fn test_text(test: &Test, program: &Program) -> String {
    let mut left = test.field.name().to_string();
    if let Some(mask) = test.mask {
        let _ = write!(left, " & {mask:#x}");
    }
    let set_text = |set| {
        let intervals = crate::space::Ivs(program.set(set).intervals.clone());
        let written = elements(test.field, &intervals);
        if written.len() == 1 {
            written[0].clone()
        } else {
            format!("{{ {} }}", written.join(", "))
        }
    };
    match test.op {
        TestOp::Cmp(op, value) => format!("{left} {} {}", op.as_str(), constant(test, value)),
        TestOp::In(set) => format!("{left} in {}", set_text(set)),
        TestOp::NotIn(set) => format!("{left} not in {}", set_text(set)),
        TestOp::InDynamic(set) => format!("{left} in {} (dynamic)", program.dynamic_set(set).name),
        TestOp::NotInDynamic(set) => format!("{left} not in {} (dynamic)", program.dynamic_set(set).name),
    }
}

/// A constant of a test: masked values in hex, others as the field writes them.
fn constant(test: &Test, value: u128) -> String {
    match test.mask {
        Some(_) => format!("{value:#x}"),
        None => literal(test.field, value),
    }
}

/// The packet's value of an atom's field, as written for people.
fn value_text(field: Field, value: Option<u128>) -> String {
    match value {
        Some(value) => literal(field, value),
        None => format!("absent (no {} header)", field.guard().map_or("such", |proto| proto.name())),
    }
}

/// Where a rule is written: `file:line`, when the map knows.
fn location(program: &Program, rule: usize, map: Option<&SourceMap>) -> Option<String> {
    let map = map?;
    let (file, offset) = map.locate(program.rules[rule].span.start);
    let source = map.files().get(file)?;
    let line = source.text[..offset.min(source.text.len())].matches('\n').count() + 1;
    Some(format!("{}:{line}", source.name))
}

/// The rule's statement as written (its first line, shortened), when the map knows.
fn statement(program: &Program, rule: usize, map: Option<&SourceMap>) -> Option<String> {
    let map = map?;
    let span = program.rules[rule].span;
    let (file, start) = map.locate(span.start);
    let source = map.files().get(file)?;
    let end = (start + (span.end - span.start) as usize).min(source.text.len());
    let text = source.text.get(start..end)?.lines().next()?.trim();
    let mut short: String = text.chars().take(100).collect();
    if short.len() < text.len() {
        short.push_str(" …");
    }
    Some(short)
}

fn decider_text(program: &Program, outcome: Outcome, map: Option<&SourceMap>) -> String {
    match outcome.rule {
        Some(rule) => {
            let at = location(program, rule, map).map_or(String::new(), |at| format!(", {at}"));
            format!("rule `{}`{at}", program.rules[rule].name)
        }
        None => "the default (no rule matched)".to_string(),
    }
}

/// The human report.
pub fn render(explanation: &Explanation, program: &Program, map: Option<&SourceMap>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "packet: {}", summarize(&explanation.bytes));
    let fields = explanation.fields();
    if !fields.is_empty() {
        out.push_str("fields the rules read:\n");
        for (field, value) in fields {
            let _ = writeln!(out, "  {} = {}", field.name(), value_text(field, value));
        }
    }
    for tried in &explanation.tried {
        let rule = &program.rules[tried.rule];
        let at = location(program, tried.rule, map).map_or(String::new(), |at| format!("{at}: "));
        let result = if tried.matched { "matches" } else { "does not match" };
        let written = statement(program, tried.rule, map)
            .unwrap_or_else(|| format!("rule {}: {} if …", rule.name, rule.verdict.as_str()));
        let _ = writeln!(out, "{at}{written}");
        for atom in &tried.atoms {
            let value = match atom.value {
                Some((field, value)) => format!("  [{} = {}]", field.name(), value_text(field, value)),
                None => String::new(),
            };
            let inside = if atom.negated { " (inside `not`)" } else { "" };
            let _ = writeln!(out, "  {}: {}{inside}{value}", atom.text, atom.holds);
        }
        let _ = writeln!(out, "  -> {result}");
    }
    let untried = program.rules.len() - explanation.tried.len();
    if untried > 0 {
        let _ = writeln!(out, "({untried} later rule(s) not tried)");
    }
    let _ = writeln!(
        out,
        "verdict: {} by {}",
        explanation.outcome.verdict.as_str(),
        decider_text(program, explanation.outcome, map)
    );
    out
}

/// The explanation as JSON.
pub fn to_json(explanation: &Explanation, program: &Program, map: Option<&SourceMap>) -> serde_json::Value {
    let value_json = |field: Field, value: Option<u128>| value.map(|v| literal(field, v));
    let fields: serde_json::Map<String, serde_json::Value> = explanation
        .fields()
        .into_iter()
        .map(|(field, value)| (field.name().to_string(), serde_json::json!(value_json(field, value))))
        .collect();
    let rules: Vec<serde_json::Value> = explanation
        .tried
        .iter()
        .map(|tried| {
            let rule = &program.rules[tried.rule];
            let atoms: Vec<serde_json::Value> = tried
                .atoms
                .iter()
                .map(|atom| {
                    let (field, value) = match atom.value {
                        Some((field, value)) => (Some(field.name()), value_json(field, value)),
                        None => (None, None),
                    };
                    serde_json::json!({
                        "atom": atom.text,
                        "field": field,
                        "value": value,
                        "holds": atom.holds,
                        "inside_not": atom.negated,
                    })
                })
                .collect();
            serde_json::json!({
                "rule": rule.name,
                "location": location(program, tried.rule, map),
                "verdict": rule.verdict.as_str(),
                "matched": tried.matched,
                "atoms": atoms,
            })
        })
        .collect();
    serde_json::json!({
        "packet": { "len": explanation.bytes.len(), "summary": summarize(&explanation.bytes), "hex": hex(&explanation.bytes) },
        "fields": fields,
        "rules": rules,
        "verdict": explanation.outcome.verdict.as_str(),
        "rule": explanation.outcome.rule.map(|rule| program.rules[rule].name.clone()),
    })
}
