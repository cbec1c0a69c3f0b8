//! A pcap atom's test tree as a decision graph, optimized: a [`Pred`] in, a [`Graph`] of
//! test nodes whose two ways lead to other tests or to the verdicts out.
//!
//! A failed load and a false verdict both leave the atom false, so the graph has two
//! leaves, [`TRUE`] and [`FALSE`]. Built in continuation style (each test knows where
//! each answer goes; constants become plain edges), equal nodes shared. Then, as
//! libpcap's `optimize.c` does in its own way:
//! - *jump threading*: an edge into a test that the facts on that edge already decide
//!   goes straight to the decided successor ([`super::facts`]);
//! - *dead-code removal*: a test from which no path reaches [`TRUE`] is [`FALSE`] (its
//!   loads can only reject, which is false as well); unreachable nodes are dropped;
//! - *constant folding*: a test of constants is an edge;
//! - *certain bounds*: per node, the frame length every path from it to [`TRUE`]
//!   proves by its fixed-offset loads, so one bounds check there covers them all.
//!
//! **Invariant:** a node's successors have smaller indices (the graph is acyclic and
//! descending index order is a topological order from the root).

use std::collections::HashMap;

use super::facts::{apply, Facts};
use crate::program::pcap::{Pred, TestOp, Val};

/// The accepting leaf.
pub const TRUE: usize = 0;
/// The rejecting leaf.
pub const FALSE: usize = 1;
/// A length no path proves (from a node that cannot reach [`TRUE`]).
const UNPROVEN: u64 = u64::MAX;

/// One test: `left OP right`, then `yes` or `no`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Test {
    /// Left value.
    pub left: Val,
    /// Comparison.
    pub op: TestOp,
    /// Right value.
    pub right: Val,
    /// Where to go when it holds.
    pub yes: usize,
    /// Where to go when it does not.
    pub no: usize,
}

/// The graph: nodes 0 and 1 are the leaves (their entries unused), the rest tests.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Nodes by index; `None` for the leaves.
    pub nodes: Vec<Option<Test>>,
    /// The first test (or a leaf).
    pub root: usize,
}

/// Largest offset a fixed-offset load may reach (codegen's immediate-offset form).
pub const FIXED_REACH: u64 = 0x7fff;

/// The end of a load at a fixed offset, if `val` is one codegen emits as such.
pub(crate) fn fixed_end(size: u8, index: &Val, offset: u32) -> Option<u64> {
    let Val::Const(k) = index else { return None };
    let end = u64::from(*k) + u64::from(offset) + u64::from(size);
    (end <= FIXED_REACH).then_some(end)
}

/// The largest frame length the loads of `val` prove when they succeed: fixed loads
/// their end, others at least their constant offset.
fn proven_by(val: &Val) -> u64 {
    match val {
        Val::Const(_) | Val::Len => 0,
        Val::Load { size, index, offset } => {
            let own = u64::from(*offset) + u64::from(*size);
            own.min(FIXED_REACH).max(proven_by(index))
        }
        Val::Neg(inner) => proven_by(inner),
        Val::Protochain { .. } => protochain_loads_end(val),
        Val::Alu(_, left, right) => proven_by(left).max(proven_by(right)),
    }
}

/// The end of a protochain walk's first loads, at fixed offsets (the IPv4 header's first
/// and protocol bytes, or the IPv6 next header); the walk's own loads check themselves.
fn protochain_loads_end(val: &Val) -> u64 {
    match val {
        Val::Protochain { ipv6, net, .. } => (u64::from(*net) + if *ipv6 { 7 } else { 10 }).min(FIXED_REACH),
        _ => 0,
    }
}

/// The largest end of the fixed-offset loads in `val` (0 when none).
pub(crate) fn fixed_loads_end(val: &Val) -> u64 {
    match val {
        Val::Const(_) | Val::Len => 0,
        Val::Load { size, index, offset } => fixed_end(*size, index, *offset).unwrap_or(0).max(fixed_loads_end(index)),
        Val::Neg(inner) => fixed_loads_end(inner),
        Val::Protochain { .. } => protochain_loads_end(val),
        Val::Alu(_, left, right) => fixed_loads_end(left).max(fixed_loads_end(right)),
    }
}

fn reads_frame(val: &Val) -> bool {
    match val {
        Val::Const(_) => false,
        Val::Len | Val::Load { .. } | Val::Protochain { .. } => true,
        Val::Neg(inner) => reads_frame(inner),
        Val::Alu(_, left, right) => reads_frame(left) || reads_frame(right),
    }
}

struct Builder {
    nodes: Vec<Option<Test>>,
    shared: HashMap<Test, usize>,
}

