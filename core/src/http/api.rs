//! The client HTTP API (JSON, rqlite-shaped): `/db/execute`, `/db/query`, `/status`, `/readyz`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value as Json_};

use crate::error::Error;
use crate::node::{Consistency, Node};
use crate::raft::{Command, ExecMode};
use crate::value::{Params, Statement, Value};

pub(crate) fn router(node: Node) -> Router {
    let limit = node.inner.config.max_body_bytes;
    Router::new()
        .route("/db/execute", post(execute))
        .route("/db/query", get(query).post(query))
        .route("/db/backup", get(backup))
        .route("/status", get(status))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(node)
}

fn json_to_value(v: &Json_) -> Result<Value, String> {
    Ok(match v {
        Json_::Null => Value::Null,
        Json_::Bool(b) => Value::Integer(i64::from(*b)),
        Json_::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().ok_or_else(|| format!("number {n} out of range"))?),
        },
        Json_::String(s) => Value::Text(s.clone()),
        Json_::Array(a) => Value::Blob(
            a.iter()
                .map(|x| x.as_u64().filter(|b| *b < 256).map(|b| b as u8))
                .collect::<Option<Vec<u8>>>()
                .ok_or("array parameters must be byte arrays (0..255)")?,
        ),
        Json_::Object(_) => {
            return Err("object parameters are only allowed as the named-parameter map".into())
        }
    })
}

/// Parse rqlite's statement list: `["sql", ["sql", p1, p2], ["sql", {"name": v}]]`.
pub(crate) fn parse_statements(body: &[u8]) -> Result<Vec<Statement>, String> {
    let v: Json_ = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let Json_::Array(items) = v else {
        return Err("body must be a JSON array of statements".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Json_::String(sql) => out.push(Statement::from(sql)),
            Json_::Array(parts) => {
                let mut it = parts.into_iter();
                let Some(Json_::String(sql)) = it.next() else {
                    return Err("a parameterized statement must start with its SQL string".into());
                };
                let rest: Vec<Json_> = it.collect();
                let params = match rest.as_slice() {
                    [] => Params::None,
                    [Json_::Object(map)] => Params::Named(
                        map.iter()
                            .map(|(k, v)| Ok((k.clone(), json_to_value(v)?)))
                            .collect::<Result<_, String>>()?,
                    ),
                    vals => {
                        Params::Positional(vals.iter().map(json_to_value).collect::<Result<_, String>>()?)
                    }
                };
                out.push(Statement { sql, params });
            }
            other => return Err(format!("unexpected statement {other}")),
        }
    }
    out.retain(|s| !s.sql.trim().is_empty());
    Ok(out)
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg.into() }))).into_response()
}

fn service_error(e: Error) -> Response {
    let code = match e {
        Error::NoLeader(_) | Error::NotLeader { .. } | Error::Unreachable(_) | Error::ShutDown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::Timeout(_) | Error::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, Json(json!({ "error": e.to_string() }))).into_response()
}

async fn execute(
    State(node): State<Node>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let stmts = match parse_statements(&body) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    if stmts.is_empty() {
        return Json(json!({ "results": [] })).into_response();
    }
    let mode = if q.contains_key("transaction") { ExecMode::Transaction } else { ExecMode::Independent };
    let cmd = Command::Execute { stmts, mode, ts_ms: 0, seed: 0 };
    match node.write(cmd).await {
        Ok(resp) => {
            let results: Vec<Json_> = resp
                .results
                .into_iter()
                .map(|r| match r {
                    Ok(x) => {
                        let mut o =
                            json!({ "last_insert_id": x.last_insert_id, "rows_affected": x.rows_affected });
                        if !x.rows.columns.is_empty() {
                            o["columns"] = json!(x.rows.columns);
                            o["types"] = json!(x.rows.types);
                            if !x.rows.rows.is_empty() {
                                o["values"] = rows_json(&x.rows.rows);
                            }
                        }
                        o
                    }
                    Err(e) => json!({ "error": sql_message(e) }),
                })
                .collect();
            Json(json!({ "results": results })).into_response()
        }
        Err(e) => service_error(e),
    }
}

fn sql_message(e: Error) -> String {
    match e {
        Error::Sql { message, .. } => message,
        other => other.to_string(),
    }
}

fn rows_json(rows: &[Vec<Value>]) -> Json_ {
    Json_::Array(rows.iter().map(|r| Json_::Array(r.iter().map(Value::to_json).collect())).collect())
}

async fn query(
    State(node): State<Node>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let stmts = if method == Method::GET {
        match q.get("q") {
            Some(sql) => vec![Statement::from(sql.as_str())],
            None => return bad("missing q parameter"),
        }
    } else {
        match parse_statements(&body) {
            Ok(s) => s,
            Err(e) => return bad(e),
        }
    };
    let consistency = match q.get("level").map(String::as_str) {
        None | Some("none") => Consistency::Local,
        Some("weak") => Consistency::Leader,
        Some("linearizable") | Some("strong") => Consistency::Linearizable,
        Some(other) => return bad(format!("unknown level {other}")),
    };
    let mut results = Vec::with_capacity(stmts.len());
    for s in stmts {
        match node.query(&s.sql, &s.params, consistency).await {
            Ok(rows) => {
                let mut o = json!({ "columns": rows.columns, "types": rows.types });
                if !rows.rows.is_empty() {
                    o["values"] = rows_json(&rows.rows);
                }
                results.push(o);
            }
            Err(e @ Error::Sql { .. }) => results.push(json!({ "error": sql_message(e) })),
            Err(e) => return service_error(e),
        }
    }
    Json(json!({ "results": results })).into_response()
}

async fn status(State(node): State<Node>) -> Response {
    Json(node.status()).into_response()
}

async fn readyz(State(node): State<Node>) -> Response {
    if node.leader().is_some() {
        (StatusCode::OK, "[+]node ok\n[+]leader ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "[+]node ok\n[-]leader not ok\n").into_response()
    }
}

async fn backup(State(node): State<Node>) -> Response {
    let dir = node.inner.config.data_dir.join("backups");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return service_error(Error::Storage(e.to_string()));
    }
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = dir.join(format!("backup-{n}.db"));
    let r = node.backup(&path).await;
    let out = match r {
        Ok(index) => match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let mut resp = (StatusCode::OK, bytes).into_response();
                let h = resp.headers_mut();
                h.insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/octet-stream"),
                );
                if let Some(i) = index.and_then(|i| axum::http::HeaderValue::from_str(&i.to_string()).ok()) {
                    h.insert("x-hiqlite-log-index", i);
                }
                resp
            }
            Err(e) => service_error(Error::Storage(e.to_string())),
        },
        Err(e) => service_error(e),
    };
    let _ = tokio::fs::remove_file(&path).await;
    out
}
