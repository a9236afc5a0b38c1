//! File operations: open, read, write, close, vectored I/O, syncing, space management,
//! splicing, and metadata.

use std::ffi::CString;
use std::os::fd::RawFd;

use io_uring::opcode;
use io_uring::types::{DestinationSlot, Fd, FsyncFlags, OpenHow};
use pyo3::prelude::*;

use super::{capped_u32, destination_parts, Prepared, Source};
use crate::base::objects;
use crate::mem::caller_buffer::HeldBuffer;
use crate::mem::io_buf::IoBuf;
use crate::mem::lent::{Lent, LentMemory, Report};
use crate::mem::statx::StatxResult;
use crate::mem::unfilled_bytes::UnfilledBytes;
use crate::resources::file_table::FileIndex;

operations! {
    /// Opens a file, giving its new descriptor.
    OPENAT = "openat": OpenAt IORING_OP_OPENAT since "5.6", mirrors "openat(2)", owns ["path"];
    /// Opens a file with `RESOLVE_*` control over how its path is resolved.
    OPENAT2 = "openat2": OpenAt2 IORING_OP_OPENAT2 since "5.6", mirrors "openat2(2)",
        owns ["path", "open_how"];
    /// Reads into a buffer of the ring's, which the completion hands over as `bytes`, or (a
    /// large read) into that `bytes` itself.
    READ = "read": Read IORING_OP_READ since "5.6", mirrors "read(2)",
        owns ["ring buffer", "new bytes"];
    /// Reads into the caller's buffer, in place.
    READ_INTO = "read_into": Read IORING_OP_READ since "5.6", mirrors "read(2)",
        owns ["writable caller buffer"];
    /// Reads into several buffers of the ring's.
    READV = "readv": Readv IORING_OP_READV since "5.1", mirrors "readv(2)",
        owns ["iovecs", "ring buffer"];
    /// Writes the ring's copy of the data, or the caller's buffer in place.
    WRITE = "write": Write IORING_OP_WRITE since "5.6", mirrors "write(2)",
        owns ["ring buffer", "caller buffer"];
    /// Writes copies of several buffers.
    WRITEV = "writev": Writev IORING_OP_WRITEV since "5.1", mirrors "writev(2)",
        owns ["iovecs", "ring buffer"];
    /// Flushes a file's data (and metadata) to its device.
    FSYNC = "fsync": Fsync IORING_OP_FSYNC since "5.1", mirrors "fsync(2)", owns [];
    /// Starts or waits for writeback of a range of a file.
    SYNC_FILE_RANGE = "sync_file_range": SyncFileRange IORING_OP_SYNC_FILE_RANGE since "5.2",
        mirrors "sync_file_range(2)", owns [];
    /// Allocates, punches or zeroes a range of a file.
    FALLOCATE = "fallocate": Fallocate IORING_OP_FALLOCATE since "5.6", mirrors "fallocate(2)",
        owns [];
    /// Sets a file's size.
    FTRUNCATE = "ftruncate": Ftruncate IORING_OP_FTRUNCATE since "6.9",
        mirrors "ftruncate(2)", owns [];
    /// Tells the kernel how a range of a file will be used.
    FADVISE = "fadvise": Fadvise IORING_OP_FADVISE since "5.6", mirrors "posix_fadvise(2)",
        owns [];
    /// Moves data between a pipe and another descriptor inside the kernel.
    SPLICE = "splice": Splice IORING_OP_SPLICE since "5.7", mirrors "splice(2)", owns [];
    /// Duplicates data from one pipe into another.
    TEE = "tee": Tee IORING_OP_TEE since "5.8", mirrors "tee(2)", owns [];
    /// Creates a pipe, giving its two descriptors; until they are reported, the ring owns them
    /// too, and closes them if it is closed first.
    PIPE = "pipe": Pipe IORING_OP_PIPE since "6.16", mirrors "pipe2(2)", owns ["pipefd"];
    /// Reads a file's metadata into a `struct statx` the kernel fills.
    STATX = "statx": Statx IORING_OP_STATX since "5.6", mirrors "statx(2)",
        owns ["path", "statx"];
    /// Closes a descriptor (or, with `fixed_file`, empties a registered slot).
    CLOSE = "close": Close IORING_OP_CLOSE since "5.6", mirrors "close(2)", owns [];
}

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
        lent: Lent::Path(path),
    }
}

/// Where a read's data goes before the completion hands it over as `bytes`.
pub enum ReadDestination {
    /// A buffer of the ring's, copied into a new `bytes` at the completion.
    RingBuffer(IoBuf),
    /// The new `bytes` itself (see `mem::unfilled_bytes`).
    NewBytes(UnfilledBytes),
}

