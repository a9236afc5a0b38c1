//! Memory the kernel may touch: the ring's own buffers and their pool, held exports of
//! callers' buffers, new `bytes` that large reads fill, socket addresses, statx results, and
//! `Lent`, what an operation lends the kernel until its final completion.

pub mod caller_buffer;
pub mod heap_reserve;
pub mod io_buf;
pub mod lent;
pub mod socket_address;
pub mod statx;
pub mod unfilled_bytes;
