"""The network family: accept (one-shot, multishot, with the peer's address), connect to any
socket address, bind, listen, shutdown, and datagrams with addresses (sendto / recvfrom).

Every effect is observed from outside the library, through the socket module.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import ipaddress
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from century_ring import CompletionEvent, IoUring, make_io_ring, make_sqe_flags, raise_for_cqe
from conftest import collect, complete, drain, succeed


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")

#: A socket of each kind, for the few calls `require` makes on an unsupporting kernel.
_PROBE_CALLS: dict[str, Callable[[IoUring, socket.socket], object]] = {
    "prep_accept": lambda r, s: r.prep_accept(s),
    "prep_connect": lambda r, s: r.prep_connect(s, ("127.0.0.1", 9)),
    "prep_bind": lambda r, s: r.prep_bind(s, ("127.0.0.1", 0)),
    "prep_listen": lambda r, s: r.prep_listen(s),
    "prep_shutdown": lambda r, s: r.prep_shutdown(s, socket.SHUT_RDWR),
    "prep_sendto": lambda r, s: r.prep_sendto(s, b"", ("127.0.0.1", 9)),
    "prep_recvfrom": lambda r, s: r.prep_recvfrom(s, 1),
}


def require(ring: IoUring, *methods: str) -> None:
    """Skip the test, with the library's own NotImplementedError message, unless the kernel's
    probe lists every one of ``methods``."""
    probe = ring.probe()
    for method in methods:
        if probe[method]:
            continue
        with socket.socket() as s, pytest.raises(NotImplementedError) as info:
            _PROBE_CALLS[method](ring, s)
        pytest.skip(str(info.value))


def abstract_name() -> bytes:
    """A fresh name in Linux's abstract AF_UNIX namespace."""
    return b"\0century-ring-test-" + uuid.uuid4().hex.encode()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Sockets made during a test, closed at its end."""
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


def make(sockets: list[socket.socket], *args: Any) -> socket.socket:
    s = socket.socket(*args)
    s.settimeout(10)
    sockets.append(s)
    return s


def adopt(sockets: list[socket.socket], fd: int) -> socket.socket:
    """Wrap a descriptor the ring made (accept) so the test closes it."""
    s = socket.socket(fileno=fd)
    s.settimeout(10)
    sockets.append(s)
    return s


@pytest.fixture
def listener4(sockets: list[socket.socket]) -> socket.socket:
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(32)
    return s


@pytest.fixture
def listener6(sockets: list[socket.socket]) -> socket.socket:
    if not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    s = make(sockets, socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    s.listen(32)
    return s


@pytest.fixture
def unix_dir(tmp_path: Path) -> Path:
    """A short directory for AF_UNIX paths (sun_path holds 107 bytes)."""
    return tmp_path


def refused(
    ring: IoUring, exc: type[BaseException], match: str, call: Callable[[], object]
) -> None:
    """``call`` raises ``exc`` matching ``match`` and leaves the ring exactly as it was."""
    pending, in_flight = ring.pending_sq_entries, ring.in_flight
    with pytest.raises(exc, match=match):
        call()
    assert ring.pending_sq_entries == pending
    assert ring.in_flight == in_flight


def fails_with(cqe: CompletionEvent, code: int) -> None:
    """The completion failed with ``code``, which raise_for_cqe reports as Python would."""
    assert cqe.result == -code, f"expected -{errno.errorcode[code]}, got {cqe.result}"
    assert cqe.buffer is None
    assert cqe.extra is None
    with pytest.raises(OSError) as info:
        raise_for_cqe(cqe)
    assert info.value.errno == code


@pytest.fixture
def dev_null() -> Iterator[int]:
    fd = os.open("/dev/null", os.O_RDWR)
    yield fd
    os.close(fd)


# --- prep_accept ----------------------------------------------------------------------------


def test_accept_gives_a_connected_cloexec_socket(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """A one-shot accept completes with the new connection's fd, close-on-exec and blocking;
    data from the client arrives on it."""
    require(ring, "prep_accept")
    ud = ring.prep_accept(listener4)
    ring.submit()
    client = socket.create_connection(listener4.getsockname(), timeout=10)
    sockets.append(client)
    cqe = succeed(ring, ud)
    assert cqe.buffer is None
    assert cqe.extra is None
    assert not cqe.more
    assert fcntl.fcntl(cqe.result, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert not fcntl.fcntl(cqe.result, fcntl.F_GETFL) & os.O_NONBLOCK
    conn = adopt(sockets, cqe.result)
    assert conn.getpeername() == client.getsockname()
    client.sendall(b"hello")
    assert conn.recv(10) == b"hello"
    assert ring.in_flight == 0


def test_accept_nonblocking_flag(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """flags=SOCK_NONBLOCK makes the new descriptor non-blocking (still close-on-exec)."""
    require(ring, "prep_accept")
    sockets.append(socket.create_connection(listener4.getsockname(), timeout=10))
    fd = succeed(ring, ring.prep_accept(listener4.fileno(), socket.SOCK_NONBLOCK)).result
    assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    adopt(sockets, fd)


def test_accept_peer_address_v4(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """peer_address=True reports the client's (host, port) as the completion's extra."""
    require(ring, "prep_accept")
    client = socket.create_connection(listener4.getsockname(), timeout=10)
    sockets.append(client)
    cqe = succeed(ring, ring.prep_accept(listener4, peer_address=True))
    conn = adopt(sockets, cqe.result)
    assert cqe.extra == client.getsockname() == conn.getpeername()
    assert isinstance(cqe.extra, tuple)
    assert cqe.extra[0] == "127.0.0.1"


def test_accept_peer_address_v6(
    ring: IoUring, sockets: list[socket.socket], listener6: socket.socket
) -> None:
    """For IPv6 the address is (host, port, flowinfo, scope_id), as the socket module gives."""
    require(ring, "prep_accept")
    client = socket.create_connection(listener6.getsockname()[:2], timeout=10)
    sockets.append(client)
    cqe = succeed(ring, ring.prep_accept(listener6, peer_address=True))
    conn = adopt(sockets, cqe.result)
    assert cqe.extra == client.getsockname() == conn.getpeername()
    assert isinstance(cqe.extra, tuple)
    assert cqe.extra[0] == "::1"
    assert len(cqe.extra) == 4


@needs_ipv6
def test_accept_peer_address_v4_mapped(ring: IoUring, sockets: list[socket.socket]) -> None:
    """An IPv4 client of a dual-stack listener shows as a v4-mapped address, as in Python."""
    require(ring, "prep_accept")
    listener = make(sockets, socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::", 0))
    listener.listen(4)
    client = socket.create_connection(("127.0.0.1", listener.getsockname()[1]), timeout=10)
    sockets.append(client)
    cqe = succeed(ring, ring.prep_accept(listener, peer_address=True))
    conn = adopt(sockets, cqe.result)
    assert cqe.extra == conn.getpeername()
    assert isinstance(cqe.extra, tuple)
    assert cqe.extra[0] == "::ffff:127.0.0.1"


@pytest.mark.parametrize("client_name", ["unnamed", "path", "abstract"])
def test_accept_peer_address_unix(
    ring: IoUring, sockets: list[socket.socket], unix_dir: Path, client_name: str
) -> None:
    """AF_UNIX peers: "" when unnamed, the str path, or bytes starting with NUL for an
    abstract name, exactly as socket.getpeername() gives them."""
    require(ring, "prep_accept")
    listener = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(unix_dir / "server.sock"))
    listener.listen(4)
    client = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    expected: str | bytes = ""
    if client_name == "path":
        expected = str(unix_dir / "client.sock")
        client.bind(expected)
    elif client_name == "abstract":
        expected = abstract_name()
        client.bind(expected)
    client.connect(listener.getsockname())
    cqe = succeed(ring, ring.prep_accept(listener, peer_address=True))
    conn = adopt(sockets, cqe.result)
    assert cqe.extra == expected == conn.getpeername()
    assert type(cqe.extra) is type(expected)


def test_accept_on_a_socket_that_is_not_listening_is_einval(
    ring: IoUring, sockets: list[socket.socket]
) -> None:
    require(ring, "prep_accept")
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    fails_with(complete(ring, ring.prep_accept(s, peer_address=True)), errno.EINVAL)
    assert ring.in_flight == 0


def test_accept_on_a_file_is_enotsock(ring: IoUring, dev_null: int) -> None:
    require(ring, "prep_accept")
    fails_with(complete(ring, ring.prep_accept(dev_null)), errno.ENOTSOCK)


def test_accept_refuses_bad_arguments(ring: IoUring, listener4: socket.socket) -> None:
    """Bad flags, fds and combinations raise before anything is queued."""
    refused(ring, ValueError, "flags", lambda: ring.prep_accept(listener4, socket.MSG_PEEK))
    refused(ring, ValueError, "flags", lambda: ring.prep_accept(listener4, -1))
    refused(ring, TypeError, "flags", lambda: ring.prep_accept(listener4, "0"))  # type: ignore[arg-type]
    refused(
        ring,
        ValueError,
        "peer_address.*multishot",
        lambda: ring.prep_accept(listener4, peer_address=True, multishot=True),
    )
    refused(ring, ValueError, "fd", lambda: ring.prep_accept(-1))
    refused(ring, TypeError, "fd", lambda: ring.prep_accept("3"))  # type: ignore[arg-type]
    refused(
        ring,
        ValueError,
        "SKIP_SUCCESS",
        lambda: ring.prep_accept(
            listener4, peer_address=True, sqe_flags=make_sqe_flags(skip_success=True)
        ),
    )


def _reap_until(
    ring: IoUring, done: Callable[[list[CompletionEvent]], bool]
) -> list[CompletionEvent]:
    got: list[CompletionEvent] = []
    deadline = time.monotonic() + 10
    while not done(got):
        assert time.monotonic() < deadline, f"only {got} after 10 s"
        ring.submit_and_wait_with_timeout(0.2)
        got.extend(ring.get_completion_entries())
    return got


def test_multishot_accept_serves_many_clients_until_shut_down(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """One multishot accept takes every client: one completion each with the same user_data
    and more=True; it stays in flight until a final completion with more=False, which a
    shutdown of the listener brings (-EINVAL)."""
    require(ring, "prep_accept", "prep_shutdown")
    ud = ring.prep_accept(listener4, multishot=True)
    ring.submit()
    clients = [socket.create_connection(listener4.getsockname(), timeout=10) for _ in range(5)]
    sockets.extend(clients)
    got = _reap_until(ring, lambda g: len(g) == 5)
    assert all(c.user_data == ud and c.more and c.result >= 0 for c in got)
    assert ring.in_flight == 1, "the multishot accept is still armed"
    peers = {adopt(sockets, c.result).getpeername() for c in got}
    assert peers == {c.getsockname() for c in clients}
    # Still armed: a sixth client is taken too.
    late = socket.create_connection(listener4.getsockname(), timeout=10)
    sockets.append(late)
    [sixth] = _reap_until(ring, lambda g: len(g) == 1)
    assert sixth.user_data == ud and sixth.more
    assert adopt(sockets, sixth.result).getpeername() == late.getsockname()
    # Shutting the listener down ends it: the last completion has more=False.
    shut = ring.prep_shutdown(listener4, socket.SHUT_RDWR)
    final = _reap_until(ring, lambda g: any(c.user_data == ud for c in g))
    [last] = [c for c in final if c.user_data == ud]
    assert not last.more
    assert last.result == -errno.EINVAL
    done = {c.user_data: c for c in final + drain(ring)}
    assert done[shut].result == 0
    assert ring.in_flight == 0


def test_multishot_accept_is_cancelled_by_closing_the_ring(
    sockets: list[socket.socket], listener4: socket.socket
) -> None:
    """Closing the ring cancels an armed multishot accept promptly, with no warning; the
    listener still works afterwards."""
    with make_io_ring() as ring:
        require(ring, "prep_accept")
        ud = ring.prep_accept(listener4, multishot=True)
        ring.submit()
        sockets.append(socket.create_connection(listener4.getsockname(), timeout=10))
        [first] = _reap_until(ring, lambda g: len(g) == 1)
        assert first.user_data == ud and first.more
        adopt(sockets, first.result)
        assert ring.in_flight == 1
        started = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ring.close()
        assert time.monotonic() - started < 2
    sockets.append(socket.create_connection(listener4.getsockname(), timeout=10))
    conn, _ = listener4.accept()
    conn.close()


def test_multishot_accept_after_listener_fd_closed_keeps_running(
    ring: IoUring, sockets: list[socket.socket]
) -> None:
    """Closing the listener's descriptor through the ring does not stop the multishot accept
    (it holds its own reference), so its memory stays owned until it is really ended."""
    require(ring, "prep_accept", "prep_shutdown")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    address = listener.getsockname()
    ud = ring.prep_accept(listener, multishot=True)
    dup = os.dup(listener.fileno())
    succeed(ring, ring.prep_close(listener.detach()))
    sockets.append(socket.create_connection(address, timeout=10))
    [got] = _reap_until(ring, lambda g: len(g) == 1)
    assert got.user_data == ud and got.more
    adopt(sockets, got.result)
    assert ring.in_flight == 1
    with socket.socket(fileno=dup) as again:
        ring.prep_shutdown(again, socket.SHUT_RDWR)
        drain(ring)
    assert ring.in_flight == 0


# --- prep_connect ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", ipaddress.IPv4Address("127.0.0.1")], ids=["str", "IPv4Address"]
)
def test_connect_ipv4_tuple(
    ring: IoUring, sockets: list[socket.socket], listener4: socket.socket, host: Any
) -> None:
    """(host, port) with a numeric IPv4 host connects; the listener sees the client."""
    client = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    port = listener4.getsockname()[1]
    cqe = succeed(ring, ring.prep_connect(client, (host, port)))
    assert cqe.result == 0 and cqe.buffer is None and cqe.extra is None
    conn, peer = listener4.accept()
    sockets.append(conn)
    assert peer == client.getsockname()
    assert client.getpeername() == ("127.0.0.1", port)


@pytest.mark.parametrize(
    "make_address",
    [
        lambda port: ("::1", port),
        lambda port: ("::1", port, 0, 0),
        lambda port: ("::1", port, 0),
        lambda port: (ipaddress.IPv6Address("::1"), port),
    ],
    ids=["pair", "four-tuple", "three-tuple", "IPv6Address"],
)
def test_connect_ipv6_tuples(
    ring: IoUring,
    sockets: list[socket.socket],
    listener6: socket.socket,
    make_address: Callable[[int], Any],
) -> None:
    client = make(sockets, socket.AF_INET6, socket.SOCK_STREAM)
    port = listener6.getsockname()[1]
    assert succeed(ring, ring.prep_connect(client, make_address(port))).result == 0
    conn, peer = listener6.accept()
    sockets.append(conn)
    assert peer == client.getsockname()
    assert client.getpeername()[:2] == ("::1", port)


@pytest.mark.parametrize("form", ["str", "bytes", "PathLike"])
def test_connect_unix_path(
    ring: IoUring, sockets: list[socket.socket], unix_dir: Path, form: str
) -> None:
    """A filesystem AF_UNIX path as str, bytes or PathLike connects."""
    path = unix_dir / "listen.sock"
    listener = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    address: Any = {"str": str(path), "bytes": os.fsencode(path), "PathLike": path}[form]
    client = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    assert succeed(ring, ring.prep_connect(client, address)).result == 0
    conn, _ = listener.accept()
    sockets.append(conn)
    assert client.getpeername() == str(path)
    client.sendall(b"over unix")
    assert conn.recv(100) == b"over unix"


def test_connect_unix_abstract_namespace(ring: IoUring, sockets: list[socket.socket]) -> None:
    """bytes starting with NUL name the abstract namespace: no file is involved."""
    name = abstract_name()
    listener = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(name)
    listener.listen(1)
    client = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    assert succeed(ring, ring.prep_connect(client, name)).result == 0
    conn, _ = listener.accept()
    sockets.append(conn)
    assert client.getpeername() == name
    conn.sendall(b"abstract")
    assert client.recv(100) == b"abstract"


def test_connect_refused(ring: IoUring, sockets: list[socket.socket]) -> None:
    """A port with no listener: -ECONNREFUSED, which raise_for_cqe makes ConnectionRefusedError."""
    holder = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    client = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    cqe = complete(ring, ring.prep_connect(client, holder.getsockname()))
    fails_with(cqe, errno.ECONNREFUSED)
    with pytest.raises(ConnectionRefusedError):
        raise_for_cqe(cqe)


def test_connect_unix_errors(ring: IoUring, sockets: list[socket.socket], unix_dir: Path) -> None:
    """A missing path is -ENOENT; an abstract name nobody listens on is -ECONNREFUSED."""
    client = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    fails_with(complete(ring, ring.prep_connect(client, unix_dir / "absent")), errno.ENOENT)
    client = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    fails_with(complete(ring, ring.prep_connect(client, abstract_name())), errno.ECONNREFUSED)


def test_connect_on_a_file_is_enotsock(ring: IoUring, dev_null: int) -> None:
    fails_with(complete(ring, ring.prep_connect(dev_null, ("127.0.0.1", 9))), errno.ENOTSOCK)


def test_connect_address_family_mismatch_is_an_errno(
    ring: IoUring, sockets: list[socket.socket]
) -> None:
    """An AF_UNIX socket given an IPv4 address: the kernel's -EINVAL, not a crash."""
    client = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    fails_with(complete(ring, ring.prep_connect(client, ("127.0.0.1", 9))), errno.EINVAL)


