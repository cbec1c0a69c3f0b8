//! Benchmark of the rule-set analysis (prints numbers; asserts nothing), on the rule
//! sets of the compile-time benchmark (`runtime/benches/perf/rulegen.rs`):
//! 1. the front end (parse + check) of 10,000 rules, the baseline;
//! 2. the engine lints (`pfc check --lints`) on the same 10,000 rules;
//! 3. `pfc diff` of two 1,000-rule sets that differ in 10 rules, and of two 10,000-rule
//!    sets that differ in 10 rules.
//!
//! Run: `cargo run --release --example analysis_bench`.

use std::time::{Duration, Instant};

use pfc_compiler::analysis::{diff, lints};
use pfc_compiler::program::Program;

#[allow(dead_code)]
#[path = "../runtime/benches/perf/rulegen.rs"]
mod rulegen;

fn program(text: &str) -> Program {
    let (program, diagnostics) = pfc_compiler::check_source(text);
    program.unwrap_or_else(|| panic!("generated rules do not check: {:?}", diagnostics.first()))
}

/// The median of `runs` timings of `work`.
fn median(runs: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// `text` with 10 rules changed: verdicts flipped and ports moved, spread over the set.
fn edited(text: &str, rules: usize) -> String {
    let step = rules / 10;
    text.lines()
        .map(|line| {
            let index = line
                .strip_prefix("rule r")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse::<usize>().ok());
            match index {
                Some(i) if i % step == step / 2 => {
                    if line.contains(": drop ") {
                        line.replacen(": drop ", ": pass ", 1)
                    } else {
                        line.replacen(": pass ", ": drop ", 1)
                    }
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() {
    let text = rulegen::rule_set(10_000);
    let front = median(5, || {
        let _ = pfc_compiler::check_source(&text);
    });
    let checked = program(&text);
    let mut found = 0;
    let lint = median(3, || found = lints::lint(&checked, default_span(&text), lints::Level::Default, &[]).len());
    println!("front end, 10,000 rules:          {:>9.1} ms", front.as_secs_f64() * 1e3);
    println!(
        "engine lints, 10,000 rules:       {:>9.1} ms ({found} warnings; {:.1}x the front end)",
        lint.as_secs_f64() * 1e3,
        lint.as_secs_f64() / front.as_secs_f64()
    );

    for rules in [1_000, 10_000] {
        let old_text = rulegen::rule_set(rules);
        let new_text = edited(&old_text, rules);
        let (old, new) = (program(&old_text), program(&new_text));
        let mut regions = 0;
        let time = median(3, || regions = diff::diff(&old, &new).regions.len());
        println!("diff, {rules:>6} rules, 10 edited: {:>9.1} ms ({regions} regions)", time.as_secs_f64() * 1e3);
    }
}

/// The `default` statement of a rule file.
fn default_span(text: &str) -> pfc_compiler::diagnostic::Span {
    lints::default_statement(&pfc_compiler::syntax::parse(text).0)
}
