//! One-line packet summaries for reports. Input: a frame's bytes; output: text such as
//! `54 bytes: eth / ipv4 10.0.0.1 > 10.0.0.2 / tcp 40000 > 22 [S]`, read through the
//! interpreter's header parser so that it shows what the rules see. [`flow`] is the short
//! form `pfc watch` prints: `tcp 10.0.0.1:51000 > 10.0.0.2:22 S`.

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

/// The flow of `packet` in one short phrase, as tcpdump-like tools print it: `tcp
/// 10.0.0.1:51000 > 10.0.0.2:22 S`, `udp [2001:db8::1]:53 > [2001:db8::2]:4000`, `icmp
/// 10.0.0.1 > 10.0.0.2 type 8 code 0`, `arp op 1 10.0.0.1 > 10.0.0.2`, `ipv4 10.0.0.1 >
/// 10.0.0.2 proto 47`, `eth type 0x88cc`; a VLAN tag comes first (`vlan 10 tcp …`).
pub fn flow(packet: &[u8]) -> String {
    let headers = Headers::parse(packet);
    let value = |field: Field| headers.field_value(field);
    if !headers.has(Proto::Eth) {
        return format!("{} bytes, too short for Ethernet", packet.len());
    }
    let vlan = value(Field::VlanId).map(|id| format!("vlan {id} ")).unwrap_or_default();
    if headers.has(Proto::Arp) {
        let (sip, tip) = (value(Field::ArpSip).unwrap_or(0), value(Field::ArpTip).unwrap_or(0));
        let op = value(Field::ArpOp).unwrap_or(0);
        return format!("{vlan}arp op {op} {} > {}", Ipv4Addr::from(sip as u32), Ipv4Addr::from(tip as u32));
    }
    let (family, src, dst) = if headers.has(Proto::Ipv4) {
        let (src, dst) = (value(Field::Ipv4Src).unwrap_or(0), value(Field::Ipv4Dst).unwrap_or(0));
        ("ipv4", Ipv4Addr::from(src as u32).to_string(), Ipv4Addr::from(dst as u32).to_string())
    } else if headers.has(Proto::Ipv6) {
        let (src, dst) = (value(Field::Ipv6Src).unwrap_or(0), value(Field::Ipv6Dst).unwrap_or(0));
        ("ipv6", Ipv6Addr::from(src).to_string(), Ipv6Addr::from(dst).to_string())
    } else {
        return format!("{vlan}eth type 0x{:04x}", value(Field::EthType).unwrap_or(0));
    };
    // `addr:port`, with IPv6 addresses in brackets.
    let port = |addr: &str, port: u128| {
        if family == "ipv6" {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        }
    };
    let ports = |proto: &str, sport: Field, dport: Field| {
        let (sport, dport) = (value(sport).unwrap_or(0), value(dport).unwrap_or(0));
        format!("{vlan}{proto} {} > {}", port(&src, sport), port(&dst, dport))
    };
    if headers.has(Proto::Tcp) {
        let flags = flag_letters(value(Field::TcpFlags).unwrap_or(0) as u8);
        return format!("{} {flags}", ports("tcp", Field::TcpSport, Field::TcpDport));
    }
    if headers.has(Proto::Udp) {
        return ports("udp", Field::UdpSport, Field::UdpDport);
    }
    if headers.has(Proto::Sctp) {
        return ports("sctp", Field::SctpSport, Field::SctpDport);
    }
    let icmp = |proto: &str, kind: Field, code: Field| {
        let (kind, code) = (value(kind).unwrap_or(0), value(code).unwrap_or(0));
        format!("{vlan}{proto} {src} > {dst} type {kind} code {code}")
    };
    if headers.has(Proto::Icmp) {
        return icmp("icmp", Field::IcmpType, Field::IcmpCode);
    }
    if headers.has(Proto::Icmp6) {
        return icmp("icmp6", Field::Icmp6Type, Field::Icmp6Code);
    }
    let proto = value(if family == "ipv4" { Field::Ipv4Proto } else { Field::Ipv6Proto }).unwrap_or(0);
    format!("{vlan}{family} {src} > {dst} proto {proto}")
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

#[cfg(test)]
mod tests {
    use super::flow;
    use crate::testcase::spec::spec_bytes;

    fn check(spec: &str, expected: &str) {
        let bytes = spec_bytes(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(flow(&bytes), expected, "{spec}");
    }

    #[test]
    fn flows_read_like_tcpdump() {
        check(
            "eth / ipv4 src=10.0.0.1 dst=10.0.0.2 / tcp sport=51000 dport=22 flags=S",
            "tcp 10.0.0.1:51000 > 10.0.0.2:22 S",
        );
        check(
            "eth / ipv6 src=2001:db8::1 dst=2001:db8::2 / udp sport=53 dport=4000",
            "udp [2001:db8::1]:53 > [2001:db8::2]:4000",
        );
        check("eth / ipv4 src=10.0.0.1 dst=10.0.0.2 / icmp echo-request", "icmp 10.0.0.1 > 10.0.0.2 type 8 code 0");
        check(
            "eth / vlan id=10 / ipv4 src=10.0.0.1 dst=10.0.0.2 / udp sport=1 dport=2",
            "vlan 10 udp 10.0.0.1:1 > 10.0.0.2:2",
        );
        check("eth / ipv4 src=10.0.0.1 dst=10.0.0.2 proto=47", "ipv4 10.0.0.1 > 10.0.0.2 proto 47");
        assert_eq!(flow(&[0; 10]), "10 bytes, too short for Ethernet");
    }
}
