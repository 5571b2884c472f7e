//! Change streams: every committed row change exactly once and in log order, across consumers
//! that are dropped and resumed from their last cursor on other nodes and faces (embedded,
//! remote, raw server-sent events), a node that catches up by snapshot install while a stream is
//! attached to it, and writes of every kind (inserts, updates, deletes, transactions,
//! independent batches with a failing statement, interactive transactions, triggers,
//! WITHOUT ROWID tables). Each consumer's changes are replayed onto an in-memory model, which
//! must end equal to the tables; live queries (`watch`) follow writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hiqlite::{Change, ChangeCursor, ChangeOp, ChangeOptions, Client, Value};
use hiqlite_tests::{init_logging, TestCluster};
use serde_json::Value as J;

const T: Duration = Duration::from_secs(120);
/// Row changes the writers make at least.
const CHANGES: u64 = 50_000;

/// A tiny deterministic generator (no timing, no global state).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// One writer: a mix of every kind of write on its own key range; returns the changes it made
/// (rows affected, triggers included).
async fn writer(db: Client, w: i64, made: Arc<AtomicU64>) {
    let mut r = Lcg(w as u64 + 7);
    let base = w * 1_000_000;
    let mut next = 0i64;
    while made.load(Ordering::Relaxed) < CHANGES {
        let id = base + next;
        let n = match r.next(8) {
            0 | 1 => {
                next += 1;
                db.execute("INSERT INTO t (id, v) VALUES (?, ?)", hiqlite::params![id, format!("v{id}")])
                    .await
                    .expect("insert");
                2 // the row and the trigger's audit row
            }
            2 => {
                let at = base + r.next(next.max(1) as u64) as i64;
                db.execute("UPDATE t SET v = v || '+' WHERE id = ?", hiqlite::params![at])
                    .await
                    .expect("update")
                    .rows_affected
            }
            3 => {
                let at = base + r.next(next.max(1) as u64) as i64;
                db.execute("DELETE FROM t WHERE id = ?", hiqlite::params![at])
                    .await
                    .expect("delete")
                    .rows_affected
            }
            4 => {
                // A transaction of several statements on the WITHOUT ROWID table.
                let k = format!("k{w}-{}", r.next(50));
                let res = db
                    .transaction([
                        hiqlite::Statement::new(
                            "INSERT INTO u (k, n) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET n = n + 1",
                            hiqlite::params![k.clone()],
                        ),
                        hiqlite::Statement::new(
                            "UPDATE u SET n = n * 2 WHERE k = ?",
                            hiqlite::params![k.clone()],
                        ),
                        hiqlite::Statement::new(
                            "WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s WHERE x < 4) \
                             INSERT INTO t (id, v) SELECT ? + x, 'bulk' FROM s",
                            hiqlite::params![base + 500_000 + next * 10],
                        ),
                    ])
                    .await
                    .expect("transaction");
                next += 1;
                res.iter().map(|x| x.rows_affected).sum::<u64>() + 5
            }
            5 => {
                // Independent statements: the failing one leaves no change, the others do.
                next += 1;
                let res = db
                    .batch([
                        hiqlite::Statement::new(
                            "INSERT INTO t (id, v) VALUES (?, 'b')",
                            hiqlite::params![id],
                        ),
                        hiqlite::Statement::new(
                            "INSERT INTO t (id, v) VALUES (?, 'dup')",
                            hiqlite::params![id],
                        ),
                    ])
                    .await
                    .expect("batch");
                assert!(res[1].is_err(), "the duplicate fails");
                2
            }
            6 => {
                // A transaction that fails as a whole: nothing of it is a change.
                next += 1;
                let e = db
                    .transaction([
                        hiqlite::Statement::new(
                            "INSERT INTO t (id, v) VALUES (?, 'gone')",
                            hiqlite::params![id],
                        ),
                        hiqlite::Statement::new(
                            "INSERT INTO t (id, v) VALUES (?, 'gone')",
                            hiqlite::params![id],
                        ),
                    ])
                    .await;
                assert!(e.is_err());
                0
            }
            _ => {
                // An interactive transaction.
                next += 1;
                let tx = db.begin().await.expect("begin");
                tx.execute("INSERT INTO t (id, v) VALUES (?, 'tx')", hiqlite::params![id])
                    .await
                    .expect("tx insert");
                tx.execute("UPDATE t SET v = 'tx2' WHERE id = ?", hiqlite::params![id])
                    .await
                    .expect("tx update");
                tx.commit().await.expect("commit");
                3
            }
        };
        made.fetch_add(n, Ordering::Relaxed);
    }
}

