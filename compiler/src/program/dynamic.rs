//! Dynamic sets as kernel maps: a [`DynamicSet`] element (or a packet's field value) and a
//! generation in, the exact key bytes its map holds (or is looked up with) out.
//!
//! This is the one definition of the key that the generated code builds on the stack, the
//! VM's emulated maps compare, and `pfc load` / `pfc set` write into the kernel's maps:
//!
//! ```text
//!  offset 0   u32 prefixlen   trie: 32 + the prefix length in bits (the tag is always
//!                             matched whole); hash: 0
//!  offset 4   u32 tag         family | generation << 8   (host byte order)
//!  offset 8   u8  data[16]    IPv4: the address in network order, then 12 zero bytes
//!                             IPv6: the address in network order
//!                             numbers, MACs: the value as a little-endian u128
//! ```
//!
//! The family ([`Family`]) keeps IPv4 and IPv6 prefixes of one `ip` set apart in one trie
//! (an IPv4 packet never matches an IPv6 prefix). The generation is the set's entry in the
//! one-entry-per-set generation array ([`SET_GENERATION_MAP_NAME`](crate::object::maps::SET_GENERATION_MAP_NAME)): the program reads it
//! before each lookup, so `pfc set replace` fills the other generation, flips the word and
//! then deletes the old entries, and a packet sees the old contents or the new, never a
//! half-filled set. So a set's map holds `2 × size` entries ([`map_entries`]): room for
//! both generations during a replace; `pfc set add` refuses past `size`.
//!
//! Numbers and MAC addresses are stored as the generated code stores its 32-bit stack
//! words, little-endian: pfc's maps are for little-endian hosts (x86-64, arm64), as the
//! rest of its objects.

use super::{DynamicElement, DynamicKind, DynamicSet};
use crate::fields::ValueKind;

/// How many elements a dynamic set holds when its statement gives no `size`.
pub const DEFAULT_DYNAMIC_SIZE: u32 = 65_536;
/// The largest `size` a dynamic set may declare.
pub const MAX_DYNAMIC_SIZE: u32 = 16_777_216;

/// Bytes of a dynamic set's key.
pub const KEY_SIZE: usize = 24;
/// Bytes of a dynamic set's value (`__u32[4]`; the program only tests presence, and pfc's
/// map values are at least 16 bytes, the most its verifier lets a program read).
pub(crate) const VALUE_SIZE: usize = 16;
/// The value pfc writes for every element.
pub const VALUE: [u8; VALUE_SIZE] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// Bytes of a set's entry in the generation array: `struct pfc_set_state { __u32
/// generation; __u32 elements; __u64 changed_ns; }`; the program reads `generation`
/// (bit 0), `pfc set` keeps `elements` (the current generation's count, for `pfc status`)
/// and `changed_ns` (wall-clock time of the last change, Unix ns).
pub(crate) const STATE_SIZE: usize = 16;
/// Bit of the state's `elements` word that says the count is not settled: `pfc set add`
/// or `del` sets it before it changes the current generation's entries in place and
/// writes the settled count after, so a count a killed `pfc set` left behind is known to
/// be stale (the next reader counts the map's entries instead). The program never reads
/// `elements`; sizes stay below [`ELEMENTS_UNSETTLED`] (at most 2^24).
pub const ELEMENTS_UNSETTLED: u32 = 1 << 31;
/// Offset of the tag word in the key.
pub const TAG_OFFSET: usize = 4;
/// Offset of the data bytes in the key.
pub(crate) const DATA_OFFSET: usize = 8;
/// Bits of the key a trie compares before the data: the whole tag.
pub(crate) const TAG_BITS: u32 = 32;

/// Which values a key holds, the low byte of the tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Unsigned numbers (ports, protocols, any integer field).
    Number = 1,
    /// MAC addresses.
    Mac = 2,
    /// IPv4 addresses and prefixes.
    Ipv4 = 4,
    /// IPv6 addresses and prefixes.
    Ipv6 = 6,
}

impl Family {
    /// The family of a value kind.
    pub fn of(kind: ValueKind) -> Family {
        match kind {
            ValueKind::Uint(_) => Family::Number,
            ValueKind::Mac => Family::Mac,
            ValueKind::Ipv4 => Family::Ipv4,
            ValueKind::Ipv6 => Family::Ipv6,
        }
    }

