//! Starting a node with its HTTP servers: the node boots (storage, Raft, bound listeners),
//! then this file serves the peer and client APIs on those listeners (over TLS when
//! configured) and lets the node form its cluster.

use std::time::Instant;

use super::api::ApiState;
use crate::config::NodeConfig;
use crate::error::Result;
use crate::node::{Listeners, Node};

impl Node {
    /// Start a node: open (or heal) storage, start Raft and the HTTP listeners, and form or join
    /// the cluster in the background. Returns once the node serves; use
    /// [`Node::wait_for_leader`] to wait until writes can be accepted.
    pub async fn start(config: NodeConfig) -> Result<Node> {
        let started = Instant::now();
        let users = match &config.auth_file {
            Some(f) => Some(super::auth::Users::load(f)?),
            None => None,
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(super::tls::server_config(c, k)?),
            _ => None,
        };
        let (node, listeners) = Node::open(config).await?;
        let handles = match serve(&node, listeners, users, tls) {
            Ok(h) => h,
            Err(e) => {
                // Release the data directory and Raft: the node never served.
                let _ = node.shutdown().await;
                return Err(e);
            }
        };
        node.attach_servers(handles);
        node.spawn_formation();
        node.spawn_watchdog();
        node.spawn_compaction();
        node.spawn_backups();
        node.spawn_expiry();
        node.spawn_change_webhook();
        node.spawn_series();
        tracing::info!(node = node.id(), took_ms = started.elapsed().as_millis() as u64, "node started");
        Ok(node)
    }
}

/// Serve the node's peer and client APIs on its listeners until it stops.
fn serve(
    node: &Node,
    listeners: Listeners,
    users: Option<super::auth::Users>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let peer_router = super::peer::router(node.clone());
    let console = listeners.api.local_addr().is_ok_and(|a| node.config().console_on(a));
    if console {
        tracing::info!(node = node.id(), "web console at {}://{}/console/", node.scheme(), node.api_addr());
    }
    let api_router = super::api::router(ApiState::new(node.clone(), users), console);
    let mut handles = Vec::new();
    for (listener, router) in [(listeners.raft, peer_router), (listeners.api, api_router)] {
        let mut rx = node.stop_signal();
        let stop = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        handles.push(match &tls {
            None => tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
                    tracing::error!("HTTP server stopped: {e}");
                }
            }),
            Some(cfg) => {
                let listener = super::tls::TlsListener::new(listener, cfg.clone())?;
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
                        tracing::error!("HTTPS server stopped: {e}");
                    }
                })
            }
        });
    }
    Ok(handles)
}
