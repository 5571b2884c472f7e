//! Node.js binding of hiqlite: `Database` (an embedded node or a remote cluster), `Statement`
//! and `RowIterator`, with a Promise API shaped like better-sqlite3.
//!
//! The binding is thin: it converts JavaScript values to `hiqlite::Value` and back, maps
//! errors to `HiqliteError` codes, and runs every call of the core's `Client` on the library's
//! Tokio runtime. The JavaScript thread only converts arguments and results; it never waits.

mod convert;
mod error;
mod session;

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{
    Array, Either, FnArgs, Function, Object, PromiseRaw, This, ToNapiValue, Unknown,
};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, JsValue, ValueType};
use napi_derive::napi;

use hiqlite::{Client, Consistency, ExecResult, Params, Rows};

use crate::convert::{BatchOptions, ConnectOptions, OpenOptions, ReadOptions};
use crate::error::{ErrorClass, Failure};
use crate::session::{Job, Op, Out, Session, Source};

/// One Tokio runtime for the whole addon, named so that its threads are recognisable; napi
/// settles every promise from it. Falls back to napi's default runtime if it cannot be built.
#[napi_derive::module_init]
fn init() {
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("hiqlite").build() {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}

/// Install `HiqliteError` and the rest-parameter shims (`prelude.js`) on the exports, and keep
/// the error class for building errors later.
#[napi(module_exports)]
pub fn install_prelude(exports: Object, env: Env) -> napi::Result<()> {
    let install: Function<Object, Function<FnArgs<(String, String)>, Unknown>> =
        env.run_script(include_str!("prelude.js"))?;
    let class = install.call(exports)?;
    env.set_instance_data(ErrorClass(class.create_ref()?), (), |_| {})?;
    Ok(())
}

/// Run `work` on the Tokio runtime; `done` turns its output into a JavaScript value on the JS
/// thread, and a `Failure` rejects the promise with a `HiqliteError`.
fn settle<'env, T, V, F, D>(env: &'env Env, work: F, done: D) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    D: FnOnce(&'env Env, T) -> napi::Result<V> + 'static,
{
    env.spawn_future_with_callback(async move { Ok(work.await) }, move |env, r| match r {
        Ok(v) => done(env, v),
        Err(f) => Err(error::to_napi(env, &f)),
    })
}

/// The client shared by a database and its statements; `None` once closed.
pub(crate) struct Shared {
    client: Mutex<Option<Client>>,
    /// The connection-level transaction's session (see `session.rs`), while there is one.
    conn: Mutex<Option<Arc<Session>>>,
    /// Held while an embedded node runs: a referenced threadsafe function keeps the event loop
    /// (and so the process) alive, as a listening `net.Server` does, until `close()`.
    keep_alive: Mutex<Option<KeepAlive>>,
}

type KeepAlive = ThreadsafeFunction<(), (), (), napi::Status, false, false, 0>;

fn keep_alive(env: &Env) -> napi::Result<KeepAlive> {
    let f: Function<(), ()> = env.create_function_from_closure("hiqliteKeepAlive", |_| Ok(()))?;
    f.build_threadsafe_function::<()>().build()
}

impl Shared {
    fn new(client: Client, keep_alive: Option<KeepAlive>) -> Arc<Shared> {
        Arc::new(Shared {
            client: Mutex::new(Some(client)),
            conn: Mutex::new(None),
            keep_alive: Mutex::new(keep_alive),
        })
    }

    pub(crate) fn client(&self) -> Result<Client, Failure> {
        self.client.lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or_else(Failure::closed)
    }
}

/// What a statement is known to be: reads are queried, writes (`INSERT … RETURNING` read
/// through `get`/`all`) go through Raft.
const KIND_UNKNOWN: u8 = 0;
const KIND_READ: u8 = 1;
const KIND_WRITE: u8 = 2;

/// The core's lexical classification decides first; a statement it calls a read stays
/// unconfirmed until SQLite has agreed (see `read`).
fn initial_kind(sql: &str) -> Arc<AtomicU8> {
    let kind = match hiqlite::statement_kind(sql) {
        hiqlite::StatementKind::Read => KIND_UNKNOWN,
        _ => KIND_WRITE,
    };
    Arc::new(AtomicU8::new(kind))
}

/// A read as `get`/`all`/`iterate` and `db.query` make it. A statement the text says writes
/// goes straight through Raft. Otherwise it is queried; should it write after all, the core's
/// query path refuses it with `SQLITE_READONLY` before running it (SQLite's own
/// `sqlite3_stmt_readonly`), and it is executed through Raft and remembered as a write.
pub(crate) async fn read(
    client: Client,
    sql: Arc<str>,
    params: Params,
    opts: ReadOptions,
    kind: Arc<AtomicU8>,
) -> Result<ExecResult, Failure> {
    if kind.load(Ordering::Relaxed) != KIND_WRITE {
        let consistency = opts.consistency.map_or_else(|| client.default_consistency(), Consistency::from);
        let retry = (kind.load(Ordering::Relaxed) == KIND_UNKNOWN).then(|| params.clone());
        let r = match opts.cache_ttl()? {
            Some(ttl) => client.query_cached_with(&sql, params, consistency, ttl).await,
            None => client.query_with(&sql, params, consistency).await,
        };
        match (r, retry) {
            (Ok(rows), _) => {
                kind.store(KIND_READ, Ordering::Relaxed);
                return Ok(ExecResult { rows, ..Default::default() });
            }
            (Err(hiqlite::Error::Sql { code: rusqlite::ffi::SQLITE_READONLY, .. }), Some(params)) => {
                kind.store(KIND_WRITE, Ordering::Relaxed);
                return Ok(client.execute(&sql, params).await?);
            }
            (Err(e), _) => return Err(e.into()),
        }
    }
    Ok(client.execute(&sql, params).await?)
}

/// A call's work from what was prepared on the JavaScript thread (now, so that it keeps its
/// place in a transaction's order).
fn submit(source: &Source, prepared: Result<Op, Failure>) -> Job<Out> {
    match prepared {
        Ok(op) => source.submit(op),
        Err(f) => Box::pin(async move { Err(f) }),
    }
}

fn exec_on<'env>(env: &'env Env, source: &Source, sql: Unknown<'_>) -> napi::Result<PromiseRaw<'env, ()>> {
    let job = submit(source, convert::string(sql, "sql").map(|sql| Op::Script { sql }));
    settle(
        env,
        async move {
            job.await?;
            Ok(())
        },
        |_, ()| Ok(()),
    )
}

fn prepare_on(
    env: &Env,
    source: Source,
    defaults: ReadOptions,
    sql: Unknown<'_>,
    options: Option<Unknown<'_>>,
) -> napi::Result<Statement> {
    let prepared = convert::string(sql, "sql").and_then(|sql| {
        let opts = convert::options::<ReadOptions>(env, options, "statement options")?;
        opts.cache_ttl()?;
        Ok((sql, opts))
    });
    let (sql, opts) = prepared.map_err(|f| error::to_napi(env, &f))?;
    let kind = initial_kind(&sql);
    Ok(Statement { source, sql: sql.into(), opts: opts.over(defaults), kind })
}

fn query_on<'env>(
    env: &'env Env,
    source: &Source,
    defaults: ReadOptions,
    sql: Unknown<'_>,
    params: Option<Unknown<'_>>,
    options: Option<Unknown<'_>>,
) -> napi::Result<PromiseRaw<'env, Array<'env>>> {
    let prepared = (|| -> Result<_, Failure> {
        let sql = convert::string(sql, "sql")?;
        let params = convert::params_from_value(params)?;
        let opts = convert::options::<ReadOptions>(env, options, "query options")?.over(defaults);
        // Checked now: inside a transaction the read options are not used, but still wrong.
        opts.cache_ttl()?;
        let kind = initial_kind(&sql);
        Ok(Op::Read { sql: sql.into(), params, opts, kind })
    })();
    let safe = match &prepared {
        Ok(Op::Read { opts, .. }) => opts.safe_integers.unwrap_or(false),
        _ => false,
    };
    let job = submit(source, prepared);
    settle(env, async move { job.await?.rows() }, move |env, rows| convert::rows_array(env, rows, safe))
}

