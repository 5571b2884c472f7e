//! hiqlite's own endpoints for interactive transactions (rqlite has none): `POST /db/tx`
//! begins one and answers `{"id": "<hex>"}`; `POST /db/tx/{id}` runs statements in it (body and
//! answer as `/db/request`); `POST /db/tx/{id}/commit` and `/rollback` end it. The node that
//! receives them forwards to the leader, which holds the transaction.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use super::api::{answer, bad, parse_request, service_error, Api, Flags};
use crate::error::Error;
use crate::rqlite;

fn tx_id(s: &str) -> Result<u64, Response> {
    u64::from_str_radix(s, 16).map_err(|_| bad(format!("{s} is not a transaction id")))
}

/// `POST /db/tx`: begin.
pub(super) async fn begin(State(api): State<Api>, Query(q): Query<HashMap<String, String>>) -> Response {
    match api.node.tx_begin().await {
        Ok(id) => answer(json!({ "id": format!("{id:x}") }), Flags { q }.has("pretty")),
        Err(e) => service_error(e),
    }
}

/// `POST /db/tx/{id}`: run statements, in order, in the transaction.
pub(super) async fn exec(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = match tx_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let (flags, stmts) = match parse_request(q, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let f = flags.format();
    let started = Instant::now();
    let mut results = Vec::with_capacity(stmts.len());
    for s in stmts {
        let t = Instant::now();
        match api.node.tx_exec(id, s).await {
            Ok(x) => results.push(rqlite::exec_result(&x, f, t.elapsed().as_secs_f64(), true)),
            // A failed statement leaves the transaction open, as in SQLite.
            Err(e @ Error::Sql { .. }) => results.push(rqlite::error_result(&e, f)),
            Err(e) => return service_error(e),
        }
    }
    answer(rqlite::envelope(results, f, started.elapsed().as_secs_f64()), flags.has("pretty"))
}

/// `POST /db/tx/{id}/commit` and `/db/tx/{id}/rollback`.
pub(super) async fn end(
    State(api): State<Api>,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let id = match tx_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let r = match action.as_str() {
        "commit" => api.node.tx_commit(id).await,
        "rollback" => api.node.tx_rollback(id).await,
        other => return bad(format!("unknown transaction action {other}: use commit or rollback")),
    };
    match r {
        Ok(()) => answer(json!({}), Flags { q }.has("pretty")),
        Err(e) => service_error(e),
    }
}
