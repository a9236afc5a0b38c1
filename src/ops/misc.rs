//! Operations that touch no file: no-op.

use io_uring::opcode;

use super::{OpInfo, Prepared};
use crate::inflight::Owned;

/// `IORING_OP_NOP`: completes at once with result 0; owns nothing. For measuring the ring's own
/// cost and for waking a waiting thread through a completion.
pub const NOP: OpInfo = OpInfo {
    method: "prep_nop",
    opcode: opcode::Nop::CODE,
    opcode_name: "IORING_OP_NOP",
    since: "5.1",
};

pub fn nop() -> Prepared {
    Prepared {
        op: &NOP,
        entry: opcode::Nop::new().build(),
        owned: Owned::Nothing,
    }
}
