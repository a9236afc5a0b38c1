//! Network operations: socket, connect, send, recv, accept, bind, listen, shutdown, and
//! datagrams with addresses (sendmsg/recvmsg).

use io_uring::opcode;
use io_uring::squeue::Flags;
use io_uring::types::{DestinationSlot, Fd};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{capped_u32, destination_parts, Operation, Prepared, Source};
use crate::base::{objects, valgrind};
use crate::mem::caller_buffer::HeldBuffer;
use crate::mem::io_buf::IoBuf;
use crate::mem::lent::{Lent, LentMemory, Report};
use crate::mem::socket_address::{self, SocketAddress};
use crate::resources::buffer_group::Armed;
use crate::resources::provided_buffer::ProvidedBuffer;

operations! {
    /// Creates a socket, giving its descriptor.
    SOCKET = "create_socket": Socket IORING_OP_SOCKET since "5.19", mirrors "socket(2)",
        owns [];
    /// Connects a socket to an IPv4 address given as text or an `IPv4Address`.
    CONNECT_V4 = "connect_v4": Connect IORING_OP_CONNECT since "5.5", mirrors "connect(2)",
        owns ["socket address"];
    /// Connects a socket to an IPv6 address given as text or an `IPv6Address`.
    CONNECT_V6 = "connect_v6": Connect IORING_OP_CONNECT since "5.5", mirrors "connect(2)",
        owns ["socket address"];
    /// Connects a socket to any address in the `socket` module's forms.
    CONNECT = "connect": Connect IORING_OP_CONNECT since "5.5", mirrors "connect(2)",
        owns ["socket address"];
    /// Gives a socket its local address.
    BIND = "bind": Bind IORING_OP_BIND since "6.11", mirrors "bind(2)", owns ["socket address"];
    /// Makes a bound socket accept connections.
    LISTEN = "listen": Listen IORING_OP_LISTEN since "6.11", mirrors "listen(2)", owns [];
    /// Takes a connection (or, multishot, connection after connection) off a listener.
    ACCEPT = "accept": Accept IORING_OP_ACCEPT since "5.5", mirrors "accept4(2)",
        owns ["peer address"];
    /// Sends the ring's copy of the data, or the caller's buffer in place.
    SEND = "send": Send IORING_OP_SEND since "5.6", mirrors "send(2)",
        owns ["ring buffer", "caller buffer"];
    /// Sends from the caller's buffer without copying; a notification says when the kernel
    /// no longer reads it.
    SEND_ZC = "send_zc": SendZc IORING_OP_SEND_ZC since "6.0", mirrors "send(2)",
        owns ["caller buffer"], refuses [DrainedRing];
    /// Sends a copy of the data to an address, as a `sendmsg(2)`.
    SENDTO = "sendto": SendMsg IORING_OP_SENDMSG since "5.3", mirrors "sendmsg(2)",
        owns ["msghdr", "socket address", "ring buffer"];
    /// Receives into a buffer of the ring's, or one the kernel picks from a buffer group.
    RECV = "recv": Recv IORING_OP_RECV since "5.6", mirrors "recv(2)",
        owns ["ring buffer", "buffer group"];
    /// Receives into the caller's buffer, in place.
    RECV_INTO = "recv_into": Recv IORING_OP_RECV since "5.6", mirrors "recv(2)",
        owns ["writable caller buffer"];
    /// Receives data and the sender's address, as a `recvmsg(2)`.
    RECVFROM = "recvfrom": RecvMsg IORING_OP_RECVMSG since "5.3", mirrors "recvmsg(2)",
        owns ["msghdr", "ring buffer"];
    /// Shuts down one or both directions of a connection.
    SHUTDOWN = "shutdown": Shutdown IORING_OP_SHUTDOWN since "5.11", mirrors "shutdown(2)",
        owns [];
}

/// `type_flags` already carries `SOCK_CLOEXEC` and, if asked, `SOCK_NONBLOCK`. With
/// `file_index`, the socket goes into that fixed slot instead of the descriptor table, and
/// `SOCK_CLOEXEC` is dropped: the kernel refuses it for a slot.
pub fn socket(
    domain: i32,
    type_flags: i32,
    protocol: i32,
    file_index: Option<DestinationSlot>,
) -> Prepared {
    let type_flags = without_cloexec(type_flags, file_index);
    Prepared {
        op: &SOCKET,
        entry: opcode::Socket::new(domain, type_flags, protocol)
            .file_index(file_index)
            .build(),
        lent: Lent::Nothing,
    }
}

