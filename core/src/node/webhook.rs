//! Change data capture to a webhook, as rqlite's CDC does: the leader POSTs committed row changes
//! in log order, in batches, to `change_webhook`, retrying a failed delivery with backoff until it
//! succeeds; after each success it records the cursor it reached through the log (a key/value
//! entry), so a new leader goes on from there. Delivery is at least once: a batch acknowledged by
//! the receiver just before a leader change may be sent again; `(index, seq)` tells repeats apart.

use std::time::Duration;

use futures::FutureExt as _;
use serde_json::json;

use super::{ChangeFilter, Consistency, Node};
use crate::changes::{Change, ChangeCursor};
use crate::coord::CoordOp;
use crate::error::{Error, Result};

/// Where the delivered cursor is kept (replicated).
const NS: &str = "_hiqlite";
const KEY: &str = "change_webhook_cursor";
/// Changes per POST at most.
const BATCH: usize = 500;

impl Node {
    /// Start delivering changes to the configured webhook, if any (only the leader sends).
    pub(crate) fn spawn_change_webhook(&self) {
        let Some(url) = self.inner.config.change_webhook.clone() else { return };
        let node = self.clone();
        let mut stop = self.inner.shutdown_tx.subscribe();
        tokio::spawn(async move {
            let http = match reqwest::Client::builder().timeout(Duration::from_secs(30)).build() {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!("change webhook is off: cannot build an HTTP client: {e}");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                if !node.is_leader() {
                    continue;
                }
                match node.deliver_changes(&http, &url, &mut stop).await {
                    Ok(()) => {}
                    Err(Error::ShutDown) => return,
                    Err(e) => tracing::warn!(%url, "change webhook: {e}"),
                }
            }
        });
    }

    /// Deliver from the recorded cursor while this node leads.
    async fn deliver_changes(
        &self,
        http: &reqwest::Client,
        url: &str,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<()> {
        let cursor = match self.kv_get(NS, KEY, Consistency::Linearizable).await? {
            Some(v) => String::from_utf8_lossy(&v).parse::<ChangeCursor>()?,
            None => {
                // First delivery of this cluster: everything the node keeps (a new cluster's
                // first change on).
                let from = self.changes_kept_from()?.ok_or_else(|| {
                    Error::Config("change capture is off on the leader (change_retention = 0)".into())
                })?;
                let c = ChangeCursor::from_index(from);
                self.record_delivered(c).await?;
                c
            }
        };
        let mut stream = self.changes(Some(cursor), ChangeFilter { tables: None, old: true })?;
        loop {
            if !self.is_leader() {
                return Ok(());
            }
            let first = tokio::select! {
                c = stream.next() => c?,
                // Look at leadership again now and then while nothing is written.
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = stop.changed() => return Err(Error::ShutDown),
            };
            let mut batch: Vec<Change> = vec![first];
            while batch.len() < BATCH {
                match stream.next().now_or_never() {
                    Some(c) => batch.push(c?),
                    None => break,
                }
            }
            let reached = batch.last().map(Change::cursor).unwrap_or(cursor);
            let body = json!({
                "node_id": self.inner.id,
                "cursor": reached.to_string(),
                "changes": batch.iter().map(Change::to_json).collect::<Vec<_>>(),
            });
            let body = body.to_string();
            let mut wait = Duration::from_millis(100);
            loop {
                let req = http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                match req.send().await {
                    Ok(r) if r.status().is_success() => break,
                    Ok(r) => {
                        tracing::warn!(%url, status = %r.status(), "change webhook refused a batch; retrying")
                    }
                    Err(e) => tracing::warn!(%url, "change webhook unreachable: {e}; retrying"),
                }
                if !self.is_leader() {
                    return Ok(());
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return Err(Error::ShutDown),
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            self.record_delivered(reached).await?;
        }
    }

    async fn record_delivered(&self, c: ChangeCursor) -> Result<()> {
        let op = CoordOp::KvPut {
            ns: NS.into(),
            key: KEY.into(),
            value: c.to_string().into_bytes(),
            ttl_ms: None,
        };
        self.coord(op).await.map(|_| ())
    }
}
