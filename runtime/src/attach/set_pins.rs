//! Pins of a filter's set maps: the running program's maps of its sets (dynamic ones and
//! static ones held in maps) and their generation array in, pins under the filter's
//! directory that name them out.
//!
//! ```text
//! <dir>/sets/<set>/<family>_gen<G>   the set's map of one family (ipv4, ipv6, number,
//!                                    mac) and generation (0, 1; a static set has 0 only)
//! <dir>/set_gen                      pfc_set_gen: entry <set index> is the set's state
//! ```
//!
//! They follow the counters' protocol: a first load pins them in place once the sets are
//! filled; a replace pins the new program's at `sets_next/…` and `set_gen_next`, and
//! after the swap [`Filters::sync_set_pins`] renames them over the old ones (step
//! `pinned`). The same call, at the start of every writer (`reconcile`), makes the pins
//! match what the kernel runs: a pin naming another map is renamed from a staged one that
//! names the right map or pinned again from the kernel's id, and every other pin under
//! `sets/` and `sets_next/` (planted, stale, of a set the running rule set does not
//! have) is removed. The pins are for people and other tools (bpftool): pfc itself
//! always reaches a set's maps through link → program → maps, so a wrong pin never
//! redirects `pfc set`.

use std::path::{Path, PathBuf};

use pfc_compiler::program::dynamic::Family;

use super::{guard, pin_error, present, remove_if_present, rename, AttachError, BpfSys, Filters};
use crate::pins::{FilterPaths, Manifest};

/// Where one map is pinned: its final place, its staged place, and the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetPin {
    /// Under `sets/` (or `set_gen`).
    pub path: PathBuf,
    /// Under `sets_next/` (or `set_gen_next`).
    pub staged: PathBuf,
    /// The kernel's id of the map.
    pub map_id: u32,
}

/// Whether a set's name can be a directory name in bpffs: pfc's identifiers always can
/// (letters, digits, `_`, `-`); anything else, from a record pfc did not write, is not
/// pinned.
fn pinnable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The pins the sets of a program should have: `manifest` names its sets' maps, `maps`
/// are the program's `pfc_set_*` maps (name, id) as the kernel lists them. Maps the
/// program does not use (a set no rule tests) get no pin.
pub(crate) fn wanted(paths: &FilterPaths, manifest: Option<&Manifest>, maps: &[(String, u32)]) -> Vec<SetPin> {
    let Some(sets) = manifest.and_then(|manifest| manifest.dynamic_sets.as_ref()) else { return Vec::new() };
    let id = |name: &str| maps.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    let mut pins = Vec::new();
    for set in sets.sets.iter().filter(|set| pinnable(&set.name)) {
        for map in &set.maps {
            let (Some(family), Some(map_id)) = (Family::from_name(&map.family), id(&map.map)) else { continue };
            if map.generation > 1 {
                continue;
            }
            let file = format!("{}_gen{}", family.as_str(), map.generation);
            pins.push(SetPin {
                path: paths.sets.join(&set.name).join(&file),
                staged: paths.staged_sets.join(&set.name).join(&file),
                map_id,
            });
        }
    }
    if let (false, Some(map_id)) = (pins.is_empty(), id(&sets.generation_map)) {
        pins.push(SetPin { path: paths.set_gen.clone(), staged: paths.staged_set_gen.clone(), map_id });
    }
    pins
}

impl<S: BpfSys> Filters<S> {
    /// The pins the sets of program `prog_id` should have ([`wanted`]).
    pub(super) fn wanted_set_pins(
        &self,
        paths: &FilterPaths,
        prog_id: u32,
        manifest: Option<&Manifest>,
    ) -> Result<Vec<SetPin>, AttachError> {
        if manifest.and_then(|manifest| manifest.dynamic_sets.as_ref()).is_none() {
            return Ok(Vec::new());
        }
        let maps = self.sys.set_maps(prog_id).map_err(pin_error(&paths.sets))?;
        Ok(wanted(paths, manifest, &maps))
    }

    /// Pins the sets' maps of a program that is not running yet: in place for a first
    /// load (`staged` false), under `sets_next/` and `set_gen_next` for a replace. What
    /// was there before goes first.
    pub(super) fn pin_new_sets(&self, paths: &FilterPaths, pins: &[SetPin], staged: bool) -> Result<(), AttachError> {
        let (root, generations) =
            if staged { (&paths.staged_sets, &paths.staged_set_gen) } else { (&paths.sets, &paths.set_gen) };
        remove_tree(root)?;
        remove_if_present(generations)?;
        for pin in pins {
            let path = if staged { &pin.staged } else { &pin.path };
            self.pin_set_map(paths, pin.map_id, path)?;
        }
        Ok(())
    }

    /// Makes the set pins those of `pins` (the running program's): a pin that names
    /// another map is renamed from its staged place when that names the right one, else
    /// pinned again from the kernel's id; every other pin under `sets/` and `sets_next/`
    /// goes, and so do `set_gen_next` and an unwanted `set_gen`.
    pub(super) fn sync_set_pins(&self, paths: &FilterPaths, pins: &[SetPin]) -> Result<(), AttachError> {
        for pin in pins {
            if self.sys.map_id(&pin.path).ok() == Some(pin.map_id) {
                continue;
            }
            if self.sys.map_id(&pin.staged).ok() == Some(pin.map_id) {
                if let Some(parent) = pin.path.parent() {
                    guard::owned_dir(&self.layout.pins, parent)?;
                }
                rename(&pin.staged, &pin.path)?;
            } else {
                self.pin_set_map(paths, pin.map_id, &pin.path)?;
            }
        }
        let keep: Vec<&Path> = pins.iter().map(|pin| pin.path.as_path()).collect();
        remove_unwanted(&paths.sets, &keep)?;
        if !keep.contains(&paths.set_gen.as_path()) {
            remove_if_present(&paths.set_gen)?;
        }
        remove_tree(&paths.staged_sets)?;
        remove_if_present(&paths.staged_set_gen)
    }

