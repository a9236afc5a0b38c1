//! The Python face of provided buffer rings: the `BufferRing` class, and the `IoUring`
//! methods that register and unregister them. (`prep_recv` receives into them.)

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::base::args::int_in;
use crate::base::errors::bad_arg;
use crate::py::io_uring::IoUring;
use crate::resources::buffer_group::{Group, MAX_COUNT, MAX_SIZE, MAX_TOTAL};

/// A provided buffer ring registered on an :class:`IoUring` with
/// :meth:`IoUring.register_buffer_ring`: ``count`` buffers of ``size`` bytes, known to the
/// kernel as group ``group_id``. Pass it (or its ``group_id``) as ``buffer_group`` to
/// :meth:`IoUring.prep_recv`; each completion then carries a :class:`ProvidedBuffer`.
///
/// Leaving a ``with`` block unregisters it. The documentation's page "Provided buffer rings
/// and zero-copy send" explains them.
#[pyclass(frozen, module = "century_ring")]
pub struct BufferRing {
    group: Arc<Group>,
    ring: Py<IoUring>,
}

impl BufferRing {
    /// The group this ring registered.
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }
}

#[pymethods]
impl BufferRing {
    /// The buffer group id, ``0`` to ``65535``.
    #[getter]
    fn group_id(&self) -> u16 {
        self.group.id()
    }

    /// How many buffers the group has.
    #[getter]
    fn count(&self) -> u32 {
        self.group.count()
    }

    /// The size of each buffer, in bytes.
    #[getter]
    fn size(&self) -> u32 {
        self.group.size()
    }

    /// How many buffers are in the ring for the kernel to fill: all of them, less those held
    /// by :class:`ProvidedBuffer` objects not yet released. (Buffers the kernel has taken for
    /// completions not reaped yet still count here until they are reaped.)
    #[getter]
    fn available(&self) -> u32 {
        self.group.available()
    }

    /// ``True`` until the group is unregistered or its ring closed.
    #[getter]
    fn registered(&self) -> bool {
        self.group.is_registered()
    }

    /// Unregisters the group from its ring (``IORING_UNREGISTER_PBUF_RING``). Receives still
    /// armed on it complete with ``-ENOBUFS`` when data next arrives; their memory, and that
    /// of every :class:`ProvidedBuffer` still held, stays valid until they are done with it.
    /// Releasing a :class:`ProvidedBuffer` afterwards only marks it released. Does nothing if
    /// the group is already unregistered or the ring closed.
    ///
    /// :raises OSError: The kernel refused to unregister it.
    fn unregister(&self) -> PyResult<()> {
        let group = &self.group;
        if !group.is_registered() {
            return Ok(());
        }
        // A closed ring marked its groups unregistered, so this ring is open unless it closed
        // in between, which `with_ring` reports.
        self.ring.get().with_ring(|ring| {
            if ring.buffer_groups().holds(group) {
                ring.unregister_buffer_group(group.id())?;
            }
            Ok(())
        })
    }

    /// The same as :meth:`unregister`.
    fn close(&self) -> PyResult<()> {
        self.unregister()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.unregister()
    }

    fn __repr__(&self) -> String {
        let group = &self.group;
        format!(
            "<BufferRing group_id={} count={} size={} available={}{}>",
            group.id(),
            group.count(),
            group.size(),
            group.available(),
            if group.is_registered() {
                ""
            } else {
                " unregistered"
            }
        )
    }
}

#[pymethods]
impl IoUring {
    /// Registers a provided buffer ring (``IORING_REGISTER_PBUF_RING``, Linux 5.19): ``count``
    /// buffers of ``size`` bytes that the kernel fills as receives complete, instead of each
    /// receive bringing its own. Queue receives on it with ``prep_recv(fd, 0,
    /// buffer_group=ring)``; each completion's :attr:`~CompletionEvent.provided_buffer` holds
    /// the data until released. The documentation's page "Provided buffer rings and zero-copy
    /// send" explains them.
    ///
    /// The memory (``count * size`` bytes of anonymous ``mmap``, and the page of ring entries)
    /// lives until the group is unregistered, no operation selects from it any more, and no
    /// :class:`ProvidedBuffer` of it is alive.
    ///
    /// :param group_id: The buffer group id, ``0`` to ``65535``, unique on this ring.
    /// :param count: How many buffers: a power of two from ``1`` to ``32768``.
    /// :param size: The size of each buffer in bytes, ``1`` to ``2**31 - 1``; ``count * size``
    ///     at most 64 GiB.
    /// :returns: The :class:`BufferRing`.
    /// :raises ValueError: An argument is out of range, or ``group_id`` is taken on this ring
    ///     (or still used by an operation in flight on a group unregistered under that id).
    /// :raises NotImplementedError: The kernel lacks ``IORING_REGISTER_PBUF_RING`` (Linux
    ///     5.19).
    /// :raises OSError: The memory could not be mapped, or the kernel refused the ring.
    #[pyo3(signature = (group_id, count, size))]
    fn register_buffer_ring(
        slf: &Bound<'_, Self>,
        group_id: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<BufferRing> {
        let py = slf.py();
        let id = int_in(group_id, "group_id", 0, u16::MAX.into())? as u16;
        let count = int_in(count, "count", 1, MAX_COUNT)? as u32;
        if !count.is_power_of_two() {
            return Err(bad_arg(format!(
                "count must be a power of two from 1 to {MAX_COUNT}, got {count}"
            )));
        }
        let size = int_in(size, "size", 1, MAX_SIZE)? as u32;
        let total = u64::from(count) * u64::from(size);
        if total > MAX_TOTAL {
            return Err(bad_arg(format!(
                "count * size must be at most {MAX_TOTAL} bytes (64 GiB), got {total}"
            )));
        }
        let this = slf.get();
        // Refuse a taken id before mapping anything.
        let origin = this.with_ring(|ring| ring.check_group_id_free(id).map(|()| ring.origin()))?;
        let group = Group::new(py, id, count, size, origin)?;
        let group = this.with_ring(|ring| ring.register_buffer_group(group))?;
        Ok(BufferRing {
            group,
            ring: slf.clone().unbind(),
        })
    }

    /// Unregisters the provided buffer ring of group ``group_id``, as
    /// :meth:`BufferRing.unregister` does.
    ///
    /// :param group_id: The group id given to :meth:`register_buffer_ring`.
    /// :raises ValueError: No buffer ring of that id is registered on this ring.
    /// :raises OSError: The kernel refused to unregister it.
    fn unregister_buffer_ring(&self, group_id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = int_in(group_id, "group_id", 0, u16::MAX.into())? as u16;
        self.with_ring(|ring| {
            if ring.unregister_buffer_group(id)? {
                Ok(())
            } else {
                Err(bad_arg(format!(
                    "group_id: no buffer ring with group_id {id} is registered on this ring"
                )))
            }
        })
    }
}
