//! What an operation lends the kernel: the memory its SQE points into, owned by the operation
//! from the moment it is queued until its final completion is reaped, and then turned into
//! what that completion reports.
//!
//! The common kinds are variants of [`Lent`], stored inline (no allocation per operation).
//! A kind of memory that only one operation uses is declared beside that operation as a type
//! implementing [`LentMemory`], and travels as [`Lent::Other`]: nothing below the operation
//! names it.

use std::any::Any;
use std::ffi::CString;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::base::{objects, valgrind};
use crate::mem::caller_buffer::HeldBuffer;
use crate::mem::io_buf::{BufferPool, IoBuf};
use crate::mem::socket_address::SocketAddress;
use crate::mem::unfilled_bytes::UnfilledBytes;

/// `IORING_CQE_F_MORE`: the operation will post more completions for the same `user_data`, so
/// the memory it lent stays lent.
pub const CQE_F_MORE: u32 = 1 << 1;

/// The memory one operation lends the kernel. Some variants are never read: they exist to
/// keep memory alive, and to free it when dropped.
#[allow(dead_code)]
pub enum Lent {
    /// Nothing: the SQE holds no pointer (close, nop, socket).
    Nothing,
    /// A NUL-terminated path.
    Path(CString),
    /// The ring's buffer that a read or receive fills; its first `result` bytes become the
    /// completion's `buffer`, and the buffer goes back to the pool.
    ReadBuffer(IoBuf),
    /// A new `bytes` that a large read fills in place and its completion hands over.
    NewBytes(UnfilledBytes),
    /// The ring's copy of data to write or send; it goes back to the pool.
    WriteBuffer(IoBuf),
    /// An export of the caller's own buffer, which the kernel reads or writes in place.
    CallerBuffer(HeldBuffer),
    /// A socket address the kernel reads.
    Address(Box<SocketAddress>),
    /// A reference to memory shared with something that outlives single operations (the
    /// registered buffers), which keeps it alive even if that thing goes away meanwhile.
    Shared(Arc<dyn Any + Send + Sync>),
    /// Memory of a kind of its own, declared beside the operation that uses it.
    Other(Box<dyn LentMemory>),
}

/// Memory of a kind of its own that an operation lends the kernel (several paths, a timespec,
/// a `struct statx` the kernel fills, a msghdr with its iovecs). The kernel may use it until
/// the operation's final completion.
///
/// Reaping a completion is made so that it loses nothing when memory runs out: first what the
/// completion reports is made (`on_completion`, `report`), changing nothing here, and only once
/// the completion has reached the user does the memory learn it (`reported`) and go. If making
/// the report fails for want of memory, the completion stays ready and all of this is asked
/// again on the next reap; so `report` may run more than once, and must leave `self` as it
/// found it.
///
/// `reported` may also never run. The value is dropped without it when the operation is
/// refused before it is queued (the kernel never saw it), when the ring closes and drains the
/// operation (its completion is discarded), and in a forked child that abandons its copy of
/// the ring; it is leaked, never dropped, when the kernel might still write it. So a type that
/// holds anything besides memory (a descriptor the kernel made, say) releases it in `Drop`,
/// must be safe to drop before the kernel wrote anything, and forgets in `reported` what the
/// report handed over, so that `Drop` leaves it alone.
pub trait LentMemory: Send {
    /// Called for every completion, also those flagged `IORING_CQE_F_MORE` (before `report`
    /// for the final one), with its `result` and CQE flags; returns the completion's
    /// `provided_buffer`. The default has none.
    fn on_completion(
        &self,
        _py: Python<'_>,
        _result: i32,
        _flags: u32,
    ) -> PyResult<Option<Py<PyAny>>> {
        Ok(None)
    }

    /// The completion that carries `provided` (made by `on_completion`) reached the user:
    /// `provided` owns what it shows from now on. Until then it must not hand anything back
    /// when dropped, since the completion may be made again. The default does nothing.
    fn delivered(&self, _py: Python<'_>, _provided: &Bound<'_, PyAny>) {}

    /// The data a completion (final or not) brought, copied into a `bytes`, for a receiver that
    /// takes it without an event: provided buffers go back to their ring here, once copied.
    /// The default is the `buffer` of the final completion's report.
    fn copy_out(&self, py: Python<'_>, result: i32, flags: u32) -> PyResult<Option<Py<PyBytes>>> {
        if flags & CQE_F_MORE != 0 {
            return Ok(None);
        }
        Ok(self.report(py, result)?.buffer)
    }

