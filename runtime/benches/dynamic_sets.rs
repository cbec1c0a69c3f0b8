//! `cargo bench -p pfc-runtime --bench dynamic_sets`: dynamic-set figures, printed (nothing
//! here asserts on time; docs/performance.md quotes the numbers).
//!
//! 1. **Filling a set's map** through pfc's own path (`LiveSys::write_entries`:
//!    `BPF_MAP_UPDATE_BATCH` in chunks of 65,536) with 10k and 1M mixed IPv4 /16–/32 and
//!    IPv6 /32–/64 prefixes into the set's two tries (IPv4, IPv6; generation 0), in three
//!    key orders measured in the same run:
//!    the generator's (random), by prefix length then address (the byte order of the
//!    keys, which `pfc load` and `pfc set` used before), and [`trie_order`] (what they use
//!    now, `pfc_runtime::attach::sets::trie_order`), the last also with each family's
//!    map written on its own thread (`BpfSys::map_jobs`, what `pfc load` does). Wall and
//!    CPU seconds (the process's, kernel time included: the machine may be shared, and
//!    CPU time is what the work costs).
//! 2. **Replacing** the 1M prefixes with 1M others (disjoint): read the current
//!    generation's maps' keys, write the other generation's maps, flip the generation
//!    word, delete the old generation's keys, one map after another (`pfc set replace`
//!    before 0a182c1); then back, the way `pfc set replace` does it now: the next
//!    generation's maps written while the current one's are read, a thread a map, the
//!    flip, the old maps deleted on two threads. Each step and the total.
//! 3. **Per-packet cost** through `BPF_PROG_TEST_RUN` of `drop if ip.src in SET` (trie)
//!    and `drop if tcp.seq in SET` (hash) with 10k and 1M elements, a packet that misses
//!    and one that hits, next to `default pass` (the empty pfc program: parse prologue and
//!    counter) measured in the same rounds.
//!
//! 4. **A static set as a decision tree or as a map** (what decides when pfc puts a big
//!    static set in a map): 1k, 4k and 12k IPv4 prefixes, 1k and 12k u32 values.
//! 5. **The clang reference**: `../shared/ref/acl_maps.c` (an XDP program with an IPv4
//!    LPM trie `{u32 prefixlen, u32 addr}` looked up by source address) compiled with
//!    `clang -O2 -target bpf`, its trie filled with the IPv4 prefixes of the 10k and 1M
//!    sets (IPv6 does not fit its key), against pfc's trie holding the same IPv4 prefixes
//!    and pfc's trie holding the whole mixed set, next to pfc's empty program and clang's
//!    `empty.c` (`return XDP_PASS`); UDP packets (so the reference's second lookup, a TCP
//!    port hash, does not run), every program once per round, in the opposite order every
//!    other round (so neither compiler always runs first), medians; then each round's
//!    ratio pfc ÷ clang above each floor, with its median, quartiles and extremes over
//!    the rounds (the spread the medians hide). Also each program's xlated size. Skipped,
//!    with the reason, when clang or the files are missing (`PFC_BENCH_REF_DIR` names
//!    another directory than `../shared/ref`).
//!
//! Knobs: `PFC_BENCH_REPEAT` (default 200000), `PFC_BENCH_ROUNDS` (default 5),
//! `PFC_BENCH_ONLY=clang` (section 5 alone). Skipped, with the reason, without the
//! privileges to load BPF programs.

use std::time::Instant;

use pfc_compiler::fields::ValueKind;
use pfc_compiler::object::maps::SET_GENERATION_MAP_NAME;
use pfc_compiler::program::dynamic::{element_key, map_key, state_value, Family, Part, VALUE};
use pfc_compiler::program::{DynamicElement, DynamicKind};
use pfc_compiler::testcase::spec_bytes;
use pfc_runtime::attach::live::LiveSys;
use pfc_runtime::attach::sets::{in_trie_order, SetKey};
use pfc_runtime::attach::{BpfSys, Existing, MapJob};
use pfc_runtime::kernel::{privileges, KernelProgram};
use pfc_test_support::Random;

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn prefix(kind: ValueKind, value: u128, length: u32) -> DynamicElement {
    let host = kind.bits() - length;
    let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
    DynamicElement { kind, low: value & !mask, high: value | mask }
}

