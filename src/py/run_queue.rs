//! `_RunQueue`: an asyncio loop's run pass, compiled. The ready queue, the timers, the handles
//! `call_soon` / `call_later` / `call_at` return, and `_run_once` itself (wait, dispatch, due
//! timers, then every callback that was ready), each step as asyncio's `BaseEventLoop` has it,
//! without a Python frame per callback scheduled or run.
//!
//! The queue stands in for the loop's `_ready` deque (`append`, `popleft`, `clear`, `len`), so
//! asyncio's own code that adds to it (readers' and signal handlers' handles) works unchanged.
//! It is shared with other threads (`call_soon_threadsafe`), so its state sits behind a mutex,
//! never held while Python code runs.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PySystemExit, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyTuple};
use pyo3::{intern, PyTraverseError};

/// asyncio's cap on one wait (`base_events.MAXIMUM_SELECT_TIMEOUT`): 24 hours.
const MAXIMUM_SELECT_TIMEOUT: f64 = 24.0 * 3600.0;
/// asyncio's rule for sweeping cancelled timers out of the heap at once: more than this many
/// scheduled, and more than this fraction of them cancelled.
const MIN_SCHEDULED_TIMER_HANDLES: usize = 100;
const MIN_CANCELLED_TIMER_HANDLES_FRACTION: f64 = 0.5;

/// `time.monotonic()`: the clock asyncio's loops keep time by.
fn monotonic() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// A scheduled timer in the heap: earliest first, in the order they were scheduled when equal.
struct Timer {
    when: f64,
    sequence: u64,
    handle: Py<Handle>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.when
            .total_cmp(&other.when)
            .then(self.sequence.cmp(&other.sequence))
    }
}

#[derive(Default)]
struct State {
    /// Handles to run: ours, or asyncio's own (`add_reader`'s, signal handlers').
    ready: VecDeque<Py<PyAny>>,
    timers: BinaryHeap<Reverse<Timer>>,
    /// Timers cancelled while still in the heap.
    cancelled_timers: usize,
    sequence: u64,
}

/// The run pass of a :class:`~century_ring.asyncio.EventLoop`: its ready queue, its timers,
/// and ``_run_once``. Private to the loop.
///
/// :param loop: The loop, whose ``_selector``, ``_process_events``, ``_stopping``,
///     ``_debug``, ``_run_debug`` and ``_callback_failed`` the pass uses.
#[pyclass(frozen, module = "century_ring", name = "_RunQueue")]
pub struct RunQueue {
    state: Mutex<State>,
    closed: AtomicBool,
    event_loop: Py<PyAny>,
    clock_resolution: f64,
}

/// A callback scheduled on the loop, as ``loop.call_soon`` (a ``Handle``) or ``loop.call_at``
/// and ``loop.call_later`` (a ``TimerHandle``: it has a :meth:`when`) return it.
#[pyclass(module = "century_ring", name = "Handle")]
pub struct Handle {
    #[pyo3(get, name = "_callback")]
    callback: Option<Py<PyAny>>,
    #[pyo3(get, name = "_args")]
    args: Option<Py<PyTuple>>,
    #[pyo3(get, name = "_context")]
    context: Py<PyAny>,
    #[pyo3(get, name = "_cancelled")]
    cancelled: bool,
    /// A timer's time (``loop.time()``'s clock); ``None`` for ``call_soon``'s.
    #[pyo3(get, name = "_when")]
    when: Option<f64>,
    /// Whether a timer is in the loop's heap.
    #[pyo3(get, name = "_scheduled")]
    scheduled: bool,
    /// Where it was scheduled, in debug mode (asyncio's own format).
    #[pyo3(get, set, name = "_source_traceback")]
    source_traceback: Option<Py<PyAny>>,
    /// In debug mode, the representation kept when cancelled.
    repr: Option<String>,
    queue: Py<RunQueue>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Only plain data and reference counts change under the lock: a panic cannot leave it
    // half-changed.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `contextvars.copy_context`, looked up once.
fn copy_context(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static COPY_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    COPY_CONTEXT
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("contextvars")?.getattr("copy_context")?.unbind())
        })
        .map(|function| function.bind(py).clone())
}

#[pymethods]
impl RunQueue {
    #[new]
    fn new(event_loop: Py<PyAny>, clock_resolution: f64) -> Self {
        RunQueue {
            state: Mutex::new(State::default()),
            closed: AtomicBool::new(false),
            event_loop,
            clock_resolution,
        }
    }