fn execute_on<'env>(
    env: &'env Env,
    source: &Source,
    defaults: ReadOptions,
    sql: Unknown<'_>,
    params: Option<Unknown<'_>>,
) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
    let prepared = (|| -> Result<_, Failure> {
        Ok(Op::Write {
            sql: convert::string(sql, "sql")?.into(),
            params: convert::params_from_value(params)?,
        })
    })();
    let job = submit(source, prepared);
    let safe = defaults.safe_integers.unwrap_or(false);
    settle(env, async move { job.await?.exec() }, move |env, r| convert::run_result(env, &r, safe))
}

/// A hiqlite database: an embedded node of a cluster (`Database.open`) or a client of a
/// remote cluster (`Database.connect`). Every call returns a Promise; none blocks the event
/// loop. Close it with `close()` so that an embedded node stops cleanly.
#[napi]
pub struct Database {
    shared: Arc<Shared>,
    remote: bool,
    defaults: ReadOptions,
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
            Ok((convert::node_config(node)?, defaults))
        });
        settle(
            env,
            async move {
                let (config, defaults) = prepared?;
                Ok((Client::start(config).await?, defaults))
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

/// A prepared statement of a `Database` or a `Transaction`. On a database `run` always goes
/// through Raft; `get`, `all` and `iterate` read (at the statement's consistency) unless the
/// statement writes, as `INSERT … RETURNING` does, in which case it goes through Raft too. On a
/// transaction (or a database with a transaction open) every call runs inside the transaction.
#[napi]
pub struct Statement {
    source: Source,
    sql: Arc<str>,
    opts: ReadOptions,
    kind: Arc<AtomicU8>,
}

#[napi]
impl Statement {
    /// The SQL text.
    #[napi(getter)]
    pub fn source(&self) -> String {
        self.sql.to_string()
    }

    /// Read INTEGERs as BigInt always (`true`, the default of this call) or only when they do
    /// not fit a number exactly (`false`). Returns the statement.
    #[napi(ts_args_type = "on?: boolean", ts_return_type = "this")]
    pub fn safe_integers<'a>(
        &mut self,
        env: &Env,
        this: This<'a>,
        on: Option<Unknown<'_>>,
    ) -> napi::Result<This<'a>> {
        let on = match on {
            None => true,
            Some(v) => match v.get_type()? {
                ValueType::Undefined => true,
                // SAFETY: checked to be a boolean.
                ValueType::Boolean => unsafe { v.cast::<bool>() }?,
                _ => return Err(error::to_napi(env, &Failure::invalid("safeIntegers takes a boolean"))),
            },
        };
        self.opts.safe_integers = Some(on);
        Ok(this)
    }

    fn read_op(&self, params: Unknown<'_>) -> Result<Op, Failure> {
        Ok(Op::Read {
            sql: self.sql.clone(),
            params: convert::params_from_args(params)?,
            opts: self.opts,
            kind: self.kind.clone(),
        })
    }

    /// Execute (through Raft, or inside the open transaction) and resolve to
    /// `{ changes, lastInsertRowid }`.
    #[napi(ts_args_type = "...params: BindParameters", ts_return_type = "Promise<RunResult>")]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        params: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let prepared =
            convert::params_from_args(params).map(|params| Op::Write { sql: self.sql.clone(), params });
        let job = submit(&self.source, prepared);
        let safe = self.opts.safe_integers.unwrap_or(false);
        settle(env, async move { job.await?.exec() }, move |env, r| convert::run_result(env, &r, safe))
    }

    /// The first row, or `undefined` when there is none.
    #[napi(
        ts_generic_types = "T = Row",
        ts_args_type = "...params: BindParameters",
        ts_return_type = "Promise<T | undefined>"
    )]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        params: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, Either<Object<'env>, ()>>> {
        let job = submit(&self.source, self.read_op(params));
        let safe = self.opts.safe_integers.unwrap_or(false);
        settle(env, async move { job.await?.rows() }, move |env, rows| {
            let Rows { columns, rows, .. } = rows;
            match rows.into_iter().next() {
                Some(row) => Ok(Either::A(convert::row_object(env, &columns, row, safe)?)),
                None => Ok(Either::B(())),
            }
        })
    }

    /// All rows.
    #[napi(
        ts_generic_types = "T = Row",
        ts_args_type = "...params: BindParameters",
        ts_return_type = "Promise<T[]>"
    )]
    pub fn all<'env>(
        &self,
        env: &'env Env,
        params: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, Array<'env>>> {
        let job = submit(&self.source, self.read_op(params));
        let safe = self.opts.safe_integers.unwrap_or(false);
        settle(env, async move { job.await?.rows() }, move |env, rows| convert::rows_array(env, rows, safe))
    }

    /// Everything the statement answered: `{ columns, rows, changes, lastInsertRowid }`, rows
    /// as arrays of values in column order (`columns` is known even when there are no rows).
    /// Routed as `get`/`all` are: a read is queried, a write goes through Raft (or runs inside
    /// the open transaction).
    #[napi(ts_args_type = "...params: BindParameters", ts_return_type = "Promise<StatementResult>")]
    pub fn result<'env>(
        &self,
        env: &'env Env,
        params: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let job = submit(&self.source, self.read_op(params));
        let safe = self.opts.safe_integers.unwrap_or(false);
        settle(env, async move { job.await?.exec() }, move |env, r| convert::full_result(env, r, safe))
    }

    /// Rows one at a time: `for await (const row of stmt.iterate(...))`. The query runs when
    /// iteration starts. (The core returns whole result sets, so the rows are fetched at once
    /// and handed out one by one.)
    #[napi(ts_args_type = "...params: BindParameters")]
    pub fn iterate(&self, env: &Env, params: Unknown<'_>) -> napi::Result<RowIterator> {
        let op = self.read_op(params).map_err(|f| error::to_napi(env, &f))?;
        if let Source::Db(shared) = &self.source {
            shared.client().map_err(|f| error::to_napi(env, &f))?;
        }
        Ok(RowIterator {
            fetch: Arc::new(Fetch {
                safe: self.opts.safe_integers.unwrap_or(false),
                job: Mutex::new(None),
                rows: tokio::sync::OnceCell::new(),
            }),
            start: Some((self.source.clone(), op)),
            next_index: 0,
            finished: false,
        })
    }
}

