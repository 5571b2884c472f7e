//! Database handles: opening an embedded node (from JSON or a `hiqlite_config`) or a remote
//! client, closing them, and the helpers the other calls share (`with_db`, consistency levels).

use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use engine::{Client, Consistency, Error, NodeConfig, Peer};
use serde_json::Value as J;

use crate::error::{cstr, forget, guard, guard_value, FfiError, FfiResult, HIQLITE_CONFIG, HIQLITE_OK};
use crate::runtime::block_on;
use crate::tx::TxShared;

/// Read this node's replica as it is: fastest; may lag behind the leader on a follower.
pub const HIQLITE_CONSISTENCY_LOCAL: c_int = 0;
/// Read on the node that believes it is the leader (forwarded there if needed).
pub const HIQLITE_CONSISTENCY_LEADER: c_int = 1;
/// Linearizable: leadership is confirmed with a quorum and this node waits until it has applied
/// everything committed before the read; works on followers too.
pub const HIQLITE_CONSISTENCY_LINEARIZABLE: c_int = 2;

pub(crate) fn consistency_from_c(level: c_int) -> FfiResult<Consistency> {
    match level {
        HIQLITE_CONSISTENCY_LOCAL => Ok(Consistency::Local),
        HIQLITE_CONSISTENCY_LEADER => Ok(Consistency::Leader),
        HIQLITE_CONSISTENCY_LINEARIZABLE => Ok(Consistency::Linearizable),
        other => Err(FfiError::misuse(format!("unknown consistency level {other}"))),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A database: an embedded node of a cluster (`hiqlite_open_node`) or a client of a remote
/// cluster (`hiqlite_open_remote`).
///
/// Thread-safe: any number of threads may use one handle at the same time (calls block the
/// calling thread only). Error messages are kept per handle and per thread. Released by
/// `hiqlite_close`, which must not race with other calls on the handle.
#[allow(non_camel_case_types)]
pub struct hiqlite_db {
    /// Identifies the handle in the per-thread error messages (a pointer could be reused).
    pub(crate) id: u64,
    pub(crate) client: Client,
    /// Shared with the handle's statements, which outlive it.
    pub(crate) closed: Arc<AtomicBool>,
    /// The interactive transactions begun on this handle, rolled back by `hiqlite_close`.
    pub(crate) txs: Mutex<Vec<Weak<TxShared>>>,
    /// Closing the handle stops the embedded node (false for `hiqlite_open_read_your_writes`
    /// handles, which share their database's node).
    owns_node: bool,
}

impl hiqlite_db {
    /// Remember a transaction begun on this handle (and forget those already released).
    pub(crate) fn register_tx(&self, tx: &Arc<TxShared>) {
        let mut txs = self.txs.lock().unwrap_or_else(PoisonError::into_inner);
        txs.retain(|w| w.strong_count() > 0);
        txs.push(Arc::downgrade(tx));
    }
}

/// Run `f` on a database handle, recording its outcome for `hiqlite_errmsg`.
pub(crate) fn with_db(db: *const hiqlite_db, f: impl FnOnce(&hiqlite_db) -> FfiResult<c_int>) -> c_int {
    // SAFETY: the caller passes NULL or a live handle.
    let d = unsafe { db.as_ref() };
    guard(d.map(|d| d.id), || match d {
        Some(d) => f(d),
        None => Err(FfiError::misuse("database handle is NULL")),
    })
}

/// Store `value` through an optional out-pointer.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *out = value };
    }
}

fn open(config: NodeConfig, db: *mut *mut hiqlite_db) -> FfiResult<c_int> {
    let client = block_on(Client::start(config))??;
    put_handle(client, true, db)
}

fn put_handle(client: Client, owns_node: bool, db: *mut *mut hiqlite_db) -> FfiResult<c_int> {
    let handle = Box::new(hiqlite_db {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        client,
        closed: Arc::new(AtomicBool::new(false)),
        txs: Mutex::new(Vec::new()),
        owns_node,
    });
    // SAFETY: checked non-NULL by the callers.
    unsafe { *db = Box::into_raw(handle) };
    Ok(HIQLITE_OK)
}

