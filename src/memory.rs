//! Giving memory back to the machine after a burst (a leaf: it names nothing of the app).
//!
//! A password check holds a 19 MiB block for tens of milliseconds. glibc's allocator, left
//! to itself, raises its mmap threshold after the first such block is freed, so that later
//! ones come from per-thread arenas that keep the memory after use: a burst of sign-ins left
//! a server at hundreds of MiB for good. Fixing the threshold keeps every large block mapped
//! on its own and unmapped when freed; trimming now and then returns what a burst of small
//! allocations (many connections at once) left free inside the arenas.
//! Other allocators (musl, macOS) return large blocks by themselves: there this does nothing.

/// Blocks of this size or more get a mapping of their own, returned the moment they are
/// freed. Well below a password check's 19 MiB, well above what a request allocates.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Sets the allocator up for bursts: call once, early, before the server's threads start.
pub fn return_large_blocks_when_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tunable of glibc's allocator; it is thread-safe and
    // takes no pointers. Setting M_MMAP_THRESHOLD also turns off glibc's dynamic threshold.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns the free memory at the top and inside the allocator's arenas to the system.
/// It walks every arena under its lock: call it now and then (the housekeeping tick), not
/// per request.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and is thread-safe; it only releases pages the
    // allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
