//! Closing a ring: cancel what is in flight, wait for the kernel to let go of every
//! operation's memory, and only then free it; leak what the kernel may still write rather than
//! free it. Also what a forked child does with its copy of a ring it must not touch.

use std::io;
use std::time::{Duration, Instant};

use io_uring::opcode;
use io_uring::types::CancelBuilder;
use io_uring::EnterFlags;
use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;

use super::enter::{enter, timespec};
use super::inflight::INTERNAL_USER_DATA;
use super::ring::Ring;

/// How long closing waits for operations to finish on their own when this thread may not
/// cancel them (a single-issuer ring closed from another thread) before leaking them.
const UNCANCELLABLE_GRACE: Duration = Duration::from_millis(250);

/// How long closing waits for the kernel to give back operations' memory before warning.
const DRAIN_WARN_AFTER: Duration = Duration::from_secs(2);
/// How long closing waits in all; after that the memory is leaked, never freed.
const DRAIN_GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// How soon closing asks the kernel again to cancel what is still in flight; the interval
/// doubles after each request, up to the second.
const CANCEL_AGAIN_FIRST: Duration = Duration::from_millis(5);
const CANCEL_AGAIN_AT_MOST: Duration = Duration::from_secs(1);

/// Why a drain stopped.
enum DrainOutcome {
    Finished,
    /// The given number of operations were still in flight when the time ran out.
    StillWaiting(usize),
    /// The given number of operations are still in flight and this thread can neither submit
    /// nor synchronously cancel them (a single-issuer ring closed from another thread).
    Uncancellable(usize),
}

impl Ring {
    /// Closes the ring: cancels what is in flight, waits for the kernel to release it (with the
    /// GIL released when `py` is given), and only then frees it. What the kernel may still
    /// write after the waits below is leaked, with a warning that says so.
    pub fn close(mut self, py: Option<Python<'_>>) {
        let drain = |ring: &mut Ring, budget| match py {
            Some(py) => py.detach(|| ring.drain(budget)),
            None => ring.drain(budget),
        };
        let mut outcome = drain(&mut self, DRAIN_WARN_AFTER);
        if self.forked() {
            // Python code run during the drain forked, and this is the child.
            self.abandon_after_fork();
            return;
        }
        if let DrainOutcome::Uncancellable(count) = outcome {
            let leaked = self.leak_in_flight();
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
            drop(self);
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
            outcome = drain(&mut self, DRAIN_GIVE_UP_AFTER - DRAIN_WARN_AFTER);
            if self.forked() {
                self.abandon_after_fork();
                return;
            }
        }
        if let DrainOutcome::StillWaiting(_) = outcome {
            let leaked = self.leak_in_flight();
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
        if self.forked() {
            self.abandon_after_fork();
        } else {
            drop(self);
        }
    }

    /// Cancels everything in flight and waits, for at most `budget`, until the kernel has
    /// posted a final completion for every operation. Completions are discarded: the ring is
    /// closing.
    fn drain(&mut self, budget: Duration) -> DrainOutcome {
        // Events made and not delivered: their operations are done, and no one will get them.
        self.discard_reaped();
        if !self.kernel_took_entries {
            // No io_uring_enter ever submitted anything (a seccomp filter may allow
            // io_uring_setup but refuse io_uring_enter): the kernel has never seen a pointer,
            // so the memory can be freed without cancelling or waiting for anything.
            return DrainOutcome::Finished;
        }
        let started = Instant::now();
        let mut cancelled_at: Option<Instant> = None;
        let mut can_submit = true;
        let mut ask_every = CANCEL_AGAIN_FIRST;
        loop {
            if self.forked() {
                // Python code run while releasing memory forked: the caller abandons the ring.
                return DrainOutcome::StillWaiting(self.inflight.len());
            }
            if self.collect().is_err() {
                // Only an unusable ring fails here; what remains is leaked below.
            }
            while let Some(raw) = self.ready.pop_front() {
                if raw.user_data == INTERNAL_USER_DATA {
                    if raw.result == -libc::EINVAL {
                        // Before Linux 5.19 there is no "cancel any": cancel one by one.
                        self.cancel_one_by_one();
                    }
                } else {
                    drop(self.release(raw));
                }
            }
            if self.inflight.is_empty() {
                return DrainOutcome::Finished;
            }
            let waited = started.elapsed();
            if waited >= budget {
                return DrainOutcome::StillWaiting(self.inflight.len());
            }
            if !can_submit && self.cancel_refused && waited >= UNCANCELLABLE_GRACE {
                // Nothing this thread does can end them; what would finish on its own had
                // its grace period.
                return DrainOutcome::Uncancellable(self.inflight.len());
            }
            // Ask again, soon and then less often: an operation may have been between states
            // the first time (one the kernel held back behind an `io_drain` operation starts
            // only once that one has finished, and may start after the request went by).
            if can_submit && cancelled_at.is_none_or(|t| t.elapsed() >= ask_every) {
                can_submit = self.cancel_everything();
                if cancelled_at.is_some() {
                    ask_every = (ask_every * 2).min(CANCEL_AGAIN_AT_MOST);
                }
                cancelled_at = Some(Instant::now());
            }
            let until_next_ask =
                cancelled_at.map_or(ask_every, |t| ask_every.saturating_sub(t.elapsed()));
            let slice = (budget - waited)
                .min(Duration::from_millis(250))
                .min(until_next_ask.max(CANCEL_AGAIN_FIRST));
            let pending = if can_submit { self.pending() } else { 0 };
            let flags = EnterFlags::GETEVENTS.bits();
            match enter(self.fd(), pending, 1, flags, Some(&timespec(slice))) {
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => can_submit = false,
                _ => {}
            }
        }
    }

    /// Queues and submits a cancellation of every in-flight operation. Returns false when this
    /// thread may not submit to the ring (single issuer), after trying the synchronous cancel
    /// that needs no submission.
    fn cancel_everything(&mut self) -> bool {
        let cancel = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(INTERNAL_USER_DATA);
        if self.push_internal(&cancel).is_err() {
            return false;
        }
        match enter(self.fd(), self.pending(), 0, 0, None) {
            Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                let timeout = io_uring::types::Timespec::new().nsec(100_000_000);
                let synced = self
                    .ring
                    .submitter()
                    .register_sync_cancel(Some(timeout), CancelBuilder::any());
                // A single-issuer ring refuses the synchronous cancel from other threads too
                // (EEXIST); ENOENT means there was nothing left to cancel.
                self.cancel_refused =
                    matches!(&synced, Err(e) if e.raw_os_error() != Some(libc::ENOENT));
                false
            }
            _ => {
                // The kernel holds the cancel SQE back while an `io_drain` operation is in
                // flight, so cancel synchronously as well (Linux 6.0+; older kernels refuse it
                // with EINVAL, and ENOENT means nothing was left to cancel). Waiting for the
                // cancelled operations is the drain loop's job, so the timeout is short.
                let timeout = io_uring::types::Timespec::new().nsec(1_000_000);
                let _ = self
                    .ring
                    .submitter()
                    .register_sync_cancel(Some(timeout), CancelBuilder::any());
                true
            }
        }
    }

