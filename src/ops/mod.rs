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
///     owns ["kind of memory", ...], refuses [Restriction, ...];
/// ```
///
/// `mirrors` and `refuses` may be left out. The kinds of memory are named as a user would, and
/// as the tests read them, for example `"path"`, `"ring buffer"` (the ring's own, read into or
/// copied from), `"caller buffer"` (an export the kernel reads), `"writable caller buffer"`
/// (an export the kernel writes, which the fuzz tests fill with writable buffers),
/// `"socket address"`, `"peer address"` (owned only when asked for); a new kind is a new name
/// in its row, and nothing else.
///
/// Each row becomes a `pub const ROW: Operation`, and the family's `OPERATIONS` lists them in
/// order.
macro_rules! operations {
    (@mirrors) => { None };
    (@mirrors $mirrors:literal) => { Some($mirrors) };
    ($(
        $(#[doc = $doc:literal])*
        $row:ident = $name:literal: $opcode:ident $kernel_name:ident since $since:literal
            $(, mirrors $mirrors:literal)?, owns [$($owns:literal),*]
            $(, refuses [$($restriction:ident),*])?;
    )*) => {
        $(
            $(#[doc = $doc])*
            pub const $row: $crate::ops::Operation = $crate::ops::Operation {
                name: $name,
                opcode: ::io_uring::opcode::$opcode::CODE,
                opcode_name: stringify!($kernel_name),
                since: $since,
                mirrors: $crate::ops::operations!(@mirrors $($mirrors)?),
                owns: &[$($owns),*],
                refuses: &[$($($crate::ops::Restriction::$restriction),*)?],
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
    /// The kinds of memory it may own until its final completion, named as a user would
    /// (`"path"`, `"ring buffer"`, `"writable caller buffer"`, ...); none when it can never
    /// leave memory behind, so that `skip_success` is allowed.
    pub owns: &'static [&'static str],
    /// What it is refused beyond the rules every operation follows.
    pub refuses: &'static [Restriction],
}

/// A restriction particular to some operations, named in their rows' `refuses` (beyond the
/// rules every operation follows: `buffer_select` only from a buffer group, no `skip_success`
/// on owned memory or a linked entry).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// Not with `io_drain`, nor on a ring that has ever queued an `io_drain` entry. Observed on
    /// Linux 6.18: once a ring has queued a drained entry, the kernel holds back every later
    /// zero-copy send (drained or not) for good: it never starts, no cancellation reaches it,
    /// and the ring can only leak its buffer when closed.
    DrainedRing,
}

impl Restriction {
    /// The `make_sqe_flags` argument this restriction is about.
    pub fn flag_name(self) -> &'static str {
        match self {
            Restriction::DrainedRing => "io_drain",
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
