"""Resource exhaustion and environments that refuse io_uring, tested for real.

Each scenario runs in a child process whose limits are lowered (RLIMIT_NOFILE,
RLIMIT_MEMLOCK, and for the latter an unprivileged user), so that the limit is reached
quickly and nothing else is disturbed. The child prints a JSON report; the test checks it.
The property: the library either works or raises a clear OSError with the real errno, and
the process keeps working once the resource is given back.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from century_ring import CompletionEvent, make_io_ring
from conftest import DATA


def run_child(code: str, timeout: float = 120) -> Any:
    """Runs ``code`` (which must print one JSON line last) in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "panicked" not in proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- RLIMIT_MEMLOCK -------------------------------------------------------------------------

_MEMLOCK_CHILD = """
import json, os, resource, sys
import century_ring
limit = {limit}
resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))
if {drop}:
    # root (CAP_IPC_LOCK) is never charged: become nobody, after importing the library.
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
report = {{}}
try:
    with century_ring.make_io_ring(entries=8) as ring:
        ring.prep_nop()
        ring.submit_and_wait(1)
        report["first"] = ["ok", [c.result for c in ring.get_completion_entries()]]
except OSError as e:
    report["first"] = [e.errno, str(e), type(e).__name__]
print(json.dumps(report))
"""


def _memlock_child(limit: int) -> Any:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user (root is never charged)")
    return run_child(_MEMLOCK_CHILD.format(limit=limit, drop=True))


def test_memlock_exhausted_gives_a_clear_oserror() -> None:
    """Linux 6.x charges an unprivileged process's ring memory to RLIMIT_MEMLOCK again (as
    kernels before 5.12 did), so with the limit at 0 make_io_ring fails: ENOMEM, with a message
    that names the limit, its current value and what to do."""
    report = _memlock_child(0)
    if report["first"][0] == "ok":
        pytest.skip("this kernel does not charge ring memory to RLIMIT_MEMLOCK")
    code, message, kind = report["first"]
    assert code == errno.ENOMEM
    assert kind == "OSError"
    assert "io_uring_setup" in message
    assert "RLIMIT_MEMLOCK" in message and "ulimit -l" in message
    assert "currently 0 bytes" in message, message


def test_memlock_large_enough_works() -> None:
    """The same unprivileged process with 1 MiB of locked memory creates and uses a ring."""
    report = _memlock_child(1 << 20)
    assert report["first"] == ["ok", [0]]


def test_root_is_not_charged_for_ring_memory() -> None:
    """With CAP_IPC_LOCK (root) a zero RLIMIT_MEMLOCK does not matter."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    report = run_child(_MEMLOCK_CHILD.format(limit=0, drop=False))
    assert report["first"] == ["ok", [0]]


# --- many rings -----------------------------------------------------------------------------

_MANY_RINGS_CHILD = """
import json, os, resource, time
import century_ring
if {nofile} is not None:
    resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile}))
def fill():
    rings = []
    try:
        while len(rings) < 100000:
            rings.append(century_ring.make_io_ring(entries=8))
    except OSError as e:
        return rings, [e.errno, str(e)]
    return rings, None
t0 = time.monotonic()
rings, error = fill()
made = len(rings)
# The process still works while at the limit: an existing ring runs an operation.
ring = rings[0]
ud = ring.prep_nop()
ring.submit_and_wait(1)
at_limit = [c.user_data == ud for c in ring.get_completion_entries()]
for r in rings:
    r.close()
del rings, ring
# Given back, the descriptors make rings again, as many as before.
again, error2 = fill()
print(json.dumps({{"made": made, "error": error, "at_limit": at_limit,
                  "again": len(again), "error2": error2, "seconds": time.monotonic() - t0}}))
