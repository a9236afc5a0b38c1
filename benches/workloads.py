"""The in-Python contenders of the benchmark suite, one measurement per process.

``benches/run.py`` starts this script once per measurement, so every contender begins in a fresh
interpreter, exactly as the native reference does, and prints one JSON line::

    python benches/workloads.py CONTENDER WORKLOAD [--batch N] [--qd N] [--size B]
                                [--seconds S] [--file F] [--direct] [--mode batch|kept|refill]
                                [--warmup BATCHES]

Contenders and the workloads each can run:

``century_ring``  ``nop``, ``read``, ``overhead``
``liburing``      ``nop``, ``read`` (the ``liburing`` package from PyPI)
``os``            ``pread``: an ``os.pread`` loop; with ``--direct`` an ``os.preadv`` loop into
                  one 4096-aligned buffer, since ``os.pread`` returns an unaligned ``bytes``
                  that O_DIRECT refuses with EINVAL
``pool``          ``read``: ``--qd`` threads of a ``ThreadPoolExecutor``, each calling
                  ``os.preadv`` into its own 4096-aligned buffer in a loop

Every line carries ``ops``, ``seconds``, ``ops_per_sec``, ``cpu_seconds``, ``cpu_us_per_op``
and ``faults_per_op``; CPU time is ``resource.getrusage(RUSAGE_SELF)`` user + system over the
timed window, which counts every thread of the process, and the faults are its minor page
faults (``ru_minflt``: memory touched for the first time since the process got it). Read
offsets are random multiples of ``--size`` drawn before the window starts, the same sequence
for every contender.

``century_ring read`` has three loops (``--mode``): ``batch`` queues ``--qd`` reads, waits for
them all, reaps them and drops the list before the next batch (the drop loop); ``kept`` does
the same but keeps each batch's list alive until the next batch has been reaped, as a user's
``got = ring.get_completion_entries()`` does; ``refill`` keeps ``--qd`` reads in flight (the
O_DIRECT loop). Its line also carries ``reap_ns_per_cqe``, the time spent inside
``get_completion_entries()`` per completion (``perf_counter_ns`` around each call, less the
clock's own cost, which ``clock_ns`` gives), ``reaps`` (calls made) and ``window_start`` (the
window's start as ``time.time()``, to line it up with a trace).
"""

from __future__ import annotations

import argparse
import array
import json
import mmap
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# A power of two, so the next offset is one AND away; enough that an O_DIRECT run of a few
# seconds never reads the same offset list entry twice.
OFFSET_COUNT = 1 << 18
OFFSET_MASK = OFFSET_COUNT - 1


def cpu_seconds() -> float:
    """User plus system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def minor_faults() -> int:
    """Page faults of this process so far that needed no disk I/O (a fresh page, mostly)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Window:
    """Wall and CPU time, and minor page faults, of one timed window."""

    def __init__(self) -> None:
        self.faults0 = minor_faults()
        self.cpu0 = cpu_seconds()
        self.epoch0 = time.time()
        self.wall0 = time.perf_counter()
        self.seconds = 0.0
        self.cpu = 0.0
        self.faults = 0

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.wall0
        self.cpu = cpu_seconds() - self.cpu0
        self.faults = minor_faults() - self.faults0


def outcome(ops: int, window: Window, **extra: Any) -> dict[str, Any]:
    """The JSON fields every measurement reports."""
    return {
        **extra,
        "ops": ops,
        "seconds": round(window.seconds, 6),
        "ops_per_sec": round(ops / window.seconds, 1),
        "cpu_seconds": round(window.cpu, 6),
        "cpu_us_per_op": round(window.cpu * 1e6 / max(ops, 1), 4),
        "faults_per_op": round(window.faults / max(ops, 1), 4),
    }


# Random numbers are drawn this many at a time: 16 KiB of them, well below glibc's 128 KiB
# mmap threshold (see random_offsets).
OFFSET_CHUNK = 4096


