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

use super::admin;
use super::session::{has_tx_control, run_session};
use crate::command::{Command, ExecMode};
use crate::consistency::CacheRead;
use crate::error::Error;
use crate::node::Node;
use crate::rqlite::{self, Format, Level};
use crate::value::Statement;

/// What the client API's handlers share: the node, and state only the API needs.
pub(crate) struct ApiState {
    pub(super) node: Node,
    /// Users of the client API when Basic auth is on.
    pub(super) users: Option<super::auth::Users>,
    /// Request counters for `/metrics`.
    pub(super) metrics: super::metrics::ApiMetrics,
    /// Queued writes (`/db/execute?queue`).
    queue: super::queue::WriteQueue,
    /// When the API started serving (`/status`'s `node.start_time` and `uptime`).
    pub(super) started: (std::time::SystemTime, Instant),
}

impl ApiState {
    pub(crate) fn new(node: Node, users: Option<super::auth::Users>) -> Self {
        let queue = super::queue::WriteQueue::new(node.clone());
        let started = (std::time::SystemTime::now(), Instant::now());
        ApiState { node, users, metrics: Default::default(), queue, started }
    }
}

/// The handlers' state.
pub(super) type Api = std::sync::Arc<ApiState>;

/// Version reported in `X-RQLITE-VERSION`: the rqlite API generation this server speaks.
pub(super) const RQLITE_VERSION: &str = "v8.0.0-hiqlite";

/// The client API's routes; with `console`, the web console's too.
pub(crate) fn router(state: ApiState, console: bool) -> Router {
    let limit = state.node.config().max_body_bytes;
    let api: Api = std::sync::Arc::new(state);
    let routes = Router::new()
        .route("/db/execute", post(execute))
        .route("/db/query", get(query).post(query))
        .route("/db/request", post(request))
        .route("/db/migrate", post(migrate))
        .route("/db/tx", post(super::tx::begin))
        .route("/db/tx/{id}", post(super::tx::exec))
        .route("/db/tx/{id}/{action}", post(super::tx::end))
        .route("/db/backup", get(admin::backup))
        .route("/snapshot", post(admin::snapshot))
        .route("/db/load", post(admin::load))
        .route("/status", get(admin::status))
        .route("/nodes", get(admin::nodes))
        .route("/leader", get(admin::leader).post(admin::transfer_leader))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(admin::metrics))
        .route("/remove", axum::routing::delete(admin::remove))
        .route(
            "/kv/{ns}/{*key}",
            get(super::coord::kv_get)
                .put(super::coord::kv_put)
                .delete(super::coord::kv_delete)
                .post(super::coord::kv_replace),
        )
        .route("/kv/{ns}", axum::routing::put(super::coord::kv_limit))
        .route("/counter/{name}", get(super::coord::counter_get).post(super::coord::counter_post))
        .route("/lock/{name}", post(super::coord::lock_post).delete(super::coord::lock_delete))
        .route("/lock/{name}/renew", post(super::coord::lock_renew))
        .route("/notify/{channel}", post(super::notify::notify_post))
        .route("/listen/{channel}", get(super::notify::listen_get))
        .route("/db/changes", get(super::changes::changes_get))
        .route("/db/watch", get(super::changes::watch_get));
    let routes = if console { routes.merge(super::console::router()) } else { routes };
    routes
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint\n")
        })
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert("X-RQLITE-VERSION", HeaderValue::from_static(RQLITE_VERSION));
            r
        }))
        .layer(axum::middleware::from_fn_with_state(api.clone(), authenticate))
        .layer(axum::middleware::from_fn_with_state(api.clone(), count_requests))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}

/// Basic auth (when a users file is configured): 401 for wrong or missing credentials and for
/// users without the endpoint's permission. `/db/request` writes also need `execute`, checked by
/// the handler.
async fn authenticate(
    State(api): State<Api>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(users) = &api.users {
        let authz = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(perm) = super::auth::required(req.method(), req.uri().path()) {
            if let super::auth::Verdict::Denied(why) = users.check(authz.as_deref(), perm) {
                return unauthorized(why, req.headers());
            }
        }
        req.extensions_mut().insert(Credentials(authz));
    }
    next.run(req).await
}

/// The request's `Authorization` header, for handlers that check a second permission.
#[derive(Clone)]
struct Credentials(Option<String>);

/// 401 with the reason. The `WWW-Authenticate` challenge is left out for scripts that say so
/// with `X-Requested-With` (the web console): browsers would answer it with their own login
/// prompt over the console's form.
pub(super) fn unauthorized(why: String, request: &HeaderMap) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": why }))).into_response();
    if !request.contains_key("x-requested-with") {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"hiqlite\""));
    }
    r
}

async fn count_requests(
    State(api): State<Api>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let ep = super::metrics::endpoint(req.uri().path());
    let t = Instant::now();
    let r = next.run(req).await;
    api.metrics.record(ep, r.status().as_u16(), t.elapsed().as_secs_f64());
    r
}

/// Query-string flags.
pub(super) struct Flags {
    pub(super) q: HashMap<String, String>,
}

