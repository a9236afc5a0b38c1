//! Provided buffer rings (`IORING_REGISTER_PBUF_RING`, Linux 5.19): a group of equal buffers
//! that the kernel picks from when a receive completes, instead of the receive naming its buffer
//! up front.
//!
//! The memory model:
//!
//! * The *entries ring* (`count` × 16-byte `io_uring_buf`, page-aligned) is an anonymous mapping
//!   of our own. We are its only writer (entries and the tail); the kernel reads it, and pins its
//!   pages while the group is registered, so unmapping our view of it later never pulls memory
//!   from under the kernel.
//! * The *data area* (`count` × `size` bytes) is a Python `mmap.mmap(-1, ...)`. A writable
//!   [`HeldBuffer`] export of it gives the kernel's addresses and stops `close()`/`resize()` on
//!   it for as long as the group lives; the data a completion selected is handed to Python as
//!   `memoryview` slices of it, which keep the mapping alive themselves (CPython's managed
//!   buffer), so no view can ever outlive the memory it shows. (An abi3 module cannot implement
//!   the buffer protocol on its own class, so the views come from the mmap object.)
//! * Everything lives in one [`Group`] behind an `Arc`. The ring's registry holds one while the
//!   group is registered; each operation that selects from the group holds one (in its in-flight
//!   entry) until its final completion, so unregistering or closing the ring while a multishot
//!   receive is armed never frees memory the kernel may still write; each [`ProvidedBuffer`]
//!   holds one while the user has the data.
//!
//! Returning a buffer writes its entry at the tail and publishes the tail with a release store.
//! For recv bundles the completion names only the first buffer id; the following ones are those
//! we wrote after it, which [`Book::next_of`] remembers.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use io_uring::opcode;
use io_uring::types::{BufRingEntry, Fd};
use io_uring::Submitter;
use pyo3::exceptions::{PyBufferError, PyNotImplementedError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyMemoryView, PySlice, PyTuple, PyType};

use crate::base::args::int_in;
use crate::base::errors::{self, bad_arg};
use crate::base::fork;
use crate::mem::caller_buffer::{Access, HeldBuffer};
use crate::mem::lent::{Lent, LentMemory};
use crate::ops::{net, Prepared};
use crate::ring::IoUring;
use crate::sqe_flags;

/// `IORING_CQE_F_BUFFER`: the completion's upper 16 flag bits are a provided buffer's id.
pub const CQE_F_BUFFER: u32 = 1 << 0;
const CQE_BUFFER_SHIFT: u32 = 16;
/// `IORING_RECV_MULTISHOT` (in the SQE's `ioprio`), Linux 6.0.
const RECV_MULTISHOT: u16 = 1 << 1;
/// `IORING_RECVSEND_BUNDLE` (in the SQE's `ioprio`), Linux 6.10.
const RECVSEND_BUNDLE: u16 = 1 << 4;

/// The kernel's limit on entries in one buffer ring.
const MAX_COUNT: i64 = 32768;
/// One buffer: what one receive may move (`len` is 32 bits; Linux moves under 2 GiB per call).
const MAX_SIZE: i64 = i32::MAX as i64;
/// A whole group's data area; beyond this is surely a mistake, not a buffer pool.
const MAX_TOTAL: u64 = 1 << 36;

/// The page-aligned array of `io_uring_buf` entries the kernel reads buffers from.
struct Entries {
    base: NonNull<BufRingEntry>,
    bytes: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; entries are written only under
// the owning group's `book` lock, and the pointer is never handed out.
unsafe impl Send for Entries {}
// SAFETY: as above; shared references never write without holding the group's lock.
unsafe impl Sync for Entries {}

impl Entries {
    fn new(count: u32) -> PyResult<Self> {
        // SAFETY: sysconf takes no pointers.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let bytes = (count as usize * size_of::<BufRingEntry>()).next_multiple_of(page);
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory. The result is checked before use.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            let err = std::io::Error::last_os_error();
            return Err(errors::os_error(
                &err,
                "cannot map memory for the buffer ring's entries",
            ));
        }
        Ok(Entries {
            base: NonNull::new(raw.cast()).expect("mmap never returns null on success"),
            bytes,
        })
    }

