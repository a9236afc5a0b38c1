"""prep_send_zc: the zero-copy send's two completions (the result, then the notification that
the buffer is free), and the caller's buffer held until the notification."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from century_ring import CompletionEvent, IoUring, make_io_ring, make_sqe_flags
from conftest import drain

Pair = tuple[socket.socket, socket.socket]


@pytest.fixture
def tcp(ring: IoUring) -> Iterator[Pair]:
    """A connected loopback TCP pair (sender, receiver); skips without IORING_OP_SEND_ZC."""
    if not ring.probe()["prep_send_zc"]:
        with socket.socket() as s, pytest.raises(NotImplementedError) as info:
            ring.prep_send_zc(s, b"x")
        pytest.skip(str(info.value))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname(), timeout=10)
        receiver, _ = listener.accept()
    receiver.settimeout(10)
    with sender, receiver:
        yield sender, receiver


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "peer closed early"
        data += chunk
    return data


def completions_of(ring: IoUring, user_data: int) -> list[CompletionEvent]:
    got = [c for c in drain(ring) if c.user_data == user_data]
    assert ring.in_flight == 0
    return got


def test_result_then_notification(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    payload = bytes(range(256)) * 64
    ud = ring.prep_send_zc(sender, payload)
    first, notification = completions_of(ring, ud)
    assert first.result == len(payload)
    assert first.more and not first.notification
    assert notification.notification and not notification.more
    assert notification.result == 0
    assert first.buffer is None and first.provided_buffer is None
    assert recv_exactly(receiver, len(payload)) == payload


def test_buffer_is_held_until_the_notification_is_reaped(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    data = bytearray(b"zero copy " * 1000)
    ud = ring.prep_send_zc(sender, data)
    ring.submit()
    with pytest.raises(BufferError):
        data.extend(b"!")
    seen: list[CompletionEvent] = []
    while not any(c.notification for c in seen):
        ring.submit_and_wait_with_timeout(1)
        batch = ring.get_completion_entries()
        seen.extend(batch)
        if seen and not any(c.notification for c in seen):
            with pytest.raises(BufferError):  # the result alone does not free the buffer
                data.extend(b"!")
    assert [c.user_data for c in seen] == [ud, ud]
    data.extend(b"!")  # the notification was reaped: the export is gone
    assert recv_exactly(receiver, 10000) == b"zero copy " * 1000


def test_count_and_offset_pick_a_span(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    ud = ring.prep_send_zc(sender, b"0123456789", 4, 3)
    first = completions_of(ring, ud)[0]
    assert first.result == 4
    assert recv_exactly(receiver, 4) == b"3456"


def test_bad_arguments_queue_nothing(ring: IoUring, tcp: Pair) -> None:
    sender, _ = tcp
    before = ring.pending_sq_entries
    with pytest.raises(ValueError, match="can't write"):
        ring.prep_send_zc(sender, b"abc", 4)
    with pytest.raises(ValueError, match="out of range"):
        ring.prep_send_zc(sender, b"abc", None, 5)
    with pytest.raises(TypeError, match="bytes-like"):
        ring.prep_send_zc(sender, "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SKIP_SUCCESS"):
        ring.prep_send_zc(sender, b"abc", sqe_flags=make_sqe_flags(skip_success=True))
    with pytest.raises(ValueError, match="buffer_select"):
        ring.prep_send_zc(sender, b"abc", sqe_flags=make_sqe_flags(buffer_select=True))
    assert ring.pending_sq_entries == before
    assert ring.in_flight == 0


def test_a_failed_send_ends_and_frees_the_buffer(ring: IoUring, tcp: Pair) -> None:
    """AF_UNIX sockets have no zero-copy send: the kernel fails it, and every completion for
    it arrives, the last without ``more``; then the buffer is free."""
    a, b = socket.socketpair()
    with a, b:
        data = bytearray(b"abc")
        ud = ring.prep_send_zc(a, data)
        got = completions_of(ring, ud)
    assert got[0].result < 0
    assert not got[-1].more
    data.extend(b"d")


def test_closing_the_ring_with_a_send_in_flight(tcp: Pair) -> None:
    from century_ring import make_io_ring

    sender, receiver = tcp
    data = bytearray(b"y" * 100_000)
    with make_io_ring() as ring:
        ring.prep_send_zc(sender, data)
        ring.submit()
    data.extend(b"!")
    assert len(recv_exactly(receiver, 100_000)) == 100_000


def test_io_drain_is_refused_since_the_kernel_would_never_start_the_send(
    ring: IoUring, tcp: Pair
) -> None:
    """On Linux 6.18 a drained zero-copy send never starts and cannot be cancelled (closing
    the ring then waits 10 s and leaks); the ring refuses it and queues nothing."""
    sender, _ = tcp
    with pytest.raises(ValueError, match="io_drain"):
        ring.prep_send_zc(sender, b"x", sqe_flags=make_sqe_flags(io_drain=True))
    assert ring.pending_sq_entries == 0 and ring.in_flight == 0


def test_a_ring_that_has_drained_refuses_zero_copy_sends(ring: IoUring, tcp: Pair) -> None:
    """Once any entry with io_drain was queued, the kernel holds back every later zero-copy
    send on that ring for good, so they are refused there; another ring still sends."""
    sender, receiver = tcp
    ring.prep_nop(sqe_flags=make_sqe_flags(io_drain=True))
    assert len(drain(ring)) == 1
    with pytest.raises(ValueError, match="io_drain"):
        ring.prep_send_zc(sender, b"x")
    assert ring.pending_sq_entries == 0 and ring.in_flight == 0

    other = make_io_ring(8)
    try:
        ud = other.prep_send_zc(sender, b"still sends")
        first, notification = completions_of(other, ud)
        assert first.result == len(b"still sends") and notification.notification
    finally:
        other.close()
    assert recv_exactly(receiver, len(b"still sends")) == b"still sends"


def test_sends_queued_before_a_drain_complete(ring: IoUring, tcp: Pair) -> None:
    """The refusal is about sends after a drain: one queued before it posts both completions."""
    sender, receiver = tcp
    ud = ring.prep_send_zc(sender, b"first")
    nop = ring.prep_nop(sqe_flags=make_sqe_flags(io_drain=True))
    events = drain(ring)
    assert [c.user_data for c in events].count(ud) == 2
    assert [c.user_data for c in events].count(nop) == 1
    assert ring.in_flight == 0
    assert recv_exactly(receiver, 5) == b"first"
