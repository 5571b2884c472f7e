//! Distributed locks in hiqlite's state file: `_hiqlite_locks` (per lock: the last fencing token,
//! the holder and the end of its lease; the row outlives releases so tokens only grow) and
//! `_hiqlite_lock_waiters` (the FIFO line, each waiter with its lease and the end of its wait).
//!
//! Everything is decided at apply time from the leader's stamped clock: a lease that ran out
//! frees the lock and the first waiter in line gets it, with the next token, at the same log
//! position on every replica. A waiting client learns of its grant by watching the applied state
//! (the writer bumps an epoch when a run that touched locks commits).

use rusqlite::{Connection, OptionalExtension};

use crate::coord::LockOutcome;
use crate::error::Result;

fn lease_end(ts: i64, lease_ms: u64) -> i64 {
    ts.saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX))
}

/// Drop waiters whose wait ran out and take locks whose lease ran out from their holders,
/// handing them on. Whether anything changed.
pub(super) fn expire(c: &Connection, ts: i64) -> Result<bool> {
    let gone = c
        .prepare_cached("DELETE FROM hiqlite_state._hiqlite_lock_waiters WHERE deadline <= ?1")?
        .execute([ts])?;
    let names: Vec<String> = c
        .prepare_cached(
            "SELECT name FROM hiqlite_state._hiqlite_locks WHERE holder IS NOT NULL AND expires_at <= ?1 ORDER BY name",
        )?
        .query_map([ts], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in &names {
        free(c, name)?;
        grant_next(c, name, ts)?;
    }
    Ok(gone > 0 || !names.is_empty())
}

fn free(c: &Connection, name: &str) -> Result<()> {
    c.prepare_cached(
        "UPDATE hiqlite_state._hiqlite_locks SET holder = NULL, expires_at = NULL WHERE name = ?1",
    )?
    .execute([name])?;
    Ok(())
}

fn holder(c: &Connection, name: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached("SELECT holder FROM hiqlite_state._hiqlite_locks WHERE name = ?1")?
        .query_row([name], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// Give the lock to `waiter` with the next token.
fn grant(c: &Connection, name: &str, waiter: &str, lease_ms: u64, ts: i64) -> Result<i64> {
    Ok(c.prepare_cached(
        "INSERT INTO hiqlite_state._hiqlite_locks (name, token, holder, expires_at) VALUES (?1, 1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET token = token + 1, holder = excluded.holder, \
         expires_at = excluded.expires_at RETURNING token",
    )?
    .query_row(rusqlite::params![name, waiter, lease_end(ts, lease_ms)], |r| r.get(0))?)
}

/// A free lock goes to the first waiter in line, if any.
fn grant_next(c: &Connection, name: &str, ts: i64) -> Result<()> {
    if holder(c, name)?.is_some() {
        return Ok(());
    }
    let next: Option<(i64, String, i64)> = c
        .prepare_cached(
            "SELECT seq, waiter, lease_ms FROM hiqlite_state._hiqlite_lock_waiters WHERE name = CAST(?1 AS TEXT) ORDER BY seq LIMIT 1",
        )?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((seq, waiter, lease)) = next {
        c.prepare_cached("DELETE FROM hiqlite_state._hiqlite_lock_waiters WHERE name = ?1 AND seq = ?2")?
            .execute(rusqlite::params![name, seq])?;
        grant(c, name, &waiter, u64::try_from(lease).unwrap_or(0), ts)?;
    }
    Ok(())
}

/// Take the lock now if it is free and nobody waits; else wait in line (`wait_ms`) or be told
/// it is busy.
pub(super) fn acquire(
    c: &Connection,
    name: &str,
    waiter: &str,
    lease_ms: u64,
    wait_ms: Option<u64>,
    ts: i64,
) -> Result<LockOutcome> {
    let waiting: i64 = c
        .prepare_cached("SELECT count(*) FROM hiqlite_state._hiqlite_lock_waiters WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    if holder(c, name)?.is_none() && waiting == 0 {
        return Ok(LockOutcome::Granted(grant(c, name, waiter, lease_ms, ts)?));
    }
    match wait_ms.filter(|w| *w > 0) {
        None => Ok(LockOutcome::Busy),
        Some(w) => {
            c.prepare_cached(
                "INSERT INTO hiqlite_state._hiqlite_lock_waiters (name, seq, waiter, lease_ms, deadline) \
                 VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM hiqlite_state._hiqlite_lock_waiters \
                 WHERE name = CAST(?1 AS TEXT)), ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![
                name,
                waiter,
                i64::try_from(lease_ms).unwrap_or(i64::MAX),
                lease_end(ts, w)
            ])?;
            Ok(LockOutcome::Queued)
        }
    }
}

/// Extend the holder's lease; whether `token` still held the lock.
pub(super) fn renew(c: &Connection, name: &str, token: i64, lease_ms: u64, ts: i64) -> Result<bool> {
    Ok(c.prepare_cached(
        "UPDATE hiqlite_state._hiqlite_locks SET expires_at = ?3 WHERE name = ?1 AND token = ?2 AND holder IS NOT NULL",
    )?
    .execute(rusqlite::params![name, token, lease_end(ts, lease_ms)])?
        > 0)
}

/// Release the lock held with `token` and hand it on; whether it was held.
pub(super) fn release(c: &Connection, name: &str, token: i64, ts: i64) -> Result<bool> {
    let held = c
        .prepare_cached(
            "UPDATE hiqlite_state._hiqlite_locks SET holder = NULL, expires_at = NULL \
             WHERE name = ?1 AND token = ?2 AND holder IS NOT NULL",
        )?
        .execute(rusqlite::params![name, token])?
        > 0;
    if held {
        grant_next(c, name, ts)?;
    }
    Ok(held)
}

/// `waiter` stops waiting; a grant it got meanwhile is released. Whether it held the lock.
pub(super) fn cancel(c: &Connection, name: &str, waiter: &str, ts: i64) -> Result<bool> {
    c.prepare_cached("DELETE FROM hiqlite_state._hiqlite_lock_waiters WHERE name = ?1 AND waiter = ?2")?
        .execute([name, waiter])?;
    if holder(c, name)?.as_deref() == Some(waiter) {
        free(c, name)?;
        grant_next(c, name, ts)?;
        return Ok(true);
    }
    Ok(false)
}

/// The token `waiter` holds `name` with, if it does (on a connection to the state file).
pub(crate) fn held_by(c: &Connection, name: &str, waiter: &str) -> Result<Option<i64>> {
    Ok(c.prepare_cached("SELECT token FROM main._hiqlite_locks WHERE name = ?1 AND holder = ?2")?
        .query_row([name, waiter], |r| r.get(0))
        .optional()?)
}

/// The earliest lease end or wait deadline (Unix ms), for the leader's expiry entries.
pub(crate) fn next_due(c: &Connection) -> Result<Option<i64>> {
    Ok(c.prepare_cached(
        "SELECT min(t) FROM (SELECT min(expires_at) AS t FROM main._hiqlite_locks WHERE holder IS NOT NULL \
         UNION ALL SELECT min(deadline) FROM main._hiqlite_lock_waiters)",
    )?
    .query_row([], |r| r.get(0))?)
}
