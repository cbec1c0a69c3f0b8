//! Test cases for rule sets (`pfc test`). Input: the text of a `RULES.test.toml` case
//! file and the checked [`Program`] it tests; output: the cases with their packets built
//! and their expectations resolved to rule indices, plus a [`CaseError`] with a line
//! number for everything wrong in the file. Also the packet spec (`spec`) and capture
//! files ([`pcap`]). No I/O: `pcap = "…"` cases are returned as paths for the caller to
//! read.
//!
//! ```toml
//! [[case]]
//! name = "ssh from the office"
//! packet = "ipv4 src=10.1.2.3 / tcp dport=22"
//! expect = "pass"
//! rule = "ssh_office"          # optional; "default" = no rule matched
//!
//! [[case]]
//! name = "replayed capture"
//! pcap = "captures/ssh.pcap"   # relative to the case file
//! expect = ["drop", "pass"]    # one for all packets, or one per packet
//!
//! [[case]]
//! name = "a ping flood"
//! packet = "ipv4 / icmp"
//! at = "1.5s"                  # the first packet's time (rate limits read it)
//! repeat = 100                 # the packet 100 times ...
//! interval = "10ms"            # ... 10 ms apart
//! expect = ["20*pass", "2*drop", "pass"]   # `N*VERDICT` stands for N entries
//! ```
//!
//! Time: a case without `at` starts where the previous case's last packet was (0 for
//! the first); a `pcap` case's frames keep their records' spacing, shifted so the first
//! is at `at` when it is given.

mod fields;
pub mod pcap;
pub mod pcapng;
pub(crate) mod spec;
pub mod summary;

use std::collections::HashSet;
use std::ops::Range;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

pub use fields::{DEFAULT_DPORT, DEFAULT_SPORT, LAYERS};
pub use spec::{parse_hex, parse_spec, spec_bytes, SpecError};

use crate::program::{Program, Verdict};

/// The largest test packet (the kernel's `BPF_PROG_TEST_RUN` and pfc's VM take 64 KiB).
pub const MAX_PACKET_LEN: usize = 64 * 1024;

/// What a case expects of one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The verdict.
    pub verdict: Verdict,
    /// The deciding rule, when the case names one: `Some(None)` is the default verdict,
    /// `Some(Some(i))` rule `i` of the program.
    pub rule: Option<Option<usize>>,
    /// Whether the packet sends a log event, when the case says (`log = true`).
    pub log: Option<bool>,
}

/// Where a case's packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A packet spec, built.
    Spec {
        /// The spec as written.
        text: String,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// Raw bytes from `hex = "…"`.
    Hex {
        /// The frame.
        bytes: Vec<u8>,
    },
    /// A capture file, for the caller to read and pass to [`pcap::read_capture`].
    Pcap {
        /// The path as written (relative to the case file).
        path: String,
    },
}

/// When a case's packets arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// `at`: the first packet's time in nanoseconds; `None` continues from the case before.
    pub at_ns: Option<u64>,
    /// `repeat`: how many times a `packet`/`hex` case's frame is sent (1 when absent).
    pub repeat: u32,
    /// `interval`: nanoseconds between repeats.
    pub interval_ns: u64,
    /// Line and column of what decides the last packet's time (`interval` when the case
    /// repeats, else `at`, else the case's `name`): where an error says the packet times
    /// pass [`u64::MAX`] nanoseconds once the time the case starts at is known.
    pub at: (usize, usize),
}

impl Timing {
    /// The time of packet `index` (0-based) of a case that starts at `start_ns`, or `None`
    /// past `u64::MAX` nanoseconds.
    pub fn packet_time(&self, start_ns: u64, index: u32) -> Option<u64> {
        start_ns.checked_add(u64::from(index).checked_mul(self.interval_ns)?)
    }
}

/// What a case's time error says: the packet times pass what pfc keeps.
pub const TIME_OVERFLOW: &str =
    "the packet times pass the latest time pfc keeps (18446744073.709551615s: nanoseconds in 64 bits)";

/// The most packets one `repeat` sends.
pub const MAX_REPEAT: u32 = 1_000_000;

