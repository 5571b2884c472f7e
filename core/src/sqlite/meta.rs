//! hiqlite's own state, kept out of the user's database: a second SQLite file beside it
//! (`hiqlite.state.db`) attached to the writer connection as schema [`STATE_SCHEMA`], with
//! `meta` (the last applied log position and membership, written at snapshots, backups and
//! clean shutdown; the cluster's `foreign_keys` setting, written when it changes) and
//! `migrations` (what `Client::migrate` applied). Readers never attach it, so `sqlite_master`,
//! `PRAGMA table_list` and dumps show only user objects, and every table name is the user's.
//!
//! Snapshots and backups travel as one file: the user database's pages followed by this state
//! (JSON), its length and a magic trailer ([`append_state`]). SQLite reads a database only up
//! to the size its header records, so such a file opens in any SQLite tool showing user objects
//! only. Databases written before the state moved out (`_hiqlite_meta` / `_hiqlite_migrations`
//! inside the main file) are migrated when opened or installed ([`migrate_legacy`]).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The schema name the state file is attached under on the writer connection. User SQL is
/// refused any access to it (authorizer) and cannot ATTACH, so no user name collides with it.
pub(crate) const STATE_SCHEMA: &str = "hiqlite_state";

const STATE_DDL: &str = "CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_state_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_state_migrations (\
     id INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum INTEGER NOT NULL, applied_at INTEGER NOT NULL);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, \
     expires_at INTEGER, written INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;\
     CREATE INDEX IF NOT EXISTS hiqlite_state._hiqlite_kv_expiry ON _hiqlite_kv (expires_at) WHERE expires_at IS NOT NULL;\
     CREATE INDEX IF NOT EXISTS hiqlite_state._hiqlite_kv_written ON _hiqlite_kv (ns, written);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_kv_limits (ns TEXT PRIMARY KEY, max_entries INTEGER NOT NULL);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_locks (name TEXT PRIMARY KEY, token INTEGER NOT NULL, \
     holder TEXT, expires_at INTEGER);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_lock_waiters (name TEXT NOT NULL, seq INTEGER NOT NULL, \
     waiter TEXT NOT NULL, lease_ms INTEGER NOT NULL, deadline INTEGER NOT NULL, PRIMARY KEY (name, seq)) WITHOUT ROWID;\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_notifications (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, \
     payload BLOB NOT NULL);\
     CREATE INDEX IF NOT EXISTS hiqlite_state._hiqlite_notifications_channel ON _hiqlite_notifications (channel, id);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_notify_dropped (channel TEXT PRIMARY KEY, upto INTEGER NOT NULL);\
     CREATE TABLE IF NOT EXISTS hiqlite_state._hiqlite_changes (idx INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);";

/// The key of the cluster's foreign-key setting in `meta` (`"1"` / `"0"`; absent: never set,
/// which means off).
pub(crate) const FK_KEY: &str = "foreign_keys";
/// Set once the state lives in the state file (legacy tables migrated out of the main file).
const FORMAT_KEY: &str = "format";
const MAGIC: &[u8; 8] = b"HIQLST01";

/// The state file that belongs to the database at `db`.
pub(crate) fn state_path(db: &Path) -> PathBuf {
    db.with_extension("state.db")
}

/// Where an entry sits in the replicated log: its index and the term and node id of the leader
/// that proposed it. The consensus layer converts its own log ids to and from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogPos {
    /// Position in the log.
    pub index: u64,
    /// Term of the leader that proposed the entry.
    pub term: u64,
    /// Node id of the leader that proposed the entry.
    pub node_id: u64,
}

/// A cluster membership as the consensus layer encodes it (JSON). The writer stores it and
/// hands it back; it never looks inside.
pub(crate) type MembershipBlob = Arc<str>;

/// The last applied position and the last membership applied (`None`: none recorded yet), as
/// the writer last committed them.
pub(crate) type Applied = (Option<LogPos>, Option<MembershipBlob>);

/// On-disk form of a [`LogPos`] in `meta`: the JSON layout earlier versions wrote
/// (the consensus library's log id, `{"leader_id":{"term":T,"node_id":N},"index":I}`).
#[derive(Serialize, Deserialize)]
struct PosJson {
    leader_id: LeaderJson,
    index: u64,
}

