"""The misc, file, filesystem and process operations of issue 4, against the real kernel.

For every operation: its success path, observed from outside the library where it has an
effect (``os.stat``, ``os.listdir``, ``os.readlink``, file contents, a pipe's data, a reaped
child); its error path (the errno the kernel gives); and its refusal of bad arguments (the right
exception, naming the argument, with nothing queued). Operations this kernel lacks, by the
ring's own probe, are skipped.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import inspect
import mmap
import os
import re
import select
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from century_ring import (
    AT_FDCWD,
    CompletionEvent,
    FileOpenFlag,
    FileOpenMode,
    IoUring,
    ResolveFlag,
    StatxResult,
    make_io_ring,
    make_sqe_flags,
    raise_for_cqe,
)
from century_ring._century_ring import _operations
from conftest import collect, complete, drain, libc_with_mmap, succeed

SKIP_SUCCESS_MESSAGE = "Can't use 'SKIP_SUCCESS' on submissions with owned data"
BAD_NUMBER = (ValueError, OverflowError)
LINK = make_sqe_flags(io_link=True)
SKIP = make_sqe_flags(skip_success=True)
DRAIN = make_sqe_flags(io_drain=True)
BUFFER_SELECT = make_sqe_flags(buffer_select=True)

#: The operation table as the Rust core declares it, one row (a dict) per operation.
Row = dict[str, Any]
OPERATIONS: list[Row] = _operations()
METHODS = [op["method"] for op in OPERATIONS]
BY_METHOD = {op["method"]: op for op in OPERATIONS}

AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
SYNC_FILE_RANGE_WAIT_BEFORE = 1
SYNC_FILE_RANGE_WRITE = 2
SYNC_FILE_RANGE_WAIT_AFTER = 4
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2


# --------------------------------------------------------------------------------------------
# Helpers


def needs(ring: IoUring, name: str) -> None:
    """Skip the test when the kernel's probe says it lacks ``name``."""
    if not ring.probe().get(name, False):
        pytest.skip(f"{name}: not supported by this kernel (ring.probe() says False)")


def refused(
    ring: IoUring,
    exc: type[BaseException] | tuple[type[BaseException], ...],
    name: str,
    call: Callable[[], object],
) -> BaseException:
    """``call`` raises ``exc`` naming ``name``, and leaves the ring's queues as they were.
    Returns the exception.

    A no-op is queued first, so that "nothing queued" is checked against a non-empty queue.
    """
    ring.prep_nop()
    before = (ring.pending_sq_entries, ring.in_flight)
    with pytest.raises(exc, match=re.escape(name)) as info:
        call()
    assert (ring.pending_sq_entries, ring.in_flight) == before
    drain(ring)
    return info.value


def errno_of(cqe: CompletionEvent) -> int:
    """The errno a failed completion stands for, checked through ``raise_for_cqe``."""
    assert cqe.result < 0, f"expected a failure, got {cqe!r}"
    with pytest.raises(OSError) as info:
        raise_for_cqe(cqe)
    assert info.value.errno == -cqe.result
    return -cqe.result


def nothing_arrives(ring: IoUring, seconds: float = 0.2) -> list[CompletionEvent]:
    """Wait a little and return whatever completed meanwhile."""
    ring.submit_and_wait_with_timeout(seconds)
    return ring.get_completion_entries()


