//! listen/notify in hiqlite's state file: `_hiqlite_notifications` keeps the last [`KEEP`]
//! notifications of each channel (id, channel, payload), `_hiqlite_notify_dropped` up to which id
//! a channel's older ones were dropped; ids are a cluster-wide sequence given at apply (the same
//! on every replica), so an id is a cursor a listener can resume from, and it can tell exactly
//! whether notifications of its channel after its cursor are gone. Committed notifications are
//! also broadcast in memory to the listeners of this node, in log order.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;

/// Notifications kept per channel for listeners that resume or fall behind.
pub(crate) const KEEP: i64 = 10_000;

/// One committed notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Its place in the cluster-wide sequence (the resume cursor).
    pub id: i64,
    /// The channel it was sent on.
    pub channel: String,
    /// What was sent.
    pub payload: Vec<u8>,
}

/// Store a notification; its id. Older ones beyond [`KEEP`] go.
pub(super) fn publish(c: &Connection, channel: &str, payload: &[u8]) -> Result<Arc<Note>> {
    let id: i64 = c
        .prepare_cached(
            "INSERT INTO hiqlite_state._hiqlite_notifications (id, channel, payload) VALUES \
             ((SELECT coalesce(max(id), 0) + 1 FROM hiqlite_state._hiqlite_notifications), ?1, ?2) RETURNING id",
        )?
        .query_row(rusqlite::params![channel, payload], |r| r.get(0))?;
    let cut: Option<i64> = c
        .prepare_cached(
            "SELECT id FROM hiqlite_state._hiqlite_notifications WHERE channel = CAST(?1 AS TEXT) ORDER BY id DESC LIMIT 1 OFFSET ?2",
        )?
        .query_row(rusqlite::params![channel, KEEP], |r| r.get(0))
        .optional()?;
    if let Some(cut) = cut {
        c.prepare_cached("DELETE FROM hiqlite_state._hiqlite_notifications WHERE channel = ?1 AND id <= ?2")?
            .execute(rusqlite::params![channel, cut])?;
        c.prepare_cached(
            "INSERT INTO hiqlite_state._hiqlite_notify_dropped (channel, upto) VALUES (?1, ?2) \
             ON CONFLICT (channel) DO UPDATE SET upto = excluded.upto",
        )?
        .execute(rusqlite::params![channel, cut])?;
    }
    Ok(Arc::new(Note { id, channel: channel.to_owned(), payload: payload.to_vec() }))
}

/// Up to `limit` notifications of `channel` after `after`, in order (on a connection to the
/// state file), and the id up to which the channel's notifications were dropped (0: none).
pub(crate) fn after(c: &Connection, channel: &str, after: i64, limit: i64) -> Result<(Vec<Note>, i64)> {
    let notes = c
        .prepare_cached(
            "SELECT id, channel, payload FROM main._hiqlite_notifications WHERE channel = ?1 AND id > ?2 \
             ORDER BY id LIMIT ?3",
        )?
        .query_map(rusqlite::params![channel, after, limit], |r| {
            Ok(Note { id: r.get(0)?, channel: r.get(1)?, payload: r.get(2)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let dropped: Option<i64> = c
        .prepare_cached("SELECT upto FROM main._hiqlite_notify_dropped WHERE channel = ?1")?
        .query_row([channel], |r| r.get(0))
        .optional()?;
    Ok((notes, dropped.unwrap_or(0)))
}

/// The newest id given so far (0: none).
pub(crate) fn newest(c: &Connection) -> Result<i64> {
    let n: Option<i64> =
        c.prepare_cached("SELECT max(id) FROM main._hiqlite_notifications")?.query_row([], |r| r.get(0))?;
    Ok(n.unwrap_or(0))
}
