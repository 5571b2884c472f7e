//! Interactive transactions on the leader. A transaction holds the right to write (a gate that
//! plain writes share and a transaction takes alone, as SQLite's single writer), runs its
//! statements speculatively on the writer connection (so it reads its own writes), and commits
//! by proposing what it ran as one `Command::Session` entry with the clock and seed it ran with.
//! Idle or orphaned transactions roll back; a leader change fails them, nothing applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedRwLockWriteGuard, RwLock};

use super::leader::Here;
use super::propose::Proposed;
use super::Node;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::peer;
use crate::routing::Kind;
use crate::value::{ExecResult, Statement};

/// The write gate and the open transaction of a node.
#[derive(Default)]
pub(super) struct TxState {
    /// Plain writes hold it shared while they are proposed and applied; a transaction holds it
    /// alone from BEGIN to COMMIT.
    gate: Arc<RwLock<()>>,
    active: tokio::sync::Mutex<Option<Active>>,
}

struct Active {
    id: u64,
    /// The term it began in: a leader change (even back to this node) ends it.
    term: u64,
    last_used: Instant,
    _write: OwnedRwLockWriteGuard<()>,
}

fn busy(what: &str) -> Error {
    Error::Sql {
        code: rusqlite::ffi::SQLITE_BUSY,
        message: format!("database is locked: {what} waited for an open transaction past the busy timeout"),
    }
}

fn unknown_tx(id: u64) -> Error {
    Error::Sql {
        code: rusqlite::ffi::SQLITE_ERROR,
        message: format!(
            "no transaction {id:x} is active: it was committed or rolled back, rolled back after being \
             idle, or ended by a leader change"
        ),
    }
}

fn leader_changed() -> Error {
    Error::Sql {
        code: rusqlite::ffi::SQLITE_ABORT,
        message: "transaction aborted: the cluster's leader changed while it was open; nothing of it was \
                  applied"
            .into(),
    }
}

