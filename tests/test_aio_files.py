"""Async files: ``century_ring.aio.open_file`` behaves like ``open()``, and survives cancellation.

Most tests run the same steps on a file opened with ``open()`` and on one opened with
``open_file`` and compare every result and the file left on disk. Every test runs on asyncio,
uvloop and trio (the ``anyio_backend`` fixture).
"""

from __future__ import annotations

import gc
import io
import os
import random
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from century_ring.aio import current_ring, open_file
from conftest import open_fd_count

pytestmark = pytest.mark.anyio

#: Text with one-, two-, three- and four-byte UTF-8 characters and every kind of line ending.
TEXT = "héllo wörld\nsecond line €\r\nthird 𝄞 line\rfourth\n\nlast line, no newline ✓"
BINARY = bytes(range(256)) * 3 + b"line one\nline two\r\nline three\n\nend"

MODES = [
    "r", "rb", "w", "wb", "a", "ab", "x", "xb",
    "r+", "rb+", "w+", "wb+", "a+", "ab+", "x+", "xb+", "rt", "r+b",
]  # fmt: skip
BUFFERINGS = [-1, 0, 1, 5]

#: One step: a method name and its arguments, run on both files.
Step = tuple[str, tuple[Any, ...]]


def _steps(mode: str, buffering: int) -> list[Step]:
    """A script exercising every method ``mode`` allows, the same on open() and open_file."""
    binary = "b" in mode
    readable = "r" in mode or "+" in mode
    writable = "r" not in mode or "+" in mode
    data: Any = b"WRITTEN\nbytes\n" if binary else "written\nwörds €\n"
    steps: list[Step] = []
    if readable:
        steps += [("read", (5,)), ("tell", ()), ("readline", ()), ("readline", (4,))]
        if binary and buffering != 0:
            steps += [("read1", (3,))]
        steps += [("tell", ()), ("readlines", (10,)), ("read", ())]
        steps += [("seek", (0,)), ("readlines", ()), ("seek", (0,)), ("read", (-1,))]
        if binary:
            steps += [("seek", (-7, 2)), ("read", (3,)), ("seek", (2, 1)), ("read", ())]
            steps += [("seek", (3,)), ("read", (2,)), ("tell", ())]
    if writable:
        if not binary:
            # open()'s text files write after their read-ahead; ours at the reader's position
            # (documented). Compare only where they agree: after a seek.
            steps += [("seek", (0, 2))] if readable else []
        steps += [("write", (data,)), ("tell", ()), ("writelines", ([data, data],))]
        steps += [("tell", ()), ("flush", ())]
        if readable:
            steps += [("seek", (0,)), ("read", ()), ("tell", ())]
            if binary and "a" not in mode:
                # Write after read in "+" binary mode: at the read position. (In append mode
                # open()'s position after a buffered write depends on its buffer's history.)
                steps += [("seek", (4,)), ("read", (3,)), ("write", (b"@@",)), ("tell", ())]
                steps += [("read", (2,)), ("seek", (0,)), ("read", ())]
        if binary or readable:
            steps += [("seek", (0,)), ("truncate", (9,)), ("tell", ()), ("truncate", ())]
        steps += [("write", (data,)), ("tell", ())]
    return steps


def _initial(mode: str) -> bytes:
    return BINARY if "b" in mode else TEXT.encode()


def _prepare(tmp_dir: Path, mode: str, name: str) -> Path:
    path = tmp_dir / name
    if "x" not in mode:
        path.write_bytes(_initial(mode))
    return path


