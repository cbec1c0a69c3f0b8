//! Differential correctness of the back end: for every generated rule set and every
//! `rules-examples/*.pf`, the interpreter (the executable specification), the compiled
//! object in the rbpf VM, and the same object in the kernel (`BPF_PROG_TEST_RUN`) must
//! give the same verdict on every corpus packet, and the per-rule counters must equal
//! the interpreter's match counts. Zero mismatches.
//!
//! The VM runs every packet, even those under 14 bytes. The kernel runs the packets
//! `BPF_PROG_TEST_RUN` accepts (14 bytes; for TC also a whole IPv4/IPv6 header when the
//! ethertype says so) and is skipped, with the reason printed, without privileges.
//! A mismatch report shows the rule file, the packet in hex with a one-line summary,
//! and what each of the three said.

mod support;

use std::time::Instant;

use pfc_compiler::classbench::{self, Shape};
use pfc_compiler::codegen::{Form, Options};
use pfc_compiler::compile::compile_form;
use pfc_compiler::diagnostic::Severity;
use pfc_compiler::eval::{evaluate, Outcome};
use pfc_compiler::fields::{Field, Proto};
use pfc_compiler::packet::Packet;
use pfc_compiler::program::{CmpOp, Cond, Hook, Program, TestOp, Verdict};
use pfc_runtime::executor::{Backend, Counter, Executor, Ran};
use pfc_runtime::kernel;
use pfc_runtime::BpfObject;
use support::corpus::{corpus, CorpusPacket};
use support::{error_chain, hex, parsed_summary, rulegen};

/// Generated rule sets checked (the issue asks for at least 300; ~10 s here).
const GENERATED_SETS: usize = 1000;
/// Every this many generated sets is also compiled and checked without counters.
const COUNTERS_OFF_EVERY: usize = 4;
/// Mismatch reports printed in full per rule set (the rest are counted).
const REPORTS_PER_SET: usize = 3;
/// Worker threads (the machine has two cores).
const WORKERS: usize = 2;

/// What was compared, for the summary line.
#[derive(Clone, Debug, Default)]
struct Tally {
    rule_sets: usize,
    objects: usize,
    vm_runs: usize,
    kernel_runs: usize,
    counter_checks: usize,
    kernel_too_short: usize,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.rule_sets += other.rule_sets;
        self.objects += other.objects;
        self.vm_runs += other.vm_runs;
        self.kernel_runs += other.kernel_runs;
        self.counter_checks += other.counter_checks;
        self.kernel_too_short += other.kernel_too_short;
    }
}

/// Compiles `text` with counters in `form`, and when asked also without counters in
/// jumping form (and classified form when `form` is), with counters in branch-free form, and compares every packet's verdict and the counters;
/// returns one report per mismatch.
fn check(
    name: &str,
    text: &str,
    counters_off_too: bool,
    form: Form,
    packets: &[CorpusPacket],
    kernel: bool,
    tally: &mut Tally,
) -> Vec<String> {
    tally.rule_sets += 1;
    let mut failures = Vec::new();
    let modes: Vec<(bool, Form)> = if counters_off_too {
        let mut modes = vec![(true, form), (false, Form::Jumping), (true, Form::Branchless)];
        if matches!(form, Form::Classified | Form::Table) {
            modes.push((false, form)); // verdicts through the exit tail
        }
        modes
    } else {
        vec![(true, form)]
    };
    for (counters, form) in modes {
        let (compiled, diagnostics) = compile_form(text, Options { counters }, Some(form));
        let Some(compiled) = compiled else {
            let messages: Vec<String> =
                diagnostics.iter().map(|d| format!("{} {}: {}", d.severity_word(), d.code.0, d.message)).collect();
            failures.push(format!(
                "{name}: does not compile (counters {counters}):\n{}\n--- rule file:\n{text}",
                messages.join("\n")
            ));
            continue;
        };
        tally.objects += 1;
        let setting = format!("{name} (counters {}, {form:?})", if counters { "on" } else { "off" });
        failures.extend(check_object(
            &setting,
            text,
            &compiled.program,
            &compiled.object,
            counters,
            packets,
            kernel,
            tally,
        ));
    }
    failures
}

