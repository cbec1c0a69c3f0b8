//! Dynamic sets of loaded filters: the rule file's contents (or the replaced filter's)
//! written into a new program's set maps before it runs, and `pfc set`'s changes to a
//! running filter's sets.
//!
//! Each set has a map per family of values and per generation
//! (`pfc_compiler::program::dynamic::Part`; the manifest lists them), holding that
//! family's map keys; `pfc_set_gen` holds each set's `struct pfc_set_state { generation,
//! elements, changed_ns }`. The program reads the generation bit before each lookup and
//! looks the packet up in that generation's map, so:
//!
//! - **load**: the contents go in as generation 0 before the program is attached (or
//!   swapped in), with the state `{0, count, now}`;
//! - **replace** of a rule file: a set whose name, type and kind are unchanged keeps the
//!   replaced filter's contents: its current generation's entries are copied into the
//!   new program's generation-0 maps before the swap; entries `pfc set` adds to the old
//!   map between that copy and the swap are not carried;
//! - **add / del**: entries of the current generation are added (`BPF_NOEXIST`, so a
//!   present one is counted, not rewritten) or deleted in place; each packet sees the set
//!   before or after each element's change. Neither reads the set: the state's element
//!   count says whether the new elements fit, and the set is read only when they might
//!   not (to tell the present ones). The count is marked unsettled
//!   ([`dynamic::ELEMENTS_UNSETTLED`]) while the entries change, so one a killed `pfc set`
//!   left behind is recounted from the map by the next reader;
//! - **replace / flush**: the new contents are written into the other generation's maps,
//!   the state's generation bit is flipped (one 16-byte array update, which a packet sees
//!   whole, with the new count), then the old generation's maps are emptied: packets see
//!   the old contents or the new, never a mix.
//!
//! Here an element is its element key (`SetKey`, one size for every family); only
//! `SetMaps` turns keys into the map keys of each family's map and back.
//!
//! Keys go into a map in [`trie_order`] (family, address, prefix length): a trie insert
//! then walks the nodes the previous one just touched, about 3x faster at 1M prefixes than
//! in random order (`cargo bench -p pfc-runtime --bench dynamic_sets`). The maps of a set
//! are written, read and deleted each on its own thread ([`BpfSys::map_jobs`]: the kernel
//! locks each map apart), and a replace reads the current generation while it writes the
//! next. Every writer holds the interface's writer lock, so two `pfc set` runs never
//! interleave.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use pfc_compiler::program::dynamic::{self, Family, Part, ELEMENTS_UNSETTLED, KEY_SIZE, VALUE};
use pfc_compiler::program::DynamicKind;

use super::guard::{pause_at, Step};
use super::{AttachError, BpfSys, Existing, Filters, LoadRequest, MapDone, MapJob, ProgInfo};
use crate::pins::{Record, SetManifest, SetsManifest};

/// An element key (`pfc_compiler::program::dynamic`): what the runtime names an element by.
pub type SetKey = [u8; KEY_SIZE];

/// What happened to each dynamic set at a load.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SetsFilled {
    /// Sets that kept the replaced filter's contents, with their element counts.
    pub kept: Vec<(String, usize)>,
    /// Sets given the rule file's contents, with their element counts.
    pub from_file: Vec<(String, usize)>,
    /// Static sets held in maps, given the object's keys, with their counts.
    pub fixed: Vec<(String, usize)>,
}

impl SetsFilled {
    /// The lines `pfc load` prints.
    pub fn notices(&self) -> Vec<String> {
        let list = |sets: &[(String, usize)]| {
            sets.iter().map(|(name, count)| format!("{name} ({count})")).collect::<Vec<_>>().join(", ")
        };
        let mut notices = Vec::new();
        if !self.kept.is_empty() {
            notices.push(format!("dynamic sets kept from the replaced filter: {}", list(&self.kept)));
        }
        if !self.from_file.is_empty() {
            notices.push(format!("dynamic sets loaded from the rule file: {}", list(&self.from_file)));
        }
        if !self.fixed.is_empty() {
            notices.push(format!("static sets held in maps: {}", list(&self.fixed)));
        }
        notices
    }
}

