//! `_Stream`: what an event loop's stream transport does once per message, compiled. A
//! connection's received data goes from the ring straight to the protocol's `data_received`,
//! its writes become sends that hold their `bytes`, and its send completions are handled here
//! (the rest of a partial send, the writes queued behind one, joined). The Python transport is
//! called only for what it decides: flow control, closing, errors, and data while reading is
//! paused.
//!
//! The loop's handler table maps the `user_data` of the stream's receive and sends to the
//! stream itself; `IoUring._reap_to` recognises it there and hands it the completions without
//! making events (`dispatch.rs`).

use io_uring::squeue::Flags;
use pyo3::call::PyCallArgs;
use pyo3::exceptions::PyException;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use pyo3::{intern, PyTraverseError};

use crate::base::objects;
use crate::engine::completion_event::{CompletionEvent, CQE_F_MORE};
use crate::mem::caller_buffer::{Access, HeldBuffer};
use crate::ops::{net, Source};
use crate::py::io_uring::IoUring;

/// The compiled half of a stream transport (``century_ring.asyncio``'s
/// ``RingSocketTransport``): private to the loop.
///
/// :param io_uring: The loop's ring.
/// :param fd: The connection's socket.
/// :param transport: The transport, whose ``_received``, ``_write``, ``_send_progress``,
///     ``_send_failed``, ``_maybe_pause_protocol`` and ``_fatal_error`` decide what is not
///     decided here.
/// :param handlers: The loop's ``user_data`` -> handler table; the stream enters its sends.
#[pyclass(module = "century_ring", name = "_Stream")]
pub struct Stream {
    io_uring: Py<IoUring>,
    fd: i32,
    transport: Option<Py<PyAny>>,
    handlers: Py<PyDict>,
    /// The ``user_data`` of the receive in flight, or ``None``; cleared here when its final
    /// completion arrives.
    #[pyo3(get, set)]
    receive: Option<u64>,
    /// Where received data goes (the protocol's ``data_received``), or ``None`` while the
    /// transport decides (paused, closing, a buffered protocol).
    #[pyo3(get, set)]
    deliver: Option<Py<PyAny>>,
    /// Whether :meth:`write` may send ``bytes`` without asking the transport (no EOF written,
    /// not lost, no sendfile in progress).
    #[pyo3(get, set)]
    write_direct: bool,
    /// Whether the transport hears of every send completion (it waits for the buffer to drain
    /// or shrink).
    #[pyo3(get, set)]
    watch: bool,
    /// Above this many buffered bytes, a write asks the transport to pause the protocol.
    #[pyo3(get, set)]
    high_water: usize,
    /// The send in flight: its ``user_data``, its data, and how much of that went before it.
    send: Option<u64>,
    sending: Option<Py<PyBytes>>,
    sent: usize,
    /// Writes waiting behind the send in flight, and their size.
    queued: Vec<Py<PyBytes>>,
    queued_size: usize,
}

#[pymethods]
impl Stream {
    #[new]
    fn new(io_uring: Py<IoUring>, fd: i32, transport: Py<PyAny>, handlers: Py<PyDict>) -> Self {
        Stream {
            io_uring,
            fd,
            transport: Some(transport),
            handlers,
            receive: None,
            deliver: None,
            write_direct: true,
            watch: false,
            high_water: usize::MAX,
            send: None,
            sending: None,
            sent: 0,
            queued: Vec::new(),
            queued_size: 0,
        }
    }