    /// The ring's tail: the `resv` field of entry 0, which the kernel reads as the tail.
    fn tail(&self) -> &AtomicU16 {
        // SAFETY: `base` is the page-aligned first entry of a live mapping, so the field is in
        // bounds and 2-byte aligned; only we write it (atomically), the kernel only reads it.
        unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.base.as_ptr()).cast_mut()) }
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once. The group is unregistered (or
        // its ring closed) by now; the kernel pinned these pages while it used them, so removing
        // our mapping never frees memory the kernel reads.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}

/// Bookkeeping of which buffers are in the ring, under the group's lock.
struct Book {
    /// The next ring position to write (the kernel's tail; wraps at 2**16 as the kernel's does).
    tail: u16,
    /// For each buffer id, the id written at the ring position after it. A bundle completion
    /// names its first buffer; the rest follow in ring order. An entry changes only when its
    /// buffer is written again, which cannot happen while the buffer is out of the ring.
    next_of: Vec<u16>,
    /// The id written last, whose successor is not known yet.
    last: Option<u16>,
    /// For each buffer id, whether a completion took it and it has not been given back; only
    /// such buffers are written to the ring, so none is ever in it twice.
    out: Vec<bool>,
    /// Buffers not handed to a reaped completion.
    available: u32,
    /// False once unregistered or the ring closed: nothing is written to the entries then.
    registered: bool,
}

/// One provided buffer group: its entries ring, its data, and what is in the ring.
pub struct Group {
    id: u16,
    count: u32,
    size: u32,
    entries: Entries,
    data: HeldBuffer,
    /// A `memoryview` of the whole data area; completions get slices of it.
    whole: Py<PyAny>,
    book: Mutex<Book>,
    /// Operations queued with this group that have not posted their final completion.
    armed: AtomicUsize,
    fork_generation: u64,
}

impl Group {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes buffer `bid` at the tail (not yet published).
    fn write_entry(&self, book: &mut Book, bid: u16) {
        let index = (u32::from(book.tail) & (self.count - 1)) as usize;
        let addr = self.data.as_ptr() as u64 + u64::from(bid) * u64::from(self.size);
        // SAFETY: `index < count`, inside the mapping. This position is free: every buffer is
        // in the ring at most once (a buffer is written only when `out` says a completion took
        // it), so at most `count` entries sit between the kernel's head and our tail, and the
        // slot at the tail is one the kernel has consumed. The kernel reads entry 0's `resv`
        // as the tail, which the setters below leave alone. And whatever the bookkeeping,
        // every address ever written here lies inside the data area, which outlives every
        // operation that may select from this group.
        let entry = unsafe { &mut *self.entries.base.as_ptr().add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        if let Some(previous) = book.last {
            book.next_of[previous as usize] = bid;
        }
        book.last = Some(bid);
        book.tail = book.tail.wrapping_add(1);
    }

    /// Puts buffers back in the ring, if the group is still registered in this process.
    fn give_back(&self, bids: &[u16]) {
        let mut book = self.book();
        if !book.registered || fork::generation() != self.fork_generation {
            return;
        }
        for &bid in bids {
            if std::mem::take(&mut book.out[bid as usize]) {
                self.write_entry(&mut book, bid);
                book.available += 1;
            }
        }
        // The entries are written before the kernel can see the tail that covers them.
        self.entries.tail().store(book.tail, Ordering::Release);
    }

    /// The ids of the `nbufs` buffers a completion took, starting with `first`.
    fn take(&self, first: u16, nbufs: usize) -> PyResult<Vec<u16>> {
        let mut book = self.book();
        if u32::from(first) >= self.count || nbufs > self.count as usize {
            return Err(PyRuntimeError::new_err(format!(
                "the kernel reported {nbufs} buffer(s) from id {first} of buffer group {}, \
                 which has {} buffers",
                self.id, self.count
            )));
        }
        let mut bids = Vec::with_capacity(nbufs);
        let mut bid = first;
        for _ in 0..nbufs {
            bids.push(bid);
            if !std::mem::replace(&mut book.out[bid as usize], true) {
                book.available = book.available.saturating_sub(1);
            }
            bid = book.next_of[bid as usize];
        }
        Ok(bids)
    }

    fn views(&self, py: Python<'_>, bids: &[u16], mut len: usize) -> PyResult<Vec<Py<PyAny>>> {
        let whole = self.whole.bind(py);
        bids.iter()
            .map(|&bid| {
                let start = bid as usize * self.size as usize;
                let part = len.min(self.size as usize);
                len -= part;
                let slice = PySlice::new(py, start as isize, (start + part) as isize, 1);
                Ok(whole.get_item(slice)?.unbind())
            })
            .collect()
    }
}

/// An operation's hold on a group: keeps its memory alive and counts it as armed.
pub struct GroupUse(Arc<Group>);

impl GroupUse {
    fn new(group: Arc<Group>) -> Self {
        group.armed.fetch_add(1, Ordering::Relaxed);
        GroupUse(group)
    }
}

impl Drop for GroupUse {
    fn drop(&mut self) {
        self.0.armed.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The groups registered on one ring.
#[derive(Default)]
pub struct BufferRings {
    live: Vec<Arc<Group>>,
    /// Unregistered groups, to refuse reusing an id while an operation armed on the old group
    /// may still complete: its buffer ids would be read against the wrong group.
    retired: Vec<Weak<Group>>,
}

impl BufferRings {
    fn find(&self, group_id: u16) -> Option<&Arc<Group>> {
        self.live.iter().find(|g| g.id == group_id)
    }

    fn unregister(&mut self, submitter: &Submitter<'_>, group_id: u16) -> PyResult<bool> {
        let Some(index) = self.live.iter().position(|g| g.id == group_id) else {
            return Ok(false);
        };
        let group = &self.live[index];
        let mut book = group.book();
        submitter.unregister_buf_ring(group_id).map_err(|err| {
            errors::os_error(&err, &format!("cannot unregister buffer group {group_id}"))
        })?;
        book.registered = false;
        drop(book);
        let group = self.live.swap_remove(index);
        self.retired.retain(|weak| weak.strong_count() > 0);
        self.retired.push(Arc::downgrade(&group));
        Ok(true)
    }
}

impl Drop for BufferRings {
    fn drop(&mut self) {
        // The ring is closing: its groups go with it.
        for group in &self.live {
            group.book().registered = false;
        }
    }
}

/// A provided buffer ring registered on an :class:`IoUring` with
/// :meth:`IoUring.register_buffer_ring`: ``count`` buffers of ``size`` bytes, known to the
/// kernel as group ``group_id``. Pass it (or its ``group_id``) as ``buffer_group`` to
/// :meth:`IoUring.prep_recv`; each completion then carries a :class:`ProvidedBuffer`.
///
/// Leaving a ``with`` block unregisters it. See :doc:`buffer-rings`.
#[pyclass(frozen, module = "century_ring")]
pub struct BufferRing {
    group: Arc<Group>,
    ring: Py<IoUring>,
}

#[pymethods]
impl BufferRing {
    /// The buffer group id, ``0`` to ``65535``.
    #[getter]
    fn group_id(&self) -> u16 {
        self.group.id
    }

    /// How many buffers the group has.
    #[getter]
    fn count(&self) -> u32 {
        self.group.count
    }

    /// The size of each buffer, in bytes.
    #[getter]
    fn size(&self) -> u32 {
        self.group.size
    }

    /// How many buffers are in the ring for the kernel to fill: all of them, less those held
    /// by :class:`ProvidedBuffer` objects not yet released. (Buffers the kernel has taken for
    /// completions not reaped yet still count here until they are reaped.)
    #[getter]
    fn available(&self) -> u32 {
        self.group.book().available
    }

    /// ``True`` until the group is unregistered or its ring closed.
    #[getter]
    fn registered(&self) -> bool {
        self.group.book().registered
    }

    /// Unregisters the group from its ring (``IORING_UNREGISTER_PBUF_RING``). Receives still
    /// armed on it complete with ``-ENOBUFS`` when data next arrives; their memory, and that
    /// of every :class:`ProvidedBuffer` still held, stays valid until they are done with it.
    /// Releasing a :class:`ProvidedBuffer` afterwards only marks it released. Does nothing if
    /// the group is already unregistered or the ring closed.
    ///
    /// :raises OSError: The kernel refused to unregister it.
    fn unregister(&self) -> PyResult<()> {
        let group = &self.group;
        if !group.book().registered {
            return Ok(());
        }
        // A closed ring marked its groups unregistered (above), so this ring is open unless
        // it closed in between, which `with_ring` reports.
        self.ring.get().with_ring(|ring| {
            let (rings, submitter) = ring.buffer_rings();
            if rings.find(group.id).is_some_and(|g| Arc::ptr_eq(g, group)) {
                rings.unregister(&submitter, group.id)?;
            }
            Ok(())
        })
    }

    /// The same as :meth:`unregister`.
    fn close(&self) -> PyResult<()> {
        self.unregister()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.unregister()
    }

    fn __repr__(&self) -> String {
        let book = self.group.book();
        format!(
            "<BufferRing group_id={} count={} size={} available={}{}>",
            self.group.id,
            self.group.count,
            self.group.size,
            book.available,
            if book.registered { "" } else { " unregistered" }
        )
    }
}

/// The data a receive put in provided buffers: one buffer, or for a recv bundle several taken
/// in ring order. It hands the buffer(s) back to the :class:`BufferRing` when released: call
/// :meth:`release`, leave a ``with`` block, or drop the last reference.
///
/// The data is read through :class:`memoryview` objects of the ring's memory (no copy). They
/// are released together with this object; using them, or this object, afterwards raises
/// :class:`ValueError`. Views *derived* from them (slices, ``memoryview(m)``) are not released
/// and never point to freed memory, but show whatever the kernel writes into the buffer once
/// it is back in the ring: take a copy (:meth:`tobytes`) of what must outlive the release.
#[pyclass(module = "century_ring")]
pub struct ProvidedBuffer {
    group: Arc<Group>,
    bids: Vec<u16>,
    len: usize,
    /// One `memoryview` per buffer; emptied on release.
    views: Vec<Py<PyAny>>,
    released: bool,
}

impl ProvidedBuffer {
    /// The buffers a completion took: `nbufs` of them from `first`, holding `len` bytes.
    fn for_completion(
        py: Python<'_>,
        group: &Arc<Group>,
        first: u16,
        nbufs: usize,
        len: usize,
    ) -> PyResult<Self> {
        let bids = group.take(first, nbufs)?;
        let views = match group.views(py, &bids, len) {
            Ok(views) => views,
            Err(err) => {
                group.give_back(&bids);
                return Err(err);
            }
        };
        Ok(ProvidedBuffer {
            group: group.clone(),
            bids,
            len,
            views,
            released: false,
        })
    }

    fn check_open(&self) -> PyResult<()> {
        if self.released {
            return Err(bad_arg(format!(
                "this ProvidedBuffer (buffer {} of group {}) has been released: its buffer \
                 went back to the ring and may hold other data now",
                self.bids[0], self.group.id
            )));
        }
        Ok(())
    }

    /// Releases the memoryviews; returns the buffers to the ring only if all of them could be.
    fn try_release(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.released {
            return Ok(());
        }
        for view in &self.views {
            if let Err(err) = view.bind(py).call_method0(pyo3::intern!(py, "release")) {
                if err.is_instance_of::<PyBufferError>(py) {
                    let wrapped = PyBufferError::new_err(format!(
                        "cannot release this ProvidedBuffer (buffer {} of group {}): \
                         something still holds a buffer export of its memoryview (such as a \
                         pickle.PickleBuffer made from .memory). Release that first; the \
                         buffer stays out of the ring until then.",
                        self.bids[0], self.group.id
                    ));
                    wrapped.set_cause(py, Some(err));
                    return Err(wrapped);
                }
                return Err(err);
            }
        }
        self.released = true;
        self.views.clear();
        self.group.give_back(&self.bids);
        Ok(())
    }
}

impl Drop for ProvidedBuffer {
    fn drop(&mut self) {
        if !self.released && !self.views.is_empty() {
            // Dropped unreleased: hand the buffer back, unless something still exports its
            // memory, in which case it stays out of the ring (never overwritten under a reader).
            Python::attach(|py| {
                let _ = self.try_release(py);
            });
        }
    }
}

#[pymethods]
impl ProvidedBuffer {
    /// The received data, as a :class:`memoryview` of exactly ``len(self)`` bytes of the
    /// buffer (writable; no copy).
    ///
    /// :raises ValueError: It has been released, or it spans several buffers (a recv bundle):
    ///     use :attr:`memories` or :meth:`tobytes` then.
    #[getter]
    fn memory(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.check_open()?;
        match self.views.as_slice() {
            [only] => Ok(only.clone_ref(py)),
            views => Err(bad_arg(format!(
                "this ProvidedBuffer spans {} buffers (a recv bundle); use .memories for one \
                 memoryview per buffer, or tobytes() for one copy",
                views.len()
            ))),
        }
    }

    /// The received data as a tuple of :class:`memoryview` objects, one per buffer in the
    /// order the data arrived: every one ``size`` bytes long except perhaps the last.
    ///
    /// :raises ValueError: It has been released.
    #[getter]
    fn memories<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.check_open()?;
        PyTuple::new(py, self.views.iter().map(|v| v.bind(py)))
    }

    /// The id of the (first) buffer, as the completion's flags give it (``flags >> 16``).
    #[getter]
    fn buffer_id(&self) -> u16 {
        self.bids[0]
    }

    /// The ids of every buffer the data occupies, in order (one unless it is a recv bundle).
    #[getter]
    fn buffer_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.bids)
    }

    /// The buffer group id.
    #[getter]
    fn group_id(&self) -> u16 {
        self.group.id
    }

    /// ``True`` once released.
    #[getter]
    fn released(&self) -> bool {
        self.released
    }

    /// A copy of the data as :class:`bytes`.
    ///
    /// :raises ValueError: It has been released.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.check_open()?;
        let base = self.group.data.as_ptr();
        let size = self.group.size as usize;
        PyBytes::new_with(py, self.len, |out| {
            let mut done = 0;
            for &bid in &self.bids {
                let part = (self.len - done).min(size);
                // SAFETY: the buffer is out of the ring (held by this object), so the kernel
                // does not write it; it lies inside the data area, which `self.group` keeps
                // mapped; `out` has room for `len` bytes in all.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        base.add(bid as usize * size),
                        out[done..].as_mut_ptr(),
                        part,
                    )
                };
                done += part;
            }
            Ok(())
        })
    }

    /// ``bytes(provided)``: the same as :meth:`tobytes`.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.tobytes(py)
    }

    /// The number of bytes received (still known after release).
    fn __len__(&self) -> usize {
        self.len
    }

    /// Releases the data's memoryviews and returns the buffer(s) to the ring for the kernel to
    /// fill again. Releasing again does nothing. If the group was unregistered or its ring
    /// closed, it is only marked released.
    ///
    /// :raises BufferError: Something still holds a buffer export of one of the memoryviews
    ///     (such as a :class:`pickle.PickleBuffer` made from :attr:`memory`); the buffer is not
    ///     returned, and :meth:`release` can be called again once that export is gone.
    fn release(&mut self, py: Python<'_>) -> PyResult<()> {
        self.try_release(py)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.try_release(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ProvidedBuffer group_id={} buffer_ids={:?} len={}{}>",
            self.group.id,
            self.bids,
            self.len,
            if self.released { " released" } else { "" }
        )
    }
}

