//! Cluster behaviour over real HTTP on 127.0.0.1 with real SQLite files.

use std::time::Duration;

use hiqlite::{named_params, params, Consistency, Error, Migration, Value};
use hiqlite_tests::{content_checksum, init_logging, Embedded, TestCluster};
use serde::Deserialize;

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_in_any_order_form_one_cluster_and_replicate() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    // The bootstrapping node (lowest id) comes last.
    c.start(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.start(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.start(0).await;
    let li = c.leader(T).await;
    c.node(li).execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)", ()).await.expect("create");
    for i in 0..3 {
        // Writes on followers are forwarded to the leader.
        let r =
            c.node(i).execute("INSERT INTO kv VALUES (?, ?)", params![format!("from-{i}"), i as i64]).await;
        assert_eq!(r.expect("insert").rows_affected, 1);
    }
    for i in 0..3 {
        let rows = c
            .node(i)
            .query_with("SELECT k, v FROM kv ORDER BY k", (), Consistency::Linearizable)
            .await
            .expect("linearizable read");
        assert_eq!(rows.len(), 3, "node {i} sees every write");
        assert_eq!(rows.rows[2], vec![Value::Text("from-2".into()), Value::Integer(2)]);
    }
    let statuses: Vec<_> = (0..3).map(|i| c.node(i).st()).collect();
    assert!(statuses.iter().all(|s| s.voters == vec![1, 2, 3]), "one cluster of three voters: {statuses:?}");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_stop_failover_and_rejoin_with_identical_data() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    c.node(li).execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ()).await.expect("create");
    c.node(li)
        .transaction(
            (0..50)
                .map(|i| hiqlite::Statement::new("INSERT INTO t (v) VALUES (?)", params![format!("a{i}")])),
        )
        .await
        .expect("bulk");
    c.stop(li).await;
    let new_leader = c.leader(T).await;
    assert_ne!(new_leader, li);
    let other = (0..3).find(|i| *i != li && *i != new_leader).expect("a follower");
    for i in 0..20 {
        c.node(other)
            .execute("INSERT INTO t (v) VALUES (?)", params![format!("b{i}")])
            .await
            .expect("write after failover");
    }
    c.start(li).await;
    c.converge(T).await;
    let sums: Vec<u64> = futures_sums(&c).await;
    if !sums.windows(2).all(|w| w[0] == w[1]) {
        for i in 0..3 {
            let r = c.node(i).query("SELECT count(*), group_concat(v) FROM t", ()).await;
            eprintln!("node {i} (old leader {li}): {:?} {:?}", c.node(i).st(), r);
        }
        panic!("replicas differ: {sums:?}");
    }
    let n = c.node(li).query("SELECT count(*) FROM t", ()).await.expect("count");
    assert_eq!(n.rows[0][0], Value::Integer(70));
    c.stop_all().await;
}