/// `offset` is `u64::MAX` for the file's current position.
pub fn read(fd: i32, destination: ReadDestination, offset: u64) -> Prepared {
    let (ptr, len, lent) = match destination {
        ReadDestination::RingBuffer(buf) => {
            (buf.as_mut_ptr(), buf.capacity(), Lent::ReadBuffer(buf))
        }
        ReadDestination::NewBytes(bytes) => {
            (bytes.as_mut_ptr(), bytes.len(), Lent::NewBytes(bytes))
        }
    };
    let entry = opcode::Read::new(Fd(fd), ptr, capped_u32(len))
        .offset(offset)
        .build();
    Prepared {
        op: &READ,
        entry,
        lent,
    }
}

pub fn write(fd: i32, source: Source, offset: u64) -> Prepared {
    let (ptr, len, lent) = source.into_parts();
    let entry = opcode::Write::new(Fd(fd), ptr, len).offset(offset).build();
    Prepared {
        op: &WRITE,
        entry,
        lent,
    }
}

/// `offset` is `u64::MAX` for the file's current position.
pub fn read_into(fd: i32, destination: HeldBuffer, offset: u64) -> Prepared {
    let (ptr, len, lent) = destination_parts(destination);
    let entry = opcode::Read::new(Fd(fd), ptr, len).offset(offset).build();
    Prepared {
        op: &READ_INTO,
        entry,
        lent,
    }
}

