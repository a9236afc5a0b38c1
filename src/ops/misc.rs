//! Operations that touch no file's data: no-op, cancellation, timeouts, polling, messages to
//! other rings.

use io_uring::opcode;
use io_uring::types::{CancelBuilder, Fd, TimeoutFlags, Timespec};

use super::Prepared;
use crate::mem::lent::Lent;

operations! {
    /// Completes at once with result 0: the ring's own cost, or a completion to wake a loop.
    NOP = "nop": Nop IORING_OP_NOP since "5.1", owns [];
    /// Cancels operations in flight by `user_data`, by descriptor, or all of them.
    CANCEL = "cancel": AsyncCancel IORING_OP_ASYNC_CANCEL since "5.5", owns [];
    /// A timer that completes after a time, or after a number of other completions.
    TIMEOUT = "timeout": Timeout IORING_OP_TIMEOUT since "5.4", owns ["timespec"];
    /// Removes a pending timeout.
    TIMEOUT_REMOVE = "timeout_remove": TimeoutRemove IORING_OP_TIMEOUT_REMOVE since "5.5",
        owns [];
    /// A deadline for the operation linked before it.
    LINK_TIMEOUT = "link_timeout": LinkTimeout IORING_OP_LINK_TIMEOUT since "5.5",
        owns ["timespec"];
    /// Waits for a descriptor to become ready, once or (5.13+) repeatedly.
    POLL_ADD = "poll_add": PollAdd IORING_OP_POLL_ADD since "5.1", mirrors "poll(2)", owns [];
    /// Removes a pending poll.
    POLL_REMOVE = "poll_remove": PollRemove IORING_OP_POLL_REMOVE since "5.1", owns [];
    /// Posts a completion to another ring.
    MSG_RING = "msg_ring": MsgRingData IORING_OP_MSG_RING since "5.18", owns [];
}

pub fn nop() -> Prepared {
    Prepared {
        op: &NOP,
        entry: opcode::Nop::new().build(),
        lent: Lent::Nothing,
    }
}

pub fn cancel(target: CancelBuilder) -> Prepared {
    Prepared {
        op: &CANCEL,
        entry: opcode::AsyncCancel2::new(target).build(),
        lent: Lent::Nothing,
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
        lent: Lent::Other(timespec),
    }
}

pub fn timeout_remove(user_data: u64) -> Prepared {
    Prepared {
        op: &TIMEOUT_REMOVE,
        entry: opcode::TimeoutRemove::new(user_data).build(),
        lent: Lent::Nothing,
    }
}

pub fn link_timeout(timespec: Box<Timespec>) -> Prepared {
    Prepared {
        op: &LINK_TIMEOUT,
        entry: opcode::LinkTimeout::new(&*timespec).build(),
        lent: Lent::Other(timespec),
    }
}

pub fn poll_add(fd: i32, events: u32, multishot: bool) -> Prepared {
    Prepared {
        op: &POLL_ADD,
        entry: opcode::PollAdd::new(Fd(fd), events)
            .multi(multishot)
            .build(),
        lent: Lent::Nothing,
    }
}

pub fn poll_remove(user_data: u64) -> Prepared {
    Prepared {
        op: &POLL_REMOVE,
        entry: opcode::PollRemove::new(user_data).build(),
        lent: Lent::Nothing,
    }
}

pub fn msg_ring(ring_fd: i32, result: i32, user_data: u64) -> Prepared {
    Prepared {
        op: &MSG_RING,
        entry: opcode::MsgRingData::new(Fd(ring_fd), result, user_data, None).build(),
        lent: Lent::Nothing,
    }
}
