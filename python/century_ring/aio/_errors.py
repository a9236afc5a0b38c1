"""What a completion's result means to the task that awaited it."""

from __future__ import annotations

import errno
import os

from century_ring._century_ring import CompletionEvent

__all__ = ["RingClosedError", "failure"]


class RingClosedError(RuntimeError):
    """The :class:`~century_ring.aio.AsyncRing` was closed while the operation waited, or
    before it began."""


def failure(event: CompletionEvent, operation: str) -> OSError | None:
    """The exception a failed completion stands for, or ``None`` when it succeeded.

    The exception is the one :func:`~century_ring.raise_for_cqe` raises. A timeout that expires
    is what ``timeout`` is for, so ``-ETIME`` is its success.
    """
    result = event.result
    if result >= 0 or (result == -errno.ETIME and operation == "timeout"):
        return None
    return OSError(-result, os.strerror(-result))
