"""Which ring a task uses: one per running event loop, or a private one.

The shared ring of an asyncio loop is made on first use and closed when the loop closes; that
of a trio run is closed when the run ends. Each loop in each thread has its own ring, so nothing
is shared across threads.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from century_ring._century_ring import IoUring, make_io_ring
from century_ring.aio._asyncio_ring import AsyncioRing
from century_ring.aio._ring import AsyncRing

if TYPE_CHECKING:
    from century_ring.aio._trio_ring import TrioRing

__all__ = ["current_ring", "open_ring"]

#: The shared ring of each asyncio loop that has used one.
_asyncio_rings: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncioRing] = (
    weakref.WeakKeyDictionary()
)
_trio_ring_var: Any = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _in_trio() -> bool:
    trio = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_run())


def _not_in_a_loop() -> RuntimeError:
    return RuntimeError(
        "century_ring.aio needs a running event loop: call it from a task of an asyncio loop "
        "(asyncio.run, uvloop) or of a trio run"
    )


def _make(options: dict[str, Any]) -> IoUring:
    if options.get("autosubmit", True) is not True:
        raise ValueError(
            "an async ring submits for its tasks, so it is made with autosubmit=True; "
            "autosubmit=False is for loops that call submit() themselves"
        )
    return make_io_ring(**options)


def _close_with_loop(loop: asyncio.AbstractEventLoop, ring: AsyncioRing) -> None:
    """Close ``ring`` just before ``loop`` closes (``asyncio.run`` closes its loop last)."""
    close_loop = loop.close

    def close() -> None:
        try:
            ring._detach()
            ring._closing = True
            ring.ring.close()
        finally:
            try:
                del loop.close
            except AttributeError:
                pass
            close_loop()

    try:
        loop.close = close  # type: ignore[method-assign]
    except AttributeError:
        # A loop that takes no attributes: the ring closes when the loop is collected.
        weakref.finalize(loop, ring.ring.close)


def _share_as_current(loop: asyncio.AbstractEventLoop, ring: AsyncioRing) -> None:
    """Make ``ring`` what :func:`current_ring` returns on ``loop``; for a loop that owns its
    ring (``century_ring.asyncio``'s) and closes it itself."""
    _asyncio_rings[loop] = ring


def current_ring() -> AsyncRing:
    """The ring of the running event loop, made on first use.

    On asyncio (the standard loop, uvloop, any loop with ``add_reader``) the ring is closed when
    the loop closes; in a trio run, when the run ends. Each loop in each thread has its own.

    :raises RuntimeError: No asyncio loop or trio run is running in this thread.
    """
    loop = _running_loop()
    if loop is not None:
        ring = _asyncio_rings.get(loop)
        if ring is None or ring.closed:
            ring = AsyncioRing(_make({}), loop)
            _asyncio_rings[loop] = ring
            _close_with_loop(loop, ring)
        return ring
    if _in_trio():
        return _current_trio_ring()
    raise _not_in_a_loop()


def _current_trio_ring() -> TrioRing:
    global _trio_ring_var
    import trio

    from century_ring.aio._trio_ring import TrioRing

    if _trio_ring_var is None:
        _trio_ring_var = trio.lowlevel.RunVar("century_ring.aio.current_ring")
    ring: TrioRing | None = _trio_ring_var.get(None)
    if ring is None or ring.closed:
        ring = TrioRing(_make({}))
        _trio_ring_var.set(ring)
        trio.lowlevel.spawn_system_task(ring.run_reaper, name="century_ring.aio reaper")
    return ring


@asynccontextmanager
async def open_ring(**options: Any) -> AsyncIterator[AsyncRing]:
    """A private :class:`AsyncRing`, closed (with :meth:`AsyncRing.aclose`) on leaving.

    ``async with century_ring.aio.open_ring(entries=1024) as ring: ...``

    :param options: What :func:`~century_ring.make_io_ring` takes (``autosubmit`` must stay
        ``True``: the async ring submits for its tasks).
    :raises RuntimeError: No asyncio loop or trio run is running in this thread.
    """
    ring: AsyncRing
    loop = _running_loop()
    if loop is not None:
        ring = AsyncioRing(_make(options), loop)
    elif _in_trio():
        import trio

        from century_ring.aio._trio_ring import TrioRing

        trio_ring = TrioRing(_make(options))
        trio.lowlevel.spawn_system_task(trio_ring.run_reaper, name="century_ring.aio reaper")
        ring = trio_ring
    else:
        raise _not_in_a_loop()
    try:
        yield ring
    finally:
        await ring.aclose()
