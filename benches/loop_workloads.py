"""The event-loop benchmarks (issue 14): servers and micro-benchmarks, one process per measurement.

``benches/run.py`` starts this script once per measurement, on one of four event loops::

    python benches/loop_workloads.py server --kind KIND --loop LOOP [--connections N] [--size B]
    python benches/loop_workloads.py callbacks --bench BENCH --loop LOOP [--seconds S]

``--loop``: ``century_ring`` (``century_ring.asyncio.new_event_loop(strict=True)``), ``uvloop``
(``uvloop.new_event_loop()``), ``asyncio`` (the standard ``asyncio.SelectorEventLoop``) or
``rloop`` (``rloop.new_event_loop()``). The same code runs on every loop: only the loop changes.

Servers (``server --kind``) listen on 127.0.0.1, print ``PORT n`` once listening, and serve
until ``--connections`` connections have come and all of them have been closed by the peer;
then they print one JSON line with what they did and the CPU time (``getrusage``, user +
system) spent from the moment the last connection was up to the moment the last one closed,
as ``benches/echo.py server`` does, so ``run.py`` runs them the same way. The load comes from
outside: the native reference's ``echo-client`` for the echo servers, ``wrk`` for HTTP. The end
of standard input tells a server that the load is over: if the loop still has not reported
every close a second later (rloop loses some of wrk's), the window ends where the load ended
and ``unclosed`` counts the connections it missed (by hand: press Ctrl-D after the client).

``protocol``   echo on ``asyncio.Protocol``: ``data_received`` -> ``transport.write(data)``.
``streams``    echo on ``asyncio.start_server``: each connection loops ``readexactly(size)``,
               ``write``, ``drain``.
``sock``       echo on the loop's socket coroutines: ``sock_accept`` for each connection, then
               per connection ``sock_recv_into`` a ``bytearray(size)`` and ``sock_sendall``
               what came.
``httptools``  HTTP/1.1 keep-alive: ``asyncio.Protocol`` + ``httptools.HttpRequestParser``,
               a fixed 13-byte response to every request.
``uvicorn``    the same response from a tiny ASGI app served by ``uvicorn`` (``http=
               "httptools"``, ``loop="none"``: ``server.serve()`` runs on this script's loop).

Echo servers report ``messages`` (bytes echoed // ``--size``), HTTP servers the requests
answered; ``cpu_us_per_msg`` is the CPU time divided by them.

Micro-benchmarks (``callbacks --bench``), operations per second for ``--seconds``:

``call_soon``   batches of 1000 ``loop.call_soon(cb)``; the last callback of a batch to run
                resolves a future the driving task awaits, then the next batch is scheduled.
``call_later``  the same with ``loop.call_later(0, cb)``.
``sleep0``      one task looping ``await asyncio.sleep(0)``.
``tasks``       batches of 1000 ``loop.create_task(noop())`` (``async def noop(): pass``), each
                task awaited once done: creation and completion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from workloads import Window, cpu_seconds, outcome

LOOPS = ("century_ring", "uvloop", "asyncio", "rloop")
KINDS = ("protocol", "streams", "sock", "httptools", "uvicorn")
BENCHES = ("call_soon", "call_later", "sleep0", "tasks")
#: Callbacks or tasks per batch in the micro-benchmarks.
BATCH = 1000
BODY = b"Hello, world!"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the named kind (the contender)."""
    if name == "century_ring":
        import century_ring.asyncio

        return century_ring.asyncio.new_event_loop(strict=True)
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "rloop":
        import rloop

        loop: asyncio.AbstractEventLoop = rloop.new_event_loop()
        return loop
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    raise ValueError(f"unknown loop {name!r}")