impl Flags {
    pub(super) fn has(&self, k: &str) -> bool {
        self.q.get(k).is_some_and(|v| v != "false")
    }
    pub(super) fn format(&self) -> Format {
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

pub(super) fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": msg.into() }))).into_response()
}

pub(super) fn service_error(e: Error) -> Response {
    let code = match e {
        Error::NoLeader(_) | Error::NotLeader { .. } | Error::Unreachable(_) | Error::ShutDown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::Timeout(_) | Error::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
        Error::InvalidRequest(_) | Error::Decode(_) => StatusCode::BAD_REQUEST,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::CursorTooOld(_) => StatusCode::GONE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // `hiqlite_error` carries the exact error for hiqlite's own remote client; rqlite clients
    // read `error` and ignore it.
    let exact = serde_json::to_value(&e).unwrap_or(J::Null);
    (code, axum::Json(json!({ "error": e.to_string(), "hiqlite_error": exact }))).into_response()
}

pub(super) fn answer(body: J, pretty: bool) -> Response {
    let text = if pretty { serde_json::to_string_pretty(&body) } else { serde_json::to_string(&body) };
    match text {
        Ok(t) => ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], t).into_response(),
        Err(e) => service_error(Error::Storage(e.to_string())),
    }
}

/// The flags and statements of a data request (the common start of the data handlers).
pub(super) fn parse_request(
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
pub(super) fn redirect_if_asked(node: &Node, flags: &Flags, uri: &axum::http::Uri) -> Option<Response> {
    if !flags.has("redirect") || node.is_leader() {
        return None;
    }
    let Some(api) = node.leader().and_then(|id| node.member(id)).map(|m| m.api_addr) else {
        return Some(service_error(Error::NoLeader("leader not found".into())));
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}://{api}{path}", node.scheme());
    let mut r = (StatusCode::MOVED_PERMANENTLY, format!("<a href=\"{location}\">Moved Permanently</a>.\n"))
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Some(r)
}

pub(super) async fn with_timeout<T>(
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

async fn run_writes(api: &Api, stmts: Vec<Statement>, flags: &Flags, request: bool) -> Response {
    let node = &api.node;
    let f = flags.format();
    let started = Instant::now();
    let timeout = match flags.timeout() {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mode = if flags.has("transaction") { ExecMode::Transaction } else { ExecMode::Independent };
    if mode == ExecMode::Independent && has_tx_control(&stmts) {
        if flags.has("queue") {
            return bad("queued writes cannot hold BEGIN/COMMIT/ROLLBACK/SAVEPOINT; send them without queue");
        }
        return run_session(api, stmts, flags, request, timeout).await;
    }
    let n = stmts.len();
    let cmd = Command::Execute { stmts, mode, ts_ms: 0, seed: 0 };
    if flags.has("queue") {
        // Queued writes: answered with a sequence number at once; `wait` waits until this write
        // and every one queued before it are applied.
        let (seq, job) = match api.queue.push(cmd, flags.has("wait")) {
            Ok(x) => x,
            Err(e) => return service_error(e),
        };
        if let Some(job) = job {
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

async fn run_reads(api: &Api, stmts: Vec<Statement>, flags: &Flags, level: Level) -> Response {
    let node = &api.node;
    let f = flags.format();
    let Some(consistency) = level.consistency() else {
        // `strong`, through the log: the answer reflects every write committed before it.
        return run_writes(api, stmts, flags, true).await;
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
            let mut fresh = node.since_leader_contact().is_some_and(|d| d <= limit);
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
    State(api): State<Api>,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (flags, stmts) = match parse_request(q, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
        return r;
    }
    if stmts.is_empty() {
        return answer(rqlite::envelope(Vec::new(), flags.format(), 0.0), flags.has("pretty"));
    }
    run_writes(&api, stmts, &flags, false).await
}

/// hiqlite's own endpoint: apply ordered migrations once, cluster-wide (`Client::migrate` of a
/// remote client). Body: `[{"id": 1, "name": "init", "sql": "CREATE TABLE ..."}]`; answer:
/// `{"applied": n}`.
async fn migrate(
    State(api): State<Api>,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let flags = Flags { q };
    let migrations: Vec<crate::command::Migration> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return bad(format!("body must be a JSON array of {{id, name, sql}} migrations: {e}")),
    };
    if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
        return r;
    }
    match api.node.write(Command::Migrate { migrations, ts_ms: 0, seed: 0 }).await {
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
    State(api): State<Api>,
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
    if level == Level::Strong && !stmts.iter().all(|s| api.node.is_read_only(&s.sql)) {
        // Strong reads go through the log; only queries may travel that way from /db/query.
        return bad("/db/query runs read-only statements; send writes to /db/execute");
    }
    // Read-your-writes: `min_index=N` (a write's `raft_index`) waits until this node applied N.
    if let Some(v) = flags.q.get("min_index") {
        let Ok(index) = v.trim().parse::<u64>() else {
            return bad(format!("min_index={v} is not a log index"));
        };
        if let Err(e) = api.node.wait_applied(index).await {
            return service_error(e);
        }
    }
    if level != Level::None {
        if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
            return r;
        }
    }
    run_reads(&api, stmts, &flags, level).await
}

async fn request(
    State(api): State<Api>,
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
    // Transaction control prepares as read-only, but it must run on the writer.
    let read_only = !has_tx_control(&stmts) && stmts.iter().all(|s| api.node.is_read_only(&s.sql));
    if let (false, Some(users)) = (read_only, &api.users) {
        let authz = creds.and_then(|c| c.0 .0.clone());
        if let super::auth::Verdict::Denied(why) = users.check(authz.as_deref(), "execute") {
            return unauthorized(why, &headers);
        }
    }
    if !read_only || level != Level::None {
        if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
            return r;
        }
    }
    if stmts.is_empty() {
        return answer(rqlite::envelope(Vec::new(), flags.format(), 0.0), flags.has("pretty"));
    }
    if read_only {
        run_reads(&api, stmts, &flags, level).await
    } else {
        run_writes(&api, stmts, &flags, true).await
    }
}
