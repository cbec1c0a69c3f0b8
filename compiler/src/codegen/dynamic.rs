//! Dynamic-set lookups: one [`Node::InDynamic`](crate::ir::Node::InDynamic) in, a
//! `bpf_map_lookup_elem` on the set's map out, ending in a jump to `target` when
//! membership equals `jump_if`.
//!
//! ```text
//!  key.tag  = set index;  gen = lookup(generations, &key.tag)     (an array: never null)
//!  key.tag  = family | (gen ? *gen : 0) << 8        (a fixed set, always generation 0:
//!                                                    family, and no generation read)
//!  key.prefixlen = trie: 32 + address bits; hash: 0
//!  key.data = the field's words & mask: addresses big-endian (the trie compares bytes in
//!             network order), numbers and MACs as the little-endian u128; rest zero
//!  member   = lookup(set map, &key) != NULL
//! ```
//!
//! The key layout is [`crate::program::dynamic`]'s. Only r0–r5 and the scratch area at
//! the bottom of the stack ([`Layout::limit_scratch`], shared with rate limits, which
//! never run at the same time) are used: r6–r9 may hold the classifier's best match.
//! The lookup reads only the map; the value is never read.

use super::layout::{split_words, Layout};
use crate::bpf::opcode::HELPER_MAP_LOOKUP;
use crate::bpf::{AluOp, ByteOrder, EndianWidth, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::ir::Filter;
use crate::program::dynamic::{Family, DATA_OFFSET, KEY_SIZE, TAG_BITS, TAG_OFFSET};
use crate::program::DynamicKind;

/// Index in the object's map list of dynamic set `set`'s map: after the counters and
/// the rate limits' buckets.
pub fn map_index(filter_limits: usize, set: u32) -> u32 {
    super::COUNTER_MAP + 1 + filter_limits as u32 + set
}

/// Index of the generation array: after every dynamic set's map.
pub(crate) fn generation_map_index(filter_limits: usize, sets: usize) -> u32 {
    super::COUNTER_MAP + 1 + (filter_limits + sets) as u32
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
    let dynamic = &filter.dynamic_sets[set as usize];
    let kind = field.kind();
    let family = Family::of(kind);
    let (limits, sets) = (filter.limits.len(), filter.dynamic_sets.len());
    if dynamic.fixed {
        b.comment(format!("{} in set `{}` (a map of {} entries)", field.name(), dynamic.name, dynamic.elements.len()));
        // A static set held in a map never changes: its keys are all generation 0.
        b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: key + TAG_OFFSET as i16, imm: family as i32 });
    } else {
        b.comment(format!("{} in dynamic set `{}`", field.name(), dynamic.name));
        b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: key + TAG_OFFSET as i16, imm: set as i32 });
        b.emit(Insn::LoadMapIndex { dst: Reg::R1, map: generation_map_index(limits, sets) });
        b.emit(Insn::mov64(Reg::R2, Reg::R10));
        b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(key) + TAG_OFFSET as i32));
        b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
        let no_generation = b.new_label();
        b.emit(Insn::alu32(AluOp::Mov, Reg::R1, 0));
        b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, no_generation));
        b.emit(Insn::load(Size::W, Reg::R1, Reg::R0, 0));
        b.emit(Insn::alu32(AluOp::And, Reg::R1, 1));
        b.emit(Insn::alu32(AluOp::Lsh, Reg::R1, 8));
        b.bind(no_generation);
        b.emit(Insn::alu32(AluOp::Or, Reg::R1, family as i32));
        b.emit(Insn::store(Size::W, Reg::R10, key + TAG_OFFSET as i16, Reg::R1));
    }
    // A lookup key's prefix length: the tag and every address bit (a hash: 0).
    let prefixlen = match dynamic.kind {
        DynamicKind::Prefixes => TAG_BITS + family.address_bits(),
        DynamicKind::Values => 0,
    };
    b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: key, imm: prefixlen as i32 });

    // The data words, in key order, each from a stack word of the field.
    let words = layout.words(field);
    let masks = mask.map(|mask| split_words(field, mask));
    let data = key + DATA_OFFSET as i16;
    let sources: Vec<(usize, bool)> = match family {
        // Addresses: most significant word first, each in network order.
        Family::Ipv4 | Family::Ipv6 => (0..words.len()).map(|index| (index, true)).collect(),
        // MACs: the low 32 bits (second word), then the high 16 (first word).
        Family::Mac => vec![(1, false), (0, false)],
        Family::Number => vec![(0, false)],
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
    for position in sources.len()..(KEY_SIZE - DATA_OFFSET) / 4 {
        b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: data + 4 * position as i16, imm: 0 });
    }

    b.emit(Insn::LoadMapIndex { dst: Reg::R1, map: map_index(limits, set) });
    b.emit(Insn::mov64(Reg::R2, Reg::R10));
    b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(key)));
    b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
    let op = if jump_if { JmpOp::Ne } else { JmpOp::Eq };
    b.emit(Insn::jump64(op, Reg::R0, 0, target));
}
