"""Century Ring: memory-safe Python bindings to Linux ``io_uring``.

The low-level API is synchronous: queue operations with the ``prep_*`` methods of an
:class:`IoUring`, submit them, and reap :class:`CompletionEvent` objects.
"""

from __future__ import annotations

from century_ring._century_ring import (
    ALLOC_FILE_INDEX,
    AT_FDCWD,
    BufferRing,
    CompletionEvent,
    IoUring,
    ProvidedBuffer,
    StatxResult,
    __version__,
    make_io_ring,
    make_sqe_flags,
)
from century_ring.enums import FileOpenFlag, FileOpenMode, ResolveFlag
from century_ring.handle import FdHandle, FileLikeHandle
from century_ring.helpers import raise_for_cqe

__all__ = [
    "ALLOC_FILE_INDEX",
    "AT_FDCWD",
    "BufferRing",
    "CompletionEvent",
    "FdHandle",
    "FileLikeHandle",
    "FileOpenFlag",
    "FileOpenMode",
    "IoUring",
    "ProvidedBuffer",
    "ResolveFlag",
    "StatxResult",
    "__version__",
    "make_io_ring",
    "make_sqe_flags",
    "raise_for_cqe",
]
