//! Registered (fixed) files and buffers on `IoUring`: registering them, and the operations
//! that use them.

use io_uring::squeue::Flags;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyMemoryView};

use super::{byte_range, offset_or_current};
use crate::base::args::{self, int_in};
use crate::base::errors::bad_arg;
use crate::base::kernel_support::Feature;
use crate::mem::caller_buffer::{Access, HeldBuffer};
use crate::ops;
use crate::resources::file_table::MAX_FILE_SLOTS;
use crate::resources::registered_buffers::{MAX_BUFFERS, MAX_BUFFER_LEN};
use crate::ring::IoUring;
use crate::sqe_flags;

impl IoUring {
    /// `prep_close` of a fixed slot: `other_flags` are the caller's flags without
    /// `fixed_file`.
    pub(super) fn queue_close_slot(&self, slot: u32, other_flags: Flags) -> PyResult<u64> {
        self.queue(other_flags, |ring| {
            ring.support()
                .require(Feature::DirectDescriptors, "prep_close")?;
            ring.files().check_slot(slot, "prep_close", "slot")?;
            Ok(ops::fixed::close_slot(slot))
        })
    }
}

/// The descriptors of a file table: ints, objects with `fileno()`, and `-1` or `None` for an
/// empty slot; 1 to `MAX_FILE_SLOTS` of them.
fn fd_table(items: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i32>> {
    let iter = items.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be an iterable of file descriptors, not {}",
            args::type_name(items)
        ))
    })?;
    let mut fds = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        if fds.len() == MAX_FILE_SLOTS as usize {
            return Err(bad_arg(format!(
                "{name} may hold at most {MAX_FILE_SLOTS} descriptors"
            )));
        }
        let empty = item.is_none()
            || (item.is_instance_of::<PyInt>() && item.extract::<i64>().ok() == Some(-1));
        let fd = if empty {
            -1
        } else {
            args::fd(&item, &format!("{name}[{i}]"))?
        };
        fds.push(fd);
    }
    if fds.is_empty() {
        return Err(bad_arg(format!("{name} must not be empty")));
    }
    Ok(fds)
}

#[pymethods]
impl IoUring {
    /// Registers a table of files with the ring (``IORING_REGISTER_FILES``, Linux 5.1).
    /// Operations then name a file by its slot in the table instead of by descriptor, with
    /// ``sqe_flags=make_sqe_flags(fixed_file=True)`` and the slot number as ``fd``; the kernel
    /// skips looking the descriptor up and taking a reference on every operation.
    ///
    /// The table holds its own reference to each file: closing the descriptor afterwards
    /// (:func:`os.close`) leaves the slot usable. A ring has at most one table; change its
    /// slots with :meth:`update_registered_files`.
    ///
    /// :param fds: An iterable of file descriptors (ints or objects with ``fileno()``), where
    ///     ``-1`` or ``None`` leaves a slot empty for :meth:`update_registered_files` or for a
    ///     ``file_index`` to fill. Slot ``i`` holds ``fds[i]``. At most 1048576 slots, and no
    ///     more than the open-file limit (``RLIMIT_NOFILE``).
    /// :raises ValueError: ``fds`` is empty or too long.
    /// :raises OSError: A table is already registered (``EBUSY``), a descriptor is not open
    ///     or is an io_uring (``EBADF``, naming it), or the kernel refuses.
    fn register_files(&self, fds: &Bound<'_, PyAny>) -> PyResult<()> {
        let fds = fd_table(fds, "fds")?;
        self.with_ring(|ring| ring.register_files(&fds))
    }

