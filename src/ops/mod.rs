//! One file per family of operations. Each op is a small function that builds its SQE and
//! hands back what the SQE points into; the ring adds `user_data` and flags, and keeps the
//! owned memory alive until the completion is reaped.

pub mod files;
pub mod fs;
pub mod misc;
pub mod net;
pub mod process;

use io_uring::squeue::Entry;

use crate::inflight::Owned;

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
    pub owned: Owned,
}

/// Every operation the library offers, in the order `probe()` lists them.
pub const ALL: &[&OpInfo] = &[
    &files::OPENAT,
    &files::READ,
    &files::WRITE,
    &files::CLOSE,
    &net::SOCKET,
    &net::CONNECT_V4,
    &net::CONNECT_V6,
    &net::SEND,
    &net::RECV,
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
];
