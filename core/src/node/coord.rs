//! Coordination primitives on a node: key/value entries and counters go through the log like
//! any write (forwarded to the leader); reads are local, or wait for the read index first. The
//! leader proposes an expiry entry when an entry's time has come, so expired keys disappear on
//! every replica at the same log position without anyone writing.

use std::time::Duration;

use super::{Consistency, Node};
use crate::command::Command;
use crate::coord::{CoordAnswer, CoordOp};
use crate::error::{Error, Result};

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