/// One `[[case]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Its name.
    pub name: String,
    /// The 1-based line of its `name`.
    pub line: usize,
    /// Its packets.
    pub input: Input,
    /// One expectation for every packet, or (pcap and `repeat` cases) one per packet.
    pub expect: Vec<Expectation>,
    /// When its packets arrive.
    pub timing: Timing,
    /// Dynamic sets whose contents this case sets (by index in
    /// [`Program::dynamic_sets`]); the others hold the rule file's contents.
    pub sets: Vec<(usize, Vec<crate::program::DynamicElement>)>,
}

/// Something wrong in a case file. Every variant knows its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaseError {
    /// The TOML does not parse, or does not have the shape of a case file.
    #[error("{toml_message}")]
    Toml {
        /// The TOML library's message.
        toml_message: String,
        /// Line and column.
        at: (usize, usize),
    },
    /// A packet spec that cannot be built.
    #[error("case `{case}`: {source}")]
    Spec {
        /// The case.
        case: String,
        /// What is wrong with the spec.
        #[source]
        source: SpecError,
        /// Line and column.
        at: (usize, usize),
    },
    /// `hex` with something that is not hex.
    #[error("case `{case}`: `hex` is not hex bytes (a stray `{found}`)")]
    BadHex {
        /// The case.
        case: String,
        /// The offending character.
        found: char,
        /// Line and column.
        at: (usize, usize),
    },
    /// A packet over [`MAX_PACKET_LEN`].
    #[error("case `{case}`: the packet has {len} bytes; test packets have at most {max}")]
    TooLarge {
        /// The case.
        case: String,
        /// Its length.
        len: usize,
        /// [`MAX_PACKET_LEN`].
        max: usize,
        /// Line and column.
        at: (usize, usize),
    },
    /// Not exactly one of `packet`, `hex`, `pcap`.
    #[error("case `{case}` needs exactly one of `packet`, `hex` or `pcap`")]
    Input {
        /// The case.
        case: String,
        /// Line and column.
        at: (usize, usize),
    },
    /// A verdict that is not `pass` or `drop`.
    #[error("case `{case}`: `{found}` is not a verdict (pass or drop)")]
    Verdict {
        /// The case.
        case: String,
        /// The word as written.
        found: String,
        /// Line and column.
        at: (usize, usize),
    },
    /// A rule name the rule file does not have.
    #[error("case `{case}`: the rule file has no rule `{rule}` (write \"default\" for the default verdict)")]
    UnknownRule {
        /// The case.
        case: String,
        /// The name as written.
        rule: String,
        /// Line and column.
        at: (usize, usize),
    },
    /// A list of expectations where only one makes sense, or lists of different lengths.
    #[error("case `{case}`: {problem}")]
    ExpectShape {
        /// The case.
        case: String,
        /// What is wrong.
        problem: &'static str,
        /// Line and column.
        at: (usize, usize),
    },
    /// `at`, `interval` or `repeat` written wrong.
    #[error("case `{case}`: {problem}")]
    Timing {
        /// The case.
        case: String,
        /// What is wrong.
        problem: String,
        /// Line and column.
        at: (usize, usize),
    },
    /// `sets` names a set that is not a dynamic set of the rule file, or gives elements
    /// the set cannot hold.
    #[error("case `{case}`: {problem}")]
    Sets {
        /// The case.
        case: String,
        /// What is wrong.
        problem: String,
        /// Line and column.
        at: (usize, usize),
    },
    /// Two cases with one name.
    #[error("a second case named `{case}` (names identify cases in reports)")]
    Duplicate {
        /// The name.
        case: String,
        /// Line and column.
        at: (usize, usize),
    },
    /// The file has no `[[case]]`.
    #[error("the file has no `[[case]]` tables")]
    NoCases {
        /// Line and column (1, 1).
        at: (usize, usize),
    },
    /// More than [`MAX_ERRORS`] errors: the rest of the file is not checked.
    #[error("more than {max} errors; the cases from here on are not checked")]
    TooManyErrors {
        /// [`MAX_ERRORS`].
        max: usize,
        /// Line and column of the case after the last error reported.
        at: (usize, usize),
    },
}

/// How many errors [`parse_cases`] reports before it stops checking.
pub const MAX_ERRORS: usize = 100;

