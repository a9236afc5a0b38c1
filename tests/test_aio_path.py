"""``century_ring.aio.Path`` does what ``pathlib.Path`` does, on real files.

Every behaviour is checked against :mod:`pathlib` (or :mod:`os`) on the same files: the results,
and for failures the exception's type, ``errno``, ``filename``, ``filename2`` and message.
"""

from __future__ import annotations

import array
import os
import pathlib
import random
import socket
import stat
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import century_ring.aio
import pytest
from century_ring.aio import Path
from conftest import open_fd_count

pytestmark = pytest.mark.anyio

#: Every field of :class:`os.stat_result` that ``os.stat`` fills on Linux.
STAT_FIELDS = (
    "st_mode",
    "st_ino",
    "st_dev",
    "st_nlink",
    "st_uid",
    "st_gid",
    "st_size",
    "st_atime",
    "st_mtime",
    "st_ctime",
    "st_atime_ns",
    "st_mtime_ns",
    "st_ctime_ns",
    "st_blksize",
    "st_blocks",
    "st_rdev",
)


def _describe(error: BaseException) -> tuple[object, ...]:
    if isinstance(error, OSError):
        return (type(error), error.errno, error.filename, error.filename2, str(error))
    return (type(error),)


def sync_outcome(call: Callable[[], object]) -> tuple[object, ...]:
    """What ``call()`` returned, or a description of what it raised."""
    try:
        return ("returned", call())
    except Exception as error:
        return _describe(error)


async def async_outcome(call: Callable[[], Awaitable[object]]) -> tuple[object, ...]:
    """Like :func:`sync_outcome`, for a coroutine."""
    try:
        return ("returned", await call())
    except Exception as error:
        return _describe(error)


def assert_stat_equal(ours: os.stat_result, theirs: os.stat_result) -> None:
    for field in STAT_FIELDS:
        assert getattr(ours, field) == getattr(theirs, field), field
    assert tuple(ours) == tuple(theirs)


@pytest.fixture
def tree(tmp_dir: pathlib.Path) -> pathlib.Path:
    """A directory with a file, a subdirectory, links (good, dangling, to a directory), a FIFO
    and a Unix socket."""
    (tmp_dir / "file.txt").write_bytes(b"hello\n")
    (tmp_dir / "sub").mkdir()
    (tmp_dir / "sub" / "inner.py").write_bytes(b"")
    (tmp_dir / "sub" / "deeper").mkdir()
    (tmp_dir / "sub" / "deeper" / "x.py").write_bytes(b"")
    (tmp_dir / "link").symlink_to(tmp_dir / "file.txt")
    (tmp_dir / "dirlink").symlink_to("sub")
    (tmp_dir / "dangling").symlink_to(tmp_dir / "missing")
    (tmp_dir / "loop").symlink_to("loop")
    os.mkfifo(tmp_dir / "fifo")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_dir / "sock"))
    listener.close()
    return tmp_dir


#: Names in ``tree`` that each metadata test runs on: every file type, missing files, a path
#: through a file (ENOTDIR), a symlink loop (ELOOP), and a NUL byte.
NAMES = [
    "file.txt",
    "sub",
    "link",
    "dirlink",
    "dangling",
    "loop",
    "fifo",
    "sock",
    "missing",
    "file.txt/child",
    "missing/child",
    "nul\0byte",
]


