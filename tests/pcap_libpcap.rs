//! Differential test against libpcap: seeded random pcap expressions in, zero
//! disagreements between libpcap (`pcap_compile` + `pcap_offline_filter`, DLT_EN10MB)
//! and pfc's interpreter, rbpf and (with privileges, for the first expressions) the
//! kernel out, over the seeded packet corpus.
//!
//! Packets on which libpcap's optimized and unoptimized programs disagree are not
//! judged (docs/pcap.md, *Differences from tcpdump*: the optimizer changes answers on
//! truncated frames); the summary says how many. Expressions libpcap refuses must be
//! refused by pfc too, except the refusals of libpcap's optimizer alone (the
//! unoptimized compile accepts): pfc models the unoptimized program, so it accepts
//! those, and every packet is judged against the unoptimized program. For "expression
//! rejects all packets" (the optimizer folded the program to `ret #0`, e.g. `portrange
//! 1-2 and icmp`) the optimized verdict counts as false for the skip rule; after
//! constant folding errors ("shift by more than 31 bits" for `ip[0] >> 31 + 1`,
//! "division by zero" for `ip[0] / (ip[1] * 0)`, raised only when the code is
//! reachable) no packet is skipped. The test also prints pfc's eBPF instruction count
//! next to libpcap's optimized cBPF count.

#[path = "pcap_libpcap/frames.rs"]
mod frames;
#[path = "pcap_libpcap/generator.rs"]
mod generator;
#[path = "pcap_libpcap/grammar.rs"]
mod grammar;
mod support;

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Mutex;
use std::time::Instant;

use generator::{byte_bitwise_expression, expression, geneve_expression, protochain_expression};
use pfc_compiler::codegen::Options;
use pfc_compiler::diagnostic::Span;
use pfc_compiler::program::Verdict;
use pfc_runtime::executor::{Backend, Executor, Ran};
use pfc_runtime::kernel;
use pfc_runtime::BpfObject;
use support::corpus::corpus;
use support::{hex, parsed_summary, Rng};

#[repr(C)]
struct BpfInsn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct BpfProgram {
    len: u32,
    insns: *mut BpfInsn,
}

#[repr(C)]
struct PktHdr {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

#[link(name = "pcap")]
extern "C" {
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut c_void;
    fn pcap_compile(p: *mut c_void, fp: *mut BpfProgram, text: *const c_char, optimize: c_int, mask: u32) -> c_int;
    fn pcap_offline_filter(fp: *const BpfProgram, h: *const PktHdr, pkt: *const u8) -> c_int;
    fn pcap_freecode(fp: *mut BpfProgram);
    fn pcap_geterr(p: *mut c_void) -> *const c_char;
    fn pcap_close(p: *mut c_void);
}

/// DLT_EN10MB.
const ETHERNET: c_int = 1;
/// Expressions per run (each against every corpus packet).
const EXPRESSIONS: usize = 3000;
/// Expressions also run through the kernel when privileged.
const KERNEL_EXPRESSIONS: usize = 300;
/// Expressions with `protochain` per run, after the others (their own stream, so the
/// others and their size report stay the same), and how many of them run in the kernel.
const PROTOCHAIN_EXPRESSIONS: usize = 200;
const PROTOCHAIN_KERNEL_EXPRESSIONS: usize = 60;

/// libpcap's program for an expression.
struct Libpcap {
    program: BpfProgram,
}

/// libpcap's optimizer's error for a program it folded to `ret #0`.
const REJECTS_ALL: &str = "expression rejects all packets";

/// libpcap's optimized compile of an expression its unoptimized compile accepts.
enum Optimized {
    Program(Libpcap),
    /// "expression rejects all packets": `ret #0`.
    RejectsAll,
    /// Another optimizer error (constant folding): no optimized verdict.
    Refused,
}

impl Optimized {
    fn matches(&self, frame: &[u8]) -> Option<bool> {
        match self {
            Optimized::Program(program) => Some(program.matches(frame)),
            Optimized::RejectsAll => Some(false),
            Optimized::Refused => None,
        }
    }
}

static COMPILE: Mutex<()> = Mutex::new(());

impl Libpcap {
    /// The program, or libpcap's error message.
    fn compile(expr: &str, optimize: bool) -> Result<Libpcap, String> {
        let _guard = COMPILE.lock().unwrap_or_else(|poison| poison.into_inner());
        let text = CString::new(expr).map_err(|e| e.to_string())?;
        // SAFETY: plain libpcap calls on a handle we own; the program is freed in Drop.
        unsafe {
            let handle = pcap_open_dead(ETHERNET, 262144);
            let mut program = BpfProgram { len: 0, insns: std::ptr::null_mut() };
            let status = pcap_compile(handle, &mut program, text.as_ptr(), c_int::from(optimize), 0xffff_ff00);
            let error = std::ffi::CStr::from_ptr(pcap_geterr(handle)).to_string_lossy().into_owned();
            pcap_close(handle);
            if status == 0 {
                Ok(Libpcap { program })
            } else {
                Err(error)
            }
        }
    }

