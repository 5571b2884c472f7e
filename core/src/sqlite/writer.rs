//! The state machine's writer: one SQLite connection behind a lock, used on the thread of
//! whoever calls (see [`crate::blocking`]: a writer thread only added two wake-ups to each apply).
//! It applies committed log entries (one SQLite transaction per run of entries, one savepoint per
//! entry; the loop itself is in `apply.rs`), takes snapshots in place (`checkpoint.rs`: the main
//! file is the snapshot), swaps in received snapshots, and pins read transactions for backups.
//! It speaks plain data: the consensus layer converts its entries, log ids and memberships to
//! [`LogPos`], [`Op`] and opaque blobs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub(crate) use super::apply::Op;
use super::authorize::{self, WriteSeen};
use super::checkpoint::Pin;
pub(crate) use super::checkpoint::SnapshotPoint;
use super::meta::{
    append_state, attach_state, load_state, read_fk, read_meta, read_state, write_meta, StateData,
};
pub(crate) use super::meta::{Applied, LogPos, MembershipBlob};
pub(crate) use super::session::Recorded;
use crate::blocking::Expect;
use crate::command::Response;
use crate::error::{Error, Result};
use crate::value::{ExecResult, Statement};

/// A read-only connection holding an open read transaction at exactly `applied`.
pub(crate) struct Pinned {
    pub conn: Connection,
    pub applied: Applied,
    /// hiqlite's own state at the same point (it travels after the database's pages).
    pub state: StateData,
}

/// The cluster's foreign-key setting as the writer last committed it: [`FK_UNSET`] (never set:
/// enforcement off), [`FK_OFF`] or [`FK_ON`].
pub(crate) type FkSetting = Arc<AtomicU8>;
pub(crate) const FK_UNSET: u8 = 0;
pub(crate) const FK_OFF: u8 = 1;
pub(crate) const FK_ON: u8 = 2;

/// Handle to the writer.
pub(crate) struct Writer {
    /// None once shut down.
    state: Mutex<Option<State>>,
    applied: Arc<Mutex<Applied>>,
    /// Log entries applied since the database was opened.
    pub(crate) entries_applied: Arc<AtomicU64>,
    /// The applied log position found in the database when it was opened.
    pub(crate) applied_at_open: Option<LogPos>,
    /// Odd while a commit is on its way to being reported applied, even otherwise (a seqlock:
    /// readers that see the same even value before and after read one applied state).
    pub(crate) apply_seq: Arc<AtomicU64>,
    /// The cluster's foreign-key setting (see [`FkSetting`]).
    pub(crate) foreign_keys: FkSetting,
    /// Frames in the main database's WAL after the last commit (SQLite's WAL hook).
    pub(crate) wal_frames: Arc<AtomicU64>,
    /// Frames of the current WAL already in the main file (0 again when the WAL restarts).
    pub(crate) wal_copied: Arc<AtomicU64>,
    /// Bumped when a received snapshot replaces the database file: read connections opened
    /// before are on the old file.
    pub(crate) generation: Arc<AtomicU64>,
    /// The snapshot the main file was when the writer opened it.
    pub(crate) opened_point: Option<SnapshotPoint>,
    /// Every key/value entry as of the last applied entry (for local reads).
    pub(crate) kv_mirror: Arc<super::coord::KvMirror>,
    /// Bumped when a run that touched locks commits (or a snapshot is installed): lock waiters
    /// look at the applied state again.
    pub(crate) lock_epoch: tokio::sync::watch::Sender<u64>,
    /// Committed notifications, in log order, for this node's listeners (bounded: a listener
    /// that falls behind reads the rest from the state file).
    pub(crate) notes: tokio::sync::broadcast::Sender<Arc<super::notify::Note>>,
    /// Committed row changes, in log order, for this node's change streams (bounded: a stream
    /// that falls behind reads the rest from the state file).
    pub(crate) change_feed: tokio::sync::broadcast::Sender<super::changes::Feed>,
    /// The tables each committed run changed (what the query cache invalidates), for live
    /// queries; tracked while someone subscribes even when the cache is off.
    pub(crate) table_feed: tokio::sync::broadcast::Sender<Arc<TablesChanged>>,
    /// The database file.
    db: PathBuf,
}

/// The tables a committed run changed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TablesChanged {
    /// Lower-case names.
    pub tables: Vec<String>,
    /// Anything may have changed (schema changes, an install).
    pub all: bool,
}

