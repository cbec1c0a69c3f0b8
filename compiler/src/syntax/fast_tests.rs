//! The fast path against pest: on a corpus of valid and broken statements, every statement
//! the fast path accepts must come out of pest (with the bracket checks before it) with the
//! same AST, spans included, and no diagnostic.

use super::{fast, parse_chunk_with_pest, statement_chunks};
use crate::classbench::{self, Shape};

/// Statements written to sit on the fast path's edges: each either takes it with pest's
/// AST or goes to pest.
const EDGE_CASES: &[&str] = &[
    "rule a: drop",
    "rule a : drop  \n",
    "rule a:drop if tcp",
    "rule a: drop if tcp and udp",
    "rule a: drop if tcp.dport==80",
    "rule a: drop if tcp.dport ==80 and ip.src in 10.0.0.0/8",
    "rule a: drop if ip.src in 10.0.0.0 /8",
    "rule a: drop if ip.src in 10.0.0.0/ 8",
    "rule a: drop if ip.src in 10.0.0.0/33",
    "rule a: drop if ip.src in 10.0.0.0/0x8",
    "rule a: drop if ip.src in 10.0.0.256/8",
    "rule a: drop if ip.src in 1.2.3.4.5",
    "rule a: drop if ip.src in 1.2.3",
    "rule a: drop if ip.src in 1.2.3..1.2.4",
    "rule a: drop if ip.src in 1.2.3.4..1.2.3.9",
    "rule a: drop if tcp.dport in 1..5",
    "rule a: drop if tcp.dport in 1...5",
    "rule a: drop if tcp.dport in 1.. 5",
    "rule a: drop if tcp.dport in 0x10..0X20",
    "rule a: drop if tcp.dport == 0x",
    "rule a: drop if tcp.dport == 0xfg",
    "rule a: drop if tcp.dport == 12ab",
    "rule a: drop if tcp.dport == 1e5",
    "rule a: drop if tcp.dport == 340282366920938463463374607431768211456",
    "rule a: drop if tcp.dport == 340282366920938463463374607431768211455",
    "rule a: drop if ip6.src in ::1",
    "rule a: drop if ip6.src in::1",
    "rule a: drop if ip6.src in 2a00::/12",
    "rule a: drop if ip6.src in 2a00::/129",
    "rule a: drop if ip6.src in ::ffff:1.2.3.4/128",
    "rule a: drop if ip6.src in ::1..::5",
    "rule a: drop if ip6.src in 12:34",
    "rule a: drop if eth.src == 02:00:5e:10:00:01",
    "rule a: drop if eth.src == dead:beef::1",
    "rule a: drop if ip.src not in 10.0.0.0/8",
    "rule a: drop if ip.src not  in\n10.0.0.0/8",
    "rule a: drop if ip.src notin 10.0.0.0/8",
    "rule a: drop if ip.src in blocklist",
    "rule a: drop if ip.src in and",
    "rule a: drop if tcp.flags == syn",
    "rule a: drop if tcp.flags == syn | ack",
    "rule a: drop if tcp.flags & syn == syn",
    "rule a: drop if tcp.flags == face_id:",
    "rule a: drop if tcp.flags == add-on",
    "rule a: drop if tcp.dport != 22 and tcp.dport < 10 and tcp.dport <= 9 and tcp.dport > 1 and tcp.dport >= 2",
    "rule a: drop if tcp.dport = 22",
    "rule a: drop if tcp.dport === 22",
    "rule a: drop if tcp.dport << 22",
    "rule a: drop if tcp.dport == 22 or udp",
    "rule a: drop if not tcp",
    "rule a: drop if (tcp)",
    "rule a: drop if tcp.dport in { 22, 80 }",
    "rule a: drop if rate > 10/s",
    "rule a: drop if rate > 10/8",
    "rule a: drop if rate",
    "rule a: drop if pcap \"tcp\"",
    "rule a: drop if pcap == 1",
    "rule a: drop log",
    "rule a: drop log if tcp",
    "rule a: drop if tcp # comment",
    "rule a: drop if tcp\n# comment\n",
    "rule a: drop if tcp.dport == 80# comment (with { brackets\n",
    "rule a: drop if tcp.dport == 80 # é\r\n  and ip.src in 10.0.0.0/8#x\n\n# block 3\n",
    "rule a: drop # no condition\n",
    "rule a: drop if ip.src in 10.0.0.0/#8",
    "rule a: drop if ip.src # c\n in 10.0.0.0/8",
    "rule a: drop if ip.src not # c\n in 10.0.0.0/8",
    "rule a:# c\n drop if tcp.dport in 1..#2",
    "rule a: drop if tcp.dport == #\n 22",
    "rule a: drop if tcp.dport == 22 and",
    "rule a: drop if",
    "rule a: drop if and",
    "rule a: drop if in.x == 1",
    "rule a: drop if tcp.in == 1",
    "rule a: drop if tcp.dport.x == 1",
    "rule a: drop if tcp. == 1",
    "rule a: drop if ip.src in 10.0.0.0/8\n    and tcp.dport == 22\n",
    "rule a: drop if tcp.dport == 22\u{0B}",
    "rule a: drop if tcp.dport == 22\u{0C}\r\n",
    "rule a: drop if tcp.dport == é",
    "rule if: drop",
    "rule a: if",
    "rule a: drop drop",
    "rule a.b: drop",
    "rules a: drop",
    "rule-x a: drop",
    "rule _a-b: _x if _y._z",
];

