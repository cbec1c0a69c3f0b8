//! Dynamic sets compiled into map lookups: the interpreter, rbpf (JIT and interpreter) and
//! the kernel (`BPF_PROG_TEST_RUN`, skipped with a reason without privileges) agree on
//! every packet while the sets' contents change between rounds, and the kernel verifier
//! accepts every shape of lookup. Contents are written into the maps with the keys of
//! `pfc_compiler::program::dynamic`, as `pfc load` and `pfc set` write them.

use pfc_compiler::eval::evaluate;
use pfc_compiler::fields::ValueKind;
use pfc_compiler::program::dynamic::{element_key, map_key, Family, KEY_SIZE, VALUE};
use pfc_compiler::program::{DynamicElement, DynamicKind, Program};
use pfc_compiler::testcase::spec_bytes;
use pfc_runtime::kernel::{privileges, KernelProgram};
use pfc_runtime::vm::Vm;
use pfc_runtime::BpfObject;

/// Static and dynamic sets mixed, every kind of dynamic set, masks, `not in`, and a rule
/// a dynamic set decides only together with a static one.
const RULES: &str = "\
default pass
set banned: ip dynamic size 100
set admins: ipv4 dynamic size 16 = { 192.0.2.0/24 }
set v6nets: ipv6 dynamic
set ports: port dynamic = { 22 }
set protos: proto dynamic
set macs: mac dynamic
set office: ip = { 10.0.0.0/8, 2001:db8:100::/48 }
rule admin: pass if ipv4.src in admins and tcp.dport == 22
rule mac_ban: drop if eth.src in macs
rule ban: drop if ip.src in banned
rule v6: drop if ipv6.dst in v6nets and not udp
rule masked: drop if tcp.dport & 0xfff0 in ports and ipv6
rule port: drop if tcp.dport in ports and ip.src not in office
rule udp_port: drop if udp.dport in ports
rule proto: drop if ip.proto in protos
rule unbanned_udp: pass if udp and ip.src not in banned
";

/// Contents per round: (set, elements).
const ROUNDS: &[&[(&str, &[&str])]] = &[
    &[],
    &[("banned", &["10.0.0.0/8", "10.1.0.0/16", "198.51.100.7"]), ("ports", &["22", "80"])],
    &[
        ("banned", &["2001:db8::/32", "203.0.113.0/24", "0.0.0.0/0"]),
        ("v6nets", &["2001:db8:2::/48"]),
        ("protos", &["17"]),
        ("macs", &["02:00:00:00:00:02"]),
    ],
    &[("banned", &["10.1.2.3", "2001:db8::1"]), ("admins", &[]), ("ports", &["53", "443"]), ("protos", &["6", "58"])],
    &[("banned", &["::/0", "10.0.0.0/9"]), ("v6nets", &["::/0"]), ("macs", &["02:00:00:00:00:01"])],
];

fn packets() -> Vec<Vec<u8>> {
    let mut specs = Vec::new();
    let v4 = ["10.1.2.3", "10.200.0.1", "192.0.2.9", "198.51.100.7", "203.0.113.77", "8.8.8.8"];
    let v6 = ["2001:db8::1", "2001:db8:100::5", "2001:db8:2::9", "fe80::1"];
    for (index, source) in v4.iter().enumerate() {
        let destination = v4[(index + 3) % v4.len()];
        for l4 in ["tcp dport=22", "tcp dport=80", "udp dport=53", "udp dport=443", "icmp echo-request"] {
            specs.push(format!("ipv4 src={source} dst={destination} / {l4}"));
        }
    }
    for (index, source) in v6.iter().enumerate() {
        let destination = v6[(index + 2) % v6.len()];
        for l4 in ["tcp dport=22", "udp dport=53", "tcp dport=443"] {
            specs.push(format!("ipv6 src={source} dst={destination} / {l4}"));
        }
    }
    for mac in ["02:00:00:00:00:01", "02:00:00:00:00:02"] {
        specs.push(format!("eth src={mac} / ipv4 src=192.0.2.1 dst=192.0.2.2 / udp dport=9"));
    }
    specs.push("eth / arp".to_string());
    specs.iter().map(|spec| spec_bytes(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))).collect()
}

