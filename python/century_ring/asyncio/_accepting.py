"""How a server takes its connections: one multishot ``accept`` per listening socket.

asyncio's selector loops wait until a listening socket is readable, then call ``accept()``
until it would block. Here the listening socket has one multishot ``accept`` in the ring (Linux
5.19) for as long as it serves: each completion is a connection the kernel already accepted
(non-blocking and close-on-exec, as asyncio's are), which becomes a transport as asyncio's
``_accept_connection2`` makes it, TLS included.

A connection that completes after the server stopped serving is closed at once. When the
process runs out of descriptors (``EMFILE`` and the like) the error goes to the loop's exception
handler and the accept is queued again after asyncio's retry delay, as asyncio does.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from asyncio import base_events, constants, trsock
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from century_ring._century_ring import CompletionEvent, IoUring
    from century_ring.asyncio._selector import RingSelector

__all__ = ["Acceptor"]

logger = logging.getLogger("asyncio")

#: accept4() flags: asyncio's sockets are non-blocking and not inherited by child processes.
ACCEPT_FLAGS = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC

#: What the kernel reports when the process or the system is out of a resource.
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    """Serves one listening socket through a multishot accept on ``ring``.

    :param serving: What asyncio's ``_start_serving`` was given after the socket: the protocol
        factory, the SSL context, the server, the backlog and the TLS timeouts.
    :raises NotImplementedError: The kernel lacks multishot accept (Linux 5.19); the loop then
        serves by readiness, as asyncio's own loop does.
    """

    def __init__(
        self,
        loop: base_events.BaseEventLoop,
        ring: IoUring,
        completions: RingSelector,
        sock: socket.socket,
        serving: tuple[Any, ...],
    ) -> None:
        self._loop = loop
        self._ring = ring
        self._completions = completions
        self._sock = sock
        self._protocol_factory, self._sslcontext, self._server, _backlog, *self._timeouts = serving
        self._accept: int | None = None
        self._stopped = False
        self._start()

    def _start(self) -> None:
        if self._stopped or self._accept is not None:
            return
        self._accept = self._ring.prep_accept(self._sock.fileno(), ACCEPT_FLAGS, multishot=True)
        self._completions.on_completion(self._accept, self._accepted)

    def stop(self) -> None:
        """Stop serving. The accept is cancelled and the cancel submitted at once, so that the
        kernel lets go of the listening socket (and its port) by the time the caller closes it."""
        self._stopped = True
        if self._accept is not None:
            self._completions.ignore(self._ring.prep_cancel(self._accept))
            self._ring.submit()

    def _accepted(self, event: CompletionEvent) -> None:
        if not event.more:
            self._accept = None
        result = event.result
        if result >= 0:
            self._connection(result)
        elif self._stopped or result == -errno.ECANCELED:
            return
        elif -result in _OUT_OF_RESOURCES:
            exc = OSError(-result, os.strerror(-result))
            self._loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": trsock.TransportSocket(self._sock),
                }
            )
            if self._accept is None:
                self._loop.call_later(constants.ACCEPT_RETRY_DELAY, self._start)
            return
        elif result != -errno.ECONNABORTED:
            # Nowhere to send it but the exception handler; the accept is queued again.
            self._loop.call_exception_handler(
                {
                    "message": "accept failed on a listening socket",
                    "exception": OSError(-result, os.strerror(-result)),
                    "socket": trsock.TransportSocket(self._sock),
                }
            )
        if self._accept is None:
            self._start()

    def _connection(self, fd: int) -> None:
        if self._stopped:
            os.close(fd)
            return
        try:
            conn = socket.socket(self._sock.family, self._sock.type, self._sock.proto, fileno=fd)
        except BaseException:
            os.close(fd)
            raise
        conn.setblocking(False)
        try:
            peer = conn.getpeername()
        except OSError:
            peer = None  # reset before it got here: the transport sees the error
        if self._loop.get_debug():
            logger.debug("%r got a new connection from %r: %r", self._server, peer, conn)
        self._loop.create_task(self._serve(conn, peer))

    async def _serve(self, conn: socket.socket, peer: Any) -> None:
        """Make the connection's transport, as asyncio does for each accepted connection,
        unless the server stopped serving before this task ran."""
        if self._stopped:
            conn.close()
            return
        await self._loop._accept_connection2(  # type: ignore[attr-defined]
            self._protocol_factory,
            conn,
            {"peername": peer},
            self._sslcontext,
            self._server,
            *self._timeouts,
        )
