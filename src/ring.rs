//! `IoUring`, the Python face of a ring: argument checking and locking around `RingState`.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use io_uring::squeue::Flags;
use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use crate::base::args::{self, int_in};
use crate::base::errors;
use crate::base::fork::Origin;
use crate::base::kernel_support;
use crate::base::kernel_support::Feature;
use crate::ops::{self, Operation, Prepared, Refusal};
use crate::ring_state::{DrainOutcome, Refused, RingState, DRAIN_GIVE_UP_AFTER, DRAIN_WARN_AFTER};

/// The value of ``AT_FDCWD``: paths given to :meth:`IoUring.prep_openat` are relative to the
/// current working directory.
pub const AT_FDCWD: i32 = libc::AT_FDCWD;

/// An ``io_uring`` instance: a submission queue that operations are added to with the
/// ``prep_*`` methods, and a completion queue their results are reaped from with
/// :meth:`get_completion_entries`. Create one with :func:`make_io_ring`.
///
/// The ring owns everything a queued operation points to (paths, buffers, addresses) until
/// that operation's completion has been reaped. Closing it (:meth:`close`, leaving the ``with``
/// block, or dropping the last reference) cancels operations still in flight and waits for the
/// kernel to let go of their memory.
#[pyclass(frozen, module = "century_ring")]
pub struct IoUring {
    /// `None` once closed.
    state: Exclusive<Option<RingState>>,
    /// The ring's origin, copied out of it so that it can be checked without entering the
    /// ring: a forked child may have inherited the busy flag of a call that never ends there.
    origin: Origin,
}

impl IoUring {
    pub fn new(state: RingState) -> Self {
        IoUring {
            origin: state.origin(),
            state: Exclusive::new(Some(state)),
        }
    }

    fn in_forked_child(&self) -> bool {
        self.origin.is_forked()
    }

    /// Exclusive access to the ring, or the error that says why not.
    fn lock(&self) -> PyResult<ExclusiveGuard<'_, Option<RingState>>> {
        if self.in_forked_child() {
            return Err(errors::forked(self.origin.pid()));
        }
        self.state.try_enter().ok_or_else(errors::busy)
    }

    /// Runs `f` on the open ring.
    pub(crate) fn with_ring<R>(
        &self,
        f: impl FnOnce(&mut RingState) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut guard = self.lock()?;
        f(guard.as_mut().ok_or_else(errors::closed)?)
    }

    /// Builds an operation from the open ring (its buffer pool, registered files and buffers,
    /// the kernel's support) and queues it with `flags`, after checking the flags against what
    /// it owns and the kernel's support for it, all under one lock.
    pub(crate) fn queue(
        &self,
        flags: Flags,
        build: impl FnOnce(&mut RingState) -> PyResult<Prepared>,
    ) -> PyResult<u64> {
        self.with_ring(|ring| {
            let prepared = build(ring)?;
            if let Some(refused) = ring.refusal(&prepared, flags) {
                return Err(refusal_error(refused, prepared.op));
            }
            ring.push(prepared, flags)
        })
    }

    /// Closes the ring: cancels what is in flight, waits for the kernel to release it (with the
    /// GIL released when `py` is given), and only then frees it.
    fn shut_down(&self, mut state: RingState, py: Option<Python<'_>>) {
        let drain = |state: &mut RingState, budget| match py {
            Some(py) => py.detach(|| state.drain(budget)),
            None => state.drain(budget),
        };
        let mut outcome = drain(&mut state, DRAIN_WARN_AFTER);
        if state.forked() {
            // Python code run during the drain forked, and this is the child.
            state.abandon_after_fork();
            return;
        }
        if let DrainOutcome::Uncancellable(count) = outcome {
            let leaked = state.leak_in_flight();
            debug_assert_eq!(leaked, count);
            warn(
                py,
                &format!(
                    "closing the ring from a thread other than the one that submits to it: \
                     the kernel refuses this thread's cancellations on a single_issuer ring, \
                     so {leaked} operation(s) still in flight are leaked rather than freed; \
                     close the ring from the thread that created it, or make it with \
                     single_issuer=False"
                ),
            );
            drop(state);
            return;
        }
        if let DrainOutcome::StillWaiting(count) = outcome {
            warn(
                py,
                &format!(
                    "closing the ring: still waiting for the kernel to finish {count} \
                     operation(s) that could not be cancelled"
                ),
            );
            outcome = drain(&mut state, DRAIN_GIVE_UP_AFTER - DRAIN_WARN_AFTER);
            if state.forked() {
                state.abandon_after_fork();
                return;
            }
        }
        if let DrainOutcome::StillWaiting(_) = outcome {
            let leaked = state.leak_in_flight();
            warn(
                py,
                &format!(
                    "closing the ring: {leaked} operation(s) did not complete within {} s; \
                     their buffers are leaked rather than freed, since the kernel may still \
                     write to them",
                    DRAIN_GIVE_UP_AFTER.as_secs()
                ),
            );
        }
        if state.forked() {
            state.abandon_after_fork();
        } else {
            drop(state);
        }
    }
}

