//! What libpcap's program carries from one test to the next, along the short-circuit
//! evaluation of an expression: whether the last `geneve` surely matched (only then
//! are the offsets it computes at run time written) and the accumulator `A` (which
//! `byte N & V` and `byte N | V` test: `gen_byteop` emits `and #V` / `or #V` on
//! whatever value the previous test left, not a load of byte N).
//!
//! In libpcap's unoptimized program `A` starts at 0, a comparison leaves its left value
//! in `A` (masked as tested, unmasked for `jset`) — except an arithmetic relation's `=` or
//! `!=`, which `gen_relation` compiles as `sub x; jeq #0` and so leaves `left - right`
//! ([`relation_accumulator`]) — `not` changes nothing, a matched
//! `geneve` leaves 0 and a constant test leaves 0 (true) or 1 (false). pfc's test tree
//! is built in libpcap's order, so `A` when a test exits is the left value of the last
//! comparison evaluated: an [`Acc`], chosen by re-evaluating tests that were evaluated
//! before on the same path (no new loads, no new rejections).

use crate::pcap::ast::{BoolOp, Expr, Form, Operand, TermKind};
use crate::program::pcap::{Alu, Pred, TestOp, Val};

/// Most tests and values an [`Acc`] may hold: past it the accumulator is
/// [`Acc::Unknown`] (and a `byte N &`/`|` test of it refused), so that tests re-testing
/// earlier ones cannot grow without bound.
const MAX_ACC_NODES: usize = 4000;

/// libpcap's accumulator where a test exits.
#[derive(Clone, Debug)]
pub(super) enum Acc {
    /// This value.
    Val(Val),
    /// The first if the test (evaluated before on every path here) holds, else the second.
    Ite(Pred, Box<Acc>, Box<Acc>),
    /// Past [`MAX_ACC_NODES`].
    Unknown,
}

/// The nodes of `pred`, counted up to `limit` (then `limit`).
fn pred_nodes(pred: &Pred, limit: usize) -> usize {
    fn val(value: &Val, count: &mut usize, limit: usize) {
        *count += 1;
        if *count >= limit {
            return;
        }
        match value {
            Val::Const(_) | Val::Len | Val::Protochain { .. } => {}
            Val::Load { index, .. } | Val::Neg(index) => val(index, count, limit),
            Val::Alu(_, left, right) => {
                val(left, count, limit);
                val(right, count, limit);
            }
        }
    }
    fn walk(pred: &Pred, count: &mut usize, limit: usize) {
        *count += 1;
        if *count >= limit {
            return;
        }
        match pred {
            Pred::Const(_) => {}
            Pred::Not(inner) => walk(inner, count, limit),
            Pred::And(items) | Pred::Or(items) => items.iter().for_each(|item| walk(item, count, limit)),
            Pred::Test { left, right, .. } => {
                val(left, count, limit);
                val(right, count, limit);
            }
        }
    }
    let mut count = 0;
    walk(pred, &mut count, limit);
    count.min(limit)
}

impl Acc {
    /// The nodes it holds, counted up to [`MAX_ACC_NODES`].
    fn nodes(&self) -> usize {
        match self {
            Acc::Val(value) => pred_nodes(&Pred::test(value.clone(), TestOp::Eq, 0), MAX_ACC_NODES),
            Acc::Ite(test, yes, no) => (pred_nodes(test, MAX_ACC_NODES) + yes.nodes() + no.nodes()).min(MAX_ACC_NODES),
            Acc::Unknown => MAX_ACC_NODES,
        }
    }

    /// `if test { yes } else { no }`, or [`Acc::Unknown`] past the bound.
    fn ite(test: &Pred, yes: Acc, no: Acc) -> Acc {
        if matches!(yes, Acc::Unknown) || matches!(no, Acc::Unknown) {
            return Acc::Unknown;
        }
        let bound = MAX_ACC_NODES.saturating_sub(yes.nodes() + no.nodes());
        if pred_nodes(test, MAX_ACC_NODES) >= bound {
            return Acc::Unknown;
        }
        Acc::Ite(test.clone(), Box::new(yes), Box::new(no))
    }

    /// `A OP k` on every way.
    pub(super) fn map(&self, op: Alu, k: u32) -> Acc {
        match self {
            Acc::Val(value) => Acc::Val(Val::Alu(op, Box::new(value.clone()), Box::new(Val::Const(k)))),
            Acc::Ite(test, yes, no) => Acc::Ite(test.clone(), Box::new(yes.map(op, k)), Box::new(no.map(op, k))),
            Acc::Unknown => Acc::Unknown,
        }
    }

    /// The test `A != 0` (`gen_byteop`: the `jeq #0` after `and`/`or`, negated); `None`
    /// for [`Acc::Unknown`].
    pub(super) fn nonzero(&self) -> Option<Pred> {
        Some(match self {
            Acc::Val(value) => Pred::negation(Pred::test(value.clone(), TestOp::Eq, 0)),
            Acc::Ite(test, yes, no) => Pred::Or(vec![
                Pred::And(vec![test.clone(), yes.nonzero()?]),
                Pred::And(vec![Pred::negation(test.clone()), no.nonzero()?]),
            ]),
            Acc::Unknown => return None,
        })
    }

