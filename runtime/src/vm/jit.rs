//! A [`BpfObject`] in, a decision out: may its code run in rbpf 0.4.1's x86_64 JIT, or
//! must it stay in the interpreter (and why)? Plus the helper trampolines the JIT calls.
//!
//! rbpf's JIT checks no memory access at run time. It is used only when
//! [`pfc_compiler::verify::verify`] accepts the object's code, which proves (module doc of
//! `verify`): every jump goes forward, or back in a loop that it walked to its end on a
//! counter it knows (the program terminates); every packet read lies
//! between `data` and a 64-bit `data_end` check that covers all its bytes; the packet and
//! the context are never written; context reads stay inside the 24-byte `xdp_md` / 192-byte
//! `__sk_buff`; stack accesses stay in the 512 bytes below r10; map values are touched
//! only after a null check and only in their first [`MAP_VALUE_SIZE`] bytes; the only calls
//! are `bpf_map_lookup_elem(map, stack key)`, `bpf_map_update_elem(map, stack key, stack
//! value, flags)`, `bpf_ktime_get_ns()` and the log code's ring buffer helpers (writes
//! only inside a reserved record, within its size; the emulated helpers check their own
//! copies). On top of that, [`check`] requires every map value (ring buffers have none)
//! to be at least [`MAP_VALUE_SIZE`] bytes (the verifier assumes it, the object's BTF
//! decides it), and refuses the instructions on which rbpf 0.4.1's JIT computes something
//! else than its interpreter (`mov32` from a register does not zero the upper half;
//! `le16`/`le32` do not truncate), so both backends give the same answers.
//!
//! The JIT calls helpers with the native stack 8 bytes off the 16-byte alignment the
//! System V ABI requires (five pushes, the 512-byte frame and one `call`), so each helper
//! is reached through a small assembly trampoline that realigns the stack and calls an
//! `extern "C"` wrapper of the interpreter's helper.
//!
//! rbpf is built without `std`, so its JIT compiles into memory we hand it
//! ([`ExecMemory`]: sized for the program, writable while compiling, then read-execute
//! only); with `std` it would get one 4 KiB page, too small for a 100-rule set.

use thiserror::Error;

use pfc_compiler::bpf::{decode, ByteOrder, DecodeError, EndianWidth, Insn, Operand, Program};
use pfc_compiler::verify::{verify, VerifyError, MAP_VALUE_SIZE};

use pfc_compiler::object::{BpfObject, MapDef, MapType};

/// Which executor a [`super::Vm`] runs the program in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// rbpf's x86_64 JIT: native code, only for code pfc's verifier proved bounded.
    Jit,
    /// rbpf's interpreter, which checks every memory access at run time.
    Interpreter,
}

impl Backend {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Jit => "rbpf JIT",
            Backend::Interpreter => "rbpf interpreter",
        }
    }
}

/// Why an object runs in the interpreter instead of the JIT.
#[derive(Debug, Error)]
pub enum JitUnavailable {
    /// The interpreter was asked for.
    #[error("the interpreter was requested")]
    Requested,
    /// rbpf's JIT emits x86_64 code only.
    #[error("rbpf's JIT needs x86_64; this is {arch}")]
    Architecture {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },
    /// The code is outside the instruction subset pfc's verifier understands.
    #[error("the code does not decode as pfc instructions")]
    Decode {
        /// The decoder's complaint.
        #[source]
        source: DecodeError,
    },
    /// pfc's verifier could not prove every access bounded.
    #[error("pfc's verifier does not accept the code")]
    Verify {
        /// The first broken invariant.
        #[source]
        source: VerifyError,
    },
    /// A map's values are smaller than the verifier lets the code access.
    #[error("map `{map}` has {value_size}-byte values; the verifier allows accesses up to {MAP_VALUE_SIZE} bytes")]
    SmallMapValue {
        /// The map.
        map: String,
        /// Its value size.
        value_size: u32,
    },
    /// An instruction rbpf 0.4.1's JIT computes differently from its interpreter.
    #[error("instruction {insn}: {what} differs between rbpf 0.4.1's JIT and interpreter")]
    Divergent {
        /// Index of the instruction.
        insn: usize,
        /// The instruction kind.
        what: &'static str,
    },
    /// rbpf could not compile the code.
    #[error("rbpf's JIT failed: {message}")]
    Compile {
        /// rbpf's complaint or panic message.
        message: String,
    },
}

/// Machine code bytes reserved per eBPF instruction (rbpf emits at most ~40 for the
/// instructions pfc's verifier accepts; the helper calls and 64-bit loads are the longest).
const CODE_BYTES_PER_INSN: usize = 64;
/// Prologue, epilogue and slack.
const CODE_BYTES_FIXED: usize = 4096;
const PAGE: usize = 4096;

/// A private anonymous mapping for JIT code: read-write until [`ExecMemory::seal`], then
/// read-execute. Unmapped on drop.
pub(crate) struct ExecMemory {
    ptr: *mut u8,
    len: usize,
}