/// The `IoUring` method that queues `op`.
pub fn method_name(op: &Operation) -> String {
    format!("prep_{}", op.name)
}

/// The error that says why the ring refused to queue `op`.
fn refusal_error(refused: Refused, op: &Operation) -> PyErr {
    let method = method_name(op);
    match refused {
        Refused::BufferSelect => errors::bad_arg(format!(
            "sqe_flags: {method} takes no provided buffer group, so buffer_select cannot be used"
        )),
        Refused::SkipSuccessWithMemory => errors::skip_success_with_owned_data(),
        Refused::SkipSuccessWithLink => errors::skip_success_with_link(),
        Refused::Row(Refusal::DrainedRing) => errors::drained_ring(&method),
        Refused::Unsupported => kernel_support::unsupported(
            &method,
            &format!("the io_uring operation {}", op.opcode_name),
            op.since,
        ),
    }
}

/// A value that one call at a time may use; a call that finds it in use is refused, never
/// made to wait (it would wait for a thread that is blocked in the kernel, holding it).
///
/// This replaces a `Mutex` whose `try_lock` and unlock cost two locked instructions on every
/// call (3-4% of a batch of no-ops). Entering is a plain load and store instead, which is a
/// sound test-and-set because every caller runs attached to the interpreter with the GIL held:
/// the methods of `IoUring` are only called from Python, and the module is declared
/// `gil_used`, so even a free-threaded interpreter keeps the GIL while it is loaded. Two
/// threads therefore never run `try_enter` at the same time, and a thread that released the
/// GIL inside a call (a blocking wait) stored `busy` before releasing it, so any other thread
/// sees it set. A signal handler or `__del__` that re-enters from the same thread sees it too.
struct Exclusive<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through an `ExclusiveGuard`, of which at most one exists at a
// time (see the type's documentation), or through `get_mut`, which needs `&mut self`; so it is
// never touched by two threads at once, and moving it between threads needs only `T: Send`.
unsafe impl<T: Send> Sync for Exclusive<T> {}

impl<T> Exclusive<T> {
    fn new(value: T) -> Self {
        Exclusive {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, or `None` when a call (in this thread or another) is using it. Only called
    /// with the GIL held.
    fn try_enter(&self) -> Option<ExclusiveGuard<'_, T>> {
        if self.busy.load(Ordering::Acquire) {
            return None;
        }
        // Not a compare-and-swap: the GIL already keeps other threads out between the load and
        // this store (see the type's documentation).
        self.busy.store(true, Ordering::Relaxed);
        Some(ExclusiveGuard { cell: self })
    }

    fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// Proof of exclusive use of an `Exclusive`'s value; dropping it (also while unwinding from a
/// panic) lets the next call in.
struct ExclusiveGuard<'a, T> {
    cell: &'a Exclusive<T>,
}

impl<T> Deref for ExclusiveGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (`busy` was clear when it was made), so no other
        // reference to the value exists while it lives.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for ExclusiveGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique for its lifetime.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for ExclusiveGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.busy.store(false, Ordering::Release);
    }
}

