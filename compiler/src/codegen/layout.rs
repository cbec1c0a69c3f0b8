//! Stack layout: the filter's [`Uses`] in, the stack slot of every value the prologue
//! extracts out.
//!
//! Every field value is kept as 32-bit words (most significant first): one word for
//! fields up to 32 bits, two for MAC addresses (16 + 32 bits), four for IPv6 addresses.
//! Words go first to stack offsets that are 4 modulo 8: the kernel verifier does not
//! track 4-byte writes there as register spills, so every path through the prologue
//! leaves the stack in the same abstract state and the rule body is verified once,
//! however many ways a packet can be parsed.

use std::collections::BTreeMap;

use crate::fields::{Field, ValueKind};
use crate::ir::Uses;

/// The stack is 512 bytes; offsets are negative from r10.
pub const STACK_SIZE: i16 = 512;
/// The absent-mask laundering slot (4 bytes at a non-aligned offset).
pub const MASK_SLOT: i16 = -4;
/// A bit of the absent mask that no packet sets (one bit per [`crate::ir::Source`], 12
/// of them): the exit tail tests it to put code on a path only the verifier explores.
pub const NEVER_SET_MASK_BIT: u32 = 1 << 31;
const _: () = assert!(crate::ir::Source::ALL.len() < 31);
/// The counter map key, also at a non-aligned offset: the verifier then does not know
/// the key's value, so the counter tail is verified once, not once per rule.
pub const KEY_SLOT: i16 = -12;

/// pcap atoms whose verdicts share one stack word, one bit each (bits 0–30).
pub(crate) const PCAP_BITS_PER_WORD: u32 = 31;
/// A pcap word before any atom ran: only bit 31 set, so that the word is never zero
/// (the kernel verifier tracks a stored zero, `STACK_ZERO`, and would tell apart paths
/// that differ only in verdicts).
pub const PCAP_WORD_EMPTY: i32 = i32::MIN;

/// Where a pcap atom's verdict lives: bit `mask` of the word at `slot` is set when
/// libpcap accepts the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PcapBit {
    /// The stack word.
    pub slot: i16,
    /// The atom's bit in it.
    pub mask: u32,
}

/// Where each extracted value lives.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    words: BTreeMap<Field, Vec<i16>>,
    /// The word and bit of each pcap atom's verdict, by index in `Filter::pcaps`.
    pcaps: BTreeMap<u32, PcapBit>,
    /// The words holding pcap verdict bits.
    pcap_words: Vec<i16>,
    /// Lowest stack offset used (for the stack-size check), e.g. -16.
    pub lowest: i16,
    /// The bottom of the rate limits' scratch area (key, bucket, time), also where
    /// dynamic-set lookups build their key, when there are limits or lookups: it takes
    /// the lowest `Uses::limit_scratch` bytes of the stack.
    pub limit_scratch: Option<i16>,
    /// The 8-aligned slot where the program spills its context pointer at entry, when
    /// some rule logs (the top 8 bytes of the limits' scratch area).
    pub context_slot: Option<i16>,
}

/// The stack does not have room for every value the filter reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the rule set keeps {words} 32-bit values on the stack (the fields it reads{pcap}); the eBPF stack has room for \
     {room}{reserved}",
    pcap = if self.pcap_words > 0 { " and its pcap atoms' verdicts" } else { "" },
    reserved = self.reserved_text()
)]
pub struct StackFull {
    /// Words wanted: field values and pcap verdict words.
    pub words: usize,
    /// Of them, words holding pcap atoms' verdicts.
    pub pcap_words: usize,
    /// Words there is room for.
    pub room: usize,
    /// Stack bytes set aside for rate-limit keys and buckets, dynamic-set keys and the
    /// log's context pointer ([`Uses::limit_scratch`]), and which of those need them.
    pub reserved: i16,
    /// What the reserved bytes are for: rate limits, set lookups, logging.
    pub reserved_for: (bool, bool, bool),
}

impl StackFull {
    fn reserved_text(&self) -> String {
        if self.reserved == 0 {
            return String::new();
        }
        let (limits, lookups, logs) = self.reserved_for;
        let uses: Vec<&str> = [(limits, "rate limits"), (lookups, "dynamic-set lookups"), (logs, "logging")]
            .into_iter()
            .filter_map(|(used, what)| used.then_some(what))
            .collect();
        format!(" (its {STACK_SIZE} bytes less {} for {})", self.reserved, uses.join(" and "))
    }
}