fn out_db(db: *mut *mut hiqlite_db) -> FfiResult<()> {
    if db.is_null() {
        return Err(FfiError::misuse("db out-pointer is NULL"));
    }
    // SAFETY: non-NULL; the caller passes a writable pointer.
    unsafe { *db = std::ptr::null_mut() };
    Ok(())
}

/// Start an embedded node and open a handle on it.
///
/// `config` is TOML (`node_id = 1`, `data_dir = "..."`...) or JSON (text starting with `{`),
/// with the keys of hiqlite's `NodeConfig` (node_id, data_dir, raft_addr, api_addr, peers, join,
/// secret, heartbeat_ms, election_timeout_min_ms, election_timeout_max_ms, request_timeout_ms,
/// cache.*, ...); missing keys take their defaults and unknown keys are `HIQLITE_CONFIG`. An empty
/// string is the default configuration (a single node on 127.0.0.1:4001/4002, data in
/// `./hiqlite-data`). Port 0 in an address picks a free port (see `hiqlite_node_info`).
///
/// Returns once the node serves; a write waits for a leader (up to `request_timeout_ms`), and
/// `hiqlite_wait_for_leader` waits explicitly. On success `*db` is a new handle owned by the
/// caller (release it with `hiqlite_close`); on error `*db` is NULL and `hiqlite_errmsg(NULL)`
/// tells why.
///
/// # Safety
/// `config` is NULL or NUL-terminated; `db` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_open_node(config: *const c_char, db: *mut *mut hiqlite_db) -> c_int {
    guard(None, || {
        out_db(db)?;
        // SAFETY: caller's contract.
        let text = unsafe { cstr(config, "config") }?;
        let cfg = if text.trim_start().starts_with('{') {
            serde_json::from_str::<NodeConfig>(text)
                .map_err(|e| FfiError::new(HIQLITE_CONFIG, format!("invalid JSON config: {e}")))?
        } else {
            NodeConfig::from_toml_str(text)?
        };
        open(cfg, db)
    })
}

/// A node configuration built key by key (`hiqlite_config_new`, `hiqlite_config_set`,
/// `hiqlite_open_node_config`, `hiqlite_config_free`). Not thread-safe.
#[allow(non_camel_case_types)]
pub struct hiqlite_config {
    doc: J,
}

/// A new configuration holding the defaults. Release it with `hiqlite_config_free` (opening a
/// node does not consume it). NULL only if the library failed internally.
#[no_mangle]
pub extern "C" fn hiqlite_config_new() -> *mut hiqlite_config {
    guard_value(std::ptr::null_mut(), || match serde_json::to_value(NodeConfig::default()) {
        Ok(doc) => Box::into_raw(Box::new(hiqlite_config { doc })),
        Err(_) => std::ptr::null_mut(),
    })
}

/// Release a configuration. NULL is a no-op.
///
/// # Safety
/// `config` is NULL or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_config_free(config: *mut hiqlite_config) {
    if !config.is_null() {
        guard_value((), || {
            // SAFETY: created by Box::into_raw in hiqlite_config_new.
            drop(unsafe { Box::from_raw(config) });
        })
    }
}

