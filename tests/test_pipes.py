"""Making pipes through the ring (``prep_pipe``), used as a user would use ``os.pipe2``.

Every effect is observed from outside the library: data through ``os.write`` and ``os.read``,
descriptor flags through ``fcntl``, and the process's open descriptors in ``/proc/self/fd``.
The abuse cases close or drop the ring before the pipe's completion is reaped, many times
over, and check that no descriptor is left open and none the caller owns is closed.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import gc
import os
import resource
from collections.abc import Callable, Iterator

import pytest
from century_ring import (
    ALLOC_FILE_INDEX,
    CompletionEvent,
    IoUring,
    make_io_ring,
    make_sqe_flags,
    raise_for_cqe,
)
from conftest import collect, complete, drain, open_fd_count, succeed

FIXED = make_sqe_flags(fixed_file=True)
LINK = make_sqe_flags(io_link=True)
BAD_NUMBER = (ValueError, OverflowError)

#: How many times the races of closing a ring with a pipe un-reaped are run.
RACE_ROUNDS = 500


def skip_without_pipe(ring: IoUring) -> None:
    """Skip, with the library's own NotImplementedError message, unless the kernel has
    IORING_OP_PIPE (Linux 6.16)."""
    if ring.probe()["prep_pipe"]:
        return
    with pytest.raises(NotImplementedError) as info:
        ring.prep_pipe()
    pytest.skip(str(info.value))


@pytest.fixture
def pipe_ring(ring: IoUring) -> IoUring:
    """The default ring, on a kernel that can make pipes."""
    skip_without_pipe(ring)
    return ring


@pytest.fixture
def owned() -> Iterator[list[int]]:
    """Descriptors the ring handed over during a test, closed at its end if still open."""
    fds: list[int] = []
    yield fds
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def pair_of(cqe: CompletionEvent) -> tuple[int, int]:
    """The two ints a successful completion reports: descriptors, or with ``file_index``
    slots."""
    raise_for_cqe(cqe)
    assert cqe.result == 0
    assert cqe.buffer is None
    pair = cqe.extra
    assert isinstance(pair, tuple) and len(pair) == 2, pair
    first, second = pair
    assert isinstance(first, int) and isinstance(second, int)
    return first, second


def ends_of(cqe: CompletionEvent, owned: list[int]) -> tuple[int, int]:
    """The pipe a successful completion reports, which the test then owns."""
    read_fd, write_fd = pair_of(cqe)
    owned.extend((read_fd, write_fd))
    return read_fd, write_fd


def make_pipe(ring: IoUring, owned: list[int], flags: int = 0) -> tuple[int, int]:
    return ends_of(succeed(ring, ring.prep_pipe(flags)), owned)


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as err:
        assert err.errno == errno.EBADF
        return False
    return True


def refused(
    ring: IoUring,
    exc: type[BaseException] | tuple[type[BaseException], ...],
    match: str,
    call: Callable[[], object],
) -> None:
    """``call`` raises ``exc`` matching ``match``, queues nothing and opens no descriptor.

    A no-op is queued first, so that "nothing queued" is checked against a non-empty queue.
    """
    ring.prep_nop()
    before = (ring.pending_sq_entries, ring.in_flight, open_fd_count())
    with pytest.raises(exc, match=match):
        call()
    assert (ring.pending_sq_entries, ring.in_flight, open_fd_count()) == before
    drain(ring)


# --- making a pipe and using it --------------------------------------------------------------


def test_data_written_to_the_write_end_is_read_from_the_read_end(
    pipe_ring: IoUring, owned: list[int]
) -> None:
    read_fd, write_fd = make_pipe(pipe_ring, owned)
    assert read_fd != write_fd
    assert os.write(write_fd, b"through the ring's pipe") == 23
    assert os.read(read_fd, 100) == b"through the ring's pipe"
    # The ends are the right way round, as os.pipe() gives them.
    with pytest.raises(OSError) as info:
        os.write(read_fd, b"x")
    assert info.value.errno == errno.EBADF
    os.close(write_fd)
    assert os.read(read_fd, 100) == b"", "end of file once the write end is closed"


def test_both_ends_are_close_on_exec_and_blocking_by_default(
    pipe_ring: IoUring, owned: list[int]
) -> None:
    for fd in make_pipe(pipe_ring, owned):
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK


def test_o_nonblock_when_asked(pipe_ring: IoUring, owned: list[int]) -> None:
    read_fd, write_fd = make_pipe(pipe_ring, owned, os.O_NONBLOCK)
    for fd in (read_fd, write_fd):
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    with pytest.raises(BlockingIOError):
        os.read(read_fd, 10)
    os.write(write_fd, b"now")
    assert os.read(read_fd, 10) == b"now"


def test_o_direct_makes_a_packet_pipe(pipe_ring: IoUring, owned: list[int]) -> None:
    """In packet mode each write is read back as one packet, however much the read asks for."""
    read_fd, write_fd = make_pipe(pipe_ring, owned, os.O_DIRECT | os.O_NONBLOCK)
    os.write(write_fd, b"first")
    os.write(write_fd, b"second")
    assert os.read(read_fd, 100) == b"first"
    assert os.read(read_fd, 100) == b"second"
    # Packet mode belongs to the write end, as with os.pipe2.
    assert fcntl.fcntl(write_fd, fcntl.F_GETFL) & os.O_DIRECT


def test_o_cloexec_may_be_given_too(pipe_ring: IoUring, owned: list[int]) -> None:
    """Code ported from os.pipe2(os.O_CLOEXEC | ...) works unchanged."""
    read_fd, _ = make_pipe(pipe_ring, owned, os.O_CLOEXEC | os.O_NONBLOCK)
    assert fcntl.fcntl(read_fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert fcntl.fcntl(read_fd, fcntl.F_GETFL) & os.O_NONBLOCK


def test_many_pipes_at_once(pipe_ring: IoUring, owned: list[int]) -> None:
    """Pipes queued together each get their own two descriptors."""
    uds = [pipe_ring.prep_pipe() for _ in range(32)]
    got = collect(pipe_ring, uds)
    pipes = [ends_of(got[ud], owned) for ud in uds]
    assert len(set(owned)) == 64
    for i, (_, write_fd) in enumerate(pipes):
        os.write(write_fd, bytes([i]))
    for i, (read_fd, _) in enumerate(pipes):
        assert os.read(read_fd, 10) == bytes([i])


def test_linked_after_a_failure_it_is_cancelled_and_makes_nothing(pipe_ring: IoUring) -> None:
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    before = open_fd_count()
    bad = pipe_ring.prep_close(fd, sqe_flags=LINK)
    pipe = pipe_ring.prep_pipe()
    got = collect(pipe_ring, [bad, pipe])
    assert got[bad].result == -errno.EBADF
    assert got[pipe].result == -errno.ECANCELED
    assert got[pipe].extra is None
    assert open_fd_count() == before


@pytest.mark.skipif(
    "vgpreload" in os.environ.get("LD_PRELOAD", ""),
    reason="valgrind keeps setrlimit(RLIMIT_NOFILE) to itself: the kernel never sees the limit",
)
def test_out_of_descriptors_is_emfile_with_no_pipe(pipe_ring: IoUring) -> None:
    """With room for one descriptor only, the pipe fails with -EMFILE and leaves none open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    first_free = next(n for n in range(soft) if not is_open(n))
    second_free = next(n for n in range(first_free + 1, soft + 1) if not is_open(n))
    before = open_fd_count()
    resource.setrlimit(resource.RLIMIT_NOFILE, (second_free, hard))
    try:
        cqe = complete(pipe_ring, pipe_ring.prep_pipe())
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert cqe.result == -errno.EMFILE
    assert cqe.extra is None
    assert open_fd_count() == before
    assert not is_open(first_free)


