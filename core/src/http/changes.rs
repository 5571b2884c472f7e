//! Change streams and live queries over HTTP, as server-sent events (hiqlite's own).
//!
//! `GET /db/changes?from=N[.S]&tables=a,b&old` sends one `change` event per committed row
//! change: `id:` the cursor after it (`index.seq`; `Last-Event-ID` resumes there), `data:` JSON
//! `{"index", "seq", "table", "op", "rowid", "key", "new", "old"}` with columns by name (blobs
//! as base64). Without `from` the stream starts now. A cursor older than the node keeps is
//! answered 410 Gone before the stream starts, or ends it with an `error` event.
//!
//! `GET /db/watch?q=SQL[&params=JSON array]` sends a `rows` event with the query's result in
//! rqlite's form at once and each time it changes.
//!
//! With `hiqlite_kv` (hiqlite's remote client) both send the exact values (serde JSON).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as J};

use super::api::{bad, service_error, Api, Flags};
use crate::changes::ChangeCursor;
use crate::error::Error;
use crate::node::ChangeFilter;

fn error_event(e: &Error) -> Event {
    Event::default().event("error").data(json!({ "error": e.to_string(), "hiqlite_error": e }).to_string())
}

pub(super) async fn changes_get(
    State(api): State<Api>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let flags = Flags { q };
    let from = match headers.get("last-event-id") {
        Some(v) => match v.to_str().ok().map(str::parse::<ChangeCursor>) {
            Some(Ok(c)) => Some(c),
            _ => return bad("Last-Event-ID must be a change cursor (INDEX.SEQ)"),
        },
        None => match flags.q.get("from").map(|f| f.parse::<ChangeCursor>()) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => return bad(format!("from: {e}")),
        },
    };
    let tables = flags
        .q
        .get("tables")
        .map(|t| t.split(',').map(|x| x.trim().to_lowercase()).filter(|x| !x.is_empty()).collect());
    let filter = ChangeFilter { tables, old: flags.has("old") };
    let stream = match api.node.changes(from, filter) {
        Ok(s) => s,
        Err(e) => return service_error(e),
    };
    let exact = flags.has("hiqlite_kv");
    let events = futures::stream::unfold(Some(stream), move |s| async move {
        let mut s = s?;
        match s.next().await {
            Ok(c) => {
                let data =
                    if exact { serde_json::to_string(&c) } else { serde_json::to_string(&c.to_json()) };
                let ev = Event::default()
                    .event("change")
                    .id(c.cursor().to_string())
                    .data(data.unwrap_or_default());
                Some((Ok::<_, std::convert::Infallible>(ev), Some(s)))
            }
            // The node stops: the stream ends and the client reconnects elsewhere.
            Err(Error::ShutDown) => None,
            // Anything else (a cursor that became too old) is said, then the stream ends.
            Err(e) => Some((Ok(error_event(&e)), None)),
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

pub(super) async fn watch_get(State(api): State<Api>, Query(q): Query<HashMap<String, String>>) -> Response {
    let flags = Flags { q };
    let Some(sql) = flags.q.get("q").cloned() else {
        return bad("watch needs the query in `q`");
    };
    // One statement in rqlite's form (`[sql, params...]`), so values read as in `/db/query`.
    let params: Vec<J> = match flags.q.get("params").map(|p| serde_json::from_str::<Vec<J>>(p)) {
        None => Vec::new(),
        Some(Ok(p)) => p,
        Some(Err(e)) => return bad(format!("params must be a JSON array: {e}")),
    };
    let mut stmt = vec![J::String(sql)];
    stmt.extend(params);
    let body = J::Array(vec![J::Array(stmt)]).to_string();
    let (sql, params) = match crate::rqlite::parse_statements(body.as_bytes(), false) {
        Ok(mut v) if v.len() == 1 => {
            let s = v.remove(0);
            (s.sql, s.params)
        }
        Ok(_) => return bad("watch takes one statement"),
        Err(e) => return bad(e),
    };
    let watch = match api.node.watch(&sql, params) {
        Ok(w) => w,
        Err(e) => return service_error(e),
    };
    let (exact, format) = (flags.has("hiqlite_kv"), flags.format());
    let events = futures::stream::unfold(Some(watch), move |w| async move {
        let mut w = w?;
        match w.next().await {
            Ok(rows) => {
                let data = if exact {
                    serde_json::to_string(&rows).unwrap_or_default()
                } else {
                    crate::rqlite::query_result(&rows, format, 0.0).to_string()
                };
                Some((Ok::<_, std::convert::Infallible>(Event::default().event("rows").data(data)), Some(w)))
            }
            Err(Error::ShutDown) => None,
            Err(e) => Some((Ok(error_event(&e)), None)),
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