trait SeverityWord {
    fn severity_word(&self) -> &'static str;
}

impl SeverityWord for pfc_compiler::diagnostic::Diagnostic {
    fn severity_word(&self) -> &'static str {
        if self.severity == Severity::Error {
            "error"
        } else {
            "warning"
        }
    }
}

/// One object against the interpreter on every packet, then its counters.
#[allow(clippy::too_many_arguments)]
fn check_object(
    setting: &str,
    text: &str,
    program: &Program,
    object: &[u8],
    counters: bool,
    packets: &[CorpusPacket],
    kernel: bool,
    tally: &mut Tally,
) -> Vec<String> {
    let mut failures = Vec::new();
    let parsed = match BpfObject::parse(object) {
        Ok(parsed) => parsed,
        Err(e) => return vec![format!("{setting}: the runtime cannot parse the object: {}\n{text}", error_chain(&e))],
    };
    let mut vm = match Executor::new(&parsed, object, Backend::Vm) {
        Ok(vm) => vm,
        Err(e) => return vec![format!("{setting}: rbpf refuses the object: {}\n{text}", error_chain(&e))],
    };
    let mut loaded = if kernel {
        match Executor::new(&parsed, object, Backend::Kernel) {
            Ok(loaded) => Some(loaded),
            Err(e) => return vec![format!("{setting}: the kernel refuses the object: {}\n{text}", error_chain(&e))],
        }
    } else {
        None
    };
    // The dynamic sets hold the rule file's contents, as `pfc load` writes them.
    for (name, keys) in pfc_compiler::program::dynamic::initial_entries(&program.dynamic_sets) {
        let Some(map) = parsed.map_index(&name) else { return vec![format!("{setting}: no map `{name}`")] };
        for key in keys {
            let value = pfc_compiler::program::dynamic::VALUE;
            if let Err(e) = vm.map_update(map, key.as_bytes(), &value) {
                return vec![format!("{setting}: rbpf map `{name}`: {}", error_chain(&e))];
            }
            if let Some(Err(e)) = loaded.as_mut().map(|loaded| loaded.map_update(map, key.as_bytes(), &value)) {
                return vec![format!("{setting}: kernel map `{name}`: {}", error_chain(&e))];
            }
        }
    }
    let slots = program.rules.len() + 1;
    let zero = Counter::default();
    let (mut vm_expected, mut kernel_expected) = (vec![zero; slots], vec![zero; slots]);
    let mut mismatches = 0usize;
    for (index, packet) in packets.iter().enumerate() {
        let outcome = evaluate(program, &packet.bytes);
        let slot = outcome.rule.unwrap_or(program.rules.len());
        let count = |expected: &mut Vec<Counter>| {
            expected[slot].packets += 1;
            expected[slot].bytes += packet.bytes.len() as u64;
        };
        let vm_result = vm.verdict_at(&packet.bytes, 0).map_err(|e| error_chain(&e));
        tally.vm_runs += 1;
        count(&mut vm_expected);
        let kernel_result =
            loaded.as_mut().map(|loaded| loaded.verdict_at(&packet.bytes, 0).map_err(|e| error_chain(&e)));
        match &kernel_result {
            Some(Ok(Ran::Refused(_))) => tally.kernel_too_short += 1,
            Some(_) => {
                tally.kernel_runs += 1;
                count(&mut kernel_expected);
            }
            None => {}
        }
        let agrees = |result: &Result<Ran<Verdict>, String>| match result {
            Ok(Ran::Decided(verdict)) => *verdict == outcome.verdict,
            Ok(Ran::Refused(_)) => true,
            Err(_) => false,
        };
        let vm_ok = matches!(vm_result, Ok(Ran::Decided(verdict)) if verdict == outcome.verdict);
        let kernel_ok = kernel_result.as_ref().map_or(true, agrees);
        if !(vm_ok && kernel_ok) {
            mismatches += 1;
            if mismatches <= REPORTS_PER_SET {
                failures.push(mismatch_report(
                    setting,
                    text,
                    program,
                    index,
                    packet,
                    outcome,
                    &vm_result,
                    &kernel_result,
                ));
            }
        }
    }
    if mismatches > REPORTS_PER_SET {
        failures.push(format!("{setting}: {} more mismatches not shown", mismatches - REPORTS_PER_SET));
    }
    if counters {
        tally.counter_checks += 1;
        let vm_counts = vm.counters().map_err(|e| error_chain(&e));
        failures.extend(compare_counters(setting, text, program, "rbpf vm", &vm_expected, vm_counts));
        if let Some(loaded) = &loaded {
            tally.counter_checks += 1;
            let counts = loaded.counters().map_err(|e| error_chain(&e));
            failures.extend(compare_counters(setting, text, program, "kernel", &kernel_expected, counts));
        }
    }
    failures
}

