"""Bad arguments: each raises the right exception, names the argument, and queues nothing."""

from __future__ import annotations

import enum
import errno
import ipaddress
import os
import re
import socket
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from century_ring import (
    AT_FDCWD,
    FileOpenFlag,
    FileOpenMode,
    IoUring,
    make_io_ring,
    make_sqe_flags,
)
from century_ring._century_ring import _operations
from conftest import DATA, collect, drain, succeed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SKIP_SUCCESS_MESSAGE = "Can't use 'SKIP_SUCCESS' on submissions with owned data"
BAD_NUMBER = (ValueError, OverflowError)


@dataclass
class Env:
    """Descriptors and paths a test hands to the ring."""

    file_fd: int
    dir_fd: int
    path: str
    sock4: socket.socket
    sock6: socket.socket


@pytest.fixture
def env(tmp_dir: Path) -> Iterator[Env]:
    path = tmp_dir / "target"
    path.write_bytes(b"0123456789" * 10)
    file_fd = os.open(path, os.O_RDWR)
    dir_fd = os.open(tmp_dir, os.O_RDONLY | os.O_DIRECTORY)
    s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        yield Env(file_fd, dir_fd, str(path), s4, s6)
    finally:
        s4.close()
        s6.close()
        os.close(file_fd)
        os.close(dir_fd)


class Fileno:
    """An object whose fileno() returns whatever it was given."""

    def __init__(self, fd: Any) -> None:
        self.fd = fd

    def fileno(self) -> Any:
        return self.fd


Call = Callable[[IoUring, Env], object]


def assert_refused(
    ring: IoUring,
    env: Env,
    call: Call,
    exc: type[BaseException] | tuple[type[BaseException], ...],
    match: str,
) -> BaseException:
    """Run ``call`` with one valid operation already queued: it must raise and queue nothing."""
    queued = ring.prep_read(env.file_fd, 4, 0)
    pending, in_flight = ring.pending_sq_entries, ring.in_flight
    with pytest.raises(exc) as info:
        call(ring, env)
    assert re.search(match, str(info.value)), f"{str(info.value)!r} does not match {match!r}"
    assert ring.pending_sq_entries == pending, "a refused call queued an entry"
    assert ring.in_flight == in_flight, "a refused call left an operation in flight"
    got = collect(ring, [queued])
    assert list(got) == [queued], "a refused call produced a completion"
    assert ring.in_flight == 0
    return info.value


@dataclass(frozen=True)
class Bad:
    """One wrong call, the exception it must raise, and what its message must mention."""

    call: Call
    exc: type[BaseException] | tuple[type[BaseException], ...]
    match: str


RO = FileOpenMode.READ_ONLY

