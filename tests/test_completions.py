"""Reaping completions: their attributes, order, errors, overflow, waiting, flags and eventfds."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import threading
import time
from pathlib import Path

import pytest
from century_ring import (
    CompletionEvent,
    FileOpenFlag,
    FileOpenMode,
    IoUring,
    make_io_ring,
    make_sqe_flags,
    raise_for_cqe,
)
from conftest import DATA, collect, complete, delayed_writer, drain, succeed

# --- CompletionEvent ------------------------------------------------------------------------


@pytest.fixture
def a_cqe(ring: IoUring, data_fd: int) -> CompletionEvent:
    """A real completion: an 8-byte read at offset 16 of the data file."""
    return succeed(ring, ring.prep_read(data_fd, 8, 16))


def test_completion_attributes(a_cqe: CompletionEvent) -> None:
    """A completion carries result, user_data, buffer and flags of the right types."""
    assert isinstance(a_cqe, CompletionEvent)
    assert type(a_cqe.result) is int
    assert a_cqe.result == 8
    assert type(a_cqe.user_data) is int
    assert a_cqe.buffer == DATA[16:24]
    assert type(a_cqe.flags) is int


def test_repeated_and_changing_results_are_each_right(ring: IoUring, data_fd: int) -> None:
    """Results that repeat, change and come back (the ring reuses the int of a repeated one)
    are each the operation's own byte count, as is every failure among them."""
    sizes = [1000, 1000, 300, 300, 1000, 0, 4096, 4096, 300]
    queued = {ring.prep_read(data_fd, size, 0): size for size in sizes}
    bad = ring.prep_read(2**31 - 1, 300, 0)  # no such descriptor
    got = collect(ring, [*queued, bad])
    for user_data, size in queued.items():
        assert got[user_data].result == size
        assert got[user_data].buffer == DATA[:size]
    assert got[bad].result == -errno.EBADF


@pytest.mark.parametrize("attr", ["result", "user_data", "buffer", "flags"])
def test_completion_attributes_are_read_only(a_cqe: CompletionEvent, attr: str) -> None:
    """The user cannot overwrite or delete a completion's attributes."""
    before = getattr(a_cqe, attr)
    with pytest.raises(AttributeError):
        setattr(a_cqe, attr, 1234)
    with pytest.raises((AttributeError, TypeError)):
        delattr(a_cqe, attr)
    assert getattr(a_cqe, attr) == before


def test_completion_repr_is_readable(a_cqe: CompletionEvent) -> None:
    """repr() names the class and shows the result and user_data."""
    text = repr(a_cqe)
    assert "CompletionEvent" in text
    assert str(a_cqe.result) in text
    assert str(a_cqe.user_data) in text
    assert "object at 0x" not in text


def test_user_data_unique_and_matching(ring: IoUring, data_fd: int) -> None:
    """Each queued operation gets a distinct user_data, and its completion carries it back."""
    uds = {ring.prep_read(data_fd, 16, off): off for off in range(0, len(DATA), 16)}
    assert len(uds) == len(DATA) // 16
    assert all(type(ud) is int for ud in uds)
    got = collect(ring, uds)
    assert got.keys() == uds.keys()
    for ud, off in uds.items():
        assert got[ud].buffer == DATA[off : off + 16]


def test_user_data_unique_across_kinds_and_batches(ring: IoUring, data_fd: int) -> None:
    """user_data stays unique among not-yet-completed operations over many batches."""
    pending: set[int] = set()
    for batch in range(20):
        for i in range(10):
            ud = (
                ring.prep_read(data_fd, 4, i)
                if i % 2
                else ring.prep_write(data_fd, DATA[i : i + 4], i)
            )
            assert ud not in pending, f"user_data {ud} reused while in flight (batch {batch})"
            pending.add(ud)
        if batch % 3 == 2:
            for ud in collect(ring, pending):
                pending.discard(ud)
    collect(ring, pending)


