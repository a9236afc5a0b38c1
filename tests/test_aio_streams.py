"""Sockets as anyio streams, through the ring: what a user of anyio's stream API relies on.

``century_ring.aio.connect_tcp`` and friends are drop-in replacements for anyio's, so the
contract tests run each scenario on anyio's own sockets too and expect the same outcome. The
races at the end cancel receives, accepts and connects at random points and count what crossed:
bytes, in order, and descriptors.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import stat
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import century_ring.aio
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.text import TextStream
from anyio.streams.tls import TLSStream
from century_ring.aio import (
    RingSocketListener,
    RingSocketStream,
    RingUNIXSocketListener,
    RingUNIXSocketStream,
    connect_tcp,
    connect_unix,
    create_tcp_listener,
    create_unix_listener,
)
from conftest import open_fd_count

pytestmark = pytest.mark.anyio

RACES = 2000
LOCALHOST = "127.0.0.1"

Pair = tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]


async def _ring_listener(**kwargs: Any) -> RingSocketListener:
    multi = await create_tcp_listener(local_host=LOCALHOST, **kwargs)
    (listener,) = multi.listeners
    assert isinstance(listener, RingSocketListener)
    return listener


@asynccontextmanager
async def tcp_pair(implementation: str = "century_ring") -> AsyncIterator[Pair]:
    """A connected (client, server) pair made by ``implementation``'s functions."""
    if implementation == "anyio":
        multi = await anyio.create_tcp_listener(local_host=LOCALHOST)
        listener: anyio.abc.SocketListener = multi.listeners[0]  # type: ignore[assignment]
        connect: Callable[[str, int], Awaitable[anyio.abc.SocketStream]] = anyio.connect_tcp
    else:
        listener = await _ring_listener()
        connect = connect_tcp
    async with listener:
        # A loopback connect completes in the listen queue, before anyone accepts.
        client = await connect(LOCALHOST, listener.extra(SocketAttribute.local_port))
        server = await listener.accept()
    async with client, server:
        yield client, server


async def _receive_all(stream: anyio.abc.ByteReceiveStream) -> bytes:
    chunks = bytearray()
    try:
        while True:
            chunks += await stream.receive()
    except anyio.EndOfStream:
        return bytes(chunks)


async def _no_escaped_cancellation() -> None:
    """A checkpoint outside every cancelled scope: a cancellation that leaked out of its scope
    lands here, and fails the test (an enclosing task group would swallow it otherwise)."""
    try:
        await anyio.sleep(0)
    except anyio.get_cancelled_exc_class():
        raise AssertionError("a cancellation escaped its cancel scope") from None


def _reset(stream: anyio.abc.SocketStream) -> None:
    """Make closing ``stream`` send a RST instead of a FIN."""
    stream.extra(SocketAttribute.raw_socket).setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )


