//! The web console over real HTTP: its pages are served (content types, cache headers, ETags,
//! the security policy) on a loopback API and not when turned off; its JSON endpoints answer a
//! two-node cluster and take the API's users and permissions. (The pages themselves are driven
//! in headless Chromium by `tests/console/test_console.py`.)

use std::time::Duration;

use hiqlite_tests::{init_logging, Api, TestCluster};
use serde_json::Value;

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_is_served_on_loopback_and_reports_the_cluster() {
    init_logging();
    let mut c = TestCluster::configure(2, |_| {});
    c.start_in_order(&[0, 1]).await;
    c.leader(T).await;
    let a = c.configs[0].api_addr.clone();
    let api = Api::new();

    let (s, _, h) = api.get(&a, "/console").await;
    assert_eq!((s, header(&h, "location")), (308, "/console/"));
    let (s, page, h) = api.get(&a, "/console/").await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert!(header(&h, "content-security-policy").contains("script-src 'self'"));
    assert!(page.contains("<title>hiqlite console</title>"));
    // Assets at the version the page names are immutable; the ETag answers 304.
    let src = page.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script");
    let (s, js, h) = api.get(&a, &format!("/console/{src}")).await;
    assert_eq!(s, 200);
    assert!(!js.is_empty());
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert!(header(&h, "cache-control").contains("immutable"));
    let etag = header(&h, "etag").to_owned();
    let r = api
        .http
        .get(format!("http://{a}/console/{src}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 304);
    let (s, _, h) = api.get(&a, "/console/console.css").await;
    assert_eq!(
        (s, header(&h, "content-type"), header(&h, "cache-control")),
        (200, "text/css; charset=utf-8", "no-cache")
    );
    assert_eq!(api.get(&a, "/console/nope.js").await.0, 404);
    assert_eq!(api.get(&a, "/console/index.html").await.1, page);

    let me: Value = serde_json::from_str(&api.get_text(&a, "/console/api/whoami").await).expect("json");
    assert_eq!((me["auth"].as_bool(), me["node"].as_u64()), (Some(false), Some(1)));

    // Both members answer with their own status; nobody lags for long.
    let deadline = std::time::Instant::now() + T;
    loop {
        let o: Value = serde_json::from_str(&api.get_text(&a, "/console/api/cluster").await).expect("json");
        let m = o["members"].as_array().cloned().unwrap_or_default();
        assert_eq!(m.len(), 2, "{o}");
        let settled = m.iter().all(|m| m["reachable"] == true && m["lag"] == 0)
            && m.iter().filter(|m| m["status"]["state"] == "Leader").count() == 1
            && o["leader"].is_u64();
        if settled {
            assert_eq!(m[1]["status"]["id"], 2);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "cluster did not settle: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A write and a read through this node show in its series within a few samples.
    api.post_json(&a, "/db/execute", r#"["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"]"#).await;
    api.post_json(&a, "/db/query", r#"["SELECT * FROM t"]"#).await;
    let deadline = std::time::Instant::now() + T;
    loop {
        let s: Value = serde_json::from_str(&api.get_text(&a, "/console/api/series").await).expect("json");
        let p = s["points"].as_array().cloned().unwrap_or_default();
        let wrote =
            p.iter().any(|p| p["writes_per_s"].as_f64() > Some(0.0) && p["write_latency_ms"].is_f64());
        let read = p.iter().any(|p| p["reads_per_s"].as_f64() > Some(0.0));
        if wrote && read {
            let last = p.last().and_then(|p| p["t_ms"].as_u64()).unwrap_or_default();
            let (_, newer, _) = api.get(&a, &format!("/console/api/series?since={last}")).await;
            let newer: Value = serde_json::from_str(&newer).expect("json");
            let newer = newer["points"].as_array().cloned().unwrap_or_default();
            assert!(newer.iter().all(|p| p["t_ms"].as_u64() > Some(last)), "{newer:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no activity in the series: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_can_be_turned_off() {
    init_logging();
    let mut c = TestCluster::configure(1, |cfg| cfg.console = Some(false));
    c.start(0).await;
    c.leader(T).await;
    let a = c.configs[0].api_addr.clone();
    let api = Api::new();
    for path in ["/console", "/console/", "/console/app.js", "/console/api/whoami", "/console/api/cluster"] {
        assert_eq!(api.get(&a, path).await.0, 404, "{path}");
    }
    assert_eq!(api.get(&a, "/status").await.0, 200);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_takes_the_apis_users() {
    init_logging();
    let dir = tempfile::tempdir().expect("tmp");
    let users = dir.path().join("users.json");
    std::fs::write(
        &users,
        r#"[{"username": "admin", "password": "pw", "perms": ["all"]},
            {"username": "reader", "password": "rd", "perms": ["query"]}]"#,
    )
    .expect("users file");
    let mut c = TestCluster::configure(1, move |cfg| cfg.auth_file = Some(users.clone()));
    c.start(0).await;
    c.leader(T).await;
    let a = c.configs[0].api_addr.clone();
    let api = Api::new();
    let get = |path: &'static str, user: Option<(&'static str, &'static str)>, script: bool| {
        let mut r = api.http.get(format!("http://{a}{path}"));
        if let Some((u, p)) = user {
            r = r.basic_auth(u, Some(p));
        }
        if script {
            r = r.header("x-requested-with", "hiqlite-console");
        }
        async move {
            let r = r.send().await.expect("send");
            let challenge = r.headers().contains_key("www-authenticate");
            (r.status().as_u16(), challenge, r.text().await.expect("text"))
        }
    };
    // The pages are open: they hold no data.
    assert_eq!(get("/console/", None, false).await.0, 200);
    // whoami: anyone (no user), a user and their permissions, or 401 for a wrong password.
    let (s, _, body) = get("/console/api/whoami", None, true).await;
    assert_eq!(s, 200);
    assert!(body.contains(r#""auth":true"#) && body.contains(r#""user":null"#), "{body}");
    let (s, _, body) = get("/console/api/whoami", Some(("reader", "rd")), true).await;
    assert_eq!(s, 200);
    assert!(body.contains(r#""user":"reader""#) && body.contains(r#""perms":["query"]"#), "{body}");
    // A script is not challenged (no browser prompt over the console's form); others are.
    assert_eq!(get("/console/api/whoami", Some(("reader", "nope")), true).await.0, 401);
    assert!(!get("/console/api/whoami", Some(("reader", "nope")), true).await.1);
    assert!(get("/console/api/whoami", Some(("reader", "nope")), false).await.1);
    // The cluster page needs `status`, as /status does.
    assert_eq!(get("/console/api/cluster", Some(("reader", "rd")), true).await.0, 401);
    assert_eq!(get("/console/api/series", None, true).await.0, 401);
    assert_eq!(get("/console/api/cluster", Some(("admin", "pw")), true).await.0, 200);
    assert_eq!(get("/console/api/series", Some(("admin", "pw")), true).await.0, 200);
    c.stop_all().await;
}