fn compare_counters(
    setting: &str,
    text: &str,
    program: &Program,
    runner: &str,
    expected: &[Counter],
    actual: Result<Vec<Counter>, String>,
) -> Option<String> {
    let actual = match actual {
        Ok(actual) => actual,
        Err(e) => return Some(format!("{setting}: reading the {runner} counters failed: {e}")),
    };
    if actual == expected {
        return None;
    }
    let pair = |counter: Option<&Counter>| counter.map(|c| (c.packets, c.bytes));
    let names: Vec<&str> = program.rules.iter().map(|rule| rule.name.as_str()).chain(["(default)"]).collect();
    let rows: Vec<String> = (0..names.len().max(actual.len()))
        .map(|i| {
            format!(
                "  [{i}] {:<10} interpreter {:?}  {runner} {:?}",
                names.get(i).unwrap_or(&"?"),
                pair(expected.get(i)),
                pair(actual.get(i))
            )
        })
        .collect();
    Some(format!("{setting}: {runner} counters (packets, bytes) differ from the interpreter's matches:\n{}\n--- rule file:\n{text}", rows.join("\n")))
}

#[allow(clippy::too_many_arguments)]
fn mismatch_report(
    setting: &str,
    text: &str,
    program: &Program,
    index: usize,
    packet: &CorpusPacket,
    outcome: Outcome,
    vm: &Result<Ran<Verdict>, String>,
    kernel: &Option<Result<Ran<Verdict>, String>>,
) -> String {
    let rule = outcome.rule.map_or("the default".to_string(), |i| format!("rule {i} `{}`", program.rules[i].name));
    let describe = |result: &Result<Ran<Verdict>, String>| match result {
        Ok(Ran::Decided(verdict)) => verdict.as_str().to_string(),
        Ok(Ran::Refused(reason)) => format!("not run ({reason})"),
        Err(e) => format!("error: {e}"),
    };
    let kernel_text = match kernel {
        Some(result) => describe(result),
        None => "not run (no privileges)".to_string(),
    };
    format!(
        "MISMATCH in {setting}, packet {index}: {}\n  parsed: {}\n  interpreter: {} by {rule}\n  rbpf vm:     {}\n  kernel:      {kernel_text}\n--- packet hex:\n{}\n--- rule file:\n{text}",
        packet.description,
        parsed_summary(&packet.bytes),
        outcome.verdict.as_str(),
        describe(vm),
        hex(&packet.bytes),
    )
}

/// Checks rule sets on two threads; returns the totals and every failure.
fn check_all(
    sets: &[(String, String, bool)],
    form: Form,
    packets: &[CorpusPacket],
    kernel: bool,
) -> (Tally, Vec<String>) {
    let results: Vec<(Tally, Vec<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    let mut failures = Vec::new();
                    for (name, text, counters_off_too) in sets.iter().skip(worker).step_by(WORKERS) {
                        failures.extend(check(name, text, *counters_off_too, form, packets, kernel, &mut tally));
                    }
                    (tally, failures)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("worker thread")).collect()
    });
    let mut total = Tally::default();
    let mut failures = Vec::new();
    for (tally, found) in results {
        total.add(&tally);
        failures.extend(found);
    }
    (total, failures)
}

