//! The `Statement` class (a prepared statement of a database or a transaction) and the
//! `RowIterator` its `iterate()` returns.

use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Array, Either, Object, PromiseRaw, This, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;

use hiqlite::Rows;

use crate::convert::{self, ReadOptions};
use crate::error::{self, Failure};
use crate::session::{Job, Op, Out, Source};
use crate::{settle, submit};

/// A prepared statement of a `Database` or a `Transaction`. On a database `run` always goes
/// through Raft; `get`, `all` and `iterate` read (at the statement's consistency) unless the
/// statement writes, as `INSERT … RETURNING` does, in which case it goes through Raft too. On a
/// transaction (or a database with a transaction open) every call runs inside the transaction.
#[napi]
pub struct Statement {
    pub(crate) source: Source,
    pub(crate) sql: Arc<str>,
    pub(crate) opts: ReadOptions,
    pub(crate) kind: Arc<AtomicU8>,
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
