//! The native part of the Python package `hiqlite`: a `Database` handle over `hiqlite::Client`
//! (embedded node or remote cluster), a `Transaction` handle over `hiqlite::Transaction`, and the
//! handles of locks (lock.rs), listeners (notify.rs), change streams and live queries (changes.rs).
//! Every blocking call releases the GIL and runs on the one Tokio runtime of the library; every
//! `*_async` call returns an asyncio awaitable driven by that same runtime (no thread per call).
//! The DB-API and asyncio layers are Python, in `python/hiqlite`.

mod changes;
mod convert;
mod coord;
mod error;
mod lock;
mod notify;
mod tx;

use std::future::Future;
use std::time::Duration;

use hiqlite::{Client, Consistency, NodeConfig, Statement};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use convert::{to_params, BatchOut, ExecOut, QueryOut};

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Run a core future to completion with the GIL released.
pub(crate) fn block<T: Send, F: Future<Output = hiqlite::Result<T>> + Send>(
    py: Python<'_>,
    f: F,
) -> PyResult<T> {
    py.detach(|| runtime().block_on(f)).map_err(error::to_py)
}

/// Hand a core future to asyncio as an awaitable.
pub(crate) fn spawn<'py, T, F>(py: Python<'py>, f: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: Future<Output = hiqlite::Result<T>> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move { f.await.map_err(error::to_py) })
}

/// A consistency level by its one name (`local`, `leader` or `linearizable`, as the core parses
/// it); anything else is the core's `HIQLITE_INVALID_REQUEST`.
pub(crate) fn level(name: Option<&str>) -> PyResult<Option<Consistency>> {
    name.map(|n| n.parse::<Consistency>().map_err(error::to_py)).transpose()
}

pub(crate) fn ttl(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| PyValueError::new_err("ttl must be a non-negative number of seconds"))
        })
        .transpose()
}

/// A read's minimum log index (a write's `log_index`): a non-negative int, not a bool.
fn min_index(o: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(o) = o.filter(|o| !o.is_none()) else { return Ok(None) };
    if o.is_instance_of::<pyo3::types::PyBool>() || !o.is_instance_of::<pyo3::types::PyInt>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "min_index must be an int (a write's log_index), not {}",
            o.get_type().name()?
        )));
    }
    o.extract::<u64>().map(Some).map_err(|_| {
        PyValueError::new_err(format!("min_index must be a log index (0 ..= 2**64 - 1), not {o}"))
    })
}

/// What a read does: `Some(index)` reads locally once the node applied `index`
/// (`Client::query_at`), so it takes no other consistency and no cache.
fn read_at(min_index: Option<u64>, consistency: Option<Consistency>, cached: bool) -> PyResult<Option<u64>> {
    let Some(i) = min_index else { return Ok(None) };
    if consistency.is_some_and(|c| c != Consistency::Local) {
        return Err(PyValueError::new_err(
            "min_index reads locally: it goes with consistency 'local' only (leader and linearizable \
             reads see every acknowledged write already)",
        ));
    }
    if cached {
        return Err(PyValueError::new_err("min_index does not go with cached=True"));
    }
    Ok(Some(i))
}

pub(crate) fn seconds(s: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err(format!("{what} must be a non-negative number of seconds")))
}

fn migrations(spec: &str, from_dir: bool) -> PyResult<Vec<hiqlite::Migration>> {
    if from_dir {
        return hiqlite::Migration::from_dir(spec).map_err(error::to_py);
    }
    serde_json::from_str(spec).map_err(|e| PyValueError::new_err(format!("migrations: {e}")))
}

fn statements(stmts: &Bound<'_, PyAny>) -> PyResult<Vec<Statement>> {
    let mut out = Vec::new();
    for item in stmts.try_iter()? {
        let item = item?;
        let (sql, params): (String, Option<Bound<'_, PyAny>>) = item.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("each statement must be a (sql, params) pair")
        })?;
        out.push(Statement::new(sql, to_params(params.as_ref())?));
    }
    Ok(out)
}

/// A handle to a hiqlite database: an embedded node or a remote cluster. Thread-safe; share it.
#[pyclass(frozen, module = "hiqlite._native")]
pub(crate) struct Database {
    client: Client,
}

#[pymethods]
impl Database {
    /// Start an embedded node from its configuration as JSON text (the fields of `NodeConfig`).
    #[staticmethod]
    fn open_node(py: Python<'_>, config_json: &str) -> PyResult<Database> {
        let cfg: NodeConfig = serde_json::from_str(config_json)
            .map_err(|e| error::to_py(hiqlite::Error::Config(format!("invalid node configuration: {e}"))))?;
        let client = block(py, Client::start(cfg))?;
        Ok(Database { client })
    }

