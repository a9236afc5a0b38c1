"""A server on the loop takes its connections through a multishot accept in the ring: every
client of a burst is served, stopping frees the port at once, connections that arrive while
it stops are closed, and running out of descriptors is reported and recovered from."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import century_ring.asyncio
import pytest


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def echo_once(port: int, message: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message)
    data = await reader.readexactly(len(message))
    writer.close()
    await writer.wait_closed()
    return data


def test_a_burst_of_clients_is_served_without_readiness_on_the_listener() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=512)
        listener = server.sockets[0]
        port = listener.getsockname()[1]
        # The listening socket is served by the ring, not watched for readiness.
        assert listener.fileno() not in loop._selector.get_map()  # type: ignore[attr-defined]
        messages = [b"client %d" % n for n in range(300)]
        echoed = await asyncio.gather(*(echo_once(port, m) for m in messages))
        assert echoed == messages
        server.close()
        await server.wait_closed()

    century_ring.asyncio.run(main())


def test_a_closed_server_frees_its_port_at_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(50):
            server = await loop.create_server(Echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            # (No connection: one closed here would hold the port in TIME_WAIT on any loop.)
            server.close()
            await server.wait_closed()
            # No SO_REUSEADDR: bind() fails while anything still listens on the port.
            with socket.socket() as again:
                again.bind(("127.0.0.1", port))
                again.listen()

    century_ring.asyncio.run(main())


def test_clients_arriving_as_the_server_stops_leave_no_descriptor_behind() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fds_before = open_fds()
        rng = random.Random(5)
        for round in range(2000):
            server = await loop.create_server(Echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            clients = []
            for _ in range(round % 5):
                client = socket.socket()
                client.setblocking(False)
                try:
                    client.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                clients.append(client)
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            server.close()
            await server.wait_closed()
            for client in clients:
                client.close()
            await asyncio.sleep(0)
        for _ in range(100):
            if open_fds() == fds_before:
                break
            await asyncio.sleep(0.01)
        assert open_fds() == fds_before
        # Every accept was cancelled and its final completion reaped: only the self-pipe's
        # poll is left in flight.
        assert loop._ring.ring.in_flight == 1  # type: ignore[attr-defined]

    century_ring.asyncio.run(main())


@pytest.fixture
def few_descriptors() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = open_fds() + 24
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    yield limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_running_out_of_descriptors_is_reported_and_serving_resumes(
    few_descriptors: int,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda loop, context: reports.append(context))
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # The client is another process, started while there are descriptors to start it.
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert client.stdin is not None and client.stdout is not None
        filler = []
        try:
            while True:
                filler.append(os.dup(0))
        except OSError:
            pass  # none left: the accept of the client's connection cannot get one
        try:
            client.stdin.write(b"connect\n")
            client.stdin.flush()
            for _ in range(500):
                if reports:
                    break
                await asyncio.sleep(0.01)
        finally:
            for fd in filler:
                os.close(fd)
        assert reports, "no report of the exhausted descriptors"
        assert reports[0]["message"] == "socket.accept() out of system resource"
        assert reports[0]["exception"].errno == errno.EMFILE
        # Room again: after asyncio's retry delay the waiting connection is served.
        echoed = await loop.run_in_executor(None, client.stdout.readline)
        assert echoed == b"ping\n"
        client.stdin.close()
        assert await loop.run_in_executor(None, client.wait, 10) == 0
        server.close()
        await server.wait_closed()

    century_ring.asyncio.run(main())


#: Waits for a line, connects, sends "ping\n" and prints what comes back.
CLIENT = """
import socket, sys
sys.stdin.readline()
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as sock:
    sock.sendall(b"ping\\n")
    sys.stdout.buffer.write(sock.makefile("rb").readline())
    sys.stdout.flush()
    sys.stdin.read()
"""


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Server.close_clients() is Python 3.13+")
def test_close_clients_closes_every_connection_of_the_server() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for reader, writer in streams:
            writer.write(b"up")
            assert await reader.readexactly(2) == b"up"
        server.close()
        server.close_clients()  # type: ignore[attr-defined]
        await asyncio.wait_for(server.wait_closed(), 10)
        for reader, writer in streams:
            assert await reader.read() == b""
            writer.close()

    century_ring.asyncio.run(main())
