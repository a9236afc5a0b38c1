"""Stream socket transports whose data moves by completions, not readiness.

A connection's receive is one multishot ``recv`` on the loop's buffer ring: each arrival is a
completion carrying the bytes, handed straight to ``protocol.data_received`` (or copied into
``get_buffer()`` for a :class:`asyncio.BufferedProtocol`). A write becomes a ``send`` that owns
its bytes until its completion; while one is in flight, later writes queue behind it and go
out together when it completes, so a busy connection makes one send per loop pass.

What happens once per message is compiled: the transport's :class:`~century_ring._Stream`
takes the receive's and the sends' completions from the ring without events, calls
``data_received`` itself, sends what ``write`` is given, and calls back into this class only
for what it decides (flow control, closing, errors, data held while reading is paused).

A descriptor number is only ever closed after every operation queued on it has completed:
``connection_lost`` waits for the final completions of the receive (cancelled) and of the send
in flight, so no queued operation can reach a number the process has reused.
"""

from __future__ import annotations

import collections
import errno
import inspect
import logging
import os
import socket
import warnings
from asyncio import base_events, constants, futures, protocols, transports, trsock
from typing import TYPE_CHECKING, Any

from century_ring._century_ring import _Stream

if TYPE_CHECKING:
    from century_ring._century_ring import IoUring
    from century_ring.asyncio._receiving import Receiver
    from century_ring.asyncio._selector import RingSelector

__all__ = ["RingSocketTransport"]

logger = logging.getLogger("asyncio")

#: Held in the receive queue while reading is paused: the peer's end of stream.
_EOF = b""

#: Whether a server keeps its transports (Python 3.13, for ``Server.close_clients()``): its
#: ``_attach`` and ``_detach`` then take the transport.
_SERVER_KEEPS_TRANSPORTS = (
    len(inspect.signature(base_events.Server._attach).parameters) > 1  # type: ignore[attr-defined]
)


