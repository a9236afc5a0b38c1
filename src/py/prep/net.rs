//! The network operations of `IoUring`: socket, connect, send, recv, accept, bind, listen,
//! shutdown, sendto and recvfrom.

use std::sync::Arc;

use io_uring::squeue::Flags;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyInt;

use super::{byte_range, destination_in, source_of_range};
use crate::base::args::{self, int_in};
use crate::base::errors::bad_arg;
use crate::base::kernel_support::Feature;
use crate::mem::caller_buffer::CallerBuffer;
use crate::mem::io_buf::{BufferPool, IoBuf};
use crate::mem::socket_address;
use crate::ops::net;
use crate::py::buffer_ring::BufferRing;
use crate::py::io_uring::IoUring;
use crate::py::sqe_flags;
use crate::resources::buffer_group::{Armed, Group};
use crate::resources::file_table::FileIndex;

#[pymethods]
impl IoUring {
    /// Queues a ``socket(2)``: creates a socket, giving its descriptor as the completion's
    /// :attr:`~CompletionEvent.result`. ``SOCK_CLOEXEC`` is always added.
    ///
    /// :param domain: The address family, such as :data:`socket.AF_INET`.
    /// :param type: The socket type, such as :data:`socket.SOCK_STREAM`.
    /// :param protocol: The protocol; ``0`` picks the default for the type.
    /// :param nonblocking: Add ``SOCK_NONBLOCK``.
    /// :param file_index: Install the socket into this slot of the registered file table
    ///     instead of the descriptor table, or :data:`century_ring.ALLOC_FILE_INDEX` to have
    ///     the kernel pick a free slot; the completion's :attr:`~CompletionEvent.result` is then
    ///     ``0`` (or the slot picked). As for :meth:`prep_openat`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_SOCKET`` (Linux 5.19).
    #[pyo3(
        signature = (domain, r#type, protocol=None, nonblocking=false, *, file_index=None, sqe_flags=None),
        text_signature = "($self, domain, type, protocol=0, nonblocking=False, *, file_index=None, sqe_flags=None)"
    )]
    fn prep_create_socket(
        &self,
        domain: &Bound<'_, PyAny>,
        r#type: &Bound<'_, PyAny>,
        protocol: Option<&Bound<'_, PyAny>>,
        nonblocking: bool,
        file_index: Option<&Bound<'_, PyAny>>,
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
        let file_index = FileIndex::parse(file_index)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let slot =
                ring.files()
                    .destination(file_index, ring.support(), "prep_create_socket")?;
            Ok(net::socket(domain, socket_type, protocol, slot))
        })
    }

    /// Queues a ``connect(2)`` of a socket to an IPv4 address (``IORING_OP_CONNECT``, Linux 5.5). The completion's
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
        let address = socket_address::ipv4(address, port)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(net::connect(&net::CONNECT_V4, fd, address))
        })
    }

    /// Queues a ``connect(2)`` of a socket to an IPv6 address (``IORING_OP_CONNECT``, Linux 5.5). The completion's
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
        let address = socket_address::ipv6(address, port)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(net::connect(&net::CONNECT_V6, fd, address))
        })
    }

    /// Queues a ``send(2)`` on a connected socket (``IORING_OP_SEND``, Linux 5.6). The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes sent, which can be less than
    /// asked; its :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// By default the data is copied when this is called, so ``buffer`` may be changed
    /// straight away. With ``copy=False`` the kernel reads ``buffer`` in place, as for
    /// :meth:`prep_write`: the ring holds an export of it until the completion is reaped.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param buffer: Any contiguous object with the buffer protocol.
    /// :param count: How many bytes to send; by default the rest of the buffer after
    ///     ``buffer_offset``.
    /// :param buffer_offset: Where in ``buffer`` the data starts; by default ``0``.
    /// :param flags: ``MSG_*`` flags for ``send(2)``, such as :data:`socket.MSG_NOSIGNAL`;
    ///     not ``MSG_ZEROCOPY``, with which the kernel reads the buffer after the completion.
    /// :param copy: ``False`` to send from ``buffer`` itself instead of the ring's copy.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``count`` or ``buffer_offset`` reach past the end of the buffer, or
    ///     an argument is out of range.
    #[pyo3(
        signature = (fd, buffer, count=None, buffer_offset=None, flags=None, *, copy=true, sqe_flags=None),
        text_signature = "($self, fd, buffer, count=None, buffer_offset=None, flags=0, *, copy=True, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)] // the seed's signature, plus copy
    fn prep_send(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        count: Option<&Bound<'_, PyAny>>,
        buffer_offset: Option<&Bound<'_, PyAny>>,
        flags: Option<&Bound<'_, PyAny>>,
        copy: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let msg_flags = send_flags(flags)?;
        let range = byte_range(count, buffer_offset)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let pool = ring.pool();
            Ok(net::send(
                fd,
                source_of_range(pool, buffer, range, copy)?,
                msg_flags,
            ))
        })
    }

    /// Queues a zero-copy ``send(2)`` (``IORING_OP_SEND_ZC``, Linux 6.0): the kernel sends
    /// straight from ``buffer``'s pages, with no copy here and none into the socket. The ring
    /// holds an export of ``buffer`` (so a :class:`bytearray` cannot be resized, nor an
    /// :class:`mmap.mmap` closed) until the *notification*; do not change the data before it.
    ///
    /// It usually posts two completions with the same ``user_data``: first the result (bytes
    /// sent, or ``-errno``) with :attr:`~CompletionEvent.more` ``True``, then a notification
    /// (:attr:`~CompletionEvent.notification` ``True``, ``more`` ``False``, result ``0``) once
    /// the kernel no longer reads the buffer. A request refused outright posts only one
    /// completion, without ``more``. The operation counts in :attr:`in_flight` until the last.
    /// Zero copy pays off for large sends to a real network device; over loopback the kernel
    /// copies anyway.
    ///
    /// Not on a ring that uses ``io_drain``: once a ring has queued an entry with
    /// ``io_drain``, Linux (6.18 at least) never starts a later zero-copy send on it, drained
    /// or not, and cannot cancel it either, so this method refuses. Order zero-copy sends with
    /// ``io_link``, or keep them on a ring of their own.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param buffer: Any contiguous object with the buffer protocol.
    /// :param count: How many bytes to send; by default the rest of the buffer after
    ///     ``buffer_offset``.
    /// :param buffer_offset: Where in ``buffer`` the data starts; by default ``0``.
    /// :param flags: ``MSG_*`` flags for ``send(2)``, such as :data:`socket.MSG_NOSIGNAL`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` and ``io_drain``
    ///     are refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``count`` or ``buffer_offset`` reach past the end of the buffer, an
    ///     argument is out of range, or ``io_drain`` is given or was used on this ring before.
    /// :raises TypeError: ``buffer`` is not bytes-like.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_SEND_ZC`` (Linux 6.0).
    #[pyo3(
        signature = (fd, buffer, count=None, buffer_offset=None, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer, count=None, buffer_offset=None, flags=0, *, sqe_flags=None)"
    )]
    fn prep_send_zc(
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
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let pool = ring.pool();
            Ok(net::send_zc(
                fd,
                source_of_range(pool, buffer, range, false)?,
                msg_flags,
            ))
        })
    }

    /// Queues a ``recv(2)`` of up to ``byte_count`` bytes from a socket (``IORING_OP_RECV``,
    /// Linux 5.6). The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes received (``0`` when the peer
    /// has shut down) and its :attr:`~CompletionEvent.buffer` holds exactly those bytes.
    ///
    /// With ``buffer_group`` the kernel takes the buffer from a provided buffer ring
    /// (:meth:`register_buffer_ring`) when data arrives, and the completion's
    /// :attr:`~CompletionEvent.provided_buffer` holds the data instead of
    /// :attr:`~CompletionEvent.buffer` (no copy); release it to give the buffer back. The
    /// operation keeps the group's memory alive until its final completion. When the ring has
    /// no buffer left, the completion's result is ``-ENOBUFS`` (and a multishot receive stops):
    /// release buffers, then queue the receive again. The documentation's page "Provided buffer
    /// rings and zero-copy send" explains them.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param byte_count: How many bytes to receive at most: ``0`` to ``2**31 - 1``. With
    ///     ``buffer_group``, ``0`` means one buffer's size (larger values are capped at it);
    ///     for a bundle, the most bytes over all its buffers: ``0`` (no limit) or at least one
    ///     buffer's size.
    /// :param flags: ``MSG_*`` flags for ``recv(2)``, such as :data:`socket.MSG_WAITALL`. With
    ///     :data:`socket.MSG_TRUNC` a TCP socket discards the data it counts: the buffer then
    ///     holds zero bytes in its place.
    /// :param buffer_group: A :class:`BufferRing` registered on this ring, or its
    ///     ``group_id``.
    /// :param multishot: ``IORING_RECV_MULTISHOT`` (Linux 6.0): stay armed, posting one
    ///     completion per arrival with :attr:`~CompletionEvent.more` ``True``, until one with
    ///     ``more`` ``False`` (an error, ``-ENOBUFS``, end of stream or cancellation). Needs
    ///     ``buffer_group``; not with :data:`socket.MSG_WAITALL`.
    /// :param bundle: ``IORING_RECVSEND_BUNDLE`` (Linux 6.10): one completion may fill several
    ///     buffers in ring order; its :class:`ProvidedBuffer` then spans them all. Needs
    ///     ``buffer_group``.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    ///     ``buffer_select`` is implied by ``buffer_group``, and refused without it.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: An argument is out of range, ``multishot`` or ``bundle`` is given
    ///     without ``buffer_group``, or no such buffer ring is registered on this ring.
    /// :raises TypeError: ``buffer_group`` is neither a :class:`BufferRing` nor an int.
    /// :raises NotImplementedError: The kernel lacks multishot receive (Linux 6.0) or recv
    ///     bundles (Linux 6.10).
    #[pyo3(
        signature = (fd, byte_count, flags=None, *, buffer_group=None, multishot=false, bundle=false, sqe_flags=None),
        text_signature = "($self, fd, byte_count, flags=0, *, buffer_group=None, multishot=False, bundle=False, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)] // the seed's signature, plus the provided-buffer options
    fn prep_recv(
        &self,
        fd: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        buffer_group: Option<&Bound<'_, PyAny>>,
        multishot: bool,
        bundle: bool,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let byte_count = args::byte_count(byte_count, "byte_count")?;
        let msg_flags = msg_flags(flags)?;
        if let Some(group) = buffer_group.filter(|g| !g.is_none()) {
            return self.queue_recv_select(
                fd, byte_count, msg_flags, group, multishot, bundle, sqe_flags,
            );
        }
        if multishot || bundle {
            return Err(bad_arg(format!(
                "{}=True needs buffer_group: the kernel picks each receive's buffer from a \
                 provided buffer ring (see register_buffer_ring())",
                if multishot { "multishot" } else { "bundle" }
            )));
        }
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let pool = ring.pool();
            let destination = receive_buffer(pool, byte_count, msg_flags)?;
            Ok(net::recv(fd, destination, msg_flags))
        })
    }

    /// Queues a ``recv(2)`` from a socket straight into the caller's ``buffer``, up to its
    /// length (``IORING_OP_RECV``, Linux 5.6). The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes received (``0`` when the peer
    /// has shut down); they are at the start of ``buffer``. Its
    /// :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// As for :meth:`prep_read_into`, the ring holds an export of ``buffer`` until the
    /// completion is reaped; do not use the buffer before then.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param buffer: A writable contiguous buffer (:class:`bytearray`, a :class:`memoryview`
    ///     slice of one, :class:`array.array`, :class:`mmap.mmap`, ...).
    /// :param flags: ``MSG_*`` flags for ``recv(2)``, such as :data:`socket.MSG_WAITALL`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises TypeError: ``buffer`` is not a writable bytes-like object.
    /// :raises ValueError: ``buffer`` is not contiguous, or an argument is out of range.
    #[pyo3(
        signature = (fd, buffer, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer, flags=0, *, sqe_flags=None)"
    )]
    fn prep_recv_into(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let msg_flags = msg_flags(flags)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(net::recv_into(fd, destination_in(buffer)?, msg_flags))
        })
    }
}

