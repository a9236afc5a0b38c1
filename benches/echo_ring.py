"""A small echo server whose every receive and send goes through a Century Ring.

It is the ``century_ring`` contender of the ``echo`` benchmark (``benches/echo.py`` runs it),
and a compact example of an event loop on the low-level API: connections are accepted with the
``socket`` module up front, then each connection always has one ``prep_recv`` in flight; when
one completes with data, the loop queues a ``prep_send`` of exactly those bytes and the next
``prep_recv`` on the same connection, and one ``submit_and_wait(1)`` per loop turn submits
everything queued and waits for at least one completion. ``user_data`` tells which operation
completed.

Run on its own::

    python benches/echo_ring.py --port 9000 --connections 4
"""

from __future__ import annotations

import argparse
import socket

from century_ring import make_io_ring


def serve(conns: list[socket.socket], message_size: int = 64) -> int:
    """Echo on every connection until all of them are closed by the peer.

    Returns the number of bytes echoed. Connections are closed on the way out.
    """
    entries = max(8, 1 << (2 * len(conns)).bit_length())
    echoed = 0
    with make_io_ring(entries) as ring:
        # Bound methods and dict methods looked up once: the loop below runs per message.
        prep_recv = ring.prep_recv
        prep_send = ring.prep_send
        submit_and_wait = ring.submit_and_wait
        reap = ring.get_completion_entries
        # user_data -> fd of a receive in flight / (fd, bytes) of a send in flight
        recvs: dict[int, int] = {}
        sends: dict[int, tuple[int, bytes]] = {}
        pop_recv = recvs.pop
        pop_send = sends.pop
        for conn in conns:
            fd = conn.fileno()
            recvs[prep_recv(fd, message_size)] = fd
        open_fds = len(conns)
        while open_fds or recvs or sends:
            # One system call per loop turn: it submits every send and receive queued in the
            # previous turn and waits for the next completion.
            submit_and_wait(1)
            for cqe in reap():
                user_data = cqe.user_data
                fd_or_none = pop_recv(user_data, None)
                if fd_or_none is not None:
                    data = cqe.buffer
                    if data:  # bytes from a successful receive
                        sends[prep_send(fd_or_none, data)] = (fd_or_none, data)
                        recvs[prep_recv(fd_or_none, message_size)] = fd_or_none
                    else:  # 0: the peer closed; < 0: an error on this connection
                        open_fds -= 1
                    continue
                fd, data = pop_send(user_data)
                result = cqe.result
                if result == len(data):
                    echoed += result
                elif result >= 0:  # a short send: send the rest
                    echoed += result
                    rest = data[result:]
                    sends[prep_send(fd, rest)] = (fd, rest)
                # < 0: the peer went away; its receive reports the close
    for conn in conns:
        conn.close()
    return echoed


def main() -> None:
    parser = argparse.ArgumentParser(description="Echo server on a Century Ring.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--connections", type=int, default=4, help="accepted before serving")
    parser.add_argument("--size", type=int, default=64, help="receive size in bytes")
    args = parser.parse_args()
    with socket.create_server(("127.0.0.1", args.port)) as listener:
        print(f"listening on 127.0.0.1:{args.port}; waiting for {args.connections} connections")
        conns = [listener.accept()[0] for _ in range(args.connections)]
    for conn in conns:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"echoed {serve(conns, args.size)} bytes")


if __name__ == "__main__":
    main()
