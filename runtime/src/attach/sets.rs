//! Dynamic sets of loaded filters: the rule file's contents (or the replaced filter's)
//! written into a new program's set maps before it runs, and `pfc set`'s changes to a
//! running filter's sets.
//!
//! Each set's map holds keys of `pfc_compiler::program::dynamic` (family and generation
//! in the tag); `pfc_set_gen` holds each set's `struct pfc_set_state { generation,
//! elements, changed_ns }`. The program reads the generation bit before each lookup, so:
//!
//! - **load**: the contents go in as generation 0 before the program is attached (or
//!   swapped in), with the state `{0, count, now}`;
//! - **replace** of a rule file: a set whose name, type and kind are unchanged keeps the
//!   replaced filter's contents: its current generation's entries are copied (as
//!   generation 0) into the new map before the swap; entries `pfc set` adds to the old
//!   map between that copy and the swap are not carried;
//! - **add / del**: entries of the current generation are added or deleted in place;
//!   each packet sees the set before or after each element's change;
//! - **replace / flush**: the new contents are written as the other generation, the
//!   state's generation bit is flipped (one 16-byte array update, which a packet sees
//!   whole), then the old generation's entries are deleted: packets see the old
//!   contents or the new, never a mix.

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use pfc_compiler::program::dynamic::{self, KEY_SIZE, TAG_OFFSET, VALUE};

use super::{AttachError, BpfSys, Filters, LoadRequest, ProgInfo};
use crate::pins::{Record, SetManifest, SetsManifest};

/// What happened to each dynamic set at a load.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SetsFilled {
    /// Sets that kept the replaced filter's contents, with their element counts.
    pub kept: Vec<(String, usize)>,
    /// Sets given the rule file's contents, with their element counts.
    pub from_file: Vec<(String, usize)>,
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
        notices
    }
}

/// Now, in Unix nanoseconds (0 if the clock is before 1970).
fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The generation and element count in a set's state value.
fn state_of(value: &[u8]) -> (u32, u32) {
    dynamic::parse_state(value).map_or((0, 0), |(generation, elements, _)| (generation & 1, elements))
}

/// The generation a key belongs to.
fn generation_of(key: &[u8]) -> u32 {
    key.get(TAG_OFFSET + 1).map_or(0, |byte| u32::from(*byte & 1))
}

/// `key` moved to `generation`.
fn with_generation(key: &[u8], generation: u32) -> Vec<u8> {
    let mut key = key.to_vec();
    if let Some(byte) = key.get_mut(TAG_OFFSET + 1) {
        *byte = (*byte & !1) | (generation & 1) as u8;
    }
    key
}

/// A set's maps in a running program: its own and the generation array.
struct SetMaps {
    set: u32,
    generations: u32,
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
            let maps = set_maps(sets, set, &new_maps)?;
            let carried = old_sets.as_ref().and_then(|(manifest, old_maps)| {
                let same = manifest
                    .sets
                    .iter()
                    .find(|o| o.name == set.name && o.element_type == set.element_type && o.kind == set.kind)?;
                let old = set_maps(manifest, same, old_maps).ok()?;
                self.current_keys(same, &old).ok()
            });
            let (keys, kept) = match carried {
                Some(keys) => (keys.iter().map(|key| with_generation(key, 0)).collect(), true),
                None => (request.set_contents.get(set.index as usize).cloned().unwrap_or_default(), false),
            };
            // A replaced filter's set may hold more than the new size allows: cut.
            let keys: Vec<Vec<u8>> = keys.into_iter().take(set.size as usize).collect();
            let entries: Vec<(Vec<u8>, Vec<u8>)> = keys.into_iter().map(|key| (key, VALUE.to_vec())).collect();
            self.sys.write_entries(maps.set, &entries).map_err(|source| set_error(set, source))?;
            let count = entries.len();
            states.push((maps.generations, set, count));
            if kept {
                filled.kept.push((set.name.clone(), count));
            } else {
                filled.from_file.push((set.name.clone(), count));
            }
        }
        for (generations, set, count) in states {
            let state = dynamic::state_value(0, count as u32, now_ns());
            let entry = (set.index.to_le_bytes().to_vec(), state.to_vec());
            self.sys.write_entries(generations, &[entry]).map_err(|source| set_error(set, source))?;
        }
        Ok(filled)
    }

    /// The keys of a set's current generation.
    fn current_keys(&self, set: &SetManifest, maps: &SetMaps) -> io::Result<Vec<Vec<u8>>> {
        let (generation, _) = self.state(set, maps)?;
        let entries = self.sys.read_entries(maps.set)?;
        Ok(entries.into_iter().map(|(key, _)| key).filter(|key| generation_of(key) == generation).collect())
    }

    /// A set's (generation, element count) from the generation array.
    fn state(&self, set: &SetManifest, maps: &SetMaps) -> io::Result<(u32, u32)> {
        let entries = self.sys.read_entries(maps.generations)?;
        let key = set.index.to_le_bytes();
        Ok(entries.iter().find(|(k, _)| k.as_slice() == key).map_or((0, 0), |(_, value)| state_of(value)))
    }
}

/// The map ids of `set` among a program's `pfc_set_*` maps.
fn set_maps(sets: &SetsManifest, set: &SetManifest, maps: &[(String, u32)]) -> Result<SetMaps, AttachError> {
    let id = |name: &str| maps.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    let missing = |name: &str| set_error(set, io::Error::new(io::ErrorKind::NotFound, format!("no map {name}")));
    Ok(SetMaps {
        set: id(&set.map).ok_or_else(|| missing(&set.map))?,
        generations: id(&sets.generation_map).ok_or_else(|| missing(&sets.generation_map))?,
    })
}

