//! A compiled object and one frame at a time in, the object's verdict and deciding rule
//! out, the same way whatever runs it: rbpf (its JIT when pfc's verifier accepts the
//! code, else its interpreter) or the kernel's `BPF_PROG_TEST_RUN`.
//!
//! The verdict is the program's return value read through the hook's return codes
//! (`codegen::return_code`, the one definition); the deciding rule is read from the
//! object's counter map (`object::maps::COUNTER_MAP_NAME`): one `{u64 packets, u64 bytes}`
//! entry per rule and a last one for the default, exactly one of which gains one packet
//! per run.
//!
//! **Invariant:** an [`Outcome`] is returned only when the return value is a verdict of
//! the hook and exactly one counter entry moved by one packet; anything else is a
//! [`RunError`] (a pfc bug), never a verdict. Whether the outcome agrees with the
//! interpreter is the caller's question (`pfc test`, the differential tests).

use thiserror::Error;

pub use pfc_compiler::eval::Outcome;
use pfc_compiler::object::maps::{COUNTER_MAP_NAME, LIMIT_STATS_MAP_NAME};
use pfc_compiler::object::{ProgramType, Verdict};
use pfc_compiler::program::dynamic::{self, Family};
use pfc_compiler::program::limit::LimitStats;
use pfc_compiler::program::DynamicKind;

use crate::kernel::{self, KernelError, KernelProgram, SkipReason};
use crate::vm::{self, Vm, VmError};
use pfc_compiler::object::BpfObject;

/// What runs the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// rbpf, unprivileged: its JIT when pfc's verifier accepts the code, else its
    /// interpreter.
    Vm,
    /// rbpf's interpreter, even where the JIT could run.
    VmInterpreter,
    /// The kernel's `BPF_PROG_TEST_RUN` (root or CAP_BPF).
    Kernel,
}

impl Backend {
    /// The name reports use: "rbpf VM" or "kernel".
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
    /// The kernel refused the object (a pfc bug when pfc's own verifier accepted it).
    #[error("the kernel refused the compiled object")]
    Kernel {
        /// libbpf's and the verifier's complaint.
        #[source]
        source: KernelError,
    },
    /// The keys of a static set the object holds in a map, or the values of a classifier
    /// table, cannot be read from it (a damaged object, or a pfc bug).
    #[error("the object's static-set or classifier-table contents cannot be read")]
    SetContents {
        /// What is wrong with them.
        #[source]
        source: pfc_compiler::object::ReadError,
    },
}

impl SetupError {
    /// Whether this is a pfc bug rather than a limit or missing privileges.
    pub fn is_internal(&self) -> bool {
        match self {
            SetupError::Kernel { .. } | SetupError::SetContents { .. } => true,
            SetupError::Vm { source } => !matches!(source, VmError::ProgramTooLong { .. }),
            SetupError::Privileges { .. } => false,
        }
    }
}

/// What can go wrong running one frame: each one is a pfc bug.
#[derive(Debug, Error)]
pub enum RunError {
    /// The program returned something that is neither pass nor drop for its hook.
    #[error("the {backend} returned {value}, which is neither pass nor drop for this hook")]
    ReturnValue {
        /// Which backend ([`Backend::name`]).
        backend: &'static str,
        /// The return value.
        value: u64,
    },
    /// The counters did not move by exactly one packet in one entry.
    #[error("the {backend}'s counters moved at entries {moved:?}; exactly one should gain one packet")]
    Counters {
        /// Which backend ([`Backend::name`]).
        backend: &'static str,
        /// The entries whose packet count changed.
        moved: Vec<usize>,
    },
    /// The object has no counter map, so the deciding rule cannot be read.
    #[error("the object has no counter map `{COUNTER_MAP_NAME}`: it was compiled without counters")]
    NoCounters,
    /// rbpf failed on the frame.
    #[error("the rbpf VM failed")]
    Vm {
        /// rbpf's complaint.
        #[source]
        source: VmError,
    },
    /// The backend cannot deliver a VLAN tag in the context ([`Executor::set_vlan_offload`]).
    #[error("the {backend} cannot deliver a frame's VLAN tag in the context")]
    NoVlanOffload {
        /// Which backend ([`Backend::name`]).
        backend: &'static str,
    },
    /// The kernel failed on the frame (other than refusing a short one).
    #[error("the kernel test run failed")]
    Kernel {
        /// libbpf's complaint.
        #[source]
        source: KernelError,
    },
}