def run_on(name: str, main: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """Run ``main()`` to completion on a new loop of the named kind, then close the loop."""
    loop = new_loop(name)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def nodelay(sock: Any) -> None:
    """TCP_NODELAY, as asyncio's and uvloop's TCP transports set it themselves (a loop whose
    transports do not hand out their socket is left as it is)."""
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass


class Tally:
    """Connections come and gone, and the CPU window between the moment ``connections`` were
    up and the moment the last one closed; ``done`` is set then. A client that opens a
    connection again (wrk does after an error) only adds one more to wait for."""

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.up = 0
        self.closed = 0
        self.count = 0  # bytes echoed, or requests answered
        self.cpu0 = 0.0
        self.cpu = 0.0
        #: connections whose close the loop never reported (see watch_stdin)
        self.unclosed = 0
        self.done = asyncio.get_running_loop().create_future()

    def connected(self) -> None:
        self.up += 1
        if self.up == self.connections:
            self.cpu0 = cpu_seconds()

    def lost(self) -> None:
        self.closed += 1
        if self.up >= self.connections and self.closed == self.up:
            self.finish(cpu_seconds())

    def finish(self, cpu: float) -> None:
        """Close the window at CPU time ``cpu``, once."""
        if not self.done.done():
            self.cpu = cpu - self.cpu0
            self.unclosed = self.up - self.closed
            self.done.set_result(None)


#: How long after the end of the load a connection's close may still be on its way.
GRACE_SECONDS = 1.0


def watch_stdin(loop: asyncio.AbstractEventLoop, tally: Tally) -> None:
    """A thread's loop: the end of standard input (``run.py`` closes it when the load generator
    has exited) means the load is over. Should the loop still wait for connection closes
    ``GRACE_SECONDS`` later (a loop that drops some: rloop with wrk's connections), the window
    closes at the CPU time of the end of the load, and ``unclosed`` says how many were missed."""
    sys.stdin.readline()
    cpu = cpu_seconds()
    time.sleep(GRACE_SECONDS)
    try:
        loop.call_soon_threadsafe(tally.finish, cpu)
    except RuntimeError:
        pass  # the loop is closed: every connection was closed in time


# --- echo servers -------------------------------------------------------------------------------


class Counted(asyncio.Protocol):
    """A server connection that tells ``tally`` when it starts and ends."""

    # Any: uvloop's and rloop's transports are not asyncio.Transport subclasses.
    transport: Any

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        nodelay(transport.get_extra_info("socket"))
        self.tally.connected()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.lost()


async def serve_protocol(listener: socket.socket, tally: Tally, size: int) -> None:
    loop = asyncio.get_running_loop()

    class Echo(Counted):
        def data_received(self, data: bytes) -> None:
            self.transport.write(data)
            tally.count += len(data)

    server = await loop.create_server(lambda: Echo(tally), sock=listener)
    await tally.done
    server.close()


async def serve_streams(listener: socket.socket, tally: Tally, size: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay(writer.get_extra_info("socket"))
        tally.connected()
        try:
            while True:
                data = await reader.readexactly(size)
                writer.write(data)
                await writer.drain()
                tally.count += size
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()
            tally.lost()

    server = await asyncio.start_server(handle, sock=listener)
    await tally.done
    server.close()


async def serve_sock(listener: socket.socket, tally: Tally, size: int) -> None:
    loop = asyncio.get_running_loop()
    listener.setblocking(False)
    conns = []
    for _ in range(tally.connections):
        conn, _addr = await loop.sock_accept(listener)
        conn.setblocking(False)
        nodelay(conn)
        conns.append(conn)
        tally.connected()

    async def echo(conn: socket.socket) -> None:
        buffer = bytearray(size)
        view = memoryview(buffer)
        try:
            while True:
                n = await loop.sock_recv_into(conn, buffer)
                if not n:
                    break
                await loop.sock_sendall(conn, view[:n])
                tally.count += n
        except OSError:
            pass
        finally:
            conn.close()
            tally.lost()

    tasks = [loop.create_task(echo(conn)) for conn in conns]
    await tally.done
    for task in tasks:
        task.cancel()  # none is left unless the loop missed a close
    await asyncio.gather(*tasks, return_exceptions=True)


# --- HTTP servers -------------------------------------------------------------------------------


async def serve_httptools(listener: socket.socket, tally: Tally, size: int) -> None:
    import httptools

    loop = asyncio.get_running_loop()

    class Http(Counted):
        def connection_made(self, transport: Any) -> None:
            self.parser = httptools.HttpRequestParser(self)
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_message_complete(self) -> None:
            self.transport.write(RESPONSE)
            tally.count += 1
            if not self.parser.should_keep_alive():
                self.transport.close()

    server = await loop.create_server(lambda: Http(tally), sock=listener)
    await tally.done
    server.close()


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest ASGI app that answers: the same response as the httptools server."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


async def serve_uvicorn(listener: socket.socket, tally: Tally, size: int) -> None:
    """uvicorn on the running loop. It keeps its connections in ``server_state.connections``;
    a watcher polls it every millisecond (on every loop alike) to open and close the CPU
    window, and counts the requests uvicorn answered in it."""
    import uvicorn

    config = uvicorn.Config(
        asgi_app,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=max(128, tally.connections),
    )
    server = uvicorn.Server(config)
    state = server.server_state

    async def watch() -> None:
        while len(state.connections) < tally.connections and not tally.done.done():
            await asyncio.sleep(0.001)
        tally.up = len(state.connections)
        tally.cpu0 = cpu_seconds()
        requests0 = state.total_requests
        while state.connections and not tally.done.done():
            await asyncio.sleep(0.001)
        tally.closed = tally.up - len(state.connections)
        tally.finish(cpu_seconds())
        tally.count = state.total_requests - requests0
        server.should_exit = True
        server.force_exit = bool(state.connections)  # do not wait for closes never reported

    watcher = asyncio.get_running_loop().create_task(watch())
    await server.serve(sockets=[listener])
    await watcher


SERVERS = {
    "protocol": serve_protocol,
    "streams": serve_streams,
    "sock": serve_sock,
    "httptools": serve_httptools,
    "uvicorn": serve_uvicorn,
}


def server_main(args: argparse.Namespace) -> None:
    # IPPROTO_TCP, not socket.create_server's 0: asyncio's transports set TCP_NODELAY only on
    # sockets whose proto says TCP, and the accepted sockets inherit the listener's.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(max(128, args.connections))
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    serve = SERVERS[args.kind]

    async def main() -> dict[str, Any]:
        tally = Tally(args.connections)
        loop = asyncio.get_running_loop()
        threading.Thread(target=watch_stdin, args=(loop, tally), daemon=True).start()
        await serve(listener, tally, args.size)
        http = args.kind in ("httptools", "uvicorn")
        messages = tally.count if http else tally.count // args.size
        return {
            "server": args.kind,
            "loop": args.loop,
            "connections_seen": tally.up,
            "unclosed": tally.unclosed,
            **({"requests": tally.count} if http else {"echoed_bytes": tally.count}),
            "messages": messages,
            "cpu_seconds": round(tally.cpu, 6),
            "cpu_us_per_msg": round(tally.cpu * 1e6 / max(messages, 1), 4),
        }

    result = run_on(args.loop, main)
    print(json.dumps(result), flush=True)


# --- micro-benchmarks ---------------------------------------------------------------------------


async def bench_callbacks(later: bool, seconds: float) -> tuple[int, Window]:
    loop = asyncio.get_running_loop()
    ran = 0
    target = 0
    batch_done: asyncio.Future[None] = loop.create_future()

    def cb() -> None:
        nonlocal ran
        ran += 1
        if ran == target:
            batch_done.set_result(None)

    call_soon = loop.call_soon
    call_later = loop.call_later
    clock = time.perf_counter
    window = Window()
    deadline = window.wall0 + seconds
    while clock() < deadline:
        batch_done = loop.create_future()
        target = ran + BATCH
        if later:
            for _ in range(BATCH):
                call_later(0, cb)
        else:
            for _ in range(BATCH):
                call_soon(cb)
        await batch_done
    window.stop()
    return ran, window


async def bench_sleep0(seconds: float) -> tuple[int, Window]:
    sleep = asyncio.sleep
    clock = time.perf_counter
    done = 0
    window = Window()
    deadline = window.wall0 + seconds
    while clock() < deadline:
        for _ in range(BATCH):
            await sleep(0)
        done += BATCH
    window.stop()
    return done, window


async def noop() -> None:
    pass


async def bench_tasks(seconds: float) -> tuple[int, Window]:
    loop = asyncio.get_running_loop()
    create_task = loop.create_task
    clock = time.perf_counter
    done = 0
    window = Window()
    deadline = window.wall0 + seconds
    while clock() < deadline:
        tasks = [create_task(noop()) for _ in range(BATCH)]
        for task in tasks:
            await task
        done += BATCH
    window.stop()
    return done, window


def callbacks_main(args: argparse.Namespace) -> None:
    async def main() -> dict[str, Any]:
        if args.bench in ("call_soon", "call_later"):
            ops, window = await bench_callbacks(args.bench == "call_later", args.seconds)
        elif args.bench == "sleep0":
            ops, window = await bench_sleep0(args.seconds)
        else:
            ops, window = await bench_tasks(args.seconds)
        return outcome(ops, window, contender=args.loop, workload="callbacks", bench=args.bench)

    print(json.dumps(run_on(args.loop, main)), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Event-loop benchmarks (see the docstring).")
    sub = parser.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server")
    server.add_argument("--kind", choices=KINDS, required=True)
    server.add_argument("--loop", choices=LOOPS, required=True)
    server.add_argument("--connections", type=int, default=64)
    server.add_argument("--size", type=int, default=1024)
    callbacks = sub.add_parser("callbacks")
    callbacks.add_argument("--bench", choices=BENCHES, required=True)
    callbacks.add_argument("--loop", choices=LOOPS, required=True)
    callbacks.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.role == "server":
        server_main(args)
    else:
        callbacks_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
