//! Rate-limit code: one [`Node::Limit`](crate::ir::Node::Limit) in, the token-bucket
//! step of [`crate::program::limit`] as eBPF out, ending in a jump to `target` when the limit's
//! truth value equals `jump_if`.
//!
//! ```text
//!  now    = bpf_ktime_get_ns()                                   (to its stack slot)
//!  key    = presence word, then each key field's words, zeroed when absent (no jumps)
//!  bucket = lookup(map, key)
//!           none: update(map, key, {capacity, now}); bucket = lookup(map, key)
//!           still none (the map refused): the packet conforms
//!  if now > bucket.last: bucket.tokens = min(tokens + min(now - last, fill) * rate, capacity)
//!                        bucket.last = now
//!  if tokens >= cost: tokens -= cost; conform   else exceed    (stored in place)
//!  (a rule's limit) stats[index].within += 1 at conform, .over += 1 at exceed
//! ```
//!
//! A rule's limit counts its outcome in the per-CPU array `pfc_limit_stats` (entry = the
//! limit's index, key in the scratch area's key slot, which the bucket no longer needs):
//! plain load/add/store, like the counters, since each CPU has its own copy. A log
//! limit is not counted there: the log statistics count its refusals.
//!
//! Only r0–r5 and the limit's scratch area of the stack ([`Layout::limit_scratch`]) are
//! used: r6–r9 may hold the classifier's best match. Buckets are updated with plain
//! loads and stores: two CPUs updating one bucket at the same moment may both take the
//! same token (documented in docs/language.md §3.2).

use super::layout::{Layout, MASK_SLOT};
use crate::bpf::opcode::{HELPER_KTIME_GET_NS, HELPER_MAP_LOOKUP, HELPER_MAP_UPDATE};
use crate::bpf::{AluOp, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::ir::{Filter, Source};
use crate::program::limit::{Limit, Unit};

/// Index in the object's map list of the buckets of limit `index`: after the counters.
pub fn map_index(index: u32) -> u32 {
    super::COUNTER_MAP + 1 + index
}

/// Index of the limit statistics map: the last map, after the log maps when a rule logs
/// (else where the ring buffer would be). It exists when a rule has a limit.
pub fn stats_map_index(filter: &Filter) -> u32 {
    let (limits, sets) = (filter.limits.len(), crate::program::dynamic::map_count(&filter.dynamic_sets));
    match filter.rules.iter().any(|rule| rule.log.is_some()) {
        true => super::log::stats_map_index(limits, sets) + 1,
        false => super::log::ring_map_index(limits, sets),
    }
}

/// Whether a limit's outcome is counted in the limit statistics.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stats {
    /// A rule's limit: counted.
    Count,
    /// A log limit: not counted here.
    Skip,
}

/// Where the parts of the scratch area are.
struct Scratch {
    key: i16,
    bucket: i16,
    now: i16,
}

