//! The rule-set generator: a seed in, rule files as text out (so the front end parses and
//! checks every one of them). Deterministic: the same seed gives the same files.
//!
//! Each file has a hook (all three, and sometimes none, which means XDP), a default
//! verdict, named sets and constants, and 1–8 rules whose conditions nest `and`, `or`,
//! `not` and parentheses around atoms: bare protocols (`tcp`, `l4`), bare flags
//! (`ipv4.df`), bare masks (`tcp.flags & syn`), comparisons with every operator, masked
//! comparisons (`tcp.flags & (syn|ack) == syn`), `in` / `not in` inline sets, named
//! sets, ranges and prefixes (IPv4 and IPv6), named values (`ssh`, `echo-request`) and
//! constants. Every concrete field of `Field::ALL` and every surface field (`ip.*`,
//! `l4.*`) is used; values come from [`super::pools`], the corpus's pools.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use pfc_compiler::fields::{Field, ValueKind};

use super::pools;
use super::Rng;

/// One generated rule file.
#[derive(Clone, Debug)]
pub struct RuleSet {
    /// A name for reports (`gen-17`).
    pub name: String,
    /// The rule file.
    pub text: String,
}

/// `count` rule files for `seed`.
pub fn rule_sets(seed: u64, count: usize) -> Vec<RuleSet> {
    let mut rng = Rng::new(seed ^ 0x7275_6c65);
    (0..count)
        .map(|index| RuleSet { name: format!("gen-{index}"), text: Generator::new(&mut rng).file(index) })
        .collect()
}

/// `count` rule files of 1 to `max_rules` rules (mostly few, now and then many) in which
/// about one atom in six is a `pcap "..."` filter, the rest native atoms as above.
pub fn mixed_pcap_rule_sets(seed: u64, count: usize, max_rules: usize) -> Vec<RuleSet> {
    let mut rng = Rng::new(seed ^ 0x7063_6170);
    (0..count)
        .map(|index| {
            let rules = match rng.below(100) {
                0..=2 => 100 + rng.below(max_rules.saturating_sub(99).max(1)),
                3..=14 => 20 + rng.below(80),
                _ => 1 + rng.below(20),
            }
            .min(max_rules);
            let mut generator = Generator::new(&mut rng);
            generator.pcap_percent = 17;
            generator.rule_count = Some(rules);
            RuleSet { name: format!("mixed-{index} ({rules} rules)"), text: generator.file(index) }
        })
        .collect()
}

/// libpcap filters for pcap atoms; `{p}`/`{q}` become ports, `{h}` a host byte.
const PCAP_FILTERS: &[&str] = &[
    "(tcp port {p} or udp port {q}) and ip",
    "tcp port {p}",
    "udp dst port {q}",
    "host 10.0.0.{h}",
    "src net 192.168.{h}.0/24",
    "ip6 and tcp dst port {p}",
    "icmp or icmp6",
    "vlan and tcp port {p}",
    "tcp[tcpflags] & tcp-syn != 0",
    "ip[8] < {h}",
    "len > {p}",
    "portrange {p}-{q}",
    "ether proto 0x88b5",
    "not tcp port {p}",
    "ip and (tcp[2:2] = {p} or udp[2:2] = {q})",
];

/// What values a field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A number of this many bits (the narrowest concrete field of a surface field).
    Uint(u32),
    Mac,
    V4,
    V6,
    /// `ip.src` / `ip.dst`: either family.
    Ip,
}

/// A surface field, its kind, and the literals (numbers or names) its values come from.
#[derive(Clone, Copy)]
struct FieldSpec {
    name: &'static str,
    kind: Kind,
    values: &'static [&'static str],
    /// Element type of a named set for this field.
    set_type: &'static str,
}