/// `count` prefixes from `seed`: 3 in 4 IPv4 /16–/32 (never inside 192.0.2.0/24, the miss packet's
/// source), 1 in 4 IPv6 /32–/64.
fn prefixes(count: usize, seed: u64) -> Vec<DynamicElement> {
    let mut random = Random(seed);
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

/// Seconds of CPU this process used so far (user and kernel).
fn cpu_seconds() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Runs `work`; its result with the wall and CPU seconds it took.
fn timed<T>(work: impl FnOnce() -> T) -> (T, f64, f64) {
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let result = work();
    (result, started.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

/// The id of map `name` of `program`.
fn map_id(program: &KernelProgram, name: &str) -> u32 {
    program.map_id(program.object().map_index(name).expect("map")).expect("map id")
}

/// `keys` of a set of `kind` as the map keys of each family's map of `generation` of
/// `program`'s set 0: map id and keys back to back, in the order given within a family.
fn by_map(program: &KernelProgram, kind: DynamicKind, keys: &[SetKey], generation: u32) -> Vec<(u32, Vec<u8>)> {
    let mut maps: Vec<(Family, Vec<u8>)> = Vec::new();
    for key in keys {
        let (family, map_key) = map_key(kind, key).expect("a pfc key");
        match maps.iter_mut().find(|(f, _)| *f == family) {
            Some((_, bytes)) => bytes.extend_from_slice(map_key.as_bytes()),
            None => maps.push((family, map_key.as_bytes().to_vec())),
        }
    }
    maps.into_iter().map(|(family, bytes)| (map_id(program, &Part { family, generation }.map_name(0)), bytes)).collect()
}

/// Writes `keys` into `program`'s set 0 (generation 0) through pfc's path, in the order
/// given.
fn fill(program: &KernelProgram, kind: DynamicKind, keys: &[SetKey]) {
    let mut written = 0;
    for (map, bytes) in by_map(program, kind, keys, 0) {
        written += LiveSys.write_entries(map, &bytes, &VALUE, Existing::Overwrite).expect("fill");
    }
    assert_eq!(written, keys.len());
}

/// [`fill`] as `pfc load` does it: each family's map on its own thread
/// (`BpfSys::map_jobs`).
fn fill_in_parallel(program: &KernelProgram, kind: DynamicKind, keys: &[SetKey]) {
    let maps = by_map(program, kind, keys, 0);
    let jobs: Vec<MapJob<'_>> = maps
        .iter()
        .map(|(map, bytes)| MapJob::Write { map_id: *map, keys: bytes, value: &VALUE, existing: Existing::Overwrite })
        .collect();
    let written: usize = LiveSys.map_jobs(&jobs).into_iter().map(|done| done.expect("fill").count()).sum();
    assert_eq!(written, keys.len());
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
    let trie_rules = "default pass\nset s: ip dynamic size 1000000\nrule r: drop if ip.src in s\n";
    let hash_rules = "default pass\nset s: u32 dynamic size 1000000\nrule r: drop if tcp.seq in s\n";
    let keys_of = |elements: &[DynamicElement]| -> Vec<SetKey> {
        elements.iter().map(|element| element_key(DynamicKind::Prefixes, element)).collect()
    };
    if std::env::var("PFC_BENCH_ONLY").is_ok_and(|only| only == "clang") {
        clang_reference(&load("default pass\n"), repeat, rounds);
        return;
    }

    println!("fill: prefixes into the set's tries through LiveSys::write_entries (batches of 65,536)");
    println!("size      order               wall (s)  cpu (s)  cpu us/elem");
    for size in [10_000usize, 1_000_000] {
        let random = keys_of(&prefixes(size, 0x9e37_79b9_7f4a_7c15));
        let mut by_length = random.clone();
        by_length.sort_unstable();
        let orders = [
            ("random", random.clone()),
            ("length, address", by_length),
            ("trie_order", Vec::new()),
            ("trie_order, 2 thr", Vec::new()),
        ];
        for (order, keys) in orders {
            let program = load(trie_rules);
            // pfc's own sort is part of its path: timed with the writes.
            let ((), wall, cpu) = match order {
                "trie_order" => timed(|| fill(&program, DynamicKind::Prefixes, &in_trie_order(random.clone()))),
                "trie_order, 2 thr" => {
                    timed(|| fill_in_parallel(&program, DynamicKind::Prefixes, &in_trie_order(random.clone())))
                }
                _ => timed(|| fill(&program, DynamicKind::Prefixes, &keys)),
            };
            println!("{size:<9} {order:<19} {wall:<9.3} {cpu:<8.3} {:.2}", cpu * 1e6 / size as f64);
        }
    }
    replace_figures(
        trie_rules,
        &keys_of(&prefixes(1_000_000, 0x9e37_79b9_7f4a_7c15)),
        &keys_of(&prefixes(1_000_000, 0x51ed_270b_27d4_b3a9)),
    );

    let empty = load("default pass\n");
    let miss = spec_bytes("ipv4 src=192.0.2.9 dst=198.51.100.1 / tcp dport=80 seq=7").expect("spec");
    println!();
    println!("per packet (BPF_PROG_TEST_RUN, median of {rounds} x {repeat})");
    println!("size      kind  fill wall (s)  fill cpu (s)  miss ns  hit ns  empty ns  miss-empty  hit-empty");
    for size in [10_000usize, 1_000_000] {
        let trie = load(trie_rules);
        let elements = prefixes(size, 0x9e37_79b9_7f4a_7c15);
        let ((), wall, cpu) = timed(|| fill(&trie, DynamicKind::Prefixes, &in_trie_order(keys_of(&elements))));
        let hit_source = std::net::Ipv4Addr::from(elements[0].low as u32);
        let hit = spec_bytes(&format!("ipv4 src={hit_source} dst=198.51.100.1 / tcp dport=80")).expect("spec");
        report(size, "trie", (wall, cpu), [&trie, &empty], [&miss, &hit], repeat, rounds);
        drop(trie);

        let hash = load(hash_rules);
        let values: Vec<SetKey> = (0..size as u128)
            .map(|index| DynamicElement { kind: ValueKind::Uint(128), low: 1000 + index, high: 1000 + index })
            .map(|element| element_key(DynamicKind::Values, &element))
            .collect();
        let ((), wall, cpu) = timed(|| fill(&hash, DynamicKind::Values, &in_trie_order(values)));
        let hit = spec_bytes("ipv4 src=192.0.2.9 dst=198.51.100.1 / tcp dport=80 seq=1000").expect("spec");
        report(size, "hash", (wall, cpu), [&hash, &empty], [&miss, &hit], repeat, rounds);
    }
    static_sets(&empty, &miss, repeat, rounds);
    clang_reference(&empty, repeat, rounds);
}

/// `acl_maps.c` with its source trie made `entries` large, and `empty.c` (`return
/// XDP_PASS`), from `../shared/ref/` (`PFC_BENCH_REF_DIR` names another directory),
/// compiled with clang -O2 as the perf bench compiles its references. `Err`: why not.
fn clang_programs(entries: usize) -> Result<(KernelProgram, KernelProgram), String> {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/ref");
    let dir = std::path::PathBuf::from(std::env::var("PFC_BENCH_REF_DIR").unwrap_or_else(|_| default.to_string()));
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))
    };
    let (source, empty) = (read("acl_maps.c")?, read("empty.c")?);
    let trie = "__uint(max_entries, 20000); __uint(map_flags, BPF_F_NO_PREALLOC); } src_lpm";
    if !source.contains(trie) {
        return Err("acl_maps.c: no src_lpm trie of 20000 entries to resize".to_string());
    }
    let acl = source.replace(trie, &trie.replace("20000", &entries.to_string()));
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let out = std::env::temp_dir().join(format!("pfc-bench-clang-{}", std::process::id()));
    std::fs::create_dir_all(&out).map_err(|error| error.to_string())?;
    let compile = |name: &str, text: &str| -> Result<KernelProgram, String> {
        let (c, o) = (out.join(format!("{name}.c")), out.join(format!("{name}.o")));
        std::fs::write(&c, text).map_err(|error| error.to_string())?;
        let output = std::process::Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", &include, "-c"])
            .arg(&c)
            .arg("-o")
            .arg(&o)
            .output()
            .map_err(|error| format!("cannot run clang ({error}); apt-get install clang"))?;
        if !output.status.success() {
            return Err(format!("clang {name}.c: {}", String::from_utf8_lossy(&output.stderr)));
        }
        let bytes = std::fs::read(&o).map_err(|error| error.to_string())?;
        KernelProgram::load(&bytes).map_err(|error| format!("{name}.o: {error}"))
    };
    let programs = compile("acl_maps", &acl).and_then(|acl| Ok((acl, compile("empty", &empty)?)));
    let _ = std::fs::remove_dir_all(&out);
    programs
}

