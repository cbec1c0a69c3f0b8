//! `pfc compile FILE [-o OUT.o] [--emit asm|ir]`: rule file to ELF object.

use std::path::Path;
use std::process::ExitCode;

use pfc_compiler::codegen::Options;

use crate::report::{self, Report};
use crate::{source, Emit, Format};

/// Compiles one file; writes the object unless only a listing was asked for.
pub fn run(path: &Path, output: Option<&Path>, emit: Option<Emit>, counters: bool, format: Format) -> ExitCode {
    let mut report = Report::new(format);
    let file = match source::read(path) {
        Ok(file) => file,
        Err(message) => {
            report.io_error(&message);
            return report.finish();
        }
    };
    if let Some(problem) = &file.problem {
        report.add(&file, std::slice::from_ref(problem));
        return report.finish();
    }
    let (compiled, diagnostics) = pfc_compiler::compile::compile(&file.text, Options { counters });
    report.add(&file, &diagnostics);
    let Some(compiled) = compiled else { return report.finish() };
    match emit {
        Some(Emit::Asm) => print!("{}", compiled.code.disassemble()),
        Some(Emit::Ir) => print!("{}", pfc_compiler::ir::print(&compiled.filter)),
        None => {}
    }
    if emit.is_none() || output.is_some() {
        let target = output.map(Path::to_path_buf).unwrap_or_else(|| path.with_extension("o"));
        if let Err(error) = std::fs::write(&target, &compiled.object) {
            report.io_error(&format!("{}: cannot write: {error}", target.display()));
            return report.finish();
        }
        if format == Format::Human {
            eprintln!(
                "{}: {} rules, {} instructions, {} bytes -> {}",
                file.name,
                compiled.program.rules.len(),
                compiled.code.insns.len(),
                compiled.object.len(),
                target.display()
            );
        }
    }
    let _ = report::has_errors(&diagnostics);
    report.finish()
}