#[derive(Serialize, Deserialize)]
struct LeaderJson {
    term: u64,
    node_id: u64,
}

fn pos_to_json(p: LogPos) -> PosJson {
    PosJson { leader_id: LeaderJson { term: p.term, node_id: p.node_id }, index: p.index }
}

fn pos_from_json(j: PosJson) -> LogPos {
    LogPos { index: j.index, term: j.leader_id.term, node_id: j.leader_id.node_id }
}

/// Attach the state file of `db` to `conn` (creating it) and migrate a legacy main file.
pub(crate) fn attach_state(conn: &Connection, db: &Path) -> Result<()> {
    let path = state_path(db);
    let p = path.to_str().ok_or_else(|| Error::Storage(format!("{} is not UTF-8", path.display())))?;
    conn.execute("ATTACH DATABASE ?1 AS hiqlite_state", [p])?;
    conn.execute_batch("PRAGMA hiqlite_state.journal_mode=WAL; PRAGMA hiqlite_state.synchronous=OFF;")?;
    conn.execute_batch(STATE_DDL)?;
    let migrated: Option<String> = conn
        .query_row("SELECT value FROM hiqlite_state._hiqlite_state_meta WHERE key = ?1", [FORMAT_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    if migrated.is_none() {
        migrate_legacy(conn)?;
    }
    Ok(())
}

fn has_table(conn: &Connection, schema: &str, name: &str) -> Result<bool> {
    let q = format!("SELECT count(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?1");
    Ok(conn.query_row(&q, [name], |r| r.get::<_, i64>(0))? > 0)
}

/// Move `_hiqlite_meta` / `_hiqlite_migrations` of a main file written by an earlier version
/// into the state file, then drop them from the main file. Each step is its own transaction
/// and the steps are idempotent; the format marker is set last, so an interrupted migration is
/// finished at the next open.
pub(crate) fn migrate_legacy(conn: &Connection) -> Result<()> {
    let meta = has_table(conn, "main", "_hiqlite_meta")?;
    let migrations = has_table(conn, "main", "_hiqlite_migrations")?;
    if meta || migrations {
        let tx = conn.unchecked_transaction()?;
        if meta {
            tx.execute_batch(
                "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_meta (key, value) SELECT key, value FROM main._hiqlite_meta",
            )?;
        }
        if migrations {
            tx.execute_batch(
                "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_migrations (id, name, checksum, applied_at) \
                 SELECT id, name, checksum, applied_at FROM main._hiqlite_migrations",
            )?;
        }
        tx.commit()?;
        conn.execute_batch(
            "BEGIN; DROP TABLE IF EXISTS main._hiqlite_meta; DROP TABLE IF EXISTS main._hiqlite_migrations; COMMIT;",
        )?;
        tracing::info!("hiqlite's tables moved out of the user database into its state file");
    }
    conn.execute(
        "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES (?1, '2')",
        [FORMAT_KEY],
    )?;
    Ok(())
}

fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    let mut st = conn.prepare_cached("SELECT value FROM hiqlite_state._hiqlite_state_meta WHERE key = ?1")?;
    Ok(st.query_row([key], |r| r.get::<_, String>(0)).optional()?)
}

/// Read `last_applied` and membership from the state file.
pub(crate) fn read_meta(conn: &Connection) -> Result<Applied> {
    let last: Option<PosJson> = match get_meta(conn, "last_applied")? {
        Some(s) => {
            serde_json::from_str(&s).map_err(|e| Error::Storage(format!("bad last_applied meta: {e}")))?
        }
        None => None,
    };
    let membership = get_meta(conn, "membership")?.map(MembershipBlob::from);
    Ok((last.map(pos_from_json), membership))
}

/// The cluster's foreign-key setting as recorded (`None`: never set).
pub(crate) fn read_fk(conn: &Connection) -> Result<Option<bool>> {
    Ok(get_meta(conn, FK_KEY)?.map(|v| v == "1"))
}

/// Record the cluster's foreign-key setting (inside the caller's transaction).
pub(crate) fn write_fk(conn: &Connection, on: bool) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES (?1, ?2)",
    )?
    .execute([FK_KEY, if on { "1" } else { "0" }])?;
    Ok(())
}

