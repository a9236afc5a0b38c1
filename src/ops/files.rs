//! File operations: open, read, write, close, vectored I/O, syncing, space management,
//! splicing, and metadata.

use std::ffi::CString;

use io_uring::opcode;
use io_uring::types::{DestinationSlot, Fd, FsyncFlags, OpenHow};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{destination_parts, OpInfo, Prepared, Source};
use crate::mem::caller_buffer::HeldBuffer;
use crate::mem::io_buf::IoBuf;
use crate::mem::lent::{Lent, LentMemory, Report};
use crate::mem::statx::StatxResult;

/// `openat(2)`; owns the path.
pub const OPENAT: OpInfo = OpInfo {
    method: "prep_openat",
    opcode: opcode::OpenAt::CODE,
    opcode_name: "IORING_OP_OPENAT",
    since: "5.6",
};

/// `pread(2)` / `read(2)`; owns the destination buffer.
pub const READ: OpInfo = OpInfo {
    method: "prep_read",
    opcode: opcode::Read::CODE,
    opcode_name: "IORING_OP_READ",
    since: "5.6",
};

/// `pwrite(2)` / `write(2)`; owns a copy of the data.
pub const WRITE: OpInfo = OpInfo {
    method: "prep_write",
    opcode: opcode::Write::CODE,
    opcode_name: "IORING_OP_WRITE",
    since: "5.6",
};

/// `pread(2)` / `read(2)` into the caller's buffer; holds an export of it.
pub const READ_INTO: OpInfo = OpInfo {
    method: "prep_read_into",
    opcode: opcode::Read::CODE,
    opcode_name: "IORING_OP_READ",
    since: "5.6",
};

/// `close(2)`; owns nothing.
pub const CLOSE: OpInfo = OpInfo {
    method: "prep_close",
    opcode: opcode::Close::CODE,
    opcode_name: "IORING_OP_CLOSE",
    since: "5.6",
};

/// With `file_index`, the file goes into that fixed slot instead of the descriptor table, and
/// `O_CLOEXEC` is dropped: the kernel refuses it for a slot, which no `exec` can inherit.
pub fn openat(
    dir_fd: i32,
    path: CString,
    flags: i32,
    mode: u32,
    file_index: Option<DestinationSlot>,
) -> Prepared {
    let flags = if file_index.is_some() {
        flags & !libc::O_CLOEXEC
    } else {
        flags
    };
    let entry = opcode::OpenAt::new(Fd(dir_fd), path.as_ptr())
        .flags(flags)
        .mode(mode)
        .file_index(file_index)
        .build();
    Prepared {
        op: &OPENAT,
        entry,
        owned: Lent::Path(path),
    }
}

/// `offset` is `u64::MAX` for the file's current position.
pub fn read(fd: i32, destination: IoBuf, offset: u64) -> Prepared {
    let entry = opcode::Read::new(Fd(fd), destination.as_mut_ptr(), capacity_u32(&destination))
        .offset(offset)
        .build();
    Prepared {
        op: &READ,
        entry,
        owned: Lent::ReadBuffer(destination),
    }
}

pub fn write(fd: i32, source: Source, offset: u64) -> Prepared {
    let (ptr, len, owned) = source.into_parts();
    let entry = opcode::Write::new(Fd(fd), ptr, len).offset(offset).build();
    Prepared {
        op: &WRITE,
        entry,
        owned,
    }
}

/// `offset` is `u64::MAX` for the file's current position.
pub fn read_into(fd: i32, destination: HeldBuffer, offset: u64) -> Prepared {
    let (ptr, len, owned) = destination_parts(destination);
    let entry = opcode::Read::new(Fd(fd), ptr, len).offset(offset).build();
    Prepared {
        op: &READ_INTO,
        entry,
        owned,
    }
}

pub fn close(fd: i32) -> Prepared {
    Prepared {
        op: &CLOSE,
        entry: opcode::Close::new(Fd(fd)).build(),
        owned: Lent::Nothing,
    }
}

/// Buffers are capped at `MAX_BYTE_COUNT` when made, so this never truncates.
pub(crate) fn capacity_u32(buf: &IoBuf) -> u32 {
    u32::try_from(buf.capacity()).expect("buffer sizes are capped at 2**31 - 1")
}

/// `readv(2)` / `preadv(2)`; owns the iovecs and their buffers.
pub const READV: OpInfo = OpInfo {
    method: "prep_readv",
    opcode: opcode::Readv::CODE,
    opcode_name: "IORING_OP_READV",
    since: "5.1",
};

/// `writev(2)` / `pwritev(2)`; owns the iovecs and copies of the data.
pub const WRITEV: OpInfo = OpInfo {
    method: "prep_writev",
    opcode: opcode::Writev::CODE,
    opcode_name: "IORING_OP_WRITEV",
    since: "5.1",
};

