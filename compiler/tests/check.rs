//! What the checker makes of a condition: rule text in, the resolved [`Cond`] of the
//! last rule out, printed compactly (`or(ipv4.src == 10.0.0.1, ipv6)`). Covers the
//! expansion of `ip.*`/`l4.*`, named values, constants, sets, masks, bare tests and the
//! normalisation of ranges and prefixes to intervals. One line per case.

use std::net::Ipv6Addr;

use pfc_compiler::check_source;
use pfc_compiler::diagnostic::has_errors;
use pfc_compiler::fields::{Field, ValueKind};
use pfc_compiler::program::{Cond, Program, TestOp};

/// `input` is declarations, one per line, then the condition of a rule on the last line
/// (empty: a rule without `if`). Asserts the rendered condition of that rule.
#[track_caller]
fn check(input: &str, expected: &str) {
    let (declarations, condition) = input.rsplit_once('\n').unwrap_or(("", input));
    let rule = if condition.is_empty() { "rule r: drop".to_string() } else { format!("rule r: drop if {condition}") };
    let source = format!("default pass\n{declarations}\n{rule}\n");
    let (program, diagnostics) = check_source(&source);
    assert!(!has_errors(&diagnostics), "{input}: {diagnostics:#?}");
    let program = program.expect("no errors, so a program");
    let last = program.rules.last().expect("one rule");
    assert_eq!(render(&last.condition, &program), expected, "{input}");
}

fn render(cond: &Cond, program: &Program) -> String {
    let list = |conds: &[Cond]| conds.iter().map(|c| render(c, program)).collect::<Vec<_>>().join(", ");
    match cond {
        Cond::True => "true".to_string(),
        Cond::False => "false".to_string(),
        Cond::Proto(proto) => proto.name().to_string(),
        Cond::Not(inner) => format!("not({})", render(inner, program)),
        Cond::And(all) => format!("and({})", list(all)),
        Cond::Or(any) => format!("or({})", list(any)),
        Cond::Pcap(id) => format!("pcap#{}", id.0),
        Cond::Limit(id) => format!("limit#{}: {}", id.0, program.limit(*id).describe()),
        Cond::Test(test) => {
            let field = test.field;
            let mask = test.mask.map(|mask| format!(" & {mask:#x}")).unwrap_or_default();
            let right = match test.op {
                TestOp::Cmp(op, value) => format!("{} {}", op.as_str(), value_text(field, value)),
                TestOp::In(set) => format!("in {}", set_text(field, program, set)),
                TestOp::NotIn(set) => format!("not in {}", set_text(field, program, set)),
                TestOp::InDynamic(set) => format!("in dynamic {}", program.dynamic_set(set).name),
                TestOp::NotInDynamic(set) => format!("not in dynamic {}", program.dynamic_set(set).name),
            };
            format!("{}{mask} {right}", field.name())
        }
    }
}

fn set_text(field: Field, program: &Program, set: pfc_compiler::program::SetId) -> String {
    let intervals: Vec<String> = program
        .set(set)
        .intervals
        .iter()
        .map(|&(low, high)| match low == high {
            true => value_text(field, low),
            false => format!("{}..{}", value_text(field, low), value_text(field, high)),
        })
        .collect();
    format!("{{{}}}", intervals.join(", "))
}

/// A value the way it would be written for the field's type.
fn value_text(field: Field, value: u128) -> String {
    match field.kind() {
        ValueKind::Uint(_) => value.to_string(),
        ValueKind::Ipv4 => std::net::Ipv4Addr::from(value as u32).to_string(),
        ValueKind::Ipv6 => Ipv6Addr::from(value).to_string(),
        ValueKind::Mac => {
            let bytes = (value as u64).to_be_bytes();
            bytes[2..].iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(":")
        }
    }
}

#[test]
#[rustfmt::skip]
fn ip_fields_split_by_family() {
    check("ip.src == 10.0.0.1", "ipv4.src == 10.0.0.1");
    check("ip.src == 2001:db8::1", "ipv6.src == 2001:db8::1");
    check("ip.dst in 10.0.0.0/8", "ipv4.dst in {10.0.0.0..10.255.255.255}");
    check("ip.dst in { 10.0.0.0/8, 2001:db8::/32 }", "or(ipv4.dst in {10.0.0.0..10.255.255.255}, ipv6.dst in {2001:db8::..2001:db8:ffff:ffff:ffff:ffff:ffff:ffff})");
    check("ip.src != 10.0.0.1", "or(ipv4.src != 10.0.0.1, ipv6)");
    check("ip.src != 2001:db8::1", "or(ipv6.src != 2001:db8::1, ipv4)");
    check("ip.src not in 10.0.0.0/8", "or(ipv4.src not in {10.0.0.0..10.255.255.255}, ipv6.src not in {})");
    check("ip.src == 10.0.0.1 or ip.src == ::1", "or(ipv4.src == 10.0.0.1, ipv6.src == ::1)");
    check("ip.proto == tcp", "or(ipv4.proto == 6, ipv6.proto == 6)");
    check("ip.ttl < 2", "or(ipv4.ttl < 2, ipv6.hop_limit < 2)");
    check("ip.len > 1024", "or(ipv4.len > 1024, ipv6.len > 1024)");
    check("ip.dscp == 46", "or(ipv4.dscp == 46, ipv6.dscp == 46)");
    check("ip.proto in { tcp, udp }", "or(ipv4.proto in {6, 17}, ipv6.proto in {6, 17})");
}

