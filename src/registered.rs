//! Registered (fixed) files and buffers: what a ring keeps about them, and the register calls.
//!
//! Files are the kernel's business: a registered slot holds its own reference to the file, and
//! operations in flight hold theirs, so nothing here must outlive anything.
//!
//! Buffers are ours to keep valid. The kernel pins the pages of a registered buffer, but the
//! Python object that owns the memory must not be freed or resized either: if a `bytearray`
//! were freed, malloc would hand its address to another object while a `READ_FIXED` in flight
//! still writes there. So the exports of all registered buffers live in one
//! [`RegisteredBuffers`] behind an `Arc`: the ring holds one reference while they are
//! registered, and every fixed-buffer operation holds another until its completion is reaped
//! (`Lent::Shared`). Unregistering, closing the ring, or dropping it releases the ring's
//! reference only; the exports go when the last operation that may use them has completed.
//!
//! The kernel looks a fixed-buffer operation's `buf_index` up when the entry is *submitted*,
//! not when it is queued. `unregister_buffers` therefore submits every queued entry first, so
//! each one binds to the registration whose reference it holds, never to a later one.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::opcode;
use io_uring::squeue::Flags;
use io_uring::types::DestinationSlot;
use pyo3::exceptions::{PyNotImplementedError, PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyInt;

use crate::base::args::{span_within, SpanError};
use crate::base::errors::{self, bad_arg};
use crate::mem::caller_buffer::HeldBuffer;
use crate::ring_state::RingState;
use crate::sqe_flags;

/// `IORING_FILE_INDEX_ALLOC`: as a `file_index`, asks the kernel to pick a free slot, whose
/// number then becomes the completion's result.
pub const ALLOC_FILE_INDEX: u32 = u32::MAX;

/// `IORING_MAX_FIXED_FILES`: the most slots a file table may have (Linux 5.13 and later; the
/// kernel also refuses more than `RLIMIT_NOFILE`).
pub const MAX_FILE_SLOTS: u32 = 1 << 20;

/// `IORING_MAX_REG_BUFFERS`: the most buffers one registration may hold (Linux 5.13 and
/// later; 1024, `UIO_MAXIOV`, before).
pub const MAX_BUFFERS: usize = 1 << 14;

/// The kernel refuses a registered buffer larger than 1 GiB.
pub const MAX_BUFFER_LEN: usize = 1 << 30;

/// What a ring has registered. Dropped with the ring.
#[derive(Default)]
pub struct Registrations {
    /// The number of slots in the registered file table; `None` when there is none.
    file_slots: Option<u32>,
    /// The registered buffers; `None` when there are none.
    buffers: Option<Arc<RegisteredBuffers>>,
}

/// Exports of the caller's buffers that the kernel has registered, in registration order.
pub struct RegisteredBuffers {
    held: Box<[HeldBuffer]>,
}

impl RegisteredBuffers {
    pub fn get(&self, index: u16) -> Option<&HeldBuffer> {
        self.held.get(usize::from(index))
    }
}

/// A `file_index` argument: a slot of the registered file table, or "any free slot".
#[derive(Clone, Copy)]
pub enum FileIndex {
    Slot(u32),
    Alloc,
}

/// Parses `file_index=`: `None`, a slot number, or `ALLOC_FILE_INDEX`.
pub fn file_index_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<FileIndex>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let index =
        crate::base::args::int_in(value, "file_index", 0, u32::MAX.into()).map_err(|err| {
            if err.is_instance_of::<pyo3::exceptions::PyValueError>(value.py()) {
                bad_arg(format!(
                    "file_index must be a slot number (0 to {}) or ALLOC_FILE_INDEX, got {}",
                    MAX_FILE_SLOTS - 1,
                    value.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            } else {
                err
            }
        })? as u32;
    if index == ALLOC_FILE_INDEX {
        return Ok(Some(FileIndex::Alloc));
    }
    if index >= MAX_FILE_SLOTS {
        return Err(bad_arg(format!(
            "file_index must be a slot number (0 to {}) or ALLOC_FILE_INDEX, got {index}",
            MAX_FILE_SLOTS - 1
        )));
    }
    Ok(Some(FileIndex::Slot(index)))
}

/// For operations that take a fixed slot in a field of their own (close, cancel by fd):
/// `Some(the other flags)`, as the int `IoUring::queue` takes, when `sqe_flags` has
/// `fixed_file`; `None` when it has not.
pub fn without_fixed_file<'py>(
    py: Python<'py>,
    sqe_flags: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyInt>>> {
    let flags = sqe_flags::parse(sqe_flags)?;
    if !flags.contains(Flags::FIXED_FILE) {
        return Ok(None);
    }
    Ok(Some(PyInt::new(py, (flags - Flags::FIXED_FILE).bits())))
}

/// Kernel features that have no opcode of their own, recognised by an opcode that arrived in
/// the same release.
#[derive(Clone, Copy)]
pub enum Feature {
    /// Files opened, accepted or closed straight into or out of a fixed slot (Linux 5.15,
    /// with `IORING_OP_MKDIRAT`).
    DirectDescriptors,
    /// `IORING_FILE_INDEX_ALLOC` and sparse file tables (Linux 5.19, with
    /// `IORING_OP_SOCKET`).
    AllocatedSlots,
}

impl Feature {
    fn marker(self) -> u8 {
        match self {
            Feature::DirectDescriptors => opcode::MkDirAt::CODE,
            Feature::AllocatedSlots => opcode::Socket::CODE,
        }
    }

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Feature::DirectDescriptors => (
                "installing files into registered slots (direct descriptors)",
                "5.15",
            ),
            Feature::AllocatedSlots => (
                "ALLOC_FILE_INDEX and sparse file tables (IORING_FILE_INDEX_ALLOC, \
                 IORING_RSRC_REGISTER_SPARSE)",
                "5.19",
            ),
        }
    }
}

