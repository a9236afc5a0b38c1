//! What a ring registers with the kernel for many operations to use: the file table, the
//! caller's buffers, provided buffer rings. Plain Rust types that take the submitter they need,
//! below the operations that use them.

pub mod buffer_group;
pub mod file_table;
pub mod provided_buffer;
pub mod registered_buffers;