/// 5. **The clang reference** (see the module doc).
fn clang_reference(empty: &KernelProgram, repeat: u32, rounds: u32) {
    println!();
    let (acl, pass) = match clang_programs(2_000_000) {
        Ok(programs) => programs,
        Err(reason) => {
            println!("clang reference skipped: {reason}");
            return;
        }
    };
    let trie_rules = "default pass\nset s: ip dynamic size 1000000\nrule r: drop if ip.src in s\n";
    println!("clang reference (acl_maps.c, clang -O2): UDP packets, ns per packet (BPF_PROG_TEST_RUN, median of {rounds} x {repeat}, all programs in each round)");
    println!("size      program                        miss ns  hit ns  miss-floor  hit-floor");
    let miss = spec_bytes("ipv4 src=192.0.2.9 dst=198.51.100.1 / udp dport=80").expect("spec");
    for size in [10_000usize, 1_000_000] {
        let mixed = prefixes(size, 0x9e37_79b9_7f4a_7c15);
        let v4: Vec<DynamicElement> = mixed.iter().filter(|e| e.kind == ValueKind::Ipv4).cloned().collect();
        let keys = |elements: &[DynamicElement]| -> Vec<SetKey> {
            in_trie_order(elements.iter().map(|e| element_key(DynamicKind::Prefixes, e)).collect::<Vec<_>>())
        };
        let (pfc_v4, pfc_mixed) = (load(trie_rules), load(trie_rules));
        fill(&pfc_v4, DynamicKind::Prefixes, &keys(&v4));
        fill(&pfc_mixed, DynamicKind::Prefixes, &keys(&mixed));
        // The reference's key: prefix length, then the address as the packet holds it.
        let mut acl_keys: Vec<[u8; 8]> = v4
            .iter()
            .map(|e| {
                let length = 32 - (e.high - e.low + 1).trailing_zeros();
                let mut key = [0u8; 8];
                key[..4].copy_from_slice(&length.to_le_bytes());
                key[4..].copy_from_slice(&(e.low as u32).to_be_bytes());
                key
            })
            .collect();
        acl_keys.sort_unstable_by_key(|key| (u32::from_be_bytes([key[4], key[5], key[6], key[7]]), key[0]));
        acl_keys.dedup();
        let acl_map = acl.map_id(acl.object().map_index("src_lpm").expect("src_lpm")).expect("map id");
        let flat_keys: Vec<u8> = acl_keys.iter().flatten().copied().collect();
        LiveSys.write_entries(acl_map, &flat_keys, &1u32.to_le_bytes(), Existing::Overwrite).expect("fill acl");
        let hit_source = std::net::Ipv4Addr::from(v4[0].low as u32);
        let hit = spec_bytes(&format!("ipv4 src={hit_source} dst=198.51.100.1 / udp dport=80")).expect("spec");
        let programs: [(&str, &KernelProgram); 5] = [
            ("pfc trie, IPv4 prefixes", &pfc_v4),
            ("pfc trie, whole mixed set", &pfc_mixed),
            ("pfc empty (default pass)", empty),
            ("clang acl_maps.c", &acl),
            ("clang empty.c", &pass),
        ];
        // Every program on both packets once per round, in the same rounds; every other
        // round in the opposite order.
        let mut samples = vec![[Vec::new(), Vec::new()]; programs.len()];
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..programs.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for index in order {
                for (packet, runs) in [&miss, &hit].into_iter().zip(samples[index].iter_mut()) {
                    runs.push(programs[index].1.bench(packet, repeat).expect("test run"));
                }
            }
        }
        let median = |runs: &[u64]| {
            let mut runs = runs.to_vec();
            runs.sort_unstable();
            runs[runs.len() / 2]
        };
        let medians: Vec<[u64; 2]> = samples.iter().map(|[m, h]| [median(m), median(h)]).collect();
        for (index, (name, _)) in programs.iter().enumerate() {
            let floor = if index < 3 { medians[2] } else { medians[4] };
            let [miss_ns, hit_ns] = medians[index];
            println!(
                "{:<9} {name:<30} {miss_ns:<8} {hit_ns:<7} {:<11} {}",
                format!("{}", if index == 1 { size } else { v4.len() }),
                miss_ns as i64 - floor[0] as i64,
                hit_ns as i64 - floor[1] as i64
            );
        }
        let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        println!(
            "          pfc / clang, same IPv4 prefixes: miss {:.2}x, hit {:.2}x (whole program); above each floor: miss {:.2}x, hit {:.2}x",
            ratio(medians[0][0], medians[3][0]),
            ratio(medians[0][1], medians[3][1]),
            ratio(medians[0][0].saturating_sub(medians[2][0]), medians[3][0].saturating_sub(medians[4][0])),
            ratio(medians[0][1].saturating_sub(medians[2][1]), medians[3][1].saturating_sub(medians[4][1])),
        );
        // Each round's own ratio above the floors: how far the rounds spread.
        for (packet, name) in [(0, "miss"), (1, "hit")] {
            let above = |program: usize, floor: usize, round: usize| {
                samples[program][packet][round].saturating_sub(samples[floor][packet][round])
            };
            let mut ratios: Vec<f64> =
                (0..rounds as usize).map(|round| ratio(above(0, 2, round), above(3, 4, round))).collect();
            ratios.sort_by(f64::total_cmp);
            let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
            println!(
                "          per round, {name}: pfc / clang above each floor median {:.2}x, quartiles {:.2}x-{:.2}x, extremes {:.2}x-{:.2}x ({} rounds)",
                at(0.5),
                at(0.25),
                at(0.75),
                at(0.0),
                at(1.0),
                ratios.len()
            );
        }
        let size = |program: &KernelProgram| program.xlated_insn_count().map_or("?".to_string(), |n| n.to_string());
        println!(
            "          xlated instructions: pfc trie {}, pfc empty {}, clang acl_maps.c {}, clang empty.c {}",
            size(&pfc_v4),
            size(empty),
            size(&acl),
            size(&pass)
        );
    }
}

