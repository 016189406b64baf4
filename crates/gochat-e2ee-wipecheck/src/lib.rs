//! A wiping-check global allocator, for the test that secrets really are wiped.
//!
//! Test-only (`publish = false`); never link it into an app. [`WipeCheck`] forwards to the
//! system allocator, and before it gives a block back (every `dealloc`, and the old block
//! of every `realloc`) it scans the block for the secrets registered with [`register`].
//! A secret found in a freed block is a copy that outlives the object that owned it: the
//! next owner of that memory, a core dump or a swap file can read it. That is the bug
//! class of the vodozemac advisory GHSA-c3hm-hxwf-g5c6.
//!
//! Two choices make every finding attributable to the code that freed the block:
//! - `realloc` always moves: it allocates a new block, copies, then scans and frees the
//!   old one. A real allocator may grow in place, but it may also move; the code under
//!   test must be right either way.
//! - every block is handed out zeroed, so no byte of a freed block is left over from an
//!   earlier owner of the same memory.
//!
//! The scan never allocates (the registry and the findings are fixed-size statics behind
//! a `std::sync::Mutex`, which allocates nothing on the platforms std supports with
//! futexes) and only runs between [`arm`] and [`disarm`]. Other threads (the test
//! harness) may allocate meanwhile; their blocks are scanned too, under the same lock.

mod registry;

#[allow(unsafe_code)]
mod allocator;

pub use allocator::WipeCheck;
pub use registry::{
    arm, disarm, is_registered, overflowed, register, sample, secret_count, take_report, Finding, LabelCount, Report,
    MAX_FINDINGS, MAX_LABELS, SECRET_BYTES,
};
