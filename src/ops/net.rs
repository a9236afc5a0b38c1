//! Network operations: socket, connect, send, recv.

use io_uring::opcode;
use io_uring::types::Fd;

use super::files::capacity_u32;
use super::{OpInfo, Prepared};
use crate::buffer::IoBuf;
use crate::inflight::Owned;

/// `socket(2)`; owns nothing.
pub const SOCKET: OpInfo = OpInfo {
    method: "prep_create_socket",
    opcode: opcode::Socket::CODE,
    opcode_name: "IORING_OP_SOCKET",
    since: "5.19",
};

/// `connect(2)` to an IPv4 address; owns the `sockaddr_in`.
pub const CONNECT_V4: OpInfo = OpInfo {
    method: "prep_connect_v4",
    opcode: opcode::Connect::CODE,
    opcode_name: "IORING_OP_CONNECT",
    since: "5.5",
};

/// `connect(2)` to an IPv6 address; owns the `sockaddr_in6`.
pub const CONNECT_V6: OpInfo = OpInfo {
    method: "prep_connect_v6",
    opcode: opcode::Connect::CODE,
    opcode_name: "IORING_OP_CONNECT",
    since: "5.5",
};

/// `send(2)`; owns a copy of the data.
pub const SEND: OpInfo = OpInfo {
    method: "prep_send",
    opcode: opcode::Send::CODE,
    opcode_name: "IORING_OP_SEND",
    since: "5.6",
};

/// `recv(2)`; owns the destination buffer.
pub const RECV: OpInfo = OpInfo {
    method: "prep_recv",
    opcode: opcode::Recv::CODE,
    opcode_name: "IORING_OP_RECV",
    since: "5.6",
};

/// A socket address in the form the kernel reads.
pub enum SocketAddress {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl SocketAddress {
    fn as_ptr_and_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            SocketAddress::V4(addr) => (
                (addr as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            SocketAddress::V6(addr) => (
                (addr as *const libc::sockaddr_in6).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

/// `type_flags` already carries `SOCK_CLOEXEC` and, if asked, `SOCK_NONBLOCK`.
pub fn socket(domain: i32, type_flags: i32, protocol: i32) -> Prepared {
    Prepared {
        op: &SOCKET,
        entry: opcode::Socket::new(domain, type_flags, protocol).build(),
        owned: Owned::Nothing,
    }
}

pub fn connect(fd: i32, address: Box<SocketAddress>) -> Prepared {
    let op = match *address {
        SocketAddress::V4(_) => &CONNECT_V4,
        SocketAddress::V6(_) => &CONNECT_V6,
    };
    let (ptr, len) = address.as_ptr_and_len();
    Prepared {
        op,
        entry: opcode::Connect::new(Fd(fd), ptr, len).build(),
        owned: Owned::Address(address),
    }
}

pub fn send(fd: i32, source: IoBuf, msg_flags: i32) -> Prepared {
    Prepared {
        op: &SEND,
        entry: opcode::Send::new(Fd(fd), source.as_mut_ptr(), capacity_u32(&source))
            .flags(msg_flags)
            .build(),
        owned: Owned::Source(source),
    }
}

pub fn recv(fd: i32, destination: IoBuf, msg_flags: i32) -> Prepared {
    Prepared {
        op: &RECV,
        entry: opcode::Recv::new(Fd(fd), destination.as_mut_ptr(), capacity_u32(&destination))
            .flags(msg_flags)
            .build(),
        owned: Owned::Destination(destination),
    }
}
