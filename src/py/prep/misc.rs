//! Operations of `IoUring` that touch no file's data: no-op, cancellation, timeouts, polling,
//! messages to other rings.

use io_uring::squeue::Flags;
use io_uring::types::{CancelBuilder, Fd, Fixed, Timespec};
use pyo3::prelude::*;

use crate::base::args::{self, int_in};
use crate::base::errors;
use crate::ops::misc;
use crate::py::io_uring::IoUring;
use crate::py::sqe_flags;

#[pymethods]
impl IoUring {
    /// Queues a no-op (``IORING_OP_NOP``, Linux 5.1), which completes at once with
    /// :attr:`~CompletionEvent.result` ``0``. Useful to measure the ring's own overhead, or to
    /// give a waiting loop a completion.
    ///
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (*, sqe_flags=None))]
    fn prep_nop(&self, sqe_flags: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        self.queue(sqe_flags::parse(sqe_flags)?, |_| Ok(misc::nop()))
    }
}

/// A relative or absolute timespec owned by a timeout operation.
fn timespec(duration: std::time::Duration) -> Box<Timespec> {
    Box::new(
        Timespec::new()
            .sec(duration.as_secs())
            .nsec(duration.subsec_nanos()),
    )
}

#[pymethods]
impl IoUring {
    /// Queues a cancellation (``IORING_OP_ASYNC_CANCEL``) of operations in flight on this ring.
    ///
    /// With ``user_data``, the operation that ``prep_*`` returned it for (Linux 5.5); with
    /// ``fd``, operations on that descriptor (5.19); with neither, every operation in flight
    /// (5.19). A cancelled operation still completes, usually with ``-ECANCELED``.
    ///
    /// :param user_data: The operation to cancel.
    /// :param fd: Cancel operations on this file descriptor instead; with
    ///     ``sqe_flags=make_sqe_flags(fixed_file=True)``, on this slot of the registered file
    ///     table (``IORING_ASYNC_CANCEL_FD_FIXED``).
    /// :param all: With ``user_data`` or ``fd``: cancel every match, not just the first.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The cancellation's own ``user_data``. Its completion's
    ///     :attr:`~CompletionEvent.result` is ``0`` (or, with ``all`` or neither target, the
    ///     number cancelled), ``-ENOENT`` when nothing matched, or ``-EALREADY`` when the
    ///     operation was already running and could not be stopped.
    /// :raises ValueError: Both ``user_data`` and ``fd`` are given.
    #[pyo3(signature = (user_data=None, *, fd=None, all=false, sqe_flags=None))]
    fn prep_cancel(
        &self,
        user_data: Option<&Bound<'_, PyAny>>,
        fd: Option<&Bound<'_, PyAny>>,
        all: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let user_data = user_data.filter(|v| !v.is_none());
        let fd = fd.filter(|v| !v.is_none());
        let flags = sqe_flags::parse(sqe_flags)?;
        // A fixed slot to cancel by goes in the cancel's own flags, not in IOSQE_FIXED_FILE,
        // which a cancel ignores.
        let fixed = flags.contains(Flags::FIXED_FILE);
        let target = match (user_data, fd) {
            (Some(_), Some(_)) => {
                return Err(errors::bad_arg(
                    "give user_data or fd to cancel, not both".to_owned(),
                ))
            }
            (Some(ud), None) => {
                CancelBuilder::user_data(int_in(ud, "user_data", 0, i64::MAX)? as u64)
            }
            (None, Some(fd)) if fixed => CancelBuilder::fd(Fixed(args::fd(fd, "fd")? as u32)),
            (None, Some(fd)) => CancelBuilder::fd(Fd(args::fd(fd, "fd")?)),
            (None, None) => CancelBuilder::any(),
        };
        let target = if all { target.all() } else { target };
        let flags = if fd.is_some() {
            flags - Flags::FIXED_FILE
        } else {
            flags
        };
        self.queue(flags, |_| Ok(misc::cancel(target)))
    }