/// Rows of a table by key, as the changes describe them.
#[derive(Default)]
struct Model {
    tables: HashMap<String, HashMap<Vec<u8>, Vec<Value>>>,
    last: Option<(u64, u32)>,
    count: u64,
}

fn key_bytes(k: &[Value]) -> Vec<u8> {
    serde_json::to_vec(k).expect("key")
}

impl Model {
    /// Apply one change; panics on anything that is not exactly once, in order.
    fn apply(&mut self, c: &Change) {
        let at = (c.index, c.seq);
        match self.last {
            Some((i, s)) if i == c.index => assert_eq!(c.seq, s + 1, "seq gap or repeat at {at:?}"),
            Some(l) => {
                assert!(at > l, "out of order: {at:?} after {l:?}");
                assert_eq!(c.seq, 0, "an entry's changes start at seq 0: {at:?}");
            }
            None => assert_eq!(c.seq, 0),
        }
        self.last = Some(at);
        self.count += 1;
        let t = self.tables.entry(c.table.to_lowercase()).or_default();
        let key = key_bytes(&c.key);
        match c.op {
            ChangeOp::Insert => {
                let prev = t.insert(key, c.new.clone().expect("insert has new values"));
                assert!(prev.is_none(), "insert of a present row {:?} at {at:?}: a repeat", c.key);
            }
            ChangeOp::Update => {
                let old = c.old.clone().expect("old values asked for");
                // Every table here has its key first (or no key: the rowid, never changed here).
                let old_key: Vec<Value> =
                    if c.table == "done" { c.key.clone() } else { vec![old[0].clone()] };
                let had = t.remove(&key_bytes(&old_key));
                assert_eq!(had.as_ref(), Some(&old), "update of a row not as modelled at {at:?}: a gap");
                t.insert(key, c.new.clone().expect("update has new values"));
            }
            ChangeOp::Delete => {
                let had = t.remove(&key);
                assert_eq!(had.as_ref(), c.old.as_ref(), "delete of a row not as modelled at {at:?}: a gap");
            }
        }
    }

    fn rows(&self, table: &str) -> Vec<Vec<Value>> {
        let mut v: Vec<Vec<Value>> =
            self.tables.get(table).map(|t| t.values().cloned().collect()).unwrap_or_default();
        v.sort_by_key(|r| serde_json::to_string(r).unwrap_or_default());
        v
    }
}

async fn table_rows(db: &Client, table: &str) -> Vec<Vec<Value>> {
    let mut v = db.query(&format!("SELECT * FROM {table}"), ()).await.expect("select").rows;
    v.sort_by_key(|r| serde_json::to_string(r).unwrap_or_default());
    v
}

