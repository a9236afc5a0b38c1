"""The file examples (``examples/cat.py``, ``examples/copy.py``), run as a user would run them.

Each is started as its own process on real files and its output compared byte for byte. One
test per example also loads it in-process with a ring that records how many operations were in
flight at once, to check that the example really keeps several going.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from century_ring import CompletionEvent, IoUring, make_io_ring

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CAT = EXAMPLES / "cat.py"
COPY = EXAMPLES / "copy.py"

#: A few MiB and an odd remainder, so that the last read is short.
BIG = 3 * 1024 * 1024 + 12_345


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command, as a user would, and capture its output."""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def big_file(tmp_dir: Path) -> tuple[Path, bytes]:
    data = os.urandom(BIG)
    path = tmp_dir / "big.bin"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def empty_file(tmp_dir: Path) -> Path:
    path = tmp_dir / "empty"
    path.write_bytes(b"")
    return path


# --------------------------------------------------------------------------------------------
# Both examples


@pytest.mark.parametrize("example", [CAT, COPY], ids=lambda p: p.name)
def test_example_has_a_docstring_and_types(example: Path) -> None:
    """It starts with a docstring saying what it shows, and every function is annotated."""
    tree = ast.parse(example.read_text())
    doc = ast.get_docstring(tree)
    assert doc is not None
    assert "shows" in doc
    assert f"examples/{example.name}" in doc  # how to run it
    first = tree.body[0]
    assert isinstance(first, ast.Expr)
    assert isinstance(first.value, ast.Constant)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert functions
    for fn in functions:
        assert fn.returns is not None, f"{fn.name} has no return annotation"
        for arg in fn.args.args + fn.args.kwonlyargs:
            assert arg.annotation is not None, f"{fn.name}({arg.arg}) is not annotated"


@pytest.mark.parametrize("example", [CAT, COPY], ids=lambda p: p.name)
def test_example_without_arguments_prints_usage(example: Path) -> None:
    proc = run(example)
    assert proc.returncode == 2
    assert b"usage" in proc.stderr
    assert proc.stdout == b""


class RecordingRing:
    """A stand-in ring that forwards to a real one and records the most ops in flight.

    With ``reverse``, each batch of completions is handed out newest first: io_uring does not
    promise any order, so a correct program copes with that as well.
    """

    def __init__(self, ring: IoUring, reverse: bool = False) -> None:
        self._ring = ring
        self._reverse = reverse
        self.most_in_flight = 0

    def _note(self) -> None:
        self.most_in_flight = max(
            self.most_in_flight, self._ring.in_flight + self._ring.pending_sq_entries
        )

    def submit_and_wait(self, count: int = 1) -> int:
        self._note()
        return self._ring.submit_and_wait(count)

    def submit(self) -> int:
        self._note()
        return self._ring.submit()

    def get_completion_entries(self) -> list[CompletionEvent]:
        cqes = self._ring.get_completion_entries()
        return cqes[::-1] if self._reverse else cqes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ring, name)


def load(path: Path) -> ModuleType:
    """Import an example as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def recording_rings(module: ModuleType, reverse: bool = False) -> Iterator[list[RecordingRing]]:
    """Make the example's ``make_io_ring`` hand out recording rings."""
    made: list[RecordingRing] = []
    original = module.make_io_ring

    @contextmanager
    def make(*args: Any, **kwargs: Any) -> Iterator[RecordingRing]:
        with make_io_ring(*args, **kwargs) as ring:
            recorder = RecordingRing(ring, reverse)
            made.append(recorder)
            yield recorder

    module.make_io_ring = make
    try:
        yield made
    finally:
        module.make_io_ring = original


# --------------------------------------------------------------------------------------------
# cat


def test_cat_big_file(big_file: tuple[Path, bytes]) -> None:
    path, data = big_file
    proc = run(CAT, path)
    assert proc.stderr == b""
    assert proc.returncode == 0
    assert len(proc.stdout) == len(data)
    assert proc.stdout == data


def test_cat_empty_file(empty_file: Path) -> None:
    proc = run(CAT, empty_file)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")


def test_cat_several_files_in_order(
    tmp_dir: Path, big_file: tuple[Path, bytes], empty_file: Path
) -> None:
    small = tmp_dir / "small.txt"
    small.write_bytes(b"hello\n")
    path, data = big_file
    proc = run(CAT, small, empty_file, path, small)
    assert proc.returncode == 0
    assert proc.stdout == b"hello\n" + data + b"hello\n"


