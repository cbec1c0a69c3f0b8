//! Benchmark of the rule-set analysis: generated rule sets in, the median wall time of
//! each analysis and what it found out (prints a table; asserts nothing). Targets
//! (issue 15, docs/analysis.md): shadowing lints on 10,000 rules ≤ 2 s; `pfc diff` of
//! two 1,000-rule sets differing in 10 rules ≤ 1 s; of two 10,000-rule ClassBench-shaped
//! sets ≤ 10 s.
//!
//! Rule sets: the compile benchmark's edge firewall (`runtime/benches/perf/rulegen.rs`)
//! and ClassBench-shaped sets (`pfc_compiler::classbench`). The front end of 10,000
//! edge rules is measured in the same run as the baseline the others are compared with.
//!
//! Run: `cargo bench -p pfc-compiler --bench analysis` (all rows), or with words after
//! `--` to run only the rows whose name contains one of them
//! (`cargo bench -p pfc-compiler --bench analysis -- diff`). `PFC_BENCH_ROUNDS` sets the
//! number of timed runs per row (default 3; the median is printed).

use std::time::{Duration, Instant};

use pfc_compiler::analysis::{diff, lints};
use pfc_compiler::classbench::{self, Shape};
use pfc_compiler::program::Program;

#[allow(dead_code)]
#[path = "../../runtime/benches/perf/rulegen.rs"]
mod rulegen;

fn program(text: &str) -> Program {
    let (program, diagnostics) = pfc_compiler::check_source(text);
    program.unwrap_or_else(|| panic!("generated rules do not check: {:?}", diagnostics.first()))
}

/// The median of `rounds` timings of `work`.
fn median(rounds: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds.max(1))
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// The rule lines of a file (`rule NAME: …`) by position.
fn rule_lines(lines: &[String]) -> Vec<usize> {
    (0..lines.len()).filter(|&i| lines[i].starts_with("rule ")).collect()
}

fn flip(line: &str) -> String {
    if line.contains(": drop") {
        line.replacen(": drop", ": pass", 1)
    } else {
        line.replacen(": pass", ": drop", 1)
    }
}

/// `text` with `count` verdicts flipped, spread evenly over the rules.
fn flipped(text: &str, count: usize) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rules = rule_lines(&lines);
    let step = (rules.len() / count).max(1);
    for &at in rules.iter().skip(step / 2).step_by(step).take(count) {
        lines[at] = flip(&lines[at]);
    }
    lines.join("\n") + "\n"
}

/// `text` with `count` edits of the kinds a review sees, spread over the rules, in
/// turn: a verdict flipped, a rule deleted, a rule moved 50 rules earlier, a flipped
/// copy inserted 100 rules earlier, a prefix widened by 8 bits.
fn edited(text: &str, count: usize) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rules = rule_lines(&lines);
    let step = (rules.len() / count).max(1);
    // From the last edit to the first, so earlier positions stay valid.
    let targets: Vec<usize> = rules.iter().copied().skip(step / 2).step_by(step).take(count).collect();
    for (n, &at) in targets.iter().enumerate().rev() {
        let earlier = |back: usize| rules[rules.iter().position(|&r| r == at).unwrap_or(0).saturating_sub(back)];
        match n % 5 {
            0 => lines[at] = flip(&lines[at]),
            1 => {
                lines.remove(at);
            }
            2 => {
                let line = lines.remove(at);
                lines.insert(earlier(50), line);
            }
            3 => {
                let copy = flip(&lines[at]).replacen("rule ", "rule copy_", 1);
                lines.insert(earlier(100), copy);
            }
            _ => lines[at] = widened(&lines[at]),
        }
    }
    lines.join("\n") + "\n"
}

/// The first IPv4 prefix of the line 8 bits shorter (`/24` -> `/16`), or the verdict
/// flipped when there is none.
fn widened(line: &str) -> String {
    let Some(slash) = line.find('/') else { return flip(line) };
    let digits: String = line[slash + 1..].chars().take_while(char::is_ascii_digit).collect();
    let Ok(len) = digits.parse::<u32>() else { return flip(line) };
    let start = line[..slash].rfind(|c: char| !(c.is_ascii_digit() || c == '.')).map_or(0, |i| i + 1);
    let Ok(address) = line[start..slash].parse::<std::net::Ipv4Addr>() else { return flip(line) };
    let shorter = len.saturating_sub(8);
    let mask = if shorter == 0 { 0 } else { u32::MAX << (32 - shorter) };
    let prefix = std::net::Ipv4Addr::from(u32::from(address) & mask);
    format!("{}{prefix}/{shorter}{}", &line[..start], &line[slash + 1 + digits.len()..])
}