    /// A client of a remote cluster (no connection is made yet).
    #[staticmethod]
    #[pyo3(signature = (urls, user=None, password=None, timeout=None, consistency=None, ca_pem=None, discover=true, read_your_writes=false))]
    #[allow(clippy::too_many_arguments)]
    fn connect(
        urls: Vec<String>,
        user: Option<String>,
        password: Option<String>,
        timeout: Option<f64>,
        consistency: Option<&str>,
        ca_pem: Option<Vec<u8>>,
        discover: bool,
        read_your_writes: bool,
    ) -> PyResult<Database> {
        let mut b = Client::remote(urls).discover(discover).read_your_writes(read_your_writes);
        if let Some(u) = user {
            b = b.basic_auth(u, password.unwrap_or_default());
        }
        if let Some(t) = ttl(timeout)? {
            b = b.timeout(t);
        }
        if let Some(c) = level(consistency)? {
            b = b.consistency(c);
        }
        if let Some(pem) = ca_pem {
            b = b.ca_cert_pem(pem);
        }
        Ok(Database { client: b.build().map_err(error::to_py)? })
    }

    /// True for a client of a remote cluster.
    fn is_remote(&self) -> bool {
        self.client.is_remote()
    }

    /// A handle on the same node or cluster in read-your-writes mode (`Client::read_your_writes`):
    /// its local reads wait until the answering node applied its own writes.
    fn read_your_writes(&self) -> Database {
        Database { client: self.client.read_your_writes() }
    }

    /// True in read-your-writes mode.
    fn is_read_your_writes(&self) -> bool {
        self.client.is_read_your_writes()
    }

    /// The highest log index of the writes made through this handle, or `None`.
    fn last_write_index(&self) -> Option<u64> {
        self.client.last_write_index()
    }

    /// One write through Raft: `(rows_affected, last_insert_id, (columns, types, rows))`.
    #[pyo3(signature = (sql, params=None))]
    fn execute(&self, py: Python<'_>, sql: &str, params: Option<&Bound<'_, PyAny>>) -> PyResult<ExecOut> {
        let params = to_params(params)?;
        block(py, self.client.execute(sql, params)).map(ExecOut)
    }

