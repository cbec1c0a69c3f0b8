//! The owned syntax tree of a rule file: output of parsing, input of `check`.
//!
//! It mirrors what was written, names unresolved, every node with its span. Literals are
//! already decoded into numbers and addresses (malformed ones were reported while
//! parsing and appear as [`LiteralKind::Invalid`]).

use crate::diagnostic::Span;
use crate::program::CmpOp;

/// A whole rule file.
#[derive(Clone, Debug, Default)]
pub struct File {
    /// Statements in source order (those that failed to parse are left out).
    pub statements: Vec<Statement>,
    /// Statements that failed to parse (already reported), so that the checker does not
    /// report their absence as well ("no `default`", "unknown name").
    pub unparsed: Vec<Unparsed>,
}

/// What is known of a statement that failed to parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unparsed {
    /// Its first word (`default`, `set`, ...; anything for text before the first statement).
    pub keyword: String,
    /// Its second word, the declared name of a `set`, `const` or `rule`, if it is a name.
    pub name: Option<String>,
    /// The whole statement.
    pub span: Span,
}

/// A name as written, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The text of the name.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// One top-level statement.
#[derive(Clone, Debug)]
pub enum Statement {
    /// `include "other.pf"`: replaced by the included file's statements before checking
    /// (see [`crate::sources`]).
    Include {
        /// The path as written, unescaped.
        path: String,
        /// The quoted path.
        path_span: Span,
        /// The whole statement.
        span: Span,
    },
    /// `hook xdp`, `hook tc ingress`.
    Hook {
        /// The words after `hook`.
        words: Vec<Ident>,
        /// The whole statement.
        span: Span,
    },
    /// `default pass`.
    Default {
        /// The verdict word.
        verdict: Ident,
        /// The whole statement.
        span: Span,
    },
    /// `set NAME: TYPE = { ... }` or `set NAME: TYPE = file "PATH"`.
    Set {
        /// The set's name.
        name: Ident,
        /// The declared element type.
        element_type: Ident,
        /// The elements (for a set file: filled in by [`crate::sources`] from the file's
        /// lines, with spans inside that file).
        elements: Vec<Literal>,
        /// The braces and what is between them (or `file "PATH"`).
        body_span: Span,
        /// `file "PATH"`: where the elements come from.
        file: Option<SetFile>,
        /// `dynamic [size N]`: the set lives in a kernel map.
        dynamic: Option<Dynamic>,
        /// The whole statement.
        span: Span,
    },
    /// `const NAME = literal`.
    Const {
        /// The constant's name.
        name: Ident,
        /// Its value.
        value: Literal,
        /// The whole statement.
        span: Span,
    },
    /// `rule NAME: VERDICT [log [BYTES]] [if EXPR]`.
    Rule {
        /// The rule's name.
        name: Ident,
        /// The verdict word.
        verdict: Ident,
        /// `log [BYTES]`, if present.
        log: Option<LogClause>,
        /// The condition, if any.
        condition: Option<Expr>,
        /// The whole statement.
        span: Span,
    },
}

/// `log [BYTES] [rate N/PERIOD [burst N]]` after a rule's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogClause {
    /// The bytes to keep (`None` inside: a number too large to read) and their span.
    pub bytes: Option<(Option<u128>, Span)>,
    /// The log limit, when written.
    pub rate: Option<Box<LogRate>>,
    /// The whole clause.
    pub span: Span,
}

/// `rate N/PERIOD [burst N]` of a `log` clause: events a period, and the burst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRate {
    /// Events per period (`None` inside: malformed, already reported) and the span.
    pub amount: (Option<u128>, Span),
    /// `s`, `second`, `m`, `minute`.
    pub period: Ident,
    /// `burst N`: the number and its span.
    pub burst: Option<(Option<u128>, Span)>,
    /// The whole `rate …`.
    pub span: Span,
}

/// The `file "PATH"` of a set whose elements are read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetFile {
    /// The path as written, unescaped.
    pub path: String,
    /// The quoted path.
    pub path_span: Span,
    /// The file could not be read, or none of its lines is an element (already
    /// reported: E0023, or each bad line); uses of the set are not reported again.
    pub unreadable: bool,
    /// A dynamic set's file with more element lines than its `size`: the first line past
    /// it (reading stopped there; the checker reports E0025 at it).
    pub beyond_size: Option<Span>,
    /// The file's plain address, prefix and number lines, decoded as they were read
    /// (the set's `elements` hold its other lines, as literals).
    pub decoded: Vec<DecodedElement>,
    /// A dynamic set's file read but not parsed, because the loader reads its lines
    /// itself ([`crate::sources::IncludeLoader::defers_dynamic_set_lines`]): the file's
    /// index in the source map. Nothing else of the file is in the AST.
    pub deferred: Option<usize>,
}