impl Node {
    fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.busy_timeout_ms)
    }

    fn term(&self) -> u64 {
        self.inner.raft.metrics().borrow().current_term
    }

    /// Wait for a share of the write gate (plain writes), up to the busy timeout.
    pub(super) async fn write_share(&self) -> Result<tokio::sync::OwnedRwLockReadGuard<()>> {
        tokio::time::timeout(self.busy_timeout(), self.inner.tx.gate.clone().read_owned())
            .await
            .map_err(|_| busy("the write"))
    }

    /// Begin a transaction on this node, which must lead. Returns its id.
    async fn tx_begin_here(&self) -> Result<u64> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let term = self.term();
        let write = tokio::time::timeout(self.busy_timeout(), self.inner.tx.gate.clone().write_owned())
            .await
            .map_err(|_| busy("BEGIN"))?;
        if !self.is_leader() || self.term() != term {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let ts_ms = super::now_ms() as i64;
        let seed = getrandom::u64().unwrap_or(ts_ms as u64 ^ 0x9E37_79B9_7F4A_7C15);
        self.inner.writer.tx_begin(ts_ms, seed).await?;
        let id = getrandom::u64().unwrap_or(seed.rotate_left(17)) | 1;
        *self.inner.tx.active.lock().await =
            Some(Active { id, term, last_used: Instant::now(), _write: write });
        let node = self.clone();
        tokio::spawn(async move { node.reap(id).await });
        tracing::debug!(tx = id, "transaction begun");
        Ok(id)
    }

    /// Roll transaction `id` back once it is idle too long or its leadership is gone.
    async fn reap(&self, id: u64) {
        let idle = Duration::from_millis(self.inner.config.transaction_idle_timeout_ms.max(1));
        let tick = (idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            tokio::time::sleep(tick).await;
            let mut active = self.inner.tx.active.lock().await;
            let Some(a) = active.as_ref().filter(|a| a.id == id) else { return };
            let lost = !self.is_leader() || self.term() != a.term;
            if lost || a.last_used.elapsed() >= idle {
                tracing::info!(tx = id, lost_leadership = lost, "open transaction rolled back");
                let _ = self.inner.writer.tx_end().await;
                *active = None;
                return;
            }
        }
    }

    /// Run a statement in transaction `id` on this node.
    async fn tx_exec_here(&self, id: u64, stmt: Statement) -> Result<ExecResult> {
        let mut active = self.inner.tx.active.lock().await;
        let a = active.as_mut().filter(|a| a.id == id).ok_or_else(|| unknown_tx(id))?;
        if !self.is_leader() || self.term() != a.term {
            let _ = self.inner.writer.tx_end().await;
            *active = None;
            return Err(leader_changed());
        }
        a.last_used = Instant::now();
        let r = self.inner.writer.tx_exec(stmt).await;
        if let Some(a) = active.as_mut() {
            a.last_used = Instant::now();
        }
        r
    }

    /// Commit transaction `id`: its statements go through the log as one entry.
    async fn tx_commit_here(&self, id: u64) -> Result<()> {
        let mut active = self.inner.tx.active.lock().await;
        if active.as_ref().is_none_or(|a| a.id != id) {
            return Err(unknown_tx(id));
        }
        // A COMMIT refused (deferred foreign-key violations) ends the transaction, rolled back:
        // every face's commit consumes its handle, so nobody could roll it back otherwise.
        if let Err(e) = self.inner.writer.tx_check_commit().await {
            let _ = self.inner.writer.tx_end().await;
            *active = None;
            return Err(e);
        }
        let Some(a) = active.take() else {
            return Err(unknown_tx(id));
        };
        let recorded = self.inner.writer.tx_end().await;
        if !self.is_leader() || self.term() != a.term {
            return Err(leader_changed());
        }
        let rec = recorded?;
        if rec.stmts.is_empty() {
            return Ok(());
        }
        let cmd = Command::Session { stmts: rec.stmts, ts_ms: rec.ts_ms, seed: rec.seed };
        // Still holding the gate (in `a`): nothing else was applied since the statements ran.
        let r = match self.propose_ungated(cmd).await? {
            Proposed::Done(r) => r.map(|_| ()),
            Proposed::Refused(_, _) => Err(leader_changed()),
        };
        drop(a);
        r
    }

    /// Roll transaction `id` back.
    async fn tx_rollback_here(&self, id: u64) -> Result<()> {
        let mut active = self.inner.tx.active.lock().await;
        if active.as_ref().is_none_or(|a| a.id != id) {
            return Err(unknown_tx(id));
        }
        let _ = self.inner.writer.tx_end().await;
        *active = None;
        Ok(())
    }

    /// Begin an interactive transaction on the leader, wherever it is; returns its id.
    pub(crate) async fn tx_begin(&self) -> Result<u64> {
        self.on_leader::<peer::TxBegin, _, _, _>(
            Kind::Write,
            (),
            self.timeout(),
            "begin a transaction",
            |()| async {
                match self.tx_begin_here().await {
                    Err(e @ Error::NotLeader { .. }) => Here::Refused((), e),
                    r => Here::Done(r),
                }
            },
        )
        .await
    }

    /// Run a statement in transaction `id`, on the leader that holds it.
    pub(crate) async fn tx_exec(&self, id: u64, stmt: Statement) -> Result<ExecResult> {
        self.on_leader::<peer::TxExec, _, _, _>(
            Kind::Write,
            (id, stmt),
            self.timeout(),
            "run the statement",
            |(id, stmt)| async move { Here::Done(self.tx_exec_here(id, stmt).await) },
        )
        .await
    }

    /// Commit transaction `id`.
    pub(crate) async fn tx_commit(&self, id: u64) -> Result<()> {
        self.on_leader::<peer::TxCommit, _, _, _>(
            Kind::Write,
            id,
            self.timeout(),
            "commit",
            |id| async move { Here::Done(self.tx_commit_here(id).await) },
        )
        .await
    }

    /// Roll transaction `id` back.
    pub(crate) async fn tx_rollback(&self, id: u64) -> Result<()> {
        self.on_leader::<peer::TxRollback, _, _, _>(
            Kind::Write,
            id,
            self.timeout(),
            "roll back",
            |id| async move { Here::Done(self.tx_rollback_here(id).await) },
        )
        .await
    }

    /// The peer side: a transaction request forwarded by a follower, served only on the leader.
    pub(crate) async fn tx_begin_forwarded(&self) -> Result<u64> {
        self.tx_begin_here().await
    }

    /// The peer side of [`Node::tx_exec`].
    pub(crate) async fn tx_exec_forwarded(&self, id: u64, stmt: Statement) -> Result<ExecResult> {
        self.tx_exec_here(id, stmt).await
    }

    /// The peer side of [`Node::tx_commit`].
    pub(crate) async fn tx_commit_forwarded(&self, id: u64) -> Result<()> {
        self.tx_commit_here(id).await
    }

    /// The peer side of [`Node::tx_rollback`].
    pub(crate) async fn tx_rollback_forwarded(&self, id: u64) -> Result<()> {
        self.tx_rollback_here(id).await
    }
}