BAD_CALLS: dict[str, Bad] = {
    # prep_read
    "read fd=-1": Bad(lambda r, e: r.prep_read(-1, 10), ValueError, "fd"),
    "read fd=-100": Bad(lambda r, e: r.prep_read(-100, 10), ValueError, "fd"),
    "read fileno()=-1": Bad(lambda r, e: r.prep_read(Fileno(-1), 10), ValueError, "fd"),
    "read fd=str": Bad(lambda r, e: r.prep_read("3", 10), TypeError, "fd"),
    "read fd=None": Bad(lambda r, e: r.prep_read(None, 10), TypeError, "fd"),
    "read fd=float": Bad(lambda r, e: r.prep_read(3.0, 10), TypeError, "fd"),
    "read fd=2**64": Bad(lambda r, e: r.prep_read(2**64, 10), BAD_NUMBER, "fd"),
    "read byte_count=-1": Bad(lambda r, e: r.prep_read(e.file_fd, -1), ValueError, "byte_count"),
    "read byte_count=2**31": Bad(
        lambda r, e: r.prep_read(e.file_fd, 2**31), ValueError, "byte_count"
    ),
    "read byte_count=2**64": Bad(
        lambda r, e: r.prep_read(e.file_fd, 2**64), ValueError, "byte_count"
    ),
    "read byte_count=-2**70": Bad(
        lambda r, e: r.prep_read(e.file_fd, -(2**70)), ValueError, "byte_count"
    ),
    "read byte_count=str": Bad(lambda r, e: r.prep_read(e.file_fd, "10"), TypeError, "byte_count"),
    "read offset=-2": Bad(lambda r, e: r.prep_read(e.file_fd, 10, -2), ValueError, "offset"),
    "read offset=-2**63": Bad(
        lambda r, e: r.prep_read(e.file_fd, 10, -(2**63)), ValueError, "offset"
    ),
    "read offset=2**64": Bad(lambda r, e: r.prep_read(e.file_fd, 10, 2**64), BAD_NUMBER, "offset"),
    # prep_write
    "write fd=-1": Bad(lambda r, e: r.prep_write(-1, b"x"), ValueError, "fd"),
    "write buffer=int": Bad(lambda r, e: r.prep_write(e.file_fd, 12), TypeError, "buffer"),
    "write buffer=str": Bad(lambda r, e: r.prep_write(e.file_fd, "text"), TypeError, "buffer"),
    "write buffer=None": Bad(lambda r, e: r.prep_write(e.file_fd, None), TypeError, "buffer"),
    "write file_offset=-2": Bad(
        lambda r, e: r.prep_write(e.file_fd, b"x", -2), ValueError, "file_offset"
    ),
    "write count past end": Bad(
        lambda r, e: r.prep_write(e.file_fd, b"0123456789", 0, 11), ValueError, "can't write"
    ),
    "write count+offset past end": Bad(
        lambda r, e: r.prep_write(e.file_fd, b"0123456789", 0, 5, 6),
        ValueError,
        "can't write|out of range",
    ),
    "write buffer_offset past end": Bad(
        lambda r, e: r.prep_write(e.file_fd, b"0123456789", 0, None, 11),
        ValueError,
        "out of range",
    ),
    "write buffer_offset huge": Bad(
        lambda r, e: r.prep_write(e.file_fd, b"0123456789", 0, None, 2**62),
        (ValueError, OverflowError),
        "out of range|buffer_offset",
    ),
    "write count=-1": Bad(
        lambda r, e: r.prep_write(e.file_fd, b"0123456789", 0, -1), BAD_NUMBER, "count"
    ),
    "write buffer_offset=-1": Bad(
        lambda r, e: r.prep_write(e.file_fd, b"0123456789", 0, None, -1),
        BAD_NUMBER,
        "buffer_offset",
    ),
    # prep_openat
    "openat None+relative path": Bad(
        lambda r, e: r.prep_openat(None, "relative", RO), ValueError, "path"
    ),
    "openat -1+relative path": Bad(
        lambda r, e: r.prep_openat(-1, "relative", RO), ValueError, "path"
    ),
    "openat relative_to=-5": Bad(
        lambda r, e: r.prep_openat(-5, "relative", RO), ValueError, "relative_to"
    ),
    "openat relative_to=str": Bad(
        lambda r, e: r.prep_openat("dir", e.path, RO), TypeError, "relative_to"
    ),
    "openat NUL in str path": Bad(
        lambda r, e: r.prep_openat(None, e.path + "\0x", RO), ValueError, "path"
    ),
    "openat NUL in bytes path": Bad(
        lambda r, e: r.prep_openat(AT_FDCWD, b"a\0b", RO), ValueError, "path"
    ),
    "openat NUL in Path": Bad(
        lambda r, e: r.prep_openat(AT_FDCWD, Path("a\0b"), RO), ValueError, "path"
    ),
    "openat path=int": Bad(lambda r, e: r.prep_openat(AT_FDCWD, 123, RO), TypeError, "path"),
    "openat path=None": Bad(lambda r, e: r.prep_openat(AT_FDCWD, None, RO), TypeError, "path"),
    "openat TEMPORARY_FILE+CREATE": Bad(
        lambda r, e: r.prep_openat(
            e.dir_fd,
            ".",
            FileOpenMode.READ_WRITE,
            {FileOpenFlag.TEMPORARY_FILE, FileOpenFlag.CREATE_IF_NOT_EXISTS},
        ),
        ValueError,
        "(?i)flags|temporary_file|o_tmpfile",
    ),
    "openat TEMPORARY_FILE+MUST_CREATE": Bad(
        lambda r, e: r.prep_openat(
            e.dir_fd,
            ".",
            FileOpenMode.READ_WRITE,
            [FileOpenFlag.MUST_CREATE, FileOpenFlag.TEMPORARY_FILE],
        ),
        ValueError,
        "(?i)flags|temporary_file|o_tmpfile",
    ),
    "openat open_mode=str": Bad(
        lambda r, e: r.prep_openat(None, e.path, "r"), (TypeError, ValueError), "open_mode"
    ),
    "openat flags=[str]": Bad(
        lambda r, e: r.prep_openat(None, e.path, RO, ["x"]), (TypeError, ValueError), "flags"
    ),
    "openat flags=int-not-iterable": Bad(
        lambda r, e: r.prep_openat(None, e.path, RO, 3.5), (TypeError, ValueError), "flags"
    ),
    "openat permissions=-1": Bad(
        lambda r, e: r.prep_openat(None, e.path, RO, None, -1), BAD_NUMBER, "permissions"
    ),
    # prep_create_socket
    "socket domain=str": Bad(
        lambda r, e: r.prep_create_socket("inet", socket.SOCK_STREAM), TypeError, "domain"
    ),
    "socket type=None": Bad(
        lambda r, e: r.prep_create_socket(socket.AF_INET, None), TypeError, "type"
    ),
    # prep_connect_v4
    "connect_v4 fd=-1": Bad(lambda r, e: r.prep_connect_v4(-1, "127.0.0.1", 80), ValueError, "fd"),
    "connect_v4 unparsable": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "not an address", 80), ValueError, "address"
    ),
    "connect_v4 octet>255": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "256.0.0.1", 80), ValueError, "address"
    ),
    "connect_v4 too few octets": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "127.1", 80), ValueError, "address"
    ),
    "connect_v4 empty": Bad(lambda r, e: r.prep_connect_v4(e.sock4, "", 80), ValueError, "address"),
    "connect_v4 v6 string": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "::1", 80), ValueError, "address"
    ),
    "connect_v4 IPv6Address": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, ipaddress.IPv6Address("::1"), 80),
        (TypeError, ValueError),
        "address",
    ),
    "connect_v4 address=int": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, 2130706433, 80), (TypeError, ValueError), "address"
    ),
    "connect_v4 port=-1": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "127.0.0.1", -1), BAD_NUMBER, "port"
    ),
    "connect_v4 port=65536": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "127.0.0.1", 65536), BAD_NUMBER, "port"
    ),
    "connect_v4 port=2**70": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "127.0.0.1", 2**70), BAD_NUMBER, "port"
    ),
    "connect_v4 port=str": Bad(
        lambda r, e: r.prep_connect_v4(e.sock4, "127.0.0.1", "80"), TypeError, "port"
    ),
    # prep_connect_v6
    "connect_v6 fd=-1": Bad(lambda r, e: r.prep_connect_v6(-1, "::1", 80), ValueError, "fd"),
    "connect_v6 v4 string": Bad(
        lambda r, e: r.prep_connect_v6(e.sock6, "1.2.3.4", 80), ValueError, "address"
    ),
    "connect_v6 unparsable": Bad(
        lambda r, e: r.prep_connect_v6(e.sock6, "::g", 80), ValueError, "address"
    ),
    "connect_v6 IPv4Address": Bad(
        lambda r, e: r.prep_connect_v6(e.sock6, ipaddress.IPv4Address("1.2.3.4"), 80),
        (TypeError, ValueError),
        "address",
    ),
    "connect_v6 port=65536": Bad(
        lambda r, e: r.prep_connect_v6(e.sock6, "::1", 65536), BAD_NUMBER, "port"
    ),
    "connect_v6 port=-1": Bad(
        lambda r, e: r.prep_connect_v6(e.sock6, "::1", -1), BAD_NUMBER, "port"
    ),
    # prep_send
    "send fd=-1": Bad(lambda r, e: r.prep_send(-1, b"x"), ValueError, "fd"),
    "send buffer=str": Bad(lambda r, e: r.prep_send(e.sock4, "text"), TypeError, "buffer"),
    "send count past end": Bad(
        lambda r, e: r.prep_send(e.sock4, b"0123456789", 11), ValueError, "can't write"
    ),
    "send buffer_offset past end": Bad(
        lambda r, e: r.prep_send(e.sock4, b"0123456789", None, 11), ValueError, "out of range"
    ),
    "send count+offset past end": Bad(
        lambda r, e: r.prep_send(e.sock4, b"0123456789", 8, 3),
        ValueError,
        "can't write|out of range",
    ),
    # prep_recv
    "recv fd=-1": Bad(lambda r, e: r.prep_recv(-1, 10), ValueError, "fd"),
    "recv byte_count=-1": Bad(lambda r, e: r.prep_recv(e.sock4, -1), ValueError, "byte_count"),
    "recv byte_count=2**31": Bad(
        lambda r, e: r.prep_recv(e.sock4, 2**31), ValueError, "byte_count"
    ),
    "recv byte_count=2**64": Bad(
        lambda r, e: r.prep_recv(e.sock4, 2**64), ValueError, "byte_count"
    ),
    # prep_close
    "close fd=-1": Bad(lambda r, e: r.prep_close(-1), ValueError, "fd"),
    "close fd=-100": Bad(lambda r, e: r.prep_close(AT_FDCWD), ValueError, "fd"),
    "close fileno()=-7": Bad(lambda r, e: r.prep_close(Fileno(-7)), ValueError, "fd"),
    "close fileno()=str": Bad(lambda r, e: r.prep_close(Fileno("3")), TypeError, "fd"),
    # waiting and eventfds
    "timeout seconds=-1": Bad(
        lambda r, e: r.submit_and_wait_with_timeout(-1), ValueError, "seconds"
    ),
    "timeout seconds=-0.5": Bad(
        lambda r, e: r.submit_and_wait_with_timeout(-0.5), ValueError, "seconds"
    ),
    "timeout nsec=-1": Bad(lambda r, e: r.submit_and_wait_with_timeout(0, -1), BAD_NUMBER, "nsec"),
    "timeout seconds=str": Bad(
        lambda r, e: r.submit_and_wait_with_timeout("1"), TypeError, "seconds"
    ),
    "register_eventfd fd=-1": Bad(lambda r, e: r.register_eventfd(-1), ValueError, "event_fd"),
}


