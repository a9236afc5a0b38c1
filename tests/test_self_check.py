"""``python -m century_ring``: the self-check a new user runs first."""

from __future__ import annotations

import errno
import platform
import subprocess
import sys
from pathlib import Path

from conftest import without_io_uring

SEED_OPS = (
    "openat",
    "read",
    "write",
    "close",
    "socket",
    "connect_v4",
    "connect_v6",
    "send",
    "recv",
)


def run_self_check(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "century_ring"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_self_check_passes(tmp_dir: Path) -> None:
    """The self-check exits 0 on a machine where io_uring works."""
    proc = run_self_check(tmp_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_self_check_reports_kernel_and_operations(tmp_dir: Path) -> None:
    """Its output names the running kernel and the library's operations."""
    proc = run_self_check(tmp_dir)
    out = (proc.stdout + proc.stderr).lower()
    assert platform.release().lower() in out
    for op in SEED_OPS:
        assert op in out, f"the self-check never mentions {op}"


def test_self_check_awaits_operations_on_asyncio_and_trio(tmp_dir: Path) -> None:
    """With the async layer's dependencies installed, it awaits operations on both loops and
    cancels a pending read on each."""
    proc = run_self_check(tmp_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for loop in ("asyncio", "trio"):
        assert f"b'awaited through the ring on {loop}'" in proc.stdout
    assert proc.stdout.count("cancelled after") == 2
    assert proc.stdout.count("none left in flight") == 2


def test_self_check_echoes_through_the_io_uring_event_loop(tmp_dir: Path) -> None:
    """It runs an echo server and client on century_ring.asyncio's loop, sharing its ring."""
    proc = run_self_check(tmp_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "echo through the loop's transports: b'echoed by a protocol on century_ring.asyncio'"
        in (proc.stdout)
    )
    assert "century_ring.aio shares the loop's ring: nop result 0" in proc.stdout


def test_self_check_without_anyio_says_how_to_get_the_async_layer(tmp_dir: Path) -> None:
    """Where anyio is missing, the sync checks still pass and the async part says what to
    install."""
    code = (
        "import sys, runpy\n"
        "sys.modules['anyio'] = None\n"
        "runpy.run_module('century_ring', run_name='__main__', alter_sys=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_dir, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("pip install 'century-ring[aio]'") == 2


def test_self_check_leaves_no_temporary_files(tmp_dir: Path) -> None:
    """Running it from a directory leaves that directory as it was."""
    (tmp_dir / "keep").write_text("x")
    run_self_check(tmp_dir)
    assert sorted(p.name for p in tmp_dir.iterdir()) == ["keep"]


def test_self_check_where_io_uring_is_refused(tmp_dir: Path) -> None:
    """Where a seccomp filter refuses io_uring, it exits non-zero and says io_uring is missing."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['century_ring']\n"
        "runpy.run_module('century_ring', run_name='__main__', alter_sys=True)\n"
    )
    proc = subprocess.run(
        without_io_uring(code, errno.EPERM),
        cwd=tmp_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "io_uring" in out
    assert "Traceback" not in out, "a raw traceback instead of a clear message"
