//! Rate limits: a checked [`Limit`], a packet's key fields, its length and its time in;
//! the token-bucket decision and the bucket's next state out.
//!
//! This module is the arithmetic that the interpreter, the generated eBPF code and the
//! VM's emulated maps all follow, so that they agree bit for bit. Everything is unsigned
//! 64-bit integer math, no division at run time, no floats:
//!
//! - A limit of `rate` units per `period_ns` nanoseconds (units are packets or bytes)
//!   keeps tokens *scaled by the period*: one unit is `period_ns` scaled tokens, and a
//!   nanosecond refills exactly `rate` scaled tokens. So refills are exact for every
//!   rate (`3/s` loses nothing to rounding).
//! - `capacity = burst × period_ns` (the checker keeps it ≤ 2^62), `fill_ns =
//!   ⌈capacity / rate⌉` (computed at compile time): after `fill_ns` nanoseconds any
//!   bucket is full again.
//! - The cost of a packet is `period_ns` (packets) or `len × period_ns` (bytes,
//!   wrapping at 2^64, which no frame of under 300 MB reaches).
//! - A packet at time `now` with key `k`:
//!   1. no bucket for `k`: a new one, full: `tokens = capacity`, `last = now`;
//!   2. else, if `now > last`: `tokens = min(tokens + min(now − last, fill_ns) × rate,
//!      capacity)`, `last = now` (a clock behind `last` refills nothing and moves
//!      nothing);
//!   3. if `tokens ≥ cost`: `tokens −= cost` and the packet *conforms*; else it
//!      *exceeds* and `tokens` stays;
//!   4. the bucket is stored (both ways).
//!
//!   `rate > …` holds when the packet exceeds; `rate <= …` when it conforms.
//! - The key is the bytes of [`Limit::key_bytes`]: a little-endian u32 whose bit `i` says
//!   that key field `i` is present, then each key field's 32-bit words (most significant
//!   first, each little-endian, as the generated code keeps them on the stack), zero when
//!   the field's header is absent.
//! - Buckets live in an LRU hash of [`Limit::buckets`] entries. [`BucketTable`] is the
//!   interpreter's model: every packet that reaches the limit makes its key the most
//!   recently used; a new key when the table is full evicts the least recently used one
//!   (whose bucket starts full if it comes back). The VM emulates the same; the kernel's
//!   LRU evicts approximately (per-CPU lists), so only a table that never fills is exact
//!   across all three.

use std::collections::{BTreeMap, HashMap};

use crate::diagnostic::Span;
use crate::fields::{Field, ValueKind};

/// Nanoseconds in a second.
pub const NS_PER_SECOND: u64 = 1_000_000_000;
/// Nanoseconds in a minute.
pub const NS_PER_MINUTE: u64 = 60 * NS_PER_SECOND;
/// Buckets (distinct keys) a limit keeps when the rule does not say.
pub(crate) const DEFAULT_BUCKETS: u32 = 16_384;
/// The most buckets one limit may declare.
pub(crate) const MAX_BUCKETS: u32 = 1 << 20;
/// The largest `burst × period_ns`, so that a refill can never overflow 64 bits.
pub const MAX_CAPACITY: u64 = 1 << 62;

/// When a rate-limit atom holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitOp {
    /// `rate > …`: the packet found its bucket without enough tokens.
    Over,
    /// `rate <= …`: the packet took its tokens ("accept at most").
    Within,
}

impl LimitOp {
    /// The name the manifest uses: `over`, `within`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitOp::Over => "over",
            LimitOp::Within => "within",
        }
    }
}

/// Packets that reached a limit: over its rate (their bucket lacked the tokens) and
/// within it (they took them). The interpreter's count and, summed over CPUs, an entry
/// of the compiled code's `pfc_limit_stats` map (`over`, then `within`, two `u64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct LimitStats {
    /// Packets over the rate.
    pub over: u64,
    /// Packets within the rate.
    pub within: u64,
}

impl LimitStats {
    /// Counts one packet that conformed (within) or not (over).
    pub fn count(&mut self, conformed: bool) {
        match conformed {
            true => self.within += 1,
            false => self.over += 1,
        }
    }
}

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Each packet costs one.
    Packets,
    /// Each packet costs its frame length (`pkt.len`).
    Bytes,
}

impl Unit {
    /// The name the manifest uses: `packets`, `bytes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Packets => "packets",
            Unit::Bytes => "bytes",
        }
    }
}

/// A checked rate limit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    /// When the atom holds.
    pub op: LimitOp,
    /// Packets or bytes.
    pub unit: Unit,
    /// Units per period (≥ 1).
    pub rate: u64,
    /// The period: [`NS_PER_SECOND`] or [`NS_PER_MINUTE`].
    pub period_ns: u64,
    /// The bucket's size in units (≥ 1; `burst × period_ns` ≤ [`MAX_CAPACITY`]).
    pub burst: u64,
    /// The concrete key fields, in key order; empty for one global bucket.
    pub key: Vec<Field>,
    /// Entries of the LRU map.
    pub buckets: u32,
    /// The atom in the source.
    pub span: Span,
}

