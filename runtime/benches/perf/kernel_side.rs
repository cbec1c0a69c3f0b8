//! Objects to compare against and the verifier's own accounting: the empty `r0 = 2; exit`
//! floor built with pfc's instruction model and ELF writer, the clang -O2 references in
//! `../shared/ref/` (when clang and the files are there), and the verifier statistics
//! ("processed N insns", verification time) of a load at log level 4 (`BPF_LOG_STATS`).
//!
//! The statistics need a log buffer on the program before libbpf loads it, which
//! `KernelProgram` does not expose; this benchmark-only helper talks to libbpf-rs
//! directly and keeps nothing loaded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use libbpf_rs::{AsRawLibbpf, ObjectBuilder};
use pfc_compiler::bpf::{AluOp, Insn, ProgramBuilder, Reg};
use pfc_compiler::object::{self, ObjectSpec, ProgramType};

/// `BPF_LOG_STATS`: only the summary lines, not the per-instruction trace.
const LOG_LEVEL_STATS: u32 = 4;
/// Room for the summary lines (and a refusal's last words).
const LOG_BUFFER: usize = 1 << 16;

/// The floor: `w0 = 2 (XDP_PASS); exit`, as an XDP object without maps.
pub fn empty_object() -> Vec<u8> {
    let mut b = ProgramBuilder::new();
    b.emit(Insn::alu32(AluOp::Mov, Reg::R0, 2));
    b.emit(Insn::Exit);
    let code = b.finish().expect("two instructions assemble");
    let spec = ObjectSpec {
        program_type: ProgramType::Xdp,
        function: "pfc_empty".to_string(),
        code: code.encode(),
        relocations: Vec::new(),
        maps: Vec::new(),
        manifest: Vec::new(),
        set_contents: Vec::new(),
    };
    object::write_object(&spec).expect("the empty object is well formed")
}

/// The clang reference objects, or why there are none.
pub struct References {
    /// `(name, object bytes)` for each reference that compiled.
    pub objects: Vec<(String, Vec<u8>)>,
    /// Why some or all references are missing.
    pub skipped: Vec<String>,
}

/// Compiles `empty.c` and `tcp_dport_22.c` from `ref_dir` with clang -O2 into `out_dir`.
pub fn clang_references(ref_dir: &Path, out_dir: &Path) -> References {
    let mut references = References { objects: Vec::new(), skipped: Vec::new() };
    if !ref_dir.is_dir() {
        references.skipped.push(format!("clang references: {} not found", ref_dir.display()));
        return references;
    }
    let arch = std::env::consts::ARCH;
    let include = format!("-I/usr/include/{arch}-linux-gnu");
    for name in ["empty", "tcp_dport_22"] {
        let source = ref_dir.join(format!("{name}.c"));
        let object = out_dir.join(format!("ref_{name}.o"));
        if !source.is_file() {
            references.skipped.push(format!("clang {name}: {} not found", source.display()));
            continue;
        }
        let run = Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", &include, "-c"])
            .arg(&source)
            .arg("-o")
            .arg(&object)
            .output();
        match run {
            Err(error) => references.skipped.push(format!("clang {name}: cannot run clang ({error})")),
            Ok(output) if !output.status.success() => references.skipped.push(format!(
                "clang {name}: clang failed: {}",
                String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or("")
            )),
            Ok(_) => match std::fs::read(&object) {
                Ok(bytes) => references.objects.push((format!("clang {name}.c"), bytes)),
                Err(error) => references.skipped.push(format!("clang {name}: reading {}: {error}", object.display())),
            },
        }
    }
    references
}

/// `../shared/ref` next to the workspace root (this crate is one level below it).
pub fn reference_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    workspace.join("..").join("shared").join("ref")
}

/// What the verifier said about one load.
pub struct VerifierStats {
    /// "processed N insns", when the log had it.
    pub processed: Option<u64>,
    /// Peak verifier states, when the log had it.
    pub peak_states: Option<u64>,
    /// "verification time N usec", when the log had it.
    pub verification: Option<Duration>,
    /// Wall-clock time of the whole libbpf load (maps, relocation, verifier).
    pub load: Duration,
    /// CPU time the loading thread spent in the load (kernel and user), which unlike the
    /// wall clock does not grow with the machine's other load.
    pub load_cpu: Duration,
    /// libbpf's error and the log's last lines when refused.
    pub refusal: Option<String>,
}

/// Loads `elf` once with a `BPF_LOG_STATS` log and reads the verifier's summary.
pub fn verifier_stats(elf: &[u8]) -> Result<VerifierStats, String> {
    let mut open = ObjectBuilder::default().open_memory(elf).map_err(|e| format!("libbpf open: {e}"))?;
    let mut log = vec![0u8; LOG_BUFFER];
    for mut program in open.progs_mut() {
        program.set_log_level(LOG_LEVEL_STATS);
        // SAFETY: the program pointer is live for as long as `open` (and the loaded object
        // made from it, dropped before `log` at the end of this function); libbpf writes at
        // most `log.len()` bytes into `log`, which outlives the load below.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_program__set_log_buf(
                program.as_libbpf_object().as_ptr(),
                log.as_mut_ptr().cast(),
                log.len() as _,
            )
        };
        if rc != 0 {
            return Err(format!("bpf_program__set_log_buf: {rc}"));
        }
    }
    let start = Instant::now();
    let cpu_start = thread_cpu_time();
    let loaded = open.load();
    let load_cpu = thread_cpu_time().saturating_sub(cpu_start);
    let load = start.elapsed();
    let end = log.iter().position(|&byte| byte == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).into_owned();
    let refusal = match &loaded {
        Ok(_) => None,
        Err(error) => {
            let lines: Vec<&str> = text.lines().collect();
            Some(format!("{error}; log: {}", lines[lines.len().saturating_sub(4)..].join(" | ")))
        }
    };
    drop(loaded);
    Ok(VerifierStats {
        processed: number_after(&text, "processed "),
        peak_states: number_after(&text, "peak_states "),
        verification: number_after(&text, "verification time ").map(Duration::from_micros),
        load,
        load_cpu,
        refusal,
    })
}

/// CPU time of the calling thread so far (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// The decimal number right after the first `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
