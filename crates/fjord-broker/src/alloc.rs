//! A global allocator that reserves very large allocations lazily: defence in depth behind
//! the request bounds walker.
//!
//! Why: the protocol decoder (`kafka-protocol`) sizes a `Vec` from an array's length prefix
//! before reading its elements. A 22-byte request that announces 2^31 elements therefore asks
//! for hundreds of gigabytes at once; the system allocator refuses (the kernel's overcommit
//! heuristic rejects a mapping larger than RAM + swap) and Rust aborts the whole broker. The
//! primary bound is [`crate::api::bounds`], which refuses such a request before it reaches the
//! decoder; this allocator keeps a lie that gets past it (a schema mistake, a decoder path the
//! walker does not cover) from aborting the process.
//!
//! It serves allocations of [`LARGE`] bytes or more with an anonymous `MAP_NORESERVE`
//! mapping. Such a mapping only takes address space; pages cost memory when first written. A
//! lying length prefix thus costs nothing: the decoder fails on the missing bytes right after,
//! and the mapping is returned. Legitimate large buffers behave exactly as before (Linux
//! overcommits anonymous memory either way). Everything smaller goes to the system allocator
//! untouched.
//!
//! The broker library installs it with `#[global_allocator]`, so every binary linking it (the
//! broker, its tests, the fuzz targets) gets it.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Allocations at least this large are served by lazy mappings.
pub const LARGE: usize = 64 << 20;

/// Page size the mappings are aligned to (the smallest Linux uses).
const PAGE: usize = 4096;

/// See the module documentation.
pub struct ReservingAllocator;

fn is_large(size: usize, align: usize) -> bool {
    size >= LARGE && align <= PAGE
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions; the
    // result is checked against MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every pointer handed out is either from `System` (small layouts) or from `map`
// (large layouts), and `dealloc`/`realloc` route by the same `is_large` test on the layout the
// caller must pass back unchanged, so each pointer returns to the allocator it came from.
// Mappings are page-aligned, which satisfies every alignment `is_large` admits.
unsafe impl GlobalAlloc for ReservingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            return map(layout.size());
        }
        // SAFETY: forwarded with the caller's guarantees (non-zero size).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // Fresh anonymous pages read as zero.
            return map(layout.size());
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: `ptr` came from `map` with this exact size (same routing as `alloc`).
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
            return;
        }
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_large = is_large(layout.size(), layout.align());
        let new_large = is_large(new_size, layout.align());
        if !old_large && !new_large {
            // SAFETY: both sides are System's; forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if old_large && new_large {
            // SAFETY: `ptr` is a mapping of `layout.size()` bytes; MREMAP_MAYMOVE keeps the
            // contents and returns a page-aligned mapping.
            let p =
                unsafe { libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
            return if p == libc::MAP_FAILED {
                ptr::null_mut()
            } else {
                p.cast()
            };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: `new_layout` has non-zero size (the caller guarantees `new_size > 0`).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both regions are valid for the smaller size and do not overlap (distinct
            // allocations); the old one is released with its own layout.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_reservation_costs_nothing_and_round_trips() {
        let a = ReservingAllocator;
        // 1 TiB: far more than the machine has; only address space is taken.
        let layout = Layout::from_size_align(1 << 40, 8).unwrap();
        // SAFETY: non-zero size; freed with the same layout.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            a.dealloc(p, layout);
        }
        // Growing across the threshold keeps the contents.
        let small = Layout::from_size_align(16, 8).unwrap();
        // SAFETY: standard alloc / realloc / dealloc sequence with matching layouts.
        unsafe {
            let p = a.alloc(small);
            p.write_bytes(7, 16);
            let q = a.realloc(p, small, LARGE * 2);
            assert_eq!(*q.add(15), 7);
            let big = Layout::from_size_align(LARGE * 2, 8).unwrap();
            let r = a.realloc(q, big, LARGE * 3);
            assert_eq!(*r.add(15), 7);
            let s = a.realloc(r, Layout::from_size_align(LARGE * 3, 8).unwrap(), 32);
            assert_eq!(*s.add(15), 7);
            a.dealloc(s, Layout::from_size_align(32, 8).unwrap());
        }
    }
}