struct Fetch {
    safe: bool,
    /// The query, submitted by the first `next()`.
    job: Mutex<Option<Job<Out>>>,
    rows: tokio::sync::OnceCell<Result<Rows, Failure>>,
}

impl Fetch {
    async fn rows(&self) -> &Result<Rows, Failure> {
        self.rows
            .get_or_init(|| async {
                let job = self.job.lock().unwrap_or_else(|p| p.into_inner()).take();
                match job {
                    Some(job) => job.await.and_then(Out::rows),
                    None => Err(Failure::invalid("internal: the iteration's query was never started")),
                }
            })
            .await
    }

    /// The iterator result for call number `index` of `next()`, once the rows are in. Only the
    /// first call reports a failed query; the iteration is over after it.
    fn result<'env>(&self, env: &'env Env, index: usize) -> napi::Result<Object<'env>> {
        let mut obj = Object::new(env)?;
        match self.rows.get() {
            Some(Ok(rows)) if index < rows.rows.len() => {
                obj.set(
                    "value",
                    convert::row_object(env, &rows.columns, rows.rows[index].clone(), self.safe)?,
                )?;
                obj.set("done", false)?;
            }
            Some(Err(f)) if index == 0 => return Err(error::to_napi(env, f)),
            _ => {
                obj.set("value", ())?;
                obj.set("done", true)?;
            }
        }
        Ok(obj)
    }
}