    /// Address bits of the family in a trie (numbers and MACs live in hashes: 0).
    pub(crate) fn address_bits(self) -> u32 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
            Family::Number | Family::Mac => 0,
        }
    }
}

/// The tag word of a family in a generation.
pub fn tag(family: Family, generation: u32) -> u32 {
    family as u32 | (generation & 1) << 8
}

/// The map entries of a set of `max_elements`: room for a replace's second generation.
pub fn map_entries(max_elements: u32) -> u32 {
    max_elements.saturating_mul(2)
}

/// The data bytes of a value of `family`.
fn data(family: Family, value: u128) -> [u8; 16] {
    match family {
        Family::Ipv4 => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&(value as u32).to_be_bytes());
            bytes
        }
        Family::Ipv6 => value.to_be_bytes(),
        Family::Number | Family::Mac => value.to_le_bytes(),
    }
}

/// A key from its parts.
fn key(prefixlen: u32, tag: u32, data: [u8; 16]) -> [u8; KEY_SIZE] {
    let mut key = [0u8; KEY_SIZE];
    key[..4].copy_from_slice(&prefixlen.to_le_bytes());
    key[TAG_OFFSET..DATA_OFFSET].copy_from_slice(&tag.to_le_bytes());
    key[DATA_OFFSET..].copy_from_slice(&data);
    key
}

/// The key that holds `element` in a set of `kind`, in `generation`.
pub fn element_key(kind: DynamicKind, element: &DynamicElement, generation: u32) -> [u8; KEY_SIZE] {
    let family = Family::of(element.kind);
    let tag = tag(family, generation);
    match kind {
        DynamicKind::Prefixes => {
            let host_bits = 128 - (element.high - element.low).leading_zeros();
            let length = family.address_bits().saturating_sub(host_bits);
            let prefix = element.low;
            key(TAG_BITS + length, tag, data(family, prefix))
        }
        DynamicKind::Values => key(0, tag, data(family, element.low)),
    }
}

/// The key a packet's value of `kind` is looked up with in a set of `set_kind` (what
/// codegen builds on the stack; the tests' statement of the layout).
#[cfg(test)]
fn lookup_key(set_kind: DynamicKind, kind: ValueKind, value: u128, generation: u32) -> [u8; KEY_SIZE] {
    let family = Family::of(kind);
    let prefixlen = match set_kind {
        DynamicKind::Prefixes => TAG_BITS + family.address_bits(),
        DynamicKind::Values => 0,
    };
    key(prefixlen, tag(family, generation), data(family, value))
}

/// The element a key holds (for `pfc set list`), or `None` for a key pfc never writes.
pub fn key_element(kind: DynamicKind, key: &[u8]) -> Option<(DynamicElement, u32)> {
    let key: &[u8; KEY_SIZE] = key.try_into().ok()?;
    let prefixlen = u32::from_le_bytes(key[..4].try_into().ok()?);
    let tag = u32::from_le_bytes(key[TAG_OFFSET..DATA_OFFSET].try_into().ok()?);
    let data: [u8; 16] = key[DATA_OFFSET..].try_into().ok()?;
    let generation = tag >> 8;
    let (value_kind, value) = match tag & 0xff {
        1 => (ValueKind::Uint(128), u128::from_le_bytes(data)),
        2 => (ValueKind::Mac, u128::from_le_bytes(data)),
        4 => (ValueKind::Ipv4, u128::from(u32::from_be_bytes(data[..4].try_into().ok()?))),
        6 => (ValueKind::Ipv6, u128::from_be_bytes(data)),
        _ => return None,
    };
    let element = match kind {
        DynamicKind::Values => DynamicElement { kind: value_kind, low: value, high: value },
        DynamicKind::Prefixes => {
            let bits = Family::of(value_kind).address_bits();
            let length = prefixlen.checked_sub(TAG_BITS).filter(|length| *length <= bits)?;
            let host = bits - length;
            let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
            DynamicElement { kind: value_kind, low: value & !mask, high: value | mask }
        }
    };
    Some((element, generation))
}