    /// ``loop.call_soon``: ``callback(*args)`` at the next pass, in ``context`` (by default
    /// a copy of the current one).
    #[pyo3(signature = (callback, *args, context=None))]
    fn call_soon(
        slf: &Bound<'_, Self>,
        callback: Py<PyAny>,
        args: Py<PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let handle = Self::handle(slf, callback, args, context, None)?;
        lock(&slf.get().state)
            .ready
            .push_back(handle.clone_ref(slf.py()).into_any());
        Ok(handle)
    }

    /// ``loop.call_at``: ``callback(*args)`` once ``loop.time()`` reaches ``when``.
    #[pyo3(signature = (when, callback, *args, context=None))]
    fn call_at(
        slf: &Bound<'_, Self>,
        when: Option<f64>,
        callback: Py<PyAny>,
        args: Py<PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let when = when.ok_or_else(|| PyTypeError::new_err("when cannot be None"))?;
        let handle = Self::handle(slf, callback, args, context, Some(when))?;
        let mut state = lock(&slf.get().state);
        state.sequence += 1;
        let sequence = state.sequence;
        state.timers.push(Reverse(Timer {
            when,
            sequence,
            handle: handle.clone_ref(slf.py()),
        }));
        Ok(handle)
    }

    /// ``loop.call_later``: ``callback(*args)`` after ``delay`` seconds.
    #[pyo3(signature = (delay, callback, *args, context=None))]
    fn call_later(
        slf: &Bound<'_, Self>,
        delay: Option<f64>,
        callback: Py<PyAny>,
        args: Py<PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let delay = delay.ok_or_else(|| PyTypeError::new_err("delay must not be None"))?;
        Self::call_at(slf, Some(monotonic() + delay), callback, args, context)
    }

    /// ``loop.time()``: ``time.monotonic()``.
    #[staticmethod]
    fn time() -> f64 {
        monotonic()
    }

    /// Adds a handle of asyncio's own (or one of ours) to the ready queue, as asyncio's
    /// ``loop._ready.append`` does.
    fn append(&self, handle: Py<PyAny>) {
        lock(&self.state).ready.push_back(handle);
    }

    /// Takes the oldest ready handle.
    ///
    /// :raises IndexError: None is ready.
    fn popleft(&self) -> PyResult<Py<PyAny>> {
        lock(&self.state)
            .ready
            .pop_front()
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("pop from an empty queue"))
    }

    /// Forgets every ready handle (asyncio's ``close()`` clears ``_ready``).
    fn clear(&self) {
        let ready = std::mem::take(&mut lock(&self.state).ready);
        // Dropped outside the lock: a handle's last reference may run Python code.
        drop(ready);
    }

    fn __len__(&self) -> usize {
        lock(&self.state).ready.len()
    }

    fn __bool__(&self) -> bool {
        !lock(&self.state).ready.is_empty()
    }

    /// How many timers are in the heap, cancelled ones included.
    #[getter]
    fn timers(&self) -> usize {
        lock(&self.state).timers.len()
    }

    /// The loop is closed: scheduling is refused from now on, and what waits is dropped.
    fn close(&self) {
        self.closed.store(true, AtomicOrdering::Release);
        let state = std::mem::take(&mut *lock(&self.state));
        drop(state);
    }

    /// One pass of the loop, as asyncio's ``BaseEventLoop._run_once``: wait in the selector
    /// (not at all if something is ready or the loop is stopping, else until the next timer),
    /// process its events, move due timers to the ready queue, and run every handle that was
    /// ready then (not those they schedule: they wait for the next pass).
    fn run_once(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let event_loop = this.event_loop.bind(py);
        let stopping = event_loop.getattr(intern!(py, "_stopping"))?.is_truthy()?;
        let (timeout, swept) = {
            let mut state = lock(&this.state);
            let swept = this.sweep_cancelled(py, &mut state);
            let timeout = if !state.ready.is_empty() || stopping {
                Some(0.0)
            } else {
                state.timers.peek().map(|Reverse(first)| {
                    (first.when - monotonic()).clamp(0.0, MAXIMUM_SELECT_TIMEOUT)
                })
            };
            (timeout, swept)
        };
        drop(swept);
        let events = event_loop
            .getattr(intern!(py, "_selector"))?
            .call_method1(intern!(py, "select"), (timeout,))?;
        if events.is_truthy()? {
            event_loop.call_method1(intern!(py, "_process_events"), (events,))?;
        }
        let end = monotonic() + this.clock_resolution;
        let ready = {
            let mut state = lock(&this.state);
            while let Some(Reverse(first)) = state.timers.peek() {
                if first.when >= end {
                    break;
                }
                let Some(Reverse(timer)) = state.timers.pop() else {
                    break;
                };
                timer.handle.unschedule(py);
                state.ready.push_back(timer.handle.into_any());
            }
            state.ready.len()
        };
        let debug = event_loop.getattr(intern!(py, "_debug"))?.is_truthy()?;
        for _ in 0..ready {
            let Some(handle) = lock(&this.state).ready.pop_front() else {
                // A callback closed the loop.
                break;
            };
            let handle = handle.into_bound(py);
            if debug {
                event_loop.call_method1(intern!(py, "_run_debug"), (handle,))?;
            } else if let Ok(ours) = handle.cast::<Handle>() {
                Handle::run(ours)?;
            } else if !handle.getattr(intern!(py, "_cancelled"))?.is_truthy()? {
                handle.call_method0(intern!(py, "_run"))?;
            }
        }
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        // A thread holding the lock never waits for the collector, but this thread may be in
        // the middle of a change: visit what can be seen, skip the rest.
        if let Ok(state) = self.state.try_lock() {
            for handle in &state.ready {
                visit.call(handle)?;
            }
            for Reverse(timer) in state.timers.iter() {
                visit.call(&timer.handle)?;
            }
        }
        Ok(())
    }
}

