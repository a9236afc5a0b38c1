"""The loop passes CPython's own asyncio tests (tests/test_asyncio_cpython_suite.py), run in an
interpreter of their own as CPython's test runner runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).with_name("test_asyncio_cpython_suite.py")


def test_cpython_asyncio_tests_pass_on_this_loop() -> None:
    pytest.importorskip("test.test_asyncio.test_events", reason="no test package")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=300", SUITE],
        env={**os.environ, "CENTURY_RING_CPYTHON_SUITE": "1"},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    passed = re.search(r"(\d+) passed", summary)
    # Well over a thousand of CPython's tests, none failed (the summary names no failure).
    assert passed is not None and int(passed.group(1)) > 1000, summary
    assert "failed" not in summary and "error" not in summary, summary
