//! pcap checking and lowering: a pcap [`Expr`] in, a [`Pred`] (libpcap's unoptimized
//! code, as a tree) and diagnostics out.
//!
//! Each primitive is built in the order libpcap 1.10's `gencode.c` emits its tests, so
//! that the loads a frame executes — and hence which truncated frames are rejected —
//! are libpcap's (`tcpdump -O -d EXPR` shows the reference). Qualifiers carry over to
//! ids (values, `not` ids, parenthesized id lists) as libpcap's grammar passes them on,
//! and every `vlan` moves the link-type and network-layer offsets of everything after
//! it by 4 bytes. Every problem is reported, not only the
//! first.

use super::ast::*;
use super::names;
use super::{PCAP_SYNTAX, PCAP_UNSUPPORTED};
use crate::diagnostic::{Diagnostic, Span};
use crate::program::pcap::{Alu, Pred, TestOp, Val};
use flow::{Acc, Exits, Flow};
use std::cell::Cell;

const ETH_IP: u32 = 0x0800;
const ETH_IP6: u32 = 0x86dd;
const ETH_ARP: u32 = 0x0806;
const ETH_RARP: u32 = 0x8035;
/// Largest 802.3 length; a larger type/length field is an ethertype.
const ETHERMTU: u32 = 1500;
const LLCSAP_IP: u32 = 0x06;
const LLCSAP_8021D: u32 = 0x42;
const LLCSAP_IPX: u32 = 0xe0;
const LLCSAP_NETBEUI: u32 = 0xf0;
const LLCSAP_ISONS: u32 = 0xfe;
const ETH_IPX: u32 = 0x8137;
const ETH_ATALK: u32 = 0x809b;
const ETH_DECNET: u32 = 0x6003;
const ETH_AARP: u32 = 0x80f3;
const ISO8473_CLNP: u32 = 0x81;
const ISO9542_ESIS: u32 = 0x82;
const ISO10589_ISIS: u32 = 0x83;
const PROTO_TCP: u32 = 6;
const PROTO_UDP: u32 = 17;
const PROTO_SCTP: u32 = 132;

/// The qualifiers in force for a value.
#[derive(Clone, Copy, Debug)]
struct Qual {
    proto: Option<PName>,
    dir: Dir,
    kind: Option<Kind>,
}

/// Valid libpcap that pfc does not compile (E0019). The message is `what: reason`, and
/// docs/pcap.md lists every one (a test checks the table against [`Refusal::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `host NAME`, `net NAME`...
    HostName,
    /// `gateway`.
    Gateway,
    /// `ip broadcast`.
    IpBroadcast,
    /// A service name outside [`names::SERVICES`].
    ServiceName,
    /// `inbound`, `outbound`.
    Direction,
    /// `ifindex`.
    Ifindex,
    /// A frame read after `geneve` where it may not have matched.
    AfterGeneve,
    /// A comparison needing more than [`crate::program::pcap::MAX_VALUE_DEPTH`] values at once.
    TooDeep,
    /// `byte N &`/`|` whose accumulator depends on too many earlier tests.
    AccTooLarge,
}

impl Refusal {
    /// Every refusal, in the order of the docs table.
    pub const ALL: [Refusal; 9] = [
        Refusal::HostName,
        Refusal::Gateway,
        Refusal::IpBroadcast,
        Refusal::ServiceName,
        Refusal::Direction,
        Refusal::Ifindex,
        Refusal::AfterGeneve,
        Refusal::TooDeep,
        Refusal::AccTooLarge,
    ];

