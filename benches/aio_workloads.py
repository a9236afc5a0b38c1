"""The async contenders of the benchmark suite (issue 13), one measurement per process.

``benches/run.py`` starts this script once per measurement and reads the JSON line it prints,
as it does with ``benches/workloads.py``::

    python benches/aio_workloads.py CONTENDER WORKLOAD [--loop asyncio|uvloop|trio]
        [--tasks N] [--size B] [--seconds S] [--file F] [--direct] [--dir D] [--files N]

Workloads and their contenders:

``read``         ``--tasks`` tasks, each looping over 4 KiB reads at random offsets of ``--file``
                 (``--direct``: opened with O_DIRECT) until the window closes.
                 ``century_ring``: ``(await current_ring().read(fd, size, offset)).buffer``.
                 ``aiofiles``: each task its own ``aiofiles.open`` file, ``seek`` + ``read``.
                 ``anyio``: each task its own ``anyio.open_file`` file, ``seek`` + ``read``.
                 ``executor``: ``loop.run_in_executor(None, os.pread, fd, size, offset)``.
                 With ``--direct`` the last three read into a page-aligned ``mmap`` buffer per
                 task (``readinto``, ``os.preadv``): a ``bytes`` made by ``read``/``os.pread``
                 is not aligned and O_DIRECT refuses it with EINVAL.
``small-files``  ``--tasks`` tasks take the next of ``--files`` files of ``--size`` bytes in
                 ``--dir`` (round robin), open it, read it whole and close it, until the window
                 closes. ``century_ring``: ``openat`` + ``read(fd, size, 0)`` + ``close``;
                 ``open_file``: ``century_ring.aio.open_file``; ``aiofiles``
                 and ``anyio``: ``async with`` their ``open`` + ``read()``; ``executor``: one
                 ``run_in_executor`` call per file doing ``os.open``/``os.read``/``os.close``;
                 ``sync``: the synchronous ring, ``--tasks`` files a batch (all ``openat``,
                 then all ``read``, then all ``close``, each step one ``submit_and_wait``).
``echo``         ``--tasks`` TCP connections over 127.0.0.1, server and clients in this process
                 on one loop; each client sends ``--size`` bytes and waits for all of them to
                 come back, again and again. ``century_ring``: ``century_ring.aio``'s
                 ``create_tcp_listener``/``connect_tcp`` streams; ``anyio``: anyio's own.

``--loop`` picks the event loop (``anyio.run`` with the asyncio backend, the same with uvloop,
or trio); ``aiofiles`` and ``executor`` need asyncio or uvloop. Every line carries the fields
``workloads.outcome`` gives (ops, seconds, ops/s, CPU seconds, CPU µs per op from
``getrusage(RUSAGE_SELF)``, which counts every thread: the executor's and the file libraries'
worker threads too). The window opens before the tasks start and closes once they all have
finished: the last operation of each task may end just after the deadline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import mmap
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from workloads import (
    OFFSET_COUNT,
    OFFSET_MASK,
    Window,
    check,
    open_file,
    outcome,
    random_offsets,
    ring_entries,
)

LOOPS = ("asyncio", "uvloop", "trio")


def run_on(loop: str, main: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run ``main`` on the named event loop."""
    if loop == "trio":
        return anyio.run(main, backend="trio")
    return anyio.run(main, backend="asyncio", backend_options={"use_uvloop": loop == "uvloop"})


async def run_tasks(count: int, task: Callable[[int], Awaitable[int]]) -> tuple[int, Window]:
    """Run ``task(k)`` for k in range(count) together; the operations they did and the window."""
    done: list[int] = []

    async def one(k: int) -> None:
        done.append(await task(k))

    window = Window()
    async with anyio.create_task_group() as group:
        for k in range(count):
            group.start_soon(one, k)
    window.stop()
    return sum(done), window


