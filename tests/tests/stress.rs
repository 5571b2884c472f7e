//! Snapshots and log purges racing replication: many single writes with frequent snapshots on 3
//! nodes; every node must stay alive and end identical.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hiqlite::{params, Value};
use hiqlite_tests::{content_checksum, init_logging, Embedded, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_purges_under_replication_keep_nodes_alive_and_identical() {
    init_logging();
    // Concurrent writes share log entries (group commit), so "every" counts entries, not writes.
    let writes: u64 =
        std::env::var("HIQLITE_STRESS_WRITES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let every: u64 =
        std::env::var("HIQLITE_STRESS_SNAPSHOT_EVERY").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let mut c = TestCluster::configure(3, |cfg| {
        cfg.snapshot_every = every;
        cfg.log_keep_after_snapshot = 0;
        cfg.log_segment_bytes = 256 * 1024;
    });
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(Duration::from_secs(60)).await;
    c.node(li)
        .execute("CREATE TABLE s (id INTEGER PRIMARY KEY, w INTEGER, v TEXT)", ())
        .await
        .expect("create");
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..64 {
        // Writers go through every node, so followers forward while they install snapshots.
        let db = c.node(w % 3).clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= writes {
                    return;
                }
                db.execute("INSERT INTO s (w, v) VALUES (?, ?)", params![w as i64, format!("value-{i}")])
                    .await
                    .expect("write acknowledged");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let secs = started.elapsed().as_secs_f64();
    c.converge(Duration::from_secs(60)).await;
    let mut sums = Vec::new();
    for i in 0..3 {
        let st = c.node(i).st();
        assert!(st.healthy, "node {} unhealthy: {st:?}", st.id);
        sums.push(content_checksum(c.node(i)).await);
        let n = c.node(i).query("SELECT count(*) FROM s", ()).await.expect("count");
        assert_eq!(n.rows[0][0], Value::Integer(writes as i64));
    }
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "replicas differ: {sums:?}");
    let entries = c.node(li).st().last_log_index.unwrap_or(0);
    let built: u64 = (0..3).map(|i| c.node(i).st().snapshots_built).sum();
    if entries >= 2 * every {
        for i in 0..3 {
            let st = c.node(i).st();
            assert!(
                st.snapshots_built + st.snapshots_installed >= 1,
                "node {} never snapshotted: {st:?}",
                st.id
            );
        }
    }
    println!(
        "{writes} writes in {entries} log entries, {secs:.1}s ({:.0}/s), {built} snapshots built",
        writes as f64 / secs
    );
    c.stop_all().await;
}