fn config_value(key: &str, current: &J, value: &str) -> FfiResult<J> {
    let bad = |what: &str| FfiError::new(HIQLITE_CONFIG, format!("{key}: `{value}` is not {what}"));
    let json = || serde_json::from_str::<J>(value).map_err(|_| bad("valid JSON"));
    Ok(match current {
        J::String(_) => J::String(value.to_owned()),
        // Unset optional settings (paths, addresses) are strings; empty unsets again.
        J::Null if value.is_empty() => J::Null,
        J::Null => J::String(value.to_owned()),
        J::Bool(_) => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => J::Bool(true),
            "false" | "0" | "no" | "off" => J::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        J::Number(_) => {
            let v = value.trim();
            if let Ok(n) = v.parse::<u64>() {
                J::from(n)
            } else if let Ok(n) = v.parse::<i64>() {
                J::from(n)
            } else {
                serde_json::Number::from_f64(v.parse::<f64>().map_err(|_| bad("a number"))?)
                    .map(J::Number)
                    .ok_or_else(|| bad("a finite number"))?
            }
        }
        J::Array(_) if value.trim_start().starts_with('[') => json()?,
        J::Array(_) if key == "peers" => {
            let peers: Vec<Peer> = value
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(Peer::parse)
                .collect::<engine::Result<_>>()?;
            serde_json::to_value(peers).map_err(|e| FfiError::new(HIQLITE_CONFIG, e.to_string()))?
        }
        J::Array(_) => J::Array(
            value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| J::String(s.into())).collect(),
        ),
        J::Object(_) => json()?,
    })
}

/// Set one setting: `key` is a `NodeConfig` field (`node_id`, `data_dir`, `raft_addr`, ...;
/// nested ones with a dot: `cache.enabled`), `value` its text: numbers and booleans
/// (`true`/`false`/`1`/`0`) as text, `peers` as `ID=RAFT_ADDR/API_ADDR,...`, `join` as
/// comma-separated addresses, or any of them as JSON. An unknown key or a bad value is
/// `HIQLITE_CONFIG`.
///
/// # Safety
/// `config` is NULL or a live configuration; `key` and `value` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_config_set(
    config: *mut hiqlite_config,
    key: *const c_char,
    value: *const c_char,
) -> c_int {
    guard(None, || {
        // SAFETY: caller's contract.
        let cfg = unsafe { config.as_mut() }.ok_or_else(|| FfiError::misuse("config handle is NULL"))?;
        // SAFETY: caller's contract.
        let (key, value) = unsafe { (cstr(key, "key")?, cstr(value, "value")?) };
        let unknown = || FfiError::new(HIQLITE_CONFIG, format!("unknown configuration key `{key}`"));
        let mut slot = &mut cfg.doc;
        for part in key.split('.') {
            slot = slot.as_object_mut().and_then(|o| o.get_mut(part)).ok_or_else(unknown)?;
        }
        *slot = config_value(key, slot, value)?;
        Ok(HIQLITE_OK)
    })
}

/// `hiqlite_open_node` with a configuration built by `hiqlite_config_set`. The configuration is
/// not consumed.
///
/// # Safety
/// `config` is NULL or a live configuration; `db` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_open_node_config(
    config: *const hiqlite_config,
    db: *mut *mut hiqlite_db,
) -> c_int {
    guard(None, || {
        out_db(db)?;
        // SAFETY: caller's contract.
        let cfg = unsafe { config.as_ref() }.ok_or_else(|| FfiError::misuse("config handle is NULL"))?;
        let cfg: NodeConfig = serde_json::from_value(cfg.doc.clone())
            .map_err(|e| FfiError::new(HIQLITE_CONFIG, format!("invalid config: {e}")))?;
        open(cfg, db)
    })
}

/// Options of a remote client (`hiqlite_open_remote_with`), all optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RemoteOptions {
    username: Option<String>,
    password: Option<String>,
    timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    consistency: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    discover: Option<bool>,
    danger_accept_invalid_certs: bool,
    read_your_writes: bool,
}