    /// Registers a table of ``count`` empty file slots (``IORING_RSRC_REGISTER_SPARSE``,
    /// Linux 5.19), to be filled by operations with a ``file_index`` (:meth:`prep_openat`,
    /// :meth:`prep_accept`, ...) or by :meth:`update_registered_files`.
    ///
    /// :param count: How many slots: ``1`` to ``1048576``, and no more than the open-file
    ///     limit (``RLIMIT_NOFILE``).
    /// :raises ValueError: ``count`` is out of range.
    /// :raises OSError: A table is already registered (``EBUSY``), or the kernel refuses.
    /// :raises NotImplementedError: The kernel is older than Linux 5.19.
    fn register_files_sparse(&self, count: &Bound<'_, PyAny>) -> PyResult<()> {
        let count = int_in(count, "count", 1, MAX_FILE_SLOTS.into())? as u32;
        self.with_ring(|ring| ring.register_files_sparse(count))
    }

    /// Replaces slots of the registered file table (``IORING_REGISTER_FILES_UPDATE``, Linux
    /// 5.5): slot ``offset + i`` gets ``fds[i]``, or is emptied by ``-1`` or ``None``. Operations
    /// already in flight on a replaced slot keep the file they started with.
    ///
    /// :param offset: The first slot to replace.
    /// :param fds: An iterable of file descriptors, ``-1`` or ``None``, as for
    ///     :meth:`register_files`.
    /// :returns: How many slots were updated.
    /// :raises ValueError: No table is registered, ``fds`` is empty, or the slots reach past
    ///     the end of the table.
    /// :raises OSError: A descriptor is not open or is an io_uring (``EBADF``, naming it).
    fn update_registered_files(
        &self,
        offset: &Bound<'_, PyAny>,
        fds: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let offset = int_in(offset, "offset", 0, (MAX_FILE_SLOTS - 1).into())? as u32;
        let fds = fd_table(fds, "fds")?;
        self.with_ring(|ring| ring.update_files(offset, &fds))
    }

    /// Unregisters the file table (``IORING_UNREGISTER_FILES``). Operations in flight on a
    /// fixed slot keep their own reference to the file and complete normally; later ones that
    /// name a slot fail with ``-EBADF`` (or ``-ENXIO``).
    ///
    /// :raises ValueError: No file table is registered.
    fn unregister_files(&self) -> PyResult<()> {
        self.with_ring(|ring| ring.unregister_files())
    }

