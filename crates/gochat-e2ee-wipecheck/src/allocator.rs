//! The `GlobalAlloc` impl: the only unsafe code of the crate (and of the workspace).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

use crate::registry;

/// The system allocator, checking each block it releases for registered secrets.
///
/// Install it in a test binary with `#[global_allocator]`. While [`crate::arm`]ed,
/// a freed block that holds a registered secret is recorded (see [`crate::take_report`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct WipeCheck;

/// Scans the block of `len` bytes at `ptr` (about to be released) if the check is armed.
///
/// # Safety
/// `ptr` must point to a live block of at least `len` bytes from this allocator.
unsafe fn inspect(ptr: *const u8, len: usize, via_realloc: bool) {
    if !registry::armed() || len < crate::SECRET_BYTES {
        return;
    }
    // SAFETY: the caller owns the block of `len` bytes at `ptr` until it is released.
    // Every block was handed out zeroed (see `alloc`), so each byte has a value.
    let block = unsafe { std::slice::from_raw_parts(ptr, len) };
    registry::scan(block, via_realloc);
}

// SAFETY: every method forwards to `System` with the caller's layout; the extra work
// reads the block being released while it is still owned (before `System.dealloc`), and
// `realloc` copies exactly `min(old, new)` bytes into a fresh block of the new layout.
unsafe impl GlobalAlloc for WipeCheck {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Zeroed, so that a freed block holds nothing from an earlier owner of the memory.
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes, released just after.
        unsafe {
            inspect(ptr, layout.size(), false);
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Always move, so that every growth frees the old block, as a real allocator may.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: `new_layout` has a non-zero size (the caller's contract for `realloc`).
        let new = unsafe { System.alloc_zeroed(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; `min(old, new)` bytes fit in each.
            // The old block is scanned while still owned, then released with its layout.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                inspect(ptr, layout.size(), true);
                System.dealloc(ptr, layout);
            }
        }
        new
    }
}
