//! What a remote client knows of the cluster: its nodes (given and discovered through
//! `/nodes`), which are down for a while, their latency, and the leader; and picking a node for
//! a request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::transport::error_from_status;
use super::transport::Target;
use super::Remote;
use crate::error::{Error, Result};
use crate::rqlite::parse_nodes;
use crate::status::NodeInfo;

/// How long a node that failed is skipped before it is tried again.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// A node the client knows of.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:4001`.
    pub(super) url: String,
    pub(super) id: Option<u64>,
    pub(super) down_until: Option<Instant>,
    /// Smoothed latency of answered requests, in microseconds (0: not measured yet).
    pub(super) rtt_us: f64,
}

#[derive(Debug, Default)]
pub(super) struct Known {
    pub(super) nodes: Vec<Slot>,
    pub(super) leader: Option<String>,
    pub(super) discovered_at: Option<Instant>,
    pub(super) discovery_tried_at: Option<Instant>,
}

pub(super) fn normalize(url: &str) -> Result<String> {
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

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The state is a cache of the cluster's shape; a panic elsewhere cannot leave it invalid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Remote {
    pub(crate) fn known_nodes(&self) -> (Vec<String>, Option<String>) {
        let k = lock(&self.known);
        (k.nodes.iter().map(|s| s.url.clone()).collect(), k.leader.clone())
    }

    pub(super) fn pick(&self, target: Target) -> String {
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

    pub(super) fn add_node(k: &mut Known, url: &str, id: Option<u64>) {
        match k.nodes.iter_mut().find(|s| s.url == url) {
            Some(s) => {
                if id.is_some() {
                    s.id = id;
                }
            }
            None => k.nodes.push(Slot { url: url.to_string(), id, down_until: None, rtt_us: 0.0 }),
        }
    }

    pub(super) fn mark_down(&self, url: &str) {
        let mut k = lock(&self.known);
        if k.leader.as_deref() == Some(url) {
            k.leader = None;
        }
        if let Some(s) = k.nodes.iter_mut().find(|s| s.url == url) {
            s.down_until = Some(Instant::now() + DOWN_FOR);
        }
    }

    pub(super) fn is_down(&self, url: &str) -> bool {
        let now = Instant::now();
        lock(&self.known).nodes.iter().any(|s| s.url == url && s.down_until.is_some_and(|t| t > now))
    }

    pub(super) fn mark_up(&self, url: &str, rtt: Duration) {
        let mut k = lock(&self.known);
        if let Some(s) = k.nodes.iter_mut().find(|s| s.url == url) {
            s.down_until = None;
            let us = rtt.as_secs_f64() * 1e6;
            s.rtt_us = if s.rtt_us == 0.0 { us } else { 0.8 * s.rtt_us + 0.2 * us };
        }
    }

    pub(super) fn forget_leader(&self) {
        lock(&self.known).leader = None;
    }

    pub(super) fn set_leader(&self, url: &str) {
        let mut k = lock(&self.known);
        Self::add_node(&mut k, url, None);
        k.leader = Some(url.to_string());
    }

    /// Learn the cluster from `/nodes` of the first node that answers. Concurrent callers share
    /// one round; a round (successful or not) younger than `fresh` is not repeated, and none
    /// runs past `deadline`.
    pub(super) async fn discover_nodes(&self, fresh: Duration, deadline: Instant) -> Result<Vec<NodeInfo>> {
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

    pub(super) async fn fetch_nodes(&self, url: &str, timeout: Duration) -> Result<Vec<NodeInfo>> {
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
}
