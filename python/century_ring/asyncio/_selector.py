"""The loop's selector: readiness through ``poll_add`` in the ring, waiting in ``io_uring_enter``.

asyncio's loop waits in its selector's ``select()``. Here that wait is the ring's: one
``io_uring_enter`` submits every operation queued during the pass (a socket receive, a file
read, the polls below) and returns when any completion arrives or the timeout passes.
Completions of operations go straight to their waiters; those of polls become the readiness
events ``select()`` returns.

Readiness is asked for only where asyncio's API asks for it (``add_reader``, ``add_writer`` and
the transports built on them). Each registered descriptor has one one-shot poll, armed again
before the next wait after it fired: a one-shot poll armed on a descriptor that is still ready
completes at once, so readiness is level-triggered, as with ``epoll``, and a reader that leaves
data unread is told again.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator, Mapping
from selectors import EVENT_READ, EVENT_WRITE, BaseSelector, SelectorKey
from typing import TYPE_CHECKING, Any

from century_ring._century_ring import CompletionEvent, IoUring, _Stream

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = ["RingSelector"]


def _fd_of(fileobj: FileDescriptorLike) -> int:
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


def _poll_mask(events: int) -> int:
    mask = 0
    if events & EVENT_READ:
        mask |= select.POLLIN
    if events & EVENT_WRITE:
        mask |= select.POLLOUT
    return mask


def _ready_events(revents: int) -> int:
    """Selector events from a poll result; hang-ups and errors wake readers and writers both,
    as ``selectors.EpollSelector`` has them."""
    events = 0
    if revents & ~select.POLLIN:
        events |= EVENT_WRITE
    if revents & ~select.POLLOUT:
        events |= EVENT_READ
    return events


class _Keys(Mapping[Any, SelectorKey]):
    """``get_map()``: registered file objects to their keys."""

    def __init__(self, keys: dict[int, SelectorKey]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, fileobj: object) -> SelectorKey:
        try:
            return self._keys[_fd_of(fileobj)]  # type: ignore[arg-type]
        except ValueError:
            raise KeyError(fileobj) from None

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)


class RingSelector(BaseSelector):
    """A selector on an :class:`~century_ring.IoUring`.

    :param io_uring: The loop's ring.
    :param dispatch: Called with each completion that is not one of this selector's polls.
    """

    def __init__(
        self, io_uring: IoUring, dispatch: Callable[[CompletionEvent], None] | None = None
    ) -> None:
        self._io_uring = io_uring
        self.dispatch = dispatch
        self._keys: dict[int, SelectorKey] = {}
        #: fd -> ``user_data`` of its armed poll, and back.
        self._armed: dict[int, int] = {}
        self._polls: dict[int, int] = {}
        #: Polls removed while armed: their final completion is dropped.
        self._removed: set[int] = set()
        #: Registered descriptors without a poll, armed before the next wait.
        self._to_arm: set[int] = set()
        #: ``user_data`` -> what its completion is handed to (kept while ``more`` says so): a
        #: callable, or the ``_Stream`` of a transport, which takes it without an event.
        self._handlers: dict[int, Callable[[CompletionEvent], None] | _Stream] = {}
        #: Readiness reaped outside ``select()`` (while the ring drained), for the next one.
        self._ready: dict[int, int] = {}
        self._map = _Keys(self._keys)

    def register(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> SelectorKey:
        if not events or events & ~(EVENT_READ | EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        fd = _fd_of(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        key = SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        self._to_arm.add(fd)
        return key

    def unregister(self, fileobj: FileDescriptorLike) -> SelectorKey:
        fd = self._fd_of_registered(fileobj)
        key = self._keys.pop(fd)
        self._disarm(fd)
        self._to_arm.discard(fd)
        self._ready.pop(fd, None)
        return key

    def modify(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> SelectorKey:
        fd = self._fd_of_registered(fileobj)
        key = self._keys[fd]
        if events != key.events:
            if not events or events & ~(EVENT_READ | EVENT_WRITE):
                raise ValueError(f"Invalid events: {events!r}")
            self._disarm(fd)
            self._to_arm.add(fd)
        key = SelectorKey(key.fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def _fd_of_registered(self, fileobj: FileDescriptorLike) -> int:
        try:
            fd = _fd_of(fileobj)
        except ValueError:
            # A closed socket's fileno() is -1: find it by identity, as selectors does.
            for key in self._keys.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise
        if fd not in self._keys:
            raise KeyError(f"{fileobj!r} is not registered")
        return fd

    def _disarm(self, fd: int) -> None:
        user_data = self._armed.pop(fd, None)
        if user_data is not None:
            del self._polls[user_data]
            self._removed.add(user_data)
            self._removed.add(self._io_uring.prep_poll_remove(user_data))

    def _arm(self) -> None:
        prep_poll_add = self._io_uring.prep_poll_add
        for fd in self._to_arm:
            user_data = prep_poll_add(fd, _poll_mask(self._keys[fd].events))
            self._armed[fd] = user_data
            self._polls[user_data] = fd
        self._to_arm.clear()

    def select(self, timeout: float | None = None) -> list[tuple[SelectorKey, int]]:
        if self._to_arm:
            self._arm()
        io_uring = self._io_uring
        if self._ready or (timeout is not None and timeout <= 0):
            if io_uring.pending_sq_entries:
                io_uring.submit()
        elif timeout is None:
            io_uring.submit_and_wait(1)
        else:
            io_uring.submit_and_wait_with_timeout(timeout)
        self.reap()
        ready = self._ready
        if not ready:
            return []
        self._ready = {}
        keys = self._keys
        return [(keys[fd], events & keys[fd].events) for fd, events in ready.items()]

    def on_completion(self, user_data: int, handler: Callable[[CompletionEvent], None]) -> None:
        """Hand ``user_data``'s completions to ``handler``, called from :meth:`select`."""
        self._handlers[user_data] = handler

    def ignore(self, user_data: int) -> None:
        """Drop ``user_data``'s completion (a cancel request's own)."""
        self._removed.add(user_data)

    def reap(self) -> None:
        """Take every completion off the ring: handlers are called (by the ring, in order),
        polls become readiness, the rest are dispatched."""
        polls = self._polls
        # A handler that raises (KeyboardInterrupt out of a protocol) leaves the completions
        # after its own in the ring, for the next call.
        for event in self._io_uring._reap_to(self._handlers):
            user_data = event.user_data
            fd = polls.pop(user_data, None)
            if fd is not None:
                del self._armed[fd]
                self._to_arm.add(fd)
                result = event.result
                # A poll that failed (the descriptor was closed while registered) reports the
                # descriptor ready, so that its callback's read or write meets the error.
                events = _ready_events(result) if result >= 0 else EVENT_READ | EVENT_WRITE
                self._ready[fd] = self._ready.get(fd, 0) | events
            elif user_data in self._removed:
                self._removed.discard(user_data)
            elif self.dispatch is not None:
                self.dispatch(event)

    def close(self) -> None:
        self._keys.clear()
        self._handlers.clear()
        self._armed.clear()
        self._polls.clear()
        self._to_arm.clear()
        self._ready.clear()

    def get_map(self) -> Mapping[Any, SelectorKey]:
        return self._map
