"""Awaiting operations on the event loop's ring: the ring per loop, every operation, errors.

Every test runs on asyncio, on uvloop and on trio (the ``anyio_backend`` fixture).
"""

from __future__ import annotations

import ast
import asyncio
import errno
import inspect
import os
import socket
import threading
from pathlib import Path

import anyio
import century_ring
import century_ring.aio
import pytest
from century_ring import AT_FDCWD, FileOpenFlag, FileOpenMode, IoUring, make_io_ring
from century_ring.aio import AsyncRing, MultishotOperation, RingClosedError
from century_ring.aio.sidecar import start_uring_sidecar
from conftest import DATA, open_fd_count

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def _prep_names() -> list[str]:
    return sorted(name for name in dir(IoUring) if name.startswith("prep_"))


class TestEveryOperation:
    def test_every_prep_method_has_an_awaitable_of_the_same_name_and_arguments(self) -> None:
        for prep in _prep_names():
            name = prep.removeprefix("prep_")
            method = getattr(AsyncRing, name, None)
            assert method is not None, f"AsyncRing has no {name} for IoUring.{prep}"
            prep_signature = inspect.signature(getattr(IoUring, prep))
            ours = inspect.signature(method)
            assert list(ours.parameters) == list(prep_signature.parameters), name
            for parameter in list(ours.parameters.values())[1:]:  # after self
                theirs = prep_signature.parameters[parameter.name]
                assert parameter.kind == theirs.kind, (name, parameter.name)
                if theirs.default is not inspect.Parameter.empty:
                    assert repr(parameter.default) == repr(theirs.default), (name, parameter)

    def test_single_shot_operations_are_coroutine_functions(self) -> None:
        multishot = {"accept", "recv", "poll_add"}
        for prep in _prep_names():
            name = prep.removeprefix("prep_")
            assert inspect.iscoroutinefunction(getattr(AsyncRing, name)) == (
                name not in multishot
            ), name

    def test_the_generated_operations_match_the_stub(self) -> None:
        import sys

        sys.path.insert(0, str(ROOT / "tools"))
        try:
            import generate_aio_operations
        finally:
            sys.path.pop(0)
        written = (ROOT / "python/century_ring/aio/_operations.py").read_text()
        assert ast.dump(ast.parse(generate_aio_operations.render())) == ast.dump(
            ast.parse(written)
        ), "run python tools/generate_aio_operations.py"


class TestFiles:
    async def test_open_read_write_and_close_a_file(self, tmp_dir: Path) -> None:
        ring = century_ring.aio.current_ring()
        path = tmp_dir / "f.bin"
        flags = {FileOpenFlag.CREATE_IF_NOT_EXISTS, FileOpenFlag.TRUNCATE}
        fd = (await ring.openat(AT_FDCWD, path, FileOpenMode.READ_WRITE, flags)).result
        try:
            assert (await ring.write(fd, DATA, 0)).result == len(DATA)
            event = await ring.read(fd, 8192, 0)
            assert event.buffer == DATA
            assert event.result == len(DATA)
        finally:
            await ring.close(fd)
        assert path.read_bytes() == DATA
        with pytest.raises(OSError) as closed:
            os.fstat(fd)
        assert closed.value.errno == errno.EBADF

    async def test_a_failed_operation_raises_the_errno_subclass(self, tmp_dir: Path) -> None:
        ring = century_ring.aio.current_ring()
        with pytest.raises(FileNotFoundError):
            await ring.openat(AT_FDCWD, tmp_dir / "missing", FileOpenMode.READ_ONLY)
        with pytest.raises(IsADirectoryError):
            await ring.openat(AT_FDCWD, tmp_dir, FileOpenMode.WRITE_ONLY)
        with pytest.raises(FileExistsError):
            await ring.mkdirat(AT_FDCWD, tmp_dir)

    async def test_bad_arguments_raise_before_anything_is_queued(self) -> None:
        ring = century_ring.aio.current_ring()
        with pytest.raises((TypeError, ValueError)):
            await ring.read(-5, 10)
        with pytest.raises(TypeError):
            await ring.read("not an fd", 10)  # type: ignore[arg-type]
        assert ring.ring.in_flight == 0
        assert ring.waiting == 0

    async def test_statx_returns_the_file_s_metadata(self, data_file: Path) -> None:
        ring = century_ring.aio.current_ring()
        event = await ring.statx(AT_FDCWD, data_file)
        assert event.extra.st_size == len(DATA)  # type: ignore[union-attr]

    async def test_many_concurrent_reads_each_get_their_own_bytes(self, tmp_dir: Path) -> None:
        path = tmp_dir / "blocks.bin"
        path.write_bytes(b"".join(bytes([i]) * 4096 for i in range(256)))
        ring = century_ring.aio.current_ring()
        fd = os.open(path, os.O_RDONLY)
        results: dict[int, bytes] = {}

        async def read_block(i: int) -> None:
            event = await ring.read(fd, 4096, i * 4096)
            assert event.buffer is not None
            results[i] = event.buffer

        try:
            async with anyio.create_task_group() as tasks:
                for i in range(256):
                    tasks.start_soon(read_block, i)
        finally:
            os.close(fd)
        assert results == {i: bytes([i]) * 4096 for i in range(256)}

    async def test_timeout_returns_when_the_time_has_passed(self) -> None:
        ring = century_ring.aio.current_ring()
        start = anyio.current_time()
        event = await ring.timeout(0.05)
        assert event.result == -errno.ETIME
        assert anyio.current_time() - start >= 0.04


