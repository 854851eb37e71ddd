//! Memory allocator settings, applied before any thread starts.
//!
//! glibc's malloc gives threads arenas of their own (up to eight per core) and, once a large
//! block has been freed, raises its mmap threshold to that block's size, so later chunk
//! buffers (a few MB each) come from the arenas and stay resident after they are freed. A
//! fleet loading a 51 MB file peaked at 99 MiB that way, against 46 MiB with a fixed
//! threshold and two arenas (README, "Benchmarks"); the time did not change.

/// Blocks of this size or more are mapped and unmapped on their own, whatever was freed before.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Arenas for all threads together.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: i32 = 2;

/// Applies the settings above (glibc only; other allocators keep their own behaviour).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc parameters; it is called before any other thread
    // exists, and an unknown or refused parameter only returns 0.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
}
