//! One torture run: start a cluster, run the workloads while a fault schedule plays, heal,
//! check, summarize.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hiqlite::{Consistency, Value};

use super::checker::check_registers;
use super::history::RegEntry;
use super::net::Link;
use super::nodes::Cluster;
use super::workload::{self, Ctx, Rng};

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Isolate one random node from the others (both directions).
    Partition,
    /// Isolate the leader from the majority.
    Leader,
    /// Cut the traffic between the leader and the others in one direction only.
    OneWay,
    /// Delay every link by 20–150 ms.
    Delay,
    /// SIGSTOP a node (the leader half of the time), then SIGCONT.
    Pause,
    /// SIGKILL a node (the leader half of the time), then restart it.
    Kill,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 6] =
        [Fault::Partition, Fault::Leader, Fault::OneWay, Fault::Delay, Fault::Pause, Fault::Kill];

    /// Parse a name (`partition`, `leader`, `oneway`, `delay`, `pause`, `kill`).
    pub fn parse(s: &str) -> Option<Fault> {
        Some(match s {
            "partition" => Fault::Partition,
            "leader" => Fault::Leader,
            "oneway" => Fault::OneWay,
            "delay" => Fault::Delay,
            "pause" => Fault::Pause,
            "kill" => Fault::Kill,
            _ => return None,
        })
    }
}

/// Which workloads to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Registers with read/write/CAS, checked for linearizability.
    Register,
    /// Transfers; every read sums to the total.
    Bank,
    /// Unique inserts; every acknowledged one survives.
    Set,
    /// Six clients take one distributed lock in turn; holders never overlap, tokens grow.
    Lock,
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `hiqlite` binary.
    pub bin: PathBuf,
    /// Working directory (data, logs).
    pub dir: PathBuf,
    /// 3 or 5.
    pub nodes: usize,
    /// How long the workloads run.
    pub duration: Duration,
    /// Faults to draw from (empty: none).
    pub faults: Vec<Fault>,
    /// Workloads to run (concurrently, each on its own table).
    pub workloads: Vec<Workload>,
    /// Seed of the schedule and the clients.
    pub seed: u64,
    /// Where to save histories when an anomaly is found.
    pub history_dir: Option<PathBuf>,
}

/// What a run did and found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Operations by outcome: ok, failed (not applied), unknown.
    pub ops: [u64; 3],
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Everything the checkers rejected.
    pub anomalies: Vec<String>,
    /// Latency of successful operations: p50, p99, max (ms).
    pub latency_ms: [f64; 3],
    /// Elections during the run (term increase).
    pub elections: u64,
    /// Lock workload: holdings with a valid lease, holdings cut short by their lease, failed
    /// acquisitions.
    pub locks: [u64; 3],
    /// Wall time.
    pub elapsed: Duration,
    /// Where the history was saved (when there were anomalies).
    pub history: Option<PathBuf>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "torture run: {:.1}s", self.elapsed.as_secs_f64())?;
        writeln!(
            f,
            "  operations: {} ok, {} failed (not applied), {} unknown",
            self.ops[0], self.ops[1], self.ops[2]
        )?;
        let faults: Vec<String> = self.faults.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        writeln!(f, "  faults: {}", if faults.is_empty() { "none".into() } else { faults.join(", ") })?;
        writeln!(
            f,
            "  latency of ok operations: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.latency_ms[0], self.latency_ms[1], self.latency_ms[2]
        )?;
        writeln!(f, "  elections (term increase): {}", self.elections)?;
        if self.locks.iter().any(|&n| n > 0) {
            writeln!(
                f,
                "  lock: {} holdings, {} cut short by their lease, {} acquisitions failed",
                self.locks[0], self.locks[1], self.locks[2]
            )?;
        }
        writeln!(f, "  anomalies: {}", self.anomalies.len())?;
        for a in self.anomalies.iter().take(20) {
            writeln!(f, "    - {a}")?;
        }
        if let Some(h) = &self.history {
            writeln!(f, "  history saved to {}", h.display())?;
        }
        Ok(())
    }
}

