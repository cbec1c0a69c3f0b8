//! Static sets too large for a decision tree, compiled into kernel maps: the interpreter
//! (which reads the static set), rbpf (JIT and interpreter) and the kernel
//! (`BPF_PROG_TEST_RUN`; skipped with a reason without privileges) agree on packets inside
//! and outside 20,000- and 100,000-prefix sets (IPv4 /16–/32 and IPv6 /32–/64 mixed) and a
//! 30,000-value port set, and the kernel verifier accepts the objects. The maps get their
//! contents from the object itself (`.pfc.sets`), through `Executor`, as `pfc load` writes
//! them: what is tested is what ships.

use pfc_compiler::compile::{compile, Compiled};
use pfc_compiler::eval::evaluate;
use pfc_compiler::object::read_set_contents;
use pfc_compiler::program::dynamic::element_text;
use pfc_compiler::testcase::spec_bytes;
use pfc_runtime::executor::{Backend, Executor, Ran, SetupError};
use pfc_runtime::BpfObject;
use pfc_test_support::Random;

/// `count` prefixes as written in a rule file: 3 in 4 IPv4 /16–/32, 1 in 4 IPv6 /32–/64
/// under 2001:db8::/32; never inside 192.0.2.0/24 or 2001:db8:ffff::/48 (the misses).
fn prefixes(count: usize, seed: u64) -> Vec<(u128, u32, bool)> {
    let mut random = Random(seed);
    (0..count)
        .map(|index| {
            let bits = random.next();
            if index % 4 == 3 {
                let length = 32 + (bits % 33) as u32;
                let mut value = u128::from(bits) << 64 | 0x2001_0db8 << 96;
                if (value >> 80) as u16 == 0xffff {
                    value ^= 1 << 80;
                }
                (value & !((1u128 << (128 - length)) - 1), length, true)
            } else {
                let length = 16 + (bits % 17) as u32;
                let mut value = (bits >> 32) as u32;
                if value >> 8 == 0x00c0_0002 {
                    value ^= 0x0100_0000;
                }
                let mask = if length == 32 { u32::MAX } else { !(u32::MAX >> length) };
                (u128::from(value & mask), length, false)
            }
        })
        .collect()
}

fn address(value: u128, v6: bool) -> String {
    match v6 {
        true => std::net::Ipv6Addr::from(value).to_string(),
        false => std::net::Ipv4Addr::from(value as u32).to_string(),
    }
}

/// A rule file with a big `ip` set (tested on source and destination), a big port set of
/// odd ports, a small static set and a dynamic one beside them.
fn rules(count: usize) -> String {
    let big: Vec<String> = prefixes(count, 0x9e37_79b9_7f4a_7c15)
        .iter()
        .map(|(value, length, v6)| format!("{}/{length}", address(*value, *v6)))
        .collect();
    let odd: Vec<String> = (0..30_000u32).map(|index| (2 * index + 1).to_string()).collect();
    format!(
        "default pass\n\
         set big: ip = {{ {} }}\n\
         set odd: port = {{ {} }}\n\
         set banned: ip dynamic = {{ 198.51.100.7 }}\n\
         rule office: pass if ip.src in {{ 10.0.0.0/8 }} and tcp.dport == 22\n\
         rule ban: drop if ip.src in banned\n\
         rule big_src: drop if ip.src in big and tcp\n\
         rule big_dst: drop if ip.dst in big and udp.dport in odd\n\
         rule not_big: pass if ip.dst not in big and icmp\n\
         rule odd_ports: drop if tcp.dport in odd\n",
        big.join(", "),
        odd.join(", ")
    )
}

/// Packets at both ends of some of the set's prefixes and just outside them, and misses.
fn packets(count: usize) -> Vec<Vec<u8>> {
    let mut specs = Vec::new();
    let sample = prefixes(count, 0x9e37_79b9_7f4a_7c15);
    for (index, (value, length, v6)) in sample.iter().enumerate().step_by(count / 40) {
        let bits = if *v6 { 128 } else { 32 };
        let last = value | ((1u128 << (bits - length)) - 1) & if *v6 { u128::MAX } else { u128::from(u32::MAX) };
        let (family, other) = if *v6 { ("ipv6", "2001:db8:ffff::1") } else { ("ipv4", "192.0.2.1") };
        let around = [*value, last, value.wrapping_sub(1), last.wrapping_add(1)];
        for (position, inside) in around.iter().enumerate() {
            let probe = address(*inside & if *v6 { u128::MAX } else { u128::from(u32::MAX) }, *v6);
            let l4 = ["tcp dport=80", "udp dport=53", "udp dport=54", "tcp dport=23"][(index + position) % 4];
            specs.push(format!("{family} src={probe} dst={other} / {l4}"));
            specs.push(format!("{family} src={other} dst={probe} / {l4}"));
        }
    }
    for miss in ["ipv4 src=192.0.2.9 dst=192.0.2.10", "ipv6 src=2001:db8:ffff::9 dst=2001:db8:ffff::10"] {
        for l4 in ["tcp dport=80", "tcp dport=81", "udp dport=7", "icmp echo-request"] {
            if !(miss.starts_with("ipv6") && l4.starts_with("icmp")) {
                specs.push(format!("{miss} / {l4}"));
            }
        }
    }
    specs.push("ipv4 src=198.51.100.7 dst=192.0.2.1 / udp dport=8".to_string());
    specs.push("eth / arp".to_string());
    specs.iter().map(|spec| spec_bytes(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))).collect()
}

