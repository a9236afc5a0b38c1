"""Making a ring, using it as a context manager, closing it, and how the queue fills and empties."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from century_ring import AT_FDCWD, FileOpenFlag, FileOpenMode, IoUring, make_io_ring
from conftest import DATA, collect, drain, succeed, without_io_uring

SEED_OPS = (
    "prep_openat",
    "prep_read",
    "prep_write",
    "prep_create_socket",
    "prep_connect_v4",
    "prep_connect_v6",
    "prep_send",
    "prep_recv",
    "prep_close",
)


def queue_reads(ring: IoUring, fd: int, n: int) -> list[int]:
    """Queue ``n`` 16-byte reads of ``fd`` at distinct offsets; returns their user_data."""
    return [ring.prep_read(fd, 16, (i * 16) % len(DATA)) for i in range(n)]


# --- make_io_ring arguments -----------------------------------------------------------------


def test_default_ring_is_an_open_iouring() -> None:
    """A user calls make_io_ring() with no arguments and gets an open IoUring."""
    ring = make_io_ring()
    try:
        assert isinstance(ring, IoUring)
        assert ring.closed is False
        assert ring.pending_sq_entries == 0
        assert ring.in_flight == 0
    finally:
        ring.close()


@pytest.mark.parametrize("entries", [0, -1, -(2**31), 32769, 2**20, 2**40])
def test_entries_out_of_range_is_value_error(entries: int) -> None:
    """A user asks for an impossible submission-queue size and is told which argument is wrong."""
    with pytest.raises(ValueError, match="entries"):
        make_io_ring(entries=entries)


@pytest.mark.parametrize("entries", [1, 3, 4, 100, 32768])
def test_entries_in_range_work(entries: int, data_fd: int) -> None:
    """Any size from 1 to 32768 gives a working ring (the kernel rounds up to a power of two)."""
    with make_io_ring(entries=entries) as ring:
        cqe = succeed(ring, ring.prep_read(data_fd, 8, 0))
        assert cqe.buffer == DATA[:8]


@pytest.mark.parametrize("cq_size", [None, 0, -1, 8, 64, 1024])
def test_cq_size_values_work(cq_size: int | None, data_fd: int) -> None:
    """With any cq_size (None/<=0 for the default) all completions of many operations arrive."""
    with make_io_ring(entries=4, cq_size=cq_size) as ring:
        uds = queue_reads(ring, data_fd, 40)
        got = collect(ring, uds)
        for i, ud in enumerate(uds):
            off = (i * 16) % len(DATA)
            assert got[ud].buffer == DATA[off : off + 16]
        assert ring.in_flight == 0


@pytest.mark.parametrize("idle", [None, 0, -5])
def test_sqpoll_disabled_values_work(idle: int | None, data_fd: int) -> None:
    """sqpoll_idle_ms of None or <= 0 gives an ordinary working ring."""
    with make_io_ring(sqpoll_idle_ms=idle) as ring:
        assert succeed(ring, ring.prep_read(data_fd, 4, 4)).buffer == DATA[4:8]


def test_sqpoll_ring_works(tmp_dir: Path) -> None:
    """A ring with a kernel submission thread writes, reads and closes a file."""
    try:
        ring = make_io_ring(sqpoll_idle_ms=50)
    except PermissionError as e:  # pragma: no cover - depends on privileges
        pytest.skip(f"SQPOLL not permitted here: {e}")
    with ring:
        path = tmp_dir / "sqpoll.bin"
        fd = succeed(
            ring,
            ring.prep_openat(
                None, str(path), FileOpenMode.READ_WRITE, {FileOpenFlag.CREATE_IF_NOT_EXISTS}
            ),
        ).result
        assert succeed(ring, ring.prep_write(fd, b"sqpoll!", 0)).result == 7
        assert succeed(ring, ring.prep_read(fd, 100, 0)).buffer == b"sqpoll!"
        assert succeed(ring, ring.prep_close(fd)).result == 0
        # Let the kernel thread go idle, then make sure it is woken up again.
        time.sleep(0.2)
        uds = [ring.prep_openat(None, str(path), FileOpenMode.READ_ONLY) for _ in range(3)]
        for cqe in collect(ring, uds).values():
            assert cqe.result >= 0
            os.close(cqe.result)
    assert path.read_bytes() == b"sqpoll!"


@pytest.mark.parametrize("single_issuer", [True, False])
def test_single_issuer_either_way_works(single_issuer: bool, data_fd: int) -> None:
    """single_issuer is only a hint: both values give a working ring."""
    with make_io_ring(single_issuer=single_issuer) as ring:
        assert succeed(ring, ring.prep_read(data_fd, 3, 10)).buffer == DATA[10:13]


# --- context manager and close --------------------------------------------------------------


def test_context_manager_yields_the_ring_and_closes_it() -> None:
    """``with make_io_ring() as ring`` gives the ring itself, closed when the block ends."""
    outer = make_io_ring()
    with outer as ring:
        assert ring is outer
        assert ring.closed is False
    assert ring.closed is True


def test_context_manager_closes_on_exception_and_propagates() -> None:
    """An exception inside the ``with`` block propagates and the ring is still closed."""

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with make_io_ring() as ring:
            raise Boom
    assert ring.closed is True


def test_close_is_idempotent() -> None:
    """Closing twice (or closing, then leaving the with block) is harmless."""
    with make_io_ring() as ring:
        ring.close()
        assert ring.closed is True
        ring.close()
    ring.close()
    assert ring.closed is True


def _fd_targets() -> dict[str, str]:
    """What each open descriptor of this process points at."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the descriptor listdir itself used
            pass
    return out


