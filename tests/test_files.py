"""Opening, reading, writing and closing files through the ring."""

from __future__ import annotations

import array
import errno
import fcntl
import mmap
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from century_ring import (
    AT_FDCWD,
    FileOpenFlag,
    FileOpenMode,
    IoUring,
    raise_for_cqe,
)
from conftest import DATA, collect, complete, succeed

_Flags = Iterable[FileOpenFlag] | FileOpenFlag | None


class Fileno:
    """Any object with a ``fileno()`` method, as the API accepts for descriptors."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


class BytesPathLike:
    """An ``os.PathLike`` whose ``__fspath__`` returns bytes."""

    def __init__(self, path: bytes) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return self.path


def ring_open(
    ring: IoUring,
    fds: list[int],
    relative_to: Any,
    path: Any,
    mode: FileOpenMode,
    flags: _Flags = None,
    permissions: int = 0o666,
) -> int:
    """Open through the ring and return the new descriptor (closed after the test)."""
    cqe = succeed(ring, ring.prep_openat(relative_to, path, mode, flags, permissions))
    assert cqe.buffer is None
    fds.append(cqe.result)
    return cqe.result


def open_error(ring: IoUring, *args: Any) -> OSError:
    """Open through the ring, expecting failure; returns what raise_for_cqe raised."""
    cqe = complete(ring, ring.prep_openat(*args))
    assert cqe.result < 0
    with pytest.raises(OSError) as info:
        raise_for_cqe(cqe)
    return info.value


def getfl(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_GETFL)


# --- prep_openat: modes and flags -----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "accmode"),
    [
        (FileOpenMode.READ_ONLY, os.O_RDONLY),
        (FileOpenMode.WRITE_ONLY, os.O_WRONLY),
        (FileOpenMode.READ_WRITE, os.O_RDWR),
    ],
)
def test_open_mode_sets_access_mode(
    ring: IoUring, fds: list[int], data_file: Path, mode: FileOpenMode, accmode: int
) -> None:
    """Each FileOpenMode opens the file with the matching O_RDONLY/O_WRONLY/O_RDWR."""
    fd = ring_open(ring, fds, None, str(data_file), mode)
    assert getfl(fd) & os.O_ACCMODE == accmode


def test_opened_fd_is_close_on_exec(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """O_CLOEXEC is always added to files the ring opens."""
    fd = ring_open(ring, fds, None, str(data_file), FileOpenMode.READ_ONLY)
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_create_if_not_exists_creates(ring: IoUring, fds: list[int], tmp_dir: Path) -> None:
    """CREATE_IF_NOT_EXISTS makes a new empty file, and reopens an existing one unchanged."""
    path = tmp_dir / "new.txt"
    fd = ring_open(
        ring, fds, None, str(path), FileOpenMode.WRITE_ONLY, {FileOpenFlag.CREATE_IF_NOT_EXISTS}
    )
    assert path.exists()
    assert os.fstat(fd).st_ino == path.stat().st_ino
    path.write_bytes(b"kept")
    ring_open(
        ring, fds, None, str(path), FileOpenMode.READ_ONLY, {FileOpenFlag.CREATE_IF_NOT_EXISTS}
    )
    assert path.read_bytes() == b"kept"


def test_must_create_refuses_existing_file(ring: IoUring, data_file: Path) -> None:
    """MUST_CREATE on an existing file fails with FileExistsError (EEXIST)."""
    flags = {FileOpenFlag.MUST_CREATE}
    err = open_error(ring, None, str(data_file), FileOpenMode.WRITE_ONLY, flags)
    assert isinstance(err, FileExistsError)
    assert err.errno == errno.EEXIST


def test_must_create_makes_new_file(ring: IoUring, fds: list[int], tmp_dir: Path) -> None:
    """MUST_CREATE on a free name creates the file."""
    path = tmp_dir / "fresh"
    ring_open(ring, fds, None, str(path), FileOpenMode.WRITE_ONLY, [FileOpenFlag.MUST_CREATE])
    assert path.is_file()


def test_missing_file_is_file_not_found(ring: IoUring, tmp_dir: Path) -> None:
    """Opening a missing file without a create flag fails with FileNotFoundError."""
    err = open_error(ring, None, str(tmp_dir / "absent"), FileOpenMode.READ_ONLY)
    assert isinstance(err, FileNotFoundError)
    assert not (tmp_dir / "absent").exists()


def test_append_writes_at_end(ring: IoUring, fds: list[int], tmp_dir: Path) -> None:
    """APPEND opens with O_APPEND: every write lands at the end of the file."""
    path = tmp_dir / "log"
    path.write_bytes(b"abc")
    fd = ring_open(ring, fds, None, str(path), FileOpenMode.WRITE_ONLY, (FileOpenFlag.APPEND,))
    assert getfl(fd) & os.O_APPEND
    assert succeed(ring, ring.prep_write(fd, b"def")).result == 3
    assert succeed(ring, ring.prep_write(fd, b"ghi")).result == 3
    assert path.read_bytes() == b"abcdefghi"


def test_direct_flag_opens_o_direct(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """DIRECT opens with O_DIRECT."""
    fd = ring_open(ring, fds, None, str(data_file), FileOpenMode.READ_ONLY, {FileOpenFlag.DIRECT})
    assert getfl(fd) & os.O_DIRECT


def test_must_be_directory(ring: IoUring, fds: list[int], tmp_dir: Path, data_file: Path) -> None:
    """MUST_BE_DIRECTORY opens a directory, and refuses a file with NotADirectoryError."""
    fd = ring_open(
        ring, fds, None, str(tmp_dir), FileOpenMode.READ_ONLY, {FileOpenFlag.MUST_BE_DIRECTORY}
    )
    assert stat.S_ISDIR(os.fstat(fd).st_mode)
    err = open_error(
        ring, None, str(data_file), FileOpenMode.READ_ONLY, {FileOpenFlag.MUST_BE_DIRECTORY}
    )
    assert isinstance(err, NotADirectoryError)


def test_path_flag_gives_location_only_fd(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """PATH gives an O_PATH descriptor, which cannot be read."""
    fd = ring_open(ring, fds, None, str(data_file), FileOpenMode.READ_ONLY, {FileOpenFlag.PATH})
    assert getfl(fd) & os.O_PATH
    cqe = complete(ring, ring.prep_read(fd, 10, 0))
    assert cqe.result == -errno.EBADF
    assert cqe.buffer is None


def test_no_access_time(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """NO_ACCESS_TIME opens with O_NOATIME (allowed: we own the file)."""
    fd = ring_open(
        ring, fds, None, str(data_file), FileOpenMode.READ_ONLY, {FileOpenFlag.NO_ACCESS_TIME}
    )
    assert getfl(fd) & os.O_NOATIME


def test_no_follow_refuses_symlink(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """NO_FOLLOW on a symbolic link fails with ELOOP; without it the link is followed."""
    link = data_file.parent / "link"
    link.symlink_to(data_file)
    err = open_error(ring, None, str(link), FileOpenMode.READ_ONLY, {FileOpenFlag.NO_FOLLOW})
    assert err.errno == errno.ELOOP
    fd = ring_open(ring, fds, None, str(link), FileOpenMode.READ_ONLY)
    assert os.fstat(fd).st_ino == data_file.stat().st_ino


def test_temporary_file_is_unnamed(ring: IoUring, fds: list[int], tmp_dir: Path) -> None:
    """TEMPORARY_FILE gives a writable file with no name in the directory."""
    before = sorted(os.listdir(tmp_dir))
    fd = ring_open(
        ring, fds, None, str(tmp_dir), FileOpenMode.READ_WRITE, {FileOpenFlag.TEMPORARY_FILE}
    )
    st = os.fstat(fd)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_nlink == 0
    assert sorted(os.listdir(tmp_dir)) == before
    assert succeed(ring, ring.prep_write(fd, b"scratch", 0)).result == 7
    assert succeed(ring, ring.prep_read(fd, 64, 0)).buffer == b"scratch"


def test_truncate_empties_file(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """TRUNCATE cuts an existing file to length zero."""
    ring_open(ring, fds, None, str(data_file), FileOpenMode.WRITE_ONLY, {FileOpenFlag.TRUNCATE})
    assert data_file.stat().st_size == 0


@pytest.mark.parametrize(
    "flags",
    [
        {FileOpenFlag.APPEND, FileOpenFlag.NO_ACCESS_TIME},
        frozenset({FileOpenFlag.APPEND, FileOpenFlag.NO_ACCESS_TIME}),
        [FileOpenFlag.APPEND, FileOpenFlag.NO_ACCESS_TIME],
        (FileOpenFlag.APPEND, FileOpenFlag.NO_ACCESS_TIME),
        [FileOpenFlag.APPEND, FileOpenFlag.NO_ACCESS_TIME, FileOpenFlag.APPEND],
    ],
    ids=["set", "frozenset", "list", "tuple", "list-with-repeat"],
)
def test_flags_accept_any_iterable(
    ring: IoUring, fds: list[int], data_file: Path, flags: _Flags
) -> None:
    """flags may be a set, list or tuple of FileOpenFlag; every flag in it is applied."""
    fd = ring_open(ring, fds, None, str(data_file), FileOpenMode.WRITE_ONLY, flags)
    assert getfl(fd) & os.O_APPEND
    assert getfl(fd) & os.O_NOATIME


def test_flags_none_and_empty_add_nothing(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """flags=None or an empty set opens with no extra flags."""
    for flags in (None, set(), []):
        fd = ring_open(ring, fds, None, str(data_file), FileOpenMode.READ_WRITE, flags)
        assert not getfl(fd) & (os.O_APPEND | os.O_NOATIME | os.O_DIRECT)
    assert data_file.read_bytes() == DATA


def test_single_flag_accepted(ring: IoUring, fds: list[int], data_file: Path) -> None:
    """A single FileOpenFlag (not in a collection) is accepted, as the stubs promise."""
    fd = ring_open(ring, fds, None, str(data_file), FileOpenMode.WRITE_ONLY, FileOpenFlag.APPEND)
    assert getfl(fd) & os.O_APPEND


# --- prep_openat: paths and relative_to -----------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "bytes", "Path", "PathLike-bytes"])
def test_path_types(ring: IoUring, fds: list[int], data_file: Path, kind: str) -> None:
    """path may be str, bytes, a pathlib.Path or any os.PathLike."""
    path: Any = {
        "str": str(data_file),
        "bytes": os.fsencode(data_file),
        "Path": data_file,
        "PathLike-bytes": BytesPathLike(os.fsencode(data_file)),
    }[kind]
    fd = ring_open(ring, fds, None, path, FileOpenMode.READ_ONLY)
    assert succeed(ring, ring.prep_read(fd, 16, 0)).buffer == DATA[:16]


def test_non_ascii_path(ring: IoUring, fds: list[int], tmp_dir: Path) -> None:
    """A non-ASCII file name round-trips through the ring."""
    path = tmp_dir / "naïve-ßé.txt"
    ring_open(
        ring, fds, None, str(path), FileOpenMode.WRITE_ONLY, {FileOpenFlag.CREATE_IF_NOT_EXISTS}
    )
    assert path.exists()


def test_relative_to_at_fdcwd(
    ring: IoUring, fds: list[int], data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AT_FDCWD (-100) resolves a relative path against the current directory."""
    assert AT_FDCWD == -100
    monkeypatch.chdir(data_file.parent)
    fd = ring_open(ring, fds, AT_FDCWD, data_file.name, FileOpenMode.READ_ONLY)
    assert os.fstat(fd).st_ino == data_file.stat().st_ino


