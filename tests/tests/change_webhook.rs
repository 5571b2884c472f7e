//! Change data capture to a webhook: the leader POSTs committed row changes in log order; a
//! receiver that fails its first requests gets them again (retries), and when the leader is
//! stopped the new leader goes on from the cursor recorded through the log, so every change
//! arrives at least once and, repeats removed, in order.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hiqlite_tests::{init_logging, TestCluster};
use serde_json::Value as J;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Received {
    /// Every POST body, in arrival order.
    bodies: Vec<J>,
    /// Requests answered 500 so far.
    refused: usize,
}

/// A minimal HTTP/1.1 receiver on 127.0.0.1: answers the first `fail_first` requests 500, the
/// rest 200, and keeps the JSON bodies.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Received>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/cdc", listener.local_addr().expect("addr"));
    let got = Arc::new(Mutex::new(Received::default()));
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, len) = loop {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>())
                            })
                            .and_then(Result::ok)
                            .unwrap_or(0);
                        break (p + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let status = {
                    let mut r = g.lock().expect("received");
                    if r.refused < fail_first {
                        r.refused += 1;
                        "500 Internal Server Error"
                    } else {
                        let body: J =
                            serde_json::from_slice(&buf[head_end..head_end + len]).expect("json body");
                        r.bodies.push(body);
                        "200 OK"
                    }
                };
                let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, got)
}

/// The ids inserted into `t`, from the received changes, repeats removed by `(index, seq)`.
fn delivered_ids(r: &Received) -> (Vec<i64>, usize) {
    let mut seen = std::collections::BTreeMap::new();
    let mut total = 0;
    for b in &r.bodies {
        for c in b["changes"].as_array().expect("changes") {
            total += 1;
            let at = (c["index"].as_u64().expect("index"), c["seq"].as_u64().expect("seq"));
            if let Some(prev) = seen.insert(at, c.clone()) {
                assert_eq!(prev, *c, "a repeated change is the same change");
            }
        }
    }
    let ids = seen
        .values()
        .filter(|c| c["table"] == "t" && c["op"] == "insert")
        .map(|c| c["new"]["id"].as_i64().expect("id"))
        .collect();
    (ids, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_the_webhook_across_refusals_and_a_leader_change() {
    init_logging();
    let (url, got) = receiver(3).await;
    let mut c = TestCluster::configure(3, |cfg| {
        cfg.change_retention = 100_000;
        cfg.change_webhook = Some(url.clone());
    });
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let db = c.node(li).clone();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ()).await.expect("t");
    for i in 1..=100i64 {
        db.execute("INSERT INTO t (id, v) VALUES (?, 'x')", hiqlite::params![i]).await.expect("insert");
    }
    // Some of them delivered (after the refusals), then the leader goes.
    let deadline = Instant::now() + T;
    while delivered_ids(&got.lock().expect("received")).0.len() < 20 {
        assert!(Instant::now() < deadline, "no delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.stop(li).await;
    let li2 = c.leader(T).await;
    assert_ne!(li, li2);
    for i in 101..=200i64 {
        c.node(li2)
            .execute("INSERT INTO t (id, v) VALUES (?, 'y')", hiqlite::params![i])
            .await
            .expect("insert");
    }
    let deadline = Instant::now() + T;
    loop {
        let (ids, _) = delivered_ids(&got.lock().expect("received"));
        if ids.last() == Some(&200) {
            break;
        }
        assert!(Instant::now() < deadline, "not everything delivered: {} ids", ids.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let r = got.lock().expect("received");
        let (ids, total) = delivered_ids(&r);
        assert_eq!(ids, (1..=200).collect::<Vec<_>>(), "every insert once, in order, repeats removed");
        assert_eq!(r.refused, 3);
        eprintln!("{} POSTs, {total} changes received for {} distinct", r.bodies.len(), ids.len());
    }
    c.stop_all().await;
}
