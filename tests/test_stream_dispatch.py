"""The compiled half of the loop's stream transports (``_Stream``), driven through
``IoUring._reap_to`` as the loop drives it: received data straight to ``deliver`` with the
provided buffer back in its ring at once, writes sent in order (queued ones joined), the
transport called only for what it decides, and nothing lost when something raises."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from century_ring import BufferRing, IoUring, make_io_ring
from century_ring._century_ring import _Stream

BUFFERS = 8
BUFFER_SIZE = 4096


class Transport:
    """Records what the stream asks of its transport."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


@pytest.fixture
def ring() -> Iterator[IoUring]:
    with make_io_ring(entries=64) as ring:
        yield ring


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    left.setblocking(False)
    yield left, right
    left.close()
    right.close()


def sending(ring: IoUring, fd: int) -> tuple[dict[int, Any], _Stream, Transport]:
    """A stream on ``fd``, the loop's handler table it enters its operations in, and the
    transport that records what the stream asks of it."""
    handlers: dict[int, Any] = {}
    transport = Transport()
    return handlers, _Stream(ring, fd, transport, handlers), transport


def receiving(ring: IoUring, fd: int) -> tuple[dict[int, Any], _Stream, Transport, BufferRing]:
    """As :func:`sending`, with a multishot receive armed on a buffer ring."""
    handlers, stream, transport = sending(ring, fd)
    buffers = ring.register_buffer_ring(0, BUFFERS, BUFFER_SIZE)
    stream.receive = receive = ring.prep_recv(fd, 0, buffer_group=buffers, multishot=True)
    handlers[receive] = stream
    return handlers, stream, transport, buffers


def reap_until(ring: IoUring, handlers: dict[int, Any], done: Any) -> None:
    for _ in range(100):
        if done():
            return
        ring.submit_and_wait(1)
        assert ring._reap_to(handlers) == []
    raise AssertionError("not done after 100 waits")


