//! The process operations of `IoUring`: waiting for a child.

use pyo3::prelude::*;

use crate::base::args::int_in;
use crate::ops::process;
use crate::py::io_uring::IoUring;
use crate::py::sqe_flags;

#[pymethods]
impl IoUring {
    /// Queues a ``waitid(2)``: waits for a child process to change state without blocking a
    /// thread (``IORING_OP_WAITID``, Linux 6.7). The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success, and its
    /// :attr:`~CompletionEvent.extra` the :class:`os.waitid_result` that :func:`os.waitid`
    /// would return (``None`` when ``WNOHANG`` found no child that had changed state).
    ///
    /// :param idtype: :data:`os.P_PID`, :data:`os.P_PGID`, :data:`os.P_ALL` or
    ///     :data:`os.P_PIDFD`.
    /// :param id: The process, group or pidfd; ignored for ``P_ALL``.
    /// :param options: :data:`os.WEXITED`, :data:`os.WSTOPPED`, :data:`os.WCONTINUED`,
    ///     :data:`os.WNOHANG`, :data:`os.WNOWAIT` combined with ``|``; at least one of the
    ///     first three.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused (the
    ///     ring owns the ``siginfo_t`` the kernel fills).
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (idtype, id, options, *, sqe_flags=None))]
    fn prep_waitid(
        &self,
        idtype: &Bound<'_, PyAny>,
        id: &Bound<'_, PyAny>,
        options: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let idtype = int_in(idtype, "idtype", 0, 3)? as libc::idtype_t;
        let id = int_in(id, "id", 0, u32::MAX.into())? as libc::id_t;
        let options = int_in(options, "options", 1, i32::MAX.into())? as i32;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(process::waitid(idtype, id, options))
        })
    }
}