# --- bad arguments ---------------------------------------------------------------------------


def test_bad_flags_are_refused_before_anything_is_queued(pipe_ring: IoUring) -> None:
    for flags in (os.O_APPEND, os.O_EXCL, os.O_NONBLOCK | os.O_TRUNC, 1, 1 << 30):
        refused(pipe_ring, ValueError, "flags", functools.partial(pipe_ring.prep_pipe, flags))
    refused(pipe_ring, BAD_NUMBER, "flags", lambda: pipe_ring.prep_pipe(-1))
    refused(pipe_ring, BAD_NUMBER, "flags", lambda: pipe_ring.prep_pipe(2**40))
    refused(pipe_ring, TypeError, "flags", lambda: pipe_ring.prep_pipe("O_NONBLOCK"))  # type: ignore[arg-type]
    refused(pipe_ring, TypeError, "flags", lambda: pipe_ring.prep_pipe(2.0))  # type: ignore[arg-type]


# --- closing or dropping the ring before the pipe is reaped ----------------------------------


def test_closing_the_ring_closes_a_pipe_never_reaped() -> None:
    before = open_fd_count()
    ring = make_io_ring()
    skip_without_pipe(ring)
    ring.prep_pipe()
    ring.submit_and_wait(1)  # the pipe exists: its completion is ready, not reaped
    assert open_fd_count() == before + 3, "the ring and the pipe's two ends"
    ring.close()
    assert open_fd_count() == before