class RingSocketTransport(transports._FlowControlMixin, transports.Transport):
    """A TCP or Unix stream socket's transport on :class:`~century_ring.asyncio.EventLoop`:
    its receives are queued by ``receiver`` on ``ring``, and ``completions`` hands their
    completions (and those of its sends) back."""

    if TYPE_CHECKING:  # asyncio's own, which typeshed leaves out
        _extra: dict[str, Any]
        _high_water: int
        _protocol_paused: bool

        def _maybe_resume_protocol(self) -> None: ...

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    def __init__(
        self,
        loop: base_events.BaseEventLoop,
        sock: socket.socket,
        protocol: protocols.BaseProtocol,
        waiter: futures.Future[None] | None,
        extra: dict[str, Any] | None,
        server: base_events.Server | None,
        *,
        ring: IoUring,
        completions: RingSelector,
        receiver: Receiver,
    ) -> None:
        super().__init__(extra, loop)
        self._loop: base_events.BaseEventLoop = loop
        self._extra["socket"] = trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._sock: socket.socket | None = sock
        self._sock_fd = sock.fileno()
        self._closing = False
        self._ring = ring
        self._completions = completions
        self._receiver = receiver
        self._handlers = self._completions._handlers
        self._server = server
        if server is not None:
            # First: a server that stopped serving meanwhile refuses (asyncio asserts), and
            # this half-made transport must then go at once, closing the socket as it goes.
            if _SERVER_KEEPS_TRANSPORTS:
                server._attach(self)  # type: ignore[attr-defined]
            else:
                server._attach()  # type: ignore[attr-defined]
        self._stream = _Stream(ring, self._sock_fd, self, self._handlers)
        self._stream.high_water = self._high_water
        #: Straight to the compiled stream, without a Python call in between: this runs once
        #: per message written. What it does not take itself comes back to ``_write``.
        self.write = self._stream.write  # type: ignore[method-assign]
        self._lost_scheduled = False
        self._conn_lost = 0
        self._paused = False
        self._eof = False
        #: What arrived while reading was paused.
        self._held: collections.deque[bytes] = collections.deque()
        self._empty_waiter: futures.Future[None] | None = None
        self._protocol_connected = False
        self.set_protocol(protocol)
        loop._transports[self._sock_fd] = self  # type: ignore[attr-defined]
        base_events._set_nodelay(sock)  # type: ignore[attr-defined]
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_receiving)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else "closing" if self._closing else "open"
        return f"<{type(self).__name__} fd={self._sock_fd} {state}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()
            if self._server is not None and _SERVER_KEEPS_TRANSPORTS:
                self._detach_from(self._server)

    def _detach_from(self, server: base_events.Server) -> None:
        if _SERVER_KEEPS_TRANSPORTS:
            server._detach(self)  # type: ignore[attr-defined]
        else:
            server._detach()  # type: ignore[attr-defined]

    # -- the protocol ------------------------------------------------------------------------

    def set_protocol(self, protocol: protocols.BaseProtocol) -> None:
        self._buffered = isinstance(protocol, protocols.BufferedProtocol)
        self._protocol = protocol
        self._protocol_connected = True
        self._update_delivery()

    def _update_delivery(self) -> None:
        """Let the stream hand data straight to ``data_received`` while nothing stands in the
        way (paused, held data, closing, a buffered protocol)."""
        direct = not (self._buffered or self._paused or self._held or self._closing)
        # (A protocol without data_received meets its AttributeError when data comes, as on
        # asyncio's loop: through _received.)
        self._stream.deliver = getattr(self._protocol, "data_received", None) if direct else None

    def _update_sending(self) -> None:
        """Tell the stream whether it may send writes itself, and whether this transport must
        hear of each send's completion."""
        stream = self._stream
        waiting = self._eof or self._empty_waiter is not None
        stream.write_direct = not (waiting or self._conn_lost)
        stream.watch = waiting or self._closing or self._protocol_paused

    def _set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        super()._set_write_buffer_limits(high, low)  # type: ignore[misc]
        if hasattr(self, "_stream"):
            self._stream.high_water = self._high_water

    def _maybe_pause_protocol(self) -> None:
        super()._maybe_pause_protocol()  # type: ignore[misc]
        if self._protocol_paused:
            self._stream.watch = True

    def get_protocol(self) -> protocols.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    # -- receiving ---------------------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        self._update_delivery()
        self._stop_receiving()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._held:
            self._loop.call_soon(self._deliver_held)
        else:
            self._update_delivery()
            self._start_receiving()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _start_receiving(self) -> None:
        stream = self._stream
        if self._closing or self._paused or stream.receive is not None or self._sock is None:
            return
        stream.receive = receive = self._receiver.queue(self._sock_fd)
        self._handlers[receive] = stream

    def _stop_receiving(self) -> None:
        receive = self._stream.receive
        if receive is not None:
            self._completions.ignore(self._ring.prep_cancel(receive))

    def _received(self, result: int, data: bytes | None, more: bool) -> None:
        """A completion of the receive that the stream did not hand to ``data_received``
        itself: data while reading is paused or closing, for a buffered protocol, or the
        receive's end."""
        if result > 0:
            # (Data that arrives once closing goes nowhere.)
            if data and not self._closing:
                if self._paused or self._held:
                    self._held.append(data)
                    self._update_delivery()
                else:
                    self._deliver(data)
            if more:
                return
        elif result == 0:
            if self._closing:
                self._maybe_lost()
            elif self._paused or self._held:
                self._held.append(_EOF)
                self._update_delivery()
            else:
                self._read_eof()
            return
        elif result != -errno.ECANCELED and result != -errno.ENOBUFS:
            self._fatal_error(
                OSError(-result, os.strerror(-result)), "Fatal read error on socket transport"
            )
            return
        if self._stream.receive is None:
            if self._closing:
                self._maybe_lost()
            elif not self._paused and not self._held:
                self._start_receiving()

    def _deliver_held(self) -> None:
        held = self._held
        while held and not self._paused and not self._closing:
            data = held.popleft()
            if data is _EOF:
                self._read_eof()
                return
            self._deliver(data)
        if not held and not self._paused:
            self._update_delivery()
            self._start_receiving()

    def _deliver(self, data: bytes) -> None:
        try:
            if self._buffered:
                self._deliver_into_buffers(data)
            else:
                self._protocol.data_received(data)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if self._buffered:
                self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")
            else:
                self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _deliver_into_buffers(self, data: bytes) -> None:
        protocol: protocols.BufferedProtocol = self._protocol  # type: ignore[assignment]
        view = memoryview(data)
        while view:
            try:
                buffer = memoryview(protocol.get_buffer(len(view))).cast("B")
                if not buffer:
                    raise RuntimeError("get_buffer() returned an empty buffer")
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
                return
            count = min(len(buffer), len(view))
            buffer[:count] = view[:count]
            view = view[count:]
            protocol.buffer_updated(count)
            if view and (self._paused or self._closing):
                # Paused by buffer_updated(): the rest waits for resume_reading().
                if not self._closing:
                    self._held.appendleft(view.tobytes())
                return

    def _read_eof(self) -> None:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    # -- sending -----------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # Replaced in __init__ by the stream's own write, which takes non-empty bytes itself
        # and hands everything else to _write.
        self._stream.write(data)

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        if self._conn_lost:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        # The caller may change a mutable buffer as soon as write() returns; and the stream
        # holds only plain bytes (no subclass's finalizer runs inside it).
        self._stream.queue(data if type(data) is bytes else bytes(data))

    def _send_progress(self) -> None:
        """A send completed while this transport waits on the buffer (the protocol is
        paused, or the transport is closing, writing EOF or in sendfile)."""
        if self._protocol_paused:
            self._maybe_resume_protocol()
        if self._stream.send_in_flight is None:
            self._drained()
        self._update_sending()

    def _send_failed(self, result: int) -> None:
        if self._aborted or (result == -errno.ECANCELED and self._conn_lost):
            self._maybe_lost()
            return
        self._fatal_error(
            OSError(-result, os.strerror(-result)), "Fatal write error on socket transport"
        )

    def _drained(self) -> None:
        """Everything written has been taken by the kernel."""
        if self._empty_waiter is not None and not self._empty_waiter.done():
            self._empty_waiter.set_result(None)
        if self._closing:
            self._maybe_lost()
        elif self._eof and self._sock is not None:
            self._sock.shutdown(socket.SHUT_WR)

    def get_write_buffer_size(self) -> int:
        return self._stream.buffered

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        self._update_sending()
        if self._stream.send_in_flight is None and self._sock is not None:
            self._sock.shutdown(socket.SHUT_WR)

    def can_write_eof(self) -> bool:
        return True

    def _make_empty_waiter(self) -> futures.Future[None]:
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        self._update_sending()
        if self._stream.send_in_flight is None:
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None
        self._update_sending()

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._held.clear()
        self._update_delivery()
        self._stop_receiving()
        if self._stream.send_in_flight is None:
            self._conn_lost += 1
        self._update_sending()
        self._maybe_lost()

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost and self._lost_scheduled:
            return
        self._aborted = True
        send = self._stream.drop_sends()
        if send is not None:
            self._completions.ignore(self._ring.prep_cancel(send))
        self._closing = True
        self._held.clear()
        self._update_delivery()
        self._stop_receiving()
        self._conn_lost += 1
        self._update_sending()
        self._lost_exc = exc
        self._maybe_lost()

    _lost_exc: BaseException | None = None
    _aborted = False

    def _maybe_lost(self) -> None:
        """Schedule ``connection_lost`` once closing and no operation is left in flight."""
        stream = self._stream
        if self._lost_scheduled or stream.receive is not None or stream.send_in_flight is not None:
            return
        if not self._conn_lost:
            self._conn_lost += 1
            self._update_sending()
        self._lost_scheduled = True
        self._loop.call_soon(self._call_connection_lost, self._lost_exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)  # type: ignore[arg-type]
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._protocol = None  # type: ignore[assignment]
            server = self._server
            if server is not None:
                self._detach_from(server)
                self._server = None