def _outcome(call: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return ("ok", call(*args))
    except Exception as error:
        return ("error", type(error))


async def _async_outcome(call: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return ("ok", await call(*args))
    except Exception as error:
        return ("error", type(error))


class TestLikeOpen:
    @pytest.mark.parametrize("buffering", BUFFERINGS)
    @pytest.mark.parametrize("mode", MODES)
    async def test_every_mode_gives_the_results_and_file_of_open(
        self, tmp_dir: Path, mode: str, buffering: int
    ) -> None:
        expected_path = _prepare(tmp_dir, mode, "expected")
        ours_path = _prepare(tmp_dir, mode, "ours")
        if buffering == 0 and "b" not in mode:
            with pytest.raises(ValueError) as theirs:
                open(expected_path, mode, buffering=0)
            with pytest.raises(ValueError) as ours:
                await open_file(ours_path, mode, buffering=0)
            assert str(ours.value) == str(theirs.value)
            return
        with warnings.catch_warnings():
            # Binary buffering=1 warns with both; that is compared below.
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = open(expected_path, mode, buffering=buffering, encoding=_enc(mode))
            f = await open_file(ours_path, mode, buffering, _enc(mode))
        steps = _steps(mode, buffering)
        try:
            assert f.mode == expected.mode
            assert f.name == expected.name.replace("expected", "ours")
            for name, args in steps:
                theirs = _outcome(getattr(expected, name), args)
                ours = await _async_outcome(getattr(f, name), args)
                assert ours == theirs, (name, args)
        finally:
            expected.close()
            await f.aclose()
        assert f.closed
        assert ours_path.read_bytes() == expected_path.read_bytes()

    @pytest.mark.parametrize("mode", ["r", "rb", "w", "wb", "a", "ab"])
    async def test_reading_or_writing_what_the_mode_forbids_raises_unsupported_operation(
        self, tmp_dir: Path, mode: str
    ) -> None:
        path = _prepare(tmp_dir, mode, "f")
        async with open_file(path, mode) as f:
            data: Any = b"x" if "b" in mode else "x"
            if "r" in mode:
                with pytest.raises(io.UnsupportedOperation):
                    await f.write(data)
                with pytest.raises(io.UnsupportedOperation):
                    await f.truncate(0)
                assert not f.writable()
            else:
                for method in (f.read, f.readline, f.readlines):
                    with pytest.raises(io.UnsupportedOperation):
                        await method()
                assert not f.readable()

    async def test_the_file_can_be_awaited_or_used_as_a_context_manager(
        self, tmp_dir: Path
    ) -> None:
        path = tmp_dir / "f.txt"
        async with open_file(path, "w") as f:
            await f.write("one\n")
        assert f.closed
        g = await open_file(path, "a")
        await g.write("two\n")
        await g.aclose()
        await g.aclose()  # twice is fine
        assert path.read_text() == "one\ntwo\n"

    async def test_async_iteration_yields_the_lines_open_yields(self, tmp_dir: Path) -> None:
        path = tmp_dir / "f.txt"
        path.write_bytes(TEXT.encode())
        for mode in ("r", "rb"):
            enc = _enc(mode)
            async with open_file(path, mode, 7, enc) as f:
                lines = [line async for line in f]
            with open(path, mode, 7, enc) as g:
                assert lines == list(g)

    async def test_readinto_fills_the_buffer_like_open(self, tmp_dir: Path) -> None:
        path = tmp_dir / "f.bin"
        path.write_bytes(BINARY)
        for buffering in (-1, 0, 16):
            ours, theirs = bytearray(100), bytearray(100)
            async with open_file(path, "rb", buffering) as f:
                counts = [await f.readinto(ours), await f.readinto(memoryview(ours)[10:20])]
            with open(path, "rb", buffering) as g:
                assert counts == [g.readinto(theirs), g.readinto(memoryview(theirs)[10:20])]
            assert ours == theirs

    @pytest.mark.parametrize("buffering", [-1, 7])
    async def test_writes_reach_the_disk_when_they_would_with_open(
        self, tmp_dir: Path, buffering: int
    ) -> None:
        ours, theirs = tmp_dir / "ours", tmp_dir / "theirs"
        # buffering=-1 means one block of the file system (st_blksize) for both.
        block = os.statvfs(tmp_dir).f_bsize if buffering < 0 else buffering
        sizes = [block - 1, 1, 10, block, 2 * block + 3, 5, 1, block - 2]
        with open(theirs, "wb", buffering) as g:
            async with open_file(ours, "wb", buffering) as f:
                for size in sizes:
                    await f.write(b"x" * size)
                    g.write(b"x" * size)
                    assert ours.stat().st_size == theirs.stat().st_size, size
                assert 0 < ours.stat().st_size < sum(sizes)


def _enc(mode: str) -> str | None:
    return None if "b" in mode else "utf-8"


class TestText:
    @pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
    async def test_newlines_are_read_and_written_as_open_does(
        self, tmp_dir: Path, newline: str | None
    ) -> None:
        path = tmp_dir / "f.txt"
        path.write_bytes(TEXT.encode())
        for buffering in (-1, 1, 3):
            async with open_file(path, "r", buffering, "utf-8", newline=newline) as f:
                lines = await f.readlines()
                await f.seek(0)
                whole = await f.read()
                await f.seek(0)
                iterated = [line async for line in f]
                newlines = f.newlines
            with open(path, buffering=buffering, encoding="utf-8", newline=newline) as g:
                assert lines == g.readlines()
                g.seek(0)
                assert whole == g.read()
                assert iterated == lines
                assert newlines == g.newlines
        written = tmp_dir / "w.txt"
        async with open_file(written, "w", encoding="utf-8", newline=newline) as f:
            await f.write(TEXT)
        with open(tmp_dir / "expected.txt", "w", encoding="utf-8", newline=newline) as g:
            g.write(TEXT)
        assert written.read_bytes() == (tmp_dir / "expected.txt").read_bytes()

    @pytest.mark.parametrize("buffering", [1, 2, 3, 5, 7])
    async def test_multibyte_characters_split_across_buffers_decode_whole(
        self, tmp_dir: Path, buffering: int
    ) -> None:
        path = tmp_dir / "f.txt"
        path.write_bytes(TEXT.encode())
        async with open_file(path, "r", buffering, "utf-8", newline="") as f:
            chars = []
            while char := await f.read(1):
                chars.append(char)
        assert "".join(chars) == TEXT

    @pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "latin-1", "utf-8-sig"])
    async def test_an_encoding_round_trips_and_matches_open(
        self, tmp_dir: Path, encoding: str
    ) -> None:
        text = TEXT if encoding != "latin-1" else "naïve façade\nline two\n"
        ours, theirs = tmp_dir / "ours.txt", tmp_dir / "theirs.txt"
        async with open_file(ours, "w", 5, encoding) as f:
            await f.write(text[:7])
            await f.write(text[7:])
        with open(theirs, "w", 5, encoding=encoding) as g:
            g.write(text[:7])
            g.write(text[7:])
        assert ours.read_bytes() == theirs.read_bytes()
        async with open_file(ours, "a", encoding=encoding) as f:
            await f.write("appended\n")
        with open(theirs, "a", encoding=encoding) as g:
            g.write("appended\n")
        assert ours.read_bytes() == theirs.read_bytes()
        async with open_file(ours, "r", 3, encoding) as f:
            assert await f.read() == open(theirs, encoding=encoding).read()

    @pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
    @pytest.mark.parametrize("newline", [None, ""])
    async def test_tell_gives_cookies_that_seek_returns_to(
        self, tmp_dir: Path, encoding: str, newline: str | None
    ) -> None:
        path = tmp_dir / "f.txt"
        path.write_bytes(TEXT.encode(encoding))
        async with open_file(path, "r", 4, encoding, newline=newline) as f:
            marks = []
            while True:
                marks.append(await f.tell())
                line = await f.readline()
                if not line:
                    break
                marks[-1] = (marks[-1], line)
            rest = [mark for mark in marks if isinstance(mark, tuple)]
            for cookie, line in reversed(rest):
                assert await f.seek(cookie) == cookie
                assert await f.readline() == line
        if encoding == "utf-8":
            # For a stateless encoding the cookie is open()'s: the byte offset.
            with open(path, encoding=encoding, newline=newline) as g:
                expected = []
                while True:
                    expected.append(g.tell())
                    if not g.readline():
                        break
            # open() gives an opaque cookie after a line ending in "\r"; compare the others.
            pairs = zip([cookie for cookie, _ in rest], expected[:-1], strict=True)
            assert all(ours == theirs for ours, theirs in pairs if theirs < 2**64)

    async def test_write_after_read_in_plus_mode_lands_at_the_reading_position(
        self, tmp_dir: Path
    ) -> None:
        path = tmp_dir / "f.txt"
        path.write_text("first\nsecond\nthird\n", encoding="utf-8")
        async with open_file(path, "r+", encoding="utf-8") as f:
            assert await f.readline() == "first\n"
            await f.write("SECOND")
            assert await f.readline() == "\n"
            assert await f.tell() == len("first\nSECOND\n")
        assert path.read_text(encoding="utf-8") == "first\nSECOND\nthird\n"

    async def test_only_zero_relative_seeks_are_allowed_like_text_io_wrapper(
        self, tmp_dir: Path
    ) -> None:
        path = tmp_dir / "f.txt"
        path.write_text("abc\n", encoding="utf-8")
        async with open_file(path, "r", encoding="utf-8") as f:
            with open(path, encoding="utf-8") as g:
                for offset, whence in ((1, 1), (-1, 2), (0, 3)):
                    with pytest.raises((io.UnsupportedOperation, ValueError)) as theirs:
                        g.seek(offset, whence)
                    with pytest.raises(theirs.type) as ours:
                        await f.seek(offset, whence)
                    assert str(ours.value) == str(theirs.value)
                assert await f.seek(0, 2) == g.seek(0, 2)
                assert await f.read() == ""

    async def test_line_buffering_writes_each_line_at_once(self, tmp_dir: Path) -> None:
        path = tmp_dir / "f.txt"
        theirs = tmp_dir / "theirs.txt"
        with open(theirs, "w", 1, "utf-8") as g:
            async with open_file(path, "w", 1, "utf-8") as f:
                for text in ("partial", " line\nmore", " and\rmore"):
                    await f.write(text)
                    g.write(text)
                    assert path.read_bytes() == theirs.read_bytes()
                assert path.read_bytes() == b"partial line\nmore and\rmore"

    async def test_the_default_encoding_is_opens(self, tmp_dir: Path) -> None:
        path = tmp_dir / "f.txt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            async with open_file(path, "w") as f:
                with open(path) as g:
                    assert f.encoding == g.encoding
                    assert f.errors == g.errors

    async def test_locale_encoding_is_the_locales(self, tmp_dir: Path) -> None:
        async with open_file(tmp_dir / "f", "w", encoding="locale") as f:
            with open(tmp_dir / "g", "w", encoding="locale") as g:
                assert f.encoding == g.encoding

    async def test_write_takes_only_str_in_text_mode_and_bytes_in_binary(
        self, tmp_dir: Path
    ) -> None:
        async with open_file(tmp_dir / "t", "w") as f:
            with pytest.raises(TypeError):
                await f.write(b"bytes")  # type: ignore[arg-type]
        async with open_file(tmp_dir / "b", "wb") as g:
            with pytest.raises(TypeError):
                await g.write("text")


