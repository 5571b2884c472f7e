//! The `hiqlite` binary as a user runs it: real processes, real HTTP on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, TEST_TIMINGS};

/// A child process that is killed (by PID) when dropped, whatever the test outcome.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &std::path::Path, api: u16, raft: u16) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_hiqlite"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--api-addr", &format!("127.0.0.1:{api}"), "--raft-addr", &format!("127.0.0.1:{raft}")])
        .args(["--secret", "cli-test-secret"])
        .envs(TEST_TIMINGS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hiqlite serve");
    Proc(child)
}

async fn wait_ready(api: u16) {
    hiqlite::install_crypto_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{api}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "node on {api} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(api: u16, path: &str, body: &str) -> serde_json::Value {
    hiqlite::install_crypto_provider();
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{api}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    serde_json::from_str(&r.text().await.expect("body")).expect("json answer")
}

fn sigterm(p: &Proc) {
    let ok = Command::new("kill").args(["-TERM", &p.0.id().to_string()]).status().expect("kill").success();
    assert!(ok, "kill -TERM failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_writes_reads_stops_cleanly_and_restarts_with_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, raft) = (free_port(), free_port());
    let mut node = serve(dir.path(), api, raft);
    wait_ready(api).await;
    let r = post(
        api,
        "/db/execute",
        r#"["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ["INSERT INTO t (v) VALUES (?)", "hello"]]"#,
    )
    .await;
    assert_eq!(r["results"][1]["rows_affected"], 1, "{r}");
    let r = post(api, "/db/query", r#"["SELECT v FROM t"]"#).await;
    assert_eq!(r["results"][0]["values"][0][0], "hello", "{r}");
    let bad = post(api, "/db/execute", r#"["INSERT INTO nope VALUES (1)"]"#).await;
    assert!(bad["results"][0]["error"].as_str().is_some_and(|e| e.contains("no such table")), "{bad}");

    // A second process on the same data directory is refused and harms nothing.
    let second = Command::new(env!("CARGO_BIN_EXE_hiqlite"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--api-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"])
        .output()
        .expect("run second");
    assert!(!second.status.success());
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(msg.contains("in use by another hiqlite process"), "{msg}");

    sigterm(&node);
    let status = node.0.wait().expect("wait");
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    assert!(!dir.path().join("hiqlite.lock").exists(), "clean stop releases the data dir");

    let node = serve(dir.path(), api, raft);
    wait_ready(api).await;
    hiqlite::install_crypto_provider();
    let st: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("http://127.0.0.1:{api}/status"))
            .await
            .expect("status")
            .text()
            .await
            .expect("text"),
    )
    .expect("json");
    assert_eq!(st["startup"], "clean", "{st}");
    let r = post(api, "/db/query", r#"["SELECT v FROM t"]"#).await;
    assert_eq!(r["results"][0]["values"][0][0], "hello", "{r}");
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_command_runs_three_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Node N listens on base+10*(N-1) and +1: pick a base whose six ports are all free now.
    let base = loop {
        let b = free_port().saturating_sub(30).max(20_000);
        let all_free = [0u16, 1, 10, 11, 20, 21]
            .iter()
            .all(|o| std::net::TcpListener::bind(("127.0.0.1", b + o)).is_ok());
        if all_free {
            break b;
        }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_hiqlite"))
        .args(["cluster", "--nodes", "3", "--base-port", &base.to_string(), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cluster");
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc(child);
    let lines = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.starts_with("Ctrl-C");
            out.push(line);
            if done {
                break;
            }
        }
        out
    })
    .await
    .expect("read stdout");
    assert!(lines.iter().any(|l| l.contains("cluster of 3 nodes is up")), "{lines:?}");
    let (a1, a3) = (base, base + 20);
    let r = post(a1, "/db/execute", r#"["CREATE TABLE t (x)", ["INSERT INTO t VALUES (?)", 42]]"#).await;
    assert_eq!(r["results"][1]["rows_affected"], 1, "{r}");
    let r = post(a3, "/db/query?level=linearizable", r#"["SELECT x FROM t"]"#).await;
    assert_eq!(r["results"][0]["values"][0][0], 42, "{r}");
    sigterm(&proc);
    drop(proc);
}

fn rqlited(dir: &std::path::Path, id: u64, api: u16, raft: u16, join: Option<u16>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hiqlite"));
    cmd.args(["-node-id", &id.to_string(), "-http-addr", &format!("127.0.0.1:{api}")])
        .arg(format!("-raft-addr=127.0.0.1:{raft}"));
    if let Some(j) = join {
        cmd.args(["-join", &format!("http://127.0.0.1:{j}")]);
    }
    Proc(
        cmd.arg(dir)
            .envs(TEST_TIMINGS)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rqlited-style"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_with_rqlited_flags_and_rejoins_idempotently() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a1, r1, a2, r2) = (free_port(), free_port(), free_port(), free_port());
    let _n1 = rqlited(&root.path().join("n1"), 1, a1, r1, None);
    wait_ready(a1).await;
    let r = post(a1, "/db/execute", r#"["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"]"#).await;
    assert_eq!(r["results"][1]["rows_affected"], 1, "{r}");
    let n2 = rqlited(&root.path().join("n2"), 2, a2, r2, Some(r1));
    hiqlite::install_crypto_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: serde_json::Value = match http.get(format!("http://127.0.0.1:{a1}/nodes?ver=2")).send().await {
            Ok(r) => serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let voters = v["nodes"].as_array().map_or(0, |n| n.iter().filter(|x| x["voter"] == true).count());
        if voters == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "node 2 never joined: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same command line again: -join on a node with state is a no-op.
    sigterm(&n2);
    drop(n2);
    let _n2 = rqlited(&root.path().join("n2"), 2, a2, r2, Some(r1));
    wait_ready(a2).await;
    let r = post(a2, "/db/query?level=linearizable", r#"["SELECT x FROM t"]"#).await;
    assert_eq!(r["results"][0]["values"][0][0], 1, "{r}");
}

/// The remote benchmark harness runs end to end and prints both columns (figures unchecked:
/// tests never assert timings).
#[test]
fn bench_remote_runs_and_compares_with_raw_http() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_hiqlite"))
        .args(["bench", "--remote", "--nodes", "1", "--secs", "0.2", "--dir"])
        .arg(dir.path().join("bench"))
        .output()
        .expect("run bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in ["point select, concurrency 64", "insert, concurrency 16"] {
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(line)).collect();
        assert_eq!(rows.len(), 2, "{line}: client and raw rows in\n{text}");
        assert!(rows[0].contains("hiqlite::Client") && rows[1].contains("raw HTTP"), "{text}");
    }
}
