//! `pfc diff`: two checked programs in, the packets they decide differently out, as
//! regions (which rule decides them on each side, the region as a condition, one
//! witness confirmed by the interpreter on both sides).
//!
//! A region is the packets old rule `i` and new rule `j` decide, for verdicts that
//! differ: `decides_old(i) ∩ decides_new(j)` (the default counts as a last rule that
//! matches everything). Only pairs with different verdicts are computed, so rules that
//! were renamed or reordered without changing a verdict give nothing. "Equivalent" is
//! claimed only when every such pair is empty in the engine's over-approximation.

use std::fmt::Write as _;

use super::{guided_cover, name_of, region, subtract_all, Cover, Decider, Model};
use crate::eval::evaluate;
use crate::program::{Program, Verdict};
use crate::space::witness::Witness;
use crate::space::{witness, Space, BUDGET};

/// One region of packets whose verdict changes.
#[derive(Clone, Debug)]
pub struct Region {
    /// The old rule deciding it (`None`: the default).
    pub old: Decider,
    /// Its old verdict.
    pub old_verdict: Verdict,
    /// The new rule deciding it.
    pub new: Decider,
    /// Its new verdict.
    pub new_verdict: Verdict,
    /// The packets, as boxes.
    pub space: Space,
    /// The packets, as a condition.
    pub condition: String,
    /// A packet of the region that the interpreter confirms on both sides; `None` when
    /// none was found (the region may be empty: "unknown").
    pub witness: Option<Witness>,
}

/// The result of a diff.
#[derive(Clone, Debug)]
pub struct Diff {
    /// Regions whose verdict changes (and unconfirmed ones).
    pub regions: Vec<Region>,
    /// Whether both programs were modelled exactly.
    pub exact: bool,
}

impl Diff {
    /// Every packet gets the same verdict from both programs.
    pub fn equivalent(&self) -> bool {
        self.regions.is_empty()
    }

    /// Some packet is confirmed to get different verdicts.
    pub fn differs(&self) -> bool {
        self.regions.iter().any(|region| region.witness.is_some())
    }
}

/// Compares two programs.
pub fn diff(old: &Program, new: &Program) -> Diff {
    let old_model = Model::new(old);
    let new_model = Model::new(new);
    let everything = Space::everything();
    // The default is a last rule that matches everything.
    let old_rules: Vec<(Decider, &Space)> =
        (0..old.rules.len()).map(|i| (Some(i), &old_model.over[i])).chain([(None, &everything)]).collect();
    let new_rules: Vec<(Decider, &Space)> =
        (0..new.rules.len()).map(|j| (Some(j), &new_model.over[j])).chain([(None, &everything)]).collect();
    let mut regions = Vec::new();
    for &(old_rule, old_space) in &old_rules {
        let old_verdict = old_model.verdict(old_rule);
        let old_before = &old_model.under[..old_rule.unwrap_or(old.rules.len())];
        for &(new_rule, new_space) in &new_rules {
            if new_model.verdict(new_rule) == old_verdict || !old_space.meets(new_space) {
                continue;
            }
            let Some(both) = old_space.intersect(new_space) else {
                regions.push(make_region(&old_model, &new_model, old_rule, new_rule, old_space.clone()));
                continue;
            };
            let new_before = &new_model.under[..new_rule.unwrap_or(new.rules.len())];
            let lists = [old_before, new_before];
            match guided_cover(both.clone(), &lists, BUDGET) {
                Cover::Covered(_) => continue,
                Cover::Uncovered | Cover::GaveUp => {}
            }
            let space = subtract_all(both.clone(), &lists, BUDGET).unwrap_or(both);
            if space.is_possible() {
                regions.push(make_region(&old_model, &new_model, old_rule, new_rule, space));
            }
        }
    }
    Diff { regions, exact: old_model.all_exact() && new_model.all_exact() }
}

fn make_region(old: &Model<'_>, new: &Model<'_>, old_rule: Decider, new_rule: Decider, space: Space) -> Region {
    let old_verdict = old.verdict(old_rule);
    let new_verdict = new.verdict(new_rule);
    let witness = witness::find(&space, |bytes| {
        let before = evaluate(old.program, bytes);
        let after = evaluate(new.program, bytes);
        before.rule == old_rule && after.rule == new_rule
    });
    Region {
        old: old_rule,
        old_verdict,
        new: new_rule,
        new_verdict,
        condition: region::describe_space(&space),
        space,
        witness,
    }
}

/// The human report of a diff.
pub fn render(diff: &Diff, old: &Program, new: &Program) -> String {
    let mut out = String::new();
    if diff.equivalent() {
        out.push_str("equivalent: every packet gets the same verdict from both rule sets\n");
        return out;
    }
    let confirmed = diff.regions.iter().filter(|r| r.witness.is_some()).count();
    let unknown = diff.regions.len() - confirmed;
    for region in &diff.regions {
        let _ = writeln!(
            out,
            "{} ({}) -> {} ({}){}",
            region.old_verdict.as_str(),
            name_of(old, region.old),
            region.new_verdict.as_str(),
            name_of(new, region.new),
            if region.witness.is_some() { "" } else { "  [unknown: no packet confirmed]" }
        );
        let _ = writeln!(out, "  packets: {}", region.condition);
        if let Some(witness) = &region.witness {
            let _ = writeln!(out, "  example: {}", witness.spec);
        }
    }
    let _ = writeln!(
        out,
        "{confirmed} region(s) change verdict{}",
        if unknown > 0 { format!(", {unknown} unknown") } else { String::new() }
    );
    out
}

/// The diff as JSON.
pub fn to_json(diff: &Diff, old: &Program, new: &Program) -> serde_json::Value {
    let side = |program: &Program, rule: Decider, verdict: Verdict| serde_json::json!({ "rule": name_of(program, rule), "verdict": verdict.as_str() });
    let regions: Vec<serde_json::Value> = diff
        .regions
        .iter()
        .map(|r| {
            serde_json::json!({
                "old": side(old, r.old, r.old_verdict),
                "new": side(new, r.new, r.new_verdict),
                "packets": r.condition,
                "witness": r.witness.as_ref().map(|w| w.spec.clone()),
                "confirmed": r.witness.is_some(),
            })
        })
        .collect();
    serde_json::json!({ "equivalent": diff.equivalent(), "differs": diff.differs(), "regions": regions })
}

/// A case file (TOML) pinning the new program's verdicts on every confirmed witness.
pub fn cases(diff: &Diff, new: &Program) -> String {
    let mut out = String::from(
        "# Written by `pfc diff --cases`: the new rule set's verdicts on packets whose verdict changed.\n",
    );
    for (index, region) in diff.regions.iter().enumerate() {
        let Some(witness) = &region.witness else { continue };
        let _ = write!(
            out,
            "\n[[case]]\nname = \"changed {}: {} -> {}\"\npacket = {}\nexpect = \"{}\"\nrule = \"{}\"\n",
            index + 1,
            region.old_verdict.as_str(),
            region.new_verdict.as_str(),
            toml_string(&witness.spec),
            region.new_verdict.as_str(),
            name_of(new, region.new)
        );
    }
    out
}

/// A TOML basic string.
pub fn toml_string(text: &str) -> String {
    // JSON string escapes (\" \\ \n \uXXXX) are TOML basic-string escapes too.
    serde_json::Value::String(text.to_string()).to_string()
}
