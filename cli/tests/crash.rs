//! Crash safety with real processes: SIGKILL and restart under write load, torn log tails,
//! and backups taken under load.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{last_segment, ProcCluster};

const T: Duration = Duration::from_secs(60);

fn rows_of(v: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
    v["results"][0]["values"]
        .as_array()
        .map(|rows| rows.iter().map(|r| r.as_array().cloned().unwrap_or_default()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_rounds_lose_no_acknowledged_write() {
    let rounds: usize = std::env::var("HIQLITE_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut seed: u64 =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64);
    println!("kill test: {rounds} rounds, seed {seed}");
    // Snapshots every 50 entries: kills land before, during and after snapshot checkpoints.
    let mut c = ProcCluster::new(3, &["--snapshot-every", "50"]);
    c.start_all();
    c.leader(T).await;
    c.execute(0, r#"["CREATE TABLE acked (k TEXT NOT NULL)"]"#).await.expect("create");

    let apis: Vec<u16> = c.nodes.iter().map(|n| n.api).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (stop, acked, apis) = (stop.clone(), acked.clone(), apis.clone());
        writers.push(tokio::spawn(async move {
            hiqlite::install_crypto_provider();
            // A write whose answer does not come in time is simply not counted as acknowledged
            // (and never re-sent): this deadline only keeps a writer from waiting on a dead node.
            let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}-{n}");
                n += 1;
                let api = apis[(n as usize + w) % apis.len()];
                let body = serde_json::json!([["INSERT INTO acked (k) VALUES (?)", key]]).to_string();
                let r = http
                    .post(format!("http://127.0.0.1:{api}/db/execute"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                if let Ok(r) = r {
                    if r.status().is_success() {
                        if let Ok(v) =
                            serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap_or_default())
                        {
                            if v["results"][0]["rows_affected"] == 1 {
                                acked.lock().expect("lock").insert(key);
                                continue;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    let mut healed = 0;
    let mut leader_kills = 0;
    let mut acked_before = 0;
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(400)).await;
        // The cluster keeps accepting writes: at least one more is acknowledged after every
        // round's kill and restart (checked as a condition, not as a rate).
        acked_before =
            grown_past(&acked, acked_before, &format!("no write acknowledged before round {round}")).await;
        let victim = if round % 3 == 0 {
            leader_kills += 1;
            c.leader(T).await
        } else {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) % 3) as usize
        };
        c.kill9(victim);
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.start(victim);
        let st = c.wait_status(victim, T).await;
        if st["startup"] == "healed" {
            healed += 1;
        }
        c.leader(T).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    c.converge(T).await;
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= rounds, "the cluster kept accepting writes: {} acknowledged", acked.len());
    let mut contents = Vec::new();
    for i in 0..3 {
        contents.push(keys(&c, i).await);
    }
    for (i, keys) in contents.iter().enumerate() {
        let dups: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dups.is_empty(), "node {i} applied writes twice: {dups:?}");
        let missing: Vec<_> = acked.iter().filter(|k| !keys.contains_key(*k)).take(5).collect();
        assert!(missing.is_empty(), "node {i} lost acknowledged writes, e.g. {missing:?}\n{}", c.log_of(i));
    }
    assert_eq!(contents[0], contents[1], "replicas differ");
    assert_eq!(contents[1], contents[2], "replicas differ");
    assert_eq!(healed, rounds, "every SIGKILLed node rebuilt its state machine at restart");
    assert!(leader_kills * 3 >= rounds, "the leader was the victim in at least a third of the rounds");
    println!(
        "{} acknowledged writes survived {rounds} SIGKILL rounds ({leader_kills} of the leader)",
        acked.len()
    );
}

/// Wait (up to `T`) until the set holds more than `before` entries; its new size.
async fn grown_past(set: &Mutex<BTreeSet<String>>, before: usize, what: &str) -> usize {
    let deadline = Instant::now() + T;
    loop {
        let n = set.lock().expect("lock").len();
        if n > before {
            return n;
        }
        assert!(Instant::now() < deadline, "{what} within {T:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn keys(c: &ProcCluster, i: usize) -> BTreeMap<String, i64> {
    rows_of(&c.query(i, "SELECT k, count(*) FROM acked GROUP BY k").await)
        .into_iter()
        .map(|r| (r[0].as_str().unwrap_or_default().to_string(), r[1].as_i64().unwrap_or(0)))
        .collect()
}

async fn table(c: &ProcCluster, i: usize) -> Vec<Vec<serde_json::Value>> {
    rows_of(&c.query(i, "SELECT id, v FROM t ORDER BY id").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_or_corrupt_log_tail_is_truncated_and_caught_up() {
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    let li = c.leader(T).await;
    c.execute(li, r#"["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]"#).await.expect("create");
    let follower = (li + 1) % 3;
    for round in 0..2 {
        for i in 0..30 {
            c.execute(
                li,
                &serde_json::json!([["INSERT INTO t (v) VALUES (?)", format!("r{round}-{i}")]]).to_string(),
            )
            .await
            .expect("insert");
        }
        c.converge(T).await;
        c.stop(follower);
        let seg = last_segment(&c.nodes[follower].dir);
        let len = std::fs::metadata(&seg).expect("meta").len();
        if round == 0 {
            // A torn write: the last record is cut short.
            std::fs::OpenOptions::new().write(true).open(&seg).expect("open").set_len(len - 3).expect("cut");
        } else {
            // A flipped byte inside the last record.
            let mut bytes = std::fs::read(&seg).expect("read");
            let at = bytes.len() - 2;
            bytes[at] ^= 0x5a;
            std::fs::write(&seg, bytes).expect("write");
        }
        // The cluster moves on while the node is down.
        let li = c.leader(T).await;
        c.execute(li, r#"[["INSERT INTO t (v) VALUES ('while-down')"]]"#).await.expect("insert while down");
        c.start(follower);
        c.converge(T).await;
        let st = c.status(follower).await.expect("status");
        assert_eq!(st["startup"], "clean", "a clean stop needs no rebuild: {st}");
        assert!(c.log_of(follower).contains("torn log tail"), "the node reported the truncated tail");
        let expect = table(&c, li).await;
        assert_eq!(table(&c, follower).await, expect, "the node caught up from the leader");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_to_identical_content() {
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    let li = c.leader(T).await;
    c.execute(li, r#"["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]"#).await.expect("create");
    let api = c.nodes[li].api;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, done) = (stop.clone(), done.clone());
        tokio::spawn(async move {
            hiqlite::install_crypto_provider();
            let http = reqwest::Client::new();
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let body =
                    serde_json::json!([["INSERT INTO t (id, v) VALUES (?, ?)", id, format!("row-{id}")]])
                        .to_string();
                let r = http
                    .post(format!("http://127.0.0.1:{api}/db/execute"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("insert");
                assert!(r.status().is_success());
                done.store(id, Ordering::SeqCst);
            }
            id
        })
    };
    // Conditions, not durations: rows are written before the backup starts, and more after it
    // ends, however fast the machine is.
    let written_at_least = |n: u64| {
        let done = done.clone();
        async move {
            let deadline = Instant::now() + T;
            while done.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < deadline, "the writer did not reach {n} rows");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    written_at_least(10).await;
    let file = c.root.path().join("backup.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hiqlite"))
        .args(["backup", "--to"])
        .arg(&file)
        .args(["--api-addr", &format!("127.0.0.1:{api}")])
        .output()
        .expect("run backup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Every write acknowledged before the backup finished may be in it: wait for later ones.
    let at_backup_end = done.load(Ordering::SeqCst);
    written_at_least(at_backup_end + 10).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");

    // A new cluster from the backup: one restored node, then a second node joins it.
    let mut r = ProcCluster::new(2, &[]);
    r.static_peers = false;
    r.nodes[0].extra = vec!["--restore".into(), file.display().to_string()];
    r.nodes[1].extra = vec!["--join".into(), format!("127.0.0.1:{}", r.nodes[0].raft)];
    r.start(0);
    r.leader(T).await;
    let restored = table(&r, 0).await;
    let k = restored.len();
    assert!(k > 0 && (k as u64) < written, "the backup is a point in time under load: {k} of {written}");
    let source = table(&c, li).await;
    assert_eq!(restored[..], source[..k], "the backup equals the source up to its log index");
    r.start(1);
    let deadline = Instant::now() + T;
    loop {
        if r.status(1).await.is_some() && table(&r, 1).await.len() == k {
            break;
        }
        assert!(Instant::now() < deadline, "the joined node never received the restored data");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(table(&r, 1).await, restored);
}

/// Leaders SIGKILLed while interactive transactions are open and committing: every transaction
/// writes a pair of rows, and no node ever holds half a pair; every acknowledged commit survives;
/// the replicas end identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leaders_never_leave_a_transaction_half_applied() {
    let rounds: usize =
        std::env::var("HIQLITE_TX_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    c.leader(T).await;
    c.execute(
        0,
        r#"["CREATE TABLE pair (tx TEXT NOT NULL, part INTEGER NOT NULL, PRIMARY KEY (tx, part))"]"#,
    )
    .await
    .expect("create");
    let urls: Vec<String> = c.nodes.iter().map(|n| format!("http://127.0.0.1:{}", n.api)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let attempts = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..4usize {
        let (stop, acked, attempts) = (stop.clone(), acked.clone(), attempts.clone());
        let mut mine = urls.clone();
        mine.rotate_left(w % urls.len());
        workers.push(tokio::spawn(async move {
            // A short deadline only keeps a worker from waiting on a dead node; a commit whose
            // answer does not come is not counted as acknowledged.
            let db = hiqlite::Client::remote(mine).timeout(Duration::from_secs(5)).build().expect("client");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                attempts.fetch_add(1, Ordering::Relaxed);
                let key = format!("w{w}-{n}");
                let r = async {
                    let tx = db.begin().await?;
                    tx.execute("INSERT INTO pair VALUES (?, 1)", hiqlite::params![key.clone()]).await?;
                    let seen = tx
                        .query("SELECT count(*) FROM pair WHERE tx = ?", hiqlite::params![key.clone()])
                        .await?;
                    assert_eq!(
                        seen.rows[0][0],
                        hiqlite::Value::Integer(1),
                        "the transaction reads its own write"
                    );
                    tx.execute("INSERT INTO pair VALUES (?, 2)", hiqlite::params![key.clone()]).await?;
                    tx.commit().await
                }
                .await;
                match r {
                    Ok(()) => {
                        acked.lock().expect("lock").insert(key);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    let mut acked_before = 0;
    for round in 0..rounds {
        // Transactions are committing again before each kill (a condition, not a rate).
        acked_before =
            grown_past(&acked, acked_before, &format!("no transaction committed before round {round}")).await;
        let victim = c.leader(T).await;
        c.kill9(victim);
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.start(victim);
        c.wait_status(victim, T).await;
        c.leader(T).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    c.converge(T).await;
    let acked = acked.lock().expect("lock").clone();
    let mut contents = Vec::new();
    for i in 0..3 {
        let rows = rows_of(&c.query(i, "SELECT tx, count(*) FROM pair GROUP BY tx ORDER BY tx").await);
        let pairs: BTreeMap<String, i64> = rows
            .into_iter()
            .map(|r| (r[0].as_str().unwrap_or_default().to_string(), r[1].as_i64().unwrap_or(0)))
            .collect();
        let halves: Vec<_> = pairs.iter().filter(|(_, n)| **n != 2).take(5).collect();
        assert!(halves.is_empty(), "node {i} holds half-applied transactions: {halves:?}");
        let missing: Vec<_> = acked.iter().filter(|k| !pairs.contains_key(*k)).take(5).collect();
        assert!(missing.is_empty(), "node {i} lost committed transactions, e.g. {missing:?}");
        contents.push(pairs);
    }
    assert_eq!(contents[0], contents[1], "replicas differ");
    assert_eq!(contents[1], contents[2], "replicas differ");
    println!(
        "{} of {} transactions committed across {rounds} leader kills; none half-applied",
        acked.len(),
        attempts.load(Ordering::Relaxed)
    );
}

/// Kill the leader with SIGKILL, several times: each time a surviving node is elected, writes
/// sent to a survivor are accepted again, the killed node comes back and catches up, and every
/// accepted write is present exactly once on every replica. (How fast: `hiqlite bench --failover`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leaders_are_replaced_and_writes_resume_on_the_survivors() {
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    let li = c.leader(T).await;
    c.execute(li, r#"["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"]"#).await.expect("create");
    let mut accepted = Vec::new();
    for round in 0..3 {
        let li = c.leader(T).await;
        c.kill9(li);
        let survivor = (li + 1) % 3;
        let v = format!("after-kill-{round}");
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let body = serde_json::json!([["INSERT INTO t (v) VALUES (?)", v]]).to_string();
            match c.execute(survivor, &body).await {
                Ok(r) if r["results"][0]["error"].is_null() => break,
                Ok(r) if r["results"][0]["error"].as_str().is_some_and(|e| e.contains("UNIQUE")) => break,
                other => assert!(Instant::now() < deadline, "no write accepted after the kill: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        accepted.push(v);
        let new = c.leader(T).await;
        assert_ne!(new, li, "a survivor leads");
        c.start(li);
        c.converge(T).await;
    }
    let expect: Vec<serde_json::Value> = accepted.iter().map(|v| serde_json::json!(v)).collect();
    for i in 0..3 {
        let got: Vec<serde_json::Value> =
            rows_of(&c.query(i, "SELECT v FROM t ORDER BY id").await).into_iter().flatten().collect();
        assert_eq!(got, expect, "node {i} holds every accepted write once, in order");
    }
}
