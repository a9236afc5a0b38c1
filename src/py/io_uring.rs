//! `IoUring`, the Python face of a ring: one call at a time into the engine's `Ring`, refused
//! in a forked child; opening, closing, submitting, waiting and reaping. The `prep_*` and
//! register methods are in files of their own.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyType};

use crate::base::args::{self, int_in};
use crate::base::errors;
use crate::base::fork::Origin;
use crate::base::kernel_support::Feature;
use crate::base::objects::ListFiller;
use crate::engine::completion_event::CompletionEvent;
use crate::engine::ring::Ring;
use crate::py::exclusive::{Exclusive, ExclusiveGuard};

/// The value of ``AT_FDCWD``: paths given to :meth:`IoUring.prep_openat` are relative to the
/// current working directory.
pub const AT_FDCWD: i32 = libc::AT_FDCWD;

/// An ``io_uring`` instance: a submission queue that operations are added to with the
/// ``prep_*`` methods, and a completion queue their results are reaped from with
/// :meth:`get_completion_entries`. Create one with :func:`make_io_ring`.
///
/// Wherever a ``prep_*`` method takes a file descriptor, it also takes an object with a
/// ``fileno()`` method, or a handle (:class:`century_ring.handle.FdHandle`), which it refuses
/// with :class:`ValueError` once the handle is closed.
///
/// The ring owns everything a queued operation points to (paths, buffers, addresses) until
/// that operation's completion has been reaped. Closing it (:meth:`close`, leaving the ``with``
/// block, or dropping the last reference) cancels operations still in flight and waits for the
/// kernel to let go of their memory.
#[pyclass(frozen, module = "century_ring")]
pub struct IoUring {
    /// `None` once closed.
    ring: Exclusive<Option<Ring>>,
    /// The ring's origin, copied out of it so that it can be checked without entering the
    /// ring: a forked child may have inherited the busy flag of a call that never ends there.
    origin: Origin,
}

impl IoUring {
    pub fn new(ring: Ring) -> Self {
        IoUring {
            origin: ring.origin(),
            ring: Exclusive::new(Some(ring)),
        }
    }

    fn in_forked_child(&self) -> bool {
        self.origin.is_forked()
    }

    /// Exclusive access to the ring, or the error that says why not.
    fn lock(&self) -> PyResult<ExclusiveGuard<'_, Option<Ring>>> {
        if self.in_forked_child() {
            return Err(errors::forked(self.origin.pid()));
        }
        self.ring.try_enter().ok_or_else(errors::busy)
    }

    /// Runs `f` on the open ring.
    pub(crate) fn with_ring<R>(&self, f: impl FnOnce(&mut Ring) -> PyResult<R>) -> PyResult<R> {
        let mut guard = self.lock()?;
        f(guard.as_mut().ok_or_else(errors::closed)?)
    }
}

impl Drop for IoUring {
    fn drop(&mut self) {
        let forked = self.in_forked_child();
        let ring = self.ring.get_mut().take();
        if let Some(ring) = ring {
            if forked {
                ring.abandon_after_fork();
            } else {
                // Dropped without close(): drain with the GIL held (it is bounded), since
                // releasing it from a destructor is not safe during interpreter shutdown.
                ring.close(None);
            }
        }
    }
}

