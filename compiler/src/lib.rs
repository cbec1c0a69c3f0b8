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
//!
//! # Public API
//!
//! What this crate offers is what is listed here: the stage modules below (each with
//! its own `//!` saying what goes in and what comes out) and the front-end functions
//! re-exported at the root. Inside each module, what only the crate itself uses is
//! `pub(crate)` (helpers, tables, sub-modules such as `object::{read, write, btf}`,
//! whose items `object` re-exports), so an item nobody calls is a compiler warning.
//!
//! | module | used by |
//! |---|---|
//! | [`compile`] — the driver: text in, [`compile::Compiled`] (program, IR, code, manifest, ELF) out | CLI, runtime tests, benches |
//! | [`object`] — the object contract: `Hook`, `ProgramType`, `Manifest`, map layouts and names, ELF/BTF writer and reader | runtime, CLI, tests |
//! | [`syntax`], [`check`], [`program`], [`sources`] — parse and check rule files (with includes) | CLI (`pfc check`, `pfc set`), tests |
//! | [`ir`], [`codegen`], [`bpf`], [`verify`] — lowering, code generation, instructions, pfc's verifier | runtime (VM, JIT check), CLI listings, tests |
//! | [`eval`] — the interpreter every back end is compared with | CLI (`pfc test`), differential tests |
//! | [`analysis`], [`space`] — rule-set analysis (`pfc diff`, `explain`, lints) | CLI |
//! | [`pcap`] — libpcap filter expressions | CLI (`--pcap-filter`), tests |
//! | [`testcase`], [`packet`] — `pfc test` cases and the packet builder they use; captures read and written (`pfc watch --pcapng`), packet summaries | CLI, tests |
//! | [`fields`], [`diagnostic`] — the packet model and diagnostics every stage shares | everyone |
//! | [`classbench`] — ClassBench-shaped rule sets | benches, tests |
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