/// A consumer that reads with a Rust stream, dropped and resumed from its cursor on the given
/// clients in turn, until it saw the `done` marker.
async fn consume(clients: Vec<Client>, drop_every: u64, log: Arc<std::sync::Mutex<Vec<Change>>>) -> Model {
    let mut model = Model::default();
    let mut cursor = ChangeCursor::from_index(1);
    let mut turn = 0usize;
    loop {
        let db = &clients[turn % clients.len()];
        turn += 1;
        let mut s = db.changes(ChangeOptions::new().from(cursor).old_values(true)).await.expect("stream");
        let mut read = 0;
        while read < drop_every {
            let c = match tokio::time::timeout(T, s.next()).await {
                Ok(c) => c.expect("change"),
                Err(_) => panic!(
                    "no change in {T:?} from client {} (remote: {}) at cursor {cursor}, stream {s:?}",
                    (turn - 1) % clients.len(),
                    db.is_remote()
                ),
            };
            model.apply(&c);
            cursor = c.cursor();
            read += 1;
            let done = c.table == "done";
            log.lock().expect("log").push(c);
            if done {
                return model;
            }
        }
        // Dropped here: "killed", resumed from `cursor` next round.
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_once_in_order_across_resumes_nodes_and_a_snapshot_install() {
    init_logging();
    let mut c = TestCluster::configure(3, |cfg| {
        cfg.snapshot_every = 300;
        cfg.log_keep_after_snapshot = 0;
        cfg.change_retention = 10_000_000;
    });
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let lagging = (li + 1) % 3;
    let other = (li + 2) % 3;
    let db = c.node(li).clone();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ()).await.expect("t");
    db.execute("CREATE TABLE u (k TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID", ()).await.expect("u");
    db.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, t_id INTEGER)", ()).await.expect("audit");
    db.execute(
        "CREATE TRIGGER t_audit AFTER INSERT ON t BEGIN INSERT INTO audit (t_id) VALUES (new.id); END",
        (),
    )
    .await
    .expect("trigger");
    db.execute("CREATE TABLE done (x)", ()).await.expect("done");
    // The lagging node misses most of the writes and comes back by snapshot install.
    c.stop(lagging).await;
    let remote_other =
        Client::remote([format!("http://{}", c.configs[other].api_addr)]).build().expect("remote");
    let made = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let db = if w % 2 == 0 { c.node(li).clone() } else { c.node(other).clone() };
            tokio::spawn(writer(db, w, made.clone()))
        })
        .collect();
    let log_a = Arc::new(std::sync::Mutex::new(Vec::new()));
    let consumer_a = tokio::spawn(consume(
        vec![c.node(other).clone(), remote_other.clone(), c.node(li).clone()],
        CHANGES / 5,
        log_a.clone(),
    ));
    // Half way, the lagging node returns; a stream attached to it at once sees its install.
    let deadline = Instant::now() + T;
    while made.load(Ordering::Relaxed) < CHANGES / 2 {
        assert!(Instant::now() < deadline, "writers stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.start(lagging).await;
    let log_b = Arc::new(std::sync::Mutex::new(Vec::new()));
    let consumer_b = tokio::spawn(consume(vec![c.node(lagging).clone()], u64::MAX, log_b.clone()));
    for w in writers {
        w.await.expect("writer");
    }
    db.execute("INSERT INTO done VALUES (1)", ()).await.expect("done");
    let model_a = tokio::time::timeout(T, consumer_a).await.expect("consumer A ends").expect("A");
    let model_b = tokio::time::timeout(T, consumer_b).await.expect("consumer B ends").expect("B");
    eprintln!("consumer A: {} changes, consumer B: {} changes", model_a.count, model_b.count);
    assert!(model_a.count >= CHANGES, "{} changes", model_a.count);
    c.converge(T).await;
    for table in ["t", "u", "audit"] {
        let rows = table_rows(&db, table).await;
        assert_eq!(model_a.rows(table), rows, "table {table} as consumer A's changes describe it");
        assert_eq!(model_b.rows(table), rows, "table {table} as consumer B's changes describe it");
    }
    let (a, b) = (log_a.lock().expect("log").clone(), log_b.lock().expect("log").clone());
    assert_eq!(a, b, "consumers on different nodes see the same changes");
    let status = c.node(lagging).status().await.expect("status");
    assert!(status.snapshots_installed > 0, "the lagging node caught up by snapshot install: {status:?}");

    // The same through server-sent events: dropped 5 times, resumed with Last-Event-ID.
    let http = reqwest::Client::new();
    let mut cursor = "1.0".to_string();
    let mut seen: Vec<(u64, u32, String, String)> = Vec::new();
    let per = a.len() / 5 + 1;
    'outer: for round in 0..10 {
        let node = [li, other, lagging][round % 3];
        let url = format!("http://{}/db/changes", c.configs[node].api_addr);
        let mut resp = http.get(&url).header("Last-Event-ID", &cursor).send().await.expect("sse");
        assert!(resp.status().is_success());
        let (mut buf, mut read) = (Vec::<u8>::new(), 0);
        while read < per {
            let chunk = tokio::time::timeout(T, resp.chunk()).await.expect("sse in time").expect("chunk");
            buf.extend_from_slice(&chunk.expect("stream open"));
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(buf.drain(..end + 2).collect()).expect("utf8");
                let (mut id, mut data) = (None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str::<J>(v.trim()).expect("json"));
                    }
                }
                let (Some(id), Some(d)) = (id, data) else { continue };
                cursor = id;
                let table = d["table"].as_str().expect("table").to_string();
                seen.push((
                    d["index"].as_u64().expect("index"),
                    d["seq"].as_u64().expect("seq") as u32,
                    table.clone(),
                    d["op"].as_str().expect("op").to_string(),
                ));
                read += 1;
                if table == "done" {
                    break 'outer;
                }
            }
        }
    }
    let expect: Vec<(u64, u32, String, String)> =
        a.iter().map(|c| (c.index, c.seq, c.table.clone(), c.op.as_str().to_string())).collect();
    assert_eq!(seen, expect, "the event stream carries the same changes");

    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_older_than_kept_changes_is_refused_and_watch_follows_writes() {
    init_logging();
    let mut c = TestCluster::configure(1, |cfg| cfg.change_retention = 50);
    c.start(0).await;
    c.leader(T).await;
    let db = c.node(0).clone();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ()).await.expect("t");
    let mut w = db.watch("SELECT count(*) FROM t WHERE v = ?", hiqlite::params!["x"]).await.expect("watch");
    assert_eq!(w.next().await.expect("first").rows[0][0], Value::Integer(0));
    let mut latencies = Vec::new();
    for i in 0..200i64 {
        let v = if i % 2 == 0 { "x" } else { "y" };
        db.execute("INSERT INTO t (id, v) VALUES (?, ?)", hiqlite::params![i, v]).await.expect("insert");
        if v == "x" {
            let at = Instant::now();
            let rows = tokio::time::timeout(T, w.next()).await.expect("watch in time").expect("rows");
            latencies.push(at.elapsed());
            assert_eq!(rows.rows[0][0], Value::Integer(i / 2 + 1));
        }
    }
    latencies.sort();
    eprintln!(
        "watch: median {:?}, max {:?} after the write returned",
        latencies[latencies.len() / 2],
        latencies.last()
    );
    // Retention 50 entries: index 1 is long gone.
    let e = db.changes(ChangeOptions::new().from(ChangeCursor::from_index(1))).await.expect_err("too old");
    assert!(matches!(e, hiqlite::Error::CursorTooOld(_)), "{e}");
    let remote = Client::remote([format!("http://{}", c.configs[0].api_addr)]).build().expect("remote");
    let e =
        remote.changes(ChangeOptions::new().from(ChangeCursor::from_index(1))).await.expect_err("too old");
    assert!(matches!(e, hiqlite::Error::CursorTooOld(_)), "{e}");
    let r = reqwest::get(format!("http://{}/db/changes?from=1", c.configs[0].api_addr)).await.expect("get");
    assert_eq!(r.status(), 410);
    let mut rw =
        remote.watch("SELECT v FROM t WHERE id = ?", hiqlite::params![1]).await.expect("remote watch");
    assert_eq!(rw.next().await.expect("rows").rows, vec![vec![Value::Text("y".into())]]);
    db.execute("UPDATE t SET v = 'z' WHERE id = 1", ()).await.expect("update");
    let rows = tokio::time::timeout(T, rw.next()).await.expect("remote watch in time").expect("rows");
    assert_eq!(rows.rows, vec![vec![Value::Text("z".into())]]);
    c.stop_all().await;
}
