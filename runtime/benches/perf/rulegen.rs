//! A rule count in, the text of a realistic, deterministic rule set out: what an edge
//! firewall accumulates over years (IPv4 and IPv6 block lists, per-service allow rules,
//! port sets, SYN and ICMP shapes, a few named sets), for the compile-time and kernel
//! benchmarks.
//!
//! The mix is fixed by a seeded generator, so the same `rules` always gives the same
//! text and numbers from different runs compare. Most rules test a source or destination
//! prefix, which is what large rule sets are made of in practice; no address in them lies
//! in the benchmark packets' ranges (10.0.0.0/8, 2001:db8::/32), so those packets walk
//! most of the set. Port-only rules (`udp.dport in {..}`) can still match a packet (the
//! benchmark prints each verdict).

use std::fmt::Write;

/// xorshift64*: small, deterministic, good enough to vary rule shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A public-looking IPv4 address outside 10/8 (the benchmark packets' range).
    fn ipv4(&mut self) -> [u8; 4] {
        let first = 11 + self.below(212) as u8; // 11..=222
        [first, self.below(256) as u8, self.below(256) as u8, self.below(256) as u8]
    }

    /// A well-formed IPv4 prefix: the host bits below `len` cleared.
    fn ipv4_prefix(&mut self) -> String {
        let len = [16u32, 20, 22, 24, 24, 24, 28, 32][self.below(8) as usize];
        let address = u32::from_be_bytes(self.ipv4()) & (u32::MAX << (32 - len));
        let [a, b, c, d] = address.to_be_bytes();
        format!("{a}.{b}.{c}.{d}/{len}")
    }

    fn ipv4_host(&mut self) -> String {
        let [a, b, c, d] = self.ipv4();
        format!("{a}.{b}.{c}.{d}")
    }

    /// An IPv6 /48 outside 2001:db8::/32.
    fn ipv6_prefix(&mut self) -> String {
        format!("2a0{:x}:{:x}:{:x}::/48", self.below(16), self.below(0x10000), self.below(0x10000))
    }

    fn port(&mut self) -> u16 {
        [25, 53, 80, 110, 123, 143, 443, 465, 587, 993, 3306, 5432, 6379, 8080, 8443][self.below(15) as usize]
    }

    fn high_port(&mut self) -> u16 {
        1024 + self.below(60_000) as u16
    }
}

/// Named sets the rules refer to, declared first.
const NAMED_SETS: usize = 8;

/// A rule set of `rules` rules, `default pass`, XDP.
pub fn rule_set(rules: usize) -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ rules as u64);
    let mut text = String::with_capacity(rules * 64);
    let _ = writeln!(text, "# generated: {rules} rules\nhook xdp\ndefault pass\n");
    for index in 0..NAMED_SETS {
        let members: Vec<String> = (0..4 + rng.below(12)).map(|_| rng.ipv4_prefix()).collect();
        let _ = writeln!(text, "set blocked{index}: ip = {{ {} }}", members.join(", "));
    }
    let _ = writeln!(text, "set mail: port = {{ 25, 465, 587, 993, 995 }}");
    for index in 0..rules {
        let _ = writeln!(text, "rule r{index}: {}", rule(&mut rng));
    }
    text
}

/// One rule: a verdict and its condition, weighted toward address rules.
fn rule(rng: &mut Rng) -> String {
    match rng.below(20) {
        0..=5 => {
            let prefixes: Vec<String> = (0..1 + rng.below(4)).map(|_| rng.ipv4_prefix()).collect();
            format!("drop if ip.src in {{ {} }}", prefixes.join(", "))
        }
        6 | 7 => format!("drop if ip.src == {}", rng.ipv4_host()),
        8 | 9 => format!("pass if tcp.dport == {} and ip.src in {{ {} }}", rng.port(), rng.ipv4_prefix()),
        10 => format!("drop if ipv6.src in {{ {} }}", rng.ipv6_prefix()),
        11 => {
            let low = rng.high_port();
            format!("drop if udp.dport in {{ {}, {}..{} }}", rng.port(), low, low.saturating_add(50))
        }
        12 => format!("drop if tcp.flags & (syn | ack) == syn and ip.dst == {}", rng.ipv4_host()),
        13 => format!("drop if icmp.type == echo-request and ip.src in {{ {} }}", rng.ipv4_prefix()),
        14 => format!("drop if ip.src in blocked{}", rng.below(NAMED_SETS as u64)),
        15 => format!("pass if tcp.dport in mail and ip.dst == {}", rng.ipv4_host()),
        16 => format!("drop if l4.dport == {} and ip.dst in {{ {} }}", rng.high_port(), rng.ipv4_prefix()),
        17 => format!("drop if ipv4.ttl < {} and ip.src in {{ {} }}", 2 + rng.below(8), rng.ipv4_prefix()),
        18 => format!("pass if ip.dst in {{ {} }} and tcp.sport == {}", rng.ipv4_prefix(), rng.port()),
        _ => format!(
            "drop if ip.proto == {} and ip.src == {}",
            [47u8, 50, 51, 132][rng.below(4) as usize],
            rng.ipv4_host()
        ),
    }
}
