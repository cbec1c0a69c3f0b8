//! Compile-side benchmark of the classifier: ClassBench-shaped sets
//! (`pfc_compiler::classbench`) in, per set the time of each compile phase, the form
//! `compile()` chose, the plan's shape and pfc's estimate of the kernel verifier's work
//! out. No kernel needed (the per-packet and load figures are in
//! `cargo bench -p pfc-runtime --bench classbench`).
//!
//! Run with `cargo bench -p pfc-compiler --bench classify`. Knobs:
//! `PFC_CLASSBENCH_SHAPES=acl,fw` and `PFC_CLASSBENCH_SIZES=100,10000,100000`, `PFC_RUNS`
//! (default 3: the median is printed). Target: 10,000 rules in ≤ 200 ms including check.
//! Nothing here asserts on time.

use std::time::{Duration, Instant};

use pfc_compiler::classbench::{self, Shape};
use pfc_compiler::codegen::{self, classifier, layout::Layout, Form, Options};
use pfc_compiler::{check_source, compile, ir, verify};

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().map(|text| text.split(',').map(|item| item.trim().to_string()).collect())
}

fn main() {
    let shapes: Vec<Shape> = match env_list("PFC_CLASSBENCH_SHAPES") {
        Some(names) => names.iter().filter_map(|name| Shape::from_name(name)).collect(),
        None => Shape::ALL.to_vec(),
    };
    let sizes: Vec<usize> = match env_list("PFC_CLASSBENCH_SIZES") {
        Some(sizes) => sizes.iter().filter_map(|size| size.parse().ok()).collect(),
        None => vec![100, 1_000, 10_000],
    };
    let runs: usize = std::env::var("PFC_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    println!("== classifier compile: median of {runs} runs, ms ==");
    println!(
        "{:<6} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>10}  form",
        "shape",
        "rules",
        "check",
        "ir",
        "plan",
        "codegen",
        "verify",
        "compile()",
        "slots",
        "least",
        "estimate",
        "est/slots"
    );
    for shape in shapes {
        for &rules in &sizes {
            row(shape, rules, runs);
        }
    }
}

fn row(shape: Shape, rules: usize, runs: usize) {
    let text = classbench::generate(shape, rules, 0, 11).text;
    let mut phases = vec![Vec::new(); 6];
    let mut form = String::new();
    let mut slots = 0;
    let mut least = 0;
    let mut estimate = String::new();
    let mut ratio = String::new();
    for _ in 0..runs {
        let start = Instant::now();
        let (program, diagnostics) = check_source(&text);
        let Some(program) = program else {
            println!("{:<6} {:>6} refused by check: {:?}", shape.name(), rules, diagnostics.first());
            return;
        };
        phases[0].push(start.elapsed());
        let start = Instant::now();
        let filter = ir::build(&program);
        phases[1].push(start.elapsed());
        let start = Instant::now();
        let plan = Layout::new(&filter.uses(), true).ok().and_then(|layout| classifier::plan(&filter, &layout));
        phases[2].push(start.elapsed());
        least =
            plan.as_ref().map_or(0, |plan| codegen::classifier_least_slots(&filter, Options { counters: true }, plan));
        let start = Instant::now();
        let code = codegen::generate_form(&filter, Options { counters: true }, Form::Classified);
        phases[3].push(start.elapsed());
        if let Ok(code) = &code {
            let start = Instant::now();
            let verified = verify::verify(code, filter.hook);
            phases[4].push(start.elapsed());
            let found = verify::estimate_processed(code, filter.hook, 50_000_000);
            slots = code.encode().len() / 8;
            estimate = format!("{}{}", found.processed, if found.complete { "" } else { "+" });
            ratio = format!("{:.2}", found.processed as f64 / slots as f64);
            if let Err(error) = verified {
                estimate.push_str(&format!(" ({error})"));
            }
        }
        let start = Instant::now();
        let (compiled, _) = compile::compile(&text, Options { counters: true });
        phases[5].push(start.elapsed());
        let chosen = compiled.as_ref().map(|compiled| chosen_form(&compiled.code.disassemble()));
        form = match (chosen, plan) {
            (Some(chosen), Some(plan)) => format!("{chosen}; plan: {}", describe(&plan)),
            (Some(chosen), None) => chosen,
            (None, _) => "refused".to_string(),
        };
    }
    let medians: Vec<String> = phases
        .iter_mut()
        .map(|times| {
            times.sort();
            times.get(times.len() / 2).map_or("-".to_string(), |d: &Duration| format!("{:.1}", d.as_secs_f64() * 1e3))
        })
        .collect();
    println!(
        "{:<6} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>10}  {}",
        shape.name(),
        rules,
        medians[0],
        medians[1],
        medians[2],
        medians[3],
        medians[4],
        medians[5],
        slots,
        least,
        estimate,
        ratio,
        form
    );
}

/// The form named by the listing's first classifier (or table) comment, else the fallback.
fn chosen_form(listing: &str) -> String {
    listing
        .lines()
        .find_map(|line| {
            let inline = line.split_once("; classifier: ").map(|(_, rest)| format!("classified ({rest})"));
            inline.or_else(|| line.split_once("; classifier table: ").map(|(_, rest)| format!("table ({rest})")))
        })
        .unwrap_or_else(|| "not classified".to_string())
}

/// Per diagram: rules, nodes, leaves, leaf entries.
fn describe(plan: &classifier::Classifier) -> String {
    let parts: Vec<String> = plan
        .diagrams
        .iter()
        .map(|diagram| {
            let mut leaves = 0;
            let mut entries = 0;
            let mut residual = 0;
            for node in &diagram.nodes {
                if let classifier::TreeNode::Leaf(rules) = node {
                    leaves += 1;
                    entries += rules.len();
                    residual += rules.iter().map(|(_, tests)| tests.len()).sum::<usize>();
                }
            }
            format!("{} nodes, {leaves} leaves, {entries} entries, {residual} tests", diagram.nodes.len())
        })
        .collect();
    parts.join(" | ")
}