/// The kernel refuses `SOCK_CLOEXEC` when the new file goes into a fixed slot.
fn without_cloexec(flags: i32, file_index: Option<DestinationSlot>) -> i32 {
    if file_index.is_some() {
        flags & !libc::SOCK_CLOEXEC
    } else {
        flags
    }
}

/// `op` is the method that asked: `prep_connect`, `prep_connect_v4` or `prep_connect_v6`.
pub fn connect(op: &'static Operation, fd: i32, address: Box<SocketAddress>) -> Prepared {
    let (ptr, len) = address.as_ptr_and_len();
    Prepared {
        op,
        entry: opcode::Connect::new(Fd(fd), ptr, len).build(),
        lent: Lent::Address(address),
    }
}

pub fn send(fd: i32, source: Source, msg_flags: i32) -> Prepared {
    let (ptr, len, lent) = source.into_parts();
    Prepared {
        op: &SEND,
        entry: opcode::Send::new(Fd(fd), ptr, len).flags(msg_flags).build(),
        lent,
    }
}

/// The first completion carries the result and `IORING_CQE_F_MORE`; the buffer stays held
/// (the in-flight slot is kept while MORE is set) until the notification, which has no MORE.
pub fn send_zc(fd: i32, source: Source, msg_flags: i32) -> Prepared {
    let (ptr, len, lent) = source.into_parts();
    Prepared {
        op: &SEND_ZC,
        entry: opcode::SendZc::new(Fd(fd), ptr, len)
            .flags(msg_flags)
            .build(),
        lent,
    }
}

/// `IORING_CQE_F_BUFFER`: the completion's upper 16 flag bits are a provided buffer's id.
const CQE_F_BUFFER: u32 = 1 << 0;
const CQE_BUFFER_SHIFT: u32 = 16;
/// `IORING_RECV_MULTISHOT` (in the SQE's `ioprio`), Linux 6.0.
const RECV_MULTISHOT: u16 = 1 << 1;
/// `IORING_RECVSEND_BUNDLE` (in the SQE's `ioprio`), Linux 6.10.
const RECVSEND_BUNDLE: u16 = 1 << 4;

/// A receive that selects its buffer from a group; its completions carry the buffers.
struct GroupReceive {
    group: Armed,
    bundle: bool,
}

impl GroupReceive {
    /// How many buffers a completion that received `len` bytes took.
    fn buffers_taken(&self, len: usize) -> usize {
        if self.bundle {
            // A bundle fills whole buffers in ring order; one that received nothing took none.
            len.div_ceil(self.group.group().size() as usize)
        } else {
            1
        }
    }
}

impl LentMemory for GroupReceive {
    fn on_completion(
        &self,
        py: Python<'_>,
        result: i32,
        flags: u32,
    ) -> PyResult<Option<Py<PyAny>>> {
        if flags & CQE_F_BUFFER == 0 {
            return Ok(None);
        }
        let group = self.group.group();
        let first = (flags >> CQE_BUFFER_SHIFT) as u16;
        let len = result.max(0) as usize;
        let nbufs = self.buffers_taken(len);
        if nbufs == 0 {
            return Ok(None);
        }
        let provided = ProvidedBuffer::for_completion(py, group, first, nbufs, len)?;
        Ok(Some(Py::new(py, provided)?.into_any()))
    }

    fn copy_out(&self, py: Python<'_>, result: i32, flags: u32) -> PyResult<Option<Py<PyBytes>>> {
        if flags & CQE_F_BUFFER == 0 {
            return Ok(None);
        }
        let group = self.group.group();
        let len = result.max(0) as usize;
        let nbufs = self.buffers_taken(len);
        if nbufs == 0 {
            return Ok(None);
        }
        let bids = group.take((flags >> CQE_BUFFER_SHIFT) as u16, nbufs)?;
        let size = group.size() as usize;
        let data = objects::bytes_with(py, len, |destination| {
            let mut at = 0;
            for &bid in &bids {
                let part = (len - at).min(size);
                let source = group.buffer_ptr(bid);
                valgrind::kernel_wrote(source, part);
                // SAFETY: the kernel wrote `len` bytes into these buffers, in order, each full
                // but the last (a bundle) and at most `size` each, and leaves them alone until
                // they are given back below. `destination` has room for `len` bytes.
                unsafe { std::ptr::copy_nonoverlapping(source, destination.add(at), part) };
                at += part;
            }
        })?;
        // Copied: the buffers can take the next arrival. (Had the copy failed, they would stay
        // out, and the completion, made again later, takes them again harmlessly.)
        group.give_back(&bids);
        Ok(Some(data.unbind()))
    }

