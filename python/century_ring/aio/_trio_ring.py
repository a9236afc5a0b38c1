"""An :class:`AsyncRing` in a trio run.

An instrument submits what was queued in a pass from ``before_io_wait``, just before trio waits
for I/O. A system task waits for an eventfd the kernel signals on every completion, and reaps;
waiters are parked tasks, woken with ``reschedule``. (Not the ring's own fd: completions posted
while the instrument submits are taken off the ring by that submit, so the ring's fd would not
turn readable for them, and trio has already chosen how long to sleep.)

When a parked task is cancelled, its abort function asks the kernel to cancel the operation and
answers ``Abort.FAILED``: the task stays parked until the final completion arrives, then either
gets its result (the cancellation then lands at its next checkpoint, as trio does for work that
cannot be undone) or raises ``Cancelled`` if the kernel cancelled the operation.
"""

from __future__ import annotations

import errno
import math
import os
from typing import TYPE_CHECKING, Any

import outcome
import trio
from trio.lowlevel import Abort, RaiseCancelT, Task

from century_ring._century_ring import CompletionEvent, IoUring
from century_ring.aio._ring import AsyncRing

if TYPE_CHECKING:
    from century_ring.aio._multishot import MultishotState

__all__ = ["TrioRing"]


class _SubmitBeforeWaiting(trio.abc.Instrument):
    """Submits the ring's queued operations once per pass of the run loop."""

    def __init__(self, ring: TrioRing) -> None:
        self._ring = ring

    def before_io_wait(self, timeout: float) -> None:
        ring = self._ring
        if ring._submit_scheduled:
            ring._submit_scheduled = False
            if not ring._io_uring.closed:
                ring._submit()


class TrioRing(AsyncRing):
    """The ring of one trio run."""

    __slots__ = ("_aborted", "_eventfd", "_instrument", "_submit_scheduled")

    def __init__(self, io_uring: IoUring) -> None:
        super().__init__(io_uring)
        self._submit_scheduled = False
        #: ``user_data`` -> how to raise the cancellation, for operations whose tasks were
        #: cancelled while they waited.
        self._aborted: dict[int, RaiseCancelT] = {}
        self._eventfd = io_uring.register_eventfd()  # owned and closed by the ring
        self._instrument = _SubmitBeforeWaiting(self)
        trio.lowlevel.add_instrument(self._instrument)

    async def run_reaper(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Reap whenever the ring's fd is readable, until the run ends (a system task)."""
        eventfd = self._eventfd
        task_status.started()
        try:
            while True:
                try:
                    await trio.lowlevel.wait_readable(eventfd)
                except trio.ClosedResourceError:
                    return  # aclose() closed the ring
                if self._io_uring.closed:
                    return
                try:
                    os.eventfd_read(eventfd)
                except BlockingIOError:
                    pass
                self._reap()
        finally:
            if not self._closing:
                # The run is ending: every task has finished, so nothing waits any more.
                self._closing = True
                self._detach()
                self._io_uring.close()

    def _schedule_submit(self) -> None:
        self._submit_scheduled = True

    def _deliver(self, waiter: object, event: CompletionEvent) -> None:
        task: Task = waiter  # type: ignore[assignment]
        raise_cancel = self._aborted.pop(event.user_data, None)
        if raise_cancel is not None and event.result == -errno.ECANCELED:
            trio.lowlevel.reschedule(task, outcome.capture(raise_cancel))
        else:
            trio.lowlevel.reschedule(task, outcome.Value(event))

    def _wake(self, waiter: object) -> None:
        task: Task = waiter  # type: ignore[assignment]
        trio.lowlevel.reschedule(task)

    def _cancel_pending(self) -> bool:
        # trio's cancellation is level-triggered: a task in a cancelled scope must not start
        # an operation that may complete before the kernel can cancel it, or a loop of them
        # would never end.
        return trio.current_effective_deadline() == -math.inf

    async def _checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    async def _wait(self, user_data: int) -> CompletionEvent:
        self._waiters[user_data] = trio.lowlevel.current_task()
        self._submit_scheduled = True

        def abort(raise_cancel: RaiseCancelT) -> Abort:
            self._aborted[user_data] = raise_cancel
            self._request_cancel(user_data)
            return Abort.FAILED

        event: CompletionEvent = await trio.lowlevel.wait_task_rescheduled(abort)
        return event

    async def _wait_multishot(self, state: MultishotState, *, shielded: bool) -> None:
        state.waiter = trio.lowlevel.current_task()

        def abort(_: RaiseCancelT) -> Abort:
            if shielded:
                return Abort.FAILED
            # Stop waiting; the operation goes on and its completions stay queued.
            state.waiter = None
            return Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def _drain(self) -> None:
        with trio.CancelScope(shield=True):
            while self._io_uring.in_flight:
                self._submit()
                await trio.sleep(0.001)
                self._reap()

    def _detach(self) -> None:
        self._aborted.clear()
        try:
            trio.lowlevel.remove_instrument(self._instrument)
        except (KeyError, RuntimeError):
            pass
        if not self._io_uring.closed:
            try:
                trio.lowlevel.notify_closing(self._eventfd)
            except RuntimeError:
                pass
