//! [`Transaction`]: an interactive transaction with SQLite's semantics as one connection sees
//! them — its reads see its writes, `SAVEPOINT`/`RELEASE`/`ROLLBACK TO` work, and it commits as
//! one replicated log entry or not at all. Embedded clients reach the leader's transaction over
//! the peer protocol; remote clients over hiqlite's `/db/tx` endpoints.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::remote::Remote;
use super::session::Session;
use crate::error::{Error, Result};
#[cfg(feature = "server")]
use crate::node::Node;
use crate::value::{ExecResult, Params, Rows, Statement};

#[derive(Clone)]
pub(super) enum TxHolder {
    #[cfg(feature = "server")]
    Embedded(Node),
    /// The client, and the node URL that holds the transaction.
    Remote(Arc<Remote>, String),
}

/// An open interactive transaction (from [`Client::begin`](super::Client::begin)). Other writes
/// wait while it is open, so keep it short. Dropping it without [`Transaction::commit`] rolls it
/// back. Statements run one at a time, in the order they are called.
pub struct Transaction {
    holder: TxHolder,
    id: u64,
    done: bool,
    /// The client's session: a commit is a write it must read.
    session: Session,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("id", &format_args!("{:x}", self.id)).finish_non_exhaustive()
    }
}

impl Transaction {
    pub(super) fn new(holder: TxHolder, id: u64, session: Session) -> Transaction {
        Transaction { holder, id, done: false, session }
    }

    fn check_open(&self) -> Result<()> {
        if self.done {
            return Err(Error::InvalidRequest("the transaction has already ended".into()));
        }
        Ok(())
    }

    async fn run(&self, stmt: Statement) -> Result<ExecResult> {
        self.check_open()?;
        match &self.holder {
            #[cfg(feature = "server")]
            TxHolder::Embedded(n) => n.tx_exec(self.id, stmt).await.map(|mut r| {
                r.rqlite_counters = None;
                r
            }),
            TxHolder::Remote(r, url) => r.tx_exec(url, self.id, stmt).await,
        }
    }

    /// Run one statement (a write, a read, or `SAVEPOINT`/`RELEASE`/`ROLLBACK TO`). A failed
    /// statement leaves the transaction open, as in SQLite.
    pub async fn execute(&self, sql: &str, params: impl Into<Params>) -> Result<ExecResult> {
        self.run(Statement::new(sql, params)).await
    }

    /// Read rows, seeing the transaction's own writes.
    pub async fn query(&self, sql: &str, params: impl Into<Params>) -> Result<Rows> {
        Ok(self.run(Statement::new(sql, params)).await?.rows)
    }

    /// Read rows into `T` via serde, matching fields to column names.
    pub async fn query_as<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl Into<Params>,
    ) -> Result<Vec<T>> {
        self.query(sql, params).await?.deserialize()
    }

    /// Commit: every statement becomes one log entry, applied on every node with the results
    /// this transaction saw. On an error nothing of it is applied, except
    /// [`Error::OutcomeUnknown`], which means the entry may or may not commit.
    pub async fn commit(mut self) -> Result<()> {
        self.check_open()?;
        self.done = true;
        let r = match &self.holder {
            #[cfg(feature = "server")]
            TxHolder::Embedded(n) => n.tx_commit(self.id).await,
            TxHolder::Remote(r, url) => r.tx_end(url, self.id, true).await,
        };
        // The commit's answer names no log index: the session's next local read is a
        // linearizable one.
        if r.is_ok() {
            self.session.note_unindexed();
        }
        r
    }

    /// Roll back: nothing of the transaction is applied.
    pub async fn rollback(mut self) -> Result<()> {
        self.check_open()?;
        self.done = true;
        match &self.holder {
            #[cfg(feature = "server")]
            TxHolder::Embedded(n) => n.tx_rollback(self.id).await,
            TxHolder::Remote(r, url) => r.tx_end(url, self.id, false).await,
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Release the database now rather than at the idle timeout.
        let (holder, id) = (self.holder.clone(), self.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let r = match &holder {
                    #[cfg(feature = "server")]
                    TxHolder::Embedded(n) => n.tx_rollback(id).await,
                    TxHolder::Remote(r, url) => r.tx_end(url, id, false).await,
                };
                if let Err(e) = r {
                    tracing::debug!("rolling back a dropped transaction: {e}");
                }
            });
        }
    }
}
