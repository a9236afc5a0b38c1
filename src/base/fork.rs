//! Noticing that we are in a forked child. A ring belongs to the process that made it; after
//! `fork()` the child shares the ring's file description but must never submit to it, cancel
//! its operations or unmap its memory.
//!
//! A `pthread_atfork` child handler bumps a generation counter, so the check on every call is
//! one atomic load instead of a `getpid()` system call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the handler (once per process; it is inherited across fork).
pub fn install_handler() {
    INSTALL.call_once(|| {
        // SAFETY: the handler only touches an atomic, which is async-signal-safe and valid
        // for the life of the process.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    });
}

/// The current process's fork generation: it changes in every child after `fork()`.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// The process something tied to a ring belongs to, noted where it is made: a child forked
/// from that process must not submit to the ring, touch its memory, or write its buffer rings.
#[derive(Clone, Copy)]
pub struct Origin {
    pid: u32,
    generation: u64,
}

impl Origin {
    /// This process, now.
    pub fn here() -> Self {
        Origin {
            pid: std::process::id(),
            generation: generation(),
        }
    }

    /// Whether this process is a fork of the origin.
    #[inline]
    pub fn is_forked(&self) -> bool {
        generation() != self.generation
    }

    /// The origin's process id, for messages.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}
