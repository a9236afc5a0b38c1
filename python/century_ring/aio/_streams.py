"""TCP and Unix sockets as anyio byte streams, with every byte moved by the ring.

:func:`connect_tcp`, :func:`create_tcp_listener`, :func:`connect_unix` and
:func:`create_unix_listener` mirror the anyio functions of the same names and return objects
implementing anyio's :class:`~anyio.abc.SocketStream`, :class:`~anyio.abc.UNIXSocketStream` and
:class:`~anyio.abc.SocketListener`, so anyio's helpers (TLS, buffered and text streams,
``serve``) work on them unchanged. Receives, sends, accepts, connects and shutdowns are ring
operations of the running loop's ring (:func:`~century_ring.aio.current_ring`).

Each stream or listener keeps a :class:`socket.socket` for its descriptor (non-blocking, as
anyio's are): that object owns the descriptor and is what closes it, once, in ``aclose``.

Cancellation: when a ring operation completes although its task was cancelled, the core returns
its result and lets the cancellation land at the task's next checkpoint. Here that checkpoint is
taken at once, inside the call, with the result kept where nothing is lost: received bytes and
accepted connections wait in the stream or listener for the next call.
Leaving it to the caller is not safe on asyncio: a caller that leaves its cancel scope without
another checkpoint (``with move_on_after(t): data = await s.receive()``) would carry the
cancellation out of the scope.
"""

from __future__ import annotations

import array
import errno
import os
import select
import socket
import stat
import sys
from collections.abc import Collection
from io import IOBase
from ipaddress import IPv6Address, ip_address
from typing import TYPE_CHECKING, Any, Literal, overload

import anyio
import anyio.abc
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from century_ring.aio._current import current_ring
from century_ring.aio._errors import RingClosedError

if TYPE_CHECKING:
    import ssl

    from anyio.abc import IPAddressType

    from century_ring.aio._ring import AsyncRing

__all__ = [
    "RingSocketListener",
    "RingSocketStream",
    "RingUNIXSocketListener",
    "RingUNIXSocketStream",
    "connect_tcp",
    "connect_unix",
    "create_tcp_listener",
    "create_unix_listener",
]

#: What anyio caps a listen backlog at.
_MAX_BACKLOG = 65536


def _adopt(fd: int) -> socket.socket:
    """Wrap a descriptor the ring just made; the socket object owns it from here on.

    Called with no checkpoint between the completion that gave ``fd`` and this call, so that
    a cancellation landing at the next checkpoint cannot leave the descriptor unowned.
    """
    try:
        sock = socket.socket(fileno=fd)
    except BaseException:
        os.close(fd)
        raise
    # The descriptor is already O_NONBLOCK; this makes the Python object say so too.
    sock.setblocking(False)
    return sock


class _RingSocket:
    """What streams and listeners share: the socket, its ring, and closing both once."""

    def __init__(self, sock: socket.socket, ring: AsyncRing) -> None:
        self._socket = sock
        self._ring = ring
        self._closed = False
        #: Raises the cancellation of a task whose operation completed though cancelled.
        self._land_cancellation = ring._checkpoint_if_cancelled
        #: Ring operations of ours on this descriptor that have not completed.
        self._in_flight = 0

    @property
    def _raw_socket(self) -> socket.socket:
        return self._socket

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    def _error(self, exc: BaseException) -> BaseException:
        """The anyio exception a failed ring operation on this socket stands for."""
        if self._closed:
            # aclose() cancelled the operation, or closed the descriptor under it.
            return anyio.ClosedResourceError()
        if isinstance(exc, (OSError, RingClosedError)):
            return anyio.BrokenResourceError()
        return exc

    def _close_now(self) -> None:
        """Close without waiting; only when nothing of ours is in flight on the socket."""
        self._closed = True
        self._socket.close()

    async def aclose(self) -> None:
        """Close the socket; operations other tasks are waiting on raise
        :exc:`anyio.ClosedResourceError`. Closing twice does nothing more."""
        if not self._closed:
            self._closed = True
            if self._in_flight:
                # close(2) does not cancel what is queued on the descriptor, so cancel it
                # first, by descriptor, while the number is still ours.
                with anyio.CancelScope(shield=True):
                    try:
                        await self._ring.cancel(fd=self._socket.fileno(), all=True)
                    except (OSError, RingClosedError):
                        pass  # nothing left to cancel, or the ring is gone with its operations
            self._socket.close()
        await anyio.lowlevel.checkpoint()