/// Now, in Unix nanoseconds (0 if the clock is before 1970).
fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The order keys go into a map in: by tag (family, generation), address, then prefix
/// length, so a prefix comes right before the longer prefixes inside it (a trie's
/// parent before its children) and each insert walks the path the previous one took.
pub fn trie_order(a: &SetKey, b: &SetKey) -> Ordering {
    order_key(a).cmp(&order_key(b))
}

/// [`trie_order`] as two integers: tag and data bytes big-endian, then the prefix length.
fn order_key(key: &SetKey) -> (u128, u64) {
    let word = |at: usize| u32::from_be_bytes([key[at], key[at + 1], key[at + 2], key[at + 3]]);
    let high =
        u128::from(word(4)) << 96 | u128::from(word(8)) << 64 | u128::from(word(12)) << 32 | u128::from(word(16));
    let length = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
    (high, u64::from(word(20)) << 32 | u64::from(length))
}

/// The key whose [`order_key`] this is.
fn from_order_key((high, low): (u128, u64)) -> SetKey {
    let mut key = [0u8; KEY_SIZE];
    key[0..4].copy_from_slice(&(low as u32).to_le_bytes());
    key[4..20].copy_from_slice(&high.to_be_bytes());
    key[20..24].copy_from_slice(&((low >> 32) as u32).to_be_bytes());
    key
}

/// `keys` sorted in [`trie_order`], without duplicates. Each key's order (two integers) is
/// made once and the integers sorted (not two order keys made per comparison). Given a `Vec`,
/// it is freed once read; given a slice, nothing is copied.
pub fn in_trie_order(keys: impl AsRef<[SetKey]>) -> Vec<SetKey> {
    let mut ordered: Vec<(u128, u64)> = keys.as_ref().iter().map(order_key).collect();
    drop(keys);
    ordered.sort_unstable();
    ordered.dedup();
    ordered.into_iter().map(from_order_key).collect()
}

/// Whether `key` is among `sorted` (in [`trie_order`]).
fn holds(sorted: &[SetKey], key: &SetKey) -> bool {
    sorted.binary_search_by_key(&order_key(key), order_key).is_ok()
}

/// How many keys of `a` are not in `b`, both sorted in [`trie_order`] (a merge).
fn only_in(a: &[SetKey], b: &[SetKey]) -> usize {
    let (mut only, mut j) = (0, 0);
    for key in a {
        let wanted = order_key(key);
        while j < b.len() && order_key(&b[j]) < wanted {
            j += 1;
        }
        if j == b.len() || order_key(&b[j]) != wanted {
            only += 1;
        }
    }
    only
}

/// A set's maps in a running program: one per family and generation, and the generation
/// array.
struct SetMaps {
    kind: DynamicKind,
    /// Each map's part and id.
    parts: Vec<(Part, u32)>,
    /// `None` only for a static set held in a map when no set of the program is dynamic:
    /// the program never reads the generation array then, so the kernel does not bind it.
    generations: Option<u32>,
}

impl SetMaps {
    /// The map of `family` in `generation`, or an error naming the family (a key of a
    /// family the set does not hold: the callers check elements before).
    fn map(&self, family: Family, generation: u32) -> io::Result<u32> {
        let part = Part { family, generation };
        let found = self.parts.iter().find(|(p, _)| *p == part).map(|(_, id)| *id);
        found.ok_or_else(|| {
            let message = format!("no {} map of generation {generation}", family.as_str());
            io::Error::new(io::ErrorKind::InvalidInput, message)
        })
    }

    /// The set's maps of `generation`: part and id.
    fn of_generation(&self, generation: u32) -> Vec<(Part, u32)> {
        self.parts.iter().filter(|(part, _)| part.generation == generation).copied().collect()
    }

