//! The engine: one ring and everything it must keep straight. It queues prepared operations
//! (refusing what the rules or the kernel refuse), keeps what each one owns in the in-flight
//! table until its final completion, submits and waits, reaps completions into
//! `CompletionEvent`s handed to whoever asks (the Python face builds a list of them; an async
//! layer can hand each straight to its waiter), and closes the ring without ever freeing memory
//! the kernel may still write.

pub mod closing;
pub mod completion_event;
pub mod delivery;
pub mod enter;
pub mod inflight;
pub mod reap;
pub mod registrations;
pub mod ring;