@pytest.mark.parametrize("case", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_argument_is_refused(ring: IoUring, env: Env, case: Bad) -> None:
    """Each wrong argument raises the right exception naming it, and queues nothing."""
    assert_refused(ring, env, case.call, case.exc, case.match)


# --- sqe_flags ------------------------------------------------------------------------------


def _valid_calls() -> dict[str, Callable[[IoUring, Env, int], object]]:
    """A well-formed call of every seed op, taking the sqe_flags to try."""
    return {
        "prep_openat": lambda r, e, f: r.prep_openat(None, e.path, RO, sqe_flags=f),
        "prep_read": lambda r, e, f: r.prep_read(e.file_fd, 4, 0, sqe_flags=f),
        "prep_write": lambda r, e, f: r.prep_write(e.file_fd, b"abc", 0, sqe_flags=f),
        "prep_create_socket": lambda r, e, f: r.prep_create_socket(
            socket.AF_INET, socket.SOCK_STREAM, sqe_flags=f
        ),
        "prep_connect_v4": lambda r, e, f: r.prep_connect_v4(e.sock4, "127.0.0.1", 9, sqe_flags=f),
        "prep_connect_v6": lambda r, e, f: r.prep_connect_v6(e.sock6, "::1", 9, sqe_flags=f),
        "prep_send": lambda r, e, f: r.prep_send(e.sock4, b"x", sqe_flags=f),
        "prep_recv": lambda r, e, f: r.prep_recv(e.sock4, 4, sqe_flags=f),
        "prep_close": lambda r, e, f: r.prep_close(e.file_fd, sqe_flags=f),
    }


OPS = list(_valid_calls())
#: The seed operations whose row in the operation table says they own memory.
OWNING_OPS = [op["method"] for op in _operations() if op["method"] in OPS and op["owns"]]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bits", [1 << 7, 1 << 8, 1 << 31, 1 << 40], ids=hex)
def test_unknown_sqe_flag_bits_refused(ring: IoUring, env: Env, op: str, bits: int) -> None:
    """sqe_flags with bits make_sqe_flags never produces raise ValueError naming sqe_flags."""
    call = _valid_calls()[op]
    assert_refused(ring, env, lambda r, e: call(r, e, bits), ValueError, "sqe_flags")


@pytest.mark.parametrize("op", OPS)
def test_negative_sqe_flags_refused(ring: IoUring, env: Env, op: str) -> None:
    """A negative sqe_flags is refused."""
    call = _valid_calls()[op]
    assert_refused(ring, env, lambda r, e: call(r, e, -1), BAD_NUMBER, "sqe_flags")


@pytest.mark.parametrize("op", OPS)
def test_buffer_select_refused_on_seed_ops(ring: IoUring, env: Env, op: str) -> None:
    """No seed operation can use a provided buffer group: buffer_select raises ValueError."""
    call = _valid_calls()[op]
    flags = make_sqe_flags(buffer_select=True)
    assert_refused(
        ring, env, lambda r, e: call(r, e, flags), ValueError, "(?i)buffer.?select|sqe_flags"
    )


@pytest.mark.parametrize("op", OWNING_OPS)
def test_skip_success_refused_on_owning_ops(ring: IoUring, env: Env, op: str) -> None:
    """Operations that own memory refuse skip_success with the documented message."""
    call = _valid_calls()[op]
    for flags in (
        make_sqe_flags(skip_success=True),
        make_sqe_flags(skip_success=True, io_async=True),
    ):
        err = assert_refused(
            ring, env, lambda r, e, f=flags: call(r, e, f), ValueError, "SKIP_SUCCESS"
        )
        assert str(err) == SKIP_SUCCESS_MESSAGE


def test_sqe_flags_none_and_zero_are_no_flags(ring: IoUring, env: Env) -> None:
    """sqe_flags=None and sqe_flags=0 both mean no flags."""
    uds = [
        ring.prep_read(env.file_fd, 4, 0, sqe_flags=None),
        ring.prep_read(env.file_fd, 4, 0, sqe_flags=0),
    ]
    for cqe in collect(ring, uds).values():
        assert cqe.buffer == b"0123"


def test_refused_call_with_autosubmit_off_keeps_queue(env: Env) -> None:
    """A refused call on an autosubmit=False ring leaves its queue exactly as it was."""
    with make_io_ring(entries=4, autosubmit=False) as ring:
        ring.prep_read(env.file_fd, 4, 0)
        ring.prep_read(env.file_fd, 4, 4)
        for case in ("read byte_count=-1", "write count past end", "openat NUL in str path"):
            with pytest.raises(BAD_CALLS[case].exc):
                BAD_CALLS[case].call(ring, env)
        assert ring.pending_sq_entries == 2
        assert ring.in_flight == 2
        assert ring.submit() == 2
        drain(ring)


def test_int_subclasses_are_taken_as_the_ints_they_are(ring: IoUring, data_fd: int) -> None:
    """Integer arguments accept subclasses of int (an IntEnum, bool, a user's subclass) with
    their int value, like plain ints; the largest descriptor is in range."""

    class Size(enum.IntEnum):
        EIGHT = 8

    class Descriptor(int):
        pass

    cqe = succeed(ring, ring.prep_read(Descriptor(data_fd), Size.EIGHT, True))
    assert (cqe.result, cqe.buffer) == (8, DATA[1:9])
    got = collect(ring, [ring.prep_read(2**31 - 1, 8, 0)])
    assert [event.result for event in got.values()] == [-errno.EBADF]  # the largest fd is taken


# --- hypothesis: whatever is thrown at a prep call ------------------------------------------

ALLOWED = (ValueError, TypeError, OverflowError, OSError)

junk = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.floats(allow_nan=True),
    st.binary(max_size=8),
    st.builds(object),
)
huge_or_negative = st.one_of(
    st.integers(min_value=-(2**80), max_value=-1),
    st.integers(min_value=2**31, max_value=2**80),
    st.sampled_from([-1, -2, -100, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64]),
)
anything_int = st.one_of(st.integers(min_value=-5, max_value=200), huge_or_negative, junk)


