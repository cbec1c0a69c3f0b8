//! Map entries through the kernel, for dynamic sets: a map id in, its entries read,
//! written (one `BPF_MAP_UPDATE_BATCH` call per chunk where the map type supports it,
//! else one update per entry) or deleted out. Used by [`super::live::LiveSys`].

use std::ffi::CStr;
use std::io;
use std::os::fd::AsRawFd;

use libbpf_rs::libbpf_sys as sys;

use super::live::{check, map_by_id, map_info, prog_by_id};

/// Entries per `BPF_MAP_UPDATE_BATCH` call.
const BATCH: usize = 65_536;

/// Program `prog_id`'s info and the infos of the maps it uses (a map that went away
/// meanwhile is left out).
pub(super) fn prog_and_maps(prog_id: u32) -> io::Result<(sys::bpf_prog_info, Vec<sys::bpf_map_info>)> {
    let program = prog_by_id(prog_id)?;
    let mut map_ids = [0u32; 64];
    // SAFETY: plain old data; all zeroes is valid.
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_map_ids = map_ids.len() as u32;
    info.map_ids = map_ids.as_mut_ptr() as u64;
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is `len` writable bytes; the one output buffer it names, `map_ids`,
    // holds `nr_map_ids` u32s and outlives the call.
    check(unsafe { sys::bpf_prog_get_info_by_fd(program.as_raw_fd(), &mut info, &mut len) })?;
    // The buffer's address means nothing once this function returns.
    info.map_ids = 0;
    let mut maps = Vec::new();
    for id in map_ids.iter().take(info.nr_map_ids.min(map_ids.len() as u32) as usize) {
        let Ok(map) = map_by_id(*id) else { continue };
        maps.push(map_info(&map)?);
    }
    Ok((info, maps))
}

/// A map's name.
pub(super) fn map_name(map: &sys::bpf_map_info) -> &CStr {
    // SAFETY: the kernel NUL-terminates map names within the array.
    unsafe { CStr::from_ptr(map.name.as_ptr()) }
}

/// The maps of program `prog_id` whose names start with `prefix`: name and id.
pub(super) fn prog_maps_named(prog_id: u32, prefix: &[u8]) -> io::Result<Vec<(String, u32)>> {
    let (_, maps) = prog_and_maps(prog_id)?;
    Ok(maps
        .iter()
        .filter(|map| map_name(map).to_bytes().starts_with(prefix))
        .map(|map| (map_name(map).to_string_lossy().into_owned(), map.id))
        .collect())
}

/// Writes `entries` (key and value of the map's sizes) into map `map_id`.
pub(super) fn write_entries(map_id: u32, entries: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    let map = map_by_id(map_id)?;
    let info = map_info(&map)?;
    let (key_size, value_size) = (info.key_size as usize, info.value_size as usize);
    if entries.iter().any(|(key, value)| key.len() != key_size || value.len() != value_size) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an entry of another size than the map's"));
    }
    for chunk in entries.chunks(BATCH) {
        let keys: Vec<u8> = chunk.iter().flat_map(|(key, _)| key.iter().copied()).collect();
        let values: Vec<u8> = chunk.iter().flat_map(|(_, value)| value.iter().copied()).collect();
        let mut count = chunk.len() as u32;
        // SAFETY: an all-zero bpf_map_batch_opts with its size set is the default.
        let mut opts: sys::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<sys::bpf_map_batch_opts>() as _;
        // SAFETY: `keys` and `values` hold `count` keys and values of the map's sizes.
        let rc = unsafe {
            sys::bpf_map_update_batch(map.as_raw_fd(), keys.as_ptr().cast(), values.as_ptr().cast(), &mut count, &opts)
        };
        if rc == 0 {
            continue;
        }
        let error = io::Error::from_raw_os_error(-rc);
        // Map types without batch updates (LPM tries on many kernels; 524 is the
        // kernel's ENOTSUPP): one at a time, from where the batch stopped.
        if !matches!(error.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP | 524)) {
            return Err(error);
        }
        for (key, value) in &chunk[count as usize..] {
            // SAFETY: key and value have the map's sizes, checked above.
            check(unsafe { sys::bpf_map_update_elem(map.as_raw_fd(), key.as_ptr().cast(), value.as_ptr().cast(), 0) })?;
        }
    }
    Ok(())
}

/// Deletes `keys` from map `map_id`; returns how many were there.
pub(super) fn delete_keys(map_id: u32, keys: &[Vec<u8>]) -> io::Result<usize> {
    let map = map_by_id(map_id)?;
    let mut deleted = 0;
    for key in keys {
        // SAFETY: the key has the map's key size (the callers build it for this map).
        let rc = unsafe { sys::bpf_map_delete_elem(map.as_raw_fd(), key.as_ptr().cast()) };
        match rc {
            0 => deleted += 1,
            rc if -rc == libc::ENOENT => {}
            rc => return Err(io::Error::from_raw_os_error(-rc)),
        }
    }
    Ok(deleted)
}

/// Every entry of map `map_id`, key and value.
pub(super) fn read_entries(map_id: u32) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let map = map_by_id(map_id)?;
    let info = map_info(&map)?;
    let mut key = vec![0u8; info.key_size as usize];
    let mut next = vec![0u8; info.key_size as usize];
    let mut entries = Vec::new();
    let mut first = true;
    loop {
        let previous = if first { std::ptr::null() } else { key.as_ptr().cast() };
        // SAFETY: `previous` is null or a key of the map's size; `next` has room for one.
        let rc = unsafe { sys::bpf_map_get_next_key(map.as_raw_fd(), previous, next.as_mut_ptr().cast()) };
        if rc < 0 {
            break; // ENOENT: no more keys
        }
        first = false;
        std::mem::swap(&mut key, &mut next);
        let mut value = vec![0u8; info.value_size as usize];
        // SAFETY: key and value have the map's sizes.
        let found =
            unsafe { sys::bpf_map_lookup_elem(map.as_raw_fd(), key.as_ptr().cast(), value.as_mut_ptr().cast()) };
        if found == 0 {
            entries.push((key.clone(), value));
        }
    }
    Ok(entries)
}
