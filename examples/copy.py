"""Copy a file with several reads and writes in flight at once on one io_uring ring.

Usage::

    python examples/copy.py SOURCE DESTINATION

What it shows:

* a pipeline of positioned I/O: up to ``DEPTH`` operations (reads and writes together) are in
  flight at any time; each chunk is read at its offset and, as soon as its read completes,
  written at the same offset in the destination, so that completions may arrive in any order;
* short reads and short writes are continued where they stopped;
* :meth:`IoUring.prep_statx` for the source's size and mode, and :meth:`IoUring.prep_fsync`
  once every write has completed, so the copy is on disk when the program says it is done;
* failing cleanly: any error stops the copy, is reported on standard error as
  ``copy.py: error: ...``, and makes the exit status 1 (the ring cancels what is still in
  flight when it is closed).
"""

from __future__ import annotations

import stat
import sys

from century_ring import (
    AT_FDCWD,
    CompletionEvent,
    FileOpenFlag,
    FileOpenMode,
    IoUring,
    StatxResult,
    make_io_ring,
    raise_for_cqe,
)

#: Bytes per read.
CHUNK = 128 * 1024
#: Reads and writes in flight at once (so at most this many chunks are held in memory).
DEPTH = 16


class CopyError(Exception):
    """A failure worth one line on standard error."""


def run_until(ring: IoUring, user_data: int) -> CompletionEvent:
    """Submit and wait for one operation's completion, whatever its result."""
    while True:
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            if cqe.user_data == user_data:
                return cqe


def run_one(ring: IoUring, user_data: int, what: str) -> CompletionEvent:
    """Submit and wait for one operation's completion; a failure becomes a :class:`CopyError`."""
    cqe = run_until(ring, user_data)
    try:
        raise_for_cqe(cqe)
    except OSError as e:
        raise CopyError(f"{what}: {e.strerror}") from e
    return cqe


def copy_data(ring: IoUring, src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes from ``src`` to ``dst``, keeping up to ``DEPTH`` operations busy."""
    reads: dict[int, tuple[int, int]] = {}  # user_data -> (offset, length)
    writes: dict[int, tuple[int, bytes]] = {}  # user_data -> (offset, data)
    next_read = 0

    while next_read < size or reads or writes:
        while next_read < size and len(reads) + len(writes) < DEPTH:
            length = min(CHUNK, size - next_read)
            reads[ring.prep_read(src, length, next_read)] = (next_read, length)
            next_read += length
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            if cqe.user_data in reads:
                offset, length = reads.pop(cqe.user_data)
                try:
                    raise_for_cqe(cqe)
                except OSError as e:
                    raise CopyError(f"reading at offset {offset}: {e.strerror}") from e
                if cqe.result == 0:
                    raise CopyError(f"the source ended at {offset} bytes, not {size}")
                assert cqe.buffer is not None
                writes[ring.prep_write(dst, cqe.buffer, offset)] = (offset, cqe.buffer)
                if cqe.result < length:  # short read: read the rest of the chunk
                    rest = offset + cqe.result
                    reads[ring.prep_read(src, length - cqe.result, rest)] = (
                        rest,
                        length - cqe.result,
                    )
            else:
                offset, data = writes.pop(cqe.user_data)
                try:
                    raise_for_cqe(cqe)
                except OSError as e:
                    raise CopyError(f"writing at offset {offset}: {e.strerror}") from e
                if cqe.result < len(data):  # short write: write the rest
                    rest = data[cqe.result :]
                    writes[ring.prep_write(dst, rest, offset + cqe.result)] = (
                        offset + cqe.result,
                        rest,
                    )


def copy(source: str, destination: str) -> int:
    """Copy ``source`` to ``destination``; returns the number of bytes copied."""
    with make_io_ring(entries=2 * DEPTH) as ring:
        info = run_one(ring, ring.prep_statx(AT_FDCWD, source), source).extra
        assert isinstance(info, StatxResult)
        if not stat.S_ISREG(info.st_mode):
            raise CopyError(f"{source}: not a regular file")
        existing = run_until(ring, ring.prep_statx(AT_FDCWD, destination)).extra
        if isinstance(existing, StatxResult) and (existing.st_dev, existing.st_ino) == (
            info.st_dev,
            info.st_ino,
        ):
            raise CopyError(f"{source} and {destination} are the same file")
        src = run_one(
            ring, ring.prep_openat(AT_FDCWD, source, FileOpenMode.READ_ONLY), source
        ).result
        try:
            flags = {FileOpenFlag.CREATE_IF_NOT_EXISTS, FileOpenFlag.TRUNCATE}
            mode = stat.S_IMODE(info.st_mode)
            open_dst = ring.prep_openat(AT_FDCWD, destination, FileOpenMode.WRITE_ONLY, flags, mode)
            dst = run_one(ring, open_dst, destination).result
            try:
                copy_data(ring, src, dst, info.st_size)
                run_one(ring, ring.prep_fsync(dst), f"{destination}: fsync")
            finally:
                # Let the ring cancel whatever an error left in flight before closing.
                ring.prep_cancel()
                while ring.in_flight:
                    ring.submit_and_wait(1)
                    ring.get_completion_entries()
                run_one(ring, ring.prep_close(dst), f"{destination}: close")
        finally:
            ring.prep_close(src)
            ring.submit_and_wait(1)
            ring.get_completion_entries()
        return info.st_size


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python examples/copy.py SOURCE DESTINATION", file=sys.stderr)
        return 2
    try:
        copied = copy(argv[0], argv[1])
    except CopyError as e:
        print(f"copy.py: error: {e}", file=sys.stderr)
        return 1
    print(f"copied {copied} bytes from {argv[0]} to {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
