//! The pcap contract (docs/pcap.md, docs/cli.md) through the real binary: `pfc test RULES --pcap FILE
//! --verdicts` prints one JSON line per frame, in order, equal to the interpreter's
//! verdict and rule, on a generated capture of every kind of frame (VLAN, QinQ, ARP,
//! IPv4 with options and fragments, IPv6 with extension headers, every transport,
//! truncated frames, runts, random bytes); pcapng gives the same lines; and with
//! `--kernel` the kernel agrees with the VM on every frame it runs (skipped with the
//! reason when unprivileged).

#[macro_use]
extern crate pfc_test_support;

mod support;

use pfc_compiler::packet::{ExtKind, Layer, Packet};
use pfc_compiler::program::Program;
use support::{pfc_in, scratch_dir};

/// Frames in the generated corpus.
const CORPUS_LEN: usize = 2400;

/// A TC rule set touching fields of every layer (edge.pf covers XDP).
const TC_RULES: &str = "\
hook tc ingress
default drop
rule vlan_dns:   pass if vlan.id == 10 and udp.dport == 53
rule arp_local:  pass if arp.op == request and arp.tip in { 10.0.0.0/24 }
rule v6_echo:    pass if icmp6.type == echo-request
rule sctp_in:    pass if sctp.dport == 9899
rule low_ttl:    drop if ip.ttl < 5
rule web:        pass if l4.dport in { 80, 443 } and not ip.src in { 203.0.113.0/24 }
rule syn:        drop if tcp.flags & (syn | ack) == syn
rule dscp_ef:    pass if ip.dscp == 46
rule big:        pass if pkt.len > 1000
rule ethertype:  pass if eth.type == 0x88b5
rule frags:      pass if ipv4.frag_offset > 0 or ipv4.mf == 1
";

/// Deterministic pseudo-random numbers (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const V4: &[&str] = &["10.0.0.1", "10.0.0.200", "192.0.2.9", "203.0.113.5", "198.51.100.7", "192.168.1.1"];
const V6: &[&str] = &["2001:db8::1", "2001:db8:100::5", "fe80::1", "2001:db8::2"];
const PORTS: &[u16] = &[22, 23, 53, 80, 443, 8080, 9899, 40000, 1];

fn transport(packet: Packet, rng: &mut Rng, v6: bool) -> Packet {
    let (sport, dport) = (rng.pick(PORTS), rng.pick(PORTS));
    match rng.below(5) {
        0 => packet.tcp(sport, dport).edit(|tcp: &mut pfc_compiler::packet::Tcp| tcp.flags = rng.next() as u8),
        1 => packet.udp(sport, dport),
        2 => packet.sctp(sport, dport),
        3 if v6 => packet.icmp6(rng.pick(&[128, 129, 135, 1]), 0),
        3 => packet.icmp(rng.pick(&[8, 0, 3, 11]), 0),
        _ => packet.payload(vec![0xab; rng.below(40) as usize]),
    }
}

fn ipv4(packet: Packet, rng: &mut Rng) -> Packet {
    let packet = packet.ipv4(rng.pick(V4), rng.pick(V4)).edit(|ip: &mut pfc_compiler::packet::Ipv4| {
        ip.ttl = rng.pick(&[1, 4, 64, 255]);
        ip.tos = rng.pick(&[0, 46 << 2, 0xff]);
        if rng.below(6) == 0 {
            ip.options = vec![1; 1 + rng.below(12) as usize];
        }
        if rng.below(6) == 0 {
            ip.frag_offset = rng.pick(&[0, 1, 185]);
            ip.mf = rng.below(2) == 0;
        }
    });
    transport(packet, rng, false)
}

