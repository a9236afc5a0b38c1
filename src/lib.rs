//! Century Ring's native core: Python bindings to Linux io_uring.
//!
//! Layers, each importing only those below it: `base` (errors, arguments, fork detection,
//! kernel support, valgrind hints), `mem` (memory the kernel may touch), `resources` (what a
//! ring registers), `ops` (the operations, declared once each), `engine` (a ring: queueing,
//! waiting, reaping, closing) and `py` (the Python face). This file only registers the module.

mod base;
mod engine;
mod mem;
mod ops;
mod py;
mod resources;

use pyo3::prelude::*;

// Where there is a GIL, the ring's busy flag (`py::exclusive::Exclusive`) relies on it, so the
// module says it uses it. A free-threaded CPython needs no GIL for this module: the flag is a
// compare-and-exchange there, and every type shared between threads is `Sync` on its own.
#[cfg_attr(not(Py_GIL_DISABLED), pymodule(gil_used = true))]
#[cfg_attr(Py_GIL_DISABLED, pymodule(gil_used = false))]
fn _century_ring(m: &Bound<'_, PyModule>) -> PyResult<()> {
    base::fork::install_handler();
    m.add_class::<py::io_uring::IoUring>()?;
    m.add_class::<engine::completion_event::CompletionEvent>()?;
    m.add_class::<mem::statx::StatxResult>()?;
    m.add_class::<py::buffer_ring::BufferRing>()?;
    m.add_class::<resources::provided_buffer::ProvidedBuffer>()?;
    m.add_function(wrap_pyfunction!(py::make_io_ring::make_io_ring, m)?)?;
    // Private, so set as an attribute rather than added (see `_operations` below).
    m.setattr("_Stream", m.py().get_type::<py::stream::Stream>())?;
    m.setattr("_RunQueue", m.py().get_type::<py::run_queue::RunQueue>())?;
    m.setattr("_Handle", m.py().get_type::<py::run_queue::Handle>())?;
    m.add_function(wrap_pyfunction!(py::sqe_flags::make_sqe_flags, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("AT_FDCWD", py::io_uring::AT_FDCWD)?;
    m.add("ALLOC_FILE_INDEX", resources::file_table::ALLOC_FILE_INDEX)?;
    // Private, so set as an attribute rather than added: `add_function` would list it in
    // `__all__`.
    m.setattr(
        "_operations",
        wrap_pyfunction!(py::operations::_operations, m)?,
    )?;
    Ok(())
}
