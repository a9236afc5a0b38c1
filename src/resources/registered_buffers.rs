//! Registered (fixed) buffers: the exports of the caller's buffers a ring has registered, and
//! the register calls.
//!
//! These buffers are ours to keep valid. The kernel pins the pages of a registered buffer, but
//! the Python object that owns the memory must not be freed or resized either: if a `bytearray`
//! were freed, malloc would hand its address to another object while a `READ_FIXED` in flight
//! still writes there. So the exports of all registered buffers live in one
//! [`RegisteredBuffers`] behind an `Arc`: the ring's [`BufferTable`] holds one reference while
//! they are registered, and every fixed-buffer operation holds another until its completion is
//! reaped (`Lent::Shared`). Unregistering, closing the ring, or dropping it releases the table's
//! reference only; the exports go when the last operation that may use them has completed.
//!
//! The kernel looks a fixed-buffer operation's `buf_index` up when the entry is *submitted*,
//! not when it is queued: whoever unregisters must submit every queued entry first, so that each
//! binds to the registration whose reference it holds, never to a later one.

use std::io;
use std::sync::Arc;

use io_uring::Submitter;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::base::args::{span_within, SpanError};
use crate::base::errors::{self, bad_arg};
use crate::mem::caller_buffer::HeldBuffer;

/// `IORING_MAX_REG_BUFFERS`: the most buffers one registration may hold (Linux 5.13 and
/// later; 1024, `UIO_MAXIOV`, before).
pub const MAX_BUFFERS: usize = 1 << 14;

/// The kernel refuses a registered buffer larger than 1 GiB.
pub const MAX_BUFFER_LEN: usize = 1 << 30;

/// Exports of the caller's buffers that the kernel has registered, in registration order.
pub struct RegisteredBuffers {
    held: Box<[HeldBuffer]>,
}

impl RegisteredBuffers {
    pub fn get(&self, index: u16) -> Option<&HeldBuffer> {
        self.held.get(usize::from(index))
    }
}

/// A ring's registered buffers, `None` when it has none.
#[derive(Default)]
pub struct BufferTable {
    buffers: Option<Arc<RegisteredBuffers>>,
}

impl BufferTable {
    pub fn is_registered(&self) -> bool {
        self.buffers.is_some()
    }

    /// Registers `held` (writable exports of the caller's buffers) with the kernel.
    pub fn register(&mut self, submitter: &Submitter<'_>, held: Vec<HeldBuffer>) -> PyResult<()> {
        if let Some(buffers) = &self.buffers {
            return Err(PyOSError::new_err((
                libc::EBUSY,
                format!(
                    "buffers are already registered on this ring ({} of them); call \
                 unregister_buffers() first",
                    buffers.held.len()
                ),
            )));
        }
        let iovecs: Vec<libc::iovec> = held
            .iter()
            .map(|buf| libc::iovec {
                iov_base: buf.as_ptr().cast(),
                iov_len: buf.len(),
            })
            .collect();
        // SAFETY: every iovec describes the memory of a writable export in `held`. The exports
        // move (unchanged: HeldBuffer keeps its Py_buffer boxed) into the RegisteredBuffers below,
        // which this table keeps until the buffers are unregistered, and which every fixed-buffer
        // operation keeps until its completion is reaped; while an export lives its memory can be
        // neither freed nor resized.
        let result = unsafe { submitter.register_buffers(&iovecs) };
        result.map_err(|err| buffer_error(&err, held.len()))?;
        self.buffers = Some(Arc::new(RegisteredBuffers {
            held: held.into_boxed_slice(),
        }));
        Ok(())
    }

    /// Unregisters the buffers. The exports are released once no operation in flight holds them.
    /// The caller has submitted every queued entry (see the module's documentation).
    pub fn unregister(&mut self, submitter: &Submitter<'_>) -> PyResult<()> {
        if self.buffers.is_none() {
            return Err(bad_arg(
                "unregister_buffers: no buffers are registered".to_owned(),
            ));
        }
        submitter
            .unregister_buffers()
            .map_err(|err| errors::os_error(&err, "cannot unregister the buffers"))?;
        // Operations in flight keep their own references; this releases only the table's.
        self.buffers = None;
        Ok(())
    }

    /// The registered buffers, a reference for an operation to hold, and the span
    /// `(start, count)` of buffer `index` it covers, checked.
    pub fn span(
        &self,
        index: u16,
        (start, count): (usize, Option<usize>),
        method: &str,
        verb: &str,
    ) -> PyResult<(Arc<RegisteredBuffers>, usize, u32)> {
        let Some(buffers) = self.buffers.clone() else {
            return Err(bad_arg(format!(
                "{method} needs registered buffers; call register_buffers() first"
            )));
        };
        let Some(buffer) = buffers.get(index) else {
            return Err(bad_arg(format!(
                "{method}: buffer_index {index} is out of range: {} buffers are registered (0 to \
             {})",
                buffers.held.len(),
                buffers.held.len() - 1
            )));
        };
        let len = buffer.len();
        let (start, count) = span_within(len, (start, count)).map_err(|err| match err {
            SpanError::StartPastEnd => bad_arg(format!(
                "{method}: buffer_offset {start} is out of range for registered buffer {index} \
             of {len} bytes"
            )),
            SpanError::CountPastEnd(count) => bad_arg(format!(
                "{method}: can't {verb} {count} bytes at buffer_offset {start} of registered \
             buffer {index}, which holds {len} bytes: bytes {start}..{} are out of range",
                start + count
            )),
        })?;
        Ok((buffers, start, count as u32))
    }
}

fn buffer_error(err: &io::Error, count: usize) -> PyErr {
    let code = err.raw_os_error().unwrap_or(libc::EIO);
    let why = match code {
        libc::ENOMEM => {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes one rlimit into the struct we pass.
            let known = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
            let now = if !known {
                String::new()
            } else if limit.rlim_cur == libc::RLIM_INFINITY {
                " (now unlimited)".to_owned()
            } else {
                format!(" (now {} KiB)", limit.rlim_cur / 1024)
            };
            format!(
                "{}: registered buffers stay locked in memory and are charged to \
                 RLIMIT_MEMLOCK{now} unless the process has CAP_IPC_LOCK; raise the limit \
                 (ulimit -l, or LimitMEMLOCK= in a systemd unit) or register less memory",
                errors::strerror(code)
            )
        }
        libc::EFAULT | libc::EOPNOTSUPP => format!(
            "{}: the kernel cannot pin a buffer's memory for long-term use; memory mapped \
             from a regular file cannot be registered (anonymous memory, shared memory and \
             Python objects can)",
            errors::strerror(code)
        ),
        libc::EINVAL if count > 1024 => format!(
            "{}: kernels before Linux 5.13 register at most 1024 buffers at once",
            errors::strerror(code)
        ),
        _ => errors::strerror(code),
    };
    PyOSError::new_err((code, format!("cannot register the buffers: {why}")))
}