    /// What is refused, as the docs table names it.
    pub fn what(self) -> &'static str {
        match self {
            Refusal::HostName => "host and network names",
            Refusal::Gateway => "`gateway`",
            Refusal::IpBroadcast => "`ip broadcast`",
            Refusal::ServiceName => "service names outside pfc's table",
            Refusal::Direction => "`inbound`, `outbound`",
            Refusal::Ifindex => "`ifindex`",
            Refusal::AfterGeneve => "a test after `geneve` reached when it did not match",
            Refusal::TooDeep => "a comparison needing more than 7 values at once",
            Refusal::AccTooLarge => "`byte N &`/`|` after too many tests",
        }
    }

    /// Why, in one line.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::HostName => "pfc resolves no names at compile time; write the address",
            Refusal::Gateway => "needs host-name lookups",
            Refusal::IpBroadcast => "needs the capturing interface's netmask",
            Refusal::ServiceName => "pfc reads no /etc/services; give the number",
            Refusal::Direction => "the capture direction is not in the frame",
            Refusal::Ifindex => "the capture interface is not in the frame",
            Refusal::AfterGeneve => "libpcap reads the inner offsets from scratch memory it never wrote",
            Refusal::TooDeep => "pfc computes them in registers r0–r6 (deep arithmetic, above all after `geneve`)",
            Refusal::AccTooLarge => "pfc re-tests what came before to know which test left the value it tests",
        }
    }

    /// The diagnostic message.
    pub fn message(self) -> String {
        format!("{}: {}", self.what(), self.reason())
    }
}

/// A place in the frame: a run-time part (after `geneve`, what libpcap keeps in a
/// scratch register; here the computation of it from the frame) plus a constant.
#[derive(Clone, Debug)]
struct At {
    /// The run-time part, if any.
    var: Option<Val>,
    /// The constant part (libpcap adds it in 32 bits when compiling).
    k: u32,
}

/// `a + b`; `b` first when it needs more registers (see [`Val::value_depth`]) and
/// more than 2 (run-time offsets: fixed-offset shapes keep libpcap's order).
fn add(a: Val, b: Val) -> Val {
    let needs = b.value_depth();
    if needs > 2 && needs > a.value_depth() {
        Val::Alu(Alu::Add, Box::new(b), Box::new(a))
    } else {
        Val::Alu(Alu::Add, Box::new(a), Box::new(b))
    }
}

impl At {
    const fn fixed(k: u32) -> At {
        At { var: None, k }
    }

    /// `n` bytes further.
    fn plus(&self, n: u32) -> At {
        At { var: self.var.clone(), k: self.k.wrapping_add(n) }
    }

    /// `index` bytes further, `index` computed at run time.
    fn indexed(&self, index: Val) -> At {
        At { var: Some(self.var.clone().map_or(index.clone(), |var| add(index, var))), k: self.k }
    }

    /// `size` bytes at `plus` bytes further.
    fn load(&self, size: u8, plus: u32) -> Val {
        let index = self.var.clone().unwrap_or(Val::Const(0));
        Val::Load { size, index: Box::new(index), offset: self.k.wrapping_add(plus) }
    }
}

/// libpcap's offsets (`off_linkhdr`, `off_linktype`, `off_linkpl`, `off_nl`,
/// `off_nl_nosnap`, the MPLS label depth and the link type): constant on Ethernet,
/// run-time values after `geneve`.
#[derive(Clone, Debug)]
struct Offsets {
    /// The link-layer header (`ether[...]`, MAC addresses, `byte`).
    linkhdr: At,
    /// The type/length field.
    linktype: At,
    /// The link-layer payload (the LLC header, for 802.3 frames).
    linkpl: At,
    /// The network header, after the payload start (MPLS labels).
    nl: u32,
    /// The network header of an 802.2 frame without SNAP, after the payload start.
    nl_nosnap: u32,
    /// MPLS labels so far.
    mpls_depth: u32,
    /// After `pppoes` the link type is PPP: ethertypes map to PPP protocol numbers.
    ppp: bool,
    /// libpcap's `is_geneve`: the link layer is a Geneve payload (set by `geneve`,
    /// cleared by `pppoes`); link-layer address tests first check it is Ethernet.
    geneve: bool,
    /// The run-time offsets need more registers than pfc has (nested `geneve`s): they
    /// are not computed, and a test reading the frame is refused.
    too_deep: bool,
}

impl Offsets {
    const ETHERNET: Offsets = Offsets {
        linkhdr: At::fixed(0),
        linktype: At::fixed(12),
        linkpl: At::fixed(14),
        nl: 0,
        nl_nosnap: 3,
        mpls_depth: 0,
        ppp: false,
        geneve: false,
        too_deep: false,
    };

