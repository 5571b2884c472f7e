//! listen/notify through real nodes: 10,000 notifications from 8 concurrent publishers on 3
//! nodes reach every listener on every node (embedded and over server-sent events) in the same
//! order; a listener that falls behind sees the lag marker and goes on without gaps; cursors
//! resume; a cursor older than what its channel keeps says it lost some, and only then.

use std::time::Duration;

use hiqlite::{Client, ListenEvent, Listener};
use hiqlite_tests::{init_logging, TestCluster};

const T: Duration = Duration::from_secs(120);
const TOTAL: usize = 10_000;

/// Read `n` notifications (skipping lag markers, counted); their (id, payload)s.
async fn take(l: &mut Listener, n: usize) -> (Vec<(i64, Vec<u8>)>, Vec<(i64, bool)>) {
    let mut notes = Vec::with_capacity(n);
    let mut lags = Vec::new();
    while notes.len() < n {
        let e = match tokio::time::timeout(T, l.next()).await {
            Ok(e) => e.expect("event"),
            Err(_) => panic!("no event in time after {} notifications and lags {lags:?}", notes.len()),
        };
        match e {
            ListenEvent::Notification(x) => notes.push((x.id, x.payload)),
            ListenEvent::Lagged { after, lost } => lags.push((after, lost)),
        }
    }
    (notes, lags)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_every_listener_in_one_order() {
    init_logging();
    let mut c = TestCluster::configure(3, |_| {});
    c.start_in_order(&[0, 1, 2]).await;
    c.leader(T).await;
    hiqlite::install_crypto_provider();
    let urls: Vec<String> = c.configs.iter().map(|cfg| format!("http://{}", cfg.api_addr)).collect();
    let remote = Client::remote(urls.clone()).build().expect("remote client");

    // Listeners first: everything published from now on reaches them.
    let mut fast = Vec::new();
    for i in 0..3 {
        fast.push(c.node(i).listen("ch", None).await.expect("listen"));
    }
    let mut over_http = remote.listen("ch", None).await.expect("remote listen");
    let mut slow = c.node(0).listen("ch", None).await.expect("listen");
    let mut elsewhere = c.node(1).listen("other", None).await.expect("listen");

    let readers: Vec<_> =
        fast.into_iter().map(|mut l| tokio::spawn(async move { take(&mut l, TOTAL).await })).collect();
    let http_reader = tokio::spawn(async move { take(&mut over_http, TOTAL).await });
    let mut publishers = Vec::new();
    for p in 0..8usize {
        let client = c.node(p % 3).clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..TOTAL / 8 {
                client.notify("ch", format!("p{p}-{i}")).await.expect("notify");
            }
        }));
    }
    for p in publishers {
        p.await.expect("publisher");
    }
    // The slow listener read nothing meanwhile: it is told it lagged, and misses nothing.
    let (late, lags) = take(&mut slow, TOTAL).await;
    assert!(!lags.is_empty() && lags.iter().all(|(_, lost)| !lost), "a lag marker, nothing lost: {lags:?}");
    let last_other = c.node(2).notify("other", "only one").await.expect("notify");

    let mut seqs = Vec::new();
    for r in readers {
        let (notes, _) = r.await.expect("reader");
        seqs.push(notes);
    }
    let (over_http, _) = http_reader.await.expect("http reader");
    let first = &seqs[0];
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "ids grow");
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(s, first, "listener on node {i} saw another order");
    }
    assert_eq!(&over_http, first, "the server-sent event stream saw another order");
    let mut payloads: Vec<Vec<u8>> = first.iter().map(|(_, p)| p.clone()).collect();
    payloads.sort();
    payloads.dedup();
    assert_eq!(payloads.len(), TOTAL, "every notification once");
    // Each publisher's own notifications arrive in the order it sent them.
    for p in 0..8 {
        let mine: Vec<usize> = first
            .iter()
            .filter_map(|(_, x)| String::from_utf8(x.clone()).ok())
            .filter_map(|s| s.strip_prefix(&format!("p{p}-")).and_then(|n| n.parse().ok()))
            .collect();
        assert_eq!(mine, (0..TOTAL / 8).collect::<Vec<_>>(), "publisher {p}");
    }

    assert_eq!(&late, first, "the slow listener saw another order");
    // Another channel's listener sees only its channel (told it lagged behind the broadcast of
    // the others, but missing nothing of its own).
    let (other, lags) = take(&mut elsewhere, 1).await;
    assert_eq!(other, vec![(last_other, b"only one".to_vec())]);
    assert!(lags.iter().all(|(_, lost)| !lost), "{lags:?}");

    // Resuming after a cursor yields exactly what followed it, on any node, remote too.
    let cursor = first[4_999].0;
    let mut resumed = c.node(2).listen("ch", Some(cursor)).await.expect("resume");
    let (tail, lags) = take(&mut resumed, TOTAL - 5_000).await;
    assert!(lags.is_empty(), "{lags:?}");
    assert_eq!(&tail[..], &first[5_000..]);
    let mut resumed = remote.listen("ch", Some(cursor)).await.expect("remote resume");
    let (tail, _) = take(&mut resumed, 10).await;
    assert_eq!(&tail[..], &first[5_000..5_010]);

    // 10,000 are kept per channel: one more on "ch", and a listener from the very start is told
    // it lost one, then gets the 10,000 kept.
    c.node(0).notify("ch", "one more").await.expect("notify");
    // A linearizable read: node 0 has applied it before the listener reads the store.
    c.node(0).kv_get_with("barrier", "x", hiqlite::Consistency::Linearizable).await.expect("barrier");
    let mut from_start = c.node(0).listen("ch", Some(0)).await.expect("listen");
    match tokio::time::timeout(T, from_start.next()).await.expect("in time").expect("event") {
        ListenEvent::Lagged { after: 0, lost: true } => {}
        other => panic!("want a lost-marker first, got {other:?}"),
    }
    let (kept, _) = take(&mut from_start, TOTAL).await;
    assert_eq!(&kept[..TOTAL - 1], &first[1..]);

    // Raw server-sent events, as a browser's EventSource reads them.
    let http = reqwest::Client::new();
    let mut r = http
        .get(format!("{}/listen/ch", urls[1]))
        .header("last-event-id", cursor.to_string())
        .send()
        .await
        .expect("listen");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(T, r.chunk()).await.expect("in time").expect("chunk").expect("more");
        text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    let (id, payload) = &first[5_000];
    let want =
        format!("event: note\nid: {id}\ndata: {}\n\n", String::from_utf8(payload.clone()).expect("text"));
    assert!(text.starts_with(&want), "{text:?} should start with {want:?}");
    c.stop_all().await;
}

