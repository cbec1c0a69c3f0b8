//! Dynamic sets in the interpreter: rules test a set's *current* contents, which change
//! between packets without a new program; the rule file's elements are only the first
//! contents. Each case is data: contents per set, then packets and the outcome expected.

use pfc_compiler::eval::evaluate;
use pfc_compiler::fields::ValueKind;
use pfc_compiler::packet::Packet;
use pfc_compiler::program::{DynamicElement, Program};

const RULES: &str = "\
default pass
set banned: ip dynamic size 10
set ports: port dynamic = { 22 }
rule ssh: drop if tcp.dport in ports
rule ban: drop if ip.src in banned
rule v4_unbanned: pass if ip.src not in banned and udp
";

/// `10.0.0.0/8`, `2001:db8::1`, `53` as a dynamic set element.
fn element(text: &str) -> DynamicElement {
    let (address, length) = text.split_once('/').map_or((text, None), |(a, l)| (a, Some(l.parse::<u32>().unwrap())));
    let (kind, bits, value) = if let Ok(v4) = address.parse::<std::net::Ipv4Addr>() {
        (ValueKind::Ipv4, 32, u128::from(u32::from(v4)))
    } else if let Ok(v6) = address.parse::<std::net::Ipv6Addr>() {
        (ValueKind::Ipv6, 128, u128::from(v6))
    } else {
        return DynamicElement { kind: ValueKind::Uint(128), low: text.parse().unwrap(), high: text.parse().unwrap() };
    };
    let host = bits - length.unwrap_or(bits);
    let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
    DynamicElement { kind, low: value & !mask, high: value | mask }
}

fn set(program: &mut Program, name: &str, elements: &[&str]) {
    program.dynamic_set_mut(name).unwrap().set_elements(elements.iter().map(|text| element(text)).collect());
}

fn outcomes(program: &Program, packets: &[(&str, Packet)]) -> String {
    let names: Vec<String> = packets
        .iter()
        .map(|(name, packet)| {
            let outcome = evaluate(program, &packet.build());
            let rule = outcome.rule.map_or("default", |index| program.rules[index].name.as_str());
            format!("{name}: {} {rule}", outcome.verdict.as_str())
        })
        .collect();
    names.join(", ")
}

#[test]
fn membership_follows_the_current_contents() {
    let (program, diagnostics) = pfc_compiler::check_source(RULES);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let mut program = program.unwrap();
    let packets = [
        ("v4 tcp/80", Packet::eth().ipv4("10.1.2.3", "192.0.2.1").tcp(1000, 80)),
        ("v4 udp/53", Packet::eth().ipv4("10.1.2.3", "192.0.2.1").udp(1000, 53)),
        ("v6 tcp/80", Packet::eth().ipv6("2001:db8::1", "2001:db8::2").tcp(1000, 80)),
        ("v4 tcp/22", Packet::eth().ipv4("192.0.2.9", "192.0.2.1").tcp(1000, 22)),
    ];
    let mut seen = vec![format!("initial: {}", outcomes(&program, &packets))];
    set(&mut program, "banned", &["10.0.0.0/8"]);
    seen.push(format!("banned 10/8: {}", outcomes(&program, &packets)));
    set(&mut program, "banned", &["10.1.0.0/16", "10.0.0.0/8", "2001:db8::/32"]);
    set(&mut program, "ports", &["53"]);
    seen.push(format!("nested prefixes, v6, ports 53: {}", outcomes(&program, &packets)));
    set(&mut program, "banned", &["10.2.0.0/16"]);
    set(&mut program, "ports", &[]);
    seen.push(format!("10.2/16, no ports: {}", outcomes(&program, &packets)));
    assert_eq!(
        seen,
        [
            "initial: v4 tcp/80: pass default, v4 udp/53: pass v4_unbanned, v6 tcp/80: pass default, v4 tcp/22: drop ssh",
            "banned 10/8: v4 tcp/80: drop ban, v4 udp/53: drop ban, v6 tcp/80: pass default, v4 tcp/22: drop ssh",
            "nested prefixes, v6, ports 53: v4 tcp/80: drop ban, v4 udp/53: drop ban, v6 tcp/80: drop ban, v4 tcp/22: pass default",
            "10.2/16, no ports: v4 tcp/80: pass default, v4 udp/53: pass v4_unbanned, v6 tcp/80: pass default, v4 tcp/22: pass default",
        ]
    );
}

#[test]
fn a_dynamic_set_compiles_into_a_map_per_set_and_a_generation_array() {
    let (compiled, diagnostics) = pfc_compiler::compile::compile(RULES, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let asm = compiled.code.disassemble();
    assert!(asm.contains("in dynamic set `banned`") && asm.contains("in dynamic set `ports`"), "{asm}");
    let manifest = serde_json::to_value(&compiled.manifest).expect("a manifest serializes");
    let sets = &manifest["dynamic_sets"];
    assert_eq!(sets["generation_map"], pfc_compiler::object::maps::SET_GENERATION_MAP_NAME);
    let described: Vec<String> = sets["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|set| {
            let maps = set["maps"].as_array().unwrap().iter();
            let maps: Vec<String> =
                maps.map(|map| format!("{}={}/{}", map["map"], map["family"], map["generation"])).collect();
            format!("{} {} {} {} {}", set["name"], set["type"], set["kind"], set["size"], maps.join(" "))
        })
        .collect();
    assert_eq!(
        described,
        [
            r#""banned" "ip" "prefixes" 10 "pfc_set_0a"="ipv4"/0 "pfc_set_0b"="ipv4"/1 "pfc_set_0c"="ipv6"/0 "pfc_set_0d"="ipv6"/1"#,
            r#""ports" "port" "values" 65536 "pfc_set_1e"="number"/0 "pfc_set_1f"="number"/1"#,
        ]
    );
}
