//! What reaping hands out besides events: a completion taken with its data copied out
//! (`Copied`), what a receiver that chooses some of those gets (`Reaped`), and what a receiver
//! gives back to be delivered first next time (`GivenBack`).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::completion_event::CompletionEvent;

/// A completion taken off the ring without an event: its data (what a receive or read
/// brought) copied into `bytes`, any provided buffer back in its ring already.
pub struct Copied {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
    pub data: Option<Py<PyBytes>>,
}

/// What the ring delivers to a receiver that takes some completions as [`Copied`]: for those
/// the receiver chose, with what it chose them for (`T`), and events for the rest.
pub enum Reaped<T> {
    Event(Py<CompletionEvent>),
    Copied(Copied, T),
}

/// What a receiver handed back, to be delivered first next time.
pub enum GivenBack {
    Event(Py<CompletionEvent>),
    Copied(Copied),
}
