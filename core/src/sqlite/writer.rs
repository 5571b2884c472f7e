//! The state machine's writer: one SQLite connection behind a lock, used on the thread of
//! whoever calls (see [`crate::blocking`]: a writer thread only added two wake-ups to each apply).
//! It applies committed log entries (one SQLite transaction per run of entries, one savepoint per
//! entry; the loop itself is in `apply.rs`), pins consistent read snapshots for snapshot building,
//! restores received snapshots, and writes the applied position + membership into the database
//! at snapshots and clean shutdown only (`meta.rs`). It speaks plain data: the consensus layer
//! converts its entries, log ids and memberships to [`LogPos`], [`Op`] and opaque blobs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub(crate) use super::apply::Op;
use super::authorize::{self, WriteSeen};
use super::meta::{append_state, attach_state, read_fk, read_meta, read_state, write_meta, StateData};
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
}

impl Writer {
    /// Open the database at `path` (already healed by the caller).
    pub(crate) fn start(path: &Path, cache: Arc<crate::cache::QueryCache>) -> Result<Arc<Writer>> {
        let mut conn = super::open_writer(path)?;
        attach_state(&conn, path)?;
        let applied = read_meta(&conn)?;
        let foreign_keys = Arc::new(AtomicU8::new(FK_UNSET));
        sync_fk(&conn, &foreign_keys)?;
        let authorize::Guard { user_mode, session_mode, denied, seen } = authorize::install(&mut conn)?;
        let shared = Arc::new(Mutex::new(applied.clone()));
        let entries_applied = Arc::new(AtomicU64::new(0));
        let applied_at_open = applied.0;
        let apply_seq = Arc::new(AtomicU64::new(0));
        let state = State {
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
        };
        Ok(Arc::new(Writer {
            state: Mutex::new(Some(state)),
            applied: shared,
            entries_applied,
            applied_at_open,
            apply_seq,
            foreign_keys,
        }))
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

    /// Replace the database with the snapshot database at `path`, which holds everything up to
    /// `applied`, and record `applied`.
    pub(crate) async fn restore(&self, path: PathBuf, applied: Applied) -> Result<()> {
        self.with(Expect::Long, |s| {
            s.abort_session();
            s.restore(&path, applied)
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
    /// A clean stop is trusted at the next start (no rebuild), so make it durable: meta
    /// committed with a synced WAL, then checkpointed into the synced file.
    fn shutdown(mut self) -> Result<()> {
        self.abort_session();
        let r = self
            .conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA hiqlite_state.synchronous=FULL;")
            .map_err(Error::from)
            .and_then(|_| write_meta(&self.conn, &self.applied))
            .and_then(|_| {
                self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                self.conn.query_row("PRAGMA hiqlite_state.wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                std::fs::File::open(&self.path)?.sync_all()?;
                std::fs::File::open(super::meta::state_path(&self.path))?.sync_all()?;
                Ok(())
            });
        if let Err(e) = &r {
            tracing::error!("could not persist last applied log id at shutdown: {e}");
        }
        // Dropping the connection checkpoints the WAL.
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

    fn restore(&mut self, path: &Path, applied: Applied) -> Result<()> {
        let src = super::open_reader(path)?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut self.conn)?;
            backup_all(&backup)?;
        }
        self.conn.flush_prepared_statement_cache();
        // hiqlite's state comes from the file's trailer, or (a snapshot of an earlier version)
        // from its tables inside the database just copied.
        match super::meta::bundled_state(path)? {
            Some(data) => super::meta::load_state(&self.conn, &data)?,
            None => {
                super::meta::load_state(&self.conn, &StateData::default())?;
                super::meta::migrate_legacy(&self.conn)?;
            }
        }
        sync_fk(&self.conn, &self.foreign_keys)?;
        self.applied = applied;
        self.learned.clear();
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
        let r = write_meta(&self.conn, &self.applied);
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = self.applied.clone();
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        r?;
        Ok(())
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