    /// The element keys of what [`MapJob::Read`]s of `parts` (one each, in order) read.
    fn keys_read(&self, parts: &[(Part, u32)], done: Vec<MapDone>) -> Vec<SetKey> {
        let mut keys = Vec::new();
        for ((part, _), done) in parts.iter().zip(done) {
            let held = done.into_keys();
            let size = part.family.map_key_size(self.kind);
            keys.extend(held.chunks_exact(size).filter_map(|key| dynamic::from_map_key(self.kind, part.family, key)));
        }
        keys
    }

    /// `keys` (in [`trie_order`], so each family's keys are together) as each family's
    /// map ids in `generation` and map keys back to back.
    fn by_map(&self, keys: &[SetKey], generation: u32) -> io::Result<Vec<(u32, Vec<u8>)>> {
        let mut maps: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut current: Option<Family> = None;
        for key in keys {
            let bad = || io::Error::new(io::ErrorKind::InvalidInput, "a key pfc never writes");
            let (family, map_key) = dynamic::map_key(self.kind, key).ok_or_else(bad)?;
            if current != Some(family) {
                maps.push((self.map(family, generation)?, Vec::with_capacity(keys.len() * map_key.as_bytes().len())));
                current = Some(family);
            }
            if let Some((_, bytes)) = maps.last_mut() {
                bytes.extend_from_slice(map_key.as_bytes());
            }
        }
        Ok(maps)
    }
}

/// A set's entry in the generation array, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    /// The current generation (0 or 1).
    generation: u32,
    /// The recorded element count, `None` when a killed `pfc set` left it unsettled.
    count: Option<usize>,
}

impl<S: BpfSys> Filters<S> {
    /// Writes each dynamic set of `request` into `prog`'s maps: the replaced filter's
    /// contents for a set of the same name, type and kind, else the rule file's.
    pub(super) fn fill_sets(
        &self,
        old: Option<(&Record, &ProgInfo)>,
        prog: &ProgInfo,
        request: &LoadRequest<'_>,
    ) -> Result<SetsFilled, AttachError> {
        let Some(sets) = &request.manifest.dynamic_sets else { return Ok(SetsFilled::default()) };
        let new_maps = self.sys.set_maps(prog.id).map_err(|source| set_error(&sets.sets[0], source))?;
        let old_sets = old.and_then(|(record, prog)| {
            let manifest = record.manifest.dynamic_sets.as_ref()?;
            let maps = self.sys.set_maps(prog.id).ok()?;
            Some((manifest, maps))
        });
        let mut filled = SetsFilled::default();
        let mut states = Vec::new();
        for set in &sets.sets {
            let maps = match set_maps(sets, set, &new_maps) {
                // No rule tests it: the program has no map to fill (language.md, dynamic sets).
                Err(AttachError::UntestedSet { .. }) => continue,
                found => found?,
            };
            // Only a dynamic set carries over: a static set held in a map is the rule file's.
            let dynamic = set.contents.is_none();
            let carried = old_sets.as_ref().filter(|_| dynamic).and_then(|(manifest, old_maps)| {
                let same = manifest.sets.iter().find(|o| {
                    o.name == set.name
                        && o.element_type == set.element_type
                        && o.kind == set.kind
                        && o.contents.is_none()
                })?;
                let old = set_maps(manifest, same, old_maps).ok()?;
                let state = self.state(same, &old).ok()?;
                self.current_keys(state.generation, &old).ok()
            });
            // The rule file's keys are sorted from the request's (not a copy of them),
            // or taken as they are when they come in trie order (`pfc load` sorts a set
            // file's lines as it reads them).
            let (keys, kept) = match carried {
                Some(keys) => (Cow::Owned(in_trie_order(keys)), true),
                None => {
                    let given = request.set_contents.get(set.index as usize).map_or(&[][..], Vec::as_slice);
                    let sorted = given.windows(2).all(|pair| order_key(&pair[0]) < order_key(&pair[1]));
                    (if sorted { Cow::Borrowed(given) } else { Cow::Owned(in_trie_order(given)) }, false)
                }
            };
            // A replaced filter's set may hold more than the new size allows: cut.
            let keys = &keys[..keys.len().min(set.size as usize)];
            self.write_keys(&maps, keys, 0, Existing::Overwrite).map_err(|source| set_error(set, source))?;
            let count = keys.len();
            states.push((maps.generations, set, count));
            if kept {
                filled.kept.push((set.name.clone(), count));
            } else if !dynamic {
                filled.fixed.push((set.name.clone(), count));
            } else {
                filled.from_file.push((set.name.clone(), count));
            }
        }
        for (generations, set, count) in states {
            self.write_state(set, generations, 0, count as u32).map_err(|source| set_error(set, source))?;
        }
        Ok(filled)
    }

