//! Property tests of the front end: random bytes and random sequences of the language's
//! own tokens never panic [`check_source`]; whatever does check is a program the
//! interpreter runs on random and hand-built frames without panicking.

use pfc_compiler::check::names;
use pfc_compiler::eval::evaluate;
use pfc_compiler::packet::{ExtKind, Packet};
use pfc_compiler::program::Program;
use pfc_compiler::{check_source, diagnostic::has_errors};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// Words and punctuation of the language, and some near misses.
const PUNCTUATION: &[&str] =
    &["==", "!=", "<", "<=", ">", ">=", "&", "|", ":", "=", ",", "..", "/", "(", ")", "{", "}", "\n", "#", "\"", "-"];
const KEYWORDS: &[&str] =
    &["hook", "default", "set", "const", "rule", "if", "and", "or", "not", "in", "pcap", "pass", "drop"];
const WORDS: &[&str] =
    &["xdp", "tc", "ingress", "egress", "ip", "port", "u8", "u16", "u32", "mac", "proto", "name", "web", "x"];
const LITERALS: &[&str] = &[
    "0",
    "1",
    "22",
    "53",
    "255",
    "256",
    "4095",
    "65535",
    "65536",
    "0x10",
    "0xffffffff",
    "10.0.0.1",
    "10.0.0.0",
    "192.168.1.255",
    "1.2.3",
    "2001:db8::1",
    "::",
    "fe80::",
    "02:00:5e:00:00:01",
    "8",
    "24",
    "32",
    "64",
    "128",
    "\"udp port 53\"",
    "99999999999999999999999999999999999999999",
];

/// One token: any of the above, a field name, or a named value.
fn token() -> impl Strategy<Value = String> {
    let fields: Vec<&'static str> = names::surface_field_names().chain(names::BARE_PROTOCOLS.iter().copied()).collect();
    let named: Vec<&'static str> =
        [names::TCP_FLAGS, names::ICMP_TYPES, names::ICMP6_TYPES, names::IP_PROTOCOLS, names::SERVICES]
            .iter()
            .flat_map(|table| table.iter().map(|(name, _)| *name))
            .collect();
    prop_oneof![
        3 => prop::sample::select(PUNCTUATION),
        2 => prop::sample::select(KEYWORDS),
        1 => prop::sample::select(WORDS),
        3 => prop::sample::select(LITERALS),
        3 => prop::sample::select(fields),
        2 => prop::sample::select(named),
    ]
    .prop_map(str::to_string)
}

/// Tokens joined by single spaces (sometimes none, to glue tokens together).
fn token_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec((token(), prop::bool::weighted(0.9)), 0..max)
        .prop_map(|tokens| tokens.into_iter().map(|(token, space)| if space { token + " " } else { token }).collect())
}

/// Fields with values of their type (a few out of range), for atoms that mostly check.
#[rustfmt::skip]
const TYPED: &[(&str, &[&str])] = &[
    ("tcp.dport", &["22", "ssh", "1024", "65535"]),     ("l4.sport", &["53", "dns", "0"]),
    ("udp.len", &["8", "512"]),                          ("ip.src", &["10.0.0.1", "2001:db8::1"]),
    ("ip.dst", &["192.168.1.255", "fe80::"]),           ("ipv4.ttl", &["1", "64", "256"]),
    ("ip.ttl", &["0", "255"]),                           ("vlan.id", &["1", "4095"]),
    ("vlan.pcp", &["0", "7"]),                           ("eth.src", &["02:00:5e:00:00:01"]),
    ("eth.type", &["ipv4", "arp", "0x86dd"]),            ("icmp.type", &["echo-request", "8"]),
    ("icmp6.type", &["neighbor-solicitation", "128"]),  ("ip.proto", &["tcp", "17"]),
    ("pkt.len", &["64", "1500"]),                        ("ipv6.flow_label", &["0", "1048575"]),
    ("arp.op", &["request", "2"]),                       ("arp.sip", &["10.0.0.1"]),
    ("ipv4.frag_offset", &["0", "8191"]),                ("tcp.flags", &["syn", "ack", "0x12"]),
    ("ip.len", &["1024", "65575"]),                      ("ip.dscp", &["46", "63"]),
];