impl RunQueue {
    fn handle(
        slf: &Bound<'_, Self>,
        callback: Py<PyAny>,
        args: Py<PyTuple>,
        context: Option<Py<PyAny>>,
        when: Option<f64>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        if slf.get().closed.load(AtomicOrdering::Acquire) {
            return Err(PyRuntimeError::new_err("Event loop is closed"));
        }
        let context = match context {
            Some(context) if !context.is_none(py) => context,
            _ => copy_context(py)?.call0()?.unbind(),
        };
        Py::new(
            py,
            Handle {
                callback: Some(callback),
                args: Some(args),
                context,
                cancelled: false,
                when,
                scheduled: when.is_some(),
                source_traceback: None,
                repr: None,
                queue: slf.clone().unbind(),
            },
        )
    }

    /// asyncio's clean-up of cancelled timers before a wait: all at once when they are many,
    /// else those at the head of the heap. Returns the handles taken out, for the caller to
    /// drop once the lock is released: a last reference may run Python code (a finalizer of
    /// something in the handle's context), which may schedule a callback, which takes the lock.
    #[must_use]
    fn sweep_cancelled(&self, py: Python<'_>, state: &mut State) -> Vec<Py<Handle>> {
        let mut swept = Vec::new();
        let scheduled = state.timers.len();
        if scheduled > MIN_SCHEDULED_TIMER_HANDLES
            && state.cancelled_timers as f64 / scheduled as f64
                > MIN_CANCELLED_TIMER_HANDLES_FRACTION
        {
            let mut kept = Vec::with_capacity(scheduled - state.cancelled_timers.min(scheduled));
            for Reverse(timer) in std::mem::take(&mut state.timers).into_vec() {
                if timer.handle.is_cancelled(py) {
                    timer.handle.unschedule(py);
                    swept.push(timer.handle);
                } else {
                    kept.push(Reverse(timer));
                }
            }
            state.timers = BinaryHeap::from(kept);
            state.cancelled_timers = 0;
            return swept;
        }
        while let Some(Reverse(first)) = state.timers.peek() {
            if !first.handle.is_cancelled(py) {
                break;
            }
            if let Some(Reverse(timer)) = state.timers.pop() {
                timer.handle.unschedule(py);
                state.cancelled_timers = state.cancelled_timers.saturating_sub(1);
                swept.push(timer.handle);
            }
        }
        swept
    }
}

