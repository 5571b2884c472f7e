//! The client HTTP API, wire-compatible with rqlite: `/db/execute`, `/db/query`, `/db/request`,
//! `/db/backup`, `/status`, `/nodes`, `/leader`, `/readyz`. Flags are enabled by presence.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value as J};

use crate::consistency::CacheRead;
use crate::error::Error;
use crate::node::Node;
use crate::raft::{Command, ExecMode};
use crate::rqlite::{self, Format, Level};
use crate::value::Statement;

/// Version reported in `X-RQLITE-VERSION`: the rqlite API generation this server speaks.
const RQLITE_VERSION: &str = "v8.0.0-hiqlite";

pub(crate) fn router(node: Node) -> Router {
    let limit = node.inner.config.max_body_bytes;
    Router::new()
        .route("/db/execute", post(execute))
        .route("/db/query", get(query).post(query))
        .route("/db/request", post(request))
        .route("/db/migrate", post(migrate))
        .route("/db/backup", get(backup))
        .route("/db/load", post(load))
        .route("/status", get(status))
        .route("/nodes", get(nodes))
        .route("/leader", get(leader).post(transfer_leader))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/remove", axum::routing::delete(remove))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint\n")
        })
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert("X-RQLITE-VERSION", HeaderValue::from_static(RQLITE_VERSION));
            r
        }))
        .layer(axum::middleware::from_fn_with_state(node.clone(), authenticate))
        .layer(axum::middleware::from_fn_with_state(node.clone(), count_requests))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(node)
}

/// Basic auth (when a users file is configured): 401 for wrong or missing credentials and for
/// users without the endpoint's permission. `/db/request` writes also need `execute`, checked by
/// the handler.
async fn authenticate(
    State(node): State<Node>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(users) = &node.inner.users {
        let authz = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(perm) = super::auth::required(req.method(), req.uri().path()) {
            if let super::auth::Verdict::Denied(why) = users.check(authz.as_deref(), perm) {
                return unauthorized(why);
            }
        }
        req.extensions_mut().insert(Credentials(authz));
    }
    next.run(req).await
}

/// The request's `Authorization` header, for handlers that check a second permission.
#[derive(Clone)]
struct Credentials(Option<String>);

fn unauthorized(why: String) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": why }))).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"hiqlite\""));
    r
}

async fn count_requests(
    State(node): State<Node>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let ep = super::metrics::endpoint(req.uri().path());
    let t = Instant::now();
    let r = next.run(req).await;
    node.inner.api_metrics.record(ep, r.status().as_u16(), t.elapsed().as_secs_f64());
    r
}

/// Query-string flags.
struct Flags {
    q: HashMap<String, String>,
}

impl Flags {
    fn has(&self, k: &str) -> bool {
        self.q.get(k).is_some_and(|v| v != "false")
    }
    fn format(&self) -> Format {
        Format {
            associative: self.has("associative"),
            blob_array: self.has("blob_array"),
            timings: self.has("timings"),
            hiqlite_errors: self.has("hiqlite_errors"),
        }
    }
    fn level(&self) -> Result<Level, Response> {
        Level::parse(self.q.get("level").map(String::as_str)).map_err(bad)
    }
    fn timeout(&self) -> Result<Option<Duration>, Response> {
        match self.q.get("timeout").or_else(|| self.q.get("db_timeout")) {
            None => Ok(None),
            Some(t) => rqlite::parse_duration(t).map(Some).ok_or_else(|| bad(format!("invalid timeout {t}"))),
        }
    }
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": msg.into() }))).into_response()
}

fn service_error(e: Error) -> Response {
    let code = match e {
        Error::NoLeader(_) | Error::NotLeader { .. } | Error::Unreachable(_) | Error::ShutDown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::Timeout(_) | Error::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
        Error::InvalidRequest(_) | Error::Decode(_) => StatusCode::BAD_REQUEST,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // `hiqlite_error` carries the exact error for hiqlite's own remote client; rqlite clients
    // read `error` and ignore it.
    let exact = serde_json::to_value(&e).unwrap_or(J::Null);
    (code, axum::Json(json!({ "error": e.to_string(), "hiqlite_error": exact }))).into_response()
}

fn answer(body: J, pretty: bool) -> Response {
    let text = if pretty { serde_json::to_string_pretty(&body) } else { serde_json::to_string(&body) };
    match text {
        Ok(t) => ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], t).into_response(),
        Err(e) => service_error(Error::Storage(e.to_string())),
    }
}

/// The flags and statements of a data request (the common start of the data handlers).
fn parse_request(
    q: HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Flags, Vec<Statement>), Response> {
    Ok((Flags { q }, statements(headers, body)?))
}