const PORTS: &[&str] = &["22", "53", "80", "443", "8080", "0", "65535", "ssh", "http", "https", "dns", "telnet"];
const PROTOS: &[&str] = &["tcp", "udp", "icmp", "sctp", "icmp6", "gre", "6", "17", "59", "255", "0", "44"];
const TTLS: &[&str] = &["0", "1", "64", "128", "255"];
const TOS: &[&str] = &["0", "0x10", "0xb8", "0xff", "3"];
const DSCP: &[&str] = &["0", "4", "46", "63"];
const U32S: &[&str] = &["0", "1", "12345", "0x7fffffff", "0x80000000", "0xfffffffe", "0xffffffff"];
const NO_VALUES: &[&str] = &[];

macro_rules! spec {
    ($name:literal, $kind:expr, $values:expr, $set:literal) => {
        FieldSpec { name: $name, kind: $kind, values: $values, set_type: $set }
    };
}

const FIELDS: &[FieldSpec] = &[
    spec!("eth.src", Kind::Mac, NO_VALUES, "mac"),
    spec!("eth.dst", Kind::Mac, NO_VALUES, "mac"),
    spec!(
        "eth.type",
        Kind::Uint(16),
        &["ipv4", "ipv6", "arp", "vlan", "qinq", "lldp", "mpls", "0x88b5", "0x1234", "0x9100", "0"],
        "u16"
    ),
    spec!("vlan.id", Kind::Uint(12), &["0", "1", "10", "100", "4095"], "u16"),
    spec!("vlan.pcp", Kind::Uint(3), &["0", "1", "3", "7"], "u8"),
    spec!("ipv4.src", Kind::V4, NO_VALUES, "ipv4"),
    spec!("ipv4.dst", Kind::V4, NO_VALUES, "ipv4"),
    spec!("ipv4.proto", Kind::Uint(8), PROTOS, "proto"),
    spec!("ipv4.ttl", Kind::Uint(8), TTLS, "u8"),
    spec!("ipv4.len", Kind::Uint(16), &["20", "28", "40", "48", "60", "100", "65535"], "u16"),
    spec!("ipv4.id", Kind::Uint(16), &["0", "1", "0x8000", "65535"], "u16"),
    spec!("ipv4.ihl", Kind::Uint(4), &["5", "6", "10", "15"], "u8"),
    spec!("ipv4.tos", Kind::Uint(8), TOS, "u8"),
    spec!("ipv4.dscp", Kind::Uint(6), DSCP, "u8"),
    spec!("ipv4.frag_offset", Kind::Uint(13), &["0", "1", "185", "8191"], "u16"),
    spec!("ipv4.df", Kind::Uint(1), &["0", "1"], "u8"),
    spec!("ipv4.mf", Kind::Uint(1), &["0", "1"], "u8"),
    spec!("ipv6.src", Kind::V6, NO_VALUES, "ipv6"),
    spec!("ipv6.dst", Kind::V6, NO_VALUES, "ipv6"),
    spec!("ipv6.next", Kind::Uint(8), PROTOS, "proto"),
    spec!("ipv6.proto", Kind::Uint(8), PROTOS, "proto"),
    spec!("ipv6.hop_limit", Kind::Uint(8), TTLS, "u8"),
    spec!("ipv6.flow_label", Kind::Uint(20), &["0", "1", "12345", "0xfffff"], "u32"),
    spec!("ipv6.payload_len", Kind::Uint(16), &["0", "8", "20", "28", "100", "65535"], "u16"),
    spec!("ipv6.len", Kind::Uint(17), &["40", "48", "60", "68", "100", "65575"], "u32"),
    spec!("ipv6.tclass", Kind::Uint(8), TOS, "u8"),
    spec!("ipv6.dscp", Kind::Uint(6), DSCP, "u8"),
    spec!("tcp.sport", Kind::Uint(16), PORTS, "port"),
    spec!("tcp.dport", Kind::Uint(16), PORTS, "port"),
    spec!("tcp.seq", Kind::Uint(32), U32S, "u32"),
    spec!("tcp.ack", Kind::Uint(32), U32S, "u32"),
    spec!(
        "tcp.flags",
        Kind::Uint(8),
        &["syn", "ack", "fin", "rst", "psh", "urg", "ece", "cwr", "syn|ack", "fin|ack", "psh|ack", "0", "0xff"],
        "u8"
    ),
    spec!("tcp.window", Kind::Uint(16), &["0", "512", "1024", "65535"], "u16"),
    spec!("udp.sport", Kind::Uint(16), PORTS, "port"),
    spec!("udp.dport", Kind::Uint(16), PORTS, "port"),
    spec!("udp.len", Kind::Uint(16), &["0", "8", "16", "28", "65535"], "u16"),
    spec!("sctp.sport", Kind::Uint(16), PORTS, "port"),
    spec!("sctp.dport", Kind::Uint(16), PORTS, "port"),
    spec!(
        "icmp.type",
        Kind::Uint(8),
        &["echo-request", "echo-reply", "dest-unreachable", "time-exceeded", "redirect", "timestamp-request", "255"],
        "u8"
    ),
    spec!("icmp.code", Kind::Uint(8), &["0", "1", "3", "255"], "u8"),
    spec!(
        "icmp6.type",
        Kind::Uint(8),
        &[
            "echo-request",
            "echo-reply",
            "neighbor-solicitation",
            "neighbor-advertisement",
            "router-solicitation",
            "router-advertisement",
            "redirect",
            "packet-too-big",
            "mld-query",
            "mld-report",
            "mld-done",
            "dest-unreachable",
            "time-exceeded",
            "parameter-problem",
            "255",
        ],
        "u8"
    ),
    spec!("icmp6.code", Kind::Uint(8), &["0", "1", "3", "255"], "u8"),
    spec!("arp.op", Kind::Uint(16), &["request", "reply", "1", "2", "3"], "u16"),
    spec!("arp.sha", Kind::Mac, NO_VALUES, "mac"),
    spec!("arp.sip", Kind::V4, NO_VALUES, "ipv4"),
    spec!("arp.tha", Kind::Mac, NO_VALUES, "mac"),
    spec!("arp.tip", Kind::V4, NO_VALUES, "ipv4"),
    spec!("pkt.len", Kind::Uint(32), &["0", "13", "14", "42", "54", "60", "64", "66", "74", "100", "1500"], "u32"),
    spec!("ip.src", Kind::Ip, NO_VALUES, "ip"),
    spec!("ip.dst", Kind::Ip, NO_VALUES, "ip"),
    spec!("ip.proto", Kind::Uint(8), PROTOS, "proto"),
    spec!("ip.ttl", Kind::Uint(8), TTLS, "u8"),
    spec!("ip.len", Kind::Uint(16), &["28", "40", "48", "60", "68", "100", "65535"], "u16"),
    spec!("ip.dscp", Kind::Uint(6), DSCP, "u8"),
    spec!("l4.sport", Kind::Uint(16), PORTS, "port"),
    spec!("l4.dport", Kind::Uint(16), PORTS, "port"),
];