class TestPurePathsBehaveLikePathlib:
    @pytest.mark.parametrize("text", ["/a/b/c.tar.gz", "rel/x.py", "/", ".", "a/../b", "noext"])
    async def test_properties_and_strings(self, text: str) -> None:
        ours, theirs = Path(text), pathlib.Path(text)
        for name in ("parts", "drive", "root", "anchor", "name", "suffix", "suffixes", "stem"):
            assert getattr(ours, name) == getattr(theirs, name), name
        assert str(ours) == str(theirs)
        assert os.fspath(ours) == os.fspath(theirs)
        assert bytes(ours) == bytes(theirs)
        assert ours.as_posix() == theirs.as_posix()
        assert ours.is_absolute() == theirs.is_absolute()
        assert ours.is_reserved() == theirs.is_reserved()
        assert repr(ours) == f"Path({theirs.as_posix()!r})"
        assert ours.parent == theirs.parent and type(ours.parent) is Path
        assert list(ours.parents) == list(theirs.parents)
        assert all(type(p) is Path for p in ours.parents)

    async def test_methods_returning_paths_return_this_class(self) -> None:
        ours, theirs = Path("/srv/data/report.txt"), pathlib.Path("/srv/data/report.txt")
        cases: list[tuple[Any, Any]] = [
            (ours / "x", theirs / "x"),
            ("/root" / Path("y"), "/root" / pathlib.Path("y")),
            (ours / Path("z"), theirs / "z"),
            (ours.joinpath("a", "b"), theirs.joinpath("a", "b")),
            (ours.with_name("other.csv"), theirs.with_name("other.csv")),
            (ours.with_stem("summary"), theirs.with_stem("summary")),
            (ours.with_suffix(".md"), theirs.with_suffix(".md")),
            (ours.with_suffix(""), theirs.with_suffix("")),
            (ours.relative_to("/srv"), theirs.relative_to("/srv")),
            (ours.relative_to(Path("/srv/data")), theirs.relative_to("/srv/data")),
            (ours.with_segments("q", "r"), pathlib.Path("q", "r")),
        ]
        for mine, expected in cases:
            assert type(mine) is Path
            assert mine == expected
            assert str(mine) == str(expected)

    async def test_matching_and_uris(self) -> None:
        ours, theirs = Path("/srv/data/report.txt"), pathlib.Path("/srv/data/report.txt")
        for pattern in ("*.txt", "data/*.txt", "/srv/*/*.txt", "*.csv", "srv/*.txt"):
            assert ours.match(pattern) == theirs.match(pattern), pattern
        assert ours.as_uri() == theirs.as_uri()
        assert ours.is_relative_to("/srv") and not ours.is_relative_to("/etc")
        for mistake in (
            lambda: Path("rel").as_uri(),
            lambda: ours.relative_to("/etc"),
            lambda: Path("/").with_name("x"),
            lambda: ours.with_suffix("md"),
        ):
            with pytest.raises(ValueError):
                mistake()

    async def test_equality_hashing_and_ordering_match_pathlib(self) -> None:
        a, b = Path("/a"), Path("/b")
        assert a == Path("/a") == pathlib.Path("/a")
        assert hash(a) == hash(pathlib.Path("/a"))
        assert len({a, Path("/a"), pathlib.Path("/a")}) == 1
        assert a != b and a != "/a"
        assert a < b <= Path("/b") and b > a >= Path("/a")
        assert a < pathlib.Path("/b")
        assert sorted([Path("/c"), b, a]) == [a, b, Path("/c")]
        with pytest.raises(TypeError):
            _ = a < "/b"  # type: ignore[operator]
        assert isinstance(a, os.PathLike)
        assert pathlib.Path(a) == pathlib.Path("/a")


class TestStatMatchesOsStat:
    @pytest.mark.parametrize("name", ["file.txt", "sub", "link", "dirlink", "fifo", "sock"])
    async def test_every_field_equals_os_stat(self, tree: pathlib.Path, name: str) -> None:
        path = tree / name
        assert_stat_equal(await Path(path).stat(), os.stat(path))
        assert_stat_equal(await Path(path).lstat(), os.lstat(path))
        assert_stat_equal(await Path(path).stat(follow_symlinks=False), os.lstat(path))

    async def test_device_numbers_of_a_device_file(self) -> None:
        ours = await Path("/dev/null").stat()
        assert_stat_equal(ours, os.stat("/dev/null"))
        assert os.major(ours.st_rdev) == 1 and os.minor(ours.st_rdev) == 3

    async def test_sub_second_times(self, tmp_dir: pathlib.Path) -> None:
        path = tmp_dir / "timed"
        path.write_bytes(b"")
        os.utime(path, ns=(1_234_567_891_123_456_789, -987_654_321_987_654_321))
        ours = await Path(path).stat()
        assert_stat_equal(ours, os.stat(path))
        assert ours.st_atime_ns == 1_234_567_891_123_456_789
        assert ours.st_mtime_ns == -987_654_321_987_654_321

    @pytest.mark.parametrize("name", ["missing", "dangling", "loop", "file.txt/child"])
    async def test_failures_are_pathlibs(self, tree: pathlib.Path, name: str) -> None:
        path = tree / name
        assert await async_outcome(Path(path).stat) == sync_outcome(path.stat)
        assert await async_outcome(Path(path).lstat) == sync_outcome(path.lstat)
        assert issubclass(sync_outcome(path.stat)[0], OSError)  # type: ignore[arg-type]

    async def test_a_nul_byte_is_a_value_error(self) -> None:
        with pytest.raises(ValueError):
            await Path("a\0b").stat()