@pytest.mark.parametrize("as_object", [False, True], ids=["int", "fileno-object"])
def test_relative_to_directory_fd(
    ring: IoUring, fds: list[int], data_file: Path, as_object: bool
) -> None:
    """A directory descriptor (int or object with fileno()) resolves a relative path."""
    dir_fd = os.open(data_file.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        rel: Any = Fileno(dir_fd) if as_object else dir_fd
        fd = ring_open(ring, fds, rel, data_file.name, FileOpenMode.READ_ONLY)
        assert os.fstat(fd).st_ino == data_file.stat().st_ino
    finally:
        os.close(dir_fd)


@pytest.mark.parametrize("relative_to", [None, -1, AT_FDCWD])
def test_absolute_path_with_any_relative_to(
    ring: IoUring, fds: list[int], data_file: Path, relative_to: int | None
) -> None:
    """An absolute path opens with relative_to None, -1 or AT_FDCWD."""
    fd = ring_open(ring, fds, relative_to, str(data_file), FileOpenMode.READ_ONLY)
    assert os.fstat(fd).st_ino == data_file.stat().st_ino


def test_absolute_path_ignores_directory_fd(
    ring: IoUring, fds: list[int], data_file: Path, tmp_dir: Path
) -> None:
    """As with openat(2), an absolute path ignores the directory descriptor."""
    other = tmp_dir / "other"
    other.mkdir()
    dir_fd = os.open(other, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = ring_open(ring, fds, dir_fd, str(data_file), FileOpenMode.READ_ONLY)
        assert os.fstat(fd).st_ino == data_file.stat().st_ino
    finally:
        os.close(dir_fd)


@pytest.mark.parametrize(
    ("umask", "permissions", "expected"),
    [
        (0o022, 0o666, 0o644),
        (0o077, 0o666, 0o600),
        (0o000, 0o640, 0o640),
        (0o022, 0o755, 0o755),
        (0o027, 0o777, 0o750),
    ],
)
def test_permissions_masked_by_umask(
    ring: IoUring,
    fds: list[int],
    tmp_dir: Path,
    umask: int,
    permissions: int,
    expected: int,
) -> None:
    """A created file gets ``permissions & ~umask``, as open(2) does."""
    path = tmp_dir / f"perm-{permissions:o}-{umask:o}"
    old = os.umask(umask)
    try:
        ring_open(
            ring,
            fds,
            None,
            str(path),
            FileOpenMode.WRITE_ONLY,
            {FileOpenFlag.MUST_CREATE},
            permissions,
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == expected


def test_default_permissions_are_0o666(ring: IoUring, fds: list[int], tmp_dir: Path) -> None:
    """Without permissions, a created file gets 0o666 less the umask."""
    path = tmp_dir / "default-perm"
    old = os.umask(0o002)
    try:
        ring_open(
            ring, fds, None, str(path), FileOpenMode.WRITE_ONLY, {FileOpenFlag.CREATE_IF_NOT_EXISTS}
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


# --- prep_read ------------------------------------------------------------------------------


def test_read_at_absolute_offset(ring: IoUring, data_fd: int) -> None:
    """A read at offset >= 0 returns exactly the bytes there and leaves the position alone."""
    os.lseek(data_fd, 7, os.SEEK_SET)
    cqe = succeed(ring, ring.prep_read(data_fd, 100, 1000))
    assert cqe.result == 100
    assert cqe.buffer == DATA[1000:1100]
    assert type(cqe.buffer) is bytes
    assert os.lseek(data_fd, 0, os.SEEK_CUR) == 7


def test_read_at_current_position_advances(ring: IoUring, data_fd: int) -> None:
    """offset=-1 (the default) reads from the file position and advances it."""
    os.lseek(data_fd, 10, os.SEEK_SET)
    assert succeed(ring, ring.prep_read(data_fd, 5)).buffer == DATA[10:15]
    assert succeed(ring, ring.prep_read(data_fd, 5, -1)).buffer == DATA[15:20]
    assert os.lseek(data_fd, 0, os.SEEK_CUR) == 20


def test_short_read_at_end_of_file(ring: IoUring, data_fd: int) -> None:
    """Reading across the end returns only what is there; at the end, zero bytes."""
    cqe = succeed(ring, ring.prep_read(data_fd, 100, len(DATA) - 10))
    assert cqe.result == 10
    assert cqe.buffer == DATA[-10:]
    cqe = succeed(ring, ring.prep_read(data_fd, 100, len(DATA)))
    assert cqe.result == 0
    assert cqe.buffer == b""


def test_read_zero_bytes(ring: IoUring, data_fd: int) -> None:
    """byte_count=0 is allowed and returns an empty buffer."""
    cqe = succeed(ring, ring.prep_read(data_fd, 0, 0))
    assert cqe.result == 0
    assert cqe.buffer == b""


def test_failed_read_has_no_buffer(ring: IoUring, data_file: Path) -> None:
    """A read that fails (here on a write-only descriptor) has result -EBADF and buffer None."""
    fd = os.open(data_file, os.O_WRONLY)
    try:
        cqe = complete(ring, ring.prep_read(fd, 10, 0))
    finally:
        os.close(fd)
    assert cqe.result == -errno.EBADF
    assert cqe.buffer is None


def test_read_large(ring: IoUring, tmp_dir: Path) -> None:
    """A 4 MiB read returns all 4 MiB, intact."""
    payload = os.urandom(4 << 20)
    path = tmp_dir / "big"
    path.write_bytes(payload)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = bytearray()
        while len(got) < len(payload):
            cqe = succeed(ring, ring.prep_read(fd, len(payload) - len(got), len(got)))
            assert cqe.result > 0
            got += cqe.buffer or b""
    finally:
        os.close(fd)
    assert got == payload


#: Reads this large fill the completion's ``bytes`` in place instead of copying into it.
IN_PLACE = 16 << 10


@pytest.fixture
def large_fd(tmp_dir: Path) -> Iterator[tuple[int, bytes]]:
    """A 1 MiB file of random bytes, open for reading, and its contents."""
    payload = os.urandom(1 << 20)
    path = tmp_dir / "large.bin"
    path.write_bytes(payload)
    fd = os.open(path, os.O_RDONLY)
    yield fd, payload
    os.close(fd)


@pytest.mark.parametrize("size", [IN_PLACE - 1, IN_PLACE, 64 << 10, 1 << 20])
def test_large_reads_return_their_bytes(
    ring: IoUring, large_fd: tuple[int, bytes], size: int
) -> None:
    """Reads on either side of the in-place size return exactly the file's bytes, as a bytes
    object that hashes like any other."""
    fd, payload = large_fd
    offset = len(payload) - size
    cqe = succeed(ring, ring.prep_read(fd, size, offset))
    assert cqe.result == size
    assert type(cqe.buffer) is bytes
    assert cqe.buffer == payload[offset:]
    assert hash(cqe.buffer) == hash(bytes(payload[offset:]))


def test_large_short_read_returns_only_what_was_read(
    ring: IoUring, large_fd: tuple[int, bytes]
) -> None:
    """A large read across the end of the file gives exactly the bytes there, and none of the
    uninitialised rest; at the end, an empty bytes."""
    fd, payload = large_fd
    cqe = succeed(ring, ring.prep_read(fd, 1 << 20, len(payload) - 100))
    assert cqe.result == 100
    assert cqe.buffer == payload[-100:]
    cqe = succeed(ring, ring.prep_read(fd, 1 << 20, len(payload)))
    assert (cqe.result, cqe.buffer) == (0, b"")


def test_large_reads_hand_out_objects_no_later_read_changes(
    ring: IoUring, large_fd: tuple[int, bytes]
) -> None:
    """Each large read's bytes is its own: reading other data afterwards, many times over (so
    that freed memory is reused), leaves the first result as it was."""
    fd, payload = large_fd
    first = succeed(ring, ring.prep_read(fd, 64 << 10, 0)).buffer
    for round_ in range(20):
        offset = (round_ % 15 + 1) * (64 << 10)
        uds = [ring.prep_read(fd, 64 << 10, offset) for _ in range(8)]
        got = collect(ring, uds)
        assert all(got[ud].buffer == payload[offset : offset + (64 << 10)] for ud in uds)
        assert len({id(got[ud].buffer) for ud in uds}) == len(uds)
    assert first == payload[: 64 << 10]


def test_failed_large_read_has_no_buffer(ring: IoUring, tmp_dir: Path) -> None:
    """A large read that fails has its errno and no buffer."""
    fd = os.open(tmp_dir / "w.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        cqe = complete(ring, ring.prep_read(fd, 1 << 20, 0))
    finally:
        os.close(fd)
    assert (cqe.result, cqe.buffer) == (-errno.EBADF, None)


def test_large_read_from_a_pipe_returns_what_arrived(ring: IoUring, pipe: tuple[int, int]) -> None:
    """A large read from a pipe completes with the little that was written."""
    read_end, write_end = pipe
    user_data = ring.prep_read(read_end, 1 << 20)
    ring.submit()
    os.write(write_end, b"a little")
    assert succeed(ring, user_data).buffer == b"a little"


def test_o_direct_set_after_a_large_read_is_queued_fails_it(
    ring: IoUring, large_fd: tuple[int, bytes]
) -> None:
    """A large read decides at prep time that the descriptor is not O_DIRECT and reads into a
    :class:`bytes`; setting O_DIRECT before it runs makes it fail with EINVAL, as documented,
    unless that bytes object happened to fall on the device's alignment (then it reads the right
    bytes). Never wrong bytes; and the next read works."""
    fd, payload = large_fd
    queued = [ring.prep_read(fd, 64 << 10, 0) for _ in range(32)]
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)
    results = {(cqe.result, cqe.buffer) for cqe in collect(ring, queued).values()}
    assert results <= {(-errno.EINVAL, None), (64 << 10, payload[: 64 << 10])}
    assert (-errno.EINVAL, None) in results
    assert succeed(ring, ring.prep_read(fd, 64 << 10, 0)).buffer == payload[: 64 << 10]


def test_read_accepts_file_object(ring: IoUring, data_file: Path) -> None:
    """fd may be any object with fileno(), such as an open Python file."""
    with open(data_file, "rb") as f:
        assert succeed(ring, ring.prep_read(f, 4, 4)).buffer == DATA[4:8]


# --- prep_write -----------------------------------------------------------------------------


def test_write_at_current_position_advances(ring: IoUring, tmp_dir: Path) -> None:
    """file_offset=-1 (the default) writes at the position and advances it."""
    path = tmp_dir / "seq"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        cqe = succeed(ring, ring.prep_write(fd, b"hello"))
        assert cqe.result == 5
        assert cqe.buffer is None
        assert succeed(ring, ring.prep_write(fd, b"world", -1)).result == 5
        assert os.lseek(fd, 0, os.SEEK_CUR) == 10
    finally:
        os.close(fd)
    assert path.read_bytes() == b"helloworld"


def test_write_at_absolute_offset(ring: IoUring, tmp_dir: Path) -> None:
    """A write at file_offset >= 0 lands there (leaving a hole) and keeps the position."""
    path = tmp_dir / "holes"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert succeed(ring, ring.prep_write(fd, b"end", 100)).result == 3
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert succeed(ring, ring.prep_write(fd, b"start", 0)).result == 5
    finally:
        os.close(fd)
    assert path.read_bytes() == b"start" + bytes(95) + b"end"


@pytest.mark.parametrize(
    ("count", "buffer_offset", "expected"),
    [
        (None, None, b"0123456789"),
        (3, None, b"012"),
        (None, 4, b"456789"),
        (3, 2, b"234"),
        (10, 0, b"0123456789"),
        (1, 9, b"9"),
        (0, None, b""),
    ],
)
def test_write_count_and_buffer_offset(
    ring: IoUring,
    tmp_dir: Path,
    count: int | None,
    buffer_offset: int | None,
    expected: bytes,
) -> None:
    """count and buffer_offset pick the slice of the buffer that is written."""
    path = tmp_dir / "slice"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        cqe = succeed(ring, ring.prep_write(fd, b"0123456789", 0, count, buffer_offset))
        assert cqe.result == len(expected)
    finally:
        os.close(fd)
    assert path.read_bytes() == expected


def test_write_count_and_buffer_offset_by_keyword(ring: IoUring, tmp_dir: Path) -> None:
    """count and buffer_offset work as keywords too."""
    path = tmp_dir / "kw"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        ud = ring.prep_write(fd, b"abcdefgh", file_offset=0, buffer_offset=5, count=2)
        assert succeed(ring, ud).result == 2
    finally:
        os.close(fd)
    assert path.read_bytes() == b"fg"


def _buffers() -> list[Any]:
    anon = mmap.mmap(-1, 8192)
    anon[:] = bytes(range(256)) * 32
    backing = bytearray(b"..memoryview-slice..")
    return [
        pytest.param(b"plain bytes", b"plain bytes", id="bytes"),
        pytest.param(bytearray(b"a bytearray"), b"a bytearray", id="bytearray"),
        pytest.param(memoryview(backing)[2:18], b"memoryview-slice", id="memoryview-slice"),
        pytest.param(memoryview(b"read-only view"), b"read-only view", id="memoryview-bytes"),
        pytest.param(
            array.array("i", [1, -2, 3, 2**31 - 1]),
            array.array("i", [1, -2, 3, 2**31 - 1]).tobytes(),
            id="array-i",
        ),
        pytest.param(anon, bytes(range(256)) * 32, id="mmap"),
    ]


@pytest.mark.parametrize(("buffer", "expected"), _buffers())
def test_write_any_buffer_protocol_object(
    ring: IoUring, tmp_dir: Path, buffer: Any, expected: bytes
) -> None:
    """Any object with the buffer protocol can be written; its raw bytes reach the file."""
    path = tmp_dir / "buf"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert succeed(ring, ring.prep_write(fd, buffer, 0)).result == len(expected)
    finally:
        os.close(fd)
    assert path.read_bytes() == expected


def test_write_mmap_slice_with_offsets(ring: IoUring, tmp_dir: Path) -> None:
    """count and buffer_offset apply to an mmap buffer as to bytes."""
    anon = mmap.mmap(-1, 4096)
    anon[:] = DATA
    path = tmp_dir / "mm"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert succeed(ring, ring.prep_write(fd, anon, 0, 100, 300)).result == 100
    finally:
        os.close(fd)
        anon.close()
    assert path.read_bytes() == DATA[300:400]


def test_write_then_read_round_trip_on_ring_opened_file(ring: IoUring, tmp_dir: Path) -> None:
    """The whole cycle through the ring: open/create, write, read back, close."""
    path = tmp_dir / "cycle"
    flags = {FileOpenFlag.CREATE_IF_NOT_EXISTS, FileOpenFlag.TRUNCATE}
    fd = succeed(ring, ring.prep_openat(None, str(path), FileOpenMode.READ_WRITE, flags)).result
    payload = os.urandom(10000)
    assert succeed(ring, ring.prep_write(fd, payload, 0)).result == len(payload)
    assert succeed(ring, ring.prep_read(fd, 20000, 0)).buffer == payload
    assert succeed(ring, ring.prep_close(fd)).result == 0
    assert path.read_bytes() == payload


def test_many_reads_at_once_match_their_offsets(ring: IoUring, data_fd: int) -> None:
    """Many reads queued together each return the bytes at their own offset."""
    uds = {ring.prep_read(data_fd, 32, off): off for off in range(0, len(DATA), 32)}
    got = collect(ring, uds)
    for ud, off in uds.items():
        assert got[ud].buffer == DATA[off : off + 32]


# --- O_DIRECT -------------------------------------------------------------------------------


def test_o_direct_read_of_real_file(ring: IoUring, fds: list[int], tmp_dir: Path) -> None:
    """Reads on a file opened with DIRECT return the right data (the ring aligns its buffers)."""
    payload = os.urandom(1 << 20)
    path = tmp_dir / "direct.bin"
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    fd = ring_open(ring, fds, None, str(path), FileOpenMode.READ_ONLY, {FileOpenFlag.DIRECT})
    assert getfl(fd) & os.O_DIRECT
    # 16 KiB and up would be read into a bytes in place, which O_DIRECT cannot use.
    sizes = [(0, 4096), (8192, 4096), (65536 * 3, 16384), (len(payload) - 4096, 4096), (0, 1 << 20)]
    for offset, size in sizes:
        cqe = succeed(ring, ring.prep_read(fd, size, offset))
        assert cqe.result == size
        assert cqe.buffer == payload[offset : offset + size]
    uds = {ring.prep_read(fd, 4096, off): off for off in range(0, len(payload), 64 * 1024)}
    got = collect(ring, uds)
    for ud, off in uds.items():
        raise_for_cqe(got[ud])
        assert got[ud].buffer == payload[off : off + 4096]


# --- prep_close -----------------------------------------------------------------------------


def test_close_closes_descriptor(ring: IoUring, data_file: Path) -> None:
    """prep_close closes the descriptor: result 0, and the fd is gone afterwards."""
    fd = os.open(data_file, os.O_RDONLY)
    cqe = succeed(ring, ring.prep_close(fd))
    assert cqe.result == 0
    assert cqe.buffer is None
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF


def test_close_accepts_fileno_object(ring: IoUring, data_file: Path) -> None:
    """prep_close takes an object with fileno() as well as an int."""
    fd = os.open(data_file, os.O_RDONLY)
    assert succeed(ring, ring.prep_close(Fileno(fd))).result == 0
    with pytest.raises(OSError):
        os.fstat(fd)


def test_close_of_unopened_fd_is_ebadf(ring: IoUring) -> None:
    """Closing a descriptor that is not open completes with -EBADF."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    cqe = complete(ring, ring.prep_close(fd))
    assert cqe.result == -errno.EBADF