async fn inject(c: &mut Cluster, fault: Fault, rng: &mut Rng) -> std::io::Result<()> {
    let n = c.nodes.len();
    let others = |x: usize| (0..n).filter(move |&i| i != x).collect::<Vec<_>>();
    let leader_or_random = |l: Option<usize>, rng: &mut Rng| {
        l.filter(|_| rng.below(2) == 0).unwrap_or_else(|| rng.below(n as u64) as usize)
    };
    match fault {
        Fault::Partition => {
            let x = rng.below(n as u64) as usize;
            c.net.partition(&[x], &others(x));
        }
        Fault::Leader => {
            let l = c.leader().await.unwrap_or(0);
            c.net.partition(&[l], &others(l));
        }
        Fault::OneWay => {
            let l = c.leader().await.unwrap_or(0);
            let outbound = rng.below(2) == 0;
            for o in others(l) {
                if outbound {
                    c.net.set(l, o, Link::Cut);
                } else {
                    c.net.set(o, l, Link::Cut);
                }
            }
        }
        Fault::Delay => {
            let d = Duration::from_millis(20 + rng.below(130));
            for a in 0..n {
                for b in others(a) {
                    c.net.set(a, b, Link::Delay(d));
                }
            }
        }
        Fault::Pause => {
            let l = c.leader().await;
            let x = leader_or_random(l, rng);
            c.pause(x);
        }
        Fault::Kill => {
            let l = c.leader().await;
            let x = leader_or_random(l, rng);
            c.kill(x);
        }
    }
    Ok(())
}

fn pct(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    f64::from(v[((v.len() - 1) as f64 * p).round() as usize]) / 1000.0
}