    /// The keys of a set's `generation`: each family's map's (read at the same time), in
    /// the maps' order.
    fn current_keys(&self, generation: u32, maps: &SetMaps) -> io::Result<Vec<SetKey>> {
        let parts = maps.of_generation(generation);
        let jobs: Vec<MapJob<'_>> = parts.iter().map(|(_, id)| MapJob::Read { map_id: *id }).collect();
        Ok(maps.keys_read(&parts, self.run_jobs(&jobs)?))
    }

    /// Runs `jobs` at the same time ([`BpfSys::map_jobs`]): every job's result, or the
    /// first job's error.
    fn run_jobs(&self, jobs: &[MapJob<'_>]) -> io::Result<Vec<MapDone>> {
        self.sys.map_jobs(jobs).into_iter().collect()
    }

    /// Writes `keys` (in [`trie_order`]) into their families' maps of `generation` (each
    /// family's map at the same time); returns how many were written
    /// ([`BpfSys::write_entries`]).
    fn write_keys(&self, maps: &SetMaps, keys: &[SetKey], generation: u32, existing: Existing) -> io::Result<usize> {
        let writes = maps.by_map(keys, generation)?;
        let jobs = write_jobs(&writes, existing);
        Ok(self.run_jobs(&jobs)?.iter().map(MapDone::count).sum())
    }

    /// Deletes `keys` (in [`trie_order`]) from their families' maps of `generation` (each
    /// family's map at the same time); returns how many were present.
    fn delete_keys(&self, maps: &SetMaps, keys: &[SetKey], generation: u32) -> io::Result<usize> {
        let deletes = maps.by_map(keys, generation)?;
        let jobs: Vec<MapJob<'_>> =
            deletes.iter().map(|(id, bytes)| MapJob::Delete { map_id: *id, keys: bytes }).collect();
        Ok(self.run_jobs(&jobs)?.iter().map(MapDone::count).sum())
    }

    /// A set's state in the generation array (an absent entry reads as generation 0, empty).
    fn state(&self, set: &SetManifest, maps: &SetMaps) -> io::Result<State> {
        let Some(generations) = maps.generations else {
            return Ok(State { generation: 0, count: Some(set.size as usize) });
        };
        let value = self.sys.lookup(generations, &set.index.to_le_bytes())?;
        let (generation, elements, _) = value.as_deref().and_then(dynamic::parse_state).unwrap_or((0, 0, 0));
        let count = (elements & ELEMENTS_UNSETTLED == 0).then_some(elements as usize);
        Ok(State { generation: generation & 1, count })
    }

    /// Writes a set's state: its generation and element count (or'ed with
    /// [`ELEMENTS_UNSETTLED`] while entries change), stamped now. Nothing to write without
    /// a generation array (a program whose sets are all static maps).
    fn write_state(
        &self,
        set: &SetManifest,
        generations: Option<u32>,
        generation: u32,
        elements: u32,
    ) -> io::Result<()> {
        let Some(generations) = generations else { return Ok(()) };
        let state = dynamic::state_value(generation, elements, now_ns());
        self.sys.write_entries(generations, &set.index.to_le_bytes(), &state, Existing::Overwrite).map(drop)
    }

    /// The element count of a set in `state`: the recorded one, or the map's entries of the
    /// current generation counted when a killed `pfc set` left it unsettled.
    fn count(&self, state: State, maps: &SetMaps) -> io::Result<usize> {
        match state.count {
            Some(count) => Ok(count),
            None => Ok(self.current_keys(state.generation, maps)?.len()),
        }
    }
}

/// A set of a running filter as `pfc status` shows it: its manifest entry and how many
/// elements it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSize {
    /// The set as the running filter's manifest describes it (name, type, kind, size;
    /// `contents` is `Some` for a static set held in a map).
    pub set: SetManifest,
    /// Elements in the set: the count `pfc_set_gen` records, or the map's entries of the
    /// current generation counted when a `pfc set` left it unsettled (one running now, or
    /// one killed); `None` when the maps could not be read.
    pub count: Option<usize>,
}

