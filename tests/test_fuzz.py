"""Property-based fuzzing (hypothesis) of every ``prep_*`` method, ``make_io_ring`` and
``make_sqe_flags``.

The property, for any arguments however wrong: a ``prep_*`` call either returns a ``user_data``
whose final completion then arrives (an operation that would wait forever is cancelled first,
and its cancelled completion must still arrive), or raises a Python exception of the kinds
API.md allows and queues nothing. No crash, no hang, no completion for an operation that was
never queued.

The methods are enumerated from the class, so a new ``prep_*`` method is fuzzed without
touching this file: its parameters get strategies by name (``fd``, ``path``, ``buffer``, ...)
and unknown names a generic hostile one.

Every target is harmless by construction: descriptors are the test's own (files in a fresh
temporary directory, pipes, socket pairs, loopback sockets, another ring), never a small
integer that could be the test runner's stdin or stdout; paths are names inside the temporary
directory, which is also the working directory while an example runs, so ``AT_FDCWD`` and
symlink targets cannot leave it; network addresses are loopback only.

Profiles: the normal run is bounded (``CENTURY_RING_FUZZ`` unset); ``CENTURY_RING_FUZZ=long``
runs thousands of examples per method, and ``CENTURY_RING_FUZZ_EXAMPLES=N`` sets the count
per test directly.
"""

from __future__ import annotations

import array
import errno
import inspect
import ipaddress
import mmap
import os
import select
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    make_io_ring,
    make_sqe_flags,
)
from century_ring._century_ring import _operations
from conftest import DATA, SCRATCH_ROOT

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# --- profiles -------------------------------------------------------------------------------

_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    "database": None,
    "print_blob": True,
}
settings.register_profile("century-ring-fuzz", max_examples=50, **_COMMON)
settings.register_profile("century-ring-fuzz-long", max_examples=1000, **_COMMON)


def _settings(scale: int = 1) -> settings:
    """The profile for this run; ``scale`` multiplies the example count for cheap tests."""
    mode = os.environ.get("CENTURY_RING_FUZZ", "")
    base = settings.get_profile("century-ring-fuzz-long" if mode == "long" else "century-ring-fuzz")
    explicit = os.environ.get("CENTURY_RING_FUZZ_EXAMPLES")
    count = int(explicit) if explicit else base.max_examples * scale
    return settings(base, max_examples=count)


# --- what is fuzzed -------------------------------------------------------------------------

PREP_METHODS = sorted(name for name in dir(IoUring) if name.startswith("prep_"))

#: The operation table as the Rust core declares it, by method.
OPERATIONS: dict[str, dict[str, Any]] = {op["method"]: op for op in _operations()}

SEED_METHODS = {
    "prep_openat",
    "prep_read",
    "prep_write",
    "prep_create_socket",
    "prep_connect_v4",
    "prep_connect_v6",
    "prep_send",
    "prep_recv",
    "prep_close",
}

#: Operations whose successful result is a new descriptor, which the test closes.
RETURNS_FD = {"prep_openat", "prep_openat2", "prep_accept", "prep_create_socket"}

#: Operations whose successful completion reports new descriptors as its ``extra`` (unless they
#: went into registered slots), which the test closes.
EXTRA_FDS = {"prep_pipe"}

#: Exceptions a bad argument may raise (API.md), plus MemoryError for a refused allocation.
ALLOWED = (
    ValueError,
    TypeError,
    OverflowError,
    OSError,
    NotImplementedError,
    BufferError,
    MemoryError,
)

SKIP_SUCCESS = make_sqe_flags(skip_success=True)
IO_DRAIN = make_sqe_flags(io_drain=True)
BUFFER_SELECT = make_sqe_flags(buffer_select=True)
LINKED = make_sqe_flags(io_link=True) | make_sqe_flags(io_hardlink=True)

#: Kinds of memory an operation owns only when asked to (accept's peer address, with
#: ``peer_address=True``): an operation that owns nothing else may take skip_success.
OWNED_ON_REQUEST = {"peer address"}


def refusal_of(method: str, bits: int) -> str | None:
    """Why ``method`` must refuse ``sqe_flags`` bits whatever its other arguments, by the rules
    every operation follows and what its row says it owns and refuses; None if it need not."""
    op = OPERATIONS[method]
    if bits & BUFFER_SELECT and "buffer group" not in op["owns"]:
        return "it selects from no buffer group, so buffer_select is refused"
    if bits & SKIP_SUCCESS and set(op["owns"]) - OWNED_ON_REQUEST:
        return f"it owns {op['owns']}, so skip_success is refused"
    if bits & SKIP_SUCCESS and bits & LINKED:
        return "skip_success is refused on a linked entry"
    refused = [flag for flag in op["refuses"] if bits & make_sqe_flags(**{flag: True})]
    return f"its row refuses {refused}" if refused else None