/// Runs the check and prints the summary; fails with every report.
fn check_and_report(what: &str, sets: Vec<(String, String, bool)>, form: Form, extra_packets: Vec<CorpusPacket>) {
    let started = Instant::now();
    let mut packets = corpus(support::seed());
    packets.extend(extra_packets);
    let kernel = match kernel::privileges() {
        Ok(()) => None,
        Err(reason) => Some(reason.reason),
    };
    let (tally, failures) = check_all(&sets, form, &packets, kernel.is_none());
    let kernel_note = match &kernel {
        None => format!("{} skipped: shorter than BPF_PROG_TEST_RUN accepts", tally.kernel_too_short),
        Some(reason) => format!("all skipped: {reason}"),
    };
    println!(
        "{what} (seed {:#x}): {} rule sets ({} objects) x {} packets; {} interpreter/rbpf comparisons, {} interpreter/kernel \
         comparisons ({kernel_note}), {} counter checks; {} failures; {:.1?}",
        support::seed(),
        tally.rule_sets,
        tally.objects,
        packets.len(),
        tally.vm_runs,
        tally.kernel_runs,
        tally.counter_checks,
        failures.len(),
        started.elapsed(),
    );
    assert!(packets.len() >= 1000, "the corpus has only {} packets", packets.len());
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
    assert_eq!(tally.vm_runs, tally.objects * packets.len(), "every object ran every packet");
}

#[test]
fn generated_rule_sets_agree_with_the_interpreter() {
    let generated = rulegen::rule_sets(support::seed(), GENERATED_SETS);
    assert_covers_the_language(&generated);
    let sets = generated
        .into_iter()
        .enumerate()
        .map(|(index, set)| (set.name, set.text, index % COUNTERS_OFF_EVERY == 0))
        .collect();
    check_and_report("generated", sets, Form::Classified, Vec::new());
}

#[test]
fn examples_agree_with_the_interpreter() {
    let sets = support::examples().into_iter().map(|(name, text)| (name, text, true)).collect();
    check_and_report("examples", sets, Form::Classified, Vec::new());
}

/// Each layout the parse prologue picks from what the rules read (`codegen/prologue.rs`:
/// which IP family's untagged path comes first, which transport block is the tail and
/// which one is copied inline, the other family, ARP, the extension walk, VLAN tags):
/// a small rule set per one or two of these reads, the second rule of each with `vlan`.
#[test]
fn prologue_layouts_agree_with_the_interpreter() {
    let reads = [
        "ipv4.ttl > 1",
        "ipv6.hop_limit == 255",
        "tcp.dport == 22",
        // True of 0: a frame without TCP must read the word as -1 (guard-free test).
        "tcp.dport < 1024",
        "udp.dport == 53",
        "sctp.dport == 80",
        "icmp.type == echo-request",
        "icmp6.type == echo-request",
        "ipv6.proto == 6",
        "arp.op == 1",
        "eth.type == 0x88cc",
    ];
    let mut sets = Vec::new();
    for (first, a) in reads.iter().enumerate() {
        for b in &reads[first..] {
            let text = format!(
                "hook xdp\ndefault pass\nrule a: drop if {a}\nrule b: drop if {b} and vlan\nrule c: pass if {b}\n"
            );
            sets.push((format!("prologue-{first}-{}", sets.len()), text, false));
        }
    }
    // The common IPv4 path with an IP field read and two or three transports (its one
    // bounds check covers the shortest; the inline TCP block checks the rest from r2).
    let transports = [
        ["tcp.dport < 1024", "udp.dport == 53", "icmp.type == echo-request"],
        ["tcp.dport == 22", "udp.dport == 53", "sctp.dport == 80"],
        ["tcp.dport < 1024", "sctp.dport == 80", "icmp.type == echo-request"],
        ["udp.dport == 53", "icmp.type == echo-request", "ipv6.hop_limit == 255"],
    ];
    for [a, b, c] in transports {
        let text = format!(
            "hook xdp\ndefault pass\nrule ip: drop if ipv4.ttl > 1 and ipv4.dscp != 0\nrule a: drop if {a}\n\
             rule b: pass if {b} and vlan\nrule c: drop if {c}\nrule d: drop if {b}\n"
        );
        sets.push((format!("prologue-ipv4-{}", sets.len()), text, false));
    }
    check_and_report("prologue layouts", sets, Form::Classified, Vec::new());
}

