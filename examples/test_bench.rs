//! Benchmark of `pfc test` (prints numbers; asserts nothing). Builds a 100-rule set and
//! a 1,000,000-frame capture under `target/test_bench/`, then reports
//! 1. packets per second of `pfc test RULES --pcap FILE --verdicts` (the release binary
//!    next to this example, output to /dev/null), and
//! 2. the rbpf VM's nanoseconds per packet alone (`Vm::run`), and with the counter
//!    read-back that `pfc test` does per packet to learn the deciding rule
//!    (`Vm::array_words`), next to the allocating `Vm::map_values` for comparison, in the
//!    backend `Vm::new` picks (the JIT for pfc's code on x86_64) and in rbpf's
//!    interpreter (`Vm::interpreter`, what `pfc test --interpreter` runs).
//!
//! Run: `cargo build --release && cargo run --release --example test_bench`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use pfc_compiler::packet::Packet;

const PACKETS: usize = 1_000_000;
const RULES: usize = 100;

/// 100 rules over ports, addresses, protocols and flags; most packets match late or not
/// at all, the costly case for a linear chain.
fn rules() -> String {
    let mut text = String::from("hook xdp\ndefault pass\n");
    for i in 0..RULES {
        let line = match i % 5 {
            0 => format!("rule r{i}: drop if tcp.dport == {} and ip.src in {{ 10.{i}.0.0/16 }}\n", 1000 + i),
            1 => format!("rule r{i}: pass if udp.dport == {}\n", 2000 + i),
            2 => format!("rule r{i}: drop if ip.src == 192.0.{i}.1\n"),
            3 => format!("rule r{i}: drop if tcp.flags & (syn | ack) == syn and tcp.sport == {}\n", 3000 + i),
            _ => format!("rule r{i}: pass if ipv6.dst in {{ 2001:db8:{i:x}::/48 }}\n"),
        };
        text.push_str(&line);
    }
    text
}

fn frames() -> Vec<Vec<u8>> {
    (0..256u32)
        .map(|i| {
            let port = (1000 + i * 7 % 1200) as u16;
            match i % 4 {
                0 => Packet::eth().ipv4([10, (i % 100) as u8, 1, 1], "10.0.0.2").tcp(3000 + i as u16, port).build(),
                1 => Packet::eth().ipv4("192.0.2.1", "10.0.0.2").udp(5353, port + 1000).build(),
                2 => Packet::eth().ipv6("2001:db8::1", "2001:db8:63::1").tcp(40000, 443).build(),
                _ => Packet::eth().ipv4([192, 0, (i % 120) as u8, 1], "10.0.0.2").tcp(1, 80).build(),
            }
        })
        .collect()
}

fn write_pcap(path: &PathBuf, frames: &[Vec<u8>]) {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    for index in 0..PACKETS {
        let frame = &frames[index % frames.len()];
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    std::fs::write(path, out).expect("write pcap");
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test_bench");
    std::fs::create_dir_all(&dir).expect("create target/test_bench");
    let rules_path = dir.join("rules100.pf");
    let pcap_path = dir.join("million.pcap");
    let source = rules();
    std::fs::write(&rules_path, &source).expect("write rules");
    let frames = frames();
    write_pcap(&pcap_path, &frames);

    let (compiled, diagnostics) =
        pfc_compiler::compile::compile(&source, pfc_compiler::codegen::Options { counters: true });
    let compiled = compiled.unwrap_or_else(|| panic!("rules do not compile: {diagnostics:?}"));
    println!(
        "rule set: {RULES} rules, {} instructions (rbpf's limit: {})",
        compiled.code.insns.len(),
        pfc_runtime::vm::MAX_INSNS
    );

    let pfc = std::env::current_exe().expect("exe").parent().and_then(|p| p.parent()).expect("target dir").join("pfc");
    if pfc.exists() {
        let start = Instant::now();
        let status = Command::new(&pfc)
            .args(["test", rules_path.to_str().unwrap(), "--pcap", pcap_path.to_str().unwrap(), "--verdicts"])
            .stdout(Stdio::null())
            .status()
            .expect("run pfc");
        let seconds = start.elapsed().as_secs_f64();
        assert!(status.success(), "pfc test failed");
        println!(
            "pfc test --pcap --verdicts: {PACKETS} packets in {seconds:.2} s = {:.0} packets/s (end to end: compile, read, VM, interpreter check, JSON)",
            PACKETS as f64 / seconds
        );
    } else {
        println!("{} not built; run `cargo build --release` first for the end-to-end number", pfc.display());
    }

    let object = pfc_runtime::BpfObject::parse(&compiled.object).expect("object");
    let mut slow = pfc_runtime::vm::Vm::interpreter(&object).expect("vm");
    let runs = 200_000;
    let start = Instant::now();
    for index in 0..runs {
        slow.run(&frames[index % frames.len()]).expect("run");
    }
    let slow_ns = start.elapsed().as_nanos() as f64 / runs as f64;
    println!("rbpf interpreter: {slow_ns:.0} ns/packet");
    let mut vm = pfc_runtime::vm::Vm::new(&object).expect("vm");
    let backend = vm.backend().name();
    let start = Instant::now();
    for index in 0..runs {
        vm.run(&frames[index % frames.len()]).expect("run");
    }
    let vm_ns = start.elapsed().as_nanos() as f64 / runs as f64;
    let start = Instant::now();
    for index in 0..runs {
        vm.run(&frames[index % frames.len()]).expect("run");
        std::hint::black_box(vm.map_values(0).expect("counters"));
    }
    let with_counters = start.elapsed().as_nanos() as f64 / runs as f64;
    let mut words = vec![0u64; RULES + 1];
    let start = Instant::now();
    for index in 0..runs {
        vm.run(&frames[index % frames.len()]).expect("run");
        std::hint::black_box(vm.array_words(0, &mut words).expect("counters"));
    }
    let with_words = start.elapsed().as_nanos() as f64 / runs as f64;
    let start = Instant::now();
    for index in 0..runs {
        std::hint::black_box(pfc_compiler::eval::evaluate(&compiled.program, &frames[index % frames.len()]));
    }
    let interpreter = start.elapsed().as_nanos() as f64 / runs as f64;
    println!("{backend}: {vm_ns:.0} ns/packet; with the counter read-back: {with_words:.0} ns/packet (Vm::array_words, what pfc test does), {with_counters:.0} ns/packet (Vm::map_values, allocating)");
    println!("pfc interpreter (the check): {interpreter:.0} ns/packet");
}
