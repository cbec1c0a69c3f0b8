//! The layers and fields of the packet spec. Input: a layer name and its `key=value`
//! items; output: a [`Layer`] of the packet builder with those fields set (defaults
//! elsewhere), or a [`SpecError`] naming the item that is wrong.
//!
//! Value types: numbers are decimal or `0x` hex and range-checked to the field's width;
//! addresses are dotted IPv4, IPv6 and `aa:bb:cc:dd:ee:ff` MACs; ports, protocols, ICMP
//! types, ARP operations and ethertypes also take the names rule files use (`ssh`,
//! `udp`, `echo-request`, `reply`, `ipv6`); booleans are `1 0 true false yes no`, and a
//! boolean field written alone (`ipv4 df mf`) is true.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::spec::{parse_hex, Item, SpecError, Value};
use super::MAX_PACKET_LEN;
use crate::check::names;
use crate::packet::{Arp, Eth, ExtKind, Icmp, Ipv4, Ipv6, Ipv6Ext, Layer, Sctp, Tcp, Udp, Vlan};

/// Every layer name with its fields (the first listed field takes a positional value
/// where the layer has one), for messages and documentation.
pub const LAYERS: &[(&str, &str)] = &[
    ("eth", "src dst type"),
    ("vlan", "id pcp dei tpid type"),
    ("ipv4", "src dst tos dscp ecn id ttl df mf frag ihl proto len checksum options version"),
    ("ipv6", "src dst tclass dscp flow hlim next plen"),
    ("hopopts", "len next"),
    ("routing", "len next"),
    ("dstopts", "len next"),
    ("frag6", "offset more next"),
    ("arp", "op sha sip tha tip"),
    ("tcp", "sport dport flags seq ack window checksum"),
    ("udp", "sport dport len checksum"),
    ("sctp", "sport dport vtag"),
    ("icmp", "type code rest"),
    ("icmp6", "type code rest"),
    ("payload", "data hex len"),
    ("truncate", "len"),
];

const LAYER_NAMES: &str =
    "eth vlan ipv4 ipv6 hopopts routing dstopts frag6 arp tcp udp sctp icmp icmp6 payload truncate";

/// Default ports of a spec's TCP, UDP and SCTP layers: high, unnamed ports, so that a
/// case only matches port rules through the ports it writes.
pub const DEFAULT_SPORT: u16 = 40000;
/// See [`DEFAULT_SPORT`].
pub const DEFAULT_DPORT: u16 = 40001;

/// What one field item means once its layer is known.
struct Field<'a> {
    layer: &'static str,
    known: &'static str,
    name: &'a str,
    value: &'a Value,
}

impl<'a> Field<'a> {
    fn bad(&self, expected: &'static str) -> SpecError {
        SpecError::BadValue {
            layer: self.layer,
            field: static_name(self.known, self.name),
            expected,
            value: self.value.text.clone(),
            span: self.value.span,
        }
    }

    fn unknown(&self, span: crate::diagnostic::Span) -> SpecError {
        SpecError::UnknownField { layer: self.layer, field: self.name.to_string(), known: self.known, span }
    }