class TestSockets:
    async def test_send_and_receive_on_a_socket_pair(self) -> None:
        ring = century_ring.aio.current_ring()
        left, right = socket.socketpair()
        with left, right:
            assert (await ring.send(left, b"hello")).result == 5
            assert (await ring.recv(right, 100)).buffer == b"hello"

    async def test_a_receive_waits_without_blocking_the_loop(self) -> None:
        ring = century_ring.aio.current_ring()
        left, right = socket.socketpair()
        with left, right:
            received: list[bytes | None] = []

            async def receive() -> None:
                received.append((await ring.recv(right, 100)).buffer)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(receive)
                for _ in range(10):
                    await anyio.sleep(0)
                assert received == []
                left.send(b"late")
            assert received == [b"late"]

    async def test_multishot_accept_yields_each_connection(self) -> None:
        ring = century_ring.aio.current_ring()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted: list[int] = []
        try:
            async with ring.accept(listener, multishot=True) as connections:
                assert isinstance(connections, MultishotOperation)
                async for event in connections:
                    assert event.more
                    accepted.append(event.result)
                    if len(accepted) == 3:
                        break
            peers = {socket.socket(fileno=os.dup(fd)).getpeername() for fd in accepted}
            assert peers == {c.getsockname() for c in clients}
            assert ring.ring.in_flight == 0
        finally:
            for fd in accepted:
                os.close(fd)
            for client in clients:
                client.close()
            listener.close()

    async def test_closing_a_multishot_accept_closes_connections_nobody_took(self) -> None:
        ring = century_ring.aio.current_ring()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        before = open_fd_count()
        connections = ring.accept(listener, multishot=True)
        first_client = socket.create_connection(("127.0.0.1", port))
        first = await connections.__anext__()
        os.close(first.result)
        first_client.close()
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        for _ in range(20):
            await anyio.sleep(0.001)  # the accepts complete into the iterator's queue
        await connections.aclose()
        with pytest.raises(StopAsyncIteration):
            await connections.__anext__()
        assert ring.ring.in_flight == 0
        for client in clients:
            # The server side was closed, so each client sees the end of the stream.
            client.settimeout(5)
            assert client.recv(1) == b""
            client.close()
        listener.close()
        assert open_fd_count() <= before

    async def test_a_dropped_multishot_iterator_cancels_its_operation(self) -> None:
        ring = century_ring.aio.current_ring()
        listener = socket.create_server(("127.0.0.1", 0))
        with listener:
            connections = ring.accept(listener, multishot=True)
            client = socket.create_connection(listener.getsockname())
            os.close((await connections.__anext__()).result)
            client.close()
            del connections
            for _ in range(100):
                if ring.ring.in_flight == 0:
                    break
                await anyio.sleep(0.001)
            assert ring.ring.in_flight == 0