/// The writer's state (the apply loop in `apply.rs` works on it too).
pub(super) struct State {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) applied: Applied,
    pub(super) shared: Arc<Mutex<Applied>>,
    pub(super) entries_applied: Arc<AtomicU64>,
    /// True while user SQL runs: the authorizer then refuses transaction control and ATTACH.
    pub(super) user_mode: Arc<AtomicBool>,
    /// True while an interactive transaction's statements run (savepoints allowed).
    pub(super) session_mode: Arc<AtomicBool>,
    /// The interactive transaction running speculatively on this connection, if any.
    pub(super) session: Option<super::session::Session>,
    pub(super) denied: Arc<Mutex<Option<&'static str>>>,
    pub(super) seen: Arc<Mutex<WriteSeen>>,
    /// Tables each SQL text writes (and whether it is DDL), learned when it was first prepared:
    /// later runs reuse the cached statement and the authorizer does not see them again.
    pub(super) learned: HashMap<String, (Vec<String>, bool)>,
    /// Tables changed by the current run of entries (for the query cache).
    pub(super) changed: HashSet<String>,
    pub(super) changed_all: bool,
    pub(super) cache: Arc<crate::cache::QueryCache>,
    pub(super) apply_seq: Arc<AtomicU64>,
    pub(super) foreign_keys: FkSetting,
    /// rqlite's connection counters as its single long-lived connection would have them
    /// (`last_insert_rowid()`, `changes()`); SQL cannot observe these (the connection is reset
    /// before every command), they are only reported on the rqlite API.
    pub(super) rq_counters: std::cell::Cell<(i64, u64)>,
    /// Whether an INSERT/UPDATE/DELETE completed since the last reset (then `changes()` is the
    /// connection's own value).
    pub(super) dml_since_reset: std::cell::Cell<bool>,
    /// The open transaction's clock and random state between calls (see [`super::det::Saved`]).
    pub(super) det: super::det::Saved,
    /// Key/value changes of the run being applied, for the mirror once it commits.
    pub(super) kv_pending: Vec<super::coord::KvChange>,
    /// See [`Writer::kv_mirror`].
    pub(super) kv_mirror: Arc<super::coord::KvMirror>,
    /// Whether the run being applied touched a lock (waiters are told once it commits).
    pub(super) locks_changed: bool,
    /// Notifications of the run being applied, broadcast once it commits.
    pub(super) notes_pending: Vec<Arc<super::notify::Note>>,
    /// See [`Writer::notes`].
    pub(super) notes: tokio::sync::broadcast::Sender<Arc<super::notify::Note>>,
    /// See [`Writer::lock_epoch`].
    pub(super) lock_epoch: tokio::sync::watch::Sender<u64>,
    /// The preupdate hook's buffer (change data capture).
    pub(super) capture: Arc<super::changes::Capture>,
    /// The changes of the run being applied.
    pub(super) pending_changes: super::changes::Pending,
    /// Log entries whose changes are kept for change streams (0: no capture).
    pub(super) change_retention: u64,
    /// See [`Writer::change_feed`].
    pub(super) change_feed: tokio::sync::broadcast::Sender<super::changes::Feed>,
    /// See [`Writer::table_feed`].
    pub(super) table_feed: tokio::sync::broadcast::Sender<Arc<TablesChanged>>,
    /// See [`Writer::wal_frames`].
    pub(super) wal_frames: Arc<AtomicU64>,
    /// See [`Writer::wal_copied`].
    pub(super) wal_copied: Arc<AtomicU64>,
    /// Salt of the WAL and how many of its frames the main file holds (only hiqlite checkpoints).
    pub(super) backfill: (u64, u64),
    /// See [`Writer::generation`].
    pub(super) generation: Arc<AtomicU64>,
}

