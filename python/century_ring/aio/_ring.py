"""The ring of one event loop: what both host loops share.

An :class:`AsyncRing` holds an :class:`~century_ring.IoUring` and a table from ``user_data`` to
whoever waits for that completion. Operations queued during one pass of the host loop are
submitted together, once per pass; completions are reaped when the ring's file descriptor is
readable and handed straight to their waiters. How a task is parked, woken and cancelled is the
host loop's business, so that part lives in ``_asyncio_ring`` and ``_trio_ring``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from century_ring._century_ring import CompletionEvent, IoUring
from century_ring.aio._errors import RingClosedError, failure
from century_ring.aio._multishot import MultishotOperation, MultishotState
from century_ring.aio._operations import AsyncOperations

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AsyncRing", "RingClosedError"]


def _close_accepted(event: CompletionEvent) -> None:
    """Close a connection accepted by a multishot accept that nobody will take."""
    if event.result >= 0:
        os.close(event.result)


#: What a multishot operation's undelivered completions must give back, by name.
_DISCARDS: dict[str, Callable[[CompletionEvent], None]] = {
    "_close_accepted": _close_accepted,
}


class AsyncRing(AsyncOperations):
    """An :class:`~century_ring.IoUring` driven by the running event loop.

    Get the loop's shared ring with :func:`~century_ring.aio.current_ring`, or a private one with
    :func:`~century_ring.aio.open_ring`. Every ``prep_NAME`` method of
    :class:`~century_ring.IoUring` has an awaitable ``NAME`` here taking the same arguments::

        ring = century_ring.aio.current_ring()
        fd = (await ring.openat(AT_FDCWD, "data.bin", FileOpenMode.READ_ONLY)).result
        data = (await ring.read(fd, 4096, 0)).buffer
        await ring.close(fd)

    A ring belongs to the event loop (or trio run) that made it: use it only from tasks of that
    loop.
    """

    __slots__ = ("__weakref__", "_closing", "_ignored", "_io_uring", "_unclaimed", "_waiters")

    def __init__(self, io_uring: IoUring) -> None:
        self._io_uring = io_uring
        #: ``user_data`` -> the waiter (a future, a task, or a multishot operation's state).
        self._waiters: dict[int, object] = {}
        #: Completions that arrived with no waiter: claimed by ``wait_for_completion`` or by a
        #: cancelled wait that finds its operation already done.
        self._unclaimed: dict[int, CompletionEvent] = {}
        #: ``user_data`` of our own cancel requests, whose completions nobody needs.
        self._ignored: set[int] = set()
        self._closing = False

    @property
    def ring(self) -> IoUring:
        """The synchronous :class:`~century_ring.IoUring` underneath.

        Operations queued on it directly with ``prep_*`` are submitted with this ring's next
        batch; collect their completions with :meth:`wait_for_completion`, not with
        :meth:`~century_ring.IoUring.get_completion_entries` (this ring reaps them itself).
        """
        return self._io_uring

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`aclose` has begun."""
        return self._closing

    @property
    def waiting(self) -> int:
        """How many operations have a task waiting for their completion."""
        return len(self._waiters)

    def fileno(self) -> int:
        """The ring's file descriptor (readable while completions wait to be reaped)."""
        return self._io_uring.fileno()

    async def wait_for_completion(
        self, user_data: int, *, autoraise: bool = True
    ) -> CompletionEvent:
        """Wait for the completion of an operation queued directly on :attr:`ring`.

        :param user_data: What the ``prep_*`` call returned.
        :param autoraise: Raise :exc:`OSError` when the operation failed, as
            :func:`~century_ring.raise_for_cqe` does; with ``False`` the failed completion is
            returned.
        :returns: The completion.
        :raises ValueError: Another task already waits for this ``user_data``.
        """
        if user_data in self._waiters:
            raise ValueError(f"a task already waits for user_data {user_data}")
        if self._cancel_pending():
            await self._checkpoint()
        event = self._unclaimed.pop(user_data, None)
        if event is None:
            event = await self._wait(user_data)
        if autoraise:
            error = self._closed_error(event) or failure(event, "")
            if error is not None:
                raise error
        return event

    async def _complete(self, user_data: int, operation: str) -> CompletionEvent:
        if self._closing:
            # Queued while aclose() drains: it must not outlive the ring.
            self._request_cancel(user_data)
        event = await self._wait(user_data)
        if event.result < 0:
            error = self._closed_error(event) or failure(event, operation)
            if error is not None:
                raise error
        return event

    def _multishot(
        self, prep: Callable[[], int], operation: str, discard: str | None
    ) -> MultishotOperation:
        self._check_open()
        return MultishotOperation(
            self, prep, operation, _DISCARDS[discard] if discard is not None else None
        )

    async def _checkpoint_if_cancelled(self) -> None:
        """Raise the running task's pending cancellation, if it has one.

        For code above the ring that holds results of its own (a file's buffer): an operation
        that completed despite a cancellation returns its result, which such code keeps and
        then hands over only after this, so a cancellation raised here leaves it kept for the
        next call.
        """
        if self._cancel_pending():
            await self._checkpoint()

    def _cancel_pending(self) -> bool:
        """Whether the running task has a cancellation waiting to be raised."""
        raise NotImplementedError

    async def _checkpoint(self) -> None:
        """Let the running task's pending cancellation be raised."""
        raise NotImplementedError

    async def _wait(self, user_data: int) -> CompletionEvent:
        """Park the task until ``user_data`` completes; a cancel cancels the kernel's operation,
        waits for its final completion, and returns it if it completed anyway."""
        raise NotImplementedError

    async def _wait_multishot(self, state: MultishotState, *, shielded: bool) -> None:
        """Park the task until ``state`` gets a completion; ``shielded`` waits through
        cancellation."""
        raise NotImplementedError

    def _wake(self, waiter: object) -> None:
        """Wake a task parked by :meth:`_wait_multishot`."""
        raise NotImplementedError

    def _schedule_submit(self) -> None:
        """Make sure what is queued reaches the kernel before the host loop next waits."""
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._closing:
            raise RingClosedError("the ring is closed")

    def _request_cancel(self, user_data: int) -> None:
        """Ask the kernel to cancel ``user_data`` (its own completion is dropped)."""
        self._ignored.add(self._io_uring.prep_cancel(user_data))
        self._schedule_submit()

    def _submit(self) -> None:
        ring = self._io_uring
        if ring.pending_sq_entries:
            ring.submit()

    def _reap(self) -> None:
        """Hand every completion waiting in the ring to its waiter."""
        for event in self._io_uring.get_completion_entries():
            self._dispatch(event)

    def _dispatch(self, event: CompletionEvent) -> None:
        """Hand one completion to its waiter (or keep it for whoever claims it)."""
        user_data = event.user_data
        waiter = self._waiters.pop(user_data, None)
        if waiter is None:
            if user_data in self._ignored:
                self._ignored.discard(user_data)
            else:
                self._unclaimed[user_data] = event
        elif isinstance(waiter, MultishotState):
            if event.more:
                self._waiters[user_data] = waiter
            waiter.deliver(event)
        else:
            self._deliver(waiter, event)

    def _deliver(self, waiter: object, event: CompletionEvent) -> None:
        """Wake a single-shot waiter with its completion."""
        raise NotImplementedError

    def _closed_error(self, event: CompletionEvent) -> RingClosedError | None:
        if self._closing and event.result == -errno.ECANCELED:
            return RingClosedError("the ring was closed while the operation waited")
        return None

    async def aclose(self) -> None:
        """Cancel every operation still in flight, wait for their completions, close the ring.

        Tasks still waiting on this ring's operations get :exc:`RingClosedError` (or their
        operation's result, if it completed before it could be cancelled). Closing twice does
        nothing.
        """
        if self._closing:
            return
        self._closing = True
        try:
            if self._io_uring.in_flight:
                self._ignored.add(self._io_uring.prep_cancel(all=True))
                self._schedule_submit()
                await self._drain()
        finally:
            self._detach()
            self._io_uring.close()

    async def _drain(self) -> None:
        """Wait, shielded from cancellation, until nothing is in flight."""
        raise NotImplementedError

    def _detach(self) -> None:
        """Stop watching the ring's file descriptor."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