fn open_remote(urls: &str, options: Option<&str>, db: *mut *mut hiqlite_db) -> FfiResult<c_int> {
    let urls: Vec<String> =
        urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
    if urls.is_empty() {
        return Err(FfiError::new(HIQLITE_CONFIG, "no URL given"));
    }
    let opts = match options.map(str::trim_start) {
        None | Some("") => RemoteOptions::default(),
        Some(text) if text.starts_with('{') => serde_json::from_str(text)
            .map_err(|e| FfiError::new(HIQLITE_CONFIG, format!("invalid JSON options: {e}")))?,
        Some(text) => toml::from_str(text)
            .map_err(|e| FfiError::new(HIQLITE_CONFIG, format!("invalid TOML options: {e}")))?,
    };
    let mut b = Client::remote(urls);
    if let Some(user) = opts.username {
        b = b.basic_auth(user, opts.password.unwrap_or_default());
    }
    if let Some(ms) = opts.timeout_ms {
        b = b.timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = opts.connect_timeout_ms {
        b = b.connect_timeout(Duration::from_millis(ms));
    }
    if let Some(c) = opts.consistency {
        // The core's one spelling per level; a bad value is a bad option, so HIQLITE_CONFIG.
        let level = c.parse::<Consistency>().map_err(|e| match e {
            Error::InvalidRequest(m) => FfiError::new(HIQLITE_CONFIG, m),
            other => FfiError::new(HIQLITE_CONFIG, other.to_string()),
        })?;
        b = b.consistency(level);
    }
    if let Some(path) = opts.ca_file {
        let pem = std::fs::read(&path).map_err(|e| {
            FfiError::new(HIQLITE_CONFIG, format!("cannot read ca_file {}: {e}", path.display()))
        })?;
        b = b.ca_cert_pem(pem);
    }
    if let Some(d) = opts.discover {
        b = b.discover(d);
    }
    b = b.danger_accept_invalid_certs(opts.danger_accept_invalid_certs);
    b = b.read_your_writes(opts.read_your_writes);
    // Building sets up the HTTP client's connection pool on the runtime.
    let client = block_on(async move { b.build() })??;
    put_handle(client, true, db)
}

/// Open a client of a remote hiqlite (or rqlite) cluster. `urls` lists client API URLs of one or
/// more nodes, comma-separated (`http://10.0.0.1:4001,http://10.0.0.2:4001`; no scheme means
/// `http`); the client learns the other nodes and follows the leader. No connection is made until
/// the first request. Same as `hiqlite_open_remote_with` without options.
///
/// On success `*db` is a new handle owned by the caller (release it with `hiqlite_close`); on
/// error `*db` is NULL and `hiqlite_errmsg(NULL)` tells why.
///
/// # Safety
/// `urls` is NULL or NUL-terminated; `db` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_open_remote(urls: *const c_char, db: *mut *mut hiqlite_db) -> c_int {
    guard(None, || {
        out_db(db)?;
        // SAFETY: caller's contract.
        let urls = unsafe { cstr(urls, "urls") }?;
        open_remote(urls, None, db)
    })
}

/// `hiqlite_open_remote` with options as TOML or JSON text (NULL or empty: none): `username` and
/// `password` (HTTP Basic auth), `timeout_ms` (one call, retries included; default 10000),
/// `connect_timeout_ms` (default 2000), `consistency` (`"local"`, `"leader"` (default) or
/// `"linearizable"`, in any case: the default level of statements), `ca_file` (PEM CA
/// certificates to trust for `https://`), `discover` (learn the other nodes from `/nodes`;
/// default true), `read_your_writes` (every `local` read first waits until the answering node
/// applied the handle's own writes, as `hiqlite_open_read_your_writes`; default false),
/// `danger_accept_invalid_certs` (tests only). An unknown option is `HIQLITE_CONFIG`.
///
/// # Safety
/// `urls` is NULL or NUL-terminated; `options` NULL or NUL-terminated; `db` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_open_remote_with(
    urls: *const c_char,
    options: *const c_char,
    db: *mut *mut hiqlite_db,
) -> c_int {
    guard(None, || {
        out_db(db)?;
        // SAFETY: caller's contract.
        let urls = unsafe { cstr(urls, "urls") }?;
        let options = if options.is_null() {
            None
        } else {
            // SAFETY: caller's contract.
            Some(unsafe { cstr(options, "options") }?)
        };
        open_remote(urls, options, db)
    })
}

