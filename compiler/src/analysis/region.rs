//! Regions of packets in rule-language terms. Input: a [`Space`]; output: a condition
//! such as `tcp.dport == 22 and ipv4.src in 10.0.0.0/8` (cubes joined by `or`). Values
//! the universe implies for the shapes (`eth.type == 0x0800` under `ipv4`) are left out.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::fields::{Field, Proto, ValueKind};
use crate::space::shape::{self, shapes, with_field, Link, Net, ShapeSet};
use crate::space::{max_of, Cube, Ivs, Space};

/// How many cubes a description lists before summarising.
const LISTED: usize = 8;

/// `space` as a condition.
pub(crate) fn describe_space(space: &Space) -> String {
    let merged = merge(space);
    let mut parts: Vec<String> = merged.iter().take(LISTED).map(describe_cube).collect();
    if merged.len() > LISTED {
        parts.push(format!("… ({} more boxes)", merged.len() - LISTED));
    }
    if parts.is_empty() {
        return "no packet".to_string();
    }
    if parts.len() == 1 {
        return parts.remove(0);
    }
    parts
        .iter()
        .map(|p| if p.contains(" and ") || p.contains(" or ") { format!("({p})") } else { p.clone() })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Cubes with the same fields merged over their shapes, universe-implied values dropped.
pub(crate) fn merge(space: &Space) -> Vec<Cube> {
    let mut out: Vec<Cube> = Vec::new();
    for cube in &space.cubes {
        let dims: Vec<_> =
            cube.dims.iter().filter(|(field, set)| !implied(cube.shapes, *field, set)).cloned().collect();
        match out.iter_mut().find(|c| c.dims == dims) {
            Some(existing) => existing.shapes |= cube.shapes,
            None => out.push(Cube { shapes: cube.shapes, dims }),
        }
    }
    // Same shapes, all fields equal but one: one cube with the union of that field.
    let mut changed = true;
    while changed {
        changed = false;
        'outer: for i in 0..out.len() {
            for j in i + 1..out.len() {
                if let Some(joined) = join(&out[i], &out[j]) {
                    out[i] = joined;
                    out.remove(j);
                    changed = true;
                    break 'outer;
                }
            }
        }
    }
    out
}

fn join(a: &Cube, b: &Cube) -> Option<Cube> {
    if a.shapes != b.shapes || a.dims.len() != b.dims.len() {
        return None;
    }
    let mut differ = None;
    for (x, y) in a.dims.iter().zip(&b.dims) {
        if x.0 != y.0 {
            return None;
        }
        if x.1 != y.1 {
            if differ.is_some() {
                return None;
            }
            differ = Some(x.0);
        }
    }
    let field = differ?;
    let dims = a
        .dims
        .iter()
        .zip(&b.dims)
        .map(|(x, y)| {
            if x.0 == field {
                (x.0, Ivs::from_unsorted([x.1 .0.clone(), y.1 .0.clone()].concat()))
            } else {
                x.clone()
            }
        })
        .collect();
    Some(Cube::new(a.shapes, dims))
}

/// Whether the universe already restricts `field` to `set` (or less) in these shapes.
fn implied(shapes: ShapeSet, field: Field, set: &Ivs) -> bool {
    shape::universe()
        .iter()
        .filter(|u| u.shapes & shapes != 0)
        .all(|u| u.get(field).is_some_and(|allowed| set.covers(allowed)))
}

/// One cube as a conjunction.
pub(crate) fn describe_cube(cube: &Cube) -> String {
    let implied_shapes = cube.dims.iter().fold(shape::all_shapes(), |set, (field, _)| set & with_field(*field));
    let mut parts = Vec::new();
    if cube.shapes != implied_shapes {
        parts.push(describe_shapes(cube.shapes));
    }
    parts.extend(cube.dims.iter().map(|(field, set)| describe_values(*field, set)));
    if parts.is_empty() {
        return "any packet".to_string();
    }
    parts.join(" and ")
}

