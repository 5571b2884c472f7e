//! The remote `Client` against `hiqlite serve` processes: same API as embedded, leader
//! discovery and redirects, failover when the leader is killed, discovery from one address, and
//! no duplicate write when the answer to a sent write is lost.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ProcCluster;
use hiqlite::{named_params, params, Client, Consistency, Error, Migration, Value};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(60);

fn url(c: &ProcCluster, i: usize) -> String {
    format!("http://127.0.0.1:{}", c.nodes[i].api)
}

#[derive(Debug, Deserialize, PartialEq)]
struct Meta {
    tags: Vec<String>,
    depth: u32,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Item {
    id: i64,
    name: String,
    price: f64,
    qty: Option<i64>,
    raw: Vec<u8>,
    active: bool,
    meta: Meta,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_client_has_the_embedded_api() {
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    let li = c.leader(T).await;
    let fi = (li + 1) % 3;
    // Pointed at a follower only, with discovery off: the leader is learned from a redirect.
    let db = Client::remote([url(&c, fi)]).discover(false).timeout(T).build().expect("client");
    assert!(db.is_remote() && db.node().is_none());
    db.execute(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE, price REAL, qty INTEGER, raw BLOB, \
         active INTEGER, meta TEXT)",
        (),
    )
    .await
    .expect("create");
    assert_eq!(db.endpoints().1, Some(url(&c, li)), "the redirect named the leader");

    let r = db
        .execute(
            "INSERT INTO item (name, price, qty, raw, active, meta) VALUES (?, ?, ?, ?, ?, ?)",
            params!["apple", 1.0, 3, vec![0u8, 1, 255], true, r#"{"tags":["red"],"depth":2}"#],
        )
        .await
        .expect("insert");
    assert_eq!((r.rows_affected, r.last_insert_id), (1, 1));
    let rows = db
        .execute_returning(
            "INSERT INTO item (name, price, qty, raw, active, meta) VALUES (:n, :p, NULL, x'', 0, :m) \
             RETURNING id, name",
            named_params! {":n" => "pear", ":p" => 2.5, ":m" => r#"{"tags":[],"depth":0}"#},
        )
        .await
        .expect("returning");
    assert_eq!(rows.rows, vec![vec![Value::Integer(2), Value::Text("pear".into())]]);

    // Every type comes back as it went in, through serde.
    let items: Vec<Item> = db.query_as("SELECT * FROM item ORDER BY id", ()).await.expect("query_as");
    assert_eq!(
        items[0],
        Item {
            id: 1,
            name: "apple".into(),
            price: 1.0,
            qty: Some(3),
            raw: vec![0, 1, 255],
            active: true,
            meta: Meta { tags: vec!["red".into()], depth: 2 },
        }
    );
    assert_eq!((items[1].qty, items[1].raw.len(), items[1].active), (None, 0, false));
    let raw = db.query("SELECT price, raw, qty FROM item WHERE id = 1", ()).await.expect("raw");
    assert_eq!(raw.rows[0], vec![Value::Real(1.0), Value::Blob(vec![0, 1, 255]), Value::Integer(3)]);

    // Errors are typed: SQL errors carry SQLite's extended code and message.
    match db.execute("INSERT INTO item (name) VALUES ('apple')", ()).await {
        Err(Error::Sql { code, message }) => {
            assert_eq!(code, 2067, "SQLITE_CONSTRAINT_UNIQUE");
            assert!(message.contains("UNIQUE"), "{message}");
        }
        other => panic!("expected a constraint error, got {other:?}"),
    }
    assert!(matches!(db.query("SELEC nonsense", ()).await, Err(Error::Sql { code: 1, .. })));

    // A transaction is all or nothing; a batch reports each statement.
    let t = db
        .transaction([
            ("INSERT INTO item (name) VALUES (?)", params!["kiwi"]),
            ("INSERT INTO item (name) VALUES (?)", params!["apple"]),
        ])
        .await;
    assert!(matches!(t, Err(Error::Sql { code: 2067, .. })), "{t:?}");
    let b = db
        .batch([
            ("INSERT INTO item (name) VALUES (?)", params!["kiwi"]),
            ("INSERT INTO item (name) VALUES (?)", params!["apple"]),
        ])
        .await
        .expect("batch");
    assert!(b[0].is_ok() && matches!(b[1], Err(Error::Sql { .. })));
    let names = db.query("SELECT name FROM item ORDER BY id", ()).await.expect("names");
    assert_eq!(names.len(), 3, "kiwi once (from the batch), apple and pear");

    // All consistency levels and the server's query cache.
    for level in [Consistency::Local, Consistency::Leader, Consistency::Linearizable] {
        let n = db.query_with("SELECT count(*) FROM item", (), level).await.expect("level");
        assert_eq!(n.rows[0][0], Value::Integer(3), "{level:?}");
    }
    for _ in 0..2 {
        let n = db.query_cached("SELECT count(*) FROM item", ()).await.expect("cached");
        assert_eq!(n.rows[0][0], Value::Integer(3));
    }
    db.execute("DELETE FROM item WHERE name = 'kiwi'", ()).await.expect("delete");
    let n = db.query_cached("SELECT count(*) FROM item", ()).await.expect("cached after write");
    assert_eq!(n.rows[0][0], Value::Integer(2), "a write invalidates the server's cache");

    let m = [Migration { id: 1, name: "tags".into(), sql: "CREATE TABLE tag (t TEXT)".into() }];
    assert_eq!(db.migrate(&m).await.expect("migrate"), 1);
    assert_eq!(db.migrate(&m).await.expect("migrate again"), 0);

    let st = db.status().await.expect("status");
    assert_eq!(st.leader, Some(c.nodes[li].id));
    let nodes = db.nodes().await.expect("nodes");
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes.iter().filter(|n| n.leader).count(), 1);
    assert!(nodes.iter().all(|n| n.reachable));
    assert_eq!(db.wait_for_leader(T).await.expect("leader"), c.nodes[li].id);

    // The write really went through Raft: every replica has it.
    c.converge(T).await;
    for i in 0..3 {
        let v = c.query(i, "SELECT count(*) FROM item").await;
        assert_eq!(v["results"][0]["values"][0][0], 2, "node {i}");
    }

    // A backup streamed from the leader is a complete SQLite database.
    let dest = c.root.path().join("remote-backup.db");
    db.backup(&dest).await.expect("remote backup");
    let copy = rusqlite::Connection::open(&dest).expect("open the backup");
    let n: i64 = copy.query_row("SELECT count(*) FROM item", [], |r| r.get(0)).expect("count");
    assert_eq!(n, 2);
    assert!(!dest.with_extension("part").exists());
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_sent_and_refusals_are_typed() {
    let root = tempfile::tempdir().expect("tmp");
    let users = root.path().join("users.json");
    std::fs::write(
        &users,
        r#"[{"username": "app", "password": "pw", "perms": ["all"]},
            {"username": "reader", "password": "pw", "perms": ["query", "status"]}]"#,
    )
    .expect("users");
    let auth = users.to_string_lossy().to_string();
    let mut c = ProcCluster::new(1, &["--auth", &auth]);
    c.start_all();
    let ok = Client::remote([url(&c, 0)]).basic_auth("app", "pw").timeout(T).build().expect("client");
    ok.wait_for_leader(T).await.expect("leader");
    ok.execute("CREATE TABLE t (x)", ()).await.expect("create");
    // A retry would first sleep out a backoff of PAUSE, so a call that returns sooner was not
    // retried. Nothing else in these calls comes near PAUSE, on any machine, and no deadline
    // cuts the pause short.
    const PAUSE: Duration = Duration::from_secs(120);
    let no_quick_retry = hiqlite::RetryPolicy { max_attempts: 2, initial_backoff: PAUSE, max_backoff: PAUSE };
    let client = |user: &str, password: &str| {
        Client::remote([url(&c, 0)])
            .basic_auth(user, password)
            .retry(no_quick_retry.clone())
            .timeout(4 * PAUSE)
            .build()
            .expect("client")
    };
    let reader = client("reader", "pw");
    assert!(reader.query("SELECT * FROM t", ()).await.is_ok());
    let started = Instant::now();
    assert!(matches!(reader.execute("INSERT INTO t VALUES (1)", ()).await, Err(Error::Unauthorized(_))));
    let bad = client("app", "nope");
    assert!(matches!(bad.query("SELECT 1", ()).await, Err(Error::Unauthorized(_))));
    assert!(started.elapsed() < PAUSE, "refusals are not retried");
}

/// Retries bounded by the call's deadline, not by a count: on a loaded machine an election can
/// outlast the default number of attempts.
fn patient() -> hiqlite::RetryPolicy {
    hiqlite::RetryPolicy { max_attempts: u32::MAX, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reachable_address_is_enough_and_the_client_fails_over() {
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    c.leader(T).await;
    let db = Client::remote([dead.clone(), url(&c, 0)]).timeout(T).retry(patient()).build().expect("client");
    db.execute("CREATE TABLE t (k INTEGER)", ()).await.expect("create");
    let (known, leader) = db.endpoints();
    for i in 0..3 {
        assert!(known.contains(&url(&c, i)), "node {i} discovered: {known:?}");
    }
    assert!(leader.is_some());
    // The only address given that worked goes away: the discovered ones carry on. A write sent
    // on a pooled connection the kill just severed may be reported as outcome-unknown (the
    // documented error for a write whose answer was lost); every other write succeeds.
    c.kill9(0);
    let (mut acked, mut unknown) = (Vec::new(), Vec::new());
    for k in 0..20i64 {
        match db.execute("INSERT INTO t VALUES (?)", params![k]).await {
            Ok(_) => acked.push(k),
            Err(Error::OutcomeUnknown(_)) => unknown.push(k),
            Err(e) => panic!("write {k} after the kill: {e:?}"),
        }
    }
    assert!(acked.len() >= 15, "acked {acked:?}, unknown {unknown:?}");
    let rows = db
        .query_with("SELECT k, count(*) FROM t GROUP BY k", (), Consistency::Linearizable)
        .await
        .expect("read");
    let count = |k: i64| {
        rows.rows.iter().find(|r| r[0] == Value::Integer(k)).map_or(0, |r| match r[1] {
            Value::Integer(n) => n,
            _ => -1,
        })
    };
    for k in &acked {
        assert_eq!(count(*k), 1, "acknowledged write {k}");
    }
    for k in &unknown {
        assert!(count(*k) <= 1, "unknown write {k} applied twice");
    }
    let local = db.query_with("SELECT count(*) FROM t", (), Consistency::Local).await.expect("local read");
    assert_eq!(local.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_stream_only_documented_errors_and_no_lost_or_doubled_write() {
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    let li = c.leader(T).await;
    let urls: Vec<String> = (0..3).map(|i| url(&c, i)).collect();
    let db = Client::remote(urls).timeout(T).retry(patient()).build().expect("client");
    db.execute("CREATE TABLE w (seq INTEGER NOT NULL, writer INTEGER NOT NULL)", ()).await.expect("create");

    let stop = Arc::new(AtomicBool::new(false));
    let after_kill = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (db, stop, killed, after_kill) = (db.clone(), stop.clone(), killed.clone(), after_kill.clone());
        writers.push(tokio::spawn(async move {
            let mut outcome = BTreeMap::new();
            let mut seq = 0i64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let r = db.execute("INSERT INTO w VALUES (?, ?)", params![seq, w]).await;
                match r {
                    Ok(_) => {
                        outcome.insert(seq, true);
                        if killed.load(Ordering::Relaxed) {
                            after_kill.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(Error::OutcomeUnknown(_)) => {
                        outcome.insert(seq, false);
                    }
                    Err(e) => panic!("writer {w}: undocumented error during failover: {e:?}"),
                }
            }
            (w, outcome)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.kill9(li);
    killed.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + T;
    while after_kill.load(Ordering::Relaxed) < 200 {
        assert!(Instant::now() < deadline, "writes did not resume after the leader was killed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0;
    let mut unknown = 0;
    let mut expected = Vec::new();
    for h in writers {
        let (w, outcome) = h.await.expect("writer");
        for (seq, ok) in outcome {
            expected.push((w, seq, ok));
            if ok {
                acked += 1;
            } else {
                unknown += 1;
            }
        }
    }
    let rows = db
        .query_with("SELECT writer, seq, count(*) FROM w GROUP BY writer, seq", (), Consistency::Linearizable)
        .await
        .expect("read back");
    let mut count = BTreeMap::new();
    for r in &rows.rows {
        if let [Value::Integer(w), Value::Integer(s), Value::Integer(n)] = r.as_slice() {
            count.insert((*w, *s), *n);
        }
    }
    for (w, seq, ok) in expected {
        let n = count.get(&(w, seq)).copied().unwrap_or(0);
        assert!(n <= 1, "writer {w} seq {seq} applied {n} times");
        if ok {
            assert_eq!(n, 1, "acknowledged write {w}/{seq} lost");
        }
    }
    println!("failover: {acked} acknowledged, {unknown} outcome-unknown");
}

/// A loopback proxy that delivers each request to `upstream`, waits for the answer, and then
/// drops the client's connection without passing the answer on. Counts requests.
async fn answer_dropping_proxy(upstream: u16) -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = l.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // One whole request: headers, then Content-Length bytes of body.
                let total = loop {
                    let Ok(n) = down.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break end + 4 + len;
                        }
                    }
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                if up.write_all(&buf[..total]).await.is_err() {
                    return;
                }
                // The server has answered (so the write is applied) before the client loses it.
                let _ = up.read(&mut chunk).await;
                drop(down);
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_is_lost_is_not_resent() {
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    let li = c.leader(T).await;
    let direct = Client::remote([url(&c, li)]).timeout(T).build().expect("client");
    direct.execute("CREATE TABLE once (v TEXT)", ()).await.expect("create");

    let (port, seen) = answer_dropping_proxy(c.nodes[li].api).await;
    let via_proxy = Client::remote([format!("http://127.0.0.1:{port}")])
        .discover(false)
        .timeout(T)
        .build()
        .expect("client");
    let r = via_proxy.execute("INSERT INTO once VALUES ('x')", ()).await;
    assert!(matches!(r, Err(Error::OutcomeUnknown(_))), "{r:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the write was sent exactly once");
    let n =
        direct.query_with("SELECT count(*) FROM once", (), Consistency::Linearizable).await.expect("count");
    assert_eq!(n.rows[0][0], Value::Integer(1), "applied once, never duplicated");

    // Reads are safe to repeat: the same loss makes the client retry them.
    let before = seen.load(Ordering::SeqCst);
    let q = via_proxy.query("SELECT 1", ()).await;
    assert!(q.is_err());
    assert!(seen.load(Ordering::SeqCst) > before + 1, "a read was retried");
}
