//! The client API's cluster and maintenance endpoints, wire-compatible with rqlite:
//! `/status`, `/nodes`, `/leader`, `/readyz`, `/metrics`, `/remove`, `/db/backup`, `/db/load`;
//! and hiqlite's own `/snapshot`.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as J};

use super::api::{answer, bad, service_error, Api, Flags, RQLITE_VERSION};
use crate::command::{Command, ExecMode};
use crate::error::Error;
use crate::rqlite;
use crate::value::Statement;

pub(super) async fn status(State(api): State<Api>, Query(q): Query<HashMap<String, String>>) -> Response {
    use crate::rqlite::gotime;
    let st = api.node.status();
    let leader_api =
        st.leader.and_then(|l| st.members.get(&l)).map(|m| m.api_addr.clone()).unwrap_or_default();
    let since = api.started.0.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // hiqlite's own status, with rqlite's `node` fields beside it.
    let mut node = serde_json::to_value(&st).unwrap_or_else(|_| json!({}));
    if let Some(o) = node.as_object_mut() {
        o.insert(
            "start_time".into(),
            json!(gotime::rfc3339_utc(since.as_secs() as i64, since.subsec_nanos())),
        );
        o.insert("uptime".into(), json!(gotime::duration_string(api.started.1.elapsed())));
    }
    // The sections rqlite clients read (rqlite/rqlite `http/service.go`, `handleStatus`; the
    // store's `ready`): `build.version` is the rqlite API generation served.
    let body = json!({
        "build": {
            "version": RQLITE_VERSION,
            "hiqlite_version": env!("CARGO_PKG_VERSION"),
            "commit": "unknown",
            "branch": "unknown",
            "build_time": "unknown",
            "compiler": "rustc",
        },
        "runtime": {
            "GOARCH": go_arch(),
            "GOOS": std::env::consts::OS,
            "GOMAXPROCS": cpus,
            "numCPU": cpus,
            "numGoroutine": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
            "version": "rust",
        },
        "node": node,
        "store": {
            "ready": st.leader.is_some() && st.healthy,
            "node_id": st.id.to_string(),
            "addr": st.raft_addr,
            "raft": { "state": st.state, "term": st.term, "applied_index": st.applied_index, "last_log_index": st.last_log_index },
            "leader": { "node_id": st.leader.map(|l| l.to_string()).unwrap_or_default(),
                        "addr": st.leader.and_then(|l| st.members.get(&l)).map(|m| m.raft_addr.clone()).unwrap_or_default() },
        },
        "http": {
            "addr": st.api_addr,
            "bind_addr": st.api_addr,
            "auth": if api.users.is_some() { "enabled" } else { "disabled" },
            "redirect": leader_api,
        },
        "version": RQLITE_VERSION,
        // Fields of `node` at the top level too, for tools reading hiqlite's own status.
        "id": st.id, "state": st.state, "leader": st.leader, "term": st.term,
        "applied_index": st.applied_index, "last_log_index": st.last_log_index, "startup": st.startup,
        "healthy": st.healthy,
    });
    answer(body, Flags { q }.has("pretty"))
}

/// Go's name of this machine's architecture (`runtime.GOARCH`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub(super) async fn nodes(State(api): State<Api>, Query(q): Query<HashMap<String, String>>) -> Response {
    let flags = Flags { q };
    let list: Vec<(String, J)> = api
        .node
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

pub(super) async fn leader(State(api): State<Api>, Query(q): Query<HashMap<String, String>>) -> Response {
    let st = api.node.status();
    let Some(id) = st.leader else {
        return service_error(Error::NoLeader("leader not found".into()));
    };
    let m = st.members.get(&id);
    let body = json!({ "leader": {
        "id": id.to_string(),
        "addr": m.map(|m| m.raft_addr.clone()).unwrap_or_default(),
        "api_addr": m.map(|m| format!("{}://{}", api.node.scheme(), m.api_addr)).unwrap_or_default(),
        "voter": st.voters.contains(&id),
        "reachable": true,
        "leader": true,
    }});
    answer(body, Flags { q }.has("pretty"))
}