/// The `default` statement of a rule file.
fn default_span(text: &str) -> pfc_compiler::diagnostic::Span {
    lints::default_statement(&pfc_compiler::syntax::parse(text).0)
}

struct Bench {
    filters: Vec<String>,
    rounds: usize,
    baseline: Option<Duration>,
}

impl Bench {
    fn wanted(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }

    fn row(&mut self, name: &str, target: Option<f64>, mut work: impl FnMut() -> String) {
        if !self.wanted(name) {
            return;
        }
        let mut found = String::new();
        let time = median(self.rounds, || found = work());
        let ms = time.as_secs_f64() * 1e3;
        let ratio =
            self.baseline.map_or(String::new(), |base| format!("{:>7.1}x", time.as_secs_f64() / base.as_secs_f64()));
        let goal = target.map_or(String::new(), |t| {
            format!("  target {:.0} ms: {}", t * 1e3, if time.as_secs_f64() <= t { "met" } else { "MISSED" })
        });
        println!("{name:<44} {ms:>10.1} ms {ratio}  {found}{goal}");
    }
}

fn lint_row(bench: &mut Bench, name: &str, text: &str, level: lints::Level) {
    if !bench.wanted(name) {
        return;
    }
    let checked = program(text);
    let span = default_span(text);
    let (_, earlier) = pfc_compiler::check_source(text);
    bench.row(name, (level == lints::Level::Default).then_some(2.0), || {
        let found = lints::lint(&checked, span, level, &earlier);
        let count = |code| found.iter().filter(|d| d.code == code).count();
        format!(
            "{} never deciding, {} redundant, {} overlaps",
            count(lints::SHADOWED),
            count(lints::REDUNDANT),
            count(lints::CORRELATED)
        )
    });
}

fn diff_row(bench: &mut Bench, name: &str, old_text: &str, new_text: &str, target: f64) {
    if !bench.wanted(name) {
        return;
    }
    let (old, new) = (program(old_text), program(new_text));
    bench.row(name, Some(target), || {
        let result = diff::diff(&old, &new);
        let confirmed = result.regions.iter().filter(|r| r.witness.is_some()).count();
        format!("{confirmed} regions confirmed, {} unknown", result.regions.len() - confirmed)
    });
}

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let rounds = std::env::var("PFC_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut bench = Bench { filters, rounds, baseline: None };
    println!("{:<44} {:>13} {:>8}  found", "what", "median", "vs base");

    let edge_10k = rulegen::rule_set(10_000);
    let front = median(rounds.max(5), || {
        let _ = pfc_compiler::check_source(&edge_10k);
    });
    println!("{:<44} {:>10.1} ms {:>7.1}x  (baseline)", "front end, edge 10,000 rules", front.as_secs_f64() * 1e3, 1.0);
    bench.baseline = Some(front);

    lint_row(&mut bench, "lints, edge 10,000 rules", &edge_10k, lints::Level::Default);
    for shape in [Shape::Acl, Shape::Fw] {
        let set = classbench::generate(shape, 10_000, 0, 1);
        lint_row(
            &mut bench,
            &format!("lints, classbench {} 10,000 rules", shape.name()),
            &set.text,
            lints::Level::Default,
        );
    }
    lint_row(&mut bench, "lints=all, edge 1,000 rules", &rulegen::rule_set(1_000), lints::Level::All);

    let edge_1k = rulegen::rule_set(1_000);
    diff_row(&mut bench, "diff, edge 1,000 rules, 10 flipped", &edge_1k, &flipped(&edge_1k, 10), 1.0);
    diff_row(&mut bench, "diff, edge 1,000 rules, 10 edits", &edge_1k, &edited(&edge_1k, 10), 1.0);
    diff_row(&mut bench, "diff, edge 10,000 rules, 10 edits", &edge_10k, &edited(&edge_10k, 10), 10.0);
    for shape in [Shape::Acl, Shape::Fw, Shape::Ipc] {
        let name = format!("diff, classbench {} 10,000 rules, 10 edits", shape.name());
        if bench.wanted(&name) {
            let set = classbench::generate(shape, 10_000, 0, 1);
            diff_row(&mut bench, &name, &set.text, &edited(&set.text, 10), 10.0);
        }
    }
}