/// Open the writer connection: pragmas, no checkpoints but hiqlite's own (the main file is the
/// snapshot, see `checkpoint.rs`), the WAL hook counting frames, the state file, the authorizer.
fn open_conn(
    path: &Path,
    wal_frames: &Arc<AtomicU64>,
    wal_copied: &Arc<AtomicU64>,
    capture: &Arc<super::changes::Capture>,
) -> Result<(Connection, authorize::Guard)> {
    let mut conn = super::open_writer(path)?;
    capture.install(&mut conn)?;
    super::checkpoint::no_checkpoint_on_close(&conn)?;
    // A WAL restarted after a snapshot is cut back to 4 MiB.
    conn.execute_batch("PRAGMA journal_size_limit=4194304;")?;
    let (frames, copied) = (wal_frames.clone(), wal_copied.clone());
    // Replaces SQLite's auto-checkpoint hook: the main file changes at snapshots only. The state
    // file (rebuilt from the base record after a crash) keeps checkpointing itself.
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
        if wal.name() == c"main" {
            let pages = u64::try_from(pages).unwrap_or(0);
            // Fewer frames than before: the WAL restarted, nothing of it is copied yet.
            if frames.swap(pages, Ordering::AcqRel) > pages {
                copied.store(0, Ordering::Release);
            }
        } else if pages >= 1000 {
            wal.checkpoint()?;
        }
        Ok(())
    }))?;
    attach_state(&conn, path)?;
    let guard = authorize::install(&mut conn)?;
    Ok((conn, guard))
}

impl Writer {
    /// Open the database at `path`: first make its files the state the base record describes
    /// (`base.rs`), then settle it so that the main file alone is a snapshot.
    pub(crate) fn start(path: &Path, cache: Arc<crate::cache::QueryCache>) -> Result<Arc<Writer>> {
        let base = super::base::prepare(path)?;
        let kept = base.as_ref().map_or(0, |b| b.frames);
        let initial = if super::base::sibling(path, "-wal").exists() { kept } else { 0 };
        let wal_frames = Arc::new(AtomicU64::new(initial));
        let wal_copied = Arc::new(AtomicU64::new(0));
        let capture = Arc::new(super::changes::Capture::default());
        let (conn, guard) = open_conn(path, &wal_frames, &wal_copied, &capture)?;
        match &base {
            Some(b) => load_state(&conn, &b.state)?,
            // No record yet (new, or written by an earlier version): whatever the WAL holds
            // goes into the main file before the first record is written.
            None => {
                conn.wal_checkpoint_v2(Some(rusqlite::MAIN_DB), rusqlite::wal::CheckpointMode::TRUNCATE)?;
                wal_frames.store(0, Ordering::Release);
            }
        }
        let applied = read_meta(&conn)?;
        let kv_mirror = Arc::new(super::coord::KvMirror::default());
        let lock_epoch = tokio::sync::watch::Sender::new(0u64);
        let notes = tokio::sync::broadcast::Sender::new(4096);
        let change_feed = tokio::sync::broadcast::Sender::new(1024);
        let table_feed = tokio::sync::broadcast::Sender::new(256);
        kv_mirror.load(&conn, "hiqlite_state")?;
        let foreign_keys = Arc::new(AtomicU8::new(FK_UNSET));
        sync_fk(&conn, &foreign_keys)?;
        let authorize::Guard { user_mode, session_mode, denied, seen } = guard;
        let shared = Arc::new(Mutex::new(applied.clone()));
        let entries_applied = Arc::new(AtomicU64::new(0));
        let applied_at_open = applied.0;
        let apply_seq = Arc::new(AtomicU64::new(0));
        let generation = Arc::new(AtomicU64::new(0));
        let mut state = State {
            foreign_keys: foreign_keys.clone(),
            apply_seq: apply_seq.clone(),
            seen,
            learned: HashMap::new(),
            changed: HashSet::new(),
            changed_all: false,
            cache,
            entries_applied: entries_applied.clone(),
            conn,
            path: path.to_path_buf(),
            applied,
            shared: shared.clone(),
            user_mode,
            session_mode,
            session: None,
            denied,
            rq_counters: Default::default(),
            dml_since_reset: Default::default(),
            det: Default::default(),
            kv_pending: Vec::new(),
            kv_mirror: kv_mirror.clone(),
            locks_changed: false,
            lock_epoch: lock_epoch.clone(),
            notes_pending: Vec::new(),
            notes: notes.clone(),
            capture,
            pending_changes: Default::default(),
            change_retention: 0,
            change_feed: change_feed.clone(),
            table_feed: table_feed.clone(),
            wal_frames: wal_frames.clone(),
            wal_copied: wal_copied.clone(),
            backfill: (0, 0),
            generation: generation.clone(),
        };
        // Nobody reads yet, so nothing holds a frame back.
        let opened_point = state.settle_main(rusqlite::wal::CheckpointMode::TRUNCATE)?;
        Ok(Arc::new(Writer {
            state: Mutex::new(Some(state)),
            applied: shared,
            entries_applied,
            applied_at_open,
            apply_seq,
            foreign_keys,
            wal_frames,
            wal_copied,
            generation,
            opened_point,
            kv_mirror,
            lock_epoch,
            notes,
            change_feed,
            table_feed,
            db: path.to_path_buf(),
        }))
    }