    /// Registers the caller's buffers with the ring (``IORING_REGISTER_BUFFERS``, Linux 5.1),
    /// for :meth:`prep_read_fixed` and :meth:`prep_write_fixed` to use by index. The kernel
    /// pins their pages once here, instead of on every operation.
    ///
    /// The ring holds a writable export of every buffer while it is registered and while any
    /// fixed-buffer operation that may use it is in flight (even after
    /// :meth:`unregister_buffers` or :meth:`close`): meanwhile a :class:`bytearray` cannot be
    /// resized and an :class:`mmap.mmap` cannot be closed (both raise :class:`BufferError`).
    ///
    /// Registered memory is locked: unless the process has ``CAP_IPC_LOCK``, the kernel charges
    /// it to ``RLIMIT_MEMLOCK`` (``ulimit -l``).
    ///
    /// :param buffers: An iterable of 1 to 16384 writable contiguous buffers of 1 byte to
    ///     1 GiB each: :class:`bytearray`, a :class:`memoryview` of writable memory,
    ///     :class:`array.array`, an anonymous :class:`mmap.mmap` (``mmap.mmap(-1, size)``), a
    ///     C-contiguous NumPy array. Buffer ``i`` is ``buffer_index=i``. Memory mapped from a
    ///     regular file cannot be registered.
    /// :raises TypeError: ``buffers`` is not an iterable of writable bytes-like objects (for
    ///     example, an item is :class:`bytes`, which is read-only).
    /// :raises ValueError: ``buffers`` is empty or holds too many, or a buffer is empty, larger
    ///     than 1 GiB, or not contiguous.
    /// :raises OSError: Buffers are already registered (``EBUSY``); the memory cannot be locked
    ///     (``ENOMEM``, whose message explains ``RLIMIT_MEMLOCK``); or it cannot be pinned
    ///     (``EFAULT``/``EOPNOTSUPP``, as for file-backed memory).
    fn register_buffers(&self, buffers: &Bound<'_, PyAny>) -> PyResult<()> {
        if buffers.is_instance_of::<PyByteArray>()
            || buffers.is_instance_of::<PyBytes>()
            || buffers.is_instance_of::<PyMemoryView>()
        {
            return Err(PyTypeError::new_err(format!(
                "buffers must be an iterable of buffers (such as a list), not a single {}; \
                 pass [buffer] to register one",
                args::type_name(buffers)
            )));
        }
        let iter = buffers.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "buffers must be an iterable of writable buffers, not {}",
                args::type_name(buffers)
            ))
        })?;
        let mut held = Vec::new();
        for (i, item) in iter.enumerate() {
            let item = item?;
            if held.len() == MAX_BUFFERS {
                return Err(bad_arg(format!(
                    "buffers may hold at most {MAX_BUFFERS} buffers"
                )));
            }
            let name = format!("buffers[{i}]");
            let buffer = HeldBuffer::new(&item, &name, Access::Writable)?;
            if buffer.len() == 0 {
                return Err(bad_arg(format!(
                    "{name} is empty: a registered buffer holds at least 1 byte"
                )));
            }
            if buffer.len() > MAX_BUFFER_LEN {
                return Err(bad_arg(format!(
                    "{name} holds {} bytes; a registered buffer holds at most 1 GiB \
                     ({MAX_BUFFER_LEN} bytes)",
                    buffer.len()
                )));
            }
            held.push(buffer);
        }
        if held.is_empty() {
            return Err(bad_arg("buffers must not be empty".to_owned()));
        }
        self.with_ring(|ring| ring.register_buffers(held))
    }

    /// Unregisters the buffers (``IORING_UNREGISTER_BUFFERS``).
    ///
    /// Entries still queued are submitted first, so that each binds to the buffers it was
    /// checked against. Operations in flight keep using the buffers: the ring goes on holding
    /// the exports each one needs until its completion is reaped, and only then can a
    /// :class:`bytearray` be resized again. Later fixed-buffer operations need a new
    /// :meth:`register_buffers`.
    ///
    /// :raises ValueError: No buffers are registered.
    fn unregister_buffers(&self) -> PyResult<()> {
        self.with_ring(|ring| ring.unregister_buffers())
    }

    /// Queues a ``read(2)`` (or ``pread(2)`` at an offset) into a registered buffer
    /// (``IORING_OP_READ_FIXED``, Linux 5.1). Reads ``count`` bytes into bytes
    /// ``buffer_offset`` onwards of buffer ``buffer_index``, with no allocation, no copy and no
    /// page pinning per read.
    ///
    /// The completion's :attr:`~CompletionEvent.result` is the number of bytes read (``0`` at
    /// end of file); its :attr:`~CompletionEvent.buffer` is ``None``: the data is in the
    /// registered buffer, from ``buffer_offset`` on. Do not use that part of the buffer before
    /// the completion arrives. The operation holds the registration until then, so
    /// :meth:`unregister_buffers` or :meth:`close` cannot free the memory under it.
    ///
    /// :param fd: A file descriptor, an object with a ``fileno()`` method, or with
    ///     ``fixed_file`` a registered file's slot.
    /// :param buffer_index: Which registered buffer, as ordered in :meth:`register_buffers`.
    /// :param offset: The file offset to read from, or ``-1`` to read from (and advance) the
    ///     file's current position.
    /// :param count: How many bytes to read at most; by default the rest of the buffer after
    ///     ``buffer_offset``. ``O_DIRECT`` files need ``count``, ``offset`` and the address
    ///     aligned to the device's block size (a page-aligned :class:`mmap.mmap` gives that).
    /// :param buffer_offset: Where in the registered buffer the data goes; by default ``0``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: No buffers are registered, ``buffer_index`` is not one of them, or
    ///     ``buffer_offset`` and ``count`` reach past the end of that buffer (the message
    ///     gives the numbers).
    #[pyo3(
        signature = (fd, buffer_index, offset=None, count=None, buffer_offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer_index, offset=-1, count=None, buffer_offset=0, *, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn prep_read_fixed(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer_index: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        count: Option<&Bound<'_, PyAny>>,
        buffer_offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let index = int_in(buffer_index, "buffer_index", 0, u16::MAX.into())? as u16;
        let offset = offset_or_current(offset, "offset")?;
        let range = byte_range(count, buffer_offset)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let (buffers, start, count) =
                ring.buffers()
                    .span(index, range, "prep_read_fixed", "read")?;
            Ok(ops::fixed::read_fixed(
                fd, buffers, index, start, count, offset,
            ))
        })
    }

    /// Queues a ``write(2)`` (or ``pwrite(2)`` at an offset) from a registered buffer
    /// (``IORING_OP_WRITE_FIXED``, Linux 5.1): writes ``count`` bytes from bytes
    /// ``buffer_offset`` onwards of buffer ``buffer_index``.
    ///
    /// The completion's :attr:`~CompletionEvent.result` is the number of bytes written, which
    /// can be less than asked; its :attr:`~CompletionEvent.buffer` is ``None``. The kernel
    /// reads the buffer at a time of its choosing: do not change that part of it before the
    /// completion arrives. The operation holds the registration until then.
    ///
    /// :param fd: A file descriptor, an object with a ``fileno()`` method, or with
    ///     ``fixed_file`` a registered file's slot.
    /// :param buffer_index: Which registered buffer, as ordered in :meth:`register_buffers`.
    /// :param offset: The file offset to write at, or ``-1`` to write at (and advance) the
    ///     file's current position.
    /// :param count: How many bytes to write; by default the rest of the buffer after
    ///     ``buffer_offset``.
    /// :param buffer_offset: Where in the registered buffer the data starts; by default ``0``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: No buffers are registered, ``buffer_index`` is not one of them, or
    ///     ``buffer_offset`` and ``count`` reach past the end of that buffer.
    #[pyo3(
        signature = (fd, buffer_index, offset=None, count=None, buffer_offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer_index, offset=-1, count=None, buffer_offset=0, *, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn prep_write_fixed(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer_index: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        count: Option<&Bound<'_, PyAny>>,
        buffer_offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let index = int_in(buffer_index, "buffer_index", 0, u16::MAX.into())? as u16;
        let offset = offset_or_current(offset, "offset")?;
        let range = byte_range(count, buffer_offset)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let (buffers, start, count) =
                ring.buffers()
                    .span(index, range, "prep_write_fixed", "write")?;
            Ok(ops::fixed::write_fixed(
                fd, buffers, index, start, count, offset,
            ))
        })
    }

    /// Queues the installation of the file in a registered slot as a regular file descriptor
    /// (``IORING_OP_FIXED_FD_INSTALL``, Linux 6.8), for code that needs a descriptor, such as
    /// :func:`os.fstat` or a :class:`socket.socket`. The slot keeps the file as well.
    ///
    /// The completion's :attr:`~CompletionEvent.result` is the new descriptor, which the
    /// caller owns and closes.
    ///
    /// :param slot: The slot of the registered file table.
    /// :param cloexec: Give the new descriptor ``O_CLOEXEC`` (the default);
    ///     ``False`` passes ``IORING_FIXED_FD_NO_CLOEXEC``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags` (``fixed_file`` is implied).
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: No file table is registered, or ``slot`` is outside it.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_FIXED_FD_INSTALL`` (Linux
    ///     6.8).
    #[pyo3(signature = (slot, *, cloexec=true, sqe_flags=None))]
    fn prep_fixed_fd_install(
        &self,
        slot: &Bound<'_, PyAny>,
        cloexec: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let slot = int_in(slot, "slot", 0, (MAX_FILE_SLOTS - 1).into())? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            ring.files()
                .check_slot(slot, "prep_fixed_fd_install", "slot")?;
            Ok(ops::fixed::fixed_fd_install(slot, cloexec))
        })
    }
}
