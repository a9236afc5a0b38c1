"""Running programs on century_ring.asyncio's event loop: how it is chosen, what it shares with
century_ring.aio, where it falls back, and what its transports and ``sock_*`` calls promise
beyond CPython's own tests (tests/test_asyncio_cpython_suite.py): nothing lost when a task is
cancelled or reading is paused as data arrives, descriptors closed only after their last
completion."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import century_ring.aio
import century_ring.asyncio
import pytest
from century_ring.asyncio import EventLoop

RACES = 2000


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def socketpair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


# -- choosing the loop --------------------------------------------------------------------------


def test_run_runs_main_on_this_loop_and_returns_its_result() -> None:
    async def main() -> tuple[type, int]:
        await asyncio.sleep(0.001)
        return type(asyncio.get_running_loop()), 42

    assert century_ring.asyncio.run(main()) == (EventLoop, 42)


def test_run_passes_debug_to_the_loop() -> None:
    async def main() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert century_ring.asyncio.run(main(), debug=True) is True
    assert century_ring.asyncio.run(main(), debug=False) is False


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is Python 3.11+")
def test_asyncio_runner_takes_new_event_loop_as_its_factory() -> None:
    async def main() -> type:
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=century_ring.asyncio.new_event_loop) as runner:
        assert runner.run(main()) is EventLoop
        assert runner.run(main()) is EventLoop


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory is Python 3.12+")
def test_asyncio_run_takes_new_event_loop_as_its_factory() -> None:
    async def main() -> type:
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=century_ring.asyncio.new_event_loop) is EventLoop  # type: ignore[call-arg,unused-ignore]


def test_the_policy_makes_this_loop_for_asyncio_run() -> None:
    async def main() -> type:
        return type(asyncio.get_running_loop())

    asyncio.set_event_loop_policy(century_ring.asyncio.EventLoopPolicy())
    try:
        assert asyncio.run(main()) is EventLoop
    finally:
        asyncio.set_event_loop_policy(None)


def test_current_ring_is_the_loops_own_ring_and_is_closed_with_the_loop() -> None:
    loop = EventLoop()
    try:

        async def main() -> century_ring.aio.AsyncRing:
            ring = century_ring.aio.current_ring()
            assert century_ring.aio.current_ring() is ring
            assert (await ring.nop()).result == 0
            return ring

        ring = loop.run_until_complete(main())
        # The loop waits in the ring itself: its descriptor is not watched as a reader.
        selector = loop._selector  # type: ignore[attr-defined]
        assert ring.fileno() not in selector.get_map()
    finally:
        loop.close()
    assert ring.ring.closed


def test_closing_a_loop_with_operations_in_flight_cancels_them() -> None:
    loop = EventLoop()
    a, b = socketpair()
    with a, b:
        task = loop.create_task(loop.sock_recv(b, 10))
        loop.run_until_complete(asyncio.sleep(0.01))
        assert not task.done()
        ring = loop._ring.ring  # type: ignore[attr-defined]
        assert ring.in_flight >= 1
        loop.close()
        assert ring.closed
        # The socket outlived the loop untouched: data sent now is still there to read.
        a.send(b"still here")
        b.setblocking(True)
        assert b.recv(100) == b"still here"


@contextlib.contextmanager
def io_uring_disabled() -> Iterator[None]:
    if os.environ.get("CENTURY_RING_TEST_SYSCTL") != "1":
        pytest.skip(
            "flips a machine-wide sysctl for a moment, which breaks io_uring for every other "
            "process meanwhile; set CENTURY_RING_TEST_SYSCTL=1 to run it (CI does)"
        )
    knob = Path("/proc/sys/kernel/io_uring_disabled")
    try:
        before = knob.read_text()
        knob.write_text("2")
    except OSError as exc:
        pytest.skip(f"cannot set kernel.io_uring_disabled here: {exc}")
    try:
        yield
    finally:
        knob.write_text(before)


def test_where_io_uring_is_refused_new_event_loop_falls_back_to_the_standard_loop() -> None:
    with io_uring_disabled():
        with pytest.warns(RuntimeWarning, match="standard event loop.*io_uring is disabled"):
            loop = century_ring.asyncio.new_event_loop()
    try:
        assert type(loop) is asyncio.SelectorEventLoop
        assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
    finally:
        loop.close()


def test_strict_new_event_loop_raises_where_io_uring_is_refused() -> None:
    with io_uring_disabled():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(PermissionError, match="io_uring_disabled"):
                century_ring.asyncio.new_event_loop(strict=True)


def refuse_rings(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make the loop's ring fail as io_uring_setup does with ``code``."""

    def refused(**options: object) -> None:
        raise OSError(code, f"io_uring_setup failed: {os.strerror(code)}")

    monkeypatch.setattr("century_ring.asyncio._loop.make_io_ring", refused)