    /// Whether the offsets are run-time values (after `geneve`).
    fn variable(&self) -> bool {
        self.linkpl.var.is_some()
    }
}

/// `ethertype_to_ppptype`: the PPP protocol number libpcap tests for an ethertype.
fn ppp_protocol(ethertype: u32) -> u32 {
    match ethertype {
        ETH_IP => 0x21,
        ETH_IP6 => 0x57,
        ETH_DECNET => 0x27,
        ETH_ATALK => 0x29,
        0x0600 => 0x25,
        LLCSAP_ISONS => 0x23,
        LLCSAP_8021D => 0x31,
        LLCSAP_IPX => 0x2b,
        other => other,
    }
}

/// Lowers a whole expression: its tests (`None` after an error) and the first `vlan`
/// written in it.
pub fn lower(expr: &Expr, diagnostics: &mut Vec<Diagnostic>) -> (Option<Pred>, Option<Span>) {
    let track = flow::tests_accumulator(expr);
    let mut lowerer = Lowerer {
        off: Offsets::ETHERNET,
        late_error: Cell::new(None),
        diagnostics,
        failed: false,
        track,
        first_vlan: None,
    };
    let (pred, _, _) = lowerer.expr(expr, None, Flow::start());
    ((!lowerer.failed).then_some(pred), lowerer.first_vlan)
}

struct Lowerer<'a> {
    /// Where the headers are, as the primitives written so far left them (`vlan`, `mpls`
    /// and `pppoes` move what follows).
    off: Offsets,
    /// An error found where no diagnostic can be pushed (libpcap's `gen_linktype` under
    /// MPLS); reported at the end of the primitive.
    late_error: Cell<Option<String>>,
    diagnostics: &'a mut Vec<Diagnostic>,
    failed: bool,
    /// Whether to track libpcap's accumulator (the expression has `byte N &`/`|`).
    track: bool,
    /// The first `vlan` primitive lowered: it reads a tag from the frame's bytes.
    first_vlan: Option<Span>,
}

/// Whether the test reads the frame.
fn reads_frame(pred: &Pred) -> bool {
    fn val(value: &Val) -> bool {
        match value {
            Val::Const(_) | Val::Len => false,
            Val::Load { .. } | Val::Protochain { .. } => true,
            Val::Neg(inner) => val(inner),
            Val::Alu(_, left, right) => val(left) || val(right),
        }
    }
    match pred {
        Pred::Const(_) => false,
        Pred::Not(inner) => reads_frame(inner),
        Pred::And(items) | Pred::Or(items) => items.iter().any(reads_frame),
        Pred::Test { left, right, .. } => val(left) || val(right),
    }
}

/// `left OP right`, flattening chains of the same operator.
fn combine(op: BoolOp, left: Pred, right: Pred) -> Pred {
    match (op, left) {
        (BoolOp::And, Pred::And(mut items)) => {
            items.push(right);
            Pred::And(items)
        }
        (BoolOp::Or, Pred::Or(mut items)) => {
            items.push(right);
            Pred::Or(items)
        }
        (BoolOp::And, left) => Pred::And(vec![left, right]),
        (BoolOp::Or, left) => Pred::Or(vec![left, right]),
    }
}

/// The span of an id: its first value's to its last value's.
fn id_span(id: &Id) -> Span {
    match id {
        Id::Value(value) => value.span,
        Id::Not(inner) => id_span(inner),
        Id::List { first, rest } => rest.last().map_or(id_span(first), |(_, last)| id_span(first).to(id_span(last))),
    }
}

fn negate(pred: Pred, nots: usize) -> Pred {
    if nots % 2 == 1 {
        Pred::negation(pred)
    } else {
        pred
    }
}

fn masked(value: Val, mask: u32) -> Val {
    if mask == u32::MAX {
        value
    } else {
        Val::Alu(Alu::And, Box::new(value), Box::new(Val::Const(mask)))
    }
}

