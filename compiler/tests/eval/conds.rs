//! Conditions: guards, negation, masks, sets with intervals, `not in`, connectives and
//! rule order.

use crate::support::{cmp, eq, holds, holds_with, in_set, masked, not, v4};
use pfc_compiler::diagnostic::Span;
use pfc_compiler::eval::{eval_cond, evaluate, Headers, Outcome};
use pfc_compiler::fields::{Field, Proto};
use pfc_compiler::packet::{tcp_flags, Packet, Tcp};
use pfc_compiler::program::{CmpOp, Cond, Hook, Program, Rule, ValueSet, Verdict};

fn tcp22() -> Vec<u8> {
    Packet::eth().ipv4("10.0.0.1", "10.0.0.2").tcp(1234, 22).build()
}

fn udp22() -> Vec<u8> {
    Packet::eth().ipv4("10.0.0.1", "10.0.0.2").udp(1234, 22).build()
}

fn tcp_with_flags(flags: u8) -> Vec<u8> {
    Packet::eth().ipv4("10.0.0.1", "10.0.0.2").push(Tcp { flags, ..Tcp::default() }).build()
}

#[track_caller]
fn check(cond: Cond, frame: &[u8], expected: bool) {
    assert_eq!(holds(cond.clone(), frame), expected, "{cond:?}");
}

#[test]
#[rustfmt::skip]
fn every_atom_carries_its_guard() {
    check(cmp(Field::TcpDport, CmpOp::Ne, 22), &udp22(), false);
    check(not(eq(Field::TcpDport, 22)), &udp22(), true);
    check(eq(Field::TcpDport, 22), &udp22(), false);
    check(cmp(Field::TcpDport, CmpOp::Ne, 22), &tcp22(), false);
    check(cmp(Field::TcpDport, CmpOp::Ne, 23), &tcp22(), true);
    check(not(eq(Field::TcpDport, 22)), &tcp22(), false);
    check(cmp(Field::Ipv6HopLimit, CmpOp::Ge, 0), &tcp22(), false);
    check(not(cmp(Field::Ipv6HopLimit, CmpOp::Ge, 0)), &tcp22(), true);
    check(cmp(Field::PktLen, CmpOp::Ge, 0), &[], true);
    check(cmp(Field::EthType, CmpOp::Ge, 0), &[0; 13], false);
}

#[test]
#[rustfmt::skip]
fn comparisons_are_unsigned() {
    check(cmp(Field::TcpDport, CmpOp::Lt, 23), &tcp22(), true);
    check(cmp(Field::TcpDport, CmpOp::Lt, 22), &tcp22(), false);
    check(cmp(Field::TcpDport, CmpOp::Le, 22), &tcp22(), true);
    check(cmp(Field::TcpDport, CmpOp::Gt, 21), &tcp22(), true);
    check(cmp(Field::TcpDport, CmpOp::Gt, 22), &tcp22(), false);
    check(cmp(Field::TcpDport, CmpOp::Ge, 22), &tcp22(), true);
    check(cmp(Field::TcpSport, CmpOp::Gt, 0xffff), &tcp22(), false);
    check(cmp(Field::Ipv4Src, CmpOp::Gt, v4("9.255.255.255")), &tcp22(), true);
}

#[test]
#[rustfmt::skip]
fn masks_apply_before_comparing() {
    let syn_ack = (tcp_flags::SYN | tcp_flags::ACK) as u128;
    let syn = tcp_flags::SYN as u128;
    check(masked(Field::TcpFlags, syn_ack, CmpOp::Eq, syn), &tcp_with_flags(tcp_flags::SYN), true);
    check(masked(Field::TcpFlags, syn_ack, CmpOp::Eq, syn), &tcp_with_flags(tcp_flags::SYN | tcp_flags::ACK), false);
    check(masked(Field::TcpFlags, syn_ack, CmpOp::Eq, syn), &tcp_with_flags(tcp_flags::SYN | tcp_flags::PSH), true);
    check(masked(Field::TcpFlags, syn_ack, CmpOp::Ne, 0), &tcp_with_flags(tcp_flags::FIN), false);
    check(masked(Field::TcpFlags, syn_ack, CmpOp::Ne, 0), &udp22(), false);
    check(masked(Field::Ipv4Src, 0xffff_0000, CmpOp::Eq, v4("10.0.0.0")), &tcp22(), true);
    check(masked(Field::Ipv4Src, 0xff, CmpOp::Eq, 1), &tcp22(), true);
    check(masked(Field::Ipv4Src, 0, CmpOp::Eq, 0), &udp22(), true);
}