impl<S: BpfSys> Filters<S> {
    /// The size of each set (dynamic, or static in a map) of `prog`, which `record`
    /// labels. A reader: no lock, nothing written.
    pub fn set_sizes(&self, prog: &ProgInfo, record: &Record) -> Vec<SetSize> {
        let Some(sets) = &record.manifest.dynamic_sets else { return Vec::new() };
        let maps = self.sys.set_maps(prog.id).ok();
        sets.sets
            .iter()
            .filter_map(|set| {
                let found = maps.as_deref().map(|maps| set_maps(sets, set, maps));
                // A set no rule tests has no map in the running filter: not shown.
                if let Some(Err(AttachError::UntestedSet { .. })) = found {
                    return None;
                }
                let count = found.and_then(Result::ok).and_then(|maps| {
                    let state = self.state(set, &maps).ok()?;
                    self.count(state, &maps).ok()
                });
                Some(SetSize { set: set.clone(), count })
            })
            .collect()
    }
}

/// The map ids of `set` among a program's `pfc_set_*` maps.
fn set_maps(sets: &SetsManifest, set: &SetManifest, maps: &[(String, u32)]) -> Result<SetMaps, AttachError> {
    let id = |name: &str| maps.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    let missing = |what: &str| set_error(set, io::Error::new(io::ErrorKind::NotFound, format!("no map {what}")));
    if set.maps.is_empty() {
        // A record of a filter loaded before sets had a map per family and generation.
        return Err(missing("listed (the filter was loaded by an older pfc: load it again)"));
    }
    if set.contents.is_none() && !set.maps.iter().any(|map| id(&map.map).is_some()) {
        return Err(AttachError::UntestedSet { set: set.name.clone() });
    }
    let mut parts = Vec::new();
    for map in &set.maps {
        let family = Family::from_name(&map.family).ok_or_else(|| missing(&map.map))?;
        parts.push((Part { family, generation: map.generation }, id(&map.map).ok_or_else(|| missing(&map.map))?));
    }
    let kind = if set.kind == "prefixes" { DynamicKind::Prefixes } else { DynamicKind::Values };
    Ok(SetMaps {
        kind,
        parts,
        generations: match id(&sets.generation_map) {
            None if set.contents.is_some() => None,
            found => Some(found.ok_or_else(|| missing(&sets.generation_map))?),
        },
    })
}

/// One [`MapJob::Write`] of each family's map keys ([`SetMaps::by_map`]), with pfc's set value.
fn write_jobs(writes: &[(u32, Vec<u8>)], existing: Existing) -> Vec<MapJob<'_>> {
    writes.iter().map(|(id, bytes)| MapJob::Write { map_id: *id, keys: bytes, value: &VALUE, existing }).collect()
}

fn set_error(set: &SetManifest, source: io::Error) -> AttachError {
    let maps: Vec<&str> = set.maps.iter().map(|map| map.map.as_str()).collect();
    AttachError::SetMap { set: set.name.clone(), map: maps.join(", "), source }
}

/// A change `pfc set` makes to a running filter's dynamic set. Keys are those of
/// generation 0 (`pfc_compiler::program::dynamic::element_key`); the change moves them
/// to the set's current (or next) generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetChange {
    /// Add these keys (those present already are left alone).
    Add(Vec<SetKey>),
    /// Delete these keys (those absent are counted, not an error).
    Delete(Vec<SetKey>),
    /// Make these keys the whole contents, atomically.
    Replace(Vec<SetKey>),
    /// Read the contents.
    List,
    /// Only describe the set: its manifest entry and element count.
    Describe,
}

