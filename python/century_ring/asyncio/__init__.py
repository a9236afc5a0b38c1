"""An asyncio event loop on io_uring, a drop-in for the standard loop and uvloop.

Run a program on it::

    import century_ring.asyncio

    century_ring.asyncio.run(main())

or hand its factory to asyncio: ``asyncio.run(main(), loop_factory=century_ring.asyncio.
new_event_loop)`` (Python 3.12+), ``asyncio.Runner(loop_factory=...)`` (3.11+), or
``asyncio.set_event_loop_policy(century_ring.asyncio.EventLoopPolicy())``. Needs ``anyio``
(``pip install century-ring[aio]``), as :mod:`century_ring.aio` does.
"""

from __future__ import annotations

import asyncio
import errno
import sys
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

from century_ring.asyncio._loop import EventLoop

__all__ = ["EventLoop", "EventLoopPolicy", "new_event_loop", "run"]

_T = TypeVar("_T")

#: What io_uring_setup fails with where the system refuses io_uring: a seccomp filter or
#: kernel.io_uring_disabled (EPERM, or EACCES from a security module), or no io_uring at all.
_REFUSED = frozenset({errno.EPERM, errno.EACCES, errno.ENOSYS})


def new_event_loop(*, strict: bool = False) -> asyncio.AbstractEventLoop:
    """A new :class:`EventLoop`.

    Where the system refuses io_uring (a container's seccomp profile, the sysctl
    ``kernel.io_uring_disabled``, a kernel without it), this returns asyncio's standard loop
    instead, with a :exc:`RuntimeWarning` that says why.

    :param strict: Raise instead of falling back.
    :raises OSError: ``strict`` is set and the system refuses io_uring, or making the ring
        failed for another reason (no file descriptor or locked memory left).
    """
    try:
        return EventLoop()
    except OSError as refused:
        if strict or refused.errno not in _REFUSED:
            raise
        warnings.warn(
            f"century_ring.asyncio uses asyncio's standard event loop: {refused.strerror}",
            RuntimeWarning,
            stacklevel=2,
        )
        return asyncio.SelectorEventLoop()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run ``main`` on a new :class:`EventLoop`, as :func:`asyncio.run` does on the standard
    loop: cancel the tasks left over, shut down async generators and the default executor,
    close the loop.

    :param main: The coroutine to run.
    :param debug: Run the loop in debug mode (``None``: as ``PYTHONASYNCIODEBUG`` says).
    :returns: What ``main`` returns.
    :raises RuntimeError: Called from a running event loop.
    """
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_310(main, debug)


def _run_310(main: Coroutine[Any, Any, _T], debug: bool | None) -> _T:
    """:func:`asyncio.run` of Python 3.10, which has no ``loop_factory``."""
    if asyncio.events._get_running_loop() is not None:
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            # asyncio.run's own clean-up (private, and in asyncio.runners since 3.7).
            asyncio.runners._cancel_all_tasks(loop)  # type: ignore[attr-defined]
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An event loop policy whose new loops are :class:`EventLoop`\\ s (with the fallback of
    :func:`new_event_loop`)::

        asyncio.set_event_loop_policy(century_ring.asyncio.EventLoopPolicy())
        asyncio.run(main())
    """

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new loop from :func:`new_event_loop`."""
        return new_event_loop()
