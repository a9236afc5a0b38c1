"""Findings of the safety audit of the Rust core, one section per area. Each test failed (or
crashed the interpreter) before the fix it names.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from century_ring import IoUring, make_io_ring, make_sqe_flags
from conftest import collect, drain

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
