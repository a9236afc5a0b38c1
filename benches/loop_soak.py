"""Soak run of the event loop as a server: connections opened and closed by the million, then
Ctrl-C under load, watching the server's memory and descriptors.

    python benches/loop_soak.py --connections 1000000      # the issue's million (minutes)
    python benches/loop_soak.py --connections 20000        # a short one

The server is a child process running an echo ``asyncio.Protocol`` on
``century_ring.asyncio``. The client (this process, on the same loop) keeps ``--concurrency``
connections going: each connects, sends a message, reads its echo, and goes, one in four by
reset (``SO_LINGER`` 0) instead of a clean close, as clients that vanish do. Every tenth of
the run the server reports its resident set size (VmRSS), its open descriptors
(``/proc/self/fd``) and its live transports, once every connection of that tenth is closed on
both sides.

Then the load goes on and the server gets SIGINT: it must leave ``run()`` with
KeyboardInterrupt within 5 seconds, closing its listener and every connection.

The verdict (exit status 1 when it fails): after the first tenth (warm-up), the highest RSS
may exceed the first sample by at most 16 MiB + 10%, descriptors by at most 8, and no
transport may outlive its connection; the Ctrl-C must end the server as described. One JSON
line gives the samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

MESSAGE = b"x" * 128


def resident_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def serve() -> None:
    """The server: prints ``PORT n``, then answers each ``stats`` line on stdin."""
    import century_ring.asyncio

    transports: set[asyncio.BaseTransport] = set()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            transports.add(transport)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

        def connection_lost(self, exc: Exception | None) -> None:
            transports.discard(self.transport)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=1024)
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            fds = len(os.listdir("/proc/self/fd"))
            stats = {"rss_kib": resident_kib(), "fds": fds, "transports": len(transports)}
            print(json.dumps(stats), flush=True)

    try:
        century_ring.asyncio.run(main())
    except KeyboardInterrupt:
        print(json.dumps({"interrupted": True, "fds": len(os.listdir("/proc/self/fd"))}))
        sys.exit(130)


async def one_connection(port: int, reset: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(MESSAGE)
    await reader.readexactly(len(MESSAGE))
    if reset:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    await writer.wait_closed()


async def load(port: int, count: int, concurrency: int) -> None:
    """``count`` connections, ``concurrency`` at a time."""
    started = 0

    async def worker() -> None:
        nonlocal started
        while started < count:
            started += 1
            await one_connection(port, reset=started % 4 == 0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def client(args: argparse.Namespace) -> int:
    import century_ring.asyncio

    server = subprocess.Popen(
        [sys.executable, __file__, "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    port = int(server.stdout.readline().split()[1])

    def stats() -> dict[str, Any]:
        assert server.stdin is not None and server.stdout is not None
        # The server's closes lag the client's by a pass or two: ask until they are in.
        for _ in range(50):
            server.stdin.write("stats\n")
            server.stdin.flush()
            sample: dict[str, Any] = json.loads(server.stdout.readline())
            if sample["transports"] == 0:
                return sample
            time.sleep(0.1)
        return sample

    tenth = max(1, args.connections // 10)
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    for part in range(10):
        century_ring.asyncio.run(load(port, tenth, args.concurrency))
        sample = stats()
        sample["connections"] = (part + 1) * tenth
        sample["seconds"] = round(time.monotonic() - started, 1)
        samples.append(sample)
        print(json.dumps(sample), file=sys.stderr, flush=True)

    # Ctrl-C under load: the server is interrupted while connections keep coming.
    async def interrupt_under_load() -> float:
        task = asyncio.ensure_future(load(port, 10**9, args.concurrency))
        await asyncio.sleep(0.5)
        sent = time.monotonic()
        server.send_signal(signal.SIGINT)
        await asyncio.get_running_loop().run_in_executor(None, server.wait, 10)
        waited = time.monotonic() - sent
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        return waited

    waited = century_ring.asyncio.run(interrupt_under_load())
    tail = json.loads(server.stdout.read().strip().splitlines()[-1])

    first, rest = samples[0], samples[1:]
    rss_bound = first["rss_kib"] + 16 * 1024 + first["rss_kib"] // 10
    failures = []
    if max(s["rss_kib"] for s in rest) > rss_bound:
        failures.append(f"RSS grew past {rss_bound} KiB")
    if max(s["fds"] for s in rest) > first["fds"] + 8:
        failures.append("descriptors grew")
    if any(s["transports"] for s in samples):
        failures.append("transports outlived their connections")
    if server.returncode != 130 or not tail.get("interrupted") or waited > 5:
        failures.append(f"Ctrl-C: exit {server.returncode} after {waited:.2f} s, {tail}")
    result = {
        "connections": 10 * tenth,
        "concurrency": args.concurrency,
        "seconds": samples[-1]["seconds"],
        "samples": samples,
        "ctrl_c_seconds": round(waited, 3),
        "ctrl_c_exit": server.returncode,
        "failures": failures,
    }
    print(json.dumps(result))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", choices=["serve"], help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if args.role == "serve":
        serve()
        return 0
    return client(args)


if __name__ == "__main__":
    sys.exit(main())
