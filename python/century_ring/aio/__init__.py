"""io_uring for async Python: every operation awaitable on asyncio, uvloop and trio.

Each running event loop (or trio run) gets one ring, :func:`current_ring`; its operations are
submitted together once per pass of the loop and their completions go straight to the tasks
awaiting them. Nothing here starts a thread. Above the operations: files (:func:`open_file`),
paths (:class:`Path`) and anyio socket streams and listeners (:func:`connect_tcp`,
:func:`create_tcp_listener`, and their Unix twins) whose I/O is the ring's. Needs ``anyio``
(``pip install century-ring[aio]``).
"""

from __future__ import annotations

from century_ring.aio._current import current_ring, open_ring
from century_ring.aio._errors import RingClosedError
from century_ring.aio._file import AsyncFile, open_file
from century_ring.aio._multishot import MultishotOperation
from century_ring.aio._path import Path
from century_ring.aio._ring import AsyncRing
from century_ring.aio._streams import (
    RingSocketListener,
    RingSocketStream,
    RingUNIXSocketListener,
    RingUNIXSocketStream,
    connect_tcp,
    connect_unix,
    create_tcp_listener,
    create_unix_listener,
)

__all__ = [
    "AsyncFile",
    "AsyncRing",
    "MultishotOperation",
    "Path",
    "RingClosedError",
    "RingSocketListener",
    "RingSocketStream",
    "RingUNIXSocketListener",
    "RingUNIXSocketStream",
    "connect_tcp",
    "connect_unix",
    "create_tcp_listener",
    "create_unix_listener",
    "current_ring",
    "open_file",
    "open_ring",
]
