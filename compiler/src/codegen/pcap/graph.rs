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
//! - *ranges of one value*: `v >= k` then `v > k` (`portrange 25-25`) is `v == k`;
//! - *safe touches*: a test whose two ways meet only matters by what its loads may
//!   reject; where every path to it already read those bytes (or the same values), it
//!   is an edge;
//! - *certain bounds*: per node, the frame length every path from it to [`TRUE`]
//!   proves by its fixed-offset loads, so one bounds check there covers them all.
//!
//! **Invariant:** a node's successors have smaller indices (the graph is acyclic and
//! descending index order is a topological order from the root).

use std::collections::{HashMap, HashSet};

use super::facts::{apply, Facts};
use super::upper_bound;
use crate::program::pcap::{Alu, Pred, TestOp, Val, PROTOCHAIN_AH, PROTOCHAIN_EXTENSIONS, PROTOCHAIN_NONE};

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

/// `val` with operations on constants folded and constant parts of load indices moved
/// into the loads' offsets, as libpcap writes `tcp[13]` (`[x + 27]`, not `x = 13 + x;
/// [x + 14]`): fewer instructions, and loads behind one header share its pointer. Only
/// where the sum cannot wrap (the index's [`upper_bound`] plus the constant fits 32
/// bits), so every load reads the same bytes.
pub(crate) fn normalize(val: &Val) -> Val {
    match val {
        Val::Const(_) | Val::Len => val.clone(),
        &Val::Protochain { ipv6, net, proto } => Val::Protochain { ipv6, net, proto: walk_stop(ipv6, proto) },
        Val::Neg(inner) => match normalize(inner) {
            Val::Const(k) => Val::Const(k.wrapping_neg()),
            inner => Val::Neg(Box::new(inner)),
        },
        Val::Alu(op, left, right) => {
            let val = Val::Alu(*op, Box::new(normalize(left)), Box::new(normalize(right)));
            match &val {
                // Constants folded (`tcp-fin|tcp-rst`); a division by zero stays (it rejects).
                Val::Alu(_, left, right) if matches!((&**left, &**right), (Val::Const(_), Val::Const(_))) => {
                    val.eval(&[]).map_or(val, Val::Const)
                }
                _ => val,
            }
        }
        Val::Load { size, index, offset } => {
            let index = normalize(index);
            let (constant, rest) = match &index {
                Val::Const(k) => (*k, Val::Const(0)),
                Val::Alu(Alu::Add, left, right) => match (&**left, &**right) {
                    (Val::Const(k), rest) | (rest, Val::Const(k)) if upper_bound(rest) <= u64::from(u32::MAX - k) => {
                        (*k, rest.clone())
                    }
                    _ => (0, index.clone()),
                },
                _ => (0, index.clone()),
            };
            match offset.checked_add(constant) {
                Some(offset) if constant > 0 => Val::Load { size: *size, index: Box::new(rest), offset },
                _ => Val::Load { size: *size, index: Box::new(index), offset: *offset },
            }
        }
    }
}

/// The protocol a `protochain proto` walk may stop at besides those it does not walk
/// over: `proto` itself when the walk would pass over it, else [`PROTOCHAIN_NONE`],
/// where every walk stops. A walk for a protocol it does not pass over reads the same
/// headers and stops at the same one as the walk for 59, so every `protochain N` of
/// one family and header offset with such an N is one value (`ip6 protochain 17 or 6`
/// walks once).
fn walk_stop(ipv6: bool, proto: u32) -> u32 {
    let walked = proto == PROTOCHAIN_AH || (ipv6 && PROTOCHAIN_EXTENSIONS.contains(&proto));
    if walked {
        proto
    } else {
        PROTOCHAIN_NONE
    }
}

