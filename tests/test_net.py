"""Creating sockets, connecting over loopback, and sending and receiving through the ring."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from century_ring import IoUring, raise_for_cqe
from conftest import complete, succeed


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


@pytest.fixture
def listener4() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1, made with the socket module."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.settimeout(10)
        yield s


@pytest.fixture
def listener6() -> Iterator[socket.socket]:
    """A TCP listener on ::1, made with the socket module."""
    if not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        s.listen(16)
        s.settimeout(10)
        yield s


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Sockets wrapped during a test; closed at the end."""
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


def ring_socket(
    ring: IoUring, sockets: list[socket.socket], domain: int, type_: int, **kwargs: Any
) -> socket.socket:
    """Create a socket through the ring and wrap its fd in a socket.socket."""
    cqe = succeed(ring, ring.prep_create_socket(domain, type_, **kwargs))
    assert cqe.result >= 0
    assert cqe.buffer is None
    s = socket.socket(fileno=cqe.result)
    sockets.append(s)
    return s


def ring_connected_pair(
    ring: IoUring, sockets: list[socket.socket], listener: socket.socket
) -> tuple[socket.socket, socket.socket]:
    """A client socket connected through the ring, and the listener's accepted end."""
    client = ring_socket(ring, sockets, socket.AF_INET, socket.SOCK_STREAM)
    port = listener.getsockname()[1]
    cqe = succeed(ring, ring.prep_connect_v4(client.fileno(), "127.0.0.1", port))
    assert cqe.result == 0
    server, _ = listener.accept()
    sockets.append(server)
    server.settimeout(10)
    return client, server


# --- prep_create_socket ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "type_"),
    [
        (socket.AF_INET, socket.SOCK_STREAM),
        (socket.AF_INET, socket.SOCK_DGRAM),
        (socket.AF_INET6, socket.SOCK_STREAM),
        (socket.AF_UNIX, socket.SOCK_STREAM),
    ],
)
def test_create_socket_family_and_type(
    ring: IoUring, sockets: list[socket.socket], domain: int, type_: int
) -> None:
    """prep_create_socket makes a socket of the asked family and type."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    s = ring_socket(ring, sockets, domain, type_)
    assert s.family == domain
    assert s.type == type_


def test_create_socket_is_cloexec_and_blocking_by_default(
    ring: IoUring, sockets: list[socket.socket]
) -> None:
    """A new socket is close-on-exec and, by default, blocking."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    s = ring_socket(ring, sockets, socket.AF_INET, socket.SOCK_STREAM)
    assert fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert not fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK


def test_create_socket_nonblocking(ring: IoUring, sockets: list[socket.socket]) -> None:
    """nonblocking=True adds SOCK_NONBLOCK (and SOCK_CLOEXEC is still there)."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    s = ring_socket(ring, sockets, socket.AF_INET, socket.SOCK_STREAM, nonblocking=True)
    assert fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
    assert fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_create_socket_positional_protocol(ring: IoUring, sockets: list[socket.socket]) -> None:
    """protocol and nonblocking may be passed positionally."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    cqe = succeed(
        ring,
        ring.prep_create_socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, True),
    )
    s = socket.socket(fileno=cqe.result)
    sockets.append(s)
    assert s.proto == socket.IPPROTO_TCP
    assert fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK


def test_create_socket_unknown_family_fails_in_completion(ring: IoUring) -> None:
    """An address family the kernel does not know completes with -EAFNOSUPPORT."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    cqe = complete(ring, ring.prep_create_socket(4095, socket.SOCK_STREAM))
    assert cqe.result == -errno.EAFNOSUPPORT
    with pytest.raises(OSError) as info:
        raise_for_cqe(cqe)
    assert info.value.errno == errno.EAFNOSUPPORT


# --- prep_connect_v4 / v6 -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", ipaddress.IPv4Address("127.0.0.1")],
    ids=["str", "IPv4Address"],
)
def test_connect_v4_to_loopback_listener(
    ring: IoUring, listener4: socket.socket, address: Any
) -> None:
    """prep_connect_v4 connects a socket to a listener, with a str or IPv4Address address."""
    port = listener4.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        cqe = succeed(ring, ring.prep_connect_v4(client.fileno(), address, port))
        assert cqe.result == 0
        assert cqe.buffer is None
        server, peer = listener4.accept()
        with server:
            assert client.getpeername() == ("127.0.0.1", port)
            assert peer == client.getsockname()


def test_connect_accepts_socket_object(ring: IoUring, listener4: socket.socket) -> None:
    """fd may be the socket object itself (it has fileno())."""
    port = listener4.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        assert succeed(ring, ring.prep_connect_v4(client, "127.0.0.1", port)).result == 0
        listener4.accept()[0].close()
        assert client.getpeername()[1] == port


def test_connect_nonblocking_ring_socket(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """A non-blocking socket made by the ring still connects (the ring waits for it)."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    client = ring_socket(ring, sockets, socket.AF_INET, socket.SOCK_STREAM, nonblocking=True)
    port = listener4.getsockname()[1]
    assert succeed(ring, ring.prep_connect_v4(client.fileno(), "127.0.0.1", port)).result == 0
    listener4.accept()[0].close()


