"""Soak run: millions of mixed operations, watching for anything that grows without bound.

    python benches/soak.py --seconds 600 --seed 7       # a long run (10 minutes)
    python benches/soak.py --seconds 20                 # a short one
    python benches/soak.py --seconds 12 --inject-leak   # proves the check catches a leak

Each round mixes, on one long-lived ring: file writes and reads (the data read back is
checked), send/recv on a socket pair (checked), opens and closes, timeouts that expire,
reads on an idle pipe that are cancelled, and no-ops. Every few rounds it also makes a
short-lived ring, leaves reads and receives in flight on it, and gets rid of it one of three
ways: ``close()``, leaving a ``with`` block, or dropping the last reference without closing.

Throughout, it samples the resident set size (VmRSS), the number of open descriptors
(/proc/self/fd), the number of live Python objects, and the long-lived ring's in-flight table
(``IoUring.in_flight``: its peak within each sample window, and after every round, when it
must be 0).

The verdict (exit status 1 and a message when it fails): after a warm-up (the first tenth of
the run, at least 3 s), the samples are split into quarters; a measure grows without bound if
the highest value of the last quarter exceeds the highest of the first quarter by more than
its tolerance: RSS by 16 MiB + 10%, descriptors by 8, Python objects by 10% + 2000 (the
soak's own samples are not counted), in-flight peak by one round's worth of operations (48).
A ring that still has operations in flight after a round has drained fails at once.
"""

from __future__ import annotations

import argparse
import errno
import gc
import json
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from century_ring import FileOpenFlag, FileOpenMode, make_io_ring

BLOCK = 4096
FILE_BLOCKS = 256
#: Operations one round queues at most (24 draws, two operations for some).
MAX_PER_ROUND = 48
SCRATCH_ROOT = "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir()


@dataclass
class Sample:
    t: float
    ops: int
    rss_kib: int
    fds: int
    objects: int
    in_flight_peak: int


@dataclass
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)


#: measure -> (absolute tolerance, relative tolerance), see the module docstring.
TOLERANCES: dict[str, tuple[float, float]] = {
    "rss_kib": (16 * 1024, 0.10),
    "fds": (8, 0.0),
    "objects": (2000, 0.10),
    # The peak depends on how many operations a round happens to queue (up to
    # MAX_PER_ROUND); growing by more than one round's worth is growth.
    "in_flight_peak": (MAX_PER_ROUND, 0.0),
}


