//! The kernel verifier's processed-instruction budget (1,000,000): rule sets with pcap
//! atoms load and their verifier work grows linearly in the atoms; generated sets that
//! mix pcap atoms with native atoms either load or are refused by pfc with E0020 —
//! never by the kernel — and pfc's estimate of the kernel's work stays above it, for
//! every code form; past the pending-path limit, pcap atoms get E0020.
//!
//! Kernel tests print `skipped: <reason>` and pass when the process cannot load BPF.
//! Numbers (processed instructions, load times, estimate ratios) are printed, not
//! asserted against the clock.

#[macro_use]
extern crate pfc_test_support;

mod support;

use std::time::{Duration, Instant};

use pfc_compiler::classbench::{self, Shape};
use pfc_compiler::codegen::{Form, Options};
use pfc_compiler::compile::{compile, compile_form, Compiled, KERNEL_LIMIT};
use pfc_compiler::diagnostic::Severity;
use pfc_compiler::program::pcap::MAX_PROTOCHAIN_HEADERS;
use pfc_compiler::verify::{estimate_processed, MAX_PROCESSED};
use pfc_runtime::kernel::KernelProgram;
use support::kernel::no_kernel;
use support::{error_chain, rulegen};

/// `count` rules `rule pN: drop if pcap "(tcp port 10NN or udp port 20NN) and ip"`.
fn port_pcap_rules(count: usize) -> String {
    let mut text = String::from("default pass\n");
    for n in 1..=count {
        text.push_str(&format!(
            "rule p{n}: drop if pcap \"(tcp port {} or udp port {}) and ip\"\n",
            1000 + n,
            2000 + n
        ));
    }
    text
}

/// What loading a compiled set showed.
struct Loaded {
    processed: usize,
    estimate: usize,
    load: Duration,
}

/// Loads a compiled object; `Err` holds the kernel's refusal with the rule file.
fn load(name: &str, text: &str, compiled: &Compiled) -> Result<Loaded, String> {
    let estimate = estimate_processed(&compiled.code, compiled.filter.hook, usize::MAX);
    let started = Instant::now();
    let program = KernelProgram::load(&compiled.object).map_err(|e| {
        format!("{name}: the kernel refused pfc's object:\n{}\n--- rule file:\n{text}", error_chain(&e))
    })?;
    let load = started.elapsed();
    let processed = program.verified_insn_count().map_err(|e| format!("{name}: {e}"))?;
    Ok(Loaded { processed, estimate: estimate.processed, load })
}

fn compile_ok(text: &str) -> Compiled {
    let (compiled, diagnostics) = compile(text, Options::default());
    compiled.unwrap_or_else(|| panic!("does not compile: {diagnostics:?}"))
}

#[test]
fn twelve_pcap_port_rules_load() {
    // Before: 12 of these rules passed pfc and the kernel refused the object after 30 s
    // ("BPF program is too large"); each atom's paths multiplied the verifier's states.
    let text = port_pcap_rules(12);
    let compiled = compile_ok(&text);
    let estimate = estimate_processed(&compiled.code, compiled.filter.hook, usize::MAX);
    assert!(estimate.complete && estimate.processed < 20_000, "estimate {estimate:?}");
    skip_unless!(no_kernel());
    let loaded = load("12 pcap rules", &text, &compiled).unwrap_or_else(|report| panic!("{report}"));
    println!("12 pcap rules: {} processed, estimate {}", loaded.processed, loaded.estimate);
    assert!(loaded.processed <= loaded.estimate, "{} > estimate {}", loaded.processed, loaded.estimate);
}

#[test]
fn verifier_work_grows_linearly_in_pcap_atoms() {
    skip_unless!(no_kernel());
    println!("{:>6} {:>10} {:>10} {:>9} {:>8}", "rules", "processed", "estimate", "per rule", "load ms");
    let mut per_rule = Vec::new();
    for count in [1, 10, 50, 200] {
        let text = port_pcap_rules(count);
        let loaded =
            load(&format!("{count} pcap rules"), &text, &compile_ok(&text)).unwrap_or_else(|report| panic!("{report}"));
        println!(
            "{count:>6} {:>10} {:>10} {:>9} {:>8}",
            loaded.processed,
            loaded.estimate,
            loaded.processed / count,
            loaded.load.as_millis()
        );
        assert!(loaded.processed <= loaded.estimate, "{count} rules: {} > estimate", loaded.processed);
        per_rule.push(loaded.processed / count);
    }
    // Linear: the work per rule at 200 rules is no more than at 10 (plus the fixed part).
    assert!(per_rule[3] <= per_rule[1], "processed instructions per rule grow: {per_rule:?}");
}

