//! Passes PyO3's view of the target interpreter to this crate as `cfg`s, so that code can tell
//! a free-threaded CPython (`Py_GIL_DISABLED`) from one with a GIL.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