impl CaseError {
    /// The 1-based line and column the error is about.
    pub fn position(&self) -> (usize, usize) {
        match self {
            CaseError::Toml { at, .. }
            | CaseError::Spec { at, .. }
            | CaseError::BadHex { at, .. }
            | CaseError::TooLarge { at, .. }
            | CaseError::Input { at, .. }
            | CaseError::Verdict { at, .. }
            | CaseError::UnknownRule { at, .. }
            | CaseError::ExpectShape { at, .. }
            | CaseError::Timing { at, .. }
            | CaseError::Sets { at, .. }
            | CaseError::Duplicate { at, .. }
            | CaseError::NoCases { at }
            | CaseError::TooManyErrors { at, .. } => *at,
        }
    }
}

/// A string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged, expecting = "expected a string or a list of strings, such as \"drop\" or [\"2*pass\", \"drop\"]")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    case: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    packet: Option<Spanned<String>>,
    hex: Option<Spanned<String>>,
    pcap: Option<Spanned<String>>,
    expect: Spanned<OneOrMany>,
    rule: Option<Spanned<OneOrMany>>,
    at: Option<Spanned<String>>,
    repeat: Option<Spanned<i64>>,
    interval: Option<Spanned<String>>,
    sets: Option<Spanned<std::collections::BTreeMap<String, Vec<SetElement>>>>,
    log: Option<Spanned<LogField>>,
}

/// An element in a case's `sets`: written as in the rule file (`"10.0.0.0/8"`, `"ssh"`),
/// or a TOML integer for a number (`[22, 80]`).
#[derive(Deserialize)]
#[serde(untagged, expecting = "expected an element as a string (\"10.0.0.0/8\", \"ssh\") or a number")]
enum SetElement {
    Text(String),
    Number(u64),
}

/// `log = true | false`, or per packet `log = ["100*true", "false", …]`.
#[derive(Deserialize)]
#[serde(untagged, expecting = "expected true, false or a list of strings, such as [\"2*true\", \"false\"]")]
enum LogField {
    One(bool),
    Many(Vec<String>),
}

/// Reads a case file against the program it tests. Returns the good cases and an error
/// for each bad one (a TOML error leaves no cases; past [`MAX_ERRORS`] errors, one
/// [`CaseError::TooManyErrors`] ends the list and the remaining cases are not checked).
/// Linear in the file's size: positions come from a `LineIndex` and duplicate names
/// from a hash set.
pub fn parse_cases(text: &str, program: &Program) -> (Vec<Case>, Vec<CaseError>) {
    let lines = LineIndex::new(text);
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let at = lines.position(error.span().map_or(0, |span| span.start));
            return (Vec::new(), vec![CaseError::Toml { toml_message: error.message().trim().to_string(), at }]);
        }
    };
    if raw.case.is_empty() {
        return (Vec::new(), vec![CaseError::NoCases { at: (1, 1) }]);
    }
    let mut cases: Vec<Case> = Vec::new();
    let mut errors = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    for raw_case in raw.case {
        let at = lines.position(raw_case.name.span().start);
        if errors.len() >= MAX_ERRORS {
            errors.push(CaseError::TooManyErrors { max: MAX_ERRORS, at });
            break;
        }
        let name = raw_case.name.get_ref().clone();
        if !names.insert(name.clone()) {
            errors.push(CaseError::Duplicate { case: name, at });
        }
        match build_case(raw_case, program, text, &lines) {
            Ok(case) => cases.push(case),
            Err(error) => errors.push(error),
        }
    }
    (cases, errors)
}