impl Builder {
    fn node(&mut self, test: Test) -> usize {
        if let Some(&index) = self.shared.get(&test) {
            return index;
        }
        self.nodes.push(Some(test.clone()));
        self.shared.insert(test, self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// The node deciding `pred`, going on to `yes` or `no`.
    fn build(&mut self, pred: &Pred, yes: usize, no: usize) -> usize {
        match pred {
            Pred::Const(true) => yes,
            Pred::Const(false) => no,
            Pred::Not(inner) => self.build(inner, no, yes),
            Pred::And(items) => items.iter().rev().fold(yes, |next, item| self.build(item, next, no)),
            Pred::Or(items) => items.iter().rev().fold(no, |next, item| self.build(item, yes, next)),
            Pred::Test { left, op, right } => {
                if !reads_frame(left) && !reads_frame(right) {
                    // Constants (a division by zero rejects).
                    return match (left.eval(&[]), right.eval(&[])) {
                        (Ok(l), Ok(r)) if apply(*op, l, r) => yes,
                        _ => no,
                    };
                }
                if yes == no && yes == FALSE {
                    return FALSE;
                }
                self.node(Test { left: left.clone(), op: *op, right: right.clone(), yes, no })
            }
        }
    }
}

impl Graph {
    /// The optimized graph of `pred`.
    pub fn new(pred: &Pred) -> Graph {
        let mut builder = Builder { nodes: vec![None, None], shared: HashMap::new() };
        let root = builder.build(pred, TRUE, FALSE);
        let mut graph = Graph { nodes: builder.nodes, root };
        for _ in 0..4 {
            let threaded = graph.thread();
            let pruned = graph.prune();
            if !threaded && !pruned {
                break;
            }
        }
        graph
    }

    /// The leaf the whole atom is, when it is one.
    pub fn constant(&self) -> Option<bool> {
        match self.root {
            TRUE => Some(true),
            FALSE => Some(false),
            _ => None,
        }
    }

    /// The test at `index` (not a leaf).
    pub fn test(&self, index: usize) -> &Test {
        self.nodes[index].as_ref().expect("a test node")
    }

    /// Reachable tests, root first, in topological order.
    pub fn order(&self) -> Vec<usize> {
        let mut reached = vec![false; self.nodes.len()];
        reached[self.root] = true;
        let mut order = Vec::new();
        for index in (2..self.nodes.len()).rev() {
            if !reached[index] {
                continue;
            }
            order.push(index);
            let test = self.test(index);
            reached[test.yes] = true;
            reached[test.no] = true;
        }
        order
    }

    /// Jump threading; whether any edge moved.
    fn thread(&mut self) -> bool {
        let mut facts: Vec<Option<Facts>> = vec![None; self.nodes.len()];
        facts[self.root] = Some(Facts::default());
        let mut changed = false;
        for index in (2..self.nodes.len()).rev() {
            let Some(here) = facts[index].clone() else { continue };
            let test = self.test(index).clone();
            let mut moved = test.clone();
            for holds in [true, false] {
                let mut edge = here.clone();
                edge.learn(&test.left, test.op, &test.right, holds);
                let mut to = if holds { test.yes } else { test.no };
                while to > FALSE {
                    let next = self.test(to);
                    match edge.decide(&next.left, next.op, &next.right) {
                        Some(true) => to = next.yes,
                        Some(false) => to = next.no,
                        None => break,
                    }
                }
                if holds {
                    moved.yes = to;
                } else {
                    moved.no = to;
                }
                facts[to] = Some(match facts[to].take() {
                    Some(before) => before.meet(&edge),
                    None => edge,
                });
            }
            if moved != test {
                changed = true;
                self.nodes[index] = Some(moved);
            }
        }
        changed
    }

    /// Tests that cannot reach [`TRUE`] become [`FALSE`]; whether anything changed.
    fn prune(&mut self) -> bool {
        let mut live = vec![false; self.nodes.len()];
        live[TRUE] = true;
        let mut changed = false;
        for index in 2..self.nodes.len() {
            let Some(test) = &self.nodes[index] else { continue };
            let (yes, no) =
                (if live[test.yes] { test.yes } else { FALSE }, if live[test.no] { test.no } else { FALSE });
            live[index] = yes != FALSE || no != FALSE;
            if (yes, no) != (test.yes, test.no) {
                changed = true;
                let test = self.nodes[index].as_mut().expect("a test");
                (test.yes, test.no) = (yes, no);
            }
        }
        if !live[self.root] && self.root != FALSE {
            self.root = FALSE;
            changed = true;
        }
        changed
    }

    /// Per node, the frame length every path from it to [`TRUE`] proves (by its loads'
    /// constant offsets), capped at [`FIXED_REACH`]: checking that much at the node
    /// rejects only frames the atom rejects anyway.
    pub(crate) fn certain_length(&self) -> Vec<u64> {
        let mut certain = vec![UNPROVEN; self.nodes.len()];
        certain[TRUE] = 0;
        for index in 2..self.nodes.len() {
            let Some(test) = &self.nodes[index] else { continue };
            let after = certain[test.yes].min(certain[test.no]);
            if after == UNPROVEN {
                continue;
            }
            certain[index] = after.max(proven_by(&test.left)).max(proven_by(&test.right)).min(FIXED_REACH);
        }
        certain
    }
}
