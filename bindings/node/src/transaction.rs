//! The `Transaction` class: an interactive transaction's statement API, commit and rollback.

use std::sync::Arc;

use napi::bindgen_prelude::{Array, Object, PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::convert::ReadOptions;
use crate::session::{Op, Session, Source};
use crate::statement::Statement;
use crate::{exec_on, execute_on, prepare_on, query_on, settle};

/// An interactive transaction (`db.begin()`, or the argument of `db.transaction(fn)`): the
/// database's statement API, run inside the transaction, one statement at a time in call
/// order. Its reads see its writes; a failed statement leaves it open (as in SQLite). Other
/// writers wait while it is open, so keep it short; end it with `commit()` or `rollback()`
/// (a transaction left behind rolls back when collected, or after the cluster's idle timeout).
#[napi]
pub struct Transaction {
    pub(crate) session: Arc<Session>,
    pub(crate) defaults: ReadOptions,
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
