//! The filesystem operations of `IoUring`: unlink, rename, mkdir, symlink, link.

use pyo3::prelude::*;

use crate::base::args;
use crate::ops::fs;
use crate::py::io_uring::IoUring;
use crate::py::sqe_flags;

#[pymethods]
impl IoUring {
    /// Queues an ``unlinkat(2)``: removes a file, or with ``remove_dir`` an empty directory
    /// (``IORING_OP_UNLINKAT``, Linux 5.11). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param relative_to: A directory descriptor, :data:`century_ring.AT_FDCWD`, or ``None``
    ///     (then ``path`` must be absolute), as for :meth:`prep_openat`.
    /// :param path: What to remove, as :class:`str`, :class:`bytes` or :class:`os.PathLike`.
    /// :param remove_dir: Remove a directory (``AT_REMOVEDIR``) instead of a file.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused (the
    ///     ring owns the path).
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (relative_to, path, *, remove_dir=false, sqe_flags=None))]
    fn prep_unlinkat(
        &self,
        relative_to: Option<&Bound<'_, PyAny>>,
        path: &Bound<'_, PyAny>,
        remove_dir: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let (dir_fd, path) = args::located_path(relative_to, "relative_to", path, "path")?;
        let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(fs::unlinkat(dir_fd, path, flags))
        })
    }

    /// Queues a ``renameat2(2)`` (``IORING_OP_RENAMEAT``, Linux 5.11). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param old_relative_to: The directory ``old_path`` is resolved from (as for
    ///     :meth:`prep_openat`).
    /// :param old_path: What to rename.
    /// :param new_relative_to: The directory ``new_path`` is resolved from.
    /// :param new_path: Its new name.
    /// :param flags: ``RENAME_NOREPLACE`` (1), ``RENAME_EXCHANGE`` (2) or
    ///     ``RENAME_WHITEOUT`` (4).
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (old_relative_to, old_path, new_relative_to, new_path, flags=None, *, sqe_flags=None),
        text_signature = "($self, old_relative_to, old_path, new_relative_to, new_path, flags=0, *, sqe_flags=None)"
    )]
    fn prep_renameat(
        &self,
        old_relative_to: Option<&Bound<'_, PyAny>>,
        old_path: &Bound<'_, PyAny>,
        new_relative_to: Option<&Bound<'_, PyAny>>,
        new_path: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let old = args::located_path(old_relative_to, "old_relative_to", old_path, "old_path")?;
        let new = args::located_path(new_relative_to, "new_relative_to", new_path, "new_path")?;
        let flags = args::int_or(flags, "flags", 0, 7, 0)? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(fs::renameat(old, new, flags))
        })
    }

    /// Queues a ``mkdirat(2)`` (``IORING_OP_MKDIRAT``, Linux 5.15). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param relative_to: As for :meth:`prep_openat`.
    /// :param path: The directory to create.
    /// :param permissions: Its mode, masked by the umask.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (relative_to, path, permissions=None, *, sqe_flags=None),
        text_signature = "($self, relative_to, path, permissions=0o777, *, sqe_flags=None)"
    )]
    fn prep_mkdirat(
        &self,
        relative_to: Option<&Bound<'_, PyAny>>,
        path: &Bound<'_, PyAny>,
        permissions: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let (dir_fd, path) = args::located_path(relative_to, "relative_to", path, "path")?;
        let mode = args::int_or(permissions, "permissions", 0, 0o7777, 0o777)? as u32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(fs::mkdirat(dir_fd, path, mode))
        })
    }

    /// Queues a ``symlinkat(2)``: creates ``link_path`` as a symbolic link to ``target``
    /// (``IORING_OP_SYMLINKAT``, Linux 5.15). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param target: What the link points to; stored as given, never resolved here.
    /// :param relative_to: The directory ``link_path`` is resolved from (as for
    ///     :meth:`prep_openat`).
    /// :param link_path: The link to create.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (target, relative_to, link_path, *, sqe_flags=None))]
    fn prep_symlinkat(
        &self,
        target: &Bound<'_, PyAny>,
        relative_to: Option<&Bound<'_, PyAny>>,
        link_path: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let target = args::path(target, "target")?;
        let (dir_fd, link_path) =
            args::located_path(relative_to, "relative_to", link_path, "link_path")?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(fs::symlinkat(target, dir_fd, link_path))
        })
    }

    /// Queues a ``linkat(2)``: creates ``new_path`` as a hard link to ``old_path``
    /// (``IORING_OP_LINKAT``, Linux 5.15). The completion's :attr:`~CompletionEvent.result`
    /// is ``0`` on success.
    ///
    /// :param old_relative_to: The directory ``old_path`` is resolved from.
    /// :param old_path: The existing file.
    /// :param new_relative_to: The directory ``new_path`` is resolved from.
    /// :param new_path: The new link.
    /// :param flags: ``AT_SYMLINK_FOLLOW`` (``0x400``) and/or ``AT_EMPTY_PATH`` (``0x1000``).
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    #[pyo3(
        signature = (old_relative_to, old_path, new_relative_to, new_path, flags=None, *, sqe_flags=None),
        text_signature = "($self, old_relative_to, old_path, new_relative_to, new_path, flags=0, *, sqe_flags=None)"
    )]
    fn prep_linkat(
        &self,
        old_relative_to: Option<&Bound<'_, PyAny>>,
        old_path: &Bound<'_, PyAny>,
        new_relative_to: Option<&Bound<'_, PyAny>>,
        new_path: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let old = args::located_path(old_relative_to, "old_relative_to", old_path, "old_path")?;
        let new = args::located_path(new_relative_to, "new_relative_to", new_path, "new_path")?;
        let flags = args::int_or(flags, "flags", 0, 0x1400, 0)? as i32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(fs::linkat(old, new, flags))
        })
    }
}
