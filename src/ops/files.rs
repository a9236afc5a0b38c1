//! File operations: open, read, write, close.

use std::ffi::CString;

use io_uring::opcode;
use io_uring::types::Fd;

use super::{OpInfo, Prepared};
use crate::buffer::IoBuf;
use crate::inflight::Owned;

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

/// `close(2)`; owns nothing.
pub const CLOSE: OpInfo = OpInfo {
    method: "prep_close",
    opcode: opcode::Close::CODE,
    opcode_name: "IORING_OP_CLOSE",
    since: "5.6",
};

pub fn openat(dir_fd: i32, path: CString, flags: i32, mode: u32) -> Prepared {
    let entry = opcode::OpenAt::new(Fd(dir_fd), path.as_ptr())
        .flags(flags)
        .mode(mode)
        .build();
    Prepared {
        op: &OPENAT,
        entry,
        owned: Owned::Path(path),
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
        owned: Owned::Destination(destination),
    }
}

pub fn write(fd: i32, source: IoBuf, offset: u64) -> Prepared {
    let entry = opcode::Write::new(Fd(fd), source.as_mut_ptr(), capacity_u32(&source))
        .offset(offset)
        .build();
    Prepared {
        op: &WRITE,
        entry,
        owned: Owned::Source(source),
    }
}

pub fn close(fd: i32) -> Prepared {
    Prepared {
        op: &CLOSE,
        entry: opcode::Close::new(Fd(fd)).build(),
        owned: Owned::Nothing,
    }
}

/// Buffers are capped at `MAX_BYTE_COUNT` when made, so this never truncates.
pub(crate) fn capacity_u32(buf: &IoBuf) -> u32 {
    u32::try_from(buf.capacity()).expect("buffer sizes are capped at 2**31 - 1")
}
