//! Lowering of encapsulations that move the headers after them: `mpls [LABEL]`,
//! `pppoes [SESSION]` and `geneve [VNI]` in, libpcap's tests out, with the offsets of
//! everything written after them moved as `gen_mpls` and `gen_pppoes` in libpcap's
//! `gencode.c` move them. After `geneve` libpcap's offsets are run-time values in scratch
//! registers; pfc compiles `geneve` only as the last test (the caller refuses the rest).

use super::Lowerer;
use crate::pcap::ast::Value;
use crate::pcap::PCAP_SYNTAX;
use crate::program::pcap::{Alu, Pred, TestOp, Val};

const ETH_MPLS: u32 = 0x8847;
const ETH_PPPOES: u32 = 0x8864;
/// PPP's protocol number for MPLS (what `ether proto 0x8847` becomes after `pppoes`).
const PPP_MPLS: u32 = 0x0281;
const GENEVE_PORT: u32 = 6081;
const PROTO_UDP: u32 = 17;

/// `value & mask == expected` (`gen_mcmp`).
fn masked_test(value: Val, mask: u32, expected: u32) -> Pred {
    Pred::test(Val::Alu(Alu::And, Box::new(value), Box::new(Val::Const(mask))), TestOp::Eq, expected)
}

impl Lowerer<'_> {
    /// `mpls [LABEL]`: an MPLS label (the first after the link layer, or one more whose
    /// predecessor is not the bottom of the stack); the network header moves 4 bytes on.
    pub(super) fn mpls(&mut self, label: Option<&Value>) -> Pred {
        let mut pred = if self.off.mpls_depth > 0 {
            masked_test(Val::at(1, self.net() - 4 + 2), 0x01, 0)
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
            let test = masked_test(Val::at(4, self.net()), 0xffff_f000, label.wrapping_shl(12));
            pred = Pred::And(vec![pred, test]);
        }
        self.off.nl += 4;
        self.off.nl_nosnap += 4;
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
            pred = Pred::And(vec![pred, masked_test(Val::at(4, self.net()), 0xffff, session)]);
        }
        let ppp = self.net() + 6;
        self.off.linkhdr = ppp;
        self.off.linktype = ppp;
        self.off.linkpl = ppp + 2;
        self.off.nl = 0;
        self.off.nl_nosnap = 0;
        self.off.ppp = true;
        pred
    }

    /// `geneve [VNI]` (`gen_geneve`): UDP to port 6081 over IPv4 or IPv6 whose Geneve
    /// header has version 0 (and this VNI); then libpcap's offset code reads the Geneve
    /// protocol type, so a frame cut before it is rejected.
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
        let header = |index: Val, offset: u32| {
            let at = |size: u8, plus: u32| Val::Load { size, index: Box::new(index.clone()), offset: offset + plus };
            let mut tests = vec![masked_test(at(1, 8), 0xc0, 0)];
            if let Some(vni) = vni {
                tests.push(masked_test(at(4, 12), 0xffff_ff00, vni));
            }
            tests.push(Pred::test(at(2, 10), TestOp::Ge, 0));
            tests
        };
        let udp_to_geneve4 = Pred::And(vec![
            Pred::test(Val::at(1, net + 9), TestOp::Eq, PROTO_UDP),
            self.ipv4_first_fragment(),
            Pred::test(Val::Load { size: 2, index: Box::new(self.ihl()), offset: net + 2 }, TestOp::Eq, GENEVE_PORT),
        ]);
        let mut geneve4 = vec![self.linktype(super::ETH_IP), udp_to_geneve4];
        geneve4.extend(header(self.ihl(), net));
        let udp_to_geneve6 = Pred::And(vec![
            Pred::test(Val::at(1, net + 6), TestOp::Eq, PROTO_UDP),
            Pred::test(Val::at(2, net + 42), TestOp::Eq, GENEVE_PORT),
        ]);
        let mut geneve6 = vec![self.linktype(super::ETH_IP6), udp_to_geneve6];
        geneve6.extend(header(Val::Const(0), net + 40));
        self.off.geneve = true;
        Pred::Or(vec![Pred::And(geneve4), Pred::And(geneve6)])
    }
}