/// The generated files use every concrete field, every operator, `in` and `not in`,
/// masks, every bare protocol, both verdicts and every hook.
fn assert_covers_the_language(sets: &[rulegen::RuleSet]) {
    let mut fields = Vec::new();
    let mut ops = Vec::new();
    let mut protos = Vec::new();
    let (mut masks, mut member, mut not_member) = (0, 0, 0);
    let mut hooks = Vec::new();
    for set in sets {
        let (program, diagnostics) = pfc_compiler::check_source(&set.text);
        let program = program.unwrap_or_else(|| {
            let errors: Vec<String> = diagnostics.iter().map(|d| format!("{} {}", d.code.0, d.message)).collect();
            panic!("{} does not check:\n{}\n{}", set.name, errors.join("\n"), set.text)
        });
        hooks.push(program.hook);
        let mut walk = vec![];
        walk.extend(program.rules.iter().map(|rule| &rule.condition));
        while let Some(cond) = walk.pop() {
            match cond {
                Cond::Not(inner) => walk.push(inner),
                Cond::And(all) | Cond::Or(all) => walk.extend(all),
                Cond::Proto(proto) => protos.push(*proto),
                Cond::Test(test) => {
                    fields.push(test.field);
                    masks += usize::from(test.mask.is_some());
                    match test.op {
                        TestOp::Cmp(op, _) => ops.push(op),
                        TestOp::In(_) => member += 1,
                        TestOp::NotIn(_) => not_member += 1,
                        TestOp::InDynamic(_) | TestOp::NotInDynamic(_) => {}
                    }
                }
                Cond::True | Cond::False | Cond::Pcap(_) | Cond::Limit(_) => {}
            }
        }
    }
    let missing: Vec<&str> = Field::ALL.iter().filter(|f| !fields.contains(f)).map(|f| f.name()).collect();
    assert!(missing.is_empty(), "fields never generated: {missing:?}");
    let all_ops = [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];
    assert!(all_ops.iter().all(|op| ops.contains(op)), "operators generated: {ops:?}");
    let missing: Vec<Proto> = Proto::ALL.iter().copied().filter(|p| !protos.contains(p)).collect();
    assert!(missing.is_empty(), "bare protocols never generated: {missing:?}");
    assert!(masks > 0 && member > 0 && not_member > 0, "masks {masks}, in {member}, not in {not_member}");
    for hook in [Hook::Xdp, Hook::TcIngress, Hook::TcEgress] {
        assert!(hooks.contains(&hook), "hook {hook:?} never generated");
    }
}

