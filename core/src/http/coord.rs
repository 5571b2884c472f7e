//! hiqlite's coordination endpoints (not in rqlite's API):
//! - `PUT /kv/{ns}/{key}?ttl=30s` (body: the value), `GET /kv/{ns}/{key}` (the value, 404 when
//!   absent; `level=linearizable` waits for the read index), `DELETE /kv/{ns}/{key}` (`{"deleted":
//!   bool}`; with `take` it answers the value removed), `POST /kv/{ns}/{key}` compare-and-swap
//!   (`{"expected": b64|null, "new": b64|null, "ttl": "30s"}` → `{"swapped": bool}`),
//!   `PUT /kv/{ns}` (`{"max_entries": n|null}`);
//! - `POST /counter/{name}` (`{"add": n}` or `{"set": n}` → `{"value": v}`), `GET
//!   /counter/{name}`;
//! - `POST /lock/{name}?lease=10s&wait=30s` (`{"token": t, "lease_ms": l, "waited": w}`), `POST
//!   /lock/{name}/renew?token=t&lease=10s`, `DELETE /lock/{name}?token=t`.
//!
//! With `hiqlite_kv` a value comes back as JSON (`{"value": b64|null}`, always 200): what
//! hiqlite's remote client asks for. Keys may contain `/`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value as J};

use super::api::{answer, bad, redirect_if_asked, service_error, Api, Flags};
use crate::coord::{CoordAnswer, CoordOp};
use crate::Consistency;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// `level` of a read: `linearizable`/`strong` (or `weak`/`leader`) wait for the read index;
/// anything else reads this replica.
fn level(flags: &Flags) -> Consistency {
    match flags.q.get("level").map(String::as_str) {
        Some("linearizable" | "strong" | "weak" | "leader") => Consistency::Linearizable,
        _ => Consistency::Local,
    }
}

async fn write(api: &Api, flags: &Flags, uri: &Uri, op: CoordOp) -> Result<(CoordAnswer, u64), Response> {
    if let Some(r) = redirect_if_asked(&api.node, flags, uri) {
        return Err(r);
    }
    api.node.coord(op).await.map_err(service_error)
}

/// A value: raw bytes (404 when absent), or JSON for `hiqlite_kv`.
fn value(flags: &Flags, v: Option<Vec<u8>>) -> Response {
    if flags.has("hiqlite_kv") {
        return answer(json!({ "value": v.map(|v| b64().encode(v)) }), false);
    }
    match v {
        Some(v) => ([(header::CONTENT_TYPE, "application/octet-stream")], v).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "no such key" }))).into_response(),
    }
}

