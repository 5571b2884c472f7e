//! Coordination primitives in hiqlite's state file: key/value entries with expiry and namespace
//! limits, and counters (`_hiqlite_kv`, `_hiqlite_kv_limits`, `_hiqlite_counters`, created with
//! the rest of the state in `meta.rs`). Applied by the writer inside the entry's savepoint, read
//! by a read-only connection to the state file.
//!
//! Every operation first removes the entries whose time has come at the leader's stamped clock,
//! so all replicas expire the same keys at the same log position, and an entry still stored is
//! never expired for the state it belongs to: reads need no clock. A namespace limit evicts the
//! least recently *written* entries (reads are local and not in the log, so an order by reads
//! would differ between replicas).

use rusqlite::{Connection, OptionalExtension};

use super::writer::State;
use crate::command::Response;
use crate::coord::{CoordAnswer, CoordOp};
use crate::error::{Error, Result};

impl State {
    /// Apply one coordination operation stamped `ts` (the leader's clock, Unix ms). A refused
    /// operation (a counter overflow) answers an error; SQLite failures are errors of this
    /// machine.
    pub(super) fn apply_coord(&mut self, op: &CoordOp, ts: i64) -> Result<Response> {
        let c = &self.conn;
        c.prepare_cached("DELETE FROM hiqlite_state._hiqlite_kv WHERE expires_at <= ?1")?.execute([ts])?;
        let expiry = |ttl: &Option<u64>| ttl.map(|t| ts.saturating_add(i64::try_from(t).unwrap_or(i64::MAX)));
        let answer = match op {
            CoordOp::Expire => CoordAnswer::Done,
            CoordOp::KvPut { ns, key, value, ttl_ms } => {
                put(c, ns, key, value, expiry(ttl_ms))?;
                CoordAnswer::Done
            }
            CoordOp::KvDelete { ns, key } => CoordAnswer::Changed(delete(c, ns, key)?),
            CoordOp::KvTake { ns, key } => {
                let v = get(c, "hiqlite_state", ns, key)?;
                delete(c, ns, key)?;
                CoordAnswer::Value(v)
            }
            CoordOp::KvReplace { ns, key, expected, new, ttl_ms } => {
                if get(c, "hiqlite_state", ns, key)? != *expected {
                    CoordAnswer::Changed(false)
                } else {
                    match new {
                        Some(v) => put(c, ns, key, v, expiry(ttl_ms))?,
                        None => {
                            delete(c, ns, key)?;
                        }
                    }
                    CoordAnswer::Changed(true)
                }
            }
            CoordOp::KvLimit { ns, max_entries } => {
                match max_entries {
                    Some(m) => {
                        c.prepare_cached(
                            "INSERT INTO hiqlite_state._hiqlite_kv_limits (ns, max_entries) VALUES (?1, ?2) \
                             ON CONFLICT (ns) DO UPDATE SET max_entries = excluded.max_entries",
                        )?
                        .execute(rusqlite::params![ns, i64::try_from(*m).unwrap_or(i64::MAX)])?;
                        evict(c, ns)?;
                    }
                    None => {
                        c.prepare_cached("DELETE FROM hiqlite_state._hiqlite_kv_limits WHERE ns = ?1")?
                            .execute([ns])?;
                    }
                }
                CoordAnswer::Done
            }
            CoordOp::CounterAdd { name, delta } => {
                let now = counter(c, "hiqlite_state", name)?;
                let Some(next) = now.checked_add(*delta) else {
                    let e =
                        Error::InvalidRequest(format!("counter {name}: {now} + {delta} overflows 64 bits"));
                    return Ok(Response { results: vec![Err(e)], ..Default::default() });
                };
                set_counter(c, name, next)?;
                CoordAnswer::Counter(next)
            }
            CoordOp::CounterSet { name, value } => {
                set_counter(c, name, *value)?;
                CoordAnswer::Counter(*value)
            }
        };
        Ok(Response { coord: Some(answer), ..Default::default() })
    }
}

fn put(c: &Connection, ns: &str, key: &str, value: &[u8], expires: Option<i64>) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO hiqlite_state._hiqlite_kv (ns, key, value, expires_at, written) \
         VALUES (?1, ?2, ?3, ?4, (SELECT coalesce(max(written), 0) + 1 FROM hiqlite_state._hiqlite_kv WHERE ns = ?1)) \
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, \
         written = excluded.written",
    )?
    .execute(rusqlite::params![ns, key, value, expires])?;
    evict(c, ns)
}

fn delete(c: &Connection, ns: &str, key: &str) -> Result<bool> {
    Ok(c.prepare_cached("DELETE FROM hiqlite_state._hiqlite_kv WHERE ns = ?1 AND key = ?2")?
        .execute([ns, key])?
        > 0)
}

/// Drop the least recently written entries of `ns` beyond its limit.
fn evict(c: &Connection, ns: &str) -> Result<()> {
    c.prepare_cached(
        "DELETE FROM hiqlite_state._hiqlite_kv WHERE ns = ?1 AND key IN (\
         SELECT key FROM hiqlite_state._hiqlite_kv WHERE ns = ?1 ORDER BY written LIMIT max(0, \
         (SELECT count(*) FROM hiqlite_state._hiqlite_kv WHERE ns = ?1) - \
         coalesce((SELECT max_entries FROM hiqlite_state._hiqlite_kv_limits WHERE ns = ?1), 9223372036854775807)))",
    )?
    .execute([ns])?;
    Ok(())
}

fn set_counter(c: &Connection, name: &str, value: i64) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO hiqlite_state._hiqlite_counters (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![name, value])?;
    Ok(())
}

/// The value of `key` in `ns` (`schema`: `hiqlite_state` on the writer, `main` on a connection
/// to the state file itself).
pub(crate) fn get(c: &Connection, schema: &str, ns: &str, key: &str) -> Result<Option<Vec<u8>>> {
    let sql = format!("SELECT value FROM {schema}._hiqlite_kv WHERE ns = ?1 AND key = ?2");
    Ok(c.prepare_cached(&sql)?.query_row([ns, key], |r| r.get(0)).optional()?)
}

/// A counter's value (0 when never set).
pub(crate) fn counter(c: &Connection, schema: &str, name: &str) -> Result<i64> {
    let sql = format!("SELECT value FROM {schema}._hiqlite_counters WHERE name = ?1");
    Ok(c.prepare_cached(&sql)?.query_row([name], |r| r.get(0)).optional()?.unwrap_or(0))
}

/// The earliest expiry of any entry (Unix ms), for the leader's expiry ticks.
pub(crate) fn next_expiry(c: &Connection) -> Result<Option<i64>> {
    Ok(c.prepare_cached("SELECT min(expires_at) FROM main._hiqlite_kv")?.query_row([], |r| r.get(0))?)
}