class TestFileTypeQueriesMatchPathlib:
    @pytest.mark.parametrize("name", NAMES)
    async def test_every_query_on_every_kind_of_path(self, tree: pathlib.Path, name: str) -> None:
        ours, theirs = Path(tree / name), tree / name
        for query in (
            "exists",
            "is_file",
            "is_dir",
            "is_symlink",
            "is_fifo",
            "is_socket",
            "is_block_device",
            "is_char_device",
            "is_mount",
        ):
            expected = sync_outcome(getattr(theirs, query))
            assert await async_outcome(getattr(ours, query)) == expected, query

    async def test_devices_and_mount_points(self) -> None:
        for text in ("/dev/null", "/", "/proc", "/dev", "/var/tmp", "/etc/passwd"):
            ours, theirs = Path(text), pathlib.Path(text)
            assert await ours.is_char_device() == theirs.is_char_device()
            assert await ours.is_mount() == os.path.ismount(text), text

    async def test_without_following_links(self, tree: pathlib.Path) -> None:
        assert await Path(tree / "dangling").exists(follow_symlinks=False)
        assert not await Path(tree / "dangling").exists()
        assert not await Path(tree / "dirlink").is_dir(follow_symlinks=False)
        assert not await Path(tree / "link").is_file(follow_symlinks=False)
        assert await Path(tree / "link").is_file()

    async def test_a_permission_error_is_raised_not_hidden(self, tmp_dir: pathlib.Path) -> None:
        if os.geteuid() == 0:
            pytest.skip("root passes every permission check")
        locked = tmp_dir / "locked"
        locked.mkdir()
        (locked / "f").write_bytes(b"")
        locked.chmod(0)
        try:
            expected = sync_outcome((locked / "f").exists)
            assert expected[0] is PermissionError
            assert await async_outcome(Path(locked / "f").exists) == expected
        finally:
            locked.chmod(0o700)


