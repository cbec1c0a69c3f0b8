//! Log code: the filter's logged rules in, the counter tail's event code out (see
//! [`crate::program::log`] for the record). It runs after the packet was counted, with
//! r6 = the deciding rule's index and r7 = its return code, and ends where the tail
//! returns r7:
//!
//! ```text
//!  if r6 != i goto next                       (one block per logged rule i)
//!  limit (one global bucket): no token -> dropped
//!  r0 = bpf_ringbuf_reserve(ring, RECORD, 0); if r0 == 0 goto dropped
//!  r8 = r0; r8->time_ns = bpf_ktime_get_ns(); ->rule = r6; ->action = r7
//!  r1 = the context (spilled at entry); ->ifindex = ctx->ingress_ifindex | skb->ifindex
//!  ->frame_len = pkt.len; r4 = min(the frame's bytes, BYTES); ->captured = r4; ->hook = H
//!  if r4 >= 1: load_bytes(ctx, 0, r8 + 32, r4); on failure ->captured = 0
//!  bpf_ringbuf_submit(r8, 0); stats[i].sent += 1; goto out
//!  dropped: stats[i].dropped += 1
//!  next: ...
//!  out:
//! ```
//!
//! The length is bounded by a compare against the immediate, which the kernel verifier
//! tracks, and is at least 1 on the copy's path (the helpers refuse zero-sized copies).
//! Under TC the bytes copied are `skb->len`'s: pkt.len also counts a VLAN tag the kernel
//! took out of the frame, which the bytes lack.
//! Statistics are plain load/add/store on a per-CPU array, like the counters.

