"""A TCP echo server on one io_uring: every client is served by the same ring, with one
multishot accept taking all connections, and a recv then a send per message.

    python examples/echo_server.py --port 8007
    python examples/echo_server.py --port 0 --max-connections 20 --duration 30

It prints ``listening on HOST:PORT`` once it accepts connections (with ``--port 0`` the port
is the one the kernel picked), and a summary line when it stops: after ``--max-connections``
clients have come and gone, after ``--duration`` seconds, or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from dataclasses import dataclass, field

from century_ring import CompletionEvent, IoUring, make_io_ring, make_sqe_flags, raise_for_cqe

#: How much one recv asks for.
RECV_SIZE = 64 * 1024


@dataclass
class Stats:
    accepted: int = 0
    served: int = 0
    bytes_echoed: int = 0
    open_fds: set[int] = field(default_factory=set)


def start_listening(ring: IoUring, listener: socket.socket, host: str, port: int) -> None:
    """bind + listen through the ring (linked, so listen runs only if bind worked), or through
    the socket module on kernels before 6.11."""
    probe = ring.probe()
    if not (probe["prep_bind"] and probe["prep_listen"]):
        listener.bind((host, port))
        listener.listen(128)
        return
    bind = ring.prep_bind(listener, (host, port), sqe_flags=make_sqe_flags(io_link=True))
    listen = ring.prep_listen(listener, 128)
    done: dict[int, CompletionEvent] = {}
    while len(done) < 2:
        ring.submit_and_wait(1)
        done.update((c.user_data, c) for c in ring.get_completion_entries())
    raise_for_cqe(done[bind])
    raise_for_cqe(done[listen])


def serve(host: str, port: int, max_connections: int | None, duration: float | None) -> Stats:
    stats = Stats()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = None if duration is None else time.monotonic() + duration
    with listener, make_io_ring(entries=512) as ring:
        start_listening(ring, listener, host, port)
        bound_host, bound_port = listener.getsockname()
        print(f"listening on {bound_host}:{bound_port}", flush=True)

        # What each in-flight operation is: ("recv", fd) / ("send", fd, data) / ("close", fd).
        pending: dict[int, tuple[str, int, bytes]] = {}

        def recv(fd: int) -> None:
            pending[ring.prep_recv(fd, RECV_SIZE)] = ("recv", fd, b"")

        def send(fd: int, data: bytes) -> None:
            pending[ring.prep_send(fd, data, flags=socket.MSG_NOSIGNAL)] = ("send", fd, data)

        def close(fd: int) -> None:
            pending[ring.prep_close(fd)] = ("close", fd, b"")

        accept = ring.prep_accept(listener, multishot=True)
        while max_connections is None or stats.served < max_connections:
            timeout = 1.0
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            ring.submit_and_wait_with_timeout(timeout)
            for cqe in ring.get_completion_entries():
                if cqe.user_data == accept:
                    if cqe.result >= 0:
                        stats.accepted += 1
                        stats.open_fds.add(cqe.result)
                        recv(cqe.result)
                    else:
                        print(f"accept failed: {os.strerror(-cqe.result)}", file=sys.stderr)
                    if not cqe.more:  # the kernel stopped the multishot accept: re-arm it
                        accept = ring.prep_accept(listener, multishot=True)
                    continue
                kind, fd, data = pending.pop(cqe.user_data)
                if kind == "recv":
                    if cqe.result > 0 and cqe.buffer is not None:
                        send(fd, cqe.buffer)
                    else:  # 0: the client is done; < 0: its connection failed
                        close(fd)
                elif kind == "send":
                    if cqe.result < 0:
                        close(fd)
                    else:
                        stats.bytes_echoed += cqe.result
                        if cqe.result < len(data):
                            send(fd, data[cqe.result :])
                        else:
                            recv(fd)
                else:
                    stats.open_fds.discard(fd)
                    stats.served += 1
    # Leaving the `with` closed the ring, which cancelled what was still in flight (the accept,
    # receives of clients still connected); their connections are ours to close.
    for fd in stats.open_fds:
        os.close(fd)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="numeric IPv4 address to bind")
    parser.add_argument("--port", type=int, default=8007, help="port to bind; 0 picks one")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="stop after serving this many connections to the end",
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    try:
        stats = serve(args.host, args.port, args.max_connections, args.duration)
    except KeyboardInterrupt:
        return 130
    print(
        f"served {stats.served} connections ({stats.accepted} accepted), "
        f"echoed {stats.bytes_echoed} bytes",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
