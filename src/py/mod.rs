//! The Python face: the `IoUring` class and `make_io_ring`, the `prep_*` methods (one file per
//! family of operations, under `prep/`), the register methods, `make_sqe_flags`, and the
//! operation table as Python sees it.

pub mod buffer_ring;
pub mod dispatch;
pub mod exclusive;
pub mod io_uring;
pub mod make_io_ring;
pub mod operations;
pub mod prep;
pub mod registration;
pub mod run_queue;
pub mod sqe_flags;
pub mod stream;