"""


@pytest.mark.parametrize("nofile", [64, 4096, None], ids=["64", "4096", "own-limit"])
def test_rings_until_the_kernel_says_no(nofile: int | None) -> None:
    """Rings are made until the descriptor limit (lowered, or the process's own): then a clear
    OSError (EMFILE), the process keeps working, and after closing them it can make as many
    again."""
    limit = nofile or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit > 65536:
        pytest.skip(f"RLIMIT_NOFILE is {limit}: too many rings for a quick test")
    report = run_child(_MANY_RINGS_CHILD.format(nofile=nofile))
    code, message = report["error"]
    assert code == errno.EMFILE, message
    assert "io_uring_setup failed" in message and "file descriptor" in message
    assert limit - 32 <= report["made"] < limit
    assert report["at_limit"] == [True]
    assert report["again"] == report["made"]
    assert report["error2"][0] == errno.EMFILE


# --- a ring whose process ran out of descriptors --------------------------------------------

_FD_LIMIT_CHILD = """
import json, os, resource, socket
import century_ring
from century_ring import FileOpenMode, raise_for_cqe
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
ring = century_ring.make_io_ring(entries=16)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
client = socket.create_connection(listener.getsockname())
path = {path!r}
# Use up every descriptor.
hogs = []
while True:
    try:
        hogs.append(os.open(path, os.O_RDONLY))
    except OSError:
        break
def run(prep):
    ud = prep()
    ring.submit_and_wait(1)
    [cqe] = ring.get_completion_entries()
    assert cqe.user_data == ud
    try:
        raise_for_cqe(cqe)
    except OSError as e:
        return [cqe.result, e.errno, type(e).__name__]
    return [cqe.result]
ops = {{
    "openat": lambda: ring.prep_openat(None, path, FileOpenMode.READ_ONLY),
    "create_socket": lambda: ring.prep_create_socket(socket.AF_INET, socket.SOCK_STREAM),
    "accept": lambda: ring.prep_accept(listener),
}}
at_limit = {{name: run(prep) for name, prep in ops.items()}}
read_at_limit = run(lambda: ring.prep_read(hogs[0], 4, 0))
for fd in hogs[:8]:
    os.close(fd)
after = {{name: run(prep) for name, prep in ops.items()}}
print(json.dumps({{"hogs": len(hogs), "at_limit": at_limit, "read": read_at_limit,
                  "after": after, "in_flight": ring.in_flight}}))
"""


def test_ring_keeps_working_when_its_process_hits_the_fd_limit(data_file: Any) -> None:
    """At the descriptor limit, operations that make a descriptor complete with -EMFILE
    (raise_for_cqe gives OSError EMFILE), others still work, and once descriptors are freed
    the same operations succeed on the same ring."""
    report = run_child(_FD_LIMIT_CHILD.format(path=str(data_file)))
    assert report["hogs"] > 50
    for name, outcome in report["at_limit"].items():
        assert outcome == [-errno.EMFILE, errno.EMFILE, "OSError"], (name, outcome)
    assert report["read"] == [4]
    for name, outcome in report["after"].items():
        assert len(outcome) == 1 and outcome[0] >= 0, (name, outcome)
    assert report["in_flight"] == 0


# --- completion-queue overflow, long and heavy ----------------------------------------------


def test_100k_nops_overflowing_a_tiny_cq_lose_nothing() -> None:
    """100,000 no-ops through an 8-entry ring (16-entry CQ), never reaped until the end: the
    kernel's overflow backlog holds them, and every one comes back exactly once."""
    n = 100_000
    with make_io_ring(entries=8) as ring:
        t0 = time.monotonic()
        uds = [ring.prep_nop() for _ in range(n)]
        ring.submit()
        assert len(set(uds)) == n
        got: list[CompletionEvent] = []
        deadline = time.monotonic() + 60
        while len(got) < n and time.monotonic() < deadline:
            batch = ring.get_completion_entries()
            if not batch:
                ring.submit_and_wait_with_timeout(0.1)
            got.extend(batch)
        assert len(got) == n, f"{len(got)} of {n} completions after {time.monotonic() - t0:.1f} s"
        assert sorted(c.user_data for c in got) == sorted(uds)
        assert all(c.result == 0 for c in got)
        assert ring.in_flight == 0
        assert ring.get_completion_entries() == []


def test_long_overflow_of_reads_keeps_every_buffer(data_fd: int) -> None:
    """20,000 reads through a 4-entry ring, reaped only every 5,000 queued: the overflow lasts
    the whole run, every read's data is right, and the in-flight table empties."""
    with make_io_ring(entries=4, cq_size=8) as ring:
        expected: dict[int, bytes] = {}
        got: dict[int, CompletionEvent] = {}

        def reap() -> None:
            for cqe in ring.get_completion_entries():
                assert cqe.user_data not in got
                got[cqe.user_data] = cqe

        for i in range(20_000):
            off = (i * 13) % (len(DATA) - 16)
            expected[ring.prep_read(data_fd, 16, off)] = DATA[off : off + 16]
            if i % 5000 == 4999:
                reap()
        ring.submit()
        deadline = time.monotonic() + 60
        while len(got) < len(expected) and time.monotonic() < deadline:
            reap()
            if len(got) < len(expected):
                ring.submit_and_wait_with_timeout(0.1)
        assert got.keys() == expected.keys()
        for ud, want in expected.items():
            assert got[ud].buffer == want
        assert ring.in_flight == 0
