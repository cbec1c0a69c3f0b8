//! Map entries through the kernel, for dynamic sets: a map id in, its keys read
//! (`BPF_MAP_LOOKUP_BATCH`), written (`BPF_MAP_UPDATE_BATCH`), deleted
//! (`BPF_MAP_DELETE_BATCH`) or one value looked up out; each batch operation falls back to
//! one call per key where the kernel has none for the map type. Used by
//! [`super::live::LiveSys`].

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use libbpf_rs::libbpf_sys as sys;

use super::live::{check, map_by_id, map_info, prog_by_id};
use super::Existing;

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

/// The kernel's ENOTSUPP (not in libc): what a map type without a batch operation answers.
const ENOTSUPP: i32 = 524;

/// Whether a batch call failed because the map type has no such batch operation.
fn no_batch(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP))
}

/// The map `map_id` and its key and value sizes, with `keys` checked to be whole keys.
fn open_for_keys(map_id: u32, keys: &[u8]) -> io::Result<(OwnedFd, usize, usize)> {
    let map = map_by_id(map_id)?;
    let info = map_info(&map)?;
    let (key_size, value_size) = (info.key_size as usize, info.value_size as usize);
    if key_size == 0 || keys.len() % key_size != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "keys of another size than the map's"));
    }
    Ok((map, key_size, value_size))
}

/// Writes `keys` (back to back), each with `value`, into map `map_id`: one
/// `BPF_MAP_UPDATE_BATCH` call per chunk, one update per key where the kernel has no batch
/// update for the map type, and always one update per key with [`Existing::Keep`]
/// (`BPF_NOEXIST`: batch updates take no such flag), where `EEXIST` skips the key.
/// Returns how many keys were written.
pub(super) fn write_entries(map_id: u32, keys: &[u8], value: &[u8], existing: Existing) -> io::Result<usize> {
    let (map, key_size, value_size) = open_for_keys(map_id, keys)?;
    if value.len() != value_size {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a value of another size than the map's"));
    }
    let flags = match existing {
        Existing::Overwrite => u64::from(sys::BPF_ANY),
        Existing::Keep => u64::from(sys::BPF_NOEXIST),
    };
    let total = keys.len() / key_size;
    let values: Vec<u8> = value.repeat(total.min(BATCH));
    let (mut at, mut written, mut batch) = (0, 0, existing == Existing::Overwrite);
    while at < total {
        let key = &keys[at * key_size..];
        if !batch {
            // SAFETY: `key` starts with a whole key and `value` has the map's value size.
            let rc =
                unsafe { sys::bpf_map_update_elem(map.as_raw_fd(), key.as_ptr().cast(), value.as_ptr().cast(), flags) };
            match rc {
                0 => written += 1,
                rc if -rc == libc::EEXIST && existing == Existing::Keep => {}
                rc => return Err(io::Error::from_raw_os_error(-rc)),
            }
            at += 1;
            continue;
        }
        let chunk = (total - at).min(BATCH);
        let mut count = chunk as u32;
        let opts = batch_opts(flags);
        // SAFETY: `key` holds at least `count` keys and `values` at least `count` values
        // of the map's sizes.
        let rc = unsafe {
            sys::bpf_map_update_batch(map.as_raw_fd(), key.as_ptr().cast(), values.as_ptr().cast(), &mut count, &opts)
        };
        let error = (rc < 0).then(|| io::Error::from_raw_os_error(-rc));
        if error.as_ref().is_some_and(no_batch) {
            // Refused before the first key (the kernel left `count` as it was): one by one.
            batch = false;
            continue;
        }
        // The kernel sets `count` to the keys written before the one that failed.
        let done = (count as usize).min(chunk);
        written += done;
        at += done;
        if let Some(error) = error {
            return Err(error);
        }
    }
    Ok(written)
}

