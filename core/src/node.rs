//! A running node: storage, Raft, HTTP listeners, cluster formation, and the write/read paths
//! (with transparent forwarding to the leader).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::SnapshotPolicy;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, PeerClient, PeerError};
use crate::raft::state_machine::{SnapshotStore, StateMachine};
use crate::raft::{Command, LogId, Member, Raft, Response};
use crate::sqlite::pool::ReadPool;
use crate::sqlite::writer::Writer;
use crate::value::{Params, Rows};

pub use crate::consistency::Consistency;

/// A snapshot of a node's state, for humans and health checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub id: u64,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    /// The current leader, if known.
    pub leader: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Last index in the log.
    pub last_log_index: Option<u64>,
    /// Last index applied to SQLite.
    pub applied_index: Option<u64>,
    /// Index of the newest snapshot.
    pub snapshot_index: Option<u64>,
    /// Snapshots received from a leader and installed since start.
    pub snapshots_installed: u64,
    /// Snapshots built locally since start.
    pub snapshots_built: u64,
    /// Voters and learners: id -> (raft address, api address).
    pub members: BTreeMap<u64, Member>,
    /// Ids of the voters.
    pub voters: Vec<u64>,
    /// Raft address this node listens on.
    pub raft_addr: String,
    /// API address this node listens on.
    pub api_addr: String,
    /// How the state machine was opened: `clean`, `healed`, or `new`.
    pub startup: String,
    /// The applied index recorded in the database when this node started.
    pub applied_index_at_start: Option<u64>,
    /// Log entries applied to SQLite since this node started.
    pub entries_applied_since_start: u64,
    /// False when Raft stopped on a fatal error (e.g. its storage failed); see `error`.
    pub healthy: bool,
    /// Why the node is unhealthy.
    pub error: Option<String>,
}