BAD_ADDRESSES: list[tuple[Any, type[Exception], str]] = [
    (("localhost", 80), ValueError, "resolve it first"),
    (("example.com", 80), ValueError, "resolve it first"),
    (("1.2.3.4", 65536), ValueError, "port"),
    (("1.2.3.4", -1), ValueError, "port"),
    (("1.2.3.4", 2**64), ValueError, "port"),
    (("1.2.3.4", "80"), TypeError, "port"),
    (("::1", 80, 1 << 20, 0), ValueError, "flowinfo"),
    (("::1", 80, 0, -1), ValueError, "scope_id"),
    (("1.2.3.4", 80, 0, 0), ValueError, "IPv6 host"),
    ((ipaddress.IPv4Address("1.2.3.4"), 80, 0), ValueError, "IPv6 host"),
    (("fe80::1%no-such-interface0", 80), ValueError, "interface"),
    (("1.2.3.4",), TypeError, "tuple of 1"),
    (("1.2.3.4", 80, 0, 0, 0), TypeError, "tuple of 5"),
    ((b"1.2.3.4", 80), TypeError, "host"),
    ((None, 80), TypeError, "host"),
    (80, TypeError, "address"),
    (None, TypeError, "address"),
    ("x" * 108, ValueError, "at most 107 bytes"),
    (b"\0" + b"x" * 108, ValueError, "at most 108 bytes"),
    ("a\0b", ValueError, "NUL"),
]