class RingSocketStream(_RingSocket, anyio.abc.SocketStream):
    """A connected stream socket whose receives and sends are operations of a ring.

    Made by :func:`connect_tcp` and :meth:`RingSocketListener.accept`, or from a connected
    socket with :meth:`from_socket`. It implements :class:`anyio.abc.SocketStream`, extra
    attributes included (:class:`anyio.abc.SocketAttribute`).

    Cancellation: a cancelled :meth:`receive` raises the cancellation and loses no data: bytes
    the kernel had already received are kept and returned by the next :meth:`receive`. A
    cancelled :meth:`send` may have sent a prefix of the data (or all of it), which is never
    sent again; as with anyio, the stream is then in an undefined state for the protocol on
    top, and should be closed.
    """

    def __init__(self, sock: socket.socket, ring: AsyncRing | None = None) -> None:
        """Wrap ``sock``, which the stream owns from then on (prefer :meth:`from_socket`).

        :param sock: A connected, non-blocking stream socket.
        :param ring: The ring to use; by default the running loop's.
        """
        super().__init__(sock, current_ring() if ring is None else ring)
        self._fd = sock.fileno()
        #: Bytes received for a receive that was cancelled: the next receive's.
        self._kept = b""
        self._receive_guard = anyio.ResourceGuard("reading from")
        self._send_guard = anyio.ResourceGuard("writing to")

    @classmethod
    async def from_socket(cls, sock_or_fd: socket.socket | int) -> RingSocketStream:
        """Wrap a connected stream socket, or its descriptor, taking ownership of it.

        :param sock_or_fd: A :class:`socket.socket` or a file descriptor.
        :raises ValueError: It is not a connected stream socket.
        """
        return cls(_validated(sock_or_fd, socket.AF_UNSPEC))

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive up to ``max_bytes`` bytes, waiting until at least one arrives.

        :raises ValueError: ``max_bytes`` is less than 1.
        :raises anyio.EndOfStream: The peer shut down its sending side.
        :raises anyio.ClosedResourceError: The stream was closed (here).
        :raises anyio.BrokenResourceError: The connection failed (reset by the peer, ...).
        :raises anyio.BusyResourceError: Another task is receiving from this stream.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        with self._receive_guard:
            self._check_open()
            if self._kept:
                return await self._take_kept(max_bytes)
            self._in_flight += 1
            try:
                event = await self._ring.recv(self._fd, max_bytes)
            except (OSError, RingClosedError) as exc:
                raise self._error(exc) from exc
            finally:
                self._in_flight -= 1
            data = event.buffer
            assert data is not None
            try:
                await self._land_cancellation()
            except BaseException:
                self._kept = data
                raise
            if not data:
                raise anyio.EndOfStream  # and again next time: the kernel keeps saying so
            return data

    async def _take_kept(self, max_bytes: int) -> bytes:
        await anyio.lowlevel.checkpoint()
        self._check_open()
        data = self._kept
        self._kept = data[max_bytes:]
        return data[:max_bytes]

    async def send(self, item: bytes) -> None:
        """Send all of ``item``, as many ring sends as the socket's buffer needs.

        :raises anyio.ClosedResourceError: The stream was closed (here).
        :raises anyio.BrokenResourceError: The connection failed (reset, peer gone, ...).
        :raises anyio.BusyResourceError: Another task is sending on this stream.
        """
        with self._send_guard:
            self._check_open()
            view = memoryview(item).cast("B")
            # bytes cannot change under the kernel, so the ring may send them in place.
            in_place = isinstance(item, bytes)
            sent = 0
            total = len(view)
            if not total:
                await anyio.lowlevel.checkpoint()
                return
            while True:
                self._in_flight += 1
                try:
                    event = await self._ring.send(
                        self._fd,
                        view,
                        total - sent,
                        sent,
                        socket.MSG_NOSIGNAL,
                        copy=not in_place,
                    )
                except (OSError, RingClosedError) as exc:
                    raise self._error(exc) from exc
                finally:
                    self._in_flight -= 1
                # Counted before anything can yield: a cancelled send never repeats bytes.
                sent += event.result
                if sent >= total:
                    await self._land_cancellation()
                    return

    async def send_eof(self) -> None:
        """Shut down the sending side; the peer's receives then end with
        :exc:`anyio.EndOfStream` while this side can still receive.

        :raises anyio.ClosedResourceError: The stream was closed (here).
        :raises anyio.BrokenResourceError: The connection is gone.
        """
        self._check_open()
        self._in_flight += 1
        try:
            await self._ring.shutdown(self._fd, socket.SHUT_WR)
        except (OSError, RingClosedError) as exc:
            raise self._error(exc) from exc
        finally:
            self._in_flight -= 1
        await self._land_cancellation()


