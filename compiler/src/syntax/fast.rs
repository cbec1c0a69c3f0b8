//! The fast path for the common rule statement: one statement's text in, the very
//! `ast::Statement` that pest's parse and lowering would give out, or `None` when the text
//! is anything else.
//!
//! It reads `rule NAME: VERDICT [if ATOM and ATOM ...]`, each atom `PATH`, `PATH OP VALUE`
//! or `PATH [not] in VALUE`, each value one number, address or name with an optional
//! `/LEN` or `..HIGH` written without spaces, with whitespace and `#` comments between
//! tokens: the shape of nearly every line of a large generated or exported rule set. Everything else — `or`, `not`, parentheses, masks, sets
//! in braces, `log`, `pcap`, `rate`, any other character, a value that does not
//! decode — returns `None` and the statement goes to pest, so every syntax and literal
//! diagnostic is still pest's and the lowering's. The fast path never reports anything.
//!
//! **Invariant: what it accepts, pest accepts with the same AST (spans included) and no
//! diagnostic.** Each accepted form follows the grammar rule it stands for (named at each
//! function); `fast_tests.rs` checks the invariant on every line of the diagnostics
//! fixtures, the examples, ClassBench-shaped sets, and their truncations and random edits.

use super::ast::{Comparison, Expr, Ident, Literal, LiteralKind, SetRef, Statement, TestExpr, Value};
use super::literal;
use crate::diagnostic::Span;
use crate::program::CmpOp;

/// The statement `text` (starting at byte `offset` of the source) when it has the common
/// rule shape, else `None`.
pub(super) fn rule_statement(text: &str, offset: usize) -> Option<Statement> {
    if !text.starts_with("rule") {
        return None;
    }
    let mut cursor = Cursor { text, bytes: text.as_bytes(), at: 0, offset };
    cursor.rule()
}

/// A position in the statement's text.
struct Cursor<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
    offset: usize,
}

/// pest's `WHITESPACE`: space, tab, LF, FF, CR.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0C' | b'\r')
}

