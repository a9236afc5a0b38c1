//! `ProvidedBuffer`: the data a receive put in buffers of a provided buffer group, held by the
//! user until released back to the group.

use std::sync::Arc;

use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple, PyType};

use crate::base::errors::bad_arg;
use crate::resources::buffer_group::Group;

/// The data a receive put in provided buffers: one buffer, or for a recv bundle several taken
/// in ring order. It hands the buffer(s) back to the :class:`BufferRing` when released: call
/// :meth:`release`, leave a ``with`` block, or drop the last reference.
///
/// The data is read through :class:`memoryview` objects of the ring's memory (no copy). They
/// are released together with this object; using them, or this object, afterwards raises
/// :class:`ValueError`. Views *derived* from them (slices, ``memoryview(m)``) are not released
/// and never point to freed memory, but show whatever the kernel writes into the buffer once
/// it is back in the ring: take a copy (:meth:`tobytes`) of what must outlive the release.
#[pyclass(module = "century_ring")]
pub struct ProvidedBuffer {
    group: Arc<Group>,
    bids: Vec<u16>,
    len: usize,
    /// One `memoryview` per buffer; emptied on release.
    views: Vec<Py<PyAny>>,
    released: bool,
    /// Whether it hands the buffers back when released or dropped: not until the completion
    /// that carries it has reached the user. Until then the completion owns them, and may be
    /// reaped again (with a new `ProvidedBuffer`) if memory ran out delivering it.
    owner: bool,
}

impl ProvidedBuffer {
    /// The buffers a completion took: `nbufs` of them from `first`, holding `len` bytes. If
    /// this fails, the buffers stay taken: the completion still holds the data, and taking them
    /// again for it is harmless.
    pub fn for_completion(
        py: Python<'_>,
        group: &Arc<Group>,
        first: u16,
        nbufs: usize,
        len: usize,
    ) -> PyResult<Self> {
        let bids = group.take(first, nbufs)?;
        let views = group.views(py, &bids, len)?;
        Ok(ProvidedBuffer {
            group: group.clone(),
            bids,
            len,
            views,
            released: false,
            owner: false,
        })
    }

    /// The completion carrying this reached the user: from now on it owns the buffers, and
    /// hands them back when released.
    pub fn take_ownership(&mut self) {
        self.owner = true;
    }

    fn check_open(&self) -> PyResult<()> {
        if self.released {
            return Err(bad_arg(format!(
                "this ProvidedBuffer (buffer {} of group {}) has been released: its buffer \
                 went back to the ring and may hold other data now",
                self.bids[0],
                self.group.id()
            )));
        }
        Ok(())
    }

    /// Releases the memoryviews; returns the buffers to the ring only if all of them could be.
    fn try_release(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.released {
            return Ok(());
        }
        for view in &self.views {
            if let Err(err) = view.bind(py).call_method0(pyo3::intern!(py, "release")) {
                if err.is_instance_of::<PyBufferError>(py) {
                    let wrapped = PyBufferError::new_err(format!(
                        "cannot release this ProvidedBuffer (buffer {} of group {}): \
                         something still holds a buffer export of its memoryview (such as a \
                         pickle.PickleBuffer made from .memory). Release that first; the \
                         buffer stays out of the ring until then.",
                        self.bids[0],
                        self.group.id()
                    ));
                    wrapped.set_cause(py, Some(err));
                    return Err(wrapped);
                }
                return Err(err);
            }
        }
        self.released = true;
        self.views.clear();
        if self.owner {
            self.group.give_back(&self.bids);
        }
        Ok(())
    }
}

impl Drop for ProvidedBuffer {
    fn drop(&mut self) {
        if self.owner && !self.released && !self.views.is_empty() {
            // Dropped unreleased: hand the buffer back, unless something still exports its
            // memory, in which case it stays out of the ring (never overwritten under a reader).
            Python::attach(|py| {
                let _ = self.try_release(py);
            });
        }
    }
}