impl Lowerer<'_> {
    fn error(&mut self, code: crate::diagnostic::Code, message: String, span: Span, label: &str) {
        self.failed = true;
        self.diagnostics.push(Diagnostic::error(code, message, span, label));
    }

    fn refuse(&mut self, refusal: Refusal, span: Span, label: &str) {
        self.failed = true;
        self.diagnostics.push(
            Diagnostic::error(PCAP_UNSUPPORTED, refusal.message(), span, label)
                .with_note("docs/pcap.md lists what pfc does not compile, and why"),
        );
    }

    // ---- offsets --------------------------------------------------------------------

    /// After `geneve`, a link-layer address test first checks that the Geneve payload
    /// is Ethernet (`gen_geneve_ll_check`: the link header and payload registers differ).
    fn with_link_check(&self, test: Pred) -> Pred {
        match (&self.off.linkhdr.var, &self.off.linkpl.var) {
            (Some(header), Some(payload)) if self.off.geneve => {
                let same = Pred::Test { left: header.clone(), op: TestOp::Eq, right: payload.clone() };
                Pred::And(vec![Pred::negation(same), test])
            }
            _ => test,
        }
    }

    /// The link type is `ethertype` (`gen_linktype`): under MPLS the IP version nibble
    /// after the bottom label, after `pppoes` the PPP protocol, else the type field.
    fn linktype(&self, ethertype: u32) -> Pred {
        if self.off.mpls_depth > 0 {
            let version = match ethertype {
                ETH_IP => 0x40,
                ETH_IP6 => 0x60,
                _ => {
                    self.late_error.set(Some("unsupported protocol over mpls".into()));
                    0
                }
            };
            let byte = |at: At, mask: u32, value: u32| {
                let load = Val::Alu(Alu::And, Box::new(at.load(1, 0)), Box::new(Val::Const(mask)));
                Pred::test(load, TestOp::Eq, value)
            };
            let net = self.net();
            return Pred::And(vec![byte(net.plus(0u32.wrapping_sub(2)), 0x01, 0x01), byte(net, 0xf0, version)]);
        }
        let ethertype = if self.off.ppp { ppp_protocol(ethertype) } else { ethertype };
        Pred::test(self.off.linktype.load(2, 0), TestOp::Eq, ethertype)
    }

    /// The network header (libpcap's `OR_LINKPL` plus `off_nl`).
    fn net(&self) -> At {
        self.off.linkpl.plus(self.off.nl)
    }

    /// `4 * (ip[0] & 0xf)`: the IPv4 header length, as `ldxb 4*([nl]&0xf)`.
    fn ihl(&self) -> Val {
        let low = Val::Alu(Alu::And, Box::new(self.net().load(1, 0)), Box::new(Val::Const(0xf)));
        Val::Alu(Alu::Mul, Box::new(low), Box::new(Val::Const(4)))
    }

    /// The IPv4 payload (libpcap's `OR_TRAN_IPV4`): the network header plus its length.
    fn tran4(&self) -> At {
        self.net().indexed(self.ihl())
    }

    /// IPv4 unfragmented or first fragment: `ip[6:2] & 0x1fff == 0`.
    fn ipv4_first_fragment(&self) -> Pred {
        Pred::negation(Pred::test(self.net().load(2, 6), TestOp::Set, 0x1fff))
    }

    fn ip_proto(&self, proto: u32) -> Pred {
        Pred::And(vec![self.linktype(ETH_IP), Pred::test(self.net().load(1, 9), TestOp::Eq, proto)])
    }

    /// `ip6 proto N`: the next header, or one fragment header followed by N.
    fn ip6_proto(&self, proto: u32) -> Pred {
        let next = self.net().load(1, 6);
        let after_fragment = Pred::And(vec![
            Pred::test(next.clone(), TestOp::Eq, 44),
            Pred::test(self.net().load(1, 40), TestOp::Eq, proto),
        ]);
        Pred::And(vec![self.linktype(ETH_IP6), Pred::Or(vec![Pred::test(next, TestOp::Eq, proto), after_fragment])])
    }

    fn any_proto(&self, proto: u32) -> Pred {
        Pred::Or(vec![self.ip_proto(proto), self.ip6_proto(proto)])
    }

    // ---- expressions ------------------------------------------------------------------

    /// An expression, and the qualifiers in force after it. `before` are those in force
    /// before it: a parenthesized term takes them through, as libpcap's `paren expr ')'`
    /// does (`port 22 and (tcp) and 23` tests port 23); a qualified primitive replaces
    /// them; any other term leaves none (a bare value after it is a syntax error).
    /// `entry` is libpcap's state where the expression starts (see [`flow`]); the result
    /// gives it on the expression's true and false exits.
    fn expr(&mut self, expr: &Expr, before: Option<Qual>, entry: Flow) -> (Pred, Option<Qual>, Exits) {
        let (mut pred, mut qual, mut exits) = self.term(&expr.first, before, entry);
        for (op, operand) in &expr.rest {
            let entry = if *op == BoolOp::And { exits.yes.clone() } else { exits.no.clone() };
            let (right, after) = match operand {
                Operand::Term(term) => {
                    let (right, after, right_exits) = self.term(term, qual, entry);
                    qual = after;
                    (right, right_exits)
                }
                Operand::Id(id) => {
                    let right = self.carried(qual, id, entry.geneve);
                    let after = entry.through(&right, self.track);
                    (right, after)
                }
            };
            exits = exits.combined(*op, &pred, after, self.track);
            pred = combine(*op, pred, right);
        }
        (pred, qual, exits)
    }

    /// An id after `and`/`or`, under the qualifiers in force.
    fn carried(&mut self, qual: Option<Qual>, id: &Id, entry: bool) -> Pred {
        let span = id_span(id);
        let variable = (self.off.variable(), self.off.too_deep);
        let pred = match qual {
            Some(qual) => self.id_tree(qual, id),
            None => {
                self.error(
                    PCAP_SYNTAX,
                    "a bare value needs qualifiers to carry over".into(),
                    span,
                    "no `host`, `net`, `port`... before it",
                );
                Pred::Const(false)
            }
        };
        self.check_geneve_read(variable, entry, &pred, span);
        pred
    }

    /// Refuses a test that reads the frame at `geneve`'s run-time offsets where that
    /// `geneve` may not have matched: libpcap then reads scratch memory it never wrote.
    /// `variable` is whether the offsets were run-time values before the test, and too
    /// deep.
    fn check_geneve_read(&mut self, variable: (bool, bool), entry: bool, pred: &Pred, span: Span) {
        let (variable, too_deep) = variable;
        if variable && !entry && reads_frame(pred) {
            self.refuse(Refusal::AfterGeneve, span, "reached when `geneve` did not match");
        } else if too_deep && reads_frame(pred) {
            self.refuse(Refusal::TooDeep, span, "at offsets after nested `geneve`s");
        }
    }

    /// Every value of an id under the same qualifiers, combined as written.
    fn id_tree(&mut self, qual: Qual, id: &Id) -> Pred {
        match id {
            Id::Value(value) => {
                let pred = self.id(qual, value);
                self.report_late_error(value.span);
                pred
            }
            Id::Not(inner) => Pred::negation(self.id_tree(qual, inner)),
            Id::List { first, rest } => {
                let mut pred = self.id_tree(qual, first);
                for (op, id) in rest {
                    let right = self.id_tree(qual, id);
                    pred = combine(*op, pred, right);
                }
                pred
            }
        }
    }

    fn report_late_error(&mut self, span: Span) {
        if let Some(message) = self.late_error.take() {
            self.error(PCAP_SYNTAX, message, span, "libpcap refuses this");
        }
    }

    fn term(&mut self, term: &Term, before: Option<Qual>, entry: Flow) -> (Pred, Option<Qual>, Exits) {
        let variable = (self.off.variable(), self.off.too_deep);
        let (pred, qual, exits) = match &term.kind {
            TermKind::Paren(inner) => {
                let (pred, _, exits) = self.expr(inner, before, entry);
                (pred, before, exits)
            }
            TermKind::Relation { left, op, right } => {
                let pred = self.relation(left, *op, right);
                self.check_geneve_read(variable, entry.geneve, &pred, term.span);
                let exits = entry.through(&flow::relation_accumulator(&pred), self.track);
                (pred, None, exits)
            }
            TermKind::Primitive(Primitive { form: Form::Byte(index, op @ ('&' | '|'), value), .. }) => {
                // `gen_byteop`: `and #V` / `or #V` on the accumulator, then `A != 0`.
                let op = if *op == '&' { Alu::And } else { Alu::Or };
                self.plain_number(index);
                let acc = entry.acc.map(op, self.plain_number(value));
                let pred = acc.nonzero().unwrap_or_else(|| {
                    self.refuse(Refusal::AccTooLarge, term.span, "after too many tests");
                    Pred::Const(false)
                });
                let after = Flow { geneve: entry.geneve, acc };
                (pred, None, Exits { yes: after.clone(), no: after })
            }
            TermKind::Primitive(primitive) => {
                let (pred, qual) = self.primitive(primitive);
                self.check_geneve_read(variable, entry.geneve, &pred, term.span);
                let mut exits = entry.through(&pred, self.track);
                if let Form::Geneve(_) = primitive.form {
                    // Only a `geneve` that matched wrote the offsets that follow it, and
                    // its offset code ends with `ld #0`.
                    exits.yes = Flow { geneve: true, acc: Acc::Val(Val::Const(0)) };
                    exits.no.geneve = false;
                }
                (pred, qual, exits)
            }
        };
        self.report_late_error(term.span);
        let exits = if term.nots % 2 == 1 { exits.swapped() } else { exits };
        (negate(pred, term.nots), qual, exits)
    }

    /// Whether the link layer has Ethernet addresses (not after `pppoes`); reports it if not.
    fn ethernet_addresses(&mut self, span: Span) -> bool {
        if self.off.ppp {
            self.error(PCAP_SYNTAX, "no Ethernet addresses after `pppoes`".into(), span, "libpcap refuses this");
        }
        !self.off.ppp
    }

    fn primitive(&mut self, primitive: &Primitive) -> (Pred, Option<Qual>) {
        let proto = primitive.proto.map(|(proto, _)| proto);
        let proto_span = primitive.proto.map_or(primitive.span, |(_, span)| span);
        let span = primitive.span;
        let pred = match &primitive.form {
            Form::Id { dir, kind, id } => {
                let qual =
                    Qual { proto, dir: dir.map_or(Dir::SrcOrDst, |(dir, _)| dir), kind: kind.map(|(kind, _)| kind) };
                if let Some((Dir::Wireless, dir_span)) = dir {
                    self.error(
                        PCAP_SYNTAX,
                        "802.11 address qualifiers need 802.11 headers".into(),
                        *dir_span,
                        "libpcap refuses this on Ethernet",
                    );
                    return (Pred::Const(false), None);
                }
                if let Some((Kind::Gateway, kind_span)) = kind {
                    self.refuse(Refusal::Gateway, *kind_span, "not supported by pfc");
                    return (Pred::Const(false), None);
                }
                return (self.id_tree(qual, id), Some(qual));
            }
            Form::Broadcast => match proto {
                None | Some(PName::Ether) if self.ethernet_addresses(span) => self.with_link_check(Pred::And(vec![
                    Pred::test(self.off.linkhdr.load(4, 2), TestOp::Eq, u32::MAX),
                    Pred::test(self.off.linkhdr.load(2, 0), TestOp::Eq, 0xffff),
                ])),
                None | Some(PName::Ether) => Pred::Const(false),
                Some(PName::Ip) => {
                    self.refuse(Refusal::IpBroadcast, span, "not supported by pfc");
                    Pred::Const(false)
                }
                Some(other) => self.bad_qualifier(other, "broadcast", proto_span),
            },
            Form::Multicast => match proto {
                None | Some(PName::Ether) if self.ethernet_addresses(span) => {
                    self.with_link_check(Pred::test(self.off.linkhdr.load(1, 0), TestOp::Set, 1))
                }
                None | Some(PName::Ether) => Pred::Const(false),
                Some(PName::Ip) => {
                    Pred::And(vec![self.linktype(ETH_IP), Pred::test(self.net().load(1, 16), TestOp::Ge, 224)])
                }
                Some(PName::Ip6) => {
                    Pred::And(vec![self.linktype(ETH_IP6), Pred::test(self.net().load(1, 24), TestOp::Eq, 255)])
                }
                Some(other) => self.bad_qualifier(other, "multicast", proto_span),
            },
            Form::Bare => match proto {
                Some(proto) => self.abbrev(proto, proto_span),
                None => Pred::Const(false),
            },
            Form::Less(value) => {
                let n = self.plain_number(value);
                Pred::negation(Pred::test(Val::Len, TestOp::Gt, n))
            }
            Form::Greater(value) => {
                let n = self.plain_number(value);
                Pred::test(Val::Len, TestOp::Ge, n)
            }
            Form::Vlan(id) => self.vlan(id.as_ref(), span),
            Form::Byte(index, op, value) => self.byte(index, *op, value),
            Form::Llc(frame_type) => self.llc(frame_type.as_ref(), span),
            Form::Mpls(label) => self.mpls(label.as_ref()),
            Form::Pppoes(session) => self.pppoes(session.as_ref()),
            Form::Pppoed => self.linktype(0x8863),
            Form::Geneve(vni) => self.geneve(vni.as_ref()),
            Form::Unsupported(keyword) => self.unsupported_keyword(keyword, span),
        };
        (pred, None)
    }

    fn bad_qualifier(&mut self, proto: PName, what: &str, span: Span) -> Pred {
        self.error(PCAP_SYNTAX, format!("`{}` cannot qualify `{what}`", proto.as_str()), span, "illegal qualifier");
        Pred::Const(false)
    }

    fn plain_number(&mut self, value: &Value) -> u32 {
        match &value.token {
            Token::Number(text) => self.number(text, value.span),
            _ => 0,
        }
    }

    fn number(&mut self, text: &str, span: Span) -> u32 {
        names::number(text).unwrap_or_else(|| {
            self.error(PCAP_SYNTAX, format!("`{text}` is not a 32-bit number"), span, "bad number");
            0
        })
    }

    /// `vlan [id]`: the outermost remaining tag; shifts everything after it.
    fn vlan(&mut self, id: Option<&Value>, span: Span) -> Pred {
        self.first_vlan.get_or_insert(span);
        if self.off.mpls_depth > 0 || self.off.ppp {
            let message = if self.off.ppp { "no VLAN support for PPP" } else { "no VLAN match after MPLS" };
            self.error(PCAP_SYNTAX, message.into(), span, "libpcap refuses this");
            return Pred::Const(false);
        }
        let tagged = Pred::Or(vec![self.linktype(0x8100), self.linktype(0x88a8), self.linktype(0x9100)]);
        let pred = match id {
            None => tagged,
            Some(value) => {
                let n = self.plain_number(value);
                if n > 4095 {
                    self.error(PCAP_SYNTAX, format!("VLAN tag {n} greater than maximum 4095"), value.span, "too big");
                }
                let tci = Val::Alu(Alu::And, Box::new(self.net().load(2, 0)), Box::new(Val::Const(0xfff)));
                Pred::And(vec![tagged, Pred::test(tci, TestOp::Eq, n)])
            }
        };
        self.off.linktype = self.off.linktype.plus(4);
        self.off.linkpl = self.off.linkpl.plus(4);
        pred
    }

    /// `byte N OP V` (`gen_byteop`): byte N of the frame (not shifted by `vlan`).
    fn byte(&mut self, index: &Value, op: char, value: &Value) -> Pred {
        let (index, constant) = (self.plain_number(index), self.plain_number(value));
        let byte = self.off.linkhdr.load(1, index);
        match op {
            '=' => Pred::test(byte, TestOp::Eq, constant),
            '>' => Pred::test(byte, TestOp::Gt, constant),
            '<' => Pred::negation(Pred::test(byte, TestOp::Ge, constant)),
            // `&` and `|` test the accumulator: `Self::term` builds them.
            _ => Pred::Const(false),
        }
    }

    /// A keyword pfc parses but does not compile: a documented refusal, or a form libpcap
    /// itself refuses on Ethernet.
    fn unsupported_keyword(&mut self, keyword: &str, span: Span) -> Pred {
        let refusal = match keyword {
            "inbound" | "outbound" => Some(Refusal::Direction),
            "ifindex" => Some(Refusal::Ifindex),
            _ => None,
        };
        match refusal {
            Some(refusal) => self.refuse(refusal, span, "not supported by pfc"),
            None => self.error(
                PCAP_SYNTAX,
                format!("`{keyword}` does not apply to Ethernet"),
                span,
                "libpcap refuses this on Ethernet",
            ),
        }
        Pred::Const(false)
    }

    /// `[ip|ip6] protochain N` (`gen_protochain`): the walk of [`Val::Protochain`]
    /// after the network-layer type test, for IPv4 or IPv6 (both, IPv4 first, without
    /// a qualifier).
    fn protochain(&mut self, proto: Option<PName>, proto_span: Span, value: &ProtoValue) -> Pred {
        let number = if value.numeric {
            self.number(&value.text, value.span)
        } else {
            match names::lookup(names::IP_PROTOCOLS, &value.text) {
                Some(number) => number,
                None => {
                    self.error(
                        PCAP_SYNTAX,
                        format!("unknown ip proto `{}`", value.text),
                        value.span,
                        "not a protocol name",
                    );
                    return Pred::Const(false);
                }
            }
        };
        if self.off.variable() {
            self.error(
                PCAP_SYNTAX,
                "'protochain' not supported with variable length headers".into(),
                value.span,
                "libpcap refuses this after `geneve`",
            );
            return Pred::Const(false);
        }
        let net = self.net().k;
        let chain = |ipv6: bool| {
            let walk = Val::Protochain { ipv6, net, proto: number };
            Pred::And(vec![self.linktype(if ipv6 { ETH_IP6 } else { ETH_IP }), Pred::test(walk, TestOp::Eq, number)])
        };
        match proto {
            None => Pred::Or(vec![chain(false), chain(true)]),
            Some(PName::Ip) => chain(false),
            Some(PName::Ip6) => chain(true),
            Some(_) => {
                self.error(
                    PCAP_SYNTAX,
                    "bad protocol applied for 'protochain'".into(),
                    proto_span,
                    "only `ip` or `ip6`",
                );
                Pred::Const(false)
            }
        }
    }

    /// `[pname] proto N` (`gen_proto`; `ether proto` is `gen_linktype`).
    fn proto(&mut self, proto: Option<PName>, proto_span: Span, value: &ProtoValue) -> Pred {
        if proto == Some(PName::Ether) {
            let ethertype = if value.numeric {
                self.number(&value.text, value.span)
            } else {
                match names::lookup(names::ETHERTYPES, &value.text) {
                    Some(ethertype) => ethertype,
                    None => {
                        self.error(
                            PCAP_SYNTAX,
                            format!("unknown ether proto `{}`", value.text),
                            value.span,
                            "not an ethertype name",
                        );
                        return Pred::Const(false);
                    }
                }
            };
            return self.ether_linktype(ethertype);
        }
        let number = if value.numeric {
            self.number(&value.text, value.span)
        } else {
            let (table, kind) = match proto {
                None | Some(PName::Ip | PName::Ip6) => (names::IP_PROTOCOLS, "ip"),
                Some(PName::Iso) => (names::OSI_PROTOCOLS, "osi"),
                _ => (&[][..], "the"),
            };
            match names::lookup(table, &value.text) {
                Some(number) => number,
                None => {
                    self.error(
                        PCAP_SYNTAX,
                        format!("unknown {kind} proto `{}`", value.text),
                        value.span,
                        "not a protocol name",
                    );
                    return Pred::Const(false);
                }
            }
        };
        match proto {
            None => self.any_proto(number),
            Some(PName::Ip) => self.ip_proto(number),
            Some(PName::Ip6) => self.ip6_proto(number),
            Some(PName::Iso) => self.iso_proto(number),
            Some(PName::Isis) => self.isis_proto(number),
            Some(other) => self.bad_qualifier(other, "proto", proto_span),
        }
    }
}

mod arith;
mod encap;
mod flow;
mod link;
mod values;