def random_offsets(path: str, size: int) -> list[int]:
    """OFFSET_COUNT random offsets, multiples of ``size`` inside the file at ``path``.

    The random bytes are drawn in small pieces, not as one 1 MiB ``bytes``: glibc serves a
    request of 128 KiB or more with its own ``mmap``, and freeing such a block raises its trim
    threshold to twice the block's size for the rest of the process. A 1 MiB temporary freed
    before the window would let the measured loop run with a 2 MiB threshold instead of the
    128 KiB a user's program starts with, and hide what freeing whole batches of results does
    to the heap (benches/README.md, "the kept loop"). The offsets are the same either way.
    """
    blocks = os.stat(path).st_size // size
    if blocks < 1:
        raise SystemExit(f"{path} is smaller than one {size}-byte block")
    rng = random.Random(0x5EED)
    offsets: list[int] = []
    for _ in range(OFFSET_COUNT // OFFSET_CHUNK):
        raw = array.array("I", rng.randbytes(4 * OFFSET_CHUNK))
        offsets.extend(r % blocks * size for r in raw)
    return offsets


def open_file(path: str, direct: bool) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECT if direct else 0))


def check(result: int, size: int) -> None:
    if result != size:
        detail = os.strerror(-result) if result < 0 else f"short read of {result} bytes"
        raise SystemExit(f"read failed: {detail}")


# --- century_ring ----------------------------------------------------------------------------


def ring_entries(depth: int) -> int:
    """A submission-queue size that holds ``depth`` entries (a power of two, at least 8)."""
    return max(8, 1 << (depth - 1).bit_length())


def century_ring_nop(batch: int, seconds: float) -> dict[str, Any]:
    """Queue ``batch`` no-ops, submit and wait for all of them, reap them; repeat."""
    from century_ring import make_io_ring

    with make_io_ring(ring_entries(batch)) as ring:
        prep_nop = ring.prep_nop
        submit_and_wait = ring.submit_and_wait
        reap = ring.get_completion_entries
        ops = 0
        window = Window()
        deadline = window.wall0 + seconds
        while True:
            for _ in range(batch):
                prep_nop()
            submit_and_wait(batch)
            for cqe in reap():
                if cqe.result < 0:
                    check(cqe.result, 0)
                ops += 1
            if time.perf_counter() >= deadline:
                break
        window.stop()
    return outcome(ops, window, batch=batch)


def timer_ns(clock: Callable[[], int]) -> int:
    """What one ``clock()`` call adds to an interval it ends: the least of many back-to-back
    pairs."""
    return min(-(clock() - clock()) for _ in range(1000))


