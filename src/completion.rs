//! `CompletionEvent`: one reaped completion-queue entry.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// One completed operation, as returned by :meth:`IoUring.get_completion_entries`.
///
/// Completion events are immutable. Match them to the operations you queued by
/// :attr:`user_data`; check :attr:`result` (or call :func:`raise_for_cqe`) before using the
/// data.
#[pyclass(frozen, module = "century_ring")]
pub struct CompletionEvent {
    /// The operation's return value, as the matching system call would give it: a byte count,
    /// a new file descriptor, or ``0``. On failure it is ``-errno`` (for example ``-2`` for
    /// ``ENOENT``); :func:`raise_for_cqe` turns that into an exception.
    #[pyo3(get)]
    pub result: i32,
    /// The value the ``prep_*`` call returned for this operation.
    #[pyo3(get)]
    pub user_data: u64,
    /// For :meth:`IoUring.prep_read`, :meth:`IoUring.prep_readv`, :meth:`IoUring.prep_recv`
    /// and :meth:`IoUring.prep_recvfrom`, the data received: a :class:`bytes` of exactly
    /// :attr:`result` bytes. ``None`` for every other operation and
    /// for a failed read or receive.
    #[pyo3(get)]
    pub buffer: Option<Py<PyBytes>>,
    /// The completion-queue entry's ``IORING_CQE_F_*`` flags (for example
    /// ``IORING_CQE_F_MORE``, ``1 << 1``, when an operation will complete again).
    #[pyo3(get)]
    pub flags: u32,
    /// What some operations report beyond :attr:`result`: a :class:`StatxResult` for
    /// :meth:`IoUring.prep_statx`, the peer's address for :meth:`IoUring.prep_accept` (when
    /// asked) and :meth:`IoUring.prep_recvfrom`, an :class:`os.waitid_result` for
    /// :meth:`IoUring.prep_waitid`. ``None`` otherwise.
    #[pyo3(get)]
    pub extra: Option<Py<PyAny>>,
    /// For :meth:`IoUring.prep_recv` with ``buffer_group``, the :class:`ProvidedBuffer` the
    /// kernel put the data in; release it to give the buffer back to its ring. ``None`` for
    /// every other operation, and for a completion that took no buffer (an error, such as
    /// ``-ENOBUFS`` when the ring was empty).
    #[pyo3(get)]
    pub provided_buffer: Option<Py<PyAny>>,
}

/// `IORING_CQE_F_MORE`: the operation will post more completions for the same `user_data`.
pub const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_F_NOTIF`: a zero-copy send's notification that its buffer is free again.
pub const CQE_F_NOTIF: u32 = 1 << 3;

#[pymethods]
impl CompletionEvent {
    /// ``True`` when more completions will follow for the same :attr:`user_data` (a multishot
    /// operation still armed, ``IORING_CQE_F_MORE``). The ring keeps the operation's memory
    /// until the final completion, the first with ``more`` false.
    #[getter]
    fn more(&self) -> bool {
        self.flags & CQE_F_MORE != 0
    }

    /// ``True`` for the notification completion of :meth:`IoUring.prep_send_zc`
    /// (``IORING_CQE_F_NOTIF``): the kernel no longer reads the buffer. Its :attr:`result` is
    /// ``0``.
    #[getter]
    fn notification(&self) -> bool {
        self.flags & CQE_F_NOTIF != 0
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let buffer = match &self.buffer {
            None => "None".to_owned(),
            Some(bytes) => {
                let bytes = bytes.bind(py).as_bytes();
                if bytes.len() <= 32 {
                    PyBytes::new(py, bytes)
                        .repr()
                        .map(|r| r.to_string())
                        .unwrap_or_default()
                } else {
                    format!("<{} bytes>", bytes.len())
                }
            }
        };
        format!(
            "CompletionEvent(user_data={}, result={}, flags={:#x}, buffer={buffer})",
            self.user_data, self.result, self.flags
        )
    }
}