#[test]
#[rustfmt::skip]
fn l4_fields_split_by_transport() {
    check("l4.dport == 53", "or(tcp.dport == 53, udp.dport == 53, sctp.dport == 53)");
    check("l4.sport in 1024..65535", "or(tcp.sport in {1024..65535}, udp.sport in {1024..65535}, sctp.sport in {1024..65535})");
    check("l4.dport != 22", "or(tcp.dport != 22, udp.dport != 22, sctp.dport != 22)");
    check("l4.dport & 0xff00 == 0x100", "or(tcp.dport & 0xff00 == 256, udp.dport & 0xff00 == 256, sctp.dport & 0xff00 == 256)");
}

#[test]
#[rustfmt::skip]
fn named_values_resolve_per_field() {
    check("tcp.flags & (syn | ack) == syn", "tcp.flags & 0x12 == 2");
    check("tcp.flags & syn", "tcp.flags & 0x2 != 0");
    check("tcp.flags == fin | psh | urg", "tcp.flags == 41");
    check("icmp.type == echo-request", "icmp.type == 8");
    check("icmp6.type == echo-request", "icmp6.type == 128");
    check("icmp6.type == neighbor-solicitation", "icmp6.type == 135");
    check("tcp.dport == ssh", "tcp.dport == 22");
    check("udp.dport in { dns, ntp }", "udp.dport in {53, 123}");
    check("eth.type == arp", "eth.type == 2054");
    check("arp.op == request", "arp.op == 1");
    check("ipv6.proto == icmp6", "ipv6.proto == 58");
}

#[test]
#[rustfmt::skip]
fn constants_and_sets_are_inlined() {
    check("const admin = 192.0.2.10\nip.src == admin", "ipv4.src == 192.0.2.10");
    check("const web = 8080\nconst alt = web\ntcp.dport == alt", "tcp.dport == 8080");
    check("const nets = 10.0.0.0/8\nip.src in nets", "ipv4.src in {10.0.0.0..10.255.255.255}");
    check("const low = 1024\nconst high = 2048\ntcp.dport in low..high", "tcp.dport in {1024..2048}");
    check("const ssh_port = ssh\ntcp.dport == ssh_port", "tcp.dport == 22");
    check("set web: port = { http, https, 8000..8100 }\ntcp.dport in web", "tcp.dport in {80, 443, 8000..8100}");
    check("set office: ip = { 10.0.0.0/8, 2001:db8::/48 }\nip.src in office", "or(ipv4.src in {10.0.0.0..10.255.255.255}, ipv6.src in {2001:db8::..2001:db8:0:ffff:ffff:ffff:ffff:ffff})");
    check("set office: ipv4 = { 10.0.0.0/8 }\nip.dst not in office", "or(ipv4.dst not in {10.0.0.0..10.255.255.255}, ipv6.dst not in {})");
    check("set routers: mac = { 02:00:5e:00:00:01 }\neth.src in routers", "eth.src in {02:00:5e:00:00:01}");
    check("set weird: proto = { gre, esp, 132 }\nip.proto in weird", "or(ipv4.proto in {47, 50, 132}, ipv6.proto in {47, 50, 132})");
    // An `ip` set tested by a field of one family: its elements of that family (as a
    // dynamic `ip` set is); other sets and inline sets of the wrong kind stay E0008.
    check("set office: ip = { 10.0.0.0/8, 2001:db8::/48 }\nipv4.src in office", "ipv4.src in {10.0.0.0..10.255.255.255}");
    check("set office: ip = { 10.0.0.0/8, 2001:db8::/48 }\narp.tip not in office", "arp.tip not in {10.0.0.0..10.255.255.255}");
    check("set v6: ip = { 2001:db8::/48 }\nipv4.src in v6", "false");
    refused("set office: ipv4 = { 10.0.0.0/8 }\nipv6.src in office", "E0008");
    refused("set office: ip = { 10.0.0.0/8 }\ntcp.dport in office", "E0008");
    refused("ipv4.src in { 10.0.0.0/8, 2001:db8::/48 }", "E0008");
}

