//! Counter carry-over on replace: the old rule names and counts in, which new counter
//! continues which old one and what to add to it out. Rules match by name; the default's
//! counter (last) continues the old default's when the default verdict stayed the same,
//! and restarts when a replace flipped it (a count of passes is not a count of drops).

use super::Counter;
use crate::pins::LimitManifest;

/// Which old bucket maps the new limits continue, as `(old map, new map)` names: a new
/// limit continues the old one of the rule with the same name, the same key fields and the
/// same unit and period (tokens are counted in units × period).
pub(crate) fn bucket_carry(old: &[LimitManifest], new: &[LimitManifest]) -> Vec<(String, String)> {
    new.iter()
        .filter_map(|limit| {
            let rule = limit.rule.as_ref()?;
            let old = old.iter().find(|o| {
                o.rule.as_ref() == Some(rule)
                    && o.key == limit.key
                    && o.unit == limit.unit
                    && o.period_ns == limit.period_ns
            })?;
            Some((old.map.clone(), limit.map.clone()))
        })
        .collect()
}

/// Which old counter each new counter continues: `sources[new] = Some(old)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CarryPlan {
    pub(crate) sources: Vec<Option<usize>>,
    /// The old default verdict, when the new one differs and its counter restarts.
    pub(crate) default_flipped_from: Option<String>,
}

/// Matches rules by name; the default's counter (last) continues the old default's if
/// the default verdict is the same. `old` is the old rule names and default verdict.
pub(crate) fn carry_plan(old: Option<(&[String], &str)>, new_rules: &[String], new_default: &str) -> CarryPlan {
    let Some((old_rules, old_default)) = old else {
        return CarryPlan { sources: vec![None; new_rules.len() + 1], default_flipped_from: None };
    };
    let mut sources: Vec<Option<usize>> =
        new_rules.iter().map(|name| old_rules.iter().position(|old| old == name)).collect();
    let same_default = old_default == new_default;
    sources.push(same_default.then_some(old_rules.len()));
    CarryPlan { sources, default_flipped_from: (!same_default).then(|| old_default.to_string()) }
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

    /// (kept, reset) rule names; a restarted default counter is listed among the reset
    /// as `(default, was VERDICT)`.
    pub(crate) fn names(&self, new_rules: &[String]) -> (Vec<String>, Vec<String>) {
        let (kept, reset): (Vec<_>, Vec<_>) =
            new_rules.iter().zip(&self.sources).partition(|(_, source)| source.is_some());
        let mut reset: Vec<String> = reset.into_iter().map(|(name, _)| name.clone()).collect();
        if let Some(old) = &self.default_flipped_from {
            reset.push(format!("(default, was {old})"));
        }
        (kept.into_iter().map(|(name, _)| name.clone()).collect(), reset)
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_carry;
    use crate::pins::LimitManifest;

    fn limit(rule: &str, map: &str, key: &[&str]) -> LimitManifest {
        LimitManifest {
            rule: Some(rule.to_string()),
            map: map.to_string(),
            key: key.iter().map(|k| k.to_string()).collect(),
            unit: Some("packets".to_string()),
            period_ns: Some(1_000_000_000),
            ..LimitManifest::default()
        }
    }

    #[test]
    fn buckets_carry_when_rule_and_key_are_unchanged() {
        let old = [limit("ping", "pfc_limit_0", &["ipv4.src"]), limit("ssh", "pfc_limit_1", &["ipv4.src"])];
        let new = [
            limit("web", "pfc_limit_0", &["ipv4.src"]),
            limit("ssh", "pfc_limit_1", &["ipv4.src", "tcp.dport"]),
            limit("ping", "pfc_limit_2", &["ipv4.src"]),
        ];
        let per_minute =
            LimitManifest { period_ns: Some(60_000_000_000), ..limit("ping", "pfc_limit_0", &["ipv4.src"]) };
        assert!(bucket_carry(&old, &[per_minute]).is_empty());
        assert_eq!(bucket_carry(&old, &new), vec![("pfc_limit_0".to_string(), "pfc_limit_2".to_string())]);
    }
}