/// A set of shapes as protocol tests.
pub(crate) fn describe_shapes(set: ShapeSet) -> String {
    let candidates = candidates();
    if let Some((text, _)) = candidates.iter().find(|(_, mask)| *mask == set) {
        return text.clone();
    }
    // Greedy cover by the largest candidates inside the set.
    let mut rest = set;
    let mut parts = Vec::new();
    while rest != 0 {
        let best = candidates
            .iter()
            .filter(|(_, mask)| *mask & !set == 0 && *mask & rest != 0)
            .max_by_key(|(_, mask)| (mask & rest).count_ones());
        match best {
            Some((text, mask)) => {
                parts.push(text.clone());
                rest &= !mask;
            }
            None => break,
        }
    }
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        format!("({})", parts.join(" or "))
    }
}

fn candidates() -> Vec<(String, ShapeSet)> {
    let all = shape::all_shapes();
    let vlan = shape::with_proto(Proto::Vlan);
    let eth = shape::with_proto(Proto::Eth);
    let ip = shape::with_proto(Proto::Ipv4) | shape::with_proto(Proto::Ipv6);
    let l4 = [Proto::Tcp, Proto::Udp, Proto::Sctp].iter().fold(0, |m, p| m | shape::with_proto(*p));
    let mut bases: Vec<(String, ShapeSet)> = vec![("ip".into(), ip), ("l4".into(), l4), ("eth".into(), eth)];
    for proto in [Proto::Arp, Proto::Ipv4, Proto::Ipv6, Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Icmp, Proto::Icmp6]
    {
        bases.push((proto.name().into(), shape::with_proto(proto)));
    }
    let transports = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Icmp, Proto::Icmp6];
    let no_l4 = transports.iter().fold(0, |m, p| m | shape::with_proto(*p));
    bases.push(("ipv4 and not (tcp or udp or sctp or icmp)".into(), shape::with_proto(Proto::Ipv4) & !no_l4));
    let ipv6_known = shape::mask(|s| matches!(s.net, Net::Ipv6(None)));
    bases.push(("ipv6 and not (tcp or udp or sctp or icmp6)".into(), shape::with_proto(Proto::Ipv6) & !no_l4));
    bases.push(("ipv6 and not ipv6.proto in 0..255".into(), shape::mask(|s| s.net == Net::Ipv6Opaque)));
    let _ = ipv6_known;
    bases.push(("eth and not (arp or ip)".into(), eth & !ip & !shape::with_proto(Proto::Arp)));
    bases.push(("not eth".into(), all & !eth));
    bases.push(("not ip".into(), all & !ip));
    bases.push(("not arp".into(), all & !shape::with_proto(Proto::Arp)));
    bases.push(("any packet".into(), all));
    let mut out = Vec::new();
    for (text, mask) in bases {
        out.push((text.clone(), mask));
        if mask & vlan != 0 && mask & !vlan != 0 {
            out.push((format!("{text} and vlan"), mask & vlan));
            out.push((format!("{text} and not vlan"), mask & !vlan));
        }
    }
    let runt = shape::mask(|s| s.link == Link::Runt);
    out.push(("not eth".into(), runt));
    // Last resorts, so that every set of shapes can be written: one network state on
    // any link, then one shape at a time.
    let mut nets: Vec<(String, ShapeSet)> = Vec::new();
    for (index, shape) in shapes().iter().enumerate() {
        if matches!(shape.link, Link::Untagged | Link::Tagged) {
            let text = describe_shape(*shape).replace(" and not vlan", "").replace(" and vlan", "");
            match nets.iter_mut().find(|(t, _)| *t == text) {
                Some((_, mask)) => *mask |= 1 << index,
                None => nets.push((text, 1 << index)),
            }
        }
    }
    out.extend(nets);
    for (index, shape) in shapes().iter().enumerate() {
        out.push((describe_shape(*shape), 1 << index));
    }
    out
}

