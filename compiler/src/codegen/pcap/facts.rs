//! What a path through a pcap atom knows about the values it has computed: tests taken
//! (`value OP constant`, and which way) in, answers to later tests on the same values out.
//!
//! A value here is a [`Val`] expression; two equal expressions compute equal numbers on
//! one frame, and a value is known only after every path to the point computed it, so a
//! test decided from these facts has no effect left to keep (its loads already passed
//! their bounds checks on every path).

use std::collections::HashMap;

use crate::program::pcap::{TestOp, Val};

/// What is known about one value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Know {
    /// Least possible value.
    lo: u32,
    /// Greatest possible value.
    hi: u32,
    /// Values it is known not to be.
    not: Vec<u32>,
    /// Bits known to be zero.
    zero: u32,
    /// Masks of which at least one bit is known to be set.
    some: Vec<u32>,
}

impl Know {
    const ANY: Know = Know { lo: 0, hi: u32::MAX, not: Vec::new(), zero: 0, some: Vec::new() };

    fn meet(&self, other: &Know) -> Know {
        Know {
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
            not: self.not.iter().copied().filter(|k| other.not.contains(k)).collect(),
            zero: self.zero & other.zero,
            some: self.some.iter().copied().filter(|k| other.some.contains(k)).collect(),
        }
    }

    fn decide(&self, op: TestOp, k: u32) -> Option<bool> {
        if self.lo == self.hi {
            return Some(apply(op, self.lo, k));
        }
        match op {
            TestOp::Eq if k < self.lo || k > self.hi || self.not.contains(&k) || k & self.zero != 0 => Some(false),
            TestOp::Gt if self.lo > k => Some(true),
            TestOp::Gt if self.hi <= k => Some(false),
            TestOp::Ge if self.lo >= k => Some(true),
            TestOp::Ge if self.hi < k => Some(false),
            TestOp::Set if k & !self.zero == 0 => Some(false),
            // Some bit of a mask within `k` is set.
            TestOp::Set if self.some.iter().any(|m| m & !k == 0) => Some(true),
            // `k` has no bit of a mask of which one is set.
            TestOp::Eq if self.some.iter().any(|m| m & k == 0) => Some(false),
            _ => None,
        }
    }

    fn learn(&mut self, op: TestOp, k: u32, holds: bool) {
        match (op, holds) {
            (TestOp::Eq, true) => (self.lo, self.hi) = (k, k),
            (TestOp::Eq, false) => {
                if !self.not.contains(&k) {
                    self.not.push(k);
                }
            }
            (TestOp::Gt, true) => self.lo = self.lo.max(k.saturating_add(1)),
            (TestOp::Gt, false) => self.hi = self.hi.min(k),
            (TestOp::Ge, true) => self.lo = self.lo.max(k),
            (TestOp::Ge, false) => self.hi = self.hi.min(k.saturating_sub(1)),
            (TestOp::Set, true) => {
                if !self.some.contains(&k) {
                    self.some.push(k);
                }
            }
            (TestOp::Set, false) => self.zero |= k,
        }
    }
}

/// `left OP right` on numbers.
pub fn apply(op: TestOp, left: u32, right: u32) -> bool {
    match op {
        TestOp::Eq => left == right,
        TestOp::Gt => left > right,
        TestOp::Ge => left >= right,
        TestOp::Set => left & right != 0,
    }
}

/// The facts that hold on every path to a point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    vals: HashMap<Val, Know>,
}

impl Facts {
    /// What holds on both of two ways in.
    pub fn meet(&self, other: &Facts) -> Facts {
        let vals = self
            .vals
            .iter()
            .filter_map(|(val, know)| other.vals.get(val).map(|theirs| (val.clone(), know.meet(theirs))))
            .filter(|(_, know)| *know != Know::ANY)
            .collect();
        Facts { vals }
    }

    /// The answer of `left OP right`, when these facts decide it.
    pub fn decide(&self, left: &Val, op: TestOp, right: &Val) -> Option<bool> {
        let Val::Const(k) = right else { return None };
        self.vals.get(left)?.decide(op, *k)
    }

    /// Records that `left OP right` came out `holds`.
    pub fn learn(&mut self, left: &Val, op: TestOp, right: &Val, holds: bool) {
        let Val::Const(k) = right else { return };
        self.vals.entry(left.clone()).or_insert(Know::ANY).learn(op, *k, holds);
    }
}