/// The replicated clock of coordination entries: the largest stamp applied so far, advanced to
/// `ts` if that is later (inside the caller's transaction). Leases and TTLs are compared with it,
/// never with a stamp alone: a new leader whose wall clock is behind the old one's must not
/// shorten a lease the old leader granted, nor expire keys out of order.
pub(crate) fn advance_clock(conn: &Connection, ts: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES ('clock', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) \
             RETURNING CAST(value AS INTEGER)",
        )?
        .query_row([ts], |r| r.get(0))?)
}

/// Record `applied` in the state file, in its own transaction. A membership never recorded
/// leaves its row absent (read back as `None`).
pub(crate) fn write_meta(conn: &Connection, applied: &Applied) -> Result<()> {
    let last = serde_json::to_string(&applied.0.map(pos_to_json)).map_err(Error::storage)?;
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES ('last_applied', ?1)",
        [last],
    )?;
    if let Some(mem) = &applied.1 {
        tx.execute(
            "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES ('membership', ?1)",
            [&**mem],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// One key/value entry as it travels: namespace, key, value, expiry (Unix ms), write order.
type KvRow = (String, String, Vec<u8>, Option<i64>, i64);

/// Everything in the state file, as it travels inside a snapshot or backup file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct StateData {
    meta: Vec<(String, String)>,
    migrations: Vec<(i64, String, i64, i64)>,
    /// Key/value entries.
    #[serde(default)]
    kv: Vec<KvRow>,
    /// Namespace size limits.
    #[serde(default)]
    kv_limits: Vec<(String, i64)>,
    /// Counters.
    #[serde(default)]
    counters: Vec<(String, i64)>,
    /// Locks: name, last token, holder, lease end.
    #[serde(default)]
    locks: Vec<(String, i64, Option<String>, Option<i64>)>,
    /// Lock waiters: name, place in line, waiter, lease, deadline.
    #[serde(default)]
    lock_waiters: Vec<(String, i64, String, i64, i64)>,
    /// The notifications kept for listeners that resume: id, channel, payload.
    #[serde(default)]
    notifications: Vec<(i64, String, Vec<u8>)>,
    /// Per channel, the id up to which notifications were dropped.
    #[serde(default)]
    notify_dropped: Vec<(String, i64)>,
    /// Captured row changes kept for change streams: log index, how many, stored (base64).
    #[serde(default)]
    changes: Vec<(i64, i64, String)>,
}

impl StateData {
    /// Forget the applied position and membership (a backup seeding a new cluster).
    pub(crate) fn drop_position(&mut self) {
        self.meta.retain(|(k, _)| k != "last_applied" && k != "membership");
    }
}

/// Read the whole state (the caller decides the transaction it is read in).
pub(crate) fn read_state(conn: &Connection) -> Result<StateData> {
    let mut st = conn.prepare("SELECT key, value FROM hiqlite_state._hiqlite_state_meta ORDER BY key")?;
    let meta = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut st = conn.prepare(
        "SELECT id, name, checksum, applied_at FROM hiqlite_state._hiqlite_state_migrations ORDER BY id",
    )?;
    let migrations = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = conn.prepare(
        "SELECT ns, key, value, expires_at, written FROM hiqlite_state._hiqlite_kv ORDER BY ns, key",
    )?;
    let kv = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = conn.prepare("SELECT ns, max_entries FROM hiqlite_state._hiqlite_kv_limits ORDER BY ns")?;
    let kv_limits = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut st = conn.prepare("SELECT name, value FROM hiqlite_state._hiqlite_counters ORDER BY name")?;
    let counters = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut st = conn
        .prepare("SELECT name, token, holder, expires_at FROM hiqlite_state._hiqlite_locks ORDER BY name")?;
    let locks = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = conn.prepare(
        "SELECT name, seq, waiter, lease_ms, deadline FROM hiqlite_state._hiqlite_lock_waiters ORDER BY name, seq",
    )?;
    let lock_waiters = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut st =
        conn.prepare("SELECT id, channel, payload FROM hiqlite_state._hiqlite_notifications ORDER BY id")?;
    let notifications =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut st =
        conn.prepare("SELECT channel, upto FROM hiqlite_state._hiqlite_notify_dropped ORDER BY channel")?;
    let notify_dropped =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    use base64::Engine as _;
    let changes = super::changes::dump(conn)?
        .into_iter()
        .map(|(i, n, b)| (i, n, base64::engine::general_purpose::STANDARD.encode(b)))
        .collect();
    Ok(StateData {
        meta,
        migrations,
        kv,
        kv_limits,
        counters,
        locks,
        lock_waiters,
        notifications,
        notify_dropped,
        changes,
    })
}

/// Replace the whole state with `data`, in one transaction.
pub(crate) fn load_state(conn: &Connection, data: &StateData) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(
        "DELETE FROM hiqlite_state._hiqlite_state_meta; DELETE FROM hiqlite_state._hiqlite_state_migrations; \
         DELETE FROM hiqlite_state._hiqlite_kv; DELETE FROM hiqlite_state._hiqlite_kv_limits; \
         DELETE FROM hiqlite_state._hiqlite_counters; DELETE FROM hiqlite_state._hiqlite_locks; \
         DELETE FROM hiqlite_state._hiqlite_lock_waiters; DELETE FROM hiqlite_state._hiqlite_notifications; \
         DELETE FROM hiqlite_state._hiqlite_notify_dropped; DELETE FROM hiqlite_state._hiqlite_changes;",
    )?;
    {
        use base64::Engine as _;
        let mut rows = Vec::with_capacity(data.changes.len());
        for (i, n, b) in &data.changes {
            rows.push((*i, *n, base64::engine::general_purpose::STANDARD.decode(b).map_err(Error::storage)?));
        }
        super::changes::load(&tx, &rows)?;
    }
    for (channel, upto) in &data.notify_dropped {
        tx.execute(
            "INSERT INTO hiqlite_state._hiqlite_notify_dropped (channel, upto) VALUES (?1, ?2)",
            rusqlite::params![channel, upto],
        )?;
    }
    for (id, channel, payload) in &data.notifications {
        tx.execute(
            "INSERT INTO hiqlite_state._hiqlite_notifications (id, channel, payload) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, channel, payload],
        )?;
    }
    for (name, token, holder, expires) in &data.locks {
        tx.execute(
            "INSERT INTO hiqlite_state._hiqlite_locks (name, token, holder, expires_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![name, token, holder, expires],
        )?;
    }
    for (name, seq, waiter, lease, deadline) in &data.lock_waiters {
        tx.execute(
            "INSERT INTO hiqlite_state._hiqlite_lock_waiters (name, seq, waiter, lease_ms, deadline) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![name, seq, waiter, lease, deadline],
        )?;
    }
    for (ns, key, value, expires, written) in &data.kv {
        tx.execute(
            "INSERT INTO hiqlite_state._hiqlite_kv (ns, key, value, expires_at, written) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![ns, key, value, expires, written],
        )?;
    }
    for (ns, max) in &data.kv_limits {
        tx.execute(
            "INSERT INTO hiqlite_state._hiqlite_kv_limits (ns, max_entries) VALUES (?1, ?2)",
            rusqlite::params![ns, max],
        )?;
    }
    for (name, value) in &data.counters {
        tx.execute(
            "INSERT INTO hiqlite_state._hiqlite_counters (name, value) VALUES (?1, ?2)",
            rusqlite::params![name, value],
        )?;
    }
    for (k, v) in &data.meta {
        tx.execute(
            "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES (?1, ?2)",
            [k, v],
        )?;
    }
    for (id, name, sum, at) in &data.migrations {
        tx.execute(
            "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_migrations (id, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, name, sum, at],
        )?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES (?1, '2')",
        [FORMAT_KEY],
    )?;
    tx.commit()?;
    Ok(())
}

