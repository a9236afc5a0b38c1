//! Memory the ring owns for the kernel to read from or write into, and its per-ring pool.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;

/// A heap allocation owned by an in-flight operation. Its address never changes while it
/// lives, so a pointer to it can sit in an SQE while the `IoBuf` itself moves between tables.
///
/// Sizes that are multiples of 512 bytes get page alignment, which `O_DIRECT` requires.
pub struct IoBuf {
    ptr: NonNull<u8>,
    capacity: usize,
    align: usize,
}

// SAFETY: an IoBuf is a unique owner of plain bytes, like a Box<[u8]>: whichever thread owns
// it (with or without a GIL) is the only one that reaches them, besides the kernel, which the
// in-flight table keeps it alive for.
unsafe impl Send for IoBuf {}
// SAFETY: shared references only hand out the address and length, never &mut access.
unsafe impl Sync for IoBuf {}

impl IoBuf {
    fn layout(capacity: usize) -> PyResult<Layout> {
        let align = if capacity >= 512 && capacity % 512 == 0 {
            4096
        } else {
            16
        };
        Layout::from_size_align(capacity, align)
            .map_err(|_| PyMemoryError::new_err(format!("cannot allocate {capacity} bytes")))
    }

    /// An uninitialised buffer of `capacity` bytes; `MemoryError` if the allocation fails.
    pub fn uninit(capacity: usize) -> PyResult<Self> {
        let layout = Self::layout(capacity)?;
        let ptr = if capacity == 0 {
            // A zero-length transfer never dereferences its address; any aligned non-null
            // pointer will do, and there is nothing to free.
            NonNull::new(layout.align() as *mut u8).expect("alignment is non-zero")
        } else {
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { alloc::alloc(layout) };
            NonNull::new(raw).ok_or_else(|| {
                PyMemoryError::new_err(format!("cannot allocate a {capacity}-byte buffer"))
            })?
        };
        Ok(IoBuf {
            ptr,
            capacity,
            align: layout.align(),
        })
    }

    /// The same buffer with every byte set to zero, for operations whose result may count
    /// bytes the kernel never wrote.
    pub fn zeroed(self) -> Self {
        // SAFETY: `capacity` bytes at `ptr` belong to this buffer alone (none for capacity 0).
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), 0, self.capacity) };
        self
    }

    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The first `len` bytes, which the kernel has written.
    ///
    /// # Safety
    /// The kernel (or a copy) must have initialised the first `len` bytes.
    pub unsafe fn filled(&self, len: usize) -> &[u8] {
        let len = len.min(self.capacity);
        // SAFETY: in bounds of the allocation, initialised per the caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), len) }
    }
}

impl Drop for IoBuf {
    fn drop(&mut self) {
        if self.capacity != 0 {
            // SAFETY: allocated in `uninit` with exactly this size and alignment.
            unsafe {
                alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.capacity, self.align),
                )
            };
        }
    }
}

/// Recently freed buffers, kept for reuse by later reads and writes of the same size. Reuse
/// skips the allocator and, more importantly, hands the kernel pages that are already faulted
/// in; a freshly allocated buffer costs a page fault inside the kernel's copy.
///
/// Bounded in bytes, so a burst of large reads cannot keep memory forever.
pub struct BufferPool {
    /// `(capacity, free buffers of exactly that capacity)`; few distinct sizes in practice, so
    /// a linear scan beats hashing.
    classes: Vec<(usize, Vec<IoBuf>)>,
    cached_bytes: usize,
}

impl BufferPool {
    /// The most bytes kept for reuse, per ring.
    const MAX_CACHED_BYTES: usize = 32 << 20;
    /// Buffers larger than this are never cached.
    const MAX_CACHED_CAPACITY: usize = 1 << 20;
    /// Size classes remembered at once; a new size beyond this evicts the oldest class.
    const MAX_CLASSES: usize = 8;

    pub const fn new() -> Self {
        BufferPool {
            classes: Vec::new(),
            cached_bytes: 0,
        }
    }

    /// A buffer of exactly `capacity` bytes, reused when one is cached.
    pub fn take(&mut self, capacity: usize) -> PyResult<IoBuf> {
        if let Some((_, free)) = self.classes.iter_mut().find(|(c, _)| *c == capacity) {
            if let Some(buf) = free.pop() {
                self.cached_bytes -= capacity;
                return Ok(buf);
            }
        }
        IoBuf::uninit(capacity)
    }

    /// Keeps `buf` for reuse, or frees it if the pool is full.
    pub fn give_back(&mut self, buf: IoBuf) {
        let capacity = buf.capacity();
        if capacity == 0
            || capacity > Self::MAX_CACHED_CAPACITY
            || self.cached_bytes + capacity > Self::MAX_CACHED_BYTES
        {
            return;
        }
        let index = match self.classes.iter().position(|(c, _)| *c == capacity) {
            Some(index) => index,
            None => {
                if self.classes.len() == Self::MAX_CLASSES {
                    let (evicted, free) = self.classes.remove(0);
                    self.cached_bytes -= evicted * free.len();
                }
                self.classes.push((capacity, Vec::new()));
                self.classes.len() - 1
            }
        };
        self.classes[index].1.push(buf);
        self.cached_bytes += capacity;
    }
}
