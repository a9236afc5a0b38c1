"""Real programs on century_ring.asyncio's loop: an aiohttp server and client, uvicorn serving
an ASGI app, anyio's asyncio backend (streams, TLS, task groups, threads). Each is run as its
users run it, with only the loop changed, and checked by what it serves."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import century_ring.asyncio
import pytest
from century_ring.asyncio import EventLoop

aiohttp = pytest.importorskip("aiohttp")
web = pytest.importorskip("aiohttp.web")


def test_an_aiohttp_server_and_client_exchange_requests() -> None:
    async def hello(request: Any) -> Any:
        body = await request.read()
        return web.Response(body=b"echo:" + body, headers={"X-Loop": type(request._loop).__name__})

    async def main() -> None:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_post("/echo", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                for size in (0, 10, 100_000, 3_000_000):
                    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
                    async with session.post(f"http://127.0.0.1:{port}/echo", data=payload) as r:
                        assert r.status == 200
                        assert r.headers["X-Loop"] == "EventLoop"
                        assert await r.read() == b"echo:" + payload

                # Many requests at once on a pool of keep-alive connections.
                async def one(i: int) -> bytes:
                    url = f"http://127.0.0.1:{port}/echo"
                    async with session.post(url, data=str(i).encode()) as r:
                        return await r.read()

                answers = await asyncio.gather(*(one(i) for i in range(300)))
                assert answers == [b"echo:" + str(i).encode() for i in range(300)]
        finally:
            await runner.cleanup()

    century_ring.asyncio.run(main())


def test_uvicorn_serves_an_asgi_app_on_this_loop() -> None:
    uvicorn = pytest.importorskip("uvicorn")
    seen_loops: list[type] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        seen_loops.append(type(asyncio.get_running_loop()))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = b"got " + str(len(body)).encode()
        headers = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def main() -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            for size in (0, 5, 200_000):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(
                    b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + f"Content-Length: {size}\r\n\r\n".encode()
                    + b"b" * size
                )
                response = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                await writer.wait_closed()
                assert response.startswith(b"HTTP/1.1 200")
                assert response.endswith(b"got " + str(size).encode())
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)

    century_ring.asyncio.run(main())
    assert seen_loops == [EventLoop] * 3


def test_anyio_on_this_loop_streams_tls_task_groups_and_threads(tmp_path: Path) -> None:
    anyio = pytest.importorskip("anyio")
    trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), EventLoop)
        from anyio.streams.tls import TLSListener

        tcp_listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = tcp_listener.extra(anyio.abc.SocketAttribute.local_port)
        listener = TLSListener(tcp_listener, server_context)

        async def serve(stream: Any) -> None:
            async with stream:
                async for chunk in stream:
                    await stream.send(chunk.upper())

        async with anyio.create_task_group() as group:
            group.start_soon(listener.serve, serve)
            stream = await anyio.connect_tcp("localhost", port, ssl_context=client_context)
            async with stream:
                for word in (b"ring", b"loop", b"x" * 50_000):
                    await stream.send(word)
                    got = b""
                    while len(got) < len(word):
                        got += await stream.receive()
                    assert got == word.upper()
            assert await anyio.to_thread.run_sync(lambda: 6 * 7) == 42
            with anyio.move_on_after(0.05) as scope:
                await anyio.sleep(10)
            assert scope.cancelled_caught
            group.cancel_scope.cancel()
        await listener.aclose()

    century_ring.asyncio.run(main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is Python 3.11+")
def test_a_server_outlives_a_thousand_connections_opened_and_closed() -> None:
    async def main() -> None:
        served = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            writer.write(await reader.readexactly(4))
            await writer.drain()
            writer.close()
            served += 1

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def client(i: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(i.to_bytes(4, "big"))
            assert await reader.readexactly(4) == i.to_bytes(4, "big")
            writer.close()
            await writer.wait_closed()

        for batch in range(10):
            async with asyncio.TaskGroup() as group:
                for i in range(100):
                    group.create_task(client(batch * 100 + i))
        server.close()
        await server.wait_closed()
        assert served == 1000

    century_ring.asyncio.run(main())