def test_completions_come_oldest_first(ring: IoUring) -> None:
    """get_completion_entries returns completions in the order they completed."""
    pipes = [os.pipe() for _ in range(3)]
    try:
        uds = [ring.prep_read(r, 10) for r, _ in pipes]
        ring.submit()
        order = [2, 0, 1]
        for n, which in enumerate(order, start=1):
            os.write(pipes[which][1], b"data%d" % which)
            ring.submit_and_wait(n)
        got = ring.get_completion_entries()
        assert [c.user_data for c in got] == [uds[i] for i in order]
        assert [c.buffer for c in got] == [b"data%d" % i for i in order]
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)


def test_get_completion_entries_empty_when_none_ready(ring: IoUring) -> None:
    """With nothing completed, get_completion_entries returns an empty list at once."""
    assert ring.get_completion_entries() == []
    r, w = os.pipe()
    try:
        ring.prep_read(r, 1)
        ring.submit()
        t0 = time.monotonic()
        assert ring.get_completion_entries() == []
        assert time.monotonic() - t0 < 1.0
        os.write(w, b"!")
        drain(ring)
    finally:
        os.close(r)
        os.close(w)


def test_completion_reaped_only_once(ring: IoUring, data_fd: int) -> None:
    """A completion is handed out once; the next call does not repeat it."""
    ud = ring.prep_read(data_fd, 1, 0)
    ring.submit_and_wait(1)
    first = ring.get_completion_entries()
    assert [c.user_data for c in first] == [ud]
    assert ring.get_completion_entries() == []


# --- nothing lost when memory runs out --------------------------------------------------------

try:
    import _testcapi as _testcapi  # CPython's test module: makes chosen allocations fail
except ImportError:  # pragma: no cover - a CPython built without its test modules
    _testcapi = None

needs_nomemory = pytest.mark.skipif(
    _testcapi is None or not hasattr(_testcapi, "set_nomemory"),
    reason="this CPython has no _testcapi.set_nomemory to make allocations fail",
)


def reap_while_allocation_fails(
    ring: IoUring, at: int, failures: int = 1
) -> list[CompletionEvent] | None:
    """``get_completion_entries()`` with ``failures`` allocations in a row failing, from the
    ``at``-th CPython makes during the call; None if it raised MemoryError."""
    assert _testcapi is not None
    _testcapi.set_nomemory(at, at + failures)
    try:
        return ring.get_completion_entries()
    except MemoryError:
        return None
    finally:
        _testcapi.remove_mem_hooks()


def reap_everything_despite_failures(
    ring: IoUring, count: int, failures: int = 1
) -> tuple[dict[int, CompletionEvent], int]:
    """Reaps until ``count`` completions have arrived, making ``failures`` allocations in a row
    fail in each call, from the first in the first call, the second in the next, and so on.
    Returns the completions by user_data (failing if one arrives twice) and how many calls
    came back short (raised, or returned fewer than were ready)."""
    got: dict[int, CompletionEvent] = {}
    short = 0
    at = 0
    while len(got) < count:
        assert at < 10_000, f"only {len(got)} of {count} completions after {at} calls"
        ready = count - len(got)
        events = reap_while_allocation_fails(ring, at, failures)
        at += 1
        if events is None or len(events) < ready:
            short += 1
        for event in events or []:
            assert event.user_data not in got, f"{event!r} delivered twice"
            got[event.user_data] = event
    return got, short


@needs_nomemory
def test_reads_reaped_while_allocations_fail_lose_nothing(ring: IoUring, data_fd: int) -> None:
    """Whichever allocation fails while completions become events (their bytes, their ints, the
    events themselves, the list), every read is still delivered exactly once, with its data,
    by a later call; and the ring ends with nothing in flight."""
    offsets = {ring.prep_read(data_fd, 64, offset): offset for offset in range(0, 1280, 64)}
    ring.submit_and_wait(len(offsets))
    got, short = reap_everything_despite_failures(ring, len(offsets))
    assert short > 0, "no allocation failure reached the reap: the test tested nothing"
    for user_data, offset in offsets.items():
        assert got[user_data].result == 64
        assert got[user_data].buffer == DATA[offset : offset + 64]
    assert ring.in_flight == 0
    assert ring.get_completion_entries() == []


