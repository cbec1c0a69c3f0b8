//! Verdicts of the shipped object. Input: the compiled object's bytes, its checked
//! program and one frame at a time; output: the verdict and deciding rule of the object
//! (rbpf VM — its JIT when pfc's verifier accepts the code, else its interpreter — or
//! kernel `BPF_PROG_TEST_RUN`), checked against the interpreter.
//!
//! The deciding rule is read from the object itself: its counter map (map 0) has one
//! `{u64 packets, u64 bytes}` entry per rule and one for the default, and exactly one
//! entry's packet count goes up by one per run. **Invariant:** every answer
//! [`Engine::run_at`] returns agrees with `pfc_compiler::eval::evaluate` in verdict and rule;
//! any disagreement is a [`RunError`] (an internal compiler error), never a verdict.

use pfc_compiler::eval::{evaluate_at, Outcome, State};
use pfc_compiler::program::{Program, Verdict};
use pfc_runtime::kernel::{KernelError, KernelProgram, SkipReason};
use pfc_runtime::vm::{self, Vm, VmError};
use pfc_runtime::{BpfObject, Hook};
use thiserror::Error;

/// Index of the counter map in pfc objects.
const COUNTER_MAP: usize = 0;

/// Which executor runs the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// rbpf, unprivileged: its JIT when pfc's verifier accepts the code, else its
    /// interpreter.
    Vm,
    /// rbpf's interpreter, even where the JIT could run (`--interpreter`).
    VmInterpreter,
    /// The kernel's `BPF_PROG_TEST_RUN` (root or CAP_BPF).
    Kernel,
}

impl Backend {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Vm | Backend::VmInterpreter => "rbpf VM",
            Backend::Kernel => "kernel",
        }
    }
}

/// Why the object cannot be run at all.
#[derive(Debug, Error)]
pub enum SetupError {
    /// rbpf cannot take the program (too long: a limit; anything else: a pfc bug).
    #[error("the rbpf VM cannot run the compiled program")]
    Vm {
        /// rbpf's complaint.
        #[source]
        source: VmError,
    },
    /// This process may not load BPF programs.
    #[error("--kernel needs privileges")]
    Privileges {
        /// Why.
        #[source]
        source: SkipReason,
    },
    /// The kernel refused the object (a pfc bug: pfc's own verifier accepted it).
    #[error("the kernel refused the compiled object")]
    Kernel {
        /// libbpf's and the verifier's complaint.
        #[source]
        source: KernelError,
    },
}

impl SetupError {
    /// Whether this is a pfc bug (exit 3) rather than a limit or missing privileges.
    pub fn is_internal(&self) -> bool {
        match self {
            SetupError::Kernel { .. } => true,
            SetupError::Vm { source } => !matches!(source, VmError::ProgramTooLong { .. }),
            SetupError::Privileges { .. } => false,
        }
    }
}

/// Everything that can go wrong running one packet: each one is a pfc bug.
#[derive(Debug, Error)]
pub enum RunError {
    /// The object and the interpreter disagree.
    #[error(
        "the {backend} and the interpreter disagree: {backend} {} by {}, interpreter {} by {}",
        got.verdict.as_str(), rule_label(*got, rules), want.verdict.as_str(), rule_label(*want, rules)
    )]
    Disagreement {
        /// Which executor.
        backend: &'static str,
        /// Its answer.
        got: Outcome,
        /// The interpreter's answer.
        want: Outcome,
        /// Rule names, for the message.
        rules: Vec<String>,
    },
    /// The program returned something that is neither pass nor drop for its hook.
    #[error("the {backend} returned {value}, which is neither pass nor drop for this hook")]
    ReturnValue {
        /// Which executor.
        backend: &'static str,
        /// The return value.
        value: u64,
    },
    /// The counters did not move by exactly one packet in one entry.
    #[error("the {backend}'s counters moved at entries {moved:?}; exactly one should gain one packet")]
    Counters {
        /// Which executor.
        backend: &'static str,
        /// The entries whose packet count changed.
        moved: Vec<usize>,
    },
    /// rbpf failed on the packet.
    #[error("the rbpf VM failed")]
    Vm {
        /// rbpf's complaint.
        #[source]
        source: VmError,
    },
    /// The kernel failed on the packet (other than refusing a short one).
    #[error("the kernel test run failed")]
    Kernel {
        /// libbpf's complaint.
        #[source]
        source: KernelError,
    },
}

