"""examples/echo_server.py, run as a user would run it, against many concurrent clients."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from century_ring import make_io_ring

ECHO_SERVER = Path(__file__).resolve().parent.parent / "examples" / "echo_server.py"
CLIENTS = 20


@pytest.fixture(autouse=True)
def _needs_accept() -> None:
    with make_io_ring() as ring:
        if not ring.probe()["prep_accept"]:
            pytest.skip("this kernel has no IORING_OP_ACCEPT")


def start_server(*args: str) -> tuple[subprocess.Popen[str], int]:
    """Start the echo server; returns it and the port it listens on."""
    proc = subprocess.Popen(
        [sys.executable, str(ECHO_SERVER), "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    if match is None:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"server did not start: {line!r}\n{err}")
    return proc, int(match.group(1))


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = start_server("--max-connections", str(CLIENTS), "--duration", "60")
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def echo_client(port: int, index: int, start: threading.Barrier) -> int:
    """Connect, send messages of several sizes (up to 256 KiB, so the server's recvs and sends
    are split), check every echo, close. Returns the bytes echoed."""
    messages = [
        f"hello from client {index}\n".encode(),
        os.urandom(1 + index * 37),
        os.urandom(256 * 1024 + index),
        b"bye",
    ]
    start.wait(timeout=30)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for message in messages:
            sock.sendall(message)
            echoed = bytearray()
            while len(echoed) < len(message):
                chunk = sock.recv(len(message) - len(echoed))
                assert chunk, f"client {index}: server closed early"
                echoed += chunk
            assert bytes(echoed) == message, f"client {index}: echo differs"
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b"", f"client {index}: extra bytes after the echoes"
    return sum(map(len, messages))


def test_echo_server_serves_concurrent_clients(server: tuple[subprocess.Popen[str], int]) -> None:
    """Twenty clients at once, all on one ring: every echo is exact, and the server stops by
    itself after --max-connections and reports what it did."""
    proc, port = server
    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(echo_client, port, i, start) for i in range(CLIENTS)]
        total = sum(f.result(timeout=60) for f in futures)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"served {CLIENTS} connections ({CLIENTS} accepted), echoed {total} bytes" in out
    assert err == ""


def test_echo_server_stops_after_duration() -> None:
    """With no clients, --duration alone stops it, promptly and cleanly."""
    started = time.monotonic()
    proc, _ = start_server("--duration", "0.5")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "served 0 connections" in out
    assert time.monotonic() - started < 15


def test_echo_server_port_in_use_fails_clearly() -> None:
    """Binding a port that is taken ends the server with the OSError, not a hang."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, str(ECHO_SERVER), "--port", str(port), "--duration", "5"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode != 0
    assert "Address already in use" in proc.stderr
