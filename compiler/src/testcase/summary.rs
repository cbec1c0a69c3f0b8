//! One-line packet summaries for reports. Input: a frame's bytes; output: text such as
//! `54 bytes: eth / ipv4 10.0.0.1 > 10.0.0.2 / tcp 40000 > 22 [S]`, read through the
//! interpreter's header parser so that it shows what the rules see.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::eval::Headers;
use crate::fields::{Field, Proto};

/// A one-line description of `packet` as pfc parses it.
pub fn summarize(packet: &[u8]) -> String {
    let headers = Headers::parse(packet);
    let value = |field: Field| headers.field_value(field);
    let mut out = format!("{} bytes:", packet.len());
    if !headers.has(Proto::Eth) {
        out.push_str(" (too short for Ethernet)");
        return out;
    }
    out.push_str(" eth");
    if let Some(id) = value(Field::VlanId) {
        let _ = write!(out, " / vlan {id}");
    }
    if headers.has(Proto::Arp) {
        let op = value(Field::ArpOp).unwrap_or(0);
        let (sip, tip) = (value(Field::ArpSip).unwrap_or(0), value(Field::ArpTip).unwrap_or(0));
        let _ = write!(out, " / arp op {op} {} > {}", Ipv4Addr::from(sip as u32), Ipv4Addr::from(tip as u32));
    } else if headers.has(Proto::Ipv4) {
        let (src, dst) = (value(Field::Ipv4Src).unwrap_or(0), value(Field::Ipv4Dst).unwrap_or(0));
        let _ = write!(out, " / ipv4 {} > {}", Ipv4Addr::from(src as u32), Ipv4Addr::from(dst as u32));
        let frag = value(Field::Ipv4FragOffset).unwrap_or(0);
        if frag > 0 || value(Field::Ipv4Mf) == Some(1) {
            let _ = write!(out, " frag={frag}{}", if value(Field::Ipv4Mf) == Some(1) { " mf" } else { "" });
        }
    } else if headers.has(Proto::Ipv6) {
        let (src, dst) = (value(Field::Ipv6Src).unwrap_or(0), value(Field::Ipv6Dst).unwrap_or(0));
        let _ = write!(out, " / ipv6 {} > {}", Ipv6Addr::from(src), Ipv6Addr::from(dst));
    } else if let Some(ethertype) = value(Field::EthType) {
        let _ = write!(out, " type 0x{ethertype:04x}");
    }
    if headers.has(Proto::Tcp) {
        let (sport, dport) = (value(Field::TcpSport).unwrap_or(0), value(Field::TcpDport).unwrap_or(0));
        let _ = write!(out, " / tcp {sport} > {dport} [{}]", flag_letters(value(Field::TcpFlags).unwrap_or(0) as u8));
    } else if headers.has(Proto::Udp) {
        let (sport, dport) = (value(Field::UdpSport).unwrap_or(0), value(Field::UdpDport).unwrap_or(0));
        let _ = write!(out, " / udp {sport} > {dport}");
    } else if headers.has(Proto::Sctp) {
        let (sport, dport) = (value(Field::SctpSport).unwrap_or(0), value(Field::SctpDport).unwrap_or(0));
        let _ = write!(out, " / sctp {sport} > {dport}");
    } else if headers.has(Proto::Icmp) {
        let (kind, code) = (value(Field::IcmpType).unwrap_or(0), value(Field::IcmpCode).unwrap_or(0));
        let _ = write!(out, " / icmp type {kind} code {code}");
    } else if headers.has(Proto::Icmp6) {
        let (kind, code) = (value(Field::Icmp6Type).unwrap_or(0), value(Field::Icmp6Code).unwrap_or(0));
        let _ = write!(out, " / icmp6 type {kind} code {code}");
    }
    out
}

/// Flag letters as the spec writes them (`S`, `SA`, `FPU`); `none` for none.
fn flag_letters(flags: u8) -> String {
    let letters: String =
        [(0x01, 'F'), (0x02, 'S'), (0x04, 'R'), (0x08, 'P'), (0x10, 'A'), (0x20, 'U'), (0x40, 'E'), (0x80, 'C')]
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, letter)| *letter)
            .collect();
    if letters.is_empty() {
        "none".to_string()
    } else {
        letters
    }
}

/// Lower-case hex of `bytes`, no separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}
