//! Coordination primitives on [`Client`]: replicated key/value entries with expiry (bytes, or
//! any serde type as JSON) in named namespaces, and counters. Same methods embedded and remote
//! (a remote client needs a hiqlite server: rqlite has no such endpoints).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Client, Inner};
use crate::consistency::Consistency;
#[cfg(feature = "server")]
use crate::coord::{CoordAnswer, CoordOp};
use crate::error::{Error, Result};

#[cfg(feature = "server")]
fn unexpected(a: CoordAnswer) -> Error {
    Error::Storage(format!("unexpected coordination answer {a:?}"))
}

impl Client {
    /// A coordination write on the embedded node, its log index remembered.
    #[cfg(feature = "server")]
    async fn coord_write(&self, n: &crate::node::Node, op: CoordOp) -> Result<CoordAnswer> {
        let (answer, index) = n.coord(op).await?;
        self.session.note_index(index);
        Ok(answer)
    }

    /// A remote coordination write's outcome; its answer names no log index.
    fn remote_write<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_ok() {
            self.session.note_unindexed();
        }
        r
    }

    /// Set `key` in namespace `ns` to `value`, cluster-wide; with `ttl` it expires that long
    /// after the leader applies it (the leader's clock decides, identically on every node).
    pub async fn kv_put(
        &self,
        ns: &str,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let value = value.as_ref();
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                let ttl_ms = ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
                self.coord_write(
                    n,
                    CoordOp::KvPut { ns: ns.into(), key: key.into(), value: value.to_vec(), ttl_ms },
                )
                .await?;
                Ok(())
            }
            Inner::Remote(r) => self.remote_write(r.kv_put(ns, key, value, ttl).await),
        }
    }

    /// [`Client::kv_put`] of any serde value, stored as JSON.
    pub async fn kv_put_json<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| Error::InvalidRequest(format!("value to JSON: {e}")))?;
        self.kv_put(ns, key, bytes, ttl).await
    }

    /// The value of `key` in `ns` on this replica (microseconds embedded), or `None`.
    pub async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.kv_get_with(ns, key, Consistency::Local).await
    }

    /// [`Client::kv_get`] with a consistency level (`Linearizable` and `Leader` wait until this
    /// replica has applied everything committed when the call began).
    pub async fn kv_get_with(
        &self,
        ns: &str,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<Vec<u8>>> {
        let plan = self.coord_read_plan(consistency).await?;
        let r = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.kv_get(ns, key, plan.consistency).await,
            Inner::Remote(r) => r.kv_get(ns, key, plan.consistency).await,
        };
        self.session.done(plan, r)
    }

    /// [`Client::kv_get`] of a value stored as JSON.
    pub async fn kv_get_json<T: DeserializeOwned>(&self, ns: &str, key: &str) -> Result<Option<T>> {
        match self.kv_get(ns, key).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Decode(format!("value of {ns}/{key} as JSON: {e}"))),
        }
    }

    /// Remove `key`; whether it was there.
    pub async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                match self.coord_write(n, CoordOp::KvDelete { ns: ns.into(), key: key.into() }).await? {
                    CoordAnswer::Changed(b) => Ok(b),
                    other => Err(unexpected(other)),
                }
            }
            Inner::Remote(r) => self.remote_write(r.kv_delete(ns, key).await),
        }
    }

    /// Remove `key` and return the value it had, atomically.
    pub async fn kv_get_and_delete(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                match self.coord_write(n, CoordOp::KvTake { ns: ns.into(), key: key.into() }).await? {
                    CoordAnswer::Value(v) => Ok(v),
                    other => Err(unexpected(other)),
                }
            }
            Inner::Remote(r) => self.remote_write(r.kv_take(ns, key).await),
        }
    }

    /// Compare and swap: if `key` holds `expected` (`None`: absent), set it to `new` (`None`:
    /// delete it). Whether it swapped.
    pub async fn kv_replace(
        &self,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                let op = CoordOp::KvReplace {
                    ns: ns.into(),
                    key: key.into(),
                    expected: expected.map(<[u8]>::to_vec),
                    new: new.map(<[u8]>::to_vec),
                    ttl_ms: ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                };
                match self.coord_write(n, op).await? {
                    CoordAnswer::Changed(b) => Ok(b),
                    other => Err(unexpected(other)),
                }
            }
            Inner::Remote(r) => self.remote_write(r.kv_replace(ns, key, expected, new, ttl).await),
        }
    }

    /// Keep at most `max_entries` keys in `ns` (`None`: no limit); the least recently written
    /// go first, on every replica alike.
    pub async fn kv_set_limit(&self, ns: &str, max_entries: Option<u64>) -> Result<()> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                self.coord_write(n, CoordOp::KvLimit { ns: ns.into(), max_entries }).await?;
                Ok(())
            }
            Inner::Remote(r) => self.remote_write(r.kv_limit(ns, max_entries).await),
        }
    }

    /// A counter's value on this replica (0 when never set).
    pub async fn counter_get(&self, name: &str) -> Result<i64> {
        self.counter_get_with(name, Consistency::Local).await
    }

    /// [`Client::counter_get`] with a consistency level.
    pub async fn counter_get_with(&self, name: &str, consistency: Consistency) -> Result<i64> {
        let plan = self.coord_read_plan(consistency).await?;
        let r = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.counter_get(name, plan.consistency).await,
            Inner::Remote(r) => r.counter(name, None, plan.consistency).await,
        };
        self.session.done(plan, r)
    }

    /// Add `delta` to a counter atomically, cluster-wide; the new value.
    pub async fn counter_add(&self, name: &str, delta: i64) -> Result<i64> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                match self.coord_write(n, CoordOp::CounterAdd { name: name.into(), delta }).await? {
                    CoordAnswer::Counter(v) => Ok(v),
                    other => Err(unexpected(other)),
                }
            }
            Inner::Remote(r) => self.remote_write(
                r.counter(name, Some(serde_json::json!({ "add": delta })), Consistency::Local).await,
            ),
        }
    }

    /// Set a counter, cluster-wide; the value.
    pub async fn counter_set(&self, name: &str, value: i64) -> Result<i64> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                match self.coord_write(n, CoordOp::CounterSet { name: name.into(), value }).await? {
                    CoordAnswer::Counter(v) => Ok(v),
                    other => Err(unexpected(other)),
                }
            }
            Inner::Remote(r) => self.remote_write(
                r.counter(name, Some(serde_json::json!({ "set": value })), Consistency::Local).await,
            ),
        }
    }
}