class TestReadingFiles:
    @pytest.mark.parametrize("size", [0, 1, 4095, 4096, 70_000, 3 * 1024 * 1024 + 7])
    async def test_read_bytes_returns_the_whole_file(
        self, tmp_dir: pathlib.Path, size: int
    ) -> None:
        path = tmp_dir / "data"
        path.write_bytes(random.Random(size).randbytes(size))
        assert await Path(path).read_bytes() == path.read_bytes()

    async def test_files_whose_size_says_nothing(self) -> None:
        # /proc files report size 0; reading stops at the read that returns nothing.
        for text in ("/proc/self/status", "/proc/self/maps", "/proc/cpuinfo"):
            data = await Path(text).read_bytes()
            assert data and data.splitlines()[0] == pathlib.Path(text).read_bytes().splitlines()[0]

    @pytest.mark.parametrize("name", ["missing", "sub", "dangling", "file.txt/child", "loop"])
    async def test_read_failures_are_pathlibs(self, tree: pathlib.Path, name: str) -> None:
        ours, theirs = Path(tree / name), tree / name
        assert await async_outcome(ours.read_bytes) == sync_outcome(theirs.read_bytes)
        assert await async_outcome(ours.read_text) == sync_outcome(theirs.read_text)

    async def test_read_text_translates_newlines_like_open(self, tmp_dir: pathlib.Path) -> None:
        path = tmp_dir / "text"
        path.write_bytes(b"one\r\ntwo\rthree\nfour\r\r\n")
        assert await Path(path).read_text() == path.read_text()
        for newline in ("", "\n", "\r", "\r\n"):
            with open(path, newline=newline) as f:
                assert await Path(path).read_text(newline=newline) == f.read(), repr(newline)
        with pytest.raises(ValueError, match="illegal newline"):
            await Path(path).read_text(newline="x")

    @pytest.mark.parametrize(
        ("encoding", "errors"),
        [("utf-8", None), ("utf-16", None), ("utf-8-sig", None), ("latin-1", None)],
    )
    async def test_read_text_decodes_like_pathlib(
        self, tmp_dir: pathlib.Path, encoding: str, errors: str | None
    ) -> None:
        path = tmp_dir / "text"
        path.write_text("héllo\nwörld €\n" if encoding != "latin-1" else "héllo\n", encoding)
        assert await Path(path).read_text(encoding, errors) == path.read_text(encoding, errors)

    async def test_undecodable_bytes(self, tmp_dir: pathlib.Path) -> None:
        path = tmp_dir / "bad"
        path.write_bytes(b"ok \xff\xfe end")
        ours = Path(path)
        for errors in ("replace", "ignore", "surrogateescape", "backslashreplace"):
            assert await ours.read_text("utf-8", errors) == path.read_text("utf-8", errors)
        with pytest.raises(UnicodeDecodeError):
            await ours.read_text("utf-8")
        with pytest.raises(LookupError):
            await ours.read_text("no-such-codec")

    async def test_files_whose_size_says_more_than_they_hold(self) -> None:
        # sysfs files report 4096 bytes and hold a few: the read past the contents is not
        # taken for the end of a file that shrank.
        for text in (
            "/sys/devices/system/cpu/online",
            "/sys/kernel/mm/transparent_hugepage/enabled",
        ):
            if not os.path.exists(text):
                continue
            assert os.stat(text).st_size > len(pathlib.Path(text).read_bytes())
            assert await Path(text).read_bytes() == pathlib.Path(text).read_bytes()

    async def test_a_file_growing_while_it_is_read(self, tmp_dir: pathlib.Path) -> None:
        path = tmp_dir / "growing"
        path.write_bytes(b"")
        appends = 1500
        done = anyio.Event()

        async def append() -> None:
            # One append per pass of the loop: some land between read_bytes' statx and reads.
            with open(path, "ab", buffering=0) as f:
                for i in range(appends):
                    f.write(bytes([i % 251]) * 997)
                    await anyio.lowlevel.checkpoint()
            done.set()

        seen: list[bytes] = []
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(append)
            while not done.is_set():
                seen.append(await Path(path).read_bytes())
        final = path.read_bytes()
        assert len(final) == appends * 997
        # Each read is a prefix of the file as it ended, and no shorter than the one before.
        assert all(final.startswith(data) for data in seen)
        assert [len(data) for data in seen] == sorted(len(data) for data in seen)
        # Most reads saw the file grow under them and went on reading past its statx size.
        assert len({len(data) for data in seen}) > len(seen) // 2

    async def test_a_fifo_is_read_until_its_writer_closes(self, tree: pathlib.Path) -> None:
        def write() -> None:
            with open(tree / "fifo", "wb") as f:
                for i in range(50):
                    f.write(bytes([i]) * 3000)
                    f.flush()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(anyio.to_thread.run_sync, write)
            data = await Path(tree / "fifo").read_bytes()
        assert data == b"".join(bytes([i]) * 3000 for i in range(50))

    async def test_default_encoding_is_opens(self, tmp_dir: pathlib.Path) -> None:
        path = tmp_dir / "text"
        path.write_text("plain ascii\n")
        assert await Path(path).read_text() == path.read_text()