/// The async iterator `stmt.iterate()` returns.
#[napi]
pub struct RowIterator {
    fetch: Arc<Fetch>,
    /// Where and what to query, until the first `next()` submits it (it takes its place in a
    /// transaction's order then, not when `iterate()` was called).
    start: Option<(Source, Op)>,
    next_index: usize,
    finished: bool,
}

#[napi]
impl RowIterator {
    /// The next row: `{ value: row, done: false }`, then `{ value: undefined, done: true }`.
    #[napi(ts_return_type = "Promise<IteratorResult<Row, undefined>>")]
    pub fn next<'env>(&mut self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        // The index is taken now, on the JS thread, so that overlapping `next()` calls get the
        // rows in call order whatever order their promises settle in.
        let index = if self.finished { usize::MAX } else { self.next_index };
        self.next_index = self.next_index.saturating_add(1);
        if let Some((source, op)) = self.start.take() {
            if self.finished {
                // Ended before it started: nothing to query.
                let _ = self.fetch.rows.set(Ok(Rows::default()));
            } else {
                *self.fetch.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(source.submit(op));
            }
        }
        if self.fetch.rows.initialized() {
            return match self.fetch.result(env, index) {
                Ok(v) => PromiseRaw::resolve(env, v),
                Err(e) => PromiseRaw::reject(env, e),
            };
        }
        let fetch = self.fetch.clone();
        let after = self.fetch.clone();
        settle(
            env,
            async move {
                fetch.rows().await;
                Ok(())
            },
            move |env, ()| after.result(env, index),
        )
    }

    /// End the iteration early (`break` out of `for await`).
    #[napi(js_name = "return", ts_return_type = "Promise<IteratorResult<Row, undefined>>")]
    pub fn finish<'env>(&mut self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        self.finished = true;
        let mut obj = Object::new(env)?;
        obj.set("value", ())?;
        obj.set("done", true)?;
        PromiseRaw::resolve(env, obj)
    }

    /// The iterator itself, so that `for await` accepts it.
    #[napi(well_known_symbol = "asyncIterator", ts_return_type = "this")]
    pub fn async_iterator<'a>(&self, this: This<'a>) -> This<'a> {
        this
    }
}

