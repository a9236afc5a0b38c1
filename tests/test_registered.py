"""Registered (fixed) files and buffers, used from outside as a user would.

Effects are observed through the os and socket modules; the abuse cases (resizing or closing a
registered buffer, unregistering or closing the ring with operations in flight) check that
nothing crashes, nothing is lost, and memory the kernel may still write stays pinned until the
completion is reaped.
"""

from __future__ import annotations

import array
import errno
import fcntl
import functools
import gc
import mmap
import os
import resource
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from century_ring import (
    ALLOC_FILE_INDEX,
    FileOpenMode,
    IoUring,
    make_io_ring,
    make_sqe_flags,
    raise_for_cqe,
)
from conftest import collect, complete, drain, succeed

FIXED = make_sqe_flags(fixed_file=True)


def require(ring: IoUring, *methods: str) -> None:
    """Skip unless the kernel's probe lists every one of ``methods``."""
    probe = ring.probe()
    missing = [m for m in methods if not probe[m]]
    if missing:
        pytest.skip(f"the running kernel lacks {', '.join(missing)}")


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(10)
        b.settimeout(10)
        yield a, b


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket()
    with s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s


def unchanged_queue(ring: IoUring, call: Callable[[], Any], exc: type[BaseException]) -> str:
    """``call`` raises ``exc`` and queues nothing; returns the message."""
    before = ring.pending_sq_entries
    with pytest.raises(exc) as info:
        call()
    assert ring.pending_sq_entries == before
    return str(info.value)


# --- registered files ------------------------------------------------------------------------


def test_write_and_read_through_a_fixed_file(ring: IoUring, tmp_dir: Path) -> None:
    """A registered slot works after the descriptor itself is closed: the table holds the file."""
    path = tmp_dir / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    ring.register_files([fd])
    os.close(fd)
    assert succeed(ring, ring.prep_write(0, b"through a slot", 0, sqe_flags=FIXED)).result == 14
    assert path.read_bytes() == b"through a slot"
    cqe = succeed(ring, ring.prep_read(0, 100, 8, sqe_flags=FIXED))
    assert cqe.buffer == b"a slot"


def test_register_files_takes_fileno_objects_and_empty_slots(
    ring: IoUring, data_file: Path
) -> None:
    with open(data_file, "rb") as f:
        ring.register_files([-1, f, None])
        assert succeed(ring, ring.prep_read(1, 4, 0, sqe_flags=FIXED)).buffer == bytes(range(4))
    for empty in (0, 2):
        assert complete(ring, ring.prep_read(empty, 4, 0, sqe_flags=FIXED)).result == -errno.EBADF


