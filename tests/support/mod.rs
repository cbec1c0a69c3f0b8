//! The one test-support folder of the `pfc` package's tests: running the real binary
//! (`cli`, re-exported here), the JSON shapes pfc prints (`shapes`), kernel-test
//! scaffolding (`kernel`: the skip macro, the netns and pin guards), and for the back-end
//! tests a seeded PRNG, the small value pools that packets and rules draw from, the packet
//! corpus, the rule-set generator, and the helpers that describe packets and errors.
//! Running objects (VM or kernel, verdicts and counters) is `pfc_runtime::Executor`'s.
//!
//! Packets and rules use the same pools on purpose: with a handful of ports and addresses,
//! generated rules match a good share of the generated packets, so both verdicts are
//! exercised on every code path.

#![allow(dead_code)]

pub mod cli;
pub mod corpus;
pub mod kernel;
pub mod pools;
pub mod rulegen;
pub mod shapes;

#[allow(unused_imports)] // each test binary uses its own share
pub use cli::{files_with_extension, pfc, pfc_bounded, pfc_in, repo, scratch_dir, Run};

use pfc_compiler::eval::Headers;
use pfc_compiler::fields::Proto;

/// The seed of everything generated, unless `PFC_TEST_SEED` gives another (to explore;
/// CI keeps the default).
pub const SEED: u64 = 0x0005_eed0_f9fc;

/// The seed in use: `PFC_TEST_SEED` (decimal or `0x` hex) or [`SEED`].
pub fn seed() -> u64 {
    let Ok(text) = std::env::var("PFC_TEST_SEED") else { return SEED };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("PFC_TEST_SEED={text:?} is not a number"))
}

/// A tiny deterministic PRNG (SplitMix64): no crate, same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// The bytes as lowercase hex, 32 bytes a line.
pub fn hex(bytes: &[u8]) -> String {
    let lines: Vec<String> =
        bytes.chunks(32).map(|chunk| chunk.iter().map(|byte| format!("{byte:02x}")).collect::<String>()).collect();
    if lines.is_empty() {
        "(empty)".to_string()
    } else {
        lines.join("\n")
    }
}

/// What the interpreter's parser found in a packet, on one line: length, headers
/// present (with offsets), payload ethertype and IPv6 upper protocol.
pub fn parsed_summary(packet: &[u8]) -> String {
    let headers = Headers::parse(packet);
    let present: Vec<String> = Proto::ALL
        .iter()
        .filter_map(|proto| headers.offset(*proto).map(|offset| format!("{}@{offset}", proto.name())))
        .collect();
    let mut summary = format!("{} bytes; headers: {}", packet.len(), present.join(" "));
    if let Some(ethertype) = headers.payload_ethertype {
        summary.push_str(&format!("; ethertype {ethertype:#06x}"));
    }
    if headers.vlan_tags > 0 {
        summary.push_str(&format!("; {} vlan tag(s)", headers.vlan_tags));
    }
    if let Some(upper) = headers.ipv6_upper_protocol {
        summary.push_str(&format!("; ipv6 upper protocol {upper}"));
    }
    summary
}

/// An error with its `source` chain, one cause after another.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The example rule files shipped in `rules-examples/`, as (file name, text), sorted.
pub fn examples() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules-examples");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "pf"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path.file_name().unwrap_or_default().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    files
}