/// A receive that selects its buffer from a group; its completions carry the buffers.
struct RecvSelect {
    group: GroupUse,
    bundle: bool,
}

impl LentMemory for RecvSelect {
    fn on_completion(
        &self,
        py: Python<'_>,
        result: i32,
        flags: u32,
    ) -> PyResult<Option<Py<PyAny>>> {
        if flags & CQE_F_BUFFER == 0 {
            return Ok(None);
        }
        let group = &self.group.0;
        let first = (flags >> CQE_BUFFER_SHIFT) as u16;
        let len = result.max(0) as usize;
        let nbufs = if self.bundle {
            // A bundle fills whole buffers in ring order; one that received nothing took none.
            len.div_ceil(group.size as usize)
        } else {
            1
        };
        if nbufs == 0 {
            return Ok(None);
        }
        let provided = ProvidedBuffer::for_completion(py, group, first, nbufs, len)?;
        Ok(Some(Py::new(py, provided)?.into_any()))
    }
}

fn recv_select(fd: i32, len: u32, msg_flags: i32, group: GroupUse, mode: u16) -> Prepared {
    let entry = opcode::Recv::new(Fd(fd), std::ptr::null_mut(), len)
        .flags(msg_flags)
        .buf_group(group.0.id)
        .ioprio(mode)
        .build()
        .flags(sqe_flags::BUFFER_SELECT);
    Prepared {
        op: &net::RECV,
        entry,
        owned: Lent::Other(Box::new(RecvSelect {
            group,
            bundle: mode & RECVSEND_BUNDLE != 0,
        })),
    }
}

