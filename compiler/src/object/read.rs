//! ELF bytes in, what pfc needs to know about them out: whether they are a pfc object at
//! all, and its [`Manifest`] (what `pfc load OBJ.o` loads by). Also the one rule that
//! names a program after its rule file ([`program_name`]).
//!
//! **Invariant:** reading never panics; bytes that are not a pfc object are a
//! [`ReadError`] that says what they are instead.

use object::{Object as _, ObjectSection as _};

use super::hook::ProgramType;
use super::manifest::{Manifest, TableContents};
use super::write::{MANIFEST_SECTION, SET_CONTENTS_SECTION};

/// The first bytes of every ELF file.
pub(crate) const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Whether `bytes` start like an ELF file (a rule file never does: it is text).
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(ELF_MAGIC)
}

/// Why bytes are not an eBPF ELF file at all: what both readers of objects, the
/// generic [`BpfObject::parse`](super::BpfObject::parse) and pfc's [`read_manifest`], say
/// before they look inside.
#[derive(Debug, thiserror::Error)]
pub enum ElfReadError {
    /// Not a readable ELF file (or a section of it cannot be read).
    #[error("not a readable ELF file")]
    Unreadable {
        /// The ELF reader's complaint.
        #[source]
        source: object::read::Error,
    },
    /// An ELF file for another machine (a program, a library).
    #[error("an ELF file for {machine}, not an eBPF object")]
    NotBpf {
        /// The machine it is for.
        machine: String,
    },
}

/// `bytes` as an ELF file for eBPF.
pub(crate) fn parse_bpf_elf(bytes: &[u8]) -> Result<object::File<'_>, ElfReadError> {
    let file = object::File::parse(bytes).map_err(|source| ElfReadError::Unreadable { source })?;
    if file.architecture() != object::Architecture::Bpf {
        return Err(ElfReadError::NotBpf { machine: format!("{:?}", file.architecture()) });
    }
    Ok(file)
}

/// Why bytes are not a pfc object.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not an eBPF ELF file.
    #[error(transparent)]
    Elf(#[from] ElfReadError),
    /// An eBPF object without a pfc manifest (clang's, or stripped).
    #[error("an eBPF object without a `{MANIFEST_SECTION}` section: not written by `pfc compile`")]
    NoManifest,
    /// The manifest section cannot be read.
    #[error("its `{MANIFEST_SECTION}` section is not a pfc manifest")]
    Manifest {
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest's hook needs a program section the object does not have.
    #[error("its manifest says hook {hook}, but it has no `{section}` program section")]
    NoProgram {
        /// The manifest's hook.
        hook: String,
        /// The section that hook needs.
        section: &'static str,
    },
    /// The manifest places a static set's keys outside the object's `.pfc.sets` section
    /// (or the section is missing).
    #[error("its manifest says set `{set}` has {keys} keys in `{SET_CONTENTS_SECTION}`, but the section holds {bytes} bytes (not written by `pfc compile`, or damaged)")]
    SetContents {
        /// The set's name.
        set: String,
        /// The keys the manifest promises.
        keys: u32,
        /// The section's size (0 when it is missing).
        bytes: usize,
    },
    /// The manifest places a table's values outside the object's `.pfc.sets` section.
    #[error("its manifest says map `{map}` has {entries} values of {value_size} bytes from byte {offset} of `{SET_CONTENTS_SECTION}`, but the section holds {bytes} bytes (not written by `pfc compile`, or damaged)")]
    TableContents {
        /// The map's name.
        map: String,
        /// The values the manifest promises.
        entries: u32,
        /// Bytes per value.
        value_size: u32,
        /// Where they start.
        offset: u64,
        /// The section's size (0 when it is missing).
        bytes: usize,
    },
}

/// The manifest of a pfc object, after checking that the object is one: an eBPF ELF
/// with a `.pfc.manifest` and the program section its hook needs.
pub fn read_manifest(bytes: &[u8]) -> Result<Manifest, ReadError> {
    let file = parse_bpf_elf(bytes)?;
    let section = file.section_by_name(MANIFEST_SECTION).ok_or(ReadError::NoManifest)?;
    let data = section.data().map_err(|source| ElfReadError::Unreadable { source })?;
    let manifest = Manifest::from_bytes(data).map_err(|source| ReadError::Manifest { source })?;
    let program_type: ProgramType = manifest.hook.program_type();
    if file.section_by_name(program_type.section()).is_none() {
        return Err(ReadError::NoProgram { hook: manifest.hook.to_string(), section: program_type.section() });
    }
    Ok(manifest)
}

/// The map keys of each set of the manifest's `dynamic_sets`, by set index: a static set
/// held in a map (`SetContents` in its manifest entry) gets its keys from the object's
/// `.pfc.sets` section; a dynamic set gets none (an object holds no contents for those:
/// they start empty, and `pfc set` fills them).
pub fn read_set_contents(bytes: &[u8], manifest: &Manifest) -> Result<Vec<Vec<Vec<u8>>>, ReadError> {
    let Some(sets) = &manifest.dynamic_sets else { return Ok(Vec::new()) };
    let file = parse_bpf_elf(bytes)?;
    let section = match file.section_by_name(SET_CONTENTS_SECTION) {
        Some(section) => section.data().map_err(|source| ElfReadError::Unreadable { source })?,
        None => &[],
    };
    let mut contents = vec![Vec::new(); sets.sets.len()];
    for set in &sets.sets {
        let Some(place) = set.contents else { continue };
        let size = place.key_size as usize;
        let range = (place.first as usize).checked_mul(size).and_then(|start| {
            let end = start.checked_add((place.keys as usize).checked_mul(size)?)?;
            (size > 0 && end <= section.len()).then_some(start..end)
        });
        let refuse = || ReadError::SetContents { set: set.name.clone(), keys: place.keys, bytes: section.len() };
        let range = range.ok_or_else(refuse)?;
        let slot = contents.get_mut(set.index as usize).ok_or_else(refuse)?;
        *slot = section[range].chunks(size).map(<[u8]>::to_vec).collect();
    }
    Ok(contents)
}

/// The values of each array map the manifest's `tables` name, from the object's
/// `.pfc.sets` section: per table its manifest entry and `entries * value_size` bytes
/// (the value of key `i` at `i * value_size`).
pub fn read_table_contents<'m>(
    bytes: &[u8],
    manifest: &'m Manifest,
) -> Result<Vec<(&'m TableContents, Vec<u8>)>, ReadError> {
    if manifest.tables.is_empty() {
        return Ok(Vec::new());
    }
    let file = parse_bpf_elf(bytes)?;
    let section = match file.section_by_name(SET_CONTENTS_SECTION) {
        Some(section) => section.data().map_err(|source| ElfReadError::Unreadable { source })?,
        None => &[],
    };
    let mut tables = Vec::with_capacity(manifest.tables.len());
    for table in &manifest.tables {
        let length = u64::from(table.entries) * u64::from(table.value_size);
        let end = table.offset.checked_add(length).filter(|end| *end <= section.len() as u64);
        let Some(end) = end else {
            return Err(ReadError::TableContents {
                map: table.map.clone(),
                entries: table.entries,
                value_size: table.value_size,
                offset: table.offset,
                bytes: section.len(),
            });
        };
        tables.push((table, section[table.offset as usize..end as usize].to_vec()));
    }
    Ok(tables)
}