/// Rule sets made of long runs of rules that all test one field against a value or a
/// set (the shape `codegen/dispatch.rs` turns into decision trees), with an extra
/// conjunct now and then, broken up by other rules; values come from the corpus pools.
fn dispatchable_rule_sets(seed: u64, count: usize) -> Vec<(String, String, bool)> {
    use support::{pools, Rng};
    let mut rng = Rng::new(seed ^ 0xd15a);
    type ValueFrom = fn(&mut Rng) -> String;
    let fields: &[(&str, ValueFrom)] = &[
        ("tcp.dport", |rng| rng.pick(pools::PORTS).to_string()),
        ("l4.sport", |rng| rng.pick(pools::PORTS).to_string()),
        ("ipv4.src", |rng| rng.pick(pools::IPV4).to_string()),
        ("ip.dst", |rng| rng.pick(pools::IPV4).to_string()),
        ("ipv4.ttl", |rng| rng.pick(pools::TTLS).to_string()),
        ("vlan.id", |rng| rng.pick(pools::VLAN_IDS).to_string()),
        ("pkt.len", |rng| rng.pick(pools::LENGTHS).to_string()),
        ("icmp.type", |rng| rng.pick(pools::ICMP_TYPES).to_string()),
    ];
    let extras = ["tcp", "udp", "not ipv4.df", "ipv4.ttl > 1", "vlan", "not tcp.dport == 22", "pkt.len < 100"];
    (0..count)
        .map(|index| {
            let (field, value) = fields[index % fields.len()];
            let hook = ["xdp", "tc ingress", "tc egress"][index % 3];
            let mut text = format!("hook {hook}\ndefault {}\n", if index % 2 == 0 { "pass" } else { "drop" });
            for rule in 0..8 + rng.below(40) {
                let verdict = if rng.chance(50) { "pass" } else { "drop" };
                let test = if rng.chance(30) {
                    let values: Vec<String> = (0..1 + rng.below(4)).map(|_| value(&mut rng)).collect();
                    format!("{field} in {{ {} }}", values.join(", "))
                } else {
                    format!("{field} == {}", value(&mut rng))
                };
                let condition = match rng.below(10) {
                    0 => format!("{test} and {}", rng.pick(&extras)),
                    1 => format!("{} and {test}", rng.pick(&extras)),
                    2 if rule % 9 == 8 => rng.pick(&extras).to_string(),
                    _ => test,
                };
                text.push_str(&format!("rule r{rule}: {verdict} if {condition}\n"));
            }
            (format!("dispatch-{index}"), text, index % COUNTERS_OFF_EVERY == 0)
        })
        .collect()
}

#[test]
fn dispatched_runs_agree_with_the_interpreter() {
    let sets = dispatchable_rule_sets(support::seed(), 120);
    // The sets must really take the dispatch path: the listing names each tree.
    let dispatched = sets
        .iter()
        .filter(|(_, text, _)| {
            let (compiled, _) = compile_form(text, Options { counters: true }, Some(Form::Dispatched));
            compiled.is_some_and(|compiled| compiled.code.disassemble().contains("dispatched on"))
        })
        .count();
    assert!(dispatched * 2 >= sets.len(), "only {dispatched} of {} sets were dispatched", sets.len());
    check_and_report("dispatchable", sets, Form::Dispatched, Vec::new());
}

/// ClassBench-shaped sets (`pfc_compiler::classbench`) with what the classifier leaves to
/// its leaves mixed in: masks, pcap atoms, `or`s across families, `not`, priority ties
/// (the same condition twice, verdicts swapped) and fully shadowed rules.
fn classifier_rule_sets() -> (Vec<(String, String, bool)>, Vec<CorpusPacket>) {
    let mut sets = Vec::new();
    let mut packets = Vec::new();
    for (number, shape) in Shape::ALL.into_iter().enumerate() {
        // 2,000 rules for two shapes keeps the interpreter's share of the run short.
        let sizes: &[usize] = if matches!(shape, Shape::Fw | Shape::Mixed) { &[100, 2_000] } else { &[100, 500] };
        for (position, &rules) in sizes.iter().enumerate() {
            let generated = classbench::generate(shape, rules, 100, support::seed() ^ number as u64);
            let mut text = String::new();
            for (index, line) in generated.text.lines().enumerate() {
                text.push_str(&spiced(index, line, position == 0));
                text.push('\n');
            }
            let name = format!("classbench-{}-{rules}", shape.name());
            packets.extend(generated.trace.into_iter().map(|packet| CorpusPacket {
                description: format!("{name} trace (rule {:?})", packet.rule),
                bytes: packet.bytes,
            }));
            sets.push((name, text, position == 0));
        }
    }
    (sets, packets)
}

