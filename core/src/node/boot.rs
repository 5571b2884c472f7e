//! Starting a node: the data-directory lock, healing after an unclean stop, seeding from a
//! backup, opening storage, building Raft and binding the listeners. Serving the listeners is
//! the HTTP layer's job: it receives them with the node.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::SnapshotPolicy;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{propose, Node, NodeInner};
use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::peer::client::PeerClient;
use crate::raft::log_store::LogStore;
use crate::raft::network::Network;
use crate::raft::snapshot::SnapshotStore;
use crate::raft::state_machine::StateMachine;
use crate::raft::Raft;
use crate::sqlite::pool::ReadPool;
use crate::sqlite::writer::Writer;

/// The bound, not yet served, listeners of a node.
pub(crate) struct Listeners {
    /// The peer (Raft) listener.
    pub raft: TcpListener,
    /// The client API listener.
    pub api: TcpListener,
}

/// Remove the database and hiqlite's state file beside it, with their WAL and journal files.
fn remove_db_files(db: &Path) -> Result<()> {
    for file in [db.to_path_buf(), crate::sqlite::meta::state_path(db)] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = file.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::remove_file(PathBuf::from(p)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// After an unclean stop of an earlier version (no base record): rebuild the database from the
/// newest file of its snapshot directory; the log is re-applied on top.
fn heal_legacy(data_dir: &Path, db_path: &Path) -> Result<()> {
    remove_db_files(db_path)?;
    let newest = std::fs::read_dir(data_dir.join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path())
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.starts_with("snap-") && n.ends_with(".db")
        })
        // Names carry the zero-padded index first: the greatest name is the newest.
        .max();
    if let Some(snap) = newest {
        crate::sqlite::meta::seed_from(&snap, db_path, false)?;
        tracing::warn!(snapshot = %snap.display(), "state machine rebuilt from an earlier version's snapshot");
    }
    Ok(())
}

