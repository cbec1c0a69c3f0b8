//! The kernel's limit on the maps one program uses: the object's map list and the
//! program's map references in, E0020 naming what takes the maps out.
//!
//! The kernel counts the distinct maps a program's `lddw` instructions name
//! (`MAX_USED_MAPS`) and refuses a program that names more with `E2BIG`: "The total
//! number of maps per program has reached the limit of 64" (checked on 6.18: a program
//! naming 64 loads, 65 does not; `tests/kernel_acceptance.rs` loads one at the limit). A
//! map the object declares but the program never names does not count. The maps that
//! add up are a dynamic set's (an `ip` set takes 4: an IPv4 and an IPv6 map, each in two
//! generations), a static set held in a map (one per family), a rate limit's buckets,
//! and a few single maps (counters, the sets' generation array, the log ring and its
//! statistics, the limits' statistics, the classifier's two tables).

use crate::bpf::MapReloc;
use crate::diagnostic::{Diagnostic, Span};
use crate::hashing::FastMap;
use crate::ir::Filter;
use crate::object::maps::{
    limit_map_name, CLASSIFIER_NODES_MAP_NAME, CLASSIFIER_RULES_MAP_NAME, COUNTER_MAP_NAME, LIMIT_STATS_MAP_NAME,
    LOG_RING_MAP_NAME, LOG_STATS_MAP_NAME, SET_GENERATION_MAP_NAME,
};
use crate::object::MapSpec;
use crate::program::Program;

/// The most distinct maps one program may name (the kernel's `MAX_USED_MAPS`).
pub const MAX_USED_MAPS: usize = 64;

/// What a map of the object is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Owner {
    /// One of the single maps every program of some kind has (counters, generations,
    /// logs, statistics, classifier tables), named as the listing says.
    Single(&'static str),
    /// Rate limit `i`'s buckets.
    Limit(usize),
    /// One of the maps of [`Filter::dynamic_sets`]`[i]`.
    Set(usize),
}

/// E0020 when `relocations` name more than [`MAX_USED_MAPS`] distinct maps of `maps`:
/// the message counts them by what takes them, the label points at the set (or rate
/// limit) whose maps carry the count past the limit, counting the single maps first,
/// then the limits, then the sets in declaration order.
pub(super) fn check(
    program: &Program,
    filter: &Filter,
    maps: &[MapSpec],
    relocations: &[MapReloc],
) -> Option<Diagnostic> {
    let mut used: Vec<u32> = relocations.iter().map(|relocation| relocation.map).collect();
    used.sort_unstable();
    used.dedup();
    if used.len() <= MAX_USED_MAPS {
        return None;
    }
    let owners = owners(filter);
    let mut counted: Vec<Owner> = used
        .iter()
        .map(|map| maps.get(*map as usize).and_then(|spec| owners.get(&spec.name).copied()))
        .map(|owner| owner.unwrap_or(Owner::Single("other")))
        .collect();
    counted.sort();
    // The owner whose map is the first past the limit.
    let crossing = counted[MAX_USED_MAPS];
    let of = |owner: Owner| counted.iter().filter(|counted| **counted == owner).count();
    let (span, label) = match crossing {
        Owner::Set(index) => {
            let set = &filter.dynamic_sets[index];
            let before = counted.iter().position(|counted| *counted == crossing).unwrap_or(0);
            let maps = of(crossing);
            let text = format!(
                "`{}`'s {} bring the count from {before} to {}",
                set.name,
                counted_text(maps, "map", "maps"),
                before + maps
            );
            (set.span, text)
        }
        Owner::Limit(index) => {
            (program.limits[index].span, "this rate limit's buckets are one map too many".to_string())
        }
        Owner::Single(_) => (Span::default(), "the rule set as a whole".to_string()),
    };
    let mut diagnostic = Diagnostic::error(super::KERNEL_LIMIT, message(filter, &counted), span, label);
    for note in notes(filter, &counted) {
        diagnostic = diagnostic.with_note(note);
    }
    Some(diagnostic)
}

/// Every map name the program's maps are known by, with what it is for.
fn owners(filter: &Filter) -> FastMap<String, Owner> {
    let singles = [
        (COUNTER_MAP_NAME, "the counters"),
        (SET_GENERATION_MAP_NAME, "the sets' generation array"),
        (LOG_RING_MAP_NAME, "the log ring"),
        (LOG_STATS_MAP_NAME, "the log statistics"),
        (LIMIT_STATS_MAP_NAME, "the rate limits' statistics"),
        (CLASSIFIER_NODES_MAP_NAME, "the classifier's nodes"),
        (CLASSIFIER_RULES_MAP_NAME, "the classifier's rules"),
    ];
    let mut owners: FastMap<String, Owner> =
        singles.into_iter().map(|(name, what)| (name.to_string(), Owner::Single(what))).collect();
    owners.extend((0..filter.limits.len()).map(|index| (limit_map_name(index), Owner::Limit(index))));
    for (index, set) in filter.dynamic_sets.iter().enumerate() {
        owners.extend(set.parts().into_iter().map(|part| (part.map_name(index), Owner::Set(index))));
    }
    owners
}

