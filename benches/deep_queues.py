"""Deep queues: page-cached reads per second against queue depth, measured as issue 12 found it.

    python benches/deep_queues.py                  # this interpreter: 4 KiB, 64 KiB, 1 MiB reads
    python benches/deep_queues.py --python before=/old/venv/bin/python \\
                                  --python after=/new/venv/bin/python
    python benches/deep_queues.py --python \\
        'before-tuned=MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 /old/bin/python'
    python benches/deep_queues.py --sizes 4K --depths 32,128 --rounds 5 --seconds 2 \\
                                  --strace --native --json deep.json

The loop is the one a user writes first: queue QD reads of SIZE bytes at random offsets of a
page-cached 64 MiB file, ``submit_and_wait(QD)``, ``got = ring.get_completion_entries()``,
repeat. Two ways of holding the results (``benches/workloads.py --mode``):

* **kept**: ``got`` keeps the previous batch's list alive while the next batch is queued and
  reaped; it is dropped only when ``got`` is reassigned;
* **drop**: every batch's list (and its last event) is dropped before the next is queued.

Each measurement is its own process (``benches/workloads.py century_ring read``, run by the
build's interpreter), so every one starts from a fresh heap. In every round each build runs
each loop once per read size and depth; within a (size, depth) group the builds' and loops'
order rotates by one place from round to round, and the depth order reverses every other
round. A build is ``NAME=[VAR=VALUE ...] PYTHON``: an interpreter with century_ring installed,
and environment variables to set for it (a malloc tunable, say).

Each measurement runs ``--warmup`` batches (10) before its window opens: with 1 MiB reads at
QD 512 a heap takes several batches to reach the size the loop needs, and a few seconds' window
holds only a few batches, so without them the window measures that transient.

For every build, size and loop the report gives the median reads/s at each depth, the ratio to
QD 32 taken round by round (median and range), the time spent inside
``get_completion_entries()`` per read (median; it includes making each read's ``bytes``, so it
grows with the read size) and the minor page faults per read (memory the heap gave back and
took again is faulted in anew). With several builds, each build's reads/s divided by the first
build's, round by round. ``--strace`` adds one traced run per measurement after the timed
rounds: ``brk``, ``mmap`` and ``munmap`` calls per batch inside the window, and how many of the
``brk`` calls shrank the heap. ``--native`` adds the native reference (``benches/native``,
batch mode into reused buffers: the kernel's work with no Python allocation at all).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHES = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHES))
import run as suite  # noqa: E402 - the suite's test file, native build and helpers

WORKLOADS = BENCHES / "workloads.py"
LOOPS = ("drop", "kept")
MODE = {"drop": "batch", "kept": "kept"}
NATIVE = "native"
DEFAULT_SIZES = "4K,64K,1M"
DEFAULT_DEPTHS = "32,64,128,256,512"
BASE_DEPTH = 32
#: The issue's targets: these depths at least this many times QD 32's reads per second.
TARGET_DEPTHS = (128, 256)
TARGET_BOUND = 1.0
TRACED = ("brk", "mmap", "munmap")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Build:
    """An interpreter with century_ring installed, and the environment it runs with."""

    name: str
    python: str
    env: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def parse(text: str) -> Build:
        name, sep, rest = text.partition("=")
        words = shlex.split(rest)
        if not sep or not name or not words:
            raise ValueError(f"expected NAME=[VAR=VALUE ...] PYTHON, got {text!r}")
        *assignments, python = words
        env = []
        for word in assignments:
            var, eq, value = word.partition("=")
            if not eq or not var:
                raise ValueError(f"{word!r} in {text!r} is not VAR=VALUE")
            env.append((var, value))
        if name == NATIVE:
            raise ValueError(f"{NATIVE!r} names the native reference; pick another build name")
        return Build(name, python, tuple(env))

    def environ(self) -> dict[str, str]:
        return {**os.environ, **dict(self.env)}

    def describe(self) -> str:
        prefix = " ".join(f"{k}={v}" for k, v in self.env)
        return f"{prefix} {self.python}".strip()


@dataclass
class Settings:
    builds: list[Build]
    sizes: list[int]
    depths: list[int]
    loops: list[str]
    rounds: int
    seconds: float
    warmup: int
    data_dir: Path
    strace: bool
    strace_seconds: float
    native: bool
    json_path: Path | None
    notes: list[str] = field(default_factory=list)

    @property
    def file(self) -> Path:
        return self.data_dir / "century-ring-bench-64MiB.bin"


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)(?:i?B)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 4096, 64K or 1M)")
    value = int(match.group(1)) << {"": 0, "k": 10, "m": 20}[match.group(2).lower()]
    if not 1 <= value <= 1 << 30:
        raise argparse.ArgumentTypeError(f"read size out of range: {text!r}")
    return value


def size_label(size: int) -> str:
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size >= 1 << 10 and size % (1 << 10) == 0:
        return f"{size >> 10} KiB"
    return f"{size} B"


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See benches/README.md, 'Deep queues'.",
    )
    parser.add_argument(
        "--python",
        action="append",
        metavar="NAME=[VAR=VALUE ...] PYTHON",
        help="a build to measure (repeatable; default: this interpreter, named 'this')",
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"read sizes ({DEFAULT_SIZES})")
    parser.add_argument(
        "--depths", default=DEFAULT_DEPTHS, help=f"queue depths ({DEFAULT_DEPTHS}); 32 is added"
    )
    parser.add_argument("--loops", default=",".join(LOOPS), help="drop, kept or both")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="seconds per measurement (default 1)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="batches each measurement runs before its window (default 10)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("CENTURY_RING_BENCH_DIR", "/var/tmp")),
        help="where the suite's 64 MiB test file lives or is made (default /var/tmp)",
    )
    parser.add_argument(
        "--strace", action="store_true", help="count brk/mmap/munmap per batch (needs strace)"
    )
    parser.add_argument(
        "--strace-seconds", type=float, default=0.5, help="window of each traced run (0.5)"
    )
    parser.add_argument(
        "--native", action="store_true", help="add the native reference (built with cargo)"
    )
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    args = parser.parse_args(argv)
    try:
        builds = [Build.parse(text) for text in args.python or []]
    except ValueError as err:
        parser.error(str(err))
    if not builds:
        builds = [Build("this", sys.executable)]
    names = [b.name for b in builds]
    if len(set(names)) != len(names):
        parser.error(f"build names must differ: {names}")
    try:
        sizes = list(dict.fromkeys(parse_size(t) for t in args.sizes.split(",") if t.strip()))
        depths = sorted({int(t) for t in args.depths.split(",") if t.strip()} | {BASE_DEPTH})
    except (argparse.ArgumentTypeError, ValueError) as err:
        parser.error(str(err))
    loops = [t.strip() for t in args.loops.split(",") if t.strip()]
    if not loops or any(loop not in LOOPS for loop in loops):
        parser.error(f"--loops takes {', '.join(LOOPS)}")
    if not sizes or any(d < 1 or d > 4096 for d in depths):
        parser.error("sizes must be given and depths between 1 and 4096")
    if args.rounds < 1 or args.seconds <= 0 or args.warmup < 0 or args.strace_seconds <= 0:
        parser.error("--rounds, --seconds and --strace-seconds must be positive")
    return Settings(
        builds=builds,
        sizes=sizes,
        depths=depths,
        loops=loops,
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        data_dir=args.data_dir,
        strace=args.strace,
        strace_seconds=args.strace_seconds,
        native=args.native,
        json_path=args.json,
    )


# --- preparation --------------------------------------------------------------------------------


PROBE = (
    "import importlib.metadata as m, json, os, sys, century_ring._century_ring as ext\n"
    "print(json.dumps({'python': sys.version.split()[0], 'executable': sys.executable,"
    " 'century_ring': m.version('century-ring'), 'extension': ext.__file__,"
    " 'extension_mtime': os.stat(ext.__file__).st_mtime}))"
)


def probe(build: Build) -> dict[str, Any]:
    """Which century_ring the build's interpreter imports, and when its extension was built."""
    try:
        proc = subprocess.run(
            [build.python, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=BENCHES,
            env=build.environ(),
        )
    except OSError as err:
        raise SystemExit(f"build {build.name}: cannot run {build.python}: {err}") from err
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise SystemExit(f"build {build.name}: {build.python} cannot import century_ring: {tail}")
    info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    built = datetime.datetime.fromtimestamp(info.pop("extension_mtime"), datetime.timezone.utc)
    info["extension_built"] = built.isoformat(timespec="seconds")
    return info


def page_cached(path: Path) -> bool | None:
    """Whether every page of ``path`` is in the page cache: reads with RWF_NOWAIT, which fail
    with EAGAIN rather than wait for the disk. None when the kernel or file system cannot say."""
    flag = getattr(os, "RWF_NOWAIT", None)
    if flag is None:
        return None
    buffer = bytearray(1 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        offset, size = 0, os.fstat(fd).st_size
        while offset < size:
            try:
                n = os.preadv(fd, [buffer], offset, flag)
            except BlockingIOError:
                return False
            except OSError:
                return None
            if n <= 0:
                return False
            offset += n
    finally:
        os.close(fd)
    return True


def warm(path: Path) -> None:
    """Read the file into the page cache, and check that all of it stayed there."""
    for _ in range(3):
        suite.warm(path)
        if page_cached(path) is not False:
            return
    raise SystemExit(f"{path} does not stay in the page cache (too little memory?)")


def memory_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return None


def fits(size: int, qd: int, available: int | None) -> bool:
    """Whether a kept loop's two batches of results, plus the batch of buffers the ring reads
    into, fit in half the memory available."""
    return available is None or 3 * size * qd <= available // 2


# --- one measurement ----------------------------------------------------------------------------


def command(s: Settings, contender: tuple[str, str], size: int, qd: int) -> list[str]:
    build_name, loop = contender
    common = ["--qd", str(qd), "--size", str(size), "--file", str(s.file)]
    if build_name == NATIVE:
        return [str(suite.NATIVE_BIN), "read", *common, "--mode", "batch"]
    build = next(b for b in s.builds if b.name == build_name)
    return [
        *(build.python, str(WORKLOADS), "century_ring", "read", *common),
        *("--mode", MODE[loop], "--warmup", str(s.warmup)),
    ]


def environ(s: Settings, build_name: str) -> dict[str, str]:
    if build_name == NATIVE:
        return dict(os.environ)
    return next(b for b in s.builds if b.name == build_name).environ()


def run_one(
    cmd: list[str], env: dict[str, str], seconds: float, prefix: Iterable[str] = ()
) -> dict[str, Any]:
    """Run one measurement and return its JSON line (``ok`` False and ``error`` on failure)."""
    full = [*prefix, *cmd, "--seconds", str(seconds)]
    try:
        proc = subprocess.run(
            full,
            capture_output=True,
            text=True,
            timeout=seconds * 10 + 300,
            cwd=BENCHES,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out: {' '.join(full)}"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"ok": False, "error": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    result["ok"] = True
    return result


STRACE_LINE = re.compile(r"^(?:\d+\s+)?(\d+\.\d+)\s+(\w+)\((.*)\)\s+=\s+(\S+)")


def count_calls(trace: str, start: float, seconds: float) -> dict[str, int]:
    """System calls of ``TRACED`` in the window [start, start + seconds] of an ``strace -ttt``
    log, and ``brk_shrink``: the brk calls that moved the break down (the heap trimmed)."""
    counts = dict.fromkeys(TRACED, 0)
    counts["brk_shrink"] = 0
    last_break = None
    for line in trace.splitlines():
        match = STRACE_LINE.match(line)
        if not match:
            continue
        when, name, _args, result = float(match[1]), match[2], match[3], match[4]
        if name == "brk":
            try:
                now = int(result, 16)
            except ValueError:
                now = None
            inside = start <= when <= start + seconds
            if inside and now is not None and last_break is not None and now < last_break:
                counts["brk_shrink"] += 1
            if now is not None:
                last_break = now
        if name in counts and start <= when <= start + seconds:
            counts[name] += 1
    return counts


def strace_prefix(log_file: str) -> list[str]:
    calls = ",".join(TRACED)
    return ["strace", "-f", "--seccomp-bpf", "-ttt", "-e", f"trace={calls}", "-o", log_file]


def strace_usable() -> str | None:
    """Why strace cannot count here, or None when it can."""
    if shutil.which("strace") is None:
        return "strace is not installed"
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        proc = subprocess.run(
            [*strace_prefix(trace.name), sys.executable, "-c", "pass"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            return f"strace does not run here: {tail}"
    return None


def traced(s: Settings, contender: tuple[str, str], size: int, qd: int) -> dict[str, Any]:
    """One untimed run under strace: traced calls per batch inside the window."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        result = run_one(
            command(s, contender, size, qd),
            environ(s, contender[0]),
            s.strace_seconds,
            prefix=strace_prefix(trace.name),
        )
        if not result["ok"]:
            return result
        counts = count_calls(trace.read(), result["window_start"], result["seconds"])
    batches = max(result["reaps"], 1)
    return {
        "ok": True,
        "batches": result["reaps"],
        **counts,
        **{f"{k}_per_batch": round(v / batches, 3) for k, v in counts.items()},
    }


# --- the rounds ---------------------------------------------------------------------------------


def contenders(s: Settings) -> list[tuple[str, str]]:
    found = [(b.name, loop) for b in s.builds for loop in s.loops]
    if s.native:
        found.append((NATIVE, "drop"))
    return found


def schedule(s: Settings, round_index: int) -> list[tuple[int, int, tuple[str, str]]]:
    """This round's (size, depth, contender) list, in the order they run."""
    people = contenders(s)
    shift = round_index % len(people)
    rotated = people[shift:] + people[:shift]
    depths = s.depths if round_index % 2 == 0 else s.depths[::-1]
    return [(size, qd, c) for size in s.sizes for qd in depths for c in rotated]


def measure(s: Settings) -> list[dict[str, Any]]:
    available = memory_available()
    measurements = []
    total = s.rounds * len(schedule(s, 0))
    done = 0
    for round_index in range(s.rounds):
        warmed = None
        for size, qd, (build, loop) in schedule(s, round_index):
            done += 1
            if warmed != size:
                warm(s.file)
                warmed = size
            record: dict[str, Any] = {
                "round": round_index,
                "build": build,
                "loop": loop,
                "size": size,
                "qd": qd,
            }
            if not fits(size, qd, available):
                record.update(ok=False, error="skipped: the batches would not fit in memory")
            else:
                result = run_one(command(s, (build, loop), size, qd), environ(s, build), s.seconds)
                record.update({k: v for k, v in result.items() if k not in record})
            measurements.append(record)
            what = f"[{done}/{total}] round {round_index + 1} {build} {loop} {size_label(size)}"
            if record["ok"]:
                reap = record.get("reap_ns_per_cqe")
                log(
                    f"{what} QD {qd}: {suite.describe(record['ops_per_sec'])} reads/s"
                    + (f", reap {reap:.0f} ns/read" if reap is not None else "")
                )
            else:
                log(f"{what} QD {qd}: FAILED ({record['error']})")
    return measurements


def trace_all(s: Settings) -> list[dict[str, Any]]:
    available = memory_available()
    traces = []
    for size in s.sizes:
        warm(s.file)
        for qd in s.depths:
            for build, loop in contenders(s):
                if build == NATIVE or not fits(size, qd, available):
                    continue
                record = {"build": build, "loop": loop, "size": size, "qd": qd}
                record.update(traced(s, (build, loop), size, qd))
                traces.append(record)
                if record["ok"]:
                    log(
                        f"strace {build} {loop} {size_label(size)} QD {qd}: "
                        f"{record['brk_per_batch']} brk ({record['brk_shrink_per_batch']} "
                        f"shrinking), {record['mmap_per_batch']} mmap, "
                        f"{record['munmap_per_batch']} munmap per batch"
                    )
                else:
                    log(f"strace {build} {loop} {size_label(size)} QD {qd}: {record['error']}")
    return traces


# --- the summary --------------------------------------------------------------------------------


Key = tuple[str, str, int, int]  # build, loop, size, qd


def by_round(measurements: list[dict[str, Any]]) -> dict[Key, dict[int, dict[str, Any]]]:
    table: dict[Key, dict[int, dict[str, Any]]] = {}
    for m in measurements:
        if m.get("ok"):
            table.setdefault((m["build"], m["loop"], m["size"], m["qd"]), {})[m["round"]] = m
    return table


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratio(table: dict[Key, dict[int, dict[str, Any]]], num: Key, den: Key) -> dict[str, Any] | None:
    """ops/s of ``num`` over ``den``, round by round, and the spread of those ratios."""
    a, b = table.get(num, {}), table.get(den, {})
    per_round = {
        r: a[r]["ops_per_sec"] / b[r]["ops_per_sec"]
        for r in sorted(a)
        if r in b and b[r]["ops_per_sec"] > 0
    }
    summary = spread(list(per_round.values()))
    if summary is None:
        return None
    return {
        **{k: round(v, 4) for k, v in summary.items()},
        "per_round": {str(r): round(v, 4) for r, v in per_round.items()},
    }


def summarise(s: Settings, measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = by_round(measurements)
    first = s.builds[0].name
    rows = []
    for build, loop in contenders(s):
        for size in s.sizes:
            for qd in s.depths:
                k = (build, loop, size, qd)
                runs = list(table.get(k, {}).values())
                row: dict[str, Any] = {"build": build, "loop": loop, "size": size, "qd": qd}
                row["rounds"] = len(runs)
                for metric in ("ops_per_sec", "reap_ns_per_cqe", "cpu_us_per_op", "faults_per_op"):
                    summary = spread([r[metric] for r in runs if metric in r])
                    if summary is not None:
                        row[metric] = summary
                row["to_qd32"] = ratio(table, k, (build, loop, size, BASE_DEPTH))
                if build not in (first, NATIVE):
                    row[f"to_{first}"] = ratio(table, k, (first, loop, size, qd))
                rows.append(row)
    return rows


def targets(s: Settings, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    index = {(r["build"], r["loop"], r["size"], r["qd"]): r for r in rows}
    for build, loop in contenders(s):
        for size in s.sizes:
            for qd in TARGET_DEPTHS:
                row = index.get((build, loop, size, qd))
                if row is None:
                    continue
                r = row["to_qd32"]
                found.append(
                    {
                        "build": build,
                        "loop": loop,
                        "size": size,
                        "label": f"QD {qd} / QD {BASE_DEPTH}",
                        "bound": f">= {TARGET_BOUND}",
                        "ratio": None if r is None else r["median"],
                        "min": None if r is None else r["min"],
                        "max": None if r is None else r["max"],
                        "met": None if r is None else r["median"] >= TARGET_BOUND,
                    }
                )
    return found


# --- the report ---------------------------------------------------------------------------------


def fmt_ratio(r: dict[str, Any] | None) -> str:
    if r is None:
        return "n/a"
    return f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"


def fmt(row: dict[str, Any] | None, metric: str, pattern: str) -> str:
    if row is None or metric not in row:
        return "—"
    return pattern.format(row[metric]["median"])


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    machine = report["machine"]
    out = [
        "# Deep queues: page-cached reads per second against queue depth",
        "",
        f"{machine['date']} · Linux {machine['kernel']} · {machine['cpu_model']}, "
        f"{machine['cores']} cores",
        "",
        f"{s['rounds']} round(s), {s['seconds']} s per measurement after {s['warmup']} warm-up "
        f"batch(es), each in its own process; medians over rounds. Ratios are taken round by "
        f"round, then their median (range over rounds). Random offsets in {s['file']} "
        "(page-cached, checked before every size).",
        "",
        "| build | interpreter | century_ring | extension |",
        "|---|---|---|---|",
    ]
    for b in report["builds"]:
        out.append(
            f"| {b['name']} | `{b['command']}` | {b['century_ring']} | "
            f"{b['extension']} (built {b['extension_built']}) |"
        )
    rows = {(r["build"], r["loop"], r["size"], r["qd"]): r for r in report["summary"]}
    names = [b["name"] for b in report["builds"]]
    first = names[0]
    traces = {(t["build"], t["loop"], t["size"], t["qd"]): t for t in report["strace"]}
    for size in s["sizes"]:
        for loop in s["loops"]:
            columns = names + ([NATIVE] if s["native"] and loop == "drop" else [])
            held = (
                "the previous batch's list alive until the next batch is reaped"
                if loop == "kept"
                else "each batch's list dropped before the next is queued"
            )
            out += ["", f"## {size_label(size)} reads, {loop} loop ({held})", ""]
            head = ["QD"]
            for name in columns:
                head += [f"{name} reads/s", f"{name} ÷ QD {BASE_DEPTH}"]
                if name != NATIVE:
                    head += [f"{name} reap ns/read", f"{name} faults/read"]
            head += [f"{name} / {first}" for name in names[1:]]
            out += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
            for qd in s["depths"]:
                cells = [str(qd)]
                for name in columns:
                    row = rows.get((name, "drop" if name == NATIVE else loop, size, qd))
                    cells.append(fmt(row, "ops_per_sec", "{:,.0f}"))
                    cells.append(fmt_ratio(row["to_qd32"] if row else None))
                    if name != NATIVE:
                        cells.append(fmt(row, "reap_ns_per_cqe", "{:,.0f}"))
                        cells.append(fmt(row, "faults_per_op", "{:.2f}"))
                for name in names[1:]:
                    row = rows.get((name, loop, size, qd))
                    cells.append(fmt_ratio(row.get(f"to_{first}") if row else None))
                out.append("| " + " | ".join(cells) + " |")
        if report["strace"]:
            out += [
                "",
                f"### {size_label(size)} reads: system calls per batch inside the window "
                "(strace, one untimed run each)",
                "",
                "brk (of which shrinking the heap) / mmap / munmap.",
                "",
            ]
            columns = [(name, loop) for name in names for loop in s["loops"]]
            head = ["QD"] + [f"{name} {loop}" for name, loop in columns]
            out += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
            for qd in s["depths"]:
                cells = [str(qd)]
                for name, loop in columns:
                    t = traces.get((name, loop, size, qd))
                    if t is None or not t.get("ok"):
                        cells.append("n/a")
                    else:
                        cells.append(
                            f"{t['brk_per_batch']:.2f} ({t['brk_shrink_per_batch']:.2f}) / "
                            f"{t['mmap_per_batch']:.2f} / {t['munmap_per_batch']:.2f}"
                        )
                out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        f"## Targets: QD {' and '.join(map(str, TARGET_DEPTHS))} at >= {TARGET_BOUND}x QD "
        f"{BASE_DEPTH}'s reads/s",
        "",
        "| build | size | loop | ratio | median (range) | met |",
        "|---|---|---|---|---|---|",
    ]
    for t in report["targets"]:
        met = "not measured" if t["met"] is None else ("yes" if t["met"] else "NO")
        value = (
            "n/a" if t["ratio"] is None else f"{t['ratio']:.2f}x ({t['min']:.2f}-{t['max']:.2f})"
        )
        out.append(
            f"| {t['build']} | {size_label(t['size'])} | {t['loop']} | {t['label']} | {value} | "
            f"{met} |"
        )
    if report["notes"]:
        out += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    failed = [m for m in report["measurements"] if not m.get("ok")]
    if failed:
        out += ["", "## Failed or skipped measurements", ""]
        out += [
            f"- round {m['round'] + 1} {m['build']} {m['loop']} {size_label(m['size'])} "
            f"QD {m['qd']}: {m['error']}"
            for m in failed
        ]
    return "\n".join(out) + "\n"


def machine() -> dict[str, Any]:
    info = suite.machine_info()
    return {k: info[k] for k in ("kernel", "cpu_model", "cores", "git_commit", "date")}


def estimate_seconds(s: Settings) -> float:
    per = s.seconds + 0.4
    return s.rounds * len(schedule(s, 0)) * per


def main(argv: list[str] | None = None) -> int:
    s = parse_args(argv)
    builds = []
    for b in s.builds:
        info = probe(b)
        builds.append({"name": b.name, "command": b.describe(), **info})
        log(
            f"build {b.name}: {b.describe()} -> century_ring {info['century_ring']}, "
            f"{info['extension']} (built {info['extension_built']})"
        )
    if s.native:
        settings = suite.parse_args(["--only", "read-cached", "--no-install"])
        suite.build_native(settings)
        if not settings.native:
            s.native = False
            s.notes.append(f"native reference skipped: {settings.skipped.get('native')}")
            log(s.notes[-1])
    if s.strace:
        why = strace_usable()
        if why:
            s.strace = False
            s.notes.append(f"no system call counts: {why}")
            log(s.notes[-1])
    suite.ensure_file(s.file, suite.CACHED_SIZE)
    warm(s.file)
    if page_cached(s.file) is None:
        s.notes.append("could not check that the file is page-cached (no RWF_NOWAIT)")
    log(
        f"{s.rounds} round(s) of {len(schedule(s, 0))} measurements, about "
        f"{estimate_seconds(s) / 60:.1f} min" + (" plus the traced runs" if s.strace else "")
    )
    started = time.perf_counter()
    measurements = measure(s)
    traces = trace_all(s) if s.strace else []
    summary = summarise(s, measurements)
    report: dict[str, Any] = {
        "benchmark": "century-ring deep queues",
        "schema": 1,
        "machine": machine(),
        "settings": {
            "sizes": s.sizes,
            "depths": s.depths,
            "loops": s.loops,
            "rounds": s.rounds,
            "seconds": s.seconds,
            "warmup": s.warmup,
            "file": str(s.file),
            "native": s.native,
            "strace": s.strace,
            "strace_seconds": s.strace_seconds if s.strace else None,
            "python": platform.python_version(),
        },
        "builds": builds,
        "measurements": measurements,
        "summary": summary,
        "targets": targets(s, summary),
        "strace": traces,
        "notes": s.notes,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    text = markdown(report)
    print(text)
    if s.json_path is not None:
        s.json_path.parent.mkdir(parents=True, exist_ok=True)
        s.json_path.write_text(json.dumps(report, indent=1) + "\n")
        log(f"wrote {s.json_path}")
    failed = [m for m in measurements if not m.get("ok") and not m["error"].startswith("skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