class TestWritingFiles:
    async def test_write_bytes_replaces_the_contents(self, tmp_dir: pathlib.Path) -> None:
        path = tmp_dir / "out"
        path.write_bytes(b"a much longer previous content")
        assert await Path(path).write_bytes(b"short") == 5
        assert path.read_bytes() == b"short"
        big = random.Random(1).randbytes(5 * 1024 * 1024 + 3)
        assert await Path(path).write_bytes(big) == len(big)
        assert path.read_bytes() == big
        assert await Path(path).write_bytes(b"") == 0
        assert path.read_bytes() == b""

    async def test_write_bytes_takes_any_buffer(self, tmp_dir: pathlib.Path) -> None:
        ours, theirs = Path(tmp_dir / "ours"), tmp_dir / "theirs"
        for data in (bytearray(b"xyz"), memoryview(b"0123456789")[2:7], array.array("i", [1, 2])):
            assert await ours.write_bytes(data) == theirs.write_bytes(data)
            assert pathlib.Path(ours).read_bytes() == theirs.read_bytes()

    async def test_a_new_file_gets_pathlibs_mode(self, tmp_dir: pathlib.Path) -> None:
        await Path(tmp_dir / "ours").write_bytes(b"x")
        (tmp_dir / "theirs").write_bytes(b"x")
        assert os.stat(tmp_dir / "ours").st_mode == os.stat(tmp_dir / "theirs").st_mode

    @pytest.mark.parametrize("name", ["sub", "missing/child", "file.txt/child", "dangling"])
    async def test_write_failures_are_pathlibs(self, tree: pathlib.Path, name: str) -> None:
        ours, theirs = Path(tree / name), tree / name
        # "dangling" succeeds for both (it creates the link's target): undo in between.
        expected = sync_outcome(lambda: theirs.write_bytes(b"x"))
        (tree / "missing").unlink(missing_ok=True)
        assert await async_outcome(lambda: ours.write_bytes(b"x")) == expected
        expected = sync_outcome(lambda: theirs.write_text("x"))
        (tree / "missing").unlink(missing_ok=True)
        assert await async_outcome(lambda: ours.write_text("x")) == expected

    @pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
    async def test_write_text_translates_newlines_like_pathlib(
        self, tmp_dir: pathlib.Path, newline: str | None
    ) -> None:
        text = "one\ntwo\r\nthree\r"
        ours, theirs = Path(tmp_dir / "ours"), tmp_dir / "theirs"
        assert await ours.write_text(text, newline=newline) == theirs.write_text(
            text, newline=newline
        )
        assert pathlib.Path(ours).read_bytes() == theirs.read_bytes()

    @pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-8-sig", "cp1252"])
    async def test_write_text_encodes_like_pathlib(
        self, tmp_dir: pathlib.Path, encoding: str
    ) -> None:
        text = "héllo wörld €\n"
        ours, theirs = Path(tmp_dir / "ours"), tmp_dir / "theirs"
        assert await ours.write_text(text, encoding) == theirs.write_text(text, encoding)
        assert pathlib.Path(ours).read_bytes() == theirs.read_bytes()

    async def test_write_text_failures_leave_what_pathlib_leaves(
        self, tmp_dir: pathlib.Path
    ) -> None:
        ours, theirs = Path(tmp_dir / "ours"), tmp_dir / "theirs"
        for path in (pathlib.Path(ours), theirs):
            path.write_bytes(b"previous")
        attempts: list[tuple[Any, ...]] = [
            ("€", "ascii", None, None),
            ("x", "no-such-codec", None, None),
            ("x", "utf-8", None, "bad newline"),
        ]
        for text, encoding, errors, newline in attempts:
            mine = await async_outcome(partial(ours.write_text, text, encoding, errors, newline))
            assert mine == sync_outcome(partial(theirs.write_text, text, encoding, errors, newline))
            assert mine[0] != "returned"
            assert pathlib.Path(ours).read_bytes() == theirs.read_bytes()
        assert await ours.write_text("€?", "ascii", "replace") == 2
        assert pathlib.Path(ours).read_bytes() == b"??"
        with pytest.raises(TypeError, match="data must be str, not bytes"):
            await ours.write_text(b"x")  # type: ignore[arg-type]


class TestOpeningFiles:
    async def test_open_reads_and_writes_like_open(self, tmp_dir: pathlib.Path) -> None:
        path = Path(tmp_dir / "f.txt")
        async with path.open("w", newline="\r\n") as f:
            await f.write("one\ntwo\n")
        with open(tmp_dir / "f.txt", "w", newline="\r\n") as g:
            g.write("one\ntwo\n")
        assert await path.read_bytes() == (tmp_dir / "f.txt").read_bytes() == b"one\r\ntwo\r\n"
        async with path.open() as f:
            assert await f.read() == "one\ntwo\n"
        f = await path.open("rb")
        try:
            assert await f.read() == b"one\r\ntwo\r\n"
        finally:
            await f.aclose()

    async def test_open_failures_are_opens(self, tree: pathlib.Path) -> None:
        for name, mode in (("missing", "r"), ("sub", "r"), ("sub", "w"), ("file.txt", "x")):
            theirs = sync_outcome(partial(open, tree / name, mode))
            assert await async_outcome(partial(_open_and_close, Path(tree / name), mode)) == theirs


async def _open_and_close(path: Path, mode: str) -> None:
    async with path.open(mode):
        pass


