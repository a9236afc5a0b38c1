//! Operations of `IoUring` that touch no file: no-op.

use pyo3::prelude::*;

use crate::ops::misc;
use crate::ring::IoUring;

#[pymethods]
impl IoUring {
    /// Queues a no-op (``IORING_OP_NOP``, Linux 5.1), which completes at once with
    /// :attr:`~CompletionEvent.result` ``0``. Useful to measure the ring's own overhead, or to
    /// give a waiting loop a completion.
    ///
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (*, sqe_flags=None))]
    fn prep_nop(&self, sqe_flags: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        self.queue(sqe_flags, |_| Ok(misc::nop()))
    }
}
