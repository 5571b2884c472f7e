//! `Listener`: a listener on one channel (`hiqlite::Listener`) for Python, read blocking (GIL
//! released) or as an awaitable, and closable from any thread while a read waits. Only mapping:
//! the Python layer makes the events typed objects and the listener an (async) iterator.

use std::sync::Arc;
use std::time::Duration;

use hiqlite::ListenEvent;
use pyo3::prelude::*;
use tokio::sync::{watch, Mutex};

use crate::{error, runtime, spawn};

/// An event as the Python layer takes it: `(id, channel, payload, False)` for a notification,
/// `(after, None, None, lost)` for a lag marker; `None` once the listener is closed.
type Event = Option<(i64, Option<String>, Option<Vec<u8>>, bool)>;

/// How long a blocking read waits before it looks at Python's signals (Ctrl-C) again; not a
/// timeout, it waits on.
const SIGNAL_CHECK: Duration = Duration::from_millis(200);

struct State {
    /// True once closed: a read waiting then ends.
    closed: watch::Sender<bool>,
    /// The core's listener; `None` once closed or failed.
    core: Mutex<Option<hiqlite::Listener>>,
}

impl Drop for State {
    fn drop(&mut self) {
        // A remote listener's stream belongs to the library's runtime; Python may drop the
        // handle on any thread.
        if let Some(l) = self.core.get_mut().take() {
            let _rt = runtime().enter();
            drop(l);
        }
    }
}

/// The next event; `None` once closed. A failed listener is done: its error is raised once,
/// and reads after it return `None`.
async fn next(state: Arc<State>) -> hiqlite::Result<Event> {
    let mut closed = state.closed.subscribe();
    let mut core = state.core.lock().await;
    let Some(l) = core.as_mut() else { return Ok(None) };
    if *closed.borrow_and_update() {
        *core = None;
        return Ok(None);
    }
    let got = tokio::select! {
        biased;
        _ = closed.wait_for(|c| *c) => None,
        e = l.next() => Some(e),
    };
    match got {
        Some(Ok(ListenEvent::Notification(n))) => Ok(Some((n.id, Some(n.channel), Some(n.payload), false))),
        Some(Ok(ListenEvent::Lagged { after, lost })) => Ok(Some((after, None, None, lost))),
        Some(Err(e)) => {
            *core = None;
            Err(e)
        }
        None => {
            *core = None;
            Ok(None)
        }
    }
}

/// A listener on one channel (from `Database.listen`/`listen_async`): every notification after
/// its cursor, in log order. Thread-safe; `close` ends a read that waits.
#[pyclass(frozen, module = "hiqlite._native")]
pub struct Listener {
    state: Arc<State>,
    channel: String,
}

impl Listener {
    pub fn new(core: hiqlite::Listener, channel: String) -> Listener {
        let state = State { closed: watch::Sender::new(false), core: Mutex::new(Some(core)) };
        Listener { state: Arc::new(state), channel }
    }
}

#[pymethods]
impl Listener {
    /// The channel it follows.
    #[getter]
    fn channel(&self) -> &str {
        &self.channel
    }

    /// The next event, waiting for it with the GIL released (`None` once closed).
    fn next(&self, py: Python<'_>) -> PyResult<Event> {
        loop {
            let state = Arc::clone(&self.state);
            let got = py.detach(|| {
                runtime().block_on(async { tokio::time::timeout(SIGNAL_CHECK, next(state)).await })
            });
            match got {
                Ok(r) => return r.map_err(error::to_py),
                // Reading is cancel-safe: nothing was taken from the stream.
                Err(_) => py.check_signals()?,
            }
        }
    }

    /// [`Listener::next`] as an awaitable.
    fn next_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, next(Arc::clone(&self.state)))
    }

    /// Stop listening: a read waiting ends (with `None`), later reads return `None`. Does not
    /// wait; closing again does nothing.
    fn close(&self) {
        self.state.closed.send_replace(true);
        // Free the stream now unless a read holds it (that read drops it as it ends).
        if let Ok(mut core) = self.state.core.try_lock() {
            if let Some(l) = core.take() {
                let _rt = runtime().enter();
                drop(l);
            }
        }
    }

    /// Whether `close` was called.
    fn is_closed(&self) -> bool {
        *self.state.closed.borrow()
    }
}
