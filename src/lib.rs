//! Century Ring's native core: Python bindings to Linux io_uring.

mod base;
mod buffer_ring;
mod completion;
mod face;
mod inflight;
mod mem;
mod operations;
mod ops;
mod resources;
mod ring;
mod ring_state;
mod setup;
mod sqe_flags;

use pyo3::prelude::*;

// `gil_used`: the ring's busy flag (`ring::Exclusive`) relies on the GIL, so a free-threaded
// interpreter must keep it enabled while this module is loaded.
#[pymodule(gil_used = true)]
fn _century_ring(m: &Bound<'_, PyModule>) -> PyResult<()> {
    base::fork::install_handler();
    m.add_class::<ring::IoUring>()?;
    m.add_class::<completion::CompletionEvent>()?;
    m.add_class::<mem::statx::StatxResult>()?;
    m.add_class::<buffer_ring::BufferRing>()?;
    m.add_class::<resources::provided_buffer::ProvidedBuffer>()?;
    m.add_function(wrap_pyfunction!(setup::make_io_ring, m)?)?;
    m.add_function(wrap_pyfunction!(sqe_flags::make_sqe_flags, m)?)?;
    m.add_function(wrap_pyfunction!(operations::_operations, m)?)?;
    m.add("AT_FDCWD", ring::AT_FDCWD)?;
    m.add("ALLOC_FILE_INDEX", resources::file_table::ALLOC_FILE_INDEX)?;
    Ok(())
}
