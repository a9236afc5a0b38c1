"""File handles: a descriptor that, once closed, can no longer reach whatever file gets its
number next, and the module paths code written for the public century-ring project uses."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import pytest
from century_ring import AT_FDCWD, FdHandle, FileLikeHandle, FileOpenMode, IoUring
from century_ring.handle import IntoFilelikeHandle
from conftest import DATA, collect, succeed

if TYPE_CHECKING:
    from typing_extensions import Self


def is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def open_handle(ring: IoUring, path: Path | str) -> FdHandle:
    return FdHandle.from_completion_event(
        succeed(ring, ring.prep_openat(AT_FDCWD, path, FileOpenMode.READ_ONLY))
    )


def assert_refused(ring: IoUring, call: object) -> ValueError:
    """``call()`` raises ValueError saying the handle is closed, and queues nothing."""
    before = (ring.pending_sq_entries, ring.in_flight)
    with pytest.raises(ValueError, match=r"handle .* is closed") as info:
        call()  # type: ignore[operator]
    assert (ring.pending_sq_entries, ring.in_flight) == before
    return info.value


def test_a_handle_is_taken_wherever_a_descriptor_is(ring: IoUring, data_file: Path) -> None:
    """Reads, writes and socket operations take a handle in place of the number."""
    with open_handle(ring, data_file) as handle:
        assert succeed(ring, ring.prep_read(handle, 8, 16)).buffer == DATA[16:24]
    a, b = socket.socketpair()
    with FdHandle(a.detach()) as left, b:
        assert succeed(ring, ring.prep_send(left, b"over")).result == 4
        assert b.recv(8) == b"over"
        b.send(b"back")
        assert succeed(ring, ring.prep_recv(left, 8)).buffer == b"back"


def test_from_completion_event_raises_for_a_failed_open(ring: IoUring, tmp_dir: Path) -> None:
    """A failed open gives no handle: the error raise_for_cqe raises for it."""
    failed = ring.prep_openat(AT_FDCWD, tmp_dir / "missing", FileOpenMode.READ_ONLY)
    with pytest.raises(FileNotFoundError):
        FdHandle.from_completion_event(collect(ring, [failed])[failed])


def test_a_closed_handle_never_reaches_the_next_file_with_its_number(
    ring: IoUring, data_file: Path, tmp_dir: Path
) -> None:
    """After close(), the number goes to the next open; the old handle is refused, so the read
    queued with it cannot read the new file."""
    handle = open_handle(ring, data_file)
    number = handle.fd
    handle.close()
    other = tmp_dir / "other"
    other.write_bytes(b"someone else's file")
    reused = os.open(other, os.O_RDONLY)
    try:
        assert reused == number, "the kernel gave the number to the next open"
        error = assert_refused(ring, lambda: ring.prep_read(handle, 8, 0))
        assert str(error).startswith(f"fd: the handle FdHandle(fd={number}, closed) is closed")
    finally:
        os.close(reused)


def test_prep_close_marks_the_handle_closed(ring: IoUring, data_file: Path, tmp_dir: Path) -> None:
    """A handle passed to prep_close is closed for every later use, and its own close() then
    does nothing: it must not close the file that got the number meanwhile."""
    handle = open_handle(ring, data_file)
    number = handle.fd
    assert succeed(ring, ring.prep_close(handle)).result == 0
    assert handle.close_called()
    assert not is_open(number)
    assert_refused(ring, lambda: ring.prep_read(handle, 1))
    assert_refused(ring, lambda: ring.prep_close(handle))
    (tmp_dir / "next").write_bytes(b"x")
    reused = os.open(tmp_dir / "next", os.O_RDONLY)
    try:
        assert reused == number
        handle.close()
        assert is_open(reused), "close() of a handle closed through the ring closed another file"
    finally:
        os.close(reused)


def test_a_close_that_is_refused_leaves_the_handle_open(data_file: Path) -> None:
    """If prep_close raises (the ring is closed), the handle is not marked closed: nothing was
    queued, and the descriptor is still the caller's to close."""
    from century_ring import make_io_ring

    with make_io_ring() as ring:
        handle = open_handle(ring, data_file)
    with pytest.raises(ValueError, match="ring is closed"):
        ring.prep_close(handle)
    assert not handle.close_called()
    assert is_open(handle.fd)
    handle.close()
    assert not is_open(handle.fd)


def test_handle_close_is_idempotent_and_a_context_manager(data_file: Path) -> None:
    """close() closes the descriptor once; a with block closes it; fileno() works until then."""
    fd = os.open(data_file, os.O_RDONLY)
    with FdHandle(fd) as handle:
        assert handle.fileno() == fd
        assert not handle.close_called()
    assert handle.close_called()
    assert not is_open(fd)
    handle.close()  # again: nothing
    with pytest.raises(ValueError, match="closed"):
        handle.fileno()
    marked = FdHandle(os.open(data_file, os.O_RDONLY))
    number = marked.fd
    marked.mark_closed()
    marked.close()  # a close was queued elsewhere: this one must not close the number
    assert is_open(number)
    os.close(number)


def test_handle_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        FdHandle("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FdHandle(True)
    with pytest.raises(ValueError, match="0 or more"):
        FdHandle(-1)


class BareHandle:
    """A FileLikeHandle of another library: an ``fd`` attribute, no fileno()."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False

    def as_handle(self) -> BareHandle:
        return self

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

    def close_called(self) -> bool:
        return self.closed

    def mark_closed(self) -> None:
        self.closed = True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def test_any_file_like_handle_is_taken(ring: IoUring, data_file: Path) -> None:
    """A handle of another implementation (the protocol's members, no fileno()) is read
    through, refused once closed, and marked closed by prep_close."""
    handle = BareHandle(os.open(data_file, os.O_RDONLY))
    assert isinstance(handle, FileLikeHandle)
    assert succeed(ring, ring.prep_read(handle, 4, 0)).buffer == DATA[:4]
    succeed(ring, ring.prep_close(handle))
    assert handle.close_called()
    assert_refused(ring, lambda: ring.prep_read(handle, 4, 0))


def test_fd_handle_meets_the_protocols() -> None:
    handle = FdHandle(0)
    assert isinstance(handle, FileLikeHandle)
    assert isinstance(handle, IntoFilelikeHandle)
    assert handle.as_handle() is handle
    handle.mark_closed()  # never close the test runner's stdin


def test_code_written_for_the_public_project_runs_unchanged(data_file: Path) -> None:
    """Its imports (make_io_ring from century_ring.ring, the enums from century_ring.enums,
    FdHandle from century_ring.handle) and its calls work as they are."""
    from century_ring.enums import FileOpenMode as Mode
    from century_ring.handle import FdHandle as Handle
    from century_ring.ring import make_io_ring

    with make_io_ring() as ring:
        ring.prep_openat(None, bytes(data_file), Mode.READ_ONLY)
        ring.submit_and_wait()
        handle = Handle.from_completion_event(ring.get_completion_entries()[0])
        with handle:
            ring.prep_read(handle, 8)
            ring.submit_and_wait()
            assert ring.get_completion_entries()[0].buffer == DATA[:8]
        with pytest.raises(ValueError):
            ring.prep_read(handle, 8)
