//! Ring buffer maps in, the records a program submitted out: the emulation of
//! `BPF_MAP_TYPE_RINGBUF` and of the helpers pfc's log code calls (docs/testing.md).
//!
//! A ring holds one record area, large enough for the largest record pfc reserves
//! ([`MAX_RECORD`]), that rbpf is told it may read and write. Helpers:
//! - 131 `bpf_ringbuf_reserve(ring, size, flags)`: the area's address (zeroed), or 0 when
//!   `flags` is not 0, `size` is 0 or larger than the area, a record is already reserved,
//!   or the ring is full (the submitted records not yet taken, each with the kernel's
//!   8-byte header and rounded up to 8, plus this one, exceed the ring's size);
//! - 132 `bpf_ringbuf_submit(record, flags)`: the record joins the ring's events;
//!   133 `bpf_ringbuf_discard(record, flags)`: the reservation is dropped;
//! - 189 `bpf_xdp_load_bytes(ctx, offset, to, len)` and 26 `bpf_skb_load_bytes`: copy
//!   `len` bytes of the packet at `offset` into the reserved record (the only memory the
//!   log code copies to); `-EFAULT` when the bytes are outside the packet, `-EINVAL` when
//!   the destination is outside the record.
//!
//! [`super::Vm::take_events`] hands the submitted records over (and so empties the ring).

pub(crate) use pfc_compiler::bpf::opcode::{
    HELPER_RINGBUF_DISCARD, HELPER_RINGBUF_RESERVE, HELPER_RINGBUF_SUBMIT, HELPER_SKB_LOAD_BYTES, HELPER_XDP_LOAD_BYTES,
};
use std::cell::{Cell, RefCell};

/// The largest record the emulation reserves: pfc's header and 1024 frame bytes.
pub(crate) const MAX_RECORD: usize = 32 + 1024;
/// Bytes past the area that an access starting inside it may touch (see `maps`).
const PADDING: usize = 8;
/// The kernel's per-record header in the ring.
const RECORD_HEADER: usize = 8;

const EFAULT: i64 = 14;
const EINVAL: i64 = 22;

/// One emulated ring buffer.
pub(crate) struct Ring {
    /// The ring's size in bytes (`max_entries`).
    capacity: usize,
    area: Box<[Cell<u8>]>,
    /// The size of the reserved record, if one is.
    reserved: Cell<Option<usize>>,
    /// Submitted records not yet taken.
    events: RefCell<Vec<Vec<u8>>>,
    /// Ring bytes the events take.
    used: Cell<usize>,
}

impl Ring {
    pub(crate) fn new(capacity: u32) -> Ring {
        Ring {
            capacity: capacity as usize,
            area: (0..MAX_RECORD + PADDING).map(|_| Cell::new(0)).collect(),
            reserved: Cell::new(None),
            events: RefCell::new(Vec::new()),
            used: Cell::new(0),
        }
    }

    /// The address range the program may access.
    pub(crate) fn allowed_range(&self) -> std::ops::Range<u64> {
        let start = self.area.as_ptr() as u64;
        start..start + MAX_RECORD as u64
    }

    fn address(&self) -> u64 {
        self.area.as_ptr() as u64
    }

    fn footprint(size: usize) -> usize {
        (RECORD_HEADER + size).div_ceil(8) * 8
    }

    fn reserve(&self, size: u64, flags: u64) -> u64 {
        let size = size as usize;
        let full = self.used.get() + Ring::footprint(size) > self.capacity;
        if flags != 0 || size == 0 || size > MAX_RECORD || self.reserved.get().is_some() || full {
            return 0;
        }
        self.area[..size].iter().for_each(|cell| cell.set(0));
        self.reserved.set(Some(size));
        self.address()
    }

    fn finish(&self, record: u64, keep: bool) -> bool {
        match self.reserved.get() {
            Some(size) if record == self.address() => {
                if keep {
                    self.events.borrow_mut().push(self.area[..size].iter().map(Cell::get).collect());
                    self.used.set(self.used.get() + Ring::footprint(size));
                }
                self.reserved.set(None);
                true
            }
            _ => false,
        }
    }

    /// The record area from `address` for `len` bytes, if that lies in the reservation.
    fn reserved_cells(&self, address: u64, len: usize) -> Option<&[Cell<u8>]> {
        let size = self.reserved.get()?;
        let start = usize::try_from(address.checked_sub(self.address())?).ok()?;
        let end = start.checked_add(len)?;
        (end <= size).then(|| &self.area[start..end])
    }

    /// Takes the submitted records, emptying the ring.
    pub(crate) fn take(&self) -> Vec<Vec<u8>> {
        self.used.set(0);
        std::mem::take(&mut *self.events.borrow_mut())
    }

    /// Drops every record and reservation.
    pub(crate) fn reset(&self) {
        self.take();
        self.reserved.set(None);
    }
}

fn with_ring(map: u64, f: impl FnOnce(&Ring) -> u64, on_error: u64) -> u64 {
    super::maps::with_active(|storage| {
        let ring = usize::try_from(map).ok().and_then(|index| storage.rings.get(index)).and_then(Option::as_ref);
        ring.map_or(on_error, f)
    })
    .unwrap_or(on_error)
}

/// Helper 131: `void *bpf_ringbuf_reserve(ringbuf, size, flags)`.
pub(crate) fn helper_ringbuf_reserve(map: u64, size: u64, flags: u64, _: u64, _: u64) -> u64 {
    with_ring(map, |ring| ring.reserve(size, flags), 0)
}

fn finish(record: u64, keep: bool) -> u64 {
    super::maps::with_active(|storage| {
        storage.rings.iter().flatten().any(|ring| ring.finish(record, keep));
        0
    })
    .unwrap_or(0)
}

/// Helper 132: `void bpf_ringbuf_submit(data, flags)`.
pub(crate) fn helper_ringbuf_submit(record: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    finish(record, true)
}

/// Helper 133: `void bpf_ringbuf_discard(data, flags)`.
pub(crate) fn helper_ringbuf_discard(record: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    finish(record, false)
}

/// Helpers 26 and 189: `long bpf_{skb,xdp}_load_bytes(ctx, offset, to, len)`.
pub(crate) fn helper_load_bytes(_: u64, offset: u64, to: u64, len: u64, _: u64) -> u64 {
    super::maps::with_active(|storage| {
        let packet = storage.packet();
        let source = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(start, len)| packet.get(start..start.checked_add(len)?));
        let Some(source) = source else { return -EFAULT as u64 };
        let Some(cells) = storage.rings.iter().flatten().find_map(|ring| ring.reserved_cells(to, source.len())) else {
            return -EINVAL as u64;
        };
        cells.iter().zip(source).for_each(|(cell, byte)| cell.set(*byte));
        0
    })
    .unwrap_or(-EINVAL as u64)
}
