"""``anyio.Path``'s interface, with its file system calls made as io_uring operations.

Each method that has an io_uring operation (``statx``, ``openat``, ``read``, ``write``,
``close``, ``unlinkat``, ``mkdirat``, ``renameat``, ``symlinkat``, ``linkat``) runs on the ring
of the running event loop, :func:`~century_ring.aio.current_ring`. The few that the kernel
cannot do through io_uring (listing a directory, ``chmod``, ``readlink``, ``utimensat``, user
and group names) run in a worker thread, as ``anyio.Path`` runs all of them. Results and
errors are those of :class:`pathlib.Path`: :exc:`OSError` subclasses with ``filename`` (and
``filename2``) set the way the :mod:`os` functions set them.
"""

from __future__ import annotations

import errno
import itertools
import locale
import os
import pathlib
import stat
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import anyio
import anyio.lowlevel
import anyio.to_thread

from century_ring._century_ring import AT_FDCWD, CompletionEvent, StatxResult
from century_ring.aio._current import current_ring
from century_ring.aio._errors import RingClosedError
from century_ring.aio._file import _close_fd, open_file
from century_ring.enums import FileOpenFlag, FileOpenMode

if TYPE_CHECKING:
    from typing_extensions import Buffer, Self

    from century_ring.aio._file import _BinaryMode, _OpenFile, _TextMode
    from century_ring.aio._ring import AsyncRing

__all__ = ["Path"]

#: ``statx`` flags and mask bits (``<linux/stat.h>``, ``<fcntl.h>``).
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_STATX_TYPE = 0x1
_STATX_SIZE = 0x200
_STATX_BASIC_STATS = 0x7FF

#: The errors for which pathlib's ``exists()`` and ``is_*()`` answer ``False`` (its
#: ``_ignore_error``).
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})

#: The most one read or write asks for (``prep_read`` takes up to ``2**31 - 1``).
_MAX_CHUNK = 1 << 30
#: What a read asks for when the file's size says nothing (``/proc`` files, pipes).
_MIN_CHUNK = 64 * 1024
#: How many glob matches one trip to the worker thread brings back.
_GLOB_BATCH = 256

_NS_PER_SECOND = 1_000_000_000


def _named(error: OSError, filename: str, filename2: str | None = None) -> OSError:
    """``error`` with the file names :mod:`os` would have put on it."""
    if error.filename is not None:
        return error
    # OSError(errno, ...) builds the errno's subclass, as os functions raise.
    return OSError(error.errno, error.strerror, filename, None, filename2)


async def _run(
    operation: Coroutine[Any, Any, CompletionEvent], filename: str, filename2: str | None = None
) -> CompletionEvent:
    """Await a ring operation, naming the file(s) in the error it raises."""
    try:
        await _checkpoint_if_cancelled()
    except BaseException:
        operation.close()  # Not started, so nothing was queued.
        raise
    try:
        return await operation
    except OSError as error:
        raise _named(error, filename, filename2) from None


async def _checkpoint_if_cancelled() -> None:
    """Let a cancellation already pending land before a path operation is queued.

    The core refuses new operations to a task only once its own cancellation has been asked
    for again; an anyio scope cancelled before the task's first wait inside it is seen only by
    anyio (``current_effective_deadline``, about 1.6 µs: too dear for every read, cheap beside
    an ``open`` + ``write`` + ``close``). A cancelled task thus creates, removes or renames
    nothing.
    """
    await anyio.lowlevel.checkpoint_if_cancelled()


def _seconds(ns: int) -> float:
    """A time in seconds computed as CPython's ``os.stat`` does (``sec + nsec * 1e-9``)."""
    sec, nsec = divmod(ns, _NS_PER_SECOND)
    return sec + nsec * 1e-9


def _stat_result(statx: StatxResult) -> os.stat_result:
    """The :class:`os.stat_result` that ``os.stat`` gives for the same file."""
    atime_ns, mtime_ns, ctime_ns = statx.st_atime_ns, statx.st_mtime_ns, statx.st_ctime_ns
    return os.stat_result(
        (
            statx.st_mode,
            statx.st_ino,
            statx.st_dev,
            statx.st_nlink,
            statx.st_uid,
            statx.st_gid,
            statx.st_size,
            atime_ns // _NS_PER_SECOND,
            mtime_ns // _NS_PER_SECOND,
            ctime_ns // _NS_PER_SECOND,
        ),
        {
            "st_atime": _seconds(atime_ns),
            "st_mtime": _seconds(mtime_ns),
            "st_ctime": _seconds(ctime_ns),
            "st_atime_ns": atime_ns,
            "st_mtime_ns": mtime_ns,
            "st_ctime_ns": ctime_ns,
            "st_blksize": statx.st_blksize,
            "st_blocks": statx.st_blocks,
            "st_rdev": statx.st_rdev,
        },
    )