pub(super) async fn readyz(State(api): State<Api>) -> Response {
    let st = api.node.status();
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

pub(super) async fn backup(State(api): State<Api>, Query(q): Query<HashMap<String, String>>) -> Response {
    let node = &api.node;
    if q.get("fmt").map(String::as_str) == Some("sql") {
        // `tables=a,b` dumps only those tables (with their indexes and triggers).
        let tables: Option<Vec<String>> = q
            .get("tables")
            .map(|t| t.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
        return match node.dump_sql(tables.as_deref()) {
            Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
            Err(e) => service_error(e),
        };
    }
    let dir = node.config().data_dir.join("backups");
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

/// `POST /snapshot`: build a snapshot on this node now; answers 200 once it is built.
pub(super) async fn snapshot(State(api): State<Api>) -> Response {
    match api.node.snapshot().await {
        Ok(()) => answer(json!({}), false),
        Err(e) => service_error(e),
    }
}

pub(super) async fn metrics(State(api): State<Api>) -> Response {
    let st = api.node.status();
    let c = api.node.cache_stats();
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
    let text = api.metrics.render(&st, &cache);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `DELETE /remove` with `{"id": "2"}`: take a node out of the cluster.
pub(super) async fn remove(State(api): State<Api>, body: Bytes) -> Response {
    let v: J = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    let id = node_id_of(&v);
    let Some(id) = id else { return bad("body must be {\"id\": \"<node id>\"}") };
    match api.node.remove_node(id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => service_error(e),
    }
}

/// `POST /db/load`: a SQLite database file (replacing every table) or SQL text (a `.dump`),
/// applied through Raft as one transaction.
pub(super) async fn load(
    State(api): State<Api>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let node = &api.node;
    let flags = Flags { q };
    let is_file = body.starts_with(b"SQLite format 3\0");
    let stmts: Vec<Statement> = if is_file {
        let dir = node.config().data_dir.join("backups");
        let n =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = dir.join(format!("load-{n}.db"));
        let r = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, &body))
            .map_err(Error::from)
            .and_then(|()| node.load_statements(&path));
        let _ = std::fs::remove_file(&path);
        match r {
            Ok(v) => v,
            Err(e) => return bad(format!("not a usable SQLite database: {e}")),
        }
    } else {
        let Ok(text) = std::str::from_utf8(&body) else { return bad("SQL text must be valid UTF-8") };
        let sql = crate::sqlite::dump::strip_wrapper(text);
        if sql.trim().is_empty() {
            return bad("empty load request");
        }
        // A dump turns foreign keys off while it loads; here they are checked once, at the end.
        vec![Statement::from(format!("PRAGMA defer_foreign_keys=ON;\n{sql}"))]
    };
    let started = Instant::now();
    match node.write(Command::Execute { stmts, mode: ExecMode::Transaction, ts_ms: 0, seed: 0 }).await {
        Ok(resp) => match resp.results.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => answer(
                rqlite::envelope(vec![rqlite::error_result(e, flags.format())], flags.format(), 0.0),
                flags.has("pretty"),
            ),
            None => {
                let secs = started.elapsed().as_secs_f64();
                // SQL text is one execute in rqlite: it answers the counters its connection has
                // after the last statement; a database file answers `{}`.
                let result = match resp.results.last() {
                    Some(Ok(r)) if !is_file => rqlite::exec_result(r, flags.format(), secs, false),
                    _ => json!({}),
                };
                answer(rqlite::envelope(vec![result], flags.format(), secs), flags.has("pretty"))
            }
        },
        Err(e) => service_error(e),
    }
}

/// `POST /leader` (optionally `{"id": "2"}`): move leadership to another voter by having it
/// campaign now.
pub(super) async fn transfer_leader(State(api): State<Api>, body: Bytes) -> Response {
    let st = api.node.status();
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
    if !st.members.contains_key(&target) {
        return bad(format!("node {target} is not a member"));
    }
    if !st.voters.contains(&target) {
        return bad(format!("node {target} is not a voter"));
    }
    match api.node.step_down(target).await {
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