def test_close_releases_the_ring_fd() -> None:
    """Closing a ring gives back its file descriptor."""
    before = _fd_targets()
    ring = make_io_ring()
    during = _fd_targets()
    ring_fds = [fd for fd, t in during.items() if "io_uring" in t and before.get(fd) != t]
    assert ring_fds, "no io_uring descriptor appeared while the ring was open"
    ring.close()
    after = _fd_targets()
    for fd in ring_fds:
        assert "io_uring" not in after.get(fd, "")


def _closed_calls(fd: int) -> dict[str, Callable[[IoUring], object]]:
    """One valid call per method/property, so that the only thing wrong is the closed ring."""
    return {
        "prep_openat": lambda r: r.prep_openat(AT_FDCWD, "x", FileOpenMode.READ_ONLY),
        "prep_read": lambda r: r.prep_read(fd, 1),
        "prep_write": lambda r: r.prep_write(fd, b"x"),
        "prep_create_socket": lambda r: r.prep_create_socket(socket.AF_INET, socket.SOCK_STREAM),
        "prep_connect_v4": lambda r: r.prep_connect_v4(fd, "127.0.0.1", 80),
        "prep_connect_v6": lambda r: r.prep_connect_v6(fd, "::1", 80),
        "prep_send": lambda r: r.prep_send(fd, b"x"),
        "prep_recv": lambda r: r.prep_recv(fd, 1),
        "prep_close": lambda r: r.prep_close(fd),
        "submit": lambda r: r.submit(),
        "submit_and_wait": lambda r: r.submit_and_wait(1),
        "submit_and_wait_with_timeout": lambda r: r.submit_and_wait_with_timeout(0.01),
        "get_completion_entries": lambda r: r.get_completion_entries(),
        "register_eventfd": lambda r: r.register_eventfd(),
        "probe": lambda r: r.probe(),
        "pending_sq_entries": lambda r: r.pending_sq_entries,
        "in_flight": lambda r: r.in_flight,
        "__enter__": lambda r: r.__enter__(),
    }


CLOSED_NAMES = list(_closed_calls(0))


@pytest.mark.parametrize("name", CLOSED_NAMES)
def test_every_method_after_close_raises_ring_closed(name: str, data_fd: int) -> None:
    """After the with block, any method or property raises ValueError('The ring is closed')."""
    with make_io_ring() as ring:
        pass
    call = _closed_calls(data_fd)[name]
    with pytest.raises(ValueError) as info:
        call(ring)
    assert str(info.value) == "The ring is closed"


@pytest.mark.parametrize("name", CLOSED_NAMES)
def test_every_method_after_explicit_close_with_ops_queued(name: str, data_fd: int) -> None:
    """Closing a ring that still had queued and in-flight work also refuses every later call."""
    ring = make_io_ring()
    ring.prep_read(data_fd, 8, 0)
    ring.submit()
    ring.prep_read(data_fd, 8, 8)
    ring.close()
    with pytest.raises(ValueError, match=r"^The ring is closed$"):
        _closed_calls(data_fd)[name](ring)


def test_closed_stays_readable_after_close() -> None:
    """``closed`` (unlike everything else) still answers after close."""
    ring = make_io_ring()
    assert ring.closed is False
    ring.close()
    assert ring.closed is True


# --- queue accounting -----------------------------------------------------------------------


def test_pending_sq_entries_counts_queued_until_submit(ring: IoUring, data_fd: int) -> None:
    """Each prep call adds one pending entry; submit() sends them all and says how many."""
    assert ring.pending_sq_entries == 0
    queue_reads(ring, data_fd, 3)
    assert ring.pending_sq_entries == 3
    assert ring.submit() == 3
    assert ring.pending_sq_entries == 0
    assert ring.submit() == 0
    drain(ring)