/// 3. **A static set: decision tree or map.** `drop if ip.src in SET` for a static set of
///    IPv4 prefixes compiled as a tree (the default while it fits) and forced into an LPM
///    trie (`SetMaps`), per packet, next to the empty program; and a port set of single
///    values as a tree or a hash. What `ir::maps::MAP_ABOVE` rests on.
fn static_sets(empty: &KernelProgram, miss: &[u8], repeat: u32, rounds: u32) {
    use pfc_compiler::compile::{compile_with, SetMaps};
    let trees = SetMaps { above: usize::MAX, fallback_from: usize::MAX };
    let maps = SetMaps { above: 0, fallback_from: 0 };
    let load_with = |text: &str, set_maps: SetMaps| {
        let (compiled, diagnostics) = compile_with(text, Default::default(), set_maps);
        let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let insns = compiled.code.insns.len();
        let program = KernelProgram::load(&compiled.object).expect("the kernel loads the program");
        for set in compiled.filter.dynamic_sets.iter().filter(|set| set.fixed) {
            let keys: Vec<SetKey> = set.elements.iter().map(|element| element_key(set.kind, element)).collect();
            fill(&program, set.kind, &keys);
        }
        (program, insns)
    };
    println!("static set        size    form  insns   miss ns  hit ns  empty ns  miss-empty  hit-empty");
    for size in [1_000usize, 4_000, 12_000] {
        let v4: Vec<DynamicElement> =
            prefixes(size * 4 / 3, 0x9e37_79b9_7f4a_7c15).into_iter().filter(|e| e.kind == ValueKind::Ipv4).collect();
        let listed: Vec<String> = v4.iter().map(pfc_compiler::program::dynamic::element_text).collect();
        let text = format!("default pass\nset s: ipv4 = {{ {} }}\nrule r: drop if ip.src in s\n", listed.join(", "));
        let hit_source = std::net::Ipv4Addr::from(v4[v4.len() / 2].low as u32);
        let hit = spec_bytes(&format!("ipv4 src={hit_source} dst=198.51.100.1 / tcp dport=80")).expect("spec");
        for (form, set_maps) in [("tree", trees), ("trie", maps)] {
            let (program, insns) = load_with(&text, set_maps);
            let (miss_ns, hit_ns, empty_ns) = (
                ns(&program, miss, repeat, rounds),
                ns(&program, &hit, repeat, rounds),
                ns(empty, miss, repeat, rounds),
            );
            println!(
                "ipv4 prefixes     {:<7} {form:<5} {insns:<7} {miss_ns:<8} {hit_ns:<7} {empty_ns:<9} {:<11} {}",
                v4.len(),
                miss_ns as i64 - empty_ns as i64,
                hit_ns as i64 - empty_ns as i64
            );
        }
    }
    for size in [1_000u32, 12_000] {
        let ports: Vec<String> = (0..size).map(|index| (2 * index + 1).to_string()).collect();
        let text = format!("default pass\nset s: u32 = {{ {} }}\nrule r: drop if tcp.seq in s\n", ports.join(", "));
        let hit =
            spec_bytes(&format!("ipv4 src=192.0.2.9 dst=198.51.100.1 / tcp dport=80 seq={}", size | 1)).expect("spec");
        let miss = spec_bytes("ipv4 src=192.0.2.9 dst=198.51.100.1 / tcp dport=80 seq=8").expect("spec");
        for (form, set_maps) in [("tree", trees), ("hash", maps)] {
            let (program, insns) = load_with(&text, set_maps);
            let (miss_ns, hit_ns, empty_ns) = (
                ns(&program, &miss, repeat, rounds),
                ns(&program, &hit, repeat, rounds),
                ns(empty, &miss, repeat, rounds),
            );
            println!(
                "u32 values        {size:<7} {form:<5} {insns:<7} {miss_ns:<8} {hit_ns:<7} {empty_ns:<9} {:<11} {}",
                miss_ns as i64 - empty_ns as i64,
                hit_ns as i64 - empty_ns as i64
            );
        }
    }
}