/// A well-formed condition built from the grammar: mostly well-typed atoms, some random.
fn condition() -> impl Strategy<Value = String> {
    let fields: Vec<&'static str> = names::surface_field_names().collect();
    let ops = prop::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]);
    let value = prop::sample::select(LITERALS[..21].to_vec());
    let typed =
        prop::sample::select(TYPED).prop_flat_map(|(field, values)| (Just(field), prop::sample::select(values)));
    let atom = prop_oneof![
        2 => prop::sample::select(names::BARE_PROTOCOLS).prop_map(str::to_string),
        4 => (typed.clone(), ops.clone()).prop_map(|((field, value), op)| format!("{field} {op} {value}")),
        2 => (typed.clone(), typed.clone()).prop_map(|((field, low), (_, high))| format!("{field} not in {{ {low}, {high} }}")),
        1 => prop::sample::select(&["ip.src in 10.0.0.0/8", "ip.dst not in 2001:db8::/32", "l4.dport in 1024..65535",
            "tcp.flags & (syn | ack) == syn", "ipv4.df", "not ipv4.mf", "tcp.dport == port_c", "ip.src in nets",
            "tcp.flags & fin", "ip.src != 10.0.0.1", "ip.dst == 10.0.0.2"][..]).prop_map(str::to_string),
        1 => (prop::sample::select(fields), ops, value).prop_map(|(f, o, v)| format!("{f} {o} {v}")),
    ];
    atom.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| parts.join(" and ")),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| parts.join(" or ")),
            inner.clone().prop_map(|part| format!("not {part}")),
            inner.prop_map(|part| format!("({part})")),
        ]
    })
}

/// A rule file around generated conditions, with a set and a constant they may use.
fn rule_file() -> impl Strategy<Value = String> {
    let hook = prop::sample::select(&["xdp", "tc ingress", "tc egress"][..]);
    let default = prop::sample::select(&["pass", "drop"][..]);
    (hook, default, prop::collection::vec(condition(), 1..5)).prop_map(|(hook, default, conditions)| {
        let mut text = format!(
            "hook {hook}\ndefault {default}\nset nets: ip = {{ 10.0.0.0/8, 2001:db8::/32 }}\nconst port_c = 8080\n"
        );
        for (index, condition) in conditions.iter().enumerate() {
            let verdict = if index % 2 == 0 { "drop" } else { "pass" };
            text.push_str(&format!("rule r{index}: {verdict} if {condition}\n"));
        }
        text
    })
}

/// Frames to run programs on: one per parse path, plus random bytes.
fn frames(random: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut frames = vec![
        Packet::eth().ipv4("10.0.0.1", "192.168.1.255").tcp(1024, 22).build(),
        Packet::eth().vlan(7).ipv4("10.1.2.3", "10.0.0.1").udp(53, 53).build(),
        Packet::eth().ipv6("2001:db8::1", "fe80::1").ext(ExtKind::HopByHop, 0).tcp(80, 8080).build(),
        Packet::eth().ipv6("::1", "::2").icmp6(128, 0).build(),
        Packet::eth().ipv4("1.2.3.4", "5.6.7.8").icmp(8, 0).build(),
        Packet::eth().arp(1, "10.0.0.1", "10.0.0.2").build(),
        Packet::eth().ipv4("10.0.0.1", "10.0.0.2").sctp(1, 2).truncate(40).build(),
        Vec::new(),
    ];
    frames.extend(random.iter().cloned());
    frames
}

/// Checks `text`; when it checks without errors, runs the program on every frame.
fn check_and_run(text: &str, random_frames: &[Vec<u8>]) -> Option<Program> {
    let (program, diagnostics) = check_source(text);
    assert_eq!(program.is_some(), !has_errors(&diagnostics), "a program comes back exactly when there are no errors");
    let program = program?;
    for frame in frames(random_frames) {
        let outcome = evaluate(&program, &frame);
        let expected = outcome.rule.map_or(program.default, |index| program.rules[index].verdict);
        assert_eq!(outcome.verdict, expected);
    }
    Some(program)
}

fn random_frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 0..4)
}

proptest! {
    #![proptest_config(Config { cases: 2048, ..Config::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_and_run(&String::from_utf8_lossy(&bytes), &[]);
    }

    #[test]
    fn random_tokens_never_panic(text in token_text(80), frames in random_frames()) {
        check_and_run(&text, &frames);
    }

    #[test]
    fn random_tokens_in_a_rule_never_panic(text in token_text(40), frames in random_frames()) {
        check_and_run(&format!("default pass\nrule r: drop if {text}\n"), &frames);
    }

    #[test]
    fn generated_rule_files_check_and_run(text in rule_file(), frames in random_frames()) {
        check_and_run(&text, &frames);
    }
}

/// The property above is not vacuous: a fair share of generated files do check, so
/// the interpreter really runs on checker output.
#[test]
fn generated_rule_files_often_check() {
    let mut runner = TestRunner::deterministic();
    let strategy = rule_file();
    let mut checked = 0;
    for _ in 0..300 {
        let text = strategy.new_tree(&mut runner).expect("generate").current();
        if check_and_run(&text, &[]).is_some() {
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} of 300 generated rule files checked without errors");
}