#[test]
fn mixed_pcap_and_native_sets_load_or_get_e0020() {
    skip_unless!(no_kernel());
    let sets = rulegen::mixed_pcap_rule_sets(support::seed(), 520, 300);
    let mut failures = Vec::new();
    let mut ratios = Vec::new();
    let (mut refused, mut largest_processed, mut slowest) = (0, (0, String::new()), (Duration::ZERO, String::new()));
    for set in &sets {
        let (compiled, diagnostics) = compile(&set.text, Options::default());
        let Some(compiled) = compiled else {
            let errors: Vec<String> = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| format!("{} {}", d.code.0, d.message))
                .collect();
            if errors.len() == 1 && errors[0].starts_with(KERNEL_LIMIT.0) {
                refused += 1;
            } else {
                failures.push(format!("{}: not compiled: {errors:?}\n{}", set.name, set.text));
            }
            continue;
        };
        match load(&set.name, &set.text, &compiled) {
            Ok(loaded) => {
                if loaded.processed > loaded.estimate {
                    failures.push(format!(
                        "{}: the kernel processed {} instructions, above pfc's estimate {}",
                        set.name, loaded.processed, loaded.estimate
                    ));
                }
                ratios.push(loaded.estimate as f64 / loaded.processed.max(1) as f64);
                if loaded.processed > largest_processed.0 {
                    largest_processed = (loaded.processed, set.name.clone());
                }
                if loaded.load > slowest.0 {
                    slowest = (loaded.load, set.name.clone());
                }
            }
            Err(report) => failures.push(report),
        }
    }
    ratios.sort_by(f64::total_cmp);
    let loaded = ratios.len();
    println!(
        "{} sets: {loaded} loaded, {refused} refused by pfc (E0020); largest: {} processed ({}), \
         slowest load: {} ms ({}); estimate / processed: min {:.2} median {:.2} max {:.2}; budget {MAX_PROCESSED}",
        sets.len(),
        largest_processed.0,
        largest_processed.1,
        slowest.0.as_millis(),
        slowest.1,
        ratios.first().copied().unwrap_or(0.0),
        ratios.get(loaded / 2).copied().unwrap_or(0.0),
        ratios.last().copied().unwrap_or(0.0),
    );
    assert!(sets.len() >= 500);
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// `count` rules over one field with 1–3 values each: long dispatched runs.
fn dispatch_rules(count: usize) -> String {
    let mut text = String::from("default pass\n");
    for i in 0..count {
        text.push_str(&format!("rule r{i}: drop if tcp.dport in {{ {}, {} }} and ip.ttl < 64\n", i * 3, i * 3 + 1));
    }
    text
}

/// `count` rules of an IPv6 source test or'ed with a port range.
fn ipv6_rules(count: usize) -> String {
    let mut text = String::from("default pass\n");
    for i in 0..count {
        text.push_str(&format!("rule r{i}: drop if ipv6.src == 2001:db8::{i:x} or udp.dport in 1000..{}\n", 1000 + i));
    }
    text
}

/// A ClassBench-shaped set (`pfc_compiler::classbench`): the classifier's shapes.
fn classbench_rules(shape: Shape, count: usize) -> String {
    classbench::generate(shape, count, 0, 11).text
}

#[test]
fn every_code_form_loads_within_the_estimate() {
    skip_unless!(no_kernel());
    let shapes = [
        ("dispatched, 600 rules", dispatch_rules(600), Form::Dispatched),
        ("jumping, 600 rules", dispatch_rules(600), Form::Jumping),
        ("branch-free, 600 rules", dispatch_rules(600), Form::Branchless),
        ("jumping, 400 IPv6 rules", ipv6_rules(400), Form::Jumping),
        ("branch-free, 1,500 IPv6 rules", ipv6_rules(1_500), Form::Branchless),
        ("pcap and branch-free, 150 rules", port_pcap_rules(150), Form::Branchless),
        ("classified, ClassBench acl 1,000", classbench_rules(Shape::Acl, 1_000), Form::Classified),
        ("classified, ClassBench fw 1,000", classbench_rules(Shape::Fw, 1_000), Form::Classified),
        ("classified, ClassBench mixed 1,000", classbench_rules(Shape::Mixed, 1_000), Form::Classified),
        // Past 28k slots: relays and `gotol` (32-bit gotos), checked below.
        ("classified, ClassBench mixed 4,000", classbench_rules(Shape::Mixed, 4_000), Form::Classified),
        ("table, ClassBench acl 2,000", classbench_rules(Shape::Acl, 2_000), Form::Table),
        ("table, ClassBench fw 2,000", classbench_rules(Shape::Fw, 2_000), Form::Table),
        ("table, ClassBench ipc 2,000", classbench_rules(Shape::Ipc, 2_000), Form::Table),
        ("table, ClassBench block 2,000", classbench_rules(Shape::Block, 2_000), Form::Table),
    ];
    for (name, text, form) in shapes {
        let (compiled, diagnostics) = compile_form(&text, Options::default(), Some(form));
        let compiled = compiled.unwrap_or_else(|| panic!("{name}: {diagnostics:?}"));
        let loaded = load(name, &text, &compiled).unwrap_or_else(|report| panic!("{report}"));
        println!(
            "{name}: {} insns, {} processed, estimate {} ({:.2}), load {} ms",
            compiled.code.insns.len(),
            loaded.processed,
            loaded.estimate,
            loaded.estimate as f64 / loaded.processed as f64,
            loaded.load.as_millis()
        );
        assert!(loaded.processed <= loaded.estimate, "{name}: {} > estimate {}", loaded.processed, loaded.estimate);
        if name.ends_with("4,000") {
            assert!(compiled.code.disassemble().contains(": gotol "), "{name} has no gotol");
        }
    }
}

