//! pfc's compiler: rule text in, diagnostics and eBPF ELF bytes out. No I/O, no libbpf.
//!
//! ```text
//!  rules.pf ──syntax──▶ ast::File (owned, spans) ──check──▶ program::Program (typed, resolved)
//!                                                              │
//!                          eval (the executable specification) ◀┘
//! ```
//!
//! **Invariant:** nothing in this crate reads files, opens sockets or calls the kernel.
//! **Invariant:** every stage returns its result together with all the diagnostics it
//! found; none stops at the first problem.
#![deny(missing_docs)]

pub mod analysis;
pub mod bpf;
pub mod check;
pub mod classbench;
pub mod codegen;
pub mod compile;
pub mod diagnostic;
pub mod eval;
pub mod fields;
mod frontend;
pub(crate) mod hashing;
pub mod ir;
pub mod object;
pub mod packet;
pub mod pcap;
pub mod program;
pub mod sources;
pub mod space;
pub mod syntax;
pub mod testcase;
pub mod verify;

pub use frontend::{check_parsed, check_source, dynamic_elements, ElementSource};