/// What one run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran<T = Outcome> {
    /// The object's answer: an [`Outcome`] ([`Executor::run_at`]) or a [`Verdict`]
    /// ([`Executor::verdict_at`]).
    Decided(T),
    /// The kernel refused to run this frame (shorter than `BPF_PROG_TEST_RUN` accepts,
    /// see [`kernel::min_test_run_len`], or longer than it hands a program whole, see
    /// [`kernel::max_test_run_len`]); the reason.
    Refused(String),
}

/// Writes the classifier tables of `object` (parsed from `bytes`) into a program the
/// kernel loaded from those bytes, as `pfc load` does (in `BPF_MAP_UPDATE_BATCH` chunks).
pub fn fill_kernel_tables(kernel: &KernelProgram, object: &BpfObject, bytes: &[u8]) -> Result<(), SetupError> {
    const PER_BATCH: usize = 65_536;
    for (map, size, values) in table_contents(object, bytes)? {
        for (batch, chunk) in values.chunks(PER_BATCH * size).enumerate() {
            let first = (batch * PER_BATCH) as u32;
            let count = (chunk.len() / size) as u32;
            let keys: Vec<u8> = (first..first + count).flat_map(u32::to_le_bytes).collect();
            if kernel.map_update_batch(map, &keys, chunk, count).is_ok() {
                continue;
            }
            for (index, value) in chunk.chunks_exact(size).enumerate() {
                let key = (first + index as u32).to_le_bytes();
                kernel.map_update(map, &key, value).map_err(|source| SetupError::Kernel { source })?;
            }
        }
    }
    Ok(())
}

/// Per classifier table of the object: its map's index, value size and values.
fn table_contents(object: &BpfObject, bytes: &[u8]) -> Result<Vec<(usize, usize, Vec<u8>)>, SetupError> {
    let Ok(manifest) = pfc_compiler::object::read_manifest(bytes) else { return Ok(Vec::new()) };
    let tables = pfc_compiler::object::read_table_contents(bytes, &manifest)
        .map_err(|source| SetupError::SetContents { source })?;
    Ok(tables
        .into_iter()
        .filter(|(table, _)| table.value_size > 0)
        .filter_map(|(table, values)| Some((object.map_index(&table.map)?, table.value_size as usize, values)))
        .collect())
}

/// One counter entry: what a rule (or the default, last) matched so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
}

enum Runner<'obj> {
    Vm(Box<Vm<'obj>>),
    Kernel(Box<KernelProgram>),
}

/// Runs frames through one object, VM or kernel alike.
pub struct Executor<'obj> {
    runner: Runner<'obj>,
    backend: Backend,
    program_type: ProgramType,
    /// The counter map's index, when the object has one.
    counter_map: Option<usize>,
    /// The rate-limit statistics map's index, when the object has one.
    limit_stats_map: Option<usize>,
    /// Packets per counter entry after the last run.
    counts: Vec<u64>,
    /// The counters read after this run; swapped with `counts`, so runs allocate nothing.
    scratch: Vec<u64>,
}