async fn futures_sums(c: &TestCluster) -> Vec<u64> {
    let mut v = Vec::new();
    for n in c.nodes.iter().flatten() {
        v.push(content_checksum(n).await);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_by_snapshot_install() {
    init_logging();
    let mut c = TestCluster::configure(3, |cfg| {
        cfg.snapshot_every = 20;
        cfg.log_keep_after_snapshot = 0;
    });
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let lagger = (li + 1) % 3;
    c.node(li).execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)", ()).await.expect("create");
    c.stop(lagger).await;
    let writer = (0..3).find(|i| *i != lagger).expect("running node");
    for i in 0..120u8 {
        c.node(writer).execute("INSERT INTO t (v) VALUES (?)", params![vec![i; 100]]).await.expect("insert");
    }
    c.start(lagger).await;
    c.converge(T).await;
    let st = c.node(lagger).st();
    assert!(st.snapshots_installed >= 1, "lagging node must have installed a snapshot: {st:?}");
    let sums = futures_sums(&c).await;
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "replicas differ: {sums:?}");
    let n = c.node(lagger).query("SELECT count(*), sum(length(v)) FROM t", ()).await.expect("count");
    assert_eq!(n.rows[0], vec![Value::Integer(120), Value::Integer(12_000)]);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_restart_keeps_data_and_does_not_reapply() {
    init_logging();
    let mut c = TestCluster::configure(1, |_| {});
    c.start(0).await;
    c.leader(T).await;
    let db = c.node(0);
    db.execute("CREATE TABLE t (x)", ()).await.expect("create");
    for _ in 0..30 {
        // Not idempotent: re-applying any entry would add rows.
        db.execute("INSERT INTO t VALUES (random())", ()).await.expect("insert");
    }
    let before = content_checksum(db).await;
    let applied = db.st().applied_index;
    c.stop(0).await;
    c.start(0).await;
    let st = c.node(0).st();
    assert_eq!(st.startup, "clean");
    assert_eq!(st.applied_index_at_start, applied, "restart resumes at the persisted applied index");
    c.leader(T).await;
    assert_eq!(content_checksum(c.node(0)).await, before);
    let st = c.node(0).st();
    assert!(
        st.entries_applied_since_start <= 1,
        "only the new leader's blank entry may be applied after a clean restart: {st:?}"
    );
    c.node(0).execute("INSERT INTO t VALUES (1)", ()).await.expect("insert after restart");
    let n = c.node(0).query("SELECT count(*) FROM t", ()).await.expect("count");
    assert_eq!(n.rows[0][0], Value::Integer(31));
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nondeterministic_sql_gives_identical_replicas() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node(li);
    let unix_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64
    };
    let before = unix_now();
    db.execute(
        "CREATE TABLE t (r INTEGER, d TEXT, b BLOB, j REAL, u INTEGER, ts TEXT DEFAULT CURRENT_TIMESTAMP)",
        (),
    )
    .await
    .expect("create");
    for _ in 0..5 {
        db.execute(
            "INSERT INTO t (r, d, b, j, u) VALUES (random(), datetime('now'), randomblob(16), julianday('now'), unixepoch())",
            (),
        )
        .await
        .expect("insert");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    db.execute(
        "INSERT INTO t VALUES (random(), datetime('now'), randomblob(4), 0, 0, CURRENT_TIMESTAMP)",
        (),
    )
    .await
    .expect("insert");
    c.converge(T).await;
    let mut all = Vec::new();
    for i in 0..3 {
        all.push(c.node(i).query("SELECT * FROM t ORDER BY rowid", ()).await.expect("read").rows);
    }
    assert_eq!(all[0], all[1]);
    assert_eq!(all[1], all[2]);
    let r: Vec<&Value> = all[0].iter().map(|row| &row[0]).collect();
    assert_ne!(r[0], r[1], "random() is still random across entries");
    // The stamped time is the leader's real time (this process shares its clock): between the
    // moments just before the write was sent and just after it was read back, however long
    // that took.
    let after = unix_now();
    let Value::Integer(u) = all[0][0][4] else { panic!("u is an integer") };
    assert!(before <= u && u <= after, "the stamped time {u} is the leader's real time ({before}..={after})");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_typed_errors_and_the_node_keeps_serving() {
    init_logging();
    // The last check is about the request timeout (a write without quorum fails instead of
    // hanging), so it is shorter than the harness's; still far above what any write before it
    // takes, even across an election on a loaded machine.
    let mut c = TestCluster::configure(3, |cfg| cfg.request_timeout_ms = 15_000);
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let follower = (li + 1) % 3;
    let db = c.node(follower);
    db.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)", ())
        .await
        .expect("create");

    let e = db.execute("INSRT INTO u VALUES (1)", ()).await.expect_err("syntax error");
    assert!(matches!(&e, Error::Sql { message, .. } if message.contains("syntax error")), "{e:?}");
    let e = db.query("SELEC 1", ()).await.expect_err("syntax error in a read");
    assert!(matches!(&e, Error::Sql { .. }), "{e:?}");

    let e = db.execute("INSERT INTO u (name) VALUES (?)", params![1, 2]).await.expect_err("too many params");
    assert_eq!(e.sqlite_code(), Some(25), "SQLITE_RANGE: {e:?}");
    let e =
        db.execute("INSERT INTO u (id, name) VALUES (?, ?)", params![1]).await.expect_err("too few params");
    assert_eq!(e.sqlite_code(), Some(25), "{e:?}");
    // No parameters at all for a statement with placeholders: refused, not bound to NULL.
    let e = db.execute("INSERT INTO u (id, name) VALUES (?, 'x')", ()).await.expect_err("missing params");
    assert_eq!(e.sqlite_code(), Some(25), "{e:?}");
    assert!(db.query("SELECT count(*) FROM u", ()).await.expect("count").rows[0][0] == Value::Integer(0));
    let e =
        db.query("SELECT * FROM u WHERE id = :id", named_params! {":nope" => 1}).await.expect_err("bad name");
    assert!(matches!(e, Error::Sql { .. }), "{e:?}");

    db.execute("INSERT INTO u (name) VALUES ('ann')", ()).await.expect("insert");
    let e = db.execute("INSERT INTO u (name) VALUES ('ann')", ()).await.expect_err("unique");
    assert!(
        matches!(&e, Error::Sql { code: 2067, message } if message.contains("UNIQUE constraint failed")),
        "{e:?}"
    );
    let e = db.execute("BEGIN", ()).await.expect_err("transaction control refused");
    assert!(matches!(&e, Error::Sql { message, .. } if message.contains("not allowed")), "{e:?}");

    // A failing transaction leaves nothing behind.
    let e = db
        .transaction(["INSERT INTO u (name) VALUES ('bob')", "INSERT INTO u (name) VALUES ('ann')"])
        .await
        .expect_err("transaction fails");
    assert!(matches!(e, Error::Sql { code: 2067, .. }));
    let n = db.query_with("SELECT count(*) FROM u", (), Consistency::Leader).await.expect("count");
    assert_eq!(n.rows[0][0], Value::Integer(1));

    // A batch applies what it can.
    let r = db
        .batch(["INSERT INTO u (name) VALUES ('cy')", "INSERT INTO u (name) VALUES ('ann')"])
        .await
        .expect("batch");
    assert!(r[0].is_ok() && r[1].is_err());

    // Without a quorum, writes fail with a typed error instead of hanging; reads still work.
    c.converge(T).await;
    let others: Vec<usize> = (0..3).filter(|i| *i != follower).collect();
    for i in others {
        c.stop(i).await;
    }
    let e = c.node(follower).execute("INSERT INTO u (name) VALUES ('dee')", ()).await.expect_err("no quorum");
    assert!(
        matches!(e, Error::NoLeader(_) | Error::OutcomeUnknown(_) | Error::Timeout(_)),
        "expected a no-leader class error, got {e:?}"
    );
    let n = c.node(follower).query("SELECT count(*) FROM u", ()).await.expect("local read without leader");
    assert_eq!(n.rows[0][0], Value::Integer(2));
    c.stop_all().await;
}

#[derive(Debug, Deserialize, PartialEq)]
struct Person {
    id: i64,
    name: String,
    score: Option<f64>,
    photo: Option<Vec<u8>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_params_query_as_and_migrations() {
    init_logging();
    let mut c = TestCluster::configure(1, |_| {});
    c.start(0).await;
    c.leader(T).await;
    let db = c.node(0);
    let migrations = vec![
        Migration {
            id: 1,
            name: "people".into(),
            sql: "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, score REAL, photo BLOB);".into(),
        },
        Migration {
            id: 2,
            name: "index".into(),
            sql: "CREATE INDEX p_name ON p(name); INSERT INTO p (name) VALUES ('seed');".into(),
        },
    ];
    assert_eq!(db.migrate(&migrations).await.expect("migrate"), 2);
    assert_eq!(db.migrate(&migrations).await.expect("migrate again"), 0, "migrations apply once");
    let mut changed = migrations.clone();
    changed[1].sql.push_str(" -- edited");
    assert!(db.migrate(&changed).await.is_err(), "an edited, applied migration is refused");

    let r = db
        .execute(
            "INSERT INTO p (name, score, photo) VALUES (:name, @score, $photo)",
            named_params! {
                ":name" => "zoë", "score" => 1.5, "$photo" => vec![0u8, 255, 7]
            },
        )
        .await
        .expect("named insert");
    assert_eq!(r.last_insert_id, 2);
    db.execute(
        "INSERT INTO p (id, name, score, photo) VALUES (?1, ?2, ?3, ?4)",
        params![i64::MAX, "max", None::<f64>, None::<Vec<u8>>],
    )
    .await
    .expect("positional insert");
    let rows = db
        .execute_returning(
            "UPDATE p SET score = score * 2 WHERE name = ? RETURNING id, score",
            params!["zoë"],
        )
        .await
        .expect("returning");
    assert_eq!(rows.rows, vec![vec![Value::Integer(2), Value::Real(3.0)]]);

    let people: Vec<Person> =
        db.query_as("SELECT id, name, score, photo FROM p ORDER BY id", ()).await.expect("query_as");
    assert_eq!(people.len(), 3);
    assert_eq!(
        people[1],
        Person { id: 2, name: "zoë".into(), score: Some(3.0), photo: Some(vec![0, 255, 7]) }
    );
    assert_eq!(people[2], Person { id: i64::MAX, name: "max".into(), score: None, photo: None });
    let exact = db.query("SELECT typeof(photo), photo, score FROM p WHERE id = 2", ()).await.expect("types");
    assert_eq!(
        exact.rows[0],
        vec![Value::Text("blob".into()), Value::Blob(vec![0, 255, 7]), Value::Real(3.0)]
    );
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_as_learner_then_voter_and_is_removed() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    c.node(li).execute("CREATE TABLE t (x)", ()).await.expect("create");
    c.node(li).execute("INSERT INTO t VALUES (1)", ()).await.expect("insert");

    let mut extra = TestCluster::configure(1, |_| {});
    extra.configs[0].node_id = 4;
    extra.configs[0].secret = c.configs[0].secret.clone();
    extra.configs[0].join = vec![c.configs[(li + 1) % 3].raft_addr.clone()];
    extra.start(0).await;
    let deadline = std::time::Instant::now() + T;
    while !c.node(li).st().voters.contains(&4) {
        assert!(std::time::Instant::now() < deadline, "node 4 never became a voter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = extra
        .node(0)
        .query_with("SELECT x FROM t", (), Consistency::Linearizable)
        .await
        .expect("read on joined node");
    assert_eq!(rows.rows, vec![vec![Value::Integer(1)]]);

    c.node((li + 2) % 3).remove_node(4).await.expect("remove");
    let deadline = std::time::Instant::now() + T;
    loop {
        let st = c.node(li).st();
        if !st.voters.contains(&4) && !st.members.contains_key(&4) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "node 4 still a member: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    extra.stop_all().await;
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_would_split_replicas_are_refused_or_contained() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node(li).clone();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)", ()).await.expect("create");
    db.execute("INSERT INTO t (v) VALUES ('a')", ()).await.expect("insert");

    for (sql, needle) in [
        ("PRAGMA cache_size = 10", "PRAGMA cache_size"),
        ("CREATE TEMP TABLE tmp (x)", "temporary"),
        ("VACUUM INTO 'copy.db'", "VACUUM INTO"),
        ("ATTACH 'other.db' AS o", "ATTACH"),
        ("SAVEPOINT x", "transaction control"),
        ("INSERT INTO t (v) VALUES (total_changes())", "total_changes"),
    ] {
        let e = db.execute(sql, ()).await.expect_err(sql);
        assert!(matches!(&e, Error::Sql { message, .. } if message.contains(needle)), "{sql}: {e:?}");
    }
    // Read-only pragmas are fine.
    let info = db.execute_returning("PRAGMA table_info(t)", ()).await.expect("table_info");
    assert_eq!(info.len(), 2);

    // A ROLLBACK conflict clause ends the apply transaction; concurrent writes that share the
    // log entry survive, and every replica reaches the same state.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            if i % 5 == 0 {
                db.execute("INSERT OR ROLLBACK INTO t (v) VALUES ('a')", ()).await.map(|_| ())
            } else {
                db.execute("INSERT INTO t (v) VALUES (?)", params![format!("w{i}")]).await.map(|_| ())
            }
        }));
    }
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.expect("task");
        if i % 5 == 0 {
            assert!(matches!(r, Err(Error::Sql { .. })), "rollback write must fail: {r:?}");
        } else {
            r.expect("independent write succeeds");
            ok += 1;
        }
    }
    assert_eq!(ok, 16);
    // last_insert_rowid() does not leak from one entry into the next.
    let r = db.execute_returning("SELECT last_insert_rowid(), changes()", ()).await.expect("select in write");
    assert_eq!(r.rows[0], vec![Value::Integer(0), Value::Integer(0)]);
    c.converge(T).await;
    let sums = futures_sums(&c).await;
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "replicas differ: {sums:?}");
    let n = db.query("SELECT count(*) FROM t", ()).await.expect("count");
    assert_eq!(n.rows[0][0], Value::Integer(17));
    c.stop_all().await;
}

