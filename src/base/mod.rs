//! The leaves: what every layer above may use and that uses nothing of ours.

pub mod args;
pub mod errors;
pub mod fork;
pub mod kernel_support;
pub mod objects;
pub mod valgrind;
