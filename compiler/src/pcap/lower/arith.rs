//! Lowering of relations: `arith relop arith` in, the protocol checks of every packet
//! access (in libpcap's order) followed by one comparison out (`gen_relation`,
//! `gen_arth`, `gen_load` in libpcap's `gencode.c`).

use super::{Lowerer, ETH_IP, ETH_IP6};
use crate::pcap::ast::{Arith, ArithKind, ArithOp, PName, RelOp};
use crate::pcap::names;
use crate::pcap::PCAP_SYNTAX;
use crate::program::pcap::{Pred, TestOp, Val};

/// The constant libpcap's check sees for a divisor or shift: the first statement of
/// the operand's code when that is `ld #k` (so `x / (0 + 5)` is "division by zero" in
/// libpcap too, and `x << ip[40]` is a shift by 40).
fn leading_constant(arith: &Arith) -> Option<u32> {
    match &arith.kind {
        ArithKind::Number(text) => names::number(text),
        ArithKind::Name(name) => names::lookup(names::CONSTANTS, name),
        ArithKind::Len => None,
        ArithKind::Access { index, .. } => leading_constant(index),
        ArithKind::Neg(inner) | ArithKind::Binary(_, inner, _) => leading_constant(inner),
    }
}

impl Lowerer<'_> {
    pub(super) fn relation(&mut self, left: &Arith, op: RelOp, right: &Arith) -> Pred {
        let (mut checks, left) = self.arith(left);
        let (right_checks, right) = self.arith(right);
        checks.extend(right_checks);
        // libpcap negates only the comparison for `<`, `<=` and `!=` (`gen_relation`
        // with `reversed` flips the jump before the protocol checks are put in front).
        let (op, negated) = match op {
            RelOp::Gt => (TestOp::Gt, false),
            RelOp::Ge => (TestOp::Ge, false),
            RelOp::Eq => (TestOp::Eq, false),
            RelOp::Le => (TestOp::Gt, true),
            RelOp::Lt => (TestOp::Ge, true),
            RelOp::Ne => (TestOp::Eq, true),
        };
        let comparison = Pred::Test { left, op, right };
        let comparison = if negated { Pred::negation(comparison) } else { comparison };
        if checks.is_empty() {
            comparison
        } else {
            checks.push(comparison);
            Pred::And(checks)
        }
    }

    /// An arithmetic expression: the protocol checks its accesses need, and its value.
    fn arith(&mut self, arith: &Arith) -> (Vec<Pred>, Val) {
        match &arith.kind {
            ArithKind::Number(text) => (Vec::new(), Val::Const(self.number(text, arith.span))),
            ArithKind::Name(name) => match names::lookup(names::CONSTANTS, name) {
                Some(value) => (Vec::new(), Val::Const(value)),
                None => {
                    self.error(
                        PCAP_SYNTAX,
                        format!("unknown name `{name}` in an expression"),
                        arith.span,
                        "not a constant",
                    );
                    (Vec::new(), Val::Const(0))
                }
            },
            ArithKind::Len => (Vec::new(), Val::Len),
            ArithKind::Neg(inner) => {
                let (checks, value) = self.arith(inner);
                (checks, Val::Neg(Box::new(value)))
            }
            ArithKind::Binary(op, left, right) => {
                let leading = leading_constant(right);
                match op {
                    ArithOp::Div | ArithOp::Mod if leading == Some(0) => {
                        let what = if *op == ArithOp::Div { "division" } else { "modulus" };
                        self.error(PCAP_SYNTAX, format!("{what} by zero"), right.span, "libpcap refuses this too");
                    }
                    ArithOp::Shl | ArithOp::Shr if leading.is_some_and(|k| k > 31) => {
                        self.error(
                            PCAP_SYNTAX,
                            "shift by more than 31 bits".into(),
                            right.span,
                            "libpcap refuses this too",
                        );
                    }
                    _ => {}
                }
                // `gen_arth` keeps the left operand's protocol checks only: the right
                // operand's are dropped (`1 + ip[2:2]` checks no ethertype).
                let (checks, a) = self.arith(left);
                let (_, b) = self.arith(right);
                (checks, Val::Alu(*op, Box::new(a), Box::new(b)))
            }
            ArithKind::Access { proto, index, size } => self.access(*proto, index, size.as_ref(), arith.span),
        }
    }

    /// `proto[index:size]` (`gen_load`).
    fn access(
        &mut self,
        proto: PName,
        index: &Arith,
        size: Option<&(String, crate::diagnostic::Span)>,
        span: crate::diagnostic::Span,
    ) -> (Vec<Pred>, Val) {
        let size = match size {
            None => 1,
            Some((text, span)) => match names::number(text) {
                Some(size @ (1 | 2 | 4)) => size as u8,
                _ => {
                    self.error(PCAP_SYNTAX, "data size must be 1, 2, or 4".into(), *span, "bad size");
                    1
                }
            },
        };
        let net = self.net();
        match proto {
            PName::Ether => {
                let (checks, index) = self.arith(index);
                (checks, self.off.linkhdr.indexed(index).load(size, 0))
            }
            PName::Ip
            | PName::Ip6
            | PName::Arp
            | PName::Rarp
            | PName::Atalk
            | PName::Decnet
            | PName::Sca
            | PName::Lat
            | PName::Moprc
            | PName::Mopdl => {
                let (mut checks, index) = self.arith(index);
                checks.push(self.abbrev(proto, crate::diagnostic::Span::default()));
                (checks, net.indexed(index).load(size, 0))
            }
            PName::Tcp
            | PName::Udp
            | PName::Sctp
            | PName::Icmp
            | PName::Igmp
            | PName::Igrp
            | PName::Pim
            | PName::Vrrp
            | PName::Carp => {
                let mut checks = vec![self.linktype(ETH_IP)];
                let (index_checks, index) = self.arith(index);
                checks.extend(index_checks);
                checks.push(self.abbrev(proto, crate::diagnostic::Span::default()));
                checks.push(self.ipv4_first_fragment());
                (checks, self.tran4().indexed(index).load(size, 0))
            }
            PName::Icmp6 => {
                let (mut checks, index) = self.arith(index);
                checks.push(self.linktype(ETH_IP6));
                checks.push(Pred::test(net.load(1, 6), TestOp::Eq, 58));
                (checks, net.plus(40).indexed(index).load(size, 0))
            }
            _ => {
                self.error(
                    PCAP_SYNTAX,
                    format!("`{}[...]`: unsupported index operation", proto.as_str()),
                    span,
                    "libpcap has no offset for this protocol",
                );
                (Vec::new(), Val::Const(0))
            }
        }
    }
}