@pytest.mark.parametrize(("address", "exc", "match"), BAD_ADDRESSES)
@pytest.mark.parametrize("method", ["prep_connect", "prep_bind", "prep_sendto"])
def test_bad_addresses_are_refused(
    ring: IoUring,
    sockets: list[socket.socket],
    method: str,
    address: Any,
    exc: type[Exception],
    match: str,
) -> None:
    """Every op taking an address refuses a bad one, naming it, and queues nothing."""
    s = make(sockets, socket.AF_INET, socket.SOCK_DGRAM)
    call: Callable[[], object]
    if method == "prep_sendto":
        call = lambda: ring.prep_sendto(s, b"data", address)  # noqa: E731
    else:
        call = lambda: getattr(ring, method)(s, address)  # noqa: E731
    pending, in_flight = ring.pending_sq_entries, ring.in_flight
    with pytest.raises(exc, match=match) as info:
        call()
    assert "address" in str(info.value)
    assert ring.pending_sq_entries == pending
    assert ring.in_flight == in_flight


def test_connect_refuses_bad_fd_and_skip_success(ring: IoUring, listener4: socket.socket) -> None:
    address = listener4.getsockname()
    refused(ring, ValueError, "fd", lambda: ring.prep_connect(-5, address))
    refused(ring, TypeError, "fd", lambda: ring.prep_connect(1.5, address))  # type: ignore[arg-type]
    refused(
        ring,
        ValueError,
        "SKIP_SUCCESS",
        lambda: ring.prep_connect(0, address, sqe_flags=make_sqe_flags(skip_success=True)),
    )


