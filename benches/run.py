"""Century Ring benchmark suite: one command, every comparison in the same run.

    python benches/run.py                      # the full suite (5 rounds, about 9 minutes)
    python benches/run.py --quick              # a smoke run of about a minute
    python benches/run.py --only nop,read-cached --rounds 3 --seconds 1

Workloads: nop, read-cached, read-direct, echo, overhead, the async ones (issue 13):
aio-read-cached, aio-read-direct, aio-small-files, aio-echo, and the event loops' (issue 14):
loop-echo-protocol, loop-echo-streams, loop-echo-sock, loop-http, loop-callbacks (see
benches/README.md). Each measurement runs in its own process (benches/workloads.py,
benches/aio_workloads.py, benches/loop_workloads.py, benches/echo.py, or the native reference
in benches/native/); contenders alternate within every round and their order rotates from round
to round. The report gives medians over rounds, and ratios taken pair by pair within a round,
then the median of those ratios. Results go to OUT/latest.json, OUT/latest.md and
OUT/latest.png (OUT/NAME.* with --name NAME; the plot needs matplotlib). A missing liburing (the
PyPI contender), matplotlib, (for the async workloads) aiofiles, anyio, uvloop or trio, or (for
the loop workloads) uvloop, rloop, httptools or uvicorn is pip-installed as a wheel first, and a
missing wrk apt-get-installed, unless --no-install is given.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHES = Path(__file__).resolve().parent
REPO = BENCHES.parent
NATIVE_DIR = BENCHES / "native"
NATIVE_BIN = NATIVE_DIR / "target" / "release" / "century-ring-native-bench"
PYTHON = sys.executable

WORKLOADS = (
    "nop",
    "read-cached",
    "read-direct",
    "echo",
    "overhead",
    "aio-read-cached",
    "aio-read-direct",
    "aio-small-files",
    "aio-echo",
    "loop-echo-protocol",
    "loop-echo-streams",
    "loop-echo-sock",
    "loop-http",
    "loop-callbacks",
)
BATCHES = (32, 256)
# Queue depths per read workload. Page-cached reads go deep (issue 12: freeing whole batches of
# results made glibc trim the heap every batch from QD 64 on); O_DIRECT keeps its four depths,
# as its loop reaps a few completions at a time and its thread pool would need 512 threads.
QDS: dict[str, tuple[int, ...]] = {
    "read-cached": (1, 8, 32, 64, 128, 256, 512),
    "read-direct": (1, 8, 32, 128),
}
#: The depth other depths are compared with (issue 12's targets).
BASE_QD = 32
READ_SIZE = 4096
CACHED_SIZE = 64 << 20
DIRECT_SIZE = 1 << 30
ECHO_CONNECTIONS = 64
ECHO_MESSAGE = 64

# The async workloads (issue 13): reads by this many concurrent tasks (--quick: the first and
# the 64 the targets name), small files and echo connections 64 at a time.
AIO_TASKS: dict[str, tuple[int, ...]] = {
    "aio-read-cached": (1, 16, 64, 256),
    "aio-read-direct": (1, 16, 64, 256),
}
AIO_QUICK_TASKS = (1, 64)
AIO_CONCURRENCY = 64
SMALL_FILES = 1000
SMALL_FILE_SIZE = 16 << 10
AIO_ECHO_MESSAGE = 1024
LOOPS = ("asyncio", "uvloop", "trio")
# century_ring.aio on each loop, and its rivals (the file libraries and the executor on
# asyncio, as their users run them; the synchronous ring at the same depth).
AIO_RING = tuple(f"century_ring.aio {loop}" for loop in LOOPS)
AIO_FILE_RIVALS = ("aiofiles", "anyio.open_file", "run_in_executor", "century_ring sync")
AIO_ECHO_RING = tuple(f"century_ring.aio streams {loop}" for loop in LOOPS)
AIO_ECHO_ANYIO = tuple(f"anyio streams {loop}" for loop in LOOPS)
#: aio_workloads.py's contender and loop for each name the table uses.
AIO_PROCESS: dict[str, tuple[str, str]] = {
    **{f"century_ring.aio {loop}": ("century_ring", loop) for loop in LOOPS},
    **{f"century_ring.aio streams {loop}": ("century_ring", loop) for loop in LOOPS},
    **{f"anyio streams {loop}": ("anyio", loop) for loop in LOOPS},
    "century_ring.aio open_file": ("open_file", "asyncio"),
    "aiofiles": ("aiofiles", "asyncio"),
    "anyio.open_file": ("anyio", "asyncio"),
    "run_in_executor": ("executor", "asyncio"),
    "century_ring sync": ("sync", "asyncio"),
}
#: The packages each async contender needs importable besides anyio (century_ring.aio's own
#: dependency, needed by every one of them).
AIO_NEEDS: dict[str, tuple[str, ...]] = {
    "century_ring.aio uvloop": ("uvloop",),
    "century_ring.aio trio": ("trio",),
    "century_ring.aio streams uvloop": ("uvloop",),
    "century_ring.aio streams trio": ("trio",),
    "anyio streams uvloop": ("uvloop",),
    "anyio streams trio": ("trio",),
    "aiofiles": ("aiofiles",),
}
AIO_PACKAGES = ("anyio", "aiofiles", "uvloop", "trio")

# The event loops (issue 14): four loops under the same servers and micro-benchmarks
# (benches/loop_workloads.py), loaded by the native echo-client or wrk.
LOOP_CONTENDERS = ("century_ring", "uvloop", "asyncio", "rloop")
#: What each loop needs importable; the name is also its key in Settings.skipped.
LOOP_NEEDS = {"century_ring": "century_ring.asyncio", "uvloop": "uvloop", "rloop": "rloop"}
LOOP_PACKAGES = ("uvloop", "rloop", "httptools", "uvicorn")
#: The echo workloads and the server kind loop_workloads.py runs for each.
LOOP_ECHO = {
    "loop-echo-protocol": "protocol",
    "loop-echo-streams": "streams",
    "loop-echo-sock": "sock",
}
LOOP_SIZES = (1024, 10240, 102400)
LOOP_CONNECTIONS = (1, 16, 64)
#: The one echo setting of loop-echo-sock, and of the other two in a quick run.
LOOP_HEADLINE = {"size": 1024, "conns": 64}
LOOP_HTTP_SERVERS = ("httptools", "uvicorn")
LOOP_HTTP_CONNECTIONS = 64
LOOP_BENCHES = ("call_soon", "call_later", "sleep0", "tasks")

# What the table calls each contender, per workload.
CONTENDERS: dict[str, tuple[str, ...]] = {
    "nop": ("century_ring", "native", "liburing"),
    "read-cached": (
        "century_ring",
        "century_ring kept",
        "os.pread",
        "native",
        "native pread",
        "liburing",
    ),
    "read-direct": ("century_ring", "os.pread", "thread pool", "native"),
    "echo": ("century_ring", "selectors", "asyncio", "native"),
    "overhead": ("century_ring",),
    "aio-read-cached": (*AIO_RING, *AIO_FILE_RIVALS),
    "aio-read-direct": (*AIO_RING, *AIO_FILE_RIVALS),
    "aio-small-files": (*AIO_RING, "century_ring.aio open_file", *AIO_FILE_RIVALS),
    "aio-echo": (*AIO_ECHO_RING, *AIO_ECHO_ANYIO),
    # native: the native reference's echo-server, beside the loops (a reference, not a target).
    **{workload: (*LOOP_CONTENDERS, "native") for workload in LOOP_ECHO},
    "loop-http": LOOP_CONTENDERS,
    "loop-callbacks": LOOP_CONTENDERS,
}
# Contenders that do one read at a time whatever the queue depth: measured once per round
# (next to the QD 32 group) and compared with century_ring at every depth.
SERIAL = frozenset({"os.pread", "native pread"})
# century_ring's two page-cached loops: the list of each batch dropped before the next batch
# (batch mode), or kept alive until the next one is reaped (kept mode).
CENTURY_RING = ("century_ring", "century_ring kept")


@dataclass(frozen=True)
class Target:
    """One of issue 3's, 12's, 13's or 14's targets: a same-run ratio and the bound it must
    meet."""

    label: str
    workload: str
    # Parameters are ints (batch, qd, tasks, size, conns) or names (loop-http's server,
    # loop-callbacks' bench).
    numerator: tuple[str, dict[str, Any]]
    denominator: tuple[str, dict[str, Any]]
    metric: str
    op: str  # ">=" or "<="
    bound: float

    def met(self, ratio: float) -> bool:
        return ratio >= self.bound if self.op == ">=" else ratio <= self.bound

    def reference(
        self,
    ) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]] | None:
        """The native reference in century_ring's place: what no interpreter at all reaches
        against the same baseline (for one contender at two depths, the native reference at
        those depths), or None when the baseline is the native reference itself, and for the
        async, HTTP and callback workloads, which have no native reference."""
        if (
            self.denominator[0] == "native"
            or self.workload.startswith("aio-")
            or self.workload in ("loop-http", "loop-callbacks")
        ):
            return None
        if self.numerator[0] == self.denominator[0]:
            return ("native", self.numerator[1]), ("native", self.denominator[1])
        return ("native", self.numerator[1]), self.denominator


TARGETS = (
    Target(
        "nop batch 32: century_ring / native, ops/s",
        "nop",
        ("century_ring", {"batch": 32}),
        ("native", {"batch": 32}),
        "ops_per_sec",
        ">=",
        0.4,
    ),
    Target(
        "read-cached QD 32: century_ring / os.pread, ops/s",
        "read-cached",
        ("century_ring", {"qd": 32}),
        ("os.pread", {"qd": 1}),
        "ops_per_sec",
        ">=",
        1.0,
    ),
    Target(
        "read-cached QD 32: century_ring / native, ops/s",
        "read-cached",
        ("century_ring", {"qd": 32}),
        ("native", {"qd": 32}),
        "ops_per_sec",
        ">=",
        0.9,
    ),
    Target(
        "read-direct QD 32: century_ring / native, IOPS",
        "read-direct",
        ("century_ring", {"qd": 32}),
        ("native", {"qd": 32}),
        "ops_per_sec",
        ">=",
        0.9,
    ),
    Target(
        "read-direct QD 32: century_ring / thread pool, IOPS",
        "read-direct",
        ("century_ring", {"qd": 32}),
        ("thread pool", {"qd": 32}),
        "ops_per_sec",
        ">=",
        1.1,
    ),
    Target(
        "read-direct QD 32: century_ring / thread pool, CPU per I/O",
        "read-direct",
        ("century_ring", {"qd": 32}),
        ("thread pool", {"qd": 32}),
        "cpu_us_per_op",
        "<=",
        1 / 3,
    ),
    Target(
        "echo: century_ring / selectors, messages/s",
        "echo",
        ("century_ring", {}),
        ("selectors", {}),
        "ops_per_sec",
        ">=",
        1.3,
    ),
    # Issue 12: no cliff at deep queues, in either loop.
    *(
        Target(
            f"read-cached {loop} loop QD {qd} / QD {BASE_QD}: century_ring, ops/s",
            "read-cached",
            (contender, {"qd": qd}),
            (contender, {"qd": BASE_QD}),
            "ops_per_sec",
            ">=",
            1.0,
        )
        for contender, loop in (("century_ring kept", "kept"), ("century_ring", "drop"))
        for qd in (128, 256)
    ),
    # Issue 13: the async layer against what asyncio users have today, 64 tasks at a time.
    *(
        Target(
            f"aio-read-cached 64 tasks: century_ring.aio asyncio / {other}, {what}",
            "aio-read-cached",
            ("century_ring.aio asyncio", {"tasks": 64}),
            (other, {"tasks": 64}),
            metric,
            op,
            bound,
        )
        for other, what, metric, op, bound in (
            ("aiofiles", "reads/s", "ops_per_sec", ">=", 10.0),
            ("run_in_executor", "reads/s", "ops_per_sec", ">=", 4.0),
            ("aiofiles", "CPU per read", "cpu_us_per_op", "<=", 0.1),
            ("century_ring sync", "reads/s (the sync ring at QD 64)", "ops_per_sec", ">=", 0.5),
        )
    ),
    *(
        Target(
            f"aio-read-direct 64 tasks: century_ring.aio asyncio / aiofiles, {what}",
            "aio-read-direct",
            ("century_ring.aio asyncio", {"tasks": 64}),
            ("aiofiles", {"tasks": 64}),
            metric,
            op,
            bound,
        )
        for what, metric, op, bound in (
            ("IOPS", "ops_per_sec", ">=", 2.0),
            ("CPU per I/O", "cpu_us_per_op", "<=", 0.25),
        )
    ),
    Target(
        "aio-small-files 64 tasks: century_ring.aio asyncio / aiofiles, files/s",
        "aio-small-files",
        ("century_ring.aio asyncio", {}),
        ("aiofiles", {}),
        "ops_per_sec",
        ">=",
        5.0,
    ),
    *(
        Target(
            f"aio-echo {loop}: century_ring.aio streams / anyio streams, messages/s",
            "aio-echo",
            (f"century_ring.aio streams {loop}", {}),
            (f"anyio streams {loop}", {}),
            "ops_per_sec",
            ">=",
            1.3,
        )
        for loop in LOOPS
    ),
    # Issue 14: century_ring.asyncio's loop against uvloop (and asyncio's own loop), same code.
    Target(
        "loop-echo-protocol 1 KiB, 64 conns: century_ring / uvloop, messages/s (aim 1.5)",
        "loop-echo-protocol",
        ("century_ring", LOOP_HEADLINE),
        ("uvloop", LOOP_HEADLINE),
        "ops_per_sec",
        ">=",
        1.3,
    ),
    Target(
        "loop-echo-streams 1 KiB, 64 conns: century_ring / uvloop, messages/s",
        "loop-echo-streams",
        ("century_ring", LOOP_HEADLINE),
        ("uvloop", LOOP_HEADLINE),
        "ops_per_sec",
        ">=",
        1.2,
    ),
    Target(
        "loop-echo-protocol 100 KiB, 64 conns: century_ring / uvloop, messages/s",
        "loop-echo-protocol",
        ("century_ring", {"size": 102400, "conns": 64}),
        ("uvloop", {"size": 102400, "conns": 64}),
        "ops_per_sec",
        ">=",
        1.0,
    ),
    *(
        Target(
            f"loop-http {server}: century_ring / uvloop, requests/s",
            "loop-http",
            ("century_ring", {"server": server}),
            ("uvloop", {"server": server}),
            "ops_per_sec",
            ">=",
            1.2,
        )
        for server in LOOP_HTTP_SERVERS
    ),
    *(
        Target(
            f"{workload} {size >> 10} KiB, {conns} conn{'s' * (conns > 1)}: "
            "century_ring / asyncio, messages/s",
            workload,
            ("century_ring", {"size": size, "conns": conns}),
            ("asyncio", {"size": size, "conns": conns}),
            "ops_per_sec",
            ">=",
            3.0,
        )
        for workload in LOOP_ECHO
        for size in LOOP_SIZES
        for conns in LOOP_CONNECTIONS
        if workload != "loop-echo-sock" or {"size": size, "conns": conns} == LOOP_HEADLINE
    ),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- settings ---------------------------------------------------------------------------------


@dataclass
class Settings:
    workloads: tuple[str, ...]
    rounds: int
    seconds: float
    echo_seconds: float
    #: seconds per measurement of the loop workloads (their servers' load, and callbacks)
    loop_seconds: float
    out: Path
    data_dir: Path
    quick: bool
    install: bool = True
    #: the results' file name without its extension: OUT/NAME.json, .md, .png
    name: str = "latest"
    skipped: dict[str, str] = field(default_factory=dict)
    #: package pip failed to install -> the last line pip printed
    install_failures: dict[str, str] = field(default_factory=dict)
    native: bool = False
    liburing: bool = False
    #: the wrk that loads loop-http's servers, once found or installed
    wrk: str | None = None

    @property
    def cached_file(self) -> Path:
        return self.data_dir / "century-ring-bench-64MiB.bin"

    @property
    def direct_file(self) -> Path:
        return self.data_dir / "century-ring-bench-1GiB.bin"

    @property
    def small_dir(self) -> Path:
        return self.data_dir / f"century-ring-bench-{SMALL_FILES}x{SMALL_FILE_SIZE >> 10}KiB"

    def aio_tasks(self, workload: str) -> tuple[int, ...]:
        """The task counts of an async read workload (fewer in a quick run)."""
        return AIO_QUICK_TASKS if self.quick else AIO_TASKS[workload]

    def loop_echo_grid(self, workload: str) -> list[dict[str, int]]:
        """The (size, conns) settings of a loop echo workload: the whole grid, or the headline
        setting alone for loop-echo-sock and in a quick run."""
        if self.quick or workload == "loop-echo-sock":
            return [dict(LOOP_HEADLINE)]
        return [{"size": s, "conns": c} for s in LOOP_SIZES for c in LOOP_CONNECTIONS]


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Century Ring benchmark suite (see benches/README.md)."
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument(
        "--only", help=f"comma-separated workloads out of {', '.join(WORKLOADS)} (default: all)"
    )
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 5; quick 1)")
    parser.add_argument(
        "--seconds", type=float, help="seconds per measurement (default 2; quick 0.4)"
    )
    parser.add_argument(
        "--echo-seconds", type=float, help="seconds per echo measurement (default 5; quick 2)"
    )
    parser.add_argument(
        "--loop-seconds",
        type=float,
        help="seconds per measurement of the loop-* workloads (default 1; wrk rounds to whole "
        "seconds)",
    )
    parser.add_argument(
        "--out", type=Path, default=BENCHES / "results", help="output directory (benches/results)"
    )
    parser.add_argument(
        "--name",
        default="latest",
        help="the results' file name: OUT/NAME.json, NAME.md, NAME.png (default latest)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("CENTURY_RING_BENCH_DIR", "/var/tmp")),
        help="where the test files live (default /var/tmp, or $CENTURY_RING_BENCH_DIR)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip-install a missing package, nor apt-get-install wrk (they are then "
        "skipped)",
    )
    args = parser.parse_args(argv)
    workloads = WORKLOADS
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in WORKLOADS]
        if unknown:
            parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {WORKLOADS}")
        workloads = tuple(w for w in WORKLOADS if w in wanted)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    seconds = args.seconds if args.seconds is not None else (0.4 if args.quick else 2.0)
    echo_seconds = args.echo_seconds
    if echo_seconds is None:
        echo_seconds = 2.0 if args.quick else 5.0
    loop_seconds = args.loop_seconds if args.loop_seconds is not None else 1.0
    if rounds < 1 or seconds <= 0 or echo_seconds <= 0 or loop_seconds <= 0:
        parser.error("--rounds, --seconds, --echo-seconds and --loop-seconds must be positive")
    return Settings(
        workloads=workloads,
        rounds=rounds,
        seconds=seconds,
        echo_seconds=echo_seconds,
        loop_seconds=loop_seconds,
        out=args.out,
        data_dir=args.data_dir,
        quick=args.quick,
        install=not args.no_install,
        name=args.name,
    )


# --- preparation --------------------------------------------------------------------------------


def build_native(settings: Settings) -> None:
    """Build the native reference with cargo, or note why it is skipped."""
    cargo = shutil.which("cargo")
    if cargo is None:
        settings.skipped["native"] = "cargo not found: the native reference was not built"
        return
    manifest = NATIVE_DIR / "Cargo.toml"
    log(f"building the native reference: cargo build --release --manifest-path {manifest}")
    proc = subprocess.run(
        [cargo, "build", "--release", "--quiet", "--manifest-path", str(manifest)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not NATIVE_BIN.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        settings.skipped["native"] = f"cargo build failed: {tail}"
        return
    settings.native = True


def install_missing(settings: Settings, wanted: Iterable[str]) -> None:
    """pip-install the packages in ``wanted`` that are not importable, wheels only.

    A wheel is all the suite will take: building liburing's C extension from source needs a
    compiler and the system's liburing headers, which a benchmark run should not depend on.
    When pip fails (no wheel for this platform, no registry), the package stays missing and the
    workload that needs it says why it was skipped.
    """
    if not settings.install:
        return
    for name in wanted:
        if importlib.util.find_spec(name) is not None:
            continue
        # One package per call: pip refuses the whole list when one of them has no wheel.
        command = [PYTHON, "-m", "pip", "install", "--quiet", "--only-binary", ":all:", name]
        log(f"installing {name}: {' '.join(command[1:])}")
        proc = subprocess.run(command, capture_output=True, text=True)
        importlib.invalidate_caches()
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            settings.install_failures[name] = tail
            log(f"pip could not install {name}: {tail}")


def find_liburing(settings: Settings) -> None:
    if importlib.util.find_spec("liburing") is None:
        why = settings.install_failures.get("liburing")
        if why is not None:
            reason = f"pip could not install liburing ({why})"
        elif not settings.install:
            reason = "the liburing package is not installed and --no-install was given"
        else:
            reason = "the liburing package is not importable"
        settings.skipped["liburing"] = (
            f"{reason}; to include it: python -m pip install --only-binary :all: liburing"
        )
    else:
        settings.liburing = True


def ensure_file(path: Path, size: int) -> None:
    """Create ``path`` with ``size`` bytes of random data once, flushed to disk."""
    if path.exists() and path.stat().st_size == size:
        return
    log(f"creating {path} ({size >> 20} MiB of random data, fsync)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    chunk = 1 << 20
    with open(tmp, "wb") as f:
        for _ in range(size // chunk):
            f.write(os.urandom(chunk))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def warm(path: Path) -> None:
    """Read the whole file so that it sits in the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (O_DIRECT bypasses it anyway)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def ensure_small_files(directory: Path) -> None:
    """Create aio-small-files' SMALL_FILES files of SMALL_FILE_SIZE random bytes once."""
    paths = [directory / f"{i:05d}.bin" for i in range(SMALL_FILES)]
    if all(p.exists() and p.stat().st_size == SMALL_FILE_SIZE for p in paths):
        return
    log(f"creating {SMALL_FILES} files of {SMALL_FILE_SIZE >> 10} KiB in {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    for p in paths:
        p.write_bytes(os.urandom(SMALL_FILE_SIZE))
    os.sync()


def warm_small_files(directory: Path) -> None:
    """Read every small file, so that the workload reads from the page cache."""
    for i in range(SMALL_FILES):
        (directory / f"{i:05d}.bin").read_bytes()


def find_aio(settings: Settings) -> None:
    """Note every async contender that cannot run here (a missing package, or a
    century_ring.aio that does not import), and skip an async workload none of whose contenders
    can: the others still run, and a target they are half of says "not measured"."""
    missing = [n for n in AIO_PACKAGES if importlib.util.find_spec(n) is None]

    aio_error = None
    try:
        import century_ring.aio  # noqa: F401  (whether it imports is the question)
    except Exception as err:  # a half-written module of the package must not stop the suite
        aio_error = f"century_ring.aio does not import: {err!r}"
    for workload in (w for w in settings.workloads if w.startswith("aio-")):
        if "anyio" in missing:
            settings.skipped[workload] = why_missing(settings, "anyio")
            continue
        for contender in CONTENDERS[workload]:
            if contender in settings.skipped:
                continue
            needs = [n for n in AIO_NEEDS.get(contender, ()) if n in missing]
            if needs:
                settings.skipped[contender] = why_missing(settings, needs[0])
            elif contender.startswith("century_ring.aio") and aio_error is not None:
                settings.skipped[contender] = aio_error
        if all(c in settings.skipped for c in CONTENDERS[workload]):
            settings.skipped[workload] = "none of its contenders can run"


def why_missing(settings: Settings, name: str) -> str:
    """Why package ``name`` is not there: pip's failure, --no-install, or neither."""
    failure = settings.install_failures.get(name)
    if failure is not None:
        return f"pip could not install {name} ({failure})"
    if not settings.install:
        return f"{name} is not installed and --no-install was given"
    return f"{name} is not importable"


def find_loops(settings: Settings) -> None:
    """Note every event loop that cannot run here (under its LOOP_NEEDS key), and every loop
    workload that cannot: the echo workloads without the native client, loop-http without wrk
    or httptools (its uvicorn server alone without uvicorn)."""
    for contender, module in LOOP_NEEDS.items():
        if contender == "century_ring":
            try:
                import century_ring.asyncio

                century_ring.asyncio.new_event_loop(strict=True).close()
            except Exception as err:  # a half-written loop, or a system that refuses io_uring
                settings.skipped[module] = f"century_ring.asyncio's loop cannot run: {err!r}"
        elif importlib.util.find_spec(module) is None:
            settings.skipped[module] = why_missing(settings, module)
    loops = [c for c in LOOP_CONTENDERS if LOOP_NEEDS.get(c) not in settings.skipped]
    for workload in (w for w in settings.workloads if w.startswith("loop-")):
        if not loops:
            settings.skipped[workload] = "none of its event loops can run"
        elif workload in LOOP_ECHO and not settings.native:
            settings.skipped[workload] = (
                "the native echo-client (the load generator) was not built; see native"
            )
    if "loop-http" in settings.workloads and "loop-http" not in settings.skipped:
        if importlib.util.find_spec("httptools") is None:
            settings.skipped["loop-http"] = why_missing(settings, "httptools")
        elif importlib.util.find_spec("uvicorn") is None:
            settings.skipped["loop-http uvicorn"] = why_missing(settings, "uvicorn")
        why = find_wrk(settings)
        if why is not None:
            settings.skipped["loop-http"] = why


def find_wrk(settings: Settings) -> str | None:
    """Find wrk, or apt-get install it (root only, not with --no-install); why not, or None."""
    settings.wrk = shutil.which("wrk")
    if settings.wrk is not None:
        return None
    if not settings.install:
        return "wrk is not installed and --no-install was given (apt-get install wrk)"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "wrk is not installed, and only root can apt-get install it here"
    tail = ""
    install = ["apt-get", "install", "-y", "wrk"]
    # Once as the package lists stand, and once more after refreshing them.
    for command in (install, ["apt-get", "update"], install):
        log(f"installing wrk: {' '.join(command)}")
        proc = subprocess.run(command, capture_output=True, text=True)
        settings.wrk = shutil.which("wrk")
        if settings.wrk is not None:
            return None
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"apt-get could not install wrk ({tail})"


def direct_supported(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as err:
        return f"O_DIRECT is refused on {path.parent}: {err}"
    os.close(fd)
    return None


# --- running one measurement --------------------------------------------------------------------


class MeasurementError(Exception):
    pass


def run_json(cmd: list[str], timeout: float, cwd: Path = BENCHES) -> dict[str, Any]:
    """Run ``cmd`` and return the JSON object on the last line of its output."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as err:
        raise MeasurementError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from err
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise MeasurementError(f"exit {proc.returncode}: {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def echo_client_command(port: str, seconds: float, native: bool) -> list[str]:
    """The load generator: the native client when it was built, else the Python one."""
    common = ["--connections", str(ECHO_CONNECTIONS), "--size", str(ECHO_MESSAGE)]
    if native:
        return [str(NATIVE_BIN), "echo-client", "--port", port, *common, "--seconds", str(seconds)]
    return [PYTHON, "echo.py", "client", "--port", port, *common, "--seconds", str(seconds)]


def echo_server_command(impl: str) -> list[str]:
    """A server contender: the native reference's echo-server, or one of echo.py's servers.

    Both speak the same protocol: ``PORT n`` once listening, one JSON line when every
    connection has been closed.
    """
    common = ["--connections", str(ECHO_CONNECTIONS), "--size", str(ECHO_MESSAGE)]
    if impl == "native":
        return [str(NATIVE_BIN), "echo-server", "--port", "0", *common]
    return [PYTHON, "echo.py", "server", "--impl", impl, *common]


def serve_and_load(
    name: str, server_command: list[str], load: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a server process (the contender), run ``load(port)`` (the client: it returns the
    client's report) once the server prints ``PORT n``, then close the server's standard input
    (the end of the load, for benches/loop_workloads.py's servers; the others ignore it) and
    read the JSON line the server prints when its connections are closed. A load that fails
    kills the server."""
    server = subprocess.Popen(
        server_command,
        cwd=BENCHES,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline().split()
        if len(first) != 2 or first[0] != "PORT":
            tail = " | ".join(server.communicate(timeout=10)[1].strip().splitlines()[-3:])
            raise MeasurementError(f"the {name} server did not start: {first} {tail}")
        client = load(first[1])
        # communicate() closes the server's standard input first.
        out, err = server.communicate(timeout=60)
        if server.returncode != 0:
            tail = " | ".join(err.strip().splitlines()[-3:])
            raise MeasurementError(f"the {name} server failed: {tail}")
        report = json.loads(out.strip().splitlines()[-1])
    except subprocess.TimeoutExpired as err:
        raise MeasurementError(f"the {name} server did not finish: {err}") from err
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    return client, report


def run_echo(impl: str, seconds: float, native_client: bool) -> dict[str, Any]:
    """One server process (the contender) and one client process; returns both reports."""
    client, report = serve_and_load(
        impl,
        echo_server_command(impl),
        lambda port: run_json(echo_client_command(port, seconds, native_client), seconds + 60),
    )
    return served_record(client, report, "native" if native_client else "python")


def served_record(client: dict[str, Any], report: dict[str, Any], load: str) -> dict[str, Any]:
    """One measurement of a server under load, from the load generator's and the server's
    reports."""
    return {
        "ops": client["round_trips"],
        "seconds": client["seconds"],
        "ops_per_sec": client["msgs_per_sec"],
        "cpu_seconds": report["cpu_seconds"],
        "cpu_us_per_op": report["cpu_us_per_msg"],
        "server_messages": report["messages"],
        "client_cpu_share": round(client["client_cpu_seconds"] / client["seconds"], 3),
        "client": load,
        # The server's CPU time over the client's timed window (the server's window starts
        # when the last connection is up, a moment earlier, and ends when they are closed).
        "server_cpu_share": round(report["cpu_seconds"] / client["seconds"], 3),
    }


def secs_loop(s: Settings) -> list[str]:
    return ["--seconds", str(s.loop_seconds)]


def loop_server_command(workload: str, contender: str, params: dict[str, Any]) -> list[str]:
    """A loop workload's server: benches/loop_workloads.py on the contender's loop, or the
    native reference's echo-server."""
    if workload == "loop-http":
        shape = ["--connections", str(LOOP_HTTP_CONNECTIONS)]
        kind = params["server"]
    else:
        shape = ["--connections", str(params["conns"]), "--size", str(params["size"])]
        kind = LOOP_ECHO[workload]
    if contender == "native":
        return [str(NATIVE_BIN), "echo-server", "--port", "0", *shape]
    return [PYTHON, "loop_workloads.py", "server", "--kind", kind, "--loop", contender, *shape]


def run_wrk(wrk: str, port: str, seconds: float) -> dict[str, Any]:
    """wrk on one thread with LOOP_HTTP_CONNECTIONS keep-alive connections to ``port`` for
    ``seconds`` (rounded to whole seconds: wrk takes no fractions); returns its figures in the
    echo-client's terms, with its CPU time (``RUSAGE_CHILDREN`` grows by it once it is reaped;
    the server, the only other child, is reaped later)."""
    duration = max(1, round(seconds))
    url = f"http://127.0.0.1:{port}/"
    command = [wrk, "-t1", f"-c{LOOP_HTTP_CONNECTIONS}", f"-d{duration}s", "--timeout", "5s", url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired as err:
        raise MeasurementError(f"timed out: {' '.join(command)}") from err
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = proc.stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if proc.returncode != 0 or done is None or rate is None:
        tail = " | ".join((proc.stderr or out).strip().splitlines()[-3:])
        raise MeasurementError(f"wrk exit {proc.returncode}: {tail}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[done.group(3)]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad is not None:
        raise MeasurementError(f"wrk: {bad.group(1)} responses were not 2xx or 3xx")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "round_trips": int(done.group(1)),
        "seconds": float(done.group(2)) * scale,
        "msgs_per_sec": float(rate.group(1)),
        "client_cpu_seconds": round(cpu, 6),
        "socket_errors": (
            {
                k: int(v)
                for k, v in zip(
                    ("connect", "read", "write", "timeout"), errors.groups(), strict=True
                )
            }
            if errors
            else {}
        ),
    }


def run_loop_server(
    workload: str, contender: str, params: dict[str, Any], s: Settings
) -> dict[str, Any]:
    """One measurement of a loop server workload: the contender's server process, loaded by the
    native echo-client (echo) or wrk (HTTP) for --loop-seconds."""
    seconds = s.loop_seconds
    if workload == "loop-http":
        assert s.wrk is not None
        wrk = s.wrk

        def load(port: str) -> dict[str, Any]:
            return run_wrk(wrk, port, seconds)

    else:

        def load(port: str) -> dict[str, Any]:
            shape = ["--connections", str(params["conns"]), "--size", str(params["size"])]
            client = [str(NATIVE_BIN), "echo-client", "--port", port, *shape, *secs_loop(s)]
            return run_json(client, seconds + 60)

    client, report = serve_and_load(
        contender, loop_server_command(workload, contender, params), load
    )
    if not report.get("messages"):
        raise MeasurementError(f"the {contender} server answered nothing: {report}")
    record = served_record(client, report, "wrk" if workload == "loop-http" else "native")
    # Connections whose close the loop never reported (the server's window then ended with the
    # load), and wrk's socket errors, when there were any.
    if report.get("unclosed"):
        record["unclosed"] = report["unclosed"]
    if any(client.get("socket_errors", {}).values()):
        record["socket_errors"] = client["socket_errors"]
    return record


def aio_command(workload: str, contender: str, params: dict[str, int], s: Settings) -> list[str]:
    """The command line of one measurement of an async workload."""
    secs = ["--seconds", str(s.seconds)]
    tasks = params.get("tasks", AIO_CONCURRENCY)
    if workload in AIO_TASKS:
        direct = workload == "aio-read-direct"
        path = str(s.direct_file if direct else s.cached_file)
        common = ["--file", path, "--size", str(READ_SIZE), *secs] + (
            ["--direct"] if direct else []
        )
        if contender == "century_ring sync":
            # The synchronous ring at the same depth: workloads.py's loops for read-cached
            # (whole batches) and read-direct (kept full).
            mode = "refill" if direct else "batch"
            return [PYTHON, "workloads.py", "century_ring", "read", "--qd", str(tasks),
                    "--mode", mode, *common]  # fmt: skip
        what = ["read", *common]
    elif workload == "aio-small-files":
        what = ["small-files", "--dir", str(s.small_dir), "--files", str(SMALL_FILES)]
        what += ["--size", str(SMALL_FILE_SIZE), *secs]
    else:
        what = ["echo", "--size", str(AIO_ECHO_MESSAGE), *secs]
    name, loop = AIO_PROCESS[contender]
    return [PYTHON, "aio_workloads.py", name, *what, "--loop", loop, "--tasks", str(tasks)]


def command(workload: str, contender: str, params: dict[str, Any], s: Settings) -> list[str]:
    """The command line of one measurement (every workload but the echo and HTTP servers)."""
    if workload.startswith("aio-"):
        return aio_command(workload, contender, params, s)
    if workload == "loop-callbacks":
        what = ["--bench", params["bench"], "--loop", contender, *secs_loop(s)]
        return [PYTHON, "loop_workloads.py", "callbacks", *what]
    secs = ["--seconds", str(s.seconds)]
    py = [PYTHON, "workloads.py"]
    native = [str(NATIVE_BIN)]
    if workload == "nop":
        batch = ["--batch", str(params["batch"])]
        if contender == "native":
            return [*native, "nop", *batch, *secs]
        return [*py, contender, "nop", *batch, *secs]
    if workload == "overhead":
        return [*py, "century_ring", "overhead", "--file", str(s.cached_file), *secs]
    direct = workload == "read-direct"
    path = str(s.direct_file if direct else s.cached_file)
    common = ["--file", path, "--size", str(READ_SIZE), *secs] + (["--direct"] if direct else [])
    qd = ["--qd", str(params.get("qd", 1))]
    mode = ["--mode", "refill" if direct else "batch"]
    if contender == "century_ring":
        return [*py, "century_ring", "read", *qd, *mode, *common]
    if contender == "century_ring kept":
        return [*py, "century_ring", "read", *qd, "--mode", "kept", *common]
    if contender == "liburing":
        return [*py, "liburing", "read", *qd, *common]
    if contender == "native":
        return [*native, "read", *qd, *mode, *common]
    if contender == "native pread":
        return [*native, "pread", *common]
    if contender == "os.pread":
        return [*py, "os", "pread", *common]
    if contender == "thread pool":
        return [*py, "pool", "read", *qd, *common]
    raise ValueError(f"no command for {contender} in {workload}")


def available(contender: str, s: Settings, workload: str = "") -> bool:
    if workload.startswith("loop-") and contender in LOOP_NEEDS:
        return LOOP_NEEDS[contender] not in s.skipped
    if contender.startswith("native"):
        return s.native
    if contender == "liburing":
        return s.liburing
    return contender not in s.skipped


def cases(workload: str, round_index: int, s: Settings) -> list[tuple[str, dict[str, Any]]]:
    """This round's (contender, params) list, in the order they run.

    Within every parameter group each contender runs once; the contenders' order rotates by
    one place from round to round, so none always runs first or right after another.
    """
    contenders = [c for c in CONTENDERS[workload] if available(c, s, workload)]
    if not contenders:
        return []
    shift = round_index % len(contenders)
    rotated = contenders[shift:] + contenders[:shift]
    if workload == "nop":
        groups: list[dict[str, Any]] = [{"batch": b} for b in BATCHES]
    elif workload in QDS:
        groups = [{"qd": q} for q in QDS[workload]]
    elif workload in AIO_TASKS:
        groups = [{"tasks": t} for t in s.aio_tasks(workload)]
    elif workload in LOOP_ECHO:
        groups = s.loop_echo_grid(workload)
    elif workload == "loop-http":
        servers = [x for x in LOOP_HTTP_SERVERS if f"loop-http {x}" not in s.skipped]
        groups = [{"server": x} for x in servers]
    elif workload == "loop-callbacks":
        groups = [{"bench": b} for b in LOOP_BENCHES]
    else:
        groups = [{}]
    if round_index % 2:
        groups = groups[::-1]
    order = []
    for params in groups:
        for contender in rotated:
            if contender in SERIAL:
                if params.get("qd") == 32:
                    order.append((contender, {"qd": 1}))
            else:
                order.append((contender, params))
    return order


# --- the suite ----------------------------------------------------------------------------------


def describe(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def measure_round(s: Settings, round_index: int, measurements: list[dict[str, Any]]) -> None:
    for workload in s.workloads:
        if workload in s.skipped:
            continue
        if workload in ("read-cached", "aio-read-cached"):
            warm(s.cached_file)
        elif workload in ("read-direct", "aio-read-direct"):
            evict(s.direct_file)
        elif workload == "aio-small-files":
            warm_small_files(s.small_dir)
        for contender, params in cases(workload, round_index, s):
            record: dict[str, Any] = {
                "workload": workload,
                "contender": contender,
                "params": params,
                "round": round_index,
            }
            label = " ".join(f"{k}={v}" for k, v in params.items())
            started = time.perf_counter()
            try:
                if workload == "echo":
                    record.update(run_echo(contender, s.echo_seconds, s.native))
                elif workload in LOOP_ECHO or workload == "loop-http":
                    record.update(run_loop_server(workload, contender, params, s))
                else:
                    timeout = s.seconds * 4 + 60
                    result = run_json(command(workload, contender, params, s), timeout)
                    # The process names itself in its own terms (e.g. "os", "read"); keep ours.
                    record.update({k: v for k, v in result.items() if k not in record})
                record["ok"] = True
            except MeasurementError as err:
                record["ok"] = False
                record["error"] = str(err)
            record["wall_seconds"] = round(time.perf_counter() - started, 3)
            measurements.append(record)
            prefix = f"[round {round_index + 1}/{s.rounds}] {workload} {label} {contender}:"
            if not record["ok"]:
                log(f"{prefix} FAILED ({record['error']})")
            elif workload == "overhead":
                values = {k: v for k, v in record.items() if k.endswith("_ns")}
                values.update({k: v for k, v in record.items() if k.endswith("_per_cqe")})
                log(f"{prefix} " + ", ".join(f"{k}={v}" for k, v in values.items()))
            else:
                reap = record.get("reap_ns_per_cqe")
                log(
                    f"{prefix} {describe(record['ops_per_sec'])} ops/s, "
                    f"{record['cpu_us_per_op']:.2f} us CPU/op"
                    + ("" if reap is None else f", reap {reap:.0f} ns/completion")
                )


def key(workload: str, contender: str, params: dict[str, Any]) -> tuple[Any, ...]:
    return (workload, contender, tuple(sorted(params.items())))


def index(measurements: Iterable[dict[str, Any]]) -> dict[tuple[Any, ...], dict[int, dict]]:
    """(workload, contender, params) -> round -> successful measurement."""
    table: dict[tuple[Any, ...], dict[int, dict]] = {}
    for m in measurements:
        if m.get("ok"):
            table.setdefault(key(m["workload"], m["contender"], m["params"]), {})[m["round"]] = m
    return table


#: What the medians keep of every other measurement (a metric a contender does not report is
#: left out: only century_ring's read loops time their reaps).
RUN_METRICS = ("ops_per_sec", "cpu_us_per_op", "reap_ns_per_cqe", "faults_per_op")
OVERHEAD_METRICS = (
    "prep_read_ns",
    "prep_nop_ns",
    "reap_ns_per_cqe",
    "reap_touch_ns_per_cqe",
    "submit_empty_ns",
    "submit_32_nops_ns",
)


def summarise(measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    medians = []
    for (workload, contender, params), by_round in sorted(index(measurements).items()):
        runs = list(by_round.values())
        entry: dict[str, Any] = {
            "workload": workload,
            "contender": contender,
            "params": dict(params),
            "rounds": len(runs),
        }
        metrics = OVERHEAD_METRICS if workload == "overhead" else RUN_METRICS
        for metric in metrics:
            values = [r[metric] for r in runs if metric in r]
            if values:
                entry[metric] = statistics.median(values)
                entry[f"{metric}_min"] = min(values)
                entry[f"{metric}_max"] = max(values)
        if workload == "echo" or workload in LOOP_ECHO or workload == "loop-http":
            entry["client_cpu_share"] = statistics.median(r["client_cpu_share"] for r in runs)
            entry["server_cpu_share"] = statistics.median(
                r.get("server_cpu_share", 0.0) for r in runs
            )
        medians.append(entry)
    return medians


def pair_ratio(
    table: dict[tuple[Any, ...], dict[int, dict]],
    workload: str,
    numerator: tuple[str, dict[str, Any]],
    denominator: tuple[str, dict[str, Any]],
    metric: str,
) -> dict[str, Any] | None:
    """Ratios of two contenders' ``metric`` round by round, and their median."""
    num = table.get(key(workload, *numerator), {})
    den = table.get(key(workload, *denominator), {})
    per_round = {
        r: num[r][metric] / den[r][metric] for r in sorted(num) if r in den and den[r][metric] > 0
    }
    if not per_round:
        return None
    return {
        "workload": workload,
        "numerator": {"contender": numerator[0], "params": numerator[1]},
        "denominator": {"contender": denominator[0], "params": denominator[1]},
        "metric": metric,
        "per_round": {str(r): round(v, 4) for r, v in per_round.items()},
        "median": round(statistics.median(per_round.values()), 4),
        "min": round(min(per_round.values()), 4),
        "max": round(max(per_round.values()), 4),
    }


def all_ratios(table: dict[tuple[Any, ...], dict[int, dict]]) -> list[dict[str, Any]]:
    """century_ring against every other contender, for every parameter; plus a few references."""
    pairs: list[tuple[str, tuple[str, dict], tuple[str, dict], str]] = []
    for batch in BATCHES:
        p = {"batch": batch}
        for other in ("native", "liburing"):
            pairs.append(("nop", ("century_ring", p), (other, p), "ops_per_sec"))
    for workload, depths in QDS.items():
        ours = [c for c in CONTENDERS[workload] if c in CENTURY_RING]
        for qd in depths:
            p = {"qd": qd}
            for mine in ours:
                for other in CONTENDERS[workload]:
                    if other == mine or (other in CENTURY_RING and mine != "century_ring"):
                        continue
                    o = (other, {"qd": 1} if other in SERIAL else p)
                    pairs.append((workload, (mine, p), o, "ops_per_sec"))
                    pairs.append((workload, (mine, p), o, "cpu_us_per_op"))
        # How far the interpreter-free ring gets ahead of an interpreter-free pread loop.
        for qd in depths:
            pairs.append(
                (workload, ("native", {"qd": qd}), ("native pread", {"qd": 1}), "ops_per_sec")
            )
        # Every depth against QD 32, for each contender that queues: issue 12's cliff.
        for c in CONTENDERS[workload]:
            if c in SERIAL:
                continue
            for qd in depths:
                if qd != BASE_QD:
                    pairs.append((workload, (c, {"qd": qd}), (c, {"qd": BASE_QD}), "ops_per_sec"))
    for other in CONTENDERS["echo"][1:]:
        pairs.append(("echo", ("century_ring", {}), (other, {}), "ops_per_sec"))
        pairs.append(("echo", ("century_ring", {}), (other, {}), "cpu_us_per_op"))
    # The interpreter-free server against the selectors loop: how far any server gets with
    # this client on this machine.
    pairs.append(("echo", ("native", {}), ("selectors", {}), "ops_per_sec"))
    pairs.append(("echo", ("native", {}), ("selectors", {}), "cpu_us_per_op"))
    pairs += aio_pairs()
    pairs += loop_pairs()
    found = (pair_ratio(table, *pair) for pair in pairs)
    return [r for r in found if r is not None]


def aio_pairs() -> list[tuple[str, tuple[str, dict], tuple[str, dict], str]]:
    """The async workloads: century_ring.aio on each loop against every other contender with
    the same parameters; for echo, century_ring.aio's streams against anyio's on the same loop."""
    pairs: list[tuple[str, tuple[str, dict], tuple[str, dict], str]] = []
    groups = {w: [{"tasks": t} for t in tasks] for w, tasks in AIO_TASKS.items()}
    groups["aio-small-files"] = [{}]  # 64 tasks, the one setting
    for workload, params in groups.items():
        for p in params:
            for mine in AIO_RING:
                for other in CONTENDERS[workload]:
                    # The loops against each other once: asyncio's against the other two.
                    if other != mine and (other not in AIO_RING or mine == AIO_RING[0]):
                        for metric in ("ops_per_sec", "cpu_us_per_op"):
                            pairs.append((workload, (mine, p), (other, p), metric))
    for mine, other in zip(AIO_ECHO_RING, AIO_ECHO_ANYIO, strict=True):
        for metric in ("ops_per_sec", "cpu_us_per_op"):
            pairs.append(("aio-echo", (mine, {}), (other, {}), metric))
    return pairs


def loop_params(workload: str) -> list[dict[str, Any]]:
    """Every parameter setting a loop workload may have been measured with."""
    if workload == "loop-echo-sock":
        return [dict(LOOP_HEADLINE)]
    if workload in LOOP_ECHO:
        return [{"size": s, "conns": c} for s in LOOP_SIZES for c in LOOP_CONNECTIONS]
    if workload == "loop-http":
        return [{"server": x} for x in LOOP_HTTP_SERVERS]
    return [{"bench": b} for b in LOOP_BENCHES]


def loop_pairs() -> list[tuple[str, tuple[str, dict], tuple[str, dict], str]]:
    """The loop workloads: century_ring's loop against each other loop and the native server,
    for every setting."""
    pairs: list[tuple[str, tuple[str, dict], tuple[str, dict], str]] = []
    for workload in (w for w in WORKLOADS if w.startswith("loop-")):
        for p in loop_params(workload):
            for other in CONTENDERS[workload][1:]:
                for metric in ("ops_per_sec", "cpu_us_per_op"):
                    pairs.append((workload, ("century_ring", p), (other, p), metric))
    return pairs


def check_targets(
    table: dict[tuple[Any, ...], dict[int, dict]],
    workloads: Iterable[str],
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Every target of the workloads run (with ``settings``, of a loop echo setting the run
    measures: a quick run has only 1 KiB x 64): met, missed, or not measured."""
    results = []
    for t in TARGETS:
        if t.workload not in workloads:
            continue
        if settings is not None and t.workload in LOOP_ECHO:
            if t.numerator[1] not in settings.loop_echo_grid(t.workload):
                continue
        ratio = pair_ratio(table, t.workload, t.numerator, t.denominator, t.metric)
        entry: dict[str, Any] = {
            "label": t.label,
            "metric": t.metric,
            "target": f"{t.op} {t.bound:.3g}",
            "ratio": None if ratio is None else ratio["median"],
            "min": None if ratio is None else ratio["min"],
            "max": None if ratio is None else ratio["max"],
            "met": None if ratio is None else t.met(ratio["median"]),
            "native_ratio": None,
        }
        reference = t.reference()
        if reference is not None:
            native = pair_ratio(table, t.workload, *reference, t.metric)
            entry["native_ratio"] = None if native is None else native["median"]
        results.append(entry)
    return results


def loop_versions(s: Settings) -> dict[str, str]:
    """The versions of the loops and HTTP packages the loop workloads ran, and of wrk."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("uvloop", "rloop", "httptools", "uvicorn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    if s.wrk is not None:
        proc = subprocess.run([s.wrk, "-v"], capture_output=True, text=True)
        words = (proc.stdout + proc.stderr).split()
        if len(words) >= 2 and words[0] == "wrk":
            found["wrk"] = words[1]
    return found


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        cr_version = version("century-ring")
    except Exception:
        cr_version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        commit = ""
    extension = None
    try:
        spec = importlib.util.find_spec("century_ring._century_ring")
        if spec and spec.origin:
            built = os.stat(spec.origin).st_mtime
            extension = {
                "path": spec.origin,
                "built": datetime.datetime.fromtimestamp(built, datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
            }
    except (ImportError, OSError):
        pass
    liburing_version = None
    if importlib.util.find_spec("liburing") is not None:
        try:
            from importlib.metadata import version

            liburing_version = version("liburing")
        except Exception:
            liburing_version = "unknown"
    return {
        "kernel": platform.release(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "century_ring": cr_version,
        "git_commit": commit or None,
        # The extension that ran may be newer than the commit (an editable install rebuilt
        # from a work tree): when it was built tells which.
        "century_ring_extension": extension,
        "liburing": liburing_version,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# --- the report ---------------------------------------------------------------------------------


def cell(entry: dict[str, Any] | None, cpu: bool) -> str:
    if entry is None or "ops_per_sec" not in entry:
        return "n/a"
    text = describe(entry["ops_per_sec"])
    if cpu:
        text += f" ({entry['cpu_us_per_op']:.2f} µs)"
    return text


def depth_ratios(report: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(workload, contender, qd) -> the same-round ratio of its ops/s at ``qd`` to BASE_QD."""
    found = {}
    for r in report["ratios"]:
        num, den = r["numerator"], r["denominator"]
        if (
            r["metric"] == "ops_per_sec"
            and num["contender"] == den["contender"]
            and den["params"] == {"qd": BASE_QD}
        ):
            found[(r["workload"], num["contender"], num["params"]["qd"])] = r
    return found


def depth_table(
    report: dict[str, Any], workload: str, cols: list[str], medians: dict[tuple[Any, ...], Any]
) -> list[str]:
    """Each queueing contender at every depth against itself at BASE_QD; century_ring's loops
    also with their reap cost per completion."""
    ratios = depth_ratios(report)
    queueing = [c for c in cols if c not in SERIAL]
    head = ["QD"]
    for c in queueing:
        head.append(f"{c} ÷ QD {BASE_QD}")
        if c in CENTURY_RING:
            head.append(f"{c} reap ns")
    out = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for q in QDS[workload]:
        row = [str(q)]
        for c in queueing:
            if q == BASE_QD:
                row.append("1")
            else:
                r = ratios.get((workload, c, q))
                row.append(
                    "n/a" if r is None else f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"
                )
            if c in CENTURY_RING:
                m = medians.get(key(workload, c, {"qd": q}))
                row.append(
                    "n/a" if not m or "reap_ns_per_cqe" not in m else f"{m['reap_ns_per_cqe']:.0f}"
                )
        out.append("| " + " | ".join(row) + " |")
    return out


def markdown(report: dict[str, Any]) -> str:
    medians = {key(m["workload"], m["contender"], m["params"]): m for m in report["medians"]}
    settings = report["settings"]
    machine = report["machine"]
    out = [
        "# Century Ring benchmarks",
        "",
        f"{machine['date']} · Linux {machine['kernel']} · {machine['cpu_model']}, "
        f"{machine['cores']} cores · Python {machine['python']} · century_ring "
        f"{machine['century_ring']} (git {machine['git_commit']}"
        + (
            f", extension built {machine['century_ring_extension']['built']})"
            if machine.get("century_ring_extension")
            else ")"
        ),
        "",
        f"{settings['rounds']} round(s), {settings['seconds']} s per measurement "
        f"({settings['echo_seconds']} s for echo"
        + (
            f", {settings['loop_seconds']} s for the loop workloads"
            if any(w.startswith("loop-") for w in settings["workloads"])
            else ""
        )
        + "); medians over rounds. Ratios are taken pair by pair within a round, then the "
        "median of those ratios.",
    ]
    workloads = settings["workloads"]
    if "nop" in workloads:
        cols = [c for c in CONTENDERS["nop"] if c not in report["skipped"]]
        out += ["", "## nop: ops/s (CPU µs per op)", ""]
        out += ["| batch | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for b in BATCHES:
            row = [cell(medians.get(key("nop", c, {"batch": b})), True) for c in cols]
            out.append(f"| {b} | " + " | ".join(row) + " |")
    for workload, unit in (("read-cached", "ops/s"), ("read-direct", "IOPS")):
        if workload not in workloads or workload in report["skipped"]:
            continue
        cols = [c for c in CONTENDERS[workload] if c not in report["skipped"]]
        out += ["", f"## {workload}: 4 KiB random reads, {unit} (CPU µs per I/O)", ""]
        out += ["| QD | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for q in QDS[workload]:
            row = []
            for c in cols:
                if c in SERIAL:
                    row.append(
                        cell(medians.get(key(workload, c, {"qd": 1})), True) if q == 1 else "″"
                    )
                else:
                    row.append(cell(medians.get(key(workload, c, {"qd": q})), True))
            out.append(f"| {q} | " + " | ".join(row) + " |")
        serial = [c for c in cols if c in SERIAL]
        if serial:
            out += [
                "",
                f"{', '.join(serial)}: one read at a time whatever the queue depth (″ = same)."
                + (
                    " For O_DIRECT the os.pread contender is os.preadv into one 4096-aligned "
                    "buffer: os.pread's own bytes object is not aligned and the kernel refuses it."
                    if workload == "read-direct"
                    else ""
                ),
            ]
        if workload == "read-cached" and "century_ring kept" in cols:
            out += [
                "",
                "century_ring is the drop loop (each batch's list dropped before the next batch "
                "is queued); century_ring kept keeps it alive until the next batch is reaped, as "
                "`got = ring.get_completion_entries()` does.",
            ]
        out += [
            "",
            f"### {workload}: each depth against QD {BASE_QD} (ops/s, same-round ratios: median "
            "(range)), and century_ring's reap cost",
            "",
            *depth_table(report, workload, cols, medians),
            "",
            "reap ns: the time inside get_completion_entries() per completion (median over "
            "rounds), which includes making each read's bytes.",
        ]
    if "echo" in workloads:
        cols = list(CONTENDERS["echo"])
        out += [
            "",
            f"## echo: {ECHO_CONNECTIONS} connections, {ECHO_MESSAGE}-byte messages, round trips/s",
            "",
            "| server | messages/s | server CPU µs per message | server CPU share | "
            "client CPU share |",
            "|---|---|---|---|---|",
        ]
        for c in cols:
            m = medians.get(key("echo", c, {}))
            if m:
                out.append(
                    f"| {c} | {describe(m['ops_per_sec'])} | {m['cpu_us_per_op']:.2f} | "
                    f"{m.get('server_cpu_share', 0.0):.0%} | {m['client_cpu_share']:.0%} |"
                )
        echo_ratios = [
            f"{r['numerator']['contender']} / {r['denominator']['contender']} "
            f"{r['median']:.3f}x ({r['min']:.3f}-{r['max']:.3f})"
            for r in report["ratios"]
            if r["workload"] == "echo" and r["metric"] == "ops_per_sec"
        ]
        if echo_ratios:
            out += ["", "messages/s, same-round ratios: " + "; ".join(echo_ratios) + "."]
        if medians.get(key("echo", "native", {})):
            out += [
                "",
                "native is the native reference's echo-server (Rust, no interpreter; the design "
                "of century_ring's server: multishot receives on a provided buffer ring, each "
                "echo sent from the buffer it arrived in). It is the reference, not a target: "
                "what any server reaches with this client on this machine.",
            ]
        if settings.get("echo_client") == "native":
            out += [
                "",
                "The client driver is the native reference's echo-client (one thread, one ring); "
                "a server CPU share near 100% means the server set the pace. The client's share "
                "includes the kernel's loopback TCP work for the messages it sends.",
            ]
        else:
            out += [
                "",
                "The client driver is one Python process (the native one was not built); a "
                "client CPU share near 100% means the client, not the server, set the pace.",
            ]
    if "overhead" in workloads:
        m = medians.get(key("overhead", "century_ring", {}))
        if m:
            out += ["", "## overhead: century_ring alone, ns", "", "| what | ns |", "|---|---|"]
            for metric in OVERHEAD_METRICS:
                if metric in m:
                    out.append(f"| {metric} | {m[metric]:.1f} |")
    out += aio_markdown(report, medians)
    out += loop_markdown(report, medians)
    out += [
        "",
        "## Targets (issues 3, 12, 13 and 14)",
        "",
        "| target | ratio (median) | range over rounds | bound | met | native in its place |",
        "|---|---|---|---|---|---|",
    ]
    for t in report["targets"]:
        native = t.get("native_ratio")
        reference = "—" if native is None else f"{native:.3f}x"
        if t["ratio"] is None:
            out.append(f"| {t['label']} | n/a | n/a | {t['target']} | not measured | {reference} |")
        else:
            out.append(
                f"| {t['label']} | {t['ratio']:.3f}x | {t['min']:.3f}-{t['max']:.3f} | "
                f"{t['target']} | {'yes' if t['met'] else 'NO'} | {reference} |"
            )
    out += [
        "",
        "*native in its place*: the same ratio with the native reference (no interpreter) in "
        "century_ring's place, same rounds. It is what the machine allows: a bound the native "
        "reference misses cannot be met by any Python binding here.",
    ]
    if report["skipped"]:
        out += ["", "## Skipped", ""]
        out += [f"- {name}: {why}" for name, why in report["skipped"].items()]
    failed = [m for m in report["measurements"] if not m.get("ok")]
    if failed:
        out += ["", "## Failed measurements", ""]
        out += [
            f"- round {m['round'] + 1} {m['workload']} {m['params']} {m['contender']}: {m['error']}"
            for m in failed
        ]
    return "\n".join(out) + "\n"


def aio_markdown(report: dict[str, Any], medians: dict[tuple[Any, ...], Any]) -> list[str]:
    """The async workloads' tables: ops/s (CPU µs per op) per contender, and century_ring.aio's
    same-round ratios on asyncio."""
    settings = report["settings"]
    workloads = settings["workloads"]
    skipped = report["skipped"]
    out: list[str] = []

    def ratios_line(workload: str, params: dict[str, int], mine: str) -> list[str]:
        found = [
            f"{r['denominator']['contender']} {r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"
            for r in report["ratios"]
            if r["workload"] == workload
            and r["metric"] == "ops_per_sec"
            and r["numerator"] == {"contender": mine, "params": params}
        ]
        if not found:
            return []
        where = f" at {params['tasks']} tasks" if params else ""
        return ["", f"{mine}{where}, ops/s over each other's, same-round: " + "; ".join(found)]

    titles = {
        "aio-read-cached": "4 KiB random reads of the page-cached 64 MiB file, reads/s",
        "aio-read-direct": "4 KiB O_DIRECT random reads of the 1 GiB file, IOPS",
    }
    for workload, title in titles.items():
        if workload not in workloads or workload in skipped:
            continue
        cols = [c for c in CONTENDERS[workload] if c not in skipped]
        out += ["", f"## {workload}: {title} (CPU µs per read)", ""]
        out += ["| tasks | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        tasks = settings.get("aio_tasks", {}).get(workload, list(AIO_TASKS[workload]))
        for t in tasks:
            row = [cell(medians.get(key(workload, c, {"tasks": t})), True) for c in cols]
            out.append(f"| {t} | " + " | ".join(row) + " |")
        out += ratios_line(workload, {"tasks": AIO_CONCURRENCY}, AIO_RING[0])
        out += [
            "",
            "Each task loops over one read at a time; century_ring sync is the synchronous ring "
            "(benches/workloads.py) with as many reads queued as there are tasks. "
            "run_in_executor uses asyncio's default pool (min(32, cores + 4) threads)."
            + (
                " aiofiles, anyio.open_file and run_in_executor read into a page-aligned mmap "
                "per task (readinto, os.preadv): the bytes their read() and os.pread() make "
                "are not aligned, and O_DIRECT refuses them with EINVAL."
                if workload == "aio-read-direct"
                else ""
            ),
        ]
    if "aio-small-files" in workloads and "aio-small-files" not in skipped:
        cols = [c for c in CONTENDERS["aio-small-files"] if c not in skipped]
        out += [
            "",
            f"## aio-small-files: {AIO_CONCURRENCY} tasks, each opening, reading whole and "
            f"closing one of {SMALL_FILES} page-cached {SMALL_FILE_SIZE >> 10} KiB files, "
            "files/s (CPU µs per file)",
            "",
            "| " + " | ".join(cols) + " |",
            "|---" * len(cols) + "|",
            "| "
            + " | ".join(cell(medians.get(key("aio-small-files", c, {})), True) for c in cols)
            + " |",
        ]
        out += ratios_line("aio-small-files", {}, AIO_RING[0])
        out += [
            "",
            "century_ring.aio: openat + read + close awaited one after the other; century_ring "
            "sync: 64 files a batch, one submit_and_wait each for the opens, reads and closes; "
            "run_in_executor: one call per file doing os.open, os.read and os.close.",
        ]
    if "aio-echo" in workloads and "aio-echo" not in skipped:
        out += [
            "",
            f"## aio-echo: {AIO_CONCURRENCY} loopback TCP connections, {AIO_ECHO_MESSAGE}-byte "
            "messages, server and clients in one process, round trips/s (CPU µs per round trip)",
            "",
            "| loop | century_ring.aio streams | anyio streams | ratio (median, range) |",
            "|---|---|---|---|",
        ]
        for loop, mine, other in zip(LOOPS, AIO_ECHO_RING, AIO_ECHO_ANYIO, strict=True):
            ratio = next(
                (
                    r
                    for r in report["ratios"]
                    if r["workload"] == "aio-echo"
                    and r["metric"] == "ops_per_sec"
                    and r["numerator"]["contender"] == mine
                ),
                None,
            )
            text = (
                "n/a"
                if ratio is None
                else (f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})")
            )
            out.append(
                f"| {loop} | {cell(medians.get(key('aio-echo', mine, {})), True)} | "
                f"{cell(medians.get(key('aio-echo', other, {})), True)} | {text} |"
            )
        out += [
            "",
            f"Each measurement lasts --seconds ({settings['seconds']} s), not --echo-seconds. "
            "CPU time is the whole process's: server and client side of every round trip.",
        ]
    return out


def ratio_text(report: dict[str, Any], workload: str, params: dict[str, Any], other: str) -> str:
    """century_ring's same-round ratio of ops/s to ``other``'s: median (range), or n/a."""
    for r in report["ratios"]:
        if (
            r["workload"] == workload
            and r["metric"] == "ops_per_sec"
            and r["numerator"] == {"contender": "century_ring", "params": params}
            and r["denominator"] == {"contender": other, "params": params}
        ):
            return f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"
    return "n/a"


def loop_markdown(report: dict[str, Any], medians: dict[tuple[Any, ...], Any]) -> list[str]:
    """The loop workloads' tables: each loop's ops/s (server CPU µs per op), the native server
    beside the echo rows, century_ring's same-round ratios to uvloop and asyncio, and the
    highest CPU share of the load generator in the row (near 100%: it set the pace)."""
    settings = report["settings"]
    workloads = [w for w in settings["workloads"] if w.startswith("loop-")]
    skipped = report["skipped"]
    out: list[str] = []
    if not workloads:
        return out
    loops = list(LOOP_CONTENDERS)
    ratio_heads = ["century_ring / uvloop", "century_ring / asyncio"]
    versions = settings.get("loop_versions", {})
    out += [
        "",
        "## The event loops (issue 14)",
        "",
        f"{settings.get('loop_seconds')} s per measurement. century_ring is "
        "`century_ring.asyncio.new_event_loop(strict=True)`, uvloop `uvloop.new_event_loop()`, "
        "asyncio `asyncio.SelectorEventLoop()`, rloop `rloop.new_event_loop()`; the same server "
        "code runs on each (benches/loop_workloads.py). Server CPU is `getrusage` of the server "
        "process from the moment all connections were up to the last close, divided by the "
        "messages (requests) it answered."
        + (
            " Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."
            if versions
            else ""
        ),
    ]

    def shares(workload: str, params: dict[str, Any], contenders: Iterable[str]) -> str:
        found = [
            m["client_cpu_share"]
            for c in contenders
            if (m := medians.get(key(workload, c, params))) and "client_cpu_share" in m
        ]
        return f"{max(found):.0%}" if found else "n/a"

    titles = {
        "loop-echo-protocol": "echo on `asyncio.Protocol` (`data_received` -> `transport.write`)",
        "loop-echo-streams": "echo on `asyncio.start_server` (`readexactly`, `write`, `drain`)",
        "loop-echo-sock": "echo on `sock_accept`, `sock_recv_into`, `sock_sendall`",
    }
    for workload, title in titles.items():
        if workload not in workloads or workload in skipped:
            continue
        cols = [*loops, "native"]
        head = ["size", "conns", *cols, *ratio_heads, "client CPU (max)"]
        out += ["", f"### {workload}: {title}, messages/s (server CPU µs per message)", ""]
        out += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for p in loop_params(workload):
            if not any(medians.get(key(workload, c, p)) for c in cols):
                continue
            row = [f"{p['size'] >> 10} KiB", str(p["conns"])]
            row += [cell(medians.get(key(workload, c, p)), True) for c in cols]
            row += [ratio_text(report, workload, p, other) for other in ("uvloop", "asyncio")]
            row.append(shares(workload, p, cols))
            out.append("| " + " | ".join(row) + " |")
    if "loop-http" in workloads and "loop-http" not in skipped:
        head = ["server", *loops, *ratio_heads, "wrk CPU (max)"]
        out += [
            "",
            f"### loop-http: HTTP/1.1 keep-alive, `wrk -t1 -c{LOOP_HTTP_CONNECTIONS}`, "
            "requests/s (server CPU µs per request)",
            "",
            "| " + " | ".join(head) + " |",
            "|---" * len(head) + "|",
        ]
        for p in loop_params("loop-http"):
            if f"loop-http {p['server']}" in skipped:
                continue
            row = [p["server"]]
            row += [cell(medians.get(key("loop-http", c, p)), True) for c in loops]
            row += [ratio_text(report, "loop-http", p, other) for other in ("uvloop", "asyncio")]
            row.append(shares("loop-http", p, loops))
            out.append("| " + " | ".join(row) + " |")
        out += [
            "",
            "httptools: `asyncio.Protocol` + `httptools.HttpRequestParser`, a fixed 13-byte "
            'response; uvicorn: a tiny ASGI app, `uvicorn.Config(app, loop="none", '
            'http="httptools")`, `server.serve()` on the contender\'s loop.',
        ]
    if "loop-callbacks" in workloads and "loop-callbacks" not in skipped:
        head = ["benchmark", *loops, *ratio_heads]
        out += ["", "### loop-callbacks: operations/s (CPU µs per operation), in one process", ""]
        out += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for p in loop_params("loop-callbacks"):
            row = [p["bench"]]
            row += [cell(medians.get(key("loop-callbacks", c, p)), True) for c in loops]
            row += [ratio_text(report, "loop-callbacks", p, o) for o in ("uvloop", "asyncio")]
            out.append("| " + " | ".join(row) + " |")
        out += [
            "",
            "call_soon, call_later: batches of 1000 `loop.call_soon(cb)` / `loop.call_later(0, "
            "cb)`, the task awaiting a future the batch's last callback resolves; sleep0: one "
            "task looping `await asyncio.sleep(0)`; tasks: batches of 1000 "
            "`loop.create_task(noop())`, each awaited.",
        ]
    unclosed = [
        m
        for m in report["measurements"]
        if m.get("ok") and m["workload"] in workloads and m.get("unclosed")
    ]
    if unclosed:
        who = sorted({m["contender"] for m in unclosed})
        out += [
            "",
            f"Lost closes: in {len(unclosed)} measurement(s) ({', '.join(who)}) the loop never "
            "reported the close of some connections (up to "
            f"{max(m['unclosed'] for m in unclosed)}); the server's window then ended when the "
            "load generator exited.",
        ]
    out += [
        "",
        "The load generators are native: the native reference's echo-client (one thread, one "
        "ring, one message in flight per connection) and wrk (one thread); *client CPU* is the "
        "highest CPU share the load generator had in the row: near 100% means it, not the "
        "server, set the pace. native is the native reference's echo-server (Rust, no "
        "interpreter): what any server gets from this client on this machine.",
    ]
    return out


def aio_panels(
    report: dict[str, Any],
    axes: Any,
    medians: dict[tuple[Any, ...], Any],
    colours: dict[str, str],
    bars: Any,
) -> None:
    """The async workloads' row of the plot: reads/s against tasks for both read workloads,
    bars for small files and echo."""
    skipped = report["skipped"]
    for ax, workload, title in (
        (axes[0], "aio-read-cached", "aio-read-cached: 4 KiB page-cache reads by N tasks"),
        (axes[1], "aio-read-direct", "aio-read-direct: 4 KiB O_DIRECT reads by N tasks"),
    ):
        ax.set_title(title, fontsize=10)
        tasks = report["settings"].get("aio_tasks", {}).get(workload, list(AIO_TASKS[workload]))
        drawn = False
        for c in CONTENDERS[workload]:
            points = [(t, medians.get(key(workload, c, {"tasks": t}))) for t in tasks]
            points = [(t, m) for t, m in points if m]
            if not points or c in skipped:
                continue
            xs = [t for t, _ in points]
            ys = [m["ops_per_sec"] for _, m in points]
            low = [m["ops_per_sec"] - m["ops_per_sec_min"] for _, m in points]
            high = [m["ops_per_sec_max"] - m["ops_per_sec"] for _, m in points]
            ax.errorbar(xs, ys, yerr=[low, high], marker="o", color=colours[c], label=c, capsize=3)
            drawn = True
        ax.set_xscale("log", base=2)
        ax.set_xticks(tasks, [str(t) for t in tasks])
        ax.set_xlabel("concurrent tasks")
        ax.set_ylabel("reads/s (log scale)")
        ax.set_yscale("log")  # the thread-pool contenders are 10-50x below the ring
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
    items = [(c, medians.get(key("aio-small-files", c, {}))) for c in CONTENDERS["aio-small-files"]]
    found = [(c, m) for c, m in items if m]
    bars(
        axes[2],
        f"aio-small-files: {AIO_CONCURRENCY} tasks, open + read + close of 16 KiB files",
        [("files/s", found)] if found else [],
    )
    axes[2].set_ylabel("files/s")
    groups = []
    for loop, mine, other in zip(LOOPS, AIO_ECHO_RING, AIO_ECHO_ANYIO, strict=True):
        pair = [
            (name, medians.get(key("aio-echo", c, {})))
            for name, c in (("century_ring.aio streams", mine), ("anyio streams", other))
        ]
        pair = [(name, m) for name, m in pair if m]
        if pair:
            groups.append((loop, pair))
    bars(axes[3], f"aio-echo: {AIO_CONCURRENCY} connections, 1 KiB messages", groups)
    axes[3].set_ylabel("round trips/s")


def loop_panels(
    report: dict[str, Any], axes: Any, medians: dict[tuple[Any, ...], Any], bars: Any
) -> None:
    """The loop workloads' row of the plot: bars per loop for each echo setting, for the sock
    echo and the HTTP servers, and for the micro-benchmarks."""

    def groups(workload: str, label: Any) -> list[tuple[str, list[tuple[str, Any]]]]:
        found = []
        for p in loop_params(workload):
            items = [(c, medians.get(key(workload, c, p))) for c in CONTENDERS[workload]]
            items = [(c, m) for c, m in items if m]
            if items:
                found.append((label(p), items))
        return found

    def echo_label(p: dict[str, Any]) -> str:
        return f"{p['size'] >> 10}K x{p['conns']}"

    for ax, workload in zip(axes[:2], ("loop-echo-protocol", "loop-echo-streams"), strict=True):
        title = f"{workload}: messages/s by size x connections"
        bars(ax, title, groups(workload, echo_label), labels=False, log=True)
        ax.set_ylabel("round trips/s (log scale)")
        ax.tick_params(axis="x", labelsize=7)
    mixed = groups("loop-echo-sock", lambda p: "sock echo 1K x64")
    mixed += groups("loop-http", lambda p: f"HTTP {p['server']}")
    bars(axes[2], "loop-echo-sock (messages/s) and loop-http (requests/s)", mixed, log=True)
    axes[2].set_ylabel("per second (log scale)")
    bars(axes[3], "loop-callbacks: operations/s", groups("loop-callbacks", lambda p: p["bench"]))
    axes[3].set_ylabel("operations/s")


def plot(report: dict[str, Any], path: Path) -> str | None:
    """Draw the PNG at ``path``; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "matplotlib is not installed: no PNG (python -m pip install matplotlib)"
    medians = {key(m["workload"], m["contender"], m["params"]): m for m in report["medians"]}
    colours = {
        "century_ring": "tab:red",
        "century_ring kept": "tab:brown",
        "native": "tab:blue",
        "liburing": "tab:green",
        "os.pread": "tab:gray",
        "native pread": "tab:cyan",
        "thread pool": "tab:orange",
        "selectors": "tab:gray",
        "asyncio": "tab:purple",
        "century_ring.aio asyncio": "tab:red",
        "century_ring.aio uvloop": "tab:pink",
        "century_ring.aio trio": "tab:brown",
        "century_ring.aio open_file": "tab:olive",
        "aiofiles": "tab:green",
        "anyio.open_file": "tab:purple",
        "run_in_executor": "tab:orange",
        "century_ring sync": "tab:blue",
        "century_ring.aio streams": "tab:red",
        "anyio streams": "tab:purple",
        "uvloop": "tab:green",
        "rloop": "tab:olive",
    }
    # A third row for the async workloads, when the run has any.
    with_aio = any(w.startswith("aio-") for w in report["settings"]["workloads"])
    # And one for the loop workloads.
    with_loop = any(w.startswith("loop-") for w in report["settings"]["workloads"])
    rows = 2 + with_aio + with_loop
    fig, axes = plt.subplots(rows, 4, figsize=(22, 4.75 * rows))
    si = FuncFormatter(lambda value, _pos: describe(value) if value else "0")
    fig.suptitle(
        f"Century Ring benchmarks · {report['machine']['date'][:10]} · Linux "
        f"{report['machine']['kernel']} · {report['machine']['cores']} cores · medians of "
        f"{report['settings']['rounds']} round(s), bars span min-max",
        fontsize=11,
    )

    def qd_panel(ax: Any, workload: str, metric: str, title: str, ylabel: str) -> None:
        ax.set_title(title, fontsize=10)
        drawn = False
        depths = QDS[workload]
        for c in CONTENDERS[workload]:
            if c in SERIAL:
                m = medians.get(key(workload, c, {"qd": 1}))
                if m and metric in m:
                    ax.axhline(
                        m[metric], color=colours[c], linestyle="--", label=f"{c} (one at a time)"
                    )
                    drawn = True
                continue
            points = [(q, medians.get(key(workload, c, {"qd": q}))) for q in depths]
            points = [(q, m) for q, m in points if m and metric in m]
            if not points:
                continue
            xs = [q for q, _ in points]
            ys = [m[metric] for _, m in points]
            low = [m[metric] - m[f"{metric}_min"] for _, m in points]
            high = [m[f"{metric}_max"] - m[metric] for _, m in points]
            ax.errorbar(xs, ys, yerr=[low, high], marker="o", color=colours[c], label=c, capsize=3)
            drawn = True
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(q) for q in depths])
        ax.set_xlabel("queue depth")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        if metric == "ops_per_sec":
            ax.yaxis.set_major_formatter(si)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)

    def ratio_panel(ax: Any, workload: str) -> None:
        """Each queueing contender's ops/s at every depth over its own at BASE_QD."""
        ax.set_title(
            f"{workload}: ops/s ÷ the same loop's at QD {BASE_QD} (issue 12: ≥ 1 from QD 128)",
            fontsize=10,
        )
        ratios = depth_ratios(report)
        depths = QDS[workload]
        drawn = False
        for c in CONTENDERS[workload]:
            points = [(BASE_QD, {"median": 1.0, "min": 1.0, "max": 1.0})] + [
                (q, ratios[(workload, c, q)]) for q in depths if (workload, c, q) in ratios
            ]
            if c in SERIAL or len(points) < 2:
                continue
            points.sort(key=lambda point: point[0])
            ys = [r["median"] for _, r in points]
            low = [r["median"] - r["min"] for _, r in points]
            high = [r["max"] - r["median"] for _, r in points]
            xs = [q for q, _ in points]
            ax.errorbar(xs, ys, yerr=[low, high], marker="o", color=colours[c], label=c, capsize=3)
            drawn = True
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(q) for q in depths])
        ax.set_xlabel("queue depth")
        ax.set_ylabel(f"ops/s ÷ ops/s at QD {BASE_QD}")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)

    qd_panel(
        axes[0][0], "read-cached", "ops_per_sec", "read-cached: 4 KiB page-cache reads", "ops/s"
    )
    ratio_panel(axes[0][1], "read-cached")
    qd_panel(
        axes[1][0],
        "read-cached",
        "reap_ns_per_cqe",
        "read-cached: ns inside get_completion_entries() per completion",
        "ns per completion",
    )
    qd_panel(axes[0][2], "read-direct", "ops_per_sec", "read-direct: 4 KiB O_DIRECT reads", "IOPS")
    qd_panel(
        axes[0][3],
        "read-direct",
        "cpu_us_per_op",
        "read-direct: CPU time per I/O (lower is better)",
        "CPU µs per I/O",
    )

    def bars(
        ax: Any,
        title: str,
        groups: list[tuple[str, list[tuple[str, Any]]]],
        labels: bool = True,
        log: bool = False,
    ) -> None:
        ax.set_title(title, fontsize=10)
        names = [c for _, items in groups for c, _ in items]
        contenders = list(dict.fromkeys(names))
        width = 0.8 / max(len(contenders), 1)
        for gi, (_group, items) in enumerate(groups):
            for c, m in items:
                ci = contenders.index(c)
                x = gi + (ci - (len(contenders) - 1) / 2) * width
                value = m["ops_per_sec"]
                ax.bar(
                    x,
                    value,
                    width,
                    color=colours.get(c, "tab:brown"),
                    label=c if gi == 0 else None,
                    yerr=[[value - m["ops_per_sec_min"]], [m["ops_per_sec_max"] - value]],
                    capsize=3,
                )
                if labels:
                    top = m["ops_per_sec_max"]
                    ax.text(x, top, describe(value), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(groups)), [g for g, _ in groups])
        if log and groups:
            ax.set_yscale("log")
            # Of the minor ticks, label 2x and 5x each power of ten.
            ax.yaxis.set_minor_formatter(
                FuncFormatter(lambda v, _pos: describe(v) if f"{v:e}"[0] in "25" else "")
            )
        ax.yaxis.set_major_formatter(si)
        ax.grid(axis="y", alpha=0.3)
        if contenders:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)

    nop_groups = []
    for b in BATCHES:
        items = [(c, medians.get(key("nop", c, {"batch": b}))) for c in CONTENDERS["nop"]]
        nop_groups.append((f"batch {b}", [(c, m) for c, m in items if m]))
    bars(axes[1][1], "nop: no-ops per second", [g for g in nop_groups if g[1]])
    axes[1][1].set_ylabel("ops/s")
    echo_items = [(c, medians.get(key("echo", c, {}))) for c in CONTENDERS["echo"]]
    echo_items = [(c, m) for c, m in echo_items if m]
    bars(
        axes[1][2],
        f"echo: {ECHO_CONNECTIONS} loopback connections, {ECHO_MESSAGE}-byte messages",
        [("messages/s", echo_items)] if echo_items else [],
    )
    axes[1][2].set_ylabel("round trips/s")

    ax = axes[1][3]
    ax.set_title("overhead: century_ring alone (ns)", fontsize=10)
    m = medians.get(key("overhead", "century_ring", {}))
    if m:
        metrics = [k for k in OVERHEAD_METRICS if k in m]
        values = [m[k] for k in metrics]
        ax.barh(metrics, values, color="tab:red")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.0f}", va="center", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlim(right=max(values) * 4)
        ax.invert_yaxis()
        ax.set_xlabel("ns (log scale)")
    else:
        ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
    if with_aio:
        aio_panels(report, axes[2], medians, colours, bars)
    if with_loop:
        loop_panels(report, axes[rows - 1], medians, bars)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --- main ---------------------------------------------------------------------------------------


def estimate_seconds(s: Settings) -> float:
    per_round = 0.0
    for workload in s.workloads:
        for _case in cases(workload, 0, s):
            if workload.startswith("loop-"):
                # wrk runs whole seconds (and rloop's lost closes wait a second); a server
                # starts, connects and closes in about 0.1 s, a callbacks process as fast.
                if workload == "loop-http":
                    per_round += max(1, round(s.loop_seconds)) + 0.35
                else:
                    per_round += s.loop_seconds + 0.12
                continue
            per_round += s.echo_seconds + 1.5 if workload == "echo" else s.seconds + 0.3
            if workload.startswith("aio-"):
                per_round += 0.3  # importing anyio and the loops
    return per_round * s.rounds


def main(argv: list[str] | None = None) -> int:
    s = parse_args(argv)
    started = time.perf_counter()
    uses_native = "echo" in s.workloads or any(
        c.startswith("native") for w in s.workloads for c in CONTENDERS[w]
    )
    if uses_native:
        build_native(s)
    uses_liburing = any("liburing" in CONTENDERS[w] for w in s.workloads)
    uses_aio = any(w.startswith("aio-") for w in s.workloads)
    uses_loops = any(w.startswith("loop-") for w in s.workloads)
    # The PyPI contender, the plot's library and the async rivals, when the registry has
    # wheels for them.
    install_missing(
        s,
        (["liburing"] if uses_liburing else [])
        + ["matplotlib"]
        + (list(AIO_PACKAGES) if uses_aio else [])
        + [n for n in LOOP_PACKAGES if uses_loops and not (uses_aio and n in AIO_PACKAGES)],
    )
    if uses_liburing:
        find_liburing(s)
    if uses_aio:
        find_aio(s)
    if uses_loops:
        find_loops(s)
    needs_cached = {"read-cached", "overhead", "aio-read-cached"} & set(s.workloads)
    if needs_cached:
        ensure_file(s.cached_file, CACHED_SIZE)
        warm(s.cached_file)
    for direct_workload in ("read-direct", "aio-read-direct"):
        if direct_workload in s.workloads:
            ensure_file(s.direct_file, DIRECT_SIZE)
            why = direct_supported(s.direct_file)
            if why:
                s.skipped[direct_workload] = why
    if "aio-small-files" in s.workloads:
        ensure_small_files(s.small_dir)
    for name, why in s.skipped.items():
        log(f"skipping {name}: {why}")
    log(
        f"running {', '.join(s.workloads)}: {s.rounds} round(s), {s.seconds} s per measurement"
        + (f" ({s.loop_seconds} s for the loop workloads)" if uses_loops else "")
        + f", about {estimate_seconds(s) / 60:.1f} min"
    )

    measurements: list[dict[str, Any]] = []
    for round_index in range(s.rounds):
        measure_round(s, round_index, measurements)

    table = index(measurements)
    report: dict[str, Any] = {
        "suite": "century-ring benchmarks",
        "schema": 2,
        "machine": machine_info(),
        "settings": {
            "workloads": list(s.workloads),
            "rounds": s.rounds,
            "seconds": s.seconds,
            "echo_seconds": s.echo_seconds,
            "quick": s.quick,
            "batches": list(BATCHES),
            "queue_depths": {workload: list(depths) for workload, depths in QDS.items()},
            "read_size": READ_SIZE,
            "cached_file": str(s.cached_file),
            "direct_file": str(s.direct_file),
            "echo_connections": ECHO_CONNECTIONS,
            "echo_message_bytes": ECHO_MESSAGE,
            "echo_client": "native" if s.native else "python",
            "aio_tasks": {w: list(s.aio_tasks(w)) for w in AIO_TASKS},
            "aio_concurrency": AIO_CONCURRENCY,
            "small_files": {"dir": str(s.small_dir), "count": SMALL_FILES, "size": SMALL_FILE_SIZE},
            "aio_echo_message_bytes": AIO_ECHO_MESSAGE,
            "loop_seconds": s.loop_seconds,
            "loop_echo_grid": {w: s.loop_echo_grid(w) for w in LOOP_ECHO},
            "loop_http_connections": LOOP_HTTP_CONNECTIONS,
            "loop_versions": loop_versions(s) if uses_loops else {},
        },
        "skipped": s.skipped,
        "measurements": measurements,
        "medians": summarise(measurements),
        "ratios": all_ratios(table),
        "targets": check_targets(table, s.workloads, s),
    }
    overhead = [m for m in report["medians"] if m["workload"] == "overhead"]
    report["overhead"] = {
        k: overhead[0][k] for k in OVERHEAD_METRICS if overhead and k in overhead[0]
    }
    report["elapsed_seconds"] = round(time.perf_counter() - started, 1)

    s.out.mkdir(parents=True, exist_ok=True)
    (s.out / f"{s.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (s.out / f"{s.name}.md").write_text(text)
    why_not = plot(report, s.out / f"{s.name}.png")
    print(text)
    if why_not:
        log(why_not)
    log(f"wrote {s.out / s.name}.json, {s.name}.md" + ("" if why_not else f", {s.name}.png"))
    failed = sum(1 for m in measurements if not m.get("ok"))
    if failed:
        log(f"{failed} measurement(s) failed; see {s.name}.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
