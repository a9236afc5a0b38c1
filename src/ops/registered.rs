//! Operations on registered (fixed) files and buffers: reads and writes through a registered
//! buffer, closing a fixed slot, and turning a fixed slot back into a regular descriptor.

use std::sync::Arc;

use io_uring::opcode;
use io_uring::types::{Fd, Fixed};

use super::{files, OpInfo, Prepared};
use crate::mem::lent::Lent;
use crate::resources::registered_buffers::RegisteredBuffers;

/// `pread(2)` / `read(2)` into a registered buffer; holds a reference to the registration.
pub const READ_FIXED: OpInfo = OpInfo {
    method: "prep_read_fixed",
    opcode: opcode::ReadFixed::CODE,
    opcode_name: "IORING_OP_READ_FIXED",
    since: "5.1",
};

/// `pwrite(2)` / `write(2)` from a registered buffer; holds a reference to the registration.
pub const WRITE_FIXED: OpInfo = OpInfo {
    method: "prep_write_fixed",
    opcode: opcode::WriteFixed::CODE,
    opcode_name: "IORING_OP_WRITE_FIXED",
    since: "5.1",
};

/// Installs the file in a fixed slot as a regular descriptor; owns nothing.
pub const FIXED_FD_INSTALL: OpInfo = OpInfo {
    method: "prep_fixed_fd_install",
    opcode: opcode::FixedFdInstall::CODE,
    opcode_name: "IORING_OP_FIXED_FD_INSTALL",
    since: "6.8",
};

/// The address of byte `start` of registered buffer `index`, which the caller has checked
/// (`start + count` is within the buffer).
fn address(buffers: &RegisteredBuffers, index: u16, start: usize) -> *mut u8 {
    let buffer = buffers.get(index).expect("the index was checked");
    buffer.as_ptr().wrapping_add(start)
}

/// `offset` is `u64::MAX` for the file's current position. `start + count` is within
/// registered buffer `index` (checked by `registered::fixed_span`).
pub fn read_fixed(
    fd: i32,
    buffers: Arc<RegisteredBuffers>,
    index: u16,
    start: usize,
    count: u32,
    offset: u64,
) -> Prepared {
    let ptr = address(&buffers, index, start);
    Prepared {
        op: &READ_FIXED,
        entry: opcode::ReadFixed::new(Fd(fd), ptr, count, index)
            .offset(offset)
            .build(),
        owned: Lent::Shared(buffers),
    }
}

/// As [`read_fixed`], the other way.
pub fn write_fixed(
    fd: i32,
    buffers: Arc<RegisteredBuffers>,
    index: u16,
    start: usize,
    count: u32,
    offset: u64,
) -> Prepared {
    let ptr = address(&buffers, index, start);
    Prepared {
        op: &WRITE_FIXED,
        entry: opcode::WriteFixed::new(Fd(fd), ptr, count, index)
            .offset(offset)
            .build(),
        owned: Lent::Shared(buffers),
    }
}

/// `IORING_OP_CLOSE` of a fixed slot (`file_index`, Linux 5.15). The kernel refuses
/// `IOSQE_FIXED_FILE` on a close, so the slot goes in `file_index` instead.
pub fn close_slot(slot: u32) -> Prepared {
    Prepared {
        op: &files::CLOSE,
        entry: opcode::Close::new(Fixed(slot)).build(),
        owned: Lent::Nothing,
    }
}

/// `IORING_FIXED_FD_NO_CLOEXEC`: the installed descriptor does not get `O_CLOEXEC`.
const FIXED_FD_NO_CLOEXEC: u32 = 1;

/// `cloexec=false` passes `IORING_FIXED_FD_NO_CLOEXEC`.
pub fn fixed_fd_install(slot: u32, cloexec: bool) -> Prepared {
    let flags = if cloexec { 0 } else { FIXED_FD_NO_CLOEXEC };
    Prepared {
        op: &FIXED_FD_INSTALL,
        entry: opcode::FixedFdInstall::new(Fixed(slot), flags).build(),
        owned: Lent::Nothing,
    }
}
