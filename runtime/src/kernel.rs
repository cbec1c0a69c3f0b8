//! BPF ELF object bytes in, a program loaded into the kernel out: verifier verdict (with
//! its log), `BPF_PROG_TEST_RUN` return values and timings, and map contents.
//!
//! This is the only module that touches libbpf-rs; its types do not leave it. Errors carry
//! libbpf's failures as `io::Error`s with the whole libbpf context chain as their message.
//! Loading needs root or CAP_BPF (+CAP_NET_ADMIN for XDP/TC); [`privileges`] tells tests
//! whether to skip.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Once;

use libbpf_rs::{MapCore, MapFlags, ObjectBuilder, PrintLevel};
use thiserror::Error;

use pfc_compiler::object::ProgramType;
use pfc_compiler::object::{BpfObject, MapType, ObjectError};

/// Shortest packet `BPF_PROG_TEST_RUN` accepts: an Ethernet header.
pub const MIN_PACKET_LEN: usize = 14;
/// Shortest IPv4 packet `BPF_PROG_TEST_RUN` accepts for TC: it pulls the IPv4 header.
pub const MIN_TC_IPV4_PACKET_LEN: usize = 14 + 20;
/// Shortest IPv6 packet `BPF_PROG_TEST_RUN` accepts for TC: it pulls the IPv6 header.
pub const MIN_TC_IPV6_PACKET_LEN: usize = 14 + 40;

/// The shortest packet like `packet` that `BPF_PROG_TEST_RUN` runs for `program_type`: 14 bytes,
/// and for TC (an skb) also a whole IPv4 or IPv6 header when the ethertype says so
/// (the kernel answers EINVAL otherwise).
pub fn min_test_run_len(program_type: ProgramType, packet: &[u8]) -> usize {
    match (program_type, packet.get(12..14)) {
        (ProgramType::SchedCls, Some([0x08, 0x00])) => MIN_TC_IPV4_PACKET_LEN,
        (ProgramType::SchedCls, Some([0x86, 0xdd])) => MIN_TC_IPV6_PACKET_LEN,
        _ => MIN_PACKET_LEN,
    }
}
/// Bytes `BPF_PROG_TEST_RUN` keeps out of a page for its own use: the headroom in front of
/// the packet (`XDP_PACKET_HEADROOM`, 256, for XDP; `NET_SKB_PAD`, 64, for an skb) and the
/// `skb_shared_info` behind it (320 bytes once aligned, on 64-bit kernels).
const XDP_TEST_RUN_RESERVED: usize = 256 + 320;
const SKB_TEST_RUN_RESERVED: usize = 64 + 320;

/// The longest packet `BPF_PROG_TEST_RUN` hands a `program_type` program whole: what fits
/// one page beside the kernel's reserve (3,520 bytes for XDP and 3,712 for TC with 4 KiB
/// pages). A longer one the kernel refuses for TC (EINVAL) and, for XDP, splits into
/// fragments that a program without XDP fragment support never sees, so its verdict would
/// be on a cut frame. Frames on a real interface have no such limit.
pub fn max_test_run_len(program_type: ProgramType) -> usize {
    // SAFETY: sysconf only reads a system constant.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(4096);
    match program_type {
        ProgramType::SchedCls => page - SKB_TEST_RUN_RESERVED,
        _ => page - XDP_TEST_RUN_RESERVED,
    }
}

/// Verifier-log lines kept in [`KernelError::Load`].
const LOG_TAIL_LINES: usize = 30;