def test_enumeration_covers_every_prep_method() -> None:
    """The fuzzed list is the class's prep_* methods: not empty, every seed method in it, and
    exactly the operations the table declares and probe() reports (so a new operation is
    fuzzed automatically)."""
    assert PREP_METHODS, "no prep_* method found on IoUring"
    assert set(PREP_METHODS) >= SEED_METHODS
    assert set(PREP_METHODS) == set(OPERATIONS)
    with make_io_ring() as ring:
        assert set(ring.probe()) == set(PREP_METHODS)
    for name in PREP_METHODS:
        inspect.signature(getattr(IoUring, name))  # every method has a usable signature


# --- symbolic values, made concrete inside each example ------------------------------------


@dataclass(frozen=True)
class Sym:
    """A value that only exists inside an example: a descriptor of some kind, or a path."""

    kind: str
    arg: str = ""


FD_KINDS = [
    "file",  # a read-write regular file holding DATA
    "file_ro",
    "dir",  # the example's directory
    "pipe_r",  # holds a few bytes
    "pipe_r_empty",
    "pipe_w",
    "sock_a",  # AF_UNIX stream pair; sock_a has bytes waiting
    "sock_b",
    "dgram",  # AF_UNIX datagram pair
    "udp",  # 127.0.0.1, bound
    "tcp_listen",  # 127.0.0.1, listening, nobody connecting
    "tcp_fresh",  # unconnected AF_INET stream socket
    "eventfd",
    "other_ring",  # another IoUring's descriptor
    "closed",  # a descriptor number closed just before the call
    "fileno_obj",  # an object with fileno() returning a pipe
    "bad_fileno_obj",  # an object whose fileno() returns junk
]

#: Descriptor-like values that are never one of this process's descriptors.
HOSTILE_FD_INTS = [-1, -2, -100, -(2**31), 2**31 - 1, 2**31, 2**32, 2**63, 2**64, -(2**70), 10**6]

NAMES = ["a", "b", "ab", "file", "dir", "sym", "dir/a", "dir/file"]


def junk() -> st.SearchStrategy[Any]:
    """Values of the wrong type (never an int, so never a real descriptor)."""
    return st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=4),
        st.binary(max_size=4),
        st.lists(st.integers(-3, 3), max_size=2),
        st.just(object()),
        st.just({"a": 1}),
        st.complex_numbers(max_magnitude=10),
    )


def big_ints() -> st.SearchStrategy[int]:
    """Integers far outside any argument's range, negative and positive."""
    return st.one_of(
        st.sampled_from([-1, -2, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64]),
        st.integers(min_value=-(2**80), max_value=-1),
        st.integers(min_value=2**31, max_value=2**80),
    )


def hostile_ints() -> st.SearchStrategy[Any]:
    return st.one_of(big_ints(), junk())


def fd_syms(dir_like: bool = False) -> st.SearchStrategy[Any]:
    kinds = [k for k in FD_KINDS if k not in ("closed", "bad_fileno_obj")]
    if dir_like:
        # AT_FDCWD is the example's directory; None needs an absolute path.
        return st.one_of(
            st.sampled_from([Sym("dir"), AT_FDCWD, None]), st.sampled_from([Sym(k) for k in kinds])
        )
    return st.sampled_from([Sym(k) for k in kinds])


def hostile_fds() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([Sym("closed"), Sym("bad_fileno_obj")]),
        st.sampled_from(HOSTILE_FD_INTS),
        junk().filter(lambda v: v is not None),
    )


def path_syms() -> st.SearchStrategy[Any]:
    """Names inside the example's directory, relative or absolute, as str, bytes or PathLike."""
    name = st.sampled_from(NAMES)
    forms = st.sampled_from(["rel", "abs", "bytes", "pathlike", "abs_bytes"])
    return st.builds(lambda n, f: Sym("path", f"{f}:{n}"), name, forms)


def hostile_paths() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(["a\0b", b"\0", b"a\0", "", b"", "x" * 300, "y" * 5000, "\udcff"]),
        junk(),
        big_ints(),
    )


