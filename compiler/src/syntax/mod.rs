//! Parsing: rule-file text in, an owned `ast::File` and syntax diagnostics out.
//!
//! The file is cut into statements at every line that starts with a statement keyword
//! (`include hook default set const rule`); each statement is parsed on its own, so one syntax
//! error does not hide the next. A rule statement of the common shape is read by a hand-written
//! fast path that gives pest's AST exactly (`fast.rs`); every other statement goes to pest. Before pest sees a statement its nesting depth is
//! measured and a statement nested deeper than [`MAX_NESTING`] is refused with a
//! diagnostic: the parser and every later stage recurse over expressions, and this is
//! what keeps them off the end of the stack.
//!
//! **Invariant:** pest types never leave this module (see `lower`).

pub(crate) mod ast;
mod fast;
#[cfg(test)]
mod fast_tests;
mod literal;
pub use literal::BAD_LITERAL;
mod lower;
pub(crate) mod set_file;
pub use set_file::{plain_prefixes, PlainPrefixes};

use crate::diagnostic::{Code, Diagnostic, Span};

/// How deeply parentheses and `not`s may nest in one statement.
pub const MAX_NESTING: usize = 64;

/// E0001: the text is not valid rule-file syntax.
pub(crate) const SYNTAX_ERROR: Code = Code("E0001");
/// E0002: an expression nests deeper than [`MAX_NESTING`].
pub(crate) const TOO_DEEP: Code = Code("E0002");

/// Parses a whole rule file, collecting every syntax error.
pub fn parse(source: &str) -> (ast::File, Vec<Diagnostic>) {
    parse_at(source, 0)
}

/// Parses a rule file whose text starts at byte `base` of a larger source map (see
/// [`crate::sources`]): every span is shifted by `base`.
pub(crate) fn parse_at(source: &str, base: usize) -> (ast::File, Vec<Diagnostic>) {
    let chunks: Vec<std::ops::Range<usize>> =
        statement_chunks(source).into_iter().map(|chunk| chunk.start + base..chunk.end + base).collect();
    let parsed = parse_chunks(source, base, &chunks);
    let mut file = ast::File::default();
    let mut diagnostics = Vec::new();
    for (chunk, (statement, mut found)) in chunks.into_iter().zip(parsed) {
        diagnostics.append(&mut found);
        match statement {
            Some(statement) => file.statements.push(statement),
            None => file.unparsed.push(unparsed(&source[chunk.start - base..chunk.end - base], chunk)),
        }
    }
    (file, diagnostics)
}

/// Statements to a file before parsing is spread over the cores.
const PARALLEL_FROM: usize = 2_000;

