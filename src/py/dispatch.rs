//! `IoUring._reap_to`: an event loop's dispatch, compiled. Completions go to handlers by
//! `user_data`, in order, without a Python loop over them; those of a `_Stream` (a transport's
//! receive and sends) go to it without becoming events at all.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList};

use crate::base::objects::ListFiller;
use crate::engine::completion_event::CQE_F_MORE;
use crate::engine::delivery::Reaped;
use crate::py::io_uring::IoUring;
use crate::py::stream::Stream;

/// A completion chosen for a stream: the stream, and the key it is entered under.
type ForStream = (Py<Stream>, Py<PyInt>);

#[pymethods]
impl IoUring {
    /// Reaps every completion that is ready now, without blocking, and hands each whose
    /// ``user_data`` is a key of ``handlers`` to its handler, in order: an event loop's
    /// dispatch without a Python loop over the events. A handler is called with the event and
    /// its key removed first, unless the event's :attr:`~CompletionEvent.more` says more
    /// completions of that operation will follow. Handlers may queue and submit operations.
    /// A handler that is a ``_Stream`` is handed its completions without events (their data
    /// copied into :class:`bytes`, provided buffers given back at once).
    ///
    /// Nothing is lost when a handler raises: the completions not yet handed over (and those
    /// without a handler) are kept, in order, for the next call, and the exception propagates.
    ///
    /// :param handlers: ``user_data`` -> a callable taking a :class:`CompletionEvent`.
    /// :returns: The events without a handler, oldest first.
    /// :raises MemoryError: Not even one event could be made; none was taken.
    fn _reap_to<'py>(
        &self,
        py: Python<'py>,
        handlers: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut reaped: Vec<Reaped<ForStream>> = Vec::new();
        self.with_ring(|ring| {
            ring.collect()?;
            reaped.reserve(ring.deliverable());
            // Only a dict lookup with an `int` key runs here, under the ring's lock: no Python
            // code that could come back into the ring.
            let made = ring.reap_choosing(
                py,
                |user_data| stream_for(handlers, user_data),
                |item| reaped.push(item),
            );
            match made {
                Err(err) if reaped.is_empty() => Err(err),
                // The completion that met the shortage comes with a later call.
                _ => Ok(()),
            }
        })?;
        let mut unhandled: Vec<Reaped<ForStream>> = Vec::new();
        let mut items = reaped.into_iter();
        // Keeps what was not handed over for the next call, in order, and passes `err` on.
        let keep = |mut kept: Vec<Reaped<ForStream>>, err: PyErr| -> PyErr {
            // Only a closed ring refuses; its completions have nowhere to go then.
            let _ = self.with_ring(|ring| {
                ring.give_back_reaped(std::mem::take(&mut kept));
                Ok(())
            });
            err
        };
        while let Some(item) = items.next() {
            let handed = match item {
                Reaped::Copied(copied, (stream, key)) => {
                    if copied.flags & CQE_F_MORE == 0 {
                        // Gone already if a handler before this one cleared the table; the
                        // stream still takes its completion.
                        let _ = handlers.del_item(key.bind(py));
                    }
                    Stream::completed(
                        stream.bind(py),
                        copied.user_data,
                        copied.result,
                        copied.flags,
                        copied.data,
                    )
                }
                Reaped::Event(event) => {
                    let (user_data, more) = {
                        let event = event.get();
                        (event.user_data(), event.more())
                    };
                    let Ok(key) = user_data.into_pyobject(py);
                    let found = handlers.get_item(&key).and_then(|handler| {
                        if handler.is_some() && !more {
                            handlers.del_item(&key)?;
                        }
                        Ok(handler)
                    });
                    match found {
                        Ok(Some(handler)) => match handler.cast::<Stream>() {
                            Ok(stream) => Stream::completed_event(stream, event.bind(py)),
                            Err(_) => handler.call1((event,)).map(drop),
                        },
                        Ok(None) => {
                            unhandled.push(Reaped::Event(event));
                            continue;
                        }
                        Err(err) => {
                            // Not handed over: it stays, with everything after it.
                            unhandled.push(Reaped::Event(event));
                            unhandled.extend(items);
                            return Err(keep(unhandled, err));
                        }
                    }
                }
            };
            if let Err(err) = handed {
                // The handler had its completion; the ones after it wait for the next call.
                unhandled.extend(items);
                return Err(keep(unhandled, err));
            }
        }
        let mut list = match ListFiller::new(py, unhandled.len()) {
            Ok(list) => list,
            Err(err) => return Err(keep(unhandled, err)),
        };
        for item in unhandled {
            if let Reaped::Event(event) = item {
                list.push(event.into_any());
            }
        }
        // Made at its final length, so finishing it allocates nothing and cannot fail.
        list.finish().map_err(|(_, err)| err)
    }
}

/// The stream `handlers` has for `user_data`, if its handler is one.
fn stream_for(handlers: &Bound<'_, PyDict>, user_data: u64) -> Option<ForStream> {
    let key = user_data.into_pyobject(handlers.py()).ok()?;
    let handler = handlers.get_item(&key).ok()??;
    let stream = handler.cast_into::<Stream>().ok()?;
    Some((stream.unbind(), key.unbind()))
}
