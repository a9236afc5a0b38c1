"""A small echo server whose every receive and send goes through a Century Ring.

It is the ``century_ring`` contender of the ``echo`` benchmark (``benches/echo.py`` runs it),
and a compact example of an event loop on the low-level API. Connections are accepted with the
``socket`` module up front. Then:

* each connection gets one *multishot* receive on a provided buffer ring
  (``prep_recv(fd, 0, buffer_group=..., multishot=True)``) for its whole life: the kernel picks a
  buffer from the ring when data arrives and posts a completion, and the receive stays armed;
* a completion with data queues a ``prep_send`` straight from the buffer the kernel filled
  (``copy=False``: no copy, no allocation), and the loop keeps that
  :class:`~century_ring.ProvidedBuffer` until the send completes, then releases it back to the
  ring;
* one ``submit_and_wait(1)`` per loop turn submits every send queued in the previous turn and
  waits for the next completion; ``user_data`` tells which operation completed.

So a message costs one submission (its send) and two completions, where a receive re-armed per
message costs two submissions, and a :class:`bytes` object per receive.

Run on its own::

    python benches/echo_ring.py --port 9000 --connections 4
"""

from __future__ import annotations

import argparse
import errno
import socket

from century_ring import ProvidedBuffer, make_io_ring

#: The provided buffer group the receives take from.
GROUP = 1
#: Size of each provided buffer: a receive takes at most this many bytes.
BUFFER_SIZE = 4096


def serve(conns: list[socket.socket], message_size: int = 64) -> int:
    """Echo on every connection until all of them are closed by the peer.

    Returns the number of bytes echoed. Connections are closed on the way out.
    ``message_size`` is only a hint for the buffer size: a receive takes whatever has arrived,
    up to one buffer.
    """
    entries = max(8, 1 << (2 * len(conns)).bit_length())
    # Each connection holds at most one buffer between its receive and the end of the echo's
    # send (the protocol keeps one message in flight); twice that leaves room for a burst. Were
    # the ring to run dry anyway, the receive stops with -ENOBUFS and is armed again below.
    buffers = max(8, 1 << (2 * len(conns)).bit_length())
    echoed = 0
    with (
        make_io_ring(entries) as ring,
        ring.register_buffer_ring(GROUP, buffers, max(BUFFER_SIZE, message_size)) as group,
    ):
        # Bound methods and dict methods looked up once: the loop below runs per message.
        prep_recv = ring.prep_recv
        prep_send = ring.prep_send
        submit_and_wait = ring.submit_and_wait
        reap = ring.get_completion_entries
        # user_data -> fd of a multishot receive (armed for the connection's life)
        recvs: dict[int, int] = {}
        # user_data -> (fd, the buffer being sent from) of a send in flight
        sends: dict[int, tuple[int, ProvidedBuffer]] = {}
        receiver_of = recvs.get
        pop_send = sends.pop

        def arm(fd: int) -> None:
            recvs[prep_recv(fd, 0, buffer_group=group, multishot=True)] = fd

        for conn in conns:
            arm(conn.fileno())
        while recvs or sends:
            # One system call per loop turn: it submits every send queued in the previous turn
            # and waits for the next completion.
            submit_and_wait(1)
            for cqe in reap():
                user_data = cqe.user_data
                fd_or_none = receiver_of(user_data)
                if fd_or_none is not None:
                    received = cqe.provided_buffer
                    if received is not None:  # data: send it back from the same buffer
                        sends[prep_send(fd_or_none, received.memory, copy=False)] = (
                            fd_or_none,
                            received,
                        )
                    if not cqe.more:  # the receive stopped
                        del recvs[user_data]
                        result = cqe.result
                        if result > 0 or result == -errno.ENOBUFS:
                            arm(fd_or_none)  # the kernel stopped it early: arm it again
                        # else 0: the peer closed; < 0: an error on this connection
                    continue
                fd, sent = pop_send(user_data)
                result = cqe.result
                if result == len(sent):
                    echoed += result
                    sent.release()  # the buffer goes back to the ring
                elif result >= 0:  # a short send: send the rest, keep the buffer
                    echoed += result
                    rest = sent.memory[result:]
                    sends[prep_send(fd, rest, copy=False)] = (fd, sent)
                    # (a view derived from ``memory`` is not released with the buffer, so it
                    # is only used while ``sent`` is held)
                else:  # < 0: the peer went away; its receive reports the close
                    sent.release()
    for conn in conns:
        conn.close()
    return echoed


def main() -> None:
    parser = argparse.ArgumentParser(description="Echo server on a Century Ring.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--connections", type=int, default=4, help="accepted before serving")
    parser.add_argument("--size", type=int, default=64, help="message size hint in bytes")
    args = parser.parse_args()
    with socket.create_server(("127.0.0.1", args.port)) as listener:
        print(f"listening on 127.0.0.1:{args.port}; waiting for {args.connections} connections")
        conns = [listener.accept()[0] for _ in range(args.connections)]
    for conn in conns:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"echoed {serve(conns, args.size)} bytes")


if __name__ == "__main__":
    main()
