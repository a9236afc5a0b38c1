"""The loop's run pass (compiled: ``_RunQueue``), as a program scheduling callbacks sees it:
the order asyncio promises, cancellation, errors, threads, context variables, debug mode and a
closed loop, each as the standard loop has it."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Iterator

import century_ring.asyncio as cr_asyncio
import pytest

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = cr_asyncio.new_event_loop(strict=True)
    yield loop
    loop.close()


def run_briefly(loop: asyncio.AbstractEventLoop, passes: int = 3) -> None:
    for _ in range(passes):
        loop.call_soon(loop.stop)
        loop.run_forever()


def test_callbacks_run_in_the_order_scheduled_and_new_ones_wait_for_the_next_pass(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[str] = []

    def first() -> None:
        ran.append("first")
        loop.call_soon(ran.append, "scheduled by first")

    loop.call_soon(first)
    loop.call_soon(ran.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    # The pass ran what was ready when it began; first's callback waits for the next one.
    assert ran == ["first", "second"]
    run_briefly(loop, 1)
    assert ran == ["first", "second", "scheduled by first"]


def test_timers_fire_by_time_and_equal_times_in_the_order_scheduled(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[int] = []
    now = loop.time()
    for n, delay in enumerate([0.03, 0.01, 0.02, 0.01, 0.0]):
        loop.call_at(now + delay, ran.append, n)
    loop.call_later(0.05, loop.stop)
    started = time.monotonic()
    loop.run_forever()
    assert ran == [4, 1, 3, 2, 0]
    assert time.monotonic() - started >= 0.045


def test_cancelled_callbacks_do_not_run_and_many_cancelled_timers_are_swept(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[int] = []
    handle = loop.call_soon(ran.append, 1)
    handle.cancel()
    handle.cancel()
    assert handle.cancelled()
    timers = [loop.call_later(3600, ran.append, n) for n in range(1000)]
    for timer in timers[:900]:
        timer.cancel()
    run_briefly(loop)
    assert ran == []
    # More than 100 scheduled and over half of them cancelled: swept at once, as asyncio does.
    assert loop._run_queue.timers == 100  # type: ignore[attr-defined]
    assert all(not timer._scheduled for timer in timers[:900])  # type: ignore[attr-defined]


def test_a_finalizer_run_by_sweeping_a_timer_may_schedule_a_callback(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[str] = []

    class SchedulesWhenFreed:
        def __del__(self) -> None:
            loop.call_soon(ran.append, "scheduled by a finalizer")

    context = contextvars.copy_context()
    context.run(request_id.set, SchedulesWhenFreed())  # type: ignore[arg-type]
    timer = loop.call_later(3600, print, context=context)
    del context
    timer.cancel()
    del timer
    # The pass sweeps the cancelled timer; its last reference goes, and with it the context
    # and the finalizer, which schedules a callback: the queue is not locked meanwhile.
    run_briefly(loop)
    assert ran == ["scheduled by a finalizer"]


def test_an_exception_in_a_callback_goes_to_the_handler_and_the_pass_goes_on(
    loop: asyncio.AbstractEventLoop,
) -> None:
    reports: list[dict[str, object]] = []
    loop.set_exception_handler(lambda loop, context: reports.append(context))
    ran: list[str] = []

    def broken() -> None:
        raise ValueError("broken callback")

    handle = loop.call_soon(broken)
    loop.call_soon(ran.append, "after")
    run_briefly(loop, 1)
    assert ran == ["after"]
    (report,) = reports
    assert isinstance(report["exception"], ValueError)
    assert report["handle"] is handle
    assert str(report["message"]).startswith("Exception in callback ")
    assert "broken" in str(report["message"])


def test_keyboard_interrupt_leaves_the_loop_and_the_rest_of_the_pass_runs_later(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[str] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    loop.call_soon(ran.append, "behind the interrupt")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert ran == []
    run_briefly(loop, 1)
    assert ran == ["behind the interrupt"]


def test_threads_wake_the_waiting_loop_and_every_callback_runs() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        count = 0
        done = loop.create_future()
        threads, per_thread = 8, 1000

        def one() -> None:
            nonlocal count
            count += 1
            if count == threads * per_thread:
                done.set_result(None)

        def schedule() -> None:
            for _ in range(per_thread):
                loop.call_soon_threadsafe(one)

        workers = [threading.Thread(target=schedule) for _ in range(threads)]
        for worker in workers:
            worker.start()
        await asyncio.wait_for(done, 30)
        for worker in workers:
            worker.join()
        return count

    assert cr_asyncio.run(main()) == 8000


def test_a_callback_runs_in_the_context_current_when_it_was_scheduled(
    loop: asyncio.AbstractEventLoop,
) -> None:
    seen: list[str] = []
    request_id.set("scheduled")
    loop.call_soon(lambda: seen.append(request_id.get()))
    request_id.set("changed afterwards")
    given = contextvars.copy_context()
    given.run(request_id.set, "given")
    loop.call_soon(lambda: seen.append(request_id.get()), context=given)
    loop.call_later(0, lambda: seen.append(request_id.get()))
    run_briefly(loop)
    assert seen == ["scheduled", "given", "changed afterwards"]


def test_a_closed_loop_refuses_callbacks(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_later(3600, print)
    loop.close()
    for schedule in (
        lambda: loop.call_soon(print),
        lambda: loop.call_later(1, print),
        lambda: loop.call_at(1, print),
        lambda: loop.call_soon_threadsafe(print),
    ):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            schedule()
    assert loop._run_queue.timers == 0  # type: ignore[attr-defined]


def test_bad_times_are_refused(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        loop.call_later("soon", print)  # type: ignore[arg-type]


def greet(name: str) -> None:
    pass


def test_handles_show_themselves_as_asyncios_do(loop: asyncio.AbstractEventLoop) -> None:
    handle = loop.call_soon(greet, "you")
    timer = loop.call_at(12345.5, greet, "later")
    assert repr(handle) == repr(asyncio.Handle(greet, ("you",), loop))
    assert repr(timer) == repr(asyncio.TimerHandle(12345.5, greet, ("later",), loop))
    assert timer.when() == 12345.5
    timer.cancel()
    standard = asyncio.TimerHandle(12345.5, greet, ("later",), loop)
    standard.cancel()
    assert repr(timer) == repr(standard) == "<TimerHandle cancelled when=12345.5>"
    assert isinstance(handle.get_context(), contextvars.Context)


def test_the_clock_is_time_monotonic(loop: asyncio.AbstractEventLoop) -> None:
    before = time.monotonic()
    now = loop.time()
    after = time.monotonic()
    assert before <= now <= after


def test_debug_mode_checks_callbacks_records_where_and_logs_slow_ones(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    async def coroutine() -> None:
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
        loop.call_soon(coroutine)
    handle = loop.call_soon(time.sleep, 0.05)
    frame = handle._source_traceback[-1]  # type: ignore[attr-defined]
    assert frame.name == "test_debug_mode_checks_callbacks_records_where_and_logs_slow_ones"
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_briefly(loop, 1)
    assert any("took" in record.getMessage() for record in caplog.records)
    loop.set_debug(False)
    # Out of debug mode the fast path is back: nothing is checked or recorded.
    assert loop.call_soon(print)._source_traceback is None  # type: ignore[attr-defined]
