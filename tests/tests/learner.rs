//! Read replicas: a learner (`learner = true`) in a 3-voter cluster replicates, serves reads,
//! forwards writes, is never promoted and does not count toward the quorum: with one voter
//! down the cluster stays writable; with two down it is read-only, and the learner still
//! serves every row it received.

use std::time::{Duration, Instant};

use hiqlite::{params, Value};
use hiqlite_tests::{init_logging, Embedded, TestCluster};

const T: Duration = Duration::from_secs(60);

async fn until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_reads_and_forwards_but_never_weighs_on_the_quorum() {
    init_logging();
    // Writes that cannot commit fail after 3 s instead of the tests' usual minute.
    let mut c = TestCluster::configure(3, |cfg| cfg.request_timeout_ms = 3_000);
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    c.node(li).execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ()).await.expect("create");

    let mut r = TestCluster::configure(1, |cfg| cfg.request_timeout_ms = 3_000);
    r.configs[0].node_id = 4;
    r.configs[0].secret = c.configs[0].secret.clone();
    r.configs[0].learner = true;
    r.configs[0].join = c.configs.iter().map(|p| p.raft_addr.clone()).collect();
    r.start(0).await;
    let replica = r.node(0).clone();
    until("the replica is a member", async || replica.st().role == "learner").await;
    // It forwards writes and reads its own replica.
    replica.execute("INSERT INTO t (v) VALUES (?)", params!["via replica"]).await.expect("forwarded write");
    for i in 0..20 {
        c.node(li)
            .execute("INSERT INTO t (v) VALUES (?)", params![format!("row {i}")])
            .await
            .expect("insert");
    }
    until("the replica has every row", async || {
        replica.query("SELECT count(*) FROM t", ()).await.is_ok_and(|r| r.rows[0][0] == Value::Integer(21))
    })
    .await;
    let st = c.node(li).st();
    assert_eq!(st.voters.len(), 3, "never promoted: {st:?}");
    assert!(st.members.contains_key(&4));
    let nodes = c.node(li).nodes().await.expect("nodes");
    assert!(nodes.iter().any(|n| n.id == 4 && !n.voter), "{nodes:?}");
    // Removed and added again, still as a learner.
    c.node(li).remove_node(4).await.expect("remove the replica");
    until("the replica is out", async || !c.node(li).st().members.contains_key(&4)).await;
    let (raft, api) = (r.configs[0].raft_addr.clone(), r.configs[0].api_addr.clone());
    c.node(li).add_learner(4, &raft, &api).await.expect("add the replica again");
    until("the replica is back as a learner", async || replica.st().role == "learner").await;
    c.node(li).execute("INSERT INTO t (v) VALUES ('after re-adding')", ()).await.expect("insert");
    until("the replica replicates again", async || {
        replica.query("SELECT count(*) FROM t", ()).await.is_ok_and(|r| r.rows[0][0] == Value::Integer(22))
    })
    .await;
    assert_eq!(c.node(li).st().voters.len(), 3);

    // One voter down (the leader): still writable, the learner does not vote.
    c.stop(li).await;
    let alive: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    until("a new leader among the two voters left", async || {
        alive.iter().any(|i| c.node(*i).st().leader.is_some_and(|l| l != c.configs[li].node_id))
    })
    .await;
    let w = alive[0];
    until("a write commits with two of three voters", async || {
        c.node(w).execute("INSERT INTO t (v) VALUES ('after one down')", ()).await.is_ok()
    })
    .await;
    assert_eq!(c.node(w).st().voters.len(), 3);
    assert_eq!(replica.st().role, "learner");

    // Two voters down: no quorum although the learner lives; it still serves what it has.
    c.stop(alive[1]).await;
    let last = c.node(w).clone();
    until("writes fail without a quorum", async || {
        last.execute("INSERT INTO t (v) VALUES ('lost')", ()).await.is_err()
    })
    .await;
    assert!(replica.execute("INSERT INTO t (v) VALUES ('no')", ()).await.is_err());
    let rows =
        replica.query("SELECT count(*) FROM t WHERE v = 'after one down'", ()).await.expect("local read");
    assert!(rows.rows[0][0] != Value::Integer(0), "the replica serves the rows it received");
    let all = replica.query("SELECT count(*) FROM t", ()).await.expect("local read");
    assert!(matches!(all.rows[0][0], Value::Integer(n) if n >= 23));
    r.stop_all().await;
    c.stop_all().await;
}

#[test]
fn a_learner_needs_a_cluster_to_join() {
    let cfg = hiqlite::NodeConfig { learner: true, ..Default::default() };
    assert!(cfg.validate().is_err_and(|e| e.to_string().contains("join")));
}
