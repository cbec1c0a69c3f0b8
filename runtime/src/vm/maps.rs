//! Map definitions in, emulated map storage and the rbpf helpers that reach it out.
//!
//! rbpf has no maps. Each map gets one heap block, allocated once (zeroed, so the pages
//! of slots no entry used take no memory) and never moved, that rbpf is told it may read
//! and write (`register_allowed_memory`). `bpf_map_lookup_elem`
//! returns host addresses into it. Helpers are plain `fn` pointers, so the storage of the
//! VM that is running is published in a thread-local for the duration of one run.
//!
//! Supported: `ARRAY`, `PERCPU_ARRAY` (one CPU), `HASH`, `PERCPU_HASH` (one CPU),
//! `RINGBUF` (see `ring`), `LRU_HASH` (exact LRU: a lookup or update makes its key the most recently used; a new
//! key in a full map evicts the least recently used one, as `pfc_compiler::program::limit`'s
//! model does), `LPM_TRIE` (the kernel's semantics: a key is `u32 prefixlen` then data
//! bytes; update and delete act on the prefix (data bits past `prefixlen` ignored), a
//! lookup finds the longest stored prefix that covers the key's first `prefixlen` bits;
//! a `prefixlen` past the data's bits is `EINVAL` for an update and a miss for a lookup),
//! with helpers 1 (lookup), 2 (update), 3 (delete), 5 (`bpf_ktime_get_ns`:
//! the time of the packet being run, see `Vm::run_at`) and 8
//! (`bpf_get_smp_processor_id`, 0).
//! All storage is `Cell`s: helpers and the program only ever share it, so the pointers
//! handed to the program stay valid across helper calls.

