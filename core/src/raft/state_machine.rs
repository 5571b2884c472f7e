//! openraft's state machine over the SQLite writer, plus snapshots.
//!
//! A snapshot is the live database file itself (`sqlite/checkpoint.rs`): building one
//! checkpoints what changed since the last one, sending one reads the main file while no
//! checkpoint runs, and installing one swaps a received file in (`raft/snapshot.rs`).
//!
//! The writer knows no openraft: this adapter converts log ids to [`LogPos`] and back, entries
//! to [`Op`]s, memberships to opaque JSON blobs (the `_hiqlite_meta` layout of earlier
//! versions) and back, and the writer's errors to openraft's `StorageError`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{CommittedLeaderId, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};

use super::snapshot::{SnapData, SnapshotStore};
use super::{io_err, Entry, LogId, Response, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::error::{Error, Result};
use crate::sqlite::writer::{Applied, LogPos, MembershipBlob, Op, SnapshotPoint, Writer};

/// The Raft state machine: SQLite through the writer thread, snapshots as files.
#[derive(Clone)]
pub struct StateMachine {
    pub(crate) writer: Arc<Writer>,
    pub(crate) snapshots: Arc<SnapshotStore>,
    /// This node's id, for [`crate::breakdown`] events.
    me: u64,
    /// `NodeConfig::snapshot_bytes`: the WAL's budget follows it.
    snapshot_bytes: u64,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine").finish_non_exhaustive()
    }
}

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&io_err(e)).into()
}
fn snap_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(None, &io_err(e)).into()
}

impl From<LogId> for LogPos {
    fn from(l: LogId) -> Self {
        LogPos { index: l.index, term: l.leader_id.term, node_id: l.leader_id.node_id }
    }
}

impl From<LogPos> for LogId {
    fn from(p: LogPos) -> Self {
        LogId::new(CommittedLeaderId::new(p.term, p.node_id), p.index)
    }
}

fn encode_membership(m: &StoredMembership) -> Result<MembershipBlob> {
    Ok(serde_json::to_string(m).map_err(Error::storage)?.into())
}

fn decode_membership(m: Option<&MembershipBlob>) -> Result<StoredMembership> {
    match m {
        None => Ok(StoredMembership::default()),
        Some(s) => serde_json::from_str(s).map_err(|e| Error::Storage(format!("bad membership meta: {e}"))),
    }
}

/// The writer's applied state in openraft's types.
fn to_raft(applied: &Applied) -> Result<(Option<LogId>, StoredMembership)> {
    Ok((applied.0.map(LogId::from), decode_membership(applied.1.as_ref())?))
}

/// What the writer is to do for one openraft entry.
pub(crate) fn to_op(e: Entry) -> Result<(LogPos, Op)> {
    let op = match e.payload {
        EntryPayload::Blank => Op::Blank,
        EntryPayload::Normal(cmd) => Op::Command(cmd),
        EntryPayload::Membership(m) => {
            Op::Membership(encode_membership(&StoredMembership::new(Some(e.log_id), m))?)
        }
    };
    Ok((e.log_id.into(), op))
}

impl StateMachine {
    pub(crate) fn new(
        writer: Arc<Writer>,
        snapshots: Arc<SnapshotStore>,
        me: u64,
        snapshot_bytes: u64,
    ) -> Self {
        StateMachine { writer, snapshots, me, snapshot_bytes }
    }
}

/// openraft's view of a snapshot point.
fn meta_of(point: &SnapshotPoint) -> Result<SnapshotMeta> {
    let (last_log_id, last_membership) = to_raft(&point.applied)?;
    Ok(SnapshotMeta { last_log_id, last_membership, snapshot_id: point.id.clone() })
}

impl StateMachine {
    /// The current snapshot, readable (`None`: none yet).
    async fn live(&self) -> Result<Option<Snapshot<TypeConfig>>> {
        match self.snapshots.open_live().await? {
            None => Ok(None),
            Some((point, data)) => Ok(Some(Snapshot { meta: meta_of(&point)?, snapshot: Box::new(data) })),
        }
    }