def test_received_data_goes_to_deliver_and_its_buffer_back_to_the_ring(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport, buffers = receiving(ring, pair[0].fileno())
    got: list[bytes] = []
    stream.deliver = got.append
    for n in range(3 * BUFFERS):  # more arrivals than the ring has buffers
        pair[1].send(b"message %d" % n)
        reap_until(ring, handlers, lambda n=n: len(got) > n)
    assert b"".join(got) == b"".join(b"message %d" % n for n in range(3 * BUFFERS))
    assert all(type(data) is bytes for data in got)
    assert buffers.available == BUFFERS
    assert transport.calls == []
    assert stream.receive in handlers  # multishot: still armed


def test_without_deliver_the_transport_decides_and_hears_the_end(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport, buffers = receiving(ring, pair[0].fileno())
    receive = stream.receive
    pair[1].send(b"held")
    reap_until(ring, handlers, lambda: transport.calls)
    pair[1].shutdown(socket.SHUT_WR)
    reap_until(ring, handlers, lambda: len(transport.calls) == 2)
    assert transport.calls == [("_received", (4, b"held", True)), ("_received", (0, None, False))]
    assert stream.receive is None
    assert receive not in handlers
    assert buffers.available == BUFFERS


def test_an_error_in_deliver_goes_to_fatal_error_and_the_next_data_still_comes(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport, _ = receiving(ring, pair[0].fileno())
    failure = ValueError("protocol bug")

    def deliver(data: bytes) -> None:
        raise failure

    stream.deliver = deliver
    pair[1].send(b"x")
    reap_until(ring, handlers, lambda: transport.calls)
    assert transport.calls == [
        ("_fatal_error", (failure, "Fatal error: protocol.data_received() call failed."))
    ]


def test_data_behind_a_handler_that_raises_comes_with_the_next_reap(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport, buffers = receiving(ring, pair[0].fileno())
    got: list[bytes] = []
    stream.deliver = got.append

    def interrupted(event: object) -> None:
        raise KeyboardInterrupt

    handlers[ring.prep_nop()] = interrupted
    ring.submit_and_wait(1)
    pair[1].send(b"behind")
    ring.submit_and_wait(2)  # the nop's completion, then the receive's
    with pytest.raises(KeyboardInterrupt):
        ring._reap_to(handlers)
    assert got == []
    # Copied out already: the buffer is back, the data waits in the ring for the next call.
    assert buffers.available == BUFFERS
    assert ring._reap_to(handlers) == []
    assert got == [b"behind"]
    assert transport.calls == []


def test_a_keyboard_interrupt_in_deliver_leaves_the_reap(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport, _ = receiving(ring, pair[0].fileno())

    def deliver(data: bytes) -> None:
        raise KeyboardInterrupt

    stream.deliver = deliver
    pair[1].send(b"x")
    ring.submit_and_wait(1)
    with pytest.raises(KeyboardInterrupt):
        ring._reap_to(handlers)
    assert transport.calls == []


def test_writes_go_out_in_order_queued_ones_joined_behind_the_send_in_flight(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport = sending(ring, pair[0].fileno())
    stream.write(b"one ")
    first = stream.send_in_flight
    assert first is not None and handlers[first] is stream
    stream.write(b"two ")
    stream.write(bytearray(b"three "))  # not bytes: the transport's _write decides
    stream.queue(b"four")
    assert stream.buffered == len(b"one two four")
    reap_until(ring, handlers, lambda: stream.send_in_flight is None)
    assert pair[1].recv(100) == b"one two four"
    assert transport.calls == [("_write", (bytearray(b"three "),))]
    assert stream.buffered == 0
    assert handlers == {}


def test_a_partial_send_sends_the_rest(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport = sending(ring, pair[0].fileno())
    data = bytes(range(256)) * 8192  # 2 MiB: more than a socket buffer takes at once
    stream.write(data)
    received = bytearray()
    while len(received) < len(data):
        ring.submit()
        ring._reap_to(handlers)
        try:
            received += pair[1].recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
    assert bytes(received) == data
    reap_until(ring, handlers, lambda: stream.send_in_flight is None)
    assert stream.buffered == 0 and transport.calls == []


def test_the_transport_hears_of_sends_when_it_watches_and_of_failures_always(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport = sending(ring, pair[0].fileno())
    stream.watch = True
    stream.write(b"watched")
    reap_until(ring, handlers, lambda: transport.calls)
    assert transport.calls == [("_send_progress", ())]
    pair[1].close()
    transport.calls.clear()
    stream.watch = False
    stream.write(b"to nobody")
    reap_until(ring, handlers, lambda: transport.calls)
    (name, (result,)), *_ = transport.calls
    assert name == "_send_failed" and result < 0


def test_a_write_past_the_high_water_mark_asks_to_pause(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport = sending(ring, pair[0].fileno())
    stream.high_water = 10
    stream.write(b"0123456789")
    assert transport.calls == []
    stream.write(b"!")
    assert transport.calls == [("_maybe_pause_protocol", ())]
    stream.write_direct = False
    stream.write(b"later")
    assert transport.calls[-1] == ("_write", (b"later",))
    reap_until(ring, handlers, lambda: stream.send_in_flight is None)
    assert pair[1].recv(100) == b"0123456789!"


def test_dropped_sends_are_not_sent_and_the_one_in_flight_is_given_to_cancel(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport = sending(ring, pair[0].fileno())
    stream.write(b"in flight")
    stream.write(b"queued")
    assert stream.drop_sends() == stream.send_in_flight
    assert stream.buffered == 0
    reap_until(ring, handlers, lambda: stream.send_in_flight is None)
    assert pair[1].recv(100) == b"in flight"
    assert ring.in_flight == 0
    assert transport.calls == []  # not watching: the send's completion asks nothing


class Subclass(bytes):
    pass


def test_the_stream_holds_only_plain_bytes(
    ring: IoUring, pair: tuple[socket.socket, socket.socket]
) -> None:
    handlers, stream, transport = sending(ring, pair[0].fileno())
    with pytest.raises(TypeError, match="takes bytes, not Subclass"):
        stream.queue(Subclass(b"x"))
    # write() hands a subclass to the transport, which copies it into plain bytes.
    stream.write(Subclass(b"y"))
    assert transport.calls == [("_write", (b"y",))]
    assert stream.send_in_flight is None
    assert handlers == {}  # nothing was queued on the ring
