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
pub mod elf;
pub mod eval;
pub mod fields;
pub mod hashing;
pub mod ir;
pub mod packet;
pub mod pcap;
pub mod program;
pub mod sources;
pub mod space;
pub mod syntax;
pub mod testcase;
pub mod verify;

use diagnostic::Diagnostic;
use program::Program;

/// Parses and checks a rule file: the front end in one call. The program is returned
/// only when there were no errors; warnings come with it.
/// An `include` in `source` is an error (there is no file to resolve it against; see
/// [`check_parsed`] for rule files read by a loader).
pub fn check_source(source: &str) -> (Option<Program>, Vec<Diagnostic>) {
    check_parsed(&sources::parse_with_includes(sources::LoadedFile::text(source), &mut sources::NoIncludes))
}

/// Checks rule files parsed with their includes (see [`sources::parse_with_includes`]).
pub fn check_parsed(parsed: &sources::Parsed) -> (Option<Program>, Vec<Diagnostic>) {
    let mut diagnostics = parsed.diagnostics.clone();
    let (program, check_diagnostics) = check::check(&parsed.file);
    diagnostics.extend(check_diagnostics);
    let program = if diagnostic::has_errors(&diagnostics) { None } else { program };
    (program, diagnostics)
}
