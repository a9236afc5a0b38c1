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

/// A `list` of `len` items, each made by `item` only once the list itself exists (so that,
/// should there be no memory for the list, no item has been taken from wherever it was).
pub fn list<'py>(
    py: Python<'py>,
    len: usize,
    mut item: impl FnMut() -> Py<PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    // SAFETY: PyList_New gives a new reference (or NULL with an exception set) whose `len`
    // slots are empty; PyList_SetItem steals one reference per slot, and every slot is filled,
    // once, before the list is seen by anyone.
    unsafe {
        let ptr = ffi::PyList_New(len as isize);
        let list: Bound<'py, PyList> = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked();
        for index in 0..len {
            ffi::PyList_SetItem(ptr, index as isize, item().into_ptr());
        }
        Ok(list)
    }
}