class TestLifetime:
    async def test_a_file_never_closed_warns_and_closes_its_descriptor(self, tmp_dir: Path) -> None:
        f = await open_file(tmp_dir / "f", "wb")
        fd = f.fileno()
        with pytest.warns(ResourceWarning, match="unclosed file"):
            del f
            gc.collect()
        with pytest.raises(OSError):
            os.fstat(fd)


class TestErrors:
    async def test_opening_fails_with_the_exception_open_raises(self, tmp_dir: Path) -> None:
        existing = tmp_dir / "exists"
        existing.write_text("x")
        cases = [
            (tmp_dir / "missing", "r"),
            (tmp_dir / "missing" / "deeper", "w"),
            (existing, "x"),
            (existing, "xb+"),
            (tmp_dir, "r"),
            (tmp_dir, "rb"),
            (tmp_dir, "w"),
            (tmp_dir, "a+"),
        ]
        for path, mode in cases:
            with pytest.raises(OSError) as theirs:
                open(path, mode)
            with pytest.raises(theirs.type) as ours:
                await open_file(path, mode)
            assert ours.value.errno == theirs.value.errno, (path, mode)
            assert ours.value.filename == theirs.value.filename == str(path)
            assert str(ours.value) == str(theirs.value)

    @pytest.mark.parametrize(
        ("mode", "kwargs"),
        [
            ("", {}),
            ("rw", {}),
            ("rr", {}),
            ("q", {}),
            ("rbt", {}),
            ("b", {}),
            ("+", {}),
            ("r++", {}),
            ("rb", {"encoding": "utf-8"}),
            ("rb", {"errors": "strict"}),
            ("rb", {"newline": ""}),
            ("r", {"newline": "x"}),
            ("rt", {"buffering": 0}),
        ],
    )
    async def test_bad_modes_and_arguments_raise_value_error_like_open(
        self, tmp_dir: Path, mode: str, kwargs: dict[str, Any]
    ) -> None:
        path = tmp_dir / "f"
        path.write_text("x")
        with pytest.raises(ValueError) as theirs:
            open(path, mode, **kwargs)
        with pytest.raises(ValueError) as ours:
            open_file(path, mode, **kwargs)
        words = set(str(theirs.value).lower().split()) & set(str(ours.value).lower().split())
        assert len(words) >= 2, (str(ours.value), str(theirs.value))
        assert path.read_text() == "x"

    async def test_an_unknown_encoding_raises_lookup_error(self, tmp_dir: Path) -> None:
        with pytest.raises(LookupError):
            open_file(tmp_dir / "f", "w", encoding="no-such-codec")

    async def test_a_closed_file_refuses_every_operation_like_open(self, tmp_dir: Path) -> None:
        path = tmp_dir / "f"
        path.write_text("abc")
        f = await open_file(path, "r+")
        await f.aclose()
        g = open(path, "r+")
        g.close()
        for name, args in [
            ("read", ()),
            ("readline", ()),
            ("readlines", ()),
            ("write", ("x",)),
            ("seek", (0,)),
            ("tell", ()),
            ("truncate", ()),
            ("flush", ()),
        ]:
            with pytest.raises(ValueError) as theirs:
                getattr(g, name)(*args)
            with pytest.raises(ValueError) as ours:
                await getattr(f, name)(*args)
            assert str(ours.value) == str(theirs.value) == "I/O operation on closed file."
        assert path.read_text() == "abc"

    async def test_a_second_task_using_the_file_meanwhile_gets_busy_resource_error(
        self, tmp_dir: Path
    ) -> None:
        r, w = os.pipe()
        try:
            async with open_file(r, "rb", 0) as f:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(f.read, 10)
                    await anyio.sleep(0.01)
                    with pytest.raises(anyio.BusyResourceError):
                        await f.read(10)
                    os.write(w, b"x")
        finally:
            os.close(w)

    async def test_a_pipe_reads_in_order_but_cannot_seek(self) -> None:
        r, w = os.pipe()
        os.write(w, b"one\ntwo\n")
        os.close(w)
        async with open_file(r, "rb") as f:
            assert not f.seekable()
            assert await f.readline() == b"one\n"
            with pytest.raises(io.UnsupportedOperation):
                await f.seek(0)
            with pytest.raises(OSError):
                await f.tell()
            assert await f.read() == b"two\n"
        with pytest.raises(OSError):
            os.fstat(r)  # closed with the file


