//! `cargo bench -p pfc-runtime --bench classbench`: per-packet cost of ClassBench-shaped
//! rule sets (`pfc_compiler::classbench`) as the rule count grows, next to the empty
//! program measured in the same rounds.
//!
//! For every shape (acl, fw, ipc, block, mixed) and size (100, 1k, 10k by default) it
//! prints: compile time (the whole `compile()`, check included, median of 3), instruction
//! slots, the kernel verifier's processed instructions and verification time, the load
//! time (wall clock, and the CPU time of the load, which the machine's other load does not
//! inflate), then ns/packet through `BPF_PROG_TEST_RUN` over the trace: the mean over packets
//! that hit a rule, the worst packet, the mean over packets that match no rule, the floor
//! (the empty XDP program, same rounds) and the ratios the classifier targets are stated
//! in. It also checks every trace packet's kernel verdict against the interpreter, and
//! names the code form `compile()` chose (classified, with how many diagrams, or not).
//! Under each row: the instructions each trace packet executes (`paths.rs`, a counting
//! interpreter of the emitted code; no kernel needed), as a mean per packet split into
//! the parse prologue, the diagrams' nodes, the leaves and the tail, with the jumps taken
//! in each (per packet, ns follow taken jumps more than instructions: each ends the CPU's
//! fetch block), and per diagram.
//!
//! Knobs: `PFC_CLASSBENCH_SHAPES=acl,fw` and `PFC_CLASSBENCH_SIZES=100,10000,100000`
//! (which sets), `PFC_CLASSBENCH_PACKETS` (trace length, default 100),
//! `PFC_CLASSBENCH_ROUNDS` (default 3), `PFC_BENCH_REPEAT` (most test_run repeats per
//! packet, default 100000; slow programs get fewer so one packet takes ~20 ms),
//! `PFC_CLASSBENCH_COUNTERS=off` (compile as `pfc compile --no-counters` does),
//! `PFC_CLASSBENCH_PER_PACKET=1` (a line per trace packet: ns, floor, instructions, taken
//! jumps), `PFC_CLASSBENCH_DUMP=DIR` (write each set's rules and `--emit asm` listing there),
//! `PFC_CLASSBENCH_FORMS=auto,inline,table` (one row per form and set: `auto` is what
//! `compile()` picks, `inline` forces the inline classifier, `table` the table-driven one;
//! default `auto`), `PFC_CLASSBENCH_EXAMPLES=DIR` (instead of the sets: instructions and
//! taken jumps of DIR's XDP rule files on a few common frames, `examples.rs`).
//! Nothing here asserts on time (see `docs/performance.md`).

mod examples;
#[allow(dead_code)]
#[path = "../perf/kernel_side.rs"]
mod kernel_side;
mod paths;

use std::time::{Duration, Instant};

use pfc_compiler::classbench::{self, Shape};
use pfc_compiler::codegen::{Form, Options};
use pfc_runtime::kernel::{privileges, KernelProgram};