@dataclass
class Fuzz:
    """What the hypothesis tests work on: a ring and descriptors that are safe to hit."""

    ring: IoUring
    dir: Path
    file_fd: int
    null_fd: int
    dir_fd: int
    closed_fd: int


@pytest.fixture
def fuzz(ring: IoUring, tmp_dir: Path) -> Iterator[Fuzz]:
    path = tmp_dir / "fuzz"
    path.write_bytes(bytes(range(256)) * 4)
    file_fd = os.open(path, os.O_RDWR)
    null_fd = os.open("/dev/null", os.O_RDWR)
    dir_fd = os.open(tmp_dir, os.O_RDONLY | os.O_DIRECTORY)
    cwd = os.getcwd()
    os.chdir(tmp_dir)  # relative paths land in the scratch directory, nowhere else
    try:
        yield Fuzz(ring, tmp_dir, file_fd, null_fd, dir_fd, closed_fd=1 << 20)
    finally:
        os.chdir(cwd)
        for fd in (file_fd, null_fd, dir_fd):
            os.close(fd)


def fd_choices(f: Fuzz) -> st.SearchStrategy[Any]:
    """Descriptors it is safe to read or write, plus junk.

    Never a small arbitrary number: that could be a pipe or socket that blocks forever, or a
    file of pytest's that a write would corrupt.
    """
    real = st.sampled_from([f.file_fd, f.null_fd, f.closed_fd, Fileno(f.file_fd)])
    bad = st.one_of(huge_or_negative, junk)
    return st.one_of(real, bad, st.builds(Fileno, bad))


