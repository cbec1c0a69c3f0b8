//! No byte string makes the interpreter panic, on a program that reads every field.

use crate::support::{cmp, in_set, masked, not, program};
use pfc_compiler::eval::evaluate;
use pfc_compiler::fields::{Field, Proto};
use pfc_compiler::packet::{ExtKind, Packet};
use pfc_compiler::program::{CmpOp, Cond, Program, ValueSet};
use proptest::prelude::*;

/// Rules that never match before the last one, so every atom of every field runs.
fn every_field_program() -> Program {
    let mut atoms = Vec::new();
    for &field in Field::ALL {
        atoms.push(cmp(field, CmpOp::Eq, 0xfeed));
        atoms.push(not(cmp(field, CmpOp::Gt, 0)));
        atoms.push(masked(field, 0xff, CmpOp::Ne, 0));
        atoms.push(in_set(field, false));
        atoms.push(in_set(field, true));
    }
    atoms.extend(Proto::ALL.map(Cond::Proto));
    let sets = vec![ValueSet::from_intervals(128, vec![(1, 80), (443, 443), (1 << 40, u128::MAX)])];
    let mut program = program(Cond::Or(vec![Cond::And(atoms.clone()), Cond::False]), sets);
    let mut last = program.rules[0].clone();
    last.condition = Cond::Or(atoms);
    program.rules.push(last);
    program
}

/// Valid frames to mutate: every parse path, so mutations reach deep headers.
fn seeds() -> Vec<Vec<u8>> {
    vec![
        Packet::eth().vlan(1).vlan(2).ipv4("1.1.1.1", "2.2.2.2").tcp(1, 2).build(),
        Packet::eth()
            .ipv6("::1", "::2")
            .ext(ExtKind::HopByHop, 0)
            .ext(ExtKind::Fragment { offset: 0, more: true }, 0)
            .udp(1, 2)
            .build(),
        Packet::eth().ipv6("::1", "::2").icmp6(1, 0).build(),
        Packet::eth().arp(1, "1.1.1.1", "2.2.2.2").build(),
        Packet::eth().ipv4("1.1.1.1", "2.2.2.2").sctp(1, 2).build(),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
        let program = every_field_program();
        let outcome = evaluate(&program, &frame);
        prop_assert!(outcome.rule.is_none() || outcome.rule.is_some_and(|r| r < program.rules.len()));
    }

    #[test]
    fn mutated_frames_never_panic(
        seed in 0..5usize,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut frame = seeds()[seed].clone();
        for (at, byte) in flips {
            let index = at % frame.len();
            frame[index] = byte;
        }
        frame.truncate(cut % (frame.len() + 1));
        let program = every_field_program();
        let outcome = evaluate(&program, &frame);
        prop_assert_eq!(outcome.verdict, program.rules.get(outcome.rule.unwrap_or(usize::MAX)).map_or(program.default, |r| r.verdict));
    }
}
