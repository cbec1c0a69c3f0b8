//! IR lowering: a checked [`Program`] in, an unoptimized [`Filter`] out. Every field
//! test gets its header guard as an explicit `Present` node in front of it.

use super::{Filter, FilterRule, Node, NodeId, SetRef, Source};
use crate::program::{Cond, Program, Test, TestOp};

/// Lowers every rule's condition.
pub fn lower(program: &Program) -> Filter {
    // A rule's condition takes a handful of nodes (tests, guards, their `all`s), and the
    // optimizer adds a few: sized once instead of grown (and the table rehashed) 20 times.
    let nodes = program.rules.len() * 8;
    let mut filter = Filter {
        hook: program.hook,
        default: program.default,
        rules: Vec::with_capacity(program.rules.len()),
        nodes: Vec::with_capacity(nodes),
        sets: program.sets.clone(),
        pcaps: program.pcaps.clone(),
        dynamic_sets: program.dynamic_sets.clone(),
        limits: program.limits.clone(),
        interned: crate::hashing::LookupMap::with_capacity_and_hasher(nodes, Default::default()),
    };
    for rule in &program.rules {
        let condition = lower_cond(&mut filter, &rule.condition);
        let (name, verdict, log, span) = (rule.name.clone(), rule.verdict, rule.log, rule.span);
        filter.rules.push(FilterRule { name, verdict, condition, log, span });
    }
    filter
}

fn lower_cond(filter: &mut Filter, cond: &Cond) -> NodeId {
    let node = match cond {
        Cond::True => Node::Const(true),
        Cond::False => Node::Const(false),
        Cond::Proto(proto) => Node::Present(Source::Header(*proto)),
        Cond::Not(inner) => Node::Not(lower_cond(filter, inner)),
        Cond::And(items) => Node::All(items.iter().map(|item| lower_cond(filter, item)).collect()),
        Cond::Or(items) => Node::Any(items.iter().map(|item| lower_cond(filter, item)).collect()),
        Cond::Test(test) => return lower_test(filter, test),
        Cond::Pcap(id) => Node::Pcap(id.0),
        Cond::Limit(id) => Node::Limit(id.0),
    };
    filter.intern(node)
}

/// `guard and test`, where a `not in` keeps its guard outside the negation.
fn lower_test(filter: &mut Filter, test: &Test) -> NodeId {
    let Test { field, mask, op } = *test;
    let check = match op {
        TestOp::Cmp(op, value) => filter.intern(Node::Compare { field, mask, op, value }),
        TestOp::In(set) => filter.intern(Node::InSet { field, mask, set: SetRef(set.0) }),
        TestOp::NotIn(set) => {
            let member = filter.intern(Node::InSet { field, mask, set: SetRef(set.0) });
            filter.intern(Node::Not(member))
        }
        TestOp::InDynamic(set) => filter.intern(Node::InDynamic { field, mask, set: set.0 }),
        TestOp::NotInDynamic(set) => {
            let member = filter.intern(Node::InDynamic { field, mask, set: set.0 });
            filter.intern(Node::Not(member))
        }
    };
    match Source::of_field(field) {
        Some(source) => {
            let guard = filter.intern(Node::Present(source));
            filter.intern(Node::All(vec![guard, check]))
        }
        None => check,
    }
}
