//! Helpers for end-to-end tests: clusters of real nodes talking HTTP on 127.0.0.1, with data in
//! temporary directories.

pub mod api;
pub mod torture;

pub use api::Api;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use hiqlite::{Client, NodeConfig, Peer, Value};

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    free_port_on(std::net::Ipv4Addr::LOCALHOST)
}

/// A port that was free on `ip` a moment ago. No port is handed out twice in this process, on
/// any address: the OS may give a just-released port to the next caller, and concurrent tests
/// (clusters on the same loopback addresses) would then collide.
///
/// Ports come from below the kernel's ephemeral range when it leaves room there: a port the OS
/// chose for `bind(0)` is in that range, and so is the local port of every outgoing connection,
/// so between this call and the node's own bind any connection on the machine could take it (a
/// CI run failed on "Address already in use" that way). Below the range only an explicit bind
/// can, and other test processes bind port 0.
pub fn free_port_on(ip: std::net::Ipv4Addr) -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let low = ephemeral_low();
    let span = u32::from(low.saturating_sub(PORT_FLOOR));
    for _ in 0..4 * span.min(4096) {
        // A stride through the span from a per-process start keeps two test processes that
        // run at once (cargo runs test binaries one by one, but other suites may overlap)
        // apart, and each free-port check cheap.
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let start = std::process::id().wrapping_mul(2_654_435_761);
        let port = PORT_FLOOR + ((start.wrapping_add(k.wrapping_mul(7_919))) % span.max(1)) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    loop {
        let port = std::net::TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("bind {ip}:0: {e}"))
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Lowest port handed out by [`free_port_on`] below the ephemeral range.
const PORT_FLOOR: u16 = 20_000;

/// The first port of the kernel's ephemeral range (Linux default 32768).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32_768)
}

/// Log to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// N nodes with fixed addresses and data dirs; each can be stopped and restarted.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub configs: Vec<NodeConfig>,
    pub nodes: Vec<Option<Client>>,
}

impl TestCluster {
    /// Configs for `n` nodes; `tweak` adjusts each one.
    pub fn configure(n: usize, tweak: impl Fn(&mut NodeConfig)) -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let peers: Vec<Peer> = (1..=n as u64)
            .map(|id| Peer {
                id,
                raft_addr: format!("127.0.0.1:{}", free_port()),
                api_addr: format!("127.0.0.1:{}", free_port()),
            })
            .collect();
        let configs = peers
            .iter()
            .map(|p| {
                let mut c = NodeConfig {
                    node_id: p.id,
                    data_dir: dir.path().join(format!("node-{}", p.id)),
                    raft_addr: p.raft_addr.clone(),
                    api_addr: p.api_addr.clone(),
                    peers: if n > 1 { peers.clone() } else { Vec::new() },
                    secret: "test-secret-123".into(),
                    // Timings with margin for a loaded machine (several test clusters and
                    // other builds sharing two cores): a follower that misses heartbeats for
                    // half a second would start a needless election, and a write that waits
                    // out a few seconds would fail a test that is not about timeouts.
                    heartbeat_ms: 200,
                    election_timeout_min_ms: 2_000,
                    election_timeout_max_ms: 4_000,
                    request_timeout_ms: 60_000,
                    ..NodeConfig::default()
                };
                tweak(&mut c);
                c
            })
            .collect();
        TestCluster { dir, configs, nodes: (0..n).map(|_| None).collect() }
    }

    /// Start node `i` (0-based).
    pub async fn start(&mut self, i: usize) {
        let c = Client::start(self.configs[i].clone()).await.expect("node starts");
        self.nodes[i] = Some(c);
    }

    /// Start all nodes in the given order.
    pub async fn start_in_order(&mut self, order: &[usize]) {
        for &i in order {
            self.start(i).await;
        }
    }

    /// A running node.
    pub fn node(&self, i: usize) -> &Client {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Stop node `i` gracefully.
    pub async fn stop(&mut self, i: usize) {
        if let Some(c) = self.nodes[i].take() {
            c.shutdown().await.expect("clean shutdown");
        }
    }

    /// Wait until every running node agrees on one running leader (same term), and return its
    /// index. A restarted old leader may briefly claim leadership of a stale term; agreement
    /// rules that out.
    pub async fn leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let st: Vec<hiqlite::Status> = self.nodes.iter().flatten().map(|c| c.st()).collect();
            if let Some(first) = st.first() {
                if let Some(id) = first.leader {
                    let idx = (id - 1) as usize;
                    let agreed = st.iter().all(|s| s.leader == Some(id) && s.term == first.term);
                    if agreed
                        && self.nodes.get(idx).and_then(|n| n.as_ref()).is_some_and(|l| l.n().is_leader())
                    {
                        return idx;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader within {timeout:?}: {st:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until every running node has applied everything the agreed leader has applied.
    pub async fn converge(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let li = self.leader(timeout).await;
        let target = self.node(li).st().applied_index;
        loop {
            let behind: Vec<u64> = self
                .nodes
                .iter()
                .flatten()
                .filter(|c| c.st().applied_index < target)
                .map(|c| c.st().id)
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "nodes {behind:?} did not catch up to {target:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shut every running node down.
    pub async fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

/// A checksum of every user table (schema and rows in rowid order) on one node's replica.
pub async fn content_checksum(c: &Client) -> u64 {
    let tables = c
        .query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_hiqlite_%' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
            (),
        )
        .await
        .expect("list tables");
    let mut h = DefaultHasher::new();
    for t in &tables.rows {
        let Value::Text(name) = &t[0] else { panic!("table name is text") };
        format!("{t:?}").hash(&mut h);
        let rows =
            c.query(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"), ()).await.expect("read table");
        format!("{:?}", rows.rows).hash(&mut h);
    }
    h.finish()
}

/// Shorthands for tests that drive embedded clients.
pub trait Embedded {
    /// The embedded node (panics for a remote client: a test bug).
    fn n(&self) -> &hiqlite::Node;
    /// The embedded node's status.
    fn st(&self) -> hiqlite::Status {
        self.n().status()
    }
}

impl Embedded for hiqlite::Client {
    fn n(&self) -> &hiqlite::Node {
        self.node().expect("an embedded client")
    }
}
