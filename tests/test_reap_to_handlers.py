"""Handing completions to handlers by user_data (``IoUring._reap_to``), the dispatch an event
loop runs each pass: order kept, a multishot operation's handler kept while more come, handlers
free to queue more work, and nothing lost when one raises."""

from __future__ import annotations

import os
import select
from collections.abc import Callable

import pytest
from century_ring import CompletionEvent, IoUring, make_io_ring


@pytest.fixture
def ring() -> IoUring:
    with make_io_ring(entries=64) as ring:
        yield ring


def nops(ring: IoUring, count: int) -> list[int]:
    queued = [ring.prep_nop() for _ in range(count)]
    ring.submit_and_wait(count)
    return queued


def test_handlers_get_their_events_in_order_and_the_rest_come_back(ring: IoUring) -> None:
    queued = nops(ring, 10)
    seen: list[int] = []
    handlers: dict[int, Callable[[CompletionEvent], None]] = {
        user_data: lambda event: seen.append(event.user_data) for user_data in queued[::2]
    }
    rest = ring._reap_to(handlers)
    assert seen == queued[::2]
    assert [event.user_data for event in rest] == queued[1::2]
    # A final completion's handler is removed as it is called.
    assert handlers == {}
    assert ring._reap_to({}) == []


def test_a_multishot_operations_handler_stays_while_more_come(ring: IoUring) -> None:
    read_end, write_end = os.pipe()
    try:
        poll = ring.prep_poll_add(read_end, select.POLLIN, multishot=True)
        events: list[CompletionEvent] = []
        handlers = {poll: events.append}
        os.write(write_end, b"x")
        ring.submit_and_wait(1)
        ring._reap_to(handlers)
        assert [event.more for event in events] == [True]
        assert poll in handlers
        ring.prep_poll_remove(poll)
        ring.submit_and_wait(2)
        ring._reap_to(handlers)
        assert events[-1].more is False
        assert poll not in handlers
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_handler_may_queue_and_submit_more_operations(ring: IoUring) -> None:
    handlers: dict[int, Callable[[CompletionEvent], None]] = {}
    done: list[int] = []

    def chain(event: CompletionEvent) -> None:
        done.append(event.user_data)
        if len(done) < 5:
            handlers[ring.prep_nop()] = chain
            ring.submit()

    handlers[ring.prep_nop()] = chain
    while len(done) < 5:
        ring.submit_and_wait(1)
        assert ring._reap_to(handlers) == []
    assert len(set(done)) == 5
    assert ring.in_flight == 0


def test_when_a_handler_raises_the_events_after_it_wait_for_the_next_call(
    ring: IoUring,
) -> None:
    queued = nops(ring, 6)
    seen: list[int] = []

    def boom(event: CompletionEvent) -> None:
        seen.append(event.user_data)
        raise KeyboardInterrupt

    handlers: dict[int, Callable[[CompletionEvent], None]] = {
        queued[0]: lambda e: seen.append(e.user_data),
        queued[2]: boom,
        queued[4]: lambda e: seen.append(e.user_data),
    }
    with pytest.raises(KeyboardInterrupt):
        ring._reap_to(handlers)
    assert seen == [queued[0], queued[2]]
    # The unhandled event from before the failure and every event after it come next, in
    # order; the failing handler's own event is not handed over twice.
    rest = ring._reap_to(handlers)
    assert seen == [queued[0], queued[2], queued[4]]
    assert [event.user_data for event in rest] == [queued[1], queued[3], queued[5]]
    assert ring._reap_to(handlers) == []


def test_reap_to_refuses_what_is_not_a_dict(ring: IoUring) -> None:
    with pytest.raises(TypeError):
        ring._reap_to([])  # type: ignore[arg-type]
