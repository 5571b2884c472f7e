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

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as J};

use crate::command::Migration;
use crate::consistency::{CacheRead, Consistency};
use crate::error::{Error, Result};
use crate::routing::{self, transport_failure, Failure, Kind, Verdict};
use crate::rqlite::{self, encode_statements, parse_nodes, parse_results, parse_status, Answer};
use crate::status::{NodeInfo, Status};
use crate::value::{ExecResult, Rows, Statement};

/// How long a node that failed is skipped before it is tried again.
const DOWN_FOR: Duration = Duration::from_secs(2);
/// Redirects followed for one request before giving up (a loop means the cluster is confused).
const MAX_REDIRECTS: u32 = 8;

/// When and how often a remote client retries a request that was not applied.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 = never retry). The client's timeout bounds
    /// the whole sequence too.
    pub max_attempts: u32,
    /// Pause before the first retry; doubled after each failed attempt.
    pub initial_backoff: Duration,
    /// Upper bound of the pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Enough to ride out a leader election (about a second with the default timings).
        RetryPolicy {
            max_attempts: 20,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
        }
    }
}

/// Builder of a remote [`Client`](super::Client); see [`Client::remote`](super::Client::remote).
#[derive(Debug, Clone)]
pub struct RemoteBuilder {
    urls: Vec<String>,
    auth: Option<(String, String)>,
    ca_pem: Option<Vec<u8>>,
    accept_invalid_certs: bool,
    timeout: Duration,
    connect_timeout: Duration,
    consistency: Consistency,
    retry: RetryPolicy,
    discover: bool,
}

impl RemoteBuilder {
    pub(crate) fn new(urls: Vec<String>) -> Self {
        RemoteBuilder {
            urls,
            auth: None,
            ca_pem: None,
            accept_invalid_certs: false,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            consistency: Consistency::Leader,
            retry: RetryPolicy::default(),
            discover: true,
        }
    }

    /// HTTP Basic credentials (for servers started with a users file).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Trust these PEM CA certificates (instead of none) for `https://` URLs.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Accept any server certificate. For tests only: it disables authentication of the server.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.accept_invalid_certs = yes;
        self
    }

    /// Deadline of one call, retries included (default 10 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Deadline of one TCP (and TLS) connect (default 2 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Consistency of [`Client::query`](super::Client::query) and the other calls that take no
    /// level. Default: [`Consistency::Leader`] (rqlite's `weak`), so a client reads its own
    /// writes; [`Consistency::Local`] reads the nearest node instead.
    pub fn consistency(mut self, c: Consistency) -> Self {
        self.consistency = c;
        self
    }

    /// Retry policy (see [`RetryPolicy`]).
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }

    /// Learn the other nodes from `/nodes` (default on). Off: only the given URLs (and leaders
    /// named by redirects) are used, e.g. behind a load balancer.
    pub fn discover(mut self, yes: bool) -> Self {
        self.discover = yes;
        self
    }

    /// Build the client. No connection is made until the first call.
    pub fn build(self) -> Result<super::Client> {
        Ok(super::Client::from_remote(Remote::new(self)?))
    }
}

