//! What `hiqlite bench --scale` (bench_scale.rs) works with: the `hiqlite serve` child processes,
//! the HTTP calls it makes to them, what it reads from /proc and the data directories, the disk
//! sampler, and the parser of SIZE.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

/// One `hiqlite serve` process with its addresses and data directory. Killed (SIGKILL to its
/// PID) and reaped when dropped, so no child outlives the bench, also when it fails.
pub(crate) struct Proc {
    pub(crate) id: u64,
    pub(crate) api: String,
    pub(crate) raft: String,
    pub(crate) dir: PathBuf,
    log: PathBuf,
    /// `--peers ...` or `--join ...`: how it finds its cluster (kept for restarts).
    cluster_args: Vec<String>,
    child: Option<Child>,
}

impl Proc {
    /// A node of the bench in `bench_dir/node-ID` (wiped now), on free loopback ports.
    pub(crate) fn new(bench_dir: &Path, id: u64) -> anyhow::Result<Proc> {
        let dir = bench_dir.join(format!("node-{id}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(Proc {
            id,
            api: format!("127.0.0.1:{}", crate::bench::free_port()?),
            raft: format!("127.0.0.1:{}", crate::bench::free_port()?),
            dir,
            log: bench_dir.join(format!("node-{id}.log")),
            cluster_args: Vec::new(),
            child: None,
        })
    }

    pub(crate) fn start(&mut self, cluster_args: &[&str]) -> anyhow::Result<()> {
        self.cluster_args = cluster_args.iter().map(|s| s.to_string()).collect();
        self.restart()
    }

