//! `Transaction`: an interactive transaction (`hiqlite::Transaction`) for Python. Only mapping:
//! the DB-API layer decides when to begin, what runs inside and when to end.

use std::sync::Arc;

use hiqlite::{ExecResult, Params};
use pyo3::prelude::*;
use tokio::sync::Mutex;

use crate::convert::{to_params, ExecOut, QueryOut};
use crate::{block, runtime, spawn};

/// The transaction until it ends. Dropping an unended one rolls it back: the core spawns that
/// rollback on the current Tokio runtime, so the drop enters the library's runtime first (Python
/// may drop the handle on any thread).
struct Slot(Option<hiqlite::Transaction>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _rt = runtime().enter();
            drop(tx);
        }
    }
}

type Shared = Arc<Mutex<Slot>>;

fn ended() -> hiqlite::Error {
    hiqlite::Error::InvalidRequest("the transaction has already ended".into())
}

async fn exec(slot: Shared, sql: String, params: Params) -> hiqlite::Result<ExecResult> {
    let guard = slot.lock().await;
    let tx = guard.0.as_ref().ok_or_else(ended)?;
    tx.execute(&sql, params).await
}

async fn end(slot: Shared, commit: bool) -> hiqlite::Result<()> {
    let tx = slot.lock().await.0.take().ok_or_else(ended)?;
    if commit {
        tx.commit().await
    } else {
        tx.rollback().await
    }
}

/// An open interactive transaction (from `Database.begin`). Its statements see its own writes;
/// it commits as one replicated log entry or not at all; other writes wait while it is open.
/// Thread-safe: calls from several threads run one at a time. Dropping it without `commit` or
/// `rollback` rolls it back.
#[pyclass(frozen, module = "hiqlite._native")]
pub struct Transaction {
    slot: Shared,
}

impl Transaction {
    pub fn new(tx: hiqlite::Transaction) -> Transaction {
        Transaction { slot: Arc::new(Mutex::new(Slot(Some(tx)))) }
    }
}

#[pymethods]
impl Transaction {
    /// Run one statement inside the transaction (a write, a read, `SAVEPOINT`, `RELEASE`,
    /// `ROLLBACK TO`): `(rows_affected, last_insert_id, (columns, types, rows))`. A failed
    /// statement leaves the transaction open, as in SQLite.
    #[pyo3(signature = (sql, params=None))]
    fn execute(&self, py: Python<'_>, sql: String, params: Option<&Bound<'_, PyAny>>) -> PyResult<ExecOut> {
        let params = to_params(params)?;
        block(py, exec(self.slot.clone(), sql, params)).map(ExecOut)
    }

    /// A read inside the transaction, seeing its writes: `(columns, types, rows)`.
    #[pyo3(signature = (sql, params=None))]
    fn query(&self, py: Python<'_>, sql: String, params: Option<&Bound<'_, PyAny>>) -> PyResult<QueryOut> {
        let params = to_params(params)?;
        block(py, exec(self.slot.clone(), sql, params)).map(|r| QueryOut(r.rows))
    }

    /// Commit: one log entry with every statement, or nothing (except `HIQLITE_OUTCOME_UNKNOWN`:
    /// it may or may not commit). The transaction has ended afterwards, also on an error.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        block(py, end(self.slot.clone(), true))
    }

    /// Roll back: nothing of the transaction is applied.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        block(py, end(self.slot.clone(), false))
    }

    /// False once `commit` or `rollback` was called.
    fn is_open(&self) -> bool {
        // Only ever locked briefly or during one call; a busy lock means a call in flight.
        self.slot.try_lock().map_or(true, |s| s.0.is_some())
    }

    /// [`Transaction::execute`] as an awaitable.
    #[pyo3(signature = (sql, params=None))]
    fn execute_async<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = to_params(params)?;
        let slot = self.slot.clone();
        spawn(py, async move { exec(slot, sql, params).await.map(ExecOut) })
    }

    /// [`Transaction::query`] as an awaitable.
    #[pyo3(signature = (sql, params=None))]
    fn query_async<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = to_params(params)?;
        let slot = self.slot.clone();
        spawn(py, async move { exec(slot, sql, params).await.map(|r| QueryOut(r.rows)) })
    }

    /// [`Transaction::commit`] as an awaitable.
    fn commit_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, end(self.slot.clone(), true))
    }

    /// [`Transaction::rollback`] as an awaitable.
    fn rollback_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, end(self.slot.clone(), false))
    }
}
