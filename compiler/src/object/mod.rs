//! The object contract: what the compiler writes and the runtime, the CLI and the tests
//! read back, defined once. Pure (no syscalls, no I/O), like aya's `aya-obj` beside `aya`.
//!
//! - [`hook`] — [`Hook`] (where a program attaches: `xdp`, `tc-ingress`, `tc-egress`) and
//!   [`ProgramType`] (what the kernel sees): section name, `BPF_PROG_TYPE_*`, context
//!   layout ([`Context`]) and return codes both ways; [`Verdict`].
//! - `manifest` — the typed [`Manifest`] in `.pfc.manifest`, written by the compiler
//!   and read back (from the compiler, an object file or a state record) by the runtime.
//! - [`maps`] — map layouts ([`MapSpec`]): pfc's counter array, rate-limit buckets.
//! - `digest` — the digests of an object's code, maps and manifest that `pfc compile`
//!   writes into the manifest and `pfc load OBJ` checks ([`check_digest`]).
//! - `btf` — the `.BTF` section describing the maps (writer); `btf_read` — its reader
//!   (map definitions out of any libbpf-style `.BTF`, clang's too). One kind table.
//! - `write` — an [`ObjectSpec`] in, ELF bytes out ([`write_object`]); `read` — ELF
//!   bytes in, the manifest of a pfc object (or why they are not one) out, the keys of
//!   the static sets it holds in maps ([`read_set_contents`]), and the rule that names a
//!   program after its rule file ([`program_name`]); `bpf_object` — ELF
//!   bytes in, a [`BpfObject`] (program type, code, [`crate::bpf::MapReloc`]s, [`MapDef`]s)
//!   out, for the runtime to load into the kernel or the VM.
//!
//! **Invariant:** every number the kernel and pfc must agree on (context offsets, return
//! codes, section names, map layouts) is written here and nowhere else.

// The files are private: their items are re-exported below, so the module reads as one.
pub(crate) mod bpf_object;
pub(crate) mod btf;
pub(crate) mod btf_read;
pub(crate) mod digest;
pub mod hook;
pub(crate) mod manifest;
pub mod maps;
pub(crate) mod read;
pub(crate) mod write;

pub use self::bpf_object::{BpfObject, MapDef, ObjectError};
pub use self::btf::{BtfError, DataType, Field};
pub use self::btf_read::BtfReadError;
pub use self::digest::{check_digest, DigestError};
pub use self::hook::{Context, Hook, ProgramType, Verdict};
pub use self::manifest::{
    CountersManifest, LimitManifest, LimitStatsEntry, LogRuleManifest, LogsManifest, Manifest, ObjectDigest,
    SetContents, SetManifest, SetMapManifest, SetsManifest, TableContents,
};
pub use self::maps::{MapSpec, MapType, BPF_F_NO_PREALLOC};
pub use self::read::{
    is_elf, program_name, read_manifest, read_set_contents, read_table_contents, ElfReadError, ReadError,
};
pub use self::write::{write_object, ElfError, ObjectSpec, LICENSE, MANIFEST_SECTION, SET_CONTENTS_SECTION};
