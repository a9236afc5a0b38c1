"""Instructions per operation of the hot path, counted by valgrind's callgrind.

    python benches/instructions.py            # no-ops (batches of 32) and 4 KiB cached reads
    python benches/instructions.py nop        # one loop only

Each loop runs twice under callgrind, for two numbers of batches, and the difference of the
two totals divided by the difference in operations is what one more operation costs:
interpreter start-up and module import cancel out. With ``PYTHONHASHSEED=0`` repeated runs
agree to the instruction, whatever else the machine is doing, so a change to the hot path
(prep, submit, reap) can be compared before and after on a busy machine. Instructions miss
what costs time without costing instructions (a locked instruction, a cache miss): confirm a
change with a timing as well (``benches/run.py``).

The loops are the ones a user writes first: queue 32 operations, ``submit_and_wait(32)``,
reap the list and read one attribute of each completion (``result`` of a no-op, ``buffer``
of a read).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from century_ring import IoUring

BATCH = 32
#: The two batch counts whose difference is measured.
FEW, MANY = 2000, 12000
READ_SIZE = 4096
FILE_SIZE = 1 << 20


def nop_loop(ring: IoUring, batches: int) -> int:
    done = 0
    for _ in range(batches):
        for _ in range(BATCH):
            ring.prep_nop()
        ring.submit_and_wait(BATCH)
        got = ring.get_completion_entries()
        for cqe in got:
            cqe.result  # noqa: B018 - reading it is the point
        done += len(got)
    return done


def read_loop(ring: IoUring, batches: int, fd: int) -> int:
    done = 0
    for _ in range(batches):
        for i in range(BATCH):
            ring.prep_read(fd, READ_SIZE, (i * READ_SIZE) % FILE_SIZE)
        ring.submit_and_wait(BATCH)
        got = ring.get_completion_entries()
        for cqe in got:
            cqe.buffer  # noqa: B018 - reading it is the point
        done += len(got)
    return done


def run_loop(kind: str, batches: int, path: str) -> int:
    """Runs ``batches`` batches of the loop and returns how many operations completed."""
    from century_ring import make_io_ring

    fd = os.open(path, os.O_RDONLY)
    try:
        with make_io_ring(entries=2 * BATCH) as ring:
            return nop_loop(ring, batches) if kind == "nop" else read_loop(ring, batches, fd)
    finally:
        os.close(fd)


def total_instructions(kind: str, batches: int, path: str, scratch: Path) -> tuple[int, int]:
    """The callgrind total of one run of the loop, and the operations it did."""
    out = scratch / f"callgrind.{kind}.{batches}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--run",
        kind,
        str(batches),
        path,
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    ran = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    operations = int(ran.stdout.split()[-1])
    totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if totals is None:
        raise RuntimeError(f"no total in {out}")
    return int(totals.group(1)), operations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("loops", nargs="*", help="nop, read, or both (the default)")
    parser.add_argument("--run", nargs=3, metavar=("KIND", "BATCHES", "FILE"), help="internal")
    args = parser.parse_args()
    if args.run:
        kind, batches, path = args.run
        print(run_loop(kind, int(batches), path))
        return 0
    loops = args.loops or ["nop", "read"]
    unknown = sorted(set(loops) - {"nop", "read"})
    if unknown:
        parser.error(f"unknown loops {unknown}: choose from nop and read")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="century-ring-instructions-") as name:
        scratch = Path(name)
        data = scratch / "data"
        data.write_bytes(os.urandom(FILE_SIZE))
        for kind in loops:
            few, few_ops = total_instructions(kind, FEW, str(data), scratch)
            many, many_ops = total_instructions(kind, MANY, str(data), scratch)
            per_op = (many - few) / (many_ops - few_ops)
            print(f"{kind}: {per_op:.1f} instructions per operation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