def check_prep(f: Fuzz, call: Callable[[], int]) -> int | None:
    """The property: a prep call either queues one op that completes, or raises and queues nothing.

    Returns the completion's result when the call was accepted.
    """
    ring = f.ring
    pending, in_flight = ring.pending_sq_entries, ring.in_flight
    try:
        ud = call()
    except ALLOWED:
        assert ring.pending_sq_entries == pending
        assert ring.in_flight == in_flight
        return None
    assert type(ud) is int
    assert ring.in_flight == in_flight + 1
    cqe = collect(ring, [ud], timeout=10)[ud]
    assert ring.in_flight == in_flight
    if cqe.buffer is not None:
        assert len(cqe.buffer) == cqe.result
    return cqe.result


FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

byte_counts = st.one_of(st.integers(min_value=-5, max_value=70000), huge_or_negative, junk)


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_prep_read(fuzz: Fuzz, data: st.DataObject) -> None:
    """prep_read with arbitrary fd/byte_count/offset never crashes or half-queues."""
    fd = data.draw(fd_choices(fuzz), "fd")
    count = data.draw(byte_counts, "byte_count")
    offset = data.draw(anything_int, "offset")
    check_prep(fuzz, lambda: fuzz.ring.prep_read(fd, count, offset))


buffers = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(bytearray),
    st.binary(max_size=300).map(memoryview),
    junk,
)


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_prep_write(fuzz: Fuzz, data: st.DataObject) -> None:
    """prep_write with arbitrary fd/buffer/offsets never crashes or half-queues."""
    fd = data.draw(st.one_of(st.sampled_from([fuzz.null_fd, fuzz.closed_fd]), fd_choices(fuzz)))
    buffer = data.draw(buffers, "buffer")
    file_offset = data.draw(
        st.one_of(st.integers(min_value=-3, max_value=1 << 20), anything_int), "file_offset"
    )
    count = data.draw(st.one_of(st.none(), st.integers(min_value=-3, max_value=400), anything_int))
    buffer_offset = data.draw(
        st.one_of(st.none(), st.integers(min_value=-3, max_value=400), anything_int)
    )
    check_prep(fuzz, lambda: fuzz.ring.prep_write(fd, buffer, file_offset, count, buffer_offset))