impl Layout {
    /// Allocates words for every field read, plus `pkt.len` when `need_length`.
    pub fn new(uses: &Uses, need_length: bool) -> Result<Layout, StackFull> {
        let mut fields: Vec<Field> = uses.fields.clone();
        if need_length && !fields.contains(&Field::PktLen) {
            fields.push(Field::PktLen);
        }
        let pcap_words = uses.pcaps.len().div_ceil(PCAP_BITS_PER_WORD as usize);
        let total: usize = fields.iter().map(|field| word_count(*field)).sum::<usize>() + pcap_words;
        let unaligned = (0..).map(|k: i16| -20 - 8 * k).take_while(|offset| *offset >= -STACK_SIZE + 4);
        let aligned = (0..).map(|k: i16| -8 - 8 * k).take_while(|offset| *offset >= -STACK_SIZE);
        let reserved = -STACK_SIZE + uses.limit_scratch;
        let mut free: Vec<i16> = unaligned.chain(aligned).filter(|offset| *offset >= reserved).collect();
        free.reverse();
        let full = StackFull {
            words: total,
            pcap_words,
            room: free.len(),
            reserved: uses.limit_scratch,
            reserved_for: (!uses.limits.is_empty(), uses.dynamic, uses.logs),
        };
        if total > free.len() {
            return Err(full);
        }
        let mut layout = Layout {
            words: BTreeMap::new(),
            pcaps: BTreeMap::new(),
            pcap_words: Vec::new(),
            lowest: KEY_SLOT.min(MASK_SLOT),
            limit_scratch: None,
            context_slot: None,
        };
        if uses.limit_scratch > 0 {
            layout.limit_scratch = Some(-STACK_SIZE);
            layout.lowest = -STACK_SIZE;
        }
        if uses.logs {
            layout.context_slot = Some(reserved - 8);
        }
        for field in fields {
            let slots: Vec<i16> = (0..word_count(field)).filter_map(|_| free.pop()).collect();
            layout.lowest = slots.iter().copied().fold(layout.lowest, i16::min);
            layout.words.insert(field, slots);
        }
        for (position, &pcap) in uses.pcaps.iter().enumerate() {
            let bit = position as u32 % PCAP_BITS_PER_WORD;
            if bit == 0 {
                let slot = free.pop().ok_or(full)?;
                layout.lowest = layout.lowest.min(slot);
                layout.pcap_words.push(slot);
            }
            let slot = layout.pcap_words[layout.pcap_words.len() - 1];
            layout.pcaps.insert(pcap, PcapBit { slot, mask: 1 << bit });
        }
        Ok(layout)
    }

    /// The stack offsets of a field's words, most significant first.
    pub fn words(&self, field: Field) -> &[i16] {
        self.words.get(&field).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The word and bit holding pcap atom `index`'s verdict.
    pub(crate) fn pcap_bit(&self, index: u32) -> Option<PcapBit> {
        self.pcaps.get(&index).copied()
    }

    /// Every pcap atom with its verdict bit, in atom order.
    pub(crate) fn pcap_bits(&self) -> impl Iterator<Item = (u32, PcapBit)> + '_ {
        self.pcaps.iter().map(|(index, bit)| (*index, *bit))
    }

    /// The words holding pcap verdict bits (each starts as [`PCAP_WORD_EMPTY`]).
    pub(crate) fn pcap_words(&self) -> &[i16] {
        &self.pcap_words
    }

    /// Every allocated field with its words.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &[i16])> {
        self.words.iter().map(|(field, words)| (*field, words.as_slice()))
    }
}

/// How many 32-bit words a field's value takes.
pub(crate) fn word_count(field: Field) -> usize {
    match field.kind() {
        ValueKind::Mac => 2,
        ValueKind::Ipv6 => 4,
        _ => 1,
    }
}

/// Splits a value into its 32-bit words, most significant first.
pub(crate) fn split_words(field: Field, value: u128) -> Words {
    let words = [(value >> 96) as u32, (value >> 64) as u32, (value >> 32) as u32, value as u32];
    match word_count(field) {
        1 => Words { words: [value as u32, 0, 0, 0], len: 1 },
        2 => Words { words: [(value >> 32) as u32 & 0xffff, value as u32, 0, 0], len: 2 },
        _ => Words { words, len: 4 },
    }
}

/// The 32-bit words of one value (at most four), as a slice; no allocation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Words {
    words: [u32; 4],
    len: usize,
}

impl std::ops::Deref for Words {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        &self.words[..self.len]
    }
}

/// Whether the field's slot holds `u32::MAX` when its header is absent, a value no
/// field of 31 bits or fewer can take: then `==`, `<`, `<=` and `in` without a mask
/// fail by themselves on an absent header and need no guard.
pub fn absent_is_out_of_range(field: Field) -> bool {
    matches!(field.kind(), ValueKind::Uint(bits) if bits <= 31) && field != Field::PktLen
}
