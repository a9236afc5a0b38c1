"""Regression tests for what the hostile-use tools (fuzzing, soak, memory checker) found.

Each test names the tool and the input that exposed the problem, and fails without its fix.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
from century_ring import make_io_ring, make_sqe_flags
from conftest import _SECCOMP_PRELUDE, collect


@pytest.mark.parametrize("how", ["close", "drop"])
def test_close_cancels_an_io_drain_operation_at_once(how: str) -> None:
    """Found by test_fuzz: a read queued with ``io_drain`` on an idle pipe.

    The kernel holds every later submission, the ring's own cancel request included, until a
    drain operation completes, so closing used to wait 10 s, warn twice and leak the buffer.
    Closing must cancel it promptly, without a warning, and leave the pipe's data alone. The
    read held back behind it starts only once the drain read is cancelled, sometimes after the
    ring's first cancel request went by (1 close in ~50 then took a second, and under load
    warned): 40 closes in a row must each be prompt.
    """
    r, w = os.pipe()
    try:
        for _ in range(40):
            ring = make_io_ring()
            drained = make_sqe_flags(io_drain=True)
            ring.prep_read(r, 10, sqe_flags=drained)
            ring.prep_read(r, 10)  # held back behind the drain
            ring.submit()
            t0 = time.monotonic()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if how == "close":
                    ring.close()
                else:
                    del ring
            elapsed = time.monotonic() - t0
            assert [str(c.message) for c in caught] == []
            assert elapsed < 0.5, f"closing took {elapsed:.2f} s"
        os.write(w, b"intact")
        assert os.read(r, 100) == b"intact"
    finally:
        os.close(r)
        os.close(w)


def test_cancel_of_an_io_drain_operation_still_completes() -> None:
    """A user's own prep_cancel queued behind an io_drain read is held by the kernel until the
    read completes; both completions then arrive (the library does not lose either)."""
    r, w = os.pipe()
    try:
        with make_io_ring() as ring:
            ud = ring.prep_read(r, 10, sqe_flags=make_sqe_flags(io_drain=True))
            ring.submit()
            cancel = ring.prep_cancel(ud)
            ring.submit()
            os.write(w, b"data")
            got = collect(ring, [ud, cancel])
            assert got[ud].buffer == b"data"
            assert got[cancel].result < 0
    finally:
        os.close(r)
        os.close(w)


def test_close_is_prompt_where_io_uring_enter_is_refused() -> None:
    """Found while checking environments that refuse io_uring: a seccomp filter that allows
    io_uring_setup but refuses io_uring_enter (EPERM). Submitting raises PermissionError; the
    kernel never took an entry, so closing frees the operations at once instead of waiting
    10 s for completions that cannot come, warning, and leaking."""
    script = _SECCOMP_PRELUDE.replace("425)", "426)").format(errno=errno.EPERM) + textwrap.dedent(
        """
            import json, os, time, warnings
            import century_ring
            warnings.simplefilter("always")
            r, w = os.pipe()
            ring = century_ring.make_io_ring()
            ring.prep_read(r, 10)
            ring.prep_write(w, b"data")
            try:
                ring.submit()
                submitted = "no error"
            except PermissionError as e:
                submitted = str(e)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0 = time.monotonic()
                ring.close()
                took = time.monotonic() - t0
            print(json.dumps([submitted, took, [str(c.message) for c in caught]]))
            """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    submitted, took, caught = json.loads(proc.stdout)
    assert "io_uring_enter failed" in submitted
    assert took < 1.5, f"closing took {took:.1f} s"
    assert caught == []
