//! A [`BpfObject`] and packets in, return values and map contents out: the object's code
//! run unprivileged in rbpf: in its x86_64 JIT when pfc's own verifier proves every
//! memory access of the code bounded (see `jit`), else in its interpreter, which checks
//! every access at run time. [`Vm::backend`] says which; both give the same answers.
//!
//! The code is exactly the object's (`lddw` carry map indices in `imm`, which rbpf loads
//! as plain values: it ignores `src`). Helper 1 (`bpf_map_lookup_elem`) takes that index
//! and returns a host pointer into emulated storage (see `maps`). The context is built the
//! way the kernel lays it out: a 24-byte `struct xdp_md` or a 192-byte `struct __sk_buff`
//! whose u32 `data`/`data_end` point at the packet, which is copied into memory below
//! 4 GiB so those pointers fit (see `low_mem`). One [`Vm`] is meant to run many packets.
//!
//! **Invariant:** no packet bytes make [`Vm::run`] panic or touch memory outside the
//! packet, context, stack and map values: the interpreter reports out-of-bounds accesses
//! as errors (anything rbpf itself panics on is caught and returned), and the JIT only
//! runs code whose accesses were proven in bounds for every packet.

mod jit;
mod low_mem;
mod maps;
mod ring;
mod stack_args;

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use thiserror::Error;

pub use jit::{Backend, JitUnavailable};
use low_mem::LowMemory;
use maps::{EmulatedMap, MapStorage};
use pfc_compiler::object::hook::{sk_buff, xdp_md};
use pfc_compiler::object::ProgramType;
use pfc_compiler::object::{BpfObject, MapType};

/// The largest packet [`Vm::run`] accepts (the kernel's test_run limit for XDP is a page).
pub const MAX_PACKET_LEN: usize = 64 * 1024;

/// The most instructions the VM takes: the kernel's limit (and rbpf's). Upstream rbpf
/// 0.4.1 computed jump targets in 16 bits; pfc builds it with that fixed
/// (`vendor/rbpf`, see `vendor/README.md`), so long programs jump where they should.
pub const MAX_INSNS: usize = 1_000_000;

/// A map entry as (key bytes, value bytes).
pub type MapEntry = (Vec<u8>, Vec<u8>);

/// The result of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    /// The program's `r0` at exit (XDP: 1 drop, 2 pass; TC: 0 ok, 2 shot).
    pub return_value: u64,
}

/// What can go wrong creating or running a [`Vm`].
#[derive(Debug, Error)]
pub enum VmError {
    /// rbpf's load-time checks rejected the code.
    #[error("rbpf rejected the program")]
    Rejected {
        /// rbpf's complaint.
        #[source]
        source: io::Error,
    },
    /// The program is longer than the kernel (and rbpf) accept.
    #[error("program has {insns} instructions; the VM runs at most {max}")]
    ProgramTooLong {
        /// Instruction slots in the program.
        insns: usize,
        /// [`MAX_INSNS`].
        max: usize,
    },
    /// A map type the VM does not emulate.
    #[error("map `{map}` has type {map_type:?}, which the VM does not emulate")]
    UnsupportedMap {
        /// The map's name.
        map: String,
        /// Its type.
        map_type: MapType,
    },
    /// The maps would take too much memory.
    #[error("map `{map}` and those before it need more than {max} bytes")]
    MapsTooLarge {
        /// The map that went over.
        map: String,
        /// The limit.
        max: usize,
    },
    /// Packet memory below 4 GiB could not be mapped.
    #[error("cannot map packet memory below 4 GiB")]
    PacketMemory {
        /// The mmap error.
        #[source]
        source: io::Error,
    },
    /// The packet is larger than [`MAX_PACKET_LEN`].
    #[error("packet of {len} bytes is larger than the {max}-byte maximum")]
    PacketTooLarge {
        /// The packet's length.
        len: usize,
        /// [`MAX_PACKET_LEN`].
        max: usize,
    },
    /// The program failed at run time (out-of-bounds access, unknown helper, ...).
    #[error("program failed on a {packet_len}-byte packet")]
    Execution {
        /// The packet's length.
        packet_len: usize,
        /// rbpf's complaint, which names the instruction.
        #[source]
        source: io::Error,
    },
    /// rbpf panicked (it does on some malformed code); the panic was caught.
    #[error("rbpf crashed on a {packet_len}-byte packet: {message}")]
    Crashed {
        /// The packet's length.
        packet_len: usize,
        /// The panic message.
        message: String,
    },
    /// No map has this index.
    #[error("no map {map_index}: the object has {map_count}")]
    NoSuchMap {
        /// The index asked for.
        map_index: usize,
        /// How many maps there are.
        map_count: usize,
    },
    /// An array-only accessor was asked for a hash map.
    #[error("map {map_index} has type {map_type:?}; only array maps are indexed by position")]
    NotAnArray {
        /// The map.
        map_index: usize,
        /// Its type.
        map_type: MapType,
    },
    /// `map_update` failed.
    #[error("updating map {map_index} failed with errno {errno}")]
    MapUpdate {
        /// The map.
        map_index: usize,
        /// The (positive) errno the kernel would give.
        errno: i64,
    },
}