fn build_case(raw: RawCase, program: &Program, text: &str, lines: &LineIndex) -> Result<Case, CaseError> {
    let case = raw.name.get_ref().clone();
    let line = lines.line(raw.name.span().start);
    let at = |span: Range<usize>| lines.position(span.start);
    let input = match (&raw.packet, &raw.hex, &raw.pcap) {
        (Some(spec), None, None) => {
            let start = string_content_start(text, spec.span());
            let bytes = spec_bytes(spec.get_ref()).map_err(|source| CaseError::Spec {
                case: case.clone(),
                at: lines.position(start + source.span().start as usize),
                source,
            })?;
            Input::Spec { text: spec.get_ref().clone(), bytes }
        }
        (None, Some(hex), None) => {
            let bytes = parse_hex(hex.get_ref()).map_err(|offset| CaseError::BadHex {
                case: case.clone(),
                found: hex.get_ref()[offset..].chars().next().unwrap_or(' '),
                at: lines.position(string_content_start(text, hex.span()) + offset),
            })?;
            Input::Hex { bytes }
        }
        (None, None, Some(path)) => Input::Pcap { path: path.get_ref().clone() },
        _ => return Err(CaseError::Input { case, at: at(raw.name.span()) }),
    };
    if let Input::Spec { bytes, .. } | Input::Hex { bytes } = &input {
        if bytes.len() > MAX_PACKET_LEN {
            let at = at(raw.name.span());
            return Err(CaseError::TooLarge { case, len: bytes.len(), max: MAX_PACKET_LEN, at });
        }
    }
    let is_pcap = matches!(input, Input::Pcap { .. });
    let timing = timing(&case, &raw, is_pcap, lines)?;
    let per_packet = is_pcap || timing.repeat > 1;
    let mut expect = expectations(&case, &raw.expect, raw.rule.as_ref(), per_packet, program, lines)?;
    if let Some(log) = &raw.log {
        log_expectations(&case, log, &mut expect, per_packet, lines)?;
    }
    if timing.repeat > 1 && expect.len() > 1 && expect.len() != timing.repeat as usize {
        // Blame the list that set the count: `expect`, else `rule`, else `log`.
        let listed = |value: &OneOrMany| as_list(value).is_some_and(|list| list.len() > 1);
        let (problem, span) = if listed(raw.expect.get_ref()) {
            ("`expect` must list one verdict, or one per repeated packet", raw.expect.span())
        } else if let Some(rule) = raw.rule.as_ref().filter(|rule| listed(rule.get_ref())) {
            ("`rule` must list one rule, or one per repeated packet", rule.span())
        } else {
            let span = raw.log.as_ref().map_or(raw.expect.span(), Spanned::span);
            ("`log` must list one entry, or one per repeated packet", span)
        };
        return Err(CaseError::ExpectShape { case, problem, at: lines.position(span.start) });
    }
    let sets = match &raw.sets {
        Some(sets) => case_sets(&case, sets.get_ref(), program).map_err(|problem| CaseError::Sets {
            case: case.clone(),
            problem,
            at: at(sets.span()),
        })?,
        None => Vec::new(),
    };
    Ok(Case { name: case, line, input, expect, timing, sets })
}

/// `sets = { NAME = ["ELEMENT", …] }`: each named dynamic set's contents for the case,
/// checked as the rule file's elements are (`crate::frontend::dynamic_elements`).
fn case_sets(
    case: &str,
    sets: &std::collections::BTreeMap<String, Vec<SetElement>>,
    program: &Program,
) -> Result<Vec<(usize, Vec<crate::program::DynamicElement>)>, String> {
    let mut contents = Vec::new();
    for (name, written) in sets {
        let written: Vec<String> = written
            .iter()
            .map(|element| match element {
                SetElement::Text(text) => text.clone(),
                SetElement::Number(number) => number.to_string(),
            })
            .collect();
        let written = &written;
        let Some(index) = program.dynamic_sets.iter().position(|set| &set.name == name) else {
            let known: Vec<&str> = program.dynamic_sets.iter().map(|set| set.name.as_str()).collect();
            return Err(format!("`{name}` is not a dynamic set of the rule file (dynamic sets: {})", known.join(", ")));
        };
        let set = &program.dynamic_sets[index];
        let source = crate::frontend::ElementSource::Written(written);
        let origin = format!("case `{case}`, set `{name}`");
        let (elements, parsed) =
            crate::frontend::dynamic_elements(set, source, &origin, &mut crate::sources::NoIncludes);
        match elements {
            Some(elements) => contents.push((index, elements)),
            None => {
                let messages: Vec<String> = parsed
                    .diagnostics
                    .iter()
                    .map(|diagnostic| format!("{}: {}", diagnostic.code.0, diagnostic.message))
                    .collect();
                return Err(format!("set `{name}`: {}", messages.join("; ")));
            }
        }
    }
    Ok(contents)
}

