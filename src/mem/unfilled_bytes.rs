//! A new `bytes` object that a large read fills in place, so that its data is copied once (by
//! the kernel) instead of twice (into the ring's buffer, then into a `bytes`).
//!
//! For a read of 1 MiB the second copy was a third of the time per read, and at deep queues
//! it doubled the memory a batch streams through the caches. A `bytes` cannot be used for every
//! read, though: its data starts 32 bytes into a `malloc` block, so it never has the alignment
//! `O_DIRECT` requires, and finding out whether a descriptor is `O_DIRECT` costs a system call
//! that a small read's copy does not. [`for_read`] makes the choice.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::base::{objects, valgrind};

/// Reads of at least this many bytes go straight into a `bytes`, when the descriptor allows:
/// above it the copy saved costs more than the `fcntl(2)` that checks for `O_DIRECT`.
pub const MIN_LEN: usize = 16 << 10;

/// A `bytes` of `len` bytes, uninitialised, that no Python code can reach until the read
/// completes: the ring holds the only reference, so the kernel may write its contents.
pub struct UnfilledBytes {
    object: Py<PyBytes>,
    data: *mut u8,
    len: usize,
}

// SAFETY: the object is reached only through `Py`, which may move between threads; `data`
// points into that object, which this value keeps alive, and is written only by the kernel
// before the completion and read only after it, by the thread that reaps (attached to the
// interpreter, holding the ring).
unsafe impl Send for UnfilledBytes {}

impl UnfilledBytes {
    /// A new `bytes` of `len` bytes for a read to fill; `MemoryError` if there is no memory.
    pub fn new(py: Python<'_>, len: usize) -> PyResult<Self> {
        // CPython shares one object for each `bytes` of length 0 or 1; this one must be new.
        debug_assert!(len >= MIN_LEN);
        // SAFETY: a NULL source makes CPython allocate `len` bytes of a new object without
        // copying anything; the result is a new reference or NULL with an exception set. Its
        // data pointer stays valid while the object lives, which `object` ensures.
        unsafe {
            let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as isize);
            let object: Bound<'_, PyBytes> =
                Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked();
            Ok(UnfilledBytes {
                data: ffi::PyBytes_AsString(ptr).cast(),
                object: object.unbind(),
                len,
            })
        }
    }

    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.data
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The completion's `buffer` after the kernel read `filled` bytes: this very object when it
    /// filled all of it, else a copy of the part it filled (a `bytes` cannot shrink in place
    /// through the limited API). Changes nothing here, so it may be asked again.
    pub fn report(&self, py: Python<'_>, filled: usize) -> PyResult<Py<PyBytes>> {
        let filled = filled.min(self.len);
        valgrind::kernel_wrote(self.data, filled);
        if filled == self.len {
            return Ok(self.object.clone_ref(py));
        }
        // SAFETY: the kernel wrote the first `filled` bytes, in bounds of the object, which is
        // alive (held here) and no longer written (the read completed).
        let part = unsafe { std::slice::from_raw_parts(self.data, filled) };
        Ok(objects::bytes(py, part)?.unbind())
    }
}

/// Whether a read of `len` bytes from `fd` should fill a `bytes` in place: large enough to be
/// worth a system call, not a registered file's slot, and not a descriptor opened with
/// `O_DIRECT` (nor one `fcntl` cannot look at: the kernel will report what is wrong with it).
///
/// The answer holds for the descriptor as it is now. Should it be closed and its number reused
/// for an `O_DIRECT` file before the read runs, or `O_DIRECT` be set on it with `fcntl`, the
/// read fails with `EINVAL`: an error, never a wrong write.
pub fn for_read(fd: i32, len: usize, fixed_file: bool) -> bool {
    if len < MIN_LEN || fixed_file {
        return false;
    }
    // SAFETY: F_GETFL reads the descriptor's status flags and touches no memory.
    let status = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    status >= 0 && status & libc::O_DIRECT == 0
}