/// A member of the cluster as seen from one node (`GET /nodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: u64,
    /// Base URL of its client API, e.g. `http://10.0.0.1:4001`.
    pub api_addr: String,
    /// Address of its peer (Raft) listener.
    pub raft_addr: String,
    /// True for voters, false for learners.
    pub voter: bool,
    /// True if it is the leader, as the answering node knows it.
    pub leader: bool,
    /// Whether the answering node could reach it.
    pub reachable: bool,
    /// Round trip of the reachability probe.
    pub rtt: Option<Duration>,
    /// Why it is unreachable.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClusterInfo {
    pub initialized: bool,
    pub leader: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JoinRequest {
    pub id: u64,
    pub member: Member,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueryRequest {
    pub sql: String,
    pub params: Params,
}

pub(crate) struct NodeInner {
    pub id: u64,
    pub config: NodeConfig,
    pub raft: Raft,
    pub log: LogStore,
    pub writer: Arc<Writer>,
    pub snapshots: Arc<SnapshotStore>,
    pub reads: ReadPool,
    pub cache: Arc<crate::cache::QueryCache>,
    pub peers: PeerClient,
    pub raft_addr: String,
    pub api_addr: String,
    pub startup: String,
    /// Users of the client API when Basic auth is on.
    pub users: Option<crate::http::auth::Users>,
    /// When this node last heard from a leader (ms since the Unix epoch), for `freshness`.
    pub last_leader_contact_ms: std::sync::atomic::AtomicU64,
    /// Sequence numbers of queued writes (`/db/execute?queue`).
    pub queue_seq: std::sync::atomic::AtomicU64,
    /// Client API request counters.
    pub api_metrics: crate::http::metrics::ApiMetrics,
    /// True until a node started from a backup has snapshotted it (joins wait until then).
    restoring: std::sync::atomic::AtomicBool,
    proposer: tokio::sync::mpsc::UnboundedSender<Proposal>,
    shutdown_tx: watch::Sender<bool>,
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    lock: Mutex<Option<(File, PathBuf)>>,
    stopped: tokio::sync::Mutex<bool>,
}

/// A running hiqlite node. Clones share the node.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

fn remove_db_files(db: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn acquire_lock(dir: &Path) -> Result<(File, PathBuf, bool)> {
    let path = dir.join("hiqlite.lock");
    let existed = path.exists();
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Config(format!(
                "data directory {} is in use by another hiqlite process (lock held on {})",
                dir.display(),
                path.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
    }
    use std::io::Write;
    let mut f = &file;
    let _ = f.write_all(format!("{}\n", std::process::id()).as_bytes());
    let _ = file.sync_all();
    Ok((file, path, existed))
}

/// Seed a pristine node's database from a backup file. The backup's Raft metadata belongs to the
/// cluster it came from and is dropped: the data becomes the initial state of a new cluster.
fn restore_into(backup: &Path, db_path: &Path, log_dir: &Path) -> Result<()> {
    let has_log = std::fs::read_dir(log_dir)
        .map(|rd| rd.flatten().any(|d| d.file_name().to_string_lossy().ends_with(".seg")))
        .unwrap_or(false);
    if db_path.exists() || has_log || log_dir.join("vote").exists() {
        return Err(Error::Config("restoring from a backup needs an empty data directory".into()));
    }
    let src = rusqlite::Connection::open_with_flags(backup, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| Error::Config(format!("cannot open backup {}: {e}", backup.display())))?;
    let ok: String = src
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| Error::Config(format!("{} is not a usable SQLite database: {e}", backup.display())))?;
    if ok != "ok" {
        return Err(Error::Config(format!("backup {} fails its integrity check: {ok}", backup.display())));
    }
    let mut dst = rusqlite::Connection::open(db_path)?;
    {
        let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
        if b.step(-1)? != rusqlite::backup::StepResult::Done {
            return Err(Error::Storage("restore copy did not complete".into()));
        }
    }
    dst.execute_batch("DROP TABLE IF EXISTS _hiqlite_meta; PRAGMA journal_mode=WAL;")?;
    drop(dst);
    std::fs::File::open(db_path)?.sync_all()?;
    tracing::info!(backup = %backup.display(), "database restored from backup");
    Ok(())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn raft_err<E: std::fmt::Display>(e: E) -> Error {
    Error::raft(e)
}

type Proposal = (Command, tokio::sync::oneshot::Sender<Proposed>);

/// What became of a proposal.
enum Proposed {
    /// Proposed; this is the outcome.
    Done(Result<Response>),
    /// Never proposed (this node is not the leader): the command comes back for a retry.
    Refused(Command, Option<u64>),
}

/// Most proposals in flight at once; while they are busy, new ones queue and go out together.
const PROPOSALS_IN_FLIGHT: usize = 4;
/// Most client commands in one log entry.
const MAX_BATCH: usize = 1024;
/// Most statement bytes in one log entry (past the first command).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

fn command_size(c: &Command) -> usize {
    match c {
        Command::Execute { stmts, .. } => stmts
            .iter()
            .map(|s| {
                s.sql.len()
                    + match &s.params {
                        Params::None => 0,
                        Params::Positional(v) => v.iter().map(crate::Value::size).sum(),
                        Params::Named(v) => v.iter().map(|(k, v)| k.len() + v.size()).sum(),
                    }
            })
            .sum(),
        Command::Migrate { migrations, .. } => migrations.iter().map(|m| m.sql.len()).sum(),
        Command::Batch(cmds) => cmds.iter().map(command_size).sum(),
    }
}

/// openraft 0.9's core appends and fsyncs one client write at a time, so group commit has to
/// happen before it: this task gathers the commands that arrive while earlier proposals are in
/// flight into one `Command::Batch` entry, and answers each caller from the batch response.
async fn proposer(raft: Raft, mut rx: tokio::sync::mpsc::UnboundedReceiver<Proposal>, timeout: Duration) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PROPOSALS_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let mut size = command_size(&first.0);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && size < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    size += command_size(&p.0);
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch, timeout).await;
            drop(permit);
        });
    }
}