#[pymethods]
impl Handle {
    /// Cancels the callback: it will not run. Cancelling twice does nothing.
    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let queue = {
            let handle = slf.borrow();
            if handle.cancelled {
                return Ok(());
            }
            handle.queue.clone_ref(py)
        };
        let debug = queue
            .get()
            .event_loop
            .bind(py)
            .getattr(intern!(py, "_debug"))?
            .is_truthy()?;
        // In debug mode the representation is kept, for "Executing <Handle ...> took" logs.
        let repr = if debug {
            Some(slf.repr()?.to_string())
        } else {
            None
        };
        let mut handle = slf.borrow_mut();
        if handle.cancelled {
            return Ok(()); // cancelled meanwhile, by the code the repr ran or another thread
        }
        handle.cancelled = true;
        handle.repr = repr;
        let callback = handle.callback.take();
        let args = handle.args.take();
        let in_heap = handle.scheduled;
        drop(handle);
        if in_heap {
            lock(&queue.get().state).cancelled_timers += 1;
        }
        // Dropped last, outside every borrow: their destructors may run Python code.
        drop((callback, args));
        Ok(())
    }

    /// Whether it was cancelled.
    fn cancelled(&self) -> bool {
        self.cancelled
    }

    /// The :class:`contextvars.Context` the callback runs in.
    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.context.clone_ref(py)
    }

    /// A timer's time, on the clock of ``loop.time()``.
    ///
    /// :raises AttributeError: It was scheduled with ``call_soon``, not as a timer.
    fn when(&self) -> PyResult<f64> {
        self.when.ok_or_else(|| {
            pyo3::exceptions::PyAttributeError::new_err(
                "'Handle' object has no attribute 'when': call_soon() handles are not timers",
            )
        })
    }

    /// Runs the callback, as asyncio's ``Handle._run``.
    fn _run(slf: &Bound<'_, Self>) -> PyResult<()> {
        Handle::run(slf)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        // Copied out first: Python code runs below (the arguments' repr), and no borrow is
        // held over Python code anywhere in this file.
        let (kept, when, cancelled, call, traceback) = {
            let handle = slf.borrow();
            let call = handle
                .callback
                .as_ref()
                .zip(handle.args.as_ref())
                .map(|(callback, args)| (callback.clone_ref(py), args.clone_ref(py)));
            let traceback = handle.source_traceback.as_ref().map(|t| t.clone_ref(py));
            (
                handle.repr.clone(),
                handle.when,
                handle.cancelled,
                call,
                traceback,
            )
        };
        if let Some(repr) = kept {
            return Ok(repr);
        }
        let mut info = vec![if when.is_some() {
            "TimerHandle".to_owned()
        } else {
            "Handle".to_owned()
        }];
        if cancelled {
            info.push("cancelled".to_owned());
        }
        if let Some(when) = when {
            info.push(format!("when={}", PyFloat::new(py, when).repr()?));
        }
        if let Some((callback, args)) = call {
            let source = py
                .import(intern!(py, "asyncio.format_helpers"))?
                .call_method1(intern!(py, "_format_callback_source"), (callback, args))?;
            info.push(source.to_string());
        }
        if let Some(traceback) = traceback {
            let traceback = traceback.bind(py);
            if traceback.is_truthy()? {
                let frame = traceback.get_item(-1)?;
                info.push(format!(
                    "created at {}:{}",
                    frame.get_item(0)?,
                    frame.get_item(1)?
                ));
            }
        }
        Ok(format!("<{}>", info.join(" ")))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.callback)?;
        visit.call(&self.args)?;
        visit.call(&self.context)?;
        visit.call(&self.source_traceback)?;
        visit.call(&self.queue)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.callback = None;
        self.args = None;
        self.source_traceback = None;
    }
}

/// What the pass reads and writes of a handle while it holds the queue's lock. No borrow of a
/// handle is ever held over Python code, so with the GIL these never meet another; a
/// free-threaded interpreter may run another thread's borrow at the same moment, which these
/// step around (the flag is left as it was) rather than panic.
trait TimerFlags {
    fn is_cancelled(&self, py: Python<'_>) -> bool;
    fn unschedule(&self, py: Python<'_>);
}

impl TimerFlags for Py<Handle> {
    fn is_cancelled(&self, py: Python<'_>) -> bool {
        self.try_borrow(py).is_ok_and(|handle| handle.cancelled)
    }

    fn unschedule(&self, py: Python<'_>) {
        if let Ok(mut handle) = self.try_borrow_mut(py) {
            handle.scheduled = false;
        }
    }
}

impl Handle {
    /// Runs the callback in its context. An exception it raises goes to the loop's exception
    /// handler, as asyncio's ``Handle._run`` has it; ``SystemExit`` and ``KeyboardInterrupt``
    /// leave the loop.
    fn run(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (callback, args, context) = {
            let handle = slf.borrow();
            match (&handle.callback, &handle.args) {
                (Some(callback), Some(args)) if !handle.cancelled => (
                    callback.clone_ref(py),
                    args.clone_ref(py),
                    handle.context.clone_ref(py),
                ),
                _ => return Ok(()),
            }
        };
        let args = args.into_bound(py);
        let mut call = Vec::with_capacity(args.len() + 1);
        call.push(callback.into_bound(py));
        call.extend(args.iter());
        let call = PyTuple::new(py, call)?;
        let Err(err) = context.bind(py).call_method1(intern!(py, "run"), call) else {
            return Ok(());
        };
        if err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py) {
            return Err(err);
        }
        let event_loop = slf.borrow().queue.get().event_loop.clone_ref(py);
        event_loop
            .bind(py)
            .call_method1(intern!(py, "_callback_failed"), (slf, err.into_value(py)))
            .map(drop)
    }
}