impl<'obj> Executor<'obj> {
    /// An executor for `object`, parsed from `object_bytes` (the bytes pfc ships; the
    /// kernel loads those).
    pub fn new(object: &'obj BpfObject, object_bytes: &[u8], backend: Backend) -> Result<Executor<'obj>, SetupError> {
        let runner = match backend {
            Backend::Vm | Backend::VmInterpreter => {
                let wanted = if backend == Backend::Vm { vm::Backend::Jit } else { vm::Backend::Interpreter };
                let vm = Vm::with_backend(object, wanted).map_err(|source| SetupError::Vm { source })?;
                Runner::Vm(Box::new(vm))
            }
            Backend::Kernel => {
                kernel::privileges().map_err(|source| SetupError::Privileges { source })?;
                let loaded = KernelProgram::load(object_bytes).map_err(|source| SetupError::Kernel { source })?;
                Runner::Kernel(Box::new(loaded))
            }
        };
        let counter_map = object.map_index(COUNTER_MAP_NAME);
        let mut executor = Executor {
            runner,
            backend,
            program_type: object.program_type,
            counter_map,
            limit_stats_map: object.map_index(LIMIT_STATS_MAP_NAME),
            counts: Vec::new(),
            scratch: Vec::new(),
        };
        if let Some(map) = counter_map {
            let mut counts = Vec::new();
            executor.read_counts(map, &mut counts).map_err(|error| match error {
                ReadError::Vm(source) => SetupError::Vm { source },
                ReadError::Kernel(source) => SetupError::Kernel { source },
            })?;
            executor.scratch = vec![0; counts.len()];
            executor.counts = counts;
        }
        executor.fill_fixed_sets(object, object_bytes)?;
        executor.fill_tables(object, object_bytes)?;
        Ok(executor)
    }

    /// Writes the keys of every static set the object holds in a map (from its
    /// `.pfc.sets` section, into its family's map, as `pfc load` does); an object without a pfc manifest, or
    /// whose manifest names no such set, gets nothing.
    fn fill_fixed_sets(&mut self, object: &BpfObject, bytes: &[u8]) -> Result<(), SetupError> {
        let Ok(manifest) = pfc_compiler::object::read_manifest(bytes) else { return Ok(()) };
        let Some(sets) = &manifest.dynamic_sets else { return Ok(()) };
        let contents = pfc_compiler::object::read_set_contents(bytes, &manifest)
            .map_err(|source| SetupError::SetContents { source })?;
        for set in sets.sets.iter().filter(|set| set.contents.is_some()) {
            let keys = contents.get(set.index as usize).map_or(&[][..], Vec::as_slice);
            let kind = if set.kind == "prefixes" { DynamicKind::Prefixes } else { DynamicKind::Values };
            for map in &set.maps {
                let (Some(family), Some(index)) = (Family::from_name(&map.family), object.map_index(&map.map)) else {
                    continue;
                };
                let held: Vec<Vec<u8>> = keys
                    .iter()
                    .filter_map(|key| dynamic::map_key(kind, key.as_slice().try_into().ok()?))
                    .filter(|(key_family, _)| *key_family == family)
                    .map(|(_, map_key)| map_key.as_bytes().to_vec())
                    .collect();
                self.map_update_all(index, &held)?;
            }
        }
        Ok(())
    }

    /// Writes the values of every array the object's manifest lists in `tables` (the
    /// table-driven classifier's nodes and rules), as `pfc load` does.
    fn fill_tables(&mut self, object: &BpfObject, bytes: &[u8]) -> Result<(), SetupError> {
        match &mut self.runner {
            Runner::Vm(vm) => {
                for (map, size, values) in table_contents(object, bytes)? {
                    for (index, value) in values.chunks_exact(size).enumerate() {
                        vm.map_update(map, &(index as u32).to_le_bytes(), value)
                            .map_err(|source| SetupError::Vm { source })?;
                    }
                }
                Ok(())
            }
            Runner::Kernel(kernel) => fill_kernel_tables(kernel, object, bytes),
        }
    }

    /// Sets `keys` in map `map`, each to the value pfc writes for a set element; in the
    /// kernel in batches where the map type allows.
    fn map_update_all(&mut self, map: usize, keys: &[Vec<u8>]) -> Result<(), SetupError> {
        use pfc_compiler::program::dynamic::VALUE;
        match &mut self.runner {
            Runner::Vm(vm) => keys
                .iter()
                .try_for_each(|key| vm.map_update(map, key, &VALUE))
                .map_err(|source| SetupError::Vm { source }),
            Runner::Kernel(kernel) => {
                let batched = keys.chunks(65_536).all(|chunk| {
                    let flat: Vec<u8> = chunk.iter().flatten().copied().collect();
                    let values: Vec<u8> = chunk.iter().flat_map(|_| VALUE).collect();
                    kernel.map_update_batch(map, &flat, &values, chunk.len() as u32).is_ok()
                });
                if batched {
                    return Ok(());
                }
                let mut each = keys.iter().map(|key| kernel.map_update(map, key, &VALUE));
                each.try_for_each(|written| written).map_err(|source| SetupError::Kernel { source })
            }
        }
    }

    /// The backend this executor was made for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What runs the object: "jit" or "interpreter" (rbpf), or "kernel".
    pub fn executor(&self) -> &'static str {
        match &self.runner {
            Runner::Vm(vm) => match vm.backend() {
                vm::Backend::Jit => "jit",
                vm::Backend::Interpreter => "interpreter",
            },
            Runner::Kernel(_) => "kernel",
        }
    }

