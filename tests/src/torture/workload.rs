//! The workloads: clients that run operations against the cluster and record what happened.
//!
//! - register: read (linearizable or strong) / write / compare-and-set on a few keys;
//! - bank: transfers between accounts in transactions, and reads of all balances;
//! - set: unique inserts, all checked at the end.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hiqlite::{params, Client, Consistency, Error, RetryPolicy, Value};

use super::history::{Outcome, RegEntry, RegOp};

/// Keys of the register workload in use at a time.
pub const KEYS: u32 = 3;
/// How long a set of keys is used before the clients move to fresh ones. Short per-key
/// histories keep the linearizability search small (as Jepsen's independent keys do); a long
/// run checks many of them.
pub const KEY_EPOCH: Duration = Duration::from_secs(4);
/// Accounts of the bank workload, and the balance each starts with.
pub const ACCOUNTS: i64 = 5;
/// Starting balance of each account.
pub const START_BALANCE: i64 = 100;

/// A small deterministic generator (SplitMix64), so a seed replays a schedule.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// How an error leaves an operation: refused before being applied, or unknown.
pub fn outcome_of(e: &Error) -> Outcome {
    match e {
        Error::Sql { .. }
        | Error::NoLeader(_)
        | Error::NotLeader { .. }
        | Error::Unreachable(_)
        | Error::Unauthorized(_)
        | Error::InvalidRequest(_)
        | Error::Config(_) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

/// Shared by the workloads of one run.
#[derive(Clone)]
pub struct Ctx {
    /// API URLs of all nodes.
    pub urls: Vec<String>,
    /// Start of the run (history times are relative to it).
    pub t0: Instant,
    /// Set when the clients must stop.
    pub stop: Arc<AtomicBool>,
    /// Latencies of successful operations, in microseconds.
    pub latencies: Arc<Mutex<Vec<u32>>>,
}

impl Ctx {
    fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// A client of the cluster as the workloads use it: every node known, a short deadline so
    /// that operations end (as unknown) while a fault lasts.
    pub fn client(&self, consistency: Consistency) -> hiqlite::Result<Client> {
        Client::remote(self.urls.clone())
            .timeout(Duration::from_secs(3))
            .consistency(consistency)
            .retry(RetryPolicy { max_attempts: 30, ..Default::default() })
            .build()
    }

    /// Record the latency of a successful operation that started at `since`.
    pub fn record_latency(&self, since: Instant) {
        let us = since.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        if let Ok(mut l) = self.latencies.lock() {
            l.push(us);
        }
    }
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v {
        Some(Value::Integer(i)) => Some(*i),
        _ => None,
    }
}

// ---- register ----------------------------------------------------------------------------

/// Create the register table. Each key is created with 0 by the first client to use it
/// (`INSERT OR IGNORE`, a no-op for the model: the register reads 0 until written).
pub async fn register_setup(db: &Client) -> hiqlite::Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS reg (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)", ()).await?;
    Ok(())
}

/// A `level=strong` read over the plain HTTP API (the `Client` has no strong level: strong
/// reads go through the log, which only the rqlite API offers).
async fn strong_read(http: &reqwest::Client, url: &str, key: u32) -> Result<Option<i64>, Outcome> {
    let body = serde_json::json!([["SELECT v FROM reg WHERE k = ?", key]]).to_string();
    let r = http
        .post(format!("{url}/db/query?level=strong"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| if e.is_connect() { Outcome::Fail } else { Outcome::Unknown })?;
    let ok = r.status().is_success();
    let v: serde_json::Value =
        serde_json::from_str(&r.text().await.map_err(|_| Outcome::Unknown)?).map_err(|_| Outcome::Unknown)?;
    if !ok || v["results"][0].get("error").is_some() {
        return Err(Outcome::Unknown);
    }
    Ok(v["results"][0]["values"][0][0].as_i64())
}

/// One register client: runs until `ctx.stop`, returns its history.
pub async fn register_client(ctx: Ctx, process: usize, seed: u64) -> Vec<RegEntry> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let Ok(db) = ctx.client(Consistency::Linearizable) else { return out };
    let http = match reqwest::Client::builder().timeout(Duration::from_secs(3)).build() {
        Ok(h) => h,
        Err(_) => return out,
    };
    let mut counter = 0i64;
    let mut ready = std::collections::HashSet::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        let epoch = (ctx.t0.elapsed().as_millis() / KEY_EPOCH.as_millis()) as u32;
        let key = epoch * KEYS + rng.below(u64::from(KEYS)) as u32;
        if !ready.contains(&key) {
            // The row must exist before an operation on it is recorded; retry while faults last.
            match db.execute("INSERT OR IGNORE INTO reg (k, v) VALUES (?, 0)", params![key]).await {
                Ok(_) => {
                    ready.insert(key);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
            continue;
        }
        counter += 1;
        let fresh = (process as i64 + 1) * 1_000_000_000 + counter;
        let invoke = ctx.now();
        let started = Instant::now();
        let (op, outcome, level) = match rng.below(10) {
            0..=2 => {
                let r = db
                    .query_with("SELECT v FROM reg WHERE k = ?", params![key], Consistency::Linearizable)
                    .await;
                match r {
                    Ok(rows) => (
                        RegOp::Read { value: int(rows.rows.first().and_then(|r| r.first())) },
                        Outcome::Ok,
                        Some("linearizable"),
                    ),
                    Err(e) => (RegOp::Read { value: None }, outcome_of(&e), Some("linearizable")),
                }
            }
            3..=4 => {
                let url = &ctx.urls[rng.below(ctx.urls.len() as u64) as usize];
                match strong_read(&http, url, key).await {
                    Ok(v) => (RegOp::Read { value: v }, Outcome::Ok, Some("strong")),
                    Err(o) => (RegOp::Read { value: None }, o, Some("strong")),
                }
            }
            5..=7 => {
                let r = db.execute("UPDATE reg SET v = ? WHERE k = ?", params![fresh, key]).await;
                let outcome = match &r {
                    Ok(_) => Outcome::Ok,
                    Err(e) => outcome_of(e),
                };
                (RegOp::Write { value: fresh }, outcome, None)
            }
            _ => {
                // CAS from a value we last saw for any key is mostly a miss; read one first so
                // that a good share of them hit.
                let from = db
                    .query_with("SELECT v FROM reg WHERE k = ?", params![key], Consistency::Local)
                    .await
                    .ok()
                    .and_then(|r| int(r.rows.first().and_then(|r| r.first())))
                    .unwrap_or(0);
                let invoke2 = ctx.now();
                let r =
                    db.execute("UPDATE reg SET v = ? WHERE k = ? AND v = ?", params![fresh, key, from]).await;
                let (applied, outcome) = match &r {
                    Ok(x) => (Some(x.rows_affected == 1), Outcome::Ok),
                    Err(e) => (None, outcome_of(e)),
                };
                out.push(RegEntry {
                    process,
                    key,
                    op: RegOp::Cas { from, to: fresh, applied },
                    invoke: invoke2,
                    complete: ctx.now(),
                    outcome,
                    level: None,
                });
                if outcome == Outcome::Ok {
                    ctx.record_latency(started);
                }
                continue;
            }
        };
        if outcome == Outcome::Ok {
            ctx.record_latency(started);
        }
        out.push(RegEntry {
            process,
            key,
            op,
            invoke,
            complete: ctx.now(),
            outcome,
            level: level.map(str::to_owned),
        });
    }
    out
}

// ---- bank --------------------------------------------------------------------------------

/// Create the accounts.
pub async fn bank_setup(db: &Client) -> hiqlite::Result<()> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))",
        (),
    )
    .await?;
    for id in 0..ACCOUNTS {
        db.execute("INSERT OR IGNORE INTO acct (id, bal) VALUES (?, ?)", params![id, START_BALANCE]).await?;
    }
    Ok(())
}

