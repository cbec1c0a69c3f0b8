//! The real [`BpfSys`]: bpffs pins, bpf_link create/update/detach (XDP and TCX links),
//! XDP queries and per-CPU counter maps through libbpf's low-level API, interfaces
//! through `if_nameindex(3)` (so it answers for the caller's network namespace, unlike
//! `/sys/class/net`, which belongs to the namespace sysfs was mounted in).
//!
//! Every call opens the pins it needs and closes them again: the pins, not this process,
//! hold the filter.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libbpf_rs::libbpf_sys as sys;
use pfc_compiler::object::maps::{
    CLASSIFIER_MAP_PREFIX, COUNTER_MAP_NAME, LIMIT_MAP_PREFIX, LOG_MAP_PREFIX, SET_MAP_PREFIX,
};

use super::{AttachError, BpfSys, Counter, Existing, LinkInfo, MapDone, MapInfo, MapJob, ProgInfo};
use crate::kernel::{self, KernelProgram};
use crate::pins::{AttachMode, Hook};

/// The kernel, for real.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveSys;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// A libbpf return code as a result (libbpf returns `-errno`).
pub(super) fn check(rc: i32) -> io::Result<i32> {
    if rc < 0 {
        Err(io::Error::from_raw_os_error(-rc))
    } else {
        Ok(rc)
    }
}

/// `membarrier(2)`'s command that waits for an RCU grace period on every CPU.
const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;

/// Takes ownership of a descriptor a libbpf call returned.
fn owned(rc: i32) -> io::Result<OwnedFd> {
    let fd = check(rc)?;
    // SAFETY: `fd` was just opened for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn prog_by_id(id: u32) -> io::Result<OwnedFd> {
    // SAFETY: a plain id lookup; the kernel returns a new descriptor or -errno.
    owned(unsafe { sys::bpf_prog_get_fd_by_id(id) })
}

pub(super) fn map_by_id(id: u32) -> io::Result<OwnedFd> {
    // SAFETY: a plain id lookup; the kernel returns a new descriptor or -errno.
    owned(unsafe { sys::bpf_map_get_fd_by_id(id) })
}

pub(super) fn map_info(fd: &OwnedFd) -> io::Result<sys::bpf_map_info> {
    // SAFETY: bpf_map_info is plain old data; all zeroes is a valid value.
    let mut info: sys::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is `len` writable bytes and `fd` is a live map descriptor.
    check(unsafe { sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) })?;
    Ok(info)
}

fn pin_fd(fd: &OwnedFd, path: &Path) -> io::Result<()> {
    let name = c_path(path)?;
    // SAFETY: `fd` is live and `name` a NUL-terminated path.
    check(unsafe { sys::bpf_obj_pin(fd.as_raw_fd(), name.as_ptr()) })?;
    Ok(())
}

/// Opens a pinned BPF object.
fn open_pin(path: &Path) -> io::Result<OwnedFd> {
    let name = c_path(path)?;
    // SAFETY: `name` is a NUL-terminated path that outlives the call.
    let fd = check(unsafe { sys::bpf_obj_get(name.as_ptr()) })?;
    // SAFETY: `fd` was just opened for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn link_info(fd: &OwnedFd) -> io::Result<sys::bpf_link_info> {
    // SAFETY: bpf_link_info is plain old data; all zeroes is a valid value.
    let mut info: sys::bpf_link_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is `len` writable bytes and `fd` is a live link descriptor.
    check(unsafe { sys::bpf_link_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) })?;
    Ok(info)
}

/// Per-CPU value slots of a map: (entries, bytes per CPU slot, CPUs).
fn map_shape(fd: &OwnedFd) -> io::Result<(u32, usize, usize)> {
    // SAFETY: bpf_map_info is plain old data; all zeroes is a valid value.
    let mut info: sys::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is `len` writable bytes and `fd` is a live map descriptor.
    check(unsafe { sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) })?;
    // SAFETY: a plain query without arguments.
    let cpus = check(unsafe { sys::libbpf_num_possible_cpus() })? as usize;
    Ok((info.max_entries, (info.value_size as usize).div_ceil(8) * 8, cpus))
}