def judge(samples: Sequence[Sample], warmup_s: float) -> Verdict:
    """The growth rule: the last quarter's highest value against the first quarter's."""
    steady = [s for s in samples if s.t >= warmup_s]
    if len(steady) < 8:
        return Verdict(False, [f"too few samples after the warm-up ({len(steady)}); run longer"])
    quarter = len(steady) // 4
    first, last = steady[:quarter], steady[-quarter:]
    problems = []
    for measure, (absolute, relative) in TOLERANCES.items():
        before = max(getattr(s, measure) for s in first)
        after = max(getattr(s, measure) for s in last)
        allowed = before + absolute + relative * before
        if after > allowed:
            problems.append(
                f"{measure} grew: first quarter max {before}, last quarter max {after} "
                f"(allowed up to {allowed:.0f})"
            )
    return Verdict(not problems, problems)


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class Soak:
    def __init__(self, seed: int, workdir: Path, inject_leak: bool = False) -> None:
        self.rng = random.Random(seed)
        self.dir = workdir
        self.inject_leak = inject_leak
        self.leak: list[bytes] = []
        self.started = time.monotonic()
        self.counts: dict[str, int] = {}
        self.ops = 0
        self.rings_made = 0
        self.in_flight_peak = 0
        self.samples_taken = 0
        self.data_path = workdir / "data"
        self.data = bytes(self.rng.randrange(256) for _ in range(BLOCK)) * FILE_BLOCKS
        self.data_path.write_bytes(self.data)
        self.data_fd = os.open(self.data_path, os.O_RDONLY)
        self.out_fd = os.open(workdir / "out", os.O_RDWR | os.O_CREAT, 0o600)
        self.idle_r, self.idle_w = os.pipe()
        self.sock_a, self.sock_b = socket.socketpair()
        self.ring = make_io_ring(entries=128)

    def close(self) -> None:
        self.ring.close()
        for fd in (self.data_fd, self.out_fd, self.idle_r, self.idle_w):
            os.close(fd)
        self.sock_a.close()
        self.sock_b.close()

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n
        self.ops += n

    # -- one round on the long-lived ring ------------------------------------------------------

    def round(self) -> None:
        ring, rng = self.ring, self.rng
        checks: dict[int, tuple[str, Callable[[object], None] | None]] = {}

        def expect(ud: int, kind: str, check: Callable[[object], None] | None = None) -> None:
            checks[ud] = (kind, check)

        for _ in range(rng.randrange(4, MAX_PER_ROUND // 2)):
            what = rng.random()
            if what < 0.25:
                block = rng.randrange(FILE_BLOCKS)
                # 16 blocks: a read the kernel makes straight into its bytes (16 KiB and up).
                size = rng.choice([1, 512, BLOCK, 16 * BLOCK])
                want = self.data[block * BLOCK : block * BLOCK + size]
                expect(ring.prep_read(self.data_fd, size, block * BLOCK), "read", _buf(want))
            elif what < 0.45:
                payload = rng.randbytes(rng.choice([1, 64, BLOCK]))
                ud = ring.prep_write(self.out_fd, payload, rng.randrange(64) * BLOCK)
                expect(ud, "write", _result(len(payload)))
            elif what < 0.6:
                payload = rng.randbytes(rng.randrange(1, 2048))
                expect(ring.prep_send(self.sock_a, payload), "send", _result(len(payload)))
                expect(ring.prep_recv(self.sock_b, len(payload)), "recv", _buf(payload))
            elif what < 0.7:
                flags = {FileOpenFlag.CREATE_IF_NOT_EXISTS}
                name = str(self.dir / f"f{rng.randrange(32)}")
                expect(ring.prep_openat(None, name, FileOpenMode.WRITE_ONLY, flags), "open")
            elif what < 0.8:
                ud = ring.prep_timeout(0, rng.randrange(1, 200_000))
                expect(ud, "timeout", _result(-errno.ETIME))
            elif what < 0.9:
                target = ring.prep_read(self.idle_r, rng.choice([16, 16 * BLOCK]))
                ring.submit()
                expect(target, "cancelled", _result(-errno.ECANCELED))
                expect(ring.prep_cancel(target), "cancel", _result(0))
            else:
                expect(ring.prep_nop(), "nop", _result(0))
        self.in_flight_peak = max(self.in_flight_peak, ring.in_flight)
        deadline = time.monotonic() + 30
        while checks:
            if time.monotonic() > deadline:
                raise AssertionError(f"no completion for {sorted(checks)} within 30 s")
            ring.submit_and_wait(1)
            for cqe in ring.get_completion_entries():
                kind, check = checks.pop(cqe.user_data)
                if check is not None:
                    check(cqe)
                if kind == "open":
                    if cqe.result < 0:
                        raise AssertionError(f"open failed: {cqe!r}")
                    checks[ring.prep_close(cqe.result)] = ("close", _result(0))
                self.count(kind)
        if ring.in_flight != 0:
            raise AssertionError(f"{ring.in_flight} operations still in flight after a round")
        if self.inject_leak:
            # 6 MiB per second of run time, however fast the rounds go.
            due = int((time.monotonic() - self.started) * 6 * 16)
            while len(self.leak) < due:
                self.leak.append(os.urandom(64 << 10))

    # -- short-lived rings, ended with work in flight -------------------------------------------

    def short_lived_ring(self) -> None:
        rng = self.rng
        ring = make_io_ring(entries=rng.choice([4, 16, 64]))
        self.rings_made += 1
        for _ in range(rng.randrange(1, 8)):
            ring.prep_read(self.idle_r, rng.choice([32, 16 * BLOCK]))
            ring.prep_recv(self.sock_a, 32)
        ring.prep_read(self.data_fd, BLOCK, 0)
        ring.prep_write(self.out_fd, b"x" * 100, 0)
        ring.submit()
        how = rng.randrange(3)
        if how == 0:
            ring.close()
        elif how == 1:
            with ring:
                pass
        else:
            del ring  # dropped without close: the destructor cancels and drains
        self.count("ring")
        # The cancelled reads and receives stole nothing.
        os.write(self.idle_w, b"p")
        if os.read(self.idle_r, 10) != b"p":
            raise AssertionError("a cancelled pipe read survived its ring")
        self.sock_b.sendall(b"s")
        if self.sock_a.recv(10) != b"s":
            raise AssertionError("a cancelled recv survived its ring")

    def sample(self, t: float) -> Sample:
        # Not counting the Sample objects this run keeps (one per sample, so far).
        objects = len(gc.get_objects()) - self.samples_taken
        self.samples_taken += 1
        s = Sample(t, self.ops, rss_kib(), fd_count(), objects, self.in_flight_peak)
        self.in_flight_peak = 0
        return s


def _result(want: int) -> Callable[[object], None]:
    def check(cqe: object) -> None:
        if getattr(cqe, "result", None) != want:
            raise AssertionError(f"expected result {want}: {cqe!r}")

    return check


def _buf(want: bytes) -> Callable[[object], None]:
    def check(cqe: object) -> None:
        if getattr(cqe, "buffer", None) != want:
            raise AssertionError(f"wrong data ({len(want)} bytes expected): {cqe!r}")

    return check


def run(
    seconds: float,
    seed: int,
    sample_every: float | None = None,
    inject_leak: bool = False,
    progress: Callable[[Sample], None] | None = None,
) -> dict[str, object]:
    """Runs the soak for ``seconds`` and returns its report (``report["ok"]`` is the verdict)."""
    sample_every = sample_every or max(0.25, seconds / 200)
    warmup = max(3.0, seconds / 10)
    with tempfile.TemporaryDirectory(dir=SCRATCH_ROOT, prefix="century-ring-soak-") as d:
        soak = Soak(seed, Path(d), inject_leak)
        samples: list[Sample] = []
        start = time.monotonic()
        next_sample = start
        rounds = 0
        try:
            while True:
                now = time.monotonic()
                if now >= next_sample:
                    samples.append(soak.sample(now - start))
                    if progress:
                        progress(samples[-1])
                    next_sample += sample_every
                if now - start >= seconds:
                    break
                soak.round()
                rounds += 1
                if rounds % 8 == 0:
                    soak.short_lived_ring()
        finally:
            soak.close()
        elapsed = time.monotonic() - start
    verdict = judge(samples, warmup)
    return {
        "ok": verdict.ok,
        "problems": verdict.problems,
        "seed": seed,
        "seconds": round(elapsed, 1),
        "rounds": rounds,
        "operations": soak.ops,
        "ops_per_second": round(soak.ops / elapsed),
        "counts": soak.counts,
        "rings_made": soak.rings_made,
        "rss_kib": {
            "first": samples[0].rss_kib,
            "peak": max(s.rss_kib for s in samples),
            "final": samples[-1].rss_kib,
        },
        "fds": {
            "first": samples[0].fds,
            "peak": max(s.fds for s in samples),
            "final": samples[-1].fds,
        },
        "objects": {"first": samples[0].objects, "final": samples[-1].objects},
        "in_flight_peak": max(s.in_flight_peak for s in samples),
        "samples": [asdict(s) for s in samples],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--sample-every", type=float, default=None, help="seconds per sample")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument(
        "--inject-leak", action="store_true", help="leak 6 MiB a second (tests the check)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)

    def progress(s: Sample) -> None:
        if not args.quiet:
            print(
                f"{s.t:8.1f}s  ops {s.ops:>11,}  rss {s.rss_kib / 1024:7.1f} MiB  "
                f"fds {s.fds:4}  objects {s.objects:>8,}  in-flight peak {s.in_flight_peak}",
                flush=True,
            )

    report = run(args.seconds, seed, args.sample_every, args.inject_leak, progress)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=1))
    if not report["ok"]:
        print("SOAK FAILED: " + "; ".join(report["problems"]), file=sys.stderr)  # type: ignore[arg-type]
        return 1
    print(f"soak passed: {report['operations']:,} operations in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
