//! Lowering of encapsulations that move the headers after them: `mpls [LABEL]`,
//! `pppoes [SESSION]` and `geneve [VNI]` in, libpcap's tests out, with the offsets of
//! everything written after them moved as `gen_mpls`, `gen_pppoes` and `gen_geneve` in
//! libpcap's `gencode.c` move them. After `geneve` libpcap's offsets are run-time values
//! in scratch registers; here they are [`Val`]s computed from the frame.

use super::{At, Lowerer};
use crate::pcap::ast::Value;
use crate::pcap::PCAP_SYNTAX;
use crate::program::pcap::{Alu, Pred, TestOp, Val, MAX_VALUE_DEPTH};

const ETH_MPLS: u32 = 0x8847;
const ETH_PPPOES: u32 = 0x8864;
/// PPP's protocol number for MPLS (what `ether proto 0x8847` becomes after `pppoes`).
const PPP_MPLS: u32 = 0x0281;
const GENEVE_PORT: u32 = 6081;
const PROTO_UDP: u32 = 17;
/// Transparent Ethernet Bridging: a Geneve payload with an Ethernet header.
const ETH_TEB: u32 = 0x6558;

/// `value & mask == expected` (`gen_mcmp`).
fn masked_test(value: Val, mask: u32, expected: u32) -> Pred {
    Pred::test(Val::Alu(Alu::And, Box::new(value), Box::new(Val::Const(mask))), TestOp::Eq, expected)
}