def aligned_buffer(size: int) -> mmap.mmap:
    """An anonymous mapping: page-aligned, as O_DIRECT needs."""
    return mmap.mmap(-1, size)


# --- read ---------------------------------------------------------------------------------------


def read_workload(
    contender: str, path: str, tasks: int, size: int, seconds: float, direct: bool
) -> Callable[[], Awaitable[dict[str, Any]]]:
    offsets = random_offsets(path, size)
    stretch = OFFSET_COUNT // tasks  # each task reads its own stretch of the offset list
    flags = os.O_DIRECT if direct else 0

    def opener(name: str, base: int) -> int:
        return os.open(name, base | flags)

    async def century_ring_task(fd: int, k: int, deadline: float) -> int:
        from century_ring.aio import current_ring

        read = current_ring().read
        clock = time.perf_counter
        i = k * stretch
        n = 0
        while clock() < deadline:
            event = await read(fd, size, offsets[i])
            if event.result != size:
                check(event.result, size)
            i = (i + 1) & OFFSET_MASK
            n += 1
        return n

    async def open_files() -> list[Any]:
        """Each task's own file object, opened before the window: aiofiles' or anyio's."""
        # O_DIRECT needs the unbuffered file: a buffered one reads through its own buffer.
        buffering = 0 if direct else -1
        if contender == "aiofiles":
            import aiofiles

            return [
                await aiofiles.open(path, "rb", buffering=buffering, opener=opener)
                for _ in range(tasks)
            ]
        return [
            await anyio.open_file(path, "rb", buffering=buffering, opener=opener)
            for _ in range(tasks)
        ]

    async def file_task(f: Any, k: int, deadline: float) -> int:
        """seek + read (O_DIRECT: readinto an aligned buffer) on a file object's coroutines."""
        clock = time.perf_counter
        seek, read, readinto = f.seek, f.read, f.readinto
        buffer = aligned_buffer(size)
        i = k * stretch
        n = 0
        while clock() < deadline:
            await seek(offsets[i])
            got = await readinto(buffer) if direct else len(await read(size))
            if got != size:
                check(got, size)
            i = (i + 1) & OFFSET_MASK
            n += 1
        return n

    async def executor_task(fd: int, k: int, deadline: float) -> int:
        import asyncio

        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        buffers = [aligned_buffer(size)]
        pread, preadv = os.pread, os.preadv
        i = k * stretch
        n = 0
        while clock() < deadline:
            if direct:
                got = await loop.run_in_executor(None, preadv, fd, buffers, offsets[i])
            else:
                got = len(await loop.run_in_executor(None, pread, fd, size, offsets[i]))
            if got != size:
                check(got, size)
            i = (i + 1) & OFFSET_MASK
            n += 1
        return n

    async def main() -> dict[str, Any]:
        fd = open_file(path, direct)
        files = await open_files() if contender in ("aiofiles", "anyio") else []
        try:
            deadline = time.perf_counter() + seconds
            if contender == "century_ring":
                ops, window = await run_tasks(tasks, lambda k: century_ring_task(fd, k, deadline))
            elif files:
                ops, window = await run_tasks(tasks, lambda k: file_task(files[k], k, deadline))
            elif contender == "executor":
                ops, window = await run_tasks(tasks, lambda k: executor_task(fd, k, deadline))
            else:
                raise SystemExit(f"{contender} does not run read")
        finally:
            for f in files:
                await f.close() if contender == "aiofiles" else await f.aclose()
            os.close(fd)
        return outcome(ops, window, tasks=tasks, size=size, direct=direct)

    return main


# --- small files --------------------------------------------------------------------------------


def small_file_paths(directory: str, count: int, size: int) -> list[str]:
    """The ``count`` files of ``size`` bytes run.py made in ``directory``."""
    paths = [os.path.join(directory, f"{i:05d}.bin") for i in range(count)]
    for p in (paths[0], paths[-1]):
        if os.stat(p).st_size != size:
            raise SystemExit(f"{p} is not {size} bytes: let run.py make the files")
    return paths


