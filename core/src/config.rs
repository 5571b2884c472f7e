//! Node configuration: from code, a TOML file, or `HIQLITE_*` environment variables.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Addresses of one cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The member's node id (unique, > 0).
    pub id: u64,
    /// `host:port` of its peer (Raft) listener.
    pub raft_addr: String,
    /// `host:port` of its client API listener.
    pub api_addr: String,
}

impl Peer {
    /// Parse `ID=RAFT_ADDR/API_ADDR` (e.g. `2=127.0.0.1:4012/127.0.0.1:4011`).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::Config(format!("peer `{s}` is not of the form ID=RAFT_ADDR/API_ADDR"));
        let (id, rest) = s.trim().split_once('=').ok_or_else(bad)?;
        let (raft, api) = rest.split_once('/').ok_or_else(bad)?;
        let id = id.trim().parse::<u64>().map_err(|_| bad())?;
        Ok(Peer { id, raft_addr: raft.trim().to_owned(), api_addr: api.trim().to_owned() })
    }
}

/// Everything a node needs to run. Defaults bind to 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id (unique in the cluster, > 0).
    pub node_id: u64,
    /// Directory for the Raft log, snapshots and the SQLite database.
    pub data_dir: PathBuf,
    /// Listen address of the peer (Raft) HTTP server. Port 0 picks a free port.
    pub raft_addr: String,
    /// Listen address of the client HTTP API. Port 0 picks a free port.
    pub api_addr: String,
    /// The voters of a new cluster, including this node. Empty means a single-node cluster of
    /// this node. The cluster is bootstrapped once, by the member with the lowest id.
    pub peers: Vec<Peer>,
    /// Raft addresses of members of a running cluster to join through (as learner, then voter;
    /// with `learner`, as a learner only).
    pub join: Vec<String>,
    /// Join as a read replica: a learner that replicates, serves reads and forwards writes, but
    /// never votes and is never promoted, so it does not weigh on the quorum. Needs `join`.
    pub learner: bool,
    /// Change data capture: about this many of the latest row changes are kept for change
    /// streams (`Client::changes`, `/db/changes`; whole log entries, pruned in steps of a
    /// sixteenth); a cursor older than what is kept is "too old". 0 (the default) captures nothing:
    /// capture costs about a fifth of the write rate at concurrency 16 and a third of bulk
    /// transactions' rows/s (ARCHITECTURE.md).
    pub change_retention: u64,
    /// Deliver committed row changes to this URL (`http://` or `https://`): the leader POSTs
    /// them in log order, in batches, retrying until the receiver answers 2xx (at least once).
    pub change_webhook: Option<String>,
    /// Shared secret every peer request must carry.
    pub secret: String,
    /// Take a snapshot every this many applied log entries.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot (lets slightly lagging followers catch up from the log).
    pub log_keep_after_snapshot: u64,
    /// Also take a snapshot when the WAL, or the log since the last snapshot, grows past this
    /// many bytes (a snapshot's cost follows what changed, see ARCHITECTURE.md). Nodes stretch
    /// it by 0–3 eighths (by id), so that replicas do not all snapshot at the same entry.
    pub snapshot_bytes: u64,
    /// Bytes of log kept behind a snapshot at most (with `log_keep_after_snapshot`, whichever
    /// keeps less).
    pub log_keep_bytes: u64,
    /// Size at which the active log segment is closed and a new one started.
    pub log_segment_bytes: u64,
    /// Raft heartbeat interval.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout. Also the leader lease: a node refuses
    /// votes for this long after it last heard from the leader, so a crashed leader is replaced
    /// about this long after its last heartbeat (default 750 ms: ≈ 0.78 s from `kill -9` to the
    /// next accepted write on this project's test machines).
    pub election_timeout_max_ms: u64,
    /// Read-only SQLite connections kept open for local reads.
    pub read_pool_size: usize,
    /// How long a write or leader read may wait for a leader / forwarding, in milliseconds.
    pub request_timeout_ms: u64,
    /// Largest request body accepted on the peer and client listeners.
    pub max_body_bytes: usize,
    /// Start a new cluster from this backup file (see `Client::backup`). Needs an empty data
    /// directory and no other initial peers; other nodes join the restored node afterwards.
    pub restore_from: Option<PathBuf>,
    /// Raft address other nodes should use to reach this one, when it differs from `raft_addr`
    /// (e.g. listening on 0.0.0.0).
    pub raft_advertise: Option<String>,
    /// API address clients should use to reach this one, when it differs from `api_addr`.
    pub api_advertise: Option<String>,
    /// rqlite-style users file (JSON) enabling Basic auth on the client API.
    pub auth_file: Option<PathBuf>,
    /// PEM certificate chain: serve both listeners over TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) trusted for peer connections (default: `tls_cert` itself, which
    /// suits a shared self-signed certificate).
    pub tls_ca: Option<PathBuf>,
    /// Do not verify peers' certificates (testing only).
    pub tls_insecure: bool,
    /// The query cache.
    pub cache: crate::cache::CacheConfig,
    /// How long a write waits for an interactive transaction that holds the database (and a
    /// transaction for another one) before it fails with `SQLITE_BUSY`.
    pub busy_timeout_ms: u64,
    /// An interactive transaction left idle this long is rolled back (its client is gone).
    pub transaction_idle_timeout_ms: u64,
    /// Foreign-key enforcement of a new cluster (default true). This is only the initial value:
    /// the setting is the cluster's, replicated and persisted, and `PRAGMA foreign_keys = ON|OFF`
    /// changes it. The first leader to write to a cluster that never had one records its value.
    pub foreign_keys: bool,
    /// Serve the web console at `/console` on the client API: `Some(true)` always,
    /// `Some(false)` never, `None` (the default) only when the API listens on a loopback
    /// address (see [`NodeConfig::console_on`]). With `auth_file` it takes the API's users.
    pub console: Option<bool>,
    /// Scheduled backups to a directory or an S3-compatible bucket (`[backup]`; see
    /// [`crate::backup::BackupConfig`]). `HIQLITE_BACKUP_DESTINATION` turns them on.
    pub backup: Option<crate::backup::BackupConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: 1,
            data_dir: PathBuf::from("hiqlite-data"),
            raft_addr: "127.0.0.1:4002".into(),
            api_addr: "127.0.0.1:4001".into(),
            peers: Vec::new(),
            join: Vec::new(),
            learner: false,
            change_retention: 0,
            change_webhook: None,
            secret: "hiqlite-insecure-default-secret".into(),
            snapshot_every: 10_000,
            log_keep_after_snapshot: 1_000,
            snapshot_bytes: 64 * 1024 * 1024,
            log_keep_bytes: 32 * 1024 * 1024,
            log_segment_bytes: 16 * 1024 * 1024,
            heartbeat_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 750,
            read_pool_size: 8,
            request_timeout_ms: 10_000,
            max_body_bytes: 64 * 1024 * 1024,
            restore_from: None,
            raft_advertise: None,
            api_advertise: None,
            auth_file: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            tls_insecure: false,
            cache: crate::cache::CacheConfig::default(),
            busy_timeout_ms: 5_000,
            transaction_idle_timeout_ms: 30_000,
            foreign_keys: true,
            console: None,
            backup: None,
        }
    }
}