def buffer_syms(writable: bool = False) -> st.SearchStrategy[Any]:
    """Buffer-protocol objects of every kind and size, drawn as names (``Sym("buf", ...)``)
    and made inside the example, so hypothesis never holds (or hashes) a mutable buffer."""
    data = st.binary(max_size=64)
    made = ["bytearray", "view", "view_slice", "array", "mmap"]
    made += ["empty_bytearray", "mib_bytearray", "4mib_view"]
    if not writable:
        made += ["bytes", "empty_bytes", "2mib_bytes", "readonly_view"]
    syms = st.builds(lambda kind, b: Sym("buf", f"{kind}:{b.hex()}"), st.sampled_from(made), data)
    return syms if writable else st.one_of(syms, data)


def hostile_buffers() -> st.SearchStrategy[Any]:
    bad = ["noncontiguous:", "released:", "readonly_view:"]
    return st.one_of(
        st.sampled_from([Sym("buf", b) for b in bad]),
        st.text(max_size=3),
        junk(),
        big_ints(),
    )


def made_sqe_flags() -> st.SearchStrategy[Any]:
    made = st.builds(
        make_sqe_flags,
        fixed_file=st.booleans(),
        io_drain=st.booleans(),
        io_link=st.booleans(),
        io_hardlink=st.booleans(),
        io_async=st.booleans(),
        buffer_select=st.booleans(),
        skip_success=st.booleans(),
    )
    # Most calls carry no flag, or one at a time; some carry a random combination.
    single = st.sampled_from(
        [make_sqe_flags(**{k: True}) for k in inspect.signature(make_sqe_flags).parameters]
    )
    return st.one_of(st.none(), st.none(), single, made)


def open_flag_values() -> st.SearchStrategy[Any]:
    flag = st.sampled_from(list(FileOpenFlag))
    return st.one_of(st.none(), st.sets(flag, max_size=3), st.lists(flag, max_size=3).map(tuple))


def hostile_open_flags() -> st.SearchStrategy[Any]:
    flag = st.sampled_from(list(FileOpenFlag))
    return st.one_of(
        st.lists(st.one_of(flag, big_ints(), junk()), min_size=1, max_size=3),
        st.integers(-5, 1 << 20),
        big_ints(),
        junk().filter(lambda v: v is not None),
    )


def addresses() -> st.SearchStrategy[Any]:
    """Socket addresses: loopback only, and AF_UNIX names in the example's directory."""
    port = st.integers(0, 65535)
    return st.one_of(
        st.tuples(st.sampled_from(["127.0.0.1", "localhost", "0.0.0.0"]), port),
        st.tuples(st.just(ipaddress.IPv4Address("127.0.0.1")), port),
        st.tuples(st.just("::1"), port, st.integers(0, 3), st.integers(0, 3)),
        st.tuples(st.just("::1"), port),
        st.builds(lambda n: Sym("path", f"abs:{n}"), st.sampled_from(["s1", "s2", "dir/s"])),
        st.sampled_from([b"\0century-ring-fuzz", "s1", b"s2"]),
    )


def hostile_addresses() -> st.SearchStrategy[Any]:
    port = st.one_of(st.integers(0, 65535), big_ints())
    return st.one_of(
        st.tuples(st.sampled_from(["not an ip", "256.1.1.1", "", "::g", "\0"]), port),
        st.tuples(st.just("127.0.0.1"), big_ints()),
        st.tuples(junk(), junk()),
        st.tuples(st.just("127.0.0.1")),
        st.tuples(st.just("::1"), port, big_ints(), big_ints()),
        st.tuples(st.just("127.0.0.1"), port, port, port, port),
        st.just("x" * 200),
        junk(),
        big_ints(),
    )