def small_files_workload(
    contender: str, paths: list[str], tasks: int, size: int, seconds: float
) -> Callable[[], Awaitable[dict[str, Any]]]:
    turn = itertools.count()  # the next file, shared by the tasks
    count = len(paths)

    async def century_ring_task(deadline: float) -> int:
        from century_ring import AT_FDCWD, FileOpenMode
        from century_ring.aio import current_ring

        ring = current_ring()
        openat, read, close = ring.openat, ring.read, ring.close
        clock = time.perf_counter
        n = 0
        while clock() < deadline:
            fd = (await openat(AT_FDCWD, paths[next(turn) % count], FileOpenMode.READ_ONLY)).result
            try:
                data = (await read(fd, size, 0)).buffer
            finally:
                await close(fd)
            if len(data) != size:
                check(len(data), size)
            n += 1
        return n

    async def open_file_task(deadline: float) -> int:
        from century_ring.aio import open_file as ring_open_file

        clock = time.perf_counter
        n = 0
        while clock() < deadline:
            async with ring_open_file(paths[next(turn) % count], "rb") as f:
                data = await f.read()
            if len(data) != size:
                check(len(data), size)
            n += 1
        return n

    async def aiofiles_task(deadline: float) -> int:
        import aiofiles

        clock = time.perf_counter
        n = 0
        while clock() < deadline:
            async with aiofiles.open(paths[next(turn) % count], "rb") as f:
                data = await f.read()
            if len(data) != size:
                check(len(data), size)
            n += 1
        return n

    async def anyio_task(deadline: float) -> int:
        clock = time.perf_counter
        n = 0
        while clock() < deadline:
            async with await anyio.open_file(paths[next(turn) % count], "rb") as f:
                data = await f.read()
            if len(data) != size:
                check(len(data), size)
            n += 1
        return n

    def read_whole(path: str) -> int:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return len(os.read(fd, size))
        finally:
            os.close(fd)

    async def executor_task(deadline: float) -> int:
        import asyncio

        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        n = 0
        while clock() < deadline:
            got = await loop.run_in_executor(None, read_whole, paths[next(turn) % count])
            if got != size:
                check(got, size)
            n += 1
        return n

    tasks_of: dict[str, Callable[[float], Awaitable[int]]] = {
        "century_ring": century_ring_task,
        "open_file": open_file_task,
        "aiofiles": aiofiles_task,
        "anyio": anyio_task,
        "executor": executor_task,
    }
    if contender not in tasks_of:
        raise SystemExit(f"{contender} does not run small-files")
    task = tasks_of[contender]

    async def main() -> dict[str, Any]:
        deadline = time.perf_counter() + seconds
        ops, window = await run_tasks(tasks, lambda _k: task(deadline))
        return outcome(ops, window, tasks=tasks, size=size, files=count)

    return main


def small_files_sync(paths: list[str], batch: int, size: int, seconds: float) -> dict[str, Any]:
    """The synchronous ring: ``batch`` files at a time, each step one ``submit_and_wait``."""
    from century_ring import AT_FDCWD, FileOpenMode, make_io_ring

    count = len(paths)
    i = 0
    ops = 0
    with make_io_ring(ring_entries(batch)) as ring:
        prep_openat, prep_read, prep_close = ring.prep_openat, ring.prep_read, ring.prep_close
        submit_and_wait, reap = ring.submit_and_wait, ring.get_completion_entries
        window = Window()
        deadline = window.wall0 + seconds
        while time.perf_counter() < deadline:
            for _ in range(batch):
                prep_openat(AT_FDCWD, paths[i], FileOpenMode.READ_ONLY)
                i = (i + 1) % count
            submit_and_wait(batch)
            fds = [cqe.result for cqe in reap()]
            for fd in fds:
                if fd < 0:
                    check(fd, size)
                prep_read(fd, size, 0)
            submit_and_wait(batch)
            for cqe in reap():
                if cqe.result != size:
                    check(cqe.result, size)
            for fd in fds:
                prep_close(fd)
            submit_and_wait(batch)
            reap()
            ops += batch
        window.stop()
    return outcome(ops, window, tasks=batch, size=size, files=count)


