//! pcap parsing: the unescaped text of one `pcap "..."` string in, a [`ast::Expr`] (or a
//! syntax diagnostic) out. The only file of the `pcap` module that sees pest types.
//!
//! A parse-tree shape the grammar should not produce (a pfc bug) is reported as E0900
//! at the span of the node that has it, as `syntax/lower.rs` does, never a panic.

use pest::iterators::{Pair, Pairs};
use pest::Parser;

use super::ast::*;
use super::names;
use super::{SpanMap, PCAP_SYNTAX};
use crate::diagnostic::{Diagnostic, Span, INTERNAL_ERROR};

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/pcap.pest"]
struct PcapParser;

/// Parses the expression; `Ok(None)` for an empty string (libpcap: match everything).
pub fn parse(text: &str, map: &SpanMap) -> Result<Option<Expr>, Diagnostic> {
    let mut pairs = PcapParser::parse(Rule::filter, text).map_err(|error| {
        let position = match error.location {
            pest::error::InputLocation::Pos(position) => position,
            pest::error::InputLocation::Span((start, _)) => start,
        };
        let end = text[position..].chars().next().map_or(position, |c| position + c.len_utf8());
        let found = if position >= text.len() { "the end of the expression".to_string() } else {
            let word: String = text[position..].chars().take_while(|c| !c.is_whitespace()).collect();
            format!("`{word}`")
        };
        Diagnostic::error(
            PCAP_SYNTAX,
            format!("syntax error in the pcap expression at {found}"),
            map.span(position, end.max(position)),
            "not understood here",
        )
        .with_note("libpcap filter syntax: `[proto] [src|dst] [host|net|port|portrange] VALUE`, `proto[offset:size] OP value`, joined by and/or/not")
    })?;
    let whole = map.span(0, text.len());
    let filter = pairs.next().ok_or_else(|| unexpected(whole, "no tree for the filter"))?;
    let lowerer = Lowerer { map };
    filter.into_inner().find(|pair| pair.as_rule() == Rule::expr).map(|expr| lowerer.expr(expr)).transpose()
}

/// Lowering's result: the AST node, or E0900 for a tree the grammar should not produce.
type Lowered<T> = Result<T, Diagnostic>;

/// E0900 (a pfc bug) at `span`: the parser produced a tree without `what`.
fn unexpected(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(INTERNAL_ERROR, format!("internal error: the pcap parser produced {what}"), span, "here")
        .with_note("this is a bug in pfc; please report it with the rule file")
}

struct Lowerer<'a> {
    map: &'a SpanMap,
}

