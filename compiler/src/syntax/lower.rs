//! Parse-tree lowering: one statement's text in, an owned [`ast::Statement`] out.
//!
//! This is the only file that sees pest types. Spans are shifted by the statement's
//! offset in the file so they point into the whole source.

use pest::iterators::Pair;
use pest::Parser;

use super::ast::{
    Comparison, Dynamic, Expr, Ident, LimitExpr, Literal, LiteralKind, LogClause, LogRate, SetFile, SetRef, Statement,
    TestExpr, Value,
};
use super::literal;
use super::SYNTAX_ERROR;
use crate::diagnostic::{Diagnostic, Span, INTERNAL_ERROR};
use crate::program::CmpOp;

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/pfc.pest"]
struct RuleParser;

/// Parses one statement; on a syntax error pushes a diagnostic and returns `None`.
pub(crate) fn parse_statement(text: &str, offset: usize, diagnostics: &mut Vec<Diagnostic>) -> Option<Statement> {
    match RuleParser::parse(Rule::statement_text, text) {
        Ok(mut pairs) => {
            let statement_text = pairs.next()?;
            let statement = statement_text.into_inner().next()?;
            let mut lowerer = Lowerer { offset, has_comment: text.contains('#'), diagnostics };
            Some(lowerer.statement(statement))
        }
        Err(error) => {
            diagnostics.push(syntax_diagnostic(&error, text, offset));
            None
        }
    }
}

fn syntax_diagnostic(error: &pest::error::Error<Rule>, text: &str, offset: usize) -> Diagnostic {
    let position = match error.location {
        pest::error::InputLocation::Pos(position) => position,
        pest::error::InputLocation::Span((start, _)) => start,
    };
    // An error after the last token is shown right after it, not on the next line, and
    // what was found there is the end of the statement (not the whitespace after it).
    let content_len = without_trailing_trivia(text).len();
    let position = position.min(content_len);
    let found = if position == content_len { "" } else { describe_found(text, position) };
    let end = if found.is_empty() { position } else { position + found.len() };
    let span = Span::new(offset + position, offset + end);
    let expected = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let found_text = if found.is_empty() { "the end of the statement".to_string() } else { format!("`{found}`") };
    let diagnostic = Diagnostic::error(
        SYNTAX_ERROR,
        format!("expected {expected}, found {found_text}"),
        span,
        format!("expected {expected}"),
    );
    let diagnostic = match (non_ascii_in_name(text, position), text.get(position..).and_then(|t| t.chars().next())) {
        (Some(c), _) => diagnostic.with_note(format!(
            "names are ASCII: letters, digits, `_` and `-`; `{c}` (U+{:04X}) cannot be part of one",
            c as u32
        )),
        // A space or mark that is not ASCII (a no-break or zero-width space, a byte-order
        // mark pasted from elsewhere) looks like nothing or like a space: name it.
        (None, Some(c)) if !c.is_ascii() => diagnostic.with_note(format!(
            "the character here is U+{:04X}, not ASCII: outside comments and strings, rule files are ASCII (spaces, tabs and form feeds separate tokens)",
            c as u32
        )),
        _ => diagnostic,
    };
    match nft_style_suggestion(text, position, found) {
        Some(suggestion) => diagnostic.with_note(format!("did you mean `{suggestion}`?")),
        None => diagnostic,
    }
}

/// The character at `position` when it is a non-ASCII letter or digit right after, or
/// starting, a word (`règle`, `café`, `ssh_büro`): the parser stopped because names are
/// ASCII, which its "expected `:`" alone does not say.
fn non_ascii_in_name(text: &str, position: usize) -> Option<char> {
    let c = text.get(position..)?.chars().next()?;
    let after_word =
        text[..position].chars().next_back().is_some_and(|before| before.is_ascii_alphanumeric() || before == '_');
    let word_starts = text.get(position + c.len_utf8()..)?.chars().next().is_some_and(|next| next.is_alphanumeric());
    (!c.is_ascii() && c.is_alphanumeric() && (after_word || word_starts)).then_some(c)
}