/// A set-file line decoded without the parser: an IPv4 or IPv6 address or prefix, or a
/// decimal number. It stands for the [`Literal`] the parser would make of the line,
/// without the heap allocation of a prefix literal: block lists run to millions of
/// lines, and this is 32 bytes a line against 48 and a 48-byte box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedElement {
    /// The value as written (host bits past a prefix length kept).
    pub written: u128,
    /// The element's text on its line.
    pub span: Span,
    /// What the value is.
    pub family: DecodedFamily,
    /// The prefix length written; `None` for a plain address or a number.
    pub length: Option<u8>,
}

/// The kind of value of a [`DecodedElement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodedFamily {
    /// A decimal number.
    Number,
    /// An IPv4 address or prefix.
    Ipv4,
    /// An IPv6 address or prefix.
    Ipv6,
}

/// `dynamic [size N]` after a set's element type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dynamic {
    /// `size N`: the most elements the set may hold, and where it is written.
    pub size: Option<(u128, Span)>,
    /// `dynamic [size N]`.
    pub span: Span,
}

/// A boolean expression.
#[derive(Clone, Debug)]
pub enum Expr {
    /// `a or b or ...`.
    Or(Vec<Expr>, Span),
    /// `a and b and ...`.
    And(Vec<Expr>, Span),
    /// `not a`.
    Not(Box<Expr>, Span),
    /// A field test or a bare protocol/flag.
    Test(TestExpr),
    /// `pcap "..."`: the string's contents, the span of the whole atom and the span of
    /// the text between the quotes.
    Pcap(String, Span, Span),
    /// `rate > 10/s per ip.src burst 20`: a token-bucket rate limit.
    Limit(Box<LimitExpr>),
}

/// `rate OP AMOUNT [UNIT]/PERIOD [per FIELD, ...] [burst N [UNIT]] [buckets N]`, as written.
#[derive(Clone, Debug)]
pub struct LimitExpr {
    /// `>` (over the rate) or `<=` (within it); others are refused by the checker.
    pub op: CmpOp,
    /// Where the operator is.
    pub op_span: Span,
    /// The amount per period, with its span (`None`: malformed, already reported).
    pub amount: (Option<u128>, Span),
    /// `packets`, `bytes`, `kbytes`, `mbytes` after the amount.
    pub unit: Option<Ident>,
    /// `s`, `second`, `m`, `minute`.
    pub period: Ident,
    /// The key fields after `per`.
    pub key: Vec<Ident>,
    /// `burst N [UNIT]`: the number, its span and its unit.
    pub burst: Option<(Option<u128>, Span, Option<Ident>)>,
    /// `buckets N`: the number and its span.
    pub buckets: Option<(Option<u128>, Span)>,
    /// The whole atom.
    pub span: Span,
}

impl Expr {
    /// The span of the whole expression.
    pub fn span(&self) -> Span {
        match self {
            Expr::Or(_, span) | Expr::And(_, span) | Expr::Not(_, span) | Expr::Pcap(_, span, _) => *span,
            Expr::Limit(limit) => limit.span,
            Expr::Test(test) => test.span,
        }
    }
}

/// `path [& mask] [OP value | [not] in set]`.
#[derive(Clone, Debug)]
pub struct TestExpr {
    /// `tcp.dport`, `ip.src`, or a bare word such as `tcp`.
    pub path: Ident,
    /// `& MASK`.
    pub mask: Option<Value>,
    /// What the field is compared with; `None` for a bare test.
    pub comparison: Option<Comparison>,
    /// The whole test.
    pub span: Span,
}

/// The right-hand side of a test.
#[derive(Clone, Debug)]
pub enum Comparison {
    /// `OP value`.
    Cmp {
        /// The operator.
        op: CmpOp,
        /// Where the operator is.
        op_span: Span,
        /// The value.
        value: Value,
    },
    /// `[not] in SET`.
    In {
        /// `not in`.
        negated: bool,
        /// The set.
        set: SetRef,
    },
}

/// What follows `in`.
#[derive(Clone, Debug)]
pub enum SetRef {
    /// `{ a, b, c }`.
    Inline(Vec<Literal>, Span),
    /// A name, a prefix or a range.
    Literal(Literal),
}

/// A value: a literal or a `|` union of values (`syn | ack`).
#[derive(Clone, Debug)]
pub enum Value {
    /// One literal.
    Literal(Literal),
    /// `a | b | ...`.
    Union(Vec<Value>, Span),
}

impl Value {
    /// The span of the whole value.
    pub fn span(&self) -> Span {
        match self {
            Value::Literal(literal) => literal.span,
            Value::Union(_, span) => *span,
        }
    }
}

/// A literal with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    /// What it is.
    pub kind: LiteralKind,
    /// Where.
    pub span: Span,
}

/// Decoded literal forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiteralKind {
    /// A decimal or hex number.
    Number(u128),
    /// A dotted IPv4 address.
    Ipv4(u32),
    /// An IPv6 address.
    Ipv6(u128),
    /// A MAC address `aa:bb:cc:dd:ee:ff`.
    Mac(u64),
    /// A name: a set, a constant or a named value such as `syn`.
    Name(String),
    /// `address/len`.
    Prefix(Box<Literal>, u32),
    /// `low..high`.
    Range(Box<Literal>, Box<Literal>),
    /// Malformed; already reported.
    Invalid,
}
