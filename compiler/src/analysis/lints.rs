//! Lints on the packet-space engine. Input: a checked [`Program`] and the diagnostics
//! the checker already reported; output: warnings.
//!
//! - W0003: the rule never decides a packet: earlier rules, some with the other verdict,
//!   take every packet it matches (the covering rules are named).
//! - W0004: the rule is redundant: earlier rules with the same verdict take every packet
//!   it matches, so removing it changes nothing.
//! - W0002 (the checker's code) also when the engine finds no packet the condition holds
//!   for and the checker's simple analyses did not.
//! - W0005 (`--lints=all`): the rule overlaps an earlier rule with the other verdict and
//!   neither contains the other; the note shows a packet both match.
//! - W0006: `default drop` and no rule can pass ARP (IPv4 neighbours), or IPv6 is passed
//!   but no rule can pass neighbour discovery.
//!
//! Claims that no packet exists come from the engine's bounds; the packets in notes are
//! confirmed by the interpreter.

use super::{region, Model};
use crate::check::{CONTRADICTION, UNREACHABLE};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::eval::{eval_cond, Headers};
use crate::fields::{Field, Proto};
use crate::program::{Program, Verdict};
use crate::space::{shape, witness, Cube, Ivs, Space, BUDGET};

/// W0003: the rule never decides a packet.
pub const SHADOWED: Code = Code("W0003");
/// W0004: the rule is redundant.
pub const REDUNDANT: Code = Code("W0004");
/// W0005: the rule overlaps an earlier rule with the other verdict.
pub const CORRELATED: Code = Code("W0005");
/// W0006: `default drop` locks out ARP or IPv6 neighbour discovery.
pub(crate) const LOCKOUT: Code = Code("W0006");

/// Which engine lints run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Shadowed and redundant rules, lockouts.
    Default,
    /// Also overlaps of rules with opposite verdicts.
    All,
}

/// How many covering rules a message names.
const NAMED: usize = 4;

/// Runs the engine lints; `default_span` is the `default` statement
/// ([`default_statement`]); rules the checker already warned about (`earlier`) are skipped.
pub fn lint(program: &Program, default_span: Span, level: Level, earlier: &[Diagnostic]) -> Vec<Diagnostic> {
    let model = Model::new(program);
    let flagged = |index: usize| {
        let span = program.rules[index].span;
        earlier.iter().any(|d| (d.code == UNREACHABLE || d.code == CONTRADICTION) && d.span() == span)
    };
    let mut diagnostics = Vec::new();
    let mut never = vec![false; program.rules.len()];
    for (index, rule) in program.rules.iter().enumerate() {
        if flagged(index) {
            never[index] = true;
            continue;
        }
        if !model.over[index].is_possible() {
            never[index] = true;
            diagnostics.push(
                Diagnostic::warning(
                    CONTRADICTION,
                    format!("the condition of rule `{}` can never hold", rule.name),
                    rule.span,
                    "never true",
                )
                .with_note("no packet satisfies it"),
            );
            continue;
        }
        if let Some(covering) = model.never_decides(index) {
            never[index] = true;
            diagnostics.push(covered(program, index, &covering));
        }
    }
    if level == Level::All {
        for index in 0..program.rules.len() {
            if !never[index] {
                diagnostics.extend(correlation(&model, index, &never));
            }
        }
    }
    diagnostics.extend(lockout(&model, default_span));
    diagnostics
}

fn covered(program: &Program, index: usize, covering: &[usize]) -> Diagnostic {
    let rule = &program.rules[index];
    let same = covering.iter().all(|&c| program.rules[c].verdict == rule.verdict);
    let mut diagnostic = if same {
        Diagnostic::warning(
            REDUNDANT,
            format!(
                "rule `{}` is redundant: earlier rules with the same verdict match every packet it matches",
                rule.name
            ),
            rule.span,
            "redundant",
        )
        .with_note("removing it changes no verdict")
    } else {
        Diagnostic::warning(
            SHADOWED,
            format!("rule `{}` never decides a packet: earlier rules match every packet it matches", rule.name),
            rule.span,
            "never decides",
        )
    };
    for &c in covering.iter().take(NAMED) {
        let earlier = &program.rules[c];
        diagnostic = diagnostic.with_label(
            earlier.span,
            format!("`{}` ({}) matches some of them first", earlier.name, earlier.verdict.as_str()),
        );
    }
    if covering.len() > NAMED {
        diagnostic = diagnostic.with_note(format!("{} more earlier rules cover it too", covering.len() - NAMED));
    }
    diagnostic
}

