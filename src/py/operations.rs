//! `_operations()`: the operation table, as Python data, for the tests and the docs to read
//! instead of keeping copies of it.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::ops::{self, Operation};
use crate::py::io_uring::IoUring;

/// Every operation the ring offers, as its declaration says: a list of dicts with ``name``,
/// ``method`` (the ``IoUring`` method that queues it), ``opcode``, ``opcode_name``, ``since``
/// (the Linux version that added it), ``mirrors`` (the system call it does the work of, or
/// ``None``), ``owns`` (the kinds of memory it may own until its final completion) and
/// ``refuses`` (the :func:`make_sqe_flags` arguments it refuses beyond the common rules).
/// Private: for the project's own tests and tools.
#[pyfunction]
pub fn _operations(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let rows = ops::all()
        .map(|op| {
            let row = PyDict::new(py);
            row.set_item("name", op.name)?;
            row.set_item("method", method_name(op))?;
            row.set_item("opcode", op.opcode)?;
            row.set_item("opcode_name", op.opcode_name)?;
            row.set_item("since", op.since)?;
            row.set_item("mirrors", op.mirrors)?;
            row.set_item("owns", PyTuple::new(py, op.owns)?)?;
            row.set_item(
                "refuses",
                PyTuple::new(py, op.refuses.iter().map(|r| r.flag_name()))?,
            )?;
            Ok(row)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, rows)
}

/// The `IoUring` method that queues `op`.
pub fn method_name(op: &Operation) -> String {
    format!("prep_{}", op.name)
}

#[pymethods]
impl IoUring {
    /// Which of this library's operations the running kernel supports, from the kernel's own
    /// probe (``IORING_REGISTER_PROBE``).
    ///
    /// :returns: A dict mapping each ``prep_*`` method name to ``True`` or ``False``. Calling
    ///     an unsupported one raises :class:`NotImplementedError` naming the kernel version
    ///     that added it.
    fn probe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_ring(|ring| {
            let dict = PyDict::new(py);
            for op in ops::all() {
                dict.set_item(method_name(op), ring.support().opcode(op.opcode))?;
            }
            Ok(dict)
        })
    }
}
