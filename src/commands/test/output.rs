//! Case results in, reports out: for people (failures, coverage, `N passed, M failed`),
//! one JSON document, or JUnit XML for CI systems. All on stdout.

use std::fmt::Write as _;

use pfc_compiler::eval::Outcome;
use pfc_compiler::testcase::Expectation;

use crate::escape::escape;

/// The `schema` of the `--format json` report: bumped whenever its shape changes
/// (docs/cli.md describes each version).
pub const TEST_SCHEMA: &str = "pfc.test/2";

/// How `pfc test` reports case results.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    /// Failures with their packets, then `N passed, M failed`.
    Human,
    /// One JSON document with every result.
    Json,
    /// JUnit XML, one `<testcase>` per packet.
    Junit,
}

/// What happened to one packet of one case.
pub struct CaseResult {
    /// The case name (`name [packet N]` for capture cases).
    pub name: String,
    /// The case's line in the case file.
    pub line: usize,
    /// The packet spec, when the case has one.
    pub spec: Option<String>,
    /// A one-line summary of the frame as pfc parses it.
    pub summary: String,
    /// What the case expects.
    pub expected: Expectation,
    /// The verdict and deciding rule (`None` when skipped).
    pub actual: Option<Outcome>,
    /// Why the packet was not run (kernel refused it).
    pub skipped: Option<String>,
    /// The log events the packet sent.
    pub events: Vec<pfc_compiler::program::log::Event>,
}

impl CaseResult {
    /// Whether the packet ran and the answer differs from the expectation.
    pub fn failed(&self) -> bool {
        self.actual.is_some_and(|actual| {
            actual.verdict != self.expected.verdict
                || self.expected.rule.is_some_and(|rule| rule != actual.rule)
                || self.expected.log.is_some_and(|sent| sent == self.events.is_empty())
        })
    }
}

/// What the report is about.
pub struct Context<'a> {
    /// The rule file's name.
    pub rules_file: &'a str,
    /// The case file's name.
    pub cases_file: &'a str,
    /// "rbpf VM" or "kernel".
    pub backend: &'a str,
    /// "jit", "interpreter" (rbpf) or "kernel".
    pub executor: &'a str,
    /// Rule names in order.
    pub rules: &'a [String],
    /// Whether to list rules no case exercised.
    pub coverage: bool,
}

impl Context<'_> {
    fn rule_name(&self, rule: Option<usize>) -> &str {
        match rule {
            Some(index) => self.rules.get(index).map_or("?", String::as_str),
            None => "default",
        }
    }

    fn expected_text(&self, expected: &Expectation) -> String {
        match expected.rule {
            Some(rule) => format!("{} by {}", expected.verdict.as_str(), self.decider(rule)),
            None => expected.verdict.as_str().to_string(),
        }
    }

    fn actual_text(&self, actual: &Outcome) -> String {
        format!("{} by {}", actual.verdict.as_str(), self.decider(actual.rule))
    }

    fn decider(&self, rule: Option<usize>) -> String {
        match rule {
            Some(_) => format!("rule {}", self.rule_name(rule)),
            None => "the default".to_string(),
        }
    }

    /// Rules that decided no packet.
    fn uncovered(&self, results: &[CaseResult]) -> Vec<&str> {
        let mut decided = vec![false; self.rules.len()];
        for rule in results.iter().filter_map(|result| result.actual.and_then(|actual| actual.rule)) {
            decided[rule] = true;
        }
        self.rules.iter().zip(decided).filter(|(_, hit)| !hit).map(|(name, _)| name.as_str()).collect()
    }
}

/// Prints the report in `format`.
pub fn print(format: TestFormat, context: &Context<'_>, results: &[CaseResult]) {
    let text = match format {
        // Case names, specs and paths come from the user: no terminal controls.
        TestFormat::Human => escape(&human(context, results)).into_owned(),
        TestFormat::Json => json(context, results).to_string() + "\n",
        TestFormat::Junit => junit(context, results),
    };
    print!("{text}");
}

fn counts(results: &[CaseResult]) -> (usize, usize, usize) {
    let skipped = results.iter().filter(|result| result.skipped.is_some()).count();
    let failed = results.iter().filter(|result| result.failed()).count();
    (results.len() - skipped - failed, failed, skipped)
}

