//! Kernel acceptance of pfc's objects: every example and every generated rule set (with
//! and without counters) loads through the real verifier via libbpf-rs, and one object
//! per hook goes through the tools fleets use: `bpftool prog load … type xdp|tc` (pin,
//! show, unpin), `ip link set dev lo xdpgeneric obj … sec xdp` and
//! `tc filter add … bpf direct-action obj … sec tc` (ingress and egress) in a network
//! namespace the test creates. Also: a rule set beyond a kernel limit is refused by pfc
//! with E0020, before any kernel sees it.
//!
//! Kernel tests print `skipped: <reason>` and pass when the process cannot load BPF
//! programs or `bpftool`/`ip`/`tc` are missing. Pins, temp files and namespaces are
//! removed by guards, also when an assertion fails.

#[macro_use]
extern crate pfc_test_support;

mod support;

use std::path::{Path, PathBuf};

use pfc_compiler::codegen::Options;
use pfc_compiler::compile::{compile, FUNCTION_NAME, KERNEL_LIMIT};
use pfc_compiler::diagnostic::Severity;
use pfc_compiler::verify::estimate_processed;
use pfc_runtime::kernel::KernelProgram;
use serde_json::Value;
use support::kernel::{missing_tool, no_kernel, run, run_ok, NetNs, RemoveOnDrop};
use support::{error_chain, rulegen};

const BPFFS: &str = "/sys/fs/bpf";

