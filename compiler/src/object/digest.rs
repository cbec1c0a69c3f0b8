//! The object digests: what a pfc object holds in, three SHA-256 digests out (its code
//! with the map relocations; its map declarations with the contents `pfc load` writes
//! into maps; its manifest without the digests), written by `pfc compile` into the
//! manifest ([`ObjectDigest`]) and recomputed by `pfc load OBJ` ([`check_digest`]).
//!
//! They catch an object edited after pfc wrote it: a manifest whose default, verdicts or
//! rule names were changed (which would make `pfc stats` label counters wrongly), or code
//! or maps changed under an unchanged manifest. They are not a signature: whoever edits an
//! object on purpose can recompute them.
//!
//! The compiler hashes what it is about to write (an [`ObjectSpec`]), the loader what the
//! ELF reader gives back ([`BpfObject`], the raw `.BTF` and `.pfc.sets`): for a pfc object
//! these are the same bytes (the reader's code holds each map's index in its `lddw`, as the
//! writer wrote it). The manifest is hashed as serialized by this pfc, so what is compared
//! is its content, not its spacing.

use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

use super::bpf_object::{BpfObject, ObjectError};
use super::btf;
use super::manifest::{Manifest, ObjectDigest};
use super::read::{parse_bpf_elf, ElfReadError};
use super::write::{ObjectSpec, SET_CONTENTS_SECTION};
use crate::bpf::MapReloc;
use crate::hashing::PieceDigest;

/// Why an object's digests do not vouch for it.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The manifest holds no digests: compiled by a pfc before they were written.
    #[error("its manifest holds no digest of its code (compiled by an older pfc)")]
    Missing,
    /// Some part no longer hashes to its digest.
    #[error("{}", changed_words(changed))]
    Changed {
        /// What changed, as words: `its instructions`, `its map declarations`, `its manifest`.
        changed: Vec<&'static str>,
    },
    /// A part the digests do not cover is not as pfc writes it: the program's name (what
    /// libbpf, bpftool and the kernel print), a section's or symbol's name, the license.
    #[error("{what} is not as pfc writes it")]
    NotAsWritten {
        /// The part and what it holds, as words (escaped by whoever prints it).
        what: String,
    },
    /// The program or its maps cannot be read at all.
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// `the digest of its manifest does not match`, `the digests of its instructions and its
/// manifest do not match`.
fn changed_words(changed: &[&str]) -> String {
    let names: Vec<&str> = changed.iter().map(|what| what.trim_start_matches("its ")).collect();
    match names.as_slice() {
        [one] => format!("the digest of its {one} does not match"),
        [init @ .., last] => format!("the digests of its {} and {last} do not match", init.join(", ")),
        [] => "nothing changed".to_string(),
    }
}

/// The bytes of one object the digests cover.
struct Parts<'a> {
    code: &'a [u8],
    relocations: &'a [MapReloc],
    map_names: Vec<&'a str>,
    btf: &'a [u8],
    set_contents: &'a [u8],
}

impl Parts<'_> {
    /// The three digests, the manifest's without its own digest.
    fn digest(&self, manifest: &Manifest) -> ObjectDigest {
        let mut code = PieceDigest::new("pfc object code v1");
        code.piece(self.code);
        let mut relocations: Vec<(u64, u32)> =
            self.relocations.iter().map(|reloc| (reloc.slot as u64, reloc.map)).collect();
        relocations.sort_unstable();
        let relocations: Vec<u8> = relocations
            .iter()
            .flat_map(|(slot, map)| slot.to_le_bytes().into_iter().chain(map.to_le_bytes()))
            .collect();
        code.piece(&relocations);
        let mut maps = PieceDigest::new("pfc object maps v1");
        maps.piece(&(self.map_names.len() as u64).to_le_bytes());
        for name in &self.map_names {
            maps.piece(name.as_bytes());
        }
        maps.piece(self.btf).piece(self.set_contents);
        let mut bare = manifest.clone();
        bare.digest = None;
        let mut manifest = PieceDigest::new("pfc object manifest v1");
        manifest.piece(&bare.to_bytes());
        ObjectDigest { code: code.text(), maps: maps.text(), manifest: manifest.text() }
    }
}