#[pymethods]
impl ProvidedBuffer {
    /// The received data, as a :class:`memoryview` of exactly ``len(self)`` bytes of the
    /// buffer (writable; no copy).
    ///
    /// :raises ValueError: It has been released, or it spans several buffers (a recv bundle):
    ///     use :attr:`memories` or :meth:`tobytes` then.
    #[getter]
    fn memory(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.check_open()?;
        match self.views.as_slice() {
            [only] => Ok(only.clone_ref(py)),
            views => Err(bad_arg(format!(
                "this ProvidedBuffer spans {} buffers (a recv bundle); use .memories for one \
                 memoryview per buffer, or tobytes() for one copy",
                views.len()
            ))),
        }
    }

    /// The received data as a tuple of :class:`memoryview` objects, one per buffer in the
    /// order the data arrived: every one ``size`` bytes long except perhaps the last.
    ///
    /// :raises ValueError: It has been released.
    #[getter]
    fn memories<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.check_open()?;
        PyTuple::new(py, self.views.iter().map(|v| v.bind(py)))
    }

    /// The id of the (first) buffer, as the completion's flags give it (``flags >> 16``).
    #[getter]
    fn buffer_id(&self) -> u16 {
        self.bids[0]
    }

    /// The ids of every buffer the data occupies, in order (one unless it is a recv bundle).
    #[getter]
    fn buffer_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.bids)
    }

    /// The buffer group id.
    #[getter]
    fn group_id(&self) -> u16 {
        self.group.id()
    }

    /// ``True`` once released.
    #[getter]
    fn released(&self) -> bool {
        self.released
    }

    /// A copy of the data as :class:`bytes`.
    ///
    /// :raises ValueError: It has been released.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.check_open()?;
        let size = self.group.size() as usize;
        if let [bid] = self.bids[..] {
            // The common case, one buffer: copied straight into a new `bytes` object, without
            // `new_with`'s zero-filling first (a memset as large as the data, measured at 6% of
            // an echo server's CPU with 64 KiB buffers).
            // SAFETY: as below; one buffer holds at most `size` bytes, so `len` bytes from its
            // start lie inside it.
            let data = unsafe { std::slice::from_raw_parts(self.group.buffer_ptr(bid), self.len) };
            return Ok(PyBytes::new(py, data));
        }
        PyBytes::new_with(py, self.len, |out| {
            let mut done = 0;
            for &bid in &self.bids {
                let part = (self.len - done).min(size);
                // SAFETY: the buffer is out of the ring (held by this object), so the kernel
                // does not write it; it lies inside the data area, which `self.group` keeps
                // mapped; `out` has room for `len` bytes in all.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        self.group.buffer_ptr(bid),
                        out[done..].as_mut_ptr(),
                        part,
                    )
                };
                done += part;
            }
            Ok(())
        })
    }

    /// ``bytes(provided)``: the same as :meth:`tobytes`.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.tobytes(py)
    }

    /// The number of bytes received (still known after release).
    fn __len__(&self) -> usize {
        self.len
    }

    /// Releases the data's memoryviews and returns the buffer(s) to the ring for the kernel to
    /// fill again. Releasing again does nothing. If the group was unregistered or its ring
    /// closed, it is only marked released.
    ///
    /// :raises BufferError: Something still holds a buffer export of one of the memoryviews
    ///     (such as a :class:`pickle.PickleBuffer` made from :attr:`memory`); the buffer is not
    ///     returned, and :meth:`release` can be called again once that export is gone.
    fn release(&mut self, py: Python<'_>) -> PyResult<()> {
        self.try_release(py)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.try_release(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ProvidedBuffer group_id={} buffer_ids={:?} len={}{}>",
            self.group.id(),
            self.bids,
            self.len,
            if self.released { " released" } else { "" }
        )
    }
}
