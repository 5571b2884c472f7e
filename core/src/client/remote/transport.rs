//! One remote call: where it goes, each attempt over HTTP, and what the routing rule makes of
//! each failure (retry elsewhere, follow a redirect, or fail).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::known::{lock, normalize};
use super::Remote;
use crate::error::{Error, Result};
use crate::routing::{self, transport_failure, Failure, Kind, Verdict};
use crate::rqlite;

/// Redirects followed for one request before giving up (a loop means the cluster is confused).
const MAX_REDIRECTS: u32 = 8;

/// Where a request should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// The leader (with `redirect`, so the answer says where it is).
    Leader,
    /// The fastest healthy node.
    Nearest,
}

/// One HTTP call to make.
pub(super) struct Call<'a> {
    pub(super) method: Method,
    pub(super) path: &'a str,
    pub(super) query: String,
    pub(super) body: Option<Vec<u8>>,
    pub(super) target: Target,
    /// Safe to send twice (reads): retried even after a lost answer.
    pub(super) idempotent: bool,
    /// Stream a successful answer's body into this file instead of memory.
    pub(super) sink: Option<&'a std::path::Path>,
}

/// What one exchange came to, when it did not fail.
pub(super) enum Sent {
    Done(Vec<u8>),
    /// A follower named the leader (already recorded).
    Redirected(String),
    /// A local failure (the destination file of a download).
    Local(Error),
}

/// What an attempt came to.
pub(super) enum Outcome {
    Done(Vec<u8>),
    /// A follower named the leader (already recorded): go there at once.
    Redirected,
    /// Not applied: try again (maybe elsewhere).
    Retry(Error),
    /// Final.
    Fail(Error),
}

impl Remote {
    /// The deadline of a call started now (far in the future for absurd timeouts).
    pub(super) fn deadline(&self, timeout: Duration) -> Instant {
        let now = Instant::now();
        now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
    }

    /// Make a call, routing and retrying as the module documentation says.
    pub(super) async fn call(&self, c: Call<'_>) -> Result<Vec<u8>> {
        self.call_via(c, None).await.map(|(body, _)| body)
    }

