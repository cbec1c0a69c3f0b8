//! Under tc the kernel takes the outermost VLAN tag out of the frame into the skb before
//! the program runs (always at ingress); pfc reads it back from the context, so the
//! rules see the frame as it was on the wire (docs/language.md §2). Generated rule sets
//! under `hook tc ingress`, run in rbpf with the tag delivered in the context as the
//! kernel delivers it, must decide every corpus frame as the interpreter does on the
//! whole frame: verdict, deciding rule, and each rule's packet and byte counters.
//! (The kernel half is `load_attach.rs`, on a veth pair with VLAN devices: the kernel's
//! test run builds its skb from the bytes and cannot take a tag in the context.)

mod support;

use pfc_compiler::codegen::{Form, Options};
use pfc_compiler::compile::compile_form;
use pfc_compiler::eval::evaluate;
use pfc_runtime::executor::{Backend, Counter, Executor, Ran};
use pfc_runtime::BpfObject;
use support::corpus::corpus;
use support::{error_chain, rulegen};

/// Generated rule sets checked (a few seconds here).
const SETS: usize = 240;
/// Mismatch reports kept in full (the rest are counted).
const REPORTS: usize = 5;

/// The generated file under `hook tc ingress` (its own hook line dropped), or `None`
/// when a `pcap` atom reads the frame's bytes, which lack the tag (language.md §2).
fn at_tc_ingress(text: &str) -> Option<String> {
    if text.contains("pcap") {
        return None;
    }
    let body: Vec<&str> = text.lines().filter(|line| !line.trim_start().starts_with("hook ")).collect();
    Some(format!("hook tc ingress\n{}\n", body.join("\n")))
}

/// Whether the kernel would move a tag out of this frame before tc ingress (see
/// `Vm::set_vlan_offload`): a VLAN TPID at 12 and at least 20 bytes.
fn offloaded(frame: &[u8]) -> bool {
    frame.len() >= 20 && matches!(frame[12..14], [0x81, 0x00] | [0x88, 0xa8])
}

#[test]
fn tc_ingress_sees_the_tag_the_kernel_took_out_of_the_frame() {
    let packets = corpus(support::seed());
    let tagged = packets.iter().filter(|packet| offloaded(&packet.bytes)).count();
    assert!(tagged >= 200, "the corpus has only {tagged} frames a tag is taken out of");
    let sets: Vec<(String, String)> = rulegen::rule_sets(support::seed() ^ 0x766c_616e, SETS)
        .into_iter()
        .filter_map(|set| at_tc_ingress(&set.text).map(|text| (set.name, text)))
        .collect();
    let with_vlan = sets.iter().filter(|(_, text)| text.contains("vlan")).count();
    assert!(sets.len() >= SETS / 2 && with_vlan >= 20, "{} sets, {with_vlan} reading vlan", sets.len());

    let (mut runs, mut failures, mut mismatches) = (0usize, Vec::new(), 0usize);
    for (name, text) in &sets {
        let (compiled, diagnostics) = compile_form(text, Options { counters: true }, Some(Form::Classified));
        let Some(compiled) = compiled else {
            failures.push(format!("{name}: does not compile: {diagnostics:?}\n{text}"));
            continue;
        };
        let parsed = BpfObject::parse(&compiled.object).expect("pfc's own object parses");
        let mut vm = Executor::new(&parsed, &compiled.object, Backend::Vm).expect("rbpf takes pfc's object");
        vm.set_vlan_offload(true).expect("rbpf delivers a tag in the context");
        for (set, keys) in pfc_compiler::program::dynamic::initial_entries(&compiled.program.dynamic_sets) {
            let map = parsed.map_index(&set).expect("a dynamic set's map");
            for key in keys {
                vm.map_update(map, key.as_bytes(), &pfc_compiler::program::dynamic::VALUE).expect("map update");
            }
        }
        let rules = compiled.program.rules.len();
        let mut expected = vec![Counter::default(); rules + 1];
        for packet in &packets {
            let outcome = evaluate(&compiled.program, &packet.bytes);
            let slot = &mut expected[outcome.rule.unwrap_or(rules)];
            slot.packets += 1;
            slot.bytes += packet.bytes.len() as u64;
            runs += 1;
            let ran = vm.run_at(&packet.bytes, 0).map_err(|e| error_chain(&e));
            if !matches!(&ran, Ok(Ran::Decided(got)) if *got == outcome) {
                mismatches += 1;
                if failures.len() < REPORTS {
                    failures.push(format!(
                        "{name}: frame {} ({}): interpreter {outcome:?}, rbpf with the tag in the context {ran:?}\n{text}",
                        support::hex(&packet.bytes),
                        packet.description
                    ));
                }
            }
        }
        match vm.counters() {
            Ok(counters) if counters == expected => {}
            Ok(counters) => failures.push(format!(
                "{name}: counters (packets, bytes) differ: interpreter {expected:?}, rbpf {counters:?}\n{text}"
            )),
            Err(e) => failures.push(format!("{name}: reading the counters: {}", error_chain(&e))),
        }
    }
    println!(
        "vlan offload: {} rule sets ({with_vlan} reading vlan) x {} frames ({tagged} with a tag taken out): {runs} runs, \
         {mismatches} mismatches",
        sets.len(),
        packets.len()
    );
    assert!(failures.is_empty(), "{mismatches} mismatches; {} reports:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// A logged rule under tc ingress records the frame's length as on the wire and copies
/// the bytes the program has, which lack the tag the kernel took out (language.md §3.3).
#[test]
fn a_log_record_counts_the_tag_and_copies_the_bytes_without_it() {
    let text = "hook tc ingress\ndefault pass\nrule tagged: drop log 256 if vlan.id == 5\n";
    let (compiled, diagnostics) = compile_form(text, Options { counters: true }, None);
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let frame = pfc_compiler::packet::Packet::eth().vlan(5).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).build();
    let stripped: Vec<u8> = [&frame[..12], &frame[16..]].concat();
    let parsed = BpfObject::parse(&compiled.object).expect("pfc's own object parses");
    for offload in [false, true] {
        let mut vm = Executor::new(&parsed, &compiled.object, Backend::Vm).expect("rbpf takes pfc's object");
        vm.set_vlan_offload(offload).expect("rbpf delivers a tag in the context");
        let ran = vm.run(&frame).expect("runs");
        assert!(matches!(ran, Ran::Decided(outcome) if outcome.rule == Some(0)), "offload {offload}: {ran:?}");
        let events = vm.take_events().expect("events");
        assert_eq!(events.len(), 1, "offload {offload}: one record");
        let word = |at: usize| u32::from_ne_bytes(events[0][at..at + 4].try_into().expect("4 bytes"));
        let bytes = if offload { &stripped } else { &frame };
        assert_eq!(word(20), frame.len() as u32, "offload {offload}: frame_len is the length on the wire");
        assert_eq!(word(24), bytes.len() as u32, "offload {offload}: captured is what the program has");
        assert_eq!(&events[0][32..32 + bytes.len()], &bytes[..], "offload {offload}: the bytes copied");
    }
}