    /// Whether the object counts its rules (has a counter map), so [`Executor::run_at`]
    /// can say which rule decided.
    pub fn counts_rules(&self) -> bool {
        self.counter_map.is_some()
    }

    /// Runs one frame arriving at `now_ns` (what `bpf_ktime_get_ns` returns in the VM;
    /// the kernel runs on its own clock) and reads its verdict and deciding rule.
    pub fn run_at(&mut self, frame: &[u8], now_ns: u64) -> Result<Ran, RunError> {
        let map = self.counter_map.ok_or(RunError::NoCounters)?;
        let verdict = match self.verdict_at(frame, now_ns)? {
            Ran::Decided(verdict) => verdict,
            Ran::Refused(reason) => return Ok(Ran::Refused(reason)),
        };
        let mut now = std::mem::take(&mut self.scratch);
        let read = self.read_counts(map, &mut now).map_err(RunError::from);
        let moved = read.and_then(|()| {
            moved_entry(&self.counts, &now).map_err(|moved| RunError::Counters { backend: self.backend.name(), moved })
        });
        // Keep the newest counts even on an error, so one bad run is reported once.
        self.scratch = std::mem::replace(&mut self.counts, now);
        let entry = moved?;
        let rules = self.counts.len().saturating_sub(1);
        Ok(Ran::Decided(Outcome { verdict, rule: (entry < rules).then_some(entry) }))
    }

    /// Under TC, delivers each frame's outermost VLAN tag in the context as the kernel
    /// does at tc ingress ([`Vm::set_vlan_offload`]); the rbpf VM only (the kernel's test
    /// run builds its skb from the bytes and takes no tag in the context).
    pub fn set_vlan_offload(&mut self, on: bool) -> Result<(), RunError> {
        match &mut self.runner {
            Runner::Vm(vm) => {
                vm.set_vlan_offload(on);
                Ok(())
            }
            Runner::Kernel(_) => Err(RunError::NoVlanOffload { backend: self.backend.name() }),
        }
    }

    /// Like [`Executor::run_at`] at time 0.
    pub fn run(&mut self, frame: &[u8]) -> Result<Ran, RunError> {
        self.run_at(frame, 0)
    }

    /// Runs one frame arriving at `now_ns` and reads only its verdict (the counters are
    /// not read, so objects without them run too, and a run costs no map reads).
    pub fn verdict_at(&mut self, frame: &[u8], now_ns: u64) -> Result<Ran<Verdict>, RunError> {
        let value = match &mut self.runner {
            Runner::Vm(vm) => vm.run_at(frame, now_ns).map_err(|source| RunError::Vm { source })?.return_value,
            Runner::Kernel(kernel) => match kernel.test_run(frame) {
                Ok(value) => u64::from(value),
                Err(error @ (KernelError::PacketTooShort { .. } | KernelError::PacketTooLong { .. })) => {
                    return Ok(Ran::Refused(error.to_string()))
                }
                Err(source) => return Err(RunError::Kernel { source }),
            },
        };
        let verdict =
            self.program_type.verdict(value).ok_or(RunError::ReturnValue { backend: self.backend.name(), value })?;
        Ok(Ran::Decided(verdict))
    }

    /// The records the object wrote to its ring buffer since the last call (its log
    /// events), in order; empty when it has no ring buffer.
    pub fn take_events(&mut self) -> Result<Vec<Vec<u8>>, RunError> {
        match &mut self.runner {
            Runner::Vm(vm) => Ok(vm.take_events()),
            Runner::Kernel(kernel) => kernel.take_events().map_err(|source| RunError::Kernel { source }),
        }
    }

    /// Sets one entry of map `map` (`BPF_ANY`): how dynamic sets get their contents.
    pub fn map_update(&mut self, map: usize, key: &[u8], value: &[u8]) -> Result<(), RunError> {
        match &mut self.runner {
            Runner::Vm(vm) => vm.map_update(map, key, value).map_err(|source| RunError::Vm { source }),
            Runner::Kernel(kernel) => kernel.map_update(map, key, value).map_err(|source| RunError::Kernel { source }),
        }
    }

