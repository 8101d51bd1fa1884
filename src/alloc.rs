//! The process's allocator: jemalloc, tolerant of the two calls the system allocator forgives.
//!
//! `openjp2` 0.6.1 (dicom-pixeldata's pure-Rust JPEG 2000 decoder, a transliteration of
//! OpenJPEG) frees a code block's `decoded_data` without checking it was ever allocated
//! (`tcd::opj_tcd_code_block_dec_deallocate`: `dealloc(null, zeroed layout)`), and allocates it
//! with `cblk_w * cblk_h` bytes, zero for an empty block (`t1.rs`). glibc's `free(NULL)` ignores
//! the first; jemalloc's `sdallocx` treats both as bugs (a panic in debug builds, undefined
//! behaviour in release). This wrapper makes them what the code meant: no-ops, and a dangling
//! pointer for a zero-size block. Every other call goes to jemalloc unchanged.

use std::alloc::{GlobalAlloc, Layout};

use tikv_jemallocator::Jemalloc;

pub struct Guarded;

// SAFETY: forwards to Jemalloc, a correct allocator, for every non-degenerate call; zero-size
// requests get a non-null, aligned pointer that is never dereferenced nor passed to jemalloc.
unsafe impl GlobalAlloc for Guarded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() == 0 {
            return dangling(layout);
        }
        unsafe { Jemalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() == 0 {
            return dangling(layout);
        }
        unsafe { Jemalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr.is_null() || layout.size() == 0 {
            return;
        }
        unsafe { Jemalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ptr.is_null() || layout.size() == 0 {
            // Nothing was allocated: a fresh allocation of the new size.
            return unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align().max(1))) };
        }
        if new_size == 0 {
            unsafe { Jemalloc.dealloc(ptr, layout) };
            return dangling(layout);
        }
        unsafe { Jemalloc.realloc(ptr, layout, new_size) }
    }
}

/// A non-null pointer aligned for `layout`, for an allocation of zero bytes.
fn dangling(layout: Layout) -> *mut u8 {
    layout.align().max(1) as *mut u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_zero_size_calls_are_no_ops() {
        let g = Guarded;
        let layout = Layout::from_size_align(64, 16).unwrap();
        unsafe {
            g.dealloc(std::ptr::null_mut(), layout);
            let empty = Layout::from_size_align(0, 16).unwrap();
            let p = g.alloc(empty);
            assert!(!p.is_null() && p as usize % 16 == 0);
            g.dealloc(p, empty);
            let p = g.alloc_zeroed(layout);
            assert!(std::slice::from_raw_parts(p, 64).iter().all(|&b| b == 0));
            let p = g.realloc(p, layout, 128);
            g.dealloc(p, Layout::from_size_align(128, 16).unwrap());
        }
    }
}
