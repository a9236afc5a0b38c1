"""A user whose system refuses io_uring gets an OSError that says why, not a crash."""

from __future__ import annotations

import errno
import os
import platform
import subprocess
import sys
import textwrap

import pytest

# io_uring_setup is system call 425 in the unified table every 64-bit Linux port uses.
IO_URING_SETUP = 425

CHILD = textwrap.dedent(
    """
    import ctypes, struct, sys

    def deny_io_uring_setup(nr, errno_value):
        # A classic BPF seccomp filter: load the syscall number, return ERRNO(errno_value)
        # for io_uring_setup, allow everything else.
        ret_errno = 0x00050000 | errno_value
        ret_allow = 0x7FFF0000
        program = b"".join(
            struct.pack("HBBI", *insn)
            for insn in [
                (0x20, 0, 0, 0),        # ld  [seccomp_data.nr]
                (0x15, 0, 1, nr),       # jeq nr ? next : skip one
                (0x06, 0, 0, ret_errno),
                (0x06, 0, 0, ret_allow),
            ]
        )
        filters = ctypes.create_string_buffer(program)

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        prog = SockFprog(len(program) // 8, ctypes.addressof(filters))
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
        assert libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        rc = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
        assert rc == 0, ctypes.get_errno()

    deny_io_uring_setup(int(sys.argv[1]), int(sys.argv[2]))
    import century_ring
    try:
        century_ring.make_io_ring()
    except OSError as error:
        print(type(error).__name__, error.errno, error)
        sys.exit(0)
    print("no error")
    sys.exit(1)
    """
)

pytestmark = pytest.mark.skipif(
    platform.machine() not in {"x86_64", "aarch64"},
    reason="the seccomp filter here hard-codes io_uring_setup's number on x86_64/aarch64",
)


def run_with_io_uring_denied(errno_value: int) -> str:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(IO_URING_SETUP), str(errno_value)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_seccomp_eperm_gives_a_permission_error_naming_the_cause() -> None:
    out = run_with_io_uring_denied(errno.EPERM)
    assert out.startswith(f"PermissionError {errno.EPERM} "), out
    assert "seccomp" in out, out


def test_seccomp_enosys_says_io_uring_is_missing_or_hidden() -> None:
    out = run_with_io_uring_denied(errno.ENOSYS)
    assert out.startswith(f"OSError {errno.ENOSYS} "), out
    assert "no io_uring" in out, out
    assert "Linux 5.11" in out, out


SYSCTL = "/proc/sys/kernel/io_uring_disabled"


def test_io_uring_disabled_sysctl_is_named_in_the_error() -> None:
    """With kernel.io_uring_disabled=2 (root only; restored at once) the error says so."""
    if os.environ.get("CENTURY_RING_TEST_SYSCTL") != "1":
        pytest.skip(
            "flips a machine-wide sysctl for a moment, which breaks io_uring for every other "
            "process meanwhile; set CENTURY_RING_TEST_SYSCTL=1 to run it (CI does)"
        )
    if not os.path.exists(SYSCTL) or not os.access(SYSCTL, os.W_OK):
        pytest.skip("needs a writable kernel.io_uring_disabled (root, Linux 6.6+)")
    with open(SYSCTL) as f:
        before = f.read().strip()
    try:
        with open(SYSCTL, "w") as f:
            f.write("2")
        result = subprocess.run(
            [sys.executable, "-c", "import century_ring; century_ring.make_io_ring()"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        with open(SYSCTL, "w") as f:
            f.write(before)
    assert result.returncode != 0
    assert "PermissionError" in result.stderr, result.stderr
    assert "kernel.io_uring_disabled = 2" in result.stderr, result.stderr
