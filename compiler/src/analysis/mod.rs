//! Rule-set analysis on the packet-space engine ([`crate::space`]). Input: checked
//! [`Program`]s; output: facts about them with concrete witness packets: which rules
//! never decide a packet and what covers them ([`lints`]) and which packets two rule
//! sets treat differently ([`diff`]), and why one packet gets its verdict ([`explain`]).
//!
//! Soundness: a claim about all packets ("rule 3 never decides", "the two sets agree")
//! is made only from the engine's bounds; a claim that some packet exists comes with a
//! witness the interpreter confirmed. When neither is possible the answer is "unknown".

pub(crate) mod align;
pub mod cases;
pub mod diff;
pub mod explain;
pub mod lints;
pub(crate) mod region;
pub mod replay;

use crate::program::{Program, Verdict};
use crate::space::cond::Modeller;
use crate::space::{Index, Space, BUDGET};

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
    /// An index over `under`: which rules may hold a point or meet a space.
    pub under_index: Index,
    /// An index over `over`.
    pub over_index: Index,
}

/// The most boxes a lint's subtraction may hold before it gives up on the rule.
const LINT_BUDGET: usize = 256;

/// Where a packet's verdict comes from: a rule index or the default.
pub(crate) type Decider = Option<usize>;

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
        let under_index = Index::new(&under);
        let over_index = Index::new(&over);
        Model { program, under, over, exact, under_index, over_index }
    }

    /// The rules before `before` as a [`Scope`] of surely-matched packets.
    pub(crate) fn under_before(&self, before: usize) -> Scope<'_> {
        Scope { spaces: &self.under, index: &self.under_index, below: before }
    }

    /// Whether every rule is modelled exactly.
    pub(crate) fn all_exact(&self) -> bool {
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
    pub(crate) fn decides_within(&self, start: Space, before: usize, budget: usize) -> Decides {
        // Only earlier rules that meet `start` can take any of it.
        let candidates = self.under_index.meeting(&self.under, &start, before);
        let mut rest = start;
        let mut covering = Vec::new();
        for &earlier in &candidates {
            let under = &self.under[earlier];
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
        for &earlier in &candidates {
            if !rest.is_possible() {
                break;
            }
            let mut touched = false;
            for cube in &self.under[earlier].cubes {
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
    pub(crate) fn never_decides(&self, rule: usize) -> Option<Vec<usize>> {
        match guided_cover(self.over[rule].clone(), &[self.under_before(rule)], LINT_BUDGET) {
            Cover::Covered(takers) => Some(takers.into_iter().map(|(_, index)| index).collect()),
            Cover::Uncovered | Cover::GaveUp => None,
        }
    }

    /// The packets the default may decide (no rule surely matches them).
    pub(crate) fn default_decides(&self) -> Option<Space> {
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

/// The first `below` spaces of a list, with the list's index.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// Every space of the list.
    pub spaces: &'a [Space],
    /// Its index.
    pub index: &'a Index,
    /// Only spaces at positions below this count.
    pub below: usize,
}

impl Scope<'_> {
    /// The first space of the scope holding `point`.
    fn first_containing(&self, point: &crate::space::Point) -> Option<usize> {
        self.index.first_containing(self.spaces, point, self.below)
    }
}

/// Whether the spaces of `scopes` together surely hold every point of `start` (within
/// the universe), by guided subtraction: take a corner of what is left; if no space
/// holds it, the answer is no (no more work); else subtract the first space holding it
/// (the first scope first) and repeat. Only spaces that take real points are
/// subtracted, so the boxes stay few; the index finds them without a scan.
pub fn guided_cover(start: Space, scopes: &[Scope<'_>], budget: usize) -> Cover {
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
        let taker = scopes
            .iter()
            .enumerate()
            .find_map(|(list, scope)| scope.first_containing(&point).map(|index| (list, index)));
        let Some((list, index)) = taker else { return Cover::Uncovered };
        match rest.minus(&scopes[list].spaces[index], budget) {
            Some(next) => rest = next,
            None => return Cover::GaveUp,
        }
        takers.push((list, index));
    }
}

/// `start` minus every space of `scopes` that meets it, scope by scope and in order;
/// `None` past `budget` boxes.
pub(crate) fn subtract_all(start: Space, scopes: &[Scope<'_>], budget: usize) -> Option<Space> {
    let mut rest = start;
    for scope in scopes {
        // Only spaces meeting `start` can meet what is left of it.
        for index in scope.index.meeting(scope.spaces, &rest, scope.below) {
            if !rest.is_possible() {
                return Some(rest);
            }
            let space = &scope.spaces[index];
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
pub(crate) fn name_of(program: &Program, decider: Decider) -> &str {
    decider.map_or("default", |index| program.rules[index].name.as_str())
}
