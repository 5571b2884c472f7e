//! Process-level cluster harness: `hiqlite serve` processes on 127.0.0.1, driven over HTTP,
//! killed by PID (SIGKILL or SIGTERM) and restarted on the same data directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use hiqlite_tests::free_port;

/// Raft timings for test nodes, as `hiqlite serve` reads them from its environment. The defaults
/// (elections after 0.6–1.2 s without a heartbeat, writes given up after 10 s) suit a quiet
/// machine; tests share two cores with other test clusters and builds, where a follower can
/// miss heartbeats for a second and start needless elections. The tests are about behaviour,
/// not speed, so they give the nodes margin.
pub const TEST_TIMINGS: [(&str, &str); 4] = [
    ("HIQLITE_HEARTBEAT_MS", "200"),
    ("HIQLITE_ELECTION_TIMEOUT_MIN_MS", "2000"),
    ("HIQLITE_ELECTION_TIMEOUT_MAX_MS", "4000"),
    ("HIQLITE_REQUEST_TIMEOUT_MS", "60000"),
];

pub struct NodeProc {
    pub id: u64,
    pub api: u16,
    pub raft: u16,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub extra: Vec<String>,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct ProcCluster {
    pub root: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
    pub http: reqwest::Client,
    /// Pass every node the full `--peers` list (off for clusters grown with `--join`).
    pub static_peers: bool,
}

impl ProcCluster {
    /// Configure `n` nodes (not started). `extra` flags go to every `serve`.
    pub fn new(n: u64, extra: &[&str]) -> ProcCluster {
        let root = tempfile::tempdir().expect("tempdir");
        let nodes = (1..=n)
            .map(|id| NodeProc {
                id,
                api: free_port(),
                raft: free_port(),
                dir: root.path().join(format!("node-{id}")),
                child: None,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        hiqlite::install_crypto_provider();
        // A deadline only so that a hung request cannot hang the test: far above any answer.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("client");
        ProcCluster { root, nodes, http, static_peers: true }
    }

    fn peers(&self) -> String {
        if self.nodes.len() == 1 || !self.static_peers {
            return String::new();
        }
        self.nodes
            .iter()
            .map(|n| format!("{}=127.0.0.1:{}/127.0.0.1:{}", n.id, n.raft, n.api))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn start(&mut self, i: usize) {
        let peers = self.peers();
        let n = &mut self.nodes[i];
        assert!(n.child.is_none(), "node {} already running", n.id);
        let log = std::fs::File::create(self.root.path().join(format!("node-{}.log", n.id)))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hiqlite"));
        cmd.arg("serve")
            .args(["--node-id", &n.id.to_string(), "--data-dir"])
            .arg(&n.dir)
            .args([
                "--api-addr",
                &format!("127.0.0.1:{}", n.api),
                "--raft-addr",
                &format!("127.0.0.1:{}", n.raft),
            ])
            .args(["--secret", "process-test-secret"])
            .args(&n.extra)
            .env("RUST_LOG", "info,openraft=warn")
            .envs(TEST_TIMINGS)
            .stdout(Stdio::null())
            .stderr(log);
        if !peers.is_empty() {
            cmd.args(["--peers", &peers]);
        }
        n.child = Some(cmd.spawn().expect("spawn hiqlite serve"));
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let ok =
                Command::new("kill").args(["-TERM", &c.id().to_string()]).status().expect("kill").success();
            assert!(ok);
            let st = c.wait().expect("wait");
            assert!(st.success(), "node {} did not stop cleanly: {st:?}", self.nodes[i].id);
        }
    }

    pub fn running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    pub async fn status(&self, i: usize) -> Option<serde_json::Value> {
        let r = self.http.get(format!("http://127.0.0.1:{}/status", self.nodes[i].api)).send().await.ok()?;
        r.json_text().await
    }

    /// Wait until node `i` answers `/status`, and return it.
    pub async fn wait_status(&self, i: usize, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.status(i).await {
                return s;
            }
            assert!(Instant::now() < deadline, "node {} did not come back", self.nodes[i].id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until all running nodes agree on a leader; returns its index.
    pub async fn leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for i in 0..self.nodes.len() {
                if self.running(i) {
                    seen.push(self.status(i).await.and_then(|s| s["leader"].as_u64()));
                }
            }
            if let Some(Some(l)) = seen.first() {
                let l = *l;
                if seen.iter().all(|x| *x == Some(l)) && self.running((l - 1) as usize) {
                    return (l - 1) as usize;
                }
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = (0..self.nodes.len()).map(|i| self.log_of(i)).collect();
                panic!("no agreed leader: {seen:?}\n{}", logs.join("\n-----\n"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until every running node has applied as far as the leader.
    pub async fn converge(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let li = self.leader(timeout).await;
            let target = self.status(li).await.and_then(|s| s["applied_index"].as_u64());
            let mut all = true;
            for i in 0..self.nodes.len() {
                if self.running(i) {
                    let a = self.status(i).await.and_then(|s| s["applied_index"].as_u64());
                    all &= a >= target;
                }
            }
            if all {
                return;
            }
            assert!(Instant::now() < deadline, "nodes did not converge");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn execute(&self, i: usize, body: &str) -> Result<serde_json::Value, String> {
        let r = self
            .http
            .post(format!("http://127.0.0.1:{}/db/execute", self.nodes[i].api))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let v = r.json_text().await.ok_or("bad json")?;
        if !status.is_success() {
            return Err(format!("{status}: {v}"));
        }
        Ok(v)
    }

    pub async fn query(&self, i: usize, sql: &str) -> serde_json::Value {
        let body = serde_json::json!([sql]).to_string();
        let r = self
            .http
            .post(format!("http://127.0.0.1:{}/db/query?level=none", self.nodes[i].api))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("query");
        r.json_text().await.expect("json")
    }

    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(self.root.path().join(format!("node-{}.log", self.nodes[i].id)))
            .unwrap_or_default()
    }
}

pub trait JsonText {
    async fn json_text(self) -> Option<serde_json::Value>;
}
impl JsonText for reqwest::Response {
    async fn json_text(self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.text().await.ok()?).ok()
    }
}

/// The last segment file of a node's log.
pub fn last_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .flatten()
        .map(|d| d.path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}
