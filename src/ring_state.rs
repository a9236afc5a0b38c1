//! The ring itself: queueing, submitting, waiting, reaping and draining. No Python types here
//! except where completions become Python objects.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::opcode;
use io_uring::squeue::Flags;
use io_uring::types::CancelBuilder;
use io_uring::EnterFlags;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::base::errors;
use crate::base::fork::Origin;
use crate::base::kernel_support::KernelSupport;
use crate::completion::{CompletionEvent, ResultInts, CQE_F_MORE};
use crate::inflight::{InFlight, INTERNAL_USER_DATA};
use crate::mem::caller_buffer::HeldBuffer;
use crate::mem::io_buf::BufferPool;
use crate::mem::lent::Lent;
use crate::ops::{Prepared, Refusal};
use crate::resources::buffer_group::BufferGroups;
use crate::resources::buffer_group::Group;
use crate::resources::file_table::FileTable;
use crate::resources::registered_buffers::BufferTable;

/// How long closing waits for operations to finish on their own when this thread may not
/// cancel them (a single-issuer ring closed from another thread) before leaking them.
pub const UNCANCELLABLE_GRACE: Duration = Duration::from_millis(250);

/// How long closing waits for the kernel to give back operations' memory before warning.
pub const DRAIN_WARN_AFTER: Duration = Duration::from_secs(2);
/// How long closing waits in all; after that the memory is leaked, never freed.
pub const DRAIN_GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// A completion taken off the CQ ring, not yet handed to Python.
#[derive(Clone, Copy)]
struct RawCompletion {
    user_data: u64,
    result: i32,
    flags: u32,
}

pub struct RingState {
    ring: io_uring::IoUring,
    inflight: InFlight,
    /// Completions moved off the CQ ring (to make room, or while waiting) and not yet reaped.
    ready: VecDeque<RawCompletion>,
    autosubmit: bool,
    /// What the running kernel supports.
    support: KernelSupport,
    /// An eventfd the ring created in `register_eventfd`, closed with the ring.
    owned_eventfd: Option<OwnedFd>,
    /// Buffers of reaped operations, for the next ones.
    pool: BufferPool,
    /// Whether the kernel has ever taken an entry off the submission queue. Until it has, it
    /// holds no pointer into any operation's memory (see `drain`).
    kernel_took_entries: bool,
    /// Set when this thread could neither submit a cancellation nor cancel synchronously.
    cancel_refused: bool,
    /// The registered file table.
    files: FileTable,
    /// The registered buffers.
    buffers: BufferTable,
    /// The process that made the ring: Python code run from inside a call (a signal handler, a
    /// `__del__`) may fork, and the child must not go on to read the ring's memory, which it
    /// does not have (MADV_DONTFORK), or submit to the parent's ring.
    origin: Origin,
    /// Provided buffer groups registered on this ring (dropped after `ring` and `inflight`).
    buffer_groups: BufferGroups,
    /// The `int` last made for a completion's result, reused while results repeat.
    result_ints: ResultInts,
    /// Whether an entry with `IOSQE_IO_DRAIN` was ever queued: from then on the kernel never
    /// starts a zero-copy send on this ring (see `errors::send_zc_after_drain`).
    drain_used: bool,
}

/// Why an operation may not be queued.
pub enum Refused {
    /// `buffer_select` on an operation that selects no buffer.
    BufferSelect,
    /// `skip_success` on an operation that owns memory: no completion would release it.
    SkipSuccessWithMemory,
    /// `skip_success` on a linked entry: if it failed, the kernel would post no completion for
    /// the entries linked after it.
    SkipSuccessWithLink,
    /// A refusal of the operation's own row.
    Row(Refusal),
    /// The running kernel lacks the opcode.
    Unsupported,
}

/// Why a drain stopped.
pub enum DrainOutcome {
    Finished,
    /// The given number of operations were still in flight when the time ran out.
    StillWaiting(usize),
    /// The given number of operations are still in flight and this thread can neither submit
    /// nor synchronously cancel them (a single-issuer ring closed from another thread).
    Uncancellable(usize),
}

