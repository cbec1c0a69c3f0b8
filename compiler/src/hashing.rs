//! A fast, deterministic hasher for the compiler's internal tables: keys in, `u64` out;
//! the text form of a source hash (a SHA-256 digest in, `sha256:HEX` out); and a SHA-256
//! over a sequence of byte pieces ([`PieceDigest`], the object digests' hash).
//!
//! The tables key on data pfc built itself (conditions, sets, IR nodes, names), never on
//! anything an attacker controls at run time, so the DoS resistance of the standard
//! SipHash buys nothing here and costs a measurable share of checking 10,000 rules.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a over the bytes written, 64-bit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        // One multiply per word instead of eight: integers dominate the keys.
        self.0 = (self.0 ^ value).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
}

/// A `HashMap` with [`Fnv64`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv64>>;

/// [`Fnv64`] that takes every integer as one word (one multiply instead of one per byte:
/// derived `Hash` writes enum discriminants as `usize` and values as `u128`). Its hashes
/// differ from `Fnv64`'s, and with them a map's iteration order, so it serves tables that
/// are only looked up, never iterated: the IR's node table, the lints' condition table.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WordFnv64(Fnv64);

impl Hasher for WordFnv64 {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn write_u8(&mut self, value: u8) {
        self.0.write_u64(u64::from(value));
    }

    fn write_u16(&mut self, value: u16) {
        self.0.write_u64(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.0.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0.write_u64(value);
    }

    fn write_u128(&mut self, value: u128) {
        self.0.write_u64(value as u64);
        self.0.write_u64((value >> 64) as u64);
    }

    fn write_usize(&mut self, value: usize) {
        self.0.write_u64(value as u64);
    }
}

/// A `HashMap` with [`WordFnv64`], for tables that are never iterated.
pub(crate) type LookupMap<K, V> = HashMap<K, V, BuildHasherDefault<WordFnv64>>;

/// A SHA-256 digest as a source hash: `sha256:` and the hex digits
/// ([`crate::compile::source_hash`]).
pub(crate) fn hash_text(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// SHA-256 over a sequence of byte pieces, each preceded by its length (8 bytes, little
/// endian), after a domain string: no two different sequences hash alike by moving bytes
/// from one piece into the next, and no digest of one kind equals one of another kind.
pub(crate) struct PieceDigest(sha2::Sha256);

impl PieceDigest {
    /// A digest of the kind `domain` (say `pfc object code v1`).
    pub(crate) fn new(domain: &str) -> PieceDigest {
        let mut digest = PieceDigest(<sha2::Sha256 as sha2::Digest>::new());
        digest.piece(domain.as_bytes());
        digest
    }

    /// Adds one piece.
    pub(crate) fn piece(&mut self, bytes: &[u8]) -> &mut PieceDigest {
        use sha2::Digest as _;
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// The digest as text: `sha256:HEX` ([`hash_text`]).
    pub(crate) fn text(self) -> String {
        use sha2::Digest as _;
        hash_text(self.0.finalize().as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::PieceDigest;

    fn digest(domain: &str, pieces: &[&[u8]]) -> String {
        let mut digest = PieceDigest::new(domain);
        pieces.iter().for_each(|piece| {
            digest.piece(piece);
        });
        digest.text()
    }

    /// Moving a byte across a piece boundary, changing the domain or dropping an empty
    /// piece changes the digest; the same pieces give the same text, `sha256:` and 64 hex digits.
    #[test]
    fn pieces_are_delimited() {
        let base = digest("d", &[b"ab", b"c"]);
        assert_eq!(base, digest("d", &[b"ab", b"c"]));
        assert!(base.starts_with("sha256:") && base.len() == 7 + 64, "{base}");
        assert_ne!(base, digest("d", &[b"a", b"bc"]));
        assert_ne!(base, digest("e", &[b"ab", b"c"]));
        assert_ne!(base, digest("d", &[b"ab", b"c", b""]));
    }
}
