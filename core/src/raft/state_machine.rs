//! openraft's state machine over the SQLite writer, plus snapshot files.
//!
//! A snapshot is a standalone SQLite database file (`snapshots/snap-INDEX-TERM.db`) with its
//! openraft metadata beside it (`.meta.json`). It is built from a read transaction pinned by the
//! writer between two applies, so building never blocks the writer; it is sent to followers in
//! chunks by openraft and installed with SQLite's backup API into the live database.
//!
//! The writer knows no openraft: this adapter converts log ids to [`LogPos`] and back, entries
//! to [`Op`]s, memberships to opaque JSON blobs (the `_hiqlite_meta` layout of earlier
//! versions) and back, and the writer's errors to openraft's `StorageError`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{CommittedLeaderId, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use tokio::io::AsyncSeekExt;

use super::log_store::{fsync_dir, write_atomic};
use super::{io_err, Entry, LogId, Response, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::error::{Error, Result};
use crate::sqlite::writer::{copy_pinned, Applied, LogPos, MembershipBlob, Op, Writer};

/// Snapshot files of one node.
pub(crate) struct SnapshotStore {
    dir: PathBuf,
    current: Mutex<Option<(SnapshotMeta, PathBuf)>>,
    seq: AtomicU64,
    /// Snapshots received from a leader and installed.
    pub(crate) installed: AtomicU64,
    /// Snapshots built locally.
    pub(crate) built: AtomicU64,
    publishing: Mutex<()>,
}

fn snap_paths(dir: &Path, meta: &SnapshotMeta) -> (PathBuf, PathBuf) {
    let (idx, term) = meta.last_log_id.map_or((0, 0), |l| (l.index, l.leader_id.term));
    let base = format!("snap-{idx:020}-{term:020}");
    (dir.join(format!("{base}.db")), dir.join(format!("{base}.meta.json")))
}

impl SnapshotStore {
    /// Open the snapshot directory and find the newest complete snapshot.
    pub(crate) fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut best: Option<(SnapshotMeta, PathBuf)> = None;
        for de in std::fs::read_dir(&dir)? {
            let p = de?.path();
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with("incoming-") || name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&p);
                continue;
            }
            if !name.ends_with(".meta.json") {
                continue;
            }
            let meta: SnapshotMeta =
                match std::fs::read(&p).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                    Some(m) => m,
                    None => {
                        tracing::warn!("ignoring unreadable snapshot metadata {}", p.display());
                        continue;
                    }
                };
            let (db, _) = snap_paths(&dir, &meta);
            if !db.exists() {
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| b.last_log_id < meta.last_log_id) {
                best = Some((meta, db));
            }
        }
        Ok(SnapshotStore {
            dir,
            current: Mutex::new(best),
            seq: AtomicU64::new(0),
            installed: AtomicU64::new(0),
            built: AtomicU64::new(0),
            publishing: Mutex::new(()),
        })
    }

    /// The newest snapshot's metadata and database file.
    pub(crate) fn current(&self) -> Option<(SnapshotMeta, PathBuf)> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn tmp_path(&self, prefix: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{prefix}-{}-{n}.tmp", std::process::id()))
    }

    /// Make `db_tmp` the current snapshot under `meta`, durably, and drop strictly older ones.
    /// Builds and installs may overlap; one lock orders them.
    fn publish(&self, meta: &SnapshotMeta, db_tmp: &Path) -> Result<PathBuf> {
        let _order = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        let (db, meta_path) = snap_paths(&self.dir, meta);
        std::fs::rename(db_tmp, &db)?;
        let name = meta_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        write_atomic(&self.dir, &name, &serde_json::to_vec(meta).map_err(Error::storage)?)?;
        let newest = {
            let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if cur.as_ref().is_none_or(|(c, _)| c.last_log_id <= meta.last_log_id) {
                *cur = Some((meta.clone(), db.clone()));
            }
            cur.as_ref().map(|(m, _)| m.last_log_id)
        };
        // Older snapshots are no longer needed once a newer one is durable.
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for de in rd.flatten() {
                let p = de.path();
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if !name.starts_with("snap-") || !name.ends_with(".meta.json") {
                    continue;
                }
                let Some(m) =
                    std::fs::read(&p).ok().and_then(|b| serde_json::from_slice::<SnapshotMeta>(&b).ok())
                else {
                    continue;
                };
                if newest.is_some_and(|n| m.last_log_id < n) {
                    let (old_db, old_meta) = snap_paths(&self.dir, &m);
                    let _ = std::fs::remove_file(old_meta);
                    let _ = std::fs::remove_file(old_db);
                }
            }
        }
        fsync_dir(&self.dir)?;
        Ok(db)
    }
}

