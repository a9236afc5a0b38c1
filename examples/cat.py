"""Print files to standard output, reading them through one io_uring ring.

Usage::

    python examples/cat.py FILE...

What it shows:

* opening, reading and closing files with :meth:`IoUring.prep_openat`,
  :meth:`IoUring.prep_read` and :meth:`IoUring.prep_close`;
* keeping several reads in flight at once, each at its own offset, and putting their
  completions (which may arrive in any order) back in order before printing;
* handling short reads (a read that returns fewer bytes than asked is continued where it
  stopped) and end of file (a read that returns 0 bytes);
* reporting a failed operation the way Python does, with :func:`raise_for_cqe`.

Like ``cat``, a file that cannot be read is reported on standard error and the others are still
printed; the exit status is then 1. Files that are not regular files (pipes, terminals,
``/dev/stdin``) are read sequentially, one read at a time, since they have no offsets.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import BinaryIO

from century_ring import (
    AT_FDCWD,
    CompletionEvent,
    FileOpenMode,
    IoUring,
    make_io_ring,
    raise_for_cqe,
)

#: Bytes asked for by each read.
CHUNK = 64 * 1024
#: Reads kept in flight at once for one file.
DEPTH = 8


def wait_for(ring: IoUring, user_data: int) -> CompletionEvent:
    """Submit, then wait until the completion of ``user_data`` arrives (nothing else is queued)."""
    while True:
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            if cqe.user_data == user_data:
                return cqe


def copy_sequential(ring: IoUring, fd: int, out: BinaryIO) -> None:
    """Copy a descriptor without offsets (a pipe, a terminal) one read at a time."""
    while True:
        cqe = wait_for(ring, ring.prep_read(fd, CHUNK))
        raise_for_cqe(cqe)
        if cqe.result == 0:
            return
        assert cqe.buffer is not None
        out.write(cqe.buffer)


def copy_regular(ring: IoUring, fd: int, out: BinaryIO) -> None:
    """Copy a regular file, keeping up to ``DEPTH`` reads in flight at increasing offsets."""
    in_flight: dict[int, tuple[int, int]] = {}  # user_data -> (offset, length)
    pieces: dict[int, bytes] = {}  # offset -> data read there, not printed yet
    next_read = 0  # offset of the next new read
    next_out = 0  # offset of the next byte to print
    eof: int | None = None  # where the file ends, once a read has found it

    def queue(offset: int, length: int) -> None:
        in_flight[ring.prep_read(fd, length, offset)] = (offset, length)

    while True:
        # Top up: new reads beyond the last one, until the end of the file is known.
        while eof is None and len(in_flight) < DEPTH:
            queue(next_read, CHUNK)
            next_read += CHUNK
        if not in_flight:
            break
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            offset, length = in_flight.pop(cqe.user_data)
            raise_for_cqe(cqe)
            if cqe.result == 0:
                # End of file at this offset (reads beyond it also return 0).
                eof = offset if eof is None else min(eof, offset)
                continue
            assert cqe.buffer is not None
            pieces[offset] = cqe.buffer
            if cqe.result < length:
                # A short read: continue where it stopped (it returns 0 at end of file).
                queue(offset + cqe.result, length - cqe.result)
        # Print whatever is now contiguous with what was printed before.
        while next_out in pieces:
            data = pieces.pop(next_out)
            out.write(data)
            next_out += len(data)
    if pieces:
        raise RuntimeError(f"internal error: data past the end of the file at {sorted(pieces)}")


def cat(ring: IoUring, path: str, out: BinaryIO) -> None:
    """Open ``path`` through the ring, print it, and close it through the ring."""
    cqe = wait_for(ring, ring.prep_openat(AT_FDCWD, path, FileOpenMode.READ_ONLY))
    raise_for_cqe(cqe)
    fd = cqe.result
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            copy_regular(ring, fd, out)
        else:
            copy_sequential(ring, fd, out)
    finally:
        # Drain anything still in flight on this descriptor before closing it.
        while ring.in_flight:
            ring.submit_and_wait(1)
            ring.get_completion_entries()
        raise_for_cqe(wait_for(ring, ring.prep_close(fd)))


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python examples/cat.py FILE...", file=sys.stderr)
        return 2
    status = 0
    out = sys.stdout.buffer
    try:
        with make_io_ring() as ring:
            for path in argv:
                try:
                    cat(ring, path, out)
                except BrokenPipeError:
                    raise
                except OSError as e:
                    out.flush()
                    print(f"cat.py: {path}: {e.strerror or e}", file=sys.stderr)
                    status = 1
        out.flush()
    except BrokenPipeError:
        # The reader went away (``cat.py FILE | head``): stop quietly, as cat does. Point
        # stdout at /dev/null so that the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
