//! Verdicts of the shipped object, checked against the interpreter. Input: the compiled
//! object, its checked program and one frame at a time; output: the object's verdict and
//! deciding rule as `pfc_runtime::Executor` reads them (VM or kernel alike).
//!
//! **Invariant:** every answer [`Engine::run_at`] returns agrees with
//! `pfc_compiler::eval::evaluate` in verdict and rule; any disagreement is a
//! [`RunError`] (an internal compiler error), never a verdict.

use pfc_compiler::eval::{evaluate_at, Outcome, State};
use pfc_compiler::program::Program;
use pfc_runtime::executor::{self, Executor};
pub use pfc_runtime::executor::{Backend, Ran, SetupError};
use pfc_runtime::BpfObject;
use thiserror::Error;

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
    /// The object did not run or gave no verdict and rule.
    #[error(transparent)]
    Run(#[from] executor::RunError),
}

/// "rule NAME" or "default".
pub fn rule_label(outcome: Outcome, rules: &[String]) -> String {
    match outcome.rule {
        Some(index) => format!("rule {}", rules.get(index).map_or("?", String::as_str)),
        None => "default".to_string(),
    }
}

/// Runs frames through the object and the interpreter.
pub struct Engine<'obj> {
    program: &'obj Program,
    executor: Executor<'obj>,
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
        let executor = Executor::new(object, object_bytes, backend)?;
        Ok(Engine { program, executor, state: State::new(program) })
    }

    /// What runs the object: "jit" or "interpreter" (rbpf), or "kernel".
    pub fn executor(&self) -> &'static str {
        self.executor.executor()
    }

    /// Runs one frame arriving at `now_ns` (what `bpf_ktime_get_ns` returns in the VM and
    /// the interpreter's clock; the kernel runs on its own clock, so rate-limit cases
    /// agree there only while no bucket runs dry); the answer agrees with the
    /// interpreter or is an error.
    pub fn run_at(&mut self, packet: &[u8], now_ns: u64) -> Result<Ran, RunError> {
        let want = evaluate_at(self.program, packet, &mut self.state, now_ns);
        let got = match self.executor.run_at(packet, now_ns)? {
            Ran::Decided(got) => got,
            refused @ Ran::Refused(_) => return Ok(refused),
        };
        // The kernel's rate limits run on its own clock, not the case's: there the
        // interpreter's answer is not a check (docs/testing.md, "Time").
        let backend = self.executor.backend();
        let own_clock = backend == Backend::Kernel && !self.program.limits.is_empty();
        if got != want && !own_clock {
            let rules = self.program.rules.iter().map(|rule| rule.name.clone()).collect();
            return Err(RunError::Disagreement { backend: backend.name(), got, want, rules });
        }
        Ok(Ran::Decided(got))
    }
}
