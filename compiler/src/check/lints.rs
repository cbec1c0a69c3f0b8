//! Lints: a checked [`Program`] in, warnings out.
//!
//! - W0001: a rule that can never decide because an earlier rule matches every packet
//!   it would (an earlier unconditional rule, or an earlier rule with the same condition).
//! - W0002: a condition that can never hold (`tcp and udp`, `tcp.dport == 22 and
//!   tcp.dport == 23`, `tcp.flags & syn == ack`).

use std::collections::HashMap;

use crate::diagnostic::{Code, Diagnostic};
use crate::fields::{Field, Layer, Proto};
use crate::hashing::LookupMap;
use crate::program::{CmpOp, Cond, Program, Test, TestOp};

/// W0001: the rule can never match.
pub const UNREACHABLE: Code = Code("W0001");
/// W0002: the condition can never hold.
pub const CONTRADICTION: Code = Code("W0002");

/// Runs every lint over the program.
pub fn lint(program: &Program) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut seen: LookupMap<&Cond, usize> = LookupMap::default();
    let mut catch_all: Option<usize> = None;
    for (index, rule) in program.rules.iter().enumerate() {
        let shadowed_by = catch_all
            .map(|earlier| (earlier, "matches every packet first"))
            .or_else(|| seen.get(&rule.condition).map(|&earlier| (earlier, "has the same condition and comes first")));
        if let Some((earlier, why)) = shadowed_by {
            let first = &program.rules[earlier];
            diagnostics.push(
                Diagnostic::warning(
                    UNREACHABLE,
                    format!("rule `{}` can never match", rule.name),
                    rule.span,
                    "unreachable",
                )
                .with_label(first.span, format!("rule `{}` {why}", first.name)),
            );
            continue;
        }
        if let Some(reason) = never_holds(&rule.condition) {
            diagnostics.push(
                Diagnostic::warning(
                    CONTRADICTION,
                    format!("the condition of rule `{}` can never hold", rule.name),
                    rule.span,
                    "never true",
                )
                .with_note(reason),
            );
            continue;
        }
        if rule.condition == Cond::True {
            catch_all = Some(index);
        }
        seen.insert(&rule.condition, index);
    }
    diagnostics
}

/// Why a condition can never hold, if the simple analyses here can tell.
fn never_holds(cond: &Cond) -> Option<String> {
    match cond {
        Cond::False => Some("it is always false".to_string()),
        Cond::Or(operands) => {
            let reasons: Vec<String> = operands.iter().map(never_holds).collect::<Option<Vec<_>>>()?;
            reasons.into_iter().next().or(Some("it is an empty `or`".to_string()))
        }
        Cond::And(operands) => {
            if let Some(reason) = operands.iter().find_map(never_holds) {
                return Some(reason);
            }
            if let Some(reason) = conflicting_protocols(required_protocols(cond)) {
                return Some(reason);
            }
            conflicting_values(operands)
        }
        Cond::Test(test) => impossible_mask(test),
        _ => None,
    }
}

/// A set of protocols as bits (`1 << proto as u16`): the lints run on every rule, and
/// sets of ten elements need no allocation.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Protos(u16);

impl Protos {
    /// "Some IP header" (IPv4 or IPv6), implied by every IP and transport protocol: it
    /// survives the intersection of an `or` like `l4.dport`'s TCP/UDP/SCTP alternatives.
    const ANY_IP: u16 = 1 << 14;

    fn of(proto: Proto) -> Protos {
        let carrier = proto.carrier().map_or(0, |carrier| 1 << carrier as u16);
        let ip = match proto.layer() {
            Layer::Transport => Protos::ANY_IP,
            Layer::Network if proto != Proto::Arp => Protos::ANY_IP,
            _ => 0,
        };
        Protos(1 << proto as u16 | carrier | ip)
    }

    fn contains(self, proto: Proto) -> bool {
        self.0 & (1 << proto as u16) != 0
    }

    fn iter(self) -> impl Iterator<Item = Proto> {
        Proto::ALL.into_iter().filter(move |proto| self.contains(*proto))
    }
}

/// Protocols whose headers must all be present for the condition to hold.
fn required_protocols(cond: &Cond) -> Protos {
    match cond {
        Cond::Proto(proto) => Protos::of(*proto),
        Cond::Test(test) => test.field.guard().map(Protos::of).unwrap_or_default(),
        Cond::And(operands) => Protos(operands.iter().fold(0, |all, operand| all | required_protocols(operand).0)),
        Cond::Or(operands) => {
            let mut sets = operands.iter().map(required_protocols);
            let first = sets.next().unwrap_or_default();
            Protos(sets.fold(first.0, |common, set| common & set.0))
        }
        Cond::Not(_) | Cond::True | Cond::False | Cond::Pcap(_) | Cond::Limit(_) => Protos::default(),
    }
}

fn conflicting_protocols(protocols: Protos) -> Option<String> {
    for layer in [Layer::Network, Layer::Transport] {
        let in_layer: Vec<&str> =
            protocols.iter().filter(|proto| proto.layer() == layer).map(|proto| proto.name()).collect();
        if in_layer.len() > 1 {
            return Some(format!("a packet cannot be both {}", in_layer.join(" and ")));
        }
    }
    let transport = protocols.iter().find(|proto| proto.layer() == Layer::Transport);
    if let (Some(transport), true) = (transport, protocols.contains(Proto::Arp)) {
        return Some(format!("an ARP packet carries no {} header", transport.name()));
    }
    if protocols.contains(Proto::Arp) && protocols.0 & Protos::ANY_IP != 0 {
        return Some("an ARP packet carries no IP header".to_string());
    }
    None
}

/// `field == a and field == b` with `a != b`.
fn conflicting_values(operands: &[Cond]) -> Option<String> {
    let mut equal: HashMap<(Field, Option<u128>), u128> = HashMap::new();
    for operand in operands {
        let Cond::Test(Test { field, mask, op: TestOp::Cmp(CmpOp::Eq, value) }) = operand else { continue };
        match equal.get(&(*field, *mask)) {
            Some(earlier) if earlier != value => {
                return Some(format!("`{}` cannot equal both {earlier} and {value}", field.name()));
            }
            _ => {
                equal.insert((*field, *mask), *value);
            }
        }
    }
    None
}

/// `field & mask == value` where `value` has bits outside `mask`.
fn impossible_mask(test: &Test) -> Option<String> {
    match (test.mask, test.op) {
        (Some(mask), TestOp::Cmp(CmpOp::Eq, value)) if value & !mask != 0 => Some(format!(
            "`{} & {mask:#x}` can never equal {value:#x}: it has bits outside the mask",
            test.field.name()
        )),
        _ => None,
    }
}