/// What a [`SetChange`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// The set as the running filter's manifest describes it.
    pub set: SetManifest,
    /// [`SetChange::List`]: the keys of the contents, as generation 0, in [`trie_order`];
    /// empty for the other changes.
    pub keys: Vec<SetKey>,
    /// Elements in the set after the change.
    pub count: usize,
    /// Keys added.
    pub added: usize,
    /// Keys deleted.
    pub deleted: usize,
    /// Keys given that were already present (add) or absent (delete).
    pub unchanged: usize,
}

impl<S: BpfSys> Filters<S> {
    /// Changes (or lists, or describes) dynamic set `name` of pfc's filter on `iface` at
    /// `point`, under the writer lock. Nothing changes when the set does not exist, the
    /// keys would not fit its declared size, or the filter is not pfc's.
    pub fn change_set(
        &self,
        iface: &str,
        point: crate::pins::Hook,
        name: &str,
        change: SetChange,
    ) -> Result<SetOutcome, AttachError> {
        crate::pins::check_iface_name(iface)?;
        let read_only = matches!(change, SetChange::List | SetChange::Describe);
        if !read_only {
            self.check_privileges("changing a dynamic set")?;
        }
        let paths = self.layout.filter(iface, point);
        self.check_dirs(&paths)?;
        let not_loaded = || AttachError::NotLoaded { iface: iface.to_string(), point };
        if !super::present(&paths.dir) && !super::present(&paths.state) {
            return Err(not_loaded());
        }
        let _lock = self.lock(iface, point)?;
        let ifindex = self.ifindex(iface)?;
        let running = self.reconcile(&paths, ifindex)?.ok_or_else(not_loaded)?;
        let record = running.record.ok_or_else(not_loaded)?;
        let sets = record.manifest.dynamic_sets.clone();
        let known = || sets.iter().flat_map(|sets| sets.sets.iter().map(|set| set.name.clone())).collect();
        let Some((sets, set)) =
            sets.as_ref().and_then(|sets| Some((sets, sets.sets.iter().find(|set| set.name == name)?.clone())))
        else {
            return Err(AttachError::UnknownSet { iface: iface.to_string(), set: name.to_string(), known: known() });
        };
        if set.contents.is_some() && !read_only {
            return Err(AttachError::FixedSet { iface: iface.to_string(), set: set.name.clone(), elements: set.size });
        }
        let all_maps = self.sys.set_maps(running.prog.id).map_err(|source| set_error(&set, source))?;
        let maps = set_maps(sets, &set, &all_maps)?;
        let state = self.state(&set, &maps).map_err(|source| set_error(&set, source))?;
        self.apply(&set, &maps, state, change).map_err(|failure| match failure {
            Failure::Map(source) => set_error(&set, source),
            Failure::Full { present, adding } => {
                AttachError::SetFull { set: set.name.clone(), size: set.size, present, adding }
            }
        })
    }