/// nftables writes `tcp dport 22` and `ip saddr { … }`; where pfc's parser stopped at the
/// second word of such a pair, the pfc spelling: `tcp.dport == 22`, `ip.src in { … }`.
/// `None` unless `PROTOCOL WORD` names a field pfc knows.
fn nft_style_suggestion(text: &str, position: usize, found: &str) -> Option<String> {
    let before = text.get(..position)?.trim_end();
    let protocol = before.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next()?;
    let protocol = match protocol {
        "ip6" => "ipv6",
        "ip" | "ipv4" | "ipv6" | "tcp" | "udp" | "sctp" | "icmp" | "icmp6" | "icmpv6" | "arp" | "vlan" | "ether" => {
            protocol
        }
        _ => return None,
    };
    let protocol = match protocol {
        "icmpv6" => "icmp6",
        "ether" => "eth",
        protocol => protocol,
    };
    let member = match found {
        "saddr" => "src",
        "daddr" => "dst",
        "protocol" => "proto",
        member => member,
    };
    let field = format!("{protocol}.{member}");
    crate::fields::surface_field(&field)?;
    let rest = text.get(position + found.len()..)?.trim_start();
    let value = if rest.starts_with('{') {
        rest.find('}').map(|end| format!(" in {}", rest[..=end].split_whitespace().collect::<Vec<_>>().join(" ")))
    } else {
        let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        let value = &rest[..end];
        // Prefixes and ranges are tested with `in`, single values with `==`.
        let op = if value.contains('/') || value.contains("..") { "in" } else { "==" };
        (end > 0).then(|| format!(" {op} {value}"))
    };
    Some(format!("{field}{}", value.unwrap_or_default()))
}

/// `text` without trailing whitespace and trailing `#` comments.
pub(super) fn without_trailing_trivia(mut text: &str) -> &str {
    loop {
        let trimmed = text.trim_end();
        let last_line_start = trimmed.rfind('\n').map(|index| index + 1).unwrap_or(0);
        match comment_start(&trimmed[last_line_start..]) {
            Some(hash) => text = &trimmed[..last_line_start + hash],
            None => return trimmed,
        }
    }
}

/// Where a `#` comment starts in one line, skipping `#` inside strings.
fn comment_start(line: &str) -> Option<usize> {
    if !line.contains('#') {
        return None;
    }
    let mut in_string = false;
    let mut escaped = false;
    for (index, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return Some(index),
            _ => {}
        }
    }
    None
}

fn describe_found(text: &str, position: usize) -> &str {
    let rest = text.get(position..).unwrap_or("");
    let rest = rest.split(['\n', '\r']).next().unwrap_or("");
    let end = rest
        .char_indices()
        .find(|&(index, c)| index > 0 && (c.is_whitespace() || "(){},".contains(c)))
        .map(|(index, _)| index)
        .unwrap_or(rest.len());
    &rest[..end]
}

fn describe_expected(rules: &[Rule]) -> String {
    // A value may always go on as a prefix (`/len`) or a range (`..high`); saying so in
    // every message after a value would only be noise.
    let optional_tails = |rule: &&Rule| !matches!(rule, Rule::prefix | Rule::range);
    let wanted: Vec<Rule> = rules.iter().filter(optional_tails).copied().collect();
    let rules = if wanted.is_empty() { rules } else { &wanted[..] };
    let mut names: Vec<&str> = rules.iter().map(|rule| rule_description(*rule)).collect();
    names.sort_unstable();
    names.dedup();
    match names.len() {
        0 => "something else".to_string(),
        1 => names[0].to_string(),
        _ => {
            let last = names.pop().unwrap_or_default();
            format!("{} or {last}", names.join(", "))
        }
    }
}

