//! `IoUring`, the Python face of a ring: argument checking and locking around `RingState`.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use pyo3::exceptions::{PyNotImplementedError, PyRuntimeWarning};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyType};

use crate::address;
use crate::args::{self, int_in};
use crate::buffer::{BufferPool, CallerBuffer, IoBuf};
use crate::errors;
use crate::fork;
use crate::ops::{self, files, misc, net, Prepared};
use crate::ring_state::{DrainOutcome, RingState, DRAIN_GIVE_UP_AFTER, DRAIN_WARN_AFTER};
use crate::sqe_flags;

/// The value of ``AT_FDCWD``: paths given to :meth:`IoUring.prep_openat` are relative to the
/// current working directory.
pub const AT_FDCWD: i32 = libc::AT_FDCWD;

/// The most bytes Linux moves in one read or write (`MAX_RW_COUNT`); a write whose `count`
/// is left to default is capped here rather than refused.
const MAX_RW_COUNT: usize = 0x7fff_f000;

/// The open flags `FileOpenFlag` offers.
const OPEN_FLAGS: [i32; 10] = [
    libc::O_APPEND,
    libc::O_CREAT,
    libc::O_CREAT | libc::O_EXCL,
    libc::O_DIRECT,
    libc::O_DIRECTORY,
    libc::O_PATH,
    libc::O_NOATIME,
    libc::O_NOFOLLOW,
    libc::O_TMPFILE,
    libc::O_TRUNC,
];

/// An ``io_uring`` instance: a submission queue that operations are added to with the
/// ``prep_*`` methods, and a completion queue their results are reaped from with
/// :meth:`get_completion_entries`. Create one with :func:`make_io_ring`.
///
/// The ring owns everything a queued operation points to (paths, buffers, addresses) until
/// that operation's completion has been reaped. Closing it (:meth:`close`, leaving the ``with``
/// block, or dropping the last reference) cancels operations still in flight and waits for the
/// kernel to let go of their memory.
#[pyclass(frozen, module = "century_ring")]
pub struct IoUring {
    /// `None` once closed.
    state: Mutex<Option<RingState>>,
    fork_generation: u64,
    owner_pid: u32,
}

impl IoUring {
    pub fn new(state: RingState) -> Self {
        IoUring {
            state: Mutex::new(Some(state)),
            fork_generation: fork::generation(),
            owner_pid: std::process::id(),
        }
    }

    fn in_forked_child(&self) -> bool {
        fork::generation() != self.fork_generation
    }

    /// Exclusive access to the ring, or the error that says why not.
    fn lock(&self) -> PyResult<MutexGuard<'_, Option<RingState>>> {
        if self.in_forked_child() {
            return Err(errors::forked(self.owner_pid));
        }
        match self.state.try_lock() {
            Ok(guard) => Ok(guard),
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => Err(errors::busy()),
        }
    }

    /// Runs `f` on the open ring.
    fn with_ring<R>(&self, f: impl FnOnce(&mut RingState) -> PyResult<R>) -> PyResult<R> {
        let mut guard = self.lock()?;
        f(guard.as_mut().ok_or_else(errors::closed)?)
    }

    /// Builds an operation (with buffers from the ring's pool) and queues it, after checking
    /// the flags against what it owns and the kernel's support for it.
    fn queue(
        &self,
        sqe_flags: Option<&Bound<'_, PyAny>>,
        build: impl FnOnce(&mut BufferPool) -> PyResult<Prepared>,
    ) -> PyResult<u64> {
        let flags = sqe_flags::parse(sqe_flags)?;
        self.with_ring(|ring| {
            let prepared = build(ring.pool())?;
            let op = prepared.op;
            if flags.contains(sqe_flags::BUFFER_SELECT) {
                return Err(errors::bad_arg(format!(
                    "sqe_flags: {} takes no provided buffer group, so buffer_select cannot be \
                     used",
                    op.method
                )));
            }
            if flags.contains(sqe_flags::SKIP_SUCCESS) && !prepared.owned.is_nothing() {
                return Err(errors::skip_success_with_owned_data());
            }
            if !ring.supports(op.opcode) {
                return Err(errors::unsupported_op(op.method, op.opcode_name, op.since));
            }
            ring.push(prepared, flags)
        })
    }

    /// Closes the ring: cancels what is in flight, waits for the kernel to release it (with the
    /// GIL released when `py` is given), and only then frees it.
    fn shut_down(&self, mut state: RingState, py: Option<Python<'_>>) {
        let drain = |state: &mut RingState, budget| match py {
            Some(py) => py.detach(|| state.drain(budget)),
            None => state.drain(budget),
        };
        let mut outcome = drain(&mut state, DRAIN_WARN_AFTER);
        if let DrainOutcome::StillWaiting(count) = outcome {
            warn(
                py,
                &format!(
                    "closing the ring: still waiting for the kernel to finish {count} \
                     operation(s) that could not be cancelled"
                ),
            );
            outcome = drain(&mut state, DRAIN_GIVE_UP_AFTER - DRAIN_WARN_AFTER);
        }
        if let DrainOutcome::StillWaiting(count) = outcome {
            outcome = DrainOutcome::Leaked(count);
        }
        if let DrainOutcome::Leaked(_) = outcome {
            let leaked = state.leak_in_flight();
            warn(
                py,
                &format!(
                    "closing the ring: {leaked} operation(s) did not complete within {} s; \
                     their buffers are leaked rather than freed, since the kernel may still \
                     write to them",
                    DRAIN_GIVE_UP_AFTER.as_secs()
                ),
            );
        }
        drop(state);
    }
}

