//! `cargo bench -p pfc-runtime --bench stateful`: the per-packet cost of stateful rules
//! through `BPF_PROG_TEST_RUN`, next to the empty rule set (`default pass`: pfc's
//! prologue and counter tail, nothing tested) and one stateless rule, all measured in the
//! same rounds (docs/performance.md, "Rate limits and logging"):
//!
//! - a per-source rate limit whose LRU map holds 10,000 keys (filled by 10,000 packets
//!   from distinct sources first; the measured packet's key is one of them and always
//!   has tokens, so every run is a lookup, a refill and a store);
//! - a logged rule in steady state: the first 100 matches send events, after that the
//!   log limit refuses them (a bucket update and a dropped-event count per packet, plus
//!   one event per 10 ms of refill).
//!
//! Knobs: `PFC_BENCH_REPEAT` (test_run repeat, default 200000), `PFC_BENCH_ROUNDS`
//! (default 7). Prints numbers; asserts nothing about time. Skipped, with the reason,
//! when unprivileged.

use pfc_compiler::testcase::spec_bytes;
use pfc_runtime::kernel::{privileges, KernelProgram};

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

struct Case {
    name: &'static str,
    program: KernelProgram,
    packet: Vec<u8>,
}

fn load(name: &'static str, rules: &str, packet: &str) -> Case {
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("{name}: {diagnostics:?}"));
    let program = KernelProgram::load(&compiled.object).unwrap_or_else(|e| panic!("{name}: {e}"));
    Case { name, program, packet: spec_bytes(packet).expect("spec") }
}

fn main() {
    if let Err(reason) = privileges() {
        println!("stateful figures skipped: {reason}");
        return;
    }
    let repeat = env_number("PFC_BENCH_REPEAT", 200_000);
    let rounds = env_number("PFC_BENCH_ROUNDS", 7);
    let limit = load(
        "per-source limit, 10k keys",
        "default pass\nrule flood: drop if ip and rate > 4000000000/s per ip.src burst 4000000000\n",
        "ipv4 src=10.0.19.136 / udp dport=53",
    );
    for source in 0..10_000u32 {
        let address = std::net::Ipv4Addr::from(0x0a00_0000 + source);
        let packet = spec_bytes(&format!("ipv4 src={address} / udp dport=53")).expect("spec");
        assert_eq!(limit.program.test_run(&packet).expect("fill"), 2, "within the limit: passes");
    }
    let buckets = limit.program.map_values(1).expect("buckets").len();
    let logged = load(
        "logged rule, log limit refusing",
        "default pass\nrule ping: drop log if icmp\n",
        "ipv4 / icmp echo-request",
    );
    for _ in 0..1_000 {
        logged.program.test_run(&logged.packet).expect("warm up: past the log burst");
    }
    let cases = [
        load("empty rule set (default pass)", "default pass\n", "ipv4 / udp dport=53"),
        load(
            "one stateless rule (tcp.dport == 22)",
            "default pass\nrule ssh: drop if tcp.dport == 22\n",
            "ipv4 / tcp dport=22",
        ),
        limit,
        logged,
    ];
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (case, times) in cases.iter().zip(&mut samples) {
            times.push(case.program.bench(&case.packet, repeat).expect("bench"));
        }
    }
    println!(
        "BPF_PROG_TEST_RUN, {rounds} rounds x {repeat} repeats, median ns per packet (limit map: {buckets} buckets)"
    );
    let medians: Vec<u64> = samples
        .iter_mut()
        .map(|times| {
            times.sort_unstable();
            times[times.len() / 2]
        })
        .collect();
    let floor = medians[0].max(1);
    for (case, median) in cases.iter().zip(&medians) {
        let ratio = *median as f64 / floor as f64;
        println!(
            "  {:<40} {median:>6} ns  {ratio:>5.2}x the empty rule set  (+{} ns)",
            case.name,
            median.saturating_sub(floor)
        );
    }
    let events = cases[3].program.take_events().expect("ring").len();
    println!("  (the logged rule's ring buffer held {events} events after the runs)");
}
