//! Sets of unsigned values as sorted, disjoint, non-adjacent inclusive intervals: one
//! dimension of a [`super::Cube`]. Input and output: interval lists; no allocation
//! beyond the result.

/// A set of values: sorted, disjoint, non-touching inclusive `(low, high)` intervals.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ivs(pub Vec<(u128, u128)>);

impl Ivs {
    /// Every value from 0 to `max`.
    pub fn full(max: u128) -> Ivs {
        Ivs(vec![(0, max)])
    }

    /// One interval (empty when `low > high`).
    pub fn range(low: u128, high: u128) -> Ivs {
        if low > high {
            Ivs(Vec::new())
        } else {
            Ivs(vec![(low, high)])
        }
    }

    /// Normalises arbitrary intervals (sorts, merges overlapping and touching ones).
    pub(crate) fn from_unsorted(mut intervals: Vec<(u128, u128)>) -> Ivs {
        intervals.retain(|(low, high)| low <= high);
        Ivs(crate::program::merge_intervals(intervals))
    }

    /// No value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this is every value from 0 to `max`.
    pub(crate) fn is_full(&self, max: u128) -> bool {
        self.0.len() == 1 && self.0[0] == (0, max)
    }

    /// The smallest value, if any.
    pub fn first(&self) -> Option<u128> {
        self.0.first().map(|&(low, _)| low)
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: u128) -> bool {
        let after = self.0.partition_point(|&(low, _)| low <= value);
        after > 0 && value <= self.0[after - 1].1
    }

    /// Values in both.
    pub(crate) fn intersect(&self, other: &Ivs) -> Ivs {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.0.len() && j < other.0.len() {
            let (a_low, a_high) = self.0[i];
            let (b_low, b_high) = other.0[j];
            let low = a_low.max(b_low);
            let high = a_high.min(b_high);
            if low <= high {
                out.push((low, high));
            }
            if a_high < b_high {
                i += 1;
            } else {
                j += 1;
            }
        }
        Ivs(out)
    }

    /// Whether the two sets share a value (no allocation).
    pub fn meets(&self, other: &Ivs) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() && j < other.0.len() {
            let (a_low, a_high) = self.0[i];
            let (b_low, b_high) = other.0[j];
            if a_low.max(b_low) <= a_high.min(b_high) {
                return true;
            }
            if a_high < b_high {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// Values in `self` but not in `other`.
    pub fn minus(&self, other: &Ivs) -> Ivs {
        let mut out = Vec::new();
        let mut j = 0;
        for &(low, high) in &self.0 {
            let mut cursor = low;
            let mut open = true;
            while j < other.0.len() && other.0[j].1 < cursor {
                j += 1;
            }
            let mut k = j;
            while k < other.0.len() && other.0[k].0 <= high {
                let (b_low, b_high) = other.0[k];
                if b_low > cursor {
                    out.push((cursor, b_low - 1));
                }
                if b_high >= high {
                    open = false;
                    break;
                }
                cursor = b_high + 1;
                k += 1;
            }
            if open {
                out.push((cursor, high));
            }
        }
        Ivs(out)
    }

    /// Whether every value of `other` is in `self`.
    pub fn covers(&self, other: &Ivs) -> bool {
        other.minus(self).is_empty()
    }

    /// Each value `v` mapped to the values `v * factor ..= v * factor + factor - 1`
    /// (a field read from the high bits of a wider one: `dscp` inside `tos`).
    pub(crate) fn widen(&self, factor: u128) -> Ivs {
        Ivs(self.0.iter().map(|&(low, high)| (low * factor, high * factor + factor - 1)).collect())
    }

    /// Each value shifted down by `offset`, dropping values below it.
    pub(crate) fn shift_down(&self, offset: u128) -> Ivs {
        Ivs(self
            .0
            .iter()
            .filter(|&&(_, high)| high >= offset)
            .map(|&(low, high)| (low.max(offset) - offset, high - offset))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::Ivs;

    fn set(pairs: &[(u128, u128)]) -> Ivs {
        Ivs::from_unsorted(pairs.to_vec())
    }

    #[test]
    fn minus_and_intersect_agree_with_membership() {
        let a = set(&[(0, 10), (20, 30), (40, 40)]);
        let b = set(&[(5, 22), (30, 45)]);
        let minus = a.minus(&b);
        let both = a.intersect(&b);
        for v in 0..60 {
            assert_eq!(minus.contains(v), a.contains(v) && !b.contains(v), "minus {v}");
            assert_eq!(both.contains(v), a.contains(v) && b.contains(v), "intersect {v}");
        }
        assert_eq!(minus, set(&[(0, 4), (23, 29)]));
        assert!(a.meets(&b));
        assert!(!set(&[(0, 4)]).meets(&set(&[(5, 9)])));
        assert!(set(&[(0, 100)]).covers(&a));
        assert_eq!(Ivs::full(u128::MAX).minus(&set(&[(0, u128::MAX)])), Ivs(vec![]));
        assert_eq!(set(&[(0, u128::MAX)]).minus(&set(&[(5, 5)])), set(&[(0, 4), (6, u128::MAX)]));
    }
}