/// 32-bit words a key field takes (as the generated code keeps it on the stack): two
/// for a MAC address, four for an IPv6 address, else one.
pub(crate) fn word_count(field: Field) -> usize {
    match field.kind() {
        ValueKind::Mac => 2,
        ValueKind::Ipv6 => 4,
        _ => 1,
    }
}

/// A value's 32-bit words, most significant first (the stack layout's order).
fn split_words(field: Field, value: u128) -> Vec<u32> {
    let count = word_count(field);
    let mask = if field.kind() == ValueKind::Mac { [0xffff, u32::MAX] } else { [u32::MAX; 2] };
    (0..count)
        .rev()
        .enumerate()
        .map(|(position, index)| {
            let word = (value >> (32 * index)) as u32;
            if count == 2 {
                word & mask[position]
            } else {
                word
            }
        })
        .collect()
}

/// Stack bytes the limits' code needs: the largest key (rounded to 8), a bucket, the time.
pub(crate) fn scratch_bytes(limits: &[Limit]) -> i16 {
    let key = limits.iter().map(Limit::key_size).max().unwrap_or(0);
    (key.div_ceil(8) * 8 + 16 + 8) as i16
}

/// One bucket's state, as stored in the map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    /// Scaled tokens (units × period_ns).
    pub tokens: u64,
    /// The time of the last refill, in nanoseconds.
    pub last_ns: u64,
}

impl Bucket {
    /// The map value: `tokens`, `last_ns` as little-endian u64s.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.tokens.to_le_bytes());
        bytes[8..].copy_from_slice(&self.last_ns.to_le_bytes());
        bytes
    }

    /// Reads a map value (shorter values are zero-extended).
    pub fn from_bytes(bytes: &[u8]) -> Bucket {
        let word = |range: std::ops::Range<usize>| {
            let mut out = [0u8; 8];
            out.iter_mut().zip(bytes.get(range).unwrap_or(&[])).for_each(|(o, b)| *o = *b);
            u64::from_le_bytes(out)
        };
        Bucket { tokens: word(0..8), last_ns: word(8..16) }
    }
}

impl Limit {
    /// `burst × period_ns`: a full bucket's scaled tokens.
    pub fn capacity(&self) -> u64 {
        self.burst.saturating_mul(self.period_ns)
    }

    /// `⌈capacity / rate⌉`: nanoseconds after which any bucket is full.
    pub fn fill_ns(&self) -> u64 {
        self.capacity().div_ceil(self.rate.max(1))
    }

    /// The scaled tokens a packet of `len` bytes takes.
    pub fn cost(&self, len: u32) -> u64 {
        match self.unit {
            Unit::Packets => self.period_ns,
            Unit::Bytes => u64::from(len).wrapping_mul(self.period_ns),
        }
    }

    /// Bytes of the map key: the presence word plus each key field's words.
    pub fn key_size(&self) -> u32 {
        4 + 4 * self.key.iter().map(|field| word_count(*field) as u32).sum::<u32>()
    }

    /// Writes the key of a packet whose field values `value` gives (`None`: header
    /// absent) into `out` (cleared first).
    pub fn key_bytes(&self, mut value: impl FnMut(Field) -> Option<u128>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&[0; 4]);
        let mut present = 0u32;
        for (index, &field) in self.key.iter().enumerate() {
            match value(field) {
                Some(v) => {
                    present |= 1 << index;
                    split_words(field, v).iter().for_each(|word| out.extend_from_slice(&word.to_le_bytes()));
                }
                None => out.extend(std::iter::repeat(0).take(4 * word_count(field))),
            }
        }
        out[..4].copy_from_slice(&present.to_le_bytes());
    }

    /// The limit as a rule file would write it, with every default spelled out:
    /// `rate > 10/s per ipv4.src burst 20 buckets 16384`.
    pub fn describe(&self) -> String {
        let op = match self.op {
            LimitOp::Over => ">",
            LimitOp::Within => "<=",
        };
        let unit = match self.unit {
            Unit::Packets => "",
            Unit::Bytes => " bytes",
        };
        let period = if self.period_ns == NS_PER_MINUTE { "m" } else { "s" };
        let mut text = format!("rate {op} {}{unit}/{period}", self.rate);
        if !self.key.is_empty() {
            let key: Vec<&str> = self.key.iter().map(|field| field.name()).collect();
            text += &format!(" per {}", key.join(", "));
        }
        text + &format!(" burst {}{unit} buckets {}", self.burst, self.buckets)
    }

    /// Whether the atom holds for a packet that did (`true`) or did not conform.
    pub fn holds(&self, conformed: bool) -> bool {
        match self.op {
            LimitOp::Over => !conformed,
            LimitOp::Within => conformed,
        }
    }

    /// One packet of `len` bytes at `now_ns` against `bucket` (`None`: no bucket yet):
    /// the bucket to store and whether the packet conformed (module doc, steps 1–3).
    pub fn take(&self, bucket: Option<Bucket>, now_ns: u64, len: u32) -> (Bucket, bool) {
        let mut bucket = match bucket {
            None => Bucket { tokens: self.capacity(), last_ns: now_ns },
            Some(mut b) => {
                if now_ns > b.last_ns {
                    let elapsed = (now_ns - b.last_ns).min(self.fill_ns());
                    b.tokens = b.tokens.wrapping_add(elapsed.wrapping_mul(self.rate)).min(self.capacity());
                    b.last_ns = now_ns;
                }
                b
            }
        };
        let cost = self.cost(len);
        let conformed = bucket.tokens >= cost;
        if conformed {
            bucket.tokens -= cost;
        }
        (bucket, conformed)
    }
}

