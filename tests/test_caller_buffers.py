"""Reading into, and writing from, the caller's own buffers: no allocation, no copy.

``prep_read_into`` and ``prep_recv_into`` fill a writable buffer in place; ``prep_write`` and
``prep_send`` with ``copy=False`` read the caller's buffer in place. In every case the ring holds
an export of the buffer until the completion is reaped, which CPython enforces: the object can
be neither resized nor closed meanwhile.
"""

from __future__ import annotations

import array
import gc
import mmap
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from century_ring import IoUring, make_io_ring
from conftest import DATA, complete, drain, succeed


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def fill_pipe(write_end: int) -> int:
    """Fill a pipe until a write would block; returns how many bytes it holds."""
    os.set_blocking(write_end, False)
    held = 0
    try:
        while True:
            held += os.write(write_end, b"\0" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    return held


# --- reading into a caller's buffer -------------------------------------------------------------


def test_read_into_bytearray_fills_it_from_the_offset(ring: IoUring, data_fd: int) -> None:
    target = bytearray(100)
    cqe = succeed(ring, ring.prep_read_into(data_fd, target, 1000))
    assert cqe.result == 100
    assert cqe.buffer is None
    assert target == DATA[1000:1100]


def test_read_into_memoryview_slice_touches_only_the_slice(ring: IoUring, data_fd: int) -> None:
    target = bytearray(b"\xee" * 64)
    cqe = succeed(ring, ring.prep_read_into(data_fd, memoryview(target)[16:32], 0))
    assert cqe.result == 16
    assert target[:16] == b"\xee" * 16
    assert target[16:32] == DATA[:16]
    assert target[32:] == b"\xee" * 32


def test_read_into_array_and_mmap(ring: IoUring, data_fd: int) -> None:
    numbers = array.array("I", [0] * 8)
    assert succeed(ring, ring.prep_read_into(data_fd, numbers, 0)).result == 32
    assert numbers.tobytes() == DATA[:32]
    with mmap.mmap(-1, 4096) as region:
        assert succeed(ring, ring.prep_read_into(data_fd, region, 0)).result == 4096
        assert region[:] == DATA


def test_read_into_numpy_array(ring: IoUring, data_fd: int) -> None:
    numpy = pytest.importorskip("numpy", reason="numpy is not installed")
    values = numpy.zeros(256, dtype=numpy.uint8)
    assert succeed(ring, ring.prep_read_into(data_fd, values, 256)).result == 256
    assert values.tobytes() == DATA[256:512]


def test_read_into_short_read_at_end_of_file(ring: IoUring, data_fd: int) -> None:
    target = bytearray(b"\xee" * 200)
    cqe = succeed(ring, ring.prep_read_into(data_fd, target, len(DATA) - 50))
    assert cqe.result == 50
    assert target[:50] == DATA[-50:]
    assert target[50:] == b"\xee" * 150


def test_read_into_current_position_advances_it(ring: IoUring, data_fd: int) -> None:
    first, second = bytearray(10), bytearray(10)
    succeed(ring, ring.prep_read_into(data_fd, first))
    succeed(ring, ring.prep_read_into(data_fd, second))
    assert first + second == DATA[:20]


def test_read_into_empty_buffer_reads_nothing(ring: IoUring, data_fd: int) -> None:
    assert succeed(ring, ring.prep_read_into(data_fd, bytearray(), 0)).result == 0


def test_read_into_o_direct_page_aligned_mmap(ring: IoUring, tmp_dir: Path) -> None:
    path = tmp_dir / "direct.bin"
    path.write_bytes(os.urandom(8192))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        with mmap.mmap(-1, 8192) as region:
            assert succeed(ring, ring.prep_read_into(fd, region, 0)).result == 8192
            assert region[:] == path.read_bytes()
    finally:
        os.close(fd)


def test_read_into_failure_gives_errno(ring: IoUring, tmp_dir: Path) -> None:
    fd = os.open(tmp_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        cqe = complete(ring, ring.prep_read_into(fd, bytearray(10), 0))
    finally:
        os.close(fd)
    assert cqe.result == -21  # EISDIR


# --- the export is held while the kernel may write ----------------------------------------------


def test_bytearray_cannot_be_resized_while_read_is_in_flight(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    read_end, write_end = pipe
    target = bytearray(8)
    user_data = ring.prep_read_into(read_end, target)
    ring.submit()
    with pytest.raises(BufferError):
        target.extend(b"more")
    with pytest.raises(BufferError):
        del target[:4]
    os.write(write_end, b"abc")
    assert succeed(ring, user_data).result == 3
    assert target[:3] == b"abc"
    target.extend(b"more")  # the export is gone once the completion is reaped
    assert len(target) == 12


def test_mmap_cannot_be_closed_while_read_is_in_flight(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    read_end, write_end = pipe
    region = mmap.mmap(-1, 4096)
    user_data = ring.prep_read_into(read_end, memoryview(region)[100:200])
    ring.submit()
    with pytest.raises(BufferError):
        region.close()
    os.write(write_end, b"mapped")
    succeed(ring, user_data)
    assert region[100:106] == b"mapped"
    region.close()


def test_the_ring_holds_a_reference_until_the_completion(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    read_end, write_end = pipe
    target = bytearray(4)
    before = sys.getrefcount(target)
    user_data = ring.prep_read_into(read_end, target)
    assert sys.getrefcount(target) == before + 1
    os.write(write_end, b"ok")
    succeed(ring, user_data)
    assert sys.getrefcount(target) == before


def test_dropping_the_only_reference_keeps_the_buffer_alive(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    read_end, write_end = pipe
    user_data = ring.prep_read_into(read_end, bytearray(4096))
    ring.submit()
    gc.collect()
    # Fresh allocations of the same size would reuse the freed memory if it had been freed.
    decoys = [bytearray(b"\x55" * 4096) for _ in range(64)]
    os.write(write_end, b"\xaa" * 4096)
    assert succeed(ring, user_data).result == 4096
    assert all(d == b"\x55" * 4096 for d in decoys)


@pytest.mark.parametrize("how", ["close", "drop"])
def test_closing_the_ring_releases_the_export(how: str, pipe: tuple[int, int]) -> None:
    read_end, _ = pipe
    target = bytearray(16)
    ring = make_io_ring()
    ring.prep_read_into(read_end, target)
    ring.submit()
    if how == "close":
        ring.close()
    else:
        del ring
        gc.collect()
    target.extend(b"x")  # the ring cancelled the read, drained it and let the buffer go
    assert len(target) == 17


# --- refused before anything is queued ----------------------------------------------------------


@pytest.mark.parametrize(
    "buffer",
    [b"read-only", memoryview(b"read-only"), "text", 42, None],
    ids=["bytes", "memoryview-of-bytes", "str", "int", "None"],
)
def test_read_into_refuses_what_it_cannot_write(
    ring: IoUring, data_fd: int, buffer: object
) -> None:
    with pytest.raises(TypeError, match="buffer must be a writable bytes-like object"):
        ring.prep_read_into(data_fd, buffer, 0)  # type: ignore[arg-type]
    assert ring.pending_sq_entries == 0
    assert ring.in_flight == 0


def test_read_into_refuses_a_read_only_mmap(ring: IoUring, data_file: Path) -> None:
    with open(data_file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        with pytest.raises(TypeError, match="read-only"):
            ring.prep_read_into(f.fileno(), m, 0)
    assert ring.pending_sq_entries == 0


def test_read_into_refuses_a_strided_view(ring: IoUring, data_fd: int) -> None:
    with pytest.raises(ValueError, match="contiguous"):
        ring.prep_read_into(data_fd, memoryview(bytearray(16))[::2], 0)
    assert ring.pending_sq_entries == 0


def test_read_into_refuses_bad_offsets_and_fds(ring: IoUring, data_fd: int) -> None:
    target = bytearray(4)
    with pytest.raises(ValueError, match="offset"):
        ring.prep_read_into(data_fd, target, -2)
    with pytest.raises(ValueError, match="fd"):
        ring.prep_read_into(-5, target, 0)
    assert ring.pending_sq_entries == 0
    target.extend(b"x")  # a refused call holds no export


# --- receiving into a caller's buffer ----------------------------------------------------------


def test_recv_into_fills_the_buffer(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socket_pair
    a.sendall(b"hello, ring")
    target = bytearray(64)
    cqe = succeed(ring, ring.prep_recv_into(b, target))
    assert cqe.result == 11
    assert cqe.buffer is None
    assert target[:11] == b"hello, ring"


def test_recv_into_waitall_fills_a_slice(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socket_pair
    target = bytearray(20)
    user_data = ring.prep_recv_into(b.fileno(), memoryview(target)[5:15], socket.MSG_WAITALL)
    ring.submit()
    a.sendall(b"01234")
    a.sendall(b"56789")
    assert succeed(ring, user_data).result == 10
    assert target == b"\0" * 5 + b"0123456789" + b"\0" * 5


def test_recv_into_sees_the_peer_shut_down(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socket_pair
    a.shutdown(socket.SHUT_WR)
    assert succeed(ring, ring.prep_recv_into(b, bytearray(8))).result == 0


def test_recv_into_refuses_read_only_buffers(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    with pytest.raises(TypeError, match="writable"):
        ring.prep_recv_into(socket_pair[1], b"\0" * 8)
    with pytest.raises(ValueError, match="flags"):
        ring.prep_recv_into(socket_pair[1], bytearray(8), -1)
    assert ring.pending_sq_entries == 0


# --- writing and sending without a copy ---------------------------------------------------------


def test_write_without_copy_writes_the_range(ring: IoUring, tmp_dir: Path) -> None:
    path = tmp_dir / "out.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        source = bytearray(b"0123456789")
        cqe = succeed(ring, ring.prep_write(fd, source, 0, 4, 3, copy=False))
        assert cqe.result == 4
        assert cqe.buffer is None
    finally:
        os.close(fd)
    assert path.read_bytes() == b"3456"


def test_write_without_copy_holds_the_buffer_until_written(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    read_end, write_end = pipe
    held = fill_pipe(write_end)
    source = bytearray(b"tail of the stream")
    user_data = ring.prep_write(write_end, source, copy=False)
    ring.submit()
    with pytest.raises(BufferError):
        source.clear()
    drained = 0
    while drained < held + len(source):
        drained += len(os.read(read_end, 65536))
    assert succeed(ring, user_data).result == len(source)
    source.clear()  # released after the completion


def test_write_with_copy_lets_the_caller_change_the_buffer(ring: IoUring, tmp_dir: Path) -> None:
    path = tmp_dir / "copied.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        source = bytearray(b"original")
        user_data = ring.prep_write(fd, source, 0)
        source[:] = b"changed!"  # allowed: the ring wrote from its own copy
        succeed(ring, user_data)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"original"


def test_write_without_copy_refuses_out_of_range(ring: IoUring, data_fd: int) -> None:
    source = bytearray(10)
    with pytest.raises(ValueError, match="out of range"):
        ring.prep_write(data_fd, source, 0, 11, copy=False)
    with pytest.raises(ValueError, match="buffer_offset 11"):
        ring.prep_write(data_fd, source, 0, None, 11, copy=False)
    with pytest.raises(TypeError, match="bytes-like"):
        ring.prep_write(data_fd, "text", 0, copy=False)  # type: ignore[arg-type]
    assert ring.pending_sq_entries == 0
    source.extend(b"x")  # no export left behind by a refused call


def test_send_without_copy(ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = socket_pair
    payload = memoryview(b"zero-copy-ish payload")
    assert succeed(ring, ring.prep_send(a, payload, 9, 5, copy=False)).result == 9
    assert b.recv(64) == b"copy-ish "


def test_send_without_copy_from_bytes_keeps_it_alive(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socket_pair
    payload = os.urandom(1 << 20)  # more than the socket buffer: the send has to wait
    # MSG_WAITALL: the kernel keeps sending until every byte is out, instead of a short send.
    user_data = ring.prep_send(a, payload, flags=socket.MSG_WAITALL, copy=False)
    ring.submit()
    expected = payload
    del payload
    gc.collect()
    received = bytearray()
    while len(received) < len(expected):
        received += b.recv(1 << 16)
    assert succeed(ring, user_data).result == len(expected)
    assert bytes(received) == expected
    drain(ring)