@needs_nomemory
def test_reads_reaped_while_two_allocations_in_a_row_fail_lose_nothing(
    ring: IoUring, data_fd: int
) -> None:
    """When the allocation after a failed one fails too (the shorter list the call returns
    instead), the events already made are kept, and delivered by a later call, in order."""
    offsets = {ring.prep_read(data_fd, 64, offset): offset for offset in range(0, 1280, 64)}
    ring.submit_and_wait(len(offsets))
    got, short = reap_everything_despite_failures(ring, len(offsets), failures=2)
    assert short > 0
    assert list(got) == list(offsets), "delivered out of order"
    for user_data, offset in offsets.items():
        assert got[user_data].buffer == DATA[offset : offset + 64]
    assert ring.in_flight == 0


@needs_nomemory
def test_reap_with_no_memory_at_all_raises_and_keeps_everything(
    ring: IoUring, data_fd: int
) -> None:
    """When no allocation succeeds, the call raises MemoryError and takes nothing: the next
    call delivers every completion."""
    queued = [ring.prep_read(data_fd, 8, 8 * i) for i in range(10)]
    ring.submit_and_wait(len(queued))
    assert _testcapi is not None
    # Nothing may allocate while every allocation fails, pytest.raises included.
    raised = False
    _testcapi.set_nomemory(0, 0)
    try:
        ring.get_completion_entries()
    except MemoryError:
        raised = True
    finally:
        _testcapi.remove_mem_hooks()
    assert raised
    assert ring.in_flight == len(queued)
    got = {c.user_data: c for c in ring.get_completion_entries()}
    assert sorted(got) == sorted(queued)
    assert [got[ud].buffer for ud in queued] == [DATA[8 * i : 8 * i + 8] for i in range(10)]