@pytest.mark.parametrize(
    "address", ["::1", ipaddress.IPv6Address("::1")], ids=["str", "IPv6Address"]
)
def test_connect_v6_to_loopback_listener(
    ring: IoUring, listener6: socket.socket, address: Any
) -> None:
    """prep_connect_v6 connects to an IPv6 listener, with a str or IPv6Address address."""
    port = listener6.getsockname()[1]
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as client:
        assert succeed(ring, ring.prep_connect_v6(client.fileno(), address, port)).result == 0
        server, _ = listener6.accept()
        with server:
            assert client.getpeername()[:2] == ("::1", port)


@needs_ipv6
def test_connect_v6_v4_mapped(ring: IoUring) -> None:
    """A v4-mapped IPv6 address reaches an IPv4 listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as client:
            cqe = succeed(ring, ring.prep_connect_v6(client.fileno(), "::ffff:127.0.0.1", port))
            assert cqe.result == 0
            listener.accept()[0].close()


def test_connection_refused(ring: IoUring) -> None:
    """Connecting to a port nobody listens on completes with -ECONNREFUSED.

    raise_for_cqe turns that into ConnectionRefusedError, with errno and strerror set.
    """
    # A bound but non-listening socket keeps the port ours and answers with a reset.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            cqe = complete(ring, ring.prep_connect_v4(client.fileno(), "127.0.0.1", port))
    assert cqe.result == -errno.ECONNREFUSED
    with pytest.raises(ConnectionRefusedError) as info:
        raise_for_cqe(cqe)
    assert info.value.errno == errno.ECONNREFUSED
    assert info.value.strerror == os.strerror(errno.ECONNREFUSED)


@needs_ipv6
def test_connection_refused_v6(ring: IoUring) -> None:
    """The same over IPv6."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as holder:
        holder.bind(("::1", 0))
        port = holder.getsockname()[1]
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as client:
            cqe = complete(ring, ring.prep_connect_v6(client.fileno(), "::1", port))
    with pytest.raises(ConnectionRefusedError):
        raise_for_cqe(cqe)


def test_connect_on_non_socket_is_enotsock(ring: IoUring) -> None:
    """Connecting a descriptor that is not a socket completes with -ENOTSOCK."""
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        cqe = complete(ring, ring.prep_connect_v4(fd, "127.0.0.1", 9))
    finally:
        os.close(fd)
    assert cqe.result == -errno.ENOTSOCK


# --- prep_send / prep_recv ------------------------------------------------------------------