/// The interpreter's LRU table of one limit's buckets (module doc).
#[derive(Clone, Debug, Default)]
pub struct BucketTable {
    capacity: usize,
    entries: HashMap<Vec<u8>, (Bucket, u64)>,
    by_use: BTreeMap<u64, Vec<u8>>,
    uses: u64,
}

impl BucketTable {
    /// An empty table of `capacity` entries.
    pub fn new(capacity: u32) -> BucketTable {
        BucketTable { capacity: capacity as usize, ..BucketTable::default() }
    }

    /// The bucket of `key`, made the most recently used.
    pub fn touch(&mut self, key: &[u8]) -> Option<Bucket> {
        let (bucket, used) = self.entries.get_mut(key)?;
        self.by_use.remove(used);
        self.uses += 1;
        *used = self.uses;
        self.by_use.insert(self.uses, key.to_vec());
        Some(*bucket)
    }

    /// Stores `bucket` under `key` (most recently used); a new key in a full table
    /// evicts the least recently used one first.
    pub fn store(&mut self, key: &[u8], bucket: Bucket) {
        if let Some((stored, _)) = self.entries.get_mut(key) {
            *stored = bucket;
            return;
        }
        if self.entries.len() >= self.capacity {
            if let Some((_, oldest)) = self.by_use.pop_first() {
                self.entries.remove(&oldest);
            }
        }
        self.uses += 1;
        self.entries.insert(key.to_vec(), (bucket, self.uses));
        self.by_use.insert(self.uses, key.to_vec());
    }

    /// Every bucket, by key.
    pub fn entries(&self) -> Vec<(Vec<u8>, Bucket)> {
        let mut all: Vec<_> = self.entries.iter().map(|(key, (bucket, _))| (key.clone(), *bucket)).collect();
        all.sort();
        all
    }

    /// How many buckets there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rate: u64, burst: u64, unit: Unit) -> Limit {
        Limit {
            op: LimitOp::Over,
            unit,
            rate,
            period_ns: NS_PER_SECOND,
            burst,
            key: vec![Field::Ipv4Src],
            buckets: 4,
            span: Span::default(),
        }
    }

    /// 100 packets 10 ms apart against 10/s burst 20: 20 from the full bucket, then one
    /// every 100 ms of the 990 ms that follow (9 more): 29 conform, 71 exceed.
    #[test]
    fn hundred_pings_at_ten_ms_against_ten_per_second_burst_twenty() {
        let limit = limit(10, 20, Unit::Packets);
        let mut bucket = None;
        let mut conformed = 0;
        for i in 0..100u64 {
            let (next, ok) = limit.take(bucket, 5_000_000_000 + i * 10_000_000, 64);
            bucket = Some(next);
            conformed += u32::from(ok);
        }
        assert_eq!(conformed, 29);
    }

    #[test]
    fn byte_rates_cost_the_frame_length_and_refill_exactly() {
        let limit = limit(1000, 1500, Unit::Bytes);
        let (bucket, ok) = limit.take(None, 0, 1000);
        assert!(ok);
        let (bucket, ok) = limit.take(Some(bucket), 0, 1000);
        assert!(!ok, "500 bytes left");
        // 500 ms refill 500 bytes: 1000 now.
        let (_, ok) = limit.take(Some(bucket), 500_000_000, 1000);
        assert!(ok);
    }

    #[test]
    fn a_clock_behind_the_last_refill_refills_nothing() {
        let limit = limit(1, 1, Unit::Packets);
        let (bucket, _) = limit.take(None, 1_000, 64);
        let (after, ok) = limit.take(Some(bucket), 10, 64);
        assert!(!ok);
        assert_eq!(after, bucket);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_used_key() {
        let mut table = BucketTable::new(2);
        let full = Bucket { tokens: 9, last_ns: 0 };
        table.store(b"a", full);
        table.store(b"b", full);
        assert!(table.touch(b"a").is_some());
        table.store(b"c", full);
        assert_eq!(table.entries().iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), [b"a".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn keys_mark_absent_fields_and_zero_their_words() {
        let mut limit = limit(1, 1, Unit::Packets);
        limit.key = vec![Field::Ipv4Src, Field::Ipv6Src];
        let mut key = Vec::new();
        limit.key_bytes(|field| (field == Field::Ipv4Src).then_some(0x0a000001), &mut key);
        assert_eq!(key.len() as u32, limit.key_size());
        assert_eq!(&key[..8], &[1, 0, 0, 0, 1, 0, 0, 0x0a]);
        assert!(key[8..].iter().all(|b| *b == 0));
    }
}