/// What can go wrong loading or running a program in the kernel.
#[derive(Debug, Error)]
pub enum KernelError {
    /// The object could not be parsed.
    #[error("reading the object")]
    Object {
        /// What is wrong with it.
        #[source]
        source: ObjectError,
    },
    /// libbpf could not open the object.
    #[error("libbpf could not open the object")]
    Open {
        /// libbpf's error chain.
        #[source]
        source: io::Error,
    },
    /// The kernel (usually the verifier) refused the program or a map.
    #[error("loading `{program}` into the kernel failed; last libbpf/verifier lines:\n{log}")]
    Load {
        /// The program's name.
        program: String,
        /// The last lines libbpf printed, including the verifier log.
        log: String,
        /// libbpf's error chain.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a program that uses `gotol`, and it is older than 6.6, the
    /// first release that knows the instruction.
    #[error("`{program}` uses `gotol` (the 32-bit jump pfc writes in classifiers of more than about 28,000 instructions), which kernels before 6.6 do not know, and this kernel is {release}: run it on kernel 6.6 or later, or compile with `--classifier table`; last libbpf/verifier lines:\n{log}")]
    NeedsKernel66 {
        /// The program's name.
        program: String,
        /// The running kernel's release (`uname -r`).
        release: String,
        /// The last lines libbpf printed, including the verifier log.
        log: String,
        /// libbpf's error chain.
        #[source]
        source: io::Error,
    },
    /// libbpf finds no program (or several) in the object (cannot happen for an object
    /// pfc wrote).
    #[error("libbpf does not find exactly one program in the object")]
    NoProgram,
    /// The packet is shorter than `BPF_PROG_TEST_RUN` accepts (see [`min_test_run_len`]).
    #[error("packet of {len} bytes is too short for BPF_PROG_TEST_RUN (minimum {min} here)")]
    PacketTooShort {
        /// The packet's length.
        len: usize,
        /// The minimum for this hook and ethertype.
        min: usize,
    },
    /// The packet is longer than `BPF_PROG_TEST_RUN` hands the program whole (see
    /// [`max_test_run_len`]).
    #[error("packet of {len} bytes is longer than BPF_PROG_TEST_RUN hands a program whole (at most {max} here)")]
    PacketTooLong {
        /// The packet's length.
        len: usize,
        /// The maximum for this hook.
        max: usize,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("BPF_PROG_TEST_RUN on a {packet_len}-byte packet failed")]
    TestRun {
        /// The packet's length.
        packet_len: usize,
        /// libbpf's error chain.
        #[source]
        source: io::Error,
    },
    /// No map has this index.
    #[error("no map {map_index}: the object has {map_count}")]
    NoSuchMap {
        /// The index asked for.
        map_index: usize,
        /// How many maps there are.
        map_count: usize,
    },
    /// Reading a map failed.
    #[error("reading map `{map}`")]
    MapRead {
        /// The map's name.
        map: String,
        /// libbpf's error chain.
        #[source]
        source: io::Error,
    },
    /// Writing or deleting a map entry failed.
    #[error("writing map `{map}`")]
    MapWrite {
        /// The map's name.
        map: String,
        /// libbpf's error chain.
        #[source]
        source: io::Error,
    },
    /// Per-CPU values can only be summed as u64 words.
    #[error("map `{map}` has {value_size}-byte values: per-CPU sums need a multiple of 8")]
    NotSummable {
        /// The map's name.
        map: String,
        /// Its value size.
        value_size: u32,
    },
    /// Pinning the program or a map in bpffs failed.
    #[error("pinning at {}", path.display())]
    Pin {
        /// The pin's path.
        path: std::path::PathBuf,
        /// libbpf's error chain.
        #[source]
        source: io::Error,
    },
    /// `BPF_OBJ_GET_INFO_BY_FD` failed.
    #[error("querying program info")]
    ProgInfo {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why kernel tests cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct SkipReason {
    /// A sentence saying why.
    pub reason: String,
}

/// A program and its maps, loaded into the kernel (unloaded on drop).
pub struct KernelProgram {
    info: BpfObject,
    object: libbpf_rs::Object,
}

impl std::fmt::Debug for KernelProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelProgram")
            .field("program", &self.info.program_name)
            .field("program_type", &self.info.program_type)
            .finish_non_exhaustive()
    }
}

/// Whether libbpf opens `elf_bytes` as an object of one program, without loading anything
/// into the kernel (no privileges needed). `pfc load OBJ` asks before anything changes: an
/// object pfc's reader takes but libbpf cannot open is a damaged file, not a pfc bug.
pub fn check_opens(elf_bytes: &[u8]) -> Result<(), KernelError> {
    let (open, _) = with_captured_log(|| ObjectBuilder::default().open_memory(elf_bytes));
    let open = open.map_err(|e| KernelError::Open { source: to_io(&e) })?;
    match open.progs().count() {
        1 => Ok(()),
        _ => Err(KernelError::NoProgram),
    }
}

impl KernelProgram {
    /// Opens and loads an object with libbpf. On failure the error holds the verifier log.
    pub fn load(elf_bytes: &[u8]) -> Result<KernelProgram, KernelError> {
        let info = BpfObject::parse(elf_bytes).map_err(|source| KernelError::Object { source })?;
        // libbpf's notes while opening go into the
        // log, not onto the user's terminal.
        let (open, open_log) = with_captured_log(|| ObjectBuilder::default().open_memory(elf_bytes));
        let open = open.map_err(|e| KernelError::Open { source: to_io(&e) })?;
        let (loaded, load_log) = with_captured_log(|| open.load());
        let log = open_log + &load_log;
        let object = loaded.map_err(|e| {
            let (program, log, source) = (info.program_name.clone(), tail(&log, LOG_TAIL_LINES), to_io(&e));
            match release_before_6_6() {
                Some(release) if uses_gotol(&info.code) => KernelError::NeedsKernel66 { program, release, log, source },
                _ => KernelError::Load { program, log, source },
            }
        })?;
        Ok(KernelProgram { info, object })
    }