impl IoUring {
    /// `prep_recv` with `buffer_group`: the buffer comes from a provided buffer ring.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn queue_recv_select(
        &self,
        fd: i32,
        byte_count: u32,
        msg_flags: i32,
        buffer_group: &Bound<'_, PyAny>,
        multishot: bool,
        bundle: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        if multishot && msg_flags & libc::MSG_WAITALL != 0 {
            return Err(bad_arg(
                "flags: MSG_WAITALL cannot be used with multishot=True".to_owned(),
            ));
        }
        let wanted = group_of(buffer_group)?;
        let group = self.with_ring(|ring| {
            // IORING_OP_SEND_ZC came in the same release (6.0) as multishot receive, which
            // has no probe bit of its own.
            let multishot_supported = ring.supports(opcode::SendZc::CODE);
            let bundle_supported = ring.supports_recv_bundle();
            let rings = ring.buffer_rings().0;
            let group = match &wanted {
                Wanted::Ring(group) => rings
                    .find(group.id)
                    .filter(|g| Arc::ptr_eq(g, group))
                    .ok_or_else(|| {
                        bad_arg(format!(
                            "buffer_group: this BufferRing (group_id {}) is not registered on \
                             this ring: it was unregistered, or belongs to another ring",
                            group.id
                        ))
                    })?,
                Wanted::Id(id) => rings.find(*id).ok_or_else(|| {
                    bad_arg(format!(
                        "buffer_group: no buffer ring with group_id {id} is registered on this \
                         ring; make one with register_buffer_ring()"
                    ))
                })?,
            };
            // The kernel shortens the first ring entry of a bundle to a smaller byte_count in
            // place, and leaves it so if the receive then waits: a later bundle would then
            // span buffers of unequal sizes, which the completion cannot describe.
            if bundle && byte_count != 0 && byte_count < group.size {
                return Err(bad_arg(format!(
                    "byte_count: a bundle takes whole buffers, so byte_count must be 0 (no \
                     limit) or at least the group's buffer size ({}), got {byte_count}",
                    group.size
                )));
            }
            if multishot && !multishot_supported {
                return Err(PyNotImplementedError::new_err(
                    "prep_recv(multishot=True) needs IORING_RECV_MULTISHOT, added in Linux 6.0; \
                     the running kernel does not support it",
                ));
            }
            if bundle && !bundle_supported {
                return Err(PyNotImplementedError::new_err(
                    "prep_recv(bundle=True) needs IORING_RECVSEND_BUNDLE, added in Linux 6.10; \
                     the running kernel does not support it",
                ));
            }
            Ok(GroupUse::new(group.clone()))
        })?;
        let mut mode = 0;
        if multishot {
            mode |= RECV_MULTISHOT;
        }
        if bundle {
            mode |= RECVSEND_BUNDLE;
        }
        // buffer_select is implied by buffer_group; asking for it as well is harmless.
        let py = buffer_group.py();
        let flags = sqe_flags::parse(sqe_flags)? - sqe_flags::BUFFER_SELECT;
        let flags = flags.bits().into_pyobject(py)?;
        self.queue(Some(flags.as_any()), |_| {
            Ok(recv_select(fd, byte_count, msg_flags, group, mode))
        })
    }
}

