"""Registered buffers and files against plain reads: 4 KiB page-cached reads at queue depth 32.

A standalone script, separate from ``run.py``::

    python benches/fixed.py [--seconds S] [--rounds N] [--size B] [--qd N] [--file F]

Contenders, measured in the same process, round-robin, each round on a fresh ring:

``read``             ``prep_read``: the ring allocates, the completion carries a new ``bytes``
``read_into``        ``prep_read_into`` a slice of one reused ``bytearray`` (an export per read)
``read_fixed``       ``prep_read_fixed`` into one registered ``bytearray`` (no export, no
                     per-read page pinning)
``read_fixed_file``  as ``read_fixed``, with the file registered too (``fixed_file``)

Each round queues ``qd`` reads at random offsets, ``submit_and_wait(qd)``, reaps, and repeats
for ``--seconds``. The median over rounds is printed with its ratio to ``read``, plus the same as
JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from century_ring import IoUring, make_io_ring, make_sqe_flags

OFFSETS = 1 << 16


def make_file(path: str | None, size_mb: int) -> tuple[str, bool]:
    """The file to read: the one given, or a new one of ``size_mb`` MiB (page cached by
    writing it). Returns the path and whether this script created it."""
    if path:
        return path, False
    fd, created = tempfile.mkstemp(prefix="century-ring-fixed-", dir="/var/tmp")
    chunk = os.urandom(1 << 20)
    for _ in range(size_mb):
        os.write(fd, chunk)
    os.close(fd)
    return created, True


def run_round(
    contender: str, fd: int, offsets: list[int], qd: int, size: int, seconds: float
) -> float:
    """Reads per second of one contender over one timed window."""
    with make_io_ring(max(8, qd)) as ring:
        prep = preparer(contender, ring, fd, qd, size)
        submit_and_wait = ring.submit_and_wait
        reap = ring.get_completion_entries
        i = 0
        ops = 0
        mask = len(offsets) - 1
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for k in range(qd):
                prep(k, offsets[i])
                i = (i + 1) & mask
            submit_and_wait(qd)
            for cqe in reap():
                if cqe.result != size:
                    raise SystemExit(f"{contender}: read returned {cqe.result}")
                ops += 1
            if time.perf_counter() >= deadline:
                break
        return ops / (time.perf_counter() - start)


def preparer(
    contender: str, ring: IoUring, fd: int, qd: int, size: int
) -> Callable[[int, int], int]:
    """A function ``(slot k of the queue, file offset) -> user_data`` queueing one read."""
    if contender == "read":
        prep_read = ring.prep_read
        return lambda k, offset: prep_read(fd, size, offset)
    if contender == "read_into":
        backing = bytearray(qd * size)
        view = memoryview(backing)
        slices = [view[k * size : (k + 1) * size] for k in range(qd)]
        prep_read_into = ring.prep_read_into
        return lambda k, offset: prep_read_into(fd, slices[k], offset)
    ring.register_buffers([bytearray(qd * size)])
    prep_read_fixed = ring.prep_read_fixed
    if contender == "read_fixed":
        return lambda k, offset: prep_read_fixed(fd, 0, offset, size, k * size)
    ring.register_files([fd])
    fixed = make_sqe_flags(fixed_file=True)
    return lambda k, offset: prep_read_fixed(0, 0, offset, size, k * size, sqe_flags=fixed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per round and contender")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=4096, help="bytes per read")
    parser.add_argument("--qd", type=int, default=32, help="reads per submission")
    parser.add_argument("--file", help="file to read (default: a new 64 MiB file, removed)")
    args = parser.parse_args()

    path, created = make_file(args.file, 64)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            blocks = os.fstat(fd).st_size // args.size
            rng = random.Random(0x5EED)
            offsets = [rng.randrange(blocks) * args.size for _ in range(OFFSETS)]
            for offset in offsets[:4096]:  # warm the page cache
                os.pread(fd, args.size, offset)
            contenders = ["read", "read_into", "read_fixed", "read_fixed_file"]
            rates: dict[str, list[float]] = {c: [] for c in contenders}
            for _ in range(args.rounds):
                for contender in contenders:
                    rates[contender].append(
                        run_round(contender, fd, offsets, args.qd, args.size, args.seconds)
                    )
        finally:
            os.close(fd)
    finally:
        if created:
            os.unlink(path)

    base = statistics.median(rates["read"])
    report: dict[str, Any] = {"size": args.size, "qd": args.qd, "rounds": args.rounds}
    print(f"{args.size}-byte page-cached reads, {args.qd} per submission, median of {args.rounds}")
    for contender in contenders:
        median = statistics.median(rates[contender])
        gbps = median * args.size / 1e9
        print(
            f"  {contender:16} {median:12,.0f} reads/s  {gbps:6.3f} GB/s  "
            f"x{median / base:.2f} of read"
        )
        report[contender] = {"reads_per_sec": round(median), "ratio_to_read": median / base}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
