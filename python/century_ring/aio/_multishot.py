"""Multishot operations as async iterators: one submission, many completions.

The ring delivers each completion to a :class:`MultishotState`, which queues it for the
iterator. A task that stops waiting for the next completion (it was cancelled) loses nothing:
the kernel's operation goes on and its completions stay queued for the next ``__anext__``.
Closing the iterator, or dropping it, cancels the kernel's operation; what arrives after that is
given back (an accepted connection is closed), never left open.
"""

from __future__ import annotations

import contextlib
import errno
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from century_ring._century_ring import CompletionEvent
from century_ring.aio._errors import RingClosedError, failure

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MultishotHost", "MultishotOperation", "MultishotState"]


class MultishotHost(Protocol):
    """What a multishot operation needs of its ring (:class:`~century_ring.aio.AsyncRing`),
    named here so that this module does not import the ring's."""

    _waiters: dict[int, object]

    @property
    def closed(self) -> bool: ...

    def _check_open(self) -> None: ...

    def _cancel_pending(self) -> bool: ...

    async def _checkpoint(self) -> None: ...

    def _schedule_submit(self) -> None: ...

    def _request_cancel(self, user_data: int) -> None: ...

    def _closed_error(self, event: CompletionEvent) -> RingClosedError | None: ...

    async def _wait_multishot(self, state: MultishotState, *, shielded: bool) -> None: ...

    def _wake(self, waiter: object) -> None: ...


class MultishotState:
    """The ring's side of one multishot operation."""

    __slots__ = ("abandoned", "discard", "ended", "queue", "ring", "user_data", "waiter")

    def __init__(
        self,
        ring: MultishotHost,
        user_data: int,
        discard: Callable[[CompletionEvent], None] | None,
    ) -> None:
        self.ring = ring
        self.user_data = user_data
        self.discard = discard
        self.queue: deque[CompletionEvent] = deque()
        #: The operation's final completion (one without ``more``) has arrived.
        self.ended = False
        #: Nobody will read the queue any more: completions are given back as they come.
        self.abandoned = False
        #: The parked task's wake-up (a future or a task), if one waits.
        self.waiter: object | None = None

    def deliver(self, event: CompletionEvent) -> None:
        if not event.more:
            self.ended = True
        if self.abandoned:
            self.give_back(event)
        else:
            self.queue.append(event)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            self.ring._wake(waiter)

    def give_back(self, event: CompletionEvent) -> None:
        if self.discard is not None:
            with contextlib.suppress(OSError):
                self.discard(event)

    def abandon(self) -> None:
        """Give back everything queued and all that is still to come."""
        self.abandoned = True
        while self.queue:
            self.give_back(self.queue.popleft())


class MultishotOperation:
    """The completions of one multishot operation (``accept``, ``recv`` on a buffer group,
    ``poll_add``), as an async iterator.

    The operation is queued when the iterator is first awaited. Each ``__anext__`` returns the
    next completion; iteration ends after the operation's last one (a completion without
    :attr:`~century_ring.CompletionEvent.more`). A failed last completion raises what
    :func:`~century_ring.raise_for_cqe` raises, for instance ``ENOBUFS`` when a receive's buffer
    group ran dry.

    Cancelling a task waiting for the next completion does not stop the operation: what arrives
    stays queued for the next ``__anext__``. :meth:`aclose` (or leaving ``async with``, or
    dropping the iterator) cancels the kernel's operation; completions that arrive after that
    are given back (accepted connections are closed)::

        async with ring.accept(listener, multishot=True) as connections:
            async for event in connections:
                handle(event.result)
    """

    __slots__ = ("__weakref__", "_closed", "_discard", "_operation", "_prep", "_ring", "_state")

    def __init__(
        self,
        ring: MultishotHost,
        prep: Callable[[], int],
        operation: str,
        discard: Callable[[CompletionEvent], None] | None,
    ) -> None:
        self._ring = ring
        self._prep = prep
        self._operation = operation
        self._discard = discard
        self._state: MultishotState | None = None
        self._closed = False

    @property
    def user_data(self) -> int | None:
        """The operation's ``user_data``, or ``None`` before the first ``__anext__``."""
        return None if self._state is None else self._state.user_data

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CompletionEvent:
        if self._ring._cancel_pending():
            # Even with completions queued: an ``async for`` must end when it is cancelled.
            await self._ring._checkpoint()
        state = self._state
        if state is None:
            if self._closed:
                raise StopAsyncIteration
            ring = self._ring
            ring._check_open()
            state = MultishotState(ring, self._prep(), self._discard)
            ring._waiters[state.user_data] = state
            ring._schedule_submit()
            self._state = state
        while not state.queue:
            if state.ended:
                self._closed = True
                raise StopAsyncIteration
            await self._ring._wait_multishot(state, shielded=False)
        event = state.queue.popleft()
        if event.result < 0:
            self._closed = True
            if event.result == -errno.ECANCELED and state.abandoned:
                raise StopAsyncIteration
            error = self._ring._closed_error(event) or failure(event, self._operation)
            if error is not None:
                raise error
        return event

    async def aclose(self) -> None:
        """Cancel the kernel's operation and wait for its last completion.

        Completions still queued, and any that arrive while it is cancelled, are given back.
        Closing twice does nothing.
        """
        self._closed = True
        state = self._state
        if state is None or state.abandoned:
            return
        state.abandon()
        if not state.ended:
            self._ring._request_cancel(state.user_data)
            while not state.ended:
                await self._ring._wait_multishot(state, shielded=True)

    def __del__(self) -> None:
        state = self._state
        if state is None or state.abandoned:
            return
        state.abandon()
        if not state.ended and not self._ring.closed:
            with contextlib.suppress(Exception):
                self._ring._request_cancel(state.user_data)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