class TestEcho:
    async def test_bytes_cross_both_ways_in_order(self) -> None:
        async with tcp_pair() as (client, server):
            assert isinstance(client, RingSocketStream)
            assert isinstance(server, RingSocketStream)
            # Large enough that the kernel takes it in several short sends.
            payload = os.urandom(4 << 20)

            async def echo() -> None:
                while True:
                    try:
                        data = await server.receive()
                    except anyio.EndOfStream:
                        await server.send_eof()
                        return
                    await server.send(data)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(echo)
                tasks.start_soon(client.send, payload)
                received = bytearray()
                while len(received) < len(payload):
                    received += await client.receive()
                await client.send_eof()
                assert await _receive_all(client) == b""
            assert bytes(received) == payload

    async def test_receive_returns_at_most_max_bytes(self) -> None:
        async with tcp_pair() as (client, server):
            await client.send(b"abcdefgh")
            await anyio.sleep(0.01)
            assert await server.receive(3) == b"abc"
            assert await server.receive(100) == b"defgh"

    async def test_send_accepts_any_bytes_like_object(self) -> None:
        async with tcp_pair() as (client, server):
            await client.send(bytearray(b"one "))
            await client.send(memoryview(b"-two ")[1:])  # type: ignore[arg-type]
            await client.send(b"three")
            await client.send_eof()
            assert await _receive_all(server) == b"one two three"

    async def test_serve_hands_each_connection_to_the_handler_in_the_task_group(self) -> None:
        multi = await create_tcp_listener(local_host=LOCALHOST)
        port = multi.extra(SocketAttribute.local_port)
        served: list[bytes] = []

        async def handler(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                assert isinstance(stream, RingSocketStream)
                data = await _receive_all(stream)
                served.append(data)
                await stream.send(data.upper())

        async with multi, anyio.create_task_group() as tasks:
            tasks.start_soon(multi.serve, handler, tasks)
            for name in (b"alpha", b"beta", b"gamma"):
                async with await connect_tcp(LOCALHOST, port) as client:
                    await client.send(name)
                    await client.send_eof()
                    assert await _receive_all(client) == name.upper()
            tasks.cancel_scope.cancel()
        assert sorted(served) == [b"alpha", b"beta", b"gamma"]

    async def test_connect_by_host_name(self) -> None:
        listener = await _ring_listener()
        async with listener:
            port = listener.extra(SocketAttribute.local_port)
            # "localhost" may resolve to ::1 first, where nobody listens: the next address wins.
            async with await connect_tcp("localhost", port) as client:
                server = await listener.accept()
                async with server:
                    await client.send(b"by name")
                    assert await server.receive() == b"by name"
                    assert client.extra(SocketAttribute.remote_address) == (LOCALHOST, port)

    async def test_connect_from_a_chosen_local_address(self) -> None:
        listener = await _ring_listener()
        async with listener:
            port = listener.extra(SocketAttribute.local_port)
            with socket.socket() as probe:  # a free local port, released for the client
                probe.bind((LOCALHOST, 0))
                local_port = probe.getsockname()[1]
            async with await connect_tcp(
                LOCALHOST, port, local_host=LOCALHOST, local_port=local_port
            ) as client:
                assert client.extra(SocketAttribute.local_address) == (LOCALHOST, local_port)
                async with await listener.accept() as server:
                    assert server.extra(SocketAttribute.remote_port) == local_port


class TestSameBehaviourAsAnyio:
    """Each scenario on anyio's sockets and on ours; the outcome must be the same."""

    @pytest.fixture(params=["anyio", "century_ring"])
    def implementation(self, request: pytest.FixtureRequest) -> str:
        name: str = request.param
        return name

    async def test_end_of_stream_after_the_peer_closes(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, server):
            await client.send(b"last words")
            await client.aclose()
            assert await _receive_all(server) == b"last words"
            with pytest.raises(anyio.EndOfStream):
                await server.receive()

    async def test_send_eof_half_closes(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, server):
            await client.send(b"question")
            await client.send_eof()
            assert await _receive_all(server) == b"question"
            # The other direction still works.
            await server.send(b"answer")
            assert await client.receive() == b"answer"

    async def test_a_reset_connection_is_broken(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, server):
            _reset(client)
            await client.aclose()
            await anyio.sleep(0.02)
            with pytest.raises(anyio.BrokenResourceError):
                await server.receive()

    async def test_sending_to_a_reset_connection_is_broken(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, server):
            _reset(client)
            await client.aclose()
            await anyio.sleep(0.02)
            with pytest.raises(anyio.BrokenResourceError):
                for _ in range(100):
                    await server.send(b"x" * 65536)

    async def test_a_closed_stream_refuses_everything(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, _server):
            await client.aclose()
            with pytest.raises(anyio.ClosedResourceError):
                await client.receive()
            with pytest.raises(anyio.ClosedResourceError):
                await client.send(b"x")
            await client.aclose()  # closing twice is fine

    async def test_closing_a_stream_stops_a_pending_receive(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, _server):
            outcome: list[type[BaseException]] = []

            async def receive() -> None:
                try:
                    await client.receive()
                except Exception as exc:
                    outcome.append(type(exc))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(receive)
                await anyio.sleep(0.02)
                await client.aclose()
            assert outcome == [anyio.ClosedResourceError]

    async def test_closing_a_stream_stops_a_pending_send(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, _server):
            outcome: list[type[BaseException]] = []

            async def send() -> None:
                try:
                    # Nobody receives: the socket buffers fill and the send waits.
                    await client.send(b"x" * (64 << 20))
                except Exception as exc:
                    outcome.append(type(exc))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(send)
                await anyio.sleep(0.05)
                await client.aclose()
            assert outcome == [anyio.ClosedResourceError]

    async def test_two_tasks_cannot_send_at_once(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, _server):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(client.send, b"x" * (64 << 20))
                await anyio.sleep(0.05)
                with pytest.raises(anyio.BusyResourceError):
                    await client.send(b"y")
                tasks.cancel_scope.cancel()

    async def test_two_tasks_cannot_receive_at_once(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (client, server):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(server.receive)
                await anyio.sleep(0.01)
                with pytest.raises(anyio.BusyResourceError):
                    await server.receive()
                await client.send(b"x")

    async def test_max_bytes_must_be_positive(self, implementation: str) -> None:
        async with tcp_pair(implementation) as (_client, server):
            with pytest.raises(ValueError):
                await server.receive(0)

    async def test_a_refused_connection_fails(self, implementation: str) -> None:
        connect = anyio.connect_tcp if implementation == "anyio" else connect_tcp
        with socket.socket() as unused:
            unused.bind((LOCALHOST, 0))
            port = unused.getsockname()[1]  # bound, not listening: refused
            # anyio raises a plain OSError; ours is anyio.ConnectionFailed, a subclass of it.
            with pytest.raises(OSError, match="All connection attempts failed") as failed:
                await connect(LOCALHOST, port)
        assert isinstance(failed.value.__cause__, ConnectionRefusedError)


class TestExtraAttributes:
    async def test_addresses_are_those_of_the_real_sockets(self) -> None:
        async with tcp_pair() as (client, server):
            client_socket = client.extra(SocketAttribute.raw_socket)
            server_socket = server.extra(SocketAttribute.raw_socket)
            assert isinstance(client_socket, socket.socket)
            assert client_socket.gettimeout() == 0.0  # non-blocking, as anyio's
            assert client.extra(SocketAttribute.family) == socket.AF_INET
            assert client.extra(SocketAttribute.local_address) == client_socket.getsockname()
            assert client.extra(SocketAttribute.remote_address) == server_socket.getsockname()
            assert server.extra(SocketAttribute.remote_address) == client_socket.getsockname()
            assert client.extra(SocketAttribute.local_port) == client_socket.getsockname()[1]
            assert client.extra(SocketAttribute.remote_port) == server_socket.getsockname()[1]
            assert server.extra(SocketAttribute.remote_port) == client_socket.getsockname()[1]
            # TCP_NODELAY on both ends, as anyio sets it.
            for raw in (client_socket, server_socket):
                assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    async def test_ipv6_addresses(self) -> None:
        try:
            multi = await create_tcp_listener(local_host="::1")
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback: {exc}")
        (listener,) = multi.listeners
        async with listener:
            port = listener.extra(SocketAttribute.local_port)
            assert listener.extra(SocketAttribute.local_address) == ("::1", port)
            async with await connect_tcp("::1", port) as client:
                assert client.extra(SocketAttribute.family) == socket.AF_INET6
                assert client.extra(SocketAttribute.remote_address) == ("::1", port)
                server = await listener.accept()
                async with server:
                    assert server.extra(SocketAttribute.remote_port) == client.extra(
                        SocketAttribute.local_port
                    )

    async def test_a_listener_reports_its_bound_address(self) -> None:
        listener = await _ring_listener(backlog=10)
        async with listener:
            raw = listener.extra(SocketAttribute.raw_socket)
            assert listener.extra(SocketAttribute.local_address) == raw.getsockname()
            assert listener.extra(SocketAttribute.local_port) == raw.getsockname()[1]
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)

    async def test_listening_on_all_interfaces_binds_one_port_everywhere(self) -> None:
        multi = await create_tcp_listener()
        async with multi:
            ports = {listener.extra(SocketAttribute.local_port) for listener in multi.listeners}
            assert len(ports) == 1
            (port,) = ports
            async with await connect_tcp(LOCALHOST, port) as client:
                assert client.extra(SocketAttribute.remote_port) == port


class TestAnyioHelpersOnRingStreams:
    async def test_buffered_receive_exactly_and_until(self) -> None:
        async with tcp_pair() as (client, server):
            buffered = BufferedByteReceiveStream(server)
            message = b"HEAD 5\r\n" + b"abcde" + b"tail\r\n"
            for i in range(0, len(message), 3):  # in fragments that straddle the delimiters
                await client.send(message[i : i + 3])
                await anyio.sleep(0.001)
            assert await buffered.receive_until(b"\r\n", 100) == b"HEAD 5"
            assert await buffered.receive_exactly(5) == b"abcde"
            assert await buffered.receive_until(b"\r\n", 100) == b"tail"
            await client.send_eof()
            with pytest.raises(anyio.IncompleteRead):
                await buffered.receive_exactly(1)

    async def test_text_stream_decodes_characters_split_across_receives(self) -> None:
        async with tcp_pair() as (client, server):
            text = "héllo wörld ✓"
            encoded = text.encode()
            # One byte at a time: every multi-byte character is split.
            for i in range(len(encoded)):
                await client.send(encoded[i : i + 1])
            await client.send_eof()
            reader = TextStream(server)
            decoded = ""
            try:
                while True:
                    decoded += await reader.receive()
            except anyio.EndOfStream:
                pass
            assert decoded == text
            await TextStream(server).send("réponse")
            assert await client.receive() == "réponse".encode()

    async def test_tls_over_ring_streams(self, certificate: tuple[Path, Path]) -> None:
        cert, key = certificate
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=str(cert))
        listener = await _ring_listener()
        async with listener:
            port = listener.extra(SocketAttribute.local_port)

            async def serve_one() -> None:
                tls = await TLSStream.wrap(
                    await listener.accept(), server_side=True, ssl_context=server_context
                )
                async with tls:
                    request = await tls.receive()
                    await tls.send(request[::-1])

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(serve_one)
                client = await connect_tcp(
                    LOCALHOST, port, ssl_context=client_context, tls_hostname="localhost"
                )
                assert isinstance(client, TLSStream)
                async with client:
                    assert isinstance(client.transport_stream, RingSocketStream)
                    assert client.extra(SocketAttribute.remote_port) == port
                    await client.send(b"secret")
                    assert await client.receive() == b"terces"

    async def test_tls_refuses_a_certificate_for_another_name(
        self, certificate: tuple[Path, Path]
    ) -> None:
        cert, key = certificate
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=str(cert))
        century_ring.aio.current_ring()  # its descriptors are not the test's
        before = open_fd_count()
        listener = await _ring_listener()
        async with listener, anyio.create_task_group() as tasks:

            async def serve_one() -> None:
                # TLSStream.wrap leaves closing a failed transport to its caller.
                async with await listener.accept() as transport:
                    with pytest.raises((anyio.BrokenResourceError, ssl.SSLError)):
                        await TLSStream.wrap(
                            transport, server_side=True, ssl_context=server_context
                        )

            tasks.start_soon(serve_one)
            with pytest.raises(ssl.SSLCertVerificationError):
                await connect_tcp(
                    LOCALHOST,
                    listener.extra(SocketAttribute.local_port),
                    ssl_context=client_context,
                    tls_hostname="elsewhere.example",
                )
        await anyio.sleep(0.01)
        assert open_fd_count() == before


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and its key, made with ``openssl``."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a test certificate with openssl: {exc}")
    return cert, key