    /// The parsed object this program was loaded from.
    pub fn object(&self) -> &BpfObject {
        &self.info
    }

    fn program(&self) -> Result<libbpf_rs::ProgramMut<'_>, KernelError> {
        // `progs_mut` takes `&self`: test_run lives on the mutable view only.
        self.object.progs_mut().next().ok_or(KernelError::NoProgram)
    }

    fn run(&self, packet: &[u8], repeat: u32) -> Result<(u32, u64), KernelError> {
        let min = min_test_run_len(self.info.program_type, packet);
        if packet.len() < min {
            return Err(KernelError::PacketTooShort { len: packet.len(), min });
        }
        let max = max_test_run_len(self.info.program_type);
        if packet.len() > max {
            return Err(KernelError::PacketTooLong { len: packet.len(), max });
        }
        let program = self.program()?;
        let input = libbpf_rs::ProgramInput { data_in: Some(packet), repeat, ..Default::default() };
        let output = program
            .test_run(input)
            .map_err(|e| KernelError::TestRun { packet_len: packet.len(), source: to_io(&e) })?;
        let ns = u64::try_from(output.duration.as_nanos()).unwrap_or(u64::MAX);
        Ok((output.return_value, ns))
    }

    /// Runs the program once on `packet` with `BPF_PROG_TEST_RUN`; returns its return value.
    pub fn test_run(&self, packet: &[u8]) -> Result<u32, KernelError> {
        Ok(self.run(packet, 1)?.0)
    }

    /// Runs the program `repeat` times on `packet`; returns the kernel's average
    /// nanoseconds per run.
    pub fn bench(&self, packet: &[u8], repeat: u32) -> Result<u64, KernelError> {
        Ok(self.run(packet, repeat)?.1)
    }

    /// Instructions after the verifier's rewrites (what `bpftool prog show` calls xlated).
    pub fn xlated_insn_count(&self) -> Result<usize, KernelError> {
        Ok(self.info()?.xlated_prog_len as usize / 8)
    }

    /// Instructions the kernel verifier processed to accept the program (its
    /// `processed N insns`, budget 1,000,000), from the program's info.
    pub fn verified_insn_count(&self) -> Result<usize, KernelError> {
        Ok(self.info()?.verified_insns as usize)
    }