    fn number(&self, max: u128, expected: &'static str) -> Result<u128, SpecError> {
        let text = self.value.text.as_str();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u128::from_str_radix(hex, 16),
            None => text.parse::<u128>(),
        };
        parsed.ok().filter(|&n| n <= max).ok_or_else(|| self.bad(expected))
    }

    fn named(&self, table: &[(&str, u128)], max: u128, expected: &'static str) -> Result<u128, SpecError> {
        match table.iter().find(|(name, _)| *name == self.value.text) {
            Some((_, value)) => Ok(*value),
            None => self.number(max, expected),
        }
    }

    fn u8(&self) -> Result<u8, SpecError> {
        Ok(self.number(0xff, "a number 0..255")? as u8)
    }

    fn u16(&self) -> Result<u16, SpecError> {
        Ok(self.number(0xffff, "a number 0..65535")? as u16)
    }

    fn u32(&self) -> Result<u32, SpecError> {
        Ok(self.number(0xffff_ffff, "a number 0..4294967295")? as u32)
    }

    fn port(&self) -> Result<u16, SpecError> {
        Ok(self.named(names::SERVICES, 0xffff, "a port 0..65535 or a service name (ssh, https, ...)")? as u16)
    }

    fn protocol(&self) -> Result<u8, SpecError> {
        Ok(self.named(names::IP_PROTOCOLS, 0xff, "a protocol number 0..255 or name (tcp, udp, ...)")? as u8)
    }

    fn ethertype(&self) -> Result<u16, SpecError> {
        Ok(self.named(names::ETHERTYPES, 0xffff, "an ethertype 0..0xffff or name (ipv4, arp, ...)")? as u16)
    }

    fn boolean(&self) -> Result<bool, SpecError> {
        match self.value.text.as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            _ => Err(self.bad("a boolean (1 0 true false yes no)")),
        }
    }

    fn ipv4(&self) -> Result<Ipv4Addr, SpecError> {
        self.value.text.parse().map_err(|_| self.bad("an IPv4 address"))
    }

    fn ipv6(&self) -> Result<Ipv6Addr, SpecError> {
        self.value.text.parse().map_err(|_| self.bad("an IPv6 address"))
    }

    fn mac(&self) -> Result<[u8; 6], SpecError> {
        let mut out = [0u8; 6];
        let mut parts = self.value.text.split(':');
        for byte in &mut out {
            let part = parts.next().filter(|p| (1..=2).contains(&p.len()));
            *byte = part.and_then(|p| u8::from_str_radix(p, 16).ok()).ok_or_else(|| self.bad("a MAC address"))?;
        }
        match parts.next() {
            None => Ok(out),
            Some(_) => Err(self.bad("a MAC address")),
        }
    }

    fn tcp_flags(&self) -> Result<u8, SpecError> {
        let text = self.value.text.as_str();
        if let Ok(n) = self.number(0xff, "") {
            return Ok(n as u8);
        }
        let expected = "flags as letters (S, SA, FPU: F S R P A U E C), names (syn,ack) or a number";
        let mut flags = 0u8;
        if text.chars().all(|c| c.is_ascii_uppercase() || c == '.') {
            for c in text.chars() {
                flags |= match c {
                    'F' => 0x01,
                    'S' => 0x02,
                    'R' => 0x04,
                    'P' => 0x08,
                    'A' | '.' => 0x10,
                    'U' => 0x20,
                    'E' => 0x40,
                    'C' | 'W' => 0x80,
                    _ => return Err(self.bad(expected)),
                };
            }
            return Ok(flags);
        }
        for name in text.split([',', '|', '+']) {
            let bit = names::TCP_FLAGS.iter().find(|(flag, _)| *flag == name).ok_or_else(|| self.bad(expected))?;
            flags |= bit.1 as u8;
        }
        Ok(flags)
    }
}

/// The `&'static` spelling of a field name that is in `known` (for error values).
fn static_name(known: &'static str, name: &str) -> &'static str {
    known.split(' ').find(|candidate| *candidate == name).unwrap_or("value")
}

/// Builds one layer from its name and items.
pub(super) fn apply_layer(name: &Value, items: &[Item]) -> Result<Layer, SpecError> {
    let Some(&(layer, known)) = LAYERS.iter().find(|(layer, _)| *layer == name.text && *layer != "truncate") else {
        return Err(SpecError::UnknownLayer { name: name.text.clone(), known: LAYER_NAMES, span: name.span });
    };
    let mut built = empty_layer(layer);
    for item in items {
        let (field_name, key_span) = match &item.key {
            Some((key, span)) => (key.as_str(), *span),
            None => (positional_field(layer, &item.value), item.value.span),
        };
        let flag_value = Value { text: "1".to_string(), quoted: false, span: item.value.span };
        let value = if item.key.is_none() && is_flag(layer, field_name) { &flag_value } else { &item.value };
        if field_name.is_empty() {
            return Err(SpecError::UnexpectedValue { layer, value: item.value.text.clone(), span: item.value.span });
        }
        let field = Field { layer, known, name: field_name, value };
        set_field(&mut built, &field).map_err(|error| match error {
            SpecError::UnknownField { .. } => field.unknown(key_span),
            other => other,
        })?;
    }
    Ok(built)
}

/// The field a value written without `key=` sets: a boolean flag named by the value, or
/// the layer's positional field; `""` when there is none.
fn positional_field<'a>(layer: &str, value: &'a Value) -> &'a str {
    if !value.quoted && is_flag(layer, &value.text) {
        return &value.text;
    }
    match layer {
        "vlan" => "id",
        "icmp" | "icmp6" => "type",
        "payload" => "data",
        "arp" => "op",
        _ => "",
    }
}

