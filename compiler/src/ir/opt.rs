//! IR optimization: a [`Filter`] in, the same filter with simpler conditions out.
//!
//! Passes (one bottom-up rewrite, memoized per node):
//! - constant folding of `all`/`any`/`not`, flattening of nested `all`/`any`, removal
//!   of duplicate operands;
//! - guard pruning: in one `all`, a `present` implied by another `present` is dropped,
//!   and two sources that exclude each other make the `all` false;
//! - guard sharing: operands of an `any` that start with the same guard are merged
//!   (`tcp.dport == 22 or tcp.dport == 23` tests "TCP present" once);
//! - dead tests: comparisons that the field's width decides (`tcp.dport <= 65535`),
//!   empty and full sets; one-interval sets become comparisons.

use super::{Filter, Node, NodeId, Source};
use crate::fields::Field;
use crate::program::CmpOp;

/// Rewrites every rule's condition.
pub fn optimize(filter: &mut Filter) {
    let mut memo = Memo::default();
    for index in 0..filter.rules.len() {
        let condition = filter.rules[index].condition;
        filter.rules[index].condition = simplify(filter, condition, &mut memo);
    }
}

/// The simplified form of each node already simplified, indexed by node id (ids are
/// dense, so a vector beats hashing them).
#[derive(Default)]
struct Memo(Vec<Option<NodeId>>);

impl Memo {
    fn get(&self, id: NodeId) -> Option<NodeId> {
        self.0.get(id.0 as usize).copied().flatten()
    }