async fn propose(raft: &Raft, batch: Vec<Proposal>, timeout: Duration) {
    let (leader, me) = {
        let m = raft.metrics();
        let m = m.borrow();
        (m.current_leader, m.id)
    };
    if leader != Some(me) {
        // Never proposed: the caller may safely try the new leader.
        for (cmd, tx) in batch {
            let _ = tx.send(Proposed::Refused(cmd, leader));
        }
        return;
    }
    let (mut cmds, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
    let single = cmds.len() == 1;
    let mut cmd = match cmds.pop() {
        Some(c) if single => c,
        Some(c) => {
            cmds.push(c);
            Command::Batch(cmds)
        }
        None => return,
    };
    cmd.stamp();
    let r = match tokio::time::timeout(timeout, raft.client_write(cmd)).await {
        Err(_) => Err(Error::OutcomeUnknown(format!("write not confirmed within {timeout:?}"))),
        Ok(Ok(r)) => Ok(r.data),
        // openraft also answers ForwardToLeader for an entry that was appended and later cut
        // from this node's log; another node may still commit it, so it is not safe to retry.
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(Error::OutcomeUnknown(
            format!("leadership moved to {:?} while the write was in flight", f.leader_id),
        )),
        Ok(Err(RaftError::Fatal(openraft::error::Fatal::Stopped))) => Err(Error::ShutDown),
        Ok(Err(e)) => Err(raft_err(e)),
    };
    match r {
        Ok(resp) if single => {
            if let Some(tx) = waiters.into_iter().next() {
                let _ = tx.send(Proposed::Done(Ok(resp)));
            }
        }
        Ok(resp) => {
            let mut answers = resp.batch.into_iter();
            for tx in waiters {
                let a = answers
                    .next()
                    .ok_or_else(|| Error::Storage("batch response is missing an answer".into()));
                let _ = tx.send(Proposed::Done(a));
            }
        }
        Err(e) => {
            for tx in waiters {
                let _ = tx.send(Proposed::Done(Err(e.clone())));
            }
        }
    }
}

impl Node {
    /// Start a node: open (or heal) storage, start Raft and the HTTP listeners, and form or join
    /// the cluster in the background. Returns once the node serves; use
    /// [`Node::wait_for_leader`] to wait until writes can be accepted.
    pub async fn start(config: NodeConfig) -> Result<Node> {
        config.validate()?;
        let started = Instant::now();
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Config(format!("cannot create data dir {}: {e}", config.data_dir.display()))
        })?;
        let (lock_file, lock_path, unclean) = acquire_lock(&config.data_dir)?;

        let raft_listener = TcpListener::bind(&config.raft_addr)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on raft_addr {}: {e}", config.raft_addr)))?;
        let api_listener = TcpListener::bind(&config.api_addr)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on api_addr {}: {e}", config.api_addr)))?;
        // What other nodes and clients are told: the advertised address, else the bound one.
        let raft_addr = config.raft_advertise.clone().unwrap_or(raft_listener.local_addr()?.to_string());
        let api_addr = config.api_advertise.clone().unwrap_or(api_listener.local_addr()?.to_string());

        let log = LogStore::open(config.data_dir.join("log"), config.log_segment_bytes)?;
        let snapshots = Arc::new(SnapshotStore::open(config.data_dir.join("snapshots"))?);
        let db_dir = config.data_dir.join("db");
        std::fs::create_dir_all(&db_dir)?;
        let db_path = db_dir.join("hiqlite.db");
        if let Some(backup) = &config.restore_from {
            restore_into(backup, &db_path, &config.data_dir.join("log"))?;
        }
        let startup = if config.restore_from.is_some() {
            "restored"
        } else if unclean {
            // The previous process died: SQLite ran with synchronous=OFF and its recorded
            // last_applied is stale. Rebuild from the newest snapshot; openraft re-applies the log.
            remove_db_files(&db_path)?;
            if let Some((meta, snap)) = snapshots.current() {
                std::fs::copy(&snap, &db_path)?;
                tracing::warn!(
                    node = config.node_id,
                    snapshot = ?meta.last_log_id,
                    "unclean shutdown detected: state machine rebuilt from snapshot, log will be re-applied"
                );
            } else {
                tracing::warn!(
                    node = config.node_id,
                    "unclean shutdown detected: state machine rebuilt from the log"
                );
            }
            "healed"
        } else if db_path.exists() {
            "clean"
        } else {
            "new"
        };
        let restoring = config.restore_from.is_some();
        let users = match &config.auth_file {
            Some(f) => Some(crate::http::auth::Users::load(f)?),
            None => None,
        };
        let cache = Arc::new(crate::cache::QueryCache::new(config.cache.clone()));
        let writer = Writer::start(&db_path, cache.clone())?;
        let (applied, _) = writer.applied();
        tracing::info!(
            node = config.node_id,
            startup,
            applied = ?applied,
            took_ms = started.elapsed().as_millis() as u64,
            "state machine opened"
        );

        let raft_config = openraft::Config {
            cluster_name: "hiqlite".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            install_snapshot_timeout: 10_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.log_keep_after_snapshot,
            snapshot_max_chunk_size: 4 * 1024 * 1024,
            max_payload_entries: 4096,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Config(format!("raft settings: {e}")))?;
        // Peer traffic leaves from the address the Raft listener is bound to (when it is a
        // specific one), so peers, firewalls and the fault-injection proxies see who it is.
        let source = raft_listener.local_addr().ok().map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
        let peers = match (&config.tls_cert, &config.tls_ca) {
            (None, _) => PeerClient::with_tls(&config.secret, None, false, source)?,
            (Some(cert), ca) => {
                let ca = ca.as_ref().unwrap_or(cert);
                let pem = std::fs::read(ca)
                    .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", ca.display())))?;
                PeerClient::with_tls(&config.secret, Some(&pem), config.tls_insecure, source)?
            }
        };
        let mut sm = StateMachine::new(writer.clone(), snapshots.clone());
        // A cut log tail can leave the database ahead of the log. openraft then purges the log up
        // to the applied index, which it only accepts when a snapshot covers that far: make one.
        let applied_id = writer.applied().0;
        let (last_log, _) = log.bounds();
        let snap_last = snapshots.current().and_then(|(m, _)| m.last_log_id);
        if applied_id.is_some() && last_log < applied_id && snap_last < applied_id {
            tracing::warn!(?applied_id, ?last_log, "database is ahead of the log; snapshotting it");
            use openraft::RaftSnapshotBuilder;
            sm.build_snapshot().await.map_err(Error::storage)?;
        }
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            Network { client: peers.clone() },
            log.clone(),
            sm,
        )
        .await
        .map_err(raft_err)?;

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (proposer_tx, proposer_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(proposer(raft.clone(), proposer_rx, Duration::from_millis(config.request_timeout_ms)));
        let inner = Arc::new(NodeInner {
            proposer: proposer_tx,
            id: config.node_id,
            reads: ReadPool::new(db_path.clone(), config.read_pool_size),
            cache,
            config,
            raft,
            log,
            writer,
            snapshots,
            peers,
            raft_addr,
            api_addr,
            startup: startup.to_string(),
            restoring: std::sync::atomic::AtomicBool::new(restoring),
            api_metrics: Default::default(),
            last_leader_contact_ms: Default::default(),
            queue_seq: Default::default(),
            users,
            shutdown_tx,
            servers: Mutex::new(Vec::new()),
            lock: Mutex::new(Some((lock_file, lock_path))),
            stopped: tokio::sync::Mutex::new(false),
        });
        let node = Node { inner };
        let peer_router = crate::http::peer::router(node.clone());
        let api_router = crate::http::api::router(node.clone());
        let tls = match (&node.inner.config.tls_cert, &node.inner.config.tls_key) {
            (Some(c), Some(k)) => Some(crate::tls::server_config(c, k)?),
            _ => None,
        };
        let mut handles = Vec::new();
        for (listener, router) in [(raft_listener, peer_router), (api_listener, api_router)] {
            let mut rx = shutdown_rx.clone();
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
                    let listener = crate::tls::TlsListener::new(listener, cfg.clone())?;
                    tokio::spawn(async move {
                        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
                            tracing::error!("HTTPS server stopped: {e}");
                        }
                    })
                }
            });
        }
        *node.inner.servers.lock().unwrap_or_else(|p| p.into_inner()) = handles;

        let n2 = node.clone();
        tokio::spawn(async move { n2.form_cluster().await });
        tracing::info!(
            node = node.inner.id,
            raft = %node.inner.raft_addr,
            api = %node.inner.api_addr,
            took_ms = started.elapsed().as_millis() as u64,
            "node started"
        );
        Ok(node)
    }

    fn me(&self) -> Member {
        Member { raft_addr: self.inner.raft_addr.clone(), api_addr: self.inner.api_addr.clone() }
    }

    async fn form_cluster(&self) {
        let cfg = &self.inner.config;
        let mut rx = self.inner.shutdown_tx.subscribe();
        if matches!(self.inner.raft.is_initialized().await, Ok(true)) {
            return;
        }
        if !cfg.join.is_empty() {
            let req = JoinRequest { id: self.inner.id, member: self.me() };
            let mut delay = Duration::from_millis(100);
            loop {
                for addr in &cfg.join {
                    let r: Result<Result<(), Error>, PeerError> =
                        self.inner.peers.post(addr, "/cluster/join", &req, Duration::from_secs(30)).await;
                    match r {
                        Ok(Ok(())) => {
                            tracing::info!(node = self.inner.id, via = %addr, "joined the cluster");
                            return;
                        }
                        Ok(Err(e)) => tracing::info!("join via {addr} not yet possible: {e}"),
                        Err(e) => tracing::debug!("join via {addr}: {e}"),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = rx.wait_for(|v| *v) => return,
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        let members: BTreeMap<u64, Member> = if cfg.peers.is_empty() {
            BTreeMap::from([(self.inner.id, self.me())])
        } else {
            cfg.peers
                .iter()
                .map(|p| (p.id, Member { raft_addr: p.raft_addr.clone(), api_addr: p.api_addr.clone() }))
                .collect()
        };
        // Exactly one member bootstraps: the lowest id. It refuses if any peer already belongs to
        // an initialized cluster (e.g. this node lost its data and came back empty).
        if members.keys().next() != Some(&self.inner.id) {
            return;
        }
        for (id, m) in &members {
            if *id == self.inner.id {
                continue;
            }
            let r: Result<ClusterInfo, PeerError> =
                self.inner.peers.post(&m.raft_addr, "/cluster/info", &(), Duration::from_millis(500)).await;
            if let Ok(info) = r {
                if info.initialized {
                    tracing::info!(
                        node = self.inner.id,
                        peer = id,
                        "cluster already initialized; not bootstrapping"
                    );
                    return;
                }
            }
        }
        match self.inner.raft.initialize(members).await {
            Ok(()) => tracing::info!(node = self.inner.id, "bootstrapped a new cluster"),
            Err(e) => tracing::info!(node = self.inner.id, "not bootstrapping: {e}"),
        }
        if cfg.restore_from.is_some() {
            // The restored data is not in the log: snapshot it and purge the log before anyone
            // joins, so that every other node receives it as a snapshot.
            let r = async {
                self.wait_for_leader(self.timeout()).await?;
                self.snapshot().await?;
                if let Some(i) = self.inner.snapshots.current().and_then(|(m, _)| m.last_log_id) {
                    self.inner.raft.trigger().purge_log(i.index).await.map_err(raft_err)?;
                    let mut rx = self.inner.raft.metrics();
                    let _ = tokio::time::timeout(
                        self.timeout(),
                        rx.wait_for(|m| m.purged.is_some_and(|p| p.index >= i.index)),
                    )
                    .await;
                }
                Ok::<(), Error>(())
            }
            .await;
            match r {
                Ok(()) => tracing::info!(
                    node = self.inner.id,
                    "restored data snapshotted; ready for members to join"
                ),
                Err(e) => tracing::error!(node = self.inner.id, "could not snapshot the restored data: {e}"),
            }
        }
        self.inner.restoring.store(false, Ordering::Release);
    }

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

    fn leader_member(&self, id: u64) -> Option<Member> {
        let m = self.inner.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&id).cloned()
    }

    /// Milliseconds since this node last heard from the leader (0 on the leader).
    pub(crate) fn ms_since_leader_contact(&self) -> Option<u64> {
        if self.is_leader() {
            return Some(0);
        }
        let last = self.inner.last_leader_contact_ms.load(Ordering::Relaxed);
        if last == 0 {
            return None;
        }
        Some(now_ms().saturating_sub(last))
    }

    /// API address of a member.
    pub(crate) fn leader_api_addr(&self, id: u64) -> Option<String> {
        self.leader_member(id).map(|m| m.api_addr)
    }

    /// True when `sql` is one statement that only reads (checked by preparing it).
    pub(crate) fn is_read_only(&self, sql: &str) -> bool {
        // The statement cache makes the check free for the repeated SQL of an application.
        self.inner
            .reads
            .with(|c| Ok(c.prepare_cached(sql).map(|s| s.readonly()).unwrap_or(false)))
            .unwrap_or(false)
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
            members: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
            voters: membership.voter_ids().collect(),
            raft_addr: self.inner.raft_addr.clone(),
            api_addr: self.inner.api_addr.clone(),
            startup: self.inner.startup.clone(),
            applied_index_at_start: self.inner.writer.applied_at_open.map(|l| l.index),
            entries_applied_since_start: self.inner.writer.entries_applied.load(Ordering::Relaxed),
            healthy: m.running_state.is_ok(),
            error: m.running_state.as_ref().err().map(|e| e.to_string()),
        }
    }

    /// The cluster's members as this node knows them, each probed over the peer API (up to 2 s)
    /// to report whether it is reachable from here.
    pub async fn nodes(&self) -> Vec<NodeInfo> {
        let st = &self.status();
        let scheme = self.inner.peers.scheme();
        let probes = st.members.iter().map(|(id, m)| async move {
            let t = std::time::Instant::now();
            let error = if *id == st.id {
                None
            } else {
                let r: std::result::Result<ClusterInfo, crate::raft::network::PeerError> =
                    self.inner.peers.post(&m.raft_addr, "/cluster/info", &(), Duration::from_secs(2)).await;
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

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.request_timeout_ms)
    }

    /// Propose a command on this node, which must be the leader. Concurrent proposals are
    /// gathered into one log entry by the proposer task.
    pub(crate) async fn write_as_leader(&self, cmd: Command) -> Result<Response> {
        match self.propose(cmd).await? {
            Proposed::Done(r) => r,
            Proposed::Refused(_, leader) => Err(Error::NotLeader { leader }),
        }
    }

    async fn propose(&self, cmd: Command) -> Result<Proposed> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.proposer.send((cmd, tx)).map_err(|_| Error::ShutDown)?;
        rx.await.map_err(|_| Error::ShutDown)
    }

    /// Replicate a command through the leader, forwarding from a follower. Retries only while it
    /// is certain the command was not applied (no leader yet, leader changed before accepting).
    pub(crate) async fn write(&self, cmd: Command) -> Result<Response> {
        let deadline = Instant::now() + self.timeout();
        let mut last_err = Error::NoLeader("no leader elected".into());
        let mut cmd = cmd;
        loop {
            if Instant::now() >= deadline {
                return Err(match last_err {
                    Error::NotLeader { .. } | Error::Unreachable(_) => Error::NoLeader(last_err.to_string()),
                    e => e,
                });
            }
            match self.leader() {
                Some(id) if id == self.inner.id => match self.propose(cmd).await? {
                    Proposed::Done(r) => return r,
                    Proposed::Refused(back, leader) => {
                        cmd = back;
                        last_err = Error::NotLeader { leader };
                    }
                },
                Some(id) => {
                    let Some(m) = self.leader_member(id) else {
                        last_err = Error::NoLeader(format!("leader {id} is not in the membership"));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let r: Result<Result<Response, Error>, PeerError> =
                        self.inner.peers.post(&m.raft_addr, "/cluster/write", &cmd, self.timeout()).await;
                    match r {
                        Ok(Ok(resp)) => return Ok(resp),
                        Ok(Err(e @ Error::NotLeader { .. })) => last_err = e,
                        Ok(Err(e)) => return Err(e),
                        Err(PeerError::Unreachable(a)) => last_err = Error::Unreachable(a),
                        Err(e) => return Err(Error::OutcomeUnknown(e.to_string())),
                    }
                }
                None => {}
            }
            let mut rx = self.inner.raft.metrics();
            let current = self.leader();
            let _ = tokio::time::timeout(
                Duration::from_millis(50),
                rx.wait_for(|m| m.current_leader.is_some() && m.current_leader != current),
            )
            .await;
        }
    }

    /// Read with the requested consistency.
    pub(crate) async fn query(&self, sql: &str, params: &Params, consistency: Consistency) -> Result<Rows> {
        match consistency {
            Consistency::Local => {
                // A local read never waits on anything; without this a tight loop of reads
                // would never yield and could starve the Raft tasks on the same worker.
                tokio::task::consume_budget().await;
                self.inner.reads.query(sql, params)
            }
            Consistency::Linearizable => {
                self.wait_linearizable().await?;
                self.inner.reads.query(sql, params)
            }
            Consistency::Leader => {
                let deadline = Instant::now() + self.timeout();
                loop {
                    match self.leader() {
                        Some(id) if id == self.inner.id => return self.inner.reads.query(sql, params),
                        Some(id) => {
                            if let Some(m) = self.leader_member(id) {
                                let req = QueryRequest { sql: sql.to_owned(), params: params.clone() };
                                let r: Result<Result<Rows, Error>, PeerError> = self
                                    .inner
                                    .peers
                                    .post(&m.raft_addr, "/cluster/query", &req, self.timeout())
                                    .await;
                                match r {
                                    Ok(Ok(rows)) => return Ok(rows),
                                    Ok(Err(Error::NotLeader { .. })) | Err(PeerError::Unreachable(_)) => {}
                                    Ok(Err(e)) => return Err(e),
                                    Err(e) => return Err(Error::Unreachable(e.to_string())),
                                }
                            }
                        }
                        None => {}
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::NoLeader("no leader to serve the read".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Wait until this node has applied everything committed before now (read index).
    async fn wait_linearizable(&self) -> Result<()> {
        if let Some(l) = self.read_index().await? {
            let applied = self.inner.writer.applied().0;
            if applied.is_none_or(|a| a.index < l.index) {
                self.inner
                    .raft
                    .wait(Some(self.timeout()))
                    .applied_index_at_least(Some(l.index), "linearizable read")
                    .await
                    .map_err(|e| Error::Timeout(format!("waiting to apply the read index: {e}")))?;
            }
        }
        Ok(())
    }

    /// Read through the query cache: consistency is established first (a linearizable read
    /// still waits for the read index), then a live cached result is served, else SQLite is
    /// read and the result stored. Non-cacheable queries and reads forwarded to the leader
    /// bypass the cache.
    pub(crate) async fn query_cached(
        &self,
        sql: &str,
        params: &Params,
        consistency: Consistency,
        ttl: Option<Duration>,
    ) -> Result<Rows> {
        let cache = &self.inner.cache;
        if !cache.enabled() || (consistency == Consistency::Leader && !self.is_leader()) {
            return self.query(sql, params, consistency).await;
        }
        if consistency == Consistency::Linearizable {
            self.wait_linearizable().await?;
        } else {
            tokio::task::consume_budget().await;
        }
        // The epoch comes first: anything learned or read after it is checked against it.
        let epoch = cache.epoch();
        let info = match cache.info(sql) {
            Some(i) => i,
            None => {
                let i = crate::sqlite::learn_query(self.inner.reads.path(), sql)?;
                cache.learn(sql, i.clone(), epoch);
                i
            }
        };
        if !info.cacheable {
            return self.inner.reads.query(sql, params);
        }
        if let Some(rows) = cache.get(sql, params) {
            return Ok((*rows).clone());
        }
        let rows = self.inner.reads.query(sql, params)?;
        cache.put(
            sql,
            params,
            &info.tables,
            Arc::new(rows.clone()),
            ttl.unwrap_or(cache.default_ttl()),
            epoch,
        );
        Ok(rows)
    }

    /// Hand leadership away: stop heartbeats so that the followers' leader leases lapse, and ask
    /// `target` to campaign until some other node leads. Runs on the leader.
    pub(crate) async fn step_down(&self, target: u64, target_raft_addr: &str) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let rc = self.inner.raft.runtime_config();
        rc.heartbeat(false);
        // Leases must lapse first: allow several election timeouts.
        let budget =
            self.timeout().max(Duration::from_millis(10 * self.inner.config.election_timeout_max_ms));
        let deadline = Instant::now() + budget;
        let mut result = Err(Error::Timeout("leadership did not move".into()));
        while Instant::now() < deadline {
            let _: std::result::Result<std::result::Result<(), Error>, PeerError> =
                self.inner.peers.post(target_raft_addr, "/cluster/elect", &(), Duration::from_secs(2)).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            if self.leader().is_some_and(|l| l != self.inner.id) {
                result = Ok(());
                break;
            }
        }
        rc.heartbeat(true);
        tracing::info!(node = self.inner.id, target, ok = result.is_ok(), "leadership transfer");
        result
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

    /// The leader's read index: leadership confirmed by a quorum; asked of the leader when this
    /// node is a follower.
    pub(crate) async fn read_index(&self) -> Result<Option<LogId>> {
        let deadline = Instant::now() + self.timeout();
        loop {
            match self.leader() {
                Some(id) if id == self.inner.id => match self.inner.raft.get_read_log_id().await {
                    Ok((read, _applied)) => return Ok(read),
                    Err(RaftError::APIError(_)) => {}
                    Err(e) => return Err(raft_err(e)),
                },
                Some(id) => {
                    if let Some(m) = self.leader_member(id) {
                        let r: Result<Result<Option<LogId>, Error>, PeerError> = self
                            .inner
                            .peers
                            .post(&m.raft_addr, "/cluster/read_index", &(), self.timeout())
                            .await;
                        match r {
                            Ok(Ok(l)) => return Ok(l),
                            Ok(Err(Error::NotLeader { .. })) | Err(PeerError::Unreachable(_)) => {}
                            Ok(Err(e)) => return Err(e),
                            Err(e) => return Err(Error::Unreachable(e.to_string())),
                        }
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::NoLeader("no leader to confirm a linearizable read".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Add a node as learner, wait for it to catch up, then make it a voter. Runs on the leader.
    pub(crate) async fn add_member(&self, id: u64, member: Member) -> Result<()> {
        if self.inner.restoring.load(Ordering::Acquire) {
            return Err(Error::NoLeader("the node is still seeding its restored data; retry".into()));
        }
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let current = self.inner.raft.metrics().borrow().membership_config.clone();
        let voters: BTreeSet<u64> = current.membership().voter_ids().collect();
        if voters.contains(&id) {
            return Ok(());
        }
        self.inner.raft.add_learner(id, member, true).await.map_err(|e| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                Error::NotLeader { leader: f.leader_id }
            }
            e => raft_err(e),
        })?;
        let mut add = BTreeSet::new();
        add.insert(id);
        self.inner.raft.change_membership(openraft::ChangeMembers::AddVoterIds(add), false).await.map_err(
            |e| match e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                    Error::NotLeader { leader: f.leader_id }
                }
                e => raft_err(e),
            },
        )?;
        tracing::info!(node = id, "member added as voter");
        Ok(())
    }

    /// Remove a node from the cluster (voter and learner). Runs on the leader.
    pub(crate) async fn remove_member(&self, id: u64) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let map = |e: RaftError<u64, ClientWriteError<u64, Member>>| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                Error::NotLeader { leader: f.leader_id }
            }
            e => raft_err(e),
        };
        let ids = BTreeSet::from([id]);
        let current = self.inner.raft.metrics().borrow().membership_config.clone();
        if current.membership().voter_ids().any(|v| v == id) {
            self.inner
                .raft
                .change_membership(openraft::ChangeMembers::RemoveVoters(ids.clone()), false)
                .await
                .map_err(map)?;
        }
        let current = self.inner.raft.metrics().borrow().membership_config.clone();
        if current.membership().get_node(&id).is_some() {
            self.inner
                .raft
                .change_membership(openraft::ChangeMembers::RemoveNodes(ids), false)
                .await
                .map_err(map)?;
        }
        tracing::info!(node = id, "member removed");
        Ok(())
    }

    /// Forward a membership request to the leader if needed.
    pub(crate) async fn via_leader<T, F, Fut>(&self, path: &str, body: &impl Serialize, local: F) -> Result<T>
    where
        T: serde::de::DeserializeOwned,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.timeout();
        loop {
            match self.leader() {
                Some(id) if id == self.inner.id => match local().await {
                    Err(Error::NotLeader { .. }) => {}
                    other => return other,
                },
                Some(id) => {
                    if let Some(m) = self.leader_member(id) {
                        let r: Result<Result<T, Error>, PeerError> =
                            self.inner.peers.post(&m.raft_addr, path, body, Duration::from_secs(60)).await;
                        match r {
                            Ok(Err(Error::NotLeader { .. })) | Err(PeerError::Unreachable(_)) => {}
                            Ok(r) => return r,
                            Err(e) => return Err(Error::OutcomeUnknown(e.to_string())),
                        }
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::NoLeader("no leader for a membership change".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Write a consistent online copy of the database to `dest` (a standalone SQLite file
    /// holding the applied log id and membership in `_hiqlite_meta`). Writes go on meanwhile.
    /// Returns the log index the copy reflects.
    pub async fn backup(&self, dest: &Path) -> Result<Option<u64>> {
        if dest.exists() {
            return Err(Error::InvalidRequest(format!(
                "{} exists; refusing to overwrite it",
                dest.display()
            )));
        }
        let pinned = self.inner.writer.pin().await?;
        let index = pinned.applied.0.map(|l| l.index);
        let tmp = dest.with_extension("partial");
        let tmp2 = tmp.clone();
        tokio::task::spawn_blocking(move || crate::sqlite::writer::copy_pinned(&pinned, &tmp2))
            .await
            .map_err(Error::storage)??;
        std::fs::rename(&tmp, dest)?;
        Ok(index)
    }

    /// Trigger a snapshot now and wait until it is built.
    pub async fn snapshot(&self) -> Result<()> {
        let before = self.inner.snapshots.built.load(Ordering::Relaxed);
        self.inner.raft.trigger().snapshot().await.map_err(raft_err)?;
        let deadline = Instant::now() + self.timeout();
        while self.inner.snapshots.built.load(Ordering::Relaxed) == before {
            if Instant::now() >= deadline {
                return Err(Error::Timeout("snapshot not built in time".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
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
