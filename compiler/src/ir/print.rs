//! IR listing: a [`Filter`] in, the text `pfc compile --emit ir` prints out.

use std::fmt::Write;

use super::{Filter, Node, NodeId};
use crate::fields::{Field, ValueKind};

/// Renders the filter as an indented tree per rule.
pub fn print(filter: &Filter) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "filter hook={} default={}", filter.hook.as_str(), filter.default.as_str());
    for (index, set) in filter.sets.iter().enumerate() {
        let intervals: Vec<String> = set.intervals.iter().map(|&(low, high)| interval(low, high)).collect();
        let _ = writeln!(out, "set s{index} ({} bits): {{ {} }}", set.bits, intervals.join(", "));
    }
    for rule in &filter.rules {
        let _ = writeln!(out, "rule {}: {}", rule.name, rule.verdict.as_str());
        node(filter, rule.condition, 1, &mut out);
    }
    out
}

fn interval(low: u128, high: u128) -> String {
    if low == high {
        format!("{low:#x}")
    } else {
        format!("{low:#x}..{high:#x}")
    }
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
        Node::Present(source) => {
            let _ = writeln!(out, "{indent}present {}", source.name());
        }
        Node::Compare { field, mask, op, value } => {
            let _ = writeln!(out, "{indent}{} {} {}", operand(*field, *mask), op.as_str(), value_text(*field, *value));
        }
        Node::InSet { field, mask, set } => {
            let _ = writeln!(out, "{indent}{} in s{}", operand(*field, *mask), set.0);
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