fn statements(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Statement>, Response> {
    let plain = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    rqlite::parse_statements(body, plain).map_err(bad)
}

/// With `redirect`, a follower answers 301 pointing at the leader's API instead of forwarding.
fn redirect_if_asked(node: &Node, flags: &Flags, uri: &axum::http::Uri) -> Option<Response> {
    if !flags.has("redirect") || node.is_leader() {
        return None;
    }
    let Some(api) = node.leader().and_then(|id| node.leader_api_addr(id)) else {
        return Some(service_error(Error::NoLeader("leader not found".into())));
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}://{api}{path}", node.inner.peers.scheme());
    let mut r = (StatusCode::MOVED_PERMANENTLY, format!("<a href=\"{location}\">Moved Permanently</a>.\n"))
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Some(r)
}

async fn with_timeout<T>(
    t: Option<Duration>,
    f: impl std::future::Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    match t {
        None => f.await,
        Some(d) => tokio::time::timeout(d, f)
            .await
            .map_err(|_| Error::Timeout(format!("request took longer than {d:?}")))?,
    }
}

async fn run_writes(node: &Node, stmts: Vec<Statement>, flags: &Flags, request: bool) -> Response {
    let f = flags.format();
    let started = Instant::now();
    let timeout = match flags.timeout() {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mode = if flags.has("transaction") { ExecMode::Transaction } else { ExecMode::Independent };
    let n = stmts.len();
    let cmd = Command::Execute { stmts, mode, ts_ms: 0, seed: 0 };
    if flags.has("queue") {
        // Queued writes: answered with a sequence number at once; `wait` waits for the write.
        let seq = node.inner.queue_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let n2 = node.clone();
        let job = tokio::spawn(async move { n2.write(cmd).await });
        if flags.has("wait") {
            let limit = timeout.unwrap_or(Duration::from_secs(30));
            match tokio::time::timeout(limit, job).await {
                Err(_) => {
                    return (
                        StatusCode::REQUEST_TIMEOUT,
                        axum::Json(json!({ "error": "timeout waiting for queued writes" })),
                    )
                        .into_response()
                }
                Ok(Err(e)) => return service_error(Error::Storage(e.to_string())),
                Ok(Ok(Err(e))) => return service_error(e),
                Ok(Ok(Ok(_))) => {}
            }
        }
        let mut body = rqlite::envelope(Vec::new(), f, started.elapsed().as_secs_f64());
        body["sequence_number"] = json!(seq);
        return answer(body, flags.has("pretty"));
    }
    let r = with_timeout(timeout, node.write(cmd)).await;
    match r {
        Ok(resp) => {
            let secs = started.elapsed().as_secs_f64();
            let each = secs / n.max(1) as f64;
            let results = resp
                .results
                .iter()
                .map(|r| match r {
                    Ok(x) => rqlite::exec_result(x, f, each, request),
                    Err(e) => rqlite::error_result(e, f),
                })
                .collect();
            let mut body = rqlite::envelope(results, f, secs);
            if flags.has("raft_index") {
                body["raft_index"] = json!(resp.log_index);
            }
            answer(body, flags.has("pretty"))
        }
        Err(e) => service_error(e),
    }
}

async fn run_reads(node: &Node, stmts: Vec<Statement>, flags: &Flags, level: Level) -> Response {
    let f = flags.format();
    let Some(consistency) = level.consistency() else {
        // `strong`, through the log: the answer reflects every write committed before it.
        return run_writes(node, stmts, flags, true).await;
    };
    let timeout = match flags.timeout() {
        Ok(t) => t,
        Err(r) => return r,
    };
    if level == Level::None {
        if let Some(fr) = flags.q.get("freshness") {
            let Some(limit) = rqlite::parse_duration(fr) else {
                return bad(format!("invalid freshness {fr}"));
            };
            let mut fresh =
                node.ms_since_leader_contact().is_some_and(|ms| u128::from(ms) <= limit.as_millis());
            if flags.has("freshness_strict") {
                // Strict: the data must also be current, i.e. everything received is applied.
                let st = node.status();
                fresh &= st.applied_index >= st.last_log_index;
            }
            if !fresh {
                let results = stmts.iter().map(|_| json!({ "error": "stale read" })).collect();
                return answer(rqlite::envelope(results, f, 0.0), flags.has("pretty"));
            }
        }
    }
    // `cache` (default TTL) or `cache_ttl=<duration>` reads through the query cache.
    let cache = match rqlite::parse_cache(flags.has("cache"), flags.q.get("cache_ttl").map(String::as_str)) {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let started = Instant::now();
    let mut results = Vec::with_capacity(stmts.len());
    for s in stmts {
        let t = Instant::now();
        let read = async {
            match cache {
                CacheRead::Bypass => node.query(&s.sql, &s.params, consistency).await,
                CacheRead::DefaultTtl => node.query_cached(&s.sql, &s.params, consistency, None).await,
                CacheRead::Ttl(ttl) => node.query_cached(&s.sql, &s.params, consistency, Some(ttl)).await,
            }
        };
        match with_timeout(timeout, read).await {
            Ok(rows) => results.push(rqlite::query_result(&rows, f, t.elapsed().as_secs_f64())),
            Err(e @ Error::Sql { .. }) => results.push(rqlite::error_result(&e, f)),
            Err(e) => return service_error(e),
        }
    }
    answer(rqlite::envelope(results, f, started.elapsed().as_secs_f64()), flags.has("pretty"))
}

async fn execute(
    State(node): State<Node>,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (flags, stmts) = match parse_request(q, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(r) = redirect_if_asked(&node, &flags, &uri) {
        return r;
    }
    if stmts.is_empty() {
        return answer(rqlite::envelope(Vec::new(), flags.format(), 0.0), flags.has("pretty"));
    }
    run_writes(&node, stmts, &flags, false).await
}

/// hiqlite's own endpoint: apply ordered migrations once, cluster-wide (`Client::migrate` of a
/// remote client). Body: `[{"id": 1, "name": "init", "sql": "CREATE TABLE ..."}]`; answer:
/// `{"applied": n}`.
async fn migrate(
    State(node): State<Node>,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let flags = Flags { q };
    let migrations: Vec<crate::raft::Migration> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return bad(format!("body must be a JSON array of {{id, name, sql}} migrations: {e}")),
    };
    if let Some(r) = redirect_if_asked(&node, &flags, &uri) {
        return r;
    }
    match node.write(Command::Migrate { migrations, ts_ms: 0, seed: 0 }).await {
        Ok(resp) => {
            let mut applied = 0;
            for r in resp.results {
                match r {
                    Ok(x) => applied += usize::from(x.rows_affected > 0),
                    Err(e) => {
                        return (
                            StatusCode::BAD_REQUEST,
                            axum::Json(rqlite::error_result(&e, flags.format())),
                        )
                            .into_response()
                    }
                }
            }
            answer(json!({ "applied": applied }), flags.has("pretty"))
        }
        Err(e) => service_error(e),
    }
}

async fn query(
    State(node): State<Node>,
    method: Method,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flags = Flags { q };
    let stmts = if method == Method::GET {
        match flags.q.get("q") {
            Some(sql) => vec![Statement::from(sql.as_str())],
            None => return bad("missing q parameter with the SQL to run"),
        }
    } else {
        match statements(&headers, &body) {
            Ok(s) => s,
            Err(r) => return r,
        }
    };
    let level = match flags.level() {
        Ok(l) => l,
        Err(r) => return r,
    };
    if level == Level::Strong && !stmts.iter().all(|s| node.is_read_only(&s.sql)) {
        // Strong reads go through the log; only queries may travel that way from /db/query.
        return bad("/db/query runs read-only statements; send writes to /db/execute");
    }
    if level != Level::None {
        if let Some(r) = redirect_if_asked(&node, &flags, &uri) {
            return r;
        }
    }
    run_reads(&node, stmts, &flags, level).await
}

async fn request(
    State(node): State<Node>,
    creds: Option<axum::Extension<Credentials>>,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (flags, stmts) = match parse_request(q, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let level = match flags.level() {
        Ok(l) => l,
        Err(r) => return r,
    };
    // rqlite's unified endpoint: read-only requests are queries, anything else goes through Raft.
    let read_only = stmts.iter().all(|s| node.is_read_only(&s.sql));
    if let (false, Some(users)) = (read_only, &node.inner.users) {
        let authz = creds.and_then(|c| c.0 .0.clone());
        if let super::auth::Verdict::Denied(why) = users.check(authz.as_deref(), "execute") {
            return unauthorized(why);
        }
    }
    if !read_only || level != Level::None {
        if let Some(r) = redirect_if_asked(&node, &flags, &uri) {
            return r;
        }
    }
    if stmts.is_empty() {
        return answer(rqlite::envelope(Vec::new(), flags.format(), 0.0), flags.has("pretty"));
    }
    if read_only {
        run_reads(&node, stmts, &flags, level).await
    } else {
        run_writes(&node, stmts, &flags, true).await
    }
}

async fn status(State(node): State<Node>, Query(q): Query<HashMap<String, String>>) -> Response {
    let st = node.status();
    let body = json!({
        "node": st,
        "store": {
            "node_id": st.id.to_string(),
            "raft": { "state": st.state, "term": st.term, "applied_index": st.applied_index, "last_log_index": st.last_log_index },
            "leader": { "node_id": st.leader.map(|l| l.to_string()).unwrap_or_default(),
                        "addr": st.leader.and_then(|l| st.members.get(&l)).map(|m| m.raft_addr.clone()).unwrap_or_default() },
        },
        "http": { "bind_addr": st.api_addr },
        "version": RQLITE_VERSION,
        // Fields of `node` at the top level too, for tools reading hiqlite's own status.
        "id": st.id, "state": st.state, "leader": st.leader, "term": st.term,
        "applied_index": st.applied_index, "last_log_index": st.last_log_index, "startup": st.startup,
        "healthy": st.healthy,
    });
    answer(body, Flags { q }.has("pretty"))
}

async fn nodes(State(node): State<Node>, Query(q): Query<HashMap<String, String>>) -> Response {
    let flags = Flags { q };
    let list: Vec<(String, J)> = node
        .nodes()
        .await
        .into_iter()
        .map(|n| {
            let mut o = json!({
                "id": n.id.to_string(),
                "api_addr": n.api_addr,
                "addr": n.raft_addr,
                "voter": n.voter,
                "reachable": n.reachable,
                "leader": n.leader,
            });
            if let Some(t) = n.rtt {
                o["time"] = json!(t.as_secs_f64());
            }
            if n.error.is_some() {
                o["error"] = json!("node unreachable");
            }
            (n.id.to_string(), o)
        })
        .collect();
    let body = if flags.q.get("ver").map(String::as_str) == Some("2") {
        json!({ "nodes": list.into_iter().map(|(_, o)| o).collect::<Vec<_>>() })
    } else {
        J::Object(list.into_iter().collect())
    };
    answer(body, flags.has("pretty"))
}

async fn leader(State(node): State<Node>, Query(q): Query<HashMap<String, String>>) -> Response {
    let st = node.status();
    let Some(id) = st.leader else {
        return service_error(Error::NoLeader("leader not found".into()));
    };
    let m = st.members.get(&id);
    let body = json!({ "leader": {
        "id": id.to_string(),
        "addr": m.map(|m| m.raft_addr.clone()).unwrap_or_default(),
        "api_addr": m.map(|m| format!("{}://{}", node.inner.peers.scheme(), m.api_addr)).unwrap_or_default(),
        "voter": st.voters.contains(&id),
        "reachable": true,
        "leader": true,
    }});
    answer(body, Flags { q }.has("pretty"))
}

async fn readyz(State(node): State<Node>) -> Response {
    let st = node.status();
    let leader = st.leader.is_some();
    let body = format!(
        "[+]node ok\n{}\n{}\n",
        if leader { "[+]leader ok" } else { "[-]leader not ok" },
        if st.healthy {
            "[+]store ok".to_string()
        } else {
            format!("[-]store not ok: {}", st.error.unwrap_or_default())
        }
    );
    let code = if leader && st.healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, body).into_response()
}

async fn backup(State(node): State<Node>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("fmt").map(String::as_str) == Some("sql") {
        return match node.inner.reads.with(crate::sqlite::dump::dump) {
            Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
            Err(e) => service_error(e),
        };
    }
    let dir = node.inner.config.data_dir.join("backups");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return service_error(Error::Storage(e.to_string()));
    }
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = dir.join(format!("backup-{n}.db"));
    let r = node.backup(&path).await;
    let opened = match r {
        Ok(index) => tokio::fs::File::open(&path).await.map(|f| (f, index)).map_err(Error::from),
        Err(e) => Err(e),
    };
    // The open file stays readable after the name is gone: stream it instead of holding a copy
    // of the whole database in memory, and leave nothing behind whatever the client does.
    let _ = tokio::fs::remove_file(&path).await;
    match opened {
        Ok((file, index)) => {
            let len = file.metadata().await.map(|m| m.len()).ok();
            let body =
                axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024));
            let mut resp = (StatusCode::OK, body).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            if let Some(l) = len {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(l));
            }
            if let Some(i) = index.and_then(|i| HeaderValue::from_str(&i.to_string()).ok()) {
                h.insert("x-hiqlite-log-index", i);
            }
            resp
        }
        Err(e) => service_error(e),
    }
}

