//! Dynamic sets as kernel maps: a [`DynamicSet`] element (or a packet's field value) in,
//! the map it lives in and the exact key bytes that map holds (or is looked up with) out.
//!
//! This is the one definition of the keys that the generated code builds on the stack,
//! the VM's emulated maps compare, and `pfc load` / `pfc set` write into the kernel's
//! maps. A set has one map per family of values it holds and per generation ([`Part`]):
//! an `ip` set has an IPv4 trie and an IPv6 trie, twice (generations 0 and 1); a static
//! set held in a map (`fixed`) has generation 0 only. The map keys:
//!
//! ```text
//!  IPv4 trie   u32 prefixlen, u8 addr[4]    8 bytes   prefixlen: the prefix length
//!  IPv6 trie   u32 prefixlen, u8 addr[16]  20 bytes   (lookups: 32 / 128); the address
//!                                                     in network order
//!  hash        u8 data[16]                 16 bytes   numbers, MACs: the value as a
//!                                                     little-endian u128
//! ```
//!
//! (the IPv4 trie's key is the one of `../shared/ref/acl_maps.c`, what a hand-written
//! XDP filter uses). The generation is the set's entry in the one-entry-per-set
//! generation array ([`SET_GENERATION_MAP_NAME`](crate::object::maps::SET_GENERATION_MAP_NAME)):
//! the program reads it (an array lookup, which the kernel inlines) and looks the packet
//! up in that generation's map, so `pfc set replace` fills the other generation's maps,
//! flips the word and then empties the old ones, and a packet sees the old contents or
//! the new, never a half-filled set. Each map holds up to `size` entries; `pfc set add`
//! refuses past `size` in all.
//!
//! Outside the maps (in the runtime, in `pfc set`, in an object's static-set contents)
//! an element is named by its **element key**, one fixed-size key for every family:
//!
//! ```text
//!  offset 0   u32 prefixlen   trie: 32 + the prefix length in bits; hash: 0
//!  offset 4   u32 tag         the family (host byte order)
//!  offset 8   u8  data[16]    IPv4: the address in network order, then 12 zero bytes
//!                             IPv6: the address in network order
//!                             numbers, MACs: the value as a little-endian u128
//! ```
//!
//! sorted by family first ([`map_key`] gives its map and map key, [`from_map_key`] the
//! way back).
//!
//! Numbers and MAC addresses are stored as the generated code stores its 32-bit stack
//! words, little-endian: pfc's maps are for little-endian hosts (x86-64, arm64), as the
//! rest of its objects.

use super::{DynamicElement, DynamicKind, DynamicSet};
use crate::fields::ValueKind;
use crate::object::maps::SET_MAP_PREFIX;

/// How many elements a dynamic set holds when its statement gives no `size`.
pub const DEFAULT_DYNAMIC_SIZE: u32 = 65_536;
/// The largest `size` a dynamic set may declare.
pub const MAX_DYNAMIC_SIZE: u32 = 16_777_216;

/// Bytes of an element key.
pub const KEY_SIZE: usize = 24;
/// Bytes of the largest map key (an IPv6 trie's): the stack the lookup builds it in.
pub const MAX_MAP_KEY_SIZE: usize = 20;
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
/// Offset of the tag word in an element key.
pub const TAG_OFFSET: usize = 4;
/// Offset of the data bytes in an element key.
const DATA_OFFSET: usize = 8;
/// Bits an element key's `prefixlen` counts before the address: the whole tag.
const TAG_BITS: u32 = 32;

/// Which values a map holds: the tag of an element key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Every family, in tag order.
    pub const ALL: [Family; 4] = [Family::Number, Family::Mac, Family::Ipv4, Family::Ipv6];

    /// The family of a value kind.
    pub fn of(kind: ValueKind) -> Family {
        match kind {
            ValueKind::Uint(_) => Family::Number,
            ValueKind::Mac => Family::Mac,
            ValueKind::Ipv4 => Family::Ipv4,
            ValueKind::Ipv6 => Family::Ipv6,
        }
    }

    /// How the manifest names it: `number`, `mac`, `ipv4`, `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Number => "number",
            Family::Mac => "mac",
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    /// The family [`Self::as_str`] names.
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|family| family.as_str() == name)
    }

    /// The family an element key's tag names.
    fn from_tag(tag: u32) -> Option<Family> {
        Family::ALL.into_iter().find(|family| *family as u32 == tag)
    }

    /// Address bits of the family in a trie (numbers and MACs live in hashes: 0).
    pub(crate) fn address_bits(self) -> u32 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
            Family::Number | Family::Mac => 0,
        }
    }

    /// Bytes of a key of this family's map in a set of `kind`.
    pub fn map_key_size(self, kind: DynamicKind) -> usize {
        match kind {
            DynamicKind::Prefixes => 4 + self.address_bits() as usize / 8,
            DynamicKind::Values => 16,
        }
    }
}

/// One of a set's maps: its elements of one family in one generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    /// The values it holds.
    pub family: Family,
    /// 0 or 1.
    pub generation: u32,
}

