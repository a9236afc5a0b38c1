"""CPython's own asyncio tests, run on century_ring.asyncio's loop.

The standard library tests each loop implementation in two ways, and both are used here: the
loop tests are mixins that a loop subclasses with its ``create_event_loop`` (events, low-level
sockets, sendfile), and the rest make their loops with ``asyncio.new_event_loop()``, which here
goes through :class:`century_ring.asyncio.EventLoopPolicy` (streams, SSL, subprocesses, tasks,
task groups, timeouts, locks, queues, ``wait_for``). Each test below is CPython's, unchanged; a
failure names the CPython test that failed. Needs the interpreter's ``test`` package (pyenv and
python.org builds have it; Debian keeps it in ``libpython3-testsuite``). The suite runs in
an interpreter of its own, started by tests/test_asyncio_conformance.py; run it by hand with
``CENTURY_RING_CPYTHON_SUITE=1 python -m pytest tests/test_asyncio_cpython_suite.py``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import unittest
from typing import Any, ClassVar

import century_ring.asyncio
import pytest

if os.environ.get("CENTURY_RING_CPYTHON_SUITE") != "1":
    # Some of these tests collect garbage in a loop, which takes minutes in a process that
    # holds the rest of the suite's objects; CPython runs each in a fresh interpreter too.
    pytest.skip(
        "run in an interpreter of its own by tests/test_asyncio_conformance.py",
        allow_module_level=True,
    )

test_events = pytest.importorskip("test.test_asyncio.test_events", reason="no test package")
test_sock_lowlevel = pytest.importorskip("test.test_asyncio.test_sock_lowlevel")
test_sendfile = pytest.importorskip("test.test_asyncio.test_sendfile")
test_utils = pytest.importorskip("test.test_asyncio.utils")


class TestEventLoop(
    test_events.UnixEventLoopTestsMixin,
    test_events.SubprocessTestsMixin,
    test_utils.TestCase,
):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return century_ring.asyncio.EventLoop()


class TestSockets(test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return century_ring.asyncio.EventLoop()


class TestSendfile(test_sendfile.SendfileTestsBase, test_utils.TestCase):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return century_ring.asyncio.EventLoop()


class _CountingPolicy(century_ring.asyncio.EventLoopPolicy):
    """The policy, counting the loops it makes, so a test can show they were this loop."""

    made: ClassVar[list[asyncio.AbstractEventLoop]] = []

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        self.made.append(loop)
        return loop


class _OnThisLoop:
    """Runs a CPython test case with this loop's policy in force."""

    def run(self, result: Any = None) -> Any:
        asyncio.set_event_loop_policy(_CountingPolicy())
        try:
            return super().run(result)  # type: ignore[misc]
        finally:
            asyncio.set_event_loop_policy(None)


#: The CPython test modules whose loops come from the policy.
_ON_THE_POLICY = (
    "test_streams",
    "test_sslproto",
    "test_ssl",
    "test_subprocess",
    "test_unix_events",
    "test_tasks",
    "test_taskgroups",
    "test_timeouts",
    "test_locks",
    "test_queues",
    "test_waitfor",
)


def _wrap_policy_modules() -> None:
    for module_name in _ON_THE_POLICY:
        try:
            module = importlib.import_module(f"test.test_asyncio.{module_name}")
        except ImportError:  # a module this Python version does not have
            continue
        for name, case in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(case, unittest.TestCase)
                and case.__module__ == module.__name__
                and unittest.defaultTestLoader.getTestCaseNames(case)
            ):
                wrapped = f"Test_{module_name}_{name}"
                globals()[wrapped] = type(wrapped, (_OnThisLoop, case), {"__module__": __name__})


_wrap_policy_modules()


def test_the_policy_suites_ran_on_this_loop() -> None:
    """Runs after the wrapped suites (pytest keeps file order): they made loops, all ours."""
    made = _CountingPolicy.made
    assert len(made) > 100
    assert all(isinstance(loop, century_ring.asyncio.EventLoop) for loop in made)
