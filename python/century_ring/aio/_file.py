"""Files opened like :func:`open`, read and written through the event loop's ring.

:func:`open_file` takes the arguments of :func:`open` and gives an :class:`AsyncFile`, whose
methods are coroutines. Every read, write, open, close, truncate and size query is an operation
on :func:`~century_ring.aio.current_ring`; no thread is involved. The file keeps its own
position and passes it to every read and write, so the descriptor's kernel position matters
only for files opened in append mode (every write lands at the end) and for files that cannot
seek (pipes, terminals).
"""

from __future__ import annotations

import codecs
import errno
import io
import locale
import os
import stat
import sys
import warnings
from collections.abc import AsyncIterator, Generator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, AnyStr, Generic, Literal, TypeAlias, cast, overload

import anyio
import anyio.lowlevel

from century_ring import AT_FDCWD, FileOpenFlag, FileOpenMode
from century_ring.aio._current import current_ring
from century_ring.aio._errors import RingClosedError

if TYPE_CHECKING:
    from typing_extensions import Buffer, Self

    from century_ring.aio._ring import AsyncRing

__all__ = ["AsyncFile", "open_file"]

#: ``statx`` flag naming the descriptor itself when the path is empty.
_AT_EMPTY_PATH = 0x1000
#: ``STATX_TYPE | STATX_MODE | STATX_SIZE``: all :func:`open_file` asks about a file.
_STATX_MASK = 0x1 | 0x2 | 0x200
#: Flags of the decoder state kept in a text cookie's bits above the byte offset.
_COOKIE_SHIFT = 64
#: The first read of ``read()`` to the end, whatever the buffer size.
_READ_ALL_CHUNK = 64 * 1024
#: The largest single read of ``read()`` to the end (chunks double up to it).
_READ_ALL_MAX_CHUNK = 16 * 1024 * 1024

_PathArg = str | bytes | os.PathLike[str] | os.PathLike[bytes] | int

if TYPE_CHECKING:
    # Only for the type checker: at run time the mode is checked as open() checks it.
    _BinaryMode: TypeAlias = Literal[
        "rb", "br", "wb", "bw", "ab", "ba", "xb", "bx",
        "rb+", "r+b", "+rb", "br+", "b+r", "+br",
        "wb+", "w+b", "+wb", "bw+", "b+w", "+bw",
        "ab+", "a+b", "+ab", "ba+", "b+a", "+ba",
        "xb+", "x+b", "+xb", "bx+", "b+x", "+bx",
    ]  # fmt: skip
    _TextMode: TypeAlias = Literal[
        "r", "w", "a", "x", "r+", "+r", "w+", "+w", "a+", "+a", "x+", "+x",
        "rt", "tr", "wt", "tw", "at", "ta", "xt", "tx",
        "rt+", "r+t", "wt+", "w+t", "at+", "a+t", "xt+", "x+t",
    ]  # fmt: skip


def _closed_error() -> ValueError:
    return ValueError("I/O operation on closed file.")


async def _close_fd(ring: AsyncRing, fd: int) -> None:
    """Close ``fd`` whatever cancels the task meanwhile."""
    with anyio.CancelScope(shield=True):
        try:
            await ring.close(fd)
        except RingClosedError:
            # The loop's ring is already gone (the loop is shutting down): close it directly.
            os.close(fd)