    /// Start the process again with the arguments of its first start.
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "node {} is running", self.id);
        let exe = std::env::current_exe().context("own executable")?;
        let log = std::fs::File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(exe)
            .arg("serve")
            .args(["--node-id", &self.id.to_string(), "--data-dir"])
            .arg(&self.dir)
            .args(["--api-addr", &self.api, "--raft-addr", &self.raft, "--secret", "scale-bench-secret"])
            .args(&self.cluster_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("start hiqlite serve")?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL (by PID) and reap.
    pub(crate) fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A node's `/status` JSON.
pub(crate) async fn status(http: &reqwest::Client, api: &str) -> Option<Value> {
    let r = http.get(format!("http://{api}/status")).timeout(Duration::from_secs(5)).send().await.ok()?;
    serde_json::from_str(&r.text().await.ok()?).ok()
}

pub(crate) async fn applied(http: &reqwest::Client, api: &str) -> Option<u64> {
    status(http, api).await.and_then(|s| s["applied_index"].as_u64())
}

/// Index in `nodes` of the leader all running nodes agree on.
pub(crate) async fn leader(
    http: &reqwest::Client,
    nodes: &[Proc],
    patience: Duration,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + patience;
    loop {
        let mut seen = Vec::new();
        for n in nodes.iter().filter(|n| n.running()) {
            seen.push(status(http, &n.api).await.and_then(|s| s["leader"].as_u64()));
        }
        if let Some(Some(l)) = seen.first() {
            if seen.iter().all(|s| *s == Some(*l)) {
                if let Some(i) = nodes.iter().position(|n| n.id == *l) {
                    return Ok(i);
                }
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "no leader agreed on: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /db/execute` (`?transaction` when `txn`): an error unless every statement succeeded.
pub(crate) async fn execute(
    http: &reqwest::Client,
    api: &str,
    stmts: &Value,
    txn: bool,
) -> anyhow::Result<()> {
    let url = format!("http://{api}/db/execute{}", if txn { "?transaction" } else { "" });
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(stmts.to_string())
        .timeout(Duration::from_secs(300))
        .send()
        .await?;
    let code = r.status();
    let text = r.text().await?;
    anyhow::ensure!(code.is_success(), "execute answered {code}: {text}");
    let j: Value = serde_json::from_str(&text)?;
    anyhow::ensure!(j["error"].is_null(), "execute failed: {}", j["error"]);
    let results = j["results"].as_array().context("execute answer without results")?;
    if let Some(e) = results.iter().find(|r| !r["error"].is_null()) {
        anyhow::bail!("statement failed: {}", e["error"]);
    }
    Ok(())
}

/// The integer a one-value query answers, read on that node's own replica (`level=none`).
pub(crate) async fn query_i64(http: &reqwest::Client, api: &str, sql: &str) -> anyhow::Result<i64> {
    let r = http
        .post(format!("http://{api}/db/query?level=none"))
        .header("content-type", "application/json")
        .body(serde_json::json!([sql]).to_string())
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let j: Value = serde_json::from_str(&r.text().await?)?;
    let r0 = &j["results"][0];
    anyhow::ensure!(r0["error"].is_null(), "query failed: {}", r0["error"]);
    r0["values"][0][0].as_i64().with_context(|| format!("no integer in the answer to {sql}: {j}"))
}

/// The logical size of a node's database: `page_count * page_size`.
pub(crate) async fn logical_size(http: &reqwest::Client, api: &str) -> anyhow::Result<u64> {
    let sql = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()";
    Ok(u64::try_from(query_i64(http, api, sql).await?)?)
}

/// `POST /snapshot` on one node, waiting until the snapshot is built. The node answers a
/// timeout when the build outlasts its request timeout; the build goes on, and then its end is
/// seen in `/status` (`snapshots_built` grows).
pub(crate) async fn snapshot(http: &reqwest::Client, api: &str, patience: Duration) -> anyhow::Result<()> {
    let built = |s: Option<Value>| s.and_then(|s| s["node"]["snapshots_built"].as_u64());
    let before = built(status(http, api).await).context("status before the snapshot")?;
    let r = http.post(format!("http://{api}/snapshot")).timeout(patience).send().await?;
    let code = r.status();
    if code.is_success() {
        return Ok(());
    }
    let text = r.text().await.unwrap_or_default();
    anyhow::ensure!(text.contains("not built in time"), "snapshot on {api} answered {code}: {text}");
    let deadline = Instant::now() + patience;
    while built(status(http, api).await).is_none_or(|b| b == before) {
        anyhow::ensure!(Instant::now() < deadline, "snapshot on {api} not built in {patience:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Bytes a process caused to be written to storage (`write_bytes` of /proc/PID/io).
pub(crate) fn write_bytes(pid: u32) -> anyhow::Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let line = io.lines().find_map(|l| l.strip_prefix("write_bytes:")).context("no write_bytes")?;
    Ok(line.trim().parse()?)
}

/// Resident memory of a process (`VmRSS` of /proc/PID/status), in bytes.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = st.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim();
    kb.parse::<u64>().ok().map(|k| k * 1024)
}

/// Disk space allocated to everything under `dir` (`st_blocks * 512`, recursively). Files that
/// vanish during the walk are skipped.
pub(crate) fn allocated(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for de in rd.flatten() {
        let Ok(m) = std::fs::symlink_metadata(de.path()) else { continue };
        total += m.blocks() * 512;
        if m.is_dir() {
            total += allocated(&de.path());
        }
    }
    total
}

/// True while a node is building or receiving a snapshot: hiqlite keeps the partial file in
/// `snapshots/` as `*.tmp` (a build) or `incoming-*` (an install) until it is published.
pub(crate) fn snapshot_in_progress(data_dir: &Path) -> bool {
    // A snapshot being received arrives beside the database as `hiqlite.db.incoming-*`.
    let Ok(rd) = std::fs::read_dir(data_dir.join("db")) else { return false };
    rd.flatten().any(|de| de.file_name().to_string_lossy().contains(".incoming-"))
}

/// Samples, every 500 ms, each node's allocated data directory divided by the logical size of
/// the database (the largest any answering node reports), and keeps each node's maximum.
pub(crate) struct DiskSampler {
    nodes: Arc<Mutex<Vec<(u64, String, PathBuf)>>>,
    max: Arc<Mutex<BTreeMap<u64, f64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DiskSampler {
    /// Ratios count once the database holds at least `floor` bytes: before that the fixed
    /// costs (a preallocated log segment) over a nearly empty database say nothing of scale.
    pub(crate) fn start(http: reqwest::Client, floor: u64) -> DiskSampler {
        let nodes: Arc<Mutex<Vec<(u64, String, PathBuf)>>> = Arc::default();
        let max: Arc<Mutex<BTreeMap<u64, f64>>> = Arc::default();
        let (n2, m2) = (nodes.clone(), max.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let list = n2.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let mut db = 0;
                for (_, api, _) in &list {
                    db = db.max(logical_size(&http, api).await.unwrap_or(0));
                }
                if db < floor.max(1) {
                    continue;
                }
                let mut m = m2.lock().unwrap_or_else(PoisonError::into_inner);
                for (id, _, dir) in &list {
                    let r = allocated(dir) as f64 / db as f64;
                    let e = m.entry(*id).or_insert(0.0);
                    *e = e.max(r);
                }
            }
        });
        DiskSampler { nodes, max, task }
    }

    pub(crate) fn add(&self, p: &Proc) {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner).push((p.id, p.api.clone(), p.dir.clone()));
    }

    pub(crate) fn max(&self) -> BTreeMap<u64, f64> {
        self.max.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for DiskSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `1.5GB`, `200MB`, `512KiB`, `1000` (bytes): K/M/G/T(B) are powers of 1000, KiB/MiB/GiB/TiB
/// powers of 1024; case does not matter.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a size like 1.5GB, 200MB or 1000000"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        u => return Err(format!("unknown unit {u:?} in {s:?} (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")),
    };
    let bytes = (n * mult as f64).round();
    if !(1.0..=9.0e18).contains(&bytes) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// Percentile `p` (0..=1) of sorted latencies in microseconds, in milliseconds.
pub(crate) fn pct_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("200MB"), Ok(200_000_000));
        assert_eq!(parse_size("200mb"), Ok(200_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10 B"), Ok(10));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("0.5k"), Ok(500));
        assert!(parse_size("").is_err());
        assert!(parse_size("MB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("1.2.3GB").is_err());
    }
}
