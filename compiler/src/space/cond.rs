//! Conditions as packet spaces. Input: a [`Cond`] of a checked [`Program`]; output: an
//! [`Approx`], the packets for which the condition surely holds (`under`) and those for
//! which it may hold (`over`), equal when the engine models the condition exactly.
//!
//! Rules that follow the interpreter: an atom is false when its field's header is
//! absent (its cube only has shapes with the field); `not` is the complement within
//! the universe; `NotIn` needs the header. Not modelled exactly (under = nothing, over =
//! the atom's guard): `pcap "…"`, masks over fields wider than 16 bits that are not
//! prefix masks, and any result that grows past `BUDGET` cubes.

use crate::fields::Field;
use crate::hashing::FastMap;
use crate::program::{CmpOp, Cond, Program, Test, TestOp};

use super::ivs::Ivs;
use super::{max_of, shape, storage, Cube, Space, BUDGET};

/// Lower and upper bounds of a condition's packet set.
#[derive(Clone, Debug)]
pub struct Approx {
    /// Packets for which the condition surely holds.
    pub under: Space,
    /// Packets for which it may hold (a superset of `under`).
    pub over: Space,
    /// Whether `under` and `over` are the same set (the condition is modelled exactly).
    pub exact: bool,
}

impl Approx {
    fn exact(space: Space) -> Approx {
        Approx { under: space.clone(), over: space, exact: true }
    }

    fn unknown(over: Space) -> Approx {
        Approx { under: Space::empty(), over, exact: false }
    }
}

/// Turns conditions into spaces, caching the value sets of masked tests (enumerated
/// once per distinct test).
#[derive(Default)]
pub(crate) struct Modeller {
    masked: FastMap<Test, Option<Ivs>>,
}

impl Modeller {
    /// The bounds of `cond`'s packet set.
    pub(crate) fn approx(&mut self, cond: &Cond, program: &Program) -> Approx {
        match cond {
            Cond::True => Approx::exact(Space::everything()),
            Cond::False => Approx::exact(Space::empty()),
            Cond::Proto(proto) => Approx::exact(Space::cube(Cube::shapes_only(shape::with_proto(*proto)))),
            // A rate limit holds for some packets and not for others at run time.
            Cond::Pcap(_) | Cond::Limit(_) => Approx::unknown(Space::everything()),
            Cond::Test(test) => {
                let shapes = shape::with_field(test.field);
                match self.values(test, program) {
                    Some(values) if values.is_empty() => Approx::exact(Space::empty()),
                    Some(values) => Approx::exact(Space::cube(Cube::new(shapes, vec![(storage(test.field), values)]))),
                    None => Approx::unknown(Space::cube(Cube::shapes_only(shapes))),
                }
            }
            Cond::Not(inner) => {
                let inner = self.approx(inner, program);
                let universe = Space::everything();
                let under = universe.minus(&inner.over, BUDGET);
                let over = if inner.exact { under.clone() } else { universe.minus(&inner.under, BUDGET) };
                match (under, over) {
                    (Some(under), Some(over)) => Approx { under, over, exact: inner.exact },
                    (under, over) => {
                        Approx { under: under.unwrap_or_default(), over: over.unwrap_or(universe), exact: false }
                    }
                }
            }
            Cond::And(all) => {
                let mut result = Approx::exact(Space::everything());
                for operand in all {
                    let next = self.approx(operand, program);
                    let under = result.under.intersect(&next.under);
                    let over = result.over.intersect(&next.over);
                    let exact = result.exact && next.exact && under.is_some() && over.is_some();
                    let over = over.unwrap_or(if next.over.cubes.len() < result.over.cubes.len() {
                        next.over
                    } else {
                        result.over
                    });
                    let under = under.unwrap_or_default();
                    result = Approx { over: if exact { under.clone() } else { over }, under, exact };
                }
                result
            }
            Cond::Or(any) => {
                let mut result = Approx::exact(Space::empty());
                for operand in any {
                    let next = self.approx(operand, program);
                    let exact = result.exact && next.exact;
                    let mut over = result.over.union(next.over);
                    let mut under = result.under.union(next.under);
                    let mut exact = exact;
                    if over.cubes.len() > BUDGET {
                        over = Space::everything();
                        exact = false;
                    }
                    if under.cubes.len() > BUDGET {
                        under = Space::empty();
                        exact = false;
                    }
                    result = Approx { under, over, exact };
                }
                result
            }
        }
    }