/// Every so often a rule grows a residual test, or another rule joins it. pcap atoms only
/// in small sets: today each pcap verdict word splits the kernel verifier's state at the
/// rule body (a stored 0 is tracked, a 1 is not), so a large body is verified twice per atom.
fn spiced(index: usize, line: &str, pcap: bool) -> String {
    let Some((head, condition)) = line.split_once(" if ") else { return line.to_string() };
    let Some((name, verdict)) = head.split_once(": ") else { return line.to_string() };
    let other = if verdict == "drop" { "pass" } else { "drop" };
    match index % 23 {
        3 => format!("{line} and tcp.flags & (syn | ack) == syn"),
        5 => format!("{line}\n{name}_tie: {other} if {condition}"),
        7 => format!("{line}\n{name}_shadowed: {other} if {condition} and ip.ttl > 1"),
        11 => format!("{name}: {verdict} if ({condition}) or ip.src in 2001:db8::/32 or ip.dst in 198.18.0.0/24"),
        13 if pcap => format!("{line}\n{name}_pcap: {other} if pcap \"tcp and dst port 80 and src net 198.18.0.0/15\""),
        17 => format!("{name}: {verdict} if {condition} and not udp.sport == 53"),
        19 => format!("{line} and ipv4.dscp & 0x20 == 0"),
        _ => line.to_string(),
    }
}

#[test]
fn classifier_shaped_sets_agree_with_the_interpreter() {
    let (sets, packets) = classifier_rule_sets();
    // The sets must really take the classifier path: the listing names its diagrams.
    for (name, text, _) in &sets {
        let (compiled, diagnostics) = compile_form(text, Options { counters: true }, None);
        let compiled = compiled.unwrap_or_else(|| panic!("{name} compiles: {diagnostics:?}"));
        assert!(compiled.code.disassemble().contains("classifier:"), "{name} is not classified");
    }
    check_and_report("classifier", sets, Form::Classified, packets);
}

/// A classifier longer than a 16-bit jump reaches: its conditional jumps to far nodes go
/// through relays and its far `goto`s are `gotol` (32-bit offset): the interpreter, rbpf
/// (vendored, patched for `gotol`) and the kernel agree on its trace and the corpus.
#[test]
fn classifiers_with_gotol_agree_with_the_interpreter() {
    let mut sets = Vec::new();
    let mut packets = Vec::new();
    for (number, shape) in [Shape::Acl, Shape::Mixed].into_iter().enumerate() {
        let generated = classbench::generate(shape, 3_000, 100, support::seed() ^ (number as u64 + 29));
        let text: String =
            generated.text.lines().enumerate().map(|(index, line)| spiced(index, line, false) + "\n").collect();
        let name = format!("classbench-{}-3000", shape.name());
        let (compiled, diagnostics) = compile_form(&text, Options { counters: true }, None);
        let compiled = compiled.unwrap_or_else(|| panic!("{name} compiles: {diagnostics:?}"));
        let listing = compiled.code.disassemble();
        assert!(listing.contains(": gotol "), "{name} has no gotol");
        assert!(listing.contains("; relay\n"), "{name} has no relay");
        packets.extend(generated.trace.into_iter().map(|packet| CorpusPacket {
            description: format!("{name} trace (rule {:?})", packet.rule),
            bytes: packet.bytes,
        }));
        sets.push((name, text, false));
    }
    check_and_report("classifier with gotol", sets, Form::Classified, packets);
}

/// ClassBench-shaped sets forced into the table-driven classifier (`codegen::table`):
/// every shape a table can express (IPv4 5-tuples and the block list), with priority
/// ties (the same condition twice, verdicts swapped) and shadowed rules (a narrower copy
/// after a rule), at sizes up to 2,000 rules, with and without counters.
#[test]
fn table_classifier_agrees_with_the_interpreter() {
    let mut sets = Vec::new();
    let mut packets = Vec::new();
    for (number, shape) in [Shape::Acl, Shape::Fw, Shape::Ipc, Shape::Block].into_iter().enumerate() {
        for (position, rules) in [100, 2_000].into_iter().enumerate() {
            let generated = classbench::generate(shape, rules, 100, support::seed() ^ (number as u64 + 17));
            let mut text = String::new();
            for (index, line) in generated.text.lines().enumerate() {
                text.push_str(&tabular_spice(index, line));
                text.push('\n');
            }
            let name = format!("table-{}-{rules}", shape.name());
            packets.extend(generated.trace.into_iter().map(|packet| CorpusPacket {
                description: format!("{name} trace (rule {:?})", packet.rule),
                bytes: packet.bytes,
            }));
            sets.push((name, text, position == 0));
        }
    }
    check_and_report("table", sets, Form::Table, packets);
}