# --- prep_bind / prep_listen ----------------------------------------------------------------


def test_bind_ipv4_port_zero_picks_a_port(ring: IoUring, sockets: list[socket.socket]) -> None:
    require(ring, "prep_bind")
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    cqe = succeed(ring, ring.prep_bind(s, ("127.0.0.1", 0)))
    assert cqe.result == 0 and cqe.extra is None
    host, port = s.getsockname()
    assert host == "127.0.0.1" and port > 0


def test_bind_empty_host_is_the_wildcard(ring: IoUring, sockets: list[socket.socket]) -> None:
    """("", port) binds 0.0.0.0, as the socket module reads it."""
    require(ring, "prep_bind")
    s = make(sockets, socket.AF_INET, socket.SOCK_DGRAM)
    succeed(ring, ring.prep_bind(s, ("", 0)))
    assert s.getsockname()[0] == "0.0.0.0"


@needs_ipv6
def test_bind_ipv6(ring: IoUring, sockets: list[socket.socket]) -> None:
    require(ring, "prep_bind")
    s = make(sockets, socket.AF_INET6, socket.SOCK_DGRAM)
    succeed(ring, ring.prep_bind(s, ("::1", 0, 0, 0)))
    assert s.getsockname()[0] == "::1"
    wildcard = make(sockets, socket.AF_INET6, socket.SOCK_DGRAM)
    succeed(ring, ring.prep_bind(wildcard, ("", 0, 0, 0)))
    assert wildcard.getsockname()[0] == "::"


