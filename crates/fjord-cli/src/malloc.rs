//! The process's C allocator: mimalloc in place of the C library's `malloc`.
//!
//! Why: librdkafka, linked into this binary for the Kafka tools and `fjord perf`, allocates
//! with `malloc`. Its consumer makes one allocation per record on its broker thread (the
//! operation that carries the message) and the application thread frees it: memory moves
//! from one thread to another for every record, which glibc's allocator handles worse than
//! mimalloc, whose pages take such frees back without a lock. `fjord perf consume` of
//! 1,000,000 x 1 KiB read 1,371 against 1,213 MB/s with this build (median of 6 alternating
//! pairs; 1,551 against 1,324 in an earlier set), for 0.63 against 0.72 client CPU-s
//! (docs/performance.md, "Session 15"). The broker's own CPU per GB did not change beyond
//! this machine's spread.
//!
//! How: `libmimalloc-sys` with its `override` feature compiles mimalloc with
//! `MI_MALLOC_OVERRIDE`, so its object defines `malloc`, `free`, `realloc`,
//! `posix_memalign` and the rest. Symbols the executable defines take precedence over the
//! C library's, for librdkafka, for the C library's own allocations, and for Rust's `System`
//! allocator, which the broker's global allocator (`fjord_broker::alloc`) forwards small
//! allocations to. [`linked`] references the object, so the linker keeps it; the test below
//! fails if `malloc` is still the C library's. The `no_thp` feature stops mimalloc from
//! asking for transparent huge pages (`MADV_HUGEPAGE`): with them a fresh broker's resident
//! memory was 17 MiB instead of 9, because every region it touched became 2 MiB.

#![allow(unsafe_code)]

use std::os::raw::c_int;

use libmimalloc_sys as _;

unsafe extern "C" {
    fn mi_version() -> c_int;
}

/// mimalloc's version (e.g. 303 for 3.3.x); called at start so that mimalloc's object, and
/// with it its `malloc`, is part of every link of this binary.
pub fn linked() -> i32 {
    // SAFETY: `mi_version` takes no arguments and only returns a constant.
    unsafe { mi_version() }
}

#[cfg(test)]
mod tests {
    use std::os::raw::c_void;

    use super::*;

    unsafe extern "C" {
        fn mi_is_in_heap_region(p: *const c_void) -> bool;
    }

    #[test]
    fn malloc_is_mimalloc() {
        assert!(linked() >= 200, "mimalloc version {}", linked());
        // SAFETY: a plain malloc/free pair of a small block; the pointer is only compared.
        unsafe {
            let p = libc::malloc(64);
            assert!(!p.is_null());
            let ours = mi_is_in_heap_region(p as *const c_void);
            libc::free(p);
            assert!(
                ours,
                "malloc is not served by mimalloc: the override is not linked"
            );
        }
        // Rust's allocations take the same path (the broker's allocator forwards to `System`,
        // which calls `malloc`).
        let v = Box::new([0u8; 100]);
        // SAFETY: only reads whether the pointer lies in mimalloc's heap.
        assert!(unsafe { mi_is_in_heap_region(v.as_ptr() as *const c_void) });
    }
}