/// The digests of the object `spec` describes, with `manifest` as its manifest (whatever
/// digest it holds is left out). A map set the BTF writer refuses hashes as no `.BTF`:
/// writing such an object fails anyway.
pub(crate) fn of_spec(spec: &ObjectSpec, manifest: &Manifest) -> ObjectDigest {
    let btf = if spec.maps.is_empty() {
        Vec::new()
    } else {
        btf::maps_btf(&spec.maps).map(|(btf, _)| btf).unwrap_or_default()
    };
    let parts = Parts {
        code: &spec.code,
        relocations: &spec.relocations,
        map_names: spec.maps.iter().map(|map| map.name.as_str()).collect(),
        btf: &btf,
        set_contents: &spec.set_contents,
    };
    parts.digest(manifest)
}

/// Checks that the object `bytes`, whose manifest is `manifest`, still hashes to the
/// digests its manifest holds.
pub fn check_digest(bytes: &[u8], manifest: &Manifest) -> Result<(), DigestError> {
    let Some(written) = &manifest.digest else { return Err(DigestError::Missing) };
    let object = BpfObject::parse(bytes)?;
    let file = parse_bpf_elf(bytes).map_err(ObjectError::from)?;
    let section = |name: &str| -> Result<&[u8], ObjectError> {
        match file.section_by_name(name) {
            Some(section) => section.data().map_err(|source| ObjectError::from(ElfReadError::Unreadable { source })),
            None => Ok(&[]),
        }
    };
    let parts = Parts {
        code: &object.code,
        relocations: &object.relocations,
        map_names: object.maps.iter().map(|map| map.name.as_str()).collect(),
        btf: if object.maps.is_empty() { &[] } else { section(".BTF")? },
        set_contents: section(SET_CONTENTS_SECTION)?,
    };
    let found = parts.digest(manifest);
    let changed: Vec<&'static str> = [
        (found.code == written.code, "its instructions"),
        (found.maps == written.maps, "its map declarations"),
        (found.manifest == written.manifest, "its manifest"),
    ]
    .into_iter()
    .filter_map(|(same, what)| (!same).then_some(what))
    .collect();
    if !changed.is_empty() {
        return Err(DigestError::Changed { changed });
    }
    check_undigested(&file, &object)
}

