//! `hiqlite bench --scale SIZE`: what the size of the database costs a cluster of three real
//! `hiqlite serve` processes on loopback, once loaded to SIZE with 1 KiB rows: snapshot builds
//! (time and bytes written), write latency while snapshots are built, disk used per byte of
//! database, a fourth node joining, and a node killed with SIGKILL catching up. Default timings,
//! durable. Helpers (processes, HTTP, /proc, the disk sampler) are in bench_scale_io.rs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;

use crate::bench_scale_io::{self as io, DiskSampler, Proc};

/// Rows per load transaction, and concurrent loading writers.
const TXN_ROWS: u64 = 2_000;
const LOADERS: u64 = 2;
/// Deadline of every wait for a condition (this is a benchmark: generous, never asserted).
const PATIENCE: Duration = Duration::from_secs(600);

const MB: f64 = 1e6;

/// 1 KiB of text for row `id`: the same bytes whoever computes them (the payload travels in the
/// log as a parameter, so replicas apply identical writes; no random SQL function involved).
fn payload(id: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..1024)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(ALPHABET[(x >> 58) as usize])
        })
        .collect()
}

/// `n` single-row writes from `conc` tasks on `api`: INSERTs into `small`, and UPDATEs of a
/// 1 KiB row of `scale` (same size, so the database does not grow) among the first `rows`.
async fn small_writes(
    http: &reqwest::Client,
    api: &str,
    n: u64,
    conc: u64,
    rows: u64,
    salt: u64,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (http, api, next) = (http.clone(), api.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let stmt = if i % 2 == 0 {
                    json!([["INSERT INTO small (k, v) VALUES (?, ?)", i + salt, "small write"]])
                } else {
                    let id = (i + salt).wrapping_mul(2_654_435_761) % rows.max(1) + 1;
                    json!([["UPDATE scale SET v = ? WHERE id = ?", payload(id ^ salt), id]])
                };
                io::execute(&http, &api, &stmt, false).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Wait until every running node applied the same index and none built, received or is
/// building a snapshot for two seconds.
async fn settle(http: &reqwest::Client, nodes: &[Proc]) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    let (mut last, mut since) = (Vec::new(), Instant::now());
    loop {
        let mut now = Vec::new();
        for n in nodes.iter().filter(|n| n.running()) {
            let s = io::status(http, &n.api).await;
            let f = |k: &str| s.as_ref().and_then(|s| s["node"][k].as_u64());
            now.push((f("applied_index"), f("snapshots_built"), f("snapshots_installed")));
        }
        let busy = nodes.iter().any(|n| n.running() && io::snapshot_in_progress(&n.dir));
        let same = now.first().is_some_and(|f| f.0.is_some() && now.iter().all(|x| x.0 == f.0));
        if busy || !same || now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_secs(2) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the cluster did not settle: {last:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row(what: &str, figure: String) {
    println!("{what:<50} {figure}");
}

pub async fn run(dir: &Path, size: u64) -> anyhow::Result<()> {
    hiqlite::install_crypto_provider();
    let http = reqwest::Client::builder().build()?;
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(Proc::new(dir, id)?);
    }
    // Ctrl-C ends the scenario as an error, so that the children are stopped here too.
    let result = tokio::select! {
        r = scenario(dir, size, &http, &mut nodes) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // Every child by its PID, also after an error (dropping a Proc does the same).
    for n in &mut nodes {
        let _ = n.kill();
    }
    result
}

async fn scenario(
    dir: &Path,
    size: u64,
    http: &reqwest::Client,
    nodes: &mut Vec<Proc>,
) -> anyhow::Result<()> {
    println!(
        "hiqlite bench --scale {:.1} MB ({size} bytes of database): 3 `hiqlite serve` processes on loopback, \
         data in {}",
        size as f64 / MB,
        dir.display()
    );
    println!("durability: durable: ack after fdatasync on a majority (all writes below)");
    let peers = nodes.iter().map(|n| format!("{}={}/{}", n.id, n.raft, n.api)).collect::<Vec<_>>().join(",");
    for n in nodes.iter_mut() {
        n.start(&["--peers", &peers])?;
    }
    let li = io::leader(http, nodes, PATIENCE).await?;
    let sampler = DiskSampler::start(http.clone(), size / 10);
    for n in nodes.iter() {
        sampler.add(n);
    }
    println!("{:<50} figure", "step");

    // Load.
    let api = nodes[li].api.clone();
    let create = json!([
        "CREATE TABLE scale (id INTEGER PRIMARY KEY, v BLOB)",
        "CREATE TABLE small (id INTEGER PRIMARY KEY, k INTEGER, v TEXT)"
    ]);
    io::execute(http, &api, &create, true).await.context("create the tables")?;
    let (rows, bytes0, load_secs) = load(http, &api, size).await?;
    let db = io::logical_size(http, &api).await?;
    row(
        &format!("load: 1 KiB rows, txns of {TXN_ROWS}, {LOADERS} writers"),
        format!(
            "{:.1} MB/s  ({:.1} MB of database, {rows} rows in {load_secs:.1} s)",
            db.saturating_sub(bytes0) as f64 / MB / load_secs,
            db as f64 / MB
        ),
    );

    // Snapshot builds, after 10,000 small writes (to the leader: followers would forward them).
    let api = nodes[io::leader(http, nodes, PATIENCE).await?].api.clone();
    let before = built(http, nodes).await;
    let index0 = io::applied(http, &api).await.context("leader's applied index")?;
    let t = Instant::now();
    small_writes(http, &api, 10_000, 16, rows, 0).await?;
    let secs = t.elapsed().as_secs_f64();
    settle(http, nodes).await?;
    let entries = io::applied(http, &api).await.context("leader's applied index")? - index0;
    let auto = built(http, nodes).await - before;
    row(
        "10000 small writes, 16 concurrent",
        format!(
            "{:.0} writes/s  ({entries} log entries; {auto} automatic snapshots meanwhile, all nodes)",
            10_000.0 / secs
        ),
    );
    let li = io::leader(http, nodes, PATIENCE).await?;
    let fi = (li + 1) % nodes.len();
    for (i, role) in [(fi, "follower"), (li, "leader")] {
        let pid = nodes[i].pid().context("node running")?;
        // The process's write_bytes before and after: nothing else runs meanwhile (no client
        // writes, no other snapshot, the cluster settled), so its other writes are negligible.
        let w0 = io::write_bytes(pid)?;
        let t = Instant::now();
        io::snapshot(http, &nodes[i].api, PATIENCE).await?;
        let took = t.elapsed().as_secs_f64();
        let w = io::write_bytes(pid)? - w0;
        row(
            &format!("snapshot build, node {} ({role})", nodes[i].id),
            format!(
                "{took:.2} s, {:.1} MB written by the process ({:.2} x database)",
                w as f64 / MB,
                w as f64 / db as f64
            ),
        );
    }

    // Probe writes without, then during, snapshots.
    settle(http, nodes).await?;
    let api = nodes[io::leader(http, nodes, PATIENCE).await?].api.clone();
    let before = built(http, nodes).await;
    let (quiet, qfail) = probe(http, &api, Duration::from_secs(10)).await;
    let auto = built(http, nodes).await - before;
    print_probe("probe 20 writes/s, no snapshot", quiet, qfail, &format!("{auto} snapshots meanwhile"));
    // The same bursts of writes as below, without the snapshots: what the snapshots add is the
    // difference between these two lines.
    let stop = Arc::new(AtomicBool::new(false));
    let bursts = {
        let (http, stop, api) = (http.clone(), stop.clone(), api.clone());
        tokio::spawn(async move { snapshot_storm(&http, &api, &[], rows, 300, 1_000_000, &stop).await })
    };
    let before = built(http, nodes).await;
    let (plain, pfail) = probe(http, &api, Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    let (rounds, secs) = bursts.await??;
    let auto = built(http, nodes).await - before;
    print_probe(
        "probe 20 writes/s, bursts, no snapshot",
        plain,
        pfail,
        &format!("{rounds} bursts of 300 writes in {secs:.1} s, {auto} automatic snapshots"),
    );
    // Snapshots back to back, with the bursts (so that each has something to copy), then with
    // nothing but the probe's own writes (what snapshots alone cost a writer).
    for (burst, what) in [(300u64, "snapshots back to back"), (0, "snapshots back to back, no bursts")] {
        settle(http, nodes).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let storm = {
            let (http, stop) = (http.clone(), stop.clone());
            let apis: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
            let api = api.clone();
            tokio::spawn(async move { snapshot_storm(&http, &api, &apis, rows, burst, 100_000, &stop).await })
        };
        let (busy, bfail) = probe(http, &api, Duration::from_secs(10)).await;
        stop.store(true, Ordering::Relaxed);
        let (rounds, storm_secs) = storm.await??;
        print_probe(
            &format!("probe 20 writes/s, {what}"),
            busy,
            bfail,
            &format!(
                "{rounds} rounds of 3 concurrent snapshots in {storm_secs:.1} s, {burst} writes before each"
            ),
        );
    }

    // A fourth node joins.
    settle(http, nodes).await?;
    let li = io::leader(http, nodes, PATIENCE).await?;
    let target = io::applied(http, &nodes[li].api).await.context("leader's applied index")?;
    let mut joiner = Proc::new(dir, 4)?;
    let via = nodes.iter().map(|n| n.raft.clone()).collect::<Vec<_>>().join(",");
    let t = Instant::now();
    joiner.start(&["--join", &via])?;
    sampler.add(&joiner);
    nodes.push(joiner);
    let (js, _) = wait_applied(http, &nodes[3], target, None).await?;
    row(
        "join node 4 (start to leader's applied index)",
        format!(
            "{:.2} s, snapshots installed: {}",
            t.elapsed().as_secs_f64(),
            js["node"]["snapshots_installed"].as_u64().map_or("?".into(), |n| n.to_string())
        ),
    );

    // kill -9 a follower, write while it is down, restart it.
    settle(http, nodes).await?;
    let li = io::leader(http, nodes, PATIENCE).await?;
    let ki = (0..3).find(|&i| i != li).context("a follower")?;
    nodes[ki].kill()?;
    small_writes(http, &nodes[li].api, 500, 8, rows, 20_000).await?;
    let target = io::applied(http, &nodes[li].api).await.context("leader's applied index")?;
    let t = Instant::now();
    nodes[ki].restart()?;
    let (_, rss) = wait_applied(http, &nodes[ki], target, nodes[ki].pid()).await?;
    row(
        &format!("restart node {} after kill -9, 500 writes behind", nodes[ki].id),
        format!("caught up in {:.2} s, max RSS {:.1} MB", t.elapsed().as_secs_f64(), rss as f64 / MB),
    );

    // Disk / database: the steady value after a quiet moment, and the largest sampled.
    settle(http, nodes).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let li = io::leader(http, nodes, PATIENCE).await?;
    let db = io::logical_size(http, &nodes[li].api).await?;
    let max = sampler.max();
    println!(
        "disk / database: allocated size of the data dir / page_count*page_size ({:.1} MB); max over \
         500 ms samples once the database reached {:.1} MB",
        db as f64 / MB,
        size as f64 / 10.0 / MB
    );
    for n in nodes.iter() {
        let steady = io::allocated(&n.dir) as f64 / db as f64;
        let m = max.get(&n.id).map_or("-".into(), |m| format!("{m:.2} x"));
        row(&format!("  node {}", n.id), format!("steady {steady:.2} x, max sampled {m}"));
    }
    Ok(())
}

/// Snapshots built by the running nodes since they started, together.
async fn built(http: &reqwest::Client, nodes: &[Proc]) -> u64 {
    let mut total = 0;
    for n in nodes.iter().filter(|n| n.running()) {
        total +=
            io::status(http, &n.api).await.and_then(|s| s["node"]["snapshots_built"].as_u64()).unwrap_or(0);
    }
    total
}

/// Load `api` with 1 KiB rows until the database holds `size` bytes; (rows, database bytes
/// before, seconds).
async fn load(http: &reqwest::Client, api: &str, size: u64) -> anyhow::Result<(u64, u64, f64)> {
    let bytes0 = io::logical_size(http, api).await.context("read the database size")?;
    let done = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let t = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..LOADERS {
        let (http, api, done, next) = (http.clone(), api.to_owned(), done.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let first = next.fetch_add(TXN_ROWS, Ordering::Relaxed);
                let stmts: Vec<_> = (first..first + TXN_ROWS)
                    .map(|id| json!(["INSERT INTO scale (id, v) VALUES (?, ?)", id, payload(id)]))
                    .collect();
                io::execute(&http, &api, &serde_json::Value::Array(stmts), true).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let mut last_report = Instant::now();
    let r = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if writers.iter().any(|w| w.is_finished()) {
                return Ok(()); // a writer failed: its error is collected below
            }
            let b = io::logical_size(http, api).await?;
            if b >= size {
                return Ok(());
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                println!("  ... loading: {:.1} MB after {:.0} s", b as f64 / MB, t.elapsed().as_secs_f64());
                last_report = Instant::now();
            }
            anyhow::ensure!(t.elapsed() < PATIENCE * 6, "the load did not reach the size in an hour");
        }
    }
    .await;
    done.store(true, Ordering::Relaxed);
    for w in writers {
        w.await??;
    }
    r?;
    let secs = t.elapsed().as_secs_f64();
    Ok((next.load(Ordering::Relaxed) - 1, bytes0, secs))
}

/// One small INSERT every 50 ms on `api` for `window`, each in its own task so that a stalled
/// write does not hold back the next ones; the latencies (µs, sorted) and the failed writes.
async fn probe(http: &reqwest::Client, api: &str, window: Duration) -> (Vec<u64>, usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + window;
    let mut tasks = Vec::new();
    let mut i = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        let (http, api) = (http.clone(), api.to_owned());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let stmt = json!([["INSERT INTO small (k, v) VALUES (?, 'probe')", -(i as i64)]]);
            io::execute(&http, &api, &stmt, false).await.map(|()| t.elapsed().as_micros() as u64)
        }));
        i += 1;
    }
    let (mut lat, mut failed) = (Vec::new(), 0);
    for t in tasks {
        match t.await {
            Ok(Ok(us)) => lat.push(us),
            _ => failed += 1,
        }
    }
    lat.sort_unstable();
    (lat, failed)
}

fn print_probe(what: &str, lat: Vec<u64>, failed: usize, note: &str) {
    row(
        what,
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms  ({} writes, {failed} failed; {note})",
            io::pct_ms(&lat, 0.5),
            io::pct_ms(&lat, 0.99),
            io::pct_ms(&lat, 1.0),
            lat.len()
        ),
    );
}

