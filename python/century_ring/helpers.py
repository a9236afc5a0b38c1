"""Small pure-Python helpers around completions."""

from __future__ import annotations

import os

from century_ring._century_ring import CompletionEvent

__all__ = ["raise_for_cqe"]


def raise_for_cqe(cqe: CompletionEvent) -> None:
    """Raise the exception that a failed operation's completion stands for.

    io_uring reports failure as a negative ``errno`` in :attr:`CompletionEvent.result`. This
    turns it into the :class:`OSError` subclass that Python itself raises for that error
    (:class:`FileNotFoundError` for ``ENOENT``, :class:`ConnectionRefusedError` for
    ``ECONNREFUSED``, and so on), with ``errno`` and ``strerror`` set.

    :param cqe: A completion returned by :meth:`IoUring.get_completion_entries`.
    :returns: ``None`` when ``cqe.result`` is zero or positive.
    :raises OSError: The matching subclass when ``cqe.result`` is negative.
    """
    result = cqe.result
    if result < 0:
        code = -result
        raise OSError(code, os.strerror(code))
