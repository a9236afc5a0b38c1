"""128 KiB sequential reads of a page-cached file: a new ``bytes`` per read, or a reused buffer.

Contenders, measured in the same process, alternating, for several rounds (median):

* ``prep_read``: the seed's read; the ring allocates, the completion carries a new ``bytes``.
* ``prep_read_into``: the kernel fills a ``bytearray`` the program reuses; nothing is allocated.
* ``os.preadv``: the same into-a-reused-buffer read as a plain system call loop (queue depth 1
  only), the baseline a Python program has without io_uring.

Each contender keeps ``--depth`` reads in flight (one buffer per slot) and touches one byte of
every block it gets, so both ring paths do the same Python work per read. Prints a table and
the per-round ratio ``prep_read_into / prep_read``; ``--json`` writes the numbers.

    python benches/read_into.py [--seconds 2] [--rounds 5] [--depth 1,8] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from century_ring import IoUring, make_io_ring

BLOCK = 128 << 10
#: How many blocks the test file holds (``--file-mib`` sets it); reads wrap around at its end.
BLOCKS = (256 << 20) // BLOCK


def make_file(directory: str, mib: int) -> str:
    """A page-cached file of ``mib`` MiB of random bytes (created once, then read fully)."""
    path = os.path.join(directory, f"century-ring-read-into-{mib}.bin")
    if not os.path.exists(path) or os.path.getsize(path) != mib << 20:
        with open(path, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(mib):
                f.write(chunk)
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass
    return path


def ring_read(ring: IoUring, fd: int, depth: int, seconds: float) -> int:
    """Bytes read with prep_read (a new bytes per completion) in ``seconds``."""
    total = 0
    next_block = 0
    for _ in range(depth):
        ring.prep_read(fd, BLOCK, next_block * BLOCK)
        next_block = (next_block + 1) % BLOCKS
    deadline = time.perf_counter() + seconds
    while True:
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            data = cqe.buffer
            assert data is not None and len(data) == BLOCK and cqe.result == BLOCK
            total += data[-1] * 0 + len(data)
            ring.prep_read(fd, BLOCK, next_block * BLOCK)
            next_block = (next_block + 1) % BLOCKS
        if time.perf_counter() >= deadline:
            break
    drain(ring)
    return total


def ring_read_into(ring: IoUring, fd: int, depth: int, seconds: float) -> int:
    """Bytes read with prep_read_into (``depth`` reused bytearrays) in ``seconds``."""
    buffers: dict[int, bytearray] = {}
    total = 0
    next_block = 0
    for _ in range(depth):
        target = bytearray(BLOCK)
        buffers[ring.prep_read_into(fd, target, next_block * BLOCK)] = target
        next_block = (next_block + 1) % BLOCKS
    deadline = time.perf_counter() + seconds
    while True:
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            target = buffers.pop(cqe.user_data)
            assert cqe.result == BLOCK
            total += target[-1] * 0 + cqe.result
            buffers[ring.prep_read_into(fd, target, next_block * BLOCK)] = target
            next_block = (next_block + 1) % BLOCKS
        if time.perf_counter() >= deadline:
            break
    drain(ring)
    return total


def preadv_loop(fd: int, seconds: float) -> int:
    """Bytes read by a plain os.preadv loop into one reused bytearray in ``seconds``."""
    target = bytearray(BLOCK)
    total = 0
    block = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(64):
            n = os.preadv(fd, [target], block * BLOCK)
            assert n == BLOCK
            total += target[-1] * 0 + n
            block = (block + 1) % BLOCKS
    return total


def drain(ring: IoUring) -> None:
    while ring.in_flight:
        ring.submit_and_wait(1)
        ring.get_completion_entries()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per contender per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--depth", default="1,8", help="comma-separated queue depths")
    parser.add_argument("--dir", default="/var/tmp", help="where the test file lives")
    parser.add_argument("--file-mib", type=int, default=256, help="size of the test file")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depth.split(",")]
    global BLOCKS
    BLOCKS = max(1, (args.file_mib << 20) // BLOCK)

    path = make_file(args.dir if os.path.isdir(args.dir) else tempfile.gettempdir(), args.file_mib)
    fd = os.open(path, os.O_RDONLY)
    ring = make_io_ring(256)
    contenders: dict[str, Callable[[int], int]] = {
        "prep_read": lambda depth: ring_read(ring, fd, depth, args.seconds),
        "prep_read_into": lambda depth: ring_read_into(ring, fd, depth, args.seconds),
        "os.preadv": lambda depth: preadv_loop(fd, args.seconds),
    }
    print(
        f"# {platform.node()} {platform.release()} {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}; {BLOCK >> 10} KiB reads of a "
        f"{args.file_mib} MiB cached file, {args.rounds} rounds x {args.seconds} s",
        file=sys.stderr,
    )
    results: list[dict[str, object]] = []
    for depth in depths:
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        names = [n for n in contenders if depth == 1 or n != "os.preadv"]
        for round_index in range(args.rounds):
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                started = time.perf_counter()
                moved = contenders[name](depth)
                rates[name].append(moved / (time.perf_counter() - started) / 1e9)
        ratios = [b / a for a, b in zip(rates["prep_read"], rates["prep_read_into"], strict=True)]
        for name in names:
            results.append(
                {
                    "depth": depth,
                    "contender": name,
                    "gb_per_s_median": statistics.median(rates[name]),
                    "gb_per_s_rounds": rates[name],
                }
            )
        results.append(
            {
                "depth": depth,
                "ratio": "prep_read_into / prep_read",
                "median": statistics.median(ratios),
                "rounds": ratios,
            }
        )
    os.close(fd)
    ring.close()

    print(f"{'depth':>5}  {'contender':<16} {'GB/s':>7}")
    for row in results:
        if "contender" in row:
            print(f"{row['depth']:>5}  {row['contender']:<16} {row['gb_per_s_median']:>7.2f}")
        else:
            print(f"{row['depth']:>5}  {'into / read':<16} {row['median']:>7.2f}x")
    if args.json:
        machine = {"kernel": platform.release(), "cpus": os.cpu_count(), "node": platform.node()}
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
