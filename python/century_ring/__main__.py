"""``python -m century_ring``: check that io_uring works here, and show the library at work.

Prints the kernel and io_uring status, which operations this kernel supports, and then runs a
file round trip and a loopback TCP round trip through a ring, each step with its result, and the
same through :mod:`century_ring.aio` on asyncio (and on trio when it is installed): awaited
operations, and a read cancelled while the kernel holds it; then an echo on
:mod:`century_ring.asyncio`'s event loop. Exits with status 1, and says why,
when io_uring is unavailable or a step fails.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import sys
import tempfile
import time

from century_ring import (
    AT_FDCWD,
    CompletionEvent,
    FileOpenFlag,
    FileOpenMode,
    IoUring,
    make_io_ring,
    raise_for_cqe,
)


class CheckFailed(Exception):
    """A step of the self-check did not do what it should."""


def _complete(ring: IoUring, user_data: int, what: str) -> CompletionEvent:
    """Submits, waits for the completion of ``user_data`` and prints the step."""
    started = time.perf_counter()
    ring.submit_and_wait()
    completions = ring.get_completion_entries()
    elapsed_us = (time.perf_counter() - started) * 1e6
    match = [c for c in completions if c.user_data == user_data]
    if len(match) != 1:
        raise CheckFailed(f"{what}: expected one completion, got {completions!r}")
    (completion,) = match
    status = "ok" if completion.result >= 0 else os.strerror(-completion.result)
    print(f"  {what:<44} result={completion.result:<6} {status} ({elapsed_us:.0f} µs)")
    raise_for_cqe(completion)
    return completion


def _io_uring_disabled() -> str:
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            value = f.read().strip()
    except OSError:
        return "unknown (no /proc/sys/kernel/io_uring_disabled; kernel before 6.6)"
    meaning = {"0": "enabled", "1": "restricted to kernel.io_uring_group", "2": "disabled"}
    return f"{value} ({meaning.get(value, 'unknown')})"


def _file_round_trip(ring: IoUring) -> None:
    print("\nFile round trip through the ring:")
    payload = b"Century Ring self-check: " + os.urandom(16).hex().encode()
    with tempfile.TemporaryDirectory(prefix="century-ring-") as directory:
        path = os.path.join(directory, "check.bin")
        opened = _complete(
            ring,
            ring.prep_openat(
                AT_FDCWD,
                path,
                FileOpenMode.READ_WRITE,
                {FileOpenFlag.CREATE_IF_NOT_EXISTS, FileOpenFlag.TRUNCATE},
                0o600,
            ),
            f"openat {path}",
        )
        fd = opened.result
        written = _complete(ring, ring.prep_write(fd, payload, 0), f"write {len(payload)} bytes")
        if written.result != len(payload):
            raise CheckFailed(f"short write: {written.result} of {len(payload)} bytes")
        read = _complete(ring, ring.prep_read(fd, 4096, 0), "read it back")
        if read.buffer != payload:
            raise CheckFailed(f"read back {read.buffer!r}, expected {payload!r}")
        _complete(ring, ring.prep_close(fd), "close")
        print("  the data read back matches what was written")


def _tcp_round_trip(ring: IoUring) -> None:
    print("\nLoopback TCP round trip through the ring:")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        created = _complete(
            ring,
            ring.prep_create_socket(socket.AF_INET, socket.SOCK_STREAM),
            "socket(AF_INET, SOCK_STREAM)",
        )
        client_fd = created.result
        try:
            _complete(
                ring, ring.prep_connect_v4(client_fd, "127.0.0.1", port), f"connect to :{port}"
            )
            peer, _ = server.accept()
            with peer:
                message = b"ping " + os.urandom(8).hex().encode()
                _complete(ring, ring.prep_send(client_fd, message), f"send {len(message)} bytes")
                peer.sendall(peer.recv(1024).upper())
                received = _complete(ring, ring.prep_recv(client_fd, 1024), "recv the echo")
                if received.buffer != message.upper():
                    raise CheckFailed(f"received {received.buffer!r}, expected {message.upper()!r}")
        finally:
            _complete(ring, ring.prep_close(client_fd), "close the socket")
        print("  the echo came back intact")


def _zero_copy_reads(ring: IoUring) -> None:
    print("\nReads into the program's own memory (no copy):")
    payload = os.urandom(4096)
    with tempfile.TemporaryFile(prefix="century-ring-") as f:
        f.write(payload)
        f.flush()
        fd = f.fileno()
        target = bytearray(4096)
        _complete(ring, ring.prep_read_into(fd, target, 0), "read_into a bytearray")
        if target != payload:
            raise CheckFailed("read_into did not fill the bytearray with the file's bytes")
        registered = bytearray(4096)
        ring.register_buffers([registered])
        try:
            _complete(ring, ring.prep_read_fixed(fd, 0, 0), "read_fixed into a registered buffer")
        finally:
            ring.unregister_buffers()
        if registered != payload:
            raise CheckFailed("read_fixed did not fill the registered buffer")
    print("  both buffers hold the file's bytes")


def _timed_wait(ring: IoUring) -> None:
    print("\nTimed wait with nothing in flight:")
    started = time.perf_counter()
    ring.submit_and_wait_with_timeout(0, 20_000_000)
    waited_ms = (time.perf_counter() - started) * 1e3
    leftover = ring.get_completion_entries()
    print(f"  waited {waited_ms:.1f} ms for a 20 ms timeout; {len(leftover)} completions left")
    if leftover:
        raise CheckFailed(f"the timed wait left completions behind: {leftover!r}")


async def _async_steps(loop_name: str) -> None:
    """Awaits a file round trip, then cancels a read of an idle pipe: the kernel's operation is
    cancelled and nothing is left in flight."""
    import anyio

    from century_ring.aio import current_ring

    ring = current_ring()
    payload = b"awaited through the ring on " + loop_name.encode()
    with tempfile.TemporaryDirectory(prefix="century-ring-") as directory:
        path = os.path.join(directory, "check.bin")
        flags = {FileOpenFlag.CREATE_IF_NOT_EXISTS, FileOpenFlag.TRUNCATE}
        fd = (await ring.openat(AT_FDCWD, path, FileOpenMode.READ_WRITE, flags, 0o600)).result
        try:
            written = (await ring.write(fd, payload, 0)).result
            data = (await ring.read(fd, 4096, 0)).buffer
        finally:
            await ring.close(fd)
    if written != len(payload) or data != payload:
        raise CheckFailed(f"{loop_name}: wrote {written} bytes, read back {data!r}")
    print(f"    await openat / write / read / close: {data!r}")

    read_end, write_end = os.pipe()
    try:
        started = time.perf_counter()
        with anyio.move_on_after(0.02) as scope:
            await ring.read(read_end, 64)
        waited_ms = (time.perf_counter() - started) * 1e3
        if not scope.cancelled_caught:
            raise CheckFailed(f"{loop_name}: a read of an idle pipe returned")
        if ring.ring.in_flight:
            raise CheckFailed(f"{loop_name}: {ring.ring.in_flight} operations still in flight")
        print(f"    a read of an idle pipe cancelled after {waited_ms:.1f} ms; none left in flight")
    finally:
        os.close(read_end)
        os.close(write_end)


def _async_round_trips() -> None:
    print("\nThe same awaited through century_ring.aio:")
    try:
        import anyio
    except ImportError:
        print("  skipped: anyio is not installed (pip install 'century-ring[aio]')")
        return
    for backend in ("asyncio", "trio"):
        try:
            __import__(backend)
        except ImportError:
            print(f"  {backend}: skipped, not installed")
            continue
        print(f"  on {backend}:")
        anyio.run(_async_steps, backend, backend=backend)


class _Echo(asyncio.Protocol):
    """Writes back what it receives."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _event_loop_steps() -> None:
    """An echo through the loop's own transports, and the loop's ring shared with
    century_ring.aio."""
    from century_ring.aio import current_ring
    from century_ring.asyncio import EventLoop

    loop = asyncio.get_running_loop()
    if not isinstance(loop, EventLoop):
        raise CheckFailed(f"century_ring.asyncio.run ran on {type(loop).__name__}")

    server = await loop.create_server(_Echo, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = b"echoed by a protocol on century_ring.asyncio"
        started = time.perf_counter()
        writer.write(payload)
        echoed = await reader.readexactly(len(payload))
        elapsed_us = (time.perf_counter() - started) * 1e6
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    if echoed != payload:
        raise CheckFailed(f"the loop's echo returned {echoed!r}")
    print(f"  echo through the loop's transports: {echoed!r} ({elapsed_us:.0f} µs)")
    ring = current_ring()
    if ring.ring.fileno() != loop._ring.ring.fileno():
        raise CheckFailed("century_ring.aio.current_ring() is not the loop's own ring")
    print(f"  century_ring.aio shares the loop's ring: nop result {(await ring.nop()).result}")


def _event_loop_round_trip() -> None:
    print("\nThe asyncio event loop on io_uring (century_ring.asyncio):")
    try:
        import anyio  # noqa: F401
    except ImportError:
        print("  skipped: anyio is not installed (pip install 'century-ring[aio]')")
        return
    import century_ring.asyncio

    century_ring.asyncio.run(_event_loop_steps())


def main() -> int:
    uname = platform.uname()
    print("Century Ring self-check")
    print(f"  Python {platform.python_version()} ({sys.implementation.name})")
    print(f"  Linux kernel {uname.release} on {uname.machine}")
    print(f"  kernel.io_uring_disabled = {_io_uring_disabled()}")
    try:
        ring = make_io_ring()
    except OSError as error:
        print(f"\nio_uring is not available here: {error}", file=sys.stderr)
        return 1
    with ring:
        print(f"  created a ring: {ring!r}")
        print("\nOperations this kernel supports (from IORING_REGISTER_PROBE):")
        for method, supported in ring.probe().items():
            print(f"  {method:<22} {'supported' if supported else 'NOT supported'}")
        try:
            _file_round_trip(ring)
            _tcp_round_trip(ring)
            _zero_copy_reads(ring)
            _timed_wait(ring)
            _async_round_trips()
            _event_loop_round_trip()
        except (CheckFailed, OSError) as error:
            print(f"\nSelf-check FAILED: {error}", file=sys.stderr)
            return 1
    print("\nAll checks passed: io_uring works here.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