async fn metrics(State(node): State<Node>) -> Response {
    let st = node.status();
    let c = node.cache_stats();
    let cache = [
        ("hiqlite_cache_hits_total", "", c.hits as f64),
        ("hiqlite_cache_misses_total", "", c.misses as f64),
        ("hiqlite_cache_evictions_total", "{reason=\"size\"}", c.evictions_size as f64),
        ("hiqlite_cache_evictions_total", "{reason=\"count\"}", c.evictions_count as f64),
        ("hiqlite_cache_evictions_total", "{reason=\"ttl\"}", c.evictions_ttl as f64),
        ("hiqlite_cache_invalidations_total", "", c.invalidations as f64),
        ("hiqlite_cache_entries", "", c.entries as f64),
        ("hiqlite_cache_bytes", "", c.bytes as f64),
    ];
    let text = node.inner.api_metrics.render(&st, &cache);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `DELETE /remove` with `{"id": "2"}`: take a node out of the cluster.
async fn remove(State(node): State<Node>, body: Bytes) -> Response {
    let v: J = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    let id = node_id_of(&v);
    let Some(id) = id else { return bad("body must be {\"id\": \"<node id>\"}") };
    let n2 = node.clone();
    match node.via_leader("/cluster/remove", &id, || n2.remove_member(id)).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => service_error(e),
    }
}