/// What a freshly loaded object's maps must hold for the rule file's contents: per
/// dynamic set, its map name and its keys in generation 0 (each with [`VALUE`]); the
/// generation array starts zeroed, except that each set's `elements` count is its
/// number of keys ([`state_value`]).
pub fn initial_entries(sets: &[DynamicSet]) -> Vec<(String, Vec<[u8; KEY_SIZE]>)> {
    sets.iter().enumerate().map(|(index, set)| (crate::object::maps::set_map_name(index), set.keys(0))).collect()
}

/// A set's entry in the generation array.
pub fn state_value(generation: u32, elements: u32, changed_ns: u64) -> [u8; STATE_SIZE] {
    let mut value = [0u8; STATE_SIZE];
    value[..4].copy_from_slice(&generation.to_le_bytes());
    value[4..8].copy_from_slice(&elements.to_le_bytes());
    value[8..].copy_from_slice(&changed_ns.to_le_bytes());
    value
}

/// `(generation, elements, changed_ns)` of a set's entry in the generation array.
pub fn parse_state(value: &[u8]) -> Option<(u32, u32, u64)> {
    let word = |range: std::ops::Range<usize>| value.get(range);
    let generation = u32::from_le_bytes(word(0..4)?.try_into().ok()?);
    let elements = u32::from_le_bytes(word(4..8)?.try_into().ok()?);
    let changed_ns = u64::from_le_bytes(word(8..16)?.try_into().ok()?);
    Some((generation, elements, changed_ns))
}

/// An element as `pfc set list` prints it: `10.0.0.0/8`, `192.0.2.1`, `2001:db8::/32`,
/// `02:00:5e:10:00:01`, `443`.
pub fn element_text(element: &DynamicElement) -> String {
    let length = |bits: u32| bits - (128 - (element.high - element.low).leading_zeros());
    match element.kind {
        ValueKind::Ipv4 => {
            let address = std::net::Ipv4Addr::from(element.low as u32);
            match length(32) {
                32 => address.to_string(),
                bits => format!("{address}/{bits}"),
            }
        }
        ValueKind::Ipv6 => {
            let address = std::net::Ipv6Addr::from(element.low);
            match length(128) {
                128 => address.to_string(),
                bits => format!("{address}/{bits}"),
            }
        }
        ValueKind::Mac => {
            let bytes = element.low.to_be_bytes();
            bytes[10..].iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(":")
        }
        ValueKind::Uint(_) => element.low.to_string(),
    }
}

impl DynamicSet {
    /// The map's keys for the current contents in `generation`, without duplicates.
    pub fn keys(&self, generation: u32) -> Vec<[u8; KEY_SIZE]> {
        let mut keys: Vec<[u8; KEY_SIZE]> =
            self.elements.iter().map(|element| element_key(self.kind, element, generation)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(kind: ValueKind, low: u128, length: u32) -> DynamicElement {
        let bits = kind.bits();
        let host = bits - length;
        let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
        DynamicElement { kind, low: low & !mask, high: low | mask }
    }

    #[test]
    fn keys_round_trip_and_lay_out_as_documented() {
        let cases = [
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv4, 0x0a00_0000, 8), 1),
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv4, 0, 0), 0),
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv6, 0x2001_0db8 << 96, 32), 0),
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv6, 1, 128), 1),
            (DynamicKind::Values, DynamicElement { kind: ValueKind::Uint(128), low: 22, high: 22 }, 0),
            (
                DynamicKind::Values,
                DynamicElement { kind: ValueKind::Mac, low: 0x0200_5e10_0001, high: 0x0200_5e10_0001 },
                1,
            ),
        ];
        for (kind, element, generation) in cases {
            let key = element_key(kind, &element, generation);
            assert_eq!(key_element(kind, &key), Some((element, generation)), "{element:?}");
        }
        let key = element_key(DynamicKind::Prefixes, &prefix(ValueKind::Ipv4, 0x0a01_0000, 16), 1);
        assert_eq!(key, [48, 0, 0, 0, 4, 1, 0, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let texts: Vec<String> = cases.iter().map(|(_, element, _)| element_text(element)).collect();
        assert_eq!(texts, ["10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::1", "22", "02:00:5e:10:00:01"]);
        let key = lookup_key(DynamicKind::Values, ValueKind::Uint(16), 443, 0);
        assert_eq!(key, [0, 0, 0, 0, 1, 0, 0, 0, 0xbb, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
