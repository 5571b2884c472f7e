//! The query cache on real nodes: hits, exact invalidation by table (joins, subqueries, views,
//! triggers, DDL) on the leader and on followers, and a randomized check against uncached reads.

use std::time::Duration;

use hiqlite::{params, Client, Consistency, Value};
use hiqlite_tests::{init_logging, Embedded, TestCluster};

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

async fn cached(c: &Client, sql: &str) -> Vec<Vec<Value>> {
    c.query_cached(sql, ()).await.expect("cached read").rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_is_exact_on_leader_and_followers() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let f = (li + 1) % 3;
    let (leader, follower) = (c.node(li).clone(), c.node(f).clone());
    leader
        .transaction([
            "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)",
            "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER, w TEXT)",
            "CREATE TABLE log (msg TEXT)",
            "CREATE VIEW va AS SELECT v FROM a",
            "CREATE TRIGGER log_to_a AFTER INSERT ON log BEGIN INSERT INTO a (v) VALUES (NEW.msg); END",
            "INSERT INTO a (v) VALUES ('a1')",
            "INSERT INTO b (a_id, w) VALUES (1, 'b1')",
        ])
        .await
        .expect("schema");
    c.converge(T).await;

    let queries = [
        "SELECT v FROM a ORDER BY id",
        "SELECT w FROM b ORDER BY id",
        "SELECT a.v, b.w FROM a JOIN b ON b.a_id = a.id ORDER BY a.id",
        "SELECT w FROM b WHERE a_id IN (SELECT id FROM a) ORDER BY id",
        "SELECT v FROM va ORDER BY v",
    ];
    for node in [&leader, &follower] {
        for q in queries {
            cached(node, q).await;
        }
        let before = node.n().cache_stats();
        for q in queries {
            cached(node, q).await;
        }
        assert_eq!(node.n().cache_stats().hits, before.hits + queries.len() as u64, "second reads are hits");
    }

    // A write to b keeps results that read only a.
    leader.execute("INSERT INTO b (a_id, w) VALUES (1, 'b2')", ()).await.expect("write b");
    c.converge(T).await;
    for node in [&leader, &follower] {
        let hits = node.n().cache_stats().hits;
        assert_eq!(cached(node, queries[0]).await.len(), 1);
        assert_eq!(cached(node, queries[4]).await.len(), 1);
        assert_eq!(node.n().cache_stats().hits, hits + 2, "a and view results survive a write to b");
        assert_eq!(cached(node, queries[1]).await.len(), 2, "b results are refreshed");
        assert_eq!(cached(node, queries[2]).await.len(), 2, "the join sees the new b row");
        assert_eq!(cached(node, queries[3]).await.len(), 2, "the subquery sees the new b row");
    }

    // A write to a through a trigger invalidates a, the join, the subquery and the view.
    leader.execute("INSERT INTO log VALUES ('via-trigger')", ()).await.expect("trigger write");
    c.converge(T).await;
    for node in [&leader, &follower] {
        assert_eq!(cached(node, queries[0]).await.len(), 2);
        assert_eq!(cached(node, queries[4]).await.len(), 2, "the view over a is invalidated");
        assert_eq!(cached(node, queries[3]).await.len(), 2);
    }

    // DDL invalidates everything.
    leader.execute("ALTER TABLE b ADD COLUMN extra TEXT", ()).await.expect("ddl");
    c.converge(T).await;
    for node in [&leader, &follower] {
        assert_eq!(node.n().cache_stats().entries, 0, "a schema change empties the cache");
    }

    // Non-cacheable queries bypass the cache; linearizable cached reads see the last write.
    let n = follower.n().cache_stats().entries;
    follower.query_cached("SELECT random(), datetime('now')", ()).await.expect("volatile");
    follower.query_cached("PRAGMA table_info(a)", ()).await.expect("pragma");
    assert_eq!(follower.n().cache_stats().entries, n);
    leader.execute("INSERT INTO a (v) VALUES ('lin')", ()).await.expect("write");
    let r = follower
        .query_cached_with("SELECT count(*) FROM a", (), Consistency::Linearizable, None)
        .await
        .expect("linearizable cached");
    assert_eq!(r.rows[0][0], Value::Integer(3));
    let r = follower
        .query_cached_with(
            "SELECT count(*) FROM a",
            (),
            Consistency::Linearizable,
            Some(Duration::from_secs(5)),
        )
        .await
        .expect("linearizable cached hit");
    assert_eq!(r.rows[0][0], Value::Integer(3));
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_cached_reads_equal_uncached_reads() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    c.node(li)
        .transaction([
            "CREATE TABLE t0 (k INTEGER PRIMARY KEY, v INTEGER)",
            "CREATE TABLE t1 (k INTEGER PRIMARY KEY, v INTEGER)",
        ])
        .await
        .expect("schema");
    c.converge(T).await;
    let queries = [
        "SELECT k, v FROM t0 ORDER BY k",
        "SELECT k, v FROM t1 ORDER BY k",
        "SELECT count(*), sum(v) FROM t0",
        "SELECT t0.k, t1.v FROM t0 JOIN t1 USING (k) ORDER BY t0.k",
    ];
    let mut seed: u64 = 0x5eed_1234;
    let mut next = move |m: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    let mut compared = 0;
    for _ in 0..600 {
        let node = c.node(next(3) as usize).clone();
        if next(3) == 0 {
            let table = next(2);
            let k = next(20) as i64;
            let v = next(1000) as i64;
            node.execute(&format!("INSERT OR REPLACE INTO t{table} (k, v) VALUES (?, ?)"), params![k, v])
                .await
                .expect("write");
        } else {
            let q = queries[next(queries.len() as u64) as usize];
            // Compare only when no commit happened around the two reads (same even sequence).
            let before = node.n().apply_seq();
            let from_cache = node.query_cached(q, ()).await.expect("cached");
            let direct = node.query(q, ()).await.expect("direct");
            if before.is_multiple_of(2) && node.n().apply_seq() == before {
                assert_eq!(
                    from_cache.rows, direct.rows,
                    "cached read differs in applied state {before}: {q}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "enough comparisons at a stable applied index: {compared}");
    let hits: u64 = (0..3).map(|i| c.node(i).n().cache_stats().hits).sum();
    assert!(hits > 0, "the cache served reads");
    c.stop_all().await;
}
