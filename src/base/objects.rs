//! Python objects made without panicking when memory runs out.
//!
//! PyO3's constructors for `bytes`, `int`, `str` and `tuple` panic when CPython cannot
//! allocate the object. Reaping must instead get a `MemoryError` it can recover from, so that
//! the completion being reaped is kept for the next call rather than lost; what it makes goes
//! through these.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PySlice, PyString, PyTuple};

/// A `bytes` holding a copy of `data`.
#[inline]
pub fn bytes<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    // SAFETY: `data` is valid for `len` bytes, which CPython copies; the result is a new
    // reference or NULL with an exception set, as `from_owned_ptr_or_err` expects.
    unsafe {
        let ptr = ffi::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as isize);
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// A `bytes` of `len` bytes that `fill` writes (every byte of it: the memory starts
/// uninitialised).
pub fn bytes_with<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(*mut u8),
) -> PyResult<Bound<'py, PyBytes>> {
    // SAFETY: a NULL source makes CPython allocate `len` bytes without copying; the object is
    // not shared with anything until it is returned, so writing its contents is allowed.
    unsafe {
        let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as isize);
        let object: Bound<'py, PyBytes> =
            Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked();
        fill(ffi::PyBytes_AsString(ptr).cast());
        Ok(object)
    }
}

/// An `int`.
#[inline]
pub fn int(py: Python<'_>, value: i64) -> PyResult<Bound<'_, PyInt>> {
    // SAFETY: a new reference or NULL with an exception set.
    unsafe {
        let ptr = ffi::PyLong_FromLongLong(value);
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// A `str` from UTF-8 text.
pub fn string<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: `text` is valid UTF-8 for `len` bytes, which CPython copies; a new reference or
    // NULL with an exception set.
    unsafe {
        let ptr = ffi::PyUnicode_FromStringAndSize(text.as_ptr().cast(), text.len() as isize);
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// A `tuple` of `items`.
pub fn tuple<'py, const N: usize>(
    py: Python<'py>,
    items: [Bound<'py, PyAny>; N],
) -> PyResult<Bound<'py, PyTuple>> {
    // SAFETY: PyTuple_New gives a new reference (or NULL with an exception set) whose N slots
    // are empty; PyTuple_SetItem steals one reference per slot, filling each exactly once
    // before the tuple is seen by anyone.
    unsafe {
        let ptr = ffi::PyTuple_New(N as isize);
        let tuple: Bound<'py, PyTuple> =
            Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked();
        for (index, item) in items.into_iter().enumerate() {
            ffi::PyTuple_SetItem(ptr, index as isize, item.into_ptr());
        }
        Ok(tuple)
    }
}

/// The slice `start:stop`.
pub fn slice(py: Python<'_>, start: usize, stop: usize) -> PyResult<Bound<'_, PySlice>> {
    let start = int(py, start as i64)?;
    let stop = int(py, stop as i64)?;
    // SAFETY: PySlice_New borrows its arguments (alive here) and gives a new reference or NULL
    // with an exception set; a NULL step means 1.
    unsafe {
        let ptr = ffi::PySlice_New(start.as_ptr(), stop.as_ptr(), std::ptr::null_mut());
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// A `list` of a known length, filled one item at a time and handed out only once full: a
/// list with empty slots must never reach Python code. Made before its items are taken from
/// wherever they wait, so that a `MemoryError` for the list takes nothing.
pub struct ListFiller<'py> {
    list: Bound<'py, PyList>,
    len: usize,
    filled: usize,
}

impl<'py> ListFiller<'py> {
    pub fn new(py: Python<'py>, len: usize) -> PyResult<Self> {
        // SAFETY: PyList_New gives a new reference, or NULL with an exception set, whose `len`
        // slots are empty (NULL); the list stays private to this value until every slot is
        // filled (`finish`), and CPython's list code (dealloc, GC traversal) copes with empty
        // slots meanwhile.
        let list = unsafe {
            let ptr = ffi::PyList_New(len as isize);
            Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked()
        };
        Ok(ListFiller {
            list,
            len,
            filled: 0,
        })
    }

    /// Puts `item` in the next empty slot.
    #[inline]
    pub fn push(&mut self, item: Py<PyAny>) {
        assert!(
            self.filled < self.len,
            "more items than the list was made for"
        );
        // SAFETY: the slot is in range and empty; PyList_SetItem steals the reference.
        unsafe { ffi::PyList_SetItem(self.list.as_ptr(), self.filled as isize, item.into_ptr()) };
        self.filled += 1;
    }

    /// The list, with the items pushed. If fewer were pushed than it was made for, a list of
    /// just those is made; should there be no memory for it, the items come back instead,
    /// in order, with the `MemoryError`.
    pub fn finish(self) -> Result<Bound<'py, PyList>, (Vec<Py<PyAny>>, PyErr)> {
        if self.filled == self.len {
            return Ok(self.list);
        }
        let py = self.list.py();
        // SAFETY: slots below `filled` are filled; PyList_GetSlice gives a new reference (or
        // NULL with an exception set) to a new list of them, increfed.
        let shorter = unsafe {
            let ptr = ffi::PyList_GetSlice(self.list.as_ptr(), 0, self.filled as isize);
            Bound::from_owned_ptr_or_err(py, ptr)
        };
        match shorter {
            Ok(list) => Ok(list.cast_into().expect("a list's slice is a list")),
            Err(err) => {
                let items = (0..self.filled)
                    .map(|index| {
                        // SAFETY: slot `index` is filled; the borrowed reference is increfed
                        // into an owned one before the list goes.
                        unsafe {
                            let item = ffi::PyList_GetItem(self.list.as_ptr(), index as isize);
                            Bound::from_borrowed_ptr(py, item).unbind()
                        }
                    })
                    .collect();
                Err((items, err))
            }
        }
    }
}
