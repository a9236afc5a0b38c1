//! What an `IoUring` registers with the kernel from Python: its file table, buffers and
//! eventfd. (Provided buffer rings have a file of their own.)

use std::os::fd::{FromRawFd, OwnedFd};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyMemoryView};

use crate::base::args::{self, int_in};
use crate::base::errors::{self, bad_arg};
use crate::mem::caller_buffer::{Access, HeldBuffer};
use crate::py::io_uring::IoUring;
use crate::resources::file_table::MAX_FILE_SLOTS;
use crate::resources::registered_buffers::{MAX_BUFFERS, MAX_BUFFER_LEN};

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
}