#[test]
fn pcap_rules_past_the_pending_path_limit_get_e0020() {
    // Each atom of this shape leaves ~9 paths pending in the kernel verifier until
    // everything after it is explored (~36 before pcap atoms were optimized as decision
    // graphs): past ~900 atoms the kernel's 8,192 would be exceeded, and pfc says so
    // instead of the kernel.
    let (compiled, diagnostics) = compile(&port_pcap_rules(1200), Options::default());
    assert!(compiled.is_none(), "1,200 pcap atoms compiled");
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{} {}", d.code.0, d.message))
        .collect();
    assert!(errors.len() == 1 && errors[0].starts_with(KERNEL_LIMIT.0) && errors[0].contains("pending"), "{errors:?}");
}

/// A `protochain` walk is a loop of at most 183 steps whose every branch but the back
/// jump leaves it: the kernel explores each iteration once (its counter tells them
/// apart), and each exit only until the walk's end, where the exits join; so its work
/// per walk is about 183 steps, once per family, and atoms add up.
#[test]
fn protochain_atoms_load_within_the_estimate() {
    skip_unless!(no_kernel());
    let mut ten = String::from("default pass\n");
    for (n, proto) in ["6", "17", "58", "0", "51", "59", "4", "41", "300", "132"].iter().enumerate() {
        ten.push_str(&format!("rule c{n}: drop if pcap \"protochain {proto} and not port {}\"\n", 1000 + n));
    }
    // (name, rule set, walks the kernel explores)
    let shapes = [
        ("ip protochain 6", "default pass\nrule c: drop if pcap \"ip protochain 6\"\n".to_string(), 1),
        ("ip6 protochain 17", "default pass\nrule c: drop if pcap \"ip6 protochain 17\"\n".to_string(), 1),
        ("protochain 6", "default pass\nrule c: drop if pcap \"protochain 6\"\n".to_string(), 2),
        ("10 protochain rules", ten, 20),
    ];
    for (name, text, walks) in shapes {
        let compiled = compile_ok(&text);
        let loaded = load(name, &text, &compiled).unwrap_or_else(|report| panic!("{report}"));
        println!(
            "{name}: {} insns, {} processed, estimate {} ({:.2}), load {} ms",
            compiled.code.insns.len(),
            loaded.processed,
            loaded.estimate,
            loaded.estimate as f64 / loaded.processed as f64,
            loaded.load.as_millis()
        );
        assert!(loaded.processed <= loaded.estimate, "{name}: {} > estimate {}", loaded.processed, loaded.estimate);
        // Per walk: its 183 iterations of about 21 instructions and their exits (in the worst case
        // explored once per family), beside three times the rest of the program.
        let bound = 3 * compiled.code.insns.len() + walks * MAX_PROTOCHAIN_HEADERS as usize * 30;
        assert!(loaded.processed < bound, "{name}: {} processed, more than {bound}", loaded.processed);
    }
}

/// A rate limit keyed on 15 fields after the parse: each way through the prologue leaves
/// its own slot values, so the key's code is walked once per way. Under every hook the
/// file either loads within the estimate or is E0020; never a kernel refusal.
#[test]
fn a_wide_rate_key_loads_within_the_estimate_or_gets_e0020_under_every_hook() {
    let rule = "rule wide: drop if tcp and rate > 1/s per ip.src, ip.dst, l4.sport, l4.dport, ipv4.ttl, ipv4.id, \
                vlan.id, eth.src, eth.dst, ipv4.tos, ipv4.dscp, ipv4.len, ipv4.ihl burst 1\n";
    for hook in ["xdp", "tc ingress", "tc egress"] {
        let text = format!("hook {hook}\ndefault pass\n{rule}");
        let (compiled, diagnostics) = compile(&text, Options::default());
        let Some(compiled) = compiled else {
            assert!(diagnostics.iter().any(|d| d.code == KERNEL_LIMIT), "{hook}: {diagnostics:?}");
            println!("{hook}: E0020");
            continue;
        };
        let estimate = estimate_processed(&compiled.code, compiled.filter.hook, usize::MAX);
        println!("{hook}: estimate {}", estimate.processed);
        skip_unless!(no_kernel());
        let loaded = load(hook, &text, &compiled).unwrap_or_else(|report| panic!("{report}"));
        println!("{hook}: {} processed, estimate {}", loaded.processed, loaded.estimate);
        assert!(loaded.processed <= loaded.estimate, "{hook}: {} > estimate {}", loaded.processed, loaded.estimate);
    }
}