/// Parses every statement, in order. Statements are independent, so large files are
/// split into one contiguous run of statements per core.
fn parse_chunks(
    source: &str,
    base: usize,
    chunks: &[std::ops::Range<usize>],
) -> Vec<(Option<ast::Statement>, Vec<Diagnostic>)> {
    let parse_run = |run: &[std::ops::Range<usize>]| -> Vec<_> {
        run.iter().map(|chunk| parse_chunk(&source[chunk.start - base..chunk.end - base], chunk.start)).collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get()).min(8);
    if chunks.len() < PARALLEL_FROM || cores < 2 {
        return parse_run(chunks);
    }
    std::thread::scope(|scope| {
        let runs: Vec<_> =
            chunks.chunks(chunks.len().div_ceil(cores)).map(|run| scope.spawn(move || parse_run(run))).collect();
        runs.into_iter().flat_map(|run| run.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// One statement: its AST (or `None` after a syntax error) and its diagnostics. The
/// common rule shape is read by the fast path (`fast.rs`), everything else by pest.
fn parse_chunk(text: &str, start: usize) -> (Option<ast::Statement>, Vec<Diagnostic>) {
    match fast::rule_statement(text, start) {
        Some(statement) => (Some(statement), Vec::new()),
        None => parse_chunk_with_pest(text, start),
    }
}

/// One statement through the bracket checks and pest.
fn parse_chunk_with_pest(text: &str, start: usize) -> (Option<ast::Statement>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let statement = match unknown_statement(text, start).or_else(|| bracket_problem(text, start)) {
        Some(problem) => {
            diagnostics.push(problem);
            None
        }
        None => lower::parse_statement(text, start, &mut diagnostics),
    };
    (statement, diagnostics)
}

/// Byte ranges of the statements: each starts at a line whose first word is a
/// statement keyword and runs to the next such line. Text before the first keyword
/// that is not blank or a comment becomes a chunk of its own (and a syntax error).
fn statement_chunks(source: &str) -> Vec<std::ops::Range<usize>> {
    let mut starts = Vec::new();
    let mut line_start = 0;
    let mut leading_text = None;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start_matches([' ', '\t', '\r', '\u{0C}']);
        let word_offset = line_start + (line.len() - trimmed.len());
        if starts_with_keyword(trimmed) || looks_like_a_statement(line) {
            starts.push(word_offset);
        } else if starts.is_empty() && leading_text.is_none() && !is_blank_or_comment(trimmed) {
            leading_text = Some(word_offset);
        }
        line_start += line.len();
    }
    if let Some(start) = leading_text {
        starts.insert(0, start);
    }
    let mut chunks = Vec::with_capacity(starts.len());
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(source.len());
        chunks.push(start..end);
    }
    chunks
}

/// The first two words of a statement that failed to parse.
fn unparsed(text: &str, chunk: std::ops::Range<usize>) -> ast::Unparsed {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut words = text.split(|c: char| !is_word_char(c)).filter(|word| !word.is_empty());
    let keyword = words.next().unwrap_or_default().to_string();
    let name = words.next().map(str::to_string);
    ast::Unparsed { keyword, name, span: Span::new(chunk.start, chunk.end) }
}

/// Words that continue a statement on a new line although a name or a string follows
/// them: the reserved words, and those of atoms, limits, logs and verdicts.
const CONTINUATION_WORDS: [&str; 10] = ["and", "or", "not", "in", "if", "pcap", "per", "log", "pass", "drop"];

/// The words that start statements.
const STATEMENT_KEYWORDS: [&str; 6] = ["include", "hook", "default", "set", "const", "rule"];

/// An unindented line `WORD WORD…` or `WORD "…"` whose first word is not a keyword
/// (`inclde "x.pf"`, `rul ssh: drop`, nft's `table inet filter {`): a misspelt or unknown
/// statement, cut off as its own chunk so it gets its own diagnostic instead of being
/// read as the tail of the statement before it. Continuation lines of a condition or a
/// set never look like this: a name there is followed by an operator, `,`, `and`, `or`,
/// `in` or the end of the line, and the words that may start one followed by a name or a
/// string (`pcap "tcp"`, `per ip.src`, `log rate 10/s`, `drop log`) are not taken as
/// statements.
fn looks_like_a_statement(line: &str) -> bool {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return false;
    }
    let word_end = line.find(|c: char| !is_word_char(c)).unwrap_or(line.len());
    let (word, rest) = line.split_at(word_end);
    if CONTINUATION_WORDS.contains(&word) || !rest.starts_with([' ', '\t']) {
        return false;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let next_end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
    let next = &rest[..next_end];
    rest.starts_with('"')
        || (next.starts_with(|c: char| c.is_ascii_alphabetic()) && !["and", "or", "not", "in", "if"].contains(&next))
}

/// E0001 for a chunk whose first word starts no statement, with the keyword it is
/// closest to.
fn unknown_statement(text: &str, start: usize) -> Option<Diagnostic> {
    let word_end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(text.len());
    let word = &text[..word_end];
    if word.is_empty() || STATEMENT_KEYWORDS.contains(&word) || !looks_like_a_statement(text) {
        return None;
    }
    let diagnostic = Diagnostic::error(
        SYNTAX_ERROR,
        format!("`{word}` does not start a statement"),
        Span::new(start, start + word_end),
        "unknown statement",
    );
    let note = match crate::diagnostic::suggest(word, STATEMENT_KEYWORDS) {
        Some(keyword) => format!("did you mean `{keyword}`?"),
        None => "statements start with `include`, `hook`, `default`, `set`, `const` or `rule`".to_string(),
    };
    Some(diagnostic.with_note(note))
}

fn starts_with_keyword(line: &str) -> bool {
    STATEMENT_KEYWORDS.iter().any(|keyword| {
        line.strip_prefix(keyword)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    })
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with('#')
}

/// Checks brackets before pest sees the statement: nesting deeper than the limit, an
/// unclosed `(`/`{`, or a stray `)`/`}`. Nesting counts parentheses plus `not`s
/// stacked in a row (conservatively: until the next word that is not `not`).
fn bracket_problem(text: &str, base: usize) -> Option<Diagnostic> {
    let bytes = text.as_bytes();
    let mut open: Vec<(u8, usize)> = Vec::new();
    let mut nots = 0usize;
    let mut index = 0;
    let span_at = |index: usize| Span::new(base + index, base + index + 1);
    while index < bytes.len() {
        match bytes[index] {
            b'#' => {
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
                continue;
            }
            b'"' => {
                let start = index;
                index += 1;
                while index < bytes.len() && bytes[index] != b'"' && bytes[index] != b'\n' {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
                if bytes.get(index) != Some(&b'"') {
                    return Some(
                        Diagnostic::error(
                            SYNTAX_ERROR,
                            "unterminated string",
                            span_at(start),
                            "this `\"` is never closed",
                        )
                        .with_note("strings end with `\"` on the line they start"),
                    );
                }
            }
            bracket @ (b'(' | b'{') => open.push((bracket, index)),
            bracket @ (b')' | b'}') => {
                let expected = if bracket == b')' { b'(' } else { b'{' };
                match open.pop() {
                    Some((opened, _)) if opened == expected => {}
                    _ => {
                        let text = if bracket == b')' { "`)`" } else { "`}`" };
                        return Some(Diagnostic::error(
                            SYNTAX_ERROR,
                            format!("unmatched {text}"),
                            span_at(index),
                            "nothing to close here",
                        ));
                    }
                }
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                let start = index;
                while index < bytes.len() && (bytes[index].is_ascii_alphanumeric() || b"_-.:".contains(&bytes[index])) {
                    index += 1;
                }
                nots = if &text[start..index] == "not" { nots + 1 } else { 0 };
                if open.len() + nots > MAX_NESTING {
                    return Some(too_deep(Span::new(base + start, base + index)));
                }
                continue;
            }
            _ => {}
        }
        if open.len() + nots > MAX_NESTING {
            return Some(too_deep(span_at(index)));
        }
        index += 1;
    }
    open.pop().map(|(bracket, index)| {
        let (what, close) = if bracket == b'(' { ("`(`", "`)`") } else { ("`{`", "`}`") };
        Diagnostic::error(
            SYNTAX_ERROR,
            format!("unclosed {what}"),
            span_at(index),
            format!("this {what} is never closed"),
        )
        .with_note(format!("add the missing {close}"))
    })
}

fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::error(TOO_DEEP, "expression nested too deeply", span, "nesting passes the limit here")
        .with_note(format!("pfc accepts at most {MAX_NESTING} nested parentheses or `not`s in one statement"))
}