    /// The accumulator when `pred` exits true (`yes`) or false.
    pub(super) fn of(pred: &Pred, yes: bool) -> Acc {
        match pred {
            Pred::Const(holds) => Acc::Val(Val::Const(u32::from(!holds))),
            Pred::Not(inner) => Acc::of(inner, !yes),
            Pred::Test { left, .. } => Acc::Val(left.clone()),
            Pred::And(items) | Pred::Or(items) => {
                let Some((last, first)) = items.split_last() else {
                    return Acc::Val(Val::Const(0));
                };
                // An `and` leaves true through its last item, false through the first
                // that fails; an `or` the other way round.
                if yes == matches!(pred, Pred::And(_)) {
                    return Acc::of(last, yes);
                }
                first.iter().rev().fold(Acc::of(last, yes), |later, item| {
                    let here = Acc::of(item, yes);
                    let (holds, fails) = if yes { (here, later) } else { (later, here) };
                    Acc::ite(item, holds, fails)
                })
            }
        }
    }
}

/// The state after a test, on its two ways out.
#[derive(Clone, Debug)]
pub(super) struct Exits {
    pub yes: Flow,
    pub no: Flow,
}

/// The state where a test starts.
#[derive(Clone, Debug)]
pub(super) struct Flow {
    /// The last `geneve` surely matched.
    pub geneve: bool,
    /// The accumulator (tracked only when the expression has `byte N &`/`|`).
    pub acc: Acc,
}

impl Flow {
    /// The start of the program.
    pub(super) fn start() -> Flow {
        Flow { geneve: false, acc: Acc::Val(Val::Const(0)) }
    }

    /// Leaving a test `pred` that started here and changes no `geneve` state.
    pub(super) fn through(&self, pred: &Pred, track: bool) -> Exits {
        let acc = |yes| if track { Acc::of(pred, yes) } else { Acc::Val(Val::Const(0)) };
        Exits { yes: Flow { geneve: self.geneve, acc: acc(true) }, no: Flow { geneve: self.geneve, acc: acc(false) } }
    }
}

impl Exits {
    /// After `not`.
    pub(super) fn swapped(self) -> Exits {
        Exits { yes: self.no, no: self.yes }
    }

    /// After `left OP right`, where `left` left by `self` and `right` (started where
    /// `left` left towards it) by `after`.
    pub(super) fn combined(self, op: BoolOp, left: &Pred, after: Exits, track: bool) -> Exits {
        let join = |holds: Flow, fails: Flow, geneve: bool| Flow {
            geneve,
            acc: if track { Acc::ite(left, holds.acc, fails.acc) } else { Acc::Val(Val::Const(0)) },
        };
        match op {
            BoolOp::And => {
                let geneve = self.no.geneve && after.no.geneve;
                Exits { yes: after.yes, no: join(after.no, self.no, geneve) }
            }
            BoolOp::Or => {
                let geneve = self.yes.geneve && after.yes.geneve;
                Exits { yes: join(self.yes, after.yes, geneve), no: after.no }
            }
        }
    }
}

/// Whether the expression has `byte N & V` or `byte N | V` (whose tests need `A`).
pub(super) fn tests_accumulator(expr: &Expr) -> bool {
    std::iter::once(&expr.first)
        .chain(expr.rest.iter().filter_map(|(_, operand)| match operand {
            Operand::Term(term) => Some(term),
            Operand::Id(_) => None,
        }))
        .any(|term| match &term.kind {
            TermKind::Paren(inner) => tests_accumulator(inner),
            TermKind::Primitive(primitive) => matches!(primitive.form, Form::Byte(_, '&' | '|', _)),
            TermKind::Relation { .. } => false,
        })
}

/// A relation's test as libpcap leaves the accumulator: its `=` and `!=` comparison (the
/// last item; `!=` is its negation) is `left - right == 0` (`gen_relation`: `sub x;
/// jeq #0`), its other comparisons and the protocol checks before it as they are. Only
/// for [`Flow::through`]: the test itself is emitted as written.
pub(super) fn relation_accumulator(pred: &Pred) -> Pred {
    match pred {
        Pred::Test { left, op: TestOp::Eq, right } => Pred::Test {
            left: Val::Alu(Alu::Sub, Box::new(left.clone()), Box::new(right.clone())),
            op: TestOp::Eq,
            right: Val::Const(0),
        },
        Pred::Not(inner) => Pred::Not(Box::new(relation_accumulator(inner))),
        Pred::And(items) => {
            let mut items = items.clone();
            if let Some(last) = items.last_mut() {
                *last = relation_accumulator(last);
            }
            Pred::And(items)
        }
        other => other.clone(),
    }
}