    fn delivered(&self, _py: Python<'_>, provided: &Bound<'_, PyAny>) {
        if let Ok(provided) = provided.cast::<ProvidedBuffer>() {
            provided.borrow_mut().take_ownership();
        }
    }
}

/// A receive into a buffer the kernel picks from `group` when data arrives; with `multishot` it
/// stays armed, with `bundle` one completion may fill several buffers.
pub fn recv_select(
    fd: i32,
    len: u32,
    msg_flags: i32,
    group: Armed,
    multishot: bool,
    bundle: bool,
) -> Prepared {
    let mut mode = 0;
    if multishot {
        mode |= RECV_MULTISHOT;
    }
    if bundle {
        mode |= RECVSEND_BUNDLE;
    }
    let entry = opcode::Recv::new(Fd(fd), std::ptr::null_mut(), len)
        .flags(msg_flags)
        .buf_group(group.group().id())
        .ioprio(mode)
        .build()
        .flags(Flags::BUFFER_SELECT);
    Prepared {
        op: &RECV,
        entry,
        lent: Lent::Other(Box::new(GroupReceive { group, bundle })),
    }
}

pub fn recv_into(fd: i32, destination: HeldBuffer, msg_flags: i32) -> Prepared {
    let (ptr, len, lent) = destination_parts(destination);
    Prepared {
        op: &RECV_INTO,
        entry: opcode::Recv::new(Fd(fd), ptr, len).flags(msg_flags).build(),
        lent,
    }
}

pub fn recv(fd: i32, destination: IoBuf, msg_flags: i32) -> Prepared {
    Prepared {
        op: &RECV,
        entry: opcode::Recv::new(
            Fd(fd),
            destination.as_mut_ptr(),
            capped_u32(destination.capacity()),
        )
        .flags(msg_flags)
        .build(),
        lent: Lent::ReadBuffer(destination),
    }
}