    /// Queues a timeout (``IORING_OP_TIMEOUT``, Linux 5.4): an operation that completes when
    /// the time passes, or earlier once ``count`` other operations have completed.
    ///
    /// :param seconds: Whole seconds (an :class:`int`), or a :class:`float`.
    /// :param nsec: Nanoseconds added to ``seconds``.
    /// :param count: Complete early after this many other completions; ``0`` waits for the
    ///     time alone.
    /// :param absolute: ``seconds`` is an absolute time on the monotonic clock
    ///     (:func:`time.monotonic`), not a duration.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused (the
    ///     ring owns the timespec).
    /// :returns: The operation's ``user_data``. Its completion's
    ///     :attr:`~CompletionEvent.result` is ``-ETIME`` when the time passed, ``0`` when
    ///     ``count`` completions came first, and ``-ECANCELED`` when it was removed.
    #[pyo3(
        signature = (seconds, nsec=None, *, count=None, absolute=false, sqe_flags=None),
        text_signature = "($self, seconds, nsec=0, *, count=0, absolute=False, sqe_flags=None)"
    )]
    fn prep_timeout(
        &self,
        seconds: &Bound<'_, PyAny>,
        nsec: Option<&Bound<'_, PyAny>>,
        count: Option<&Bound<'_, PyAny>>,
        absolute: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let when = timespec(args::duration(seconds, nsec)?);
        let count = args::int_or(count, "count", 0, u32::MAX.into(), 0)? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(misc::timeout(when, count, absolute))
        })
    }

    /// Queues the removal of a pending timeout (``IORING_OP_TIMEOUT_REMOVE``, Linux 5.5).
    ///
    /// :param user_data: The timeout's ``user_data``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The removal's own ``user_data``; its completion's
    ///     :attr:`~CompletionEvent.result` is ``0``, or ``-ENOENT`` when no such timeout is
    ///     pending. The removed timeout completes with ``-ECANCELED``.
    #[pyo3(signature = (user_data, *, sqe_flags=None))]
    fn prep_timeout_remove(
        &self,
        user_data: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let target = int_in(user_data, "user_data", 0, i64::MAX)? as u64;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(misc::timeout_remove(target))
        })
    }

    /// Queues a deadline for the operation queued just before it, which must carry
    /// ``make_sqe_flags(io_link=True)`` (``IORING_OP_LINK_TIMEOUT``, Linux 5.5). If that
    /// operation has not completed in time, it is cancelled (it completes with
    /// ``-ECANCELED``) and this one completes with ``-ETIME``; otherwise this one completes with
    /// ``-ECANCELED``.
    ///
    /// :param seconds: Whole seconds (an :class:`int`), or a :class:`float`.
    /// :param nsec: Nanoseconds added to ``seconds``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (seconds, nsec=None, *, sqe_flags=None),
        text_signature = "($self, seconds, nsec=0, *, sqe_flags=None)"
    )]
    fn prep_link_timeout(
        &self,
        seconds: &Bound<'_, PyAny>,
        nsec: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let when = timespec(args::duration(seconds, nsec)?);
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(misc::link_timeout(when))
        })
    }

    /// Queues a ``poll(2)`` on one descriptor (``IORING_OP_POLL_ADD``, Linux 5.1).
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param events: The events to wait for: :data:`select.POLLIN`, :data:`select.POLLOUT`,
    ///     ... combined with ``|``.
    /// :param multishot: Stay armed and complete every time the descriptor becomes ready
    ///     (Linux 5.13); each completion but the last has :attr:`~CompletionEvent.more` set.
    ///     Stop it with :meth:`prep_poll_remove` or :meth:`prep_cancel`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``; its completion's
    ///     :attr:`~CompletionEvent.result` is the mask of events that occurred.
    #[pyo3(signature = (fd, events, *, multishot=false, sqe_flags=None))]
    fn prep_poll_add(
        &self,
        fd: &Bound<'_, PyAny>,
        events: &Bound<'_, PyAny>,
        multishot: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let events = int_in(events, "events", 0, u32::MAX.into())? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(misc::poll_add(fd, events, multishot))
        })
    }

    /// Queues the removal of a pending poll (``IORING_OP_POLL_REMOVE``, Linux 5.1).
    ///
    /// :param user_data: The poll's ``user_data``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The removal's own ``user_data``; its completion's
    ///     :attr:`~CompletionEvent.result` is ``0`` or ``-ENOENT``. The removed poll completes
    ///     with ``-ECANCELED``.
    #[pyo3(signature = (user_data, *, sqe_flags=None))]
    fn prep_poll_remove(
        &self,
        user_data: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let target = int_in(user_data, "user_data", 0, i64::MAX)? as u64;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(misc::poll_remove(target))
        })
    }

    /// Queues a message to another ring (``IORING_OP_MSG_RING``, Linux 5.18): a completion
    /// with the given ``result`` and ``user_data`` appears on ``ring``. This is how one thread
    /// wakes another that is blocked waiting on its own ring.
    ///
    /// :param ring: The target :class:`IoUring` (or its :meth:`fileno`).
    /// :param result: The :attr:`~CompletionEvent.result` the target's completion carries.
    /// :param user_data: The target completion's :attr:`~CompletionEvent.user_data`, below
    ///     ``2**32``: rings give out larger values to their own operations, so a message can
    ///     never be mistaken for one of them.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data`` on this ring; its completion's
    ///     :attr:`~CompletionEvent.result` is ``0`` once the message was posted.
    #[pyo3(
        signature = (ring, result=None, user_data=None, *, sqe_flags=None),
        text_signature = "($self, ring, result=0, user_data=0, *, sqe_flags=None)"
    )]
    fn prep_msg_ring(
        &self,
        ring: &Bound<'_, PyAny>,
        result: Option<&Bound<'_, PyAny>>,
        user_data: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let ring_fd = args::fd(ring, "ring")?;
        let result = args::int_or(result, "result", i32::MIN.into(), i32::MAX.into(), 0)? as i32;
        let user_data = args::int_or(user_data, "user_data", 0, u32::MAX.into(), 0)? as u64;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(misc::msg_ring(ring_fd, result, user_data))
        })
    }
}
