//! `io_uring_enter(2)`: submitting and waiting, with a relative timeout passed through
//! `IORING_ENTER_EXT_ARG`, so that no timeout entry is ever left behind.

use std::io;
use std::time::Duration;

use io_uring::EnterFlags;

/// A `Duration` as the kernel's `timespec`.
pub fn timespec(duration: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: duration.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: duration.subsec_nanos() as libc::c_long,
    }
}

/// `struct io_uring_getevents_arg` from `<linux/io_uring.h>`.
#[repr(C)]
struct GetEventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `io_uring_enter(2)` on the ring `fd`. Takes only plain values, so it can run with the GIL
/// released.
pub fn enter(
    fd: i32,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    timeout: Option<&libc::timespec>,
) -> io::Result<u32> {
    let arg = timeout.map(|ts| GetEventsArg {
        sigmask: 0,
        sigmask_sz: 0,
        min_wait_usec: 0,
        ts: ts as *const libc::timespec as u64,
    });
    let (flags, arg_ptr, arg_size) = match &arg {
        Some(arg) => (
            flags | EnterFlags::EXT_ARG.bits(),
            arg as *const GetEventsArg as usize,
            size_of::<GetEventsArg>(),
        ),
        None => (flags, 0, 0),
    };
    // SAFETY: io_uring_enter reads `arg_size` bytes at `arg_ptr` (a live GetEventsArg whose
    // `ts` points at a live timespec, both outliving the call) or nothing when it is null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            to_submit,
            min_complete,
            flags,
            arg_ptr,
            arg_size,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as u32)
    }
}