class _Buffered:
    """The binary layer: a descriptor, its position, and one buffer for reads or writes.

    At most one of the two buffers holds data. ``_read_buffer[_read_offset:]`` are the file's
    bytes at ``_position`` onwards; ``_write_buffer`` are bytes not yet written, which belong at
    ``_write_position``. Reads only ever add to the read buffer while they wait, and take from
    it once they are done; writes remove from the write buffer only what a completed write
    wrote. That way an operation cut short by a cancellation leaves nothing lost or twice.
    """

    def __init__(
        self,
        ring: AsyncRing,
        fd: int,
        *,
        readable: bool,
        writable: bool,
        appending: bool,
        seekable: bool,
        buffer_size: int,
        position: int,
    ) -> None:
        self.ring = ring
        self.fd = fd
        self.readable = readable
        self.writable = writable
        self.appending = appending
        self.seekable = seekable
        #: ``0`` means unbuffered.
        self.buffer_size = buffer_size
        self._position = position
        self._read_buffer = b""
        self._read_offset = 0
        self._write_buffer = bytearray()
        self._write_position = 0

    # -- reading -------------------------------------------------------------------------------

    def _available(self) -> int:
        return len(self._read_buffer) - self._read_offset

    def _take(self, count: int) -> bytes:
        """Hand over ``count`` buffered bytes and move the position past them."""
        start = self._read_offset
        data = self._read_buffer[start : start + count]
        self._read_offset = start + len(data)
        self._position += len(data)
        if self._read_offset == len(self._read_buffer):
            self._read_buffer, self._read_offset = b"", 0
        elif self.buffer_size == 0 and self.seekable:
            # Unbuffered: what the caller did not take is read again next time, not kept.
            self._drop_read_buffer()
        return data

    def _drop_read_buffer(self) -> None:
        self._read_buffer, self._read_offset = b"", 0

    async def _fill(self, count: int) -> int:
        """Read up to ``count`` more bytes after the buffered ones; ``0`` at end of file."""
        offset = self._position + self._available() if self.seekable else -1
        await self.ring._checkpoint_if_cancelled()
        chunk = (await self.ring.read(self.fd, count, offset)).buffer or b""
        # Keep the bytes before anything else can happen: a cancellation lands at the next
        # checkpoint, and they must be in the buffer by then.
        if chunk:
            self._read_buffer = self._read_buffer[self._read_offset :] + chunk
            self._read_offset = 0
        return len(chunk)

    def check_readable(self) -> None:
        if not self.readable:
            raise io.UnsupportedOperation("File not open for reading")

    def check_writable(self) -> None:
        if not self.writable:
            raise io.UnsupportedOperation("File not open for writing")

    def check_seekable(self) -> None:
        if not self.seekable:
            raise io.UnsupportedOperation("File or stream is not seekable.")

    async def read(self, size: int = -1) -> bytes:
        self.check_readable()
        await self.flush()
        if size is None or size < 0:
            chunk = max(self.buffer_size, _READ_ALL_CHUNK)
            while await self._fill(chunk):
                chunk = min(chunk * 2, _READ_ALL_MAX_CHUNK)
            await self.ring._checkpoint_if_cancelled()
            return self._take(self._available())
        if size == 0:
            return b""
        if self.buffer_size == 0:
            # A raw read: one operation, whatever it gives.
            if not self._available():
                await self._fill(size)
        else:
            while self._available() < size:
                if not await self._fill(max(self.buffer_size, size - self._available())):
                    break
        await self.ring._checkpoint_if_cancelled()
        return self._take(min(size, self._available()))

    async def read1(self, size: int = -1) -> bytes:
        self.check_readable()
        await self.flush()
        if size == 0:
            return b""
        if not self._available():
            await self._fill(size if size > 0 else max(self.buffer_size, io.DEFAULT_BUFFER_SIZE))
        available = self._available()
        await self.ring._checkpoint_if_cancelled()
        return self._take(available if size < 0 else min(size, available))

    async def readline(self, size: int = -1) -> bytes:
        self.check_readable()
        await self.flush()
        scanned = 0
        chunk = self.buffer_size or io.DEFAULT_BUFFER_SIZE
        while True:
            end = self._read_buffer.find(b"\n", self._read_offset + scanned)
            if end >= 0:
                count = end + 1 - self._read_offset
                break
            scanned = self._available()
            if 0 <= size <= scanned or not await self._fill(chunk):
                count = scanned
                break
        await self.ring._checkpoint_if_cancelled()
        return self._take(count if size < 0 else min(size, count))

    async def readlines(self, hint: int = -1) -> list[bytes]:
        self.check_readable()
        await self.flush()
        chunk = max(self.buffer_size, io.DEFAULT_BUFFER_SIZE)
        while True:
            # Like open(): stop after the line that takes the total past ``hint``.
            if 0 < hint < self._available():
                end = self._read_buffer.find(b"\n", self._read_offset + hint)
                if end >= 0:
                    count = end + 1 - self._read_offset
                    break
            if not await self._fill(chunk):
                count = self._available()
                break
        await self.ring._checkpoint_if_cancelled()
        data = self._take(count)
        lines = [line + b"\n" for line in data.split(b"\n")]
        lines[-1] = lines[-1][:-1]
        return lines if lines[-1] else lines[:-1]

    # -- writing -------------------------------------------------------------------------------

    async def write(self, data: Buffer) -> int:
        self.check_writable()
        view = memoryview(data).cast("B")
        if self._read_buffer and self.seekable:
            # The position is the caller's, not the read-ahead's: write there. (A stream's
            # read-ahead was taken from it for good, and its writes go elsewhere: keep it.)
            self._drop_read_buffer()
        if self.buffer_size == 0:
            if not len(view):
                return 0
            return await self._write_once(view)
        if not self._write_buffer:
            self._write_position = self._position
        # The data belongs to the buffer from here on: a cancelled flush below leaves it there
        # for the next flush or aclose(), never half-taken.
        self._write_buffer += view
        self._position += len(view)
        if len(self._write_buffer) > self.buffer_size:
            # As open() does: write out what was buffered before; then the new data too,
            # unless it fits in the buffer on its own.
            await self.flush(keep=len(view) if len(view) <= self.buffer_size else 0)
        return len(view)

    async def _write_once(self, view: memoryview) -> int:
        offset = -1 if self.appending or not self.seekable else self._position
        await self.ring._checkpoint_if_cancelled()
        written = (await self.ring.write(self.fd, view, offset)).result
        if self.appending:
            self._position = self._end_after_append()
        else:
            self._position += written
        return written

    def _end_after_append(self) -> int:
        # O_APPEND writes at offset -1 move the descriptor's position to the file's end.
        return os.lseek(self.fd, 0, os.SEEK_CUR) if self.seekable else 0

    async def flush(self, keep: int = 0) -> None:
        """Write the buffer out, up to its last ``keep`` bytes."""
        pending = self._write_buffer
        if len(pending) <= keep:
            return
        while len(pending) > keep:
            offset = -1 if self.appending or not self.seekable else self._write_position
            await self.ring._checkpoint_if_cancelled()
            count = len(pending) - keep
            written = (await self.ring.write(self.fd, pending, offset, count)).result
            if written <= 0:
                raise OSError(errno.EIO, "write() wrote nothing")
            # Forget what is on disk before anything else can happen (see _fill).
            del pending[:written]
            self._write_position += written
            if self.appending:
                # The write went to the end, and so does the position (as with open(), once
                # its buffer is written).
                self._position = self._end_after_append() + len(pending)
        # Everything is on disk; a cancellation that arrived meanwhile is raised here, inside
        # the caller's cancel scope (see AsyncRing._checkpoint_if_cancelled).
        await self.ring._checkpoint_if_cancelled()

    # -- positioning ---------------------------------------------------------------------------

    def tell(self) -> int:
        if not self.seekable:
            raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))
        return self._position

    async def size(self) -> int:
        await self.ring._checkpoint_if_cancelled()
        event = await self.ring.statx(self.fd, "", _AT_EMPTY_PATH, _STATX_MASK)
        return cast("Any", event.extra).st_size  # type: ignore[no-any-return]

    async def seek(self, offset: int, whence: int = 0) -> int:
        if whence not in (0, 1, 2):
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        self.check_seekable()
        await self.flush()
        if whence == 0:
            target = offset
        elif whence == 1:
            target = self._position + offset
        else:
            target = await self.size() + offset
        if target < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        ahead = target - self._position
        if 0 <= ahead <= self._available():
            self._read_offset += ahead
        else:
            self._drop_read_buffer()
        self._position = target
        return target

    async def truncate(self, size: int | None = None) -> int:
        self.check_writable()
        await self.flush()
        if size is None:
            size = self._position
        await self.ring._checkpoint_if_cancelled()
        await self.ring.ftruncate(self.fd, size)
        self._drop_read_buffer()
        await self.ring._checkpoint_if_cancelled()
        return size


