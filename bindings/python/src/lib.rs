//! The native part of the Python package `hiqlite`: a `Database` handle over `hiqlite::Client`
//! (embedded node or remote cluster), a `Transaction` handle over `hiqlite::Transaction`, and the
//! handles of locks (lock.rs), listeners (notify.rs), change streams and live queries (changes.rs).
//! Every blocking call releases the GIL and runs on the one Tokio runtime of the library; every
//! `*_async` call returns an asyncio awaitable driven by that same runtime (no thread per call).
//! The DB-API and asyncio layers are Python, in `python/hiqlite`.

mod changes;
mod convert;
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
fn level(name: Option<&str>) -> PyResult<Option<Consistency>> {
    name.map(|n| n.parse::<Consistency>().map_err(error::to_py)).transpose()
}

fn ttl(seconds: Option<f64>) -> PyResult<Option<Duration>> {
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

fn seconds(s: f64, what: &str) -> PyResult<Duration> {
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
struct Database {
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

    // -- coordination: key/value with expiry, and counters (the core's `Client::kv_*` and
    // `Client::counter_*`); values are bytes, ttls seconds, consistency a level's name.

    /// Set `key` in `ns` to `value`, cluster-wide; with `ttl` (seconds) it expires.
    #[pyo3(signature = (ns, key, value, ttl=None))]
    fn kv_put(&self, py: Python<'_>, ns: &str, key: &str, value: &[u8], ttl: Option<f64>) -> PyResult<()> {
        let ttl = self::ttl(ttl)?;
        block(py, self.client.kv_put(ns, key, value, ttl))
    }

    /// The value of `key` in `ns` (default: this replica's), or `None`.
    #[pyo3(signature = (ns, key, consistency=None))]
    fn kv_get(
        &self,
        py: Python<'_>,
        ns: &str,
        key: &str,
        consistency: Option<&str>,
    ) -> PyResult<Option<Vec<u8>>> {
        let c = level(consistency)?.unwrap_or(Consistency::Local);
        block(py, self.client.kv_get_with(ns, key, c))
    }

    /// Remove `key`; whether it was there.
    fn kv_delete(&self, py: Python<'_>, ns: &str, key: &str) -> PyResult<bool> {
        block(py, self.client.kv_delete(ns, key))
    }

    /// Remove `key` and return the value it had, atomically.
    fn kv_get_and_delete(&self, py: Python<'_>, ns: &str, key: &str) -> PyResult<Option<Vec<u8>>> {
        block(py, self.client.kv_get_and_delete(ns, key))
    }

    /// Compare and swap (`None`: absent / delete); whether it swapped.
    #[pyo3(signature = (ns, key, expected, new, ttl=None))]
    fn kv_replace(
        &self,
        py: Python<'_>,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<f64>,
    ) -> PyResult<bool> {
        let ttl = self::ttl(ttl)?;
        block(py, self.client.kv_replace(ns, key, expected, new, ttl))
    }

    /// Keep at most `max_entries` keys in `ns` (`None`: no limit).
    fn kv_set_limit(&self, py: Python<'_>, ns: &str, max_entries: Option<u64>) -> PyResult<()> {
        block(py, self.client.kv_set_limit(ns, max_entries))
    }

    /// A counter's value (default: this replica's; 0 when never set).
    #[pyo3(signature = (name, consistency=None))]
    fn counter_get(&self, py: Python<'_>, name: &str, consistency: Option<&str>) -> PyResult<i64> {
        let c = level(consistency)?.unwrap_or(Consistency::Local);
        block(py, self.client.counter_get_with(name, c))
    }

    /// Add `delta` to a counter atomically, cluster-wide; the new value.
    fn counter_add(&self, py: Python<'_>, name: &str, delta: i64) -> PyResult<i64> {
        block(py, self.client.counter_add(name, delta))
    }

    /// Set a counter, cluster-wide; the value.
    fn counter_set(&self, py: Python<'_>, name: &str, value: i64) -> PyResult<i64> {
        block(py, self.client.counter_set(name, value))
    }

    /// [`Database::kv_put`] as an awaitable.
    #[pyo3(signature = (ns, key, value, ttl=None))]
    fn kv_put_async<'py>(
        &self,
        py: Python<'py>,
        ns: String,
        key: String,
        value: &[u8],
        ttl: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (ttl, client, value) = (self::ttl(ttl)?, self.client.clone(), value.to_vec());
        spawn(py, async move { client.kv_put(&ns, &key, value, ttl).await })
    }

    /// [`Database::kv_get`] as an awaitable.
    #[pyo3(signature = (ns, key, consistency=None))]
    fn kv_get_async<'py>(
        &self,
        py: Python<'py>,
        ns: String,
        key: String,
        consistency: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (c, client) = (level(consistency)?.unwrap_or(Consistency::Local), self.client.clone());
        spawn(py, async move { client.kv_get_with(&ns, &key, c).await })
    }

    /// [`Database::kv_delete`] as an awaitable.
    fn kv_delete_async<'py>(&self, py: Python<'py>, ns: String, key: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.kv_delete(&ns, &key).await })
    }

    /// [`Database::kv_get_and_delete`] as an awaitable.
    fn kv_get_and_delete_async<'py>(
        &self,
        py: Python<'py>,
        ns: String,
        key: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.kv_get_and_delete(&ns, &key).await })
    }

    /// [`Database::kv_replace`] as an awaitable.
    #[pyo3(signature = (ns, key, expected, new, ttl=None))]
    fn kv_replace_async<'py>(
        &self,
        py: Python<'py>,
        ns: String,
        key: String,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (ttl, client) = (self::ttl(ttl)?, self.client.clone());
        let (expected, new) = (expected.map(<[u8]>::to_vec), new.map(<[u8]>::to_vec));
        spawn(py, async move { client.kv_replace(&ns, &key, expected.as_deref(), new.as_deref(), ttl).await })
    }

    /// [`Database::kv_set_limit`] as an awaitable.
    fn kv_set_limit_async<'py>(
        &self,
        py: Python<'py>,
        ns: String,
        max_entries: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.kv_set_limit(&ns, max_entries).await })
    }

    /// [`Database::counter_get`] as an awaitable.
    #[pyo3(signature = (name, consistency=None))]
    fn counter_get_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        consistency: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (c, client) = (level(consistency)?.unwrap_or(Consistency::Local), self.client.clone());
        spawn(py, async move { client.counter_get_with(&name, c).await })
    }

    /// [`Database::counter_add`] as an awaitable.
    fn counter_add_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        delta: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.counter_add(&name, delta).await })
    }

    /// [`Database::counter_set`] as an awaitable.
    fn counter_set_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        value: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move { client.counter_set(&name, value).await })
    }

    // -- distributed locks (the core's `Client::lock` and `Client::try_lock`); durations in
    // seconds.

    /// Take lock `name` with a lease of `lease` seconds, waiting in line (FIFO) up to `wait`
    /// seconds (then `HIQLITE_TIMEOUT`).
    fn lock(&self, py: Python<'_>, name: &str, lease: f64, wait: f64) -> PyResult<lock::Lock> {
        let (lease, wait) = (seconds(lease, "lease")?, seconds(wait, "wait")?);
        block(py, self.client.lock(name, lease, wait)).map(lock::Lock::new)
    }

    /// Take lock `name` only if it is free and nobody waits for it; otherwise `None`.
    fn try_lock(&self, py: Python<'_>, name: &str, lease: f64) -> PyResult<Option<lock::Lock>> {
        let lease = seconds(lease, "lease")?;
        Ok(block(py, self.client.try_lock(name, lease))?.map(lock::Lock::new))
    }

    /// [`Database::lock`] as an awaitable.
    fn lock_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        lease: f64,
        wait: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (lease, wait) = (seconds(lease, "lease")?, seconds(wait, "wait")?);
        let client = self.client.clone();
        spawn(py, async move { client.lock(&name, lease, wait).await.map(lock::Lock::new) })
    }

    /// [`Database::try_lock`] as an awaitable.
    fn try_lock_async<'py>(&self, py: Python<'py>, name: String, lease: f64) -> PyResult<Bound<'py, PyAny>> {
        let lease = seconds(lease, "lease")?;
        let client = self.client.clone();
        spawn(py, async move { Ok(client.try_lock(&name, lease).await?.map(lock::Lock::new)) })
    }

    // -- listen/notify (the core's `Client::notify` and `Client::listen`).

    /// Publish `payload` on `channel`, cluster-wide; the notification's id.
    fn notify(&self, py: Python<'_>, channel: &str, payload: &[u8]) -> PyResult<i64> {
        block(py, self.client.notify(channel, payload))
    }

    /// Follow `channel`: every notification after id `after` (`None`: from now on). Subscribed
    /// when this returns.
    #[pyo3(signature = (channel, after=None))]
    fn listen(&self, py: Python<'_>, channel: &str, after: Option<i64>) -> PyResult<notify::Listener> {
        let core = block(py, self.client.listen(channel, after))?;
        Ok(notify::Listener::new(core, channel.to_owned()))
    }

    /// [`Database::notify`] as an awaitable.
    fn notify_async<'py>(
        &self,
        py: Python<'py>,
        channel: String,
        payload: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, payload) = (self.client.clone(), payload.to_vec());
        spawn(py, async move { client.notify(&channel, payload).await })
    }

    /// [`Database::listen`] as an awaitable.
    #[pyo3(signature = (channel, after=None))]
    fn listen_async<'py>(
        &self,
        py: Python<'py>,
        channel: String,
        after: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        spawn(py, async move {
            let core = client.listen(&channel, after).await?;
            Ok(notify::Listener::new(core, channel))
        })
    }

    // -- change streams and live queries (the core's `Client::changes` and `Client::watch`).

    /// Follow committed row changes from `from_cursor` (`"index.seq"` or `"index"`; `None`:
    /// from now on), of `tables` only (`None`: every table), with old values if asked.
    #[pyo3(signature = (from_cursor=None, tables=None, old_values=false))]
    fn changes(
        &self,
        py: Python<'_>,
        from_cursor: Option<&str>,
        tables: Option<Vec<String>>,
        old_values: bool,
    ) -> PyResult<changes::ChangeStream> {
        let opts = change_options(from_cursor, tables, old_values)?;
        Ok(changes::ChangeStream::new(block(py, self.client.changes(opts))?))
    }

    /// [`Database::changes`] as an awaitable.
    #[pyo3(signature = (from_cursor=None, tables=None, old_values=false))]
    fn changes_async<'py>(
        &self,
        py: Python<'py>,
        from_cursor: Option<&str>,
        tables: Option<Vec<String>>,
        old_values: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = change_options(from_cursor, tables, old_values)?;
        let client = self.client.clone();
        spawn(py, async move { Ok(changes::ChangeStream::new(client.changes(opts).await?)) })
    }

    /// A live query: its rows at once, then each time a committed write changed them.
    #[pyo3(signature = (sql, params=None))]
    fn watch(
        &self,
        py: Python<'_>,
        sql: &str,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<changes::WatchStream> {
        let params = to_params(params)?;
        Ok(changes::WatchStream::new(block(py, self.client.watch(sql, params))?))
    }

    /// [`Database::watch`] as an awaitable.
    #[pyo3(signature = (sql, params=None))]
    fn watch_async<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = to_params(params)?;
        let client = self.client.clone();
        spawn(py, async move { Ok(changes::WatchStream::new(client.watch(&sql, params).await?)) })
    }
}

/// The options of a change stream; a bad cursor or an empty table name is the core's
/// `HIQLITE_INVALID_REQUEST`.
fn change_options(
    from_cursor: Option<&str>,
    tables: Option<Vec<String>>,
    old_values: bool,
) -> PyResult<hiqlite::ChangeOptions> {
    let mut opts = hiqlite::ChangeOptions::new().old_values(old_values);
    if let Some(c) = from_cursor {
        opts = opts.from(c.parse::<hiqlite::ChangeCursor>().map_err(error::to_py)?);
    }
    if let Some(t) = tables {
        if t.iter().any(|n| n.trim().is_empty()) {
            return Err(error::to_py(hiqlite::Error::InvalidRequest("a table name is empty".into())));
        }
        opts = opts.tables(t);
    }
    Ok(opts)
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
