//! Log compaction by bytes as well as by entries: openraft 0.9 counts entries only, and 1,000
//! entries of 2 MB transactions are 2 GB of log. A snapshot is triggered when the WAL or the log
//! since the last snapshot passes `snapshot_bytes` (or a sixteenth of a smaller database, see
//! [`crate::sqlite::checkpoint::change_budget`]), and the log behind each snapshot is purged down
//! to `log_keep_bytes` (at most half that budget; openraft's own rule, `log_keep_after_snapshot`
//! entries, still applies: whichever keeps less).

use std::time::Duration;

use super::Node;

/// Replicas reach the same budget at the same entry; snapshotting together, every node of a
/// write's quorum would checkpoint at once. Each node's budget is stretched by an eighth per
/// step of its id (modulo 4), so that their snapshots come apart.
fn stagger(limit: u64, id: u64) -> u64 {
    limit + limit / 8 * (id % 4)
}

impl Node {
    /// Watch the WAL and the log until the node stops.
    pub(crate) fn spawn_compaction(&self) {
        let node = self.clone();
        let mut stop = self.inner.shutdown_tx.subscribe();
        tokio::spawn(async move {
            let mut purged_for = None;
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                if *stop.borrow() {
                    return;
                }
                purged_for = node.compact(purged_for).await;
            }
        });
    }

    /// One look: trigger a snapshot or a purge when due. Returns the snapshot index the log was
    /// last purged behind.
    async fn compact(&self, purged_for: Option<u64>) -> Option<u64> {
        let inner = &self.inner;
        let db_len = std::fs::metadata(inner.snapshots.db()).map_or(0, |m| m.len());
        let limit = crate::sqlite::checkpoint::change_budget(inner.config.snapshot_bytes, db_len);
        let limit = stagger(limit, self.id());
        let snap = inner.snapshots.current().and_then(|p| p.applied.0).map(|p| p.index);
        let wal_bytes = crate::sqlite::base::wal_bytes(inner.snapshots.db(), inner.writer.uncopied_frames());
        if wal_bytes > limit || inner.log.bytes_after(snap) > limit {
            // openraft ignores the trigger while a build runs.
            if let Err(e) = inner.raft.trigger().snapshot().await {
                tracing::debug!("snapshot trigger: {e}");
            }
        }
        let snap = snap?;
        if purged_for == Some(snap) {
            return purged_for;
        }
        let keep = inner.config.log_keep_bytes.min(limit / 2);
        if let Some(upto) = inner.log.purge_point(snap, keep) {
            if let Err(e) = inner.raft.trigger().purge_log(upto).await {
                tracing::debug!("purge trigger: {e}");
            }
        }
        Some(snap)
    }
}