/// The grammar's `ident_char`.
fn is_ident_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// The grammar's `keyword`, for a whole word.
fn is_keyword(word: &str) -> bool {
    matches!(word, "and" | "or" | "not" | "in" | "if")
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at + ahead).copied()
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.offset + start, self.offset + end)
    }

    /// pest's implicit `(WHITESPACE | COMMENT)*` between tokens.
    fn skip_space(&mut self) {
        loop {
            match self.peek() {
                Some(byte) if is_space(byte) => self.at += 1,
                Some(b'#') => {
                    while self.peek().is_some_and(|byte| byte != b'\n') {
                        self.at += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// At the end of the text, before whitespace or before a comment: where every token
    /// of the fast path must stop (pest would read on, or fail, at anything else).
    fn at_boundary(&self) -> bool {
        self.peek().map_or(true, |byte| is_space(byte) || byte == b'#')
    }

    /// A whole word `(ASCII_ALPHA | "_") ident_char*`: its start and end.
    fn word(&mut self) -> Option<(usize, usize)> {
        let start = self.at;
        if !self.peek().is_some_and(|byte| byte.is_ascii_alphabetic() || byte == b'_') {
            return None;
        }
        while self.peek().is_some_and(is_ident_char) {
            self.at += 1;
        }
        Some((start, self.at))
    }

    /// The keyword `word` (`kw_* = @{ "word" ~ !ident_char }`).
    fn keyword(&mut self, word: &str) -> Option<()> {
        let (start, end) = self.word()?;
        (&self.text[start..end] == word).then_some(())
    }

    /// `ident = @{ !keyword ~ (ASCII_ALPHA | "_") ~ ident_char* }`.
    fn ident(&mut self) -> Option<Ident> {
        let (start, end) = self.word()?;
        let text = &self.text[start..end];
        (!is_keyword(text)).then(|| Ident { text: text.to_string(), span: self.span(start, end) })
    }

    /// `rule_stmt = { kw_rule ~ ident ~ colon ~ ident ~ (kw_if ~ expr)? }`, then `EOI`.
    fn rule(&mut self) -> Option<Statement> {
        self.keyword("rule")?;
        self.skip_space();
        let name = self.ident()?;
        self.skip_space();
        (self.peek()? == b':').then_some(())?;
        self.at += 1;
        self.skip_space();
        let verdict = self.ident()?;
        self.skip_space();
        let mut condition = None;
        if self.peek().is_some() {
            self.keyword("if")?;
            self.skip_space();
            condition = Some(self.conjunction()?);
            self.skip_space();
            if self.peek().is_some() {
                return None;
            }
        }
        let end = condition.as_ref().map_or(verdict.span.end, |condition: &Expr| condition.span().end);
        let span = Span { start: self.offset as u32, end };
        Some(Statement::Rule { name, verdict, log: None, condition, span })
    }

    /// `conjunction = { negation ~ (kw_and ~ negation)* }` with every negation a `test`;
    /// one operand is the test itself (as the lowering unwraps it).
    fn conjunction(&mut self) -> Option<Expr> {
        let mut operands = vec![self.test()?];
        loop {
            self.skip_space();
            if self.peek().is_none() {
                break;
            }
            self.keyword("and")?;
            self.skip_space();
            operands.push(self.test()?);
        }
        if operands.len() == 1 {
            return operands.pop().map(Expr::Test);
        }
        let span = operands[0].span.to(operands[operands.len() - 1].span);
        Some(Expr::And(operands.into_iter().map(Expr::Test).collect(), span))
    }

    /// `test = { operand ~ (membership | comparison)? }` without a mask.
    fn test(&mut self) -> Option<TestExpr> {
        let path = self.field_path()?;
        let after_path = self.at;
        self.skip_space();
        let comparison = match self.peek() {
            None => None,
            Some(b'=' | b'!' | b'<' | b'>') => {
                let op_start = self.at;
                let op = self.cmp_op()?;
                let op_span = self.span(op_start, self.at);
                self.skip_space();
                Some(Comparison::Cmp { op, op_span, value: Value::Literal(self.literal()?) })
            }
            Some(_) => {
                let (start, end) = self.word()?;
                match &self.text[start..end] {
                    "and" => None,
                    "in" => Some(self.membership(false)?),
                    "not" => {
                        self.skip_space();
                        self.keyword("in")?;
                        Some(self.membership(true)?)
                    }
                    _ => return None,
                }
            }
        };
        let end = match &comparison {
            None => {
                self.at = after_path;
                path.span.end
            }
            Some(Comparison::Cmp { value, .. }) => value.span().end,
            Some(Comparison::In { set: SetRef::Literal(literal), .. }) => literal.span.end,
            Some(Comparison::In { set: SetRef::Inline(_, span), .. }) => span.end,
        };
        let span = Span { start: path.span.start, end };
        Some(TestExpr { path, mask: None, comparison, span })
    }

    /// After `[not] in`: `set_ref` as a single `literal`.
    fn membership(&mut self, negated: bool) -> Option<Comparison> {
        self.skip_space();
        Some(Comparison::In { negated, set: SetRef::Literal(self.literal()?) })
    }

    /// `cmp_op = @{ "==" | "!=" | "<=" | ">=" | "<" | ">" }`.
    fn cmp_op(&mut self) -> Option<CmpOp> {
        let second_is_equals = self.peek_at(1) == Some(b'=');
        let (op, width) = match (self.peek()?, second_is_equals) {
            (b'=', true) => (CmpOp::Eq, 2),
            (b'!', true) => (CmpOp::Ne, 2),
            (b'<', true) => (CmpOp::Le, 2),
            (b'>', true) => (CmpOp::Ge, 2),
            (b'<', false) => (CmpOp::Lt, 1),
            (b'>', false) => (CmpOp::Gt, 1),
            _ => return None,
        };
        self.at += width;
        Some(op)
    }

    /// `field_path = @{ !keyword ~ WORD ~ ("." ~ !keyword ~ WORD)? }`, ending at a
    /// boundary or an operator. `pcap` and `rate` start other atoms and are left to pest.
    fn field_path(&mut self) -> Option<Ident> {
        let (start, first_end) = self.word()?;
        let first = &self.text[start..first_end];
        if is_keyword(first) || first == "pcap" || first == "rate" {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            let (second_start, second_end) = self.word()?;
            if is_keyword(&self.text[second_start..second_end]) {
                return None;
            }
        }
        if !(self.at_boundary() || matches!(self.peek(), Some(b'=' | b'!' | b'<' | b'>'))) {
            return None;
        }
        Some(Ident { text: self.text[start..self.at].to_string(), span: self.span(start, self.at) })
    }

    /// `literal = { scalar ~ (prefix | range)? }` written without spaces, ending at a
    /// boundary; `None` also when a value does not decode (the lowering would report it).
    fn literal(&mut self) -> Option<Literal> {
        let start = self.at;
        let first = self.scalar()?;
        let literal = match (self.peek(), self.peek_at(1)) {
            (Some(b'/'), _) => {
                self.at += 1;
                let length_start = self.at;
                self.decimal_digits()?;
                let length_span = self.span(length_start, self.at);
                let length =
                    literal::prefix_length(&first.kind, &self.text[length_start..self.at], length_span).ok()?;
                Literal { kind: LiteralKind::Prefix(Box::new(first), length), span: self.span(start, self.at) }
            }
            (Some(b'.'), Some(b'.')) => {
                self.at += 2;
                let high = self.scalar()?;
                Literal { kind: LiteralKind::Range(Box::new(first), Box::new(high)), span: self.span(start, self.at) }
            }
            _ => first,
        };
        self.at_boundary().then_some(literal)
    }

    /// `ASCII_DIGIT+ ~ !(ASCII_ALPHA | "_")`, the decimal `number`.
    fn decimal_digits(&mut self) -> Option<()> {
        let start = self.at;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
        let followed_by_letter = self.peek().is_some_and(|byte| byte.is_ascii_alphabetic() || byte == b'_');
        (self.at > start && !followed_by_letter).then_some(())
    }

    /// `scalar = _{ ipv4 | colon_address | number | ident }`: the first that matches, as
    /// pest tries them, decoded as the lowering decodes it.
    fn scalar(&mut self) -> Option<Literal> {
        let start = self.at;
        let first = self.peek()?;
        let mut hex_end = start;
        while self.bytes.get(hex_end).is_some_and(u8::is_ascii_hexdigit) {
            hex_end += 1;
        }
        let kind = if self.bytes.get(hex_end) == Some(&b':') {
            self.at = hex_end;
            self.colon_address_tail();
            literal::colon_address(&self.text[start..self.at], self.span(start, self.at)).ok()?
        } else if first.is_ascii_digit() {
            if self.ipv4() {
                literal::ipv4(&self.text[start..self.at], self.span(start, self.at)).ok()?
            } else {
                if first == b'0' && matches!(self.peek_at(1), Some(b'x' | b'X')) {
                    self.at += 2;
                    let digits_start = self.at;
                    while self.peek().is_some_and(|byte| byte.is_ascii_hexdigit()) {
                        self.at += 1;
                    }
                    if self.at == digits_start {
                        return None;
                    }
                } else {
                    self.decimal_digits()?;
                }
                literal::number(&self.text[start..self.at], self.span(start, self.at)).ok()?
            }
        } else {
            let (word_start, end) = self.word()?;
            let text = &self.text[word_start..end];
            if is_keyword(text) {
                return None;
            }
            LiteralKind::Name(text.to_string())
        };
        Some(Literal { kind, span: self.span(start, self.at) })
    }

    /// `ipv4 = @{ ASCII_DIGIT+ ~ ("." ~ ASCII_DIGIT+){3} }`: advances past it and returns
    /// `true`, or leaves the cursor and returns `false`.
    fn ipv4(&mut self) -> bool {
        let mut at = self.at;
        for group in 0..4 {
            if group > 0 {
                if self.bytes.get(at) != Some(&b'.') {
                    return false;
                }
                at += 1;
            }
            let digits_start = at;
            while self.bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == digits_start {
                return false;
            }
        }
        self.at = at;
        true
    }

    /// The rest of `colon_address = @{ HEX* ~ ":" ~ (HEX | ":")* ~ ("." ~ ASCII_DIGIT+)* }`
    /// from its first `:`.
    fn colon_address_tail(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_hexdigit() || byte == b':') {
            self.at += 1;
        }
        while self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
            while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                self.at += 1;
            }
        }
    }
}
