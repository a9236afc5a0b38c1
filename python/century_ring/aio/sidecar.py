"""The public century-ring project's async names, so code written for it runs unchanged.

``start_uring_sidecar()`` yields an :class:`~century_ring.aio.AsyncRing`: queue operations on
its ``.ring`` with ``prep_*`` and await them with ``wait_for_completion``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from century_ring.aio._current import open_ring
from century_ring.aio._ring import AsyncRing

__all__ = ["start_uring_sidecar"]


@asynccontextmanager
async def start_uring_sidecar(
    entries: int = 256,
    cq_size: int | None = None,
    sqpoll_idle_ms: int | None = None,
    single_issuer: bool = True,
    autosubmit: bool = True,
    force_submissions: bool = False,
) -> AsyncIterator[AsyncRing]:
    """A private ring for the running asyncio loop or trio run, closed on leaving.

    The arguments are :func:`~century_ring.make_io_ring`'s. ``force_submissions`` is accepted
    for compatibility and changes nothing: operations queued in a pass of the loop are always
    submitted before the loop next waits, which is what forcing a submission per operation
    guaranteed.

    :returns: An async context manager yielding the :class:`~century_ring.aio.AsyncRing`.
    """
    del force_submissions
    async with open_ring(
        entries=entries,
        cq_size=cq_size,
        sqpoll_idle_ms=sqpoll_idle_ms,
        single_issuer=single_issuer,
        autosubmit=autosubmit,
    ) as ring:
        yield ring