/// A warning for the user: a Python `RuntimeWarning` when we can raise one, else stderr.
fn warn(py: Option<Python<'_>>, message: &str) {
    let warned = py.is_some_and(|py| {
        let category = py.get_type::<PyRuntimeWarning>();
        PyErr::warn(
            py,
            &category,
            &std::ffi::CString::new(message).unwrap_or_default(),
            1,
        )
        .is_ok()
    });
    if !warned {
        eprintln!("century_ring: {message}");
    }
}

impl Drop for IoUring {
    fn drop(&mut self) {
        let forked = self.in_forked_child();
        let state = self.state.get_mut().take();
        if let Some(state) = state {
            if forked {
                state.abandon_after_fork();
            } else {
                // Dropped without close(): drain with the GIL held (it is bounded), since
                // releasing it from a destructor is not safe during interpreter shutdown.
                self.shut_down(state, None);
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
            let state = self.state.try_enter().and_then(|mut guard| guard.take());
            if let Some(state) = state {
                state.abandon_after_fork();
            }
            return Ok(());
        }
        let state = self.lock()?.take();
        if let Some(state) = state {
            self.shut_down(state, Some(py));
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
        match self.state.try_enter() {
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

    /// Which of this library's operations the running kernel supports, from the kernel's own
    /// probe (``IORING_REGISTER_PROBE``).
    ///
    /// :returns: A dict mapping each ``prep_*`` method name to ``True`` or ``False``. Calling
    ///     an unsupported one raises :class:`NotImplementedError` naming the kernel version
    ///     that added it.
    fn probe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_ring(|ring| {
            let dict = PyDict::new(py);
            for op in ops::all() {
                dict.set_item(method_name(op), ring.support().opcode(op.opcode))?;
            }
            Ok(dict)
        })
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
        self.with_ring(|ring| ring.submit_and_collect(count, None, Some(py)))
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
            ring.submit_and_collect(1, Some(timeout), Some(py))
        })
    }

    /// Reaps every completion that is ready now, without blocking.
    ///
    /// Each operation's memory is released here, as its completion is handed over. If the
    /// completion queue overflowed, the kernel's backlog is flushed, so no completion is ever
    /// lost.
    ///
    /// :returns: A list of :class:`CompletionEvent`, oldest first; empty when none is ready.
    fn get_completion_entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.with_ring(|ring| ring.reap(py))
    }

    /// Registers an eventfd that the kernel signals whenever a completion is posted, so an
    /// event loop can wait for completions with ``select``/``epoll`` next to other sources.
    ///
    /// :param event_fd: An existing eventfd (the caller keeps ownership), or ``None`` to have
    ///     the ring create a non-blocking, close-on-exec one, which the ring owns and closes
    ///     when it is closed.
    /// :returns: The eventfd's file descriptor.
    /// :raises OSError: ``event_fd`` is not an eventfd, or one is already registered.
    #[pyo3(signature = (event_fd=None))]
    fn register_eventfd(&self, event_fd: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
        let given = event_fd
            .filter(|fd| !fd.is_none())
            .map(|fd| args::fd(fd, "event_fd"))
            .transpose()?;
        self.with_ring(|ring| match given {
            Some(fd) => {
                ring.register_eventfd(fd)
                    .map_err(|err| errors::os_error(&err, "cannot register the eventfd"))?;
                Ok(fd)
            }
            None => {
                // SAFETY: eventfd takes no pointers.
                let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                if raw < 0 {
                    let err = std::io::Error::last_os_error();
                    return Err(errors::os_error(&err, "cannot create an eventfd"));
                }
                // SAFETY: `raw` is a descriptor we just created and own.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                ring.register_eventfd(raw)
                    .map_err(|err| errors::os_error(&err, "cannot register the eventfd"))?;
                ring.set_owned_eventfd(owned);
                Ok(raw)
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
        match self.state.try_enter() {
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
