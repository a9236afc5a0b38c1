"""File handles that cannot be reused by accident.

A file descriptor is a small number, and the kernel hands out the lowest free one: once a
descriptor is closed, the next ``open`` or ``socket`` very likely gets the same number. An
operation queued afterwards with the old number then reads, writes or closes *someone else's*
file. With io_uring this happens easily, because a close is itself an operation queued on the
ring, and the code that queues more work on a descriptor is often far from the code that
closed it.

A handle remembers that it was closed. Every ``prep_*`` method accepts a handle wherever it
takes a descriptor, and refuses one whose :meth:`~FileLikeHandle.close` was called, or that was
passed to :meth:`IoUring.prep_close`, with :class:`ValueError` before anything is queued.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol, final, runtime_checkable

from century_ring._century_ring import CompletionEvent
from century_ring.helpers import raise_for_cqe

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FdHandle", "FileLikeHandle", "IntoFilelikeHandle"]


@runtime_checkable
class IntoFilelikeHandle(Protocol):
    """Anything that can give a :class:`FileLikeHandle` for itself."""

    def as_handle(self) -> FileLikeHandle:
        """The handle for this object."""
        ...


@runtime_checkable
class FileLikeHandle(IntoFilelikeHandle, Protocol):
    """A file descriptor that knows whether it was closed: a file, a socket, a pipe end, a
    pidfd, an eventfd, anything the kernel reads, writes or polls like a file.

    ("File-like" has nothing to do with Python's file objects: those buffer, encode and keep
    their own position; this is only the descriptor.)

    The ring treats any object with these members as a handle: ``prep_*`` methods refuse one
    whose :meth:`close_called` is true, and :meth:`IoUring.prep_close` calls
    :meth:`mark_closed` once it has queued the close.
    """

    #: The descriptor.
    fd: int

    def as_handle(self) -> FileLikeHandle:
        """The handle itself."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool: ...

    def close_called(self) -> bool:
        """Whether :meth:`close` was called, or a close was queued (:meth:`mark_closed`).
        Whether the descriptor is really closed yet cannot be known; once a close was asked
        for, using the number is wrong either way."""
        ...

    def mark_closed(self) -> None:
        """Notes that a close of the descriptor was queued (on a ring), so that it is never
        used again, nor closed a second time (which could close a new file of the same
        number)."""
        ...

    def close(self) -> None:
        """Closes the descriptor, once: calling it again does nothing. The handle counts as
        closed even if ``close(2)`` reports an error, since the descriptor is gone either
        way."""
        ...


@final
class FdHandle:
    """A :class:`FileLikeHandle` that wraps a plain file descriptor it owns.

    .. code-block:: python

        with make_io_ring() as ring:
            ring.prep_openat(AT_FDCWD, "data.txt", FileOpenMode.READ_ONLY)
            ring.submit_and_wait()
            (opened,) = ring.get_completion_entries()
            with FdHandle.from_completion_event(opened) as handle:
                ring.prep_read(handle, 4096)
                ...
            ring.prep_read(handle, 4096)  # ValueError: the handle is closed

    :param fd: The descriptor; the handle owns it from now on and closes it in :meth:`close`
        (or at the end of a ``with`` block).
    """

    __slots__ = ("_close_called", "fd")

    @classmethod
    def from_completion_event(cls, event: CompletionEvent) -> FdHandle:
        """The handle of the descriptor a completion made (``prep_openat``, ``prep_accept``,
        ``prep_create_socket``, ...), which is its :attr:`~CompletionEvent.result`.

        :raises OSError: The operation failed; the exception is the one
            :func:`~century_ring.raise_for_cqe` raises for it.
        """
        raise_for_cqe(event)
        return cls(event.result)

    def __init__(self, fd: int) -> None:
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"fd must be an int, not {type(fd).__name__}")
        if fd < 0:
            raise ValueError(f"fd must be a file descriptor (0 or more), got {fd}")
        #: The descriptor.
        self.fd = fd
        self._close_called = False

    def as_handle(self) -> FdHandle:
        """The handle itself."""
        return self

    def fileno(self) -> int:
        """The descriptor, as :mod:`select`, :mod:`socket` and ``prep_*`` methods ask for it.

        :raises ValueError: The handle is closed.
        """
        if self._close_called:
            raise ValueError(
                f"FdHandle(fd={self.fd}) is closed: its number may belong to another file by now"
            )
        return self.fd

    def close_called(self) -> bool:
        """Whether :meth:`close` was called, or a close was queued with
        :meth:`IoUring.prep_close`."""
        return self._close_called

    def mark_closed(self) -> None:
        """Notes that a close was queued: the handle is closed from now on, and :meth:`close`
        does nothing."""
        self._close_called = True

    def close(self) -> None:
        """Closes the descriptor with :func:`os.close`, once; later calls do nothing. The handle
        is closed afterwards even if ``os.close`` raised."""
        if self._close_called:
            return
        self._close_called = True
        os.close(self.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> Literal[False]:
        self.close()
        return False

    def __repr__(self) -> str:
        state = ", closed" if self._close_called else ""
        return f"FdHandle(fd={self.fd}{state})"

    def __str__(self) -> str:
        return str(self.fd)


if TYPE_CHECKING:
    # FdHandle is a FileLikeHandle: the type checker holds it to the protocol.
    _: type[FileLikeHandle] = FdHandle