#[test]
#[rustfmt::skip]
fn ranges_and_prefixes_become_merged_intervals() {
    check("tcp.dport in 1000..2000", "tcp.dport in {1000..2000}");
    check("tcp.dport in { 22, 23 }", "tcp.dport in {22..23}");
    check("tcp.dport in { 1..10, 5..20, 30, 22 }", "tcp.dport in {1..20, 22, 30}");
    check("tcp.dport not in { 80, 443 }", "tcp.dport not in {80, 443}");
    check("ip.src in { 10.0.0.0/24, 10.0.1.0/24 }", "ipv4.src in {10.0.0.0..10.0.1.255}");
    check("ip.src in 10.0.0.1..10.0.0.9", "ipv4.src in {10.0.0.1..10.0.0.9}");
    check("ip.src in 10.1.2.3/8", "ipv4.src in {10.0.0.0..10.255.255.255}");
    check("ip.src in 0.0.0.0/0", "ipv4.src in {0.0.0.0..255.255.255.255}");
    check("ip.src in ::/0", "ipv6.src in {::..ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff}");
    check("ip.src in 192.0.2.7/32", "ipv4.src in {192.0.2.7}");
}

#[test]
#[rustfmt::skip]
fn bare_tests_and_structure() {
    check("ipv4.df", "ipv4.df == 1");
    check("ipv4.mf and ipv4.frag_offset > 0", "and(ipv4.mf == 1, ipv4.frag_offset > 0)");
    check("ip", "or(ipv4, ipv6)");
    check("l4", "or(tcp, udp, sctp)");
    check("vlan and vlan.id == 100", "and(vlan, vlan.id == 100)");
    check("arp", "arp");
    check("not tcp.dport == 22", "not(tcp.dport == 22)");
    check("tcp.dport != 22", "tcp.dport != 22");
    check("tcp or udp and not icmp", "or(tcp, and(udp, not(icmp)))");
    check("(tcp or udp) and pkt.len > 0x400", "and(or(tcp, udp), pkt.len > 1024)");
    check("not not tcp", "not(not(tcp))");
    check("eth.src == 02:00:5e:00:00:01", "eth.src == 02:00:5e:00:00:01");
    check("ipv6.flow_label == 0xfffff", "ipv6.flow_label == 1048575");
    check("", "true");
}

/// The codes of every diagnostic that checking `input` (as in [`check`]) reports.
fn codes(input: &str) -> Vec<String> {
    let (declarations, condition) = input.rsplit_once('\n').unwrap_or(("", input));
    let source = format!("default pass\n{declarations}\nrule r: drop if {condition}\n");
    check_source(&source).1.iter().map(|diagnostic| diagnostic.code.0.to_string()).collect()
}

/// Checking `input` (as in [`check`]) reports `code`.
#[track_caller]
fn refused(input: &str, code: &str) {
    let codes = codes(input);
    assert!(codes.iter().any(|found| found == code), "{input}: expected {code}, got {codes:?}");
}

/// `input` checks to `expected` with warning `code`.
#[track_caller]
fn warned(input: &str, expected: &str, code: &str) {
    check(input, expected);
    refused(input, code);
}

/// `input` checks to `expected` without any warning.
#[track_caller]
fn quiet(input: &str, expected: &str) {
    check(input, expected);
    assert_eq!(codes(input), Vec::<String>::new(), "{input}");
}

/// `const c1 = c2`, …, `const cN = end`: a name (`c1`) leading through `n` constants.
fn chain(n: usize, end: &str) -> String {
    (1..=n)
        .map(|i| if i == n { format!("const c{i} = {end}\n") } else { format!("const c{i} = c{}\n", i + 1) })
        .collect()
}

#[test]
#[rustfmt::skip]
fn constants_may_name_sets() {
    quiet("set web: port = { 80, 443 }\nconst alt = web\ntcp.dport in alt", "tcp.dport in {80, 443}");
    quiet("set web: port = { 80, 443 }\nconst alt = web\nconst other = alt\ntcp.dport not in other", "tcp.dport not in {80, 443}");
    quiet("const alt = office\nset office: ip = { 10.0.0.0/8 }\nip.src in alt", "ipv4.src in {10.0.0.0..10.255.255.255}");
    // A set (or a constant naming one) is not a value.
    refused("set web: port = { 80 }\nconst alt = web\ntcp.dport == alt", "E0004");
    refused("set web: port = { 80 }\nconst alt = web\ntcp.dport in { alt, 8080 }", "E0004");
}