    fn matches(&self, frame: &[u8]) -> bool {
        let header =
            PktHdr { ts: libc::timeval { tv_sec: 0, tv_usec: 0 }, caplen: frame.len() as u32, len: frame.len() as u32 };
        // SAFETY: the program is valid until Drop; the frame outlives the call.
        unsafe { pcap_offline_filter(&self.program, &header, frame.as_ptr()) != 0 }
    }
}

impl Drop for Libpcap {
    fn drop(&mut self) {
        // SAFETY: the program came from pcap_compile.
        unsafe { pcap_freecode(&mut self.program) }
    }
}

// ---- the check -----------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    expressions: usize,
    refused_by_both: usize,
    rejects_all: usize,
    optimizer_refused: usize,
    judged: usize,
    skipped: usize,
    vm_runs: usize,
    kernel_runs: usize,
    pfc_insns: usize,
    /// The part of `pfc_insns` that is the atoms' own code (each program minus the
    /// program of `pcap ""`, whose atom emits no code).
    atom_insns: usize,
    /// Programs compiled by pfc (each carries the fixed overhead once).
    programs: usize,
    libpcap_insns: usize,
    /// The same three for expressions with `protochain` (libpcap's loop; pfc's was
    /// unrolled until 2026-12-03, so they are still counted apart).
    chain_atom_insns: usize,
    chain_programs: usize,
    chain_libpcap_insns: usize,
    worst: Vec<(f64, String, usize, usize)>,
}

fn rule_file(expr: &str) -> String {
    let escaped = expr.replace('\\', "\\\\").replace('"', "\\\"");
    format!("default pass\nrule m: drop if pcap \"{escaped}\"\n")
}

/// What happened to one expression.
enum Outcome {
    /// Both refuse.
    RefusedByBoth,
    /// libpcap accepts, pfc refuses with these diagnostics (`code: message`).
    RefusedByPfc(Vec<(String, String)>),
    /// Judged on the corpus (or a failure was recorded).
    Judged,
}

/// Compiles `expr` with libpcap (optimized and not) and pfc, and judges pfc's interpreter,
/// rbpf and (when `kernel`) the kernel against libpcap's unoptimized program on every packet.
/// Disagreements go to `failures`; a refusal by pfc alone is returned for the caller to judge.
fn judge(
    expr: &str,
    packets: &[support::corpus::CorpusPacket],
    kernel: bool,
    tally: &mut Tally,
    failures: &mut Vec<String>,
) -> Outcome {
    tally.expressions += 1;
    let optimized = Libpcap::compile(expr, true);
    let plain = Libpcap::compile(expr, false);
    let (filter, diagnostics) = pfc_compiler::pcap::compile(expr, Span::new(0, expr.len()));
    let (optimized, plain, filter) = match (optimized, plain, filter) {
        (Err(_), Err(_), None) => {
            tally.refused_by_both += 1;
            return Outcome::RefusedByBoth;
        }
        (Ok(optimized), Ok(plain), Some(filter)) => (Optimized::Program(optimized), plain, filter),
        (Err(error), Ok(plain), Some(filter)) if error == REJECTS_ALL => {
            tally.rejects_all += 1;
            (Optimized::RejectsAll, plain, filter)
        }
        (Err(_), Ok(plain), Some(filter)) => {
            tally.optimizer_refused += 1;
            (Optimized::Refused, plain, filter)
        }
        (_, Ok(_), None) => {
            return Outcome::RefusedByPfc(
                diagnostics.iter().map(|d| (d.code.0.to_string(), d.message.clone())).collect(),
            )
        }
        (libpcap, _, pfc) => {
            failures.push(format!(
                "ACCEPTANCE `{expr}`: libpcap {}, pfc {} {:?}",
                libpcap.as_ref().map_or_else(|error| format!("refuses ({error})"), |_| "accepts".into()),
                if pfc.is_some() { "accepts" } else { "refuses" },
                diagnostics.iter().map(|d| format!("{}: {}", d.code, d.message)).collect::<Vec<_>>()
            ));
            return Outcome::Judged;
        }
    };
    let compiled = pfc_compiler::compile::compile(&rule_file(expr), Options::default());
    let Some(compiled) = compiled.0 else {
        failures.push(format!("COMPILE `{expr}`: {:?}", compiled.1));
        return Outcome::Judged;
    };
    count_size(expr, compiled.code.insns.len(), &optimized, tally);
    let object = BpfObject::parse(&compiled.object).expect("pfc's object parses");
    let mut vm = Executor::new(&object, &compiled.object, Backend::Vm).expect("rbpf takes pfc's object");
    let mut loaded = kernel.then(|| Executor::new(&object, &compiled.object, Backend::Kernel));
    if let Some(Err(error)) = &loaded {
        failures.push(format!("KERNEL REFUSES `{expr}`: {}", support::error_chain(error)));
    }
    for packet in packets {
        let frame = &packet.bytes;
        let expected = plain.matches(frame);
        if optimized.matches(frame).is_some_and(|verdict| verdict != expected) {
            tally.skipped += 1;
            continue;
        }
        tally.judged += 1;
        let interpreted = filter.matches(frame);
        // The rule file drops what the filter matches.
        let matched = |ran: Ran<Verdict>| match ran {
            Ran::Decided(verdict) => Some(verdict == Verdict::Drop),
            Ran::Refused(_) => None,
        };
        let vm = vm.verdict_at(frame, 0).map(|ran| matched(ran) == Some(true));
        tally.vm_runs += 1;
        let in_kernel = match &mut loaded {
            Some(Ok(program)) => match program.verdict_at(frame, 0).map(matched) {
                Ok(None) => None,
                result => {
                    tally.kernel_runs += 1;
                    Some(result.map(|matched| matched == Some(true)).map_err(|e| e.to_string()))
                }
            },
            _ => None,
        };
        let vm_ok = vm.as_ref().is_ok_and(|verdict| *verdict == expected);
        let kernel_ok = in_kernel.as_ref().map_or(true, |result| result.as_ref().is_ok_and(|v| *v == expected));
        if interpreted != expected || !vm_ok || !kernel_ok {
            failures.push(format!(
                "MISMATCH `{expr}` on {} ({} bytes; {})\n  libpcap: {expected}  interpreter: {interpreted}  rbpf: {:?}  kernel: {:?}\n  {}",
                packet.description,
                frame.len(),
                parsed_summary(frame),
                vm.map_err(|e| e.to_string()),
                in_kernel,
                hex(frame)
            ));
            break;
        }
    }
    Outcome::Judged
}