/// [`FIELDS`], then a spec for every concrete field it does not list (a field just added
/// to the `fields!` table), with values drawn from its width: so every field of
/// `Field::ALL` is generated without an entry here.
fn field_specs() -> &'static [FieldSpec] {
    static SPECS: OnceLock<Vec<FieldSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let listed = |field: &Field| FIELDS.iter().any(|spec| spec.name == field.name());
        let unlisted = Field::ALL.iter().filter(|field| !listed(field)).map(|field| {
            let (kind, set_type) = match field.kind() {
                ValueKind::Uint(bits @ ..=8) => (Kind::Uint(bits), "u8"),
                ValueKind::Uint(bits @ ..=16) => (Kind::Uint(bits), "u16"),
                ValueKind::Uint(bits) => (Kind::Uint(bits), "u32"),
                ValueKind::Mac => (Kind::Mac, "mac"),
                ValueKind::Ipv4 => (Kind::V4, "ipv4"),
                ValueKind::Ipv6 => (Kind::V6, "ipv6"),
            };
            let values: &'static [&'static str] = match kind {
                Kind::Uint(_) => {
                    let max: &'static str = format!("{:#x}", field.kind().max()).leak();
                    vec!["0", "1", max].leak()
                }
                _ => NO_VALUES,
            };
            FieldSpec { name: field.name(), kind, values, set_type }
        });
        FIELDS.iter().copied().chain(unlisted).collect()
    })
}

