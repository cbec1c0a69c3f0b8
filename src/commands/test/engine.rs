//! Verdicts of the shipped object, checked against the interpreter. Input: the compiled
//! object, its checked program and one frame at a time; output: the object's verdict and
//! deciding rule as `pfc_runtime::Executor` reads them (VM or kernel alike).
//!
//! **Invariant:** every answer [`Engine::run_at`] returns agrees with
//! `pfc_compiler::eval::evaluate` in verdict and rule, in log events, and in the packets
//! each rule limit counted over and within its rate (`pfc_limit_stats`); any
//! disagreement is a [`RunError`] (an internal compiler error), never a verdict.

use pfc_compiler::eval::{evaluate_at, Outcome, State};
use pfc_compiler::program::dynamic::{self, Family};
use pfc_compiler::program::limit::LimitStats;
use pfc_compiler::program::log::{Event, EventError};
use pfc_compiler::program::{DynamicElement, Program};
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
    /// The object has no map for a dynamic set of its program (a pfc bug).
    #[error("the compiled object has no map `{name}` for a dynamic set")]
    NoSetMap {
        /// The map name expected.
        name: String,
    },
    /// The object sent a different number of log events than the interpreter decided.
    #[error("the {backend} sent {got} log events for the packet; the interpreter decided {want}")]
    Events {
        /// Which executor.
        backend: &'static str,
        /// Events the object sent.
        got: usize,
        /// Events the interpreter decided (0 or 1).
        want: usize,
    },
    /// The object's rate-limit statistics differ from the interpreter's counts.
    #[error(
        "the {backend} counted {} packets over and {} within the rate of limit {limit}; the interpreter {} and {}",
        got.over, got.within, want.over, want.within
    )]
    LimitStats {
        /// Which executor.
        backend: &'static str,
        /// The limit's index.
        limit: usize,
        /// The object's counts (summed over CPUs).
        got: LimitStats,
        /// The interpreter's.
        want: LimitStats,
    },
    /// A log event that does not decode.
    #[error("the {backend} wrote a log event that does not decode")]
    BadEvent {
        /// Which executor.
        backend: &'static str,
        /// What is wrong with it.
        #[source]
        source: EventError,
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
    /// The checked program; its dynamic sets hold what the object's maps hold now.
    program: Program,
    /// The rule file's contents of each dynamic set (a case without `sets` gets them).
    initial_sets: Vec<Vec<DynamicElement>>,
    /// The object's map index of each dynamic set's generation-0 map per family (`None`
    /// until first looked up).
    set_maps: Option<Vec<Vec<(Family, usize)>>>,
    /// The object, for its map names.
    object: &'obj BpfObject,
    executor: Executor<'obj>,
    /// The interpreter's rate-limit buckets, kept across runs as the object's maps are.
    state: State,
    /// The log events of the last run.
    events: Vec<Event>,
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
        let initial_sets = program.dynamic_sets.iter().map(|set| set.elements.clone()).collect();
        let mut own = program.clone();
        // The maps start empty: the first run (or `use_sets`) writes the rule file's contents.
        own.dynamic_sets.iter_mut().for_each(|set| set.set_elements(Vec::new()));
        let state = State::new(program);
        Ok(Engine { program: own, initial_sets, set_maps: None, object, executor, state, events: Vec::new() })
    }

    /// Gives every dynamic set the contents of `sets` (by set index), or the rule file's
    /// when `sets` does not name it, in the object's maps and the interpreter alike.
    pub fn use_sets(&mut self, sets: &[(usize, Vec<DynamicElement>)]) -> Result<(), RunError> {
        let maps = match &self.set_maps {
            Some(maps) => maps.clone(),
            None => {
                let sets = self.program.dynamic_sets.iter().enumerate();
                let maps = sets
                    .map(|(index, set)| {
                        let generation_0 = set.parts().into_iter().filter(|part| part.generation == 0);
                        generation_0
                            .map(|part| {
                                let name = part.map_name(index);
                                let map = self.object.map_index(&name).ok_or(RunError::NoSetMap { name })?;
                                Ok((part.family, map))
                            })
                            .collect::<Result<Vec<(Family, usize)>, RunError>>()
                    })
                    .collect::<Result<Vec<_>, RunError>>()?;
                self.set_maps = Some(maps.clone());
                maps
            }
        };
        for (index, set_maps) in maps.iter().enumerate() {
            let wanted = sets
                .iter()
                .find(|(set, _)| *set == index)
                .map_or_else(|| self.initial_sets[index].clone(), |(_, elements)| elements.clone());
            if wanted != self.program.dynamic_sets[index].elements {
                self.write_set(index, set_maps, wanted)?;
            }
        }
        Ok(())
    }

    /// Replaces dynamic set `index`'s contents in its generation-0 `maps` (one per
    /// family): deletes the keys it no longer holds, adds the new ones (tests never flip
    /// the generation).
    fn write_set(
        &mut self,
        index: usize,
        maps: &[(Family, usize)],
        elements: Vec<DynamicElement>,
    ) -> Result<(), RunError> {
        let set = &mut self.program.dynamic_sets[index];
        let kind = set.kind;
        let old = set.keys();
        set.set_elements(elements);
        let new = set.keys();
        let map_of = |key: &[u8; dynamic::KEY_SIZE]| {
            let (family, map_key) = dynamic::map_key(kind, key)?;
            Some((maps.iter().find(|(f, _)| *f == family)?.1, map_key))
        };
        for key in old.iter().filter(|key| new.binary_search(key).is_err()) {
            if let Some((map, map_key)) = map_of(key) {
                self.executor.map_delete(map, map_key.as_bytes())?;
            }
        }
        for key in new.iter().filter(|key| old.binary_search(key).is_err()) {
            if let Some((map, map_key)) = map_of(key) {
                self.executor.map_update(map, map_key.as_bytes(), &dynamic::VALUE)?;
            }
        }
        Ok(())
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
        if self.set_maps.is_none() {
            self.use_sets(&[])?;
        }
        let want = evaluate_at(&self.program, packet, &mut self.state, now_ns);
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
        self.events.clear();
        for record in self.executor.take_events()? {
            let event =
                Event::decode(&record).map_err(|source| RunError::BadEvent { backend: backend.name(), source })?;
            self.events.push(event);
        }
        let logged = usize::from(self.state.logged);
        if self.events.len() != logged && !own_clock {
            return Err(RunError::Events { backend: backend.name(), got: self.events.len(), want: logged });
        }
        if !own_clock {
            self.check_limit_stats()?;
        }
        Ok(Ran::Decided(got))
    }

    /// The object's limit statistics equal the interpreter's counts (every entry: a log
    /// limit's stays at zero in both; an object without the map has nothing to check).
    fn check_limit_stats(&self) -> Result<(), RunError> {
        let got = self.executor.limit_stats()?;
        let want = &self.state.limit_stats;
        let differs = (0..got.len()).find(|&limit| got[limit] != want.get(limit).copied().unwrap_or_default());
        match differs {
            Some(limit) => Err(RunError::LimitStats {
                backend: self.executor.backend().name(),
                limit,
                got: got[limit],
                want: want.get(limit).copied().unwrap_or_default(),
            }),
            None => Ok(()),
        }
    }

    /// The log events the last run sent (docs/testing.md, "Logging").
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}
