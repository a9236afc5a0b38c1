//! The file operations of `IoUring`: open, read, write, close, vectored I/O, syncing, space
//! management, splicing, and metadata.

use io_uring::squeue::Flags;
use pyo3::prelude::*;
use pyo3::types::PyInt;

use super::{byte_range, copy_of_range, destination_in, offset_or_current, source_of_range};
use crate::base::args::{self, int_in};
use crate::base::errors;
use crate::mem::unfilled_bytes::{self, UnfilledBytes};
use crate::ops::files::{self, ReadDestination};
use crate::py::io_uring::IoUring;
use crate::py::sqe_flags;
use crate::resources::file_table::FileIndex;

/// The flags `prep_pipe` takes, as `pipe2(2)` does (less `O_NOTIFICATION_PIPE`).
const PIPE_FLAGS: i32 = libc::O_NONBLOCK | libc::O_DIRECT | libc::O_CLOEXEC;

/// The most buffers one vectored read or write takes (`IOV_MAX`).
const IOV_MAX: usize = 1024;

/// The open flags `FileOpenFlag` offers.
const OPEN_FLAGS: [i32; 10] = [
    libc::O_APPEND,
    libc::O_CREAT,
    libc::O_CREAT | libc::O_EXCL,
    libc::O_DIRECT,
    libc::O_DIRECTORY,
    libc::O_PATH,
    libc::O_NOATIME,
    libc::O_NOFOLLOW,
    libc::O_TMPFILE,
    libc::O_TRUNC,
];

