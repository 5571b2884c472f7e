//! `hiqlite bench`: throughput and latency of a local cluster against raw SQLite on the same disk.
//! Every figure is printed with its durability mode; leader changes during the run are counted
//! (a run that changes leader is flagged as failed).

use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hiqlite::{params, Peer, Statement};

/// Options of `hiqlite bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Number of nodes (1 or 3 are typical).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Seconds per timed scenario.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Rows of the bulk-insert scenario.
    #[arg(long, default_value_t = 100_000)]
    bulk_rows: u64,
    /// Rows per transaction in the bulk-insert scenario.
    #[arg(long, default_value_t = 1_000)]
    txn_rows: u64,
    /// Directory for the data (on the disk to measure); removed afterwards.
    #[arg(long, default_value = "hiqlite-bench-data")]
    dir: PathBuf,
    /// Skip the raw SQLite comparison.
    #[arg(long)]
    no_sqlite: bool,
    /// Run only these scenarios (comma-separated: insert, txn, kv, bulk, select, cached).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Print where the time of one write goes (stage by stage, medians over sequential inserts
    /// at concurrency 1) before the scenarios.
    #[arg(long)]
    breakdown: bool,
    /// Measure failover instead: kill the leader of a 3-process cluster this many times and
    /// print how long writes were refused each time.
    #[arg(long)]
    failover: Option<usize>,
    /// Measure what size costs instead: load a 3-process cluster to SIZE (e.g. 1.5GB, 200MB;
    /// bare numbers are bytes) of 1 KiB rows, then time snapshot builds, write latency during
    /// snapshots, disk per byte of database, a node joining and a killed node catching up.
    #[arg(long, value_name = "SIZE", value_parser = crate::bench_scale_io::parse_size, conflicts_with = "failover")]
    scale: Option<u64>,
    /// Concurrency levels of the insert scenario (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4, 16, 64])]
    concurrency: Vec<usize>,
    /// Benchmark the remote client over HTTP (against `--urls`, or a local cluster started for
    /// the run) next to raw keep-alive HTTP requests doing the same work.
    #[arg(long)]
    remote: bool,
    /// API URLs of the cluster for `--remote` (comma-separated); empty: start a local one.
    #[arg(long, value_delimiter = ',')]
    urls: Vec<String>,
}

impl BenchArgs {
    fn wants(&self, s: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == s)
    }
}

pub(crate) struct Sample {
    pub(crate) ops: u64,
    pub(crate) secs: f64,
    pub(crate) lat_us: Vec<u32>,
}

impl Sample {
    fn pct(&mut self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        self.lat_us.sort_unstable();
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.lat_us[i]) / 1000.0
    }
    pub(crate) fn print(mut self, name: &str, mode: &str) {
        let (p50, p99) = (self.pct(0.50), self.pct(0.99));
        println!("{name:<34} {:>12.0} {:>9.3} {:>9.3}   {mode}", self.ops as f64 / self.secs, p50, p99);
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Run `op` from `conc` tasks for `secs`, collecting per-operation latency.
pub(crate) async fn timed<F, Fut>(conc: usize, secs: f64, op: F) -> anyhow::Result<Sample>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = hiqlite::Result<()>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for w in 0..conc as u64 {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                op(w * 1_000_000_000 + i).await?;
                lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                i += 1;
            }
            Ok::<_, hiqlite::Error>(lat)
        }));
    }
    let mut lat_us = Vec::new();
    for t in tasks {
        lat_us.extend(t.await??);
    }
    Ok(Sample { ops: lat_us.len() as u64, secs: start.elapsed().as_secs_f64(), lat_us })
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.nodes >= 1, "--nodes must be at least 1");
    if a.remote && !a.urls.is_empty() {
        return crate::bench_remote::run(&a.urls, a.secs).await;
    }
    anyhow::ensure!(!a.dir.exists(), "{} exists; choose another --dir or remove it", a.dir.display());
    std::fs::create_dir_all(&a.dir)?;
    let result = match (a.failover, a.scale) {
        (Some(kills), _) => crate::bench_failover::run(&a.dir, kills).await,
        (None, Some(size)) => crate::bench_scale::run(&a.dir, size).await,
        (None, None) => run_in(&a).await,
    };
    let _ = std::fs::remove_dir_all(&a.dir);
    result
}

