"""The safety promise: what no Python program can do to this library, however wrong.

Closing or dropping rings with work in flight, memory the kernel might still write, blocking
waits versus the GIL and signals, threads, fork, and long-run leaks. The abuse cases run in
loops, since the failures they guard against are races.
"""

from __future__ import annotations

import gc
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from century_ring import (
    FileOpenFlag,
    FileOpenMode,
    IoUring,
    make_io_ring,
)
from conftest import (
    DATA,
    SCRATCH_ROOT,
    collect,
    delayed_writer,
    drain,
    open_fd_count,
    rss_bytes,
    succeed,
)

BIG_FILE_SIZE = 64 << 20
FILL = 0x5A
BLOCK = 4096


@pytest.fixture(scope="module")
def big_file() -> Iterator[Path]:
    """A 64 MiB file of 0x5A bytes, synced to disk so O_DIRECT reads really go to the device."""
    with tempfile.TemporaryDirectory(dir=SCRATCH_ROOT, prefix="century-ring-big-") as d:
        path = Path(d) / "big.bin"
        chunk = bytes([FILL]) * (1 << 20)
        with open(path, "wb") as f:
            for _ in range(BIG_FILE_SIZE // len(chunk)):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        yield path


@pytest.fixture
def direct_fd(big_file: Path) -> Iterator[int]:
    fd = os.open(big_file, os.O_RDONLY | os.O_DIRECT)
    try:
        yield fd
    finally:
        os.close(fd)


def queue_direct_reads(ring: IoUring, fd: int, n: int, rng: random.Random) -> list[int]:
    """Queue ``n`` O_DIRECT 4 KiB reads at random aligned offsets of the big file."""
    blocks = BIG_FILE_SIZE // BLOCK
    return [ring.prep_read(fd, BLOCK, rng.randrange(blocks) * BLOCK) for _ in range(n)]


def end_ring(ring: IoUring, how: str) -> None:
    """Get rid of a ring the way a user might: with-exit, close(), or dropping it."""
    if how == "close":
        ring.close()
    elif how == "exit":
        ring.__exit__(None, None, None)
    else:
        del ring
        gc.collect()


HOW = ["close", "exit", "drop"]


def _create() -> set[FileOpenFlag]:
    return {FileOpenFlag.CREATE_IF_NOT_EXISTS}


def readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


# --- closing and dropping with operations in flight ----------------------------------------


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("size", [64, 64 << 10], ids=["ring-buffer", "bytes-in-place"])
def test_close_with_pipe_reads_in_flight(how: str, size: int) -> None:
    """Closing/dropping a ring with reads pending on an idle pipe cancels them, every time.

    Afterwards the pipe's data is still there: no zombie read swallowed it.
    """
    r, w = os.pipe()
    try:
        for i in range(300):
            ring = make_io_ring(entries=16)
            for _ in range(8):
                ring.prep_read(r, size)
            ring.submit()
            if i % 2:
                ring.prep_read(r, size)  # and one queued but never submitted
            end_ring(ring, how)
            del ring
            os.write(w, b"still here")
            assert readable(r, 5)
            assert os.read(r, 100) == b"still here"
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("how", HOW)
def test_close_with_recv_in_flight(how: str) -> None:
    """Closing/dropping a ring with recvs pending on idle sockets cancels them."""
    a, b = socket.socketpair()
    with a, b:
        for _ in range(300):
            ring = make_io_ring(entries=16)
            for _ in range(4):
                ring.prep_recv(a, 128)
                ring.prep_recv(b, 128)
            ring.submit()
            end_ring(ring, how)
            del ring
            b.sendall(b"ping")
            a.settimeout(5)
            assert a.recv(100) == b"ping"


@pytest.mark.parametrize("how", HOW)
def test_close_with_o_direct_reads_in_flight(how: str, direct_fd: int) -> None:
    """Closing/dropping a ring while O_DIRECT disk reads are in flight neither crashes nor hangs,
    and never has to warn that it is still waiting for the kernel."""
    rng = random.Random(1234)
    t0 = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(200):
            ring = make_io_ring(entries=64)
            queue_direct_reads(ring, direct_fd, 32, rng)
            ring.submit()
            end_ring(ring, how)
            del ring
    assert time.monotonic() - t0 < 60
    assert [str(w.message) for w in caught] == []
    # The device is not left wedged: a fresh ring reads the file normally.
    with make_io_ring() as ring:
        assert succeed(ring, ring.prep_read(direct_fd, BLOCK, 0)).buffer == bytes([FILL]) * BLOCK


def test_mixed_in_flight_close_loop(direct_fd: int, tmp_dir: Path) -> None:
    """Close with a mix of everything in flight: pipe reads, recvs, disk reads, writes, opens."""
    rng = random.Random(99)
    r, w = os.pipe()
    a, b = socket.socketpair()
    out = os.open(tmp_dir / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for i in range(150):
            ring = make_io_ring(entries=32)
            ring.prep_read(r, 10)
            ring.prep_recv(a, 10)
            queue_direct_reads(ring, direct_fd, 8, rng)
            ring.prep_write(out, bytearray(b"w" * 4096), 0)
            ring.prep_openat(None, str(tmp_dir / f"f{i}"), FileOpenMode.WRITE_ONLY, _create())
            ring.submit()
            ring.close()
            assert ring.closed
            # The cancelled pipe read and recv did not survive the ring to steal data.
            os.write(w, b"pipe")
            b.sendall(b"sock")
            assert readable(r, 5)
            assert os.read(r, 100) == b"pipe"
            a.settimeout(5)
            assert a.recv(100) == b"sock"
    finally:
        os.close(r)
        os.close(w)
        a.close()
        b.close()
        os.close(out)


@pytest.mark.parametrize("how", HOW)
def test_memory_the_kernel_writes_is_not_freed_on_close(how: str, direct_fd: int) -> None:
    """After closing with O_DIRECT reads in flight, memory Python reuses is never overwritten.

    The reads fill their buffers with 0x5A. If the ring freed those buffers while the disk
    was still writing into them, bytearrays allocated right after close (filled with 0xAA)
    would see 0x5A appear in them.
    """
    rng = random.Random(4321)
    pattern = b"\xaa" * BLOCK
    for _ in range(30):
        ring = make_io_ring(entries=128)
        queue_direct_reads(ring, direct_fd, 128, rng)
        ring.submit()
        end_ring(ring, how)
        del ring
        victims = [bytearray(pattern) for _ in range(3000)]
        time.sleep(0.05)
        corrupted = sum(1 for v in victims if v != pattern)
        assert corrupted == 0, f"{corrupted} freed buffers were written after close"


def test_interpreter_exit_with_operations_in_flight(big_file: Path) -> None:
    """A program that exits with reads still in flight (never closing its ring) exits cleanly."""
    script = textwrap.dedent(
        f"""
        import os, random, century_ring
        r, w = os.pipe()
        fd = os.open({str(big_file)!r}, os.O_RDONLY | os.O_DIRECT)
        ring = century_ring.make_io_ring()
        for _ in range(8):
            ring.prep_read(r, 10)
        for _ in range(64):
            ring.prep_read(fd, 4096, random.randrange({BIG_FILE_SIZE // BLOCK}) * 4096)
        ring.submit()
        other = century_ring.make_io_ring()
        other.prep_read(r, 10)
        other.submit()
        cycle = [other]
        cycle.append(cycle)
        del other, cycle
        print("exiting", flush=True)
        """
    )
    for _ in range(15):
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "exiting"
        assert "panicked" not in proc.stderr
        assert "Fatal" not in proc.stderr


# --- memory an entry points to lives until its completion ----------------------------------


def test_write_buffer_kept_alive_until_completion(ring: IoUring, tmp_dir: Path) -> None:
    """A buffer whose only reference is the queued write is written intact, however much
    Python allocates and frees before the ring submits it."""
    fd = os.open(tmp_dir / "kept", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        expected = [os.urandom(BLOCK) for _ in range(64)]
        uds = []
        for i, chunk in enumerate(expected):
            kind = i % 3
            if kind == 0:
                buf: Any = bytearray(chunk)
            elif kind == 1:
                buf = memoryview(bytearray(b"??" + chunk + b"??"))[2:-2]
            else:
                buf = bytes(bytearray(chunk))
            uds.append(ring.prep_write(fd, buf, i * BLOCK))
            del buf
        gc.collect()
        churn = [bytearray(b"\xee" * BLOCK) for _ in range(5000)]
        del churn
        churn2 = [bytes([i % 256]) * BLOCK for i in range(5000)]
        for cqe in collect(ring, uds).values():
            assert cqe.result == BLOCK
        del churn2
    finally:
        os.close(fd)
    assert (tmp_dir / "kept").read_bytes() == b"".join(expected)


def test_path_kept_alive_until_completion(ring: IoUring, tmp_dir: Path) -> None:
    """A path built on the fly and dropped right after prep_openat still opens the right file."""
    names = [f"file-{i:03d}-{'x' * (i % 50)}" for i in range(100)]
    for name in names:
        (tmp_dir / name).write_bytes(name.encode())
    uds = {}
    for name in names:
        uds[ring.prep_openat(None, "".join([str(tmp_dir), "/", name]), FileOpenMode.READ_ONLY)] = (
            name
        )
    gc.collect()
    churn = ["".join(["/nowhere/", str(i)] * 20) for i in range(20000)]
    del churn
    got = collect(ring, uds)
    for ud, name in uds.items():
        fd = got[ud].result
        assert fd >= 0, f"opening {name} failed with {fd}"
        try:
            assert os.read(fd, 200) == name.encode()
        finally:
            os.close(fd)


def test_bytearray_cannot_change_under_a_queued_write(ring: IoUring, tmp_dir: Path) -> None:
    """Resizing a bytearray that a queued write points to is refused (BufferError) or harmless:
    what reaches the file is the bytearray as it was when the write was queued."""
    fd = os.open(tmp_dir / "resize", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        ba = bytearray(b"a" * 100)
        ud = ring.prep_write(fd, ba, 0)
        try:
            ba.extend(b"b" * (1 << 20))
            del ba[:]
        except BufferError:
            pass
        gc.collect()
        assert succeed(ring, ud).result == 100
    finally:
        os.close(fd)
    assert (tmp_dir / "resize").read_bytes() == b"a" * 100


# --- blocking waits, the GIL and signals ---------------------------------------------------


def test_gil_released_during_submit_and_wait(ring: IoUring, pipe: tuple[int, int]) -> None:
    """While one thread blocks in submit_and_wait, other Python threads keep running."""
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    t = threading.Thread(target=spin)
    t.start()
    ud = ring.prep_read(pipe[0], 10)
    # A separate process does the write, so the wait ends even if the GIL were never released.
    writer = delayed_writer(pipe[1], 0.5, b"done")
    try:
        time.sleep(0.01)
        before = counter
        ring.submit_and_wait(1)
        during = counter - before
    finally:
        stop.set()
        t.join()
        writer.wait()
    assert during > 1000, f"the other thread ran only {during} loop iterations during the wait"
    assert [c.user_data for c in ring.get_completion_entries()] == [ud]


def test_gil_released_during_timed_wait(ring: IoUring) -> None:
    """submit_and_wait_with_timeout lets other threads run too."""
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.01)
        before = counter
        ring.submit_and_wait_with_timeout(0.3)
        during = counter - before
    finally:
        stop.set()
        t.join()
    assert during > 1000


def _only_thread() -> None:
    # A process-directed signal must reach the waiting (main) thread.
    assert threading.active_count() == 1, threading.enumerate()
    assert threading.current_thread() is threading.main_thread()


def _kill_later(delay: float, sig: int) -> subprocess.Popen[bytes]:
    """Send ``sig`` to this process after ``delay`` seconds, from a separate process."""
    code = f"import os, time; time.sleep({delay}); os.kill({os.getpid()}, {int(sig)})"
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.fixture
def alarm_handler() -> Iterator[Callable[[Callable[[int, Any], None]], None]]:
    """Install a SIGALRM handler for the test; timers and handler are restored afterwards."""
    old = signal.getsignal(signal.SIGALRM)

    def install(handler: Callable[[int, Any], None]) -> None:
        signal.signal(signal.SIGALRM, handler)

    try:
        yield install
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(
    "wait",
    [
        pytest.param(lambda ring: ring.submit_and_wait(1), id="submit_and_wait"),
        pytest.param(lambda ring: ring.submit_and_wait_with_timeout(20), id="timed_wait"),
    ],
)
def test_signal_handler_returning_resumes_the_wait(
    ring: IoUring,
    pipe: tuple[int, int],
    alarm_handler: Any,
    wait: Callable[[IoUring], int],
) -> None:
    """Signals whose handler returns normally don't end the wait early (PEP 475).

    The wait (plain, or with a timeout far longer than the test) returns only when the real
    completion arrives, and never raises InterruptedError.
    """
    _only_thread()
    calls = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal calls
        calls += 1

    alarm_handler(handler)
    ud = ring.prep_read(pipe[0], 10)
    writer = delayed_writer(pipe[1], 0.6, b"real")
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
        t0 = time.monotonic()
        wait(ring)
        elapsed = time.monotonic() - t0
        signal.setitimer(signal.ITIMER_REAL, 0)
        got = ring.get_completion_entries()
    finally:
        writer.wait()
    assert calls >= 3, "the signal handler never ran during the wait"
    assert elapsed >= 0.45, f"the wait returned after {elapsed:.3f} s, before the completion"
    assert [c.user_data for c in got] == [ud]
    assert got[0].buffer == b"real"


def test_signal_handler_returning_keeps_the_remaining_timeout(
    ring: IoUring, pipe: tuple[int, int], alarm_handler: Any
) -> None:
    """With signals every 50 ms, a 0.5 s timed wait lasts about 0.5 s: it resumes with the time
    left, neither returning early nor starting the full timeout over."""
    _only_thread()
    calls = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal calls
        calls += 1
        if calls >= 60:  # after 3 s, stop (a wait that restarts its timeout would end then)
            signal.setitimer(signal.ITIMER_REAL, 0)

    alarm_handler(handler)
    ring.prep_read(pipe[0], 10)
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    t0 = time.monotonic()
    ring.submit_and_wait_with_timeout(0.5)
    elapsed = time.monotonic() - t0
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert calls >= 3
    assert 0.45 <= elapsed < 2.5, f"a 0.5 s wait took {elapsed:.3f} s"
    assert ring.get_completion_entries() == []
    os.write(pipe[1], b"x")
    drain(ring)


class Alarm(Exception):
    pass


PRESUBMIT = pytest.mark.parametrize(
    "presubmit",
    [False, True],
    ids=["queued-then-wait", "submitted-then-wait"],
)


def _queue_read(ring: IoUring, fd: int, presubmit: bool) -> int:
    """Queue a read; with ``presubmit`` it is submitted before the wait, otherwise the wait's
    own io_uring_enter submits it (the common prep-then-wait pattern)."""
    ud = ring.prep_read(fd, 10)
    if presubmit:
        ring.submit()
    return ud


@PRESUBMIT
def test_signal_handler_raising_propagates(
    ring: IoUring, pipe: tuple[int, int], alarm_handler: Any, presubmit: bool
) -> None:
    """An exception raised by a signal handler ends the wait and reaches the caller.

    The ring stays usable: the interrupted operation is still in flight and completes later.
    """
    _only_thread()

    def handler(signum: int, frame: Any) -> None:
        raise Alarm

    alarm_handler(handler)
    ud = _queue_read(ring, pipe[0], presubmit)
    guard = delayed_writer(pipe[1], 4, b"guard")  # ends the wait if signals were ignored
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        t0 = time.monotonic()
        with pytest.raises(Alarm):
            ring.submit_and_wait(1)
        elapsed = time.monotonic() - t0
    finally:
        guard.kill()
        guard.wait()
    assert elapsed < 3, f"the handler's exception surfaced only after {elapsed:.1f} s"
    assert ring.in_flight == 1
    os.write(pipe[1], b"after")
    assert collect(ring, [ud])[ud].buffer == b"after"


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Python's own Ctrl-C handler for the test's duration.

    A process started in the background by a shell without job control inherits SIGINT as
    ignored, and Python then leaves it ignored: Ctrl-C could not interrupt anything there.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@PRESUBMIT
@pytest.mark.usefixtures("sigint_raises")
def test_sigint_raises_keyboard_interrupt(
    ring: IoUring, pipe: tuple[int, int], presubmit: bool
) -> None:
    """Ctrl-C (SIGINT) during submit_and_wait raises KeyboardInterrupt; the ring stays usable."""
    _only_thread()
    ud = _queue_read(ring, pipe[0], presubmit)
    guard = delayed_writer(pipe[1], 4, b"guard")
    killer = _kill_later(0.3, signal.SIGINT)
    interrupted: BaseException | None = None
    t0 = time.monotonic()
    try:
        ring.submit_and_wait(1)
    except KeyboardInterrupt as e:
        interrupted = e
    elapsed = time.monotonic() - t0
    killer.wait()
    guard.kill()
    guard.wait()
    assert isinstance(interrupted, KeyboardInterrupt), "submit_and_wait returned normally"
    assert elapsed < 3, f"KeyboardInterrupt surfaced only after {elapsed:.1f} s"
    os.write(pipe[1], b"after")
    assert collect(ring, [ud])[ud].buffer == b"after"


@PRESUBMIT
@pytest.mark.usefixtures("sigint_raises")
def test_sigint_during_timed_wait(ring: IoUring, pipe: tuple[int, int], presubmit: bool) -> None:
    """Ctrl-C during submit_and_wait_with_timeout raises KeyboardInterrupt as well."""
    _only_thread()
    _queue_read(ring, pipe[0], presubmit)
    killer = _kill_later(0.3, signal.SIGINT)
    interrupted = False
    t0 = time.monotonic()
    try:
        ring.submit_and_wait_with_timeout(4)
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.monotonic() - t0
    killer.wait()
    assert interrupted
    assert elapsed < 3, f"KeyboardInterrupt surfaced only after {elapsed:.1f} s"
    os.write(pipe[1], b"x")
    drain(ring)


# --- threads --------------------------------------------------------------------------------

BUSY = "busy in another thread"


def test_prep_from_another_thread_while_one_waits(
    ring: IoUring, pipe: tuple[int, int], data_fd: int
) -> None:
    """While the main thread blocks in submit_and_wait, another thread calling the ring either
    works or gets a RuntimeError saying the ring is busy in another thread."""

    def other(outcomes: list[tuple[str, str]]) -> None:
        time.sleep(0.02)
        calls: list[Callable[[], object]] = [
            lambda: ring.prep_read(data_fd, 4, 0),
            lambda: ring.pending_sq_entries,
            lambda: ring.in_flight,
            lambda: ring.get_completion_entries(),
        ]
        for call in calls:
            try:
                outcomes.append(("ok", repr(call())))
            except RuntimeError as e:
                outcomes.append(("busy" if BUSY in str(e) else "bad", repr(e)))
            except BaseException as e:
                outcomes.append(("bad", repr(e)))
        os.write(pipe[1], b"x")

    problems: list[str] = []
    for _ in range(30):
        ud = ring.prep_read(pipe[0], 1)
        outcomes: list[tuple[str, str]] = []
        t = threading.Thread(target=other, args=(outcomes,))
        t.start()
        ring.submit_and_wait(1)
        t.join()
        problems += [detail for kind, detail in outcomes if kind == "bad"]
        got = drain(ring)
        assert ud in {c.user_data for c in got}
    assert not problems, problems[:5]
    assert ring.in_flight == 0


def test_threads_hammering_one_ring_never_corrupt(tmp_dir: Path) -> None:
    """Four threads using one ring at once, with no lock: every call works or says busy, and
    every accepted read completes exactly once with the right data."""
    blocks = 4 * 300
    path = tmp_dir / "numbered"
    path.write_bytes(b"".join(k.to_bytes(8, "little") for k in range(blocks)))
    fd = os.open(path, os.O_RDONLY)
    accepted: Counter[int] = Counter()
    reaped: Counter[int] = Counter()
    bad: list[str] = []
    lock = threading.Lock()  # guards only the Counters, never the ring

    def attempt(call: Callable[[], Any]) -> Any:
        for _ in range(100000):
            try:
                return call()
            except RuntimeError as e:
                if BUSY not in str(e):
                    bad.append(repr(e))
                    return None
            time.sleep(0)
        bad.append("busy forever")
        return None

    def reap(ring: IoUring) -> None:
        entries = attempt(ring.get_completion_entries) or []
        with lock:
            for cqe in entries:
                if cqe.result != 8 or cqe.buffer is None:
                    bad.append(f"bad completion {cqe!r}")
                else:
                    reaped[int.from_bytes(cqe.buffer, "little")] += 1

    with make_io_ring(entries=64, single_issuer=False) as ring:

        def worker(t: int) -> None:
            try:
                for i in range(300):
                    k = t * 300 + i
                    if attempt(lambda k=k: ring.prep_read(fd, 8, k * 8)) is not None:
                        with lock:
                            accepted[k] += 1
                    if i % 10 == 9:
                        attempt(ring.submit)
                        reap(ring)
            except BaseException as e:
                bad.append(repr(e))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        deadline = time.monotonic() + 20
        while ring.in_flight and time.monotonic() < deadline:
            ring.submit_and_wait_with_timeout(0.1)
            reap(ring)
        reap(ring)
        assert ring.in_flight == 0
    os.close(fd)
    assert not bad, bad[:5]
    assert accepted, "no read was ever accepted"
    assert reaped == accepted


def test_threads_taking_turns_under_a_lock(tmp_dir: Path) -> None:
    """A single_issuer=False ring shared by threads that take turns under a lock just works."""
    path = tmp_dir / "turns"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    lock = threading.Lock()
    errors: list[str] = []
    done = Counter[int]()
    with make_io_ring(single_issuer=False) as ring:

        def worker(t: int) -> None:
            try:
                for i in range(50):
                    payload = f"{t}:{i:04d}".encode()
                    with lock:
                        w = ring.prep_write(fd, payload, t * 64)
                        ring.submit_and_wait(1)
                        got = collect(ring, [w])
                        assert got[w].result == len(payload)
                        r = ring.prep_read(fd, len(payload), t * 64)
                        assert collect(ring, [r])[r].buffer == payload
                        done[t] += 1
            except BaseException as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert ring.in_flight == 0
    os.close(fd)
    assert not errors, errors[:5]
    assert done == Counter(dict.fromkeys(range(4), 50))


def test_single_issuer_ring_refuses_other_thread_submit_without_losing_entries(
    data_fd: int,
) -> None:
    """On a single_issuer ring (the default), a submit from a thread other than the creator is
    refused by the kernel (FileExistsError, as documented) or works; either way the entries are
    not lost, and the creator can submit them afterwards."""
    with make_io_ring() as ring:
        ud = ring.prep_read(data_fd, 4, 0)
        outcome: list[BaseException | int] = []

        def other() -> None:
            try:
                outcome.append(ring.submit())
            except BaseException as e:
                outcome.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        [result] = outcome
        if isinstance(result, BaseException):
            assert isinstance(result, FileExistsError), repr(result)
            assert "single_issuer=False" in str(result)
            assert ring.pending_sq_entries == 1
        assert collect(ring, [ud])[ud].buffer == DATA[:4]


# --- fork -----------------------------------------------------------------------------------


def _wait_child(pid: int, timeout: float = 20) -> int:
    """waitpid with a deadline: a child that hangs is killed, and that is a failure."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child hung")
        time.sleep(0.01)


def _child(body: Callable[[], str]) -> tuple[int, str]:
    """Fork; the child runs ``body`` and reports its text through a pipe, then _exits."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            os.close(r)
            report = body()
            if report:
                os.write(w, report.encode())
            code = 0 if not report else 1
        except BaseException as e:
            os.write(w, f"child raised {e!r}".encode())
            code = 2
        finally:
            os._exit(code)
    os.close(w)
    status = _wait_child(pid)
    with os.fdopen(r, "rb") as f:
        report = f.read().decode()
    return status, report


def _fork_calls(ring: IoUring, fd: int) -> dict[str, Callable[[], object]]:
    return {
        "prep_read": lambda: ring.prep_read(fd, 1, 0),
        "prep_write": lambda: ring.prep_write(fd, b"x", 0),
        "prep_openat": lambda: ring.prep_openat(None, "/dev/null", FileOpenMode.READ_ONLY),
        "prep_close": lambda: ring.prep_close(fd),
        "submit": ring.submit,
        "submit_and_wait": lambda: ring.submit_and_wait(1),
        "submit_and_wait_with_timeout": lambda: ring.submit_and_wait_with_timeout(0.1),
        "get_completion_entries": ring.get_completion_entries,
        "pending_sq_entries": lambda: ring.pending_sq_entries,
        "in_flight": lambda: ring.in_flight,
        "probe": ring.probe,
        "register_eventfd": ring.register_eventfd,
    }


def test_forked_child_gets_clear_error_and_parent_keeps_working(
    pipe: tuple[int, int], data_fd: int
) -> None:
    """In a forked child every ring method raises RuntimeError mentioning fork; the parent's
    ring, with an operation in flight across the fork, keeps working after the child exits."""
    with make_io_ring() as ring:
        ud = ring.prep_read(pipe[0], 10)
        ring.submit()
        queued = ring.prep_read(data_fd, 4, 0)  # queued, not yet submitted, across the fork

        def body() -> str:
            problems = []
            for name, call in _fork_calls(ring, data_fd).items():
                try:
                    call()
                except RuntimeError as e:
                    if "fork" not in str(e):
                        problems.append(f"{name}: {e!r}")
                except BaseException as e:
                    problems.append(f"{name}: {e!r}")
                else:
                    problems.append(f"{name}: no error")
            return "\n".join(problems)

        status, report = _child(body)
        assert os.waitstatus_to_exitcode(status) == 0, report
        assert ring.pending_sq_entries == 1
        os.write(pipe[1], b"parent")
        got = collect(ring, [ud, queued])
        assert got[ud].buffer == b"parent"
        assert got[queued].buffer == DATA[:4]
        assert succeed(ring, ring.prep_read(data_fd, 4, 4)).buffer == DATA[4:8]


@pytest.mark.parametrize("child_does", ["_exit", "drop-ring", "close-fds"])
def test_child_exiting_does_not_disturb_parent_in_flight(
    pipe: tuple[int, int], child_does: str
) -> None:
    """A forked child that exits (even dropping its copy of the ring) leaves the parent's
    in-flight operations alone: they complete normally, not cancelled."""
    for _ in range(10):
        ring = make_io_ring()
        uds = [ring.prep_read(pipe[0], 1) for _ in range(4)]
        ring.submit()
        holder = [ring]
        del ring

        def body(holder: list[IoUring] = holder) -> str:
            if child_does == "drop-ring":
                holder.clear()
                gc.collect()
            elif child_does == "close-fds":
                os.closerange(3, 4096)
            return ""

        status, report = _child(body)
        assert os.waitstatus_to_exitcode(status) == 0, report
        ring = holder.pop()
        assert ring.in_flight == 4
        os.write(pipe[1], b"abcd")
        got = collect(ring, uds)
        assert sorted(c.buffer or b"" for c in got.values()) == [b"a", b"b", b"c", b"d"]
        ring.close()


# --- long runs ------------------------------------------------------------------------------


def test_memory_and_fds_flat_over_100k_operations(tmp_dir: Path) -> None:
    """100,000+ writes, reads, opens and closes leave open-fd count and RSS flat."""
    path = tmp_dir / "churn"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDWR)
    payload = bytes(range(64))
    total = 0

    def batch(ring: IoUring, n: int) -> None:
        nonlocal total
        kinds: dict[int, str] = {}
        for j in range(n):
            kinds[ring.prep_write(fd, payload, (j * 64) % 4096)] = "write"
            kinds[ring.prep_read(fd, BLOCK, 0)] = "read"
        kinds[ring.prep_openat(None, str(path), FileOpenMode.READ_ONLY)] = "open"
        ring.submit()
        while kinds:
            ring.submit_and_wait(1)
            for cqe in ring.get_completion_entries():
                kind = kinds.pop(cqe.user_data)
                assert cqe.result >= 0, (kind, cqe)
                if kind == "read":
                    assert cqe.buffer is not None and len(cqe.buffer) == BLOCK
                elif kind == "open":
                    kinds[ring.prep_close(cqe.result)] = "close"
                total += 1

    try:
        with make_io_ring(entries=256) as ring:
            for _ in range(30):
                batch(ring, 100)
            gc.collect()
            fds_before, rss_before = open_fd_count(), rss_bytes()
            while total < 100_000:
                batch(ring, 100)
            gc.collect()
            fds_after, rss_after = open_fd_count(), rss_bytes()
            assert ring.in_flight == 0
    finally:
        os.close(fd)
    assert total >= 100_000
    assert fds_after <= fds_before + 2, f"open fds grew from {fds_before} to {fds_after}"
    growth = rss_after - rss_before
    assert growth < 32 << 20, f"RSS grew by {growth / 2**20:.1f} MiB over {total} operations"


def test_rings_created_and_closed_do_not_leak(data_fd: int) -> None:
    """Making and closing thousands of rings leaks neither descriptors nor memory."""
    for _ in range(50):
        with make_io_ring(entries=8) as ring:
            succeed(ring, ring.prep_read(data_fd, 16, 0))
    gc.collect()
    fds_before, rss_before = open_fd_count(), rss_bytes()
    for i in range(2000):
        ring = make_io_ring(entries=8)
        if i % 2:
            ring.prep_read(data_fd, 16, 0)
            ring.submit()
        ring.close()
    gc.collect()
    assert open_fd_count() <= fds_before + 2
    assert rss_bytes() - rss_before < 32 << 20


@pytest.mark.parametrize("how", ["close", "drop"])
@pytest.mark.parametrize("size", [64, 64 << 10], ids=["ring-buffer", "bytes-in-place"])
def test_single_issuer_ring_closed_from_another_thread_leaks_at_once(
    how: str, size: int, pipe: tuple[int, int], capfd: pytest.CaptureFixture[str]
) -> None:
    """The kernel refuses every cancellation from a thread that is not a single_issuer ring's
    submitter, so the in-flight read can only be leaked: promptly, with a warning saying what to
    do, instead of after the 10 s a stuck operation gets."""
    read_end, write_end = pipe
    made: list[IoUring] = []

    def submitter() -> None:
        ring = make_io_ring(single_issuer=True)
        ring.prep_read(read_end, size)
        ring.submit()
        made.append(ring)

    thread = threading.Thread(target=submitter)
    thread.start()
    thread.join()
    (ring,) = made
    made.clear()
    started = time.monotonic()
    if how == "close":
        with pytest.warns(RuntimeWarning, match=r"single_issuer=False"):
            ring.close()
    else:
        del ring  # a destructor cannot raise a warning: it says so on stderr
        gc.collect()
        assert "single_issuer=False" in capfd.readouterr().err
    assert time.monotonic() - started < 5  # not the 10 s a stuck operation is given
    # Were the leaked read's memory freed, allocations of its size would now reuse it, and the
    # kernel's write into it would land in one of them.
    decoys = [bytes([0xAA]) * size for _ in range(16)]
    # The leaked read is the kernel's to finish; the process goes on working.
    os.write(write_end, b"after")
    with make_io_ring() as other:
        user_data = other.prep_read(read_end, 64)
        other.submit()
        os.write(write_end, b"more")
        assert succeed(other, user_data).result > 0
    assert all(decoy == bytes([0xAA]) * size for decoy in decoys)
