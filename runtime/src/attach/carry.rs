//! Counter carry-over on replace: the old rule names and counts in, which new counter
//! continues which old one and what to add to it out. Rules match by name; the default's
//! counter (last) continues the old default's.

use super::Counter;

/// Which old counter each new counter continues: `sources[new] = Some(old)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CarryPlan {
    pub(crate) sources: Vec<Option<usize>>,
}

/// Matches rules by name; the default's counter (last) continues the old default's.
pub(crate) fn carry_plan(old_rules: Option<&[String]>, new_rules: &[String]) -> CarryPlan {
    let Some(old_rules) = old_rules else { return CarryPlan { sources: vec![None; new_rules.len() + 1] } };
    let mut sources: Vec<Option<usize>> =
        new_rules.iter().map(|name| old_rules.iter().position(|old| old == name)).collect();
    sources.push(Some(old_rules.len()));
    CarryPlan { sources }
}

impl CarryPlan {
    /// Nonzero old counts to add to the new map.
    pub(crate) fn seeds(&self, old: &[Counter]) -> Vec<(u32, Counter)> {
        self.additions(|index| old.get(index).copied().unwrap_or_default())
    }

    /// What the old program counted between `before` and `after`.
    pub(crate) fn late(&self, before: &[Counter], after: &[Counter]) -> Vec<(u32, Counter)> {
        self.additions(|index| {
            let (b, a) =
                (before.get(index).copied().unwrap_or_default(), after.get(index).copied().unwrap_or_default());
            Counter { packets: a.packets.saturating_sub(b.packets), bytes: a.bytes.saturating_sub(b.bytes) }
        })
    }

    fn additions(&self, amount: impl Fn(usize) -> Counter) -> Vec<(u32, Counter)> {
        self.sources
            .iter()
            .enumerate()
            .filter_map(|(new, old)| old.map(|old| (new as u32, amount(old))))
            .filter(|(_, counter)| *counter != Counter::default())
            .collect()
    }

    /// (kept, reset) rule names.
    pub(crate) fn names(&self, new_rules: &[String]) -> (Vec<String>, Vec<String>) {
        let (kept, reset): (Vec<_>, Vec<_>) =
            new_rules.iter().zip(&self.sources).partition(|(_, source)| source.is_some());
        (
            kept.into_iter().map(|(name, _)| name.clone()).collect(),
            reset.into_iter().map(|(name, _)| name.clone()).collect(),
        )
    }
}