fn json(program: &str, args: &[&str]) -> Value {
    let text = run_ok(program, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{program} {args:?}: {e}: {text}"))
}

/// Why the tool tests cannot run here: no privileges, a missing tool, no bpffs.
fn no_tools() -> Option<String> {
    if let Some(reason) = no_kernel() {
        return Some(reason);
    }
    if let Some(reason) = missing_tool(&[("bpftool", "version"), ("ip", "-V"), ("tc", "-V")]) {
        return Some(reason);
    }
    let mounted = std::fs::read_to_string("/proc/mounts")
        .map(|mounts| mounts.lines().any(|line| line.contains(&format!(" {BPFFS} bpf "))))
        .unwrap_or(false);
    if !mounted {
        if let Err(e) = run("mount", &["-t", "bpf", "bpf", BPFFS]) {
            return Some(format!("bpffs not mounted and cannot be mounted: {e}"));
        }
    }
    None
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Compiles `text` (it must compile) and writes the object to a temp file.
fn object_file(text: &str, test: &str) -> RemoveOnDrop {
    let (compiled, diagnostics) = compile(text, Options::default());
    let compiled = compiled.unwrap_or_else(|| panic!("does not compile: {diagnostics:?}\n{text}"));
    let path = std::env::temp_dir().join(format!("pfc-accept-{}-{test}.o", std::process::id()));
    std::fs::write(&path, &compiled.object).expect("temp object is written");
    RemoveOnDrop(path)
}

/// Finds `"prog": {"id": N}` anywhere in `ip`/`tc` JSON output.
fn find_prog_id(value: &Value) -> Option<u64> {
    match value {
        Value::Object(map) => {
            map.get("prog").and_then(|p| p["id"].as_u64()).or_else(|| map.values().find_map(find_prog_id))
        }
        Value::Array(items) => items.iter().find_map(find_prog_id),
        _ => None,
    }
}

/// Loads one object through libbpf and the verifier; `Err` holds the verifier's log.
fn check_loads(name: &str, text: &str, counters: bool) -> Result<(), String> {
    let (compiled, diagnostics) = compile(text, Options { counters });
    let Some(compiled) = compiled else {
        let errors: Vec<String> = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| format!("{} {}", d.code.0, d.message))
            .collect();
        return Err(format!(
            "{name} (counters {counters}) does not compile:\n{}\n--- rule file:\n{text}",
            errors.join("\n")
        ));
    };
    let program = KernelProgram::load(&compiled.object).map_err(|e| {
        format!(
            "{name} (counters {counters}): the kernel refused the object:\n{}\n--- rule file:\n{text}",
            error_chain(&e)
        )
    })?;
    // pfc's replay of the verifier is an upper estimate of the kernel's work (E0020 rests on it).
    let processed = program.verified_insn_count().map_err(|e| format!("{name}: {e}"))?;
    let estimate = estimate_processed(&compiled.code, compiled.filter.hook, usize::MAX).processed;
    if processed > estimate {
        return Err(format!(
            "{name} (counters {counters}): the kernel processed {processed} instructions, pfc estimated {estimate}\n\
             --- rule file:\n{text}"
        ));
    }
    Ok(())
}

#[test]
fn every_example_and_generated_rule_set_passes_the_verifier() {
    skip_unless!(no_kernel());
    let mut sets = support::examples();
    sets.extend(rulegen::rule_sets(support::seed(), 300).into_iter().map(|set| (set.name, set.text)));
    let mut failures = Vec::new();
    let mut loaded = 0;
    for (name, text) in &sets {
        for counters in [true, false] {
            match check_loads(name, text, counters) {
                Ok(()) => loaded += 1,
                Err(report) => failures.push(report),
            }
        }
    }
    println!("kernel acceptance: {loaded} objects from {} rule sets loaded; {} refused", sets.len(), failures.len());
    assert!(sets.len() > 300, "only {} rule sets", sets.len());
    assert!(failures.is_empty(), "{} objects refused:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// One small rule set per hook, reading fields at every layer.
fn hook_rules(hook: &str) -> String {
    format!(
        "hook {hook}\ndefault pass\nset web: port = {{ http, https, 8000..8100 }}\n\
         rule ssh: drop if tcp.dport == ssh and ip.src not in {{ 10.0.0.0/8, 2001:db8::/32 }}\n\
         rule web: pass if l4.dport in web\nrule frag: drop if ipv4.frag_offset > 0 or ipv6.proto == 44\n"
    )
}

#[test]
fn bpftool_loads_pins_shows_and_unpins_each_hook() {
    skip_unless!(no_tools());
    for (hook, prog_type, shown) in
        [("xdp", "xdp", "xdp"), ("tc ingress", "tc", "sched_cls"), ("tc egress", "tc", "sched_cls")]
    {
        let test = format!("bpftool-{}", hook.replace(' ', "-"));
        let object = object_file(&hook_rules(hook), &test);
        let pin = RemoveOnDrop(PathBuf::from(format!("{BPFFS}/pfc-accept-{}-{test}", std::process::id())));
        let _ = std::fs::remove_file(&pin.0);
        run_ok("bpftool", &["prog", "load", path_str(&object.0), path_str(&pin.0), "type", prog_type]);
        let prog = json("bpftool", &["--json", "prog", "show", "pinned", path_str(&pin.0)]);
        assert_eq!(
            (prog["type"].as_str(), prog["name"].as_str()),
            (Some(shown), Some(FUNCTION_NAME)),
            "{hook}: {prog}"
        );
        assert_eq!(prog["map_ids"].as_array().map(Vec::len), Some(1), "{hook}: one counter map: {prog}");
        std::fs::remove_file(&pin.0).expect("unpin");
        assert!(!pin.0.exists(), "{hook}: pin still there after unpinning");
    }
}

#[test]
fn ip_and_tc_attach_each_hook_in_a_namespace() {
    skip_unless!(no_tools());
    let ns = NetNs::new(format!("pfc-accept-{}-attach", std::process::id()));
    let xdp = object_file(&hook_rules("xdp"), "attach-xdp");
    run_ok("ip", &["-n", &ns.0, "link", "set", "dev", "lo", "xdpgeneric", "obj", path_str(&xdp.0), "sec", "xdp"]);
    let link = json("ip", &["-n", &ns.0, "-j", "link", "show", "dev", "lo"]);
    let id = find_prog_id(&link).unwrap_or_else(|| panic!("no XDP program on lo: {link}"));
    let attached = json("bpftool", &["--json", "prog", "show", "id", &id.to_string()]);
    assert_eq!(attached["name"].as_str(), Some(FUNCTION_NAME), "{attached}");

    run_ok("tc", &["-n", &ns.0, "qdisc", "add", "dev", "lo", "clsact"]);
    for direction in ["ingress", "egress"] {
        let object = object_file(&hook_rules(&format!("tc {direction}")), &format!("attach-tc-{direction}"));
        let obj = path_str(&object.0);
        let args =
            ["-n", &ns.0, "filter", "add", "dev", "lo", direction, "bpf", "direct-action", "obj", obj, "sec", "tc"];
        run_ok("tc", &args);
        let filters = json("tc", &["-n", &ns.0, "-j", "filter", "show", "dev", "lo", direction]);
        assert!(find_prog_id(&filters).is_some(), "no tc program on lo {direction}: {filters}");
    }
}

/// A rule set past a kernel or encoding limit gets E0020 from pfc (never E0900, never a
/// verifier failure): `what` must appear in the message.
fn check_refused(case: &str, text: &str, counters: bool, what: &str) {
    let (compiled, diagnostics) = compile(text, Options { counters });
    assert!(compiled.is_none(), "{case}: compiled, but should break a limit");
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{} {}", d.code.0, d.message))
        .collect();
    assert_eq!(errors.len(), 1, "{case}: {errors:?}");
    assert!(errors[0].starts_with(KERNEL_LIMIT.0) && errors[0].contains(what), "{case}: {errors:?}");
}

/// `count` rules whose condition is an `or` (nothing to dispatch on) with a set too large
/// for branch-free code (17 addresses), so every rule keeps its search tree's failure
/// paths pending in the kernel verifier.
fn many_big_set_rules(count: usize) -> String {
    let mut text = String::from("default pass\n");
    for i in 0..count {
        let addresses: Vec<String> = (0..17).map(|k| format!("10.{}.{}.{}", i % 256, i / 256, k * 2)).collect();
        text.push_str(&format!("rule r{i}: drop if udp.dport == 53 or ip.src in {{ {} }}\n", addresses.join(", ")));
    }
    text
}

/// `count` rules of four IPv6 address tests each (about 37 instructions per rule).
fn many_ipv6_rules(count: usize) -> String {
    let mut text = String::from("default pass\n");
    for i in 0..count {
        text.push_str(&format!(
            "rule r{i}: drop if ipv6.src == 2001:db8::{i:x} or ipv6.dst == 2001:db8::{i:x} \
             or ipv6.src == fe80::{i:x} or ipv6.dst == fe80::{i:x}\n"
        ));
    }
    text
}

#[test]
fn rule_sets_beyond_kernel_limits_are_refused_by_pfc() {
    // The stack limit (E0020 "keeps N 32-bit values on the stack") takes more than every
    // field (58 words): pcap atoms' verdicts and a rate limit's key besides, as in
    // tests/diagnostics/compile/E0020_stack_full.pf. Instruction count, jump reach and the verifier's
    // pending-path stack can (before the fix, a jump out of reach was reported as
    // E0900, an internal error).
    // A set whose tree does not fit becomes a map when a map can hold it (language.md
    // §6.3); 20,000 ranges of 1,000 values (20M values: more than a map holds) cannot.
    let mut big_set = String::from("default pass\nrule r: drop if tcp.dport == 1 and tcp.seq in {");
    big_set.extend((0..20_000u64).map(|i| format!("{}..{}, ", i * 3_000, i * 3_000 + 999)));
    big_set.push_str("1}\n");
    check_refused("one rule longer than a jump reaches", &big_set, true, "jump can cross");
    check_refused("too many paths for the kernel verifier", &many_big_set_rules(3_000), true, "paths pending");
    check_refused("over a million instructions", &many_ipv6_rules(30_000), false, "kernel accepts at most 1000000");
}

#[test]
fn rule_sets_far_from_the_counter_tail_load() {
    // 7,000 one-test rules span more than a 16-bit jump: matched rules reach the one
    // counter tail with a `gotol`, and the kernel accepts the program.
    let mut text = String::from("default pass\n");
    text.extend((0..7_000).map(|i| format!("rule r{i}: drop if pkt.len == {}\n", 60 + i)));
    let (compiled, diagnostics) = compile(&text, Options { counters: true });
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    assert!(compiled.code.slots() > 32_767, "the program should be longer than a jump reaches");
    assert_one_tail(&compiled.code.disassemble(), COUNTER_TAIL, "7,000 rules");
    skip_unless!(no_kernel());
    if let Err(error) = pfc_runtime::kernel::KernelProgram::load(&compiled.object) {
        panic!("the kernel refused the program: {error}");
    }
}

/// The kernel allows a program 64 maps (`MAX_USED_MAPS`); pfc refuses more with E0020
/// (`compile/used_maps.rs`). A rule set naming exactly 64 (15 dynamic `ip` sets of 4
/// maps, a rate limit's buckets and statistics, the counters, the generation array)
/// compiles and loads: pfc's limit is the kernel's, not stricter.
#[test]
fn a_rule_set_naming_sixty_four_maps_loads() {
    let mut text = String::from("default pass\nrule flood: drop if udp.dport == 53 and rate > 10/s\n");
    text.extend((0..15).map(|set| format!("set s{set}: ip dynamic size 16\nrule r{set}: drop if ip.src in s{set}\n")));
    let (compiled, diagnostics) = compile(&text, Options::default());
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let used: std::collections::BTreeSet<u32> = compiled.code.map_relocations().iter().map(|r| r.map).collect();
    assert_eq!(used.len(), 64, "the rule set should name exactly the kernel's limit of maps");
    let (refused, _) = compile(
        &text.replace("default pass\n", "default pass\nrule udp_flood: drop if udp.dport == 54 and rate > 10/s\n"),
        Options::default(),
    );
    assert!(refused.is_none(), "65 maps should be refused by pfc");
    skip_unless!(no_kernel());
    if let Err(error) = KernelProgram::load(&compiled.object) {
        panic!("the kernel refused a program naming 64 maps: {}", error_chain(&error));
    }
}

#[test]
fn large_rule_sets_fall_back_to_branch_free_conditions_and_load() {
    // 3,000 rules of four IPv6 tests each would keep about 40,000 paths pending in the
    // kernel verifier as jumping code; pfc compiles their conditions without jumps instead.
    let (compiled, diagnostics) = compile(&many_ipv6_rules(3_000), Options { counters: true });
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    skip_unless!(no_kernel());
    if let Err(error) = pfc_runtime::kernel::KernelProgram::load(&compiled.object) {
        panic!("the kernel refused the program: {error}");
    }
}

/// ClassBench-shaped sets of 2,000 rules of every shape compile as a classifier, load
/// through the kernel verifier and run in the VM (10,000-rule sets are in the
/// `classbench` benchmark).
#[test]
fn classifier_sets_of_2000_rules_of_every_shape_load() {
    use pfc_compiler::classbench::{self, Shape};
    let mut relays = 0;
    for shape in Shape::ALL {
        let text = classbench::generate(shape, 2_000, 0, support::seed()).text;
        let (compiled, diagnostics) = compile(&text, Options { counters: true });
        let compiled = compiled.unwrap_or_else(|| panic!("{}: {diagnostics:?}", shape.name()));
        let listing = compiled.code.disassemble();
        assert!(listing.contains("classifier:"), "{} is not classified", shape.name());
        assert_one_tail(&listing, COUNTER_TAIL, shape.name());
        relays += listing.matches(TAIL_RELAY).count();
        let object = pfc_runtime::BpfObject::parse(&compiled.object).expect("object parses");
        if let Err(error) = pfc_runtime::vm::Vm::new(&object) {
            panic!("{}: the VM refuses it: {}", shape.name(), error_chain(&error));
        }
        if let Some(reason) = no_kernel() {
            println!("skipped kernel load: {reason}");
            continue;
        }
        if let Err(error) = KernelProgram::load(&compiled.object) {
            panic!("{}: the kernel refuses it: {}", shape.name(), error_chain(&error));
        }
    }
    assert!(relays > 0, "the 2,000-rule sets should reach their tail through relays");
}

/// The counter tail's comment in a listing.
const COUNTER_TAIL: &str = "count the packet for the deciding rule";
/// A relay's comment in a listing.
const TAIL_RELAY: &str = "relay: to the tail";
/// The exit tail's comment in a listing (no counters).
const EXIT_TAIL: &str = "absent mask's bit 31";

/// A program longer than a conditional jump reaches has its tail once: far conditional
/// jumps go through relays (`goto tail`), not through copies of the tail, each of which
/// cost the kernel verifier a pass over the whole program on its first walk.
fn assert_one_tail(listing: &str, tail: &str, case: &str) {
    assert_eq!(listing.matches(tail).count(), 1, "{case}: the tail should be emitted once");
}

/// Without counters a classified set returns every verdict through the exit tail, whose
/// never-taken branch reads every stack word (as the counter tail's null path does; see
/// `codegen/mod.rs`): 2,000-rule sets of every shape compile classified that way and load.
#[test]
fn classifier_sets_of_2000_rules_without_counters_load() {
    use pfc_compiler::classbench::{self, Shape};
    for shape in Shape::ALL {
        let text = classbench::generate(shape, 2_000, 0, support::seed()).text;
        let (compiled, diagnostics) = compile(&text, Options { counters: false });
        let compiled = compiled.unwrap_or_else(|| panic!("{}: {diagnostics:?}", shape.name()));
        let listing = compiled.code.disassemble();
        assert!(listing.contains("classifier:"), "{} is not classified", shape.name());
        assert_one_tail(&listing, EXIT_TAIL, shape.name());
        if let Some(reason) = no_kernel() {
            println!("skipped kernel load: {reason}");
            return;
        }
        if let Err(error) = KernelProgram::load(&compiled.object) {
            panic!("{} without counters: the kernel refuses it: {}", shape.name(), error_chain(&error));
        }
    }
}