    /// The transport's ``write``: ``bytes`` go out as a send (or wait behind the one in
    /// flight) while :attr:`write_direct` holds; anything else goes to the transport's
    /// ``_write``.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let this = slf.borrow();
        if this.write_direct {
            if let Ok(bytes) = data.cast_exact::<PyBytes>() {
                if !bytes.as_bytes().is_empty() {
                    drop(this);
                    return Self::queue(slf, bytes);
                }
            }
        }
        drop(this);
        Self::tell(slf, intern!(slf.py(), "_write"), (data,))
    }

    /// Sends ``data`` after everything written before it, then asks the transport to pause
    /// the protocol if the buffer passed :attr:`high_water`.
    ///
    /// :raises TypeError: ``data`` is not exactly :class:`bytes`: the stream holds no object
    ///     whose finalizer could run Python code while it changes its state.
    #[pyo3(name = "queue")]
    fn queue_bytes(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = data.cast_exact::<PyBytes>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "_Stream.queue() takes bytes, not {}",
                data.get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |name| name.to_string())
            ))
        })?;
        Self::queue(slf, data)
    }

    /// Bytes written and not yet taken by the kernel.
    #[getter(buffered)]
    fn buffered_size(&self, py: Python<'_>) -> usize {
        self.buffered(py)
    }

    /// The ``user_data`` of the send in flight, or ``None``.
    #[getter]
    fn send_in_flight(&self) -> Option<u64> {
        self.send
    }

    /// Forgets everything not yet sent (the transport is aborted); returns the ``user_data``
    /// of the send in flight, for the transport to cancel. That send holds its own data until
    /// its completion.
    fn drop_sends(&mut self) -> Option<u64> {
        self.sending = None;
        self.sent = 0;
        self.queued.clear();
        self.queued_size = 0;
        self.send
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.io_uring)?;
        visit.call(&self.transport)?;
        visit.call(&self.handlers)?;
        visit.call(&self.deliver)?;
        visit.call(&self.sending)?;
        for data in &self.queued {
            visit.call(data)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        // The ring's own export of the data in flight keeps that alive until its completion.
        self.transport = None;
        self.deliver = None;
        self.sending = None;
        self.queued.clear();
    }
}

impl Stream {
    /// Sends ``data`` after everything written before it, then asks the transport to pause
    /// the protocol if the buffer passed `high_water`.
    fn queue(slf: &Bound<'_, Self>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        let mut this = slf.borrow_mut();
        if this.send.is_none() {
            drop(this);
            Self::start_send(slf, data.clone().unbind(), 0)?;
            this = slf.borrow_mut();
        } else {
            this.queued_size += data.as_bytes().len();
            this.queued.push(data.clone().unbind());
        }
        if this.buffered(slf.py()) > this.high_water {
            drop(this);
            return Self::tell(slf, intern!(slf.py(), "_maybe_pause_protocol"), ());
        }
        Ok(())
    }

    fn buffered(&self, py: Python<'_>) -> usize {
        let in_flight = self
            .sending
            .as_ref()
            .map_or(0, |data| data.bind(py).as_bytes().len() - self.sent);
        in_flight + self.queued_size
    }