/// Characters that random edits put into statements.
const EDIT_CHARACTERS: &[char] = &[
    '.', ':', '/', '0', '9', 'a', 'f', 'x', '_', '-', '=', '!', '<', '>', '#', '(', ')', '{', '}', ',', '&', '|', '"',
    ' ', '\t', '\n', '\u{0B}', 'é',
];

/// Words that random edits put in place of tokens.
const EDIT_WORDS: &[&str] =
    &["and", "or", "not", "in", "if", "rule", "log", "pcap", "rate", "drop", "==", "..", "/", "::", "0x", "#x"];

#[test]
fn every_statement_the_fast_path_accepts_is_pests() {
    let corpus = corpus();
    let (mut accepted, mut checked) = (0, 0);
    for text in &corpus {
        for chunk in statement_chunks(text) {
            checked += 1;
            let statement_text = &text[chunk.clone()];
            let Some(fast) = fast::rule_statement(statement_text, chunk.start + 7) else { continue };
            accepted += 1;
            let (pest, diagnostics) = parse_chunk_with_pest(statement_text, chunk.start + 7);
            assert!(diagnostics.is_empty(), "pest reports {diagnostics:?} for the accepted {statement_text:?}");
            assert_eq!(Some(format!("{fast:?}")), pest.map(|pest| format!("{pest:?}")), "{statement_text:?}");
        }
    }
    assert!(corpus.len() > 20_000, "the corpus has only {} texts", corpus.len());
    let to_pest = checked - accepted;
    assert!(accepted > 5_000 && to_pest > 5_000, "{accepted} of {checked} statements took the fast path");
}

#[test]
fn every_classbench_rule_takes_the_fast_path() {
    for shape in Shape::ALL {
        let text = classbench::generate(shape, 300, 0, 5).text;
        for chunk in statement_chunks(&text) {
            let statement_text = &text[chunk.clone()];
            if statement_text.starts_with("rule") {
                assert!(fast::rule_statement(statement_text, chunk.start).is_some(), "{statement_text:?}");
            }
        }
    }
}

/// Whole files, each of their lines, ClassBench rules, the edge cases, and for each line
/// its truncation at every token and forty random edits.
fn corpus() -> Vec<String> {
    let mut files = Vec::new();
    for directory in ["../tests/diagnostics", "../rules-examples"] {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(directory);
        let mut paths: Vec<_> = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("reading {}: {error}", directory.display()))
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|extension| extension == "pf"))
            .collect();
        paths.sort();
        files.extend(paths.iter().filter_map(|path| std::fs::read_to_string(path).ok()));
    }
    for (index, shape) in Shape::ALL.into_iter().enumerate() {
        files.push(classbench::generate(shape, 120, 0, 11 + index as u64).text);
    }
    let mut lines: Vec<String> = EDGE_CASES.iter().map(|line| line.to_string()).collect();
    for file in &files {
        lines.extend(file.lines().filter(|line| !line.trim().is_empty()).map(str::to_string));
    }
    let mut corpus = files;
    let mut random = Random(0x5eed);
    for line in &lines {
        corpus.push(line.clone());
        if line.contains(" and ") {
            // The condition continued on the next lines.
            corpus.push(line.replace(" and ", "\n  and "));
        }
        let tokens = tokens(line);
        for end in tokens.iter().map(|token| token.end) {
            corpus.push(line[..end].to_string());
        }
        for _ in 0..40 {
            corpus.push(edit(line, &tokens, &mut random));
        }
    }
    corpus
}

/// Byte ranges of the line's tokens: runs of word characters, runs of whitespace, and
/// every other character on its own.
fn tokens(line: &str) -> Vec<std::ops::Range<usize>> {
    let class = |c: char| {
        if c.is_alphanumeric() || "_-.:/".contains(c) {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2
        }
    };
    let mut tokens: Vec<std::ops::Range<usize>> = Vec::new();
    for (index, c) in line.char_indices() {
        match tokens.last_mut() {
            Some(last) if class(c) != 2 && line[last.clone()].chars().all(|previous| class(previous) == class(c)) => {
                last.end = index + c.len_utf8()
            }
            _ => tokens.push(index..index + c.len_utf8()),
        }
    }
    tokens
}

/// One random change: a token deleted, doubled or replaced by a keyword or operator, or
/// one character replaced or inserted.
fn edit(line: &str, tokens: &[std::ops::Range<usize>], random: &mut Random) -> String {
    if tokens.is_empty() {
        return line.to_string();
    }
    let token = tokens[random.below(tokens.len())].clone();
    let (before, after) = (&line[..token.start], &line[token.end..]);
    match random.below(5) {
        0 => format!("{before}{after}"),
        1 => format!("{before}{0}{0}{after}", &line[token.clone()]),
        2 => format!("{before}{}{after}", EDIT_WORDS[random.below(EDIT_WORDS.len())]),
        3 => {
            let c = EDIT_CHARACTERS[random.below(EDIT_CHARACTERS.len())];
            let mut text = line.to_string();
            let at = token.start + random.below(token.len()).min(token.len() - 1);
            if line.is_char_boundary(at) && line.is_char_boundary(at + 1) {
                text.replace_range(at..at + 1, &c.to_string());
            }
            text
        }
        _ => {
            let c = EDIT_CHARACTERS[random.below(EDIT_CHARACTERS.len())];
            format!("{before}{c}{}{after}", &line[token])
        }
    }
}

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound.max(1)
    }
}