class RingUNIXSocketStream(RingSocketStream, anyio.abc.UNIXSocketStream):
    """A connected Unix stream socket (:class:`anyio.abc.UNIXSocketStream`).

    Bytes move through the ring as for :class:`RingSocketStream`. Passing descriptors
    (:meth:`send_fds`, :meth:`receive_fds`) needs ``sendmsg``/``recvmsg``, which the ring does
    not offer: those wait for readiness with a ring poll, then make the call directly.
    """

    @classmethod
    async def from_socket(cls, sock_or_fd: socket.socket | int) -> RingUNIXSocketStream:
        """Wrap a connected Unix stream socket, or its descriptor, taking ownership of it.

        :param sock_or_fd: A :class:`socket.socket` or a file descriptor.
        :raises ValueError: It is not a connected ``AF_UNIX`` stream socket.
        """
        return cls(_validated(sock_or_fd, socket.AF_UNIX))

    async def _wait_ready(self, events: int) -> None:
        self._in_flight += 1
        try:
            await self._ring.poll_add(self._fd, events)
        except (OSError, RingClosedError) as exc:
            raise self._error(exc) from exc
        finally:
            self._in_flight -= 1
        await self._land_cancellation()  # before the call that follows moves data
        self._check_open()

    async def send_fds(self, message: bytes, fds: Collection[int | IOBase]) -> None:
        """Send ``message`` with descriptors attached (``SCM_RIGHTS``).

        :param message: At least one byte.
        :param fds: Descriptors, or files or sockets with ``fileno()``.
        :raises ValueError: ``message`` or ``fds`` is empty.
        :raises anyio.ClosedResourceError: The stream was closed (here).
        :raises anyio.BrokenResourceError: The connection failed.
        """
        if not message:
            raise ValueError("message must not be empty")
        if not fds:
            raise ValueError("fds must not be empty")
        numbers = array.array("i", (fd if isinstance(fd, int) else fd.fileno() for fd in fds))
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, numbers)]
        await anyio.lowlevel.checkpoint()
        with self._send_guard:
            self._check_open()
            view = memoryview(message).cast("B")
            while view:
                try:
                    count = self._socket.sendmsg([view], ancillary, socket.MSG_NOSIGNAL)
                except BlockingIOError:
                    await self._wait_ready(select.POLLOUT)
                    continue
                except OSError as exc:
                    raise self._error(exc) from exc
                view = view[count:]
                ancillary = []  # the descriptors went with the first bytes

    async def receive_fds(self, msglen: int, maxfds: int) -> tuple[bytes, list[int]]:
        """Receive up to ``msglen`` bytes and up to ``maxfds`` descriptors sent with them.

        The descriptors are new (close-on-exec) descriptors owned by the caller.

        :raises ValueError: ``msglen`` is negative or ``maxfds`` less than 1.
        :raises anyio.EndOfStream: The peer shut down its sending side.
        :raises anyio.ClosedResourceError: The stream was closed (here).
        :raises anyio.BrokenResourceError: The connection failed.
        :raises RuntimeError: Ancillary data other than descriptors arrived.
        """
        if not isinstance(msglen, int) or msglen < 0:
            raise ValueError("msglen must be a non-negative integer")
        if not isinstance(maxfds, int) or maxfds < 1:
            raise ValueError("maxfds must be a positive integer")
        numbers = array.array("i")
        await anyio.lowlevel.checkpoint()
        with self._receive_guard:
            self._check_open()
            if self._kept and msglen:
                # Bytes kept from a cancelled receive come first, without descriptors.
                return await self._take_kept(msglen), []
            while True:
                try:
                    message, ancillary, _flags, _address = self._socket.recvmsg(
                        msglen,
                        socket.CMSG_SPACE(maxfds * numbers.itemsize),
                        socket.MSG_CMSG_CLOEXEC,
                    )
                except BlockingIOError:
                    await self._wait_ready(select.POLLIN)
                    continue
                except OSError as exc:
                    raise self._error(exc) from exc
                break
        for level, kind, data in ancillary:
            if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
                raise RuntimeError(
                    f"unexpected ancillary data (level {level}, type {kind}) with {message!r}"
                )
            numbers.frombytes(data[: len(data) - len(data) % numbers.itemsize])
        if not message and not numbers:
            raise anyio.EndOfStream
        return message, list(numbers)