/// "rule NAME" or "default".
pub fn rule_label(outcome: Outcome, rules: &[String]) -> String {
    match outcome.rule {
        Some(index) => format!("rule {}", rules.get(index).map_or("?", String::as_str)),
        None => "default".to_string(),
    }
}

/// What one run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// The verdict and deciding rule (equal to the interpreter's).
    Decided(Outcome),
    /// The kernel refused to run this frame (too short); the reason.
    Refused(String),
}

enum Executor<'obj> {
    Vm(Box<Vm<'obj>>),
    Kernel(Box<KernelProgram>),
}

/// Runs frames through the object and the interpreter.
pub struct Engine<'obj> {
    program: &'obj Program,
    executor: Executor<'obj>,
    backend: Backend,
    /// Packets per counter entry after the last run.
    counts: Vec<u64>,
    /// The counters read after this run; swapped with `counts`, so runs allocate nothing.
    scratch: Vec<u64>,
    /// The interpreter's rate-limit buckets, kept across runs as the object's maps are.
    state: State,
}

impl<'obj> Engine<'obj> {
    /// An engine for `object` (parsed from `object_bytes`, the bytes pfc ships).
    pub fn new(
        program: &'obj Program,
        object: &'obj BpfObject,
        object_bytes: &[u8],
        backend: Backend,
    ) -> Result<Engine<'obj>, SetupError> {
        let executor = match backend {
            Backend::Vm | Backend::VmInterpreter => {
                let wanted = if backend == Backend::Vm { vm::Backend::Jit } else { vm::Backend::Interpreter };
                let vm = Vm::with_backend(object, wanted).map_err(|source| SetupError::Vm { source })?;
                Executor::Vm(Box::new(vm))
            }
            Backend::Kernel => {
                pfc_runtime::kernel::privileges().map_err(|source| SetupError::Privileges { source })?;
                let loaded = KernelProgram::load(object_bytes).map_err(|source| SetupError::Kernel { source })?;
                Executor::Kernel(Box::new(loaded))
            }
        };
        let mut counts = Vec::new();
        read_counts(&executor, &mut counts).map_err(|error| match error {
            CounterError::Vm(source) => SetupError::Vm { source },
            CounterError::Kernel(source) => SetupError::Kernel { source },
        })?;
        let scratch = vec![0; counts.len()];
        Ok(Engine { program, executor, backend, counts, scratch, state: State::new(program) })
    }

    /// What runs the object: "jit" or "interpreter" (rbpf), or "kernel".
    pub fn executor(&self) -> &'static str {
        match &self.executor {
            Executor::Vm(vm) => match vm.backend() {
                vm::Backend::Jit => "jit",
                vm::Backend::Interpreter => "interpreter",
            },
            Executor::Kernel(_) => "kernel",
        }
    }

    /// Runs one frame arriving at `now_ns` (what `bpf_ktime_get_ns` returns in the VM and
    /// the interpreter's clock; the kernel runs on its own clock, so rate-limit cases
    /// agree there only while no bucket runs dry); the answer agrees with the
    /// interpreter or is an error.
    pub fn run_at(&mut self, packet: &[u8], now_ns: u64) -> Result<Ran, RunError> {
        let backend = self.backend.name();
        let want = evaluate_at(self.program, packet, &mut self.state, now_ns);
        let value = match &mut self.executor {
            Executor::Vm(vm) => vm.run_at(packet, now_ns).map_err(|source| RunError::Vm { source })?.return_value,
            Executor::Kernel(kernel) => match kernel.test_run(packet) {
                Ok(value) => u64::from(value),
                Err(error @ KernelError::PacketTooShort { .. }) => return Ok(Ran::Refused(error.to_string())),
                Err(source) => return Err(RunError::Kernel { source }),
            },
        };
        let verdict = verdict_of(hook_of(self.program), value).ok_or(RunError::ReturnValue { backend, value })?;
        read_counts(&self.executor, &mut self.scratch).map_err(|error| match error {
            CounterError::Vm(source) => RunError::Vm { source },
            CounterError::Kernel(source) => RunError::Kernel { source },
        })?;
        let entry = moved_entry(&self.counts, &self.scratch).map_err(|moved| RunError::Counters { backend, moved })?;
        std::mem::swap(&mut self.counts, &mut self.scratch);
        let got = Outcome { verdict, rule: (entry < self.program.rules.len()).then_some(entry) };
        // The kernel's rate limits run on its own clock, not the case's: there the
        // interpreter's answer is not a check (docs/testing.md, "Time").
        let own_clock = matches!(self.executor, Executor::Kernel(_)) && !self.program.limits.is_empty();
        if got != want && !own_clock {
            let rules = self.program.rules.iter().map(|rule| rule.name.clone()).collect();
            return Err(RunError::Disagreement { backend, got, want, rules });
        }
        Ok(Ran::Decided(got))
    }
}