/// Adds one compiled expression to the size comparison: pfc's whole program (`pfc_len`
/// instructions) against libpcap's optimized cBPF (1 for "rejects all packets" and the
/// optimizer's refusals: `ret #0`).
fn count_size(expr: &str, pfc_len: usize, optimized: &Optimized, tally: &mut Tally) {
    let libpcap_len = match optimized {
        Optimized::Program(optimized) => optimized.program.len as usize,
        _ => 1,
    };
    if expr.contains("protochain") {
        tally.chain_atom_insns += pfc_len.saturating_sub(fixed_overhead());
        tally.chain_programs += 1;
        tally.chain_libpcap_insns += libpcap_len;
    } else {
        tally.pfc_insns += pfc_len;
        tally.atom_insns += pfc_len.saturating_sub(fixed_overhead());
        tally.programs += 1;
        tally.libpcap_insns += libpcap_len;
    }
    let atom = pfc_len.saturating_sub(fixed_overhead());
    tally.worst.push((atom as f64 / libpcap_len.max(1) as f64, expr.to_string(), atom, libpcap_len));
}

/// Instructions of a program whose only atom is `pcap ""` (constant: no atom code):
/// the context reads, the parse of the rule body and the counter tail every program has.
fn fixed_overhead() -> usize {
    static OVERHEAD: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        let compiled = pfc_compiler::compile::compile(&rule_file(""), Options::default());
        compiled.0.expect("pcap \"\" compiles").code.insns.len()
    })
}

/// The size comparison: pfc's atom code against libpcap's optimized cBPF.
fn print_sizes(tally: &Tally) {
    println!(
        "instructions: pcap atoms {} (pfc eBPF, fixed overhead {} per program apart) vs libpcap optimized cBPF {} \
         over {} programs: ratio {:.2}; whole programs {} (ratio {:.2})",
        tally.atom_insns,
        fixed_overhead(),
        tally.libpcap_insns,
        tally.programs,
        tally.atom_insns as f64 / tally.libpcap_insns.max(1) as f64,
        tally.pfc_insns,
        tally.pfc_insns as f64 / tally.libpcap_insns.max(1) as f64
    );
    if tally.chain_programs > 0 {
        println!(
            "instructions with protochain (counted apart): pcap atoms {} vs libpcap {} over {} programs: ratio {:.2}",
            tally.chain_atom_insns,
            tally.chain_libpcap_insns,
            tally.chain_programs,
            tally.chain_atom_insns as f64 / tally.chain_libpcap_insns.max(1) as f64
        );
    }
}