async fn run_in(a: &BenchArgs) -> anyhow::Result<()> {
    let mut peers = Vec::new();
    for id in 1..=a.nodes {
        peers.push(Peer {
            id,
            raft_addr: format!("127.0.0.1:{}", free_port()?),
            api_addr: format!("127.0.0.1:{}", free_port()?),
        });
    }
    let (clients, leader_id) = crate::start_local(&a.dir, &peers, Some("bench-secret-0123")).await?;
    if a.remote {
        println!("remote bench against {} local node(s) in this process", a.nodes);
        let urls: Vec<String> = peers.iter().map(|p| format!("http://{}", p.api_addr)).collect();
        let r = crate::bench_remote::run(&urls, a.secs).await;
        for c in &clients {
            c.shutdown().await?;
        }
        return r;
    }
    let db = clients
        .iter()
        .find(|c| c.node().is_some_and(|n| n.id() == leader_id))
        .cloned()
        .unwrap_or_else(|| clients[0].clone());
    let term0 = db.status().await?.term;
    let mut leader_changes = 0u64;
    let mut watch_leader = {
        let n = db.node().cloned().context("bench runs embedded nodes")?;
        tokio::spawn(async move {
            let mut changes = 0u64;
            let mut last = n.status().leader;
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let now = n.status().leader;
                if now != last {
                    changes += 1;
                    last = now;
                }
                if n.status().state == "Shutdown" {
                    return changes;
                }
            }
        })
    };

    println!(
        "hiqlite bench: {} node(s) in one process, peers over loopback HTTP (appends on upgraded streams); data in {}",
        a.nodes,
        a.dir.display()
    );
    println!("{:<34} {:>12} {:>9} {:>9}   durability", "scenario", "ops/s", "p50 ms", "p99 ms");
    let hq_mode = if a.nodes > 1 {
        "hiqlite: log fdatasync'd on a majority before ack"
    } else {
        "hiqlite: log fdatasync'd before ack"
    };

    db.execute("CREATE TABLE bench (id INTEGER PRIMARY KEY, k INTEGER, v TEXT)", ()).await?;
    if a.breakdown {
        breakdown(a, &db, leader_id).await?;
    }
    for &conc in &a.concurrency {
        if !a.wants("insert") {
            break;
        }
        let c = db.clone();
        let s = timed(conc, a.secs, move |i| {
            let c = c.clone();
            async move {
                c.execute("INSERT INTO bench (k, v) VALUES (?, ?)", params![i as i64, "payload-0123456789"])
                    .await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("insert, concurrency {conc}"), hq_mode);
    }

    if a.wants("txn") {
        txn_scenarios(a, &db, hq_mode).await?;
    }
    if a.wants("kv") {
        crate::bench_kv::run(&db, a.secs, hq_mode).await?;
    }

    let t = Instant::now();
    let mut lat = Vec::new();
    let mut done = 0u64;
    let bulk_rows = if a.wants("bulk") || a.wants("select") || a.wants("cached") { a.bulk_rows } else { 0 };
    while done < bulk_rows {
        let n = a.txn_rows.min(bulk_rows - done);
        let stmts: Vec<Statement> = (0..n)
            .map(|i| {
                Statement::new(
                    "INSERT INTO bench (k, v) VALUES (?, ?)",
                    params![(done + i) as i64, "bulk-row"],
                )
            })
            .collect();
        let tt = Instant::now();
        db.transaction(stmts).await?;
        lat.push(tt.elapsed().as_micros() as u32);
        done += n;
    }
    let secs = t.elapsed().as_secs_f64();
    if a.wants("bulk") {
        Sample { ops: bulk_rows, secs, lat_us: lat }
            .print(&format!("rows in txns of {} (rows/s)", a.txn_rows), hq_mode);
    }

    let max_id = db.query("SELECT max(id) FROM bench", ()).await?;
    let max_id = match max_id.rows.first().and_then(|r| r.first()) {
        Some(hiqlite::Value::Integer(m)) => *m,
        _ => 1,
    };
    for conc in [1usize, 4, 16] {
        if !a.wants("select") {
            break;
        }
        let c = db.clone();
        let s = timed(conc, a.secs, move |i| {
            let c = c.clone();
            async move {
                let id = (i.wrapping_mul(2_654_435_761) % max_id as u64) as i64 + 1;
                c.query("SELECT k, v FROM bench WHERE id = ?", params![id]).await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("point select, concurrency {conc}"), "local read (leader replica)");
    }
    for conc in [1usize, 2, 4, 16] {
        if !a.wants("cached") {
            break;
        }
        let c = db.clone();
        // Hot keys, so that the cache holds them all.
        let s = timed(conc, a.secs, move |i| {
            let c = c.clone();
            async move {
                let id = (i % 1000) as i64 + 1;
                c.query_cached("SELECT k, v FROM bench WHERE id = ?", params![id]).await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("cached point select, concurrency {conc}"), "query cache (leader)");
    }
    let term1 = db.status().await?.term;
    for c in &clients {
        c.shutdown().await?;
    }
    leader_changes += tokio::time::timeout(Duration::from_secs(2), &mut watch_leader)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(0);
    watch_leader.abort();

    if !a.no_sqlite {
        for (sync, label) in
            [("FULL", "raw SQLite WAL synchronous=FULL"), ("NORMAL", "raw SQLite WAL synchronous=NORMAL")]
        {
            raw_sqlite(a, sync, label)?;
        }
    }
    println!("leader changes during the run: {leader_changes} (terms {term0} -> {term1})");
    if leader_changes > 0 || term1 != term0 {
        println!("RUN FAILED: leadership changed under load");
        anyhow::bail!("leadership changed during the benchmark");
    }
    Ok(())
}

/// Sequential inserts, sequential key/value puts, then sequential transactions of `--txn-rows` rows, with the write path's
/// stage timestamps on; prints the median time spent reaching each stage from the one before.
async fn breakdown(a: &BenchArgs, db: &hiqlite::Client, leader: u64) -> anyhow::Result<()> {
    for i in 0..200 {
        db.execute("INSERT INTO bench (k, v) VALUES (?, ?)", params![-i, "warm-up"]).await?;
    }
    hiqlite::breakdown::start();
    for i in 0..3000 {
        db.execute("INSERT INTO bench (k, v) VALUES (?, ?)", params![-i, "payload-0123456789"]).await?;
    }
    print_breakdown("insert, concurrency 1", leader);
    hiqlite::breakdown::start();
    for i in 0..3000 {
        db.kv_put("bench", &format!("k{}", i % 1000), b"value-0123456789", None).await?;
    }
    print_breakdown("kv put, concurrency 1", leader);
    hiqlite::breakdown::start();
    for t in 0..100u64 {
        let stmts: Vec<Statement> = (0..a.txn_rows)
            .map(|i| {
                Statement::new(
                    "INSERT INTO bench (k, v) VALUES (?, ?)",
                    params![(t * a.txn_rows + i) as i64, "bulk-row"],
                )
            })
            .collect();
        db.transaction(stmts).await?;
    }
    print_breakdown(&format!("transactions of {} rows", a.txn_rows), leader);
    db.execute("DELETE FROM bench", ()).await?;
    Ok(())
}

fn print_breakdown(what: &str, leader: u64) {
    let events = hiqlite::breakdown::stop();
    let (rows, total, n) = hiqlite::breakdown::report(&events, leader);
    println!("where one write's time goes ({what}, median of {n} writes):");
    for (label, us) in &rows {
        println!("  {label:<36} {us:>8.1} us");
    }
    println!("  {:<36} {total:>8.1} us  (median write, not the sum of medians)", "whole write");
}

/// One interactive transaction: BEGIN, read a balance, write it back, COMMIT.
async fn read_modify_write(c: &hiqlite::Client, i: u64) -> hiqlite::Result<()> {
    let id = (i.wrapping_mul(2_654_435_761) % 1000) as i64 + 1;
    let tx = c.begin().await?;
    let rows = tx.query("SELECT bal FROM acct WHERE id = ?", params![id]).await?;
    let bal = match rows.rows.first().and_then(|r| r.first()) {
        Some(hiqlite::Value::Integer(b)) => *b,
        _ => 0,
    };
    tx.execute("UPDATE acct SET bal = ? WHERE id = ?", params![bal + 1, id]).await?;
    tx.commit().await
}

/// Interactive transactions at concurrency 1 and 16, and what one transaction client does to
/// plain writes at concurrency 16 beside it (transactions hold the write gate while open).
async fn txn_scenarios(a: &BenchArgs, db: &hiqlite::Client, mode: &str) -> anyhow::Result<()> {
    db.execute("CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)", ()).await?;
    db.execute(
        "INSERT INTO acct (id, bal) SELECT value, 0 FROM (WITH RECURSIVE s(value) AS \
         (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 1000) SELECT value FROM s)",
        (),
    )
    .await?;
    for conc in [1usize, 16] {
        let c = db.clone();
        let s = timed(conc, a.secs, move |i| {
            let c = c.clone();
            async move { read_modify_write(&c, i).await }
        })
        .await?;
        s.print(&format!("txn BEGIN/read/write/COMMIT, conc {conc}"), mode);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (c, flag) = (db.clone(), stop.clone());
    let beside = tokio::spawn(async move {
        let mut n = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            read_modify_write(&c, n).await?;
            n += 1;
        }
        Ok::<u64, hiqlite::Error>(n)
    });
    let c = db.clone();
    let s = timed(16, a.secs, move |i| {
        let c = c.clone();
        async move {
            c.execute("INSERT INTO bench (k, v) VALUES (?, ?)", params![i as i64, "payload-0123456789"])
                .await?;
            Ok(())
        }
    })
    .await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let txns = beside.await??;
    s.print("insert, conc 16, beside 1 txn client", mode);
    println!(
        "{:<34} {:>12.0}   (transactions of that client per second)",
        "  txn client beside the inserts",
        txns as f64 / s_secs(a)
    );
    Ok(())
}

fn s_secs(a: &BenchArgs) -> f64 {
    a.secs.max(f64::EPSILON)
}

fn raw_sqlite(a: &BenchArgs, sync: &str, label: &str) -> anyhow::Result<()> {
    let path = a.dir.join(format!("raw-{sync}.db"));
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; CREATE TABLE bench (id INTEGER PRIMARY KEY, k INTEGER, v TEXT);"
    ))?;
    let end = Instant::now() + Duration::from_secs_f64(a.secs);
    let t = Instant::now();
    let mut lat = Vec::new();
    {
        let mut st = conn.prepare("INSERT INTO bench (k, v) VALUES (?, ?)")?;
        let mut i = 0i64;
        while Instant::now() < end {
            let tt = Instant::now();
            st.execute(rusqlite::params![i, "payload-0123456789"])?;
            lat.push(tt.elapsed().as_micros() as u32);
            i += 1;
        }
    }
    Sample { ops: lat.len() as u64, secs: t.elapsed().as_secs_f64(), lat_us: lat }
        .print("insert, concurrency 1", label);

    let t = Instant::now();
    let mut lat = Vec::new();
    let mut done = 0u64;
    while done < a.bulk_rows {
        let n = a.txn_rows.min(a.bulk_rows - done);
        let tt = Instant::now();
        let tx = conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO bench (k, v) VALUES (?, ?)")?;
            for i in 0..n {
                st.execute(rusqlite::params![(done + i) as i64, "bulk-row"])?;
            }
        }
        tx.commit()?;
        lat.push(tt.elapsed().as_micros() as u32);
        done += n;
    }
    Sample { ops: a.bulk_rows, secs: t.elapsed().as_secs_f64(), lat_us: lat }
        .print(&format!("rows in txns of {} (rows/s)", a.txn_rows), label);

    let max_id: i64 = conn.query_row("SELECT max(id) FROM bench", [], |r| r.get(0))?;
    let end = Instant::now() + Duration::from_secs_f64(a.secs);
    let t = Instant::now();
    let mut lat = Vec::new();
    {
        let mut st = conn.prepare("SELECT k, v FROM bench WHERE id = ?")?;
        let mut i = 0u64;
        while Instant::now() < end {
            let id = (i.wrapping_mul(2_654_435_761) % max_id as u64) as i64 + 1;
            let tt = Instant::now();
            let _: (i64, String) = st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            lat.push(tt.elapsed().as_micros() as u32);
            i += 1;
        }
    }
    Sample { ops: lat.len() as u64, secs: t.elapsed().as_secs_f64(), lat_us: lat }
        .print("point select, concurrency 1", label);
    Ok(())
}
