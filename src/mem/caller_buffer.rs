//! Access to a caller's buffer-protocol object: a short read-only look while the GIL is held
//! (to copy data into the ring), or an export held for as long as the kernel may use the memory.
//!
//! While an export is held, CPython refuses to resize a `bytearray` or close an `mmap`
//! (`BufferError`), so the address the kernel was given stays valid.

use std::ffi::{c_char, c_int, c_void};

use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;

use crate::mem::io_buf::{BufferPool, IoBuf};

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
/// `PyBUF_WRITABLE`: as above, and the exporter must allow writes.
const PYBUF_WRITABLE: c_int = 0x0001;

/// Whether the kernel will write into the memory (reads, receives) or only read it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    Writable,
}

/// Exports `obj`'s buffer into a boxed `Py_buffer` (its address must not move: CPython may
/// point `internal` at it), turning the exporter's errors into messages that name `name`.
fn export(obj: &Bound<'_, PyAny>, name: &str, access: Access) -> PyResult<Box<RawPyBuffer>> {
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
    let flags = match access {
        Access::ReadOnly => PYBUF_SIMPLE,
        Access::Writable => PYBUF_WRITABLE,
    };
    // SAFETY: `obj` is a live object (we hold a Bound, so the GIL is held) and `view` points
    // to writable memory of the right layout.
    let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) };
    if rc == 0 {
        return Ok(view);
    }
    let py = obj.py();
    let err = PyErr::fetch(py);
    let kind = match access {
        Access::ReadOnly => "a bytes-like object (bytes, bytearray, memoryview, array, mmap, ...)",
        Access::Writable => {
            "a writable bytes-like object (bytearray, memoryview of writable memory, array, \
             mmap, ...)"
        }
    };
    if err.is_instance_of::<PyTypeError>(py) {
        return Err(PyTypeError::new_err(format!(
            "{name} must be {kind}, not {}",
            crate::base::args::type_name(obj)
        )));
    }
    if err.is_instance_of::<PyBufferError>(py) {
        // Read-only exporters asked for a writable view raise BufferError; CPython's own
        // readinto() reports that case as a TypeError, and so do we.
        if access == Access::Writable && read_only_export_works(obj) {
            return Err(PyTypeError::new_err(format!(
                "{name} must be {kind}; this {} is read-only",
                crate::base::args::type_name(obj)
            )));
        }
        let wrapped = crate::base::errors::bad_arg(format!(
            "{name} must be a contiguous buffer: {}",
            err.value(py)
        ));
        wrapped.set_cause(py, Some(err));
        return Err(wrapped);
    }
    Err(err)
}

/// Whether `obj` exports a plain read-only buffer (the export is released at once).
fn read_only_export_works(obj: &Bound<'_, PyAny>) -> bool {
    match export(obj, "", Access::ReadOnly) {
        Ok(mut view) => {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer; released once.
            unsafe { PyBuffer_Release(&mut *view) };
            true
        }
        Err(_) => false,
    }
}

/// A read-only view of a caller's buffer-protocol object, held only during the call that made
/// it (attached to the interpreter).
/// Contiguous exporters only: `bytes`, `bytearray`, contiguous `memoryview`s, `array.array`,
/// `mmap`, NumPy arrays in C order.
pub struct CallerBuffer<'py> {
    view: Box<RawPyBuffer>,
    _py: Python<'py>,
}

impl<'py> CallerBuffer<'py> {
    pub fn read_only(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        Ok(CallerBuffer {
            view: export(obj, name, Access::ReadOnly)?,
            _py: obj.py(),
        })
    }

    pub fn len(&self) -> usize {
        if self.view.buf.is_null() {
            0
        } else {
            self.view.len.max(0) as usize
        }
    }

    /// The ring's own copy of `count` bytes from `start`, which lie within the buffer.
    ///
    /// No Rust reference to the caller's memory is made: it is copied through its address, so
    /// that on a free-threaded CPython, where another thread may change the object while it is
    /// copied, the copy holds whatever bytes were there, as CPython's own copies of a shared
    /// `bytearray` do, and nothing is assumed about them.
    pub fn copy(&self, pool: &mut BufferPool, start: usize, count: usize) -> PyResult<IoBuf> {
        assert!(
            start
                .checked_add(count)
                .is_some_and(|end| end <= self.len()),
            "the span was checked against the buffer"
        );
        let buf = pool.take(count)?;
        if count > 0 {
            // SAFETY: a successful PyBUF_SIMPLE export is `len` contiguous readable bytes at
            // `buf`, valid until PyBuffer_Release, which `self` holds back; `start + count` is
            // within them (asserted above), and `buf` is a new allocation of `count` bytes, so
            // the two cannot overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.view.buf.cast::<u8>().add(start),
                    buf.as_mut_ptr(),
                    count,
                )
            };
        }
        Ok(buf)
    }
}

impl Drop for CallerBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released once;
        // the `'py` lifetime proves the GIL is still held.
        unsafe { PyBuffer_Release(&mut *self.view) };
    }
}

/// An export of a caller's buffer held beyond the call that made it: an in-flight operation or
/// a registration keeps one for as long as the kernel may read or write the memory. The
/// export pins the object: it cannot be freed, and CPython refuses to resize or close it.
pub struct HeldBuffer {
    view: Box<RawPyBuffer>,
}

// SAFETY: the view is only an address, a length and a strong reference to the exporter; the
// reference is released attached to the interpreter (see Drop), from whichever thread, and the
// address stays valid until then. Python code in other threads (at once, on a free-threaded
// CPython) may change the bytes, never free or move them: the export forbids that.
unsafe impl Send for HeldBuffer {}
// SAFETY: shared references only read the address and length, which never change.
unsafe impl Sync for HeldBuffer {}

impl HeldBuffer {
    pub fn new(obj: &Bound<'_, PyAny>, name: &str, access: Access) -> PyResult<Self> {
        Ok(HeldBuffer {
            view: export(obj, name, access)?,
        })
    }

    /// The first byte of the exported memory. Writable only if exported with
    /// [`Access::Writable`].
    pub fn as_ptr(&self) -> *mut u8 {
        self.view.buf as *mut u8
    }

    pub fn len(&self) -> usize {
        self.view.len.max(0) as usize
    }
}

impl Drop for HeldBuffer {
    fn drop(&mut self) {
        Python::attach(|_py| {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released
            // exactly once, here, with the GIL held (attach takes it if this thread lacks it).
            unsafe { PyBuffer_Release(&mut *self.view) };
        });
    }
}
