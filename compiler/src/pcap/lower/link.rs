//! Lowering of link-layer protocol tests: a protocol keyword or `ether proto N` in,
//! libpcap's tests for Ethernet out (`gen_proto_abbrev`, `gen_ether_linktype`, `gen_snap`
//! and the OSI cases of `gen_proto` in libpcap's `gencode.c`, in their emission order).
//!
//! A type/length field of at most 1500 is an 802.3 length: the frame then carries an
//! 802.2 LLC header (DSAP, SSAP, control) at the start of the payload, and an SNAP header
//! (organization code, type) after it when DSAP and SSAP are 0xaa. libpcap's `gen_or(a, b)`
//! evaluates `a` first; the lists below keep that order.

use super::values::by_direction;
use super::{
    Lowerer, Qual, ETHERMTU, ETH_AARP, ETH_ATALK, ETH_DECNET, ETH_IPX, ISO10589_ISIS, ISO8473_CLNP, ISO9542_ESIS,
    LLCSAP_8021D, LLCSAP_IP, LLCSAP_IPX, LLCSAP_ISONS, LLCSAP_NETBEUI,
};
use crate::diagnostic::Span;
use crate::pcap::ast::{Kind, PName, Suffix, Token, Value};
use crate::pcap::names;
use crate::pcap::PCAP_SYNTAX;
use crate::program::pcap::{Alu, Pred, TestOp, Val};

/// IS-IS PDU types (`nlpid.h`).
const ISIS_L1_LAN_IIH: u32 = 15;
const ISIS_L2_LAN_IIH: u32 = 16;
const ISIS_PTP_IIH: u32 = 17;
const ISIS_L1_LSP: u32 = 18;
const ISIS_L2_LSP: u32 = 20;
const ISIS_L1_CSNP: u32 = 24;
const ISIS_L2_CSNP: u32 = 25;
const ISIS_L1_PSNP: u32 = 26;
const ISIS_L2_PSNP: u32 = 27;

/// `value & mask == expected` (`gen_mcmp`).
fn masked_test(value: Val, mask: u32, expected: u32) -> Pred {
    Pred::test(Val::Alu(Alu::And, Box::new(value), Box::new(Val::Const(mask))), TestOp::Eq, expected)
}

