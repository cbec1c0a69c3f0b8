//! The layers and fields of the packet spec. Input: a layer name and its `key=value`
//! items; output: a [`Layer`] of the packet builder with those fields set (defaults
//! elsewhere), or a [`SpecError`] naming the item that is wrong.
//!
//! Value types: numbers are decimal or `0x` hex and range-checked to the field's width;
//! addresses are dotted IPv4, IPv6 and `aa:bb:cc:dd:ee:ff` MACs; ports, protocols, ICMP
//! types, ARP operations and ethertypes also take the names rule files use (`ssh`,
//! `udp`, `echo-request`, `reply`, `ipv6`); booleans are `1 0 true false yes no`, and a
//! boolean field written alone (`ipv4 df mf`) is true.
//!
//! Besides the keys [`LAYERS`] lists, a layer takes every field of the rule language
//! (`crate::fields`) that is bits of its header, by its name after the dot (`tcp
//! urgent=1` sets `tcp.urgent`, `ipv6 hop_limit=3` sets `ipv6.hop_limit`), written with
//! [`Packet::set`]: a field added to the `fields!` table needs nothing here.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::spec::{parse_hex, Item, SpecError, Value};
use super::MAX_PACKET_LEN;
use crate::check::names;
use crate::fields::{Field as ModelField, FieldSource, ValueKind};
use crate::packet::{Arp, Eth, ExtKind, Icmp, Ipv4, Ipv6, Ipv6Ext, Layer, Packet, Sctp, Tcp, Udp, Vlan};