/// A node that shuts down ends its listeners: an embedded one with `Error::ShutDown`, a remote
/// one reading that node's server-sent events with an error (the stream ends), and the shutdown
/// itself does not wait for the open stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_listeners() {
    init_logging();
    let mut c = TestCluster::configure(1, |_| {});
    c.start_in_order(&[0]).await;
    c.leader(T).await;
    hiqlite::install_crypto_provider();
    let url = format!("http://{}", c.configs[0].api_addr);
    let remote = Client::remote(vec![url]).discover(false).build().expect("remote client");
    let mut embedded = c.node(0).listen("bye", None).await.expect("listen");
    let mut over_http = remote.listen("bye", None).await.expect("remote listen");
    let id = c.node(0).notify("bye", "last").await.expect("notify");
    for l in [&mut embedded, &mut over_http] {
        match tokio::time::timeout(T, l.next()).await.expect("in time").expect("event") {
            ListenEvent::Notification(n) => assert_eq!((n.id, &n.payload[..]), (id, &b"last"[..])),
            other => panic!("want the notification, got {other:?}"),
        }
    }
    let waiting = tokio::spawn(async move { embedded.next().await });
    tokio::time::timeout(T, c.stop(0)).await.expect("the shutdown does not wait for listeners");
    let r = tokio::time::timeout(T, waiting).await.expect("the waiting listener ends").expect("join");
    assert!(matches!(r, Err(hiqlite::Error::ShutDown)), "{r:?}");
    let r = tokio::time::timeout(T, over_http.next()).await.expect("the remote listener ends");
    assert!(r.is_err(), "{r:?}");
}