    /// [`Remote::call`], sent to `pinned` when given (a node holding a transaction) instead of
    /// the target's choice; returns the answer and the node that gave it.
    pub(super) async fn call_via(&self, c: Call<'_>, pinned: Option<&str>) -> Result<(Vec<u8>, String)> {
        let deadline = self.deadline(self.timeout);
        let mut last: Option<Error> = None;
        if self.discover && lock(&self.known).discovered_at.is_none() {
            // Best effort: a cluster that cannot be listed may still answer the call. If the
            // deadline passes before any request is sent, discovery's failure is the answer
            // (nothing was sent, so nothing was applied), not a bare timeout.
            if let Err(e) = self.discover_nodes(Duration::from_secs(1), deadline).await {
                last = Some(e);
            }
        }
        let mut attempts = 0u32;
        let mut redirects = 0u32;
        let mut backoff = self.retry.initial_backoff;
        loop {
            if Instant::now() >= deadline {
                // The last real reason beats a bare "out of time".
                return Err(
                    last.unwrap_or_else(|| Error::Timeout(format!("no answer within {:?}", self.timeout)))
                );
            }
            let url = pinned.map_or_else(|| self.pick(c.target), str::to_owned);
            let e = match self.attempt(&c, &url, deadline).await {
                Outcome::Done(body) => return Ok((body, url)),
                Outcome::Fail(e) => return Err(e),
                Outcome::Redirected if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    continue;
                }
                // Nodes pointing at each other during an election: nothing was applied, so
                // wait and try again like any other refusal.
                Outcome::Redirected => {
                    Error::NoLeader(format!("more than {MAX_REDIRECTS} redirects in a row"))
                }
                Outcome::Retry(e) => e,
            };
            redirects = 0;
            attempts += 1;
            if attempts >= self.retry.max_attempts.max(1) {
                return Err(e);
            }
            tracing::debug!(url, "remote call failed, retrying: {e}");
            last = Some(e);
            if self.discover {
                let _ = self.discover_nodes(Duration::from_millis(200), deadline).await;
            }
            let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    pub(super) async fn attempt(&self, c: &Call<'_>, url: &str, deadline: Instant) -> Outcome {
        let kind = if c.idempotent { Kind::Read } else { Kind::Write };
        let failure = match self.send(c, url, deadline).await {
            Ok(Sent::Done(body)) => return Outcome::Done(body),
            Ok(Sent::Redirected(to)) => {
                // Nothing ran; go to the named leader at once.
                return match routing::classify(kind, Failure::Redirect(to)) {
                    Verdict::Retry(_) => Outcome::Redirected,
                    Verdict::Fail(e) => Outcome::Fail(e),
                };
            }
            Ok(Sent::Local(e)) => return Outcome::Fail(e),
            Err(f) => f,
        };
        // What the failure says about the node, before what it means for the request.
        match &failure {
            Failure::ConnectFailed(_)
            | Failure::ConnectTimeout(_)
            | Failure::ConnectionLost(_)
            | Failure::TimedOut(_) => self.mark_down(url),
            Failure::Status(_, Error::NoLeader(_) | Error::NotLeader { .. } | Error::Unreachable(_)) => {
                self.forget_leader()
            }
            Failure::Status(s, _) if *s >= 500 => self.mark_down(url),
            _ => {}
        }
        match routing::classify(kind, failure) {
            Verdict::Retry(e) => Outcome::Retry(e),
            Verdict::Fail(e) => Outcome::Fail(e),
        }
    }

    /// One HTTP exchange with `url`; its failures as the routing table knows them.
    pub(super) async fn send(
        &self,
        c: &Call<'_>,
        url: &str,
        deadline: Instant,
    ) -> std::result::Result<Sent, Failure> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut full = format!("{url}{}", c.path);
        let mut q = c.query.clone();
        if c.target == Target::Leader {
            q.push_str(if q.is_empty() { "redirect" } else { "&redirect" });
        }
        if !q.is_empty() {
            full.push('?');
            full.push_str(&q);
        }
        let mut rb = self.http.request(c.method.clone(), &full).timeout(remaining);
        if let Some(a) = &self.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, a);
        }
        if let Some(b) = &c.body {
            rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone());
        }
        let started = Instant::now();
        let resp = rb.send().await.map_err(|e| transport_failure(url, &e))?;
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            return match loc.map(normalize) {
                // A follower that has not noticed the leader's death yet points at it: wait
                // for the election rather than bounce between the two.
                Some(Ok(leader)) if self.is_down(&leader) => Err(Failure::Status(
                    status.as_u16(),
                    Error::NoLeader(format!("{url} names {leader} as leader, which is down")),
                )),
                Some(Ok(leader)) => {
                    self.set_leader(&leader);
                    Ok(Sent::Redirected(leader))
                }
                _ => Err(Failure::Decode(format!("{url} answered {status} without a usable Location"))),
            };
        }
        if let (true, Some(dest)) = (status.is_success(), c.sink) {
            return match stream_to_file(resp, dest).await {
                Ok(()) => {
                    self.mark_up(url, started.elapsed());
                    Ok(Sent::Done(Vec::new()))
                }
                Err(Ok(e)) => Err(transport_failure(url, &e)),
                Err(Err(e)) => Ok(Sent::Local(e)),
            };
        }
        let body = resp.bytes().await.map_err(|e| transport_failure(url, &e))?.to_vec();
        self.mark_up(url, started.elapsed());
        if status.is_success() {
            return Ok(Sent::Done(body));
        }
        Err(Failure::Status(status.as_u16(), error_from_status(status, &body)))
    }

    pub(super) fn data_query(&self, extra: &[&str]) -> String {
        let mut q = String::from("blob_array&hiqlite_errors");
        for e in extra {
            q.push('&');
            q.push_str(e);
        }
        q
    }
}

/// Write a response body to `dest` as it arrives (through `dest.part`, renamed when complete).
/// `Err(Ok(_))`: the transfer broke (retry elsewhere); `Err(Err(_))`: the local file failed.
pub(super) async fn stream_to_file(
    mut resp: reqwest::Response,
    dest: &std::path::Path,
) -> std::result::Result<(), std::result::Result<reqwest::Error, Error>> {
    use tokio::io::AsyncWriteExt;
    let tmp = dest.with_extension("part");
    let mut f = tokio::fs::File::create(&tmp).await.map_err(|e| Err(Error::from(e)))?;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => f.write_all(&c).await.map_err(|e| Err(Error::from(e)))?,
            Ok(None) => break,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(Ok(e));
            }
        }
    }
    f.sync_all().await.map_err(|e| Err(Error::from(e)))?;
    drop(f);
    tokio::fs::rename(&tmp, dest).await.map_err(|e| Err(Error::from(e)))
}

/// What an HTTP error answer means ([`rqlite::error_from_status`]), for a reqwest status.
pub(super) fn error_from_status(status: StatusCode, body: &[u8]) -> Error {
    rqlite::error_from_status(status.as_u16(), body)
}