class TestUnixSockets:
    async def test_echo_and_addresses(self, tmp_dir: Path) -> None:
        path = tmp_dir / "echo.sock"
        listener = await create_unix_listener(path)
        assert isinstance(listener, RingUNIXSocketListener)
        async with listener:
            assert listener.extra(SocketAttribute.local_address) == str(path)
            async with await connect_unix(path) as client:
                assert isinstance(client, RingUNIXSocketStream)
                server = await listener.accept()
                assert isinstance(server, RingUNIXSocketStream)
                async with server:
                    assert client.extra(SocketAttribute.family) == socket.AF_UNIX
                    assert client.extra(SocketAttribute.remote_address) == str(path)
                    await client.send(b"over unix" * 10000)
                    await client.send_eof()
                    assert await _receive_all(server) == b"over unix" * 10000
                    await server.send(b"back")
                    assert await client.receive() == b"back"

    async def test_listener_replaces_a_stale_socket_and_sets_its_mode(self, tmp_dir: Path) -> None:
        path = tmp_dir / "stale.sock"
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(path))
        stale.close()  # leaves the file behind, as a crashed server would
        listener = await create_unix_listener(path, mode=0o600)
        async with listener:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            async with await connect_unix(path) as client:
                server = await listener.accept()
                async with server:
                    await client.send(b"fresh")
                    assert await server.receive() == b"fresh"

    async def test_a_path_that_is_not_a_socket_is_left_alone(self, tmp_dir: Path) -> None:
        path = tmp_dir / "file"
        path.write_bytes(b"keep me")
        with pytest.raises(OSError):
            await create_unix_listener(path)
        assert path.read_bytes() == b"keep me"

    async def test_abstract_namespace(self) -> None:
        name = b"\0century-ring-test-%d" % random.getrandbits(48)
        async with await create_unix_listener(name) as listener:
            async with await connect_unix(name) as client:
                async with await listener.accept() as server:
                    await client.send(b"abstract")
                    assert await server.receive() == b"abstract"

    async def test_connecting_to_nothing_fails(self, tmp_dir: Path) -> None:
        with pytest.raises(FileNotFoundError):
            await connect_unix(tmp_dir / "nobody.sock")

    async def test_descriptors_cross_with_a_message(self, tmp_dir: Path) -> None:
        path = tmp_dir / "fds.sock"
        async with await create_unix_listener(path) as listener:
            async with await connect_unix(path) as client:
                async with await listener.accept() as server:
                    read_end, write_end = os.pipe()
                    try:
                        async with anyio.create_task_group() as tasks:
                            received: list[tuple[bytes, list[int]]] = []

                            async def receive() -> None:
                                received.append(await server.receive_fds(10, 2))

                            tasks.start_soon(receive)
                            await anyio.sleep(0.01)  # the receiver waits for readiness
                            await client.send_fds(b"here", [write_end])
                        ((message, fds),) = received
                        assert message == b"here"
                        (passed,) = fds
                        os.write(passed, b"through the copy")
                        os.close(passed)
                        assert os.read(read_end, 100) == b"through the copy"
                    finally:
                        os.close(read_end)
                        os.close(write_end)
                    await client.aclose()
                    with pytest.raises(anyio.EndOfStream):
                        await server.receive_fds(10, 1)