def century_ring_read(
    path: str, qd: int, size: int, seconds: float, direct: bool, mode: str, warmup: int = 0
) -> dict[str, Any]:
    """Reads of ``size`` bytes at random offsets, ``qd`` at a time.

    ``batch`` (page-cached reads, the drop loop): queue ``qd`` reads, ``submit_and_wait(qd)``,
    reap them all, drop the list, start over. ``kept``: the same, but the list of one batch
    stays alive while the next batch is queued and reaped, and is dropped only when the next
    list takes its place, as in ``got = ring.get_completion_entries()`` at the top of a user's
    loop. ``refill`` (O_DIRECT): keep ``qd`` reads in flight, queueing a new read for every
    completion reaped.

    Every mode times each ``get_completion_entries()`` call with ``perf_counter_ns`` (its end
    is also the deadline check) and reports ``reap_ns_per_cqe``: the time inside those calls,
    less the clock's own cost per call, divided by the completions. The list a kept loop drops
    is freed after the call's timing ends, as the drop loop's list is.

    ``warmup`` batches (batch and kept modes) run the same loop before the window opens: with
    large reads at a deep queue a window of a few seconds holds only a few batches, and the
    first one, which meets a heap that has never held a batch, is not the steady state.
    """
    from century_ring import make_io_ring

    offsets = random_offsets(path, size)
    fd = open_file(path, direct)
    clock = time.perf_counter_ns
    timer = timer_ns(clock)
    keep = mode == "kept"
    i = 0
    ops = 0
    reaps = 0
    reap_ns = 0
    with make_io_ring(ring_entries(qd)) as ring:
        prep_read = ring.prep_read
        submit_and_wait = ring.submit_and_wait
        reap = ring.get_completion_entries
        if mode == "refill":
            window = Window()
            deadline = clock() + int(seconds * 1e9)
            for _ in range(qd):
                prep_read(fd, size, offsets[i])
                i = (i + 1) & OFFSET_MASK
            while True:
                submit_and_wait(1)
                t0 = clock()
                cqes = reap()
                t1 = clock()
                reap_ns += t1 - t0
                reaps += 1
                for cqe in cqes:
                    if cqe.result != size:
                        check(cqe.result, size)
                    ops += 1
                    prep_read(fd, size, offsets[i])
                    i = (i + 1) & OFFSET_MASK
                if t1 >= deadline:
                    break
            window.stop()
            del cqes
            # Let the reads still in flight finish before the ring closes (outside the window).
            ring.submit()
            while ring.in_flight:
                submit_and_wait(1)
                reap()
        else:
            got = None  # the kept loop's previous batch
            for _ in range(warmup):
                for _ in range(qd):
                    prep_read(fd, size, offsets[i])
                    i = (i + 1) & OFFSET_MASK
                submit_and_wait(qd)
                cqes = reap()
                for cqe in cqes:
                    if cqe.result != size:
                        check(cqe.result, size)
                if keep:
                    got = cqes
                else:
                    cqes = cqe = None
            window = Window()
            deadline = clock() + int(seconds * 1e9)
            while True:
                for _ in range(qd):
                    prep_read(fd, size, offsets[i])
                    i = (i + 1) & OFFSET_MASK
                submit_and_wait(qd)
                t0 = clock()
                cqes = reap()
                t1 = clock()
                reap_ns += t1 - t0
                reaps += 1
                for cqe in cqes:
                    if cqe.result != size:
                        check(cqe.result, size)
                    ops += 1
                if keep:
                    got = cqes  # frees the batch before, keeps this one until the next reap
                else:
                    # Frees this batch, the loop's last event too, before the next is queued.
                    cqes = cqe = None
                if t1 >= deadline:
                    break
            window.stop()
            del got, cqes
    os.close(fd)
    return outcome(
        ops,
        window,
        qd=qd,
        size=size,
        direct=direct,
        mode=mode,
        reaps=reaps,
        reap_ns_per_cqe=round(max(reap_ns - reaps * timer, 0) / max(ops, 1), 2),
        clock_ns=timer,
        # Wall-clock time at the start of the window, for lining it up with a trace.
        window_start=window.epoch0,
    )


def median_ns(samples: list[float]) -> float:
    return round(statistics.median(samples), 2)


def century_ring_overhead(path: str, seconds: float) -> dict[str, Any]:
    """Nanoseconds per call of the ring's hot-path methods, each measured on its own.

    - ``prep_read_ns``: one ``prep_read`` call (4096 queued, then one submit outside the timing);
    - ``prep_nop_ns``: one ``prep_nop`` call, the same way;
    - ``reap_ns_per_cqe``: ``get_completion_entries()`` over 4096 ready no-ops, per completion;
    - ``reap_touch_ns_per_cqe``: the same plus reading ``result`` and ``user_data`` of each;
    - ``submit_empty_ns``: ``submit()`` with nothing queued;
    - ``submit_32_nops_ns``: ``submit()`` of 32 queued no-ops (the kernel runs them inline).

    Each is the median over repeated batches within its share of ``seconds``.
    """
    from century_ring import make_io_ring

    n = 4096
    share = seconds / 6
    fd = open_file(path, direct=False)
    clock = time.perf_counter_ns
    result: dict[str, Any] = {}
    with make_io_ring(n) as ring:
        prep_read = ring.prep_read
        prep_nop = ring.prep_nop
        submit = ring.submit
        submit_and_wait = ring.submit_and_wait
        reap = ring.get_completion_entries

        def repeat(measure: Callable[[], float]) -> float:
            samples = [measure()]
            end = time.perf_counter() + share
            while time.perf_counter() < end or len(samples) < 3:
                samples.append(measure())
            return median_ns(samples)

        def prep_reads() -> float:
            t0 = clock()
            for _ in range(n):
                prep_read(fd, 4096, 0)
            t1 = clock()
            submit_and_wait(n)
            reap()
            return (t1 - t0) / n

        def prep_nops() -> float:
            t0 = clock()
            for _ in range(n):
                prep_nop()
            t1 = clock()
            submit_and_wait(n)
            reap()
            return (t1 - t0) / n

        def reap_only() -> float:
            for _ in range(n):
                prep_nop()
            submit_and_wait(n)
            t0 = clock()
            cqes = reap()
            t1 = clock()
            if len(cqes) != n:
                raise SystemExit(f"reaped {len(cqes)} completions, expected {n}")
            return (t1 - t0) / n

        def reap_touch() -> float:
            for _ in range(n):
                prep_nop()
            submit_and_wait(n)
            t0 = clock()
            total = 0
            for cqe in reap():
                total += cqe.result + cqe.user_data
            t1 = clock()
            return (t1 - t0) / n

        timer = timer_ns(clock)

        def submit_empty() -> float:
            t0 = clock()
            for _ in range(1000):
                submit()
            return (clock() - t0) / 1000

        def submit_nops() -> float:
            total = 0
            for _ in range(100):
                for _ in range(32):
                    prep_nop()
                t0 = clock()
                submit()
                total += clock() - t0 - timer
                reap()
            return total / 100

        window = Window()
        result["prep_read_ns"] = repeat(prep_reads)
        result["prep_nop_ns"] = repeat(prep_nops)
        result["reap_ns_per_cqe"] = repeat(reap_only)
        result["reap_touch_ns_per_cqe"] = repeat(reap_touch)
        result["submit_empty_ns"] = repeat(submit_empty)
        result["submit_32_nops_ns"] = repeat(submit_nops)
        window.stop()
    os.close(fd)
    result["seconds"] = round(window.seconds, 6)
    return result


