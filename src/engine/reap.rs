//! Reaping: the completions a ring collected become `CompletionEvent`s, delivered one by one,
//! oldest first, straight to whoever reaps (a list for `get_completion_entries`, or a waiter).
//!
//! Nothing is lost when memory runs out. Making an event only reads what its operation owns:
//! should CPython fail to allocate the event, its `bytes` or anything else it carries, the
//! completion stays at the head of the ready queue and is made again on the next reap. Only
//! when an event is delivered does its operation's memory learn that the user has the report
//! (a pipe's descriptors are theirs, a provided buffer owns its data) and go. A receiver that
//! cannot keep events it was given gives them back (`give_back`), to be delivered first next
//! time.

use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;

use super::completion_event::{CompletionEvent, CQE_F_MORE};
use super::delivery::{Copied, GivenBack, Reaped};
use super::ring::{RawCompletion, Ring};
use crate::mem::lent::{Lent, Report};

impl Ring {
    /// How many events the next [`Ring::reap_into`] can deliver: those given back, and the
    /// completions [`Ring::collect`] took.
    pub fn deliverable(&self) -> usize {
        self.reaped.len() + self.ready.len()
    }

    /// Delivers every event ready now to `deliver`, oldest first: first those given back,
    /// then the events of the completions [`Ring::collect`] took. From the moment `deliver` is
    /// called, the event is the receiver's, and so is what its completion reported. A
    /// `MemoryError` making an event stops it: that completion stays ready, for a later call.
    #[inline]
    pub fn reap_into(
        &mut self,
        py: Python<'_>,
        mut deliver: impl FnMut(Py<CompletionEvent>),
    ) -> PyResult<()> {
        // Nothing is chosen to be copied out: every completion comes as an event.
        self.reap_choosing(
            py,
            |_| None::<std::convert::Infallible>,
            |reaped| match reaped {
                Reaped::Event(event) => deliver(event),
                Reaped::Copied(_, never) => match never {},
            },
        )
    }

    /// Delivers every completion ready now, oldest first, as events, except that those for
    /// which `choose` gives a `T` come as [`Reaped::Copied`]: no event is made
    /// for them, their data is copied into `bytes` and a provided buffer goes straight back to
    /// its ring. For a receiver that would copy the data out of the event anyway (an event
    /// loop's stream transport), this is the cheaper form. `choose` is asked once per
    /// completion, in order, before it is taken.
    pub fn reap_choosing<T>(
        &mut self,
        py: Python<'_>,
        mut choose: impl FnMut(u64) -> Option<T>,
        mut deliver: impl FnMut(Reaped<T>),
    ) -> PyResult<()> {
        while let Some(given) = self.reaped.pop_front() {
            match given {
                GivenBack::Copied(copied) => match choose(copied.user_data) {
                    Some(target) => deliver(Reaped::Copied(copied, target)),
                    None => match self.event_of_copied(py, &copied) {
                        Ok(event) => deliver(Reaped::Event(event)),
                        Err(err) => {
                            self.reaped.push_front(GivenBack::Copied(copied));
                            return Err(err);
                        }
                    },
                },
                GivenBack::Event(event) => deliver(Reaped::Event(event)),
            }
        }
        let mut highest = 0;
        let mut made = Ok(());
        while let Some(&raw) = self.ready.front() {
            let taken = match choose(raw.user_data) {
                Some(target) => self
                    .take_copied(py, raw, &mut highest)
                    .map(|copied| Reaped::Copied(copied, target)),
                None => self.take_event(py, raw, &mut highest).map(Reaped::Event),
            };
            match taken {
                Ok(reaped) => deliver(reaped),
                Err(err) => {
                    made = Err(err);
                    break;
                }
            }
        }
        self.heap_reserve.keep_above(highest);
        made
    }

