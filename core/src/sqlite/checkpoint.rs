//! Snapshots in place: the main database file is the snapshot, and a snapshot is a checkpoint.
//!
//! Between snapshots every change stays in the WAL, so a snapshot costs what changed since the
//! last one, not the database's size. See `base.rs` for what makes each step safe to interrupt
//! with `kill -9`.
//! 1. **Copy while writes go on** ([`Pin`], [`copy_frames`]): the writer, between two applies,
//!    pins a read transaction at the WAL's last frame F (position X), makes the frames up to F
//!    durable and records them in the base record (every record is written under the writer's
//!    lock); then a separate connection checkpoints up to the pin (never past it) while the
//!    writer keeps applying. When every frame up to F is copied *and no checkpoint that copied
//!    saw a frame past F*, the main file alone is the state at X: that is the snapshot, and the
//!    writer only paused to pin. SQLite's checkpoint copies each page's newest frame only: a
//!    page that changed again after F is skipped (its frames up to F with it), so a copy that
//!    ran while newer frames existed leaves such pages at an older version. The main file plus
//!    the WAL stays right (readers and the crash record see those frames), but the main file
//!    alone is no snapshot then, and step 2 finishes the job; the copy still did the bulk.
//! 2. **Settle** ([`State::settle_main`]): the writer, between two applies, copies every frame
//!    left, so the next write restarts the WAL from its start. Needed only when writes never
//!    paused long enough for the WAL to restart on its own and it outgrew its budget, at start-up
//!    and at a clean stop, or when a reader kept step 1 from finishing.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, MAIN_DB};

use super::base::{self, Base};
use super::meta::{read_state, write_meta, Applied, StateData};
use super::writer::State;
use crate::error::{Error, Result};

/// The main file is a snapshot: the state at `applied`.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotPoint {
    /// Applied position and membership the main file holds.
    pub applied: Applied,
    /// hiqlite's state at that position (travels after the pages).
    pub state: StateData,
    /// The snapshot's name.
    pub id: String,
    /// Bytes of the database in the main file.
    pub db_len: u64,
}

/// Step 1's starting point: a read transaction that keeps any checkpoint from copying frames
/// past `base.frames`, taken at `applied`.
pub(crate) struct Pin {
    conn: Connection,
    base: Base,
    applied: Applied,
}

/// What step 1 did: the frames of the WAL with `salt` the main file now holds, and the snapshot
/// when that is every frame up to the pin.
pub(crate) struct Copied {
    pub salt: u64,
    pub frames: u64,
    pub point: Option<SnapshotPoint>,
}

/// How many bytes of change (WAL, or log since the last snapshot) start a snapshot: `limit`, but
/// no more than a sixteenth of the database (at least 16 MiB), so that what the WAL and the log
/// hold beside a big database stays small next to it. The floor: with 4 MiB, loading a fresh
/// database snapshotted every few hundred milliseconds, and each snapshot's WAL and database
/// flushes stalled the log's (3-node bulk inserts 325–346k → 374–383k rows/s, p99 9–11 → 7 ms).
pub(crate) fn change_budget(limit: u64, db_len: u64) -> u64 {
    limit.min((db_len / 16).max(16 << 20))
}