@needs_nomemory
def test_datagrams_and_senders_reaped_while_allocations_fail_lose_nothing(ring: IoUring) -> None:
    """recvfrom's data and the sender's address (a tuple of a str and an int) survive failed
    allocations: each datagram arrives once, with the right sender."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        sender.bind(("127.0.0.1", 0))
        sender_address = sender.getsockname()
        messages = [f"datagram {i}".encode() for i in range(8)]
        for message in messages:
            sender.sendto(message, receiver.getsockname())
        queued = [ring.prep_recvfrom(receiver, 64) for _ in messages]
        ring.submit_and_wait(len(queued))
        got, short = reap_everything_despite_failures(ring, len(queued))
    assert short > 0
    assert sorted(got[ud].buffer or b"" for ud in queued) == sorted(messages)
    assert {got[ud].extra for ud in queued} == {sender_address}


@needs_nomemory
def test_pipes_reaped_while_allocations_fail_leak_no_descriptor(ring: IoUring) -> None:
    """A pipe's two descriptors reach the caller once, whatever allocation fails on the way,
    and none is left open that nobody was told of."""
    if not ring.probe()["prep_pipe"]:
        with pytest.raises(NotImplementedError) as info:
            ring.prep_pipe()
        pytest.skip(str(info.value))
    before = len(os.listdir("/proc/self/fd"))
    queued = [ring.prep_pipe() for _ in range(6)]
    ring.submit_and_wait(len(queued))
    got, short = reap_everything_despite_failures(ring, len(queued))
    assert short > 0
    ends = [fd for ud in queued for fd in got[ud].extra]
    assert len(set(ends)) == 12
    for read_end, write_end in (got[ud].extra for ud in queued):
        os.write(write_end, b"through")
        assert os.read(read_end, 16) == b"through"
    for fd in ends:
        os.close(fd)
    assert len(os.listdir("/proc/self/fd")) == before


@needs_nomemory
def test_provided_buffers_reaped_while_allocations_fail_keep_their_data(ring: IoUring) -> None:
    """A receive into a provided buffer ring whose event fails to be made keeps its buffer out
    of the ring: the event made again later shows the data, and the ring counts each buffer
    once (none handed back twice, none lost)."""
    try:
        group = ring.register_buffer_ring(1, 8, 64)
    except NotImplementedError as err:
        pytest.skip(str(err))
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with sender, receiver, group:
        messages = [f"message {i}".encode() for i in range(5)]
        for message in messages:
            sender.send(message)
        queued = [ring.prep_recv(receiver, 0, buffer_group=group) for _ in messages]
        ring.submit_and_wait(len(queued))
        got, short = reap_everything_despite_failures(ring, len(queued))
        assert short > 0
        provided = [got[ud].provided_buffer for ud in queued]
        assert sorted(p.tobytes() for p in provided if p is not None) == sorted(messages)
        assert group.available == 8 - len(messages)
        # The ring has 3 buffers left, and the kernel fills only those: had a failed attempt
        # handed a held buffer back, a fourth message would land in it instead of failing.
        later = [f"later {i}".encode() for i in range(4)]
        for message in later:
            sender.send(message)
        again = [ring.prep_recv(receiver, 0, buffer_group=group) for _ in later]
        ring.submit_and_wait(len(again))
        more = [c for c in ring.get_completion_entries() if c.user_data in again]
        filled = [c.provided_buffer for c in more if c.result > 0]
        assert sorted(c.result for c in more) == [-errno.ENOBUFS, 7, 7, 7]
        assert sorted(p.tobytes() for p in provided if p is not None) == sorted(messages)
        for buffer in filled:
            assert buffer is not None
            buffer.release()
        for buffer in provided:
            assert buffer is not None
            buffer.release()
        assert group.available == 8


# --- raise_for_cqe --------------------------------------------------------------------------


def test_raise_for_cqe_returns_none_on_success(ring: IoUring, data_fd: int) -> None:
    """raise_for_cqe returns None for a zero or positive result."""
    assert raise_for_cqe(complete(ring, ring.prep_read(data_fd, 10, 0))) is None
    assert raise_for_cqe(complete(ring, ring.prep_read(data_fd, 10, len(DATA)))) is None


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [
        (errno.ENOENT, FileNotFoundError),
        (errno.EEXIST, FileExistsError),
        (errno.ENOTDIR, NotADirectoryError),
        (errno.EISDIR, IsADirectoryError),
    ],
)
def test_raise_for_cqe_maps_open_errors(
    ring: IoUring, tmp_dir: Path, code: int, exc_type: type[OSError]
) -> None:
    """A failed open raises the OSError subclass Python uses, with errno and strerror."""
    existing = tmp_dir / "file"
    existing.write_bytes(b"x")
    path = {
        errno.ENOENT: str(tmp_dir / "missing"),
        errno.EEXIST: str(existing),
        errno.ENOTDIR: str(existing / "below"),
        errno.EISDIR: str(tmp_dir),
    }[code]
    mode = FileOpenMode.READ_ONLY if code != errno.EISDIR else FileOpenMode.WRITE_ONLY
    flags = {FileOpenFlag.MUST_CREATE} if code == errno.EEXIST else None
    cqe = complete(ring, ring.prep_openat(None, path, mode, flags))
    assert cqe.result == -code
    with pytest.raises(exc_type) as info:
        raise_for_cqe(cqe)
    assert type(info.value) is exc_type
    assert info.value.errno == code
    assert info.value.strerror == os.strerror(code)


def test_raise_for_cqe_ebadf_is_plain_oserror(ring: IoUring) -> None:
    """EBADF has no subclass: raise_for_cqe raises OSError itself, errno set."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    cqe = complete(ring, ring.prep_read(fd, 1))
    with pytest.raises(OSError) as info:
        raise_for_cqe(cqe)
    assert type(info.value) is OSError
    assert info.value.errno == errno.EBADF
    assert info.value.strerror == os.strerror(errno.EBADF)