/// Lock the data directory; the flag says whether a lock file was left behind (unclean stop).
pub(super) fn acquire_lock(dir: &Path) -> Result<(File, PathBuf, bool)> {
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
/// Whether a data directory holds nothing yet: no database, no log, no vote.
fn is_empty(db_path: &Path, log_dir: &Path) -> bool {
    let has_log = std::fs::read_dir(log_dir)
        .map(|rd| rd.flatten().any(|d| d.file_name().to_string_lossy().ends_with(".seg")))
        .unwrap_or(false);
    !db_path.exists() && !has_log && !log_dir.join("vote").exists()
}

fn restore_into(backup: &Path, db_path: &Path, log_dir: &Path) -> Result<()> {
    if !is_empty(db_path, log_dir) {
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
    drop(src);
    crate::sqlite::meta::seed_from(backup, db_path, true)?;
    tracing::info!(backup = %backup.display(), "database restored from backup");
    Ok(())
}

/// With `backup.auto_restore`, a node that starts with an empty data directory, no other peers
/// and nothing to join fetches the newest backup of its destination and starts from it (sets
/// `restore_from`). Returns the fetched file, to remove once restored. A destination that cannot
/// be read stops the start: starting empty instead would soon back up an empty database.
async fn auto_restore(config: &mut NodeConfig) -> Result<Option<PathBuf>> {
    let Some(b) = config.backup.as_ref().filter(|b| b.auto_restore) else { return Ok(None) };
    let fresh = is_empty(&config.data_dir.join("db/hiqlite.db"), &config.data_dir.join("log"));
    if !fresh || config.restore_from.is_some() || config.peers.len() > 1 || !config.join.is_empty() {
        return Ok(None);
    }
    let to = config.data_dir.join("auto-restore.db");
    let _ = std::fs::remove_file(&to);
    match crate::backup::fetch_newest(b, &to).await {
        Ok(Some(obj)) => {
            tracing::info!(object = %obj.name, index = obj.index, "auto-restore: starting from the newest backup");
            config.restore_from = Some(to.clone());
            Ok(Some(to))
        }
        Ok(None) => {
            tracing::info!(destination = %b.destination, "auto-restore: no backup yet; starting empty");
            Ok(None)
        }
        Err(e) => Err(Error::Config(format!("auto-restore from {} failed: {e}", b.destination))),
    }
}

/// The peer client, over TLS when the node serves TLS.
fn peer_client(config: &NodeConfig, source: Option<std::net::IpAddr>) -> Result<PeerClient> {
    match (&config.tls_cert, &config.tls_ca) {
        (None, _) => PeerClient::new(&config.secret, None, false, source),
        (Some(cert), ca) => {
            let ca = ca.as_ref().unwrap_or(cert);
            let pem = std::fs::read(ca)
                .map_err(|e| Error::Config(format!("cannot read CA file {}: {e}", ca.display())))?;
            PeerClient::new(&config.secret, Some(&pem), config.tls_insecure, source)
        }
    }
}

fn raft_config(config: &NodeConfig) -> Result<openraft::Config> {
    openraft::Config {
        cluster_name: "hiqlite".into(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_timeout_min_ms,
        election_timeout_max: config.election_timeout_max_ms,
        // Per chunk; the last one includes the install, which swaps a synced file in.
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: config.log_keep_after_snapshot,
        snapshot_max_chunk_size: 4 * 1024 * 1024,
        max_payload_entries: 4096,
        purge_batch_size: 1,
        ..Default::default()
    }
    .validate()
    .map_err(|e| Error::Config(format!("raft settings: {e}")))
}

impl Node {
    /// Open a node: lock and (if needed) heal or seed its data directory, open storage, build
    /// Raft and bind the listeners. The caller serves the listeners, then calls
    /// [`Node::form_cluster`].
    pub(crate) async fn open(mut config: NodeConfig) -> Result<(Node, Listeners)> {
        config.validate()?;
        let started = Instant::now();
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Config(format!("cannot create data dir {}: {e}", config.data_dir.display()))
        })?;
        let (lock_file, lock_path, unclean) = acquire_lock(&config.data_dir)?;
        let fetched = auto_restore(&mut config).await?;

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
        log.set_trace_id(config.node_id);
        if config.backup.is_some() {
            // Purged segments wait there for the backup task (point-in-time restore).
            log.keep_purged()?;
        }
        let db_dir = config.data_dir.join("db");
        std::fs::create_dir_all(&db_dir)?;
        let db_path = db_dir.join("hiqlite.db");
        if let Some(backup) = &config.restore_from {
            restore_into(backup, &db_path, &config.data_dir.join("log"))?;
        }
        if let Some(f) = fetched {
            let _ = std::fs::remove_file(f);
        }
        let startup = if config.restore_from.is_some() {
            "restored"
        } else if unclean {
            if crate::sqlite::base::read(&db_path)?.is_none() {
                heal_legacy(&config.data_dir, &db_path)?;
            }
            // Otherwise the writer replays the log onto the last snapshot (`sqlite/base.rs`).
            tracing::warn!(node = config.node_id, "unclean shutdown detected: the log will be re-applied");
            "healed"
        } else if db_path.exists() {
            "clean"
        } else {
            "new"
        };
        let restoring = config.restore_from.is_some();
        let cache = Arc::new(crate::cache::QueryCache::new(config.cache.clone()));
        let writer = Writer::start(&db_path, cache.clone())?;
        // Before the log is replayed onto it, so replayed entries are captured too.
        writer.capture_changes(config.change_retention).await?;
        let snapshots = Arc::new(SnapshotStore::new(db_path.clone(), writer.opened_point.clone()));
        // Snapshot files of an earlier version: the main file is the snapshot now.
        let old_snapshots = config.data_dir.join("snapshots");
        if old_snapshots.exists() {
            std::fs::remove_dir_all(&old_snapshots)?;
        }
        let (applied, _) = writer.applied();
        tracing::info!(
            node = config.node_id,
            startup,
            applied = ?applied,
            took_ms = started.elapsed().as_millis() as u64,
            "state machine opened"
        );

        // Peer traffic leaves from the address the Raft listener is bound to (when it is a
        // specific one), so peers, firewalls and the fault-injection proxies see who it is.
        let source = raft_listener.local_addr().ok().map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
        let peers = peer_client(&config, source)?;
        let mut sm =
            StateMachine::new(writer.clone(), snapshots.clone(), config.node_id, config.snapshot_bytes);
        // A cut log tail can leave the database ahead of the log. openraft then purges the log up
        // to the applied index, which it only accepts when a snapshot covers that far: make one.
        let applied_id = writer.applied().0.map(crate::raft::LogId::from);
        let (last_log, _) = log.bounds();
        let snap_last = snapshots.current().and_then(|p| p.applied.0).map(crate::raft::LogId::from);
        if applied_id.is_some() && last_log < applied_id && snap_last < applied_id {
            tracing::warn!(?applied_id, ?last_log, "database is ahead of the log; snapshotting it");
            use openraft::RaftSnapshotBuilder;
            sm.build_snapshot().await.map_err(Error::storage)?;
        }
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config(&config)?),
            Network { client: peers.clone(), me: config.node_id },
            log.clone(),
            sm,
        )
        .await
        .map_err(Error::raft)?;

        let (shutdown_tx, _) = watch::channel(false);
        let proposer = propose::Proposer::start(
            raft.clone(),
            Duration::from_millis(config.request_timeout_ms),
            propose::FkInit { applied: writer.foreign_keys.clone(), initial: config.foreign_keys },
        );
        let backup_status = config.backup.as_ref().map(|b| crate::backup::BackupStatus {
            destination: b.destination.clone(),
            ..Default::default()
        });
        let inner = Arc::new(NodeInner {
            proposer,
            tx: Default::default(),
            activity: Default::default(),
            id: config.node_id,
            reads: ReadPool::new(
                db_path.clone(),
                config.read_pool_size,
                writer.foreign_keys.clone(),
                writer.generation.clone(),
            ),
            state_reads: ReadPool::new(
                crate::sqlite::meta::state_path(&db_path),
                2,
                writer.foreign_keys.clone(),
                writer.generation.clone(),
            ),
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
            last_leader_contact_us: Default::default(),
            shutdown_tx,
            servers: Mutex::new(Vec::new()),
            lock: Mutex::new(Some((lock_file, lock_path))),
            stopped: tokio::sync::Mutex::new(false),
            backup_status: Mutex::new(backup_status),
        });
        let node = Node { inner };
        tracing::info!(
            node = node.inner.id,
            raft = %node.inner.raft_addr,
            api = %node.inner.api_addr,
            took_ms = started.elapsed().as_millis() as u64,
            "node opened"
        );
        Ok((node, Listeners { raft: raft_listener, api: api_listener }))
    }
}
