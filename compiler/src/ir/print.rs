//! IR listing: a [`Filter`] in, the text `pfc compile --emit ir` prints out.

use std::fmt::Write;

use super::{Filter, Node, NodeId};
use crate::fields::{Field, ValueKind};

/// Renders the filter as an indented tree per rule.
pub fn print(filter: &Filter) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "filter hook={} default={}", filter.hook.as_str(), filter.default.as_str());
    for (index, set) in filter.sets.iter().enumerate() {
        let field = set_field(filter, index);
        let intervals: Vec<String> = set.intervals.iter().map(|&(low, high)| interval(field, low, high)).collect();
        let _ = writeln!(out, "set s{index} ({} bits): {{ {} }}", set.bits, intervals.join(", "));
    }
    for rule in &filter.rules {
        let _ = writeln!(out, "rule {}: {}", rule.name, rule.verdict.as_str());
        node(filter, rule.condition, 1, &mut out);
    }
    out
}

/// The field an unmasked test reads from set `index`, which says how its values are
/// written; `None` when only masked tests use it (the values are then bit patterns).
fn set_field(filter: &Filter, index: usize) -> Option<Field> {
    filter.nodes.iter().find_map(|node| match node {
        Node::InSet { field, mask: None, set } if set.0 as usize == index => Some(*field),
        _ => None,
    })
}

/// An interval the way rule files write it: `10.0.0.0/8` for an address interval that is
/// one prefix, `low..high` otherwise, `80` for a single value; hex for bit patterns.
fn interval(field: Option<Field>, low: u128, high: u128) -> String {
    let Some(field) = field else {
        return if low == high { format!("{low:#x}") } else { format!("{low:#x}..{high:#x}") };
    };
    if low == high {
        return value_text(field, low);
    }
    let bits = match field.kind() {
        ValueKind::Ipv4 => Some(32),
        ValueKind::Ipv6 => Some(128),
        _ => None,
    };
    if let Some(bits) = bits {
        let span = high.wrapping_sub(low).wrapping_add(1);
        // A prefix: the interval's size is a power of two (or the whole space) and its
        // start is aligned to it.
        let whole = bits == 128 && low == 0 && high == u128::MAX;
        let aligned = span.is_power_of_two() && low % span == 0 && span.trailing_zeros() <= bits;
        if whole || aligned {
            let length = if whole { 0 } else { bits - span.trailing_zeros() };
            return format!("{}/{length}", value_text(field, low));
        }
    }
    format!("{}..{}", value_text(field, low), value_text(field, high))
}

fn node(filter: &Filter, id: NodeId, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match filter.node(id) {
        Node::Const(value) => {
            let _ = writeln!(out, "{indent}{value}");
        }
        Node::Pcap(index) => {
            let _ = writeln!(out, "{indent}pcap p{index}");
        }
        Node::Limit(index) => {
            let _ = writeln!(out, "{indent}limit l{index}: {}", filter.limits[*index as usize].describe());
        }
        Node::Present(source) => {
            let _ = writeln!(out, "{indent}present {}", source.name());
        }
        Node::Compare { field, mask, op, value } => {
            let _ = writeln!(out, "{indent}{} {} {}", operand(*field, *mask), op.as_str(), value_text(*field, *value));
        }
        Node::InSet { field, mask, set } => {
            let _ = writeln!(out, "{indent}{} in s{}", operand(*field, *mask), set.0);
        }
        Node::InDynamic { field, mask, set } => {
            let name = filter.dynamic_sets.get(*set as usize).map_or("?", |set| set.name.as_str());
            let _ = writeln!(out, "{indent}{} in dynamic {name}", operand(*field, *mask));
        }
        Node::Not(inner) => {
            let _ = writeln!(out, "{indent}not");
            node(filter, *inner, depth + 1, out);
        }
        Node::All(items) | Node::Any(items) => {
            let word = if matches!(filter.node(id), Node::All(_)) { "all" } else { "any" };
            let _ = writeln!(out, "{indent}{word}");
            for item in items {
                node(filter, *item, depth + 1, out);
            }
        }
    }
}

/// A value the way rule files write it: addresses in their notation, numbers in decimal.
fn value_text(field: Field, value: u128) -> String {
    match field.kind() {
        ValueKind::Ipv4 => std::net::Ipv4Addr::from(value as u32).to_string(),
        ValueKind::Ipv6 => std::net::Ipv6Addr::from(value).to_string(),
        ValueKind::Mac => {
            let bytes = (value as u64).to_be_bytes();
            bytes[2..].iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(":")
        }
        ValueKind::Uint(_) => value.to_string(),
    }
}

fn operand(field: Field, mask: Option<u128>) -> String {
    match mask {
        Some(mask) => format!("{} & {mask:#x}", field.name()),
        None => field.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// The `set` lines of the IR listing of `rules`.
    fn set_lines(rules: &str) -> Vec<String> {
        let (program, diagnostics) = crate::frontend::check_source(rules);
        let program = program.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let listing = super::print(&crate::ir::build(&program));
        listing.lines().filter(|line| line.starts_with("set ")).map(str::to_string).collect()
    }

    #[test]
    fn sets_print_the_way_rule_files_write_them() {
        let rules = "default pass
rule a: drop if ip.src in { 0.0.0.0/0 }
rule b: drop if ipv6.src in { ::/0 }
rule c: drop if ipv4.dst in { 10.0.0.1..10.0.0.5, 10.0.0.8/30, 192.0.2.1 }
rule d: drop if udp.dport in { 53, 8000..8100 }
rule e: drop if tcp.flags & 0x12 in { 2, 16 }
";
        assert_eq!(
            set_lines(rules),
            [
                "set s0 (32 bits): { 0.0.0.0/0 }",
                "set s1 (128 bits): { ::/0 }",
                "set s2 (32 bits): { 10.0.0.1..10.0.0.5, 10.0.0.8/30, 192.0.2.1 }",
                "set s3 (16 bits): { 53, 8000..8100 }",
                "set s4 (8 bits): { 0x2, 0x10 }",
            ]
        );
    }
}
