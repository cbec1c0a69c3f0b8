//! The pcap AST: the parse tree of one `pcap "..."` string in, owned nodes with spans
//! out. Spans are already shifted into the rule file (see `pcap::compile`).
//!
//! The tree keeps the source order of `and`/`or` chains because libpcap's meaning
//! depends on it: qualifiers carry over to bare values, and every `vlan` shifts the
//! offsets of everything written after it.

use crate::diagnostic::Span;

/// `and` or `or` (equal precedence, left to right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoolOp {
    /// `and`, `&&`.
    And,
    /// `or`, `||`.
    Or,
}

/// A chain `term (op operand)*`, evaluated left to right.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    /// The first term.
    pub first: Term,
    /// The rest, in order.
    pub rest: Vec<(BoolOp, Operand)>,
}

/// What follows `and`/`or`: a full term, or an [`Id`] that takes the qualifiers in force.
#[derive(Clone, Debug)]
pub(crate) enum Operand {
    /// A term.
    Term(Term),
    /// An id, e.g. the `b` of `host a and b` or the `(23 or 24)` of `port 22 and (23 or 24)`.
    Id(Id),
}

/// libpcap's `id`: what a primitive's qualifiers apply to, and what takes the
/// qualifiers in force after `and`/`or` ("qualifier inheritance", pcap-filter(7)).
#[derive(Clone, Debug)]
pub(crate) enum Id {
    /// One value.
    Value(Value),
    /// `not id`.
    Not(Box<Id>),
    /// `( id (and|or id)+ )` or `( id )`: every id under the same qualifiers.
    List {
        /// The first id.
        first: Box<Id>,
        /// The others, in order.
        rest: Vec<(BoolOp, Id)>,
    },
}

/// `[not]* rterm`.
#[derive(Clone, Debug)]
pub(crate) struct Term {
    /// How many `not`s precede it.
    pub nots: usize,
    /// What it is.
    pub kind: TermKind,
    /// The whole term.
    pub span: Span,
}

/// The kinds of term.
#[derive(Clone, Debug)]
pub(crate) enum TermKind {
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
pub(crate) enum RelOp {
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

/// A protocol name usable as a qualifier or in `proto[...]` (libpcap's `pname`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PName {
    /// `ether`, and its synonyms on Ethernet `link`, `ppp`, `slip`, `fddi`, `tr`, `wlan`.
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
    /// `igmp` (IPv4 protocol 2)
    Igmp,
    /// `igrp` (IPv4 protocol 9)
    Igrp,
    /// `pim` (protocol 103, IPv4 or IPv6)
    Pim,
    /// `vrrp` (IPv4 protocol 112)
    Vrrp,
    /// `carp` (IPv4 protocol 112)
    Carp,
    /// `ah` (protocol 51)
    Ah,
    /// `esp` (protocol 50)
    Esp,
    /// `atalk`: AppleTalk, Ethernet II or SNAP
    Atalk,
    /// `aarp`: AppleTalk ARP, Ethernet II or SNAP
    Aarp,
    /// `decnet` (ethertype 0x6003)
    Decnet,
    /// `lat` (0x6004)
    Lat,
    /// `sca` (0x6007)
    Sca,
    /// `mopdl` (0x6001)
    Mopdl,
    /// `moprc` (0x6002)
    Moprc,
    /// `iso`: OSI over 802.2 LLC
    Iso,
    /// `esis`, `es-is`
    Esis,
    /// `isis`, `is-is`
    Isis,
    /// `l1`: IS-IS level 1 PDUs
    IsisL1,
    /// `l2`: IS-IS level 2 PDUs
    IsisL2,
    /// `iih`: IS-IS hellos
    IsisIih,
    /// `lsp`: IS-IS link-state PDUs
    IsisLsp,
    /// `snp`: IS-IS sequence-number PDUs
    IsisSnp,
    /// `csnp`
    IsisCsnp,
    /// `psnp`
    IsisPsnp,
    /// `clnp`
    Clnp,
    /// `stp`: 802.1D over 802.2 LLC
    Stp,
    /// `ipx`: Ethernet II, 802.3, 802.2 or SNAP
    Ipx,
    /// `netbeui`: over 802.2 LLC
    Netbeui,
    /// `radio`: 802.11 radio headers (not on Ethernet)
    Radio,
}

/// Every protocol keyword with its name (synonyms included).
const PNAMES: &[(&str, PName)] = &[
    ("ether", PName::Ether),
    ("link", PName::Ether),
    ("ppp", PName::Ether),
    ("slip", PName::Ether),
    ("fddi", PName::Ether),
    ("tr", PName::Ether),
    ("wlan", PName::Ether),
    ("ip", PName::Ip),
    ("ip6", PName::Ip6),
    ("arp", PName::Arp),
    ("rarp", PName::Rarp),
    ("tcp", PName::Tcp),
    ("udp", PName::Udp),
    ("sctp", PName::Sctp),
    ("icmp", PName::Icmp),
    ("icmp6", PName::Icmp6),
    ("igmp", PName::Igmp),
    ("igrp", PName::Igrp),
    ("pim", PName::Pim),
    ("vrrp", PName::Vrrp),
    ("carp", PName::Carp),
    ("ah", PName::Ah),
    ("esp", PName::Esp),
    ("atalk", PName::Atalk),
    ("aarp", PName::Aarp),
    ("decnet", PName::Decnet),
    ("lat", PName::Lat),
    ("sca", PName::Sca),
    ("mopdl", PName::Mopdl),
    ("moprc", PName::Moprc),
    ("iso", PName::Iso),
    ("esis", PName::Esis),
    ("es-is", PName::Esis),
    ("isis", PName::Isis),
    ("is-is", PName::Isis),
    ("l1", PName::IsisL1),
    ("l2", PName::IsisL2),
    ("iih", PName::IsisIih),
    ("lsp", PName::IsisLsp),
    ("snp", PName::IsisSnp),
    ("csnp", PName::IsisCsnp),
    ("psnp", PName::IsisPsnp),
    ("clnp", PName::Clnp),
    ("stp", PName::Stp),
    ("ipx", PName::Ipx),
    ("netbeui", PName::Netbeui),
    ("radio", PName::Radio),
];

impl PName {
    /// Parses a protocol keyword.
    pub(crate) fn from_name(text: &str) -> Option<PName> {
        PNAMES.iter().find(|(name, _)| *name == text).map(|(_, pname)| *pname)
    }