fn compiled(count: usize) -> Compiled {
    let (compiled, diagnostics) = compile(&rules(count), Default::default());
    compiled.unwrap_or_else(|| panic!("{count} prefixes: {diagnostics:?}"))
}

/// Each executor's outcome equals the interpreter's on every packet; returns how many
/// packets each rule decided (so a test can see that the sets were hit and missed).
fn agree(compiled: &Compiled, backend: Backend, packets: &[Vec<u8>]) -> Result<Vec<usize>, SetupError> {
    let object = BpfObject::parse(&compiled.object).expect("pfc's object parses");
    let mut executor = Executor::new(&object, &compiled.object, backend)?;
    let mut decided = vec![0; compiled.program.rules.len() + 1];
    // The dynamic set's rule-file contents, as `pfc load` writes them.
    for (name, keys) in pfc_compiler::program::dynamic::initial_entries(&compiled.program.dynamic_sets) {
        let map = object.map_index(&name).expect("the dynamic set's maps");
        for key in keys {
            executor.map_update(map, key.as_bytes(), &pfc_compiler::program::dynamic::VALUE).expect("update");
        }
    }
    for packet in packets {
        let want = evaluate(&compiled.program, packet);
        let got = match executor.run(packet).expect("runs") {
            Ran::Decided(got) => got,
            Ran::Refused(reason) => panic!("refused: {reason}"),
        };
        assert_eq!(got, want, "{backend:?} on {packet:02x?}");
        decided[want.rule.unwrap_or(compiled.program.rules.len())] += 1;
    }
    Ok(decided)
}

fn check(count: usize) {
    let compiled = compiled(count);
    let sets = compiled.manifest.dynamic_sets.as_ref().expect("sets in maps");
    let mut fixed: Vec<(&str, &str)> = sets
        .sets
        .iter()
        .filter(|set| set.contents.is_some())
        .map(|set| (set.name.as_str(), set.element_type.as_str()))
        .collect();
    fixed.sort_unstable();
    assert_eq!(fixed, [("big", "ipv4"), ("big", "ipv6"), ("odd", "number")], "{count}");
    let contents = read_set_contents(&compiled.object, &compiled.manifest).expect("contents read");
    let keys: usize = contents.iter().map(Vec::len).sum();
    assert!(keys > count / 2 + 30_000, "{count}: {keys} keys in the object");
    let packets = packets(count);
    let decided = agree(&compiled, Backend::Vm, &packets).expect("the VM takes the object");
    for rule in ["ban", "big_src", "big_dst", "not_big", "odd_ports"] {
        let index = compiled.program.rules.iter().position(|r| r.name == rule).expect("rule");
        assert!(decided[index] > 0, "{count}: no packet decided by {rule}: {decided:?}");
    }
    assert!(decided[compiled.program.rules.len()] > 0, "{count}: no packet got the default");
    assert_eq!(agree(&compiled, Backend::VmInterpreter, &packets).expect("the VM takes it"), decided);
    match agree(&compiled, Backend::Kernel, &packets) {
        Ok(kernel) => assert_eq!(kernel, decided),
        Err(SetupError::Privileges { source }) => println!("kernel skipped: {source}"),
        Err(error) => panic!("{count}: the kernel refused the object: {error:?}"),
    }
}

#[test]
fn a_20000_prefix_set_in_a_map_agrees_everywhere() {
    check(20_000);
}

#[test]
fn a_100000_prefix_set_in_a_map_agrees_everywhere() {
    check(100_000);
}

/// The set's elements as `pfc set list` would print them read back from the object.
#[test]
fn the_objects_keys_are_the_sets_elements() {
    let compiled = compiled(20_000);
    let contents = read_set_contents(&compiled.object, &compiled.manifest).expect("contents read");
    for (set, keys) in compiled.filter.dynamic_sets.iter().zip(&contents).filter(|(set, _)| set.fixed) {
        let kind = set.kind;
        let texts: Vec<String> = keys
            .iter()
            .map(|key| element_text(&pfc_compiler::program::dynamic::key_element(kind, key).expect("a pfc key")))
            .collect();
        let mut want: Vec<String> = set.elements.iter().map(element_text).collect();
        want.sort();
        let mut texts = texts;
        texts.sort();
        assert_eq!(texts, want, "{}", set.name);
    }
}
