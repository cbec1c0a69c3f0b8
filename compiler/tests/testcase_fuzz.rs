//! Property tests of case-file parsing: case files built from the format's own pieces
//! (and some near misses) never make [`parse_cases`] panic, every case it accepts has at
//! least one expectation (what `pfc test` indexes), every error points inside the
//! file, and a 20,000-case file parses (it took minutes when positions were found by
//! scanning from the start for every case).

use pfc_compiler::check_source;
use pfc_compiler::program::Program;
use pfc_compiler::testcase::{parse_cases, CaseError, MAX_ERRORS};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn program() -> Program {
    let rules = "default pass\nrule ssh: drop if tcp.dport == 22\nrule dns: pass if udp.dport == 53\n";
    check_source(rules).0.expect("the rule file checks")
}

/// Lines of case files: good ones, near misses, and hostile ones.
const LINES: &[&str] = &[
    "[[case]]",
    "[case]",
    "[[case]",
    "name = \"a\"",
    "name = \"b\"",
    "name = \"\\u001b[31mred\\u0007\"",
    "name = 7",
    "packet = \"ipv4 / tcp dport=22\"",
    "packet = \"ipv6 / udp dport=53 / payload len=10\"",
    "packet = \"\"",
    "packet = \"tcp dport=\"",
    "packet = \"ipv4 / payload len=70000\"",
    "hex = \"02 00 00 00 00 02\"",
    "hex = \"0g\"",
    "hex = \"\"",
    "pcap = \"c.pcap\"",
    "pcap = \"\"",
    "expect = \"pass\"",
    "expect = \"drop\"",
    "expect = \"accept\"",
    "expect = []",
    "expect = [\"drop\", \"pass\"]",
    "expect = [[]]",
    "expect = {}",
    "rule = \"ssh\"",
    "rule = \"default\"",
    "rule = \"nope\"",
    "rule = []",
    "rule = [\"ssh\", \"dns\", \"ssh\"]",
    "case = []",
    "case = [{}]",
    "case = [{ name = \"i\", hex = \"00\", expect = \"pass\" }]",
    "packet = \"\"\"\nipv4\n\"\"\"",
    "# comment \u{1b}]0;title\u{7}",
    "",
    "\"",
    "=",
];

fn case_file() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LINES), 0..24).prop_map(|lines| lines.join("\n"))
}

fn check_parse(text: &str, program: &Program) {
    let (cases, errors) = parse_cases(text, program);
    let lines = text.lines().count().max(1);
    for case in &cases {
        assert!(!case.expect.is_empty(), "case `{}` has no expectation in:\n{text}", case.name);
        assert!((1..=lines).contains(&case.line), "case `{}` on line {} of {lines}:\n{text}", case.name, case.line);
    }
    // A case can add two errors (a duplicate name and its own), then one more says "too many".
    assert!(errors.len() <= MAX_ERRORS + 2, "{} errors", errors.len());
    for error in &errors {
        let (line, column) = error.position();
        assert!((1..=lines + 1).contains(&line) && column >= 1, "{error} at {line}:{column} in:\n{text}");
    }
}

proptest! {
    #![proptest_config(Config { cases: 1024, ..Config::default() })]

    #[test]
    fn generated_case_files_never_panic(text in case_file()) {
        check_parse(&text, &program());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_parse(&String::from_utf8_lossy(&bytes), &program());
    }
}

#[test]
fn an_empty_expect_list_is_an_error_at_the_list() {
    let text = "[[case]]\nname = \"cap\"\npcap = \"c.pcap\"\nexpect = []\n";
    let (cases, errors) = parse_cases(text, &program());
    assert!(cases.is_empty());
    let messages: Vec<(String, (usize, usize))> =
        errors.iter().map(|error| (error.to_string(), error.position())).collect();
    assert_eq!(messages, [("case `cap`: `expect` needs at least one verdict".to_string(), (4, 10))]);
}

#[test]
fn twenty_thousand_cases_parse() {
    let mut text = String::new();
    for index in 0..20_000 {
        text.push_str(&format!(
            "[[case]]\nname = \"c{index}\"\npacket = \"ipv4 / tcp dport=22\"\nexpect = \"drop\"\n\n"
        ));
    }
    let (cases, errors) = parse_cases(&text, &program());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(cases.len(), 20_000);
    assert_eq!(cases[19_999].line, 5 * 19_999 + 2);
}

#[test]
fn past_the_error_limit_one_error_says_so() {
    let text: String = (0..MAX_ERRORS + 50)
        .map(|index| format!("[[case]]\nname = \"x{index}\"\npacket = \"tcp\"\nexpect = \"accept\"\n"))
        .collect();
    let (_, errors) = parse_cases(&text, &program());
    assert_eq!(errors.len(), MAX_ERRORS + 1);
    let last = errors.last().expect("errors");
    assert!(matches!(last, CaseError::TooManyErrors { .. }), "{last}");
    assert_eq!(last.position(), (4 * MAX_ERRORS + 2, 8));
}
