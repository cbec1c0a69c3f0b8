//! The object contract: what the compiler writes and the runtime, the CLI and the tests
//! read back, defined once. Pure (no syscalls, no I/O), like aya's `aya-obj` beside `aya`.
//!
//! - [`hook`] — [`Hook`] (where a program attaches: `xdp`, `tc-ingress`, `tc-egress`) and
//!   [`ProgramType`] (what the kernel sees): section name, `BPF_PROG_TYPE_*`, context
//!   layout ([`Context`]) and return codes both ways; [`Verdict`].
//! - [`maps`] — map layouts ([`MapSpec`]): pfc's counter array, rate-limit buckets.
//! - [`btf`] — the `.BTF` section describing the maps.
//! - [`write`] — an [`ObjectSpec`] in, ELF bytes out ([`write_object`]).
//!
//! **Invariant:** every number the kernel and pfc must agree on (context offsets, return
//! codes, section names, map layouts) is written here and nowhere else.

pub mod btf;
pub mod hook;
pub mod maps;
pub mod write;

pub use self::btf::{BtfError, DataType, Field};
pub use self::hook::{Context, Hook, ProgramType, Verdict};
pub use self::maps::{MapSpec, MapType, BPF_F_NO_PREALLOC};
pub use self::write::{write_object, ElfError, ObjectSpec, LICENSE, MANIFEST_SECTION};