def _text_encoding(encoding: str | None) -> str:
    """The codec ``open()`` in text mode would use for ``encoding`` (``io.text_encoding``)."""
    if encoding is not None:
        return encoding
    if sys.flags.warn_default_encoding:
        # stacklevel 3: the warning points at the caller of read_text/write_text.
        warnings.warn("'encoding' argument not specified", EncodingWarning, stacklevel=3)
    return "utf-8" if sys.flags.utf8_mode else locale.getpreferredencoding(False)


def _check_newline(newline: str | None) -> None:
    """Refuse what :class:`io.TextIOWrapper` refuses, with its messages."""
    if newline is not None and not isinstance(newline, str):
        raise TypeError(f"newline must be str or None, not {type(newline).__name__}")
    if newline not in (None, "", "\n", "\r", "\r\n"):
        raise ValueError(f"illegal newline value: {newline}")


async def _write_all(ring: AsyncRing, fd: int, data: memoryview, filename: str) -> None:
    """Write all of ``data`` at the file position, looping on short writes."""
    done, total = 0, data.nbytes
    while done < total:
        count = min(total - done, _MAX_CHUNK)
        # copy=False: the ring holds an export of the caller's buffer until the write completes.
        written = (await _run(ring.write(fd, data, -1, count, done, copy=False), filename)).result
        if written == 0:
            raise OSError(errno.EIO, "write(2) wrote nothing", filename)
        done += written


async def _both(
    ring: AsyncRing,
    queue_first: Callable[[], int],
    queue_second: Callable[[], int],
    on_first: Callable[[CompletionEvent], None] | None = None,
) -> tuple[CompletionEvent, CompletionEvent]:
    """Queue two operations on ``ring.ring`` in the same pass and wait for both, failed or not.

    Both completions are always claimed, even when the task is cancelled; ``on_first`` sees the
    first completion before any checkpoint, so what it carries (a descriptor) is never lost.
    """
    await _checkpoint_if_cancelled()
    first = queue_first()
    try:
        second = queue_second()
    except BaseException:
        with anyio.CancelScope(shield=True):
            event = await ring.wait_for_completion(first, autoraise=False)
        if on_first is not None:
            on_first(event)
        raise
    try:
        first_event = await ring.wait_for_completion(first, autoraise=False)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await ring.wait_for_completion(second, autoraise=False)
        raise
    if on_first is not None:
        on_first(first_event)
    # A cancel here cancels the second operation; the core claims its completion either way.
    second_event = await ring.wait_for_completion(second, autoraise=False)
    return first_event, second_event


def _raise_for(event: CompletionEvent, filename: str) -> None:
    """Raise what a failed completion stands for, naming ``filename``."""
    if event.result < 0:
        code = -event.result
        if code == errno.ECANCELED and current_ring().closed:
            raise RingClosedError("the ring was closed while the operation waited")
        raise OSError(code, os.strerror(code), filename)


