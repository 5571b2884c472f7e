//! A running node: the [`Node`] handle, its state, status and shutdown. The jobs a node does
//! live in the files beside this one: `boot` (lock, heal, restore, Raft, listeners), `propose`
//! (group commit), `read` (local, leader, linearizable, cached reads), `membership` (formation,
//! joins, removals, leadership transfer), `leader` (the one forwarding rule), `rpc` (what it
//! answers to peers), `maintenance` (backups, snapshots, dumps), `overview` (every member's
//! status side by side) and `series` (the node's own activity over the last minutes).

mod backups;
mod boot;
mod changes;
mod compaction;
mod coord;
mod leader;
mod live;
mod maintenance;
mod membership;
mod notify;
mod overview;
mod propose;
mod read;
mod recover;
mod rpc;
mod series;
mod tx;
mod watchdog;
mod webhook;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::command::Member;
use crate::config::NodeConfig;
pub(crate) use crate::consistency::Consistency;
use crate::error::{Error, Result};
use crate::peer::client::PeerClient;
use crate::raft::log_store::LogStore;
use crate::raft::snapshot::SnapshotStore;
use crate::raft::Raft;
use crate::sqlite::pool::ReadPool;
use crate::sqlite::writer::Writer;
pub use crate::status::{NodeInfo, Status};
pub(crate) use boot::Listeners;
pub(crate) use changes::{ChangeFilter, NodeChanges};
pub(crate) use live::NodeWatch;
pub(crate) use notify::NodeListener;
pub use recover::{recover, Recovered};

/// The next message of a node's broadcast, or `Error::ShutDown` once the node stops (its
/// broadcasts never close while the node's handle keeps a sender, so the stop signal is what
/// ends a waiting reader). `Ok(None)`: the reader fell behind the bounded buffer.
pub(crate) async fn recv_or_stop<T: Clone>(
    rx: &mut tokio::sync::broadcast::Receiver<T>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<T>> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        if *stop.borrow() {
            return Err(Error::ShutDown);
        }
        tokio::select! {
            r = rx.recv() => return match r {
                Ok(m) => Ok(Some(m)),
                Err(RecvError::Lagged(_)) => Ok(None),
                Err(RecvError::Closed) => Err(Error::ShutDown),
            },
            // Turned true: checked at the top of the loop.
            changed = stop.changed() => if changed.is_err() {
                return Err(Error::ShutDown);
            },
        }
    }
}

struct NodeInner {
    id: u64,
    config: NodeConfig,
    raft: Raft,
    log: LogStore,
    writer: Arc<Writer>,
    snapshots: Arc<SnapshotStore>,
    reads: ReadPool,
    /// Read-only connections to hiqlite's state file (key/value entries, counters).
    state_reads: ReadPool,
    cache: Arc<crate::cache::QueryCache>,
    peers: PeerClient,
    raft_addr: String,
    api_addr: String,
    startup: String,
    /// When this node last heard from a leader (µs since the Unix epoch), for `freshness`.
    last_leader_contact_us: AtomicU64,
    /// True until a node started from a backup has snapshotted it (joins wait until then).
    restoring: AtomicBool,
    proposer: Arc<propose::Proposer>,
    /// The write gate and the open interactive transaction.
    tx: tx::TxState,
    /// What clients asked of this node, and its time series.
    activity: series::Activity,
    shutdown_tx: watch::Sender<bool>,
    /// Tasks serving this node's listeners (handed over by whoever serves them).
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    lock: Mutex<Option<(File, PathBuf)>>,
    stopped: tokio::sync::Mutex<bool>,
    /// Scheduled backups' progress (`None`: not configured).
    backup_status: Mutex<Option<crate::backup::BackupStatus>>,
}

/// A running hiqlite node. Clones share the node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("raft_addr", &self.inner.raft_addr)
            .field("api_addr", &self.inner.api_addr)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

impl Node {
    /// This node's id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Address of the peer (Raft) listener.
    pub fn raft_addr(&self) -> &str {
        &self.inner.raft_addr
    }

    /// Address of the client API listener.
    pub fn api_addr(&self) -> &str {
        &self.inner.api_addr
    }