/// The trace's seed: fixed, so runs compare.
const SEED: u64 = 0xc1a5_5be7;

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().map(|text| text.split(',').map(|item| item.trim().to_string()).collect())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn main() {
    if let Ok(dir) = std::env::var("PFC_CLASSBENCH_EXAMPLES") {
        examples::report(&dir);
        return;
    }
    let shapes: Vec<Shape> = match env_list("PFC_CLASSBENCH_SHAPES") {
        Some(names) => names.iter().filter_map(|name| Shape::from_name(name)).collect(),
        None => Shape::ALL.to_vec(),
    };
    let sizes: Vec<usize> = match env_list("PFC_CLASSBENCH_SIZES") {
        Some(sizes) => sizes.iter().filter_map(|size| size.parse().ok()).collect(),
        None => vec![100, 1_000, 10_000],
    };
    let packets = env_number("PFC_CLASSBENCH_PACKETS", 100) as usize;
    let rounds = env_number("PFC_CLASSBENCH_ROUNDS", 3).max(1) as usize;
    let repeat = env_number("PFC_BENCH_REPEAT", 100_000).max(1_000) as u32;
    let options = Options { counters: std::env::var("PFC_CLASSBENCH_COUNTERS").map_or(true, |value| value != "off") };
    let forms: Vec<Option<Form>> = env_list("PFC_CLASSBENCH_FORMS")
        .unwrap_or_else(|| vec!["auto".to_string()])
        .iter()
        .filter_map(|name| match name.as_str() {
            "auto" => Some(None),
            "inline" => Some(Some(Form::Classified)),
            "table" => Some(Some(Form::Table)),
            _ => None,
        })
        .collect();
    let kernel = match privileges() {
        Ok(()) => true,
        Err(reason) => {
            println!("kernel figures skipped: {reason}");
            false
        }
    };
    let floor = kernel.then(|| KernelProgram::load(&kernel_side::empty_object()).expect("the empty program loads"));
    let counters = if options.counters { "with counters" } else { "without counters" };
    println!(
        "== ClassBench-shaped sets {counters}: {packets} trace packets, {rounds} rounds, repeat up to {repeat} =="
    );
    println!("ns: mean over packets that hit a rule / worst packet / mean over packets matching no rule;");
    println!("floor: the empty XDP program on the same packets in the same rounds; growth: ns above floor / that at the first size");
    println!(
        "{:<6} {:>6} {:>8} {:>7} {:>10} {:>9} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6}",
        "shape",
        "rules",
        "compile",
        "slots",
        "processed",
        "verify ms",
        "load ms",
        "load cpu",
        "floor",
        "mean",
        "worst",
        "nomatch",
        "x floor",
        "nm/mean",
        "growth",
        "wrong"
    );
    for shape in shapes {
        for &form in &forms {
            let mut first_above: Option<f64> = None;
            for &rules in &sizes {
                let row = measure(shape, rules, packets, rounds, repeat, (options, form), floor.as_ref());
                let above = row.mean - row.floor;
                let growth = match first_above {
                    Some(first) if first > 0.0 => format!("{:.2}", above / first),
                    Some(_) => "-".to_string(),
                    None => {
                        first_above = Some(above);
                        "1.00".to_string()
                    }
                };
                println!(
                "{:<6} {:>6} {:>8.1} {:>7} {:>10} {:>9} {:>8} {:>8} {:>6.1} {:>7.1} {:>7.1} {:>7.1} {:>7.2} {:>8.2} {:>7} {:>6}  {}; {}",
                shape.name(),
                rules,
                row.compile_ms,
                row.slots,
                row.processed,
                row.verify_ms,
                row.load_ms,
                row.load_cpu_ms,
                row.floor,
                row.mean,
                row.worst,
                row.no_match,
                row.mean / row.floor,
                row.no_match / row.mean,
                growth,
                row.wrong,
                row.form,
                row.note
            );
                println!("         insns/pkt hit: {}", row.path_hit.describe());
                println!("         insns/pkt no-match: {}", row.path_miss.describe());
                println!(
                    "         per diagram, insns (taken jumps), hit: {}; no-match: {}",
                    row.path_hit.per_diagram(),
                    row.path_miss.per_diagram()
                );
            }
        }
    }
}

/// One table row.
#[derive(Default)]
struct Row {
    compile_ms: f64,
    slots: usize,
    processed: String,
    verify_ms: String,
    load_ms: String,
    load_cpu_ms: String,
    floor: f64,
    mean: f64,
    worst: f64,
    no_match: f64,
    /// Trace packets whose kernel verdict differs from the interpreter's.
    wrong: usize,
    /// ... and whose verdict in the counting interpreter (`paths.rs`) does.
    model_wrong: usize,
    /// The code form `compile()` chose (the classifier's listing comment names it).
    form: String,
    note: String,
    /// Instructions executed by the packets that hit a rule.
    path_hit: paths::Sum,
    /// ... and by those that match no rule.
    path_miss: paths::Sum,
    /// Each trace packet's path, in trace order.
    per_packet_paths: Vec<paths::Path>,
}

/// `classified (N diagrams ...)` from the listing's classifier comment, else the fallback.
fn chosen_form(code: &pfc_compiler::bpf::Program) -> String {
    code.comments
        .iter()
        .find_map(|comment| {
            let text = &comment.text;
            let inline = text.strip_prefix("classifier: ").map(|rest| format!("classified: {rest}"));
            inline.or_else(|| text.strip_prefix("classifier table: ").map(|rest| format!("table: {rest}")))
        })
        .unwrap_or_else(|| "not classified (dispatched or branch-free)".to_string())
}

