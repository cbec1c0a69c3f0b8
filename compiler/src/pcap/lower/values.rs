//! Lowering of qualified values: `[proto] [dir] [kind] VALUE` in, libpcap's tests for
//! hosts, networks, ports and port ranges out (`gen_host`, `gen_port`, ... in
//! libpcap's `gencode.c`, in their emission order).

use super::{masked, Lowerer, Qual, Refusal, ETH_ARP, ETH_IP, ETH_IP6, ETH_RARP, PROTO_SCTP, PROTO_TCP, PROTO_UDP};
use crate::pcap::ast::{Dir, Kind, PName, ProtoValue, Suffix, Token, Value};
use crate::pcap::names::{self, ServiceProto};
use crate::pcap::PCAP_SYNTAX;
use crate::program::pcap::{Pred, TestOp, Val};

/// One address test per direction: `src`, `dst`, either or both.
pub(super) fn by_direction(dir: Dir, mut one: impl FnMut(bool) -> Pred) -> Pred {
    match dir {
        Dir::Src => one(true),
        Dir::Dst => one(false),
        Dir::SrcAndDst => Pred::And(vec![one(true), one(false)]),
        Dir::SrcOrDst | Dir::Wireless => Pred::Or(vec![one(true), one(false)]),
    }
}

/// The six bytes of a MAC address in any of libpcap's forms (the grammar checked it):
/// groups separated by `:`, `-` or `.` (one or two digits each, or three groups of four),
/// or twelve digits.
fn mac_bytes(text: &str) -> [u32; 6] {
    let groups: Vec<&str> = text.split([':', '-', '.']).collect();
    let digits: String =
        if groups.len() == 6 { groups.iter().map(|group| format!("{group:0>2}")).collect() } else { groups.concat() };
    let mut bytes = [0u32; 6];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = digits.get(2 * index..2 * index + 2).and_then(|pair| u32::from_str_radix(pair, 16).ok()).unwrap_or(0);
    }
    bytes
}

/// The left-aligned mask of `bits` bits (8 to 32).
fn mask_of(bits: u32) -> u32 {
    (u64::from(u32::MAX) << (32 - bits)) as u32
}

