//! Remote mode of [`Client`](super::Client): the same API over the rqlite-compatible HTTP API, so
//! it works against hiqlite and rqlite clusters alike.
//!
//! Routing: writes and leader reads go to the known leader with `redirect`, so a follower answers
//! 301 (nothing applied) instead of forwarding, and the client learns the leader from `Location`.
//! `Local` reads go to the healthy node with the lowest observed latency. The cluster is learned
//! from `/nodes`, so one reachable address is enough to find the others.
//!
//! Retries: a request that never reached a node (connection refused, no route) is retried on
//! another node, as is anything a node refused without applying (503: no leader / not leader).
//! Reads are also retried after a lost connection or a timeout. A write that was sent but not
//! answered is never re-sent: it fails with [`Error::OutcomeUnknown`].

mod builder;
mod coord;
mod known;
mod notify;
mod sse;
mod transport;

pub(crate) use sse::{RemoteChanges, RemoteWatch};

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value as J};

pub use builder::{RemoteBuilder, RetryPolicy};
use known::{normalize, Known, Slot};
pub(crate) use notify::SseListener;
use transport::{Call, Target};

use crate::command::Migration;
use crate::consistency::{CacheRead, Consistency};
use crate::error::{Error, Result};
use crate::routing::{self, Failure, Kind};
use crate::rqlite::{self, encode_statements, parse_nodes, parse_results, parse_status, Answer};
use crate::status::{NodeInfo, Status};
use crate::value::{ExecResult, Rows, Statement};

pub(crate) struct Remote {
    http: reqwest::Client,
    auth: Option<String>,
    timeout: Duration,
    pub(crate) consistency: Consistency,
    retry: RetryPolicy,
    discover: bool,
    known: Mutex<Known>,
    /// Serializes discovery, so a burst of failures makes one `/nodes` round, not many.
    discovering: tokio::sync::Mutex<()>,
}