/// An interactive transaction (`db.begin()`, or the argument of `db.transaction(fn)`): the
/// database's statement API, run inside the transaction, one statement at a time in call
/// order. Its reads see its writes; a failed statement leaves it open (as in SQLite). Other
/// writers wait while it is open, so keep it short; end it with `commit()` or `rollback()`
/// (a transaction left behind rolls back when collected, or after the cluster's idle timeout).
#[napi]
pub struct Transaction {
    session: Arc<Session>,
    defaults: ReadOptions,
}

#[napi]
impl Transaction {
    fn source(&self) -> Source {
        Source::Tx(self.session.clone())
    }

    /// True until `commit()` or `rollback()` (or `COMMIT`/`ROLLBACK` through `exec`) has ended
    /// it: as of the last statement that finished.
    #[napi(getter)]
    pub fn active(&self) -> bool {
        self.session.is_open()
    }

    /// Run SQL text inside the transaction: one or more statements separated by `;`, without
    /// parameters. `SAVEPOINT`/`RELEASE`/`ROLLBACK TO` nest; `COMMIT`/`ROLLBACK` end the
    /// transaction; `BEGIN` fails, as SQLite's does inside a transaction.
    #[napi(ts_args_type = "sql: string", ts_return_type = "Promise<void>")]
    pub fn exec<'env>(&self, env: &'env Env, sql: Unknown<'_>) -> napi::Result<PromiseRaw<'env, ()>> {
        exec_on(env, &self.source(), sql)
    }

    /// Prepare a statement whose `run`/`get`/`all`/`iterate` run inside the transaction.
    #[napi(ts_args_type = "sql: string, options?: StatementOptions")]
    pub fn prepare(
        &self,
        env: &Env,
        sql: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Statement> {
        prepare_on(env, self.source(), self.defaults, sql, options)
    }

    /// Read rows inside the transaction (seeing its writes). Consistency and cache options do
    /// not apply: the transaction reads on the leader, where it runs.
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

    /// Run one statement inside the transaction and resolve to `{ changes, lastInsertRowid }`.
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

    /// Commit: the transaction is replicated as one log entry, with the results it saw. On an
    /// error nothing of it is applied (except `HIQLITE_OUTCOME_UNKNOWN`: it may have been).
    /// Either way the transaction has ended.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn commit<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        self.end(env, true)
    }

    /// Roll back: nothing of the transaction is applied.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn rollback<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        self.end(env, false)
    }

    fn end<'env>(&self, env: &'env Env, commit: bool) -> napi::Result<PromiseRaw<'env, ()>> {
        let job = self.source().submit(Op::End { commit });
        settle(
            env,
            async move {
                job.await?;
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }
}