class RingSocketListener(_RingSocket, anyio.abc.SocketListener):
    """A listening TCP socket whose accepts are operations of a ring
    (:class:`anyio.abc.SocketListener`, with ``serve`` from it).

    A cancelled :meth:`accept` leaks nothing: a connection the kernel accepted before the
    cancel is kept for the next :meth:`accept` (or closed with the listener), and one it had
    not accepted stays in the listen queue.
    """

    def __init__(self, sock: socket.socket, ring: AsyncRing | None = None) -> None:
        """Wrap ``sock``, which the listener owns from then on (prefer :meth:`from_socket`).

        :param sock: A bound, listening, non-blocking stream socket.
        :param ring: The ring to use; by default the running loop's.
        """
        super().__init__(sock, current_ring() if ring is None else ring)
        self._fd = sock.fileno()
        #: A connection accepted for an accept that was cancelled: the next accept's.
        self._kept: socket.socket | None = None
        self._accept_guard = anyio.ResourceGuard("accepting connections from")

    @classmethod
    async def from_socket(cls, sock_or_fd: socket.socket | int) -> RingSocketListener:
        """Wrap a listening stream socket, or its descriptor, taking ownership of it.

        :param sock_or_fd: A :class:`socket.socket` or a file descriptor.
        :raises ValueError: It is not a listening stream socket.
        """
        return cls(_validated(sock_or_fd, socket.AF_UNSPEC, listening=True))

    async def _accept_socket(self) -> socket.socket:
        with self._accept_guard:
            self._check_open()
            if self._kept is not None:
                await anyio.lowlevel.checkpoint()
                self._check_open()
                sock, self._kept = self._kept, None
                return sock
            self._in_flight += 1
            try:
                event = await self._ring.accept(self._fd, socket.SOCK_NONBLOCK)
            except (OSError, RingClosedError) as exc:
                raise self._error(exc) from exc
            finally:
                self._in_flight -= 1
            sock = _adopt(event.result)
            try:
                await self._land_cancellation()
            except BaseException:
                self._kept = sock
                raise
            return sock

    async def aclose(self) -> None:
        """Close the listening socket (and a connection kept from a cancelled accept); a
        pending :meth:`accept` raises :exc:`anyio.ClosedResourceError`."""
        if self._kept is not None:
            self._kept.close()
            self._kept = None
        await super().aclose()

    async def accept(self) -> RingSocketStream:
        """Wait for a connection and return it as a stream.

        :raises anyio.ClosedResourceError: The listener was closed (here).
        :raises anyio.BrokenResourceError: Accepting failed.
        :raises anyio.BusyResourceError: Another task is accepting on this listener.
        """
        sock = await self._accept_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return RingSocketStream(sock, self._ring)


class RingUNIXSocketListener(RingSocketListener):
    """A listening Unix stream socket; :meth:`accept` gives :class:`RingUNIXSocketStream`."""

    async def accept(self) -> RingUNIXSocketStream:
        """Wait for a connection and return it as a stream.

        :raises anyio.ClosedResourceError: The listener was closed (here).
        :raises anyio.BrokenResourceError: Accepting failed.
        :raises anyio.BusyResourceError: Another task is accepting on this listener.
        """
        return RingUNIXSocketStream(await self._accept_socket(), self._ring)