# --- liburing (PyPI) -------------------------------------------------------------------------


def liburing_nop(batch: int, seconds: float) -> dict[str, Any]:
    """The ``nop`` loop written with the ``liburing`` package, the way its docs show.

    Completions are walked with ``CqeIter`` (liburing's ``io_uring_cqe_iter_next``, which
    handles the ring wrapping around) and released with one ``io_uring_cq_advance``.
    """
    import liburing as lu

    ring = lu.Ring()
    cqe = lu.Cqe()
    lu.io_uring_queue_init(ring_entries(batch), ring)
    get_sqe = lu.io_uring_get_sqe
    prep_nop = lu.io_uring_prep_nop
    submit_and_wait = lu.io_uring_submit_and_wait
    cq_advance = lu.io_uring_cq_advance
    cqe_iter = lu.CqeIter
    ops = 0
    try:
        window = Window()
        deadline = window.wall0 + seconds
        while True:
            for i in range(batch):
                sqe = get_sqe(ring)
                prep_nop(sqe)
                sqe.user_data = i
            submit_and_wait(ring, batch)
            seen = 0
            for _ in cqe_iter(ring, cqe):
                entry = cqe[0]
                if entry.res < 0:
                    check(entry.res, 0)
                seen += 1
            cq_advance(ring, seen)
            ops += seen
            if time.perf_counter() >= deadline:
                break
        window.stop()
    finally:
        lu.io_uring_queue_exit(ring)
    return outcome(ops, window, batch=batch)


def liburing_read(path: str, qd: int, size: int, seconds: float, direct: bool) -> dict[str, Any]:
    """Batch-mode reads with the ``liburing`` package into ``qd`` reused bytearrays."""
    import liburing as lu

    if direct:
        raise SystemExit("the liburing contender runs page-cached reads only")
    offsets = random_offsets(path, size)
    fd = open_file(path, direct)
    buffers = [bytearray(size) for _ in range(qd)]
    ring = lu.Ring()
    cqe = lu.Cqe()
    lu.io_uring_queue_init(ring_entries(qd), ring)
    get_sqe = lu.io_uring_get_sqe
    prep_read = lu.io_uring_prep_read
    submit_and_wait = lu.io_uring_submit_and_wait
    cq_advance = lu.io_uring_cq_advance
    cqe_iter = lu.CqeIter
    i = 0
    ops = 0
    try:
        window = Window()
        deadline = window.wall0 + seconds
        while True:
            for slot in range(qd):
                sqe = get_sqe(ring)
                prep_read(sqe, fd, buffers[slot], offsets[i])
                sqe.user_data = slot
                i = (i + 1) & OFFSET_MASK
            submit_and_wait(ring, qd)
            seen = 0
            for _ in cqe_iter(ring, cqe):
                res = cqe[0].res
                if res != size:
                    check(res, size)
                seen += 1
            cq_advance(ring, seen)
            ops += seen
            if time.perf_counter() >= deadline:
                break
        window.stop()
    finally:
        lu.io_uring_queue_exit(ring)
        os.close(fd)
    return outcome(ops, window, qd=qd, size=size, direct=direct, mode="batch")


