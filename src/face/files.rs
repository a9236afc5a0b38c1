//! The file operations of `IoUring`: open, read, write, close.

use pyo3::prelude::*;
use pyo3::types::PyInt;

use super::{byte_range, copy_of_range, offset_or_current};
use crate::args::{self, int_in};
use crate::errors;
use crate::ops::files;
use crate::ring::{IoUring, AT_FDCWD};

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
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused, since
    ///     the ring owns the path.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``path`` contains a NUL byte or is relative without a directory,
    ///     ``TEMPORARY_FILE`` is combined with creation flags, or an argument is out of range.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_OPENAT`` (Linux 5.6).
    #[pyo3(
        signature = (relative_to, path, open_mode, flags=None, permissions=None, *, sqe_flags=None),
        text_signature = "($self, relative_to, path, open_mode, flags=None, permissions=0o666, *, sqe_flags=None)"
    )]
    fn prep_openat(
        &self,
        relative_to: Option<&Bound<'_, PyAny>>,
        path: &Bound<'_, PyAny>,
        open_mode: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        permissions: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let dir_fd = match relative_to {
            None => -1,
            Some(value) if value.is_instance_of::<PyInt>() => {
                match int_in(value, "relative_to", i64::from(i32::MIN), i32::MAX.into())? as i32 {
                    fd @ (-1 | AT_FDCWD) => fd,
                    fd if fd < 0 => {
                        return Err(errors::bad_arg(format!(
                            "relative_to must be a directory file descriptor, AT_FDCWD or None, \
                             got {fd}"
                        )))
                    }
                    fd => fd,
                }
            }
            Some(value) => args::fd(value, "relative_to")?,
        };
        let path = args::path(path, "path")?;
        if dir_fd == -1 && !path.as_bytes().starts_with(b"/") {
            return Err(errors::bad_arg(format!(
                "path must be absolute when relative_to is None or -1, got {:?}; pass \
                 relative_to=AT_FDCWD to open relative to the working directory",
                String::from_utf8_lossy(path.as_bytes())
            )));
        }
        let mode = int_in(open_mode, "open_mode", 0, 2)? as i32;
        let flags = open_flags(flags)?;
        let permissions = match permissions {
            Some(value) => int_in(value, "permissions", 0, 0o7777)? as u32,
            None => 0o666,
        };
        let prepared = files::openat(dir_fd, path, mode | flags | libc::O_CLOEXEC, permissions);
        self.queue(sqe_flags, |_| Ok(prepared))
    }

    /// Queues a ``read(2)`` (or ``pread(2)`` at an offset) of up to ``byte_count`` bytes. The
    /// completion's :attr:`~CompletionEvent.result` is the number of bytes read (``0`` at end
    /// of file) and its :attr:`~CompletionEvent.buffer` holds exactly those bytes.
    ///
    /// The ring allocates the buffer and keeps it until the completion is reaped. Sizes that
    /// are a multiple of 512 get page-aligned memory, as ``O_DIRECT`` requires.
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
        fd: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let byte_count = args::byte_count(byte_count, "byte_count")?;
        let offset = offset_or_current(offset, "offset")?;
        self.queue(sqe_flags, |pool| {
            Ok(files::read(fd, pool.take(byte_count as usize)?, offset))
        })
    }

    /// Queues a ``write(2)`` (or ``pwrite(2)`` at an offset). The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes written, which can be less than
    /// asked; its :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// The data is copied when this is called, so ``buffer`` may be changed or freed straight
    /// away.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param buffer: Any contiguous object with the buffer protocol: :class:`bytes`,
    ///     :class:`bytearray`, :class:`memoryview`, :class:`array.array`, :class:`mmap.mmap`.
    /// :param file_offset: The file offset to write at, or ``-1`` to write at (and advance) the
    ///     file's current position.
    /// :param count: How many bytes to write; by default the rest of the buffer after
    ///     ``buffer_offset``.
    /// :param buffer_offset: Where in ``buffer`` the data starts; by default ``0``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``count`` or ``buffer_offset`` reach past the end of the buffer, or
    ///     an argument is out of range.
    #[pyo3(
        signature = (fd, buffer, file_offset=None, count=None, buffer_offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer, file_offset=-1, count=None, buffer_offset=None, *, sqe_flags=None)"
    )]
    fn prep_write(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        file_offset: Option<&Bound<'_, PyAny>>,
        count: Option<&Bound<'_, PyAny>>,
        buffer_offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let file_offset = offset_or_current(file_offset, "file_offset")?;
        let range = byte_range(count, buffer_offset)?;
        self.queue(sqe_flags, |pool| {
            Ok(files::write(
                fd,
                copy_of_range(pool, buffer, range)?,
                file_offset,
            ))
        })
    }

    /// Queues a ``close(2)`` of a file descriptor. The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// Closing a descriptor does not cancel operations already queued on it: the kernel holds
    /// its own reference until they finish.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method (its own
    ///     ``close()`` is not called; only the descriptor is closed).
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (fd, *, sqe_flags=None))]
    fn prep_close(
        &self,
        fd: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        self.queue(sqe_flags, |_| Ok(files::close(fd)))
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