/// `pfc set replace`'s steps on a trie holding `old`, with `new` (pfc's path, step by
/// step: `Filters::change_set` itself needs an attached filter).
fn replace_figures(rules: &str, old: &[SetKey], new: &[SetKey]) {
    let kind = DynamicKind::Prefixes;
    let program = load(rules);
    let old = in_trie_order(old);
    fill(&program, kind, &old);
    let generations = map_id(&program, SET_GENERATION_MAP_NAME);
    println!();
    let new = in_trie_order(new);
    println!("replace: {} prefixes with {} others, as pfc set replace does", old.len(), new.len());
    let current: Vec<u32> = Family::ALL
        .into_iter()
        .filter_map(|family| program.object().map_index(&Part { family, generation: 0 }.map_name(0)))
        .map(|index| program.map_id(index).expect("map id"))
        .collect();
    let (read, read_wall, read_cpu) =
        timed(|| current.iter().map(|map| (*map, LiveSys.read_keys(*map).expect("read"))).collect::<Vec<_>>());
    let (written, write_wall, write_cpu) = timed(|| {
        let next = by_map(&program, kind, &in_trie_order(new.clone()), 1);
        next.iter()
            .map(|(map, bytes)| LiveSys.write_entries(*map, bytes, &VALUE, Existing::Overwrite).expect("write"))
            .sum::<usize>()
    });
    let ((), flip_wall, flip_cpu) = timed(|| {
        let state = state_value(1, written as u32, 0);
        LiveSys.write_entries(generations, &0u32.to_le_bytes(), &state, Existing::Overwrite).expect("flip");
    });
    let (deleted, delete_wall, delete_cpu) =
        timed(|| read.iter().map(|(map, keys)| LiveSys.delete_keys(*map, keys).expect("delete")).sum::<usize>());
    assert_eq!(deleted, old.len(), "every old key read and deleted");
    let steps = [
        ("read keys", read_wall, read_cpu),
        ("write new generation", write_wall, write_cpu),
        ("flip", flip_wall, flip_cpu),
        ("delete old generation", delete_wall, delete_cpu),
    ];
    print_steps("one map after another (pfc before 0a182c1):", &steps);

    // The same, as pfc does it now: the next generation's maps written while the current
    // generation's are read, one thread a map, then the flip, then both old maps deleted
    // on two threads. Back to generation 0 (the new keys replaced by the old).
    let (read, both_wall, both_cpu) = timed(|| {
        let next = by_map(&program, kind, &in_trie_order(old.clone()), 0);
        let mut jobs: Vec<MapJob<'_>> = next
            .iter()
            .map(|(map, bytes)| MapJob::Write {
                map_id: *map,
                keys: bytes,
                value: &VALUE,
                existing: Existing::Overwrite,
            })
            .collect();
        let written = next.iter().map(|(map, _)| *map).collect::<Vec<_>>();
        let current: Vec<u32> = Family::ALL
            .into_iter()
            .filter_map(|family| program.object().map_index(&Part { family, generation: 1 }.map_name(0)))
            .map(|index| program.map_id(index).expect("map id"))
            .collect();
        jobs.extend(current.iter().map(|map| MapJob::Read { map_id: *map }));
        let done = LiveSys.map_jobs(&jobs);
        assert_eq!(written.len() + current.len(), done.len());
        let read: Vec<(u32, Vec<u8>)> = current
            .iter()
            .zip(done.into_iter().skip(written.len()))
            .map(|(map, keys)| (*map, keys.expect("read").into_keys()))
            .collect();
        read
    });
    let ((), flip_wall, flip_cpu) = timed(|| {
        let state = state_value(0, old.len() as u32, 0);
        LiveSys.write_entries(generations, &0u32.to_le_bytes(), &state, Existing::Overwrite).expect("flip");
    });
    let (deleted, delete_wall, delete_cpu) = timed(|| {
        let jobs: Vec<MapJob<'_>> = read.iter().map(|(map, keys)| MapJob::Delete { map_id: *map, keys }).collect();
        LiveSys.map_jobs(&jobs).into_iter().map(|done| done.expect("delete").count()).sum::<usize>()
    });
    assert_eq!(deleted, new.len(), "every new key read and deleted");
    let steps = [
        ("write next + read cur", both_wall, both_cpu),
        ("flip", flip_wall, flip_cpu),
        ("delete old generation", delete_wall, delete_cpu),
    ];
    print_steps("a thread a map, writes beside reads (pfc now):", &steps);
}

