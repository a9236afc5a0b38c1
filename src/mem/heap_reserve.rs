//! A small block a ring keeps above the `bytes` objects its completions hand out, so that
//! freeing them does not shrink the heap only for the next batch to grow it again.
//!
//! A read's data reaches the user as a new `bytes` object, which CPython allocates with
//! `malloc`. A loop that keeps one batch of results while reaping the next frees a whole batch
//! at a time, and when that batch lies at the top of the heap, glibc hands the memory back to
//! the kernel (`brk`) as soon as more than 128 KiB is free there (`M_TRIM_THRESHOLD`), only to
//! ask for it again, and fault every page in anew, for the next batch. Measured at queue
//! depth 128 with 4 KiB reads: 8 `brk` calls per batch and a third of the reads per second of
//! depth 32. Raising the threshold would fix it for the whole process, which a library must
//! not decide for its user. Instead the ring keeps one block of its own above the memory it
//! handed out: a free below a live block cannot reach the top of the heap, so nothing is
//! trimmed, and the next batch reuses the memory the last one freed.
//!
//! The reserve is a plain allocation the ring never touches. It only decides where memory
//! stays: the heap keeps what it held below the reserve while the ring is open (as a raised
//! trim threshold would keep it), and closing the ring frees the reserve. With an allocator
//! that does not work this way, the placement test below never succeeds and nothing is kept.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// The reserve's size: large enough that the allocator takes it from the top of the heap
/// rather than from a small free chunk left in the middle, small beside the batches it
/// protects, and below glibc's threshold for serving a request with its own `mmap`.
const SIZE: usize = 64 << 10;

/// How far above the memory it protects the reserve may lie and still be taken for the top of
/// the same heap (a block in another mapping, a thread's arena, protects nothing).
const REACH: usize = 1 << 30;

/// Placements that fail in a row (the allocator put the block below the data) make the ring
/// wait this many reaps, doubling up to the limit, before it tries again.
const MAX_BACKOFF: u32 = 64;

#[derive(Default)]
pub struct HeapReserve {
    block: Option<NonNull<u8>>,
    /// Reaps to skip before the next placement attempt, after failed ones.
    backoff: u32,
    skipped: u32,
}

// SAFETY: the block is plain memory owned by this value alone, never read or written; moving
// its ownership to another thread is moving a pointer to be freed.
unsafe impl Send for HeapReserve {}

impl HeapReserve {
    fn layout() -> Layout {
        Layout::from_size_align(SIZE, 16).expect("a valid layout")
    }

    /// Makes sure the reserve lies above `highest`, the end of the highest `bytes` object a
    /// reap just made. Cheap when it already does (one comparison).
    #[inline]
    pub fn keep_above(&mut self, highest: usize) {
        let protects = |block: NonNull<u8>| {
            let at = block.as_ptr() as usize;
            at >= highest && at - highest < REACH
        };
        if highest == 0 || self.block.is_some_and(protects) {
            return;
        }
        if self.skipped < self.backoff {
            self.skipped += 1;
            return;
        }
        self.skipped = 0;
        // SAFETY: the layout has a non-zero size.
        let Some(new) = NonNull::new(unsafe { alloc::alloc(Self::layout()) }) else {
            return;
        };
        if protects(new) {
            self.free();
            self.block = Some(new);
            self.backoff = 0;
        } else {
            // SAFETY: allocated just above with this layout, and not kept.
            unsafe { alloc::dealloc(new.as_ptr(), Self::layout()) };
            self.backoff = (self.backoff * 2).clamp(1, MAX_BACKOFF);
        }
    }

    fn free(&mut self) {
        if let Some(block) = self.block.take() {
            // SAFETY: allocated in `keep_above` with this layout, freed once (taken out).
            unsafe { alloc::dealloc(block.as_ptr(), Self::layout()) };
        }
    }
}

impl Drop for HeapReserve {
    fn drop(&mut self) {
        self.free();
    }
}
