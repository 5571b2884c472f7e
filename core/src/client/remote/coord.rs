//! The coordination primitives over hiqlite's HTTP endpoints (`http/coord.rs`): writes go to
//! the leader, reads to the nearest node; values travel as base64 inside JSON (`hiqlite_kv`).

use std::time::Duration;

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use serde_json::{json, Value as J};

use super::transport::{Call, Target};
use super::Remote;
use crate::consistency::Consistency;
use crate::error::{Error, Result};

/// Everything but unreserved characters is escaped in a path segment.
pub(super) const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn kv_path(ns: &str, key: &str) -> String {
    format!("/kv/{}/{}", utf8_percent_encode(ns, SEGMENT), utf8_percent_encode(key, SEGMENT))
}

fn ttl_query(ttl: Option<Duration>) -> String {
    ttl.map_or(String::new(), |t| format!("ttl={}ms", t.as_millis().max(1)))
}

fn level_query(c: Consistency) -> &'static str {
    match c {
        Consistency::Local => "hiqlite_kv",
        Consistency::Leader | Consistency::Linearizable => "hiqlite_kv&level=linearizable",
    }
}

fn decode(out: &[u8], what: &str) -> Result<J> {
    serde_json::from_slice(out).map_err(|e| Error::Decode(format!("{what} answer: {e}")))
}

fn value_of(v: &J) -> Result<Option<Vec<u8>>> {
    match &v["value"] {
        J::Null => Ok(None),
        J::String(s) => {
            b64().decode(s).map(Some).map_err(|e| Error::Decode(format!("value is not base64: {e}")))
        }
        other => Err(Error::Decode(format!("unexpected value {other}"))),
    }
}

impl Remote {
    pub(super) async fn coord_call(
        &self,
        method: Method,
        path: &str,
        query: String,
        body: Option<Vec<u8>>,
        read: bool,
    ) -> Result<J> {
        let out = self
            .call(Call {
                method,
                path,
                query,
                body,
                target: if read { Target::Nearest } else { Target::Leader },
                idempotent: read,
                sink: None,
            })
            .await?;
        decode(&out, path)
    }

    pub(crate) async fn kv_put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.coord_call(Method::PUT, &kv_path(ns, key), ttl_query(ttl), Some(value.to_vec()), false).await?;
        Ok(())
    }

    pub(crate) async fn kv_get(&self, ns: &str, key: &str, c: Consistency) -> Result<Option<Vec<u8>>> {
        let v = self.coord_call(Method::GET, &kv_path(ns, key), level_query(c).into(), None, true).await?;
        value_of(&v)
    }

    pub(crate) async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool> {
        let v = self.coord_call(Method::DELETE, &kv_path(ns, key), String::new(), None, false).await?;
        Ok(v["deleted"].as_bool().unwrap_or(false))
    }

    pub(crate) async fn kv_take(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let v =
            self.coord_call(Method::DELETE, &kv_path(ns, key), "take&hiqlite_kv".into(), None, false).await?;
        value_of(&v)
    }

    pub(crate) async fn kv_replace(
        &self,
        ns: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let mut body = json!({
            "expected": expected.map(|e| b64().encode(e)),
            "new": new.map(|n| b64().encode(n)),
        });
        if let Some(t) = ttl {
            body["ttl"] = J::String(format!("{}ms", t.as_millis().max(1)));
        }
        let body = serde_json::to_vec(&body).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let v = self.coord_call(Method::POST, &kv_path(ns, key), String::new(), Some(body), false).await?;
        Ok(v["swapped"].as_bool().unwrap_or(false))
    }

    pub(crate) async fn kv_limit(&self, ns: &str, max_entries: Option<u64>) -> Result<()> {
        let body = serde_json::to_vec(&json!({ "max_entries": max_entries }))
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let path = format!("/kv/{}", utf8_percent_encode(ns, SEGMENT));
        self.coord_call(Method::PUT, &path, String::new(), Some(body), false).await?;
        Ok(())
    }

    pub(crate) async fn counter(&self, name: &str, body: Option<J>, c: Consistency) -> Result<i64> {
        let path = format!("/counter/{}", utf8_percent_encode(name, SEGMENT));
        let v = match body {
            None => self.coord_call(Method::GET, &path, level_query(c).into(), None, true).await?,
            Some(b) => {
                let b = serde_json::to_vec(&b).map_err(|e| Error::InvalidRequest(e.to_string()))?;
                self.coord_call(Method::POST, &path, String::new(), Some(b), false).await?
            }
        };
        v["value"].as_i64().ok_or_else(|| Error::Decode(format!("counter answer without a value: {v}")))
    }
}

impl Remote {
    fn lock_path(name: &str, tail: &str) -> String {
        format!("/lock/{}{tail}", utf8_percent_encode(name, SEGMENT))
    }

    pub(crate) async fn lock(
        &self,
        name: &str,
        lease: Duration,
        wait: Option<Duration>,
    ) -> Result<Option<(i64, bool)>> {
        let mut q = format!("hiqlite_kv&lease={}ms", lease.as_millis().max(1));
        if let Some(w) = wait {
            q.push_str(&format!("&wait={}ms", w.as_millis()));
        }
        let v = self.coord_call(Method::POST, &Self::lock_path(name, ""), q, None, false).await?;
        if let Some(m) = v["timeout"].as_str() {
            return Err(Error::Timeout(m.to_owned()));
        }
        Ok(v["token"].as_i64().map(|t| (t, v["waited"].as_bool().unwrap_or(true))))
    }

    pub(crate) async fn lock_renew(&self, name: &str, token: i64, lease: Duration) -> Result<bool> {
        let q = format!("token={token}&lease={}ms", lease.as_millis().max(1));
        let v = self.coord_call(Method::POST, &Self::lock_path(name, "/renew"), q, None, false).await?;
        Ok(v["renewed"].as_bool().unwrap_or(false))
    }

    pub(crate) async fn lock_release(&self, name: &str, token: i64) -> Result<bool> {
        let q = format!("token={token}");
        let v = self.coord_call(Method::DELETE, &Self::lock_path(name, ""), q, None, false).await?;
        Ok(v["released"].as_bool().unwrap_or(false))
    }
}
