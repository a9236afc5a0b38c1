from collections.abc import Callable, Iterable
from contextvars import Context
from ipaddress import IPv4Address, IPv6Address
from os import PathLike
from types import TracebackType
from typing import Any, Final, Protocol, TypeAlias, TypedDict, final

from typing_extensions import Buffer, Self

from century_ring.enums import FileOpenFlag, FileOpenMode

__all__ = [
    "ALLOC_FILE_INDEX",
    "AT_FDCWD",
    "BufferRing",
    "CompletionEvent",
    "IoUring",
    "ProvidedBuffer",
    "StatxResult",
    "__version__",
    "make_io_ring",
    "make_sqe_flags",
]

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

_Fd: TypeAlias = int | _HasFileno
_Path: TypeAlias = str | bytes | PathLike[str] | PathLike[bytes]
_Host: TypeAlias = str | IPv4Address | IPv6Address
#: A socket address in the ``socket`` module's form: ``(host, port)``,
#: ``(host, port, flowinfo[, scope_id])``, or an AF_UNIX path.
_SocketAddress: TypeAlias = (
    tuple[_Host, int] | tuple[_Host, int, int] | tuple[_Host, int, int, int] | _Path
)

__version__: Final[str]
AT_FDCWD: Final[int]
ALLOC_FILE_INDEX: Final[int]

@final
class CompletionEvent:
    @property
    def result(self) -> int: ...
    @property
    def user_data(self) -> int: ...
    @property
    def buffer(self) -> bytes | None: ...
    @property
    def flags(self) -> int: ...
    @property
    def extra(self) -> object | None: ...
    @property
    def more(self) -> bool: ...
    @property
    def provided_buffer(self) -> ProvidedBuffer | None: ...
    @property
    def notification(self) -> bool: ...