/// Until `stop`: `burst` small writes on `leader` (keys from `first`), then a snapshot on every
/// node of `apis` at once. Returns the rounds completed and the seconds taken.
async fn snapshot_storm(
    http: &reqwest::Client,
    leader: &str,
    apis: &[String],
    rows: u64,
    burst: u64,
    first: u64,
    stop: &AtomicBool,
) -> anyhow::Result<(u64, f64)> {
    let t = Instant::now();
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        small_writes(http, leader, burst, 4, rows, first + rounds * burst.max(1)).await?;
        let builds: Vec<_> = apis
            .iter()
            .map(|a| {
                let (http, a) = (http.clone(), a.clone());
                tokio::spawn(async move { io::snapshot(&http, &a, PATIENCE).await })
            })
            .collect();
        for b in builds {
            b.await??;
        }
        rounds += 1;
    }
    Ok((rounds, t.elapsed().as_secs_f64()))
}

/// Poll `node` until its applied index reaches `target`; with a PID, sample its resident
/// memory every 100 ms meanwhile. Its last status and the largest RSS sampled.
async fn wait_applied(
    http: &reqwest::Client,
    node: &Proc,
    target: u64,
    pid: Option<u32>,
) -> anyhow::Result<(serde_json::Value, u64)> {
    let deadline = Instant::now() + PATIENCE;
    let (mut rss, mut sampled) = (0, Instant::now() - Duration::from_secs(1));
    loop {
        if let Some(p) = pid.filter(|_| sampled.elapsed() >= Duration::from_millis(100)) {
            rss = rss.max(io::rss_bytes(p).unwrap_or(0));
            sampled = Instant::now();
        }
        if let Some(s) = io::status(http, &node.api).await {
            if s["applied_index"].as_u64().is_some_and(|a| a >= target) {
                if let Some(p) = pid {
                    rss = rss.max(io::rss_bytes(p).unwrap_or(0));
                }
                return Ok((s, rss));
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "node {} did not reach index {target}", node.id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