def test_raise_for_cqe_broken_pipe(ring: IoUring) -> None:
    """Writing to a pipe whose reader is gone raises BrokenPipeError (EPIPE)."""
    r, w = os.pipe()
    os.close(r)
    try:
        cqe = complete(ring, ring.prep_write(w, b"lost"))
    finally:
        os.close(w)
    assert cqe.result == -errno.EPIPE
    with pytest.raises(BrokenPipeError) as info:
        raise_for_cqe(cqe)
    assert info.value.errno == errno.EPIPE


# --- CQ overflow ----------------------------------------------------------------------------


def test_cq_overflow_loses_nothing(data_fd: int) -> None:
    """A tiny ring (4 SQ, 8 CQ) with hundreds of operations returns every completion."""
    with make_io_ring(entries=4, cq_size=8) as ring:
        expected: dict[int, bytes] = {}
        for i in range(400):
            off = (i * 7) % (len(DATA) - 8)
            expected[ring.prep_read(data_fd, 8, off)] = DATA[off : off + 8]
        ring.submit()
        got = collect(ring, expected)
        assert got.keys() == expected.keys()
        for ud, want in expected.items():
            assert got[ud].result == 8
            assert got[ud].buffer == want
        assert ring.in_flight == 0
        assert ring.get_completion_entries() == []


def test_cq_overflow_without_waiting_in_between(data_fd: int) -> None:
    """Overflow while the user never reaps: one get_completion_entries loop still gets all."""
    with make_io_ring(entries=4, cq_size=8) as ring:
        uds = set()
        for i in range(300):
            uds.add(ring.prep_write(data_fd, DATA[i % 256 : i % 256 + 1], i % 256))
        ring.submit()
        got: list[CompletionEvent] = []
        deadline = time.monotonic() + 10
        while len(got) < len(uds) and time.monotonic() < deadline:
            got.extend(ring.get_completion_entries())
            if len(got) < len(uds):
                ring.submit_and_wait_with_timeout(0.1)
        assert sorted(c.user_data for c in got) == sorted(uds)
        assert all(c.result == 1 for c in got)


# --- submit_and_wait ------------------------------------------------------------------------


def test_submit_and_wait_returns_number_submitted(ring: IoUring, data_fd: int) -> None:
    """submit_and_wait submits what is queued and returns how many it submitted."""
    ring.prep_read(data_fd, 1, 0)
    ring.prep_read(data_fd, 1, 1)
    assert ring.submit_and_wait(2) == 2
    assert len(ring.get_completion_entries()) == 2
    assert ring.pending_sq_entries == 0


def test_submit_and_wait_blocks_until_count_ready(ring: IoUring) -> None:
    """submit_and_wait(count) returns only once ``count`` completions are ready."""
    pipes = [os.pipe() for _ in range(3)]
    writers = []
    try:
        uds = [ring.prep_read(r, 10) for r, _ in pipes]
        writers = [delayed_writer(pipes[0][1], 0.1), delayed_writer(pipes[1][1], 0.3)]
        t0 = time.monotonic()
        assert ring.submit_and_wait(2) == 3
        elapsed = time.monotonic() - t0
        got = ring.get_completion_entries()
        assert [c.user_data for c in got] == uds[:2]
        assert elapsed >= 0.2, f"returned after {elapsed:.3f} s, before the second write"
        os.write(pipes[2][1], b"z")
        assert [c.user_data for c in collect(ring, uds[2:]).values()] == uds[2:]
    finally:
        for p in writers:
            p.wait()
        for r, w in pipes:
            os.close(r)
            os.close(w)


def test_submit_and_wait_counts_already_ready(ring: IoUring, data_fd: int) -> None:
    """Completions already waiting count toward ``count``: no need for new ones."""
    ring.prep_read(data_fd, 1, 0)
    ring.submit_and_wait(1)
    t0 = time.monotonic()
    assert ring.submit_and_wait(1) == 0
    assert time.monotonic() - t0 < 1.0
    assert len(ring.get_completion_entries()) == 1


