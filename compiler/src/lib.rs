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

pub mod bpf;
pub mod check;
pub mod codegen;
pub mod compile;
pub mod diagnostic;
pub mod elf;
pub mod eval;
pub mod fields;
pub mod hashing;
pub mod ir;
pub mod packet;
pub mod pcap;
pub mod program;
pub mod syntax;
pub mod testcase;
pub mod verify;

use diagnostic::Diagnostic;
use program::Program;

/// Parses and checks a rule file: the front end in one call. The program is returned
/// only when there were no errors; warnings come with it.
pub fn check_source(source: &str) -> (Option<Program>, Vec<Diagnostic>) {
    let (file, mut diagnostics) = syntax::parse(source);
    let (program, check_diagnostics) = check::check(&file);
    diagnostics.extend(check_diagnostics);
    let program = if diagnostic::has_errors(&diagnostics) { None } else { program };
    (program, diagnostics)
}