impl Lowerer<'_> {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let span = pair.as_span();
        self.map.span(span.start(), span.end())
    }

    /// The next child of a node at `span`, which the grammar guarantees; E0900 if absent.
    fn next<'i>(&self, parts: &mut Pairs<'i, Rule>, span: Span, what: &str) -> Lowered<Pair<'i, Rule>> {
        parts.next().ok_or_else(|| unexpected(span, what))
    }

    fn expr(&self, pair: Pair<Rule>) -> Lowered<Expr> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let first = self.term(self.next(&mut inner, span, "an expression without a term")?)?;
        let mut rest = Vec::new();
        while let Some(op) = inner.next() {
            let op = bool_op(&op);
            let operand = self.next(&mut inner, span, "an operator without an operand")?;
            let operand = match operand.as_rule() {
                Rule::term => Operand::Term(self.term(operand)?),
                _ => Operand::Id(self.id(operand)?),
            };
            rest.push((op, operand));
        }
        Ok(Expr { first, rest })
    }

    /// An `id` or `id_head`: `not id`, a (parenthesized) number, a value, or a list of
    /// ids in parentheses (an `id_head` and the `(op id)*` after it).
    fn id(&self, pair: Pair<Rule>) -> Lowered<Id> {
        let span = self.span(&pair);
        let head = pair.as_rule() == Rule::id_head;
        let mut inner = pair.into_inner();
        let first = self.next(&mut inner, span, "an id without a value")?;
        match first.as_rule() {
            Rule::not_op => {
                let negated = self.next(&mut inner, span, "`not` without an id")?;
                Ok(Id::Not(Box::new(self.id(negated)?)))
            }
            Rule::pnum_paren => self.parenthesized_id(first, head),
            Rule::id_head => {
                let head = self.id(first)?;
                let mut rest = Vec::new();
                while let Some(op) = inner.next() {
                    let op = bool_op(&op);
                    let operand = self.next(&mut inner, span, "an operator without an operand")?;
                    rest.push((op, self.id(operand)?));
                }
                Ok(Id::List { first: Box::new(head), rest })
            }
            _ => Ok(Id::Value(self.value(first)?)),
        }
    }

    fn term(&self, pair: Pair<Rule>) -> Lowered<Term> {
        let span = self.span(&pair);
        let mut nots = 0;
        let mut kind = None;
        for inner in pair.into_inner() {
            match inner.as_rule() {
                Rule::not_op => nots += 1,
                Rule::paren => {
                    let inner_span = self.span(&inner);
                    let expr = self.next(&mut inner.into_inner(), inner_span, "empty parentheses")?;
                    kind = Some(TermKind::Paren(Box::new(self.expr(expr)?)));
                }
                Rule::relation => {
                    let inner_span = self.span(&inner);
                    let mut parts = inner.into_inner();
                    let left = self.arith(self.next(&mut parts, inner_span, "a relation without a left side")?)?;
                    let op = match self.next(&mut parts, inner_span, "a relation without an operator")?.as_str() {
                        ">" => RelOp::Gt,
                        ">=" => RelOp::Ge,
                        "<" => RelOp::Lt,
                        "<=" => RelOp::Le,
                        "!=" => RelOp::Ne,
                        _ => RelOp::Eq,
                    };
                    let right = self.arith(self.next(&mut parts, inner_span, "a relation without a right side")?)?;
                    kind = Some(TermKind::Relation { left, op, right });
                }
                _ => kind = Some(TermKind::Primitive(self.primitive(inner)?)),
            }
        }
        Ok(Term { nots, kind: kind.ok_or_else(|| unexpected(span, "a term without a body"))?, span })
    }

    fn primitive(&self, pair: Pair<Rule>) -> Lowered<Primitive> {
        let span = self.span(&pair);
        let mut proto = None;
        let mut dir = None;
        let mut kind = None;
        let mut form = Form::Bare;
        for inner in pair.into_inner() {
            let inner_span = self.span(&inner);
            match inner.as_rule() {
                Rule::pname => proto = PName::from_name(inner.as_str()).map(|p| (p, inner_span)),
                Rule::dir => dir = Some((direction(inner), inner_span)),
                Rule::kind => {
                    let k = match inner.as_str() {
                        "host" => Kind::Host,
                        "net" => Kind::Net,
                        "port" => Kind::Port,
                        "portrange" => Kind::PortRange,
                        _ => Kind::Gateway,
                    };
                    kind = Some((k, inner_span));
                }
                Rule::kw_proto => kind = Some((Kind::Proto, inner_span)),
                Rule::kw_protochain => kind = Some((Kind::Protochain, inner_span)),
                Rule::id => form = Form::Id { dir, kind, id: self.id(inner)? },
                Rule::cast_kind => {
                    form = if inner.as_str() == "broadcast" { Form::Broadcast } else { Form::Multicast };
                }
                Rule::other => form = self.other(inner)?,
                _ => {}
            }
        }
        Ok(Primitive { proto, form, span })
    }

    fn other(&self, pair: Pair<Rule>) -> Lowered<Form> {
        let span = self.span(&pair);
        let mut parts = pair.into_inner();
        let head = self.next(&mut parts, span, "a primitive without its keyword")?;
        if head.as_rule() == Rule::kw_llc {
            return Ok(Form::Llc(parts.next().map(|name| (name.as_str().to_string(), self.span(&name)))));
        }
        if head.as_rule() == Rule::kw_byte {
            let index = self.number_value(self.next(&mut parts, span, "`byte` without an index")?)?;
            let op = self.next(&mut parts, span, "`byte` without an operator")?.as_str().chars().next().unwrap_or('=');
            let value = self.number_value(self.next(&mut parts, span, "`byte` without a value")?)?;
            return Ok(Form::Byte(index, op, value));
        }
        let value = parts.next().map(|number| self.number_value(number)).transpose()?;
        let number = |value: Option<Value>, what| value.ok_or_else(|| unexpected(span, what));
        Ok(match head.as_rule() {
            Rule::kw_less => Form::Less(number(value, "`less` without a number")?),
            Rule::kw_greater => Form::Greater(number(value, "`greater` without a number")?),
            Rule::kw_vlan => Form::Vlan(value),
            Rule::kw_mpls => Form::Mpls(value),
            Rule::kw_pppoes => Form::Pppoes(value),
            Rule::kw_pppoed => Form::Pppoed,
            Rule::kw_geneve => Form::Geneve(value),
            _ => Form::Unsupported(head.as_str().to_string()),
        })
    }

    /// libpcap's `pnum` in parentheses, `( 22 )`, or `( NAME )`. A name that is no
    /// constant makes a one-id list, which libpcap neither nests nor takes first in a
    /// list (`head`): `port (snmp)` is accepted, `port ((snmp))` and `port ((snmp) or
    /// 22)` are not.
    fn parenthesized_id(&self, pair: Pair<Rule>, head: bool) -> Lowered<Id> {
        let span = self.span(&pair);
        let (mut inner, mut depth) = (pair.clone(), 0);
        while inner.as_rule() != Rule::name {
            depth += usize::from(inner.as_rule() == Rule::pnum_paren);
            match inner.into_inner().next() {
                Some(next) => inner = next,
                None => return Ok(Id::Value(self.number_value(pair)?)),
            }
        }
        if names::lookup(names::CONSTANTS, inner.as_str()).is_some() {
            return Ok(Id::Value(self.number_value(pair)?));
        }
        if depth > 1 || head {
            return Err(Diagnostic::error(
                PCAP_SYNTAX,
                "libpcap takes no parenthesized name here",
                span,
                "a parenthesized list may not begin with a parenthesized id",
            ));
        }
        Ok(Id::Value(self.value_of_name(inner)))
    }

    /// A name as a value.
    fn value_of_name(&self, pair: Pair<Rule>) -> Value {
        Value { token: token_of(&pair), suffix: None, span: self.span(&pair) }
    }

    /// A number (`num`, or one in parentheses): digits, or a named constant as its value.
    fn number_value(&self, pair: Pair<Rule>) -> Lowered<Value> {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::pnum_paren | Rule::num => self.number_value(self.next(&mut pair.into_inner(), span, "no number")?),
            Rule::name => match names::lookup(names::CONSTANTS, pair.as_str()) {
                Some(value) => Ok(Value { token: Token::Number(value.to_string()), suffix: None, span }),
                None => Err(Diagnostic::error(
                    PCAP_SYNTAX,
                    format!("`{}` is not a number", pair.as_str()),
                    span,
                    "a number or a named constant (`tcp-syn`...) here",
                )),
            },
            _ => Ok(Value { token: Token::Number(pair.as_str().to_string()), suffix: None, span }),
        }
    }

    fn value(&self, pair: Pair<Rule>) -> Lowered<Value> {
        let span = self.span(&pair);
        let mut token = None;
        let mut suffix = None;
        let mut mask_next = false;
        for inner in pair.into_inner() {
            let inner_span = self.span(&inner);
            match inner.as_rule() {
                Rule::kw_mask => mask_next = true,
                Rule::port_end => {
                    let end = inner.into_inner().next().map(|p| token_of(&p));
                    let end = end.ok_or_else(|| unexpected(inner_span, "a port range without an end"))?;
                    suffix = Some(Suffix::RangeEnd(end, inner_span));
                }
                _ if token.is_none() => token = Some(token_of(&inner)),
                Rule::number => suffix = Some(Suffix::Prefix(inner.as_str().to_string(), inner_span)),
                _ if mask_next => suffix = Some(Suffix::Mask(token_of(&inner), inner_span)),
                _ => {}
            }
        }
        Ok(Value { token: token.ok_or_else(|| unexpected(span, "a value without a token"))?, suffix, span })
    }

    fn arith(&self, pair: Pair<Rule>) -> Lowered<Arith> {
        let span = self.span(&pair);
        Ok(match pair.as_rule() {
            Rule::arith | Rule::and_expr | Rule::shift_expr | Rule::sum | Rule::product => {
                let mut inner = pair.into_inner();
                let mut left = self.arith(self.next(&mut inner, span, "arithmetic without an operand")?)?;
                while let Some(op) = inner.next() {
                    let op = match op.as_str() {
                        "+" => ArithOp::Add,
                        "-" => ArithOp::Sub,
                        "*" => ArithOp::Mul,
                        "/" => ArithOp::Div,
                        "%" => ArithOp::Mod,
                        "&" => ArithOp::And,
                        "|" => ArithOp::Or,
                        "^" => ArithOp::Xor,
                        "<<" => ArithOp::Shl,
                        _ => ArithOp::Shr,
                    };
                    let right = self.arith(self.next(&mut inner, span, "an operator without a right operand")?)?;
                    let whole = left.span.to(right.span);
                    left = Arith { kind: ArithKind::Binary(op, Box::new(left), Box::new(right)), span: whole };
                }
                left
            }
            Rule::unary => {
                // `neg* atom (greedy_op arith)?`: the negations apply to the whole.
                let mut negations = 0;
                let mut atom = None;
                let mut greedy = None;
                for inner in pair.into_inner() {
                    match inner.as_rule() {
                        Rule::neg => negations += 1,
                        Rule::greedy_op => {
                            greedy = Some(if inner.as_str() == "^" { ArithOp::Xor } else { ArithOp::Mod })
                        }
                        _ if atom.is_none() => atom = Some(self.arith(inner)?),
                        _ => {
                            let left = atom.take().ok_or_else(|| unexpected(span, "no operand before `^` or `%`"))?;
                            let right = self.arith(inner)?;
                            let op = greedy.ok_or_else(|| unexpected(span, "a right operand without an operator"))?;
                            let whole = left.span.to(right.span);
                            atom = Some(Arith {
                                kind: ArithKind::Binary(op, Box::new(left), Box::new(right)),
                                span: whole,
                            });
                        }
                    }
                }
                let mut result = atom.ok_or_else(|| unexpected(span, "a unary without an atom"))?;
                for _ in 0..negations {
                    result = Arith { kind: ArithKind::Neg(Box::new(result)), span };
                }
                result
            }
            Rule::atom => {
                let inner = self.next(&mut pair.into_inner(), span, "an empty atom")?;
                match inner.as_rule() {
                    Rule::kw_len => Arith { kind: ArithKind::Len, span },
                    Rule::number => Arith { kind: ArithKind::Number(inner.as_str().to_string()), span },
                    Rule::name => Arith { kind: ArithKind::Name(inner.as_str().to_string()), span },
                    _ => self.arith(inner)?,
                }
            }
            Rule::access => {
                let mut inner = pair.into_inner();
                let proto = self.next(&mut inner, span, "an access without a protocol")?;
                let proto = PName::from_name(proto.as_str()).unwrap_or(PName::Ether);
                let index = self.arith(self.next(&mut inner, span, "an access without an index")?)?;
                let size = inner.next().map(|size| (size.as_str().to_string(), self.span(&size)));
                Arith { kind: ArithKind::Access { proto, index: Box::new(index), size }, span }
            }
            _ => return Err(unexpected(span, "arithmetic of an unknown kind")),
        })
    }
}