/// W0005 for `index` against the first earlier rule it is correlated with.
fn correlation(model: &Model<'_>, index: usize, never: &[bool]) -> Option<Diagnostic> {
    let program = model.program;
    let rule = &program.rules[index];
    let holds = |rule: usize, bytes: &[u8]| eval_cond(&program.rules[rule].condition, program, &Headers::parse(bytes));
    for (earlier, &earlier_never) in never.iter().enumerate().take(index) {
        if earlier_never
            || program.rules[earlier].verdict == rule.verdict
            || !model.under[index].meets(&model.under[earlier])
        {
            continue;
        }
        let Some(both) = model.under[index].intersect(&model.under[earlier]) else { continue };
        let Some(overlap) = witness::find(&both, |b| holds(index, b) && holds(earlier, b)) else { continue };
        let only = |a: usize, b: usize| {
            let rest = model.under[a].minus(&model.over[b], BUDGET)?;
            witness::find(&rest, |bytes| holds(a, bytes) && !holds(b, bytes))
        };
        if only(index, earlier).is_none() || only(earlier, index).is_none() {
            continue;
        }
        let first = &program.rules[earlier];
        return Some(
            Diagnostic::warning(
                CORRELATED,
                format!(
                    "rule `{}` ({}) overlaps the earlier rule `{}` ({}); neither contains the other",
                    rule.name,
                    rule.verdict.as_str(),
                    first.name,
                    first.verdict.as_str()
                ),
                rule.span,
                "overlaps",
            )
            .with_label(first.span, format!("decides the common packets: {}", first.verdict.as_str()))
            .with_note(format!("both match: {}", overlap.spec)),
        );
    }
    None
}

/// W0006: `default drop` and nothing passes ARP, or IPv6 but not neighbour discovery.
fn lockout(model: &Model<'_>, default_span: Span) -> Vec<Diagnostic> {
    let program = model.program;
    if program.default != Verdict::Drop || program.rules.is_empty() {
        return Vec::new();
    }
    let may_pass = |space: &Space| {
        program.rules.iter().enumerate().any(|(i, rule)| rule.verdict == Verdict::Pass && model.over[i].meets(space))
    };
    let arp = Space::cube(Cube::shapes_only(shape::with_proto(Proto::Arp)));
    let ipv6 = Space::cube(Cube::shapes_only(shape::with_proto(Proto::Ipv6)));
    let nd = Space::cube(Cube::new(shape::with_proto(Proto::Icmp6), vec![(Field::Icmp6Type, Ivs::range(135, 136))]));
    let mut diagnostics = Vec::new();
    let warn = |what: &str, example: &str| {
        Diagnostic::warning(LOCKOUT, format!("`default drop` and no rule passes {what}"), default_span, "drops it")
            .with_note(format!(
                "a host behind this filter cannot resolve its neighbours; pass it early, e.g. `rule {example}`"
            ))
    };
    if !may_pass(&arp) {
        diagnostics.push(warn("ARP", "arp: pass if arp"));
    }
    if may_pass(&ipv6) && !may_pass(&nd) {
        diagnostics.push(warn(
            "IPv6 neighbour discovery",
            "nd: pass if icmp6.type in { neighbor-solicitation, neighbor-advertisement }",
        ));
    }
    let _ = region::describe_space;
    diagnostics
}

/// Where the `default` statement is (an empty span when there is none).
pub fn default_statement(file: &crate::syntax::ast::File) -> Span {
    let mut spans = file.statements.iter().filter_map(|statement| match statement {
        crate::syntax::ast::Statement::Default { span, .. } => Some(*span),
        _ => None,
    });
    spans.next().unwrap_or_default()
}