#[pymethods]
impl IoUring {
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().with_ring(|_| Ok(()))?;
        Ok(slf)
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.close(py)
    }

    /// Closes the ring. Operations still in flight are cancelled, and the call waits (with the
    /// GIL released) until the kernel has finished with their memory; completions not yet
    /// reaped are discarded. An operation the kernel cannot cancel, such as a disk read
    /// already sent to the device, is waited for: after 2 seconds a :class:`RuntimeWarning`
    /// says so, and after 10 seconds its memory is leaked rather than freed.
    ///
    /// Closing an already closed ring does nothing. In a child process forked from the ring's
    /// owner, this only releases the child's copy and leaves the parent's ring untouched.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.in_forked_child() {
            let ring = self.ring.try_enter().and_then(|mut guard| guard.take());
            if let Some(ring) = ring {
                ring.abandon_after_fork();
            }
            return Ok(());
        }
        let ring = self.lock()?.take();
        if let Some(ring) = ring {
            ring.close(Some(py));
        }
        Ok(())
    }

    /// The ring's own file descriptor, for :meth:`prep_msg_ring` from another ring.
    fn fileno(&self) -> PyResult<i32> {
        self.with_ring(|ring| Ok(ring.fd()))
    }

    /// ``True`` once the ring has been closed.
    #[getter]
    fn closed(&self) -> bool {
        match self.ring.try_enter() {
            Some(guard) => guard.is_none(),
            None => false,
        }
    }

    /// The number of entries queued with ``prep_*`` and not yet submitted to the kernel.
    #[getter]
    fn pending_sq_entries(&self) -> PyResult<u32> {
        self.with_ring(|ring| Ok(ring.pending()))
    }

    /// The number of operations whose final completion has not been reaped yet, queued or
    /// submitted; the ring holds their memory. Operations queued with ``skip_success`` are not
    /// counted, as they may never complete.
    #[getter]
    fn in_flight(&self) -> PyResult<usize> {
        self.with_ring(|ring| Ok(ring.in_flight()))
    }

    /// Submits every queued entry to the kernel without waiting for any to complete.
    ///
    /// :returns: The number of entries submitted.
    fn submit(&self) -> PyResult<u32> {
        self.with_ring(|ring| ring.submit())
    }

    /// Submits every queued entry, then blocks until at least ``count`` completions are ready
    /// to be reaped (completions already waiting count too).
    ///
    /// The GIL is released while waiting. If a signal arrives, its Python handler runs; if
    /// the handler raises (as Ctrl-C does with :class:`KeyboardInterrupt`), the exception
    /// propagates, otherwise the wait goes on (:pep:`475`).
    ///
    /// :param count: How many completions to wait for.
    /// :returns: The number of entries submitted.
    #[pyo3(signature = (count=None), text_signature = "($self, count=1)")]
    fn submit_and_wait(&self, py: Python<'_>, count: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
        let count = match count {
            Some(value) => int_in(value, "count", 0, u32::MAX.into())? as usize,
            None => 1,
        };
        self.with_ring(|ring| ring.submit_and_wait(count, None, Some(py)))
    }

    /// Submits every queued entry, then blocks until at least one completion is ready or the
    /// timeout passes, whichever comes first.
    ///
    /// The timeout is given to the kernel with the wait itself (``IORING_ENTER_EXT_ARG``), so
    /// nothing is left behind: no extra completion appears because of it, and later waits are
    /// not cut short. The GIL is released and signals are handled as in
    /// :meth:`submit_and_wait`; after a signal the wait resumes for the time that is left.
    ///
    /// :param seconds: Whole seconds to wait (an :class:`int`), or a :class:`float` for
    ///     fractions of a second; not negative.
    /// :param nsec: Nanoseconds added to ``seconds``; not negative.
    /// :returns: The number of entries submitted.
    /// :raises NotImplementedError: The kernel lacks ``IORING_FEAT_EXT_ARG`` (Linux 5.11).
    #[pyo3(signature = (seconds, nsec=None), text_signature = "($self, seconds, nsec=0)")]
    fn submit_and_wait_with_timeout(
        &self,
        py: Python<'_>,
        seconds: &Bound<'_, PyAny>,
        nsec: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u32> {
        let timeout = args::duration(seconds, nsec)?;
        self.with_ring(|ring| {
            ring.support()
                .require(Feature::TimedWait, "submit_and_wait_with_timeout")?;
            ring.submit_and_wait(1, Some(timeout), Some(py))
        })
    }

    /// Reaps every completion that is ready now, without blocking.
    ///
    /// Each operation's memory is released here, as its completion is handed over. If the
    /// completion queue overflowed, the kernel's backlog is flushed, so no completion is ever
    /// lost.
    ///
    /// Nor is one lost when memory runs out while completions become events: the call returns
    /// the events it could make, and the completion that met the shortage (with those after it)
    /// comes with a later call, its data intact.
    ///
    /// :returns: A list of :class:`CompletionEvent`, oldest first; empty when none is ready.
    /// :raises MemoryError: Not even one event could be made; none was taken.
    fn get_completion_entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.with_ring(|ring| {
            ring.collect()?;
            // The list is made at its final length in one go, cheaper per completion than
            // appending to a growing one, and before any event leaves the ring: without memory
            // for it, nothing is taken.
            let mut events = ListFiller::new(py, ring.deliverable())?;
            let made = ring.reap_into(py, |event| events.push(event.into_any()));
            // A MemoryError after some events were delivered is not raised: they are returned,
            // and the completion that met it comes with a later call.
            match events.finish() {
                Ok(list) if list.is_empty() => made.map(|()| list),
                Ok(list) => Ok(list),
                Err((taken, err)) => {
                    ring.give_back(
                        taken
                            .into_iter()
                            .map(|event| {
                                event
                                    .into_bound(py)
                                    .cast_into::<CompletionEvent>()
                                    .expect("only events went into the list")
                                    .unbind()
                            })
                            .collect(),
                    );
                    Err(err)
                }
            }
        })
    }

    fn __repr__(&self) -> String {
        if self.in_forked_child() {
            // The ring's mappings are not in this process (MADV_DONTFORK): reading the queue
            // counters here would fault.
            return format!(
                "<IoUring of process {} (forked: unusable)>",
                self.origin.pid()
            );
        }
        match self.ring.try_enter() {
            Some(mut guard) => match guard.as_mut() {
                Some(ring) => format!(
                    "<IoUring fd={} pending={} in_flight={}>",
                    ring.fd(),
                    ring.pending(),
                    ring.in_flight()
                ),
                None => "<IoUring closed>".to_owned(),
            },
            None => "<IoUring busy>".to_owned(),
        }
    }
}
