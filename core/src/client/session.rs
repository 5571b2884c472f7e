//! Read-your-writes sessions: a [`Client`] remembers the log index of the writes made through it
//! and, in session mode ([`Client::read_your_writes`], [`RemoteBuilder::read_your_writes`]), has
//! every local read wait until the node that answers applied that index.
//!
//! Every client keeps the highest index (cheap: one atomic per write), so
//! [`Client::last_write_index`] answers on any client. Writes whose answer carries no index (an
//! interactive transaction's commit, remote coordination writes, remote migrations and restores)
//! count as "unindexed": the next local read of a session is then served as a `Linearizable`
//! one, which sees everything committed before it began, and later reads are local again.
//!
//! [`RemoteBuilder::read_your_writes`]: super::RemoteBuilder::read_your_writes

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::time::Duration;

use super::{Client, Inner};
use crate::consistency::{CacheRead, Consistency};
use crate::error::Result;
use crate::value::{ExecResult, Params, Rows, Statement};

/// What a client knows of its own writes; shared by its clones.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// Highest log index of a write made through the client (0: none yet).
    index: AtomicU64,
    /// Writes that succeeded without telling their index.
    unindexed: AtomicU64,
    /// How many of those a linearizable read has covered since.
    settled: AtomicU64,
}

/// The client's side of read-your-writes: the tracker, and whether local reads wait for it.
#[derive(Debug, Clone, Default)]
pub(super) struct Session {
    tracker: Arc<Tracker>,
    /// Session mode: local reads wait for the tracked index.
    pub(super) enabled: bool,
}

/// How one read runs under the session.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadPlan {
    /// The consistency to read at (a pending unindexed write turns `Local` into `Linearizable`).
    pub(super) consistency: Consistency,
    /// Wait until the answering node applied this index first (local reads only).
    pub(super) min_index: Option<u64>,
    /// Unindexed writes this read covers once it succeeded.
    settles: Option<u64>,
}

impl Session {
    /// A new tracker; `enabled`: session mode.
    pub(super) fn new(enabled: bool) -> Session {
        Session { tracker: Arc::default(), enabled }
    }

    /// A session-mode tracker of its own, starting at what `self` knows.
    pub(super) fn fork(&self) -> Session {
        let t = Tracker {
            index: AtomicU64::new(self.tracker.index.load(Ordering::SeqCst)),
            unindexed: AtomicU64::new(self.tracker.unindexed.load(Ordering::SeqCst)),
            settled: AtomicU64::new(self.tracker.settled.load(Ordering::SeqCst)),
        };
        Session { tracker: Arc::new(t), enabled: true }
    }

    /// Remember a write at `index`.
    pub(super) fn note_index(&self, index: u64) {
        self.tracker.index.fetch_max(index, Ordering::SeqCst);
    }

    /// Remember a write that succeeded without telling its index.
    pub(super) fn note_unindexed(&self) {
        self.tracker.unindexed.fetch_add(1, Ordering::SeqCst);
    }

    /// Remember the indexes of the statements that succeeded.
    pub(super) fn note_results(&self, results: &[Result<ExecResult>]) {
        let max = results.iter().flatten().filter_map(|r| r.log_index).max();
        if let Some(i) = max {
            self.note_index(i);
        }
    }

    /// Highest log index of the writes made through this client, if any.
    pub(super) fn last_index(&self) -> Option<u64> {
        Some(self.tracker.index.load(Ordering::SeqCst)).filter(|&i| i > 0)
    }

    /// How a read at `consistency` runs; `at` is an index the caller asked for explicitly.
    pub(super) fn plan(&self, consistency: Consistency, at: Option<u64>) -> ReadPlan {
        let mut plan = ReadPlan { consistency, min_index: at, settles: None };
        if !self.enabled || consistency != Consistency::Local {
            return plan;
        }
        let unindexed = self.tracker.unindexed.load(Ordering::SeqCst);
        if unindexed > self.tracker.settled.load(Ordering::SeqCst) {
            // A linearizable read sees every write acknowledged before it began.
            plan.consistency = Consistency::Linearizable;
            plan.min_index = None;
            plan.settles = Some(unindexed);
            return plan;
        }
        plan.min_index = plan.min_index.max(self.last_index());
        plan
    }