@pytest.mark.parametrize("how", ["close", "with", "drop"])
def test_closing_the_ring_with_pipes_unreaped_leaves_no_descriptor_open(how: str) -> None:
    """Queue, submit, and close (or leave the ``with`` block, or drop the ring) without
    reaping, many times over: the descriptor count comes back to where it started."""
    with make_io_ring() as probe_ring:
        skip_without_pipe(probe_ring)
    before = open_fd_count()
    for i in range(RACE_ROUNDS):
        if how == "with":
            with make_io_ring() as ring:
                ring.prep_pipe(os.O_NONBLOCK if i % 2 else 0)
                ring.submit()
            continue
        ring = make_io_ring()
        ring.prep_pipe()
        if i % 3:
            ring.prep_pipe()  # and a second one, sometimes
        if i % 5:
            ring.submit()  # sometimes still queued when the ring goes
        if how == "close":
            ring.close()
        else:
            del ring
            gc.collect()
    assert open_fd_count() == before


def test_a_reaped_pipe_stays_open_after_the_ring_is_closed(owned: list[int]) -> None:
    """Once its completion has reported the pipe, it is the caller's: closing or dropping
    the ring closes nothing the caller holds."""
    before = open_fd_count()
    for how in ("close", "drop"):
        ring = make_io_ring()
        skip_without_pipe(ring)
        read_fd, write_fd = ends_of(succeed(ring, ring.prep_pipe()), owned)
        ring.prep_pipe()  # another, never reaped: the ring closes that one
        ring.submit_and_wait(1)
        if how == "close":
            ring.close()
        else:
            del ring
            gc.collect()
        assert is_open(read_fd) and is_open(write_fd)
        os.write(write_fd, b"still mine")
        assert os.read(read_fd, 100) == b"still mine"
    assert open_fd_count() == before + 4
    for fd in owned:
        os.close(fd)
    owned.clear()
    assert open_fd_count() == before


# --- into registered file slots --------------------------------------------------------------


def test_into_given_slots_the_write_end_takes_the_next(pipe_ring: IoUring) -> None:
    pipe_ring.register_files_sparse(4)
    before = open_fd_count()
    assert pair_of(complete(pipe_ring, pipe_ring.prep_pipe(file_index=1))) == (1, 2)
    assert open_fd_count() == before, "slots are no descriptors"
    write = pipe_ring.prep_write(2, b"slot to slot", sqe_flags=FIXED)
    assert succeed(pipe_ring, write).result == 12
    assert succeed(pipe_ring, pipe_ring.prep_read(1, 100, sqe_flags=FIXED)).buffer == (
        b"slot to slot"
    )


def test_into_slots_the_kernel_picks(pipe_ring: IoUring) -> None:
    pipe_ring.register_files_sparse(4)
    read_slot, write_slot = pair_of(
        complete(pipe_ring, pipe_ring.prep_pipe(file_index=ALLOC_FILE_INDEX))
    )
    assert read_slot != write_slot
    assert {read_slot, write_slot} <= set(range(4))
    succeed(pipe_ring, pipe_ring.prep_write(write_slot, b"picked", sqe_flags=FIXED))
    got = succeed(pipe_ring, pipe_ring.prep_read(read_slot, 100, sqe_flags=FIXED))
    assert got.buffer == b"picked"


def test_slot_numbers_are_never_closed_as_descriptors() -> None:
    """A pipe into slots, never reaped: closing the ring leaves open the descriptors whose
    numbers happen to be those slots."""
    bystander_r, bystander_w = os.pipe()
    try:
        for _ in range(50):
            ring = make_io_ring()
            skip_without_pipe(ring)
            ring.register_files_sparse(max(bystander_r, bystander_w) + 2)
            ring.prep_pipe(file_index=bystander_r)
            ring.prep_pipe(file_index=ALLOC_FILE_INDEX)
            ring.submit_and_wait(2)
            ring.close()
            assert is_open(bystander_r) and is_open(bystander_w)
        os.write(bystander_w, b"untouched")
        assert os.read(bystander_r, 100) == b"untouched"
    finally:
        os.close(bystander_r)
        os.close(bystander_w)


def test_file_index_is_checked_before_anything_is_queued(pipe_ring: IoUring) -> None:
    refused(pipe_ring, ValueError, "register_files", lambda: pipe_ring.prep_pipe(file_index=0))
    refused(
        pipe_ring,
        ValueError,
        "register_files",
        lambda: pipe_ring.prep_pipe(file_index=ALLOC_FILE_INDEX),
    )
    pipe_ring.register_files_sparse(4)
    refused(pipe_ring, ValueError, "file_index 4", lambda: pipe_ring.prep_pipe(file_index=4))
    # The read end would fit in the last slot, but the write end would not.
    refused(
        pipe_ring,
        ValueError,
        "file_index: the write end's slot 4 is out of range",
        lambda: pipe_ring.prep_pipe(file_index=3),
    )
    refused(pipe_ring, ValueError, "file_index", lambda: pipe_ring.prep_pipe(file_index=-1))
    refused(pipe_ring, ValueError, "file_index", lambda: pipe_ring.prep_pipe(file_index=2**32))
    refused(pipe_ring, TypeError, "file_index", lambda: pipe_ring.prep_pipe(file_index="0"))  # type: ignore[arg-type]
