//! Century Ring's native core: Python bindings to Linux io_uring.

mod address;
mod args;
mod buffer;
mod caller_buffer;
mod completion;
mod errors;
mod face;
mod fork;
mod inflight;
mod ops;
mod ring;
mod ring_state;
mod setup;
mod sqe_flags;
mod statx;
mod valgrind;

use pyo3::prelude::*;

#[pymodule]
fn _century_ring(m: &Bound<'_, PyModule>) -> PyResult<()> {
    fork::install_handler();
    m.add_class::<ring::IoUring>()?;
    m.add_class::<completion::CompletionEvent>()?;
    m.add_class::<statx::StatxResult>()?;
    m.add_function(wrap_pyfunction!(setup::make_io_ring, m)?)?;
    m.add_function(wrap_pyfunction!(sqe_flags::make_sqe_flags, m)?)?;
    m.add("AT_FDCWD", ring::AT_FDCWD)?;
    Ok(())
}
