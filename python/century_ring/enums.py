"""Enumerations accepted by :meth:`IoUring.prep_openat` and :meth:`IoUring.prep_openat2`."""

from __future__ import annotations

import enum
import os

__all__ = ["FileOpenFlag", "FileOpenMode", "ResolveFlag"]


class FileOpenMode(enum.IntEnum):
    """The access mode of a file opened with :meth:`IoUring.prep_openat`.

    Exactly one mode is given per open; it is the ``O_RDONLY`` / ``O_WRONLY`` / ``O_RDWR`` part
    of the flags passed to ``openat(2)``.
    """

    #: Open for reading only (``O_RDONLY``).
    READ_ONLY = os.O_RDONLY
    #: Open for writing only (``O_WRONLY``).
    WRITE_ONLY = os.O_WRONLY
    #: Open for reading and writing (``O_RDWR``).
    READ_WRITE = os.O_RDWR


class FileOpenFlag(enum.IntEnum):
    """Extra behaviour for a file opened with :meth:`IoUring.prep_openat`.

    Pass any number of these as an iterable (a set, list or tuple). ``O_CLOEXEC`` is always added
    by the ring and is therefore not listed here.
    """

    #: Every write goes to the end of the file (``O_APPEND``).
    APPEND = os.O_APPEND
    #: Create the file if it does not exist (``O_CREAT``).
    CREATE_IF_NOT_EXISTS = os.O_CREAT
    #: Create the file, failing with ``EEXIST`` if it already exists (``O_CREAT | O_EXCL``).
    MUST_CREATE = os.O_CREAT | os.O_EXCL
    #: Bypass the page cache (``O_DIRECT``). Offsets and sizes must be block-aligned; the ring
    #: aligns the memory of its own read buffers for you.
    DIRECT = os.O_DIRECT
    #: Fail with ``ENOTDIR`` unless the path is a directory (``O_DIRECTORY``).
    MUST_BE_DIRECTORY = os.O_DIRECTORY
    #: Obtain a location-only descriptor that cannot be read or written (``O_PATH``).
    PATH = os.O_PATH
    #: Do not update the file's access time on reads (``O_NOATIME``).
    NO_ACCESS_TIME = os.O_NOATIME
    #: Fail with ``ELOOP`` if the last path component is a symbolic link (``O_NOFOLLOW``).
    NO_FOLLOW = os.O_NOFOLLOW
    #: Create an unnamed temporary file in the given directory (``O_TMPFILE``). It cannot be
    #: combined with :attr:`CREATE_IF_NOT_EXISTS` or :attr:`MUST_CREATE`.
    TEMPORARY_FILE = os.O_TMPFILE
    #: Truncate an existing regular file to length zero (``O_TRUNC``).
    TRUNCATE = os.O_TRUNC


class ResolveFlag(enum.IntFlag):
    """How :meth:`IoUring.prep_openat2` may resolve a path (``RESOLVE_*`` of ``openat2(2)``).

    Combine them with ``|``.
    """

    #: Fail with ``EXDEV`` rather than cross a mount point (``RESOLVE_NO_XDEV``).
    NO_XDEV = 0x01
    #: Refuse "magic" links such as ``/proc/self/fd/N`` (``RESOLVE_NO_MAGICLINKS``).
    NO_MAGICLINKS = 0x02
    #: Refuse every symbolic link, not just the last component (``RESOLVE_NO_SYMLINKS``).
    NO_SYMLINKS = 0x04
    #: Fail with ``EXDEV`` if the path would escape the starting directory
    #: (``RESOLVE_BENEATH``).
    BENEATH = 0x08
    #: Treat the starting directory as the root, as ``chroot`` would (``RESOLVE_IN_ROOT``).
    IN_ROOT = 0x10
    #: Resolve only from the kernel's caches, failing with ``EAGAIN`` otherwise
    #: (``RESOLVE_CACHED``, Linux 5.12).
    CACHED = 0x20