fn rule_description(rule: Rule) -> &'static str {
    match rule {
        Rule::kw_hook
        | Rule::kw_include
        | Rule::include_stmt
        | Rule::kw_default
        | Rule::kw_set
        | Rule::kw_const
        | Rule::kw_rule
        | Rule::statement
        | Rule::statement_text
        | Rule::hook_stmt
        | Rule::default_stmt
        | Rule::set_stmt
        | Rule::const_stmt
        | Rule::rule_stmt => "a statement (`hook`, `default`, `set`, `const`, `rule` or `include`)",
        Rule::kw_if => "`if`",
        Rule::kw_and | Rule::kw_or => "`and` or `or`",
        Rule::not_op | Rule::not_in => "`not`",
        Rule::kw_in | Rule::membership => "`in`",
        Rule::kw_pcap | Rule::pcap_atom => "`pcap`",
        Rule::kw_rate | Rule::rate_limit => "`rate`",
        Rule::rate_unit => "a unit (`packets`, `bytes`, `kbytes`, `mbytes`)",
        Rule::rate_period => "a period (`s`, `second`, `m`, `minute`)",
        Rule::kw_per | Rule::rate_key => "`per`",
        Rule::kw_burst | Rule::rate_burst => "`burst`",
        Rule::kw_buckets | Rule::rate_buckets => "`buckets`",
        Rule::kw_log | Rule::rule_log => "`log`",
        Rule::ident | Rule::field_path => "a name",
        Rule::cmp_op | Rule::comparison => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        Rule::expr | Rule::conjunction | Rule::negation | Rule::test | Rule::operand => "a condition",
        Rule::value | Rule::literal | Rule::prefix | Rule::range | Rule::number | Rule::ipv4 | Rule::colon_address => {
            "a value"
        }
        Rule::set_body | Rule::set_ref => "a set `{ ... }`",
        Rule::set_file | Rule::kw_file => "`file \"PATH\"`",
        Rule::set_line => "one set element",
        Rule::set_dynamic | Rule::kw_dynamic => "`dynamic`",
        Rule::kw_size => "`size`",
        Rule::string | Rule::string_body => "a quoted string",
        Rule::colon => "`:`",
        Rule::equals => "`=`",
        Rule::comma => "`,`",
        Rule::close_brace => "`}`",
        Rule::EOI => "the end of the statement",
        _ => "something else",
    }
}

struct Lowerer<'d> {
    offset: usize,
    /// Whether the statement's text holds a `#` at all: when not, no pair can end in a
    /// comment, and [`Lowerer::span`] need not search each pair's text for one.
    has_comment: bool,
    diagnostics: &'d mut Vec<Diagnostic>,
}