fn measure(
    shape: Shape,
    rules: usize,
    packets: usize,
    rounds: usize,
    repeat: u32,
    (options, form): (Options, Option<Form>),
    floor: Option<&KernelProgram>,
) -> Row {
    let generated = classbench::generate(shape, rules, packets, SEED);
    let mut row = Row::default();
    let mut times = Vec::new();
    let mut compiled = None;
    for _ in 0..3 {
        let start = Instant::now();
        let (result, diagnostics) = pfc_compiler::compile::compile_form(&generated.text, options, form);
        times.push(start.elapsed());
        if result.is_none() {
            let errors: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
            row.note = format!("refused by pfc: {}", errors.join("; "));
            return row;
        }
        compiled = result;
    }
    times.sort();
    row.compile_ms = times[1].as_secs_f64() * 1e3;
    let Some(compiled) = compiled else { return row };
    row.slots = compiled.code.encode().len() / 8;
    row.form = chosen_form(&compiled.code);
    if let Ok(dir) = std::env::var("PFC_CLASSBENCH_DUMP") {
        let stem = std::path::Path::new(&dir).join(format!("{}-{rules}", shape.name()));
        let written = std::fs::write(stem.with_extension("pf"), &generated.text)
            .and_then(|()| std::fs::write(stem.with_extension("asm"), compiled.code.disassemble()));
        if let Err(error) = written {
            println!("cannot write {}: {error}", stem.display());
        }
    }
    let parts = paths::Parts::new(&compiled.code);
    let tables = match paths::Tables::of(&compiled.object) {
        Ok(tables) => tables,
        Err(error) => {
            row.note = format!("counting interpreter: {error}");
            return row;
        }
    };
    for packet in &generated.trace {
        let expected = match packet.rule {
            Some(index) => compiled.program.rules[index].verdict,
            None => compiled.program.default,
        };
        match paths::run(&compiled.code, &parts, &tables, &packet.bytes) {
            Ok(path) => {
                if path.verdict != compiled.program.hook.return_code(expected) as u64 {
                    row.model_wrong += 1;
                }
                let sum = if packet.rule.is_some() { &mut row.path_hit } else { &mut row.path_miss };
                sum.add(&path);
                row.per_packet_paths.push(path);
            }
            Err(error) => {
                row.note = format!("counting interpreter: {error}");
                return row;
            }
        }
    }
    let Some(floor_program) = floor else { return row };
    match kernel_side::verifier_stats(&compiled.object) {
        Ok(stats) => {
            row.processed = stats.processed.map_or("?".to_string(), |n| n.to_string());
            row.verify_ms = stats.verification.map_or("?".to_string(), |d| format!("{:.1}", ms(d)));
            row.load_ms = format!("{:.1}", ms(stats.load));
            row.load_cpu_ms = format!("{:.1}", ms(stats.load_cpu));
            if let Some(refusal) = stats.refusal {
                row.note = format!("REFUSED by the kernel: {refusal}");
                return row;
            }
        }
        Err(error) => row.note = error,
    }
    let program = match KernelProgram::load(&compiled.object) {
        Ok(program) => program,
        Err(error) => {
            row.note = format!("REFUSED by the kernel: {error}");
            return row;
        }
    };
    let parsed = pfc_compiler::object::BpfObject::parse(&compiled.object).expect("pfc's object parses");
    if let Err(error) = pfc_runtime::executor::fill_kernel_tables(&program, &parsed, &compiled.object) {
        row.note = format!("classifier tables not written: {error}");
        return row;
    }
    let hook = compiled.program.hook;
    for packet in &generated.trace {
        let expected = match packet.rule {
            Some(index) => compiled.program.rules[index].verdict,
            None => compiled.program.default,
        };
        let code = hook.return_code(expected) as u32;
        if program.test_run(&packet.bytes).ok() != Some(code) {
            row.wrong += 1;
        }
    }
    // Per packet: the median of the rounds, for the program and for the floor.
    let mut samples = vec![Vec::new(); generated.trace.len()];
    let mut floor_samples = vec![Vec::new(); generated.trace.len()];
    let repeats: Vec<u32> = generated.trace.iter().map(|packet| repeat_for(&program, &packet.bytes, repeat)).collect();
    for _ in 0..rounds {
        for (index, packet) in generated.trace.iter().enumerate() {
            if let Ok(ns) = floor_program.bench(&packet.bytes, repeats[index].max(10_000)) {
                floor_samples[index].push(ns as f64);
            }
            if let Ok(ns) = program.bench(&packet.bytes, repeats[index]) {
                samples[index].push(ns as f64);
            }
        }
    }
    let per_packet: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    let floors: Vec<f64> = floor_samples.iter_mut().map(|s| median(s)).collect();
    let hits: Vec<f64> =
        generated.trace.iter().zip(&per_packet).filter(|(p, _)| p.rule.is_some()).map(|(_, ns)| *ns).collect();
    let misses: Vec<f64> =
        generated.trace.iter().zip(&per_packet).filter(|(p, _)| p.rule.is_none()).map(|(_, ns)| *ns).collect();
    row.floor = mean(&floors);
    row.mean = mean(&hits);
    row.no_match = mean(&misses);
    row.worst = per_packet.iter().copied().fold(0.0, f64::max);
    if std::env::var("PFC_CLASSBENCH_PER_PACKET").is_ok() {
        for (index, ns) in per_packet.iter().enumerate() {
            let path = &row.per_packet_paths[index];
            println!(
                "packet {} {rules} {index} ns {ns:.2} floor {:.2} insns {} taken {} hit {}",
                shape.name(),
                floors[index],
                path.total,
                path.taken,
                generated.trace[index].rule.is_some()
            );
        }
    }
    row.note = format!("{} hit, {} miss", hits.len(), misses.len());
    if row.model_wrong > 0 {
        row.note.push_str(&format!("; the counting interpreter got {} verdicts wrong", row.model_wrong));
    }
    row
}

/// Enough repeats for ~20 ms per packet, at most `most`.
fn repeat_for(program: &KernelProgram, packet: &[u8], most: u32) -> u32 {
    let probe = program.bench(packet, 1_000).unwrap_or(1).max(1);
    (20_000_000 / probe).clamp(1_000, u64::from(most)) as u32
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}