def _line_end(text: str, start: int, newline: str | None) -> int:
    """Where the first line of ``text[start:]`` ends (after its terminator), or ``-1``."""
    if newline is None or newline == "\n":
        end = text.find("\n", start)
        return end + 1 if end >= 0 else -1
    if newline == "":
        # Any of "\r\n", "\r", "\n"; the decoder holds back a final "\r" until it knows what
        # follows, so a "\r" seen here is complete.
        lf = text.find("\n", start)
        cr = text.find("\r", start, lf if lf >= 0 else len(text))
        if cr >= 0:
            return cr + 2 if text.startswith("\n", cr + 1) else cr + 1
        return lf + 1 if lf >= 0 else -1
    end = text.find(newline, start)
    return end + len(newline) if end >= 0 else -1


class _Text:
    """The text layer over :class:`_Buffered`: decoding, encoding and newlines.

    ``_decoded[_decoded_offset:]`` are characters read ahead. All of ``_decoded`` came from
    decoding ``_snapshot_bytes``, which start at byte ``_snapshot_position`` with the decoder in
    state ``_snapshot_state``; :meth:`tell` replays that to find the byte where the next
    character starts.
    """

    def __init__(
        self,
        binary: _Buffered,
        encoding: str,
        errors: str,
        newline: str | None,
        line_buffering: bool,
    ) -> None:
        self.binary = binary
        self.encoding = encoding
        self.errors = errors
        self.newline = newline
        self.line_buffering = line_buffering
        self._universal = newline is None or newline == ""
        self._decoder = self._make_decoder()
        self._fresh_flags = self._decoder.getstate()[1]
        self._encoder = codecs.getincrementalencoder(encoding)(errors)
        if binary.seekable and binary.writable and binary.tell() != 0:
            # Not at the start: a BOM was (or will be) written there, not here.
            self._encoder.setstate(0)
        self._write_newline = os.linesep if newline is None else newline
        self._reset_read_ahead()

    def _make_decoder(self) -> codecs.IncrementalDecoder:
        decoder = codecs.getincrementaldecoder(self.encoding)(self.errors)
        if self._universal:
            return cast(
                "codecs.IncrementalDecoder",
                io.IncrementalNewlineDecoder(decoder, translate=self.newline is None),
            )
        return decoder

    def _reset_read_ahead(self) -> None:
        self._decoded = ""
        self._decoded_offset = 0
        self._snapshot_position = self.binary.tell() if self.binary.seekable else 0
        self._snapshot_state = self._decoder.getstate()
        self._snapshot_bytes = b""

    def _available(self) -> int:
        return len(self._decoded) - self._decoded_offset

    def _take(self, count: int) -> str:
        start = self._decoded_offset
        text = self._decoded[start : start + count]
        self._decoded_offset = start + len(text)
        return text

    def _start_read(self) -> None:
        """Before reading more bytes: forget a read-ahead that is used up."""
        if not self._available() and self._clean_flags() is not None:
            self._reset_read_ahead()

    def _decode(self, data: bytes, final: bool) -> None:
        self._snapshot_bytes += data
        self._decoded += self._decoder.decode(data, final=final)

    async def _fill(self) -> bool:
        """Decode one more chunk into the read-ahead; ``False`` at end of file."""
        self._start_read()
        chunk = await self.binary.read1(self.binary.buffer_size or io.DEFAULT_BUFFER_SIZE)
        # The bytes left the binary layer: decode them now, before any checkpoint.
        self._decode(chunk, final=not chunk)
        return bool(chunk)

    async def read(self, size: int = -1) -> str:
        self.binary.check_readable()
        if size < 0:
            self._start_read()
            data = await self.binary.read()
            self._decode(data, final=True)
            return self._take(self._available())
        while self._available() < size and await self._fill():
            pass
        return self._take(size)

    async def readline(self, size: int = -1) -> str:
        self.binary.check_readable()
        while True:
            end = _line_end(self._decoded, self._decoded_offset, self.newline)
            available = self._available()
            if end >= 0:
                count = end - self._decoded_offset
                break
            if 0 <= size <= available or not await self._fill():
                count = available
                break
        return self._take(count if size < 0 else min(size, count))

    async def readlines(self, hint: int = -1) -> list[str]:
        self.binary.check_readable()
        terminator = 1 if self._universal else len(cast("str", self.newline))
        while True:
            if 0 < hint < self._available():
                start = self._decoded_offset + max(0, hint + 1 - terminator)
                end = _line_end(self._decoded, start, self.newline)
                if end >= 0:
                    count = end - self._decoded_offset
                    break
            if not await self._fill():
                count = self._available()
                break
        text = self._take(count)
        lines = []
        start = 0
        while start < len(text):
            end = _line_end(text, start, self.newline)
            if end < 0:
                end = len(text)
            lines.append(text[start:end])
            start = end
        return lines

    async def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.binary.check_writable()
        if self.binary.seekable and (self._available() or self._clean_flags() is None):
            # Write where the reader stands, not after the read-ahead (open() writes after it).
            await self.seek(self.tell())
        out = text
        if self._write_newline != "\n" and self.newline != "":
            out = out.replace("\n", self._write_newline)
        data = self._encoder.encode(out)
        await self.binary.write(data)
        self._reset_read_ahead()
        if self.line_buffering and ("\n" in text or "\r" in text):
            await self.binary.flush()
        return len(text)

    def _clean_flags(self) -> int | None:
        """The decoder's flags if it holds nothing back (no partial character, no "\\r")."""
        pending, flags = self._decoder.getstate()
        if pending or (self._universal and flags & 1):
            return None
        return int(flags)

    def _cookie(self, position: int, flags: int) -> int:
        return position | ((flags ^ self._fresh_flags) << _COOKIE_SHIFT)

    def tell(self) -> int:
        binary = self.binary
        binary.check_seekable()
        flags = self._clean_flags()
        if not self._available() and flags is not None:
            return self._cookie(binary.tell(), flags)
        return self._cookie(*self._replay(self._decoded_offset))

    def _replay(self, wanted: int) -> tuple[int, int]:
        """The byte offset and decoder flags after the first ``wanted`` read-ahead characters."""
        data = self._snapshot_bytes
        decoder = self._make_decoder()
        decoder.setstate(self._snapshot_state)
        produced = 0
        index = 0
        # Fast part: a byte gives at most one character (two with a held-back "\r"), so this
        # cannot go past ``wanted``.
        while wanted - produced > 2:
            step = wanted - produced - 2
            produced += len(decoder.decode(data[index : index + step]))
            index += step
        if produced > wanted:
            raise io.UnsupportedOperation("can't reconstruct the text position here")
        # Then one byte at a time, so that the count is reached with no byte of the next
        # character fed yet.
        after_cr: tuple[int, int] | None = None
        while True:
            pending, flags = decoder.getstate()
            held_cr = self._universal and flags & 1
            if produced == wanted and not pending and not held_cr:
                return self._snapshot_position + index, int(flags)
            if produced == wanted - 1 and not pending and held_cr:
                # Just after a "\r" the decoder holds back: the next character, when it comes,
                # releases the "\r" with it.
                after_cr = self._snapshot_position + index, int(flags) & ~1
            if index == len(data):
                break
            produced += len(decoder.decode(data[index : index + 1]))
            index += 1
            if produced == wanted + 1 and after_cr is not None:
                return after_cr
        produced += len(decoder.decode(b"", final=True))
        if produced == wanted:
            # Only the end-of-file flush gave the last characters.
            return self._snapshot_position + len(data), int(decoder.getstate()[1]) & ~1
        raise io.UnsupportedOperation("can't reconstruct the text position here")

    async def seek(self, cookie: int, whence: int = 0) -> int:
        binary = self.binary
        if whence not in (0, 1, 2):
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        binary.check_seekable()
        if whence == 1:
            if cookie != 0:
                raise io.UnsupportedOperation("can't do nonzero cur-relative seeks")
            cookie = self.tell()
        elif whence == 2:
            if cookie != 0:
                raise io.UnsupportedOperation("can't do nonzero end-relative seeks")
            position = await binary.seek(0, 2)
            self._decoder.reset()
            self._reset_read_ahead()
            if position:
                self._encoder.setstate(0)
            return position
        if cookie < 0:
            raise ValueError(f"negative seek position {cookie}")
        position = cookie & ((1 << _COOKIE_SHIFT) - 1)
        flags = (cookie >> _COOKIE_SHIFT) ^ self._fresh_flags
        await binary.seek(position)
        # Nothing above changed this layer: a cancelled seek leaves the read-ahead valid.
        self._decoder.reset()
        self._decoder.setstate((b"", flags))
        self._reset_read_ahead()
        if cookie == 0:
            self._encoder.reset()
        else:
            self._encoder.setstate(0)
        return cookie

    async def truncate(self, size: int | None = None) -> int:
        self.binary.check_writable()
        cookie = self.tell() if self.binary.seekable else 0
        await self.binary.flush()
        result = await self.binary.truncate(
            cookie & ((1 << _COOKIE_SHIFT) - 1) if size is None else size
        )
        # The read-ahead may describe bytes that are gone now.
        await self.seek(cookie)
        return result


