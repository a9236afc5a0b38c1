//! The operations, one family per file. Each operation is declared once, as a row of
//! [`operations!`]: its name, opcode, the Linux version that added it, the system call it
//! mirrors, the kinds of memory it may own and what it refuses. Beside the rows, one small
//! function per operation builds its SQE from checked Rust values and hands back a
//! [`Prepared`]: the entry and the memory it points into, which the engine keeps until the
//! operation's final completion is reaped.

/// Declares a family's operations, one row each:
///
/// ```text
/// /// What it does.
/// ROW = "name": OpcodeType IORING_OP_KERNEL_NAME since "5.6", mirrors "syscall(2)",
///     owns [MemoryKind, ...], refuses [Refusal, ...];
/// ```
///
/// `mirrors` and `refuses` may be left out. Each row becomes a `pub const ROW: Operation`, and
/// the family's `OPERATIONS` lists them in order.
macro_rules! operations {
    (@mirrors) => { None };
    (@mirrors $mirrors:literal) => { Some($mirrors) };
    ($(
        $(#[doc = $doc:literal])*
        $row:ident = $name:literal: $opcode:ident $kernel_name:ident since $since:literal
            $(, mirrors $mirrors:literal)?, owns [$($owns:ident),*]
            $(, refuses [$($refusal:ident),*])?;
    )*) => {
        $(
            $(#[doc = $doc])*
            pub const $row: $crate::ops::Operation = $crate::ops::Operation {
                name: $name,
                opcode: ::io_uring::opcode::$opcode::CODE,
                opcode_name: stringify!($kernel_name),
                since: $since,
                mirrors: $crate::ops::operations!(@mirrors $($mirrors)?),
                owns: &[$($crate::ops::Owns::$owns),*],
                refuses: &[$($($crate::ops::Refusal::$refusal),*)?],
            };
        )*

        /// This family's operations, in the order they are declared.
        pub const OPERATIONS: &[&$crate::ops::Operation] = &[$(&$row),*];
    };
}
pub(crate) use operations;

pub mod files;
pub mod fixed;
pub mod fs;
pub mod misc;
pub mod net;
pub mod process;

use io_uring::squeue::Entry;

use crate::mem::caller_buffer::HeldBuffer;
use crate::mem::io_buf::IoBuf;
use crate::mem::lent::Lent;

/// One io_uring operation the library offers, as its row in [`operations!`] declares it.
pub struct Operation {
    /// The operation's name: the Python face offers it as `prep_<name>`.
    pub name: &'static str,
    pub opcode: u8,
    /// The kernel's name for the opcode (`IORING_OP_READ`), for messages and documentation.
    pub opcode_name: &'static str,
    /// The Linux version that added it.
    pub since: &'static str,
    /// The system call it does the work of, as its man page is named (`read(2)`).
    pub mirrors: Option<&'static str>,
    /// The kinds of memory it may own until its final completion (none: it can never leave
    /// memory behind, so `skip_success` is allowed).
    pub owns: &'static [Owns],
    /// What it is refused beyond the rules every operation follows.
    pub refuses: &'static [Refusal],
}

/// A kind of memory an operation may own until its final completion.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Owns {
    Path,
    /// Two paths (a rename, a link).
    Paths,
    /// A buffer of the ring's own: the destination of a read or a copy of data to write.
    RingBuffer,
    /// An export of the caller's buffer, which the kernel reads.
    CallerBuffer,
    /// An export of the caller's buffer, which the kernel writes.
    WritableCallerBuffer,
    SocketAddress,
    /// The peer's address an accept writes, when asked for (`peer_address=True`).
    PeerAddress,
    /// An array of `iovec`s.
    Iovecs,
    /// A `msghdr`, with its `iovec` and address.
    MessageHeader,
    Timespec,
    /// An `open_how`.
    OpenHow,
    /// The `struct statx` the kernel fills.
    Statx,
    /// The `siginfo_t` the kernel fills.
    Siginfo,
    /// A reference to the ring's registered buffers.
    RegisteredBuffers,
    /// A provided buffer group it selects from.
    BufferGroup,
}

impl Owns {
    /// The kind's name, as `_operations()` reports it.
    pub fn name(self) -> &'static str {
        match self {
            Owns::Path => "path",
            Owns::Paths => "paths",
            Owns::RingBuffer => "ring buffer",
            Owns::CallerBuffer => "caller buffer",
            Owns::WritableCallerBuffer => "writable caller buffer",
            Owns::SocketAddress => "socket address",
            Owns::PeerAddress => "peer address",
            Owns::Iovecs => "iovecs",
            Owns::MessageHeader => "msghdr",
            Owns::Timespec => "timespec",
            Owns::OpenHow => "open_how",
            Owns::Statx => "statx",
            Owns::Siginfo => "siginfo_t",
            Owns::RegisteredBuffers => "registered buffers",
            Owns::BufferGroup => "buffer group",
        }
    }
}

/// A refusal particular to some operations (every operation refuses `buffer_select` unless it
/// selects from a buffer group, and `skip_success` when it owns memory).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not with `io_drain`, nor on a ring that has ever queued an `io_drain` entry. Observed on
    /// Linux 6.18: once a ring has queued a drained entry, the kernel holds back every later
    /// zero-copy send (drained or not) for good: it never starts, no cancellation reaches it,
    /// and the ring can only leak its buffer when closed.
    DrainedRing,
}

impl Refusal {
    /// The `make_sqe_flags` argument this refusal is about.
    pub fn flag_name(self) -> &'static str {
        match self {
            Refusal::DrainedRing => "io_drain",
        }
    }
}

/// Every operation the library offers, family by family.
pub fn all() -> impl Iterator<Item = &'static Operation> {
    [
        files::OPERATIONS,
        fs::OPERATIONS,
        net::OPERATIONS,
        misc::OPERATIONS,
        process::OPERATIONS,
        fixed::OPERATIONS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// An SQE ready to queue, and the memory it points into.
pub struct Prepared {
    pub op: &'static Operation,
    pub entry: Entry,
    pub lent: Lent,
}

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
    pub fn into_parts(self) -> (*const u8, u32, Lent) {
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
pub fn destination_parts(held: HeldBuffer) -> (*mut u8, u32, Lent) {
    (
        held.as_ptr(),
        capped_u32(held.len()),
        Lent::CallerBuffer(held),
    )
}

/// A length for an SQE's 32-bit `len`, capped at Linux's `MAX_RW_COUNT` (a read or write never
/// moves more in one call).
pub fn capped_u32(len: usize) -> u32 {
    len.min(crate::base::args::MAX_RW_COUNT) as u32
}
