//! The one place where failures become Python exceptions, each saying what went wrong and why.

use std::io;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// Every method of a closed ring raises this.
pub fn closed() -> PyErr {
    PyValueError::new_err("The ring is closed")
}

/// Raised when a second thread (or a signal handler re-entering the ring) calls into a ring
/// while another call holds it, typically a blocking wait.
pub fn busy() -> PyErr {
    PyRuntimeError::new_err(
        "The ring is busy in another thread (or in a call this one re-entered from a signal \
         handler): IoUring calls cannot overlap, and a blocking wait holds the ring until it \
         returns. Serialise access with a lock, and let the waiting thread queue the work.",
    )
}

/// Raised when a child process touches the ring of the parent it was forked from.
pub fn forked(owner_pid: u32) -> PyErr {
    PyRuntimeError::new_err(format!(
        "This IoUring belongs to process {owner_pid}, and this process is a fork of it: a \
         forked child cannot use its parent's ring. Create a new ring in the child with \
         make_io_ring()."
    ))
}

pub fn skip_success_with_owned_data() -> PyErr {
    PyValueError::new_err("Can't use 'SKIP_SUCCESS' on submissions with owned data")
}

/// `skip_success` on a linked entry: when such an entry fails, the kernel posts no completion
/// for the entries linked after it (`REQ_F_SKIP_LINK_CQES`), so the ring could never release
/// their memory, and closing it would wait for them in vain.
pub fn skip_success_with_link() -> PyErr {
    PyValueError::new_err(
        "Can't use 'SKIP_SUCCESS' together with 'IO_LINK' or 'IO_HARDLINK': if this entry \
         failed, the kernel would post no completion for the entries linked after it, and \
         their memory could never be released; put skip_success only on the last entry of a \
         chain",
    )
}

/// An operation that must not follow `io_drain` (see `ops::Restriction::DrainedRing`).
pub fn drained_ring(method: &str) -> PyErr {
    PyValueError::new_err(format!(
        "{method} can't be used with 'IO_DRAIN', nor on a ring that has ever queued an entry \
         with io_drain: the kernel then never starts it and it cannot be cancelled (observed \
         on Linux 6.18). Order it with io_link instead, or use a ring that does not use \
         io_drain"
    ))
}

/// The ring's descriptor no longer refers to the ring: the kernel took none of its entries.
pub fn ring_fd_lost(fd: i32, pending: u32) -> PyErr {
    PyOSError::new_err((
        libc::EBADF,
        format!(
            "the kernel took none of the {pending} queued entries: file descriptor {fd} no \
             longer refers to this ring (was it closed with os.close(ring.fileno())?); close \
             the ring and make a new one"
        ),
    ))
}

/// An `OSError` (Python picks the subclass from the errno) whose message adds `context`.
pub fn os_error(err: &io::Error, context: &str) -> PyErr {
    let code = err.raw_os_error().unwrap_or(libc::EIO);
    PyOSError::new_err((code, format!("{context}: {}", strerror(code))))
}

/// Failures of `io_uring_enter`, with advice for the errors a user can act on.
pub fn enter_error(err: &io::Error) -> PyErr {
    match err.raw_os_error() {
        Some(libc::EEXIST) => PyOSError::new_err((
            libc::EEXIST,
            "io_uring_enter refused this thread: the ring was made with single_issuer=True, so \
             only the thread that created it may submit. Create it with \
             make_io_ring(single_issuer=False) to use it from several threads.",
        )),
        _ => os_error(err, "io_uring_enter failed"),
    }
}

/// Failures of `io_uring_setup`, explaining the usual reasons a system refuses io_uring.
pub fn setup_error(err: &io::Error) -> PyErr {
    let code = err.raw_os_error().unwrap_or(libc::EIO);
    let why = match code {
        libc::EPERM => match read_io_uring_disabled() {
            Some(2) => {
                "io_uring is disabled on this system (sysctl kernel.io_uring_disabled = 2); \
                        an administrator can enable it with sysctl kernel.io_uring_disabled=0"
                    .to_owned()
            }
            Some(1) => "io_uring is restricted on this system (sysctl kernel.io_uring_disabled = \
                        1): only members of the group in kernel.io_uring_group may create rings"
                .to_owned(),
            _ => "io_uring is not permitted for this process; a seccomp filter (container \
                  runtimes block io_uring by default) or a security module denies \
                  io_uring_setup"
                .to_owned(),
        },
        libc::ENOSYS => "this kernel has no io_uring (Century Ring needs Linux 5.11 or later), \
                         or a seccomp filter hides the io_uring_setup system call"
            .to_owned(),
        libc::ENOMEM => format!(
            "the kernel could not allocate the ring, or the process's locked-memory limit is \
             used up: for processes without CAP_IPC_LOCK, Linux charges ring memory to \
             RLIMIT_MEMLOCK (before 5.12, and again in recent kernels; currently {}). Raise \
             it (ulimit -l), close rings no longer needed, or use fewer entries",
            memlock_limit()
        ),
        libc::EMFILE | libc::ENFILE => {
            "no file descriptor is left for the ring (open-file limit reached)".to_owned()
        }
        libc::EINVAL => "the kernel rejected the ring's parameters".to_owned(),
        _ => strerror(code),
    };
    PyOSError::new_err((code, format!("io_uring_setup failed: {why}")))
}

/// The soft RLIMIT_MEMLOCK, for the message above.
fn memlock_limit() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return "unknown".to_owned();
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        format!("{} bytes", limit.rlim_cur)
    }
}

fn read_io_uring_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub fn strerror(code: i32) -> String {
    io::Error::from_raw_os_error(code)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A bad argument: the message names it and says what was expected.
pub fn bad_arg(message: String) -> PyErr {
    PyValueError::new_err(message)
}