    /// Checkpoint what changed since the last snapshot (see `sqlite/checkpoint.rs`).
    async fn build(&self) -> Result<SnapshotPoint> {
        let _files = self.snapshots.lock_files().await;
        let mut point = None;
        if let Some(pin) = self.writer.pin_frames().await? {
            let db = self.snapshots.db().to_path_buf();
            let copied =
                tokio::task::spawn_blocking(move || crate::sqlite::checkpoint::copy_frames(&db, pin))
                    .await
                    .map_err(Error::storage)??;
            self.writer.note_backfill(copied.salt, copied.frames).await?;
            point = copied.point;
        }
        // The WAL restarts by itself once writes pause after a snapshot; under writes that never
        // pause it is made to, when it outgrows its budget.
        let db_len = std::fs::metadata(self.snapshots.db()).map_or(0, |m| m.len());
        let budget = crate::sqlite::checkpoint::change_budget(self.snapshot_bytes, db_len);
        let wal = crate::sqlite::base::wal_bytes(
            self.snapshots.db(),
            self.writer.wal_frames.load(Ordering::Acquire),
        );
        if point.is_none() || wal > 2 * budget {
            let mut wait = Duration::from_millis(1);
            point = loop {
                if let Some(point) = self.writer.settle().await? {
                    break Some(point);
                }
                // A reader still uses frames the main file lacks: let writes through meanwhile.
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(50));
            };
        }
        let point = point.ok_or_else(|| Error::Storage("snapshot without a result".into()))?;
        self.snapshots.set_current(point.clone());
        Ok(point)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let started = Instant::now();
        let point = self.build().await.map_err(snap_err)?;
        let ms = started.elapsed().as_millis() as u64;
        self.snapshots.last_build_ms.store(ms, Ordering::Relaxed);
        self.snapshots.built.fetch_add(1, Ordering::Relaxed);
        tracing::info!(last = ?point.applied.0.map(|p| p.index), took_ms = ms, "snapshot built");
        match self.live().await.map_err(snap_err)? {
            Some(s) => Ok(s),
            None => Err(snap_err("a snapshot of an empty state machine")),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        to_raft(&self.writer.applied()).map_err(|e| StorageIOError::read_state_machine(&io_err(e)).into())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter();
        let mut ops = Vec::with_capacity(entries.size_hint().0);
        let mut last = None;
        for e in entries {
            let id = e.log_id;
            last = Some(id);
            ops.push(to_op(e).map_err(|err| StorageError::from(StorageIOError::apply(id, &io_err(err))))?);
        }
        crate::breakdown::mark(crate::breakdown::Stage::Apply, self.me);
        let r = self.writer.apply(ops).await;
        crate::breakdown::mark(crate::breakdown::Stage::Applied, self.me);
        r.map_err(|err| match (err, last) {
            (Error::ShutDown, _) => sm_err("writer stopped"),
            (err, Some(last)) => StorageIOError::apply(last, &io_err(err)).into(),
            (err, None) => sm_err(err),
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapData>, StorageError> {
        Ok(Box::new(self.snapshots.incoming().await.map_err(snap_err)?))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapData>,
    ) -> Result<(), StorageError> {
        let started = Instant::now();
        let incoming = match *snapshot {
            SnapData::Incoming(i) => i,
            // Another store's snapshot (in-process): copied in as if received.
            mut live @ SnapData::Live(_) => {
                use tokio::io::AsyncSeekExt;
                let SnapData::Incoming(mut i) = self.snapshots.incoming().await.map_err(snap_err)? else {
                    return Err(snap_err("a new snapshot file is not a received one"));
                };
                live.seek(std::io::SeekFrom::Start(0)).await.map_err(snap_err)?;
                tokio::io::copy(&mut live, i.file_mut()).await.map_err(snap_err)?;
                i
            }
        };
        let path = incoming.finish().await.map_err(snap_err)?;
        let p2 = path.clone();
        let state = tokio::task::spawn_blocking(move || crate::sqlite::meta::take_state(&p2))
            .await
            .map_err(snap_err)?
            .map_err(snap_err)?;
        let applied = (
            meta.last_log_id.map(LogPos::from),
            Some(encode_membership(&meta.last_membership).map_err(sm_err)?),
        );
        let _files = self.snapshots.lock_files().await;
        let point =
            self.writer.install(path, applied, state, meta.snapshot_id.clone()).await.map_err(sm_err)?;
        self.snapshots.set_current(point);
        self.snapshots.installed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(last = ?meta.last_log_id, took_ms = started.elapsed().as_millis() as u64, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        self.live().await.map_err(snap_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_memberships_convert_both_ways() {
        let id = LogId::new(CommittedLeaderId::new(4, 9), 17);
        let pos = LogPos::from(id);
        assert_eq!(pos, LogPos { index: 17, term: 4, node_id: 9 });
        assert_eq!(LogId::from(pos), id);

        let mut nodes = std::collections::BTreeMap::new();
        nodes.insert(1u64, crate::Member { raft_addr: "a:1".into(), api_addr: "a:2".into() });
        let m = StoredMembership::new(Some(id), openraft::Membership::new(vec![[1u64].into()], nodes));
        let blob = encode_membership(&m).expect("test step");
        assert_eq!(decode_membership(Some(&blob)).expect("test step"), m);
        assert_eq!(decode_membership(None).expect("test step"), StoredMembership::default());
    }

    /// The writer records the applied position and membership in its state file in the
    /// layout openraft's own types had there before the writer stopped knowing openraft, and
    /// reads them back after a restart.
    #[tokio::test]
    async fn meta_keeps_the_openraft_json_layout() {
        let dir = tempfile::tempdir().expect("test step");
        let db = dir.path().join("m.db");
        let cache = || Arc::new(crate::cache::QueryCache::new(crate::CacheConfig::default()));
        let id = LogId::new(CommittedLeaderId::new(3, 2), 7);
        let mut nodes = std::collections::BTreeMap::new();
        nodes.insert(2u64, crate::Member::default());
        let m = StoredMembership::new(Some(id), openraft::Membership::new(vec![[2u64].into()], nodes));
        let op = Op::Membership(encode_membership(&m).expect("test step"));
        let w = Writer::start(&db, cache()).expect("test step");
        let blank = LogId::new(CommittedLeaderId::new(3, 2), 8);
        w.apply(vec![(id.into(), op), (blank.into(), Op::Blank)]).await.expect("test step");
        w.shutdown().await.expect("test step");

        let conn = rusqlite::Connection::open(crate::sqlite::meta::state_path(&db)).expect("test step");
        let get = |k: &str| -> String {
            conn.query_row("SELECT value FROM _hiqlite_state_meta WHERE key = ?1", [k], |r| r.get(0))
                .expect("test step")
        };
        assert_eq!(get("last_applied"), serde_json::to_string(&Some(blank)).expect("test step"));
        assert_eq!(get("membership"), serde_json::to_string(&m).expect("test step"));
        drop(conn);

        let w = Writer::start(&db, cache()).expect("test step");
        assert_eq!(to_raft(&w.applied()).expect("test step"), (Some(blank), m));
        assert_eq!(w.applied_at_open, Some(blank.into()));
        w.shutdown().await.expect("test step");
    }
}