/// Emits limit `index`; jumps to `target` when it holds (`jump_if`) or not.
pub fn emit(
    b: &mut ProgramBuilder,
    filter: &Filter,
    layout: &Layout,
    (index, stats): (u32, Stats),
    target: Label,
    jump_if: bool,
) {
    let limit = &filter.limits[index as usize];
    let Some(base) = layout.limit_scratch else { return };
    let key_bytes = limit.key_size().div_ceil(8) * 8;
    let at = Scratch { key: base, bucket: base + key_bytes as i16, now: base + key_bytes as i16 + 16 };
    let map = map_index(index);
    b.comment(format!("limit l{index}: {}", limit.describe()));
    b.emit(Insn::Call { helper: HELPER_KTIME_GET_NS });
    b.emit(Insn::store(Size::DW, Reg::R10, at.now, Reg::R0));
    key(b, layout, limit, at.key);

    let found = b.new_label();
    let conform = b.new_label();
    let exceed = b.new_label();
    lookup(b, map, at.key);
    b.emit(Insn::jump64(JmpOp::Ne, Reg::R0, 0, found));
    b.comment("a new key: a full bucket");
    wide_constant(b, Reg::R1, limit.capacity());
    b.emit(Insn::store(Size::DW, Reg::R10, at.bucket, Reg::R1));
    b.emit(Insn::load(Size::DW, Reg::R1, Reg::R10, at.now));
    b.emit(Insn::store(Size::DW, Reg::R10, at.bucket + 8, Reg::R1));
    b.emit(Insn::LoadMapIndex { dst: Reg::R1, map });
    b.emit(Insn::mov64(Reg::R2, Reg::R10));
    b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(at.key)));
    b.emit(Insn::mov64(Reg::R3, Reg::R10));
    b.emit(Insn::alu64(AluOp::Add, Reg::R3, i32::from(at.bucket)));
    b.emit(Insn::mov64(Reg::R4, 0));
    b.emit(Insn::Call { helper: HELPER_MAP_UPDATE });
    lookup(b, map, at.key);
    b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, conform));

    b.bind(found);
    let take = b.new_label();
    b.emit(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
    b.emit(Insn::load(Size::DW, Reg::R2, Reg::R0, 8));
    b.emit(Insn::load(Size::DW, Reg::R3, Reg::R10, at.now));
    b.emit(Insn::jump64(JmpOp::Le, Reg::R3, Reg::R2, take));
    b.comment("refill: min(now - last, fill) * rate, up to the capacity");
    b.emit(Insn::mov64(Reg::R4, Reg::R3));
    b.emit(Insn::alu64(AluOp::Sub, Reg::R4, Reg::R2));
    wide_constant(b, Reg::R5, limit.fill_ns());
    minimum(b, Reg::R4, Reg::R5);
    multiply(b, Reg::R4, limit.rate, Reg::R5);
    b.emit(Insn::alu64(AluOp::Add, Reg::R1, Reg::R4));
    wide_constant(b, Reg::R5, limit.capacity());
    minimum(b, Reg::R1, Reg::R5);
    b.emit(Insn::store(Size::DW, Reg::R0, 8, Reg::R3));

    b.bind(take);
    match limit.unit {
        Unit::Packets => wide_constant(b, Reg::R5, limit.period_ns),
        Unit::Bytes => {
            let length = layout.words(Field::PktLen).first().copied().unwrap_or(MASK_SLOT);
            b.emit(Insn::load(Size::W, Reg::R5, Reg::R10, length));
            multiply(b, Reg::R5, limit.period_ns, Reg::R4);
        }
    }
    let short = b.new_label();
    b.emit(Insn::jump64(JmpOp::Lt, Reg::R1, Reg::R5, short));
    b.emit(Insn::alu64(AluOp::Sub, Reg::R1, Reg::R5));
    b.emit(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
    b.emit(Insn::Ja { target: conform });
    b.bind(short);
    b.emit(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
    b.emit(Insn::Ja { target: exceed });

    let end = b.new_label();
    let to = |holds: bool| if holds == jump_if { target } else { end };
    b.bind(conform);
    if stats == Stats::Count {
        count(b, filter, index, at.key, WITHIN);
    }
    b.emit(Insn::Ja { target: to(limit.holds(true)) });
    b.bind(exceed);
    if stats == Stats::Count {
        count(b, filter, index, at.key, OVER);
    }
    b.emit(Insn::Ja { target: to(limit.holds(false)) });
    b.bind(end);
}

/// Offsets of `over` and `within` in a `struct pfc_limit_stats`.
const OVER: i16 = 0;
const WITHIN: i16 = 8;

/// `limit_stats[index].(over | within) += 1`, the key written to `key` first.
fn count(b: &mut ProgramBuilder, filter: &Filter, index: u32, key: i16, offset: i16) {
    let done = b.new_label();
    b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R10, off: key, imm: index as i32 });
    lookup(b, stats_map_index(filter), key);
    b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, done));
    b.emit(Insn::load(Size::DW, Reg::R1, Reg::R0, offset));
    b.emit(Insn::alu64(AluOp::Add, Reg::R1, 1));
    b.emit(Insn::store(Size::DW, Reg::R0, offset, Reg::R1));
    b.bind(done);
}

