//! SQE flags: the bits `make_sqe_flags` builds and every `prep_*` method accepts.

use io_uring::squeue::Flags;
use pyo3::prelude::*;

use crate::base::args::int_in;
use crate::base::errors::bad_arg;

/// Makes the opaque flag bits that every ``prep_*`` method takes as ``sqe_flags``.
///
/// :param fixed_file: ``IOSQE_FIXED_FILE``: the ``fd`` argument is a slot of the ring's
///     registered file table (:meth:`IoUring.register_files`) rather than a file descriptor.
///     :meth:`IoUring.prep_close` and :meth:`IoUring.prep_cancel` translate it into the form
///     those operations need (the documentation's page "Registered files and buffers" says
///     how).
/// :param io_drain: ``IOSQE_IO_DRAIN``: start this operation only once every operation
///     submitted before it has completed, and start later ones only after it.
/// :param io_link: ``IOSQE_IO_LINK``: the next queued operation starts only after this one
///     succeeds; if this one fails, the rest of the chain completes with ``-ECANCELED``.
/// :param io_hardlink: ``IOSQE_IO_HARDLINK``: like ``io_link``, but the chain continues even
///     if this operation fails.
/// :param io_async: ``IOSQE_ASYNC``: skip the non-blocking attempt and run the operation in the
///     kernel's worker threads straight away.
/// :param buffer_select: ``IOSQE_BUFFER_SELECT``: take the buffer from a provided buffer group.
///     :meth:`IoUring.prep_recv` with ``buffer_group`` sets it itself; every other operation
///     refuses it with :class:`ValueError`.
/// :param skip_success: ``IOSQE_CQE_SKIP_SUCCESS``: post no completion if the operation
///     succeeds. Operations that own memory (a path, a buffer or an address) refuse it with
///     :class:`ValueError`, since only their completion tells the ring it may free that memory.
///     Linked entries (``io_link`` or ``io_hardlink``) refuse it too: when such an entry fails,
///     the kernel posts no completion for the entries linked after it. Put it on the last
///     entry of a chain instead.
/// :returns: The flag bits, to pass as ``sqe_flags=`` to any ``prep_*`` method.
#[pyfunction]
#[pyo3(signature = (
    fixed_file=false,
    io_drain=false,
    io_link=false,
    io_hardlink=false,
    io_async=false,
    buffer_select=false,
    skip_success=false,
))]
pub fn make_sqe_flags(
    fixed_file: bool,
    io_drain: bool,
    io_link: bool,
    io_hardlink: bool,
    io_async: bool,
    buffer_select: bool,
    skip_success: bool,
) -> u8 {
    [
        (fixed_file, Flags::FIXED_FILE),
        (io_drain, Flags::IO_DRAIN),
        (io_link, Flags::IO_LINK),
        (io_hardlink, Flags::IO_HARDLINK),
        (io_async, Flags::ASYNC),
        (buffer_select, Flags::BUFFER_SELECT),
        (skip_success, Flags::SKIP_SUCCESS),
    ]
    .into_iter()
    .filter(|(wanted, _)| *wanted)
    .fold(Flags::empty(), |all, (_, flag)| all | flag)
    .bits()
}

/// The `sqe_flags` argument: `None`, or bits made by `make_sqe_flags`.
///
/// Inlined so that the commonest case, the argument left out, costs a test, not a call.
#[inline]
pub fn parse(value: Option<&Bound<'_, PyAny>>) -> PyResult<Flags> {
    match value {
        None => Ok(Flags::empty()),
        Some(value) => parse_given(value),
    }
}

fn parse_given(value: &Bound<'_, PyAny>) -> PyResult<Flags> {
    if value.is_none() {
        return Ok(Flags::empty());
    }
    let bits = int_in(value, "sqe_flags", 0, u8::MAX.into())? as u8;
    Flags::from_bits(bits).ok_or_else(|| {
        bad_arg(format!(
            "sqe_flags has unknown bits set ({bits:#x}); make it with make_sqe_flags()"
        ))
    })
}
