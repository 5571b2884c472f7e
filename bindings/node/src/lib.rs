//! Node.js binding of hiqlite, with a Promise API shaped like better-sqlite3. This root owns
//! the addon's setup (runtime, prelude, `HiqliteError`), the client shared by a database and
//! its statements, and the call paths (`exec`/`prepare`/`query`/`execute`, reads) that the
//! `Database` (database.rs), `Statement`/`RowIterator` (statement.rs) and `Transaction`
//! (transaction.rs) classes share; status.rs holds the status objects; coord.rs, lock.rs and
//! listen.rs the coordination methods (key/value and counters, locks, listen/notify).
//!
//! The binding is thin: it converts JavaScript values to `hiqlite::Value` and back, maps
//! errors to `HiqliteError` codes, and runs every call of the core's `Client` on the library's
//! Tokio runtime. The JavaScript thread only converts arguments and results; it never waits.

mod changes;
mod convert;
mod coord;
mod database;
mod error;
mod listen;
mod lock;
mod maintenance;
mod session;
mod statement;
mod status;
mod transaction;

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Array, FnArgs, Function, Object, PromiseRaw, ToNapiValue, Unknown};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Env;
use napi_derive::napi;

use hiqlite::{Client, Consistency, ExecResult, Params};

use crate::convert::ReadOptions;
use crate::error::{ErrorClass, Failure};
use crate::session::{Job, Op, Out, Session, Source};
use crate::statement::Statement;

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
        let r = match (opts.min_index, opts.cache_ttl()?) {
            (Some(at), _) => client.query_at(&sql, params, at.0).await,
            (None, Some(ttl)) => client.query_cached_with(&sql, params, consistency, ttl).await,
            (None, None) => client.query_with(&sql, params, consistency).await,
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
        opts.check_min_index()?;
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
        let opts = convert::options::<ReadOptions>(env, options, "query options")?;
        // Checked now: inside a transaction the read options are not used, but still wrong.
        opts.check_min_index()?;
        let opts = opts.over(defaults);
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