fn human(context: &Context<'_>, results: &[CaseResult]) -> String {
    let mut out = format!(
        "{}: {} case{} from {} in the {}{}\n",
        context.rules_file,
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        context.cases_file,
        context.backend,
        match context.executor {
            "kernel" => String::new(),
            executor => format!(" ({executor})"),
        }
    );
    for result in results {
        if result.failed() {
            let actual = result.actual.as_ref().map_or(String::new(), |actual| context.actual_text(actual));
            let _ = writeln!(out, "\nFAIL {} (line {})", result.name, result.line);
            if let Some(spec) = &result.spec {
                let _ = writeln!(out, "  spec:     {spec}");
            }
            let _ = writeln!(out, "  packet:   {}", result.summary);
            let _ = writeln!(out, "  expected: {}", context.expected_text(&result.expected));
            let _ = writeln!(out, "  actual:   {actual}");
            if let Some(log) = result.expected.log {
                let said = |sent: bool| if sent { "a log event" } else { "no log event" };
                let _ = writeln!(out, "  log:      expected {}, got {}", said(log), said(!result.events.is_empty()));
            }
        } else if let Some(reason) = &result.skipped {
            let _ = writeln!(out, "SKIP {}: {reason}", result.name);
        }
    }
    if context.coverage {
        let uncovered = context.uncovered(results);
        let total = context.rules.len();
        if uncovered.is_empty() {
            let _ = writeln!(out, "\ncoverage: every rule ({total}) decided at least one case");
        } else {
            let _ = writeln!(
                out,
                "\ncoverage: {} of {total} rules decided no case: {}",
                uncovered.len(),
                uncovered.join(", ")
            );
        }
    }
    let events: usize = results.iter().map(|result| result.events.len()).sum();
    if events > 0 {
        let _ = writeln!(out, "\n{events} log event{} sent", if events == 1 { "" } else { "s" });
    }
    let (passed, failed, skipped) = counts(results);
    out.push('\n');
    if skipped > 0 {
        let _ = writeln!(out, "{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        let _ = writeln!(out, "{passed} passed, {failed} failed");
    }
    out
}

fn json(context: &Context<'_>, results: &[CaseResult]) -> serde_json::Value {
    let rule_json = |rule: Option<usize>| match rule {
        Some(index) => serde_json::json!(context.rule_name(Some(index))),
        None => serde_json::Value::Null,
    };
    let cases: Vec<serde_json::Value> = results
        .iter()
        .map(|result| {
            serde_json::json!({
                "name": result.name,
                "line": result.line,
                "spec": result.spec,
                "packet": result.summary,
                "expected": {
                    "verdict": result.expected.verdict.as_str(),
                    "rule": result.expected.rule.map(rule_json),
                    "log": result.expected.log,
                },
                "events": result.events.iter().map(|event| serde_json::json!({
                    "time_ns": event.time_ns,
                    "rule": context.rule_name(Some(event.rule as usize)),
                    "action": event.action,
                    "ifindex": event.ifindex,
                    "frame_len": event.frame_len,
                    "captured": event.bytes.len(),
                })).collect::<Vec<_>>(),
                "actual": result.actual.map(|actual| serde_json::json!({
                    "verdict": actual.verdict.as_str(),
                    "rule": rule_json(actual.rule),
                })),
                "skipped": result.skipped,
                "passed": result.actual.is_some() && !result.failed(),
            })
        })
        .collect();
    let (passed, failed, skipped) = counts(results);
    let mut document = serde_json::json!({
        "schema": TEST_SCHEMA,
        "rules": context.rules_file,
        "cases_file": context.cases_file,
        "backend": context.backend,
        "executor": context.executor,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "cases": cases,
    });
    if context.coverage {
        document["uncovered"] = serde_json::json!(context.uncovered(results));
    }
    document
}

fn junit(context: &Context<'_>, results: &[CaseResult]) -> String {
    let (_, failed, skipped) = counts(results);
    let suite = xml_escape(context.rules_file);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"pfc test\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">",
        results.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" errors=\"0\">",
        results.len()
    );
    for result in results {
        let name = xml_escape(&result.name);
        let _ = write!(out, "    <testcase classname=\"{suite}\" name=\"{name}\"");
        if result.failed() {
            let actual = result.actual.as_ref().map_or(String::new(), |actual| context.actual_text(actual));
            let message = format!("expected {}, got {actual}", context.expected_text(&result.expected));
            let detail = match &result.spec {
                Some(spec) => format!("spec: {spec}\npacket: {}", result.summary),
                None => format!("packet: {}", result.summary),
            };
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\">{}</failure>",
                xml_escape(&message),
                xml_escape(&detail)
            );
            out.push_str("    </testcase>\n");
        } else if let Some(reason) = &result.skipped {
            let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml_escape(reason));
        } else {
            out.push_str("/>\n");
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// A JUnit document for a run that stopped before its cases ran (bad case file, rule
/// file errors, a pfc bug): one test case `what` with an `<error>` holding `message`, so
/// CI shows the reason instead of an empty or missing report.
pub fn junit_error(rules_file: &str, what: &str, message: &str) -> String {
    let suite = xml_escape(rules_file);
    let first_line = message.lines().next().unwrap_or_default();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<testsuites name=\"pfc test\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n");
    let _ = writeln!(out, "  <testsuite name=\"{suite}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">");
    let _ = writeln!(out, "    <testcase classname=\"{suite}\" name=\"{}\">", xml_escape(what));
    let _ = writeln!(out, "      <error message=\"{}\">{}</error>", xml_escape(first_line), xml_escape(message));
    out.push_str("    </testcase>\n  </testsuite>\n</testsuites>\n");
    out
}

/// Text safe inside XML attributes and elements; characters XML 1.0 forbids become `?`.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}
