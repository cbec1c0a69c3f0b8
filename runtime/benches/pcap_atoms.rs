//! `cargo bench -p pfc-runtime --bench pcap_atoms`: per-packet cost of pcap atoms
//! (issue 17 item 3) through `BPF_PROG_TEST_RUN`, next to the empty `r0 = 2; exit`
//! program measured in the same rounds.
//!
//! The subjects are the ten expressions of `tests/pcap_libpcap.rs`'s 3,000 random ones
//! (default seed) whose atom code was largest before the third optimizer round, each as
//! `default pass` + `rule m: drop if pcap "EXPR"`, no counters. `PFC_BENCH_PCAP_BASELINE`
//! names another `pfc` binary (an older build): each expression is also compiled by it
//! (`pfc compile --no-counters`) and measured in the same rounds, so the table shows
//! before and after side by side.
//!
//! Knobs: `PFC_BENCH_REPEAT` (test_run repeat, default 200000), `PFC_BENCH_ROUNDS`
//! (default 7). Nothing here asserts on time; it prints numbers for people
//! (`docs/performance.md`). Skipped, with the reason, when unprivileged.

#[path = "perf/kernel_side.rs"]
#[allow(dead_code)]
mod kernel_side;

use std::path::Path;
use std::process::Command;

use pfc_compiler::codegen::Options;
use pfc_compiler::packet::Packet;
use pfc_runtime::kernel::{privileges, KernelProgram};

/// The ten largest (by pfc's atom code at commit 6572e41) of the random expressions.
const EXPRESSIONS: [&str; 10] = [
    "((less 100 or port https or 65535) and proto 132 || src and dst portrange 80-65535) or not proto 6",
    "(port 53 and not 23 || ether src host 02:00:00:00:00:01) and port 23 || 80 || tcp src and dst port 0",
    "not ((! (src port 8080) and not less 42) and not (src or dst port 80 and not 80) && tcp[tcpflags] & (tcp-fin|tcp-rst) != 0) && ((! port 65535 and not 23) and not src and dst net 192.168.1) || (not byte 14 > 0x40) or not vlan 0",
    "(dst port 443 || 53 or not ! (src or dst port ssh || 23) and ether proto \\ip) or not (not (sctp port domain) and not src and dst net 10) or (tcp[tcpflags] & (tcp-syn|tcp-ack) != 0)",
    "(src and dst port 0 and not 0 and (src port 23 || 443) or not src or dst host fe80::1) and not (! (port 80) || 0 >= udp[2:2] & udp[6:2]) || port 8080 or 8080",
    "! (vlan or ! (! len != 017 ^ tcp[ip[0] & 3]) and host 192.168.1.3 or 192.168.1.2) and (src port 80 || 53) || (udp portrange 53-22) and port 22",
    "port 23 or not (ip6 src and dst host 2001:db8::3 or not src port http) or not (udp src or dst portrange 80-0)",
    "! (ip proto 6 or (udp src port 65535) and not arp) or not 1 - tcp-syn - icmp6[1] <= icmp-echo and not src or dst port 443 or 0 and not src and dst port 65535 and not 80",
    "((src or dst port 53 || 65535) && (port 0)) and not ((ip6 host 2001:db8::1) || src port 53) || host 192.168.1.1 or not 10.0.0.1 || udp src or dst port 443",
    "! (not ((greater 100) or host 192.168.1.0 or not 192.168.1.3)) or (! (less 74) && src or dst port 53 or 22) or not src or dst portrange 80-53 and not dst port 22 and not 22",
];

fn rule_file(expr: &str) -> String {
    format!("default pass\nrule m: drop if pcap \"{}\"\n", expr.replace('\\', "\\\\").replace('"', "\\\""))
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// One program under test: its name, object and instruction count.
struct Subject {
    name: String,
    elf: Vec<u8>,
    insns: usize,
}

/// The object an older `pfc` binary writes for `expr` (no counters).
fn baseline(binary: &Path, index: usize, expr: &str) -> Result<Subject, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let (rules, object) = (dir.join(format!("pcap_atoms_{index}.pf")), dir.join(format!("pcap_atoms_{index}.o")));
    std::fs::write(&rules, rule_file(expr)).map_err(|e| format!("writing {}: {e}", rules.display()))?;
    let run = Command::new(binary)
        .arg("compile")
        .arg(&rules)
        .arg("--no-counters")
        .arg("-o")
        .arg(&object)
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    if !run.status.success() {
        return Err(format!("baseline pfc refused #{index}: {}", String::from_utf8_lossy(&run.stderr)));
    }
    let elf = std::fs::read(&object).map_err(|e| format!("reading {}: {e}", object.display()))?;
    let insns = pfc_compiler::object::BpfObject::parse(&elf).map_or(0, |object| object.code.len() / 8);
    Ok(Subject { name: format!("#{index} baseline"), elf, insns })
}

