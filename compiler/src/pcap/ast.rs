//! The pcap AST: the parse tree of one `pcap "..."` string in, owned nodes with spans
//! out. Spans are already shifted into the rule file (see `pcap::compile`).
//!
//! The tree keeps the source order of `and`/`or` chains because libpcap's meaning
//! depends on it: qualifiers carry over to bare values, and every `vlan` shifts the
//! offsets of everything written after it.

use crate::diagnostic::Span;

/// `and` or `or` (equal precedence, left to right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolOp {
    /// `and`, `&&`.
    And,
    /// `or`, `||`.
    Or,
}

/// A chain `term (op operand)*`, evaluated left to right.
#[derive(Clone, Debug)]
pub struct Expr {
    /// The first term.
    pub first: Term,
    /// The rest, in order.
    pub rest: Vec<(BoolOp, Operand)>,
}

/// What follows `and`/`or`: a full term or a bare value that takes the last qualifiers.
#[derive(Clone, Debug)]
pub enum Operand {
    /// A term.
    Term(Term),
    /// `[not]* value`, e.g. the `b` of `host a and b`.
    Carried {
        /// How many `not`s precede it.
        nots: usize,
        /// The value.
        value: Value,
    },
}

/// `[not]* rterm`.
#[derive(Clone, Debug)]
pub struct Term {
    /// How many `not`s precede it.
    pub nots: usize,
    /// What it is.
    pub kind: TermKind,
    /// The whole term.
    pub span: Span,
}

/// The kinds of term.
#[derive(Clone, Debug)]
pub enum TermKind {
    /// `( expr )`.
    Paren(Box<Expr>),
    /// `arith relop arith`.
    Relation {
        /// Left side.
        left: Arith,
        /// Operator.
        op: RelOp,
        /// Right side.
        right: Arith,
    },
    /// A primitive (`tcp port 22`, `vlan 10`, `less 100`...).
    Primitive(Primitive),
}

/// A relational operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=`, `==`
    Eq,
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `!=`
    Ne,
}

/// A protocol name usable as a qualifier or in `proto[...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PName {
    /// `ether`
    Ether,
    /// `ip`
    Ip,
    /// `ip6`
    Ip6,
    /// `arp`
    Arp,
    /// `rarp`
    Rarp,
    /// `tcp`
    Tcp,
    /// `udp`
    Udp,
    /// `sctp`
    Sctp,
    /// `icmp`
    Icmp,
    /// `icmp6`
    Icmp6,
}

impl PName {
    /// Parses a protocol keyword.
    pub fn from_name(text: &str) -> Option<PName> {
        Some(match text {
            "ether" => PName::Ether,
            "ip" => PName::Ip,
            "ip6" => PName::Ip6,
            "arp" => PName::Arp,
            "rarp" => PName::Rarp,
            "tcp" => PName::Tcp,
            "udp" => PName::Udp,
            "sctp" => PName::Sctp,
            "icmp" => PName::Icmp,
            "icmp6" => PName::Icmp6,
            _ => return None,
        })
    }

    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            PName::Ether => "ether",
            PName::Ip => "ip",
            PName::Ip6 => "ip6",
            PName::Arp => "arp",
            PName::Rarp => "rarp",
            PName::Tcp => "tcp",
            PName::Udp => "udp",
            PName::Sctp => "sctp",
            PName::Icmp => "icmp",
            PName::Icmp6 => "icmp6",
        }
    }
}

/// A direction qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// `src`
    Src,
    /// `dst`
    Dst,
    /// `src or dst` (also the default)
    SrcOrDst,
    /// `src and dst`
    SrcAndDst,
    /// 802.11 address qualifiers (`ra`, `ta`, `addr1`...): refused.
    Wireless,
}

/// An address-kind qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `host`
    Host,
    /// `net`
    Net,
    /// `port`
    Port,
    /// `portrange`
    PortRange,
    /// `gateway`: refused.
    Gateway,
}