fn summary(name: &str, tally: &Tally, packets: usize, kernel_ok: bool, failures: usize, started: Instant) {
    println!(
        "pcap vs libpcap 1.10, {name} (seed {:#x}): {} expressions ({} refused by both, {} optimized to \"rejects all \
         packets\", {} refused by the optimizer only) x {} packets: {} judged, {} skipped (libpcap optimized != unoptimized), {} rbpf runs, {} kernel \
         runs{}; {} failures; {:.1?}",
        support::seed(),
        tally.expressions,
        tally.refused_by_both,
        tally.rejects_all,
        tally.optimizer_refused,
        packets,
        tally.judged,
        tally.skipped,
        tally.vm_runs,
        tally.kernel_runs,
        if kernel_ok { "" } else { " (kernel skipped: no privileges)" },
        failures,
        started.elapsed()
    );
}

#[test]
fn pfc_agrees_with_libpcap_on_random_expressions() {
    let started = Instant::now();
    let mut packets = corpus(support::seed());
    packets.extend(frames::link_layer_frames());
    packets.extend(frames::libpcap_capture_frames());
    packets.extend(frames::protochain_frames());
    let kernel_ok = kernel::privileges().is_ok();
    let mut tally = Tally::default();
    let mut failures: Vec<String> = Vec::new();
    for (index, expr) in random_expressions().iter().enumerate() {
        if let Outcome::RefusedByPfc(diagnostics) =
            judge(expr, &packets, kernel_ok && index < KERNEL_EXPRESSIONS, &mut tally, &mut failures)
        {
            failures.push(format!("ACCEPTANCE `{expr}`: libpcap accepts, pfc refuses {diagnostics:?}"));
        }
        if failures.len() > 20 {
            break;
        }
    }
    summary("random expressions", &tally, packets.len(), kernel_ok, failures.len(), started);
    tally.worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    print_sizes(&tally);
    println!("worst (atom code):");
    for (ratio, expr, pfc, libpcap) in tally.worst.iter().take(5) {
        println!("  {ratio:.1}x  {pfc} vs {libpcap}  `{expr}`");
    }
    // `protochain`: counted apart (pfc's walk was unrolled until it became a loop).
    let mut chains = Tally::default();
    for (index, expr) in random_protochain_expressions().iter().enumerate() {
        let kernel = kernel_ok && index < PROTOCHAIN_KERNEL_EXPRESSIONS;
        if let Outcome::RefusedByPfc(diagnostics) = judge(expr, &packets, kernel, &mut chains, &mut failures) {
            failures.push(format!("ACCEPTANCE `{expr}`: libpcap accepts, pfc refuses {diagnostics:?}"));
        }
        if failures.len() > 20 {
            break;
        }
    }
    summary("random protochain expressions", &chains, packets.len(), kernel_ok, failures.len(), started);
    print_sizes(&chains);
    assert!(chains.chain_programs >= PROTOCHAIN_EXPRESSIONS / 2, "only {} protochain programs", chains.chain_programs);
    assert!(packets.len() >= 1000, "the corpus has only {} packets", packets.len());
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The expressions of the random differential, in its order.
fn random_expressions() -> Vec<String> {
    let mut rng = Rng::new(support::seed() ^ 0x9ca9_u64.wrapping_mul(0x1000_0001));
    (0..EXPRESSIONS).map(|_| expression(&mut rng, 3)).collect()
}

/// The `protochain` expressions of the random differential, in its order.
fn random_protochain_expressions() -> Vec<String> {
    let mut rng = Rng::new(support::seed() ^ 0x9c_c4a1_u64.wrapping_mul(0x1000_0001));
    (0..PROTOCHAIN_EXPRESSIONS).map(|_| protochain_expression(&mut rng)).collect()
}

/// The TESTrun expressions (without their link types).
fn testrun_expressions() -> Vec<&'static str> {
    TESTRUN
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split_once('\t').map_or(line, |(_, expr)| expr))
        .collect()
}

