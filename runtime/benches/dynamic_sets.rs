//! `cargo bench -p pfc-runtime --bench dynamic_sets`: dynamic-set figures, printed (nothing
//! here asserts on time; docs/performance.md quotes the numbers).
//!
//! 1. **Filling a set's map** from user space, one `bpf_map_update_elem` per element (the
//!    path `pfc load` falls back to for map types without batch updates): 10k and 1M
//!    elements, mixed IPv4 /16–/32 and IPv6 /32–/64 prefixes into one trie, and 32-bit
//!    values into a hash.
//! 2. **Per-packet cost** through `BPF_PROG_TEST_RUN` of `drop if ip.src in SET` (trie)
//!    and `drop if tcp.seq in SET` (hash) with 10k and 1M elements, a packet that misses
//!    and one that hits, next to `default pass` (the empty pfc program: parse prologue and
//!    counter) measured in the same rounds.
//!
//! Knobs: `PFC_BENCH_REPEAT` (default 200000), `PFC_BENCH_ROUNDS` (default 5). Skipped,
//! with the reason, without the privileges to load BPF programs.

use std::time::Instant;

use pfc_compiler::fields::ValueKind;
use pfc_compiler::program::dynamic::{element_key, VALUE};
use pfc_compiler::program::{DynamicElement, DynamicKind};
use pfc_compiler::testcase::spec_bytes;
use pfc_runtime::kernel::{privileges, KernelProgram};

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A deterministic generator (xorshift64*), so every run fills the same sets.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn prefix(kind: ValueKind, value: u128, length: u32) -> DynamicElement {
    let host = kind.bits() - length;
    let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
    DynamicElement { kind, low: value & !mask, high: value | mask }
}

/// `count` prefixes: 3 in 4 IPv4 /16–/32 (never inside 192.0.2.0/24, the miss packet's
/// source), 1 in 4 IPv6 /32–/64.
fn prefixes(count: usize) -> Vec<DynamicElement> {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|index| {
            let bits = random.next();
            if index % 4 == 3 {
                let value = u128::from(bits) << 64 | 0x2001_0db8 << 96;
                prefix(ValueKind::Ipv6, value, 32 + (bits % 33) as u32)
            } else {
                let mut value = (bits >> 32) as u32;
                if value >> 8 == 0x00c0_0002 {
                    value ^= 0x0100_0000;
                }
                prefix(ValueKind::Ipv4, u128::from(value), 16 + (bits % 17) as u32)
            }
        })
        .collect()
}

fn load(rules: &str) -> KernelProgram {
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("{rules}: {diagnostics:?}"));
    KernelProgram::load(&compiled.object).expect("the kernel loads the program")
}

/// Fills dynamic set 0's map of `program` in batches of 65,536 (`pfc load`'s path) or, where
/// the kernel has no batch update for the map type, one element at a time; returns the
/// seconds it took and which way.
fn fill(program: &KernelProgram, kind: DynamicKind, elements: &[DynamicElement]) -> (f64, &'static str) {
    let map = program.object().map_index(&pfc_compiler::object::maps::set_map_name(0)).expect("the set's map");
    let keys: Vec<[u8; 24]> = elements.iter().map(|element| element_key(kind, element, 0)).collect();
    let started = Instant::now();
    let batched = keys.chunks(65_536).all(|chunk| {
        let flat: Vec<u8> = chunk.iter().flatten().copied().collect();
        let values: Vec<u8> = chunk.iter().flat_map(|_| VALUE).collect();
        program.map_update_batch(map, &flat, &values, chunk.len() as u32).is_ok()
    });
    if batched {
        return (started.elapsed().as_secs_f64(), "batch");
    }
    let started = Instant::now();
    for key in &keys {
        program.map_update(map, key, &VALUE).expect("update");
    }
    (started.elapsed().as_secs_f64(), "each")
}

/// Median over rounds of the kernel's ns per run.
fn ns(program: &KernelProgram, packet: &[u8], repeat: u32, rounds: u32) -> u64 {
    let mut runs: Vec<u64> = (0..rounds).map(|_| program.bench(packet, repeat).expect("test run")).collect();
    runs.sort_unstable();
    runs[runs.len() / 2]
}

fn main() {
    if let Err(reason) = privileges() {
        println!("dynamic-set figures skipped: {reason}");
        return;
    }
    let repeat = env_number("PFC_BENCH_REPEAT", 200_000);
    let rounds = env_number("PFC_BENCH_ROUNDS", 5);
    let empty = load("default pass\n");
    let miss = spec_bytes("ipv4 src=192.0.2.9 dst=198.51.100.1 / tcp dport=80 seq=7").expect("spec");
    println!("size      kind  fill (s)  fill (us/elem)  how    miss ns  hit ns  empty ns  miss-empty  hit-empty");
    for size in [10_000usize, 1_000_000] {
        let trie = load("default pass\nset s: ip dynamic size 1000000\nrule r: drop if ip.src in s\n");
        let elements = prefixes(size);
        let seconds = fill(&trie, DynamicKind::Prefixes, &elements);
        let hit_source = std::net::Ipv4Addr::from(elements[0].low as u32);
        let hit = spec_bytes(&format!("ipv4 src={hit_source} dst=198.51.100.1 / tcp dport=80")).expect("spec");
        report(size, "trie", seconds, [&trie, &empty], [&miss, &hit], repeat, rounds);

        let hash = load("default pass\nset s: u32 dynamic size 1000000\nrule r: drop if tcp.seq in s\n");
        let values: Vec<DynamicElement> = (0..size as u128)
            .map(|index| DynamicElement { kind: ValueKind::Uint(128), low: 1000 + index, high: 1000 + index })
            .collect();
        let seconds = fill(&hash, DynamicKind::Values, &values);
        let hit = spec_bytes("ipv4 src=192.0.2.9 dst=198.51.100.1 / tcp dport=80 seq=1000").expect("spec");
        report(size, "hash", seconds, [&hash, &empty], [&miss, &hit], repeat, rounds);
    }
}

fn report(
    size: usize,
    kind: &str,
    (seconds, how): (f64, &str),
    [program, empty]: [&KernelProgram; 2],
    [miss, hit]: [&Vec<u8>; 2],
    repeat: u32,
    rounds: u32,
) {
    let (miss_ns, hit_ns, empty_ns) =
        (ns(program, miss, repeat, rounds), ns(program, hit, repeat, rounds), ns(empty, miss, repeat, rounds));
    println!(
        "{size:<9} {kind:<5} {seconds:<9.3} {:<15.2} {how:<6} {miss_ns:<8} {hit_ns:<7} {empty_ns:<9} {:<11} {}",
        seconds * 1e6 / size as f64,
        miss_ns as i64 - empty_ns as i64,
        hit_ns as i64 - empty_ns as i64
    );
}