    /// Removes one entry of map `map`, if present.
    pub fn map_delete(&mut self, map: usize, key: &[u8]) -> Result<(), RunError> {
        match &mut self.runner {
            Runner::Vm(vm) => vm.map_delete(map, key).map(drop).map_err(|source| RunError::Vm { source }),
            Runner::Kernel(kernel) => kernel.map_delete(map, key).map_err(|source| RunError::Kernel { source }),
        }
    }

    /// Every counter entry (one per rule, the default last), packets and bytes; per-CPU
    /// counters summed over CPUs. [`RunError::NoCounters`] without a counter map.
    pub fn counters(&self) -> Result<Vec<Counter>, RunError> {
        let map = self.counter_map.ok_or(RunError::NoCounters)?;
        let values = match &self.runner {
            Runner::Vm(vm) => vm.map_values(map).map_err(|source| RunError::Vm { source })?,
            Runner::Kernel(kernel) => kernel.map_values(map).map_err(|source| RunError::Kernel { source })?,
        };
        Ok(values.iter().map(|value| Counter { packets: le_word(value, 0), bytes: le_word(value, 8) }).collect())
    }

    /// Every entry of the object's rate-limit statistics (`pfc_limit_stats`), by limit
    /// index, summed over CPUs: packets over and within each rule limit's rate. Empty
    /// when the object has no such map (no rule with a limit, or an older object).
    pub fn limit_stats(&self) -> Result<Vec<LimitStats>, RunError> {
        let Some(map) = self.limit_stats_map else { return Ok(Vec::new()) };
        let values = match &self.runner {
            Runner::Vm(vm) => vm.map_values(map).map_err(|source| RunError::Vm { source })?,
            Runner::Kernel(kernel) => kernel.map_values(map).map_err(|source| RunError::Kernel { source })?,
        };
        Ok(values.iter().map(|value| LimitStats { over: le_word(value, 0), within: le_word(value, 8) }).collect())
    }

    /// Reads the packet count of every counter entry into `counts`. The VM reads its
    /// map memory in place into the existing buffer (no allocation once `counts` has
    /// the map's length); the kernel path copies through libbpf.
    fn read_counts(&self, map: usize, counts: &mut Vec<u64>) -> Result<(), ReadError> {
        match &self.runner {
            Runner::Vm(vm) => {
                if counts.is_empty() {
                    // First read: learn the number of entries.
                    let entries = vm.map_values(map).map_err(ReadError::Vm)?.len();
                    counts.resize(entries, 0);
                }
                let written = vm.array_words(map, counts).map_err(ReadError::Vm)?;
                counts.truncate(written);
            }
            Runner::Kernel(kernel) => {
                let values = kernel.map_values(map).map_err(ReadError::Kernel)?;
                counts.clear();
                counts.extend(values.iter().map(|value| le_word(value, 0)));
            }
        }
        Ok(())
    }
}

/// Reading the counters failed; becomes a [`SetupError`] or a [`RunError`].
enum ReadError {
    Vm(VmError),
    Kernel(KernelError),
}

impl From<ReadError> for RunError {
    fn from(error: ReadError) -> RunError {
        match error {
            ReadError::Vm(source) => RunError::Vm { source },
            ReadError::Kernel(source) => RunError::Kernel { source },
        }
    }
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

/// The little-endian u64 at `offset` of a map value, zero-extended when it is cut.
fn le_word(value: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    let bytes = value.get(offset..).unwrap_or(&[]);
    let len = bytes.len().min(8);
    word[..len].copy_from_slice(&bytes[..len]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_entry_must_gain_one_packet() {
        assert_eq!(moved_entry(&[1, 0, 4], &[1, 1, 4]), Ok(1));
        assert_eq!(moved_entry(&[1, 0, 4], &[1, 0, 4]), Err(vec![]));
        assert_eq!(moved_entry(&[1, 0, 4], &[2, 1, 4]), Err(vec![0, 1]));
        assert_eq!(moved_entry(&[1, 0, 4], &[1, 2, 4]), Err(vec![1]));
    }

    #[test]
    fn words_are_zero_extended() {
        assert_eq!(le_word(&[1, 0, 0, 0, 0, 0, 0, 0, 5], 8), 5);
        assert_eq!(le_word(&[1, 2], 0), 0x0201);
        assert_eq!(le_word(&[1, 2], 8), 0);
    }
}
