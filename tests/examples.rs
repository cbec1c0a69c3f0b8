//! The example rule files: every `rules-examples/*.pf` passes `pfc check` (the real
//! binary) with no error and no warning, and each file does what its comments promise
//! on a few hand-built packets (run in the interpreter, pfc's executable specification).

mod support;

use pfc_compiler::eval::evaluate;
use pfc_compiler::packet::{Ipv6, Packet, Tcp};
use pfc_compiler::program::Verdict;
use support::{files_with_extension, pfc, repo};

#[test]
fn every_example_checks_cleanly() {
    let examples = files_with_extension(&repo().join("rules-examples"), "pf");
    assert!(examples.len() >= 7, "expected at least 7 examples, found {}", examples.len());
    for path in examples {
        let relative = path.strip_prefix(repo()).expect("inside the repo").to_string_lossy().into_owned();
        let run = pfc(&["check", &relative]);
        run.assert_no_crash(&relative);
        assert_eq!(run.code, 0, "{relative}:\n{}", run.stderr);
        assert!(!run.stderr.contains("warning["), "{relative} has warnings:\n{}", run.stderr);
        assert!(run.stderr.contains(&format!("{relative}: ok")), "{relative}:\n{}", run.stderr);
    }
}

/// The verdict of `example` on `frame`, and the name of the rule that decided.
#[track_caller]
fn verdict(example: &str, frame: &[u8], expected: Verdict, expected_rule: &str) {
    let text = std::fs::read_to_string(repo().join("rules-examples").join(example)).expect("example exists");
    let (program, diagnostics) = pfc_compiler::check_source(&text);
    let program = program.unwrap_or_else(|| panic!("{example}: {diagnostics:#?}"));
    let outcome = evaluate(&program, frame);
    let rule = outcome.rule.map_or("default", |index| program.rules[index].name.as_str());
    assert_eq!((outcome.verdict, rule), (expected, expected_rule), "{example}");
}

fn hop_limit(limit: u8) -> impl FnOnce(&mut Ipv6) {
    move |header| header.hop_limit = limit
}