impl NodeConfig {
    /// Read a TOML file (keys as the field names above); missing keys take defaults.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text)
    }

    /// Parse TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Config(format!("invalid TOML config: {e}")))
    }

    /// Defaults overridden by `HIQLITE_*` environment variables.
    pub fn from_env() -> Result<Self> {
        Self::default().with_env()
    }

    /// Override fields from `HIQLITE_NODE_ID`, `HIQLITE_DATA_DIR`, `HIQLITE_RAFT_ADDR`,
    /// `HIQLITE_API_ADDR`, `HIQLITE_PEERS` (comma-separated `ID=RAFT/API`), `HIQLITE_JOIN`
    /// (comma-separated raft addresses), `HIQLITE_SECRET`, `HIQLITE_SNAPSHOT_EVERY`,
    /// `HIQLITE_LOG_KEEP_AFTER_SNAPSHOT`, `HIQLITE_HEARTBEAT_MS`, `HIQLITE_ELECTION_TIMEOUT_MIN_MS`,
    /// `HIQLITE_ELECTION_TIMEOUT_MAX_MS`, `HIQLITE_READ_POOL_SIZE`, `HIQLITE_REQUEST_TIMEOUT_MS`,
    /// `HIQLITE_BUSY_TIMEOUT_MS`, `HIQLITE_TRANSACTION_IDLE_TIMEOUT_MS`,
    /// `HIQLITE_FOREIGN_KEYS`, `HIQLITE_CONSOLE` (true/false, 1/0, on/off, yes/no),
    /// `HIQLITE_LEARNER`, `HIQLITE_BACKUP_DESTINATION`, `HIQLITE_BACKUP_INTERVAL_SECS`,
    /// `HIQLITE_BACKUP_KEY`.
    pub fn with_env(self) -> Result<Self> {
        self.with_vars(|k| std::env::var(k).ok())
    }

    fn with_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        fn flag(key: &str, v: &str) -> Result<bool> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => Ok(true),
                "0" | "false" | "off" | "no" => Ok(false),
                _ => Err(Error::Config(format!("{key}={v} is not true or false"))),
            }
        }
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
            v.trim().parse().map_err(|_| Error::Config(format!("{key}={v} is not a valid number")))
        }
        if let Some(v) = get("HIQLITE_NODE_ID") {
            self.node_id = num("HIQLITE_NODE_ID", &v)?;
        }
        if let Some(v) = get("HIQLITE_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("HIQLITE_RAFT_ADDR") {
            self.raft_addr = v;
        }
        if let Some(v) = get("HIQLITE_API_ADDR") {
            self.api_addr = v;
        }
        if let Some(v) = get("HIQLITE_PEERS") {
            self.peers =
                v.split(',').filter(|s| !s.trim().is_empty()).map(Peer::parse).collect::<Result<_>>()?;
        }
        if let Some(v) = get("HIQLITE_JOIN") {
            self.join = v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = get("HIQLITE_SECRET") {
            self.secret = v;
        }
        if let Some(v) = get("HIQLITE_SNAPSHOT_EVERY") {
            self.snapshot_every = num("HIQLITE_SNAPSHOT_EVERY", &v)?;
        }
        if let Some(v) = get("HIQLITE_LOG_KEEP_AFTER_SNAPSHOT") {
            self.log_keep_after_snapshot = num("HIQLITE_LOG_KEEP_AFTER_SNAPSHOT", &v)?;
        }
        if let Some(v) = get("HIQLITE_SNAPSHOT_BYTES") {
            self.snapshot_bytes = num("HIQLITE_SNAPSHOT_BYTES", &v)?;
        }
        if let Some(v) = get("HIQLITE_LOG_KEEP_BYTES") {
            self.log_keep_bytes = num("HIQLITE_LOG_KEEP_BYTES", &v)?;
        }
        if let Some(v) = get("HIQLITE_HEARTBEAT_MS") {
            self.heartbeat_ms = num("HIQLITE_HEARTBEAT_MS", &v)?;
        }
        if let Some(v) = get("HIQLITE_ELECTION_TIMEOUT_MIN_MS") {
            self.election_timeout_min_ms = num("HIQLITE_ELECTION_TIMEOUT_MIN_MS", &v)?;
        }
        if let Some(v) = get("HIQLITE_ELECTION_TIMEOUT_MAX_MS") {
            self.election_timeout_max_ms = num("HIQLITE_ELECTION_TIMEOUT_MAX_MS", &v)?;
        }
        if let Some(v) = get("HIQLITE_READ_POOL_SIZE") {
            self.read_pool_size = num("HIQLITE_READ_POOL_SIZE", &v)?;
        }
        if let Some(v) = get("HIQLITE_REQUEST_TIMEOUT_MS") {
            self.request_timeout_ms = num("HIQLITE_REQUEST_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get("HIQLITE_BUSY_TIMEOUT_MS") {
            self.busy_timeout_ms = num("HIQLITE_BUSY_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get("HIQLITE_TRANSACTION_IDLE_TIMEOUT_MS") {
            self.transaction_idle_timeout_ms = num("HIQLITE_TRANSACTION_IDLE_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get("HIQLITE_FOREIGN_KEYS") {
            self.foreign_keys = flag("HIQLITE_FOREIGN_KEYS", &v)?;
        }
        if let Some(v) = get("HIQLITE_CHANGE_RETENTION") {
            self.change_retention = num("HIQLITE_CHANGE_RETENTION", &v)?;
        }
        if let Some(v) = get("HIQLITE_CHANGE_WEBHOOK") {
            self.change_webhook = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("HIQLITE_LEARNER") {
            self.learner = flag("HIQLITE_LEARNER", &v)?;
        }
        if let Some(v) = get("HIQLITE_CONSOLE") {
            self.console = Some(flag("HIQLITE_CONSOLE", &v)?);
        }
        if self.backup.is_some() || get("HIQLITE_BACKUP_DESTINATION").is_some() {
            self.backup = Some(self.backup.unwrap_or_default().with_vars(&get)?);
        }
        Ok(self)
    }

    /// Whether the web console is served, given the address the client API is bound to:
    /// `console` when set, else true only for a loopback address (an operator who opens the
    /// API to the network opts in to the console explicitly).
    pub fn console_on(&self, bound_api: std::net::SocketAddr) -> bool {
        self.console.unwrap_or_else(|| bound_api.ip().is_loopback())
    }

    /// Check the settings against each other; the message names the offending setting.
    pub fn validate(&self) -> Result<()> {
        if self.node_id == 0 {
            return Err(Error::Config("node_id must be > 0".into()));
        }
        if self.secret.len() < 8 {
            return Err(Error::Config("secret must be at least 8 bytes".into()));
        }
        if self.snapshot_bytes == 0 {
            return Err(Error::Config("snapshot_bytes must be > 0".into()));
        }
        if self.snapshot_every == 0 {
            return Err(Error::Config("snapshot_every must be > 0".into()));
        }
        if self.election_timeout_min_ms <= self.heartbeat_ms
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
        {
            return Err(Error::Config(
                "need heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms".into(),
            ));
        }
        if !self.peers.is_empty() && !self.peers.iter().any(|p| p.id == self.node_id) {
            return Err(Error::Config(format!("peers must include this node (id {})", self.node_id)));
        }
        if self.restore_from.is_some() && (self.peers.len() > 1 || !self.join.is_empty()) {
            return Err(Error::Config(
                "restore_from starts a new cluster from one node: give no other peers and no join; \
                 let the other nodes join the restored node"
                    .into(),
            ));
        }
        if let Some(b) = &self.backup {
            b.validate()?;
        }
        if let Some(u) = &self.change_webhook {
            if !(u.starts_with("http://") || u.starts_with("https://")) || reqwest::Url::parse(u).is_err() {
                return Err(Error::Config(format!(
                    "change_webhook must be an http:// or https:// URL, not `{u}`"
                )));
            }
            if self.change_retention == 0 {
                return Err(Error::Config(
                    "change_webhook needs change capture: set change_retention above 0".into(),
                ));
            }
        }
        if self.learner && (self.join.is_empty() || self.peers.len() > 1 || self.restore_from.is_some()) {
            return Err(Error::Config(
                "a learner (read replica) joins a running cluster: give `join`, and no other peers or restore".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config("tls_cert and tls_key go together".into()));
        }
        let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.peers.len() {
            return Err(Error::Config("peer ids must be unique".into()));
        }
        if ids.contains(&0) {
            return Err(Error::Config("peer ids must be > 0".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_peer_parsing() {
        let vars = [
            ("HIQLITE_NODE_ID", "2"),
            ("HIQLITE_PEERS", "1=127.0.0.1:1/127.0.0.1:2, 2=127.0.0.1:3/127.0.0.1:4"),
            ("HIQLITE_SNAPSHOT_EVERY", "50"),
            ("HIQLITE_FOREIGN_KEYS", "off"),
        ];
        let cfg = NodeConfig::default()
            .with_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
            .expect("valid env");
        assert_eq!(cfg.node_id, 2);
        assert_eq!(cfg.snapshot_every, 50);
        assert!(!cfg.foreign_keys && NodeConfig::default().foreign_keys);
        assert_eq!(
            cfg.peers[1],
            Peer { id: 2, raft_addr: "127.0.0.1:3".into(), api_addr: "127.0.0.1:4".into() }
        );
        cfg.validate().expect("valid");
        let bad = NodeConfig::default().with_vars(|k| (k == "HIQLITE_NODE_ID").then(|| "x".to_string()));
        assert!(matches!(bad, Err(Error::Config(m)) if m.contains("HIQLITE_NODE_ID")));
    }

    #[test]
    fn toml_config() {
        let cfg = NodeConfig::from_toml_str(
            "node_id = 3\nsecret = \"0123456789\"\n[[peers]]\nid = 3\nraft_addr = \"127.0.0.1:9\"\napi_addr = \"127.0.0.1:8\"\n",
        )
        .expect("valid toml");
        assert_eq!(cfg.node_id, 3);
        assert_eq!(cfg.peers.len(), 1);
        assert!(NodeConfig::from_toml_str("foreign_keys = false").is_ok_and(|c| !c.foreign_keys));
        assert!(NodeConfig::from_toml_str("nodeid = 3").is_err());
        assert!(NodeConfig::from_toml_str("console = true").is_ok_and(|c| c.console == Some(true)));
    }

    #[test]
    fn backup_settings_from_toml_and_env() {
        let cfg = NodeConfig::from_toml_str(
            "[backup]\ndestination = \"s3://b/p\"\ninterval_secs = 60\nkeep = 3\nencryption_key = \"00\"\n",
        )
        .expect("valid toml");
        let b = cfg.backup.as_ref().expect("backup section");
        assert_eq!((b.destination.as_str(), b.interval_secs, b.keep), ("s3://b/p", 60, 3));
        // A key that is not 64 hex digits, a destination of another scheme: refused by name.
        assert!(matches!(cfg.validate(), Err(Error::Config(m)) if m.contains("64 hexadecimal")));
        let vars = [("HIQLITE_BACKUP_DESTINATION", "ftp://x"), ("HIQLITE_BACKUP_KEY", "ab")];
        let env = NodeConfig::default()
            .with_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
            .expect("read");
        let b = env.backup.as_ref().expect("turned on by the destination variable");
        assert_eq!(b.encryption_key.as_deref(), Some("ab"));
        let mut fixed = env.clone();
        fixed.backup.as_mut().expect("set").encryption_key = Some("ab".repeat(32));
        assert!(matches!(fixed.validate(), Err(Error::Config(m)) if m.contains("ftp://x")));
        fixed.backup.as_mut().expect("set").destination = "/var/backups/hiqlite".into();
        fixed.validate().expect("a directory is a destination");
        let b = fixed.backup.as_mut().expect("set");
        b.schedule = Some("0 3 * * *".into());
        fixed.validate().expect("a cron schedule");
        let b = fixed.backup.as_ref().expect("set");
        let wait = b.until_next(b.cron().expect("parses").as_ref());
        assert!(wait <= std::time::Duration::from_secs(24 * 3600), "{wait:?}");
        fixed.backup.as_mut().expect("set").schedule = Some("every day".into());
        assert!(matches!(fixed.validate(), Err(Error::Config(m)) if m.contains("cron")));
        assert!(NodeConfig::default().with_vars(|_| None).expect("no vars").backup.is_none());
    }

    #[test]
    fn console_default_follows_the_api_address() {
        let addr = |s: &str| s.parse::<std::net::SocketAddr>().expect("address");
        let d = NodeConfig::default();
        assert!(d.console_on(addr("127.0.0.1:4001")) && d.console_on(addr("[::1]:4001")));
        assert!(!d.console_on(addr("0.0.0.0:4001")) && !d.console_on(addr("10.1.2.3:4001")));
        let on = NodeConfig { console: Some(true), ..NodeConfig::default() };
        assert!(on.console_on(addr("0.0.0.0:4001")));
        let off = NodeConfig::default().with_vars(|k| (k == "HIQLITE_CONSOLE").then(|| "off".to_string()));
        assert!(off.is_ok_and(|c| !c.console_on(addr("127.0.0.1:4001"))));
    }
}
