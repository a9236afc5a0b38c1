"""The event loop: asyncio's own loop machinery, waiting in and doing its I/O through a ring.

:class:`EventLoop` keeps asyncio's Unix loop (servers, streams, SSL, signals, subprocesses)
and replaces what runs on every pass: the run pass itself (ready queue, timers, handles,
``_run_once``) is compiled (``_RunQueue``); the selector is :class:`~._selector.RingSelector`
(so the loop waits in ``io_uring_enter``, which also submits everything queued during the
pass); stream transports are :class:`~._transport.RingSocketTransport`; and the ``sock_*``
coroutines are ring operations, whose cancellation cancels the kernel's operation and keeps
what completed anyway, as :mod:`century_ring.aio` does.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import sys
import weakref
from asyncio import base_events, events, format_helpers
from collections.abc import Callable
from contextvars import Context
from types import FrameType
from typing import TYPE_CHECKING, Any

from century_ring._century_ring import _Handle, _RunQueue, make_io_ring
from century_ring.aio._asyncio_ring import AsyncioRing
from century_ring.aio._current import _share_as_current
from century_ring.asyncio._accepting import ACCEPT_FLAGS, Acceptor
from century_ring.asyncio._receiving import Receiver
from century_ring.asyncio._selector import RingSelector
from century_ring.asyncio._transport import RingSocketTransport

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["EventLoop"]

#: Submission queue entries: room for one pass of a busy server before it must submit early.
_ENTRIES = 1024

logger = logging.getLogger("asyncio")


def _trace(handle: _Handle, frame: FrameType) -> None:
    """In debug mode, where a callback was scheduled (from ``frame`` out), as asyncio keeps it."""
    handle._source_traceback = format_helpers.extract_stack(frame)


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
        #: The compiled run pass, also standing in for asyncio's ``_ready`` deque, which
        #: asyncio's own code appends readers' and signal handlers' handles to.
        self._run_queue = _RunQueue(self, self._clock_resolution)  # type: ignore[attr-defined]
        self._ready = self._run_queue
        self._bind_run_queue()
        self._ring_selector = selector
        self._ring = _LoopRing(selector, self)
        selector.dispatch = self._ring._dispatch
        self._receiver = Receiver(io_uring)
        #: Listening sockets served by a multishot accept.
        self._acceptors: dict[socket.socket, Acceptor] = {}
        self._kept = _KeptResults(self._ring)
        _share_as_current(self, self._ring)

    # -- the run pass ------------------------------------------------------------------------

    def _bind_run_queue(self) -> None:
        """Point the methods called on every pass straight at the compiled run queue (instance
        attributes: no Python frame in between). In debug mode ``call_soon``, ``call_at`` and
        ``call_later`` stay the methods below, which check their arguments and the thread and
        record where each callback was scheduled, as asyncio's do."""
        queue = self._run_queue
        if self._debug:  # type: ignore[attr-defined]
            for name in ("call_soon", "call_at", "call_later"):
                self.__dict__.pop(name, None)
        else:
            self.call_soon = queue.call_soon  # type: ignore[method-assign]
            self.call_at = queue.call_at  # type: ignore[method-assign]
            self.call_later = queue.call_later  # type: ignore[method-assign]
        self.time = queue.time  # type: ignore[method-assign]
        # asyncio's run_forever calls self._run_once() (an attribute typeshed does not know).
        vars(self)["_run_once"] = queue.run_once

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        # asyncio's __init__ sets the mode before there is a queue.
        if "_run_queue" in self.__dict__:
            self._bind_run_queue()

    def _check_scheduling(self, callback: Callable[..., object], method: str) -> None:
        """What asyncio checks before scheduling a callback (the thread and the callback only
        in debug mode)."""
        self._check_closed()  # type: ignore[attr-defined]
        if self._debug:  # type: ignore[attr-defined]
            self._check_thread()  # type: ignore[attr-defined]
            self._check_callback(callback, method)  # type: ignore[attr-defined]

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> _Handle:
        self._check_scheduling(callback, "call_soon")
        handle = self._run_queue.call_soon(callback, *args, context=context)
        if self._debug:  # type: ignore[attr-defined]
            _trace(handle, sys._getframe(1))
        return handle

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> _Handle:
        if when is None:
            raise TypeError("when cannot be None")
        self._check_scheduling(callback, "call_at")
        timer = self._run_queue.call_at(when, callback, *args, context=context)
        if self._debug:  # type: ignore[attr-defined]
            _trace(timer, sys._getframe(1))
        return timer

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> _Handle:
        if delay is None:
            raise TypeError("delay must not be None")
        timer = self.call_at(self.time() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer

    def _call_soon(
        self, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> _Handle:
        # call_soon_threadsafe's: it checks, then drops this frame from the traceback.
        handle = self._run_queue.call_soon(callback, *args, context=context)
        if self._debug:  # type: ignore[attr-defined]
            _trace(handle, sys._getframe(1))
        return handle

    def _run_debug(self, handle: _Handle | events.Handle) -> None:
        """One handle of the pass in debug mode: slow callbacks are logged, as asyncio does."""
        if handle._cancelled:
            return
        try:
            self._current_handle: _Handle | events.Handle | None = handle
            started = self.time()
            handle._run()
            took = self.time() - started
            if took >= self.slow_callback_duration:
                logger.warning(
                    "Executing %s took %.3f seconds",
                    base_events._format_handle(handle),  # type: ignore[attr-defined]
                    took,
                )
        finally:
            self._current_handle = None

    def _callback_failed(self, handle: _Handle, exc: BaseException) -> None:
        """A callback raised: the exception handler hears of it, as asyncio's Handle says."""
        source = format_helpers._format_callback_source(handle._callback, handle._args or ())
        context: dict[str, Any] = {
            "message": f"Exception in callback {source}",
            "exception": exc,
            "handle": handle,
        }
        if handle._source_traceback:
            context["source_traceback"] = handle._source_traceback
        self.call_exception_handler(context)

    # -- servers and transports --------------------------------------------------------------

    def _start_serving(self, protocol_factory: Any, sock: socket.socket, *serving: Any) -> None:
        try:
            acceptor = Acceptor(
                self, self._ring.ring, self._ring_selector, sock, (protocol_factory, *serving)
            )
        except NotImplementedError:  # no multishot accept: readiness, as asyncio's loop does
            super()._start_serving(protocol_factory, sock, *serving)  # type: ignore[misc]
            return
        self._acceptors[sock] = acceptor

    def _stop_serving(self, sock: socket.socket) -> None:
        acceptor = self._acceptors.pop(sock, None)
        if acceptor is None:
            super()._stop_serving(sock)  # type: ignore[misc]
            return
        acceptor.stop()
        sock.close()

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
            self._run_queue.close()
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
        event = await self._ring.accept(sock.fileno(), ACCEPT_FLAGS, peer_address=True)
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