impl RingState {
    pub fn new(ring: io_uring::IoUring, autosubmit: bool) -> Self {
        let support = KernelSupport::of(&ring);
        // An SQPOLL ring's kernel thread takes entries without any io_uring_enter.
        let kernel_took_entries = ring.params().is_setup_sqpoll();
        RingState {
            ring,
            inflight: InFlight::default(),
            ready: VecDeque::new(),
            autosubmit,
            support,
            owned_eventfd: None,
            pool: BufferPool::new(),
            kernel_took_entries,
            cancel_refused: false,
            files: FileTable::default(),
            buffers: BufferTable::default(),
            origin: Origin::here(),
            buffer_groups: BufferGroups::default(),
            result_ints: ResultInts::default(),
            drain_used: false,
        }
    }

    /// The process that made the ring.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Whether this process is a fork of the one that made the ring.
    pub fn forked(&self) -> bool {
        self.origin.is_forked()
    }

    /// What the running kernel supports.
    pub fn support(&self) -> &KernelSupport {
        &self.support
    }

    /// The registered file table.
    pub fn files(&self) -> &FileTable {
        &self.files
    }

    /// The registered buffers.
    pub fn buffers(&self) -> &BufferTable {
        &self.buffers
    }

    /// The provided buffer groups registered on this ring.
    pub fn buffer_groups(&self) -> &BufferGroups {
        &self.buffer_groups
    }

    pub fn register_files(&mut self, fds: &[i32]) -> PyResult<()> {
        let fd = self.fd();
        self.files.register(&self.ring.submitter(), fd, fds)
    }

    pub fn register_files_sparse(&mut self, count: u32) -> PyResult<()> {
        let fd = self.fd();
        self.files
            .register_sparse(&self.ring.submitter(), fd, count, &self.support)
    }

    /// Replaces slots of the file table; returns how many the kernel updated.
    pub fn update_files(&mut self, offset: u32, fds: &[i32]) -> PyResult<usize> {
        let fd = self.fd();
        self.files.update(&self.ring.submitter(), fd, offset, fds)
    }

    pub fn unregister_files(&mut self) -> PyResult<()> {
        self.files.unregister(&self.ring.submitter())
    }

    pub fn register_buffers(&mut self, held: Vec<HeldBuffer>) -> PyResult<()> {
        self.buffers.register(&self.ring.submitter(), held)
    }

