//! Allocator tuning shared by the `ooc` binary and the Python extension, which both use
//! mimalloc as their global allocator (declared in each, as a global allocator must be).
//!
//! mimalloc gives freed memory back to the operating system after a delay. Every page given
//! back and allocated again is faulted in and zeroed by the kernel, which was 15–25% of the
//! CPU time of spilling queries at 1 ms. At SF10 under 256MB, 10 ms made the 22 TPC-H queries
//! 12% faster (geometric mean) for at most 19 MiB more peak RSS (Q9: 378 → 397 MiB, promise
//! 416); 100 ms made them 16% faster but Q9 reached 411 MiB, too close to the promise.
//! `MIMALLOC_PURGE_DELAY` in the environment takes precedence.

/// `mi_option_purge_delay` in mimalloc's option enum (the same in its v2 and v3 headers;
/// `libmimalloc-sys` does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed memory before giving it back to the OS, in milliseconds.
pub const PURGE_DELAY_MS: i64 = 10;

/// Set mimalloc's options to ooc's (the purge delay), leaving any option given in the
/// environment (`MIMALLOC_PURGE_DELAY`) as it is. Call once, early, from a program whose
/// global allocator is mimalloc.
pub fn tune_mimalloc() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer option; it may be called at any time,
        // from any thread.
        unsafe {
            libmimalloc_sys::mi_option_set(
                MI_OPTION_PURGE_DELAY,
                PURGE_DELAY_MS as std::ffi::c_long,
            )
        };
    }
}

/// Give the memory freed so far back to the operating system now, rather than after the
/// purge delay and the next allocation (`DataFrame.release()` in Python, whose caller
/// watches RSS fall). Call only from a program whose global allocator is mimalloc.
pub fn release_freed_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it may be called at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
