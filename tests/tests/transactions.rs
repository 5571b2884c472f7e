//! Interactive transactions on a real 3-node cluster: reads see the transaction's own writes,
//! savepoints, rollback, failed statements, deterministic replay of 'now' and random(),
//! serializable read-modify-write from many clients through different nodes, idle rollback,
//! a leader change failing an open transaction, and the remote client over `/db/tx`.

use std::time::{Duration, Instant};

use hiqlite::{params, Client, Consistency, Value};
use hiqlite_tests::{content_checksum, init_logging, TestCluster};

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

fn cluster(tweak: impl Fn(&mut hiqlite::NodeConfig)) -> TestCluster {
    TestCluster::configure(3, |c| {
        // Transactions queue behind each other: waiting is bounded by conditions, not speed.
        c.busy_timeout_ms = 30_000;
        tweak(c);
    })
}

async fn ints(c: &Client, sql: &str) -> Vec<i64> {
    c.query_with(sql, (), Consistency::Linearizable)
        .await
        .expect("read")
        .rows
        .into_iter()
        .map(|r| match r[0] {
            Value::Integer(i) => i,
            ref v => panic!("not an integer: {v:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_own_writes_savepoints_and_rollback() {
    init_logging();
    let mut c = cluster(|_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let f = (li + 1) % 3;
    let (leader, follower) = (c.node(li).clone(), c.node(f).clone());
    leader.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)", ()).await.expect("ddl");

    // From a follower: the transaction runs on the leader, reached over the peer protocol.
    let tx = follower.begin().await.expect("begin");
    let r = tx.execute("INSERT INTO t (v) VALUES (?)", params!["a"]).await.expect("insert");
    assert_eq!((r.rows_affected, r.last_insert_id), (1, 1));
    assert_eq!(tx.query("SELECT count(*) FROM t", ()).await.expect("read").rows[0][0], Value::Integer(1));
    // Nobody else sees it before COMMIT.
    assert!(ints(&leader, "SELECT id FROM t").await.is_empty());
    tx.execute("SAVEPOINT s1", ()).await.expect("savepoint");
    tx.execute("INSERT INTO t (v) VALUES ('b')", ()).await.expect("insert b");
    tx.execute("ROLLBACK TO s1", ()).await.expect("rollback to");
    tx.execute("RELEASE s1", ()).await.expect("release");
    // A failed statement leaves the transaction open, as in SQLite.
    let dup = tx.execute("INSERT INTO t (v) VALUES ('a')", ()).await.expect_err("unique");
    assert_eq!(dup.sqlite_code(), Some(2067), "{dup}");
    tx.execute("INSERT INTO t (v) VALUES ('c')", ()).await.expect("insert c");
    assert_eq!(
        tx.query("SELECT v FROM t ORDER BY id", ()).await.expect("read").rows,
        vec![vec![Value::Text("a".into())], vec![Value::Text("c".into())]]
    );
    tx.commit().await.expect("commit");
    c.converge(T).await;
    for i in 0..3 {
        assert_eq!(ints(c.node(i), "SELECT id FROM t ORDER BY id").await, vec![1, 2], "node {i}");
    }

    // Rollback, and a dropped transaction, leave nothing behind and free the database.
    let tx = leader.begin().await.expect("begin");
    tx.execute("INSERT INTO t (v) VALUES ('gone')", ()).await.expect("insert");
    tx.rollback().await.expect("rollback");
    let tx = follower.begin().await.expect("begin");
    tx.execute("INSERT INTO t (v) VALUES ('dropped')", ()).await.expect("insert");
    drop(tx);
    follower.execute("INSERT INTO t (v) VALUES ('after')", ()).await.expect("a plain write after the drop");
    c.converge(T).await;
    assert_eq!(ints(&leader, "SELECT count(*) FROM t WHERE v IN ('gone', 'dropped')").await, vec![0]);
    assert_eq!(ints(&leader, "SELECT count(*) FROM t").await, vec![3]);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_replays_to_what_the_transaction_saw() {
    init_logging();
    let mut c = cluster(|_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node((li + 2) % 3).clone();
    db.execute("CREATE TABLE r (k INTEGER PRIMARY KEY, rnd INTEGER, at TEXT, blob BLOB)", ())
        .await
        .expect("ddl");
    let tx = db.begin().await.expect("begin");
    tx.execute("INSERT INTO r (rnd, at, blob) VALUES (random(), datetime('now'), randomblob(8))", ())
        .await
        .expect("insert");
    tx.execute("INSERT INTO r (rnd, at, blob) SELECT random(), datetime('now'), randomblob(8) FROM r", ())
        .await
        .expect("insert select");
    let seen = tx.query("SELECT k, rnd, at, blob FROM r ORDER BY k", ()).await.expect("read").rows;
    tx.commit().await.expect("commit");
    c.converge(T).await;
    for i in 0..3 {
        let rows = c.node(i).query("SELECT k, rnd, at, blob FROM r ORDER BY k", ()).await.expect("read").rows;
        assert_eq!(rows, seen, "node {i} applied other values than the transaction saw");
    }
    let sums: Vec<u64> = futures_sums(&c).await;
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "replicas differ: {sums:?}");
    c.stop_all().await;
}

async fn futures_sums(c: &TestCluster) -> Vec<u64> {
    let mut v = Vec::new();
    for i in 0..3 {
        v.push(content_checksum(c.node(i)).await);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_modify_write_from_eight_clients_is_serializable() {
    init_logging();
    let mut c = cluster(|_| {});
    c.start_in_order(&[0, 1, 2]).await;
    c.leader(T).await;
    c.node(0)
        .execute("CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)", ())
        .await
        .expect("ddl");
    c.node(0).execute("INSERT INTO acct VALUES (1, 0)", ()).await.expect("row");
    let mut tasks = Vec::new();
    for k in 0..8usize {
        let db = c.node(k % 3).clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                let tx = db.begin().await.expect("begin");
                let rows = tx.query("SELECT bal FROM acct WHERE id = 1", ()).await.expect("select");
                let Value::Integer(bal) = rows.rows[0][0] else { panic!("balance is not an integer") };
                tx.execute("UPDATE acct SET bal = ? WHERE id = 1", params![bal + 1]).await.expect("update");
                tx.commit().await.expect("commit");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    c.converge(T).await;
    for i in 0..3 {
        assert_eq!(ints(c.node(i), "SELECT bal FROM acct").await, vec![1600], "node {i}");
    }
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_transaction_is_rolled_back_and_frees_the_database() {
    init_logging();
    let mut c = cluster(|cfg| cfg.transaction_idle_timeout_ms = 300);
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node(li).clone();
    db.execute("CREATE TABLE t (v INTEGER)", ()).await.expect("ddl");
    let tx = db.begin().await.expect("begin");
    tx.execute("INSERT INTO t VALUES (1)", ()).await.expect("insert");
    // The client goes quiet; a plain write gets through once the transaction is rolled back.
    let deadline = Instant::now() + T;
    loop {
        match db.execute("INSERT INTO t VALUES (2)", ()).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "the idle transaction was never rolled back: {e}"),
        }
    }
    let e = tx.execute("INSERT INTO t VALUES (3)", ()).await.expect_err("the transaction is gone");
    assert!(e.to_string().contains("no transaction"), "{e}");
    assert!(tx.commit().await.is_err());
    assert_eq!(ints(&db, "SELECT v FROM t ORDER BY v").await, vec![2]);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_change_fails_the_transaction_and_applies_nothing() {
    init_logging();
    let mut c = cluster(|_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let f = (li + 1) % 3;
    let db = c.node(f).clone();
    db.execute("CREATE TABLE t (v INTEGER)", ()).await.expect("ddl");
    let tx = db.begin().await.expect("begin");
    tx.execute("INSERT INTO t VALUES (1)", ()).await.expect("insert");
    c.stop(li).await;
    let e = tx.commit().await.expect_err("the leader holding the transaction is gone");
    assert!(!matches!(e, hiqlite::Error::OutcomeUnknown(_)), "nothing was proposed: {e}");
    c.leader(T).await;
    c.converge(T).await;
    for i in (0..3).filter(|i| *i != li) {
        assert!(ints(c.node(i), "SELECT v FROM t").await.is_empty(), "node {i}");
    }
    // The cluster writes again.
    db.execute("INSERT INTO t VALUES (2)", ()).await.expect("write under the new leader");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_client_transactions() {
    init_logging();
    let mut c = cluster(|_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let f = (li + 1) % 3;
    c.node(li).execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ()).await.expect("ddl");
    let remote = Client::remote([format!("http://{}", c.configs[f].api_addr)])
        .timeout(T)
        .build()
        .expect("remote client");
    let tx = remote.begin().await.expect("begin");
    let r = tx.execute("INSERT INTO t (v) VALUES (?)", params!["x"]).await.expect("insert");
    assert_eq!((r.rows_affected, r.last_insert_id), (1, 1));
    assert_eq!(
        tx.query("SELECT v FROM t", ()).await.expect("read").rows,
        vec![vec![Value::Text("x".into())]]
    );
    let e = tx.execute("INSERT INTO t (id, v) VALUES (1, 'dup')", ()).await.expect_err("duplicate key");
    assert_eq!(e.sqlite_code(), Some(1555), "{e}");
    tx.commit().await.expect("commit");
    assert_eq!(ints(&remote, "SELECT id FROM t").await, vec![1]);
    let tx = remote.begin().await.expect("begin");
    tx.execute("DELETE FROM t", ()).await.expect("delete");
    tx.rollback().await.expect("rollback");
    assert_eq!(ints(&remote, "SELECT id FROM t").await, vec![1]);
    c.stop_all().await;
}
