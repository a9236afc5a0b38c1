"""Provided buffer rings: register_buffer_ring, prep_recv(buffer_group=...) one-shot, multishot
and bundles, and the ProvidedBuffer that hands each buffer back, used as a user would,
including the abuse cases (release twice, use after release, unregister or close while a
multishot receive is armed, an empty ring, garbage-collected buffers)."""

from __future__ import annotations

import errno
import gc
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from century_ring import (
    BufferRing,
    CompletionEvent,
    IoUring,
    ProvidedBuffer,
    make_io_ring,
    make_sqe_flags,
)
from conftest import collect, drain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Pair = tuple[socket.socket, socket.socket]


@pytest.fixture
def tcp() -> Iterator[Pair]:
    """A connected loopback TCP pair: (sender, receiver)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname(), timeout=10)
        receiver, _ = listener.accept()
    receiver.settimeout(10)
    with sender, receiver:
        yield sender, receiver


def buffer_ring(ring: IoUring, group_id: int = 1, count: int = 8, size: int = 64) -> BufferRing:
    try:
        return ring.register_buffer_ring(group_id, count, size)
    except NotImplementedError as err:
        pytest.skip(str(err))


def arm(ring: IoUring, fd: socket.socket, group: BufferRing | int, **kwargs: bool) -> int:
    """prep_recv with a buffer group; skips when the kernel lacks the asked feature."""
    try:
        return ring.prep_recv(fd, 0, buffer_group=group, **kwargs)
    except NotImplementedError as err:
        pytest.skip(str(err))


def reap_until(
    ring: IoUring, done: Callable[[list[CompletionEvent]], bool], timeout: float = 10.0
) -> list[CompletionEvent]:
    """Reap completions until ``done(all reaped so far)`` is true."""
    got: list[CompletionEvent] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"gave up waiting; reaped {got}"
        ring.submit_and_wait_with_timeout(0.2)
        got.extend(ring.get_completion_entries())
    return got


def final(user_data: int) -> Callable[[list[CompletionEvent]], bool]:
    return lambda got: any(c.user_data == user_data and not c.more for c in got)


def one_recv(ring: IoUring, fd: socket.socket, group: BufferRing | int) -> CompletionEvent:
    ud = arm(ring, fd, group)
    return collect(ring, [ud])[ud]


# --- registering -----------------------------------------------------------------------------


def test_register_reports_its_shape(ring: IoUring) -> None:
    group = buffer_ring(ring, group_id=7, count=16, size=100)
    assert (group.group_id, group.count, group.size) == (7, 16, 100)
    assert group.available == 16
    assert group.registered
    assert "group_id=7" in repr(group)


def test_a_taken_group_id_is_refused_until_unregistered(ring: IoUring) -> None:
    group = buffer_ring(ring, group_id=3)
    with pytest.raises(ValueError, match="group_id 3 already has a buffer ring"):
        ring.register_buffer_ring(3, 4, 16)
    group.unregister()
    assert not group.registered
    again = ring.register_buffer_ring(3, 4, 16)
    assert again.registered and again.count == 4


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((-1, 8, 64), ValueError, "group_id must be between 0 and 65535"),
        ((65536, 8, 64), ValueError, "group_id must be between 0 and 65535"),
        ((1, 0, 64), ValueError, "count must be between 1 and 32768"),
        ((1, 65536, 64), ValueError, "count must be between 1 and 32768"),
        ((1, 3, 64), ValueError, "count must be a power of two"),
        ((1, 8, 0), ValueError, "size must be between 1 and 2147483647"),
        ((1, 8, 2**31), ValueError, "size must be between 1 and 2147483647"),
        ((1, 32768, 2**31 - 1), ValueError, r"count \* size must be at most"),
        (("1", 8, 64), TypeError, "group_id must be an int"),
        ((1, 8.0, 64), TypeError, "count must be an int"),
    ],
)
def test_bad_registration_arguments_are_refused(
    ring: IoUring, args: tuple[object, object, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ring.register_buffer_ring(*args)  # type: ignore[arg-type]


def test_unregister_by_id_and_context_manager(ring: IoUring) -> None:
    group = buffer_ring(ring, group_id=5)
    ring.unregister_buffer_ring(5)
    assert not group.registered
    with pytest.raises(ValueError, match="no buffer ring with group_id 5"):
        ring.unregister_buffer_ring(5)
    group.unregister()  # already gone: nothing to do
    with ring.register_buffer_ring(5, 2, 8) as second:
        assert second.registered
    assert not second.registered


# --- receiving into provided buffers ----------------------------------------------------------


def test_one_shot_recv_gives_a_provided_buffer(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, group_id=2, count=4, size=32)
    sender.sendall(b"hello, provided buffers")
    cqe = one_recv(ring, receiver, group)
    assert cqe.result == len(b"hello, provided buffers")
    assert cqe.buffer is None
    provided = cqe.provided_buffer
    assert isinstance(provided, ProvidedBuffer)
    assert cqe.flags & 1  # IORING_CQE_F_BUFFER
    assert provided.buffer_id == cqe.flags >> 16
    assert provided.buffer_ids == (provided.buffer_id,)
    assert provided.group_id == 2
    assert len(provided) == cqe.result
    assert bytes(provided.memory) == b"hello, provided buffers"
    assert provided.tobytes() == bytes(provided) == b"hello, provided buffers"
    assert [bytes(m) for m in provided.memories] == [b"hello, provided buffers"]
    assert group.available == 3
    provided.release()
    assert provided.released
    assert group.available == 4


def test_group_given_by_id_and_byte_count_caps_the_receive(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    buffer_ring(ring, group_id=9, count=2, size=32)
    sender.sendall(b"0123456789")
    ud = ring.prep_recv(receiver, 4, buffer_group=9)
    cqe = collect(ring, [ud])[ud]
    assert cqe.provided_buffer is not None
    assert cqe.provided_buffer.tobytes() == b"0123"
    assert receiver.recv(100) == b"456789"


def test_buffer_select_flag_is_accepted_with_a_group(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring)
    sender.sendall(b"x")
    ud = ring.prep_recv(
        receiver, 0, buffer_group=group, sqe_flags=make_sqe_flags(buffer_select=True)
    )
    cqe = collect(ring, [ud])[ud]
    assert cqe.provided_buffer is not None and cqe.provided_buffer.tobytes() == b"x"


def test_bad_recv_arguments_queue_nothing(ring: IoUring, tcp: Pair) -> None:
    _, receiver = tcp
    group = buffer_ring(ring, group_id=1)
    with make_io_ring() as other:
        foreign = other.register_buffer_ring(1, 2, 8)
        before = ring.pending_sq_entries
        cases: list[tuple[Callable[[], object], type[Exception], str]] = [
            (lambda: ring.prep_recv(receiver, 0, multishot=True), ValueError, "buffer_group"),
            (lambda: ring.prep_recv(receiver, 0, bundle=True), ValueError, "buffer_group"),
            (
                lambda: ring.prep_recv(receiver, 0, buffer_group=4),
                ValueError,
                "no buffer ring with group_id 4",
            ),
            (
                lambda: ring.prep_recv(receiver, 0, buffer_group=foreign),
                ValueError,
                "not registered on this ring",
            ),
            (
                lambda: ring.prep_recv(receiver, 0, buffer_group="1"),  # type: ignore[arg-type]
                TypeError,
                "buffer_group must be a BufferRing",
            ),
            (
                lambda: ring.prep_recv(receiver, 0, buffer_group=70000),
                ValueError,
                "buffer_group must be between 0 and 65535",
            ),
            (
                lambda: ring.prep_recv(
                    receiver, 0, socket.MSG_WAITALL, buffer_group=group, multishot=True
                ),
                ValueError,
                "MSG_WAITALL",
            ),
            (
                lambda: ring.prep_recv(
                    receiver, 0, buffer_group=group, sqe_flags=make_sqe_flags(skip_success=True)
                ),
                ValueError,
                "SKIP_SUCCESS",
            ),
            (
                lambda: ring.prep_recv(receiver, 8, buffer_group=group, bundle=True),
                ValueError,
                "a bundle takes whole buffers",
            ),
            (
                lambda: ring.prep_recv(receiver, -1, buffer_group=group),
                ValueError,
                "byte_count",
            ),
        ]
        for call, error, match in cases:
            with pytest.raises(error, match=match):
                call()
            assert ring.pending_sq_entries == before
            assert ring.in_flight == 0
        group.unregister()
        with pytest.raises(ValueError, match="not registered on this ring"):
            ring.prep_recv(receiver, 0, buffer_group=group)
        assert ring.pending_sq_entries == before


# --- release ----------------------------------------------------------------------------------


def test_release_twice_is_a_no_op_and_use_after_release_raises(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=2, size=16)
    sender.sendall(b"abc")
    provided = one_recv(ring, receiver, group).provided_buffer
    assert provided is not None
    view = provided.memory
    provided.release()
    provided.release()
    assert provided.released
    assert group.available == 2, "released once, returned once"
    assert len(provided) == 3
    for use in (
        lambda: provided.memory,
        lambda: provided.memories,
        provided.tobytes,
        lambda: bytes(provided),
    ):
        with pytest.raises(ValueError, match="has been released"):
            use()
    with pytest.raises(ValueError, match="released"):
        view[0]
    assert "released" in repr(provided)


def test_with_block_releases(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=2, size=16)
    sender.sendall(b"abc")
    provided = one_recv(ring, receiver, group).provided_buffer
    assert provided is not None
    with provided as data:
        assert data.memory.tobytes() == b"abc"
        assert group.available == 1
    assert provided.released and group.available == 2


def test_a_held_export_blocks_release_until_it_goes(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=2, size=16)
    sender.sendall(b"pinned")
    provided = one_recv(ring, receiver, group).provided_buffer
    assert provided is not None
    pinned = pickle.PickleBuffer(provided.memory)
    with pytest.raises(BufferError, match="still holds a buffer export"):
        provided.release()
    assert not provided.released
    assert group.available == 1, "not returned while exported"
    assert bytes(pinned) == b"pinned"
    pinned.release()
    provided.release()
    assert provided.released and group.available == 2


def test_an_unreleased_buffer_goes_back_when_collected(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=4, size=16)
    for _ in range(3):
        sender.sendall(b"lost")
        cqe = one_recv(ring, receiver, group)
        assert cqe.provided_buffer is not None
        assert group.available == 3
        del cqe
        gc.collect()
        assert group.available == 4


def test_a_view_kept_past_its_buffer_is_released_with_it(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=2, size=16)
    sender.sendall(b"kept")
    cqe = one_recv(ring, receiver, group)
    assert cqe.provided_buffer is not None
    view = cqe.provided_buffer.memory
    del cqe
    gc.collect()
    assert group.available == 2
    with pytest.raises(ValueError, match="released"):
        bytes(view)


# --- multishot ---------------------------------------------------------------------------------


def test_multishot_enobufs_then_rearm_after_release(ring: IoUring, tcp: Pair) -> None:
    """Two 8-byte buffers, 24 bytes waiting: two completions take both buffers, the third
    finds the ring empty and ends the multishot with -ENOBUFS. Releasing and re-arming gets
    the rest."""
    sender, receiver = tcp
    group = buffer_ring(ring, count=2, size=8)
    sender.sendall(bytes(range(24)))
    time.sleep(0.05)
    ud = arm(ring, receiver, group, multishot=True)
    got = reap_until(ring, final(ud))
    data = [c for c in got if c.result > 0]
    assert [len(c.provided_buffer or b"") for c in data] == [8, 8]
    assert all(c.more for c in data)
    last = got[-1]
    assert last.result == -errno.ENOBUFS and not last.more and last.provided_buffer is None
    assert group.available == 0
    assert ring.in_flight == 0
    received = b"".join(c.provided_buffer.tobytes() for c in data if c.provided_buffer)
    for c in data:
        assert c.provided_buffer is not None
        c.provided_buffer.release()
    assert group.available == 2
    ud = arm(ring, receiver, group, multishot=True)
    got = reap_until(ring, lambda g: sum(max(c.result, 0) for c in g) >= 8)
    for c in got:
        if c.provided_buffer is not None:
            received += c.provided_buffer.tobytes()
            c.provided_buffer.release()
    assert received == bytes(range(24))
    ring.prep_cancel(ud)
    drain(ring)


def test_multishot_stream_integrity(ring: IoUring, tcp: Pair) -> None:
    """2 MiB of patterned data through eight 4 KiB buffers, every byte checked, re-arming
    whenever the multishot receive stops."""
    sender, receiver = tcp
    group = buffer_ring(ring, count=8, size=4096)
    total = 2 << 20
    pattern = bytes((i * 7 + i // 251) % 256 for i in range(total))
    writer = threading.Thread(target=lambda: (sender.sendall(pattern), sender.shutdown(1)))
    writer.start()
    received = bytearray()
    eof = False
    deadline = time.monotonic() + 60
    ud = arm(ring, receiver, group, multishot=True)
    while not eof:
        assert time.monotonic() < deadline
        ring.submit_and_wait_with_timeout(0.5)
        for cqe in ring.get_completion_entries():
            if cqe.provided_buffer is not None:
                with cqe.provided_buffer as provided:
                    received += provided.memory
            if cqe.result == 0:
                eof = True
            elif cqe.result < 0:
                assert cqe.result == -errno.ENOBUFS, cqe
            if not cqe.more and not eof:
                ud = arm(ring, receiver, group, multishot=True)
    writer.join()
    assert len(received) == total
    assert received == pattern
    drain(ring)
    assert group.available == 8
    del ud


def test_unregister_while_multishot_is_armed(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=4, size=16)
    ud = arm(ring, receiver, group, multishot=True)
    sender.sendall(b"before")
    first = reap_until(ring, lambda g: any(c.result > 0 for c in g))
    held = next(c.provided_buffer for c in first if c.provided_buffer is not None)
    group.unregister()
    with pytest.raises(ValueError, match="has not posted its final"):
        ring.register_buffer_ring(group.group_id, 4, 16)
    sender.sendall(b"after")
    got = reap_until(ring, final(ud))
    end = got[-1]
    assert not end.more
    assert end.result < 0 or end.provided_buffer is not None
    assert ring.in_flight == 0
    assert held.tobytes() == b"before", "held data stays valid after unregistering"
    held.release()
    assert held.released
    assert group.available == 3, "an unregistered ring takes nothing back"
    again = ring.register_buffer_ring(group.group_id, 4, 16)
    assert again.registered


def test_close_while_multishot_is_armed(tcp: Pair) -> None:
    sender, receiver = tcp
    with make_io_ring() as ring:
        group = buffer_ring(ring, count=4, size=16)
        arm(ring, receiver, group, multishot=True)
        sender.sendall(b"data")
        got = reap_until(ring, lambda g: any(c.provided_buffer is not None for c in g))
        held = next(c.provided_buffer for c in got if c.provided_buffer is not None)
    assert not group.registered
    group.unregister()  # the ring took it with it: nothing to do
    sender.sendall(b"more data after close")
    assert held.tobytes() == b"data"
    held.release()
    assert held.released
    assert receiver.recv(100) == b"more data after close"


def test_collected_after_close_does_not_crash(tcp: Pair) -> None:
    sender, receiver = tcp
    ring = make_io_ring().__enter__()
    group = buffer_ring(ring, count=2, size=16)
    arm(ring, receiver, group, multishot=True)
    sender.sendall(b"x")
    got = reap_until(ring, lambda g: any(c.provided_buffer is not None for c in g))
    ring.close()
    del got, ring, group
    gc.collect()


# --- bundles -----------------------------------------------------------------------------------


def test_bundle_spans_several_buffers_in_order(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=8, size=16)
    payload = bytes(range(100))
    sender.sendall(payload)
    time.sleep(0.05)
    received = b""
    while len(received) < len(payload):
        ud = arm(ring, receiver, group, bundle=True)
        cqe = collect(ring, [ud])[ud]
        assert cqe.result > 0
        provided = cqe.provided_buffer
        assert provided is not None
        assert len(provided) == cqe.result
        assert provided.buffer_id == cqe.flags >> 16
        assert len(provided.buffer_ids) == -(-cqe.result // 16)
        views = provided.memories
        assert [len(v) for v in views[:-1]] == [16] * (len(views) - 1)
        assert b"".join(bytes(v) for v in views) == provided.tobytes()
        if len(views) > 1:
            with pytest.raises(ValueError, match="spans"):
                _ = provided.memory
        received += provided.tobytes()
        assert group.available == 8 - len(provided.buffer_ids)
        provided.release()
        assert group.available == 8
    assert received == payload


def test_multishot_bundles_keep_the_stream_intact(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=16, size=512)
    total = 1 << 20
    pattern = bytes((i * 13) % 251 for i in range(total))
    writer = threading.Thread(target=lambda: (sender.sendall(pattern), sender.shutdown(1)))
    writer.start()
    received = bytearray()
    eof = False
    deadline = time.monotonic() + 60
    arm(ring, receiver, group, multishot=True, bundle=True)
    while not eof:
        assert time.monotonic() < deadline
        ring.submit_and_wait_with_timeout(0.5)
        for cqe in ring.get_completion_entries():
            if cqe.provided_buffer is not None:
                with cqe.provided_buffer as provided:
                    for view in provided.memories:
                        received += view
            if cqe.result == 0:
                eof = True
            if not cqe.more and not eof:
                arm(ring, receiver, group, multishot=True, bundle=True)
    writer.join()
    assert received == pattern
    drain(ring)
    assert group.available == 16


def test_probe_lists_send_zc_and_recv_still_takes_the_seed_signature(
    ring: IoUring, tcp: Pair
) -> None:
    sender, receiver = tcp
    assert "prep_send_zc" in ring.probe()
    sender.sendall(b"seed")
    ud = ring.prep_recv(receiver, 10, 0, sqe_flags=None)
    assert collect(ring, [ud])[ud].buffer == b"seed"


def test_release_in_a_forked_child_leaves_the_parent_ring_alone(ring: IoUring, tcp: Pair) -> None:
    sender, receiver = tcp
    group = buffer_ring(ring, count=2, size=16)
    sender.sendall(b"parent")
    provided = one_recv(ring, receiver, group).provided_buffer
    assert provided is not None
    pid = os.fork()
    if pid == 0:  # the child: release and collect its copies, then leave at once
        code = 0
        try:
            provided.release()
            code = 0 if provided.released else 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert group.available == 1, "the child's release did not touch the parent's ring"
    assert provided.tobytes() == b"parent"
    provided.release()
    assert group.available == 2
    sender.sendall(b"again")
    cqe = one_recv(ring, receiver, group)
    assert cqe.provided_buffer is not None and cqe.provided_buffer.tobytes() == b"again"


# --- fuzz: whatever is thrown at registration and prep_recv ----------------------------------

_junk = st.one_of(st.none(), st.text(max_size=4), st.floats(), st.builds(object))
_ints = st.one_of(
    st.integers(min_value=-3, max_value=70000),
    st.sampled_from([2**15, 2**16, 2**31 - 1, 2**31, 2**63, -(2**63)]),
    _junk,
)
_FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_FUZZ
@given(group_id=_ints, count=_ints, size=_ints)
def test_fuzz_register(ring: IoUring, group_id: object, count: object, size: object) -> None:
    """Registration either succeeds with the asked shape or raises, registering nothing."""
    try:
        group = ring.register_buffer_ring(group_id, count, size)  # type: ignore[arg-type]
    except NotImplementedError as err:
        pytest.skip(str(err))
    except (ValueError, TypeError, OverflowError, MemoryError, OSError):
        return
    assert (group.group_id, group.count, group.size) == (group_id, count, size)
    assert group.available == count
    group.unregister()


@_FUZZ
@given(data=st.data())
def test_fuzz_recv_with_a_group(ring: IoUring, data: st.DataObject) -> None:
    """prep_recv with arbitrary arguments either queues one receive that ends, or raises and
    queues nothing; the group gets every buffer back."""
    group = buffer_ring(ring, group_id=1, count=4, size=64)
    null = os.open("/dev/null", os.O_RDWR)  # not a socket: a receive fails at once
    try:
        # Never a small arbitrary number: that could be a pipe or socket that blocks forever.
        fd = data.draw(st.one_of(st.sampled_from([null, 1 << 20, -1, 2**31, 2**63]), _junk), "fd")
        byte_count = data.draw(_ints, "byte_count")
        flags = data.draw(st.one_of(st.just(0), _ints), "flags")
        buffer_group = data.draw(st.one_of(st.just(group), _ints), "buffer_group")
        multishot = data.draw(st.booleans(), "multishot")
        bundle = data.draw(st.booleans(), "bundle")
        pending, in_flight = ring.pending_sq_entries, ring.in_flight
        try:
            ud = ring.prep_recv(
                fd,  # type: ignore[arg-type]
                byte_count,  # type: ignore[arg-type]
                flags,  # type: ignore[arg-type]
                buffer_group=buffer_group,  # type: ignore[arg-type]
                multishot=multishot,
                bundle=bundle,
            )
        except (ValueError, TypeError, OverflowError, NotImplementedError):
            assert ring.pending_sq_entries == pending and ring.in_flight == in_flight
            return
        for cqe in reap_until(ring, final(ud)):
            if cqe.provided_buffer is not None:
                cqe.provided_buffer.release()
        assert ring.in_flight == in_flight
        assert group.available == 4
    finally:
        os.close(null)
        group.unregister()