/// Writes `values` (back to back) into the array map `map_id` for keys 0, 1, …: one
/// `BPF_MAP_UPDATE_BATCH` call per chunk, one update per key where the kernel has none.
/// Returns how many values were written.
pub(super) fn write_values(map_id: u32, values: &[u8]) -> io::Result<usize> {
    let map = map_by_id(map_id)?;
    let info = map_info(&map)?;
    let value_size = info.value_size as usize;
    if info.key_size != 4 || value_size == 0 || values.len() % value_size != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "values of another size than the array's"));
    }
    let total = values.len() / value_size;
    let (mut at, mut batch) = (0, true);
    while at < total {
        if !batch {
            let key = (at as u32).to_le_bytes();
            let value = &values[at * value_size..];
            // SAFETY: `key` is a u32 key and `value` starts with a whole value.
            let rc =
                unsafe { sys::bpf_map_update_elem(map.as_raw_fd(), key.as_ptr().cast(), value.as_ptr().cast(), 0) };
            if rc < 0 {
                return Err(io::Error::from_raw_os_error(-rc));
            }
            at += 1;
            continue;
        }
        let chunk = (total - at).min(BATCH);
        let keys: Vec<u8> = (at as u32..(at + chunk) as u32).flat_map(u32::to_le_bytes).collect();
        let mut count = chunk as u32;
        let opts = batch_opts(u64::from(sys::BPF_ANY));
        // SAFETY: `keys` holds `count` u32 keys and `values` from `at` at least `count`
        // values of the map's size.
        let rc = unsafe {
            sys::bpf_map_update_batch(
                map.as_raw_fd(),
                keys.as_ptr().cast(),
                values[at * value_size..].as_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        let error = (rc < 0).then(|| io::Error::from_raw_os_error(-rc));
        if error.as_ref().is_some_and(no_batch) {
            batch = false;
            continue;
        }
        at += (count as usize).min(chunk);
        if let Some(error) = error {
            return Err(error);
        }
    }
    Ok(total)
}

/// The options of one batch call: libbpf's defaults with `elem_flags`.
fn batch_opts(elem_flags: u64) -> sys::bpf_map_batch_opts {
    // SAFETY: an all-zero bpf_map_batch_opts with its size set is the default.
    let mut opts: sys::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_map_batch_opts>() as _;
    opts.elem_flags = elem_flags;
    opts
}

/// Deletes `keys` (back to back) from map `map_id`, in `BPF_MAP_DELETE_BATCH` chunks (one
/// delete per key where the kernel has no batch delete); a key the map does not hold
/// stops a batch with `ENOENT` at its index, and the batch goes on after it. Returns how
/// many keys were there.
pub(super) fn delete_keys(map_id: u32, keys: &[u8]) -> io::Result<usize> {
    let (map, key_size, _) = open_for_keys(map_id, keys)?;
    let total = keys.len() / key_size;
    let (mut at, mut deleted, mut batch) = (0, 0, true);
    while at < total {
        let key = &keys[at * key_size..];
        if !batch {
            // SAFETY: `key` starts with a whole key of the map's key size.
            let rc = unsafe { sys::bpf_map_delete_elem(map.as_raw_fd(), key.as_ptr().cast()) };
            match rc {
                0 => deleted += 1,
                rc if -rc == libc::ENOENT => {}
                rc => return Err(io::Error::from_raw_os_error(-rc)),
            }
            at += 1;
            continue;
        }
        let chunk = (total - at).min(BATCH);
        let mut count = chunk as u32;
        let opts = batch_opts(0);
        // SAFETY: `key` holds at least `count` keys of the map's key size.
        let rc = unsafe { sys::bpf_map_delete_batch(map.as_raw_fd(), key.as_ptr().cast(), &mut count, &opts) };
        let error = (rc < 0).then(|| io::Error::from_raw_os_error(-rc));
        if error.as_ref().is_some_and(no_batch) {
            // Refused before the first key (a key of the map's size never makes a delete
            // fail with these): the kernel left `count` as it was. One by one.
            batch = false;
            continue;
        }
        // The kernel sets `count` to the keys deleted before the one that failed.
        let done = (count as usize).min(chunk);
        deleted += done;
        at += done;
        match error {
            None => {}
            Some(error) if error.raw_os_error() == Some(libc::ENOENT) => at += 1,
            Some(error) => return Err(error),
        }
    }
    Ok(deleted)
}

/// The value of `key` in map `map_id`, if it holds it.
pub(super) fn lookup(map_id: u32, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let (map, _, value_size) = open_for_keys(map_id, key)?;
    let mut value = vec![0u8; value_size];
    // SAFETY: `key` is one key (checked) and `value` has the map's value size.
    let rc = unsafe { sys::bpf_map_lookup_elem(map.as_raw_fd(), key.as_ptr().cast(), value.as_mut_ptr().cast()) };
    match rc {
        0 => Ok(Some(value)),
        rc if -rc == libc::ENOENT => Ok(None),
        rc => Err(io::Error::from_raw_os_error(-rc)),
    }
}

/// Every key of map `map_id`, back to back: `BPF_MAP_LOOKUP_BATCH` in chunks, or one
/// `BPF_MAP_GET_NEXT_KEY` per key where the kernel has no batch lookup for the map type.
pub(super) fn read_keys(map_id: u32) -> io::Result<Vec<u8>> {
    let map = map_by_id(map_id)?;
    let info = map_info(&map)?;
    let (key_size, value_size) = (info.key_size as usize, info.value_size as usize);
    let chunk = BATCH.min(info.max_entries.max(1) as usize);
    let mut keys = Vec::new();
    let mut chunk_keys = vec![0u8; chunk * key_size];
    let mut chunk_values = vec![0u8; chunk * value_size];
    // The batch position: a key for most map types, a bucket number (u32) for hashes.
    let token = key_size.max(8);
    let (mut in_batch, mut out_batch) = (vec![0u8; token], vec![0u8; token]);
    let mut first = true;
    loop {
        let mut count = chunk as u32;
        let opts = batch_opts(0);
        let start = if first { std::ptr::null_mut() } else { in_batch.as_mut_ptr().cast() };
        // SAFETY: the batch tokens have room for a key; the key and value buffers for
        // `count` keys and values of the map's sizes.
        let rc = unsafe {
            sys::bpf_map_lookup_batch(
                map.as_raw_fd(),
                start,
                out_batch.as_mut_ptr().cast(),
                chunk_keys.as_mut_ptr().cast(),
                chunk_values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        let error = (rc < 0).then(|| io::Error::from_raw_os_error(-rc));
        if error.as_ref().is_some_and(no_batch) && first {
            return read_keys_one_by_one(&map, key_size, info.max_entries as usize);
        }
        let count = (count as usize).min(chunk);
        keys.extend_from_slice(&chunk_keys[..count * key_size]);
        match error {
            None => {}
            Some(error) if error.raw_os_error() == Some(libc::ENOENT) => return Ok(keys),
            Some(error) => return Err(error),
        }
        std::mem::swap(&mut in_batch, &mut out_batch);
        first = false;
    }
}

/// Every key of `map`, one `BPF_MAP_GET_NEXT_KEY` at a time (at most `max_entries`: a key
/// deleted meanwhile would start the walk again).
fn read_keys_one_by_one(map: &OwnedFd, key_size: usize, max_entries: usize) -> io::Result<Vec<u8>> {
    let mut keys: Vec<u8> = Vec::new();
    let mut next = vec![0u8; key_size];
    loop {
        if keys.len() / key_size > max_entries {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "the map changed while it was read"));
        }
        let previous = if keys.is_empty() { std::ptr::null() } else { keys[keys.len() - key_size..].as_ptr().cast() };
        // SAFETY: `previous` is null or a key of the map's size; `next` has room for one.
        let rc = unsafe { sys::bpf_map_get_next_key(map.as_raw_fd(), previous, next.as_mut_ptr().cast()) };
        match rc {
            0 => keys.extend_from_slice(&next),
            rc if -rc == libc::ENOENT => return Ok(keys),
            rc => return Err(io::Error::from_raw_os_error(-rc)),
        }
    }
}
