//! `Exclusive`: the ring's busy flag, which lets one call at a time in and refuses the others.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A value that one call at a time may use; a call that finds it in use is refused, never
/// made to wait (it would wait for a thread that is blocked in the kernel, holding it).
///
/// This replaces a `Mutex` whose `try_lock` and unlock cost two locked instructions on every
/// call (3-4% of a batch of no-ops). With a GIL, entering is a plain load and store, which is a
/// sound test-and-set because every caller runs attached to the interpreter with the GIL held:
/// the methods of `IoUring` are only called from Python, and the module is declared
/// `gil_used` on such interpreters. Two threads therefore never run `try_enter` at the same
/// time, and a thread that released the GIL inside a call (a blocking wait) stored `busy`
/// before releasing it, so any other thread sees it set. A signal handler or `__del__` that
/// re-enters from the same thread sees it too.
///
/// A free-threaded CPython (`Py_GIL_DISABLED`) runs threads at once, so there entering is an
/// atomic compare-and-exchange: of two threads trying at the same time, one wins.
pub struct Exclusive<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through an `ExclusiveGuard`, of which at most one exists at a
// time (with a GIL, the load and store of `try_enter` are a test-and-set because the GIL keeps
// other threads out between them; without one, the compare-and-exchange is one), or through
// `get_mut`, which needs `&mut self`; so it is never touched by two threads at once, and moving
// it between threads needs only `T: Send`.
unsafe impl<T: Send> Sync for Exclusive<T> {}

impl<T> Exclusive<T> {
    pub fn new(value: T) -> Self {
        Exclusive {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, or `None` when a call (in this thread or another) is using it. Only called
    /// attached to the interpreter (with the GIL held, where there is one).
    #[cfg(not(Py_GIL_DISABLED))]
    #[inline]
    pub fn try_enter(&self) -> Option<ExclusiveGuard<'_, T>> {
        if self.busy.load(Ordering::Acquire) {
            return None;
        }
        // Not a compare-and-swap: the GIL already keeps other threads out between the load and
        // this store (see the type's documentation).
        self.busy.store(true, Ordering::Relaxed);
        Some(ExclusiveGuard { cell: self })
    }

    /// The value, or `None` when a call (in this thread or another) is using it.
    #[cfg(Py_GIL_DISABLED)]
    #[inline]
    pub fn try_enter(&self) -> Option<ExclusiveGuard<'_, T>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| ExclusiveGuard { cell: self })
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// Proof of exclusive use of an `Exclusive`'s value; dropping it (also while unwinding from a
/// panic) lets the next call in.
pub struct ExclusiveGuard<'a, T> {
    cell: &'a Exclusive<T>,
}

impl<T> Deref for ExclusiveGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (`busy` was clear when it was made), so no other
        // reference to the value exists while it lives.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for ExclusiveGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique for its lifetime.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for ExclusiveGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.busy.store(false, Ordering::Release);
    }
}