def test_send_recv_round_trip(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """Send through the ring to a peer, then receive its answer through the ring."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    client, server = ring_connected_pair(ring, sockets, listener4)
    cqe = succeed(ring, ring.prep_send(client.fileno(), b"ping"))
    assert cqe.result == 4
    assert cqe.buffer is None
    assert server.recv(100) == b"ping"
    server.sendall(b"pong!")
    cqe = succeed(ring, ring.prep_recv(client.fileno(), 100))
    assert cqe.result == 5
    assert cqe.buffer == b"pong!"
    assert type(cqe.buffer) is bytes


def test_recv_waits_for_data(ring: IoUring, listener4: socket.socket) -> None:
    """A recv queued before any data arrives completes once the peer sends."""
    with socket.create_connection(listener4.getsockname(), timeout=10) as client:
        server, _ = listener4.accept()
        with server:
            ud = ring.prep_recv(client.fileno(), 64)
            ring.submit()
            assert ring.submit_and_wait_with_timeout(0.05) == 0
            assert ring.get_completion_entries() == []
            server.sendall(b"late")
            assert succeed(ring, ud).buffer == b"late"


def test_send_count_and_buffer_offset(ring: IoUring, listener4: socket.socket) -> None:
    """count and buffer_offset pick the slice of the buffer that is sent."""
    with socket.create_connection(listener4.getsockname(), timeout=10) as client:
        server, _ = listener4.accept()
        with server:
            buf = bytearray(b"0123456789")
            assert succeed(ring, ring.prep_send(client, buf, 4, 3)).result == 4
            assert succeed(ring, ring.prep_send(client, memoryview(buf)[8:])).result == 2
            assert succeed(ring, ring.prep_send(client, buf, buffer_offset=9)).result == 1
            client.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := server.recv(100):
                got += chunk
            assert got == b"3456" + b"89" + b"9"


def test_send_large_buffer(ring: IoUring, listener4: socket.socket) -> None:
    """A large send transfers intact (repeating partial sends as a user would)."""
    payload = os.urandom(1 << 20)
    with socket.create_connection(listener4.getsockname(), timeout=10) as client:
        server, _ = listener4.accept()
        with server:
            received = bytearray()
            sent = 0
            while sent < len(payload):
                ud = ring.prep_send(client, payload, buffer_offset=sent)
                ring.submit()
                # Drain the peer meanwhile so the send can finish.
                while True:
                    done = ring.get_completion_entries()
                    if done:
                        break
                    server.settimeout(0.05)
                    try:
                        received += server.recv(1 << 16)
                    except TimeoutError:
                        ring.submit_and_wait_with_timeout(0.05)
                [cqe] = done
                assert cqe.user_data == ud
                raise_for_cqe(cqe)
                assert cqe.result > 0
                sent += cqe.result
            client.shutdown(socket.SHUT_WR)
            server.settimeout(10)
            while chunk := server.recv(1 << 16):
                received += chunk
    assert bytes(received) == payload


def test_recv_flags_peek(ring: IoUring, listener4: socket.socket) -> None:
    """recv flags are passed to the kernel: MSG_PEEK leaves the data in place."""
    with socket.create_connection(listener4.getsockname(), timeout=10) as client:
        server, _ = listener4.accept()
        with server:
            server.sendall(b"peekaboo")
            assert succeed(ring, ring.prep_recv(client, 4, socket.MSG_PEEK)).buffer == b"peek"
            client.settimeout(10)
            assert client.recv(100) == b"peekaboo"


def test_recv_after_peer_close_is_empty(ring: IoUring, listener4: socket.socket) -> None:
    """When the peer closes, recv completes with 0 and an empty buffer."""
    with socket.create_connection(listener4.getsockname(), timeout=10) as client:
        server, _ = listener4.accept()
        server.close()
        cqe = succeed(ring, ring.prep_recv(client, 100))
        assert cqe.result == 0
        assert cqe.buffer == b""


def test_recv_on_non_socket_fails_without_buffer(ring: IoUring) -> None:
    """A failed recv has a negative result and buffer None."""
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        cqe = complete(ring, ring.prep_recv(fd, 10))
    finally:
        os.close(fd)
    assert cqe.result == -errno.ENOTSOCK
    assert cqe.buffer is None


def test_udp_send_and_recv(ring: IoUring) -> None:
    """Datagrams: a connected UDP socket sends and receives through the ring."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        b.settimeout(10)
        assert succeed(ring, ring.prep_connect_v4(a, "127.0.0.1", b.getsockname()[1])).result == 0
        assert succeed(ring, ring.prep_send(a, b"datagram")).result == 8
        data, addr = b.recvfrom(100)
        assert data == b"datagram"
        b.sendto(b"reply", addr)
        assert succeed(ring, ring.prep_recv(a, 100)).buffer == b"reply"


def test_full_client_through_ring(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """Socket, connect, send, recv and close all through the ring, as an event loop would."""
    if not ring.probe().get("prep_create_socket"):
        pytest.skip("this kernel has no IORING_OP_SOCKET")
    fd = succeed(ring, ring.prep_create_socket(socket.AF_INET, socket.SOCK_STREAM)).result
    port = listener4.getsockname()[1]
    assert succeed(ring, ring.prep_connect_v4(fd, "127.0.0.1", port)).result == 0
    server, _ = listener4.accept()
    sockets.append(server)
    assert succeed(ring, ring.prep_send(fd, b"hello")).result == 5
    server.sendall(server.recv(100).upper())
    assert succeed(ring, ring.prep_recv(fd, 100)).buffer == b"HELLO"
    assert succeed(ring, ring.prep_close(fd)).result == 0
    server.settimeout(10)
    assert server.recv(100) == b""