/// `POST /db/load`: a SQLite database file (replacing every table) or SQL text (a `.dump`),
/// applied through Raft as one transaction.
async fn load(State(node): State<Node>, Query(q): Query<HashMap<String, String>>, body: Bytes) -> Response {
    let flags = Flags { q };
    let stmts: Vec<Statement> = if body.starts_with(b"SQLite format 3\0") {
        let dir = node.inner.config.data_dir.join("backups");
        let n =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = dir.join(format!("load-{n}.db"));
        let r = (|| -> crate::Result<Vec<String>> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, &body)?;
            let src =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            let mut all = node.inner.reads.with(|c| {
                let mut st = c.prepare(
                    "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') \
                     AND name NOT LIKE '_hiqlite_%' AND name NOT LIKE 'sqlite_%'",
                )?;
                let drops = st
                    .query_map([], |r| {
                        let (kind, name): (String, String) = (r.get(0)?, r.get(1)?);
                        Ok(format!(
                            "DROP {} IF EXISTS \"{}\";",
                            kind.to_uppercase(),
                            name.replace('"', "\"\"")
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(drops)
            })?;
            all.extend(crate::sqlite::dump::statements(&src)?);
            Ok(all)
        })();
        let _ = std::fs::remove_file(&path);
        match r {
            Ok(v) => v.into_iter().map(Statement::from).collect(),
            Err(e) => return bad(format!("not a usable SQLite database: {e}")),
        }
    } else {
        let Ok(text) = std::str::from_utf8(&body) else { return bad("SQL text must be valid UTF-8") };
        let sql = crate::sqlite::dump::strip_wrapper(text);
        if sql.trim().is_empty() {
            return bad("empty load request");
        }
        vec![Statement::from(sql)]
    };
    let started = Instant::now();
    match node.write(Command::Execute { stmts, mode: ExecMode::Transaction, ts_ms: 0, seed: 0 }).await {
        Ok(resp) => match resp.results.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => answer(
                rqlite::envelope(vec![rqlite::error_result(e, flags.format())], flags.format(), 0.0),
                flags.has("pretty"),
            ),
            None => answer(
                rqlite::envelope(vec![json!({})], flags.format(), started.elapsed().as_secs_f64()),
                flags.has("pretty"),
            ),
        },
        Err(e) => service_error(e),
    }
}

/// `POST /leader` (optionally `{"id": "2"}`): move leadership to another voter by having it
/// campaign now.
async fn transfer_leader(State(node): State<Node>, body: Bytes) -> Response {
    let st = node.status();
    let wanted = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<J>(&body) {
            Ok(v) => node_id_of(&v),
            Err(e) => return bad(format!("invalid JSON: {e}")),
        }
    };
    let Some(target) = wanted.or_else(|| st.voters.iter().copied().find(|v| Some(*v) != st.leader)) else {
        return bad("no other voter to hand leadership to");
    };
    let Some(m) = st.members.get(&target) else { return bad(format!("node {target} is not a member")) };
    if !st.voters.contains(&target) {
        return bad(format!("node {target} is not a voter"));
    }
    match node.step_down(target, &m.raft_addr).await {
        Ok(()) => answer(json!({}), false),
        Err(e) => service_error(e),
    }
}

/// The `id` of a `{"id": "2"}` (or `{"id": 2}`) body: rqlite writes node ids as strings.
fn node_id_of(v: &J) -> Option<u64> {
    match &v["id"] {
        J::String(s) => s.parse::<u64>().ok(),
        J::Number(n) => n.as_u64(),
        _ => None,
    }
}