/// `10.0.0.0/8`, `2001:db8::1`, `53`, `02:00:…` as an element of `set`.
fn element(program: &Program, set: usize, text: &str) -> DynamicElement {
    let set = &program.dynamic_sets[set];
    let written = [text.to_string()];
    let source = pfc_compiler::ElementSource::Written(&written);
    let (elements, parsed) =
        pfc_compiler::dynamic_elements(set, source, "test", &mut pfc_compiler::sources::NoIncludes);
    let mut elements = elements.unwrap_or_else(|| panic!("{text}: {:?}", parsed.diagnostics));
    assert_eq!(elements.len(), 1);
    let element = elements.remove(0);
    assert!(element.kind != ValueKind::Uint(0));
    element
}

/// The map index of each dynamic set's generation-0 map of each family in the object.
fn set_maps(object: &BpfObject, program: &Program) -> Vec<Vec<(Family, usize)>> {
    let sets = program.dynamic_sets.iter().enumerate();
    sets.map(|(index, set)| {
        let generation_0 = set.parts().into_iter().filter(|part| part.generation == 0);
        generation_0
            .map(|part| {
                let name = part.map_name(index);
                (part.family, object.maps.iter().position(|map| map.name == name).expect("a map per family"))
            })
            .collect()
    })
    .collect()
}

/// The map (among `maps`, a set's [`set_maps`]) and map key of an element key.
fn placed(kind: DynamicKind, maps: &[(Family, usize)], key: &[u8; KEY_SIZE]) -> (usize, Vec<u8>) {
    let (family, map_key) = map_key(kind, key).expect("a pfc key");
    let map = maps.iter().find(|(f, _)| *f == family).expect("a map of the family").1;
    (map, map_key.as_bytes().to_vec())
}

/// Where the round's contents are written.
trait Maps {
    fn update(&mut self, map: usize, key: &[u8]);
    fn delete(&mut self, map: usize, key: &[u8]);
    fn verdict(&mut self, packet: &[u8]) -> u64;
}

impl Maps for Vm<'_> {
    fn update(&mut self, map: usize, key: &[u8]) {
        self.map_update(map, key, &VALUE).expect("vm update");
    }
    fn delete(&mut self, map: usize, key: &[u8]) {
        assert!(self.map_delete(map, key).expect("vm delete"));
    }
    fn verdict(&mut self, packet: &[u8]) -> u64 {
        self.run(packet).expect("vm runs").return_value
    }
}

impl Maps for KernelProgram {
    fn update(&mut self, map: usize, key: &[u8]) {
        self.map_update(map, key, &VALUE).expect("kernel update");
    }
    fn delete(&mut self, map: usize, key: &[u8]) {
        self.map_delete(map, key).expect("kernel delete");
    }
    fn verdict(&mut self, packet: &[u8]) -> u64 {
        u64::from(self.test_run(packet).expect("test run"))
    }
}

/// Replaces set `index`'s contents in `program` and in its generation-0 maps `set_maps`.
fn write_set(
    program: &mut Program,
    maps: &mut dyn Maps,
    set_maps: &[(Family, usize)],
    index: usize,
    elements: Vec<DynamicElement>,
) {
    let kind = program.dynamic_sets[index].kind;
    let old = program.dynamic_sets[index].keys();
    program.dynamic_sets[index].set_elements(elements);
    let new = program.dynamic_sets[index].keys();
    for key in old.iter().filter(|key| !new.contains(key)) {
        let (map, map_key) = placed(kind, set_maps, key);
        maps.delete(map, &map_key);
    }
    for key in new.iter().filter(|key| !old.contains(key)) {
        let (map, map_key) = placed(kind, set_maps, key);
        maps.update(map, &map_key);
    }
}

/// Runs every round on `maps`; returns the verdicts, checked against the interpreter.
fn rounds(compiled: &pfc_compiler::compile::Compiled, object: &BpfObject, maps: &mut dyn Maps, who: &str) -> Vec<u64> {
    let mut program = compiled.program.clone();
    let initial: Vec<Vec<DynamicElement>> = program.dynamic_sets.iter().map(|set| set.elements.clone()).collect();
    let map_of = set_maps(object, &program);
    for (index, elements) in initial.iter().enumerate() {
        program.dynamic_sets[index].set_elements(Vec::new());
        write_set(&mut program, maps, &map_of[index], index, elements.clone());
    }
    let packets = packets();
    let mut verdicts = Vec::new();
    let mut decided_by_sets = 0;
    for (round, contents) in ROUNDS.iter().enumerate() {
        for (index, set) in compiled.program.dynamic_sets.iter().enumerate() {
            let elements = match contents.iter().find(|(name, _)| *name == set.name) {
                Some((_, texts)) => texts.iter().map(|text| element(&compiled.program, index, text)).collect(),
                None => initial[index].clone(),
            };
            write_set(&mut program, maps, &map_of[index], index, elements);
        }
        for packet in &packets {
            let want = evaluate(&program, packet);
            let code = maps.verdict(packet);
            let expected = program.hook.return_code(want.verdict) as u64;
            assert_eq!(code, expected, "{who}, round {round}: {packet:02x?}, interpreter {want:?}");
            if want.rule.is_some_and(|rule| rule >= 1) {
                decided_by_sets += 1;
            }
            verdicts.push(code);
        }
    }
    assert!(decided_by_sets > 50, "{who}: only {decided_by_sets} packets decided by dynamic-set rules");
    verdicts
}

