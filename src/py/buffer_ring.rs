//! The Python face of provided buffer rings: the `BufferRing` class, and the `IoUring`
//! methods that register them and receive into them.

use std::sync::Arc;

use io_uring::squeue::Flags;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyType};

use crate::base::args::int_in;
use crate::base::errors::bad_arg;
use crate::base::kernel_support::Feature;
use crate::ops::net;
use crate::py::io_uring::IoUring;
use crate::py::sqe_flags;
use crate::resources::buffer_group::{Armed, Group, MAX_COUNT, MAX_SIZE, MAX_TOTAL};

/// A provided buffer ring registered on an :class:`IoUring` with
/// :meth:`IoUring.register_buffer_ring`: ``count`` buffers of ``size`` bytes, known to the
/// kernel as group ``group_id``. Pass it (or its ``group_id``) as ``buffer_group`` to
/// :meth:`IoUring.prep_recv`; each completion then carries a :class:`ProvidedBuffer`.
///
/// Leaving a ``with`` block unregisters it. See :doc:`buffer-rings`.
#[pyclass(frozen, module = "century_ring")]
pub struct BufferRing {
    group: Arc<Group>,
    ring: Py<IoUring>,
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

impl IoUring {
    /// `prep_recv` with `buffer_group`: the buffer comes from a provided buffer ring.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn queue_recv_select(
        &self,
        fd: i32,
        byte_count: u32,
        msg_flags: i32,
        buffer_group: &Bound<'_, PyAny>,
        multishot: bool,
        bundle: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        if multishot && msg_flags & libc::MSG_WAITALL != 0 {
            return Err(bad_arg(
                "flags: MSG_WAITALL cannot be used with multishot=True".to_owned(),
            ));
        }
        let wanted = group_of(buffer_group)?;
        let group = self.with_ring(|ring| {
            let groups = ring.buffer_groups();
            let group = match &wanted {
                GroupArg::Ring(group) => groups
                    .find(group.id())
                    .filter(|g| Arc::ptr_eq(g, group))
                    .ok_or_else(|| {
                        bad_arg(format!(
                            "buffer_group: this BufferRing (group_id {}) is not registered on \
                             this ring: it was unregistered, or belongs to another ring",
                            group.id()
                        ))
                    })?,
                GroupArg::Id(id) => groups.find(*id).ok_or_else(|| {
                    bad_arg(format!(
                        "buffer_group: no buffer ring with group_id {id} is registered on this \
                         ring; make one with register_buffer_ring()"
                    ))
                })?,
            };
            // The kernel shortens the first ring entry of a bundle to a smaller byte_count in
            // place, and leaves it so if the receive then waits: a later bundle would then
            // span buffers of unequal sizes, which the completion cannot describe.
            if bundle && byte_count != 0 && byte_count < group.size() {
                return Err(bad_arg(format!(
                    "byte_count: a bundle takes whole buffers, so byte_count must be 0 (no \
                     limit) or at least the group's buffer size ({}), got {byte_count}",
                    group.size()
                )));
            }
            if multishot {
                ring.support()
                    .require(Feature::MultishotReceive, "prep_recv(multishot=True)")?;
            }
            if bundle {
                ring.support()
                    .require(Feature::ReceiveBundles, "prep_recv(bundle=True)")?;
            }
            Ok(Armed::new(group.clone()))
        })?;
        // buffer_select is implied by buffer_group; asking for it as well is harmless.
        let flags = sqe_flags::parse(sqe_flags)? - Flags::BUFFER_SELECT;
        self.queue(flags, |_| {
            Ok(net::recv_select(
                fd, byte_count, msg_flags, group, multishot, bundle,
            ))
        })
    }
}

/// A `buffer_group` argument: a `BufferRing`, or a group id.
enum GroupArg {
    Ring(Arc<Group>),
    Id(u16),
}

fn group_of(obj: &Bound<'_, PyAny>) -> PyResult<GroupArg> {
    if let Ok(ring) = obj.cast::<BufferRing>() {
        return Ok(GroupArg::Ring(ring.get().group.clone()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(GroupArg::Id(
            int_in(obj, "buffer_group", 0, u16::MAX.into())? as u16,
        ));
    }
    Err(PyTypeError::new_err(format!(
        "buffer_group must be a BufferRing or its group_id (an int), not {}",
        crate::base::args::type_name(obj)
    )))
}

#[pymethods]
impl IoUring {
    /// Registers a provided buffer ring (``IORING_REGISTER_PBUF_RING``, Linux 5.19): ``count``
    /// buffers of ``size`` bytes that the kernel fills as receives complete, instead of each
    /// receive bringing its own. Queue receives on it with ``prep_recv(fd, 0,
    /// buffer_group=ring)``; each completion's :attr:`~CompletionEvent.provided_buffer` holds
    /// the data until released. See :doc:`buffer-rings`.
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
