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
//!
//! Local reads of key/value entries come from an in-memory mirror ([`KvMirror`]): the writer
//! records each change of a run of entries and applies them to the mirror once the run commits,
//! before the run is reported applied (as the query cache's invalidation), so a read after a
//! linearizable wait sees it. The mirror is loaded from the state file at open and after a
//! snapshot install.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rusqlite::{Connection, OptionalExtension};

use super::writer::State;
use crate::command::Response;
use crate::coord::{CoordAnswer, CoordOp};
use crate::error::{Error, Result};

/// One change of a key/value entry, for the mirror.
pub(crate) enum KvChange {
    Put(String, String, Arc<[u8]>),
    Delete(String, String),
}

/// Namespace → key → value.
type Entries = HashMap<String, HashMap<String, Arc<[u8]>>>;

/// Every key/value entry in memory.
#[derive(Default)]
pub(crate) struct KvMirror {
    map: RwLock<Entries>,
}

impl KvMirror {
    /// The value of `key` in `ns`.
    pub(crate) fn get(&self, ns: &str, key: &str) -> Option<Arc<[u8]>> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).get(ns).and_then(|m| m.get(key)).cloned()
    }

    /// Replace everything with the entries of the state file (`schema` on `c`).
    pub(crate) fn load(&self, c: &Connection, schema: &str) -> Result<()> {
        let mut map = Entries::new();
        let mut st = c.prepare(&format!("SELECT ns, key, value FROM {schema}._hiqlite_kv"))?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
        })?;
        for row in rows {
            let (ns, key, value) = row?;
            map.entry(ns).or_default().insert(key, value.into());
        }
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    /// Apply the changes of a committed run, in order.
    pub(crate) fn apply(&self, changes: impl IntoIterator<Item = KvChange>) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for c in changes {
            match c {
                KvChange::Put(ns, key, v) => {
                    map.entry(ns).or_default().insert(key, v);
                }
                KvChange::Delete(ns, key) => {
                    if let Some(m) = map.get_mut(&ns) {
                        m.remove(&key);
                        if m.is_empty() {
                            map.remove(&ns);
                        }
                    }
                }
            }
        }
    }
}