# --- submit_and_wait_with_timeout -----------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "nsec", "expected"),
    [(0.2, 0, 0.2), (0, 200_000_000, 0.2), (1, 0, 1.0), (0.1, 100_000_000, 0.2)],
)
def test_timeout_returns_after_timeout_when_nothing_completes(
    ring: IoUring, pipe: tuple[int, int], seconds: float, nsec: int, expected: float
) -> None:
    """With nothing completing, the wait returns after about the timeout, and adds nothing."""
    ud = ring.prep_read(pipe[0], 10)
    t0 = time.monotonic()
    assert ring.submit_and_wait_with_timeout(seconds, nsec) == 1
    elapsed = time.monotonic() - t0
    assert expected * 0.9 <= elapsed < expected + 2.0
    assert ring.get_completion_entries() == []
    assert ring.in_flight == 1
    os.write(pipe[1], b"after")
    [cqe] = collect(ring, [ud]).values()
    assert cqe.buffer == b"after"
    assert ring.get_completion_entries() == []


def test_timeout_zero_does_not_block(ring: IoUring, pipe: tuple[int, int]) -> None:
    """A zero timeout only submits and looks."""
    ring.prep_read(pipe[0], 10)
    t0 = time.monotonic()
    assert ring.submit_and_wait_with_timeout(0) == 1
    assert time.monotonic() - t0 < 1.0
    os.write(pipe[1], b"x")
    drain(ring)