    /// The configuration the node was started with.
    pub(crate) fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// `http` or `https`: how this cluster's listeners are reached.
    pub(crate) fn scheme(&self) -> &'static str {
        self.inner.peers.scheme()
    }

    /// A stop signal that turns true when the node shuts down (for the servers of its listeners).
    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown_tx.subscribe()
    }

    /// Hand over the tasks serving this node's listeners; shutdown waits for them.
    pub(crate) fn attach_servers(&self, handles: Vec<tokio::task::JoinHandle<()>>) {
        self.inner.servers.lock().unwrap_or_else(|p| p.into_inner()).extend(handles);
    }

    /// The current leader's id, as this node knows it.
    pub fn leader(&self) -> Option<u64> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// True if this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.inner.id)
    }

    /// Wait until a leader is known (up to `timeout`) and return its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        let mut rx = self.inner.raft.metrics();
        let r = tokio::time::timeout(timeout, rx.wait_for(|m| m.current_leader.is_some())).await;
        match r {
            Ok(Ok(m)) => m.current_leader.ok_or_else(|| Error::NoLeader("no leader elected".into())),
            Ok(Err(_)) => Err(Error::ShutDown),
            Err(_) => Err(Error::NoLeader(format!("no leader elected within {timeout:?}"))),
        }
    }

    /// The addresses of a member, if it is one.
    pub(crate) fn member(&self, id: u64) -> Option<Member> {
        let m = self.inner.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&id).cloned()
    }

    /// How long since this node last heard from the leader (zero on the leader).
    pub(crate) fn since_leader_contact(&self) -> Option<Duration> {
        if self.is_leader() {
            return Some(Duration::ZERO);
        }
        let last = self.inner.last_leader_contact_us.load(Ordering::Relaxed);
        if last == 0 {
            return None;
        }
        Some(Duration::from_micros(now_us().saturating_sub(last)))
    }

    /// Status of this node.
    pub fn status(&self) -> Status {
        let m = self.inner.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        Status {
            id: self.inner.id,
            state: format!("{:?}", m.state),
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: self.inner.writer.applied().0.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            snapshots_installed: self.inner.snapshots.installed.load(Ordering::Relaxed),
            snapshots_built: self.inner.snapshots.built.load(Ordering::Relaxed),
            snapshot_build_ms: self.inner.snapshots.last_build_ms.load(Ordering::Relaxed),
            members: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
            voters: membership.voter_ids().collect(),
            role: if membership.voter_ids().any(|v| v == self.inner.id) {
                "voter".into()
            } else if membership.get_node(&self.inner.id).is_some() {
                "learner".into()
            } else {
                String::new()
            },
            raft_addr: self.inner.raft_addr.clone(),
            api_addr: self.inner.api_addr.clone(),
            startup: self.inner.startup.clone(),
            applied_index_at_start: self.inner.writer.applied_at_open.map(|l| l.index),
            entries_applied_since_start: self.inner.writer.entries_applied.load(Ordering::Relaxed),
            healthy: m.running_state.is_ok(),
            error: m.running_state.as_ref().err().map(|e| e.to_string()),
            backup: self.backup_status(),
        }
    }

    /// The cluster's members as this node knows them, each probed over the peer API (up to 2 s)
    /// to report whether it is reachable from here.
    pub async fn nodes(&self) -> Vec<NodeInfo> {
        let st = &self.status();
        let scheme = self.scheme();
        let probes = st.members.iter().map(|(id, m)| async move {
            let t = std::time::Instant::now();
            let error = if *id == st.id {
                None
            } else {
                let r = self
                    .inner
                    .peers
                    .call::<crate::peer::Info>(&m.raft_addr, &(), Duration::from_secs(2))
                    .await;
                r.err().map(|e| e.to_string())
            };
            NodeInfo {
                id: *id,
                api_addr: format!("{scheme}://{}", m.api_addr),
                raft_addr: m.raft_addr.clone(),
                voter: st.voters.contains(id),
                leader: st.leader == Some(*id),
                reachable: error.is_none(),
                rtt: error.is_none().then(|| t.elapsed()),
                error,
            }
        });
        futures::future::join_all(probes).await
    }

    /// The deadline of one request (`request_timeout_ms`).
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.request_timeout_ms)
    }

    /// A counter of state-machine commits: odd while one is being applied, even otherwise. Two
    /// equal even readings bracket reads that all saw the same applied state.
    pub fn apply_seq(&self) -> u64 {
        self.inner.writer.apply_seq.load(Ordering::Acquire)
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
        self.inner.cache.stats()
    }

    /// Empty this node's query cache.
    pub fn cache_clear(&self) {
        self.inner.cache.invalidate_all();
    }

    /// Stop gracefully: leave Raft, persist the applied log id, flush the log, release the data
    /// directory. Idempotent.
    pub async fn shutdown(&self) -> Result<()> {
        let mut stopped = self.inner.stopped.lock().await;
        if *stopped {
            return Ok(());
        }
        *stopped = true;
        let _ = self.inner.shutdown_tx.send(true);
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
        let handles: Vec<_> =
            std::mem::take(&mut *self.inner.servers.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        let r = self.inner.writer.shutdown().await;
        self.inner.log.close().await;
        self.inner.reads.clear();
        if r.is_ok() {
            let lock = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some((file, path)) = lock {
                let _ = std::fs::remove_file(&path);
                drop(file);
            }
        }
        tracing::info!(node = self.inner.id, "node stopped");
        r
    }
}
