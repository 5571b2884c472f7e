//! SQLite access: one writer connection on its own thread (the state machine), a pool of
//! read-only connections for local reads, and the determinism layer for replicated writes.

pub(crate) mod det;
pub(crate) mod dump;
pub(crate) mod exec;
pub(crate) mod pool;
pub(crate) mod writer;

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;

/// Pragmas of the writer: WAL so readers never block it; synchronous=OFF because the fsync'd
/// Raft log, not SQLite, is the durable record (a crash rebuilds the database from snapshot+log).
const WRITER_PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; \
     PRAGMA cache_size=-32000; PRAGMA foreign_keys=OFF;";

pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    det::register_vfs().map_err(crate::Error::Storage)?;
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags_and_vfs(path, flags, det::VFS_NAME)?;
    conn.execute_batch(WRITER_PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(256);
    det::install_functions(&conn)?;
    Ok(conn)
}

pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch("PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16000;")?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}
