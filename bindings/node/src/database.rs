//! The `Database` class: opening an embedded node or connecting to a cluster, its statement
//! API, batches, transactions, status and shutdown.

use std::sync::Arc;

use napi::bindgen_prelude::{Array, Object, PromiseRaw, Unknown};
use napi::{Env, JsValue, ValueType};
use napi_derive::napi;

use hiqlite::Client;

use crate::convert::{self, BatchOptions, ConnectOptions, OpenOptions, ReadOptions};
use crate::error::{self, Failure};
use crate::session::{Op, Session, Source};
use crate::statement::Statement;
use crate::status::{NodeInfo, NodeStatus};
use crate::transaction::Transaction;
use crate::{exec_on, execute_on, keep_alive, prepare_on, query_on, settle, submit, Shared};

/// A hiqlite database: an embedded node of a cluster (`Database.open`) or a client of a
/// remote cluster (`Database.connect`). Every call returns a Promise; none blocks the event
/// loop. Close it with `close()` so that an embedded node stops cleanly.
#[napi]
pub struct Database {
    pub(crate) shared: Arc<Shared>,
    remote: bool,
    pub(crate) defaults: ReadOptions,
}

impl Database {
    fn source(&self) -> Source {
        Source::Db(self.shared.clone())
    }
}

#[napi]
impl Database {
    /// Start an embedded node with `options.node` (the node's settings: `nodeId`, `dataDir`,
    /// `raftAddr`, `apiAddr`, `peers`, `secret`, ...) and resolve to a database on it. The
    /// node serves its Raft and HTTP API listeners until `close()`. A new cluster may still be
    /// electing its first leader: writes wait for one (up to `requestTimeoutMs`), and
    /// `waitForLeader()` waits explicitly.
    #[napi(ts_args_type = "options: OpenOptions", ts_return_type = "Promise<Database>")]
    pub fn open<'env>(
        env: &'env Env,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Database>> {
        let prepared = convert::options::<OpenOptions>(env, options, "open options").and_then(|o| {
            let node =
                o.node.ok_or_else(|| Failure::invalid("open options need `node`: the node's settings"))?;
            let defaults = ReadOptions {
                consistency: o.consistency,
                safe_integers: o.safe_integers,
                ..Default::default()
            };
            Ok((convert::node_config(node)?, defaults, o.read_your_writes.unwrap_or(false)))
        });
        settle(
            env,
            async move {
                let (config, defaults, ryw) = prepared?;
                let client = Client::start(config).await?;
                Ok((if ryw { client.read_your_writes() } else { client }, defaults))
            },
            |env, (client, defaults)| {
                let shared = Shared::new(client, Some(keep_alive(env)?));
                Ok(Database { shared, remote: false, defaults })
            },
        )
    }

    /// Connect to a remote hiqlite (or rqlite) cluster through the HTTP API of one or more of
    /// its nodes (`http://host:4001`); the others are discovered.
    #[napi(
        ts_args_type = "urls: string | string[], options?: ConnectOptions",
        ts_return_type = "Promise<Database>"
    )]
    pub fn connect<'env>(
        env: &'env Env,
        urls: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Database>> {
        let prepared = (|| -> Result<_, Failure> {
            let urls: Vec<String> = match urls.get_type()? {
                ValueType::String => vec![unsafe { urls.cast::<String>() }?],
                _ if urls.is_array()? => env
                    .from_js_value::<Vec<String>, _>(urls)
                    .map_err(|_| Failure::invalid("urls must be a string or an array of strings"))?,
                _ => return Err(Failure::invalid("urls must be a string or an array of strings")),
            };
            if urls.is_empty() {
                return Err(Failure::invalid("give at least one node URL"));
            }
            let o = convert::options::<ConnectOptions>(env, options, "connect options")?;
            let mut b = Client::remote(urls);
            if o.username.is_some() || o.password.is_some() {
                b = b.basic_auth(o.username.unwrap_or_default(), o.password.unwrap_or_default());
            }
            if let Some(ms) = o.timeout_ms {
                b = b.timeout(convert::millis(ms, "timeoutMs")?);
            }
            if let Some(ms) = o.connect_timeout_ms {
                b = b.connect_timeout(convert::millis(ms, "connectTimeoutMs")?);
            }
            if let Some(c) = o.consistency {
                b = b.consistency(c.into());
            }
            if let Some(d) = o.discover {
                b = b.discover(d);
            }
            if let Some(pem) = o.ca_cert_pem {
                b = b.ca_cert_pem(pem);
            }
            b = b.read_your_writes(o.read_your_writes.unwrap_or(false));
            let defaults = ReadOptions { safe_integers: o.safe_integers, ..Default::default() };
            Ok((b, defaults))
        })();
        settle(
            env,
            async move {
                let (builder, defaults) = prepared?;
                Ok((builder.build()?, defaults))
            },
            |_, (client, defaults)| {
                Ok(Database { shared: Shared::new(client, None), remote: true, defaults })
            },
        )
    }

    /// True for a client of a remote cluster, false for an embedded node.
    #[napi(getter)]
    pub fn remote(&self) -> bool {
        self.remote
    }

    /// True if the database reads its own writes (`readYourWrites` when opened or connected):
    /// its `local` reads first wait until the answering node applied its writes.
    #[napi(getter)]
    pub fn read_your_writes(&self) -> bool {
        self.shared.client().is_ok_and(|c| c.is_read_your_writes())
    }

    /// The highest Raft log index of the writes made through this database (`null` before
    /// the first, and after `close()`); a `number`, or a `bigint` with `safeIntegers`. Pass it
    /// as `minIndex` to a read on any node to see those writes there.
    #[napi(getter, ts_return_type = "number | bigint | null")]
    pub fn last_write_index(&self) -> convert::JsValueOut {
        let index = self.shared.client().ok().and_then(|c| c.last_write_index());
        convert::log_index_out(index, self.defaults.safe_integers.unwrap_or(false))
    }

    /// Run SQL text through Raft: one or more statements separated by `;`, without parameters
    /// (schema, migrations). `BEGIN`, `COMMIT`, `ROLLBACK` and `SAVEPOINT`/`RELEASE`/`ROLLBACK
    /// TO` work as on a SQLite connection: between `BEGIN` and `COMMIT` every statement of this
    /// database runs inside that transaction.
    #[napi(ts_args_type = "sql: string", ts_return_type = "Promise<void>")]
    pub fn exec<'env>(&self, env: &'env Env, sql: Unknown<'_>) -> napi::Result<PromiseRaw<'env, ()>> {
        exec_on(env, &self.source(), sql)
    }

    /// Prepare a statement. Nothing is sent until it runs; `options` set how its reads are made.
    #[napi(ts_args_type = "sql: string, options?: StatementOptions")]
    pub fn prepare(
        &self,
        env: &Env,
        sql: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Statement> {
        prepare_on(env, self.source(), self.defaults, sql, options)
    }

    /// Read rows, with this call's consistency, cache and integer settings. A write with
    /// `RETURNING` is run through Raft and its rows returned.
    #[napi(
        ts_generic_types = "T = Row",
        ts_args_type = "sql: string, params?: BindValue[] | NamedParameters | null, options?: QueryOptions",
        ts_return_type = "Promise<T[]>"
    )]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        sql: Unknown<'_>,
        params: Option<Unknown<'_>>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Array<'env>>> {
        query_on(env, &self.source(), self.defaults, sql, params, options)
    }

    /// Run one write through Raft and resolve to `{ changes, lastInsertRowid }`.
    #[napi(
        ts_args_type = "sql: string, params?: BindValue[] | NamedParameters | null",
        ts_return_type = "Promise<RunResult>"
    )]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        sql: Unknown<'_>,
        params: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        execute_on(env, &self.source(), self.defaults, sql, params)
    }

    /// Run several writes in one Raft log entry. With `transaction: true` (the default) all are
    /// applied or none, and the first error rejects; with `transaction: false` each statement
    /// stands alone and a failed one leaves a `HiqliteError` in its slot. Inside an open
    /// transaction the statements run in it (`transaction: true` in a savepoint).
    #[napi(
        ts_generic_types = "T extends boolean = true",
        ts_args_type = "statements: Array<string | BatchStatement>, options?: BatchOptions<T>",
        ts_return_type = "Promise<BatchResults<T>>"
    )]
    pub fn batch<'env>(
        &self,
        env: &'env Env,
        statements: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Array<'env>>> {
        let prepared = (|| -> Result<_, Failure> {
            let o = convert::options::<BatchOptions>(env, options, "batch options")?;
            Ok(Op::Batch { stmts: batch_statements(statements)?, transaction: o.transaction.unwrap_or(true) })
        })();
        let job = submit(&self.source(), prepared);
        let safe = self.defaults.safe_integers.unwrap_or(false);
        settle(env, async move { job.await?.batch() }, move |env, results| {
            let mut arr = env.create_array(results.len() as u32)?;
            for (i, r) in (0u32..).zip(results) {
                match r {
                    Ok(r) => arr.set(i, convert::run_result(env, &r, safe)?)?,
                    Err(e) => arr.set(i, error::error_value(env, &Failure::from(e))?)?,
                }
            }
            Ok(arr)
        })
    }

    /// Begin an interactive transaction of its own and resolve to it: its statements see its
    /// writes; other writers wait until it commits or rolls back (up to the cluster's busy
    /// timeout, then `SQLITE_BUSY`). Prefer `db.transaction(fn)`, which always ends it.
    #[napi(ts_return_type = "Promise<Transaction>")]
    pub fn begin<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Transaction>> {
        let job = self.source().submit(Op::Begin);
        let defaults = self.defaults;
        settle(env, async move { Ok(Arc::new(Session::with(job.await?.tx()?))) }, move |_, session| {
            Ok(Transaction { session, defaults })
        })
    }

    /// True while a transaction begun through `exec`/`run` (`BEGIN`, or `SAVEPOINT` outside a
    /// transaction) is open on this database: as of the last statement that finished.
    #[napi(getter)]
    pub fn in_transaction(&self) -> bool {
        self.shared.conn.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|s| s.is_open())
    }

    /// The state of the embedded node, or of the node a remote client reads from.
    #[napi(ts_return_type = "Promise<NodeStatus>")]
    pub fn status<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, NodeStatus>> {
        let client = self.shared.client();
        settle(env, async move { Ok(client?.status().await?) }, |_, s| Ok(NodeStatus::from(s)))
    }

    /// The cluster's members and whether they are reachable.
    #[napi(ts_return_type = "Promise<NodeInfo[]>")]
    pub fn nodes<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<NodeInfo>>> {
        let client = self.shared.client();
        settle(env, async move { Ok(client?.nodes().await?) }, |_, n| {
            Ok(n.into_iter().map(NodeInfo::from).collect())
        })
    }

    /// True when this process's embedded node is the Raft leader right now; always false for
    /// a remote client (which is no node) and after `close()`.
    #[napi]
    pub fn is_leader(&self) -> bool {
        self.shared.client().ok().and_then(|c| c.node().map(|n| n.is_leader())).unwrap_or(false)
    }

    /// Wait until the cluster has a leader (default: up to 10 s) and resolve to its node id.
    #[napi(ts_args_type = "timeoutMs?: number", ts_return_type = "Promise<number>")]
    pub fn wait_for_leader<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let prepared = convert::optional_number(timeout_ms, "timeoutMs")
            .and_then(|ms| convert::millis(ms.unwrap_or(10_000.0), "timeoutMs"))
            .and_then(|t| Ok((self.shared.client()?, t)));
        settle(
            env,
            async move {
                let (client, timeout) = prepared?;
                Ok(client.wait_for_leader(timeout).await?)
            },
            |_, id| Ok(id as f64),
        )
    }

    /// Stop the embedded node gracefully (a remote client just drops its connections). Later
    /// calls fail with `HIQLITE_SHUTDOWN`; closing twice is harmless.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let client = self.shared.client.lock().unwrap_or_else(|p| p.into_inner()).take();
        let session = self.shared.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
        // The pending promise keeps the process alive until the node has stopped.
        drop(self.shared.keep_alive.lock().unwrap_or_else(|p| p.into_inner()).take());
        settle(
            env,
            async move {
                if let Some(s) = session {
                    s.abandon().await;
                }
                if let Some(c) = client {
                    c.shutdown().await?;
                }
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }
}

fn batch_statements(v: Unknown<'_>) -> Result<Vec<hiqlite::Statement>, Failure> {
    let bad = || Failure::invalid("batch takes an array of SQL strings or { sql, args } objects");
    if !v.is_array()? {
        return Err(bad());
    }
    // SAFETY: checked to be an array.
    let arr = unsafe { v.cast::<Array>() }?;
    let mut out = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let item: Unknown = arr.get(i)?.ok_or_else(bad)?;
        match item.get_type()? {
            // SAFETY: checked to be a string.
            ValueType::String => out.push(hiqlite::Statement::from(unsafe { item.cast::<String>() }?)),
            ValueType::Object if !item.is_array()? => {
                // SAFETY: checked to be an object.
                let obj = unsafe { item.cast::<Object>() }?;
                let sql: Option<Unknown> = obj.get("sql")?;
                let sql = match sql {
                    Some(s) if s.get_type()? == ValueType::String => unsafe { s.cast::<String>() }?,
                    _ => return Err(Failure::invalid(format!("batch statement {i} has no `sql` string"))),
                };
                let params = convert::params_from_value(obj.get::<Unknown>("args")?)?;
                out.push(hiqlite::Statement::new(sql, params));
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}