#[pymethods]
impl IoUring {
    /// Queues an ``openat(2)``: opens a file, giving its new descriptor as the completion's
    /// :attr:`~CompletionEvent.result`. ``O_CLOEXEC`` is always added.
    ///
    /// :param relative_to: The directory a relative ``path`` is resolved from: a directory's
    ///     file descriptor, or :data:`century_ring.AT_FDCWD` for the current working directory. ``None``
    ///     (or ``-1``) requires ``path`` to be absolute.
    /// :param path: The file to open, as :class:`str`, :class:`bytes` or
    ///     :class:`os.PathLike`. The ring keeps its own copy until the completion is reaped.
    /// :param open_mode: A :class:`FileOpenMode`.
    /// :param flags: An iterable (set, list or tuple) of :class:`FileOpenFlag`, or ``None``.
    /// :param permissions: The mode of a newly created file, masked by the process umask as
    ///     with ``open(2)``.
    /// :param file_index: Install the new file into this slot of the registered file table
    ///     (see :meth:`register_files`) instead of the process's descriptor table, or
    ///     :data:`century_ring.ALLOC_FILE_INDEX` to have the kernel pick a free slot. The
    ///     completion's :attr:`~CompletionEvent.result` is then ``0`` (or the slot picked)
    ///     rather than a descriptor; address the file with ``make_sqe_flags(fixed_file=True)``.
    ///     Needs Linux 5.15 (5.19 for ``ALLOC_FILE_INDEX``).
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused, since
    ///     the ring owns the path.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``path`` contains a NUL byte or is relative without a directory,
    ///     ``TEMPORARY_FILE`` is combined with creation flags, an argument is out of range, or
    ///     ``file_index`` is given without a registered file table or outside it.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_OPENAT`` (Linux 5.6), or
    ///     the ``file_index`` feature asked for.
    #[pyo3(
        signature = (relative_to, path, open_mode, flags=None, permissions=None, *, file_index=None, sqe_flags=None),
        text_signature = "($self, relative_to, path, open_mode, flags=None, permissions=0o666, *, file_index=None, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)] // the seed's signature, plus file_index
    fn prep_openat(
        &self,
        relative_to: Option<&Bound<'_, PyAny>>,
        path: &Bound<'_, PyAny>,
        open_mode: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        permissions: Option<&Bound<'_, PyAny>>,
        file_index: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let (dir_fd, path) = args::located_path(relative_to, "relative_to", path, "path")?;
        let mode = int_in(open_mode, "open_mode", 0, 2)? as i32;
        let flags = open_flags(flags)?;
        let permissions = match permissions {
            Some(value) => int_in(value, "permissions", 0, 0o7777)? as u32,
            None => 0o666,
        };
        let file_index = FileIndex::parse(file_index)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let slot = ring
                .files()
                .destination(file_index, ring.support(), "prep_openat")?;
            Ok(files::openat(
                dir_fd,
                path,
                mode | flags | libc::O_CLOEXEC,
                permissions,
                slot,
            ))
        })
    }

    /// Queues a ``read(2)`` (or ``pread(2)`` at an offset; ``IORING_OP_READ``, Linux 5.6) of up to
    /// ``byte_count`` bytes. The
    /// completion's :attr:`~CompletionEvent.result` is the number of bytes read (``0`` at end
    /// of file) and its :attr:`~CompletionEvent.buffer` holds exactly those bytes.
    ///
    /// The ring allocates the buffer and keeps it until the completion is reaped. Sizes that
    /// are a multiple of 512 get page-aligned memory, as ``O_DIRECT`` requires. A read of
    /// 16 KiB or more from a descriptor that is not ``O_DIRECT`` (looked up now, with
    /// ``fcntl(2)``) goes straight into the new :class:`bytes` the completion hands over, which
    /// no Python code can reach before then: setting ``O_DIRECT`` on the descriptor before the
    /// read runs makes it fail with ``EINVAL``.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param byte_count: How many bytes to read at most: ``0`` to ``2**31 - 1``.
    /// :param offset: The file offset to read from, or ``-1`` to read from (and advance) the
    ///     file's current position.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: An argument is out of range.
    #[pyo3(
        signature = (fd, byte_count, offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, byte_count, offset=-1, *, sqe_flags=None)"
    )]
    fn prep_read(
        &self,
        py: Python<'_>,
        fd: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let byte_count = args::byte_count(byte_count, "byte_count")?;
        let offset = offset_or_current(offset, "offset")?;
        let flags = sqe_flags::parse(sqe_flags)?;
        let len = byte_count as usize;
        let destination = if unfilled_bytes::for_read(fd, len, flags.contains(Flags::FIXED_FILE)) {
            Some(UnfilledBytes::new(py, len)?)
        } else {
            None
        };
        self.queue(flags, |ring| {
            let destination = match destination {
                Some(bytes) => ReadDestination::NewBytes(bytes),
                None => ReadDestination::RingBuffer(ring.pool().take(len)?),
            };
            Ok(files::read(fd, destination, offset))
        })
    }

    /// Queues a ``write(2)`` (or ``pwrite(2)`` at an offset; ``IORING_OP_WRITE``, Linux 5.6). The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes written, which can be less than
    /// asked; its :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// By default the data is copied when this is called, so ``buffer`` may be changed or
    /// freed straight away. With ``copy=False`` the kernel reads ``buffer`` in place: the ring
    /// holds an export of it until the completion is reaped (a :class:`bytearray` cannot be
    /// resized, an :class:`mmap.mmap` cannot be closed meanwhile), and changes made to it
    /// before then may or may not be written.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param buffer: Any contiguous object with the buffer protocol: :class:`bytes`,
    ///     :class:`bytearray`, :class:`memoryview`, :class:`array.array`, :class:`mmap.mmap`.
    /// :param file_offset: The file offset to write at, or ``-1`` to write at (and advance) the
    ///     file's current position.
    /// :param count: How many bytes to write; by default the rest of the buffer after
    ///     ``buffer_offset``.
    /// :param buffer_offset: Where in ``buffer`` the data starts; by default ``0``.
    /// :param copy: ``False`` to write from ``buffer`` itself instead of the ring's copy.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``count`` or ``buffer_offset`` reach past the end of the buffer, or
    ///     an argument is out of range.
    #[pyo3(
        signature = (fd, buffer, file_offset=None, count=None, buffer_offset=None, *, copy=true, sqe_flags=None),
        text_signature = "($self, fd, buffer, file_offset=-1, count=None, buffer_offset=None, *, copy=True, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)] // the seed's signature, plus copy
    fn prep_write(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        file_offset: Option<&Bound<'_, PyAny>>,
        count: Option<&Bound<'_, PyAny>>,
        buffer_offset: Option<&Bound<'_, PyAny>>,
        copy: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let file_offset = offset_or_current(file_offset, "file_offset")?;
        let range = byte_range(count, buffer_offset)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let pool = ring.pool();
            Ok(files::write(
                fd,
                source_of_range(pool, buffer, range, copy)?,
                file_offset,
            ))
        })
    }

    /// Queues a ``read(2)`` (or ``pread(2)`` at an offset; ``IORING_OP_READ``, Linux 5.6)
    /// straight into the caller's ``buffer``, up to its length. The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes read (``0`` at end of file);
    /// they are at the start of ``buffer``. Its :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// Nothing is allocated or copied: the ring holds an export of ``buffer`` until the
    /// completion is reaped, so the object stays alive and cannot be resized (a
    /// :class:`bytearray` raises :class:`BufferError`) or closed (an :class:`mmap.mmap`)
    /// meanwhile. Read a part of a buffer by passing a :class:`memoryview` slice of it. Do not
    /// read or change the buffer before the completion arrives: the kernel writes it at a time
    /// of its choosing.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param buffer: A writable contiguous buffer: :class:`bytearray`, a :class:`memoryview`
    ///     of writable memory, :class:`array.array`, a writable :class:`mmap.mmap`, a
    ///     C-contiguous NumPy array. At most ``0x7ffff000`` bytes are read in one operation, as
    ///     for ``read(2)``.
    /// :param offset: The file offset to read from, or ``-1`` to read from (and advance) the
    ///     file's current position.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises TypeError: ``buffer`` is not a writable bytes-like object (for example
    ///     :class:`bytes`, which is read-only).
    /// :raises ValueError: ``buffer`` is not contiguous, or an argument is out of range.
    #[pyo3(
        signature = (fd, buffer, offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer, offset=-1, *, sqe_flags=None)"
    )]
    fn prep_read_into(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let offset = offset_or_current(offset, "offset")?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::read_into(fd, destination_in(buffer)?, offset))
        })
    }

    /// Queues a ``close(2)`` of a file descriptor (``IORING_OP_CLOSE``, Linux 5.6). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// Closing a descriptor does not cancel operations already queued on it: the kernel holds
    /// its own reference until they finish.
    ///
    /// With ``sqe_flags=make_sqe_flags(fixed_file=True)``, ``fd`` is a slot of the registered
    /// file table, and the slot is emptied instead (Linux 5.15). The kernel refuses
    /// ``IOSQE_FIXED_FILE`` on a close, so the ring passes the slot as the close's
    /// ``file_index`` and clears that flag; the other flags apply as given.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method (its own
    ///     ``close()`` is not called; only the descriptor is closed), or a handle
    ///     (:class:`century_ring.handle.FdHandle`), which is marked closed once the close is
    ///     queued, so that no later operation can use its number; with ``fixed_file``, a slot
    ///     number.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: With ``fixed_file``, no file table is registered or the slot is
    ///     outside it.
    #[pyo3(signature = (fd, *, sqe_flags=None))]
    fn prep_close(
        &self,
        fd: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let target = fd;
        let fd = args::fd(target, "fd")?;
        let flags = sqe_flags::parse(sqe_flags)?;
        if flags.contains(Flags::FIXED_FILE) {
            return self.queue_close_slot(fd as u32, flags - Flags::FIXED_FILE);
        }
        let user_data = self.queue(flags, |_| Ok(files::close(fd)))?;
        // The close is queued: a handle must never be used, or closed, again.
        args::mark_closed(target)?;
        Ok(user_data)
    }

    /// Queues a ``readv(2)`` (or ``preadv(2)`` at an offset) into several buffers the ring
    /// allocates (``IORING_OP_READV``, Linux 5.1). The completion's
    /// :attr:`~CompletionEvent.result` is the total number of bytes read and its
    /// :attr:`~CompletionEvent.buffer` holds exactly those bytes, in order.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param byte_counts: The size of each buffer: an iterable of 1 to 1024 ints, each
    ///     ``0`` to ``2**31 - 1``, together at most ``2**31 - 1``.
    /// :param offset: The file offset to read from, or ``-1`` for the current position.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (fd, byte_counts, offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, byte_counts, offset=-1, *, sqe_flags=None)"
    )]
    fn prep_readv(
        &self,
        fd: &Bound<'_, PyAny>,
        byte_counts: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let sizes = iovec_items(byte_counts, "byte_counts", |item| {
            Ok(args::byte_count(item, "byte_counts")? as usize)
        })?;
        if sizes.iter().sum::<usize>() > args::MAX_BYTE_COUNT as usize {
            return Err(errors::bad_arg(
                "byte_counts add up to more than 2**31 - 1 bytes".to_owned(),
            ));
        }
        let offset = offset_or_current(offset, "offset")?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let pool = ring.pool();
            let buffers = sizes
                .iter()
                .map(|&size| pool.take(size))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(files::readv(fd, buffers, offset))
        })
    }

    /// Queues a ``writev(2)`` (or ``pwritev(2)`` at an offset) of several buffers
    /// (``IORING_OP_WRITEV``, Linux 5.1). The data is copied when this is called. The
    /// completion's :attr:`~CompletionEvent.result` is the total number of bytes written.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param buffers: An iterable of 1 to 1024 contiguous buffer-protocol objects, together at
    ///     most ``2**31 - 1`` bytes.
    /// :param offset: The file offset to write at, or ``-1`` for the current position.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (fd, buffers, offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffers, offset=-1, *, sqe_flags=None)"
    )]
    fn prep_writev(
        &self,
        fd: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let items = iovec_items(buffers, "buffers", |item| Ok(item.clone()))?;
        let offset = offset_or_current(offset, "offset")?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let pool = ring.pool();
            let mut total = 0usize;
            let mut copies = Vec::with_capacity(items.len());
            for item in &items {
                let copy = copy_of_range(pool, item, (0, None))?;
                total += copy.capacity();
                if total > args::MAX_BYTE_COUNT as usize {
                    return Err(errors::bad_arg(
                        "buffers hold more than 2**31 - 1 bytes together".to_owned(),
                    ));
                }
                copies.push(copy);
            }
            Ok(files::writev(fd, copies, offset))
        })
    }

    /// Queues an ``fsync(2)``, or an ``fdatasync(2)`` with ``data_only`` (``IORING_OP_FSYNC``,
    /// Linux 5.1). The completion's :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// Only writes that have completed are covered: to sync after a write, wait for the write
    /// or link the two with ``make_sqe_flags(io_link=True)``.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param data_only: Flush only the data and the metadata needed to read it back.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (fd, *, data_only=false, sqe_flags=None))]
    fn prep_fsync(
        &self,
        fd: &Bound<'_, PyAny>,
        data_only: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::fsync(fd, data_only))
        })
    }

    /// Queues a ``fallocate(2)``: allocates (or, with ``mode`` flags, punches or zeroes) a
    /// range of a file (``IORING_OP_FALLOCATE``, Linux 5.6). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param offset: Where the range starts.
    /// :param length: How long the range is; more than ``0``.
    /// :param mode: ``FALLOC_FL_*`` flags; ``0`` allocates and extends the file.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (fd, offset, length, mode=None, *, sqe_flags=None),
        text_signature = "($self, fd, offset, length, mode=0, *, sqe_flags=None)"
    )]
    fn prep_fallocate(
        &self,
        fd: &Bound<'_, PyAny>,
        offset: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        mode: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let offset = int_in(offset, "offset", 0, i64::MAX)? as u64;
        let length = int_in(length, "length", 1, i64::MAX)? as u64;
        let mode = args::int_or(mode, "mode", 0, i32::MAX.into(), 0)? as i32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::fallocate(fd, offset, length, mode))
        })
    }

    /// Queues an ``ftruncate(2)`` (``IORING_OP_FTRUNCATE``, Linux 6.9). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param fd: A file descriptor open for writing, or an object with ``fileno()``.
    /// :param length: The new size of the file.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (fd, length, *, sqe_flags=None))]
    fn prep_ftruncate(
        &self,
        fd: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let length = int_in(length, "length", 0, i64::MAX)? as u64;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::ftruncate(fd, length))
        })
    }

    /// Queues a ``posix_fadvise(2)``: tells the kernel how a range of a file will be used
    /// (``IORING_OP_FADVISE``, Linux 5.6). The completion's :attr:`~CompletionEvent.result` is
    /// ``0`` on success.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param offset: Where the range starts.
    /// :param length: How long it is; ``0`` means to the end of the file.
    /// :param advice: One of :data:`os.POSIX_FADV_NORMAL`, :data:`os.POSIX_FADV_SEQUENTIAL`,
    ///     :data:`os.POSIX_FADV_RANDOM`, :data:`os.POSIX_FADV_NOREUSE`,
    ///     :data:`os.POSIX_FADV_WILLNEED`, :data:`os.POSIX_FADV_DONTNEED`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (fd, offset, length, advice, *, sqe_flags=None))]
    fn prep_fadvise(
        &self,
        fd: &Bound<'_, PyAny>,
        offset: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        advice: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let offset = int_in(offset, "offset", 0, i64::MAX)? as u64;
        let length = int_in(length, "length", 0, i64::MAX)?;
        let advice = int_in(advice, "advice", 0, 5)? as i32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::fadvise(fd, offset, length, advice))
        })
    }

    /// Queues a ``splice(2)``: moves data between two descriptors, one of which must be a
    /// pipe, without copying it through user space (``IORING_OP_SPLICE``, Linux 5.7). The
    /// completion's :attr:`~CompletionEvent.result` is the number of bytes moved.
    ///
    /// :param fd_in: The descriptor to read from.
    /// :param offset_in: Its offset, or ``-1`` for none (required when it is a pipe).
    /// :param fd_out: The descriptor to write to.
    /// :param offset_out: Its offset, or ``-1`` for none (required when it is a pipe).
    /// :param byte_count: How many bytes to move at most: ``0`` to ``2**31 - 1``.
    /// :param flags: ``SPLICE_F_*`` flags.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (fd_in, offset_in, fd_out, offset_out, byte_count, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd_in, offset_in, fd_out, offset_out, byte_count, flags=0, *, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn prep_splice(
        &self,
        fd_in: &Bound<'_, PyAny>,
        offset_in: &Bound<'_, PyAny>,
        fd_out: &Bound<'_, PyAny>,
        offset_out: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd_in = args::fd(fd_in, "fd_in")?;
        let offset_in = int_in(offset_in, "offset_in", -1, i64::MAX)?;
        let fd_out = args::fd(fd_out, "fd_out")?;
        let offset_out = int_in(offset_out, "offset_out", -1, i64::MAX)?;
        let length = args::byte_count(byte_count, "byte_count")?;
        let flags = args::int_or(flags, "flags", 0, u32::MAX.into(), 0)? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::splice(
                fd_in, offset_in, fd_out, offset_out, length, flags,
            ))
        })
    }

    /// Queues a ``tee(2)``: duplicates data from one pipe into another without consuming it
    /// (``IORING_OP_TEE``, Linux 5.8). The completion's :attr:`~CompletionEvent.result` is the
    /// number of bytes duplicated.
    ///
    /// :param fd_in: The pipe to read from.
    /// :param fd_out: The pipe to write to.
    /// :param byte_count: How many bytes at most: ``0`` to ``2**31 - 1``.
    /// :param flags: ``SPLICE_F_*`` flags.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (fd_in, fd_out, byte_count, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd_in, fd_out, byte_count, flags=0, *, sqe_flags=None)"
    )]
    fn prep_tee(
        &self,
        fd_in: &Bound<'_, PyAny>,
        fd_out: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd_in = args::fd(fd_in, "fd_in")?;
        let fd_out = args::fd(fd_out, "fd_out")?;
        let length = args::byte_count(byte_count, "byte_count")?;
        let flags = args::int_or(flags, "flags", 0, u32::MAX.into(), 0)? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::tee(fd_in, fd_out, length, flags))
        })
    }

    /// Queues a ``pipe2(2)`` (``IORING_OP_PIPE``, Linux 6.16): creates a pipe. The
    /// completion's :attr:`~CompletionEvent.result` is ``0`` on success, and its
    /// :attr:`~CompletionEvent.extra` the pipe's two new descriptors ``(read_fd, write_fd)``,
    /// as :func:`os.pipe` gives them: the caller owns them and closes them with
    /// :func:`os.close`. On failure (such as ``-EMFILE``) ``extra`` is ``None``. Its
    /// :attr:`~CompletionEvent.buffer` is ``None``. ``O_CLOEXEC`` is always added.
    ///
    /// The ring owns the two-int array the kernel writes the descriptors into until the
    /// completion is reaped. If the ring is closed (or dropped) before then, the descriptors
    /// the kernel made are closed with it, so none is left open; once a completion has
    /// reported them they are the caller's, and the ring never closes them.
    ///
    /// :param flags: ``0``, or :data:`os.O_NONBLOCK` and :data:`os.O_DIRECT` (a pipe in packet
    ///     mode, where each write is one packet) combined with ``|``, as for
    ///     :func:`os.pipe2`. :data:`os.O_CLOEXEC` is accepted, and always added anyway.
    /// :param file_index: Install the read end into this slot of the registered file table
    ///     and the write end into the next one, instead of the descriptor table, or
    ///     :data:`century_ring.ALLOC_FILE_INDEX` to have the kernel pick two free slots. The
    ///     completion's :attr:`~CompletionEvent.extra` is then the two slots
    ///     ``(read_slot, write_slot)``, which the table owns, and ``O_CLOEXEC`` is left out.
    ///     As for :meth:`prep_openat`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused, since
    ///     the ring owns the array the descriptors are written into.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``flags`` holds anything else, or ``file_index`` is given without
    ///     a registered file table, or it or the slot after it is outside the table.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_PIPE`` (Linux 6.16).
    #[pyo3(
        signature = (flags=None, *, file_index=None, sqe_flags=None),
        text_signature = "($self, flags=0, *, file_index=None, sqe_flags=None)"
    )]
    fn prep_pipe(
        &self,
        flags: Option<&Bound<'_, PyAny>>,
        file_index: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let flags = args::int_or(flags, "flags", 0, i32::MAX.into(), 0)? as i32;
        if flags & !PIPE_FLAGS != 0 {
            return Err(errors::bad_arg(format!(
                "flags may hold only os.O_NONBLOCK, os.O_DIRECT and os.O_CLOEXEC, got \
                 {flags:#o}"
            )));
        }
        let file_index = FileIndex::parse(file_index)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            ring.files()
                .destination(file_index, ring.support(), "prep_pipe")?;
            if let Some(FileIndex::Slot(slot)) = file_index {
                // The write end goes into the slot after the read end's. (Checked here, since
                // the kernel's own failure there may also empty the wrong slot on kernels
                // that mistake the given slot for 0.)
                ring.files().check_slot(
                    slot + 1,
                    "prep_pipe",
                    "file_index: the write end's slot",
                )?;
            }
            Ok(files::pipe(flags | libc::O_CLOEXEC, file_index))
        })
    }

    /// Queues a ``sync_file_range(2)`` (``IORING_OP_SYNC_FILE_RANGE``, Linux 5.2). The
    /// completion's :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param offset: Where the range starts.
    /// :param length: How long it is, below ``2**32``; ``0`` means to the end of the file.
    /// :param flags: ``SYNC_FILE_RANGE_*`` flags.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (fd, offset, length, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd, offset, length, flags=0, *, sqe_flags=None)"
    )]
    fn prep_sync_file_range(
        &self,
        fd: &Bound<'_, PyAny>,
        offset: &Bound<'_, PyAny>,
        length: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let offset = int_in(offset, "offset", 0, i64::MAX)? as u64;
        let length = int_in(length, "length", 0, u32::MAX.into())? as u32;
        let flags = args::int_or(flags, "flags", 0, 7, 0)? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::sync_file_range(fd, offset, length, flags))
        })
    }

    /// Queues an ``openat2(2)`` (``IORING_OP_OPENAT2``, Linux 5.6): :meth:`prep_openat` with
    /// ``RESOLVE_*`` control over how the path is resolved. The completion's
    /// :attr:`~CompletionEvent.result` is the new file descriptor. ``O_CLOEXEC`` is always
    /// added.
    ///
    /// :param relative_to: As for :meth:`prep_openat`.
    /// :param path: As for :meth:`prep_openat`.
    /// :param open_mode: A :class:`FileOpenMode`.
    /// :param flags: An iterable of :class:`FileOpenFlag`, or ``None``.
    /// :param permissions: The mode of a newly created file.
    /// :param resolve: :class:`ResolveFlag` values combined with ``|``, such as
    ///     ``ResolveFlag.BENEATH | ResolveFlag.NO_SYMLINKS``.
    /// :param file_index: As for :meth:`prep_openat`: a slot of the registered file table, or
    ///     :data:`century_ring.ALLOC_FILE_INDEX`, to install the file into instead of the
    ///     descriptor table.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (relative_to, path, open_mode, flags=None, permissions=None, *, resolve=None, file_index=None, sqe_flags=None),
        text_signature = "($self, relative_to, path, open_mode, flags=None, permissions=0o666, *, resolve=0, file_index=None, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn prep_openat2(
        &self,
        relative_to: Option<&Bound<'_, PyAny>>,
        path: &Bound<'_, PyAny>,
        open_mode: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        permissions: Option<&Bound<'_, PyAny>>,
        resolve: Option<&Bound<'_, PyAny>>,
        file_index: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let (dir_fd, path) = args::located_path(relative_to, "relative_to", path, "path")?;
        let mode = int_in(open_mode, "open_mode", 0, 2)? as i32;
        let flags = open_flags(flags)? | mode | libc::O_CLOEXEC;
        let permissions = args::int_or(permissions, "permissions", 0, 0o7777, 0o666)? as u64;
        // openat2 refuses a mode unless the call can create a file.
        let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
        let permissions = if creates { permissions } else { 0 };
        let resolve = args::int_or(resolve, "resolve", 0, 0x3f, 0)? as u64;
        let file_index = FileIndex::parse(file_index)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let slot = ring
                .files()
                .destination(file_index, ring.support(), "prep_openat2")?;
            Ok(files::openat2(
                dir_fd,
                path,
                flags as u32 as u64,
                permissions,
                resolve,
                slot,
            ))
        })
    }

    /// Queues a ``statx(2)`` (``IORING_OP_STATX``, Linux 5.6). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success, and its
    /// :attr:`~CompletionEvent.extra` a :class:`StatxResult` with the file's metadata.
    ///
    /// :param relative_to: As for :meth:`prep_openat`.
    /// :param path: The file, as :class:`str`, :class:`bytes` or :class:`os.PathLike`; with
    ///     ``flags=AT_EMPTY_PATH`` an empty path names ``relative_to`` itself.
    /// :param flags: ``AT_*`` flags, such as ``AT_SYMLINK_NOFOLLOW`` (``0x100``).
    /// :param mask: The ``STATX_*`` fields wanted; by default the basic ones and the birth
    ///     time (``0xfff``).
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (relative_to, path, flags=None, mask=None, *, sqe_flags=None),
        text_signature = "($self, relative_to, path, flags=0, mask=0xfff, *, sqe_flags=None)"
    )]
    fn prep_statx(
        &self,
        relative_to: Option<&Bound<'_, PyAny>>,
        path: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        mask: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let flags = args::int_or(flags, "flags", 0, i32::MAX.into(), 0)? as i32;
        let (dir_fd, path) = if flags & libc::AT_EMPTY_PATH != 0 {
            // An empty path names the directory descriptor itself.
            let dir_fd = relative_to
                .map(|fd| args::fd(fd, "relative_to"))
                .transpose()?
                .unwrap_or(libc::AT_FDCWD);
            (dir_fd, args::path(path, "path")?)
        } else {
            args::located_path(relative_to, "relative_to", path, "path")?
        };
        let mask = args::int_or(mask, "mask", 0, u32::MAX.into(), 0xfff)? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(files::statx(dir_fd, path, flags, mask))
        })
    }
}

