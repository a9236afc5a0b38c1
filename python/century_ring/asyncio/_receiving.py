"""How a stream transport's receive is queued: multishot on a buffer ring where the kernel has
both, else one receive at a time.

A multishot ``recv`` (Linux 6.0) on a provided buffer ring (5.19) stays armed for a
connection's life and posts one completion per arrival, into a buffer the kernel takes from the
ring when data comes, so idle connections hold no memory. On older kernels each receive owns a
buffer of its own and the transport queues the next one after each completion.
"""

from __future__ import annotations

from century_ring._century_ring import BufferRing, IoUring

__all__ = ["Receiver"]

#: The buffer ring transports receive into: its group id, buffers, and each buffer's size.
GROUP = 0
BUFFERS = 128
BUFFER_SIZE = 65536


class Receiver:
    """Queues receives on one ring for every transport of a loop."""

    def __init__(self, io_uring: IoUring) -> None:
        self._io_uring = io_uring
        #: Registered on first use: a loop without connections holds no buffers.
        self._buffers: BufferRing | None = None
        self._multishot = True

    def queue(self, fd: int) -> int:
        """Queue a receive on ``fd``; returns its ``user_data``. The completions say by
        :attr:`~century_ring.CompletionEvent.more` whether it stays armed."""
        ring = self._io_uring
        if self._buffers is None and self._multishot:
            try:
                self._buffers = ring.register_buffer_ring(GROUP, BUFFERS, BUFFER_SIZE)
            except (NotImplementedError, OSError):
                self._multishot = False
        if self._multishot:
            try:
                return ring.prep_recv(fd, 0, buffer_group=self._buffers, multishot=True)
            except NotImplementedError:
                self._multishot = False
        return ring.prep_recv(fd, BUFFER_SIZE)
