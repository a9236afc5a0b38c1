//! Provided buffer groups (`IORING_REGISTER_PBUF_RING`, Linux 5.19): equal buffers that the
//! kernel picks from when a receive completes, instead of the receive naming its buffer up
//! front.
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
//!   `memoryview` slices of it (see `provided_buffer`), which keep the mapping alive themselves
//!   (CPython's managed buffer), so no view can ever outlive the memory it shows. (An abi3
//!   module cannot implement the buffer protocol on its own class, so the views come from the
//!   mmap object.)
//! * Everything lives in one [`Group`] behind an `Arc`. The ring's [`BufferGroups`] holds one
//!   while the group is registered; each operation that selects from the group holds one (an
//!   [`Armed`], in its in-flight entry) until its final completion, so unregistering or closing
//!   the ring while a multishot receive is armed never frees memory the kernel may still write;
//!   each `ProvidedBuffer` holds one while the user has the data.
//!
//! Returning a buffer writes its entry at the tail and publishes the tail with a release store.
//! For recv bundles the completion names only the first buffer id; the following ones are those
//! we wrote after it, which [`Ledger::next_of`] remembers.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

use crate::base::errors::{self, bad_arg};
use crate::base::fork::Origin;
use crate::base::kernel_support::Feature;
use crate::base::objects;
use crate::mem::caller_buffer::{Access, HeldBuffer};

/// The kernel's limit on entries in one buffer ring.
pub const MAX_COUNT: i64 = 32768;
/// One buffer: what one receive may move (`len` is 32 bits; Linux moves under 2 GiB per call).
pub const MAX_SIZE: i64 = i32::MAX as i64;
/// A whole group's data area; beyond this is surely a mistake, not a buffer pool.
pub const MAX_TOTAL: u64 = 1 << 36;

/// The page-aligned array of `io_uring_buf` entries the kernel reads buffers from.
struct Entries {
    base: NonNull<BufRingEntry>,
    bytes: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; entries are written only under
// the owning group's ledger lock, and the pointer is never handed out.
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

/// Which buffers are in the kernel's ring and which are out, under the group's lock.
struct Ledger {
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
    ledger: Mutex<Ledger>,
    /// Operations queued with this group that have not posted their final completion.
    armed: AtomicUsize,
    /// The process whose ring the group is registered with.
    origin: Origin,
}

impl Group {
    /// `count` buffers of `size` bytes (a power of two, and a size, already checked), all in
    /// the ring, not registered with the kernel yet.
    pub fn new(py: Python<'_>, id: u16, count: u32, size: u32, origin: Origin) -> PyResult<Self> {
        let total = u64::from(count) * u64::from(size);
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
            ledger: Mutex::new(Ledger {
                tail: 0,
                next_of: vec![0; count as usize],
                last: None,
                out: vec![false; count as usize],
                available: 0,
                registered: true,
            }),
            armed: AtomicUsize::new(0),
            origin,
        };
        {
            let mut ledger = group.ledger();
            for bid in 0..count {
                group.write_entry(&mut ledger, bid as u16);
            }
            group.entries.tail().store(ledger.tail, Ordering::Release);
            ledger.available = count;
        }
        Ok(group)
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The size of each buffer.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Buffers not handed to a reaped completion.
    pub fn available(&self) -> u32 {
        self.ledger().available
    }

    /// False once unregistered or its ring closed.
    pub fn is_registered(&self) -> bool {
        self.ledger().registered
    }

    /// The first byte of buffer `bid`'s memory.
    pub fn buffer_ptr(&self, bid: u16) -> *const u8 {
        self.data
            .as_ptr()
            .wrapping_add(usize::from(bid) * self.size as usize)
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes buffer `bid` at the tail (not yet published).
    fn write_entry(&self, ledger: &mut Ledger, bid: u16) {
        let index = (u32::from(ledger.tail) & (self.count - 1)) as usize;
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
        if let Some(previous) = ledger.last {
            ledger.next_of[previous as usize] = bid;
        }
        ledger.last = Some(bid);
        ledger.tail = ledger.tail.wrapping_add(1);
    }

    /// Puts buffers back in the ring, if the group is still registered in this process.
    pub fn give_back(&self, bids: &[u16]) {
        let mut ledger = self.ledger();
        if !ledger.registered || self.origin.is_forked() {
            return;
        }
        for &bid in bids {
            if std::mem::take(&mut ledger.out[bid as usize]) {
                self.write_entry(&mut ledger, bid);
                ledger.available += 1;
            }
        }
        // The entries are written before the kernel can see the tail that covers them.
        self.entries.tail().store(ledger.tail, Ordering::Release);
    }

    /// The ids of the `nbufs` buffers a completion took, starting with `first`.
    pub fn take(&self, first: u16, nbufs: usize) -> PyResult<Vec<u16>> {
        let mut ledger = self.ledger();
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
            if !std::mem::replace(&mut ledger.out[bid as usize], true) {
                ledger.available = ledger.available.saturating_sub(1);
            }
            bid = ledger.next_of[bid as usize];
        }
        Ok(bids)
    }