impl Lowerer<'_> {
    /// The pair's span without the whitespace and comments pest lets it swallow at its end.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let span = pair.as_span();
        let text = pair.as_str();
        let end = if self.has_comment {
            // Most pairs end in a token and hold no comment: skip the trimming for them.
            let trimmed = text.ends_with(|c: char| c.is_ascii_whitespace()) || text.contains('#');
            if trimmed {
                span.start() + without_trailing_trivia(text).len()
            } else {
                span.end()
            }
        } else {
            // Without a comment in the statement, all a pair can swallow at its end is
            // the whitespace pest skips (space, tab, LF, FF, CR), byte by byte.
            let bytes = text.as_bytes();
            let mut end = bytes.len();
            while end > 0 && matches!(bytes[end - 1], b' ' | b'\t' | b'\n' | b'\x0C' | b'\r') {
                end -= 1;
            }
            span.start() + end
        };
        Span::new(self.offset + span.start(), self.offset + end)
    }

    /// A parse-tree shape the grammar should not produce: reports E0900 (a pfc bug) at
    /// `span` so no program comes out, and returns a placeholder so lowering goes on.
    fn unexpected_tree(&mut self, span: Span, what: &str) -> Expr {
        self.diagnostics.push(
            Diagnostic::error(INTERNAL_ERROR, format!("internal error: the parser produced {what}"), span, "here")
                .with_note("this is a bug in pfc; please report it with the rule file"),
        );
        Expr::Or(Vec::new(), span)
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident { text: pair.as_str().to_string(), span: self.span(&pair) }
    }

    fn statement(&mut self, pair: Pair<Rule>) -> Statement {
        let span = self.span(&pair);
        let kind = pair.as_rule();
        let mut inner = pair.into_inner().filter(|pair| !is_keyword(pair.as_rule()));
        match kind {
            Rule::include_stmt => {
                let string = inner.next();
                let path_span = string.as_ref().map_or(span, |string| self.span(string));
                let body = string.and_then(|string| string.into_inner().next());
                let path = body.map(|body| unescape(body.as_str())).unwrap_or_default();
                Statement::Include { path, path_span, span }
            }
            Rule::hook_stmt => Statement::Hook { words: inner.map(|pair| self.ident(pair)).collect(), span },
            Rule::default_stmt => {
                let verdict = inner.next().map(|pair| self.ident(pair)).unwrap_or_else(|| missing(span));
                Statement::Default { verdict, span }
            }
            Rule::set_stmt => {
                let name = inner.next().map(|pair| self.ident(pair)).unwrap_or_else(|| missing(span));
                let element_type = inner.next().map(|pair| self.ident(pair)).unwrap_or_else(|| missing(span));
                let mut body = inner.next();
                let mut dynamic = None;
                if let Some(pair) = body.clone().filter(|pair| pair.as_rule() == Rule::set_dynamic) {
                    dynamic = Some(self.dynamic(pair));
                    body = inner.next();
                }
                let body_span = body.as_ref().map(|pair| self.span(pair)).unwrap_or(span);
                let (elements, file) = match body {
                    Some(pair) if pair.as_rule() == Rule::set_file => (Vec::new(), Some(self.set_file(pair))),
                    Some(pair) => (self.set_body(pair), None),
                    None => (Vec::new(), None),
                };
                Statement::Set { name, element_type, elements, body_span, file, dynamic, span }
            }
            Rule::const_stmt => {
                let name = inner.next().map(|pair| self.ident(pair)).unwrap_or_else(|| missing(span));
                let value = match inner.next() {
                    Some(pair) => self.literal(pair),
                    None => Literal { kind: LiteralKind::Invalid, span },
                };
                Statement::Const { name, value, span }
            }
            _ => {
                let name = inner.next().map(|pair| self.ident(pair)).unwrap_or_else(|| missing(span));
                let verdict = inner.next().map(|pair| self.ident(pair)).unwrap_or_else(|| missing(span));
                let mut log = None;
                let mut condition = None;
                for pair in inner {
                    if pair.as_rule() == Rule::rule_log {
                        let log_span = self.span(&pair);
                        let (mut bytes, mut rate) = (None, None);
                        for part in pair.into_inner() {
                            match part.as_rule() {
                                Rule::number => bytes = Some(self.limit_number(&part)),
                                Rule::log_rate => rate = Some(Box::new(self.log_rate(part))),
                                _ => {}
                            }
                        }
                        log = Some(LogClause { bytes, rate, span: log_span });
                    } else {
                        condition = Some(self.expr(pair));
                    }
                }
                Statement::Rule { name, verdict, log, condition, span }
            }
        }
    }

    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr | Rule::conjunction => {
                let is_or = pair.as_rule() == Rule::expr;
                let mut operands: Vec<Expr> =
                    pair.into_inner().filter(|pair| !is_keyword(pair.as_rule())).map(|pair| self.expr(pair)).collect();
                if operands.len() == 1 {
                    operands.pop().unwrap_or_else(|| self.unexpected_tree(span, "an expression without operands"))
                } else if is_or {
                    Expr::Or(operands, span)
                } else {
                    Expr::And(operands, span)
                }
            }
            Rule::negation => {
                let mut nots = Vec::new();
                let mut primary = None;
                for inner in pair.into_inner() {
                    if inner.as_rule() == Rule::not_op {
                        nots.push(self.span(&inner));
                    } else {
                        primary = Some(self.expr(inner));
                    }
                }
                let mut expr = primary.unwrap_or_else(|| self.unexpected_tree(span, "a `not` without an operand"));
                for not_span in nots.into_iter().rev() {
                    let whole = not_span.to(expr.span());
                    expr = Expr::Not(Box::new(expr), whole);
                }
                expr
            }
            Rule::pcap_atom => {
                let body = pair
                    .into_inner()
                    .find(|pair| pair.as_rule() == Rule::string)
                    .and_then(|string| string.into_inner().next());
                let body_span = body.as_ref().map_or(span, |body| self.span(body));
                let text = body.map(|body| unescape(body.as_str())).unwrap_or_default();
                Expr::Pcap(text, span, body_span)
            }
            Rule::rate_limit => Expr::Limit(Box::new(self.limit(pair))),
            _ => Expr::Test(self.test(pair)),
        }
    }

    /// `rate OP AMOUNT [UNIT]/PERIOD [per ...] [burst ...] [buckets N]`.
    fn limit(&mut self, pair: Pair<Rule>) -> LimitExpr {
        let span = self.span(&pair);
        let mut limit = LimitExpr {
            op: CmpOp::Gt,
            op_span: span,
            amount: (None, span),
            unit: None,
            period: missing(span),
            key: Vec::new(),
            burst: None,
            buckets: None,
            span,
        };
        for inner in pair.into_inner() {
            match inner.as_rule() {
                Rule::cmp_op => (limit.op, limit.op_span) = (cmp_op(inner.as_str()), self.span(&inner)),
                Rule::number => limit.amount = self.limit_number(&inner),
                Rule::rate_unit => limit.unit = Some(self.ident(inner)),
                Rule::rate_period => limit.period = self.ident(inner),
                Rule::rate_key => {
                    limit.key = inner
                        .into_inner()
                        .filter(|part| part.as_rule() == Rule::field_path)
                        .map(|part| self.ident(part))
                        .collect();
                }
                Rule::rate_burst => {
                    let mut burst = (None, self.span(&inner), None);
                    for part in inner.into_inner() {
                        match part.as_rule() {
                            Rule::number => (burst.0, burst.1) = self.limit_number(&part),
                            Rule::rate_unit => burst.2 = Some(self.ident(part)),
                            _ => {}
                        }
                    }
                    limit.burst = Some(burst);
                }
                Rule::rate_buckets => {
                    let number = inner.into_inner().find(|part| part.as_rule() == Rule::number);
                    limit.buckets = number.map(|number| self.limit_number(&number));
                }
                _ => {}
            }
        }
        limit
    }

    /// `rate N/PERIOD [burst N]` of a `log` clause.
    fn log_rate(&mut self, pair: Pair<Rule>) -> LogRate {
        let span = self.span(&pair);
        let mut rate = LogRate { amount: (None, span), period: missing(span), burst: None, span };
        for inner in pair.into_inner() {
            match inner.as_rule() {
                Rule::number if rate.burst.is_none() && rate.period.text.is_empty() => {
                    rate.amount = self.limit_number(&inner)
                }
                Rule::number => rate.burst = Some(self.limit_number(&inner)),
                Rule::rate_period => rate.period = self.ident(inner),
                _ => {}
            }
        }
        rate
    }

    /// A number of a rate limit, with its span; `None` when malformed (reported).
    fn limit_number(&mut self, pair: &Pair<Rule>) -> (Option<u128>, Span) {
        let span = self.span(pair);
        match literal::number(pair.as_str(), span) {
            Ok(LiteralKind::Number(value)) => (Some(value), span),
            Ok(_) => (None, span),
            Err(diagnostic) => {
                self.diagnostics.push(diagnostic);
                (None, span)
            }
        }
    }

    fn test(&mut self, pair: Pair<Rule>) -> TestExpr {
        let span = self.span(&pair);
        let mut path = missing(span);
        let mut mask = None;
        let mut comparison = None;
        for inner in pair.into_inner() {
            match inner.as_rule() {
                Rule::operand => {
                    for part in inner.into_inner() {
                        match part.as_rule() {
                            Rule::field_path => path = self.ident(part),
                            _ => mask = Some(self.value(part)),
                        }
                    }
                }
                Rule::comparison => {
                    let mut parts = inner.into_inner();
                    let (Some(op), Some(value)) = (parts.next(), parts.next()) else { continue };
                    comparison = Some(Comparison::Cmp {
                        op: cmp_op(op.as_str()),
                        op_span: self.span(&op),
                        value: self.value(value),
                    });
                }
                Rule::membership => {
                    let mut negated = false;
                    let mut set = None;
                    for part in inner.into_inner() {
                        match part.as_rule() {
                            Rule::not_in => negated = true,
                            Rule::set_ref => set = part.into_inner().next().map(|pair| self.set_ref(pair)),
                            _ => {}
                        }
                    }
                    if let Some(set) = set {
                        comparison = Some(Comparison::In { negated, set });
                    }
                }
                _ => {}
            }
        }
        TestExpr { path, mask, comparison, span }
    }

    fn set_ref(&mut self, pair: Pair<Rule>) -> SetRef {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::set_body => SetRef::Inline(self.set_body(pair), span),
            _ => SetRef::Literal(self.literal(pair)),
        }
    }

    fn dynamic(&mut self, pair: Pair<Rule>) -> Dynamic {
        let span = self.span(&pair);
        let size = pair.into_inner().find(|pair| pair.as_rule() == Rule::number).and_then(|number| {
            let number_span = self.span(&number);
            match literal::number(number.as_str(), number_span) {
                Ok(LiteralKind::Number(size)) => Some((size, number_span)),
                Ok(_) => None,
                Err(diagnostic) => {
                    self.diagnostics.push(diagnostic);
                    None
                }
            }
        });
        Dynamic { size, span }
    }

    fn set_file(&mut self, pair: Pair<Rule>) -> SetFile {
        let string = pair.into_inner().find(|pair| pair.as_rule() == Rule::string);
        let path_span = string.as_ref().map_or(Span::default(), |string| self.span(string));
        let body = string.and_then(|string| string.into_inner().next());
        SetFile {
            path: body.map(|body| unescape(body.as_str())).unwrap_or_default(),
            path_span,
            unreadable: false,
            beyond_size: None,
            decoded: Vec::new(),
            deferred: None,
        }
    }

    fn set_body(&mut self, pair: Pair<Rule>) -> Vec<Literal> {
        pair.into_inner().filter(|pair| pair.as_rule() == Rule::literal).map(|pair| self.literal(pair)).collect()
    }

    fn value(&mut self, pair: Pair<Rule>) -> Value {
        let span = self.span(&pair);
        let mut terms: Vec<Value> = pair
            .into_inner()
            .map(|inner| match inner.as_rule() {
                Rule::value => self.value(inner),
                _ => Value::Literal(self.literal(inner)),
            })
            .collect();
        if terms.len() == 1 {
            terms.pop().unwrap_or(Value::Union(Vec::new(), span))
        } else {
            Value::Union(terms, span)
        }
    }

    fn literal(&mut self, pair: Pair<Rule>) -> Literal {
        let span = self.span(&pair);
        if pair.as_rule() != Rule::literal {
            return self.scalar(pair, span);
        }
        let mut parts = pair.into_inner();
        let Some(first) = parts.next() else {
            return Literal { kind: LiteralKind::Invalid, span };
        };
        let first_span = self.span(&first);
        let first = self.scalar(first, first_span);
        let Some(tail) = parts.next() else {
            return first;
        };
        let Some(second) = tail.clone().into_inner().next() else {
            return Literal { kind: LiteralKind::Invalid, span };
        };
        if tail.as_rule() == Rule::range {
            let second_span = self.span(&second);
            let high = self.scalar(second, second_span);
            return Literal { kind: LiteralKind::Range(Box::new(first), Box::new(high)), span };
        }
        let length_span = self.span(&second);
        match literal::prefix_length(&first.kind, second.as_str(), length_span) {
            Ok(length) => Literal { kind: LiteralKind::Prefix(Box::new(first), length), span },
            Err(diagnostic) => {
                self.diagnostics.push(diagnostic);
                Literal { kind: LiteralKind::Invalid, span }
            }
        }
    }

    /// A single number, address or name.
    fn scalar(&mut self, pair: Pair<Rule>, span: Span) -> Literal {
        let text = pair.as_str();
        let decoded = match pair.as_rule() {
            Rule::number => literal::number(text, span),
            Rule::ipv4 => literal::ipv4(text, span),
            Rule::colon_address => literal::colon_address(text, span),
            Rule::ident => Ok(LiteralKind::Name(text.to_string())),
            _ => Ok(LiteralKind::Invalid),
        };
        let kind = decoded.unwrap_or_else(|diagnostic| {
            self.diagnostics.push(diagnostic);
            LiteralKind::Invalid
        });
        Literal { kind, span }
    }
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_include
            | Rule::kw_hook
            | Rule::kw_default
            | Rule::kw_set
            | Rule::kw_const
            | Rule::kw_rule
            | Rule::kw_if
            | Rule::kw_and
            | Rule::kw_or
            | Rule::kw_in
            | Rule::kw_pcap
            | Rule::kw_file
            | Rule::kw_dynamic
            | Rule::kw_size
            | Rule::kw_rate
            | Rule::kw_per
            | Rule::kw_burst
            | Rule::kw_buckets
            | Rule::colon
            | Rule::equals
    )
}

fn missing(span: Span) -> Ident {
    Ident { text: String::new(), span }
}

fn cmp_op(text: &str) -> CmpOp {
    match text {
        "==" => CmpOp::Eq,
        "!=" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        _ => CmpOp::Ge,
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses one line of a set file (comments and surrounding blanks already removed) as one
/// literal; `None` when it is not one (the caller reports that, E0024). Decoding errors
/// of a well-formed literal (E0005) are pushed to `diagnostics`.
pub(crate) fn parse_set_line(text: &str, offset: usize, diagnostics: &mut Vec<Diagnostic>) -> Option<Literal> {
    let mut pairs = RuleParser::parse(Rule::set_line, text).ok()?;
    let literal = pairs.next()?.into_inner().find(|pair| pair.as_rule() == Rule::literal)?;
    Some(Lowerer { offset, has_comment: text.contains('#'), diagnostics }.literal(literal))
}
