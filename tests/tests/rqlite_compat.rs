//! rqlite compatibility to the letter (issue 16): exact JSON bodies as rqlite answers them, each
//! checked against rqlite's source (cited next to the assertion).

use std::time::Duration;

use hiqlite_tests::{init_logging, Api, TestCluster};
use serde_json::{json, Value};

/// Deadline of conditions the tests wait for.
const T: Duration = Duration::from_secs(60);

async fn cluster(n: usize) -> (TestCluster, Vec<String>) {
    init_logging();
    let mut c = TestCluster::configure(n, |_| {});
    for i in 0..n {
        c.start(i).await;
    }
    c.leader(T).await;
    let addrs = c.configs.iter().map(|c| c.api_addr.clone()).collect();
    (c, addrs)
}

/// Item 6: transaction control inside one request runs as on one SQLite connection (rqlite runs
/// every statement of a request with `ExecContext` on its single read-write connection:
/// rqlite/rqlite `db/db.go`, `executeWithConn`/`executeStmtWithConn`), atomically for hiqlite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_control_in_one_request() {
    let (c, a) = cluster(3).await;
    let api = Api::new();
    let leader = &a[c.leader(T).await];
    let follower = a.iter().find(|x| *x != leader).expect("a follower").clone();
    api.post_json(leader, "/db/execute", r#"["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]"#).await;

    // BEGIN … ROLLBACK leaves nothing; the statements before BEGIN are kept (autocommit).
    let r = api
        .post_json(
            &follower,
            "/db/execute",
            r#"["INSERT INTO t(v) VALUES('kept')", "BEGIN", "INSERT INTO t(v) VALUES('gone')", "ROLLBACK"]"#,
        )
        .await;
    assert_eq!(r["results"][0], json!({"last_insert_id": 1, "rows_affected": 1}));
    assert_eq!(r["results"][2], json!({"last_insert_id": 2, "rows_affected": 1}));
    assert_eq!(api.values(leader, "SELECT v FROM t ORDER BY id").await, json!([["kept"]]));

    // BEGIN … COMMIT applies; SAVEPOINT / ROLLBACK TO / RELEASE inside it are honoured.
    api.post_json(
        leader,
        "/db/execute",
        r#"["BEGIN", "INSERT INTO t(v) VALUES('a')", "SAVEPOINT s", "INSERT INTO t(v) VALUES('b')", "ROLLBACK TO s", "RELEASE s", "COMMIT"]"#,
    )
    .await;
    assert_eq!(api.values(leader, "SELECT v FROM t ORDER BY id").await, json!([["kept"], ["a"]]));

    // A transaction still open at the end of the request is rolled back.
    api.post_json(leader, "/db/execute", r#"["BEGIN", "INSERT INTO t(v) VALUES('open')"]"#).await;
    // A SAVEPOINT outside BEGIN begins a transaction; releasing it commits.
    api.post_json(leader, "/db/execute", r#"["SAVEPOINT x", "INSERT INTO t(v) VALUES('sp')", "RELEASE x"]"#)
        .await;
    api.post_json(leader, "/db/execute", r#"["SAVEPOINT y", "INSERT INTO t(v) VALUES('sp2')", "ROLLBACK"]"#)
        .await;
    assert_eq!(api.values(leader, "SELECT v FROM t ORDER BY id").await, json!([["kept"], ["a"], ["sp"]]));

    // Misplaced control statements get SQLite's own errors, each on its own statement.
    let r = api.post_json(leader, "/db/execute", r#"["COMMIT", "BEGIN", "BEGIN", "END", "ROLLBACK"]"#).await;
    assert_eq!(r["results"][0], json!({"error": "cannot commit - no transaction is active"}));
    assert_eq!(r["results"][2], json!({"error": "cannot start a transaction within a transaction"}));
    assert_eq!(r["results"][4], json!({"error": "cannot rollback - no transaction is active"}));

    // The unified endpoint reads inside the transaction (its own writes).
    let r = api
        .post_json(
            &follower,
            "/db/request",
            r#"["BEGIN", "INSERT INTO t(v) VALUES('r')", "SELECT count(*) FROM t", "ROLLBACK"]"#,
        )
        .await;
    assert_eq!(r["results"][2]["values"], json!([[4]]));
    assert_eq!(api.values(leader, "SELECT count(*) FROM t").await, json!([[3]]));
}

/// Item 3: rqlite reports, for every statement, its one connection's `last_insert_rowid()` and
/// `changes()` after it (rqlite/go-sqlite3 `sqlite3.go`: `_sqlite3_step_row_internal` reads
/// both from the connection after `sqlite3_step`; `SQLiteConn.exec` returns the last
/// statement's result of a multi-statement text; rqlite/rqlite `db/db.go`
/// `executeStmtWithConn` copies them into `last_insert_id`/`rows_affected`, omitted when 0).
/// hiqlite's own faces (`hiqlite_errors`) keep SQLite's per-statement values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_the_connections() {
    let (c, a) = cluster(1).await;
    let api = Api::new();
    let a = &a[c.leader(T).await];
    let r = api.post_json(a, "/db/execute", r#"["CREATE TABLE foo (id INTEGER PRIMARY KEY, v TEXT)"]"#).await;
    assert_eq!(r, json!({"results": [{}]}));
    let r = api.post_json(a, "/db/execute", r#"["INSERT INTO foo(v) VALUES('x')"]"#).await;
    assert_eq!(r, json!({"results": [{"last_insert_id": 1, "rows_affected": 1}]}));
    // DDL in a later request: what the connection's last write left (issue 16, item 3).
    let r = api.post_json(a, "/db/execute", r#"["CREATE TABLE bar (id INTEGER PRIMARY KEY)"]"#).await;
    assert_eq!(r, json!({"results": [{"last_insert_id": 1, "rows_affected": 1}]}));
    // hiqlite's own face: SQLite's per-statement values.
    let r = api
        .post_json(a, "/db/execute?hiqlite_errors", r#"["CREATE TABLE baz (id INTEGER PRIMARY KEY)"]"#)
        .await;
    assert_eq!(r, json!({"results": [{}]}));
    // A multi-statement text: the last statement's counters (hiqlite's face: the sum).
    let three = r#"["INSERT INTO foo(v) VALUES('a'); INSERT INTO foo(v) VALUES('b'); UPDATE foo SET v = 'c' WHERE id = 2"]"#;
    let r = api.post_json(a, "/db/execute", three).await;
    assert_eq!(r, json!({"results": [{"last_insert_id": 3, "rows_affected": 1}]}));
    let r = api.post_json(a, "/db/execute?hiqlite_errors", three).await;
    assert_eq!(r, json!({"results": [{"last_insert_id": 5, "rows_affected": 3}]}));
    let r = api.post_json(a, "/db/execute", r#"["UPDATE foo SET v = 'z'", "DROP TABLE foo"]"#).await;
    assert_eq!(
        r,
        json!({"results": [{"last_insert_id": 5, "rows_affected": 5}, {"last_insert_id": 5, "rows_affected": 5}]})
    );
    // /db/load with SQL text: one execute, the last statement's counters.
    let r = api
        .http
        .post(format!("http://{a}/db/load"))
        .header("content-type", "text/plain")
        .body("CREATE TABLE l (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO l VALUES(7, 'a');\nINSERT INTO l VALUES(9, 'b');\n")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let r: Value = serde_json::from_str(&r.text().await.expect("text")).expect("json");
    assert_eq!(r, json!({"results": [{"last_insert_id": 9, "rows_affected": 1}]}));
}

/// Item 2: an expression column's type comes from its value in the first row (rqlite/rqlite
/// `db/db.go`, `populateEmptyTypes`: integer, real, text, blob; NULL leaves `""`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expression_column_types() {
    let (c, a) = cluster(1).await;
    let api = Api::new();
    let a = &a[c.leader(T).await];
    api.post_json(a, "/db/execute", r#"["CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (3)"]"#).await;
    let r = api
        .post_json(a, "/db/query", r#"["SELECT 5, 1.5, 'a', x'01', NULL, count(*), max(x), x FROM t"]"#)
        .await;
    assert_eq!(
        r,
        json!({"results": [{
            "columns": ["5", "1.5", "'a'", "x'01'", "NULL", "count(*)", "max(x)", "x"],
            "types": ["integer", "real", "text", "blob", "", "integer", "integer", "integer"],
            "values": [[5, 1.5, "a", "AQ==", null, 1, 3, 3]]
        }]})
    );
    // No row: nothing to take a type from.
    let r = api.post_json(a, "/db/query", r#"["SELECT count(*) + 1 AS n FROM t WHERE 0 GROUP BY x"]"#).await;
    assert_eq!(r, json!({"results": [{"columns": ["n"], "types": [""]}]}));
    // hiqlite's own client: SQLite's declared types, as before.
    let r = api.post_json(a, "/db/query?hiqlite_errors", r#"["SELECT 5"]"#).await;
    assert_eq!(r["results"][0]["types"], json!([""]));
}

/// Item 4: SQL dumps as rqlite writes them: `INSERT INTO "t" VALUES(...)` with the table name
/// always quoted and values as SQLite's quote() spells them (rqlite/rqlite `db/db.go`, `Dump`),
/// and `tables=a,b` limits the dump to those tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_dumps() {
    let (c, a) = cluster(1).await;
    let api = Api::new();
    let a = &a[c.leader(T).await];
    api.post_json(
        a,
        "/db/execute",
        r#"["CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, b BLOB)", "INSERT INTO a VALUES (1, 'it''s', x'0aff')",
            "CREATE INDEX a_v ON a(v)", "CREATE TABLE b (x REAL)", "INSERT INTO b VALUES (0.5)",
            "CREATE TABLE c (y)", "INSERT INTO c VALUES (NULL)"]"#,
    )
    .await;
    assert_eq!(
        api.get_text(a, "/db/backup?fmt=sql").await,
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n\
         CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, b BLOB);\n\
         INSERT INTO \"a\" VALUES(1,'it''s',X'0AFF');\n\
         CREATE TABLE b (x REAL);\n\
         INSERT INTO \"b\" VALUES(0.5);\n\
         CREATE TABLE c (y);\n\
         INSERT INTO \"c\" VALUES(NULL);\n\
         CREATE INDEX a_v ON a(v);\n\
         COMMIT;\n"
    );
    assert_eq!(
        api.get_text(a, "/db/backup?fmt=sql&tables=a,c").await,
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n\
         CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, b BLOB);\n\
         INSERT INTO \"a\" VALUES(1,'it''s',X'0AFF');\n\
         CREATE TABLE c (y);\n\
         INSERT INTO \"c\" VALUES(NULL);\n\
         CREATE INDEX a_v ON a(v);\n\
         COMMIT;\n"
    );
}

/// Item 5: `/status` carries the sections rqlite clients read (rqlite/rqlite `http/service.go`,
/// `handleStatus`: `build`, `runtime`, `http`, `node` with `start_time`/`uptime`, and the
/// store's `ready`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_sections() {
    let (c, a) = cluster(1).await;
    let api = Api::new();
    let a = &a[c.leader(T).await];
    let st: Value = serde_json::from_str(&api.get_text(a, "/status").await).expect("json");
    assert_eq!(st["store"]["ready"], json!(true), "{st}");
    assert_eq!(st["build"]["version"], json!("v8.0.0-hiqlite"));
    for k in ["commit", "branch", "build_time", "compiler"] {
        assert!(st["build"][k].is_string(), "build.{k}: {st}");
    }
    for k in ["GOARCH", "GOOS", "version"] {
        assert!(st["runtime"][k].is_string(), "runtime.{k}: {st}");
    }
    for k in ["GOMAXPROCS", "numCPU", "numGoroutine"] {
        assert!(st["runtime"][k].is_u64(), "runtime.{k}: {st}");
    }
    assert_eq!(st["http"]["addr"], json!(a));
    assert_eq!(st["http"]["auth"], json!("disabled"));
    assert_eq!(st["http"]["redirect"], json!(a));
    let start = st["node"]["start_time"].as_str().expect("start_time");
    assert!(start.len() >= 20 && start.ends_with('Z') && start.as_bytes()[10] == b'T', "{start}");
    assert!(st["node"]["uptime"].as_str().is_some_and(|u| u.ends_with('s')), "{st}");
    // hiqlite's own client still reads its status from `node`.
    assert_eq!(st["node"]["voters"], json!([1]));
}

/// hiqlite's own faces keep exactly what SQLite stored: the remote Rust client (which asks for
/// `hiqlite_errors`) reads DATETIME, BOOLEAN and expression columns unconverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_client_reads_what_sqlite_stored() {
    use hiqlite::Value as V;
    let (c, a) = cluster(1).await;
    let a = &a[c.leader(T).await];
    let db = hiqlite::Client::remote([format!("http://{a}")]).build().expect("remote client");
    db.execute("CREATE TABLE t (d DATETIME, ts TIMESTAMP, b BOOLEAN, dd DATE)", ()).await.expect("create");
    db.execute("INSERT INTO t VALUES ('2004-02-14 07:15:00.5', 14326995600, 2, 'junk')", ())
        .await
        .expect("insert");
    let rows = db.query("SELECT d, ts, b, dd, 5, count(*) FROM t", ()).await.expect("query");
    assert_eq!(
        rows.rows,
        vec![vec![
            V::Text("2004-02-14 07:15:00.5".into()),
            V::Integer(14_326_995_600),
            V::Integer(2),
            V::Text("junk".into()),
            V::Integer(5),
            V::Integer(1),
        ]]
    );
    assert_eq!(rows.types, vec!["datetime", "timestamp", "boolean", "date", "", ""]);
}

/// Item 1: declared-type conversions on the rqlite API (rqlite/go-sqlite3 `sqlite3.go`,
/// `nextSyncLocked` and `SQLiteTimestampFormats`; rqlite/rqlite `db/db.go`,
/// `normalizeRowValues` marshals times as RFC 3339): DATE/DATETIME/TIMESTAMP text and integers
/// (seconds, milliseconds beyond 1e12) become RFC 3339, unparsable text Go's zero time, BOOLEAN
/// integers true/false; other columns and hiqlite's own face are unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_type_conversions() {
    let (c, a) = cluster(1).await;
    let api = Api::new();
    let a = &a[c.leader(T).await];
    api.post_json(
        a,
        "/db/execute",
        r#"["CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE, dt DATETIME, ts TIMESTAMP, b BOOLEAN, x TEXT)",
            "INSERT INTO t VALUES (1, '2004-02-14', '2004-02-14 07:15:00.5', 14326995600, 1, '2004-02-14')",
            "INSERT INTO t VALUES (2, 'junk', 1076742900500, NULL, 0, 'x')"]"#,
    )
    .await;
    let r = api.post_json(a, "/db/query", r#"["SELECT * FROM t ORDER BY id"]"#).await;
    assert_eq!(
        r,
        json!({"results": [{
            "columns": ["id", "d", "dt", "ts", "b", "x"],
            "types": ["integer", "date", "datetime", "timestamp", "boolean", "text"],
            "values": [
                [1, "2004-02-14T00:00:00Z", "2004-02-14T07:15:00.5Z", "2424-01-02T17:00:00Z", true, "2004-02-14"],
                [2, "0001-01-01T00:00:00Z", "2004-02-14T07:15:00.5Z", null, false, "x"]
            ]
        }]})
    );
    let r = api.post_json(a, "/db/query?associative", r#"["SELECT b, ts FROM t WHERE id = 1"]"#).await;
    assert_eq!(
        r,
        json!({"results": [{"types": {"b": "boolean", "ts": "timestamp"}, "rows": [{"b": true, "ts": "2424-01-02T17:00:00Z"}]}]})
    );
    let r = api.post_json(a, "/db/query?hiqlite_errors", r#"["SELECT dt, ts, b FROM t WHERE id = 1"]"#).await;
    assert_eq!(r["results"][0]["values"], json!([["2004-02-14 07:15:00.5", 14326995600_i64, 1]]));
}

/// Item 7: no internal tables in `sqlite_master` (hiqlite's state lives in its own attached
/// file): a fresh node's schema is empty, as rqlite's is (rqlite/rqlite `db/db_common_test.go`,
/// `testSQLiteMasterTable`, sees only the user's table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_internal_tables() {
    let (c, a) = cluster(1).await;
    let api = Api::new();
    let a = &a[c.leader(T).await];
    api.post_json(a, "/db/execute", r#"["CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT)"]"#)
        .await;
    let r = api.post_json(a, "/db/query", r#"["SELECT * FROM sqlite_master"]"#).await;
    assert_eq!(
        r,
        json!({"results": [{
            "columns": ["type", "name", "tbl_name", "rootpage", "sql"],
            "types": ["text", "text", "text", "int", "text"],
            "values": [["table", "foo", "foo", 2, "CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT)"]]
        }]})
    );
}