impl Lowerer<'_> {
    /// The type/length field is an 802.3 length: `not ether[12:2] > 1500`.
    fn is_8023(&self) -> Pred {
        Pred::negation(Pred::test(self.off.linktype.load(2, 0), TestOp::Gt, ETHERMTU))
    }

    /// An SNAP header with this organization code and type (`gen_snap`, compared as
    /// libpcap's `gen_bcmp` does: the last word first).
    fn snap(&self, org: u32, ptype: u32) -> Pred {
        let net = &self.off.linkpl;
        Pred::And(vec![
            Pred::test(net.load(4, 4), TestOp::Eq, (org & 0xffff) << 16 | ptype),
            Pred::test(net.load(4, 0), TestOp::Eq, 0xaaaa_0300 | org >> 16),
        ])
    }

    /// `ether proto N` on Ethernet (`gen_ether_linktype`): an ethertype above 1500, or an
    /// LLC SAP (with libpcap's special cases for OSI, NetBEUI, IPX and AppleTalk).
    pub(super) fn ether_linktype(&self, proto: u32) -> Pred {
        if self.off.mpls_depth > 0 || self.off.ppp {
            return self.linktype(proto);
        }
        let net = &self.off.linkpl;
        match proto {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                Pred::And(vec![self.is_8023(), Pred::test(net.load(2, 0), TestOp::Eq, proto << 8 | proto)])
            }
            LLCSAP_IPX => {
                let raw_or_8022 = Pred::Or(vec![
                    Pred::test(net.load(1, 0), TestOp::Eq, LLCSAP_IPX),
                    Pred::test(net.load(2, 0), TestOp::Eq, 0xffff),
                ]);
                let llc = Pred::And(vec![self.is_8023(), Pred::Or(vec![self.snap(0, ETH_IPX), raw_or_8022])]);
                Pred::Or(vec![self.linktype(ETH_IPX), llc])
            }
            ETH_ATALK | ETH_AARP => {
                let org = if proto == ETH_ATALK { 0x080007 } else { 0 };
                Pred::Or(vec![self.linktype(proto), Pred::And(vec![self.is_8023(), self.snap(org, proto)])])
            }
            _ if proto <= ETHERMTU => {
                Pred::And(vec![self.is_8023(), Pred::test(self.off.linktype.load(1, 2), TestOp::Eq, proto)])
            }
            _ => self.linktype(proto),
        }
    }

    /// `llc [TYPE]` (`gen_llc`, `gen_llc_i`, `gen_llc_s`, `gen_llc_u` and the subtype tests):
    /// an 802.3 frame that is not raw NetWare (DSAP and SSAP not both 0xff), of the frame
    /// type named.
    pub(super) fn llc(&mut self, frame_type: Option<&(String, Span)>, span: Span) -> Pred {
        if self.off.ppp {
            self.error(PCAP_SYNTAX, "'llc' not supported for PPP".into(), span, "libpcap refuses this");
            return Pred::Const(false);
        }
        let net = self.off.linkpl.clone();
        let llc = Pred::And(vec![self.is_8023(), Pred::negation(Pred::test(net.load(2, 0), TestOp::Eq, 0xffff))]);
        let Some((name, span)) = frame_type else {
            return llc;
        };
        let control = |mask: u32, value: u32| {
            Pred::test(Val::Alu(Alu::And, Box::new(net.load(1, 2)), Box::new(Val::Const(mask))), TestOp::Eq, value)
        };
        let test = match name.to_ascii_lowercase().as_str() {
            "i" => Pred::negation(Pred::test(net.load(1, 2), TestOp::Set, 1)),
            "s" => control(0x03, 0x01),
            "u" => control(0x03, 0x03),
            "rr" => control(0x0f, 0x01),
            "rnr" => control(0x0f, 0x05),
            "rej" => control(0x0f, 0x09),
            "ui" => control(0xef, 0x03),
            "ua" => control(0xef, 0x63),
            "disc" => control(0xef, 0x43),
            "dm" => control(0xef, 0x0f),
            "sabme" => control(0xef, 0x6f),
            "test" => control(0xef, 0xe3),
            "xid" => control(0xef, 0xaf),
            "frmr" => control(0xef, 0x87),
            _ => {
                self.error(PCAP_SYNTAX, format!("unknown LLC type name `{name}`"), *span, "not an LLC frame type");
                return Pred::Const(false);
            }
        };
        Pred::And(vec![llc, test])
    }

    /// `decnet [src|dst] [host|net] ADDR` (`gen_ncode`/`gen_mcode` with `gen_dnhostop`): a
    /// number, `AREA.NODE` (further parts ignored, as `__pcap_atodn` does), or a dotted
    /// network with a mask whose low 16 bits are compared.
    pub(super) fn decnet_host(&mut self, qual: Qual, value: &Value) -> Pred {
        let addr = match (&value.token, &value.suffix) {
            (Token::Number(text), None) => self.number(text, value.span),
            (Token::Ipv4(text), None) => {
                let mut parts = text.split('.').map(|part| part.parse::<u32>().unwrap_or(u32::MAX));
                let (area, node) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                (area << 10 & 0xfc00) | (node & 0x3ff)
            }
            (Token::Ipv4(text), Some(suffix)) if qual.kind == Some(Kind::Net) => {
                let Some((addr, _)) = self.dotted(text, value.span) else {
                    return Pred::Const(false);
                };
                let mask = match suffix {
                    Suffix::Prefix(len, span) => match names::number(len).filter(|len| *len <= 32) {
                        Some(0) => 0,
                        Some(len) => u32::MAX << (32 - len),
                        None => {
                            self.error(PCAP_SYNTAX, "mask length must be <= 32".into(), *span, "bad length");
                            return Pred::Const(false);
                        }
                    },
                    Suffix::Mask(Token::Ipv4(mask), span) => match self.dotted(mask, *span) {
                        Some((mask, _)) => mask,
                        None => return Pred::Const(false),
                    },
                    _ => {
                        self.error(PCAP_SYNTAX, "a netmask is a dotted IPv4 address".into(), value.span, "bad mask");
                        return Pred::Const(false);
                    }
                };
                if addr & !mask != 0 {
                    self.error(PCAP_SYNTAX, format!("non-network bits set in `{text}`"), value.span, "host bits set");
                    return Pred::Const(false);
                }
                addr
            }
            _ => {
                self.error(PCAP_SYNTAX, "not a DECnet address".into(), value.span, "bad address");
                return Pred::Const(false);
            }
        };
        // DECnet addresses are little-endian in the packet.
        let addr = u32::from((addr as u16).swap_bytes());
        let tests = by_direction(qual.dir, |src| self.decnet_hostop(addr, src));
        Pred::And(vec![self.linktype(ETH_DECNET), tests])
    }

    /// One direction of `gen_dnhostop`: the four DECnet routing-header layouts (short or
    /// long header, with or without a pad byte), libpcap's last-built first.
    fn decnet_hostop(&self, addr: u32, src: bool) -> Pred {
        let net = self.net();
        let (short, long) = if src { (3, 15) } else { (1, 7) };
        let flags_word = |value: u32| masked_test(net.load(2, 2), 0xff07, value);
        let flags_byte = |value: u32| masked_test(net.load(1, 2), 0x07, value);
        let at = |offset: u32| Pred::test(net.load(2, offset), TestOp::Eq, addr);
        Pred::Or(vec![
            Pred::And(vec![flags_byte(0x02), at(2 + short)]),
            Pred::And(vec![flags_word(0x8102), at(3 + short)]),
            Pred::And(vec![flags_byte(0x06), at(2 + long)]),
            Pred::And(vec![flags_word(0x8106), at(3 + long)]),
        ])
    }

    /// `iso proto N`: OSI over LLC with network-layer protocol id N.
    pub(super) fn iso_proto(&self, nlpid: u32) -> Pred {
        Pred::And(vec![
            self.ether_linktype(LLCSAP_ISONS),
            Pred::test(self.off.linkpl.load(1, self.off.nl_nosnap), TestOp::Eq, nlpid),
        ])
    }

    /// `isis proto N`: IS-IS with PDU type N.
    pub(super) fn isis_proto(&self, pdu_type: u32) -> Pred {
        Pred::And(vec![
            self.iso_proto(ISO10589_ISIS),
            Pred::test(self.off.linkpl.load(1, self.off.nl_nosnap.wrapping_add(4)), TestOp::Eq, pdu_type),
        ])
    }

    /// Any of the IS-IS PDU types, tested in the order given.
    fn isis_any(&self, pdu_types: &[u32]) -> Pred {
        Pred::Or(pdu_types.iter().map(|pdu_type| self.isis_proto(*pdu_type)).collect())
    }

    /// The test a bare protocol name stands for (`gen_proto_abbrev`).
    pub(super) fn abbrev(&mut self, proto: PName, span: Span) -> Pred {
        match proto {
            PName::Ip => self.linktype(super::ETH_IP),
            PName::Ip6 => self.linktype(super::ETH_IP6),
            PName::Arp => self.linktype(super::ETH_ARP),
            PName::Rarp => self.linktype(super::ETH_RARP),
            PName::Tcp => self.any_proto(super::PROTO_TCP),
            PName::Udp => self.any_proto(super::PROTO_UDP),
            PName::Sctp => self.any_proto(super::PROTO_SCTP),
            PName::Icmp => self.ip_proto(1),
            PName::Icmp6 => self.ip6_proto(58),
            PName::Igmp => self.ip_proto(2),
            PName::Igrp => self.ip_proto(9),
            PName::Pim => self.any_proto(103),
            PName::Vrrp | PName::Carp => self.ip_proto(112),
            PName::Ah => self.any_proto(51),
            PName::Esp => self.any_proto(50),
            PName::Atalk => self.ether_linktype(ETH_ATALK),
            PName::Aarp => self.ether_linktype(ETH_AARP),
            PName::Decnet => self.linktype(ETH_DECNET),
            PName::Sca => self.linktype(0x6007),
            PName::Lat => self.linktype(0x6004),
            PName::Mopdl => self.linktype(0x6001),
            PName::Moprc => self.linktype(0x6002),
            PName::Iso => self.ether_linktype(LLCSAP_ISONS),
            PName::Esis => self.iso_proto(ISO9542_ESIS),
            PName::Isis => self.iso_proto(ISO10589_ISIS),
            PName::Clnp => self.iso_proto(ISO8473_CLNP),
            // libpcap's order: each new type is `or`ed in front of what came before.
            PName::IsisL1 => self.isis_any(&[ISIS_L1_PSNP, ISIS_L1_CSNP, ISIS_L1_LSP, ISIS_L1_LAN_IIH, ISIS_PTP_IIH]),
            PName::IsisL2 => self.isis_any(&[ISIS_L2_PSNP, ISIS_L2_CSNP, ISIS_L2_LSP, ISIS_L2_LAN_IIH, ISIS_PTP_IIH]),
            PName::IsisIih => self.isis_any(&[ISIS_PTP_IIH, ISIS_L1_LAN_IIH, ISIS_L2_LAN_IIH]),
            PName::IsisLsp => self.isis_any(&[ISIS_L1_LSP, ISIS_L2_LSP]),
            PName::IsisSnp => self.isis_any(&[ISIS_L2_PSNP, ISIS_L1_PSNP, ISIS_L1_CSNP, ISIS_L2_CSNP]),
            PName::IsisCsnp => self.isis_any(&[ISIS_L1_CSNP, ISIS_L2_CSNP]),
            PName::IsisPsnp => self.isis_any(&[ISIS_L1_PSNP, ISIS_L2_PSNP]),
            PName::Stp => self.ether_linktype(LLCSAP_8021D),
            PName::Ipx => self.ether_linktype(LLCSAP_IPX),
            PName::Netbeui => self.ether_linktype(LLCSAP_NETBEUI),
            PName::Radio => {
                self.error(PCAP_SYNTAX, "'radio' is not a valid protocol type".into(), span, "not a protocol test");
                Pred::Const(false)
            }
            PName::Ether => {
                self.error(PCAP_SYNTAX, "`ether` alone is not a test".into(), span, "link layer in the wrong context");
                Pred::Const(false)
            }
        }
    }
}
