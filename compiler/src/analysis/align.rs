//! Which rules two programs share: two checked [`Program`]s in, per rule (and per
//! default) whether it is *changed* out, from an order-preserving pairing of identical
//! rules (same condition, set contents and pcap filters compared by value, same
//! verdict; names do not matter).
//!
//! Why this is enough for `pfc diff`: let every unchanged rule be paired, in order, with
//! an identical rule on the other side, the defaults included as last rules. A packet
//! that matches no changed rule on either side matches, in the old set, exactly the
//! partners of the rules it matches in the new set; pairing keeps order, so the first
//! of them is a pair, and its two rules give the same verdict. Every packet whose
//! verdict changes therefore has a changed rule deciding it on one side at least, and
//! the diff only compares pairs that hold one.
//!
//! Dynamic sets are compared by name, type and contents (both sides read one map). A rule
//! with a rate limit pairs only inside the common prefix of the two lists, where its
//! bucket sees the same packets on both sides; elsewhere it counts as changed, which
//! costs time, never correctness.
//!
//! The pairing is a longest common subsequence (Myers' O((N+M)·D) algorithm after the
//! common prefix and suffix are cut); past [`MAX_EDITS`] edits the middle is left
//! unpaired, which is still a valid (if slower) answer.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::program::{Cond, Program, TestOp};

/// The most edits the pairing searches for before it calls the rest changed.
pub(crate) const MAX_EDITS: usize = 1_000;

/// Per side, per rule and then the default: whether it is changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    /// Old rules, then the old default.
    pub old: Vec<bool>,
    /// New rules, then the new default.
    pub new: Vec<bool>,
}

/// Pairs the rules of `old` and `new` (see the module doc).
pub fn changed(old: &Program, new: &Program) -> Changed {
    let mut keys = Keys::default();
    let (mut a, a_stateful) = keys.program(old);
    let (mut b, b_stateful) = keys.program(new);
    // A rate limit's bucket sees the packets earlier rules leave it: the same only in
    // the common prefix. Past it, rules with limits pair with nothing.
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    for (ids, stateful) in [(&mut a, &a_stateful), (&mut b, &b_stateful)] {
        for index in (prefix..ids.len()).filter(|&i| stateful[i]) {
            ids[index] = keys.fresh();
        }
    }
    let (mut old_changed, mut new_changed) = (vec![true; a.len()], vec![true; b.len()]);
    for (x, y) in common(&a, &b) {
        old_changed[x] = false;
        new_changed[y] = false;
    }
    Changed { old: old_changed, new: new_changed }
}

/// Interns rule keys across both programs: equal ids mean identical rules.
#[derive(Default)]
struct Keys {
    sets: HashMap<Vec<(u128, u128)>, usize>,
    pcaps: HashMap<crate::program::pcap::Pred, usize>,
    rules: HashMap<String, u64>,
    unique: u64,
}

impl Keys {
    /// One id per rule, then one for the default, and whether each holds a rate limit.
    fn program(&mut self, program: &Program) -> (Vec<u64>, Vec<bool>) {
        let mut stateful = Vec::with_capacity(program.rules.len() + 1);
        let mut ids: Vec<u64> = Vec::with_capacity(program.rules.len() + 1);
        for rule in &program.rules {
            let mut key = format!("{} ", rule.verdict.as_str());
            let mut limited = false;
            let id = if self.write(&rule.condition, program, &mut key, &mut limited) {
                let next = self.rules.len() as u64;
                *self.rules.entry(key).or_insert(next)
            } else {
                self.fresh()
            };
            ids.push(id);
            stateful.push(limited);
        }
        let default = format!("default {}", program.default.as_str());
        let next = self.rules.len() as u64;
        ids.push(*self.rules.entry(default).or_insert(next));
        stateful.push(false);
        (ids, stateful)
    }

    /// An id no other rule has.
    fn fresh(&mut self) -> u64 {
        self.unique += 1;
        u64::MAX - self.unique
    }

    /// Writes a canonical form of `cond` (false when it cannot be compared); sets
    /// `limited` when it holds a rate limit.
    fn write(&mut self, cond: &Cond, program: &Program, out: &mut String, limited: &mut bool) -> bool {
        match cond {
            Cond::True => out.push('T'),
            Cond::False => out.push('F'),
            Cond::Proto(proto) => {
                let _ = write!(out, "P{}", proto.name());
            }
            Cond::Not(inner) => {
                out.push('!');
                return self.write(inner, program, out, limited);
            }
            Cond::And(all) | Cond::Or(all) => {
                out.push(if matches!(cond, Cond::And(_)) { '&' } else { '|' });
                out.push('(');
                for operand in all {
                    if !self.write(operand, program, out, limited) {
                        return false;
                    }
                    out.push(',');
                }
                out.push(')');
            }
            Cond::Test(test) => {
                let _ = write!(out, "{:?}{:?}", test.field, test.mask);
                match test.op {
                    TestOp::Cmp(op, value) => {
                        let _ = write!(out, "{}{value}", op.as_str());
                    }
                    TestOp::In(set) | TestOp::NotIn(set) => {
                        let next = self.sets.len();
                        let id = *self.sets.entry(program.set(set).intervals.clone()).or_insert(next);
                        let _ = write!(out, "{}S{id}", if matches!(test.op, TestOp::In(_)) { "in" } else { "out" });
                    }
                    // The same map at run time: compared by name, type and the contents
                    // the interpreter reads.
                    TestOp::InDynamic(set) | TestOp::NotInDynamic(set) => {
                        let set = program.dynamic_set(set);
                        let is_in = matches!(test.op, TestOp::InDynamic(_));
                        let _ = write!(
                            out,
                            "{}D{:?}{:?}{:?}{:?}",
                            if is_in { "in" } else { "out" },
                            set.name,
                            set.element_type,
                            set.kind,
                            set.elements
                        );
                    }
                }
            }
            Cond::Pcap(id) => {
                let next = self.pcaps.len();
                let id = *self.pcaps.entry(program.pcap(*id).pred.clone()).or_insert(next);
                let _ = write!(out, "C{id}");
            }
            Cond::Limit(id) => {
                *limited = true;
                let _ = write!(out, "L{:?}", program.limit(*id));
            }
        }
        true
    }
}