fn is_flag(layer: &str, field: &str) -> bool {
    matches!((layer, field), ("ipv4", "df" | "mf") | ("vlan", "dei") | ("frag6", "more"))
}

fn empty_layer(layer: &str) -> Layer {
    let (sport, dport) = (DEFAULT_SPORT, DEFAULT_DPORT);
    match layer {
        "eth" => Layer::Eth(Eth::default()),
        "vlan" => Layer::Vlan(Vlan::default()),
        "ipv4" => Layer::Ipv4(Ipv4::default()),
        "ipv6" => Layer::Ipv6(Ipv6::default()),
        "hopopts" => Layer::Ipv6Ext(Ipv6Ext { kind: ExtKind::HopByHop, len: 0, next: None }),
        "routing" => Layer::Ipv6Ext(Ipv6Ext { kind: ExtKind::Routing, len: 0, next: None }),
        "dstopts" => Layer::Ipv6Ext(Ipv6Ext { kind: ExtKind::DestOpts, len: 0, next: None }),
        "frag6" => Layer::Ipv6Ext(Ipv6Ext { kind: ExtKind::Fragment { offset: 0, more: false }, len: 0, next: None }),
        "arp" => Layer::Arp(Arp::default()),
        "tcp" => Layer::Tcp(Tcp { sport, dport, flags: 0x02, window: 65535, ..Tcp::default() }),
        "udp" => Layer::Udp(Udp { sport, dport, ..Udp::default() }),
        "sctp" => Layer::Sctp(Sctp { sport, dport, vtag: 1 }),
        "icmp" => Layer::Icmp(Icmp { kind: 8, code: 0, rest: 0 }),
        "icmp6" => Layer::Icmp6(Icmp { kind: 128, code: 0, rest: 0 }),
        _ => Layer::Payload(Vec::new()),
    }
}

/// Sets one field; `Err(UnknownField)` (span filled in by the caller) when the layer has
/// no such field.
fn set_field(layer: &mut Layer, f: &Field<'_>) -> Result<(), SpecError> {
    let unknown = || f.unknown(f.value.span);
    match layer {
        Layer::Eth(eth) => match f.name {
            "src" => eth.src = f.mac()?,
            "dst" => eth.dst = f.mac()?,
            "type" => eth.ethertype = Some(f.ethertype()?),
            _ => return Err(unknown()),
        },
        Layer::Vlan(tag) => match f.name {
            "id" => tag.id = f.number(0xfff, "a VLAN id 0..4095")? as u16,
            "pcp" => tag.pcp = f.number(7, "a priority 0..7")? as u8,
            "dei" => tag.dei = f.boolean()?,
            "tpid" => tag.tpid = f.ethertype()?,
            "type" => tag.ethertype = Some(f.ethertype()?),
            _ => return Err(unknown()),
        },
        Layer::Ipv4(ip) => set_ipv4(ip, f)?,
        Layer::Ipv6(ip) => match f.name {
            "src" => ip.src = f.ipv6()?,
            "dst" => ip.dst = f.ipv6()?,
            "tclass" => ip.tclass = f.u8()?,
            "dscp" => ip.tclass = (ip.tclass & 0x3) | (f.number(63, "a DSCP 0..63")? as u8) << 2,
            "flow" => ip.flow_label = f.number(0xfffff, "a flow label 0..1048575")? as u32,
            "hlim" => ip.hop_limit = f.u8()?,
            "next" => ip.next = Some(f.protocol()?),
            "plen" => ip.payload_len = Some(f.u16()?),
            _ => return Err(unknown()),
        },
        Layer::Ipv6Ext(ext) => match (f.name, &mut ext.kind) {
            ("next", _) => ext.next = Some(f.protocol()?),
            ("len", ExtKind::HopByHop | ExtKind::Routing | ExtKind::DestOpts) => ext.len = f.u8()?,
            ("offset", ExtKind::Fragment { offset, .. }) => {
                *offset = f.number(0x1fff, "a fragment offset 0..8191 (8-byte units)")? as u16
            }
            ("more", ExtKind::Fragment { more, .. }) => *more = f.boolean()?,
            _ => return Err(unknown()),
        },
        Layer::Arp(arp) => match f.name {
            "op" => arp.op = f.named(names::ARP_OPS, 0xffff, "request, reply or a number 0..65535")? as u16,
            "sha" => arp.sha = f.mac()?,
            "sip" => arp.sip = f.ipv4()?,
            "tha" => arp.tha = f.mac()?,
            "tip" => arp.tip = f.ipv4()?,
            _ => return Err(unknown()),
        },
        Layer::Tcp(tcp) => match f.name {
            "sport" => tcp.sport = f.port()?,
            "dport" => tcp.dport = f.port()?,
            "flags" => tcp.flags = f.tcp_flags()?,
            "seq" => tcp.seq = f.u32()?,
            "ack" => tcp.ack = f.u32()?,
            "window" => tcp.window = f.u16()?,
            "checksum" => tcp.checksum = Some(f.u16()?),
            _ => return Err(unknown()),
        },
        Layer::Udp(udp) => match f.name {
            "sport" => udp.sport = f.port()?,
            "dport" => udp.dport = f.port()?,
            "len" => udp.len = Some(f.u16()?),
            "checksum" => udp.checksum = Some(f.u16()?),
            _ => return Err(unknown()),
        },
        Layer::Sctp(sctp) => match f.name {
            "sport" => sctp.sport = f.port()?,
            "dport" => sctp.dport = f.port()?,
            "vtag" => sctp.vtag = f.u32()?,
            _ => return Err(unknown()),
        },
        Layer::Icmp(icmp) => set_icmp(icmp, f, names::ICMP_TYPES)?,
        Layer::Icmp6(icmp) => set_icmp(icmp, f, names::ICMP6_TYPES)?,
        Layer::Payload(bytes) => match f.name {
            "data" => bytes.extend_from_slice(f.value.text.as_bytes()),
            "hex" => bytes.extend(parse_hex(&f.value.text).map_err(|_| f.bad("hex bytes (`de ad be ef`)"))?),
            "len" => {
                let len = f.number(MAX_PACKET_LEN as u128 + 1, "a byte count up to 65536")? as usize;
                bytes.resize(bytes.len() + len, 0);
            }
            _ => return Err(unknown()),
        },
    }
    Ok(())
}