def test_bind_unix_path_creates_the_socket_file(
    ring: IoUring, sockets: list[socket.socket], unix_dir: Path
) -> None:
    require(ring, "prep_bind")
    path = unix_dir / "bound.sock"
    s = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    succeed(ring, ring.prep_bind(s, path))
    assert path.is_socket()
    assert s.getsockname() == str(path)


def test_bind_unix_abstract(ring: IoUring, sockets: list[socket.socket]) -> None:
    require(ring, "prep_bind")
    name = abstract_name()
    s = make(sockets, socket.AF_UNIX, socket.SOCK_DGRAM)
    succeed(ring, ring.prep_bind(s, name))
    assert s.getsockname() == name


def test_bind_errors(ring: IoUring, sockets: list[socket.socket], dev_null: int) -> None:
    """A port in use is -EADDRINUSE; binding twice is -EINVAL; a file is -ENOTSOCK."""
    require(ring, "prep_bind")
    taken = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    cqe = complete(ring, ring.prep_bind(s, taken.getsockname()))
    fails_with(cqe, errno.EADDRINUSE)
    with pytest.raises(OSError) as info:
        raise_for_cqe(cqe)
    assert info.value.errno == errno.EADDRINUSE
    fails_with(complete(ring, ring.prep_bind(taken, ("127.0.0.1", 0))), errno.EINVAL)
    fails_with(complete(ring, ring.prep_bind(dev_null, ("127.0.0.1", 0))), errno.ENOTSOCK)
    assert ring.in_flight == 0


def test_listen_makes_a_bound_socket_accept(ring: IoUring, sockets: list[socket.socket]) -> None:
    """After prep_bind and prep_listen (linked), clients connect and SO_ACCEPTCONN is set."""
    require(ring, "prep_bind", "prep_listen")
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    bind = ring.prep_bind(s, ("127.0.0.1", 0), sqe_flags=make_sqe_flags(io_link=True))
    listen = ring.prep_listen(s, 8)
    got = collect(ring, [bind, listen])
    assert got[bind].result == 0 and got[listen].result == 0
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    client = socket.create_connection(s.getsockname(), timeout=10)
    sockets.append(client)
    conn, peer = s.accept()
    sockets.append(conn)
    assert peer == client.getsockname()