    fn cancel_one_by_one(&mut self) {
        for user_data in self.inflight.live_user_data() {
            let cancel = opcode::AsyncCancel::new(user_data)
                .build()
                .user_data(INTERNAL_USER_DATA);
            if self.push_internal(&cancel).is_err() {
                return;
            }
        }
    }

    /// Queues an entry that points at no memory, submitting first if the queue is full.
    fn push_internal(&mut self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        if self.ring.submission().is_full() {
            enter(self.fd(), self.pending(), 0, 0, None)?;
        }
        // SAFETY: cancel entries carry only a user_data or flags, no pointer.
        unsafe { self.ring.submission().push(entry) }
            .map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))
    }

    /// Gives up on operations that never completed: their memory is leaked so the kernel can
    /// never write into freed memory. Returns how many were abandoned.
    fn leak_in_flight(&mut self) -> usize {
        let abandoned = self.inflight.len();
        std::mem::forget(std::mem::take(&mut self.inflight));
        abandoned
    }

    /// In a forked child: drop the child's copy without touching the parent's ring. The ring
    /// mappings were not inherited (MADV_DONTFORK), and unmapping their addresses here could
    /// unmap something else the child has placed there since, so only the descriptor is
    /// closed. The child's copies of buffers are its own and are freed normally.
    pub fn abandon_after_fork(self) {
        let fd = self.fd();
        let Ring { ring, .. } = self;
        std::mem::forget(ring);
        // SAFETY: `fd` is the child's inherited copy of the ring descriptor, which nothing
        // else in the child closes (the IoUring that owned it was just forgotten).
        unsafe { libc::close(fd) };
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
