//! BPF ELF object bytes in, verdicts and map contents out: pfc's runtime, which runs a
//! compiled object in the rbpf VM (unprivileged, `pfc test`) or in the kernel
//! (`BPF_PROG_TEST_RUN` via libbpf-rs, `pfc load`).
//!
//! ```text
//! elf bytes ──BpfObject::parse (pfc_compiler::object, pure)──▶ BpfObject ──▶ vm::Vm       (rbpf + emulated maps)
//!          └──────────────────────────────────▶ kernel::KernelProgram (libbpf-rs)
//!                                                   └─▶ attach (pinned, attached filters:
//!                                                        `pfc load/unload/status/stats`)
//! BpfObject + frame ──executor::Executor (VM or kernel alike)──▶ Outcome { verdict, rule }
//! ```
//! **Invariant:** libbpf-rs types never leave `kernel` and `attach::live` (the real side
//! of the `attach::BpfSys` seam); rbpf types never leave `vm`.
#![deny(missing_docs)]

pub mod attach;
pub mod executor;
pub mod kernel;
pub mod pins;
pub mod vm;

pub use executor::{Executor, Outcome, Ran};
pub use pfc_compiler::object::{BpfObject, BtfReadError, ElfReadError, MapDef, MapType, ObjectError};
pub use pfc_compiler::object::{Hook, ProgramType, Verdict};