    /// What the final completion, with this `result`, reports. The default reports nothing.
    fn report(&self, _py: Python<'_>, _result: i32) -> PyResult<Report> {
        Ok(Report::default())
    }

    /// The report reached the user: whatever it handed over is theirs now.
    fn reported(&mut self) {}
}

/// What a completed operation reports beyond its `result`.
#[derive(Default)]
pub struct Report {
    pub buffer: Option<Py<PyBytes>>,
    pub extra: Option<Py<PyAny>>,
}

/// Memory that only needs to stay alive: the timespec of a timeout, the two paths of a rename.
impl LentMemory for io_uring::types::Timespec {}
impl LentMemory for (CString, CString) {}

impl Lent {
    pub fn is_nothing(&self) -> bool {
        matches!(self, Lent::Nothing)
    }

    /// What the final completion, with this `result`, reports. Changes nothing: see
    /// [`LentMemory`].
    #[inline]
    pub fn report(&self, py: Python<'_>, result: i32) -> PyResult<Report> {
        match self {
            Lent::ReadBuffer(buf) => {
                let buffer = if result >= 0 {
                    // SAFETY: a successful read or receive wrote exactly `result` bytes at the
                    // start of the buffer (never more than its capacity, its `len`).
                    let filled = unsafe { buf.filled(result as usize) };
                    valgrind::kernel_wrote(filled.as_ptr(), filled.len());
                    Some(objects::bytes(py, filled)?.unbind())
                } else {
                    None
                };
                Ok(Report {
                    buffer,
                    extra: None,
                })
            }
            Lent::NewBytes(bytes) => Ok(Report {
                buffer: match usize::try_from(result) {
                    Ok(filled) => Some(bytes.report(py, filled)?),
                    Err(_) => None,
                },
                extra: None,
            }),
            Lent::CallerBuffer(held) => {
                // A read or receive into the caller's buffer filled its first `result` bytes
                // (for a write from it, those bytes were defined already).
                let written = usize::try_from(result).unwrap_or(0).min(held.len());
                valgrind::kernel_wrote(held.as_ptr(), written);
                Ok(Report::default())
            }
            Lent::Other(memory) => memory.report(py, result),
            Lent::Nothing
            | Lent::Path(_)
            | Lent::WriteBuffer(_)
            | Lent::Address(_)
            | Lent::Shared(_) => Ok(Report::default()),
        }
    }

    /// The final completion's report reached the user: the memory goes, and buffers the ring
    /// made go back to `pool`.
    #[inline]
    pub fn release(self, pool: &mut BufferPool) {
        match self {
            Lent::ReadBuffer(buf) | Lent::WriteBuffer(buf) => pool.give_back(buf),
            Lent::Other(mut memory) => memory.reported(),
            Lent::Nothing
            | Lent::Path(_)
            | Lent::NewBytes(_)
            | Lent::CallerBuffer(_)
            | Lent::Address(_)
            | Lent::Shared(_) => {}
        }
    }

    /// The `provided_buffer` of a completion, final or not.
    #[inline]
    pub fn on_completion(
        &self,
        py: Python<'_>,
        result: i32,
        flags: u32,
    ) -> PyResult<Option<Py<PyAny>>> {
        match self {
            Lent::Other(memory) => memory.on_completion(py, result, flags),
            _ => Ok(None),
        }
    }

    /// See [`LentMemory::copy_out`]; for the inline kinds, the final report's `buffer`.
    #[inline]
    pub fn copy_out(
        &self,
        py: Python<'_>,
        result: i32,
        flags: u32,
    ) -> PyResult<Option<Py<PyBytes>>> {
        match self {
            Lent::Other(memory) => memory.copy_out(py, result, flags),
            _ if flags & CQE_F_MORE != 0 => Ok(None),
            _ => Ok(self.report(py, result)?.buffer),
        }
    }

    /// See [`LentMemory::delivered`].
    pub fn delivered(&self, py: Python<'_>, provided: &Bound<'_, PyAny>) {
        if let Lent::Other(memory) = self {
            memory.delivered(py, provided);
        }
    }
}