    fn insert(&mut self, id: NodeId, result: NodeId) {
        let index = id.0 as usize;
        if index >= self.0.len() {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some(result);
    }
}

fn simplify(filter: &mut Filter, id: NodeId, memo: &mut Memo) -> NodeId {
    if let Some(done) = memo.get(id) {
        return done;
    }
    let node = filter.node(id).clone();
    let result = match node {
        Node::Const(_) | Node::Present(_) | Node::Pcap(_) | Node::InDynamic { .. } | Node::Limit(_) => id,
        Node::Compare { field, mask, op, value } => compare(filter, field, mask, op, value),
        Node::InSet { field, mask, set } => in_set(filter, field, mask, set, id),
        Node::Not(inner) => {
            let inner = simplify(filter, inner, memo);
            match filter.node(inner).clone() {
                Node::Const(value) => filter.intern(Node::Const(!value)),
                Node::Not(twice) => twice,
                _ => filter.intern(Node::Not(inner)),
            }
        }
        Node::All(items) => {
            let items: Vec<NodeId> = items.iter().map(|item| simplify(filter, *item, memo)).collect();
            all(filter, items)
        }
        Node::Any(items) => {
            let items: Vec<NodeId> = items.iter().map(|item| simplify(filter, *item, memo)).collect();
            any(filter, items)
        }
    };
    memo.insert(id, result);
    result
}

/// The largest value `field & mask` can take.
fn largest(field: Field, mask: Option<u128>) -> u128 {
    let max = field.kind().max();
    mask.map_or(max, |mask| max & mask)
}

fn compare(filter: &mut Filter, field: Field, mask: Option<u128>, op: CmpOp, value: u128) -> NodeId {
    let max = largest(field, mask);
    let decided = match op {
        CmpOp::Eq if value > max => Some(false),
        CmpOp::Ne if value > max => Some(true),
        CmpOp::Lt if value == 0 => Some(false),
        CmpOp::Lt if value > max => Some(true),
        CmpOp::Le if value >= max => Some(true),
        CmpOp::Gt if value >= max => Some(false),
        CmpOp::Ge if value == 0 => Some(true),
        CmpOp::Ge if value > max => Some(false),
        _ => None,
    };
    match decided {
        Some(constant) => filter.intern(Node::Const(constant)),
        None => filter.intern(Node::Compare { field, mask, op, value }),
    }
}

fn in_set(filter: &mut Filter, field: Field, mask: Option<u128>, set: super::SetRef, id: NodeId) -> NodeId {
    let max = largest(field, mask);
    let intervals: Vec<(u128, u128)> = filter
        .set(set)
        .intervals
        .iter()
        .filter(|(low, _)| *low <= max)
        .map(|&(low, high)| (low, high.min(max)))
        .collect();
    match intervals.as_slice() {
        [] => filter.intern(Node::Const(false)),
        [(0, high)] if *high >= max => filter.intern(Node::Const(true)),
        [(low, high)] if low == high => compare(filter, field, mask, CmpOp::Eq, *low),
        [(0, high)] => compare(filter, field, mask, CmpOp::Le, *high),
        [(low, high)] if *high >= max => compare(filter, field, mask, CmpOp::Ge, *low),
        _ => id,
    }
}

fn all(filter: &mut Filter, items: Vec<NodeId>) -> NodeId {
    let mut flat: Vec<NodeId> = Vec::with_capacity(items.len());
    for item in items {
        match filter.node(item) {
            Node::Const(true) => {}
            Node::Const(false) => return filter.intern(Node::Const(false)),
            Node::All(inner) => flat.extend(inner.iter().copied()),
            _ => flat.push(item),
        }
    }
    dedup(&mut flat);
    let guards: Vec<Source> = flat
        .iter()
        .filter_map(|item| if let Node::Present(source) = filter.node(*item) { Some(*source) } else { None })
        .collect();
    for (index, first) in guards.iter().enumerate() {
        if guards[index + 1..].iter().any(|second| first.excludes(*second)) {
            return filter.intern(Node::Const(false));
        }
    }
    flat.retain(|item| match filter.node(*item) {
        Node::Present(source) => !guards.iter().any(|other| other != source && other.implied().contains(source)),
        _ => true,
    });
    match flat.len() {
        0 => filter.intern(Node::Const(true)),
        1 => flat[0],
        _ => filter.intern(Node::All(flat)),
    }
}

fn any(filter: &mut Filter, items: Vec<NodeId>) -> NodeId {
    let mut flat: Vec<NodeId> = Vec::with_capacity(items.len());
    for item in items {
        match filter.node(item) {
            Node::Const(false) => {}
            Node::Const(true) => return filter.intern(Node::Const(true)),
            Node::Any(inner) => flat.extend(inner.iter().copied()),
            _ => flat.push(item),
        }
    }
    dedup(&mut flat);
    let flat = share_guards(filter, flat);
    match flat.len() {
        0 => filter.intern(Node::Const(false)),
        1 => flat[0],
        _ => filter.intern(Node::Any(flat)),
    }
}

/// `any(all(g, a), all(g, b), c)` → `any(all(g, any(a, b)), c)`: conditions have no
/// side effects, so the operands of `any` may be regrouped.
fn share_guards(filter: &mut Filter, items: Vec<NodeId>) -> Vec<NodeId> {
    let mut groups: Vec<(Option<NodeId>, Vec<NodeId>)> = Vec::new();
    for item in items {
        let guard = match filter.node(item) {
            Node::All(parts) if matches!(filter.node(parts[0]), Node::Present(_)) => Some(parts[0]),
            Node::Present(_) => Some(item),
            _ => None,
        };
        match groups.iter_mut().find(|(existing, _)| guard.is_some() && *existing == guard) {
            Some((_, members)) => members.push(item),
            None => groups.push((guard, vec![item])),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for (guard, members) in groups {
        match (guard, members.len()) {
            (Some(guard), count) if count > 1 => {
                let mut rests = Vec::with_capacity(members.len());
                for member in &members {
                    let rest = match filter.node(*member).clone() {
                        Node::All(parts) => all(filter, parts[1..].to_vec()),
                        _ => filter.intern(Node::Const(true)),
                    };
                    rests.push(rest);
                }
                let rest = any(filter, rests);
                out.push(all(filter, vec![guard, rest]));
            }
            _ => out.extend(members),
        }
    }
    out
}

/// Drops repeated operands, keeping each one's first place. Operand lists are short
/// (a rule's tests), where a scan of the kept ones beats a hash set.
fn dedup(items: &mut Vec<NodeId>) {
    if items.len() <= 32 {
        let mut kept = 0;
        for index in 0..items.len() {
            let item = items[index];
            if !items[..kept].contains(&item) {
                items[kept] = item;
                kept += 1;
            }
        }
        items.truncate(kept);
    } else {
        let mut seen = crate::hashing::FastMap::default();
        items.retain(|item| seen.insert(*item, ()).is_none());
    }
}