def _validated(
    sock_or_fd: socket.socket | int, family: int, *, listening: bool = False
) -> socket.socket:
    """Check that an adopted socket is what the wrapper needs, and make it non-blocking."""
    if isinstance(sock_or_fd, int):
        try:
            sock = socket.socket(fileno=sock_or_fd)
        except OSError as exc:
            if exc.errno == errno.ENOTSOCK:
                raise ValueError("the file descriptor does not refer to a socket") from exc
            raise
    elif isinstance(sock_or_fd, socket.socket):
        sock = sock_or_fd
    else:
        raise TypeError(f"expected an int or a socket, got {type(sock_or_fd).__qualname__}")
    try:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"expected a SOCK_STREAM socket, got {sock.type.name}")
        if family != socket.AF_UNSPEC and sock.family != family:
            raise ValueError(f"expected an {socket.AddressFamily(family).name} socket")
        if listening:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                raise ValueError("the socket must be listening")
        else:
            try:
                sock.getpeername()
            except OSError as exc:
                raise ValueError("the socket must be connected") from exc
    except BaseException:
        if isinstance(sock_or_fd, int):
            sock.detach()  # the caller still owns a descriptor we refuse
        raise
    sock.setblocking(False)
    return sock


async def _connect(
    family: int, address: Any, local_address: Any | None, kind: type[RingSocketStream]
) -> RingSocketStream:
    """Make a socket with the ring, connect it with the ring, and wrap it in ``kind``."""
    ring = current_ring()
    sock = _adopt((await ring.create_socket(family, socket.SOCK_STREAM, 0, True)).result)
    try:
        if local_address is not None:
            sock.bind(local_address)
        await ring.connect(sock.fileno(), address)
        await ring._checkpoint_if_cancelled()
    except BaseException:
        # Cancelled or refused: the socket was never handed out, so it is closed here.
        sock.close()
        raise
    if family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return kind(sock, ring)


@overload
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = ...,
    local_port: int | None = ...,
    tls: Literal[False] = ...,
    ssl_context: None = ...,
    tls_standard_compatible: bool = ...,
    tls_hostname: None = ...,
    happy_eyeballs_delay: float = ...,
) -> RingSocketStream: ...
@overload
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = ...,
    local_port: int | None = ...,
    tls: bool = ...,
    ssl_context: ssl.SSLContext | None = ...,
    tls_standard_compatible: bool = ...,
    tls_hostname: str | None = ...,
    happy_eyeballs_delay: float = ...,
) -> RingSocketStream | TLSStream: ...
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = None,
    local_port: int | None = None,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    tls_standard_compatible: bool = True,
    tls_hostname: str | None = None,
    happy_eyeballs_delay: float = 0.25,
) -> RingSocketStream | TLSStream:
    """Connect to a TCP server, as :func:`anyio.connect_tcp` does, through the ring.

    A host name is resolved with :func:`anyio.getaddrinfo`; its addresses are tried with
    Happy Eyeballs (RFC 6555): an IPv6 address first if there is one, then an IPv4 one, each
    further attempt started ``happy_eyeballs_delay`` seconds after the previous unless it
    failed sooner. The first connection made wins; the others are cancelled or closed.

    :param remote_host: An IP address or a host name.
    :param remote_port: The server's port.
    :param local_host: The interface address (or name) to bind to before connecting.
    :param local_port: The local port to bind to (with ``local_host``).
    :param tls: Do a TLS handshake and return an :class:`anyio.streams.tls.TLSStream`; also
        implied by ``ssl_context`` or ``tls_hostname``.
    :param ssl_context: The TLS context (by default :func:`ssl.create_default_context`).
    :param tls_standard_compatible: Do the TLS closing handshake (see
        :meth:`anyio.streams.tls.TLSStream.wrap`).
    :param tls_hostname: The name to check the server's certificate against (by default
        ``remote_host``).
    :param happy_eyeballs_delay: Seconds before starting the next attempt.
    :returns: A :class:`RingSocketStream`, or a :class:`~anyio.streams.tls.TLSStream` over one.
    :raises anyio.ConnectionFailed: No attempt connected (the causes are chained).
    :raises OSError: Name resolution failed.
    """
    local_address: Any | None = None
    family: int = socket.AF_UNSPEC
    if local_host:
        resolved = await anyio.getaddrinfo(str(local_host), local_port)
        family, *_, local_address = resolved[0]
    targets = await _targets(remote_host, remote_port, family)

    winner: RingSocketStream | None = None
    errors: list[OSError] = []

    async def attempt(family: int, address: Any, done: anyio.Event) -> None:
        nonlocal winner
        try:
            stream = await _connect(family, address, local_address, RingSocketStream)
        except OSError as exc:
            errors.append(exc)
        else:
            if winner is None:
                winner = stream
                tasks.cancel_scope.cancel()
            else:
                stream._close_now()  # a later winner: nothing is in flight on it
        finally:
            done.set()

    try:
        async with anyio.create_task_group() as tasks:
            for target_family, address in targets:
                done = anyio.Event()
                tasks.start_soon(attempt, target_family, address, done)
                with anyio.move_on_after(happy_eyeballs_delay):
                    await done.wait()
    except BaseException:
        if winner is not None:
            winner._close_now()
        raise
    if winner is None:
        cause: BaseException = errors[0]
        # A builtin from 3.11 on (ruff does not read the guard); 3.10 keeps the first error.
        if sys.version_info >= (3, 11) and len(errors) > 1:
            cause = ExceptionGroup("multiple connection attempts failed", errors)  # noqa: F821
        raise anyio.ConnectionFailed("All connection attempts failed") from cause
    stream = winner
    if tls or tls_hostname or ssl_context:
        try:
            return await TLSStream.wrap(
                stream,
                server_side=False,
                hostname=tls_hostname or str(remote_host),
                ssl_context=ssl_context,
                standard_compatible=tls_standard_compatible,
            )
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
    return stream


