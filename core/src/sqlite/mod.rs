//! SQLite access: one writer connection (the state machine), a pool of read-only connections for
//! local reads, snapshots in place, and the determinism layer for replicated writes.

mod alone;
mod apply;
mod authorize;
pub(crate) mod base;
mod bind;
pub(crate) mod changes;
pub(crate) mod checkpoint;
#[cfg(test)]
mod clock_tests;
pub(crate) mod coord;
#[cfg(test)]
mod crash_tests;
pub(crate) mod det;
pub(crate) mod dump;
mod error;
pub(crate) mod exec;
pub(crate) mod locks;
pub(crate) mod meta;
pub(crate) mod notify;
pub(crate) mod pool;
#[cfg(test)]
mod prepare_tests;
mod session;
pub(crate) mod writer;

use std::path::Path;

/// Marks the entry that gives a new cluster its foreign-key setting: applied only while the
/// cluster has none (`node/propose.rs` writes it).
pub(crate) const INITIAL_FK_MARK: &str = "hiqlite: initial cluster setting";

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;

/// Pragmas of the writer: WAL so readers never block it; synchronous=OFF because the fsync'd
/// Raft log, not SQLite, is the durable record (a crash replays the log onto the last snapshot,
/// which is the main file: see `base.rs`).
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
    checkpoint::no_checkpoint_on_close(&conn)?;
    conn.execute_batch("PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16000;")?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Functions whose result depends on more than their arguments and the database: a result that
/// used them must not be cached. (Date functions are listed because `'now'` may be an argument.)
const VOLATILE: &[&str] = &[
    "random",
    "randomblob",
    "changes",
    "last_insert_rowid",
    "total_changes",
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    "current_date",
    "current_time",
    "current_timestamp",
    "load_extension",
    "sqlite_offset",
];

/// Learn what `sql` reads (tables, through views too) and whether its result may be cached, by
/// preparing it once on a fresh read-only connection with an authorizer.
pub(crate) fn learn_query(path: &Path, sql: &str) -> Result<crate::cache::QueryInfo> {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    use std::sync::{Arc, Mutex};
    let mut conn = open_reader(path)?;
    let seen: Arc<Mutex<(Vec<String>, bool)>> = Arc::new(Mutex::new((Vec::new(), true)));
    let s2 = seen.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let mut g = s2.lock().unwrap_or_else(|p| p.into_inner());
        match ctx.action {
            AuthAction::Read { table_name, .. } => {
                if ctx.database_name == Some("temp") {
                    g.1 = false;
                }
                let t = table_name.to_ascii_lowercase();
                // SQLite's own tables and pragma table-valued functions change without a write
                // the cache could see.
                if t.starts_with("sqlite_") || t.starts_with("pragma_") {
                    g.1 = false;
                }
                if !g.0.contains(&t) {
                    g.0.push(t);
                }
            }
            AuthAction::Function { function_name } => {
                if VOLATILE.contains(&function_name.to_ascii_lowercase().as_str()) {
                    g.1 = false;
                }
            }
            AuthAction::Select | AuthAction::Recursive => {}
            // Anything else (PRAGMA, writes, ATTACH...) is not a plain cacheable read.
            _ => g.1 = false,
        }
        Authorization::Allow
    }))?;
    let readonly = conn.prepare(sql)?.readonly();
    let (tables, cacheable) = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(crate::cache::QueryInfo { cacheable: cacheable && readonly && !tables.is_empty(), tables })
}