/// A test in the form codegen emits best, with its ways: a constant on the right, `v >
/// 0` is `v != 0`, `(v & k) == 0` is "no bit of `k` set in `v`" (one `jset`), and `v >=
/// 0`, `v > 0xffffffff`, a comparison with a constant above the value's range (`v >
/// 0xffff` on a 2-byte load), `(v & 0) == 0` and `(v & m) == k` with a bit of `k`
/// outside `m` go one way (their loads may still reject).
fn simplify(left: Val, op: TestOp, right: Val, yes: usize, no: usize) -> (Val, TestOp, Val, usize, usize) {
    // A constant goes to the right (both sides are computed either way, and any reject
    // rejects): `k > v` is `v >= k` with the ways swapped, `k >= v` is `v > k` swapped.
    let (left, op, right, yes, no) = match (&left, op) {
        (Val::Const(_), _) if !matches!(right, Val::Const(_)) => match op {
            TestOp::Eq | TestOp::Set => (right, op, left, yes, no),
            TestOp::Gt => (right, TestOp::Ge, left, no, yes),
            TestOp::Ge => (right, TestOp::Gt, left, no, yes),
        },
        _ => (left, op, right, yes, no),
    };
    let (op, yes, no) = match (op, &right) {
        (TestOp::Gt, Val::Const(0)) => (TestOp::Eq, no, yes),
        // Decided: only the loads matter.
        (TestOp::Ge, Val::Const(0)) => (op, yes, yes),
        (TestOp::Gt, Val::Const(u32::MAX)) | (TestOp::Set, Val::Const(0)) => (op, no, no),
        _ => (op, yes, no),
    };
    // A value compared with a constant above what it can hold never holds
    // (`portrange 80-65535`'s `v > 65535` on a 2-byte load), and `v >= k` with `k` the
    // largest it can hold is `v == k` (`portrange 65535-65535`).
    let (op, yes, no) = match (op, &right) {
        (TestOp::Eq | TestOp::Ge, Val::Const(k)) if *k > largest(&left) => (op, no, no),
        (TestOp::Gt, Val::Const(k)) if *k >= largest(&left) => (op, no, no),
        (TestOp::Ge, Val::Const(k)) if *k == largest(&left) => (TestOp::Eq, yes, no),
        _ => (op, yes, no),
    };
    // `(v & m) == k` with a bit of `k` outside `m` never holds.
    let (yes, no) = match (op, &left, &right) {
        (TestOp::Eq, Val::Alu(Alu::And, a, b), Val::Const(k)) => match (&**a, &**b) {
            (_, Val::Const(m)) | (Val::Const(m), _) if k & !m != 0 => (no, no),
            _ => (yes, no),
        },
        _ => (yes, no),
    };
    if let (TestOp::Eq, Val::Const(0), Val::Alu(Alu::And, a, b)) = (op, &right, &left) {
        if let (v, Val::Const(k)) | (Val::Const(k), v) = (&**a, &**b) {
            // No bit of an empty mask is set (`net 2001:db8::/32`'s zero words): only the
            // load matters.
            return match k {
                0 => (v.clone(), TestOp::Set, Val::Const(0), yes, yes),
                _ => (v.clone(), TestOp::Set, Val::Const(*k), no, yes),
            };
        }
    }
    (left, op, right, yes, no)
}