    /// Pins map `map_id` at `path` (in place of whatever is there), creating the set's
    /// directory as pfc's.
    fn pin_set_map(&self, paths: &FilterPaths, map_id: u32, path: &Path) -> Result<(), AttachError> {
        if let Some(parent) = path.parent().filter(|parent| *parent != paths.dir) {
            guard::owned_dir(&self.layout.pins, parent)?;
        }
        remove_if_present(path)?;
        self.sys.pin_map(map_id, path).map_err(pin_error(path))
    }
}

/// Removes everything under `root` (two levels: set directories and their pins) except
/// the pins in `keep`, and the set directories left empty. Nothing is followed: a
/// symlink is removed as a file.
fn remove_unwanted(root: &Path, keep: &[&Path]) -> Result<(), AttachError> {
    let Ok(metadata) = std::fs::symlink_metadata(root) else { return Ok(()) };
    if !metadata.is_dir() {
        return remove_if_present(root);
    }
    for set in entries(root)? {
        if !std::fs::symlink_metadata(&set).is_ok_and(|m| m.is_dir()) {
            remove_if_present(&set)?;
            continue;
        }
        for pin in entries(&set)? {
            if keep.contains(&pin.as_path()) {
                continue;
            }
            if std::fs::symlink_metadata(&pin).is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(&pin).map_err(pin_error(&pin))?;
            } else {
                remove_if_present(&pin)?;
            }
        }
        super::remove_dir_if_empty(&set);
    }
    super::remove_dir_if_empty(root);
    Ok(())
}

/// Removes `root` and everything under it (a missing one is fine).
pub(super) fn remove_tree(root: &Path) -> Result<(), AttachError> {
    remove_unwanted(root, &[])?;
    if present(root) {
        std::fs::remove_dir_all(root).map_err(pin_error(root))?;
    }
    Ok(())
}

/// The paths in a directory.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, AttachError> {
    let read = std::fs::read_dir(dir).map_err(pin_error(dir))?;
    read.map(|entry| entry.map(|entry| entry.path()).map_err(pin_error(dir))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::{Hook, Layout, SetManifest, SetsManifest};
    use pfc_compiler::object::SetMapManifest;

    fn manifest(sets: Vec<SetManifest>) -> Manifest {
        let mut manifest = Manifest::from_bytes(
            br#"{"pfc_version":"0","hook":"xdp","default":"pass","rules":[],"source_hash":"sha256:0"}"#,
        )
        .expect("a manifest");
        manifest.dynamic_sets = Some(SetsManifest { generation_map: "pfc_set_gen".to_string(), sets });
        manifest
    }

    fn set(name: &str, index: u32, maps: &[(&str, &str, u32)]) -> SetManifest {
        SetManifest {
            name: name.to_string(),
            element_type: "ip".to_string(),
            kind: "prefixes".to_string(),
            size: 10,
            maps: maps
                .iter()
                .map(|(map, family, generation)| SetMapManifest {
                    map: map.to_string(),
                    family: family.to_string(),
                    generation: *generation,
                })
                .collect(),
            index,
            contents: None,
        }
    }

    #[test]
    fn each_used_map_of_a_named_set_gets_a_pin_by_family_and_generation() {
        let paths = Layout::default().filter("eth0", Hook::Xdp);
        let manifest = manifest(vec![
            set("banned", 0, &[("pfc_set_0a", "ipv4", 0), ("pfc_set_0b", "ipv4", 1), ("pfc_set_0c", "ipv6", 0)]),
            // Not tested by any rule: the program has none of its maps.
            set("unused", 1, &[("pfc_set_1a", "number", 0)]),
            // Not a name pfc writes: no pin (a path could escape the directory).
            set("../x", 2, &[("pfc_set_2a", "ipv4", 0)]),
            // A family or generation pfc does not write: no pin.
            set("odd", 3, &[("pfc_set_3a", "ipx", 0), ("pfc_set_3b", "mac", 2)]),
        ]);
        let maps: Vec<(String, u32)> = [("pfc_set_0a", 10), ("pfc_set_0b", 11), ("pfc_set_0c", 12), ("pfc_set_2a", 13)]
            .iter()
            .chain(&[("pfc_set_3a", 14), ("pfc_set_3b", 15), ("pfc_set_gen", 20)])
            .map(|(name, id)| (name.to_string(), *id))
            .collect();
        let pins = wanted(&paths, Some(&manifest), &maps);
        let shown: Vec<(String, String, u32)> = pins
            .iter()
            .map(|pin| (pin.path.display().to_string(), pin.staged.display().to_string(), pin.map_id))
            .collect();
        let dir = "/sys/fs/bpf/pfc/eth0/xdp";
        let expected = [
            ("sets/banned/ipv4_gen0", "sets_next/banned/ipv4_gen0", 10),
            ("sets/banned/ipv4_gen1", "sets_next/banned/ipv4_gen1", 11),
            ("sets/banned/ipv6_gen0", "sets_next/banned/ipv6_gen0", 12),
            ("set_gen", "set_gen_next", 20),
        ];
        let expected: Vec<(String, String, u32)> =
            expected.iter().map(|(a, b, id)| (format!("{dir}/{a}"), format!("{dir}/{b}"), *id)).collect();
        assert_eq!(shown, expected);
        assert!(wanted(&paths, None, &maps).is_empty(), "no record, no pins");
    }
}
