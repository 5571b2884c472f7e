//! The state machine's own tables: `_hiqlite_meta` (the last applied log position and the
//! membership, written at snapshots, backups and clean shutdown only) and `_hiqlite_migrations`.

use std::sync::Arc;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub(super) const META_DDL: &str =
    "CREATE TABLE IF NOT EXISTS _hiqlite_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";
pub(super) const MIGRATIONS_DDL: &str = "CREATE TABLE IF NOT EXISTS _hiqlite_migrations (\
     id INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum INTEGER NOT NULL, applied_at INTEGER NOT NULL);";

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

/// On-disk form of a [`LogPos`] in `_hiqlite_meta`: the JSON layout earlier versions wrote
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

/// Read `last_applied` and membership from the database's meta table.
pub(crate) fn read_meta(conn: &Connection) -> Result<Applied> {
    conn.execute_batch(META_DDL)?;
    let get = |k: &str| -> Result<Option<String>> {
        let mut st = conn.prepare("SELECT value FROM _hiqlite_meta WHERE key = ?1")?;
        let mut rows = st.query([k])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get::<_, String>(0)?),
            None => None,
        })
    };
    let last: Option<PosJson> = match get("last_applied")? {
        Some(s) => {
            serde_json::from_str(&s).map_err(|e| Error::Storage(format!("bad last_applied meta: {e}")))?
        }
        None => None,
    };
    let membership = get("membership")?.map(MembershipBlob::from);
    Ok((last.map(pos_from_json), membership))
}

/// Record `applied` in the meta table, in its own transaction. A membership never recorded
/// leaves its row absent (read back as `None`).
pub(super) fn write_meta(conn: &Connection, applied: &Applied) -> Result<()> {
    let last = serde_json::to_string(&applied.0.map(pos_to_json)).map_err(Error::storage)?;
    conn.execute_batch(META_DDL)?;
    let tx = conn.unchecked_transaction()?;
    tx.execute("INSERT OR REPLACE INTO _hiqlite_meta (key, value) VALUES ('last_applied', ?1)", [last])?;
    if let Some(mem) = &applied.1 {
        tx.execute("INSERT OR REPLACE INTO _hiqlite_meta (key, value) VALUES ('membership', ?1)", [&**mem])?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_keeps_the_old_layout() {
        let conn = Connection::open_in_memory().expect("test step");
        assert_eq!(read_meta(&conn).expect("test step"), (None, None));
        write_meta(&conn, &(None, None)).expect("test step");
        let raw: String = conn
            .query_row("SELECT value FROM _hiqlite_meta WHERE key = 'last_applied'", [], |r| r.get(0))
            .expect("test step");
        assert_eq!(raw, "null");
        assert_eq!(read_meta(&conn).expect("test step"), (None, None));

        let pos = LogPos { index: 7, term: 3, node_id: 2 };
        let applied: Applied = (Some(pos), Some(MembershipBlob::from("{\"opaque\":1}")));
        write_meta(&conn, &applied).expect("test step");
        let raw: String = conn
            .query_row("SELECT value FROM _hiqlite_meta WHERE key = 'last_applied'", [], |r| r.get(0))
            .expect("test step");
        assert_eq!(raw, r#"{"leader_id":{"term":3,"node_id":2},"index":7}"#);
        assert_eq!(read_meta(&conn).expect("test step"), applied);
    }
}
