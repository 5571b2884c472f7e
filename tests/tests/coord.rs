//! Coordination primitives through real nodes: replicated key/value entries (expiry by the
//! leader's clock, compare-and-swap, namespace limits), counters, across restarts and snapshot
//! installs, embedded and through the remote client and raw HTTP.

use std::time::{Duration, Instant};

use hiqlite::{Client, Consistency, Error};
use hiqlite_tests::{init_logging, Embedded, TestCluster};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON body")
}

/// Wait until `f` holds on the value it computes, or fail with the last one.
async fn until<F, Fut, V: std::fmt::Debug>(what: &str, mut f: F, ok: impl Fn(&V) -> bool) -> V
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = V>,
{
    let deadline = Instant::now() + T;
    loop {
        let v = f().await;
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: still {v:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    user: String,
    roles: Vec<String>,
}

async fn lin(c: &Client, ns: &str, key: &str) -> Option<Vec<u8>> {
    c.kv_get_with(ns, key, Consistency::Linearizable).await.expect("linearizable get")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_values_and_counters_replicate_expire_and_swap() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let follower = (li + 1) % 3;

    // Written through a follower (forwarded), read everywhere.
    c.node(follower).kv_put("cfg", "greeting", b"hello", None).await.expect("put");
    for i in 0..3 {
        assert_eq!(lin(c.node(i), "cfg", "greeting").await.as_deref(), Some(&b"hello"[..]));
        let _ =
            until("local read", || c.node(i).kv_get("cfg", "greeting"), |v| matches!(v, Ok(Some(_)))).await;
    }
    let s = Session { user: "ada".into(), roles: vec!["admin".into()] };
    c.node(li).kv_put_json("sessions", "s1", &s, Some(Duration::from_secs(600))).await.expect("put json");
    let back: Option<Session> = c.node(follower).kv_get_json("sessions", "s1").await.expect("get json");
    assert!(back.is_none() || back.as_ref() == Some(&s));
    assert_eq!(
        until(
            "json replicated",
            || c.node(follower).kv_get_json::<Session>("sessions", "s1"),
            |v| matches!(v, Ok(Some(_)))
        )
        .await
        .expect("json"),
        Some(s)
    );

    // Expiry: gone on every replica once the leader's clock passes it, with nobody writing.
    c.node(li).kv_put("cache", "short", b"x", Some(Duration::from_millis(200))).await.expect("put ttl");
    c.node(li).kv_put("cache", "long", b"y", Some(Duration::from_secs(600))).await.expect("put ttl");
    for i in 0..3 {
        let _ = until("expired", || c.node(i).kv_get("cache", "short"), |v| matches!(v, Ok(None))).await;
    }
    assert_eq!(lin(c.node(follower), "cache", "long").await.as_deref(), Some(&b"y"[..]));

    // Compare and swap, delete, get-and-delete.
    let n = c.node(follower);
    assert!(n.kv_replace("lock", "owner", None, Some(b"a"), None).await.expect("cas"));
    assert!(!n.kv_replace("lock", "owner", None, Some(b"b"), None).await.expect("cas"), "taken");
    assert!(!n.kv_replace("lock", "owner", Some(b"b"), Some(b"c"), None).await.expect("cas"), "not b");
    assert!(n.kv_replace("lock", "owner", Some(b"a"), Some(b"c"), None).await.expect("cas"));
    assert_eq!(lin(n, "lock", "owner").await.as_deref(), Some(&b"c"[..]));
    assert!(n.kv_replace("lock", "owner", Some(b"c"), None, None).await.expect("cas delete"));
    assert_eq!(lin(n, "lock", "owner").await, None);
    assert!(n.kv_delete("cfg", "greeting").await.expect("delete"));
    assert!(!n.kv_delete("cfg", "greeting").await.expect("delete again"));
    n.kv_put("queue", "job", b"payload", None).await.expect("put");
    assert_eq!(n.kv_get_and_delete("queue", "job").await.expect("take").as_deref(), Some(&b"payload"[..]));
    assert_eq!(n.kv_get_and_delete("queue", "job").await.expect("take again"), None);

    // Compare-and-swap races between nodes: of 12 contenders on 3 nodes, exactly one wins each
    // round, and the value is the winner's.
    for round in 0..5 {
        let key = format!("race{round}");
        let mut tasks = Vec::new();
        for who in 0..12usize {
            let client = c.node(who % 3).clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mine = format!("w{who}");
                let won =
                    client.kv_replace("race", &key, None, Some(mine.as_bytes()), None).await.expect("cas");
                (won, mine)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (won, mine) = t.await.expect("task");
            if won {
                winners.push(mine);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(lin(c.node(round % 3), "race", &key).await, Some(winners[0].clone().into_bytes()));
    }

    // A namespace limit evicts the least recently written, identically everywhere.
    n.kv_set_limit("lru", Some(3)).await.expect("limit");
    for k in ["k1", "k2", "k3", "k4"] {
        n.kv_put("lru", k, k.as_bytes(), None).await.expect("put");
    }
    n.kv_put("lru", "k2", b"again", None).await.expect("rewrite");
    n.kv_put("lru", "k5", b"k5", None).await.expect("put");
    for i in 0..3 {
        let mut present = Vec::new();
        for k in ["k1", "k2", "k3", "k4", "k5"] {
            if lin(c.node(i), "lru", k).await.is_some() {
                present.push(k);
            }
        }
        assert_eq!(present, ["k2", "k4", "k5"], "node {i}");
    }

    // Bad input gets a clear error and changes nothing.
    let e = n.kv_put("", "k", b"v", None).await.expect_err("empty namespace");
    assert!(matches!(e, Error::InvalidRequest(_)), "{e:?}");

    // Counters: concurrent adds from every node each get their own value.
    let mut tasks = Vec::new();
    for i in 0..3 {
        for _ in 0..10 {
            let client = c.node(i).clone();
            tasks.push(tokio::spawn(async move { client.counter_add("hits", 1).await.expect("add") }));
        }
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("task"));
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=30).collect::<Vec<i64>>());
    assert_eq!(c.node(follower).counter_get_with("hits", Consistency::Linearizable).await.expect("get"), 30);
    assert_eq!(c.node(li).counter_set("hits", i64::MAX).await.expect("set"), i64::MAX);
    let e = c.node(li).counter_add("hits", 1).await.expect_err("overflow");
    assert!(matches!(e, Error::InvalidRequest(_)), "{e:?}");
    assert_eq!(c.node(li).counter_get_with("hits", Consistency::Linearizable).await.expect("get"), i64::MAX);
    assert_eq!(c.node(li).counter_get("never").await.expect("get"), 0);

    // A restart keeps everything.
    c.stop(follower).await;
    c.start(follower).await;
    c.converge(T).await;
    assert_eq!(c.node(follower).kv_get("cache", "long").await.expect("get").as_deref(), Some(&b"y"[..]));
    assert_eq!(c.node(follower).counter_get("hits").await.expect("get"), i64::MAX);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_gets_key_values_in_the_snapshot() {
    init_logging();
    let mut c = TestCluster::configure(3, |cfg| {
        cfg.snapshot_every = 20;
        cfg.log_keep_after_snapshot = 0;
    });
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let lagger = (li + 1) % 3;
    c.stop(lagger).await;
    for i in 0..60 {
        c.node(li).kv_put("ns", &format!("k{i}"), format!("v{i}"), None).await.expect("put");
    }
    c.node(li).counter_add("n", 7).await.expect("add");
    c.start(lagger).await;
    c.converge(T).await;
    assert!(c.node(lagger).st().snapshots_installed >= 1, "{:?}", c.node(lagger).st());
    for i in [0, 31, 59] {
        let v = c.node(lagger).kv_get("ns", &format!("k{i}")).await.expect("get");
        assert_eq!(v, Some(format!("v{i}").into_bytes()));
    }
    assert_eq!(c.node(lagger).counter_get("n").await.expect("get"), 7);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_client_and_raw_http_speak_the_same_primitives() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    c.leader(T).await;
    hiqlite::install_crypto_provider();
    let urls: Vec<String> = c.configs.iter().map(|cfg| format!("http://{}", cfg.api_addr)).collect();
    let remote = Client::remote(urls.clone()).build().expect("remote client");

    // Keys with slashes and spaces, binary values.
    remote.kv_put("a ns", "dir/key 1", [0u8, 255, 7], None).await.expect("put");
    assert_eq!(
        remote.kv_get_with("a ns", "dir/key 1", Consistency::Linearizable).await.expect("get"),
        Some(vec![0, 255, 7])
    );
    assert!(remote
        .kv_replace("a ns", "dir/key 1", Some(&[0, 255, 7]), Some(b"new"), None)
        .await
        .expect("cas"));
    assert_eq!(
        remote.kv_get_and_delete("a ns", "dir/key 1").await.expect("take").as_deref(),
        Some(&b"new"[..])
    );
    assert_eq!(remote.kv_get_with("a ns", "dir/key 1", Consistency::Linearizable).await.expect("get"), None);
    assert_eq!(remote.counter_add("c", 5).await.expect("add"), 5);
    assert_eq!(remote.counter_set("c", -2).await.expect("set"), -2);
    assert_eq!(remote.counter_get_with("c", Consistency::Linearizable).await.expect("get"), -2);
    remote.kv_set_limit("small", Some(1)).await.expect("limit");

    // Raw HTTP, as curl users see it.
    let http = reqwest::Client::new();
    let a = &urls[0];
    let r = http.put(format!("{a}/kv/web/page%2F1?ttl=10m")).body("<h1>hi</h1>").send().await.expect("put");
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert!(v["raft_index"].as_u64().is_some_and(|i| i > 0), "{v}");
    let r = http.get(format!("{a}/kv/web/page%2F1?level=linearizable")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"<h1>hi</h1>");
    let r = http.get(format!("{a}/kv/web/missing")).send().await.expect("get");
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await, json!({"error": "no such key"}));
    let r = http.post(format!("{a}/counter/visits")).body(r#"{"add": 3}"#).send().await.expect("counter");
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["value"], 3);
    let r = http.get(format!("{a}/counter/visits?level=linearizable")).send().await.expect("counter");
    assert_eq!(json_of(r).await, json!({"value": 3}));
    let r = http.post(format!("{a}/counter/visits")).body(r#"{"add": "x"}"#).send().await.expect("bad");
    assert_eq!(r.status(), 400);
    let r = http.post(format!("{a}/kv/web/page%2F1")).body("not json").send().await.expect("bad cas");
    assert_eq!(r.status(), 400);
    let r = http.delete(format!("{a}/kv/web/page%2F1")).send().await.expect("delete");
    let v = json_of(r).await;
    assert_eq!(v["deleted"], true, "{v}");
    c.stop_all().await;
}

/// The node's applied index (to wait until an entry proposed elsewhere is in).
fn applied(c: &Client) -> u64 {
    c.st().applied_index.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_hand_over_in_line_with_growing_tokens() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    let li = c.leader(T).await;
    let lease = Duration::from_secs(30);

    let g1 = c.node(0).lock("job", lease, T).await.expect("first holder");
    assert!(c.node(1).try_lock("job", lease).await.expect("try").is_none(), "held");
    // Two waiters, queued in a known order: the second is started once the first one's request
    // is in the log.
    let before = applied(c.node(li));
    let n1 = c.node(1).clone();
    let w2 = tokio::spawn(async move { n1.lock("job", lease, T).await.expect("second holder") });
    let _ = until("first waiter queued", || async { applied(c.node(li)) }, |a| *a > before).await;
    let before = applied(c.node(li));
    let n2 = c.node(2).clone();
    let w3 = tokio::spawn(async move { n2.lock("job", lease, T).await.expect("third holder") });
    let _ = until("second waiter queued", || async { applied(c.node(li)) }, |a| *a > before).await;
    assert!(!w2.is_finished() && !w3.is_finished(), "nobody gets a held lock");

    let t1 = g1.token();
    assert!(g1.release().await.expect("release"), "it was held");
    let g2 = w2.await.expect("task");
    assert!(g2.token() > t1, "tokens grow: {} after {t1}", g2.token());
    assert!(!w3.is_finished(), "the third waits for the second");
    let t2 = g2.token();
    drop(g2); // released in the background
    let g3 = w3.await.expect("task");
    assert!(g3.token() > t2, "tokens grow: {} after {t2}", g3.token());
    assert!(g3.is_held());

    // A holder that stops renewing loses the lock when its lease ends; the next one gets it.
    hiqlite::install_crypto_provider();
    let http = reqwest::Client::new();
    let api = &c.configs[li].api_addr;
    let r = http.post(format!("http://{api}/lock/lease?lease=300ms")).send().await.expect("lock");
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    let stale = v["token"].as_i64().expect("token");
    assert_eq!(v["lease_ms"], 300);
    let r = http.post(format!("http://{api}/lock/lease")).send().await.expect("try");
    assert_eq!(r.status(), 409, "held: try without wait");
    let g = c.node(1).lock("lease", lease, T).await.expect("taken over after the lease");
    assert!(g.token() > stale);
    let r = http
        .post(format!("http://{api}/lock/lease/renew?token={stale}&lease=10s"))
        .send()
        .await
        .expect("renew");
    assert_eq!(json_of(r).await, json!({"renewed": false}), "the stale holder cannot renew");
    let r = http.delete(format!("http://{api}/lock/lease?token={stale}")).send().await.expect("release");
    assert_eq!(json_of(r).await, json!({"released": false}), "nor release");
    // While the guard says it holds the lock, nobody else gets it, however long that is.
    let short = c.node(2).lock("renewed", Duration::from_secs(2), T).await.expect("lock");
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(5) {
        let other = c.node(0).try_lock("renewed", lease).await.expect("try");
        assert!(other.is_none() || !short.is_held(), "two holders at once");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(g.release().await.expect("release"));

    // Waiting runs out: a timeout, and the line moves on without the one who gave up.
    let held = c.node(0).lock("busy", lease, T).await.expect("lock");
    let e = c.node(1).lock("busy", lease, Duration::from_millis(100)).await.expect_err("timeout");
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    let t = held.token();
    held.release().await.expect("release");
    let next = c.node(2).lock("busy", lease, T).await.expect("lock after the one who gave up");
    assert!(next.token() > t);

    // The same through the remote client.
    let urls: Vec<String> = c.configs.iter().map(|cfg| format!("http://{}", cfg.api_addr)).collect();
    let remote = Client::remote(urls).build().expect("remote client");
    let rg = remote.lock("remote/lock", lease, T).await.expect("remote lock");
    assert!(remote.try_lock("remote/lock", lease).await.expect("try").is_none());
    let rt = rg.token();
    assert!(rg.release().await.expect("release"));
    let again = remote.try_lock("remote/lock", lease).await.expect("try").expect("free again");
    assert!(again.token() > rt);
    again.release().await.expect("release");
    c.stop_all().await;
}