/// `NotImplementedError` unless the running kernel has `feature`.
pub fn require(ring: &RingState, feature: Feature, method: &str) -> PyResult<()> {
    if ring.supports(feature.marker()) {
        return Ok(());
    }
    let (what, since) = feature.describe();
    Err(PyNotImplementedError::new_err(format!(
        "{method}: {what} needs Linux {since}; the running kernel does not support it"
    )))
}

/// The number of slots in the registered file table, or the error that says to make one.
fn file_slots(ring: &mut RingState, method: &str, what: &str) -> PyResult<u32> {
    ring.registrations().1.file_slots.ok_or_else(|| {
        bad_arg(format!(
            "{method}: {what} needs a registered file table; call register_files() or \
             register_files_sparse() first"
        ))
    })
}

/// Checks that `slot` is a slot of the registered file table.
pub fn check_slot(ring: &mut RingState, slot: u32, method: &str, name: &str) -> PyResult<()> {
    let slots = file_slots(ring, method, &format!("{name} {slot}"))?;
    if slot >= slots {
        return Err(bad_arg(format!(
            "{method}: {name} {slot} is out of range: the registered file table has {slots} \
             slots (0 to {})",
            slots - 1
        )));
    }
    Ok(())
}

/// The slot an operation that creates a file installs it into: checked against the table and
/// the kernel's support.
pub fn destination(
    ring: &mut RingState,
    file_index: Option<FileIndex>,
    method: &str,
) -> PyResult<Option<DestinationSlot>> {
    let Some(file_index) = file_index else {
        return Ok(None);
    };
    require(ring, Feature::DirectDescriptors, method)?;
    match file_index {
        FileIndex::Slot(slot) => {
            check_slot(ring, slot, method, "file_index")?;
            Ok(Some(
                DestinationSlot::try_from_slot_target(slot).expect("slots are below 2**20"),
            ))
        }
        FileIndex::Alloc => {
            require(ring, Feature::AllocatedSlots, method)?;
            file_slots(ring, method, "ALLOC_FILE_INDEX")?;
            Ok(Some(DestinationSlot::auto_target()))
        }
    }
}

/// Registers a file table of `fds` (`-1` for an empty slot).
pub fn register_files(ring: &mut RingState, fds: &[i32]) -> PyResult<()> {
    let ring_fd = ring.fd();
    let (submitter, registered) = ring.registrations();
    if let Some(slots) = registered.file_slots {
        return Err(already_registered_files(slots));
    }
    submitter
        .register_files(fds)
        .map_err(|err| file_error(&err, "cannot register the files", fds, 0, ring_fd))?;
    registered.file_slots = Some(fds.len() as u32);
    Ok(())
}

/// Registers a file table of `count` empty slots.
pub fn register_files_sparse(ring: &mut RingState, count: u32) -> PyResult<()> {
    require(ring, Feature::AllocatedSlots, "register_files_sparse")?;
    let ring_fd = ring.fd();
    let (submitter, registered) = ring.registrations();
    if let Some(slots) = registered.file_slots {
        return Err(already_registered_files(slots));
    }
    submitter
        .register_files_sparse(count)
        .map_err(|err| file_error(&err, "cannot register the file table", &[], 0, ring_fd))?;
    registered.file_slots = Some(count);
    Ok(())
}

/// Replaces the slots from `offset` on with `fds`. Returns how many the kernel updated.
pub fn update_files(ring: &mut RingState, offset: u32, fds: &[i32]) -> PyResult<usize> {
    let slots = file_slots(ring, "update_registered_files", "updating slots")?;
    let end = u64::from(offset) + fds.len() as u64;
    if end > u64::from(slots) {
        return Err(bad_arg(format!(
            "update_registered_files: slots {offset} to {} are out of range: the registered \
             file table has {slots} slots (0 to {})",
            end - 1,
            slots - 1
        )));
    }
    let ring_fd = ring.fd();
    let (submitter, _) = ring.registrations();
    submitter.register_files_update(offset, fds).map_err(|err| {
        file_error(
            &err,
            "cannot update the registered files",
            fds,
            offset,
            ring_fd,
        )
    })
}

