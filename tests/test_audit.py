"""Findings of the safety audit of the Rust core, one section per area. Each test failed (or
crashed the interpreter) before the fix it names.
"""

from __future__ import annotations

import errno
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from century_ring import IoUring, make_io_ring, make_sqe_flags
from conftest import collect, drain, libc_with_mmap

# --- fork -----------------------------------------------------------------------------------


def _run_in_child(body: Callable[[], str]) -> tuple[int, str]:
    """Fork; the child runs ``body`` and writes what it returns to a pipe, then _exits. Returns
    the child's exit code (negative: killed by that signal) and its report."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            os.close(r)
            os.write(w, body().encode())
            code = 0
        except BaseException as e:
            os.write(w, f"child raised {e!r}".encode())
            code = 2
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child hung")
        time.sleep(0.01)
    with os.fdopen(r, "rb") as f:
        report = f.read().decode()
    return os.waitstatus_to_exitcode(status), report


def test_repr_in_a_forked_child_does_not_touch_the_parents_ring(pipe: tuple[int, int]) -> None:
    """repr() of a ring in a forked child read the submission queue's counters, which live in
    the ring's mapping; that mapping is not inherited (MADV_DONTFORK), so the child died of
    SIGSEGV. It must describe the ring without touching it."""
    with make_io_ring() as ring:
        ring.prep_read(pipe[0], 1)  # something queued, so the counters would be read
        code, report = _run_in_child(lambda: repr(ring))
        assert code == 0, f"the child exited with {code}: {report}"
        assert "fork" in report and str(os.getpid()) in report, report
        assert ring.pending_sq_entries == 1, "the parent's ring is untouched"


def _wait(pid: int) -> int:
    """The exit code of child ``pid`` (negative: killed by that signal); kills it after 20 s."""
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child hung")
        time.sleep(0.01)


def test_fork_in_a_signal_handler_during_a_wait(pipe: tuple[int, int]) -> None:
    """A signal handler that forks while submit_and_wait blocks: in the child the wait went on
    and read the completion queue from the ring's memory, which the child does not have
    (SIGSEGV). The child's wait must raise the fork RuntimeError instead; the parent's wait
    carries on and gets its completion."""
    parent = os.getpid()
    children: list[int] = []

    def handler(signum: int, frame: object) -> None:
        pid = os.fork()
        if pid:
            children.append(pid)

    r, w = pipe
    old = signal.signal(signal.SIGUSR1, handler)
    try:
        with make_io_ring() as ring:
            ud = ring.prep_read(r, 1)
            poke = threading.Timer(0.2, os.kill, (parent, signal.SIGUSR1))
            feed = threading.Timer(0.6, os.write, (w, b"x"))
            poke.start()
            feed.start()
            try:
                ring.submit_and_wait(1)
            except BaseException as e:
                if os.getpid() != parent:  # pragma: no cover - the child
                    os._exit(0 if isinstance(e, RuntimeError) and "fork" in str(e) else 4)
                raise
            if os.getpid() != parent:  # pragma: no cover - the child
                os._exit(5)  # the wait returned normally in the child
            poke.join()
            feed.join()
            assert [c.user_data for c in ring.get_completion_entries()] == [ud]
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert len(children) == 1
    assert _wait(children[0]) == 0


def _ring_mappings(pid: int) -> list[tuple[int, int]]:
    """The address ranges of process ``pid``'s io_uring mappings."""
    with open(f"/proc/{pid}/maps") as maps:
        lines = [line.split()[0] for line in maps if "anon_inode:[io_uring]" in line]
    return [(int(a, 16), int(b, 16)) for a, b in (line.split("-") for line in lines)]