def test_fixed_slots_work_for_socket_operations(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socket_pair
    ring.register_files([a, b])
    assert succeed(ring, ring.prep_send(0, b"ping", sqe_flags=FIXED)).result == 4
    assert b.recv(10) == b"ping"
    a.sendall(b"pong")
    assert succeed(ring, ring.prep_recv(1, 10, sqe_flags=FIXED)).buffer == b"pong"
    target = bytearray(4)
    a.sendall(b"into")
    assert succeed(ring, ring.prep_recv_into(1, target, sqe_flags=FIXED)).result == 4
    assert target == b"into"
    succeed(ring, ring.prep_shutdown(0, socket.SHUT_WR, sqe_flags=FIXED))
    assert b.recv(10) == b""


def test_fixed_slot_for_fsync_and_read_into(ring: IoUring, data_file: Path) -> None:
    fd = os.open(data_file, os.O_RDWR)
    try:
        ring.register_files([fd])
    finally:
        os.close(fd)
    succeed(ring, ring.prep_fsync(0, sqe_flags=FIXED))
    target = bytearray(16)
    assert succeed(ring, ring.prep_read_into(0, target, 16, sqe_flags=FIXED)).result == 16
    assert target == bytes(range(16, 32))


def test_cancel_by_fixed_slot(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    require(ring, "prep_cancel")
    a, _ = socket_pair
    ring.register_files([a])
    recv = ring.prep_recv(0, 10, sqe_flags=FIXED)
    ring.submit()
    cancel = ring.prep_cancel(fd=0, sqe_flags=FIXED)
    got = collect(ring, [recv, cancel])
    assert got[cancel].result == 0, "the recv on slot 0 was found by its slot"
    assert got[recv].result == -errno.ECANCELED


def test_openat_into_a_slot(ring: IoUring, data_file: Path) -> None:
    ring.register_files_sparse(4)
    cqe = succeed(ring, ring.prep_openat(None, data_file, FileOpenMode.READ_ONLY, file_index=2))
    assert cqe.result == 0, "a file installed into a given slot completes with 0"
    assert succeed(ring, ring.prep_read(2, 4, 0, sqe_flags=FIXED)).buffer == bytes(range(4))


def test_openat2_into_a_slot(ring: IoUring, data_file: Path) -> None:
    require(ring, "prep_openat2")
    ring.register_files_sparse(2)
    succeed(ring, ring.prep_openat2(None, data_file, FileOpenMode.READ_ONLY, file_index=1))
    assert succeed(ring, ring.prep_read(1, 3, 5, sqe_flags=FIXED)).buffer == bytes([5, 6, 7])


def test_alloc_file_index_picks_free_slots(ring: IoUring, data_file: Path) -> None:
    ring.register_files_sparse(2)
    first = succeed(
        ring, ring.prep_openat(None, data_file, FileOpenMode.READ_ONLY, file_index=ALLOC_FILE_INDEX)
    ).result
    second = succeed(
        ring, ring.prep_openat(None, data_file, FileOpenMode.READ_ONLY, file_index=ALLOC_FILE_INDEX)
    ).result
    assert {first, second} == {0, 1}
    assert succeed(ring, ring.prep_read(second, 2, 0, sqe_flags=FIXED)).buffer == b"\0\1"
    full = complete(
        ring, ring.prep_openat(None, data_file, FileOpenMode.READ_ONLY, file_index=ALLOC_FILE_INDEX)
    )
    assert full.result == -errno.ENFILE, "no free slot left"


def test_accept_into_a_slot(ring: IoUring, listener: socket.socket) -> None:
    ring.register_files_sparse(2)
    with socket.create_connection(listener.getsockname(), timeout=10) as client:
        assert succeed(ring, ring.prep_accept(listener, file_index=1)).result == 0
        client.sendall(b"over a fixed slot")
        assert succeed(ring, ring.prep_recv(1, 100, sqe_flags=FIXED)).buffer == (
            b"over a fixed slot"
        )


def test_multishot_accept_allocates_a_slot_per_connection(
    ring: IoUring, listener: socket.socket
) -> None:
    ring.register_files_sparse(4)
    ud = ring.prep_accept(listener, multishot=True, file_index=ALLOC_FILE_INDEX)
    ring.submit()
    clients = [socket.create_connection(listener.getsockname(), timeout=10) for _ in range(2)]
    try:
        slots: list[int] = []
        while len(slots) < 2:
            ring.submit_and_wait_with_timeout(1)
            for cqe in ring.get_completion_entries():
                assert cqe.user_data == ud
                raise_for_cqe(cqe)
                assert cqe.more
                slots.append(cqe.result)
        assert sorted(slots) == [0, 1]
        for client, message in zip(clients, (b"first", b"second"), strict=True):
            client.sendall(message)
        received = {
            succeed(ring, ring.prep_recv(slot, 100, sqe_flags=FIXED)).buffer for slot in slots
        }
        assert received == {b"first", b"second"}
    finally:
        for client in clients:
            client.close()
        cancel = ring.prep_cancel(ud)
        collect(ring, [cancel])
        drain(ring)


def test_socket_into_a_slot_then_connect_and_send(ring: IoUring, listener: socket.socket) -> None:
    require(ring, "prep_create_socket", "prep_connect")
    ring.register_files_sparse(1)
    cqe = succeed(ring, ring.prep_create_socket(socket.AF_INET, socket.SOCK_STREAM, file_index=0))
    assert cqe.result == 0
    succeed(ring, ring.prep_connect(0, listener.getsockname(), sqe_flags=FIXED))
    server, _ = listener.accept()
    with server:
        server.settimeout(10)
        succeed(ring, ring.prep_send(0, b"from a slot", sqe_flags=FIXED))
        assert server.recv(100) == b"from a slot"


def test_fixed_fd_install_gives_a_real_descriptor(ring: IoUring, data_file: Path) -> None:
    require(ring, "prep_fixed_fd_install")
    ring.register_files_sparse(1)
    succeed(ring, ring.prep_openat(None, data_file, FileOpenMode.READ_ONLY, file_index=0))
    fd = succeed(ring, ring.prep_fixed_fd_install(0)).result
    try:
        assert os.fstat(fd).st_size == data_file.stat().st_size
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert os.pread(fd, 3, 10) == bytes([10, 11, 12])
    finally:
        os.close(fd)
    fd = succeed(ring, ring.prep_fixed_fd_install(0, cloexec=False)).result
    try:
        assert not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)
    # The slot still holds the file.
    assert succeed(ring, ring.prep_read(0, 1, 0, sqe_flags=FIXED)).buffer == b"\0"


def test_close_a_slot_then_using_it_fails(ring: IoUring, data_file: Path) -> None:
    with open(data_file, "rb") as f:
        ring.register_files([f])
    assert succeed(ring, ring.prep_close(0, sqe_flags=FIXED)).result == 0
    assert complete(ring, ring.prep_read(0, 4, 0, sqe_flags=FIXED)).result == -errno.EBADF
    # The emptied slot can be filled again.
    with open(data_file, "rb") as f:
        assert ring.update_registered_files(0, [f]) == 1
    assert succeed(ring, ring.prep_read(0, 2, 0, sqe_flags=FIXED)).buffer == b"\0\1"


def test_update_replaces_and_empties_slots(ring: IoUring, tmp_dir: Path) -> None:
    (tmp_dir / "a").write_bytes(b"A")
    (tmp_dir / "b").write_bytes(b"B")
    ring.register_files_sparse(3)
    with open(tmp_dir / "a", "rb") as a, open(tmp_dir / "b", "rb") as b:
        assert ring.update_registered_files(1, [a, b]) == 2
    assert succeed(ring, ring.prep_read(1, 1, 0, sqe_flags=FIXED)).buffer == b"A"
    assert succeed(ring, ring.prep_read(2, 1, 0, sqe_flags=FIXED)).buffer == b"B"
    assert ring.update_registered_files(1, [-1]) == 1
    assert complete(ring, ring.prep_read(1, 1, 0, sqe_flags=FIXED)).result == -errno.EBADF


def test_unregister_files_with_a_recv_in_flight(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    """The pending recv keeps its own reference to the socket: it still completes with the
    data sent after the table is gone, and a new operation on the slot fails."""
    a, b = socket_pair
    ring.register_files([a])
    recv = ring.prep_recv(0, 100, sqe_flags=FIXED)
    ring.submit()
    ring.unregister_files()
    b.sendall(b"still delivered")
    assert succeed(ring, recv).buffer == b"still delivered"
    later = complete(ring, ring.prep_recv(0, 100, sqe_flags=FIXED))
    assert later.result in (-errno.EBADF, -errno.ENXIO)
    # A new table can be registered.
    ring.register_files([b])


def test_unregister_files_then_cancel_the_pending_recv(
    ring: IoUring, socket_pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = socket_pair
    ring.register_files([a])
    recv = ring.prep_recv(0, 100, sqe_flags=FIXED)
    ring.submit()
    ring.unregister_files()
    cancel = ring.prep_cancel(recv)
    got = collect(ring, [recv, cancel])
    assert got[recv].result == -errno.ECANCELED


def test_closing_the_ring_with_fixed_file_ops_in_flight(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socket_pair
    with make_io_ring() as ring:
        ring.register_files([a])
        ring.prep_recv(0, 100, sqe_flags=FIXED)
        ring.submit()
    b.sendall(b"x")
    assert a.recv(10) == b"x", "the socket still works: the ring let go of it"


def test_splice_between_fixed_slots(ring: IoUring, data_file: Path, pipe: tuple[int, int]) -> None:
    """``fixed_file`` covers splice's ``fd_out``; ``SPLICE_F_FD_IN_FIXED`` makes ``fd_in`` a slot
    too, as the docs say."""
    require(ring, "prep_splice")
    r, w = pipe
    with open(data_file, "rb") as f:
        ring.register_files([f, w])
    splice_f_fd_in_fixed = 1 << 31
    cqe = succeed(ring, ring.prep_splice(0, 0, 1, -1, 10, splice_f_fd_in_fixed, sqe_flags=FIXED))
    assert cqe.result == 10
    assert os.read(r, 10) == bytes(range(10))


def test_the_directory_of_an_at_operation_cannot_be_a_slot(ring: IoUring, data_file: Path) -> None:
    dir_fd = os.open(data_file.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ring.register_files([dir_fd])
    finally:
        os.close(dir_fd)
    cqe = complete(
        ring, ring.prep_openat(0, data_file.name, FileOpenMode.READ_ONLY, sqe_flags=FIXED)
    )
    assert cqe.result == -errno.EBADF


def test_file_registration_errors(ring: IoUring, data_file: Path) -> None:
    with open(data_file, "rb") as f:
        assert "must not be empty" in unchanged_queue(
            ring, lambda: ring.register_files([]), ValueError
        )
        unchanged_queue(ring, lambda: ring.register_files(3), TypeError)  # type: ignore[arg-type]
        unchanged_queue(ring, lambda: ring.register_files(["x"]), TypeError)  # type: ignore[list-item]
        unchanged_queue(ring, lambda: ring.register_files([-2]), ValueError)
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        with pytest.raises(OSError) as info:
            ring.register_files([f, r])
        assert info.value.errno == errno.EBADF
        assert f"fds[1] (for slot 1) = {r} is not an open file descriptor" in str(info.value)
        with pytest.raises(OSError) as info:
            ring.register_files([ring.fileno()])
        assert info.value.errno == errno.EBADF and "io_uring" in str(info.value)
        ring.register_files([f, -1])
        with pytest.raises(OSError) as info:
            ring.register_files([f])
        assert info.value.errno == errno.EBUSY and "already registered" in str(info.value)
        with pytest.raises(OSError) as info:
            ring.register_files_sparse(2)
        assert info.value.errno == errno.EBUSY
        message = unchanged_queue(ring, lambda: ring.update_registered_files(1, [f, f]), ValueError)
        assert "slots 1 to 2 are out of range" in message and "2 slots" in message
        unchanged_queue(ring, lambda: ring.update_registered_files(-1, [f]), ValueError)
        unchanged_queue(ring, lambda: ring.update_registered_files(0, []), ValueError)
        ring.unregister_files()
        assert "no files are registered" in unchanged_queue(ring, ring.unregister_files, ValueError)
        assert "register_files" in unchanged_queue(
            ring, lambda: ring.update_registered_files(0, [f]), ValueError
        )


def test_register_files_sparse_bounds(ring: IoUring) -> None:
    unchanged_queue(ring, lambda: ring.register_files_sparse(0), ValueError)
    unchanged_queue(ring, lambda: ring.register_files_sparse(2**20 + 1), ValueError)
    unchanged_queue(ring, lambda: ring.register_files_sparse("4"), TypeError)  # type: ignore[arg-type]


def test_more_slots_than_the_open_file_limit(ring: IoUring) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        with pytest.raises(OSError) as info:
            ring.register_files_sparse(100)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert info.value.errno == errno.EMFILE and "RLIMIT_NOFILE" in str(info.value)


def test_file_index_refusals(ring: IoUring, data_file: Path, listener: socket.socket) -> None:
    def openat(index: Any) -> Callable[[], int]:
        return lambda: ring.prep_openat(
            None,
            data_file,
            FileOpenMode.READ_ONLY,
            file_index=index,
        )

    assert "register_files" in unchanged_queue(ring, openat(0), ValueError)
    assert "register_files" in unchanged_queue(ring, openat(ALLOC_FILE_INDEX), ValueError)
    ring.register_files_sparse(2)
    assert "2 slots" in unchanged_queue(ring, openat(2), ValueError)
    unchanged_queue(ring, openat(-1), ValueError)
    unchanged_queue(ring, openat(2**32), ValueError)
    unchanged_queue(ring, openat("0"), TypeError)
    unchanged_queue(
        ring,
        lambda: ring.prep_accept(listener, multishot=True, file_index=0),
        ValueError,
    )
    unchanged_queue(
        ring,
        lambda: ring.prep_create_socket(socket.AF_INET, socket.SOCK_STREAM, file_index=5),
        ValueError,
    )
    unchanged_queue(ring, lambda: ring.prep_close(2, sqe_flags=FIXED), ValueError)
    unchanged_queue(ring, lambda: ring.prep_fixed_fd_install(2), ValueError)
    unchanged_queue(ring, lambda: ring.prep_fixed_fd_install(-1), ValueError)
    ring.unregister_files()
    assert "register_files" in unchanged_queue(
        ring, lambda: ring.prep_close(0, sqe_flags=FIXED), ValueError
    )


def test_probe_lists_the_new_operations(ring: IoUring) -> None:
    probe = ring.probe()
    for method in ("prep_read_fixed", "prep_write_fixed", "prep_fixed_fd_install"):
        assert method in probe


# --- registered buffers ----------------------------------------------------------------------


def test_read_fixed_and_write_fixed_round_trip(ring: IoUring, data_fd: int) -> None:
    buf = bytearray(8192)
    ring.register_buffers([bytearray(16), buf])
    cqe = succeed(ring, ring.prep_read_fixed(data_fd, 1, 100, count=50, buffer_offset=10))
    assert cqe.result == 50 and cqe.buffer is None
    assert buf[10:60] == bytes((100 + i) % 256 for i in range(50))
    assert buf[:10] == bytes(10) and buf[60:] == bytes(8192 - 60)
    buf[5000:5006] = b"FIXED!"
    cqe = succeed(ring, ring.prep_write_fixed(data_fd, 1, 7, count=6, buffer_offset=5000))
    assert cqe.result == 6 and cqe.buffer is None
    assert os.pread(data_fd, 8, 6) == b"\x06FIXED!\x0d"


def test_read_fixed_defaults_to_the_rest_of_the_buffer(ring: IoUring, data_fd: int) -> None:
    buf = bytearray(64)
    ring.register_buffers([buf])
    assert succeed(ring, ring.prep_read_fixed(data_fd, 0, 0, buffer_offset=60)).result == 4
    assert buf[60:] == bytes(range(4))
    assert succeed(ring, ring.prep_read_fixed(data_fd, 0, 0)).result == 64
    assert buf == bytes(range(64))


def test_read_fixed_at_the_current_position(ring: IoUring, data_fd: int) -> None:
    buf = bytearray(8)
    ring.register_buffers([buf])
    os.lseek(data_fd, 200, os.SEEK_SET)
    assert succeed(ring, ring.prep_read_fixed(data_fd, 0)).result == 8
    assert buf == bytes(range(200, 208))
    assert os.lseek(data_fd, 0, os.SEEK_CUR) == 208


def test_fixed_buffer_with_a_fixed_file(ring: IoUring, data_fd: int) -> None:
    buf = bytearray(4)
    ring.register_buffers([buf])
    ring.register_files([data_fd])
    assert succeed(ring, ring.prep_read_fixed(0, 0, 1, sqe_flags=FIXED)).result == 4
    assert buf == bytes([1, 2, 3, 4])


def test_registered_array_and_mmap(ring: IoUring, data_fd: int) -> None:
    arr = array.array("I", [0] * 4)
    anon = mmap.mmap(-1, 4096)
    view = memoryview(bytearray(32))[8:16]
    ring.register_buffers([arr, anon, view])
    succeed(ring, ring.prep_read_fixed(data_fd, 0, 0))
    assert arr.tobytes() == bytes(range(16))
    succeed(ring, ring.prep_read_fixed(data_fd, 1, 16, count=4))
    assert anon[:4] == bytes(range(16, 20))
    succeed(ring, ring.prep_read_fixed(data_fd, 2, 32))
    assert bytes(view) == bytes(range(32, 40))
    ring.unregister_buffers()
    anon.close()


def test_numpy_array_as_a_registered_buffer(ring: IoUring, data_fd: int) -> None:
    numpy = pytest.importorskip("numpy")
    target = numpy.zeros(16, dtype=numpy.uint8)
    ring.register_buffers([target])
    succeed(ring, ring.prep_read_fixed(data_fd, 0, 0))
    assert bytes(target) == bytes(range(16))


def test_o_direct_through_a_page_aligned_mmap(ring: IoUring, tmp_dir: Path) -> None:
    path = tmp_dir / "direct.bin"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError as err:
        pytest.skip(f"O_DIRECT is not supported here: {err}")
    try:
        block = mmap.mmap(-1, 8192)
        block[:4096] = bytes(range(256)) * 16
        ring.register_buffers([block])
        assert succeed(ring, ring.prep_write_fixed(fd, 0, 0, count=4096)).result == 4096
        with open(path, "rb") as f:
            assert f.read() == bytes(range(256)) * 16
        assert (
            succeed(ring, ring.prep_read_fixed(fd, 0, 0, count=4096, buffer_offset=4096)).result
            == 4096
        )
        assert block[4096:] == block[:4096]
        ring.unregister_buffers()
        block.close()
    finally:
        os.close(fd)


def test_registered_buffers_cannot_be_resized_or_closed(ring: IoUring) -> None:
    data = bytearray(100)
    block = mmap.mmap(-1, 4096)
    ring.register_buffers([data, block])
    with pytest.raises(BufferError):
        data.extend(b"more")
    with pytest.raises(BufferError):
        del data[:10]
    with pytest.raises(BufferError):
        block.close()
    ring.unregister_buffers()
    data.extend(b"more")
    block.close()
    assert len(data) == 104


def test_unregister_buffers_while_a_read_fixed_is_in_flight(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    """The in-flight read keeps the bytearray exported past unregister_buffers: the data still
    lands in it, and it becomes resizable only when the completion is reaped."""
    r, w = pipe
    data = bytearray(32)
    ring.register_buffers([data])
    ud = ring.prep_read_fixed(r, 0)
    ring.submit()
    ring.unregister_buffers()
    with pytest.raises(BufferError):
        data.extend(b"x")
    gc.collect()
    os.write(w, b"arrives after unregister")
    assert succeed(ring, ud).result == 24
    assert data[:24] == b"arrives after unregister"
    data.extend(b"x")


def test_unregister_binds_queued_reads_to_their_own_buffers(
    ring: IoUring, pipe: tuple[int, int]
) -> None:
    """A read queued (not yet submitted) before unregister_buffers fills the buffer it was
    checked against, never one registered later under the same index."""
    r, w = pipe
    old = bytearray(16)
    new = bytearray(16)
    ring.register_buffers([old])
    ud = ring.prep_read_fixed(r, 0)
    ring.unregister_buffers()
    assert ring.pending_sq_entries == 0, "unregister_buffers submitted the queued read"
    ring.register_buffers([new])
    os.write(w, b"for the old one")
    assert succeed(ring, ud).result == 15
    assert old[:15] == b"for the old one"
    assert new == bytes(16)
    old.extend(b"x")
    with pytest.raises(BufferError):
        new.extend(b"x")


def test_unregister_buffers_on_an_sqpoll_ring(pipe: tuple[int, int]) -> None:
    """With a kernel submission thread, unregister_buffers still lets the queued read bind to
    its own buffer before the registration goes."""
    r, w = pipe
    try:
        ring = make_io_ring(sqpoll_idle_ms=50)
    except OSError as err:
        pytest.skip(f"SQPOLL is not available here: {err}")
    with ring:
        data = bytearray(8)
        ring.register_buffers([data])
        ud = ring.prep_read_fixed(r, 0)
        ring.unregister_buffers()
        assert ring.pending_sq_entries == 0
        os.write(w, b"sqpolled")
        assert succeed(ring, ud).result == 8
        assert data == b"sqpolled"


def test_closing_the_ring_with_a_read_fixed_in_flight(pipe: tuple[int, int]) -> None:
    r, w = pipe
    data = bytearray(64)
    ring = make_io_ring()
    with ring:
        ring.register_buffers([data])
        ring.prep_read_fixed(r, 0)
        ring.submit()
        with pytest.raises(BufferError):
            data.extend(b"x")
    assert ring.closed
    data.extend(b"x")
    os.write(w, b"nobody reads this")
    assert bytes(data[:64]) == bytes(64), "the cancelled read wrote nothing"


def test_dropping_the_ring_releases_registered_buffers(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    data = bytearray(16)
    ring = make_io_ring().__enter__()
    ring.register_buffers([data])
    ring.prep_read_fixed(r, 0)
    ring.submit()
    del ring
    gc.collect()
    data.extend(b"x")


def test_interpreter_exit_with_registered_buffers_in_use() -> None:
    """A ring left open at exit, with a read into a registered buffer pending, is torn down
    cleanly: the read is cancelled before the buffer is released."""
    code = textwrap.dedent(
        """
        import os, century_ring
        r, w = os.pipe()
        ring = century_ring.make_io_ring().__enter__()
        buf = bytearray(64)
        ring.register_buffers([buf])
        ring.prep_read_fixed(r, 0)
        ring.submit()
        print("leaving")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "leaving"
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr


def test_closing_the_ring_with_registered_buffers_and_nothing_in_flight() -> None:
    data = bytearray(16)
    with make_io_ring() as ring:
        ring.register_buffers([data])
    data.extend(b"x")
    with pytest.raises(ValueError, match="closed"):
        ring.register_buffers([bytearray(1)])
    with pytest.raises(ValueError, match="closed"):
        ring.prep_read_fixed(0, 0)


def test_buffer_registration_errors(ring: IoUring) -> None:
    assert "must not be empty" in unchanged_queue(
        ring, lambda: ring.register_buffers([]), ValueError
    )
    assert "read-only" in unchanged_queue(ring, lambda: ring.register_buffers([b"abc"]), TypeError)
    assert "single bytearray" in unchanged_queue(
        ring,
        lambda: ring.register_buffers(bytearray(10)),  # type: ignore[arg-type]
        TypeError,
    )
    unchanged_queue(ring, lambda: ring.register_buffers(5), TypeError)  # type: ignore[arg-type]
    unchanged_queue(ring, lambda: ring.register_buffers([object()]), TypeError)  # type: ignore[list-item]
    assert "buffers[1] is empty" in unchanged_queue(
        ring, lambda: ring.register_buffers([bytearray(1), bytearray()]), ValueError
    )
    assert "contiguous" in unchanged_queue(
        ring, lambda: ring.register_buffers([memoryview(bytearray(10))[::2]]), ValueError
    )
    assert "no buffers are registered" in unchanged_queue(ring, ring.unregister_buffers, ValueError)
    kept = bytearray(8)
    ring.register_buffers([kept])
    with pytest.raises(OSError) as info:
        ring.register_buffers([bytearray(8)])
    assert info.value.errno == errno.EBUSY and "already registered" in str(info.value)


def test_too_many_buffers(ring: IoUring) -> None:
    backing = bytearray(16385)

    def attempt() -> str:
        view = memoryview(backing)
        many = [view[i : i + 1] for i in range(16385)]
        return unchanged_queue(ring, lambda: ring.register_buffers(many), ValueError)

    assert "at most 16384" in attempt()
    gc.collect()
    backing.extend(b"x")  # every export taken while checking was released
    # Exactly the most is accepted (Linux 5.13 and later; 1024 before).
    view = memoryview(backing)
    ring.register_buffers([view[i : i + 1] for i in range(16384)])
    ring.unregister_buffers()


def test_file_backed_mmap_is_refused_clearly(ring: IoUring, data_file: Path) -> None:
    with open(data_file, "r+b") as f, mmap.mmap(f.fileno(), 4096) as mapped:
        try:
            ring.register_buffers([mapped])
        except OSError as err:
            assert err.errno in (errno.EFAULT, errno.EOPNOTSUPP)
            assert "regular file" in str(err)
        else:
            ring.unregister_buffers()


def test_fixed_operation_refusals(ring: IoUring, data_fd: int) -> None:
    assert "register_buffers" in unchanged_queue(
        ring, lambda: ring.prep_read_fixed(data_fd, 0), ValueError
    )
    assert "register_buffers" in unchanged_queue(
        ring, lambda: ring.prep_write_fixed(data_fd, 0), ValueError
    )
    ring.register_buffers([bytearray(100), bytearray(10)])
    preps: list[Callable[..., int]] = [ring.prep_read_fixed, ring.prep_write_fixed]
    for prep in preps:

        def refused(exc: type[BaseException], *args: Any, **kwargs: Any) -> str:
            return unchanged_queue(ring, functools.partial(prep, *args, **kwargs), exc)  # noqa: B023

        message = refused(ValueError, data_fd, 2)
        assert "buffer_index 2" in message and "2 buffers" in message
        message = refused(ValueError, data_fd, 1, 0, count=8, buffer_offset=4)
        assert "8 bytes at buffer_offset 4" in message and "10 bytes" in message
        assert "buffer_offset 11" in refused(ValueError, data_fd, 1, 0, buffer_offset=11)
        refused(ValueError, data_fd, -1)
        refused(ValueError, data_fd, 0, -2)
        refused(ValueError, data_fd, 0, 0, count=-1)
        refused(ValueError, data_fd, 0, 0, buffer_offset=-1)
        refused(ValueError, -1, 0)
        refused(TypeError, data_fd, "0")
        message = refused(ValueError, data_fd, 0, sqe_flags=make_sqe_flags(skip_success=True))
        assert "SKIP_SUCCESS" in message


def test_registered_memory_is_charged_to_rlimit_memlock() -> None:
    """Without CAP_IPC_LOCK the kernel charges registered buffers to RLIMIT_MEMLOCK; going over
    it is an OSError that says so. Root bypasses the charge, so the child drops to nobody."""
    code = textwrap.dedent(
        """
        import errno, os, resource
        import century_ring
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, 64 * 1024))
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        with century_ring.make_io_ring() as ring:
            try:
                ring.register_buffers([bytearray(4 << 20)])
            except OSError as err:
                assert err.errno == errno.ENOMEM, err
                assert "RLIMIT_MEMLOCK" in str(err), err
                print("refused")
            else:
                print("accepted")
            ring.register_buffers([bytearray(4096)])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0 and "PermissionError" in result.stderr:
        pytest.skip(f"cannot drop privileges here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() == "accepted":
        pytest.skip("this process has CAP_IPC_LOCK even as nobody: nothing is charged")
    assert result.stdout.strip() == "refused"
