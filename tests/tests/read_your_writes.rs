//! Read-your-writes over the HTTP API: a write through one node answers its `raft_index`; a
//! read on another node with `min_index` waits until that node applied it, so it always sees
//! the write, without a linearizable read. Without `min_index` a follower's local read can miss
//! it (counted, to show the check can fail).

use std::time::Duration;

use hiqlite_tests::{init_logging, TestCluster};
use serde_json::{json, Value as J};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_min_index_see_the_write_on_every_node() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let (writer, reader) = (li, (li + 2) % 3);
    let url = |i: usize, path: &str| format!("http://{}{path}", c.configs[i].api_addr);
    let http = reqwest::Client::new();
    let post = |u: String, body: J| {
        let http = http.clone();
        async move {
            let r = http
                .post(u)
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("request");
            assert!(r.status().is_success(), "{}", r.status());
            serde_json::from_slice::<J>(&r.bytes().await.expect("body")).expect("json")
        }
    };
    post(url(writer, "/db/execute"), json!(["CREATE TABLE t (id INTEGER PRIMARY KEY)"])).await;
    let (mut missed_without, rounds) = (0, 1000);
    for i in 1..=rounds {
        let w =
            post(url(writer, "/db/execute?raft_index"), json!([["INSERT INTO t (id) VALUES (?)", i]])).await;
        let index = w["raft_index"].as_u64().expect("raft_index");
        let sql = json!([["SELECT count(*) FROM t WHERE id = ?", i]]);
        // Local read on a follower, as it is: may not have the write yet.
        let plain = post(url(reader, "/db/query?level=none"), sql.clone()).await;
        if plain["results"][0]["values"][0][0] != json!(1) {
            missed_without += 1;
        }
        let r = post(url(reader, &format!("/db/query?level=none&min_index={index}")), sql).await;
        assert_eq!(r["results"][0]["values"][0][0], json!(1), "round {i}: {r}");
    }
    eprintln!("local follower reads without min_index missed their write {missed_without} times of {rounds}");
    assert!(missed_without > 0, "no read ever missed: this test could not tell min_index from luck");
    let bad = http
        .post(url(reader, "/db/query?min_index=x"))
        .header("Content-Type", "application/json")
        .body(r#"["SELECT 1"]"#)
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status(), 400);
    c.stop_all().await;
}

/// The same through the Rust client: a write's `log_index`, then `query_at` on another node,
/// embedded and remote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_at_a_writes_index_sees_it_embedded_and_remote() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let (writer, reader) = (c.node(li).clone(), c.node((li + 1) % 3).clone());
    let remote_writer =
        hiqlite::Client::remote([format!("http://{}", c.configs[li].api_addr)]).build().expect("remote");
    let remote_reader = hiqlite::Client::remote([format!("http://{}", c.configs[(li + 2) % 3].api_addr)])
        .build()
        .expect("remote");
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", ()).await.expect("create");
    for i in 1..=200i64 {
        let (w, r) = if i % 2 == 0 { (&writer, &reader) } else { (&remote_writer, &remote_reader) };
        let done = w.execute("INSERT INTO t (id) VALUES (?)", hiqlite::params![i]).await.expect("insert");
        let at = done.log_index.expect("a write's log index");
        let rows =
            r.query_at("SELECT count(*) FROM t WHERE id = ?", hiqlite::params![i], at).await.expect("read");
        assert_eq!(rows.rows[0][0], hiqlite::Value::Integer(1), "write {i} at index {at}");
    }
    // A failed write has no result to carry an index.
    let failed = writer.batch(["INSERT INTO t (id) VALUES (1)"]).await.expect("batch");
    assert!(failed[0].is_err());
    c.stop_all().await;
}

/// Session mode: a `read_your_writes` client on a follower (embedded) and a remote one reading
/// `Local` remember their writes' indexes, so their local reads always see them: plain and
/// batched writes, `execute_returning`, cached reads, an interactive transaction's commit (no
/// index: the next read is linearizable) and coordination writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_sessions_see_their_writes_embedded_and_remote() {
    use hiqlite::{params, Consistency::Local, Value};
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let follower = c.node((li + 1) % 3).clone();
    let plain = follower.clone();
    let embedded = follower.read_your_writes();
    assert!(embedded.is_read_your_writes() && !plain.is_read_your_writes());
    let remote = hiqlite::Client::remote([format!("http://{}", c.configs[(li + 2) % 3].api_addr)])
        .consistency(Local)
        .read_your_writes(true)
        .build()
        .expect("remote");
    assert!(remote.is_read_your_writes());
    plain.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ()).await.expect("create");
    let count = "SELECT count(*) FROM t WHERE id = ?";
    for (name, s) in [("embedded", &embedded), ("remote", &remote)] {
        let base = if name == "embedded" { 0 } else { 10_000 };
        let mut last = s.last_write_index();
        for i in base + 1..=base + 100i64 {
            match i % 4 {
                0 => {
                    s.execute("INSERT INTO t (id) VALUES (?)", params![i]).await.expect("insert");
                }
                1 => {
                    let r = s.batch([hiqlite::Statement::new("INSERT INTO t (id) VALUES (?)", params![i])]);
                    assert!(r.await.expect("batch").into_iter().all(|r| r.is_ok()));
                }
                2 => {
                    s.execute_returning("INSERT INTO t (id) VALUES (?) RETURNING id", params![i])
                        .await
                        .expect("insert returning");
                }
                _ => {
                    let tx = s.begin().await.expect("begin");
                    tx.execute("INSERT INTO t (id) VALUES (?)", params![i]).await.expect("tx insert");
                    tx.commit().await.expect("commit");
                }
            }
            let now = s.last_write_index();
            assert!(now.is_some() && now >= last, "{name}: last_write_index went from {last:?} to {now:?}");
            last = now;
            let rows = if i % 3 == 0 {
                s.query_cached_with(count, params![i], Local, None).await.expect("cached read")
            } else {
                s.query_with(count, params![i], Local).await.expect("read")
            };
            assert_eq!(rows.rows[0][0], Value::Integer(1), "{name}: write {i} not seen by its session");
        }
        // Coordination writes are tracked too.
        for k in 0..20i64 {
            s.kv_put("ryw", name, k.to_string(), None).await.expect("kv_put");
            let v = s.kv_get("ryw", name).await.expect("kv_get");
            assert_eq!(v, Some(k.to_string().into_bytes()), "{name}: kv write {k} not seen");
            assert_eq!(s.counter_add(name, 1).await.expect("counter_add"), k + 1);
            assert_eq!(s.counter_get(name).await.expect("counter_get"), k + 1, "{name}: counter");
        }
    }
    // A session started from a client inherits what it knows; `query_at` takes the higher index.
    let forked = embedded.read_your_writes();
    assert_eq!(forked.last_write_index(), embedded.last_write_index());
    let rows = forked.query_at(count, params![1], 1).await.expect("query_at");
    assert_eq!(rows.rows[0][0], Value::Integer(1));
    c.stop_all().await;
}