    fn info(&self) -> Result<libbpf_rs::libbpf_sys::bpf_prog_info, KernelError> {
        let program = self.program()?;
        let fd = program.as_fd().as_raw_fd();
        let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: `info` is a zeroed bpf_prog_info of `len` bytes with no output buffers
        // requested (all pointer fields 0), and `fd` is a live program fd borrowed from
        // `self` for the duration of the call.
        let rc = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        if rc < 0 {
            return Err(KernelError::ProgInfo { source: io::Error::from_raw_os_error(-rc) });
        }
        Ok(info)
    }

    /// The values of map `map_index`: arrays by key (0, 1, 2, …, as numbers), hash maps
    /// in key order (as byte strings, like [`crate::vm::Vm::map_values`]). Per-CPU
    /// values are summed over CPUs as little-endian u64 words (counters), so they compare
    /// directly with the one-CPU values of [`crate::vm::Vm::map_values`].
    pub fn map_values(&self, map_index: usize) -> Result<Vec<Vec<u8>>, KernelError> {
        let def = self
            .info
            .maps
            .get(map_index)
            .ok_or(KernelError::NoSuchMap { map_index, map_count: self.info.maps.len() })?;
        let map = self
            .object
            .maps()
            .find(|m| m.name() == def.name.as_str())
            .ok_or(KernelError::NoSuchMap { map_index, map_count: self.info.maps.len() })?;
        let read_err = |e: libbpf_rs::Error| KernelError::MapRead { map: def.name.clone(), source: to_io(&e) };
        // Array keys are generated in numeric order and must stay in it: sorted as byte
        // strings, the little-endian key of 256 (`00 01 00 00`) would come before 1.
        let keys: Vec<Vec<u8>> = match def.map_type {
            MapType::ARRAY | MapType::PERCPU_ARRAY => (0..def.max_entries).map(|i| i.to_le_bytes().to_vec()).collect(),
            _ => {
                let mut keys: Vec<Vec<u8>> = map.keys().collect();
                keys.sort();
                keys
            }
        };
        let per_cpu = def.map_type.is_per_cpu();
        if per_cpu && def.value_size % 8 != 0 {
            return Err(KernelError::NotSummable { map: def.name.clone(), value_size: def.value_size });
        }
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            let value = if per_cpu {
                map.lookup_percpu(&key, MapFlags::ANY)
                    .map_err(read_err)?
                    .map(|cpus| sum_u64_words(&cpus, def.value_size as usize))
            } else {
                map.lookup(&key, MapFlags::ANY).map_err(read_err)?
            };
            if let Some(value) = value {
                values.push(value);
            }
        }
        Ok(values)
    }

    /// Sets one entry of map `map_index` (`BPF_ANY`).
    pub fn map_update(&self, map_index: usize, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
        let (name, map) = self.map_by_index(map_index)?;
        map.update(key, value, MapFlags::ANY)
            .map_err(|e| KernelError::MapWrite { map: name.to_string(), source: to_io(&e) })
    }

    /// Sets many entries of map `map_index` in one `BPF_MAP_UPDATE_BATCH` call: `keys`
    /// and `values` are `count` keys and values of the map's sizes, back to back.
    pub fn map_update_batch(
        &self,
        map_index: usize,
        keys: &[u8],
        values: &[u8],
        count: u32,
    ) -> Result<(), KernelError> {
        let (name, map) = self.map_by_index(map_index)?;
        map.update_batch(keys, values, count, MapFlags::ANY, MapFlags::ANY)
            .map_err(|e| KernelError::MapWrite { map: name.to_string(), source: to_io(&e) })
    }

    /// The kernel's id of map `map_index` (for [`crate::attach::BpfSys`] calls by id).
    pub fn map_id(&self, map_index: usize) -> Result<u32, KernelError> {
        let (name, map) = self.map_by_index(map_index)?;
        map.info()
            .map(|info| info.info.id)
            .map_err(|e| KernelError::MapRead { map: name.to_string(), source: to_io(&e) })
    }

    /// Removes one entry of map `map_index`.
    pub fn map_delete(&self, map_index: usize, key: &[u8]) -> Result<(), KernelError> {
        let (name, map) = self.map_by_index(map_index)?;
        map.delete(key).map_err(|e| KernelError::MapWrite { map: name.to_string(), source: to_io(&e) })
    }

    fn map_by_index(&self, map_index: usize) -> Result<(&str, libbpf_rs::Map<'_>), KernelError> {
        let missing = KernelError::NoSuchMap { map_index, map_count: self.info.maps.len() };
        let def = self.info.maps.get(map_index).ok_or(missing)?;
        let map = self
            .object
            .maps()
            .find(|m| m.name() == def.name.as_str())
            .ok_or(KernelError::NoSuchMap { map_index, map_count: self.info.maps.len() })?;
        Ok((def.name.as_str(), map))
    }

    /// The program's type.
    pub fn program_type(&self) -> ProgramType {
        self.info.program_type
    }

    /// The records the program wrote to its ring buffer since the last call, in order
    /// (empty when it has none): read with libbpf's ring buffer consumer, without waiting.
    pub fn take_events(&self) -> Result<Vec<Vec<u8>>, KernelError> {
        let Some(def) = self.info.maps.iter().find(|def| def.map_type == MapType::RINGBUF) else {
            return Ok(Vec::new());
        };
        let map = self
            .object
            .maps()
            .find(|m| m.name() == def.name.as_str())
            .ok_or(KernelError::NoSuchMap { map_index: 0, map_count: self.info.maps.len() })?;
        let read_err = |e: libbpf_rs::Error| KernelError::MapRead { map: def.name.clone(), source: to_io(&e) };
        let events = std::cell::RefCell::new(Vec::new());
        let mut builder = libbpf_rs::RingBufferBuilder::new();
        builder
            .add(&map, |record: &[u8]| {
                events.borrow_mut().push(record.to_vec());
                0
            })
            .map_err(read_err)?;
        let ring = builder.build().map_err(read_err)?;
        ring.consume().map_err(read_err)?;
        drop(ring);
        Ok(events.into_inner())
    }

    /// Pins the program at `prog_pin` and its first map (pfc's counter map) at `map_pin`
    /// in bpffs, so they outlive this process (`pfc load`).
    pub(crate) fn pin(&mut self, prog_pin: &std::path::Path, map_pin: &std::path::Path) -> Result<(), KernelError> {
        let pin_err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |e: libbpf_rs::Error| KernelError::Pin { path, source: to_io(&e) }
        };
        let mut program = self.object.progs_mut().next().ok_or(KernelError::NoProgram)?;
        program.pin(prog_pin).map_err(pin_err(prog_pin))?;
        let mut map = self.object.maps_mut().next().ok_or(KernelError::NoSuchMap { map_index: 0, map_count: 0 })?;
        map.pin(map_pin).map_err(pin_err(map_pin))
    }
}