/// A warning for the user: a Python `RuntimeWarning` when we can raise one, else stderr.
fn warn(py: Option<Python<'_>>, message: &str) {
    let warned = py.is_some_and(|py| {
        let category = py.get_type::<PyRuntimeWarning>();
        PyErr::warn(
            py,
            &category,
            &std::ffi::CString::new(message).unwrap_or_default(),
            1,
        )
        .is_ok()
    });
    if !warned {
        eprintln!("century_ring: {message}");
    }
}

impl Drop for IoUring {
    fn drop(&mut self) {
        let forked = self.in_forked_child();
        let state = match self.state.get_mut() {
            Ok(state) => state.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(state) = state {
            if forked {
                state.abandon_after_fork();
            } else {
                // Dropped without close(): drain with the GIL held (it is bounded), since
                // releasing it from a destructor is not safe during interpreter shutdown.
                self.shut_down(state, None);
            }
        }
    }
}

#[pymethods]
impl IoUring {
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().with_ring(|_| Ok(()))?;
        Ok(slf)
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.close(py)
    }

    /// Closes the ring. Operations still in flight are cancelled, and the call waits (with the
    /// GIL released) until the kernel has finished with their memory; completions not yet
    /// reaped are discarded. An operation the kernel cannot cancel, such as a disk read
    /// already sent to the device, is waited for: after 2 seconds a :class:`RuntimeWarning`
    /// says so, and after 10 seconds its memory is leaked rather than freed.
    ///
    /// Closing an already closed ring does nothing. In a child process forked from the ring's
    /// owner, this only releases the child's copy and leaves the parent's ring untouched.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.in_forked_child() {
            let state = self
                .state
                .try_lock()
                .ok()
                .and_then(|mut guard| guard.take());
            if let Some(state) = state {
                state.abandon_after_fork();
            }
            return Ok(());
        }
        let state = self.lock()?.take();
        if let Some(state) = state {
            self.shut_down(state, Some(py));
        }
        Ok(())
    }

    /// ``True`` once the ring has been closed.
    #[getter]
    fn closed(&self) -> bool {
        match self.state.try_lock() {
            Ok(guard) => guard.is_none(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().is_none(),
            Err(TryLockError::WouldBlock) => false,
        }
    }

    /// The number of entries queued with ``prep_*`` and not yet submitted to the kernel.
    #[getter]
    fn pending_sq_entries(&self) -> PyResult<u32> {
        self.with_ring(|ring| Ok(ring.pending()))
    }

    /// The number of operations whose final completion has not been reaped yet, queued or
    /// submitted; the ring holds their memory. Operations queued with ``skip_success`` are not
    /// counted, as they may never complete.
    #[getter]
    fn in_flight(&self) -> PyResult<usize> {
        self.with_ring(|ring| Ok(ring.in_flight()))
    }

    /// Which of this library's operations the running kernel supports, from the kernel's own
    /// probe (``IORING_REGISTER_PROBE``).
    ///
    /// :returns: A dict mapping each ``prep_*`` method name to ``True`` or ``False``. Calling
    ///     an unsupported one raises :class:`NotImplementedError` naming the kernel version
    ///     that added it.
    fn probe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_ring(|ring| {
            let dict = PyDict::new(py);
            for op in ops::ALL {
                dict.set_item(op.method, ring.supports(op.opcode))?;
            }
            Ok(dict)
        })
    }

    /// Queues an ``openat(2)``: opens a file, giving its new descriptor as the completion's
    /// :attr:`~CompletionEvent.result`. ``O_CLOEXEC`` is always added.
    ///
    /// :param relative_to: The directory a relative ``path`` is resolved from: a directory's
    ///     file descriptor, or :data:`century_ring.AT_FDCWD` for the current working directory. ``None``
    ///     (or ``-1``) requires ``path`` to be absolute.
    /// :param path: The file to open, as :class:`str`, :class:`bytes` or
    ///     :class:`os.PathLike`. The ring keeps its own copy until the completion is reaped.
    /// :param open_mode: A :class:`FileOpenMode`.
    /// :param flags: An iterable (set, list or tuple) of :class:`FileOpenFlag`, or ``None``.
    /// :param permissions: The mode of a newly created file, masked by the process umask as
    ///     with ``open(2)``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused, since
    ///     the ring owns the path.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``path`` contains a NUL byte or is relative without a directory,
    ///     ``TEMPORARY_FILE`` is combined with creation flags, or an argument is out of range.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_OPENAT`` (Linux 5.6).
    #[pyo3(
        signature = (relative_to, path, open_mode, flags=None, permissions=None, *, sqe_flags=None),
        text_signature = "($self, relative_to, path, open_mode, flags=None, permissions=0o666, *, sqe_flags=None)"
    )]
    fn prep_openat(
        &self,
        relative_to: Option<&Bound<'_, PyAny>>,
        path: &Bound<'_, PyAny>,
        open_mode: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        permissions: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let dir_fd = match relative_to {
            None => -1,
            Some(value) if value.is_instance_of::<PyInt>() => {
                match int_in(value, "relative_to", i64::from(i32::MIN), i32::MAX.into())? as i32 {
                    fd @ (-1 | AT_FDCWD) => fd,
                    fd if fd < 0 => {
                        return Err(errors::bad_arg(format!(
                            "relative_to must be a directory file descriptor, AT_FDCWD or None, \
                             got {fd}"
                        )))
                    }
                    fd => fd,
                }
            }
            Some(value) => args::fd(value, "relative_to")?,
        };
        let path = args::path(path, "path")?;
        if dir_fd == -1 && !path.as_bytes().starts_with(b"/") {
            return Err(errors::bad_arg(format!(
                "path must be absolute when relative_to is None or -1, got {:?}; pass \
                 relative_to=AT_FDCWD to open relative to the working directory",
                String::from_utf8_lossy(path.as_bytes())
            )));
        }
        let mode = int_in(open_mode, "open_mode", 0, 2)? as i32;
        let flags = open_flags(flags)?;
        let permissions = match permissions {
            Some(value) => int_in(value, "permissions", 0, 0o7777)? as u32,
            None => 0o666,
        };
        let prepared = files::openat(dir_fd, path, mode | flags | libc::O_CLOEXEC, permissions);
        self.queue(sqe_flags, |_| Ok(prepared))
    }

    /// Queues a ``read(2)`` (or ``pread(2)`` at an offset) of up to ``byte_count`` bytes. The
    /// completion's :attr:`~CompletionEvent.result` is the number of bytes read (``0`` at end
    /// of file) and its :attr:`~CompletionEvent.buffer` holds exactly those bytes.
    ///
    /// The ring allocates the buffer and keeps it until the completion is reaped. Sizes that
    /// are a multiple of 512 get page-aligned memory, as ``O_DIRECT`` requires.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param byte_count: How many bytes to read at most: ``0`` to ``2**31 - 1``.
    /// :param offset: The file offset to read from, or ``-1`` to read from (and advance) the
    ///     file's current position.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: An argument is out of range.
    #[pyo3(
        signature = (fd, byte_count, offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, byte_count, offset=-1, *, sqe_flags=None)"
    )]
    fn prep_read(
        &self,
        fd: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let byte_count = args::byte_count(byte_count, "byte_count")?;
        let offset = offset_or_current(offset, "offset")?;
        self.queue(sqe_flags, |pool| {
            Ok(files::read(fd, pool.take(byte_count as usize)?, offset))
        })
    }

    /// Queues a ``write(2)`` (or ``pwrite(2)`` at an offset). The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes written, which can be less than
    /// asked; its :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// The data is copied when this is called, so ``buffer`` may be changed or freed straight
    /// away.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method.
    /// :param buffer: Any contiguous object with the buffer protocol: :class:`bytes`,
    ///     :class:`bytearray`, :class:`memoryview`, :class:`array.array`, :class:`mmap.mmap`.
    /// :param file_offset: The file offset to write at, or ``-1`` to write at (and advance) the
    ///     file's current position.
    /// :param count: How many bytes to write; by default the rest of the buffer after
    ///     ``buffer_offset``.
    /// :param buffer_offset: Where in ``buffer`` the data starts; by default ``0``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``count`` or ``buffer_offset`` reach past the end of the buffer, or
    ///     an argument is out of range.
    #[pyo3(
        signature = (fd, buffer, file_offset=None, count=None, buffer_offset=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer, file_offset=-1, count=None, buffer_offset=None, *, sqe_flags=None)"
    )]
    fn prep_write(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        file_offset: Option<&Bound<'_, PyAny>>,
        count: Option<&Bound<'_, PyAny>>,
        buffer_offset: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let file_offset = offset_or_current(file_offset, "file_offset")?;
        let range = byte_range(count, buffer_offset)?;
        self.queue(sqe_flags, |pool| {
            Ok(files::write(
                fd,
                copy_of_range(pool, buffer, range)?,
                file_offset,
            ))
        })
    }

    /// Queues a ``socket(2)``: creates a socket, giving its descriptor as the completion's
    /// :attr:`~CompletionEvent.result`. ``SOCK_CLOEXEC`` is always added.
    ///
    /// :param domain: The address family, such as :data:`socket.AF_INET`.
    /// :param type: The socket type, such as :data:`socket.SOCK_STREAM`.
    /// :param protocol: The protocol; ``0`` picks the default for the type.
    /// :param nonblocking: Add ``SOCK_NONBLOCK``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_SOCKET`` (Linux 5.19).
    #[pyo3(
        signature = (domain, r#type, protocol=None, nonblocking=false, *, sqe_flags=None),
        text_signature = "($self, domain, type, protocol=0, nonblocking=False, *, sqe_flags=None)"
    )]
    fn prep_create_socket(
        &self,
        domain: &Bound<'_, PyAny>,
        r#type: &Bound<'_, PyAny>,
        protocol: Option<&Bound<'_, PyAny>>,
        nonblocking: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let domain = int_in(domain, "domain", 0, i32::MAX.into())? as i32;
        let mut socket_type = int_in(r#type, "type", 0, i32::MAX.into())? as i32;
        let protocol = match protocol {
            Some(value) => int_in(value, "protocol", 0, i32::MAX.into())? as i32,
            None => 0,
        };
        socket_type |= libc::SOCK_CLOEXEC;
        if nonblocking {
            socket_type |= libc::SOCK_NONBLOCK;
        }
        self.queue(sqe_flags, |_| {
            Ok(net::socket(domain, socket_type, protocol))
        })
    }

    /// Queues a ``connect(2)`` of a socket to an IPv4 address. The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param address: An IPv4 address, as a :class:`str` such as ``"127.0.0.1"`` or an
    ///     :class:`ipaddress.IPv4Address`.
    /// :param port: The port, ``0`` to ``65535``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: The address does not parse, or the port is out of range.
    #[pyo3(signature = (fd, address, port, *, sqe_flags=None))]
    fn prep_connect_v4(
        &self,
        fd: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        port: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let port = int_in(port, "port", 0, u16::MAX.into())? as u16;
        let address = address::ipv4(address, port)?;
        self.queue(sqe_flags, |_| Ok(net::connect(fd, address)))
    }

    /// Queues a ``connect(2)`` of a socket to an IPv6 address. The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param address: An IPv6 address, as a :class:`str` such as ``"::1"`` (a ``%zone``
    ///     suffix names the scope) or an :class:`ipaddress.IPv6Address`.
    /// :param port: The port, ``0`` to ``65535``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: The address does not parse, or the port is out of range.
    #[pyo3(signature = (fd, address, port, *, sqe_flags=None))]
    fn prep_connect_v6(
        &self,
        fd: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        port: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let port = int_in(port, "port", 0, u16::MAX.into())? as u16;
        let address = address::ipv6(address, port)?;
        self.queue(sqe_flags, |_| Ok(net::connect(fd, address)))
    }

    /// Queues a ``send(2)`` on a connected socket. The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes sent, which can be less than
    /// asked; its :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// The data is copied when this is called, so ``buffer`` may be changed straight away.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param buffer: Any contiguous object with the buffer protocol.
    /// :param count: How many bytes to send; by default the rest of the buffer after
    ///     ``buffer_offset``.
    /// :param buffer_offset: Where in ``buffer`` the data starts; by default ``0``.
    /// :param flags: ``MSG_*`` flags for ``send(2)``, such as :data:`socket.MSG_NOSIGNAL`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``count`` or ``buffer_offset`` reach past the end of the buffer, or
    ///     an argument is out of range.
    #[pyo3(
        signature = (fd, buffer, count=None, buffer_offset=None, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer, count=None, buffer_offset=None, flags=0, *, sqe_flags=None)"
    )]
    fn prep_send(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        count: Option<&Bound<'_, PyAny>>,
        buffer_offset: Option<&Bound<'_, PyAny>>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let msg_flags = msg_flags(flags)?;
        let range = byte_range(count, buffer_offset)?;
        self.queue(sqe_flags, |pool| {
            Ok(net::send(
                fd,
                copy_of_range(pool, buffer, range)?,
                msg_flags,
            ))
        })
    }

    /// Queues a ``recv(2)`` of up to ``byte_count`` bytes from a socket. The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes received (``0`` when the peer
    /// has shut down) and its :attr:`~CompletionEvent.buffer` holds exactly those bytes.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param byte_count: How many bytes to receive at most: ``0`` to ``2**31 - 1``.
    /// :param flags: ``MSG_*`` flags for ``recv(2)``, such as :data:`socket.MSG_WAITALL`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: An argument is out of range.
    #[pyo3(
        signature = (fd, byte_count, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd, byte_count, flags=0, *, sqe_flags=None)"
    )]
    fn prep_recv(
        &self,
        fd: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let byte_count = args::byte_count(byte_count, "byte_count")?;
        let msg_flags = msg_flags(flags)?;
        self.queue(sqe_flags, |pool| {
            Ok(net::recv(fd, pool.take(byte_count as usize)?, msg_flags))
        })
    }

    /// Queues a ``close(2)`` of a file descriptor. The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success.
    ///
    /// Closing a descriptor does not cancel operations already queued on it: the kernel holds
    /// its own reference until they finish.
    ///
    /// :param fd: A file descriptor, or an object with a ``fileno()`` method (its own
    ///     ``close()`` is not called; only the descriptor is closed).
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (fd, *, sqe_flags=None))]
    fn prep_close(
        &self,
        fd: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        self.queue(sqe_flags, |_| Ok(files::close(fd)))
    }

    /// Queues a no-op (``IORING_OP_NOP``, Linux 5.1), which completes at once with
    /// :attr:`~CompletionEvent.result` ``0``. Useful to measure the ring's own overhead, or to
    /// give a waiting loop a completion.
    ///
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    #[pyo3(signature = (*, sqe_flags=None))]
    fn prep_nop(&self, sqe_flags: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        self.queue(sqe_flags, |_| Ok(misc::nop()))
    }

    /// Submits every queued entry to the kernel without waiting for any to complete.
    ///
    /// :returns: The number of entries submitted.
    fn submit(&self) -> PyResult<u32> {
        self.with_ring(|ring| ring.submit())
    }

    /// Submits every queued entry, then blocks until at least ``count`` completions are ready
    /// to be reaped (completions already waiting count too).
    ///
    /// The GIL is released while waiting. If a signal arrives, its Python handler runs; if
    /// the handler raises (as Ctrl-C does with :class:`KeyboardInterrupt`), the exception
    /// propagates, otherwise the wait goes on (:pep:`475`).
    ///
    /// :param count: How many completions to wait for.
    /// :returns: The number of entries submitted.
    #[pyo3(signature = (count=None), text_signature = "($self, count=1)")]
    fn submit_and_wait(&self, py: Python<'_>, count: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
        let count = match count {
            Some(value) => int_in(value, "count", 0, u32::MAX.into())? as usize,
            None => 1,
        };
        self.with_ring(|ring| ring.submit_and_collect(count, None, Some(py)))
    }

    /// Submits every queued entry, then blocks until at least one completion is ready or the
    /// timeout passes, whichever comes first.
    ///
    /// The timeout is given to the kernel with the wait itself (``IORING_ENTER_EXT_ARG``), so
    /// nothing is left behind: no extra completion appears because of it, and later waits are
    /// not cut short. The GIL is released and signals are handled as in
    /// :meth:`submit_and_wait`; after a signal the wait resumes for the time that is left.
    ///
    /// :param seconds: Whole seconds to wait (an :class:`int`), or a :class:`float` for
    ///     fractions of a second; not negative.
    /// :param nsec: Nanoseconds added to ``seconds``; not negative.
    /// :returns: The number of entries submitted.
    /// :raises NotImplementedError: The kernel lacks ``IORING_FEAT_EXT_ARG`` (Linux 5.11).
    #[pyo3(signature = (seconds, nsec=None), text_signature = "($self, seconds, nsec=0)")]
    fn submit_and_wait_with_timeout(
        &self,
        py: Python<'_>,
        seconds: &Bound<'_, PyAny>,
        nsec: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u32> {
        let timeout = timeout_arg(seconds, nsec)?;
        self.with_ring(|ring| {
            if !ring.supports_timed_wait() {
                return Err(PyNotImplementedError::new_err(
                    "submit_and_wait_with_timeout needs IORING_FEAT_EXT_ARG, added in Linux \
                     5.11; the running kernel does not support it",
                ));
            }
            ring.submit_and_collect(1, Some(timeout), Some(py))
        })
    }

    /// Reaps every completion that is ready now, without blocking.
    ///
    /// Each operation's memory is released here, as its completion is handed over. If the
    /// completion queue overflowed, the kernel's backlog is flushed, so no completion is ever
    /// lost.
    ///
    /// :returns: A list of :class:`CompletionEvent`, oldest first; empty when none is ready.
    fn get_completion_entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.with_ring(|ring| ring.reap(py))
    }

    /// Registers an eventfd that the kernel signals whenever a completion is posted, so an
    /// event loop can wait for completions with ``select``/``epoll`` next to other sources.
    ///
    /// :param event_fd: An existing eventfd (the caller keeps ownership), or ``None`` to have
    ///     the ring create a non-blocking, close-on-exec one, which the ring owns and closes
    ///     when it is closed.
    /// :returns: The eventfd's file descriptor.
    /// :raises OSError: ``event_fd`` is not an eventfd, or one is already registered.
    #[pyo3(signature = (event_fd=None))]
    fn register_eventfd(&self, event_fd: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
        let given = event_fd
            .filter(|fd| !fd.is_none())
            .map(|fd| args::fd(fd, "event_fd"))
            .transpose()?;
        self.with_ring(|ring| match given {
            Some(fd) => {
                ring.register_eventfd(fd)
                    .map_err(|err| errors::os_error(&err, "cannot register the eventfd"))?;
                Ok(fd)
            }
            None => {
                // SAFETY: eventfd takes no pointers.
                let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                if raw < 0 {
                    let err = std::io::Error::last_os_error();
                    return Err(errors::os_error(&err, "cannot create an eventfd"));
                }
                // SAFETY: `raw` is a descriptor we just created and own.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                ring.register_eventfd(raw)
                    .map_err(|err| errors::os_error(&err, "cannot register the eventfd"))?;
                ring.set_owned_eventfd(owned);
                Ok(raw)
            }
        })
    }

    fn __repr__(&self) -> String {
        match self.state.try_lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(ring) => format!(
                    "<IoUring fd={} pending={} in_flight={}>",
                    ring.fd(),
                    ring.pending(),
                    ring.in_flight()
                ),
                None => "<IoUring closed>".to_owned(),
            },
            Err(_) => "<IoUring busy>".to_owned(),
        }
    }
}

