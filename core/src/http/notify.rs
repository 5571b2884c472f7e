//! listen/notify over HTTP (hiqlite's own): `POST /notify/{channel}` (body: the payload) →
//! `{"id": n}`; `GET /listen/{channel}` → server-sent events, one `note` event per notification
//! (`id:` its id, `data:` the payload as text, or base64 when it is not UTF-8 or `hiqlite_kv` is
//! set) and a `lagged` event (`{"after": n, "lost": bool}`) when the listener fell behind.
//! `Last-Event-ID` resumes after that id.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::api::{answer, bad, redirect_if_asked, service_error, Api, Flags};
use crate::client::ListenEvent;

pub(super) async fn notify_post(
    State(api): State<Api>,
    Path(channel): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let flags = Flags { q };
    if let Some(r) = redirect_if_asked(&api.node, &flags, &uri) {
        return r;
    }
    match api.node.notify(&channel, body.to_vec()).await {
        Ok(id) => answer(json!({ "id": id }), false),
        Err(e) => service_error(e),
    }
}

fn sse_event(e: ListenEvent, raw: bool) -> Event {
    match e {
        ListenEvent::Notification(n) => {
            let b64 = || base64::engine::general_purpose::STANDARD.encode(&n.payload);
            let (name, data) = match (raw, String::from_utf8(n.payload.clone())) {
                (false, Ok(text)) => ("note", text),
                (false, Err(_)) => ("note.base64", b64()),
                (true, _) => ("note", b64()),
            };
            Event::default().event(name).id(n.id.to_string()).data(data)
        }
        ListenEvent::Lagged { after, lost } => {
            Event::default().event("lagged").data(json!({ "after": after, "lost": lost }).to_string())
        }
    }
}

pub(super) async fn listen_get(
    State(api): State<Api>,
    Path(channel): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let flags = Flags { q };
    let after = match headers
        .get("last-event-id")
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()))
    {
        None => None,
        Some(Some(a)) => Some(a),
        Some(None) => return bad("Last-Event-ID must be a notification id"),
    };
    let listener = match api.node.listen(&channel, after) {
        Ok(l) => l,
        Err(e) => return service_error(e),
    };
    // Base64 for hiqlite's own client, which must get bytes back exactly.
    let b64 = flags.has("hiqlite_kv");
    let events = futures::stream::unfold(listener, move |mut l| async move {
        match l.next().await {
            Ok(e) => Some((Ok::<_, std::convert::Infallible>(sse_event(e, b64)), l)),
            // The node stops: the stream ends and the client reconnects elsewhere.
            Err(_) => None,
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