/// What the bank clients saw.
#[derive(Debug, Default)]
pub struct BankReport {
    /// Transfers acknowledged / refused / unknown.
    pub transfers: [u64; 3],
    /// Reads of all balances that succeeded.
    pub reads: u64,
    /// Reads whose balances broke the invariant.
    pub anomalies: Vec<String>,
}

/// A bank client: transfers (even `process`) or reads of all balances (odd), until stopped.
pub async fn bank_client(ctx: Ctx, process: usize, seed: u64) -> BankReport {
    let mut rng = Rng(seed);
    let mut rep = BankReport::default();
    let level = if process % 4 == 1 { Consistency::Local } else { Consistency::Linearizable };
    let Ok(db) = ctx.client(level) else { return rep };
    while !ctx.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        if process.is_multiple_of(2) {
            let from = rng.below(ACCOUNTS as u64) as i64;
            let to = (from + 1 + rng.below(ACCOUNTS as u64 - 1) as i64) % ACCOUNTS;
            let amount = 1 + rng.below(30) as i64;
            let r = db
                .transaction([
                    ("UPDATE acct SET bal = bal - ? WHERE id = ?", params![amount, from]),
                    ("UPDATE acct SET bal = bal + ? WHERE id = ?", params![amount, to]),
                ])
                .await;
            let slot = match &r {
                Ok(_) => 0,
                Err(e) if outcome_of(e) == Outcome::Fail => 1,
                Err(_) => 2,
            };
            rep.transfers[slot] += 1;
            if r.is_ok() {
                ctx.record_latency(started);
            }
        } else {
            match db.query("SELECT id, bal FROM acct ORDER BY id", ()).await {
                Ok(rows) => {
                    rep.reads += 1;
                    ctx.record_latency(started);
                    let bals: Vec<i64> = rows.rows.iter().filter_map(|r| int(r.get(1))).collect();
                    let total: i64 = bals.iter().sum();
                    if bals.len() != ACCOUNTS as usize
                        || total != ACCOUNTS * START_BALANCE
                        || bals.iter().any(|b| *b < 0)
                    {
                        rep.anomalies.push(format!(
                            "bank read ({level:?}) at {:?}: balances {bals:?} sum to {total}, expected {}",
                            ctx.t0.elapsed(),
                            ACCOUNTS * START_BALANCE
                        ));
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    rep
}

// ---- set ---------------------------------------------------------------------------------

/// Create the set.
pub async fn set_setup(db: &Client) -> hiqlite::Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS sett (v INTEGER PRIMARY KEY)", ()).await?;
    Ok(())
}

/// What a set client added.
#[derive(Debug, Default)]
pub struct SetReport {
    /// Acknowledged adds.
    pub acked: BTreeSet<i64>,
    /// Adds with unknown outcome.
    pub unknown: BTreeSet<i64>,
    /// Adds that were refused.
    pub failed: BTreeSet<i64>,
}

/// A set client: inserts unique values until stopped.
pub async fn set_client(ctx: Ctx, process: usize) -> SetReport {
    let mut rep = SetReport::default();
    let Ok(db) = ctx.client(Consistency::Leader) else { return rep };
    let mut i = 0i64;
    while !ctx.stop.load(Ordering::Relaxed) {
        i += 1;
        let v = (process as i64 + 1) * 1_000_000_000 + i;
        let started = Instant::now();
        match db.execute("INSERT INTO sett (v) VALUES (?)", params![v]).await {
            Ok(_) => {
                ctx.record_latency(started);
                rep.acked.insert(v);
            }
            Err(e) if outcome_of(&e) == Outcome::Fail => {
                rep.failed.insert(v);
            }
            Err(_) => {
                rep.unknown.insert(v);
            }
        }
    }
    rep
}

/// Check the set at the end: `finals` are every node's full contents (read locally once the
/// cluster converged). Returns the anomalies.
pub fn check_set(reports: &[SetReport], finals: &[BTreeSet<i64>]) -> Vec<String> {
    let mut out = Vec::new();
    let acked: BTreeSet<i64> = reports.iter().flat_map(|r| r.acked.iter().copied()).collect();
    let unknown: BTreeSet<i64> = reports.iter().flat_map(|r| r.unknown.iter().copied()).collect();
    for (i, f) in finals.iter().enumerate() {
        let lost: Vec<&i64> = acked.difference(f).take(10).collect();
        if !lost.is_empty() {
            out.push(format!("set: node {} lost acknowledged adds {lost:?}", i + 1));
        }
        let phantom: Vec<&i64> =
            f.iter().filter(|v| !acked.contains(v) && !unknown.contains(v)).take(10).collect();
        if !phantom.is_empty() {
            out.push(format!("set: node {} holds values never acknowledged nor pending {phantom:?}", i + 1));
        }
        if f != &finals[0] {
            out.push(format!(
                "set: node {} differs from node 1 ({} vs {} values)",
                i + 1,
                f.len(),
                finals[0].len()
            ));
        }
    }
    out
}
