//! One compile phase on one rule file, for profilers: a ClassBench-shaped set (or a rule
//! file) in, the phase run once and a one-line summary out. Under
//! `valgrind --tool=callgrind` each phase's instruction count is the difference between
//! two runs (`generate` alone, then `generate` plus the phase), repeatable to a few
//! thousand instructions, unlike wall-clock time on a shared machine.
//!
//! ```text
//! cargo build --release -p pfc-compiler --example phases
//! phases write ipc 10000 ipc10k.pf          # writes the set (seed 11, the classify bench's)
//! phases PHASE ipc10k.pf                    # PHASE: read parse check ir plan emit verify compile
//! ```
//!
//! `read` only reads the file (the baseline to subtract); `parse` parses it; `check`
//! parses and checks; `ir` also lowers to the optimized IR; `plan` also plans the
//! classifier; `emit` also emits its inline code (with counters); `verify` also runs
//! pfc's own verifier on that code (both passes); `compile` runs the whole `compile()`
//! (with counters), which checks on its own. `phases syntax FILE` parses
//! every line of FILE as a rule file of its own and prints the AST and the diagnostics:
//! two builds' outputs on one corpus of broken statements must be equal when a parser
//! change is meant to keep the accepted language and every message.

use std::process::ExitCode;

use pfc_compiler::classbench::{self, Shape};
use pfc_compiler::codegen::{self, Form, Options};
use pfc_compiler::{check, check_source, compile, ir, syntax, verify};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize| args.get(index).map(String::as_str);
    match (arg(0), arg(1), arg(2), arg(3)) {
        (Some("write"), Some(shape), Some(rules), Some(path)) => {
            let (Some(shape), Ok(rules)) = (Shape::from_name(shape), rules.parse()) else {
                eprintln!("usage: phases write SHAPE RULES FILE");
                return ExitCode::FAILURE;
            };
            let text = classbench::generate(shape, rules, 0, 11).text;
            if let Err(error) = std::fs::write(path, text) {
                eprintln!("writing {path}: {error}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        (Some(phase), Some(path), None, None) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("reading {path}: {error}");
                    return ExitCode::FAILURE;
                }
            };
            run(phase, &text)
        }
        _ => {
            eprintln!("usage: phases write SHAPE RULES FILE | phases (read|parse|check|ir|plan|emit|verify|compile|syntax) FILE");
            ExitCode::FAILURE
        }
    }
}

fn run(phase: &str, text: &str) -> ExitCode {
    match phase {
        "read" => println!("{} bytes", text.len()),
        "syntax" => {
            for line in text.lines() {
                println!("{line}\n{:?}", syntax::parse(line));
            }
        }
        "parse" => {
            let (file, diagnostics) = syntax::parse(text);
            println!("{} statements, {} diagnostics", file.statements.len(), diagnostics.len());
        }
        "check" => {
            let (file, _) = syntax::parse(text);
            let (program, diagnostics) = check::check(&file);
            println!("checked: {}, {} diagnostics", program.is_some(), diagnostics.len());
        }
        "ir" => {
            let (Some(program), _) = check_source(text) else {
                eprintln!("the file does not check");
                return ExitCode::FAILURE;
            };
            let filter = ir::build(&program);
            println!("{} rules in the IR", filter.rules.len());
        }
        "plan" | "emit" | "verify" => {
            let (Some(program), _) = check_source(text) else {
                eprintln!("the file does not check");
                return ExitCode::FAILURE;
            };
            let filter = ir::build(&program);
            let Some(plan) = codegen::plan_classifier(&filter) else {
                eprintln!("the set gets no classifier");
                return ExitCode::FAILURE;
            };
            let nodes: usize = plan.diagrams.iter().map(|diagram| diagram.nodes.len()).sum();
            println!("{} diagrams, {nodes} nodes", plan.diagrams.len());
            if phase == "plan" {
                return ExitCode::SUCCESS;
            }
            let options = Options { counters: true };
            let code = match codegen::generate_planned(&filter, options, Form::Classified, Some(&plan)) {
                Ok(code) => code,
                Err(error) => {
                    eprintln!("no inline code: {error}");
                    return ExitCode::FAILURE;
                }
            };
            println!("{} instructions", code.insns.len());
            if phase == "verify" {
                println!("verifier: {:?}", verify::verify(&code, filter.hook).map_err(|error| error.to_string()));
            }
        }
        "compile" => {
            let (compiled, diagnostics) = compile::compile(text, Options { counters: true });
            match compiled {
                Some(compiled) => println!("{} object bytes", compiled.object.len()),
                None => {
                    println!("refused: {} diagnostics", diagnostics.len());
                    let errors = diagnostics.iter().filter(|d| d.severity == pfc_compiler::diagnostic::Severity::Error);
                    for error in errors.take(3) {
                        println!("{}: {}", error.code, error.message);
                    }
                }
            }
        }
        _ => {
            eprintln!("unknown phase `{phase}`: read, parse, check, ir, plan, emit, verify, compile or syntax");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