/// Adds up per-CPU values word by word.
fn sum_u64_words(cpus: &[Vec<u8>], value_size: usize) -> Vec<u8> {
    let mut sums = vec![0u64; value_size / 8];
    for value in cpus {
        for (sum, word) in sums.iter_mut().zip(value.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            *sum = sum.wrapping_add(u64::from_le_bytes(bytes));
        }
    }
    sums.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Whether this process can load BPF programs, by loading `r0 = 2; exit` as XDP.
pub fn privileges() -> Result<(), SkipReason> {
    use libbpf_rs::libbpf_sys::{bpf_insn, bpf_prog_load, BPF_PROG_TYPE_XDP};
    use pfc_compiler::bpf::opcode::{alu, CLASS_ALU64, EXIT, SRC_K};
    let insns = [
        // mov64 r0, 2
        bpf_insn { code: CLASS_ALU64 | alu::MOV | SRC_K, imm: 2, ..Default::default() },
        bpf_insn { code: EXIT, ..Default::default() },
    ];
    // SAFETY: the name and license are NUL-terminated literals, `insns` is a live array
    // of `insns.len()` instructions, and a null opts pointer means defaults.
    let fd = unsafe {
        bpf_prog_load(
            BPF_PROG_TYPE_XDP,
            c"pfc_probe".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    if fd < 0 {
        let error = io::Error::from_raw_os_error(-fd);
        return Err(SkipReason {
            reason: format!("cannot load BPF programs ({error}); run as root or grant CAP_BPF+CAP_NET_ADMIN"),
        });
    }
    // SAFETY: `fd` is a descriptor bpf_prog_load just opened for us and nothing else owns.
    unsafe { libc::close(fd) };
    Ok(())
}

/// libbpf's error as an `io::Error`: the OS error kind when there is one, the whole
/// context chain as the message.
pub(crate) fn to_io(error: &libbpf_rs::Error) -> io::Error {
    let mut message = error.to_string();
    let mut kind = io::ErrorKind::Other;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        if let Some(io_error) = cause.downcast_ref::<io::Error>() {
            kind = io_error.kind();
        }
        source = cause.source();
    }
    io::Error::new(kind, message)
}

thread_local! {
    /// libbpf's messages on this thread while `with_captured_log` runs.
    static CAPTURED: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn capture_print(_level: PrintLevel, message: String) {
    CAPTURED.with(|c| {
        if let Some(log) = c.borrow_mut().as_mut() {
            log.push_str(&message);
        }
    });
}

/// Runs `f` with libbpf's messages (warnings and info, which include the verifier log)
/// collected instead of printed.
fn with_captured_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        libbpf_rs::set_print(Some((PrintLevel::Info, capture_print)));
    });
    let previous = CAPTURED.with(|c| c.replace(Some(String::new())));
    let result = f();
    let log = CAPTURED.with(|c| c.replace(previous)).unwrap_or_default();
    (result, log)
}