class Path:
    """An asynchronous :class:`pathlib.Path`, doing its I/O on the running loop's io_uring.

    It has the interface of ``anyio.Path`` (that of :class:`pathlib.Path`, with every method
    that touches the file system a coroutine and :meth:`glob`, :meth:`rglob` and
    :meth:`iterdir` async iterators), so it can stand in for it::

        path = century_ring.aio.Path("data") / "input.txt"
        if await path.exists():
            text = await path.read_text()

    It is not a :class:`pathlib.PurePath`, but it is an :class:`os.PathLike`, compares equal to
    the :class:`pathlib.Path` of the same path, and hashes like it.

    A task cancelled inside a method leaves no file descriptor open; the file system change
    the method was making may or may not have happened, as with a cancelled thread.

    :param args: Path segments, joined as :class:`pathlib.Path` joins them.
    """

    __slots__ = ("__weakref__", "_path")

    def __init__(self, *args: str | os.PathLike[str]) -> None:
        self._path = pathlib.Path(*args)

    # -- The path as a value ---------------------------------------------------------------

    def __fspath__(self) -> str:
        """The path as a :class:`str`, for :func:`os.fspath`."""
        return os.fspath(self._path)

    def __str__(self) -> str:
        """The path as a :class:`str`."""
        return str(self._path)

    def __bytes__(self) -> bytes:
        """The path encoded with :func:`os.fsencode`."""
        return bytes(self._path)

    def __repr__(self) -> str:
        """``Path('the/path')``, as ``anyio.Path`` shows itself."""
        return f"{type(self).__name__}({self.as_posix()!r})"

    def __hash__(self) -> int:
        """The hash of the equal :class:`pathlib.Path`."""
        return hash(self._path)

    def __eq__(self, other: object) -> bool:
        """Equal to a :class:`Path` or :class:`pathlib.PurePath` of the same path."""
        if isinstance(other, Path):
            return self._path == other._path
        if isinstance(other, pathlib.PurePath):
            return self._path == other
        return NotImplemented

    def __lt__(self, other: pathlib.PurePath | Path) -> bool:
        """Order as :class:`pathlib.Path` orders."""
        if isinstance(other, Path):
            return self._path < other._path
        if isinstance(other, pathlib.PurePath):
            return self._path < other
        return NotImplemented

    def __le__(self, other: pathlib.PurePath | Path) -> bool:
        """Order as :class:`pathlib.Path` orders."""
        if isinstance(other, Path):
            return self._path <= other._path
        if isinstance(other, pathlib.PurePath):
            return self._path <= other
        return NotImplemented

    def __gt__(self, other: pathlib.PurePath | Path) -> bool:
        """Order as :class:`pathlib.Path` orders."""
        if isinstance(other, Path):
            return self._path > other._path
        if isinstance(other, pathlib.PurePath):
            return self._path > other
        return NotImplemented

    def __ge__(self, other: pathlib.PurePath | Path) -> bool:
        """Order as :class:`pathlib.Path` orders."""
        if isinstance(other, Path):
            return self._path >= other._path
        if isinstance(other, pathlib.PurePath):
            return self._path >= other
        return NotImplemented

    def __truediv__(self, other: str | os.PathLike[str]) -> Self:
        """``path / "child"``: the joined path."""
        return type(self)(self._path / other)

    def __rtruediv__(self, other: str | os.PathLike[str]) -> Self:
        """``"parent" / path``: the joined path."""
        return type(self)(other, self._path)

    # -- Pure path methods -------------------------------------------------------------------

    @property
    def parts(self) -> tuple[str, ...]:
        """The path's components, as :attr:`pathlib.PurePath.parts`."""
        return self._path.parts

    @property
    def drive(self) -> str:
        """The drive letter or name; always ``""`` on POSIX."""
        return self._path.drive

    @property
    def root(self) -> str:
        """``"/"`` for an absolute path, else ``""``."""
        return self._path.root

    @property
    def anchor(self) -> str:
        """The drive and root together."""
        return self._path.anchor

    @property
    def parents(self) -> Sequence[Self]:
        """The path's ancestors, nearest first."""
        return tuple(type(self)(parent) for parent in self._path.parents)

    @property
    def parent(self) -> Self:
        """The path without its last component."""
        return type(self)(self._path.parent)

    @property
    def name(self) -> str:
        """The last component."""
        return self._path.name

    @property
    def suffix(self) -> str:
        """The last component's extension, such as ``".gz"``, or ``""``."""
        return self._path.suffix

    @property
    def suffixes(self) -> list[str]:
        """Every extension of the last component, such as ``[".tar", ".gz"]``."""
        return self._path.suffixes

    @property
    def stem(self) -> str:
        """The last component without its last extension."""
        return self._path.stem

    def as_posix(self) -> str:
        """The path with forward slashes."""
        return self._path.as_posix()

    def as_uri(self) -> str:
        """The path as a ``file://`` URI.

        :raises ValueError: The path is relative.
        """
        return self._path.as_uri()

    def is_absolute(self) -> bool:
        """``True`` if the path has a root."""
        return self._path.is_absolute()

    def is_reserved(self) -> bool:
        """``True`` if Windows reserves the name; never on POSIX."""
        return self._path.is_reserved()

    def is_relative_to(self, *other: str | os.PathLike[str]) -> bool:
        """``True`` if the path lies under ``other`` (joined), by its components alone.

        :param other: The would-be ancestor's segments.
        """
        try:
            self.relative_to(*other)
        except ValueError:
            return False
        return True

    def relative_to(self, *other: str | os.PathLike[str]) -> Self:
        """The path relative to ``other`` (joined), by its components alone.

        :param other: The ancestor's segments.
        :raises ValueError: The path does not lie under ``other``.
        """
        return type(self)(self._path.relative_to(*(os.fspath(part) for part in other)))

    def joinpath(self, *args: str | os.PathLike[str]) -> Self:
        """The path with ``args`` appended, as ``/`` would append them.

        :param args: Segments to append.
        """
        return type(self)(self._path.joinpath(*args))

    def match(self, path_pattern: str) -> bool:
        """``True`` if the path matches the glob-style pattern, from the right.

        :param path_pattern: Such as ``"*.py"`` or ``"src/*.py"``.
        """
        return self._path.match(path_pattern)

    def with_name(self, name: str) -> Self:
        """The path with its last component replaced.

        :param name: The new last component.
        :raises ValueError: The path has no name, or ``name`` is not a valid one.
        """
        return type(self)(self._path.with_name(name))

    def with_stem(self, stem: str) -> Self:
        """The path with the stem of its last component replaced, its suffix kept.

        :param stem: The new stem.
        :raises ValueError: The path has no name.
        """
        return type(self)(self._path.with_stem(stem))

    def with_suffix(self, suffix: str) -> Self:
        """The path with its last suffix replaced (or added, or with ``""`` removed).

        :param suffix: Such as ``".txt"``, or ``""``.
        :raises ValueError: ``suffix`` does not start with a dot, or the path has no name.
        """
        return type(self)(self._path.with_suffix(suffix))

    def with_segments(self, *pathsegments: str | os.PathLike[str]) -> Self:
        """A new path of the same class from ``pathsegments``.

        :param pathsegments: The segments of the new path.
        """
        return type(self)(*pathsegments)

    # -- The working directory and home ------------------------------------------------------

    @classmethod
    async def cwd(cls) -> Self:
        """The current working directory."""
        # getcwd(2) reads the kernel's dentry cache only: no reason to pay for a thread.
        return cls(os.getcwd())

    @classmethod
    async def home(cls) -> Self:
        """The user's home directory (``$HOME``, or the password database)."""
        # The password database can be a network service: a thread.
        return cls(await anyio.to_thread.run_sync(pathlib.Path.home))

    async def absolute(self) -> Self:
        """The path made absolute against the working directory, without resolving links."""
        if self._path.is_absolute():
            return self
        return type(self)(os.getcwd(), self._path)

    async def expanduser(self) -> Self:
        """The path with a leading ``~`` or ``~user`` expanded.

        :raises RuntimeError: The home directory cannot be found.
        """
        return type(self)(await anyio.to_thread.run_sync(self._path.expanduser))

    async def resolve(self, strict: bool = False) -> Self:
        """The absolute path with every symbolic link and ``..`` resolved (in a thread).

        :param strict: Raise if the path does not exist, instead of resolving what does.
        :raises FileNotFoundError: ``strict`` and the path does not exist.
        :raises RuntimeError: A symbolic link loop.
        """
        return type(self)(await anyio.to_thread.run_sync(self._path.resolve, strict))

    async def readlink(self) -> Self:
        """Where the symbolic link points (``readlink(2)``, in a thread).

        :raises OSError: Such as :exc:`FileNotFoundError`, or ``EINVAL`` if not a link.
        """
        return type(self)(await anyio.to_thread.run_sync(os.readlink, str(self._path)))

    # -- Metadata ----------------------------------------------------------------------------

    async def _statx(self, follow_symlinks: bool, mask: int) -> StatxResult:
        name = str(self._path)
        flags = 0 if follow_symlinks else _AT_SYMLINK_NOFOLLOW
        event = await _run(current_ring().statx(AT_FDCWD, name, flags, mask), name)
        result = event.extra
        assert isinstance(result, StatxResult)
        return result

    async def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        """The file's metadata, by ``statx`` on the ring; equal, field by field, to
        :func:`os.stat`'s.

        :param follow_symlinks: ``False`` to describe a symbolic link itself.
        :raises OSError: Such as :exc:`FileNotFoundError`, with ``filename`` set.
        """
        return _stat_result(await self._statx(follow_symlinks, _STATX_BASIC_STATS))

    async def lstat(self) -> os.stat_result:
        """Like :meth:`stat`, but a symbolic link describes itself.

        :raises OSError: Such as :exc:`FileNotFoundError`, with ``filename`` set.
        """
        return await self.stat(follow_symlinks=False)

    async def _mode(self, follow_symlinks: bool = True) -> int | None:
        """The file's ``st_mode``, or ``None`` where pathlib's ``is_*()`` answer ``False``."""
        try:
            return (await self._statx(follow_symlinks, _STATX_TYPE)).st_mode
        except OSError as error:
            if error.errno in _ABSENT:
                return None
            raise
        except ValueError:
            # A path with a NUL byte names no file.
            return None

    async def exists(self, *, follow_symlinks: bool = True) -> bool:
        """``True`` if the path names a file (of any type).

        :param follow_symlinks: ``False`` to count a dangling symbolic link as existing.
        :raises OSError: The file's existence could not be checked (``EACCES`` on a parent).
        """
        return await self._mode(follow_symlinks) is not None

    async def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        """``True`` if the path names a directory (or a link to one).

        :param follow_symlinks: ``False`` to answer for a symbolic link itself.
        """
        mode = await self._mode(follow_symlinks)
        return mode is not None and stat.S_ISDIR(mode)

    async def is_file(self, *, follow_symlinks: bool = True) -> bool:
        """``True`` if the path names a regular file (or a link to one).

        :param follow_symlinks: ``False`` to answer for a symbolic link itself.
        """
        mode = await self._mode(follow_symlinks)
        return mode is not None and stat.S_ISREG(mode)

    async def is_symlink(self) -> bool:
        """``True`` if the path names a symbolic link."""
        mode = await self._mode(follow_symlinks=False)
        return mode is not None and stat.S_ISLNK(mode)

    async def is_fifo(self) -> bool:
        """``True`` if the path names a FIFO (or a link to one)."""
        mode = await self._mode()
        return mode is not None and stat.S_ISFIFO(mode)

    async def is_socket(self) -> bool:
        """``True`` if the path names a Unix socket (or a link to one)."""
        mode = await self._mode()
        return mode is not None and stat.S_ISSOCK(mode)

    async def is_block_device(self) -> bool:
        """``True`` if the path names a block device (or a link to one)."""
        mode = await self._mode()
        return mode is not None and stat.S_ISBLK(mode)

    async def is_char_device(self) -> bool:
        """``True`` if the path names a character device (or a link to one)."""
        mode = await self._mode()
        return mode is not None and stat.S_ISCHR(mode)

    async def is_mount(self) -> bool:
        """``True`` if the path is a mount point, as :func:`os.path.ismount` decides.

        The parent is the kernel's ``path/..`` (what ``os.path.ismount`` finds with
        ``realpath``), so no thread is needed.
        """
        try:
            own = await self._statx(False, _STATX_BASIC_STATS)
        except (OSError, ValueError):
            return False
        if stat.S_ISLNK(own.st_mode):
            return False
        try:
            parent = await (self / "..")._statx(False, _STATX_BASIC_STATS)
        except (OSError, ValueError):
            return False
        return own.st_dev != parent.st_dev or own.st_ino == parent.st_ino

    async def samefile(self, other_path: str | os.PathLike[str]) -> bool:
        """``True`` if both paths name the same file (same device and inode).

        :param other_path: The other path.
        :raises OSError: Either path cannot be stat'ed.
        """
        mine = await self.stat()
        other = other_path if isinstance(other_path, Path) else Path(other_path)
        return os.path.samestat(mine, await other.stat())

    async def owner(self) -> str:
        """The name of the file's owner (the password database, in a thread).

        :raises KeyError: The owner's id has no name.
        """
        return await anyio.to_thread.run_sync(self._path.owner)

    async def group(self) -> str:
        """The name of the file's group (the group database, in a thread).

        :raises KeyError: The group's id has no name.
        """
        return await anyio.to_thread.run_sync(self._path.group)

    async def chmod(self, mode: int, *, follow_symlinks: bool = True) -> None:
        """Change the file's permission bits (``chmod(2)`` has no io_uring op: a thread).

        :param mode: Such as ``0o644``.
        :param follow_symlinks: ``False`` to change a symbolic link itself, which Linux
            refuses with :exc:`NotImplementedError`, as :meth:`pathlib.Path.chmod` does.
        """
        await anyio.to_thread.run_sync(
            lambda: os.chmod(str(self._path), mode, follow_symlinks=follow_symlinks)
        )

    async def lchmod(self, mode: int) -> None:
        """Like :meth:`chmod` with ``follow_symlinks=False``.

        :param mode: Such as ``0o644``.
        """
        await self.chmod(mode, follow_symlinks=False)

    # -- Creating, renaming and removing -----------------------------------------------------

    async def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Create the directory (``mkdirat`` on the ring).

        :param mode: Its permissions, masked by the umask.
        :param parents: Create missing ancestors too (with the default mode).
        :param exist_ok: Do nothing if a directory is already there.
        :raises FileExistsError: Something is there and ``exist_ok`` is false, or it is not a
            directory.
        :raises FileNotFoundError: An ancestor is missing and ``parents`` is false.
        """
        name = str(self._path)
        try:
            await _run(current_ring().mkdirat(AT_FDCWD, name, mode), name)
        except FileNotFoundError:
            if not parents or self._path.parent == self._path:
                raise
            await self.parent.mkdir(parents=True, exist_ok=True)
            await self.mkdir(mode, parents=False, exist_ok=exist_ok)
        except OSError:
            if not exist_ok or not await self.is_dir():
                raise

    async def rmdir(self) -> None:
        """Remove the empty directory (``unlinkat`` with ``AT_REMOVEDIR`` on the ring).

        :raises OSError: Such as :exc:`FileNotFoundError`, :exc:`NotADirectoryError`, or
            ``ENOTEMPTY``.
        """
        name = str(self._path)
        await _run(current_ring().unlinkat(AT_FDCWD, name, remove_dir=True), name)

    async def unlink(self, missing_ok: bool = False) -> None:
        """Remove the file or symbolic link (``unlinkat`` on the ring).

        :param missing_ok: Do nothing if there is no such file.
        :raises FileNotFoundError: There is no such file and ``missing_ok`` is false.
        :raises IsADirectoryError: The path is a directory.
        """
        name = str(self._path)
        try:
            await _run(current_ring().unlinkat(AT_FDCWD, name), name)
        except FileNotFoundError:
            if not missing_ok:
                raise

    async def rename(self, target: str | os.PathLike[str]) -> Self:
        """Rename the file (``renameat`` on the ring), replacing a file at ``target``.

        :param target: The new path; relative to the working directory, not to this path.
        :returns: ``target`` as a :class:`Path`.
        :raises OSError: Such as :exc:`FileNotFoundError`, with ``filename`` and ``filename2``.
        """
        name, new = str(self._path), os.fspath(target)
        await _run(current_ring().renameat(AT_FDCWD, name, AT_FDCWD, new), name, new)
        return type(self)(new)

    async def replace(self, target: str | os.PathLike[str]) -> Self:
        """Rename the file, replacing whatever file or empty directory is at ``target``.

        On POSIX this is :meth:`rename`.

        :param target: The new path.
        :returns: ``target`` as a :class:`Path`.
        """
        return await self.rename(target)

    async def symlink_to(
        self, target: str | os.PathLike[str], target_is_directory: bool = False
    ) -> None:
        """Make this path a symbolic link to ``target`` (``symlinkat`` on the ring).

        :param target: What the link points to, stored as given.
        :param target_is_directory: Ignored on POSIX.
        :raises FileExistsError: Something is already at this path.
        """
        name, points_to = str(self._path), os.fspath(target)
        await _run(current_ring().symlinkat(points_to, AT_FDCWD, name), points_to, name)

    async def hardlink_to(self, target: str | os.PathLike[str]) -> None:
        """Make this path a hard link to ``target`` (``linkat`` on the ring).

        :param target: The existing file; a symbolic link is linked itself, as ``link(2)``.
        :raises FileExistsError: Something is already at this path.
        """
        name, existing = str(self._path), os.fspath(target)
        await _run(current_ring().linkat(AT_FDCWD, existing, AT_FDCWD, name), existing, name)

    async def touch(self, mode: int = 0o666, exist_ok: bool = True) -> None:
        """Create the file, or set its times to now if it exists.

        ``utimensat(2)`` has no io_uring op, so updating the times runs in a thread; creating
        is an ``openat`` on the ring.

        :param mode: The permissions of a new file, masked by the umask.
        :param exist_ok: ``False`` to raise if the file exists.
        :raises FileExistsError: The file exists and ``exist_ok`` is false.
        """
        name = str(self._path)
        if exist_ok:
            try:
                await anyio.to_thread.run_sync(os.utime, name)
            except OSError:
                pass
            else:
                return
        flags = FileOpenFlag.CREATE_IF_NOT_EXISTS if exist_ok else FileOpenFlag.MUST_CREATE
        ring = current_ring()
        fd = -1
        try:
            fd = (
                await _run(ring.openat(AT_FDCWD, name, FileOpenMode.WRITE_ONLY, flags, mode), name)
            ).result
        finally:
            if fd >= 0:
                await _close_fd(ring, fd)

    # -- Directory listings ------------------------------------------------------------------

    async def iterdir(self) -> AsyncIterator[Self]:
        """The directory's entries (``.`` and ``..`` left out), in no particular order.

        ``getdents`` has no io_uring op: the names are listed in one trip to a thread.

        :raises NotADirectoryError: The path is not a directory.
        """
        names = await anyio.to_thread.run_sync(os.listdir, str(self._path))
        for name in names:
            yield type(self)(self._path / name)

    def glob(self, pattern: str) -> AsyncIterator[Self]:
        """The paths under this directory matching ``pattern``, as :meth:`pathlib.Path.glob`
        finds them (in a thread, a batch of matches per trip).

        :param pattern: Such as ``"*.py"`` or ``"**/*.py"``.
        """
        return self._batches(lambda: self._path.glob(pattern))

    def rglob(self, pattern: str) -> AsyncIterator[Self]:
        """Like :meth:`glob` with ``"**/"`` before ``pattern``.

        :param pattern: Such as ``"*.py"``.
        """
        return self._batches(lambda: self._path.rglob(pattern))

    async def _batches(self, matches: Callable[[], Iterator[pathlib.Path]]) -> AsyncIterator[Self]:
        found: Iterator[pathlib.Path] | None = None

        def next_batch() -> list[pathlib.Path]:
            nonlocal found
            if found is None:
                # pathlib's glob checks its pattern when called: make that happen here too.
                found = matches()
            return list(itertools.islice(found, _GLOB_BATCH))

        while batch := await anyio.to_thread.run_sync(next_batch):
            for path in batch:
                yield type(self)(path)

    # -- Contents ----------------------------------------------------------------------------

    @overload
    def open(
        self,
        mode: _TextMode = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> _OpenFile[str]: ...

    @overload
    def open(
        self,
        mode: _BinaryMode,
        buffering: int = -1,
        encoding: None = None,
        errors: None = None,
        newline: None = None,
    ) -> _OpenFile[bytes]: ...

    @overload
    def open(
        self,
        mode: str,
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> _OpenFile[Any]: ...

    def open(
        self,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> _OpenFile[Any]:
        """Open the file with :func:`century_ring.aio.open_file` (the arguments of
        :func:`open`).

        Use ``async with path.open("rb") as f:``, or ``f = await path.open("rb")`` as with
        ``anyio.Path.open`` (then close it with ``await f.aclose()``).
        """
        return open_file(self._path, mode, buffering, encoding, errors, newline)

    async def read_bytes(self) -> bytes:
        """The file's contents, read on the ring in three passes of the loop for a file that
        does not change meanwhile: ``openat`` with a ``statx`` of the path for its size, then a
        read of the whole file with a read just past its end (which must find nothing), then
        ``close``. A file that grows, shrinks, or has no size (``/proc``, FIFOs) is read until
        a read returns nothing, as :meth:`pathlib.Path.read_bytes` reads.

        :raises FileNotFoundError: There is no such file.
        :raises IsADirectoryError: The path is a directory.
        """
        name = str(self._path)
        ring = current_ring()
        if ring.closed:
            raise RingClosedError("the ring is closed")
        uring = ring.ring
        fd = -1

        def opened(event: CompletionEvent) -> None:
            # Called before any checkpoint, so a cancelled task still closes what it opened.
            nonlocal fd
            if event.result >= 0:
                fd = event.result

        try:
            # statx by path beside the openat, to save a pass: the size is only a hint.
            open_event, size_event = await _both(
                ring,
                lambda: uring.prep_openat(AT_FDCWD, name, FileOpenMode.READ_ONLY),
                lambda: uring.prep_statx(AT_FDCWD, name, 0, _STATX_TYPE | _STATX_SIZE),
                opened,
            )
            _raise_for(open_event, name)
            extra = size_event.extra if size_event.result >= 0 else None
            # Only a hint: a statx that failed (the file renamed meanwhile) leaves no size.
            info = extra if isinstance(extra, StatxResult) else None
            if info is not None and stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
            chunks: list[bytes] = []
            offset = -1
            if info is not None and stat.S_ISREG(info.st_mode) and 0 < info.st_size < _MAX_CHUNK:
                # The whole file and the probe past its end, in one pass (at explicit offsets:
                # the two reads run side by side).
                size = info.st_size
                whole, probe = await _both(
                    ring,
                    lambda: uring.prep_read(fd, size + 1, 0),
                    lambda: uring.prep_read(fd, 1, size),
                )
                if whole.result != -errno.ESPIPE:
                    _raise_for(whole, name)
                    if whole.result == size and probe.result == 0:
                        return whole.buffer or b""
                    # It changed under us: go on from where the first read ended.
                    if whole.buffer:
                        chunks.append(whole.buffer)
                    offset = whole.result
                # else the path was replaced by a pipe after the statx: read it from its
                # position, as any file without a size.
            total = sum(len(chunk) for chunk in chunks)
            want = (
                _MIN_CHUNK if info is None else min(max(info.st_size + 1, _MIN_CHUNK), _MAX_CHUNK)
            )
            while True:
                chunk = (await _run(ring.read(fd, want, offset), name)).buffer
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if offset >= 0:
                    offset += len(chunk)
                want = min(max(total, _MIN_CHUNK), _MAX_CHUNK)
        finally:
            if fd >= 0:
                await _close_fd(ring, fd)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def read_text(
        self, encoding: str | None = None, errors: str | None = None, newline: str | None = None
    ) -> str:
        """The file's contents decoded, with ``\\r\\n`` and ``\\r`` read as ``\\n``.

        :param encoding: The codec; by default the locale's, as :func:`open`.
        :param errors: How to handle undecodable bytes; by default ``"strict"``.
        :param newline: ``None`` translates line endings to ``\\n``; ``""``, ``"\\n"``,
            ``"\\r"`` or ``"\\r\\n"`` leaves them as they are (as :func:`open`).
        :raises UnicodeDecodeError: The bytes are not valid in ``encoding``.
        """
        codec = _text_encoding(encoding)
        data = await self.read_bytes()
        _check_newline(newline)
        text = data.decode(codec, "strict" if errors is None else errors)
        if newline is None:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    async def _write(self, produce: Callable[[], memoryview]) -> None:
        """Create or truncate the file, then write what ``produce()`` gives to it."""
        name = str(self._path)
        ring = current_ring()
        fd = -1
        try:
            fd = (
                await _run(
                    ring.openat(
                        AT_FDCWD,
                        name,
                        FileOpenMode.WRITE_ONLY,
                        (FileOpenFlag.CREATE_IF_NOT_EXISTS, FileOpenFlag.TRUNCATE),
                    ),
                    name,
                )
            ).result
            # After the open, as pathlib: a bad codec or unencodable text leaves the file empty.
            await _write_all(ring, fd, produce(), name)
        finally:
            if fd >= 0:
                await _close_fd(ring, fd)

    async def write_bytes(self, data: Buffer) -> int:
        """Replace the file's contents with ``data`` (created with mode ``0o666`` minus the
        umask if missing; ``openat``, ``write`` until all is written, ``close`` on the ring).

        :param data: Any contiguous buffer.
        :returns: How many bytes were written: all of them.
        """
        view = memoryview(data).cast("B")
        await self._write(lambda: view)
        return view.nbytes

    async def write_text(
        self,
        data: str,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> int:
        """Replace the file's contents with ``data`` encoded.

        :param data: The text.
        :param encoding: The codec; by default the locale's, as :func:`open`.
        :param errors: How to handle unencodable characters; by default ``"strict"``.
        :param newline: ``None`` writes ``\\n`` as :data:`os.linesep`; ``""`` or ``"\\n"``
            writes it as is; ``"\\r"`` or ``"\\r\\n"`` writes ``\\n`` as that.
        :returns: How many characters were written (``len(data)``).
        :raises TypeError: ``data`` is not a :class:`str`.
        """
        if not isinstance(data, str):
            raise TypeError(f"data must be str, not {type(data).__name__}")
        codec = _text_encoding(encoding)

        def encode() -> memoryview:
            _check_newline(newline)
            text = data
            ending = os.linesep if newline is None else newline
            if ending not in ("", "\n"):
                text = text.replace("\n", ending)
            return memoryview(text.encode(codec, "strict" if errors is None else errors))

        await self._write(encode)
        return len(data)


os.PathLike.register(Path)
