"""Cancelling a task that awaits an operation: nothing lost, nothing leaked, no hang.

A cancelled await cancels the kernel's operation and waits for its final completion. If the
operation completed before the kernel could cancel it, the await returns its result and the
cancellation lands at the task's next checkpoint. Each race below is run thousands of times,
the cancel landing before, during and after the completion, and counts what crossed: bytes,
descriptors, operations still in flight.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
from pathlib import Path

import anyio
import anyio.lowlevel
import century_ring.aio
import pytest
from century_ring import AT_FDCWD, FileOpenMode
from conftest import open_fd_count

pytestmark = pytest.mark.anyio

RACES = 2000


async def _settle(ring: century_ring.aio.AsyncRing) -> None:
    """Let the loop run until the ring has nothing in flight (bounded)."""
    for _ in range(1000):
        if ring.ring.in_flight == 0:
            return
        await anyio.sleep(0.001)
    raise AssertionError(f"{ring.ring.in_flight} operations still in flight")


class TestReceivedBytesAreNeverLost:
    async def test_a_receive_cancelled_as_its_data_arrives(self) -> None:
        ring = century_ring.aio.current_ring()
        rng = random.Random(1)
        left, right = socket.socketpair()
        right.setblocking(False)
        sent = bytearray()
        received = bytearray()
        outcomes = {"cancelled": 0, "returned though cancelled": 0, "returned": 0}
        with left, right:
            for i in range(RACES):
                message = i.to_bytes(4, "little") * rng.randint(1, 8)
                scope = anyio.CancelScope()

                async def receive(scope: anyio.CancelScope = scope) -> None:
                    outcome = "cancelled"
                    with scope:
                        event = await ring.recv(right, 4096)
                        assert event.buffer is not None
                        received.extend(event.buffer)
                        outcome = "returned though cancelled" if scope.cancel_called else "returned"
                        await anyio.sleep(0 if scope.cancel_called else 10)
                        raise AssertionError("the cancel did not land at the next checkpoint")
                    outcomes[outcome] += 1

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(receive)
                    # The cancel lands before, with, or after the data.
                    before, after = rng.randint(0, 3), rng.randint(0, 3)
                    cancel_first = rng.random() < 0.5
                    for _ in range(before):
                        await anyio.sleep(0)
                    if cancel_first:
                        scope.cancel()
                        for _ in range(after):
                            await anyio.sleep(0)
                    left.send(message)
                    sent.extend(message)
                    if not cancel_first:
                        for _ in range(after):
                            await anyio.sleep(0)
                        scope.cancel()
                # Whatever no receive took is still in the socket.
                try:
                    while chunk := right.recv(65536):
                        received.extend(chunk)
                except BlockingIOError:
                    pass
                assert ring.ring.in_flight == 0
        assert bytes(received) == bytes(sent)
        assert ring.waiting == 0
        # Both sides of the race happened: the kernel cancelled the receive, and the receive
        # completed after its cancel was asked for (its bytes returned, then Cancelled).
        assert outcomes["cancelled"] and outcomes["returned though cancelled"], outcomes

    async def test_a_read_from_a_pipe_cancelled_as_its_data_arrives(self) -> None:
        ring = century_ring.aio.current_ring()
        rng = random.Random(2)
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        sent = 0
        received = 0
        try:
            for _ in range(RACES):
                size = rng.randint(1, 512)
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tasks:

                        async def read() -> None:
                            nonlocal received
                            received += (await ring.read(read_end, 4096)).result

                        tasks.start_soon(read)
                        await anyio.sleep(0)
                        os.write(write_end, b"p" * size)
                        sent += size
                        if rng.random() < 0.5:
                            await anyio.sleep(0)
                        scope.cancel()
                try:
                    while chunk := os.read(read_end, 65536):
                        received += len(chunk)
                except BlockingIOError:
                    pass
            assert received == sent
            await _settle(ring)
        finally:
            os.close(read_end)
            os.close(write_end)


class TestDescriptorsAreNeverLeaked:
    async def test_an_open_cancelled_mid_flight(self, tmp_dir: Path) -> None:
        ring = century_ring.aio.current_ring()
        rng = random.Random(3)
        path = tmp_dir / "target"
        path.write_bytes(b"x")
        before = open_fd_count()
        opened: list[int] = []
        outcomes = {"cancelled": 0, "opened": 0}
        for _ in range(RACES):

            async def open_it() -> None:
                try:
                    event = await ring.openat(AT_FDCWD, path, FileOpenMode.READ_ONLY)
                except anyio.get_cancelled_exc_class():
                    outcomes["cancelled"] += 1
                    raise
                opened.append(event.result)
                outcomes["opened"] += 1

            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(open_it)
                    for _ in range(rng.randint(0, 1)):
                        await anyio.sleep(0)
                    scope.cancel()
            while opened:
                os.close(opened.pop())
        await _settle(ring)
        assert open_fd_count() == before
        assert outcomes["opened"], outcomes

    async def test_an_accept_cancelled_as_a_connection_arrives(self) -> None:
        ring = century_ring.aio.current_ring()
        rng = random.Random(4)
        listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        listener.setblocking(False)
        address = listener.getsockname()
        connected = 0
        accepted = 0
        before = open_fd_count()
        with listener:
            for _ in range(RACES // 4):

                async def accept() -> None:
                    nonlocal accepted
                    fd = (await ring.accept(listener)).result
                    accepted += 1
                    os.close(fd)

                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(accept)
                        await anyio.sleep(0)
                        client = socket.create_connection(address)
                        connected += 1
                        if rng.random() < 0.5:
                            await anyio.sleep(0)
                        scope.cancel()
                client.close()
                # A connection no accept took waits in the backlog.
                try:
                    while True:
                        conn, _ = listener.accept()
                        accepted += 1
                        conn.close()
                except BlockingIOError:
                    pass
            await _settle(ring)
        assert accepted == connected
        assert open_fd_count() <= before


class TestTheRingAfterCancellation:
    async def test_a_cancelled_wait_leaves_nothing_in_flight_and_the_ring_usable(self) -> None:
        ring = century_ring.aio.current_ring()
        read_end, write_end = os.pipe()
        try:
            with anyio.move_on_after(0.01) as scope:
                await ring.read(read_end, 100)
            assert scope.cancelled_caught
            assert ring.ring.in_flight == 0
            assert ring.waiting == 0
            os.write(write_end, b"after")
            assert (await ring.read(read_end, 100)).buffer == b"after"
        finally:
            os.close(read_end)
            os.close(write_end)

    async def test_a_shielded_scope_protects_the_wait(self) -> None:
        ring = century_ring.aio.current_ring()
        read_end, write_end = os.pipe()
        try:
            async with anyio.create_task_group() as tasks:

                async def shielded_read() -> None:
                    with anyio.CancelScope(shield=True):
                        assert (await ring.read(read_end, 100)).buffer == b"late"

                tasks.start_soon(shielded_read)
                await anyio.sleep(0.01)
                tasks.cancel_scope.cancel()
                # The task group's own wait is cancelled now; the shielded read is not, and
                # still waits for these bytes.
                os.write(write_end, b"late")
        finally:
            os.close(read_end)
            os.close(write_end)


class TestCancellationAlwaysEnds:
    """Operations that complete before the kernel can cancel them (reads of a cached file
    complete inside the submit) must not absorb the cancellation they outran."""

    async def test_a_loop_of_operations_that_complete_at_once_ends_when_cancelled(
        self, data_file: Path
    ) -> None:
        ring = century_ring.aio.current_ring()
        fd = os.open(data_file, os.O_RDONLY)
        try:
            with anyio.move_on_after(0.02) as scope:
                for _ in range(200_000):
                    await ring.read(fd, 10, 0)
                pytest.fail("200,000 reads ran on in a scope cancelled after 20 ms")
            assert scope.cancelled_caught
        finally:
            os.close(fd)

    async def test_a_cancel_from_another_task_stays_inside_its_scope(self, data_file: Path) -> None:
        """A scope cancelled by another task while its operations complete: the cancellation
        is raised inside the scope (or every operation finished first), and never escapes to
        the code after the scope."""
        ring = century_ring.aio.current_ring()
        fd = os.open(data_file, os.O_RDONLY)
        caught = 0

        async def cancel_after(scope: anyio.CancelScope, checkpoints: int) -> None:
            for _ in range(checkpoints):
                await anyio.lowlevel.checkpoint()
            scope.cancel()

        try:
            async with anyio.create_task_group() as tasks:
                for race in range(RACES // 4):
                    done = 0
                    with anyio.CancelScope() as scope:
                        tasks.start_soon(cancel_after, scope, race % 4)
                        for _ in range(8):
                            await ring.read(fd, 10, 0)
                            done += 1
                    assert scope.cancelled_caught or done == 8
                    caught += scope.cancelled_caught
                    await anyio.lowlevel.checkpoint()  # raises if the cancellation escaped
        finally:
            os.close(fd)
        assert caught > 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
class TestAsyncioSemantics:
    async def test_a_task_cancel_during_a_read_raises_cancelled_error(self) -> None:
        ring = century_ring.aio.current_ring()
        read_end, write_end = os.pipe()
        try:
            task = asyncio.ensure_future(ring.read(read_end, 10))
            await asyncio.sleep(0.01)
            task.cancel("stop")
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ring.ring.in_flight == 0
        finally:
            os.close(read_end)
            os.close(write_end)

    @pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in 3.11")
    async def test_asyncio_timeout_raises_timeout_error_and_leaves_no_cancel_request(
        self,
    ) -> None:
        ring = century_ring.aio.current_ring()
        read_end, write_end = os.pipe()
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await ring.read(read_end, 10)
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
            await asyncio.sleep(0)  # no cancellation left to land
        finally:
            os.close(read_end)
            os.close(write_end)

    @pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling is new in 3.11")
    async def test_a_cancelled_task_running_operations_ends(self, data_file: Path) -> None:
        """task.cancel() on a task looping over reads that complete at once: it ends with
        CancelledError instead of reading on, however the cancel falls against a completion
        (one reaped in the same loop pass as the cancel once left the task waiting forever)."""
        ring = century_ring.aio.current_ring()
        fd = os.open(data_file, os.O_RDONLY)
        rng = random.Random(13)
        reads = 0

        async def read_forever() -> None:
            nonlocal reads
            while reads < 200_000:
                await ring.read(fd, 10, 0)
                reads += 1

        try:
            for _ in range(RACES // 20):
                reads = 0
                task = asyncio.create_task(read_forever())
                await asyncio.sleep(rng.random() * 0.002)
                task.cancel()
                done, _ = await asyncio.wait([task], timeout=10)
                assert done, f"the cancelled task still waits after {reads} reads"
                assert task.cancelled()
                assert reads < 200_000
            assert ring.ring.in_flight == 0
        finally:
            os.close(fd)

    async def test_a_completed_result_is_returned_and_the_cancel_lands_next(self) -> None:
        ring = century_ring.aio.current_ring()
        left, right = socket.socketpair()
        outcomes: list[str] = []
        with left, right:
            for _ in range(RACES):

                async def receive() -> None:
                    event = await ring.recv(right, 100)
                    task = asyncio.current_task()
                    assert task is not None
                    outcomes.append(f"returned, cancelling={task.cancelling()}")
                    assert event.buffer == b"m"
                    await asyncio.sleep(0)
                    outcomes.append("not cancelled")

                task = asyncio.ensure_future(receive())
                await asyncio.sleep(0)
                left.send(b"m")
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
        # A race the receive won must still end cancelled, with the count of one request.
        assert "not cancelled" not in outcomes
        assert set(outcomes) <= {"returned, cancelling=1"}
        assert outcomes, "the receive never completed before its cancel: the race never ran"
        assert ring.ring.in_flight == 0


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
class TestTrioSemantics:
    async def test_a_cancelled_read_raises_cancelled_and_keeps_the_scope_s_deadline(
        self,
    ) -> None:
        import trio

        ring = century_ring.aio.current_ring()
        read_end, write_end = os.pipe()
        try:
            with trio.move_on_after(0.01) as scope:
                await ring.read(read_end, 10)
            assert scope.cancelled_caught
            assert ring.ring.in_flight == 0
        finally:
            os.close(read_end)
            os.close(write_end)

    async def test_a_result_that_won_the_race_is_followed_by_cancelled_at_the_next_checkpoint(
        self,
    ) -> None:
        import trio

        ring = century_ring.aio.current_ring()
        left, right = socket.socketpair()
        won = 0
        with left, right:
            for _ in range(RACES // 2):
                with trio.CancelScope() as scope:
                    async with trio.open_nursery() as nursery:

                        async def receive() -> None:
                            nonlocal won
                            event = await ring.recv(right, 100)
                            assert event.buffer == b"m"
                            won += 1
                            await trio.lowlevel.checkpoint()
                            raise AssertionError("the cancel did not land at the checkpoint")

                        nursery.start_soon(receive)
                        await trio.lowlevel.checkpoint()
                        left.send(b"m")
                        scope.cancel()
                if not won:
                    right.recv(100)
                won = max(won - 1, 0)
        assert ring.ring.in_flight == 0