enum Wanted {
    Ring(Arc<Group>),
    Id(u16),
}

fn group_of(obj: &Bound<'_, PyAny>) -> PyResult<Wanted> {
    if let Ok(ring) = obj.cast::<BufferRing>() {
        return Ok(Wanted::Ring(ring.get().group.clone()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Wanted::Id(
            int_in(obj, "buffer_group", 0, u16::MAX.into())? as u16
        ));
    }
    Err(PyTypeError::new_err(format!(
        "buffer_group must be a BufferRing or its group_id (an int), not {}",
        crate::base::args::type_name(obj)
    )))
}

#[pymethods]
impl IoUring {
    /// Registers a provided buffer ring (``IORING_REGISTER_PBUF_RING``, Linux 5.19): ``count``
    /// buffers of ``size`` bytes that the kernel fills as receives complete, instead of each
    /// receive bringing its own. Queue receives on it with ``prep_recv(fd, 0,
    /// buffer_group=ring)``; each completion's :attr:`~CompletionEvent.provided_buffer` holds
    /// the data until released. See :doc:`buffer-rings`.
    ///
    /// The memory (``count * size`` bytes of anonymous ``mmap``, and the page of ring entries)
    /// lives until the group is unregistered, no operation selects from it any more, and no
    /// :class:`ProvidedBuffer` of it is alive.
    ///
    /// :param group_id: The buffer group id, ``0`` to ``65535``, unique on this ring.
    /// :param count: How many buffers: a power of two from ``1`` to ``32768``.
    /// :param size: The size of each buffer in bytes, ``1`` to ``2**31 - 1``; ``count * size``
    ///     at most 64 GiB.
    /// :returns: The :class:`BufferRing`.
    /// :raises ValueError: An argument is out of range, or ``group_id`` is taken on this ring
    ///     (or still used by an operation in flight on a group unregistered under that id).
    /// :raises NotImplementedError: The kernel lacks ``IORING_REGISTER_PBUF_RING`` (Linux
    ///     5.19).
    /// :raises OSError: The memory could not be mapped, or the kernel refused the ring.
    #[pyo3(signature = (group_id, count, size))]
    fn register_buffer_ring(
        slf: &Bound<'_, Self>,
        group_id: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<BufferRing> {
        let py = slf.py();
        let id = int_in(group_id, "group_id", 0, u16::MAX.into())? as u16;
        let count = int_in(count, "count", 1, MAX_COUNT)? as u32;
        if !count.is_power_of_two() {
            return Err(bad_arg(format!(
                "count must be a power of two from 1 to {MAX_COUNT}, got {count}"
            )));
        }
        let size = int_in(size, "size", 1, MAX_SIZE)? as u32;
        let total = u64::from(count) * u64::from(size);
        if total > MAX_TOTAL {
            return Err(bad_arg(format!(
                "count * size must be at most {MAX_TOTAL} bytes (64 GiB), got {total}"
            )));
        }
        let this = slf.get();
        // Refuse a taken id before mapping anything.
        this.with_ring(|ring| ring.buffer_rings().0.check_free(id))?;
        let mmap = py
            .import(pyo3::intern!(py, "mmap"))?
            .getattr(pyo3::intern!(py, "mmap"))?
            .call1((-1, total))?;
        let data = HeldBuffer::new(&mmap, "buffer ring memory", Access::Writable)?;
        let whole = PyMemoryView::from(&mmap)?.into_any().unbind();
        let group = Group {
            id,
            count,
            size,
            entries: Entries::new(count)?,
            data,
            whole,
            book: Mutex::new(Book {
                tail: 0,
                next_of: vec![0; count as usize],
                last: None,
                out: vec![false; count as usize],
                available: 0,
                registered: true,
            }),
            armed: AtomicUsize::new(0),
            fork_generation: fork::generation(),
        };
        {
            let mut book = group.book();
            for bid in 0..count {
                group.write_entry(&mut book, bid as u16);
            }
            group.entries.tail().store(book.tail, Ordering::Release);
            book.available = count;
        }
        let group = this.with_ring(|ring| {
            let (rings, submitter) = ring.buffer_rings();
            rings.check_free(id)?;
            // SAFETY: the entries mapping (`count` entries, page-aligned) lives in `group`,
            // which the registry keeps until the group is unregistered or the ring closed; the
            // kernel pins its pages meanwhile. Every address in it points into the data area,
            // which `group` keeps exported (so neither freed, closed nor resized) for as long
            // as any operation that may select from it is in flight.
            let registered = unsafe {
                submitter.register_buf_ring_with_flags(
                    group.entries.base.as_ptr() as u64,
                    count as u16,
                    id,
                    0,
                )
            };
            match registered {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                    return Err(PyNotImplementedError::new_err(
                        "register_buffer_ring needs IORING_REGISTER_PBUF_RING, added in Linux \
                         5.19; the running kernel refused it (EINVAL)",
                    ));
                }
                Err(err) => {
                    return Err(errors::os_error(
                        &err,
                        &format!("cannot register buffer group {id}"),
                    ))
                }
            }
            let group = Arc::new(group);
            rings.live.push(group.clone());
            Ok(group)
        });
        let group = group?;
        Ok(BufferRing {
            group,
            ring: slf.clone().unbind(),
        })
    }

    /// Unregisters the provided buffer ring of group ``group_id``, as
    /// :meth:`BufferRing.unregister` does.
    ///
    /// :param group_id: The group id given to :meth:`register_buffer_ring`.
    /// :raises ValueError: No buffer ring of that id is registered on this ring.
    /// :raises OSError: The kernel refused to unregister it.
    fn unregister_buffer_ring(&self, group_id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = int_in(group_id, "group_id", 0, u16::MAX.into())? as u16;
        self.with_ring(|ring| {
            let (rings, submitter) = ring.buffer_rings();
            if rings.unregister(&submitter, id)? {
                Ok(())
            } else {
                Err(bad_arg(format!(
                    "group_id: no buffer ring with group_id {id} is registered on this ring"
                )))
            }
        })
    }
}

impl BufferRings {
    fn check_free(&mut self, id: u16) -> PyResult<()> {
        if self.find(id).is_some() {
            return Err(bad_arg(format!(
                "group_id {id} already has a buffer ring on this ring; unregister it first"
            )));
        }
        self.retired.retain(|weak| weak.strong_count() > 0);
        let busy = self
            .retired
            .iter()
            .filter_map(Weak::upgrade)
            .any(|g| g.id == id && g.armed.load(Ordering::Relaxed) > 0);
        if busy {
            return Err(bad_arg(format!(
                "group_id {id} was unregistered, but a receive armed on it has not posted its \
                 final completion yet; reap it (or cancel it) before reusing the id"
            )));
        }
        Ok(())
    }
}