def _map_fixed(start: int, length: int) -> bool:
    """mmap anonymous memory at exactly ``start`` (MAP_FIXED_NOREPLACE); True if it worked."""
    libc = libc_with_mmap()
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x100000  # MAP_FIXED_NOREPLACE
    got = libc.mmap(start, length, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
    return bool(got == start)


def _mapped(start: int, end: int) -> bool:
    """Whether ``start..end`` lies inside one mapping of this process (adjacent anonymous
    mappings merge into one line of the maps file)."""
    with open("/proc/self/maps") as maps:
        spans = [line.split()[0].split("-") for line in maps]
    return any(int(a, 16) <= start and end <= int(b, 16) for a, b in spans)


def test_fork_in_a_del_run_by_close(pipe: tuple[int, int]) -> None:
    """close() cancels a read into a caller's buffer and releases the export; if that drops the
    last reference and the buffer's __del__ forks, the child went on with the parent's close:
    it finished the drain and freed the ring, unmapping the parent's ring addresses, where the
    child may have mapped memory of its own since. The child must abandon the ring instead,
    touching neither the kernel nor its address space."""
    parent = os.getpid()
    children: list[int] = []
    placed: list[tuple[int, int]] = []

    class Forking(bytearray):
        def __del__(self) -> None:
            pid = os.fork()
            if pid:
                children.append(pid)
                return
            # The child: its own memory where the parent's ring is mapped.
            for start, end in ring_mappings:
                if _map_fixed(start, end - start):
                    placed.append((start, end))

    others = set(_ring_mappings(parent))
    ring = make_io_ring()
    ring_mappings = sorted(set(_ring_mappings(parent)) - others)
    ring.prep_read_into(pipe[0], Forking(8))  # only the ring holds the buffer now
    ring.submit()
    ring.close()
    if os.getpid() != parent:  # pragma: no cover - the child
        intact = bool(placed) and all(_mapped(start, end) for start, end in placed)
        os._exit(0 if intact else 6)
    assert len(children) == 1
    assert _wait(children[0]) == 0, "the child's own mappings were unmapped by the ring"
    assert ring.closed


# --- lifetime: completions the kernel never posts --------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        {"io_link": True},
        {"io_hardlink": True},
        {"io_hardlink": True, "io_drain": True},
    ],
    ids=["io_link", "io_hardlink", "io_hardlink+io_drain"],
)
def test_skip_success_on_a_linked_entry_is_refused(
    ring: IoUring, pipe: tuple[int, int], link: dict[str, bool]
) -> None:
    """When an entry with skip_success fails, the kernel posts no completion for the entries
    linked after it (REQ_F_SKIP_LINK_CQES; with io_drain even a hard link fails that way).
    Those entries' memory then stayed in the in-flight table for good, and closing the ring
    waited 10 s for them and leaked it. The combination must be refused, queueing nothing."""
    flags = make_sqe_flags(skip_success=True, **link)
    with pytest.raises(ValueError, match="SKIP_SUCCESS") as info:
        ring.prep_close(2**30, sqe_flags=flags)  # a close that would fail with EBADF
    assert "LINK" in str(info.value)
    assert ring.pending_sq_entries == 0
    # What would have followed it: its completion must arrive.
    ud = ring.prep_read(pipe[0], 16)
    os.write(pipe[1], b"data")
    assert collect(ring, [ud])[ud].buffer == b"data"
    assert ring.in_flight == 0


def test_skip_success_on_the_last_entry_of_a_chain_still_works(ring: IoUring) -> None:
    """skip_success stays allowed on a chain's last entry, which links to nothing: the linked
    head completes, and the last entry's failure is still reported."""
    head = ring.prep_nop(sqe_flags=make_sqe_flags(io_link=True))
    last = ring.prep_close(2**30, sqe_flags=make_sqe_flags(skip_success=True))
    got = collect(ring, [head, last])
    assert got[head].result == 0
    assert got[last].result == -errno.EBADF
    assert drain(ring) == [] and ring.in_flight == 0


# --- memory handed to Python ------------------------------------------------------------------

SECRET = b"S" * 64


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield client, server