class TestCreatingAndRemoving:
    async def test_mkdir_like_pathlib(self, tmp_dir: pathlib.Path) -> None:
        cases: list[tuple[str, dict[str, Any]]] = [
            ("new", {}),
            ("new", {}),
            ("new", {"exist_ok": True}),
            ("file.txt", {"exist_ok": True}),
            ("file.txt", {}),
            ("a/b/c", {}),
            ("a/b/c", {"parents": True}),
            ("a/b/c", {"parents": True, "exist_ok": True}),
            ("file.txt/x/y", {"parents": True}),
            ("link", {"exist_ok": True}),
            ("dirlink", {"exist_ok": True}),
            ("dirlink", {}),
        ]
        theirs_base, ours_base = tmp_dir / "theirs", tmp_dir / "ours"
        for base in (theirs_base, ours_base):
            base.mkdir()
            (base / "file.txt").write_bytes(b"")
            (base / "sub").mkdir()
            (base / "link").symlink_to("file.txt")
            (base / "dirlink").symlink_to("sub")
        for name, options in cases:
            theirs = sync_outcome(partial((theirs_base / name).mkdir, **options))
            ours = await async_outcome(partial(Path(ours_base / name).mkdir, **options))
            renamed = tuple(
                part.replace(str(theirs_base), str(ours_base)) if isinstance(part, str) else part
                for part in theirs
            )
            assert ours == renamed, (name, options)
        assert sorted(os.walk(ours_base)) == sorted(
            (root.replace(str(theirs_base), str(ours_base)), dirs, files)
            for root, dirs, files in os.walk(theirs_base)
        )

    async def test_mkdir_mode(self, tmp_dir: pathlib.Path) -> None:
        await Path(tmp_dir / "ours").mkdir(0o701)
        (tmp_dir / "theirs").mkdir(0o701)
        assert os.stat(tmp_dir / "ours").st_mode == os.stat(tmp_dir / "theirs").st_mode

    @pytest.mark.parametrize("name", ["file.txt", "sub", "link", "dangling", "missing", "fifo"])
    async def test_unlink_and_rmdir_like_pathlib(self, tree: pathlib.Path, name: str) -> None:
        for method in ("unlink", "rmdir"):
            theirs = sync_outcome(getattr(tree / name, method))
            _restore_tree(tree)
            ours = await async_outcome(getattr(Path(tree / name), method))
            assert ours == theirs, method
            _restore_tree(tree)
        await Path(tree / "missing").unlink(missing_ok=True)
        await Path(tree / "file.txt").unlink(missing_ok=True)
        assert not (tree / "file.txt").exists()

    async def test_rmdir_of_a_directory_with_contents(self, tree: pathlib.Path) -> None:
        expected = sync_outcome((tree / "sub").rmdir)
        assert await async_outcome(Path(tree / "sub").rmdir) == expected
        assert expected[1] == 39  # ENOTEMPTY

    async def test_touch_creates_or_updates(self, tmp_dir: pathlib.Path) -> None:
        ours, theirs = Path(tmp_dir / "ours"), tmp_dir / "theirs"
        await ours.touch(0o640)
        theirs.touch(0o640)
        assert os.stat(ours).st_mode == os.stat(theirs).st_mode
        os.utime(ours, (1, 1))
        await ours.touch()
        assert os.stat(ours).st_mtime > 1
        os.utime(ours, (1, 1))
        assert await async_outcome(lambda: ours.touch(exist_ok=False)) == sync_outcome(
            lambda: pathlib.Path(ours).touch(exist_ok=False)
        )
        assert os.stat(ours).st_mtime == 1
        missing = tmp_dir / "missing" / "x"
        assert await async_outcome(Path(missing).touch) == sync_outcome(missing.touch)


def _restore_tree(tree: pathlib.Path) -> None:
    """Put back what the unlink/rmdir test removed."""
    if not (tree / "file.txt").exists():
        (tree / "file.txt").write_bytes(b"hello\n")
    if not (tree / "link").is_symlink():
        (tree / "link").symlink_to(tree / "file.txt")
    if not (tree / "dangling").is_symlink():
        (tree / "dangling").symlink_to(tree / "missing")
    if not (tree / "fifo").exists():
        os.mkfifo(tree / "fifo")