safe_names = st.text(
    alphabet=string.ascii_letters + string.digits + "._-é ", min_size=1, max_size=20
).filter(lambda s: s not in (".", ".."))


def openat_paths(f: Fuzz) -> st.SearchStrategy[Any]:
    """Only names inside the scratch directory (we are root: never anywhere else)."""
    inside = safe_names.map(lambda n: str(f.dir / n))
    return st.one_of(
        safe_names,
        inside,
        inside.map(os.fsencode),
        inside.map(Path),
        st.just(str(f.dir)),
        st.just(""),
        safe_names.map(lambda n: n + "\0"),
        st.just(b"nul\0byte"),
        junk.filter(lambda x: not isinstance(x, (str, bytes))),
    )


flag_sets = st.one_of(
    st.none(),
    st.sets(st.sampled_from(list(FileOpenFlag))),
    st.lists(st.sampled_from(list(FileOpenFlag)), max_size=4),
    st.lists(st.one_of(st.sampled_from(list(FileOpenFlag)), anything_int), max_size=3),
    junk,
)


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_prep_openat(fuzz: Fuzz, data: st.DataObject) -> None:
    """prep_openat with arbitrary arguments never crashes or half-queues; fds it opens close."""
    relative_to = data.draw(
        st.one_of(
            st.sampled_from([None, -1, AT_FDCWD, fuzz.dir_fd, Fileno(fuzz.dir_fd), fuzz.closed_fd]),
            huge_or_negative,
            junk,
        ),
        "relative_to",
    )
    path = data.draw(openat_paths(fuzz), "path")
    mode = data.draw(st.one_of(st.sampled_from(list(FileOpenMode)), anything_int), "open_mode")
    flags = data.draw(flag_sets, "flags")
    permissions = data.draw(
        st.one_of(st.integers(min_value=0, max_value=0o7777), anything_int), "permissions"
    )
    result = check_prep(
        fuzz, lambda: fuzz.ring.prep_openat(relative_to, path, mode, flags, permissions)
    )
    if result is not None and result >= 0:
        os.close(result)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(512)
        yield s