    /// One `memoryview` per buffer in `bids`, covering `len` bytes in all.
    pub fn views(&self, py: Python<'_>, bids: &[u16], mut len: usize) -> PyResult<Vec<Py<PyAny>>> {
        let whole = self.whole.bind(py);
        bids.iter()
            .map(|&bid| {
                let start = bid as usize * self.size as usize;
                let part = len.min(self.size as usize);
                len -= part;
                let slice = objects::slice(py, start, start + part)?;
                Ok(whole.get_item(slice)?.unbind())
            })
            .collect()
    }
}

/// An operation armed on a group: keeps the group's memory alive, and counts as armed, until
/// the operation's final completion drops it.
pub struct Armed(Arc<Group>);

impl Armed {
    pub fn new(group: Arc<Group>) -> Self {
        group.armed.fetch_add(1, Ordering::Relaxed);
        Armed(group)
    }

    pub fn group(&self) -> &Arc<Group> {
        &self.0
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.0.armed.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The groups registered on one ring.
#[derive(Default)]
pub struct BufferGroups {
    live: Vec<Arc<Group>>,
    /// Unregistered groups, to refuse reusing an id while an operation armed on the old group
    /// may still complete: its buffer ids would be read against the wrong group.
    retired: Vec<Weak<Group>>,
}

impl BufferGroups {
    /// The registered group with this id.
    pub fn find(&self, group_id: u16) -> Option<&Arc<Group>> {
        self.live.iter().find(|g| g.id == group_id)
    }

    /// Whether `group` is the one registered under its id (not an unregistered one, nor
    /// another ring's).
    pub fn holds(&self, group: &Arc<Group>) -> bool {
        self.find(group.id).is_some_and(|g| Arc::ptr_eq(g, group))
    }

    /// Refuses an id that is taken, or still used by an operation armed on a group that was
    /// unregistered under it.
    pub fn check_free(&mut self, id: u16) -> PyResult<()> {
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

    /// Registers `group` with the kernel and keeps it until it is unregistered or the ring
    /// closes.
    pub fn register(&mut self, submitter: &Submitter<'_>, group: Group) -> PyResult<Arc<Group>> {
        self.check_free(group.id)?;
        // SAFETY: the entries mapping (`count` entries, page-aligned) lives in `group`, which
        // this registry keeps until the group is unregistered or the ring closed; the kernel
        // pins its pages meanwhile. Every address in it points into the data area, which
        // `group` keeps exported (so neither freed, closed nor resized) for as long as any
        // operation that may select from it is in flight.
        let registered = unsafe {
            submitter.register_buf_ring_with_flags(
                group.entries.base.as_ptr() as u64,
                group.count as u16,
                group.id,
                0,
            )
        };
        match registered {
            Ok(()) => {}
            // Kernels before 5.19 do not know the register opcode.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                return Err(Feature::BufferRings.missing("register_buffer_ring"));
            }
            Err(err) => {
                return Err(errors::os_error(
                    &err,
                    &format!("cannot register buffer group {}", group.id),
                ))
            }
        }
        let group = Arc::new(group);
        self.live.push(group.clone());
        Ok(group)
    }

    /// Unregisters the group of this id; `false` if there is none.
    pub fn unregister(&mut self, submitter: &Submitter<'_>, group_id: u16) -> PyResult<bool> {
        let Some(index) = self.live.iter().position(|g| g.id == group_id) else {
            return Ok(false);
        };
        let group = &self.live[index];
        let mut ledger = group.ledger();
        submitter.unregister_buf_ring(group_id).map_err(|err| {
            errors::os_error(&err, &format!("cannot unregister buffer group {group_id}"))
        })?;
        ledger.registered = false;
        drop(ledger);
        let group = self.live.swap_remove(index);
        self.retired.retain(|weak| weak.strong_count() > 0);
        self.retired.push(Arc::downgrade(&group));
        Ok(true)
    }
}

impl Drop for BufferGroups {
    fn drop(&mut self) {
        // The ring is closing: its groups go with it.
        for group in &self.live {
            group.ledger().registered = false;
        }
    }
}
