//! One file per family of operations. Each op is a small function that builds its SQE and
//! hands back what the SQE points into; the ring adds `user_data` and flags, and keeps the
//! owned memory alive until the completion is reaped.

pub mod files;
pub mod fs;
pub mod misc;
pub mod net;
pub mod process;
pub mod registered;

use io_uring::squeue::Entry;

use crate::mem::caller_buffer::HeldBuffer;
use crate::mem::io_buf::IoBuf;
use crate::mem::lent::Lent;

/// The memory a write or send reads: the ring's copy, or a span of the caller's buffer.
pub enum Source {
    Copy(IoBuf),
    Borrowed {
        held: HeldBuffer,
        start: usize,
        count: usize,
    },
}

impl Source {
    /// The address and length to put in the SQE, and what the operation must own for them to
    /// stay valid.
    fn into_parts(self) -> (*const u8, u32, Lent) {
        match self {
            Source::Copy(buf) => (
                buf.as_mut_ptr(),
                capped_u32(buf.capacity()),
                Lent::WriteBuffer(buf),
            ),
            Source::Borrowed { held, start, count } => {
                // SAFETY: `start + count <= held.len()` was checked when the span was made, so
                // the pointer stays inside the exported memory (or one past its end if empty).
                let ptr = unsafe { held.as_ptr().add(start) };
                (ptr, capped_u32(count), Lent::CallerBuffer(held))
            }
        }
    }
}

/// A caller's buffer the kernel writes into in place: its address, its length (capped at what
/// one read or receive can move), and the export that keeps it valid.
fn destination_parts(held: HeldBuffer) -> (*mut u8, u32, Lent) {
    (
        held.as_ptr(),
        capped_u32(held.len()),
        Lent::CallerBuffer(held),
    )
}

/// A length for an SQE's 32-bit `len`, capped at Linux's `MAX_RW_COUNT` (a read or write never
/// moves more in one call).
fn capped_u32(len: usize) -> u32 {
    len.min(crate::base::args::MAX_RW_COUNT) as u32
}

/// What the library needs to know about an io_uring opcode it offers.
pub struct OpInfo {
    /// The `IoUring` method that queues it.
    pub method: &'static str,
    pub opcode: u8,
    /// The kernel's name for it, for error messages.
    pub opcode_name: &'static str,
    /// The Linux version that added it.
    pub since: &'static str,
}

/// An SQE ready to queue, and the memory it points into.
pub struct Prepared {
    pub op: &'static OpInfo,
    pub entry: Entry,
    pub owned: Lent,
}

/// Every operation the library offers, in the order `probe()` lists them.
pub const ALL: &[&OpInfo] = &[
    &files::OPENAT,
    &files::READ,
    &files::READ_INTO,
    &files::WRITE,
    &files::CLOSE,
    &net::SOCKET,
    &net::CONNECT_V4,
    &net::CONNECT_V6,
    &net::SEND,
    &net::RECV,
    &net::RECV_INTO,
    &net::CONNECT,
    &net::ACCEPT,
    &net::BIND,
    &net::LISTEN,
    &net::SHUTDOWN,
    &net::SENDTO,
    &net::RECVFROM,
    &misc::NOP,
    &misc::CANCEL,
    &misc::TIMEOUT,
    &misc::TIMEOUT_REMOVE,
    &misc::LINK_TIMEOUT,
    &misc::POLL_ADD,
    &misc::POLL_REMOVE,
    &misc::MSG_RING,
    &files::READV,
    &files::WRITEV,
    &files::FSYNC,
    &files::FALLOCATE,
    &files::FTRUNCATE,
    &files::FADVISE,
    &files::SPLICE,
    &files::TEE,
    &files::SYNC_FILE_RANGE,
    &files::OPENAT2,
    &files::STATX,
    &fs::UNLINKAT,
    &fs::RENAMEAT,
    &fs::MKDIRAT,
    &fs::SYMLINKAT,
    &fs::LINKAT,
    &process::WAITID,
    &registered::READ_FIXED,
    &registered::WRITE_FIXED,
    &registered::FIXED_FD_INSTALL,
    &net::SEND_ZC,
];
