//! `hiqlite bench --failover N`: how long a 3-node cluster of real processes refuses writes after
//! its leader is killed with SIGKILL. A client writes every 10 ms on a surviving node; the time
//! from the kill to the first accepted write is printed for each of N kills, with the median.
//! The killed node is restarted and caught up before the next kill. Default timings, durable.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

struct Proc {
    id: u64,
    api: String,
    raft: String,
    child: Option<Child>,
}

fn spawn(dir: &Path, p: &Proc, peers: &str) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("own executable")?;
    let log = std::fs::File::create(dir.join(format!("node-{}.log", p.id)))?;
    Command::new(exe)
        .arg("serve")
        .args(["--node-id", &p.id.to_string(), "--data-dir"])
        .arg(dir.join(format!("node-{}", p.id)))
        .args(["--api-addr", &p.api, "--raft-addr", &p.raft, "--secret", "failover-bench-secret"])
        .args(["--peers", peers])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .context("start hiqlite serve")
}

async fn status(http: &reqwest::Client, api: &str) -> Option<Value> {
    let r = http.get(format!("http://{api}/status")).send().await.ok()?;
    serde_json::from_str(&r.text().await.ok()?).ok()
}

/// The id of the leader all running nodes agree on.
async fn leader(http: &reqwest::Client, nodes: &[Proc], deadline: Instant) -> anyhow::Result<u64> {
    loop {
        let mut seen = Vec::new();
        for n in nodes.iter().filter(|n| n.child.is_some()) {
            seen.push(status(http, &n.api).await.and_then(|s| s["leader"].as_u64()));
        }
        if let Some(Some(l)) = seen.first() {
            if seen.iter().all(|s| *s == Some(*l)) {
                return Ok(*l);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "no leader agreed on: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// POST a JSON body to `/db/execute`; the answer when it is a success.
async fn post(http: &reqwest::Client, api: &str, body: &Value) -> Option<Value> {
    let r = http
        .post(format!("http://{api}/db/execute"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_str(&r.text().await.ok()?).ok()
}

/// One write through `api`; true when the cluster accepted it.
async fn write(http: &reqwest::Client, api: &str, v: &str) -> bool {
    let body = serde_json::json!([["INSERT INTO failover (v) VALUES (?)", v]]);
    let Some(j) = post(http, api, &body).await else { return false };
    j["results"][0]["error"].is_null() && j["error"].is_null()
}

pub async fn run(dir: &Path, kills: usize) -> anyhow::Result<()> {
    hiqlite::install_crypto_provider();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        nodes.push(Proc {
            id,
            api: format!("127.0.0.1:{}", crate::bench::free_port()?),
            raft: format!("127.0.0.1:{}", crate::bench::free_port()?),
            child: None,
        });
    }
    let peers = nodes.iter().map(|n| format!("{}={}/{}", n.id, n.raft, n.api)).collect::<Vec<_>>().join(",");
    let result = trials(dir, &http, &mut nodes, &peers, kills).await;
    for n in &mut nodes {
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    result
}

async fn trials(
    dir: &Path,
    http: &reqwest::Client,
    nodes: &mut [Proc],
    peers: &str,
    kills: usize,
) -> anyhow::Result<()> {
    for n in nodes.iter_mut() {
        n.child = Some(spawn(dir, n, peers)?);
    }
    let patience = Duration::from_secs(120);
    let l = leader(http, nodes, Instant::now() + patience).await?;
    let li = nodes.iter().position(|n| n.id == l).context("leader is a member")?;
    let create = serde_json::json!(["CREATE TABLE failover (id INTEGER PRIMARY KEY, v TEXT)"]);
    post(http, &nodes[li].api, &create).await.context("create the table")?;
    println!("failover: 3 processes, leader killed with SIGKILL, a write retried every 10 ms on a survivor");
    let mut times = Vec::new();
    for k in 0..kills {
        let l = leader(http, nodes, Instant::now() + patience).await?;
        let li = nodes.iter().position(|n| n.id == l).context("leader is a member")?;
        let si = (li + 1) % nodes.len();
        anyhow::ensure!(
            write(http, &nodes[si].api, "before").await,
            "the cluster refused a write before the kill"
        );
        let t0 = Instant::now();
        if let Some(mut c) = nodes[li].child.take() {
            c.kill()?;
            c.wait()?;
        }
        let mut accepted = None;
        while t0.elapsed() < patience {
            if write(http, &nodes[si].api, &format!("after-kill-{k}")).await {
                accepted = Some(t0.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = accepted.context("no write accepted within two minutes of the kill")?;
        println!(
            "  kill {:>2} (node {l}): first write accepted after {:>6.0} ms",
            k + 1,
            took.as_secs_f64() * 1e3
        );
        times.push(took);
        // Back to three nodes, caught up, before the next kill.
        nodes[li].child = Some(spawn(dir, &nodes[li], peers)?);
        let deadline = Instant::now() + patience;
        loop {
            let want = status(http, &nodes[si].api).await.and_then(|s| s["applied_index"].as_u64());
            let have = status(http, &nodes[li].api).await.and_then(|s| s["applied_index"].as_u64());
            if want.is_some() && have >= want {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the restarted node did not catch up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    times.sort();
    if let Some(m) = times.get(times.len() / 2) {
        println!(
            "kill to first accepted write: median {:.0} ms, min {:.0} ms, max {:.0} ms over {} kills",
            m.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            times.len()
        );
    }
    Ok(())
}