pub(crate) use pfc_compiler::bpf::opcode::{
    HELPER_GET_SMP_PROCESSOR_ID, HELPER_KTIME_GET_NS, HELPER_MAP_DELETE, HELPER_MAP_LOOKUP, HELPER_MAP_UPDATE,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pfc_compiler::object::{MapDef, MapType};

/// Bytes past each map's end that an access starting inside it may touch: rbpf checks
/// only the first byte of an access against allowed memory.
const PADDING: usize = 8;
/// The most memory all of one VM's maps may take up front (arrays, LRU keys).
pub(crate) const MAX_TOTAL_BYTES: usize = 256 << 20;
/// The most address space the value slots of hash maps and tries may reserve: their
/// pages stay untouched (and take no memory) until an entry uses them, so a dynamic set
/// declared `size 16777216` (per family two maps of 16,777,216 slots of 16 bytes) runs in
/// the VM.
pub(crate) const MAX_LAZY_BYTES: usize = 2 << 30;

const ENOENT: i64 = 2;
const E2BIG: i64 = 7;
const EEXIST: i64 = 17;
const ENOSPC: i64 = 28;
const EINVAL: i64 = 22;

/// One emulated map.
pub(crate) struct EmulatedMap {
    pub(crate) def: MapDef,
    /// `value_size` rounded up to 8, as the kernel lays values out.
    stride: usize,
    values: Box<[Cell<u8>]>,
    /// LRU hash maps only: `max_entries * key_size` key bytes, one slot per value slot.
    keys: Box<[Cell<u8>]>,
    /// LPM tries only: how many stored prefixes have each prefix length.
    prefix_lengths: RefCell<std::collections::BTreeMap<u32, usize>>,
    /// Hash maps only: key → slot, the slots freed by deletes, and the first slot never
    /// used (slots are handed out in order, so untouched ones cost no memory).
    index: RefCell<HashMap<Vec<u8>, usize>>,
    free: RefCell<Vec<usize>>,
    fresh: Cell<usize>,
    /// LRU hash maps only: each slot's last use, and slots by last use.
    used: RefCell<Vec<u64>>,
    by_use: RefCell<std::collections::BTreeMap<u64, usize>>,
    uses: Cell<u64>,
}

impl EmulatedMap {
    fn new(def: &MapDef) -> EmulatedMap {
        let stride = (def.value_size as usize).div_ceil(8) * 8;
        let entries = def.max_entries as usize;
        let key_bytes = if def.map_type == MapType::LRU_HASH { entries * def.key_size as usize } else { 0 };
        EmulatedMap {
            def: def.clone(),
            stride,
            values: zeroed_cells(entries * stride + PADDING),
            keys: (0..key_bytes).map(|_| Cell::new(0)).collect(),
            prefix_lengths: RefCell::new(std::collections::BTreeMap::new()),
            index: RefCell::new(HashMap::new()),
            free: RefCell::new(Vec::new()),
            fresh: Cell::new(0),
            used: RefCell::new(if def.map_type == MapType::LRU_HASH { vec![0; entries] } else { Vec::new() }),
            by_use: RefCell::new(std::collections::BTreeMap::new()),
            uses: Cell::new(0),
        }
    }

    /// Bytes the map needs up front (counted against [`MAX_TOTAL_BYTES`]) and bytes it
    /// reserves untouched (value slots of hash maps and tries, [`MAX_LAZY_BYTES`]), or
    /// `None` on overflow.
    pub(crate) fn bytes_needed(def: &MapDef) -> Option<(usize, usize)> {
        let bytes = Self::bytes_of(def)?;
        let lazy = if def.map_type.is_hash() && def.map_type != MapType::LRU_HASH { bytes } else { 0 };
        Some((bytes - lazy, lazy))
    }

    /// Bytes of all the map's slots, or `None` on overflow.
    fn bytes_of(def: &MapDef) -> Option<usize> {
        let stride = (def.value_size as usize).div_ceil(8).checked_mul(8)?;
        let key_bytes = if def.map_type == MapType::LRU_HASH { def.key_size as usize } else { 0 };
        let per_entry = stride.checked_add(key_bytes)?;
        per_entry.checked_mul(def.max_entries as usize)
    }

    /// The address range the program may access.
    pub(crate) fn allowed_range(&self) -> std::ops::Range<u64> {
        let start = self.values.as_ptr() as u64;
        start..start + (self.values.len() - PADDING) as u64
    }

    fn is_hash(&self) -> bool {
        self.def.map_type.is_hash()
    }

    fn is_lpm(&self) -> bool {
        self.def.map_type == MapType::LPM_TRIE
    }

    /// LPM tries: the key with every data bit past its `prefixlen` cleared (how the trie
    /// identifies a stored prefix), or `None` when `prefixlen` exceeds the data's bits.
    fn prefix_key(key: &[u8], prefixlen: Option<u32>) -> Option<Vec<u8>> {
        let data_bits = (key.len().checked_sub(4)? * 8) as u32;
        let stated = u32::from_le_bytes(key.get(..4)?.try_into().ok()?);
        if stated > data_bits {
            return None;
        }
        let length = prefixlen.unwrap_or(stated);
        let mut normal = key.to_vec();
        normal[..4].copy_from_slice(&length.to_le_bytes());
        for (index, byte) in normal[4..].iter_mut().enumerate() {
            let first_bit = index as u32 * 8;
            if first_bit >= length {
                *byte = 0;
            } else if length - first_bit < 8 {
                *byte &= 0xffu8 << (8 - (length - first_bit));
            }
        }
        Some(normal)
    }

    /// LPM tries: the slot of the longest stored prefix covering the key's first
    /// `prefixlen` bits.
    fn longest_match(&self, key: &[u8]) -> Option<usize> {
        let stated = u32::from_le_bytes(key.get(..4)?.try_into().ok()?);
        let lengths = self.prefix_lengths.borrow();
        let index = self.index.borrow();
        lengths
            .range(..=stated)
            .rev()
            .find_map(|(&length, _)| index.get(&Self::prefix_key(key, Some(length))?).copied())
    }

    fn is_lru(&self) -> bool {
        self.def.map_type == MapType::LRU_HASH
    }

    /// LRU maps: makes `slot` the most recently used.
    fn touch(&self, slot: usize) {
        if !self.is_lru() {
            return;
        }
        let mut used = self.used.borrow_mut();
        let mut by_use = self.by_use.borrow_mut();
        by_use.remove(&used[slot]);
        self.uses.set(self.uses.get() + 1);
        used[slot] = self.uses.get();
        by_use.insert(used[slot], slot);
    }

    /// LRU maps: frees the least recently used slot's entry.
    fn evict_oldest(&self) {
        let Some((_, slot)) = self.by_use.borrow_mut().pop_first() else { return };
        let key_size = self.def.key_size as usize;
        let key: Vec<u8> = self.keys[slot * key_size..(slot + 1) * key_size].iter().map(Cell::get).collect();
        self.index.borrow_mut().remove(&key);
        self.value_cells(slot).iter().for_each(|c| c.set(0));
        self.used.borrow_mut()[slot] = 0;
        self.free.borrow_mut().push(slot);
    }

    fn capacity(&self) -> usize {
        self.def.max_entries as usize
    }

    /// A slot for a new entry: a freed one, else the first never used; `None` when full.
    fn free_slot(&self) -> Option<usize> {
        self.free.borrow_mut().pop().or_else(|| {
            let fresh = self.fresh.get();
            (fresh < self.capacity()).then(|| {
                self.fresh.set(fresh + 1);
                fresh
            })
        })
    }

    fn value_cells(&self, slot: usize) -> &[Cell<u8>] {
        let start = slot * self.stride;
        &self.values[start..start + self.def.value_size as usize]
    }

    fn value_address(&self, slot: usize) -> u64 {
        self.values[slot * self.stride..].as_ptr() as u64
    }

    fn array_slot(&self, key: &[u8]) -> Option<usize> {
        let index = u32::from_le_bytes(key.get(..4)?.try_into().ok()?) as usize;
        (index < self.def.max_entries as usize).then_some(index)
    }

    fn hash_slot(&self, key: &[u8]) -> Option<usize> {
        self.index.borrow().get(key).copied()
    }

    /// The value slot for `key`, if present.
    fn slot(&self, key: &[u8]) -> Option<usize> {
        if self.is_hash() {
            self.hash_slot(key)
        } else {
            self.array_slot(key)
        }
    }

    /// `bpf_map_lookup_elem`: the value's address or 0.
    pub(crate) fn lookup(&self, key: &[u8]) -> u64 {
        let slot = if self.is_lpm() { self.longest_match(key) } else { self.slot(key) };
        slot.map_or(0, |slot| {
            self.touch(slot);
            self.value_address(slot)
        })
    }

    /// `bpf_map_update_elem` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST` flags.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], flags: u64) -> i64 {
        if self.is_lpm() {
            let Some(prefix) = Self::prefix_key(key, None) else { return -EINVAL };
            let known = self.index.borrow().contains_key(&prefix);
            // A full trie says ENOSPC where a full hash says E2BIG.
            let result = match self.update_exact(&prefix, value, flags) {
                result if result == -E2BIG => -ENOSPC,
                result => result,
            };
            if result == 0 && !known {
                let length = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                *self.prefix_lengths.borrow_mut().entry(length).or_insert(0) += 1;
            }
            return result;
        }
        self.update_exact(key, value, flags)
    }

    fn update_exact(&self, key: &[u8], value: &[u8], flags: u64) -> i64 {
        let slot = match (self.slot(key), flags) {
            (_, 3..) => return -EINVAL,
            (Some(_), 1) if self.is_hash() => return -EEXIST,
            (Some(slot), _) => slot,
            (None, _) if !self.is_hash() => return -E2BIG,
            (None, 2) => return -ENOENT,
            (None, _) => {
                if self.is_lru() && self.free.borrow().is_empty() && self.fresh.get() == self.capacity() {
                    self.evict_oldest();
                }
                let Some(slot) = self.free_slot() else {
                    return -E2BIG;
                };
                if self.is_lru() {
                    let key_size = self.def.key_size as usize;
                    let cells = &self.keys[slot * key_size..(slot + 1) * key_size];
                    cells.iter().zip(key).for_each(|(c, &b)| c.set(b));
                }
                self.index.borrow_mut().insert(key.to_vec(), slot);
                slot
            }
        };
        self.value_cells(slot).iter().zip(value).for_each(|(c, &b)| c.set(b));
        self.touch(slot);
        0
    }

    /// `bpf_map_delete_elem`.
    pub(crate) fn delete(&self, key: &[u8]) -> i64 {
        if !self.is_hash() {
            return -EINVAL;
        }
        let prefix = if self.is_lpm() { Self::prefix_key(key, None) } else { Some(key.to_vec()) };
        let Some(prefix) = prefix else { return -EINVAL };
        let Some(slot) = self.index.borrow_mut().remove(&prefix) else {
            return -ENOENT;
        };
        if self.is_lpm() {
            let length = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            let mut lengths = self.prefix_lengths.borrow_mut();
            if let Some(count) = lengths.get_mut(&length) {
                *count -= 1;
                if *count == 0 {
                    lengths.remove(&length);
                }
            }
        }
        self.value_cells(slot).iter().for_each(|c| c.set(0));
        if self.is_lru() {
            let used = std::mem::take(&mut self.used.borrow_mut()[slot]);
            self.by_use.borrow_mut().remove(&used);
        }
        self.free.borrow_mut().push(slot);
        0
    }

    /// The first eight bytes of the value in `slot` as a little-endian u64 (zero-extended
    /// when values are shorter), read in place without allocating.
    pub(crate) fn value_word(&self, slot: usize) -> u64 {
        if let Some(cells) = self.value_cells(slot).first_chunk::<8>() {
            // Fixed-size: one 8-byte load instead of a byte loop (or a memcpy call).
            return u64::from_le_bytes(cells.each_ref().map(Cell::get));
        }
        let mut word = [0u8; 8];
        word.iter_mut().zip(self.value_cells(slot)).for_each(|(byte, cell)| *byte = cell.get());
        u64::from_le_bytes(word)
    }

    /// Whether this is an `ARRAY` or `PERCPU_ARRAY` map (slot `i` is key `i`).
    pub(crate) fn is_array(&self) -> bool {
        !self.is_hash()
    }

    /// Every present entry as (key, value) bytes, in key order for arrays.
    pub(crate) fn entries(&self) -> Vec<super::MapEntry> {
        let read = |cells: &[Cell<u8>]| cells.iter().map(Cell::get).collect::<Vec<u8>>();
        if self.is_hash() {
            let mut entries: Vec<_> =
                self.index.borrow().iter().map(|(k, &slot)| (k.clone(), read(self.value_cells(slot)))).collect();
            entries.sort();
            entries
        } else {
            (0..self.def.max_entries).map(|i| (i.to_le_bytes().to_vec(), read(self.value_cells(i as usize)))).collect()
        }
    }

    /// Zeroes every value and empties hash maps (touching only the slots ever used).
    pub(crate) fn reset(&self) {
        let used = if self.is_hash() { self.fresh.get() * self.stride } else { self.values.len() };
        self.values[..used].iter().for_each(|c| c.set(0));
        self.keys.iter().for_each(|c| c.set(0));
        if self.is_hash() {
            self.index.borrow_mut().clear();
            self.free.borrow_mut().clear();
            self.fresh.set(0);
            self.used.borrow_mut().iter_mut().for_each(|used| *used = 0);
            self.by_use.borrow_mut().clear();
            self.prefix_lengths.borrow_mut().clear();
        }
    }
}