def test_timeout_returns_early_when_something_completes(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    """The wait ends as soon as a completion is ready, long before the timeout."""
    ud = ring.prep_read(pipe[0], 10)
    writer = delayed_writer(pipe[1], 0.1, b"soon")
    try:
        t0 = time.monotonic()
        ring.submit_and_wait_with_timeout(30)
        elapsed = time.monotonic() - t0
    finally:
        writer.wait()
    assert elapsed < 10
    [cqe] = ring.get_completion_entries()
    assert cqe.user_data == ud
    assert cqe.buffer == b"soon"


def test_timeouts_leave_nothing_behind(ring: IoUring, pipe: tuple[int, int]) -> None:
    """Many timed-out waits produce no stray completions and don't cut later waits short."""
    ud = ring.prep_read(pipe[0], 10)
    ring.submit()
    for _ in range(20):
        ring.submit_and_wait_with_timeout(0, 5_000_000)
        assert ring.get_completion_entries() == []
    assert ring.in_flight == 1
    assert ring.pending_sq_entries == 0
    # A later, longer wait really waits its full time.
    for wait in (0.3, 0.5):
        t0 = time.monotonic()
        ring.submit_and_wait_with_timeout(wait)
        elapsed = time.monotonic() - t0
        assert elapsed >= wait * 0.9, f"a {wait} s wait returned after {elapsed:.3f} s"
        assert ring.get_completion_entries() == []
    os.write(pipe[1], b"!")
    got = collect(ring, [ud])
    assert list(got) == [ud]
    # Nothing else ever turns up.
    assert ring.submit_and_wait_with_timeout(0.1) == 0
    assert ring.get_completion_entries() == []
    assert ring.in_flight == 0


def test_timeout_after_completed_work_waits_again(ring: IoUring, data_fd: int) -> None:
    """After the completions are reaped, the next timed wait with nothing in flight waits."""
    succeed(ring, ring.prep_read(data_fd, 1, 0))
    t0 = time.monotonic()
    assert ring.submit_and_wait_with_timeout(0.2) == 0
    assert time.monotonic() - t0 >= 0.18
    assert ring.get_completion_entries() == []


# --- SQE flags ------------------------------------------------------------------------------

FLAG_NAMES = [
    "fixed_file",
    "io_drain",
    "io_link",
    "io_hardlink",
    "io_async",
    "buffer_select",
    "skip_success",
]


def test_make_sqe_flags_default_is_zero() -> None:
    """No flags asked for gives 0."""
    assert make_sqe_flags() == 0


def test_make_sqe_flags_each_is_its_own_bit() -> None:
    """Each flag sets one distinct bit, and combining flags ORs them."""
    bits = {name: make_sqe_flags(**{name: True}) for name in FLAG_NAMES}
    for name, value in bits.items():
        assert type(value) is int
        assert value > 0 and value & (value - 1) == 0, f"{name} is not a single bit"
    assert len(set(bits.values())) == len(bits)
    everything = make_sqe_flags(**dict.fromkeys(FLAG_NAMES, True))
    combined = 0
    for v in bits.values():
        combined |= v
    assert everything == combined
    assert make_sqe_flags(io_link=True, io_async=True) == bits["io_link"] | bits["io_async"]


def test_make_sqe_flags_positional_order() -> None:
    """The positional order is fixed_file, io_drain, io_link, io_hardlink, io_async, ..."""
    assert make_sqe_flags(False, False, True) == make_sqe_flags(io_link=True)
    assert make_sqe_flags(False, False, False, False, True) == make_sqe_flags(io_async=True)


def test_io_link_chain_write_read_close(ring: IoUring, tmp_dir: Path) -> None:
    """A linked write -> read -> close runs in order: the read sees the write."""
    path = tmp_dir / "linked"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    link = make_sqe_flags(io_link=True)
    w = ring.prep_write(fd, b"linked data", 0, sqe_flags=link)
    # Exactly 11 bytes: a short read would break the chain, as in io_uring itself.
    r = ring.prep_read(fd, 11, 0, sqe_flags=link)
    c = ring.prep_close(fd)
    got = collect(ring, [w, r, c])
    assert got[w].result == 11
    assert got[r].buffer == b"linked data"
    assert got[c].result == 0
    with pytest.raises(OSError):
        os.fstat(fd)


def test_io_link_failure_cancels_the_rest(ring: IoUring, data_fd: int) -> None:
    """When a linked operation fails, the rest of the chain completes with -ECANCELED."""
    bad = os.open("/dev/null", os.O_RDONLY)
    os.close(bad)
    link = make_sqe_flags(io_link=True)
    first = ring.prep_read(bad, 4, sqe_flags=link)
    second = ring.prep_read(data_fd, 4, 0)
    got = collect(ring, [first, second])
    assert got[first].result == -errno.EBADF
    assert got[second].result == -errno.ECANCELED
    assert got[second].buffer is None


def test_io_async_and_drain_still_work(ring: IoUring, data_fd: int) -> None:
    """io_async and io_drain change scheduling, not results."""
    a = ring.prep_read(data_fd, 4, 0, sqe_flags=make_sqe_flags(io_async=True))
    d = ring.prep_read(data_fd, 4, 4, sqe_flags=make_sqe_flags(io_drain=True))
    got = collect(ring, [a, d])
    assert got[a].buffer == DATA[0:4]
    assert got[d].buffer == DATA[4:8]


def test_skip_success_close_posts_no_completion(ring: IoUring, data_file: Path) -> None:
    """skip_success is allowed on close: a successful close posts no completion."""
    fd = os.open(data_file, os.O_RDONLY)
    ring.prep_close(fd, sqe_flags=make_sqe_flags(skip_success=True))
    ring.submit_and_wait_with_timeout(0.2)
    assert ring.get_completion_entries() == []
    with pytest.raises(OSError):
        os.fstat(fd)


def test_skip_success_close_failure_still_completes(ring: IoUring) -> None:
    """With skip_success, a close that fails still posts its error."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    ud = ring.prep_close(fd, sqe_flags=make_sqe_flags(skip_success=True))
    assert complete(ring, ud).result == -errno.EBADF


def test_skip_success_create_socket_allowed(ring: IoUring) -> None:
    """skip_success is allowed on create_socket: the successful create posts no completion."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    before = _socket_fds()
    ring.prep_create_socket(
        socket.AF_INET, socket.SOCK_STREAM, sqe_flags=make_sqe_flags(skip_success=True)
    )
    ring.submit_and_wait_with_timeout(0.2)
    assert ring.get_completion_entries() == []
    created = _socket_fds() - before
    assert len(created) == 1, "the socket was not created"
    for fd in created:
        os.close(fd)


def _socket_fds() -> set[int]:
    out = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                out.add(int(name))
        except FileNotFoundError:
            pass
    return out


# --- register_eventfd -----------------------------------------------------------------------


def _is_eventfd(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    except FileNotFoundError:
        return False


def test_register_eventfd_creates_nonblocking_cloexec_eventfd(ring: IoUring, data_fd: int) -> None:
    """register_eventfd() makes a non-blocking, close-on-exec eventfd that a completion signals."""
    efd = ring.register_eventfd()
    assert type(efd) is int
    assert _is_eventfd(efd)
    assert fcntl.fcntl(efd, fcntl.F_GETFL) & os.O_NONBLOCK
    assert fcntl.fcntl(efd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    with pytest.raises(BlockingIOError):
        os.read(efd, 8)
    ud = ring.prep_read(data_fd, 4, 0)
    ring.submit()
    readable, _, _ = select.select([efd], [], [], 10)
    assert readable == [efd]
    assert int.from_bytes(os.read(efd, 8), "little") >= 1
    assert [c.user_data for c in collect(ring, [ud]).values()] == [ud]


def test_register_eventfd_is_closed_with_the_ring() -> None:
    """The eventfd the ring made belongs to the ring and is closed with it."""
    with make_io_ring() as ring:
        efd = ring.register_eventfd()
        assert _is_eventfd(efd)
    assert not _is_eventfd(efd)


def test_register_own_eventfd(ring: IoUring, data_fd: int) -> None:
    """The user may register an eventfd of their own; it is signalled on completion."""
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    try:
        assert ring.register_eventfd(efd) == efd
        ring.prep_read(data_fd, 4, 0)
        ring.submit()
        readable, _, _ = select.select([efd], [], [], 10)
        assert readable == [efd]
        assert int.from_bytes(os.read(efd, 8), "little") >= 1
        drain(ring)
    finally:
        os.close(efd)


def test_register_eventfd_wakes_a_selector_thread(ring: IoUring, pipe: tuple[int, int]) -> None:
    """An event loop can sleep in select() on the eventfd and wake when a completion lands."""
    efd = ring.register_eventfd()
    ud = ring.prep_read(pipe[0], 5)
    ring.submit()
    woke = threading.Event()

    def waiter() -> None:
        if select.select([efd], [], [], 10)[0]:
            woke.set()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    assert not woke.is_set()
    os.write(pipe[1], b"wake!")
    t.join(15)
    assert woke.is_set()
    assert collect(ring, [ud])[ud].buffer == b"wake!"


def test_register_non_eventfd_is_oserror(ring: IoUring, pipe: tuple[int, int]) -> None:
    """Registering a descriptor that is not an eventfd raises OSError."""
    with pytest.raises(OSError):
        ring.register_eventfd(pipe[0])


def test_nop_completes_with_zero_and_no_buffer(ring: IoUring) -> None:
    """prep_nop: a completion with result 0 and nothing else, for measuring and waking."""
    assert ring.probe()["prep_nop"] is True
    ids = [ring.prep_nop() for _ in range(5)]
    got = collect(ring, ids)
    assert sorted(got) == sorted(ids)
    assert all(c.result == 0 and c.buffer is None for c in got.values())
    assert ring.in_flight == 0


def test_reused_read_buffers_return_only_fresh_bytes(ring: IoUring, tmp_dir: Path) -> None:
    """Read buffers are recycled between operations; a short read after a full one returns
    exactly the bytes it read, never leftovers of the earlier read."""
    full = tmp_dir / "full.bin"
    full.write_bytes(b"a" * 4096)
    short = tmp_dir / "short.bin"
    short.write_bytes(b"b" * 10)
    full_fd = os.open(full, os.O_RDONLY)
    short_fd = os.open(short, os.O_RDONLY)
    try:
        for _ in range(3):
            assert succeed(ring, ring.prep_read(full_fd, 4096, 0)).buffer == b"a" * 4096
            assert succeed(ring, ring.prep_read(short_fd, 4096, 0)).buffer == b"b" * 10
            assert succeed(ring, ring.prep_read(short_fd, 4096, 4096)).buffer == b""
    finally:
        os.close(full_fd)
        os.close(short_fd)
