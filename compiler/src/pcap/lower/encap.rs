//! Lowering of encapsulations that move the headers after them: `mpls [LABEL]` and
//! `pppoes [SESSION]` in, libpcap's tests out, with the offsets of everything written
//! after them moved as `gen_mpls` and `gen_pppoes` in libpcap's `gencode.c` move them.

use super::Lowerer;
use crate::pcap::ast::Value;
use crate::pcap::filter::{Alu, Pred, TestOp, Val};
use crate::pcap::PCAP_SYNTAX;

const ETH_MPLS: u32 = 0x8847;
const ETH_PPPOES: u32 = 0x8864;
/// PPP's protocol number for MPLS (what `ether proto 0x8847` becomes after `pppoes`).
const PPP_MPLS: u32 = 0x0281;

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
}