#[pymethods]
impl IoUring {
    /// Queues an ``accept4(2)`` (``IORING_OP_ACCEPT``, Linux 5.5): takes a connection off a
    /// listening socket. The completion's :attr:`~CompletionEvent.result` is the new
    /// connection's descriptor (``SOCK_CLOEXEC`` is always added); its
    /// :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// With ``peer_address=True`` the ring owns a ``sockaddr_storage`` and its length until the
    /// completion, and the completion's :attr:`~CompletionEvent.extra` is the peer's address in
    /// the :mod:`socket` module's form: ``(host, port)`` for ``AF_INET``, ``(host, port,
    /// flowinfo, scope_id)`` for ``AF_INET6``, a :class:`str` path for ``AF_UNIX`` (``""`` for
    /// an unnamed peer, :class:`bytes` starting with ``b"\0"`` for an abstract name).
    /// Otherwise it owns nothing and ``extra`` is ``None``.
    ///
    /// With ``multishot=True`` (Linux 5.19) one entry accepts connection after connection:
    /// each posts a completion with the same ``user_data`` and
    /// :attr:`~CompletionEvent.more` ``True``, until one with ``more`` ``False`` says the
    /// accept has stopped: an error, a cancellation, closing the ring, or
    /// :meth:`prep_shutdown` of the listener with :data:`socket.SHUT_RDWR` (which ends it with
    /// ``-EINVAL``). Closing the listener's descriptor does *not* stop it, since the pending
    /// accept holds its own reference to the socket. The operation counts in
    /// :attr:`in_flight` until its last completion.
    ///
    /// :param fd: The listening socket, as a file descriptor or an object with ``fileno()``.
    /// :param flags: ``0`` or :data:`socket.SOCK_NONBLOCK` for the new descriptor
    ///     (:data:`socket.SOCK_CLOEXEC` is accepted and always added anyway).
    /// :param peer_address: Report the peer's address as the completion's ``extra``.
    /// :param multishot: Keep accepting until cancelled or failed.
    /// :param file_index: Install the connection into this slot of the registered file table
    ///     instead of the descriptor table, or :data:`century_ring.ALLOC_FILE_INDEX` to have
    ///     the kernel pick a free slot; the completion's :attr:`~CompletionEvent.result` is then
    ///     ``0`` (or the slot picked). As for :meth:`prep_openat`. A multishot accept takes only
    ///     ``ALLOC_FILE_INDEX``, each completion giving the slot of one connection.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused with
    ///     ``peer_address=True``.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``flags`` has other bits, ``peer_address`` and ``multishot`` are
    ///     both true (one address buffer cannot serve many accepts), or ``file_index`` is a
    ///     slot number with ``multishot``.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_ACCEPT`` (Linux 5.5).
    #[pyo3(
        signature = (fd, flags=None, *, peer_address=false, multishot=false, file_index=None, sqe_flags=None),
        text_signature = "($self, fd, flags=0, *, peer_address=False, multishot=False, file_index=None, sqe_flags=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn prep_accept(
        &self,
        fd: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        peer_address: bool,
        multishot: bool,
        file_index: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let allowed = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let accept_flags = match flags {
            Some(value) => int_in(value, "flags", 0, i32::MAX.into())? as i32,
            None => 0,
        };
        if accept_flags & !allowed != 0 {
            return Err(bad_arg(format!(
                "flags may hold only socket.SOCK_NONBLOCK and socket.SOCK_CLOEXEC, got \
                 {accept_flags:#x}"
            )));
        }
        if peer_address && multishot {
            return Err(bad_arg(
                "peer_address=True cannot be used with multishot=True: one address buffer \
                 cannot serve many accepts; call socket.getpeername() on each new connection, \
                 or use one-shot accepts"
                    .to_owned(),
            ));
        }
        let accept_flags = accept_flags | libc::SOCK_CLOEXEC;
        let file_index = FileIndex::parse(file_index)?;
        if multishot && matches!(file_index, Some(FileIndex::Slot(_))) {
            return Err(bad_arg(
                "file_index: a multishot accept installs many connections, so it takes only \
                 ALLOC_FILE_INDEX (the kernel picks a free slot for each), not a slot number"
                    .to_owned(),
            ));
        }
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let slot = ring
                .files()
                .destination(file_index, ring.support(), "prep_accept")?;
            Ok(net::accept(fd, accept_flags, peer_address, multishot, slot))
        })
    }

    /// Queues a ``connect(2)`` (``IORING_OP_CONNECT``, Linux 5.5) to any socket address. The
    /// completion's :attr:`~CompletionEvent.result` is ``0`` on success. The ring owns the
    /// socket address until the completion.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param address: An address in the :mod:`socket` module's form: ``(host, port)`` with a
    ///     numeric IPv4 or IPv6 host (a :class:`str` or an :mod:`ipaddress` object); ``(host,
    ///     port, flowinfo, scope_id)`` for IPv6; or an ``AF_UNIX`` path as :class:`str`,
    ///     :class:`bytes` or :class:`os.PathLike`, where :class:`bytes` starting with
    ///     ``b"\0"`` name the abstract namespace. Host names are not resolved (that would
    ///     block): resolve them first with :func:`socket.getaddrinfo`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: The host is not numeric, the port or another field is out of range,
    ///     or the path does not fit in ``sun_path``.
    /// :raises TypeError: The address is of no supported form.
    #[pyo3(signature = (fd, address, *, sqe_flags=None))]
    fn prep_connect(
        &self,
        fd: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let address = socket_address::from_python(address, "address")?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(net::connect(&net::CONNECT, fd, address))
        })
    }

    /// Queues a ``bind(2)`` (``IORING_OP_BIND``, Linux 6.11): gives a socket its local
    /// address. The completion's :attr:`~CompletionEvent.result` is ``0`` on success. The ring
    /// owns the socket address until the completion.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param address: An address in the :mod:`socket` module's form, as for
    ///     :meth:`prep_connect`; a host of ``""`` is the wildcard address (``0.0.0.0`` in a
    ///     ``(host, port)`` pair, ``::`` in a longer tuple), and port ``0`` picks a free port.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: The host is not numeric, a field is out of range, or the path does
    ///     not fit in ``sun_path``.
    /// :raises TypeError: The address is of no supported form.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_BIND`` (Linux 6.11).
    #[pyo3(signature = (fd, address, *, sqe_flags=None))]
    fn prep_bind(
        &self,
        fd: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let address = socket_address::from_python(address, "address")?;
        self.queue(sqe_flags::parse(sqe_flags)?, |_| Ok(net::bind(fd, address)))
    }

    /// Queues a ``listen(2)`` (``IORING_OP_LISTEN``, Linux 6.11): makes a bound socket accept
    /// connections. The completion's :attr:`~CompletionEvent.result` is ``0`` on success.
    /// Owns nothing.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param backlog: How many connections may wait to be accepted, ``0`` to ``2**31 - 1``
    ///     (the kernel caps it at ``net.core.somaxconn``); by default ``128``, as
    ///     :meth:`socket.socket.listen` picks.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``backlog`` is out of range.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_LISTEN`` (Linux 6.11).
    #[pyo3(
        signature = (fd, backlog=None, *, sqe_flags=None),
        text_signature = "($self, fd, backlog=128, *, sqe_flags=None)"
    )]
    fn prep_listen(
        &self,
        fd: &Bound<'_, PyAny>,
        backlog: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let backlog = match backlog {
            Some(value) => int_in(value, "backlog", 0, i32::MAX.into())? as i32,
            None => DEFAULT_BACKLOG,
        };
        self.queue(sqe_flags::parse(sqe_flags)?, |_| {
            Ok(net::listen(fd, backlog))
        })
    }

    /// Queues a ``shutdown(2)`` (``IORING_OP_SHUTDOWN``, Linux 5.11): shuts down the receiving
    /// side, the sending side, or both, of a connection. The completion's
    /// :attr:`~CompletionEvent.result` is ``0`` on success. Owns nothing.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param how: :data:`socket.SHUT_RD`, :data:`socket.SHUT_WR` or
    ///     :data:`socket.SHUT_RDWR`.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: ``how`` is none of the three.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_SHUTDOWN`` (Linux 5.11).
    #[pyo3(signature = (fd, how, *, sqe_flags=None))]
    fn prep_shutdown(
        &self,
        fd: &Bound<'_, PyAny>,
        how: &Bound<'_, PyAny>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let how = int_in(how, "how", i32::MIN.into(), i32::MAX.into())? as i32;
        if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
            return Err(bad_arg(format!(
                "how must be socket.SHUT_RD ({}), socket.SHUT_WR ({}) or socket.SHUT_RDWR ({}), \
                 got {how}",
                libc::SHUT_RD,
                libc::SHUT_WR,
                libc::SHUT_RDWR
            )));
        }
        self.queue(sqe_flags::parse(sqe_flags)?, |_| Ok(net::shutdown(fd, how)))
    }

    /// Queues a ``sendto(2)``, as a ``sendmsg(2)`` (``IORING_OP_SENDMSG``, Linux 5.3): sends
    /// data to an address, as datagram sockets do. The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes sent; its
    /// :attr:`~CompletionEvent.buffer` is ``None``.
    ///
    /// The data is copied when this is called, so ``buffer`` may be changed straight away. The
    /// ring owns the ``msghdr``, its ``iovec``, the socket address and the copy of the data
    /// until the completion.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param buffer: Any contiguous object with the buffer protocol, at most ``2**31 - 1``
    ///     bytes.
    /// :param address: Where to send, in the :mod:`socket` module's form, as for
    ///     :meth:`prep_connect`.
    /// :param flags: ``MSG_*`` flags for ``sendmsg(2)``, such as :data:`socket.MSG_DONTWAIT`;
    ///     not ``MSG_ZEROCOPY``, with which the kernel reads the buffer after the completion.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: The address is bad, or an argument is out of range.
    /// :raises TypeError: ``buffer`` is not bytes-like, or the address is of no supported form.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_SENDMSG`` (Linux 5.3).
    #[pyo3(
        signature = (fd, buffer, address, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd, buffer, address, flags=0, *, sqe_flags=None)"
    )]
    fn prep_sendto(
        &self,
        fd: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let address = socket_address::from_python(address, "address")?;
        let msg_flags = send_flags(flags)?;
        let view = CallerBuffer::read_only(buffer, "buffer")?;
        let len = view.len();
        if len as u64 > args::MAX_BYTE_COUNT as u64 {
            return Err(bad_arg(format!(
                "buffer holds {len} bytes; one sendto sends at most {} bytes",
                args::MAX_BYTE_COUNT
            )));
        }
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let data = view.copy(ring.pool(), 0, len)?;
            Ok(net::sendto(fd, data, *address, msg_flags))
        })
    }

    /// Queues a ``recvfrom(2)``, as a ``recvmsg(2)`` (``IORING_OP_RECVMSG``, Linux 5.3):
    /// receives up to ``byte_count`` bytes and the sender's address. The completion's
    /// :attr:`~CompletionEvent.result` is the number of bytes received, its
    /// :attr:`~CompletionEvent.buffer` holds exactly those bytes (at most ``byte_count``: with
    /// :data:`socket.MSG_TRUNC` a datagram's full length can exceed what was kept), and its
    /// :attr:`~CompletionEvent.extra` is the sender's address in the :mod:`socket` module's
    /// form (as for :meth:`prep_accept`), or ``None`` when the kernel gives none (a connected
    /// stream socket).
    ///
    /// The ring owns the ``msghdr``, its ``iovec``, the destination buffer and a
    /// ``sockaddr_storage`` for the sender until the completion.
    ///
    /// :param fd: The socket, as a file descriptor or an object with ``fileno()``.
    /// :param byte_count: How many bytes to receive at most: ``0`` to ``2**31 - 1``.
    /// :param flags: ``MSG_*`` flags for ``recvmsg(2)``, such as :data:`socket.MSG_PEEK`. With
    ///     :data:`socket.MSG_TRUNC` a TCP socket discards the data it counts: the buffer then
    ///     holds zero bytes in its place.
    /// :param sqe_flags: Flags from :func:`make_sqe_flags`; ``skip_success`` is refused.
    /// :returns: The operation's ``user_data``.
    /// :raises ValueError: An argument is out of range.
    /// :raises NotImplementedError: The kernel lacks ``IORING_OP_RECVMSG`` (Linux 5.3).
    #[pyo3(
        signature = (fd, byte_count, flags=None, *, sqe_flags=None),
        text_signature = "($self, fd, byte_count, flags=0, *, sqe_flags=None)"
    )]
    fn prep_recvfrom(
        &self,
        fd: &Bound<'_, PyAny>,
        byte_count: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
        sqe_flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let fd = args::fd(fd, "fd")?;
        let byte_count = args::byte_count(byte_count, "byte_count")?;
        let msg_flags = msg_flags(flags)?;
        self.queue(sqe_flags::parse(sqe_flags)?, |ring| {
            let pool = ring.pool();
            Ok(net::recvfrom(
                fd,
                receive_buffer(pool, byte_count, msg_flags)?,
                msg_flags,
            ))
        })
    }
}