/// One line a step, then the totals.
fn print_steps(title: &str, steps: &[(&str, f64, f64)]) {
    println!("{title}");
    println!("step                    wall (s)  cpu (s)");
    for (step, wall, cpu) in steps {
        println!("{step:<23} {wall:<9.3} {cpu:.3}");
    }
    let (wall, cpu) = steps.iter().fold((0.0, 0.0), |(w, c), (_, wall, cpu)| (w + wall, c + cpu));
    println!("{:<23} {wall:<9.3} {cpu:.3}", "total");
}

fn report(
    size: usize,
    kind: &str,
    (wall, cpu): (f64, f64),
    [program, empty]: [&KernelProgram; 2],
    [miss, hit]: [&Vec<u8>; 2],
    repeat: u32,
    rounds: u32,
) {
    let (miss_ns, hit_ns, empty_ns) =
        (ns(program, miss, repeat, rounds), ns(program, hit, repeat, rounds), ns(empty, miss, repeat, rounds));
    println!(
        "{size:<9} {kind:<5} {wall:<14.3} {cpu:<13.3} {miss_ns:<8} {hit_ns:<7} {empty_ns:<9} {:<11} {}",
        miss_ns as i64 - empty_ns as i64,
        hit_ns as i64 - empty_ns as i64
    );
}