const BARE_PROTOCOLS: &[&str] =
    &["eth", "vlan", "arp", "ip", "ipv4", "ipv6", "tcp", "udp", "sctp", "icmp", "icmp6", "l4"];
const V4_PREFIXES: &[&str] = &[
    "10.0.0.0/30",
    "10.0.0.2/31",
    "10.0.0.1/32",
    "192.168.1.0/30",
    "192.168.0.0/16",
    "203.0.113.0/24",
    "0.0.0.0/0",
    "192.168.1.3/32",
];
const V6_PREFIXES: &[&str] =
    &["2001:db8::/126", "2001:db8::2/127", "2001:db8::1/128", "fe80::/10", "2001:db8::/32", "::/0"];
const UINT_OPS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];
const ADDRESS_OPS: &[&str] = &["==", "!="];

/// Builds one file: declarations collected while its rules are written.
struct Generator<'r> {
    rng: &'r mut Rng,
    declarations: Vec<String>,
    /// Chance (percent) that an atom is a pcap filter.
    pcap_percent: u64,
    /// Rules per file (default: 1–8).
    rule_count: Option<usize>,
}

impl<'r> Generator<'r> {
    fn new(rng: &'r mut Rng) -> Generator<'r> {
        Generator { rng, declarations: Vec::new(), pcap_percent: 0, rule_count: None }
    }

    fn pcap_atom(&mut self) -> String {
        let filter = self.rng.pick(PCAP_FILTERS);
        let p = 1000 + self.rng.below(2000);
        let q = p + self.rng.below(3000);
        let h = 1 + self.rng.below(250);
        let filter = filter.replace("{p}", &p.to_string()).replace("{q}", &q.to_string());
        format!("pcap \"{}\"", filter.replace("{h}", &h.to_string()))
    }

    /// File number `index`; its first atom reads field `index mod FIELDS.len()`, so every
    /// field is used several times over a few hundred files.
    fn file(mut self, index: usize) -> String {
        let hook = match index % 3 {
            0 if self.rng.chance(30) => String::new(),
            0 => "hook xdp\n".to_string(),
            1 => "hook tc ingress\n".to_string(),
            _ => "hook tc egress\n".to_string(),
        };
        let default = format!("default {}\n", self.verdict());
        let count = match self.rule_count {
            Some(count) => count,
            None => 1 + self.rng.below(8),
        };
        let mut rules = Vec::new();
        for rule in 0..count {
            let verdict = self.verdict();
            if rule == 0 {
                let specs = field_specs();
                let first = self.atom_of(&specs[index % specs.len()]);
                let rest = self.expr(2);
                let joiner = self.rng.pick(&["and", "and", "or", "and not"]);
                rules.push(format!("rule r{rule}: {verdict} if {first} {joiner} ({rest})"));
            } else if rule == count - 1 && self.rng.chance(10) {
                rules.push(format!("rule r{rule}: {verdict}"));
            } else {
                let depth = self.rng.below(4);
                rules.push(format!("rule r{rule}: {verdict} if {}", self.expr(depth)));
            }
        }
        let comment = format!("# generated rule set {index}\n");
        format!("{comment}{hook}{default}{}\n{}\n", self.declarations.join("\n"), rules.join("\n"))
    }

    fn verdict(&mut self) -> &'static str {
        self.rng.pick(&["pass", "drop"])
    }