def _random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _feed(fd: int, data: bytes) -> None:
    """Write ``data`` into a pipe, then close it (a thread: the pipe holds only 64 KiB)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:65536]) :]
    finally:
        os.close(fd)


async def _cancel_after(scope: anyio.CancelScope, checkpoints: int) -> None:
    for _ in range(checkpoints):
        await anyio.lowlevel.checkpoint()
    scope.cancel()


class TestCancellation:
    @pytest.mark.parametrize("source", ["file", "pipe"])
    @pytest.mark.parametrize("buffering", [-1, 0, 37])
    async def test_cancelled_reads_lose_and_repeat_no_byte(
        self, tmp_dir: Path, buffering: int, source: str
    ) -> None:
        data = _random_bytes(1, 200_000)
        target: Any
        if source == "file":
            target = tmp_dir / "f.bin"
            target.write_bytes(data)
        else:
            # What a pipe gives is gone from it: a lost byte cannot be read again.
            target, w = os.pipe()
            writer = threading.Thread(target=_feed, args=(w, data))
            writer.start()
        rng = random.Random(buffering)
        got = bytearray()
        cancelled = 0
        async with open_file(target, "rb", buffering) as f, anyio.create_task_group() as tg:
            for _ in range(600):
                size = rng.choice([1, 7, 100, 1000, 5000, -1 if rng.random() < 0.02 else 3])
                method = rng.choice([f.read, f.read, f.readline])
                # Cancelled by a deadline already past, or by another task a few steps in.
                by_deadline = rng.random() < 0.2
                with anyio.move_on_after(0) if by_deadline else anyio.CancelScope() as scope:
                    if not by_deadline:
                        tg.start_soon(_cancel_after, scope, rng.randrange(4))
                    got += await method(size)
                cancelled += scope.cancelled_caught
                if source == "file":
                    assert await f.tell() == len(got)
            got += await f.read()
        if source == "pipe":
            writer.join()
        assert cancelled > 50
        assert bytes(got) == data

    async def test_cancelled_text_reads_lose_and_repeat_no_character(self, tmp_dir: Path) -> None:
        text = "".join(random.Random(2).choice("aé€𝄞\n\r ") for _ in range(30_000))
        path = tmp_dir / "f.txt"
        path.write_bytes(text.encode())
        rng = random.Random(3)
        got: list[str] = []
        cancelled = 0
        async with open_file(path, "r", 11, "utf-8", newline="") as f:
            async with anyio.create_task_group() as tg:
                for _ in range(600):
                    method = rng.choice([f.read, f.readline])
                    with anyio.CancelScope() as scope:
                        tg.start_soon(_cancel_after, scope, rng.randrange(4))
                        got.append(await method(rng.choice([1, 5, 50, 300])))
                    cancelled += scope.cancelled_caught
            got.append(await f.read())
        assert cancelled > 50
        assert "".join(got) == text

    @pytest.mark.parametrize("mode", ["wb", "ab"])
    @pytest.mark.parametrize("buffering", [-1, 0, 100])
    async def test_cancelled_writes_leave_the_file_as_the_writer_believes(
        self, tmp_dir: Path, buffering: int, mode: str
    ) -> None:
        data = _random_bytes(4, 400_000)
        path = tmp_dir / "f.bin"
        rng = random.Random(5)
        believed = bytearray()
        cancelled = 0
        # In append mode every write goes to the end: a byte written twice would show.
        async with open_file(path, mode, buffering) as f, anyio.create_task_group() as tg:
            offset = 0
            for _ in range(600):
                chunk = data[offset : offset + rng.choice([1, 10, 300, 4000, 70_000])]
                offset = (offset + len(chunk)) % (len(data) - 70_000)
                with anyio.CancelScope() as scope:
                    tg.start_soon(_cancel_after, scope, rng.randrange(4))
                    if buffering != 0:
                        # A buffered write owns its data from the call on: cancelled or not,
                        # it reaches the file.
                        believed += chunk
                        await f.write(chunk)
                    else:
                        believed += chunk[: await f.write(chunk)]
                        # A write that completed despite the cancellation returns its count;
                        # the cancellation comes at the next checkpoint: inside the scope.
                        await anyio.lowlevel.checkpoint()
                cancelled += scope.cancelled_caught
                assert await f.tell() == len(believed)
        assert cancelled > 50
        assert path.read_bytes() == bytes(believed)

    async def test_cancelled_text_writes_leave_the_file_as_the_writer_believes(
        self, tmp_dir: Path
    ) -> None:
        rng = random.Random(7)
        path = tmp_dir / "f.txt"
        believed: list[str] = []
        cancelled = 0
        async with open_file(path, "w", 1, "utf-8", newline="\r\n") as f:
            async with anyio.create_task_group() as tg:
                for _ in range(400):
                    text = "".join(rng.choice("aé€𝄞\n ") for _ in range(rng.randrange(1, 400)))
                    with anyio.CancelScope() as scope:
                        tg.start_soon(_cancel_after, scope, rng.randrange(3))
                        believed.append(text)
                        await f.write(text)
                    cancelled += scope.cancelled_caught
        assert cancelled > 10
        expected = "".join(believed).replace("\n", "\r\n").encode()
        assert path.read_bytes() == expected

    async def test_a_cancelled_aclose_still_flushes_and_closes(self, tmp_dir: Path) -> None:
        current_ring()  # the ring's own descriptors are not the file's
        before = open_fd_count()
        path = tmp_dir / "f.bin"
        f = await open_file(path, "wb")
        await f.write(b"buffered")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await f.aclose()
        assert f.closed
        assert open_fd_count() == before
        assert path.read_bytes() == b"buffered"

    async def test_cancelled_opens_leak_no_descriptor(self, tmp_dir: Path) -> None:
        path = tmp_dir / "f.txt"
        path.write_text("x")
        rng = random.Random(6)
        current_ring()
        before = open_fd_count()
        opened = cancelled = 0
        async with anyio.create_task_group() as tg:
            for _ in range(400):
                with anyio.CancelScope() as scope:
                    tg.start_soon(_cancel_after, scope, rng.randrange(25))
                    async with open_file(path, rng.choice(["r", "rb+", "a"])):
                        opened += 1
                        await anyio.lowlevel.checkpoint()
                cancelled += scope.cancelled_caught
        assert cancelled > 20
        assert opened > 20
        assert open_fd_count() == before