/// Reads the packet count of every counter entry into `counts`. The VM reads its map
/// memory in place into the existing buffer (no allocation once `counts` has the map's
/// length, which [`Engine::new`] gives it); the kernel path copies through libbpf.
fn read_counts(executor: &Executor<'_>, counts: &mut Vec<u64>) -> Result<(), CounterError> {
    match executor {
        Executor::Vm(vm) => {
            if counts.is_empty() {
                // First read: learn the number of entries.
                let entries = vm.map_values(COUNTER_MAP).map_err(CounterError::Vm)?.len();
                counts.resize(entries, 0);
            }
            let written = vm.array_words(COUNTER_MAP, counts).map_err(CounterError::Vm)?;
            counts.truncate(written);
        }
        Executor::Kernel(kernel) => {
            let values = kernel.map_values(COUNTER_MAP).map_err(CounterError::Kernel)?;
            counts.clear();
            counts.extend(values.iter().map(|value| packets_of(value)));
        }
    }
    Ok(())
}

/// The one entry that gained exactly one packet from `before` to `now`, or every entry
/// that changed (allocated only then, on the error path).
fn moved_entry(before: &[u64], now: &[u64]) -> Result<usize, Vec<usize>> {
    let was = |i: usize| before.get(i).copied().unwrap_or(0);
    let mut changed = (0..now.len()).filter(|&i| now[i] != was(i));
    match (changed.next(), changed.next()) {
        (Some(entry), None) if now[entry] == was(entry).wrapping_add(1) => Ok(entry),
        _ => Err((0..now.len()).filter(|&i| now[i] != was(i)).collect()),
    }
}

/// Reading the counters failed; becomes a [`SetupError`] or a [`RunError`].
enum CounterError {
    Vm(VmError),
    Kernel(KernelError),
}

/// The `packets` word of a counter entry.
fn packets_of(value: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let len = value.len().min(8);
    word[..len].copy_from_slice(&value[..len]);
    u64::from_le_bytes(word)
}

fn hook_of(program: &Program) -> Hook {
    match program.hook {
        pfc_compiler::program::Hook::Xdp => Hook::Xdp,
        pfc_compiler::program::Hook::TcIngress | pfc_compiler::program::Hook::TcEgress => Hook::Tc,
    }
}

/// The verdict a return value means: XDP 2 pass, 1 drop; TC 0 pass, 2 drop.
pub fn verdict_of(hook: Hook, value: u64) -> Option<Verdict> {
    match (hook, value) {
        (Hook::Xdp, 2) | (Hook::Tc, 0) => Some(Verdict::Pass),
        (Hook::Xdp, 1) | (Hook::Tc, 2) => Some(Verdict::Drop),
        _ => None,
    }
}
