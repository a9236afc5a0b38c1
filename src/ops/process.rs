//! Process operations: waiting for a child.

use io_uring::opcode;
use pyo3::prelude::*;

use super::Prepared;
use crate::base::objects;
use crate::mem::lent::{Lent, LentMemory, Report};

operations! {
    /// Waits for a child process to change state; the kernel fills a `siginfo_t`.
    WAITID = "waitid": WaitId IORING_OP_WAITID since "6.7", mirrors "waitid(2)",
        owns ["siginfo_t"];
}

struct WaitIdResult(libc::siginfo_t);

// SAFETY: siginfo_t is plain data the kernel fills; its pointer fields (for other signal kinds)
// are never dereferenced here.
unsafe impl Send for WaitIdResult {}

impl LentMemory for WaitIdResult {
    /// An `os.waitid_result`, as `os.waitid` returns, or `None` when no child had changed state
    /// (`WNOHANG`).
    fn report(&self, py: Python<'_>, result: i32) -> PyResult<Report> {
        let info = &self.0;
        // SAFETY: for waitid the kernel fills the SIGCHLD layout, which these accessors read.
        let (pid, uid, status) = unsafe { (info.si_pid(), info.si_uid(), info.si_status()) };
        if result < 0 || pid == 0 {
            return Ok(Report::default());
        }
        let waitid_result = py.import("os")?.getattr("waitid_result")?;
        let fields = objects::tuple(
            py,
            [
                objects::int(py, pid.into())?.into_any(),
                objects::int(py, uid.into())?.into_any(),
                objects::int(py, info.si_signo.into())?.into_any(),
                objects::int(py, status.into())?.into_any(),
                objects::int(py, info.si_code.into())?.into_any(),
            ],
        )?;
        let parsed = waitid_result.call1(objects::tuple(py, [fields.into_any()])?)?;
        Ok(Report {
            buffer: None,
            extra: Some(parsed.unbind()),
        })
    }
}

pub fn waitid(idtype: libc::idtype_t, id: libc::id_t, options: i32) -> Prepared {
    // Boxed first, pointed into second: the contents never move after this.
    // SAFETY: siginfo_t is plain old data; all-zero is a valid value (and reads as "no child").
    let mut info = Box::new(WaitIdResult(unsafe { std::mem::zeroed() }));
    // The kernel writes the siginfo_t: point at it for writing.
    let infop: *mut libc::siginfo_t = &raw mut info.0;
    let entry = opcode::WaitId::new(idtype, id, options)
        .infop(infop)
        .build();
    Prepared {
        op: &WAITID,
        entry,
        lent: Lent::Other(info),
    }
}
