//! Quorum-loss recovery with real processes: a 3-node cluster loses two nodes for good (`kill
//! -9`, never restarted); `hiqlite recover` on the stopped survivor makes it a writable one-node
//! cluster holding every acknowledged write it had; two new nodes join it and get all the data.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{NodeProc, ProcCluster};

const T: Duration = Duration::from_secs(120);

fn count(v: &serde_json::Value) -> Option<i64> {
    v["results"][0]["values"][0][0].as_i64()
}

/// Wait until node `i` answers a local count of `want` rows (it may not be listening yet).
async fn wait_count(c: &ProcCluster, i: usize, want: i64) {
    let deadline = Instant::now() + T;
    let url = format!("http://127.0.0.1:{}/db/query?level=none", c.nodes[i].api);
    loop {
        let r = c
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"["SELECT count(*) FROM t"]"#);
        let v: Option<serde_json::Value> = match r.send().await {
            Ok(r) => r.text().await.ok().and_then(|t| serde_json::from_str(&t).ok()),
            Err(_) => None,
        };
        if v.as_ref().and_then(count) == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "node {} has {v:?} rows, not {want}\n{}", i + 1, c.log_of(i));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn recover(c: &ProcCluster, i: usize, voters: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hiqlite"))
        .args(["recover", "--data-dir"])
        .arg(&c.nodes[i].dir)
        .args(["--voters", voters])
        .output()
        .expect("run hiqlite recover")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_recovers_the_cluster_after_losing_the_majority() {
    let mut c = ProcCluster::new(3, &[]);
    c.start_all();
    let li = c.leader(T).await;
    c.execute(li, r#"["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]"#).await.expect("create");
    for i in 0..200 {
        let body = format!(r#"[["INSERT INTO t (id, v) VALUES (?, ?)", {i}, "row {i}"]]"#);
        c.execute(li, &body).await.expect("acknowledged insert");
    }
    // The survivor must hold what was acknowledged: wait until it applied everything.
    c.converge(T).await;
    let survivor = (li + 1) % 3;
    let dead: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    for &d in &dead {
        c.kill9(d);
    }
    // No majority: the survivor does not accept a write (refused, or not answered in 5 s).
    let short = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let refused = short
        .post(format!("http://127.0.0.1:{}/db/execute", c.nodes[survivor].api))
        .header("content-type", "application/json")
        .body(r#"[["INSERT INTO t (id, v) VALUES (1000, 'x')"]]"#)
        .send()
        .await;
    if let Ok(r) = refused {
        let text = r.text().await.unwrap_or_default();
        assert!(!text.contains("rows_affected\":1"), "a write without a majority: {text}");
    }

    // Recovery works on a stopped node only.
    let me = &c.nodes[survivor];
    let voters = format!("{}=127.0.0.1:{}/127.0.0.1:{}", me.id, me.raft, me.api);
    let busy = recover(&c, survivor, &voters);
    assert!(!busy.status.success(), "recover must refuse a data directory in use");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"), "{busy:?}");
    c.kill9(survivor);
    let out = recover(&c, survivor, &voters);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "recover failed: {out:?}");
    assert!(text.contains("last log entry before recovery: term"), "{text}");

    // Restarted alone (its old peers are gone for good), it forms the new cluster and writes.
    c.static_peers = false;
    c.start(survivor);
    let deadline = Instant::now() + T;
    loop {
        let r = c.execute(survivor, r#"[["INSERT INTO t (id, v) VALUES (1000, 'after recovery')"]]"#).await;
        if r.as_ref().is_ok_and(|v| v["results"][0]["rows_affected"] == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no write after recovery: {r:?}\n{}", c.log_of(survivor));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_count(&c, survivor, 201).await;

    // Two new nodes join it and catch up.
    let raft = c.nodes[survivor].raft;
    for id in [4u64, 5] {
        c.nodes.push(NodeProc {
            id,
            api: common::free_port(),
            raft: common::free_port(),
            dir: c.root.path().join(format!("node-{id}")),
            child: None,
            extra: vec!["--join".into(), format!("127.0.0.1:{raft}")],
        });
        let i = c.nodes.len() - 1;
        c.start(i);
    }
    for i in [3, 4] {
        wait_count(&c, i, 201).await;
    }
    // Both are promoted to voters of the new cluster.
    let want = vec![c.nodes[survivor].id, 4, 5];
    let deadline = Instant::now() + T;
    loop {
        let st = c.wait_status(survivor, T).await;
        let node = if st["node"].is_object() { &st["node"] } else { &st };
        let voters: Vec<u64> =
            node["voters"].as_array().into_iter().flatten().filter_map(|v| v.as_u64()).collect();
        if voters == want {
            break;
        }
        assert!(Instant::now() < deadline, "voters {voters:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The new cluster keeps writing with the joiners.
    c.execute(survivor, r#"[["INSERT INTO t (id, v) VALUES (1001, 'with joiners')"]]"#).await.expect("write");
    for i in [survivor, 3, 4] {
        wait_count(&c, i, 202).await;
    }
}