async def _targets(host: IPAddressType, port: int, family: int) -> list[tuple[int, Any]]:
    """The addresses to try, in Happy Eyeballs order: IPv6 first, then IPv4, then the rest."""
    try:
        literal = ip_address(host)
    except ValueError:
        pass
    else:
        if isinstance(literal, IPv6Address):
            return [(socket.AF_INET6, (literal.compressed, port, 0, 0))]
        return [(socket.AF_INET, (literal.compressed, port))]
    resolved = await anyio.getaddrinfo(str(host), port, family=family, type=socket.SOCK_STREAM)
    targets: list[tuple[int, Any]] = []
    have_v6 = have_v4 = False
    for target_family, *_, address in resolved:
        if target_family == socket.AF_INET6 and not have_v6:
            have_v6 = True
            targets.insert(0, (target_family, address))
        elif target_family == socket.AF_INET and have_v6 and not have_v4:
            have_v4 = True
            targets.insert(1, (target_family, address))
        else:
            targets.append((target_family, address))
    return targets


async def connect_unix(path: str | bytes | os.PathLike[Any]) -> RingUNIXSocketStream:
    """Connect to a Unix stream socket, as :func:`anyio.connect_unix` does, through the ring.

    :param path: The socket's path (``bytes`` starting with ``b"\\0"`` for the abstract
        namespace).
    :returns: The connected stream.
    :raises OSError: The connection failed (``FileNotFoundError``, ``ConnectionRefusedError``).
    """
    stream = await _connect(socket.AF_UNIX, os.fspath(path), None, RingUNIXSocketStream)
    assert isinstance(stream, RingUNIXSocketStream)
    return stream