/// `fsync(2)` / `fdatasync(2)`; owns nothing.
pub const FSYNC: OpInfo = OpInfo {
    method: "prep_fsync",
    opcode: opcode::Fsync::CODE,
    opcode_name: "IORING_OP_FSYNC",
    since: "5.1",
};

/// `fallocate(2)`; owns nothing.
pub const FALLOCATE: OpInfo = OpInfo {
    method: "prep_fallocate",
    opcode: opcode::Fallocate::CODE,
    opcode_name: "IORING_OP_FALLOCATE",
    since: "5.6",
};

/// `ftruncate(2)`; owns nothing.
pub const FTRUNCATE: OpInfo = OpInfo {
    method: "prep_ftruncate",
    opcode: opcode::Ftruncate::CODE,
    opcode_name: "IORING_OP_FTRUNCATE",
    since: "6.9",
};

/// `posix_fadvise(2)`; owns nothing.
pub const FADVISE: OpInfo = OpInfo {
    method: "prep_fadvise",
    opcode: opcode::Fadvise::CODE,
    opcode_name: "IORING_OP_FADVISE",
    since: "5.6",
};

/// `splice(2)`; owns nothing.
pub const SPLICE: OpInfo = OpInfo {
    method: "prep_splice",
    opcode: opcode::Splice::CODE,
    opcode_name: "IORING_OP_SPLICE",
    since: "5.7",
};

/// `tee(2)`; owns nothing.
pub const TEE: OpInfo = OpInfo {
    method: "prep_tee",
    opcode: opcode::Tee::CODE,
    opcode_name: "IORING_OP_TEE",
    since: "5.8",
};

/// `sync_file_range(2)`; owns nothing.
pub const SYNC_FILE_RANGE: OpInfo = OpInfo {
    method: "prep_sync_file_range",
    opcode: opcode::SyncFileRange::CODE,
    opcode_name: "IORING_OP_SYNC_FILE_RANGE",
    since: "5.2",
};

/// `openat2(2)`; owns the path and the `open_how`.
pub const OPENAT2: OpInfo = OpInfo {
    method: "prep_openat2",
    opcode: opcode::OpenAt2::CODE,
    opcode_name: "IORING_OP_OPENAT2",
    since: "5.6",
};

/// `statx(2)`; owns the path and the `struct statx` the kernel fills.
pub const STATX: OpInfo = OpInfo {
    method: "prep_statx",
    opcode: opcode::Statx::CODE,
    opcode_name: "IORING_OP_STATX",
    since: "5.6",
};

/// Buffers and the iovec array that points at them, owned together by a vectored read or
/// write. The iovecs live in a boxed slice, so their address is stable once built.
pub struct Vectored {
    iovecs: Box<[libc::iovec]>,
    buffers: Vec<IoBuf>,
}

// SAFETY: the iovecs only point into `buffers`, which this struct owns; nothing else holds
// those pointers on the Rust side, so moving the whole to another thread is sound.
unsafe impl Send for Vectored {}

impl Vectored {
    pub fn new(buffers: Vec<IoBuf>) -> Self {
        let iovecs = buffers
            .iter()
            .map(|buf| libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.capacity(),
            })
            .collect();
        Vectored { iovecs, buffers }
    }
}

/// A vectored write's buffers are only kept alive.
impl LentMemory for Vectored {}

/// The buffers of a vectored read, which its completion reports.
struct VectoredRead(Vectored);

impl LentMemory for VectoredRead {
    /// A vectored read's data: the first `result` bytes across the buffers, in order.
    fn finish(self: Box<Self>, py: Python<'_>, result: i32) -> PyResult<Report> {
        if result < 0 {
            return Ok(Report::default());
        }
        let mut left = result as usize;
        let total = PyBytes::new_with(py, left, |out| {
            let mut at = 0;
            for buf in &self.0.buffers {
                let take = left.min(buf.capacity());
                // SAFETY: the kernel filled buffers in order; `take` of this one's bytes are
                // among the `result` bytes it wrote.
                out[at..at + take].copy_from_slice(unsafe { buf.filled(take) });
                at += take;
                left -= take;
            }
            Ok(())
        })?;
        Ok(Report {
            buffer: Some(total.unbind()),
            extra: None,
        })
    }
}

pub fn readv(fd: i32, buffers: Vec<IoBuf>, offset: u64) -> Prepared {
    let vectored = Box::new(VectoredRead(Vectored::new(buffers)));
    let entry = opcode::Readv::new(
        Fd(fd),
        vectored.0.iovecs.as_ptr(),
        vectored.0.iovecs.len() as u32,
    )
    .offset(offset)
    .build();
    Prepared {
        op: &READV,
        entry,
        owned: Lent::Other(vectored),
    }
}

