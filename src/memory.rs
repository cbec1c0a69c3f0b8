//! The C allocator's settings for one large compile: the heap is grown once, up front,
//! and backed by transparent huge pages where the system allows them (madvise mode).
//!
//! Why: at 10,000 rules a compile touches ~90 MB of fresh memory (AST, IR node table,
//! the classifier plan, the code, the verifier's states), and with glibc's defaults that
//! is ~24,000 minor page faults, 4 KB at a time — 45 ms of system time on a quiet machine
//! of this kind and 80–110 ms on a busy one, about a fifth of the whole compile. glibc
//! can do this on its own (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`), but only from the
//! environment, which the process cannot choose; so `pfc compile` does the same by hand:
//! all threads share the main heap (`M_ARENA_MAX` 1: the parse and verifier threads
//! would otherwise allocate from heaps of their own, on small pages), large blocks come
//! from that heap instead of `mmap` (`M_MMAP_THRESHOLD` at its 32 MB maximum) and stay
//! there when freed (`M_TRIM_THRESHOLD`), the heap grows by [`HEAP_RESERVE`] at its
//! first growth (`M_TOP_PAD`), and that range is marked `MADV_HUGEPAGE`. Nothing is
//! touched ahead of use: the reserve is address space, and a small compile faults in a
//! few 2 MB pages instead of a few hundred 4 KB ones. Output does not depend on any of
//! this. Where a call fails (another C library, THP off) the defaults stay.

/// How much address space the heap takes at once: more than a 10k-rule compile's peak
/// (ipc 10k: 89 MB), so its whole working set is on huge pages.
const HEAP_RESERVE: usize = 256 << 20;

/// The huge page size of x86-64 and arm64 with 4 KB pages.
const HUGE_PAGE: usize = 2 << 20;

/// Sets the allocator up for a compile; call it before the compile allocates.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn prepare_for_compile() {
    // SAFETY: mallopt, sbrk(0), malloc, free and madvise are called as their manuals
    // say: mallopt only changes settings, sbrk(0) only reads the break, the block is
    // freed once, and madvise gets page-aligned bounds inside the heap just grown.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, HEAP_RESERVE as i32);
        let before = libc::sbrk(0) as usize;
        // Larger than what is left at the heap's top, so the heap grows (by the reserve).
        // (black_box: a malloc freed unused may be taken out by the optimizer.)
        let block = std::hint::black_box(libc::malloc(4 << 20));
        libc::free(block);
        let after = libc::sbrk(0) as usize;
        let start = before.next_multiple_of(HUGE_PAGE);
        let end = after / HUGE_PAGE * HUGE_PAGE;
        if before != usize::MAX && after != usize::MAX && end > start {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// Other C libraries keep their defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn prepare_for_compile() {}