@pytest.mark.parametrize("method", ["prep_recv", "prep_recvfrom"])
def test_msg_trunc_receive_never_shows_memory_the_kernel_did_not_write(
    ring: IoUring,
    pipe: tuple[int, int],
    tcp_pair: tuple[socket.socket, socket.socket],
    method: str,
) -> None:
    """With MSG_TRUNC a TCP socket discards the data instead of copying it, and the result
    still counts it. The completion's buffer held that many bytes of whatever the ring's
    buffer held before: data of an earlier operation (here, an earlier read) or uninitialised
    heap. It must never show memory the kernel did not write."""
    if not ring.probe()[method]:
        pytest.skip(f"the kernel lacks {method}")
    client, server = tcp_pair
    os.write(pipe[1], SECRET)
    read = ring.prep_read(pipe[0], len(SECRET))
    assert collect(ring, [read])[read].buffer == SECRET  # the buffer goes back to the pool
    client.sendall(b"hello")
    time.sleep(0.05)
    prep = getattr(ring, method)
    ud = prep(server, len(SECRET), socket.MSG_TRUNC)
    cqe = collect(ring, [ud])[ud]
    assert cqe.result == 5
    assert cqe.buffer is not None and len(cqe.buffer) == 5
    assert b"S" not in cqe.buffer, f"stale memory leaked into the completion: {cqe.buffer!r}"


#: ``socket.MSG_ZEROCOPY`` / ``SO_ZEROCOPY`` (Linux 4.14), spelled out where the module lacks
#: them.
MSG_ZEROCOPY = getattr(socket, "MSG_ZEROCOPY", 0x4000000)
SO_ZEROCOPY = getattr(socket, "SO_ZEROCOPY", 60)


@pytest.mark.parametrize("copy", [True, False])
def test_send_refuses_msg_zerocopy(
    ring: IoUring, tcp_pair: tuple[socket.socket, socket.socket], copy: bool
) -> None:
    """On a socket with SO_ZEROCOPY, a send with MSG_ZEROCOPY pins the buffer's pages and the
    kernel keeps reading them until the data has left (it reports that later on the socket's
    error queue), long after the completion at which the ring frees its copy or hands the
    caller's buffer back: whatever then occupies the memory could go out on the wire. The
    flag must be refused, queueing nothing."""
    client, _ = tcp_pair
    client.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
    buffer = bytearray(b"A" * 65536)
    with pytest.raises(ValueError, match="MSG_ZEROCOPY"):
        ring.prep_send(client, buffer, flags=MSG_ZEROCOPY, copy=copy)
    assert ring.pending_sq_entries == 0
    buffer.extend(b"resizable: no export is held")


def test_sendto_refuses_msg_zerocopy(ring: IoUring) -> None:
    """As for send: sendmsg with MSG_ZEROCOPY would outlive its completion."""
    if not ring.probe()["prep_sendto"]:
        pytest.skip("the kernel lacks prep_sendto")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
        with pytest.raises(ValueError, match="MSG_ZEROCOPY"):
            ring.prep_sendto(s, b"x" * 4096, ("127.0.0.1", 9), MSG_ZEROCOPY)
    assert ring.pending_sq_entries == 0


# --- misuse of the ring's own descriptor ------------------------------------------------------

_FD_REPLACED = """
import os, century_ring as cr
r, w = os.pipe()
ring = cr.make_io_ring()
ring.prep_read(r, 4)
ring.submit()
fd = ring.fileno()
os.close(fd)
other = cr.make_io_ring()
if other.fileno() != fd:
    os.dup2(other.fileno(), fd)
ring.prep_nop()
try:
    ring.submit()
except OSError as e:
    print("raised", e.errno)
else:
    print("returned")
os._exit(0)  # skip the 10 s drain of a ring that can no longer be reached
"""


def test_submit_after_the_rings_fd_was_closed_and_reused_raises() -> None:
    """os.close(ring.fileno()), then another ring takes that number: submit() entered the
    other ring, which never takes this ring's entries, and looped forever with the GIL held.
    It must raise OSError(EBADF) instead."""
    done = subprocess.run(
        [sys.executable, "-c", _FD_REPLACED], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["raised", str(errno.EBADF)], done.stdout + done.stderr