class TestAdoptingSockets:
    async def test_from_socket_wraps_a_connected_socket(self) -> None:
        left, right = socket.socketpair()
        stream = await RingUNIXSocketStream.from_socket(left)
        async with stream:
            assert stream.extra(SocketAttribute.raw_socket) is left
            assert left.gettimeout() == 0.0
            right.sendall(b"adopted")
            assert await stream.receive() == b"adopted"
        assert left.fileno() == -1  # the stream owned and closed it
        right.close()

    async def test_from_socket_refuses_what_is_not_connected(self) -> None:
        with socket.socket() as unconnected:
            with pytest.raises(ValueError):
                await RingSocketStream.from_socket(unconnected)
            with pytest.raises(ValueError):
                await RingSocketListener.from_socket(unconnected.fileno())
            assert unconnected.fileno() >= 0  # refused, so still the caller's


class TestListenerLifecycle:
    async def test_closing_a_listener_stops_a_pending_accept(self) -> None:
        listener = await _ring_listener()
        outcome: list[type[BaseException]] = []

        async def accept() -> None:
            try:
                await listener.accept()
            except Exception as exc:
                outcome.append(type(exc))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(accept)
            await anyio.sleep(0.02)
            await listener.aclose()
        assert outcome == [anyio.ClosedResourceError]
        with pytest.raises(anyio.ClosedResourceError):
            await listener.accept()

    async def test_two_tasks_cannot_accept_at_once(self) -> None:
        listener = await _ring_listener()
        async with listener, anyio.create_task_group() as tasks:
            tasks.start_soon(listener.accept)
            await anyio.sleep(0.01)
            with pytest.raises(anyio.BusyResourceError):
                await listener.accept()
            tasks.cancel_scope.cancel()