impl State {
    /// Apply one coordination operation stamped `ts` (the leader's clock, Unix ms; taken no
    /// earlier than the replicated clock, [`super::meta::advance_clock`]). A refused
    /// operation (a counter overflow) answers an error; SQLite failures are errors of this
    /// machine.
    pub(super) fn apply_coord(&mut self, op: &CoordOp, ts: i64) -> Result<Response> {
        let c = &self.conn;
        let ts = super::meta::advance_clock(c, ts)?;
        let log = &mut self.kv_pending;
        removed(
            c,
            log,
            "DELETE FROM hiqlite_state._hiqlite_kv WHERE expires_at <= ?1 RETURNING ns, key",
            &[&ts],
        )?;
        let mut locks_changed = super::locks::expire(c, ts)?;
        let expiry = |ttl: &Option<u64>| ttl.map(|t| ts.saturating_add(i64::try_from(t).unwrap_or(i64::MAX)));
        let answer = match op {
            CoordOp::Expire => CoordAnswer::Done,
            CoordOp::LockAcquire { name, waiter, lease_ms, wait_ms } => {
                locks_changed = true;
                CoordAnswer::Lock(super::locks::acquire(c, name, waiter, *lease_ms, *wait_ms, ts)?)
            }
            CoordOp::LockRenew { name, token, lease_ms } => {
                CoordAnswer::Changed(super::locks::renew(c, name, *token, *lease_ms, ts)?)
            }
            CoordOp::LockRelease { name, token } => {
                locks_changed = true;
                CoordAnswer::Changed(super::locks::release(c, name, *token, ts)?)
            }
            CoordOp::Notify { channel, payload } => {
                let note = super::notify::publish(c, channel, payload)?;
                let id = note.id;
                self.notes_pending.push(note);
                CoordAnswer::Id(id)
            }
            CoordOp::LockCancel { name, waiter } => {
                locks_changed = true;
                CoordAnswer::Changed(super::locks::cancel(c, name, waiter, ts)?)
            }
            CoordOp::KvPut { ns, key, value, ttl_ms } => {
                put(c, log, ns, key, value, expiry(ttl_ms))?;
                CoordAnswer::Done
            }
            CoordOp::KvDelete { ns, key } => CoordAnswer::Changed(delete(c, log, ns, key)?),
            CoordOp::KvTake { ns, key } => {
                let v = get(c, "hiqlite_state", ns, key)?;
                delete(c, log, ns, key)?;
                CoordAnswer::Value(v)
            }
            CoordOp::KvReplace { ns, key, expected, new, ttl_ms } => {
                if get(c, "hiqlite_state", ns, key)? != *expected {
                    CoordAnswer::Changed(false)
                } else {
                    match new {
                        Some(v) => put(c, log, ns, key, v, expiry(ttl_ms))?,
                        None => {
                            delete(c, log, ns, key)?;
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
                        evict(c, log, ns)?;
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
        self.locks_changed |= locks_changed;
        Ok(Response { coord: Some(answer), ..Default::default() })
    }
}

fn put(
    c: &Connection,
    log: &mut Vec<KvChange>,
    ns: &str,
    key: &str,
    value: &[u8],
    expires: Option<i64>,
) -> Result<()> {
    // `CAST(?1 AS TEXT)`, not `?1`: SQLite propagates a bound value compared with a TEXT column
    // into the plan of an aggregate (or ORDER BY) query and then re-prepares the statement at
    // every bind, which cost two thirds of a put's apply time (`prepare_tests.rs`).
    c.prepare_cached(
        "INSERT INTO hiqlite_state._hiqlite_kv (ns, key, value, expires_at, written) \
         VALUES (?1, ?2, ?3, ?4, (SELECT coalesce(max(written), 0) + 1 FROM hiqlite_state._hiqlite_kv \
         WHERE ns = CAST(?1 AS TEXT))) \
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, \
         written = excluded.written",
    )?
    .execute(rusqlite::params![ns, key, value, expires])?;
    log.push(KvChange::Put(ns.to_owned(), key.to_owned(), value.into()));
    evict(c, log, ns)
}

fn delete(c: &Connection, log: &mut Vec<KvChange>, ns: &str, key: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM hiqlite_state._hiqlite_kv WHERE ns = ?1 AND key = ?2")?
        .execute([ns, key])?;
    if n > 0 {
        log.push(KvChange::Delete(ns.to_owned(), key.to_owned()));
    }
    Ok(n > 0)
}

/// Run a `DELETE ... RETURNING ns, key` and record what it removed.
fn removed(
    c: &Connection,
    log: &mut Vec<KvChange>,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<()> {
    let mut st = c.prepare_cached(sql)?;
    let mut rows = st.query(params)?;
    while let Some(r) = rows.next()? {
        log.push(KvChange::Delete(r.get(0)?, r.get(1)?));
    }
    Ok(())
}

/// Drop the least recently written entries of `ns` beyond its limit.
fn evict(c: &Connection, log: &mut Vec<KvChange>, ns: &str) -> Result<()> {
    // Most namespaces have no limit: no count of their entries then.
    let limited = c
        .prepare_cached("SELECT 1 FROM hiqlite_state._hiqlite_kv_limits WHERE ns = ?1")?
        .query_row([ns], |_| Ok(()))
        .optional()?
        .is_some();
    if !limited {
        return Ok(());
    }
    removed(
        c,
        log,
        "DELETE FROM hiqlite_state._hiqlite_kv WHERE ns = ?1 AND key IN (\
         SELECT key FROM hiqlite_state._hiqlite_kv WHERE ns = CAST(?1 AS TEXT) ORDER BY written LIMIT max(0, \
         (SELECT count(*) FROM hiqlite_state._hiqlite_kv WHERE ns = CAST(?1 AS TEXT)) - \
         coalesce((SELECT max_entries FROM hiqlite_state._hiqlite_kv_limits WHERE ns = CAST(?1 AS TEXT)), \
         9223372036854775807))) \
         RETURNING ns, key",
        &[&ns],
    )
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

/// The earliest expiry of any entry, lease or wait (Unix ms), for the leader's expiry ticks.
pub(crate) fn next_expiry(c: &Connection) -> Result<Option<i64>> {
    let kv: Option<i64> =
        c.prepare_cached("SELECT min(expires_at) FROM main._hiqlite_kv")?.query_row([], |r| r.get(0))?;
    let locks = super::locks::next_due(c)?;
    Ok(match (kv, locks) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}
