//! Change streams and live queries for Python: `ChangeStream` over the core's `SharedChanges`,
//! `WatchStream` over `SharedWatch`, read blocking (GIL released, signals checked) or as an
//! awaitable, and closable from any thread while a read waits. Only mapping: the Python layer
//! makes the changes typed objects and the streams (async) iterators.

use std::sync::Arc;
use std::time::Duration;

use hiqlite::{Change, SharedChanges, SharedWatch, StreamSource};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{value_to_py, QueryOut};
use crate::{error, runtime, spawn};

/// How long a blocking read waits before it looks at Python's signals (Ctrl-C) again; not a
/// timeout, it waits on.
const SIGNAL_CHECK: Duration = Duration::from_millis(200);

/// A change as the Python layer takes it: `(index, seq, cursor, table, op, rowid, columns, key,
/// new, old)`, values as Python values (`new`/`old` lists in column order, or `None`).
pub struct ChangeOut(Change);

impl<'py> IntoPyObject<'py> for ChangeOut {
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let c = self.0;
        let vals = |v: &[hiqlite::Value]| v.iter().map(|x| value_to_py(py, x)).collect::<PyResult<Vec<_>>>();
        let new = c.new.as_deref().map(vals).transpose()?;
        let old = c.old.as_deref().map(vals).transpose()?;
        PyTuple::new(
            py,
            [
                c.index.into_pyobject(py)?.into_any(),
                c.seq.into_pyobject(py)?.into_any(),
                c.cursor().to_string().into_pyobject(py)?.into_any(),
                c.table.as_str().into_pyobject(py)?.into_any(),
                c.op.as_str().into_pyobject(py)?.into_any(),
                c.rowid.into_pyobject(py)?.into_any(),
                c.columns.to_vec().into_pyobject(py)?.into_any(),
                vals(&c.key)?.into_pyobject(py)?.into_any(),
                new.into_pyobject(py)?.into_any(),
                old.into_pyobject(py)?.into_any(),
            ],
        )
    }
}

/// Read `core` blocking, with the GIL released, waking to look at signals.
fn next_blocking<S: StreamSource, T>(
    py: Python<'_>,
    core: &Arc<hiqlite::SharedStream<S>>,
    map: impl Fn(S::Item) -> T,
) -> PyResult<Option<T>> {
    loop {
        let core = Arc::clone(core);
        let got =
            py.detach(|| runtime().block_on(async { tokio::time::timeout(SIGNAL_CHECK, core.next()).await }));
        match got {
            Ok(r) => return r.map(|o| o.map(&map)).map_err(error::to_py),
            // Reading is cancel-safe: nothing was taken from the stream.
            Err(_) => py.check_signals()?,
        }
    }
}

/// A change stream (from `Database.changes`/`changes_async`). Thread-safe; `close` ends a read
/// that waits.
#[pyclass(frozen, module = "hiqlite._native")]
pub struct ChangeStream {
    core: Arc<SharedChanges>,
}

impl ChangeStream {
    /// Wrap the core's stream, which reads on the library's runtime.
    pub fn new(core: hiqlite::ChangeStream) -> ChangeStream {
        let _rt = runtime().enter();
        ChangeStream { core: Arc::new(SharedChanges::new(core)) }
    }
}

#[pymethods]
impl ChangeStream {
    /// The next change, waiting for it with the GIL released (`None` once closed).
    fn next(&self, py: Python<'_>) -> PyResult<Option<ChangeOut>> {
        next_blocking(py, &self.core, ChangeOut)
    }

    /// [`ChangeStream::next`] as an awaitable.
    fn next_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = Arc::clone(&self.core);
        spawn(py, async move { Ok(core.next().await?.map(ChangeOut)) })
    }

    /// Stop: a read waiting ends (with `None`), later reads return `None`. Does not wait.
    fn close(&self) {
        self.core.close();
    }

    /// Whether `close` was called.
    fn is_closed(&self) -> bool {
        self.core.is_closed()
    }
}

/// A live query (from `Database.watch`/`watch_async`). Thread-safe; `close` ends a read that
/// waits.
#[pyclass(frozen, module = "hiqlite._native")]
pub struct WatchStream {
    core: Arc<SharedWatch>,
}

impl WatchStream {
    /// Wrap the core's watch, which reads on the library's runtime.
    pub fn new(core: hiqlite::Watch) -> WatchStream {
        let _rt = runtime().enter();
        WatchStream { core: Arc::new(SharedWatch::new(core)) }
    }
}

#[pymethods]
impl WatchStream {
    /// The rows, `(columns, types, rows)`: at once, then each time they changed, waiting with
    /// the GIL released (`None` once closed).
    fn next(&self, py: Python<'_>) -> PyResult<Option<QueryOut>> {
        next_blocking(py, &self.core, QueryOut)
    }

    /// [`WatchStream::next`] as an awaitable.
    fn next_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = Arc::clone(&self.core);
        spawn(py, async move { Ok(core.next().await?.map(QueryOut)) })
    }

    /// Stop: a read waiting ends (with `None`), later reads return `None`. Does not wait.
    fn close(&self) {
        self.core.close();
    }

    /// Whether `close` was called.
    fn is_closed(&self) -> bool {
        self.core.is_closed()
    }
}