fn timing(case: &str, raw: &RawCase, is_pcap: bool, lines: &LineIndex) -> Result<Timing, CaseError> {
    let error = |problem: String, span: Range<usize>| CaseError::Timing {
        case: case.to_string(),
        problem,
        at: lines.position(span.start),
    };
    let duration = |field: &Option<Spanned<String>>, name: &str| -> Result<Option<u64>, CaseError> {
        field
            .as_ref()
            .map(|text| {
                parse_duration(text.get_ref()).ok_or_else(|| {
                    error(
                        format!("`{name}` is not a time such as \"1.250s\", \"10ms\", \"50us\" or \"100ns\""),
                        text.span(),
                    )
                })
            })
            .transpose()
    };
    let at_ns = duration(&raw.at, "at")?;
    let interval_ns = duration(&raw.interval, "interval")?.unwrap_or(0);
    let repeat = match &raw.repeat {
        None => 1,
        Some(repeat) if is_pcap => return Err(error("a `pcap` case cannot `repeat`".to_string(), repeat.span())),
        Some(repeat) => match u32::try_from(*repeat.get_ref()) {
            Ok(n) if (1..=MAX_REPEAT).contains(&n) => n,
            _ => return Err(error(format!("`repeat` must be between 1 and {MAX_REPEAT}"), repeat.span())),
        },
    };
    if let (Some(interval), 1) = (&raw.interval, repeat) {
        return Err(error("`interval` needs `repeat`".to_string(), interval.span()));
    }
    let decides = match (&raw.interval, &raw.at) {
        (Some(interval), _) => interval.span(),
        (None, Some(at)) => at.span(),
        (None, None) => raw.name.span(),
    };
    let timing = Timing { at_ns, repeat, interval_ns, at: lines.position(decides.start) };
    // With `at` the last packet's time is known here; without, once the case before is run.
    if timing.packet_time(at_ns.unwrap_or(0), repeat - 1).is_none() {
        let last = if at_ns.is_some() { "`at` + (`repeat` - 1) × `interval`" } else { "(`repeat` - 1) × `interval`" };
        return Err(error(format!("{TIME_OVERFLOW}: {last}"), decides));
    }
    Ok(timing)
}

/// `"1.250s"`, `"10ms"`, `"50us"`, `"100ns"`, `"2m"`: a decimal number and a unit, in
/// nanoseconds (exact; fractions of a nanosecond are refused).
pub(crate) fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ns = whole.parse::<u64>().ok()?.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.bytes() {
        if place % 10 != 0 {
            return None;
        }
        place /= 10;
        ns = ns.checked_add(u64::from(digit - b'0') * place)?;
    }
    Some(ns)
}

fn expectations(
    case: &str,
    expect: &Spanned<OneOrMany>,
    rule: Option<&Spanned<OneOrMany>>,
    per_packet: bool,
    program: &Program,
    lines: &LineIndex,
) -> Result<Vec<Expectation>, CaseError> {
    let at = |span: Range<usize>| lines.position(span.start);
    let shape = |problem, span: Range<usize>| CaseError::ExpectShape { case: case.to_string(), problem, at: at(span) };
    let verdicts =
        as_list(expect.get_ref()).ok_or_else(|| shape("a count `N*` must be 1 to 1000000", expect.span()))?;
    let rules: Option<Vec<&str>> = match rule {
        Some(rule) => {
            Some(as_list(rule.get_ref()).ok_or_else(|| shape("a count `N*` must be 1 to 1000000", rule.span()))?)
        }
        None => None,
    };
    if verdicts.is_empty() {
        return Err(shape("`expect` needs at least one verdict", expect.span()));
    }
    if let (Some(rules), Some(span)) = (&rules, rule.map(Spanned::span)) {
        if rules.is_empty() {
            return Err(shape("`rule` needs at least one rule name (`\"default\"`: none matched)", span));
        }
        if !per_packet && rules.len() != 1 {
            return Err(shape("only `pcap` and `repeat` cases may list one rule per packet", span));
        }
        if rules.len() != verdicts.len() && rules.len() != 1 && verdicts.len() != 1 {
            return Err(shape("`rule` must have one entry, or as many as `expect`", span));
        }
    }
    if !per_packet && verdicts.len() != 1 {
        return Err(shape("only `pcap` and `repeat` cases may list one expectation per packet", expect.span()));
    }
    // One verdict for every packet with a rule per packet, or the other way round.
    let count = verdicts.len().max(rules.as_ref().map_or(1, Vec::len));
    let verdicts: Vec<&str> = (0..count).map(|index| verdicts[if verdicts.len() == 1 { 0 } else { index }]).collect();
    let mut out = Vec::with_capacity(verdicts.len());
    for (index, word) in verdicts.iter().enumerate() {
        let verdict = match *word {
            "pass" => Verdict::Pass,
            "drop" => Verdict::Drop,
            _ => {
                return Err(CaseError::Verdict {
                    case: case.to_string(),
                    found: word.to_string(),
                    at: at(expect.span()),
                })
            }
        };
        let rule_name = rules.as_ref().map(|rules| rules[if rules.len() == 1 { 0 } else { index }]);
        let rule = match rule_name {
            None => None,
            Some("default") => Some(None),
            Some(name) => match program.rules.iter().position(|rule| rule.name == name) {
                Some(index) => Some(Some(index)),
                None => {
                    let span = rule.map_or(expect.span(), Spanned::span);
                    return Err(CaseError::UnknownRule {
                        case: case.to_string(),
                        rule: name.to_string(),
                        at: at(span),
                    });
                }
            },
        };
        out.push(Expectation { verdict, rule, log: None });
    }
    Ok(out)
}