fn set_error(set: &SetManifest, source: io::Error) -> AttachError {
    AttachError::SetMap { set: set.name.clone(), map: set.map.clone(), source }
}

const _: () = assert!(KEY_SIZE == 24);

/// A change `pfc set` makes to a running filter's dynamic set. Keys are those of
/// generation 0 (`pfc_compiler::program::dynamic::element_key`); the change moves them
/// to the set's current (or next) generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetChange {
    /// Add these keys (those present already are left alone).
    Add(Vec<Vec<u8>>),
    /// Delete these keys (those absent are counted, not an error).
    Delete(Vec<Vec<u8>>),
    /// Make these keys the whole contents, atomically.
    Replace(Vec<Vec<u8>>),
    /// Only read the contents.
    List,
}

/// What a [`SetChange`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// The set as the running filter's manifest describes it.
    pub set: SetManifest,
    /// Keys of the contents after the change, as generation 0.
    pub keys: Vec<Vec<u8>>,
    /// Keys added.
    pub added: usize,
    /// Keys deleted.
    pub deleted: usize,
    /// Keys given that were already present (add) or absent (delete).
    pub unchanged: usize,
}

impl<S: BpfSys> Filters<S> {
    /// Changes (or lists) dynamic set `name` of pfc's filter on `iface` at `point`, under
    /// the writer lock. Nothing changes when the set does not exist, the keys would not
    /// fit its declared size, or the filter is not pfc's.
    pub fn change_set(
        &self,
        iface: &str,
        point: crate::pins::Hook,
        name: &str,
        change: SetChange,
    ) -> Result<SetOutcome, AttachError> {
        crate::pins::check_iface_name(iface)?;
        if change != SetChange::List {
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
        let all_maps = self.sys.set_maps(running.prog.id).map_err(|source| set_error(&set, source))?;
        let maps = set_maps(sets, &set, &all_maps)?;
        let fail = |source: io::Error| set_error(&set, source);
        let (generation, _) = self.state(&set, &maps).map_err(fail)?;
        let entries = self.sys.read_entries(maps.set).map_err(fail)?;
        let (current, stale): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            entries.into_iter().map(|(key, _)| key).partition(|key| generation_of(key) == generation);
        let mut current: Vec<Vec<u8>> = current.iter().map(|key| with_generation(key, 0)).collect();
        current.sort();
        let mut outcome = SetOutcome { set: set.clone(), keys: Vec::new(), added: 0, deleted: 0, unchanged: 0 };
        let write_state = |generation: u32, count: usize| {
            let state = dynamic::state_value(generation, count as u32, now_ns());
            self.sys.write_entries(maps.generations, &[(set.index.to_le_bytes().to_vec(), state.to_vec())])
        };
        let full = |present: usize, adding: usize| AttachError::SetFull {
            set: set.name.clone(),
            size: set.size,
            present,
            adding,
        };
        match change {
            SetChange::List => outcome.keys = current,
            SetChange::Add(mut keys) => {
                keys.sort();
                keys.dedup();
                let (present, new): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
                    keys.into_iter().partition(|key| current.binary_search(key).is_ok());
                if current.len() + new.len() > set.size as usize {
                    return Err(full(current.len(), new.len()));
                }
                let entries: Vec<(Vec<u8>, Vec<u8>)> =
                    new.iter().map(|key| (with_generation(key, generation), VALUE.to_vec())).collect();
                self.sys.write_entries(maps.set, &entries).map_err(fail)?;
                outcome.added = new.len();
                outcome.unchanged = present.len();
                current.extend(new);
                current.sort();
                write_state(generation, current.len()).map_err(fail)?;
                outcome.keys = current;
            }
            SetChange::Delete(mut keys) => {
                keys.sort();
                keys.dedup();
                let (present, absent): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
                    keys.into_iter().partition(|key| current.binary_search(key).is_ok());
                let doomed: Vec<Vec<u8>> = present.iter().map(|key| with_generation(key, generation)).collect();
                outcome.deleted = self.sys.delete_keys(maps.set, &doomed).map_err(fail)?;
                outcome.unchanged = absent.len();
                current.retain(|key| present.binary_search(key).is_err());
                write_state(generation, current.len()).map_err(fail)?;
                outcome.keys = current;
            }
            SetChange::Replace(mut keys) => {
                keys.sort();
                keys.dedup();
                if keys.len() > set.size as usize {
                    return Err(full(0, keys.len()));
                }
                let next = 1 - generation;
                // Leftovers of an interrupted replace in the next generation go first.
                self.sys.delete_keys(maps.set, &stale).map_err(fail)?;
                let entries: Vec<(Vec<u8>, Vec<u8>)> =
                    keys.iter().map(|key| (with_generation(key, next), VALUE.to_vec())).collect();
                self.sys.write_entries(maps.set, &entries).map_err(fail)?;
                // The flip: from here on packets look up the new generation only.
                write_state(next, keys.len()).map_err(fail)?;
                let old: Vec<Vec<u8>> = current.iter().map(|key| with_generation(key, generation)).collect();
                self.sys.delete_keys(maps.set, &old).map_err(fail)?;
                outcome.added = keys.iter().filter(|key| current.binary_search(key).is_err()).count();
                outcome.deleted = current.iter().filter(|key| keys.binary_search(key).is_err()).count();
                outcome.unchanged = keys.len() - outcome.added;
                outcome.keys = keys;
            }
        }
        Ok(outcome)
    }
}