/// The bytes that follow the pages of a snapshot or backup file: `[json][len u64 LE][MAGIC]`.
pub(crate) fn state_trailer(data: &StateData) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec(data).map_err(Error::storage)?;
    let n = out.len() as u64;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(MAGIC);
    Ok(out)
}

/// Append `data` to the standalone database file at `path` (see [`state_trailer`]).
pub(crate) fn append_state(path: &Path, data: &StateData) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(&state_trailer(data)?)?;
    f.sync_all()?;
    Ok(())
}

/// Take the state off the end of the snapshot file at `path`, leaving the database alone in
/// it (synced). `None`: the file carries none (written by an earlier version).
pub(crate) fn take_state(path: &Path) -> Result<Option<StateData>> {
    let Some((data, db_len)) = read_trailer(path)? else { return Ok(None) };
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(db_len)?;
    f.sync_all()?;
    Ok(Some(data))
}

/// The state appended to a snapshot or backup file, if it carries one (`None`: a plain SQLite
/// file, or one written by an earlier version with the state inside).
pub(crate) fn bundled_state(path: &Path) -> Result<Option<StateData>> {
    Ok(read_trailer(path)?.map(|(data, _)| data))
}

/// The trailer's state and where the database ends.
fn read_trailer(path: &Path) -> Result<Option<(StateData, u64)>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len < 16 {
        return Ok(None);
    }
    let mut tail = [0u8; 16];
    f.seek(SeekFrom::Start(len - 16))?;
    f.read_exact(&mut tail)?;
    if &tail[8..] != MAGIC {
        return Ok(None);
    }
    let n = u64::from_le_bytes(tail[..8].try_into().map_err(Error::storage)?);
    if n > len - 16 {
        return Err(Error::Storage(format!("{}: bad hiqlite state trailer", path.display())));
    }
    let mut json = vec![0u8; n as usize];
    f.seek(SeekFrom::Start(len - 16 - n))?;
    f.read_exact(&mut json)?;
    let data = serde_json::from_slice(&json)
        .map_err(|e| Error::Storage(format!("{}: bad hiqlite state: {e}", path.display())))?;
    Ok(Some((data, len - 16 - n)))
}