def test_in_flight_counts_until_reaped(ring: IoUring, data_fd: int) -> None:
    """in_flight covers queued and submitted operations until their completion is reaped."""
    assert ring.in_flight == 0
    uds = queue_reads(ring, data_fd, 5)
    assert ring.in_flight == 5
    ring.submit()
    assert ring.in_flight == 5
    collect(ring, uds)
    assert ring.in_flight == 0


def test_pending_sq_entries_is_read_only(ring: IoUring) -> None:
    """pending_sq_entries is a property the user reads, not sets."""
    with pytest.raises(AttributeError):
        ring.pending_sq_entries = 5  # type: ignore[misc]


def test_autosubmit_submits_a_full_queue(data_fd: int) -> None:
    """With autosubmit (the default), queueing past the SQ size submits instead of failing."""
    with make_io_ring(entries=4) as ring:
        uds = queue_reads(ring, data_fd, 50)
        assert len(set(uds)) == 50
        assert ring.pending_sq_entries <= 4
        got = collect(ring, uds)
        for i, ud in enumerate(uds):
            off = (i * 16) % len(DATA)
            assert got[ud].buffer == DATA[off : off + 16]


def test_no_autosubmit_refuses_when_full_and_queues_nothing(data_file: Path, data_fd: int) -> None:
    """With autosubmit=False a prep call on a full SQ raises ValueError and adds nothing."""
    with make_io_ring(entries=4, autosubmit=False) as ring:
        uds = queue_reads(ring, data_fd, 4)
        assert ring.pending_sq_entries == 4
        with pytest.raises(ValueError):
            ring.prep_read(data_fd, 16, 0)
        with pytest.raises(ValueError):
            ring.prep_write(data_fd, b"never", 100)
        assert ring.pending_sq_entries == 4
        assert ring.in_flight == 4
        assert ring.submit() == 4
        # Once submitted, the queue has room again.
        uds.append(ring.prep_read(data_fd, 16, 0))
        got = collect(ring, uds)
        assert len(got) == 5
    assert data_file.read_bytes() == DATA, "the refused write reached the file"


# --- probe ----------------------------------------------------------------------------------


def test_probe_reports_every_seed_op(ring: IoUring) -> None:
    """probe() tells the user which prep methods this kernel supports."""
    probe = ring.probe()
    assert isinstance(probe, dict)
    assert set(SEED_OPS) <= probe.keys()
    assert all(isinstance(v, bool) for v in probe.values())
    # Reading has been there since io_uring's first release with a probe.
    assert probe["prep_read"] is True


# --- where io_uring is refused --------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.EPERM, errno.ENOSYS], ids=["EPERM", "ENOSYS"])
def test_make_io_ring_where_io_uring_is_refused(code: int) -> None:
    """Under a seccomp filter that refuses io_uring, make_io_ring raises OSError with the real
    errno and a message that says what is wrong."""
    script = (
        "import json, century_ring\n"
        "try:\n"
        "    century_ring.make_io_ring()\n"
        "except OSError as e:\n"
        "    print(json.dumps([e.errno, str(e)]))\n"
        "else:\n"
        "    print(json.dumps(None))\n"
    )
    proc = subprocess.run(
        without_io_uring(script, code), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result is not None, "make_io_ring succeeded although io_uring_setup was refused"
    got_errno, message = result
    assert got_errno == code
    assert "io_uring" in message
    # The message names the likely cause for each errno.
    expected = {errno.EPERM: "seccomp", errno.ENOSYS: "no io_uring"}[code]
    assert expected in message, message


SYSCTL = "/proc/sys/kernel/io_uring_disabled"


def test_make_io_ring_names_the_io_uring_disabled_sysctl() -> None:
    """With kernel.io_uring_disabled=2 (root only; restored at once) the error says so."""
    if os.environ.get("CENTURY_RING_TEST_SYSCTL") != "1":
        pytest.skip(
            "flips a machine-wide sysctl for a moment, which breaks io_uring for every other "
            "process meanwhile; set CENTURY_RING_TEST_SYSCTL=1 to run it (CI does)"
        )
    if not os.path.exists(SYSCTL) or not os.access(SYSCTL, os.W_OK):
        pytest.skip("needs a writable kernel.io_uring_disabled (root, Linux 6.6+)")
    with open(SYSCTL) as f:
        before = f.read().strip()
    try:
        with open(SYSCTL, "w") as f:
            f.write("2")
        proc = subprocess.run(
            [sys.executable, "-c", "import century_ring; century_ring.make_io_ring()"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        with open(SYSCTL, "w") as f:
            f.write(before)
    assert proc.returncode != 0
    assert "PermissionError" in proc.stderr, proc.stderr
    assert "kernel.io_uring_disabled = 2" in proc.stderr, proc.stderr