@pytest.fixture
def file_fd(tmp_dir: Path) -> Iterator[int]:
    """A read-write descriptor of an empty file ``tmp_dir / "f"``."""
    fd = os.open(tmp_dir / "f", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
def dir_fd(tmp_dir: Path) -> Iterator[int]:
    """A descriptor of ``tmp_dir``."""
    fd = os.open(tmp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected AF_UNIX stream socket pair."""
    a, b = socket.socketpair()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def closed_fd() -> int:
    """A descriptor number that is not open."""
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    return fd


# --------------------------------------------------------------------------------------------
# Probe and docstrings, against the operation table


def _version(text: str) -> tuple[int, ...]:
    """The major and minor numbers of a Linux version: ``"6.18.4-custom"`` -> ``(6, 18)``."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def _names(doc: str, token: str) -> bool:
    """``doc`` names ``token`` as a whole: ``read(2)`` not as part of ``pread(2)``,
    ``IORING_OP_READ`` not of ``IORING_OP_READV``, ``Linux 5.1`` not of ``Linux 5.11``."""
    return re.search(rf"(?<!\w){re.escape(token)}(?!\w|\.\d)", doc) is not None


def test_probe_knows_exactly_the_operations_of_the_table(ring: IoUring) -> None:
    """probe() answers a bool for each operation the table declares and for no other; each
    declared method exists on IoUring, once; nop is always supported."""
    probe = ring.probe()
    assert all(isinstance(v, bool) for v in probe.values())
    assert len(METHODS) == len(set(METHODS)), "two rows declare the same method"
    assert set(probe) == set(METHODS)
    not_methods = [m for m in METHODS if not callable(getattr(IoUring, m, None))]
    assert not not_methods, f"not methods of IoUring: {not_methods}"
    assert probe["prep_nop"] is True


def test_probe_supports_every_operation_this_kernel_is_new_enough_for(ring: IoUring) -> None:
    """An operation whose row says it came in a Linux version no newer than the running kernel
    is supported by probe() (so a ``since`` set too early shows on an older kernel)."""
    release = _version(os.uname().release)
    probe = ring.probe()
    unsupported = [
        f"{op['method']} (Linux {op['since']})"
        for op in OPERATIONS
        if _version(op["since"]) <= release and not probe[op["method"]]
    ]
    assert not unsupported, f"Linux {os.uname().release} lacks {unsupported}"


def test_every_operation_documents_its_opcode_syscall_and_kernel_version(ring: IoUring) -> None:
    """Each probed operation's docstring names its opcode (``IORING_OP_...``), the system call
    it mirrors (when it mirrors one) and the Linux version that added it, as its row says."""
    problems: list[str] = []
    for name in ring.probe():
        op = BY_METHOD.get(name)
        if op is None:
            problems.append(f"{name}: probed but not in the table")
            continue
        doc = getattr(IoUring, name).__doc__ or ""
        expected = [op["opcode_name"], op["mirrors"], f"Linux {op['since']}"]
        missing = [token for token in expected if token is not None and not _names(doc, token)]
        if missing:
            problems.append(f"{name}: docstring does not name {missing}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# Every operation, called plausibly
#
# The tests of the rules every operation follows (skip_success, buffer_select, the flags its
# row refuses) call each operation once, with arguments that get past argument checking. They
# are built from parameter names, so a new operation is covered without editing a list here:
# only a parameter name never seen before needs a plausible value in PLAUSIBLE.

#: How a plausible value is made, for an operation's row.
Make = Callable[["Scene", Row], object]


@dataclass
class Scene:
    """What plausible calls of any operation use, made for one test: the regular file
    ``tmp_dir / "f"`` (the directory's only entry) and the directory, a connected socket, a
    listening one, a pipe's write end and another ring. Registered buffers and files are added
    to the ring only when an operation takes them."""

    ring: IoUring
    tmp_dir: Path
    file_fd: int
    dir_fd: int
    connected: socket.socket
    listener: socket.socket
    pipe_w: int
    other: IoUring
    throwaways: list[int] = field(default_factory=list)
    registered: list[bytearray] = field(default_factory=list)
    files_registered: bool = False

    def descriptor_for(self, op: Row) -> object:
        """The descriptor the operation's docstring asks for as ``fd``: a listening socket, a
        socket, or else the regular file."""
        doc = getattr(IoUring, op["method"]).__doc__ or ""
        wanted = re.search(r":param fd: ([^\n]*)", doc)
        text = wanted.group(1) if wanted else ""
        if "listening socket" in text:
            return self.listener
        if "socket" in text:
            return self.connected
        return self.file_fd

    def buffer_for(self, op: Row) -> bytes | bytearray:
        """A buffer the kernel may write when the row says it writes the caller's buffer."""
        return bytearray(b"ab") if "writable caller buffer" in op["owns"] else b"ab"

    def throwaway_fd(self, op: Row) -> int:
        """A descriptor of the file that the operation may close (closed at the end if not)."""
        fd = os.dup(self.file_fd)
        self.throwaways.append(fd)
        return fd

    def filled_file(self, op: Row) -> int:
        """The file, with data at its position: a splice from an empty file moves 0 bytes,
        which the kernel counts as a failure (a short splice) and reports even under
        skip_success."""
        os.pwrite(self.file_fd, b"spliced!" * 2, 0)
        return self.file_fd

    def buffer_index(self, op: Row) -> int:
        """The index of a buffer registered on the ring for the call."""
        if not self.registered:
            self.registered.append(bytearray(16))
            self.ring.register_buffers(self.registered)
        return 0

    def slot(self, op: Row) -> int:
        """A slot of the ring's registered file table, holding the file."""
        if not self.files_registered:
            self.ring.register_files([self.file_fd])
            self.files_registered = True
        return 0

    def clean_up(self) -> None:
        """Cancel and reap whatever a call left in flight (one the ring should have refused, in
        a failing test), reap the messages the other ring got, close spare descriptors."""
        self.ring.prep_cancel()
        fence(self.ring)
        self.other.get_completion_entries()
        file = os.fstat(self.file_fd)
        for fd in self.throwaways:
            try:
                same = os.path.samestat(os.fstat(fd), file)
            except OSError:
                continue  # the operation closed it
            if same:
                os.close(fd)


def always(value: object) -> Make:
    return lambda scene, op: value


#: A plausible value for each parameter name that some operation requires.
PLAUSIBLE: dict[str, Make] = {
    "fd": Scene.descriptor_for,
    "fd_in": lambda s, op: s.file_fd,
    "fd_out": lambda s, op: s.pipe_w,
    "relative_to": lambda s, op: s.dir_fd,
    "old_relative_to": lambda s, op: s.dir_fd,
    "new_relative_to": lambda s, op: s.dir_fd,
    "path": always("f"),
    "old_path": always("f"),
    "target": always("f"),
    "new_path": always("g"),
    "link_path": always("g"),
    "open_mode": always(FileOpenMode.READ_ONLY),
    "buffer": Scene.buffer_for,
    "buffers": always([b"ab"]),
    "buffer_index": Scene.buffer_index,
    "slot": Scene.slot,
    "byte_count": always(4),
    "byte_counts": always([4, 4]),
    "offset": always(0),
    "offset_in": always(-1),  # the file's position
    "offset_out": always(-1),  # a pipe has none
    "length": always(4),
    "advice": always(os.POSIX_FADV_NORMAL),
    "domain": always(socket.AF_UNIX),
    "type": always(socket.SOCK_STREAM),
    "address": always(("127.0.0.1", 9)),
    "port": always(9),
    "how": always(socket.SHUT_WR),
    "seconds": always(1),
    "user_data": always(12345),  # of nothing in flight
    "events": always(select.POLLIN),
    "ring": lambda s, op: s.other,
    "idtype": always(os.P_PID),
    "id": always(1),  # not this process's child
    "options": always(os.WEXITED),
}

#: What single operations need beyond values by name: accept owns the peer's address only when
#: asked for it; close needs a descriptor of its own to close; mkdirat makes ``path``, which
#: must not exist yet; connect_v4 and connect_v6 take a bare address of their family; splice
#: needs data to move.
PER_OPERATION: dict[str, dict[str, Make]] = {
    "prep_accept": {"peer_address": always(True)},
    "prep_close": {"fd": Scene.throwaway_fd},
    "prep_mkdirat": {"path": always("sub")},
    "prep_connect_v4": {"address": always("127.0.0.1")},
    "prep_connect_v6": {"address": always("::1")},
    "prep_splice": {"fd_in": Scene.filled_file},
}


def _parameters(method: str) -> list[inspect.Parameter]:
    return list(inspect.signature(getattr(IoUring, method)).parameters.values())[1:]


def plausible_call(scene: Scene, method: str) -> Callable[[int | None], int]:
    """``method`` bound to plausible arguments, taking the ``sqe_flags`` to queue it with.

    Fails the test (never skips it) when a required parameter has no plausible value."""
    op = BY_METHOD[method]
    special = PER_OPERATION.get(method, {})
    kwargs: dict[str, object] = {}
    for param in _parameters(method):
        make = special.get(param.name)
        if make is None and param.default is inspect.Parameter.empty:
            make = PLAUSIBLE.get(param.name)
            if make is None:
                pytest.fail(
                    f"{method}: no plausible value for {param.name!r}; add one to PLAUSIBLE"
                )
        if make is not None:
            kwargs[param.name] = make(scene, op)
    bound = getattr(scene.ring, method)
    return lambda sqe_flags: bound(**kwargs, sqe_flags=sqe_flags)


def skip_unless_supported(ring: IoUring, method: str, call: Callable[[int | None], int]) -> None:
    """Skip, with the library's own NotImplementedError message, when the kernel lacks
    ``method``."""
    if ring.probe()[method]:
        return
    with pytest.raises(NotImplementedError) as info:
        call(None)
    pytest.skip(str(info.value))


def fence(ring: IoUring) -> list[CompletionEvent]:
    """Wait until everything queued so far has completed, and return what was reaped.

    A drained no-op starts only after every entry before it has completed, those queued with
    skip_success (which the ring does not track) included."""
    ring.prep_nop(sqe_flags=DRAIN)
    return drain(ring)


def open_descriptors() -> set[int]:
    """This process's open descriptors (not counting the one that listed them)."""
    listed = [int(name) for name in os.listdir("/proc/self/fd")]
    return {fd for fd in listed if _is_open(fd)}


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


@pytest.fixture
def scene(
    ring: IoUring,
    tmp_dir: Path,
    file_fd: int,
    dir_fd: int,
    sockets: tuple[socket.socket, socket.socket],
    pipe: tuple[int, int],
) -> Iterator[Scene]:
    with socket.create_server(("127.0.0.1", 0)) as listener, make_io_ring(entries=8) as other:
        made = Scene(ring, tmp_dir, file_fd, dir_fd, sockets[0], listener, pipe[1], other)
        try:
            yield made
        finally:
            made.clean_up()


def test_every_parameter_an_operation_requires_has_a_plausible_value() -> None:
    """Each required parameter of each operation in the table gets a value from PLAUSIBLE (or
    its entry of PER_OPERATION), and PER_OPERATION names only real operations and parameters;
    so a new operation with a new kind of parameter fails here until it is given one."""
    problems: list[str] = []
    for method in METHODS:
        names = {p.name for p in _parameters(method)}
        special = PER_OPERATION.get(method, {})
        for param in _parameters(method):
            required = param.default is inspect.Parameter.empty
            if required and param.name not in PLAUSIBLE and param.name not in special:
                problems.append(f"{method}: no plausible value for {param.name!r}")
        problems += [f"{method}: PER_OPERATION sets unknown {n!r}" for n in set(special) - names]
    problems += [f"PER_OPERATION names unknown {m}" for m in set(PER_OPERATION) - set(METHODS)]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# skip_success


@pytest.mark.parametrize("method", METHODS)
def test_skip_success_refused_exactly_when_the_operation_owns_memory(
    scene: Scene, method: str
) -> None:
    """An operation whose row says it owns memory refuses skip_success with the documented
    message, queues nothing and leaves the files alone; one that owns nothing accepts it, and
    posts a completion only if it fails."""
    ring = scene.ring
    call = plausible_call(scene, method)
    skip_unless_supported(ring, method, call)
    if BY_METHOD[method]["owns"]:
        error = refused(ring, ValueError, SKIP_SUCCESS_MESSAGE, lambda: call(SKIP))
        assert str(error) == SKIP_SUCCESS_MESSAGE
    else:
        before = open_descriptors()
        ud = call(SKIP)
        assert isinstance(ud, int)
        posted = [c for c in fence(ring) if c.user_data == ud]
        assert all(c.result < 0 for c in posted), f"a success was posted: {posted}"
        # A descriptor it made (create_socket, fixed_fd_install) is in no completion: close it.
        for fd in open_descriptors() - before:
            os.close(fd)
    assert ring.in_flight == 0
    assert sorted(os.listdir(scene.tmp_dir)) == ["f"]


@pytest.mark.parametrize("link", ["io_link", "io_hardlink"])
@pytest.mark.parametrize("method", METHODS)
def test_skip_success_refused_on_a_linked_entry(scene: Scene, method: str, link: str) -> None:
    """skip_success with io_link or io_hardlink is refused for every operation (those that own
    nothing say why: the entries linked after a failure would post nothing)."""
    ring = scene.ring
    call = plausible_call(scene, method)
    skip_unless_supported(ring, method, call)
    flags = make_sqe_flags(skip_success=True, **{link: True})
    error = refused(ring, ValueError, "SKIP_SUCCESS", lambda: call(flags))
    if not BY_METHOD[method]["owns"]:
        assert "IO_LINK" in str(error)
    assert sorted(os.listdir(scene.tmp_dir)) == ["f"]


def test_skip_success_nop_posts_nothing(ring: IoUring) -> None:
    """A successful nop with skip_success posts no completion; a plain one after it does."""
    needs(ring, "prep_nop")
    ring.prep_nop(sqe_flags=SKIP)
    plain = ring.prep_nop()
    got = collect(ring, [plain])
    assert list(got) == [plain]
    assert nothing_arrives(ring) == []


def test_skip_success_fsync_posts_nothing(ring: IoUring, file_fd: int) -> None:
    """fsync owns nothing: skip_success is accepted and a successful fsync stays silent."""
    needs(ring, "prep_fsync")
    os.write(file_fd, b"data")
    ring.prep_fsync(file_fd, sqe_flags=SKIP)
    assert nothing_arrives(ring) == []


def test_skip_success_fsync_failure_still_completes(ring: IoUring) -> None:
    """With skip_success, an fsync that fails (on a closed descriptor) still posts its error.

    (Not on a pipe: the kernel does not flag fsync's own -EINVAL as a failure, so with
    skip_success it posts nothing and does not break a link. That is io_uring, not the ring.)
    """
    needs(ring, "prep_fsync")
    ud = ring.prep_fsync(closed_fd(), sqe_flags=SKIP)
    assert complete(ring, ud).result == -errno.EBADF


def test_skip_success_cancel_posts_only_the_cancelled(ring: IoUring, pipe: tuple[int, int]) -> None:
    """A successful cancel with skip_success is silent; the cancelled read still completes."""
    needs(ring, "prep_cancel")
    read = ring.prep_read(pipe[0], 16)
    ring.submit()
    ring.prep_cancel(read, sqe_flags=SKIP)
    got = collect(ring, [read])
    assert got[read].result == -errno.ECANCELED
    assert len(got) == 1
    assert nothing_arrives(ring) == []


def test_skip_success_poll_remove_posts_only_the_poll(ring: IoUring, pipe: tuple[int, int]) -> None:
    """poll_remove owns nothing: with skip_success only the removed poll completes."""
    needs(ring, "prep_poll_add")
    needs(ring, "prep_poll_remove")
    poll = ring.prep_poll_add(pipe[0], select.POLLIN)
    ring.submit()
    ring.prep_poll_remove(poll, sqe_flags=SKIP)
    got = collect(ring, [poll])
    assert got[poll].result == -errno.ECANCELED
    assert len(got) == 1
    assert nothing_arrives(ring) == []


def test_skip_success_timeout_remove_posts_only_the_timeout(ring: IoUring) -> None:
    """timeout_remove owns nothing: with skip_success only the removed timeout completes."""
    needs(ring, "prep_timeout")
    needs(ring, "prep_timeout_remove")
    timeout = ring.prep_timeout(30)
    ring.submit()
    ring.prep_timeout_remove(timeout, sqe_flags=SKIP)
    got = collect(ring, [timeout])
    assert got[timeout].result == -errno.ECANCELED
    assert len(got) == 1
    assert nothing_arrives(ring) == []


# --------------------------------------------------------------------------------------------
# buffer_select, and the flags an operation's row refuses

#: (method, make_sqe_flags argument) for each flag a row refuses beyond the common rules.
ROW_REFUSALS = [(op["method"], flag) for op in OPERATIONS for flag in op["refuses"]]


@pytest.mark.parametrize("method", METHODS)
def test_buffer_select_refused_without_a_buffer_group(scene: Scene, method: str) -> None:
    """Every operation refuses buffer_select in sqe_flags when it is not given a provided
    buffer group, naming the flag, and queues nothing (prep_recv with ``buffer_group=`` sets
    the flag itself: see test_buffer_rings.py)."""
    ring = scene.ring
    call = plausible_call(scene, method)
    skip_unless_supported(ring, method, call)
    error = refused(ring, ValueError, "buffer_select", lambda: call(BUFFER_SELECT))
    assert method in str(error)
    assert sorted(os.listdir(scene.tmp_dir)) == ["f"]


@pytest.mark.parametrize(("method", "flag"), ROW_REFUSALS)
def test_an_operation_refuses_the_flags_its_row_names(scene: Scene, method: str, flag: str) -> None:
    """A flag the row refuses is refused with a ValueError naming it, and nothing is queued."""
    ring = scene.ring
    call = plausible_call(scene, method)
    skip_unless_supported(ring, method, call)
    refused(ring, ValueError, flag, lambda: call(make_sqe_flags(**{flag: True})))
    assert sorted(os.listdir(scene.tmp_dir)) == ["f"]


@pytest.mark.parametrize("method", [m for m, flag in ROW_REFUSALS if flag == "io_drain"])
def test_a_ring_that_has_drained_refuses_operations_that_refuse_io_drain(
    scene: Scene, method: str
) -> None:
    """Once the ring has queued an io_drain entry, an operation whose row refuses io_drain is
    refused even without the flag, naming it, and nothing is queued."""
    ring = scene.ring
    call = plausible_call(scene, method)
    skip_unless_supported(ring, method, call)
    ring.prep_nop(sqe_flags=DRAIN)
    assert len(drain(ring)) == 1
    refused(ring, ValueError, "io_drain", lambda: call(None))
    assert sorted(os.listdir(scene.tmp_dir)) == ["f"]


def test_row_refusals_name_make_sqe_flags_arguments() -> None:
    """What a row refuses is spelled as make_sqe_flags spells its arguments."""
    arguments = set(inspect.signature(make_sqe_flags).parameters)
    assert {flag for _, flag in ROW_REFUSALS} <= arguments


# --------------------------------------------------------------------------------------------
# Linked sequences


def test_linked_write_fsync_close_in_order(ring: IoUring, tmp_dir: Path) -> None:
    """write -> fsync -> close with io_link all succeed, complete in order, and take effect."""
    needs(ring, "prep_fsync")
    path = tmp_dir / "linked"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    data = os.urandom(10_000)
    write = ring.prep_write(fd, data, 0, sqe_flags=LINK)
    fsync = ring.prep_fsync(fd, sqe_flags=LINK)
    close = ring.prep_close(fd)
    order: list[int] = []
    results: dict[int, int] = {}
    deadline = time.monotonic() + 10
    while len(order) < 3 and time.monotonic() < deadline:
        ring.submit_and_wait_with_timeout(0.5)
        for cqe in ring.get_completion_entries():
            order.append(cqe.user_data)
            results[cqe.user_data] = cqe.result
    assert order == [write, fsync, close]
    assert results == {write: len(data), fsync: 0, close: 0}
    assert path.read_bytes() == data
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF


def test_linked_failing_head_cancels_the_rest(ring: IoUring, tmp_dir: Path) -> None:
    """A write that fails (read-only fd) cancels the linked fsync and close."""
    needs(ring, "prep_fsync")
    path = tmp_dir / "ro"
    path.write_bytes(b"original")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        write = ring.prep_write(fd, b"new data", 0, sqe_flags=LINK)
        fsync = ring.prep_fsync(fd, sqe_flags=LINK)
        close = ring.prep_close(fd)
        got = collect(ring, [write, fsync, close])
        assert got[write].result == -errno.EBADF
        assert got[fsync].result == -errno.ECANCELED
        assert got[close].result == -errno.ECANCELED
        os.fstat(fd)  # the close never ran: the descriptor is still open
        assert path.read_bytes() == b"original"
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# nop


def test_nop_completes_with_zero(ring: IoUring) -> None:
    needs(ring, "prep_nop")
    uds = [ring.prep_nop() for _ in range(5)]
    assert len(set(uds)) == 5
    assert ring.pending_sq_entries == 5
    got = collect(ring, uds)
    for ud in uds:
        assert got[ud].result == 0
        assert got[ud].buffer is None
        assert got[ud].more is False
    assert ring.in_flight == 0


def test_nop_linked_after_failure_is_cancelled(ring: IoUring) -> None:
    """The nop's error path: linked after an operation that fails, it gets -ECANCELED."""
    needs(ring, "prep_nop")
    bad = ring.prep_close(closed_fd(), sqe_flags=LINK)
    nop = ring.prep_nop()
    got = collect(ring, [bad, nop])
    assert errno_of(got[bad]) == errno.EBADF
    assert errno_of(got[nop]) == errno.ECANCELED


def test_nop_refuses_bad_sqe_flags(ring: IoUring) -> None:
    needs(ring, "prep_nop")
    refused(ring, BAD_NUMBER, "sqe_flags", lambda: ring.prep_nop(sqe_flags=1 << 20))
    refused(ring, TypeError, "sqe_flags", lambda: ring.prep_nop(sqe_flags="link"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# cancel


def test_cancel_by_user_data(ring: IoUring, pipe: tuple[int, int]) -> None:
    """The cancelled read completes with -ECANCELED and consumes nothing from the pipe."""
    needs(ring, "prep_cancel")
    r, w = pipe
    read = ring.prep_read(r, 16)
    ring.submit()
    cancel = ring.prep_cancel(read)
    got = collect(ring, [read, cancel])
    assert got[cancel].result == 0
    assert errno_of(got[read]) == errno.ECANCELED
    os.write(w, b"still here")
    assert os.read(r, 100) == b"still here"


def test_cancel_by_fd_all(ring: IoUring, pipe: tuple[int, int]) -> None:
    """fd with all=True cancels every operation on that descriptor, and only those."""
    needs(ring, "prep_cancel")
    r, _ = pipe
    other_r, other_w = os.pipe()
    try:
        reads = [ring.prep_read(r, 8) for _ in range(3)]
        other = ring.prep_read(other_r, 8)
        ring.submit()
        cancel = ring.prep_cancel(fd=r, all=True)
        got = collect(ring, [*reads, cancel])
        assert got[cancel].result == 3
        for ud in reads:
            assert got[ud].result == -errno.ECANCELED
        assert other not in got
        os.write(other_w, b"hello")
        assert complete(ring, other).buffer == b"hello"
    finally:
        os.close(other_r)
        os.close(other_w)


def test_cancel_any_cancels_everything(ring: IoUring, pipe: tuple[int, int]) -> None:
    """Neither user_data nor fd: every operation in flight is cancelled."""
    needs(ring, "prep_cancel")
    needs(ring, "prep_timeout")
    r, _ = pipe
    a, b = socket.socketpair()
    try:
        ops = [ring.prep_read(r, 8), ring.prep_recv(a, 8), ring.prep_timeout(30)]
        ring.submit()
        cancel = ring.prep_cancel()
        got = collect(ring, [*ops, cancel])
        assert got[cancel].result == 3
        for ud in ops:
            assert got[ud].result == -errno.ECANCELED
        assert ring.in_flight == 0
    finally:
        a.close()
        b.close()


def test_cancel_unknown_user_data_is_enoent(ring: IoUring) -> None:
    needs(ring, "prep_cancel")
    needs(ring, "prep_nop")
    nop = ring.prep_nop()
    collect(ring, [nop])
    cancel = ring.prep_cancel(nop)
    assert errno_of(complete(ring, cancel)) == errno.ENOENT


def test_cancel_by_fd_nothing_matches_is_enoent(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_cancel")
    cancel = ring.prep_cancel(fd=pipe[0])
    assert errno_of(complete(ring, cancel)) == errno.ENOENT


def test_cancel_refuses_bad_arguments(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_cancel")
    refused(ring, ValueError, "user_data", lambda: ring.prep_cancel(1, fd=pipe[0]))
    refused(ring, BAD_NUMBER, "user_data", lambda: ring.prep_cancel(-1))
    refused(ring, TypeError, "user_data", lambda: ring.prep_cancel("1"))  # type: ignore[arg-type]
    refused(ring, TypeError, "fd", lambda: ring.prep_cancel(fd="x"))  # type: ignore[arg-type]
    refused(ring, BAD_NUMBER, "fd", lambda: ring.prep_cancel(fd=-5))


# --------------------------------------------------------------------------------------------
# timeout and timeout_remove


def test_timeout_relative_expires(ring: IoUring) -> None:
    needs(ring, "prep_timeout")
    start = time.monotonic()
    ud = ring.prep_timeout(0, 50_000_000)
    cqe = complete(ring, ud)
    elapsed = time.monotonic() - start
    assert errno_of(cqe) == errno.ETIME
    assert elapsed >= 0.04
    assert elapsed < 5


def test_timeout_float_seconds(ring: IoUring) -> None:
    needs(ring, "prep_timeout")
    start = time.monotonic()
    cqe = complete(ring, ring.prep_timeout(0.05))
    assert cqe.result == -errno.ETIME
    assert 0.04 <= time.monotonic() - start < 5


def test_timeout_absolute_on_monotonic_clock(ring: IoUring) -> None:
    """An absolute deadline from time.monotonic(): not early, and not read as a duration."""
    needs(ring, "prep_timeout")
    target = time.monotonic() + 0.1
    cqe = complete(ring, ring.prep_timeout(target, absolute=True), timeout=5)
    assert cqe.result == -errno.ETIME
    assert time.monotonic() >= target - 0.005


def test_timeout_absolute_in_the_past_fires_at_once(ring: IoUring) -> None:
    needs(ring, "prep_timeout")
    start = time.monotonic()
    cqe = complete(ring, ring.prep_timeout(time.monotonic() - 1, absolute=True), timeout=5)
    assert cqe.result == -errno.ETIME
    assert time.monotonic() - start < 2


def test_timeout_with_count_completes_after_count_completions(ring: IoUring) -> None:
    """count=2: two other completions end the timeout with result 0, long before 30 s."""
    needs(ring, "prep_nop")
    needs(ring, "prep_timeout")
    timeout = ring.prep_timeout(30, count=2)
    ring.submit()
    first = ring.prep_nop()
    got = collect(ring, [first])
    assert timeout not in got
    second = ring.prep_nop()
    got = collect(ring, [second, timeout], timeout=5)
    assert got[timeout].result == 0


def test_timeout_refuses_bad_arguments(ring: IoUring) -> None:
    needs(ring, "prep_timeout")
    refused(ring, BAD_NUMBER, "seconds", lambda: ring.prep_timeout(-1))
    refused(ring, BAD_NUMBER, "seconds", lambda: ring.prep_timeout(float("nan")))
    refused(ring, TypeError, "seconds", lambda: ring.prep_timeout("1"))  # type: ignore[arg-type]
    refused(ring, BAD_NUMBER, "nsec", lambda: ring.prep_timeout(0, -1))
    refused(ring, BAD_NUMBER, "count", lambda: ring.prep_timeout(1, count=-1))
    refused(ring, BAD_NUMBER, "count", lambda: ring.prep_timeout(1, count=2**32))


def test_timeout_remove_cancels_the_timeout(ring: IoUring) -> None:
    needs(ring, "prep_timeout")
    needs(ring, "prep_timeout_remove")
    timeout = ring.prep_timeout(30)
    ring.submit()
    remove = ring.prep_timeout_remove(timeout)
    got = collect(ring, [timeout, remove], timeout=5)
    assert got[remove].result == 0
    assert errno_of(got[timeout]) == errno.ECANCELED
    assert ring.in_flight == 0


def test_timeout_remove_unknown_is_enoent(ring: IoUring) -> None:
    needs(ring, "prep_timeout")
    needs(ring, "prep_timeout_remove")
    timeout = ring.prep_timeout(0, 1_000)
    collect(ring, [timeout])
    remove = ring.prep_timeout_remove(timeout)
    assert errno_of(complete(ring, remove)) == errno.ENOENT


def test_timeout_remove_refuses_bad_arguments(ring: IoUring) -> None:
    needs(ring, "prep_timeout_remove")
    refused(ring, BAD_NUMBER, "user_data", lambda: ring.prep_timeout_remove(-1))
    refused(ring, TypeError, "user_data", lambda: ring.prep_timeout_remove(None))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# link_timeout


def test_link_timeout_cancels_a_recv_that_gets_nothing(
    ring: IoUring, sockets: tuple[socket.socket, socket.socket]
) -> None:
    needs(ring, "prep_link_timeout")
    a, b = sockets
    recv = ring.prep_recv(a, 64, sqe_flags=LINK)
    deadline = ring.prep_link_timeout(0, 50_000_000)
    got = collect(ring, [recv, deadline], timeout=5)
    assert errno_of(got[recv]) == errno.ECANCELED
    assert errno_of(got[deadline]) == errno.ETIME
    b.sendall(b"later")  # the cancelled recv consumed nothing
    assert a.recv(64) == b"later"


def test_link_timeout_cancels_a_pipe_read(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_link_timeout")
    read = ring.prep_read(pipe[0], 64, sqe_flags=LINK)
    deadline = ring.prep_link_timeout(0.05)
    got = collect(ring, [read, deadline], timeout=5)
    assert got[read].result == -errno.ECANCELED
    assert got[deadline].result == -errno.ETIME


def test_link_timeout_loses_when_the_op_wins(
    ring: IoUring, sockets: tuple[socket.socket, socket.socket]
) -> None:
    needs(ring, "prep_link_timeout")
    a, b = sockets
    b.sendall(b"in time")
    recv = ring.prep_recv(a, 64, sqe_flags=LINK)
    deadline = ring.prep_link_timeout(10)
    got = collect(ring, [recv, deadline], timeout=5)
    assert got[recv].buffer == b"in time"
    assert errno_of(got[deadline]) == errno.ECANCELED


def test_link_timeout_refuses_bad_arguments(ring: IoUring) -> None:
    needs(ring, "prep_link_timeout")
    refused(ring, BAD_NUMBER, "seconds", lambda: ring.prep_link_timeout(-0.5))
    refused(ring, TypeError, "seconds", lambda: ring.prep_link_timeout(None))  # type: ignore[arg-type]
    refused(ring, BAD_NUMBER, "nsec", lambda: ring.prep_link_timeout(0, -5))


# --------------------------------------------------------------------------------------------
# poll_add and poll_remove


def test_poll_add_one_shot(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_poll_add")
    r, w = pipe
    poll = ring.prep_poll_add(r, select.POLLIN)
    assert nothing_arrives(ring, 0.1) == []
    os.write(w, b"x")
    cqe = complete(ring, poll)
    assert cqe.result & select.POLLIN
    assert cqe.more is False
    assert ring.in_flight == 0
    assert os.read(r, 10) == b"x"  # polling consumed nothing


def test_poll_add_pollout_on_writable_pipe(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_poll_add")
    cqe = complete(ring, ring.prep_poll_add(pipe[1], select.POLLOUT))
    assert cqe.result & select.POLLOUT


def test_poll_add_multishot_until_removed(ring: IoUring, pipe: tuple[int, int]) -> None:
    """Multishot: every readiness posts a completion with more=True, the op stays in flight,
    and the last completion (after poll_remove) has more=False."""
    needs(ring, "prep_poll_remove")
    needs(ring, "prep_poll_add")
    r, w = pipe
    poll = ring.prep_poll_add(r, select.POLLIN, multishot=True)
    ring.submit()
    for _ in range(3):
        os.write(w, b"x")
        ring.submit_and_wait_with_timeout(5)
        cqes = ring.get_completion_entries()
        assert [c.user_data for c in cqes] == [poll]
        assert cqes[0].result & select.POLLIN
        assert cqes[0].more is True
        assert cqes[0].flags & 2  # IORING_CQE_F_MORE
        assert ring.in_flight == 1
        os.read(r, 10)
    remove = ring.prep_poll_remove(poll)
    got = collect(ring, [poll, remove])
    assert got[remove].result == 0
    assert got[poll].result == -errno.ECANCELED
    assert got[poll].more is False
    assert ring.in_flight == 0


def test_poll_add_multishot_stopped_by_cancel(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_cancel")
    needs(ring, "prep_poll_add")
    poll = ring.prep_poll_add(pipe[0], select.POLLIN, multishot=True)
    ring.submit()
    cancel = ring.prep_cancel(poll)
    got = collect(ring, [poll, cancel])
    assert got[cancel].result == 0
    assert got[poll].result == -errno.ECANCELED
    assert got[poll].more is False
    assert ring.in_flight == 0


def test_poll_add_closed_fd_is_ebadf(ring: IoUring) -> None:
    needs(ring, "prep_poll_add")
    cqe = complete(ring, ring.prep_poll_add(closed_fd(), select.POLLIN))
    assert errno_of(cqe) == errno.EBADF


def test_poll_add_refuses_bad_arguments(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_poll_add")
    refused(ring, BAD_NUMBER, "events", lambda: ring.prep_poll_add(pipe[0], -1))
    refused(ring, BAD_NUMBER, "events", lambda: ring.prep_poll_add(pipe[0], 2**32))
    refused(ring, TypeError, "fd", lambda: ring.prep_poll_add("x", select.POLLIN))  # type: ignore[arg-type]
    refused(ring, BAD_NUMBER, "fd", lambda: ring.prep_poll_add(-3, select.POLLIN))


def test_poll_remove_unknown_is_enoent(ring: IoUring) -> None:
    needs(ring, "prep_poll_remove")
    assert errno_of(complete(ring, ring.prep_poll_remove(12345))) == errno.ENOENT


def test_poll_remove_refuses_bad_arguments(ring: IoUring) -> None:
    needs(ring, "prep_poll_remove")
    refused(ring, BAD_NUMBER, "user_data", lambda: ring.prep_poll_remove(-1))
    refused(ring, TypeError, "user_data", lambda: ring.prep_poll_remove(1.5))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# msg_ring


def test_msg_ring_posts_to_the_same_ring(ring: IoUring) -> None:
    needs(ring, "prep_msg_ring")
    send = ring.prep_msg_ring(ring, result=42, user_data=7)
    got = collect(ring, [send, 7])
    assert got[send].result == 0
    assert got[7].result == 42


@pytest.mark.parametrize("single_issuer", [True, False])
def test_msg_ring_wakes_a_ring_blocked_in_another_thread(
    ring: IoUring, single_issuer: bool
) -> None:
    """A thread blocked in submit_and_wait on its own ring wakes on a message from this one."""
    needs(ring, "prep_msg_ring")
    ready = threading.Event()
    target_fd: list[int] = []
    received: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            with make_io_ring(single_issuer=single_issuer) as other:
                # A safety net, so that a lost message fails the test instead of hanging it.
                other.prep_timeout(10)
                other.submit()
                target_fd.append(other.fileno())
                ready.set()
                other.submit_and_wait(1)
                received.extend((c.user_data, c.result) for c in other.get_completion_entries())
        except BaseException as e:
            errors.append(e)
            ready.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        assert ready.wait(10)
        assert errors == []
        time.sleep(0.1)  # let the thread block
        started = time.monotonic()
        send = ring.prep_msg_ring(target_fd[0], result=-5, user_data=99)
        assert complete(ring, send).result == 0
    finally:
        thread.join(15)
    assert not thread.is_alive()
    assert errors == []
    assert received[0] == (99, -5)
    assert time.monotonic() - started < 8  # woken by the message, not the 10 s safety net


def test_msg_ring_to_a_non_ring_fd_fails(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_msg_ring")
    cqe = complete(ring, ring.prep_msg_ring(pipe[0], 1, 1))
    assert errno_of(cqe) == errno.EBADFD


def test_msg_ring_refuses_bad_arguments(ring: IoUring) -> None:
    needs(ring, "prep_msg_ring")
    refused(ring, BAD_NUMBER, "user_data", lambda: ring.prep_msg_ring(ring, 0, 2**32))
    refused(ring, BAD_NUMBER, "user_data", lambda: ring.prep_msg_ring(ring, 0, -1))
    refused(ring, BAD_NUMBER, "result", lambda: ring.prep_msg_ring(ring, 2**31, 1))
    refused(ring, TypeError, "ring", lambda: ring.prep_msg_ring("ring", 0, 1))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# readv and writev


def test_readv_fills_buffers_in_order(ring: IoUring, tmp_dir: Path) -> None:
    needs(ring, "prep_readv")
    path = tmp_dir / "v"
    data = os.urandom(5000)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        cqe = succeed(ring, ring.prep_readv(fd, [3, 0, 1000, 4096], 100))
        assert cqe.result == 4900
        assert cqe.buffer == data[100:5000]
        cqe = succeed(ring, ring.prep_readv(fd, [10, 10]))  # current position
        assert cqe.buffer == data[:20]
        assert os.lseek(fd, 0, os.SEEK_CUR) == 20
    finally:
        os.close(fd)


def test_readv_error(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_readv")
    assert errno_of(complete(ring, ring.prep_readv(dir_fd, [10]))) == errno.EISDIR
    wo = os.open(tmp_dir / "wo", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC)
    try:
        assert errno_of(complete(ring, ring.prep_readv(wo, [10], 0))) == errno.EBADF
    finally:
        os.close(wo)


def test_readv_refuses_bad_arguments(ring: IoUring, file_fd: int) -> None:
    needs(ring, "prep_readv")
    refused(ring, ValueError, "byte_counts", lambda: ring.prep_readv(file_fd, []))
    refused(ring, BAD_NUMBER, "byte_counts", lambda: ring.prep_readv(file_fd, [1, -1]))
    refused(ring, BAD_NUMBER, "byte_counts", lambda: ring.prep_readv(file_fd, [2**31]))
    refused(ring, ValueError, "byte_counts", lambda: ring.prep_readv(file_fd, [2**30] * 3))
    refused(ring, ValueError, "byte_counts", lambda: ring.prep_readv(file_fd, [1] * 1025))
    refused(ring, TypeError, "byte_counts", lambda: ring.prep_readv(file_fd, 5))  # type: ignore[arg-type]
    refused(ring, BAD_NUMBER, "offset", lambda: ring.prep_readv(file_fd, [1], -2))
    refused(ring, TypeError, "fd", lambda: ring.prep_readv(None, [1]))  # type: ignore[arg-type]


def test_writev_writes_buffers_in_order(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_writev")
    bufs: list[Any] = [b"ab", bytearray(b"cde"), memoryview(b"--fgh")[2:], b""]
    cqe = succeed(ring, ring.prep_writev(file_fd, bufs, 4))
    assert cqe.result == 8
    assert (tmp_dir / "f").read_bytes() == b"\0\0\0\0abcdefgh"
    cqe = succeed(ring, ring.prep_writev(file_fd, [b"XY", b"Z"]))  # current position (0)
    assert (tmp_dir / "f").read_bytes() == b"XYZ\0abcdefgh"


def test_writev_data_is_copied_at_call_time(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_writev")
    buf = bytearray(b"before")
    ud = ring.prep_writev(file_fd, [buf], 0)
    buf[:] = b"AFTER!"
    succeed(ring, ud)
    assert (tmp_dir / "f").read_bytes() == b"before"


def test_writev_error(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_writev")
    ro = os.open(tmp_dir / "f", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert errno_of(complete(ring, ring.prep_writev(ro, [b"x"], 0))) == errno.EBADF
    finally:
        os.close(ro)
    assert (tmp_dir / "f").read_bytes() == b""


def test_writev_refuses_bad_arguments(ring: IoUring, file_fd: int) -> None:
    needs(ring, "prep_writev")
    refused(ring, ValueError, "buffers", lambda: ring.prep_writev(file_fd, []))
    refused(ring, ValueError, "buffers", lambda: ring.prep_writev(file_fd, [b"x"] * 1025))
    refused(ring, TypeError, "buffer", lambda: ring.prep_writev(file_fd, [b"x", 3]))  # type: ignore[list-item]
    refused(ring, TypeError, "buffers", lambda: ring.prep_writev(file_fd, 3))  # type: ignore[arg-type]
    refused(ring, BAD_NUMBER, "offset", lambda: ring.prep_writev(file_fd, [b"x"], -7))


# --------------------------------------------------------------------------------------------
# fsync


@pytest.mark.parametrize("data_only", [False, True])
def test_fsync_after_linked_write(
    ring: IoUring, tmp_dir: Path, file_fd: int, data_only: bool
) -> None:
    needs(ring, "prep_fsync")
    write = ring.prep_write(file_fd, b"durable", 0, sqe_flags=LINK)
    fsync = ring.prep_fsync(file_fd, data_only=data_only)
    got = collect(ring, [write, fsync])
    assert got[write].result == 7
    assert got[fsync].result == 0
    assert (tmp_dir / "f").read_bytes() == b"durable"


def test_fsync_errors(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_fsync")
    assert errno_of(complete(ring, ring.prep_fsync(pipe[1]))) == errno.EINVAL
    assert errno_of(complete(ring, ring.prep_fsync(closed_fd(), data_only=True))) == errno.EBADF


def test_fsync_refuses_bad_arguments(ring: IoUring) -> None:
    needs(ring, "prep_fsync")
    refused(ring, BAD_NUMBER, "fd", lambda: ring.prep_fsync(-1))
    refused(ring, TypeError, "fd", lambda: ring.prep_fsync("3"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# fallocate, ftruncate, fadvise, sync_file_range


def test_fallocate_extends_and_allocates(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_fallocate")
    succeed(ring, ring.prep_fallocate(file_fd, 0, 1 << 20))
    st = os.stat(tmp_dir / "f")
    assert st.st_size == 1 << 20
    assert st.st_blocks * 512 >= 1 << 20
    succeed(ring, ring.prep_fallocate(file_fd, 1 << 20, 4096, FALLOC_FL_KEEP_SIZE))
    assert os.stat(tmp_dir / "f").st_size == 1 << 20


def test_fallocate_punch_hole_zeroes(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_fallocate")
    os.write(file_fd, b"\xff" * 16384)
    mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    succeed(ring, ring.prep_fallocate(file_fd, 4096, 8192, mode))
    data = (tmp_dir / "f").read_bytes()
    assert data == b"\xff" * 4096 + b"\0" * 8192 + b"\xff" * 4096


def test_fallocate_errors(ring: IoUring, tmp_dir: Path, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_fallocate")
    assert errno_of(complete(ring, ring.prep_fallocate(pipe[1], 0, 10))) == errno.ESPIPE
    ro = os.open(tmp_dir / "f2", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC)
    try:
        assert errno_of(complete(ring, ring.prep_fallocate(ro, 0, 10))) == errno.EBADF
    finally:
        os.close(ro)


def test_fallocate_refuses_bad_arguments(ring: IoUring, file_fd: int) -> None:
    needs(ring, "prep_fallocate")
    refused(ring, BAD_NUMBER, "length", lambda: ring.prep_fallocate(file_fd, 0, 0))
    refused(ring, BAD_NUMBER, "offset", lambda: ring.prep_fallocate(file_fd, -1, 10))
    refused(ring, BAD_NUMBER, "mode", lambda: ring.prep_fallocate(file_fd, 0, 10, -1))
    assert os.fstat(file_fd).st_size == 0


def test_ftruncate_sets_size(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_ftruncate")
    os.write(file_fd, b"0123456789abcdef")
    succeed(ring, ring.prep_ftruncate(file_fd, 10))
    assert (tmp_dir / "f").read_bytes() == b"0123456789"
    succeed(ring, ring.prep_ftruncate(file_fd, 12))
    assert (tmp_dir / "f").read_bytes() == b"0123456789\0\0"


def test_ftruncate_errors(ring: IoUring, tmp_dir: Path, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_ftruncate")
    (tmp_dir / "ro").write_bytes(b"keep")
    ro = os.open(tmp_dir / "ro", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert errno_of(complete(ring, ring.prep_ftruncate(ro, 0))) in (errno.EINVAL, errno.EBADF)
    finally:
        os.close(ro)
    assert (tmp_dir / "ro").read_bytes() == b"keep"
    assert errno_of(complete(ring, ring.prep_ftruncate(closed_fd(), 0))) == errno.EBADF


def test_ftruncate_refuses_bad_arguments(ring: IoUring, file_fd: int) -> None:
    needs(ring, "prep_ftruncate")
    refused(ring, BAD_NUMBER, "length", lambda: ring.prep_ftruncate(file_fd, -1))
    refused(ring, TypeError, "length", lambda: ring.prep_ftruncate(file_fd, "1"))  # type: ignore[arg-type]


def _resident_pages(path: Path) -> tuple[int, int]:
    """(pages of ``path`` in the page cache, pages in the file), by mincore(2)."""
    libc = libc_with_mmap()
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vec = (ctypes.c_ubyte * pages)()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        try:
            if libc.mincore(addr, size, vec) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(v & 1 for v in vec), pages


def test_fadvise_dontneed_drops_cached_pages(ring: IoUring, tmp_dir: Path) -> None:
    """POSIX_FADV_DONTNEED through the ring evicts the file's clean pages (seen by mincore)."""
    needs(ring, "prep_fadvise")
    path = tmp_dir / "cached"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, os.urandom(64 * 4096))
        os.fsync(fd)
        before, pages = _resident_pages(path)
        assert before > pages // 2, "precondition: the freshly written file is cached"
        succeed(ring, ring.prep_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED))
        after, _ = _resident_pages(path)
        assert after <= pages // 4
        succeed(ring, ring.prep_fadvise(fd, 0, 4096, os.POSIX_FADV_SEQUENTIAL))
    finally:
        os.close(fd)


def test_fadvise_on_a_pipe_is_espipe(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_fadvise")
    cqe = complete(ring, ring.prep_fadvise(pipe[0], 0, 0, os.POSIX_FADV_NORMAL))
    assert errno_of(cqe) == errno.ESPIPE


def test_fadvise_refuses_bad_arguments(ring: IoUring, file_fd: int) -> None:
    needs(ring, "prep_fadvise")
    refused(ring, BAD_NUMBER, "advice", lambda: ring.prep_fadvise(file_fd, 0, 0, 6))
    refused(ring, BAD_NUMBER, "advice", lambda: ring.prep_fadvise(file_fd, 0, 0, -1))
    refused(ring, BAD_NUMBER, "offset", lambda: ring.prep_fadvise(file_fd, -1, 0, 0))
    refused(ring, BAD_NUMBER, "length", lambda: ring.prep_fadvise(file_fd, 0, -1, 0))


def test_sync_file_range_succeeds(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_sync_file_range")
    os.write(file_fd, b"z" * 8192)
    flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
    cqe = succeed(ring, ring.prep_sync_file_range(file_fd, 0, 0, flags))
    assert cqe.result == 0
    assert (tmp_dir / "f").read_bytes() == b"z" * 8192


def test_sync_file_range_on_a_pipe_is_espipe(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_sync_file_range")
    cqe = complete(ring, ring.prep_sync_file_range(pipe[1], 0, 0, SYNC_FILE_RANGE_WRITE))
    assert errno_of(cqe) == errno.ESPIPE


def test_sync_file_range_refuses_bad_arguments(ring: IoUring, file_fd: int) -> None:
    needs(ring, "prep_sync_file_range")
    refused(ring, BAD_NUMBER, "flags", lambda: ring.prep_sync_file_range(file_fd, 0, 0, 8))
    refused(ring, BAD_NUMBER, "length", lambda: ring.prep_sync_file_range(file_fd, 0, 2**32))
    refused(ring, BAD_NUMBER, "offset", lambda: ring.prep_sync_file_range(file_fd, -1, 0))


# --------------------------------------------------------------------------------------------
# splice and tee


def test_splice_file_to_pipe(ring: IoUring, tmp_dir: Path, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_splice")
    r, w = pipe
    data = os.urandom(10_000)
    (tmp_dir / "src").write_bytes(data)
    fd = os.open(tmp_dir / "src", os.O_RDONLY | os.O_CLOEXEC)
    try:
        cqe = succeed(ring, ring.prep_splice(fd, 1000, w, -1, 4000))
        assert cqe.result == 4000
        assert os.read(r, 65536) == data[1000:5000]
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # an explicit offset leaves the position
    finally:
        os.close(fd)


def test_splice_pipe_to_file(
    ring: IoUring, tmp_dir: Path, file_fd: int, pipe: tuple[int, int]
) -> None:
    needs(ring, "prep_splice")
    r, w = pipe
    os.write(w, b"through the pipe")
    cqe = succeed(ring, ring.prep_splice(r, -1, file_fd, 3, 100))
    assert cqe.result == 16
    assert (tmp_dir / "f").read_bytes() == b"\0\0\0through the pipe"


def test_splice_between_files_is_einval(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_splice")
    (tmp_dir / "src").write_bytes(b"abc")
    src = os.open(tmp_dir / "src", os.O_RDONLY | os.O_CLOEXEC)
    try:
        cqe = complete(ring, ring.prep_splice(src, 0, file_fd, 0, 3))
        assert errno_of(cqe) == errno.EINVAL
    finally:
        os.close(src)


def test_splice_refuses_bad_arguments(ring: IoUring, file_fd: int, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_splice")
    w = pipe[1]
    refused(ring, BAD_NUMBER, "offset_in", lambda: ring.prep_splice(file_fd, -2, w, -1, 1))
    refused(ring, BAD_NUMBER, "offset_out", lambda: ring.prep_splice(file_fd, 0, w, -2, 1))
    refused(ring, BAD_NUMBER, "byte_count", lambda: ring.prep_splice(file_fd, 0, w, -1, -1))
    refused(ring, BAD_NUMBER, "byte_count", lambda: ring.prep_splice(file_fd, 0, w, -1, 2**31))
    refused(ring, TypeError, "fd_in", lambda: ring.prep_splice("a", 0, w, -1, 1))  # type: ignore[arg-type]
    refused(ring, TypeError, "fd_out", lambda: ring.prep_splice(file_fd, 0, "b", -1, 1))  # type: ignore[arg-type]


def test_tee_duplicates_without_consuming(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_tee")
    r1, w1 = pipe
    r2, w2 = os.pipe()
    try:
        os.write(w1, b"teed data")
        cqe = succeed(ring, ring.prep_tee(r1, w2, 100))
        assert cqe.result == 9
        assert os.read(r2, 100) == b"teed data"
        assert os.read(r1, 100) == b"teed data"
    finally:
        os.close(r2)
        os.close(w2)


def test_tee_from_a_file_is_einval(ring: IoUring, file_fd: int, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_tee")
    cqe = complete(ring, ring.prep_tee(file_fd, pipe[1], 10))
    assert errno_of(cqe) == errno.EINVAL


def test_tee_refuses_bad_arguments(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_tee")
    r, w = pipe
    refused(ring, BAD_NUMBER, "byte_count", lambda: ring.prep_tee(r, w, 2**31))
    refused(ring, BAD_NUMBER, "flags", lambda: ring.prep_tee(r, w, 1, -1))
    refused(ring, TypeError, "fd_out", lambda: ring.prep_tee(r, None, 1))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# openat2


def _take_fd(cqe: CompletionEvent, fds: list[int]) -> int:
    raise_for_cqe(cqe)
    fds.append(cqe.result)
    return cqe.result


def test_openat2_opens_beneath(ring: IoUring, tmp_dir: Path, dir_fd: int, fds: list[int]) -> None:
    needs(ring, "prep_openat2")
    (tmp_dir / "sub").mkdir()
    (tmp_dir / "sub" / "x").write_bytes(b"inside")
    ud = ring.prep_openat2(dir_fd, "sub/x", FileOpenMode.READ_ONLY, resolve=ResolveFlag.BENEATH)
    fd = _take_fd(complete(ring, ud), fds)
    assert os.read(fd, 100) == b"inside"
    assert os.get_inheritable(fd) is False  # O_CLOEXEC


def test_openat2_creates_with_permissions(
    ring: IoUring, tmp_dir: Path, dir_fd: int, fds: list[int]
) -> None:
    needs(ring, "prep_openat2")
    ud = ring.prep_openat2(
        dir_fd, "new", FileOpenMode.WRITE_ONLY, {FileOpenFlag.MUST_CREATE}, 0o600
    )
    fd = _take_fd(complete(ring, ud), fds)
    os.write(fd, b"written")
    assert (tmp_dir / "new").read_bytes() == b"written"
    assert stat.S_IMODE(os.stat(tmp_dir / "new").st_mode) == 0o600


def test_openat2_beneath_refuses_escape(ring: IoUring, tmp_dir: Path, fds: list[int]) -> None:
    needs(ring, "prep_openat2")
    (tmp_dir / "x").write_bytes(b"outside")
    (tmp_dir / "jail").mkdir()
    jail = os.open(tmp_dir / "jail", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fds.append(jail)
    ud = ring.prep_openat2(jail, "../x", FileOpenMode.READ_ONLY, resolve=ResolveFlag.BENEATH)
    assert errno_of(complete(ring, ud)) == errno.EXDEV
    # Without the flag, the same open succeeds: the refusal came from RESOLVE_BENEATH.
    fd = _take_fd(complete(ring, ring.prep_openat2(jail, "../x", FileOpenMode.READ_ONLY)), fds)
    assert os.read(fd, 100) == b"outside"


def test_openat2_no_symlinks_refuses_a_symlink(
    ring: IoUring, tmp_dir: Path, dir_fd: int, fds: list[int]
) -> None:
    needs(ring, "prep_openat2")
    (tmp_dir / "real").write_bytes(b"real")
    os.symlink("real", tmp_dir / "link")
    ud = ring.prep_openat2(dir_fd, "link", FileOpenMode.READ_ONLY, resolve=ResolveFlag.NO_SYMLINKS)
    assert errno_of(complete(ring, ud)) == errno.ELOOP
    fd = _take_fd(complete(ring, ring.prep_openat2(dir_fd, "link", FileOpenMode.READ_ONLY)), fds)
    assert os.read(fd, 100) == b"real"


def test_openat2_missing_is_enoent(ring: IoUring, dir_fd: int) -> None:
    needs(ring, "prep_openat2")
    cqe = complete(ring, ring.prep_openat2(dir_fd, "nope", FileOpenMode.READ_ONLY))
    with pytest.raises(FileNotFoundError):
        raise_for_cqe(cqe)


def test_openat2_refuses_bad_arguments(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_openat2")
    ro = FileOpenMode.READ_ONLY
    refused(ring, BAD_NUMBER, "resolve", lambda: ring.prep_openat2(dir_fd, "x", ro, resolve=0x40))
    refused(ring, BAD_NUMBER, "resolve", lambda: ring.prep_openat2(dir_fd, "x", ro, resolve=-1))
    refused(ring, ValueError, "path", lambda: ring.prep_openat2(dir_fd, "a\0b", ro))
    refused(ring, ValueError, "path", lambda: ring.prep_openat2(None, "relative", ro))
    refused(ring, BAD_NUMBER, "open_mode", lambda: ring.prep_openat2(dir_fd, "x", 3))  # type: ignore[arg-type]
    refused(
        ring,
        ValueError,
        "flags",
        lambda: ring.prep_openat2(
            dir_fd, "x", ro, [FileOpenFlag.TEMPORARY_FILE, FileOpenFlag.CREATE_IF_NOT_EXISTS]
        ),
    )
    refused(
        ring, BAD_NUMBER, "permissions", lambda: ring.prep_openat2(dir_fd, "x", ro, None, 0o10000)
    )
    assert os.listdir(tmp_dir) == []


# --------------------------------------------------------------------------------------------
# statx


def _same_as_os_stat(got: object, expected: os.stat_result) -> None:
    assert isinstance(got, StatxResult)
    assert got.st_mode == expected.st_mode
    assert got.st_ino == expected.st_ino
    assert got.st_dev == expected.st_dev
    assert got.st_size == expected.st_size
    assert got.st_nlink == expected.st_nlink
    assert got.st_uid == expected.st_uid
    assert got.st_gid == expected.st_gid
    assert got.st_mtime_ns == expected.st_mtime_ns
    assert got.st_ctime_ns == expected.st_ctime_ns
    assert got.st_blocks == expected.st_blocks
    assert got.st_mtime == pytest.approx(expected.st_mtime, abs=1e-6)


def test_statx_matches_os_stat(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_statx")
    path = tmp_dir / "s"
    path.write_bytes(os.urandom(12345))
    os.link(path, tmp_dir / "s2")
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
    cqe = succeed(ring, ring.prep_statx(dir_fd, "s"))
    assert cqe.result == 0
    _same_as_os_stat(cqe.extra, os.stat(path))
    assert cqe.extra.st_mtime_ns == 1_700_000_000_987_654_321  # type: ignore[union-attr]
    assert cqe.extra.st_nlink == 2  # type: ignore[union-attr]
    cqe = succeed(ring, ring.prep_statx(None, str(tmp_dir)))
    _same_as_os_stat(cqe.extra, os.stat(tmp_dir))
    assert stat.S_ISDIR(cqe.extra.st_mode)  # type: ignore[union-attr]


def test_statx_symlink_nofollow(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_statx")
    (tmp_dir / "t").write_bytes(b"target")
    os.symlink("t", tmp_dir / "l")
    cqe = succeed(ring, ring.prep_statx(dir_fd, "l", AT_SYMLINK_NOFOLLOW))
    _same_as_os_stat(cqe.extra, os.lstat(tmp_dir / "l"))
    assert stat.S_ISLNK(cqe.extra.st_mode)  # type: ignore[union-attr]


def test_statx_empty_path_on_an_fd(ring: IoUring, tmp_dir: Path, file_fd: int) -> None:
    needs(ring, "prep_statx")
    os.write(file_fd, b"x" * 777)
    cqe = succeed(ring, ring.prep_statx(file_fd, "", AT_EMPTY_PATH))
    _same_as_os_stat(cqe.extra, os.fstat(file_fd))
    assert cqe.extra.st_size == 777  # type: ignore[union-attr]


def test_statx_missing_is_enoent(ring: IoUring, dir_fd: int) -> None:
    needs(ring, "prep_statx")
    cqe = complete(ring, ring.prep_statx(dir_fd, "missing"))
    assert errno_of(cqe) == errno.ENOENT
    assert cqe.extra is None


def test_statx_refuses_bad_arguments(ring: IoUring, dir_fd: int) -> None:
    needs(ring, "prep_statx")
    refused(ring, ValueError, "path", lambda: ring.prep_statx(dir_fd, "a\0b"))
    refused(ring, ValueError, "path", lambda: ring.prep_statx(None, "relative"))
    refused(ring, TypeError, "path", lambda: ring.prep_statx(dir_fd, 42))  # type: ignore[arg-type]
    refused(ring, BAD_NUMBER, "mask", lambda: ring.prep_statx(dir_fd, "x", 0, -1))
    refused(ring, BAD_NUMBER, "flags", lambda: ring.prep_statx(dir_fd, "x", -1))
    refused(ring, TypeError, "relative_to", lambda: ring.prep_statx("d", "x", AT_EMPTY_PATH))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# unlinkat, renameat, mkdirat, symlinkat, linkat


def test_unlinkat_removes_a_file_and_a_directory(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_unlinkat")
    (tmp_dir / "file").write_bytes(b"")
    (tmp_dir / "dir").mkdir()
    (tmp_dir / "keep").write_bytes(b"")
    succeed(ring, ring.prep_unlinkat(dir_fd, "file"))
    assert sorted(os.listdir(tmp_dir)) == ["dir", "keep"]
    succeed(ring, ring.prep_unlinkat(AT_FDCWD, str(tmp_dir / "dir"), remove_dir=True))
    assert os.listdir(tmp_dir) == ["keep"]
    succeed(ring, ring.prep_unlinkat(None, (tmp_dir / "keep")))
    assert os.listdir(tmp_dir) == []


def test_unlinkat_errors(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_unlinkat")
    (tmp_dir / "dir").mkdir()
    (tmp_dir / "full").mkdir()
    (tmp_dir / "full" / "x").write_bytes(b"")
    (tmp_dir / "file").write_bytes(b"")
    assert errno_of(complete(ring, ring.prep_unlinkat(dir_fd, "missing"))) == errno.ENOENT
    assert errno_of(complete(ring, ring.prep_unlinkat(dir_fd, "dir"))) == errno.EISDIR
    full = ring.prep_unlinkat(dir_fd, "full", remove_dir=True)
    assert errno_of(complete(ring, full)) == errno.ENOTEMPTY
    notdir = ring.prep_unlinkat(dir_fd, "file", remove_dir=True)
    assert errno_of(complete(ring, notdir)) == errno.ENOTDIR
    assert sorted(os.listdir(tmp_dir)) == ["dir", "file", "full"]


def test_unlinkat_refuses_bad_arguments(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_unlinkat")
    (tmp_dir / "x").write_bytes(b"")
    refused(ring, ValueError, "path", lambda: ring.prep_unlinkat(dir_fd, "x\0"))
    refused(ring, ValueError, "path", lambda: ring.prep_unlinkat(None, "x"))
    refused(ring, TypeError, "relative_to", lambda: ring.prep_unlinkat("dir", "x"))  # type: ignore[arg-type]
    assert os.listdir(tmp_dir) == ["x"]


def test_renameat_moves_a_file(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_renameat")
    (tmp_dir / "old").write_bytes(b"contents")
    (tmp_dir / "sub").mkdir()
    succeed(ring, ring.prep_renameat(dir_fd, "old", AT_FDCWD, str(tmp_dir / "sub" / "new")))
    assert os.listdir(tmp_dir) == ["sub"]
    assert (tmp_dir / "sub" / "new").read_bytes() == b"contents"


def test_renameat_noreplace_is_eexist(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_renameat")
    (tmp_dir / "a").write_bytes(b"a")
    (tmp_dir / "b").write_bytes(b"b")
    ud = ring.prep_renameat(dir_fd, "a", dir_fd, "b", RENAME_NOREPLACE)
    with pytest.raises(FileExistsError):
        raise_for_cqe(complete(ring, ud))
    assert (tmp_dir / "a").read_bytes() == b"a"
    assert (tmp_dir / "b").read_bytes() == b"b"
    # The same rename without the flag replaces b.
    succeed(ring, ring.prep_renameat(dir_fd, "a", dir_fd, "b"))
    assert os.listdir(tmp_dir) == ["b"]
    assert (tmp_dir / "b").read_bytes() == b"a"


def test_renameat_missing_is_enoent(ring: IoUring, dir_fd: int) -> None:
    needs(ring, "prep_renameat")
    cqe = complete(ring, ring.prep_renameat(dir_fd, "nope", dir_fd, "other"))
    assert errno_of(cqe) == errno.ENOENT


def test_renameat_refuses_bad_arguments(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_renameat")
    (tmp_dir / "a").write_bytes(b"")
    refused(ring, BAD_NUMBER, "flags", lambda: ring.prep_renameat(dir_fd, "a", dir_fd, "b", 8))
    refused(ring, ValueError, "old_path", lambda: ring.prep_renameat(dir_fd, "a\0", dir_fd, "b"))
    refused(ring, ValueError, "new_path", lambda: ring.prep_renameat(dir_fd, "a", dir_fd, "\0"))
    refused(ring, ValueError, "new_path", lambda: ring.prep_renameat(dir_fd, "a", None, "b"))
    refused(
        ring,
        TypeError,
        "old_relative_to",
        lambda: ring.prep_renameat("d", "a", dir_fd, "b"),  # type: ignore[arg-type]
    )
    assert os.listdir(tmp_dir) == ["a"]


def test_mkdirat_creates_a_directory(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_mkdirat")
    old = os.umask(0o022)
    try:
        succeed(ring, ring.prep_mkdirat(dir_fd, "d", 0o775))
        succeed(ring, ring.prep_mkdirat(AT_FDCWD, str(tmp_dir / "e")))
    finally:
        os.umask(old)
    st = os.stat(tmp_dir / "d")
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755  # masked by the umask
    assert stat.S_IMODE(os.stat(tmp_dir / "e").st_mode) == 0o755
    assert sorted(os.listdir(tmp_dir)) == ["d", "e"]


def test_mkdirat_existing_is_eexist(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_mkdirat")
    (tmp_dir / "d").mkdir()
    assert errno_of(complete(ring, ring.prep_mkdirat(dir_fd, "d"))) == errno.EEXIST
    assert errno_of(complete(ring, ring.prep_mkdirat(dir_fd, "no/such"))) == errno.ENOENT


def test_mkdirat_refuses_bad_arguments(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_mkdirat")
    refused(ring, BAD_NUMBER, "permissions", lambda: ring.prep_mkdirat(dir_fd, "d", 0o10000))
    refused(ring, BAD_NUMBER, "permissions", lambda: ring.prep_mkdirat(dir_fd, "d", -1))
    refused(ring, ValueError, "path", lambda: ring.prep_mkdirat(dir_fd, "d\0"))
    refused(ring, ValueError, "path", lambda: ring.prep_mkdirat(None, "d"))
    assert os.listdir(tmp_dir) == []


def test_symlinkat_creates_a_link(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_symlinkat")
    succeed(ring, ring.prep_symlinkat("does/not/exist", dir_fd, "dangling"))
    assert os.readlink(tmp_dir / "dangling") == "does/not/exist"
    (tmp_dir / "t").write_bytes(b"pointed at")
    succeed(ring, ring.prep_symlinkat(b"t", AT_FDCWD, str(tmp_dir / "l")))
    assert os.readlink(tmp_dir / "l") == "t"
    assert (tmp_dir / "l").read_bytes() == b"pointed at"


def test_symlinkat_existing_is_eexist(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_symlinkat")
    (tmp_dir / "l").write_bytes(b"a file")
    assert errno_of(complete(ring, ring.prep_symlinkat("x", dir_fd, "l"))) == errno.EEXIST
    assert (tmp_dir / "l").read_bytes() == b"a file"


def test_symlinkat_refuses_bad_arguments(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_symlinkat")
    refused(ring, ValueError, "target", lambda: ring.prep_symlinkat("t\0", dir_fd, "l"))
    refused(ring, TypeError, "target", lambda: ring.prep_symlinkat(3, dir_fd, "l"))  # type: ignore[arg-type]
    refused(ring, ValueError, "link_path", lambda: ring.prep_symlinkat("t", dir_fd, "l\0"))
    refused(ring, ValueError, "link_path", lambda: ring.prep_symlinkat("t", None, "l"))
    assert os.listdir(tmp_dir) == []


def test_linkat_creates_a_hard_link(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_linkat")
    (tmp_dir / "orig").write_bytes(b"shared")
    succeed(ring, ring.prep_linkat(dir_fd, "orig", AT_FDCWD, str(tmp_dir / "hard")))
    a, b = os.stat(tmp_dir / "orig"), os.stat(tmp_dir / "hard")
    assert a.st_ino == b.st_ino
    assert a.st_nlink == 2
    assert (tmp_dir / "hard").read_bytes() == b"shared"


def test_linkat_errors(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_linkat")
    (tmp_dir / "a").write_bytes(b"")
    (tmp_dir / "b").write_bytes(b"")
    assert errno_of(complete(ring, ring.prep_linkat(dir_fd, "zz", dir_fd, "y"))) == errno.ENOENT
    assert errno_of(complete(ring, ring.prep_linkat(dir_fd, "a", dir_fd, "b"))) == errno.EEXIST
    assert os.stat(tmp_dir / "a").st_nlink == 1


def test_linkat_refuses_bad_arguments(ring: IoUring, tmp_dir: Path, dir_fd: int) -> None:
    needs(ring, "prep_linkat")
    (tmp_dir / "a").write_bytes(b"")
    refused(ring, BAD_NUMBER, "flags", lambda: ring.prep_linkat(dir_fd, "a", dir_fd, "b", 0x2000))
    refused(ring, ValueError, "old_path", lambda: ring.prep_linkat(dir_fd, "\0", dir_fd, "b"))
    refused(ring, ValueError, "new_path", lambda: ring.prep_linkat(dir_fd, "a", None, "b"))
    assert os.listdir(tmp_dir) == ["a"]


# --------------------------------------------------------------------------------------------
# waitid


def _fork_child(code: int, pipe: tuple[int, int] | None = None) -> int:
    """Fork a child that exits with ``code``; with ``pipe``, once its write end is closed."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if pipe is not None:
                os.close(pipe[1])
                os.read(pipe[0], 1)
        finally:
            os._exit(code)
    return pid


def _reap_quietly(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def test_waitid_reaps_an_exited_child(ring: IoUring) -> None:
    needs(ring, "prep_waitid")
    pid = _fork_child(7)
    try:
        cqe = complete(ring, ring.prep_waitid(os.P_PID, pid, os.WEXITED))
    except BaseException:
        _reap_quietly(pid)
        raise
    raise_for_cqe(cqe)
    assert cqe.result == 0
    info = cqe.extra
    assert isinstance(info, os.waitid_result)
    assert info.si_pid == pid
    assert info.si_status == 7
    assert info.si_code == os.CLD_EXITED
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped


def test_waitid_wnohang_without_change_gives_none(ring: IoUring, pipe: tuple[int, int]) -> None:
    needs(ring, "prep_waitid")
    _, w = pipe
    pid = _fork_child(3, pipe)
    try:
        cqe = succeed(ring, ring.prep_waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG))
        assert cqe.result == 0
        assert cqe.extra is None
        os.close(w)  # the child's read returns: it exits
        cqe = succeed(ring, ring.prep_waitid(os.P_PID, pid, os.WEXITED))
        assert cqe.extra.si_status == 3  # type: ignore[union-attr]
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        _reap_quietly(pid)


def test_waitid_wnowait_leaves_the_child_waitable(ring: IoUring) -> None:
    needs(ring, "prep_waitid")
    pid = _fork_child(9)
    try:
        cqe = succeed(ring, ring.prep_waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT))
        assert cqe.extra.si_status == 9  # type: ignore[union-attr]
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9


def test_waitid_without_such_child_is_echild(ring: IoUring) -> None:
    needs(ring, "prep_waitid")
    cqe = complete(ring, ring.prep_waitid(os.P_PID, 1, os.WEXITED))
    with pytest.raises(ChildProcessError):
        raise_for_cqe(cqe)
    assert cqe.extra is None


def test_waitid_refuses_bad_arguments(ring: IoUring) -> None:
    needs(ring, "prep_waitid")
    refused(ring, BAD_NUMBER, "idtype", lambda: ring.prep_waitid(9, 0, os.WEXITED))
    refused(ring, BAD_NUMBER, "id", lambda: ring.prep_waitid(os.P_PID, -1, os.WEXITED))
    refused(ring, BAD_NUMBER, "options", lambda: ring.prep_waitid(os.P_PID, 1, 0))
    refused(ring, TypeError, "options", lambda: ring.prep_waitid(os.P_PID, 1, "x"))  # type: ignore[arg-type]
