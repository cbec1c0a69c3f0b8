//! BPF ELF object bytes in, verdicts and map contents out: pfc's runtime, which runs a
//! compiled object in the rbpf VM (unprivileged, `pfc test`) or in the kernel
//! (`BPF_PROG_TEST_RUN` via libbpf-rs, `pfc load`).
//!
//! ```text
//! elf bytes ──BpfObject::parse──▶ BpfObject ──▶ vm::Vm       (rbpf + emulated maps)
//!          └──────────────────────────────────▶ kernel::KernelProgram (libbpf-rs)
//! ```
//! **Invariant:** libbpf-rs types never leave `kernel`; rbpf types never leave `vm`.
#![deny(missing_docs)]

pub mod bpf_object;
mod btf;
pub mod kernel;
pub mod vm;

pub use bpf_object::{BpfObject, Hook, MapDef, MapRelocation, MapType, ObjectError};
pub use btf::BtfError;