impl ExecMemory {
    /// Enough page-aligned memory for a program of `insns` instruction slots.
    pub(crate) fn for_insns(insns: usize) -> std::io::Result<ExecMemory> {
        let len = (insns * CODE_BYTES_PER_INSN + CODE_BYTES_FIXED).div_ceil(PAGE) * PAGE;
        // SAFETY: an anonymous private mapping with no address hint touches no existing
        // memory; MAP_FAILED is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ExecMemory { ptr: ptr.cast(), len })
    }

    /// The mapping as the `&'a mut [u8]` rbpf's `set_jit_exec_memory` wants.
    ///
    /// # Safety
    /// The caller must drop whatever holds the slice (the rbpf VM) before `self`, and
    /// call this once.
    pub(crate) unsafe fn as_rbpf_memory<'a>(&mut self) -> &'a mut [u8] {
        // SAFETY: `ptr..ptr+len` is a live read-write mapping owned by `self`; the caller
        // guarantees the slice does not outlive it and is the only one.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Makes the compiled code read-execute only (no longer writable).
    pub(crate) fn seal(&self) -> std::io::Result<()> {
        // SAFETY: changes the protection of our own mapping only. rbpf wrote the code and
        // resolved its jumps inside `jit_compile`, and never writes it afterwards.
        let rc = unsafe { libc::mprotect(self.ptr.cast(), self.len, libc::PROT_READ | libc::PROT_EXEC) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for ExecMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are what mmap returned; the rbpf VM holding the code was
        // dropped before (field order in `Vm`), so nothing runs or references it.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

// SAFETY: ExecMemory owns its mapping exclusively, like a Box<[u8]>.
unsafe impl Send for ExecMemory {}

/// An rbpf error as an `io::Error` (without `std`, rbpf's error only has `Debug`, which
/// prints `Error { kind: Other, error: "message" }`; the message is taken from that).
pub(crate) fn io_error(error: &rbpf::lib::Error) -> std::io::Error {
    let debug = format!("{error:?}");
    let message = debug
        .split_once("error: \"")
        .and_then(|(_, rest)| rest.strip_suffix("\" }"))
        .map_or(debug.clone(), |m| m.replace("\\\"", "\""));
    std::io::Error::other(message)
}

/// `Ok` when `object`'s code may run in the JIT (see the module documentation).
pub fn check(object: &BpfObject) -> Result<(), JitUnavailable> {
    if !cfg!(target_arch = "x86_64") {
        return Err(JitUnavailable::Architecture { arch: std::env::consts::ARCH });
    }
    let insns = decode(&object.code, &object.relocations).map_err(|source| JitUnavailable::Decode { source })?;
    let map_values = object.maps.iter().map(|map| map.value_size).collect();
    let program = Program { insns, map_values, ..Program::default() };
    verify(&program, object.program_type).map_err(|source| JitUnavailable::Verify { source })?;
    // A ring buffer has no values: the code writes only into records it reserved, within
    // the reserved size (checked by the verifier), and the emulation's record area holds
    // the largest record it grants (`ring::MAX_RECORD`).
    let has_values = |m: &&MapDef| m.map_type != MapType::RINGBUF;
    if let Some(map) = object.maps.iter().filter(has_values).find(|m| i64::from(m.value_size) < MAP_VALUE_SIZE) {
        return Err(JitUnavailable::SmallMapValue { map: map.name.clone(), value_size: map.value_size });
    }
    for (insn, instruction) in program.insns.iter().enumerate() {
        let what = match instruction {
            Insn::Alu32 { op: pfc_compiler::bpf::AluOp::Mov, src: Operand::Reg(_), .. } => "mov32 from a register",
            Insn::Endian { order: ByteOrder::Little, width: EndianWidth::W16 | EndianWidth::W32, .. } => "le16/le32",
            _ => continue,
        };
        return Err(JitUnavailable::Divergent { insn, what });
    }
    Ok(())
}

/// The JIT's helpers: `(helper id, trampoline address)`, as rbpf's `Helper` type.
#[cfg(target_arch = "x86_64")]
pub(crate) fn helpers() -> [(u32, rbpf::ebpf::Helper); 10] {
    extern "C" {
        fn pfc_runtime_jit_ktime_get_ns();
        fn pfc_runtime_jit_map_lookup();
        fn pfc_runtime_jit_map_update();
        fn pfc_runtime_jit_map_delete();
        fn pfc_runtime_jit_smp_processor_id();
        fn pfc_runtime_jit_ringbuf_reserve();
        fn pfc_runtime_jit_ringbuf_submit();
        fn pfc_runtime_jit_ringbuf_discard();
        fn pfc_runtime_jit_load_bytes();
    }
    let as_helper = |trampoline: unsafe extern "C" fn()| {
        // SAFETY: rbpf's JIT only takes the helper's address (`*helper as usize`) and emits
        // `call` to it with the eBPF arguments in rdi, rsi, rdx, rcx, r8 (System V order);
        // this value is never called from Rust (the interpreter's VM registers the Rust
        // helpers instead). Both are plain code pointers of the same size.
        unsafe { std::mem::transmute::<unsafe extern "C" fn(), rbpf::ebpf::Helper>(trampoline) }
    };
    [
        (super::maps::HELPER_MAP_LOOKUP, as_helper(pfc_runtime_jit_map_lookup)),
        (super::maps::HELPER_KTIME_GET_NS, as_helper(pfc_runtime_jit_ktime_get_ns)),
        (super::maps::HELPER_MAP_UPDATE, as_helper(pfc_runtime_jit_map_update)),
        (super::maps::HELPER_MAP_DELETE, as_helper(pfc_runtime_jit_map_delete)),
        (super::maps::HELPER_GET_SMP_PROCESSOR_ID, as_helper(pfc_runtime_jit_smp_processor_id)),
        (super::ring::HELPER_RINGBUF_RESERVE, as_helper(pfc_runtime_jit_ringbuf_reserve)),
        (super::ring::HELPER_RINGBUF_SUBMIT, as_helper(pfc_runtime_jit_ringbuf_submit)),
        (super::ring::HELPER_RINGBUF_DISCARD, as_helper(pfc_runtime_jit_ringbuf_discard)),
        (super::ring::HELPER_SKB_LOAD_BYTES, as_helper(pfc_runtime_jit_load_bytes)),
        (super::ring::HELPER_XDP_LOAD_BYTES, as_helper(pfc_runtime_jit_load_bytes)),
    ]
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn helpers() -> [(u32, rbpf::ebpf::Helper); 0] {
    []
}

extern "C" fn map_lookup(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::maps::helper_map_lookup(a, b, c, d, e)
}

extern "C" fn map_update(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::maps::helper_map_update(a, b, c, d, e)
}

extern "C" fn map_delete(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::maps::helper_map_delete(a, b, c, d, e)
}

extern "C" fn ktime_get_ns(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::maps::helper_ktime_get_ns(a, b, c, d, e)
}

extern "C" fn smp_processor_id(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::maps::helper_get_smp_processor_id(a, b, c, d, e)
}

extern "C" fn ringbuf_reserve(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::ring::helper_ringbuf_reserve(a, b, c, d, e)
}

extern "C" fn ringbuf_submit(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::ring::helper_ringbuf_submit(a, b, c, d, e)
}

extern "C" fn ringbuf_discard(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::ring::helper_ringbuf_discard(a, b, c, d, e)
}

extern "C" fn load_bytes(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    super::ring::helper_load_bytes(a, b, c, d, e)
}

// Each trampoline saves rbp (callee-saved, and the JIT's r10), aligns rsp down to 16,
// calls the `extern "C"` helper with the argument registers untouched, and restores both.
// rbx, r13–r15 (the JIT's r6–r9) are callee-saved, so the helper preserves them.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.pfc_runtime_jit_trampolines,\"ax\",@progbits",
    ".p2align 4",
    ".globl pfc_runtime_jit_map_lookup",
    ".hidden pfc_runtime_jit_map_lookup",
    "pfc_runtime_jit_map_lookup:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {lookup}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_map_update",
    ".hidden pfc_runtime_jit_map_update",
    "pfc_runtime_jit_map_update:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {update}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_map_delete",
    ".hidden pfc_runtime_jit_map_delete",
    "pfc_runtime_jit_map_delete:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {delete}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_smp_processor_id",
    ".hidden pfc_runtime_jit_smp_processor_id",
    "pfc_runtime_jit_smp_processor_id:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {cpu}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_ktime_get_ns",
    ".hidden pfc_runtime_jit_ktime_get_ns",
    "pfc_runtime_jit_ktime_get_ns:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {ktime}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_ringbuf_reserve",
    ".hidden pfc_runtime_jit_ringbuf_reserve",
    "pfc_runtime_jit_ringbuf_reserve:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {reserve}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_ringbuf_submit",
    ".hidden pfc_runtime_jit_ringbuf_submit",
    "pfc_runtime_jit_ringbuf_submit:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {submit}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_ringbuf_discard",
    ".hidden pfc_runtime_jit_ringbuf_discard",
    "pfc_runtime_jit_ringbuf_discard:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {discard}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl pfc_runtime_jit_load_bytes",
    ".hidden pfc_runtime_jit_load_bytes",
    "pfc_runtime_jit_load_bytes:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {load_bytes}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".popsection",
    lookup = sym map_lookup,
    update = sym map_update,
    delete = sym map_delete,
    cpu = sym smp_processor_id,
    ktime = sym ktime_get_ns,
    reserve = sym ringbuf_reserve,
    submit = sym ringbuf_submit,
    discard = sym ringbuf_discard,
    load_bytes = sym load_bytes,
);