pub fn close(fd: i32) -> Prepared {
    Prepared {
        op: &CLOSE,
        entry: opcode::Close::new(Fd(fd)).build(),
        lent: Lent::Nothing,
    }
}

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
    fn report(&self, py: Python<'_>, result: i32) -> PyResult<Report> {
        if result < 0 {
            return Ok(Report::default());
        }
        let total = result as usize;
        let joined = objects::bytes_with(py, total, |out| {
            let mut at = 0;
            for buf in &self.0.buffers {
                let take = (total - at).min(buf.capacity());
                // SAFETY: the kernel filled buffers in order, so `take` of this one's bytes
                // are among the `result` bytes it wrote; `out` has room for `total` bytes,
                // `at + take` of which this writes so far, all of them in the end.
                unsafe {
                    std::ptr::copy_nonoverlapping(buf.filled(take).as_ptr(), out.add(at), take)
                };
                at += take;
            }
        })?;
        Ok(Report {
            buffer: Some(joined.unbind()),
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
        lent: Lent::Other(vectored),
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
        lent: Lent::Other(Box::new(vectored)),
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
        lent: Lent::Nothing,
    }
}

pub fn fallocate(fd: i32, offset: u64, length: u64, mode: i32) -> Prepared {
    Prepared {
        op: &FALLOCATE,
        entry: opcode::Fallocate::new(Fd(fd), length)
            .offset(offset)
            .mode(mode)
            .build(),
        lent: Lent::Nothing,
    }
}

pub fn ftruncate(fd: i32, length: u64) -> Prepared {
    Prepared {
        op: &FTRUNCATE,
        entry: opcode::Ftruncate::new(Fd(fd), length).build(),
        lent: Lent::Nothing,
    }
}

pub fn fadvise(fd: i32, offset: u64, length: i64, advice: i32) -> Prepared {
    Prepared {
        op: &FADVISE,
        entry: opcode::Fadvise::new(Fd(fd), length, advice)
            .offset(offset)
            .build(),
        lent: Lent::Nothing,
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
        lent: Lent::Nothing,
    }
}

pub fn tee(fd_in: i32, fd_out: i32, length: u32, flags: u32) -> Prepared {
    Prepared {
        op: &TEE,
        entry: opcode::Tee::new(Fd(fd_in), Fd(fd_out), length)
            .flags(flags)
            .build(),
        lent: Lent::Nothing,
    }
}

/// What a pipe points at: `int pipefd[2]`, which the kernel fills with the read end and the
/// write end. Both are `-1` until it does: Linux writes the array only once both descriptors
/// (or slots) are installed, so a number in it is always one the operation made.
///
/// Descriptors the kernel made are the ring's until the completion reports them. If this is
/// dropped without reporting them (the ring was closed, or dropped, before the completion was
/// reaped), it closes them, so none is left open that nobody knows about. Once reported they
/// are the caller's, and `fds` goes back to `-1` so that nothing here closes them.
struct PipeFds {
    fds: [RawFd; 2],
    /// With `file_index`, the ends went into slots of the registered file table, which owns
    /// them; `fds` then holds slot numbers, never to be closed as descriptors.
    file_index: Option<FileIndex>,
}

impl LentMemory for PipeFds {
    /// `(read_fd, write_fd)`, or with `file_index` the two slots; nothing for a failure.
    fn report(&self, py: Python<'_>, result: i32) -> PyResult<Report> {
        if result < 0 {
            return Ok(Report::default());
        }
        let ends = match self.file_index {
            // Some kernels with IORING_OP_PIPE write 0 for both ends put into given slots
            // (their slot install returns 0, not the slot; 6.18 writes the slots), so report
            // the slots asked for rather than what was written.
            Some(FileIndex::Slot(slot)) => [i64::from(slot), i64::from(slot) + 1],
            _ => self.fds.map(i64::from),
        };
        let pair = objects::tuple(
            py,
            [
                objects::int(py, ends[0])?.into_any(),
                objects::int(py, ends[1])?.into_any(),
            ],
        )?;
        Ok(Report {
            buffer: None,
            extra: Some(pair.into_any().unbind()),
        })
    }

    /// The caller has the descriptors now: never close them here.
    fn reported(&mut self) {
        self.fds = [-1, -1];
    }
}

impl Drop for PipeFds {
    fn drop(&mut self) {
        if self.file_index.is_some() {
            return;
        }
        for fd in self.fds {
            if fd >= 0 {
                // SAFETY: `fd` is a descriptor this operation made and never reported, so no
                // one else knows its number or closes it (see `PipeFds`).
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// `flags` already carries `O_CLOEXEC`. With `file_index` (checked against the table, the
/// slot after a given one included), the read end goes into that slot and the write end into
/// the next (or both into free slots the kernel picks), and `O_CLOEXEC` is dropped: the kernel
/// refuses it for slots.
pub fn pipe(flags: i32, file_index: Option<FileIndex>) -> Prepared {
    let flags = if file_index.is_some() {
        flags & !libc::O_CLOEXEC
    } else {
        flags
    };
    let slot = file_index.map(|index| match index {
        FileIndex::Slot(slot) => {
            DestinationSlot::try_from_slot_target(slot).expect("slots are below 2**20")
        }
        FileIndex::Alloc => DestinationSlot::auto_target(),
    });
    let mut fds = Box::new(PipeFds {
        fds: [-1, -1],
        file_index,
    });
    let entry = opcode::Pipe::new(fds.fds.as_mut_ptr())
        .flags(flags as u32)
        .file_index(slot)
        .build();
    Prepared {
        op: &PIPE,
        entry,
        lent: Lent::Other(fds),
    }
}

pub fn sync_file_range(fd: i32, offset: u64, length: u32, flags: u32) -> Prepared {
    Prepared {
        op: &SYNC_FILE_RANGE,
        entry: opcode::SyncFileRange::new(Fd(fd), length)
            .offset(offset)
            .flags(flags)
            .build(),
        lent: Lent::Nothing,
    }
}

/// What `openat2` points at.
struct OpenAt2Args {
    path: CString,
    how: OpenHow,
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
    // Boxed first, pointed into second: the contents never move after this.
    let args = Box::new(OpenAt2Args {
        path,
        how: OpenHow::new().flags(flags).mode(mode).resolve(resolve),
    });
    let entry = opcode::OpenAt2::new(Fd(dir_fd), args.path.as_ptr(), &args.how)
        .file_index(file_index)
        .build();
    Prepared {
        op: &OPENAT2,
        entry,
        lent: Lent::Other(args),
    }
}

/// What `statx` points at: the path, and the buffer the kernel fills.
struct StatxArgs {
    path: CString,
    result: libc::statx,
}

impl LentMemory for StatxArgs {
    fn report(&self, py: Python<'_>, result: i32) -> PyResult<Report> {
        if result < 0 {
            return Ok(Report::default());
        }
        let parsed = Py::new(py, StatxResult::from(&self.result))?;
        Ok(Report {
            buffer: None,
            extra: Some(parsed.into_any()),
        })
    }
}

pub fn statx(dir_fd: i32, path: CString, flags: i32, mask: u32) -> Prepared {
    let mut args = Box::new(StatxArgs {
        path,
        // SAFETY: `struct statx` is plain old data; all-zero is a valid value.
        result: unsafe { std::mem::zeroed() },
    });
    // Boxed first, pointed into second: the contents never move after this.
    let buffer: *mut libc::statx = &raw mut args.result;
    let entry = opcode::Statx::new(Fd(dir_fd), args.path.as_ptr(), buffer.cast())
        .flags(flags)
        .mask(mask)
        .build();
    Prepared {
        op: &STATX,
        entry,
        lent: Lent::Other(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD takes no pointer and only reads the descriptor table.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    fn new_pipe() -> [RawFd; 2] {
        let mut fds = [-1; 2];
        // SAFETY: `fds` is the two-int array pipe2 fills.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        fds
    }

    /// One test, not two: another test's new descriptors could take the numbers just closed.
    #[test]
    fn dropped_unreported_closes_descriptors_but_never_slots_or_unwritten_ends() {
        let slots = new_pipe();
        drop(PipeFds {
            fds: slots,
            file_index: Some(FileIndex::Alloc),
        });
        drop(PipeFds {
            fds: [-1, -1],
            file_index: None,
        });
        assert!(is_open(slots[0]) && is_open(slots[1]));

        let fds = new_pipe();
        drop(PipeFds {
            fds,
            file_index: None,
        });
        assert!(!is_open(fds[0]) && !is_open(fds[1]));
        // SAFETY: the test's own descriptors, closed once.
        unsafe {
            libc::close(slots[0]);
            libc::close(slots[1]);
        }
    }
}
