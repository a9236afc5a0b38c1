"""Shared fixtures and helpers for the Century Ring test suite.

The helpers submit operations and reap their completions by ``user_data``, the way a user's event
loop would, with a deadline so that a broken wait fails the test instead of hanging the run.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from century_ring import CompletionEvent, IoUring, make_io_ring, raise_for_cqe

#: Where scratch files live: /var/tmp is ext4 here, so O_DIRECT works on it.
SCRATCH_ROOT = "/var/tmp"

#: A test still running after this many seconds has hung: dump every thread's stack and exit.
HANG_LIMIT_SECONDS = 240


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    """Turn a hang into a traceback and an exit instead of a stuck run."""
    faulthandler.dump_traceback_later(HANG_LIMIT_SECONDS, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def ring() -> Iterator[IoUring]:
    """A ring with default settings, closed when the test ends."""
    with make_io_ring() as r:
        yield r


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    """A fresh directory on /var/tmp (ext4), removed afterwards."""
    with tempfile.TemporaryDirectory(dir=SCRATCH_ROOT, prefix="century-ring-test-") as d:
        yield Path(d)


#: Content of the ``data_file`` fixture: every byte value, sixteen times (4 KiB).
DATA = bytes(range(256)) * 16


@pytest.fixture
def data_file(tmp_dir: Path) -> Path:
    """A 4 KiB file whose byte at offset ``i`` is ``i % 256``."""
    path = tmp_dir / "data.bin"
    path.write_bytes(DATA)
    return path


@pytest.fixture
def data_fd(data_file: Path) -> Iterator[int]:
    """A read-write descriptor of ``data_file``, closed afterwards."""
    fd = os.open(data_file, os.O_RDWR | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe ``(read_end, write_end)`` that nobody writes to unless the test does."""
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        for fd in (r, w):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def fds() -> Iterator[list[int]]:
    """Descriptors opened by the ring during a test; closed at the end."""
    opened: list[int] = []
    yield opened
    for fd in opened:
        try:
            os.close(fd)
        except OSError:
            pass


def libc_with_mmap() -> ctypes.CDLL:
    """The C library, with ``mmap`` declared so that it takes and returns full addresses."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    return libc


def collect(
    ring: IoUring, user_data: Iterable[int], timeout: float = 10.0
) -> dict[int, CompletionEvent]:
    """Submit, then reap until a completion for every wanted ``user_data`` has arrived.

    Returns every completion reaped meanwhile, keyed by ``user_data``; fails the test if the
    deadline passes first or a ``user_data`` completes twice.
    """
    wanted = set(user_data)
    got: dict[int, CompletionEvent] = {}
    deadline = time.monotonic() + timeout
    while not wanted <= got.keys():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            missing = sorted(wanted - got.keys())
            raise AssertionError(f"no completion for user_data {missing} after {timeout} s")
        ring.submit_and_wait_with_timeout(min(remaining, 0.5))
        for cqe in ring.get_completion_entries():
            assert cqe.user_data not in got, f"user_data {cqe.user_data} completed twice"
            got[cqe.user_data] = cqe
    return got


def complete(ring: IoUring, user_data: int, timeout: float = 10.0) -> CompletionEvent:
    """Submit and wait for the completion of one operation."""
    return collect(ring, [user_data], timeout)[user_data]


def succeed(ring: IoUring, user_data: int, timeout: float = 10.0) -> CompletionEvent:
    """Like :func:`complete`, but the operation must have succeeded."""
    cqe = complete(ring, user_data, timeout)
    raise_for_cqe(cqe)
    return cqe


def drain(ring: IoUring, timeout: float = 10.0) -> list[CompletionEvent]:
    """Reap until nothing is in flight any more; returns what was reaped."""
    out: list[CompletionEvent] = []
    deadline = time.monotonic() + timeout
    while ring.in_flight or ring.pending_sq_entries:
        assert time.monotonic() < deadline, f"{ring.in_flight} operations never completed"
        ring.submit_and_wait_with_timeout(0.2)
        out.extend(ring.get_completion_entries())
    out.extend(ring.get_completion_entries())
    return out


def delayed_writer(fd: int, delay: float, data: bytes = b"x") -> subprocess.Popen[bytes]:
    """Start a separate process that writes ``data`` to ``fd`` after ``delay`` seconds.

    A process rather than a thread, so that it makes progress even if this interpreter's GIL
    is held by a blocking wait.
    """
    code = f"import os, time; time.sleep({delay!r}); os.write({fd}, {data!r})"
    return subprocess.Popen([sys.executable, "-c", code], pass_fds=(fd,))


def open_fd_count() -> int:
    """How many descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


#: Python code that installs a seccomp filter making io_uring_setup fail with ``errno``, the way
#: container runtimes refuse io_uring; ``{errno}`` is filled in by :func:`without_io_uring`.
_SECCOMP_PRELUDE = """
import ctypes, struct
_libc = ctypes.CDLL(None, use_errno=True)
def _ins(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
_prog = b"".join([
    _ins(0x20, 0, 0, 0),                       # load the syscall number
    _ins(0x15, 0, 1, 425),                     # io_uring_setup?
    _ins(0x06, 0, 0, 0x00050000 | {errno}),    # yes: fail with errno
    _ins(0x06, 0, 0, 0x7FFF0000),              # no: allow
])
_buf = ctypes.create_string_buffer(_prog)
class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
_fprog = _Fprog(len(_prog) // 8, ctypes.cast(_buf, ctypes.c_void_p))
assert _libc.prctl(38, 1, 0, 0, 0) == 0                              # PR_SET_NO_NEW_PRIVS
assert _libc.prctl(22, 2, ctypes.byref(_fprog), 0, 0) == 0           # seccomp filter
"""


def without_io_uring(code: str, errno: int) -> list[str]:
    """A command running ``code`` in a Python where io_uring_setup fails with ``errno``."""
    import platform

    if platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the seccomp test filter knows io_uring_setup's number only on x86_64/arm64")
    return [sys.executable, "-c", _SECCOMP_PRELUDE.format(errno=errno) + code]


#: The host loops every async test runs on (anyio's pytest plugin reads ``anyio_backend``).
AIO_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(params=AIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Run each ``pytest.mark.anyio`` test on asyncio, on uvloop and on trio."""
    backend: tuple[str, dict[str, object]] = request.param
    return backend
