//! The console's JSON endpoints, for what the rqlite API does not tell: who the credentials
//! name and what they may do (`whoami`, which is how the login form checks a password), every
//! member's status side by side (`cluster`), and this node's activity over the last minutes
//! (`series`). The last two need the `status` permission (checked with the API's).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde_json::json;

use super::super::api::{answer, unauthorized, Api};

/// `GET /console/api/whoami`: `{"auth": false}` without a users file; else the user the
/// `Authorization` header names (none without one) and their permissions, or 401 for wrong
/// credentials.
pub(super) async fn whoami(State(api): State<Api>, headers: HeaderMap) -> Response {
    let node = api.node.id();
    let Some(users) = &api.users else {
        return answer(json!({ "auth": false, "user": null, "perms": ["all"], "node": node }), false);
    };
    let authz = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match users.whoami(authz) {
        Ok(me) => answer(json!({ "auth": true, "user": me.user, "perms": me.perms, "node": node }), false),
        Err(why) => unauthorized(why, &headers),
    }
}

/// `GET /console/api/cluster`: every member's own status, reachability and lag.
pub(super) async fn cluster(State(api): State<Api>) -> Response {
    answer(serde_json::to_value(api.node.overview().await).unwrap_or_default(), false)
}

/// `GET /console/api/series?since=MS`: this node's rates per second (writes, reads, applied
/// entries, cache hit rate, write latency), one point a second for the last 10 minutes, only
/// those after `since` (milliseconds since the Unix epoch) when given.
pub(super) async fn series(State(api): State<Api>, Query(q): Query<HashMap<String, String>>) -> Response {
    let since = q.get("since").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let points = api.node.activity_series(since);
    answer(json!({ "node": api.node.id(), "now_ms": now_ms(), "points": points }), false)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