impl Part {
    /// The map's name for set `index`: `pfc_set_` + the index + one letter for the family
    /// and generation (`a`/`b` IPv4, `c`/`d` IPv6, `e`/`f` numbers, `g`/`h` MACs), so at
    /// most 15 bytes (what the kernel keeps) for any index below 10^6.
    pub fn map_name(self, index: usize) -> String {
        let first = match self.family {
            Family::Ipv4 => b'a',
            Family::Ipv6 => b'c',
            Family::Number => b'e',
            Family::Mac => b'g',
        };
        format!("{SET_MAP_PREFIX}{index}{}", char::from(first + (self.generation & 1) as u8))
    }
}

/// A key as a set's map holds it: [`Family::map_key_size`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapKey {
    bytes: [u8; MAX_MAP_KEY_SIZE],
    len: u8,
}

impl MapKey {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The family an element key holds, `None` for a key pfc never writes.
pub fn key_family(key: &[u8; KEY_SIZE]) -> Option<Family> {
    Family::from_tag(u32::from_le_bytes([key[4], key[5], key[6], key[7]]))
}

/// The family of an element key and the key its family's map holds it under, in a set
/// of `kind`; `None` for a key pfc never writes.
pub fn map_key(kind: DynamicKind, key: &[u8; KEY_SIZE]) -> Option<(Family, MapKey)> {
    let family = key_family(key)?;
    let mut bytes = [0u8; MAX_MAP_KEY_SIZE];
    let len = family.map_key_size(kind);
    match kind {
        DynamicKind::Prefixes => {
            let length = u32::from_le_bytes([key[0], key[1], key[2], key[3]]).checked_sub(TAG_BITS)?;
            bytes[..4].copy_from_slice(&length.to_le_bytes());
            bytes[4..len].copy_from_slice(&key[DATA_OFFSET..DATA_OFFSET + len - 4]);
        }
        DynamicKind::Values => bytes[..len].copy_from_slice(&key[DATA_OFFSET..]),
    }
    Some((family, MapKey { bytes, len: len as u8 }))
}

/// The element key a map of `family` in a set of `kind` holds as `map_key` (the way back
/// from [`map_key`]); `None` for bytes of another size.
pub fn from_map_key(kind: DynamicKind, family: Family, map_key: &[u8]) -> Option<[u8; KEY_SIZE]> {
    if map_key.len() != family.map_key_size(kind) {
        return None;
    }
    let mut data = [0u8; 16];
    let prefixlen = match kind {
        DynamicKind::Prefixes => {
            data[..map_key.len() - 4].copy_from_slice(&map_key[4..]);
            TAG_BITS + u32::from_le_bytes(map_key[..4].try_into().ok()?)
        }
        DynamicKind::Values => {
            data.copy_from_slice(map_key);
            0
        }
    };
    Some(key(prefixlen, family as u32, data))
}

/// The number of maps the sets take (each set's [`DynamicSet::parts`]).
pub fn map_count(sets: &[DynamicSet]) -> usize {
    sets.iter().map(|set| set.parts().len()).sum()
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

/// The element key of a prefix of a set of prefixes: `address` (host bits cleared) of
/// `family` (IPv4 or IPv6) and its prefix `length`; what [`element_key`] gives for that
/// prefix.
pub fn prefix_key(family: Family, address: u128, length: u8) -> [u8; KEY_SIZE] {
    key(TAG_BITS + u32::from(length), family as u32, data(family, address))
}

/// The element key of `element` in a set of `kind`.
pub fn element_key(kind: DynamicKind, element: &DynamicElement) -> [u8; KEY_SIZE] {
    let family = Family::of(element.kind);
    match kind {
        DynamicKind::Prefixes => {
            let host_bits = 128 - (element.high - element.low).leading_zeros();
            let length = family.address_bits().saturating_sub(host_bits);
            key(TAG_BITS + length, family as u32, data(family, element.low))
        }
        DynamicKind::Values => key(0, family as u32, data(family, element.low)),
    }
}

/// The map key a packet's value of `kind` is looked up with in a set of `set_kind` (what
/// codegen builds on the stack; the tests' statement of the layout).
#[cfg(test)]
fn lookup_key(set_kind: DynamicKind, kind: ValueKind, value: u128) -> Vec<u8> {
    let family = Family::of(kind);
    let data = data(family, value);
    match set_kind {
        DynamicKind::Prefixes => {
            let bytes = family.address_bits() as usize / 8;
            let mut key = family.address_bits().to_le_bytes().to_vec();
            key.extend_from_slice(&data[..bytes]);
            key
        }
        DynamicKind::Values => data.to_vec(),
    }
}

/// The element an element key holds (for `pfc set list`), or `None` for a key pfc never
/// writes.
pub fn key_element(kind: DynamicKind, key: &[u8]) -> Option<DynamicElement> {
    let key: &[u8; KEY_SIZE] = key.try_into().ok()?;
    let prefixlen = u32::from_le_bytes(key[..4].try_into().ok()?);
    let data: [u8; 16] = key[DATA_OFFSET..].try_into().ok()?;
    let (value_kind, value) = match key_family(key)? {
        Family::Number => (ValueKind::Uint(128), u128::from_le_bytes(data)),
        Family::Mac => (ValueKind::Mac, u128::from_le_bytes(data)),
        Family::Ipv4 => (ValueKind::Ipv4, u128::from(u32::from_be_bytes(data[..4].try_into().ok()?))),
        Family::Ipv6 => (ValueKind::Ipv6, u128::from_be_bytes(data)),
    };
    Some(match kind {
        DynamicKind::Values => DynamicElement { kind: value_kind, low: value, high: value },
        DynamicKind::Prefixes => {
            let bits = Family::of(value_kind).address_bits();
            let length = prefixlen.checked_sub(TAG_BITS).filter(|length| *length <= bits)?;
            let host = bits - length;
            let mask = if host == 128 { u128::MAX } else { (1u128 << host) - 1 };
            DynamicElement { kind: value_kind, low: value & !mask, high: value | mask }
        }
    })
}

/// What a freshly loaded object's maps must hold for the rule file's contents: per map of
/// generation 0 of each set, its name and map keys (each with [`VALUE`]); the generation
/// array starts zeroed, except that each set's `elements` count is its number of keys
/// ([`state_value`]).
pub fn initial_entries(sets: &[DynamicSet]) -> Vec<(String, Vec<MapKey>)> {
    let mut entries = Vec::new();
    for (index, set) in sets.iter().enumerate() {
        let keys = set.keys();
        for family in &set.families {
            let part = Part { family: *family, generation: 0 };
            let held = keys.iter().filter_map(|key| map_key(set.kind, key)).filter(|(f, _)| f == family);
            entries.push((part.map_name(index), held.map(|(_, key)| key).collect()));
        }
    }
    entries
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
    /// The element keys of the current contents, sorted, without duplicates.
    pub fn keys(&self) -> Vec<[u8; KEY_SIZE]> {
        let mut keys: Vec<[u8; KEY_SIZE]> =
            self.elements.iter().map(|element| element_key(self.kind, element)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The set's maps, in the object's order: per family, generation 0 then (unless the
    /// set is fixed) generation 1.
    pub fn parts(&self) -> Vec<Part> {
        let generations = if self.fixed { 1 } else { 2 };
        let families = self.families.iter();
        families.flat_map(|family| (0..generations).map(|generation| Part { family: *family, generation })).collect()
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
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv4, 0x0a00_0000, 8)),
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv4, 0, 0)),
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv6, 0x2001_0db8 << 96, 32)),
            (DynamicKind::Prefixes, prefix(ValueKind::Ipv6, 1, 128)),
            (DynamicKind::Values, DynamicElement { kind: ValueKind::Uint(128), low: 22, high: 22 }),
            (
                DynamicKind::Values,
                DynamicElement { kind: ValueKind::Mac, low: 0x0200_5e10_0001, high: 0x0200_5e10_0001 },
            ),
        ];
        for (kind, element) in cases {
            let key = element_key(kind, &element);
            assert_eq!(key_element(kind, &key), Some(element), "{element:?}");
            let (family, held) = map_key(kind, &key).expect("a map key");
            assert_eq!(family, Family::of(element.kind));
            assert_eq!(held.as_bytes().len(), family.map_key_size(kind));
            assert_eq!(from_map_key(kind, family, held.as_bytes()), Some(key), "{element:?}");
        }
        let key = element_key(DynamicKind::Prefixes, &prefix(ValueKind::Ipv4, 0x0a01_0000, 16));
        assert_eq!(key, [48, 0, 0, 0, 4, 0, 0, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // The IPv4 trie's key is acl_maps.c's: {u32 prefixlen, u32 addr (network order)}.
        let (_, held) = map_key(DynamicKind::Prefixes, &key).expect("a map key");
        assert_eq!(held.as_bytes(), [16, 0, 0, 0, 10, 1, 0, 0]);
        assert_eq!(lookup_key(DynamicKind::Prefixes, ValueKind::Ipv4, 0x0a01_0203), [32, 0, 0, 0, 10, 1, 2, 3]);
        let texts: Vec<String> = cases.iter().map(|(_, element)| element_text(element)).collect();
        assert_eq!(texts, ["10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::1", "22", "02:00:5e:10:00:01"]);
        let key = lookup_key(DynamicKind::Values, ValueKind::Uint(16), 443);
        assert_eq!(key, [0xbb, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let v6 = lookup_key(DynamicKind::Prefixes, ValueKind::Ipv6, 1);
        assert_eq!((v6.len(), v6[0], v6[19]), (20, 128, 1));
    }

    #[test]
    fn map_names_fit_the_kernels_fifteen_bytes() {
        let part = |family, generation| Part { family, generation };
        assert_eq!(part(Family::Ipv4, 0).map_name(3), "pfc_set_3a");
        assert_eq!(part(Family::Ipv6, 1).map_name(3), "pfc_set_3d");
        assert_eq!(part(Family::Mac, 1).map_name(999_999).len(), 15);
    }
}