fn set_ipv4(ip: &mut Ipv4, f: &Field<'_>) -> Result<(), SpecError> {
    match f.name {
        "src" => ip.src = f.ipv4()?,
        "dst" => ip.dst = f.ipv4()?,
        "tos" => ip.tos = f.u8()?,
        "dscp" => ip.tos = (ip.tos & 0x3) | (f.number(63, "a DSCP 0..63")? as u8) << 2,
        "ecn" => ip.tos = (ip.tos & 0xfc) | f.number(3, "an ECN 0..3")? as u8,
        "id" => ip.id = f.u16()?,
        "ttl" => ip.ttl = f.u8()?,
        "df" => ip.df = f.boolean()?,
        "mf" => ip.mf = f.boolean()?,
        "frag" => ip.frag_offset = f.number(0x1fff, "a fragment offset 0..8191 (8-byte units)")? as u16,
        "ihl" => ip.ihl = Some(f.number(15, "a header length 0..15 (32-bit words)")? as u8),
        "proto" => ip.protocol = Some(f.protocol()?),
        "len" => ip.total_len = Some(f.u16()?),
        "checksum" => ip.checksum = Some(f.u16()?),
        "version" => ip.version = f.number(15, "a version 0..15")? as u8,
        "options" => {
            let bytes = parse_hex(&f.value.text).ok().filter(|b| b.len() <= 40);
            ip.options = bytes.ok_or_else(|| f.bad("up to 40 option bytes in hex"))?;
        }
        _ => return Err(f.unknown(f.value.span)),
    }
    Ok(())
}

fn set_icmp(icmp: &mut Icmp, f: &Field<'_>, types: &[(&str, u128)]) -> Result<(), SpecError> {
    match f.name {
        "type" => icmp.kind = f.named(types, 0xff, "a type 0..255 or name (echo-request, ...)")? as u8,
        "code" => icmp.code = f.u8()?,
        "rest" => icmp.rest = f.u32()?,
        _ => return Err(f.unknown(f.value.span)),
    }
    Ok(())
}
