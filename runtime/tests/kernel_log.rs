//! Logging in the kernel: every generated shape of log code passes the kernel verifier,
//! and the events `BPF_PROG_TEST_RUN` makes the program write are the VM's (apart from
//! the time), one per logged match, with a flood held back by the log limit and counted.
//! Every test skips (and says why) when this process cannot load BPF programs.
#[macro_use]
extern crate pfc_test_support;

use pfc_compiler::codegen::log::stats_map_index;
use pfc_compiler::program::log::{Event, LOG_BURST};
use pfc_compiler::testcase::spec_bytes;
use pfc_runtime::kernel::KernelProgram;
use pfc_runtime::vm::Vm;
use pfc_runtime::BpfObject;
use pfc_test_support::no_kernel;

fn compile(rules: &str) -> pfc_compiler::compile::Compiled {
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    compiled.unwrap_or_else(|| panic!("{rules}: {diagnostics:?}"))
}

/// Everything in an event but its time, which only the VM controls.
fn timeless(record: &[u8]) -> Event {
    Event { time_ns: 0, ..Event::decode(record).expect("a whole event") }
}

/// Sent and dropped events of rule `rule`, summed over CPUs.
fn log_stats(kernel: &KernelProgram, limits: usize, rule: usize) -> (u64, u64) {
    let values = kernel.map_values(stats_map_index(limits, 0) as usize).expect("log stats");
    let word = |at: usize| u64::from_le_bytes(values[rule][at..at + 8].try_into().expect("8 bytes"));
    (word(0), word(8))
}

#[test]
fn the_kernel_verifier_accepts_every_shape_of_log_code() {
    skip_unless!(no_kernel());
    let mut many = String::from("default pass\n");
    for port in 0..40 {
        let log = if port % 3 == 0 { " log 128" } else { "" };
        many += &format!("rule r{port}: drop{log} if tcp.dport == {} and ip.src in {{10.0.0.0/8}}\n", 1000 + port);
    }
    let sets = [
        "default pass\nrule a: drop log if tcp.dport == 22\n".to_string(),
        "default pass\nrule a: drop log 0 if udp\nrule b: pass log 1 if tcp\n".to_string(),
        "default drop\nrule a: pass log 1024\n".to_string(),
        "default pass\nrule a: drop log 64 if icmp and rate > 10/s per ip.src burst 20\n".to_string(),
        "hook tc ingress\ndefault pass\nrule a: drop log if ipv6 and tcp.flags & syn\nrule b: pass log 1024 if arp\n"
            .to_string(),
        "hook tc egress\ndefault drop\nrule a: pass log 16 if pcap \"udp port 53\"\nrule b: pass log\n".to_string(),
        many,
    ];
    for rules in &sets {
        let compiled = compile(rules);
        let kernel = KernelProgram::load(&compiled.object).unwrap_or_else(|e| panic!("{rules}: {e}"));
        let processed = kernel.verified_insn_count().expect("insn count");
        println!("{} rules: verified, {processed} instructions processed", compiled.program.rules.len());
    }
}

#[test]
fn test_run_writes_the_vms_events_for_every_logged_match() {
    skip_unless!(no_kernel());
    let rules = "default pass\nrule ssh: drop log 40 if tcp.dport == 22\nrule dns: pass log 0 if udp.dport == 53\n\
                 rule web: pass if tcp.dport == 80\n";
    let compiled = compile(rules);
    let kernel = KernelProgram::load(&compiled.object).expect("loads");
    let object = BpfObject::parse(&compiled.object).expect("parses");
    let mut vm = Vm::new(&object).expect("vm");
    let specs = [
        "ipv4 src=10.0.0.1 dst=10.0.0.2 / tcp sport=51000 dport=22 flags=S",
        "ipv4 / tcp dport=80",
        "ipv6 / udp dport=53",
        "ipv4 / tcp dport=22 / payload 00112233445566778899",
        "ipv4 / udp dport=54",
    ];
    let (mut kernel_events, mut vm_events) = (Vec::new(), Vec::new());
    for spec in specs {
        let packet = spec_bytes(spec).expect("spec");
        let verdict = kernel.test_run(&packet).expect("test_run");
        assert_eq!(u64::from(verdict), vm.run_at(&packet, 0).expect("vm").return_value, "{spec}");
        kernel_events.extend(kernel.take_events().expect("ring").iter().map(|r| timeless(r)));
        vm_events.extend(vm.take_events().iter().map(|r| timeless(r)));
    }
    assert_eq!(kernel_events, vm_events);
    let rules_logged: Vec<u32> = kernel_events.iter().map(|event| event.rule).collect();
    assert_eq!(rules_logged, [0, 1, 0], "ssh, dns, ssh: the unlogged and undecided packets send nothing");
    let first = spec_bytes(specs[0]).expect("spec");
    assert_eq!(kernel_events[0].frame_len as usize, first.len());
    assert_eq!(kernel_events[0].bytes, first[..40], "the first 40 bytes of the frame");
    assert_eq!((kernel_events[0].action, kernel_events[1].action), (1, 2), "XDP_DROP, XDP_PASS");
    assert!(kernel_events[1].bytes.is_empty(), "log 0 keeps no bytes");
    assert_eq!(log_stats(&kernel, compiled.program.limits.len(), 0), (2, 0));
}

/// 3 × the burst of matches through `BPF_PROG_TEST_RUN`, as fast as it goes: the log
/// limit lets the burst through (plus what its 100/s refill adds meanwhile), every other
/// match is counted as dropped, and the program still decides every packet.
#[test]
fn a_flood_of_matches_sends_the_burst_and_counts_the_rest() {
    skip_unless!(no_kernel());
    let compiled = compile("default pass\nrule flood: drop log if icmp\n");
    let kernel = KernelProgram::load(&compiled.object).expect("loads");
    let packet = spec_bytes("ipv4 / icmp echo-request").expect("spec");
    let floods = 3 * LOG_BURST;
    let started = std::time::Instant::now();
    let mut events = 0;
    for _ in 0..floods {
        assert_eq!(kernel.test_run(&packet).expect("test_run"), 1, "every packet is still dropped");
        events += kernel.take_events().expect("ring").len() as u64;
    }
    let refilled = (started.elapsed().as_secs_f64() * 100.0).ceil() as u64;
    let (sent, dropped) = log_stats(&kernel, compiled.program.limits.len(), 0);
    println!("{floods} matches in {:?}: {sent} events, {dropped} dropped", started.elapsed());
    assert_eq!(sent, events);
    assert_eq!(sent + dropped, floods);
    assert!((LOG_BURST..=LOG_BURST + refilled).contains(&sent), "{sent} events, burst {LOG_BURST} + {refilled}");
}