/// A node the client knows of.
#[derive(Debug, Clone)]
struct Slot {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:4001`.
    url: String,
    id: Option<u64>,
    down_until: Option<Instant>,
    /// Smoothed latency of answered requests, in microseconds (0: not measured yet).
    rtt_us: f64,
}

#[derive(Debug, Default)]
struct Known {
    nodes: Vec<Slot>,
    leader: Option<String>,
    discovered_at: Option<Instant>,
    discovery_tried_at: Option<Instant>,
}

/// Where a request should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The leader (with `redirect`, so the answer says where it is).
    Leader,
    /// The fastest healthy node.
    Nearest,
}

/// One HTTP call to make.
struct Call<'a> {
    method: Method,
    path: &'a str,
    query: String,
    body: Option<Vec<u8>>,
    target: Target,
    /// Safe to send twice (reads): retried even after a lost answer.
    idempotent: bool,
    /// Stream a successful answer's body into this file instead of memory.
    sink: Option<&'a std::path::Path>,
}

/// What one exchange came to, when it did not fail.
enum Sent {
    Done(Vec<u8>),
    /// A follower named the leader (already recorded).
    Redirected(String),
    /// A local failure (the destination file of a download).
    Local(Error),
}

/// What an attempt came to.
enum Outcome {
    Done(Vec<u8>),
    /// A follower named the leader (already recorded): go there at once.
    Redirected,
    /// Not applied: try again (maybe elsewhere).
    Retry(Error),
    /// Final.
    Fail(Error),
}

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

fn normalize(url: &str) -> Result<String> {
    let u = url.trim();
    let with_scheme = if u.contains("://") { u.to_string() } else { format!("http://{u}") };
    let parsed = reqwest::Url::parse(&with_scheme)
        .map_err(|e| Error::Config(format!("invalid node URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!("node URL {url:?} must be http:// or https://")));
    }
    let host = parsed.host_str().filter(|h| !h.is_empty());
    let host = host.ok_or_else(|| Error::Config(format!("node URL {url:?} has no host")))?;
    Ok(match parsed.port() {
        Some(p) => format!("{}://{host}:{p}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The state is a cache of the cluster's shape; a panic elsewhere cannot leave it invalid.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    pub(crate) fn known_nodes(&self) -> (Vec<String>, Option<String>) {
        let k = lock(&self.known);
        (k.nodes.iter().map(|s| s.url.clone()).collect(), k.leader.clone())
    }

    fn pick(&self, target: Target) -> String {
        let mut k = lock(&self.known);
        if target == Target::Leader {
            if let Some(l) = &k.leader {
                return l.clone();
            }
        }
        let now = Instant::now();
        let healthy = |s: &&Slot| s.down_until.is_none_or(|t| t <= now);
        // Unmeasured nodes count as fast, so each gets measured; ties keep the given order.
        let best = k
            .nodes
            .iter()
            .filter(healthy)
            .min_by(|a, b| a.rtt_us.total_cmp(&b.rtt_us))
            .map(|s| s.url.clone());
        match best {
            Some(u) => u,
            None => {
                // Everything failed recently: forget that and start over.
                for s in &mut k.nodes {
                    s.down_until = None;
                }
                k.nodes[0].url.clone()
            }
        }
    }

    fn add_node(k: &mut Known, url: &str, id: Option<u64>) {
        match k.nodes.iter_mut().find(|s| s.url == url) {
            Some(s) => {
                if id.is_some() {
                    s.id = id;
                }
            }
            None => k.nodes.push(Slot { url: url.to_string(), id, down_until: None, rtt_us: 0.0 }),
        }
    }

    fn mark_down(&self, url: &str) {
        let mut k = lock(&self.known);
        if k.leader.as_deref() == Some(url) {
            k.leader = None;
        }
        if let Some(s) = k.nodes.iter_mut().find(|s| s.url == url) {
            s.down_until = Some(Instant::now() + DOWN_FOR);
        }
    }

    fn is_down(&self, url: &str) -> bool {
        let now = Instant::now();
        lock(&self.known).nodes.iter().any(|s| s.url == url && s.down_until.is_some_and(|t| t > now))
    }

    fn mark_up(&self, url: &str, rtt: Duration) {
        let mut k = lock(&self.known);
        if let Some(s) = k.nodes.iter_mut().find(|s| s.url == url) {
            s.down_until = None;
            let us = rtt.as_secs_f64() * 1e6;
            s.rtt_us = if s.rtt_us == 0.0 { us } else { 0.8 * s.rtt_us + 0.2 * us };
        }
    }

    fn forget_leader(&self) {
        lock(&self.known).leader = None;
    }

    fn set_leader(&self, url: &str) {
        let mut k = lock(&self.known);
        Self::add_node(&mut k, url, None);
        k.leader = Some(url.to_string());
    }

    /// Learn the cluster from `/nodes` of the first node that answers. Concurrent callers share
    /// one round; a round (successful or not) younger than `fresh` is not repeated, and none
    /// runs past `deadline`.
    async fn discover_nodes(&self, fresh: Duration, deadline: Instant) -> Result<Vec<NodeInfo>> {
        let _g = self.discovering.lock().await;
        if !self.discover {
            return Ok(Vec::new());
        }
        if lock(&self.known).discovery_tried_at.is_some_and(|t| t.elapsed() < fresh) {
            return Ok(Vec::new());
        }
        lock(&self.known).discovery_tried_at = Some(Instant::now());
        let urls: Vec<String> = {
            let k = lock(&self.known);
            let now = Instant::now();
            let mut v: Vec<&Slot> = k.nodes.iter().collect();
            v.sort_by_key(|s| s.down_until.is_some_and(|t| t > now));
            v.into_iter().map(|s| s.url.clone()).collect()
        };
        let mut last = Error::Unreachable("no node URL to ask".into());
        for url in urls {
            let remaining = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(5));
            if remaining.is_zero() {
                break;
            }
            match self.fetch_nodes(&url, remaining).await {
                Ok(list) => {
                    let mut k = lock(&self.known);
                    for n in &list {
                        if let Ok(u) = normalize(&n.api_addr) {
                            Self::add_node(&mut k, &u, Some(n.id));
                            if n.leader && n.reachable {
                                k.leader = Some(u);
                            }
                        }
                    }
                    k.discovered_at = Some(Instant::now());
                    return Ok(list);
                }
                // The node answered: it is up, it just will not list the cluster (no `status`
                // permission, a proxy without /nodes...). Ask the next one.
                Err(e @ (Error::Unauthorized(_) | Error::InvalidRequest(_))) => last = e,
                Err(e) => {
                    self.mark_down(&url);
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn fetch_nodes(&self, url: &str, timeout: Duration) -> Result<Vec<NodeInfo>> {
        let t = Instant::now();
        let mut rb = self.http.get(format!("{url}/nodes?ver=2&nonvoters")).timeout(timeout);
        if let Some(a) = &self.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, a);
        }
        let resp = rb.send().await.map_err(|e| Error::Unreachable(format!("{url}: {e}")))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| Error::Unreachable(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(error_from_status(status, &body));
        }
        self.mark_up(url, t.elapsed());
        parse_nodes(&body)
    }

    /// The deadline of a call started now (far in the future for absurd timeouts).
    fn deadline(&self, timeout: Duration) -> Instant {
        let now = Instant::now();
        now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
    }

    /// Make a call, routing and retrying as the module documentation says.
    async fn call(&self, c: Call<'_>) -> Result<Vec<u8>> {
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
            let url = self.pick(c.target);
            let e = match self.attempt(&c, &url, deadline).await {
                Outcome::Done(body) => return Ok(body),
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

    async fn attempt(&self, c: &Call<'_>, url: &str, deadline: Instant) -> Outcome {
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
    async fn send(&self, c: &Call<'_>, url: &str, deadline: Instant) -> std::result::Result<Sent, Failure> {
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

    fn data_query(&self, extra: &[&str]) -> String {
        let mut q = String::from("blob_array&hiqlite_errors");
        for e in extra {
            q.push('&');
            q.push_str(e);
        }
        q
    }

    /// Send statements to `/db/execute` (or `/db/request` to get rows back).
    pub(crate) async fn execute(
        &self,
        stmts: &[Statement],
        transaction: bool,
        returning: bool,
    ) -> Result<Vec<Result<ExecResult>>> {
        let q = self.data_query(if transaction { &["transaction"] } else { &[] });
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
        // The write ran; an answer that cannot be read leaves its outcome unknown.
        let results = parse_results(&out).map_err(|e| match e {
            Error::Decode(m) => routing::classify(Kind::Write, Failure::Decode(m)).into_error(),
            e => e,
        })?;
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

    /// Run one read.
    pub(crate) async fn query(
        &self,
        stmt: &Statement,
        consistency: Consistency,
        cache: CacheRead,
    ) -> Result<Rows> {
        let target = match consistency {
            Consistency::Local => Target::Nearest,
            Consistency::Leader | Consistency::Linearizable => Target::Leader,
        };
        let level = format!("level={}", rqlite::Level::from(consistency).as_str());
        let cache = rqlite::cache_param(cache);
        let mut extra = vec![level.as_str()];
        extra.extend(cache.as_deref());
        let body = encode_statements(std::slice::from_ref(stmt))?;
        let out = self
            .call(Call {
                method: Method::POST,
                path: "/db/query",
                query: self.data_query(&extra),
                body: Some(body),
                target,
                idempotent: true,
                sink: None,
            })
            .await?;
        match parse_results(&out)?.into_iter().next() {
            Some(Ok(Answer::Rows(r))) => Ok(r),
            Some(Ok(Answer::Exec(_))) => Ok(Rows::default()),
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
}

/// Write a response body to `dest` as it arrives (through `dest.part`, renamed when complete).
/// `Err(Ok(_))`: the transfer broke (retry elsewhere); `Err(Err(_))`: the local file failed.
async fn stream_to_file(
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
fn error_from_status(status: StatusCode, body: &[u8]) -> Error {
    rqlite::error_from_status(status.as_u16(), body)
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
