//! The network operations of `IoUring`: socket, connect, send, recv.

use pyo3::prelude::*;

use super::{byte_range, copy_of_range};
use crate::address;
use crate::args::{self, int_in};
use crate::ops::net;
use crate::ring::IoUring;

#[pymethods]
impl IoUring {
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
        let address = address::ipv4(address, port)?;
        self.queue(sqe_flags, |_| Ok(net::connect(fd, address)))
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
        let address = address::ipv6(address, port)?;
        self.queue(sqe_flags, |_| Ok(net::connect(fd, address)))
    }

    /// Queues a ``send(2)`` on a connected socket (``IORING_OP_SEND``, Linux 5.6). The completion's
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

    /// Queues a ``recv(2)`` of up to ``byte_count`` bytes from a socket (``IORING_OP_RECV``,
    /// Linux 5.6). The completion's
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
}

fn msg_flags(value: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    value.map_or(Ok(0), |v| {
        Ok(int_in(v, "flags", 0, u32::MAX.into())? as u32 as i32)
    })
}
