//! `Listener`: a listener on one channel (`hiqlite::Listener`) for Python, read blocking (GIL
//! released) or as an awaitable, and closable from any thread while a read waits. Only mapping:
//! the Python layer makes the events typed objects and the listener an (async) iterator.

use std::sync::Arc;
use std::time::Duration;

use hiqlite::ListenEvent;
use pyo3::prelude::*;

use crate::{error, runtime, spawn};

/// An event as the Python layer takes it: `(id, channel, payload, False)` for a notification,
/// `(after, None, None, lost)` for a lag marker; `None` once the listener is closed.
type Event = Option<(i64, Option<String>, Option<Vec<u8>>, bool)>;

/// How long a blocking read waits before it looks at Python's signals (Ctrl-C) again; not a
/// timeout, it waits on.
const SIGNAL_CHECK: Duration = Duration::from_millis(200);

/// The next event as the Python layer takes it.
async fn next(core: Arc<hiqlite::SharedListener>) -> hiqlite::Result<Event> {
    Ok(core.next().await?.map(|e| match e {
        ListenEvent::Notification(n) => (n.id, Some(n.channel), Some(n.payload), false),
        ListenEvent::Lagged { after, lost } => (after, None, None, lost),
    }))
}

/// A listener on one channel (from `Database.listen`/`listen_async`): every notification after
/// its cursor, in log order. Thread-safe; `close` ends a read that waits.
#[pyclass(frozen, module = "hiqlite._native")]
pub struct Listener {
    core: Arc<hiqlite::SharedListener>,
    channel: String,
}

impl Listener {
    /// Wrap the core's listener, which reads on the library's runtime.
    pub fn new(core: hiqlite::Listener, channel: String) -> Listener {
        let _rt = runtime().enter();
        Listener { core: Arc::new(hiqlite::SharedListener::new(core)), channel }
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
            let core = Arc::clone(&self.core);
            let got = py.detach(|| {
                runtime().block_on(async { tokio::time::timeout(SIGNAL_CHECK, next(core)).await })
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
        spawn(py, next(Arc::clone(&self.core)))
    }

    /// Stop listening: a read waiting ends (with `None`), later reads return `None`. Does not
    /// wait; closing again does nothing.
    fn close(&self) {
        self.core.close();
    }

    /// Whether `close` was called.
    fn is_closed(&self) -> bool {
        self.core.is_closed()
    }
}
