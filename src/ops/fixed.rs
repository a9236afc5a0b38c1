//! Operations on registered (fixed) files and buffers: reads and writes through a registered
//! buffer, closing a fixed slot, and turning a fixed slot back into a regular descriptor.

use std::sync::Arc;

use io_uring::opcode;
use io_uring::types::{Fd, Fixed};

use super::{files, Prepared};
use crate::mem::lent::Lent;
use crate::resources::registered_buffers::RegisteredBuffers;

operations! {
    /// Reads into a registered buffer.
    READ_FIXED = "read_fixed": ReadFixed IORING_OP_READ_FIXED since "5.1", mirrors "read(2)",
        owns ["registered buffers"];
    /// Writes from a registered buffer.
    WRITE_FIXED = "write_fixed": WriteFixed IORING_OP_WRITE_FIXED since "5.1",
        mirrors "write(2)", owns ["registered buffers"];
    /// Installs the file of a registered slot as a regular descriptor.
    FIXED_FD_INSTALL = "fixed_fd_install": FixedFdInstall IORING_OP_FIXED_FD_INSTALL
        since "6.8", owns [];
}

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
        lent: Lent::Shared(buffers),
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
        lent: Lent::Shared(buffers),
    }
}

/// `IORING_OP_CLOSE` of a fixed slot (`file_index`, Linux 5.15). The kernel refuses
/// `IOSQE_FIXED_FILE` on a close, so the slot goes in `file_index` instead.
pub fn close_slot(slot: u32) -> Prepared {
    Prepared {
        op: &files::CLOSE,
        entry: opcode::Close::new(Fixed(slot)).build(),
        lent: Lent::Nothing,
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
        lent: Lent::Nothing,
    }
}