    /// The stored-field values for which `test` holds (header present), or `None` when
    /// the engine cannot model the test exactly.
    fn values(&mut self, test: &Test, program: &Program) -> Option<Ivs> {
        if matches!(test.op, TestOp::InDynamic(_) | TestOp::NotInDynamic(_)) {
            return None; // contents change at run time: unknown
        }
        let max = max_of(test.field);
        let mask = test.mask.map(|mask| mask & max).filter(|&mask| mask != max);
        match mask {
            None => Some(to_storage(test.field, op_values(test.op, max, program))),
            Some(mask) => {
                if let Some(cached) = self.masked.get(test) {
                    return cached.clone();
                }
                let values = masked_values(test, mask, max, program);
                self.masked.insert(*test, values.clone());
                values
            }
        }
    }
}

/// The field values (of a field up to `max`) for which `op` holds, mask already applied.
fn op_values(op: TestOp, max: u128, program: &Program) -> Ivs {
    let full = Ivs::full(max);
    match op {
        TestOp::Cmp(op, value) => match op {
            CmpOp::Eq => Ivs::range(value, value.min(max)).intersect(&full),
            CmpOp::Ne => full.minus(&Ivs::range(value, value)),
            CmpOp::Lt => value.checked_sub(1).map_or(Ivs(Vec::new()), |high| Ivs::range(0, high.min(max))),
            CmpOp::Le => Ivs::range(0, value.min(max)),
            CmpOp::Gt => value.checked_add(1).map_or(Ivs(Vec::new()), |low| Ivs::range(low, max)),
            CmpOp::Ge => Ivs::range(value, max),
        },
        TestOp::In(set) => Ivs(program.set(set).intervals.clone()).intersect(&full),
        TestOp::NotIn(set) => full.minus(&Ivs(program.set(set).intervals.clone())),
        // Never asked (see `values`); every value may be a member.
        TestOp::InDynamic(_) | TestOp::NotInDynamic(_) => full,
    }
}

/// Values of a derived field moved to the field that stores it.
fn to_storage(field: Field, values: Ivs) -> Ivs {
    match field {
        Field::Ipv4Dscp | Field::Ipv6Dscp => values.widen(4),
        Field::Ipv6Len => values.shift_down(40).intersect(&Ivs::full(0xffff)),
        _ => values,
    }
}

/// The stored values of a masked test: enumerated for fields of up to 16 stored bits,
/// by monotonicity for prefix masks, else unknown.
fn masked_values(test: &Test, mask: u128, max: u128, program: &Program) -> Option<Ivs> {
    let stored = storage(test.field);
    let stored_max = max_of(stored);
    let holds = |value: u128| match test.op {
        TestOp::Cmp(op, constant) => op.holds(value & mask, constant),
        TestOp::In(set) => program.set(set).contains(value & mask),
        TestOp::NotIn(set) => !program.set(set).contains(value & mask),
        TestOp::InDynamic(set) => program.dynamic_set(set).contains(test.field.kind(), value & mask),
        TestOp::NotInDynamic(set) => !program.dynamic_set(set).contains(test.field.kind(), value & mask),
    };
    if stored_max <= 0xffff {
        let field_of = |stored_value: u128| match test.field {
            Field::Ipv4Dscp | Field::Ipv6Dscp => stored_value >> 2,
            Field::Ipv6Len => stored_value + 40,
            _ => stored_value,
        };
        let mut intervals: Vec<(u128, u128)> = Vec::new();
        for value in 0..=stored_max {
            if holds(field_of(value)) {
                match intervals.last_mut() {
                    Some(last) if last.1 + 1 == value => last.1 = value,
                    _ => intervals.push((value, value)),
                }
            }
        }
        return Some(Ivs(intervals));
    }
    // A prefix mask (ones then zeros): `value & mask` rounds down to a multiple of the
    // block size and never decreases, so each interval of allowed masked values is an
    // interval of values.
    let block = (!mask & max).wrapping_add(1);
    let is_prefix = stored == test.field && block.is_power_of_two() && (mask | (block - 1)) == max;
    if !is_prefix {
        return None;
    }
    let allowed = op_values(test.op, max, program);
    let intervals = allowed
        .0
        .iter()
        .filter_map(|&(low, high)| {
            let first = low.div_ceil(block).checked_mul(block)?;
            let last = (high / block) * block;
            (first <= last).then(|| (first, last + (block - 1)))
        })
        .collect();
    Some(Ivs::from_unsorted(intervals))
}