    /// A condition nested up to `depth` levels.
    fn expr(&mut self, depth: usize) -> String {
        if depth == 0 || self.rng.chance(35) {
            return self.atom();
        }
        let left = self.expr(depth - 1);
        match self.rng.below(5) {
            0 => format!("not ({left})"),
            1 => format!("not {}", self.atom()),
            2 => format!("({left}) and ({})", self.expr(depth - 1)),
            3 => format!("({left}) or ({})", self.expr(depth - 1)),
            // No parentheses: precedence decides (`a or b and not c`).
            _ => format!("{} or {} and not {}", self.atom(), self.atom(), self.atom()),
        }
    }

    fn atom(&mut self) -> String {
        if self.pcap_percent > 0 && self.rng.chance(self.pcap_percent) {
            return self.pcap_atom();
        }
        match self.rng.below(20) {
            0 | 1 => self.rng.pick(BARE_PROTOCOLS).to_string(),
            2 => self
                .rng
                .pick(&["ipv4.df", "ipv4.mf", "tcp.flags & syn", "tcp.flags & (fin|rst)", "ipv4.tos & 3"])
                .to_string(),
            _ => {
                let specs = field_specs();
                let field = &specs[self.rng.below(specs.len())];
                self.atom_of(field)
            }
        }
    }

    /// A test on `field`: comparison, masked comparison, or membership.
    fn atom_of(&mut self, field: &FieldSpec) -> String {
        let name = field.name;
        let numeric = matches!(field.kind, Kind::Uint(_));
        match self.rng.below(10) {
            0..=3 => {
                let op = self.rng.pick(if numeric { UINT_OPS } else { ADDRESS_OPS });
                let value = self.value_or_const(field);
                format!("{name} {op} {value}")
            }
            4 if numeric => {
                let mask = self.mask(field);
                let op = self.rng.pick(UINT_OPS);
                let value = self.value(field);
                format!("{name} & {mask} {op} {value}")
            }
            5 | 6 => {
                let not = if self.rng.chance(35) { "not " } else { "" };
                let mask =
                    if numeric && self.rng.chance(20) { format!(" & {}", self.mask(field)) } else { String::new() };
                let elements: Vec<String> = (0..1 + self.rng.below(4)).map(|_| self.element(field)).collect();
                format!("{name}{mask} {not}in {{ {} }}", elements.join(", "))
            }
            7 => {
                let not = if self.rng.chance(35) { "not " } else { "" };
                let set = self.named_set(field);
                format!("{name} {not}in {set}")
            }
            _ => {
                let not = if self.rng.chance(25) { "not " } else { "" };
                let element = self.range_or_prefix(field);
                format!("{name} {not}in {element}")
            }
        }
    }

    /// One value: a literal from the pools (a `|` union for TCP flags).
    fn value(&mut self, field: &FieldSpec) -> String {
        match field.kind {
            Kind::Mac => self.rng.pick(pools::MACS).to_string(),
            Kind::V4 => self.rng.pick(pools::IPV4).to_string(),
            Kind::V6 => self.rng.pick(pools::IPV6).to_string(),
            Kind::Ip if self.rng.chance(50) => self.rng.pick(pools::IPV4).to_string(),
            Kind::Ip => self.rng.pick(pools::IPV6).to_string(),
            Kind::Uint(bits) => {
                if self.rng.chance(15) {
                    self.number_below(bits).to_string()
                } else {
                    self.rng.pick(field.values).to_string()
                }
            }
        }
    }

    /// A value, sometimes through a `const` declared for it.
    fn value_or_const(&mut self, field: &FieldSpec) -> String {
        let value = self.value(field);
        if self.rng.chance(10) && !value.contains('|') {
            self.declare_const(value)
        } else {
            value
        }
    }

    fn declare_const(&mut self, literal: String) -> String {
        let name = format!("c{}", self.declarations.len());
        self.declarations.push(format!("const {name} = {literal}"));
        name
    }

    fn number_below(&mut self, bits: u32) -> u64 {
        let max = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        self.rng.next_u64() & max
    }