def test_listen_default_backlog(ring: IoUring, sockets: list[socket.socket]) -> None:
    require(ring, "prep_listen")
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    assert succeed(ring, ring.prep_listen(s)).result == 0
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_listen_errors(ring: IoUring, sockets: list[socket.socket], dev_null: int) -> None:
    """An unbound AF_UNIX socket is -EINVAL, a datagram socket -EOPNOTSUPP, a file -ENOTSOCK."""
    require(ring, "prep_listen")
    unbound = make(sockets, socket.AF_UNIX, socket.SOCK_STREAM)
    fails_with(complete(ring, ring.prep_listen(unbound)), errno.EINVAL)
    udp = make(sockets, socket.AF_INET, socket.SOCK_DGRAM)
    fails_with(complete(ring, ring.prep_listen(udp)), errno.EOPNOTSUPP)
    fails_with(complete(ring, ring.prep_listen(dev_null)), errno.ENOTSOCK)


def test_listen_and_bind_refuse_bad_arguments(ring: IoUring, sockets: list[socket.socket]) -> None:
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    refused(ring, ValueError, "backlog", lambda: ring.prep_listen(s, -1))
    refused(ring, ValueError, "backlog", lambda: ring.prep_listen(s, 2**31))
    refused(ring, TypeError, "backlog", lambda: ring.prep_listen(s, "8"))  # type: ignore[arg-type]
    refused(ring, ValueError, "fd", lambda: ring.prep_listen(-1))
    refused(ring, ValueError, "fd", lambda: ring.prep_bind(-1, ("127.0.0.1", 0)))
    refused(
        ring,
        ValueError,
        "SKIP_SUCCESS",
        lambda: ring.prep_bind(s, ("127.0.0.1", 0), sqe_flags=make_sqe_flags(skip_success=True)),
    )


# --- prep_shutdown --------------------------------------------------------------------------


@pytest.fixture
def tcp_pair(
    sockets: list[socket.socket], listener4: socket.socket
) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener4.getsockname(), timeout=10)
    sockets.append(client)
    conn, _ = listener4.accept()
    conn.settimeout(10)
    sockets.append(conn)
    return client, conn


