//! Shared helpers: one-rule programs, atoms and literal conversions.

use pfc_compiler::diagnostic::Span;
use pfc_compiler::eval::{evaluate, Headers};
use pfc_compiler::fields::{Field, Proto};
use pfc_compiler::packet::mac;
use pfc_compiler::program::{CmpOp, Cond, Hook, Program, Rule, SetId, Test, TestOp, ValueSet, Verdict};

/// `default pass; rule r: drop if <cond>`, with `sets` available to the condition.
pub fn program(cond: Cond, sets: Vec<ValueSet>) -> Program {
    let rule = Rule { name: "r".into(), verdict: Verdict::Drop, condition: cond, log: None, span: Span::default() };
    Program {
        hook: Hook::Xdp,
        default: Verdict::Pass,
        rules: vec![rule],
        sets,
        pcaps: Vec::new(),
        dynamic_sets: Vec::new(),
        set_names: Vec::new(),
        limits: Vec::new(),
    }
}

/// Whether `cond` (over `sets`) holds for `frame`, decided by running the whole program.
pub fn holds_with(cond: Cond, sets: Vec<ValueSet>, frame: &[u8]) -> bool {
    let outcome = evaluate(&program(cond, sets), frame);
    assert_eq!(outcome.rule.is_some(), outcome.verdict == Verdict::Drop);
    outcome.verdict == Verdict::Drop
}

/// Whether `cond` (without sets) holds for `frame`.
pub fn holds(cond: Cond, frame: &[u8]) -> bool {
    holds_with(cond, Vec::new(), frame)
}

/// `field OP value`.
pub fn cmp(field: Field, op: CmpOp, value: u128) -> Cond {
    Cond::Test(Test { field, mask: None, op: TestOp::Cmp(op, value) })
}

/// `field == value`.
pub fn eq(field: Field, value: u128) -> Cond {
    cmp(field, CmpOp::Eq, value)
}

/// `field & mask OP value`.
pub fn masked(field: Field, mask: u128, op: CmpOp, value: u128) -> Cond {
    Cond::Test(Test { field, mask: Some(mask), op: TestOp::Cmp(op, value) })
}

/// `field in sets[0]` (`negated`: `not in`).
pub fn in_set(field: Field, negated: bool) -> Cond {
    let op = if negated { TestOp::NotIn(SetId(0)) } else { TestOp::In(SetId(0)) };
    Cond::Test(Test { field, mask: None, op })
}

/// `not cond`.
pub fn not(cond: Cond) -> Cond {
    Cond::Not(Box::new(cond))
}

/// An IPv4 literal as a field value.
pub fn v4(text: &str) -> u128 {
    u128::from(u32::from(text.parse::<std::net::Ipv4Addr>().unwrap()))
}

/// An IPv6 literal as a field value.
pub fn v6(text: &str) -> u128 {
    u128::from(text.parse::<std::net::Ipv6Addr>().unwrap())
}

/// A MAC literal as a field value.
pub fn mac_value(text: &str) -> u128 {
    mac(text).iter().fold(0, |acc, &byte| (acc << 8) | u128::from(byte))
}

/// The present protocols of `frame`, as space-separated rule-file names.
pub fn present(frame: &[u8]) -> String {
    let headers = Headers::parse(frame);
    let names: Vec<&str> = Proto::ALL.iter().filter(|&&p| headers.has(p)).map(|p| p.name()).collect();
    names.join(" ")
}