# --- echo ---------------------------------------------------------------------------------------


def local_port(listener: Any) -> int:
    """The port an anyio-style listener (or multi-listener) is bound to."""
    from anyio.abc import SocketAttribute

    try:
        return int(listener.extra(SocketAttribute.local_port))
    except Exception:
        return int(listener.listeners[0].extra(SocketAttribute.local_port))


def echo_workload(
    contender: str, connections: int, size: int, seconds: float
) -> Callable[[], Awaitable[dict[str, Any]]]:
    if contender == "century_ring":
        from century_ring.aio import connect_tcp as connect
        from century_ring.aio import create_tcp_listener as create_listener
    elif contender == "anyio":
        create_listener, connect = anyio.create_tcp_listener, anyio.connect_tcp
    else:
        raise SystemExit(f"{contender} does not run echo")
    message = os.urandom(size)
    # What a closed peer looks like to either side once the window is over.
    gone = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)

    async def serve_one(stream: Any) -> None:
        receive, send = stream.receive, stream.send
        try:
            while True:
                await send(await receive(65536))
        except gone:
            pass
        finally:
            await stream.aclose()

    async def client(stream: Any, deadline: float) -> int:
        receive, send = stream.receive, stream.send
        clock = time.perf_counter
        n = 0
        while clock() < deadline:
            await send(message)
            got = 0
            while got < size:
                got += len(await receive(size - got))
            n += 1
        return n

    async def main() -> dict[str, Any]:
        listener = await create_listener(local_host="127.0.0.1", local_port=0)
        port = local_port(listener)
        async with anyio.create_task_group() as server:
            server.start_soon(listener.serve, serve_one)
            streams = [await connect("127.0.0.1", port) for _ in range(connections)]
            deadline = time.perf_counter() + seconds
            ops, window = await run_tasks(connections, lambda k: client(streams[k], deadline))
            for stream in streams:
                await stream.aclose()
            server.cancel_scope.cancel()
        await listener.aclose()
        return outcome(ops, window, tasks=connections, size=size)

    return main


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "contender",
        choices=["century_ring", "open_file", "aiofiles", "anyio", "executor", "sync"],
    )
    parser.add_argument("workload", choices=["read", "small-files", "echo"])
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--file", help="the file read (read)")
    parser.add_argument("--direct", action="store_true", help="open --file with O_DIRECT")
    parser.add_argument("--dir", help="where the small files are (small-files)")
    parser.add_argument("--files", type=int, default=1000, help="how many small files")
    args = parser.parse_args(argv)
    if args.contender in ("aiofiles", "executor") and args.loop == "trio":
        parser.error(f"{args.contender} needs asyncio or uvloop")

    if args.workload == "read":
        if not args.file:
            parser.error("read needs --file")
        main_ = read_workload(
            args.contender, args.file, args.tasks, args.size, args.seconds, args.direct
        )
    elif args.workload == "small-files":
        if not args.dir:
            parser.error("small-files needs --dir")
        paths = small_file_paths(args.dir, args.files, args.size)
        if args.contender == "sync":
            result = small_files_sync(paths, args.tasks, args.size, args.seconds)
            print(json.dumps({"contender": "sync", "workload": args.workload, **result}))
            return 0
        main_ = small_files_workload(args.contender, paths, args.tasks, args.size, args.seconds)
    else:
        main_ = echo_workload(args.contender, args.tasks, args.size, args.seconds)
    result = run_on(args.loop, main_)
    line = {"contender": args.contender, "workload": args.workload, "loop": args.loop, **result}
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