impl Lowerer<'_> {
    /// `mpls [LABEL]`: an MPLS label (the first after the link layer, or one more whose
    /// predecessor is not the bottom of the stack); the network header moves 4 bytes on.
    pub(super) fn mpls(&mut self, label: Option<&Value>) -> Pred {
        let mut pred = if self.off.mpls_depth > 0 {
            masked_test(self.net().load(1, 0u32.wrapping_sub(2)), 0x01, 0)
        } else if self.off.ppp {
            self.linktype(PPP_MPLS)
        } else {
            self.linktype(ETH_MPLS)
        };
        if let Some(value) = label {
            let label = self.plain_number(value);
            if label > 0xfffff {
                self.error(
                    PCAP_SYNTAX,
                    format!("MPLS label {label} greater than maximum 1048575"),
                    value.span,
                    "too big",
                );
            }
            let test = masked_test(self.net().load(4, 0), 0xffff_f000, label.wrapping_shl(12));
            pred = Pred::And(vec![pred, test]);
        }
        self.off.nl = self.off.nl.wrapping_add(4);
        self.off.nl_nosnap = self.off.nl_nosnap.wrapping_add(4);
        self.off.mpls_depth += 1;
        pred
    }

    /// `pppoes [SESSION]`: a PPPoE session frame; what follows is PPP, 6 bytes into the
    /// PPPoE header, with its 2-byte protocol field as the link type.
    pub(super) fn pppoes(&mut self, session: Option<&Value>) -> Pred {
        let mut pred = self.linktype(ETH_PPPOES);
        if let Some(value) = session {
            let session = self.plain_number(value);
            if session > 0xffff {
                self.error(
                    PCAP_SYNTAX,
                    format!("PPPoE session number {session} greater than maximum 65535"),
                    value.span,
                    "too big",
                );
            }
            pred = Pred::And(vec![pred, masked_test(self.net().load(4, 0), 0xffff, session)]);
        }
        let ppp = self.net().plus(6);
        self.off.linkhdr = ppp.clone();
        self.off.linktype = ppp.clone();
        self.off.linkpl = ppp.plus(2);
        self.off.nl = 0;
        self.off.nl_nosnap = 0;
        self.off.ppp = true;
        self.off.geneve = false;
        pred
    }

    /// `geneve [VNI]` (`gen_geneve`): UDP to port 6081 over IPv4 or IPv6 whose Geneve
    /// header has version 0 (and this VNI); then libpcap's offset code (`gen_geneve_offsets`)
    /// reads the Geneve option length and protocol type, so a frame cut before them is
    /// rejected, and moves every header offset into the Geneve payload.
    pub(super) fn geneve(&mut self, vni: Option<&Value>) -> Pred {
        let vni = vni.map(|value| {
            let vni = self.plain_number(value);
            if vni > 0xff_ffff {
                self.error(
                    PCAP_SYNTAX,
                    format!("Geneve VNI {vni} greater than maximum 16777215"),
                    value.span,
                    "too big",
                );
            }
            vni.wrapping_shl(8)
        });
        let net = self.net();
        // The Geneve header: after the IPv4 header (its length read at run time) or
        // right after the fixed IPv6 header, and the 8-byte UDP header.
        let header = |udp: At| {
            let geneve = udp.plus(8);
            let mut tests = vec![masked_test(geneve.load(1, 0), 0xc0, 0)];
            if let Some(vni) = vni {
                tests.push(masked_test(geneve.load(4, 4), 0xffff_ff00, vni));
            }
            tests.push(Pred::test(geneve.load(2, 2), TestOp::Ge, 0));
            tests
        };
        let udp_to_geneve4 = Pred::And(vec![
            Pred::test(net.load(1, 9), TestOp::Eq, PROTO_UDP),
            self.ipv4_first_fragment(),
            Pred::test(self.tran4().load(2, 2), TestOp::Eq, GENEVE_PORT),
        ]);
        let mut geneve4 = vec![self.linktype(super::ETH_IP), udp_to_geneve4];
        geneve4.extend(header(self.tran4()));
        let udp_to_geneve6 = Pred::And(vec![
            Pred::test(net.load(1, 6), TestOp::Eq, PROTO_UDP),
            Pred::test(net.load(2, 42), TestOp::Eq, GENEVE_PORT),
        ]);
        let mut geneve6 = vec![self.linktype(super::ETH_IP6), udp_to_geneve6];
        geneve6.extend(header(net.plus(40)));
        let pred = Pred::Or(vec![Pred::And(geneve4), Pred::And(geneve6)]);
        self.geneve_offsets();
        pred
    }

    /// `gen_geneve_offsets`: the offsets of what follows, computed from the frame where
    /// libpcap computes them into scratch registers. The Geneve header is at the
    /// network header plus the IPv4 header length (IPv4) or 40 (IPv6) plus 8; the link
    /// header after its options; for a Transparent Ethernet Bridging payload (protocol
    /// 0x6558) the type is 12 bytes into that and the payload 14, else the type is the
    /// Geneve protocol field and the payload is the link header. Which of IPv4 and IPv6
    /// matched is the link type's bit that tells them apart: libpcap's registers are read
    /// only where `geneve` matched (the caller refuses other reads), so the frame is one
    /// of the two.
    fn geneve_offsets(&mut self) {
        if self.off.too_deep {
            return;
        }
        let net = self.net();
        let bit = |value: Val, shift: u32| {
            let shifted = Val::Alu(Alu::Shr, Box::new(value), Box::new(Val::Const(shift)));
            Val::Alu(Alu::And, Box::new(shifted), Box::new(Val::Const(1)))
        };
        let ipv6 = if self.off.mpls_depth > 0 {
            bit(net.load(1, 0), 5) // version 4 or 6
        } else if self.off.ppp {
            bit(self.off.linktype.load(2, 0), 6) // 0x21 or 0x57
        } else {
            bit(self.off.linktype.load(2, 0), 15) // 0x0800 or 0x86dd
        };
        // ihl + ipv6 * (40 - ihl)
        let ihl = self.ihl();
        let forty_less = Val::Neg(Box::new(Val::Alu(Alu::Sub, Box::new(ihl.clone()), Box::new(Val::Const(40)))));
        let ip_length = super::add(Val::Alu(Alu::Mul, Box::new(forty_less), Box::new(ipv6)), ihl);
        let geneve = net.indexed(ip_length).plus(8);
        let geneve = super::add(geneve.var.clone().unwrap_or(Val::Const(0)), Val::Const(geneve.k));
        let at = At { var: Some(geneve.clone()), k: 0 };
        // 8 + 4 * (options length)
        let options = Val::Alu(Alu::And, Box::new(at.load(1, 0)), Box::new(Val::Const(0x3f)));
        let length = Val::Alu(
            Alu::Add,
            Box::new(Val::Alu(Alu::Mul, Box::new(options), Box::new(Val::Const(4)))),
            Box::new(Val::Const(8)),
        );
        // 1 for Transparent Ethernet Bridging: (protocol ^ 0x6558) - 1 >> 31
        let other = Val::Alu(Alu::Xor, Box::new(at.load(2, 2)), Box::new(Val::Const(ETH_TEB)));
        let less = Val::Alu(Alu::Sub, Box::new(other), Box::new(Val::Const(1)));
        let teb = Val::Alu(Alu::Shr, Box::new(less), Box::new(Val::Const(31)));
        let linkhdr = super::add(length.clone(), geneve.clone());
        // geneve + 2 + teb * (length + 10)
        let past = Val::Alu(Alu::Add, Box::new(length), Box::new(Val::Const(10)));
        let moved = Val::Alu(Alu::Mul, Box::new(teb.clone()), Box::new(past));
        let linktype = super::add(super::add(moved, geneve), Val::Const(2));
        // linkhdr + 14 * teb
        let linkpl = super::add(linkhdr.clone(), Val::Alu(Alu::Mul, Box::new(teb), Box::new(Val::Const(14))));
        if linkpl.value_depth() > MAX_VALUE_DEPTH {
            // No test could read there: keep the offsets small and refuse the reads.
            self.off.too_deep = true;
            let placeholder = At { var: Some(Val::Const(0)), k: 0 };
            (self.off.linkhdr, self.off.linktype, self.off.linkpl) =
                (placeholder.clone(), placeholder.clone(), placeholder);
            self.off.geneve = true;
            return;
        }
        self.off.linkhdr = At { var: Some(linkhdr), k: 0 };
        self.off.linktype = At { var: Some(linktype), k: 0 };
        self.off.linkpl = At { var: Some(linkpl), k: 0 };
        self.off.nl = 0;
        self.off.ppp = false;
        self.off.geneve = true;
    }
}