class TestCancellationRaces:
    async def test_a_receive_cancelled_as_data_arrives_loses_no_byte(self) -> None:
        rng = random.Random(7)
        sent = bytearray()
        received = bytearray()
        outcomes = {"cancelled while waiting": 0, "bytes kept for the next receive": 0}
        async with tcp_pair() as (client, server):
            peer = client.extra(SocketAttribute.raw_socket)
            for i in range(RACES):
                scope = anyio.CancelScope()

                async def receive_until_cancelled(scope: anyio.CancelScope = scope) -> None:
                    with scope:
                        while True:
                            received.extend(await server.receive())
                    await _no_escaped_cancellation()
                    assert isinstance(server, RingSocketStream)
                    kept = "bytes kept for the next receive"
                    outcomes[kept if server._kept else "cancelled while waiting"] += 1

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(receive_until_cancelled)
                    # Numbered chunks, so that a lost, repeated or reordered one shows.
                    chunk = i.to_bytes(4, "big") * rng.randint(1, 64)
                    for _ in range(rng.randint(0, 2)):
                        await anyio.sleep(0)
                    if rng.random() < 0.5:
                        await client.send(chunk)
                    else:
                        # Sent without yielding, so that the data and the cancel reach the
                        # receiver in the same pass of the loop.
                        peer.send(chunk)
                    sent.extend(chunk)
                    for _ in range(rng.randint(0, 2)):
                        await anyio.sleep(0)
                    scope.cancel()
            await client.send_eof()
            received.extend(await _receive_all(server))
        assert bytes(received) == bytes(sent)
        # The race was run both ways: receives cancelled before any data, and receives whose
        # data arrived with the cancel (kept by the stream, returned by the next receive).
        assert all(outcomes.values()), outcomes

    async def test_a_cancellation_stays_in_its_scope_when_the_call_completes_anyway(
        self,
    ) -> None:
        # ``with scope: data = await stream.receive()``, nothing after it in the scope: when
        # the data and the cancel arrive together, the cancel must not leak out of the scope.
        # The same for accept.
        rng = random.Random(11)
        sent = bytearray()
        received = bytearray()
        outcomes = {
            ("receive", False): 0,
            ("receive", True): 0,
            ("accept", False): 0,
            ("accept", True): 0,
        }
        async with tcp_pair() as (client, server):
            peer = client.extra(SocketAttribute.raw_socket)
            listener = await _ring_listener()
            address = listener.extra(SocketAttribute.local_address)
            async with listener:
                for i in range(RACES // 4):
                    call = "receive" if i % 2 else "accept"
                    chunk = i.to_bytes(4, "big") * 4
                    scope = anyio.CancelScope()
                    peers: list[socket.socket] = []

                    async def trigger(
                        call: str = call,
                        chunk: bytes = chunk,
                        scope: anyio.CancelScope = scope,
                        peers: list[socket.socket] = peers,
                    ) -> None:
                        for _ in range(rng.randint(0, 2)):
                            await anyio.sleep(0)
                        # Without yielding: the arrival and the cancel come in one pass.
                        if call == "receive":
                            peer.send(chunk)
                            sent.extend(chunk)
                        else:
                            connecting = socket.socket()
                            connecting.setblocking(False)
                            connecting.connect_ex(address)
                            peers.append(connecting)
                        scope.cancel()

                    accepted: list[anyio.abc.SocketStream] = []
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(trigger)
                        with scope:
                            if call == "receive":
                                received.extend(await server.receive())
                            else:
                                accepted.append(await listener.accept())
                        outcomes[call, scope.cancelled_caught] += 1
                        await _no_escaped_cancellation()
                    for stream in accepted:
                        await stream.aclose()
                    for connecting in peers:
                        connecting.close()
            await client.send_eof()
            received.extend(await _receive_all(server))
        assert bytes(received) == bytes(sent)
        # Calls that returned before the cancel, and calls the cancel interrupted.
        assert all(outcomes.values()), outcomes

    async def test_an_accept_cancelled_mid_flight_leaks_no_descriptor(self) -> None:
        rng = random.Random(8)
        century_ring.aio.current_ring()  # its descriptors are not the test's
        before = open_fd_count()
        outcomes = {"cancelled": 0, "accepted": 0, "kept for the next accept": 0}
        listener = await _ring_listener()
        address = listener.extra(SocketAttribute.local_address)
        async with listener:
            for _ in range(RACES // 4):
                accepted: list[anyio.abc.SocketStream] = []
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tasks:

                        async def accept(accepted: list[anyio.abc.SocketStream] = accepted) -> None:
                            accepted.append(await listener.accept())

                        tasks.start_soon(accept)
                        # The cancel lands before, with, or after the connection.
                        cancel_first = rng.random() < 0.5
                        for _ in range(rng.randint(0, 2)):
                            await anyio.sleep(0)
                        if cancel_first:
                            scope.cancel()
                        with socket.socket() as peer:
                            peer.setblocking(False)
                            peer.connect_ex(address)
                            for _ in range(rng.randint(0, 2)):
                                await anyio.sleep(0)
                            scope.cancel()
                            # What no accept took waits in the listen queue: take it here.
                            try:
                                listener.extra(SocketAttribute.raw_socket).accept()[0].close()
                            except BlockingIOError:
                                pass
                outcomes["accepted" if accepted else "cancelled"] += 1
                for stream in accepted:
                    await stream.aclose()
                # A connection kept from a cancelled accept is the next accept's.
                if listener._kept is not None:
                    outcomes["kept for the next accept"] += 1
                    await (await listener.accept()).aclose()
        assert open_fd_count() == before
        assert all(outcomes.values()), outcomes

    async def test_a_connect_cancelled_mid_flight_leaks_no_descriptor(self) -> None:
        rng = random.Random(9)
        century_ring.aio.current_ring()  # its descriptors are not the test's
        before = open_fd_count()
        listener = await _ring_listener()
        port = listener.extra(SocketAttribute.local_port)
        outcomes = {"cancelled": 0, "connected": 0}
        async with listener:
            for _ in range(RACES // 4):
                connected: list[anyio.abc.SocketStream] = []
                scope = anyio.CancelScope()

                async def connect(
                    scope: anyio.CancelScope = scope,
                    connected: list[anyio.abc.SocketStream] = connected,
                ) -> None:
                    with scope:
                        connected.append(await connect_tcp(LOCALHOST, port))
                    await _no_escaped_cancellation()

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(connect)
                    for _ in range(rng.randint(0, 12)):
                        await anyio.sleep(0)
                    scope.cancel()
                outcomes["connected" if connected else "cancelled"] += 1
                for stream in connected:
                    await stream.aclose()
                # Keep the listen queue short: take (and drop) what reached it.
                while True:
                    with anyio.move_on_after(0) as drained:
                        await (await listener.accept()).aclose()
                    if drained.cancelled_caught:
                        break
        assert open_fd_count() == before
        assert all(outcomes.values()), outcomes

    async def test_a_cancelled_send_never_repeats_bytes(self) -> None:
        rng = random.Random(10)
        async with tcp_pair() as (client, server):
            # Small buffers, so that each chunk takes many sends and a deadline can cut one.
            client.extra(SocketAttribute.raw_socket).setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 32768
            )
            server.extra(SocketAttribute.raw_socket).setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, 32768
            )
            received = bytearray()

            async def drain() -> None:
                while True:
                    try:
                        received.extend(await server.receive())
                    except anyio.EndOfStream:
                        return

            sizes: list[int] = []
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(drain)
                for i in range(40):
                    sizes.append(rng.randint(1, 1 << 19))
                    with anyio.move_on_after(rng.random() * 0.002):
                        await client.send(bytes([i]) * sizes[-1])
                await client.send_eof()
            # Of each chunk a prefix arrived, in order, never a byte twice.
            arrived = [0] * len(sizes)
            position = 0
            previous = -1
            while position < len(received):
                value = received[position]
                end = position
                while end < len(received) and received[end] == value:
                    end += 1
                assert value > previous, "bytes of an earlier chunk came again"
                assert end - position <= sizes[value], f"chunk {value} grew"
                arrived[value] = end - position
                previous = value
                position = end
            # Both kinds happened: sends cut short by their deadline, and complete ones.
            assert any(0 < n < size for n, size in zip(arrived, sizes, strict=True)), arrived
            assert any(n == size for n, size in zip(arrived, sizes, strict=True)), arrived


async def test_streams_use_the_running_loops_ring() -> None:
    async with tcp_pair() as (client, server):
        assert isinstance(client, RingSocketStream)
        assert isinstance(server, RingSocketStream)
        assert client._ring is century_ring.aio.current_ring()
        assert server._ring is client._ring
