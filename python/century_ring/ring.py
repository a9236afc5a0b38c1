"""The ring, under the module path code written for the public century-ring project imports it
from (``from century_ring.ring import make_io_ring``). The same names are in
:mod:`century_ring` itself."""

from __future__ import annotations

from century_ring._century_ring import AT_FDCWD, CompletionEvent, IoUring, make_io_ring

__all__ = ["AT_FDCWD", "CompletionEvent", "IoUring", "make_io_ring"]