pub fn writev(fd: i32, buffers: Vec<IoBuf>, offset: u64) -> Prepared {
    let vectored = Vectored::new(buffers);
    let entry = opcode::Writev::new(
        Fd(fd),
        vectored.iovecs.as_ptr(),
        vectored.iovecs.len() as u32,
    )
    .offset(offset)
    .build();
    Prepared {
        op: &WRITEV,
        entry,
        owned: Lent::Other(Box::new(vectored)),
    }
}

pub fn fsync(fd: i32, data_only: bool) -> Prepared {
    let flags = if data_only {
        FsyncFlags::DATASYNC
    } else {
        FsyncFlags::empty()
    };
    Prepared {
        op: &FSYNC,
        entry: opcode::Fsync::new(Fd(fd)).flags(flags).build(),
        owned: Lent::Nothing,
    }
}

pub fn fallocate(fd: i32, offset: u64, length: u64, mode: i32) -> Prepared {
    Prepared {
        op: &FALLOCATE,
        entry: opcode::Fallocate::new(Fd(fd), length)
            .offset(offset)
            .mode(mode)
            .build(),
        owned: Lent::Nothing,
    }
}

pub fn ftruncate(fd: i32, length: u64) -> Prepared {
    Prepared {
        op: &FTRUNCATE,
        entry: opcode::Ftruncate::new(Fd(fd), length).build(),
        owned: Lent::Nothing,
    }
}

pub fn fadvise(fd: i32, offset: u64, length: i64, advice: i32) -> Prepared {
    Prepared {
        op: &FADVISE,
        entry: opcode::Fadvise::new(Fd(fd), length, advice)
            .offset(offset)
            .build(),
        owned: Lent::Nothing,
    }
}

/// Offsets are `-1` for "no offset" (required for pipes).
pub fn splice(
    fd_in: i32,
    offset_in: i64,
    fd_out: i32,
    offset_out: i64,
    length: u32,
    flags: u32,
) -> Prepared {
    Prepared {
        op: &SPLICE,
        entry: opcode::Splice::new(Fd(fd_in), offset_in, Fd(fd_out), offset_out, length)
            .flags(flags)
            .build(),
        owned: Lent::Nothing,
    }
}

pub fn tee(fd_in: i32, fd_out: i32, length: u32, flags: u32) -> Prepared {
    Prepared {
        op: &TEE,
        entry: opcode::Tee::new(Fd(fd_in), Fd(fd_out), length)
            .flags(flags)
            .build(),
        owned: Lent::Nothing,
    }
}

pub fn sync_file_range(fd: i32, offset: u64, length: u32, flags: u32) -> Prepared {
    Prepared {
        op: &SYNC_FILE_RANGE,
        entry: opcode::SyncFileRange::new(Fd(fd), length)
            .offset(offset)
            .flags(flags)
            .build(),
        owned: Lent::Nothing,
    }
}

/// What `openat2` points at.
struct OpenAt2Args {
    path: CString,
    how: Box<OpenHow>,
}

impl LentMemory for OpenAt2Args {}

/// With `file_index`, the file goes into that fixed slot instead of the descriptor table (and
/// `O_CLOEXEC` is dropped, as for [`openat`]).
pub fn openat2(
    dir_fd: i32,
    path: CString,
    flags: u64,
    mode: u64,
    resolve: u64,
    file_index: Option<DestinationSlot>,
) -> Prepared {
    let flags = if file_index.is_some() {
        flags & !(libc::O_CLOEXEC as u64)
    } else {
        flags
    };
    let args = Box::new(OpenAt2Args {
        path,
        how: Box::new(OpenHow::new().flags(flags).mode(mode).resolve(resolve)),
    });
    let entry = opcode::OpenAt2::new(Fd(dir_fd), args.path.as_ptr(), &*args.how)
        .file_index(file_index)
        .build();
    Prepared {
        op: &OPENAT2,
        entry,
        owned: Lent::Other(args),
    }
}

/// What `statx` points at: the path, and the buffer the kernel fills.
struct StatxArgs {
    path: CString,
    result: Box<libc::statx>,
}

impl LentMemory for StatxArgs {
    fn finish(self: Box<Self>, py: Python<'_>, result: i32) -> PyResult<Report> {
        if result < 0 {
            return Ok(Report::default());
        }
        let parsed = Py::new(py, StatxResult::from(&*self.result))?;
        Ok(Report {
            buffer: None,
            extra: Some(parsed.into_any()),
        })
    }
}

pub fn statx(dir_fd: i32, path: CString, flags: i32, mask: u32) -> Prepared {
    // SAFETY: `struct statx` is plain old data; all-zero is a valid value.
    let mut args = Box::new(StatxArgs {
        path,
        result: Box::new(unsafe { std::mem::zeroed() }),
    });
    let buffer: *mut libc::statx = &mut *args.result;
    let entry = opcode::Statx::new(Fd(dir_fd), args.path.as_ptr(), buffer.cast())
        .flags(flags)
        .mask(mask)
        .build();
    Prepared {
        op: &STATX,
        entry,
        owned: Lent::Other(args),
    }
}
