//! A ring: queueing prepared operations, submitting, waiting, and collecting their completions
//! (which `reap.rs` turns into events).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use io_uring::squeue::Flags;
use io_uring::EnterFlags;
use pyo3::prelude::*;

use super::completion_event::{ResultInts, CQE_F_MORE};
use super::delivery::GivenBack;
use super::enter::{enter, timespec};
use super::inflight::InFlight;
use crate::base::errors;
use crate::base::fork::Origin;
use crate::base::kernel_support::KernelSupport;
use crate::mem::heap_reserve::HeapReserve;
use crate::mem::io_buf::BufferPool;
use crate::mem::lent::Lent;
use crate::ops::{Operation, Prepared, Restriction};
use crate::resources::buffer_group::BufferGroups;
use crate::resources::file_table::FileTable;
use crate::resources::registered_buffers::BufferTable;

/// A completion taken off the CQ ring, not yet handed to Python.
#[derive(Clone, Copy)]
pub(super) struct RawCompletion {
    pub(super) user_data: u64,
    pub(super) result: i32,
    pub(super) flags: u32,
}

/// One io_uring instance and what it keeps for its operations. Fields are dropped in order:
/// the kernel ring first, then the memory of operations (all completed or leaked by then), and
/// the buffer groups after both.
pub struct Ring {
    pub(super) ring: io_uring::IoUring,
    pub(super) inflight: InFlight,
    /// Completions moved off the CQ ring (to make room, or while waiting) and not yet reaped.
    pub(super) ready: VecDeque<RawCompletion>,
    /// Events given back by a receiver that could not keep them, to be delivered first (see
    /// `reap.rs`).
    pub(super) reaped: VecDeque<GivenBack>,
    pub(super) autosubmit: bool,
    /// What the running kernel supports.
    pub(super) support: KernelSupport,
    /// An eventfd the ring created in `register_eventfd`, closed with the ring.
    pub(super) owned_eventfd: Option<OwnedFd>,
    /// Buffers of reaped operations, for the next ones.
    pub(super) pool: BufferPool,
    /// Whether the kernel has ever taken an entry off the submission queue. Until it has, it
    /// holds no pointer into any operation's memory (see `drain`).
    pub(super) kernel_took_entries: bool,
    /// Set when this thread could neither submit a cancellation nor cancel synchronously.
    pub(super) cancel_refused: bool,
    /// The registered file table.
    pub(super) files: FileTable,
    /// The registered buffers.
    pub(super) buffers: BufferTable,
    /// The process that made the ring: Python code run from inside a call (a signal handler, a
    /// `__del__`) may fork, and the child must not go on to read the ring's memory, which it
    /// does not have (MADV_DONTFORK), or submit to the parent's ring.
    pub(super) origin: Origin,
    /// Provided buffer groups registered on this ring (dropped after `ring` and `inflight`).
    pub(super) buffer_groups: BufferGroups,
    /// The `int` last made for a completion's result, reused while results repeat.
    pub(super) result_ints: ResultInts,
    /// A block kept above the `bytes` objects reaping makes (see `mem::heap_reserve`).
    pub(super) heap_reserve: HeapReserve,
    /// Whether an entry with `IOSQE_IO_DRAIN` was ever queued (see `Restriction::DrainedRing`).
    pub(super) drain_used: bool,
}

/// Why an operation may not be queued.
pub enum Refusal {
    /// `buffer_select` on an operation that selects no buffer.
    BufferSelect,
    /// `skip_success` on an operation that owns memory: no completion would release it.
    SkipSuccessWithMemory,
    /// `skip_success` on a linked entry: if it failed, the kernel would post no completion for
    /// the entries linked after it.
    SkipSuccessWithLink,
    /// A restriction of the operation's own row.
    Restricted(Restriction),
    /// The running kernel lacks the opcode.
    Unsupported,
}

impl Ring {
    pub fn new(ring: io_uring::IoUring, autosubmit: bool) -> Self {
        let support = KernelSupport::of(&ring);
        // An SQPOLL ring's kernel thread takes entries without any io_uring_enter.
        let kernel_took_entries = ring.params().is_setup_sqpoll();
        Ring {
            ring,
            inflight: InFlight::default(),
            ready: VecDeque::new(),
            reaped: VecDeque::new(),
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
            heap_reserve: HeapReserve::default(),
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

    /// Queues one operation, unless it is refused (see [`Ring::refusal`]); `explain` words the
    /// refusal for the caller, who knows what the operation is called. The operation's memory
    /// moves into the in-flight table, where it stays until the completion for the returned
    /// `user_data` is reaped.
    #[inline]
    pub fn queue(
        &mut self,
        prepared: Prepared,
        flags: Flags,
        explain: fn(Refusal, &'static Operation) -> PyErr,
    ) -> PyResult<u64> {
        match self.refusal(&prepared, flags) {
            Some(refusal) => Err(explain(refusal, prepared.op)),
            None => self.push(prepared, flags),
        }
    }

    /// Why `prepared` may not be queued with `flags`, if it may not: the rules every operation
    /// follows, those of its row, and the kernel's support for it.
    #[inline]
    fn refusal(&self, prepared: &Prepared, flags: Flags) -> Option<Refusal> {
        let op = prepared.op;
        if !flags.is_empty() {
            if flags.contains(Flags::BUFFER_SELECT) {
                // Operations that select a buffer set the flag themselves.
                return Some(Refusal::BufferSelect);
            }
            if flags.contains(Flags::SKIP_SUCCESS) {
                if !prepared.lent.is_nothing() {
                    return Some(Refusal::SkipSuccessWithMemory);
                }
                if flags.intersects(Flags::IO_LINK | Flags::IO_HARDLINK) {
                    return Some(Refusal::SkipSuccessWithLink);
                }
            }
        }
        let drained = self.drain_used || flags.contains(Flags::IO_DRAIN);
        if drained && op.refuses.contains(&Restriction::DrainedRing) {
            return Some(Refusal::Restricted(Restriction::DrainedRing));
        }
        if !self.support.opcode(op.opcode) {
            return Some(Refusal::Unsupported);
        }
        None
    }

    /// Queues an operation that `refusal` has let through.
    fn push(&mut self, prepared: Prepared, flags: Flags) -> PyResult<u64> {
        let mut sq = self.ring.submission();
        if sq.is_full() {
            drop(sq);
            self.make_room()?;
            sq = self.ring.submission();
        }
        let Prepared { entry, lent, .. } = prepared;
        let user_data = if flags.contains(Flags::SKIP_SUCCESS) {
            // `refusal` let skip_success through only for an operation that owns nothing.
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
        self.submit_and_wait(0, None, None)
    }

    /// Submits, then waits until at least `want` completions are ready (counting those already
    /// taken off the ring), or until `timeout` passes. Waits release the GIL when `py` is given;
    /// signals are handled as PEP 475 asks.
    pub fn submit_and_wait(
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

    /// Takes every completion the kernel has posted, including its overflow backlog, off the
    /// completion queue, to be reaped; never drops one.
    pub fn collect(&mut self) -> PyResult<()> {
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

    /// What the completed operation owned, now that the kernel is done with it. A completion
    /// flagged MORE is not the last one, so its memory stays in the table.
    pub(super) fn release(&mut self, raw: RawCompletion) -> Option<Lent> {
        if raw.flags & CQE_F_MORE != 0 {
            None
        } else {
            self.inflight.remove(raw.user_data)
        }
    }
}
