//! Dynamic-set lookups: one [`Node::InDynamic`](crate::ir::Node::InDynamic) in, a
//! `bpf_map_lookup_elem` on the set's map for the field's family out, ending in a jump to
//! `target` when membership equals `jump_if`.
//!
//! ```text
//!  key.word0 = set index;  gen = lookup(generations, &key.word0)  (an array: the kernel
//!                                                    inlines it; never null, and a
//!                                                    kernel ≥ 6.14 drops the null test)
//!  trie:  key = { prefixlen: 32 / 128, addr: the field's words & mask, big-endian }
//!  hash:  key = { the field's words & mask as a little-endian u128 }
//!  member = lookup(gen & 1 ? generation 1's map : generation 0's map, &key) != NULL
//!                                                   (`if w3 & 1`: one jump picks the map)
//! ```
//!
//! A fixed set (a static set in a map) has only generation 0: no generation read. The
//! two generations get a lookup each (so every call site has one map, and each path one
//! call); a packet runs one of them. The key layout is [`crate::program::dynamic`]'s.
//! Only r0–r5 and the scratch area at the bottom of the stack ([`Layout::limit_scratch`],
//! shared with rate limits, which never run at the same time) are used: r6–r9 may hold
//! the classifier's best match. The lookup reads only the map; the value is never read.

use super::layout::{split_words, Layout};
use crate::bpf::opcode::HELPER_MAP_LOOKUP;
use crate::bpf::{AluOp, ByteOrder, EndianWidth, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::ir::Filter;
use crate::program::dynamic::{Family, Part};
use crate::program::{DynamicKind, DynamicSet};

/// Index in the object's map list of dynamic set `set`'s map `part`: after the counters,
/// the rate limits' buckets and the maps of the sets before it (`None` when the set has
/// no such map).
pub fn map_index(filter_limits: usize, sets: &[DynamicSet], set: u32, part: Part) -> Option<u32> {
    let before: usize = sets[..set as usize].iter().map(|set| set.parts().len()).sum();
    let position = sets[set as usize].parts().iter().position(|p| *p == part)?;
    Some(super::COUNTER_MAP + 1 + (filter_limits + before + position) as u32)
}

/// Index of the generation array: after every dynamic set's maps (`set_maps` of them,
/// [`crate::program::dynamic::map_count`]).
pub(crate) fn generation_map_index(filter_limits: usize, set_maps: usize) -> u32 {
    super::COUNTER_MAP + 1 + (filter_limits + set_maps) as u32
}

/// Emits `(field & mask) in set`; jumps to `target` when that is `jump_if`.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    b: &mut ProgramBuilder,
    filter: &Filter,
    layout: &Layout,
    field: Field,
    mask: Option<u128>,
    set: u32,
    target: Label,
    jump_if: bool,
) {
    let Some(key) = layout.limit_scratch else { return };
    let sets = &filter.dynamic_sets;
    let dynamic = &sets[set as usize];
    let family = Family::of(field.kind());
    let limits = filter.limits.len();
    let map = |generation| map_index(limits, sets, set, Part { family, generation });
    let Some(first) = map(0) else {
        // The set holds no value of this family (the checker allows no such test): never a member.
        if !jump_if {
            b.emit(Insn::Ja { target });
        }
        return;
    };
    let second = map(1);
    if second.is_some() {
        b.comment(format!("{} in dynamic set `{}`", field.name(), dynamic.name));
        // The generation bit, in r3 (untouched until the lookup).
        b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: key, imm: set as i32 });
        let generations = generation_map_index(limits, crate::program::dynamic::map_count(sets));
        b.emit(Insn::LoadMapIndex { dst: Reg::R1, map: generations });
        b.emit(Insn::mov64(Reg::R2, Reg::R10));
        b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(key)));
        b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
        // The array answers every index below its size, so the null case (generation 0)
        // never runs. It sits on the fall-through of a jump over it: a kernel that knows
        // the lookup of a constant key is never null (6.14 on) drops that jump and the
        // null case from the program it runs; older ones take the jump.
        let (found, read) = (b.new_label(), b.new_label());
        b.emit(Insn::jump64(JmpOp::Ne, Reg::R0, 0, found));
        b.emit(Insn::alu32(AluOp::Mov, Reg::R3, 0));
        b.emit(Insn::Ja { target: read });
        b.bind(found);
        b.emit(Insn::load(Size::W, Reg::R3, Reg::R0, 0));
        b.bind(read);
    } else {
        b.comment(format!("{} in set `{}` (a map of {} entries)", field.name(), dynamic.name, dynamic.elements.len()));
    }

    // The key: a trie's prefix length, then the address words, most significant first,
    // each in network order; a hash's little-endian u128 (MACs: the low 32 bits from the
    // second word, then the high 16 from the first).
    let words = layout.words(field);
    let masks = mask.map(|mask| split_words(field, mask));
    let (data, sources): (i16, Vec<(usize, bool)>) = match dynamic.kind {
        DynamicKind::Prefixes => {
            let bits = family.address_bits() as i32;
            b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: key, imm: bits });
            (key + 4, (0..words.len()).map(|index| (index, true)).collect())
        }
        DynamicKind::Values => match family {
            Family::Mac => (key, vec![(1, false), (0, false)]),
            _ => (key, vec![(0, false)]),
        },
    };
    for (position, &(index, swap)) in sources.iter().enumerate() {
        let Some(&slot) = words.get(index) else { continue };
        b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, slot));
        if let Some(word_mask) = masks.as_ref().and_then(|masks| masks.get(index)).filter(|m| **m != u32::MAX) {
            b.emit(Insn::alu32(AluOp::And, Reg::R1, Operand::imm_u32(*word_mask)));
        }
        if swap {
            b.emit(Insn::Endian { order: ByteOrder::Big, width: EndianWidth::W32, dst: Reg::R1 });
        }
        b.emit(Insn::store(Size::W, Reg::R10, data + 4 * position as i16, Reg::R1));
    }
    if dynamic.kind == DynamicKind::Values {
        for position in sources.len()..4 {
            b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: data + 4 * position as i16, imm: 0 });
        }
    }

    let op = if jump_if { JmpOp::Ne } else { JmpOp::Eq };
    let lookup = |b: &mut ProgramBuilder, map: u32| {
        b.emit(Insn::LoadMapIndex { dst: Reg::R1, map });
        b.emit(Insn::mov64(Reg::R2, Reg::R10));
        b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(key)));
        b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
        b.emit(Insn::jump64(op, Reg::R0, 0, target));
    };
    match second {
        None => lookup(b, first),
        Some(second) => {
            let (in_second, done) = (b.new_label(), b.new_label());
            // The generation is bit 0 of the word.
            b.emit(Insn::jump32(JmpOp::Set, Reg::R3, Operand::imm_u32(1), in_second));
            lookup(b, first);
            b.emit(Insn::Ja { target: done });
            b.bind(in_second);
            lookup(b, second);
            b.bind(done);
        }
    }
}
