//! Reaping: the completions a ring collected become `CompletionEvent`s, which are then
//! delivered one by one, oldest first, to whoever reaps (a list for `get_completion_entries`,
//! or a waiter).
//!
//! Nothing is lost when memory runs out. Making an event only reads what its operation owns:
//! should CPython fail to allocate the event, its `bytes` or anything else it carries, the
//! completion stays at the head of the ready queue and is made again on the next reap. Only
//! when an event is delivered does its operation's memory learn that the user has the report
//! (a pipe's descriptors are theirs, a provided buffer owns its data) and go. Events made and
//! not delivered wait in `reaped`; closing the ring discards them with their memory, as it
//! discards completions never reaped.

use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;

use super::completion_event::{CompletionEvent, CQE_F_MORE};
use super::ring::{RawCompletion, Ring};
use crate::mem::lent::{Lent, Report};

/// A completion made into its event, not delivered yet.
pub struct Reaped {
    user_data: u64,
    event: Py<CompletionEvent>,
    /// Whether it is the operation's final completion, the one that releases its memory.
    is_final: bool,
}

impl Ring {
    /// Makes events of the completions [`Ring::collect`] took, oldest first, for
    /// [`Ring::next_reaped`] to deliver. A `MemoryError` stops it; the completion that met it
    /// stays ready, and the events made before it stay reaped.
    pub fn reap(&mut self, py: Python<'_>) -> PyResult<()> {
        self.reaped
            .try_reserve(self.ready.len())
            .map_err(|_| PyMemoryError::new_err("no memory to reap the completions"))?;
        // The highest end of the `bytes` objects made, for the heap reserve.
        let mut highest = 0;
        let mut made = Ok(());
        while let Some(&raw) = self.ready.front() {
            match self.make_event(py, raw, &mut highest) {
                Ok(event) => {
                    self.ready.pop_front();
                    // Room was reserved above.
                    self.reaped.push_back(Reaped {
                        user_data: raw.user_data,
                        event,
                        is_final: raw.flags & CQE_F_MORE == 0,
                    });
                }
                Err(err) => {
                    made = Err(err);
                    break;
                }
            }
        }
        self.heap_reserve.keep_above(highest);
        made
    }

    /// How many events [`Ring::reap`] made that are not delivered yet.
    pub fn reaped_len(&self) -> usize {
        self.reaped.len()
    }

    /// Delivers the oldest event reaped: from now on the caller has it, and what the
    /// completion reported is the caller's.
    #[inline]
    pub fn next_reaped(&mut self, py: Python<'_>) -> Option<(u64, Py<CompletionEvent>)> {
        let Reaped {
            user_data,
            event,
            is_final,
        } = self.reaped.pop_front()?;
        if is_final {
            let lent = self.inflight.remove(user_data);
            match lent {
                // The commonest case: nothing to hand over or free. Skip the call to the drop
                // glue of `Lent`.
                Some(Lent::Nothing) | None => std::mem::forget(lent),
                Some(lent) => {
                    lent.delivered(py, event.get().provided_buffer().bind(py));
                    lent.release(&mut self.pool);
                }
            }
        } else if let Some(lent @ Lent::Other(_)) = self.inflight.get(user_data) {
            lent.delivered(py, event.get().provided_buffer().bind(py));
        }
        Some((user_data, event))
    }

    /// Drops the events reaped and not delivered, with their operations' memory (the ring is
    /// closing, or is a forked child's copy).
    pub(super) fn discard_reaped(&mut self) {
        while let Some(reaped) = self.reaped.pop_front() {
            if reaped.is_final {
                drop(self.inflight.remove(reaped.user_data));
            }
        }
    }

    /// The event of one completion, reading (never consuming) what its operation owns.
    #[inline]
    fn make_event(
        &mut self,
        py: Python<'_>,
        raw: RawCompletion,
        highest: &mut usize,
    ) -> PyResult<Py<CompletionEvent>> {
        let (report, provided) = match self.inflight.get(raw.user_data) {
            // The commonest case: an operation that owned nothing reports nothing.
            None | Some(Lent::Nothing) => (Report::default(), None),
            Some(lent) => {
                // Every completion, final or not, may carry data in provided buffers.
                let mut failed = None;
                let provided = lent
                    .on_completion(py, raw.result, raw.flags)
                    .or_else(|err| reported_as_extra(py, err, &mut failed))?;
                let report = if raw.flags & CQE_F_MORE == 0 {
                    lent.report(py, raw.result).or_else(|err| {
                        reported_as_extra::<()>(py, err, &mut failed).map(|_| Report::default())
                    })?
                } else {
                    Report::default()
                };
                if let Some(buffer) = &report.buffer {
                    let end = buffer.as_ptr() as usize + raw.result.max(0) as usize;
                    *highest = (*highest).max(end);
                }
                let report = Report {
                    extra: report.extra.or(failed),
                    ..report
                };
                (report, provided)
            }
        };
        CompletionEvent::make(
            py,
            &mut self.result_ints,
            (raw.user_data, raw.result, raw.flags),
            report,
            provided,
        )
    }
}

/// An error reading what a completion reports: a `MemoryError` is passed on, so that the
/// completion is made again later; any other is kept to be delivered as the event's `extra`
/// (it would recur every time, and must not hold up the completions behind it).
fn reported_as_extra<T>(
    py: Python<'_>,
    err: PyErr,
    failed: &mut Option<Py<PyAny>>,
) -> PyResult<Option<T>> {
    if err.is_instance_of::<PyMemoryError>(py) {
        return Err(err);
    }
    *failed = Some(err.into_value(py).into_any());
    Ok(None)
}
