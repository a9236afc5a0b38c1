//! The operations of `IoUring` on registered (fixed) files and buffers: reads and writes
//! through a registered buffer, closing a fixed slot, and installing one as a descriptor.

use io_uring::squeue::Flags;
use pyo3::prelude::*;

use super::{byte_range, offset_or_current};
use crate::base::args::{self, int_in};
use crate::base::kernel_support::Feature;
use crate::ops;
use crate::py::io_uring::IoUring;
use crate::py::sqe_flags;
use crate::resources::file_table::MAX_FILE_SLOTS;

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

#[pymethods]
impl IoUring {
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