/// `flags` of `prep_openat`: an iterable of `FileOpenFlag` (or one), or `None`.
fn open_flags(value: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(0);
    };
    let one = |item: &Bound<'_, PyAny>| -> PyResult<i32> {
        let flag = int_in(item, "flags", i64::from(i32::MIN), i32::MAX.into())? as i32;
        if OPEN_FLAGS.contains(&flag) {
            Ok(flag)
        } else {
            Err(errors::bad_arg(format!(
                "flags: {flag:#o} is not a FileOpenFlag"
            )))
        }
    };
    let mut flags = 0;
    if value.is_instance_of::<PyInt>() {
        flags = one(value)?;
    } else {
        let items = value.try_iter().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "flags must be an iterable of FileOpenFlag or None, not {}",
                args::type_name(value)
            ))
        })?;
        for item in items {
            flags |= one(&item?)?;
        }
    }
    if flags & libc::O_TMPFILE == libc::O_TMPFILE && flags & libc::O_CREAT != 0 {
        return Err(errors::bad_arg(
            "flags: TEMPORARY_FILE cannot be combined with CREATE_IF_NOT_EXISTS or MUST_CREATE"
                .to_owned(),
        ));
    }
    Ok(flags)
}

/// The items of a vectored operation's iterable: 1 to `IOV_MAX` (1024) of them.
fn iovec_items<'py, T>(
    items: &Bound<'py, PyAny>,
    name: &str,
    mut each: impl FnMut(&Bound<'py, PyAny>) -> PyResult<T>,
) -> PyResult<Vec<T>> {
    let iter = items.try_iter().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{name} must be an iterable, not {}",
            args::type_name(items)
        ))
    })?;
    let mut out = Vec::new();
    for item in iter {
        if out.len() == IOV_MAX {
            return Err(errors::bad_arg(format!(
                "{name} may hold at most {IOV_MAX} items"
            )));
        }
        out.push(each(&item?)?);
    }
    if out.is_empty() {
        return Err(errors::bad_arg(format!("{name} must not be empty")));
    }
    Ok(out)
}