# --- the standard library ---------------------------------------------------------------------


def os_pread(path: str, size: int, seconds: float, direct: bool) -> dict[str, Any]:
    """One read at a time: ``os.pread`` (cached) or ``os.preadv`` into an aligned buffer."""
    offsets = random_offsets(path, size)
    fd = open_file(path, direct)
    i = 0
    ops = 0
    window = Window()
    deadline = window.wall0 + seconds
    if direct:
        buffers = [mmap.mmap(-1, size)]  # page-aligned, as O_DIRECT requires
        preadv = os.preadv
        while True:
            for _ in range(64):
                n = preadv(fd, buffers, offsets[i])
                if n != size:
                    check(n, size)
                i = (i + 1) & OFFSET_MASK
            ops += 64
            if time.perf_counter() >= deadline:
                break
    else:
        pread = os.pread
        while True:
            for _ in range(64):
                if len(pread(fd, size, offsets[i])) != size:
                    raise SystemExit("short read")
                i = (i + 1) & OFFSET_MASK
            ops += 64
            if time.perf_counter() >= deadline:
                break
    window.stop()
    os.close(fd)
    return outcome(ops, window, qd=1, size=size, direct=direct)


def pool_read(path: str, qd: int, size: int, seconds: float, direct: bool) -> dict[str, Any]:
    """``qd`` threads, each an ``os.preadv`` loop into its own page-aligned buffer."""
    offsets = random_offsets(path, size)
    fd = open_file(path, direct)

    def worker(k: int, deadline: float) -> int:
        buffers = [mmap.mmap(-1, size)]
        preadv = os.preadv
        clock = time.perf_counter
        i = k * (OFFSET_COUNT // qd)  # each thread reads its own stretch of the offset list
        done = 0
        while clock() < deadline:
            n = preadv(fd, buffers, offsets[i])
            if n != size:
                check(n, size)
            i = (i + 1) & OFFSET_MASK
            done += 1
        return done

    with ThreadPoolExecutor(max_workers=qd) as pool:
        window = Window()
        deadline = window.wall0 + seconds
        futures = [pool.submit(worker, k, deadline) for k in range(qd)]
        ops = sum(f.result() for f in futures)
        window.stop()
    os.close(fd)
    return outcome(ops, window, qd=qd, size=size, direct=direct, threads=qd)


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=["century_ring", "liburing", "os", "pool"])
    parser.add_argument("workload", choices=["nop", "read", "pread", "overhead"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--qd", type=int, default=1)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--file")
    parser.add_argument("--direct", action="store_true")
    parser.add_argument("--mode", choices=["batch", "kept", "refill"], default="batch")
    parser.add_argument(
        "--warmup", type=int, default=0, help="batches run before the window (batch, kept)"
    )
    args = parser.parse_args(argv)
    if args.workload != "nop" and not args.file:
        parser.error(f"{args.workload} needs --file")

    key = (args.contender, args.workload)
    if key == ("century_ring", "nop"):
        result = century_ring_nop(args.batch, args.seconds)
    elif key == ("century_ring", "read"):
        result = century_ring_read(
            args.file, args.qd, args.size, args.seconds, args.direct, args.mode, args.warmup
        )
    elif key == ("century_ring", "overhead"):
        result = century_ring_overhead(args.file, args.seconds)
    elif key == ("liburing", "nop"):
        result = liburing_nop(args.batch, args.seconds)
    elif key == ("liburing", "read"):
        result = liburing_read(args.file, args.qd, args.size, args.seconds, args.direct)
    elif key == ("os", "pread"):
        result = os_pread(args.file, args.size, args.seconds, args.direct)
    elif key == ("pool", "read"):
        result = pool_read(args.file, args.qd, args.size, args.seconds, args.direct)
    else:
        parser.error(f"{args.contender} does not run {args.workload}")
    print(json.dumps({"contender": args.contender, "workload": args.workload, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
