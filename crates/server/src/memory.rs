//! Handing freed memory back to the operating system after a version is swapped in.
//!
//! Building a snapshot of a large zone allocates its content, the lookup tables and the
//! pre-encoded answers; the content and the replaced snapshot are freed afterwards, but
//! glibc's allocator keeps freed pages that sit between live ones. For a 1M-record zone
//! that is about 640 MiB of the process's resident memory (1.56 GiB resident against
//! 0.93 GiB with an allocator that returns pages; `bench/serve-perf 1000000`). Trimming
//! after a swap gives those pages back. Off the query path: followers call it.
//!
//! This module and `udp_batch` are the crate's only modules with `unsafe` code.
#![allow(unsafe_code)]

/// Returns the allocator's free pages to the operating system, where the allocator allows
/// it (glibc on Linux); elsewhere it does nothing. Takes a few milliseconds per GiB of heap.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer (the padding to keep) and only walks
    // glibc's own heap under glibc's own locks; no memory Rust can see changes.
    unsafe {
        libc::malloc_trim(0);
    }
}