    /// The keyword (the first of its synonyms).
    pub(crate) fn as_str(self) -> &'static str {
        PNAMES.iter().find(|(_, pname)| *pname == self).map_or("?", |(name, _)| name)
    }
}

/// A direction qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
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
pub(crate) enum Kind {
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
    /// `proto`.
    Proto,
    /// `protochain`.
    Protochain,
}

/// `pname? qualifiers id`, or one of the other primitives.
#[derive(Clone, Debug)]
pub(crate) struct Primitive {
    /// The protocol qualifier, if written.
    pub proto: Option<(PName, Span)>,
    /// The rest.
    pub form: Form,
    /// The whole primitive.
    pub span: Span,
}

/// The forms of a primitive.
#[derive(Clone, Debug)]
pub(crate) enum Form {
    /// `[dir] [kind] id` (`proto id`, `protochain id` without a direction).
    Id {
        /// Direction, if written.
        dir: Option<(Dir, Span)>,
        /// Kind, if written.
        kind: Option<(Kind, Span)>,
        /// The value, or ids in parentheses.
        id: Id,
    },
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
    /// `mpls [LABEL]`: moves the network header 4 bytes on.
    Mpls(Option<Value>),
    /// `pppoes [SESSION]`: what follows is PPP inside PPPoE.
    Pppoes(Option<Value>),
    /// `pppoed`: PPPoE discovery.
    Pppoed,
    /// `geneve [VNI]`: Geneve over UDP port 6081.
    Geneve(Option<Value>),
    /// `llc [TYPE]`: 802.2 LLC frames, of one frame type (`i`, `s`, `u`, `ui`, `rr`...).
    Llc(Option<(String, Span)>),
    /// `byte N OP V`: `OP` is one of `=`, `<`, `>`, `&`, `|`.
    Byte(Value, char, Value),
    /// A libpcap keyword pfc does not compile (`inbound`, `mpls`, `igmp`...).
    Unsupported(String),
}

/// The operand of `proto`.
#[derive(Clone, Debug)]
pub(crate) struct ProtoValue {
    /// Number or name text (without the backslash).
    pub text: String,
    /// Whether it was a number.
    pub numeric: bool,
    /// Where.
    pub span: Span,
}

/// One value token with its optional suffix.
#[derive(Clone, Debug)]
pub(crate) struct Value {
    /// The token.
    pub token: Token,
    /// `/len`, `mask M` or `-end`.
    pub suffix: Option<Suffix>,
    /// The whole value.
    pub span: Span,
}

/// The kinds of value token (text kept for the checker).
#[derive(Clone, Debug)]
pub(crate) enum Token {
    /// A MAC address in one of libpcap's forms (`aa:bb:cc:dd:ee:ff`, `aa-bb-...`,
    /// `aa.bb.cc.dd.ee.ff`, `aabb.ccdd.eeff`, `aabbccddeeff`).
    Mac(String),
    /// Anything with a colon that is not a MAC.
    Ipv6(String),
    /// Dotted decimal with 2 to 4 parts.
    Ipv4(String),
    /// Decimal, `0x` hex or `0` octal.
    Number(String),
    /// A name: a service, a host name, ... (`\\NAME` without its backslash).
    Name(String),
}

/// What may follow a value.
#[derive(Clone, Debug)]
pub(crate) enum Suffix {
    /// `/len`.
    Prefix(String, Span),
    /// `mask ADDR`.
    Mask(Token, Span),
    /// `-end` (port ranges).
    RangeEnd(Token, Span),
}

/// Arithmetic over packet bytes.
#[derive(Clone, Debug)]
pub(crate) struct Arith {
    /// What it is.
    pub kind: ArithKind,
    /// Where.
    pub span: Span,
}

/// The kinds of arithmetic node.
#[derive(Clone, Debug)]
pub(crate) enum ArithKind {
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

/// A binary arithmetic operator: the one of the filter tree, since they mean the same.
pub(crate) use crate::program::pcap::Alu as ArithOp;