    /// A read planned with `plan` succeeded.
    pub(super) fn done<T>(&self, plan: ReadPlan, r: Result<T>) -> Result<T> {
        if let (Ok(_), Some(n)) = (&r, plan.settles) {
            self.tracker.settled.fetch_max(n, Ordering::SeqCst);
        }
        r
    }
}

impl Client {
    /// Every plain read: at `consistency`, after `at` if given (and, in session mode, after the
    /// session's own writes), through the query cache when `cached` (with its TTL).
    pub(super) async fn read(
        &self,
        sql: &str,
        params: Params,
        consistency: Consistency,
        at: Option<u64>,
        cached: Option<Option<Duration>>,
    ) -> Result<Rows> {
        let plan = self.session.plan(consistency, at);
        let r = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                if let Some(i) = plan.min_index {
                    n.wait_applied(i).await?;
                }
                match cached {
                    None => n.query(sql, &params, plan.consistency).await,
                    Some(ttl) => n.query_cached(sql, &params, plan.consistency, ttl).await,
                }
            }
            Inner::Remote(r) => {
                let cache = cached.map_or(CacheRead::Bypass, CacheRead::cached);
                let stmt = Statement::new(sql, params);
                r.query(&stmt, plan.consistency, cache, plan.min_index).await
            }
        };
        self.session.done(plan, r)
    }

    /// The consistency a coordination read (`kv_get`, `counter_get`) runs at, after waiting
    /// for the session's writes when it runs locally on an embedded node.
    pub(super) async fn coord_read_plan(&self, consistency: Consistency) -> Result<ReadPlan> {
        let mut plan = self.session.plan(consistency, None);
        if plan.consistency == Consistency::Local {
            match &self.inner {
                #[cfg(feature = "server")]
                Inner::Embedded(n) => {
                    if let Some(i) = plan.min_index {
                        n.wait_applied(i).await?;
                    }
                }
                // The coordination endpoints take no `min_index`: a remote session that wrote
                // reads at the leader's read index instead.
                Inner::Remote(_) => {
                    if plan.min_index.is_some() {
                        plan.consistency = Consistency::Linearizable;
                    }
                }
            }
        }
        Ok(plan)
    }

    /// A clone of this client in read-your-writes mode: it remembers the highest log index of
    /// the writes made through it (and its clones), and every `Local` read it makes
    /// ([`Client::query`] / [`Client::query_with`] at [`Consistency::Local`], the cached and
    /// `query_as` variants, [`Client::kv_get`], [`Client::counter_get`]) first waits until the
    /// node that answers applied that index. So the session reads its own writes on any node,
    /// a follower or read replica included, without a quorum round. Writes whose answer
    /// carries no index (an interactive transaction's commit, remote coordination writes)
    /// make the next local read a `Linearizable` one.
    ///
    /// The clone starts from what this client knows; its later writes are tracked apart from
    /// this client's. `Leader`/`Linearizable` reads are unchanged (they see the writes anyway).
    ///
    /// ```no_run
    /// # async fn f(db: hiqlite::Client) -> hiqlite::Result<()> {
    /// let session = db.read_your_writes();
    /// session.execute("INSERT INTO t (v) VALUES (?)", hiqlite::params![1]).await?;
    /// let rows = session.query_with("SELECT v FROM t", (), hiqlite::Consistency::Local).await?;
    /// assert!(!rows.rows.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn read_your_writes(&self) -> Client {
        Client { inner: self.inner.clone(), session: self.session.fork() }
    }

    /// Whether this client is in read-your-writes mode ([`Client::read_your_writes`]).
    pub fn is_read_your_writes(&self) -> bool {
        self.session.enabled
    }

    /// The highest Raft log index of the writes made through this client and its clones
    /// (`execute`, `batch`, `transaction`, `execute_returning`, migrations, embedded
    /// coordination writes), or `None` before the first. Pass it to [`Client::query_at`] on
    /// another client to read these writes there.
    pub fn last_write_index(&self) -> Option<u64> {
        self.session.last_index()
    }
}