def test_cat_missing_file_fails_clearly(tmp_dir: Path) -> None:
    """A missing file is reported with its name and reason; the other files still print."""
    small = tmp_dir / "small.txt"
    small.write_bytes(b"before\n")
    missing = tmp_dir / "no-such-file"
    proc = run(CAT, small, missing, small)
    assert proc.returncode != 0
    assert proc.stdout == b"before\nbefore\n"
    err = proc.stderr.decode()
    assert str(missing) in err
    assert "No such file or directory" in err
    assert "Traceback" not in err


def test_cat_a_directory_fails_clearly(tmp_dir: Path) -> None:
    proc = run(CAT, tmp_dir)
    assert proc.returncode != 0
    assert "Is a directory" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


def test_cat_reads_a_pipe(big_file: tuple[Path, bytes]) -> None:
    """Standard input (a pipe, which has no offsets) is read sequentially."""
    _, data = big_file
    proc = run(CAT, "/dev/stdin", stdin=data[:200_000])
    assert proc.returncode == 0
    assert proc.stdout == data[:200_000]


@pytest.mark.parametrize("reverse", [False, True], ids=["kernel-order", "reversed"])
def test_cat_keeps_several_reads_in_flight(
    big_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch, reverse: bool
) -> None:
    """Several reads in flight, printed in file order whatever order they complete in."""
    path, data = big_file
    cat = load(CAT)
    out_path = path.with_suffix(".out")
    with recording_rings(cat, reverse) as rings, open(out_path, "wb") as out:
        # main() writes to sys.stdout.buffer: give it a real file.
        monkeypatch.setattr(sys, "stdout", SimpleNamespace(buffer=out))
        status = cat.main([str(path)])
    assert status == 0
    assert out_path.read_bytes() == data
    assert len(rings) == 1
    assert rings[0].most_in_flight > 1


# --------------------------------------------------------------------------------------------
# copy


def test_copy_big_file(tmp_dir: Path, big_file: tuple[Path, bytes]) -> None:
    src, data = big_file
    os.chmod(src, 0o640)
    dst = tmp_dir / "copy.bin"
    proc = run(COPY, src, dst)
    assert proc.returncode == 0, proc.stderr
    assert dst.read_bytes() == data
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o640
    assert src.read_bytes() == data


def test_copy_empty_file(tmp_dir: Path, empty_file: Path) -> None:
    dst = tmp_dir / "copy-of-empty"
    proc = run(COPY, empty_file, dst)
    assert proc.returncode == 0, proc.stderr
    assert dst.exists()
    assert dst.read_bytes() == b""


def test_copy_over_a_bigger_file_truncates_it(tmp_dir: Path) -> None:
    src = tmp_dir / "src"
    src.write_bytes(b"short")
    dst = tmp_dir / "dst"
    dst.write_bytes(b"a much longer previous content")
    proc = run(COPY, src, dst)
    assert proc.returncode == 0, proc.stderr
    assert dst.read_bytes() == b"short"


def test_copy_missing_source_fails_clearly(tmp_dir: Path) -> None:
    missing = tmp_dir / "nope"
    dst = tmp_dir / "dst"
    proc = run(COPY, missing, dst)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "error" in err
    assert str(missing) in err
    assert "No such file or directory" in err
    assert "Traceback" not in err
    assert not dst.exists()


def test_copy_into_a_missing_directory_fails_clearly(
    tmp_dir: Path, big_file: tuple[Path, bytes]
) -> None:
    src, _ = big_file
    dst = tmp_dir / "no-dir" / "dst"
    proc = run(COPY, src, dst)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert str(dst) in err
    assert "No such file or directory" in err
    assert "Traceback" not in err


def test_copy_onto_itself_is_refused(big_file: tuple[Path, bytes]) -> None:
    src, data = big_file
    proc = run(COPY, src, src)
    assert proc.returncode != 0
    assert "same file" in proc.stderr.decode()
    assert src.read_bytes() == data


@pytest.mark.parametrize("reverse", [False, True], ids=["kernel-order", "reversed"])
def test_copy_keeps_several_operations_in_flight(
    tmp_dir: Path, big_file: tuple[Path, bytes], reverse: bool
) -> None:
    """Several reads and writes in flight, each at its offset whatever order they complete in."""
    src, data = big_file
    dst = tmp_dir / "copied"
    copy = load(COPY)
    with recording_rings(copy, reverse) as rings:
        assert copy.copy(str(src), str(dst)) == len(data)
    assert dst.read_bytes() == data
    assert len(rings) == 1
    assert rings[0].most_in_flight > 2