@st.composite
def pair(draw: st.DrawFn, valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """A plausible value most of the time, a hostile one otherwise: most examples get past
    argument checking and reach the kernel, and every check still sees bad input.

    (A plain ``one_of(valid, hostile)`` would not do: hypothesis flattens nested ``one_of``
    and picks among the leaves, and the hostile side has many.)"""
    if draw(st.integers(0, 5)) == 5:
        return draw(hostile)
    return draw(valid)


def small_ints(hi: int = 70000) -> st.SearchStrategy[int]:
    return st.integers(0, hi)


def booleans() -> st.SearchStrategy[Any]:
    return pair(st.booleans(), st.sampled_from([0, 1, None, "yes", 2**70]))


def lists_of(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    return pair(
        st.one_of(
            st.lists(valid, min_size=1, max_size=4),
            st.lists(valid, min_size=1, max_size=3).map(tuple),
            st.lists(valid, min_size=1, max_size=3).map(iter),
        ),
        st.one_of(
            st.just([]),
            st.just("huge"),  # more items than IOV_MAX
            st.lists(st.one_of(valid, hostile), min_size=1, max_size=4),
            junk(),
            big_ints(),
        ),
    )


#: Plausible values of a plain integer parameter (flags, modes, masks, ...).
FLAG_INTS = st.one_of(st.just(0), st.integers(0, 7), st.integers(0, 64), st.integers(0, 1 << 16))

#: Strategies by parameter name. Names not listed get GENERIC.
BY_NAME: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "fd": lambda: pair(fd_syms(), hostile_fds()),
    "fd_in": lambda: pair(fd_syms(), hostile_fds()),
    "fd_out": lambda: pair(fd_syms(), hostile_fds()),
    "ring": lambda: pair(st.just(Sym("other_ring")), st.one_of(fd_syms(), hostile_fds())),
    "relative_to": lambda: pair(fd_syms(dir_like=True), hostile_fds()),
    "old_relative_to": lambda: pair(fd_syms(dir_like=True), hostile_fds()),
    "new_relative_to": lambda: pair(fd_syms(dir_like=True), hostile_fds()),
    "path": lambda: pair(path_syms(), hostile_paths()),
    "old_path": lambda: pair(path_syms(), hostile_paths()),
    "new_path": lambda: pair(path_syms(), hostile_paths()),
    "link_path": lambda: pair(path_syms(), hostile_paths()),
    "target": lambda: pair(path_syms(), hostile_paths()),
    "buffer": lambda: pair(buffer_syms(), hostile_buffers()),
    "buffers": lambda: lists_of(buffer_syms(), hostile_buffers()),
    "byte_count": lambda: pair(
        st.one_of(small_ints(), st.sampled_from([0, 1, 4096, 2**31 - 1])), hostile_ints()
    ),
    "byte_counts": lambda: lists_of(
        st.one_of(small_ints(8192), st.just(0)), st.sampled_from([-1, 2**31 - 1, 2**31])
    ),
    "offset": lambda: pair(st.one_of(st.just(-1), small_ints(8192)), lengths()),
    "file_offset": lambda: pair(st.one_of(st.just(-1), small_ints(8192)), lengths()),
    "offset_in": lambda: pair(st.one_of(st.just(-1), small_ints(8192)), lengths()),
    "offset_out": lambda: pair(st.one_of(st.just(-1), small_ints(8192)), lengths()),
    "length": lambda: pair(small_ints(65536), lengths()),
    "count": lambda: pair(st.one_of(st.none(), small_ints(64)), hostile_ints()),
    "buffer_offset": lambda: pair(st.one_of(st.none(), small_ints(64)), hostile_ints()),
    "sqe_flags": lambda: pair(made_sqe_flags(), st.one_of(st.integers(0, 255), hostile_ints())),
    "open_mode": lambda: pair(st.sampled_from(list(FileOpenMode)), hostile_ints()),
    "address": lambda: pair(addresses(), hostile_addresses()),
    "port": lambda: pair(st.integers(0, 65535), hostile_ints()),
    "seconds": lambda: pair(
        st.sampled_from([0, 0.0, 0.001, 1e-9, 0.01, 1, 3600, 10**9]),
        st.one_of(
            st.sampled_from([1e300, -1, -0.5, float("nan"), float("inf"), -float("inf")]),
            st.floats(),
            hostile_ints(),
        ),
    ),
    "nsec": lambda: pair(st.integers(0, 10**9), hostile_ints()),
    "domain": lambda: pair(
        st.sampled_from([socket.AF_UNIX, socket.AF_INET, socket.AF_INET6]),
        st.one_of(st.sampled_from([0, -1, 255]), hostile_ints()),
    ),
    "type": lambda: pair(
        st.sampled_from(
            [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET, socket.SOCK_RAW]
        ),
        st.one_of(st.integers(0, 1 << 20), hostile_ints()),
    ),
    "protocol": lambda: pair(
        st.sampled_from([0, 0, 6, 17]), st.one_of(small_ints(300), hostile_ints())
    ),
    "user_data": lambda: pair(st.one_of(st.none(), st.integers(0, 2**64 - 1)), hostile_ints()),
    "result": lambda: pair(st.integers(-(2**31), 2**31 - 1), hostile_ints()),
    "idtype": lambda: pair(st.sampled_from([os.P_PID, os.P_ALL, os.P_PGID, 3]), hostile_ints()),
    "id": lambda: pair(st.sampled_from([0, 1, os.getpid(), 2**22]), hostile_ints()),
    "options": lambda: pair(
        st.sampled_from([os.WEXITED, os.WEXITED | os.WNOHANG, os.WSTOPPED, 0]), hostile_ints()
    ),
    "events": lambda: pair(
        st.sampled_from([select.POLLIN, select.POLLOUT, select.POLLIN | select.POLLOUT, 0]),
        st.one_of(st.integers(0, 2**32 - 1), hostile_ints()),
    ),
}
for _name in ["flags", "permissions", "mode", "advice", "backlog", "how", "mask", "resolve"]:
    BY_NAME[_name] = lambda: pair(FLAG_INTS, hostile_ints())
for _name in [
    "absolute",
    "all",
    "copy",
    "data_only",
    "multishot",
    "nonblocking",
    "peer_address",
    "remove_dir",
]:
    BY_NAME[_name] = booleans

OVERRIDES: dict[tuple[str, str], Callable[[], st.SearchStrategy[Any]]] = {
    ("prep_openat", "flags"): lambda: pair(open_flag_values(), hostile_open_flags()),
    ("prep_openat2", "flags"): lambda: pair(open_flag_values(), hostile_open_flags()),
    ("prep_connect_v4", "address"): lambda: pair(
        st.sampled_from(["127.0.0.1", "0.0.0.0", ipaddress.IPv4Address("127.0.0.1")]),
        st.one_of(st.sampled_from(["::1", "1.2.3", "", "localhost", "x"]), hostile_ints()),
    ),
    ("prep_connect_v6", "address"): lambda: pair(
        st.sampled_from(["::1", "::", ipaddress.IPv6Address("::1")]),
        st.one_of(st.sampled_from(["127.0.0.1", "::g", "", "localhost"]), hostile_ints()),
    ),
    ("prep_cancel", "fd"): lambda: st.one_of(st.none(), st.none(), fd_syms(), hostile_fds()),
}

#: Operations whose row says the kernel writes the caller's buffer: they are fuzzed with
#: writable buffers, so that most examples get past argument checking.
WRITE_CALLER_BUFFER = sorted(
    method for method, op in OPERATIONS.items() if "writable caller buffer" in op["owns"]
)
for _method in WRITE_CALLER_BUFFER:
    OVERRIDES[(_method, "buffer")] = lambda: pair(buffer_syms(writable=True), hostile_buffers())


def lengths() -> st.SearchStrategy[Any]:
    """Hostile lengths and offsets: either negative, or so large that the filesystem refuses
    them at once (never gigabytes a filesystem might really try to allocate)."""
    return st.one_of(
        st.sampled_from([-2, 2**45, 2**62, 2**63 - 1, 2**63, 2**64]),
        st.integers(max_value=-1),
        junk(),
    )


def GENERIC() -> st.SearchStrategy[Any]:
    """For parameters this file does not know: our own descriptors, and hostile values, never
    a small int that could be somebody else's descriptor."""
    return pair(fd_syms(), hostile_ints())


def strategy_for(method: str, param: inspect.Parameter) -> st.SearchStrategy[Any]:
    make = OVERRIDES.get((method, param.name)) or BY_NAME.get(param.name) or GENERIC
    return make()


_OMIT = object()


def arguments_for(method: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``method``: required ones always, optional ones sometimes."""
    params = list(inspect.signature(getattr(IoUring, method)).parameters.values())[1:]
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for p in params:
        s = strategy_for(method, p)
        if p.default is not inspect.Parameter.empty:
            s = st.one_of(st.just(_OMIT), s)
        parts[p.name] = s
    return st.fixed_dictionaries(parts).map(
        lambda d: {k: v for k, v in d.items() if v is not _OMIT}
    )


# --- the environment an example runs in -----------------------------------------------------


@dataclass
class Env:
    dir: Path
    fds: dict[str, int] = field(default_factory=dict)
    keep: list[Any] = field(default_factory=list)
    other: IoUring | None = None

    def concrete(self, value: Any) -> Any:
        if isinstance(value, Sym):
            return self._sym(value)
        if isinstance(value, tuple):
            return tuple(self.concrete(v) for v in value)
        if isinstance(value, list):
            return [self.concrete(v) for v in value]
        if isinstance(value, str) and value == "huge":
            return [b"x"] * 1025
        return value

    def _buffer(self, spec: str) -> Any:
        kind, _, hexdata = spec.partition(":")
        data = bytes.fromhex(hexdata)
        if kind == "array":
            return array.array("i", range(16))
        if kind == "mmap":
            m = mmap.mmap(-1, 8192)
            self.keep.append(m)
            return m
        if kind == "noncontiguous":
            return memoryview(bytearray(64))[::2]
        if kind == "released":
            view = memoryview(bytearray(16))
            view.release()
            return view
        simple: dict[str, Callable[[], Any]] = {
            "bytearray": lambda: bytearray(data),
            "view": lambda: memoryview(bytearray(data)),
            "view_slice": lambda: memoryview(bytearray(b"<" + data + b">"))[1:-1],
            "empty_bytearray": bytearray,
            "mib_bytearray": lambda: bytearray(1 << 20),
            "4mib_view": lambda: memoryview(bytearray(4 << 20)),
            "readonly_view": lambda: memoryview(b"read only" + data),
            "bytes": lambda: data,
            "empty_bytes": bytes,
            "2mib_bytes": lambda: b"z" * (2 << 20),
        }
        return simple[kind]()

    def _sym(self, sym: Sym) -> Any:
        if sym.kind == "buf":
            return self._buffer(sym.arg)
        if sym.kind == "path":
            form, _, name = sym.arg.partition(":")
            absolute = self.dir / name
            return {
                "rel": name,
                "abs": str(absolute),
                "bytes": os.fsencode(name),
                "pathlike": Path(name),
                "abs_bytes": os.fsencode(absolute),
            }[form]
        if sym.kind == "closed":
            fd = os.dup(self.fds["file"])
            os.close(fd)
            return fd
        if sym.kind == "fileno_obj":
            return _FilenoObject(self.fds["pipe_r"])
        if sym.kind == "bad_fileno_obj":
            return _FilenoObject("three")
        return self.fds[sym.kind]


class _FilenoObject:
    def __init__(self, value: Any) -> None:
        self.value = value

    def fileno(self) -> Any:
        return self.value


@pytest.fixture(scope="module")
def fuzz_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=SCRATCH_ROOT, prefix="century-ring-fuzz-") as d:
        yield Path(d)


_counter = [0]


@contextmanager
def environment(root: Path) -> Iterator[Env]:
    """A fresh directory (also the working directory) and descriptors of every kind."""
    _counter[0] += 1
    d = root / f"ex{_counter[0]}"
    d.mkdir()
    (d / "file").write_bytes(DATA)
    (d / "dir").mkdir()
    (d / "dir" / "file").write_bytes(b"inner")
    (d / "sym").symlink_to("file")
    env = Env(d)
    cwd = os.getcwd()
    sockets: list[socket.socket] = []
    try:
        os.chdir(d)
        env.fds["file"] = os.open(d / "file", os.O_RDWR | os.O_CLOEXEC)
        env.fds["file_ro"] = os.open(d / "file", os.O_RDONLY | os.O_CLOEXEC)
        env.fds["dir"] = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        r, w = os.pipe()
        os.write(w, b"pipe data")
        env.fds["pipe_r"], env.fds["pipe_w"] = r, w
        r2, w2 = os.pipe()
        env.fds["pipe_r_empty"] = r2
        env.keep.append(w2)  # its write end stays open (and is closed below)
        a, b = socket.socketpair()
        b.sendall(b"sock data")
        da, db = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        fresh = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sockets += [a, b, da, db, udp, listener, fresh]
        # Raw descriptors from here on: a fuzzed prep_close may close any of them.
        env.fds.update(
            sock_a=a.detach(),
            sock_b=b.detach(),
            dgram=da.detach(),
            udp=udp.detach(),
            tcp_listen=listener.detach(),
            tcp_fresh=fresh.detach(),
        )
        env.keep.append(db.detach())
        env.fds["eventfd"] = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        env.other = make_io_ring(entries=8)
        env.fds["other_ring"] = env.other.fileno()
        yield env
    finally:
        os.chdir(cwd)
        if env.other is not None:
            env.other.close()
        for name, fd in env.fds.items():
            if name != "other_ring":
                _close_quietly(fd)
        for item in env.keep:
            if isinstance(item, int):
                _close_quietly(item)
            elif isinstance(item, mmap.mmap):
                try:
                    item.close()
                except BufferError:
                    pass
        for s in sockets:
            s.close()
        shutil.rmtree(d, ignore_errors=True)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# --- the property ---------------------------------------------------------------------------

#: How long an operation may take before it is cancelled (most complete at once).
QUICK = 0.02
#: How long a cancelled operation has to deliver its final completion.
PATIENCE = 20.0


def _reap_until(
    ring: IoUring,
    done: Callable[[], bool],
    timeout: float,
    sink: Callable[[CompletionEvent], None],
) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for cqe in ring.get_completion_entries():
            sink(cqe)
        if done():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ring.submit_and_wait_with_timeout(min(left, 0.25))


def check_call(method: str, kwargs: dict[str, Any], env: Env) -> str:
    """Runs one fuzzed call on a fresh ring and checks the property. Returns the outcome."""
    with make_io_ring(entries=8) as ring:
        # Made after the ring, so that a "closed" descriptor number is not the ring's own.
        args = {k: env.concrete(v) for k, v in kwargs.items()}
        if method == "prep_waitid" and isinstance(args.get("options"), int):
            # Never reap another test's child: waitid only ever looks (WNOWAIT).
            args["options"] |= os.WNOWAIT
        flags = args.get("sqe_flags")
        bits = flags if isinstance(flags, int) and 0 <= flags < 256 else 0
        skip_success = bool(bits & SKIP_SUCCESS)
        drain = bool(bits & IO_DRAIN)
        try:
            ud = getattr(ring, method)(**args)
        except BaseException as e:
            if not isinstance(e, ALLOWED):
                raise AssertionError(f"{method}(**{args!r}) raised {e!r}") from e
            assert str(e), f"{method} raised {type(e).__name__} without a message"
            assert ring.pending_sq_entries == 0, f"{method} raised {e!r} but queued an entry"
            assert ring.in_flight == 0, f"{method} raised {e!r} but kept an in-flight entry"
            assert ring.submit() == 0
            return "raised"
        assert isinstance(ud, int) and ud >= 0, ud
        refusal = refusal_of(method, bits)
        assert refusal is None, f"{method}(**{args!r}) was queued, but {refusal}"
        got: list[CompletionEvent] = []
        others: list[CompletionEvent] = []
        expected = {ud}

        def sink(cqe: CompletionEvent) -> None:
            if cqe.user_data not in expected:
                raise AssertionError(f"{method}: completion for nothing: {cqe!r}")
            if cqe.user_data == ud:
                got.append(cqe)
                if method in RETURNS_FD and cqe.result >= 0:
                    _close_quietly(cqe.result)
                if method in EXTRA_FDS and cqe.result >= 0 and args.get("file_index") is None:
                    for fd in cqe.extra:
                        _close_quietly(fd)
            else:
                others.append(cqe)

        def final() -> bool:
            return any(not c.more for c in got)

        ring.submit()
        if not _reap_until(ring, final, QUICK, sink) and drain:
            # The kernel holds every later entry, a prep_cancel included, until an io_drain
            # operation completes; only closing the ring (which cancels synchronously) ends
            # it. It must do so at once, without warning that it had to leak memory.
            assert ring.in_flight == (0 if skip_success else 1)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0 = time.monotonic()
                ring.close()
            assert time.monotonic() - t0 < 5, f"{method}: closing took too long"
            assert [str(w.message) for w in caught] == []
            return "closed while draining"
        if not final():
            cancel = ring.prep_cancel(ud)
            expected.add(cancel)
            ring.submit()
            assert _reap_until(ring, lambda: bool(others), PATIENCE, sink), (
                f"{method}: the cancellation never completed"
            )
            (cancelled,) = others
            if skip_success:
                # A skipped success posts nothing; a cancelled operation fails, which posts.
                if cancelled.result == 0:
                    assert _reap_until(ring, final, PATIENCE, sink)
                else:
                    _reap_until(ring, final, 0.05, sink)
            else:
                assert _reap_until(ring, final, PATIENCE, sink), (
                    f"{method}(**{args!r}): no final completion after cancelling "
                    f"(cancel result {cancelled.result})"
                )
        finals = [c for c in got if not c.more]
        assert len(finals) <= 1, f"{method}: more than one final completion: {finals}"
        assert all(c.more for c in got[:-1]), got
        if skip_success:
            assert all(c.result < 0 for c in got), f"skip_success but {got}"
        else:
            assert len(finals) == 1
        assert ring.in_flight == 0, f"{method}: {ring.in_flight} still in flight"
        assert ring.pending_sq_entries == 0
        if env.other is not None:
            for cqe in env.other.get_completion_entries():
                assert cqe.user_data < 2**32, f"a message mimicked a ring's own user_data: {cqe}"
            assert env.other.in_flight == 0
        return "skipped" if skip_success and not got else f"result {finals[0].result}"


@pytest.mark.parametrize("method", PREP_METHODS)
def test_prep_method_completes_or_raises(method: str, fuzz_root: Path) -> None:
    """Every prep_* call either completes (after cancelling, if it would wait forever) or
    raises an allowed exception and queues nothing."""
    outcomes: dict[str, int] = {}

    @_settings()
    @given(kwargs=arguments_for(method))
    def run(kwargs: dict[str, Any]) -> None:
        with environment(fuzz_root) as env:
            outcome = check_call(method, kwargs, env)
        key = "raised" if outcome == "raised" else "queued"
        outcomes[key] = outcomes.get(key, 0) + 1
        if outcome.startswith("result") and int(outcome.split()[1]) >= 0:
            outcomes["succeeded"] = outcomes.get("succeeded", 0) + 1

    run()
    assert outcomes, "hypothesis ran no example"
    if os.environ.get("CENTURY_RING_FUZZ_REPORT"):
        print(f"\nfuzz {method}: {outcomes}")


# --- make_io_ring and make_sqe_flags --------------------------------------------------------


def _ring_args() -> st.SearchStrategy[dict[str, Any]]:
    size = st.one_of(st.integers(-3, 40000), st.sampled_from([1, 2, 8, 4096, 32768]), big_ints())
    return st.fixed_dictionaries(
        {},
        optional={
            "entries": st.one_of(size, junk()),
            "cq_size": st.one_of(size, st.sampled_from([65536, 65537]), junk()),
            "sqpoll_idle_ms": st.one_of(st.sampled_from([0, 1, 10, -5]), big_ints(), junk()),
            "single_issuer": booleans(),
            "autosubmit": booleans(),
        },
    )


@_settings(scale=8)
@given(kwargs=_ring_args())
def test_make_io_ring_works_or_raises(kwargs: dict[str, Any]) -> None:
    """make_io_ring either gives a working ring (a no-op completes through it) or raises an
    allowed exception; it never crashes."""
    try:
        ring = make_io_ring(**kwargs)
    except BaseException as e:
        if not isinstance(e, ALLOWED):
            raise AssertionError(f"make_io_ring(**{kwargs!r}) raised {e!r}") from e
        assert str(e)
        return
    with ring:
        ud = ring.prep_nop()
        got: list[CompletionEvent] = []
        assert _reap_until(ring, lambda: bool(got), 10, got.append)
        assert [c.user_data for c in got] == [ud] and got[0].result == 0
    assert ring.closed


@_settings(scale=8)
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            name: booleans()
            for name in inspect.signature(make_sqe_flags).parameters
            if name != "self"
        },
    )
)
def test_make_sqe_flags_gives_flags_every_prep_accepts(kwargs: dict[str, Any]) -> None:
    """make_sqe_flags returns bits in 0..255 (or raises TypeError for non-bools), and a no-op
    queued with them completes, or is refused before queueing (buffer_select without a group;
    skip_success on a linked entry)."""
    try:
        flags = make_sqe_flags(**kwargs)
    except TypeError as e:
        assert str(e)
        return
    assert isinstance(flags, int) and 0 <= flags <= 255
    with make_io_ring() as ring:
        try:
            ud = ring.prep_nop(sqe_flags=flags)
        except ValueError as e:
            linked_skip = flags & SKIP_SUCCESS and (
                kwargs.get("io_link") or kwargs.get("io_hardlink")
            )
            assert "buffer_select" in str(e) or (linked_skip and "SKIP_SUCCESS" in str(e))
            assert ring.pending_sq_entries == 0 and ring.in_flight == 0
            return
        got: list[CompletionEvent] = []
        reaped = _reap_until(ring, lambda: bool(got), 0.2, got.append)
        if flags & SKIP_SUCCESS:
            assert got == [] or got[0].result < 0
        else:
            assert reaped and [c.user_data for c in got] == [ud]


# --- sanity of the harness itself -----------------------------------------------------------


def test_operations_that_write_a_caller_buffer_take_it_as_buffer() -> None:
    """Each operation whose row owns a writable caller buffer takes it as ``buffer``, the
    parameter fuzzed with writable buffers; and there is such an operation (so the table still
    spells the kind as this file looks for it)."""
    assert WRITE_CALLER_BUFFER, "no row owns a 'writable caller buffer'"
    for method in WRITE_CALLER_BUFFER:
        assert "buffer" in inspect.signature(getattr(IoUring, method)).parameters, method


def test_harness_never_hands_out_small_descriptors(fuzz_root: Path) -> None:
    """Every descriptor an example uses is one the example made (so a fuzzed close or write can
    never hit the test runner's stdin, stdout or stderr)."""
    with environment(fuzz_root) as env:
        assert all(fd > 2 for fd in env.fds.values())
        assert os.getcwd() == str(env.dir)
    for value in HOSTILE_FD_INTS:
        assert not 0 <= value < 1 << 20 or value == 10**6


def test_harness_sees_a_pending_operation_through_to_its_cancellation(fuzz_root: Path) -> None:
    """The harness cancels an operation that waits forever and still sees its completion."""
    with environment(fuzz_root) as env:
        assert check_call("prep_read", {"fd": Sym("pipe_r_empty"), "byte_count": 4}, env) == (
            f"result {-errno.ECANCELED}"
        )
        assert check_call("prep_read", {"fd": Sym("pipe_r"), "byte_count": 4}, env) == "result 4"
        assert not select.select([env.fds["pipe_r_empty"]], [], [], 0)[0]