class TestRenamingAndLinking:
    async def test_rename_and_replace_return_the_target(self, tmp_dir: pathlib.Path) -> None:
        (tmp_dir / "a").write_bytes(b"A")
        (tmp_dir / "b").write_bytes(b"B")
        moved = await Path(tmp_dir / "a").rename(tmp_dir / "c")
        assert type(moved) is Path and moved == tmp_dir / "c"
        assert (tmp_dir / "c").read_bytes() == b"A" and not (tmp_dir / "a").exists()
        replaced = await Path(tmp_dir / "c").replace(str(tmp_dir / "b"))
        assert type(replaced) is Path and replaced == tmp_dir / "b"
        assert (tmp_dir / "b").read_bytes() == b"A"
        again = await Path(tmp_dir / "b").rename(Path(tmp_dir / "d"))
        assert type(again) is Path and again == tmp_dir / "d"
        assert sorted(os.listdir(tmp_dir)) == ["d"]

    @pytest.mark.parametrize(
        ("source", "target"),
        [("missing", "x"), ("file.txt", "missing/x"), ("sub", "file.txt"), ("file.txt", "sub")],
    )
    async def test_rename_failures_name_both_files(
        self, tree: pathlib.Path, source: str, target: str
    ) -> None:
        for method in ("rename", "replace"):
            theirs = sync_outcome(partial(getattr(tree / source, method), tree / target))
            ours = await async_outcome(partial(getattr(Path(tree / source), method), tree / target))
            assert ours == theirs
            assert theirs[0] != "returned" and theirs[3] == str(tree / target)

    async def test_symlinks(self, tree: pathlib.Path) -> None:
        link = Path(tree / "new-link")
        await link.symlink_to("file.txt")
        assert os.readlink(link) == "file.txt"
        assert await link.read_bytes() == b"hello\n"
        target = await link.readlink()
        assert type(target) is Path and target == pathlib.Path("file.txt")
        await Path(tree / "to-dir").symlink_to(Path(tree / "sub"), target_is_directory=True)
        assert await Path(tree / "to-dir").is_dir()
        for name in ("file.txt", "missing/x"):
            theirs = sync_outcome(partial((tree / name).symlink_to, "t"))
            assert await async_outcome(partial(Path(tree / name).symlink_to, "t")) == theirs
        for name in ("file.txt", "missing"):
            assert await async_outcome(Path(tree / name).readlink) == sync_outcome(
                (tree / name).readlink
            )

    async def test_hard_links(self, tree: pathlib.Path) -> None:
        await Path(tree / "hard").hardlink_to(tree / "file.txt")
        assert os.stat(tree / "file.txt").st_nlink == 2
        assert await Path(tree / "hard").samefile(tree / "file.txt")
        # Like link(2), a symbolic link is linked itself.
        await Path(tree / "hard-link").hardlink_to(Path(tree / "dangling"))
        assert (tree / "hard-link").is_symlink()
        for new, existing in (("file.txt", "sub/inner.py"), ("x", "missing"), ("y", "sub")):
            theirs = sync_outcome(partial((tree / new).hardlink_to, tree / existing))
            ours = await async_outcome(partial(Path(tree / new).hardlink_to, tree / existing))
            assert ours == theirs

    async def test_resolve_samefile_and_absolute(self, tree: pathlib.Path) -> None:
        for name in ("link", "dirlink/inner.py", "sub/../file.txt", "missing/x"):
            resolved = await Path(tree / name).resolve()
            assert type(resolved) is Path and resolved == (tree / name).resolve()
        assert await async_outcome(lambda: Path(tree / "missing").resolve(strict=True)) == (
            sync_outcome(lambda: (tree / "missing").resolve(strict=True))
        )
        assert await Path(tree / "link").samefile(str(tree / "file.txt"))
        assert not await Path(tree / "link").samefile(Path(tree / "sub"))
        assert await async_outcome(lambda: Path(tree / "link").samefile(tree / "missing")) == (
            sync_outcome(lambda: (tree / "link").samefile(tree / "missing"))
        )
        assert await Path("rel/x").absolute() == pathlib.Path("rel/x").absolute()
        assert await Path("/abs").absolute() == pathlib.Path("/abs")
        assert await Path.cwd() == pathlib.Path.cwd()
        assert type(await Path.cwd()) is Path
        assert await Path.home() == pathlib.Path.home()
        assert await Path("~/x").expanduser() == pathlib.Path("~/x").expanduser()

    async def test_chmod_owner_and_group(self, tree: pathlib.Path) -> None:
        await Path(tree / "link").chmod(0o600)
        assert stat.S_IMODE(os.stat(tree / "file.txt").st_mode) == 0o600
        assert await async_outcome(lambda: Path(tree / "link").lchmod(0o600)) == sync_outcome(
            lambda: (tree / "link").lchmod(0o600)
        )
        assert await async_outcome(lambda: Path(tree / "missing").chmod(0o600)) == sync_outcome(
            lambda: (tree / "missing").chmod(0o600)
        )
        assert await Path(tree / "file.txt").owner() == (tree / "file.txt").owner()
        assert await Path(tree / "file.txt").group() == (tree / "file.txt").group()