@pytest.mark.parametrize("code", [errno.EPERM, errno.EACCES, errno.ENOSYS])
def test_a_seccomp_refusal_falls_back_and_strict_raises(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    refuse_rings(monkeypatch, code)
    with pytest.warns(RuntimeWarning, match=os.strerror(code)):
        loop = century_ring.asyncio.new_event_loop()
    loop.close()
    assert type(loop) is asyncio.SelectorEventLoop
    with pytest.raises(OSError) as raised:
        century_ring.asyncio.new_event_loop(strict=True)
    assert raised.value.errno == code


@pytest.mark.parametrize("code", [errno.ENOMEM, errno.EMFILE])
def test_running_out_of_resources_is_raised_not_hidden_by_the_fallback(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    refuse_rings(monkeypatch, code)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(OSError) as raised:
            century_ring.asyncio.new_event_loop()
    assert raised.value.errno == code


def test_ctrl_c_stops_a_program_waiting_in_the_ring() -> None:
    program = textwrap.dedent(
        """
        import asyncio, signal, sys
        import century_ring.asyncio

        # As in a terminal: a shell's background job (CI's) starts with SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)

        async def main():
            print("waiting", flush=True)
            await asyncio.Event().wait()

        try:
            century_ring.asyncio.run(main())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "waiting\n"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 3, err
    assert out == "interrupted\n"


def test_a_signal_handler_runs_while_the_loop_waits_in_the_ring() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[str] = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "usr1")
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
        try:
            return await asyncio.wait_for(got, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    assert century_ring.asyncio.run(main()) == "usr1"


def test_debug_mode_refuses_a_blocking_socket_in_sock_recv() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        with a, b, pytest.raises(ValueError, match="non-blocking"):
            await asyncio.get_running_loop().sock_recv(b, 1)

    century_ring.asyncio.run(main(), debug=True)


# -- sock_* and cancellation -------------------------------------------------------------------


def kept_by(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> int:
    """How many results the loop keeps for ``sock`` from calls that completed though
    cancelled (to show that a race took that path)."""
    return len(loop._kept._kept.get(sock, ()))  # type: ignore[attr-defined]


def test_a_cancelled_sock_recv_loses_no_bytes() -> None:
    """Cancel sock_recv at random moments around the data's arrival: every byte sent is either
    returned by the call (it finished first), or kept for the next call (the kernel completed
    the receive after the cancel was asked for), or still in the socket."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(5)
        a, b = socketpair()
        received = bytearray()
        sent = bytearray()
        outcomes = {"finished first": 0, "cancelled": 0, "kept": 0}
        with a, b:
            for i in range(RACES):
                message = i.to_bytes(4, "big")
                task = asyncio.create_task(loop.sock_recv(b, 4096))
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                a.send(message)
                sent += message
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                if not task.cancel():
                    outcomes["finished first"] += 1
                try:
                    received += await task
                except asyncio.CancelledError:
                    outcomes["cancelled"] += 1
                    outcomes["kept"] += kept_by(loop, b) > 0
            a.shutdown(socket.SHUT_WR)
            while chunk := await loop.sock_recv(b, 65536):
                received += chunk
        assert received == sent
        # Every path was taken, so the race was really run.
        assert all(outcomes.values()), outcomes

    century_ring.asyncio.run(main())


def test_a_cancelled_sock_accept_loses_no_connection() -> None:
    """Cancel sock_accept as connections arrive (2000 times, fewer if the open-file limit is
    low: every client stays open until the end): each connection is returned by the call, or
    kept for the next, or accepted by the next from the kernel; no descriptor is left open."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(6)
        fds_before = open_fds()
        races = min(RACES, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4)
        with socket.create_server(("127.0.0.1", 0), backlog=races) as listener:
            listener.setblocking(False)
            address = listener.getsockname()
            accepted = 0
            kept = 0
            clients = []
            for _ in range(races):
                task = asyncio.create_task(loop.sock_accept(listener))
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                client = socket.socket()
                client.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    client.connect(address)
                clients.append(client)
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                task.cancel()
                try:
                    conn, _ = await task
                except asyncio.CancelledError:
                    kept += kept_by(loop, listener) > 0
                    continue
                accepted += 1
                conn.close()
            while accepted < len(clients):
                conn, _ = await asyncio.wait_for(loop.sock_accept(listener), 10)
                accepted += 1
                conn.close()
            for client in clients:
                client.close()
        assert kept > 0
        await asyncio.sleep(0.01)
        assert open_fds() == fds_before

    century_ring.asyncio.run(main())


def test_sock_sendall_sends_everything_as_the_peer_reads_slowly() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socketpair()
        payload = os.urandom(8 << 20)
        with a, b:
            received = bytearray()

            async def read_all() -> None:
                while chunk := await loop.sock_recv(b, 100_000):
                    received.extend(chunk)

            reader = asyncio.create_task(read_all())
            await loop.sock_sendall(a, payload)
            a.shutdown(socket.SHUT_WR)
            await reader
        assert received == payload

    century_ring.asyncio.run(main())


def test_sock_recvfrom_and_sendto_carry_datagrams_and_addresses() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            a.setblocking(False)
            b.setblocking(False)
            assert await loop.sock_sendto(a, b"ping", ("localhost", b.getsockname()[1])) == 4
            data, address = await loop.sock_recvfrom(b, 100)
            assert (data, address) == (b"ping", a.getsockname())
            await loop.sock_sendto(b, b"pong!", address)
            buffer = bytearray(16)
            count, address = await loop.sock_recvfrom_into(a, buffer)
            assert (bytes(buffer[:count]), address) == (b"pong!", b.getsockname())

    century_ring.asyncio.run(main())


# -- transports ---------------------------------------------------------------------------------


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.transport: Any = None
        self.lost: list[BaseException | None] = []
        self.eof = 0
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.eof += 1
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)
        if not self.done.done():
            self.done.set_result(None)


async def connected_pair(
    protocol: asyncio.BaseProtocol,
) -> tuple[asyncio.Transport, socket.socket]:
    loop = asyncio.get_running_loop()
    ours, theirs = socketpair()
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, ours)
    return transport, theirs  # type: ignore[return-value]


def test_transports_are_moved_by_completions() -> None:
    async def main() -> None:
        protocol = Collect()
        transport, peer = await connected_pair(protocol)
        with peer:
            assert type(transport).__name__ == "RingSocketTransport"
            # No readiness is asked for: the connection's descriptor is not in the selector.
            loop = asyncio.get_running_loop()
            assert peer.fileno() not in loop._selector.get_map()  # type: ignore[attr-defined]
            assert transport.get_extra_info("socket").fileno() not in loop._selector.get_map()  # type: ignore[attr-defined]
            transport.close()
            await protocol.done

    century_ring.asyncio.run(main())


def test_pausing_and_resuming_reading_as_data_arrives_keeps_every_byte_in_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(7)
        protocol = Collect()
        transport, peer = await connected_pair(protocol)
        sent = bytearray()
        paused_calls = []

        original = protocol.data_received

        def data_received(data: bytes) -> None:
            paused_calls.append(not transport.is_reading())
            original(data)

        protocol.data_received = data_received  # type: ignore[method-assign]
        with peer:
            for i in range(RACES):
                message = i.to_bytes(4, "big") * rng.randrange(1, 50)
                peer.send(message)
                sent += message
                if rng.random() < 0.5:
                    transport.pause_reading()
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                if rng.random() < 0.5:
                    transport.resume_reading()
                    for _ in range(rng.randrange(2)):
                        await asyncio.sleep(0)
            transport.resume_reading()
            peer.shutdown(socket.SHUT_WR)
            while not protocol.eof:
                await asyncio.sleep(0.001)
            assert protocol.data == sent
            # data_received is never called while reading is paused.
            assert not any(paused_calls)
            transport.close()
            await asyncio.wait_for(protocol.done, 10)
        assert loop._ring.ring.in_flight <= 2  # type: ignore[attr-defined]

    century_ring.asyncio.run(main())


def test_a_buffered_protocol_gets_every_byte_through_small_buffers() -> None:
    class Small(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(7)
            self.data = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.data += self.buffer[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(None)

    async def main() -> None:
        protocol = Small()
        transport, peer = await connected_pair(protocol)
        payload = os.urandom(300_000)
        with peer:
            peer.setblocking(True)
            peer.sendall(payload)
            peer.shutdown(socket.SHUT_WR)
            await asyncio.wait_for(protocol.done, 10)
        assert protocol.data == payload
        transport.close()

    century_ring.asyncio.run(main())


def test_writes_are_all_delivered_before_close_completes() -> None:
    async def main() -> None:
        protocol = Collect()
        transport, peer = await connected_pair(protocol)
        chunks = [os.urandom(random.randrange(1, 70_000)) for _ in range(200)]
        for chunk in chunks:
            transport.write(chunk)
        transport.write(bytearray(b"mutable"))
        transport.close()
        received = bytearray()
        with peer:
            loop = asyncio.get_running_loop()
            while chunk := await loop.sock_recv(peer, 1 << 20):
                received += chunk
        assert received == b"".join(chunks) + b"mutable"
        await asyncio.wait_for(protocol.done, 10)
        assert protocol.lost == [None]

    century_ring.asyncio.run(main())


def test_a_mutable_buffer_changed_after_write_is_sent_as_it_was() -> None:
    async def main() -> None:
        protocol = Collect()
        transport, peer = await connected_pair(protocol)
        buffer = bytearray(b"first")
        transport.write(b"x" * 100)  # a send in flight, so the next write waits in the queue
        transport.write(buffer)
        buffer[:] = b"SECOND"
        transport.write_eof()
        received = bytearray()
        with peer:
            loop = asyncio.get_running_loop()
            while chunk := await loop.sock_recv(peer, 1000):
                received += chunk
        assert received == b"x" * 100 + b"first"
        transport.close()

    century_ring.asyncio.run(main())


def test_flow_control_pauses_and_resumes_the_writer() -> None:
    class Writer(Collect):
        def __init__(self) -> None:
            super().__init__()
            self.events: list[str] = []

        def pause_writing(self) -> None:
            self.events.append("pause")

        def resume_writing(self) -> None:
            self.events.append("resume")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol = Writer()
        transport, peer = await connected_pair(protocol)
        transport.set_write_buffer_limits(high=64 * 1024)
        with peer:
            total = 0
            while "pause" not in protocol.events:
                transport.write(b"z" * 65536)
                total += 65536
                await asyncio.sleep(0)
            assert transport.get_write_buffer_size() > 64 * 1024
            received = 0
            while received < total:
                received += len(await loop.sock_recv(peer, 1 << 20))
            await asyncio.sleep(0.01)
            assert protocol.events == ["pause", "resume"]
            assert transport.get_write_buffer_size() == 0
        transport.close()

    century_ring.asyncio.run(main())


def test_write_eof_half_closes_and_the_transport_still_receives() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol = Collect()
        transport, peer = await connected_pair(protocol)
        with peer:
            assert transport.can_write_eof()
            transport.write(b"bye")
            transport.write_eof()
            with pytest.raises(RuntimeError, match="write_eof"):
                transport.write(b"more")
            assert await loop.sock_recv(peer, 10) == b"bye"
            assert await loop.sock_recv(peer, 10) == b""
            peer.send(b"still listening")
            while len(protocol.data) < 15:
                await asyncio.sleep(0.001)
            assert protocol.data == b"still listening"
        transport.close()
        await protocol.done

    century_ring.asyncio.run(main())


def test_write_refuses_what_is_not_bytes() -> None:
    async def main() -> None:
        protocol = Collect()
        transport, peer = await connected_pair(protocol)
        with peer, pytest.raises(TypeError, match="bytes-like"):
            transport.write("text")  # type: ignore[arg-type]
        transport.close()

    century_ring.asyncio.run(main())


def test_abort_with_writes_queued_closes_once_after_the_kernel_is_done() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fds_before = open_fds()
        for _ in range(200):
            protocol = Collect()
            transport, peer = await connected_pair(protocol)
            for _ in range(20):
                transport.write(b"q" * 100_000)  # more than the socket takes: sends wait
            await asyncio.sleep(0)
            transport.abort()
            await asyncio.wait_for(protocol.done, 10)
            assert protocol.lost == [None]
            peer.close()
        await asyncio.sleep(0.01)
        assert open_fds() == fds_before
        assert loop._ring.ring.in_flight <= 2  # type: ignore[attr-defined]

    century_ring.asyncio.run(main())


class EchoCollect(Collect):
    """Writes back what it receives."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.write(data)


def test_close_and_abort_racing_arriving_data_lose_nothing_written_and_end_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(11)
        fds_before = open_fds()
        for i in range(RACES):
            protocol = EchoCollect()
            transport, peer = await connected_pair(protocol)
            with peer:
                for _ in range(rng.randrange(4)):
                    peer.send(os.urandom(rng.randrange(1, 3000)))
                    for _ in range(rng.randrange(3)):
                        await asyncio.sleep(0)
                abort = i % 2 == 1
                if abort:
                    transport.abort()
                else:
                    transport.close()
                written = bytes(protocol.data)  # everything written before the close
                await asyncio.wait_for(protocol.done, 10)
                assert protocol.lost == [None]
                if not abort:
                    # close() sends what was written first, then ends the stream.
                    received = bytearray()
                    while chunk := await loop.sock_recv(peer, 65536):
                        received += chunk
                    assert bytes(received) == written
                # Data that arrives after the close goes nowhere, and nothing is called again.
                assert bytes(protocol.data) == written
        await asyncio.sleep(0.01)
        assert open_fds() == fds_before
        assert loop._ring.ring.in_flight <= 2  # type: ignore[attr-defined]

    century_ring.asyncio.run(main())


def test_a_protocol_without_data_received_fails_when_data_comes_as_on_asyncios_loop() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda loop, context: reports.append(context))
        lost = loop.create_future()

        class WriteOnly(asyncio.BaseProtocol):
            def connection_lost(self, exc: Exception | None) -> None:
                lost.set_result(exc)

        transport, peer = await connected_pair(WriteOnly())
        with peer:
            transport.write(b"out")
            assert await loop.sock_recv(peer, 10) == b"out"
            peer.send(b"in")
            assert isinstance(await asyncio.wait_for(lost, 10), AttributeError)
        (report,) = reports
        assert report["message"] == "Fatal error: protocol.data_received() call failed."

    century_ring.asyncio.run(main())


def test_a_closed_transport_and_its_protocol_are_freed() -> None:
    async def main() -> None:
        protocol = Collect()
        transport, peer = await connected_pair(protocol)
        transport.write(b"bye")
        transport.close()
        await protocol.done
        peer.close()
        await asyncio.sleep(0)
        gone = weakref.ref(transport), weakref.ref(protocol)
        del transport, protocol
        gc.collect()
        assert [ref() for ref in gone] == [None, None]

    century_ring.asyncio.run(main())


def test_a_server_survives_clients_that_vanish_mid_message() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lost: list[BaseException | None] = []

        class Echo(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport: Any = transport

            def data_received(self, data: bytes) -> None:
                self.transport.write(data * 50)

            def connection_lost(self, exc: Exception | None) -> None:
                lost.append(exc)

        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        fds_before = open_fds()
        clients = 500
        for i in range(clients):
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(b"half a mess")
            if i % 2:
                # Reset, not a clean close: SO_LINGER with a zero timeout.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            client.close()
            await asyncio.sleep(0)
        for _ in range(1000):
            if len(lost) == clients:
                break
            await asyncio.sleep(0.01)
        assert len(lost) == clients
        assert all(exc is None or isinstance(exc, ConnectionError) for exc in lost)
        await asyncio.sleep(0.01)
        assert open_fds() == fds_before
        server.close()
        await server.wait_closed()

    century_ring.asyncio.run(main())