/// An rbpf VM holding one program, its emulated maps and packet memory.
pub struct Vm<'obj> {
    object: &'obj BpfObject,
    /// Declared before `_code`: it holds a slice of that memory and must drop first.
    rbpf: rbpf::EbpfVmMbuff<'obj>,
    /// The JIT's machine code, when the backend is `Jit`.
    _code: Option<jit::ExecMemory>,
    maps: MapStorage,
    packet: LowMemory,
    context: Vec<u8>,
    backend: Backend,
    /// Why the JIT is not used, when it is not.
    fallback: Option<JitUnavailable>,
    /// Under TC: deliver a frame's outermost VLAN tag in the context, out of the bytes.
    vlan_offload: bool,
}

impl<'obj> Vm<'obj> {
    /// Prepares a VM for `object` in the JIT when [`jit`](self) allows it, else in the
    /// interpreter: checks the code, allocates maps and packet memory.
    pub fn new(object: &'obj BpfObject) -> Result<Vm<'obj>, VmError> {
        Vm::with_backend(object, Backend::Jit)
    }

    /// Like [`Vm::new`], always in rbpf's interpreter.
    pub fn interpreter(object: &'obj BpfObject) -> Result<Vm<'obj>, VmError> {
        Vm::with_backend(object, Backend::Interpreter)
    }

    /// Prepares a VM in `wanted`; `Backend::Jit` falls back to the interpreter for code
    /// the JIT may not run ([`Vm::jit_unavailable`] says why).
    pub fn with_backend(object: &'obj BpfObject, wanted: Backend) -> Result<Vm<'obj>, VmError> {
        if object.insn_count() > MAX_INSNS {
            return Err(VmError::ProgramTooLong { insns: object.insn_count(), max: MAX_INSNS });
        }
        let (mut total, mut lazy) = (0usize, 0usize);
        for def in &object.maps {
            if !matches!(
                def.map_type,
                MapType::ARRAY
                    | MapType::PERCPU_ARRAY
                    | MapType::HASH
                    | MapType::PERCPU_HASH
                    | MapType::LRU_HASH
                    | MapType::LPM_TRIE
                    | MapType::RINGBUF
            ) {
                return Err(VmError::UnsupportedMap { map: def.name.clone(), map_type: def.map_type });
            }
            let needed = EmulatedMap::bytes_needed(def);
            total = needed
                .and_then(|(eager, _)| total.checked_add(eager))
                .filter(|&t| t <= maps::MAX_TOTAL_BYTES)
                .ok_or_else(|| VmError::MapsTooLarge { map: def.name.clone(), max: maps::MAX_TOTAL_BYTES })?;
            lazy = needed
                .and_then(|(_, reserved)| lazy.checked_add(reserved))
                .filter(|&t| t <= maps::MAX_LAZY_BYTES)
                .ok_or_else(|| VmError::MapsTooLarge { map: def.name.clone(), max: maps::MAX_LAZY_BYTES })?;
        }
        let max_key = object.maps.iter().map(|m| m.key_size).max().unwrap_or(0);
        let max_value = object.maps.iter().map(|m| m.value_size).max().unwrap_or(0);
        let proven = stack_args::helper_pointers_in_stack(&object.code, max_key, max_value);
        let maps = MapStorage::new(&object.maps, proven);

        let mut rbpf = rbpf::EbpfVmMbuff::new(Some(&object.code)).map_err(rejected)?;
        let mut fallback = match wanted {
            Backend::Jit => jit::check(object).err(),
            Backend::Interpreter => Some(JitUnavailable::Requested),
        };
        let mut code = None;
        if fallback.is_none() {
            match compile_jit(&mut rbpf, object.insn_count()) {
                Ok(memory) => code = Some(memory),
                Err(reason) => fallback = Some(reason),
            }
        }
        let backend = if fallback.is_none() { Backend::Jit } else { Backend::Interpreter };
        // The interpreter calls helpers as Rust functions; the JIT, compiled above with its
        // trampolines' addresses baked in, never looks these up again.
        let helpers: [(u32, rbpf::ebpf::Helper); 10] = [
            (maps::HELPER_KTIME_GET_NS, maps::helper_ktime_get_ns),
            (maps::HELPER_MAP_LOOKUP, maps::helper_map_lookup),
            (maps::HELPER_MAP_UPDATE, maps::helper_map_update),
            (maps::HELPER_MAP_DELETE, maps::helper_map_delete),
            (maps::HELPER_GET_SMP_PROCESSOR_ID, maps::helper_get_smp_processor_id),
            (ring::HELPER_RINGBUF_RESERVE, ring::helper_ringbuf_reserve),
            (ring::HELPER_RINGBUF_SUBMIT, ring::helper_ringbuf_submit),
            (ring::HELPER_RINGBUF_DISCARD, ring::helper_ringbuf_discard),
            (ring::HELPER_SKB_LOAD_BYTES, ring::helper_load_bytes),
            (ring::HELPER_XDP_LOAD_BYTES, ring::helper_load_bytes),
        ];
        for (id, helper) in helpers {
            rbpf.register_helper(id, helper).map_err(rejected)?;
        }
        for map in &maps.maps {
            rbpf.register_allowed_memory(map.allowed_range());
        }
        for ring in maps.rings.iter().flatten() {
            rbpf.register_allowed_memory(ring.allowed_range());
        }
        let packet = LowMemory::new(MAX_PACKET_LEN).map_err(|source| VmError::PacketMemory { source })?;
        let context_len = object.program_type.context().size as usize;
        Ok(Vm {
            object,
            rbpf,
            _code: code,
            maps,
            packet,
            context: vec![0; context_len],
            backend,
            fallback,
            vlan_offload: false,
        })
    }

    /// Under TC, delivers each frame as the kernel does at tc ingress when `on`: a frame
    /// whose ethertype is a VLAN TPID (0x8100, 0x88a8) loses its outermost tag (bytes
    /// 12..16) to the context's `vlan_present` (1), `vlan_tci` and `vlan_proto`, and its
    /// length and `protocol` are the stripped frame's. The kernel frees a tagged frame
    /// under 20 bytes before tc (`skb_vlan_untag` reads the two bytes after the tag):
    /// such a frame is delivered as given. Off by default: the program sees the frame's
    /// bytes as given. No effect under XDP.
    pub fn set_vlan_offload(&mut self, on: bool) {
        self.vlan_offload = on;
    }

    /// The executor running the program.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why the program runs in the interpreter, when it does.
    pub fn jit_unavailable(&self) -> Option<&JitUnavailable> {
        self.fallback.as_ref()
    }

    /// The program's type.
    pub fn program_type(&self) -> ProgramType {
        self.object.program_type
    }

    /// Runs the program on one packet arriving at `now_ns` nanoseconds: what
    /// `bpf_ktime_get_ns` returns during the run (rate limits read it). Map contents
    /// persist between runs.
    pub fn run_at(&mut self, packet: &[u8], now_ns: u64) -> Result<RunResult, VmError> {
        self.maps.now_ns.set(now_ns);
        self.run(packet)
    }

    /// Runs the program on one packet at the time of the last [`Vm::run_at`] (0 at
    /// first). Map contents persist between runs.
    pub fn run(&mut self, packet: &[u8]) -> Result<RunResult, VmError> {
        let len = packet.len();
        if len > MAX_PACKET_LEN {
            return Err(VmError::PacketTooLarge { len, max: MAX_PACKET_LEN });
        }
        let tag = match self.object.program_type {
            ProgramType::SchedCls if self.vlan_offload => offloaded_tag(packet),
            _ => None,
        };
        let len = match tag {
            Some(_) => {
                let bytes = self.packet.bytes_mut();
                bytes[..12].copy_from_slice(&packet[..12]);
                bytes[12..len - 4].copy_from_slice(&packet[16..]);
                len - 4
            }
            None => {
                self.packet.bytes_mut()[..len].copy_from_slice(packet);
                len
            }
        };
        self.fill_context(len, tag);
        self.maps.set_packet(&self.packet.bytes()[..len]);
        let _active = self.maps.activate();
        if self.backend == Backend::Jit {
            return run_jit(&self.rbpf, &mut self.packet, &mut self.context, len);
        }
        let mem = &self.packet.bytes()[..len];
        let rbpf = &self.rbpf;
        let context = &self.context;
        match catch_unwind(AssertUnwindSafe(|| rbpf.execute_program(mem, context))) {
            Ok(Ok(return_value)) => Ok(RunResult { return_value }),
            Ok(Err(error)) => Err(VmError::Execution { packet_len: len, source: jit::io_error(&error) }),
            Err(panic) => Err(VmError::Crashed { packet_len: len, message: panic_message(panic.as_ref()) }),
        }
    }

    /// The context for the `len` bytes in packet memory, the frame's outer VLAN tag (TPID,
    /// TCI) when it is out of the bytes.
    fn fill_context(&mut self, len: usize, tag: Option<(u16, u16)>) {
        let packet = &self.packet.bytes()[..len];
        let start = self.packet.address() as u32;
        let end = start + packet.len() as u32;
        let ctx = &mut self.context;
        ctx.fill(0);
        let mut put = |offset: i16, value: u32| {
            let offset = offset as usize;
            ctx[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        };
        let context = self.object.program_type.context();
        put(context.data, start);
        put(context.data_end, end);
        put(context.data_meta, start);
        match self.object.program_type {
            ProgramType::Xdp => put(xdp_md::INGRESS_IFINDEX, 1),
            ProgramType::SchedCls => {
                put(sk_buff::LEN, packet.len() as u32);
                put(sk_buff::WIRE_LEN, packet.len() as u32);
                put(sk_buff::PKT_TYPE, pkt_type(packet));
                // skb->protocol is the ethertype as stored (network order) in a __be16.
                let protocol = packet.get(12..14).map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
                put(sk_buff::PROTOCOL, u32::from(protocol));
                put(sk_buff::IFINDEX, 1);
                if let Some((tpid, tci)) = tag {
                    put(sk_buff::VLAN_PRESENT, 1);
                    put(sk_buff::VLAN_TCI, u32::from(tci));
                    // vlan_proto is a __be16 like protocol.
                    put(sk_buff::VLAN_PROTO, u32::from(u16::from_ne_bytes(tpid.to_be_bytes())));
                }
            }
        }
    }

    fn map(&self, map_index: usize) -> Result<&EmulatedMap, VmError> {
        self.maps.maps.get(map_index).ok_or(VmError::NoSuchMap { map_index, map_count: self.maps.maps.len() })
    }

    /// The values of an array map by key (per-CPU maps: the one CPU's), or of a hash
    /// map in key order. Each value is `value_size` bytes.
    pub fn map_values(&self, map_index: usize) -> Result<Vec<Vec<u8>>, VmError> {
        Ok(self.map_entries(map_index)?.into_iter().map(|(_, v)| v).collect())
    }

    /// The first eight bytes of each value of an array map (`ARRAY`, or `PERCPU_ARRAY`:
    /// the one CPU's) as a little-endian u64, zero-extended when values are shorter:
    /// `out[i]` gets key `i`'s, for keys `0..min(out.len(), max_entries)`; returns how
    /// many were written. Reads the emulated map memory in place and allocates nothing,
    /// so it can run after every packet (pfc's counters are `{u64 packets, u64 bytes}`).
    pub fn array_words(&self, map_index: usize, out: &mut [u64]) -> Result<usize, VmError> {
        let map = self.map(map_index)?;
        if !map.is_array() {
            return Err(VmError::NotAnArray { map_index, map_type: map.def.map_type });
        }
        let count = out.len().min(map.def.max_entries as usize);
        out[..count].iter_mut().enumerate().for_each(|(slot, word)| *word = map.value_word(slot));
        Ok(count)
    }

    /// Every present entry of a map as (key, value) bytes, in key order.
    pub fn map_entries(&self, map_index: usize) -> Result<Vec<MapEntry>, VmError> {
        Ok(self.map(map_index)?.entries())
    }

    /// Sets one entry, like `bpf_map_update_elem(map, key, value, BPF_ANY)`. Key and value
    /// shorter than the map's sizes are zero-extended; longer ones are cut.
    pub fn map_update(&mut self, map_index: usize, key: &[u8], value: &[u8]) -> Result<(), VmError> {
        let map = self.map(map_index)?;
        let mut key = key.to_vec();
        key.resize(map.def.key_size as usize, 0);
        match map.update(&key, value, 0) {
            0 => Ok(()),
            err => Err(VmError::MapUpdate { map_index, errno: -err }),
        }
    }

    /// Removes one entry, like `bpf_map_delete_elem(map, key)`; `Ok(false)` when there
    /// was none. The key is zero-extended or cut to the map's key size.
    pub fn map_delete(&mut self, map_index: usize, key: &[u8]) -> Result<bool, VmError> {
        let map = self.map(map_index)?;
        let mut key = key.to_vec();
        key.resize(map.def.key_size as usize, 0);
        match map.delete(&key) {
            0 => Ok(true),
            -2 => Ok(false),
            err => Err(VmError::MapUpdate { map_index, errno: -err }),
        }
    }

    /// Zeroes every array value and empties every hash map and ring buffer.
    pub fn reset_maps(&mut self) {
        self.maps.maps.iter().for_each(EmulatedMap::reset);
        self.maps.rings.iter().flatten().for_each(ring::Ring::reset);
    }

    /// The records the program submitted to its ring buffers since the last call, in
    /// order (each as reserved: see `pfc_compiler::program::log::Event::decode`); this
    /// empties the rings, as a consumer does.
    pub fn take_events(&mut self) -> Vec<Vec<u8>> {
        self.maps.rings.iter().flatten().flat_map(ring::Ring::take).collect()
    }
}

/// The outermost VLAN tag (TPID, TCI) the kernel takes out of a frame before tc
/// ingress: one whose ethertype is 0x8100 or 0x88a8, with the tag and the two bytes
/// after it present.
fn offloaded_tag(packet: &[u8]) -> Option<(u16, u16)> {
    const TPIDS: [u16; 2] = [0x8100, 0x88a8];
    let tpid = u16::from_be_bytes(packet.get(12..14)?.try_into().ok()?);
    let tci = u16::from_be_bytes(packet.get(14..16)?.try_into().ok()?);
    (TPIDS.contains(&tpid) && packet.len() >= 20).then_some((tpid, tci))
}

/// `skb->pkt_type` as `eth_type_trans` sets it on a device whose address is all zeros
/// (the loopback device that `BPF_PROG_TEST_RUN` uses).
fn pkt_type(packet: &[u8]) -> u32 {
    const PACKET_HOST: u32 = 0;
    const PACKET_BROADCAST: u32 = 1;
    const PACKET_MULTICAST: u32 = 2;
    const PACKET_OTHERHOST: u32 = 3;
    match packet.get(..6) {
        Some(dst) if dst.iter().all(|&b| b == 0xff) => PACKET_BROADCAST,
        Some(dst) if dst[0] & 1 == 1 => PACKET_MULTICAST,
        Some(dst) if dst.iter().all(|&b| b == 0) => PACKET_HOST,
        Some(_) => PACKET_OTHERHOST,
        None => PACKET_HOST,
    }
}

/// Runs the JIT-compiled program on the `len` packet bytes already copied in, with the
/// context filled and the maps published to the helpers.
fn run_jit(
    rbpf: &rbpf::EbpfVmMbuff<'_>,
    packet: &mut LowMemory,
    context: &mut [u8],
    len: usize,
) -> Result<RunResult, VmError> {
    let context_len = context.len();
    let context = context.as_mut_ptr();
    let mem = &mut packet.bytes_mut()[..len];
    // SAFETY: the only caller, `Vm::run`, comes here only when `backend` is `Jit`, which
    // `Vm::with_backend` sets only when `jit::check` passed and rbpf compiled the code.
    // So pfc's verifier proved for every input that (1) all jumps go forward, or back in
    // loops it walked to their end on counters it knows, so the code terminates; (2) each packet read lies in `[data, data_end)` after a 64-bit
    // check against `data_end`, and `fill_context` set `data`/`data_end` to `mem`'s
    // bounds inside the live MAP_32BIT mapping `packet`; the packet is never written;
    // (3) context reads stay inside the 24-byte `xdp_md` / 192-byte `__sk_buff`, which is
    // exactly `context`'s length, and the context is never written; (4) stack accesses
    // stay in the 512 bytes below r10, the frame rbpf's JIT reserves; (5) map values are
    // accessed only after a null check and within their first MAP_VALUE_SIZE bytes, and
    // `check` required every map value to be at least that long, so the accesses stay in
    // the `EmulatedMap` storage the lookup helper pointed into, which the `Vm` owning
    // `rbpf` keeps alive (and `Vm::run` keeps published to the helpers); (6) the only
    // call is bpf_map_lookup_elem, reached through a stack-aligning trampoline. The
    // context slice is rebuilt from a raw pointer only to meet rbpf's `&'obj mut`
    // signature: rbpf hands it to the compiled code and keeps no reference after
    // returning, and nothing else touches `context` during the call.
    let result = unsafe {
        let context = std::slice::from_raw_parts_mut(context, context_len);
        rbpf.execute_program_jit(mem, context)
    };
    match result {
        Ok(return_value) => Ok(RunResult { return_value }),
        Err(error) => Err(VmError::Execution { packet_len: len, source: jit::io_error(&error) }),
    }
}

/// rbpf's complaint at load time.
fn rejected(error: rbpf::lib::Error) -> VmError {
    VmError::Rejected { source: jit::io_error(&error) }
}

/// Registers the trampolines and JIT-compiles the code into fresh executable memory,
/// sealed read-execute afterwards; rbpf panics (its code buffer overflowing) are caught.
fn compile_jit(rbpf: &mut rbpf::EbpfVmMbuff<'_>, insns: usize) -> Result<jit::ExecMemory, JitUnavailable> {
    let compile = |message: String| JitUnavailable::Compile { message };
    for (id, helper) in jit::helpers() {
        rbpf.register_helper(id, helper).map_err(|e| compile(jit::io_error(&e).to_string()))?;
    }
    let mut memory = jit::ExecMemory::for_insns(insns).map_err(|e| compile(e.to_string()))?;
    // SAFETY: called once; the slice goes to `rbpf`, which `Vm` declares before the
    // field that keeps `memory`, so the VM drops first. On the error paths below rbpf
    // no longer holds the slice (`jit_compile` took it and failed), except after a
    // failed `seal`, where the mapping is leaked rather than unmapped under rbpf.
    let slice = unsafe { memory.as_rbpf_memory() };
    rbpf.set_jit_exec_memory(slice).map_err(|e| compile(jit::io_error(&e).to_string()))?;
    match catch_unwind(AssertUnwindSafe(|| rbpf.jit_compile())) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(compile(jit::io_error(&error).to_string())),
        Err(panic) => return Err(compile(panic_message(panic.as_ref()))),
    }
    if let Err(error) = memory.seal() {
        std::mem::forget(memory);
        return Err(compile(error.to_string()));
    }
    Ok(memory)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
