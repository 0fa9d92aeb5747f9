//! Large buffers go back to the system as soon as they are freed.
//!
//! glibc gives an allocation above its mmap threshold a mapping of its own,
//! unmapped when freed; but each time such a block is freed it raises the
//! threshold to that block's size (up to 32 MiB). After the first S3 upload
//! part, part buffers (megabytes, filled on an actix worker, freed on the
//! store's runtime) come from per-thread heaps instead, which keep the freed
//! space: a 1 GiB upload with 6 MiB parts peaked anywhere from 28.6 to
//! 34.3 MiB RSS and stayed at its peak afterwards. With the threshold fixed at
//! 1 MiB, every larger buffer is a mapping of its own, so RSS follows what is
//! live: 28.7 MiB at the peak, 16.4 MiB after (make bench, memory test).
//! Other allocators (musl's) already return large blocks.

/// Fixes glibc's mmap threshold at 1 MiB, unless the operator tuned glibc's
/// allocator (`MALLOC_MMAP_THRESHOLD_`, `GLIBC_TUNABLES`). Call it first thing in `main`.
pub fn return_large_buffers_to_the_system() {
    if ["MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"].iter().any(|name| std::env::var_os(name).is_some()) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists, and a refused value leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