/// Code size alone (issue 17), without running a frame: the expressions of both
/// differentials that libpcap and pfc both accept, pfc's atom code against libpcap's
/// optimized cBPF, per set, with the ten largest ratios (`PFC_PCAP_SIZE_LIST=1` prints
/// every expression: atom instructions, libpcap's, the expression). Every accepted
/// expression must compile.
#[test]
fn pcap_code_size_against_libpcap() {
    let list = std::env::var_os("PFC_PCAP_SIZE_LIST").is_some();
    let testrun: Vec<String> = testrun_expressions().into_iter().map(str::to_string).collect();
    let sets = [
        ("random expressions", random_expressions()),
        ("random protochain expressions", random_protochain_expressions()),
        ("TESTrun (DLT_EN10MB)", testrun),
    ];
    let mut failures = Vec::new();
    for (name, expressions) in sets {
        let mut tally = Tally::default();
        for expr in &expressions {
            let optimized = match (Libpcap::compile(expr, true), Libpcap::compile(expr, false)) {
                (Ok(optimized), Ok(_)) => Optimized::Program(optimized),
                (Err(error), Ok(_)) if error == REJECTS_ALL => Optimized::RejectsAll,
                (Err(_), Ok(_)) => Optimized::Refused,
                (_, Err(_)) => continue,
            };
            if pfc_compiler::pcap::compile(expr, Span::new(0, expr.len())).0.is_none() {
                continue;
            }
            match pfc_compiler::compile::compile(&rule_file(expr), Options::default()).0 {
                Some(compiled) => count_size(expr, compiled.code.insns.len(), &optimized, &mut tally),
                None => failures.push(format!("`{expr}` does not compile")),
            }
        }
        println!("{name}:");
        print_sizes(&tally);
        tally.worst.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (ratio, expr, pfc, libpcap) in tally.worst.iter().take(10) {
            println!("  {ratio:.1}x  {pfc} vs {libpcap}  `{expr}`");
        }
        if list {
            for (_, expr, pfc, libpcap) in &tally.worst {
                println!("size\t{pfc}\t{libpcap}\t{expr}");
            }
        }
        assert!(tally.programs + tally.chain_programs >= expressions.len() / 10, "{name}: too few compiled");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// libpcap's own test expressions for Ethernet (`testprogs/TESTrun`, vendored with its
/// licence by `scripts/libpcap-testrun-corpus.sh`).
const TESTRUN: &str = include_str!("data/libpcap-testrun-en10mb.txt");

/// The E0019 messages docs/pcap.md documents: `what: why` for each row of the table in its
/// "Refused" section.
fn documented_refusals() -> Vec<String> {
    let docs = include_str!("../docs/pcap.md");
    let section = docs.split("\n## Refused").nth(1).expect("docs/pcap.md has a Refused section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| ")?.strip_suffix(" |"))
        .filter_map(|row| row.split_once(" | "))
        .filter(|(what, _)| *what != "What" && !what.starts_with("---"))
        .map(|(what, why)| format!("{what}: {why}").replace("\\|", "|"))
        .collect()
}

/// Whether pfc's refusal is one docs/pcap.md documents: every diagnostic E0019 with a
/// message of its table.
fn refused_as_documented(diagnostics: &[(String, String)], documented: &[String]) -> bool {
    !diagnostics.is_empty() && diagnostics.iter().all(|(code, message)| code == "E0019" && documented.contains(message))
}

/// Expressions of the grammar-wide acceptance comparison per run; `PFC_PCAP_GRAMMAR=N`
/// runs N instead (the same first ones, then more).
const GRAMMAR_EXPRESSIONS: usize = 1000;
/// Of those, how many also run in the kernel when privileged.
const GRAMMAR_KERNEL_EXPRESSIONS: usize = 100;
/// Every how many corpus frames one is judged for these expressions (their acceptance
/// is the point; the random and TESTrun differentials judge every frame).
const GRAMMAR_FRAME_STRIDE: usize = 4;

/// libpcap's grammar, all of it (`grammar.rs` writes expressions over every form of
/// pcap-filter(7), about half of them invalid): whatever libpcap 1.10 refuses on
/// Ethernet, pfc refuses; whatever it accepts, pfc accepts — or refuses with an E0019 of
/// the documented list — and gives libpcap's verdicts (interpreter, rbpf, kernel).
#[test]
fn pfc_accepts_and_refuses_what_libpcap_does() {
    let started = Instant::now();
    let count = std::env::var("PFC_PCAP_GRAMMAR").map_or(GRAMMAR_EXPRESSIONS, |n| n.parse().expect("a count"));
    let mut packets = corpus(support::seed());
    packets.extend(frames::link_layer_frames());
    packets.extend(frames::libpcap_capture_frames());
    let mut packets: Vec<_> = packets.into_iter().step_by(GRAMMAR_FRAME_STRIDE).collect();
    packets.extend(frames::geneve_frames(false));
    let kernel_ok = kernel::privileges().is_ok();
    let documented = documented_refusals();
    let mut rng = Rng::new(support::seed() ^ 0x6a_77a4_u64.wrapping_mul(0x1000_0001));
    let (mut tally, mut failures, mut documented_refusals_seen) = (Tally::default(), Vec::new(), 0);
    let mut by_refusal: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for index in 0..count {
        let expr = grammar::expression(&mut rng, 2);
        let kernel = kernel_ok && index < GRAMMAR_KERNEL_EXPRESSIONS;
        if let Outcome::RefusedByPfc(diagnostics) = judge(&expr, &packets, kernel, &mut tally, &mut failures) {
            if refused_as_documented(&diagnostics, &documented) {
                documented_refusals_seen += 1;
                for (_, message) in diagnostics {
                    *by_refusal.entry(message).or_default() += 1;
                }
            } else {
                failures.push(format!("UNEXPECTED REFUSAL `{expr}`: libpcap accepts, pfc {diagnostics:?}"));
            }
        }
        if failures.len() > 40 {
            break;
        }
    }
    let accepted = tally.expressions - tally.refused_by_both - documented_refusals_seen;
    summary("grammar", &tally, packets.len(), kernel_ok, failures.len(), started);
    println!(
        "grammar: {} expressions generated: {accepted} accepted by both, {} refused by both, \
         {documented_refusals_seen} refused by pfc as documented, {} disagreements",
        tally.expressions,
        tally.refused_by_both,
        failures.len()
    );
    for (message, times) in &by_refusal {
        println!("  {times:5}  E0019 {message}");
    }
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
    assert!(accepted >= count / 5 && tally.refused_by_both >= count / 5, "the generator lost its balance");
}

/// Every TESTrun expression for Ethernet: where libpcap 1.10 accepts, pfc accepts and agrees
/// on every packet (interpreter, rbpf, kernel), or refuses with E0019 naming a form on the
/// documented refusal list; where libpcap refuses, pfc refuses.
#[test]
fn pfc_agrees_with_libpcap_on_its_own_test_expressions() {
    let started = Instant::now();
    let mut packets = corpus(support::seed());
    packets.extend(frames::link_layer_frames());
    packets.extend(frames::libpcap_capture_frames());
    packets.extend(frames::protochain_frames());
    packets.extend(frames::geneve_frames(false));
    let kernel_ok = kernel::privileges().is_ok();
    let documented = documented_refusals();
    assert!(documented.len() >= 5, "the refusal table of docs/pcap.md was not found: {documented:?}");
    let mut tally = Tally::default();
    let mut failures: Vec<String> = Vec::new();
    let mut documented_refusals_seen = 0;
    let mut by_refusal: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    let expressions = testrun_expressions();
    for expr in &expressions {
        if let Outcome::RefusedByPfc(diagnostics) = judge(expr, &packets, kernel_ok, &mut tally, &mut failures) {
            if refused_as_documented(&diagnostics, &documented) {
                documented_refusals_seen += 1;
                for (_, message) in &diagnostics {
                    by_refusal.entry(message.clone()).or_default().push(expr.to_string());
                }
            } else {
                failures.push(format!("UNEXPECTED REFUSAL `{expr}`: libpcap accepts, pfc {diagnostics:?}"));
            }
        }
    }
    let accepted = tally.expressions - tally.refused_by_both - documented_refusals_seen;
    summary("TESTrun (DLT_EN10MB)", &tally, packets.len(), kernel_ok, failures.len(), started);
    println!(
        "TESTrun: {} expressions: {accepted} accepted by both, {} refused by both, {documented_refusals_seen} refused by pfc \
         as documented, {} failures",
        expressions.len(),
        tally.refused_by_both,
        failures.len()
    );
    for (message, exprs) in &by_refusal {
        println!("  {:4}  E0019 {message}  (e.g. `{}`)", exprs.len(), exprs[..exprs.len().min(4)].join("`, `"));
    }
    print_sizes(&tally);
    assert!(expressions.len() >= 2000, "only {} TESTrun expressions", expressions.len());
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Expressions that read after `geneve` per run, and how many also run in the kernel.
const GENEVE_EXPRESSIONS: usize = 300;
const GENEVE_KERNEL_EXPRESSIONS: usize = 60;

/// After `geneve`, libpcap reads every header at offsets it computes at run time from
/// the Geneve header (option length, protocol) into scratch registers: random
/// expressions after `geneve` ([`geneve_expression`]) agree with libpcap on Geneve
/// frames of every kind, cut at every length (`frames::geneve_frames`), and on part of
/// the corpus. Where a read after `geneve` may happen when it did not match, libpcap
/// reads registers it never wrote: pfc refuses those as documented.
#[test]
fn pfc_agrees_with_libpcap_after_geneve() {
    let started = Instant::now();
    let mut packets = frames::geneve_frames(true);
    packets.extend(corpus(support::seed()).into_iter().step_by(8));
    let kernel_ok = kernel::privileges().is_ok();
    let documented = documented_refusals();
    let mut rng = Rng::new(support::seed() ^ 0x6e_e7e_u64.wrapping_mul(0x1000_0001));
    let too_deep = pfc_compiler::pcap::Refusal::TooDeep.message();
    let (mut tally, mut failures, mut deep) = (Tally::default(), Vec::new(), 0);
    for index in 0..GENEVE_EXPRESSIONS {
        let expr = geneve_expression(&mut rng);
        let kernel = kernel_ok && index < GENEVE_KERNEL_EXPRESSIONS;
        if let Outcome::RefusedByPfc(diagnostics) = judge(&expr, &packets, kernel, &mut tally, &mut failures) {
            // Arithmetic at run-time offsets may need more registers than pfc has.
            if diagnostics.iter().all(|(_, message)| *message == too_deep) {
                deep += 1;
                continue;
            }
            failures.push(format!("ACCEPTANCE `{expr}`: libpcap accepts, pfc refuses {diagnostics:?}"));
        }
        if failures.len() > 20 {
            break;
        }
    }
    summary("after geneve", &tally, packets.len(), kernel_ok, failures.len(), started);
    println!("after geneve: {deep} refused as too deep");
    assert!(deep < GENEVE_EXPRESSIONS / 20, "{deep} refused as too deep");
    for expr in
        ["geneve or tcp", "not geneve and port 22", "(geneve and udp) or ip", "geneve or geneve", "geneve or vlan"]
    {
        match judge(expr, &packets, false, &mut tally, &mut failures) {
            Outcome::RefusedByPfc(diagnostics) if refused_as_documented(&diagnostics, &documented) => {}
            _ => failures.push(format!("`{expr}`: not refused as documented")),
        }
    }
    for expr in ["geneve and protochain 6", "geneve or len > 100", "geneve or less 60 or greater 1000"] {
        if !matches!(judge(expr, &packets, false, &mut tally, &mut failures), Outcome::RefusedByBoth | Outcome::Judged)
        {
            failures.push(format!("`{expr}`: libpcap accepts, pfc refuses"));
        }
    }
    assert!(tally.judged > GENEVE_EXPRESSIONS * 1000, "only {} frames judged", tally.judged);
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Expressions with `byte N &`/`|` per run, and how many also run in the kernel.
const BYTE_BITWISE_EXPRESSIONS: usize = 300;
const BYTE_BITWISE_KERNEL_EXPRESSIONS: usize = 60;

/// `byte N & V` and `byte N | V` test libpcap's accumulator, whatever the previous test
/// left there ([`byte_bitwise_expression`] puts them after every kind of test): pfc
/// agrees with libpcap's unoptimized program on the whole corpus.
#[test]
fn pfc_agrees_with_libpcap_on_byte_bitwise() {
    let started = Instant::now();
    let mut packets = corpus(support::seed());
    packets.extend(frames::link_layer_frames());
    packets.extend(frames::protochain_frames());
    packets.extend(frames::geneve_frames(false));
    let kernel_ok = kernel::privileges().is_ok();
    let mut rng = Rng::new(support::seed() ^ 0xb7_e0b_u64.wrapping_mul(0x1000_0001));
    let (mut tally, mut failures) = (Tally::default(), Vec::new());
    for index in 0..BYTE_BITWISE_EXPRESSIONS {
        let expr = byte_bitwise_expression(&mut rng);
        let kernel = kernel_ok && index < BYTE_BITWISE_KERNEL_EXPRESSIONS;
        if let Outcome::RefusedByPfc(diagnostics) = judge(&expr, &packets, kernel, &mut tally, &mut failures) {
            failures.push(format!("ACCEPTANCE `{expr}`: libpcap accepts, pfc refuses {diagnostics:?}"));
        }
        if failures.len() > 20 {
            break;
        }
    }
    summary("byte & and |", &tally, packets.len(), kernel_ok, failures.len(), started);
    assert!(tally.judged > BYTE_BITWISE_EXPRESSIONS * 1000, "only {} frames judged", tally.judged);
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// libpcap's instructions for `expr` (unoptimized), or its error.
fn program_of(expr: &str) -> Result<Vec<(u16, u8, u8, u32)>, String> {
    let compiled = Libpcap::compile(expr, false)?;
    // SAFETY: `len` instructions at `insns`, alive until `compiled` drops.
    let insns = unsafe { std::slice::from_raw_parts(compiled.program.insns, compiled.program.len as usize) };
    Ok(insns.iter().map(|insn| (insn.code, insn.jt, insn.jf, insn.k)).collect())
}

/// Every name in pfc's tables means what it means to libpcap (issue 9): for each named
/// constant, protocol, ethertype, OSI protocol and service, libpcap compiles the name to
/// the same program as the number pfc gives it, and pfc accepts it.
#[test]
fn every_name_is_libpcaps() {
    use pfc_compiler::pcap::names::{self, ServiceProto};
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in names::CONSTANTS {
        pairs.push((format!("ether[0] = {name}"), format!("ether[0] = {value}")));
    }
    for (name, value) in names::IP_PROTOCOLS {
        pairs.push((format!("ip proto \\{name}"), format!("ip proto {value}")));
        pairs.push((format!("proto \\{name}"), format!("proto {value}")));
    }
    for (name, value) in names::ETHERTYPES {
        pairs.push((format!("ether proto \\{name}"), format!("ether proto {value}")));
    }
    for (name, value) in names::OSI_PROTOCOLS {
        pairs.push((format!("iso proto \\{name}"), format!("iso proto {value}")));
    }
    for (name, port, proto) in names::SERVICES {
        let protos: &[&str] = match proto {
            ServiceProto::Tcp => &["tcp"],
            ServiceProto::Udp => &["udp"],
            ServiceProto::Both => &["tcp", "udp"],
        };
        for proto in protos {
            pairs.push((format!("{proto} port {name}"), format!("{proto} port {port}")));
        }
        let unqualified = match proto {
            ServiceProto::Tcp => format!("tcp port {port}"),
            ServiceProto::Udp => format!("udp port {port}"),
            ServiceProto::Both => format!("port {port}"),
        };
        pairs.push((format!("port {name}"), unqualified));
    }
    let mut failures = Vec::new();
    for (named, numbered) in &pairs {
        let (by_name, by_number) = (program_of(named), program_of(numbered));
        if by_name.is_err() || by_name != by_number {
            failures.push(format!("`{named}` vs `{numbered}`: libpcap {by_name:?} vs {by_number:?}"));
        }
        let (filter, diagnostics) = pfc_compiler::pcap::compile(named, Span::new(0, named.len()));
        let (numbered_filter, _) = pfc_compiler::pcap::compile(numbered, Span::new(0, numbered.len()));
        if filter.is_none() || filter != numbered_filter {
            failures.push(format!("`{named}`: pfc {diagnostics:?}, or not the same as `{numbered}`"));
        }
    }
    println!("{} names checked against libpcap", pairs.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// pfc's verdicts for `expr` on `frame`: the interpreter's, rbpf's and (when `kernel`)
/// the kernel's.
fn pfc_verdicts(expr: &str, frame: &[u8], kernel: bool) -> Vec<bool> {
    let (filter, diagnostics) = pfc_compiler::pcap::compile(expr, Span::new(0, expr.len()));
    let filter = filter.unwrap_or_else(|| panic!("`{expr}` compiles: {diagnostics:?}"));
    let compiled = pfc_compiler::compile::compile(&rule_file(expr), Options::default()).0.expect("compiles");
    let object = BpfObject::parse(&compiled.object).expect("pfc's object parses");
    let mut verdicts = vec![filter.matches(frame)];
    let backends = if kernel { vec![Backend::Vm, Backend::Kernel] } else { vec![Backend::Vm] };
    for backend in backends {
        let mut executor = Executor::new(&object, &compiled.object, backend).expect("the object loads");
        let ran = executor.verdict_at(frame, 0).expect("runs");
        verdicts.push(matches!(ran, Ran::Decided(Verdict::Drop)));
    }
    verdicts
}

/// `protochain`'s one documented difference (docs/pcap.md): pfc follows at most
/// `MAX_PROTOCHAIN_HEADERS` headers, libpcap any number (and never returns on a frame
/// whose AH cursor comes back to itself). Up to the bound pfc gives libpcap's verdict;
/// one header more makes the atom false, under `not` too.
#[test]
fn protochain_past_its_bound_is_false() {
    let bound = pfc_compiler::program::pcap::MAX_PROTOCHAIN_HEADERS as usize;
    let kernel = kernel::privileges().is_ok();
    let (within, beyond) = (frames::ipv6_chain(bound), frames::ipv6_chain(bound + 1));
    for (expr, libpcap_beyond) in
        [("ip6 protochain 17", true), ("not ip6 protochain 17", false), ("not protochain 6", true)]
    {
        let libpcap = Libpcap::compile(expr, false).expect("libpcap compiles it");
        let expected = libpcap.matches(&within);
        assert!(pfc_verdicts(expr, &within, kernel).iter().all(|v| *v == expected), "`{expr}` at the bound");
        assert_eq!(libpcap.matches(&beyond), libpcap_beyond, "libpcap walks any number of headers");
        assert!(pfc_verdicts(expr, &beyond, kernel).iter().all(|v| !v), "`{expr}` past the bound");
    }
    let cycle = frames::ipv4_ah_cycle();
    for expr in ["ip protochain 6", "not ip protochain 6"] {
        assert!(pfc_verdicts(expr, &cycle, kernel).iter().all(|v| !v), "`{expr}` on an AH cycle");
    }
}