/// The largest number `val` can be (`u32::MAX` when unsure).
fn largest(val: &Val) -> u32 {
    match val {
        Val::Const(k) => *k,
        Val::Load { size: 1, .. } => 0xff,
        Val::Load { size: 2, .. } => 0xffff,
        Val::Alu(Alu::And, left, right) => largest(left).min(largest(right)),
        Val::Alu(Alu::Shr, left, right) => match **right {
            Val::Const(k) if k < 32 => largest(left) >> k,
            _ => u32::MAX,
        },
        _ => u32::MAX,
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
                let (left, op, right, yes, no) = simplify(normalize(left), *op, normalize(right), yes, no);
                self.node(Test { left, op, right, yes, no })
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
        for _ in 0..16 {
            let threaded = graph.thread();
            let pruned = graph.prune();
            let merged = graph.merge();
            let fused = graph.fuse_ranges();
            let passed = graph.pass_safe_touches();
            if !threaded && !pruned && !merged && !fused && !passed {
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

    /// The distinct successors of the test at `index`, `no` first.
    fn ways(&self, index: usize) -> Vec<usize> {
        let test = self.test(index);
        if test.yes == test.no {
            vec![test.no]
        } else {
            vec![test.no, test.yes]
        }
    }

    /// Reachable tests, root first, in a topological order that puts a test right
    /// after one that leads to it wherever it can (a way to the next test is a fall
    /// through; a test whose ways both go elsewhere costs a `goto`): after each test,
    /// its `no` successor when every way into it is already placed, else its `yes`
    /// one, else the highest-numbered test ready. Atoms with a `protochain` walk keep
    /// descending index order.
    pub fn order(&self) -> Vec<usize> {
        let mut reached = vec![false; self.nodes.len()];
        let mut waiting = vec![0usize; self.nodes.len()];
        reached[self.root] = true;
        for index in (2..self.nodes.len()).rev() {
            if !reached[index] {
                continue;
            }
            for to in self.ways(index) {
                reached[to] = true;
                waiting[to] += 1;
            }
        }
        if self.nodes.iter().flatten().any(|test| matches!(test.left, Val::Protochain { .. })) {
            // Atoms with walks keep the plain order: each iteration of a walk leaves its
            // exits pending in the kernel verifier, and placed after the other family's
            // test, too many are pending at once (ten `protochain N and not port M`
            // rules, measured with the walks unrolled: 8,893 pending paths, limit 8,192).
            return (2..self.nodes.len()).rev().filter(|index| reached[*index]).collect();
        }
        let mut ready: Vec<usize> = Vec::new();
        let mut order = Vec::new();
        let mut next = (self.root > FALSE).then_some(self.root);
        while let Some(index) = next.or_else(|| ready.pop()) {
            next = None;
            order.push(index);
            for to in self.ways(index) {
                if to <= FALSE {
                    continue;
                }
                waiting[to] -= 1;
                if waiting[to] == 0 {
                    if next.is_none() {
                        next = Some(to);
                    } else {
                        ready.push(to);
                    }
                }
            }
            ready.sort_unstable();
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
                if test.yes != test.no {
                    // (Both ways of a test decided in advance are one edge: nothing is learnt.)
                    edge.learn(&test.left, test.op, &test.right, holds);
                }
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

    /// Tests whose two ways go to one node and whose loads cannot reject there — every
    /// path to the test read the frame past their bytes, or computed the same values —
    /// become an edge to that node; whether any did. Only what the loads of every path
    /// proved counts (not the bounds checks codegen hoists, which depend on the graph).
    fn pass_safe_touches(&mut self) -> bool {
        let mut state: Vec<Option<Known>> = vec![None; self.nodes.len()];
        if self.root > FALSE {
            state[self.root] = Some(Known::default());
        }
        let mut passed: Vec<usize> = (0..self.nodes.len()).collect();
        let mut changed = false;
        for index in (2..self.nodes.len()).rev() {
            let Some(here) = state[index].take() else { continue };
            let test = self.test(index);
            let out = if test.yes == test.no && here.safe(&test.left) && here.safe(&test.right) {
                passed[index] = test.yes;
                changed = true;
                here
            } else {
                let mut out = here;
                out.passed(&test.left);
                out.passed(&test.right);
                out
            };
            for to in self.ways(index) {
                if to > FALSE {
                    state[to] = Some(match state[to].take() {
                        Some(before) => before.meet(&out),
                        None => out.clone(),
                    });
                }
            }
        }
        if changed {
            // Successors have smaller indices: resolve chains from the bottom up.
            for index in 2..self.nodes.len() {
                if passed[index] != index {
                    passed[index] = passed[passed[index]];
                }
            }
            for test in self.nodes.iter_mut().flatten() {
                (test.yes, test.no) = (passed[test.yes], passed[test.no]);
            }
            self.root = passed[self.root];
        }
        changed
    }

    /// `v >= k` whose `yes` is `v > k` leading back to the first test's `no` is
    /// `v == k` (to the second test's `no`): one comparison, and `==` needs no byte swap.
    /// The second test reads what the first read, so no reject is lost. Whether any changed.
    fn fuse_ranges(&mut self) -> bool {
        let mut changed = false;
        for index in 2..self.nodes.len() {
            let Some(first) = &self.nodes[index] else { continue };
            if first.op != TestOp::Ge || first.yes <= FALSE || first.yes == first.no {
                continue;
            }
            let second = self.test(first.yes);
            if second.op == TestOp::Gt
                && second.left == first.left
                && second.right == first.right
                && second.yes == first.no
            {
                let fused = Test {
                    left: first.left.clone(),
                    op: TestOp::Eq,
                    right: first.right.clone(),
                    yes: second.no,
                    no: first.no,
                };
                self.nodes[index] = Some(fused);
                changed = true;
            }
        }
        changed
    }

    /// Equal tests with equal successors become one node (threading makes tests that
    /// began on different paths alike: the ARP and RARP halves of `net N`); whether any did.
    fn merge(&mut self) -> bool {
        let mut canonical: Vec<usize> = (0..self.nodes.len()).collect();
        let mut seen: HashMap<Test, usize> = HashMap::new();
        let mut changed = false;
        for index in 2..self.nodes.len() {
            let Some(test) = self.nodes[index].as_mut() else { continue };
            (test.yes, test.no) = (canonical[test.yes], canonical[test.no]);
            match seen.get(test) {
                Some(&first) => {
                    canonical[index] = first;
                    self.nodes[index] = None;
                    changed = true;
                }
                None => {
                    seen.insert(test.clone(), index);
                }
            }
        }
        self.root = canonical[self.root];
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

    /// Per node, the indices of the loads at a variable offset that it or a node after
    /// it makes (empty for the leaves).
    pub(crate) fn pointer_indices(&self) -> Vec<HashSet<Val>> {
        fn collect(val: &Val, into: &mut HashSet<Val>) {
            match val {
                Val::Const(_) | Val::Len | Val::Protochain { .. } => {}
                Val::Neg(inner) => collect(inner, into),
                Val::Alu(_, left, right) => {
                    collect(left, into);
                    collect(right, into);
                }
                Val::Load { size, index, offset } => {
                    if fixed_end(*size, index, *offset).is_none() {
                        into.insert((**index).clone());
                    }
                    collect(index, into);
                }
            }
        }
        let mut used: Vec<HashSet<Val>> = vec![HashSet::new(); self.nodes.len()];
        for index in 2..self.nodes.len() {
            let Some(test) = &self.nodes[index] else { continue };
            let mut here: HashSet<Val> = used[test.yes].union(&used[test.no]).cloned().collect();
            collect(&test.left, &mut here);
            collect(&test.right, &mut here);
            used[index] = here;
        }
        used
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

/// What every path to a node has read without rejecting: the frame length its loads
/// proved, and the values (with their parts) it computed.
#[derive(Clone, Debug, Default)]
struct Known {
    length: u64,
    computed: HashSet<Val>,
}

impl Known {
    /// What holds on both of two ways in.
    fn meet(&self, other: &Known) -> Known {
        Known {
            length: self.length.min(other.length),
            computed: self.computed.intersection(&other.computed).cloned().collect(),
        }
    }

    /// Records that `val` was computed (so its loads passed).
    fn passed(&mut self, val: &Val) {
        self.length = self.length.max(proven_by(val));
        self.add(val);
    }

    fn add(&mut self, val: &Val) {
        match val {
            Val::Const(_) | Val::Len => return,
            Val::Neg(inner) => self.add(inner),
            Val::Load { index, .. } => self.add(index),
            Val::Alu(_, left, right) => {
                self.add(left);
                self.add(right);
            }
            Val::Protochain { .. } => {}
        }
        self.computed.insert(val.clone());
    }

    /// Whether computing `val` here cannot reject: loads within the proven length or
    /// computed before, divisors that are non-zero constants or computed before.
    fn safe(&self, val: &Val) -> bool {
        if self.computed.contains(val) {
            return true;
        }
        match val {
            Val::Const(_) | Val::Len => true,
            Val::Neg(inner) => self.safe(inner),
            Val::Load { size, index, offset } => {
                fixed_end(*size, index, *offset).is_some_and(|end| end <= self.length) && self.safe(index)
            }
            Val::Alu(Alu::Div | Alu::Mod, left, right) => self.safe(left) && matches!(**right, Val::Const(k) if k != 0),
            Val::Alu(_, left, right) => self.safe(left) && self.safe(right),
            Val::Protochain { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Span;

    fn graph(text: &str) -> Graph {
        let (filter, diagnostics) = crate::pcap::compile(text, Span::new(0, text.len()));
        assert!(diagnostics.is_empty(), "{text}: {diagnostics:?}");
        Graph::new(&filter.expect("compiles").pred)
    }

    /// The reachable tests of `text` with their ways told apart.
    fn deciding(text: &str) -> Vec<Test> {
        let graph = graph(text);
        graph.order().into_iter().map(|index| graph.test(index).clone()).filter(|test| test.yes != test.no).collect()
    }

    #[test]
    fn constant_operations_fold_into_one_mask_test() {
        let tests = deciding("tcp[tcpflags] & (tcp-fin|tcp-rst) != 0");
        assert!(tests.iter().any(|test| test.op == TestOp::Set && test.right == Val::Const(5)), "{tests:?}");
    }

    #[test]
    fn a_constant_on_the_left_moves_right() {
        let tests = deciding("100 > ip[2:2]");
        assert!(tests.iter().all(|test| !matches!(test.left, Val::Const(_))), "{tests:?}");
        assert!(tests.iter().any(|test| test.op == TestOp::Ge && test.right == Val::Const(100)), "{tests:?}");
    }

    #[test]
    fn empty_masks_decide_nothing() {
        // The zero words of the /32 mask: only their loads matter.
        let tests = deciding("ip6 net 2001:db8::/32");
        assert!(tests.iter().all(|test| test.right != Val::Const(0) || test.op != TestOp::Set), "{tests:?}");
        assert_eq!(graph("ip[0] & 0xf0 = 0x0f").constant(), Some(false));
    }

    #[test]
    fn a_compare_beyond_the_values_range_needs_no_code() {
        // `portrange 80-65535`'s `> 65535` on the 2-byte port: only its load matters, and
        // the `>= 80` before it loaded the port.
        let tests = deciding("tcp dst portrange 80-65535");
        assert!(tests.iter().all(|test| test.op != TestOp::Gt || test.right != Val::Const(0xffff)), "{tests:?}");
        assert_eq!(graph("ip[0] > 255").constant(), Some(false));
        assert_eq!(graph("ip[2:2] & 0xff > 255 or ip[2:2] >> 8 = 256").constant(), Some(false));
    }

    #[test]
    fn a_mask_that_held_decides_a_wider_one() {
        let tests = deciding("ip[6] & 2 != 0 and ip[6] & 3 != 0");
        assert!(!tests.iter().any(|test| test.op == TestOp::Set && test.right == Val::Const(3)), "{tests:?}");
    }

    #[test]
    fn a_test_whose_loads_passed_and_whose_ways_meet_is_an_edge() {
        // After `ip[2:2] > 20`, `ip[2] & 0` (read again, both ways the same) needs no code.
        let graph = graph("ip[2:2] > 20 and (ip[2] & 0 = 0)");
        let tests: Vec<Test> = graph.order().into_iter().map(|index| graph.test(index).clone()).collect();
        assert!(tests.iter().all(|test| test.yes != test.no), "{tests:?}");
    }
}