fn ipv6(packet: Packet, rng: &mut Rng) -> Packet {
    let mut packet = packet.ipv6(rng.pick(V6), rng.pick(V6));
    for _ in 0..rng.below(3) {
        let kind = match rng.below(4) {
            0 => ExtKind::HopByHop,
            1 => ExtKind::Routing,
            2 => ExtKind::DestOpts,
            _ => ExtKind::Fragment { offset: rng.pick(&[0, 0, 7]), more: rng.below(2) == 0 },
        };
        packet = packet.ext(kind, rng.below(2) as u8);
    }
    transport(packet, rng, true)
}

/// One frame of a random kind.
fn frame(rng: &mut Rng) -> Vec<u8> {
    let mut packet = Packet::eth();
    match rng.below(10) {
        0 => packet = packet.vlan(rng.pick(&[10, 20])),
        1 => packet = packet.vlan(100).edit(|tag: &mut pfc_compiler::packet::Vlan| tag.tpid = 0x88a8).vlan(10),
        _ => {}
    }
    let packet = match rng.below(12) {
        0 => packet.arp(rng.pick(&[1, 2]), rng.pick(V4), rng.pick(V4)),
        1 => packet.payload(vec![0; rng.below(20) as usize]),
        2..=6 => ipv4(packet, rng),
        7..=10 => ipv6(packet, rng),
        _ => packet.push(Layer::Payload((0..rng.below(80)).map(|_| rng.next() as u8).collect())),
    };
    let packet = if rng.below(8) == 0 { packet.payload(vec![0; 1000]) } else { packet };
    let mut bytes = packet.build();
    match rng.below(10) {
        0 => bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize),
        1 => bytes.truncate(rng.below(14) as usize),
        _ => {}
    }
    bytes
}

fn corpus() -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..CORPUS_LEN).map(|_| frame(&mut rng)).collect()
}

/// A classic little-endian pcap with Ethernet link type.
fn write_pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    for frame in frames {
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

/// A big-endian pcapng: section header, one Ethernet interface, enhanced packet blocks
/// (and one block of an unknown type, which readers skip).
fn write_pcapng(frames: &[Vec<u8>]) -> Vec<u8> {
    let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&len.to_be_bytes());
    };
    let mut out = Vec::new();
    block(&mut out, 0x0a0d_0d0a, &[0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    block(&mut out, 1, &[0, 1, 0, 0, 0, 0, 0xff, 0xff]);
    block(&mut out, 0x0bad, &[1, 2, 3, 4]);
    for frame in frames {
        let mut body = vec![0; 12];
        body.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        body.extend_from_slice(frame);
        block(&mut out, 6, &body);
    }
    out
}

/// The interpreter's line for frame `index`.
fn expected_line(program: &Program, index: usize, frame: &[u8]) -> String {
    let outcome = pfc_compiler::eval::evaluate(program, frame);
    let rule = outcome.rule.map_or(serde_json::Value::Null, |rule| program.rules[rule].name.clone().into());
    serde_json::json!({"packet": index, "verdict": outcome.verdict.as_str(), "rule": rule}).to_string()
}

/// Runs `--verdicts` on the corpus as pcap and pcapng; returns the rbpf lines.
fn check_against_interpreter(test: &str, rules: &str, frames: &[Vec<u8>]) -> Vec<String> {
    let (program, diagnostics) = pfc_compiler::check_source(rules);
    let program = program.unwrap_or_else(|| panic!("{test}: rules do not check: {diagnostics:?}"));
    let dir = scratch_dir(test);
    std::fs::write(dir.join("rules.pf"), rules).expect("write rules");
    std::fs::write(dir.join("corpus.pcap"), write_pcap(frames)).expect("write pcap");
    std::fs::write(dir.join("corpus.pcapng"), write_pcapng(frames)).expect("write pcapng");
    let run = pfc_in(&dir, &["test", "rules.pf", "--pcap", "corpus.pcap", "--verdicts"]);
    run.assert_no_crash(test);
    assert_eq!(run.code, 0, "{test}: {}", run.stderr);
    let lines: Vec<String> = run.stdout.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), frames.len(), "{test}: one line per frame");
    for (index, (line, frame)) in lines.iter().zip(frames).enumerate() {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        let expected: serde_json::Value = serde_json::from_str(&expected_line(&program, index, frame)).expect("json");
        assert_eq!(parsed, expected, "{test}: frame {index} ({} bytes)", frame.len());
    }
    let pcapng = pfc_in(&dir, &["test", "rules.pf", "--pcap", "corpus.pcapng", "--verdicts"]);
    assert_eq!(pcapng.code, 0, "{test}: pcapng: {}", pcapng.stderr);
    assert_eq!(pcapng.stdout, run.stdout, "{test}: pcapng and pcap give the same lines");
    lines
}

