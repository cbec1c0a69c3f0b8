//! `pfc diff`: two checked programs in, the packets they decide differently out, as
//! regions (which rule decides them on each side, the region as a condition, one
//! witness confirmed by the interpreter on both sides).
//!
//! A region is the packets old rule `i` and new rule `j` decide, for verdicts that
//! differ: `decides_old(i) ∩ decides_new(j)` (the default counts as a last rule that
//! matches everything). Only pairs with different verdicts are computed, so rules that
//! were renamed or reordered without changing a verdict give nothing; and only pairs in
//! which one rule at least is changed (`super::align`), which makes a diff of two large
//! sets that differ in a few rules cost about as much as those rules. "Equivalent" is
//! claimed only when every such pair is empty in the engine's over-approximation.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{align, guided_cover, name_of, region, subtract_all, Cover, Decider, Model};
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

/// Compares two programs: only pairs of rules of which one at least is changed
/// (`align`: every packet whose verdict changes is decided by a changed
/// rule on one side), each pair with the earlier rules that may take its packets
/// (found by the models' indexes).
pub fn diff(old: &Program, new: &Program) -> Diff {
    let old_model = Model::new(old);
    let new_model = Model::new(new);
    let changed = align::changed(old, new);
    let everything = Space::everything();
    // The default is a last rule (index = the rule count) that matches everything.
    let (old_len, new_len) = (old.rules.len(), new.rules.len());
    let old_space = |i: usize| if i < old_len { &old_model.over[i] } else { &everything };
    let new_space = |j: usize| if j < new_len { &new_model.over[j] } else { &everything };
    let decider = |i: usize, len: usize| (i < len).then_some(i);
    let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
    for i in (0..=old_len).filter(|&i| changed.old[i]) {
        let verdict = old_model.verdict(decider(i, old_len));
        let meeting = new_model.over_index.meeting(&new_model.over, old_space(i), new_len);
        for j in meeting.into_iter().chain([new_len]) {
            if new_model.verdict(decider(j, new_len)) != verdict {
                pairs.insert((i, j));
            }
        }
    }
    for j in (0..=new_len).filter(|&j| changed.new[j]) {
        let verdict = new_model.verdict(decider(j, new_len));
        let meeting = old_model.over_index.meeting(&old_model.over, new_space(j), old_len);
        for i in meeting.into_iter().chain([old_len]) {
            if old_model.verdict(decider(i, old_len)) != verdict {
                pairs.insert((i, j));
            }
        }
    }
    let mut regions = Vec::new();
    for (i, j) in pairs {
        let (old_rule, new_rule) = (decider(i, old_len), decider(j, new_len));
        let (old_space, new_space) = (old_space(i), new_space(j));
        if !old_space.meets(new_space) {
            continue;
        }
        let Some(both) = old_space.intersect(new_space) else {
            regions.push(make_region(&old_model, &new_model, old_rule, new_rule, old_space.clone()));
            continue;
        };
        let scopes = [old_model.under_before(i), new_model.under_before(j)];
        match guided_cover(both.clone(), &scopes, BUDGET) {
            Cover::Covered(_) => continue,
            Cover::Uncovered | Cover::GaveUp => {}
        }
        let space = subtract_all(both.clone(), &scopes, BUDGET).unwrap_or(both);
        if space.is_possible() {
            regions.push(make_region(&old_model, &new_model, old_rule, new_rule, space));
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

/// The confirmed witnesses, region by region, as a classic pcap file (little-endian,
/// Ethernet, microsecond stamps: frame `n` at `n` seconds), for `pfc diff --witnesses`.
pub fn witnesses_pcap(diff: &Diff) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        out.extend(word.to_le_bytes());
    }
    let frames = diff.regions.iter().filter_map(|region| region.witness.as_ref());
    for (index, witness) in frames.enumerate() {
        let len = witness.bytes.len() as u32;
        for word in [index as u32, 0, len, len] {
            out.extend(word.to_le_bytes());
        }
        out.extend(&witness.bytes);
    }
    out
}

/// A TOML basic string.
pub(crate) fn toml_string(text: &str) -> String {
    // JSON string escapes (\" \\ \n \uXXXX) are TOML basic-string escapes too.
    serde_json::Value::String(text.to_string()).to_string()
}