/// `len` zeroed cells from a zeroed allocation: the allocator maps fresh pages for a
/// large one, and they take memory only when first written.
fn zeroed_cells(len: usize) -> Box<[Cell<u8>]> {
    let bytes: Box<[u8]> = vec![0u8; len].into_boxed_slice();
    // SAFETY: `Cell<u8>` has the same in-memory representation as `u8` (documented for
    // `Cell<T>`), so the allocation is a valid `[Cell<u8>]` of the same length, and the
    // box frees it with the same layout.
    unsafe { Box::from_raw(Box::into_raw(bytes) as *mut [Cell<u8>]) }
}

/// All maps of one VM, plus how helpers may read pointer arguments.
pub(crate) struct MapStorage {
    pub(crate) maps: Vec<EmulatedMap>,
    /// Set when `stack_args` proved every helper pointer argument lies in rbpf's stack.
    pub(crate) pointer_args_proven: bool,
    /// What `bpf_ktime_get_ns` returns: the time of the packet being run.
    pub(crate) now_ns: Cell<u64>,
    /// By map index: the ring buffer emulation of `RINGBUF` maps (see `ring`).
    pub(crate) rings: Vec<Option<super::ring::Ring>>,
    /// The packet being run (address, length), for the load-bytes helpers.
    packet: Cell<(usize, usize)>,
}