fn bool_op(pair: &Pair<Rule>) -> BoolOp {
    match pair.as_str() {
        "and" | "&&" => BoolOp::And,
        _ => BoolOp::Or,
    }
}

fn direction(pair: Pair<Rule>) -> Dir {
    match pair.into_inner().next().map(|inner| inner.as_rule()) {
        Some(Rule::src_or_dst) => Dir::SrcOrDst,
        Some(Rule::src_and_dst) => Dir::SrcAndDst,
        Some(Rule::kw_src) => Dir::Src,
        Some(Rule::kw_dst) => Dir::Dst,
        _ => Dir::Wireless,
    }
}

fn token_of(pair: &Pair<Rule>) -> Token {
    let text = pair.as_str().to_string();
    match pair.as_rule() {
        Rule::quoted_name => Token::Name(text.trim_start_matches('\\').to_string()),
        Rule::mac => Token::Mac(text),
        Rule::ipv6 => Token::Ipv6(text),
        Rule::ipv4 => Token::Ipv4(text),
        Rule::number => Token::Number(text),
        _ => match names::lookup(names::CONSTANTS, &text) {
            Some(value) => Token::Number(value.to_string()),
            None => Token::Name(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lowering a node of the wrong shape (here: pieces of a real tree handed to the
    /// wrong lowering function) reports E0900 at the node, instead of panicking.
    #[test]
    fn unexpected_trees_are_internal_errors_not_panics() {
        let text = "tcp port 22";
        let map = SpanMap { start: 100, exact: true, whole: Span::new(100, 100 + text.len()) };
        let lowerer = Lowerer { map: &map };
        let number = |text| PcapParser::parse(Rule::number, text).expect("a number").next().expect("one pair");
        let childless = number("22");
        let error = lowerer.expr(childless.clone()).expect_err("a number is no expression");
        assert_eq!(error.code, INTERNAL_ERROR);
        assert_eq!(error.labels[0].span, Span::new(100, 102));
        assert!(error.message.contains("an expression without a term"), "{}", error.message);
        assert_eq!(lowerer.term(childless.clone()).expect_err("no body").code, INTERNAL_ERROR);
        assert_eq!(lowerer.value(childless.clone()).expect_err("no token").code, INTERNAL_ERROR);
        assert_eq!(lowerer.arith(childless).expect_err("not arithmetic").code, INTERNAL_ERROR);
        // The same text parsed as what it is lowers fine.
        assert!(parse(text, &map).is_ok_and(|expr| expr.is_some()));
    }
}