fn lookup(fd: &OwnedFd, key: u32, slot: usize, cpus: usize) -> io::Result<Vec<u8>> {
    let mut values = vec![0u8; slot * cpus];
    // SAFETY: the key is 4 bytes, `values` holds one slot per possible CPU as the
    // kernel writes for per-CPU maps, and `fd` is a live map descriptor.
    check(unsafe {
        sys::bpf_map_lookup_elem(fd.as_raw_fd(), (&key as *const u32).cast(), values.as_mut_ptr().cast())
    })?;
    Ok(values)
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl BpfSys for LiveSys {
    fn interfaces(&self) -> io::Result<Vec<(String, u32)>> {
        // SAFETY: no arguments; the result is freed below with if_freenameindex.
        let list = unsafe { libc::if_nameindex() };
        if list.is_null() {
            return Err(io::Error::last_os_error());
        }
        let mut found = Vec::new();
        let mut entry = list;
        // SAFETY: the array ends with an entry whose index is 0; names are C strings.
        unsafe {
            while (*entry).if_index != 0 {
                let name = CStr::from_ptr((*entry).if_name).to_string_lossy().into_owned();
                found.push((name, (*entry).if_index));
                entry = entry.add(1);
            }
            libc::if_freenameindex(list);
        }
        Ok(found)
    }

    fn is_bpffs(&self, path: &Path) -> io::Result<bool> {
        let name = c_path(path)?;
        // SAFETY: statfs is plain old data; all zeroes is a valid value.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `name` is NUL-terminated and `fs` writable.
        if unsafe { libc::statfs(name.as_ptr(), &mut fs) } != 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::NotFound { Ok(false) } else { Err(error) };
        }
        Ok(fs.f_type == libc::BPF_FS_MAGIC)
    }

    fn in_init_mount_namespace(&self) -> Option<bool> {
        let own = std::fs::read_link("/proc/self/ns/mnt").ok()?;
        // Init's, or (when /proc/1 is not readable, as in some sandboxes) kthreadd's,
        // which is always init's.
        let init = std::fs::read_link("/proc/1/ns/mnt").or_else(|_| std::fs::read_link("/proc/2/ns/mnt")).ok()?;
        Some(own == init)
    }

    fn may_load(&self) -> io::Result<()> {
        kernel::privileges().map_err(|reason| io::Error::new(io::ErrorKind::PermissionDenied, reason.reason))
    }

    fn mount_bpffs(&self, mount_point: &Path) -> io::Result<()> {
        std::fs::create_dir_all(mount_point)?;
        let target = c_path(mount_point)?;
        // SAFETY: all strings are NUL-terminated and outlive the call; no data argument.
        let rc = unsafe { libc::mount(c"bpf".as_ptr(), target.as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn xdp_program(&self, ifindex: u32) -> io::Result<Option<u32>> {
        // SAFETY: plain old data; all zeroes is valid, `sz` is set below.
        let mut opts: sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of_val(&opts) as _;
        // SAFETY: `opts` is a live, sized options struct.
        check(unsafe { sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) })?;
        Ok([opts.prog_id, opts.drv_prog_id, opts.skb_prog_id, opts.hw_prog_id].into_iter().find(|id| *id != 0))
    }

    fn detach_xdp(&self, ifindex: u32) -> io::Result<()> {
        for flags in [sys::XDP_FLAGS_DRV_MODE, sys::XDP_FLAGS_SKB_MODE, sys::XDP_FLAGS_HW_MODE] {
            if self.xdp_program(ifindex)?.is_none() {
                break;
            }
            // SAFETY: null options mean defaults. A mode with nothing attached fails:
            // the loop tries the next one.
            let _ = unsafe { sys::bpf_xdp_detach(ifindex as i32, flags, std::ptr::null()) };
        }
        match self.xdp_program(ifindex)? {
            None => Ok(()),
            Some(_) => Err(io::Error::from_raw_os_error(libc::EBUSY)),
        }
    }

    fn load_and_pin(&self, object: &[u8], prog_pin: &Path, counters_pin: &Path) -> Result<(), AttachError> {
        let mut program = KernelProgram::load(object).map_err(|source| match kernel::privileges() {
            Err(reason) => AttachError::Privileges {
                action: "loading the program".to_string(),
                source: io::Error::new(io::ErrorKind::PermissionDenied, reason.reason),
            },
            Ok(()) if matches!(source, kernel::KernelError::NeedsKernel66 { .. }) => AttachError::OldKernel { source },
            Ok(()) => AttachError::Verifier { source },
        })?;
        program
            .pin(prog_pin, counters_pin)
            .map_err(|source| AttachError::Pin { path: prog_pin.to_path_buf(), source: io::Error::other(source) })
    }

    fn attach(&self, prog_pin: &Path, ifindex: u32, point: Hook, mode: AttachMode, link_pin: &Path) -> io::Result<()> {
        let program = open_pin(prog_pin)?;
        // SAFETY: plain old data; all zeroes is valid, `sz` is set below.
        let mut opts: sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of_val(&opts) as _;
        let attach_type = match (point, mode) {
            (Hook::Xdp, AttachMode::Native) => {
                opts.flags = sys::XDP_FLAGS_DRV_MODE;
                sys::BPF_XDP
            }
            (Hook::Xdp, _) => {
                opts.flags = sys::XDP_FLAGS_SKB_MODE;
                sys::BPF_XDP
            }
            (Hook::TcIngress, _) => sys::BPF_TCX_INGRESS,
            (Hook::TcEgress, _) => sys::BPF_TCX_EGRESS,
        };
        // SAFETY: `program` is a live program fd, `opts` a live sized options struct.
        let link = check(unsafe { sys::bpf_link_create(program.as_raw_fd(), ifindex as i32, attach_type, &opts) })?;
        // SAFETY: `link` was just opened for us and nothing else owns it.
        let link = unsafe { OwnedFd::from_raw_fd(link) };
        let name = c_path(link_pin)?;
        // SAFETY: `link` is live and `name` a NUL-terminated path. If pinning fails, the
        // link closes with `link` and the program detaches again.
        check(unsafe { sys::bpf_obj_pin(link.as_raw_fd(), name.as_ptr()) })?;
        Ok(())
    }

    fn update_link(&self, link_pin: &Path, new_prog_pin: &Path, old_prog_id: u32) -> io::Result<()> {
        let link = open_pin(link_pin)?;
        let new = open_pin(new_prog_pin)?;
        let old = prog_by_id(old_prog_id)?;
        // SAFETY: plain old data; all zeroes is valid, fields are set below.
        let mut opts: sys::bpf_link_update_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of_val(&opts) as _;
        opts.flags = sys::BPF_F_REPLACE;
        opts.old_prog_fd = old.as_raw_fd() as u32;
        // SAFETY: all three descriptors are live for the call; `opts` is sized.
        check(unsafe { sys::bpf_link_update(link.as_raw_fd(), new.as_raw_fd(), &opts) })?;
        Ok(())
    }

    fn link(&self, link_pin: &Path) -> io::Result<LinkInfo> {
        let info = link_info(&open_pin(link_pin)?)?;
        // SAFETY: the union member read matches the link type the kernel reported.
        let ifindex = unsafe {
            match info.type_ {
                sys::BPF_LINK_TYPE_XDP => info.__bindgen_anon_1.xdp.ifindex,
                sys::BPF_LINK_TYPE_TCX => info.__bindgen_anon_1.tcx.ifindex,
                _ => 0,
            }
        };
        Ok(LinkInfo { id: info.id, prog_id: info.prog_id, ifindex })
    }

    fn detach_link(&self, link_pin: &Path) -> io::Result<()> {
        let link = open_pin(link_pin)?;
        // SAFETY: `link` is a live link descriptor.
        check(unsafe { sys::bpf_link_detach(link.as_raw_fd()) })?;
        Ok(())
    }

    fn prog_id(&self, prog_pin: &Path) -> io::Result<u32> {
        let program = open_pin(prog_pin)?;
        // SAFETY: plain old data; all zeroes is valid.
        let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: `info` is `len` writable bytes with no output buffers requested.
        check(unsafe { sys::bpf_prog_get_info_by_fd(program.as_raw_fd(), &mut info, &mut len) })?;
        Ok(info.id)
    }

    fn map_id(&self, map_pin: &Path) -> io::Result<u32> {
        Ok(map_info(&open_pin(map_pin)?)?.id)
    }

    fn prog(&self, prog_id: u32) -> io::Result<ProgInfo> {
        let (info, maps) = super::live_maps::prog_and_maps(prog_id)?;
        let counters = maps
            .iter()
            .rev()
            .find(|map| super::live_maps::map_name(map).to_bytes() == COUNTER_MAP_NAME.as_bytes())
            .map(|map| MapInfo { id: map.id, entries: map.max_entries });
        Ok(ProgInfo { id: info.id, tag: info.tag, counters })
    }

    fn limit_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        super::live_maps::prog_maps_named(prog_id, LIMIT_MAP_PREFIX.as_bytes())
    }

    fn set_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        super::live_maps::prog_maps_named(prog_id, SET_MAP_PREFIX.as_bytes())
    }

    fn log_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        super::live_maps::prog_maps_named(prog_id, LOG_MAP_PREFIX.as_bytes())
    }

    fn table_maps(&self, prog_id: u32) -> io::Result<Vec<(String, u32)>> {
        super::live_maps::prog_maps_named(prog_id, CLASSIFIER_MAP_PREFIX.as_bytes())
    }

    fn write_values(&self, map_id: u32, values: &[u8]) -> io::Result<usize> {
        super::live_maps::write_values(map_id, values)
    }

    fn write_entries(&self, map_id: u32, keys: &[u8], value: &[u8], existing: Existing) -> io::Result<usize> {
        super::live_maps::write_entries(map_id, keys, value, existing)
    }

    fn delete_keys(&self, map_id: u32, keys: &[u8]) -> io::Result<usize> {
        super::live_maps::delete_keys(map_id, keys)
    }

    fn read_keys(&self, map_id: u32) -> io::Result<Vec<u8>> {
        super::live_maps::read_keys(map_id)
    }

    fn map_jobs(&self, jobs: &[MapJob<'_>]) -> Vec<io::Result<MapDone>> {
        if jobs.len() < 2 {
            return jobs.iter().map(|job| job.run(self)).collect();
        }
        // One thread a job: each works on a map of its own, under that map's lock.
        std::thread::scope(|scope| {
            let running: Vec<_> = jobs.iter().map(|job| scope.spawn(move || job.run(&LiveSys))).collect();
            running
                .into_iter()
                .map(|thread| {
                    thread.join().unwrap_or_else(|_| Err(io::Error::other("a map operation's thread panicked")))
                })
                .collect()
        })
    }

    fn lookup(&self, map_id: u32, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        super::live_maps::lookup(map_id, key)
    }

    fn pin_prog(&self, prog_id: u32, path: &Path) -> io::Result<()> {
        pin_fd(&prog_by_id(prog_id)?, path)
    }

    fn pin_map(&self, map_id: u32, path: &Path) -> io::Result<()> {
        pin_fd(&map_by_id(map_id)?, path)
    }

    fn synchronize(&self) -> io::Result<()> {
        // membarrier(MEMBARRIER_CMD_GLOBAL) is synchronize_rcu(): when it returns, every
        // CPU has left the RCU read-side sections (XDP and TC programs run in them) it was
        // in when the call began, so a program the link dropped before has finished.
        // SAFETY: a plain system call with integer arguments.
        let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0) };
        if rc == 0 {
            return Ok(());
        }
        // nohz_full kernels refuse the command; no other call a user can make waits for
        // a grace period as reliably, so wait well beyond one.
        std::thread::sleep(std::time::Duration::from_millis(100));
        Ok(())
    }

    fn read_counters(&self, map_id: u32) -> io::Result<Vec<Counter>> {
        let map = map_by_id(map_id)?;
        let (entries, slot, cpus) = map_shape(&map)?;
        let mut counters = Vec::with_capacity(entries as usize);
        for key in 0..entries {
            let values = lookup(&map, key, slot, cpus)?;
            let mut counter = Counter::default();
            for cpu in 0..cpus {
                counter.packets = counter.packets.wrapping_add(word(&values, cpu * slot));
                counter.bytes = counter.bytes.wrapping_add(word(&values, cpu * slot + 8));
            }
            counters.push(counter);
        }
        Ok(counters)
    }

    fn copy_map(&self, from_map_id: u32, to_map_id: u32) -> io::Result<usize> {
        let (from, to) = (map_by_id(from_map_id)?, map_by_id(to_map_id)?);
        let (from_info, to_info) = (map_info(&from)?, map_info(&to)?);
        if (from_info.key_size, from_info.value_size) != (to_info.key_size, to_info.value_size) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "maps of different shapes"));
        }
        let mut key = vec![0u8; from_info.key_size as usize];
        let mut next = vec![0u8; from_info.key_size as usize];
        let mut value = vec![0u8; from_info.value_size as usize];
        let mut copied = 0;
        let mut first = true;
        loop {
            let previous = if first { std::ptr::null() } else { key.as_ptr().cast() };
            // SAFETY: `previous` is null or a key of the map's key size, `next` has room
            // for one key, and `from` is a live map descriptor.
            let rc = unsafe { sys::bpf_map_get_next_key(from.as_raw_fd(), previous, next.as_mut_ptr().cast()) };
            if rc < 0 {
                break; // ENOENT: no more keys
            }
            first = false;
            std::mem::swap(&mut key, &mut next);
            // SAFETY: key and value have the map's sizes; `from` is live.
            let found =
                unsafe { sys::bpf_map_lookup_elem(from.as_raw_fd(), key.as_ptr().cast(), value.as_mut_ptr().cast()) };
            if found < 0 {
                continue; // evicted meanwhile
            }
            // SAFETY: key and value have the sizes `to` was checked to have; `to` is live.
            check(unsafe {
                sys::bpf_map_update_elem(
                    to.as_raw_fd(),
                    key.as_ptr().cast(),
                    value.as_ptr().cast(),
                    u64::from(sys::BPF_ANY),
                )
            })?;
            copied += 1;
            if copied >= from_info.max_entries as usize {
                break;
            }
        }
        Ok(copied)
    }

    fn add_counters(&self, map_pin: &Path, additions: &[(u32, Counter)]) -> io::Result<()> {
        let map = open_pin(map_pin)?;
        let (_, slot, cpus) = map_shape(&map)?;
        for (key, amount) in additions {
            let mut values = lookup(&map, *key, slot, cpus)?;
            // CPU 0's slot takes the whole amount: only the sum over CPUs is ever shown.
            let packets = word(&values, 0).wrapping_add(amount.packets);
            let bytes = word(&values, 8).wrapping_add(amount.bytes);
            values[0..8].copy_from_slice(&packets.to_le_bytes());
            values[8..16].copy_from_slice(&bytes.to_le_bytes());
            // SAFETY: key and values have the sizes the map was created with.
            check(unsafe {
                sys::bpf_map_update_elem(
                    map.as_raw_fd(),
                    (key as *const u32).cast(),
                    values.as_ptr().cast(),
                    u64::from(sys::BPF_ANY),
                )
            })?;
        }
        Ok(())
    }
}