impl MapStorage {
    pub(crate) fn new(defs: &[MapDef], pointer_args_proven: bool) -> MapStorage {
        let rings = defs
            .iter()
            .map(|def| (def.map_type == MapType::RINGBUF).then(|| super::ring::Ring::new(def.max_entries)))
            .collect();
        MapStorage {
            maps: defs.iter().map(EmulatedMap::new).collect(),
            pointer_args_proven,
            now_ns: Cell::new(0),
            rings,
            packet: Cell::new((0, 0)),
        }
    }

    /// Sets the packet the load-bytes helpers read: `packet` must stay alive and
    /// unchanged until the next call (the VM sets it before each run, from packet memory
    /// it owns and does not touch during the run).
    pub(crate) fn set_packet(&self, packet: &[u8]) {
        self.packet.set((packet.as_ptr() as usize, packet.len()));
    }

    /// The packet being run.
    pub(crate) fn packet(&self) -> &[u8] {
        let (address, len) = self.packet.get();
        if address == 0 {
            return &[];
        }
        let ptr = address as *const u8;
        // SAFETY: `set_packet` got these from a live slice that its caller keeps alive and
        // unchanged while programs run (the VM's packet memory, set before each run).
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// Publishes this storage to the helpers until the guard drops.
    pub(crate) fn activate(&self) -> ActiveGuard<'_> {
        let previous = ACTIVE.with(|a| a.replace(self as *const MapStorage));
        ActiveGuard { previous, _storage: std::marker::PhantomData }
    }