/// Seed a database (and its state file) that does not exist yet from the snapshot or backup
/// file `src`: the user pages with SQLite's backup API, the state from its trailer (a legacy
/// file's in-database tables are migrated when the writer opens it). `drop_position` forgets
/// the applied position and membership (a backup seeding a new cluster).
pub(crate) fn seed_from(src: &Path, db: &Path, drop_position: bool) -> Result<()> {
    let from = Connection::open_with_flags(src, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut dst = Connection::open(db)?;
    {
        let b = rusqlite::backup::Backup::new(&from, &mut dst)?;
        if b.step(-1)? != rusqlite::backup::StepResult::Done {
            return Err(Error::Storage("database copy did not complete".into()));
        }
    }
    dst.execute_batch("PRAGMA journal_mode=WAL;")?;
    let p = state_path(db);
    let p = p.to_str().ok_or_else(|| Error::Storage("state path is not UTF-8".into()))?;
    dst.execute("ATTACH DATABASE ?1 AS hiqlite_state", [p])?;
    dst.execute_batch(STATE_DDL)?;
    match bundled_state(src)? {
        Some(mut data) => {
            if drop_position {
                data.drop_position();
            }
            load_state(&dst, &data)?;
        }
        None => {
            migrate_legacy(&dst)?;
            if drop_position {
                dst.execute_batch(
                    "DELETE FROM hiqlite_state._hiqlite_state_meta WHERE key IN ('last_applied', 'membership')",
                )?;
            }
        }
    }
    dst.execute_batch("DETACH DATABASE hiqlite_state;")?;
    drop(dst);
    std::fs::File::open(db)?.sync_all()?;
    std::fs::File::open(state_path(db))?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Connection {
        let db = dir.join("m.db");
        let conn = Connection::open(&db).expect("test step");
        attach_state(&conn, &db).expect("test step");
        conn
    }

    #[test]
    fn meta_round_trips_and_keeps_the_old_layout() {
        let dir = tempfile::tempdir().expect("test step");
        let conn = open(dir.path());
        assert_eq!(read_meta(&conn).expect("test step"), (None, None));
        write_meta(&conn, &(None, None)).expect("test step");
        assert_eq!(get_meta(&conn, "last_applied").expect("test step").as_deref(), Some("null"));
        assert_eq!(read_meta(&conn).expect("test step"), (None, None));

        let pos = LogPos { index: 7, term: 3, node_id: 2 };
        let applied: Applied = (Some(pos), Some(MembershipBlob::from("{\"opaque\":1}")));
        write_meta(&conn, &applied).expect("test step");
        assert_eq!(
            get_meta(&conn, "last_applied").expect("test step").as_deref(),
            Some(r#"{"leader_id":{"term":3,"node_id":2},"index":7}"#)
        );
        assert_eq!(read_meta(&conn).expect("test step"), applied);
        let tables: i64 =
            conn.query_row("SELECT count(*) FROM main.sqlite_master", [], |r| r.get(0)).expect("q");
        assert_eq!(tables, 0, "the user database holds nothing of hiqlite's");
    }

    #[test]
    fn legacy_tables_move_out_and_a_user_table_of_that_name_stays() {
        let dir = tempfile::tempdir().expect("test step");
        let db = dir.path().join("m.db");
        {
            let c = Connection::open(&db).expect("test step");
            c.execute_batch(
                "CREATE TABLE _hiqlite_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO _hiqlite_meta VALUES ('last_applied', '{\"leader_id\":{\"term\":1,\"node_id\":1},\"index\":5}');
                 CREATE TABLE _hiqlite_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum INTEGER NOT NULL, applied_at INTEGER NOT NULL);
                 INSERT INTO _hiqlite_migrations VALUES (1, 'init', 42, 0);
                 CREATE TABLE t (a);",
            )
            .expect("test step");
        }
        let conn = open(dir.path());
        assert_eq!(read_meta(&conn).expect("test step").0.map(|p| p.index), Some(5));
        let names: Vec<String> = conn
            .prepare("SELECT name FROM main.sqlite_master")
            .expect("q")
            .query_map([], |r| r.get(0))
            .expect("q")
            .collect::<rusqlite::Result<_>>()
            .expect("q");
        assert_eq!(names, vec!["t".to_string()]);
        assert_eq!(read_state(&conn).expect("q").migrations, vec![(1, "init".to_string(), 42, 0)]);
        // Opened again after a user made a table of that name: it is theirs.
        conn.execute_batch("CREATE TABLE _hiqlite_meta (x); INSERT INTO main._hiqlite_meta VALUES (1);")
            .expect("test step");
        drop(conn);
        let conn = open(dir.path());
        let n: i64 = conn.query_row("SELECT count(*) FROM main._hiqlite_meta", [], |r| r.get(0)).expect("q");
        assert_eq!(n, 1);
    }

    #[test]
    fn state_travels_after_the_pages_and_sqlite_ignores_it() {
        let dir = tempfile::tempdir().expect("test step");
        let conn = open(dir.path());
        conn.execute_batch("CREATE TABLE t (a); INSERT INTO t VALUES (1);").expect("test step");
        write_fk(&conn, true).expect("test step");
        let data = read_state(&conn).expect("test step");
        let file = dir.path().join("copy.db");
        {
            let mut dst = Connection::open(&file).expect("test step");
            let b = rusqlite::backup::Backup::new(&conn, &mut dst).expect("test step");
            b.step(-1).expect("test step");
        }
        assert_eq!(bundled_state(&file).expect("test step"), None);
        append_state(&file, &data).expect("test step");
        assert_eq!(bundled_state(&file).expect("test step"), Some(data.clone()));
        let c = Connection::open(&file).expect("test step");
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("q");
        assert_eq!(ok, "ok");
        drop(c);
        let seeded = dir.path().join("seeded.db");
        seed_from(&file, &seeded, true).expect("test step");
        let c = Connection::open(&seeded).expect("test step");
        attach_state(&c, &seeded).expect("test step");
        assert_eq!(read_fk(&c).expect("q"), Some(true));
        assert_eq!(read_meta(&c).expect("q"), (None, None));
        let n: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("q");
        assert_eq!(n, 1);
    }
}