@final
class BufferRing:
    @property
    def group_id(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def available(self) -> int: ...
    @property
    def registered(self) -> bool: ...
    def unregister(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

@final
class ProvidedBuffer:
    @property
    def memory(self) -> memoryview: ...
    @property
    def memories(self) -> tuple[memoryview, ...]: ...
    @property
    def buffer_id(self) -> int: ...
    @property
    def buffer_ids(self) -> tuple[int, ...]: ...
    @property
    def group_id(self) -> int: ...
    @property
    def released(self) -> bool: ...
    def tobytes(self) -> bytes: ...
    def __bytes__(self) -> bytes: ...
    def __len__(self) -> int: ...
    def release(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

@final
class StatxResult:
    @property
    def st_mode(self) -> int: ...
    @property
    def st_ino(self) -> int: ...
    @property
    def st_dev(self) -> int: ...
    @property
    def st_nlink(self) -> int: ...
    @property
    def st_uid(self) -> int: ...
    @property
    def st_gid(self) -> int: ...
    @property
    def st_size(self) -> int: ...
    @property
    def st_atime(self) -> float: ...
    @property
    def st_mtime(self) -> float: ...
    @property
    def st_ctime(self) -> float: ...
    @property
    def st_birthtime(self) -> float: ...
    @property
    def st_atime_ns(self) -> int: ...
    @property
    def st_mtime_ns(self) -> int: ...
    @property
    def st_ctime_ns(self) -> int: ...
    @property
    def st_birthtime_ns(self) -> int: ...
    @property
    def st_blksize(self) -> int: ...
    @property
    def st_blocks(self) -> int: ...
    @property
    def st_rdev(self) -> int: ...
    @property
    def stx_mask(self) -> int: ...
    @property
    def stx_attributes(self) -> int: ...

@final
class IoUring:
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def pending_sq_entries(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    def probe(self) -> dict[str, bool]: ...
    def fileno(self) -> int: ...
    def prep_openat(
        self,
        relative_to: _Fd | None,
        path: _Path,
        open_mode: FileOpenMode,
        flags: Iterable[FileOpenFlag] | FileOpenFlag | None = None,
        permissions: int = 0o666,
        *,
        file_index: int | None = None,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_read(
        self, fd: _Fd, byte_count: int, offset: int = -1, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_write(
        self,
        fd: _Fd,
        buffer: Buffer,
        file_offset: int = -1,
        count: int | None = None,
        buffer_offset: int | None = None,
        *,
        copy: bool = True,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_read_into(
        self, fd: _Fd, buffer: Buffer, offset: int = -1, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_create_socket(
        self,
        domain: int,
        type: int,
        protocol: int = 0,
        nonblocking: bool = False,
        *,
        file_index: int | None = None,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_connect_v4(
        self, fd: _Fd, address: str | IPv4Address, port: int, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_connect_v6(
        self, fd: _Fd, address: str | IPv6Address, port: int, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_send(
        self,
        fd: _Fd,
        buffer: Buffer,
        count: int | None = None,
        buffer_offset: int | None = None,
        flags: int = 0,
        *,
        copy: bool = True,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_send_zc(
        self,
        fd: _Fd,
        buffer: Buffer,
        count: int | None = None,
        buffer_offset: int | None = None,
        flags: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_recv(
        self,
        fd: _Fd,
        byte_count: int,
        flags: int = 0,
        *,
        buffer_group: BufferRing | int | None = None,
        multishot: bool = False,
        bundle: bool = False,
        sqe_flags: int | None = None,
    ) -> int: ...
    def register_buffer_ring(self, group_id: int, count: int, size: int) -> BufferRing: ...
    def unregister_buffer_ring(self, group_id: int) -> None: ...
    def prep_recv_into(
        self, fd: _Fd, buffer: Buffer, flags: int = 0, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_accept(
        self,
        fd: _Fd,
        flags: int = 0,
        *,
        peer_address: bool = False,
        multishot: bool = False,
        file_index: int | None = None,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_connect(
        self, fd: _Fd, address: _SocketAddress, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_bind(
        self, fd: _Fd, address: _SocketAddress, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_listen(self, fd: _Fd, backlog: int = 128, *, sqe_flags: int | None = None) -> int: ...
    def prep_shutdown(self, fd: _Fd, how: int, *, sqe_flags: int | None = None) -> int: ...
    def prep_sendto(
        self,
        fd: _Fd,
        buffer: Buffer,
        address: _SocketAddress,
        flags: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_recvfrom(
        self, fd: _Fd, byte_count: int, flags: int = 0, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_close(self, fd: _Fd, *, sqe_flags: int | None = None) -> int: ...
    def prep_nop(self, *, sqe_flags: int | None = None) -> int: ...
    def prep_cancel(
        self,
        user_data: int | None = None,
        *,
        fd: _Fd | None = None,
        all: bool = False,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_timeout(
        self,
        seconds: float,
        nsec: int = 0,
        *,
        count: int = 0,
        absolute: bool = False,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_timeout_remove(self, user_data: int, *, sqe_flags: int | None = None) -> int: ...
    def prep_link_timeout(
        self, seconds: float, nsec: int = 0, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_poll_add(
        self, fd: _Fd, events: int, *, multishot: bool = False, sqe_flags: int | None = None
    ) -> int: ...
    def prep_poll_remove(self, user_data: int, *, sqe_flags: int | None = None) -> int: ...
    def prep_msg_ring(
        self,
        ring: _Fd,
        result: int = 0,
        user_data: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_readv(
        self,
        fd: _Fd,
        byte_counts: Iterable[int],
        offset: int = -1,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_writev(
        self,
        fd: _Fd,
        buffers: Iterable[Buffer],
        offset: int = -1,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_fsync(
        self, fd: _Fd, *, data_only: bool = False, sqe_flags: int | None = None
    ) -> int: ...
    def prep_fallocate(
        self, fd: _Fd, offset: int, length: int, mode: int = 0, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_ftruncate(self, fd: _Fd, length: int, *, sqe_flags: int | None = None) -> int: ...
    def prep_fadvise(
        self, fd: _Fd, offset: int, length: int, advice: int, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_splice(
        self,
        fd_in: _Fd,
        offset_in: int,
        fd_out: _Fd,
        offset_out: int,
        byte_count: int,
        flags: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_tee(
        self,
        fd_in: _Fd,
        fd_out: _Fd,
        byte_count: int,
        flags: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_pipe(
        self, flags: int = 0, *, file_index: int | None = None, sqe_flags: int | None = None
    ) -> int: ...
    def prep_sync_file_range(
        self, fd: _Fd, offset: int, length: int, flags: int = 0, *, sqe_flags: int | None = None
    ) -> int: ...
    def prep_openat2(
        self,
        relative_to: _Fd | None,
        path: _Path,
        open_mode: FileOpenMode,
        flags: Iterable[FileOpenFlag] | FileOpenFlag | None = None,
        permissions: int = 0o666,
        *,
        resolve: int = 0,
        file_index: int | None = None,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_statx(
        self,
        relative_to: _Fd | None,
        path: _Path,
        flags: int = 0,
        mask: int = 0xFFF,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_unlinkat(
        self,
        relative_to: _Fd | None,
        path: _Path,
        *,
        remove_dir: bool = False,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_renameat(
        self,
        old_relative_to: _Fd | None,
        old_path: _Path,
        new_relative_to: _Fd | None,
        new_path: _Path,
        flags: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_mkdirat(
        self,
        relative_to: _Fd | None,
        path: _Path,
        permissions: int = 0o777,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_symlinkat(
        self,
        target: _Path,
        relative_to: _Fd | None,
        link_path: _Path,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_linkat(
        self,
        old_relative_to: _Fd | None,
        old_path: _Path,
        new_relative_to: _Fd | None,
        new_path: _Path,
        flags: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_waitid(
        self, idtype: int, id: int, options: int, *, sqe_flags: int | None = None
    ) -> int: ...
    def submit(self) -> int: ...
    def submit_and_wait(self, count: int = 1) -> int: ...
    def submit_and_wait_with_timeout(self, seconds: float, nsec: int = 0) -> int: ...
    def get_completion_entries(self) -> list[CompletionEvent]: ...
    def _reap_to(
        self, handlers: dict[int, Callable[[CompletionEvent], None] | _Stream]
    ) -> list[CompletionEvent]: ...
    def register_eventfd(self, event_fd: _Fd | None = None) -> int: ...
    # Registered (fixed) files and buffers.
    def register_files(self, fds: Iterable[_Fd | None]) -> None: ...
    def register_files_sparse(self, count: int) -> None: ...
    def update_registered_files(self, offset: int, fds: Iterable[_Fd | None]) -> int: ...
    def unregister_files(self) -> None: ...
    def register_buffers(self, buffers: Iterable[Buffer]) -> None: ...
    def unregister_buffers(self) -> None: ...
    def prep_read_fixed(
        self,
        fd: _Fd,
        buffer_index: int,
        offset: int = -1,
        count: int | None = None,
        buffer_offset: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_write_fixed(
        self,
        fd: _Fd,
        buffer_index: int,
        offset: int = -1,
        count: int | None = None,
        buffer_offset: int = 0,
        *,
        sqe_flags: int | None = None,
    ) -> int: ...
    def prep_fixed_fd_install(
        self, slot: int, *, cloexec: bool = True, sqe_flags: int | None = None
    ) -> int: ...

def make_io_ring(
    entries: int = 256,
    cq_size: int | None = None,
    sqpoll_idle_ms: int | None = None,
    single_issuer: bool = True,
    autosubmit: bool = True,
) -> IoUring: ...
def make_sqe_flags(
    fixed_file: bool = False,
    io_drain: bool = False,
    io_link: bool = False,
    io_hardlink: bool = False,
    io_async: bool = False,
    buffer_select: bool = False,
    skip_success: bool = False,
) -> int: ...

class _Operation(TypedDict):
    name: str
    method: str
    opcode: int
    opcode_name: str
    since: str
    mirrors: str | None
    owns: tuple[str, ...]
    refuses: tuple[str, ...]

def _operations() -> list[_Operation]: ...

@final
class _Stream:
    receive: int | None
    deliver: Callable[[bytes], object] | None
    write_direct: bool
    watch: bool
    high_water: int
    def __new__(
        cls, io_uring: IoUring, fd: int, transport: object, handlers: dict[int, Any]
    ) -> Self: ...
    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def queue(self, data: bytes) -> None: ...
    @property
    def buffered(self) -> int: ...
    @property
    def send_in_flight(self) -> int | None: ...
    def drop_sends(self) -> int | None: ...

@final
class _Handle:
    _callback: Callable[..., object] | None
    _args: tuple[Any, ...] | None
    _context: Context
    _cancelled: bool
    _when: float | None
    _scheduled: bool
    _source_traceback: Any
    def cancel(self) -> None: ...
    def cancelled(self) -> bool: ...
    def get_context(self) -> Context: ...
    def when(self) -> float: ...
    def _run(self) -> None: ...

@final
class _RunQueue:
    def __new__(cls, event_loop: object, clock_resolution: float) -> Self: ...
    def call_soon(
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> _Handle: ...
    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> _Handle: ...
    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> _Handle: ...
    @staticmethod
    def time() -> float: ...
    def append(self, handle: object) -> None: ...
    def popleft(self) -> object: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    @property
    def timers(self) -> int: ...
    def close(self) -> None: ...
    def run_once(self) -> None: ...
