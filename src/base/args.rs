//! Turning Python arguments into checked Rust values. Every check names the argument it
//! refuses, and runs before anything is queued.

use std::ffi::CString;
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};

use crate::base::errors::bad_arg;

/// Largest byte count one read, write, send or recv may ask for (the kernel's `len` field is
/// 32 bits, and Linux moves at most `MAX_RW_COUNT`, just under 2 GiB, per call anyway).
pub const MAX_BYTE_COUNT: i64 = i32::MAX as i64;

/// The most bytes Linux moves in one read or write (`MAX_RW_COUNT`); a length left to default
/// is capped here rather than refused.
pub const MAX_RW_COUNT: usize = 0x7fff_f000;

/// Why a `(buffer_offset, count)` span does not fit in a buffer.
pub enum SpanError {
    /// `buffer_offset` lies past the end.
    StartPastEnd,
    /// `count` bytes from `buffer_offset` reach past the end.
    CountPastEnd(usize),
}

/// The span `(start, count)` of a buffer of `len` bytes that an operation covers: `count`
/// `None` means the rest of the buffer, capped at `MAX_RW_COUNT`. Callers turn the error into a
/// message that names their buffer.
pub fn span_within(
    len: usize,
    (start, count): (usize, Option<usize>),
) -> Result<(usize, usize), SpanError> {
    let available = len.checked_sub(start).ok_or(SpanError::StartPastEnd)?;
    match count {
        None => Ok((start, available.min(MAX_RW_COUNT))),
        Some(count) if count <= available => Ok((start, count)),
        Some(count) => Err(SpanError::CountPastEnd(count)),
    }
}

/// An integer argument in `min..=max`. Non-integers raise `TypeError`; integers outside the
/// range, however large, raise `ValueError` naming the argument and the bounds.
///
/// Inlined with a fast path for the usual argument, a plain `int` in range: one call into the
/// interpreter instead of PyO3's general extraction with its error handling.
#[inline]
pub fn int_in(obj: &Bound<'_, PyAny>, name: &str, min: i64, max: i64) -> PyResult<i64> {
    match exact_int(obj) {
        Some(value) if min <= value && value <= max => Ok(value),
        _ => checked_int_in(obj, name, min, max),
    }
}

/// The value of an object of type `int` exactly (not a subclass such as `bool`) that fits in
/// an `i64`; `None` for anything else.
#[inline]
fn exact_int(obj: &Bound<'_, PyAny>) -> Option<i64> {
    if !obj.is_exact_instance_of::<PyInt>() {
        return None;
    }
    let mut overflow = 0;
    // SAFETY: `obj` is a live `int` (checked just above) borrowed for the call, and the
    // `Bound` proves the thread is attached. For an exact `int` this never raises: a value
    // that does not fit is reported through `overflow` alone.
    let value = unsafe { pyo3::ffi::PyLong_AsLongAndOverflow(obj.as_ptr(), &mut overflow) };
    // `c_long` is 64 bits here, but only 32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let value = i64::from(value);
    (overflow == 0).then_some(value)
}

/// `int_in` for everything but an in-range plain `int`: other types, subclasses of `int`,
/// values out of range, and the errors.
#[inline(never)]
fn checked_int_in(obj: &Bound<'_, PyAny>, name: &str, min: i64, max: i64) -> PyResult<i64> {
    let value = match obj.extract::<i64>() {
        Ok(value) => value,
        Err(err) if err.is_instance_of::<PyOverflowError>(obj.py()) => {
            return Err(bad_arg(format!(
                "{name} must be between {min} and {max}, got {}",
                obj.repr().map(|r| r.to_string()).unwrap_or_default()
            )));
        }
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "{name} must be an int, not {}",
                type_name(obj)
            )));
        }
    };
    if value < min || value > max {
        return Err(bad_arg(format!(
            "{name} must be between {min} and {max}, got {value}"
        )));
    }
    Ok(value)
}

/// A file descriptor: a non-negative `int`, an object with a `fileno()` method, or a handle
/// (`century_ring.handle.FileLikeHandle`: `close_called()` and an `fd`), which is refused once
/// closed, since its number may belong to another file by now.
pub fn fd(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<i32> {
    if let Some(value @ 0..=0x7fff_ffff) = exact_int(obj) {
        return Ok(value as i32);
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(int_in(obj, name, 0, i32::MAX.into())? as i32);
    }
    let py = obj.py();
    let is_handle = has_attr(obj, pyo3::intern!(py, "close_called"));
    if is_handle
        && obj
            .call_method0(pyo3::intern!(py, "close_called"))?
            .is_truthy()?
    {
        return Err(bad_arg(format!(
            "{name}: the handle {} is closed (close() was called on it, or it was passed \
             to prep_close): its descriptor number may belong to another file by now",
            obj.repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| type_name(obj))
        )));
    }
    let number = if has_attr(obj, pyo3::intern!(py, "fileno")) {
        obj.call_method0(pyo3::intern!(py, "fileno"))?
    } else if is_handle {
        obj.getattr(pyo3::intern!(py, "fd"))?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a file descriptor (an int, an object with a fileno() method, or a \
             handle), not {}",
            type_name(obj)
        )));
    };
    Ok(int_in(&number, name, 0, i32::MAX.into())? as i32)
}