    /// Takes back events delivered to a receiver that could not keep them after all (no
    /// memory for the list they were going into), oldest first: they are delivered again, in
    /// the same order, before anything else. Their operations' memory is gone already; what
    /// they report is in the events.
    pub fn give_back(&mut self, events: Vec<Py<CompletionEvent>>) {
        for event in events.into_iter().rev() {
            self.reaped.push_front(GivenBack::Event(event));
        }
    }

    /// As [`Ring::give_back`], for what [`Ring::reap_choosing`] delivered.
    pub fn give_back_reaped<T>(&mut self, reaped: Vec<Reaped<T>>) {
        for reaped in reaped.into_iter().rev() {
            self.reaped.push_front(match reaped {
                Reaped::Event(event) => GivenBack::Event(event),
                Reaped::Copied(copied, _) => GivenBack::Copied(copied),
            });
        }
    }

    /// Drops the events given back and not delivered again (the ring is closing).
    pub(super) fn discard_reaped(&mut self) {
        self.reaped.clear();
    }

    /// The event of a completion taken as [`Copied`]: its data as the event's `buffer`.
    fn event_of_copied(
        &mut self,
        py: Python<'_>,
        copied: &Copied,
    ) -> PyResult<Py<CompletionEvent>> {
        let report = Report {
            buffer: copied.data.as_ref().map(|data| data.clone_ref(py)),
            extra: None,
        };
        CompletionEvent::make(
            py,
            &mut self.result_ints,
            (copied.user_data, copied.result, copied.flags),
            report,
            None,
        )
    }

    /// Takes the ready completion `raw` as an event.
    #[inline]
    fn take_event(
        &mut self,
        py: Python<'_>,
        raw: RawCompletion,
        highest: &mut usize,
    ) -> PyResult<Py<CompletionEvent>> {
        let event = self.make_event(py, raw, highest)?;
        self.ready.pop_front();
        self.hand_over(py, raw, &event);
        Ok(event)
    }

    /// Takes the ready completion `raw` with its data copied out (see [`Ring::reap_choosing`]).
    /// A `MemoryError` copying leaves it ready, its buffers still out of their ring.
    #[inline]
    fn take_copied(
        &mut self,
        py: Python<'_>,
        raw: RawCompletion,
        highest: &mut usize,
    ) -> PyResult<Copied> {
        let data = match self.inflight.get(raw.user_data) {
            None | Some(Lent::Nothing) => None,
            Some(lent) => lent
                .copy_out(py, raw.result, raw.flags)
                .or_else(|err| reported_as_extra(py, err, &mut None))?,
        };
        if let Some(data) = &data {
            let data = data.bind(py).as_bytes();
            *highest = (*highest).max(data.as_ptr() as usize + data.len());
        }
        self.ready.pop_front();
        if raw.flags & CQE_F_MORE == 0 {
            if let Some(lent) = self.inflight.remove(raw.user_data) {
                lent.release(&mut self.pool);
            }
        }
        Ok(Copied {
            user_data: raw.user_data,
            result: raw.result,
            flags: raw.flags,
            data,
        })
    }

    /// The completion `raw` reached the user as `event`: its operation's memory learns that
    /// the report is the user's, and goes if this was the final completion.
    #[inline]
    fn hand_over(&mut self, py: Python<'_>, raw: RawCompletion, event: &Py<CompletionEvent>) {
        if raw.flags & CQE_F_MORE == 0 {
            let lent = self.inflight.remove(raw.user_data);
            match lent {
                // The commonest case: nothing to hand over or free. Skip the call to the drop
                // glue of `Lent`.
                Some(Lent::Nothing) | None => std::mem::forget(lent),
                Some(lent) => {
                    lent.delivered(py, event.get().provided_buffer().bind(py));
                    lent.release(&mut self.pool);
                }
            }
        } else if let Some(lent @ Lent::Other(_)) = self.inflight.get(raw.user_data) {
            lent.delivered(py, event.get().provided_buffer().bind(py));
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
