//! The engine against the interpreter: spaces of small conditions, their witnesses.

use super::cond::Modeller;
use super::witness;
use super::{Space, BUDGET};
use crate::eval::{eval_cond, Headers};
use crate::program::Program;

fn program(source: &str) -> Program {
    let (program, diagnostics) = crate::frontend::check_source(source);
    program.unwrap_or_else(|| panic!("{source}: {diagnostics:?}"))
}

/// The first rule's condition as a space: exact, and a witness inside it (and one
/// outside it, in the universe) that the interpreter confirms.
fn check(condition: &str) {
    let program = program(&format!("default pass\nrule r: drop if {condition}\n"));
    let cond = &program.rules[0].condition;
    let approx = Modeller::default().approx(cond, &program);
    assert!(approx.exact, "{condition}: not exact");
    let holds = |bytes: &[u8]| eval_cond(cond, &program, &Headers::parse(bytes));
    let inside = Space::everything().intersect(&approx.over).expect("budget");
    let found = witness::find(&inside, holds).unwrap_or_else(|| panic!("{condition}: no witness inside"));
    assert!(holds(&found.bytes), "{condition}: {}", found.spec);
    let outside = Space::everything().minus(&approx.over, BUDGET).expect("budget");
    if !outside.is_empty() {
        witness::find(&outside, |bytes| !holds(bytes)).unwrap_or_else(|| panic!("{condition}: no witness outside"));
    }
}

#[test]
fn atoms_and_their_negations_have_confirmed_witnesses() {
    for condition in [
        "tcp.dport == 22",
        "tcp.dport != 22",
        "not tcp.dport == 22",
        "tcp.dport not in { 22, 23 }",
        "l4.dport == 53",
        "ip.src in 10.0.0.0/8",
        "ip.src != 10.0.0.1",
        "ip.src not in 10.0.0.0/8",
        "ipv6.src in 2001:db8::/32 and udp",
        "tcp.flags & (syn | ack) == syn",
        "ipv4.dscp == 46",
        "ipv6.dscp == 46",
        "ipv6.len > 100",
        "pkt.len < 60",
        "pkt.len < 10",
        "arp and arp.op == reply",
        "vlan.id == 10 and ipv4",
        "eth.type == 0x8100",
        "ipv4 and not tcp and not udp",
        "ipv6 and not ipv6.proto == 6",
        "ip.proto == tcp and not tcp",
        "ipv4.frag_offset > 0",
        "ipv6.next == 44 and tcp",
        "tcp.seq & 0xffff0000 == 0x10000",
        "icmp6.type == neighbor-solicitation",
        "not eth",
        "not ipv6.proto == 1 and ipv6",
    ] {
        check(condition);
    }
}

#[test]
fn pcap_atoms_and_odd_masks_are_not_exact() {
    for condition in ["pcap \"tcp port 22\"", "tcp.seq & 0xff00ff == 1"] {
        let program = program(&format!("default pass\nrule r: drop if {condition}\n"));
        let approx = Modeller::default().approx(&program.rules[0].condition, &program);
        assert!(!approx.exact, "{condition}");
        assert!(approx.under.is_empty(), "{condition}");
    }
}