    /// A read: `(columns, types, rows)`. `min_index`: read locally once the node applied this
    /// log index (a write's `log_index`, made through any node).
    #[pyo3(signature = (sql, params=None, consistency=None, cached=false, ttl=None, min_index=None))]
    #[allow(clippy::too_many_arguments)]
    fn query(
        &self,
        py: Python<'_>,
        sql: &str,
        params: Option<&Bound<'_, PyAny>>,
        consistency: Option<&str>,
        cached: bool,
        ttl: Option<f64>,
        min_index: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<QueryOut> {
        let params = to_params(params)?;
        let at = read_at(self::min_index(min_index)?, level(consistency)?, cached)?;
        let c = level(consistency)?.unwrap_or(self.client.default_consistency());
        let ttl = self::ttl(ttl)?;
        let client = &self.client;
        block(py, async move {
            if let Some(i) = at {
                client.query_at(sql, params, i).await
            } else if cached {
                client.query_cached_with(sql, params, c, ttl).await
            } else {
                client.query_with(sql, params, c).await
            }
        })
        .map(QueryOut)
    }

    /// Several statements in one log entry. `transaction`: all or nothing (the first error is
    /// raised); otherwise each result is a write result or an error tuple.
    fn run(&self, py: Python<'_>, stmts: &Bound<'_, PyAny>, transaction: bool) -> PyResult<BatchOut> {
        let stmts = statements(stmts)?;
        if transaction {
            let r = block(py, self.client.transaction(stmts))?;
            Ok(BatchOut(r.into_iter().map(Ok).collect()))
        } else {
            block(py, self.client.batch(stmts)).map(BatchOut)
        }
    }

    /// Begin an interactive transaction (on the leader, wherever it is). Waits while another
    /// transaction is open, up to the node's busy timeout (then `SQLITE_BUSY`).
    fn begin(&self, py: Python<'_>) -> PyResult<tx::Transaction> {
        block(py, self.client.begin()).map(tx::Transaction::new)
    }

    /// [`Database::begin`] as an awaitable.
    fn begin_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.begin().await.map(tx::Transaction::new) })
    }

    /// Status of the node (embedded) or of the node a remote client reads from, as JSON text.
    fn status(&self, py: Python<'_>) -> PyResult<String> {
        let st = block(py, self.client.status())?;
        serde_json::to_string(&st).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The cluster's members as JSON text.
    fn nodes(&self, py: Python<'_>) -> PyResult<String> {
        let n = block(py, self.client.nodes())?;
        serde_json::to_string(&n).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Wait for an elected leader; returns its id.
    fn wait_for_leader(&self, py: Python<'_>, timeout: f64) -> PyResult<u64> {
        let t = ttl(Some(timeout))?.unwrap_or_default();
        block(py, self.client.wait_for_leader(t))
    }

    /// Stop the embedded node (nothing to stop for a remote client).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block(py, self.client.shutdown())
    }

    /// [`Database::execute`] as an awaitable.
    #[pyo3(signature = (sql, params=None))]
    fn execute_async<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = to_params(params)?;
        let client = self.client.clone();
        spawn(py, async move { client.execute(&sql, params).await.map(ExecOut) })
    }

    /// [`Database::query`] as an awaitable.
    #[pyo3(signature = (sql, params=None, consistency=None, cached=false, ttl=None, min_index=None))]
    #[allow(clippy::too_many_arguments)]
    fn query_async<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
        consistency: Option<&str>,
        cached: bool,
        ttl: Option<f64>,
        min_index: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = to_params(params)?;
        let at = read_at(self::min_index(min_index)?, level(consistency)?, cached)?;
        let c = level(consistency)?.unwrap_or(self.client.default_consistency());
        let ttl = self::ttl(ttl)?;
        let client = self.client.clone();
        spawn(py, async move {
            let rows = if let Some(i) = at {
                client.query_at(&sql, params, i).await?
            } else if cached {
                client.query_cached_with(&sql, params, c, ttl).await?
            } else {
                client.query_with(&sql, params, c).await?
            };
            Ok(QueryOut(rows))
        })
    }

    /// [`Database::run`] as an awaitable.
    fn run_async<'py>(
        &self,
        py: Python<'py>,
        stmts: &Bound<'py, PyAny>,
        transaction: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let stmts = statements(stmts)?;
        let client = self.client.clone();
        spawn(py, async move {
            if transaction {
                Ok(BatchOut(client.transaction(stmts).await?.into_iter().map(Ok).collect()))
            } else {
                Ok(BatchOut(client.batch(stmts).await?))
            }
        })
    }

    /// [`Database::status`] as an awaitable.
    fn status_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move {
            let st = client.status().await?;
            serde_json::to_string(&st).map_err(|e| hiqlite::Error::Decode(e.to_string()))
        })
    }

    /// Write a consistent online backup to `path` (must not exist); the log index it holds.
    fn backup(&self, py: Python<'_>, path: &str) -> PyResult<Option<u64>> {
        block(py, self.client.backup(path))
    }

    /// Load a backup file into the running cluster (every table replaced, one transaction).
    fn restore(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        block(py, self.client.restore(path))
    }

    /// Apply migrations: `spec` is a JSON array of `{id, name, sql}`, or (`from_dir`) a folder
    /// of numbered `.sql` files. Returns how many were applied now.
    fn migrate(&self, py: Python<'_>, spec: &str, from_dir: bool) -> PyResult<usize> {
        let list = migrations(spec, from_dir)?;
        block(py, self.client.migrate(&list))
    }

    /// [`Database::backup`], [`Database::restore`], [`Database::migrate`] as awaitables.
    fn backup_async<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.backup(path).await })
    }

    fn restore_async<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.restore(path).await })
    }

    fn migrate_async<'py>(&self, py: Python<'py>, spec: &str, from_dir: bool) -> PyResult<Bound<'py, PyAny>> {
        let (client, list) = (self.client.clone(), migrations(spec, from_dir)?);
        spawn(py, async move { client.migrate(&list).await })
    }

    /// [`Database::close`] as an awaitable.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.shutdown().await })
    }
}

/// What a statement is, from its text: `read`, `write`, `begin`, `commit`, `rollback`,
/// `savepoint` (SAVEPOINT, RELEASE, ROLLBACK TO) or `empty`.
#[pyfunction]
fn statement_kind(sql: &str) -> &'static str {
    match hiqlite::statement_kind(sql) {
        hiqlite::StatementKind::Read => "read",
        hiqlite::StatementKind::Write => "write",
        hiqlite::StatementKind::Begin => "begin",
        hiqlite::StatementKind::Commit => "commit",
        hiqlite::StatementKind::Rollback => "rollback",
        hiqlite::StatementKind::Empty => "empty",
        hiqlite::StatementKind::Savepoint => "savepoint",
    }
}

/// Start an embedded node, as an awaitable.
#[pyfunction]
fn open_node_async(py: Python<'_>, config_json: String) -> PyResult<Bound<'_, PyAny>> {
    let cfg: NodeConfig = serde_json::from_str(&config_json)
        .map_err(|e| error::to_py(hiqlite::Error::Config(format!("invalid node configuration: {e}"))))?;
    spawn(py, async move { Ok(Database { client: Client::start(cfg).await? }) })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    hiqlite::install_crypto_provider();
    m.add_class::<Database>()?;
    m.add_class::<tx::Transaction>()?;
    m.add_class::<lock::Lock>()?;
    m.add_class::<notify::Listener>()?;
    m.add_class::<changes::ChangeStream>()?;
    m.add_class::<changes::WatchStream>()?;
    m.add_function(wrap_pyfunction!(statement_kind, m)?)?;
    m.add_function(wrap_pyfunction!(open_node_async, m)?)?;
    m.add("NativeError", m.py().get_type::<error::NativeError>())?;
    Ok(())
}
