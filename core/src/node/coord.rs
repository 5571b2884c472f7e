//! Coordination primitives on a node: key/value entries and counters go through the log like
//! any write (forwarded to the leader); reads are local, or wait for the read index first. The
//! leader proposes an expiry entry when an entry's time has come, so expired keys disappear on
//! every replica at the same log position without anyone writing.

use std::time::{Duration, Instant};

use super::{Consistency, Node};
use crate::command::Command;
use crate::coord::{CoordAnswer, CoordOp, LockOutcome};
use crate::error::{Error, Result};

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Node {
    /// Propose a coordination operation and wait for its answer and log index.
    pub(crate) async fn coord(&self, op: CoordOp) -> Result<(CoordAnswer, u64)> {
        crate::coord::check(&op)?;
        let resp = self.write(Command::Coord { op, ts_ms: 0 }).await?;
        if let Some(Err(e)) = resp.results.into_iter().next() {
            return Err(e);
        }
        let answer =
            resp.coord.ok_or_else(|| Error::Storage("a coordination entry without an answer".into()))?;
        Ok((answer, resp.log_index))
    }

    /// Read hiqlite's state file with `consistency` (`Leader` is served as `Linearizable`: the
    /// read index proves leadership as a leader read would).
    pub(crate) async fn state_read<T>(
        &self,
        consistency: Consistency,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        match consistency {
            Consistency::Local => tokio::task::consume_budget().await,
            Consistency::Linearizable | Consistency::Leader => self.wait_linearizable().await?,
        }
        self.inner.state_reads.with(f)
    }

    /// The value of `key` in namespace `ns`, from the writer's in-memory mirror (no SQLite).
    pub(crate) async fn kv_get(
        &self,
        ns: &str,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<Vec<u8>>> {
        match consistency {
            Consistency::Local => tokio::task::consume_budget().await,
            Consistency::Linearizable | Consistency::Leader => self.wait_linearizable().await?,
        }
        Ok(self.inner.writer.kv_mirror.get(ns, key).map(|v| v.to_vec()))
    }

    /// A counter's value (0 when never set).
    pub(crate) async fn counter_get(&self, name: &str, consistency: Consistency) -> Result<i64> {
        self.state_read(consistency, |c| crate::sqlite::coord::counter(c, "main", name)).await
    }

    /// Take lock `name` with a lease of `lease`: at once, or waiting in line up to `wait` (`None`:
    /// try once). The fencing token and whether it waited in line (its lease then started before
    /// the caller learned of it), or `None` when busy (try). Waiting past `wait` is a `Timeout`
    /// (a grant that raced with it is handed on).
    pub(crate) async fn lock(
        &self,
        name: &str,
        lease: Duration,
        wait: Option<Duration>,
    ) -> Result<Option<(i64, bool)>> {
        let waiter = format!(
            "{:016x}{:016x}",
            getrandom::u64().map_err(|e| Error::Storage(format!("no randomness: {e}")))?,
            super::now_us()
        );
        let started = Instant::now();
        // Subscribed before asking, so that a grant applied right after is not missed.
        let mut epoch = self.inner.writer.lock_epoch.subscribe();
        let op = CoordOp::LockAcquire {
            name: name.into(),
            waiter: waiter.clone(),
            lease_ms: millis(lease).max(1),
            wait_ms: wait.map(millis),
        };
        match self.coord(op).await?.0 {
            CoordAnswer::Lock(LockOutcome::Granted(t)) => return Ok(Some((t, false))),
            CoordAnswer::Lock(LockOutcome::Busy) => return Ok(None),
            CoordAnswer::Lock(LockOutcome::Queued) => {}
            other => return Err(Error::Storage(format!("unexpected lock answer {other:?}"))),
        }
        let deadline = started + wait.unwrap_or_default();
        loop {
            epoch.borrow_and_update();
            if let Some(t) =
                self.inner.state_reads.with(|c| crate::sqlite::locks::held_by(c, name, &waiter))?
            {
                return Ok(Some((t, true)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let cancel = CoordOp::LockCancel { name: name.into(), waiter };
                if let Err(e) = self.coord(cancel).await {
                    tracing::debug!("cancelling a lock wait: {e}");
                }
                return Err(Error::Timeout(format!("lock {name} not acquired within {wait:?}")));
            }
            let _ = tokio::time::timeout(left, epoch.changed()).await;
        }
    }

    /// Extend the lease of the holder of `token`; whether it still held the lock.
    pub(crate) async fn lock_renew(&self, name: &str, token: i64, lease: Duration) -> Result<bool> {
        let op = CoordOp::LockRenew { name: name.into(), token, lease_ms: millis(lease).max(1) };
        match self.coord(op).await?.0 {
            CoordAnswer::Changed(b) => Ok(b),
            other => Err(Error::Storage(format!("unexpected lock answer {other:?}"))),
        }
    }

    /// Release the lock held with `token`; whether it was held.
    pub(crate) async fn lock_release(&self, name: &str, token: i64) -> Result<bool> {
        match self.coord(CoordOp::LockRelease { name: name.into(), token }).await?.0 {
            CoordAnswer::Changed(b) => Ok(b),
            other => Err(Error::Storage(format!("unexpected lock answer {other:?}"))),
        }
    }

    /// While this node leads, propose an expiry entry whenever a key's time has come.
    pub(crate) fn spawn_expiry(&self) {
        let node = self.clone();
        let mut stop = self.inner.shutdown_tx.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                if *stop.borrow() {
                    return;
                }
                if !node.is_leader() {
                    continue;
                }
                let due = node.inner.state_reads.with(crate::sqlite::coord::next_expiry);
                let now = super::now_us() / 1000;
                if matches!(due, Ok(Some(t)) if t <= i64::try_from(now).unwrap_or(i64::MAX)) {
                    if let Err(e) = node.coord(CoordOp::Expire).await {
                        tracing::debug!("expiry entry: {e}");
                    }
                }
            }
        });
    }
}