/// Tests stop the world at each named step of a snapshot or install to take a crash image of
/// the files (`crash_tests.rs`); a no-op otherwise.
#[cfg(test)]
#[allow(clippy::type_complexity)]
pub(crate) static PHASE_HOOK: std::sync::Mutex<Vec<(std::path::PathBuf, Box<dyn Fn(&'static str) + Send>)>> =
    std::sync::Mutex::new(Vec::new());

#[inline]
pub(crate) fn phase(db: &Path, name: &'static str) {
    #[cfg(test)]
    for (path, hook) in PHASE_HOOK.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if path == db {
            hook(name);
        }
    }
    let _ = (db, name);
}

/// A fresh snapshot name.
fn snapshot_id(applied: &Applied) -> String {
    let (term, index) = applied.0.map_or((0, 0), |p| (p.term, p.index));
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{term}-{index}-{nanos:x}")
}

/// Flush the WAL if there is one (ahead of [`sync_wal`], outside the writer's lock).
pub(super) fn presync_wal(db: &Path) -> Result<()> {
    match std::fs::File::open(base::sibling(db, "-wal")) {
        Ok(f) => {
            f.sync_data().map_err(|e| Error::Storage(format!("syncing the WAL of {}: {e}", db.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Storage(format!("opening the WAL of {}: {e}", db.display()))),
    }
}

fn sync_wal(db: &Path) -> Result<()> {
    let wal = base::sibling(db, "-wal");
    std::fs::File::open(&wal)
        .and_then(|f| f.sync_data())
        .map_err(|e| Error::Storage(format!("syncing {}: {e}", wal.display())))
}

/// Copy the WAL frames up to the pin into the main file while the writer goes on.
pub(crate) fn copy_frames(db: &Path, pin: Pin) -> Result<Copied> {
    let Pin { conn: pinned, base: b, applied } = pin;
    let ck =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    no_checkpoint_on_close(&ck)?;
    // NORMAL: the checkpoint syncs the WAL before it copies and the main file after it, and only
    // then counts the frames as copied (the writer restarts the WAL only after that).
    ck.execute_batch("PRAGMA synchronous=NORMAL;")?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut done = None;
    // Whether every page changed up to F has its version at F in the main file (see above).
    let mut exact = true;
    loop {
        let (log, n) = ck.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE)?;
        let n = u64::try_from(n).unwrap_or(0);
        // `log` is the WAL's end as this checkpoint saw it. Past F, pages written again after F
        // were skipped, unless the checkpoint copied nothing at all.
        if u64::try_from(log).unwrap_or(0) > b.frames && done != Some(n) {
            exact = false;
        }
        done = Some(done.map_or(n, |d: u64| d.max(n)));
        // An older reader holds frames back; the settle step copies what is left.
        if n >= b.frames || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let done = done.unwrap_or(0);
    phase(db, "copied");
    // The pinned reader still holds the state at X: the database's size then is in its header.
    let db_len = db_len_at(&pinned)?;
    drop(pinned);
    let file_len =
        std::fs::metadata(db).map_err(|e| Error::Storage(format!("reading {}: {e}", db.display())))?.len();
    if exact && done >= b.frames && file_len < db_len {
        // Cannot happen if the reasoning above holds; a snapshot shorter than its file would
        // stop every transfer of it, so it is not offered.
        tracing::warn!(
            db_len,
            file_len,
            "a checkpoint to the pin left the main file short; settling instead"
        );
        exact = false;
    }
    let point = (exact && done >= b.frames).then(|| SnapshotPoint {
        id: snapshot_id(&applied),
        applied,
        state: b.state,
        db_len,
    });
    Ok(Copied { salt: b.salt, frames: done, point })
}

/// Size of the database as `conn`'s transaction sees it (the main file may be longer until a
/// complete checkpoint truncates it).
fn db_len_at(conn: &Connection) -> Result<u64> {
    let (pages, size): (i64, i64) =
        conn.query_row("SELECT * FROM pragma_page_count(), pragma_page_size()", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(u64::try_from(pages * size).unwrap_or(0))
}

/// Keep a connection from checkpointing when it closes: only snapshots write the main file.
pub(crate) fn no_checkpoint_on_close(conn: &Connection) -> Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    Ok(())
}

impl State {
    /// Frames of the WAL already copied into the main file.
    fn backfilled(&self, salt: u64) -> u64 {
        if self.backfill.0 == salt {
            self.backfill.1
        } else {
            0
        }
    }

    /// Record that the main file holds `frames` frames of the WAL with `salt`.
    pub(super) fn note_backfill(&mut self, salt: u64, frames: u64) {
        if self.backfill.0 != salt || self.backfill.1 < frames {
            self.backfill = (salt, frames);
        }
        if base::wal_salt(&self.path).ok() == Some(salt) {
            self.wal_copied.store(frames, Ordering::Release);
        }
    }

    fn state_now(&mut self) -> Result<StateData> {
        write_meta(&self.conn, &self.applied)?;
        read_state(&self.conn)
    }

    /// Step 1's pin, or `None` when the WAL holds nothing the main file lacks.
    pub(super) fn pin_frames(&mut self) -> Result<Option<Pin>> {
        let frames = self.wal_frames.load(Ordering::Acquire);
        if frames == 0 {
            return Ok(None);
        }
        let salt = base::wal_salt(&self.path)?;
        // With every frame copied a reader ignores the WAL, and would not hold a checkpoint back.
        if frames <= self.backfilled(salt) {
            return Ok(None);
        }
        let state = self.state_now()?;
        let conn = super::open_reader(&self.path)?;
        conn.execute_batch("BEGIN")?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
        // Recorded here, under the writer's lock like every base record, so records are written
        // one at a time and in the order of the states they name (a clean stop may settle while
        // a build copies).
        let b = Base { frames, salt, state, ..Base::default() };
        phase(&self.path, "pinned");
        sync_wal(&self.path)?;
        base::write(&self.path, &b)?;
        phase(&self.path, "recorded");
        Ok(Some(Pin { conn, base: b, applied: self.applied.clone() }))
    }

    /// Step 2: make the main file alone the state at the applied position. `None` when a reader
    /// still holds frames back (nothing is lost; try again after letting writes through).
    pub(super) fn settle_main(&mut self, mode: CheckpointMode) -> Result<Option<SnapshotPoint>> {
        let state = self.state_now()?;
        let frames = self.wal_frames.load(Ordering::Acquire);
        let salt = if frames > 0 { base::wal_salt(&self.path)? } else { 0 };
        if frames > self.backfilled(salt) {
            sync_wal(&self.path)?;
            base::write(&self.path, &Base { frames, salt, state: state.clone(), ..Base::default() })?;
            phase(&self.path, "settle-recorded");
            let complete = match self.conn.wal_checkpoint_v2(Some(MAIN_DB), mode) {
                Ok((_, n)) if matches!(mode, CheckpointMode::PASSIVE) => {
                    let n = u64::try_from(n)
                        .map_err(|_| Error::Storage("the database is not in WAL mode".into()))?;
                    self.note_backfill(salt, n);
                    n >= frames
                }
                // The waiting modes answer OK only once every frame is copied (TRUNCATE then
                // empties the WAL, and counts nothing).
                Ok(_) => {
                    self.wal_frames.store(0, Ordering::Release);
                    self.wal_copied.store(0, Ordering::Release);
                    self.backfill = (0, 0);
                    true
                }
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => {
                    false
                }
                Err(e) => return Err(e.into()),
            };
            if !complete {
                return Ok(None);
            }
            std::fs::File::open(&self.path)
                .and_then(|f| f.sync_data())
                .map_err(|e| Error::Storage(format!("syncing {}: {e}", self.path.display())))?;
            phase(&self.path, "settle-copied");
        }
        let point = SnapshotPoint {
            id: snapshot_id(&self.applied),
            applied: self.applied.clone(),
            // After a complete checkpoint the file is exactly the database (SQLite truncates it).
            db_len: std::fs::metadata(&self.path)
                .map_err(|e| Error::Storage(format!("reading {}: {e}", self.path.display())))?
                .len(),
            state,
        };
        base::write(
            &self.path,
            &Base { state: point.state.clone(), snapshot_id: point.id.clone(), ..Base::default() },
        )?;
        phase(&self.path, "settled");
        Ok(Some(point))
    }
}