/// The Raft state machine: SQLite through the writer thread, snapshots as files.
#[derive(Clone)]
pub struct StateMachine {
    pub(crate) writer: Arc<Writer>,
    pub(crate) snapshots: Arc<SnapshotStore>,
    /// This node's id, for [`crate::breakdown`] events.
    me: u64,
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
fn to_op(e: Entry) -> Result<(LogPos, Op)> {
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
    pub(crate) fn new(writer: Arc<Writer>, snapshots: Arc<SnapshotStore>, me: u64) -> Self {
        StateMachine { writer, snapshots, me }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let started = std::time::Instant::now();
        let pinned = self.writer.pin().await.map_err(snap_err)?;
        let (last_applied, membership) = to_raft(&pinned.applied).map_err(snap_err)?;
        let tmp = self.snapshots.tmp_path("build");
        let tmp2 = tmp.clone();
        tokio::task::spawn_blocking(move || copy_pinned(&pinned, &tmp2))
            .await
            .map_err(snap_err)?
            .map_err(snap_err)?;
        let n = self.snapshots.seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{n}", l.leader_id.term, l.index),
            None => format!("0-0-{n}"),
        };
        let meta = SnapshotMeta { last_log_id: last_applied, last_membership: membership, snapshot_id };
        // Opened before publishing: the handle stays valid even if a newer snapshot replaces
        // this one before openraft reads it.
        let file = tokio::fs::File::open(&tmp).await.map_err(snap_err)?;
        let snapshots = self.snapshots.clone();
        let meta2 = meta.clone();
        tokio::task::spawn_blocking(move || snapshots.publish(&meta2, &tmp))
            .await
            .map_err(snap_err)?
            .map_err(snap_err)?;
        self.snapshots.built.fetch_add(1, Ordering::Relaxed);
        tracing::info!(last = ?meta.last_log_id, took_ms = started.elapsed().as_millis() as u64, "snapshot built");
        Ok(Snapshot { meta, snapshot: Box::new(file) })
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.snapshots.tmp_path("incoming");
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(snap_err)?;
        // The file is reached through the handle only; its name can go right away.
        let _ = tokio::fs::remove_file(&path).await;
        Ok(Box::new(f))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        let tmp = self.snapshots.tmp_path("install");
        {
            snapshot.seek(std::io::SeekFrom::Start(0)).await.map_err(snap_err)?;
            let mut out = tokio::fs::File::create(&tmp).await.map_err(snap_err)?;
            tokio::io::copy(&mut *snapshot, &mut out).await.map_err(snap_err)?;
            out.sync_all().await.map_err(snap_err)?;
        }
        let snapshots = self.snapshots.clone();
        let meta2 = meta.clone();
        let db = tokio::task::spawn_blocking(move || snapshots.publish(&meta2, &tmp))
            .await
            .map_err(snap_err)?
            .map_err(snap_err)?;
        let applied = (
            meta.last_log_id.map(LogPos::from),
            Some(encode_membership(&meta.last_membership).map_err(sm_err)?),
        );
        self.writer.restore(db, applied).await.map_err(sm_err)?;
        self.snapshots.installed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(last = ?meta.last_log_id, took_ms = started.elapsed().as_millis() as u64, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        match self.snapshots.current() {
            None => Ok(None),
            Some((meta, path)) => {
                let file = tokio::fs::File::open(&path).await.map_err(snap_err)?;
                Ok(Some(Snapshot { meta, snapshot: Box::new(file) }))
            }
        }
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