/// Whether `obj` has the attribute, asked without making an `AttributeError` when it has not
/// (CPython's own `hasattr` path).
fn has_attr(obj: &Bound<'_, PyAny>, attr: &Bound<'_, PyString>) -> bool {
    // SAFETY: both are live objects borrowed for the call, with the thread attached;
    // PyObject_HasAttr never raises (it clears any error the lookup made).
    unsafe { pyo3::ffi::PyObject_HasAttr(obj.as_ptr(), attr.as_ptr()) == 1 }
}

/// After a close of `obj` was queued: a handle notes it (`mark_closed()`), so that it is never
/// used, or closed, again. Anything else is left alone.
pub fn mark_closed(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = obj.py();
    if !obj.is_instance_of::<PyInt>() && has_attr(obj, pyo3::intern!(py, "mark_closed")) {
        obj.call_method0(pyo3::intern!(py, "mark_closed"))?;
    }
    Ok(())
}

/// A byte count for a read or receive: `0 <= n <= 2**31 - 1`.
pub fn byte_count(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    Ok(int_in(obj, name, 0, MAX_BYTE_COUNT)? as u32)
}

/// A file offset: `-1` (the file's current position) or an absolute offset. Returned in the
/// form the SQE wants, where `u64::MAX` means "current position".
pub fn file_offset(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    Ok(int_in(obj, name, -1, i64::MAX)? as u64)
}

/// A path as the kernel wants it: bytes without NUL, from `bytes`, `str` (encoded with the
/// filesystem encoding, as `os.fsencode` does) or any `os.PathLike`.
pub fn path(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<CString> {
    let py = obj.py();
    let fspath;
    let obj = if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyString>() {
        obj
    } else {
        let os = py.import(pyo3::intern!(py, "os"))?;
        fspath = os
            .call_method1(pyo3::intern!(py, "fspath"), (obj,))
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "{name} must be str, bytes or os.PathLike, not {}",
                    type_name(obj)
                ))
            })?;
        &fspath
    };
    let encoded;
    let raw: &[u8] = if let Ok(bytes) = obj.cast::<PyBytes>() {
        bytes.as_bytes()
    } else {
        let os = py.import(pyo3::intern!(py, "os"))?;
        encoded = os
            .call_method1(pyo3::intern!(py, "fsencode"), (obj,))?
            .cast_into::<PyBytes>()?;
        encoded.as_bytes()
    };
    CString::new(raw).map_err(|_| bad_arg(format!("{name} must not contain NUL bytes")))
}

/// `repr(type(obj).__name__)`, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// A directory and a path in it, as the `*at` system calls take them: `relative_to` is a
/// directory descriptor, `AT_FDCWD`, or `None`/`-1`, which requires an absolute path.
pub fn located_path(
    relative_to: Option<&Bound<'_, PyAny>>,
    dir_name: &str,
    path_obj: &Bound<'_, PyAny>,
    path_name: &str,
) -> PyResult<(i32, CString)> {
    let dir_fd = match relative_to {
        None => -1,
        Some(value) if value.is_instance_of::<PyInt>() => {
            match int_in(value, dir_name, i64::from(i32::MIN), i32::MAX.into())? as i32 {
                fd @ (-1 | libc::AT_FDCWD) => fd,
                fd if fd < 0 => {
                    return Err(bad_arg(format!(
                        "{dir_name} must be a directory file descriptor, AT_FDCWD or None, \
                         got {fd}"
                    )))
                }
                fd => fd,
            }
        }
        Some(value) => fd(value, dir_name)?,
    };
    let located = path(path_obj, path_name)?;
    if dir_fd == -1 && !located.as_bytes().starts_with(b"/") {
        return Err(bad_arg(format!(
            "{path_name} must be absolute when {dir_name} is None or -1, got {:?}; pass \
             {dir_name}=AT_FDCWD to resolve it from the working directory",
            String::from_utf8_lossy(located.as_bytes())
        )));
    }
    Ok((dir_fd, located))
}

/// A non-negative duration: `seconds` (an int, or a float for fractions) plus `nsec`.
pub fn duration(seconds: &Bound<'_, PyAny>, nsec: Option<&Bound<'_, PyAny>>) -> PyResult<Duration> {
    let nsec = match nsec {
        Some(value) => int_in(value, "nsec", 0, i64::MAX)? as u64,
        None => 0,
    };
    let base = if seconds.is_instance_of::<PyInt>() {
        Duration::from_secs(int_in(seconds, "seconds", 0, i64::MAX)? as u64)
    } else {
        let value: f64 = seconds.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "seconds must be an int or a float, not {}",
                type_name(seconds)
            ))
        })?;
        Duration::try_from_secs_f64(value)
            .map_err(|_| bad_arg(format!("seconds must be a finite number >= 0, got {value}")))?
    };
    Ok(base.saturating_add(Duration::from_nanos(nsec)))
}

/// An optional integer argument with a default.
pub fn int_or(
    obj: Option<&Bound<'_, PyAny>>,
    name: &str,
    min: i64,
    max: i64,
    default: i64,
) -> PyResult<i64> {
    obj.filter(|v| !v.is_none())
        .map_or(Ok(default), |v| int_in(v, name, min, max))
}