#[test]
fn interpreter_rbpf_and_kernel_agree_while_contents_change() {
    for classified in [false, true] {
        let mut rules = RULES.to_string();
        if classified {
            // Enough rules for the classifier: dynamic lookups become residual tests.
            for port in 0..20 {
                rules += &format!("rule filler{port}: drop if tcp.dport == {} and ip.src in banned\n", 6000 + port);
            }
        }
        let (compiled, diagnostics) = pfc_compiler::compile::compile(&rules, Default::default());
        let compiled = compiled.unwrap_or_else(|| panic!("compiles: {diagnostics:?}"));
        let object = BpfObject::parse(&compiled.object).expect("parses");
        let mut jit = Vm::new(&object).expect("vm");
        let mut interpreter = Vm::interpreter(&object).expect("vm");
        let from_jit = rounds(&compiled, &object, &mut jit, "rbpf");
        let from_interpreter = rounds(&compiled, &object, &mut interpreter, "rbpf interpreter");
        assert_eq!(from_jit, from_interpreter);
        match privileges() {
            Ok(()) => {
                let mut kernel = KernelProgram::load(&compiled.object).expect("the kernel verifier accepts lookups");
                let from_kernel = rounds(&compiled, &object, &mut kernel, "kernel");
                assert_eq!(from_jit, from_kernel);
                println!("classified {classified}: {} verdicts agree (interpreter, rbpf x2, kernel)", from_jit.len());
            }
            Err(reason) => println!("kernel skipped: {reason}"),
        }
    }
}

/// LPM semantics in the VM: nested prefixes, the longest wins, deleting the longer one
/// exposes the shorter; a prefix length past the data is refused; full trie.
#[test]
fn the_vms_trie_finds_the_longest_prefix_as_the_kernel_does() {
    let rules = "default pass\nset s: ipv4 dynamic size 2\nrule r: drop if ipv4.src in s\n";
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("compiles: {diagnostics:?}"));
    let object = BpfObject::parse(&compiled.object).expect("parses");
    let mut vm = Vm::new(&object).expect("vm");
    let maps = set_maps(&object, &compiled.program).remove(0);
    let key = |text: &str| {
        let element = element(&compiled.program, 0, text);
        let kind = compiled.program.dynamic_sets[0].kind;
        placed(kind, &maps, &element_key(kind, &element)).1
    };
    let map = maps[0].1;
    let drops = |vm: &mut Vm<'_>, source: &str| {
        let packet = spec_bytes(&format!("ipv4 src={source} dst=192.0.2.1 / udp dport=53")).expect("spec");
        vm.run(&packet).expect("runs").return_value == 1
    };
    vm.map_update(map, &key("10.0.0.0/8"), &VALUE).expect("update");
    vm.map_update(map, &key("10.1.0.0/16"), &VALUE).expect("update");
    assert!(drops(&mut vm, "10.1.2.3") && drops(&mut vm, "10.2.0.1") && !drops(&mut vm, "11.0.0.1"));
    // Data bits past the prefix length do not make another entry.
    let mut sloppy = key("10.1.0.0/16");
    sloppy[6] = 0xff;
    vm.map_update(map, &sloppy, &VALUE).expect("same prefix");
    assert_eq!(vm.map_entries(map).expect("entries").len(), 2);
    assert!(vm.map_delete(map, &key("10.0.0.0/8")).expect("delete"));
    assert!(drops(&mut vm, "10.1.2.3") && !drops(&mut vm, "10.2.0.1"));
    let mut too_long = key("10.0.0.0/8");
    too_long[..4].copy_from_slice(&33u32.to_le_bytes());
    assert!(vm.map_update(map, &too_long, &VALUE).is_err(), "prefixlen past the data");
    vm.map_update(map, &key("10.3.0.0/16"), &VALUE).expect("room for size entries");
    assert!(vm.map_update(map, &key("10.4.0.0/16"), &VALUE).is_err(), "full: size entries");
}