/// The key at `at`: presence word, then each field's words (`& 0` when absent), no jumps.
///
/// No value that is 0 or all ones meets a constant `&` or `|`: the kernel verifier (6.18
/// here) follows each of its two values on a path of its own there, so a key of n fields
/// written that way costs it 2^n walks of the rest (16 fields: over its 1M-instruction
/// budget; pfc's replay counts the same, `verify/budget.rs`, so it would be E0020).
fn key(b: &mut ProgramBuilder, layout: &Layout, limit: &Limit, at: i16) {
    b.emit(Insn::alu32(AluOp::Mov, Reg::R3, 0));
    let mut offset = at + 4;
    for (position, &field) in limit.key.iter().enumerate() {
        // The presence bit to r3; r2 = all ones when the field's header is present, else 0.
        match Source::of_field(field) {
            Some(source) => {
                b.emit(Insn::load(Size::W, Reg::R2, Reg::R10, MASK_SLOT));
                b.emit(Insn::alu32(AluOp::Rsh, Reg::R2, source.bit().trailing_zeros() as i32));
                b.emit(Insn::alu32(AluOp::And, Reg::R2, 1));
                b.emit(Insn::mov64(Reg::R1, Reg::R2));
                b.emit(Insn::alu32(AluOp::Xor, Reg::R1, 1));
                if position > 0 {
                    b.emit(Insn::alu32(AluOp::Lsh, Reg::R1, position as i32));
                }
                b.emit(Insn::alu32(AluOp::Or, Reg::R3, Reg::R1));
                b.emit(Insn::alu32(AluOp::Sub, Reg::R2, 1));
            }
            None => {
                b.emit(Insn::alu32(AluOp::Or, Reg::R3, Operand::imm_u32(1 << position)));
                b.emit(Insn::alu32(AluOp::Mov, Reg::R2, -1));
            }
        }
        for &word in layout.words(field) {
            b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, word));
            b.emit(Insn::alu32(AluOp::And, Reg::R1, Reg::R2));
            b.emit(Insn::store(Size::W, Reg::R10, offset, Reg::R1));
            offset += 4;
        }
    }
    b.emit(Insn::store(Size::W, Reg::R10, at, Reg::R3));
}

/// `r0 = bpf_map_lookup_elem(map, r10 + key)`.
fn lookup(b: &mut ProgramBuilder, map: u32, key: i16) {
    b.emit(Insn::LoadMapIndex { dst: Reg::R1, map });
    b.emit(Insn::mov64(Reg::R2, Reg::R10));
    b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(key)));
    b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
}

/// `dst = value`, in one instruction when the immediate sign-extends to it.
fn wide_constant(b: &mut ProgramBuilder, dst: Reg, value: u64) {
    match Operand::imm64(value) {
        Some(imm) => b.emit(Insn::mov64(dst, imm)),
        None => b.emit(Insn::LoadImm64 { dst, imm: value }),
    }
}

/// `dst *= value` (64-bit, wrapping), through `spare` when it needs a wide constant.
fn multiply(b: &mut ProgramBuilder, dst: Reg, value: u64, spare: Reg) {
    match Operand::imm64(value) {
        Some(imm) => b.emit(Insn::alu64(AluOp::Mul, dst, imm)),
        None => {
            b.emit(Insn::LoadImm64 { dst: spare, imm: value });
            b.emit(Insn::alu64(AluOp::Mul, dst, spare));
        }
    }
}

/// `dst = min(dst, other)`, unsigned.
fn minimum(b: &mut ProgramBuilder, dst: Reg, other: Reg) {
    let kept = b.new_label();
    b.emit(Insn::jump64(JmpOp::Le, dst, other, kept));
    b.emit(Insn::mov64(dst, other));
    b.bind(kept);
}