fn flags(bits: u8) -> impl FnOnce(&mut Tcp) {
    move |header| header.flags = bits
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

#[test]
#[rustfmt::skip]
fn examples_decide_as_their_comments_say() {
    use Verdict::{Drop, Pass};
    let nd = |src: &str| Packet::eth().ipv6(src, "ff02::1:ff00:1").icmp6(135, 0).edit(hop_limit(255)).build();
    // IPv6 router: neighbour discovery passes (hop limit 255), routed ND does not, PMTUD passes.
    verdict("ipv6-router.pf", &nd("fe80::1"), Pass, "nd");
    verdict("ipv6-router.pf", &Packet::eth().ipv6("fe80::1", "ff02::1").icmp6(135, 0).edit(hop_limit(64)).build(), Drop, "default");
    verdict("ipv6-router.pf", &Packet::eth().ipv6("2001:db8:9::1", "2001:db8:100::1").icmp6(2, 0).build(), Pass, "icmp6_errors");
    verdict("ipv6-router.pf", &Packet::eth().ipv6("2001:db8:100::7", "2001:db8:100::1").tcp(1234, 80).build(), Drop, "spoofed_ours");
    verdict("ipv6-router.pf", &Packet::eth().ipv6("2001:db8:9::1", "2001:db8:100::1").tcp(1234, 22).build(), Drop, "no_mgmt");
    verdict("ipv6-router.pf", &Packet::eth().ipv6("2001:db8:9::1", "2001:db8:100::1").tcp(1234, 443).build(), Pass, "transit");
    verdict("ipv6-router.pf", &Packet::eth().ipv4("192.0.2.1", "198.51.100.1").udp(1, 2).build(), Pass, "other_families");
    // SSH bastion: SSH only from the admins; everything unasked-for is dropped.
    verdict("ssh-bastion.pf", &Packet::eth().ipv4("192.0.2.9", "203.0.113.1").tcp(40000, 22).build(), Pass, "ssh_in");
    verdict("ssh-bastion.pf", &Packet::eth().ipv4("198.51.100.9", "203.0.113.1").tcp(40000, 22).build(), Drop, "default");
    verdict("ssh-bastion.pf", &Packet::eth().ipv4("10.20.3.4", "10.20.0.1").tcp(22, 40000).edit(flags(ACK)).build(), Pass, "ssh_out_reply");
    verdict("ssh-bastion.pf", &nd("fe80::1"), Pass, "nd");
    // DNS server: queries pass, reflected answers and amplifier traffic do not.
    verdict("dns-server.pf", &Packet::eth().ipv4("192.0.2.9", "198.51.100.53").udp(5353, 53).payload([0u8; 30]).build(), Pass, "dns");
    verdict("dns-server.pf", &Packet::eth().ipv4("192.0.2.9", "198.51.100.53").udp(5353, 53).build(), Drop, "runt_query");
    verdict("dns-server.pf", &Packet::eth().ipv4("192.0.2.9", "198.51.100.53").udp(53, 40000).build(), Drop, "reflected");
    verdict("dns-server.pf", &Packet::eth().ipv4("198.51.100.10", "198.51.100.53").udp(53, 40000).build(), Pass, "primary_answer");
    verdict("dns-server.pf", &Packet::eth().ipv4("192.0.2.9", "198.51.100.53").udp(11211, 53).build(), Drop, "amplified");
    // Anti-spoofing: bogon and own-prefix sources are dropped; the rest passes.
    verdict("anti-spoofing.pf", &Packet::eth().ipv4("10.1.2.3", "185.0.2.1").tcp(1, 80).build(), Drop, "martian_v4");
    verdict("anti-spoofing.pf", &Packet::eth().ipv6("fc00::1", "2a0c:db8::1").tcp(1, 80).build(), Drop, "martian_v6");
    verdict("anti-spoofing.pf", &Packet::eth().ipv4("185.0.2.9", "185.0.2.1").tcp(1, 80).build(), Drop, "spoofed_inside");
    verdict("anti-spoofing.pf", &nd("fe80::1"), Pass, "default");
    verdict("anti-spoofing.pf", &Packet::eth().ipv4("8.8.8.8", "185.0.2.1").udp(53, 5000).build(), Pass, "default");
    // Small office: ARP, DHCP and replies pass; a bare SYN from outside does not.
    verdict("small-office.pf", &Packet::eth().arp(1, "192.168.10.7", "192.168.10.1").build(), Pass, "arp");
    verdict("small-office.pf", &Packet::eth().ipv4("0.0.0.0", "255.255.255.255").udp(68, 67).build(), Pass, "dhcp");
    verdict("small-office.pf", &Packet::eth().ipv4("93.184.216.34", "192.168.10.1").tcp(443, 50000).edit(flags(ACK)).build(), Pass, "established");
    verdict("small-office.pf", &Packet::eth().ipv4("93.184.216.34", "192.168.10.1").tcp(443, 50000).edit(flags(SYN | ACK)).build(), Pass, "syn_ack");
    verdict("small-office.pf", &Packet::eth().ipv4("93.184.216.34", "192.168.10.1").tcp(443, 22).edit(flags(SYN)).build(), Drop, "default");
    verdict("small-office.pf", &Packet::eth().ipv4("192.168.10.5", "192.168.10.1").tcp(50000, 22).edit(flags(SYN)).build(), Pass, "ssh_admin");
    // TC egress: spoofed sources, direct mail and direct DNS do not leave; the rest does.
    verdict("tc-egress.pf", &Packet::eth().ipv4("10.9.9.9", "192.0.2.1").tcp(1, 80).build(), Drop, "spoofed");
    verdict("tc-egress.pf", &Packet::eth().ipv4("203.0.113.40", "192.0.2.1").tcp(40000, 25).build(), Drop, "smtp_direct");
    verdict("tc-egress.pf", &Packet::eth().ipv4("203.0.113.40", "203.0.113.25").tcp(40000, 25).build(), Pass, "smtp_relay");
    verdict("tc-egress.pf", &Packet::eth().ipv4("203.0.113.40", "8.8.8.8").udp(40000, 53).build(), Drop, "dns_direct");
    verdict("tc-egress.pf", &Packet::eth().ipv6("fe80::40", "ff02::1:ff00:1").icmp6(135, 0).edit(hop_limit(255)).build(), Pass, "default");
    verdict("tc-egress.pf", &Packet::eth().ipv4("203.0.113.40", "192.0.2.1").tcp(443, 40000).build(), Pass, "default");
}