use super::layout::{Layout, KEY_SLOT};
use crate::bpf::opcode::{HELPER_KTIME_GET_NS, HELPER_MAP_LOOKUP, HELPER_RINGBUF_RESERVE, HELPER_RINGBUF_SUBMIT};
use crate::bpf::{AluOp, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::Field;
use crate::ir::Filter;
use crate::program::log::{Log, EVENT_HEADER};

/// Index in the object's map list of the ring buffer: after every limit's buckets and,
/// when there are dynamic sets, their `set_maps` maps
/// ([`crate::program::dynamic::map_count`]) and generation array.
pub fn ring_map_index(limits: usize, set_maps: usize) -> u32 {
    match set_maps {
        0 => super::limit::map_index(limits as u32),
        sets => super::dynamic::generation_map_index(limits, sets) + 1,
    }
}

/// Index of the per-rule log statistics: after the ring buffer.
pub fn stats_map_index(limits: usize, set_maps: usize) -> u32 {
    ring_map_index(limits, set_maps) + 1
}

/// Emits the event code of every logged rule (nothing when none logs).
pub(crate) fn emit_tail(b: &mut ProgramBuilder, filter: &Filter, layout: &Layout) {
    let Some(context) = layout.context_slot else { return };
    let out = b.new_label();
    for (index, rule) in filter.rules.iter().enumerate() {
        let Some(log) = rule.log else { continue };
        b.comment(format!("log rule {index} `{}`: at most 100 events/s", rule.name));
        let next = b.new_label();
        let dropped = b.new_label();
        b.emit(Insn::jump32(JmpOp::Ne, Reg::R6, Operand::imm_u32(index as u32), next));
        super::limit::emit(b, filter, layout, (log.limit.0, super::limit::Stats::Skip), dropped, false);
        event(b, filter, layout, log, context, dropped);
        count(b, filter, 0);
        b.emit(Insn::Ja { target: out });
        b.bind(dropped);
        count(b, filter, 8);
        b.emit(Insn::Ja { target: out });
        b.bind(next);
    }
    b.bind(out);
}

/// Reserves, fills and submits one record; jumps to `dropped` when there is no room.
fn event(b: &mut ProgramBuilder, filter: &Filter, layout: &Layout, log: Log, context: i16, dropped: Label) {
    let ring = ring_map_index(filter.limits.len(), crate::program::dynamic::map_count(&filter.dynamic_sets));
    let bytes = i32::from(log.bytes);
    b.emit(Insn::LoadMapIndex { dst: Reg::R1, map: ring });
    b.emit(Insn::mov64(Reg::R2, Operand::imm_u32(log.record_size())));
    b.emit(Insn::mov64(Reg::R3, 0));
    b.emit(Insn::Call { helper: HELPER_RINGBUF_RESERVE });
    b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, dropped));
    b.emit(Insn::mov64(Reg::R8, Reg::R0));
    b.emit(Insn::Call { helper: HELPER_KTIME_GET_NS });
    b.emit(Insn::store(Size::DW, Reg::R8, 0, Reg::R0));
    b.emit(Insn::store(Size::W, Reg::R8, 8, Reg::R6));
    b.emit(Insn::store(Size::W, Reg::R8, 12, Reg::R7));
    b.emit(Insn::load(Size::DW, Reg::R1, Reg::R10, context));
    let ifindex = filter.hook.context().ifindex;
    b.emit(Insn::load(Size::W, Reg::R2, Reg::R1, ifindex));
    b.emit(Insn::store(Size::W, Reg::R8, 16, Reg::R2));
    let length = layout.words(Field::PktLen)[0];
    b.emit(Insn::load(Size::W, Reg::R4, Reg::R10, length));
    b.emit(Insn::store(Size::W, Reg::R8, 20, Reg::R4));
    if let Some(len) = filter.hook.context().len {
        // The bytes there are to copy: pkt.len also counts a tag the kernel took out.
        b.emit(Insn::load(Size::W, Reg::R4, Reg::R1, len));
    }
    let kept = b.new_label();
    b.emit(Insn::jump64(JmpOp::Le, Reg::R4, bytes, kept));
    b.emit(Insn::mov64(Reg::R4, bytes));
    b.bind(kept);
    b.emit(Insn::store(Size::W, Reg::R8, 24, Reg::R4));
    b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R8, off: 28, imm: filter.hook.event_code() as i32 });
    let submit = b.new_label();
    if log.bytes > 0 {
        b.emit(Insn::jump64(JmpOp::Lt, Reg::R4, 1, submit));
        b.emit(Insn::mov64(Reg::R2, 0));
        b.emit(Insn::mov64(Reg::R3, Reg::R8));
        b.emit(Insn::alu64(AluOp::Add, Reg::R3, EVENT_HEADER as i32));
        let helper = filter.hook.program_type().load_bytes_helper();
        b.emit(Insn::Call { helper });
        b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, submit));
        b.emit(Insn::StoreImm { size: Size::W, dst: Reg::R8, off: 24, imm: 0 });
    }
    b.bind(submit);
    b.emit(Insn::mov64(Reg::R1, Reg::R8));
    b.emit(Insn::mov64(Reg::R2, 0));
    b.emit(Insn::Call { helper: HELPER_RINGBUF_SUBMIT });
}

/// `log_stats[r6].{sent, dropped} += 1` (the key is still in [`KEY_SLOT`]).
fn count(b: &mut ProgramBuilder, filter: &Filter, offset: i16) {
    let done = b.new_label();
    let stats = stats_map_index(filter.limits.len(), crate::program::dynamic::map_count(&filter.dynamic_sets));
    b.emit(Insn::LoadMapIndex { dst: Reg::R1, map: stats });
    b.emit(Insn::mov64(Reg::R2, Reg::R10));
    b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(KEY_SLOT)));
    b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
    b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, done));
    b.emit(Insn::load(Size::DW, Reg::R1, Reg::R0, offset));
    b.emit(Insn::alu64(AluOp::Add, Reg::R1, 1));
    b.emit(Insn::store(Size::DW, Reg::R0, offset, Reg::R1));
    b.bind(done);
}
