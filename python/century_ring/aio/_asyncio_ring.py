"""An :class:`AsyncRing` on an asyncio event loop (the standard one, uvloop, any other).

The loop watches the ring's file descriptor with ``add_reader``; its callback reaps and sets
each waiter's future. Operations queued during one pass are submitted by one callback that the
first of them schedules with ``call_soon``, which runs before the loop next waits.

A waiter is a plain future. When its task is cancelled, the future is cancelled with it; the
task then asks the kernel to cancel the operation and waits (ignoring further cancellation)
for its final completion. A completion that arrives while its future is cancelled is kept in
``_unclaimed`` for that task to find. If the operation completed anyway, its result is returned
and the task is cancelled again (unless an anyio cancel scope asked, which cancels it again
itself); the task is remembered, so that the next operation it starts first lets that
cancellation land instead of absorbing it as its own.
"""

from __future__ import annotations

import asyncio
import errno
import math
import sys
import weakref
from typing import TYPE_CHECKING

import anyio

from century_ring._century_ring import CompletionEvent, IoUring
from century_ring.aio._ring import AsyncRing

if TYPE_CHECKING:
    from century_ring.aio._multishot import MultishotState

__all__ = ["AsyncioRing"]


class AsyncioRing(AsyncRing):
    """The ring of one asyncio event loop."""

    __slots__ = ("_cancel_again", "_loop", "_submit_scheduled")

    def __init__(self, io_uring: IoUring, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(io_uring)
        self._loop = loop
        self._submit_scheduled = False
        #: Tasks cancelled again after an operation completed despite their cancellation.
        self._cancel_again: weakref.WeakSet[asyncio.Task[object]] = weakref.WeakSet()
        self._attach()

    def _attach(self) -> None:
        """Have the loop reap whenever the ring's descriptor is readable."""
        self._loop.add_reader(self._io_uring.fileno(), self._reap)

    def _schedule_submit(self) -> None:
        if not self._submit_scheduled:
            self._submit_scheduled = True
            self._loop.call_soon(self._submit_and_reap)

    def _submit_and_reap(self) -> None:
        self._submit_scheduled = False
        if self._io_uring.closed:
            return
        self._submit()
        # Many operations (cached reads, most opens) complete inside the submit: hand them
        # over now rather than one loop pass later.
        self._reap()

    def _deliver(self, waiter: object, event: CompletionEvent) -> None:
        future: asyncio.Future[CompletionEvent] = waiter  # type: ignore[assignment]
        if future.cancelled():
            self._unclaimed[event.user_data] = event
        else:
            future.set_result(event)

    def _wake(self, waiter: object) -> None:
        future: asyncio.Future[None] = waiter  # type: ignore[assignment]
        if not future.done():
            future.set_result(None)

    def _cancel_pending(self) -> bool:
        return bool(self._cancel_again) and asyncio.current_task() in self._cancel_again

    async def _checkpoint(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._cancel_again.discard(task)
        # Where the cancellation asked for again (or an anyio scope's next one) is delivered.
        await asyncio.sleep(0)

    async def _wait(self, user_data: int) -> CompletionEvent:
        future: asyncio.Future[CompletionEvent] = self._loop.create_future()
        self._waiters[user_data] = future
        self._schedule_submit()
        try:
            return await future
        except asyncio.CancelledError as cancelled:
            if future.done() and not future.cancelled():
                # The completion came in the same pass as task.cancel(), which then could
                # not cancel the future: the event is here, and nothing is left to cancel.
                return self._completed_despite_cancel(future.result(), cancelled)
            return await self._cancel(user_data, cancelled)

    async def _cancel(self, user_data: int, cancelled: asyncio.CancelledError) -> CompletionEvent:
        """The task was cancelled while ``user_data`` was in flight."""
        event = self._unclaimed.pop(user_data, None)
        if event is None:
            self._request_cancel(user_data)
            event = await self._wait_shielded(user_data)
        if event.result == -errno.ECANCELED:
            raise cancelled
        return self._completed_despite_cancel(event, cancelled)

    def _completed_despite_cancel(
        self, event: CompletionEvent, cancelled: asyncio.CancelledError
    ) -> CompletionEvent:
        """The operation finished before the kernel could cancel it: its result is the task's
        (an fd, bytes received), and the cancellation is asked for again, so that it lands at
        the task's next await."""
        task = asyncio.current_task()
        if task is None:
            return event
        self._cancel_again.add(task)
        if anyio.current_effective_deadline() == -math.inf:
            # An anyio cancel scope asked: it cancels the task again at its next wait inside
            # the scope, while a cancellation asked for here would outlive the scope.
            return event
        if sys.version_info >= (3, 11):
            task.uncancel()
        task.cancel(*cancelled.args)
        return event

    async def _wait_shielded(self, user_data: int) -> CompletionEvent:
        """Wait for ``user_data``'s completion whatever cancels the task meanwhile."""
        # anyio's cancel scopes re-deliver cancellation every loop pass; a shielded scope stops
        # that. A plain ``task.cancel()`` still gets through and is caught below.
        with anyio.CancelScope(shield=True):
            event = await self._wait_through_cancellation(user_data)
        return event

    async def _wait_through_cancellation(self, user_data: int) -> CompletionEvent:
        while True:
            event = self._unclaimed.pop(user_data, None)
            if event is not None:
                return event
            future: asyncio.Future[CompletionEvent] = self._loop.create_future()
            self._waiters[user_data] = future
            try:
                return await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    return future.result()  # completed in the pass that cancelled the task
                continue

    async def _wait_multishot(self, state: MultishotState, *, shielded: bool) -> None:
        future: asyncio.Future[None] = self._loop.create_future()
        state.waiter = future
        if not shielded:
            await future
            return
        with anyio.CancelScope(shield=True):
            while not future.done():
                try:
                    await asyncio.shield(future)
                except asyncio.CancelledError:
                    continue

    async def _drain(self) -> None:
        with anyio.CancelScope(shield=True):
            while self._io_uring.in_flight:
                self._submit()
                try:
                    await asyncio.sleep(0.001)
                except asyncio.CancelledError:
                    continue
                self._reap()

    def _detach(self) -> None:
        if not self._loop.is_closed():
            self._loop.remove_reader(self._io_uring.fileno())