/// The longest program name the kernel keeps (`BPF_OBJ_NAME_LEN` is 16 with the NUL).
pub(crate) const PROGRAM_NAME_MAX: usize = 15;
/// The program name when there is no file to name it after (`<stdin>`, `--pcap-filter`).
pub const DEFAULT_PROGRAM_NAME: &str = "pfc_filter";

/// The program (function symbol) name for a rule file called `file`, as bpftool and
/// `pfc status` show it: the file name without directory and extension, every character
/// the kernel refuses in a name (it allows letters, digits, `_` and `.`; a C symbol
/// allows no `.`) replaced by `_`, a leading digit prefixed with `pfc_`, cut to 15 bytes.
/// Names that are no file (`<stdin>`, `<text>`) and names with nothing left give
/// `DEFAULT_PROGRAM_NAME`.
pub fn program_name(file: &str) -> String {
    if file.starts_with('<') || file.is_empty() {
        return DEFAULT_PROGRAM_NAME.to_string();
    }
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
    let mut name: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if name.trim_matches('_').is_empty() {
        return DEFAULT_PROGRAM_NAME.to_string();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "pfc_");
    }
    name.truncate(PROGRAM_NAME_MAX);
    name
}

/// Whether `name` is one [`program_name`] can return: ASCII letters, digits and `_`, not
/// only `_`, no leading digit, at most [`PROGRAM_NAME_MAX`] bytes.
pub(crate) fn is_program_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= PROGRAM_NAME_MAX
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.trim_matches('_').is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_named_after_their_rule_file() {
        let cases = [
            ("rules.pf", "rules"),
            ("/etc/pfc/eth0.pf", "eth0"),
            ("edge-v2.pf", "edge_v2"),
            ("a.b.pf", "a_b"),
            ("2024-rules.pf", "pfc_2024_rules"),
            ("a_very_long_rule_file_name.pf", "a_very_long_rul"),
            ("règles.pf", "r_gles"),
            ("-.pf", DEFAULT_PROGRAM_NAME),
            ("<stdin>", DEFAULT_PROGRAM_NAME),
            ("<--pcap-filter>", DEFAULT_PROGRAM_NAME),
            ("noext", "noext"),
        ];
        for (file, name) in cases {
            assert_eq!(program_name(file), name, "{file}");
            assert!(name.len() <= PROGRAM_NAME_MAX);
            assert!(is_program_name(name), "{name}");
        }
    }

    #[test]
    fn bytes_that_are_no_pfc_object_say_what_they_are() {
        assert!(!is_elf(b"hook xdp\n"));
        assert!(matches!(read_manifest(b"\x7fELF\x02"), Err(ReadError::Elf(ElfReadError::Unreadable { .. }))));
    }
}
