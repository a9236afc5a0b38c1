//! Operations that touch no file's data: no-op, cancellation, timeouts, polling, messages to
//! other rings.

use io_uring::opcode;
use io_uring::types::{CancelBuilder, Fd, TimeoutFlags, Timespec};

use super::{OpInfo, Prepared};
use crate::mem::lent::Lent;

/// `IORING_OP_NOP`: completes at once with result 0; owns nothing. For measuring the ring's own
/// cost and for waking a waiting thread through a completion.
pub const NOP: OpInfo = OpInfo {
    method: "prep_nop",
    opcode: opcode::Nop::CODE,
    opcode_name: "IORING_OP_NOP",
    since: "5.1",
};

/// Cancels queued operations by `user_data`, by file descriptor, or all of them; owns nothing.
pub const CANCEL: OpInfo = OpInfo {
    method: "prep_cancel",
    opcode: opcode::AsyncCancel::CODE,
    opcode_name: "IORING_OP_ASYNC_CANCEL",
    since: "5.5",
};

/// A timer that completes after a time or after a number of other completions; owns its
/// timespec.
pub const TIMEOUT: OpInfo = OpInfo {
    method: "prep_timeout",
    opcode: opcode::Timeout::CODE,
    opcode_name: "IORING_OP_TIMEOUT",
    since: "5.4",
};

/// Removes a pending timeout; owns nothing.
pub const TIMEOUT_REMOVE: OpInfo = OpInfo {
    method: "prep_timeout_remove",
    opcode: opcode::TimeoutRemove::CODE,
    opcode_name: "IORING_OP_TIMEOUT_REMOVE",
    since: "5.5",
};

/// A deadline for the operation linked before it; owns its timespec.
pub const LINK_TIMEOUT: OpInfo = OpInfo {
    method: "prep_link_timeout",
    opcode: opcode::LinkTimeout::CODE,
    opcode_name: "IORING_OP_LINK_TIMEOUT",
    since: "5.5",
};

/// `poll(2)` on one descriptor, once or (5.13+) repeatedly; owns nothing.
pub const POLL_ADD: OpInfo = OpInfo {
    method: "prep_poll_add",
    opcode: opcode::PollAdd::CODE,
    opcode_name: "IORING_OP_POLL_ADD",
    since: "5.1",
};

/// Removes a pending poll; owns nothing.
pub const POLL_REMOVE: OpInfo = OpInfo {
    method: "prep_poll_remove",
    opcode: opcode::PollRemove::CODE,
    opcode_name: "IORING_OP_POLL_REMOVE",
    since: "5.1",
};

/// Posts a completion to another ring; owns nothing.
pub const MSG_RING: OpInfo = OpInfo {
    method: "prep_msg_ring",
    opcode: opcode::MsgRingData::CODE,
    opcode_name: "IORING_OP_MSG_RING",
    since: "5.18",
};

pub fn nop() -> Prepared {
    Prepared {
        op: &NOP,
        entry: opcode::Nop::new().build(),
        owned: Lent::Nothing,
    }
}

pub fn cancel(target: CancelBuilder) -> Prepared {
    Prepared {
        op: &CANCEL,
        entry: opcode::AsyncCancel2::new(target).build(),
        owned: Lent::Nothing,
    }
}

pub fn timeout(timespec: Box<Timespec>, count: u32, absolute: bool) -> Prepared {
    let flags = if absolute {
        TimeoutFlags::ABS
    } else {
        TimeoutFlags::empty()
    };
    let entry = opcode::Timeout::new(&*timespec)
        .count(count)
        .flags(flags)
        .build();
    Prepared {
        op: &TIMEOUT,
        entry,
        owned: Lent::Other(timespec),
    }
}

pub fn timeout_remove(user_data: u64) -> Prepared {
    Prepared {
        op: &TIMEOUT_REMOVE,
        entry: opcode::TimeoutRemove::new(user_data).build(),
        owned: Lent::Nothing,
    }
}

pub fn link_timeout(timespec: Box<Timespec>) -> Prepared {
    Prepared {
        op: &LINK_TIMEOUT,
        entry: opcode::LinkTimeout::new(&*timespec).build(),
        owned: Lent::Other(timespec),
    }
}

pub fn poll_add(fd: i32, events: u32, multishot: bool) -> Prepared {
    Prepared {
        op: &POLL_ADD,
        entry: opcode::PollAdd::new(Fd(fd), events)
            .multi(multishot)
            .build(),
        owned: Lent::Nothing,
    }
}

pub fn poll_remove(user_data: u64) -> Prepared {
    Prepared {
        op: &POLL_REMOVE,
        entry: opcode::PollRemove::new(user_data).build(),
        owned: Lent::Nothing,
    }
}

pub fn msg_ring(ring_fd: i32, result: i32, user_data: u64) -> Prepared {
    Prepared {
        op: &MSG_RING,
        entry: opcode::MsgRingData::new(Fd(ring_fd), result, user_data, None).build(),
        owned: Lent::Nothing,
    }
}