pub fn unregister_files(ring: &mut RingState) -> PyResult<()> {
    let (submitter, registered) = ring.registrations();
    if registered.file_slots.is_none() {
        return Err(bad_arg(
            "unregister_files: no files are registered".to_owned(),
        ));
    }
    submitter
        .unregister_files()
        .map_err(|err| errors::os_error(&err, "cannot unregister the files"))?;
    registered.file_slots = None;
    Ok(())
}

fn already_registered_files(slots: u32) -> PyErr {
    PyOSError::new_err((
        libc::EBUSY,
        format!(
            "a file table of {slots} slots is already registered on this ring; change slots \
             with update_registered_files(), or call unregister_files() first"
        ),
    ))
}

/// A register call's failure, naming the descriptor at fault when it can be found.
fn file_error(err: &io::Error, context: &str, fds: &[i32], offset: u32, ring_fd: i32) -> PyErr {
    let code = err.raw_os_error().unwrap_or(libc::EIO);
    let why = match code {
        libc::EBADF => fds
            .iter()
            .enumerate()
            .find_map(|(i, &fd)| bad_descriptor(fd, ring_fd).map(|why| (i, fd, why)))
            .map(|(i, fd, why)| {
                format!(
                    "fds[{i}] (for slot {}) = {fd} {why}",
                    u64::from(offset) + i as u64
                )
            })
            .unwrap_or_else(|| errors::strerror(code)),
        libc::EMFILE => format!(
            "{}: a file table may not have more slots than the open-file limit \
             (RLIMIT_NOFILE, ulimit -n)",
            errors::strerror(code)
        ),
        _ => errors::strerror(code),
    };
    PyOSError::new_err((code, format!("{context}: {why}")))
}

/// Why `fd` cannot be registered, if that can be seen from here.
fn bad_descriptor(fd: i32, ring_fd: i32) -> Option<&'static str> {
    if fd == -1 {
        return None;
    }
    if fd < -1 {
        return Some("is not a file descriptor");
    }
    // SAFETY: F_GETFD takes no pointer and only reads the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Some("is not an open file descriptor");
    }
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
    if fd == ring_fd || target.is_some_and(|t| t.as_os_str() == "anon_inode:[io_uring]") {
        return Some("is an io_uring instance, which cannot be registered as a file");
    }
    None
}

/// Registers `held` (writable exports of the caller's buffers) with the kernel.
pub fn register_buffers(ring: &mut RingState, held: Vec<HeldBuffer>) -> PyResult<()> {
    let (submitter, registered) = ring.registrations();
    if let Some(buffers) = &registered.buffers {
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
    // which the ring keeps until the buffers are unregistered, and which every fixed-buffer
    // operation keeps until its completion is reaped; while an export lives its memory can be
    // neither freed nor resized.
    let result = unsafe { submitter.register_buffers(&iovecs) };
    result.map_err(|err| buffer_error(&err, held.len()))?;
    registered.buffers = Some(Arc::new(RegisteredBuffers {
        held: held.into_boxed_slice(),
    }));
    Ok(())
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

/// Unregisters the buffers. The exports are released once no operation in flight holds them.
pub fn unregister_buffers(ring: &mut RingState) -> PyResult<()> {
    if ring.registrations().1.buffers.is_none() {
        return Err(bad_arg(
            "unregister_buffers: no buffers are registered".to_owned(),
        ));
    }
    // Queued entries bind to a registration only when the kernel consumes them: let every one
    // queued so far bind to this one, which it holds, before it goes away.
    if ring.pending() > 0 {
        ring.submit()?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while ring.pending() > 0 {
            // Only an SQPOLL ring gets here: its kernel thread has not caught up yet.
            if Instant::now() >= deadline {
                return Err(PyRuntimeError::new_err(format!(
                    "unregister_buffers: {} queued entries were not taken up by the kernel's \
                     submission thread within a second; try again",
                    ring.pending()
                )));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let (submitter, registered) = ring.registrations();
    submitter
        .unregister_buffers()
        .map_err(|err| errors::os_error(&err, "cannot unregister the buffers"))?;
    // Operations in flight keep their own references; this releases only the ring's.
    registered.buffers = None;
    Ok(())
}

/// The registered buffers, a reference for an operation to hold, and the span
/// `(start, count)` of buffer `index` it covers, checked.
pub fn fixed_span(
    ring: &mut RingState,
    index: u16,
    (start, count): (usize, Option<usize>),
    method: &str,
    verb: &str,
) -> PyResult<(Arc<RegisteredBuffers>, usize, u32)> {
    let Some(buffers) = ring.registrations().1.buffers.clone() else {
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
