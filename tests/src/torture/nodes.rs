//! `hiqlite serve` processes for the fault-injection harness: each on its own loopback address
//! behind its proxy (see `net`), killed (SIGKILL), paused (SIGSTOP/SIGCONT) and restarted on the
//! same data directory. Every process is killed by PID when the cluster is dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use super::net::{node_ip, Net};

/// One node process and its addresses.
pub struct NodeProc {
    /// Raft node id (index + 1).
    pub id: u64,
    /// Client API (not proxied: clients reach every node).
    pub api: SocketAddr,
    /// The Raft listener itself.
    pub raft: SocketAddr,
    /// The proxy in front of it: the address the cluster knows.
    pub proxy: SocketAddr,
    /// Data directory.
    pub dir: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// A cluster of node processes and the network between them.
pub struct Cluster {
    /// The nodes, by index.
    pub nodes: Vec<NodeProc>,
    /// The proxies' rules.
    pub net: Net,
    bin: PathBuf,
    root: PathBuf,
    http: reqwest::Client,
    proxies: Vec<tokio::task::JoinHandle<()>>,
}

fn free_on(ip: std::net::Ipv4Addr) -> SocketAddr {
    SocketAddr::from((ip, crate::free_port_on(ip)))
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill").args([sig, &pid.to_string()]).status().is_ok_and(|s| s.success())
}

impl Cluster {
    /// Configure and start `n` nodes of `bin` with data under `root`.
    pub async fn start(bin: PathBuf, root: PathBuf, n: usize) -> std::io::Result<Cluster> {
        hiqlite::install_crypto_provider();
        let net = Net::new(n);
        let mut nodes = Vec::new();
        let mut proxies = Vec::new();
        for i in 0..n {
            let ip = node_ip(i);
            // Ports come from the process-wide allocator: concurrent clusters share these
            // addresses and must never pick the same port.
            let proxy = TcpListener::bind(free_on(ip)).await?;
            let raft = free_on(ip);
            let node = NodeProc {
                id: i as u64 + 1,
                api: free_on(ip),
                raft,
                proxy: proxy.local_addr()?,
                dir: root.join(format!("node-{}", i + 1)),
                child: None,
                paused: false,
            };
            let net2 = net.clone();
            proxies.push(tokio::spawn(async move { net2.serve(i, proxy, raft).await }));
            nodes.push(node);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut c = Cluster { nodes, net, bin, root, http, proxies };
        for i in 0..n {
            c.spawn(i)?;
        }
        Ok(c)
    }

    fn peers(&self) -> String {
        self.nodes.iter().map(|n| format!("{}={}/{}", n.id, n.proxy, n.api)).collect::<Vec<_>>().join(",")
    }

    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let peers = self.peers();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("node-{}.log", i + 1)))?;
        let n = &mut self.nodes[i];
        let child = Command::new(&self.bin)
            .arg("serve")
            .args(["--node-id", &n.id.to_string(), "--data-dir"])
            .arg(&n.dir)
            .args(["--api-addr", &n.api.to_string(), "--raft-addr", &n.raft.to_string()])
            .args(["--raft-advertise", &n.proxy.to_string(), "--peers", &peers])
            .args(["--secret", "torture-secret-0123456789"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()?;
        n.child = Some(child);
        n.paused = false;
        Ok(())
    }

    /// Base URL of node `i`'s API.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].api)
    }

    /// True if node `i` has a live process (running or paused).
    pub fn alive(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// True if node `i` is paused.
    pub fn paused(&self, i: usize) -> bool {
        self.nodes[i].paused
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.nodes[i].paused = false;
    }

    /// Start node `i` again on its data directory.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        if self.nodes[i].child.is_none() {
            self.spawn(i)?;
        }
        Ok(())
    }

    /// SIGSTOP node `i`: it holds its connections but answers nothing.
    pub fn pause(&mut self, i: usize) {
        if let Some(c) = &self.nodes[i].child {
            self.nodes[i].paused = signal(c.id(), "-STOP");
        }
    }

    /// SIGCONT node `i`.
    pub fn resume(&mut self, i: usize) {
        if let Some(c) = &self.nodes[i].child {
            if signal(c.id(), "-CONT") {
                self.nodes[i].paused = false;
            }
        }
    }

    /// `/status` of node `i` (None if it does not answer).
    pub async fn status(&self, i: usize) -> Option<serde_json::Value> {
        let r = self.http.get(format!("{}/status", self.url(i))).send().await.ok()?;
        serde_json::from_str(&r.text().await.ok()?).ok()
    }

    /// The index of a node that says it is the leader, if any answers so.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if self.alive(i) && !self.paused(i) {
                if let Some(s) = self.status(i).await {
                    if s["state"] == "Leader" {
                        return Some(i);
                    }
                }
            }
        }
        None
    }

    /// The highest term any node reports.
    pub async fn max_term(&self) -> u64 {
        let mut t = 0;
        for i in 0..self.nodes.len() {
            if self.alive(i) && !self.paused(i) {
                t = t.max(self.status(i).await.and_then(|s| s["term"].as_u64()).unwrap_or(0));
            }
        }
        t
    }

    /// Heal the network, resume paused nodes and restart killed ones.
    pub fn heal_all(&mut self) -> std::io::Result<()> {
        self.net.heal();
        for i in 0..self.nodes.len() {
            self.resume(i);
            self.restart(i)?;
        }
        Ok(())
    }

    /// Wait until every node reports the same leader and has applied as far as it.
    pub async fn converge(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut st = Vec::new();
            for i in 0..self.nodes.len() {
                st.push(self.status(i).await);
            }
            let leaders: Vec<Option<u64>> =
                st.iter().map(|s| s.as_ref().and_then(|s| s["leader"].as_u64())).collect();
            let applied: Vec<Option<u64>> =
                st.iter().map(|s| s.as_ref().and_then(|s| s["applied_index"].as_u64())).collect();
            let last: Vec<Option<u64>> =
                st.iter().map(|s| s.as_ref().and_then(|s| s["last_log_index"].as_u64())).collect();
            if leaders[0].is_some()
                && leaders.iter().all(|l| *l == leaders[0])
                && applied.iter().all(|a| a.is_some() && *a == applied[0])
                && last.iter().all(|l| *l == last[0])
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The log of node `i` so far.
    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(self.root.join(format!("node-{}.log", i + 1))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if let Some(c) = &self.nodes[i].child {
                signal(c.id(), "-CONT");
            }
            self.kill(i);
        }
        for p in &self.proxies {
            p.abort();
        }
    }
}