/// `--kernel --verdicts` gives the VM's line for every frame the kernel runs, and a
/// `skipped` reason only for frames shorter than the kernel's minimum.
fn check_kernel_agrees(test: &str, frames: &[Vec<u8>], vm_lines: &[String]) {
    skip_unless!(support::kernel::no_kernel().map(|reason| format!("{test}: {reason}")));
    let dir = scratch_dir(test).parent().expect("scratch parent").join(test.trim_end_matches("_kernel"));
    let run = pfc_in(&dir, &["test", "rules.pf", "--pcap", "corpus.pcap", "--verdicts", "--kernel"]);
    run.assert_no_crash(test);
    assert_eq!(run.code, 0, "{test}: {}", run.stderr);
    let mut skipped = 0;
    for (index, (line, vm_line)) in run.stdout.lines().zip(vm_lines).enumerate() {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        if parsed.get("skipped").is_some() {
            assert!(parsed["verdict"].is_null(), "{test}: frame {index}: a skipped frame has no verdict");
            assert!(frames[index].len() < 54, "{test}: frame {index} of {} bytes skipped", frames[index].len());
            skipped += 1;
        } else {
            assert_eq!(line, vm_line, "{test}: kernel and VM disagree on frame {index}");
        }
    }
    assert_eq!(run.stdout.lines().count(), frames.len(), "{test}: one line per frame");
    eprintln!("{test}: kernel agreed on {} frames, skipped {skipped} it refuses", frames.len() - skipped);
}

#[test]
fn verdicts_match_the_interpreter_and_the_kernel() {
    let frames = corpus();
    let edge = std::fs::read_to_string(support::repo().join("rules-examples/edge.pf")).expect("edge.pf");
    for (test, rules) in [("verdicts_edge", edge.as_str()), ("verdicts_tc", TC_RULES)] {
        let vm_lines = check_against_interpreter(test, rules, &frames);
        check_kernel_agrees(&format!("{test}_kernel"), &frames, &vm_lines);
    }
}

#[test]
fn corpus_has_every_kind_of_frame() {
    let frames = corpus();
    let has = |what: &str, test: &dyn Fn(&[u8]) -> bool| {
        assert!(frames.iter().any(|frame| test(frame)), "the corpus has no {what}");
    };
    let ethertype =
        |frame: &[u8], offset: usize, value: u16| frame.get(offset..offset + 2) == Some(&value.to_be_bytes());
    has("runt", &|f| f.len() < 14);
    has("VLAN frame", &|f| ethertype(f, 12, 0x8100));
    has("QinQ frame", &|f| ethertype(f, 12, 0x88a8) && ethertype(f, 16, 0x8100));
    has("ARP frame", &|f| ethertype(f, 12, 0x0806));
    has("IPv4 fragment", &|f| ethertype(f, 12, 0x0800) && f.len() > 22 && f[20] & 0x3f != 0);
    has("IPv6 fragment header", &|f| ethertype(f, 12, 0x86dd) && f.len() > 20 && f[20] == 44);
    for proto in [6u8, 17, 132, 1] {
        has("IPv4 transport", &move |f| ethertype(f, 12, 0x0800) && f.len() > 23 && f[23] == proto);
    }
}