/// "17 dynamic sets need 68 maps and the rest of the program 2 more; the kernel allows
/// 64 per program".
fn message(filter: &Filter, counted: &[Owner]) -> String {
    let set_maps = counted.iter().filter(|owner| matches!(owner, Owner::Set(_))).count();
    let mut sets: Vec<&Owner> = counted.iter().filter(|owner| matches!(owner, Owner::Set(_))).collect();
    sets.dedup();
    let fixed = sets.iter().filter(|owner| matches!(owner, Owner::Set(index) if filter.dynamic_sets[*index].fixed));
    let fixed = fixed.count();
    let dynamic = counted_text(sets.len() - fixed, "dynamic set", "dynamic sets");
    let static_sets = counted_text(fixed, "static set held in a map", "static sets held in maps");
    let what = match (sets.len() - fixed, fixed) {
        (_, 0) => dynamic,
        (0, _) => static_sets,
        _ => format!("{dynamic} and {static_sets}"),
    };
    let rest = counted.len() - set_maps;
    let need = if sets.len() == 1 { "needs" } else { "need" };
    format!(
        "the program would use {} maps: {what} {need} {set_maps} and the rest of the program {rest}; the kernel allows {MAX_USED_MAPS} per program",
        counted.len()
    )
}

/// What each kind of owner takes, and what to do about it.
fn notes(filter: &Filter, counted: &[Owner]) -> Vec<String> {
    let mut parts = Vec::new();
    let limits = counted.iter().filter(|owner| matches!(owner, Owner::Limit(_))).count();
    if limits > 0 {
        parts.push(format!("{} for rate-limit buckets", limits));
    }
    let mut singles: Vec<&str> =
        counted.iter().filter_map(|owner| if let Owner::Single(what) = owner { Some(*what) } else { None }).collect();
    singles.dedup();
    parts.extend(singles.into_iter().map(|what| format!("1 for {what}")));
    let mut notes = Vec::new();
    if !parts.is_empty() {
        notes.push(format!("the rest of the program: {}", parts.join(", ")));
    }
    let dynamic = counted.iter().any(|owner| matches!(owner, Owner::Set(index) if !filter.dynamic_sets[*index].fixed));
    if dynamic {
        notes.push(
            "a dynamic set takes 2 maps per family of values it holds (generations 0 and 1, for `pfc set replace`): \
             4 for an `ip` set, 2 for an `ipv4`, `ipv6` or any other type"
                .to_string(),
        );
        notes.push(
            "use fewer dynamic sets: one set can hold several lists (a rule tests it once), and an `ipv4` or `ipv6` \
             set takes half the maps of an `ip` set"
                .to_string(),
        );
    }
    notes
}

/// `1 map`, `4 maps`.
fn counted_text(count: usize, singular: &str, plural: &str) -> String {
    format!("{count} {}", if count == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use crate::codegen::Options;
    use crate::compile::{compile, KERNEL_LIMIT};

    /// `sets` dynamic `ip` sets and `limits` rate-limited rules: 4 maps a set, 1 a limit,
    /// plus the counters, the generation array and (with limits) the limits' statistics.
    fn rules(sets: usize, limits: usize) -> String {
        let mut text = String::from("default pass\n");
        for set in 0..sets {
            text.push_str(&format!("set s{set}: ip dynamic size 16\nrule r{set}: drop if ip.src in s{set}\n"));
        }
        for limit in 0..limits {
            text.push_str(&format!("rule l{limit}: drop if udp.dport == {} and rate > 10/s\n", 1000 + limit));
        }
        text
    }

    #[test]
    fn sixty_four_maps_compile_and_sixty_five_are_refused_at_the_set_that_crosses() {
        let (compiled, diagnostics) = compile(&rules(15, 1), Options::default());
        let compiled = compiled.unwrap_or_else(|| panic!("64 maps: {diagnostics:?}"));
        let mut used: Vec<u32> = compiled.code.map_relocations().iter().map(|r| r.map).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), super::MAX_USED_MAPS);

        let text = rules(15, 2);
        let (compiled, diagnostics) = compile(&text, Options::default());
        assert!(compiled.is_none(), "65 maps compiled");
        let [diagnostic] = diagnostics.as_slice() else { panic!("one diagnostic: {diagnostics:?}") };
        assert_eq!(diagnostic.code, KERNEL_LIMIT);
        assert!(diagnostic.message.starts_with("the program would use 65 maps: 15 dynamic sets need 60"));
        let span = diagnostic.labels[0].span;
        assert_eq!(&text[span.start as usize..span.end as usize], "set s14: ip dynamic size 16");
        assert!(diagnostic.labels[0].message.contains("from 61 to 65"), "{}", diagnostic.labels[0].message);
    }

    /// Only the maps the program names count: a set no rule tests takes none.
    #[test]
    fn sets_no_rule_tests_take_no_maps() {
        let mut text = rules(15, 0);
        text.extend((0..10).map(|set| format!("set unused{set}: ip dynamic\n")));
        let (compiled, diagnostics) = compile(&text, Options::default());
        assert!(compiled.is_some(), "{diagnostics:?}");
    }
}
