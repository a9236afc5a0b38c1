//! Memory the kernel reads from or writes into, and read-only access to a caller's buffer.

use std::alloc::{self, Layout};
use std::ffi::{c_char, c_int, c_void};
use std::ptr::NonNull;

use pyo3::exceptions::{PyBufferError, PyMemoryError, PyTypeError};
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

// SAFETY: an IoBuf is a unique owner of plain bytes, like a Box<[u8]>.
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

    /// A buffer holding a copy of `data`.
    pub fn copy_of(&mut self, data: &[u8]) -> PyResult<IoBuf> {
        let buf = self.take(data.len())?;
        // SAFETY: `buf` has room for exactly `data.len()` bytes and is owned by no one else,
        // so it cannot overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.as_mut_ptr(), data.len()) };
        Ok(buf)
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

/// `Py_buffer`, as laid out by every CPython 3.x. The buffer protocol entered the limited API
/// only in 3.11; the struct and the two functions below have the same ABI in 3.10, which this
/// abi3-py310 module supports, so they are declared here rather than taken from pyo3-ffi.
#[repr(C)]
struct RawPyBuffer {
    buf: *mut c_void,
    obj: *mut pyo3::ffi::PyObject,
    len: pyo3::ffi::Py_ssize_t,
    itemsize: pyo3::ffi::Py_ssize_t,
    readonly: c_int,
    ndim: c_int,
    format: *mut c_char,
    shape: *mut pyo3::ffi::Py_ssize_t,
    strides: *mut pyo3::ffi::Py_ssize_t,
    suboffsets: *mut pyo3::ffi::Py_ssize_t,
    internal: *mut c_void,
}

extern "C" {
    fn PyObject_GetBuffer(
        obj: *mut pyo3::ffi::PyObject,
        view: *mut RawPyBuffer,
        flags: c_int,
    ) -> c_int;
    fn PyBuffer_Release(view: *mut RawPyBuffer);
}

/// `PyBUF_SIMPLE`: a C-contiguous run of bytes, no shape or format needed.
const PYBUF_SIMPLE: c_int = 0;

/// A read-only view of a caller's buffer-protocol object, held only while the GIL is held.
/// Contiguous exporters only: `bytes`, `bytearray`, contiguous `memoryview`s, `array.array`,
/// `mmap`, NumPy arrays in C order.
pub struct CallerBuffer<'py> {
    view: Box<RawPyBuffer>,
    _py: Python<'py>,
}

impl<'py> CallerBuffer<'py> {
    pub fn read_only(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        let mut view = Box::new(RawPyBuffer {
            buf: std::ptr::null_mut(),
            obj: std::ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            strides: std::ptr::null_mut(),
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        });
        // SAFETY: `obj` is a live object (we hold a Bound, so the GIL is held) and `view`
        // points to writable memory of the right layout.
        let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *view, PYBUF_SIMPLE) };
        if rc != 0 {
            let err = PyErr::fetch(obj.py());
            if err.is_instance_of::<PyTypeError>(obj.py()) {
                return Err(PyTypeError::new_err(format!(
                    "{name} must be a bytes-like object (bytes, bytearray, memoryview, array, \
                     mmap, ...), not {}",
                    crate::args::type_name(obj)
                )));
            }
            if err.is_instance_of::<PyBufferError>(obj.py()) {
                let wrapped = crate::errors::bad_arg(format!(
                    "{name} must be a contiguous buffer: {}",
                    err.value(obj.py())
                ));
                wrapped.set_cause(obj.py(), Some(err));
                return Err(wrapped);
            }
            return Err(err);
        }
        Ok(CallerBuffer {
            view,
            _py: obj.py(),
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.view.len <= 0 || self.view.buf.is_null() {
            return &[];
        }
        // SAFETY: a successful PyBUF_SIMPLE export is `len` contiguous readable bytes at
        // `buf`, valid until PyBuffer_Release; `self` keeps the export, and the returned
        // slice borrows `self`. No Python code runs while the slice is used (we hold the GIL
        // and call nothing), so nothing can write to the object meanwhile.
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, self.view.len as usize) }
    }
}

impl Drop for CallerBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released once;
        // the `'py` lifetime proves the GIL is still held.
        unsafe { PyBuffer_Release(&mut *self.view) };
    }
}