pub(super) async fn kv_put(
    State(api): State<Api>,
    Path((ns, key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let flags = Flags { q };
    let ttl_ms = match duration_ms(&flags, "ttl") {
        Ok(t) => t,
        Err(r) => return r,
    };
    match write(&api, &flags, &uri, CoordOp::KvPut { ns, key, value: body.to_vec(), ttl_ms }).await {
        Ok((_, index)) => answer(json!({ "raft_index": index }), false),
        Err(r) => r,
    }
}

pub(super) async fn kv_get(
    State(api): State<Api>,
    Path((ns, key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let flags = Flags { q };
    match api.node.kv_get(&ns, &key, level(&flags)).await {
        Ok(v) => value(&flags, v),
        Err(e) => service_error(e),
    }
}

pub(super) async fn kv_delete(
    State(api): State<Api>,
    Path((ns, key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> Response {
    let flags = Flags { q };
    let take = flags.has("take");
    let op = if take { CoordOp::KvTake { ns, key } } else { CoordOp::KvDelete { ns, key } };
    match write(&api, &flags, &uri, op).await {
        Ok((CoordAnswer::Value(v), _)) if take => value(&flags, v),
        Ok((CoordAnswer::Changed(deleted), index)) => {
            answer(json!({ "deleted": deleted, "raft_index": index }), false)
        }
        Ok((other, _)) => service_error(crate::Error::Storage(format!("unexpected answer {other:?}"))),
        Err(r) => r,
    }
}

fn opt_bytes(v: &J, field: &str) -> Result<Option<Vec<u8>>, Response> {
    match v.get(field) {
        None | Some(J::Null) => Ok(None),
        Some(J::String(s)) => b64().decode(s).map(Some).map_err(|e| bad(format!("{field}: not base64: {e}"))),
        Some(_) => Err(bad(format!("{field} must be a base64 string or null"))),
    }
}

pub(super) async fn kv_replace(
    State(api): State<Api>,
    Path((ns, key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut flags = Flags { q };
    let v: J = match serde_json::from_slice(&body) {
        Ok(v @ J::Object(_)) => v,
        Ok(_) => return bad("expected a JSON object {\"expected\": ..., \"new\": ...}"),
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    let (expected, new) = match (opt_bytes(&v, "expected"), opt_bytes(&v, "new")) {
        (Ok(e), Ok(n)) => (e, n),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if let Some(t) = v.get("ttl").and_then(J::as_str) {
        flags.q.insert("ttl".into(), t.to_owned());
    }
    let ttl_ms = match duration_ms(&flags, "ttl") {
        Ok(t) => t,
        Err(r) => return r,
    };
    match write(&api, &flags, &uri, CoordOp::KvReplace { ns, key, expected, new, ttl_ms }).await {
        Ok((CoordAnswer::Changed(swapped), index)) => {
            answer(json!({ "swapped": swapped, "raft_index": index }), false)
        }
        Ok((other, _)) => service_error(crate::Error::Storage(format!("unexpected answer {other:?}"))),
        Err(r) => r,
    }
}

pub(super) async fn kv_limit(
    State(api): State<Api>,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let flags = Flags { q };
    let max_entries = match serde_json::from_slice::<J>(&body) {
        Ok(J::Object(o)) => match o.get("max_entries") {
            None | Some(J::Null) => None,
            Some(n) => match n.as_u64() {
                Some(n) => Some(n),
                None => return bad("max_entries must be a non-negative integer or null"),
            },
        },
        Ok(_) => return bad("expected a JSON object {\"max_entries\": n}"),
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    match write(&api, &flags, &uri, CoordOp::KvLimit { ns, max_entries }).await {
        Ok((_, index)) => answer(json!({ "raft_index": index }), false),
        Err(r) => r,
    }
}

pub(super) async fn counter_post(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let flags = Flags { q };
    let op = match serde_json::from_slice::<J>(&body) {
        Ok(J::Object(o)) => match (o.get("add").map(J::as_i64), o.get("set").map(J::as_i64)) {
            (Some(Some(delta)), None) => CoordOp::CounterAdd { name, delta },
            (None, Some(Some(value))) => CoordOp::CounterSet { name, value },
            _ => return bad("expected {\"add\": n} or {\"set\": n} with a 64-bit integer"),
        },
        Ok(_) => return bad("expected {\"add\": n} or {\"set\": n}"),
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    match write(&api, &flags, &uri, op).await {
        Ok((CoordAnswer::Counter(v), index)) => answer(json!({ "value": v, "raft_index": index }), false),
        Ok((other, _)) => service_error(crate::Error::Storage(format!("unexpected answer {other:?}"))),
        Err(r) => r,
    }
}

pub(super) async fn counter_get(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let flags = Flags { q };
    match api.node.counter_get(&name, level(&flags)).await {
        Ok(v) => answer(json!({ "value": v }), false),
        Err(e) => service_error(e),
    }
}

fn token(flags: &Flags) -> Result<i64, Response> {
    flags
        .q
        .get("token")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("token must be given as an integer (?token=N)"))
}

fn duration_ms(flags: &Flags, name: &str) -> Result<Option<u64>, Response> {
    match flags.q.get(name) {
        None => Ok(None),
        Some(t) => crate::rqlite::parse_duration(t)
            .map(|d| Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            .ok_or_else(|| bad(format!("invalid {name} {t}"))),
    }
}

/// `POST /lock/{name}?lease=10s&wait=30s`: `{"token": t, "lease_ms": l, "waited": w}` once held
/// (`waited`: it queued, so its lease began before this answer; a holder renews before acting); without
/// `wait`, a lock someone holds is 409 (`{"token": null}` with `hiqlite_kv`); a wait that runs
/// out is 504.
pub(super) async fn lock_post(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> Response {
    let flags = Flags { q };
    if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
        return r;
    }
    let (lease, wait) = match (duration_ms(&flags, "lease"), duration_ms(&flags, "wait")) {
        (Ok(l), Ok(w)) => (l.unwrap_or(10_000), w),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let wait = wait.filter(|w| *w > 0).map(std::time::Duration::from_millis);
    match api.node.lock(&name, std::time::Duration::from_millis(lease), wait).await {
        Ok(Some((t, waited))) => answer(json!({ "token": t, "lease_ms": lease, "waited": waited }), false),
        Ok(None) if flags.has("hiqlite_kv") => answer(json!({ "token": null }), false),
        Ok(None) => (StatusCode::CONFLICT, axum::Json(json!({ "error": "lock is held" }))).into_response(),
        // The wait ran out and was withdrawn: a definite answer, not a write of unknown fate.
        Err(crate::Error::Timeout(m)) if flags.has("hiqlite_kv") => {
            answer(json!({ "token": null, "timeout": m }), false)
        }
        Err(e) => service_error(e),
    }
}

/// `POST /lock/{name}/renew?token=t&lease=10s`: `{"renewed": bool}`.
pub(super) async fn lock_renew(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> Response {
    let flags = Flags { q };
    if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
        return r;
    }
    let (token, lease) = match (token(&flags), duration_ms(&flags, "lease")) {
        (Ok(t), Ok(l)) => (t, l.unwrap_or(10_000)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match api.node.lock_renew(&name, token, std::time::Duration::from_millis(lease)).await {
        Ok(b) => answer(json!({ "renewed": b }), false),
        Err(e) => service_error(e),
    }
}

/// `DELETE /lock/{name}?token=t`: `{"released": bool}`.
pub(super) async fn lock_delete(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> Response {
    let flags = Flags { q };
    if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
        return r;
    }
    let token = match token(&flags) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match api.node.lock_release(&name, token).await {
        Ok(b) => answer(json!({ "released": b }), false),
        Err(e) => service_error(e),
    }
}
