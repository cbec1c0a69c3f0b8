//! What libpcap's program carries from one test to the next, along the short-circuit
//! evaluation of an expression: whether the last `geneve` surely matched (only then
//! are the offsets it computes at run time written) and the accumulator `A` (which
//! `byte N & V` and `byte N | V` test: `gen_byteop` emits `and #V` / `or #V` on
//! whatever value the previous test left, not a load of byte N).
//!
//! In libpcap's unoptimized program `A` starts at 0, a comparison leaves its left value
//! in `A` (masked as tested, unmasked for `jset`), `not` changes nothing, a matched
//! `geneve` leaves 0 and a constant test leaves 0 (true) or 1 (false). pfc's test tree
//! is built in libpcap's order, so `A` when a test exits is the left value of the last
//! comparison evaluated: an [`Acc`], chosen by re-evaluating tests that were evaluated
//! before on the same path (no new loads, no new rejections).

use crate::pcap::ast::{BoolOp, Expr, Form, Operand, TermKind};
use crate::program::pcap::{Alu, Pred, TestOp, Val};

/// libpcap's accumulator where a test exits.
#[derive(Clone, Debug)]
pub(super) enum Acc {
    /// This value.
    Val(Val),
    /// The first if the test (evaluated before on every path here) holds, else the second.
    Ite(Pred, Box<Acc>, Box<Acc>),
}

impl Acc {
    /// `A OP k` on every way.
    pub(super) fn map(&self, op: Alu, k: u32) -> Acc {
        match self {
            Acc::Val(value) => Acc::Val(Val::Alu(op, Box::new(value.clone()), Box::new(Val::Const(k)))),
            Acc::Ite(test, yes, no) => Acc::Ite(test.clone(), Box::new(yes.map(op, k)), Box::new(no.map(op, k))),
        }
    }

    /// The test `A != 0` (`gen_byteop`: the `jeq #0` after `and`/`or`, negated).
    pub(super) fn nonzero(&self) -> Pred {
        match self {
            Acc::Val(value) => Pred::negation(Pred::test(value.clone(), TestOp::Eq, 0)),
            Acc::Ite(test, yes, no) => Pred::Or(vec![
                Pred::And(vec![test.clone(), yes.nonzero()]),
                Pred::And(vec![Pred::negation(test.clone()), no.nonzero()]),
            ]),
        }
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
                    let here = Box::new(Acc::of(item, yes));
                    let (holds, fails) = if yes { (here, Box::new(later)) } else { (Box::new(later), here) };
                    Acc::Ite(item.clone(), holds, fails)
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
            acc: if track {
                Acc::Ite(left.clone(), Box::new(holds.acc), Box::new(fails.acc))
            } else {
                Acc::Val(Val::Const(0))
            },
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
