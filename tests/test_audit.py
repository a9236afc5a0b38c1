"""Findings of the safety audit of the Rust core, one section per area. Each test failed (or
crashed the interpreter) before the fix it names.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from century_ring import make_io_ring

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