    /// Capture row changes for change streams from the next applied entry on, keeping the last
    /// `retention` changes or so (whole entries; 0: capture nothing, keep nothing).
    pub(crate) async fn capture_changes(&self, retention: u64) -> Result<()> {
        self.with(Expect::Long, |s| {
            let next = s.applied.0.map_or(1, |p| p.index + 1);
            super::changes::prepare(&s.conn, retention > 0, next)?;
            s.change_retention = retention;
            s.pending_changes.recount();
            Ok(())
        })
    }

    /// Frames of the WAL not yet in the main file: what the next snapshot copies.
    pub(crate) fn uncopied_frames(&self) -> u64 {
        self.wal_frames.load(Ordering::Acquire).saturating_sub(self.wal_copied.load(Ordering::Acquire))
    }

    /// What the writer last committed.
    pub(crate) fn applied(&self) -> Applied {
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Run `f` on the writer's state, here (see [`crate::blocking`]).
    fn with<T>(&self, expect: Expect, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let run = |mut g: std::sync::MutexGuard<'_, Option<State>>| match g.as_mut() {
            Some(s) => {
                super::det::put(s.det);
                let r = f(s);
                s.det = super::det::take();
                r
            }
            None => Err(Error::ShutDown),
        };
        // Short work runs in place only when the writer is free: waiting for someone else's
        // long apply in place would hold this Tokio worker's other tasks up as long.
        if expect == Expect::Short {
            match self.state.try_lock() {
                Ok(g) => return run(g),
                Err(std::sync::TryLockError::Poisoned(p)) => return run(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        crate::blocking::run(Expect::Long, || run(self.state.lock().unwrap_or_else(|p| p.into_inner())))
    }

    /// Apply a run of committed entries, in order, as one SQLite transaction. Fails with
    /// [`Error::ShutDown`] when the writer is shut down; any other error means this machine
    /// could not apply the run (nothing of it was committed) and must stop.
    pub(crate) async fn apply(&self, entries: Vec<(LogPos, Op)>) -> Result<Vec<Response>> {
        self.with(apply_expect(&entries), |s| {
            s.suspend_session();
            let r = s.apply(&entries);
            s.resume_session();
            r
        })
    }

    pub(crate) async fn pin(&self) -> Result<Pinned> {
        self.with(Expect::Long, |s| {
            s.suspend_session();
            let r = s.pin();
            s.resume_session();
            r
        })
    }

    /// Step 1 of a snapshot (see `checkpoint.rs`): pin the WAL's last frame between two applies.
    pub(crate) async fn pin_frames(&self) -> Result<Option<Pin>> {
        // The WAL is written without flushes (the log is the durable record), so at a snapshot
        // it holds up to the change budget in unflushed bytes. Flushed here first, the flush
        // under the writer's lock covers only what was applied meanwhile: done under the lock
        // alone, a 16 MiB WAL held every apply back for tens of milliseconds.
        crate::blocking::run(Expect::Long, || super::checkpoint::presync_wal(&self.db))?;
        self.with(Expect::Long, |s| {
            s.suspend_session();
            let r = s.pin_frames();
            s.resume_session();
            r
        })
    }

    /// Record what step 1 copied (frames of the WAL with `salt`).
    pub(crate) async fn note_backfill(&self, salt: u64, frames: u64) -> Result<()> {
        self.with(Expect::Short, |s| {
            s.note_backfill(salt, frames);
            Ok(())
        })
    }

    /// Step 2 of a snapshot: between two applies, copy what is left; `None` when a reader still
    /// holds frames back.
    pub(crate) async fn settle(&self) -> Result<Option<SnapshotPoint>> {
        self.with(Expect::Long, |s| {
            s.suspend_session();
            let r = s.settle_main(rusqlite::wal::CheckpointMode::PASSIVE);
            s.resume_session();
            r
        })
    }

    /// Make the received snapshot database `incoming` (pages only, synced, beside the database)
    /// the database, holding everything up to `applied` with hiqlite's `state` (`None`: inside
    /// the file, as earlier versions kept it).
    pub(crate) async fn install(
        &self,
        incoming: PathBuf,
        applied: Applied,
        state: Option<StateData>,
        id: String,
    ) -> Result<SnapshotPoint> {
        self.with(Expect::Long, |s| {
            s.abort_session();
            s.install(&incoming, applied, state, id)
        })
    }

    /// Begin an interactive transaction whose `'now'` and random functions answer from `ts_ms`
    /// and `seed`. One at a time (the node serializes them).
    pub(crate) async fn tx_begin(&self, ts_ms: i64, seed: u64) -> Result<()> {
        self.with(Expect::Short, |s| s.tx_begin(ts_ms, seed))
    }

    /// Run a statement in the open interactive transaction (it sees the transaction's writes).
    pub(crate) async fn tx_exec(&self, stmt: Statement) -> Result<ExecResult> {
        self.with(Expect::Long, |s| s.tx_exec(stmt))
    }

    /// Whether the open interactive transaction may commit now (no deferred foreign-key
    /// violation left); it stays open either way.
    pub(crate) async fn tx_check_commit(&self) -> Result<()> {
        self.with(Expect::Short, |s| s.tx_check_commit())
    }

    /// End the interactive transaction: its speculative work is rolled back and its statements
    /// come back, to be committed through the log (or dropped for a rollback).
    pub(crate) async fn tx_end(&self) -> Result<Recorded> {
        self.with(Expect::Long, |s| s.tx_end())
    }

    /// Persist `last_applied` + membership and close the database. Idempotent.
    pub(crate) async fn shutdown(&self) -> Result<()> {
        crate::blocking::run(Expect::Long, || {
            let taken = self.state.lock().unwrap_or_else(|p| p.into_inner()).take();
            match taken {
                Some(s) => s.shutdown(),
                None => Ok(()),
            }
        })
    }
}

/// Small runs of entries are applied in place; big ones, or ones that may VACUUM, first hand the
/// Tokio worker's other tasks to another thread.
fn apply_expect(entries: &[(LogPos, Op)]) -> Expect {
    let mut stmts = 0usize;
    for (_, op) in entries {
        if let Op::Command(c) = op {
            if crate::sqlkind::runs_alone(c) {
                return Expect::Long;
            }
            stmts += c.statement_count();
        }
    }
    if stmts > 2048 {
        Expect::Long
    } else {
        Expect::Short
    }
}

impl State {
    /// Leave the main file a snapshot at the last applied position (the next start then
    /// replays nothing), or at least a base record that says what the files hold.
    fn shutdown(mut self) -> Result<()> {
        self.abort_session();
        let r = self.settle_main(rusqlite::wal::CheckpointMode::TRUNCATE).map(|_| ());
        if let Err(e) = &r {
            tracing::error!("could not settle the database at shutdown: {e}");
        }
        drop(self.conn);
        r
    }

    fn pin(&mut self) -> Result<Pinned> {
        write_meta(&self.conn, &self.applied)?;
        let state = read_state(&self.conn)?;
        let conn = super::open_reader(&self.path)?;
        // Opening a read transaction fixes the WAL snapshot this connection sees until it ends;
        // the writer goes on while the copy is made from it.
        conn.execute_batch("BEGIN")?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
        Ok(Pinned { conn, applied: self.applied.clone(), state })
    }

    fn install(
        &mut self,
        incoming: &Path,
        applied: Applied,
        state: Option<StateData>,
        id: String,
    ) -> Result<SnapshotPoint> {
        use super::base::{self, Base};
        let name = incoming
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Storage("snapshot file without a name".into()))?;
        // From here a crash finishes the install at the next start (`base::prepare`).
        base::write(
            &self.path,
            &Base {
                state: state.clone().unwrap_or_default(),
                snapshot_id: id.clone(),
                install: Some(name),
                ..Base::default()
            },
        )?;
        super::checkpoint::phase(&self.path, "install-recorded");
        drop(std::mem::replace(&mut self.conn, Connection::open_in_memory()?));
        std::fs::rename(incoming, &self.path)?;
        super::checkpoint::phase(&self.path, "install-renamed");
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(base::sibling(&self.path, suffix));
        }
        let state_db = super::meta::state_path(&self.path);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(base::sibling(&state_db, suffix));
        }
        crate::fsx::fsync_dir(self.path.parent().unwrap_or_else(|| Path::new(".")))?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.wal_frames.store(0, Ordering::Release);
        self.wal_copied.store(0, Ordering::Release);
        self.backfill = (0, 0);
        let (conn, guard) = open_conn(&self.path, &self.wal_frames, &self.wal_copied, &self.capture)?;
        self.conn = conn;
        let authorize::Guard { user_mode, session_mode, denied, seen } = guard;
        (self.user_mode, self.session_mode, self.denied, self.seen) = (user_mode, session_mode, denied, seen);
        // A snapshot of an earlier version carries its state inside (migrated when attached).
        if let Some(state) = &state {
            load_state(&self.conn, state)?;
        }
        self.kv_mirror.load(&self.conn, "hiqlite_state")?;
        self.lock_epoch.send_modify(|e| *e += 1);
        super::changes::prepare(&self.conn, self.change_retention > 0, applied.0.map_or(1, |p| p.index + 1))?;
        self.pending_changes.recount();
        // No receiver is not an error: nobody follows changes on this node.
        let _ = self.change_feed.send(super::changes::Feed::Reloaded);
        let _ = self.table_feed.send(Arc::new(TablesChanged { tables: Vec::new(), all: true }));
        sync_fk(&self.conn, &self.foreign_keys)?;
        self.learned.clear();
        self.rq_counters.set((0, 0));
        self.dml_since_reset.set(false);
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
        self.applied = applied;
        let r = write_meta(&self.conn, &self.applied);
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = self.applied.clone();
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        r?;
        let point = SnapshotPoint {
            applied: self.applied.clone(),
            state: read_state(&self.conn)?,
            id,
            db_len: std::fs::metadata(&self.path)?.len(),
        };
        base::write(
            &self.path,
            &Base { state: point.state.clone(), snapshot_id: point.id.clone(), ..Base::default() },
        )?;
        Ok(point)
    }
}