/// A cluster member's addresses.
#[napi(object, object_from_js = false)]
pub struct ClusterMember {
    /// Node id.
    pub id: f64,
    /// `host:port` of its Raft listener.
    pub raft_addr: String,
    /// `host:port` of its HTTP API.
    pub api_addr: String,
}

/// A node's view of itself and of the cluster (`db.status()`).
#[napi(object, object_from_js = false)]
pub struct NodeStatus {
    /// This node's id.
    pub id: f64,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    /// The current leader's id, if known.
    pub leader: Option<f64>,
    /// Current Raft term.
    pub term: f64,
    /// Last index in the log.
    pub last_log_index: Option<f64>,
    /// Last index applied to SQLite.
    pub applied_index: Option<f64>,
    /// Index of the newest snapshot.
    pub snapshot_index: Option<f64>,
    /// Voters and learners.
    pub members: Vec<ClusterMember>,
    /// Ids of the voters.
    pub voters: Vec<f64>,
    /// Raft address of this node.
    pub raft_addr: String,
    /// API address of this node.
    pub api_addr: String,
    /// How the database was opened: `new`, `clean` or `healed`.
    pub startup: String,
    /// False when Raft stopped on a fatal error; see `error`.
    pub healthy: bool,
    /// Why the node is unhealthy.
    pub error: Option<String>,
}

impl From<hiqlite::Status> for NodeStatus {
    fn from(s: hiqlite::Status) -> Self {
        let n = |v: u64| v as f64;
        NodeStatus {
            id: n(s.id),
            state: s.state,
            leader: s.leader.map(n),
            term: n(s.term),
            last_log_index: s.last_log_index.map(n),
            applied_index: s.applied_index.map(n),
            snapshot_index: s.snapshot_index.map(n),
            members: s
                .members
                .into_iter()
                .map(|(id, m)| ClusterMember { id: n(id), raft_addr: m.raft_addr, api_addr: m.api_addr })
                .collect(),
            voters: s.voters.into_iter().map(n).collect(),
            raft_addr: s.raft_addr,
            api_addr: s.api_addr,
            startup: s.startup,
            healthy: s.healthy,
            error: s.error,
        }
    }
}

/// A member of the cluster as the answering node sees it (`db.nodes()`).
#[napi(object, object_from_js = false)]
pub struct NodeInfo {
    /// Node id.
    pub id: f64,
    /// Its client API address.
    pub api_addr: String,
    /// Its Raft address.
    pub raft_addr: String,
    /// True for voters, false for learners.
    pub voter: bool,
    /// True if it is the leader.
    pub leader: bool,
    /// Whether the answering node could reach it.
    pub reachable: bool,
    /// Round trip of the reachability probe, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why it is unreachable.
    pub error: Option<String>,
}

impl From<hiqlite::NodeInfo> for NodeInfo {
    fn from(n: hiqlite::NodeInfo) -> Self {
        NodeInfo {
            id: n.id as f64,
            api_addr: n.api_addr,
            raft_addr: n.raft_addr,
            voter: n.voter,
            leader: n.leader,
            reachable: n.reachable,
            rtt_ms: n.rtt.map(|d| d.as_secs_f64() * 1000.0),
            error: n.error,
        }
    }
}

/// Stands in for the `HiqliteError` class until `install_prelude` puts the real one in its
/// place. It exists so that the generated loader re-exports `HiqliteError` by name (ES module
/// imports of a CommonJS package need that) and so that the generated declaration reads
/// `HiqliteError: HiqliteErrorConstructor`, the interface the type header declares.
pub struct HiqliteErrorConstructor;

impl ToNapiValue for HiqliteErrorConstructor {
    unsafe fn to_napi_value(env: napi::sys::napi_env, _: Self) -> napi::Result<napi::sys::napi_value> {
        // SAFETY: `env` is the live environment napi passed to this conversion.
        unsafe { napi::bindgen_prelude::Null::to_napi_value(env, napi::bindgen_prelude::Null) }
    }
}

/** The class of every error the package throws or rejects with (`err instanceof HiqliteError`). */
// Named as in JavaScript: a differing Rust name would be exported as a second, empty name.
#[allow(non_upper_case_globals)]
#[napi]
pub const HiqliteError: HiqliteErrorConstructor = HiqliteErrorConstructor;