/// `pname? qualifiers id`, or one of the other primitives.
#[derive(Clone, Debug)]
pub struct Primitive {
    /// The protocol qualifier, if written.
    pub proto: Option<(PName, Span)>,
    /// The rest.
    pub form: Form,
    /// The whole primitive.
    pub span: Span,
}

/// The forms of a primitive.
#[derive(Clone, Debug)]
pub enum Form {
    /// `[dir] [kind] id`.
    Id {
        /// Direction, if written.
        dir: Option<(Dir, Span)>,
        /// Kind, if written.
        kind: Option<(Kind, Span)>,
        /// The value or parenthesized group of values.
        id: IdGroup,
    },
    /// `proto N` / `proto \name`.
    Proto(ProtoValue),
    /// `protochain N`: refused.
    Protochain,
    /// `broadcast`.
    Broadcast,
    /// `multicast`.
    Multicast,
    /// A bare protocol name (`tcp`).
    Bare,
    /// `less N`.
    Less(Value),
    /// `greater N`.
    Greater(Value),
    /// `vlan [N]`.
    Vlan(Option<Value>),
    /// A libpcap keyword pfc does not compile (`inbound`, `mpls`, `igmp`...).
    Unsupported(String),
}

/// A value, or `( value (op [not]* value)* )` sharing the qualifiers.
#[derive(Clone, Debug)]
pub struct IdGroup {
    /// The first value.
    pub first: Value,
    /// Further values in a parenthesized group.
    pub rest: Vec<(BoolOp, usize, Value)>,
}

/// The operand of `proto`.
#[derive(Clone, Debug)]
pub struct ProtoValue {
    /// Number or name text (without the backslash).
    pub text: String,
    /// Whether it was a number.
    pub numeric: bool,
    /// Where.
    pub span: Span,
}

/// One value token with its optional suffix.
#[derive(Clone, Debug)]
pub struct Value {
    /// The token.
    pub token: Token,
    /// `/len`, `mask M` or `-end`.
    pub suffix: Option<Suffix>,
    /// The whole value.
    pub span: Span,
}

/// The kinds of value token (text kept for the checker).
#[derive(Clone, Debug)]
pub enum Token {
    /// `aa:bb:cc:dd:ee:ff`.
    Mac(String),
    /// Anything with a colon that is not a MAC.
    Ipv6(String),
    /// Dotted decimal with 2 to 4 parts.
    Ipv4(String),
    /// Decimal, `0x` hex or `0` octal.
    Number(String),
    /// A name: a service, a host name, ...
    Name(String),
}

/// What may follow a value.
#[derive(Clone, Debug)]
pub enum Suffix {
    /// `/len`.
    Prefix(String, Span),
    /// `mask ADDR`.
    Mask(Token, Span),
    /// `-end` (port ranges).
    RangeEnd(Token, Span),
}

/// Arithmetic over packet bytes.
#[derive(Clone, Debug)]
pub struct Arith {
    /// What it is.
    pub kind: ArithKind,
    /// Where.
    pub span: Span,
}

/// The kinds of arithmetic node.
#[derive(Clone, Debug)]
pub enum ArithKind {
    /// A number literal (text).
    Number(String),
    /// A named constant (`tcpflags`, `tcp-syn`, `icmp-echo`...).
    Name(String),
    /// `len`.
    Len,
    /// `proto[index]` or `proto[index:size]`.
    Access {
        /// The protocol.
        proto: PName,
        /// The index expression.
        index: Box<Arith>,
        /// The size literal, if written.
        size: Option<(String, Span)>,
    },
    /// `-a`.
    Neg(Box<Arith>),
    /// `a op b`.
    Binary(ArithOp, Box<Arith>, Box<Arith>),
}

/// A binary arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `&`
    And,
    /// `|`
    Or,
    /// `^`
    Xor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
}