/// The parts of a pfc object the digests leave out, as pfc writes them: every section and
/// symbol name is text (libbpf prints them, and an invalid one aborted `pfc load`), the
/// program's name is one [`program_name`](super::read::program_name) makes, and the license
/// is GPL (the kernel refuses some helpers to others).
fn check_undigested(file: &object::File<'_>, object: &BpfObject) -> Result<(), DigestError> {
    let not_as_written = |what: String| Err(DigestError::NotAsWritten { what });
    for section in file.sections() {
        if let Err(error) = section.name() {
            return not_as_written(format!("the name of section {} ({error})", section.index().0));
        }
    }
    for symbol in file.symbols() {
        if let Err(error) = symbol.name() {
            return not_as_written(format!("the name of symbol {} ({error})", symbol.index().0));
        }
    }
    let name = &object.program_name;
    if !super::read::is_program_name(name) {
        return not_as_written(format!("its program's name `{name}`"));
    }
    if object.license.as_deref() != Some("GPL") {
        return not_as_written(format!("its license `{}`", object.license.as_deref().unwrap_or("(none)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use object::{Object as _, ObjectSection as _};

    use super::*;
    use crate::codegen::{Form, Options};
    use crate::compile::compile_form;
    use crate::object::read::read_manifest;

    /// A table-driven classifier (so the object has `.pfc.sets`).
    fn object() -> Vec<u8> {
        let mut rules = String::from("default pass\n");
        for port in 0..20 {
            rules
                .push_str(&format!("rule r{port}: drop if tcp.dport == {} and ip.dst == 10.0.0.{port}\n", 1000 + port));
        }
        let (compiled, diagnostics) = compile_form(&rules, Options::default(), Some(Form::Table));
        compiled.unwrap_or_else(|| panic!("{diagnostics:?}")).object
    }

    /// `bytes` with byte `at` of section `name` changed.
    fn flip(bytes: &[u8], name: &str, at: impl Fn(&[u8]) -> usize) -> Vec<u8> {
        let file = object::File::parse(bytes).expect("parses");
        let section = file.section_by_name(name).unwrap_or_else(|| panic!("no {name}"));
        let (start, _) = section.file_range().expect("in the file");
        let offset = start as usize + at(section.data().expect("data"));
        let mut changed = bytes.to_vec();
        changed[offset] ^= 0x01;
        changed
    }

    fn check(bytes: &[u8]) -> Result<(), DigestError> {
        check_digest(bytes, &read_manifest(bytes).expect("still a pfc object"))
    }

    fn changed(bytes: &[u8]) -> Vec<&'static str> {
        match check(bytes) {
            Err(DigestError::Changed { changed }) => changed,
            other => panic!("not refused as changed: {other:?}"),
        }
    }

    #[test]
    fn an_object_as_written_passes_and_every_edited_part_is_named() {
        let bytes = object();
        check(&bytes).expect("the object pfc wrote matches its digests");
        // The last instruction's opcode byte (an `exit` becomes something else).
        let code = flip(&bytes, "xdp", |data| data.len() - 8);
        assert_eq!(changed(&code), ["its instructions"]);
        // A counter member's name (`packets` becomes `packetr`): the BTF still reads.
        let btf = flip(&bytes, ".BTF", |data| data.windows(7).position(|w| w == b"packets").expect("named") + 6);
        assert_eq!(changed(&btf), ["its map declarations"]);
        let tables = flip(&bytes, ".pfc.sets", |data| data.len() / 2);
        assert_eq!(changed(&tables), ["its map declarations"]);
        // `"default":"pass"` edited to `"default":"pasS"` would not read; a verdict that
        // reads: the first rule's `drop` becomes `pass` (same length).
        let at = |data: &[u8], text: &str| data.windows(text.len()).position(|w| w == text.as_bytes()).expect("found");
        let file = object::File::parse(&*bytes).expect("parses");
        let manifest = file.section_by_name(crate::object::MANIFEST_SECTION).expect("manifest");
        let (start, _) = manifest.file_range().expect("in the file");
        let data = manifest.data().expect("data");
        let mut edited = bytes.clone();
        let default = start as usize + at(data, "\"default\":\"pass\"");
        edited[default..default + 16].copy_from_slice(b"\"default\":\"drop\"");
        assert_eq!(changed(&edited), ["its manifest"]);
        let error = check(&edited).expect_err("refused").to_string();
        assert_eq!(error, "the digest of its manifest does not match");
        // Two parts at once are both named.
        let mut both = flip(&edited, "xdp", |data| data.len() - 8);
        assert_eq!(changed(&both), ["its instructions", "its manifest"]);
        assert_eq!(
            check(&both).expect_err("refused").to_string(),
            "the digests of its instructions and manifest do not match"
        );
        // Renaming the digest key (an object from before digests) leaves none to check.
        let key = start as usize + at(data, "\"digest\"");
        both = bytes.clone();
        both[key..key + 8].copy_from_slice(b"\"digesX\"");
        assert!(matches!(check(&both), Err(DigestError::Missing)));
    }

    #[test]
    fn parts_outside_the_digests_are_as_pfc_writes_them() {
        let bytes = object();
        let name = |data: &[u8]| data.windows(12).position(|w| w == b"\0pfc_filter\0").expect("named") + 1;
        // Not UTF-8: libbpf would print it (and its log callback panic).
        let mut not_text = bytes.clone();
        let file = object::File::parse(&*bytes).expect("parses");
        let (start, _) = file.section_by_name(".strtab").expect("strtab").file_range().expect("in the file");
        let at = start as usize + name(file.section_by_name(".strtab").expect("strtab").data().expect("data"));
        not_text[at] = 0x8f;
        let error = check(&not_text).expect_err("refused").to_string();
        assert!(error.starts_with("the name of symbol ") && error.ends_with(" is not as pfc writes it"), "{error}");
        // Text, but a name pfc never writes (`pfc-filter`), and another license.
        let mut dashed = bytes.clone();
        dashed[at + 3] = b'-';
        assert_eq!(
            check(&dashed).expect_err("refused").to_string(),
            "its program's name `pfc-filter` is not as pfc writes it"
        );
        let license = flip(&bytes, "license", |_| 0);
        assert_eq!(check(&license).expect_err("refused").to_string(), "its license `FPL` is not as pfc writes it");
    }
}