    /// A mask for a number field: named flags, a pool value, or random bits.
    fn mask(&mut self, field: &FieldSpec) -> String {
        let Kind::Uint(bits) = field.kind else { unreachable!("masks are generated for number fields only") };
        if field.name == "tcp.flags" && self.rng.chance(60) {
            return self.rng.pick(&["(syn|ack)", "syn", "(fin|syn|rst)", "0x3f", "(ece|cwr)"]).to_string();
        }
        let max = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let mask = match self.rng.below(3) {
            0 => max & 0xff00,
            1 => max & 0x00ff,
            _ => self.number_below(bits) | 1,
        };
        format!("{mask:#x}")
    }

    /// A set element: a value (no unions), a range or a prefix.
    fn element(&mut self, field: &FieldSpec) -> String {
        if self.rng.chance(30) {
            return self.range_or_prefix(field);
        }
        let mut value = self.value(field);
        while value.contains('|') {
            value = self.value(field);
        }
        value
    }

    /// A range of numbers, MACs or addresses (low end first), or an address prefix.
    fn range_or_prefix(&mut self, field: &FieldSpec) -> String {
        let kind = match field.kind {
            Kind::Ip if self.rng.chance(50) => Kind::V4,
            Kind::Ip => Kind::V6,
            other => other,
        };
        match kind {
            Kind::V4 if self.rng.chance(60) => self.rng.pick(V4_PREFIXES).to_string(),
            Kind::V6 if self.rng.chance(60) => self.rng.pick(V6_PREFIXES).to_string(),
            Kind::V4 => {
                self.sorted_pair(pools::IPV4, |text| Some(u128::from(u32::from(text.parse::<Ipv4Addr>().ok()?))))
            }
            Kind::V6 => self.sorted_pair(pools::IPV6, |text| Some(u128::from(text.parse::<Ipv6Addr>().ok()?))),
            Kind::Mac => self.sorted_pair(pools::MACS, |text| u128::from_str_radix(&text.replace(':', ""), 16).ok()),
            Kind::Uint(bits) => {
                let (a, b) = (self.number_in_pool(field, bits), self.number_in_pool(field, bits));
                format!("{}..{}", a.min(b), a.max(b))
            }
            Kind::Ip => unreachable!("resolved above"),
        }
    }

    /// A number from the field's numeric pool values, or a random one that fits.
    fn number_in_pool(&mut self, field: &FieldSpec, bits: u32) -> u64 {
        let numbers: Vec<u64> = field.values.iter().filter_map(|text| parse_number(text)).collect();
        if numbers.is_empty() || self.rng.chance(20) {
            self.number_below(bits)
        } else {
            self.rng.pick(&numbers)
        }
    }

    fn sorted_pair(&mut self, pool: &[&str], value: impl Fn(&str) -> Option<u128>) -> String {
        let (a, b) = (self.rng.pick(pool), self.rng.pick(pool));
        let (va, vb) = (value(a).expect("pool literal"), value(b).expect("pool literal"));
        if va <= vb {
            format!("{a}..{b}")
        } else {
            format!("{b}..{a}")
        }
    }

    /// Declares a named set for `field` (sometimes a constant prefix instead) and
    /// returns its name.
    fn named_set(&mut self, field: &FieldSpec) -> String {
        if matches!(field.kind, Kind::V4 | Kind::V6 | Kind::Ip) && self.rng.chance(20) {
            let prefix = self.range_or_prefix(field);
            return self.declare_const(prefix);
        }
        let count = 1 + self.rng.below(5);
        let mut elements = Vec::new();
        for _ in 0..count {
            let element = self.element(field);
            // u8/u16/u32 sets know no names; port and proto sets do.
            let named = element.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && !element.contains(':');
            if named && matches!(field.set_type, "u8" | "u16" | "u32") {
                continue;
            }
            elements.push(element);
        }
        if elements.is_empty() {
            elements.push(self.number_in_pool(field, 8).min(255).to_string());
        }
        let name = format!("s{}", self.declarations.len());
        self.declarations.push(format!("set {name}: {} = {{ {} }}", field.set_type, elements.join(", ")));
        name
    }
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