class TestTheLoopsRing:
    async def test_current_ring_is_one_ring_per_loop(self) -> None:
        first = century_ring.aio.current_ring()
        assert century_ring.aio.current_ring() is first
        assert isinstance(first, AsyncRing)
        assert isinstance(first.ring, IoUring)
        assert first.fileno() == first.ring.fileno()

    def test_current_ring_outside_a_loop_says_what_is_needed(self) -> None:
        with pytest.raises(RuntimeError, match="running event loop"):
            century_ring.aio.current_ring()

    def test_each_loop_in_each_thread_has_its_own_ring_closed_with_the_loop(self) -> None:
        rings: list[AsyncRing] = []

        async def grab() -> None:
            ring = century_ring.aio.current_ring()
            await ring.nop()
            rings.append(ring)

        def in_thread() -> None:
            asyncio.run(grab())

        asyncio.run(grab())
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        import trio

        trio.run(grab)
        assert len({id(r) for r in rings}) == 3
        assert all(r.ring.closed for r in rings), "each ring closes with its loop or run"

    async def test_open_ring_gives_a_private_ring_closed_on_leaving(self) -> None:
        async with century_ring.aio.open_ring(entries=8) as ring:
            assert ring is not century_ring.aio.current_ring()
            assert (await ring.nop()).result == 0
        assert ring.closed and ring.ring.closed
        with pytest.raises((RingClosedError, ValueError, RuntimeError)):
            await ring.nop()

    async def test_open_ring_refuses_autosubmit_off(self) -> None:
        with pytest.raises(ValueError, match="autosubmit"):
            async with century_ring.aio.open_ring(autosubmit=False):
                pass

    async def test_aclose_hands_waiting_tasks_ring_closed_error(self) -> None:
        left, right = socket.socketpair()
        errors: list[BaseException] = []
        with left, right:
            async with century_ring.aio.open_ring() as ring:

                async def receive() -> None:
                    try:
                        await ring.recv(right, 10)
                    except RingClosedError as error:
                        errors.append(error)

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(receive)
                    await anyio.sleep(0.01)
                    await ring.aclose()
            assert len(errors) == 1
            assert ring.ring.closed

    async def test_operations_queued_directly_are_awaited_by_user_data(self) -> None:
        ring = century_ring.aio.current_ring()
        user_data = ring.ring.prep_nop()
        event = await ring.wait_for_completion(user_data)
        assert event.user_data == user_data
        failing = ring.ring.prep_openat(AT_FDCWD, "/no/such/file", FileOpenMode.READ_ONLY)
        with pytest.raises(FileNotFoundError):
            await ring.wait_for_completion(failing)
        failing = ring.ring.prep_openat(AT_FDCWD, "/no/such/file", FileOpenMode.READ_ONLY)
        event = await ring.wait_for_completion(failing, autoraise=False)
        assert event.result == -errno.ENOENT

    async def test_a_completion_reaped_before_its_wait_is_not_lost(self) -> None:
        ring = century_ring.aio.current_ring()
        early = ring.ring.prep_nop()
        await ring.nop()  # submits and reaps both
        assert (await ring.wait_for_completion(early)).user_data == early


class TestSidecarNames:
    async def test_start_uring_sidecar_waits_for_completions(self) -> None:
        async with start_uring_sidecar() as sidecar:
            user_data = sidecar.ring.prep_openat(None, b"/dev/zero", FileOpenMode.READ_ONLY)
            event = await sidecar.wait_for_completion(user_data)
            century_ring.raise_for_cqe(event)
            assert event.result >= 0
            os.close(event.result)
            user_data = sidecar.ring.prep_openat(None, b"/doesnt-exist", FileOpenMode.READ_ONLY)
            with pytest.raises(OSError):
                await sidecar.wait_for_completion(user_data)

    async def test_sidecar_takes_make_io_ring_s_arguments(self) -> None:
        async with start_uring_sidecar(entries=16, force_submissions=True) as sidecar:
            assert (await sidecar.wait_for_completion(sidecar.ring.prep_nop())).result == 0


def test_the_module_runs_without_trio_or_uvloop_imported() -> None:
    import subprocess
    import sys

    code = (
        "import asyncio, sys, century_ring.aio as aio\n"
        "async def main():\n"
        "    return (await aio.current_ring().nop()).result\n"
        "assert asyncio.run(main()) == 0\n"
        "assert 'trio' not in sys.modules and 'uvloop' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_ring_made_elsewhere_is_untouched() -> None:
    with make_io_ring() as ring:
        assert not ring.closed