    /// Unregisters the buffers, after submitting every queued entry: the kernel binds an entry
    /// to a registration when it consumes the entry, and each must bind to the one it holds.
    pub fn unregister_buffers(&mut self) -> PyResult<()> {
        if self.buffers.is_registered() && self.pending() > 0 {
            self.submit()?;
            let deadline = Instant::now() + Duration::from_secs(1);
            while self.pending() > 0 {
                // Only an SQPOLL ring gets here: its kernel thread has not caught up yet.
                if Instant::now() >= deadline {
                    return Err(PyRuntimeError::new_err(format!(
                        "unregister_buffers: {} queued entries were not taken up by the \
                         kernel's submission thread within a second; try again",
                        self.pending()
                    )));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        self.buffers.unregister(&self.ring.submitter())
    }

    /// Registers a provided buffer group with the kernel.
    pub fn register_buffer_group(&mut self, group: Group) -> PyResult<Arc<Group>> {
        self.buffer_groups.register(&self.ring.submitter(), group)
    }

    /// Refuses a group id that is taken on this ring (see [`BufferGroups::check_free`]).
    pub fn check_group_id_free(&mut self, id: u16) -> PyResult<()> {
        self.buffer_groups.check_free(id)
    }

    /// Unregisters the provided buffer group of this id; `false` if there is none.
    pub fn unregister_buffer_group(&mut self, id: u16) -> PyResult<bool> {
        self.buffer_groups.unregister(&self.ring.submitter(), id)
    }

    pub fn fd(&self) -> i32 {
        self.ring.as_raw_fd()
    }

    /// Entries queued and not yet consumed by the kernel.
    pub fn pending(&mut self) -> u32 {
        self.ring.submission().len() as u32
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    pub fn pool(&mut self) -> &mut BufferPool {
        &mut self.pool
    }

    pub fn set_owned_eventfd(&mut self, fd: OwnedFd) {
        self.owned_eventfd = Some(fd);
    }

    pub fn register_eventfd(&self, fd: i32) -> io::Result<()> {
        self.ring.submitter().register_eventfd(fd)
    }

    /// Why `prepared` may not be queued with `flags`, if it may not: the rules every operation
    /// follows, those of its row, and the kernel's support for it.
    #[inline]
    pub fn refusal(&self, prepared: &Prepared, flags: Flags) -> Option<Refused> {
        let op = prepared.op;
        if !flags.is_empty() {
            if flags.contains(Flags::BUFFER_SELECT) {
                // Operations that select a buffer set the flag themselves.
                return Some(Refused::BufferSelect);
            }
            if flags.contains(Flags::SKIP_SUCCESS) {
                if !prepared.lent.is_nothing() {
                    return Some(Refused::SkipSuccessWithMemory);
                }
                if flags.intersects(Flags::IO_LINK | Flags::IO_HARDLINK) {
                    return Some(Refused::SkipSuccessWithLink);
                }
            }
        }
        let drained = self.drain_used || flags.contains(Flags::IO_DRAIN);
        if drained && op.refuses.contains(&Refusal::DrainedRing) {
            return Some(Refused::Row(Refusal::DrainedRing));
        }
        if !self.support.opcode(op.opcode) {
            return Some(Refused::Unsupported);
        }
        None
    }

    /// Queues one operation. Its memory moves into the in-flight table, where it stays until
    /// the completion for the returned `user_data` is reaped.
    pub fn push(&mut self, prepared: Prepared, flags: Flags) -> PyResult<u64> {
        let mut sq = self.ring.submission();
        if sq.is_full() {
            drop(sq);
            self.make_room()?;
            sq = self.ring.submission();
        }
        let Prepared { entry, lent, .. } = prepared;
        let user_data = if flags.contains(Flags::SKIP_SUCCESS) {
            debug_assert!(
                lent.is_nothing(),
                "skip_success is refused for owned memory"
            );
            self.inflight.untracked_user_data()
        } else {
            self.inflight.insert(lent)
        };
        let entry = entry.user_data(user_data).flags(flags);
        self.drain_used |= flags.contains(Flags::IO_DRAIN);
        // SAFETY: every pointer in `entry` points into heap memory now owned by the in-flight
        // table under `user_data` (or the entry holds no pointer at all), and that memory is
        // freed only once the completion for `user_data` has been reaped, or leaked if the
        // ring is torn down without one. The queue has room: it was checked just above.
        unsafe { sq.push(&entry) }.expect("the queue has room");
        Ok(user_data)
    }

    /// Makes room in a full submission queue by submitting it, or refuses when autosubmit is
    /// off.
    fn make_room(&mut self) -> PyResult<()> {
        if !self.autosubmit {
            return Err(errors::bad_arg(format!(
                "The submission queue is full ({} entries) and autosubmit is off; call \
                 submit() before queueing more",
                self.ring.params().sq_entries()
            )));
        }
        self.submit()?;
        while self.ring.submission().is_full() {
            // Only an SQPOLL ring can still be full: its kernel thread has not caught up.
            match enter(self.fd(), 0, 0, EnterFlags::SQ_WAIT.bits(), None) {
                Ok(_) => {}
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
                Err(err) => return Err(errors::enter_error(&err)),
            }
        }
        Ok(())
    }

    /// Submits every queued entry without waiting. Returns how many were submitted.
    pub fn submit(&mut self) -> PyResult<u32> {
        self.submit_and_collect(0, None, None)
    }

    /// Submits, then waits until at least `want` completions are ready (counting those already
    /// taken off the ring), or until `timeout` passes. Waits release the GIL when `py` is given;
    /// signals are handled as PEP 475 asks.
    pub fn submit_and_collect(
        &mut self,
        want: usize,
        timeout: Option<Duration>,
        py: Option<Python<'_>>,
    ) -> PyResult<u32> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut submitted = 0u32;
        let mut timed_out = false;
        let mut retries = 0u32;
        loop {
            self.collect()?;
            let pending = self.pending();
            let missing = want.saturating_sub(self.ready.len());
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            timed_out |= remaining == Some(Duration::ZERO);
            if pending == 0 && (missing == 0 || timed_out) {
                return Ok(submitted);
            }
            let min_complete = if timed_out {
                0
            } else {
                // The CQ ring was just emptied, so the kernel can post up to its capacity; more
                // arrive through the overflow list as we reap.
                missing.min(self.ring.completion().capacity()) as u32
            };
            let mut flags = 0;
            if min_complete > 0 {
                flags |= EnterFlags::GETEVENTS.bits();
            }
            if self.ring.params().is_setup_sqpoll() {
                fence(Ordering::SeqCst);
                if self.ring.submission().need_wakeup() {
                    flags |= EnterFlags::SQ_WAKEUP.bits();
                } else if min_complete == 0 {
                    // The kernel thread is awake and will pick the entries up.
                    return Ok(submitted + pending);
                }
            }
            let fd = self.fd();
            let timespec = remaining.filter(|_| min_complete > 0).map(timespec);
            let result = match py {
                Some(py) if min_complete > 0 => {
                    py.detach(|| enter(fd, pending, min_complete, flags, timespec.as_ref()))
                }
                _ => enter(fd, pending, min_complete, flags, timespec.as_ref()),
            };
            match result {
                Ok(count) => {
                    if count == 0 && pending > 0 && !self.ring.params().is_setup_sqpoll() {
                        // The kernel always takes at least one entry from its own ring's
                        // queue: this descriptor no longer refers to the ring (the caller
                        // closed it, and the number may now name another ring). Looping would
                        // never end.
                        return Err(errors::ring_fd_lost(fd, pending));
                    }
                    submitted += count;
                    self.kernel_took_entries |= count > 0;
                    retries = 0;
                    // A signal that interrupts the wait after entries were submitted comes
                    // back as that count, not EINTR; its Python handler must still run.
                    if let (Some(py), true) = (py, min_complete > 0) {
                        py.check_signals()?;
                    }
                }
                Err(err) => match err.raw_os_error() {
                    Some(libc::ETIME) => timed_out = true,
                    Some(libc::EINTR) => {
                        if let Some(py) = py {
                            py.check_signals()?;
                        }
                    }
                    // The kernel is short of request memory, or its overflow backlog is full:
                    // reaping (at the top of the loop) frees both.
                    Some(libc::EAGAIN | libc::EBUSY) if retries < 1000 => {
                        retries += 1;
                        if retries > 10 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    _ => return Err(errors::enter_error(&err)),
                },
            }
        }
    }

    /// Moves every completion the kernel has posted, including its overflow backlog, into
    /// `ready`. Never drops one.
    fn collect(&mut self) -> PyResult<()> {
        if self.forked() {
            return Err(errors::forked(self.origin.pid()));
        }
        // Bounded so a ring that keeps overflowing under load cannot keep us here forever;
        // what is left is collected next time.
        for _ in 0..64 {
            self.ready
                .extend(self.ring.completion().map(|cqe| RawCompletion {
                    user_data: cqe.user_data(),
                    result: cqe.result(),
                    flags: cqe.flags(),
                }));
            let sq = self.ring.submission();
            if !sq.cq_overflow() && !sq.taskrun() {
                break;
            }
            drop(sq);
            // The kernel moves its backlog onto the (now empty) CQ ring, and runs completion
            // work deferred by COOP_TASKRUN, only inside io_uring_enter with GETEVENTS.
            match enter(self.fd(), 0, 0, EnterFlags::GETEVENTS.bits(), None) {
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(err) => return Err(errors::enter_error(&err)),
            }
        }
        Ok(())
    }

    /// Every completion ready now, oldest first, as Python objects.
    pub fn reap<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.collect()?;
        // The list is made at its final length in one go, cheaper per completion than
        // appending to a growing one.
        let mut events = Vec::with_capacity(self.ready.len());
        while let Some(raw) = self.ready.pop_front() {
            let mut extra = None;
            // Every completion, final or not, may carry data in provided buffers.
            let provided_buffer = match self.inflight.get(raw.user_data) {
                Some(lent @ Lent::Other(_)) => lent
                    .on_completion(py, raw.result, raw.flags)
                    .unwrap_or_else(|err| {
                        extra = Some(err.into_value(py).into_any());
                        None
                    }),
                _ => None,
            };
            let buffer = match self.release(raw) {
                // The commonest case, per completion: nothing to free or report.
                Some(Lent::Nothing) | None => None,
                Some(lent) => match lent.finish(py, raw.result, &mut self.pool) {
                    Ok(report) => {
                        extra = report.extra.or(extra);
                        report.buffer
                    }
                    // Never lose the completion: deliver it, with the reason its details could
                    // not be read (say, a MemoryError) as `extra`.
                    Err(err) => {
                        extra = Some(err.into_value(py).into_any());
                        None
                    }
                },
            };
            let event = CompletionEvent::new(
                py,
                &mut self.result_ints,
                raw.result,
                raw.user_data,
                raw.flags,
                buffer,
                extra,
                provided_buffer,
            );
            events.push(Bound::new(py, event)?);
        }
        PyList::new(py, events)
    }

    /// What the completed operation owned, now that the kernel is done with it. A completion
    /// flagged MORE is not the last one, so its memory stays in the table.
    fn release(&mut self, raw: RawCompletion) -> Option<Lent> {
        if raw.flags & CQE_F_MORE != 0 {
            None
        } else {
            self.inflight.remove(raw.user_data)
        }
    }

    /// Cancels everything in flight and waits, for at most `budget`, until the kernel has
    /// posted a final completion for every operation. Completions are discarded: the ring is
    /// closing.
    pub fn drain(&mut self, budget: Duration) -> DrainOutcome {
        if !self.kernel_took_entries {
            // No io_uring_enter ever submitted anything (a seccomp filter may allow
            // io_uring_setup but refuse io_uring_enter): the kernel has never seen a pointer,
            // so the memory can be freed without cancelling or waiting for anything.
            return DrainOutcome::Finished;
        }
        let started = Instant::now();
        let mut cancelled_at: Option<Instant> = None;
        let mut can_submit = true;
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
            // Ask again every second: an operation may have been between states the first time.
            if can_submit && cancelled_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                can_submit = self.cancel_everything();
                cancelled_at = Some(Instant::now());
            }
            let slice = (budget - waited).min(Duration::from_millis(250));
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
    pub fn leak_in_flight(&mut self) -> usize {
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
        let RingState { ring, .. } = self;
        std::mem::forget(ring);
        // SAFETY: `fd` is the child's inherited copy of the ring descriptor, which nothing
        // else in the child closes (the IoUring that owned it was just forgotten).
        unsafe { libc::close(fd) };
    }
}

fn timespec(duration: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: duration.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: duration.subsec_nanos() as libc::c_long,
    }
}

/// `struct io_uring_getevents_arg` from `<linux/io_uring.h>`.
#[repr(C)]
struct GetEventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `io_uring_enter(2)`, with a relative timeout passed through `IORING_ENTER_EXT_ARG` (so no
/// timeout SQE is ever left behind). Takes only plain values, so it can run with the GIL
/// released.
fn enter(
    fd: i32,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    timeout: Option<&libc::timespec>,
) -> io::Result<u32> {
    let arg = timeout.map(|ts| GetEventsArg {
        sigmask: 0,
        sigmask_sz: 0,
        min_wait_usec: 0,
        ts: ts as *const libc::timespec as u64,
    });
    let (flags, arg_ptr, arg_size) = match &arg {
        Some(arg) => (
            flags | EnterFlags::EXT_ARG.bits(),
            arg as *const GetEventsArg as usize,
            size_of::<GetEventsArg>(),
        ),
        None => (flags, 0, 0),
    };
    // SAFETY: io_uring_enter reads `arg_size` bytes at `arg_ptr` (a live GetEventsArg whose
    // `ts` points at a live timespec, both outliving the call) or nothing when it is null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            to_submit,
            min_complete,
            flags,
            arg_ptr,
            arg_size,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as u32)
    }
}