async def create_tcp_listener(
    *,
    local_host: IPAddressType | None = None,
    local_port: int = 0,
    family: Literal[
        socket.AddressFamily.AF_UNSPEC, socket.AddressFamily.AF_INET, socket.AddressFamily.AF_INET6
    ] = socket.AddressFamily.AF_UNSPEC,
    backlog: int = 65536,
    reuse_port: bool = False,
) -> MultiListener[anyio.abc.SocketStream]:
    """Listen for TCP connections, as :func:`anyio.create_tcp_listener` does.

    Binds every address ``local_host`` resolves to (all interfaces when it is omitted: one
    dual-stack IPv6 socket where the system has one), on one port; the result's ``accept``
    comes from :class:`RingSocketListener`, whose accepts are ring operations.

    :param local_host: The interface address or name; omitted for all interfaces
        (``"0.0.0.0"`` or ``"::"`` for all of one family).
    :param local_port: The port; ``0`` for one the system picks (the same on every address).
    :param family: The address family, when ``local_host`` is omitted.
    :param backlog: The listen queue's length (at most 65536).
    :param reuse_port: Set ``SO_REUSEPORT`` so that several sockets can bind the same port.
    :returns: A :class:`anyio.streams.stapled.MultiListener` of :class:`RingSocketListener`.
    :raises OSError: Resolving, creating or binding a socket failed.
    """
    backlog = min(backlog, _MAX_BACKLOG)
    host = None if local_host is None else str(local_host)

    def listening_socket(family: int, address: Any, *, v6only: bool = True) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and "%" in address[0]:
                # getaddrinfo may give a scoped address as "addr%scope".
                bare, scope = address[0].split("%", 1)
                address = (bare, address[1], 0, int(scope))
            # Binding a TCP address and listening never block: no ring round trip needed.
            sock.bind(address)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    resolved = await anyio.getaddrinfo(
        host, local_port, family=family, type=0, flags=socket.AI_PASSIVE | socket.AI_ADDRCONFIG
    )
    addresses = sorted({entry for entry in resolved if entry[1] == socket.SOCK_STREAM})
    ring = current_ring()
    if (
        host is None
        and family == socket.AF_UNSPEC
        and socket.has_dualstack_ipv6()
        and any(entry[0] == socket.AF_INET6 for entry in resolved)
    ):
        sock = listening_socket(socket.AF_INET6, ("::", local_port), v6only=False)
        return MultiListener([RingSocketListener(sock, ring)])

    failures: list[OSError] = []
    for _ in range(10):  # a port picked on one address may be taken on another: retry
        listeners: list[RingSocketListener] = []
        port = local_port
        try:
            for entry_family, *_, address in addresses:
                sock = listening_socket(entry_family, (address[0], port, *address[2:]))
                listeners.append(RingSocketListener(sock, ring))
                if local_port == 0:
                    port = sock.getsockname()[1]
        except BaseException as exc:
            for listener in listeners:
                listener._close_now()
            if (
                isinstance(exc, OSError)
                and exc.errno == errno.EADDRINUSE
                and local_port == 0
                and port
            ):
                failures.append(exc)
                addresses.append(addresses.pop(0))
                continue
            raise
        return MultiListener(listeners)
    raise OSError(f"could not bind {len(addresses)} addresses to one port") from failures[-1]


async def create_unix_listener(
    path: str | bytes | os.PathLike[Any], *, mode: int | None = None, backlog: int = 65536
) -> RingUNIXSocketListener:
    """Listen on a Unix stream socket, as :func:`anyio.create_unix_listener` does.

    A socket already at ``path`` is removed first (anything else there makes the bind fail).
    The bind, which resolves the path and may wait on the file system, is a ring operation.
    The socket file is left in place when the listener closes, as anyio leaves it.

    :param path: The socket's path (``bytes`` starting with ``b"\\0"`` for the abstract
        namespace).
    :param mode: Permissions to give the socket file.
    :param backlog: The listen queue's length (at most 65536).
    :returns: The listener.
    :raises OSError: Creating or binding the socket failed.
    """
    backlog = min(backlog, _MAX_BACKLOG)
    name = os.fspath(path)
    abstract = name[:1] in ("\0", b"\0")
    if not abstract:
        try:
            if stat.S_ISSOCK(os.stat(name).st_mode):
                os.unlink(name)
        except FileNotFoundError:
            pass
    ring = current_ring()
    sock = _adopt((await ring.create_socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, True)).result)
    try:
        await ring.bind(sock.fileno(), name)
        if mode is not None and not abstract:
            os.chmod(name, mode)
        sock.listen(backlog)
        await ring._checkpoint_if_cancelled()
    except BaseException:
        sock.close()
        raise
    return RingUNIXSocketListener(sock, ring)
