//! Coordination primitives as replicated data: what a key/value or counter operation asks the
//! state machine ([`CoordOp`]) and what it answers ([`CoordAnswer`]). They ride in the same Raft
//! log as SQL (`Command::Coord`), stamped with the leader's clock, so every replica expires the
//! same keys at the same log position. Neutral data: neither consensus nor SQLite.

use serde::{Deserialize, Serialize};

/// One coordination operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordOp {
    /// Set `key` in namespace `ns` to `value`, expiring `ttl_ms` after the leader's clock at
    /// apply (never when `None`).
    KvPut { ns: String, key: String, value: Vec<u8>, ttl_ms: Option<u64> },
    /// Remove `key`; answers whether it existed.
    KvDelete { ns: String, key: String },
    /// Remove `key` and answer its value.
    KvTake { ns: String, key: String },
    /// Compare and swap: when the current value is `expected` (`None`: absent), set `new`
    /// (`None`: delete); answers whether it swapped.
    KvReplace {
        ns: String,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    },
    /// Keep at most `max_entries` keys in `ns` (`None`: no limit), evicting the least recently
    /// written first.
    KvLimit { ns: String, max_entries: Option<u64> },
    /// Add `delta` to counter `name` (absent counts as 0); answers the new value.
    CounterAdd { name: String, delta: i64 },
    /// Set counter `name`; answers the value.
    CounterSet { name: String, value: i64 },
    /// Take lock `name` for `waiter` with a lease of `lease_ms`: granted at once when free and
    /// nobody waits, else queued (FIFO) until `wait_ms` after the stamped time, or answered busy
    /// when `wait_ms` is `None` (try-lock).
    LockAcquire { name: String, waiter: String, lease_ms: u64, wait_ms: Option<u64> },
    /// Extend the lease of the holder of `token`; answers whether it still held the lock.
    LockRenew { name: String, token: i64, lease_ms: u64 },
    /// Release the lock held with `token` (the next waiter gets it); answers whether it was held.
    LockRelease { name: String, token: i64 },
    /// Stop waiting for `name`; a grant that came meanwhile is released. Answers whether the
    /// waiter held the lock by then.
    LockCancel { name: String, waiter: String },
    /// Publish `payload` on `channel`: every listener on every node receives it, in log order;
    /// answers its id (a cluster-wide sequence, the resume cursor).
    Notify { channel: String, payload: Vec<u8> },
    /// Nothing but the expiry of what is due at the stamped time (the leader sends it when a
    /// key's, a lease's or a waiter's time has come).
    Expire,
}

/// What a coordination operation answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordAnswer {
    /// Done, nothing to tell.
    Done,
    /// A value, or none.
    Value(Option<Vec<u8>>),
    /// Whether the operation changed something (delete: it existed; replace: it swapped).
    Changed(bool),
    /// A counter's value.
    Counter(i64),
    /// A lock acquisition: granted with this fencing token, queued, or busy (try-lock).
    Lock(LockOutcome),
    /// The id given to a notification.
    Id(i64),
}

/// What a [`CoordOp::LockAcquire`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockOutcome {
    /// Held now, with this fencing token (strictly increasing per lock).
    Granted(i64),
    /// Waiting in line: the grant arrives through the log.
    Queued,
    /// Held by someone else (try-lock only).
    Busy,
}

/// Bytes an operation carries (for the proposer's batch limit).
pub(crate) fn size(op: &CoordOp) -> usize {
    match op {
        CoordOp::KvPut { ns, key, value, .. } => ns.len() + key.len() + value.len(),
        CoordOp::KvReplace { ns, key, expected, new, .. } => {
            ns.len() + key.len() + expected.as_ref().map_or(0, Vec::len) + new.as_ref().map_or(0, Vec::len)
        }
        CoordOp::KvDelete { ns, key } | CoordOp::KvTake { ns, key } => ns.len() + key.len(),
        CoordOp::KvLimit { ns, .. } => ns.len(),
        CoordOp::CounterAdd { name, .. } | CoordOp::CounterSet { name, .. } => name.len(),
        CoordOp::LockAcquire { name, waiter, .. } | CoordOp::LockCancel { name, waiter } => {
            name.len() + waiter.len()
        }
        CoordOp::LockRenew { name, .. } | CoordOp::LockRelease { name, .. } => name.len(),
        CoordOp::Notify { channel, payload } => channel.len() + payload.len(),
        CoordOp::Expire => 0,
    }
}

/// Longest namespace, key or counter name accepted.
pub(crate) const MAX_NAME: usize = 1024;
/// Largest value accepted.
pub(crate) const MAX_VALUE: usize = 16 * 1024 * 1024;
/// Largest notification payload accepted.
pub(crate) const MAX_NOTIFY: usize = 64 * 1024;

/// Refuse what no replica should store: empty or oversized names, oversized values.
pub(crate) fn check(op: &CoordOp) -> crate::Result<()> {
    let name = |what: &str, n: &str| {
        if n.is_empty() || n.len() > MAX_NAME {
            Err(crate::Error::InvalidRequest(format!("{what} must be 1 to {MAX_NAME} bytes long")))
        } else {
            Ok(())
        }
    };
    let value = |v: &[u8]| {
        if v.len() > MAX_VALUE {
            Err(crate::Error::InvalidRequest(format!("values are at most {MAX_VALUE} bytes")))
        } else {
            Ok(())
        }
    };
    match op {
        CoordOp::KvPut { ns, key, value: v, .. } => {
            name("namespace", ns)?;
            name("key", key)?;
            value(v)
        }
        CoordOp::KvReplace { ns, key, expected, new, .. } => {
            name("namespace", ns)?;
            name("key", key)?;
            value(expected.as_deref().unwrap_or_default())?;
            value(new.as_deref().unwrap_or_default())
        }
        CoordOp::KvDelete { ns, key } | CoordOp::KvTake { ns, key } => {
            name("namespace", ns)?;
            name("key", key)
        }
        CoordOp::KvLimit { ns, .. } => name("namespace", ns),
        CoordOp::CounterAdd { name: n, .. } | CoordOp::CounterSet { name: n, .. } => name("counter name", n),
        CoordOp::LockAcquire { name: n, lease_ms, .. } | CoordOp::LockRenew { name: n, lease_ms, .. } => {
            name("lock name", n)?;
            if *lease_ms == 0 {
                return Err(crate::Error::InvalidRequest("a lock's lease must be longer than 0".into()));
            }
            Ok(())
        }
        CoordOp::LockRelease { name: n, .. } | CoordOp::LockCancel { name: n, .. } => name("lock name", n),
        CoordOp::Notify { channel, payload } => {
            name("channel", channel)?;
            if payload.len() > MAX_NOTIFY {
                return Err(crate::Error::InvalidRequest(format!(
                    "notifications are at most {MAX_NOTIFY} bytes"
                )));
            }
            Ok(())
        }
        CoordOp::Expire => Ok(()),
    }
}