/// Group commit: transactions and writes of concurrent clients share log entries (one append and
/// one fsync for several), each still answered with its own result, all-or-nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_share_log_entries_and_keep_their_own_answers() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node(li).clone();
    db.execute("CREATE TABLE g (id INTEGER PRIMARY KEY, client INTEGER, n INTEGER)", ()).await.expect("ddl");
    let before = db.status().await.expect("status").last_log_index.unwrap_or(0);
    const CLIENTS: i64 = 16;
    const ROUNDS: i64 = 20;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..ROUNDS {
                if n % 2 == 0 {
                    let r = db
                        .transaction([
                            hiqlite::Statement::new(
                                "INSERT INTO g (client, n) VALUES (?, ?)",
                                params![client, n],
                            ),
                            hiqlite::Statement::new(
                                "INSERT INTO g (client, n) VALUES (?, ?)",
                                params![client, -n],
                            ),
                        ])
                        .await
                        .expect("transaction");
                    assert_eq!(r.len(), 2);
                    assert!(r.iter().all(|x| x.rows_affected == 1));
                } else {
                    let r = db
                        .execute("INSERT INTO g (client, n) VALUES (?, ?)", params![client, n])
                        .await
                        .expect("insert");
                    assert_eq!(r.rows_affected, 1);
                    let back = db
                        .query("SELECT client, n FROM g WHERE id = ?", params![r.last_insert_id])
                        .await
                        .expect("read back");
                    assert_eq!(
                        back.rows,
                        vec![vec![Value::Integer(client), Value::Integer(n)]],
                        "own answer"
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let after = db.status().await.expect("status").last_log_index.unwrap_or(0);
    let writes = (CLIENTS * ROUNDS) as u64;
    assert!(
        after - before < writes,
        "{writes} concurrent writes took {} log entries: none shared",
        after - before
    );
    let rows = db.query("SELECT count(*) FROM g", ()).await.expect("count").rows;
    assert_eq!(rows, vec![vec![Value::Integer(CLIENTS * ROUNDS * 3 / 2)]]);
    c.stop_all().await;
}

/// A clean stop while a snapshot build copies (big writes trigger one by bytes): both write the
/// base record; they take turns, the stop succeeds, and the data is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_during_a_snapshot_build_succeeds_and_keeps_everything() {
    init_logging();
    let mut c = TestCluster::configure(1, |_| {});
    for round in 0..3 {
        c.start(0).await;
        c.leader(T).await;
        let db = c.node(0);
        db.execute("CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, pad BLOB)", ())
            .await
            .expect("create");
        for rows in [25_000, 100_000] {
            let sql = format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 INSERT INTO big (pad) SELECT randomblob(100) FROM n"
            );
            db.execute(&sql, ()).await.expect("insert");
        }
        db.execute("UPDATE big SET pad = randomblob(120) WHERE id % 2 = 0", ()).await.expect("update");
        db.shutdown().await.unwrap_or_else(|e| panic!("round {round}: clean stop failed: {e}"));
        c.stop(0).await;
    }
    c.start(0).await;
    c.leader(T).await;
    let n = c.node(0).query("SELECT count(*) FROM big", ()).await.expect("count");
    assert_eq!(n.rows[0], vec![Value::Integer(3 * 125_000)]);
    c.stop_all().await;
}