/// Copy every page in one step (one step keeps the source's read transaction, so the copy is
/// one consistent state); anything but `Done` is an error, never a silent partial copy.
fn backup_all(b: &rusqlite::backup::Backup<'_, '_>) -> Result<()> {
    match b.step(-1)? {
        rusqlite::backup::StepResult::Done => Ok(()),
        other => Err(Error::Storage(format!("database copy did not complete: {other:?}"))),
    }
}

/// Copy the pinned read snapshot into a standalone database file at `dest`.
pub(crate) fn copy_pinned(pinned: &Pinned, dest: &Path) -> Result<()> {
    let mut dst = Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(&pinned.conn, &mut dst)?;
        backup_all(&backup)?;
    }
    // A snapshot travels as one file: make sure nothing is left in a WAL beside it.
    dst.execute_batch("PRAGMA journal_mode=DELETE;")?;
    drop(dst);
    append_state(dest, &pinned.state)
}

/// Make the connection enforce the recorded foreign-key setting (outside any transaction) and
/// publish it.
pub(super) fn sync_fk(conn: &Connection, shared: &FkSetting) -> Result<()> {
    let fk = read_fk(conn)?;
    conn.execute_batch(if fk == Some(true) { "PRAGMA foreign_keys=ON" } else { "PRAGMA foreign_keys=OFF" })?;
    shared.store(
        match fk {
            None => FK_UNSET,
            Some(false) => FK_OFF,
            Some(true) => FK_ON,
        },
        Ordering::Release,
    );
    Ok(())
}
#[cfg(test)]
impl Writer {
    /// Every statement the writer's connection holds prepared that SQLite had to re-prepare
    /// more than once, with how often (a plan that depends on a bound value is re-prepared at
    /// every bind, which costs more than running it).
    pub(crate) fn reprepared(&self) -> Result<Vec<(String, i32)>> {
        self.with(Expect::Long, |s| {
            let mut out = Vec::new();
            // SAFETY: the connection is open and used on this thread only; the statements
            // visited belong to it and are not finalized while we look.
            unsafe {
                let db = s.conn.handle();
                let mut st = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
                while !st.is_null() {
                    let n =
                        rusqlite::ffi::sqlite3_stmt_status(st, rusqlite::ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
                    if n > 1 {
                        let sql = std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_sql(st));
                        out.push((sql.to_string_lossy().into_owned(), n));
                    }
                    st = rusqlite::ffi::sqlite3_next_stmt(db, st);
                }
            }
            Ok(out)
        })
    }
}