class AsyncFile(Generic[AnyStr]):
    """A file opened by :func:`open_file`: :func:`open`'s file object, with coroutines.

    Binary files (``"b"`` in the mode) read and write :class:`bytes`; text files decode and
    encode with the file's :attr:`encoding`, translating newlines as :class:`io.TextIOWrapper`
    does. Use it from the event loop it was opened on, and from one task at a time: a second
    task calling while the first one waits gets :exc:`anyio.BusyResourceError`.

    **Cancellation.** Cancelling a task that waits in a method never loses or repeats data:

    - a cancelled read returns nothing, and every byte it had read already stays in the file's
      buffer (for a regular file, the position simply does not move), so the next read
      returns it: nothing is skipped, nothing is read twice;
    - a buffered :meth:`write` takes all of its data into the file's buffer before it first
      waits. If it is cancelled while flushing, what is not on disk yet stays in the buffer
      and is written by the next :meth:`flush`, :meth:`seek`, read or :meth:`aclose`: the
      file ends up holding exactly what the :meth:`write` calls were given, cancelled or
      not;
    - an unbuffered write (``buffering=0``) is one kernel write. Cancelled before the kernel
      ran it, it wrote nothing and raises; if the kernel finished it first, it returns the
      count written and the cancellation arrives at the task's next checkpoint;
    - :meth:`seek`, :meth:`truncate` and :meth:`flush` may raise the cancellation after
      their work is done; :meth:`tell` then shows the new position;
    - the position always matches what reached the file and what reads handed over; a file
      opened in append mode writes at the end, wherever the position is;
    - an :func:`open_file` cancelled after the kernel opened the file closes it again;
    - :meth:`aclose` is shielded from cancellation: it flushes and closes the descriptor
      whatever happens (a cancellation takes effect at the task's next checkpoint). If the
      flush fails, the descriptor is still closed and the error raised.

    **Positions in text mode.** :meth:`tell` returns an opaque cookie for :meth:`seek`, as
    :class:`io.TextIOWrapper` does: for UTF-8 and other stateless encodings it is the byte
    offset of the next character; for encodings with a byte order mark it also carries the
    decoder's state. :meth:`seek` takes such cookies, ``seek(0)``, ``seek(0, 1)`` and
    ``seek(0, 2)``; any other cur- or end-relative seek raises :exc:`io.UnsupportedOperation`.
    Unlike :func:`open`, a write after a read in ``"+"`` text mode goes where the reader
    stands (the :meth:`tell` position), not after the characters read ahead.

    Reads served from the buffer do not yield to the event loop.
    """

    def __init__(
        self,
        name: _PathArg,
        mode: str,
        binary: _Buffered,
        text: _Text | None,
    ) -> None:
        self._name = name
        self._mode = mode
        self._binary = binary
        self._text = text
        self._closed = False
        self._busy = False

    # -- state ---------------------------------------------------------------------------------

    @property
    def name(self) -> _PathArg:
        """The path (or descriptor) given to :func:`open_file`."""
        return self._name

    @property
    def mode(self) -> str:
        """The mode, as :func:`open`'s file reports it (``"rb+"`` for ``"r+b"`` and so on)."""
        return self._mode

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`aclose` has begun."""
        return self._closed

    @property
    def encoding(self) -> str | None:
        """The text encoding, or ``None`` for a binary file."""
        return self._text.encoding if self._text is not None else None

    @property
    def errors(self) -> str | None:
        """How encoding errors are handled, or ``None`` for a binary file."""
        return self._text.errors if self._text is not None else None

    @property
    def newlines(self) -> str | tuple[str, ...] | None:
        """The newlines met so far when reading with universal newlines, as
        :attr:`io.TextIOBase.newlines`."""
        if self._text is None:
            return None
        decoder = self._text._decoder
        if isinstance(decoder, io.IncrementalNewlineDecoder):
            newlines: str | tuple[str, ...] | None = decoder.newlines
            return newlines
        return None

    def fileno(self) -> int:
        """The file descriptor."""
        self._check_open()
        return self._binary.fd

    def readable(self) -> bool:
        """Whether the file was opened for reading."""
        self._check_open()
        return self._binary.readable

    def writable(self) -> bool:
        """Whether the file was opened for writing."""
        self._check_open()
        return self._binary.writable

    def seekable(self) -> bool:
        """Whether the file can seek (regular files and block devices)."""
        self._check_open()
        return self._binary.seekable

    def _check_open(self) -> None:
        if self._closed:
            raise _closed_error()

    def _claim(self) -> None:
        if self._closed:
            raise _closed_error()
        if self._busy:
            raise anyio.BusyResourceError("using")
        self._busy = True

    # -- reading -------------------------------------------------------------------------------

    async def read(self, size: int | None = -1) -> AnyStr:
        """Read up to ``size`` bytes (characters in text mode), or to the end of the file.

        :param size: How much at most; negative or ``None`` for everything up to the end. An
            unbuffered binary file makes one read, which may return less.
        :returns: The data; empty at the end of the file.
        :raises io.UnsupportedOperation: The file is not open for reading.
        """
        self._claim()
        try:
            size = -1 if size is None else size
            if self._text is not None:
                result: Any = await self._text.read(size)
            else:
                result = await self._binary.read(size)
            return result  # type: ignore[no-any-return]
        finally:
            self._busy = False

    async def read1(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes with at most one read from the kernel (binary files).

        :param size: How many bytes at most; negative for what one read gives.
        :returns: The bytes; empty at the end of the file.
        :raises io.UnsupportedOperation: The file is a text file, or not open for reading.
        """
        self._claim()
        try:
            if self._text is not None:
                raise io.UnsupportedOperation("read1")
            return await self._binary.read1(size)
        finally:
            self._busy = False

    async def readinto(self, buffer: Buffer) -> int:
        """Read into ``buffer``, up to its length (binary files).

        :param buffer: A writable bytes-like object.
        :returns: How many bytes were stored at its start; ``0`` at the end of the file.
        :raises io.UnsupportedOperation: The file is a text file, or not open for reading.
        """
        self._claim()
        try:
            if self._text is not None:
                raise io.UnsupportedOperation("readinto")
            view = memoryview(buffer).cast("B")
            data = await self._binary.read(len(view))
            view[: len(data)] = data
            return len(data)
        finally:
            self._busy = False

    async def readline(self, size: int = -1) -> AnyStr:
        """Read one line, with its line ending.

        :param size: Return at most this many bytes (characters) of the line; negative for
            the whole line.
        :returns: The line; empty at the end of the file.
        :raises io.UnsupportedOperation: The file is not open for reading.
        """
        self._claim()
        try:
            if self._text is not None:
                result: Any = await self._text.readline(size)
            else:
                result = await self._binary.readline(size)
            return result  # type: ignore[no-any-return]
        finally:
            self._busy = False

    async def readlines(self, hint: int = -1) -> list[AnyStr]:
        """Read lines until the end of the file, or until they hold more than ``hint`` bytes.

        The lines are taken from the file only once all of them have been read, so a
        cancelled call leaves them to be read again.

        :param hint: Stop once the lines read total more than this many bytes (characters);
            ``0`` or negative for no limit.
        :returns: The lines.
        """
        self._claim()
        try:
            if self._text is not None:
                lines: Any = await self._text.readlines(hint)
            else:
                lines = await self._binary.readlines(hint)
            return lines  # type: ignore[no-any-return]
        finally:
            self._busy = False

    def __aiter__(self) -> AsyncIterator[AnyStr]:
        """Iterate over the lines of the file, as :meth:`readline` reads them."""
        return self

    async def __anext__(self) -> AnyStr:
        """The next line.

        :raises StopAsyncIteration: At the end of the file.
        """
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- writing -------------------------------------------------------------------------------

    async def write(self, data: AnyStr | Buffer) -> int:
        """Write ``data`` (a :class:`str` in text mode, a bytes-like object otherwise).

        :returns: How many characters or bytes were taken: all of them, unless the file is
            unbuffered, where it is what the single kernel write wrote.
        :raises io.UnsupportedOperation: The file is not open for writing.
        """
        self._claim()
        try:
            if self._text is not None:
                return await self._text.write(cast("str", data))
            if isinstance(data, str):
                raise TypeError("a bytes-like object is required, not 'str'")
            return await self._binary.write(data)
        finally:
            self._busy = False

    async def writelines(self, lines: Iterable[AnyStr]) -> None:
        """Write every item of ``lines`` (no line endings are added), as one :meth:`write`."""
        items: list[Any] = list(lines)
        joined: Any = "".join(items) if self._text is not None else b"".join(items)
        await self.write(joined)

    async def flush(self) -> None:
        """Write what the file's buffer holds."""
        self._claim()
        try:
            await self._binary.flush()
        finally:
            self._busy = False

    # -- positioning ---------------------------------------------------------------------------

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to ``offset``, relative to the start (``0``), the position (``1``) or the end
        (``2``); see the class description for text files.

        :returns: The new position (a cookie in text mode).
        :raises io.UnsupportedOperation: The file cannot seek, or the seek is one a text file
            cannot make.
        """
        self._claim()
        try:
            if self._text is not None:
                position = await self._text.seek(offset, whence)
            else:
                position = await self._binary.seek(offset, whence)
            # Only once both layers agree on the new position (see
            # AsyncRing._checkpoint_if_cancelled).
            await self._binary.ring._checkpoint_if_cancelled()
            return position
        finally:
            self._busy = False

    async def tell(self) -> int:
        """The position: a byte offset, or in text mode a cookie for :meth:`seek`."""
        self._claim()
        try:
            if self._text is not None:
                return self._text.tell()
            return self._binary.tell()
        finally:
            self._busy = False

    async def truncate(self, size: int | None = None) -> int:
        """Cut (or extend) the file to ``size`` bytes, by default to the position, which does
        not move.

        :returns: The new size.
        :raises io.UnsupportedOperation: The file is not open for writing.
        """
        self._claim()
        try:
            if self._text is not None:
                return await self._text.truncate(size)
            return await self._binary.truncate(size)
        finally:
            self._busy = False

    # -- closing -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Flush, then close the descriptor; shielded from cancellation. Closing twice does
        nothing."""
        if self._closed:
            return
        if self._busy:
            raise anyio.BusyResourceError("using")
        self._busy = True
        try:
            with anyio.CancelScope(shield=True):
                try:
                    await self._binary.flush()
                finally:
                    self._closed = True
                    await _close_fd(self._binary.ring, self._binary.fd)
        finally:
            self._busy = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            warnings.warn(f"unclosed file {self._name!r}", ResourceWarning, stacklevel=2)
            try:
                os.close(self._binary.fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<century_ring.aio.AsyncFile name={self._name!r} mode={self._mode!r}{state}>"


class _OpenFile(Generic[AnyStr]):
    """What :func:`open_file` returns: await it, or use it as ``async with``."""

    def __init__(self, opener: Any) -> None:
        self._opener = opener
        self._file: AsyncFile[AnyStr] | None = None

    def __await__(self) -> Generator[Any, None, AsyncFile[AnyStr]]:
        return cast("Generator[Any, None, AsyncFile[AnyStr]]", self._opener().__await__())

    async def __aenter__(self) -> AsyncFile[AnyStr]:
        self._file = await self
        return self._file

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            await self._file.aclose()


def _parse_mode(mode: str) -> tuple[str, bool]:
    """Check ``mode`` as :func:`open` does; return its kind (``r w a x``) and ``"+"``."""
    if not isinstance(mode, str):
        raise TypeError(f"open_file() argument 'mode' must be str, not {type(mode).__name__}")
    letters = set(mode)
    if letters - set("axrwb+t") or len(mode) > len(letters):
        raise ValueError(f"invalid mode: {mode!r}")
    kinds = [kind for kind in "rwax" if kind in letters]
    if "t" in letters and "b" in letters:
        raise ValueError("can't have text and binary mode at once")
    if len(kinds) != 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    return kinds[0], "+" in letters


def _binary_mode_name(kind: str, updating: bool) -> str:
    """The mode :func:`open`'s binary file reports (``FileIO.mode``)."""
    if kind == "x":
        return "xb+" if updating else "xb"
    if kind == "a":
        return "ab+" if updating else "ab"
    if kind == "r":
        return "rb+" if updating else "rb"
    return "rb+" if updating else "wb"


def _text_encoding(encoding: str | None) -> str:
    if encoding is None:
        encoding = "utf-8" if sys.flags.utf8_mode else "locale"
    if encoding == "locale":
        encoding = locale.getpreferredencoding(False)
    info = codecs.lookup(encoding)
    if not getattr(info, "_is_text_encoding", True):
        raise LookupError(
            f"{encoding!r} is not a text encoding; use codecs.open() to handle arbitrary codecs"
        )
    return encoding


@overload
def open_file(
    path: _PathArg,
    mode: _TextMode = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> _OpenFile[str]: ...
@overload
def open_file(
    path: _PathArg,
    mode: _BinaryMode,
    buffering: int = -1,
    encoding: None = None,
    errors: None = None,
    newline: None = None,
) -> _OpenFile[bytes]: ...
@overload
def open_file(
    path: _PathArg,
    mode: str,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> _OpenFile[Any]: ...
def open_file(
    path: _PathArg,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> _OpenFile[Any]:
    """Open a file as :func:`open` does, on the running event loop's ring.

    Await the result, or use it with ``async with`` (the file is closed at the end)::

        async with century_ring.aio.open_file("notes.txt", "a") as f:
            await f.write("one more line\\n")
        f = await century_ring.aio.open_file("data.bin", "rb")
        header = await f.read(16)
        await f.aclose()

    :param path: The file's path, or a descriptor to take over (closed with the file).
    :param mode: Any mode :func:`open` accepts: one of ``r w a x``, optionally ``+``, and ``b``
        or ``t``.
    :param buffering: ``-1`` for a buffer of the file's block size (or
        :data:`io.DEFAULT_BUFFER_SIZE`), ``0`` for none (binary only), ``1`` for line buffering
        (text only), more for a buffer of that many bytes.
    :param encoding: The text encoding; by default the locale's, or UTF-8 in UTF-8 mode.
    :param errors: How encoding errors are handled (``"strict"`` by default).
    :param newline: ``None``, ``""``, ``"\\n"``, ``"\\r"`` or ``"\\r\\n"``, as for :func:`open`.
    :returns: An awaitable async context manager giving the :class:`AsyncFile`.
    :raises ValueError: The mode or an argument is invalid (raised at once).
    :raises OSError: The file cannot be opened (raised when awaited): for example
        :exc:`FileNotFoundError`, :exc:`FileExistsError` for ``"x"``,
        :exc:`IsADirectoryError`.
    """
    kind, updating = _parse_mode(mode)
    binary = "b" in mode
    if not isinstance(buffering, int):
        raise TypeError(f"'{type(buffering).__name__}' object cannot be interpreted as an integer")
    if binary:
        for argument, value in (("an encoding", encoding), ("an errors", errors)):
            if value is not None:
                raise ValueError(f"binary mode doesn't take {argument} argument")
        if newline is not None:
            raise ValueError("binary mode doesn't take a newline argument")
        if buffering == 1:
            warnings.warn(
                "line buffering (buffering=1) isn't supported in binary mode, the default "
                "buffer size will be used",
                RuntimeWarning,
                stacklevel=2,
            )
        text_encoding = ""
    else:
        if buffering == 0:
            raise ValueError("can't have unbuffered text I/O")
        if newline not in (None, "", "\n", "\r", "\r\n"):
            raise ValueError(f"illegal newline value: {newline!r}")
        if errors is not None and not isinstance(errors, str):
            raise TypeError(f"open_file() argument 'errors' must be str or None, not {errors!r}")
        text_encoding = _text_encoding(encoding)
    if not isinstance(path, int):
        os.fspath(path)  # the TypeError for a bad path, now rather than when awaited

    async def opener() -> AsyncFile[Any]:
        ring = current_ring()
        fd = await _open_fd(ring, path, kind, updating)
        try:
            await ring._checkpoint_if_cancelled()
            event = await ring.statx(fd, "", _AT_EMPTY_PATH, _STATX_MASK)
            info = cast("Any", event.extra)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), _shown(path))
            seekable = stat.S_ISREG(info.st_mode) or stat.S_ISBLK(info.st_mode)
            size = buffering
            if buffering < 0 or buffering == 1:
                blksize = info.st_blksize
                size = blksize if blksize > 1 else io.DEFAULT_BUFFER_SIZE
            position = info.st_size if kind == "a" and seekable else 0
            layer = _Buffered(
                ring,
                fd,
                readable=kind == "r" or updating,
                writable=kind != "r" or updating,
                appending=kind == "a",
                seekable=seekable,
                buffer_size=size,
                position=position,
            )
            text = None
            if not binary:
                line_buffering = buffering == 1 or (buffering < 0 and os.isatty(fd))
                text = _Text(layer, text_encoding, errors or "strict", newline, line_buffering)
            name = _binary_mode_name(kind, updating) if binary else mode
            await ring._checkpoint_if_cancelled()
            return AsyncFile(path if isinstance(path, int) else os.fspath(path), name, layer, text)
        except BaseException:
            await _close_fd(ring, fd)
            raise

    return _OpenFile(opener)


def _shown(path: _PathArg) -> Any:
    return path if isinstance(path, int) else os.fsdecode(os.fspath(path))


async def _open_fd(ring: AsyncRing, path: _PathArg, kind: str, updating: bool) -> int:
    if isinstance(path, int):
        return path
    access = FileOpenMode.READ_WRITE if updating else None
    flags: set[FileOpenFlag] = set()
    if kind == "r":
        access = access or FileOpenMode.READ_ONLY
    else:
        access = access or FileOpenMode.WRITE_ONLY
        flags.add(
            {
                "w": FileOpenFlag.TRUNCATE,
                "a": FileOpenFlag.APPEND,
                "x": FileOpenFlag.MUST_CREATE,
            }[kind]
        )
        flags.add(FileOpenFlag.CREATE_IF_NOT_EXISTS)
    try:
        await ring._checkpoint_if_cancelled()
        # The descriptor is returned straight away: the caller owns it before any checkpoint.
        return (await ring.openat(AT_FDCWD, path, access, flags)).result
    except OSError as error:
        raise OSError(error.errno, error.strerror, _shown(path)) from None