class TestListingDirectories:
    async def test_iterdir(self, tree: pathlib.Path) -> None:
        ours = [p async for p in Path(tree).iterdir()]
        assert all(type(p) is Path for p in ours)
        assert sorted(ours) == sorted(tree.iterdir())
        for name in ("file.txt", "missing"):
            theirs = sync_outcome(partial(list, (tree / name).iterdir()))
            assert await async_outcome(partial(_collect, Path(tree / name).iterdir())) == theirs

    @pytest.mark.parametrize("pattern", ["*", "*.py", "**/*.py", "sub/*", "**", "*/deeper/*"])
    async def test_glob_and_rglob(self, tree: pathlib.Path, pattern: str) -> None:
        ours = await _collect(Path(tree).glob(pattern))
        assert all(type(p) is Path for p in ours)
        assert sorted(ours) == sorted(tree.glob(pattern))
        if not pattern.startswith("**"):
            assert sorted(await _collect(Path(tree).rglob(pattern))) == sorted(tree.rglob(pattern))

    async def test_many_matches_arrive_in_batches(self, tmp_dir: pathlib.Path) -> None:
        for i in range(700):
            (tmp_dir / f"f{i}.txt").write_bytes(b"")
        assert sorted(await _collect(Path(tmp_dir).glob("*.txt"))) == sorted(tmp_dir.glob("*.txt"))

    async def test_a_bad_pattern_is_refused(self, tmp_dir: pathlib.Path) -> None:
        for pattern in ("", "/abs"):
            theirs = sync_outcome(partial(list, tmp_dir.glob(pattern)))
            assert await async_outcome(partial(_collect, Path(tmp_dir).glob(pattern))) == theirs


async def _settle(ring: century_ring.aio.AsyncRing) -> None:
    """Let the loop run until the ring has nothing in flight (bounded)."""
    for _ in range(1000):
        if ring.ring.in_flight == 0:
            return
        await anyio.sleep(0.001)
    raise AssertionError(f"{ring.ring.in_flight} operations still in flight")


async def _collect(iterator: Any) -> list[Path]:
    return [path async for path in iterator]


class TestCancellationLeaksNothing:
    async def test_read_bytes_cancelled_at_random_points(self, tmp_dir: pathlib.Path) -> None:
        ring = century_ring.aio.current_ring()
        path = Path(tmp_dir / "data")
        data = random.Random(5).randbytes(20_000)
        pathlib.Path(path).write_bytes(data)
        rng = random.Random(6)
        before = open_fd_count()
        outcomes = {"cancelled": 0, "read": 0}
        for _ in range(1200):
            async with anyio.create_task_group() as tasks:

                async def read() -> None:
                    assert await path.read_bytes() == data
                    outcomes["read"] += 1

                tasks.start_soon(read)
                for _ in range(rng.randint(0, 12)):
                    await anyio.lowlevel.checkpoint()
                tasks.cancel_scope.cancel()
        outcomes["cancelled"] = 1200 - outcomes["read"]
        await _settle(ring)
        assert open_fd_count() == before
        assert outcomes["cancelled"] > 20 and outcomes["read"] > 20, outcomes

    async def test_nothing_is_done_once_the_task_is_cancelled(self, tmp_dir: pathlib.Path) -> None:
        path = Path(tmp_dir / "never")
        for step in (
            path.write_bytes(b"x"),
            path.write_text("x"),
            path.touch(),
            path.mkdir(),
            path.symlink_to("x"),
            path.read_bytes(),
            path.stat(),
        ):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await step
                raise AssertionError("the cancellation did not land")
            assert scope.cancelled_caught
        assert os.listdir(tmp_dir) == []

    async def test_writes_and_touches_cancelled_at_random_points(
        self, tmp_dir: pathlib.Path
    ) -> None:
        ring = century_ring.aio.current_ring()
        rng = random.Random(7)
        before = open_fd_count()
        for i in range(300):
            path = Path(tmp_dir / f"f{i % 7}")
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(path.write_text, "x" * 5000)
                    tasks.start_soon(Path(tmp_dir / f"t{i % 5}").touch)
                    for _ in range(rng.randint(0, 6)):
                        await anyio.lowlevel.checkpoint()
                    scope.cancel()
        await _settle(ring)
        assert open_fd_count() == before