    /// Takes what waits behind the send that completed, joined into one `bytes`; without
    /// memory to join them, the first alone (the rest keep waiting, in order).
    fn next_send(&mut self, py: Python<'_>) -> Py<PyBytes> {
        let joined = match self.queued.as_slice() {
            [only] => Ok(only.clone_ref(py)),
            queued => objects::bytes_with(py, self.queued_size, |destination| {
                let mut at = 0;
                for data in queued {
                    let data = data.bind(py).as_bytes();
                    // SAFETY: the queued writes add up to `queued_size` bytes, the room
                    // `destination` has.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            data.as_ptr(),
                            destination.add(at),
                            data.len(),
                        )
                    };
                    at += data.len();
                }
            })
            .map(Bound::unbind),
        };
        match joined {
            Ok(joined) => {
                self.queued.clear();
                self.queued_size = 0;
                joined
            }
            Err(_) => {
                let first = self.queued.remove(0);
                self.queued_size -= first.bind(py).as_bytes().len();
                first
            }
        }
    }

    /// Queues a send of `data` from `offset`, entered in the handler table.
    fn start_send(slf: &Bound<'_, Self>, data: Py<PyBytes>, offset: usize) -> PyResult<()> {
        let py = slf.py();
        let (fd, io_uring, handlers) = {
            let this = slf.borrow();
            (
                this.fd,
                this.io_uring.clone_ref(py),
                this.handlers.clone_ref(py),
            )
        };
        let held = HeldBuffer::new(data.bind(py).as_any(), "data", Access::ReadOnly)?;
        let count = held.len() - offset;
        let source = Source::Borrowed {
            held,
            start: offset,
            count,
        };
        let user_data = io_uring.get().queue(Flags::empty(), |_| {
            Ok(net::send(fd, source, libc::MSG_NOSIGNAL))
        })?;
        let mut this = slf.borrow_mut();
        this.send = Some(user_data);
        this.sending = Some(data);
        this.sent = offset;
        drop(this);
        handlers.bind(py).set_item(user_data, slf)
    }

    /// One of the stream's completions, taken without an event: `data` is what a receive
    /// brought. A completion of an operation the stream no longer follows is dropped.
    pub fn completed(
        slf: &Bound<'_, Self>,
        user_data: u64,
        result: i32,
        flags: u32,
        data: Option<Py<PyBytes>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        if this.receive == Some(user_data) {
            let more = flags & CQE_F_MORE != 0;
            if !more {
                this.receive = None;
            }
            if let (true, Some(deliver), Some(data)) = (more && result > 0, &this.deliver, &data) {
                let deliver = deliver.clone_ref(py);
                drop(this);
                return match deliver.call1(py, (data,)) {
                    Ok(_) => Ok(()),
                    Err(err) if err.is_instance_of::<PyException>(py) => Self::tell(
                        slf,
                        intern!(py, "_fatal_error"),
                        (err, "Fatal error: protocol.data_received() call failed."),
                    ),
                    // KeyboardInterrupt and SystemExit leave the loop.
                    Err(err) => Err(err),
                };
            }
            drop(this);
            return Self::tell(slf, intern!(py, "_received"), (result, data, more));
        }
        if this.send == Some(user_data) {
            drop(this);
            return Self::sent(slf, result);
        }
        Ok(())
    }

    /// As [`Stream::completed`], for a completion that came as an event (one given back to
    /// the ring after a handler raised, say).
    pub fn completed_event(
        slf: &Bound<'_, Self>,
        event: &Bound<'_, CompletionEvent>,
    ) -> PyResult<()> {
        let py = slf.py();
        let (user_data, result, flags) = event.get().raw();
        let mut data = event
            .getattr(intern!(py, "buffer"))?
            .cast_into::<PyBytes>()
            .ok()
            .map(Bound::unbind);
        let provided = event.get().provided_buffer().bind(py);
        if data.is_none() && !provided.is_none() {
            let copy = provided.call_method0(intern!(py, "tobytes"))?;
            provided.call_method0(intern!(py, "release"))?;
            data = Some(copy.cast_into::<PyBytes>()?.unbind());
        }
        Self::completed(slf, user_data, result, flags, data)
    }

    /// The send in flight completed with `result`: the rest of it, or what waits behind it,
    /// goes out next.
    fn sent(slf: &Bound<'_, Self>, result: i32) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        this.send = None;
        if result < 0 {
            this.drop_sends();
            drop(this);
            return Self::tell(slf, intern!(py, "_send_failed"), (result,));
        }
        this.sent += result as usize;
        let length = this
            .sending
            .as_ref()
            .map_or(0, |data| data.bind(py).as_bytes().len());
        let next = if this.sent < length {
            let offset = this.sent;
            this.sending.take().map(|data| (data, offset))
        } else if !this.queued.is_empty() {
            this.sending = None;
            this.sent = 0;
            Some((this.next_send(py), 0))
        } else {
            this.sending = None;
            this.sent = 0;
            None
        };
        let watch = this.watch;
        drop(this);
        if let Some((data, offset)) = next {
            Self::start_send(slf, data, offset)?;
        }
        if watch {
            return Self::tell(slf, intern!(py, "_send_progress"), ());
        }
        Ok(())
    }

    /// Calls the transport's method `name` with `args`, for what it decides (nothing once the
    /// collector has cleared the stream). No borrow of the stream may be held: the transport
    /// comes back into it.
    fn tell<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
        args: impl PyCallArgs<'py>,
    ) -> PyResult<()> {
        let transport = slf
            .borrow()
            .transport
            .as_ref()
            .map(|t| t.clone_ref(slf.py()));
        match transport {
            Some(transport) => transport.bind(slf.py()).call_method1(name, args).map(drop),
            None => Ok(()),
        }
    }
}