/// Every layer name with its own keys (the first listed field takes a positional value
/// where the layer has one), for messages and documentation; the rule-language fields of
/// the layer's header come on top (`header_field`).
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
    fn bad(&self, expected: &str) -> SpecError {
        SpecError::BadValue {
            layer: self.layer,
            field: static_name(self.layer, self.known, self.name),
            expected: expected.into(),
            value: self.value.text.clone(),
            span: self.value.span,
        }
    }

    fn unknown(&self, span: crate::diagnostic::Span) -> SpecError {
        let mut known = self.known.to_string();
        for key in header_keys(self.layer, self.known) {
            known.push(' ');
            known.push_str(key);
        }
        SpecError::UnknownField { layer: self.layer, field: self.name.to_string(), known: known.into(), span }
    }

    /// The value of a rule-language field, as a rule file writes it (numbers, the
    /// field's named values, addresses), as the interpreter reads it.
    fn header_value(&self, field: ModelField) -> Result<u128, SpecError> {
        Ok(match field.kind() {
            kind @ ValueKind::Uint(_) => {
                let max = kind.max();
                self.named(names::named_values(field), max, &format!("{} (0..{max})", kind.describe()))?
            }
            ValueKind::Mac => self.mac()?.iter().fold(0, |value, &byte| (value << 8) | u128::from(byte)),
            ValueKind::Ipv4 => u128::from(u32::from(self.ipv4()?)),
            ValueKind::Ipv6 => u128::from(self.ipv6()?),
        })
    }

    fn number(&self, max: u128, expected: &str) -> Result<u128, SpecError> {
        let text = self.value.text.as_str();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u128::from_str_radix(hex, 16),
            None => text.parse::<u128>(),
        };
        parsed.ok().filter(|&n| n <= max).ok_or_else(|| self.bad(expected))
    }

    fn named(&self, table: &[(&str, u128)], max: u128, expected: &str) -> Result<u128, SpecError> {
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

/// The `&'static` spelling of a field name that is in `known` or names a rule-language
/// field of the layer (for error values).
fn static_name(layer: &str, known: &'static str, name: &str) -> &'static str {
    let header = || Some(&header_field(layer, name)?.name()[layer.len() + 1..]);
    known.split(' ').find(|candidate| *candidate == name).or_else(header).unwrap_or("value")
}

/// The rule-language field `LAYER.KEY` when it is bits of that layer's header (the spec's
/// layer names are the protocols' names), so [`Packet::set`] can write it.
fn header_field(layer: &str, key: &str) -> Option<ModelField> {
    let field = ModelField::by_name(&format!("{layer}.{key}"))?;
    matches!(field.source(), FieldSource::Header { proto, .. } if proto.name() == layer).then_some(field)
}

/// The keys of `layer` that only the rule-language table gives, for messages.
fn header_keys(layer: &'static str, known: &'static str) -> impl Iterator<Item = &'static str> {
    ModelField::ALL.iter().filter_map(move |field| {
        let key = field.name().strip_prefix(layer)?.strip_prefix('.')?;
        let own = known.split(' ').any(|candidate| candidate == key);
        (!own && header_field(layer, key) == Some(*field)).then_some(key)
    })
}

/// Builds one layer from its name and items and appends it to `packet`; keys that are
/// rule-language fields of the layer's header are then written over it.
pub(super) fn apply_layer(packet: &mut Packet, name: &Value, items: &[Item]) -> Result<(), SpecError> {
    let Some(&(layer, known)) = LAYERS.iter().find(|(layer, _)| *layer == name.text && *layer != "truncate") else {
        return Err(SpecError::UnknownLayer { name: name.text.clone(), known: LAYER_NAMES, span: name.span });
    };
    let mut built = empty_layer(layer);
    let mut writes = Vec::new();
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
        match set_field(&mut built, &field) {
            Err(SpecError::UnknownField { .. }) => match header_field(layer, field_name) {
                Some(model) => writes.push((model, field.header_value(model)?, field_name, &item.value)),
                None => return Err(field.unknown(key_span)),
            },
            result => result?,
        }
    }
    packet.layers.push(built);
    for (model, number, name, value) in writes {
        let field = Field { layer, known, name, value };
        *packet = std::mem::take(packet)
            .set(model, number)
            .map_err(|_| field.bad(&format!("a value `{}` can hold", model.name())))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use crate::eval::Headers;
    use crate::fields::{Field, FieldSource, Proto, ValueKind};
    use crate::testcase::{spec_bytes, SpecError};

    /// Every field that is bits of one header is a key of its layer by its name after
    /// the dot, with the value a rule file compares it with.
    #[test]
    fn every_header_field_is_a_key_of_its_layer() {
        for &field in Field::ALL {
            let FieldSource::Header { proto, .. } = field.source() else { continue };
            let key = field.name().strip_prefix(proto.name()).and_then(|key| key.strip_prefix('.'));
            let key = key.unwrap_or_else(|| panic!("{} is not named after its header {}", field.name(), proto.name()));
            let value = field.kind().max() / 3;
            let text = match field.kind() {
                ValueKind::Uint(_) => value.to_string(),
                ValueKind::Mac => {
                    value.to_be_bytes()[10..].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
                }
                ValueKind::Ipv4 => Ipv4Addr::from(value as u32).to_string(),
                ValueKind::Ipv6 => Ipv6Addr::from(value).to_string(),
            };
            let before = match proto {
                Proto::Eth | Proto::Vlan | Proto::Arp | Proto::Ipv4 | Proto::Ipv6 => "",
                Proto::Tcp | Proto::Sctp | Proto::Icmp => "ipv4 / ",
                Proto::Udp | Proto::Icmp6 => "ipv6 / ",
            };
            let spec = format!("{before}{} {key}={text}", proto.name());
            let frame = spec_bytes(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(Headers::parse(&frame).field_value(field), Some(value), "{spec}");
        }
    }

    #[test]
    fn rule_field_keys_are_listed_checked_and_spelled_as_in_rules() {
        let error = spec_bytes("ipv6 bogus=1").unwrap_err();
        let SpecError::UnknownField { known, .. } = &error else { panic!("{error:?}") };
        assert!(known.ends_with("plen hop_limit flow_label payload_len len"), "{known}");
        let error = spec_bytes("ipv6 len=39").unwrap_err().to_string();
        assert_eq!(error, "`ipv6 len` takes a value `ipv6.len` can hold, not `39`");
        let error = spec_bytes("ipv6 hop_limit=256").unwrap_err().to_string();
        assert_eq!(error, "`ipv6 hop_limit` takes an 8-bit number (0..255), not `256`");
        // A field of another header is no key here.
        assert!(matches!(spec_bytes("ipv6 frag_offset=1"), Err(SpecError::UnknownField { .. })));
    }
}