impl IoUring {
    /// `prep_recv` with `buffer_group`: the buffer comes from a provided buffer ring.
    #[allow(clippy::too_many_arguments)]
    fn queue_recv_select(
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
        let wanted = GroupArg::parse(buffer_group)?;
        // buffer_select is implied by buffer_group; asking for it as well is harmless.
        let flags = sqe_flags::parse(sqe_flags)? - Flags::BUFFER_SELECT;
        self.queue(flags, |ring| {
            let groups = ring.buffer_groups();
            let group = match wanted {
                GroupArg::Ring(group) if groups.holds(&group) => group,
                GroupArg::Ring(group) => {
                    return Err(bad_arg(format!(
                        "buffer_group: this BufferRing (group_id {}) is not registered on this \
                         ring: it was unregistered, or belongs to another ring",
                        group.id()
                    )))
                }
                GroupArg::Id(id) => groups.find(id).cloned().ok_or_else(|| {
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
            Ok(net::recv_select(
                fd,
                byte_count,
                msg_flags,
                Armed::new(group),
                multishot,
                bundle,
            ))
        })
    }
}

/// A `buffer_group` argument: a `BufferRing`, or a group id.
enum GroupArg {
    Ring(Arc<Group>),
    Id(u16),
}

impl GroupArg {
    fn parse(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(ring) = obj.cast::<BufferRing>() {
            return Ok(GroupArg::Ring(ring.get().group().clone()));
        }
        if obj.is_instance_of::<PyInt>() {
            return Ok(GroupArg::Id(
                int_in(obj, "buffer_group", 0, u16::MAX.into())? as u16,
            ));
        }
        Err(PyTypeError::new_err(format!(
            "buffer_group must be a BufferRing or its group_id (an int), not {}",
            args::type_name(obj)
        )))
    }
}

/// `listen()`'s backlog when none is given: what `socket.socket.listen()` picks,
/// `min(SOMAXCONN, 128)`.
const DEFAULT_BACKLOG: i32 = 128;

/// `MSG_*` flags for a send. `MSG_ZEROCOPY` is refused: with it (on a socket with
/// `SO_ZEROCOPY`) the kernel keeps reading the pages after the completion, until the data
/// has left, while the ring frees or hands the buffer back at the completion.
fn send_flags(value: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    let flags = msg_flags(value)?;
    if flags & libc::MSG_ZEROCOPY != 0 {
        return Err(bad_arg(
            "flags: MSG_ZEROCOPY is not supported: the kernel would keep reading the buffer \
             after the completion, when the ring has already released it"
                .to_owned(),
        ));
    }
    Ok(flags)
}

/// The buffer a receive fills. With `MSG_TRUNC` a stream socket discards the data instead of
/// writing it, yet the result still counts it, so the buffer is zeroed first: the completion's
/// `buffer` must never show memory the kernel did not write (stale data of an earlier
/// operation, or uninitialised heap).
fn receive_buffer(pool: &mut BufferPool, byte_count: u32, msg_flags: i32) -> PyResult<IoBuf> {
    let buffer = pool.take(byte_count as usize)?;
    Ok(if msg_flags & libc::MSG_TRUNC != 0 {
        buffer.zeroed()
    } else {
        buffer
    })
}

fn msg_flags(value: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    value.map_or(Ok(0), |v| {
        Ok(int_in(v, "flags", 0, u32::MAX.into())? as u32 as i32)
    })
}
