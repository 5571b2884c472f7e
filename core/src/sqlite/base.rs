//! The base record: what the database files hold, durably, whatever happened to the process.
//!
//! The live database file is the snapshot. Nothing but hiqlite's own checkpoints writes the main
//! file (auto-checkpointing is off and no connection checkpoints when it closes), and before a
//! checkpoint copies WAL frames into it, `hiqlite.base.json` (replaced atomically) records that
//! *the main file plus the first `frames` frames of the WAL whose header carries `salt`* is the
//! state at the applied position recorded in `state`. `frames == 0` means the main file alone.
//! A checkpoint never copies a frame past `frames` (a read transaction pinned at that frame, or
//! the writer itself, bounds it), so the record stays true while the copy runs and after a crash
//! in the middle of it. SQLite restarts a WAL (new salt) only once every frame is copied, so a
//! WAL with another salt (or none) means the main file alone is that state.
//!
//! [`prepare`] runs before the writer opens the database: it finishes an interrupted snapshot
//! install, cuts the WAL back to the recorded frames (or removes it) and removes the state file,
//! which the writer rebuilds from `state`. The Raft log then re-applies everything after the
//! recorded position: healing after a crash costs the log since the last snapshot, not a copy of
//! the database.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::meta::StateData;
use crate::error::{Error, Result};

/// File name of the base record, beside the database.
const NAME: &str = "hiqlite.base.json";
/// Size of a WAL header and of a frame header (SQLite's WAL format).
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// What the database files hold (see the module documentation).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Base {
    /// Frames of the WAL that belong to the state; 0: the main file alone.
    pub frames: u64,
    /// Salt of the WAL those frames are in (bytes 16..24 of its header).
    pub salt: u64,
    /// hiqlite's state (applied position, membership, settings, migrations) at that point.
    pub state: StateData,
    /// The snapshot's name for Raft, when the main file alone is a snapshot.
    pub snapshot_id: String,
    /// A received snapshot (a file beside the database) being moved into place.
    pub install: Option<String>,
}

/// Path of a file beside the database `db` with `suffix` added to its name.
pub(crate) fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn dir_of(db: &Path) -> &Path {
    db.parent().unwrap_or_else(|| Path::new("."))
}

/// The base record of the database at `db`, if one was written.
pub(crate) fn read(db: &Path) -> Result<Option<Base>> {
    let path = dir_of(db).join(NAME);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Storage(format!("{}: unreadable base record: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Replace the base record, durably.
pub(crate) fn write(db: &Path, base: &Base) -> Result<()> {
    let bytes = serde_json::to_vec(base).map_err(Error::storage)?;
    crate::fsx::write_atomic(dir_of(db), NAME, &bytes)
        .map_err(|e| Error::Storage(format!("writing {}: {e}", dir_of(db).join(NAME).display())))
}

/// Salt and page size from the WAL header at `wal`, if it is a WAL file.
pub(crate) fn wal_header(wal: &Path) -> Result<Option<(u64, u64)>> {
    let mut f = match std::fs::File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut h = [0u8; WAL_HEADER as usize];
    if f.read_exact(&mut h).is_err() {
        return Ok(None);
    }
    let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    if magic & !1 != 0x377f_0682 {
        return Ok(None);
    }
    let page = u64::from(u32::from_be_bytes([h[8], h[9], h[10], h[11]]));
    let salt = u64::from_be_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]);
    Ok(Some((salt, page)))
}

/// Bytes that `frames` frames take in the WAL beside `db` (its page size; 4 KiB when unknown).
pub(crate) fn wal_bytes(db: &Path, frames: u64) -> u64 {
    let page = wal_header(&sibling(db, "-wal")).ok().flatten().map_or(4096, |(_, p)| p);
    frames * (FRAME_HEADER + page)
}

/// The salt of the WAL beside `db` (0 when there is none).
pub(crate) fn wal_salt(db: &Path) -> Result<u64> {
    Ok(wal_header(&sibling(db, "-wal"))?.map_or(0, |(s, _)| s))
}

fn remove(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Make the files at `db` hold exactly the recorded state before the writer opens them (see the
/// module documentation). `None`: no record (a new database, or one of an earlier version).
pub(crate) fn prepare(db: &Path) -> Result<Option<Base>> {
    let Some(base) = read(db)? else { return Ok(None) };
    let wal = sibling(db, "-wal");
    if let Some(name) = &base.install {
        let incoming = dir_of(db).join(name);
        if incoming.exists() {
            std::fs::rename(&incoming, db)?;
            remove(&wal)?;
            crate::fsx::fsync_dir(dir_of(db))?;
            tracing::warn!("finished installing a snapshot interrupted by a crash");
        }
    }
    let keep = match (base.frames, wal_header(&wal)?) {
        (0, _) => false,
        (frames, Some((salt, page))) if salt == base.salt => {
            let want = WAL_HEADER + frames * (FRAME_HEADER + page);
            let f = std::fs::OpenOptions::new().write(true).open(&wal)?;
            if f.metadata()?.len() < want {
                return Err(Error::Storage(format!(
                    "{}: the WAL holds fewer frames than the base record says ({frames}); \
                     this replica cannot be healed: remove its data directory and let it rejoin",
                    wal.display()
                )));
            }
            f.set_len(want)?;
            f.sync_all()?;
            true
        }
        // Restarted, or emptied by a TRUNCATE checkpoint, after every frame was copied: the
        // main file alone is the state.
        (_, _) => false,
    };
    if !keep {
        remove(&wal)?;
    }
    remove(&sibling(db, "-shm"))?;
    let state = super::meta::state_path(db);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        remove(&sibling(&state, suffix))?;
    }
    Ok(Some(base))
}