impl Remote {
    fn new(b: RemoteBuilder) -> Result<Remote> {
        crate::tls::install_crypto_provider();
        if b.urls.is_empty() {
            return Err(Error::Config("a remote client needs at least one node URL".into()));
        }
        let mut nodes: Vec<Slot> = Vec::new();
        for u in &b.urls {
            let url = normalize(u)?;
            if !nodes.iter().any(|s| s.url == url) {
                nodes.push(Slot { url, id: None, down_until: None, rtt_us: 0.0 });
            }
        }
        let cfg_err = |e: reqwest::Error| Error::Config(format!("cannot build the HTTP client: {e}"));
        let mut hb = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .connect_timeout(b.connect_timeout)
            .tls_danger_accept_invalid_certs(b.accept_invalid_certs);
        if let Some(pem) = &b.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(cfg_err)?;
            hb = hb.tls_certs_only(certs);
        }
        let http = hb.build().map_err(cfg_err)?;
        let auth = b.auth.map(|(u, p)| {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        });
        Ok(Remote {
            http,
            auth,
            timeout: b.timeout,
            consistency: b.consistency,
            retry: b.retry,
            discover: b.discover,
            known: Mutex::new(Known { nodes, leader: None, discovered_at: None, discovery_tried_at: None }),
            discovering: tokio::sync::Mutex::new(()),
        })
    }

    /// Base URLs of the nodes the client knows, and the leader's if known.
    /// Send statements to `/db/execute` (or `/db/request` to get rows back).
    pub(crate) async fn execute(
        &self,
        stmts: &[Statement],
        transaction: bool,
        returning: bool,
    ) -> Result<Vec<Result<ExecResult>>> {
        let q = self.data_query(if transaction { &["transaction", "raft_index"] } else { &["raft_index"] });
        let body = encode_statements(stmts)?;
        let path = if returning { "/db/request" } else { "/db/execute" };
        let out = self
            .call(Call {
                method: Method::POST,
                path,
                query: q,
                body: Some(body),
                target: Target::Leader,
                idempotent: false,
                sink: None,
            })
            .await?;
        let mut results = parse_write_results(&out)?;
        if let Some(index) = raft_index_of(&out) {
            for r in results.iter_mut().flatten() {
                if let Answer::Exec(x) = r {
                    x.log_index = Some(index);
                }
            }
        }
        if transaction {
            // rqlite stops a transaction at the first error and reports nothing after it.
            if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
                return Ok(vec![Err(e.clone())]);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.map(|o| match o {
                    Answer::Exec(x) => x,
                    Answer::Rows(rows) => ExecResult { rows, ..Default::default() },
                })
            })
            .collect())
    }

    /// Run one read (after the answering node applied `min_index`, if given).
    pub(crate) async fn query(
        &self,
        stmt: &Statement,
        consistency: Consistency,
        cache: CacheRead,
        min_index: Option<u64>,
    ) -> Result<Rows> {
        let target = match consistency {
            Consistency::Local => Target::Nearest,
            Consistency::Leader | Consistency::Linearizable => Target::Leader,
        };
        let level = format!("level={}", rqlite::Level::from(consistency).as_str());
        let cache = rqlite::cache_param(cache);
        // Read-your-writes: the answering node first waits until it applied `min_index`.
        let at = min_index.map(|i| format!("min_index={i}"));
        let mut extra = vec![level.as_str()];
        extra.extend(cache.as_deref());
        extra.extend(at.as_deref());
        self.read_one(stmt, &extra, target).await
    }

    /// One statement through `/db/query` with the flags `extra`.
    async fn read_one(&self, stmt: &Statement, extra: &[&str], target: Target) -> Result<Rows> {
        let body = encode_statements(std::slice::from_ref(stmt))?;
        let out = self
            .call(Call {
                method: Method::POST,
                path: "/db/query",
                query: self.data_query(extra),
                body: Some(body),
                target,
                idempotent: true,
                sink: None,
            })
            .await?;
        match parse_results(&out)?.into_iter().next() {
            Some(Ok(Answer::Rows(r))) => Ok(r),
            Some(Ok(Answer::Exec(x))) => Ok(x.rows),
            Some(Err(e)) => Err(e),
            None => Err(Error::Decode("the server answered a query with no result".into())),
        }
    }

    pub(crate) async fn migrate(&self, migrations: &[Migration]) -> Result<usize> {
        let body = serde_json::to_vec(migrations).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let out = self
            .call(Call {
                method: Method::POST,
                path: "/db/migrate",
                query: "hiqlite_errors".into(),
                body: Some(body),
                target: Target::Leader,
                idempotent: false,
                sink: None,
            })
            .await?;
        let v: J = serde_json::from_slice(&out).map_err(|e| Error::Decode(format!("migrate answer: {e}")))?;
        Ok(v["applied"].as_u64().unwrap_or(0) as usize)
    }

    /// Load a backup file (replacing every table) through `/db/load`.
    pub(crate) async fn restore(&self, src: &std::path::Path) -> Result<()> {
        let body = tokio::fs::read(src)
            .await
            .map_err(|e| Error::InvalidRequest(format!("cannot read {}: {e}", src.display())))?;
        let out = self
            .call(Call {
                method: Method::POST,
                path: "/db/load",
                query: self.data_query(&[]),
                body: Some(body),
                target: Target::Leader,
                idempotent: false,
                sink: None,
            })
            .await?;
        // A database file answers `{}`; a failure, one result with the error.
        if out.windows(7).any(|w| w == b"\"error\"") {
            for r in parse_write_results(&out)? {
                r?;
            }
        }
        Ok(())
    }

    pub(crate) async fn status(&self) -> Result<Status> {
        let out = self
            .call(Call {
                method: Method::GET,
                path: "/status",
                query: String::new(),
                body: None,
                target: Target::Nearest,
                idempotent: true,
                sink: None,
            })
            .await?;
        parse_status(&out)
    }

    pub(crate) async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let out = self
            .call(Call {
                method: Method::GET,
                path: "/nodes",
                query: "ver=2&nonvoters".into(),
                body: None,
                target: Target::Nearest,
                idempotent: true,
                sink: None,
            })
            .await?;
        parse_nodes(&out)
    }

    /// Wait until some node names a leader; returns its id (0 if the server does not say).
    pub(crate) async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        let deadline = self.deadline(timeout);
        let mut last = Error::NoLeader("no leader yet".into());
        loop {
            match self.discover_nodes(Duration::ZERO, deadline).await {
                Ok(list) => {
                    if let Some(l) = list.iter().find(|n| n.leader) {
                        return Ok(l.id);
                    }
                }
                Err(e @ Error::Unauthorized(_)) => return Err(e),
                Err(e) => last = e,
            }
            if !self.discover {
                // Without discovery, a status answer names the leader.
                if let Ok(Status { leader: Some(l), .. }) = self.status().await {
                    return Ok(l);
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::NoLeader(format!("no leader within {timeout:?} (last: {last})")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn remove_node(&self, id: u64) -> Result<()> {
        let body = serde_json::to_vec(&json!({ "id": id.to_string() }))
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        self.call(Call {
            method: Method::DELETE,
            path: "/remove",
            query: String::new(),
            body: Some(body),
            target: Target::Leader,
            idempotent: false,
            sink: None,
        })
        .await
        .map(|_| ())
    }

    pub(crate) async fn backup(&self, dest: &std::path::Path) -> Result<()> {
        self.call(Call {
            method: Method::GET,
            path: "/db/backup",
            query: String::new(),
            body: None,
            target: Target::Leader,
            idempotent: true,
            sink: Some(dest),
        })
        .await
        .map(|_| ())
    }

    /// Begin an interactive transaction (hiqlite servers only); returns its id and the node
    /// that holds it for this client (it forwards to the leader).
    pub(crate) async fn tx_begin(&self) -> Result<(u64, String)> {
        let call = Call {
            method: Method::POST,
            path: "/db/tx",
            query: "hiqlite_errors".into(),
            body: None,
            target: Target::Nearest,
            idempotent: false,
            sink: None,
        };
        let (out, url) = self.call_via(call, None).await?;
        let v: J = serde_json::from_slice(&out).map_err(|e| Error::Decode(format!("BEGIN answer: {e}")))?;
        let id = v["id"]
            .as_str()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| Error::Decode(format!("BEGIN answer without a transaction id: {v}")))?;
        Ok((id, url))
    }

    /// Run one statement in transaction `id` on the node `url` that holds it.
    pub(crate) async fn tx_exec(&self, url: &str, id: u64, stmt: Statement) -> Result<ExecResult> {
        let path = format!("/db/tx/{id:x}");
        let call = Call {
            method: Method::POST,
            path: &path,
            query: self.data_query(&[]),
            body: Some(encode_statements(std::slice::from_ref(&stmt))?),
            target: Target::Nearest,
            idempotent: false,
            sink: None,
        };
        let (out, _) = self.call_via(call, Some(url)).await?;
        let answer = parse_write_results(&out)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Decode("the server answered a statement with no result".into()))?;
        answer.map(|a| match a {
            Answer::Exec(x) => x,
            Answer::Rows(rows) => ExecResult { rows, ..Default::default() },
        })
    }

    /// Commit (or roll back) transaction `id` on the node `url` that holds it.
    pub(crate) async fn tx_end(&self, url: &str, id: u64, commit: bool) -> Result<()> {
        let path = format!("/db/tx/{id:x}/{}", if commit { "commit" } else { "rollback" });
        let call = Call {
            method: Method::POST,
            path: &path,
            query: "hiqlite_errors".into(),
            body: None,
            target: Target::Nearest,
            idempotent: false,
            sink: None,
        };
        self.call_via(call, Some(url)).await.map(|_| ())
    }
}

/// The results of a write: it ran, so an answer that cannot be read leaves its outcome unknown
/// (the routing rule's verdict for an undecodable write answer).
fn parse_write_results(out: &[u8]) -> Result<Vec<Result<Answer>>> {
    parse_results(out).map_err(|e| match e {
        Error::Decode(m) => routing::classify(Kind::Write, Failure::Decode(m)).into_error(),
        e => e,
    })
}

/// The `raft_index` a server put beside a write's results (hiqlite and rqlite 8 when asked).
fn raft_index_of(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Index {
        raft_index: Option<u64>,
    }
    serde_json::from_slice::<Index>(body).ok()?.raft_index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(normalize("127.0.0.1:4001").ok(), Some("http://127.0.0.1:4001".into()));
        assert_eq!(normalize("https://h:1/db/execute?x").ok(), Some("https://h:1".into()));
        assert_eq!(normalize(" http://h:2/ ").ok(), Some("http://h:2".into()));
        assert!(normalize("http://").is_err());
    }
}
