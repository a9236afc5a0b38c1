"""io_uring for async Python: every operation awaitable on asyncio, uvloop and trio.

Each running event loop (or trio run) gets one ring, :func:`current_ring`; its operations are
submitted together once per pass of the loop and their completions go straight to the tasks
awaiting them. Nothing here starts a thread. Needs ``anyio`` (``pip install century-ring[aio]``).
"""

from __future__ import annotations

from century_ring.aio._current import current_ring, open_ring
from century_ring.aio._errors import RingClosedError
from century_ring.aio._multishot import MultishotOperation
from century_ring.aio._ring import AsyncRing

__all__ = [
    "AsyncRing",
    "MultishotOperation",
    "RingClosedError",
    "current_ring",
    "open_ring",
]