/// Open a second handle on `db`'s node or cluster in read-your-writes mode: it remembers the
/// Raft log index of the writes made through it, and every read at
/// `HIQLITE_CONSISTENCY_LOCAL` (statements, `hiqlite_query_json`) first waits until the node
/// that answers applied them (bounded by the request timeout), so it sees its own writes on any
/// node, a follower or read replica included. Committing an interactive transaction tells no
/// index: the next local read after one is made linearizable instead. The new handle starts
/// from the writes `db` made so far.
///
/// On success `*session` is a new handle owned by the caller (release it with `hiqlite_close`,
/// which leaves the node running: `db` still owns it; close the session first); on error
/// `*session` is NULL.
///
/// # Safety
/// `db` is NULL or a live handle; `session` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_open_read_your_writes(
    db: *const hiqlite_db,
    session: *mut *mut hiqlite_db,
) -> c_int {
    // SAFETY: caller's contract (NULL or writable).
    unsafe { put(session, std::ptr::null_mut()) };
    with_db(db, |d| {
        out_db(session)?;
        put_handle(d.client.read_your_writes(), false, session)
    })
}

/// The highest Raft log index of the writes made through `db` (statements, `hiqlite_exec`,
/// transactions, batches, embedded coordination writes), or 0 before the first, into `*index`.
/// Pass it to `hiqlite_stmt_set_min_index` of a read on any node to see those writes there.
///
/// # Safety
/// `db` is NULL or a live handle; `index` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_last_write_index(db: *const hiqlite_db, index: *mut u64) -> c_int {
    with_db(db, |d| {
        if index.is_null() {
            return Err(FfiError::misuse("index out-pointer is NULL"));
        }
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *index = d.client.last_write_index().unwrap_or(0) };
        Ok(HIQLITE_OK)
    })
}

/// Close a handle. For an embedded node this stops the node gracefully (a handle from
/// `hiqlite_open_read_your_writes` leaves it running) (it stays a member of the
/// cluster, seen as unreachable until it is started again); a remote client closes its
/// connections. NULL is a harmless no-op returning `HIQLITE_OK`. The
/// handle is released even when the shutdown reports an error (returned, with its message in
/// `hiqlite_errmsg(NULL)`). Statements of the handle stay valid to finalize; running them fails
/// with `HIQLITE_SHUTDOWN`. Open transactions of the handle (`hiqlite_begin`) are rolled back
/// first; their handles stay valid only to be released with `hiqlite_rollback` (returns
/// `HIQLITE_OK`) or `hiqlite_commit` (returns `HIQLITE_SHUTDOWN`), which the caller must still
/// call: closing does not free them.
///
/// # Safety
/// `db` is NULL or a live handle not in use by another thread; it is dangling afterwards.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_close(db: *mut hiqlite_db) -> c_int {
    if db.is_null() {
        return HIQLITE_OK;
    }
    guard(None, || {
        // SAFETY: created by Box::into_raw in `open`; the caller gives it up.
        let handle = unsafe { Box::from_raw(db) };
        forget(handle.id);
        handle.closed.store(true, Ordering::Release);
        // Roll back before stopping: the transaction holds the cluster's write gate, and a
        // remote one would otherwise stay open on the leader until its idle timeout.
        let txs = std::mem::take(&mut *handle.txs.lock().unwrap_or_else(PoisonError::into_inner));
        for tx in txs.iter().filter_map(Weak::upgrade) {
            tx.close();
        }
        let (client, owns_node) = (handle.client.clone(), handle.owns_node);
        drop(handle);
        if owns_node {
            block_on(client.shutdown())??;
        }
        Ok(HIQLITE_OK)
    })
}

#[allow(dead_code)]
fn _assert_thread_safe() {
    fn is<T: Send + Sync>() {}
    is::<hiqlite_db>();
}