def _is_ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_prep_connect_v4(fuzz: Fuzz, listener: socket.socket, data: st.DataObject) -> None:
    """prep_connect_v4 with arbitrary arguments never crashes or half-queues.

    Addresses are loopback or unparsable, so that no connect waits on the network.
    """
    port_now = listener.getsockname()[1]
    address = data.draw(
        st.one_of(
            st.ip_addresses(v=4, network="127.0.0.0/8"),
            st.ip_addresses(v=4, network="127.0.0.0/8").map(str),
            st.sampled_from(["0.0.0.0", "256.1.1.1", "1.2.3", "::1", "", "127.0.0.1 ", "x"]),
            st.text(max_size=15).filter(lambda s: not _is_ipv4(s)),
            st.just(ipaddress.IPv6Address("::1")),
            junk.filter(lambda x: not isinstance(x, str)),
        ),
        "address",
    )
    port = data.draw(
        st.one_of(st.just(port_now), st.integers(min_value=0, max_value=65535), anything_int),
        "port",
    )
    with socket.socket() as sock:
        fd = data.draw(
            st.one_of(st.just(sock), st.just(sock.fileno()), fd_choices(fuzz)),
            "fd",
        )
        check_prep(fuzz, lambda: fuzz.ring.prep_connect_v4(fd, address, port))
    # Accept whatever connected so the backlog never fills.
    listener.setblocking(False)
    try:
        while True:
            listener.accept()[0].close()
    except BlockingIOError:
        pass