/// Whether `code` holds a `gotol` (`BPF_JMP32 | BPF_JA`, opcode 0x06; the second slot of
/// an `lddw` has opcode 0, so reading every slot's first byte is exact).
fn uses_gotol(code: &[u8]) -> bool {
    code.chunks_exact(8).any(|slot| slot[0] == pfc_compiler::bpf::opcode::JA32)
}

/// The running kernel's release when it is older than 6.6 (which added `gotol`); `None`
/// for 6.6 and later, or when the release cannot be read. Asked only after a refusal, so
/// a kernel that has `gotol` backported is never turned away for its number.
fn release_before_6_6() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim().to_string();
    is_before_6_6(&release)?.then_some(release)
}

/// Whether a kernel release (`6.1.0-28-amd64`) is older than 6.6; `None` if it does not
/// start with two numbers.
fn is_before_6_6(release: &str) -> Option<bool> {
    let mut numbers = release.split(|c: char| !c.is_ascii_digit()).map(str::parse::<u32>);
    let (major, minor) = (numbers.next()?.ok()?, numbers.next()?.ok()?);
    Some((major, minor) < (6, 6))
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gotol_is_found_by_its_opcode_and_lddw_halves_are_not_it() {
        let goto = [0x05, 0, 1, 0, 0, 0, 0, 0];
        let gotol = [0x06, 0, 0, 0, 1, 0, 0, 0];
        let lddw = [0x18, 0x01, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0];
        assert!(!uses_gotol(&[goto, goto].concat()));
        assert!(!uses_gotol(&lddw));
        assert!(uses_gotol(&[&lddw[..], &gotol[..]].concat()));
    }

    #[test]
    fn releases_before_6_6_are_told_apart() {
        assert_eq!(is_before_6_6("6.1.0-28-amd64"), Some(true));
        assert_eq!(is_before_6_6("5.15.0"), Some(true));
        assert_eq!(is_before_6_6("6.6.0"), Some(false));
        assert_eq!(is_before_6_6("6.18.2-arch1"), Some(false));
        assert_eq!(is_before_6_6("7.0"), Some(false));
        assert_eq!(is_before_6_6("weird"), None);
    }
}