#[track_caller]
fn check_set(intervals: &[(u128, u128)], negated: bool, frame: &[u8], expected: bool) {
    let sets = vec![ValueSet::from_intervals(16, intervals.to_vec())];
    assert_eq!(holds_with(in_set(Field::TcpDport, negated), sets, frame), expected, "{intervals:?} negated={negated}");
}

#[test]
#[rustfmt::skip]
fn sets_of_intervals() {
    check_set(&[(22, 22)], false, &tcp22(), true);
    check_set(&[(80, 80), (443, 443), (8000, 8100)], false, &tcp22(), false);
    check_set(&[(1, 21), (23, 100)], false, &tcp22(), false);
    check_set(&[(1, 22)], false, &tcp22(), true);
    check_set(&[(22, 1000)], false, &tcp22(), true);
    check_set(&[(0, 10), (20, 30), (40, 50)], false, &tcp22(), true);
    check_set(&[(23, 21)], false, &tcp22(), false);
    check_set(&[], false, &tcp22(), false);
    check_set(&[(0, 0xffff)], false, &udp22(), false);
}

#[test]
#[rustfmt::skip]
fn not_in_requires_the_header() {
    check_set(&[(80, 80)], true, &tcp22(), true);
    check_set(&[(22, 22)], true, &tcp22(), false);
    check_set(&[(1, 21), (23, 100)], true, &tcp22(), true);
    check_set(&[], true, &tcp22(), true);
    check_set(&[], true, &udp22(), false);
    check_set(&[(80, 80)], true, &udp22(), false);
}

#[test]
#[rustfmt::skip]
fn connectives_and_protocols() {
    check(Cond::True, &[], true);
    check(Cond::False, &tcp22(), false);
    check(Cond::And(vec![]), &[], true);
    check(Cond::Or(vec![]), &tcp22(), false);
    check(Cond::And(vec![Cond::Proto(Proto::Tcp), eq(Field::TcpDport, 22)]), &tcp22(), true);
    check(Cond::And(vec![Cond::Proto(Proto::Tcp), eq(Field::TcpDport, 23)]), &tcp22(), false);
    check(Cond::Or(vec![eq(Field::UdpDport, 22), eq(Field::TcpDport, 22)]), &tcp22(), true);
    check(Cond::Or(vec![eq(Field::UdpDport, 22), eq(Field::TcpDport, 22)]), &udp22(), true);
    check(Cond::Or(vec![Cond::False, Cond::Proto(Proto::Ipv6)]), &udp22(), false);
    check(not(Cond::Proto(Proto::Ipv6)), &udp22(), true);
    check(not(not(Cond::Proto(Proto::Udp))), &udp22(), true);
    check(Cond::Proto(Proto::Eth), &[0; 14], true);
    check(Cond::Proto(Proto::Eth), &[0; 13], false);
}

/// The first matching rule decides; none matching gives the default.
#[test]
fn rules_are_tried_in_order() {
    let rule = |verdict, condition| Rule { name: "r".into(), verdict, condition, log: None, span: Span::default() };
    let program = Program {
        hook: Hook::TcIngress,
        default: Verdict::Drop,
        rules: vec![
            rule(Verdict::Pass, eq(Field::TcpDport, 22)),
            rule(Verdict::Drop, Cond::Proto(Proto::Tcp)),
            rule(Verdict::Pass, Cond::Proto(Proto::Udp)),
        ],
        sets: Vec::new(),
        dynamic_sets: Vec::new(),
        set_names: Vec::new(),
        pcaps: Vec::new(),
        limits: Vec::new(),
    };
    let outcome = |verdict, rule| Outcome { verdict, rule };
    assert_eq!(evaluate(&program, &tcp22()), outcome(Verdict::Pass, Some(0)));
    let tcp80 = Packet::eth().ipv4("10.0.0.1", "10.0.0.2").tcp(1, 80).build();
    assert_eq!(evaluate(&program, &tcp80), outcome(Verdict::Drop, Some(1)));
    assert_eq!(evaluate(&program, &udp22()), outcome(Verdict::Pass, Some(2)));
    assert_eq!(evaluate(&program, &[]), outcome(Verdict::Drop, None));
    let headers = Headers::parse(&tcp80);
    assert!(eval_cond(&program.rules[1].condition, &program, &headers));
    assert!(!eval_cond(&program.rules[0].condition, &program, &headers));
}