/// Adds `log` to the expectations: one bool for every packet, or one per packet (the
/// expectations are then spread to one per packet when `expect` had one).
fn log_expectations(
    case: &str,
    log: &Spanned<LogField>,
    expect: &mut Vec<Expectation>,
    per_packet: bool,
    lines: &LineIndex,
) -> Result<(), CaseError> {
    let shape =
        |problem| CaseError::ExpectShape { case: case.to_string(), problem, at: lines.position(log.span().start) };
    let many = match log.get_ref() {
        LogField::One(every) => {
            expect.iter_mut().for_each(|expectation| expectation.log = Some(*every));
            return Ok(());
        }
        LogField::Many(many) => OneOrMany::Many(many.clone()),
    };
    let words = as_list(&many).ok_or_else(|| shape("a count `N*` must be 1 to 1000000"))?;
    let mut flags = Vec::with_capacity(words.len());
    for word in words {
        flags.push(match word {
            "true" => true,
            "false" => false,
            _ => return Err(shape("`log` entries are \"true\" or \"false\" (with a count: \"3*true\")")),
        });
    }
    if !per_packet || flags.is_empty() {
        return Err(shape("only `pcap` and `repeat` cases may list one `log` per packet"));
    }
    if expect.len() == 1 {
        *expect = vec![expect[0].clone(); flags.len()];
    }
    if expect.len() != flags.len() {
        return Err(shape("`log` must list one entry per packet, as many as `expect`"));
    }
    expect.iter_mut().zip(flags).for_each(|(expectation, flag)| expectation.log = Some(flag));
    Ok(())
}

/// The entries of a string or list, `N*WORD` standing for N copies of `WORD`; `None`
/// for a count of 0 or over [`MAX_REPEAT`].
fn as_list(value: &OneOrMany) -> Option<Vec<&str>> {
    let items: Vec<&String> = match value {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many.iter().collect(),
    };
    let mut out = Vec::new();
    for item in items {
        match item.split_once('*') {
            Some((count, word)) if !count.is_empty() && count.trim().bytes().all(|b| b.is_ascii_digit()) => {
                let count: u32 = count.trim().parse().ok().filter(|n| (1..=MAX_REPEAT).contains(n))?;
                out.extend(std::iter::repeat(word.trim()).take(count as usize));
            }
            _ => out.push(item.as_str()),
        }
    }
    Some(out)
}

/// Offset of a TOML string's first character: after its opening quote(s).
fn string_content_start(text: &str, span: Range<usize>) -> usize {
    let literal = text.get(span.clone()).unwrap_or("");
    let quotes = literal.chars().take_while(|c| *c == '"' || *c == '\'').count().min(3);
    let mut start = span.start + quotes;
    // A multi-line string's first newline is not part of its content.
    if quotes == 3 && text[start..].starts_with('\n') {
        start += 1;
    }
    start
}

/// Line starts of a text, to turn byte offsets into lines and columns in O(log n)
/// (scanning from the start for every case made a 20,000-case file take minutes).
struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of every line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1)).collect();
        LineIndex { text, starts }
    }

    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|start| *start <= offset.min(self.text.len()))
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line(offset);
        let start = self.starts[line - 1];
        let column = self.text.get(start..offset).map_or(0, |before| before.chars().count()) + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_positions_match_a_scan_from_the_start() {
        let text = "ab\nçd\n\nlast";
        let index = LineIndex::new(text);
        for offset in (0..=text.len() + 2).filter(|offset| text.is_char_boundary((*offset).min(text.len()))) {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
            assert_eq!(index.position(offset), (line, column), "offset {offset}");
        }
    }
}
