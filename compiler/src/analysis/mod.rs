//! Rule-set analysis on the packet-space engine ([`crate::space`]). Input: checked
//! [`Program`]s; output: facts about them with concrete witness packets: which rules
//! never decide a packet and what covers them ([`lints`]) and which packets two rule
//! sets treat differently ([`diff`]), and why one packet gets its verdict ([`explain`]).
//!
//! Soundness: a claim about all packets ("rule 3 never decides", "the two sets agree")
//! is made only from the engine's bounds; a claim that some packet exists comes with a
//! witness the interpreter confirmed. When neither is possible the answer is "unknown".

pub mod cases;
pub mod diff;
pub mod explain;
pub mod lints;
pub mod region;
pub mod replay;

use crate::program::{Program, Verdict};
use crate::space::cond::Modeller;
use crate::space::{Space, BUDGET};

/// Every rule of a program as packet spaces.
pub struct Model<'p> {
    /// The program.
    pub program: &'p Program,
    /// Per rule: packets it surely matches.
    pub under: Vec<Space>,
    /// Per rule: packets it may match.
    pub over: Vec<Space>,
    /// Per rule: whether its condition is modelled exactly.
    pub exact: Vec<bool>,
}

/// The most boxes a lint's subtraction may hold before it gives up on the rule.
const LINT_BUDGET: usize = 256;

/// Where a packet's verdict comes from: a rule index or the default.
pub type Decider = Option<usize>;

/// The packets one rule may decide, and the earlier rules that took the rest of it.
pub struct Decides {
    /// Packets the rule may decide (an over-approximation), `None` past the budget.
    pub space: Option<Space>,
    /// Earlier rules that surely match some of the rule's packets, in order.
    pub covering: Vec<usize>,
}

impl<'p> Model<'p> {
    /// Models every rule of `program`.
    pub fn new(program: &'p Program) -> Model<'p> {
        let mut modeller = Modeller::default();
        let mut under = Vec::with_capacity(program.rules.len());
        let mut over = Vec::with_capacity(program.rules.len());
        let mut exact = Vec::with_capacity(program.rules.len());
        for rule in &program.rules {
            let approx = modeller.approx(&rule.condition, program);
            under.push(approx.under);
            over.push(approx.over);
            exact.push(approx.exact);
        }
        Model { program, under, over, exact }
    }

    /// Whether every rule is modelled exactly.
    pub fn all_exact(&self) -> bool {
        self.exact.iter().all(|&exact| exact)
    }

    /// The verdict of a decider.
    pub fn verdict(&self, decider: Decider) -> Verdict {
        decider.map_or(self.program.default, |index| self.program.rules[index].verdict)
    }

    /// The packets `rule` may decide: what it may match minus what earlier rules surely
    /// match, and which earlier rules took part.
    pub fn decides(&self, rule: usize) -> Decides {
        self.decides_from(self.over[rule].clone(), rule)
    }

    /// `start` minus what rules before `before` surely match.
    pub fn decides_from(&self, start: Space, before: usize) -> Decides {
        self.decides_within(start, before, BUDGET)
    }

    /// [`Model::decides_from`] giving up past `budget` cubes. Boxes an earlier rule
    /// covers whole are dropped first, which keeps the rest from splitting into pieces
    /// that a later rule would have taken whole anyway.
    pub fn decides_within(&self, start: Space, before: usize, budget: usize) -> Decides {
        let mut rest = start;
        let mut covering = Vec::new();
        for (earlier, under) in self.under[..before].iter().enumerate() {
            let count = rest.cubes.len();
            rest.cubes.retain(|mine| !under.cubes.iter().any(|theirs| theirs.covers(mine)));
            if rest.cubes.len() < count {
                covering.push(earlier);
            }
            if rest.cubes.is_empty() {
                return Decides { space: Some(rest), covering };
            }
        }
        if !rest.is_possible() {
            return Decides { space: Some(rest), covering };
        }
        for (earlier, under) in self.under[..before].iter().enumerate() {
            if !rest.is_possible() {
                break;
            }
            let mut touched = false;
            for cube in &under.cubes {
                if !rest.meets_cube(cube) {
                    continue;
                }
                touched = true;
                match rest.minus_cube(cube, budget) {
                    Some(next) => rest = next,
                    None => return Decides { space: None, covering },
                }
            }
            if touched && !covering.contains(&earlier) {
                covering.push(earlier);
            }
        }
        covering.sort_unstable();
        Decides { space: Some(rest), covering }
    }

    /// Whether `rule` never decides a packet ([`guided_cover`] by the earlier rules):
    /// `Some(covering rules)` when it never does; `None` when it may, or past the budget.
    pub fn never_decides(&self, rule: usize) -> Option<Vec<usize>> {
        match guided_cover(self.over[rule].clone(), &[&self.under[..rule]], LINT_BUDGET) {
            Cover::Covered(takers) => Some(takers.into_iter().map(|(_, index)| index).collect()),
            Cover::Uncovered | Cover::GaveUp => None,
        }
    }

    /// The packets the default may decide (no rule surely matches them).
    pub fn default_decides(&self) -> Option<Space> {
        self.decides_from(Space::everything(), self.program.rules.len()).space
    }
}

/// The answer of [`guided_cover`].
pub enum Cover {
    /// Every point is taken; the `(list, index)` of the spaces that took some, sorted.
    Covered(Vec<(usize, usize)>),
    /// Some point of the universe is taken by none of them.
    Uncovered,
    /// The boxes grew past the budget: no answer.
    GaveUp,
}

/// Whether the spaces of `lists` together surely hold every point of `start` (within
/// the universe), by guided subtraction: take a corner of what is left; if no space
/// holds it, the answer is no (no more work); else subtract the first space holding it
/// and repeat. Only spaces that take real points are subtracted, so the boxes stay few.
pub fn guided_cover(start: Space, lists: &[&[Space]], budget: usize) -> Cover {
    let mut rest = start;
    let mut takers: Vec<(usize, usize)> = Vec::new();
    loop {
        let cubes = rest.in_universe();
        if cubes.is_empty() {
            takers.sort_unstable();
            return Cover::Covered(takers);
        }
        // The first corner of what is left: no space holds it, or the first that does
        // is subtracted.
        let Some(point) = cubes[0].corners().into_iter().next() else { return Cover::GaveUp };
        let taker = lists.iter().enumerate().find_map(|(list, spaces)| {
            spaces.iter().position(|space| space.contains(&point)).map(|index| (list, index))
        });
        let Some((list, index)) = taker else { return Cover::Uncovered };
        match rest.minus(&lists[list][index], budget) {
            Some(next) => rest = next,
            None => return Cover::GaveUp,
        }
        takers.push((list, index));
    }
}

/// `start` minus every space of `lists` that meets it; `None` past `budget` boxes.
pub fn subtract_all(start: Space, lists: &[&[Space]], budget: usize) -> Option<Space> {
    let mut rest = start;
    for spaces in lists {
        for space in spaces.iter() {
            if !rest.is_possible() {
                return Some(rest);
            }
            if rest.meets(space) {
                rest = rest.minus(space, budget)?;
            }
        }
    }
    Some(rest)
}

/// The rule (or default) that decides `packet`, by the interpreter.
pub fn decider(program: &Program, packet: &[u8]) -> (Verdict, Decider) {
    let outcome = crate::eval::evaluate(program, packet);
    (outcome.verdict, outcome.rule)
}

/// A rule's name for messages, or `default`.
pub fn name_of(program: &Program, decider: Decider) -> &str {
    decider.map_or("default", |index| program.rules[index].name.as_str())
}
