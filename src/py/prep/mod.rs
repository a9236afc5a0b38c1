//! The `prep_*` methods of `IoUring`, one file per family of operations, and what they share:
//! argument helpers, and `IoUring::queue`, to which each method hands a closure that builds its
//! operation from checked arguments.

mod files;
mod fixed;
mod fs;
mod misc;
mod net;
mod process;

use io_uring::squeue::Flags;
use pyo3::prelude::*;

use crate::base::args::{self, int_in, SpanError};
use crate::base::errors;
use crate::base::kernel_support;
use crate::engine::ring::{Refusal, Ring};
use crate::mem::caller_buffer::{Access, CallerBuffer, HeldBuffer};
use crate::mem::io_buf::{BufferPool, IoBuf};
use crate::ops::{Operation, Prepared, Restriction, Source};
use crate::py::io_uring::IoUring;
use crate::py::operations::method_name;

/// `offset=-1` (or omitted): the file's current position.
fn offset_or_current(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<u64> {
    value.map_or(Ok(u64::MAX), |v| args::file_offset(v, name))
}

/// `(buffer_offset, count)` of a write or send, checked for sign and size; `count` is `None`
/// for "the rest of the buffer".
fn byte_range(
    count: Option<&Bound<'_, PyAny>>,
    buffer_offset: Option<&Bound<'_, PyAny>>,
) -> PyResult<(usize, Option<usize>)> {
    let start = buffer_offset
        .filter(|v| !v.is_none())
        .map(|v| int_in(v, "buffer_offset", 0, i64::MAX))
        .transpose()?
        .unwrap_or(0) as usize;
    let count = count
        .filter(|v| !v.is_none())
        .map(|v| int_in(v, "count", 0, args::MAX_BYTE_COUNT).map(|c| c as usize))
        .transpose()?;
    Ok((start, count))
}

/// The span `(start, count)` of a buffer of `len` bytes that a write or send covers, checked.
fn checked_range(len: usize, range: (usize, Option<usize>)) -> PyResult<(usize, usize)> {
    let start = range.0;
    args::span_within(len, range).map_err(|err| match err {
        SpanError::StartPastEnd => errors::bad_arg(format!(
            "buffer_offset {start} is out of range for a buffer of {len} bytes"
        )),
        SpanError::CountPastEnd(count) => errors::bad_arg(format!(
            "can't write {count} bytes from a buffer of {len} bytes starting at \
             buffer_offset {start}: bytes {start}..{} are out of range",
            start + count
        )),
    })
}

/// The ring's own copy of `buffer[start:start + count]`.
fn copy_of_range(
    pool: &mut BufferPool,
    buffer: &Bound<'_, PyAny>,
    range: (usize, Option<usize>),
) -> PyResult<IoBuf> {
    let view = CallerBuffer::read_only(buffer, "buffer")?;
    let (start, count) = checked_range(view.len(), range)?;
    view.copy(pool, start, count)
}

/// Data to write or send: the ring's copy, or (``copy=False``) an export of the caller's
/// buffer held until the completion, and the span of it to use.
fn source_of_range(
    pool: &mut BufferPool,
    buffer: &Bound<'_, PyAny>,
    range: (usize, Option<usize>),
    copy: bool,
) -> PyResult<Source> {
    if copy {
        let data = copy_of_range(pool, buffer, range)?;
        return Ok(Source::Copy(data));
    }
    let held = HeldBuffer::new(buffer, "buffer", Access::ReadOnly)?;
    let (start, count) = checked_range(held.len(), range)?;
    Ok(Source::Borrowed { held, start, count })
}

/// A writable export of `buffer` for the kernel to fill in place, capped at what one read
/// moves.
fn destination_in(buffer: &Bound<'_, PyAny>) -> PyResult<HeldBuffer> {
    HeldBuffer::new(buffer, "buffer", Access::Writable)
}

impl IoUring {
    /// Builds an operation from the open ring (its buffer pool, registered files and buffers,
    /// the kernel's support) and queues it with `flags`, all under one lock.
    pub(crate) fn queue(
        &self,
        flags: Flags,
        build: impl FnOnce(&mut Ring) -> PyResult<Prepared>,
    ) -> PyResult<u64> {
        self.with_ring(|ring| {
            let prepared = build(ring)?;
            ring.queue(prepared, flags, refusal_error)
        })
    }
}

/// The error that says why the ring refused to queue `op`.
fn refusal_error(refusal: Refusal, op: &Operation) -> PyErr {
    let method = method_name(op);
    match refusal {
        Refusal::BufferSelect => errors::bad_arg(format!(
            "sqe_flags: {method} takes no provided buffer group, so buffer_select cannot be used"
        )),
        Refusal::SkipSuccessWithMemory => errors::skip_success_with_owned_data(),
        Refusal::SkipSuccessWithLink => errors::skip_success_with_link(),
        Refusal::Restricted(Restriction::DrainedRing) => errors::drained_ring(&method),
        Refusal::Unsupported => kernel_support::unsupported(
            &method,
            &format!("the io_uring operation {}", op.opcode_name),
            op.since,
        ),
    }
}
