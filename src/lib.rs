use pyo3::prelude::*;
#[pymodule]
fn _century_ring(_m: &Bound<'_, PyModule>) -> PyResult<()> { Ok(()) }
