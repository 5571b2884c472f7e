//! The coordination and streaming methods of the native `Database` (a second `#[pymethods]`
//! block): key/value entries and counters, locks, listen/notify, change streams and live
//! queries, blocking and as asyncio awaitables, each a thin call of the core's `Client`.

use super::*;

#[pymethods]
impl Database {
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