    /// [`Self::change_set`] once the set's maps and state are known.
    fn apply(&self, set: &SetManifest, maps: &SetMaps, state: State, change: SetChange) -> Result<SetOutcome, Failure> {
        let generation = state.generation;
        let mut outcome =
            SetOutcome { set: set.clone(), keys: Vec::new(), count: 0, added: 0, deleted: 0, unchanged: 0 };
        let size = set.size as usize;
        match change {
            SetChange::Describe => outcome.count = self.count(state, maps)?,
            SetChange::List => {
                outcome.keys = in_trie_order(self.current_keys(generation, maps)?);
                outcome.count = outcome.keys.len();
            }
            SetChange::Add(keys) => {
                let keys = in_trie_order(keys);
                let mut count = self.count(state, maps)?;
                if count + keys.len() > size {
                    // They might not fit: read the set to tell the present ones apart.
                    let current = in_trie_order(self.current_keys(generation, maps)?);
                    count = current.len();
                    let adding = keys.iter().filter(|key| !holds(&current, key)).count();
                    if count + adding > size {
                        return Err(Failure::Full { present: count, adding });
                    }
                }
                self.write_state(set, maps.generations, generation, count as u32 | ELEMENTS_UNSETTLED)?;
                outcome.added = self.write_keys(maps, &keys, generation, Existing::Keep)?;
                pause_at(Step::SetWritten);
                outcome.unchanged = keys.len() - outcome.added;
                outcome.count = count + outcome.added;
                self.write_state(set, maps.generations, generation, outcome.count as u32)?;
            }
            SetChange::Delete(keys) => {
                let keys = in_trie_order(keys);
                let count = self.count(state, maps)?;
                self.write_state(set, maps.generations, generation, count as u32 | ELEMENTS_UNSETTLED)?;
                outcome.deleted = self.delete_keys(maps, &keys, generation)?;
                pause_at(Step::SetWritten);
                outcome.unchanged = keys.len() - outcome.deleted;
                outcome.count = count.saturating_sub(outcome.deleted);
                self.write_state(set, maps.generations, generation, outcome.count as u32)?;
            }
            SetChange::Replace(keys) => {
                let keys = in_trie_order(keys);
                if keys.len() > size {
                    return Err(Failure::Full { present: 0, adding: keys.len() });
                }
                let next = 1 - generation;
                // Leftovers of an interrupted replace in the next generation go first.
                let stale = in_trie_order(self.current_keys(next, maps)?);
                self.delete_keys(maps, &stale, next)?;
                // The next generation is written while the current one is read: other
                // maps, so other locks, and the two cores each take a share.
                let writes = maps.by_map(&keys, next)?;
                let reads = maps.of_generation(generation);
                let mut jobs = write_jobs(&writes, Existing::Overwrite);
                jobs.extend(reads.iter().map(|(_, id)| MapJob::Read { map_id: *id }));
                let mut done = self.run_jobs(&jobs)?;
                let read = done.split_off(writes.len());
                // The flip: from here on packets look up the new generation only.
                self.write_state(set, maps.generations, next, keys.len() as u32)?;
                let current = in_trie_order(maps.keys_read(&reads, read));
                self.delete_keys(maps, &current, generation)?;
                outcome.added = only_in(&keys, &current);
                outcome.deleted = only_in(&current, &keys);
                outcome.unchanged = keys.len() - outcome.added;
                outcome.count = keys.len();
            }
        }
        Ok(outcome)
    }
}

/// Why [`Filters::apply`] changed nothing (or stopped).
enum Failure {
    /// A map operation failed.
    Map(io::Error),
    /// The keys would not fit the set's size.
    Full { present: usize, adding: usize },
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure::Map(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64* (pfc-test-support's `Random`, which the library's own tests cannot
    /// link: it links a second copy of this crate).
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Keys of a few families, lengths and tags, many of them repeated.
    fn random_keys(count: usize, seed: u64) -> Vec<SetKey> {
        let mut random = Random(seed);
        (0..count)
            .map(|_| {
                let mut key = [0u8; KEY_SIZE];
                let bits = random.next();
                key[0] = (bits % 129) as u8;
                key[4] = (bits >> 8) as u8 & 3;
                for (at, byte) in key[8..].iter_mut().enumerate() {
                    // Few distinct values, so the sort meets equal prefixes and duplicates.
                    *byte = if at < 2 { (bits >> (16 + at * 8)) as u8 & 1 } else { (random.next() % 3) as u8 };
                }
                key
            })
            .collect()
    }

    #[test]
    fn in_trie_order_sorts_by_trie_order_and_drops_repeats() {
        for seed in 1..20 {
            let keys = random_keys(500, seed);
            let mut expected = keys.clone();
            expected.sort_by(trie_order);
            expected.dedup();
            let sorted = in_trie_order(keys.clone());
            assert_eq!(sorted, expected, "seed {seed}");
            assert!(keys.iter().all(|key| holds(&sorted, key)));
            assert!(keys.iter().all(|key| from_order_key(order_key(key)) == *key));
        }
    }
}