fn subjects(skipped: &mut Vec<String>) -> Vec<Subject> {
    let mut list = vec![Subject { name: "empty: w0 = 2; exit".into(), elf: kernel_side::empty_object(), insns: 2 }];
    let base = std::env::var_os("PFC_BENCH_PCAP_BASELINE");
    for (index, expr) in EXPRESSIONS.iter().enumerate() {
        if let Some(binary) = &base {
            match baseline(Path::new(binary), index, expr) {
                Ok(subject) => list.push(subject),
                Err(reason) => skipped.push(reason),
            }
        }
        match pfc_compiler::compile::compile(&rule_file(expr), Options { counters: false }).0 {
            Some(compiled) => list.push(Subject {
                name: format!("#{index} this build"),
                insns: compiled.code.encode().len() / 8,
                elf: compiled.object,
            }),
            None => skipped.push(format!("#{index}: pfc refused it")),
        }
    }
    list
}

fn main() {
    if let Err(reason) = privileges() {
        println!("pcap_atoms skipped: {reason}");
        return;
    }
    let repeat = env_number("PFC_BENCH_REPEAT", 200_000).max(10_000);
    let rounds = env_number("PFC_BENCH_ROUNDS", 7).max(1) as usize;
    let (a4, b4, a6, b6) = ("10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2");
    let packets = [
        ("tcp4/22", Packet::eth().ipv4(a4, b4).tcp(40000, 22).build()),
        ("udp4/53", Packet::eth().ipv4(a4, b4).udp(40000, 53).build()),
        ("tcp6/443", Packet::eth().ipv6(a6, b6).tcp(40000, 443).build()),
    ];
    let mut skipped = Vec::new();
    let mut loaded = Vec::new();
    for subject in subjects(&mut skipped) {
        match KernelProgram::load(&subject.elf) {
            Ok(program) => loaded.push((subject, program, vec![Vec::new(); packets.len()])),
            Err(error) => skipped.push(format!("{}: refused by the kernel: {error}", subject.name)),
        }
    }
    for _ in 0..rounds {
        for (index, (_, packet)) in packets.iter().enumerate() {
            for (_, program, samples) in loaded.iter_mut() {
                if let Ok(ns) = program.bench(packet, repeat) {
                    samples[index].push(ns as f64);
                }
            }
        }
    }
    println!("== pcap atoms: ns/packet, BPF_PROG_TEST_RUN repeat {repeat}, mean of {rounds} rounds ==");
    println!("(+N) = above the empty program in the same rounds; D/P = the verdict");
    for (index, expr) in EXPRESSIONS.iter().enumerate() {
        println!("#{index}: {expr}");
    }
    let mean = |samples: &[f64]| (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64);
    let floors: Vec<Option<f64>> = (0..packets.len()).map(|i| loaded.first().and_then(|e| mean(&e.2[i]))).collect();
    let mut header = format!("{:<22} {:>6}", "program", "insns");
    for (name, _) in &packets {
        header.push_str(&format!(" {name:>18}"));
    }
    println!("{header}");
    for (subject, program, samples) in &loaded {
        let mut line = format!("{:<22} {:>6}", subject.name, subject.insns);
        for (index, (_, packet)) in packets.iter().enumerate() {
            let verdict = match program.test_run(packet) {
                Ok(1) => "D",
                Ok(2) => "P",
                _ => "?",
            };
            let cell = match (mean(&samples[index]), floors[index]) {
                (Some(ns), Some(floor)) => format!("{ns:.2} ({:+.2}) {verdict}", ns - floor),
                _ => "failed".into(),
            };
            line.push_str(&format!(" {cell:>18}"));
        }
        println!("{line}");
    }
    for reason in skipped {
        println!("skipped: {reason}");
    }
}