    /// Copies `out.len()` bytes of program memory at `address` into `out`.
    fn read_program_memory(&self, address: u64, out: &mut [u8]) -> bool {
        if self.pointer_args_proven {
            // SAFETY: `stack_args::helper_pointers_in_stack` proved that every pointer a
            // map helper receives is `r10 + k` with `[r10 + k, r10 + k + len)` inside
            // rbpf's 512-byte stack (the interpreter's stack array, or the JIT's native
            // frame), which is live for the whole `execute_program`/`execute_program_jit`
            // call this helper runs in, and `out.len()` never exceeds that proven `len`.
            unsafe { std::ptr::copy_nonoverlapping(address as *const u8, out.as_mut_ptr(), out.len()) };
            return true;
        }
        read_own_memory(address, out)
    }
}

/// Reads our own memory through the kernel, which reports bad addresses as an error.
fn read_own_memory(address: u64, out: &mut [u8]) -> bool {
    let local = libc::iovec { iov_base: out.as_mut_ptr().cast(), iov_len: out.len() };
    let remote = libc::iovec { iov_base: address as *mut libc::c_void, iov_len: out.len() };
    // SAFETY: `local` describes `out`, which we own mutably; `remote` is only read, by the
    // kernel, which checks it and fails with EFAULT instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    n >= 0 && n as usize == out.len()
}

thread_local! {
    /// The storage of the VM running on this thread, or null.
    static ACTIVE: Cell<*const MapStorage> = const { Cell::new(std::ptr::null()) };
}

/// Keeps a [`MapStorage`] published to the helpers; restores the previous one on drop.
pub(crate) struct ActiveGuard<'a> {
    previous: *const MapStorage,
    _storage: std::marker::PhantomData<&'a MapStorage>,
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.previous));
    }
}

pub(crate) fn with_active(f: impl FnOnce(&MapStorage) -> u64) -> Option<u64> {
    let ptr = ACTIVE.with(Cell::get);
    // SAFETY: a non-null ACTIVE was set by `activate` from a `&MapStorage` that the
    // returned guard borrows; the guard resets ACTIVE before that borrow ends.
    unsafe { ptr.as_ref() }.map(f)
}

/// Keys and values up to this many bytes are copied through the stack, so a helper call
/// allocates nothing; larger ones (rare: hash maps with big keys) use the heap.
const SCRATCH_BYTES: usize = 64;

/// Calls `f` with `len` zeroed bytes: on the stack when they fit in [`SCRATCH_BYTES`].
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if len <= SCRATCH_BYTES {
        let mut bytes = [0u8; SCRATCH_BYTES];
        f(&mut bytes[..len])
    } else {
        f(&mut vec![0u8; len])
    }
}

/// Reads the key for map `map_index` at `key_ptr`, then calls `f` with map and key;
/// `on_error` when there is no such map or the key cannot be read.
fn with_map_key(
    map_index: u64,
    key_ptr: u64,
    on_error: u64,
    f: impl FnOnce(&MapStorage, &EmulatedMap, &[u8]) -> u64,
) -> u64 {
    let found = with_active(|storage| {
        let Some(map) = usize::try_from(map_index).ok().and_then(|i| storage.maps.get(i)) else {
            return on_error;
        };
        with_scratch(map.def.key_size as usize, |key| {
            if !storage.read_program_memory(key_ptr, key) {
                return on_error;
            }
            f(storage, map, key)
        })
    });
    found.unwrap_or(on_error)
}

/// Helper 1: `void *bpf_map_lookup_elem(map, key)`.
pub(crate) fn helper_map_lookup(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    with_map_key(map, key, 0, |_, map, key| map.lookup(key))
}

/// Helper 2: `long bpf_map_update_elem(map, key, value, flags)`.
pub(crate) fn helper_map_update(map: u64, key: u64, value: u64, flags: u64, _: u64) -> u64 {
    with_map_key(map, key, -EINVAL as u64, |storage, map, key| {
        with_scratch(map.def.value_size as usize, |bytes| {
            if !storage.read_program_memory(value, bytes) {
                return -EINVAL as u64;
            }
            map.update(key, bytes, flags) as u64
        })
    })
}

/// Helper 3: `long bpf_map_delete_elem(map, key)`.
pub(crate) fn helper_map_delete(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    with_map_key(map, key, -EINVAL as u64, |_, map, key| map.delete(key) as u64)
}

/// Helper 5: `u64 bpf_ktime_get_ns(void)`: the packet's time (`Vm::run_at`).
pub(crate) fn helper_ktime_get_ns(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_active(|storage| storage.now_ns.get()).unwrap_or(0)
}

/// Helper 8: `u32 bpf_get_smp_processor_id(void)`: the VM is CPU 0.
pub(crate) fn helper_get_smp_processor_id(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    0
}
