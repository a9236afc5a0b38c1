//! `CompletionEvent`: one reaped completion-queue entry, as the engine hands it to whoever
//! reaps (a list for `get_completion_entries`, or a waiter).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyInt};

use crate::base::objects;
use crate::mem::lent::Report;

/// One completed operation, as returned by :meth:`IoUring.get_completion_entries`.
///
/// Completion events are immutable. Match them to the operations you queued by
/// :attr:`user_data`; check :attr:`result` (or call :func:`raise_for_cqe`) before using the
/// data.
///
/// Every attribute but :attr:`user_data` is a plain slot holding a ready Python object (a
/// ``PyMemberDef``), made when the completion is reaped: reading one costs the interpreter a
/// load, not a call into the extension that builds a new ``int`` on every read.
/// :attr:`user_data` (an ``int`` above ``2**32`` that would need an allocation at every reap,
/// read or not) is made when read.
#[pyclass(frozen, module = "century_ring")]
pub struct CompletionEvent {
    /// The operation's return value, as the matching system call would give it: a byte count,
    /// a new file descriptor, or ``0``. On failure it is ``-errno`` (for example ``-2`` for
    /// ``ENOENT``); :func:`raise_for_cqe` turns that into an exception.
    #[pyo3(get)]
    result: Py<PyInt>,
    /// The value the ``prep_*`` call returned for this operation.
    #[pyo3(get)]
    user_data: u64,
    /// For an operation that reads or receives into a buffer of the ring's own (such as
    /// :meth:`IoUring.prep_read` or :meth:`IoUring.prep_recv`; each method says so), the data:
    /// a :class:`bytes` of exactly :attr:`result` bytes. ``None`` for every other operation,
    /// and for a failed one.
    #[pyo3(get)]
    buffer: Py<PyAny>,
    /// The completion-queue entry's ``IORING_CQE_F_*`` flags (for example
    /// ``IORING_CQE_F_MORE``, ``1 << 1``, when an operation will complete again).
    #[pyo3(get)]
    flags: Py<PyInt>,
    /// What some operations report beyond :attr:`result`, as each method says: for example
    /// a :class:`StatxResult` for :meth:`IoUring.prep_statx`, or the peer's address for
    /// :meth:`IoUring.prep_accept` when asked. ``None`` otherwise.
    #[pyo3(get)]
    extra: Option<Py<PyAny>>,
    /// For an operation that received into a provided buffer ring (such as
    /// :meth:`IoUring.prep_recv` with ``buffer_group``), the :class:`ProvidedBuffer` the
    /// kernel put the data in; release it to give the buffer back to its ring. ``None`` for
    /// every other operation, and for a completion that took no buffer (an error, such as
    /// ``-ENOBUFS`` when the ring was empty).
    #[pyo3(get)]
    provided_buffer: Py<PyAny>,
    /// The same values in Rust form, for `more` and `__repr__`.
    raw_result: i32,
    raw_flags: u32,
}

/// The last large `int` made for a completion's result, reused while the result repeats: the
/// reads of a batch all complete with the same byte count, and a kept `int` costs a reference
/// count instead of an allocation and a free per completion. (Results from -5 to 256 are
/// CPython's own cached small ints already.)
#[derive(Default)]
pub struct ResultInts {
    last: Option<(i32, Py<PyInt>)>,
}

impl ResultInts {
    fn get(&mut self, py: Python<'_>, value: i32) -> PyResult<Py<PyInt>> {
        if let Some((last, object)) = &self.last {
            if *last == value {
                return Ok(object.clone_ref(py));
            }
        }
        let object = objects::int(py, value.into())?.unbind();
        if !(-5..=256).contains(&value) {
            self.last = Some((value, object.clone_ref(py)));
        }
        Ok(object)
    }
}

impl CompletionEvent {
    /// The event of one completion, made into a Python object. Fails only for want of memory,
    /// having consumed nothing but what it was given.
    pub fn make(
        py: Python<'_>,
        results: &mut ResultInts,
        raw: (u64, i32, u32),
        report: Report,
        provided_buffer: Option<Py<PyAny>>,
    ) -> PyResult<Py<CompletionEvent>> {
        let (user_data, result, flags) = raw;
        // Most completions have flags 0, and many a result of 0: hand out one kept `int` for
        // it instead of a call into the interpreter per attribute.
        static ZERO: PyOnceLock<Py<PyInt>> = PyOnceLock::new();
        let int = |value: i64| -> PyResult<Py<PyInt>> {
            match value {
                0 => Ok(ZERO
                    .get_or_try_init(py, || objects::int(py, 0).map(Bound::unbind))?
                    .clone_ref(py)),
                _ => Ok(objects::int(py, value)?.unbind()),
            }
        };
        let flags_int = int(flags.into())?;
        let result_int = match result {
            0 => int(0)?,
            _ => results.get(py, result)?,
        };
        Py::new(
            py,
            CompletionEvent {
                result: result_int,
                user_data,
                buffer: report.buffer.map_or_else(|| py.None(), Py::into_any),
                flags: flags_int,
                extra: report.extra,
                provided_buffer: provided_buffer.unwrap_or_else(|| py.None()),
                raw_result: result,
                raw_flags: flags,
            },
        )
    }

    /// The `user_data` of the operation it completes.
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// Its `user_data`, result and flags, in Rust form.
    pub fn raw(&self) -> (u64, i32, u32) {
        (self.user_data, self.raw_result, self.raw_flags)
    }

    /// The provided buffer it carries, or `None`.
    pub fn provided_buffer(&self) -> &Py<PyAny> {
        &self.provided_buffer
    }
}

pub use crate::mem::lent::CQE_F_MORE;
/// `IORING_CQE_F_NOTIF`: a zero-copy send's notification that its buffer is free again.
pub const CQE_F_NOTIF: u32 = 1 << 3;

#[pymethods]
impl CompletionEvent {
    /// ``True`` when more completions will follow for the same :attr:`user_data` (a multishot
    /// operation still armed, ``IORING_CQE_F_MORE``). The ring keeps the operation's memory
    /// until the final completion, the first with ``more`` false.
    #[getter]
    pub fn more(&self) -> bool {
        self.raw_flags & CQE_F_MORE != 0
    }

    /// ``True`` for the notification completion of :meth:`IoUring.prep_send_zc`
    /// (``IORING_CQE_F_NOTIF``): the kernel no longer reads the buffer. Its :attr:`result` is
    /// ``0``.
    #[getter]
    pub fn notification(&self) -> bool {
        self.raw_flags & CQE_F_NOTIF != 0
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let buffer = match self.buffer.bind(py).cast::<PyBytes>() {
            Err(_) => "None".to_owned(),
            Ok(bytes) => {
                let bytes = bytes.as_bytes();
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
            self.user_data, self.raw_result, self.raw_flags
        )
    }
}