/// One shape as protocol tests.
fn describe_shape(shape: shape::Shape) -> String {
    let cut = "not eth.type in 0..65535";
    let link = match shape.link {
        Link::Runt => return "not eth".into(),
        Link::CutFirstTag => return format!("eth and not vlan and {cut}"),
        Link::CutSecondTag => return format!("vlan and {cut}"),
        Link::Untagged => "not vlan",
        Link::Tagged => "vlan",
    };
    let net = match shape.net {
        Net::None => "eth.type in 0..65535 and not (arp or ip)".to_string(),
        Net::Arp => "arp".into(),
        Net::Ipv4(None) => "ipv4 and not (tcp or udp or sctp or icmp)".into(),
        Net::Ipv6(None) => "ipv6 and not (tcp or udp or sctp or icmp6)".into(),
        Net::Ipv6Opaque => "ipv6 and not ipv6.proto in 0..255".into(),
        Net::Ipv4(Some(proto)) => format!("ipv4 and {}", proto.name()),
        Net::Ipv6(Some(proto)) => format!("ipv6 and {}", proto.name()),
    };
    format!("{net} and {link}")
}

/// `field in set` with the set written in the field's own literals.
pub(crate) fn describe_values(field: Field, set: &Ivs) -> String {
    let max = max_of(field);
    let name = field.name();
    if set.0.len() == 1 && set.0[0].0 == set.0[0].1 {
        return format!("{name} == {}", literal(field, set.0[0].0));
    }
    let complement = Ivs::full(max).minus(set);
    if complement.0.len() == 1 && complement.0[0].0 == complement.0[0].1 {
        return format!("{name} != {}", literal(field, complement.0[0].0));
    }
    if set.0.len() == 1 && !matches!(field.kind(), ValueKind::Ipv4 | ValueKind::Ipv6 | ValueKind::Mac) {
        let (low, high) = set.0[0];
        if low == 0 {
            return format!("{name} <= {}", literal(field, high));
        }
        if high == max {
            return format!("{name} >= {}", literal(field, low));
        }
    }
    let (written, negated) = if elements(field, &complement).len() < elements(field, set).len() {
        (elements(field, &complement), true)
    } else {
        (elements(field, set), false)
    };
    let list = if written.len() == 1 { written[0].clone() } else { format!("{{ {} }}", written.join(", ")) };
    format!("{name} {}in {list}", if negated { "not " } else { "" })
}

/// The members of `set` in the field's literals: addresses as prefixes, ranges as `a..b`.
pub(crate) fn elements(field: Field, set: &Ivs) -> Vec<String> {
    let mut out = Vec::new();
    for &(low, high) in &set.0 {
        match field.kind() {
            ValueKind::Ipv4 | ValueKind::Ipv6 => prefixes(field, low, high, &mut out),
            _ if low == high => out.push(literal(field, low)),
            _ => out.push(format!("{}..{}", literal(field, low), literal(field, high))),
        }
    }
    out
}

/// An address interval as prefixes when it splits into at most four, else a range.
fn prefixes(field: Field, low: u128, high: u128, out: &mut Vec<String>) {
    let bits = field.kind().bits();
    let mut parts = Vec::new();
    let mut cursor = low;
    loop {
        let mut size = if cursor == 0 { bits } else { cursor.trailing_zeros().min(bits) };
        while size > 0 && (size >= 128 || cursor.checked_add((1u128 << size) - 1).map_or(true, |last| last > high)) {
            size -= 1;
        }
        let last = if size >= 128 { u128::MAX } else { cursor + ((1u128 << size) - 1) };
        parts.push(format!("{}/{}", literal(field, cursor), bits - size));
        if last >= high || parts.len() > 4 {
            break;
        }
        cursor = last + 1;
    }
    if parts.len() > 4 {
        out.push(format!("{}..{}", literal(field, low), literal(field, high)));
    } else {
        out.extend(parts.into_iter().map(|p| p.strip_suffix(&format!("/{bits}")).map_or(p.clone(), str::to_string)));
    }
}

/// A value as the rule language writes it for this field.
pub(crate) fn literal(field: Field, value: u128) -> String {
    match field.kind() {
        ValueKind::Ipv4 => Ipv4Addr::from(value as u32).to_string(),
        ValueKind::Ipv6 => Ipv6Addr::from(value).to_string(),
        ValueKind::Mac => {
            let bytes = (value as u64).to_be_bytes();
            bytes[2..].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
        }
        ValueKind::Uint(_) if matches!(field, Field::EthType) => format!("{value:#06x}"),
        ValueKind::Uint(_) => value.to_string(),
    }
}