/// An order-preserving pairing of equal elements of `a` and `b`: `(i, j)` pairs with
/// `a[i] == b[j]`, increasing in both.
fn common(a: &[u64], b: &[u64]) -> Vec<(usize, usize)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let mut pairs: Vec<(usize, usize)> = (0..prefix).map(|i| (i, i)).collect();
    let (middle_a, middle_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    pairs.extend(myers(middle_a, middle_b).into_iter().map(|(i, j)| (i + prefix, j + prefix)));
    pairs.extend((0..suffix).map(|s| (a.len() - suffix + s, b.len() - suffix + s)));
    pairs
}

/// A longest common subsequence by Myers' algorithm, or nothing past [`MAX_EDITS`].
fn myers(a: &[u64], b: &[u64]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let max = (n + m).min(MAX_EDITS as isize);
    // rounds[d][k + d]: the furthest x on diagonal k = x - y after d edits.
    let mut rounds: Vec<Vec<isize>> = Vec::new();
    let slide = |mut x: isize, k: isize| {
        while x < n && x - k < m && a[x as usize] == b[(x - k) as usize] {
            x += 1;
        }
        x
    };
    let mut end = None;
    for d in 0..=max {
        let mut round = vec![0isize; (2 * d + 1) as usize];
        for k in (-d..=d).step_by(2) {
            let x = if d == 0 {
                0
            } else {
                let previous = &rounds[(d - 1) as usize];
                let at = |k: isize| previous[(k + d - 1) as usize];
                if k == -d || (k != d && at(k - 1) < at(k + 1)) {
                    at(k + 1)
                } else {
                    at(k - 1) + 1
                }
            };
            let x = slide(x, k);
            round[(k + d) as usize] = x;
            if x >= n && x - k >= m {
                end = Some(d);
            }
        }
        rounds.push(round);
        if end.is_some() {
            break;
        }
    }
    let Some(edits) = end else { return Vec::new() };
    // Walk back from (n, m), collecting the diagonal (equal) steps.
    let mut pairs = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (1..=edits).rev() {
        let k = x - y;
        let previous = &rounds[(d - 1) as usize];
        let at = |k: isize| previous[(k + d - 1) as usize];
        let previous_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) { k + 1 } else { k - 1 };
        let previous_x = at(previous_k);
        let previous_y = previous_x - previous_k;
        // The snake of this round starts after the edit from (previous_x, previous_y).
        let start_x = if previous_k == k + 1 { previous_x } else { previous_x + 1 };
        while x > start_x {
            x -= 1;
            y -= 1;
            pairs.push((x as usize, y as usize));
        }
        x = previous_x;
        y = previous_y;
    }
    while x > 0 && y > 0 {
        x -= 1;
        y -= 1;
        pairs.push((x as usize, y as usize));
    }
    pairs.reverse();
    pairs
}

#[cfg(test)]
mod tests {
    use super::{changed, common, myers};

    fn program(rules: &str) -> crate::program::Program {
        let text = format!("default pass\n{rules}");
        crate::frontend::check_source(&text).0.unwrap_or_else(|| panic!("{text}"))
    }

    #[test]
    fn rules_pair_by_content_and_limits_only_in_the_common_prefix() {
        let limit = "rule l: drop if icmp and rate > 10/s\n";
        let a = "rule a: drop if tcp.dport in { 22, 23 }\n";
        let renamed = "rule other_name: drop if tcp.dport in { 23, 22 }\n";
        let b = "rule b: pass if udp\n";
        let same = changed(&program(&format!("{limit}{a}")), &program(&format!("{limit}{renamed}")));
        assert_eq!((same.old, same.new), (vec![false; 3], vec![false; 3]));
        // `b` before the limit changes which packets reach its bucket.
        let moved = changed(&program(&format!("{a}{limit}")), &program(&format!("{b}{a}{limit}")));
        assert_eq!(moved.old, vec![false, true, false]);
        assert_eq!(moved.new, vec![true, false, true, false]);
    }

    /// The length of a longest common subsequence, by dynamic programming.
    fn lcs(a: &[u64], b: &[u64]) -> usize {
        let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                table[i][j] = if a[i] == b[j] { table[i + 1][j + 1] + 1 } else { table[i + 1][j].max(table[i][j + 1]) };
            }
        }
        table[0][0]
    }

    #[test]
    fn pairs_are_equal_increasing_and_longest() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..300 {
            let a: Vec<u64> = (0..next(14)).map(|_| next(5)).collect();
            let b: Vec<u64> = (0..next(14)).map(|_| next(5)).collect();
            for pairs in [common(&a, &b), myers(&a, &b)] {
                assert!(pairs.iter().all(|&(i, j)| a[i] == b[j]), "{a:?} {b:?} {pairs:?}");
                assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{a:?} {b:?} {pairs:?}");
                assert_eq!(pairs.len(), lcs(&a, &b), "{a:?} {b:?} {pairs:?}");
            }
        }
    }
}