/// Sets of the largest size a dynamic set may declare (16,777,216: two maps of 16,777,216
/// slots each, one per generation, 256 MiB of value slots each) run in the VM: the slots are reserved untouched,
/// so the VM is made at once and entries work as in a small set (a deleted entry's slot
/// is used again).
#[test]
fn sets_of_the_largest_declared_size_run_in_the_vm() {
    let rules = "default pass\nset s: ipv4 dynamic size 16777216\nset p: port dynamic size 16777216\n\
                 rule r: drop if ipv4.src in s\nrule q: drop if udp.dport in p\n";
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("compiles: {diagnostics:?}"));
    let object = BpfObject::parse(&compiled.object).expect("parses");
    let started = std::time::Instant::now();
    let mut vm = Vm::new(&object).expect("the VM takes maps of 16,777,216 slots");
    println!("VM with four maps of 16,777,216 slots made in {:?}", started.elapsed());
    let set_maps = set_maps(&object, &compiled.program);
    let maps = [set_maps[0][0].1, set_maps[1][0].1];
    let key = |set: usize, text: &str| {
        let element = element(&compiled.program, set, text);
        let kind = compiled.program.dynamic_sets[set].kind;
        placed(kind, &set_maps[set], &element_key(kind, &element)).1
    };
    let drops = |vm: &mut Vm<'_>, source: &str, port: u16| {
        let packet = spec_bytes(&format!("ipv4 src={source} dst=192.0.2.1 / udp dport={port}")).expect("spec");
        vm.run(&packet).expect("runs").return_value == 1
    };
    assert!(!drops(&mut vm, "10.1.2.3", 53));
    vm.map_update(maps[0], &key(0, "10.0.0.0/8"), &VALUE).expect("update");
    vm.map_update(maps[1], &key(1, "53"), &VALUE).expect("update");
    assert!(drops(&mut vm, "10.1.2.3", 80) && drops(&mut vm, "11.0.0.1", 53) && !drops(&mut vm, "11.0.0.1", 80));
    assert!(vm.map_delete(maps[0], &key(0, "10.0.0.0/8")).expect("delete"));
    assert!(!drops(&mut vm, "10.1.2.3", 80));
    for text in ["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"] {
        vm.map_update(maps[0], &key(0, text), &VALUE).expect("update");
    }
    assert_eq!(vm.map_entries(maps[0]).expect("entries").len(), 3);
    assert!(drops(&mut vm, "10.1.2.3", 80));
}

/// The kernel verifier accepts lookups of every shape: each kind of set, masks, `not in`,
/// XDP and TC, with rate limits, and classified rule sets.
#[test]
fn the_kernel_verifier_accepts_every_shape_of_lookup() {
    pfc_test_support::skip_unless!(pfc_test_support::no_kernel());
    let mut many = String::from("default pass\nset bad: ip dynamic size 1000000\nset p: port dynamic\n");
    for port in 0..60 {
        many += &format!("rule r{port}: drop if tcp.dport == {} and ip.src in bad\n", 1000 + port);
    }
    many += "rule last: drop if udp.dport in p and ip.dst not in bad\n";
    let sets = [
        "default pass\nset s: ip dynamic\nrule a: drop if ip.src in s\n".to_string(),
        "default drop\nset s: ipv6 dynamic size 16777216\nrule a: pass if ipv6.dst not in s\n".to_string(),
        "hook tc ingress\ndefault pass\nset m: mac dynamic\nset n: u32 dynamic\nset q: proto dynamic\n\
         rule a: drop if eth.dst in m or ip.proto in q\nrule b: drop if udp.dport & 0xff00 in n\n"
            .to_string(),
        "hook tc egress\ndefault pass\nset s: ip dynamic\nrule a: drop if ip.dst in s and rate > 10/s per ip.src\n"
            .to_string(),
        many,
    ];
    for rules in &sets {
        let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
        let compiled = compiled.unwrap_or_else(|| panic!("{rules}: {diagnostics:?}"));
        let kernel = KernelProgram::load(&compiled.object).unwrap_or_else(|e| panic!("{rules}: {e}"));
        let processed = kernel.verified_insn_count().expect("insn count");
        println!("{} rules: verified, {processed} instructions processed", compiled.program.rules.len());
    }
}