/// Run the workloads under the fault schedule and check the histories.
pub async fn run(o: &Options) -> anyhow::Result<Summary> {
    let started = Instant::now();
    std::fs::create_dir_all(&o.dir)?;
    let mut c = Cluster::start(o.bin.clone(), o.dir.clone(), o.nodes).await?;
    let urls: Vec<String> = (0..o.nodes).map(|i| c.url(i)).collect();
    let admin = hiqlite::Client::remote(urls.clone()).timeout(Duration::from_secs(60)).build()?;
    if let Err(e) = admin.wait_for_leader(Duration::from_secs(60)).await {
        anyhow::bail!("no leader: {e}\n{}", c.log_of(0));
    }
    let wants = |w: Workload| o.workloads.contains(&w);
    if wants(Workload::Register) {
        workload::register_setup(&admin).await?;
    }
    if wants(Workload::Bank) {
        workload::bank_setup(&admin).await?;
    }
    if wants(Workload::Set) {
        workload::set_setup(&admin).await?;
    }
    let term0 = c.max_term().await;

    let ctx = Ctx {
        urls: urls.clone(),
        t0: Instant::now(),
        stop: Arc::new(AtomicBool::new(false)),
        latencies: Arc::new(Mutex::new(Vec::new())),
    };
    let mut rng = Rng(o.seed);
    let mut reg_tasks = Vec::new();
    let mut bank_tasks = Vec::new();
    let mut set_tasks = Vec::new();
    let mut lock_tasks = Vec::new();
    if wants(Workload::Lock) {
        for p in 0..6 {
            lock_tasks.push(tokio::spawn(super::locks::lock_client(ctx.clone(), p, p, rng.next_u64())));
        }
    }
    for p in 0..4 {
        if wants(Workload::Register) {
            reg_tasks.push(tokio::spawn(workload::register_client(ctx.clone(), p, rng.next_u64())));
        }
        if wants(Workload::Bank) {
            bank_tasks.push(tokio::spawn(workload::bank_client(ctx.clone(), p, rng.next_u64())));
        }
    }
    for p in 0..2 {
        if wants(Workload::Set) {
            set_tasks.push(tokio::spawn(workload::set_client(ctx.clone(), p)));
        }
    }

    // The fault schedule: quiet, fault, hold, heal; the last stretch stays quiet.
    let mut summary = Summary::default();
    let end = Instant::now() + o.duration;
    let quiet_end = end.checked_sub(Duration::from_secs(2)).unwrap_or(end);
    while Instant::now() + Duration::from_secs(3) < quiet_end {
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1000))).await;
        if o.faults.is_empty() {
            continue;
        }
        let fault = o.faults[rng.below(o.faults.len() as u64) as usize];
        inject(&mut c, fault, &mut rng).await?;
        *summary.faults.entry(format!("{fault:?}").to_lowercase()).or_default() += 1;
        let hold = Duration::from_millis(1000 + rng.below(2500));
        tokio::time::sleep(hold.min(quiet_end.saturating_duration_since(Instant::now()))).await;
        c.heal_all()?;
    }
    c.heal_all()?;
    tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
    ctx.stop.store(true, Ordering::Relaxed);

    let mut history: Vec<RegEntry> = Vec::new();
    for t in reg_tasks {
        history.extend(t.await?);
    }
    let mut bank = Vec::new();
    for t in bank_tasks {
        bank.push(t.await?);
    }
    let mut sets = Vec::new();
    for t in set_tasks {
        sets.push(t.await?);
    }
    let mut held = Vec::new();
    for t in lock_tasks {
        let log = t.await?;
        summary.locks[0] += log.held.iter().filter(|h| h.leave > h.enter).count() as u64;
        summary.locks[1] += log.lapsed;
        summary.locks[2] += log.failed;
        held.extend(log.held);
    }
    summary.anomalies.extend(super::locks::check_locks(&held).into_iter().map(|a| format!("lock: {a}")));
    summary.ops[0] += summary.locks[0];
    summary.ops[1] += summary.locks[2];

    if !c.converge(Duration::from_secs(60)).await {
        summary.anomalies.push("the cluster did not converge within 60 s after healing".into());
    }
    // Final reads: each register once more (linearizable), every node's set and bank contents.
    if wants(Workload::Register) {
        let keys: BTreeSet<u32> = history.iter().map(|e| e.key).collect();
        for key in keys {
            let invoke = ctx.t0.elapsed().as_nanos() as u64;
            let r = admin
                .query_with("SELECT v FROM reg WHERE k = ?", hiqlite::params![key], Consistency::Linearizable)
                .await?;
            let value = match r.rows.first().and_then(|r| r.first()) {
                Some(Value::Integer(v)) => Some(*v),
                _ => None,
            };
            history.push(RegEntry {
                process: usize::MAX,
                key,
                op: super::history::RegOp::Read { value },
                invoke,
                complete: ctx.t0.elapsed().as_nanos() as u64,
                outcome: super::history::Outcome::Ok,
                level: Some("linearizable".into()),
            });
        }
        for e in &history {
            summary.ops[match e.outcome {
                super::history::Outcome::Ok => 0,
                super::history::Outcome::Fail => 1,
                super::history::Outcome::Unknown => 2,
            }] += 1;
        }
        for k in check_registers(&history, 0) {
            summary.anomalies.push(format!("register {k}: history is not linearizable"));
        }
    }
    for b in &bank {
        summary.ops[0] += b.transfers[0] + b.reads;
        summary.ops[1] += b.transfers[1];
        summary.ops[2] += b.transfers[2];
        summary.anomalies.extend(b.anomalies.iter().cloned());
    }
    if wants(Workload::Bank) {
        for i in 0..o.nodes {
            let node = hiqlite::Client::remote([c.url(i)]).discover(false).build()?;
            let rows = node.query_with("SELECT sum(bal), min(bal) FROM acct", (), Consistency::Local).await?;
            let row = rows.rows.first().cloned().unwrap_or_default();
            if row.first() != Some(&Value::Integer(workload::ACCOUNTS * workload::START_BALANCE)) {
                summary.anomalies.push(format!("bank: node {} ends with total {:?}", i + 1, row));
            }
        }
    }
    if wants(Workload::Set) {
        let mut finals = Vec::new();
        for i in 0..o.nodes {
            let node = hiqlite::Client::remote([c.url(i)]).discover(false).build()?;
            let rows = node.query_with("SELECT v FROM sett", (), Consistency::Local).await?;
            finals.push(
                rows.rows
                    .iter()
                    .filter_map(|r| match r.first() {
                        Some(Value::Integer(v)) => Some(*v),
                        _ => None,
                    })
                    .collect::<BTreeSet<i64>>(),
            );
        }
        for s in &sets {
            summary.ops[0] += s.acked.len() as u64;
            summary.ops[1] += s.failed.len() as u64;
            summary.ops[2] += s.unknown.len() as u64;
        }
        summary.anomalies.extend(workload::check_set(&sets, &finals));
    }
    summary.elections = c.max_term().await.saturating_sub(term0);
    let mut lat = ctx.latencies.lock().map(|l| l.clone()).unwrap_or_default();
    summary.latency_ms = [pct(&mut lat, 0.5), pct(&mut lat, 0.99), pct(&mut lat, 1.0)];
    if !summary.anomalies.is_empty() {
        let dir = o.history_dir.clone().unwrap_or_else(|| o.dir.clone());
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("history-seed-{}.json", o.seed));
        std::fs::write(&path, serde_json::to_vec_pretty(&history)?)?;
        if !held.is_empty() {
            std::fs::write(
                dir.join(format!("locks-seed-{}.json", o.seed)),
                serde_json::to_vec_pretty(&held)?,
            )?;
        }
        summary.history = Some(path);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}