def test_shutdown_write_gives_the_peer_eof(
    ring: IoUring, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    """SHUT_WR: the peer reads EOF, and can still send back."""
    require(ring, "prep_shutdown")
    client, conn = tcp_pair
    client.sendall(b"last words")
    cqe = succeed(ring, ring.prep_shutdown(client, socket.SHUT_WR))
    assert cqe.result == 0 and cqe.buffer is None
    assert conn.recv(100) == b"last words"
    assert conn.recv(100) == b""
    conn.sendall(b"reply")
    assert client.recv(100) == b"reply"
    with pytest.raises(BrokenPipeError):
        client.send(b"more", socket.MSG_NOSIGNAL)


def test_shutdown_read_and_both(
    ring: IoUring, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    """SHUT_RD: reads see EOF at once; SHUT_RDWR: the peer sees EOF too."""
    require(ring, "prep_shutdown")
    client, conn = tcp_pair
    succeed(ring, ring.prep_shutdown(client.fileno(), socket.SHUT_RD))
    assert client.recv(100) == b""
    succeed(ring, ring.prep_shutdown(client, socket.SHUT_RDWR))
    assert conn.recv(100) == b""


def test_shutdown_errors(ring: IoUring, sockets: list[socket.socket], dev_null: int) -> None:
    """An unconnected socket is -ENOTCONN; a file is -ENOTSOCK."""
    require(ring, "prep_shutdown")
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    fails_with(complete(ring, ring.prep_shutdown(s, socket.SHUT_RDWR)), errno.ENOTCONN)
    fails_with(complete(ring, ring.prep_shutdown(dev_null, socket.SHUT_RD)), errno.ENOTSOCK)


def test_shutdown_refuses_bad_how(ring: IoUring, sockets: list[socket.socket]) -> None:
    s = make(sockets, socket.AF_INET, socket.SOCK_STREAM)
    refused(ring, ValueError, "how", lambda: ring.prep_shutdown(s, 3))
    refused(ring, ValueError, "how", lambda: ring.prep_shutdown(s, -1))
    refused(ring, ValueError, "how", lambda: ring.prep_shutdown(s, 2**40))
    refused(ring, TypeError, "how", lambda: ring.prep_shutdown(s, None))  # type: ignore[arg-type]
    refused(ring, ValueError, "fd", lambda: ring.prep_shutdown(-1, socket.SHUT_RD))


# --- prep_sendto / prep_recvfrom ------------------------------------------------------------


@pytest.fixture
def udp4(sockets: list[socket.socket]) -> tuple[socket.socket, socket.socket]:
    a = make(sockets, socket.AF_INET, socket.SOCK_DGRAM)
    b = make(sockets, socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    return a, b


def test_sendto_udp_v4(ring: IoUring, udp4: tuple[socket.socket, socket.socket]) -> None:
    """sendto delivers a datagram to the address; the receiver sees who sent it."""
    require(ring, "prep_sendto")
    a, b = udp4
    buf = bytearray(b"datagram one")
    ud = ring.prep_sendto(a, buf, b.getsockname())
    buf[:] = b"changed!"  # the data was copied when queued
    cqe = succeed(ring, ud)
    assert cqe.result == 12 and cqe.buffer is None and cqe.extra is None
    assert b.recvfrom(100) == (b"datagram one", a.getsockname())


def test_recvfrom_udp_v4(ring: IoUring, udp4: tuple[socket.socket, socket.socket]) -> None:
    """recvfrom gives exactly the datagram's bytes and the sender's (host, port)."""
    require(ring, "prep_recvfrom")
    a, b = udp4
    b.sendto(b"to a", a.getsockname())
    cqe = succeed(ring, ring.prep_recvfrom(a, 100))
    assert cqe.result == 4
    assert cqe.buffer == b"to a"
    assert cqe.extra == b.getsockname()


@needs_ipv6
def test_sendto_and_recvfrom_udp_v6(ring: IoUring, sockets: list[socket.socket]) -> None:
    require(ring, "prep_sendto", "prep_recvfrom")
    a = make(sockets, socket.AF_INET6, socket.SOCK_DGRAM)
    b = make(sockets, socket.AF_INET6, socket.SOCK_DGRAM)
    a.bind(("::1", 0))
    b.bind(("::1", 0))
    assert succeed(ring, ring.prep_sendto(a, b"six", b.getsockname())).result == 3
    assert b.recvfrom(10) == (b"six", a.getsockname())
    assert succeed(ring, ring.prep_sendto(a, b"pair", b.getsockname()[:2])).result == 4
    assert b.recv(10) == b"pair"
    b.sendto(b"back", a.getsockname())
    cqe = succeed(ring, ring.prep_recvfrom(a, 10))
    assert (cqe.buffer, cqe.extra) == (b"back", b.getsockname())
    assert isinstance(cqe.extra, tuple) and len(cqe.extra) == 4


def test_sendto_and_recvfrom_unix_abstract_datagrams(
    ring: IoUring, sockets: list[socket.socket]
) -> None:
    """AF_UNIX datagrams with abstract names: the sender's name comes back as bytes."""
    require(ring, "prep_sendto", "prep_recvfrom")
    a_name, b_name = abstract_name(), abstract_name()
    a = make(sockets, socket.AF_UNIX, socket.SOCK_DGRAM)
    b = make(sockets, socket.AF_UNIX, socket.SOCK_DGRAM)
    a.bind(a_name)
    b.bind(b_name)
    assert succeed(ring, ring.prep_sendto(a, b"unix", b_name)).result == 4
    assert b.recvfrom(10) == (b"unix", a_name)
    b.sendto(b"reply", a_name)
    cqe = succeed(ring, ring.prep_recvfrom(a, 10))
    assert (cqe.buffer, cqe.extra) == (b"reply", b_name)


def test_recvfrom_unix_path_sender(
    ring: IoUring, sockets: list[socket.socket], unix_dir: Path
) -> None:
    """A sender bound to a filesystem path shows as that str path."""
    require(ring, "prep_recvfrom")
    a = make(sockets, socket.AF_UNIX, socket.SOCK_DGRAM)
    b = make(sockets, socket.AF_UNIX, socket.SOCK_DGRAM)
    a.bind(str(unix_dir / "a.sock"))
    b.bind(str(unix_dir / "b.sock"))
    b.sendto(b"from b", str(unix_dir / "a.sock"))
    cqe = succeed(ring, ring.prep_recvfrom(a, 10))
    assert (cqe.buffer, cqe.extra) == (b"from b", str(unix_dir / "b.sock"))


def test_recvfrom_on_a_stream_has_no_address(
    ring: IoUring, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    """A connected TCP socket gives no sender address: extra is None."""
    require(ring, "prep_recvfrom")
    client, conn = tcp_pair
    conn.sendall(b"stream")
    cqe = succeed(ring, ring.prep_recvfrom(client, 100))
    assert cqe.buffer == b"stream"
    assert cqe.extra is None


def test_recvfrom_waits_and_owns_its_memory(
    ring: IoUring, udp4: tuple[socket.socket, socket.socket]
) -> None:
    """Several recvfroms queued before any data arrive, survive garbage collection and buffer
    churn, and each gets one whole datagram with its sender."""
    require(ring, "prep_recvfrom")
    a, b = udp4
    ids = [ring.prep_recvfrom(a, 64) for _ in range(8)]
    ring.submit()
    assert ring.in_flight == 8
    gc.collect()
    junk = [bytearray(os.urandom(64)) for _ in range(1000)]
    del junk
    payloads = {f"datagram {i}".encode() for i in range(8)}
    for p in sorted(payloads):
        b.sendto(p, a.getsockname())
    got = collect(ring, ids)
    assert {c.buffer for c in got.values()} == payloads
    assert all(c.extra == b.getsockname() for c in got.values())
    assert ring.in_flight == 0


def test_recvfrom_truncated_datagram(
    ring: IoUring, udp4: tuple[socket.socket, socket.socket]
) -> None:
    """With MSG_TRUNC the result is the datagram's full length; buffer holds what fitted."""
    require(ring, "prep_recvfrom")
    a, b = udp4
    b.sendto(b"0123456789", a.getsockname())
    cqe = succeed(ring, ring.prep_recvfrom(a, 4, socket.MSG_TRUNC))
    assert cqe.result == 10
    assert cqe.buffer == b"0123"
    assert cqe.extra == b.getsockname()


def test_recvfrom_zero_bytes_and_peek(
    ring: IoUring, udp4: tuple[socket.socket, socket.socket]
) -> None:
    require(ring, "prep_recvfrom")
    a, b = udp4
    b.sendto(b"peek", a.getsockname())
    cqe = succeed(ring, ring.prep_recvfrom(a, 100, socket.MSG_PEEK))
    assert (cqe.buffer, cqe.extra) == (b"peek", b.getsockname())
    assert a.recvfrom(100) == (b"peek", b.getsockname())


def test_sendto_and_recvfrom_errors(
    ring: IoUring, udp4: tuple[socket.socket, socket.socket], dev_null: int
) -> None:
    """A file is -ENOTSOCK; an IPv6 address from an IPv4 socket is -EAFNOSUPPORT; a
    non-blocking recvfrom with nothing queued is -EAGAIN."""
    require(ring, "prep_sendto", "prep_recvfrom")
    a, _ = udp4
    fails_with(complete(ring, ring.prep_sendto(dev_null, b"x", ("127.0.0.1", 9))), errno.ENOTSOCK)
    fails_with(complete(ring, ring.prep_recvfrom(dev_null, 10)), errno.ENOTSOCK)
    fails_with(complete(ring, ring.prep_sendto(a, b"x", ("::1", 9))), errno.EAFNOSUPPORT)
    fails_with(complete(ring, ring.prep_recvfrom(a, 10, socket.MSG_DONTWAIT)), errno.EAGAIN)
    assert ring.in_flight == 0


def test_sendto_and_recvfrom_refuse_bad_arguments(
    ring: IoUring, udp4: tuple[socket.socket, socket.socket]
) -> None:
    a, b = udp4
    to = b.getsockname()
    refused(ring, TypeError, "buffer", lambda: ring.prep_sendto(a, "text", to))  # type: ignore[arg-type]
    refused(ring, ValueError, "flags", lambda: ring.prep_sendto(a, b"x", to, -1))
    refused(ring, ValueError, "fd", lambda: ring.prep_sendto(-1, b"x", to))
    refused(ring, ValueError, "byte_count", lambda: ring.prep_recvfrom(a, -1))
    refused(ring, ValueError, "byte_count", lambda: ring.prep_recvfrom(a, 2**31))
    refused(ring, TypeError, "byte_count", lambda: ring.prep_recvfrom(a, 1.0))  # type: ignore[arg-type]
    refused(ring, ValueError, "flags", lambda: ring.prep_recvfrom(a, 10, 2**32))
    skip = make_sqe_flags(skip_success=True)
    refused(ring, ValueError, "SKIP_SUCCESS", lambda: ring.prep_sendto(a, b"x", to, sqe_flags=skip))
    refused(ring, ValueError, "SKIP_SUCCESS", lambda: ring.prep_recvfrom(a, 1, sqe_flags=skip))


def test_closing_the_ring_with_recvfrom_in_flight(
    udp4: tuple[socket.socket, socket.socket],
) -> None:
    """A ring closed with receives still waiting cancels them and frees their memory promptly."""
    a, _ = udp4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with make_io_ring() as ring:
            require(ring, "prep_recvfrom")
            for _ in range(16):
                ring.prep_recvfrom(a, 1024)
            ring.submit()
            assert ring.in_flight == 16


def test_probe_lists_the_network_family(ring: IoUring) -> None:
    """Every operation ``require`` knows how to call is a probed method. (That the kernel
    supports each one it is new enough for, and that each documents its syscall and Linux
    version, is checked for every operation against the table, in test_operations.py.)"""
    probe = ring.probe()
    for method in _PROBE_CALLS:
        assert method in probe
        assert callable(getattr(ring, method))
