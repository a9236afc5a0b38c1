"""Run the safety tests under valgrind's memcheck and fail on any invalid access or use of
uninitialised memory that involves Century Ring's extension.

    python tools/memcheck.py                  # the default selection (about 5 minutes)
    python tools/memcheck.py tests/test_hostile.py -k drain   # any pytest arguments
    python tools/memcheck.py --script examples/cat.py         # or any script

The tests run with PYTHONMALLOC=malloc (so valgrind sees every Python allocation), one XML
report per process (subprocesses the tests start are traced too; forked children that do not
exec are silent). The script then reads every report and sorts each error:

* **ours**: the extension (``_century_ring``) is on the error's stack, or on the stack that
  allocated or freed the memory involved. Any such error fails the run.
* **kernel-filled**: use of "uninitialised" bytes that the extension allocated for the kernel
  to fill (a read's buffer). The kernel writes them through io_uring, outside any system call
  valgrind can see, so valgrind still believes them undefined. Reported, not failing: this is
  valgrind's blind spot, which the canary tests in tests/test_safety.py cover instead.
* **foreign**: errors entirely inside CPython or libc (known noise such as the AVX2 wmemcmp
  over-read). Reported, not failing.

Valgrind 3.19 does not know that io_uring_enter can block: while one thread waits in it, no
other thread of the program runs. Tests in which another thread must wake the waiter hang
under valgrind, so the default selection leaves them out.

What valgrind cannot see: anything the kernel does asynchronously. A buffer freed while the
kernel still writes to it shows up as heap corruption later, or not at all; that is what
tests/test_safety.py's canary tests look for. Valgrind checks this library's own userspace
accesses: the ring mappings, the in-flight table, buffers, exports of caller buffers, paths
and addresses, and what happens to them on close, drop, fork and from several threads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OURS = "_century_ring"
DEFAULT_TESTS = [
    "tests/test_safety.py",
    "tests/test_hostile.py",
    "tests/test_ring_lifecycle.py",
    "-k",
    # Close / drop / interpreter exit with work in flight, memory kept alive, threads, fork;
    # not the timing-based GIL and signal tests (valgrind serialises threads and is ~50x
    # slower), and not the one where another thread must run while one blocks in
    # io_uring_enter: valgrind 3.19 does not treat io_uring_enter as a blocking system call,
    # keeps its one-thread-at-a-time lock through it, and the waiter then waits forever for
    # the thread that would wake it (as liburing#657 and valgrind bug 463859 report).
    "(close or drop or exit or kept_alive or bytearray or thread or fork or leak or drain)"
    " and not gil and not signal and not sigint and not 100k and not while_one_waits",
]
INVALID = {"InvalidRead", "InvalidWrite", "InvalidFree", "MismatchedFree", "InvalidJump"}
UNINIT = {"UninitCondition", "UninitValue", "SyscallParam", "ClientCheck"}


@dataclass
class Finding:
    kind: str
    what: str
    category: str
    stack: list[str]
    aux: list[str]
    pid: str


def frames(stack: ET.Element | None) -> list[str]:
    if stack is None:
        return []
    out = []
    for f in stack.findall("frame"):
        fn = f.findtext("fn") or "?"
        obj = (f.findtext("obj") or "").rsplit("/", 1)[-1]
        line = f.findtext("line")
        out.append(f"{fn} ({obj}{':' + line if line else ''})")
    return out


def classify(error: ET.Element, pid: str) -> Finding | None:
    kind = error.findtext("kind") or "?"
    if kind.startswith("Leak_"):
        return None
    what = error.findtext("what") or error.findtext("xwhat/text") or ""
    stacks = error.findall("stack")
    main = frames(stacks[0] if stacks else None)
    aux = [line for s in stacks[1:] for line in frames(s)]
    in_main = any(OURS in f for f in main)
    in_aux = any(OURS in f for f in aux)
    if kind in UNINIT and not in_main and in_aux:
        category = "kernel-filled"
    elif in_main or in_aux:
        category = "ours"
    else:
        category = "foreign"
    return Finding(kind, what, category, main, aux, pid)


def valgrind_command(xml_dir: Path, suppressions: list[Path]) -> list[str]:
    cmd = [
        "valgrind",
        "--tool=memcheck",
        "--track-origins=yes",
        "--leak-check=no",
        "--error-limit=no",
        "--num-callers=40",
        "--fair-sched=yes",
        "--trace-children=yes",
        # The tests' helper processes (delayed writers, signal senders) need no checking.
        "--trace-children-skip-by-arg=*time.sleep*",
        "--child-silent-after-fork=yes",
        "--xml=yes",
        f"--xml-file={xml_dir}/vg.%p.xml",
    ]
    cmd += [f"--suppressions={s}" for s in suppressions]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="keep the XML reports in this directory")
    parser.add_argument("--show", type=int, default=5, help="print this many findings in full")
    parser.add_argument("--script", type=Path, help="run this Python script instead of pytest")
    parser.add_argument("pytest_args", nargs="*", help="pytest arguments (default: safety set)")
    # Options pytest knows (-k, -x, ...) pass through to it.
    args, extra = parser.parse_known_args(argv)
    args.pytest_args = [*args.pytest_args, *extra]
    if not shutil.which("valgrind"):
        print("valgrind is not installed", file=sys.stderr)
        return 2
    suppressions = [REPO / "tools" / "valgrind-python.supp"]
    system = Path("/usr/lib/valgrind/python3.supp")
    if system.exists():
        suppressions.insert(0, system)
    xml_dir = args.keep or Path(tempfile.mkdtemp(prefix="century-ring-memcheck-"))
    xml_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONMALLOC="malloc", PYTHONFAULTHANDLER="1")
    pytest_args = args.pytest_args or DEFAULT_TESTS
    target = (
        [str(args.script)]
        if args.script
        else ["-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
    )
    cmd = [*valgrind_command(xml_dir, suppressions), sys.executable, *target]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    elapsed = time.monotonic() - t0

    findings: list[Finding] = []
    reports = sorted(xml_dir.glob("vg.*.xml"))
    unreadable = []
    for report in reports:
        pid = report.stem.split(".", 1)[1]
        try:
            root = ET.parse(report).getroot()
        except ET.ParseError:
            unreadable.append(report.name)
            continue
        for error in root.iter("error"):
            found = classify(error, pid)
            if found:
                findings.append(found)
    by_category: dict[str, int] = {}
    for f in findings:
        by_category[f.category] = by_category.get(f.category, 0) + 1
    ours = [f for f in findings if f.category == "ours"]
    print(f"\nmemcheck: {len(reports)} process report(s) in {xml_dir}, {elapsed:.0f} s")
    print(f"pytest exit status: {proc.returncode}")
    for category in ("ours", "kernel-filled", "foreign"):
        print(f"  {category:14} {by_category.get(category, 0)} error(s)")
    kinds: dict[str, int] = {}
    for f in ours:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    for kind, n in sorted(kinds.items()):
        print(f"    ours/{kind}: {n}")
    for f in (ours or [f for f in findings if f.category == "kernel-filled"])[: args.show]:
        print(f"\n[{f.category}] {f.kind} in process {f.pid}: {f.what}")
        for line in f.stack[:15]:
            print(f"    {line}")
        if f.aux:
            print("  allocated/freed at:")
            for line in f.aux[:10]:
                print(f"    {line}")
    if unreadable:
        print(f"unreadable reports (a process killed mid-write?): {unreadable}")
    if not args.keep:
        shutil.rmtree(xml_dir, ignore_errors=True)
    if ours:
        print("\nMEMCHECK FAILED: errors in Century Ring's code (see above)")
        return 1
    if proc.returncode != 0:
        print("\nMEMCHECK FAILED: the tests (or the script) failed under valgrind")
        return 1
    print("\nmemcheck passed: no invalid access or uninitialised use in Century Ring's code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
