//! `make_io_ring`: checking the ring's parameters and creating it.

use pyo3::prelude::*;

use crate::base::args::int_in;
use crate::base::errors;
use crate::engine::ring::Ring;
use crate::py::io_uring::IoUring;

/// The kernel's largest submission queue (`IORING_MAX_ENTRIES`).
const MAX_ENTRIES: i64 = 32768;
/// The kernel's largest completion queue (`IORING_MAX_CQ_ENTRIES`).
const MAX_CQ_ENTRIES: i64 = 2 * MAX_ENTRIES;

/// Creates a new ``io_uring`` and returns it as an :class:`IoUring`, which is a context
/// manager: leaving the ``with`` block closes the ring.
///
/// .. code-block:: python
///
///     with make_io_ring() as ring:
///         user_data = ring.prep_openat(AT_FDCWD, b"/etc/hostname", FileOpenMode.READ_ONLY)
///         ring.submit_and_wait()
///         (completion,) = ring.get_completion_entries()
///
/// :param entries: The size of the submission queue: how many operations can be queued
///     before they must be submitted. ``1`` to ``32768``; the kernel rounds it up to a power
///     of two.
/// :param cq_size: The size of the completion queue. ``None`` (or ``<= 0``) leaves the
///     kernel's default of twice ``entries``; otherwise at least ``entries`` and at most
///     ``65536``. A completion queue that fills up loses nothing: the kernel keeps the
///     overflow and :meth:`IoUring.get_completion_entries` still returns every completion.
/// :param sqpoll_idle_ms: ``None`` (or ``<= 0``) for a normal ring. A positive value starts a
///     kernel thread that polls the submission queue, so submitting needs no system call
///     while it is awake; it goes to sleep after this many milliseconds without work.
/// :param single_issuer: Promise the kernel that only the thread creating the ring submits
///     to it (``IORING_SETUP_SINGLE_ISSUER``, Linux 6.0+, ignored on older kernels), which
///     lets it skip some locking. Submitting from another thread then fails with
///     :class:`OSError` (``EEXIST``). Pass ``False`` to share the ring between threads.
/// :param autosubmit: When the submission queue is full, a ``prep_*`` call first submits
///     the queue and then queues its entry. With ``False`` it raises :class:`ValueError`
///     instead and queues nothing.
/// :raises ValueError: A parameter is out of range.
/// :raises OSError: The kernel refused to create the ring; the message says why (io_uring
///     disabled by ``kernel.io_uring_disabled``, blocked by a seccomp filter, too old a
///     kernel, out of memory) and what can be done.
#[pyfunction]
#[pyo3(
    signature = (entries=None, cq_size=None, sqpoll_idle_ms=None, single_issuer=true, autosubmit=true),
    text_signature = "(entries=256, cq_size=None, sqpoll_idle_ms=None, single_issuer=True, autosubmit=True)"
)]
pub fn make_io_ring(
    entries: Option<&Bound<'_, PyAny>>,
    cq_size: Option<&Bound<'_, PyAny>>,
    sqpoll_idle_ms: Option<&Bound<'_, PyAny>>,
    single_issuer: bool,
    autosubmit: bool,
) -> PyResult<IoUring> {
    let entries = match entries {
        Some(value) => int_in(value, "entries", 1, MAX_ENTRIES)? as u32,
        None => 256,
    };
    let cq_size = match cq_size.filter(|v| !v.is_none()) {
        Some(value) => {
            let size = int_in(value, "cq_size", i64::MIN, MAX_CQ_ENTRIES)?;
            if size <= 0 {
                None
            } else if size < i64::from(entries) {
                return Err(errors::bad_arg(format!(
                    "cq_size must be at least entries ({entries}), got {size}"
                )));
            } else {
                Some(size as u32)
            }
        }
        None => None,
    };
    let sqpoll_idle_ms = match sqpoll_idle_ms.filter(|v| !v.is_none()) {
        Some(value) => {
            Some(int_in(value, "sqpoll_idle_ms", i64::MIN, u32::MAX.into())?).filter(|&ms| ms > 0)
        }
        None => None,
    };

    let build = |optional_flags: bool| {
        let mut builder = io_uring::IoUring::builder();
        // The child of a fork() must not see the ring's memory at all.
        builder.dontfork();
        if let Some(size) = cq_size {
            builder.setup_cqsize(size);
        }
        if let Some(ms) = sqpoll_idle_ms {
            builder.setup_sqpoll(ms as u32);
        }
        if optional_flags {
            // Keep submitting the rest of a batch when one entry fails (Linux 5.18+).
            builder.setup_submit_all();
            if sqpoll_idle_ms.is_none() {
                // Run completion work when this thread next enters the kernel instead of
                // interrupting it (Linux 5.19+); the TASKRUN flag tells `collect` when such work
                // is waiting. SQPOLL rings refuse both.
                builder.setup_coop_taskrun();
                builder.setup_taskrun_flag();
            }
            if single_issuer {
                builder.setup_single_issuer();
            }
        }
        builder.build(entries)
    };
    let ring = match build(true) {
        // Kernels before 6.0 / 5.18 refuse the optional flags with EINVAL; they are hints.
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => build(false),
        other => other,
    }
    .map_err(|err| errors::setup_error(&err))?;
    Ok(IoUring::new(Ring::new(ring, autosubmit)))
}
