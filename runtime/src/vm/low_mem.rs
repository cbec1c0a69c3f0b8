//! A size in, a zeroed buffer below 4 GiB out: packet memory whose addresses fit the
//! kernel contexts' u32 `data`/`data_end` fields.
//!
//! `struct xdp_md` and `struct __sk_buff` hold packet pointers as u32, and programs read
//! them with 32-bit loads; under rbpf those loads see the host address, so the packet
//! must live where that address fits in 32 bits: `mmap(MAP_32BIT)`.

use std::io;

/// An anonymous read-write mapping in the low 2 GiB, unmapped on drop.
pub(crate) struct LowMemory {
    ptr: *mut u8,
    len: usize,
}

impl LowMemory {
    /// Maps `len` zeroed bytes below 4 GiB.
    pub(crate) fn new(len: usize) -> io::Result<LowMemory> {
        // SAFETY: an anonymous private mapping with no address hint touches no existing
        // memory; the result is checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let memory = LowMemory { ptr: ptr.cast(), len };
        if memory.address().saturating_add(len as u64) > u64::from(u32::MAX) {
            // Dropping unmaps it; this only happens where MAP_32BIT is ignored.
            return Err(io::Error::new(io::ErrorKind::Unsupported, "mmap(MAP_32BIT) returned memory above 4 GiB"));
        }
        Ok(memory)
    }

    /// The first byte's address.
    pub(crate) fn address(&self) -> u64 {
        self.ptr as u64
    }

    /// The whole mapping.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is a live read-write mapping owned by `self` for its
        // whole lifetime, and `&self` prevents a concurrent `bytes_mut`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The whole mapping, mutably.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for LowMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no reference into the
        // mapping can outlive `self`.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

// SAFETY: LowMemory owns its mapping exclusively, like a Box<[u8]>.
unsafe impl Send for LowMemory {}