/// `offset=-1` (or omitted): the file's current position.
fn offset_or_current(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<u64> {
    value.map_or(Ok(u64::MAX), |v| args::file_offset(v, name))
}

fn msg_flags(value: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    value.map_or(Ok(0), |v| {
        Ok(int_in(v, "flags", 0, u32::MAX.into())? as u32 as i32)
    })
}

/// `(buffer_offset, count)` of a write or send, checked for sign and size; `count` is `None`
/// for "the rest of the buffer".
fn byte_range(
    count: Option<&Bound<'_, PyAny>>,
    buffer_offset: Option<&Bound<'_, PyAny>>,
) -> PyResult<(usize, Option<usize>)> {
    let start = buffer_offset
        .filter(|v| !v.is_none())
        .map(|v| int_in(v, "buffer_offset", 0, i64::MAX))
        .transpose()?
        .unwrap_or(0) as usize;
    let count = count
        .filter(|v| !v.is_none())
        .map(|v| int_in(v, "count", 0, args::MAX_BYTE_COUNT).map(|c| c as usize))
        .transpose()?;
    Ok((start, count))
}

/// The ring's own copy of `buffer[start:start + count]`.
fn copy_of_range(
    pool: &mut BufferPool,
    buffer: &Bound<'_, PyAny>,
    (start, count): (usize, Option<usize>),
) -> PyResult<IoBuf> {
    let view = CallerBuffer::read_only(buffer, "buffer")?;
    let data = view.as_slice();
    if start > data.len() {
        return Err(errors::bad_arg(format!(
            "buffer_offset {start} is out of range for a buffer of {} bytes",
            data.len()
        )));
    }
    let available = data.len() - start;
    let count = match count {
        None => available.min(MAX_RW_COUNT),
        Some(count) if count <= available => count,
        Some(count) => {
            return Err(errors::bad_arg(format!(
                "can't write {count} bytes from a buffer of {} bytes starting at \
                 buffer_offset {start}: bytes {start}..{} are out of range",
                data.len(),
                start + count
            )))
        }
    };
    pool.copy_of(&data[start..start + count])
}

/// `flags` of `prep_openat`: an iterable of `FileOpenFlag` (or one), or `None`.
fn open_flags(value: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(0);
    };
    let one = |item: &Bound<'_, PyAny>| -> PyResult<i32> {
        let flag = int_in(item, "flags", i64::from(i32::MIN), i32::MAX.into())? as i32;
        if OPEN_FLAGS.contains(&flag) {
            Ok(flag)
        } else {
            Err(errors::bad_arg(format!(
                "flags: {flag:#o} is not a FileOpenFlag"
            )))
        }
    };
    let mut flags = 0;
    if value.is_instance_of::<PyInt>() {
        flags = one(value)?;
    } else {
        let items = value.try_iter().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "flags must be an iterable of FileOpenFlag or None, not {}",
                args::type_name(value)
            ))
        })?;
        for item in items {
            flags |= one(&item?)?;
        }
    }
    if flags & libc::O_TMPFILE == libc::O_TMPFILE && flags & libc::O_CREAT != 0 {
        return Err(errors::bad_arg(
            "flags: TEMPORARY_FILE cannot be combined with CREATE_IF_NOT_EXISTS or MUST_CREATE"
                .to_owned(),
        ));
    }
    Ok(flags)
}

/// `seconds` (int or float) plus `nsec`, both non-negative.
fn timeout_arg(seconds: &Bound<'_, PyAny>, nsec: Option<&Bound<'_, PyAny>>) -> PyResult<Duration> {
    let nsec = match nsec {
        Some(value) => int_in(value, "nsec", 0, i64::MAX)? as u64,
        None => 0,
    };
    let base = if seconds.is_instance_of::<PyInt>() {
        Duration::from_secs(int_in(seconds, "seconds", 0, i64::MAX)? as u64)
    } else {
        let value: f64 = seconds.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "seconds must be an int or a float, not {}",
                args::type_name(seconds)
            ))
        })?;
        Duration::try_from_secs_f64(value).map_err(|_| {
            errors::bad_arg(format!("seconds must be a finite number >= 0, got {value}"))
        })?
    };
    Ok(base.saturating_add(Duration::from_nanos(nsec)))
}
