//! pcap front-end cases: expression text in, the diagnostic code (or the verdict on a
//! few frames) out. One line of data per case.

use super::{compile, PCAP_SYNTAX, PCAP_UNSUPPORTED};
use crate::diagnostic::Span;

fn codes(text: &str) -> Vec<&'static str> {
    let (_, diagnostics) = compile(text, Span::new(0, text.len()));
    diagnostics.iter().map(|d| d.code.0).collect()
}

/// Frames: an IPv4/TCP SYN 10.0.0.1:1024 → 10.0.0.2:22, and a 10-byte runt.
fn verdicts(text: &str) -> (bool, bool) {
    let mut tcp = vec![0u8; 54];
    tcp[12..14].copy_from_slice(&[0x08, 0x00]);
    tcp[14] = 0x45;
    tcp[23] = 6;
    tcp[26..30].copy_from_slice(&[10, 0, 0, 1]);
    tcp[30..34].copy_from_slice(&[10, 0, 0, 2]);
    tcp[34..38].copy_from_slice(&[0x04, 0x00, 0x00, 22]);
    tcp[47] = 0x02;
    let (filter, diagnostics) = compile(text, Span::new(0, text.len()));
    let filter = filter.unwrap_or_else(|| panic!("{text}: {diagnostics:?}"));
    (filter.matches(&tcp), filter.matches(&[0u8; 10]))
}

#[test]
fn diagnostics() {
    let cases: &[(&str, &[&str])] = &[
        ("tcp port 22", &[]),
        ("host 10.0.0.1 and 10.0.0.2", &[]),
        ("tcp and 22", &[PCAP_SYNTAX.0]),
        ("host example.com", &[PCAP_UNSUPPORTED.0]),
        ("gateway 10.0.0.1", &[PCAP_UNSUPPORTED.0]),
        ("ip6 protochain 6", &[PCAP_UNSUPPORTED.0]),
        ("ip broadcast", &[PCAP_UNSUPPORTED.0]),
        ("ip[0] / 0 = 1", &[PCAP_SYNTAX.0]),
        ("ip[0] << 32 = 1", &[PCAP_SYNTAX.0]),
        ("tcp[0:3] = 1", &[PCAP_SYNTAX.0]),
        ("port 70000", &[PCAP_SYNTAX.0]),
        ("net 10.0.0.1/8", &[PCAP_SYNTAX.0]),
        ("udp port http", &[PCAP_SYNTAX.0]),
        ("port nosuchservice or host foo", &[PCAP_UNSUPPORTED.0, PCAP_UNSUPPORTED.0]),
        ("tcp src 22", &[PCAP_UNSUPPORTED.0]),
        ("vlan 5000", &[PCAP_SYNTAX.0]),
        ("ether proto 1", &[PCAP_UNSUPPORTED.0]),
        ("inbound", &[PCAP_UNSUPPORTED.0]),
        ("tcp port", &[PCAP_SYNTAX.0]),
    ];
    for (text, expected) in cases {
        assert_eq!(&codes(text), expected, "{text}");
    }
}

#[test]
fn verdicts_on_a_syn_and_a_runt() {
    let cases: &[(&str, (bool, bool))] = &[
        ("", (true, true)),
        ("tcp port 22", (true, false)),
        ("tcp dst port ssh and src host 10.0.0.1", (true, false)),
        ("not tcp", (false, false)),
        ("tcp[tcpflags] & tcp-syn != 0", (true, false)),
        ("less 20", (false, true)),
        ("greater 54", (true, false)),
        ("host 10.0.0.9 or 10.0.0.2", (true, false)),
        ("src net 10.0.0.0/24 and dst portrange 20-30", (true, false)),
        ("ip[0] & 0xf = 5", (true, false)),
        ("ether[0] = 0", (true, true)),
        ("vlan or tcp", (false, false)),
        ("len >= 54 and ip[9] = 6", (true, false)),
    ];
    for (text, expected) in cases {
        assert_eq!(verdicts(text), *expected, "{text}");
    }
}