/// The peer address an accept writes, and the length the kernel reads and then updates.
struct PeerAddress {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl LentMemory for PeerAddress {
    fn report(&self, py: Python<'_>, result: i32) -> PyResult<Report> {
        if result < 0 {
            return Ok(Report::default());
        }
        Ok(Report {
            buffer: None,
            extra: socket_address::to_python(py, &self.storage, self.len)?,
        })
    }
}

/// `accept_flags` already carries `SOCK_CLOEXEC`. A multishot accept stays armed, and keeps its
/// slot in the in-flight table, until a completion without `IORING_CQE_F_MORE`. With
/// `file_index`, connections go into fixed slots instead of the descriptor table (a multishot
/// accept can only have the kernel pick them: the caller checked it is the "alloc" slot), and
/// `SOCK_CLOEXEC` is dropped, as for [`socket`].
pub fn accept(
    fd: i32,
    accept_flags: i32,
    peer_address: bool,
    multishot: bool,
    file_index: Option<DestinationSlot>,
) -> Prepared {
    let accept_flags = without_cloexec(accept_flags, file_index);
    if multishot {
        return Prepared {
            op: &ACCEPT,
            entry: opcode::AcceptMulti::new(Fd(fd))
                .flags(accept_flags)
                .allocate_file_index(file_index.is_some())
                .build(),
            lent: Lent::Nothing,
        };
    }
    if !peer_address {
        return Prepared {
            op: &ACCEPT,
            entry: opcode::Accept::new(Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
                .flags(accept_flags)
                .file_index(file_index)
                .build(),
            lent: Lent::Nothing,
        };
    }
    let mut peer = Box::new(PeerAddress {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        storage: unsafe { std::mem::zeroed() },
        len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    });
    // The pointers go into the Box's heap allocation, which stays put when the Box moves into
    // the in-flight table below.
    let storage: *mut libc::sockaddr = (&raw mut peer.storage).cast();
    let len = &raw mut peer.len;
    Prepared {
        op: &ACCEPT,
        entry: opcode::Accept::new(Fd(fd), storage, len)
            .flags(accept_flags)
            .file_index(file_index)
            .build(),
        lent: Lent::Other(peer),
    }
}

pub fn bind(fd: i32, address: Box<SocketAddress>) -> Prepared {
    let (ptr, len) = address.as_ptr_and_len();
    Prepared {
        op: &BIND,
        entry: opcode::Bind::new(Fd(fd), ptr, len).build(),
        lent: Lent::Address(address),
    }
}

pub fn listen(fd: i32, backlog: i32) -> Prepared {
    Prepared {
        op: &LISTEN,
        entry: opcode::Listen::new(Fd(fd), backlog).build(),
        lent: Lent::Nothing,
    }
}

/// `how` is one of `SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`.
pub fn shutdown(fd: i32, how: i32) -> Prepared {
    Prepared {
        op: &SHUTDOWN,
        entry: opcode::Shutdown::new(Fd(fd), how).build(),
        lent: Lent::Nothing,
    }
}

/// Everything a `sendmsg` to an address points into, in one heap allocation: the msghdr points
/// at the iovec and the address beside it, the iovec at the data (an `IoBuf`, itself a heap
/// allocation that never moves).
struct SendToMessage {
    header: libc::msghdr,
    iov: libc::iovec,
    address: SocketAddress,
    data: IoBuf,
}

// SAFETY: the raw pointers in `header` and `iov` point only into this same allocation and into
// `data`, which this value owns alone; no other code holds them, so moving the whole to another
// thread moves sole ownership of everything they reach.
unsafe impl Send for SendToMessage {}

impl LentMemory for SendToMessage {}

pub fn sendto(fd: i32, data: IoBuf, address: SocketAddress, msg_flags: i32) -> Prepared {
    let mut message = Box::new(SendToMessage {
        // SAFETY: msghdr and iovec are plain old data; all-zero (null pointers, zero lengths)
        // is a valid value of each.
        header: unsafe { std::mem::zeroed() },
        // SAFETY: as above.
        iov: unsafe { std::mem::zeroed() },
        address,
        data,
    });
    // The Box is built first and only then pointed into: its contents never move again, not
    // when the Box moves into the in-flight table.
    message.iov.iov_base = message.data.as_mut_ptr().cast();
    message.iov.iov_len = message.data.capacity();
    let (name, name_len) = message.address.as_ptr_and_len();
    message.header.msg_name = name.cast_mut().cast();
    message.header.msg_namelen = name_len;
    message.header.msg_iov = &raw mut message.iov;
    message.header.msg_iovlen = 1;
    let header = &raw const message.header;
    Prepared {
        op: &SENDTO,
        entry: opcode::SendMsg::new(Fd(fd), header)
            .flags(msg_flags as u32)
            .build(),
        lent: Lent::Other(message),
    }
}

/// Everything a `recvmsg` points into, in one heap allocation: the msghdr points at the iovec
/// and the sender's address beside it, the iovec at the destination (an `IoBuf`).
struct RecvFromMessage {
    header: libc::msghdr,
    iov: libc::iovec,
    sender: libc::sockaddr_storage,
    data: IoBuf,
}

// SAFETY: the raw pointers in `header` and `iov` point only into this same allocation and into
// `data`, which this value owns alone; no other code holds them, so moving the whole to another
// thread moves sole ownership of everything they reach.
unsafe impl Send for RecvFromMessage {}

impl LentMemory for RecvFromMessage {
    fn report(&self, py: Python<'_>, result: i32) -> PyResult<Report> {
        if result < 0 {
            return Ok(Report::default());
        }
        // SAFETY: a successful recvmsg wrote `result` bytes at the start of `data`; with
        // MSG_TRUNC `result` may exceed the buffer, and `filled` caps it at the capacity.
        let received = unsafe { self.data.filled(result as usize) };
        // The kernel wrote the sender's address length back into `msg_namelen`: 0 when the
        // socket gives no address (a connected stream).
        let sender = socket_address::to_python(py, &self.sender, self.header.msg_namelen)?;
        Ok(Report {
            buffer: Some(objects::bytes(py, received)?.unbind()),
            extra: sender,
        })
    }
}

pub fn recvfrom(fd: i32, destination: IoBuf, msg_flags: i32) -> Prepared {
    let mut message = Box::new(RecvFromMessage {
        // SAFETY: msghdr, iovec and sockaddr_storage are plain old data; all-zero is a valid
        // value of each.
        header: unsafe { std::mem::zeroed() },
        // SAFETY: as above.
        iov: unsafe { std::mem::zeroed() },
        // SAFETY: as above.
        sender: unsafe { std::mem::zeroed() },
        data: destination,
    });
    // Built first, pointed into second; the contents never move after this.
    message.iov.iov_base = message.data.as_mut_ptr().cast();
    message.iov.iov_len = message.data.capacity();
    message.header.msg_name = (&raw mut message.sender).cast();
    message.header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    message.header.msg_iov = &raw mut message.iov;
    message.header.msg_iovlen = 1;
    let header = &raw mut message.header;
    Prepared {
        op: &RECVFROM,
        entry: opcode::RecvMsg::new(Fd(fd), header)
            .flags(msg_flags as u32)
            .build(),
        lent: Lent::Other(message),
    }
}
