"""The event loop: asyncio's own loop machinery, waiting in and doing its I/O through a ring.

:class:`EventLoop` keeps asyncio's Unix loop (run pass, handles, timers, transports, servers,
signals, subprocesses) and replaces what sits under it: the selector is
:class:`~._selector.RingSelector` (so the loop waits in ``io_uring_enter``, which also submits
everything queued during the pass), and the ``sock_*`` coroutines are ring operations, whose
cancellation cancels the kernel's operation and keeps what completed anyway, as
:mod:`century_ring.aio` does.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import weakref
from asyncio import base_events
from typing import TYPE_CHECKING, Any

from century_ring._century_ring import make_io_ring
from century_ring.aio._asyncio_ring import AsyncioRing
from century_ring.aio._current import _share_as_current
from century_ring.asyncio._receiving import Receiver
from century_ring.asyncio._selector import RingSelector
from century_ring.asyncio._transport import RingSocketTransport

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["EventLoop"]

#: Submission queue entries: room for one pass of a busy server before it must submit early.
_ENTRIES = 1024

#: accept4() flags: asyncio's sockets are non-blocking and not inherited by child processes.
_ACCEPT_FLAGS = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


class _LoopRing(AsyncioRing):
    """The ring of :class:`EventLoop`, which waits in it: nothing to watch, nothing to
    schedule, submission happens when the loop is about to wait."""

    __slots__ = ("_selector",)

    def __init__(self, selector: RingSelector, loop: EventLoop) -> None:
        self._selector = selector
        super().__init__(selector._io_uring, loop)

    def _attach(self) -> None:
        pass

    def _detach(self) -> None:
        pass

    def _schedule_submit(self) -> None:
        pass

    def _reap(self) -> None:
        self._selector.reap()


def _check_socket(loop: EventLoop, sock: socket.socket) -> None:
    base_events._check_ssl_socket(sock)  # type: ignore[attr-defined]
    if loop.get_debug() and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


class _KeptResults:
    """What ``sock_*`` calls received although their task was cancelled, by socket.

    When the kernel completes a receive or an accept that the task's cancellation came too
    late to stop, the result is kept here and the cancellation raised; the next call on that
    socket returns it first. So a cancelled ``sock_recv`` loses no bytes and a cancelled
    ``sock_accept`` no connection, as if they had stayed in the kernel's queue.
    """

    def __init__(self, ring: AsyncioRing) -> None:
        self._ring = ring
        self._kept: weakref.WeakKeyDictionary[socket.socket, collections.deque[Any]] = (
            weakref.WeakKeyDictionary()
        )

    async def land_cancellation(self, sock: socket.socket, result: Any) -> None:
        """Keep ``result`` and raise the task's cancellation, if the operation that gave it
        completed after the task was cancelled."""
        if self._ring._cancel_pending():
            if result != b"":  # an end of stream stays in the socket for the next call
                self._kept.setdefault(sock, collections.deque()).append(result)
            await self._ring._checkpoint()

    def take(self, sock: socket.socket) -> Any:
        kept = self._kept.get(sock)
        if not kept:
            return None
        result = kept.popleft()
        if not kept:
            del self._kept[sock]
        return result

    def take_bytes(self, sock: socket.socket, most: int) -> bytes | None:
        data: bytes | None = self.take(sock)
        if data is not None and len(data) > most:
            self._kept.setdefault(sock, collections.deque()).appendleft(data[most:])
            data = data[:most]
        return data


class EventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on io_uring.

    A drop-in for the standard loop: ``asyncio.run(main(), loop_factory=new_event_loop)``
    (Python 3.12+), ``asyncio.Runner(loop_factory=new_event_loop)`` (3.11+),
    :func:`century_ring.asyncio.run`, or :class:`EventLoopPolicy`. On this loop,
    :func:`century_ring.aio.current_ring` is the loop's own ring, so awaited ring operations
    share its submissions.

    :raises OSError: The system refuses io_uring (see :func:`new_event_loop`, which falls back
        to the standard loop).
    """

    def __init__(self) -> None:
        try:
            io_uring = make_io_ring(entries=_ENTRIES)
        except BaseException:
            # asyncio's __del__ asks a loop whether it is closed: this one never opened.
            self._closed = True
            raise
        selector = RingSelector(io_uring)
        super().__init__(selector)
        self._ring_selector = selector
        self._ring = _LoopRing(selector, self)
        selector.dispatch = self._ring._dispatch
        self._receiver = Receiver(io_uring)
        self._kept = _KeptResults(self._ring)
        _share_as_current(self, self._ring)

    def _make_socket_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        server: asyncio.Server | None = None,
    ) -> RingSocketTransport:
        self._ensure_fd_no_transport(sock)  # type: ignore[attr-defined]
        return RingSocketTransport(
            self,
            sock,
            protocol,
            waiter,
            extra,
            server,
            ring=self._ring.ring,
            completions=self._ring_selector,
            receiver=self._receiver,
        )

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            super().close()
        finally:
            # Closing the ring cancels whatever is still in flight and waits for it.
            self._ring._closing = True
            self._ring.ring.close()

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        _check_socket(self, sock)
        kept = self._kept.take_bytes(sock, n)
        if kept is not None:
            return kept
        data = (await self._ring.recv(sock.fileno(), n)).buffer or b""
        await self._kept.land_cancellation(sock, data)
        return data

    async def sock_recv_into(self, sock: socket.socket, buf: Buffer) -> int:
        _check_socket(self, sock)
        view = memoryview(buf).cast("B")
        kept = self._kept.take_bytes(sock, view.nbytes)
        if kept is not None:
            view[: len(kept)] = kept
            return len(kept)
        count = (await self._ring.recv_into(sock.fileno(), view)).result
        await self._kept.land_cancellation(sock, bytes(view[:count]))
        return count

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        _check_socket(self, sock)
        kept = self._kept.take(sock)
        if kept is not None:
            data, address = kept
            return data[:bufsize], address
        event = await self._ring.recvfrom(sock.fileno(), bufsize)
        datagram = (event.buffer or b"", event.extra)
        await self._kept.land_cancellation(sock, datagram)
        return datagram

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: Buffer, nbytes: int = 0
    ) -> tuple[int, Any]:
        view = memoryview(buf).cast("B")
        size = nbytes or view.nbytes
        if size > view.nbytes:
            raise ValueError("nbytes is greater than the length of the buffer")
        data, address = await self.sock_recvfrom(sock, size)
        view[: len(data)] = data
        return len(data), address

    async def sock_sendall(self, sock: socket.socket, data: Buffer) -> None:
        _check_socket(self, sock)
        total = memoryview(data).nbytes
        sent = 0
        while sent < total:
            # The ring holds ``data`` (no copy) until each send completes.
            event = await self._ring.send(
                sock.fileno(),
                data,
                total - sent,
                sent,
                socket.MSG_NOSIGNAL,
                copy=False,
            )
            sent += event.result

    async def _resolved(self, sock: socket.socket, address: Any) -> Any:
        """An internet address with its host resolved for ``sock`` (without blocking the loop,
        as the standard loop's ``sock_connect`` does); any other address as it is."""
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return address
        resolved = await self._ensure_resolved(  # type: ignore[attr-defined]
            address, family=sock.family, type=sock.type, proto=sock.proto, loop=self
        )
        return resolved[0][4]

    async def sock_sendto(self, sock: socket.socket, data: Buffer, address: Any) -> int:
        _check_socket(self, sock)
        address = await self._resolved(sock, address)
        return (await self._ring.sendto(sock.fileno(), data, address)).result

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        _check_socket(self, sock)
        address = await self._resolved(sock, address)
        ring = self._ring
        if ring._cancel_pending():
            await ring._checkpoint()
        # Submitted at once, not with the pass: the standard loop has sent the SYN before the
        # coroutine first yields, and code that then blocks (a test's listener.accept()) relies
        # on it.
        user_data = ring.ring.prep_connect(sock.fileno(), address)
        ring.ring.submit()
        await ring._complete(user_data, "connect")

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        _check_socket(self, sock)
        kept = self._kept.take(sock)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        event = await self._ring.accept(sock.fileno(), _ACCEPT_FLAGS, peer_address=True)
        # No await between the completion and here: the socket owns the descriptor before a
        # cancellation can land.
        try:
            conn = socket.socket(sock.family, sock.type, sock.proto, fileno=event.result)
        except BaseException:
            os.close(event.result)
            raise
        conn.setblocking(False)
        accepted = (conn, event.extra)
        await self._kept.land_cancellation(sock, accepted)
        return accepted