/// A set named like a named value: `in NAME` is the set, every other use the value (W0007).
#[test]
#[rustfmt::skip]
fn a_set_named_like_a_value_is_the_set_only_after_in() {
    quiet("set ssh: port = { 2222 }\ntcp.dport in ssh", "tcp.dport in {2222}");
    warned("set ssh: port = { 2222 }\ntcp.dport == ssh", "tcp.dport == 22", "W0007");
    warned("set ssh: port = { 2222 }\ntcp.dport in { ssh, 80 }", "tcp.dport in {22, 80}", "W0007");
    warned("set syn: u8 = { 1 }\ntcp.flags & syn", "tcp.flags & 0x2 != 0", "W0007");
    // In another set's body, whatever the order of the statements.
    warned("set mine: port = { ssh, 80 }\nset ssh: port = { 2222 }\ntcp.dport in mine", "tcp.dport in {22, 80}", "W0007");
    // A constant of that name is one meaning everywhere: no warning.
    quiet("const ssh = 2222\ntcp.dport == ssh", "tcp.dport == 2222");
}

/// A name leads through at most 16 constants (the name itself counts); prefixes, ranges,
/// named values and the set at the end do not count.
#[test]
#[rustfmt::skip]
fn constant_chains_are_limited_to_16_constants() {
    quiet(&format!("{}tcp.dport == c1", chain(16, "22")), "tcp.dport == 22");
    refused(&format!("{}tcp.dport == c1", chain(17, "22")), "E0007");
    quiet(&format!("{}tcp.dport == c1", chain(16, "ssh")), "tcp.dport == 22");
    quiet(&format!("{}ip.src in c1/8", chain(16, "10.0.0.0")), "ipv4.src in {10.0.0.0..10.255.255.255}");
    quiet(&format!("{}tcp.dport in c1..c1", chain(16, "22")), "tcp.dport in {22}");
    quiet(&format!("{}tcp.dport in {{ c1, 80 }}", chain(16, "22")), "tcp.dport in {22, 80}");
    quiet(&format!("set web: port = {{ 80 }}\n{}tcp.dport in c1", chain(16, "web")), "tcp.dport in {80}");
    refused(&format!("set web: port = {{ 80 }}\n{}tcp.dport in c1", chain(17, "web")), "E0007");
    refused("const a = b\nconst b = a\ntcp.dport == a", "E0007");
    refused("set web: port = { 80 }\nconst a = b\nconst b = a\ntcp.dport in a", "E0007");
}

/// Surface fields keep the concrete fields whose type fits the number (docs §4.1):
/// `ipv4.len` is u16, `ipv6.len` u17.
#[test]
#[rustfmt::skip]
fn surface_fields_keep_the_fields_a_number_fits() {
    check("ip.len <= 65535", "or(ipv4.len <= 65535, ipv6.len <= 65535)");
    check("ip.len == 70000", "ipv6.len == 70000");
    check("ip.len > 70000", "ipv6.len > 70000");
    check("ip.len >= 65536", "ipv6.len >= 65536");
    check("ip.len < 70000", "or(ipv6.len < 70000, ipv4)");
    check("ip.len <= 70000", "or(ipv6.len <= 70000, ipv4)");
    check("ip.len != 70000", "or(ipv6.len != 70000, ipv4)");
    check("ip.len in 60000..70000", "or(ipv4.len in {60000..65535}, ipv6.len in {60000..70000})");
    check("ip.len < 131071", "or(ipv6.len < 131071, ipv4)");
    refused("ip.len < 131072", "E0005");
    refused("tcp.dport < 65536", "E0005");
}

/// Set bodies: one trailing comma is fine; an empty set or a lone comma is not.
#[test]
#[rustfmt::skip]
fn set_bodies_take_a_trailing_comma_but_no_empty_set() {
    quiet("tcp.dport in { 80, 443, }", "tcp.dport in {80, 443}");
    quiet("set web: port = {\n  80,\n  443,\n}\ntcp.dport in web", "tcp.dport in {80, 443}");
    refused("tcp.dport in { }", "E0010");
    refused("tcp.dport in {}", "E0010");
    refused("set none: port = { }\ntcp.dport in none", "E0010");
    refused("tcp.dport in { , }", "E0001");
    refused("tcp.dport in { 80,, 443 }", "E0001");
    refused("tcp.dport in { 80, 443,, }", "E0001");
}

#[test]
fn dynamic_sets_expand_per_family_and_stay_opaque() {
    check("set b: ip dynamic\nip.src in b", "or(ipv4.src in dynamic b, ipv6.src in dynamic b)");
    check("set b: ipv4 dynamic\nip.src in b", "ipv4.src in dynamic b");
    check("set b: ipv4 dynamic\nip.src not in b", "or(ipv4.src not in dynamic b, ipv6.src not in {})");
    check(
        "set p: port dynamic = { 22 }\nl4.dport in p",
        "or(tcp.dport in dynamic p, udp.dport in dynamic p, sctp.dport in dynamic p)",
    );
    check(
        "set p: port dynamic\nconst alias = p\ntcp.dport & 0xff00 not in alias",
        "tcp.dport & 0xff00 not in dynamic p",
    );
}
