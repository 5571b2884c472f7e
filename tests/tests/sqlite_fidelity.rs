//! SQLite fidelity through a real cluster: foreign keys as a replicated, persistent cluster
//! setting; maintenance statements applied on every replica; hiqlite's own state kept out of
//! the user's schema; statements that cannot be replicated refused with a clear message.

use std::time::{Duration, Instant};

use hiqlite::{Client, Consistency, Error, Migration, Value};
use hiqlite_tests::{content_checksum, init_logging, Embedded, TestCluster};

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

async fn scalar(c: &Client, sql: &str) -> Value {
    let rows = c.query_with(sql, (), Consistency::Local).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    rows.rows.first().and_then(|r| r.first()).cloned().unwrap_or(Value::Null)
}

/// Wait until `sql` answers `want` on every running node.
async fn on_every_node(c: &TestCluster, sql: &str, want: Value) {
    let deadline = Instant::now() + T;
    for n in c.nodes.iter().flatten() {
        loop {
            let got = scalar(n, sql).await;
            if got == want {
                break;
            }
            assert!(Instant::now() < deadline, "node {}: {sql} = {got:?}, want {want:?}", n.st().id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn fk_error(e: &Error) -> bool {
    matches!(e, Error::Sql { code: 787, message } if message.contains("FOREIGN KEY constraint failed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_are_a_replicated_persistent_cluster_setting() {
    init_logging();
    let mut c = TestCluster::configure(3, |cfg| {
        cfg.snapshot_every = 30;
        cfg.log_keep_after_snapshot = 0;
    });
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node(li).clone();
    // A new cluster enforces foreign keys (hiqlite's default), on every node.
    on_every_node(&c, "PRAGMA foreign_keys", Value::Integer(1)).await;

    db.execute(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent(id) ON DELETE CASCADE)",
        (),
    )
    .await
    .expect("schema");
    db.execute("INSERT INTO parent VALUES (1, 'a'), (2, 'b')", ()).await.expect("parents");
    db.execute("INSERT INTO child VALUES (10, 1), (11, 1), (20, 2)", ()).await.expect("children");
    let e = db.execute("INSERT INTO child VALUES (99, 99)", ()).await.expect_err("orphan");
    assert!(fk_error(&e), "{e:?}");
    // Through a follower too (forwarded), and the error keeps its code.
    let e =
        c.node((li + 1) % 3).execute("UPDATE child SET pid = 7 WHERE id = 10", ()).await.expect_err("orphan");
    assert!(fk_error(&e), "{e:?}");
    // A cascade runs on every replica.
    let r = db.execute("DELETE FROM parent WHERE id = 1", ()).await.expect("delete parent");
    assert_eq!(r.rows_affected, 1, "changes() counts the parent row only, as in SQLite");
    c.converge(T).await;
    on_every_node(&c, "SELECT count(*) FROM child", Value::Integer(1)).await;
    on_every_node(&c, "SELECT count(*) FROM pragma_foreign_key_check", Value::Integer(0)).await;

    // Turned off (any spelling SQLite accepts): replicated, and no longer enforced.
    db.execute("pragma  Foreign_Keys = 'off'", ()).await.expect("fk off");
    on_every_node(&c, "PRAGMA foreign_keys", Value::Integer(0)).await;
    db.execute("INSERT INTO child VALUES (98, 98)", ()).await.expect("orphan allowed when off");
    c.converge(T).await;
    let check = c.node((li + 2) % 3).query("PRAGMA foreign_key_check", ()).await.expect("fk check");
    assert_eq!(check.rows.len(), 1, "{check:?}");
    db.execute("DELETE FROM child WHERE id = 98", ()).await.expect("cleanup");
    // Inside a transaction the pragma is a no-op, as in SQLite.
    db.transaction(["PRAGMA foreign_keys = ON", "INSERT INTO child VALUES (97, 97)"]).await.expect("no-op");
    db.execute("DELETE FROM child WHERE id = 97", ()).await.expect("cleanup");
    // Between other statements of one request, it takes effect for those after it.
    let e = db
        .execute("INSERT INTO parent VALUES (3, 'c'); PRAGMA foreign_keys = yes; INSERT INTO child VALUES (96, 96)", ())
        .await
        .expect_err("enforced after the pragma");
    assert!(fk_error(&e), "{e:?}");
    on_every_node(&c, "PRAGMA foreign_keys", Value::Integer(1)).await;
    on_every_node(&c, "SELECT count(*) FROM parent WHERE id = 3", Value::Integer(1)).await;

    // Survives a restart of every node.
    c.stop_all().await;
    c.start_in_order(&[2, 1, 0]).await;
    let li = c.leader(T).await;
    let db = c.node(li).clone();
    on_every_node(&c, "PRAGMA foreign_keys", Value::Integer(1)).await;
    let e = db.execute("INSERT INTO child VALUES (95, 95)", ()).await.expect_err("still enforced");
    assert!(fk_error(&e), "{e:?}");

    // Reaches a node that joins later through a snapshot.
    for i in 0..40 {
        db.execute("INSERT INTO parent (name) VALUES (?)", hiqlite::params![format!("p{i}")])
            .await
            .expect("fill");
    }
    db.n().snapshot().await.expect("snapshot");
    let mut extra = TestCluster::configure(1, |cfg| cfg.foreign_keys = false);
    extra.configs[0].node_id = 4;
    extra.configs[0].secret = c.configs[0].secret.clone();
    extra.configs[0].join = vec![c.configs[li].raft_addr.clone()];
    extra.start(0).await;
    let deadline = Instant::now() + T;
    while extra.node(0).st().snapshots_installed == 0
        || extra.node(0).st().applied_index < db.st().applied_index
    {
        assert!(Instant::now() < deadline, "node 4 never caught up: {:?}", extra.node(0).st());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        scalar(extra.node(0), "PRAGMA foreign_keys").await,
        Value::Integer(1),
        "the cluster's, not its config"
    );
    assert_eq!(content_checksum(extra.node(0)).await, content_checksum(&db).await);
    extra.stop_all().await;
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_statements_apply_on_every_replica() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node(li).clone();
    db.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB, t TEXT)", ()).await.expect("create");
    db.execute("CREATE INDEX big_t ON big(t)", ()).await.expect("index");
    for _ in 0..8 {
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250) \
             INSERT INTO big (b, t) SELECT zeroblob(4000), 'row' || i FROM n",
            (),
        )
        .await
        .expect("fill");
    }
    db.execute("DELETE FROM big WHERE id > 10", ()).await.expect("delete most");
    c.converge(T).await;
    let mut before = Vec::new();
    for n in c.nodes.iter().flatten() {
        let Value::Integer(p) = scalar(n, "PRAGMA page_count").await else { panic!("page_count") };
        assert!(p > 1000, "the file holds the deleted pages until VACUUM: {p}");
        before.push(p);
    }

    for sql in [
        "PRAGMA user_version = 7",
        "PRAGMA application_id = 42",
        "ANALYZE",
        "REINDEX",
        "REINDEX big_t",
        "PRAGMA optimize",
        "PRAGMA incremental_vacuum",
        "VACUUM",
    ] {
        db.execute(sql, ()).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    // Several in one request (independent statements, rqlite style) and through a follower.
    let r = c
        .node((li + 1) % 3)
        .batch(["INSERT INTO big (t) VALUES ('after')", "VACUUM", "PRAGMA user_version = 8"])
        .await
        .expect("batch");
    assert_eq!(r.len(), 3);
    c.converge(T).await;
    on_every_node(&c, "PRAGMA user_version", Value::Integer(8)).await;
    on_every_node(&c, "PRAGMA application_id", Value::Integer(42)).await;
    on_every_node(&c, "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'big'", Value::Integer(1)).await;
    on_every_node(&c, "PRAGMA freelist_count", Value::Integer(0)).await;
    on_every_node(&c, "SELECT count(*) FROM big", Value::Integer(11)).await;
    for (n, b) in c.nodes.iter().flatten().zip(&before) {
        let Value::Integer(p) = scalar(n, "PRAGMA page_count").await else { panic!("page_count") };
        assert!(p * 10 < *b, "VACUUM shrank the database: {b} -> {p} pages");
    }
    let sums: Vec<u64> = futures_sums(&c).await;
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "replicas differ: {sums:?}");
    let dirs: Vec<_> = c.configs.iter().map(|cfg| cfg.data_dir.join("db").join("hiqlite.db")).collect();
    c.stop_all().await;
    for f in dirs {
        let len = std::fs::metadata(&f).expect("db file").len();
        assert!(len < 1_000_000, "{} is {len} bytes after VACUUM and a clean stop", f.display());
    }
}

async fn futures_sums(c: &TestCluster) -> Vec<u64> {
    let mut v = Vec::new();
    for n in c.nodes.iter().flatten() {
        v.push(content_checksum(n).await);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_the_users_and_unsafe_statements_are_refused() {
    init_logging();
    let mut c = TestCluster::configure(1, |_| {});
    c.start(0).await;
    c.leader(T).await;
    let db = c.node(0).clone();
    let names = |rows: hiqlite::Rows| -> Vec<Value> { rows.rows.into_iter().map(|r| r[0].clone()).collect() };
    assert_eq!(names(db.query("SELECT name FROM sqlite_master", ()).await.expect("master")), vec![]);
    assert_eq!(names(db.query("SELECT name FROM sqlite_schema", ()).await.expect("schema")), vec![]);
    let listed = names(
        db.query("SELECT name FROM pragma_table_list WHERE name NOT LIKE 'sqlite_%'", ())
            .await
            .expect("tables"),
    );
    assert_eq!(listed, vec![]);

    // Any name is the user's, hiqlite's old table names included.
    db.execute("CREATE TABLE _hiqlite_meta (key TEXT PRIMARY KEY, v INTEGER)", ()).await.expect("create");
    db.execute("INSERT INTO _hiqlite_meta VALUES ('a', 1)", ()).await.expect("insert");
    db.execute("UPDATE _hiqlite_meta SET v = v + 1", ()).await.expect("update");
    assert_eq!(scalar(&db, "SELECT v FROM _hiqlite_meta").await, Value::Integer(2));
    let migrations = [Migration { id: 1, name: "init".into(), sql: "CREATE TABLE m (x)".into() }];
    assert_eq!(db.migrate(&migrations).await.expect("migrate"), 1);
    assert_eq!(db.migrate(&migrations).await.expect("migrate again"), 0);
    let listed = names(db.query("SELECT name FROM sqlite_master ORDER BY name", ()).await.expect("master"));
    assert_eq!(
        listed,
        vec![
            Value::Text("_hiqlite_meta".into()),
            Value::Text("m".into()),
            Value::Text("sqlite_autoindex__hiqlite_meta_1".into())
        ]
    );

    // Refused with the statement named and the reason.
    for (sql, needles) in [
        ("ATTACH DATABASE 'other.db' AS o", &["ATTACH DATABASE 'other.db' AS o", "local files"][..]),
        ("VACUUM INTO '/tmp/copy.db'", &["VACUUM INTO '/tmp/copy.db'", "backup"][..]),
        ("PRAGMA journal_mode = DELETE", &["PRAGMA journal_mode", "connection state"][..]),
        ("SELECT * FROM hiqlite_state._hiqlite_state_meta", &["hiqlite_state"][..]),
    ] {
        let e = db.execute(sql, ()).await.expect_err(sql);
        let Error::Sql { message, .. } = &e else { panic!("{sql}: {e:?}") };
        for n in needles {
            assert!(message.contains(n), "{sql}: {message}");
        }
    }

    // A backup shows only user objects, and restores data, migrations and the FK setting.
    db.execute("PRAGMA foreign_keys = OFF", ()).await.expect("fk off");
    let file = c.dir.path().join("b.db");
    db.backup(&file).await.expect("backup");
    {
        let b = rusqlite::Connection::open(&file).expect("open backup");
        let n: i64 = b
            .query_row("SELECT count(*) FROM sqlite_master WHERE name NOT IN ('_hiqlite_meta', 'm', 'sqlite_autoindex__hiqlite_meta_1')", [], |r| r.get(0))
            .expect("q");
        assert_eq!(n, 0);
        let ok: String = b.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
        assert_eq!(ok, "ok");
    }
    c.stop_all().await;
    let mut r = TestCluster::configure(1, |_| {});
    r.configs[0].restore_from = Some(file);
    r.start(0).await;
    r.leader(T).await;
    let db = r.node(0).clone();
    assert_eq!(scalar(&db, "SELECT v FROM _hiqlite_meta").await, Value::Integer(2));
    assert_eq!(db.migrate(&migrations).await.expect("migrations were restored"), 0);
    on_every_node(&r, "PRAGMA foreign_keys", Value::Integer(0)).await;
    r.stop_all().await;
}
