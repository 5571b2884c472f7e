//! The rqlite-compatible HTTP API: exact JSON bodies and status codes over real HTTP.

use std::time::Duration;

use hiqlite_tests::{init_logging, Api, Embedded, TestCluster};
use serde_json::{json, Value};

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_bodies_match_rqlite() {
    init_logging();
    let mut c = TestCluster::configure(1, |cfg| cfg.max_body_bytes = 64 * 1024);
    c.start(0).await;
    c.leader(T).await;
    let a = c.configs[0].api_addr.clone();
    let api = Api::new();

    let r = api
        .post_json(&a, "/db/execute", r#"["CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, b BLOB)", ["INSERT INTO foo(name, b) VALUES(?, ?)", "fiona", [1, 2, 255]]]"#)
        .await;
    assert_eq!(r, json!({"results": [{}, {"last_insert_id": 1, "rows_affected": 1}]}));
    let r = api
        .post_json(&a, "/db/execute", r#"[["INSERT INTO foo(name) VALUES(:name)", {"name": "declan"}]]"#)
        .await;
    assert_eq!(r, json!({"results": [{"last_insert_id": 2, "rows_affected": 1}]}));

    let (s, t, h) = api.get(&a, "/db/query?q=SELECT%20*%20FROM%20foo%20ORDER%20BY%20id").await;
    assert_eq!(s, 200);
    assert!(h.get("x-rqlite-version").is_some(), "X-RQLITE-VERSION header");
    assert_eq!(
        serde_json::from_str::<Value>(&t).expect("json"),
        json!({"results": [{"columns": ["id", "name", "b"], "types": ["integer", "text", "blob"],
                            "values": [[1, "fiona", "AQL/"], [2, "declan", null]]}]})
    );
    let r = api
        .post_json(&a, "/db/query?associative&blob_array", r#"["SELECT id, b FROM foo WHERE id = 1"]"#)
        .await;
    assert_eq!(
        r,
        json!({"results": [{"types": {"id": "integer", "b": "blob"}, "rows": [{"id": 1, "b": [1, 2, 255]}]}]})
    );
    let r = api.post_json(&a, "/db/query", r#"["SELECT * FROM foo WHERE id = 99"]"#).await;
    assert_eq!(
        r,
        json!({"results": [{"columns": ["id", "name", "b"], "types": ["integer", "text", "blob"]}]})
    );

    // Per-statement SQLite errors are 200 with `error` in place.
    let r = api
        .post_json(
            &a,
            "/db/execute",
            r#"["INSERT INTO nope VALUES (1)", "INSERT INTO foo(name) VALUES ('x')"]"#,
        )
        .await;
    assert_eq!(
        r,
        json!({"results": [{"error": "no such table: nope"}, {"last_insert_id": 3, "rows_affected": 1}]})
    );
    let r = api.post_json(&a, "/db/query", r#"["SELECT * FROM nope"]"#).await;
    assert_eq!(r, json!({"results": [{"error": "no such table: nope"}]}));

    // A failing transaction applies nothing.
    let r = api
        .post_json(
            &a,
            "/db/execute?transaction",
            r#"["INSERT INTO foo(name) VALUES ('t1')", "INSERT INTO foo(id, name) VALUES (1, 'dup')"]"#,
        )
        .await;
    assert_eq!(r["results"][1]["error"], "UNIQUE constraint failed: foo.id", "{r}");
    let r = api.post_json(&a, "/db/query?level=strong", r#"["SELECT count(*) FROM foo"]"#).await;
    assert_eq!(r["results"][0]["values"], json!([[3]]));

    // The unified endpoint.
    let r = api
        .post_json(
            &a,
            "/db/request?associative",
            r#"["INSERT INTO foo(name) VALUES ('r')", "SELECT name FROM foo WHERE id = 1"]"#,
        )
        .await;
    assert_eq!(
        r,
        json!({"results": [{"last_insert_id": 4, "rows_affected": 1, "rows": null}, {"types": {"name": "text"}, "rows": [{"name": "fiona"}]}]})
    );
    let r = api.post_json(&a, "/db/request", r#"["SELECT count(*) AS n FROM foo"]"#).await;
    // An expression column takes its first value's type (rqlite/rqlite db/db.go,
    // populateEmptyTypes).
    assert_eq!(r, json!({"results": [{"columns": ["n"], "types": ["integer"], "values": [[4]]}]}));

    // Flags: timings and pretty.
    let (_, t, _) = api.post(&a, "/db/query?timings&pretty", r#"["SELECT 1"]"#).await;
    assert!(t.contains('\n'), "pretty output is indented");
    let v: Value = serde_json::from_str(&t).expect("json");
    assert!(v["time"].is_number() && v["results"][0]["time"].is_number(), "{v}");

    // Request errors: 4xx with a message, never a panic.
    for (path, body, code) in [
        ("/db/execute", "{", 400),
        ("/db/execute", r#"{"a": 1}"#, 400),
        ("/db/execute", "[1]", 400),
        ("/db/query?level=bogus", r#"["SELECT 1"]"#, 400),
        ("/db/query?timeout=forever", r#"["SELECT 1"]"#, 400),
        ("/db/nothing", "[]", 404),
        ("/db/query?level=strong", r#"["DELETE FROM foo"]"#, 400),
        ("/db/query?cache_ttl=1e30h", r#"["SELECT 1"]"#, 400),
    ] {
        let (s, t, _) = api.post(&a, path, body).await;
        assert_eq!(s, code, "{path} {body}: {t}");
        assert!(!t.is_empty(), "{path}: an error says why");
    }
    let (s, _, _) = api.get(&a, "/db/query").await;
    assert_eq!(s, 400, "missing q");
    let (s, _, _) = api.get(&a, "/db/execute").await;
    assert_eq!(s, 405);
    let huge = format!(r#"["SELECT '{}'"]"#, "x".repeat(100 * 1024));
    let (s, _, _) = api.post(&a, "/db/execute", &huge).await;
    assert_eq!(s, 413);
    let r = api
        .http
        .post(format!("http://{a}/db/execute"))
        .header("content-type", "text/plain")
        .body(vec![0xffu8, 0xfe, 0x00])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let r = api
        .http
        .post(format!("http://{a}/db/execute"))
        .header("content-type", "text/plain")
        .body("INSERT INTO foo(name) VALUES ('plain')")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);

    // The query cache through the API: `cache` / `cache_ttl`, counted in /metrics.
    for _ in 0..2 {
        let r = api.post_json(&a, "/db/query?cache", r#"["SELECT name FROM foo WHERE id = 1"]"#).await;
        assert_eq!(r["results"][0]["values"], json!([["fiona"]]));
    }
    let r = api.post_json(&a, "/db/request?cache_ttl=5s", r#"["SELECT name FROM foo WHERE id = 1"]"#).await;
    assert_eq!(r["results"][0]["values"], json!([["fiona"]]));
    let (s, _, _) = api.post(&a, "/db/query?cache_ttl=soon", r#"["SELECT 1"]"#).await;
    assert_eq!(s, 400);
    let (s, _, _) =
        api.post(&a, "/db/query?cache_ttl=10000000000000000000s", r#"["SELECT id FROM foo"]"#).await;
    assert_eq!(s, 200, "an absurd TTL is clamped, not a panic");
    // SQLite's own tables and pragma functions are never served from the cache.
    let before = api.post_json(&a, "/db/query?cache", r#"["SELECT count(*) FROM sqlite_master"]"#).await;
    api.post_json(&a, "/db/execute", r#"["CREATE TABLE cache_probe (x)"]"#).await;
    let after = api.post_json(&a, "/db/query?cache", r#"["SELECT count(*) FROM sqlite_master"]"#).await;
    assert_ne!(before, after);
    let (_, m, _) = api.get(&a, "/metrics").await;
    assert!(m.contains("hiqlite_cache_hits_total 2"), "{m}");
    assert!(m.contains("hiqlite_cache_evictions_total{reason=\"ttl\"}"), "{m}");

    let (s, t, _) = api.get(&a, "/readyz").await;
    assert_eq!((s, t.starts_with("[+]node ok")), (200, true));
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_forward_redirect_and_describe_the_cluster() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let f = (li + 1) % 3;
    let (la, fa) = (c.configs[li].api_addr.clone(), c.configs[f].api_addr.clone());
    let api = Api::new();

    // Transparent forwarding by default.
    let r =
        api.post_json(&fa, "/db/execute", r#"["CREATE TABLE t (x)", ["INSERT INTO t VALUES (?)", 7]]"#).await;
    assert_eq!(r, json!({"results": [{}, {"last_insert_id": 1, "rows_affected": 1}]}));
    for level in ["weak", "linearizable", "strong", "auto"] {
        let r = api.post_json(&fa, &format!("/db/query?level={level}"), r#"["SELECT x FROM t"]"#).await;
        assert_eq!(r["results"][0]["values"], json!([[7]]), "level {level}");
    }
    // With `redirect`, 301 to the leader's API.
    let (s, _, h) = api.post(&fa, "/db/execute?redirect", r#"["INSERT INTO t VALUES (8)"]"#).await;
    assert_eq!(s, 301);
    let loc = h.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(loc, format!("http://{la}/db/execute?redirect"));
    let (s, _, _) = api.post(&fa, "/db/query?redirect&level=none", r#"["SELECT 1"]"#).await;
    assert_eq!(s, 200, "level=none is served locally even with redirect");

    let (_, t, _) = api.get(&fa, "/nodes").await;
    let legacy: Value = serde_json::from_str(&t).expect("json");
    assert_eq!(legacy.as_object().map(|o| o.len()), Some(3), "{legacy}");
    let leader_id = (li + 1).to_string();
    assert_eq!(legacy[&leader_id]["leader"], true);
    assert_eq!(legacy[&leader_id]["api_addr"], format!("http://{la}"));
    assert_eq!(legacy["1"]["reachable"], true);
    let (_, t, _) = api.get(&fa, "/nodes?ver=2").await;
    let v2: Value = serde_json::from_str(&t).expect("json");
    assert_eq!(v2["nodes"].as_array().map(Vec::len), Some(3), "{v2}");
    let (_, t, _) = api.get(&fa, "/leader").await;
    let l: Value = serde_json::from_str(&t).expect("json");
    assert_eq!(l["leader"]["api_addr"], format!("http://{la}"));

    // A node alone (no quorum) answers 503 for writes.
    let others: Vec<usize> = (0..3).filter(|i| *i != f).collect();
    for i in others {
        c.stop(i).await;
    }
    let (s, t, _) = api.post(&fa, "/db/execute?timeout=2s", r#"["INSERT INTO t VALUES (9)"]"#).await;
    assert!(s == 503 || s == 504, "no quorum: {s} {t}");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_permissions_and_peer_secret() {
    init_logging();
    let users = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(
        users.path(),
        json!([
            {"username": "admin", "password": "adminpw", "perms": ["all"]},
            {"username": "reader", "password": "readpw", "perms": ["query"]},
            {"username": "*", "perms": ["ready"]}
        ])
        .to_string(),
    )
    .expect("users file");
    let path = users.path().to_path_buf();
    let mut c = TestCluster::configure(1, move |cfg| cfg.auth_file = Some(path.clone()));
    c.start(0).await;
    c.leader(T).await;
    let a = c.configs[0].api_addr.clone();
    hiqlite::install_crypto_provider();
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, user: Option<(&str, &str)>, body: &str| {
        let mut r = http.request(method, format!("http://{a}{path}")).body(body.to_string());
        if let Some((u, p)) = user {
            r = r.basic_auth(u, Some(p));
        }
        async move { r.send().await.expect("send").status().as_u16() }
    };
    use reqwest::Method as M;
    let protected = [
        (M::POST, "/db/execute", r#"["SELECT 1"]"#),
        (M::POST, "/db/query", r#"["SELECT 1"]"#),
        (M::POST, "/db/request", r#"["SELECT 1"]"#),
        (M::GET, "/db/backup", ""),
        (M::POST, "/snapshot", ""),
        (M::PUT, "/kv/ns/k", "v"),
        (M::GET, "/kv/ns/k", ""),
        (M::POST, "/counter/c", r#"{"add": 1}"#),
        (M::GET, "/status", ""),
        (M::GET, "/nodes", ""),
        (M::GET, "/leader", ""),
        (M::GET, "/metrics", ""),
        (M::DELETE, "/remove", r#"{"id": "9"}"#),
    ];
    for (m, p, b) in &protected {
        assert_eq!(send(m.clone(), p, None, b).await, 401, "{p} without credentials");
        assert_eq!(send(m.clone(), p, Some(("admin", "wrong")), b).await, 401, "{p} with a wrong password");
        assert_eq!(send(m.clone(), p, Some(("nobody", "x")), b).await, 401, "{p} with an unknown user");
    }
    assert_eq!(send(M::GET, "/readyz", None, "").await, 200, "anyone may ask readiness");
    assert_eq!(
        send(M::POST, "/db/execute", Some(("admin", "adminpw")), r#"["CREATE TABLE t (x)"]"#).await,
        200
    );
    assert_eq!(send(M::POST, "/db/query", Some(("reader", "readpw")), r#"["SELECT * FROM t"]"#).await, 200);
    assert_eq!(
        send(M::POST, "/db/execute", Some(("reader", "readpw")), r#"["INSERT INTO t VALUES (1)"]"#).await,
        401
    );
    assert_eq!(
        send(M::POST, "/db/request", Some(("reader", "readpw")), r#"["INSERT INTO t VALUES (1)"]"#).await,
        401
    );
    assert_eq!(send(M::POST, "/db/request", Some(("reader", "readpw")), r#"["SELECT * FROM t"]"#).await, 200);
    // Coordination primitives: reading is a query, changing them an execute.
    assert_eq!(send(M::PUT, "/kv/ns/k", Some(("reader", "readpw")), "v").await, 401);
    assert_eq!(send(M::PUT, "/kv/ns/k", Some(("admin", "adminpw")), "v").await, 200);
    assert_eq!(send(M::GET, "/kv/ns/k", Some(("reader", "readpw")), "").await, 200);
    assert_eq!(send(M::POST, "/counter/c", Some(("reader", "readpw")), r#"{"add": 1}"#).await, 401);
    assert_eq!(send(M::GET, "/counter/c", Some(("reader", "readpw")), "").await, 200);
    // A snapshot on demand needs the backup permission, and is built when answered.
    assert_eq!(send(M::POST, "/snapshot", Some(("reader", "readpw")), "").await, 401);
    let built = c.node(0).st().snapshots_built;
    assert_eq!(send(M::POST, "/snapshot", Some(("admin", "adminpw")), "").await, 200);
    assert!(c.node(0).st().snapshots_built > built, "POST /snapshot built one");
    let (s, t) = {
        let r = http
            .get(format!("http://{a}/metrics"))
            .basic_auth("admin", Some("adminpw"))
            .send()
            .await
            .expect("metrics");
        (r.status().as_u16(), r.text().await.expect("text"))
    };
    assert_eq!(s, 200);
    assert!(
        t.contains("hiqlite_raft_term ") && t.contains("hiqlite_http_requests_total{endpoint=\"execute\""),
        "{t}"
    );

    // Every peer route needs the cluster secret.
    let raft = c.configs[0].raft_addr.clone();
    assert!(hiqlite::peer_paths().len() >= 10);
    for path in hiqlite::peer_paths() {
        let r = http.post(format!("http://{raft}{path}")).body("x").send().await.expect("send");
        assert_eq!(r.status().as_u16(), 401, "{path}");
        let r = http
            .post(format!("http://{raft}{path}"))
            .header("x-hiqlite-secret", "wrong-secret")
            .body("x")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 401, "{path}");
    }
    // Append streams: the secret first, then the protocol the upgrade names.
    let secret = c.configs[0].secret.clone();
    let upgrade = |secret: String, proto: &'static str| {
        http.get(format!("http://{raft}/raft/stream"))
            .header("x-hiqlite-secret", secret)
            .header("connection", "upgrade")
            .header("upgrade", proto)
            .send()
    };
    let r = upgrade("wrong-secret".into(), "hiqlite-append/1").await.expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r = upgrade(secret.clone(), "websocket").await.expect("send");
    assert_eq!(r.status().as_u16(), 426);
    assert_eq!(r.headers().get("upgrade").map(|v| v.as_bytes()), Some(&b"hiqlite-append/1"[..]));
    let r = upgrade(secret, "hiqlite-append/1").await.expect("send");
    assert_eq!(r.status().as_u16(), 101);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_load_as_sql_and_as_database_file() {
    init_logging();
    let mut src = TestCluster::configure(1, |_| {});
    let mut dst = TestCluster::configure(1, |_| {});
    src.start(0).await;
    dst.start(0).await;
    src.leader(T).await;
    dst.leader(T).await;
    let (a, b) = (src.configs[0].api_addr.clone(), dst.configs[0].api_addr.clone());
    let api = Api::new();
    api.post_json(
        &a,
        "/db/execute",
        r#"["CREATE TABLE foo (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, r REAL, b BLOB)",
            "INSERT INTO foo (name, r, b) VALUES ('it''s', 3.0, X'00ff'), ('x', 0.1, NULL)",
            "CREATE INDEX foo_name ON foo(name)"]"#,
    )
    .await;
    let q = r#"["SELECT id, name, typeof(r), r, hex(b) FROM foo ORDER BY id"]"#;
    let expected = api.post_json(&a, "/db/query", q).await;

    let (s, dump, _) = api.get(&a, "/db/backup?fmt=sql").await;
    assert_eq!(s, 200);
    assert!(dump.starts_with("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"), "{dump}");
    // rqlite quotes the table name and writes blobs as SQLite's quote() does (rqlite/rqlite
    // db/db.go, Dump).
    assert!(dump.contains("INSERT INTO \"foo\" VALUES(1,'it''s',3.0,X'00FF');"), "{dump}");
    assert!(!dump.contains("_hiqlite_"), "internal tables stay out of dumps");
    let r = api.post_json(&b, "/db/load", &dump).await;
    assert!(r["results"][0].get("error").is_none(), "{r}");
    assert_eq!(api.post_json(&b, "/db/query", q).await, expected);

    // A binary backup replaces what the target holds.
    api.post_json(&b, "/db/execute", r#"["INSERT INTO foo (name) VALUES ('only on b')"]"#).await;
    let file = api
        .http
        .get(format!("http://{a}/db/backup"))
        .send()
        .await
        .expect("backup")
        .bytes()
        .await
        .expect("bytes");
    assert!(file.starts_with(b"SQLite format 3\0"));
    let r = api
        .http
        .post(format!("http://{b}/db/load"))
        .header("content-type", "application/octet-stream")
        .body(file)
        .send()
        .await
        .expect("load");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(api.post_json(&b, "/db/query", q).await, expected);
    let (s, _, _) = api.post(&b, "/db/load", "").await;
    assert_eq!(s, 400);
    src.stop_all().await;
    dst.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_raft_index_freshness_and_leader_transfer() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let f = (li + 1) % 3;
    let (la, fa) = (c.configs[li].api_addr.clone(), c.configs[f].api_addr.clone());
    let api = Api::new();
    let r = api.post_json(&la, "/db/execute?raft_index", r#"["CREATE TABLE t (x)"]"#).await;
    let idx = r["raft_index"].as_u64().expect("raft_index");
    assert!(idx > 0, "{r}");

    let r = api.post_json(&la, "/db/execute?queue", r#"["INSERT INTO t VALUES (1)"]"#).await;
    assert_eq!(r["results"], json!([]));
    let s1 = r["sequence_number"].as_u64().expect("sequence number");
    let r = api.post_json(&la, "/db/execute?queue&wait", r#"["INSERT INTO t VALUES (2)"]"#).await;
    assert!(r["sequence_number"].as_u64() > Some(s1), "{r}");
    let r = api.post_json(&la, "/db/query?level=linearizable", r#"["SELECT count(*) FROM t"]"#).await;
    assert_eq!(r["results"][0]["values"], json!([[2]]), "a waited-for queued write is applied");

    // A follower that hears from the leader is fresh (once it has applied the writes: wait for
    // that, however long replication takes here); a tiny bound is not met.
    api.eventually_values(
        &fa,
        "/db/query?level=none&freshness=5s",
        r#"["SELECT count(*) FROM t"]"#,
        json!([[2]]),
    )
    .await;
    let r = api.post_json(&fa, "/db/query?level=none&freshness=1ns", r#"["SELECT 1"]"#).await;
    assert_eq!(r, json!({"results": [{"error": "stale read"}]}));
    api.eventually_values(
        &fa,
        "/db/query?level=none&freshness=5s&freshness_strict",
        r#"["SELECT 1"]"#,
        json!([[1]]),
    )
    .await;
    let (s, t, _) =
        api.post(&la, "/db/execute?queue&wait&timeout=1ns", r#"["INSERT INTO t VALUES (0)"]"#).await;
    assert_eq!(s, 408, "a queued write not done within the wait timeout: {t}");

    let (s, t, _) = api.get(&fa, "/status?pretty").await;
    assert_eq!(s, 200);
    let st: Value = serde_json::from_str(&t).expect("status json");
    assert_eq!(st["store"]["raft"]["state"], "Follower", "{st}");
    assert_eq!(st["node"]["voters"], json!([1, 2, 3]));

    // Leadership moves away from the old leader (normally to the node asked for).
    let target = c.configs[f].node_id;
    let old = c.configs[li].node_id;
    let (s, t, _) = api.post(&la, "/leader", &format!(r#"{{"id": "{target}"}}"#)).await;
    // Best effort under openraft 0.9 (no transfer call): 200 when leadership moved, else 504.
    assert!(s == 200 || s == 504, "{s} {t}");
    let new_leader = c.leader(T).await;
    if s == 200 {
        assert_ne!(c.configs[new_leader].node_id, old, "leadership moved");
    }
    let r = api.post_json(&la, "/db/execute", r#"["INSERT INTO t VALUES (3)"]"#).await;
    assert_eq!(r["results"][0]["rows_affected"], 1, "the old leader forwards to the new one: {r}");

    // DELETE /remove takes a node out of the cluster.
    let gone = (f + 1) % 3;
    let gone_id = c.configs[gone].node_id;
    let r = api
        .http
        .delete(format!("http://{la}/remove"))
        .body(format!(r#"{{"id": "{gone_id}"}}"#))
        .send()
        .await
        .expect("remove");
    assert_eq!(r.status().as_u16(), 200);
    // The old leader (now a follower) learns the new membership when it applies it.
    let deadline = std::time::Instant::now() + T;
    loop {
        let (_, t, _) = api.get(&la, "/nodes?ver=2").await;
        let v: Value = serde_json::from_str(&t).expect("json");
        if v["nodes"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "node {gone_id} still listed: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, _, _) = api.post(&la, "/remove", "{}").await;
    assert_eq!(s, 405);
    let r = api.http.delete(format!("http://{la}/remove")).body("{}").send().await.expect("remove");
    assert_eq!(r.status().as_u16(), 400);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_both_listeners() {
    init_logging();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("certificate");
    let dir = tempfile::tempdir().expect("tmp");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("key");
    let (cp, kp) = (cert_path.clone(), key_path.clone());
    let mut c = TestCluster::configure(3, move |cfg| {
        cfg.tls_cert = Some(cp.clone());
        cfg.tls_key = Some(kp.clone());
    });
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let f = (li + 1) % 3;
    let fa = c.configs[f].api_addr.clone();
    hiqlite::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("ca");
    let https = reqwest::Client::builder().tls_certs_only([ca]).build().expect("client");
    // A write on a follower crosses the peer listener (TLS) to the leader.
    let r = https
        .post(format!("https://{fa}/db/execute"))
        .header("content-type", "application/json")
        .body(r#"["CREATE TABLE t (x)", ["INSERT INTO t VALUES (?)", 5]]"#)
        .send()
        .await
        .expect("https request");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.text().await.expect("text")).expect("json");
    assert_eq!(v["results"][1]["rows_affected"], 1, "{v}");
    let r = https
        .get(format!("https://{fa}/db/query?level=linearizable&q=SELECT%20x%20FROM%20t"))
        .send()
        .await
        .expect("https query");
    let v: Value = serde_json::from_str(&r.text().await.expect("text")).expect("json");
    assert_eq!(v["results"][0]["values"], json!([[5]]));
    let (_, t, _) = {
        let r = https.get(format!("https://{fa}/nodes")).send().await.expect("nodes");
        (0, r.text().await.expect("text"), ())
    };
    assert!(t.contains("https://"), "advertised API URLs use https: {t}");
    // Plain HTTP to a TLS listener gets no answer it could mistake for success.
    let plain = reqwest::Client::new().get(format!("http://{fa}/status")).send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    // The server offers HTTP/2 over TLS (ALPN), and reqwest takes it.
    let r = https.get(format!("https://{fa}/status")).send().await.expect("status");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    // The remote client trusts the given CA, follows the https redirect to the leader and
    // refuses a server it cannot authenticate.
    let db = hiqlite::Client::remote([format!("https://{fa}")])
        .ca_cert_pem(cert.cert.pem())
        .build()
        .expect("remote client");
    db.execute("INSERT INTO t VALUES (?)", hiqlite::params![6]).await.expect("remote write over TLS");
    let rows = db.query("SELECT count(*) FROM t", ()).await.expect("remote read over TLS");
    assert_eq!(rows.rows[0][0], hiqlite::Value::Integer(2));
    let untrusting = hiqlite::Client::remote([format!("https://{fa}")])
        .retry(hiqlite::RetryPolicy { max_attempts: 2, ..Default::default() })
        .build()
        .expect("remote client");
    assert!(matches!(untrusting.query("SELECT 1", ()).await, Err(hiqlite::Error::Unreachable(_))));
    c.stop_all().await;
}