/// Ties and shadowed rules that a table still expresses (interval tests only).
fn tabular_spice(index: usize, line: &str) -> String {
    let Some((head, condition)) = line.split_once(" if ") else { return line.to_string() };
    let Some((name, verdict)) = head.split_once(": ") else { return line.to_string() };
    let other = if verdict == "drop" { "pass" } else { "drop" };
    match index % 19 {
        5 => format!("{line}\n{name}_tie: {other} if {condition}"),
        7 => format!("{line}\n{name}_shadowed: {other} if {condition} and ipv4.ttl > 1"),
        11 => format!("{line}\n{name}_ttl: {other} if {condition} and ipv4.ttl <= 64 and tcp"),
        _ => line.to_string(),
    }
}

/// Issue 9: a truncated IPv6 extension header leaves `ipv6.proto` unknown. Every
/// extension header kind, cut at every byte of it (and the issue's own frame), is judged
/// against the rule of docs/language.md §8 — the upper protocol is known exactly when the
/// whole extension header is inside the frame — by the interpreter, and then rbpf and the
/// kernel must agree with the interpreter (verdicts and counters, every code form).
#[test]
fn truncated_extension_headers_leave_the_upper_protocol_unknown() {
    let text = "default pass\nrule upper_tcp: drop if ipv6.proto == 6\n";
    let (program, diagnostics) = pfc_compiler::check_source(text);
    let program = program.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let cuts = support::corpus::extension_header_cuts();
    for (packet, complete) in &cuts {
        let expected = if packet.bytes.len() >= *complete { Verdict::Drop } else { Verdict::Pass };
        let outcome = evaluate(&program, &packet.bytes);
        assert_eq!(outcome.verdict, expected, "interpreter on {}: {}", packet.description, hex(&packet.bytes));
    }
    let packets: Vec<CorpusPacket> = cuts.into_iter().map(|(packet, _)| packet).collect();
    let kernel = kernel::privileges().is_ok();
    let mut tally = Tally::default();
    let failures = check("extension header cuts", text, true, Form::Classified, &packets, kernel, &mut tally);
    println!(
        "extension header cuts: {} packets, {} rbpf and {} kernel comparisons{}",
        packets.len(),
        tally.vm_runs,
        tally.kernel_runs,
        if kernel { "" } else { " (kernel skipped: no privileges)" }
    );
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Issue 9: counters of rule sets with more than 256 rules are read back by key. 1,000
/// rules `tcp.dport == 1000 + I`, packets for rules on both sides of 256 (and the
/// default): the kernel's and rbpf's counter arrays must equal the interpreter's match
/// counts entry by entry (keys from 256 on were once read back in byte-string order).
#[test]
fn a_thousand_rules_count_in_their_own_counters() {
    let text: String = std::iter::once("default pass\n".to_string())
        .chain((0..1000).map(|index| format!("rule r{index}: drop if tcp.dport == {}\n", 1000 + index)))
        .collect();
    let packets: Vec<CorpusPacket> = [0u16, 1, 255, 256, 257, 300, 511, 512, 999, 1000]
        .iter()
        .flat_map(|&index| {
            let bytes = Packet::eth().ipv4("192.0.2.1", "10.0.0.2").tcp(40000, 1000 + index).build();
            // Rule `index` twice, so a count credited to a neighbour shows.
            let description = format!("tcp dport {} (rule r{index})", 1000 + index);
            [
                CorpusPacket { bytes: bytes.clone(), description: description.clone() },
                CorpusPacket { bytes, description },
            ]
        })
        .collect();
    let kernel = kernel::privileges().is_ok();
    let mut tally = Tally::default();
    let failures = check("1,000 rules", &text, false, Form::Classified, &packets, kernel, &mut tally);
    println!(
        "1,000 rules: {} packets, {} counter checks{}",
        packets.len(),
        tally.counter_checks,
        if kernel { "" } else { " (kernel skipped: no privileges)" }
    );
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}