impl Lowerer<'_> {
    /// A value under qualifiers (a primitive's, or carried over).
    pub(super) fn id(&mut self, qual: Qual, value: &Value) -> Pred {
        match qual.kind {
            Some(Kind::Port) => self.port(qual, value, false),
            Some(Kind::PortRange) => self.port(qual, value, true),
            Some(Kind::Gateway) => Pred::Const(false),
            Some(kind @ (Kind::Proto | Kind::Protochain)) => {
                // `6-7` is one name to libpcap's scanner, and no protocol's.
                let (text, numeric) = match (&value.token, &value.suffix) {
                    (Token::Number(text), None) => (text.clone(), true),
                    (Token::Name(text), None) => (text.clone(), false),
                    _ => {
                        self.error(
                            PCAP_SYNTAX,
                            "a protocol is a number or a name".into(),
                            value.span,
                            "not a protocol",
                        );
                        return Pred::Const(false);
                    }
                };
                let proto = ProtoValue { text, numeric, span: value.span };
                if kind == Kind::Protochain {
                    self.protochain(qual.proto, value.span, &proto)
                } else {
                    self.proto(qual.proto, value.span, &proto)
                }
            }
            Some(Kind::Host) | Some(Kind::Net) | None => self.address(qual, value),
        }
    }

    fn address(&mut self, qual: Qual, value: &Value) -> Pred {
        if qual.proto == Some(PName::Decnet) {
            return self.decnet_host(qual, value);
        }
        let net = qual.kind == Some(Kind::Net);
        match &value.token {
            Token::Name(_) => {
                self.refuse(Refusal::HostName, value.span, "a name, not an address");
                Pred::Const(false)
            }
            Token::Number(text) => {
                // `gen_ncode` with a number: `net N` promotes a short network number
                // (`net 10` is 10.0.0.0/8, `net 256` is 1.0.0.0/16); `host N` and
                // unqualified `N` are the 32-bit address (`host 10` is 0.0.0.10).
                if value.suffix.is_some() {
                    self.error(PCAP_SYNTAX, "a prefix or mask needs a dotted address".into(), value.span, "syntax");
                    return Pred::Const(false);
                }
                let (mut addr, mut mask) = (self.number(text, value.span), u32::MAX);
                if net {
                    while addr != 0 && addr & 0xff00_0000 == 0 {
                        addr <<= 8;
                        mask <<= 8;
                    }
                }
                if qual.proto == Some(PName::Ether) {
                    self.error(PCAP_SYNTAX, "illegal link layer address".into(), value.span, "not a MAC address");
                    return Pred::Const(false);
                }
                self.ipv4_hosts(qual, value, addr, mask)
            }
            Token::Mac(text) => {
                if qual.proto != Some(PName::Ether) || net {
                    self.error(PCAP_SYNTAX, "a MAC address needs `ether host`".into(), value.span, "ethernet address");
                    return Pred::Const(false);
                }
                if !self.ethernet_addresses(value.span) {
                    return Pred::Const(false);
                }
                let linkhdr = self.off.linkhdr.clone();
                let bytes = mac_bytes(text);
                let high = bytes[0] << 8 | bytes[1];
                let low = bytes[2] << 24 | bytes[3] << 16 | bytes[4] << 8 | bytes[5];
                self.with_link_check(by_direction(qual.dir, |src| {
                    let off = if src { 6 } else { 0 };
                    Pred::And(vec![
                        Pred::test(linkhdr.load(4, off + 2), TestOp::Eq, low),
                        Pred::test(linkhdr.load(2, off), TestOp::Eq, high),
                    ])
                }))
            }
            Token::Ipv4(text) => self.ipv4(qual, value, text, net),
            Token::Ipv6(text) => self.ipv6(qual, value, text),
        }
    }

    /// A dotted IPv4 address of 1 to 4 decimal parts, left-aligned (`__pcap_atoin`):
    /// the address and its bit count.
    pub(super) fn dotted(&mut self, text: &str, span: crate::diagnostic::Span) -> Option<(u32, u32)> {
        let parts: Vec<Option<u32>> = text
            .split('.')
            .map(|part| {
                (!part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| part.parse::<u32>().ok())
                    .flatten()
                    .filter(|v| *v < 256)
            })
            .collect();
        if parts.len() > 4 || parts.iter().any(Option::is_none) {
            self.error(PCAP_SYNTAX, format!("invalid IPv4 address `{text}`"), span, "bad address");
            return None;
        }
        let bits = 8 * parts.len() as u32;
        let addr = parts.iter().fold(0u64, |acc, part| acc << 8 | u64::from(part.unwrap_or(0)));
        Some(((addr << (32 - bits)) as u32, bits))
    }

    /// `gen_ncode` (no suffix: a short address is a network, `host 1.2` is 1.2.0.0/16,
    /// host bits are not checked) and `gen_mcode` (`/len`, `mask M`: `net` only).
    fn ipv4(&mut self, qual: Qual, value: &Value, text: &str, net: bool) -> Pred {
        let Some((addr, bits)) = self.dotted(text, value.span) else {
            return Pred::Const(false);
        };
        let mask = match &value.suffix {
            None => {
                if qual.proto == Some(PName::Ether) {
                    self.error(PCAP_SYNTAX, "illegal link layer address".into(), value.span, "not a MAC address");
                    return Pred::Const(false);
                }
                return self.ipv4_hosts(qual, value, addr, mask_of(bits));
            }
            Some(Suffix::Prefix(len, span)) => match names::number(len).filter(|len| *len <= 32) {
                Some(0) => 0,
                Some(len) => u32::MAX << (32 - len),
                None => {
                    self.error(PCAP_SYNTAX, "mask length must be <= 32".to_string(), *span, "bad length");
                    return Pred::Const(false);
                }
            },
            Some(Suffix::Mask(Token::Ipv4(mask), span)) => match self.dotted(mask, *span) {
                // A short mask is left-aligned too (`mask 255.255` is /16).
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
        if !net {
            self.error(PCAP_SYNTAX, "mask syntax for networks only".into(), value.span, "needs `net`");
            return Pred::Const(false);
        }
        self.ipv4_hosts(qual, value, addr, mask)
    }

    /// `gen_host` for IPv4: the address tests on IPv4, ARP and RARP (or the one `proto`).
    fn ipv4_hosts(&mut self, qual: Qual, value: &Value, addr: u32, mask: u32) -> Pred {
        let hostop = |this: &Self, ethertype: u32, src_off: u32, dst_off: u32| {
            by_direction(qual.dir, |src| {
                let off = if src { src_off } else { dst_off };
                let load = this.net().load(4, off);
                Pred::And(vec![this.linktype(ethertype), Pred::test(masked(load, mask), TestOp::Eq, addr)])
            })
        };
        match qual.proto {
            // Under MPLS only IPv4 (`gen_host`).
            None if self.off.mpls_depth > 0 => hostop(self, ETH_IP, 12, 16),
            None => Pred::Or(vec![
                hostop(self, ETH_IP, 12, 16),
                hostop(self, ETH_ARP, 14, 24),
                hostop(self, ETH_RARP, 14, 24),
            ]),
            Some(PName::Ip) => hostop(self, ETH_IP, 12, 16),
            Some(PName::Arp) => hostop(self, ETH_ARP, 14, 24),
            Some(PName::Rarp) => hostop(self, ETH_RARP, 14, 24),
            Some(other) => self.bad_qualifier(other, "an IPv4 address", value.span),
        }
    }

    fn ipv6(&mut self, qual: Qual, value: &Value, text: &str) -> Pred {
        let Ok(addr) = text.parse::<std::net::Ipv6Addr>() else {
            self.error(PCAP_SYNTAX, format!("`{text}` is not an IPv6 address"), value.span, "bad address");
            return Pred::Const(false);
        };
        let addr = u128::from(addr);
        let mask: u128 = match &value.suffix {
            None => u128::MAX,
            Some(Suffix::Prefix(len, span)) => match names::number(len).filter(|len| *len <= 128) {
                Some(0) => 0,
                Some(len) => u128::MAX << (128 - len),
                None => {
                    self.error(PCAP_SYNTAX, format!("`{len}` is not a prefix length of 0 to 128"), *span, "bad length");
                    return Pred::Const(false);
                }
            },
            Some(_) => {
                self.error(PCAP_SYNTAX, "an IPv6 network takes `/len`".into(), value.span, "bad mask");
                return Pred::Const(false);
            }
        };
        if mask != u128::MAX && qual.kind == Some(Kind::Host) {
            self.error(PCAP_SYNTAX, "a prefix needs `net`, not `host`".into(), value.span, "mask syntax");
            return Pred::Const(false);
        }
        if addr & !mask != 0 {
            self.error(PCAP_SYNTAX, format!("non-network bits set in `{text}`"), value.span, "host bits set");
            return Pred::Const(false);
        }
        if !matches!(qual.proto, None | Some(PName::Ip6)) {
            return self.bad_qualifier(qual.proto.unwrap_or(PName::Ip6), "an IPv6 address", value.span);
        }
        let net = self.net();
        let linktype = self.linktype(ETH_IP6);
        by_direction(qual.dir, |src| {
            let off = if src { 8 } else { 24 };
            let mut tests = vec![linktype.clone()];
            for word in 0..4u32 {
                let shift = 96 - 32 * word;
                let (a, m) = ((addr >> shift) as u32, (mask >> shift) as u32);
                tests.push(Pred::test(masked(net.load(4, off + 4 * word), m), TestOp::Eq, a));
            }
            Pred::And(tests)
        })
    }

    /// A port or port-range end: the number and the protocols a service name implies.
    fn port_number(&mut self, token: &Token, span: crate::diagnostic::Span) -> Option<(u32, ServiceProto)> {
        match token {
            Token::Number(text) => {
                let n = self.number(text, span);
                if n > 65535 {
                    self.error(PCAP_SYNTAX, format!("illegal port number {n} > 65535"), span, "not a port");
                    return None;
                }
                Some((n, ServiceProto::Both))
            }
            Token::Name(name) => match names::service(name) {
                Some((port, proto)) => Some((u32::from(port), proto)),
                None => {
                    self.refuse(Refusal::ServiceName, span, "not in pfc's service table");
                    None
                }
            },
            _ => {
                self.error(PCAP_SYNTAX, "a port is a number or a service name".into(), span, "not a port");
                None
            }
        }
    }

    fn port(&mut self, qual: Qual, value: &Value, range: bool) -> Pred {
        // A name with a dash is one token (`smtp-25`, `ftp-data`); in a port range libpcap's
        // `pcap_nametoportrange` splits it at its first dash.
        if let (true, None, Token::Name(text)) = (range, &value.suffix, &value.token) {
            if let Some((low, high)) = text.split_once('-') {
                let end = if high.bytes().all(|b| b.is_ascii_digit()) {
                    Token::Number(high.to_string())
                } else {
                    Token::Name(high.to_string())
                };
                let split = Value {
                    token: Token::Name(low.to_string()),
                    suffix: Some(Suffix::RangeEnd(end, value.span)),
                    span: value.span,
                };
                return self.port(qual, &split, range);
            }
        }
        let (low, mut class) = match self.port_number(&value.token, value.span) {
            Some(found) => found,
            None => return Pred::Const(false),
        };
        let mut high = low;
        match (&value.suffix, range) {
            (Some(Suffix::RangeEnd(end, span)), true) => match self.port_number(end, *span) {
                Some((end, end_class)) => {
                    high = end;
                    // `pcap_nametoportrange`: ends of different protocols make the
                    // range apply to every protocol.
                    if end_class != class {
                        class = ServiceProto::Both;
                    }
                }
                None => return Pred::Const(false),
            },
            (None, false) => {}
            (None, true) if !matches!(value.token, Token::Name(_)) => {}
            _ => {
                self.error(PCAP_SYNTAX, "a port range is written `LOW-HIGH`".into(), value.span, "bad port value");
                return Pred::Const(false);
            }
        }
        let (low, high) = (low.min(high), low.max(high));
        let proto = match (qual.proto, class) {
            (None, ServiceProto::Both) => None,
            (None, ServiceProto::Tcp) | (Some(PName::Tcp), ServiceProto::Tcp | ServiceProto::Both) => Some(PROTO_TCP),
            (None, ServiceProto::Udp) | (Some(PName::Udp), ServiceProto::Udp | ServiceProto::Both) => Some(PROTO_UDP),
            (Some(PName::Sctp), ServiceProto::Both) => Some(PROTO_SCTP),
            (Some(proto @ (PName::Tcp | PName::Udp | PName::Sctp)), _) => {
                self.error(
                    PCAP_SYNTAX,
                    format!("that service is not registered for `{}`", proto.as_str()),
                    value.span,
                    "wrong protocol",
                );
                return Pred::Const(false);
            }
            (Some(other), _) => return self.bad_qualifier(other, "port", value.span),
        };
        let protos: Vec<u32> = proto.map_or(vec![PROTO_SCTP, PROTO_TCP, PROTO_UDP], |p| vec![p]);
        let check = |port: Val| -> Pred {
            if range {
                Pred::And(vec![
                    Pred::test(port.clone(), TestOp::Ge, low),
                    Pred::negation(Pred::test(port, TestOp::Gt, high)),
                ])
            } else {
                Pred::test(port, TestOp::Eq, low)
            }
        };
        let net = self.net();
        let ports6 = |src: bool| check(net.load(2, 40 + if src { 0 } else { 2 }));
        let ip6 = Pred::And(vec![
            self.linktype(ETH_IP6),
            Pred::Or(
                protos
                    .iter()
                    .map(|p| {
                        Pred::And(vec![Pred::test(net.load(1, 6), TestOp::Eq, *p), by_direction(qual.dir, ports6)])
                    })
                    .collect(),
            ),
        ]);
        let tran4 = self.tran4();
        let ports4 = |src: bool| check(tran4.load(2, if src { 0 } else { 2 }));
        let ip4 = Pred::And(vec![
            self.linktype(ETH_IP),
            Pred::Or(
                protos
                    .iter()
                    .map(|p| {
                        Pred::And(vec![
                            Pred::test(net.load(1, 9), TestOp::Eq, *p),
                            self.ipv4_first_fragment(),
                            by_direction(qual.dir, ports4),
                        ])
                    })
                    .collect(),
            ),
        ]);
        Pred::Or(vec![ip6, ip4])
    }
}
