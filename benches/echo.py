"""The ``echo`` workload: one client driver, three servers, all on 127.0.0.1.

``benches/run.py`` starts a server and then a client, each in its own process::

    python benches/echo.py server --impl century_ring|selectors|asyncio --connections 64
    benches/native/target/release/century-ring-native-bench echo-client --port PORT
        (--connections 64 --size 64 --seconds 5)

The client is the native reference's ``echo-client`` when cargo could build it; this file's own
``client`` (below, the same protocol on a ``selectors`` loop) is the fallback, and saturates its
core long before the faster servers do::

    python benches/echo.py client --port PORT --connections 64 --size 64 --seconds 5

The server prints ``PORT n`` once it listens, serves until every connection is closed, then
prints one JSON line with the bytes it echoed and the CPU time it spent from the moment all
connections were up. The client opens the connections, then keeps exactly one message of
``--size`` bytes in flight on each: it sends a message and sends the next one only when the
whole echo has come back. After ``--seconds`` it closes every connection and prints one JSON
line with the round trips completed. The client is the same for every server, so only the
server changes between contenders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import selectors
import socket
import sys
import time
from typing import Any


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# --- servers ------------------------------------------------------------------------------------


def accept_all(listener: socket.socket, count: int) -> list[socket.socket]:
    conns = []
    for _ in range(count):
        conn, _addr = listener.accept()
        nodelay(conn)
        conns.append(conn)
    return conns


def serve_selectors(conns: list[socket.socket], size: int) -> int:
    """The echo protocol on a ``selectors`` (epoll) loop; returns bytes echoed."""
    sel = selectors.DefaultSelector()
    for conn in conns:
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ, conn)
    echoed = 0
    open_conns = len(conns)
    select = sel.select
    while open_conns:
        for key, _events in select():
            conn = key.data
            try:
                data = conn.recv(size)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                open_conns -= 1
                continue
            try:
                conn.sendall(data)  # 64 bytes to a reader that is waiting for them
            except OSError:
                continue
            echoed += len(data)
    sel.close()
    return echoed


def serve_asyncio(listener: socket.socket, count: int, size: int) -> tuple[int, float]:
    """The echo protocol with ``asyncio`` streams; returns (bytes echoed, CPU seconds)."""
    echoed = 0
    cpu0 = 0.0

    async def run() -> None:
        nonlocal cpu0
        connected = 0
        finished = 0
        all_up = asyncio.Event()
        all_done = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connected, finished, echoed
            nodelay(writer.get_extra_info("socket"))
            connected += 1
            if connected == count:
                all_up.set()
            try:
                while True:
                    data = await reader.read(size)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
                    echoed += len(data)
            except OSError:
                pass
            finally:
                writer.close()
                finished += 1
                if finished == count:
                    all_done.set()

        server = await asyncio.start_server(handle, sock=listener)
        async with server:
            await all_up.wait()
            cpu0 = cpu_seconds()
            await all_done.wait()

    asyncio.run(run())
    return echoed, cpu_seconds() - cpu0


def server_main(args: argparse.Namespace) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=max(128, args.connections))
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    if args.impl == "asyncio":
        echoed, cpu = serve_asyncio(listener, args.connections, args.size)
    else:
        conns = accept_all(listener, args.connections)
        listener.close()
        cpu0 = cpu_seconds()
        if args.impl == "selectors":
            echoed = serve_selectors(conns, args.size)
        else:
            from echo_ring import serve

            echoed = serve(conns, args.size)
        cpu = cpu_seconds() - cpu0
    messages = echoed // args.size
    result: dict[str, Any] = {
        "server": args.impl,
        "echoed_bytes": echoed,
        "messages": messages,
        "cpu_seconds": round(cpu, 6),
        "cpu_us_per_msg": round(cpu * 1e6 / max(messages, 1), 4),
    }
    print(json.dumps(result), flush=True)


# --- the client driver --------------------------------------------------------------------------


def client_main(args: argparse.Namespace) -> None:
    size = args.size
    message = b"m" * size
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(args.connections):
        conn = socket.create_connection(("127.0.0.1", args.port))
        nodelay(conn)
        conn.setblocking(False)
        conns.append(conn)
    # state per connection: [socket, bytes of the current echo received so far]
    for conn in conns:
        sel.register(conn, selectors.EVENT_READ, [conn, 0])
    round_trips = 0
    cpu0 = cpu_seconds()
    start = time.perf_counter()
    deadline = start + args.seconds
    for conn in conns:
        conn.sendall(message)
    select = sel.select
    clock = time.perf_counter
    while clock() < deadline:
        for key, _events in select(0.5):
            state = key.data
            conn = state[0]
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise SystemExit("the server closed a connection early")
            got = state[1] + len(data)
            if got >= size:
                got -= size
                round_trips += 1
                conn.sendall(message)
            state[1] = got
    elapsed = clock() - start
    cpu = cpu_seconds() - cpu0
    sel.close()
    for conn in conns:
        conn.close()
    result = {
        "round_trips": round_trips,
        "seconds": round(elapsed, 6),
        "msgs_per_sec": round(round_trips / elapsed, 1),
        "client_cpu_seconds": round(cpu, 6),
    }
    print(json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Echo benchmark: client driver and servers.")
    sub = parser.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server")
    server.add_argument("--impl", choices=["century_ring", "selectors", "asyncio"], required=True)
    server.add_argument("--connections", type=int, default=64)
    server.add_argument("--size", type=int, default=64)
    client = sub.add_parser("client")
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--connections", type=int, default=64)
    client.add_argument("--size", type=int, default=64)
    client.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.role == "server":
        server_main(args)
    else:
        client_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
